"""The perceptual operations a look is made of, on tensors in OKLab (Ottosson 2020).

Every operation is a pure function of a (..., 3, H, W) OKLab tensor (L, a, b on dim -3; a single image
(3, H, W) or a batch (N, 3, H, W)) and keyword-only parameters whose defaults leave the image unchanged.
They run on the input's device and dtype. OKLab is used because its lightness L is close to perceived
lightness and its hue lines are close to constant perceived hue, so that a tone curve on L and a
saturation change on chroma leave hues where they were.

The conversions are written here (not called from colour-science) because they must run on tensors inside
the pipeline; the constants are colour-science's (``colour.models.oklab``) and the tests check the result
against ``colour.XYZ_to_Oklab``.

Also here: the metrics that tell looks apart (:func:`midtone_contrast`, :func:`shadow_depth`,
:func:`mean_chroma`, :func:`corner_ratio`, and :func:`midtone_slope` for a before/after pair), each
defined on OKLab L or C.
"""

from __future__ import annotations

import math
from functools import cache

import numpy as np
import torch
from colour.models import oklab as _oklab

from obscura.core.colour import (
    SPACES,
    WHITE_D50,
    WHITE_D65,
    bradford_matrix,
    rgb_to_xyz_d50_matrix,
    srgb_decode,
    srgb_encode,
)
from obscura.core.errors import InvalidParameter, ShapeError

__all__ = [
    "HUE_BANDS",
    "MONO_FILTERS",
    "check_lab",
    "xyz_d65_to_oklab",
    "oklab_to_xyz_d65",
    "rgb_to_oklab",
    "oklab_to_rgb",
    "oklab_to_oklch",
    "oklch_to_oklab",
    "tone_curve_lab",
    "adjust_colour",
    "protect_skin",
    "monochrome",
    "split_tone",
    "vignette",
    "grain_noise",
    "add_grain",
    "soft_limit",
    "gamut_compress",
    "midtone_contrast",
    "midtone_slope",
    "shadow_depth",
    "mean_chroma",
    "corner_ratio",
]

# OKLCh hue (degrees) of the sRGB primaries and secondaries: the centres of the per-hue controls.
HUE_BANDS: dict[str, float] = {
    "red": 29.2,
    "yellow": 109.8,
    "green": 142.5,
    "cyan": 194.8,
    "blue": 264.1,
    "magenta": 328.4,
}

# Contrast filters for black-and-white film as (hue in degrees, strength): a filter lightens the colours
# of its own hue and darkens the opposite ones (a red filter darkens a blue sky and green foliage).
MONO_FILTERS: dict[str, tuple[float, float]] = {
    "none": (0.0, 0.0),
    "yellow": (100.0, 0.5),
    "orange": (60.0, 0.75),
    "red": (29.2, 1.0),
    "green": (142.5, 0.6),
}

_EPS = 1e-8


def check_lab(x: object, name: str = "image") -> torch.Tensor:
    """``x`` must be a floating-point (3, H, W) or (N, 3, H, W) tensor; returns it."""
    if not isinstance(x, torch.Tensor):
        raise ShapeError(f"{name} must be a torch.Tensor; got {type(x).__name__}")
    if x.ndim not in (3, 4) or x.shape[-3] != 3 or x.shape[-1] < 1 or x.shape[-2] < 1:
        raise ShapeError(f"{name} must be (3, H, W) or (N, 3, H, W); got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ShapeError(f"{name} must be floating point; got {x.dtype}")
    return x


def _mat(m: np.ndarray, x: torch.Tensor) -> torch.Tensor:
    """Apply a (3, 3) matrix on dim -3 of a (..., 3, H, W) tensor; the constant follows the input."""
    mt = torch.as_tensor(np.asarray(m, dtype=np.float64), dtype=x.dtype, device=x.device)
    return torch.einsum("ij,...jhw->...ihw", mt, x)


def _cbrt(x: torch.Tensor) -> torch.Tensor:
    return torch.sign(x) * x.abs().pow(1.0 / 3.0)


def xyz_d65_to_oklab(x: torch.Tensor) -> torch.Tensor:
    """CIE XYZ (D65 white, Y = 1 for white) → OKLab (Ottosson 2020); negative LMS are mirrored."""
    check_lab(x)
    return _mat(_oklab.MATRIX_2_LMS_TO_LAB, _cbrt(_mat(_oklab.MATRIX_1_XYZ_TO_LMS, x)))


def oklab_to_xyz_d65(x: torch.Tensor) -> torch.Tensor:
    """OKLab → CIE XYZ (D65) (Ottosson 2020)."""
    check_lab(x)
    return _mat(_oklab.MATRIX_1_LMS_TO_XYZ, _mat(_oklab.MATRIX_2_LAB_TO_LMS, x).pow(3))


@cache
def _rgb_to_xyz_d65(space: str) -> np.ndarray:
    """Linear ``space`` → XYZ D65 (through XYZ D50, Bradford-adapted, as everywhere in obscura)."""
    return bradford_matrix(WHITE_D50, WHITE_D65) @ rgb_to_xyz_d50_matrix(space)


def _split_space(space: str, *, camera: bool = True) -> tuple[str, bool]:
    """(linear space, encoded?) for ``space``; unknown spaces (and ``camera`` unless allowed) raise."""
    if space not in SPACES or (not camera and space == "camera"):
        valid = ", ".join(s for s in SPACES if camera or s != "camera")
        raise InvalidParameter(f"unknown colour space {space!r}: space must be one of {valid}")
    s = SPACES[space]
    return s.linear, s.transfer == "srgb"


def _encoded(space: str) -> bool:
    return _split_space(space)[1]


def rgb_to_oklab(x: torch.Tensor, *, space: str = "linear_srgb") -> torch.Tensor:
    """An RGB (or ``xyz_d50``) tensor in ``space`` → OKLab (the white of ``space`` maps to L = 1, a = b = 0).
    Encoded spaces (``srgb``, ``display_p3``) are decoded first."""
    check_lab(x)
    if _encoded(space):
        x, space = srgb_decode(x), SPACES[space].linear
    return _mat(_oklab.MATRIX_2_LMS_TO_LAB, _cbrt(_mat(_oklab.MATRIX_1_XYZ_TO_LMS @ _rgb_to_xyz_d65(space), x)))


def oklab_to_rgb(x: torch.Tensor, *, space: str = "linear_srgb") -> torch.Tensor:
    """OKLab → ``space`` (inverse of :func:`rgb_to_oklab`; encoded spaces are encoded at the end)."""
    check_lab(x)
    enc = _encoded(space)
    lin = SPACES[space].linear
    m = np.linalg.inv(_rgb_to_xyz_d65(lin)) @ _oklab.MATRIX_1_LMS_TO_XYZ
    y = _mat(m, _mat(_oklab.MATRIX_2_LAB_TO_LMS, x).pow(3))
    return srgb_encode(y) if enc else y


def oklab_to_oklch(x: torch.Tensor) -> torch.Tensor:
    """OKLab → OKLCh (hue in degrees, [0, 360))."""
    L, a, b = x.unbind(-3)
    C = torch.hypot(a, b)
    h = torch.rad2deg(torch.atan2(b, a)).remainder(360.0)
    return torch.stack((L, C, h), dim=-3)


def oklch_to_oklab(x: torch.Tensor) -> torch.Tensor:
    """OKLCh (hue in degrees) → OKLab."""
    L, C, h = x.unbind(-3)
    r = torch.deg2rad(h)
    return torch.stack((L, C * torch.cos(r), C * torch.sin(r)), dim=-3)


# ---------------------------------------------------------------------------------------------- tone


def _finite_power(u: torch.Tensor, e: float) -> torch.Tensor:
    """u^e on [0, 1] for e ≥ 1; for e < 1 (whose power has an infinite slope at black, which no LUT can hold)
    u·exp((1 − e)(1 − u)), which has the power's value at 0 and 1 and its slope e at 1, and slope e^(1 − e)
    at 0."""
    if e >= 1.0:
        return u.pow(e)
    return u * torch.exp((1.0 - e) * (1.0 - u))


def _contrast_curve(L: torch.Tensor, *, pivot: float, contrast: float) -> torch.Tensor:
    """Monotone S-curve of [0, 1] onto itself through (pivot, pivot) with slope ``contrast`` there: a power
    (:func:`_finite_power`) in the shadows and a mirrored one in the highlights; values outside [0, 1] pass
    unchanged (the curve is continuous at 0 and 1)."""
    u = (L / pivot).clamp(0.0, 1.0)
    v = ((1.0 - L) / (1.0 - pivot)).clamp(0.0, 1.0)
    lower = pivot * _finite_power(u, contrast)
    upper = 1.0 - (1.0 - pivot) * _finite_power(v, contrast)
    y = torch.where(pivot > L, lower, upper)
    return torch.where((L < 0) | (L > 1), L, y)


def _bend(u: torch.Tensor, x: float) -> torch.Tensor:
    """u·exp(−k(1 − u)²) on [0, 1], k = 4·ln 2·(2^x − 1): value 0 at 0 and 1 at 1, slope 1 at 1 (so it joins
    the identity smoothly), finite slope e^−k at 0, equal to the power u^(2^x) at u = ½; monotone for k > −2."""
    k = max(4.0 * math.log(2.0) * (2.0**x - 1.0), -1.9)
    return u * torch.exp(-k * (1.0 - u) ** 2)


def _toe_shoulder(L: torch.Tensor, *, pivot: float, toe: float, shoulder: float) -> torch.Tensor:
    """Toe (below the pivot) and shoulder (above it, mirrored) bends of [0, 1] with :func:`_bend`: C¹ at the
    pivot, where the slope stays 1; values outside [0, 1] pass unchanged."""
    u = (L / pivot).clamp(0.0, 1.0)
    v = ((1.0 - L) / (1.0 - pivot)).clamp(0.0, 1.0)
    lower = pivot * _bend(u, toe) if toe != 0.0 else L
    upper = 1.0 - (1.0 - pivot) * _bend(v, shoulder) if shoulder != 0.0 else L
    y = torch.where(pivot > L, lower, upper)
    return torch.where((L < 0) | (L > 1), L, y)


def tone_curve_lab(
    lab: torch.Tensor,
    *,
    contrast: float = 1.0,
    pivot: float = 0.57,
    toe: float = 0.0,
    shoulder: float = 0.0,
    black: float = 0.0,
    highlight_rolloff: float = 0.0,
    chroma_follow: float = 1.0,
) -> torch.Tensor:
    """A tone curve on OKLab lightness, in this order:

    - ``black``: black point; L ← (L − black)/(1 − black); > 0 crushes (deeper blacks), < 0 lifts (faded);
    - ``toe`` / ``shoulder``: a bend of the shadows L < pivot (> 0 deepens them) and of the highlights
      (> 0 compresses them towards white) that leaves the slope at the pivot at 1 and matches the power
      2^toe (2^shoulder on 1 − L) half-way; the slope at black stays finite (see :func:`_bend`);
    - ``contrast``: the slope at ``pivot`` of a power S-curve (``pivot`` 0.57 is OKLab L of 18 % grey);
    - ``highlight_rolloff`` in [0, 1]: lightness above the knee 1 − 0.3·r is compressed so that
      L = 1 + r (about 2.4× diffuse white for r = 1) lands on white instead of clipping.

    ``chroma_follow``: a and b are scaled by (L'/L)^chroma_follow where the curve darkens, so that crushed
    blacks lose their colour with their light (the hue is kept). The defaults leave ``lab`` unchanged.
    """
    check_lab(lab)
    L, a, b = lab.unbind(-3)
    y = L
    if black != 0.0:
        y = (y - black) / (1.0 - black)
        y = y.clamp_min(0.0) if black > 0 else y
    if toe != 0.0 or shoulder != 0.0:
        y = _toe_shoulder(y, pivot=pivot, toe=toe, shoulder=shoulder)
    if contrast != 1.0:
        y = _contrast_curve(y, pivot=pivot, contrast=contrast)
    if highlight_rolloff > 0.0:
        r = highlight_rolloff
        k = 1.0 - 0.3 * r
        t_max = (1.0 + r - k) / (1.0 - k)  # input t = (L − k)/(1 − k) that lands on white
        t = ((y - k) / (1.0 - k)).clamp_min(0.0)
        s = t / (1.0 + t * (t_max - 1.0) / t_max)  # slope 1 at the knee, s(t_max) = 1
        y = torch.where(y > k, k + (1.0 - k) * s, y)
    if chroma_follow != 0.0:
        ratio = (y / L.clamp_min(_EPS)).clamp(0.0, 1.0).pow(chroma_follow)
        ratio = torch.where(L > _EPS, ratio, torch.ones_like(ratio))
        a, b = a * ratio, b * ratio
    return torch.stack((y, a, b), dim=-3)


# -------------------------------------------------------------------------------------------- colour


def _smoothstep(t: torch.Tensor) -> torch.Tensor:
    """3t² − 2t³ on t clamped to [0, 1]: a C¹ ramp from 0 to 1 (zero slope at both ends)."""
    t = t.clamp(0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _smooth_ramp_down(u: torch.Tensor, width: float) -> torch.Tensor:
    """max(1 − u, 0) with its corner at u = 1 rounded over [1 − width, 1 + width] by a parabola (C¹)."""
    q = (1.0 + width - u).clamp(0.0, 2.0 * width)
    return torch.where(u < 1.0 - width, 1.0 - u, q * q / (4.0 * width))


def _band_weights(h: torch.Tensor) -> list[torch.Tensor]:
    """Per-hue-band weights at hue ``h`` (degrees), summing to 1: a smoothstep between neighbouring band
    centres (C¹ in hue, so that a hue-band control puts no kink in the look)."""
    centres = list(HUE_BANDS.values())
    n = len(centres)
    out = []
    for i, c in enumerate(centres):
        prev_c, next_c = centres[i - 1], centres[(i + 1) % n]
        left = (c - prev_c) % 360.0
        right = (next_c - c) % 360.0
        d = (h - c + 180.0).remainder(360.0) - 180.0  # signed distance in (−180, 180]
        w = torch.where(d < 0, 1.0 + d / left, 1.0 - d / right)
        out.append(_smoothstep(w))
    return out


def adjust_colour(
    lab: torch.Tensor,
    *,
    saturation: float = 1.0,
    vibrance: float = 0.0,
    hue_shift: float = 0.0,
    saturation_by_hue: dict[str, float] | None = None,
    hue_by_hue: dict[str, float] | None = None,
) -> torch.Tensor:
    """Chroma and hue in OKLCh: C ← C·saturation·(1 + per-band saturation); vibrance raises low chroma more
    than high (C ← C·(1 + vibrance·r(C/0.3)), r(u) = 1 − u falling to 0 at u ≈ 1 with a rounded corner);
    h ← h + hue_shift + per-band shift (degrees).

    Per-band values (keys of :data:`HUE_BANDS`) are relative (0 = unchanged) and blend with smoothstep
    weights between band centres, faded in from the neutral axis over chroma 0–0.04, so every control is
    smooth (C¹) in colour. L is untouched.
    """
    check_lab(lab)
    L, a, b = lab.unbind(-3)
    C = torch.hypot(a, b)
    h = torch.rad2deg(torch.atan2(b, a))
    sat = torch.full_like(C, float(saturation))
    shift = torch.full_like(C, float(hue_shift))
    if saturation_by_hue or hue_by_hue:
        # per-band controls fade in from the neutral axis (smoothstep over C < 0.04), where hue is undefined:
        # a hue-dependent change there is a cone (curvature ∝ 1/C) that no LUT of the look could hold
        fade = _smoothstep(C / _BAND_MIN_CHROMA)
        weights = [w * fade for w in _band_weights(h)]
        for w, name in zip(weights, HUE_BANDS):
            if saturation_by_hue and saturation_by_hue.get(name, 0.0):
                sat = sat * (1.0 + w * float(saturation_by_hue[name]))
            if hue_by_hue and hue_by_hue.get(name, 0.0):
                shift = shift + w * float(hue_by_hue[name])
    C2 = C * sat
    if vibrance != 0.0:
        C2 = C2 * (1.0 + vibrance * _smooth_ramp_down(C / 0.3, 0.25))
    C2 = C2.clamp_min(0.0)
    r = torch.deg2rad(h + shift)
    return torch.stack((L, C2 * torch.cos(r), C2 * torch.sin(r)), dim=-3)


_BAND_MIN_CHROMA = 0.04  # OKLCh chroma below which per-hue-band controls fade out
_SKIN_FADE = 30.0  # degrees of hue over which skin protection fades out beyond its width
_SKIN_MIN_CHROMA = 0.04  # OKLCh chroma below which it fades out (the ColorChecker's skins are at 0.054, 0.070)


def protect_skin(
    before: torch.Tensor,
    after: torch.Tensor,
    *,
    amount: float = 0.0,
    hue: float = 45.0,
    width: float = 12.0,
    max_chroma: float = 0.12,
) -> torch.Tensor:
    """Hold skin tones: where the hue of ``before`` is within ±``width`` degrees of ``hue`` (fading out with a
        raised cosine over the next 30°), its chroma below ``max_chroma`` (fading out up to 1.5×) and above 0.04
    (fading in from neutral, smoothstep), the chroma
        and hue of ``after`` are pulled back to those of ``before`` by ``amount`` (1 = skin keeps its hue and
        chroma exactly). Lightness comes from ``after``. The ColorChecker's skins are at OKLCh hue 38–42°."""
    check_lab(before, "before")
    check_lab(after, "after")
    if amount == 0.0:
        return after
    C0 = torch.hypot(before[..., 1, :, :], before[..., 2, :, :])
    h0 = torch.rad2deg(torch.atan2(before[..., 2, :, :], before[..., 1, :, :]))
    d = ((h0 - hue + 180.0).remainder(360.0) - 180.0).abs()
    t = ((d - width) / _SKIN_FADE).clamp(0.0, 1.0)
    w_hue = 0.5 + 0.5 * torch.cos(math.pi * t)
    w_c = 1.0 - _smoothstep((C0 / max_chroma - 1.0) * 2.0)  # 1 up to max, 0 from 1.5×, C¹
    # near-neutral colours (C < 0.04, below any skin) fade out of the mask: a hue window is infinitely sharp
    # at the neutral axis, and its curvature there (∝ 1/C) is what a LUT of the look could not hold
    w_c = w_c * _smoothstep(C0 / _SKIN_MIN_CHROMA)
    w = amount * w_hue * w_c
    La, aa, ba = after.unbind(-3)
    C1 = torch.hypot(aa, ba)
    h1 = torch.rad2deg(torch.atan2(ba, aa))
    dh = (h1 - h0 + 180.0).remainder(360.0) - 180.0
    C = C1 + (C0 - C1) * w
    h = torch.deg2rad(h1 - dh * w)
    return torch.stack((La, C * torch.cos(h), C * torch.sin(h)), dim=-3)


def monochrome(
    lab: torch.Tensor, *, amount: float = 0.0, filter_hue: float = 0.0, filter_strength: float = 0.0
) -> torch.Tensor:
    """Black and white through a colour filter: L ← L·2^(3·strength·C·cos(h − filter_hue)) (colours of the
    filter's hue lighter, the opposite ones darker, neutrals unchanged), then a, b faded by ``amount``.
    ``amount`` in [0, 1] blends between colour (0) and black and white (1), the filter included."""
    check_lab(lab)
    if amount == 0.0:
        return lab
    L, a, b = lab.unbind(-3)
    if filter_strength != 0.0:
        r = math.radians(filter_hue)
        along = a * math.cos(r) + b * math.sin(r)  # = C·cos(h − filter_hue)
        L = L * torch.pow(2.0, (3.0 * filter_strength * amount) * along)
    k = 1.0 - amount
    return torch.stack((L, a * k, b * k), dim=-3)


def split_tone(
    lab: torch.Tensor,
    *,
    shadow_hue: float = 220.0,
    shadow_strength: float = 0.0,
    highlight_hue: float = 60.0,
    highlight_strength: float = 0.0,
    balance: float = 0.0,
) -> torch.Tensor:
    """Split toning: add a tint of chroma 0.05·strength at ``shadow_hue`` to the shadows and at
    ``highlight_hue`` to the highlights, with weights that cross at L = 0.5 + 0.25·balance (smoothstep)."""
    check_lab(lab)
    if shadow_strength == 0.0 and highlight_strength == 0.0:
        return lab
    L, a, b = lab.unbind(-3)
    mid = 0.5 + 0.25 * balance
    t = ((L - (mid - 0.35)) / 0.7).clamp(0.0, 1.0)
    w_hi = t * t * (3.0 - 2.0 * t)
    w_lo = 1.0 - w_hi
    w_lo = w_lo * (L / 0.1).clamp(0.0, 1.0)  # black stays black
    for w, hue, s in ((w_lo, shadow_hue, shadow_strength), (w_hi, highlight_hue, highlight_strength)):
        if s:
            r = math.radians(hue)
            a = a + w * (0.05 * s * math.cos(r))
            b = b + w * (0.05 * s * math.sin(r))
    return torch.stack((L, a, b), dim=-3)


def _radius(lab: torch.Tensor, *, top: int, size: tuple[int, int], roundness: float) -> torch.Tensor:
    """Normalised distance from the frame's centre (1 at the corners) for the rows ``top``… of a frame of
    ``size``; ``roundness`` 1 = circles, 0 = ellipses with the frame's aspect ratio."""
    H, W = size
    h, w = lab.shape[-2:]
    y = torch.arange(top, top + h, device=lab.device, dtype=lab.dtype) + 0.5 - H / 2.0
    x = torch.arange(w, device=lab.device, dtype=lab.dtype) + 0.5 - W / 2.0
    half = math.hypot(H, W) / 2.0
    sy = (H / 2.0) * (1 - roundness) + half * roundness
    sx = (W / 2.0) * (1 - roundness) + half * roundness
    r2 = (y[:, None] / sy) ** 2 + (x[None, :] / sx) ** 2
    corner = (H / 2.0 / sy) ** 2 + (W / 2.0 / sx) ** 2
    return (r2 / corner).sqrt()


def vignette(
    lab: torch.Tensor,
    *,
    strength: float = 0.0,
    falloff: float = 2.0,
    midpoint: float = 0.0,
    roundness: float = 0.0,
    top: int = 0,
    size: tuple[int, int] | None = None,
) -> torch.Tensor:
    """Vignetting as a gain on linear light, g = 1 − strength·ρ^falloff, with ρ the distance from the frame
    centre beyond ``midpoint`` (ρ = 0 inside, 1 at the corners); strength < 0 brightens the corners. In OKLab
    a gain g on linear light scales L, a and b by g^(1/3) (hue kept). ``top`` and ``size`` place these rows
    in the full frame (default: the tensor is the whole frame)."""
    check_lab(lab)
    if strength == 0.0:
        return lab
    size = tuple(lab.shape[-2:]) if size is None else size
    r = _radius(lab, top=top, size=size, roundness=roundness)
    rho = ((r - midpoint) / (1.0 - midpoint)).clamp(0.0, 1.0)
    g = (1.0 - strength * rho.pow(falloff)).clamp_min(0.0)
    return lab * g.pow(1.0 / 3.0)


_M32 = 0xFFFFFFFF


def _mul32(x: torch.Tensor, c: int) -> torch.Tensor:
    """x·c mod 2^32 on int64 tensors without int64 overflow (x < 2^32): split c into 16-bit halves."""
    lo = x * (c & 0xFFFF)
    hi = ((x * (c >> 16)) & 0xFFFF) << 16
    return (lo + hi) & _M32


def _hash32(x: torch.Tensor) -> torch.Tensor:
    """A 32-bit integer hash (Wellons' "lowbias32", 2018) on int64 tensors holding 32-bit values."""
    x = x & _M32
    x = x ^ (x >> 16)
    x = _mul32(x, 0x7FEB352D)
    x = x ^ (x >> 15)
    x = _mul32(x, 0x846CA68B)
    return x ^ (x >> 16)


def _lattice_gauss(iy: torch.Tensor, ix: torch.Tensor, seed: int) -> torch.Tensor:
    """A standard normal value per integer lattice point (iy, ix) and seed: counter-based, so any part of the
    frame gets the same values whatever the strip it is computed in (Box–Muller on two hashes)."""
    k = _hash32(_hash32(iy * 0x9E3779B1 + (seed & _M32)) ^ (ix & _M32))
    u1 = (_hash32(k ^ 0x68E31DA4).to(torch.float64) + 0.5) / 4294967296.0
    u2 = (_hash32(k ^ 0x1B56C4E9).to(torch.float64) + 0.5) / 4294967296.0
    return torch.sqrt(-2.0 * torch.log(u1)) * torch.cos(2.0 * math.pi * u2)


def grain_noise(
    shape: tuple[int, int], *, size: float = 1.0, seed: int = 0, top: int = 0, device=None, dtype=torch.float32
) -> torch.Tensor:
    """Film-grain noise (H, W) with unit standard deviation at every pixel and grain of ``size``
    pixels: value noise (Perlin 1985) on a lattice of spacing ``size`` in full-frame coordinates (rows from
    ``top``), interpolated with smoothstep weights. Deterministic per pixel position and seed."""
    h, w = shape
    y = torch.arange(top, top + h, device=device, dtype=torch.float64) / size
    x = torch.arange(w, device=device, dtype=torch.float64) / size
    y0, x0 = torch.floor(y), torch.floor(x)
    ty, tx = y - y0, x - x0
    ty, tx = ty * ty * (3 - 2 * ty), tx * tx * (3 - 2 * tx)
    iy, ix = y0.long()[:, None], x0.long()[None, :]
    n00 = _lattice_gauss(iy, ix, seed)
    n01 = _lattice_gauss(iy, ix + 1, seed)
    n10 = _lattice_gauss(iy + 1, ix, seed)
    n11 = _lattice_gauss(iy + 1, ix + 1, seed)
    ty, tx = ty[:, None], tx[None, :]
    top_row = n00 + (n01 - n00) * tx
    bot_row = n10 + (n11 - n10) * tx
    n = top_row + (bot_row - top_row) * ty
    # interpolation lowers the variance, by a factor that depends on the position in the cell: divide by
    # the local standard deviation so that every pixel's grain has unit variance
    std = torch.sqrt(((1 - tx) ** 2 + tx**2) * ((1 - ty) ** 2 + ty**2))
    return (n / std).to(dtype)


def add_grain(
    lab: torch.Tensor,
    *,
    strength: float = 0.0,
    size: float = 1.0,
    luminance: float = 1.0,
    seed: int = 0,
    top: int = 0,
) -> torch.Tensor:
    """Film grain on L: L ← L + 0.04·strength·n·w(L), n from :func:`grain_noise`, w(L) = 4L(1 − L) raised to
    ``luminance`` (grain follows the tones: strongest in the mid-tones, none in black and white; 0 = even).
    Batches get a different seed per frame (seed + index)."""
    check_lab(lab)
    if strength == 0.0:
        return lab
    h, w = lab.shape[-2:]
    L = lab[..., 0, :, :]
    if lab.ndim == 4:
        n = torch.stack(
            [grain_noise((h, w), size=size, seed=seed + i, top=top, device=lab.device) for i in range(lab.shape[0])]
        ).to(lab.dtype)
    else:
        n = grain_noise((h, w), size=size, seed=seed, top=top, device=lab.device, dtype=lab.dtype)
    wl = (4.0 * L * (1.0 - L)).clamp(0.0, 1.0).pow(luminance)
    L2 = L + (0.04 * strength) * n * wl
    return torch.cat((L2.unsqueeze(-3), lab[..., 1:, :, :]), dim=-3)


# --------------------------------------------------------------------------------------------- gamut


def soft_limit(x: torch.Tensor, *, threshold: float, power: float = 1.2) -> torch.Tensor:
    """Values up to ``threshold`` unchanged; above it, compressed so that they approach 1 asymptotically:
    ``thr + s·t / (1 + t^p)^(1/p)`` with ``s = 1 − thr`` and ``t = (x − thr)/s`` (the compression curve of the
    ACES Reference Gamut Compression, Academy 2021, with its limit at infinity). Slope 1 and curvature 0 at the
    threshold (C² for ``power`` > 1), strictly increasing, below 1 everywhere."""
    if not 0.0 < threshold < 1.0:
        raise InvalidParameter(f"threshold must be in (0, 1); got {threshold!r}")
    if not 1.0 <= power <= 8.0:
        raise InvalidParameter(f"power must be in [1, 8]; got {power!r}")
    s = 1.0 - threshold
    t = ((x - threshold) / s).clamp(0.0, 1e6)  # beyond 1e6 the curve is 1 to float precision
    y = threshold + s * t / (1.0 + t.pow(power)).pow(1.0 / power)
    return torch.where(x > threshold, y, x)


@cache
def _luminance_row(space: str) -> tuple[float, float, float]:
    if space == "xyz_d50":
        return (0.0, 1.0, 0.0)
    return tuple(float(v) for v in rgb_to_xyz_d50_matrix(space)[1])


def gamut_compress(
    rgb: torch.Tensor,
    *,
    threshold: float = 0.8,
    shoulder: float = 1.0,
    power: float = 1.2,
    space: str = "linear_srgb",
) -> torch.Tensor:
    """Smooth gamut compression of linear RGB into the cube [0, 1]³ of ``space``, in place of a hard clip.

    After the ACES Reference Gamut Compression (Academy, 2021): each channel's distance from the achromatic
    level is compressed beyond ``threshold`` with :func:`soft_limit`, so that every colour lands inside the
    gamut and colours nearer the achromatic axis than the threshold are left exactly as they are. Unlike the
    ACES operator (distance from the largest channel, which has a kink where two channels cross and only
    bounds the result from below), the achromatic level here is the luminance Y of ``space`` (smooth, linear)
    and distances are measured on both sides: ``(Y − c)/Y`` for a channel below Y (d = 1 is 0) and
    ``(c − Y)/(1 − Y)`` above it (d = 1 is 1); compressed channels move towards Y along their own axis.

    ``shoulder`` < 1 first rolls the luminance off above that knee with the same curve (Y approaches 1
    asymptotically), scaling the three channels together so that chromaticity is kept; with ``shoulder`` 1
    a luminance above 1 is only held at the top of the cube. ``threshold`` 1 turns the compression off.
    The result is C¹ in the input (C² for ``power`` > 1), monotone in each channel, and inside (0, 1)³
    when the compression is on. Works on (3, H, W) or (N, 3, H, W).
    """
    check_lab(rgb, "rgb")
    for name, v in (("threshold", threshold), ("shoulder", shoulder)):
        if not 0.5 <= v <= 1.0:
            raise InvalidParameter(f"{name} must be in [0.5, 1] (1 = off); got {v!r}")
    if threshold == 1.0 and shoulder == 1.0:
        return rgb
    _encoded(space)  # unknown spaces raise
    w = torch.tensor(_luminance_row(space), dtype=rgb.dtype, device=rgb.device)
    Y = torch.einsum("c,...chw->...hw", w, rgb).unsqueeze(-3)
    if shoulder < 1.0:
        Ys = soft_limit(Y, threshold=shoulder, power=power)
        rgb = rgb * torch.where(shoulder < Y, Ys / Y.clamp_min(shoulder), torch.ones_like(Y))
        Y = Ys
    if threshold == 1.0:
        return rgb
    eps = 1e-6
    g = Y.clamp(eps, 1.0 - eps)
    below = rgb < g
    d = torch.where(below, (g - rgb) / g, (rgb - g) / (1.0 - g))
    dc = soft_limit(d, threshold=threshold, power=power)
    return torch.where(below, g - g * dc, g + (1.0 - g) * dc)


# ------------------------------------------------------------------------------------------- metrics


def _L_values(x: torch.Tensor, space: str) -> torch.Tensor:
    return rgb_to_oklab(check_lab(x), space=space)[..., 0, :, :].reshape(-1)


def midtone_contrast(x: torch.Tensor, *, space: str = "linear_srgb") -> float:
    """Mid-tone contrast: the inter-quartile range of OKLab L, P75(L) − P25(L) (the spread of the middle half
    of the image's tones; a steeper tone curve in the mid-tones widens it)."""
    q = torch.quantile(_L_values(x, space).double()[: 1 << 24], torch.tensor([0.25, 0.75], dtype=torch.float64))
    return float(q[1] - q[0])


def midtone_slope(
    before: torch.Tensor, after: torch.Tensor, *, space: str = "linear_srgb", band: tuple[float, float] = (0.4, 0.75)
) -> float:
    """Mid-tone contrast of a look as the slope of its tone curve: the least-squares slope of OKLab L of
    ``after`` against L of ``before`` over the pixels whose L before is in ``band`` (the mid-tones;
    18 % grey is L = 0.57). 1 = unchanged, > 1 = more contrast."""
    if before.shape != after.shape:
        raise ShapeError(f"before and after must have one shape; got {tuple(before.shape)} and {tuple(after.shape)}")
    lo, hi = band
    if not 0.0 <= lo < hi <= 1.0:
        raise InvalidParameter(f"band must be (lo, hi) with 0 ≤ lo < hi ≤ 1; got {band!r}")
    x = _L_values(before, space).double()
    y = _L_values(after, space).double()
    m = (x >= lo) & (x <= hi)
    if int(m.sum()) < 2:
        raise InvalidParameter(f"fewer than 2 pixels have L in the mid-tone band {band}")
    x, y = x[m], y[m]
    xc = x - x.mean()
    return float((xc * (y - y.mean())).sum() / (xc * xc).sum().clamp_min(1e-30))


def shadow_depth(x: torch.Tensor, *, space: str = "linear_srgb", fraction: float = 0.1) -> float:
    """Shadows: the mean OKLab L of the darkest ``fraction`` (10 %) of the pixels (lower = deeper shadows)."""
    if not 0.0 < fraction <= 1.0:
        raise InvalidParameter(f"fraction must be in (0, 1]; got {fraction!r}")
    L = _L_values(x, space)
    k = max(1, round(fraction * L.numel()))
    return float(torch.topk(L, k, largest=False).values.double().mean())


def mean_chroma(x: torch.Tensor, *, space: str = "linear_srgb") -> float:
    """Colourfulness: the mean OKLCh chroma C = √(a² + b²) over all pixels."""
    lab = rgb_to_oklab(check_lab(x), space=space)
    return float(torch.hypot(lab[..., 1, :, :], lab[..., 2, :, :]).double().mean())


def corner_ratio(x: torch.Tensor, *, space: str = "linear_srgb") -> float:
    """Vignetting: mean OKLab L where the normalised radius ρ ≥ 0.8 (the corners) over mean L where ρ ≤ 0.4
    (the centre); ρ = 1 at the corners (ellipses with the frame's aspect ratio)."""
    lab = rgb_to_oklab(check_lab(x), space=space)
    r = _radius(lab, top=0, size=tuple(lab.shape[-2:]), roundness=0.0)
    L = lab[..., 0, :, :]
    corner = L[..., r >= 0.8].double().mean()
    centre = L[..., r <= 0.4].double().mean()
    return float(corner / centre)
