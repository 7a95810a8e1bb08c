"""Sharpening of the display-referred image (after tone), on luminance only.

Input: a (3, H, W) display-linear image in [0, 1] (what :func:`obscura.isp.tone.tone_curve` returns).
The detail is computed on a perceptual encoding of luminance (√Y), so that dark and bright
sides of an edge get halos of similar visual size, and is put back into RGB by scaling the three
channels by Y'/Y: the chromaticity (R:G:B ratios) of every pixel is kept.
"""

from __future__ import annotations

import math

import torch

from obscura.core.errors import InvalidParameter
from obscura.core.registry import Registry
from obscura.core.validate import check_image, check_number
from obscura.isp._filters import blur_separable, gaussian_kernel1d, local_min_max3, pad_replicate, strip_map

__all__ = ["SHARPEN", "sharpen", "sharpen_usm"]

SHARPEN = Registry("sharpen")

REC709_LUMA = (0.2126, 0.7152, 0.0722)
_EPS = 1e-5


def _check_image(x: torch.Tensor, name: str = "image") -> None:
    check_image(x, name=name)


_finite = check_number


@SHARPEN.register("usm")
def sharpen_usm(
    x: torch.Tensor,
    *,
    amount: float = 0.5,
    radius: float = 1.0,
    threshold: float = 0.0,
    halo_limit: float | None = 0.5,
    luma_weights: tuple[float, float, float] = REC709_LUMA,
) -> torch.Tensor:
    """Unsharp mask on luminance with halo limiting.

    ``Y' = Y + amount · soft_threshold(Y − G_radius * Y, threshold)`` on perceptual luminance
    (√Y), then clamped to the 3×3 neighbourhood's [min − h·range, max + h·range] with
    ``h = halo_limit`` (``None`` disables the clamp), so overshoot beyond the local extremes is at most
    ``halo_limit`` times the local contrast. The classic darkroom unsharp mask; halo clamping as in
    Lightroom/RawTherapee-style "halo control".
    """
    _check_image(x)
    amount = _finite("amount", amount, 0.0, 20.0)
    radius = _finite("radius", radius, 0.1, 50.0)
    threshold = _finite("threshold", threshold, 0.0, 1.0)
    hl = None if halo_limit is None else _finite("halo_limit", halo_limit, 0.0, 100.0)
    if len(luma_weights) != 3:
        raise InvalidParameter(f"luma_weights must have 3 values; got {luma_weights!r}")
    if amount == 0.0:
        return x.clone()
    # a Gaussian truncated at 2.5σ: enough for a detail layer, and fewer taps
    k = gaussian_kernel1d(radius, dtype=x.dtype, device=x.device, radius=max(1, math.ceil(2.5 * radius)))
    r = (k.numel() - 1) // 2
    w0, w1, w2 = (float(v) for v in luma_weights)

    def run(s: torch.Tensor) -> torch.Tensor:
        y = (s[0] * w0).add_(s[1], alpha=w1).add_(s[2], alpha=w2).clamp_min_(0.0)
        p = y.sqrt()  # perceptual luminance (γ = 2)
        pp = pad_replicate(p, 0, r)  # shared by the blur and the 3×3 min/max (r ≥ 1)
        if threshold > 0:
            d = p - blur_separable(p, k, padded=pp)
            d = torch.sign(d) * (d.abs() - threshold).clamp_min_(0.0)
            q = d.mul_(amount).add_(p)
        else:  # p + amount·(p − blur) in two ops
            q = blur_separable(p, k, padded=pp).mul_(-amount).add_(p, alpha=1.0 + amount)
        if hl is not None:
            mn, mx = local_min_max3(p, padded=pp[..., r - 1 : pp.shape[-1] - r + 1])
            ext = (mx - mn).mul_(hl)
            q = torch.maximum(torch.minimum(q, mx.add_(ext)), mn.sub_(ext).clamp_min_(0.0))
        else:
            q.clamp_min_(0.0)
        # the same factor on R, G, B keeps chromaticity; _EPS only tempers the gain in near-black pixels
        ratio = (q * q).add_(_EPS).div_(y.add_(_EPS))
        return (s * ratio).clamp_(0.0, 1.0)

    return strip_map(run, x, halo=r + 1)


def sharpen(x: torch.Tensor, *, method: str = "usm", **options) -> torch.Tensor:
    """Sharpen a (3, H, W) display-linear image with the method named (see :data:`SHARPEN`)."""
    return SHARPEN.get(method)(x, **options)
