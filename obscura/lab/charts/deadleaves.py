"""The dead-leaves (spilled coins) texture chart (Cao, Guichard & Hornung 2010; ISO 19567-2; CPIQ).

Dead leaves (Matheron 1968; Lee, Mumford & Huang 2001): random discs fall one after another and each
hides what lies beneath it; seen from above, the first discs to fall are on top. With radii of density
∝ r⁻³ between ``rmin`` and ``rmax`` the image is scale invariant and its power spectrum falls as 1/f²
between about 1/rmax and 1/rmin (Gousseau & Roueff 2007). Grey levels are uniform in a range.

Rendering: every disc is point-sampled on a ``supersample``× finer grid into a z-buffer that keeps, per
sample, the lowest disc index (the topmost disc); discs are drawn in batches until no sample is left
uncovered, then the samples are box-averaged to pixels (a 100 % fill-factor pixel aperture).
Chart generation runs once per chart, so it is numpy (float64); the Scene holds float32 tensors.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from obscura.core.errors import InvalidParameter, ShapeError
from obscura.core.validate import check_number
from obscura.lab.charts.base import Chart
from obscura.lab.charts.geometry import INNER_FRACTION, chart_size, check_levels, inner_box, neutral_scene

__all__ = ["dead_leaves_chart", "render_dead_leaves", "radial_power_spectrum", "sample_radii"]

_CHUNK = 1 << 22  # samples per vectorized rasterization step (bounds memory to ~100 MB)


def sample_radii(rng: np.random.Generator, n: int, *, rmin: float, rmax: float) -> np.ndarray:
    """``n`` radii of density ∝ r⁻³ on [rmin, rmax] by inverting the CDF F(r) = (rmin⁻² − r⁻²)/(rmin⁻² − rmax⁻²)."""
    u = rng.random(n)
    a, b = rmin**-2, rmax**-2
    return (a - u * (a - b)) ** -0.5


def _rasterize(zbuf: np.ndarray, shape: tuple[int, int], cx, cy, r, ids, ss: int) -> None:
    """Write, per sample, min(existing index, index of a disc covering it) into ``zbuf`` (flat, int64).

    Discs are given in pixel units (centre (cx, cy), radius r); sample (i, j) of the fine grid sits at
    x = (j + 0.5)/ss − 0.5, y = (i + 0.5)/ss − 0.5. Discs are grouped by bounding-box size so each group
    is one vectorized (n, m, m) test.
    """
    hs, ws = shape
    jc, ic, rs = (cx + 0.5) * ss - 0.5, (cy + 0.5) * ss - 0.5, r * ss
    m_all = (2 * np.ceil(rs) + 2).astype(np.int64)  # samples a side of each disc's bounding box
    order = np.argsort(m_all, kind="stable")
    start = 0
    while start < order.size:
        m = int(m_all[order[start]])
        # the largest group of consecutive (sorted) discs that fits the chunk at the group's largest box
        n = max(1, _CHUNK // (m * m))
        stop = min(order.size, start + n)
        m = int(m_all[order[stop - 1]])
        while stop - start > 1 and (stop - start) * m * m > _CHUNK:
            stop = start + max(1, (stop - start) // 2)
            m = int(m_all[order[stop - 1]])
        sel = order[start:stop]
        start = stop
        off = np.arange(m)
        j = np.floor(jc[sel] - rs[sel]).astype(np.int64)[:, None] + off[None, :]  # (n, m)
        i = np.floor(ic[sel] - rs[sel]).astype(np.int64)[:, None] + off[None, :]
        dx2 = (j - jc[sel, None]) ** 2
        dy2 = (i - ic[sel, None]) ** 2
        inside = dy2[:, :, None] + dx2[:, None, :] <= (rs[sel] ** 2)[:, None, None]
        inside &= ((i >= 0) & (i < hs))[:, :, None] & ((j >= 0) & (j < ws))[:, None, :]
        k, a, b = np.nonzero(inside)
        if k.size:
            np.minimum.at(zbuf, i[k, a] * ws + j[k, b], ids[sel][k])


_BLOCK = 32  # fine samples a side of the blocks that track where samples are still bare


def _bare_blocks(bare: np.ndarray) -> np.ndarray:
    """Summed-area table (with a zero first row and column) of the blocks holding a bare sample."""
    hs, ws = bare.shape
    nb_y, nb_x = -(-hs // _BLOCK), -(-ws // _BLOCK)
    pad = np.zeros((nb_y * _BLOCK, nb_x * _BLOCK), dtype=bool)
    pad[:hs, :ws] = bare
    blocks = pad.reshape(nb_y, _BLOCK, nb_x, _BLOCK).any(axis=(1, 3))
    sat = np.zeros((nb_y + 1, nb_x + 1), dtype=np.int64)
    sat[1:, 1:] = blocks.cumsum(0).cumsum(1)
    return sat


def _meets(sat: np.ndarray, cx: np.ndarray, cy: np.ndarray, r: np.ndarray, ss: int) -> np.ndarray:
    """Which discs' bounding boxes meet a block with bare samples (``sat`` from :func:`_bare_blocks`)."""
    nb_y, nb_x = sat.shape[0] - 1, sat.shape[1] - 1

    def block_range(c: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        lo = np.floor(((c - r + 0.5) * ss - 0.5) / _BLOCK)
        hi = np.floor(((c + r + 0.5) * ss - 0.5) / _BLOCK)
        return np.clip(lo, 0, n).astype(np.int64), np.clip(hi + 1, 0, n).astype(np.int64)

    x0, x1 = block_range(cx, nb_x)
    y0, y1 = block_range(cy, nb_y)
    count = sat[y1, x1] - sat[y0, x1] - sat[y1, x0] + sat[y0, x0]
    return count > 0


def render_dead_leaves(
    size: tuple[int, int],
    *,
    rmin: float = 1.0,
    rmax: float = 100.0,
    levels: tuple[float, float] = (0.1, 0.7),
    supersample: int = 4,
    seed: int = 0,
) -> np.ndarray:
    """(H, W) float64 dead-leaves image (radii ∝ r⁻³ on [rmin, rmax] px, grey levels uniform in ``levels``).

    Disc centres are uniform over the image grown by ``rmax`` on every side (so discs centred outside
    still cover it); batches of discs are drawn until every sample of the ``supersample``× grid is
    covered. Deterministic for a given ``seed``.
    """
    h, w = size
    if rmin <= 0 or rmax < rmin:
        raise InvalidParameter(f"need 0 < rmin <= rmax; got rmin={rmin}, rmax={rmax}")
    lo, hi = levels
    ss = int(supersample)
    hs, ws = h * ss, w * ss
    rng = np.random.default_rng(seed)
    none = np.iinfo(np.int64).max
    zbuf = np.full(hs * ws, none, dtype=np.int64)
    # E[π r²] for density ∝ r⁻³: π · 2 ln(rmax/rmin) / (rmin⁻² − rmax⁻²) (π rmin² · 2 ln(rmax/rmin) for rmax ≫ rmin)
    e_area = (
        math.pi * rmin * rmin * 2.0 * math.log(rmax / rmin) / (1.0 - (rmin / rmax) ** 2)
        if rmax > rmin
        else (math.pi * rmin * rmin)
    )
    ext_area = (w + 2 * rmax) * (h + 2 * rmax)
    batch = max(1000, math.ceil(3.0 * ext_area / e_area))  # leaves ~e⁻³ of the samples bare after one batch
    if batch > 5_000_000:
        raise InvalidParameter(
            f"rmin={rmin} px over a {(h, w)} image needs about {batch} discs a pass; use a larger rmin or smaller size"
        )
    greys: list[np.ndarray] = []
    drawn = 0
    sat = _bare_blocks(np.ones((hs, ws), dtype=bool))
    for _ in range(20):
        r = sample_radii(rng, batch, rmin=rmin, rmax=rmax)
        cx = rng.uniform(-0.5 - rmax, w - 0.5 + rmax, batch)
        cy = rng.uniform(-0.5 - rmax, h - 0.5 + rmax, batch)
        greys.append(rng.uniform(lo, hi, batch))
        ids = np.arange(drawn, drawn + batch, dtype=np.int64)
        drawn += batch
        # only discs whose bounding box meets a block of the image that still has bare samples
        keep = _meets(sat, cx, cy, r, ss)
        _rasterize(zbuf, (hs, ws), cx[keep], cy[keep], r[keep], ids[keep], ss)
        bare = zbuf == none
        if not np.any(bare):
            break
        sat = _bare_blocks(bare.reshape(hs, ws))
    else:  # pragma: no cover - 20 passes leave a sample bare with probability ~e⁻⁶⁰
        raise InvalidParameter("dead leaves did not cover the image; use a larger rmin")
    fine = np.concatenate(greys)[zbuf].reshape(h, ss, w, ss)
    return fine.mean(axis=(1, 3))


def radial_power_spectrum(
    image: np.ndarray | torch.Tensor, *, bins: int = 64, window: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Radially averaged power spectrum of a grey image (H, W): ``(frequency, power)``, ``bins`` bins.

    The (window-weighted) mean is removed and, with ``window``, a separable Hann window applied (its power normalised
    away); power is |FFT|² / Σ window², averaged over annuli of equal width from 0 to 0.5 cycles/pixel
    (DC excluded); ``frequency`` is the mean radial frequency of each annulus in cycles/pixel. Empty
    bins are dropped. Used as the dead-leaves reference (the texture MTF is √(measured / ideal)).
    """
    x = image.detach().cpu().double().numpy() if isinstance(image, torch.Tensor) else np.asarray(image, np.float64)
    if x.ndim != 2 or min(x.shape) < 8:
        raise ShapeError(f"image must be (H, W) with H, W >= 8; got {x.shape}")
    if isinstance(bins, bool) or not isinstance(bins, int) or bins < 2:
        raise InvalidParameter(f"bins must be an integer >= 2; got {bins!r}")
    h, w = x.shape
    # Hann without its zero end samples
    win = np.outer(np.hanning(h + 2)[1:-1], np.hanning(w + 2)[1:-1]) if window else np.ones_like(x)
    x = x - np.sum(x * win) / np.sum(win)  # the windowed mean: the windowed signal has no DC
    p = np.abs(np.fft.fft2(x * win)) ** 2 / np.sum(win * win)
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.fftfreq(w)[None, :]
    f = np.hypot(fy, fx)
    sel = (f > 0) & (f <= 0.5)
    idx = np.minimum((f[sel] / 0.5 * bins).astype(np.int64), bins - 1)
    count = np.bincount(idx, minlength=bins)
    fsum = np.bincount(idx, weights=f[sel], minlength=bins)
    psum = np.bincount(idx, weights=p[sel], minlength=bins)
    ok = count > 0
    return fsum[ok] / count[ok], psum[ok] / count[ok]


def dead_leaves_chart(
    *,
    size: tuple[int, int] = (480, 640),
    rmin: float = 1.0,
    rmax: float | None = None,
    levels: tuple[float, float] = (0.1, 0.7),
    grey_patches: int = 8,
    supersample: int = 4,
    seed: int = 0,
    illuminant: str = "D65",
    luminance: float | None = None,
    lux: float | None = None,
    depth: float = math.inf,
    device: str | torch.device = "cpu",
) -> Chart:
    """A dead-leaves texture chart in the ISO 19567-2 layout: a dead-leaves square in the middle and
    uniform grey patches beside it (for the noise power that the texture MTF subtracts).

    The square's side is 0.8 × the height (at most 0.6 × the width); radii ∝ r⁻³ between ``rmin`` and
    ``rmax`` px (default: a quarter of the square), grey levels (flat reflectances) uniform in
    ``levels``. ``grey_patches`` patches (split into a left and a right column) step evenly across
    ``levels``; the ground is the mean of ``levels``.

    ROIs: ``deadleaves`` (the square) and ``grey_0`` … (the inner 60 % of each grey patch).
    ``reference``: ``power_spectrum`` {``frequency`` (cycles/px), ``power``} of the ideal square by
    :func:`radial_power_spectrum`, ``slope`` (−2, the theoretical log-log slope), ``mean``, ``variance``,
    ``grey_Y`` (name → Y), ``rmin``, ``rmax``, ``levels``, ``seed``.
    """
    h, w = chart_size(size, minimum=(64, 96))
    lo, hi = check_levels("levels", levels)
    side = int(min(0.8 * h, 0.6 * w))
    r0 = check_number("rmin", rmin, 0.25, side / 4)
    r1 = side / 4 if rmax is None else check_number("rmax", rmax, r0, 4.0 * side)
    ss = int(check_number("supersample", supersample, 1, 16))
    if isinstance(grey_patches, bool) or not isinstance(grey_patches, int) or not 0 <= grey_patches <= 32:
        raise InvalidParameter(f"grey_patches must be an integer in [0, 32]; got {grey_patches!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise InvalidParameter(f"seed must be an integer; got {seed!r}")
    tex = render_dead_leaves((side, side), rmin=r0, rmax=r1, levels=(lo, hi), supersample=ss, seed=seed)
    refl = np.full((h, w), (lo + hi) / 2, dtype=np.float64)
    x0, y0 = (w - side) // 2, (h - side) // 2
    refl[y0 : y0 + side, x0 : x0 + side] = tex
    rois: dict[str, tuple[int, int, int, int]] = {"deadleaves": (x0, y0, x0 + side, y0 + side)}
    grey_y: dict[str, float] = {}
    if grey_patches:
        per_col = math.ceil(grey_patches / 2)
        band = x0  # free width either side of the square
        pitch = min(side / per_col, 0.8 * band)
        ps = 0.8 * pitch
        if ps < 5:
            raise InvalidParameter(f"size {(h, w)} leaves no room for {grey_patches} grey patches beside the square")
        values = np.linspace(lo, hi, grey_patches)
        for k, v in enumerate(values):
            col, row = divmod(k, per_col)
            cxp = x0 / 2 if col == 0 else x0 + side + (w - x0 - side) / 2
            cyp = y0 + side / 2 + (row - (per_col - 1) / 2) * pitch
            bx0, by0 = round(cxp - ps / 2), round(cyp - ps / 2)
            bx1, by1 = bx0 + round(ps), by0 + round(ps)
            refl[by0:by1, bx0:bx1] = v
            rois[f"grey_{k}"] = inner_box((bx0, by0, bx1, by1), INNER_FRACTION)
            grey_y[f"grey_{k}"] = float(v)
    scene = neutral_scene(
        refl, illuminant=illuminant, luminance=luminance, lux=lux, depth=depth, device=device, name="dead_leaves"
    )
    freq, power = radial_power_spectrum(tex)
    reference = {
        "power_spectrum": {"frequency": freq, "power": power},
        "slope": -2.0,
        "mean": float(tex.mean()),
        "variance": float(tex.var()),
        "grey_Y": grey_y,
        "rmin": r0,
        "rmax": r1,
        "levels": (lo, hi),
        "seed": seed,
    }
    return Chart(name="dead_leaves", scene=scene, rois=rois, reference=reference)
