"""Apply DNG opcodes (DNG 1.4 §6, Adobe 2012) to a mosaic or an RGB image.

``apply_opcodes`` runs an OpcodeList1/2 on a (H, W) mosaic or a (C, H, W) LinearRaw image, or an
OpcodeList3 on a (3, H, W) demosaiced image. Opcodes are looked up in :data:`OPCODES` by name; an
opcode obscura does not implement, or one that does not apply to the data given (e.g. a warp on a
mosaic), is skipped when its flags mark it optional (bit 0) and raises :class:`InvalidParameter`
otherwise.

Units: the opcodes' float parameters (deltas, polynomial, MapTable codes) are defined on the signal
normalized to 0..1; ``scale`` is the value of the data that stands for 1.0: 1.0 for linearized data
(OpcodeList2 and 3), 65535.0 for raw 16-bit codes (OpcodeList1), as the DNG SDK does. Unlike the SDK,
results are not clipped to 0..1 (later stages keep the highlight headroom and the noise below black).
Areas: ``top, left, bottom, right`` (bottom and right exclusive), ``plane, planes``, ``row_pitch,
col_pitch``. Real files describe areas on the full sensor while a reader may crop to the visible area, so,
as the DNG SDK does, an area (and a FixBadPixelsList point or rectangle, and TrimBounds) is clipped to its
overlap with the image, and an opcode whose area misses the image does nothing.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

from obscura.core.cfa import cfa_period
from obscura.core.errors import InvalidParameter, ShapeError
from obscura.core.registry import Registry
from obscura.core.types import DngOpcode
from obscura.isp.bad_pixels import bad_pixel_mask, fill_bad_pixels
from obscura.isp.lens import fix_vignette_radial, warp_rectilinear

__all__ = ["OPCODES", "apply_opcodes", "gain_map_gains", "OPTIONAL_FLAG"]

OPCODES = Registry("dng opcode")
OPTIONAL_FLAG = 1  # DNG 1.4 §6: flags bit 0 = optional; bit 1 = may be skipped for previews

# BayerPhase (DNG FixBadPixels*): 0 = top-left pixel red, 1 = green in a red row, 2 = green in a blue row, 3 = blue
_PHASE_CFA = {0: "RGGB", 1: "GRBG", 2: "GBRG", 3: "BGGR"}


class _NotApplicable(Exception):
    """The opcode cannot be applied to this kind of data (skipped when optional)."""


def apply_opcodes(x: torch.Tensor, opcodes: Sequence[DngOpcode], *, cfa: str, scale: float = 1.0) -> torch.Tensor:
    """Apply DNG opcodes in order to ``x`` ((H, W) mosaic or (C, H, W) image); returns a new float32 tensor.

    ``cfa`` is the mosaic's CFA pattern ("" for an RGB or LinearRaw image); ``scale`` the data value of
    normalized 1.0 (see the module docstring). TrimBounds may change the size.
    """
    if not isinstance(x, torch.Tensor) or x.ndim not in (2, 3) or x.shape[-1] < 1 or x.shape[-2] < 1:
        raise ShapeError(f"opcodes apply to a (H, W) mosaic or a (C, H, W) image; got {_shape(x)}")
    if x.ndim == 3 and cfa:
        raise ShapeError(f"a (C, H, W) image has no CFA; got cfa={cfa!r} with shape {tuple(x.shape)}")
    if not isinstance(scale, int | float) or not math.isfinite(scale) or scale <= 0:
        raise InvalidParameter(f"scale must be a positive finite number; got {scale!r}")
    out = x.to(torch.float32).clone()  # the one working copy; the handlers below work in place on it
    for op in opcodes:
        if not isinstance(op, DngOpcode):
            raise InvalidParameter(f"opcodes must be DngOpcode objects; got {type(op).__name__}")
        optional = bool(op.flags & OPTIONAL_FLAG)
        if op.name not in OPCODES:
            if optional:
                continue
            raise InvalidParameter(f"DNG opcode {op.name} (id {op.id}) is not supported and not marked optional")
        try:
            out = OPCODES.get(op.name)(out, op.params, cfa=cfa, scale=float(scale))
        except _NoOverlap:
            continue  # the area does not meet the image (e.g. a cropped one): nothing to do, as the DNG SDK
        except _NotApplicable as e:
            if optional:
                continue
            raise InvalidParameter(f"DNG opcode {op.name} (id {op.id}) cannot be applied: {e}") from None
    return out.contiguous()


# ---------------------------------------------------------------------------------------------- helpers


def _shape(x: object) -> object:
    return tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__


def _get(p: Mapping[str, Any], key: str, name: str, default: Any = None) -> Any:
    if key in p:
        return p[key]
    if default is not None:
        return default
    raise InvalidParameter(f"DNG opcode {name} lacks the parameter {key!r}")


def _int(p: Mapping[str, Any], key: str, name: str, default: int | None = None) -> int:
    v = _get(p, key, name, default)
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise InvalidParameter(f"DNG opcode {name}: {key} must be an integer; got {v!r}") from None
    if not math.isfinite(f) or f != int(f):
        raise InvalidParameter(f"DNG opcode {name}: {key} must be an integer; got {v!r}")
    return int(f)


def _float(p: Mapping[str, Any], key: str, name: str, default: float | None = None) -> float:
    v = _get(p, key, name, default)
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise InvalidParameter(f"DNG opcode {name}: {key} must be a number; got {v!r}") from None
    if not math.isfinite(f):
        raise InvalidParameter(f"DNG opcode {name}: {key} must be finite; got {v!r}")
    return f


def _floats(p: Mapping[str, Any], key: str, name: str) -> list[float]:
    v = _get(p, key, name)
    try:
        out = [float(t) for t in v]
    except (TypeError, ValueError):
        raise InvalidParameter(f"DNG opcode {name}: {key} must be a sequence of numbers") from None
    if not all(math.isfinite(t) for t in out):
        raise InvalidParameter(f"DNG opcode {name}: {key} holds NaN or infinite values")
    return out


def _planes3(x: torch.Tensor) -> torch.Tensor:
    """(C, H, W) view of ``x`` (a 2-D mosaic is one plane)."""
    return x[None] if x.ndim == 2 else x


class _NoOverlap(Exception):
    """The opcode's area does not meet the image: nothing to do."""


def _clip_range(start: int, stop: int, pitch: int, size: int) -> tuple[int, int, int]:
    """The part of ``range(start, stop, pitch)`` inside ``0..size−1``: (first, stop, index of first in the range)."""
    skip = max(0, -(start // pitch)) if start < 0 else 0  # steps of the pitch grid before 0
    first = start + skip * pitch
    return first, min(stop, size), skip


class _Area:
    """A DNG AreaSpec clipped to the data: rows, cols, planes and strided slices.

    Real files describe the opcode areas on the full sensor while a reader may apply them to a cropped
    image (the visible area); as the DNG SDK does, an area is clipped to its overlap with the image, on
    its own row/column pitch grid, and an opcode whose area does not meet the image does nothing
    (:class:`_NoOverlap`). An area that is empty by itself or has a bad pitch or plane is an error.
    """

    def __init__(self, x: torch.Tensor, p: Mapping[str, Any], name: str) -> None:
        c, h, w = _planes3(x).shape
        top, left = _int(p, "top", name), _int(p, "left", name)
        bottom, right = _int(p, "bottom", name), _int(p, "right", name)
        self.plane = _int(p, "plane", name, 0)
        self.planes = _int(p, "planes", name, 1)
        self.row_pitch = _int(p, "row_pitch", name, 1)
        self.col_pitch = _int(p, "col_pitch", name, 1)
        if not (top < bottom and left < right):
            raise InvalidParameter(
                f"DNG opcode {name}: area (top, left, bottom, right)={(top, left, bottom, right)} is empty"
            )
        if self.row_pitch < 1 or self.col_pitch < 1:
            raise InvalidParameter(
                f"DNG opcode {name}: row_pitch and col_pitch must be ≥ 1; got {(self.row_pitch, self.col_pitch)}"
            )
        if self.plane < 0 or self.planes < 1 or self.plane >= c:
            raise InvalidParameter(
                f"DNG opcode {name}: plane={self.plane}, planes={self.planes} do not fit data with {c} plane(s)"
            )
        # the full area (for per-row/column value lists) and its overlap with the image
        self.full_rows = len(range(top, bottom, self.row_pitch))
        self.full_cols = len(range(left, right, self.col_pitch))
        self.top, self.bottom, self.row_skip = _clip_range(top, bottom, self.row_pitch, h)
        self.left, self.right, self.col_skip = _clip_range(left, right, self.col_pitch, w)
        if self.top >= self.bottom or self.left >= self.right:
            raise _NoOverlap(f"area {(top, left, bottom, right)} lies outside the {h}×{w} image")
        self.plane_range = range(self.plane, min(self.plane + self.planes, c))
        self.rows = torch.arange(self.top, self.bottom, self.row_pitch, device=x.device)
        self.cols = torch.arange(self.left, self.right, self.col_pitch, device=x.device)
        self.height, self.width = h, w

    def view(self, x: torch.Tensor, plane: int) -> torch.Tensor:
        """The strided view of the area on one plane (writes go to ``x``)."""
        return _planes3(x)[plane, self.top : self.bottom : self.row_pitch, self.left : self.right : self.col_pitch]


Handler = Callable[..., torch.Tensor]


# ---------------------------------------------------------------------------------------------- GainMap


def _interp_matrix(pos: torch.Tensor, origin: float, spacing: float, points: int) -> torch.Tensor:
    """(N, points) bilinear weights of normalized positions on a map line (clamped at its ends, as DNG SDK)."""
    if points == 1:
        return torch.ones(pos.shape[0], 1, dtype=pos.dtype, device=pos.device)
    f = ((pos - origin) / spacing).clamp(0, points - 1)
    i0 = f.floor().clamp(max=points - 2)
    t = f - i0
    i0 = i0.long()
    m = torch.zeros(pos.shape[0], points, dtype=pos.dtype, device=pos.device)
    m.scatter_(1, i0[:, None], (1 - t)[:, None])
    m.scatter_add_(1, (i0 + 1)[:, None], t[:, None])
    return m


def gain_map_gains(params: Mapping[str, Any], height: int, width: int, plane: int = 0, *, device=None) -> torch.Tensor:
    """The gains of a DNG GainMap over its area (rows top:bottom:row_pitch × cols left:right:col_pitch),
    clipped to the ``height × width`` image ((0, 0) when the area misses it).

    Map points sit at ``origin + i·spacing`` in coordinates normalized to the image (0 = top/left edge,
    1 = bottom/right edge); pixel centres are at ``(row + 0.5) / H``; gains are interpolated bilinearly
    and held constant beyond the first and last map points (DNG 1.4 §6, as in the DNG SDK).
    """
    probe = torch.empty(1, 1, 1, device=device).expand(plane + 1, height, width)  # shape only, no memory
    try:
        area = _Area(probe, params, "GainMap")
    except _NoOverlap:
        return torch.zeros(0, 0, device=probe.device)
    return _gain_map_plane(params, area, plane, torch.float32, probe.device)


def _gain_map_plane(
    p: Mapping[str, Any], area: _Area, plane: int, dtype: torch.dtype, device: torch.device
) -> torch.Tensor:
    name = "GainMap"
    pv, ph = _int(p, "map_points_v", name), _int(p, "map_points_h", name)
    mp = _int(p, "map_planes", name, 1)
    if pv < 1 or ph < 1 or mp < 1:
        raise InvalidParameter(f"GainMap: map_points_v, map_points_h and map_planes must be ≥ 1; got {(pv, ph, mp)}")
    sv = _float(p, "map_spacing_v", name) if pv > 1 else 1.0
    sh = _float(p, "map_spacing_h", name) if ph > 1 else 1.0
    ov = _float(p, "map_origin_v", name, 0.0) if pv > 1 else 0.0
    oh = _float(p, "map_origin_h", name, 0.0) if ph > 1 else 0.0
    if sv <= 0 or sh <= 0:
        raise InvalidParameter(f"GainMap: map spacing must be > 0; got (v, h)=({sv}, {sh})")
    gains = _floats(p, "gains", name)
    if len(gains) != pv * ph * mp:
        raise InvalidParameter(f"GainMap: expected {pv}×{ph}×{mp} = {pv * ph * mp} gains; got {len(gains)}")
    g = torch.tensor(gains, dtype=torch.float64, device=device).reshape(pv, ph, mp)[:, :, min(plane, mp - 1)]
    rows = (area.rows.to(torch.float64) + 0.5) / area.height
    cols = (area.cols.to(torch.float64) + 0.5) / area.width
    wv = _interp_matrix(rows, ov, sv, pv)
    wh = _interp_matrix(cols, oh, sh, ph)
    # bilinear interpolation is separable: (rows × pv) @ (pv × ph) @ (ph × cols)
    return ((wv @ g) @ wh.T).to(dtype)


@OPCODES.register("GainMap")
def _op_gain_map(x: torch.Tensor, p: Mapping[str, Any], *, cfa: str, scale: float) -> torch.Tensor:
    area = _Area(x, p, "GainMap")
    for plane in area.plane_range:
        area.view(x, plane).mul_(_gain_map_plane(p, area, plane, x.dtype, x.device))
    return x


# ---------------------------------------------------------------------------------------------- per row / column


def _per_line(x: torch.Tensor, p: Mapping[str, Any], name: str, key: str, along: str, add: bool, scale: float):
    area = _Area(x, p, name)
    vals = _floats(p, key, name)
    n = area.full_rows if along == "row" else area.full_cols
    if len(vals) != n:
        raise InvalidParameter(f"DNG opcode {name}: the area has {n} {along}s but {len(vals)} {key} were given")
    skip, kept = (area.row_skip, len(area.rows)) if along == "row" else (area.col_skip, len(area.cols))
    v = torch.tensor(vals[skip : skip + kept], dtype=x.dtype, device=x.device)
    v = v[:, None] if along == "row" else v[None, :]
    for plane in area.plane_range:
        if add:
            area.view(x, plane).add_(v * scale)
        else:
            area.view(x, plane).mul_(v)
    return x


@OPCODES.register("DeltaPerRow")
def _op_delta_per_row(x, p, *, cfa, scale):
    return _per_line(x, p, "DeltaPerRow", "deltas", "row", True, scale)


@OPCODES.register("DeltaPerColumn")
def _op_delta_per_column(x, p, *, cfa, scale):
    return _per_line(x, p, "DeltaPerColumn", "deltas", "column", True, scale)


@OPCODES.register("ScalePerRow")
def _op_scale_per_row(x, p, *, cfa, scale):
    return _per_line(x, p, "ScalePerRow", "scales", "row", False, scale)


@OPCODES.register("ScalePerColumn")
def _op_scale_per_column(x, p, *, cfa, scale):
    return _per_line(x, p, "ScalePerColumn", "scales", "column", False, scale)


# ---------------------------------------------------------------------------------------------- value maps


@OPCODES.register("MapTable")
def _op_map_table(x, p, *, cfa, scale):
    """16-bit codes ``round(x / scale · 65535)`` → ``table[code] / 65535 · scale`` (codes past the end clamp)."""
    area = _Area(x, p, "MapTable")
    table = _floats(p, "table", "MapTable")
    if not table:
        raise InvalidParameter("DNG opcode MapTable: the table is empty")
    t = torch.tensor(table, dtype=x.dtype, device=x.device) * (scale / 65535.0)
    for plane in area.plane_range:
        v = area.view(x, plane)
        code = (v * (65535.0 / scale)).round().clamp(0, len(table) - 1).long()
        v.copy_(t[code])
    return x


@OPCODES.register("MapPolynomial")
def _op_map_polynomial(x, p, *, cfa, scale):
    """``u ← Σ c_i u^i`` on the normalized signal ``u = x / scale``."""
    area = _Area(x, p, "MapPolynomial")
    coeffs = _floats(p, "coefficients", "MapPolynomial")
    if not coeffs or len(coeffs) > 9:
        raise InvalidParameter(f"DNG opcode MapPolynomial: expected 1 to 9 coefficients; got {len(coeffs)}")
    for plane in area.plane_range:
        v = area.view(x, plane)
        u = v / scale
        y = torch.full_like(u, coeffs[-1])
        for c in reversed(coeffs[:-1]):
            y = y * u + c
        v.copy_(y * scale)
    return x


# ---------------------------------------------------------------------------------------------- geometry


@OPCODES.register("TrimBounds")
def _op_trim_bounds(x, p, *, cfa, scale):
    h, w = x.shape[-2:]
    t, l, b, r = (_int(p, k, "TrimBounds") for k in ("top", "left", "bottom", "right"))
    if not (t < b and l < r):
        raise InvalidParameter(f"DNG opcode TrimBounds: bounds {(t, l, b, r)} are empty")
    t, l, b, r = max(t, 0), max(l, 0), min(b, h), min(r, w)  # clipped to the image, as the DNG SDK
    if t >= b or l >= r:
        raise _NoOverlap(f"bounds {(t, l, b, r)} lie outside the {h}×{w} image")
    if cfa and (t % cfa_period(cfa) or l % cfa_period(cfa)):
        raise _NotApplicable(f"trimming a {cfa} mosaic at ({t}, {l}) would shift its CFA pattern")
    return x[..., t:b, l:r]


@OPCODES.register("WarpRectilinear")
def _op_warp_rectilinear(x, p, *, cfa, scale):
    if x.ndim != 3:
        raise _NotApplicable("WarpRectilinear needs a (C, H, W) image, not a mosaic")
    coeffs = _get(p, "coefficients", "WarpRectilinear")
    n = _int(p, "planes", "WarpRectilinear", len(coeffs))
    if n != len(coeffs):
        raise InvalidParameter(f"DNG opcode WarpRectilinear: planes={n} but {len(coeffs)} coefficient sets")
    center = (_float(p, "center_x", "WarpRectilinear", 0.5), _float(p, "center_y", "WarpRectilinear", 0.5))
    return warp_rectilinear(x, coefficients=coeffs, center=center)


@OPCODES.register("FixVignetteRadial")
def _op_fix_vignette_radial(x, p, *, cfa, scale):
    center = (_float(p, "center_x", "FixVignetteRadial", 0.5), _float(p, "center_y", "FixVignetteRadial", 0.5))
    return fix_vignette_radial(x, k=_floats(p, "k", "FixVignetteRadial"), center=center)


# ---------------------------------------------------------------------------------------------- bad pixels


def _bad_pixel_cfa(x: torch.Tensor, p: Mapping[str, Any], cfa: str, name: str) -> str:
    if x.ndim != 2:
        raise _NotApplicable(f"{name} applies to a CFA mosaic; got shape {tuple(x.shape)}")
    phase = _int(p, "bayer_phase", name, 0)
    if phase not in _PHASE_CFA:
        raise InvalidParameter(f"DNG opcode {name}: bayer_phase must be 0..3; got {phase}")
    # only the CFA period matters for same-colour neighbours; the phase is checked, the pattern follows the data
    return cfa or _PHASE_CFA[phase]


@OPCODES.register("FixBadPixelsConstant")
def _op_fix_bad_pixels_constant(x, p, *, cfa, scale):
    pattern = _bad_pixel_cfa(x, p, cfa, "FixBadPixelsConstant")
    constant = _int(p, "constant", "FixBadPixelsConstant")
    code = (x * (65535.0 / scale)).round() if scale != 65535.0 else x.round()
    return fill_bad_pixels(x, code == constant, cfa=pattern)


@OPCODES.register("FixBadPixelsList")
def _op_fix_bad_pixels_list(x, p, *, cfa, scale):
    pattern = _bad_pixel_cfa(x, p, cfa, "FixBadPixelsList")
    h, w = x.shape
    try:
        pts = [tuple(int(v) for v in pt) for pt in _get(p, "bad_points", "FixBadPixelsList", ())]
        rcs = [tuple(int(v) for v in rc) for rc in _get(p, "bad_rects", "FixBadPixelsList", ())]
    except (TypeError, ValueError):
        pts, rcs = [()], []
    if any(len(pt) != 2 for pt in pts) or any(len(rc) != 4 for rc in rcs):
        raise InvalidParameter(
            "DNG opcode FixBadPixelsList: bad_points must be (row, col) pairs and bad_rects "
            f"(top, left, bottom, right) quadruples of integers; got {p.get('bad_points')!r}, {p.get('bad_rects')!r}"
        )
    # points outside the (cropped) image are dropped and rectangles clipped to it, as the DNG SDK
    points = [(r, c) for r, c in pts if 0 <= r < h and 0 <= c < w]
    rects = []
    for t, l, b, r in rcs:
        if t >= b or l >= r:
            raise InvalidParameter(f"DNG opcode FixBadPixelsList: rectangle {(t, l, b, r)} is empty")
        t, l, b, r = max(t, 0), max(l, 0), min(b, h), min(r, w)
        if t < b and l < r:
            rects.append((t, l, b, r))
    mask = bad_pixel_mask(h, w, points=points, rects=rects, device=x.device)
    return fill_bad_pixels(x, mask, cfa=pattern)
