"""Slanted-edge charts (ISO 12233:2017 e-SFR) rendered with exact pixel coverage.

A pixel's value is the area integral of the scene over the pixel square (a 100 % fill-factor box),
computed in closed form: a square pixel projected onto an edge's normal is the convolution of two
boxes of widths |cos θ| and |sin θ|, so the covered fraction of a (possibly Gaussian-blurred)
half-plane is a second difference of the step's double antiderivative. Pixels cut by two sides of a
square (its corners) are clipped exactly (Sutherland & Hodgman 1974) and measured with the shoelace formula.

Chart generation runs once per chart, outside the tensor pipeline, so it is numpy (float64); the
Scene it returns holds float32 torch tensors.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.special import ndtr

from obscura.core.errors import InvalidParameter, ShapeError
from obscura.core.validate import check_number
from obscura.lab.charts.base import Chart

__all__ = ["slanted_edge_chart", "half_plane_coverage", "render_edge", "polygon_pixel_area"]

_SQRT_2PI = math.sqrt(2.0 * math.pi)


def _g2(s: np.ndarray, sigma: float) -> np.ndarray:
    """Double antiderivative of the unit step (σ = 0) or of the Gaussian-blurred step Φ(s/σ)."""
    if sigma == 0.0:
        return 0.5 * np.maximum(s, 0.0) ** 2
    t = s / sigma
    phi = np.exp(-0.5 * t * t) / _SQRT_2PI
    return sigma * sigma * (0.5 * (t * t + 1.0) * ndtr(t) + 0.5 * t * phi)


def _g1(s: np.ndarray, sigma: float) -> np.ndarray:
    """Antiderivative of the unit step (σ = 0) or of Φ(s/σ)."""
    if sigma == 0.0:
        return np.maximum(s, 0.0)
    t = s / sigma
    return sigma * (t * ndtr(t) + np.exp(-0.5 * t * t) / _SQRT_2PI)


def half_plane_coverage(
    x: np.ndarray, y: np.ndarray, *, normal: tuple[float, float], offset: float, sigma: float = 0.0
) -> np.ndarray:
    """Fraction of the unit pixel square centred at (x, y) on the side ``normal·p > offset`` of a line.

    With ``sigma`` > 0 the half-plane is first blurred by an isotropic Gaussian of σ pixels. Exact:
    the mean over the pixel of the step (or Φ) along the normal, with the pixel's projection onto the
    normal a box of width |nx| convolved with a box of width |ny| (``normal`` must be a unit vector).
    """
    nx, ny = float(normal[0]), float(normal[1])
    if abs(math.hypot(nx, ny) - 1.0) > 1e-9:
        raise InvalidParameter(f"normal must be a unit vector; got {normal!r}")
    sigma = check_number("sigma", sigma, 0.0, 1e6)
    s = nx * np.asarray(x, dtype=np.float64) + ny * np.asarray(y, dtype=np.float64) - offset
    a, b = max(abs(nx), abs(ny)), min(abs(nx), abs(ny))
    p, q = (a + b) / 2, (a - b) / 2
    if b < 1e-7:  # axis-aligned: one box
        out = (_g1(s + a / 2, sigma) - _g1(s - a / 2, sigma)) / a
    else:
        out = (_g2(s + p, sigma) - _g2(s + q, sigma) - _g2(s - q, sigma) + _g2(s - p, sigma)) / (a * b)
    out = np.clip(out, 0.0, 1.0)
    if sigma == 0.0:  # pixels wholly on one side are exactly 0 or 1 (no rounding residue)
        out = np.where(s >= p, 1.0, np.where(s <= -p, 0.0, out))
    return out


def _edge_normal(angle_deg: float, orientation: str, polarity: str) -> tuple[float, float]:
    """Unit normal pointing to the bright side of an edge tilted ``angle_deg`` from the named axis.

    The tilt follows :func:`obscura.lab.measure.sfr.esfr`: atan(dx/dy) for a near-vertical edge,
    atan(dy/dx) for a near-horizontal one (y down).
    """
    t = math.radians(angle_deg)
    if orientation == "vertical":
        n = (math.cos(t), -math.sin(t))  # bright towards +x
    elif orientation == "horizontal":
        n = (-math.sin(t), math.cos(t))  # bright towards +y
    else:
        raise InvalidParameter(f"orientation must be 'vertical' or 'horizontal'; got {orientation!r}")
    if polarity == "dark-to-bright":
        return n
    if polarity == "bright-to-dark":
        return (-n[0], -n[1])
    raise InvalidParameter(f"polarity must be 'dark-to-bright' or 'bright-to-dark'; got {polarity!r}")


def render_edge(
    size: tuple[int, int],
    *,
    angle_deg: float,
    orientation: str = "vertical",
    polarity: str = "dark-to-bright",
    centre: tuple[float, float] | None = None,
    sigma_px: float = 0.0,
) -> np.ndarray:
    """(H, W) float64 in [0, 1]: a straight edge (0 dark, 1 bright) integrated exactly over each pixel.

    The edge passes through ``centre`` = (x, y) (default the image centre; pixel (i, j) is centred at
    x = j, y = i) and is optionally blurred by a Gaussian PSF of ``sigma_px`` pixels before the
    pixel-area integration. ``polarity`` is along +x (vertical edge) or +y (horizontal edge).
    """
    if len(size) != 2 or min(int(size[0]), int(size[1])) < 1:
        raise ShapeError(f"size must be (H, W) with H, W ≥ 1; got {size!r}")
    h, w = int(size[0]), int(size[1])
    check_number("angle_deg", angle_deg, -45.0, 45.0)
    cx, cy = ((w - 1) / 2.0, (h - 1) / 2.0) if centre is None else (float(centre[0]), float(centre[1]))
    n = _edge_normal(angle_deg, orientation, polarity)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    return half_plane_coverage(xx, yy, normal=n, offset=n[0] * cx + n[1] * cy, sigma=sigma_px)


def _clip(poly: list[tuple[float, float]], axis: int, bound: float, keep_below: bool) -> list[tuple[float, float]]:
    """Sutherland–Hodgman: clip a polygon to x_axis ≤ bound (keep_below) or ≥ bound."""
    out: list[tuple[float, float]] = []
    n = len(poly)
    for i in range(n):
        p, q = poly[i], poly[(i + 1) % n]
        pin = p[axis] <= bound if keep_below else p[axis] >= bound
        qin = q[axis] <= bound if keep_below else q[axis] >= bound
        if pin:
            out.append(p)
        if pin != qin:
            t = (bound - p[axis]) / (q[axis] - p[axis])
            out.append((p[0] + t * (q[0] - p[0]), p[1] + t * (q[1] - p[1])))
    return out


def polygon_pixel_area(poly: list[tuple[float, float]], x: float, y: float) -> float:
    """Area of a convex polygon inside the unit pixel square centred at (x, y) (exact clipping + shoelace)."""
    pts = list(poly)
    for axis, c in ((0, x), (1, y)):
        pts = _clip(pts, axis, c - 0.5, keep_below=False)
        if not pts:
            return 0.0
        pts = _clip(pts, axis, c + 0.5, keep_below=True)
        if not pts:
            return 0.0
    xs = np.array([p[0] for p in pts])
    ys = np.array([p[1] for p in pts])
    return float(0.5 * abs(np.dot(xs, np.roll(ys, -1)) - np.dot(ys, np.roll(xs, -1))))


def _square_coverage(h: int, w: int, centres: np.ndarray, side: float, angle_deg: float) -> np.ndarray:
    """Fraction of each pixel covered by the squares (rotated by ``angle_deg``, y down) at ``centres``, exactly.

    The squares must not overlap; each is rendered within its bounding box only.
    """
    t = math.radians(angle_deg)
    c, s = math.cos(t), math.sin(t)
    # Outward unit normals of the rotated square's four sides: R(θ)·(±1, 0), R(θ)·(0, ±1).
    normals = [(c, s), (-c, -s), (-s, c), (s, -c)]
    half = side / 2.0
    reach = half * (abs(c) + abs(s)) + 1.0
    local = [(-half, -half), (half, -half), (half, half), (-half, half)]
    out = np.zeros((h, w), dtype=np.float64)
    for ccx, ccy in centres:
        x0, x1 = max(0, math.floor(ccx - reach)), min(w, math.ceil(ccx + reach) + 1)
        y0, y1 = max(0, math.floor(ccy - reach)), min(h, math.ceil(ccy + reach) + 1)
        yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float64)
        # inside of a side: n·(p − centre) < side/2  ⇔  (−n)·(p − centre) > −side/2
        covs = np.stack(
            [half_plane_coverage(xx - ccx, yy - ccy, normal=(-nx, -ny), offset=-half) for nx, ny in normals]
        )
        partial = (covs > 0.0) & (covs < 1.0)
        cov = np.where(np.any(covs == 0.0, axis=0), 0.0, covs.min(axis=0))
        corner = (partial.sum(axis=0) >= 2) & np.all(covs > 0.0, axis=0)
        poly = [(ccx + c * px - s * py, ccy + s * px + c * py) for px, py in local]
        for i, j in zip(*np.nonzero(corner)):
            cov[i, j] = polygon_pixel_area(poly, float(x0 + j), float(y0 + i))
        out[y0:y1, x0:x1] = cov
    return np.clip(out, 0.0, 1.0)


def slanted_edge_chart(
    *,
    size: tuple[int, int] = (480, 640),
    angle_deg: float = 5.0,
    reflectances: tuple[float, float] = (0.8, 0.2),
    contrast: float | None = None,
    grid: tuple[int, int] = (3, 4),
    square_fraction: float = 0.5,
    illuminant: str = "D65",
    luminance: float = 100.0,
    depth: float = math.inf,
    device: str | torch.device = "cpu",
) -> Chart:
    """A grid of dark squares tilted by ``angle_deg`` on a bright ground: slanted edges over the whole field.

    Each of the ``grid`` = (rows, cols) cells holds a square of side ``square_fraction`` × the cell's
    smaller side, giving near-vertical and near-horizontal edges of both polarities (ISO 12233:2017
    e-SFR). ``reflectances`` = (bright, dark) flat spectral reflectances under ``illuminant``; ``contrast``
    (e.g. 4 for ISO 12233:2017's 4:1 low-contrast edges) sets dark = bright / contrast instead.
    The scene is ``weights`` over two spectra (bright, dark) = (1 − coverage, coverage) of each pixel
    by the squares, integrated exactly over the pixel square.

    ROIs: ``edge_r{row}c{col}_v`` across each square's right side (near-vertical, dark to bright along
    +x) and ``edge_r{row}c{col}_h`` across its top side (near-horizontal, bright to dark along +y),
    rows and columns counted from 0. ``reference["angles"]`` gives each ROI's tilt in the convention of
    :func:`obscura.lab.measure.sfr.esfr` (right side −θ, top side +θ).
    """
    from obscura.sim import spectral
    from obscura.sim.scene import Scene

    if len(size) != 2:
        raise ShapeError(f"size must be (H, W); got {size!r}")
    h, w = int(size[0]), int(size[1])
    if len(grid) != 2 or min(int(grid[0]), int(grid[1])) < 1:
        raise InvalidParameter(f"grid must be (rows, cols) with rows, cols ≥ 1; got {grid!r}")
    rows, cols = int(grid[0]), int(grid[1])
    angle = check_number("angle_deg", angle_deg, -30.0, 30.0)
    frac = check_number("square_fraction", square_fraction, 0.1, 0.6)
    bright = check_number("bright reflectance", reflectances[0], 0.0, 1.0)
    dark = check_number("dark reflectance", reflectances[1], 0.0, 1.0)
    if contrast is not None:
        dark = bright / check_number("contrast", contrast, 1.0, 1e6, lo_open=True)
    if dark >= bright:
        raise InvalidParameter(f"dark reflectance must be below the bright one; got bright {bright}, dark {dark}")
    ch, cw = h / rows, w / cols
    side = frac * min(ch, cw)
    if side < 40:
        raise InvalidParameter(
            f"squares of {side:.1f} px are too small for e-SFR ROIs (need ≥ 40 px): "
            f"use a larger size or fewer cells; got size {(h, w)}, grid {(rows, cols)}"
        )

    centres = np.array(
        [((c + 0.5) * cw - 0.5, (r + 0.5) * ch - 0.5) for r in range(rows) for c in range(cols)], dtype=np.float64
    )
    cov = _square_coverage(h, w, centres, side, angle)

    t = math.radians(angle)
    c, s = math.cos(t), math.sin(t)
    along = math.floor(0.3 * side)  # half-length of an ROI along its edge
    across = math.floor(0.25 * side)  # half-width across it
    rois: dict[str, tuple[int, int, int, int]] = {}
    angles: dict[str, float] = {}
    for r in range(rows):
        for k in range(cols):
            ccx, ccy = centres[r * cols + k]
            # midpoint of the right side R(θ)(side/2, 0) and of the top side R(θ)(0, −side/2)
            mx, my = ccx + c * side / 2, ccy + s * side / 2
            x0, y0 = round(mx) - across, round(my) - along
            rois[f"edge_r{r}c{k}_v"] = (x0, y0, x0 + 2 * across, y0 + 2 * along)
            angles[f"edge_r{r}c{k}_v"] = -angle
            mx, my = ccx + s * side / 2, ccy - c * side / 2
            x0, y0 = round(mx) - along, round(my) - across
            rois[f"edge_r{r}c{k}_h"] = (x0, y0, x0 + 2 * along, y0 + 2 * across)
            angles[f"edge_r{r}c{k}_h"] = angle

    illum = spectral.illuminant_spd(illuminant)
    basis = np.stack([bright * illum, dark * illum])
    weights = np.stack([1.0 - cov, cov])
    dev = torch.device(device)
    scene = Scene(
        basis=torch.tensor(basis, dtype=torch.float32, device=dev),
        weights=torch.tensor(weights, dtype=torch.float32, device=dev),
        luminance=float(luminance),
        depth=depth,
        illuminant=illuminant,
        name="slanted_edge",
    )
    reference = {
        "angles": angles,
        "angle_deg": angle,
        "reflectances": (bright, dark),
        "contrast": bright / dark if dark > 0 else math.inf,
        "square_side_px": side,
        "square_centres": {f"r{r}c{k}": tuple(centres[r * cols + k]) for r in range(rows) for k in range(cols)},
    }
    return Chart(name="slanted_edge", scene=scene, rois=rois, reference=reference)
