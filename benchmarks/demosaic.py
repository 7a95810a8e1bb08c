"""Quality and speed of obscura's demosaicing against colour-demosaicing, in the same run.

Quality: for Kodak (16 images) and McMaster (12 images): 8-bit ground truth as float in [0, 1],
RGGB mosaic, demosaic, round to 8 bits, CPSNR over the three channels with a 10-pixel border crop,
mean over the images. Speed: seconds per megapixel on one Kodak image for both implementations, and
seconds for a 6000×4000 (24 MP) random mosaic for ours (median of ``--runs``).

    python benchmarks/demosaic.py [--data ../shared/data] [--runs 3] [--device cpu|cuda] [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import colour_demosaicing as cd
import numpy as np
import torch
from PIL import Image

from obscura.core.cfa import mosaic_rgb
from obscura.isp.demosaic import DEMOSAIC, demosaic

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = {
    "bilinear": cd.demosaicing_CFA_Bayer_bilinear,
    "malvar2004": cd.demosaicing_CFA_Bayer_Malvar2004,
    "menon2007": cd.demosaicing_CFA_Bayer_Menon2007,
}


def cpsnr(out: np.ndarray, truth: np.ndarray, border: int = 10) -> float:
    """CPSNR in dB of (H, W, 3) arrays in [0, 1], ``out`` rounded to 8 bits."""
    a = np.clip(np.round(out * 255), 0, 255)[border:-border, border:-border]
    b = np.round(truth * 255)[border:-border, border:-border]
    return float(10 * np.log10(255.0**2 / np.mean((a - b) ** 2)))


def load(folder: Path) -> list[np.ndarray]:
    return [np.asarray(Image.open(f).convert("RGB"), dtype=np.float64) / 255 for f in sorted(folder.glob("*.png"))]


def ours(mosaic: np.ndarray, method: str, device: str) -> np.ndarray:
    x = torch.from_numpy(mosaic).float().to(device)
    return demosaic(x, cfa="RGGB", method=method).permute(1, 2, 0).cpu().double().numpy()


def timed(fn, runs: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    sets = {name: load(args.data / "images" / name) for name in ("kodak24", "mcmaster")}
    methods = DEMOSAIC.names()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, device {args.device}")
    print("\nMean CPSNR (dB), RGGB, 8-bit, 10-pixel border crop")
    header = f"{'method':<12}" + "".join(f"{n + ' (ours)':>18}{n + ' (c-d)':>18}" for n in sets)
    print(header)
    print("-" * len(header))
    for method in methods:
        row = f"{method:<12}"
        for images in sets.values():
            mine = np.mean([cpsnr(ours(mosaic_rgb_np(gt), method, args.device), gt) for gt in images])
            if method in REFERENCE:
                ref = np.mean([cpsnr(REFERENCE[method](mosaic_rgb_np(gt), "RGGB"), gt) for gt in images])
                ref_s = f"{ref:18.2f}"
            else:
                ref_s = f"{'-':>18}"
            row += f"{mine:18.2f}{ref_s}"
        print(row)

    gt = sets["kodak24"][0]
    mosaic = mosaic_rgb_np(gt)
    mp = mosaic.size / 1e6
    big = torch.rand(4000, 6000, generator=torch.Generator().manual_seed(0)).to(args.device)
    print(f"\nSpeed: s/MP on a {mosaic.shape[1]}x{mosaic.shape[0]} image; s for a 6000x4000 mosaic (ours)")
    header = f"{'method':<12}{'ours s/MP':>12}{'c-d s/MP':>12}{'speed-up':>10}{'ours 24 MP s':>14}"
    print(header)
    print("-" * len(header))
    for method in methods:
        t_ours = timed(lambda m=method: ours(mosaic, m, args.device), args.runs) / mp
        if method in REFERENCE:
            t_ref = timed(lambda m=method: REFERENCE[m](mosaic, "RGGB"), args.runs) / mp
            ref_s, up = f"{t_ref:12.3f}", f"{t_ref / t_ours:9.1f}x"
        else:
            ref_s, up = f"{'-':>12}", f"{'-':>10}"
        t_big = timed(lambda m=method: demosaic(big, cfa="RGGB", method=m), args.runs)
        print(f"{method:<12}{t_ours:12.3f}{ref_s}{up}{t_big:14.2f}")


def mosaic_rgb_np(rgb: np.ndarray) -> np.ndarray:
    """RGGB mosaic of an (H, W, 3) array, through obscura.core.cfa.mosaic_rgb."""
    return mosaic_rgb(torch.from_numpy(rgb).permute(2, 0, 1), cfa="RGGB").numpy()


if __name__ == "__main__":
    main()
