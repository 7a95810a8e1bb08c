"""Handheld multi-frame super-resolution: a raw burst → linear camera RGB at ×1 (in place of demosaicing),
×1.5 or ×2 (Wronski et al. 2019, "Handheld Multi-Frame Super-Resolution", ACM TOG 38(4) / SIGGRAPH;
Lafenetre, Facciolo & Eboli 2023, "Implementing Handheld Burst Super-Resolution", IPOL).

The hand's tremor moves every frame by a different sub-pixel amount, so together the frames sample the
scene more densely than one Bayer mosaic does, in every colour. Each output pixel is a kernel regression
of the raw samples around it:

1. motion: the per-tile flow of :func:`obscura.burst.align.align_burst`, refined across edges
   (:func:`refine_flow_damped`), with what a tile does not measure (the motion along an edge, any motion where
   flat) taken from the frame's global affine motion (:func:`obscura.burst.align.regularize_flow`), then
   interpolated bilinearly to every output position (Wronski §4 uses the tile motion upsampled to pixels too);
2. kernels (:func:`structure_tensor`, :func:`anisotropic_kernels`): from the structure tensor of the
   reference's grey image at the raw resolution, a Gaussian kernel per output pixel that is long along edges and
   narrow across them, and wide and round where the image is flat (denoising, Wronski §3.2);
3. robustness (:func:`robustness_map`): a per-pixel weight in [0, 1] of each frame from local colour
   statistics, to leave out what alignment did not explain (moving objects, occlusions; Wronski §5);
4. accumulation (:func:`accumulate_kernel_regression`): for each frame, each output pixel takes the 3×3 raw
   samples nearest to where it lands in that frame, weighs each by the kernel and the robustness and adds
   value and weight to the sample's colour channel; (:func:`normalize_accumulation`) divides.

The accumulation gathers (each output pixel reads its 3×3 raw neighbours, as Wronski's GPU shader does)
rather than scattering samples into the output grid: the flow is defined at reference positions, so the
gather needs no inverted flow, is exact at any scale, and writes each output once (deterministic on CUDA).
Everything is vectorised with torch over strips of output rows (bounded memory at 12 MP); the only Python
loops are over frames, the 9 neighbours and the strips.

Gradients are measured in units of the noise's standard deviation (from the NoiseProfile, or estimated),
so that the flat/detail switch ``d_th``/``d_tr`` does not depend on the exposure or the camera; its numbers
therefore differ from those in the papers. Distances are in raw pixels of the input.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch.nn import functional as F  # noqa: N812

from obscura.burst.align import (
    Alignment,
    align_burst,
    central_gradients,
    gather_tiles,
    gaussian_blur,
    grey_noise_gains,
    raw_to_grey_full,
    regularize_flow,
    sample_bicubic,
    shift_tiles,
    sym2_compose,
    sym2_eigen,
    tile_corners,
)
from obscura.burst.reference import check_burst, noise_profile_rgb, normalized_frames, pick_reference
from obscura.core.cfa import cfa_index_map, cfa_masks, cfa_period
from obscura.core.device import resolve_device
from obscura.core.errors import InvalidParameter, ShapeError
from obscura.core.registry import Registry
from obscura.core.types import Burst, RawFrame
from obscura.core.validate import check_number

__all__ = [
    "SR_KERNELS",
    "refine_flow_damped",
    "structure_tensor",
    "anisotropic_kernels",
    "isotropic_kernels",
    "half_res_rgb",
    "robustness_map",
    "motion_check",
    "accumulate_kernel_regression",
    "normalize_accumulation",
    "super_resolve",
    "super_resolve_frame",
]

Progress = Callable[[str], None] | None

SR_KERNELS = Registry("super-resolution kernel")

_MAX_EXPONENT = 60.0  # weights stay ≥ exp(−60): no float32 underflow to 0 when every sample is far
_STRIP_PIXELS = 1 << 19  # output pixels per strip (bounded memory)
_TENSOR_SIGMA = 1.5  # raw px: smoothing of the structure tensor
_OFFSETS = tuple((a, b) for a in (-1, 0, 1) for b in (-1, 0, 1))


# ------------------------------------------------------------------------------------ motion


def refine_flow_damped(
    ref: torch.Tensor,
    alt: torch.Tensor,
    flow: torch.Tensor,
    *,
    tile_size: int,
    tile_stride: int,
    iterations: int = 3,
    damping: float = 1e-3,
    bound: float = 1.0,
) -> torch.Tensor:
    """Sub-pixel refinement of one frame's per-tile flow (2, Ty, Tx) on grey images (h, w) of the reference and
    the alternate, in those images' pixels: Gauss–Newton (Lucas & Kanade 1981) with Levenberg damping
    (H + damping·tr(H)·I) δ = −Σ ∇R·(A(p + u) − R(p)).

    Unlike a plain Lucas–Kanade that skips tiles whose gradients all point one way, a tile on a single straight
    edge is refined across the edge and keeps its motion along it (the direction the damping pins): that is the
    component super-resolution needs exact. Each tile moves at most ``bound`` pixels from its start.
    """
    ty, tx = flow.shape[-2:]
    dt = ref.dtype
    y0, x0 = tile_corners(ty, tx, tile_stride, ref.device)
    gy, gx = central_gradients(ref)
    r_t = gather_tiles(ref, y0, x0, tile_size)
    gy_t = gather_tiles(gy, y0, x0, tile_size)
    gx_t = gather_tiles(gx, y0, x0, tile_size)
    hyy, hxy, hxx = gy_t.square().sum((1, 2)), (gy_t * gx_t).sum((1, 2)), gx_t.square().sum((1, 2))
    eps = damping * (hyy + hxx) + 1e-12
    a, c = hyy + eps, hxx + eps
    det = a * c - hxy * hxy
    u0 = flow.reshape(2, -1).T.to(dt)
    u = u0.clone()
    for _ in range(iterations):
        e = shift_tiles(alt[None], y0, x0, tile_size, u)[:, 0] - r_t  # separable: the shift is constant per tile
        by, bx = -(gy_t * e).sum((1, 2)), -(gx_t * e).sum((1, 2))
        d = torch.stack([(c * by - hxy * bx) / det, (a * bx - hxy * by) / det], 1)
        u = u0 + (u + d - u0).clamp(-bound, bound)
    return u.T.reshape(2, ty, tx)


# ------------------------------------------------------------------------------------ kernels


def structure_tensor(grey: torch.Tensor, *, noise_std: torch.Tensor | float = 1.0, sigma: float = 1.0) -> torch.Tensor:
    """Structure tensor (3, h, w) = (Gyy, Gxy, Gxx) of a grey image (h, w): products of its central-difference
    gradients, in units of ``noise_std`` (a number or an (h, w) map of the image's noise deviation), smoothed by
    a Gaussian of ``sigma`` pixels (Harris & Stephens 1988; Wronski et al. 2019 §3.2)."""
    if grey.ndim != 2 or min(grey.shape) < 3:
        raise ShapeError(f"grey must be (h, w) with h, w ≥ 3; got {tuple(grey.shape)}")
    p = F.pad(grey[None, None], (1, 1, 1, 1), mode="replicate")[0, 0]
    gy = 0.5 * (p[2:, 1:-1] - p[:-2, 1:-1])
    gx = 0.5 * (p[1:-1, 2:] - p[1:-1, :-2])
    # a central difference of independent pixels has the noise deviation σ/√2
    scale = torch.as_tensor(noise_std, dtype=grey.dtype, device=grey.device).clamp_min(1e-12) / math.sqrt(2.0)
    gy, gx = gy / scale, gx / scale
    t = torch.stack([gy * gy, gx * gy, gx * gx])
    return gaussian_blur(t, sigma) if sigma > 0 else t


def _eigen(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Eigenvalues λ1 ≥ λ2 ≥ 0 and the unit eigenvector (ey, ex) of λ1 (the dominant gradient direction) of
    structure tensors (3, ...)."""
    l1, l2, ey, ex = sym2_eigen(t)
    return l1, l2.clamp_min(0.0), ey, ex


def _precision(ey: torch.Tensor, ex: torch.Tensor, s_across: torch.Tensor, s_along: torch.Tensor) -> torch.Tensor:
    """Inverse covariance (3, ...) = (Pyy, Pxy, Pxx) of a Gaussian with deviation ``s_across`` along the unit
    vector (ey, ex) and ``s_along`` perpendicular to it."""
    return sym2_compose(1.0 / s_across.square(), 1.0 / s_along.square(), ey, ex)


def _detail_weight(l1: torch.Tensor, d_th: float, d_tr: float) -> torch.Tensor:
    """Wronski's D = clamp(1 + D_th − √λ1 / D_tr, 0, 1): 1 where flat (denoise), 0 on edges and texture."""
    return (1.0 + d_th - torch.sqrt(l1) / d_tr).clamp(0.0, 1.0)


@SR_KERNELS.register("anisotropic")
def anisotropic_kernels(
    tensor: torch.Tensor,
    *,
    k_detail: float = 0.3,
    k_denoise: float = 3.0,
    k_stretch: float = 4.0,
    k_shrink: float = 2.0,
    d_th: float = 1.0,
    d_tr: float = 1.5,
) -> torch.Tensor:
    """Anisotropic Gaussian kernels (Wronski et al. 2019, §3.2, eq. 4–6) from a structure tensor (3, h, w):
    the inverse covariance (3, h, w) = (Pyy, Pxy, Pxx) in raw pixels⁻².

    With λ1 ≥ λ2 the eigenvalues, A = 1 + √((λ1 − λ2)/(λ1 + λ2)) and D from :func:`_detail_weight`, the
    deviation along the edge is (1 − D)·k_detail·k_stretch·A + D·k_detail·k_denoise and across it
    (1 − D)·k_detail/(k_shrink·A) + D·k_detail·k_denoise.
    """
    l1, l2, ey, ex = _eigen(tensor)
    aniso = 1.0 + torch.sqrt((l1 - l2) / (l1 + l2).clamp_min(1e-12))
    d = _detail_weight(l1, d_th, d_tr)
    flat = k_detail * k_denoise
    s_along = (1.0 - d) * (k_detail * k_stretch * aniso) + d * flat
    s_across = (1.0 - d) * (k_detail / (k_shrink * aniso)) + d * flat
    return _precision(ey, ex, s_across, s_along)


@SR_KERNELS.register("isotropic")
def isotropic_kernels(
    tensor: torch.Tensor,
    *,
    k_detail: float = 0.3,
    k_denoise: float = 3.0,
    k_stretch: float = 4.0,
    k_shrink: float = 2.0,
    d_th: float = 1.0,
    d_tr: float = 1.5,
) -> torch.Tensor:
    """Round Gaussian kernels (the IPOL article's "iso" ablation): deviation k_detail·√(k_stretch/k_shrink) on
    detail, k_detail·k_denoise where flat; inverse covariance (3, h, w) as :func:`anisotropic_kernels`."""
    l1, _, _, _ = _eigen(tensor)
    d = _detail_weight(l1, d_th, d_tr)
    s = (1.0 - d) * (k_detail * math.sqrt(k_stretch / k_shrink)) + d * (k_detail * k_denoise)
    z = torch.zeros_like(s)
    return torch.stack([1.0 / s.square(), z, 1.0 / s.square()])


# ------------------------------------------------------------------------------------ robustness


def half_res_rgb(x: torch.Tensor, cfa: str) -> torch.Tensor:
    """(N, H, W) normalized mosaics → (N, 3, H/2, W/2) RGB: each channel the mean of its samples over one CFA
    period around every 2×2 cell (2×2 for Bayer, 4×4 with stride 2 for Quad Bayer)."""
    n = cfa_period(cfa)
    _, h, w = x.shape
    m = cfa_masks(cfa, h, w, dtype=x.dtype, device=x.device)
    y = x[:, None] * m[None]  # (N, 3, H, W)
    if n == 2:
        return F.avg_pool2d(y, 2) / F.avg_pool2d(m[None], 2)
    yp = F.pad(y, (1, 1, 1, 1), mode="reflect")
    mp = F.pad(m[None], (1, 1, 1, 1), mode="reflect")
    return F.avg_pool2d(yp, 4, stride=2) / F.avg_pool2d(mp, 4, stride=2)


def motion_check(
    x: torch.Tensor,
    cfa: str,
    ref: int,
    i: int,
    flow_half: torch.Tensor,
    noise: tuple[float, float],
    *,
    tolerance: float = 0.5,
) -> torch.Tensor:
    """Weight (h/2, w/2) in [0, 1] of frame ``i`` of normalized mosaics ``x`` (N, H, W): the local (3×3) mean
    squared difference between the reference's raw-resolution grey and frame i's warped onto it by
    ``flow_half`` (2, h/2, w/2; raw px at the half-resolution pixel centres), both blurred by σ = 1 px, over
    what the noise (``noise`` = (a, b) of one raw sample) and a misregistration of ``tolerance`` raw px along
    the gradient explain: 1 up to twice that, 0 from six times (then the minimum over each 2×2 cell).

    A complement to :func:`robustness_map`, whose local statistics take a textured object that moved for a
    sub-pixel misregistration (a moving checkered disc: double-edge score 0.38 → 0.22 and +1.8 dB inside it).
    """
    a, b = noise
    g = gaussian_blur(raw_to_grey_full(torch.stack([x[ref], x[i]]), cfa), 1.0)
    h, w = g.shape[-2:]
    f = F.interpolate(flow_half[None], size=(h, w), mode="bilinear", align_corners=False)[0]
    yy = torch.arange(h, device=x.device, dtype=x.dtype)[:, None] + f[0]
    xx = torch.arange(w, device=x.device, dtype=x.dtype)[None, :] + f[1]
    e2 = (sample_bicubic(g[1:2], yy, xx)[0] - g[0]).square()
    gy, gx = central_gradients(g[0])
    pix = grey_noise_gains(cfa_period(cfa), 1.0)[1]
    expected = 2.0 * pix * (a * g[0].clamp_min(0.0) + b) + (gy.square() + gx.square()) * tolerance**2
    ratio = _local_mean(e2[None, None], 3)[0, 0] / _local_mean(expected[None, None], 3)[0, 0].clamp_min(1e-12)
    wgt = (1.0 - (ratio - 2.0) / 4.0).clamp(0.0, 1.0)
    return -F.max_pool2d(-wgt[None, None], 2)[0, 0][: flow_half.shape[-2], : flow_half.shape[-1]]


def _local_mean(x: torch.Tensor, k: int) -> torch.Tensor:
    return F.avg_pool2d(x, k, stride=1, padding=k // 2, count_include_pad=False)


def robustness_map(
    ref_rgb: torch.Tensor,
    alt_rgb: torch.Tensor,
    noise_var: torch.Tensor,
    *,
    t: float = 0.12,
    s: float = 2.0,
    window: int = 5,
) -> torch.Tensor:
    """Robustness (h, w) in [0, 1] of an aligned alternate frame against the reference (Wronski et al. 2019, §5).

    ``ref_rgb`` and ``alt_rgb`` are (3, h, w) half-resolution colour images, the alternate already warped onto
    the reference; ``noise_var`` (3, h, w) is the noise variance of one such pixel. With μ, μ̃ the 3×3 local
    means and σ² = max(local variance of the reference, noise variance), R = clamp(s·exp(−d²/σ²) − t, 0, 1) for
    d² / σ² the mean over channels of d²/σ², d the distance of μ̃ to the range of μ over the 3×3 pixels
    around (a sub-pixel misregistration stays within it; Wronski uses |μ − μ̃|), then the minimum over a
    ``window`` × ``window`` neighbourhood (rejected regions get a margin).
    """
    if ref_rgb.shape != alt_rgb.shape or ref_rgb.ndim != 3 or ref_rgb.shape[0] != 3:
        raise ShapeError(
            f"ref_rgb and alt_rgb must be equal (3, h, w); got {tuple(ref_rgb.shape)}, {tuple(alt_rgb.shape)}"
        )
    mu = _local_mean(ref_rgb[None], 3)[0]
    var_ms = (_local_mean(ref_rgb[None].square(), 3)[0] - mu.square()).clamp_min(0.0)
    mu_alt = _local_mean(alt_rgb[None], 3)[0]
    sigma2 = torch.maximum(var_ms, noise_var).clamp_min(1e-12)
    # the distance of the alternate's local mean to the range of the reference's one pixel around: what a
    # sub-pixel misregistration or aliasing moves (beside a sharp edge, where the local variance is still
    # small) is tolerated, what a moving object brings is not
    mu_hi = F.max_pool2d(mu[None], 3, stride=1, padding=1)[0]
    mu_lo = -F.max_pool2d(-mu[None], 3, stride=1, padding=1)[0]
    d = (mu_alt - mu_hi).clamp_min(0.0) + (mu_lo - mu_alt).clamp_min(0.0)
    chi = (d.square() / sigma2).mean(0)
    r = (s * torch.exp(-chi) - t).clamp(0.0, 1.0)
    if window > 1:
        r = -F.max_pool2d(-r[None, None], window, stride=1, padding=window // 2)[0, 0]
    return r


# ------------------------------------------------------------------------------------ accumulation


def _bilinear_separable(img: torch.Tensor, uy: torch.Tensor, ux: torch.Tensor) -> torch.Tensor:
    """Bilinear values of (C, h, w) at the grid of real coordinates uy (a,) × ux (b,) → (C, a, b), clamped to the
    image (constant beyond the edge samples)."""
    _, h, w = img.shape
    uy = uy.clamp(0, h - 1)
    ux = ux.clamp(0, w - 1)
    y0 = uy.floor().long().clamp(max=h - 2) if h > 1 else uy.floor().long()
    x0 = ux.floor().long().clamp(max=w - 2) if w > 1 else ux.floor().long()
    fy = (uy - y0).to(img.dtype)[:, None]
    fx = (ux - x0).to(img.dtype)[None, :]
    y1 = (y0 + 1).clamp(max=h - 1)
    x1 = (x0 + 1).clamp(max=w - 1)
    rows0, rows1 = img[:, y0], img[:, y1]
    top = rows0[:, :, x0] * (1 - fx) + rows0[:, :, x1] * fx
    bot = rows1[:, :, x0] * (1 - fx) + rows1[:, :, x1] * fx
    return top * (1 - fy) + bot * fy


def accumulate_kernel_regression(
    mosaic: torch.Tensor,
    channels: torch.Tensor,
    py: torch.Tensor,
    px: torch.Tensor,
    precision: torch.Tensor,
    weight: torch.Tensor | None = None,
    accumulator: torch.Tensor | None = None,
) -> torch.Tensor:
    """Add one frame's kernel-regression terms to an accumulator (Wronski et al. 2019, eq. 1).

    ``mosaic`` (H, W) normalized raw samples and ``channels`` (H, W) int64 their colour (0, 1, 2); ``py``, ``px``
    (P,) where each output pixel lands in this frame (raw pixel coordinates); ``precision`` (3, P) the kernel's
    inverse covariance (Pyy, Pxy, Pxx); ``weight`` (P,) the robustness (1 if None). Each output pixel takes the
    3×3 raw samples around its nearest one, with weight w = weight·exp(−½ dᵀ·precision·d) for d the offset of the
    sample, and adds w·value, w and w² to its sample's channel. Returns the accumulator (9, P): numerator (3),
    sum of weights (3) and sum of squared weights (3), a new tensor when ``accumulator`` is None, else that
    one updated in place.
    """
    h, w = mosaic.shape
    if channels.shape != mosaic.shape:
        raise ShapeError(f"channels must be {tuple(mosaic.shape)} like the mosaic; got {tuple(channels.shape)}")
    if py.shape != px.shape or py.ndim != 1 or precision.shape != (3, py.shape[0]):
        raise ShapeError(
            f"py, px must be (P,) and precision (3, P); got "
            f"{tuple(py.shape)}, {tuple(px.shape)}, {tuple(precision.shape)}"
        )
    acc = (
        accumulator
        if accumulator is not None
        else torch.zeros(9, py.shape[0], dtype=mosaic.dtype, device=mosaic.device)
    )
    flat = mosaic.reshape(-1)
    chan = channels.reshape(-1)
    qy0, qx0 = torch.round(py).long(), torch.round(px).long()
    pyy, pxy, pxx = precision[0], precision[1], precision[2]
    for a, b in _OFFSETS:
        qy, qx = qy0 + a, qx0 + b
        inside = (qy >= 0) & (qy < h) & (qx >= 0) & (qx < w)
        idx = qy.clamp(0, h - 1) * w + qx.clamp(0, w - 1)
        dy, dx = qy.to(py.dtype) - py, qx.to(px.dtype) - px
        q = 0.5 * (pyy * dy * dy + 2.0 * pxy * dy * dx + pxx * dx * dx)
        wt = torch.exp(-q.clamp(max=_MAX_EXPONENT)) * inside
        if weight is not None:
            wt = wt * weight
        c = chan[idx][None]
        acc[0:3].scatter_add_(0, c, (wt * flat[idx])[None])
        acc[3:6].scatter_add_(0, c, wt[None])
        acc[6:9].scatter_add_(0, c, (wt * wt)[None])
    return acc


def normalize_accumulation(accumulator: torch.Tensor, *, eps: float = 1e-30) -> torch.Tensor:
    """The kernel-regression estimate (3, ...) = numerator / sum of weights of an accumulator (9 or 6, ...)."""
    if accumulator.shape[0] not in (6, 9):
        raise ShapeError(f"accumulator must be (6 or 9, ...); got {tuple(accumulator.shape)}")
    return accumulator[0:3] / accumulator[3:6].clamp_min(eps)


# ------------------------------------------------------------------------------------ driver


def _check_alignment(alignment: Alignment, n: int, size: tuple[int, int]) -> None:
    if not isinstance(alignment, Alignment):
        raise InvalidParameter(f"alignment must be an obscura.burst.align.Alignment; got {type(alignment).__name__}")
    if alignment.flow.shape[0] != n or tuple(alignment.size) != tuple(size):
        raise ShapeError(
            f"alignment is for {alignment.flow.shape[0]} frames of {tuple(alignment.size)}; got {n} of {tuple(size)}"
        )


def _check_exposures(b: Burst) -> None:
    ev = [(m.exposure_time or 0.0) * (m.iso or 0.0) for m in b.metas]
    if ev[0] > 0 and any(abs(e / ev[0] - 1.0) > 0.01 for e in ev):
        raise InvalidParameter(
            "super-resolution needs frames of one exposure (time × ISO); got "
            f"{sorted({round(e, 6) for e in ev})}: merge brackets with obscura.burst.hdr instead"
        )


def _tile_coords(alignment: Alignment, r: torch.Tensor) -> torch.Tensor:
    """Raw coordinates r → real indices into the tile grid (tile centres at integers)."""
    half = (alignment.tile_size - 1) / 2
    return (r - half) / alignment.tile_stride


def super_resolve(
    burst: Burst | Sequence[RawFrame],
    *,
    scale: float = 2.0,
    reference: int | None = None,
    alignment: Alignment | None = None,
    kernel: str = "anisotropic",
    k_detail: float = 0.3,
    k_denoise: float = 3.0,
    k_stretch: float = 4.0,
    k_shrink: float = 2.0,
    d_th: float = 1.0,
    d_tr: float = 1.5,
    robustness: bool = True,
    refine: bool = True,
    regularize: bool = True,
    prior_std: float = 0.2,
    motion_tolerance: float | None = 0.5,
    robustness_t: float = 0.12,
    robustness_s: float = 2.0,
    device: torch.device | str | None = None,
    progress: Progress = None,
) -> torch.Tensor:
    """Super-resolve a raw burst (Wronski et al. 2019): linear camera RGB (3, round(H·scale), round(W·scale)),
    float32, normalized (black 0, white 1), not white-balanced, on ``device`` (default: the burst's).

    ``scale`` in [1, 4] (1: demosaicing without demosaicing artifacts; 1.5 or 2: super-resolution).
    ``reference`` defaults to :func:`obscura.burst.reference.pick_reference` (or the alignment's);
    ``alignment`` to :func:`obscura.burst.align.align_burst`. ``kernel``: ``"anisotropic"`` or ``"isotropic"``
    (:data:`SR_KERNELS`), shaped by ``k_*`` and ``d_th``/``d_tr`` (see :func:`anisotropic_kernels`).
    ``robustness``: weigh frames by :func:`robustness_map` (parameters ``robustness_t``, ``robustness_s``).
    ``motion_tolerance`` (raw px; None: off): also weigh frames by :func:`motion_check`.
    ``refine``: refine the tile motion across edges with :func:`refine_flow_damped`; ``regularize``: take what
    a tile does not measure (the motion along an edge, any motion where flat) from the frame's global affine
    motion, which a tile may leave by about ``prior_std`` px where it measures it (:func:`regularize_flow`).
    Frames of different sizes, CFA patterns or cameras raise ShapeError / InvalidParameter.
    """
    options = {k: v for k, v in locals().items() if k != "burst"}
    return _run(burst, options)[0]


_KERNEL_OPTIONS = ("k_detail", "k_denoise", "k_stretch", "k_shrink", "d_th", "d_tr")


def _run(burst: Burst | Sequence[RawFrame], options: dict) -> tuple[torch.Tensor, tuple[int, torch.Tensor]]:
    """:func:`_super_resolve` from :func:`super_resolve`'s keyword options."""
    o = dict(options)
    kernel_options = {k: o.pop(k) for k in _KERNEL_OPTIONS}
    return _super_resolve(burst, kernel_options=kernel_options, **o)


def _check_options(scale: float, kernel: str, opts: dict, robustness_t: float, robustness_s: float) -> float:
    s = check_number("scale", scale, 1.0, 4.0)
    SR_KERNELS.get(kernel)
    check_number("k_detail", opts["k_detail"], 0.0, 10.0, lo_open=True)
    check_number("k_denoise", opts["k_denoise"], 0.0, 100.0, lo_open=True)
    check_number("k_stretch", opts["k_stretch"], 0.0, 100.0, lo_open=True)
    check_number("k_shrink", opts["k_shrink"], 0.0, 100.0, lo_open=True)
    check_number("d_th", opts["d_th"], 0.0, 1e6)
    check_number("d_tr", opts["d_tr"], 0.0, 1e6, lo_open=True)
    check_number("robustness_t", robustness_t, 0.0, 1.0)
    check_number("robustness_s", robustness_s, 0.0, 1e3, lo_open=True)
    return s


def _super_resolve(
    burst: Burst | Sequence[RawFrame],
    *,
    scale: float,
    reference: int | None,
    alignment: Alignment | None,
    kernel: str,
    kernel_options: dict,
    robustness: bool,
    refine: bool,
    regularize: bool,
    prior_std: float,
    motion_tolerance: float | None,
    robustness_t: float,
    robustness_s: float,
    device: torch.device | str | None,
    progress: Progress,
) -> tuple[torch.Tensor, tuple[int, torch.Tensor]]:
    """The work of :func:`super_resolve`; also returns the reference index and the per-channel noise variance
    factor Σw²/(Σw)² averaged over the image (the merged noise relative to one frame's)."""
    say = progress or (lambda _s: None)
    b = check_burst(burst)
    s = _check_options(scale, kernel, kernel_options, robustness_t, robustness_s)
    check_number("prior_std", prior_std, 0.0, 100.0, lo_open=True)
    if motion_tolerance is not None:
        check_number("motion_tolerance", motion_tolerance, 0.0, 100.0, lo_open=True)
    _check_exposures(b)
    n, h, w = b.data.shape
    cfa = b.metas[0].cfa
    if h < 8 or w < 8:
        raise ShapeError(f"frames must be at least 8×8 raw pixels; got {(h, w)}")
    if alignment is not None:
        _check_alignment(alignment, n, (h, w))
        ref = alignment.reference if reference is None else pick_reference(b, index=reference)
        if ref != alignment.reference:
            raise InvalidParameter(f"reference {ref} differs from the alignment's reference {alignment.reference}")
    else:
        ref = pick_reference(b) if reference is None else pick_reference(b, index=reference)
    dev = resolve_device(device, like=b.data)
    with torch.no_grad():
        if alignment is None:
            if n > 1:
                say("align")
                alignment = align_burst(b, reference=ref, device=dev)
            else:
                alignment = Alignment(torch.zeros(1, 2, 1, 1, device=dev), 2 * h, 2 * h, ref, (h, w))
        x = normalized_frames(b, device=dev)
        flow_tiles = alignment.flow.to(device=dev, dtype=torch.float32)
        if refine and n > 1 and alignment.tile_size >= 8:
            say("refine motion")
            # grey at the raw resolution: the mean of every 2×2 window (one Bayer period, so colour-free), less
            # aliased than the half-resolution grey the coarse alignment uses
            grey_all = F.avg_pool2d(x[:, None], 2, stride=1)[:, 0]
            flow_tiles = torch.stack(
                [
                    flow_tiles[i]
                    if i == ref
                    else refine_flow_damped(
                        grey_all[ref],
                        grey_all[i],
                        flow_tiles[i],
                        tile_size=alignment.tile_size,
                        tile_stride=alignment.tile_stride,
                    )
                    for i in range(n)
                ]
            )
        noise = noise_profile_rgb(b, ref, x[ref])
        na, nb = noise[:, 0], noise[:, 1]
        if regularize and n > 1 and min(flow_tiles.shape[-2:]) >= 2:
            say("motion model")
            flow_tiles = regularize_flow(
                b,
                flow_tiles,
                tile_size=alignment.tile_size,
                tile_stride=alignment.tile_stride,
                reference=ref,
                noise=noise,
                prior_std=prior_std,
            )

        say("kernels")
        rgb_half = half_res_rgb(x, cfa)  # (N, 3, h/2, w/2)
        hh, wh = rgb_half.shape[-2:]
        # the structure tensor of the reference at the raw resolution (one CFA period around every pixel): the
        # half-resolution grey aliases from 0.25 cycles/px on, and kernels oriented by aliased gradients make
        # false colour (zone plate, 0.2–0.4 cycles/px: chroma energy 142–220 → 12–56 with the true motion)
        grey = raw_to_grey_full(x[ref : ref + 1], cfa)[0]
        grad_gain = grey_noise_gains(cfa_period(cfa), 0.0)[0]
        raw_var = na.mean() * grey.clamp_min(0.0) + nb.mean()
        st = structure_tensor(grey, noise_std=(2.0 * grad_gain * raw_var).sqrt(), sigma=_TENSOR_SIGMA)
        precision = SR_KERNELS.get(kernel)(st, **kernel_options)  # (3, H, W)

        robust_half = None
        if robustness and n > 1:
            say("robustness")
            robust_half = torch.ones(n, hh, wh, dtype=torch.float32, device=dev)
            ref_rgb = rgb_half[ref]
            noise_var = na[:, None, None] * ref_rgb.clamp_min(0.0) + nb[:, None, None]
            cy = torch.arange(hh, device=dev, dtype=torch.float32) * 2 + 0.5  # half-res centres in raw pixels
            cx = torch.arange(wh, device=dev, dtype=torch.float32) * 2 + 0.5
            for i in range(n):
                if i == ref:
                    continue
                f = _bilinear_separable(flow_tiles[i], _tile_coords(alignment, cy), _tile_coords(alignment, cx))
                gy = (torch.arange(hh, device=dev, dtype=torch.float32)[:, None] + f[0] / 2) / max(hh - 1, 1) * 2 - 1
                gx = (torch.arange(wh, device=dev, dtype=torch.float32)[None, :] + f[1] / 2) / max(wh - 1, 1) * 2 - 1
                grid = torch.stack([gx, gy], -1)[None]
                warped = F.grid_sample(
                    rgb_half[i : i + 1], grid, mode="bilinear", padding_mode="border", align_corners=True
                )[0]
                robust_half[i] = robustness_map(ref_rgb, warped, noise_var, t=robustness_t, s=robustness_s)
                if motion_tolerance is not None:
                    noise_ab = (float(na.mean()), float(nb.mean()))
                    robust_half[i] *= motion_check(x, cfa, ref, i, f, noise_ab, tolerance=motion_tolerance)

        ho, wo = round(h * s), round(w * s)
        out = torch.empty(3, ho, wo, dtype=torch.float32, device=dev)
        ratio_sum = torch.zeros(3, dtype=torch.float64, device=dev)
        channels = cfa_index_map(cfa, h, w, device=dev)
        rx = (torch.arange(wo, device=dev, dtype=torch.float32) + 0.5) * (w / wo) - 0.5  # raw coords of outputs
        rows = max(1, _STRIP_PIXELS // wo)
        for j0 in range(0, ho, rows):
            j1 = min(ho, j0 + rows)
            say(f"rows {j0}-{j1} of {ho}")
            ry = (torch.arange(j0, j1, device=dev, dtype=torch.float32) + 0.5) * (h / ho) - 0.5
            p = (j1 - j0) * wo
            prec = _bilinear_separable(precision, ry, rx).reshape(3, p)
            flows = _bilinear_separable(
                flow_tiles.reshape(n * 2, *flow_tiles.shape[-2:]),
                _tile_coords(alignment, ry),
                _tile_coords(alignment, rx),
            ).reshape(n, 2, p)
            if robust_half is not None:
                iy = ((ry - 0.5) / 2).round().long().clamp(0, hh - 1)
                ix = ((rx - 0.5) / 2).round().long().clamp(0, wh - 1)
                rob = robust_half[:, iy][:, :, ix].reshape(n, p)
            yy = ry[:, None].expand(-1, wo).reshape(-1)
            xx = rx[None, :].expand(j1 - j0, -1).reshape(-1)
            acc = torch.zeros(9, p, dtype=torch.float32, device=dev)
            for i in range(n):
                wt = rob[i] if robust_half is not None else None
                accumulate_kernel_regression(x[i], channels, yy + flows[i, 0], xx + flows[i, 1], prec, wt, acc)
            out[:, j0:j1] = normalize_accumulation(acc).reshape(3, j1 - j0, wo)
            ratio_sum += (acc[6:9] / acc[3:6].square().clamp_min(1e-30)).sum(1).double()
        var_factor = (ratio_sum / (ho * wo)).to(torch.float32)
    return out, (ref, var_factor)


def super_resolve_frame(burst: Burst | Sequence[RawFrame], **options: Any) -> RawFrame:
    """:func:`super_resolve` as a LinearRaw :class:`RawFrame` (cfa ``""``, (3, H·s, W·s), black 0, white 1) with
    the reference's metadata, ready for :func:`obscura.isp.develop.develop`.

    The DefaultCrop is scaled; the NoiseProfile is scaled by the variance reduction the merge achieved (per
    channel, averaged over the image); opcode lists, bad pixels and the linearization table, which refer to the
    input mosaic, are dropped. ``options``: those of :func:`super_resolve` (same names and defaults).
    """
    b = check_burst(burst)
    try:
        bound = inspect.signature(super_resolve).bind(b, **options)
    except TypeError as e:
        raise InvalidParameter(f"super_resolve_frame: {e}") from None
    bound.apply_defaults()
    out, (ref, var_factor) = _run(b, {k: v for k, v in bound.arguments.items() if k != "burst"})
    m = b.metas[ref]
    h, w = b.data.shape[-2:]
    ho, wo = out.shape[-2:]
    crop = None
    if m.default_crop is not None:
        cx, cy, cw, ch = m.default_crop
        fx, fy = wo / w, ho / h
        x0, y0 = min(wo - 1, round(cx * fx)), min(ho - 1, round(cy * fy))
        crop = (x0, y0, max(1, min(wo - x0, round(cw * fx))), max(1, min(ho - y0, round(ch * fy))))
    prof = None
    if m.noise_profile:
        base = noise_profile_rgb(b, ref, torch.zeros(2, 2)).cpu()
        f = var_factor.cpu()
        prof = tuple((float(base[c, 0] * f[c]), float(base[c, 1] * f[c])) for c in range(3))
    meta = m.replace(
        cfa="",
        black_level=(0.0, 0.0, 0.0),
        white_level=1.0,
        linearization_table=None,
        default_crop=crop,
        noise_profile=prof,
        opcode_list1=(),
        opcode_list2=(),
        opcode_list3=(),
        bad_pixels=(),
    )
    return RawFrame(out, meta)
