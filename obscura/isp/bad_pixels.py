"""Bad (hot, dead, stuck) pixel correction on the raw mosaic.

Two methods, reached through :func:`fix_bad_pixels`:

- ``"list"``: the pixels named by the caller (DNG BadPixels / FixBadPixelsList, a factory map) are
  interpolated from their valid neighbours (:func:`fill_bad_pixels`);
- ``"auto"``: they and the pixels found by :func:`detect_bad_pixels` are.

Detection (in the spirit of the directional outlier tests of dcraw/LibRaw ``pre_interpolate`` and of the
colour-difference predictors of Hamilton & Adams 1997): along each of 4 directions (horizontal, vertical,
two diagonals) a pixel is predicted from its two same-colour neighbours at distance ``n`` (the CFA period)
plus the curvature of the pixels between them (other colours on Bayer: colour differences are smoother
than colours, so texture shared by the channels cancels). A pixel is hot when it exceeds *every*
directional prediction by more than ``k`` noise sigmas of the prediction residual (dead: below every one):
an edge or a line leaves at least one direction that follows it, a defect does not. The noise is given
(``sigma`` or a DNG ``noise_profile``, variance ``a·x + b``) or estimated (MAD of the residual).
Point lights (stars, specular glints) pass that test too, but the lens PSF lifts the adjacent photosites of
the other colours along both axes, which a defective photosite does not: such pixels are kept
(cross-channel evidence). A defect also spoils the predictions of the pixels next to it, so the
detections are tested again with the strongest one of each 3×3 neighbourhood replaced by its fill.

Filling interpolates colour differences (Hamilton & Adams 1997): the mean of the 4 adjacent pixels plus
the colour difference (pixel − mean of its 4 adjacent ones) of the same-colour neighbours, along the axis
of smaller gradient (inverse-gradient weights, as edge-directed interpolation, Hibbard 1995). Where an
adjacent pixel is bad too, the gradient-weighted directional predictions above are used over the
directions whose samples are all valid; where none is (clusters, rectangles, corners), the pixels are
filled ring by ring from the border inwards by a plane fitted to their valid same-colour neighbours
(their median where those do not span a plane); ``statistic="median"``/``"mean"`` give the plain
median/mean of the valid same-colour neighbours instead.

Work is on tensors (any device). Speed: the dense part is one pre-filter over the mosaic, in bands of rows
that stay in the CPU cache, with preallocated buffers (allocating full-size temporaries costs more than
the arithmetic); the exact tests and the fill gather only the few candidate pixels by index.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from obscura.core.cfa import cfa_period, channel_of_sites
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
_DIRECTIONS = ((0, 1), (1, 0), (1, 1), (1, -1))
_GAUSS = 1.4826  # MAD → sigma for a Gaussian
# residual x − P of a directional prediction P = (x₋₂ + x₊₂)/2 + (x₋₁ + x₊₁ − x₋₃ − x₊₃)/4 on white noise:
# variance 1 + 2/4 + 4/16 = 1.75 times the pixel variance
_RESIDUAL_VAR = 1.75
_BAND_ROWS = 128  # rows per band of the dense pre-filter (a few MB per buffer: stays in the cache)


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
    return x.contiguous(), n


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


# ---------------------------------------------------------------------------------------------- gathers


def _index(
    shape: tuple[int, int], r: torch.Tensor, c: torch.Tensor, offsets: Sequence[tuple[int, int]]
) -> torch.Tensor:
    """(K, M) flat indices of (r + dr, c + dc) for the M offsets; a coordinate that falls outside is
    mirrored about (r, c) (r − dr), which keeps the CFA colour. A few ops whatever M (speed)."""
    h, w = shape
    d = torch.tensor(offsets, dtype=r.dtype, device=r.device)
    rr = r[:, None] + d[:, 0]
    cc = c[:, None] + d[:, 1]
    rr = torch.where((rr < 0) | (rr >= h), r[:, None] - d[:, 0], rr)
    cc = torch.where((cc < 0) | (cc >= w), c[:, None] - d[:, 1], cc)
    return rr * w + cc


def _outside(
    shape: tuple[int, int], r: torch.Tensor, c: torch.Tensor, offsets: Sequence[tuple[int, int]]
) -> torch.Tensor:
    """(K, M) True where (r + dr, c + dc) falls outside the mosaic (the fill does not use mirrored samples)."""
    h, w = shape
    d = torch.tensor(offsets, dtype=r.dtype, device=r.device)
    rr = r[:, None] + d[:, 0]
    cc = c[:, None] + d[:, 1]
    return (rr < 0) | (rr >= h) | (cc < 0) | (cc >= w)


def _gather(
    x: torch.Tensor,
    r: torch.Tensor,
    c: torch.Tensor,
    offsets: Sequence[tuple[int, int]],
    over: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> torch.Tensor:
    """(K, M) values of ``x`` at the offsets from (r, c) (see :func:`_index`).

    ``over``: (sorted flat indices, values) that replace those of ``x`` (a sparse edit, no full-size copy).
    """
    flat = _index(x.shape, r, c, offsets)
    v = x.view(-1)[flat]
    if over is not None and over[0].numel():
        pos = torch.searchsorted(over[0], flat).clamp(max=over[0].numel() - 1)
        v = torch.where(over[0][pos] == flat, over[1][pos], v)
    return v


def _directional(
    x: torch.Tensor,
    r: torch.Tensor,
    c: torch.Tensor,
    n: int,
    bad: torch.Tensor | None = None,
    over: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(K, 4) colour-difference predictions, gradients and validity along the 4 directions at (r, c).

    Along direction d with unit step u = d·n/2: ``P = (x(−2u) + x(+2u))/2 + (x(−u) + x(+u) − x(−3u) − x(+3u))/4``
    (the same-colour mean corrected by the curvature of the samples between: Hamilton & Adams 1997);
    gradient ``|x(−2u) − x(+2u)| + |x(−u) − x(+u)|``; valid when none of the six samples is in ``bad`` or
    outside the mosaic.
    """
    s = n // 2
    offs = [(j * s * di, j * s * dj) for di, dj in _DIRECTIONS for j in (-3, -2, -1, 1, 2, 3)]
    v = _gather(x, r, c, offs, over).reshape(-1, 4, 6)  # (K, direction, j)
    m3, m2, m1, p1, p2, p3 = v.unbind(2)
    p = 0.5 * (m2 + p2) + 0.25 * (m1 + p1 - m3 - p3)
    g = (m2 - p2).abs() + (m1 - p1).abs()
    if bad is None:
        return p, g, torch.ones_like(p, dtype=torch.bool)
    invalid = _gather(bad, r, c, offs) | _outside(x.shape, r, c, offs)
    valid = ~invalid.reshape(-1, 4, 6).any(2)
    return p, g, valid


# ---------------------------------------------------------------------------------------------- fill


def _median_of_sorted(s: torch.Tensor, count: torch.Tensor) -> torch.Tensor:
    """Median of the first ``count`` entries of each sorted row (mean of the two middle ones)."""
    lo = ((count - 1) // 2).clamp(min=0)
    hi = (count // 2).clamp(max=s.shape[1] - 1)
    return 0.5 * (s.gather(1, lo[:, None]) + s.gather(1, hi[:, None]))[:, 0]


def _ring_step(
    out: torch.Tensor, bad: torch.Tensor, r: torch.Tensor, c: torch.Tensor, n: int, statistic: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """Median/mean/plane fit of the valid same-colour neighbours for the bad pixels that have some (the outer
    ring of clusters), in place; returns the pixels still to fill."""
    h, w = out.shape
    dr = torch.tensor([o[0] * n for o in _OFFSETS], device=out.device)
    dc = torch.tensor([o[1] * n for o in _OFFSETS], device=out.device)
    rr, cc = r[:, None] + dr, c[:, None] + dc
    inside = (rr >= 0) & (rr < h) & (cc >= 0) & (cc < w)
    rr, cc = rr.clamp(0, h - 1), cc.clamp(0, w - 1)
    valid = inside & ~bad[rr, cc]
    vals = out[rr, cc]
    count = valid.sum(1)
    if statistic == "mean":
        est = torch.where(valid, vals, torch.zeros_like(vals)).sum(1) / count.clamp(min=1)
    else:
        srt, _ = torch.where(valid, vals, torch.full_like(vals, math.inf)).sort(1)
        est = _median_of_sorted(srt, count)
    if statistic == "plane":
        # least-squares plane through the valid neighbours, where they span one (exact on smooth gradients,
        # which a median of one-sided neighbours is not); the median elsewhere
        dt = torch.promote_types(out.dtype, torch.float32)  # linalg has no half precision
        a = torch.tensor([[1.0, o[0], o[1]] for o in _OFFSETS], dtype=dt, device=out.device)  # (8, 3)
        wv = valid.to(dt)
        m = torch.einsum("km,mi,mj->kij", wv, a, a)
        rhs = torch.einsum("km,mi,km->ki", wv, a, torch.where(valid, vals, torch.zeros_like(vals)).to(dt))
        solvable = torch.linalg.det(m).abs() > 1e-3
        if bool(solvable.any()):
            coef = torch.linalg.solve(m[solvable], rhs[solvable])
            est[solvable] = coef[:, 0].to(est.dtype)
    most = int(count.max())
    if most == 0:
        raise InvalidParameter("bad pixels cover a whole colour plane; nothing to interpolate from")
    ok = count >= min(most, 3)  # the best-supported first: a pixel deep in a cluster waits for its ring
    out[r[ok], c[ok]] = est[ok]
    bad[r[ok], c[ok]] = False
    return r[~ok], c[~ok]


_AXIAL = ((0, -1), (0, 1), (-1, 0), (1, 0))


def _fill_colour_difference(
    x: torch.Tensor, bad: torch.Tensor, r: torch.Tensor, c: torch.Tensor, n: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Colour-difference fill: the mean of the 4 adjacent pixels plus the colour difference interpolated
    from the same-colour neighbours along the axis of smaller gradient (inverse-gradient weights; Hamilton
    & Adams 1997 interpolate colour differences rather than colours). Returns the estimates and validity."""
    # columns: the 4 adjacent pixels, then per axis and side the same-colour neighbour q and q's 4 adjacent ones
    offs = list(_AXIAL)
    for ai, aj in ((0, 1), (1, 0)):
        for sgn in (-1, 1):
            qi, qj = sgn * n * ai, sgn * n * aj
            offs += [(qi, qj)] + [(qi + oi, qj + oj) for oi, oj in _AXIAL]
    v = _gather(x, r, c, offs)
    b = _gather(bad, r, c, offs) | _outside(x.shape, r, c, offs)
    base = v[:, :4].mean(1)
    ok = ~b[:, :4].any(1)
    num = torch.zeros_like(base)
    den = torch.zeros_like(base)
    for axis in range(2):
        blk = v[:, 4 + 10 * axis : 14 + 10 * axis].reshape(-1, 2, 5)  # (K, side, [q, 4 adjacent])
        cd = (blk[:, :, 0] - blk[:, :, 1:].mean(2)).mean(1)
        valid = ok & ~b[:, 4 + 10 * axis : 14 + 10 * axis].any(1)
        adj = v[:, 2 * axis : 2 * axis + 2]  # the 2 adjacent pixels along this axis
        grad = (blk[:, 0, 0] - blk[:, 1, 0]).abs() + (adj[:, 0] - adj[:, 1]).abs()
        wgt = torch.where(valid, 1.0 / (grad + 1e-3), torch.zeros_like(grad))
        num += wgt * cd
        den += wgt
    return base + num / den.clamp(min=1e-30), den > 0


def _fill_values(
    x: torch.Tensor, bad: torch.Tensor, r: torch.Tensor, c: torch.Tensor, n: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Estimates at the bad pixels (r, c), and where they exist: the colour-difference fill, or where an
    adjacent pixel is bad, the gradient-weighted directional predictions whose samples are all valid."""
    est, ok = _fill_colour_difference(x, bad, r, c, n)
    if not bool(ok.all()):
        rest = (~ok).nonzero()[:, 0]
        p, g, valid = _directional(x, r[rest], c[rest], n, bad)
        wgt = torch.where(valid, 1.0 / (g + 1e-3), torch.zeros_like(g))
        total = wgt.sum(1)
        est[rest] = (wgt * p).sum(1) / total.clamp(min=1e-30)
        ok[rest] = total > 0
    return est, ok


def _fill_at(out: torch.Tensor, bad: torch.Tensor, r: torch.Tensor, c: torch.Tensor, n: int, statistic: str):
    """Fill the bad pixels (r, c) of ``out`` in place (``bad`` is their mask, updated as they are filled).

    ``"directional"``: the estimates of :func:`_fill_values` wherever their samples are valid; where none is
    (clusters, rectangles), one ring from the border inwards with a plane fitted to the valid same-colour
    neighbours (their median where they do not span a plane), then again.
    """
    while r.numel():
        if statistic == "directional":
            est, ok = _fill_values(out, bad, r, c, n)
            if bool(ok.any()):
                out[r[ok], c[ok]] = est[ok]
                bad[r[ok], c[ok]] = False
                r, c = r[~ok], c[~ok]
                continue
        r, c = _ring_step(out, bad, r, c, n, "plane" if statistic == "directional" else statistic)


def fill_bad_pixels(
    mosaic: torch.Tensor, mask: torch.Tensor, *, cfa: str, statistic: str = "directional"
) -> torch.Tensor:
    """Replace the pixels where ``mask`` is True by an interpolation from their valid neighbours.

    ``statistic``: ``"directional"`` (default: colour-difference and directional interpolation where their
    samples are valid, a plane fit to the valid same-colour neighbours elsewhere; see the module docstring),
    ``"median"`` or ``"mean"`` of the valid same-colour neighbours. Clusters and rectangles are filled from
    their border inwards.
    """
    x, n = _check_mosaic(mosaic, cfa)
    if statistic not in ("directional", "median", "mean"):
        raise InvalidParameter(f"statistic must be 'directional', 'median' or 'mean'; got {statistic!r}")
    if not isinstance(mask, torch.Tensor) or mask.shape != x.shape:
        raise ShapeError(f"mask must be a tensor of the mosaic's shape {tuple(x.shape)}; got {_shape(mask)}")
    bad = mask.to(device=x.device, dtype=torch.bool).clone()
    out = x.clone()
    idx = bad.nonzero()
    if idx.shape[0] == 0:
        return out
    if idx.shape[0] == bad.numel():
        raise InvalidParameter("every pixel of the mosaic is marked bad; nothing to interpolate from")
    _fill_at(out, bad, idx[:, 0], idx[:, 1], n, statistic)
    return out


# ---------------------------------------------------------------------------------------------- noise


def _noise_model(
    x: torch.Tensor,
    cfa: str,
    n: int,
    sigma: float | Sequence[float] | None,
    noise_profile: Sequence[float] | Sequence[Sequence[float]] | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per CFA site (a, b) of the pixel noise variance ``a·x + b``: given, or b estimated (a = 0)."""
    sites = n * n
    if sigma is not None and noise_profile is not None:
        raise InvalidParameter("give either sigma or noise_profile, not both")
    if noise_profile is not None:
        try:
            prof = [float(v) for v in noise_profile]  # one (a, b) pair
            pairs = [prof] if len(prof) == 2 else []
        except (TypeError, ValueError):
            try:
                pairs = [[float(v) for v in p] for p in noise_profile]
            except (TypeError, ValueError):
                pairs = []
        ok = pairs and all(len(p) == 2 and all(math.isfinite(v) and v >= 0 for v in p) for p in pairs)
        if not ok or len(pairs) not in (1, 3, sites):
            raise InvalidParameter(
                "noise_profile must be (a, b) ≥ 0, or one (a, b) per colour (R, G, B) or per CFA site "
                f"({sites}); got {noise_profile!r}"
            )
        if len(pairs) == 1:
            per_site = pairs * sites
        elif len(pairs) == sites:
            per_site = pairs
        else:
            per_site = [pairs[ch] for ch in channel_of_sites(cfa)]
        t = torch.tensor(per_site, dtype=x.dtype, device=x.device)
        return t[:, 0].contiguous(), t[:, 1].contiguous()
    if sigma is not None:
        sv = [float(sigma)] if isinstance(sigma, int | float) else [float(v) for v in sigma]
        if len(sv) not in (1, sites) or not all(math.isfinite(v) and v >= 0 for v in sv):
            raise InvalidParameter(f"sigma must be ≥ 0, one value or one per CFA site ({sites}); got {sigma!r}")
        b = torch.tensor(sv * (sites if len(sv) == 1 else 1), dtype=x.dtype, device=x.device).square()
        return torch.zeros_like(b), b
    # estimate: MAD of the horizontal residual on about 64 tile rows (cheap; robust to the few defects)
    h, w = x.shape
    s = n // 2
    rows = x.reshape(h // n, n, w)[:: max(1, h // n // 64)]  # (R, n, W)
    core = slice(3 * s, w - 3 * s)

    def at(j: int) -> torch.Tensor:
        return rows[..., 3 * s + j * s : w - 3 * s + j * s]

    e = rows[..., core] - 0.5 * (at(-2) + at(2)) - 0.25 * (at(-1) + at(1) - at(-3) - at(3))
    cols = e.shape[-1] - e.shape[-1] % n
    e = e[..., :cols].reshape(e.shape[0], n, cols // n, n).permute(1, 3, 0, 2).reshape(sites, -1)
    # e's columns start at mosaic column 3s, a multiple of n only when s is even: shift the site back
    shift = (3 * s) % n
    order = [i * n + (j - shift) % n for i in range(n) for j in range(n)]
    e = e[torch.tensor(order, device=x.device)]
    sig_e = e.abs().median(dim=1).values * _GAUSS
    b = sig_e.square() / _RESIDUAL_VAR
    return torch.zeros_like(b), b


# ---------------------------------------------------------------------------------------------- detection


def _prefilter(x: torch.Tensor, n: int, t: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Candidates for the exact test: pixels beyond the horizontal and vertical predictions by ``t``, same sign.

    A necessary condition of the exact test (which needs all 4 directions), on interior pixels in bands of
    rows with reused buffers; the border band of width 3n/2 is all candidates (mirrored in the exact test).
    """
    h, w = x.shape
    s = n // 2
    m = 3 * s
    r0, r1, c0, c1 = m, h - m, m, w - m
    rows_out: list[torch.Tensor] = []
    cols_out: list[torch.Tensor] = []
    if r1 > r0 and c1 > c0:
        band = min(_BAND_ROWS, r1 - r0)
        bh = torch.empty(band, c1 - c0, dtype=x.dtype, device=x.device)
        bv = torch.empty_like(bh)
        for a in range(r0, r1, band):
            b = min(a + band, r1)
            eh, ev = bh[: b - a], bv[: b - a]
            # eh = 2·P_h − 2·x = −2·(x − P_h)
            torch.add(x[a:b, c0 - 2 * s : c1 - 2 * s], x[a:b, c0 + 2 * s : c1 + 2 * s], out=eh)
            eh.add_(x[a:b, c0 - s : c1 - s], alpha=0.5).add_(x[a:b, c0 + s : c1 + s], alpha=0.5)
            eh.sub_(x[a:b, c0 - 3 * s : c1 - 3 * s], alpha=0.5).sub_(x[a:b, c0 + 3 * s : c1 + 3 * s], alpha=0.5)
            eh.sub_(x[a:b, c0:c1], alpha=2.0)
            torch.add(x[a - 2 * s : b - 2 * s, c0:c1], x[a + 2 * s : b + 2 * s, c0:c1], out=ev)
            ev.add_(x[a - s : b - s, c0:c1], alpha=0.5).add_(x[a + s : b + s, c0:c1], alpha=0.5)
            ev.sub_(x[a - 3 * s : b - 3 * s, c0:c1], alpha=0.5).sub_(x[a + 3 * s : b + 3 * s, c0:c1], alpha=0.5)
            ev.sub_(x[a:b, c0:c1], alpha=2.0)
            cand = (torch.maximum(eh, ev) < -2 * t) | (torch.minimum(eh, ev) > 2 * t)
            rc = cand.nonzero()
            rows_out.append(rc[:, 0] + a)
            cols_out.append(rc[:, 1] + c0)
    # the border band
    edge = torch.ones(h, w, dtype=torch.bool, device=x.device)
    edge[r0:r1, c0:c1] = False
    rc = edge.nonzero()
    rows_out.append(rc[:, 0])
    cols_out.append(rc[:, 1])
    return torch.cat(rows_out), torch.cat(cols_out)


def _detect(
    x: torch.Tensor,
    cfa: str,
    n: int,
    *,
    k: float,
    min_deviation: float,
    sigma: float | Sequence[float] | None,
    noise_profile: Sequence[float] | Sequence[Sequence[float]] | None,
    neighbour_ratio: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows and columns of the detected hot and dead pixels."""
    for name, v in (("k", k), ("min_deviation", min_deviation), ("neighbour_ratio", neighbour_ratio)):
        if not isinstance(v, int | float) or not math.isfinite(v) or v <= 0:
            raise InvalidParameter(f"{name} must be a positive finite number; got {v!r}")
    if k < 3.0:
        raise InvalidParameter(f"k must be ≥ 3 (noise sigmas; lower values flag plain noise); got {k}")
    a_site, b_site = _noise_model(x, cfa, n, sigma, noise_profile)
    w = x.shape[1]
    t = max(min(float(v) for v in (k * (b_site * _RESIDUAL_VAR).sqrt()).clamp(min=min_deviation)), 1e-12)
    r, c = _prefilter(x, n, t)
    if r.numel() == 0:
        return r, c
    # exact test: beyond every directional prediction
    p, _, _ = _directional(x, r, c, n)
    v = x.view(-1)[r * w + c]
    site = (r % n) * n + c % n
    level = p.mean(1).clamp(min=0)
    sig = (a_site[site] * level + b_site[site]).sqrt()  # pixel noise sigma at the candidates
    thr = (k * math.sqrt(_RESIDUAL_VAR) * sig).clamp(min=min_deviation)
    e_hot = v - p.amax(1)
    e_dead = p.amin(1) - v
    keep = (e_hot > thr) | (e_dead > thr)
    r, c, sig, thr = r[keep], c[keep], sig[keep], thr[keep]
    e = torch.where(e_hot[keep] > thr, e_hot[keep], -e_dead[keep])  # signed deviation
    if r.numel() == 0:
        return r, c
    # cross-channel evidence: a point light seen through the lens lifts the 4 adjacent photosites (other colours
    # on Bayer) above their own neighbours across, along both axes; a defective photosite leaves them alone.
    # lift of the neighbour at offset o: x(o) − mean of x(o ± n·o⊥), o⊥ ⟂ o
    lifts = []
    for ai, aj in ((0, 1), (1, 0)):
        pi, pj = n * aj, n * ai  # across the axis
        offs = []
        for sgn in (-1, 1):
            oi, oj = sgn * ai, sgn * aj
            offs += [(oi, oj), (oi - pi, oj - pj), (oi + pi, oj + pj)]
        v = _gather(x, r, c, offs).reshape(-1, 2, 3)
        lifts.append((v[:, :, 0] - 0.5 * (v[:, :, 1] + v[:, :, 2])).mean(1) * e.sign())
    lift = torch.minimum(lifts[0], lifts[1])
    # noise of a lift: sigma·sqrt((1 + 1/2)/2)
    point_light = (lift > neighbour_ratio * e.abs()) & (lift > 3.0 * math.sqrt(0.75) * sig)
    keep = ~point_light
    r, c, sig, score = r[keep], c[keep], sig[keep], (e.abs() / thr)[keep]
    if r.numel() < 2:
        return r, c
    # second pass: a defect spoils the predictions of the pixels around it, which may then pass for outliers
    # too. Keep the strongest detection of each 3×3 neighbourhood, replace those by their fill (a sparse edit,
    # no full-size copy) and test all the detections again.
    flat = r * w + c
    order = flat.argsort()
    sorted_flat, sorted_score = flat[order], score[order]
    nb = _sparse_lookup(sorted_flat, sorted_score, _index(x.shape, r, c, _OFFSETS))
    strongest = (score[:, None] >= nb).all(1)
    rk, ck = r[strongest], c[strongest]
    bad = torch.zeros(x.shape, dtype=torch.bool, device=x.device)
    bad[rk, ck] = True
    fill, ok = _fill_values(x, bad, rk, ck, n)
    fk = rk * w + ck
    ok_order = fk[ok].argsort()
    over = (fk[ok][ok_order], fill[ok][ok_order])
    p, _, _ = _directional(x, r, c, n, over=over)
    v = x.view(-1)[flat]
    thr = thr[keep]
    keep = (v - p.amax(1) > thr) | (p.amin(1) - v > thr)
    return r[keep], c[keep]


def _sparse_lookup(keys: torch.Tensor, vals: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
    """``vals`` at ``query`` for sorted ``keys``; 0 where a query is not a key."""
    pos = torch.searchsorted(keys, query).clamp(max=keys.numel() - 1)
    return torch.where(keys[pos] == query, vals[pos], torch.zeros_like(vals[pos]))


def detect_bad_pixels(
    mosaic: torch.Tensor,
    *,
    cfa: str,
    k: float = 4.5,
    min_deviation: float = 0.02,
    sigma: float | Sequence[float] | None = None,
    noise_profile: Sequence[float] | Sequence[Sequence[float]] | None = None,
    neighbour_ratio: float = 0.15,
) -> torch.Tensor:
    """(H, W) bool mask of hot and dead pixels in a normalized mosaic (black 0, white 1).

    A pixel is flagged when it lies above all 4 directional colour-difference predictions (hot), or below
    all of them (dead), by more than ``max(k · sqrt(1.75) · sigma, min_deviation)``, with ``sigma`` the
    pixel noise: ``sigma`` (one value or one per CFA site), ``noise_profile`` (DNG NoiseProfile: ``(a, b)``,
    one per colour R, G, B or one per CFA site, variance ``a·x + b`` at signal ``x``) or, when neither is
    given, estimated per CFA site by the MAD of the prediction residual. A pixel whose 4 adjacent
    photosites are lifted (same sign) by more than ``neighbour_ratio`` of its deviation along both axes is
    a point light (star, glint), not a defect.
    """
    x, n = _check_mosaic(mosaic, cfa)
    r, c = _detect(
        x, cfa, n, k=k, min_deviation=min_deviation, sigma=sigma, noise_profile=noise_profile,
        neighbour_ratio=neighbour_ratio,
    )  # fmt: skip
    mask = torch.zeros(x.shape, dtype=torch.bool, device=x.device)
    mask[r, c] = True
    return mask


@BAD_PIXELS.register("list")
def fix_bad_pixels_list(
    mosaic: torch.Tensor,
    *,
    cfa: str,
    points: Sequence[Sequence[int]] = (),
    rects: Sequence[Sequence[int]] = (),
    statistic: str = "directional",
) -> torch.Tensor:
    """Interpolate the listed pixels and rectangles from their valid neighbours (:func:`fill_bad_pixels`)."""
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
    statistic: str = "directional",
    k: float = 4.5,
    min_deviation: float = 0.02,
    sigma: float | Sequence[float] | None = None,
    noise_profile: Sequence[float] | Sequence[Sequence[float]] | None = None,
    neighbour_ratio: float = 0.15,
) -> torch.Tensor:
    """Detect hot/dead pixels (:func:`detect_bad_pixels`) and fill them together with any listed ones."""
    x, n = _check_mosaic(mosaic, cfa)
    if statistic not in ("directional", "median", "mean"):
        raise InvalidParameter(f"statistic must be 'directional', 'median' or 'mean'; got {statistic!r}")
    r, c = _detect(
        x, cfa, n, k=k, min_deviation=min_deviation, sigma=sigma, noise_profile=noise_profile,
        neighbour_ratio=neighbour_ratio,
    )  # fmt: skip
    out = x.clone()
    if points or rects:
        bad = bad_pixel_mask(x.shape[0], x.shape[1], points=points, rects=rects, device=x.device)
        bad[r, c] = True
        idx = bad.nonzero()
        r, c = idx[:, 0], idx[:, 1]
    else:
        bad = torch.zeros(x.shape, dtype=torch.bool, device=x.device)
        bad[r, c] = True
    if r.numel() == bad.numel():
        raise InvalidParameter("every pixel of the mosaic is marked bad; nothing to interpolate from")
    _fill_at(out, bad, r, c, n, statistic)
    return out


def fix_bad_pixels(mosaic: torch.Tensor, *, cfa: str, method: str = "auto", **options: object) -> torch.Tensor:
    """Bad-pixel correction dispatcher: ``method`` is one of :data:`BAD_PIXELS` (``"auto"``, ``"list"``)."""
    return BAD_PIXELS.get(method)(mosaic, cfa=cfa, **options)


def _shape(x: object) -> object:
    return tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
