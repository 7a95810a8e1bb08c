"""Geometry charts: a dot grid (distortion, SMIA TV distortion) and a flat field (shading), plus the
helpers the neutral charts share (size checks, a grey scene from a reflectance map, inner ROIs).

Chart generation runs once per chart, outside the tensor pipeline, so it is numpy (float64); the
Scene it returns holds float32 torch tensors.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from obscura.core.errors import InvalidParameter
from obscura.core.validate import check_number
from obscura.lab.charts.base import Chart

__all__ = ["dot_grid_chart", "flat_field_chart", "neutral_scene", "chart_size", "inner_box", "render_discs"]

INNER_FRACTION = 0.6  # patch ROIs are the centred inner 60 % (blur and misregistration stay out)


def chart_size(size: Any, *, minimum: tuple[int, int] = (16, 16), maximum: int = 20000) -> tuple[int, int]:
    """``size`` as (H, W) ints, each within [minimum, maximum], else InvalidParameter saying what was given."""
    try:
        h, w = (int(s) for s in size)
        if (h, w) != tuple(size):
            raise ValueError
    except (TypeError, ValueError):
        raise InvalidParameter(f"size must be (H, W) integers; got {size!r}") from None
    if h < minimum[0] or w < minimum[1]:
        raise InvalidParameter(f"size {(h, w)} is too small for this chart: need at least {minimum}")
    if h > maximum or w > maximum:
        raise InvalidParameter(f"size {(h, w)} is too large: at most {maximum} pixels a side")
    return h, w


def check_levels(name: str, levels: Any) -> tuple[float, float]:
    """A (low, high) pair of reflectances with 0 ≤ low < high ≤ 1."""
    try:
        lo, hi = (float(v) for v in levels)
    except (TypeError, ValueError):
        raise InvalidParameter(f"{name} must be (low, high) reflectances; got {levels!r}") from None
    if not (0.0 <= lo < hi <= 1.0):
        raise InvalidParameter(f"{name} must satisfy 0 <= low < high <= 1; got {levels!r}")
    return lo, hi


def inner_box(box: tuple[float, float, float, float], frac: float) -> tuple[int, int, int, int]:
    """The centred ``frac`` of a rectangle (x0, y0, x1, y1), shrunk to whole pixels (x1, y1 exclusive)."""
    x0, y0, x1, y1 = box
    dx = (x1 - x0) * (1 - frac) / 2
    dy = (y1 - y0) * (1 - frac) / 2
    return (math.ceil(x0 + dx), math.ceil(y0 + dy), math.floor(x1 - dx), math.floor(y1 - dy))


def neutral_scene(
    reflectance: np.ndarray,
    *,
    illuminant: str = "D65",
    luminance: float | None = None,
    lux: float | None = None,
    depth: float = math.inf,
    device: str | torch.device = "cpu",
    name: str = "chart",
) -> Any:
    """A grey scene: flat spectral reflectance ``reflectance`` (H, W) (≥ 0; above 1 allowed for a lit
    transmissive chart) under ``illuminant``. One basis spectrum (the illuminant, ``Y = 1``) with the
    reflectance map as weights, so a pixel's ``Y`` is its reflectance; ``luminance`` cd/m² of ``Y = 1``
    (default 100) or ``lux / π``."""
    from obscura.sim import spectral
    from obscura.sim.scene import Scene, _luminance_from

    r = np.asarray(reflectance, dtype=np.float64)
    if r.ndim != 2 or not np.all(np.isfinite(r)) or np.any(r < 0):
        raise InvalidParameter(f"reflectance must be a finite (H, W) map >= 0; got shape {r.shape}")
    dev = torch.device(device)
    basis = torch.tensor(spectral.illuminant_spd(illuminant)[None, :], dtype=torch.float32, device=dev)
    return Scene(
        basis=basis.clamp(min=0.0),
        weights=torch.tensor(r[None], dtype=torch.float32, device=dev),
        luminance=_luminance_from(luminance, lux),
        depth=depth,
        illuminant=illuminant,
        name=name,
    )


def render_discs(size: tuple[int, int], centres: np.ndarray, radius: float, *, supersample: int = 16) -> np.ndarray:
    """(H, W) float64: the fraction of each pixel square covered by discs of ``radius`` px at ``centres``
    (N, 2) (x, y), by ``supersample``² point sampling in each disc's bounding box (discs must not overlap)."""
    h, w = size
    ss = int(supersample)
    out = np.zeros((h, w), dtype=np.float64)
    u = (np.arange(ss) + 0.5) / ss - 0.5  # sub-sample offsets within a pixel
    reach = math.ceil(radius) + 1
    for cx, cy in np.asarray(centres, dtype=np.float64):
        x0, x1 = max(0, math.floor(cx) - reach), min(w, math.floor(cx) + reach + 2)
        y0, y1 = max(0, math.floor(cy) - reach), min(h, math.floor(cy) + reach + 2)
        if x0 >= x1 or y0 >= y1:
            continue
        xs = (np.arange(x0, x1)[:, None] + u[None, :]).ravel() - cx  # (nx·ss,)
        ys = (np.arange(y0, y1)[:, None] + u[None, :]).ravel() - cy
        inside = (ys[:, None] ** 2 + xs[None, :] ** 2) <= radius * radius
        cov = inside.reshape(y1 - y0, ss, x1 - x0, ss).mean(axis=(1, 3))
        out[y0:y1, x0:x1] = np.maximum(out[y0:y1, x0:x1], cov)
    return out


def dot_grid_chart(
    *,
    size: tuple[int, int] = (480, 640),
    spacing: float = 32.0,
    radius: float | None = None,
    reflectances: tuple[float, float] = (0.8, 0.05),
    supersample: int = 16,
    illuminant: str = "D65",
    luminance: float | None = None,
    lux: float | None = None,
    depth: float = math.inf,
    device: str | torch.device = "cpu",
) -> Chart:
    """A regular grid of dark dots on a bright ground, for distortion (SMIA TV distortion, radial models).

    Dots of ``radius`` px (default 0.2 × ``spacing``) on a square pitch of ``spacing`` px, an odd number
    of rows and columns centred on the image centre ((W − 1)/2, (H − 1)/2), so one dot sits on the
    optical axis; at least ``spacing`` / 2 is kept clear at the borders. ``reflectances`` = (ground, dot).
    Anti-aliased by ``supersample``² point sampling per pixel.

    ``reference``: ``centres`` (N, 2) ideal dot centres (x, y) in pixels, row-major from the top left;
    ``rows``, ``cols``, ``spacing``, ``radius``, ``centre``, ``reflectances``. ROI ``dots``: the grid's
    bounding box (half a pitch around the outer dots).
    """
    h, w = chart_size(size, minimum=(32, 32))
    pitch = check_number("spacing", spacing, 4.0, 0.5 * min(h, w))
    rad = 0.2 * pitch if radius is None else check_number("radius", radius, 0.5, 0.45 * pitch)
    ground, dot = (
        check_number("ground reflectance", reflectances[0], 0.0, 1.0),
        check_number("dot reflectance", reflectances[1], 0.0, 1.0),
    )
    if ground == dot:
        raise InvalidParameter(f"ground and dot reflectances must differ; got {reflectances!r}")
    ss = int(check_number("supersample", supersample, 1, 64))
    cx, cy = (w - 1) / 2.0, (h - 1) / 2.0
    mx = math.floor((cx - pitch / 2) / pitch)  # dots either side of the centre column
    my = math.floor((cy - pitch / 2) / pitch)
    if mx < 1 or my < 1:
        raise InvalidParameter(f"spacing {pitch} px leaves fewer than 3 dots a row or column in size {(h, w)}")
    xs = cx + pitch * np.arange(-mx, mx + 1)
    ys = cy + pitch * np.arange(-my, my + 1)
    centres = np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2)
    cov = render_discs((h, w), centres, rad, supersample=ss)
    refl = ground + (dot - ground) * cov
    scene = neutral_scene(
        refl, illuminant=illuminant, luminance=luminance, lux=lux, depth=depth, device=device, name="dot_grid"
    )
    x0, x1 = max(0, math.floor(xs[0] - pitch / 2)), min(w, math.ceil(xs[-1] + pitch / 2))
    y0, y1 = max(0, math.floor(ys[0] - pitch / 2)), min(h, math.ceil(ys[-1] + pitch / 2))
    reference = {
        "centres": centres,
        "rows": int(ys.size),
        "cols": int(xs.size),
        "spacing": pitch,
        "radius": rad,
        "centre": (cx, cy),
        "reflectances": (ground, dot),
    }
    return Chart(name="dot_grid", scene=scene, rois={"dots": (x0, y0, x1, y1)}, reference=reference)


def flat_field_chart(
    *,
    size: tuple[int, int] = (480, 640),
    reflectance: float = 0.8,
    corner: float = 0.1,
    illuminant: str = "D65",
    luminance: float | None = None,
    lux: float | None = None,
    depth: float = math.inf,
    device: str | torch.device = "cpu",
) -> Chart:
    """A uniform grey field of flat spectral ``reflectance``, for lens shading (vignetting, colour shading).

    ROIs: ``full``; ``centre`` and ``corner_tl``/``corner_tr``/``corner_bl``/``corner_br``, squares of
    side ``corner`` × the shorter side (the corner ones touching the corners). ``reference``:
    ``uniform`` True, ``reflectance`` and ``Y`` (equal: a flat spectrum under an illuminant of ``Y = 1``).
    """
    from obscura.sim.scene import flat_scene

    h, w = chart_size(size, minimum=(16, 16))
    r = check_number("reflectance", reflectance, 0.0, 1.0, lo_open=True)
    frac = check_number("corner", corner, 0.01, 0.5)
    s = max(1, round(frac * min(h, w)))
    scene = flat_scene(
        (h, w),
        value=r,
        illuminant=illuminant,
        luminance=luminance,
        lux=lux,
        depth=depth,
        device=device,
        name="flat_field",
    )
    x0, y0 = (w - s) // 2, (h - s) // 2
    rois = {
        "full": (0, 0, w, h),
        "centre": (x0, y0, x0 + s, y0 + s),
        "corner_tl": (0, 0, s, s),
        "corner_tr": (w - s, 0, w, s),
        "corner_bl": (0, h - s, s, h),
        "corner_br": (w - s, h - s, w, h),
    }
    return Chart(name="flat_field", scene=scene, rois=rois, reference={"uniform": True, "reflectance": r, "Y": r})
