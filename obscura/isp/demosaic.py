"""Demosaicing: a (H, W) Bayer or Quad Bayer mosaic → a (3, H, W) linear RGB image.

Methods (``demosaic(mosaic, cfa=..., method=...)``):

- ``"bilinear"``: bilinear interpolation of each colour plane;
- ``"malvar2004"``: gradient-corrected linear interpolation, Malvar, He & Cutler (2004), the 5×5 filters;
- ``"menon2007"``: directional filtering with a posteriori decision and its refining step,
  Menon, Andriani & Calvagno (2007) "Demosaicing with directional filtering and a posteriori decision";
- ``"rcd"`` (default): Ratio Corrected Demosaicing, Luis Sanz Rodríguez (2017), as used by RawTherapee
  and darktable: green from ratio-corrected directional estimates weighted by a high-order
  vertical/horizontal discrimination, then red/blue from colour differences along the diagonals
  and the cardinal directions.

Input: white-balanced, normalised linear values (~[0, 1]), any float dtype; output float32 on the
input's device. All four Bayer patterns are handled natively: the mosaic is reflect-padded by one
extra row/column where needed so that the padded mosaic starts with red (RGGB), the RGGB kernel runs,
and the result is cropped back; reflect padding keeps the CFA phase, so borders have no fringes.

Implementation: written on torch tensors (not colour-demosaicing, which is numpy-only and slow) so it
runs on CPU and CUDA inside the pipeline. Each kernel works on the four polyphase planes (R, Gr, Gb, B)
of a padded tile and computes each missing value only at the sites where it is missing. On the CPU
the image is processed in overlapping 512×512 tiles (an internal detail: results are identical to a
single tile) because small temporaries stay in cache; the tiles are spread over ``torch.get_num_threads()``
worker threads while torch's intra-op threading is set to 1 for the duration of the call (restored after).
On CUDA the whole image is one tile.

Quad Bayer (4×4 tiles of 2×2 same-colour blocks, see :data:`obscura.core.types.QUAD_BAYER_PATTERNS`):

- ``quad="remosaic"`` (default): within every 4×4 tile swap columns 1↔2, then rows 1↔2. This turns
  ``RRGG/RRGG/GGBB/GGBB`` into ``RGRG/GBGB/RGRG/GBGB`` (the parent Bayer pattern); every pixel moves by at
  most one row and one column. The Bayer mosaic is demosaiced with ``method`` and the same (self-inverse)
  swap is applied to the result, so each output pixel is back at its sensor site. Full resolution.
- ``quad="bin"``: each 2×2 same-colour block is averaged (2×2 binning, as Quad Bayer sensors do in low
  light) into a half-resolution Bayer mosaic of the parent pattern, which is demosaiced. The output is
  at **half resolution**, (3, H/2, W/2), with less noise.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.nn import functional as F  # noqa: N812

from obscura.core.errors import InvalidParameter, ShapeError
from obscura.core.registry import Registry
from obscura.core.types import BAYER_PATTERNS, QUAD_BAYER_PATTERNS, validate_cfa
from obscura.isp._filters import parallel_map, parallel_threads

__all__ = [
    "DEMOSAIC",
    "demosaic",
    "demosaic_bilinear",
    "demosaic_malvar2004",
    "demosaic_menon2007",
    "demosaic_rcd",
    "remosaic_quad_bayer",
    "bin_quad_bayer",
]

DEMOSAIC = Registry("demosaic")

QUAD_MODES = ("remosaic", "bin")

# polyphase sites of an RGGB mosaic: (row parity, column parity)
_R, _GR, _GB, _B = (0, 0), (0, 1), (1, 0), (1, 1)
_SITES = (_R, _GR, _GB, _B)
_RB_SITES = (_R, _B)
_G_SITES = (_GR, _GB)

_EPS = 1e-5  # RCD's epsilon for data in [0, 1] (Sanz Rodríguez 2017)
_EPS_SQ = 1e-10

_DEFAULT_TILE_CPU = 512


# --------------------------------------------------------------------------- polyphase tile helpers
Field = dict[tuple[int, int], tuple[torch.Tensor, int]]


class _Tile:
    """The four polyphase planes of a padded RGGB mosaic tile and shifted access to per-site fields.

    A field maps a site (py, px) to ``(plane, margin)``: the plane holds the value at the sites of
    that phase, computed on the region that leaves ``margin`` plane rows/columns out on each side.
    ``at(field, site, dy, dx, m)`` is the view of the field at the full-resolution offset (dy, dx)
    from the sites ``site``, over the region of margin ``m``.
    """

    def __init__(self, x: torch.Tensor) -> None:
        h2, w2 = x.shape[0] // 2, x.shape[1] // 2
        # (4, h, w) in order R, Gr, Gb, B; a reshape/permute copy is ~3× faster than pixel_unshuffle on CPU
        planes = x.reshape(h2, 2, w2, 2).permute(1, 3, 0, 2).reshape(4, h2, w2)
        self.h, self.w = h2, w2
        self.x: Field = {s: (planes[i], 0) for i, s in enumerate(_SITES)}

    def at(self, field: Field, site: tuple[int, int], dy: int, dx: int, m: int) -> torch.Tensor:
        ty, tx = site[0] + dy, site[1] + dx
        t, mf = field[(ty & 1, tx & 1)]
        r0 = m - mf + (ty >> 1)
        c0 = m - mf + (tx >> 1)
        return t[r0 : r0 + self.h - 2 * m, c0 : c0 + self.w - 2 * m]

    def stencil(self, field: Field, site: tuple[int, int], taps: list[tuple[int, int, float]], m: int) -> torch.Tensor:
        """Σ weight · field(site + (dy, dx)) over ``taps`` = [(dy, dx, weight), ...]."""
        dy, dx, w = taps[0]
        acc = self.at(field, site, dy, dx, m) * w
        for dy, dx, w in taps[1:]:
            acc.add_(self.at(field, site, dy, dx, m), alpha=w)
        return acc

    def assemble(self, channels: list[Field], m: int, out: torch.Tensor | None = None) -> torch.Tensor:
        """Interleave three full fields (all four sites each) into ``out`` (3, 2(h-2m), 2(w-2m))."""
        if out is None:
            t0 = channels[0][_R][0]
            out = torch.empty((3, 2 * (self.h - 2 * m), 2 * (self.w - 2 * m)), dtype=t0.dtype, device=t0.device)
        for c, field in enumerate(channels):
            for s in _SITES:
                out[c, s[0] :: 2, s[1] :: 2] = self.at(field, s, 0, 0, m)
        return out


def _reflect_pad(x: torch.Tensor, top: int, bottom: int, left: int, right: int) -> torch.Tensor:
    """Reflect padding of a (H, W) tensor, repeated when a pad exceeds the size (tiny mosaics)."""
    y = x[None]
    while top or bottom or left or right:
        h, w = y.shape[-2:]
        t, b, lf, rt = (min(v, n - 1) for v, n in ((top, h), (bottom, h), (left, w), (right, w)))
        y = F.pad(y, (lf, rt, t, b), mode="reflect")
        top, bottom, left, right = top - t, bottom - b, left - lf, right - rt
    return y[0]


Kernel = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _reflect_index(i: int, n: int) -> int:
    """Index ``i`` (possibly outside [0, n)) mirrored into range like reflect padding (edge not repeated)."""
    i = abs(i)
    return 2 * (n - 1) - i if i >= n else i


def _padded_region(mosaic: torch.Tensor, pad_y: int, pad_x: int, y0: int, y1: int, x0: int, x1: int) -> torch.Tensor:
    """Rows [y0, y1) and columns [x0, x1) of ``mosaic`` reflect-padded by (pad_y, pad_x), without padding it all.

    A view for regions inside the mosaic; border regions reflect-pad their part of the mosaic
    (valid while the pads are smaller than the sides, which the caller checks).
    """
    h, w = mosaic.shape
    r0, r1, c0, c1 = y0 - pad_y, y1 - pad_y, x0 - pad_x, x1 - pad_x
    x = mosaic[max(0, r0) : min(h, r1), max(0, c0) : min(w, c1)]
    pads = (max(0, -c0), max(0, c1 - w), max(0, -r0), max(0, r1 - h))
    if not any(pads):
        return x
    if max(pads[:2]) < x.shape[1] and max(pads[2:]) < x.shape[0]:
        return F.pad(x[None], pads, mode="reflect")[0]
    ri = torch.tensor([_reflect_index(i, h) for i in range(r0, r1)], device=x.device)
    ci = torch.tensor([_reflect_index(i, w) for i in range(c0, c1)], device=x.device)
    return mosaic[ri[:, None], ci[None, :]]


def _run_bayer(mosaic: torch.Tensor, cfa: str, kernel: Kernel, halo: int, tile_size: int | None) -> torch.Tensor:
    """Run an RGGB ``kernel`` on any Bayer mosaic, tile by tile.

    ``kernel(padded_tile, out)`` writes the (3, th, tw) result of a tile padded by ``halo`` pixels
    on each side into ``out``. Tiles read their padded region straight from the mosaic (the frame is
    not padded as a whole) and write into the output (through a small buffer only at the borders of a
    non-RGGB pattern, whose aligned grid is offset by one pixel).
    """
    h, w = mosaic.shape
    ry, rx = divmod(cfa.index("R"), 2)  # red site; pad so that the padded mosaic is RGGB
    py, px = halo + ry, halo + rx
    ha, wa = h + 2 * ry, w + 2 * rx  # size of the aligned output region
    if tile_size is None:
        tile_size = _DEFAULT_TILE_CPU if mosaic.device.type == "cpu" else max(ha, wa)
    # balanced tiles near tile_size (no thin remainder: a 544-row strip is one row of tiles, not 512 + 32)
    th, tw = (-(-n // max(1, round(n / tile_size))) for n in (ha, wa))
    th, tw = th + th % 2, tw + tw % 2
    out = torch.empty((3, h, w), dtype=torch.float32, device=mosaic.device)
    if py >= h or px >= w:  # tiny mosaic: pad it whole (repeated reflection)
        src = _reflect_pad(mosaic, py, py, px, px)
        py = px = 0
    else:
        src = mosaic
    jobs = [(i0, min(i0 + th, ha), j0, min(j0 + tw, wa)) for i0 in range(0, ha, th) for j0 in range(0, wa, tw)]

    def work(job: tuple[int, int, int, int]) -> None:
        i0, i1, j0, j1 = job
        tile = _padded_region(src, py, px, i0, i1 + 2 * halo, j0, j1 + 2 * halo)
        # aligned (i, j) is output (i - ry, j - rx)
        a0, a1, b0, b1 = max(i0, ry), min(i1, ry + h), max(j0, rx), min(j1, rx + w)
        if (a0, a1, b0, b1) == (i0, i1, j0, j1):
            kernel(tile, out[:, i0 - ry : i1 - ry, j0 - rx : j1 - rx])
        else:
            buf = torch.empty((3, i1 - i0, j1 - j0), dtype=out.dtype, device=out.device)
            kernel(tile, buf)
            out[:, a0 - ry : a1 - ry, b0 - rx : b1 - rx] = buf[:, a0 - i0 : a1 - i0, b0 - j0 : b1 - j0]

    # Tiles are spread over threads and each op runs single-threaded: the kernels run hundreds of small ops
    # per tile, and an intra-op parallel region per op stalls badly whenever the cores are shared
    # (measured 10-100x slower on a loaded 2-core machine). Torch releases the GIL in ops.
    parallel_map(work, jobs, threads=parallel_threads(mosaic.device))
    return out


def _check_bayer(mosaic: torch.Tensor, cfa: str, tile_size: int | None) -> tuple[torch.Tensor, str]:
    if not isinstance(mosaic, torch.Tensor):
        raise ShapeError(f"mosaic must be a torch.Tensor; got {type(mosaic).__name__}")
    if mosaic.ndim != 2 or mosaic.shape[0] % 2 or mosaic.shape[1] % 2 or min(mosaic.shape) < 2:
        raise ShapeError(f"mosaic must be (H, W) with even sides; got {tuple(mosaic.shape)}")
    if not mosaic.dtype.is_floating_point:
        raise ShapeError(f"mosaic must be a float tensor (normalised linear values); got {mosaic.dtype}")
    cfa = validate_cfa(cfa)
    if cfa not in BAYER_PATTERNS:
        raise ShapeError(
            f"this function takes a 2x2 Bayer CFA ({', '.join(BAYER_PATTERNS)}); got {cfa!r} "
            "(use demosaic(..., quad=...) for Quad Bayer)"
        )
    if tile_size is not None and (not isinstance(tile_size, int) or tile_size < 16):
        raise InvalidParameter(f"tile_size must be an int >= 16 or None; got {tile_size!r}")
    return mosaic.to(torch.float32), cfa


# --------------------------------------------------------------------------- bilinear
_CROSS = [(-1, 0, 0.25), (1, 0, 0.25), (0, -1, 0.25), (0, 1, 0.25)]
_DIAG = [(-1, -1, 0.25), (-1, 1, 0.25), (1, -1, 0.25), (1, 1, 0.25)]
_HPAIR = [(0, -1, 0.5), (0, 1, 0.5)]
_VPAIR = [(-1, 0, 0.5), (1, 0, 0.5)]


def _bilinear_rggb(x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    t = _Tile(x)
    X, m = t.x, 1
    R: Field = {_R: X[_R], _GR: (t.stencil(X, _GR, _HPAIR, m), m), _GB: (t.stencil(X, _GB, _VPAIR, m), m)}
    R[_B] = (t.stencil(X, _B, _DIAG, m), m)
    G: Field = {_GR: X[_GR], _GB: X[_GB], _R: (t.stencil(X, _R, _CROSS, m), m), _B: (t.stencil(X, _B, _CROSS, m), m)}
    B: Field = {_B: X[_B], _GR: (t.stencil(X, _GR, _VPAIR, m), m), _GB: (t.stencil(X, _GB, _HPAIR, m), m)}
    B[_R] = (t.stencil(X, _R, _DIAG, m), m)
    return t.assemble([R, G, B], m, out)


@DEMOSAIC.register("bilinear")
def demosaic_bilinear(mosaic: torch.Tensor, *, cfa: str, tile_size: int | None = None) -> torch.Tensor:
    """Bilinear demosaicing: each missing sample is the mean of its nearest same-colour neighbours.

    The classic baseline (e.g. Losson, Macaire & Yang 2010, "Comparison of colour demosaicing methods").
    """
    x, cfa = _check_bayer(mosaic, cfa, tile_size)
    return _run_bayer(x, cfa, _bilinear_rggb, 2, tile_size)


# --------------------------------------------------------------------------- Malvar, He & Cutler 2004
def _taps(entries: list[tuple[int, int, float]], scale: float) -> list[tuple[int, int, float]]:
    return [(dy, dx, w * scale) for dy, dx, w in entries]


# G at R/B sites; R (B) at a green site whose row holds R (B); the same for columns; R at B / B at R.
_M_G = _taps(
    [(0, 0, 4), (-1, 0, 2), (1, 0, 2), (0, -1, 2), (0, 1, 2), (-2, 0, -1), (2, 0, -1), (0, -2, -1), (0, 2, -1)], 1 / 8
)
_M_ROW = _taps(
    [
        *[(0, 0, 5), (0, -1, 4), (0, 1, 4), (0, -2, -1), (0, 2, -1), (-2, 0, 0.5), (2, 0, 0.5)],
        *[(dy, dx, -1) for dy in (-1, 1) for dx in (-1, 1)],
    ],
    1 / 8,
)
_M_COL = [(dx, dy, w) for dy, dx, w in _M_ROW]
_M_DIAG = _taps(
    [
        (0, 0, 6),
        (-1, -1, 2),
        (-1, 1, 2),
        (1, -1, 2),
        (1, 1, 2),
        (-2, 0, -1.5),
        (2, 0, -1.5),
        (0, -2, -1.5),
        (0, 2, -1.5),
    ],
    1 / 8,
)


def _malvar_rggb(x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    t = _Tile(x)
    X, m = t.x, 1
    R: Field = {_R: X[_R], _GR: (t.stencil(X, _GR, _M_ROW, m), m), _GB: (t.stencil(X, _GB, _M_COL, m), m)}
    R[_B] = (t.stencil(X, _B, _M_DIAG, m), m)
    G: Field = {_GR: X[_GR], _GB: X[_GB], _R: (t.stencil(X, _R, _M_G, m), m), _B: (t.stencil(X, _B, _M_G, m), m)}
    B: Field = {_B: X[_B], _GR: (t.stencil(X, _GR, _M_COL, m), m), _GB: (t.stencil(X, _GB, _M_ROW, m), m)}
    B[_R] = (t.stencil(X, _R, _M_DIAG, m), m)
    return t.assemble([R, G, B], m, out)


@DEMOSAIC.register("malvar2004")
def demosaic_malvar2004(mosaic: torch.Tensor, *, cfa: str, tile_size: int | None = None) -> torch.Tensor:
    """Gradient-corrected bilinear interpolation with the 5×5 filters of Malvar, He & Cutler (2004),
    "High-quality linear interpolation for demosaicing of Bayer-patterned color images", ICASSP."""
    x, cfa = _check_bayer(mosaic, cfa, tile_size)
    return _run_bayer(x, cfa, _malvar_rggb, 2, tile_size)


# --------------------------------------------------------------------------- Menon, Andriani & Calvagno 2007
def _menon_rggb(x: torch.Tensor, out: torch.Tensor, refine: bool) -> torch.Tensor:
    t = _Tile(x)
    X = t.x
    at = t.at
    # 1. directional green estimates at R/B sites (h0 + h1 filters) and colour differences, margin 1
    gh_taps = [(0, -1, 0.5), (0, 1, 0.5), (0, 0, 0.5), (0, -2, -0.25), (0, 2, -0.25)]
    gv_taps = [(dx, dy, w) for dy, dx, w in gh_taps]
    GH: Field = {s: (t.stencil(X, s, gh_taps, 1), 1) for s in _RB_SITES}
    GV: Field = {s: (t.stencil(X, s, gv_taps, 1), 1) for s in _RB_SITES}
    CH: Field = {s: (at(X, s, 0, 0, 1) - GH[s][0], 1) for s in _RB_SITES}
    CV: Field = {s: (at(X, s, 0, 0, 1) - GV[s][0], 1) for s in _RB_SITES}
    # 2. gradients of the colour differences, summed over the classifier window; decision M (True: horizontal)
    DH: Field = {s: ((at(CH, s, 0, 0, 2) - at(CH, s, 0, 2, 2)).abs_(), 2) for s in _RB_SITES}
    DV: Field = {s: ((at(CV, s, 0, 0, 2) - at(CV, s, 2, 0, 2)).abs_(), 2) for s in _RB_SITES}
    dh_taps = [(dy, dx, 3.0 if dy == 0 else 1.0) for dy in (-2, 0, 2) for dx in (0, -2)] + [(-1, -1, 1.0), (1, -1, 1.0)]
    dv_taps = [(dx, dy, w) for dy, dx, w in dh_taps]
    m = 3
    M = {s: t.stencil(DV, s, dv_taps, m) >= t.stencil(DH, s, dh_taps, m) for s in _RB_SITES}
    G: Field = {_GR: X[_GR], _GB: X[_GB]}
    for s in _RB_SITES:
        G[s] = (torch.where(M[s], at(GH, s, 0, 0, m), at(GV, s, 0, 0, m)), m)

    def mean2(f: Field, s: tuple[int, int], horizontal: bool, m: int) -> torch.Tensor:
        a, b = ((0, -1), (0, 1)) if horizontal else ((-1, 0), (1, 0))
        return (at(f, s, *a, m) + at(f, s, *b, m)) * 0.5

    def mean3(f: Field, s: tuple[int, int], horizontal: bool, m: int) -> torch.Tensor:
        return (at(f, s, 0, 0, m) + mean2(f, s, horizontal, m) * 2) * (1 / 3)

    def diff(a: Field, b: Field) -> Field:
        out: Field = {}
        for s in a:
            mm = max(a[s][1], b[s][1])
            out[s] = (at(a, s, 0, 0, mm) - at(b, s, 0, 0, mm), mm)
        return out

    # 3. red and blue at green sites (mean colour difference along the row/column holding that colour)
    m = 4
    RG = diff({_R: X[_R]}, G)
    BG = diff({_B: X[_B]}, G)
    R: Field = {_R: X[_R], _GR: (at(G, _GR, 0, 0, m) + mean2(RG, _GR, True, m), m)}
    R[_GB] = (at(G, _GB, 0, 0, m) + mean2(RG, _GB, False, m), m)
    B: Field = {_B: X[_B], _GB: (at(G, _GB, 0, 0, m) + mean2(BG, _GB, True, m), m)}
    B[_GR] = (at(G, _GR, 0, 0, m) + mean2(BG, _GR, False, m), m)
    # 4. red at blue and blue at red along the chosen direction
    m = 5
    for C, O, s in ((R, B, _B), (B, R, _R)):
        CO = diff({k: C[k] for k in _G_SITES}, {k: O[k] for k in _G_SITES})
        Ms = at({s: (M[s], 3)}, s, 0, 0, m)
        C[s] = (at(O, s, 0, 0, m) + torch.where(Ms, mean2(CO, s, True, m), mean2(CO, s, False, m)), m)
    if not refine:
        return t.assemble([R, G, B], m, out)

    # 5. refining step: green, then red/blue at green, then red/blue at blue/red
    m = 5
    RG, BG = diff(R, G), diff(B, G)
    G2: Field = {_GR: X[_GR], _GB: X[_GB]}
    for C, CG, s in ((R, RG, _R), (B, BG, _B)):
        Ms = at({s: (M[s], 3)}, s, 0, 0, m)
        G2[s] = (at(C, s, 0, 0, m) - torch.where(Ms, mean3(CG, s, True, m), mean3(CG, s, False, m)), m)
    m = 6
    RG2 = diff({_R: X[_R]}, G2)
    BG2 = diff({_B: X[_B]}, G2)
    R2: Field = {_R: X[_R], _GR: (at(G2, _GR, 0, 0, m) + mean2(RG2, _GR, True, m), m)}
    R2[_GB] = (at(G2, _GB, 0, 0, m) + mean2(RG2, _GB, False, m), m)
    B2: Field = {_B: X[_B], _GB: (at(G2, _GB, 0, 0, m) + mean2(BG2, _GB, True, m), m)}
    B2[_GR] = (at(G2, _GR, 0, 0, m) + mean2(BG2, _GR, False, m), m)
    m = 7
    RB = diff({_GR: R2[_GR], _GB: R2[_GB], _B: R[_B], _R: X[_R]}, {_GR: B2[_GR], _GB: B2[_GB], _B: X[_B], _R: B[_R]})
    MB, MR = at({_B: (M[_B], 3)}, _B, 0, 0, m), at({_R: (M[_R], 3)}, _R, 0, 0, m)
    R2[_B] = (at(X, _B, 0, 0, m) + torch.where(MB, mean3(RB, _B, True, m), mean3(RB, _B, False, m)), m)
    B2[_R] = (at(X, _R, 0, 0, m) - torch.where(MR, mean3(RB, _R, True, m), mean3(RB, _R, False, m)), m)
    return t.assemble([R2, G2, B2], m, out)


@DEMOSAIC.register("menon2007")
def demosaic_menon2007(
    mosaic: torch.Tensor, *, cfa: str, refine: bool = True, tile_size: int | None = None
) -> torch.Tensor:
    """Directional filtering with a posteriori decision (DDFAPD), Menon, Andriani & Calvagno (2007),
    IEEE Trans. Image Processing 16(1), with the paper's refining step (``refine=True``)."""
    x, cfa = _check_bayer(mosaic, cfa, tile_size)
    if not isinstance(refine, bool):
        raise InvalidParameter(f"refine must be a bool; got {refine!r}")
    return _run_bayer(x, cfa, lambda tile, out: _menon_rggb(tile, out, refine), 14 if refine else 10, tile_size)


# --------------------------------------------------------------------------- RCD, Sanz Rodríguez 2017
def _rcd_disc(t: _Tile, d: Field, site: tuple[int, int], diag: list[tuple[int, int]], m: int) -> torch.Tensor:
    """Refined discrimination: the centre value, or the mean of the neighbours where they are more decided."""
    c = t.at(d, site, 0, 0, m)
    n = t.at(d, site, *diag[0], m).clone()
    for off in diag[1:]:
        n.add_(t.at(d, site, *off, m))
    n.mul_(0.25)
    return torch.where((c - 0.5).abs() < (n - 0.5).abs(), n, c)


def _weighted(g1: torch.Tensor, e1: torch.Tensor, g2: torch.Tensor, e2: torch.Tensor) -> torch.Tensor:
    """(g2·e1 + g1·e2) / (g1 + g2): each estimate weighted by the gradient on the other side.

    Computed as lerp(e1, e2, g1 / (g1 + g2)): three ops instead of five. Overwrites ``g2``.
    """
    t = g2.add_(g1)
    return torch.lerp(e1, e2, torch.div(g1, t, out=t))


def _rcd_rggb(x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    t = _Tile(x)
    X = t.x
    at = t.at
    corners = [(-1, -1), (-1, 1), (1, -1), (1, 1)]

    def hpf(f: Field, s: tuple[int, int], uy: int, ux: int, m: int) -> torch.Tensor:
        """Squared high-order high-pass filter [1, -3, -1, 6, -1, -3, 1] along the direction (uy, ux)."""
        v = at(f, s, -3 * uy, -3 * ux, m) + at(f, s, 3 * uy, 3 * ux, m)
        v.sub_(at(f, s, -uy, -ux, m)).sub_(at(f, s, uy, ux, m))
        v.sub_(at(f, s, -2 * uy, -2 * ux, m) + at(f, s, 2 * uy, 2 * ux, m), alpha=3)
        v.add_(at(f, s, 0, 0, m), alpha=6)
        return v.square_()

    def stat3(f: Field, s: tuple[int, int], uy: int, ux: int, m: int) -> torch.Tensor:
        return (at(f, s, -uy, -ux, m) + at(f, s, 0, 0, m)).add_(at(f, s, uy, ux, m)).clamp_(min=_EPS_SQ)

    # 1. vertical / horizontal discrimination at every site (0: horizontal edge ... 1: vertical edge)
    BV: Field = {s: (hpf(X, s, 1, 0, 2), 2) for s in _SITES}
    BH: Field = {s: (hpf(X, s, 0, 1, 2), 2) for s in _SITES}
    VH: Field = {}
    for s in _SITES:
        v, h = stat3(BV, s, 1, 0, 3), stat3(BH, s, 0, 1, 3)
        VH[s] = (v / (v + h), 3)
    del BV, BH

    # 2. low-pass filter at R/B sites (the 3x3 binomial filter, ×4), kept non-negative for the ratios
    lpf_taps = [(0, 0, 1.0)] + [(dy, dx, 0.5) for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1))]
    lpf_taps += [(dy, dx, 0.25) for dy, dx in corners]
    LPF: Field = {s: (t.stencil(X, s, lpf_taps, 1).clamp_(min=0), 1) for s in _RB_SITES}

    # 3. green at R/B sites from ratio-corrected cardinal estimates
    m = 4
    G: Field = {_GR: X[_GR], _GB: X[_GB]}
    for s in _RB_SITES:
        disc = _rcd_disc(t, VH, s, corners, m)
        lpf0 = at(LPF, s, 0, 0, m)
        est = []
        for uy, ux in ((1, 0), (0, 1)):
            d11 = (at(X, s, -uy, -ux, m) - at(X, s, uy, ux, m)).abs_()
            grads, ests = [], []
            for sg in (-1, 1):
                g = d11 + (at(X, s, 0, 0, m) - at(X, s, 2 * sg * uy, 2 * sg * ux, m)).abs_()
                g.add_((at(X, s, sg * uy, sg * ux, m) - at(X, s, 3 * sg * uy, 3 * sg * ux, m)).abs_())
                g.add_((at(X, s, 2 * sg * uy, 2 * sg * ux, m) - at(X, s, 4 * sg * uy, 4 * sg * ux, m)).abs_())
                grads.append(g.add_(_EPS))
                ratio = (2 * lpf0) / (at(LPF, s, 2 * sg * uy, 2 * sg * ux, m) + lpf0 + _EPS)
                ests.append(at(X, s, sg * uy, sg * ux, m) * ratio)
            est.append(_weighted(grads[0], ests[0], grads[1], ests[1]))
        v_est, h_est = est
        G[s] = (torch.lerp(v_est, h_est, disc).clamp_(min=0), m)
    del LPF

    # 4.0-4.1 diagonal (P: NW-SE, Q: NE-SW) discrimination at R/B sites
    PQ: Field = {}
    PH: Field = {s: (hpf(X, s, 1, 1, 2), 2) for s in _RB_SITES}
    QH: Field = {s: (hpf(X, s, 1, -1, 2), 2) for s in _RB_SITES}
    for s in _RB_SITES:
        p, q = stat3(PH, s, 1, 1, 3), stat3(QH, s, 1, -1, 3)
        PQ[s] = (p / (p + q), 3)
    del PH, QH

    # 4.2 red at blue and blue at red from the diagonal colour differences
    m = 5
    R: Field = {_R: X[_R]}
    B: Field = {_B: X[_B]}
    for s, C in ((_R, B), (_B, R)):
        disc = _rcd_disc(t, PQ, s, corners, m)
        g0 = at(G, s, 0, 0, m)
        grads, ests = {}, {}
        for uy, ux in corners:  # NW, NE, SW, SE
            near, far = at(X, s, uy, ux, m), at(X, s, 3 * uy, 3 * ux, m)
            g = (near - at(X, s, -uy, -ux, m)).abs_().add_((near - far).abs_())
            g.add_((g0 - at(G, s, 2 * uy, 2 * ux, m)).abs_()).add_(_EPS)
            grads[(uy, ux)] = g
            ests[(uy, ux)] = near - at(G, s, uy, ux, m)
        p_est = _weighted(grads[(-1, -1)], ests[(-1, -1)], grads[(1, 1)], ests[(1, 1)])
        q_est = _weighted(grads[(-1, 1)], ests[(-1, 1)], grads[(1, -1)], ests[(1, -1)])
        C[s] = (torch.lerp(p_est, q_est, disc).add_(g0).clamp_(min=0), m)

    # 4.3 red and blue at green sites from the cardinal colour differences
    m = 7
    for s in _G_SITES:
        disc = _rcd_disc(t, VH, s, corners, m)
        g0 = at(G, s, 0, 0, m)
        for C in (R, B):
            est = []
            for uy, ux in ((1, 0), (0, 1)):
                c_m, c_p = at(C, s, -uy, -ux, m), at(C, s, uy, ux, m)
                d11 = (c_m - c_p).abs_().add_(_EPS)
                grads, ests = [], []
                for sg, c1 in ((-1, c_m), (1, c_p)):
                    g = (g0 - at(G, s, 2 * sg * uy, 2 * sg * ux, m)).abs_().add_(d11)
                    grads.append(g.add_((c1 - at(C, s, 3 * sg * uy, 3 * sg * ux, m)).abs_()))
                    ests.append(c1 - at(G, s, sg * uy, sg * ux, m))
                est.append(_weighted(grads[0], ests[0], grads[1], ests[1]))
            C[s] = (torch.lerp(est[0], est[1], disc).add_(g0).clamp_(min=0), m)
    return t.assemble([R, G, B], m, out)


@DEMOSAIC.register("rcd")
def demosaic_rcd(mosaic: torch.Tensor, *, cfa: str, tile_size: int | None = None) -> torch.Tensor:
    """Ratio Corrected Demosaicing, Luis Sanz Rodríguez (2017), as in RawTherapee and darktable.

    Green is interpolated from cardinal estimates corrected by the ratio of low-pass values and
    blended by a vertical/horizontal discrimination from a high-order high-pass filter; red and
    blue follow from colour differences along the diagonals (at B/R) and the cardinal directions
    (at G). Interpolated values are clamped at 0 (not at 1: highlights above 1 are kept).
    """
    x, cfa = _check_bayer(mosaic, cfa, tile_size)
    return _run_bayer(x, cfa, _rcd_rggb, 14, tile_size)


# --------------------------------------------------------------------------- Quad Bayer
_QUAD_PERM = [0, 2, 1, 3]


def _check_quad(mosaic: torch.Tensor, cfa: str) -> str:
    if not isinstance(mosaic, torch.Tensor):
        raise ShapeError(f"mosaic must be a torch.Tensor; got {type(mosaic).__name__}")
    if mosaic.ndim != 2 or mosaic.shape[0] % 4 or mosaic.shape[1] % 4 or min(mosaic.shape) < 4:
        raise ShapeError(f"a Quad Bayer mosaic must be (H, W) with sides divisible by 4; got {tuple(mosaic.shape)}")
    cfa = validate_cfa(cfa)
    if cfa not in QUAD_BAYER_PATTERNS:
        raise ShapeError(f"expected a Quad Bayer CFA ({', '.join(QUAD_BAYER_PATTERNS)}); got {cfa!r}")
    return cfa[0] + cfa[2] + cfa[8] + cfa[10]


def _swap_quad(x: torch.Tensor) -> torch.Tensor:
    """Swap columns 1↔2 and rows 1↔2 of every 4×4 tile of the last two dims (self-inverse)."""
    *lead, h, w = x.shape
    y = x.reshape(*lead, h // 4, 4, w // 4, 4)[..., _QUAD_PERM, :, :][..., _QUAD_PERM]
    return y.reshape(*lead, h, w)


def remosaic_quad_bayer(mosaic: torch.Tensor, *, cfa: str) -> tuple[torch.Tensor, str]:
    """Rearrange a Quad Bayer mosaic into a Bayer mosaic of its parent pattern by swapping, in every
    4×4 tile, columns 1↔2 and then rows 1↔2. Returns ``(bayer_mosaic, bayer_cfa)``."""
    parent = _check_quad(mosaic, cfa)
    return _swap_quad(mosaic), parent


def bin_quad_bayer(mosaic: torch.Tensor, *, cfa: str) -> tuple[torch.Tensor, str]:
    """2×2 binning (mean) of each same-colour block: a (H/2, W/2) Bayer mosaic of the parent pattern."""
    parent = _check_quad(mosaic, cfa)
    h, w = mosaic.shape
    return mosaic.reshape(h // 2, 2, w // 2, 2).mean(dim=(1, 3)), parent


# --------------------------------------------------------------------------- dispatcher
def demosaic(mosaic: torch.Tensor, *, cfa: str, method: str = "rcd", quad: str = "remosaic", **options) -> torch.Tensor:
    """Demosaic a (H, W) float mosaic with the named ``method`` (see :data:`DEMOSAIC`).

    ``cfa`` is a Bayer (``"RGGB"``, ...) or Quad Bayer pattern; for Quad Bayer, ``quad`` selects
    ``"remosaic"`` (full resolution) or ``"bin"`` (output (3, H/2, W/2)). Returns float32 (3, H, W)
    on the input's device.
    """
    fn = DEMOSAIC.get(method)
    if quad not in QUAD_MODES:
        raise InvalidParameter(f"quad must be one of {', '.join(QUAD_MODES)}; got {quad!r}")
    if isinstance(cfa, str) and len(cfa) == 16:
        if not isinstance(mosaic, torch.Tensor) or not mosaic.dtype.is_floating_point:
            raise ShapeError(f"mosaic must be a float torch.Tensor; got {getattr(mosaic, 'dtype', type(mosaic))}")
        if quad == "bin":
            bayer, parent = bin_quad_bayer(mosaic, cfa=cfa)
            return fn(bayer, cfa=parent, **options)
        bayer, parent = remosaic_quad_bayer(mosaic, cfa=cfa)
        return _swap_quad(fn(bayer, cfa=parent, **options))
    return fn(mosaic, cfa=cfa, **options)
