"""Lens corrections in the DNG model: WarpRectilinear (distortion, lateral CA) and FixVignetteRadial.

DNG 1.4 §6 (Adobe, 2012). Both work in coordinates normalized by the largest distance from the optical
centre to an image corner, the centre being given in relative coordinates (0..1) of the image.
Conventions here: pixel ``i`` covers ``[i, i + 1)`` so its centre is at ``i + 0.5``; the image spans
``[0, W] × [0, H]`` and the centre is at ``(cx·W, cy·H)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch.nn import functional as F  # noqa: N812

from obscura.core.errors import InvalidParameter, ShapeError

__all__ = ["warp_rectilinear", "warp_rectilinear_source", "fix_vignette_radial", "radial_coordinates"]

_INTERP = ("bilinear", "bicubic", "nearest")


def _check_center(center: Sequence[float]) -> tuple[float, float]:
    try:
        cx, cy = (float(v) for v in center)
    except (TypeError, ValueError):
        raise InvalidParameter(f"center must be two numbers (x, y) in 0..1; got {center!r}") from None
    if not (math.isfinite(cx) and math.isfinite(cy)) or not (0.0 <= cx <= 1.0 and 0.0 <= cy <= 1.0):
        raise InvalidParameter(f"center must be (x, y) in 0..1 (relative to the image); got {(cx, cy)}")
    return cx, cy


def radial_coordinates(
    height: int,
    width: int,
    *,
    center: Sequence[float] = (0.5, 0.5),
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Pixel-centre offsets from the optical centre in DNG normalized units.

    Returns ``dx`` (1, W), ``dy`` (H, 1) and the unit ``m`` (pixels): the largest distance from the centre
    to an image corner.
    """
    cx, cy = _check_center(center)
    px, py = cx * width, cy * height
    m = max(math.hypot(px - x, py - y) for x in (0.0, width) for y in (0.0, height))
    dx = (torch.arange(width, dtype=torch.float64, device=device) + 0.5 - px) / m
    dy = (torch.arange(height, dtype=torch.float64, device=device) + 0.5 - py) / m
    return dx.to(dtype)[None, :], dy.to(dtype)[:, None], m


def _check_coefficients(coefficients: Sequence[Sequence[float]] | Sequence[float], planes: int) -> list[list[float]]:
    c = list(coefficients)
    if c and not isinstance(c[0], Sequence | torch.Tensor):
        c = [c]  # one set of 6 for all planes
    try:
        sets = [[float(v) for v in s] for s in c]
    except (TypeError, ValueError):
        raise InvalidParameter(
            f"coefficients must be sets of 6 numbers (kr0..kr3, kt0, kt1); got {coefficients!r}"
        ) from None
    if len(sets) not in (1, planes) or any(len(s) != 6 for s in sets):
        raise InvalidParameter(
            f"coefficients must be 1 or {planes} sets of 6 numbers (kr0, kr1, kr2, kr3, kt0, kt1); "
            f"got {[len(s) for s in sets]}"
        )
    if not all(math.isfinite(v) for s in sets for v in s):
        raise InvalidParameter(f"coefficients must be finite; got {sets}")
    return sets


def warp_rectilinear_source(
    height: int,
    width: int,
    coefficients: Sequence[float],
    *,
    center: Sequence[float] = (0.5, 0.5),
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Where each output pixel samples the input under the DNG WarpRectilinear model (one plane).

    With ``Δx, Δy`` the normalized offsets of the output pixel from the centre and ``r² = Δx² + Δy²``:
    ``Δx' = Δx·(kr0 + kr1 r² + kr2 r⁴ + kr3 r⁶) + 2 kt0 Δx Δy + kt1 (r² + 2Δx²)`` and
    ``Δy' = Δy·(…) + 2 kt1 Δx Δy + kt0 (r² + 2Δy²)`` (Brown 1966 / Conrady 1919 as in DNG 1.4).
    Returns the source x and y (H, W) in continuous pixel coordinates (pixel centres at ``i + 0.5``).
    """
    kr0, kr1, kr2, kr3, kt0, kt1 = (float(v) for v in coefficients)
    cx, cy = _check_center(center)
    dx, dy, m = radial_coordinates(height, width, center=center, dtype=torch.float64, device=device)
    r2 = dx * dx + dy * dy
    radial = kr0 + r2 * (kr1 + r2 * (kr2 + r2 * kr3))
    sx = dx * radial + 2.0 * kt0 * dx * dy + kt1 * (r2 + 2.0 * dx * dx)
    sy = dy * radial + 2.0 * kt1 * dx * dy + kt0 * (r2 + 2.0 * dy * dy)
    return (cx * width + m * sx).to(dtype), (cy * height + m * sy).to(dtype)


def warp_rectilinear(
    rgb: torch.Tensor,
    *,
    coefficients: Sequence[Sequence[float]] | Sequence[float],
    center: Sequence[float] = (0.5, 0.5),
    interpolation: str = "bicubic",
) -> torch.Tensor:
    """Correct distortion and lateral chromatic aberration with the DNG WarpRectilinear opcode (DNG 1.4 §6).

    ``rgb`` is (C, H, W); ``coefficients`` is one set of 6 numbers ``(kr0, kr1, kr2, kr3, kt0, kt1)`` for all
    planes or one set per plane. The model maps each output (corrected) pixel to the input (distorted)
    position it is sampled from (see :func:`warp_rectilinear_source`); samples outside the image take the
    nearest edge value. Identity: ``(1, 0, 0, 0, 0, 0)``.
    """
    if not isinstance(rgb, torch.Tensor) or rgb.ndim != 3 or rgb.shape[0] < 1:
        raise ShapeError(f"warp_rectilinear expects a (C, H, W) tensor; got {_shape(rgb)}")
    if interpolation not in _INTERP:
        raise InvalidParameter(f"interpolation must be one of {', '.join(_INTERP)}; got {interpolation!r}")
    c, h, w = rgb.shape
    if h < 2 or w < 2:
        raise ShapeError(f"warp_rectilinear needs an image of at least 2×2 pixels; got {tuple(rgb.shape)}")
    sets = _check_coefficients(coefficients, c)
    x = rgb if rgb.dtype.is_floating_point else rgb.to(torch.float32)
    grids = []
    for s in sets:
        sx, sy = warp_rectilinear_source(h, w, s, center=center, dtype=x.dtype, device=x.device)
        # grid_sample with align_corners=False: -1 and +1 are the outer edges of the image
        grids.append(torch.stack((sx * (2.0 / w) - 1.0, sy * (2.0 / h) - 1.0), dim=-1))
    if len(grids) == 1:
        out = F.grid_sample(x[None], grids[0][None], mode=interpolation, padding_mode="border", align_corners=False)
        return out[0]
    out = F.grid_sample(x[:, None], torch.stack(grids), mode=interpolation, padding_mode="border", align_corners=False)
    return out[:, 0]


def fix_vignette_radial(
    x: torch.Tensor,
    *,
    k: Sequence[float],
    center: Sequence[float] = (0.5, 0.5),
) -> torch.Tensor:
    """Multiply by the DNG FixVignetteRadial gain ``1 + k0 r² + k1 r⁴ + k2 r⁶ + k3 r⁸ + k4 r¹⁰`` (DNG 1.4 §6).

    ``x`` is (H, W) or (C, H, W); the gain applies to every plane; ``r`` is normalized by the largest
    distance from the centre to a corner.
    """
    if not isinstance(x, torch.Tensor) or x.ndim not in (2, 3):
        raise ShapeError(f"fix_vignette_radial expects (H, W) or (C, H, W); got {_shape(x)}")
    try:
        kk = [float(v) for v in k]
    except (TypeError, ValueError):
        raise InvalidParameter(f"k must be 5 numbers; got {k!r}") from None
    if len(kk) != 5 or not all(math.isfinite(v) for v in kk):
        raise InvalidParameter(f"k must be 5 finite numbers (k0..k4); got {kk}")
    xf = x if x.dtype.is_floating_point else x.to(torch.float32)
    dx, dy, _ = radial_coordinates(x.shape[-2], x.shape[-1], center=center, dtype=xf.dtype, device=x.device)
    r2 = dx * dx + dy * dy
    gain = 1.0 + r2 * (kk[0] + r2 * (kk[1] + r2 * (kk[2] + r2 * (kk[3] + r2 * kk[4]))))
    if bool((gain <= 0).any()):
        raise InvalidParameter(f"FixVignetteRadial k={kk} gives a gain ≤ 0 inside the image")
    return xf * gain


def _shape(x: object) -> object:
    return tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
