"""Bad (hot, dead, stuck) pixel correction on the raw mosaic.

Two methods, reached through :func:`fix_bad_pixels`:

- ``"list"``: the pixels named by the caller (DNG BadPixels / FixBadPixelsList, a factory map) are
  replaced by the median of their valid same-colour neighbours;
- ``"auto"``: a detector in the spirit of the median-deviation test of dcraw/LibRaw ``pre_interpolate``
  and of Tomasi & Manduchi-style robust outlier tests: a pixel is bad when it deviates from the median
  of its 8 same-colour neighbours by more than ``k`` robust sigmas (the larger of the noise sigma and the
  neighbours' own spread, so texture raises the bar), and when no pixel next to it (any colour) peaks
  with it — a star or a small highlight lights neighbouring photosites through the lens PSF, a defective
  photosite does not. The listed pixels are corrected as well.

Same-colour neighbours of pixel (r, c) are the pixels (r + i·n, c + j·n), i, j ∈ {−1, 0, 1}, with ``n``
the CFA period (2 for Bayer, 4 for Quad Bayer). Work is on tensors (any device); the dense part is a
pair of pooling passes, the exact test runs on the few candidates only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch.nn import functional as F  # noqa: N812

from obscura.core.cfa import cfa_period
from obscura.core.errors import InvalidParameter, ShapeError
from obscura.core.registry import Registry

__all__ = [
    "BAD_PIXELS",
    "fix_bad_pixels",
    "fix_bad_pixels_list",
    "fix_bad_pixels_auto",
    "detect_bad_pixels",
    "fill_bad_pixels",
    "bad_pixel_mask",
]

BAD_PIXELS = Registry("bad_pixels")

_OFFSETS = [(i, j) for i in (-1, 0, 1) for j in (-1, 0, 1) if (i, j) != (0, 0)]
_GAUSS = 1.4826  # MAD → sigma for a Gaussian
_SPREAD = 1.7048  # E[x(7) − x(2)] of 8 standard normal samples: trimmed range → sigma


def _check_mosaic(mosaic: torch.Tensor, cfa: str) -> tuple[torch.Tensor, int]:
    if not isinstance(mosaic, torch.Tensor) or mosaic.ndim != 2:
        shape = tuple(mosaic.shape) if isinstance(mosaic, torch.Tensor) else type(mosaic).__name__
        raise ShapeError(f"mosaic must be a (H, W) tensor; got {shape}")
    if not cfa:
        raise InvalidParameter("bad-pixel correction needs the CFA pattern of the mosaic; got cfa=''")
    n = cfa_period(cfa)
    h, w = mosaic.shape
    if h % n or w % n or h < 3 * n or w < 3 * n:
        raise ShapeError(f"mosaic must be (H, W) with sides multiples of {n} and ≥ {3 * n} for CFA {cfa}; got {(h, w)}")
    x = mosaic if mosaic.dtype.is_floating_point else mosaic.to(torch.float32)
    return x, n


def bad_pixel_mask(
    height: int,
    width: int,
    *,
    points: Sequence[Sequence[int]] = (),
    rects: Sequence[Sequence[int]] = (),
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """(H, W) bool mask of listed pixels ``(row, col)`` and rectangles ``(top, left, bottom, right)`` (exclusive)."""
    mask = torch.zeros(height, width, dtype=torch.bool, device=device)
    pts = [tuple(int(v) for v in p) for p in points]
    for p in pts:
        if len(p) != 2 or not (0 <= p[0] < height and 0 <= p[1] < width):
            raise InvalidParameter(f"bad pixel {p} is not a (row, col) inside the {height}×{width} mosaic")
    if pts:
        idx = torch.tensor(pts, dtype=torch.int64, device=device)
        mask[idx[:, 0], idx[:, 1]] = True
    for r in rects:
        t, l, b, rr = (int(v) for v in r)
        if not (0 <= t < b <= height and 0 <= l < rr <= width):
            raise InvalidParameter(
                f"bad rectangle (top, left, bottom, right)={(t, l, b, rr)} is empty or outside "
                f"the {height}×{width} mosaic"
            )
        mask[t:b, l:rr] = True
    return mask


def _neighbour_index(r: torch.Tensor, c: torch.Tensor, h: int, w: int, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(K, 8) rows and cols of the same-colour neighbours, mirrored back inside at the borders."""
    dr = torch.tensor([o[0] * n for o in _OFFSETS], device=r.device)
    dc = torch.tensor([o[1] * n for o in _OFFSETS], device=r.device)
    rr = r[:, None] + dr
    cc = c[:, None] + dc
    rr = torch.where((rr < 0) | (rr >= h), r[:, None] - dr, rr)
    cc = torch.where((cc < 0) | (cc >= w), c[:, None] - dc, cc)
    return rr, cc


def _median_of_sorted(s: torch.Tensor, count: torch.Tensor) -> torch.Tensor:
    """Median of the first ``count`` entries of each sorted row (mean of the two middle ones)."""
    lo = ((count - 1) // 2).clamp(min=0)
    hi = (count // 2).clamp(max=s.shape[1] - 1)
    return 0.5 * (s.gather(1, lo[:, None]) + s.gather(1, hi[:, None]))[:, 0]


def fill_bad_pixels(
    mosaic: torch.Tensor, mask: torch.Tensor, *, cfa: str, statistic: str = "median", max_iterations: int = 10000
) -> torch.Tensor:
    """Replace the pixels where ``mask`` is True by the median (or mean) of their valid same-colour neighbours.

    Clusters and rectangles are filled from their border inwards, one ring of same-colour pixels per pass.
    """
    x, n = _check_mosaic(mosaic, cfa)
    if statistic not in ("median", "mean"):
        raise InvalidParameter(f"statistic must be 'median' or 'mean'; got {statistic!r}")
    if not isinstance(mask, torch.Tensor) or mask.shape != x.shape:
        raise ShapeError(f"mask must be a tensor of the mosaic's shape {tuple(x.shape)}; got {_shape(mask)}")
    h, w = x.shape
    bad = mask.to(device=x.device, dtype=torch.bool).clone()
    out = x.clone()
    if not bool(bad.any()):
        return out
    if bool(bad.all()):
        raise InvalidParameter("every pixel of the mosaic is marked bad; nothing to interpolate from")
    for _ in range(max_iterations):
        idx = bad.nonzero()
        if idx.numel() == 0:
            break
        r, c = idx[:, 0], idx[:, 1]
        dr = torch.tensor([o[0] * n for o in _OFFSETS], device=x.device)
        dc = torch.tensor([o[1] * n for o in _OFFSETS], device=x.device)
        rr, cc = r[:, None] + dr, c[:, None] + dc
        inside = (rr >= 0) & (rr < h) & (cc >= 0) & (cc < w)
        rr, cc = rr.clamp(0, h - 1), cc.clamp(0, w - 1)
        valid = inside & ~bad[rr, cc]
        vals = out[rr, cc]
        count = valid.sum(1)
        if statistic == "mean":
            est = torch.where(valid, vals, torch.zeros_like(vals)).sum(1) / count.clamp(min=1)
        else:
            s, _ = torch.where(valid, vals, torch.full_like(vals, math.inf)).sort(1)
            est = _median_of_sorted(s, count)
        ok = count > 0
        if not bool(ok.any()):
            raise InvalidParameter("bad pixels cover a whole colour plane; nothing to interpolate from")
        out[r[ok], c[ok]] = est[ok]
        bad[r[ok], c[ok]] = False
    return out


def _subplanes(x: torch.Tensor, n: int) -> torch.Tensor:
    """(H, W) → (n², H/n, W/n): one plane per CFA site."""
    h, w = x.shape
    return x.reshape(h // n, n, w // n, n).permute(1, 3, 0, 2).reshape(n * n, h // n, w // n)


# Sorting network for 8 values (19 compare-exchanges, Knuth TAOCP vol. 3 §5.3.4): vectorized over all
# pixels at once, much faster than torch.sort on many short rows.
_NET8 = (
    (0, 2), (1, 3), (4, 6), (5, 7),
    (0, 4), (1, 5), (2, 6), (3, 7),
    (0, 1), (2, 3), (4, 5), (6, 7),
    (2, 4), (3, 5),
    (1, 4), (3, 6),
    (1, 2), (3, 4), (5, 6),
)  # fmt: skip


def _sort8(v: torch.Tensor) -> list[torch.Tensor]:
    """The 8 columns of ``v`` (K, 8) in ascending order, as a list of (K,) tensors."""
    s = list(v.unbind(1))
    for i, j in _NET8:
        s[i], s[j] = torch.minimum(s[i], s[j]), torch.maximum(s[i], s[j])
    return s


def _robust_stats(x: torch.Tensor, r: torch.Tensor, c: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Median of the 8 same-colour neighbours and their spread (trimmed range as a sigma) at (r, c)."""
    h, w = x.shape
    rr, cc = _neighbour_index(r, c, h, w, n)
    s = _sort8(x[rr, cc])
    return 0.5 * (s[3] + s[4]), (s[6] - s[1]) / _SPREAD


def _site_sigma(x: torch.Tensor, n: int, sigma: float | Sequence[float] | None) -> torch.Tensor:
    """Noise sigma per CFA site: given, or the MAD of a horizontal same-colour second difference.

    The estimate uses about 64 tile rows (cheap); for white noise ``x − (l + r)/2`` has sigma·sqrt(3/2).
    """
    if sigma is not None:
        sv = [float(sigma)] if isinstance(sigma, int | float) else [float(v) for v in sigma]
        if len(sv) not in (1, n * n) or not all(math.isfinite(v) and v >= 0 for v in sv):
            raise InvalidParameter(f"sigma must be ≥ 0, one value or one per CFA site ({n * n}); got {sigma!r}")
        return torch.tensor(sv * (n * n if len(sv) == 1 else 1), dtype=x.dtype, device=x.device)
    h, w = x.shape
    rows = x.reshape(h // n, n, w)[:: max(1, h // n // 64)]  # (R, n, W): a subset of tile rows
    d = rows[..., n:-n] - 0.5 * (rows[..., : -2 * n] + rows[..., 2 * n :])  # (R, n, W − 2n)
    cols = d.shape[-1] - d.shape[-1] % n
    d = d[..., :cols].reshape(d.shape[0], n, cols // n, n).permute(1, 3, 0, 2).reshape(n * n, -1)
    # columns of d start at x-column n, so site (i, j) of d is site (i, j) of the mosaic
    return d.abs().median(dim=1).values * (_GAUSS / math.sqrt(1.5))


def detect_bad_pixels(
    mosaic: torch.Tensor,
    *,
    cfa: str,
    k: float = 4.5,
    min_deviation: float = 0.02,
    sigma: float | Sequence[float] | None = None,
    neighbour_ratio: float = 0.2,
) -> torch.Tensor:
    """(H, W) bool mask of hot and dead pixels in a normalized mosaic (black 0, white 1).

    A pixel is flagged when ``|x − median8| > max(k · max(sigma, spread8), min_deviation)``, with
    ``median8`` and ``spread8`` the median and robust spread of its 8 same-colour neighbours, and
    ``sigma`` the noise sigma of its CFA site (estimated by the MAD of a high-pass residual when not
    given), and when none of its 8 direct neighbours (any colour) deviates the same way by more than
    ``neighbour_ratio`` of its deviation and 3 of its own robust sigmas (real point-like detail, such as
    stars, spreads over neighbouring photosites through the lens; a defective photosite does not).
    """
    x, n = _check_mosaic(mosaic, cfa)
    for name, v in (("k", k), ("min_deviation", min_deviation), ("neighbour_ratio", neighbour_ratio)):
        if not isinstance(v, int | float) or not math.isfinite(v) or v <= 0:
            raise InvalidParameter(f"{name} must be a positive finite number; got {v!r}")
    if k < 3.5:
        raise InvalidParameter(f"k must be ≥ 3.5 (robust sigmas; lower values flag plain noise); got {k}")
    h, w = x.shape
    # Test the colour difference d = x − mean of the 4 axial neighbours (other colours) rather than x: image
    # texture is mostly shared by the colour channels and cancels, while a defect stays (Hamilton & Adams
    # 1997 use the same smoothness of colour differences for demosaicing).
    q = F.pad(x[None, None], (1, 1, 1, 1), mode="reflect")[0, 0]
    x = x - 0.25 * (q[1:-1, :-2] + q[1:-1, 2:] + q[:-2, 1:-1] + q[2:, 1:-1])
    sig = _site_sigma(x, n, sigma)
    floor = torch.clamp(k * sig, min=min_deviation)  # (n²,) smallest threshold per site
    t = 0.5 * float(floor.min())
    # Dense pre-filter (a necessary condition, cheap: a few passes over the mosaic). A pixel that passes the
    # exact test below deviates from its 8-neighbour median by T ≥ t·2 while the trimmed spread stays
    # below T/k, so at most one same-colour neighbour lies within T/2 of it; in particular at most one of
    # its 4 axial neighbours l, r, u, d. With A/a the max/min of (l, r) and B/b of (u, d), for a hot pixel:
    # x − t ≥ max(a, b) and x − t ≥ min(A, B); mirrored for a dead one. (This needs k ≥ 3.5.)
    p = F.pad(x[None, None], (n, n, n, n), mode="reflect")[0, 0]
    l, rt, up, dn = p[n:-n, : -2 * n], p[n:-n, 2 * n :], p[: -2 * n, n:-n], p[2 * n :, n:-n]
    m1 = torch.maximum(torch.minimum(l, rt), torch.minimum(up, dn))
    m2 = torch.minimum(torch.maximum(l, rt), torch.maximum(up, dn))
    hot = x >= torch.maximum(m1, m2).add_(t)
    dead = x <= torch.minimum(m1, m2).sub_(t)
    r, c = (hot | dead).nonzero(as_tuple=True)
    mask = torch.zeros(h, w, dtype=torch.bool, device=x.device)
    if r.numel() == 0:
        return mask
    site = (r % n) * n + c % n
    med, spread = _robust_stats(x, r, c, n)
    e = x[r, c] - med
    sig_site = sig[site]
    thr = torch.clamp(k * torch.maximum(spread, sig_site), min=min_deviation)
    keep = e.abs() > thr
    r, c, e = r[keep], c[keep], e[keep]
    if r.numel() == 0:
        return mask
    # guard: does a direct neighbour (any colour) peak the same way? then it is detail, not a defect
    detail = torch.zeros_like(e, dtype=torch.bool)
    for di, dj in _OFFSETS:
        rq = r + di
        cq = c + dj
        rq = torch.where((rq < 0) | (rq >= h), r - di, rq)
        cq = torch.where((cq < 0) | (cq >= w), c - dj, cq)
        mq, sq = _robust_stats(x, rq, cq, n)
        eq = x[rq, cq] - mq
        site_q = (rq % n) * n + cq % n
        peaked = (eq * e.sign() > neighbour_ratio * e.abs()) & (eq.abs() > 3.0 * torch.maximum(sq, sig[site_q]))
        detail |= peaked
    r, c = r[~detail], c[~detail]
    mask[r, c] = True
    return mask


@BAD_PIXELS.register("list")
def fix_bad_pixels_list(
    mosaic: torch.Tensor,
    *,
    cfa: str,
    points: Sequence[Sequence[int]] = (),
    rects: Sequence[Sequence[int]] = (),
    statistic: str = "median",
) -> torch.Tensor:
    """Replace the listed pixels and rectangles by the median (or mean) of their valid same-colour neighbours."""
    x, _ = _check_mosaic(mosaic, cfa)
    mask = bad_pixel_mask(x.shape[0], x.shape[1], points=points, rects=rects, device=x.device)
    return fill_bad_pixels(x, mask, cfa=cfa, statistic=statistic)


@BAD_PIXELS.register("auto")
def fix_bad_pixels_auto(
    mosaic: torch.Tensor,
    *,
    cfa: str,
    points: Sequence[Sequence[int]] = (),
    rects: Sequence[Sequence[int]] = (),
    statistic: str = "median",
    k: float = 4.5,
    min_deviation: float = 0.02,
    sigma: float | Sequence[float] | None = None,
    neighbour_ratio: float = 0.2,
) -> torch.Tensor:
    """Detect hot/dead pixels (:func:`detect_bad_pixels`) and fix them together with any listed ones."""
    x, _ = _check_mosaic(mosaic, cfa)
    mask = detect_bad_pixels(x, cfa=cfa, k=k, min_deviation=min_deviation, sigma=sigma, neighbour_ratio=neighbour_ratio)
    mask |= bad_pixel_mask(x.shape[0], x.shape[1], points=points, rects=rects, device=x.device)
    return fill_bad_pixels(x, mask, cfa=cfa, statistic=statistic)


def fix_bad_pixels(mosaic: torch.Tensor, *, cfa: str, method: str = "auto", **options: object) -> torch.Tensor:
    """Bad-pixel correction dispatcher: ``method`` is one of :data:`BAD_PIXELS` (``"auto"``, ``"list"``)."""
    return BAD_PIXELS.get(method)(mosaic, cfa=cfa, **options)


def _shape(x: object) -> object:
    return tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
