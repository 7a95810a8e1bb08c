"""Artifact measurements on chart captures: distortion, shading, lateral CA, ringing, aliasing, moiré, ghosting.

These measure images rather than being pipeline stages, so they work in numpy/scipy (float64) like
:mod:`obscura.lab.measure.sfr`; they accept torch tensors (any device) and numpy arrays. Each returns
a frozen result with ``to_dict()`` (JSON-ready). Pixel coordinates: ``x`` = column, ``y`` = row, pixel
centres at integers, the image centre at ``((W − 1)/2, (H − 1)/2)``.

References: SMIA 1.0 Part 5: Camera Characterisation Specification (2004), §5.20 "TV distortion";
lensfun's poly3 model ``r_d = r_u·(1 − k1 + k1·r_u²)``, r = 1 at half the shorter image side; ISO 12233
e-SFR (Burns 2000) for edge locations; CIE L*a*b* for colour moiré.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from scipy import ndimage

from obscura.core.errors import InvalidParameter, ShapeError
from obscura.lab.measure.noise import LUMINANCE_WEIGHTS
from obscura.lab.measure.sfr import SFRResult, as_array, esfr

__all__ = [
    "DistortionResult",
    "RadialFit",
    "ShadingResult",
    "LateralCAResult",
    "RingingResult",
    "AliasingResult",
    "MoireResult",
    "GhostingResult",
    "find_dots",
    "tv_distortion",
    "fit_radial_distortion",
    "shading",
    "lateral_ca",
    "ringing",
    "aliasing_energy",
    "colour_moire",
    "ghosting",
]

Roi = tuple[int, int, int, int]  # (x0, y0, x1, y1), end-exclusive


def _image(x: Any, name: str = "image", *, colour: bool = False) -> np.ndarray:
    a = as_array(x, name)
    if a.ndim == 3 and a.shape[0] == 1:
        a = a[0]
    if colour:
        if a.ndim != 3 or a.shape[0] != 3:
            raise ShapeError(f"{name} must be (3, H, W); got {tuple(a.shape)}")
    elif a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[0] != 3):
        raise ShapeError(f"{name} must be (H, W) or (3, H, W); got {tuple(a.shape)}")
    if not np.all(np.isfinite(a)):
        raise InvalidParameter(f"{name} holds non-finite values (nan or inf)")
    return a


def _luminance(a: np.ndarray) -> np.ndarray:
    return np.tensordot(np.asarray(LUMINANCE_WEIGHTS), a, axes=1) if a.ndim == 3 else a


def _check_roi(roi: Any, h: int, w: int) -> Roi:
    try:
        x0, y0, x1, y1 = (int(v) for v in roi)
    except (TypeError, ValueError):
        raise InvalidParameter(f"roi must be (x0, y0, x1, y1); got {roi!r}") from None
    if not (0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h):
        raise InvalidParameter(f"roi {roi!r} is not inside the {w}×{h} image")
    return x0, y0, x1, y1


def _mask(x: Any, name: str, shape: tuple[int, ...]) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    if not isinstance(x, np.ndarray):
        raise ShapeError(f"{name} must be a boolean (H, W) array or tensor; got {type(x).__name__}")
    m = x.astype(bool) if x.dtype == bool else as_array(x, name) > 0.5
    if m.shape != tuple(shape):
        raise ShapeError(f"{name} must be (H, W) = {tuple(shape)}; got {m.shape}")
    if not m.any():
        raise InvalidParameter(f"{name} is empty")
    return m


def _fmt(v: float) -> float | None:
    return None if not math.isfinite(v) else float(v)


# --------------------------------------------------------------------------- distortion
def find_dots(image: Any, *, threshold: float | None = None, min_area: int = 4) -> np.ndarray:
    """Sub-pixel centroids (K, 2) as (x, y) of dark dots on a light ground, in reading order.

    Reading order: dots are grouped into rows (a new row where y jumps by more than half the
    nearest-neighbour spacing, so bowed rows of a distorted grid stay together), each row by x.

    Dots are connected regions below ``threshold`` (default: midway between the 2nd and 98th
    percentiles); each centroid is weighted by the darkness ``max(ground − value, 0)`` over the dot
    grown by 2 px (the anti-aliased rim carries sub-pixel position). Dots touching the border and
    regions under ``min_area`` px are dropped.
    """
    a = _luminance(_image(image))
    lo, hi = np.percentile(a, [2.0, 98.0])
    if hi - lo <= 1e-12 * max(abs(hi), 1.0):
        raise InvalidParameter("no dots found: the image is flat")
    t = 0.5 * (lo + hi) if threshold is None else float(threshold)
    if not lo < t < hi:
        raise InvalidParameter(f"threshold must lie between the dark and light levels ({lo:.4g}, {hi:.4g}); got {t}")
    labels, n = ndimage.label(a < t)
    if n == 0:
        raise InvalidParameter("no dots found below the threshold")
    grown = ndimage.grey_dilation(labels, size=(5, 5))  # labels spread 2 px (dots must be ≥ 5 px apart)
    weight = np.clip(hi - a, 0.0, None)
    idx = np.arange(1, n + 1)
    area = ndimage.sum_labels(np.ones_like(a), labels, idx)
    yy, xx = np.mgrid[0 : a.shape[0], 0 : a.shape[1]].astype(np.float64)
    m = ndimage.sum_labels(weight, grown, idx)
    cx = ndimage.sum_labels(weight * xx, grown, idx) / np.maximum(m, 1e-300)
    cy = ndimage.sum_labels(weight * yy, grown, idx) / np.maximum(m, 1e-300)
    sl = ndimage.find_objects(grown)
    keep = []
    for i, s in enumerate(sl):
        if s is None or area[i] < min_area:
            continue
        if s[0].start == 0 or s[1].start == 0 or s[0].stop == a.shape[0] or s[1].stop == a.shape[1]:
            continue
        keep.append(i)
    pts = np.stack([cx[keep], cy[keep]], axis=1) if keep else np.zeros((0, 2))
    if len(pts) < 2:
        return pts
    return np.concatenate(_grid_rows(pts))


def _grid_rows(pts: np.ndarray) -> list[np.ndarray]:
    """Group dot centres into rows (each sorted by x): a new row starts where y jumps by > half a spacing."""
    d = np.sqrt(((pts[:, None, :] - pts[None, :, :]) ** 2).sum(-1))
    np.fill_diagonal(d, np.inf)
    spacing = float(np.median(d.min(axis=1)))
    order = np.argsort(pts[:, 1], kind="stable")
    ys = pts[order, 1]
    breaks = np.flatnonzero(np.diff(ys) > 0.5 * spacing) + 1
    rows = [pts[g] for g in np.split(order, breaks)]
    return [r[np.argsort(r[:, 0])] for r in rows]


@dataclass(frozen=True)
class DistortionResult:
    """SMIA TV distortion of a dot grid: ``100·(A − B)/B`` with ``A = (A1 + A2)/2`` the heights between
    the top and bottom rows at the left and right ends, ``B`` the height at the centre; negative = barrel."""

    tv_distortion: float  # %
    a1: float  # px
    a2: float
    b: float
    rows: int
    cols: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "tv_distortion_pct": self.tv_distortion,
            "a1_px": self.a1,
            "a2_px": self.a2,
            "b_px": self.b,
            "rows": self.rows,
            "cols": self.cols,
        }


def tv_distortion(centres: Any) -> DistortionResult:
    """SMIA TV distortion (SMIA 1.0 Part 5, 2004, §5.20) from the dot centres (K, 2) (x, y) of a grid.

    The grid shape is inferred (rows of equal length, bowing under half a row spacing). ``A1``/``A2``:
    distances between the first / last dots of the top and bottom rows; ``B``: distance between the
    top and bottom rows at the horizontal centre of the grid (the centre dots for an odd column count,
    else a quartic fit of each row). Result in % (``(A − B)/B·100``): < 0 barrel, > 0 pincushion.
    """
    pts = as_array(centres, "centres")
    if pts.ndim != 2 or pts.shape[1] != 2 or pts.shape[0] < 9:
        raise ShapeError(f"centres must be (K, 2) (x, y) with K ≥ 9 (a 3×3 grid); got {tuple(pts.shape)}")
    rows = _grid_rows(pts)
    counts = {len(r) for r in rows}
    if len(rows) < 3 or len(counts) != 1 or min(counts) < 3:
        raise InvalidParameter(
            f"centres do not form a full grid: {len(rows)} rows of {sorted(len(r) for r in rows)} dots"
        )
    top, bot = rows[0], rows[-1]
    cols = len(top)
    a1 = float(np.hypot(*(bot[0] - top[0])))
    a2 = float(np.hypot(*(bot[-1] - top[-1])))
    if cols % 2:
        b = float(np.hypot(*(bot[cols // 2] - top[cols // 2])))
    else:
        xc = 0.25 * (top[0, 0] + top[-1, 0] + bot[0, 0] + bot[-1, 0])
        deg = min(4, cols - 1)
        yt = np.polyval(np.polyfit(top[:, 0], top[:, 1], deg), xc)
        yb = np.polyval(np.polyfit(bot[:, 0], bot[:, 1], deg), xc)
        b = float(yb - yt)
    tv = 100.0 * (0.5 * (a1 + a2) - b) / b
    return DistortionResult(tv_distortion=tv, a1=a1, a2=a2, b=b, rows=len(rows), cols=cols)


@dataclass(frozen=True)
class RadialFit:
    """lensfun poly3 fit ``r_d = s·r_u·(1 − k1 + k1·r_u²)`` (r = 1 at half the shorter side) of measured
    vs ideal points; ``scale`` absorbs the magnification, ``rms`` is the residual in px."""

    k1: float
    scale: float
    rms: float
    points: int

    def to_dict(self) -> dict[str, Any]:
        return {"k1": self.k1, "scale": self.scale, "rms_px": self.rms, "points": self.points}


def fit_radial_distortion(measured: Any, ideal: Any, *, size: tuple[int, int]) -> RadialFit:
    """Least-squares lensfun poly3 ``k1`` from measured (distorted) and ideal (undistorted) points (K, 2).

    ``size`` = (H, W) of the image: sets the centre and the normalisation (r = 1 at half the shorter side,
    as lensfun and :mod:`obscura.sim.optics`). The model ``p_d = c + s·(p_u − c)·(1 − k1 + k1·r_u²)`` is
    linear in ``(s, s·k1)``.
    """
    m = as_array(measured, "measured")
    u = as_array(ideal, "ideal")
    if m.shape != u.shape or m.ndim != 2 or m.shape[1] != 2 or m.shape[0] < 3:
        raise ShapeError(f"measured and ideal must both be (K, 2) with K ≥ 3; got {m.shape} and {u.shape}")
    try:
        h, w = (int(v) for v in size)
    except (TypeError, ValueError):
        raise InvalidParameter(f"size must be (H, W); got {size!r}") from None
    if h < 2 or w < 2:
        raise InvalidParameter(f"size must be (H, W) ≥ 2; got {size!r}")
    c = np.array([(w - 1) / 2.0, (h - 1) / 2.0])
    norm = min(h, w) / 2.0
    pu = (u - c) / norm
    pd = (m - c) / norm
    r2 = (pu**2).sum(axis=1, keepdims=True)
    # p_d = s·p_u + (s·k1)·p_u·(r² − 1)
    design = np.stack([pu.ravel(), (pu * (r2 - 1.0)).ravel()], axis=1)
    coef, *_ = np.linalg.lstsq(design, pd.ravel(), rcond=None)
    s, sk = float(coef[0]), float(coef[1])
    resid = (design @ coef - pd.ravel()) * norm
    rms = float(np.sqrt(np.mean(resid.reshape(-1, 2).__pow__(2).sum(axis=1))))
    return RadialFit(k1=sk / s, scale=s, rms=rms, points=int(m.shape[0]))


# --------------------------------------------------------------------------- shading
@dataclass(frozen=True)
class ShadingResult:
    """Corner falloff of a flat field: ``log2(corner mean / centre mean)`` (EV) per corner, for the
    luminance and per channel; colour shading = max over corners of ``|ratio_corner/ratio_centre − 1|``
    for R/G and B/G (%)."""

    corners: tuple[str, ...]
    luminance_ev: tuple[float, ...]
    channel_ev: tuple[tuple[float, ...], ...]  # per corner: (R, G, B); empty for a single channel
    worst_ev: float
    colour_shading_rg: float  # %
    colour_shading_bg: float  # %

    def to_dict(self) -> dict[str, Any]:
        return {
            "corner_ev": dict(zip(self.corners, self.luminance_ev)),
            "corner_ev_rgb": {k: list(v) for k, v in zip(self.corners, self.channel_ev)},
            "worst_corner_ev": self.worst_ev,
            "colour_shading_rg_pct": _fmt(self.colour_shading_rg),
            "colour_shading_bg_pct": _fmt(self.colour_shading_bg),
        }


def shading(image: Any, *, window: float = 0.05) -> ShadingResult:
    """Lens shading of a linear flat-field capture (H, W) or (3, H, W): corner windows vs centre window.

    Windows are squares of side ``window·min(H, W)`` (≥ 2 px) at the four corners and the centre.
    """
    a = _image(image)
    if not (isinstance(window, (int, float)) and 0 < window <= 0.5):
        raise InvalidParameter(f"window must be in (0, 0.5] of the shorter side; got {window!r}")
    h, w = a.shape[-2:]
    n = max(2, round(window * min(h, w)))
    y0, x0 = (h - n) // 2, (w - n) // 2
    wins = {
        "top_left": (slice(0, n), slice(0, n)),
        "top_right": (slice(0, n), slice(w - n, w)),
        "bottom_left": (slice(h - n, h), slice(0, n)),
        "bottom_right": (slice(h - n, h), slice(w - n, w)),
    }
    centre = (slice(y0, y0 + n), slice(x0, x0 + n))
    planes = a if a.ndim == 3 else a[None]
    means = {k: planes[(slice(None), *s)].mean(axis=(1, 2)) for k, s in {**wins, "centre": centre}.items()}
    lum_w = np.asarray(LUMINANCE_WEIGHTS) if a.ndim == 3 else np.ones(1)
    if np.any(means["centre"] <= 0) or any(np.any(means[k] <= 0) for k in wins):
        raise InvalidParameter("shading needs a positive linear flat field (a window mean is ≤ 0)")

    def ev(k: str, c: int | None = None) -> float:
        if c is None:
            return float(np.log2((lum_w @ means[k]) / (lum_w @ means["centre"])))
        return float(np.log2(means[k][c] / means["centre"][c]))

    lum = tuple(ev(k) for k in wins)
    chans = tuple(tuple(ev(k, c) for c in range(3)) for k in wins) if a.ndim == 3 else ()
    if a.ndim == 3:
        rc = means["centre"]
        rg = max(abs((means[k][0] / means[k][1]) / (rc[0] / rc[1]) - 1.0) for k in wins) * 100.0
        bg = max(abs((means[k][2] / means[k][1]) / (rc[2] / rc[1]) - 1.0) for k in wins) * 100.0
    else:
        rg = bg = math.nan
    return ShadingResult(tuple(wins), lum, chans, float(min(lum)), float(rg), float(bg))


# --------------------------------------------------------------------------- lateral chromatic aberration
@dataclass(frozen=True)
class LateralCAResult:
    """Lateral CA per slanted-edge ROI: R−G and B−G edge displacement along the edge normal (px),
    signed radially (+ = the channel's image lies farther from the centre), at each ROI's field height
    (distance of the ROI centre from the image centre over the half-diagonal)."""

    field_heights: tuple[float, ...]
    shift_rg: tuple[float, ...]
    shift_bg: tuple[float, ...]
    max_abs: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "field_height": list(self.field_heights),
            "lateral_ca_rg_px": list(self.shift_rg),
            "lateral_ca_bg_px": list(self.shift_bg),
            "lateral_ca_max_px": self.max_abs,
        }


def _edge_position(res: SFRResult, rows: int, cols: int) -> float:
    """Edge location at the ROI's middle row/column, in ROI coordinates along x (vertical) or y."""
    span_along = rows if res.orientation == "vertical" else cols
    span_across = cols if res.orientation == "vertical" else rows
    x_o = float(np.polyval(res.edge_fit, (span_along - 1) / 2.0))
    return x_o if res.polarity == "dark-to-bright" else (span_across - 1) - x_o


def lateral_ca(image: Any, rois: Any, *, oversample: int = 4) -> LateralCAResult:
    """Lateral chromatic aberration (px) from slanted-edge ROIs of a linear (3, H, W) image.

    In each ROI the per-channel edge is located as in ISO 12233 e-SFR (row centroids of the derivative,
    line fit: :func:`obscura.lab.measure.sfr.esfr`); the R and B edges' offsets from the G edge at the
    ROI centre, times the cosine of the tilt, give the displacement along the edge normal.
    """
    a = _image(image, colour=True)
    h, w = a.shape[-2:]
    if not isinstance(rois, (list, tuple)) or not rois:
        raise InvalidParameter(f"rois must be a non-empty list of (x0, y0, x1, y1); got {rois!r}")
    cx, cy, half_diag = (w - 1) / 2.0, (h - 1) / 2.0, 0.5 * math.hypot(h, w)
    fh, srg, sbg = [], [], []
    for roi in rois:
        x0, y0, x1, y1 = _check_roi(roi, h, w)
        sub = a[:, y0:y1, x0:x1]
        res = esfr(sub, oversample=oversample)
        chans = res.channels
        if len({c.orientation for c in chans}) != 1:
            raise InvalidParameter(f"roi {roi!r}: the channels disagree on the edge orientation")
        pos = [_edge_position(c, y1 - y0, x1 - x0) for c in chans]
        cos_t = math.cos(math.radians(chans[1].angle_deg))
        rx, ry = (x0 + x1 - 1) / 2.0 - cx, (y0 + y1 - 1) / 2.0 - cy
        off = rx if chans[1].orientation == "vertical" else ry
        sign = 1.0 if off >= 0 else -1.0
        fh.append(math.hypot(rx, ry) / half_diag)
        srg.append(sign * (pos[0] - pos[1]) * cos_t)
        sbg.append(sign * (pos[2] - pos[1]) * cos_t)
    m = max(max(abs(v) for v in srg), max(abs(v) for v in sbg))
    return LateralCAResult(tuple(fh), tuple(srg), tuple(sbg), float(m))


# --------------------------------------------------------------------------- ringing
@dataclass(frozen=True)
class RingingResult:
    """Edge ringing from the ESF/LSF: overshoot/undershoot (% of the step) and ringing energy (% of the
    LSF energy outside its main lobe, the lobe bounded by the zero crossings around the peak)."""

    overshoot: float
    undershoot: float
    ringing: float
    main_lobe_px: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "overshoot_pct": self.overshoot,
            "undershoot_pct": self.undershoot,
            "ringing_pct": self.ringing,
            "main_lobe_px": self.main_lobe_px,
        }


def ringing(edge: Any, *, oversample: int = 4) -> RingingResult:
    """Ringing of a slanted edge: ``edge`` is an :class:`SFRResult` or a ROI for :func:`esfr`.

    Overshoot/undershoot are the ESF's excursions beyond its bright/dark plateaus (as in ``esfr``). The
    ringing energy is ``Σ lsf² outside the main lobe / Σ lsf²`` ×100, the main lobe running from the LSF
    peak to the first sign change on each side.
    """
    res = edge if isinstance(edge, SFRResult) else esfr(edge, oversample=oversample)
    lsf = np.asarray(res.lsf, dtype=np.float64)
    if lsf.size < 3 or not np.any(lsf > 0):
        raise InvalidParameter("the edge's line spread function has no positive peak")
    p = int(np.argmax(lsf))
    lo = p
    while lo > 0 and lsf[lo - 1] > 0:
        lo -= 1
    hi = p
    while hi < lsf.size - 1 and lsf[hi + 1] > 0:
        hi += 1
    e = lsf * lsf
    total = float(e.sum())
    outside = total - float(e[lo : hi + 1].sum())
    return RingingResult(
        overshoot=float(res.overshoot),
        undershoot=float(res.undershoot),
        ringing=100.0 * outside / total,
        main_lobe_px=(hi - lo + 1) / res.oversample,
    )


# --------------------------------------------------------------------------- aliasing and moiré
@dataclass(frozen=True)
class AliasingResult:
    """Aliasing energy: ``Σ (image − reference)²`` over the region, over the reference's AC energy
    ``Σ (reference − mean)²`` over the whole image (a ratio; ×100 for %)."""

    aliasing_energy: float
    region_pixels: int

    def to_dict(self) -> dict[str, Any]:
        return {"aliasing_energy": self.aliasing_energy, "region_pixels": self.region_pixels}


def aliasing_energy(image: Any, reference: Any, *, region: Any = None) -> AliasingResult:
    """Energy in a captured zone plate (or star) that the ideal band-limited ``reference`` lacks.

    ``reference`` is the chart as a perfect camera renders it at the capture's resolution (the ideal
    low-passed zone plate: frequencies beyond Nyquist removed), registered and at the same exposure;
    ``region`` (bool (H, W)) restricts the sum, e.g. to the part of a zone plate beyond the Nyquist
    radius, where the reference is flat and any modulation is folded-back (aliased) energy.
    Colour inputs are reduced to BT.709 luminance.
    """
    a = _luminance(_image(image))
    r = _luminance(_image(reference, "reference"))
    if a.shape != r.shape:
        raise ShapeError(f"image and reference must have the same size; got {a.shape} and {r.shape}")
    mask = np.ones(a.shape, dtype=bool) if region is None else _mask(region, "region", a.shape)
    ac = float(((r - r.mean()) ** 2).mean())
    if ac <= 0:
        raise InvalidParameter("the reference is flat: it has no modulation to compare against")
    err = float(((a - r) ** 2)[mask].sum()) / a.size
    return AliasingResult(aliasing_energy=err / ac, region_pixels=int(mask.sum()))


@dataclass(frozen=True)
class MoireResult:
    """Colour moiré in a neutral chart region: variance of a* and b* (ΔE² units) and mean chroma C*ab."""

    chroma_energy: float  # var(a*) + var(b*)
    var_a: float
    var_b: float
    mean_chroma: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "colour_moire": self.chroma_energy,
            "var_a": self.var_a,
            "var_b": self.var_b,
            "mean_chroma": self.mean_chroma,
        }


def colour_moire(image: Any, *, encoding: str, region: Any = None) -> MoireResult:
    """Colour moiré (false colour) energy of an image of a neutral chart (a zone plate, a star).

    ``encoding``: ``"srgb"`` or ``"linear"`` (sRGB primaries, white = 1); ``region``: bool (H, W) mask.
    """
    from obscura.lab.measure.reference import rgb_to_lab

    a = _image(image, colour=True)
    lab = rgb_to_lab(torch.from_numpy(a), encoding=encoding).numpy()
    if region is not None:
        mask = _mask(region, "region", a.shape[-2:])
        av, bv = lab[1][mask], lab[2][mask]
    else:
        av, bv = lab[1].ravel(), lab[2].ravel()
    va, vb = float(av.var()), float(bv.var())
    return MoireResult(va + vb, va, vb, float(np.hypot(av, bv).mean()))


# --------------------------------------------------------------------------- ghosting
@dataclass(frozen=True)
class GhostingResult:
    """Ghosting in a moving region: PSNR (dB) against the ground truth inside ``mask`` and the double-edge
    score, the normalised cross-correlation of the error's gradient magnitude with the double-edge map
    a ghost would make: the gradient magnitude of (reference displaced by the motion − reference)
    (≈ 0 without a ghost, → 1 with a displaced copy blended in)."""

    psnr: float
    double_edge: float
    detected: bool

    def to_dict(self) -> dict[str, Any]:
        return {"ghost_psnr_db": _fmt(self.psnr), "double_edge_ncc": self.double_edge, "ghost_detected": self.detected}


def _shift(x: np.ndarray, dx: float, dy: float) -> np.ndarray:
    return ndimage.shift(x, (dy, dx), order=1, mode="nearest")


def _grad_mag(x: np.ndarray) -> np.ndarray:
    return np.hypot(ndimage.sobel(x, axis=1), ndimage.sobel(x, axis=0))


def ghosting(
    image: Any,
    reference: Any,
    *,
    mask: Any,
    motion: tuple[float, float],
    data_range: float,
    threshold: float = 0.3,
) -> GhostingResult:
    """Ghosting of a merged or deghosted image against the ground truth ``reference``.

    ``mask``: bool (H, W), the moving object's region in the reference (grown by |motion| internally
    for the double-edge search); ``motion``: (dx, dy) px, the displacement of the object in the other
    frame(s) — a ghost is a faint copy at that offset; ``data_range``: the value span for PSNR.
    ``detected`` when the double-edge NCC exceeds ``threshold``.
    """
    a = _luminance(_image(image))
    r = _luminance(_image(reference, "reference"))
    if a.shape != r.shape:
        raise ShapeError(f"image and reference must have the same size; got {a.shape} and {r.shape}")
    if isinstance(data_range, bool) or not isinstance(data_range, (int, float)) or not data_range > 0:
        raise InvalidParameter(f"data_range must be a positive number; got {data_range!r}")
    m = _mask(mask, "mask", a.shape)
    try:
        dx, dy = (float(v) for v in motion)
    except (TypeError, ValueError):
        raise InvalidParameter(f"motion must be (dx, dy) in px; got {motion!r}") from None
    if not (math.isfinite(dx) and math.isfinite(dy)) or math.hypot(dx, dy) < 0.5:
        raise InvalidParameter(f"motion must be finite and at least 0.5 px long to tell a ghost apart; got {motion!r}")
    mse = float(((a - r) ** 2)[m].mean())
    p = 10.0 * math.log10(data_range**2 / mse) if mse > 0 else math.inf
    grow = math.ceil(math.hypot(dx, dy)) + 2
    region = ndimage.binary_dilation(m, iterations=grow)
    err_edges = _grad_mag(a - r)[region]
    # A ghost α·(shift(ref) − ref) puts edges at the object's place and at its displaced place: the
    # expected double-edge map is the gradient magnitude of shift(ref) − ref (a matched filter).
    ghost_edges = _grad_mag(_shift(r, dx, dy) - r)[region]
    ea, eb = err_edges - err_edges.mean(), ghost_edges - ghost_edges.mean()
    den = math.sqrt(float((ea * ea).sum()) * float((eb * eb).sum()))
    ncc = float((ea * eb).sum()) / den if den > 0 else 0.0
    return GhostingResult(psnr=p, double_edge=ncc, detected=ncc > threshold)
