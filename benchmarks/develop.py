"""Speed and memory of develop against LibRaw (rawpy.postprocess, AHD) on the same files, same run.

For each real raw of ../shared/data/raw that LibRaw opens, and for a 24 MP raw made by tiling the
real colorchart.dng mosaic and writing it with write_dng, prints the median time of N runs (read +
develop, no encoding) of obscura ``fast`` and ``default`` and of ``rawpy.postprocess()`` (imread +
postprocess), their ratio, and the peak memory of each (resident set growth, measured in a fresh
process per configuration) against the size of the float32 RGB image.

    python benchmarks/develop.py [--runs 5] [--device cpu|cuda] [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FILES = [
    "raw/tinydngloader/colorchart.dng",
    "raw/boost_gil/RAW_CANON_D30_SRGB.CRW",
    "raw/more/blackmagic_pocket_cinema_camera_4k_12bit.dng",
    "raw/more/skia_lg-h815_sample_1mp.dng",
]


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _reset_peak() -> None:
    """Reset the process's peak RSS (VmHWM) to its current RSS (Linux ≥ 4.0)."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def worker(kind: str, path: str, runs: int, device: str) -> dict:
    """Time one configuration in this (fresh) process; report median seconds and peak RSS growth."""
    import rawpy
    import torch

    from obscura.io.raw import read_raw
    from obscura.isp.develop import develop

    def once():
        if kind == "rawpy":
            with rawpy.imread(path) as r:
                rgb = r.postprocess()
            return rgb.shape[0] * rgb.shape[1]
        img = develop(read_raw(path), recipe=kind, device=device)
        if img.data.is_cuda:
            torch.cuda.synchronize()
        return img.width * img.height

    pixels = once()  # warm-up (and first-touch allocations)
    _reset_peak()
    base = _status_kb("VmRSS") * 1024
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        once()
        times.append(time.perf_counter() - t)
    peak = _status_kb("VmHWM") * 1024
    return {"median_s": statistics.median(times), "peak_bytes": max(0, peak - base), "pixels": pixels}


def make_24mp(data: Path, out: Path) -> Path:
    """A 24 MP (6000×4000) raw: the real colorchart mosaic tiled (even periods keep the CFA phase), as DNG."""
    import torch

    from obscura.io.dng import write_dng
    from obscura.io.raw import read_raw

    src = read_raw(data / "raw/tinydngloader/colorchart.dng")
    m = src.data
    h, w = 4000, 6000
    reps = (-(-h // m.shape[0]) + 1, -(-w // m.shape[1]) + 1)
    big = m.repeat(*reps)[:h, :w].contiguous()
    meta = src.meta.replace(default_crop=None)
    frame = type(src)(big.to(torch.float32), meta)
    return write_dng(frame, out, overwrite=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--worker", nargs=2, metavar=("KIND", "PATH"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker[0], args.worker[1], args.runs, args.device)))
        return

    data = Path(args.data)
    if not data.is_dir():
        sys.exit(f"benchmarks/develop.py: {data} not found (pass --data)")
    tmp = Path(tempfile.mkdtemp(prefix="obscura-bench-"))
    inputs = [(Path(f).name, data / f) for f in FILES if (data / f).is_file()]
    inputs.append(("24MP tiled colorchart (DNG)", make_24mp(data, tmp / "tiled_24mp.dng")))

    kinds = ["rawpy", "fast", "default"]
    print(
        f"obscura develop vs rawpy.postprocess (AHD); median of {args.runs} runs; device {args.device}; "
        f"torch threads {__import__('torch').get_num_threads()}"
    )
    header = (
        f"{'file':34s} {'MP':>5s} | {'rawpy s':>8s} {'fast s':>8s} {'default s':>9s} | "
        f"{'fast/rawpy':>10s} {'default/rawpy':>13s} | {'peak MB raw/fast/def':>22s} | {'peak/RGB32 fast/def':>19s}"
    )
    print(header)
    print("-" * len(header))
    for name, path in inputs:
        res = {}
        for kind in kinds:
            cmd = [
                sys.executable,
                __file__,
                "--runs",
                str(args.runs),
                "--device",
                args.device,
                "--worker",
                kind,
                str(path),
            ]
            proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
            if proc.returncode != 0:
                res[kind] = None
                print(f"  {name} {kind}: failed: {proc.stderr.strip().splitlines()[-1:]}")
                continue
            res[kind] = json.loads(proc.stdout.strip().splitlines()[-1])
        if not all(res.values()):
            continue
        mp = res["default"]["pixels"] / 1e6
        rgb32 = res["default"]["pixels"] * 12
        r, f, d = (res[k]["median_s"] for k in kinds)
        pr, pf, pd = (res[k]["peak_bytes"] / 2**20 for k in kinds)
        print(
            f"{name[:34]:34s} {mp:5.1f} | {r:8.3f} {f:8.3f} {d:9.3f} | {f / r:10.2f} {d / r:13.2f} | "
            f"{pr:6.0f}/{pf:6.0f}/{pd:6.0f} | {pf * 2**20 / rgb32:8.1f}/{pd * 2**20 / rgb32:8.1f}"
        )
    print("targets (2-core CPU): fast ≤ 0.6 × rawpy, default ≤ 1.5 × rawpy, peak ≤ 8 × float32 RGB image")


if __name__ == "__main__":
    main()
