"""HDR+-style merge of a raw burst into one raw frame with less noise (Hasinoff et al. 2016, "Burst
photography for high dynamic range and low-light imaging on mobile cameras", §5; Monod, Delon & Veit
2021, "An Analysis and Implementation of the HDR+ Burst Denoising Method", IPOL, §4).

Steps, all on the CFA site planes (one per site of the CFA period, so a Quad Bayer burst has 16):

1. hot pixels (stuck far above all their same-colour neighbours) are replaced in every frame;
2. every alternate frame is warped onto the reference with the per-tile motion of
   :func:`obscura.burst.align.align_burst` (bilinear between tile centres, Keys cubic resampling);
3. per-pixel robustness: where a local mean of the difference to the reference is far above what
   the noise explains (a moving object, an occlusion, an alignment failure), the alternate is
   replaced by the reference, so nothing of it can ghost;
4. temporal merge per overlapping tile (raised-cosine window, half-tile stride) in the frequency
   domain: each alternate coefficient is pulled towards the reference by the Wiener factor
   A = |D|² / (|D|² + c·σ²) of its difference D (per-tile rejection);
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

from obscura.burst.align import Alignment, align_burst, flow_to_pixels, sample_bicubic
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
    "warp_planes",
    "robustness_weights",
    "raised_cosine_window",
    "wiener_merge_tiles",
    "spatial_denoise_tiles",
    "merge_planes",
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
    x = planes.reshape(-1, 1, *shape[-2:])
    p = F.pad(x, (1, 1, 1, 1), mode="replicate")
    nb = F.unfold(p, 3).reshape(x.shape[0], 9, *shape[-2:])
    nb = torch.cat([nb[:, :4], nb[:, 5:]], 1)
    nmax = nb.amax(1).reshape(shape)
    med = nb.median(1).values.reshape(shape)
    sd = _variance(nmax, a[:, None, None], b[:, None, None]).sqrt()
    hot = planes > nmax + threshold * sd
    return torch.where(hot, med, planes)


def warp_planes(planes: torch.Tensor, flow: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Site planes (P, h, w) of one frame resampled onto the reference: out(p) = in(p + flow(p)),
    ``flow`` (2, h, w) in plane pixels; returns the warped planes and an (h, w) mask of samples that
    fell inside the frame."""
    _, h, w = planes.shape
    yy = torch.arange(h, device=planes.device, dtype=planes.dtype)[:, None]
    xx = torch.arange(w, device=planes.device, dtype=planes.dtype)[None, :]
    sy, sx = yy + flow[0], xx + flow[1]
    inside = (sy >= 0) & (sy <= h - 1) & (sx >= 0) & (sx <= w - 1)
    return sample_bicubic(planes, sy, sx), inside


def robustness_weights(
    ref: torch.Tensor, alt: torch.Tensor, a: torch.Tensor, b: torch.Tensor, *, robustness: float = 1.0, k: int = 3
) -> torch.Tensor:
    """Per-pixel weight (h, w) in [0, 1] of an aligned alternate (P, h, w) against the reference:
    the mean over planes of the squared k×k local mean difference, in units of its noise variance
    (≈ 1 where only noise differs), mapped to 1 below 1 + 2/robustness and to 0 at twice that, then
    eroded by 3×3 so that rejected regions get a margin (per-pixel rejection in the spirit of
    Wronski et al. 2019's robustness mask)."""
    pad = k // 2
    d = F.avg_pool2d((alt - ref)[None], k, stride=1, padding=pad, count_include_pad=False)[0]
    m = F.avg_pool2d(ref[None], k, stride=1, padding=pad, count_include_pad=False)[0]
    var = 2.0 * _variance(m, a[:, None, None], b[:, None, None]) / (k * k)
    chi = (d.square() / var.clamp_min(1e-12)).mean(0)
    lo = 1.0 + 2.0 / robustness
    w = ((2 * lo - chi) / lo).clamp(0.0, 1.0)
    return -F.max_pool2d(-w[None, None], 3, stride=1, padding=1)[0, 0]


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


def merge_planes(
    ref: torch.Tensor,
    alts: torch.Tensor,
    a: torch.Tensor,
    b: torch.Tensor,
    *,
    tile_size: int = 16,
    temporal_strength: float = 8.0,
    spatial_strength: float = 1.0,
    rows_per_strip: int = 16,
) -> tuple[torch.Tensor, float]:
    """Merge aligned site planes: reference (P, h, w) and alternates (M, P, h, w) → merged (P, h, w)
    and the mean noise-variance ratio of the temporal merge. Overlapping raised-cosine tiles at half-tile
    stride, processed ``rows_per_strip`` tile rows at a time (bounded memory)."""
    P, h, w = ref.shape
    M = alts.shape[0]
    ts, s = tile_size, tile_size // 2
    hp, wp = h + 2 * s + (-h) % s, w + 2 * s + (-w) % s
    pad = (s, wp - w - s, s, hp - h - s)
    mode = "reflect" if min(h, w) > max(pad) else "replicate"
    rp = F.pad(ref[None], pad, mode=mode)[0]
    ap = F.pad(alts, pad, mode=mode)
    win = raised_cosine_window(ts, dtype=ref.dtype, device=ref.device)
    wsum = float(win.square().sum())
    ty = hp // s - 1
    out = torch.zeros(P, hp, wp, dtype=ref.dtype, device=ref.device)
    ratio_sum, ratio_n = 0.0, 0
    for r0 in range(0, ty, rows_per_strip):
        r1 = min(ty, r0 + rows_per_strip)
        y0, y1 = r0 * s, (r1 + 1) * s
        # (P, ts², L) → tiles (L, P, ts, ts)
        tr = F.unfold(rp[:, None, y0:y1], ts, stride=s).reshape(P, ts, ts, -1).permute(3, 0, 1, 2)
        ta = F.unfold(ap[:, :, y0:y1].reshape(M * P, 1, y1 - y0, wp), ts, stride=s)
        ta = ta.reshape(M, P, ts, ts, -1).permute(4, 0, 1, 2, 3)
        var = _variance(tr.mean((-2, -1), keepdim=True), a[:, None, None], b[:, None, None]) * wsum
        fr = torch.fft.rfft2(tr * win)
        fa = torch.fft.rfft2(ta * win)
        merged, ratio = wiener_merge_tiles(fr, fa, var, strength=temporal_strength)
        ratio_sum += float(ratio.mean()) * ratio.shape[0]
        ratio_n += ratio.shape[0]
        if spatial_strength > 0:
            merged = spatial_denoise_tiles(merged, var * ratio, strength=spatial_strength)
        tiles = torch.fft.irfft2(merged, s=(ts, ts))  # (L, P, ts, ts), windowed
        cols = tiles.permute(1, 2, 3, 0).reshape(P, ts * ts, -1)
        out[:, y0:y1] += F.fold(cols, (y1 - y0, wp), ts, stride=s)[:, 0]
    return out[:, s : s + h, s : s + w], ratio_sum / max(ratio_n, 1)


# ------------------------------------------------------------------------------------ driver


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
) -> RawFrame:
    """Merge a raw burst into one RawFrame with less noise (HDR+, Hasinoff et al. 2016); see the module
    docstring. ``tile_size`` (16 or 32) is in site-plane pixels; ``temporal_strength`` is c of the
    Wiener factor (larger: more averaging, less rejection); ``spatial_strength`` scales the spatial
    denoise (0 turns it off); ``robustness`` scales the per-pixel rejection (larger: stricter).
    The noise profile defaults to the reference's NoiseProfile, else it is estimated from the frame.
    """
    say = progress or (lambda _s: None)
    b = check_burst(burst)
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
        x = normalized_frames(b, device=dev)
        prof = noise_profile if noise_profile is not None else meta.noise_profile
        if prof is None:
            say("estimating the noise profile")
            prof = estimate_burst_noise(x[ref], cfa)
        a_l, b_l = noise_per_site(prof, cfa)
        a_t = torch.tensor(a_l, dtype=torch.float32, device=dev)
        b_t = torch.tensor(b_l, dtype=torch.float32, device=dev)
        planes = site_planes(x, cfa)  # (N, P, h, w)
        if hot_pixels:
            planes = suppress_hot_pixels(planes, a_t, b_t)
        if N > 1 and alignment is None:
            say("aligning")
            alignment = align_burst(b, reference=ref, device=dev)
        ref_planes = planes[ref]
        alts = []
        for i in range(N):
            if i == ref:
                continue
            say(f"warping frame {i}")
            assert alignment is not None
            flow = flow_to_pixels(alignment, scale=n)[i].to(dev)
            warped, inside = warp_planes(planes[i], flow)
            wgt = robustness_weights(ref_planes, warped, a_t, b_t, robustness=rb) * inside
            alts.append(ref_planes + wgt * (warped - ref_planes))
        alt_t = torch.stack(alts) if alts else ref_planes[None, :0].expand(0, *ref_planes.shape)
        say("merging")
        if alts:
            merged, ratio = merge_planes(
                ref_planes, alt_t, a_t, b_t, tile_size=tile_size, temporal_strength=c, spatial_strength=sp
            )
        else:
            merged, ratio = ref_planes, 1.0
        mosaic = from_site_planes(merged, cfa)
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
