"""Synthetic raw bursts with exact ground truth, for the burst tests.

A linear RGB scene (a Kodak image made linear with the inverse sRGB curve, or a procedural texture when
the shared data are absent) is held at 2× the raw resolution. Each frame samples it with a sub-pixel
translation (and an optional small rotation) by bicubic interpolation on the 2× grid followed by a 2×2
box average (pixel integration), so every frame is an exact translate of one continuous image. It is
mosaicked with :func:`obscura.core.cfa.mosaic_rgb`, given Poisson–Gaussian noise of variance a·x + b
(seeded torch.Generator), and quantized to a white level with a black level.

Shift convention: ``shifts[n] = (dy, dx)`` means frame n shows at raw pixel p + (dy, dx) what the
reference frame shows at p, i.e. the motion field :func:`obscura.burst.align.align_burst` must find.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F  # noqa: N812

from obscura.core.cfa import mosaic_rgb
from obscura.core.colour import srgb_decode
from obscura.core.types import Burst, RawMeta

__all__ = ["SynthBurst", "default_data_dir", "make_scene", "make_burst", "psnr"]


def default_data_dir() -> Path | None:
    """The shared test data folder when present (else the scenes are procedural)."""
    from tests.conftest import shared_data_dir

    return shared_data_dir()


@dataclass(frozen=True)
class SynthBurst:
    burst: Burst
    clean: torch.Tensor  # (N, H, W) noise-free mosaics, normalized to [0, 1]
    shifts: torch.Tensor  # (N, 2) true (dy, dx) of each frame relative to the reference, raw pixels
    rotations: torch.Tensor  # (N,) radians, about the image centre
    masks: torch.Tensor  # (N, H, W) bool, where the moving object is in each frame
    reference: int
    a: float
    b: float


def psnr(x: torch.Tensor, ref: torch.Tensor, *, data_range: float) -> float:
    """PSNR in dB with an explicit data range."""
    mse = float(torch.mean((x.double() - ref.double()) ** 2))
    return 10.0 * math.log10(data_range**2 / max(mse, 1e-30))


def _procedural(h: int, w: int, seed: int) -> torch.Tensor:
    """Multi-scale coloured noise plus a few sharp-edged rectangles, linear values in about [0.02, 0.9]."""
    g = torch.Generator().manual_seed(seed)
    img = torch.zeros(3, h, w)
    for scale, amp in ((48, 0.5), (16, 0.3), (6, 0.2)):
        n = torch.rand(3, h // scale + 2, w // scale + 2, generator=g)
        img += amp * F.interpolate(n[None], size=(h, w), mode="bicubic", align_corners=False)[0]
    for _ in range(12):
        y0, x0 = (int(v) for v in torch.randint(0, min(h, w) - 8, (2,), generator=g))
        hh, ww = (int(v) for v in torch.randint(8, min(h, w) // 3, (2,), generator=g))
        img[:, y0 : y0 + hh, x0 : x0 + ww] = torch.rand(3, 1, 1, generator=g)
    return (0.02 + 0.88 * (img - img.min()) / (img.max() - img.min())).clamp(0, 1)


def _blur(img: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of a (3, h, w) image, replicate borders."""
    r = max(1, math.ceil(3 * sigma))
    k = torch.exp(-0.5 * (torch.arange(-r, r + 1, dtype=torch.float32) / sigma) ** 2)
    k = (k / k.sum()).reshape(1, 1, 1, -1).repeat(3, 1, 1, 1)
    f = F.conv2d(F.pad(img[None], (r, r, 0, 0), mode="replicate"), k, groups=3)
    return F.conv2d(F.pad(f, (0, 0, r, r), mode="replicate"), k.transpose(-1, -2), groups=3)[0]


def make_scene(h: int, w: int, *, image: str | None = "kodim01", data_dir: Path | None = None, seed: int = 0):
    """(3, h, w) linear RGB scene: a Kodak image (centre crop, resized) or a procedural texture."""
    if image is not None and data_dir is not None:
        path = Path(data_dir) / "images" / "kodak24" / f"{image}.png"
        if path.is_file():
            from PIL import Image as PILImage

            arr = np.asarray(PILImage.open(path).convert("RGB"), dtype=np.float32) / 255.0
            t = srgb_decode(torch.from_numpy(arr).permute(2, 0, 1).contiguous())
            H, W = t.shape[1:]
            s = min(H / h, W / w)
            ch, cw = round(h * s), round(w * s)
            t = t[:, (H - ch) // 2 : (H - ch) // 2 + ch, (W - cw) // 2 : (W - cw) // 2 + cw]
            t = F.interpolate(t[None], size=(h, w), mode="bicubic", align_corners=False, antialias=True)[0]
            return (0.02 + 0.9 * t).clamp(0, 1)
    return _procedural(h, w, seed)


def _sample(scene2: torch.Tensor, out_hw: tuple[int, int], dy: float, dx: float, rot: float, margin: int):
    """Frame at raw resolution: bicubic samples of the 2× scene at the moved grid, then a 2×2 box average."""
    h, w = out_hw
    H2, W2 = scene2.shape[-2:]
    yy, xx = torch.meshgrid(
        torch.arange(2 * h, dtype=torch.float64), torch.arange(2 * w, dtype=torch.float64), indexing="ij"
    )
    # frame pixel q shows scene point R(−rot)(q − c) + c − s: a scene moved by +s and rotated by rot
    cy, cx = h - 0.5, w - 0.5
    c, s = math.cos(rot), math.sin(rot)
    ry, rx = yy - cy, xx - cx
    sy = c * ry - s * rx + cy - 2 * dy + 2 * margin
    sx = s * ry + c * rx + cx - 2 * dx + 2 * margin
    grid = torch.stack([2 * sx / (W2 - 1) - 1, 2 * sy / (H2 - 1) - 1], dim=-1).to(torch.float32)
    out = F.grid_sample(scene2[None], grid[None], mode="bicubic", padding_mode="border", align_corners=True)
    return F.avg_pool2d(out, 2)[0]


def make_burst(
    n: int = 8,
    size: tuple[int, int] = (256, 256),
    *,
    cfa: str = "RGGB",
    a: float = 8e-3,
    b: float = 2e-4,
    white: int = 1023,
    black: int = 64,
    max_shift: float = 3.0,
    shifts: torch.Tensor | None = None,
    rotation: float = 0.0,
    moving_object: bool = False,
    object_step: tuple[float, float] = (3.0, 4.0),
    hot_pixels: tuple[tuple[int, int], ...] = (),
    reference: int = 0,
    blur_frames: tuple[int, ...] = (),
    image: str | None = "kodim01",
    data_dir: Path | None = None,
    seed: int = 0,
    psf_sigma: float = 0.0,
    make: str = "Obscura",
    model: str = "Synth",
) -> SynthBurst:
    """A handheld-like burst with exact ground truth (see the module docstring).

    ``rotation`` is the largest per-frame rotation (radians); ``blur_frames`` get a Gaussian blur
    (σ = 1.5 raw px) to test the reference choice; ``hot_pixels`` are stuck at white in every frame;
    ``psf_sigma`` (raw pixels) is a Gaussian lens blur applied to the scene (a sharp lens is ≈ 0.5–1).
    """
    h, w = size
    g = torch.Generator().manual_seed(seed)
    margin = math.ceil(max_shift + abs(rotation) * max(h, w)) + 8
    scene2 = make_scene(2 * (h + 2 * margin), 2 * (w + 2 * margin), image=image, data_dir=data_dir, seed=seed)
    if psf_sigma > 0:
        scene2 = _blur(scene2, 2.0 * psf_sigma)
    if shifts is None:
        shifts = (torch.rand(n, 2, generator=g, dtype=torch.float64) * 2 - 1) * max_shift
    shifts = shifts.to(torch.float64).clone()
    shifts -= shifts[reference].clone()
    rots = (torch.rand(n, generator=g, dtype=torch.float64) * 2 - 1) * rotation
    rots -= rots[reference].clone()

    obj = obj_alpha = None
    if moving_object:
        oh, ow = h // 4, w // 4
        obj = make_scene(2 * oh, 2 * ow, image=None, seed=seed + 99)
        yy, xx = torch.meshgrid(torch.arange(2 * oh), torch.arange(2 * ow), indexing="ij")
        obj_alpha = ((((yy - oh + 0.5) / oh) ** 2 + ((xx - ow + 0.5) / ow) ** 2) <= 1.0).float()
        # an ellipse moving in steps of object_step raw pixels per frame, starting near the centre
        obj = obj.flip(-1)

    clean, masks = [], []
    for i in range(n):
        dy, dx = float(shifts[i, 0]), float(shifts[i, 1])
        f = _sample(scene2, (h, w), dy, dx, float(rots[i]), margin)
        m = torch.zeros(h, w, dtype=torch.bool)
        if obj is not None and obj_alpha is not None:
            t = i - reference
            oy = h // 2 - h // 8 + round(t * object_step[0] - 2 * object_step[0])
            ox = w // 2 - w // 8 + round(t * object_step[1] - 2 * object_step[1])
            oh, ow = obj.shape[1] // 2, obj.shape[2] // 2
            y0, x0 = max(oy, 0), max(ox, 0)
            y1, x1 = min(oy + oh, h), min(ox + ow, w)
            al = F.avg_pool2d(obj_alpha[None, None], 2)[0, 0][y0 - oy : y1 - oy, x0 - ox : x1 - ox]
            ob = F.avg_pool2d(obj[None], 2)[0][:, y0 - oy : y1 - oy, x0 - ox : x1 - ox]
            f[:, y0:y1, x0:x1] = al * ob + (1 - al) * f[:, y0:y1, x0:x1]
            m[y0:y1, x0:x1] = al > 0
        if i in blur_frames:
            f = _blur(f, 1.5)
        clean.append(mosaic_rgb(f.clamp(0, 1), cfa=cfa))
        masks.append(m)
    clean_t = torch.stack(clean)
    # Poisson–Gaussian noise: a·Poisson(x/a) has variance a·x; plus Gaussian of variance b
    noisy = a * torch.poisson(clean_t.double() / a, generator=g) + math.sqrt(b) * torch.randn(
        clean_t.shape, generator=g, dtype=torch.float64
    )
    raw = torch.round(noisy * (white - black) + black).clamp(0, white)
    for r, c in hot_pixels:
        raw[:, r, c] = white
    meta = RawMeta(
        cfa=cfa,
        black_level=(float(black),) * 4,
        white_level=float(white),
        noise_profile=((a, b),) * 3,
        make=make,
        model=model,
        iso=3200.0,
    )
    burst = Burst(raw.to(torch.float32), (meta,) * n)
    return SynthBurst(
        burst=burst,
        clean=clean_t,
        shifts=shifts.to(torch.float32),
        rotations=rots.to(torch.float32),
        masks=torch.stack(masks),
        reference=reference,
        a=a,
        b=b,
    )
