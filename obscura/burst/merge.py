"""HDR+-style merge of a raw burst into one raw frame with less noise (Hasinoff et al. 2016, "Burst
photography for high dynamic range and low-light imaging on mobile cameras", §5; Monod, Delon & Veit
2021, "An Analysis and Implementation of the HDR+ Burst Denoising Method", IPOL, §4).

Steps, all on the CFA site planes (one per site of the CFA period, so a Quad Bayer burst has 16), on
overlapping tiles (raised-cosine window, half-tile stride), a strip of tile rows at a time and frame by
frame within a strip, so that memory stays bounded (only strip-sized pieces of the frames are ever
normalized or resampled; the frames themselves are never copied whole):

1. hot pixels (stuck far above all their same-colour neighbours) are replaced in every frame;
2. each alternate tile is resampled onto the reference tile at the motion of
   :func:`obscura.burst.align.align_burst` at the tile centre (bilinear between the alignment's tile
   centres; Keys cubic resampling, a separable 4-tap filter per tile as in HDR+'s per-tile translation);
3. per-pixel robustness: where a local mean of the difference to the reference is far above what
   the noise explains (a moving object, an occlusion, an alignment failure), the alternate is
   replaced by the reference, so nothing of it can ghost;
4. temporal merge in the frequency domain: each alternate coefficient is pulled towards the reference
   by the Wiener factor A = |D|² / (|D|² + c·σ²) of its difference D (per-tile rejection), accumulated
   frame by frame;
5. spatial denoise of the merged tile: Wiener shrinkage with a noise variance growing with frequency;
6. overlap-add. The noise variance σ² comes from the NoiseProfile (or is estimated from the
   reference frame) at the mean of each reference tile.

The output is a RawFrame with the reference's CFA, size and metadata; its levels are scaled to use
16 bits (integral values, writable by :func:`obscura.io.dng.write_dng`) and its NoiseProfile is
reduced by the variance ratio the temporal merge achieved.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch.nn import functional as F  # noqa: N812

from obscura.burst.align import Alignment, align_burst, gather_tiles, shift_tiles
from obscura.burst.reference import (
    check_burst,
    from_site_planes,
    normalized_frames,
    pick_reference,
    site_planes,
)
from obscura.core.cfa import cfa_period, channel_of_sites, per_site_tensor
from obscura.core.device import resolve_device
from obscura.core.errors import InvalidParameter, ShapeError
from obscura.core.types import Burst, RawFrame
from obscura.core.validate import check_number

__all__ = [
    "noise_per_site",
    "estimate_burst_noise",
    "suppress_hot_pixels",
    "tile_flow",
    "robustness_weights_tiles",
    "raised_cosine_window",
    "wiener_merge_tiles",
    "spatial_denoise_tiles",
    "merge_strip",
    "merge_burst",
]

Progress = Callable[[str], None] | None


# ------------------------------------------------------------------------------------ noise


def noise_per_site(profile: Sequence[Sequence[float]], cfa: str) -> tuple[list[float], list[float]]:
    """Per-site (a, b) lists from a NoiseProfile given once, per colour (R, G, B) or per site."""
    prof = [tuple(float(v) for v in p) for p in profile]
    if any(len(p) != 2 or not all(math.isfinite(v) and v >= 0 for v in p) for p in prof):
        raise InvalidParameter(f"noise profile entries must be (a, b) pairs of finite numbers ≥ 0; got {profile!r}")
    sites = channel_of_sites(cfa)
    if len(prof) == 1:
        prof = prof * len(sites)
    elif len(prof) == 3:
        prof = [prof[c] for c in sites]
    elif len(prof) == 4 and len(sites) == 16:  # per site of the Bayer parent
        prof = [prof[(r // 2) * 2 + (c // 2)] for r in range(4) for c in range(4)]
    elif len(prof) != len(sites):
        raise InvalidParameter(f"noise profile needs 1, 3 or {len(sites)} (a, b) pairs for CFA {cfa}; got {len(prof)}")
    if all(a == 0 and b == 0 for a, b in prof):
        raise InvalidParameter(f"noise profile is all zero; got {profile!r}")
    return [p[0] for p in prof], [p[1] for p in prof]


def estimate_burst_noise(x: torch.Tensor, cfa: str) -> tuple[tuple[float, float], ...]:
    """Per-colour (a, b) noise profile estimated from one normalized mosaic (H, W), using
    :func:`obscura.isp.denoise.estimate_noise_profile` (Foi et al. 2008 style) on one site plane per colour."""
    from obscura.isp.denoise import estimate_noise_profile

    planes = site_planes(x, cfa)
    sites = channel_of_sites(cfa)
    rgb = torch.stack([planes[sites.index(c)] for c in range(3)])
    return estimate_noise_profile(rgb)


def _variance(mean: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return a * mean.clamp_min(0.0) + b


# ------------------------------------------------------------------------------------ pixels


def suppress_hot_pixels(
    planes: torch.Tensor, a: torch.Tensor, b: torch.Tensor, *, threshold: float = 8.0
) -> torch.Tensor:
    """Replace isolated hot pixels in site planes (..., P, h, w): a pixel more than ``threshold``
    noise deviations above the largest of its 8 same-site neighbours gets their median (as the HDR+
    pipeline does before merging, Hasinoff et al. 2016 §6). ``a``, ``b`` are per-plane (P,)."""
    shape = planes.shape
    h, w = shape[-2:]
    p = F.pad(planes.reshape(-1, 1, h, w), (1, 1, 1, 1), mode="replicate").reshape(*shape[:-2], h + 2, w + 2)
    # maximum of the 8 neighbours: rows above and below (3 wide), left and right
    hm = torch.maximum(torch.maximum(p[..., :-2], p[..., 1:-1]), p[..., 2:])  # (..., h+2, w)
    nmax = torch.maximum(
        torch.maximum(hm[..., :-2, :], hm[..., 2:, :]), torch.maximum(p[..., 1:-1, :-2], p[..., 1:-1, 2:])
    )
    # a cheap lower bound of the threshold first (hot pixels are rare), the exact test on those alone
    cand = (planes - nmax) > threshold * math.sqrt(max(float(b.min()), 0.0))
    idx = cand.nonzero(as_tuple=True)
    if idx[0].numel() == 0:
        return planes
    plane = idx[-3]
    val, m8 = planes[idx], nmax[idx]
    hot = val > m8 + threshold * _variance(m8, a[plane], b[plane]).sqrt()
    if not bool(hot.any()):
        return planes
    pos = [i[hot] for i in idx]
    offs = [(dy, dx) for dy in range(3) for dx in range(3) if (dy, dx) != (1, 1)]
    nb = torch.stack([p[(*pos[:-2], pos[-2] + dy, pos[-1] + dx)] for dy, dx in offs])  # (8, K)
    out = planes.clone()
    out[tuple(pos)] = nb.median(0).values
    return out


def tile_flow(alignment: Alignment, frame: int, cy: torch.Tensor, cx: torch.Tensor, *, scale: int) -> torch.Tensor:
    """Motion (len(cy), len(cx), 2) of ``frame`` at the site-plane points (cy, cx) (1-D, plane pixels of a
    CFA of period ``scale``), bilinear between the alignment's tile centres, in plane pixels."""
    ty, tx = alignment.flow.shape[-2:]
    ay, ax = alignment.tile_centers
    dt = alignment.flow.dtype
    uy = (((cy.to(dt) * scale + (scale - 1) / 2) - ay[0]) / alignment.tile_stride).clamp(0, ty - 1)
    ux = (((cx.to(dt) * scale + (scale - 1) / 2) - ax[0]) / alignment.tile_stride).clamp(0, tx - 1)
    gy = 2 * uy / max(ty - 1, 1) - 1
    gx = 2 * ux / max(tx - 1, 1) - 1
    grid = torch.stack(torch.meshgrid(gy, gx, indexing="ij")[::-1], -1)
    f = F.grid_sample(
        alignment.flow[frame : frame + 1], grid[None], mode="bilinear", padding_mode="border", align_corners=True
    )[0]
    return f.permute(1, 2, 0) / scale


def robustness_weights_tiles(
    ref: torch.Tensor,
    alt: torch.Tensor,
    a: torch.Tensor,
    b: torch.Tensor,
    *,
    robustness: float = 1.0,
) -> torch.Tensor:
    """Per-pixel weight in [0, 1] of aligned alternate tiles against reference tiles, both (T, P, s, s)
    with a margin of 2 pixels: the mean over planes of the squared 3×3 local mean difference in units
    of its noise variance (≈ 1 where only noise differs), mapped to 1 below 1 + 2/robustness and to 0
    at twice that, then eroded by 3×3 so that rejected regions get a margin (per-pixel rejection in the
    spirit of Wronski et al. 2019's robustness mask) → (T, s − 4, s − 4)."""
    return _robustness(alt - ref, _robust_scale(ref, a, b), robustness)


def _robust_scale(ref: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """1 / (P · variance of a 3×3 box sum of a difference of two noisy frames), per (T, P, s−2, s−2)."""
    m = _box3(ref) * (1.0 / 9.0)
    return 1.0 / (18.0 * _variance(m, a[:, None, None], b[:, None, None]) * ref.shape[1]).clamp_min(1e-12)


def _robustness(diff: torch.Tensor, scale: torch.Tensor, robustness: float) -> torch.Tensor:
    d = _box3(diff)
    chi = d.square_().mul_(scale).sum(1)  # mean over planes of (local mean difference)² / its variance
    lo = 1.0 + 2.0 / robustness
    w = ((2 * lo - chi) / lo).clamp_(0.0, 1.0)
    w = torch.minimum(torch.minimum(w[..., :-2, :], w[..., 1:-1, :]), w[..., 2:, :])
    return torch.minimum(torch.minimum(w[..., :-2], w[..., 1:-1]), w[..., 2:])


def _box3(x: torch.Tensor) -> torch.Tensor:
    """Valid 3×3 box sum over the last two dimensions."""
    y = x[..., :-2, :] + x[..., 1:-1, :]
    y += x[..., 2:, :]
    z = y[..., :-2] + y[..., 1:-1]
    z += y[..., 2:]
    return z


# ------------------------------------------------------------------------------------ tiles


def raised_cosine_window(size: int, *, dtype: torch.dtype = torch.float32, device=None) -> torch.Tensor:
    """(size, size) modified raised-cosine window ½ − ½cos(2π(k + ½)/size): copies shifted by half a
    tile sum to exactly 1 (Hasinoff et al. 2016, §5)."""
    k = torch.arange(size, dtype=torch.float64)
    w1 = 0.5 - 0.5 * torch.cos(2 * math.pi * (k + 0.5) / size)
    return (w1[:, None] * w1[None, :]).to(dtype=dtype, device=device)


def wiener_merge_tiles(
    t_ref: torch.Tensor, t_alt: torch.Tensor, noise_var: torch.Tensor, *, strength: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Temporal merge of tile spectra (Hasinoff et al. 2016, eq. 6): reference (T, P, u, v), alternates
    (T, M, P, u, v), per-coefficient noise variance (T, P, 1, 1) → merged spectrum and the ratio of its
    noise variance to the reference's (treating the shrinkage factors as constants)."""
    n = t_alt.shape[1] + 1
    d = t_ref[:, None] - t_alt
    d2 = d.real.square() + d.imag.square()
    A = d2 / (d2 + strength * noise_var[:, None])
    merged = (t_ref + (t_alt + A * d).sum(1)) / n
    ratio = ((1 + A.sum(1)).square() + (1 - A).square().sum(1)) / (n * n)
    return merged, ratio


def spatial_denoise_tiles(spec: torch.Tensor, noise_var: torch.Tensor, *, strength: float) -> torch.Tensor:
    """Wiener shrinkage of tile spectra (..., ts, ts//2+1) with a noise variance (broadcastable) that
    grows linearly with spatial frequency, so low frequencies and the mean are kept (Hasinoff et al.
    2016, §5, "spatial denoising")."""
    ts = spec.shape[-2]
    fy = torch.fft.fftfreq(ts, device=spec.device, dtype=torch.float32)[:, None]
    fx = torch.fft.rfftfreq(ts, device=spec.device, dtype=torch.float32)[None, :]
    nu = torch.sqrt(fy * fy + fx * fx) / math.sqrt(0.5)
    p = spec.real.square() + spec.imag.square()
    return spec * (p / (p + strength * nu * noise_var).clamp_min(1e-30))


def _frame_planes(b: Burst, i: int, r0: int, r1: int, n: int, dev: torch.device) -> torch.Tensor:
    """Normalized site planes (P, r1 − r0, w) of frame i, plane rows r0 … r1 − 1 (a strip)."""
    m = b.metas[i]
    raw = b.data[i, r0 * n : r1 * n].to(device=dev, dtype=torch.float32)
    planes = site_planes(raw, m.cfa)
    blk = per_site_tensor(m.black_level, m.cfa, n, n, device=dev).reshape(-1)[:, None, None]
    return (planes - blk) / (float(m.white_level) - blk)


def _strip_planes(
    b: Burst,
    i: int,
    lo: int,
    hi: int,
    n: int,
    h: int,
    cpad: int,
    dev: torch.device,
    hot: tuple[torch.Tensor, torch.Tensor] | None,
) -> torch.Tensor:
    """Frame i's planes for plane rows lo … hi − 1 and ``cpad`` extra columns each side, rows and
    columns beyond the frame mirrored (reflect padding: a replicated border row would repeat its noise,
    which the per-tile noise model does not expect), hot pixels suppressed first (with one more row each
    side so that the strip's edges see their true neighbours)."""
    a0, a1 = max(0, lo), min(h, hi)
    if a1 <= a0:  # the whole strip lies beyond the frame (a huge motion): its nearest row
        a0 = min(max(lo, 0), h - 1)
        a1 = a0 + 1
    # also the rows that the mirror images beyond the frame need
    a0, a1 = min(a0, max(0, h - 1 - (hi - h))), max(a1, min(h, 1 - lo))
    e0, e1 = max(0, a0 - 1), min(h, a1 + 1)
    x = _frame_planes(b, i, e0, e1, n, dev)
    if hot is not None:
        x = suppress_hot_pixels(x, *hot)
    x = x[:, a0 - e0 : a1 - e0]
    top, bot = max(0, a0 - lo), max(0, hi - a1)
    if any((cpad, top, bot)):
        mode = "reflect" if max(top, bot) < x.shape[1] and cpad < x.shape[2] else "replicate"
        x = F.pad(x[None], (cpad, cpad, top, bot), mode=mode)[0]
    start = min(lo, a0)
    return x[:, lo - start : hi - start]


def merge_strip(
    ref_tiles: torch.Tensor,
    alt_tiles: Sequence[torch.Tensor],
    inside: Sequence[torch.Tensor],
    a: torch.Tensor,
    b: torch.Tensor,
    *,
    temporal_strength: float,
    spatial_strength: float,
    robustness: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Merge one strip of tiles: reference tiles (T, P, s+4, s+4) and aligned alternates (same shape,
    one per frame, each with its (T, 1, s, s) mask of samples inside the frame) → windowed merged
    tiles (T, P, s, s) and the per-tile noise-variance ratio (T, P) of the temporal merge.

    The alternates are streamed: the Wiener merge (Hasinoff et al. 2016, eq. 6) is a sum over frames
    of terms that each need only the reference and one alternate, accumulated in the frequency domain.
    """
    ts = ref_tiles.shape[-1] - 4
    rc = ref_tiles[..., 2:-2, 2:-2]
    win = raised_cosine_window(ts, dtype=rc.dtype, device=rc.device)
    var = _variance(rc.mean((-2, -1), keepdim=True), a[:, None, None], b[:, None, None]) * float(win.square().sum())
    fr = torch.view_as_real(torch.fft.rfft2(rc * win))  # (T, P, u, v, 2): real arithmetic below
    acc = fr.clone()
    sum_a = torch.zeros(fr.shape[:-1], dtype=rc.dtype, device=rc.device)
    sum_a2 = torch.zeros_like(sum_a)
    cvar = temporal_strength * var
    rscale = _robust_scale(ref_tiles, a, b)
    for alt, ins in zip(alt_tiles, inside, strict=True):
        wgt = _robustness(alt - ref_tiles, rscale, robustness)[:, None] * ins
        eff = torch.lerp(rc, alt[..., 2:-2, 2:-2], wgt)
        fa = torch.view_as_real(torch.fft.rfft2(eff * win))
        d = fr - fa
        d2 = d.square().sum(-1)
        aw = d2 / (d2 + cvar)
        acc += fa
        acc.addcmul_(aw[..., None], d)
        sum_a += aw
        sum_a2.addcmul_(aw, aw)
    m_alt = len(alt_tiles)
    sum_1ma2 = m_alt - 2 * sum_a + sum_a2  # Σ (1 − A)²
    fr = torch.view_as_complex(fr)
    acc = torch.view_as_complex(acc)
    nf = len(alt_tiles) + 1
    merged = acc / nf
    ratio = ((1 + sum_a).square() + sum_1ma2) / (nf * nf)
    if spatial_strength > 0:
        merged = spatial_denoise_tiles(merged, var * ratio, strength=spatial_strength)
    return torch.fft.irfft2(merged, s=(ts, ts)), ratio.mean((-2, -1))


# ------------------------------------------------------------------------------------ driver


def _merge_streamed(
    b: Burst,
    ref: int,
    alignment: Alignment | None,
    a_t: torch.Tensor,
    b_t: torch.Tensor,
    *,
    tile_size: int,
    temporal_strength: float,
    spatial_strength: float,
    robustness: float,
    hot_pixels: bool,
    dev: torch.device,
    rows_per_strip: int,
    say: Callable[[str], None],
) -> tuple[torch.Tensor, float]:
    """Merged site planes (P, h, w) and the mean variance ratio, one strip of tile rows at a time, frame
    by frame within a strip: only strip-sized pieces of the frames are ever normalized or resampled."""
    cfa = b.metas[0].cfa
    n = cfa_period(cfa)
    N, H, W = b.data.shape
    h, w = H // n, W // n
    ts, s = tile_size, tile_size // 2
    hp, wp = h + 2 * s + (-h) % s, w + 2 * s + (-w) % s
    nty, ntx = hp // s - 1, wp // s - 1
    P = n * n
    out = torch.zeros(P, hp, wp, dtype=torch.float32, device=dev)
    hot = (a_t, b_t) if hot_pixels else None
    tx0 = torch.arange(ntx, device=dev) * s - s  # tile left columns, plane pixels
    alts = [i for i in range(N) if i != ref]
    flows = {}
    if alignment is not None:
        cy = torch.arange(nty, device=dev, dtype=torch.float32) * s - s + (ts - 1) / 2
        cx = tx0.to(torch.float32) + (ts - 1) / 2
        al = Alignment(alignment.flow.to(dev), alignment.tile_size, alignment.tile_stride, ref, alignment.size)
        flows = {i: tile_flow(al, i, cy, cx, scale=n) for i in alts}  # (nty, ntx, 2), plane pixels
    ratio_sum, ratio_n = 0.0, 0
    r = torch.arange(ts + 4, device=dev)
    for r0 in range(0, nty, rows_per_strip):
        r1 = min(nty, r0 + rows_per_strip)
        say(f"merging tile rows {r0}–{r1 - 1} of {nty}")
        ty0 = torch.arange(r0, r1, device=dev) * s - s
        y0 = ty0[:, None].expand(-1, ntx).reshape(-1)
        x0 = tx0[None, :].expand(r1 - r0, -1).reshape(-1)
        lo = int(ty0[0]) - 2
        rp = _strip_planes(b, ref, lo, int(ty0[-1]) + ts + 2, n, h, s + 2, dev, hot)
        ref_tiles = gather_tiles(rp, y0 - 2 - lo, x0 - 2 + s + 2, ts + 4).transpose(0, 1)  # (T, P, ts+4, ts+4)
        alt_tiles, inside = [], []
        for i in alts:
            f = flows[i][r0:r1].reshape(-1, 2)
            fl = torch.floor(f).to(torch.int64)
            alo = int((y0 + fl[:, 0]).min()) - 3
            ahi = int((y0 + fl[:, 0]).max()) + ts + 6
            cpad = s + 6 + int(fl[:, 1].abs().max())
            ap = _strip_planes(b, i, alo, ahi, n, h, cpad, dev, hot)
            alt_tiles.append(shift_tiles(ap, y0 - 2 - alo, x0 - 2 + cpad, ts + 4, f))
            sy = y0[:, None] + r[2:-2] + f[:, :1]  # (T, ts) sample rows of the tile's centre
            sx = x0[:, None] + r[2:-2] + f[:, 1:]
            iy = (sy >= 0) & (sy <= h - 1)
            ix = (sx >= 0) & (sx <= w - 1)
            inside.append((iy[:, :, None] & ix[:, None, :]).to(torch.float32)[:, None])
        tiles, ratio = merge_strip(
            ref_tiles,
            alt_tiles,
            inside,
            a_t,
            b_t,
            temporal_strength=temporal_strength,
            spatial_strength=spatial_strength,
            robustness=robustness,
        )
        ratio_sum += float(ratio.mean()) * ratio.shape[0]
        ratio_n += ratio.shape[0]
        # overlap-add: tile (row j, col k) lands at padded rows (j·s …), columns (k·s …)
        ys, ye = r0 * s, (r1 + 1) * s
        cols = tiles.reshape(r1 - r0, ntx, P, ts * ts).permute(2, 3, 0, 1).reshape(P, ts * ts, -1)
        out[:, ys:ye] += _fold(cols, ye - ys, wp, ts, s)
    return out[:, s : s + h, s : s + w], ratio_sum / max(ratio_n, 1)


def _fold(cols: torch.Tensor, hh: int, ww: int, ts: int, s: int) -> torch.Tensor:
    """Overlap-add (P, ts², L) windowed tiles at stride s into (P, hh, ww) (torch.nn.functional.fold)."""
    return F.fold(cols, (hh, ww), ts, stride=s)[:, 0]


def merge_burst(
    burst: Burst | Sequence[RawFrame],
    *,
    reference: int | None = None,
    alignment: Alignment | None = None,
    tile_size: int = 16,
    noise_profile: Sequence[Sequence[float]] | None = None,
    temporal_strength: float = 32.0,
    spatial_strength: float = 1.0,
    robustness: float = 1.0,
    hot_pixels: bool = True,
    device: torch.device | str | None = None,
    progress: Progress = None,
    rows_per_strip: int = 16,
) -> RawFrame:
    """Merge a raw burst into one RawFrame with less noise (HDR+, Hasinoff et al. 2016); see the module
    docstring. ``tile_size`` (16 or 32) is in site-plane pixels; ``temporal_strength`` is c of the
    Wiener factor (larger: more averaging, less rejection); ``spatial_strength`` scales the spatial
    denoise (0 turns it off); ``robustness`` scales the per-pixel rejection (larger: stricter).
    The noise profile defaults to the reference's NoiseProfile, else it is estimated from the frame.
    Memory is bounded: the frames are normalized and resampled ``rows_per_strip`` tile rows at a time.
    """
    say = progress or (lambda _s: None)
    b = check_burst(burst)
    if isinstance(rows_per_strip, bool) or not isinstance(rows_per_strip, int) or rows_per_strip < 1:
        raise InvalidParameter(f"rows_per_strip must be an int ≥ 1; got {rows_per_strip!r}")
    if tile_size not in (8, 16, 32, 64):
        raise InvalidParameter(f"tile_size must be 8, 16, 32 or 64; got {tile_size!r}")
    c = check_number("temporal_strength", temporal_strength, 0.0, 1e6, lo_open=True)
    sp = check_number("spatial_strength", spatial_strength, 0.0, 1e6)
    rb = check_number("robustness", robustness, 0.0, 1e6, lo_open=True)
    ref = pick_reference(b) if reference is None else pick_reference(b, index=reference)
    cfa = b.metas[0].cfa
    n = cfa_period(cfa)
    N, H, W = b.data.shape
    if H // n < tile_size or W // n < tile_size:
        raise ShapeError(f"frames too small for tiles of {tile_size} site-plane pixels; got {(H, W)} with CFA {cfa}")
    if alignment is not None:
        if not isinstance(alignment, Alignment):
            raise InvalidParameter(f"alignment must be an Alignment; got {type(alignment).__name__}")
        if alignment.flow.shape[0] != N or tuple(alignment.size) != (H, W):
            raise ShapeError(
                f"alignment is for {alignment.flow.shape[0]} frames of {tuple(alignment.size)}; got {N} of {(H, W)}"
            )
        if reference is not None and alignment.reference != ref:
            raise InvalidParameter(f"alignment is against frame {alignment.reference}; got reference={reference}")
        ref = alignment.reference
    dev = resolve_device(device, like=b.data)
    meta = b.metas[ref]
    with torch.no_grad():
        prof = noise_profile if noise_profile is not None else meta.noise_profile
        if prof is None:
            say("estimating the noise profile")
            prof = estimate_burst_noise(normalized_frames(Burst(b.data[ref : ref + 1], (meta,)), device=dev)[0], cfa)
        a_l, b_l = noise_per_site(prof, cfa)
        a_t = torch.tensor(a_l, dtype=torch.float32, device=dev)
        b_t = torch.tensor(b_l, dtype=torch.float32, device=dev)
        if N > 1 and alignment is None:
            say("aligning")
            alignment = align_burst(b, reference=ref, device=dev)
        merged, ratio = _merge_streamed(
            b,
            ref,
            alignment,
            a_t,
            b_t,
            tile_size=tile_size,
            temporal_strength=c,
            spatial_strength=sp,
            robustness=rb,
            hot_pixels=hot_pixels,
            dev=dev,
            rows_per_strip=rows_per_strip,
            say=say,
        )
        mosaic = from_site_planes(merged, cfa)
        del merged
        blk = per_site_tensor(meta.black_level, cfa, H, W, device=dev)
        white = float(meta.white_level)
        scale = 2.0 ** max(0, math.floor(math.log2(65535.0 / white))) if white > 0 else 1.0
        data = torch.round((mosaic * (white - blk) + blk) * scale).clamp(0, 65535)
    new_meta = meta.replace(
        black_level=tuple(float(v) * scale for v in meta.black_level),
        white_level=white * scale,
        noise_profile=tuple((float(p[0]) * ratio, float(p[1]) * ratio) for p in prof),
    )
    return RawFrame(data.to(torch.float32), new_meta)
