"""Resolution and aliasing charts: the Siemens star (ISO 12233:2017 s-SFR) and the circular zone plate.

Siemens star: ``cycles`` periods around the circle, sinusoidal (ISO 12233:2017 Annex E) or binary
(square-wave) in angle, so the spatial frequency at radius r is cycles / (2π r) cycles/pixel; it is
anti-aliased by point sampling on a ``supersample``× finer grid and box-averaging (a 100 % fill-factor
pixel aperture).

Zone plate: ``mid + amp · cos(k r²)``, whose local frequency k r / π cycles/pixel grows linearly with the
radius; the default k puts the Nyquist frequency (0.5 cycles/pixel) at the edge (half the shorter side),
so the corners (√2 × further on a square chart) lie beyond it. The pixel-area integral is exact: cos(k(x² + y²)) is
the real part of e^{ikx²} e^{iky²}, and each factor integrates over a pixel's side in Fresnel integrals.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.special import fresnel

from obscura.core.errors import InvalidParameter
from obscura.core.validate import check_number
from obscura.lab.charts.base import Chart
from obscura.lab.charts.geometry import chart_size, check_levels, neutral_scene

__all__ = ["siemens_star_chart", "zone_plate_chart", "render_siemens_star", "render_zone_plate", "STAR_PROFILES"]

STAR_PROFILES = ("sine", "binary")


def render_siemens_star(
    size: tuple[int, int],
    *,
    cycles: int = 72,
    radius: float | None = None,
    profile: str = "sine",
    supersample: int = 8,
) -> np.ndarray:
    """(H, W) float64 modulation in [−1, 1] of a Siemens star centred at ((W − 1)/2, (H − 1)/2), 0 outside
    ``radius`` (default 0.45 × the shorter side): ``sin(cycles·θ)`` (``sine``) or its sign (``binary``),
    θ the angle from +x towards +y, averaged over each pixel from ``supersample``² point samples."""
    if profile not in STAR_PROFILES:
        raise InvalidParameter(f"profile must be one of {', '.join(STAR_PROFILES)}; got {profile!r}")
    h, w = size
    rad = 0.45 * min(h, w) if radius is None else float(radius)
    cx, cy = (w - 1) / 2.0, (h - 1) / 2.0
    ss = int(supersample)
    u = (np.arange(ss) + 0.5) / ss - 0.5
    xs = (np.arange(w)[:, None] + u[None, :]).ravel() - cx
    out = np.empty((h, w), dtype=np.float64)
    rows = max(1, (1 << 21) // (w * ss * ss))  # pixel rows per chunk: bounds memory
    for r0 in range(0, h, rows):
        r1 = min(h, r0 + rows)
        ys = (np.arange(r0, r1)[:, None] + u[None, :]).ravel() - cy
        yy, xx = ys[:, None], xs[None, :]
        m = np.sin(cycles * np.arctan2(yy, xx))
        if profile == "binary":
            m = np.sign(m)
        m = np.where(yy * yy + xx * xx <= rad * rad, m, 0.0)
        out[r0:r1] = m.reshape(r1 - r0, ss, w, ss).mean(axis=(1, 3))
    return out


def siemens_star_chart(
    *,
    size: tuple[int, int] = (512, 512),
    cycles: int = 72,
    profile: str = "sine",
    levels: tuple[float, float] = (0.05, 0.8),
    radius: float | None = None,
    supersample: int = 8,
    illuminant: str = "D65",
    luminance: float | None = None,
    lux: float | None = None,
    depth: float = math.inf,
    device: str | torch.device = "cpu",
) -> Chart:
    """A Siemens star of ``cycles`` periods (2 × ``cycles`` sectors; ISO 12233:2017 uses 72 cycles,
    144 sectors), ``profile`` ``sine`` or ``binary``, between reflectances ``levels`` (dark, light) on a
    ground of their mean, of ``radius`` px (default 0.45 × the shorter side), centred.

    ROI ``star``: the star's bounding box. ``reference``: ``cycles``, ``sectors``, ``profile``,
    ``centre`` (x, y), ``radius``, ``levels``, ``frequency_at_radius`` = cycles / (2π) (so f(r) =
    that / r cycles/pixel), ``nyquist_radius`` (where f = 0.5: cycles / π px).
    """
    h, w = chart_size(size, minimum=(32, 32))
    if isinstance(cycles, bool) or not isinstance(cycles, int) or not 4 <= cycles <= 1000:
        raise InvalidParameter(f"cycles must be an integer in [4, 1000]; got {cycles!r}")
    if profile not in STAR_PROFILES:
        raise InvalidParameter(f"profile must be one of {', '.join(STAR_PROFILES)}; got {profile!r}")
    lo, hi = check_levels("levels", levels)
    rad = 0.45 * min(h, w) if radius is None else check_number("radius", radius, 8.0, 0.5 * min(h, w))
    ss = int(check_number("supersample", supersample, 1, 32))
    m = render_siemens_star((h, w), cycles=cycles, radius=rad, profile=profile, supersample=ss)
    refl = (lo + hi) / 2 + (hi - lo) / 2 * m
    scene = neutral_scene(
        refl, illuminant=illuminant, luminance=luminance, lux=lux, depth=depth, device=device, name="siemens_star"
    )
    cx, cy = (w - 1) / 2.0, (h - 1) / 2.0
    box = (
        max(0, math.floor(cx - rad)),
        max(0, math.floor(cy - rad)),
        min(w, math.ceil(cx + rad) + 1),
        min(h, math.ceil(cy + rad) + 1),
    )
    reference = {
        "cycles": cycles,
        "sectors": 2 * cycles,
        "profile": profile,
        "centre": (cx, cy),
        "radius": rad,
        "levels": (lo, hi),
        "frequency_at_radius": cycles / (2 * math.pi),
        "nyquist_radius": cycles / math.pi,
    }
    return Chart(name="siemens_star", scene=scene, rois={"star": box}, reference=reference)


def _fresnel_pixel(t: np.ndarray, k: float) -> np.ndarray:
    """Mean of e^{ik s²} over s ∈ [t − ½, t + ½], in Fresnel integrals: with s = z √(π/(2k)),
    ∫ e^{iks²} ds = √(π/(2k)) (C(z) + i S(z))."""
    a = math.sqrt(2.0 * k / math.pi)
    s_hi, c_hi = fresnel((t + 0.5) * a)
    s_lo, c_lo = fresnel((t - 0.5) * a)
    return ((c_hi - c_lo) + 1j * (s_hi - s_lo)) / a


def render_zone_plate(size: tuple[int, int], *, k: float, centre: tuple[float, float] | None = None) -> np.ndarray:
    """(H, W) float64: cos(k r²) about ``centre`` = (x, y) (default ((W − 1)/2, (H − 1)/2); pixel (i, j) is
    centred at x = j, y = i) averaged exactly over each pixel square."""
    h, w = size
    cx, cy = ((w - 1) / 2.0, (h - 1) / 2.0) if centre is None else (float(centre[0]), float(centre[1]))
    ix = _fresnel_pixel(np.arange(w) - cx, k)
    iy = _fresnel_pixel(np.arange(h) - cy, k)
    return np.real(iy[:, None] * ix[None, :])


def zone_plate_chart(
    *,
    size: tuple[int, int] = (512, 512),
    edge_frequency: float = 0.5,
    levels: tuple[float, float] = (0.1, 0.8),
    illuminant: str = "D65",
    luminance: float | None = None,
    lux: float | None = None,
    depth: float = math.inf,
    device: str | torch.device = "cpu",
) -> Chart:
    """A circular zone plate ``mid + amp · cos(k r²)`` between reflectances ``levels``, centred, with
    ``k = π · edge_frequency / R`` (R = half the shorter side): the local frequency k r / π cycles/pixel is
    ``edge_frequency`` (default the Nyquist frequency, 0.5) at the edge and beyond it at the corners.
    Integrated exactly over each pixel square (Fresnel integrals).

    ROIs: ``zoneplate`` (the whole chart), ``below_nyquist`` (the square inscribed in the circle where
    f < 0.5), ``corner_tl``/``corner_tr``/``corner_bl``/``corner_br`` (squares of 0.15 × the shorter side
    in the corners, above Nyquist with the default). ``reference``: ``k`` (rad/px²), ``centre``,
    ``frequency_per_px`` = k/π (f(r) = that · r cycles/pixel), ``nyquist_radius``, ``edge_radius``,
    ``edge_frequency``, ``corner_frequency``, ``levels``, and a table ``radius``/``frequency``.
    """
    h, w = chart_size(size, minimum=(32, 32))
    f_edge = check_number("edge_frequency", edge_frequency, 0.01, 2.0)
    lo, hi = check_levels("levels", levels)
    r_edge = min(h, w) / 2.0
    k = math.pi * f_edge / r_edge
    m = render_zone_plate((h, w), k=k)
    refl = np.clip((lo + hi) / 2 + (hi - lo) / 2 * m, 0.0, None)
    scene = neutral_scene(
        refl, illuminant=illuminant, luminance=luminance, lux=lux, depth=depth, device=device, name="zone_plate"
    )
    cx, cy = (w - 1) / 2.0, (h - 1) / 2.0
    slope = k / math.pi
    r_nyq = 0.5 / slope
    half = min(r_nyq / math.sqrt(2.0), cx + 0.5, cy + 0.5)
    s = max(1, round(0.15 * min(h, w)))
    rois = {
        "zoneplate": (0, 0, w, h),
        "below_nyquist": (
            math.ceil(cx - half),
            math.ceil(cy - half),
            math.floor(cx + half) + 1,
            math.floor(cy + half) + 1,
        ),
        "corner_tl": (0, 0, s, s),
        "corner_tr": (w - s, 0, w, s),
        "corner_bl": (0, h - s, s, h),
        "corner_br": (w - s, h - s, w, h),
    }
    radius = np.linspace(0.0, math.hypot(cx + 0.5, cy + 0.5), 65)
    reference = {
        "k": k,
        "centre": (cx, cy),
        "frequency_per_px": slope,
        "nyquist_radius": r_nyq,
        "edge_radius": r_edge,
        "edge_frequency": f_edge,
        "corner_frequency": slope * math.hypot(cx + 0.5, cy + 0.5),
        "levels": (lo, hi),
        "radius": radius,
        "frequency": slope * radius,
    }
    return Chart(name="zone_plate", scene=scene, rois=rois, reference=reference)
