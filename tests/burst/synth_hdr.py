"""Synthetic raw exposure brackets with exact ground truth, for the HDR tests.

The scene is linear RGB radiance in **reference units** (the 0 EV frame's white = 1.0): a neutral step
chart of 24 patches spread evenly over 17 stops (2^1.75 down to 2^−15.25), above a band of texture (a
procedural multi-scale texture spread over 2^−8 … 2^1.5 by a horizontal gain ramp). Each bracket at
``ev`` sees ``scene · 2^ev`` (exposure time 2^ev/100 s at ISO 100, f/8), with Poisson–Gaussian noise of
normalized variance a·x + b, clipped at white, mosaicked with :func:`obscura.core.cfa.mosaic_rgb` and
quantized to 14 bits (black 512, white 16383).

Dynamic range (the definition the tests use): a patch is *recorded* when its mean (over its green CFA
sites, a 4-pixel margin inside the patch excluded) is within 10 % of the truth (not clipped) and its SNR
= truth / RMS error against the truth is ≥ 1; the dynamic range is log2 of the brightest recorded
patch's radiance over the darkest's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.nn import functional as F  # noqa: N812

from obscura.core.cfa import cfa_masks, mosaic_rgb
from obscura.core.types import Burst, RawMeta

__all__ = ["HdrScene", "SynthBrackets", "make_hdr_scene", "make_brackets", "dynamic_range", "patch_stats"]

N_PATCHES = 24
TOP_STOP = 1.75
SPAN_STOPS = 17.0
WHITE, BLACK = 16383, 512


@dataclass(frozen=True)
class HdrScene:
    rgb: torch.Tensor  # (3, H, W) linear radiance, reference units
    boxes: tuple[tuple[int, int, int, int], ...]  # (y0, y1, x0, x1) of each patch
    values: tuple[float, ...]  # radiance of each patch


@dataclass(frozen=True)
class SynthBrackets:
    burst: Burst
    scene: HdrScene  # as seen by the reference frame (its crop)
    evs: tuple[float, ...]
    shifts: tuple[tuple[int, int], ...]  # (dy, dx): frame i shows at p + (dy, dx) what the reference shows at p
    a: float
    b: float


def _texture(h: int, w: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    img = torch.zeros(3, h, w)
    for scale, amp in ((16, 0.5), (4, 0.3), (1, 0.2)):
        n = torch.rand(3, h // scale + 2, w // scale + 2, generator=g)
        img += amp * F.interpolate(n[None], size=(h, w), mode="bicubic", align_corners=False)[0]
    return ((img - img.min()) / (img.max() - img.min())).clamp(0, 1)


def make_hdr_scene(h: int = 256, w: int = 384, *, seed: int = 0) -> HdrScene:
    """The chart (top 3/4: 4 rows × 6 columns of patches) and the texture band (bottom 1/4)."""
    rows, cols = 4, 6
    ch = (h * 3 // 4) // rows * rows
    ph, pw = ch // rows, w // cols
    rgb = torch.zeros(3, h, w)
    boxes, values = [], []
    for i in range(N_PATCHES):
        r, c = divmod(i, cols)
        v = 2.0 ** (TOP_STOP - SPAN_STOPS * i / (N_PATCHES - 1))
        y0, x0 = r * ph, c * pw
        rgb[:, y0 : y0 + ph, x0 : x0 + pw] = v
        boxes.append((y0, y0 + ph, x0, x0 + pw))
        values.append(v)
    tex = _texture(h - ch, w, seed)
    gain = 2.0 ** torch.linspace(-8.0, 1.5, w)
    rgb[:, ch:, :] = (0.05 + 0.95 * tex) * gain
    return HdrScene(rgb, tuple(boxes), tuple(values))


def make_brackets(
    evs: tuple[float, ...] = (-2.0, 0.0, 2.0),
    size: tuple[int, int] = (256, 384),
    *,
    cfa: str = "RGGB",
    a: float = 2e-4,
    b: float = 1e-6,
    shifts: tuple[tuple[int, int], ...] | None = None,
    ghost: tuple[int, tuple[int, int, int, int], float] | None = None,
    reference: int | None = None,
    seed: int = 0,
    iso: float = 100.0,
    make: str = "Obscura",
    model: str = "SynthHDR",
) -> SynthBrackets:
    """Brackets of the scene at ``evs`` (see the module docstring).

    ``shifts[i] = (dy, dx)`` integer raw pixels (frame i shows at p + (dy, dx) what the reference shows at p);
    ``ghost = (frame, (y0, y1, x0, x1), value)`` paints a square of radiance ``value`` into one frame only
    (a moving object). ``reference`` (default: the 0 EV frame, else the middle one) is the frame whose
    crop the returned scene is.
    """
    h, w = size
    n = len(evs)
    if reference is None:
        reference = evs.index(0.0) if 0.0 in evs else (n - 1) // 2
    shifts = shifts or ((0, 0),) * n
    m = 2 * max(max(abs(dy), abs(dx)) for dy, dx in shifts) + 2
    chart = make_hdr_scene(h, w, seed=seed)
    big_rgb = F.pad(chart.rgb[None], (m, m, m, m), mode="replicate")[0]
    g = torch.Generator().manual_seed(seed + 1)
    rdy, rdx = shifts[reference]

    def crop(x: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
        # frame i shows at q what the reference shows at q − (dy − rdy, dx − rdx): its window starts there
        oy, ox = m - (dy - rdy), m - (dx - rdx)
        return x[..., oy : oy + h, ox : ox + w]

    frames, metas = [], []
    for i, ev in enumerate(evs):
        rgb = crop(big_rgb, *shifts[i]).clone()
        if ghost is not None and ghost[0] == i:
            y0, y1, x0, x1 = ghost[1]
            rgb[:, y0:y1, x0:x1] = ghost[2]
        clean = mosaic_rgb(rgb, cfa=cfa).double() * 2.0**ev
        noisy = a * torch.poisson(clean / a, generator=g) + math.sqrt(b) * torch.randn(
            clean.shape, generator=g, dtype=torch.float64
        )
        raw = torch.round(noisy.clamp(max=1.0) * (WHITE - BLACK) + BLACK).clamp(0, WHITE)
        frames.append(raw.to(torch.float32))
        metas.append(
            RawMeta(
                cfa=cfa,
                black_level=(float(BLACK),) * 4,
                white_level=float(WHITE),
                noise_profile=((a, b),) * 3,
                exposure_time=2.0**ev / 100.0,
                iso=iso,
                f_number=8.0,
                make=make,
                model=model,
            )
        )
    scene = HdrScene(crop(big_rgb, *shifts[reference]).clone(), chart.boxes, chart.values)
    return SynthBrackets(Burst(torch.stack(frames), tuple(metas)), scene, tuple(evs), tuple(shifts), a, b)


def patch_stats(x: torch.Tensor, scene: HdrScene, *, cfa: str, margin: int = 4) -> list[tuple[float, float, float]]:
    """(truth, mean, rms error) of each patch over its green CFA sites of the (H, W) mosaic ``x``
    (reference units), patches cut by the frame border skipped (mean NaN)."""
    h, w = x.shape
    green = cfa_masks(cfa, h, w)[1].bool()
    out = []
    for (y0, y1, x0, x1), v in zip(scene.boxes, scene.values, strict=True):
        y0, y1, x0, x1 = max(y0 + margin, 0), min(y1 - margin, h), max(x0 + margin, 0), min(x1 - margin, w)
        if y1 - y0 < 8 or x1 - x0 < 8:
            out.append((v, float("nan"), float("nan")))
            continue
        vals = x[y0:y1, x0:x1][green[y0:y1, x0:x1]].double()
        out.append((v, float(vals.mean()), float((vals - v).square().mean().sqrt())))
    return out


def dynamic_range(x: torch.Tensor, scene: HdrScene, *, cfa: str) -> float:
    """Dynamic range in stops of the mosaic ``x`` (reference units), by the module docstring's definition."""
    rec = [t for t, m, r in patch_stats(x, scene, cfa=cfa) if abs(m / t - 1) <= 0.1 and t / max(r, 1e-30) >= 1.0]
    if not rec:
        return 0.0
    return math.log2(max(rec) / min(rec))
