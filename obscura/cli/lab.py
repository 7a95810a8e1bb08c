"""``obscura lab ...``: the camera lab.

``obscura lab charts -o DIR`` writes every test chart to print; ``obscura lab run`` captures a protocol's
charts with a virtual camera, develops, measures and scores them and writes the HTML report and JSON;
``obscura lab measure PHOTO --chart NAME`` measures one photo of a chart; ``obscura lab compare A.json
B.json ...`` puts lab results into one leaderboard.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

from obscura.core.errors import InvalidParameter, ObscuraError, OutputExists

FORMATS = {"png": (".png",), "pdf": (".pdf",), "both": (".png", ".pdf")}


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("lab", help="the camera lab: test charts and measurements", description=__doc__)
    lab_sub = p.add_subparsers(dest="lab_command", required=True, metavar="SUBCOMMAND")
    add_charts_parser(lab_sub)
    add_run_parser(lab_sub)
    add_measure_parser(lab_sub)
    add_compare_parser(lab_sub)


def add_charts_parser(sub: argparse._SubParsersAction) -> None:
    from obscura.lab.charts import CHARTS

    p = sub.add_parser(
        "charts",
        help="write the test charts as 16-bit PNG and/or PDF",
        description="Write every test chart (or those named with --chart) to DIR as <name>.png / <name>.pdf.",
    )
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="output folder (created if missing)")
    p.add_argument("--size", default=None, metavar="HxW", help="chart size in pixels, e.g. 600x800 (default: each's)")
    p.add_argument("--format", choices=sorted(FORMATS), default="png", help="file format (default png)")
    p.add_argument("--chart", action="append", choices=CHARTS.names(), default=None, help="only this chart (repeat)")
    p.add_argument("--encoding", choices=("srgb", "linear"), default="srgb", help="PNG encoding (PDF is sRGB)")
    p.add_argument("--dpi", type=float, default=300.0, help="print resolution, pixels per inch (default 300)")
    p.add_argument("--outline", action="store_true", help="outline the ROIs in red (a preview, not for print)")
    p.add_argument("--overwrite", action="store_true", help="replace existing files")
    p.add_argument("--quiet", action="store_true", help="do not list the files written")
    p.set_defaults(run=run_charts)


def parse_size(text: str | None) -> tuple[int, int] | None:
    """``"600x800"`` → (600, 800) (H × W); None stays None."""
    if text is None:
        return None
    parts = text.lower().replace("×", "x").split("x")
    try:
        h, w = (int(s) for s in parts)
    except ValueError:
        raise InvalidParameter(f"--size must be HxW in pixels, e.g. 600x800; got {text!r}") from None
    if h < 1 or w < 1:
        raise InvalidParameter(f"--size must be positive; got {text!r}")
    return h, w


def run_charts(args: argparse.Namespace) -> int:
    from obscura.lab.charts import CHARTS
    from obscura.lab.charts.printable import write_chart

    size = parse_size(args.size)
    if args.encoding == "linear" and args.format != "png":
        raise InvalidParameter("--encoding linear is for PNG only (a PDF chart is sRGB); use --format png")
    names = args.chart or CHARTS.names()
    folder = Path(args.output)
    if folder.exists() and not folder.is_dir():
        raise InvalidParameter(f"{folder}: is a file, not a folder")
    outs = [folder / f"{n}{suffix}" for n in names for suffix in FORMATS[args.format]]
    if not args.overwrite:  # fail before any work rather than halfway through
        for o in outs:
            if o.exists():
                raise OutputExists(f"{o}: already exists (use --overwrite to replace it)")
    # every chart is built before any file is written, so a bad --size writes nothing
    options = {} if size is None else {"size": size}
    charts = {n: CHARTS.get(n)(**options) for n in names}
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ObscuraError(f"{folder}: cannot create output folder: {e.strerror}") from None
    for n, chart in charts.items():
        for suffix in FORMATS[args.format]:
            dst = folder / f"{n}{suffix}"
            enc = args.encoding if suffix == ".png" else "srgb"
            write_chart(chart, dst, encoding=enc, dpi=args.dpi, outline_rois=args.outline, overwrite=args.overwrite)
            if not args.quiet:
                h, w = chart.scene.size
                print(f"{dst} ({w}x{h} px, {w / args.dpi * 25.4:.1f} x {h / args.dpi * 25.4:.1f} mm)")
    return 0


# ------------------------------------------------------------------------------------------------ run


def add_run_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run",
        help="capture, develop, measure and score a lab protocol; write the HTML report and JSON",
        description="Capture every chart of a protocol with a virtual camera, develop it with each pipeline, "
        "measure and score it, and write DIR/report.html plus DIR/<camera>_<pipeline>.json.",
    )
    p.add_argument("--camera", default="phone-main", help="camera profile name or TOML path (default phone-main)")
    p.add_argument(
        "--pipeline",
        action="append",
        default=None,
        metavar="RECIPE",
        help="develop recipe (name or TOML path) or 'libraw' (LibRaw's rendering); repeat to compare "
        "(default: default)",
    )
    p.add_argument("--protocol", default="quick", help="protocol: quick, default or a TOML path (default quick)")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="output folder (created if missing)")
    p.add_argument("--overwrite", action="store_true", help="replace existing files")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    p.set_defaults(run=run_run)


def run_run(args: argparse.Namespace) -> int:
    from obscura.io.atomic import check_output_path
    from obscura.lab.report.html import leaderboard, leaderboard_text, write_report
    from obscura.lab.score import capture_protocol, load_protocol, run_protocol
    from obscura.sim.camera import load_camera

    pipelines = args.pipeline or ["default"]
    proto = load_protocol(args.protocol)
    cam = load_camera(args.camera)
    for pl in pipelines:  # every pipeline is checked before the captures
        if pl != "libraw":
            from obscura.isp.recipe import get_recipe

            get_recipe(pl)
    folder = Path(args.output)
    if folder.exists() and not folder.is_dir():
        raise InvalidParameter(f"{folder}: is a file, not a folder")
    if folder.is_dir():
        check_output_path(folder / "report.html", overwrite=args.overwrite)

    def say(line: str) -> None:
        if not args.quiet:
            print(line, file=sys.stderr, flush=True)

    caps = capture_protocol(proto, camera=cam, progress=say)
    results = [run_protocol(proto, camera=cam, pipeline=pl, captures=caps, progress=say) for pl in pipelines]
    paths = write_report(results, folder, overwrite=args.overwrite)
    print(leaderboard_text(leaderboard(results)))
    for path in paths:
        print(path)
    return 0


# -------------------------------------------------------------------------------------------- measure


def add_measure_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "measure",
        help="measure a photo of a test chart (e-SFR, ΔE00, noise, OECF, texture, distortion, ...)",
        description="Measure PHOTO as a capture of --chart. The chart fills the photo, or the region --roi; "
        "for --chart edge, --roi is one slanted-edge region.",
    )
    p.add_argument("photo", metavar="PHOTO", help="PNG, JPEG, TIFF, HEIF or AVIF file")
    p.add_argument("--chart", required=True, help="chart: colorchecker, edge, deadleaves, steps, noise, dots, ...")
    p.add_argument(
        "--encoding",
        default=None,
        help="how the pixel values are encoded: linear or srgb (default: the file's ICC profile, else sRGB)",
    )
    p.add_argument("--roi", default=None, metavar="x0,y0,x1,y1", help="region of the chart (pixels, x1/y1 exclusive)")
    p.add_argument("--json", action="store_true", help="print one JSON object whose keys name the measurements")
    p.set_defaults(run=run_measure)


def parse_roi(text: str | None, size: tuple[int, int]) -> tuple[int, int, int, int] | None:
    """``"x0,y0,x1,y1"`` → a rectangle inside an image of ``size`` (H, W); None stays None."""
    if text is None:
        return None
    try:
        x0, y0, x1, y1 = (int(v) for v in text.split(","))
    except ValueError:
        raise InvalidParameter(f"--roi must be x0,y0,x1,y1 in whole pixels; got {text!r}") from None
    h, w = size
    if not (0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h):
        raise InvalidParameter(f"--roi {text!r} is not a non-empty region inside the {w}x{h} image")
    if x1 - x0 < 20 or y1 - y0 < 20:
        raise InvalidParameter(f"--roi must be at least 20x20 pixels; got {x1 - x0}x{y1 - y0}")
    return x0, y0, x1, y1


def _json_ready(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _json_ready(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json_ready(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def measure_photo(
    path: str | Path, *, chart: str, encoding: str | None = None, roi: str | None = None
) -> dict[str, Any]:
    """The measurements of a photo of ``chart`` (see ``obscura lab measure``) as a JSON-ready dict."""
    import numpy as np

    from obscura.core.types import Image
    from obscura.io.write import read_image
    from obscura.lab.charts import CHARTS
    from obscura.lab.score import MEASURED_CHARTS, measure_chart, sfr_dict

    if chart not in MEASURED_CHARTS:
        raise InvalidParameter(f"unknown chart {chart!r}; measurable charts: {', '.join(MEASURED_CHARTS)}")
    spaces = {"linear": "linear_srgb", "srgb": "srgb"}
    if encoding is not None and encoding not in spaces:
        raise InvalidParameter(f"--encoding must be linear or srgb; got {encoding!r}")
    img = read_image(path)
    if encoding is not None:
        img = Image(img.data, spaces[encoding])
    box = parse_roi(roi, (img.height, img.width))
    out: dict[str, Any] = {"chart": chart, "photo": str(path), "space": img.space, "size": [img.height, img.width]}
    if box is not None:
        x0, y0, x1, y1 = box
        img = Image(img.data[:, y0:y1, x0:x1], img.space)
        out["roi"] = list(box)
    if chart == "edge" and box is not None:
        from obscura.lab.measure.noise import as_planes
        from obscura.lab.measure.sfr import esfr

        r = esfr(as_planes(img))
        out.update(
            sfr_dict(r), edge_contrast=r.edge_contrast, freq=np.asarray(r.freq).tolist(), sfr=np.asarray(r.sfr).tolist()
        )
        return _json_ready(out)
    if chart == "edge":  # found edges; when they are our chart's (as `lab charts` wrote it), its full layout
        found = _measure_found_edges(img)
        try:
            ch = CHARTS.get(chart)(size=(img.height, img.width))
        except ObscuraError:
            ch = None
        want = ch.reference["angle_deg"] if ch is not None else None
        ours = want is not None and all(abs(abs(e["angle_deg"]) - want) < 0.5 for e in found["edges"])
        if ours and len(found["edges"]) >= len(ch.rois) // 2:
            out.update(measure_chart(ch, img, kind=chart))
        else:
            out.update(found)
        return _json_ready(out)
    ch = CHARTS.get(chart)(size=(img.height, img.width))
    if chart == "colorchecker" and box is None:
        found = _detected_colorchecker(img, ch)
        if found is not None:
            img, quad = found
            out["detected_quad"] = quad
    out.update(measure_chart(ch, img, kind=chart))
    return _json_ready(out)


def _measure_found_edges(img: Any) -> dict[str, Any]:
    """e-SFR on every slanted edge found in the photo (lab.measure.detect); the median leads."""
    import numpy as np

    from obscura.lab.measure.detect import find_slanted_edges
    from obscura.lab.measure.noise import as_planes
    from obscura.lab.measure.sfr import esfr
    from obscura.lab.score import sfr_dict

    planes = as_planes(img)
    side = min(planes.shape[-2:])  # small crops have short edges: scale the search with the photo
    edges = find_slanted_edges(
        planes,
        angle_range=(2.0, 35.0),
        min_length=int(max(16, min(40, side // 5))),
        half_width=int(max(10, min(24, side // 8))),
    )
    results = []
    for e in edges:
        x0, y0, x1, y1 = e.roi
        try:
            r = esfr(planes[:, y0:y1, x0:x1])
        except ObscuraError:
            continue
        results.append({"roi": list(e.roi), **sfr_dict(r)})
    if not results:
        raise InvalidParameter("no measurable slanted edge (2°–35° from an axis) found in the photo; give --roi")
    keys = ("mtf50", "mtf50p", "overshoot_pct", "undershoot_pct")
    med = {k: float(np.median([math.nan if r[k] is None else r[k] for r in results])) for k in keys}
    return {**med, "edges": results}


def _detected_colorchecker(img: Any, chart: Any) -> tuple[Any, list] | None:
    """The ColorChecker found in a photo (colour-checker-detection), redrawn as our chart's layout so the
    chart measurement applies; None when the package is missing or finds no chart (the photo is then taken
    to be the chart itself, as written by ``obscura lab charts``)."""
    import numpy as np
    import torch

    from obscura.core.colour import srgb_encode
    from obscura.core.types import Image
    from obscura.lab.measure.detect import detect_colorchecker

    try:
        det = detect_colorchecker(img, encoding="linear" if img.space.startswith("linear") else "srgb")
    except ObscuraError:
        return None
    lin = torch.full((3, img.height, img.width), 0.18, dtype=torch.float32)
    for name, rgb in zip(chart.reference["names"], det.patches):
        x0, y0, x1, y1 = chart.rois[name]
        lin[:, y0:y1, x0:x1] = torch.as_tensor(np.asarray(rgb, dtype=np.float32))[:, None, None]
    redrawn = Image(lin if img.space.startswith("linear") else srgb_encode(lin.clamp(0, 1)), img.space)
    return redrawn, det.quad.tolist()


_SUMMARY_KEYS = {
    "colorchecker": ("mean_delta_e00", "max_delta_e00", "mean_delta_e00_normalized", "wb_error", "saturation_pct"),
    "edge": ("mtf50", "mtf50p", "overshoot_pct", "undershoot_pct", "lateral_ca_max_px"),
    "deadleaves": ("texture_mtf50", "texture_acutance"),
    "steps": ("dynamic_range", "exposure_error_ev"),
    "noise": ("snr_18_db", "visual_noise"),
    "dots": ("tv_distortion_pct",),
    "flat": ("worst_corner_ev", "corner_ev"),
    "zoneplate": ("colour_moire",),
}


def run_measure(args: argparse.Namespace) -> int:
    d = measure_photo(args.photo, chart=args.chart, encoding=args.encoding, roi=args.roi)
    if args.json:
        print(json.dumps(d, allow_nan=False))
        return 0
    print(f"{d['photo']}: {d['chart']} ({d['size'][1]}x{d['size'][0]}, {d['space']})")
    for k in _SUMMARY_KEYS.get(args.chart, ()):
        if k in d:
            v = d[k]
            print(f"  {k}: {v:.4g}" if isinstance(v, float) else f"  {k}: {v}")
    return 0


# -------------------------------------------------------------------------------------------- compare


def add_compare_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compare",
        help="a leaderboard of several lab results (JSON from 'obscura lab run')",
        description="Rank lab results by overall score: a text table on stdout, and an HTML page with -o.",
    )
    p.add_argument("results", nargs="+", metavar="RESULT.json", help="lab result JSON files")
    p.add_argument("-o", "--output", default=None, metavar="HTML", help="also write the leaderboard as HTML")
    p.add_argument("--overwrite", action="store_true", help="replace an existing HTML file")
    p.set_defaults(run=run_compare)


def run_compare(args: argparse.Namespace) -> int:
    from obscura.io.atomic import atomic_output, check_output_path
    from obscura.lab.report.html import leaderboard, leaderboard_html, leaderboard_text, read_result

    if args.output is not None:
        check_output_path(args.output, overwrite=args.overwrite)
    rows = leaderboard([read_result(p) for p in args.results])
    print(leaderboard_text(rows))
    if args.output is not None:
        with atomic_output(args.output, overwrite=args.overwrite) as tmp:
            tmp.write_text(leaderboard_html(rows), encoding="utf-8")
        print(args.output)
    return 0
