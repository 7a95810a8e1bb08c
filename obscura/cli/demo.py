"""``obscura demo [-o DIR]``: the main jobs end to end.

1. develop: the bundled sample DNG (a crop of a real Canon EOS 550D colour-chart capture) with the
   ``default`` and ``reference`` recipes, and its colour difference to LibRaw's own rendering;
2. simulate + develop + measure + report: the ``quick`` lab protocol on the virtual ``phone-main`` camera
   (charts captured at two light levels, written as DNG, developed by ``default``, ``reference`` and
   LibRaw, measured, scored) into ``DIR/lab/report.html`` with one JSON per pipeline.
"""

from __future__ import annotations

import argparse
import json
import time
from importlib import resources
from pathlib import Path

import numpy as np

SAMPLE = "sample.dng"


def sample_path() -> Path:
    """The bundled sample raw file."""
    return Path(str(resources.files("obscura") / "data" / SAMPLE))


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="develop the bundled sample raw and write a summary", description=__doc__)
    p.add_argument("-o", "--output", default="demo_out", metavar="DIR", help="output folder (default: demo_out)")
    p.add_argument("--overwrite", action="store_true", help="replace earlier demo outputs")
    p.add_argument("--no-lab", action="store_true", help="skip the virtual-camera lab run")
    p.set_defaults(run=run)


def _delta_e_to_libraw(path: Path, ours: np.ndarray) -> float | None:
    """Mean CIEDE2000 between our sRGB rendering and rawpy.postprocess of the same file."""
    from obscura.lab.baseline import libraw_srgb, mean_delta_e00

    ref = libraw_srgb(path)
    if ref.shape[:2] != ours.shape[:2]:
        return None
    return mean_delta_e00(ref, ours)


def run(args: argparse.Namespace) -> int:
    from obscura.io.raw import read_raw
    from obscura.io.write import write
    from obscura.isp.develop import develop

    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    src = sample_path()
    t0 = time.perf_counter()
    raw = read_raw(src)
    summary: dict = {
        "input": str(src),
        "camera": raw.meta.model
        if raw.meta.model.startswith(raw.meta.make)
        else f"{raw.meta.make} {raw.meta.model}".strip(),
        "raw_size": [raw.width, raw.height],
        "cfa": raw.meta.cfa,
        "read_s": round(time.perf_counter() - t0, 3),
        "outputs": {},
    }
    for name in ("default", "reference"):
        t = time.perf_counter()
        image = develop(raw, recipe=name)
        dt = time.perf_counter() - t
        path = write(image, out / f"sample_{name}.jpg", quality=92, overwrite=args.overwrite)
        entry = {"file": str(path), "size": [image.width, image.height], "develop_s": round(dt, 3)}
        if name == "reference":
            de = _delta_e_to_libraw(src, image.data.permute(1, 2, 0).double().cpu().numpy())
            entry["mean_delta_e00_vs_libraw"] = None if de is None else round(de, 3)
        summary["outputs"][name] = entry
    if not args.no_lab:
        summary["lab"] = _lab(out / "lab", overwrite=args.overwrite)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"obscura demo: {summary['camera']} {summary['raw_size'][0]}x{summary['raw_size'][1]} {summary['cfa']}")
    for name, e in summary["outputs"].items():
        extra = f", mean ΔE00 vs LibRaw {e['mean_delta_e00_vs_libraw']}" if "mean_delta_e00_vs_libraw" in e else ""
        print(f"  {name:9s} -> {e['file']} ({e['size'][0]}x{e['size'][1]}, {e['develop_s']} s{extra})")
    if "lab" in summary:
        lab = summary["lab"]
        scores = ", ".join(f"{k} {v:.1f}" for k, v in lab["overall"].items())
        print(f"  lab       -> {lab['report']} (phone-main, quick protocol, {lab['seconds']} s; overall: {scores})")
    print(f"  summary   -> {out / 'summary.json'}")
    return 0


def _lab(folder: Path, *, overwrite: bool) -> dict:
    """The quick lab protocol on the virtual phone-main camera with three pipelines, and its report."""
    from obscura.lab.report.html import write_report
    from obscura.lab.score import capture_protocol, run_protocol

    t = time.perf_counter()
    captures = capture_protocol("quick", camera="phone-main")
    results = [
        run_protocol("quick", camera="phone-main", pipeline=p, captures=captures)
        for p in ("default", "reference", "libraw")
    ]
    paths = write_report(results, folder, overwrite=overwrite)
    overall = {r.pipeline: float(r.overall) for r in results}
    return {"report": str(paths[0]), "overall": overall, "seconds": round(time.perf_counter() - t, 1)}
