"""White balance: estimate the scene illuminant as a camera-RGB neutral, and apply the gains.

Every estimator takes a linear camera-RGB image (3, H, W) — in the pipeline a 2×2-binned
half-size image made from the mosaic (:func:`bin_mosaic_rgb`) — and returns the camera's response
to white as a (3,) tensor normalised to G = 1. Clipped and near-black pixels are left out.
These run on tensors inside the pipeline (any device), so they are written here.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch.nn import functional as F  # noqa: N812

from obscura.core.cfa import cfa_period, channel_of_sites
from obscura.core.errors import InvalidParameter, ShapeError
from obscura.core.registry import Registry
from obscura.core.types import RawMeta, validate_cfa
from obscura.core.validate import check_image, check_number

__all__ = [
    "AWB",
    "valid_mask",
    "bin_mosaic_rgb",
    "awb_as_shot",
    "awb_gray_world",
    "awb_white_patch",
    "awb_shades_of_gray",
    "awb_gray_edge",
    "estimate_neutral",
    "white_balance_gains",
    "apply_white_balance_mosaic",
    "angular_error",
]

AWB = Registry("white balance")


def _check_rgb(rgb: torch.Tensor, name: str = "rgb") -> torch.Tensor:
    return check_image(rgb, name=name, what="linear camera-RGB")


def _check_level(name: str, v: float, lo: float, hi: float) -> float:
    return check_number(name, v, lo, hi)


def _normalise(e: torch.Tensor) -> torch.Tensor:
    """Neutral with G = 1; a degenerate estimate (zero, negative, non-finite) becomes (1, 1, 1), without a sync."""
    n = e / e[1]
    good = torch.isfinite(n).all() & (n > 0).all()
    return torch.where(good, n, torch.ones_like(n))


def valid_mask(rgb: torch.Tensor, *, clip_level: float = 0.98, dark_level: float = 0.002) -> torch.Tensor:
    """(H, W) bool: pixels with no channel at or above ``clip_level`` and mean above ``dark_level``."""
    _check_rgb(rgb)
    return (rgb.amax(0) < clip_level) & (rgb.mean(0) > dark_level)


def bin_mosaic_rgb(mosaic: torch.Tensor, *, cfa: str) -> torch.Tensor:
    """A half-size RGB (3, H/2, W/2) from a Bayer mosaic, averaging the two greens of each 2×2 tile
    (Quad Bayer: (3, H/4, W/4), averaging the same-colour sites of each 4×4 tile)."""
    cfa = validate_cfa(cfa)
    if cfa == "":
        raise ShapeError("bin_mosaic_rgb needs a CFA mosaic; got cfa='' (a demosaiced frame)")
    n = cfa_period(cfa)
    if not isinstance(mosaic, torch.Tensor) or mosaic.ndim != 2 or mosaic.shape[0] % n or mosaic.shape[1] % n:
        shape = tuple(mosaic.shape) if isinstance(mosaic, torch.Tensor) else type(mosaic).__name__
        raise ShapeError(f"mosaic must be (H, W) with sides multiple of {n} for CFA {cfa}; got {shape}")
    x = mosaic if mosaic.is_floating_point() else mosaic.float()
    h, w = x.shape
    v = x.reshape(h // n, n, w // n, n)
    chans = channel_of_sites(cfa)
    out = torch.zeros(3, h // n, w // n, dtype=x.dtype, device=x.device)
    for site, c in enumerate(chans):
        out[c] += v[:, site // n, :, site % n]
    counts = torch.tensor([chans.count(c) for c in range(3)], dtype=x.dtype, device=x.device)
    return out / counts[:, None, None]


def _subsample(rgb: torch.Tensor, max_pixels: int) -> torch.Tensor:
    """A regular subsample (every f-th row and column) of at most ~``max_pixels`` pixels: global statistics
    need no more (the papers worked on images of well under a megapixel), and it keeps AWB fast."""
    max_pixels = int(max_pixels)
    if max_pixels < 1024:
        raise InvalidParameter(f"max_pixels must be at least 1024; got {max_pixels}")
    h, w = rgb.shape[-2:]
    f = math.ceil(math.sqrt(h * w / max_pixels))
    return rgb[:, ::f, ::f].contiguous() if f > 1 else rgb  # contiguous: the reductions below run ~10× faster


def _masked_values(rgb: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(3, N) values of the valid pixels; all pixels when none is valid."""
    flat = rgb.reshape(3, -1)
    m = mask.reshape(-1)
    sel = flat[:, m]
    return sel if sel.shape[1] > 0 else flat


@AWB.register("as_shot")
def awb_as_shot(rgb: torch.Tensor, *, meta: RawMeta | None = None, **fallback_options) -> torch.Tensor:
    """The camera's own estimate: AsShotNeutral, else the neutral of AsShotWhiteXY (DNG 1.4 §6),
    else gray world on ``rgb`` (with ``fallback_options``)."""
    _check_rgb(rgb)
    if meta is not None and meta.as_shot_neutral is not None:
        n = np.asarray(meta.as_shot_neutral, dtype=np.float64).reshape(-1)
        if n.shape != (3,) or not np.all(np.isfinite(n)) or not np.all(n > 0):
            raise InvalidParameter(f"meta.as_shot_neutral must be 3 positive values; got {meta.as_shot_neutral!r}")
        return torch.tensor(n / n[1], dtype=torch.float32, device=rgb.device)
    if meta is not None and meta.as_shot_white_xy is not None and meta.color_matrix1 is not None:
        from obscura.isp.colour import xy_to_neutral

        n = xy_to_neutral(meta.as_shot_white_xy, meta)
        return torch.tensor(n, dtype=torch.float32, device=rgb.device)
    return awb_gray_world(rgb, **fallback_options)


@AWB.register("gray_world")
def awb_gray_world(
    rgb: torch.Tensor,
    *,
    clip_level: float = 0.98,
    dark_level: float = 0.002,
    max_pixels: int = 1 << 20,
    meta: RawMeta | None = None,
) -> torch.Tensor:
    """Gray world (Buchsbaum 1980): the scene averages to grey, so the mean is the illuminant."""
    rgb = _subsample(_check_rgb(rgb), max_pixels)
    m = valid_mask(rgb, clip_level=clip_level, dark_level=dark_level)
    if not bool(m.any()):
        return _normalise(rgb.mean((1, 2)))
    w = m.to(rgb.dtype)
    return _normalise((rgb * w).sum((1, 2)) / w.sum())


@AWB.register("white_patch")
def awb_white_patch(
    rgb: torch.Tensor,
    *,
    percentile: float = 99.0,
    clip_level: float = 0.98,
    dark_level: float = 0.002,
    max_pixels: int = 1 << 20,
    meta: RawMeta | None = None,
) -> torch.Tensor:
    """White patch / max-RGB (Land 1977), made robust: the ``percentile`` of each channel over the
    unclipped pixels instead of the maximum (100 gives the maximum)."""
    rgb = _subsample(_check_rgb(rgb), max_pixels)
    q = _check_level("percentile", percentile, 50.0, 100.0)
    v = _masked_values(rgb, valid_mask(rgb, clip_level=clip_level, dark_level=dark_level))
    if q >= 100.0:
        return _normalise(v.amax(1))
    n = v.shape[1]
    # k-th order statistic (kthvalue is much faster than quantile's full sort on millions of pixels)
    k = min(max(math.ceil(q / 100.0 * n), 1), n)
    return _normalise(torch.kthvalue(v, k, dim=1).values)


def _minkowski_mean_masked(x: torch.Tensor, mask: torch.Tensor, p: float) -> torch.Tensor:
    """(mean |x|^p)^(1/p) per channel over the pixels of (3, H, W) ``x`` where ``mask`` (H, W) holds (all
    when none); scaled by the channel maximum first so that a large p cannot underflow."""
    if not bool(mask.any()):
        mask = torch.ones_like(mask)
    m = mask.to(x.dtype)
    a = x.abs() * m
    if math.isinf(p):
        return a.amax((1, 2))
    s = a.amax((1, 2), keepdim=True).clamp_min(torch.finfo(a.dtype).tiny)
    return ((a / s).pow_(p).sum((1, 2)) / m.sum()).pow(1.0 / p) * s[:, 0, 0]


@AWB.register("shades_of_gray")
def awb_shades_of_gray(
    rgb: torch.Tensor,
    *,
    p: float = 6.0,
    clip_level: float = 0.98,
    dark_level: float = 0.002,
    max_pixels: int = 1 << 20,
    meta: RawMeta | None = None,
) -> torch.Tensor:
    """Shades of gray (Finlayson & Trezzi 2004): the Minkowski p-norm mean of each channel.

    p = 1 is gray world, p → ∞ is max-RGB (white patch); p = 6 is the paper's recommendation.
    """
    rgb = _subsample(_check_rgb(rgb), max_pixels)
    p = float(p)
    if not p >= 1.0:
        raise InvalidParameter(f"p must be >= 1 (the Minkowski norm); got {p}")
    m = valid_mask(rgb, clip_level=clip_level, dark_level=dark_level)
    return _normalise(_minkowski_mean_masked(rgb, m, p))


def _gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (C, H, W), edge-replicated, as weighted sums of shifted slices
    (much faster on the CPU than a depthwise conv2d with a 1-D kernel)."""
    if sigma <= 0:
        return x
    r = max(1, math.ceil(3.0 * sigma))
    k = [math.exp(-0.5 * (i / sigma) ** 2) for i in range(-r, r + 1)]
    k = [v / sum(k) for v in k]
    h, w = x.shape[-2:]
    y = F.pad(x[None], (r, r, 0, 0), mode="replicate")[0]
    acc = y[..., :, 0:w] * k[0]
    for i in range(1, 2 * r + 1):
        acc.add_(y[..., :, i : i + w], alpha=k[i])
    y = F.pad(acc[None], (0, 0, r, r), mode="replicate")[0]
    out = y[..., 0:h, :] * k[0]
    for i in range(1, 2 * r + 1):
        out.add_(y[..., i : i + h, :], alpha=k[i])
    return out


@AWB.register("gray_edge")
def awb_gray_edge(
    rgb: torch.Tensor,
    *,
    order: int = 1,
    p: float = 6.0,
    sigma: float = 1.0,
    clip_level: float = 0.98,
    dark_level: float = 0.002,
    max_pixels: int = 1 << 20,
    meta: RawMeta | None = None,
) -> torch.Tensor:
    """Gray edge (van de Weijer, Gevers & Gijsenij 2007): the Minkowski p-norm of the ``order``-th
    (1 or 2) Gaussian derivative (scale ``sigma``) of each channel is the illuminant colour.

    Derivatives are finite differences of the Gaussian-smoothed image; pixels next to clipped ones
    (within the derivative's reach) are left out.
    """
    rgb = _subsample(_check_rgb(rgb), max_pixels)
    if order not in (1, 2):
        raise InvalidParameter(f"order must be 1 or 2; got {order!r}")
    p = float(p)
    if not p >= 1.0:
        raise InvalidParameter(f"p must be >= 1 (the Minkowski norm); got {p}")
    sigma = _check_level("sigma", sigma, 0.0, 20.0)
    if rgb.shape[1] < 3 or rgb.shape[2] < 3:
        raise ShapeError(f"gray_edge needs an image of at least 3x3 pixels; got {tuple(rgb.shape)}")
    s = _gaussian_blur(rgb, sigma)
    if order == 1:  # central differences (×2; a common scale cancels), interior pixels
        dx = s[:, 1:-1, 2:] - s[:, 1:-1, :-2]
        dy = s[:, 2:, 1:-1] - s[:, :-2, 1:-1]
        mag2 = dx * dx + dy * dy
    else:
        c = s[:, 1:-1, 1:-1]
        dxx = s[:, 1:-1, 2:] - 2 * c + s[:, 1:-1, :-2]
        dyy = s[:, 2:, 1:-1] - 2 * c + s[:, :-2, 1:-1]
        dxy = (s[:, 2:, 2:] - s[:, 2:, :-2] - s[:, :-2, 2:] + s[:, :-2, :-2]) / 4
        mag2 = dxx * dxx + dyy * dyy + 2 * dxy * dxy
    mag = mag2.sqrt_()
    # leave out pixels whose neighbourhood (derivative support) touches a clipped pixel
    clipped = rgb.amax(0) >= clip_level
    ok = rgb.mean(0) > dark_level
    if bool(clipped.any()):
        reach = max(1, math.ceil(3.0 * sigma)) + 1
        c = clipped.to(rgb.dtype)[None, None]
        c = F.max_pool2d(c, (1, 2 * reach + 1), stride=1, padding=(0, reach))
        c = F.max_pool2d(c, (2 * reach + 1, 1), stride=1, padding=(reach, 0))
        ok = ok & (c[0, 0] == 0)
    return _normalise(_minkowski_mean_masked(mag, ok[1:-1, 1:-1], p))


def estimate_neutral(
    rgb: torch.Tensor, *, method: str = "gray_world", meta: RawMeta | None = None, **options
) -> torch.Tensor:
    """The camera neutral (3,) (G = 1) of linear camera RGB ``rgb`` (3, H, W) by ``method``
    (as_shot, gray_world, white_patch, shades_of_gray, gray_edge)."""
    return AWB.get(method)(rgb, meta=meta, **options)


def white_balance_gains(neutral: torch.Tensor) -> torch.Tensor:
    """Per-channel gains that make the neutral white: 1 / neutral."""
    if not isinstance(neutral, torch.Tensor):
        neutral = torch.as_tensor(np.asarray(neutral, dtype=np.float32))
    if neutral.shape != (3,):
        raise ShapeError(f"neutral must be a (3,) tensor; got {tuple(neutral.shape)}")
    if not bool(((neutral > 0) & torch.isfinite(neutral)).all()):
        raise InvalidParameter(f"neutral must be positive and finite; got {neutral.tolist()}")
    return 1.0 / neutral


def apply_white_balance_mosaic(mosaic: torch.Tensor, gains: torch.Tensor, *, cfa: str) -> torch.Tensor:
    """Multiply each CFA site of the mosaic (H, W) by its channel's gain (a new tensor)."""
    cfa = validate_cfa(cfa)
    if cfa == "":
        raise ShapeError("apply_white_balance_mosaic needs a CFA mosaic; got cfa=''")
    n = cfa_period(cfa)
    if not isinstance(mosaic, torch.Tensor) or mosaic.ndim != 2 or mosaic.shape[0] % n or mosaic.shape[1] % n:
        shape = tuple(mosaic.shape) if isinstance(mosaic, torch.Tensor) else type(mosaic).__name__
        raise ShapeError(f"mosaic must be (H, W) with sides multiple of {n} for CFA {cfa}; got {shape}")
    if not isinstance(gains, torch.Tensor):
        gains = torch.as_tensor(np.asarray(gains, dtype=np.float32))
    if gains.shape != (3,):
        raise ShapeError(f"gains must be a (3,) tensor; got {tuple(gains.shape)}")
    x = mosaic if mosaic.is_floating_point() else mosaic.float()
    g = gains.to(device=x.device, dtype=x.dtype)
    tile = g[torch.tensor(channel_of_sites(cfa), device=x.device)].reshape(n, n)
    h, w = x.shape
    rows = tile.repeat(1, w // n)  # (n, W): the gain of every column for each row phase
    return (x.reshape(h // n, n, w) * rows[None]).reshape(h, w)


def angular_error(a: torch.Tensor, b: torch.Tensor) -> float:
    """Angle in degrees between two RGB illuminant estimates (the usual AWB error measure)."""
    a = torch.as_tensor(a, dtype=torch.float64).reshape(-1)
    b = torch.as_tensor(b, dtype=torch.float64).reshape(-1).to(a.device)
    if a.shape != (3,) or b.shape != (3,):
        raise ShapeError(f"angular_error needs two (3,) vectors; got {tuple(a.shape)} and {tuple(b.shape)}")
    c = torch.dot(a, b) / (a.norm() * b.norm())
    return float(torch.rad2deg(torch.arccos(c.clamp(-1.0, 1.0))))
