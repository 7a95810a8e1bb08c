"""Full-reference image quality: PSNR, SSIM, MS-SSIM and CIEDE2000 maps, on torch tensors (any device).

Conventions follow scikit-image's ``peak_signal_noise_ratio`` / ``structural_similarity`` (van der Walt
et al. 2014) so results agree with it to float64 precision:

* ``data_range`` is always explicit (the metric never guesses a signal range);
* SSIM (Wang, Bovik, Sheikh & Simoncelli 2004): local statistics under a Gaussian window (σ = 1.5,
  truncated at 3.5σ: 11 taps) or a uniform ``win_size`` window, filtered with half-sample symmetric
  ("reflect") borders, the map cropped by ``(win_size − 1) / 2`` before averaging (``crop=True``), each
  channel separately and the channel means averaged;
* MS-SSIM (Wang, Simoncelli & Bovik 2003) as in Wang's reference MATLAB ``msssim.m``: five scales, 2×2
  mean then decimation ('symmetric' borders), contrast-structure terms at the first four scales and the
  full SSIM at the last, raised to the published weights.

How the official values in IQA-PyTorch's calibration table (``ResultsCalibra/results_official.csv``,
TID2013 pairs, computed with the authors' MATLAB code) are reproduced — checked on the pairs in
``shared/data/iqa_reference`` (tests/lab/test_reference_metrics.py):

* PSNR: on the RGB values in [0, 255], ``data_range=255`` (no luma conversion);
* SSIM and MS-SSIM: on MATLAB ``rgb2gray`` luma, i.e. ``rgb_to_y(255·x, weights="bt601")`` rounded to
  integers, ``data_range=255``, Gaussian window, **no** downsampling (IQA-PyTorch's default
  ``downsample=False``: the 2009 ``ssim.m`` downsampling by ``max(1, round(min(H, W)/256))`` gives 0.643
  instead of the official 0.699 on I03). ``ssim(..., downsample=True)`` implements that 2009 variant.

These metrics run on tensors (metrics inside the pipeline, on the GPU), hence our own implementation;
statistics are accumulated in float64 (E[x²] − E[x]² loses digits in float32 at ``data_range=255``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as nnf

from obscura.core.colour import WHITE_D65, normalised_primary_matrix, srgb_decode, xy_to_XYZ
from obscura.core.errors import InvalidParameter, ShapeError

__all__ = [
    "MS_SSIM_WEIGHTS",
    "LUMA_WEIGHTS",
    "psnr",
    "ssim",
    "ssim_map",
    "ms_ssim",
    "rgb_to_y",
    "rgb_to_lab",
    "delta_e00",
    "delta_e00_map",
]

MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)  # Wang, Simoncelli & Bovik 2003, Table 1
LUMA_WEIGHTS = {
    "bt601": (0.299, 0.587, 0.114),  # ITU-R BT.601 luma (MATLAB rgb2gray, YIQ's Y)
    "bt709": (0.2126, 0.7152, 0.0722),  # ITU-R BT.709
}
GAUSSIAN_TRUNCATE = 3.5  # scikit-image: an 11-tap window for σ = 1.5, as in Wang et al. 2004


# --------------------------------------------------------------------------- input checks
def _as_tensor(x: Any, name: str) -> torch.Tensor:
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(np.ascontiguousarray(x))
    if not isinstance(x, torch.Tensor):
        raise ShapeError(f"{name} must be a torch.Tensor or numpy array; got {type(x).__name__}")
    if x.dtype == torch.bool or x.is_complex():
        raise ShapeError(f"{name} must hold real numbers; got dtype {x.dtype}")
    return x


def _pair(x: Any, y: Any) -> tuple[torch.Tensor, torch.Tensor]:
    a, b = _as_tensor(x, "x"), _as_tensor(y, "y")
    if a.shape != b.shape:
        raise ShapeError(f"x and y must have the same shape; got {tuple(a.shape)} and {tuple(b.shape)}")
    if a.ndim not in (2, 3, 4):
        raise ShapeError(f"images must be (H, W), (C, H, W) or (N, C, H, W); got {tuple(a.shape)}")
    if a.device != b.device:
        raise InvalidParameter(f"x and y must be on the same device; got {a.device} and {b.device}")
    return a, b


def _check_range(data_range: Any) -> float:
    if isinstance(data_range, bool) or not isinstance(data_range, (int, float)):
        raise InvalidParameter(f"data_range must be a positive number (e.g. 1.0 or 255); got {data_range!r}")
    if not (math.isfinite(data_range) and data_range > 0):
        raise InvalidParameter(f"data_range must be a positive finite number; got {data_range!r}")
    return float(data_range)


def _work_dtype(x: torch.Tensor) -> torch.dtype:
    return torch.float32 if x.device.type == "mps" else torch.float64  # MPS has no float64


def _to_nchw(x: torch.Tensor, channel_axis: int | None) -> tuple[torch.Tensor, bool]:
    """(N, C, H, W) view and whether the input was batched."""
    if channel_axis is None:  # greyscale: (H, W) or (N, H, W)
        if x.ndim == 2:
            return x[None, None], False
        if x.ndim == 3:
            return x[:, None], True
        raise ShapeError(f"with channel_axis=None images must be (H, W) or (N, H, W); got {tuple(x.shape)}")
    if isinstance(channel_axis, bool) or channel_axis not in (0, -3):
        raise InvalidParameter(
            f"channel_axis must be 0 (channel-first (C, H, W), batched (N, C, H, W)) or None (greyscale); "
            f"got {channel_axis!r}"
        )
    if x.ndim == 2:
        return x[None, None], False
    if x.ndim == 3:
        return x[None], False
    return x, True


# --------------------------------------------------------------------------- PSNR
def psnr(x: Any, y: Any, *, data_range: float) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB: ``10·log10(data_range² / MSE)`` (inf for identical images).

    ``x``, ``y``: (H, W), (C, H, W) or batched (N, C, H, W) tensors; the MSE runs over every value of
    an image. Returns a 0-d tensor, or (N,) for a batch. Same definition as scikit-image's
    ``peak_signal_noise_ratio``.
    """
    a, b = _pair(x, y)
    r = _check_range(data_range)
    wd = _work_dtype(a)
    d = a.to(wd) - b.to(wd)
    mse = d.square().mean(dim=(-3, -2, -1)) if a.ndim == 4 else d.square().mean()
    out_dtype = a.dtype if a.dtype.is_floating_point else torch.float32
    return (10.0 * torch.log10(r * r / mse)).to(out_dtype)


# --------------------------------------------------------------------------- SSIM
def _symmetric_pad(x: torch.Tensor, top: int, bottom: int, left: int, right: int) -> torch.Tensor:
    """Half-sample symmetric padding (scipy.ndimage 'reflect', MATLAB 'symmetric') of (..., H, W)."""

    def idx(n: int, lo: int, hi: int) -> torch.Tensor:
        i = torch.arange(-lo, n + hi, device=x.device)
        period = 2 * n
        i = torch.remainder(i, period)
        return torch.where(i >= n, period - 1 - i, i)

    h, w = x.shape[-2:]
    return x.index_select(-2, idx(h, top, bottom)).index_select(-1, idx(w, left, right))


def _gaussian_taps(sigma: float, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    r = int(GAUSSIAN_TRUNCATE * sigma + 0.5)
    k = torch.arange(-r, r + 1, dtype=dtype, device=device)
    g = torch.exp(-0.5 * (k / sigma) ** 2)
    return g / g.sum()


def _filter_same(x: torch.Tensor, taps: torch.Tensor) -> torch.Tensor:
    """Separable correlation of (M, 1, H, W) with symmetric borders; output the same size."""
    r = (taps.numel() - 1) // 2
    p = _symmetric_pad(x, r, r, r, r)
    p = nnf.conv2d(p, taps.view(1, 1, 1, -1))
    return nnf.conv2d(p, taps.view(1, 1, -1, 1))


def _check_ssim_options(win_size: Any, sigma: Any, k1: Any, k2: Any, gaussian_weights: bool) -> None:
    if isinstance(win_size, bool) or not isinstance(win_size, int) or win_size < 3 or win_size % 2 == 0:
        raise InvalidParameter(f"win_size must be an odd integer ≥ 3; got {win_size!r}")
    if gaussian_weights and not (isinstance(sigma, (int, float)) and 0 < sigma <= 50):
        raise InvalidParameter(f"sigma must be in (0, 50] pixels; got {sigma!r}")
    for name, k in (("k1", k1), ("k2", k2)):
        if isinstance(k, bool) or not isinstance(k, (int, float)) or not 0 <= k < 1:
            raise InvalidParameter(f"{name} must be in [0, 1); got {k!r}")


def _wang_downsample(x: torch.Tensor, f: int) -> torch.Tensor:
    """MATLAB ``imfilter(x, ones(f)/f², 'symmetric', 'same')`` then ``x(1:f:end, 1:f:end)`` (Wang's ssim.m)."""
    c = (f + 1) // 2  # MATLAB's kernel origin (1-based) for a size-f kernel
    p = _symmetric_pad(x, c - 1, f - c, c - 1, f - c)
    return nnf.avg_pool2d(p, kernel_size=f, stride=f)


def _ssim_terms(
    a: torch.Tensor,
    b: torch.Tensor,
    *,
    data_range: float,
    gaussian_weights: bool,
    sigma: float,
    win_size: int,
    k1: float,
    k2: float,
    use_sample_covariance: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """SSIM and contrast-structure maps of (M, 1, H, W) float64 planes, same size (uncropped)."""
    if gaussian_weights:
        taps = _gaussian_taps(float(sigma), a.dtype, a.device)
    else:
        taps = torch.full((win_size,), 1.0 / win_size, dtype=a.dtype, device=a.device)
    if min(a.shape[-2:]) < max(win_size, taps.numel()):
        raise ShapeError(
            f"images must be at least {max(win_size, taps.numel())} px on each side for this window; "
            f"got {tuple(a.shape[-2:])}"
        )
    # Subtracting a per-plane constant leaves (co)variances unchanged and keeps E[x²] − E[x]² accurate.
    shift = 0.5 * (a.mean(dim=(-2, -1), keepdim=True) + b.mean(dim=(-2, -1), keepdim=True))
    a0, b0 = a - shift, b - shift
    stats = _filter_same(torch.cat([a0, b0, a0 * a0, b0 * b0, a0 * b0], dim=1).flatten(0, 1)[:, None], taps)
    stats = stats.view(a.shape[0], 5, *a.shape[-2:])
    ux0, uy0, uxx, uyy, uxy = stats.unbind(1)
    np_ = win_size**2
    cov_norm = np_ / (np_ - 1.0) if use_sample_covariance else 1.0
    vx = cov_norm * (uxx - ux0 * ux0)
    vy = cov_norm * (uyy - uy0 * uy0)
    vxy = cov_norm * (uxy - ux0 * uy0)
    ux, uy = ux0 + shift[:, 0], uy0 + shift[:, 0]
    c1 = (k1 * data_range) ** 2
    c2 = (k2 * data_range) ** 2
    cs = (2 * vxy + c2) / (vx + vy + c2)
    lum = (2 * ux * uy + c1) / (ux * ux + uy * uy + c1)
    return (lum * cs)[:, None], cs[:, None]


def _prepare(
    x: Any, y: Any, channel_axis: int | None, downsample: bool
) -> tuple[torch.Tensor, torch.Tensor, tuple[int, int], bool, torch.dtype]:
    a, b = _pair(x, y)
    a4, batched = _to_nchw(a, channel_axis)
    b4, _ = _to_nchw(b, channel_axis)
    n, c, h, w = a4.shape
    wd = _work_dtype(a)
    pa = a4.reshape(n * c, 1, h, w).to(wd)
    pb = b4.reshape(n * c, 1, h, w).to(wd)
    if downsample:
        f = max(1, round(min(h, w) / 256))
        if f > 1:
            pa, pb = _wang_downsample(pa, f), _wang_downsample(pb, f)
    out_dtype = a.dtype if a.dtype.is_floating_point else torch.float32
    return pa, pb, (n, c), batched, out_dtype


def ssim_map(
    x: Any,
    y: Any,
    *,
    data_range: float,
    gaussian_weights: bool = True,
    sigma: float = 1.5,
    win_size: int = 11,
    k1: float = 0.01,
    k2: float = 0.03,
    use_sample_covariance: bool = False,
    channel_axis: int | None = 0,
    downsample: bool = False,
) -> torch.Tensor:
    """The local SSIM map (N, C, H', W') (uncropped, symmetric borders) of :func:`ssim`'s inputs."""
    _check_ssim_options(win_size, sigma, k1, k2, gaussian_weights)
    r = _check_range(data_range)
    pa, pb, (n, c), _, out_dtype = _prepare(x, y, channel_axis, downsample)
    s, _ = _ssim_terms(
        pa,
        pb,
        data_range=r,
        gaussian_weights=gaussian_weights,
        sigma=sigma,
        win_size=win_size,
        k1=k1,
        k2=k2,
        use_sample_covariance=use_sample_covariance,
    )
    return s.view(n, c, *s.shape[-2:]).to(out_dtype)


def ssim(
    x: Any,
    y: Any,
    *,
    data_range: float,
    gaussian_weights: bool = True,
    sigma: float = 1.5,
    win_size: int = 11,
    k1: float = 0.01,
    k2: float = 0.03,
    use_sample_covariance: bool = False,
    channel_axis: int | None = 0,
    crop: bool = True,
    downsample: bool = False,
) -> torch.Tensor:
    """Mean structural similarity (Wang, Bovik, Sheikh & Simoncelli 2004), scikit-image conventions.

    ``x``, ``y``: (H, W), (C, H, W) or batched (N, C, H, W) (``channel_axis=0``: channel-first), or
    greyscale (H, W) / (N, H, W) with ``channel_axis=None``. ``data_range``: the value span (1.0 for
    [0, 1] images, 255 for 8-bit values); required. ``gaussian_weights``: Gaussian window of ``sigma``
    (truncated at 3.5σ) else a uniform ``win_size`` window; ``crop``: average the map without its
    ``(win_size − 1)/2`` border (scikit-image; equals MATLAB's 'valid' filtering) or over all of it;
    ``use_sample_covariance``: N/(N − 1) normalisation (scikit-image's default is True; Wang's MATLAB
    code and the defaults here use False). ``downsample``: first average and decimate by
    ``max(1, round(min(H, W)/256))`` as the 2009 ``ssim.m`` does. Channels are measured separately and
    averaged. Returns a 0-d tensor, or (N,) for a batch.
    """
    _check_ssim_options(win_size, sigma, k1, k2, gaussian_weights)
    r = _check_range(data_range)
    pa, pb, (n, c), batched, out_dtype = _prepare(x, y, channel_axis, downsample)
    s, _ = _ssim_terms(
        pa,
        pb,
        data_range=r,
        gaussian_weights=gaussian_weights,
        sigma=sigma,
        win_size=win_size,
        k1=k1,
        k2=k2,
        use_sample_covariance=use_sample_covariance,
    )
    if crop:
        p = (win_size - 1) // 2
        s = s[..., p : s.shape[-2] - p, p : s.shape[-1] - p]
    per_image = s.mean(dim=(-2, -1)).view(n, c).mean(dim=1)
    out = per_image if batched else per_image[0]
    return out.to(out_dtype)


def ms_ssim(
    x: Any,
    y: Any,
    *,
    data_range: float,
    weights: tuple[float, ...] = MS_SSIM_WEIGHTS,
    gaussian_weights: bool = True,
    sigma: float = 1.5,
    win_size: int = 11,
    k1: float = 0.01,
    k2: float = 0.03,
    channel_axis: int | None = 0,
) -> torch.Tensor:
    """Multi-scale SSIM (Wang, Simoncelli & Bovik 2003) as Wang's MATLAB ``msssim.m`` computes it.

    ``len(weights)`` scales; between scales a 2×2 mean with symmetric borders, keeping every other
    sample. ``Π cs_j^w_j (j < M) · ssim_M^w_M`` with the cropped ('valid') means of the contrast-structure
    and SSIM maps; negative means are clamped to 0 (a fractional power of a negative number is undefined),
    as IQA-PyTorch does. The coarsest scale must still hold the window: images need
    ``min(H, W) ≥ win_size · 2^(M−1)`` (176 px for the defaults). Returns a 0-d tensor or (N,).
    """
    _check_ssim_options(win_size, sigma, k1, k2, gaussian_weights)
    r = _check_range(data_range)
    w = tuple(weights) if isinstance(weights, (tuple, list)) else None
    if not w or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0 for v in w):
        raise InvalidParameter(f"weights must be a non-empty sequence of numbers ≥ 0; got {weights!r}")
    pa, pb, (n, c), batched, out_dtype = _prepare(x, y, channel_axis, False)
    need = win_size * 2 ** (len(w) - 1)
    if min(pa.shape[-2:]) < need:
        raise ShapeError(
            f"ms_ssim with {len(w)} scales and win_size {win_size} needs images ≥ {need} px on each side; "
            f"got {tuple(pa.shape[-2:])}"
        )
    p = (win_size - 1) // 2
    opts = dict(
        data_range=r,
        gaussian_weights=gaussian_weights,
        sigma=sigma,
        win_size=win_size,
        k1=k1,
        k2=k2,
        use_sample_covariance=False,
    )
    total = torch.ones(n * c, dtype=pa.dtype, device=pa.device)
    for j, wj in enumerate(w):
        s, cs = _ssim_terms(pa, pb, **opts)
        term = s if j == len(w) - 1 else cs
        m = term[..., p : term.shape[-2] - p, p : term.shape[-1] - p].mean(dim=(-3, -2, -1))
        total = total * m.clamp_min(0.0) ** wj
        if j < len(w) - 1:
            pa, pb = _wang_downsample(pa, 2), _wang_downsample(pb, 2)
    per_image = total.view(n, c).mean(dim=1)
    out = per_image if batched else per_image[0]
    return out.to(out_dtype)


def rgb_to_y(x: Any, *, weights: str = "bt601") -> torch.Tensor:
    """Luma ``Σ w·RGB`` of (3, H, W) or (N, 3, H, W) values → (1, H, W) or (N, 1, H, W), same scale.

    ``weights``: ``"bt601"`` (0.299, 0.587, 0.114: MATLAB ``rgb2gray``, the Y used by the official SSIM
    values) or ``"bt709"``. To reproduce the official 8-bit values round the result:
    ``rgb_to_y(255 * x).round()`` with ``data_range=255``.
    """
    t = _as_tensor(x, "x")
    if t.ndim not in (3, 4) or t.shape[-3] != 3:
        raise ShapeError(f"rgb_to_y needs (3, H, W) or (N, 3, H, W); got {tuple(t.shape)}")
    if weights not in LUMA_WEIGHTS:
        raise InvalidParameter(f"weights must be one of {', '.join(LUMA_WEIGHTS)}; got {weights!r}")
    if not t.dtype.is_floating_point:
        t = t.to(torch.float32)
    wt = torch.tensor(LUMA_WEIGHTS[weights], dtype=t.dtype, device=t.device).view(3, 1, 1)
    return (t * wt).sum(dim=-3, keepdim=True)


# --------------------------------------------------------------------------- CIEDE2000
_SRGB_TO_XYZ_D65 = normalised_primary_matrix(((0.64, 0.33), (0.30, 0.60), (0.15, 0.06)), WHITE_D65)
_XYZ_D65 = xy_to_XYZ(WHITE_D65)


def rgb_to_lab(x: Any, *, encoding: str = "srgb") -> torch.Tensor:
    """CIE 1976 L*a*b* (D65 white) of (3, H, W) or (N, 3, H, W) sRGB values in [0, 1].

    ``encoding``: ``"srgb"`` (IEC 61966-2-1 encoded) or ``"linear"`` (linear-light sRGB primaries).
    """
    t = _as_tensor(x, "x")
    if t.ndim not in (3, 4) or t.shape[-3] != 3:
        raise ShapeError(f"images must be (3, H, W) or (N, 3, H, W) RGB; got {tuple(t.shape)}")
    if encoding not in ("srgb", "linear"):
        raise InvalidParameter(f"encoding must be 'srgb' or 'linear'; got {encoding!r}")
    wd = _work_dtype(t)
    v = t.to(wd)
    lin = srgb_decode(v) if encoding == "srgb" else v
    m = torch.tensor(_SRGB_TO_XYZ_D65 / _XYZ_D65[:, None], dtype=wd, device=t.device)
    xyz_n = torch.einsum("ij,...jhw->...ihw", m, lin)  # XYZ / white
    eps, kappa = 216.0 / 24389.0, 24389.0 / 27.0  # CIE 15:2004 exact constants
    f = torch.where(xyz_n > eps, xyz_n.clamp_min(eps).pow(1.0 / 3.0), (kappa * xyz_n + 16.0) / 116.0)
    fx, fy, fz = f.unbind(-3)
    lab = torch.stack([116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)], dim=-3)
    return lab.to(t.dtype if t.dtype.is_floating_point else torch.float32)


def delta_e00(lab1: Any, lab2: Any, *, k_l: float = 1.0, k_c: float = 1.0, k_h: float = 1.0) -> torch.Tensor:
    """CIEDE2000 colour difference (CIE 142-2001; Sharma, Wu & Dalal 2005) of L*a*b* tensors (…, 3, …).

    The Lab channels are on axis −3 ((3, H, W) or (N, 3, H, W)), or the last axis for (…, 3) rows
    when the tensors are 1-D or 2-D. Returns the map without the channel axis.
    """
    a, b = _as_tensor(lab1, "lab1"), _as_tensor(lab2, "lab2")
    if a.shape != b.shape:
        raise ShapeError(f"lab1 and lab2 must have the same shape; got {tuple(a.shape)} and {tuple(b.shape)}")
    axis = -1 if a.ndim <= 2 else -3
    if a.ndim == 0 or a.shape[axis] != 3:
        raise ShapeError(f"Lab tensors need 3 channels on axis {axis}; got {tuple(a.shape)}")
    for name, k in (("k_l", k_l), ("k_c", k_c), ("k_h", k_h)):
        if isinstance(k, bool) or not isinstance(k, (int, float)) or not 0 < k < 100:
            raise InvalidParameter(f"{name} must be a positive number; got {k!r}")
    wd = _work_dtype(a)
    l1, a1, b1 = a.to(wd).unbind(axis)
    l2, a2, b2 = b.to(wd).unbind(axis)
    c1 = torch.hypot(a1, b1)
    c2 = torch.hypot(a2, b2)
    cbar7 = ((c1 + c2) / 2.0) ** 7
    g = 0.5 * (1.0 - torch.sqrt(cbar7 / (cbar7 + 25.0**7)))
    a1p, a2p = (1.0 + g) * a1, (1.0 + g) * a2
    c1p, c2p = torch.hypot(a1p, b1), torch.hypot(a2p, b2)
    h1p = torch.remainder(torch.rad2deg(torch.atan2(b1, a1p)), 360.0)
    h2p = torch.remainder(torch.rad2deg(torch.atan2(b2, a2p)), 360.0)
    zero = (c1p * c2p) == 0
    dh = h2p - h1p
    dh = torch.where(dh > 180.0, dh - 360.0, torch.where(dh < -180.0, dh + 360.0, dh))
    dh = torch.where(zero, torch.zeros_like(dh), dh)
    d_l = l2 - l1
    d_c = c2p - c1p
    d_h = 2.0 * torch.sqrt(c1p * c2p) * torch.sin(torch.deg2rad(dh) / 2.0)
    lbar = (l1 + l2) / 2.0
    cbarp = (c1p + c2p) / 2.0
    hsum = h1p + h2p
    hbar = torch.where(
        (h1p - h2p).abs() <= 180.0, hsum / 2.0, torch.where(hsum < 360.0, (hsum + 360.0) / 2.0, (hsum - 360.0) / 2.0)
    )
    hbar = torch.where(zero, hsum, hbar)
    rad = torch.deg2rad
    t = (
        1.0
        - 0.17 * torch.cos(rad(hbar - 30.0))
        + 0.24 * torch.cos(rad(2.0 * hbar))
        + 0.32 * torch.cos(rad(3.0 * hbar + 6.0))
        - 0.20 * torch.cos(rad(4.0 * hbar - 63.0))
    )
    d_theta = 30.0 * torch.exp(-(((hbar - 275.0) / 25.0) ** 2))
    cbarp7 = cbarp**7
    r_c = 2.0 * torch.sqrt(cbarp7 / (cbarp7 + 25.0**7))
    s_l = 1.0 + 0.015 * (lbar - 50.0) ** 2 / torch.sqrt(20.0 + (lbar - 50.0) ** 2)
    s_c = 1.0 + 0.045 * cbarp
    s_h = 1.0 + 0.015 * cbarp * t
    r_t = -torch.sin(rad(2.0 * d_theta)) * r_c
    tl, tc, th = d_l / (k_l * s_l), d_c / (k_c * s_c), d_h / (k_h * s_h)
    de = torch.sqrt((tl * tl + tc * tc + th * th + r_t * tc * th).clamp_min(0.0))
    return de.to(a.dtype if a.dtype.is_floating_point else torch.float32)


def delta_e00_map(x: Any, y: Any, *, encoding: str = "srgb") -> torch.Tensor:
    """Per-pixel CIEDE2000 between two RGB images: (3, H, W) → (H, W), (N, 3, H, W) → (N, H, W).

    ``encoding``: ``"srgb"`` for display-encoded sRGB in [0, 1], ``"linear"`` for linear sRGB
    (scene-referred values are taken relative to a diffuse white of 1). Lab relative to D65.
    """
    a, b = _as_tensor(x, "x"), _as_tensor(y, "y")
    if a.shape != b.shape:
        raise ShapeError(f"x and y must have the same shape; got {tuple(a.shape)} and {tuple(b.shape)}")
    return delta_e00(rgb_to_lab(a, encoding=encoding), rgb_to_lab(b, encoding=encoding))
