"""Speed of the camera lab: the full protocol on the CPU, and e-SFR per edge.

Runs a protocol (``quick`` by default) once: captures every chart with the virtual camera, then for each
pipeline develops, measures and scores every capture, then writes the HTML report. Prints the time
of each phase, and per capture the develop time of each obscura recipe against LibRaw's own rendering
(write_dng + rawpy.postprocess) of the same capture, in the same run. Then times ISO 12233 e-SFR on
every slanted edge of the developed edge chart (median of ``--repeat`` runs per edge) against the
20 ms budget, and against the FFT of the same region (numpy), the floor of any frequency-domain method.

    python benchmarks/lab.py [--protocol quick|default|PATH] [--pipeline default --pipeline reference] [--repeat 20]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def _time(fn, repeat: int = 1) -> tuple[float, object]:
    ts, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--protocol", default="quick")
    ap.add_argument("--camera", default="phone-main")
    ap.add_argument("--pipeline", action="append", default=None)
    ap.add_argument("--repeat", type=int, default=20, help="e-SFR runs per edge (median)")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from obscura.lab.measure.noise import as_planes
    from obscura.lab.measure.sfr import esfr
    from obscura.lab.report.html import write_report
    from obscura.lab.score import capture_protocol, develop_capture, load_protocol, run_protocol

    pipelines = args.pipeline or ["default", "reference", "libraw"]
    proto = load_protocol(args.protocol)
    n = sum(len(c.charts or proto.charts) for c in proto.conditions)
    print(f"protocol {proto.name}: {n} captures of {proto.size[1]}x{proto.size[0]}, {torch.get_num_threads()} threads")

    t_cap, caps = _time(lambda: capture_protocol(proto, camera=args.camera))
    rows = [("capture (virtual camera)", t_cap, None)]
    results = []
    total = t_cap
    for pl in pipelines:
        t_run, res = _time(lambda pl=pl: run_protocol(proto, camera=args.camera, pipeline=pl, captures=caps))
        results.append(res)
        rows.append((f"develop + measure + score: {pl}", t_run, None))
        total += t_run
    with tempfile.TemporaryDirectory() as d:
        t_rep, _ = _time(lambda: write_report(results, Path(d)))
    rows.append(("HTML report + JSON", t_rep, None))
    total += t_rep

    # develop alone, per pipeline, against LibRaw on the same captures
    dev = {pl: 0.0 for pl in pipelines}
    for cap in caps:
        for pl in pipelines:
            dev[pl] += _time(lambda cap=cap, pl=pl: develop_capture(cap, pipeline=pl))[0]
    if "libraw" in dev:
        for pl in pipelines:
            if pl != "libraw":
                rows.append((f"develop only: {pl} (vs LibRaw)", dev[pl], dev[pl] / dev["libraw"]))
        rows.append(("develop only: libraw (write_dng + postprocess)", dev["libraw"], 1.0))

    print(f"\n{'phase':<52} {'time (s)':>9} {'ratio':>7}")
    print("-" * 70)
    for name, t, r in rows:
        print(f"{name:<52} {t:>9.2f} {'' if r is None else f'{r:>7.2f}'}")
    print(f"{'full protocol':<52} {total:>9.2f}")

    # e-SFR per edge on the developed edge chart
    cap = next((c for c in caps if c.kind == "edge"), None)
    if cap is None:
        return
    lin = as_planes(develop_capture(cap, pipeline=pipelines[0]), encoding="srgb")
    lum = np.tensordot([0.2126729, 0.7151522, 0.072175], lin, axes=1)
    t_sfr, t_fft = [], []
    for x0, y0, x1, y1 in cap.chart.rois.values():
        roi = lum[y0:y1, x0:x1]
        t_sfr.append(_time(lambda roi=roi: esfr(roi), args.repeat)[0])
        t_fft.append(_time(lambda roi=roi: np.abs(np.fft.rfft2(roi)), args.repeat)[0])
    med, worst = statistics.median(t_sfr), max(t_sfr)
    x0, y0, x1, y1 = next(iter(cap.chart.rois.values()))
    print(f"\ne-SFR on {len(t_sfr)} edges (ROI {x1 - x0}x{y1 - y0} px), median of {args.repeat} runs each")
    print(f"{'':<28} {'median (ms)':>12} {'worst (ms)':>11} {'budget':>7} {'vs FFT':>7}")
    print(
        f"{'esfr (luminance)':<28} {med * 1e3:>12.2f} {worst * 1e3:>11.2f} {'20 ms':>7} "
        f"{med / statistics.median(t_fft):>7.1f}"
    )
    print(f"{'numpy rfft2 of the ROI':<28} {statistics.median(t_fft) * 1e3:>12.3f}")
    print("e-SFR within budget" if worst <= 0.020 else "e-SFR OVER the 20 ms budget")


if __name__ == "__main__":
    main()
