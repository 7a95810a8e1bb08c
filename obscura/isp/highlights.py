"""Highlight handling on white-balanced camera RGB (3, H, W) whose channels clipped at known levels.

After white balance each channel saturates at its own level (white level 1 × that channel's gain),
so a clipped white turns magenta unless something is done. ``saturation`` is that per-channel
(3,) level in the image's units. Methods:

- ``clip``: clip every channel at the lowest saturation, so clipped whites stay neutral (LibRaw's default).
- ``blend``: keep each clipped pixel's luminance but give it the chroma of its clipped version
  (the luma/chroma blend of dcraw/LibRaw ``-H 2``, re-derived here), faded in near saturation.
- ``reconstruct``: estimate clipped channels from the unclipped ones with the channel ratios of nearby
  unclipped pixels, propagated into large clipped areas by push-pull (Gortler et al. 1996) on a
  coarse grid; pixels with every channel clipped become neutral at the highest saturation.

Work is done only at (or near) clipped pixels; an image without any is returned as it is.
These run on tensors inside the pipeline, so they are written here.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F  # noqa: N812

from obscura.core.errors import InvalidParameter, ShapeError
from obscura.core.registry import Registry

__all__ = [
    "HIGHLIGHTS",
    "clipped_mask",
    "highlights_clip",
    "highlights_blend",
    "highlights_reconstruct",
    "reconstruct_highlights",
]

HIGHLIGHTS = Registry("highlights")

_MAX_BOOST = 4.0  # "reconstruct" never makes a channel brighter than this × the highest saturation


def _check(rgb: torch.Tensor, saturation: torch.Tensor | tuple[float, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    if not isinstance(rgb, torch.Tensor) or rgb.ndim != 3 or rgb.shape[0] != 3:
        shape = tuple(rgb.shape) if isinstance(rgb, torch.Tensor) else type(rgb).__name__
        raise ShapeError(f"rgb_wb must be a white-balanced camera RGB tensor (3, H, W); got {shape}")
    if not rgb.is_floating_point():
        raise ShapeError(f"rgb_wb must be a floating-point tensor; got {rgb.dtype}")
    sat = torch.as_tensor(saturation, dtype=rgb.dtype).reshape(-1)
    if sat.shape != (3,):
        raise ShapeError(f"saturation must hold 3 per-channel levels; got {tuple(sat.shape)}")
    if not bool(((sat > 0) & torch.isfinite(sat)).all()):
        raise InvalidParameter(f"saturation levels must be positive and finite; got {sat.tolist()}")
    return rgb, sat.to(rgb.device)


def _threshold(threshold: float) -> float:
    t = float(threshold)
    if not (0.5 <= t <= 1.0):
        raise InvalidParameter(f"threshold must be in [0.5, 1] (a fraction of the saturation); got {t}")
    return t


def clipped_mask(rgb_wb: torch.Tensor, *, saturation: torch.Tensor, threshold: float = 0.99) -> torch.Tensor:
    """(3, H, W) bool: where each channel is at or above ``threshold`` × its saturation level."""
    rgb, sat = _check(rgb_wb, saturation)
    return rgb >= (_threshold(threshold) * sat)[:, None, None]


@HIGHLIGHTS.register("clip")
def highlights_clip(rgb_wb: torch.Tensor, *, saturation: torch.Tensor) -> torch.Tensor:
    """Clip all channels at the lowest saturation level: clipped whites stay white (LibRaw's default)."""
    rgb, sat = _check(rgb_wb, saturation)
    return rgb.clamp(max=float(sat.min()))


def _cell_reduce(x: torch.Tensor, cell: int, op: str) -> torch.Tensor:
    """Per-cell max or mean of (C, H, W) over ``cell`` × ``cell`` blocks (edge-replicated to whole cells).

    Rows are reduced first, then columns: on the CPU this is about twice as fast as max_pool2d."""
    c, h, w = x.shape
    gh, gw = -(-h // cell), -(-w // cell)
    if gh * cell != h or gw * cell != w:
        x = F.pad(x[None], (0, gw * cell - w, 0, gh * cell - h), mode="replicate")[0]
    v = x.reshape(c, gh, cell, gw * cell)
    if op == "max":
        return v.amax(2).reshape(c, gh, gw, cell).amax(3)
    return v.mean(2).reshape(c, gh, gw, cell).mean(3)


def _cells_at_or_above(rgb: torch.Tensor, level: torch.Tensor, cell: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Per-cell channel maxima (3, gh, gw) and the flat pixel indices of the cells (``cell`` × ``cell``)
    holding a pixel with some channel at or above ``level`` (3,): one pass over the image, the rest of
    the work is done on those pixels only. The indices are None when so many cells qualify that working
    on the whole image is cheaper. Border cells repeat edge indices (harmless)."""
    h, w = rgb.shape[-2:]
    cmax = _cell_reduce(rgb, cell, "max")
    hot = (cmax >= level[:, None, None]).any(0)
    cells = torch.nonzero(hot)
    if cells.shape[0] > 0.3 * hot.numel():
        return cmax, None
    r = torch.arange(cell, device=rgb.device)
    rows = (cells[:, 0:1] * cell + r[None]).clamp(max=h - 1)  # (K, cell)
    cols = (cells[:, 1:2] * cell + r[None]).clamp(max=w - 1)
    idx = rows[:, :, None] * w + cols[:, None, :]
    return cmax, idx.reshape(-1)


@HIGHLIGHTS.register("blend")
def highlights_blend(
    rgb_wb: torch.Tensor, *, saturation: torch.Tensor, threshold: float = 0.99, soft: float = 0.1
) -> torch.Tensor:
    """Luma/chroma blend (after dcraw/LibRaw's highlight mode 2; Coffin 1997): a pixel near clipping keeps
    its luminance (mean of the channels, which keeps rising where a channel clipped) and takes the chroma
    magnitude of the same pixel clipped at the lowest saturation, so clipped whites turn neutral, never
    magenta. The effect fades in over the ``soft`` fraction below ``threshold`` × saturation."""
    rgb, sat = _check(rgb_wb, saturation)
    t = _threshold(threshold)
    soft = float(soft)
    if not (0.0 <= soft < t):
        raise InvalidParameter(f"soft must be in [0, threshold); got {soft}")
    start = t - soft
    _, idx = _cells_at_or_above(rgb, start * sat, 16)
    if idx is not None and idx.numel() == 0:
        return rgb.clone()
    flat = rgb.reshape(3, -1)
    x = flat if idx is None else flat.index_select(1, idx)
    # luma = mean of the channels; chroma = the deviation from it (LibRaw's luma/chroma axes are an
    # orthogonal basis of that deviation, so scaling their magnitude is scaling the deviation)
    clipped = x.clamp(max=float(sat.min()))
    lum = x.mean(0, keepdim=True)
    dx = x - lum
    dc = clipped - clipped.mean(0, keepdim=True)
    nx = dx.pow(2).sum(0, keepdim=True).sqrt()
    nc = dc.pow(2).sum(0, keepdim=True).sqrt()
    blended = lum + dx * (nc / nx.clamp_min(1e-12))
    ratio = (x / sat[:, None]).amax(0)
    w = ((ratio - start) / max(soft, 1e-6)).clamp(0.0, 1.0) if soft > 0 else (ratio >= t).to(x.dtype)
    w = w * w * (3.0 - 2.0 * w)  # smoothstep
    new = x + (blended - x) * w
    if idx is None:
        return new.reshape(rgb.shape)
    return flat.clone().index_copy_(1, idx, new).reshape(rgb.shape)


def _push_pull(values: torch.Tensor, weight: torch.Tensor, *, saturate: float = 1.0) -> torch.Tensor:
    """Fill (C, h, w) ``values`` where ``weight`` (1, h, w) is small from coarser levels
    (push-pull interpolation; Gortler, Grzeszczuk, Szeliski & Cohen 1996)."""
    if min(values.shape[-2:]) <= 1:
        total = weight.sum()
        mean = (values * weight).sum((1, 2), keepdim=True) / total.clamp_min(1e-12)
        return torch.where(weight > 0, values, mean.expand_as(values))
    vw = F.avg_pool2d((values * weight)[None], 2, ceil_mode=True)[0]
    ww = F.avg_pool2d(weight[None], 2, ceil_mode=True)[0]
    coarse = _push_pull(vw / ww.clamp_min(1e-12), ww, saturate=saturate)
    up = F.interpolate(coarse[None], size=values.shape[-2:], mode="bilinear", align_corners=False)[0]
    a = (weight / saturate).clamp(max=1.0)
    return a * values + (1.0 - a) * up


@HIGHLIGHTS.register("reconstruct")
def highlights_reconstruct(
    rgb_wb: torch.Tensor,
    *,
    saturation: torch.Tensor,
    threshold: float = 0.99,
    cell: int = 8,
    dark: float = 0.02,
) -> torch.Tensor:
    """Rebuild clipped channels from unclipped ones with the colour ratios of nearby unclipped pixels.

    The image is averaged on a ``cell``-pixel grid; the cells without any clipped pixel (and not darker
    than ``dark`` × the lowest saturation) are kept and push-pull fills the others, so each
    clipped pixel gets the channel ratios of its nearest unclipped surroundings. A clipped channel c is
    then max(its value, Σ_k x_k · ratio_ck · x_k / Σ_k x_k) over the unclipped channels k. Pixels with all
    channels clipped take the local colour at the least level where every channel is clipped (neutral at
    the highest saturation when the surroundings are white). Rebuilt values are capped at 4 × the highest
    saturation.
    """
    rgb, sat = _check(rgb_wb, saturation)
    t = _threshold(threshold)
    cell = int(cell)
    if not (1 <= cell <= 256):
        raise InvalidParameter(f"cell must be in [1, 256] pixels; got {cell}")
    if not (0.0 <= float(dark) < 1.0):
        raise InvalidParameter(f"dark must be in [0, 1); got {dark}")
    level = t * sat
    cmax, idx = _cells_at_or_above(rgb, level, cell)
    if idx is not None and idx.numel() == 0:
        return rgb.clone()
    h, w = rgb.shape[-2:]
    if idx is None:
        idx = torch.arange(h * w, device=rgb.device)

    # Colour of the cells without any clipped pixel (and not too dark), filled into the others.
    means = _cell_reduce(rgb, cell, "mean")  # (3, gh, gw)
    good = (cmax < level[:, None, None]).all(0) & (means.mean(0) > float(dark) * float(sat.min()))
    means = _push_pull(means, good.to(rgb.dtype)[None], saturate=0.25)

    # Bilinear look-up of the grid at the clipped pixels only.
    ys = torch.div(idx, w, rounding_mode="floor")
    xs = idx - ys * w
    gh, gw = means.shape[-2:]
    gx = ((xs.to(rgb.dtype) + 0.5) / cell) / gw * 2.0 - 1.0
    gy = ((ys.to(rgb.dtype) + 0.5) / cell) / gh * 2.0 - 1.0
    grid = torch.stack([gx, gy], dim=-1)[None, None]
    local = F.grid_sample(means[None], grid, mode="bilinear", padding_mode="border", align_corners=False)[0, :, 0]
    local = local.clamp_min(1e-6)  # (3, N) local channel means = the local colour

    flat = rgb.reshape(3, -1)
    x = flat.index_select(1, idx)
    c = x >= level[:, None]
    unc = (~c).to(x.dtype)
    # each unclipped channel k predicts channel j as x_k · local_j / local_k; weight by x_k (less noise)
    wk = unc * x  # (3, N)
    scale = (wk * x / local).sum(0) / wk.sum(0).clamp_min(1e-12)  # Σ w_k (x_k/local_k) / Σ w_k
    est = local * scale[None]  # (3, N) prediction of every channel
    has_ref = unc.sum(0) > 0
    # all channels clipped: the local colour scaled to the least level at which every channel is clipped,
    # which continues the partially clipped surroundings (and is neutral at the highest saturation for white)
    full = local * (sat[:, None] / local).amax(0, keepdim=True)
    cap = _MAX_BOOST * float(sat.max())
    rebuilt = torch.where(c, torch.maximum(x, est.clamp(max=cap)), x)
    out_px = torch.where(has_ref[None], rebuilt, torch.maximum(x, full.clamp(max=cap)))
    return flat.clone().index_copy_(1, idx, out_px).reshape(rgb.shape)


def reconstruct_highlights(
    rgb_wb: torch.Tensor, *, saturation: torch.Tensor, method: str = "blend", **options
) -> torch.Tensor:
    """Treat clipped highlights of white-balanced camera RGB by ``method`` (clip, blend, reconstruct)."""
    return HIGHLIGHTS.get(method)(rgb_wb, saturation=saturation, **options)
