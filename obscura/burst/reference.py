"""Choosing the reference frame of a burst, and the checks every burst stage shares.

The reference is the sharpest of the first ``k`` frames, measured by the gradient energy of the green
channel (Hasinoff et al. 2016, "Burst photography for high dynamic range and low-light imaging on mobile
cameras", §4: the reference is picked among the first three frames by the sharpness of its green
channel), or the frame the caller names.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.nn import functional as F  # noqa: N812

from obscura.core.cfa import cfa_period, channel_of_sites, per_site_tensor
from obscura.core.errors import InvalidParameter, ShapeError
from obscura.core.types import Burst, RawFrame

__all__ = [
    "as_burst",
    "check_burst",
    "normalized_frames",
    "site_planes",
    "from_site_planes",
    "green_sharpness",
    "pick_reference",
]


def as_burst(burst: Burst | Sequence[RawFrame]) -> Burst:
    """``burst`` as a :class:`Burst` (a sequence of RawFrames is stacked; sizes must agree)."""
    if isinstance(burst, Burst):
        return burst
    if isinstance(burst, RawFrame):
        return Burst.from_frames([burst])
    if isinstance(burst, Sequence) and all(isinstance(f, RawFrame) for f in burst):
        cfas = sorted({f.meta.cfa for f in burst})
        if len(cfas) > 1:
            raise ShapeError(f"all frames of a burst must share one CFA; got {cfas}")
        return Burst.from_frames(list(burst))
    raise ShapeError(f"expected a Burst or a sequence of RawFrames; got {type(burst).__name__}")


def check_burst(burst: Burst | Sequence[RawFrame]) -> Burst:
    """Validate a burst for alignment and merging: one CFA mosaic pattern, one camera, one size.

    Raises ShapeError (no CFA, sizes or patterns differ) or InvalidParameter (cameras differ).
    """
    b = as_burst(burst)
    cfa = b.metas[0].cfa
    if cfa == "":
        raise ShapeError("burst merging needs CFA mosaics; got demosaiced (LinearRaw) frames")
    cameras = sorted({(m.make, m.model) for m in b.metas})
    if len(cameras) > 1:
        raise InvalidParameter(f"all frames of a burst must come from one camera (make, model); got {cameras}")
    if not b.data.is_floating_point() and b.data.dtype not in (torch.uint8, torch.int16, torch.int32, torch.int64):
        raise ShapeError(f"burst data must be numeric; got {b.data.dtype}")
    for i, m in enumerate(b.metas):
        blk = max(m.black_level)
        if not m.white_level > blk:
            raise InvalidParameter(f"frame {i}: white level {m.white_level} must exceed the black level {blk}")
    return b


def normalized_frames(burst: Burst, *, device: torch.device | None = None) -> torch.Tensor:
    """(N, H, W) float32 frames normalized per frame to x = (raw − black) / (white − black)."""
    dev = device if device is not None else burst.data.device
    x = burst.data.to(device=dev, dtype=torch.float32)
    _, h, w = x.shape
    out = torch.empty_like(x)
    for i, m in enumerate(burst.metas):
        blk = per_site_tensor(m.black_level, m.cfa, h, w, device=dev)
        out[i] = (x[i] - blk) / (float(m.white_level) - blk)
    return out


def site_planes(x: torch.Tensor, cfa: str) -> torch.Tensor:
    """(..., H, W) mosaic → (..., n², H/n, W/n) planes, one per CFA site in reading order (n = 2 or 4)."""
    n = cfa_period(cfa)
    *lead, h, w = x.shape
    y = x.reshape(*lead, h // n, n, w // n, n)
    y = y.movedim(-3, -2)  # (..., h/n, w/n, n, n) → sites last
    return y.reshape(*lead, h // n, w // n, n * n).movedim(-1, -3)


def from_site_planes(p: torch.Tensor, cfa: str) -> torch.Tensor:
    """Inverse of :func:`site_planes`: (..., n², h, w) → (..., n·h, n·w)."""
    n = cfa_period(cfa)
    *lead, _, h, w = p.shape
    y = p.movedim(-3, -1).reshape(*lead, h, w, n, n).movedim(-2, -3)
    return y.reshape(*lead, h * n, w * n)


def green_sharpness(x: torch.Tensor, cfa: str) -> torch.Tensor:
    """Gradient energy of the green channel of normalized mosaics (N, H, W) → (N,).

    Green is the mean of the green site planes; a [1, 2, 1] blur first keeps the noise from dominating.
    """
    planes = site_planes(x, cfa)
    green = [i for i, c in enumerate(channel_of_sites(cfa)) if c == 1]
    g = planes[:, green].mean(dim=1, keepdim=True)
    k = torch.tensor([0.25, 0.5, 0.25], dtype=g.dtype, device=g.device)
    g = F.conv2d(F.pad(g, (1, 1, 0, 0), mode="replicate"), k.reshape(1, 1, 1, 3))
    g = F.conv2d(F.pad(g, (0, 0, 1, 1), mode="replicate"), k.reshape(1, 1, 3, 1))
    gy = g[..., 1:, :] - g[..., :-1, :]
    gx = g[..., :, 1:] - g[..., :, :-1]
    return (gy.square().mean(dim=(1, 2, 3)) + gx.square().mean(dim=(1, 2, 3))).to(torch.float32)


def pick_reference(burst: Burst | Sequence[RawFrame], *, k: int = 3, index: int | None = None) -> int:
    """Index of the reference frame: ``index`` if given, else the sharpest of the first ``k`` frames.

    Sharpness is the gradient energy of the green channel (Hasinoff et al. 2016, §4).
    """
    b = check_burst(burst)
    n = len(b)
    if index is not None:
        if isinstance(index, bool) or not isinstance(index, int) or not -n <= index < n:
            raise InvalidParameter(f"reference index must be an int in [{-n}, {n - 1}]; got {index!r}")
        return index % n
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise InvalidParameter(f"k must be an int ≥ 1; got {k!r}")
    m = min(k, n)
    sub = Burst(b.data[:m], b.metas[:m])
    with torch.no_grad():
        s = green_sharpness(normalized_frames(sub), b.metas[0].cfa)
    return int(torch.argmax(s))


def noise_profile_rgb(b: Burst, ref: int, x_ref: torch.Tensor) -> torch.Tensor:
    """(3, 2) per-colour (a, b) of variance a·x + b in normalized units: the reference frame's NoiseProfile, else
    estimated from its normalized mosaic ``x_ref`` (H, W); on ``x_ref``'s device."""
    prof = b.metas[ref].noise_profile
    if not prof:
        from obscura.burst.merge import estimate_burst_noise

        prof = estimate_burst_noise(x_ref, b.metas[ref].cfa)
    p = [tuple(float(v) for v in q) for q in prof]
    if len(p) == 1:
        p = p * 3
    elif len(p) != 3:  # per CFA site: the first site of each colour
        from obscura.core.cfa import channel_of_sites

        sites = channel_of_sites(b.metas[ref].cfa)
        p = [p[sites.index(c)] if len(p) == len(sites) else p[0] for c in range(3)]
    return torch.tensor(p, dtype=torch.float32, device=x_ref.device)
