"""Speed of applying a 33³ 3D LUT to a 24 MP image: obscura (float32, tetrahedral) against Pillow's
``ImageFilter.Color3DLUT`` (8-bit, trilinear, C) on the same picture, in the same run.

The picture is a Kodak image tiled to 6000×4000 (random values when ../shared/data is absent); the LUT is a
smooth nonlinear look (S-curve, hue rotation, saturation) baked at 33³. Times are the median of ``--runs``.
Targets: CPU ratio against Pillow ≤ 1.5 while working in float32; CUDA ≤ 5 ms.

    python benchmarks/looks.py [--data ../shared/data] [--runs 5] [--threads N] [--size 33]
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageFilter

from obscura.looks.lut import apply_lut, bake_srgb

ROOT = Path(__file__).resolve().parents[1]
H, W = 4000, 6000


def look(x: torch.Tensor) -> torch.Tensor:
    """S-curve, a 0.25 rad hue rotation about grey and saturation ×1.3 on encoded sRGB (3, ...)."""
    s = x - 0.3 * torch.sin(2 * math.pi * x) / (2 * math.pi)
    m = s.mean(0, keepdim=True)
    k = np.ones(3) / math.sqrt(3)
    K = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    R = np.eye(3) + math.sin(0.25) * K + (1 - math.cos(0.25)) * K @ K
    return (m + 1.3 * torch.einsum("ij,j...->i...", torch.tensor(R, dtype=x.dtype), s - m)).clamp(0, 1)


def picture(data: Path) -> np.ndarray:
    """(H, W, 3) uint8: kodim01 tiled to 24 MP, or random values without the data folder."""
    f = data / "images" / "kodak24" / "kodim01.png"
    if f.is_file():
        a = np.asarray(Image.open(f).convert("RGB"))
        reps = (math.ceil(H / a.shape[0]), math.ceil(W / a.shape[1]), 1)
        return np.ascontiguousarray(np.tile(a, reps)[:H, :W])
    return np.random.default_rng(0).integers(0, 256, (H, W, 3), dtype=np.uint8)


def timed(fn, runs: int, cuda: bool = False) -> float:
    fn()  # warm-up
    times = []
    for _ in range(runs):
        if cuda:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    ap.add_argument("--size", type=int, default=33, help="LUT size")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    arr = picture(args.data)
    lut = bake_srgb(look, size=args.size)
    x = torch.from_numpy(arr).permute(2, 0, 1).float().div_(255).contiguous()  # (3, H, W) float32
    im = Image.fromarray(arr)
    flat = lut.table.permute(2, 1, 0, 3).reshape(-1, 3).tolist()  # Pillow: red fastest, like .cube
    pil_filter = ImageFilter.Color3DLUT(args.size, flat)

    rows = []
    t_pil = timed(lambda: im.filter(pil_filter), args.runs)
    rows.append(("Pillow Color3DLUT (reference)", "cpu", "uint8", "trilinear", t_pil, None))
    for method in ("tetrahedral", "trilinear"):
        t = timed(lambda m=method: apply_lut(x, lut, method=m), args.runs)
        rows.append(("obscura apply_lut", "cpu", "float32", method, t, "≤ 1.5" if method == "tetrahedral" else ""))
    if torch.cuda.is_available():
        xc, lc = x.cuda(), lut.to("cuda")
        t = timed(lambda: apply_lut(xc, lc), args.runs, cuda=True)
        rows.append(("obscura apply_lut", "cuda", "float32", "tetrahedral", t, "≤ 5 ms"))

    ours = apply_lut(x, lut).permute(1, 2, 0).numpy()
    ref = np.asarray(im.filter(pil_filter), dtype=np.float32) / 255
    diff = np.abs(ours - ref)

    print(
        f"3D LUT {args.size}³ on a {W}×{H} image ({W * H / 1e6:.0f} MP), torch threads {torch.get_num_threads()}, "
        f"median of {args.runs}"
    )
    print(f"{'implementation':32s} {'device':6s} {'dtype':8s} {'interp':12s} {'time ms':>9s} {'× Pillow':>9s} target")
    for name, dev, dtype, interp, t, target in rows:
        ratio = f"{t / t_pil:9.2f}" if target is not None else f"{'1.00':>9s}"
        print(f"{name:32s} {dev:6s} {dtype:8s} {interp:12s} {t * 1e3:9.1f} {ratio} {target or ''}")
    print(f"agreement with Pillow (8-bit output): mean |Δ| {diff.mean() * 255:.2f}/255, max {diff.max() * 255:.2f}/255")


if __name__ == "__main__":
    main()
