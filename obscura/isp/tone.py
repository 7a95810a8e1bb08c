"""Exposure, global tone curves and local tone mapping.

Conventions: the input of every function here is a scene-linear (3, H, W) image (middle grey ≈ 0.18
after exposure). :func:`tone_curve` returns **display-linear** values in [0, 1]; the sRGB (or other)
transfer function is applied later by the encode stage. :func:`local_tone_map` returns a
scene-linear image (the input times a smooth, edge-aware gain) meant to be followed by
:func:`tone_curve` with the same curve: together they give the exposure-fused rendering.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import cache

import torch
from torch.nn import functional as F  # noqa: N812

from obscura.core.errors import InvalidParameter, ShapeError
from obscura.core.registry import Registry
from obscura.core.validate import check_image, check_number
from obscura.isp import _filters
from obscura.isp._filters import (
    bin2,
    collapse_laplacian,
    gaussian_pyramid,
    laplacian_pyramid,
    pad_replicate,
    strip_map,
    upsample_rows,
)

__all__ = [
    "TONE_CURVE",
    "LOCAL_TONE",
    "exposure_gain",
    "auto_exposure",
    "hable2010",
    "filmic_curve",
    "tone_curve",
    "tone_curve_filmic",
    "tone_curve_linear",
    "inverse_curve",
    "local_tone_map",
    "local_tone_map_exposure_fusion",
    "LOCAL_TONE_GAIN",
    "local_tone_step",
    "local_tone_gain",
    "exposure_fusion_gain",
    "apply_local_tone_gain",
    "local_tone_curve",
]

TONE_CURVE = Registry("tone_curve")
LOCAL_TONE = Registry("local_tone")
LOCAL_TONE_GAIN = Registry("local_tone_gain")

REC709_LUMA = (0.2126, 0.7152, 0.0722)
_GAMMA = 2.2  # perceptual encoding used for fusion weights (as the LDR frames of Mertens et al.)


# --------------------------------------------------------------------------------------------- checks


def _check_image(x: torch.Tensor, name: str = "image") -> None:
    check_image(x, name=name)


_num = check_number


def _luma(x: torch.Tensor, w: tuple[float, float, float]) -> torch.Tensor:
    if len(w) != 3:
        raise InvalidParameter(f"luma_weights must have 3 values; got {w!r}")
    return x[0] * float(w[0]) + x[1] * float(w[1]) + x[2] * float(w[2])


# ------------------------------------------------------------------------------------------ exposure


def exposure_gain(*, baseline_exposure: float = 0.0, ev: float = 0.0) -> float:
    """The linear gain 2^(baseline_exposure + ev) (DNG BaselineExposure plus a user EV)."""
    b = _num("baseline_exposure", baseline_exposure, -20.0, 20.0)
    e = _num("ev", ev, -20.0, 20.0)
    return float(2.0 ** (b + e))


def auto_exposure(
    rgb: torch.Tensor,
    *,
    target: float = 0.18,
    percentile: float = 99.5,
    highlight_white: float = 11.2,
    max_ev: float = 6.0,
    luma_weights: tuple[float, float, float] = REC709_LUMA,
    max_samples: int = 1 << 18,
) -> float:
    """EV to add so that the scene's log-average luminance lands on ``target`` (Reinhard et al. 2002 key).

    Highlight guard: the EV is lowered so that the ``percentile`` of luminance lands at most on
    ``highlight_white`` (the scene value the filmic curve maps to display white). The result is
    clamped to ±``max_ev``. Scale invariant: scaling the scene by 2^k changes the answer by −k.
    Computed on a regular subsample of at most ``max_samples`` pixels.
    """
    _check_image(rgb, "rgb")
    target = _num("target", target, 0.0, 1e3, lo_open=True)
    percentile = _num("percentile", percentile, 50.0, 100.0)
    highlight_white = _num("highlight_white", highlight_white, 0.0, 1e6, lo_open=True)
    max_ev = _num("max_ev", max_ev, 0.0, 30.0)
    H, W = rgb.shape[-2:]
    step = max(1, math.ceil(math.sqrt(H * W / max(1, int(max_samples)))))
    y = _luma(rgb[:, ::step, ::step], luma_weights).reshape(-1).float()
    y = y[torch.isfinite(y)]
    if y.numel() == 0:
        return 0.0
    hi = float(torch.quantile(y, percentile / 100.0))
    if not hi > 0:
        return 0.0
    floor = hi * 2.0**-16  # a floor relative to the highlights keeps the result scale invariant
    key = float(torch.exp(torch.log(y.clamp_min(floor)).mean()))
    ev = min(math.log2(target / key), math.log2(highlight_white / hi))
    return float(max(-max_ev, min(max_ev, ev)))


# ---------------------------------------------------------------------------------------- tone curves


def hable2010(x: torch.Tensor | float) -> torch.Tensor | float:
    """John Hable's filmic curve (Uncharted 2, GDC 2010), un-normalised; hable2010(0) = 0."""
    A, B, C, D, E, Fc = 0.15, 0.50, 0.10, 0.20, 0.02, 0.30
    return (x * (A * x + C * B) + D * E) / (x * (A * x + B) + D * Fc) - E / Fc


@cache
def _filmic_scale(white: float, grey_in: float, grey_out: float) -> tuple[float, float]:
    """The input scale s with hable(s·grey_in)/hable(s·white) = grey_out, and 1/hable(s·white)."""
    lo, hi = 1e-6, 1e6
    for _ in range(200):  # bisection in log space: the ratio rises monotonically with s
        mid = math.sqrt(lo * hi)
        if hable2010(mid * grey_in) / hable2010(mid * white) < grey_out:
            lo = mid
        else:
            hi = mid
    s = math.sqrt(lo * hi)
    return s, 1.0 / hable2010(s * white)


def contrast_s_curve(y: torch.Tensor, *, pivot: float, contrast: float) -> torch.Tensor:
    """A display-linear S-curve through (0, 0), (pivot, pivot) and (1, 1) with slope ``contrast`` at the pivot.

    Below the pivot: pivot·(y/pivot)^c (deeper shadows); above: the mirror image towards 1
    (brighter highlights, no clipping). Monotone and continuous with a continuous slope at the pivot.
    """
    if contrast == 1.0:
        return y
    y = y.clamp(0.0, 1.0)
    lo = pivot * (y / pivot).clamp_min(0.0).pow(contrast)
    hi = 1.0 - (1.0 - pivot) * ((1.0 - y) / (1.0 - pivot)).clamp_min(0.0).pow(contrast)
    return torch.where(y < pivot, lo, hi)


def filmic_curve(
    x: torch.Tensor,
    *,
    white: float = 11.2,
    grey_in: float = 0.18,
    grey_out: float = 0.18,
    contrast: float = 1.0,
) -> torch.Tensor:
    """The scalar filmic curve: scene-linear → display-linear [0, 1], elementwise.

    Hable (2010) with an input scale solved so that ``grey_in`` maps exactly to ``grey_out`` and
    ``white`` to 1; monotone, f(0) = 0, values ≥ ``white`` saturate at 1. ``contrast`` > 1 adds a
    display-space S around ``grey_out`` (:func:`contrast_s_curve`): Hable's curve alone is soft.
    """
    contrast = _num("contrast", contrast, 0.25, 4.0)
    white = _num("white", white, 0.0, 1e4, lo_open=True)
    grey_in = _num("grey_in", grey_in, 0.0, white, lo_open=True)
    lo_out = grey_in / white
    grey_out = _num("grey_out", grey_out, 0.0, 1.0, lo_open=True)
    if not lo_out * 1.01 < grey_out < 0.99:
        raise InvalidParameter(
            f"grey_out must be in ({lo_out * 1.01:.4f}, 0.99) for white={white}, grey_in={grey_in}; got {grey_out}"
        )
    s, norm = _filmic_scale(white, grey_in, grey_out)
    xs = x.clamp(0.0, white) * s
    y = (hable2010(xs) * norm).clamp_(0.0, 1.0)
    return contrast_s_curve(y, pivot=grey_out, contrast=contrast)


_LUT_SIZE = 4097  # filmic table entries, uniform in √(x / white): interpolation error < 1e-6


@cache
def _filmic_table(white: float, grey_in: float, grey_out: float, contrast: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The filmic curve sampled at x = u²·white for u uniform in [0, 1], and the slope to the next sample."""
    u = torch.linspace(0.0, 1.0, _LUT_SIZE, dtype=torch.float64)
    o = {"white": white, "grey_in": grey_in, "grey_out": grey_out, "contrast": contrast}
    y = filmic_curve(u * u * white, **o)
    y[-1] = 1.0
    slope = torch.cat([y[1:] - y[:-1], torch.zeros(1, dtype=torch.float64)])
    return y.float(), slope.float()


def _filmic_lut(n: torch.Tensor, o: dict) -> torch.Tensor:
    """:func:`filmic_curve` of ``n`` ≥ 0 by linear interpolation in a table (a third of the cost on the CPU).

    The table is uniform in √(x / white), where the curve is smooth down to 0, so the error stays
    below 1e-6. NaN in ``n`` reads the table's first entry: callers divide by ``n``, which keeps the NaN.
    """
    filmic_curve(n.new_zeros(1), **o)  # validate
    white = float(o.get("white", 11.2))
    key = (white, float(o.get("grey_in", 0.18)), float(o.get("grey_out", 0.18)), float(o.get("contrast", 1.0)))
    y, slope = (t.to(device=n.device, dtype=n.dtype) for t in _filmic_table(*key))
    u = n.mul(1.0 / white).sqrt_().clamp_(0.0, 1.0).nan_to_num_(nan=0.0).mul_(_LUT_SIZE - 1)
    i = u.to(torch.int64)
    frac = u.frac_()  # u ≥ 0
    flat = i.reshape(-1)  # index_select: several times faster than advanced indexing on the CPU
    return y.index_select(0, flat).view(n.shape).addcmul_(slope.index_select(0, flat).view(n.shape), frac)


@TONE_CURVE.register("filmic")
def tone_curve_filmic(
    x: torch.Tensor,
    *,
    white: float = 11.2,
    grey_in: float = 0.18,
    grey_out: float = 0.18,
    contrast: float = 1.0,
    mode: str = "norm",
    luma_weights: tuple[float, float, float] = REC709_LUMA,
) -> torch.Tensor:
    """Filmic S-curve (Hable 2010) to display-linear [0, 1]; scene 0.18 → display ``grey_out`` (0.18).

    ``mode="norm"`` (hue preserving): the curve is applied to max(R, G, B) and the three channels are
    scaled by the same factor, so hue and saturation ratios are kept and no channel exceeds 1;
    ``"luminance"``: same with the luminance as the norm (channels then clipped at 1);
    ``"per_channel"``: the curve on each channel (highlights desaturate towards white, hue may shift).
    """
    _check_image(x)
    if mode not in ("norm", "luminance", "per_channel"):
        raise InvalidParameter(f"mode must be 'norm', 'luminance' or 'per_channel'; got {mode!r}")
    o = {"white": white, "grey_in": grey_in, "grey_out": grey_out, "contrast": contrast}
    filmic_curve(x.new_zeros(1), **o)  # validate once
    if mode == "per_channel":
        return strip_map(lambda s: filmic_curve(s, **o), x, halo=0)

    def run(s: torch.Tensor) -> torch.Tensor:
        # negative channels need no clamp of their own: the ratio is ≥ 0 and the result is clamped at 0
        n = s.amax(dim=0).clamp_min_(0.0) if mode == "norm" else _luma(s.clamp_min(0.0), luma_weights)
        ratio = _filmic_lut(n, o).div_(n.clamp_min_(1e-12))
        return (s * ratio).clamp_(0.0, 1.0)

    return strip_map(run, x, halo=0)


@TONE_CURVE.register("linear")
def tone_curve_linear(x: torch.Tensor) -> torch.Tensor:
    """No curve: scene-linear values clipped to [0, 1] (the ``reference`` recipe)."""
    _check_image(x)
    return x.clamp(0.0, 1.0)


def tone_curve(x: torch.Tensor, *, method: str = "filmic", **options) -> torch.Tensor:
    """Map a scene-linear (3, H, W) image to display-linear [0, 1] with the named curve (:data:`TONE_CURVE`)."""
    return TONE_CURVE.get(method)(x, **options)


def _scalar_curve(curve: str, options: dict) -> tuple[Callable[[torch.Tensor], torch.Tensor], float]:
    """The curve as an elementwise function on one channel, and its white point (scene value → 1)."""
    if curve == "filmic":
        o = {k: options[k] for k in ("white", "grey_in", "grey_out", "contrast") if k in options}
        return (lambda t: filmic_curve(t, **o)), float(o.get("white", 11.2))
    if curve == "linear":
        return (lambda t: t.clamp(0.0, 1.0)), 1.0
    raise InvalidParameter(f"local tone mapping supports curve 'filmic' or 'linear'; got {curve!r}")


def inverse_curve(
    f: Callable[[torch.Tensor], torch.Tensor], y: torch.Tensor, *, white: float, n: int = 4096
) -> torch.Tensor:
    """Invert a monotone curve ``f`` (scene → display) at display values ``y``, by a log-spaced table."""
    t = torch.cat(
        [torch.zeros(1, dtype=torch.float64), torch.logspace(-24, math.log2(white), n - 1, base=2, dtype=torch.float64)]
    )
    v = f(t.to(torch.float32)).to(torch.float64)
    v = torch.cummax(v, 0).values + torch.arange(n, dtype=torch.float64) * 1e-12  # strictly increasing
    t, v = t.to(y.device), v.to(y.device)
    yd = y.to(torch.float64).clamp(float(v[0]), float(v[-1]))
    i = torch.searchsorted(v, yd.reshape(-1)).clamp(1, n - 1).reshape(y.shape)
    v0, v1, t0, t1 = v[i - 1], v[i], t[i - 1], t[i]
    return (t0 + (t1 - t0) * (yd - v0) / (v1 - v0)).to(y.dtype)


# ------------------------------------------------------------------------------------ local tone maps


def _box(x: torch.Tensor, r: int) -> torch.Tensor:
    """Mean over a (2r+1)² window of the last two dims (replicate borders), as :func:`_filters.box_filter`
    but separable (two 1-D means): O(r) per pixel instead of O(r²), which matters for the guided filter."""
    shape = x.shape
    y = pad_replicate(x.reshape(1, -1, *shape[-2:]), r)
    y = F.avg_pool2d(F.avg_pool2d(y, (1, 2 * r + 1), stride=1), (2 * r + 1, 1), stride=1)
    return y.reshape(shape)


def local_tone_step(size: tuple[int, int], *, max_pixels: int = 1 << 20) -> int:
    """The power-of-two reduction at which local tone mapping computes its gain for an image of ``size``.

    The smallest step with at most ``max_pixels`` pixels left, unless the short side would fall below
    8 pixels. The reduced image is the ``step`` × ``step`` block mean (:func:`_filters.bin2` repeated).
    """
    H, W = (int(v) for v in size)
    max_pixels = int(_num("max_pixels", max_pixels, 64, 1 << 30))
    step = 1
    while (H // step) * (W // step) > max_pixels and min(H, W) // (2 * step) >= 8:
        step *= 2
    return step


@LOCAL_TONE_GAIN.register("exposure_fusion")
def exposure_fusion_gain(
    x_small: torch.Tensor,
    *,
    ev_boost: float = 2.0,
    sigma: float = 0.2,
    strength: float = 1.0,
    curve: str = "filmic",
    curve_options: dict | None = None,
    levels: int = 4,
    max_pixels: int = 1 << 20,
    radius: int = 8,
    eps: float = 0.001,
    luma_weights: tuple[float, float, float] = REC709_LUMA,
) -> torch.Tensor:
    """The low-resolution part of exposure-fusion local tone mapping (see :func:`local_tone_map_exposure_fusion`).

    ``x_small`` is the reduced scene-linear image (3, h, w) (``max_pixels`` is only validated here: it is
    the caller's choice of reduction, :func:`local_tone_step`). Returns the (2, h, w) coefficients (a, b)
    of the local linear model of the fast guided filter (He & Sun 2015), already box-averaged: at full
    size the log gain is a·log Y + b with a and b upsampled bilinearly (:func:`apply_local_tone_gain`).
    """
    _check_image(x_small)
    ev_boost = _num("ev_boost", ev_boost, 0.0, 10.0)
    sigma = _num("sigma", sigma, 0.0, 10.0, lo_open=True)
    strength = _num("strength", strength, 0.0, 2.0)
    eps = _num("eps", eps, 0.0, 100.0, lo_open=True)
    radius = int(_num("radius", radius, 1, 64))
    _num("max_pixels", max_pixels, 64, 1 << 30)
    f, white = _scalar_curve(curve, dict(curve_options or {}))
    if strength == 0.0 or ev_boost == 0.0:
        return x_small.new_zeros((2, *x_small.shape[-2:]))
    tiny = 1e-7
    yl = _luma(x_small, luma_weights).clamp_min(tiny)
    logy = torch.log(yl)

    # exposure fusion at the reduced size, on perceptual values of the two virtual exposures
    gains = (1.0, 2.0**ev_boost)
    vs = [f(yl * g).clamp(0.0, 1.0).pow(1.0 / _GAMMA) for g in gains]
    ws = torch.stack([torch.exp(-0.5 * ((v - 0.5) / sigma) ** 2) for v in vs]) + 1e-12
    ws = ws / ws.sum(0, keepdim=True)
    h, w = yl.shape
    nlev = min(int(_num("levels", levels, 1, 20)), max(1, int(math.log2(max(1, min(h, w)))) - 1))
    lap = [laplacian_pyramid(v, nlev) for v in vs]
    gw = gaussian_pyramid(ws, nlev)
    fused = collapse_laplacian([sum(gw[lv][k] * lap[k][lv] for k in range(len(vs))) for lv in range(nlev)])
    display = fused.clamp(0.0, 1.0).pow(_GAMMA)
    target = inverse_curve(f, display, white=white).clamp_min(tiny)
    loggain = (torch.log(target) - logy) * strength

    # fast guided filter: local linear model loggain ≈ a·log Y + b (guide: the log luminance)
    mi, mp = _box(logy, radius), _box(loggain, radius)
    cov = _box(logy * loggain, radius) - mi * mp
    var = _box(logy * logy, radius) - mi * mi
    a = cov / (var + eps)
    b = mp - a * mi
    return _box(torch.stack([a, b]), radius)


def local_tone_gain(x_small: torch.Tensor, *, method: str = "exposure_fusion", **options) -> torch.Tensor:
    """Low-resolution local tone mapping coefficients of a reduced image (method from :data:`LOCAL_TONE_GAIN`).

    Apply them at full size with :func:`apply_local_tone_gain`.
    """
    return LOCAL_TONE_GAIN.get(method)(x_small, **options)


def apply_local_tone_gain(
    x: torch.Tensor,
    coeffs: torch.Tensor,
    *,
    top: int = 0,
    size: tuple[int, int] | None = None,
    luma_weights: tuple[float, float, float] = REC709_LUMA,
    **_options,
) -> torch.Tensor:
    """Apply local tone mapping coefficients (:func:`local_tone_gain`) to the full-resolution ``x`` (3, h, W).

    ``x`` holds rows [``top``, ``top`` + h) of an image of ``size`` (default: ``x``'s own size), so a strip
    of a large image is mapped exactly as the same rows of the whole: the coefficients (2, h', w') are
    upsampled bilinearly to ``size`` (guided upsampling: the gain is exp(a·log Y + b) with the strip's own
    full-resolution luminance Y). Other options of the method (the gain's) are accepted and ignored.
    """
    _check_image(x)
    if not isinstance(coeffs, torch.Tensor) or coeffs.ndim != 3 or coeffs.shape[0] != 2:
        raise ShapeError(f"coeffs must be (2, h, w); got {tuple(getattr(coeffs, 'shape', ()))}")
    h, W = x.shape[-2:]
    H, Wf = (int(v) for v in size) if size is not None else (h, W)
    top = int(top)
    if Wf != W or top < 0 or top + h > H:
        raise ShapeError(f"rows [{top}, {top + h}) of width {W} do not fit in an image of size {(H, Wf)}")
    if len(luma_weights) != 3:
        raise InvalidParameter(f"luma_weights must have 3 values; got {luma_weights!r}")
    ab = coeffs.to(device=x.device, dtype=x.dtype)
    full = tuple(ab.shape[-2:]) == (H, W)
    tiny = 1e-7
    w0, w1, w2 = (float(v) for v in luma_weights)
    rows = max(8, _filters._STRIP_PIXELS // W) if x.device.type == "cpu" else h
    out = torch.empty_like(x)
    for t0 in range(0, h, rows):
        t1 = min(h, t0 + rows)
        s = x[:, t0:t1]
        c = ab[:, top + t0 : top + t1].clone() if full else upsample_rows(ab, top + t0, top + t1, (H, W))
        ly = (s[0] * w0).add_(s[1], alpha=w1).add_(s[2], alpha=w2).clamp_min_(tiny).log_()
        torch.mul(s, c[0].mul_(ly).add_(c[1]).exp_(), out=out[:, t0:t1])
    return out


def local_tone_curve(
    x: torch.Tensor,
    coeffs: torch.Tensor,
    *,
    top: int = 0,
    size: tuple[int, int] | None = None,
    luma_weights: tuple[float, float, float] = REC709_LUMA,
    method: str = "filmic",
    **curve_options,
) -> torch.Tensor:
    """:func:`apply_local_tone_gain` followed by :func:`tone_curve` (``method``, ``curve_options``).

    For the filmic curve in its hue-preserving ``"norm"`` mode the two run fused in one pass: the local
    gain k multiplies all three channels, so max(k·x) = k·max(x) and the result is x·f(k·n)/n with
    n = max(R, G, B), without building the tone-mapped image in between.
    """
    if method != "filmic" or curve_options.get("mode", "norm") != "norm":
        y = apply_local_tone_gain(x, coeffs, top=top, size=size, luma_weights=luma_weights)
        return tone_curve(y, method=method, **curve_options)
    _check_image(x)
    o = {k: v for k, v in curve_options.items() if k != "mode"}
    unknown = set(o) - {"white", "grey_in", "grey_out", "contrast"}
    if unknown:
        raise InvalidParameter(f"unknown filmic curve options {sorted(unknown)}")
    filmic_curve(x.new_zeros(1), **o)  # validate once
    if not isinstance(coeffs, torch.Tensor) or coeffs.ndim != 3 or coeffs.shape[0] != 2:
        raise ShapeError(f"coeffs must be (2, h, w); got {tuple(getattr(coeffs, 'shape', ()))}")
    h, W = x.shape[-2:]
    H, Wf = (int(v) for v in size) if size is not None else (h, W)
    top = int(top)
    if Wf != W or top < 0 or top + h > H:
        raise ShapeError(f"rows [{top}, {top + h}) of width {W} do not fit in an image of size {(H, Wf)}")
    if len(luma_weights) != 3:
        raise InvalidParameter(f"luma_weights must have 3 values; got {luma_weights!r}")
    ab = coeffs.to(device=x.device, dtype=x.dtype)
    full = tuple(ab.shape[-2:]) == (H, W)
    w0, w1, w2 = (float(v) for v in luma_weights)
    rows = max(8, _filters._STRIP_PIXELS // W) if x.device.type == "cpu" else h
    out = torch.empty_like(x)
    for t0 in range(0, h, rows):
        t1 = min(h, t0 + rows)
        s = x[:, t0:t1]
        c = ab[:, top + t0 : top + t1].clone() if full else upsample_rows(ab, top + t0, top + t1, (H, W))
        ly = (s[0] * w0).add_(s[1], alpha=w1).add_(s[2], alpha=w2).clamp_min_(1e-7).log_()
        k = c[0].mul_(ly).add_(c[1]).exp_()  # the local gain
        n = s.amax(dim=0).clamp_min_(0.0).mul_(k)  # the norm of the tone-mapped pixel
        ratio = _filmic_lut(n, o).div_(n.clamp_min_(1e-12)).mul_(k)
        torch.mul(s, ratio, out=out[:, t0:t1]).clamp_(0.0, 1.0)
    return out


@LOCAL_TONE.register("exposure_fusion")
def local_tone_map_exposure_fusion(
    x: torch.Tensor,
    *,
    ev_boost: float = 2.0,
    sigma: float = 0.2,
    strength: float = 1.0,
    curve: str = "filmic",
    curve_options: dict | None = None,
    levels: int = 4,
    max_pixels: int = 1 << 20,
    radius: int = 8,
    eps: float = 0.001,
    luma_weights: tuple[float, float, float] = REC709_LUMA,
) -> torch.Tensor:
    """HDR+-style local tone mapping (Hasinoff et al. 2016) by exposure fusion (Mertens, Kautz, Van Reeth 2007).

    Two virtual exposures of the luminance (gains 1 and 2^``ev_boost``) are rendered with the global
    curve, weighted by well-exposedness exp(−(v − 0.5)²/2σ²) on their perceptual (γ 2.2) values and
    blended through ``levels`` Laplacian pyramid levels (fewer levels: a more local result and less of
    the broad glow exposure fusion leaves on the bright side of a strong edge). The fusion runs on a
    reduced luminance (≤ ``max_pixels``); the resulting log gain is brought back to full resolution
    edge-aware with the fast guided filter (He & Sun 2015; guide: log luminance, box radius ``radius``
    at the reduced size, ``eps`` in log² units), so no sharp halo follows strong edges. Returns the
    scene-linear input times the gain (chroma ratios kept); follow it with :func:`tone_curve` using the
    same ``curve`` and ``curve_options``.

    Built from its two parts, :func:`exposure_fusion_gain` on the reduced image and
    :func:`apply_local_tone_gain` at full size, which a tiled pipeline calls separately.
    """
    _check_image(x)
    opts = {
        "ev_boost": ev_boost,
        "sigma": sigma,
        "strength": strength,
        "curve": curve,
        "curve_options": curve_options,
        "levels": levels,
        "max_pixels": max_pixels,
        "radius": radius,
        "eps": eps,
        "luma_weights": luma_weights,
    }
    step = local_tone_step(tuple(x.shape[-2:]), max_pixels=max_pixels)
    xl = x
    for _ in range(int(math.log2(step))):
        xl = bin2(xl)
    coeffs = exposure_fusion_gain(xl, **opts)
    if float(strength) == 0.0 or float(ev_boost) == 0.0:
        return x.clone()
    return apply_local_tone_gain(x, coeffs, luma_weights=luma_weights)


def local_tone_map(x: torch.Tensor, *, method: str = "exposure_fusion", **options) -> torch.Tensor:
    """Local tone mapping of a scene-linear (3, H, W) image with the named method (:data:`LOCAL_TONE`)."""
    return LOCAL_TONE.get(method)(x, **options)
