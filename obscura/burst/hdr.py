"""Exposure brackets and night mode: raw HDR merging, exposure fusion of developed brackets, and a night recipe.

- :func:`merge_brackets` merges raw frames of different exposures into one linear radiance mosaic: every
  frame is linearized, normalized by its exposure (time × ISO / N², relative to the reference), aligned
  on exposure-normalized clipped data, and averaged with weights proportional to the inverse noise
  variance in radiance units (the maximum-likelihood estimate of Granados et al. 2010, "Optimal HDR
  reconstruction with linear digital cameras", with the DNG NoiseProfile variance a·x + b), set to zero
  with a smooth ramp where any CFA site nearby is near saturation (Hasinoff, Durand & Freeman 2010
  treat saturated samples as missing), and motion rejection against the reference (frames whose values
  disagree with the reference beyond k σ keep only the reference: no ghosts; in the spirit of Granados
  et al. 2013, "Automatic noise modeling for ghost-free HDR reconstruction").
- :func:`fuse_exposures` is Mertens, Kautz & Van Reeth 2007 exposure fusion of display-encoded brackets
  (Laplacian-pyramid blending of contrast/saturation/well-exposedness weights; Burt & Adelson 1983), with
  global alignment by phase correlation (Kuglin & Hines 1975) of exposure-invariant rank images, and
  ghost removal: each frame is mapped to the reference's exposure through the intensity mapping function
  read off the two cumulative histograms (Grossberg & Nayar 2003), and its weight is reduced where it
  disagrees with the reference.
- :func:`night_recipe` and :func:`night_mode`: a long burst merged (noise-aware) and developed with a
  low-light rendering that keeps a night looking like night.

The merged RawFrame of :func:`merge_brackets` is a float mosaic in the **reference frame's normalized
scale** (black 0, reference white = 1.0) extended beyond white: its ``white_level`` is the radiance at
which the shortest exposure saturates (``headroom = exposure_ref / exposure_min``, ≥ 1), its black level
0, and its ``baseline_exposure`` is raised by log2(headroom) so that develop (which divides by the white
level in linearize) renders the mid-tones as it would render the reference.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch.nn import functional as F  # noqa: N812

from obscura.burst.reference import check_burst, from_site_planes, green_sharpness, site_planes
from obscura.core.cfa import cfa_period, channel_of_sites
from obscura.core.errors import InvalidParameter, ShapeError
from obscura.core.registry import Registry
from obscura.core.types import Burst, Image, RawFrame, RawMeta
from obscura.core.validate import check_number
from obscura.isp.recipe import Recipe, Stage

__all__ = [
    "BRACKET_WEIGHTS",
    "FUSION",
    "exposure_scale",
    "relative_exposures",
    "phase_correlation",
    "shift_image",
    "merge_brackets",
    "fuse_exposures",
    "fuse_mertens2007",
    "mertens_weights",
    "intensity_mapping",
    "align_translation",
    "night_recipe",
    "night_mode",
]

BRACKET_WEIGHTS = Registry("bracket weights")
FUSION = Registry("exposure fusion")


# ------------------------------------------------------------------------------------------- helpers


def _box3(x: torch.Tensor) -> torch.Tensor:
    """3×3 mean of (..., h, w) planes, borders replicated."""
    lead = x.shape[:-2]
    y = x.reshape(-1, 1, *x.shape[-2:])
    y = F.avg_pool2d(F.pad(y, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    return y.reshape(*lead, *x.shape[-2:])


def _max3(x: torch.Tensor) -> torch.Tensor:
    """3×3 max of (..., h, w) planes."""
    lead = x.shape[:-2]
    y = x.reshape(-1, 1, *x.shape[-2:])
    y = F.max_pool2d(F.pad(y, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    return y.reshape(*lead, *x.shape[-2:])


def _smoothstep(t: torch.Tensor) -> torch.Tensor:
    t = t.clamp(0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


# ------------------------------------------------------------------------------------------ exposure


def exposure_scale(meta: RawMeta) -> float:
    """Relative light a frame gathered: exposure_time × ISO/100 / f_number² (ISO and aperture when known).

    Raises InvalidParameter when the exposure time is missing or not positive (brackets cannot be
    normalized without it).
    """
    t = meta.exposure_time
    if t is None or not isinstance(t, int | float) or not math.isfinite(t) or t <= 0:
        raise InvalidParameter(f"bracket merging needs a positive exposure_time in every frame's RawMeta; got {t!r}")
    s = float(t)
    if meta.iso is not None:
        if not math.isfinite(meta.iso) or meta.iso <= 0:
            raise InvalidParameter(f"iso must be positive; got {meta.iso!r}")
        s *= float(meta.iso) / 100.0
    if meta.f_number is not None:
        if not math.isfinite(meta.f_number) or meta.f_number <= 0:
            raise InvalidParameter(f"f_number must be positive; got {meta.f_number!r}")
        s /= float(meta.f_number) ** 2
    return s


def relative_exposures(metas: Sequence[RawMeta], reference: int) -> list[float]:
    """Exposure of each frame relative to the reference (:func:`exposure_scale` ratios)."""
    s = [exposure_scale(m) for m in metas]
    return [v / s[reference] for v in s]


# ------------------------------------------------------------------------------------------ weights


@BRACKET_WEIGHTS.register("snr")
def weights_snr(x: torch.Tensor, e: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Inverse noise variance in radiance units (Granados et al. 2010): for a frame of relative exposure
    e, radiance x (reference units) is read as y = e·x with variance a·y + b, so var(x) = (a·e·x + b)/e²."""
    var = (a * e * x.clamp_min(0.0) + b) / (e * e)
    return 1.0 / var.clamp_min(1e-20)


@BRACKET_WEIGHTS.register("exposure")
def weights_exposure(x: torch.Tensor, e: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Weights proportional to the exposure (optimal for photon noise alone; Robertson et al. 2003 style)."""
    return e.expand_as(x).clone()


@BRACKET_WEIGHTS.register("uniform")
def weights_uniform(x: torch.Tensor, e: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Equal weights for every unsaturated sample (a plain mean of the exposure-normalized frames)."""
    return torch.ones_like(x)


# ------------------------------------------------------------------------------------------ alignment


def phase_correlation(ref: torch.Tensor, img: torch.Tensor) -> tuple[int, int]:
    """Integer translation (dy, dx) such that ``img`` shows at p + (dy, dx) what ``ref`` shows at p.

    Phase correlation (Kuglin & Hines 1975) of two (h, w) images, each mean-removed and Hann-windowed.
    """
    if ref.ndim != 2 or img.shape != ref.shape:
        raise ShapeError(
            f"phase_correlation needs two (h, w) images of one size; got {tuple(ref.shape)}, {tuple(img.shape)}"
        )
    h, w = ref.shape
    if h < 8 or w < 8:
        raise ShapeError(f"images too small for phase correlation (need ≥ 8×8); got {(h, w)}")
    a, b = ref.double(), img.double()
    win = torch.hann_window(h, periodic=False, dtype=a.dtype, device=a.device)[:, None] * torch.hann_window(
        w, periodic=False, dtype=a.dtype, device=a.device
    )
    fa = torch.fft.rfft2((a - a.mean()) * win)
    fb = torch.fft.rfft2((b - b.mean()) * win)
    r = fb * fa.conj()
    r = r / r.abs().clamp_min(1e-12 * float(r.abs().max().clamp_min(1e-300)))
    c = torch.fft.irfft2(r, s=(h, w))
    k = int(torch.argmax(c))
    dy, dx = k // w, k % w
    dy = dy - h if dy > h // 2 else dy
    dx = dx - w if dx > w // 2 else dx
    return int(dy), int(dx)


def shift_image(x: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """(..., h, w) → out(p) = x(p + (dy, dx)), integer shift, borders replicated."""
    h, w = x.shape[-2:]
    rows = (torch.arange(h, device=x.device) + int(dy)).clamp(0, h - 1)
    cols = (torch.arange(w, device=x.device) + int(dx)).clamp(0, w - 1)
    return x[..., rows, :][..., cols]


def _warp_planes(p: torch.Tensor, motion: torch.Tensor) -> torch.Tensor:
    """(C, h, w) planes sampled bilinearly at q + motion(q) (motion (2, h, w) in plane pixels; borders replicated)."""
    h, w = p.shape[-2:]
    if not bool(motion.abs().gt(1e-6).any()):
        return p
    yy = torch.arange(h, device=p.device, dtype=p.dtype)[:, None] + motion[0]
    xx = torch.arange(w, device=p.device, dtype=p.dtype)[None, :] + motion[1]
    grid = torch.stack([2 * xx / max(w - 1, 1) - 1, 2 * yy / max(h - 1, 1) - 1], -1)[None]
    out = F.grid_sample(p[None], grid, mode="bilinear", padding_mode="border", align_corners=True)
    return out[0]


def _grey(x: torch.Tensor, cfa: str) -> torch.Tensor:
    """(N, H, W) mosaics → (N, H/n, W/n) mean of each CFA tile."""
    return site_planes(x, cfa).mean(dim=-3)


def _bracket_motion(
    x: torch.Tensor, cfa: str, ref: int, metas: Sequence[RawMeta], alignment: Any, clip: float
) -> torch.Tensor:
    """Dense motion (N, 2, h, w) in site-plane pixels of exposure-normalized mosaics ``x`` (N, H, W)."""
    n, H, W = x.shape
    per = cfa_period(cfa)
    h, w = H // per, W // per
    zero = torch.zeros(n, 2, h, w, dtype=x.dtype, device=x.device)
    if alignment is None or n == 1:
        return zero
    # align on exposure-normalized data clipped where the longest exposure saturates: every frame then
    # sees the same signal (up to noise), whatever its exposure
    xc = (x.clamp(0.0, clip) / clip).sqrt()  # sqrt: roughly variance-stabilized, shadows count too
    if alignment == "global":
        g = _grey(xc, cfa)
        out = zero.clone()
        for i in range(n):
            if i != ref:
                dy, dx = phase_correlation(g[ref], g[i])
                out[i, 0], out[i, 1] = float(dy), float(dx)
        return out
    if alignment == "auto":
        from obscura.burst.align import align_burst

        meta = metas[ref].replace(black_level=(0.0,) * len(metas[ref].black_level), white_level=1.0)
        alignment = align_burst(Burst(xc, (meta,) * n), reference=ref)
    if hasattr(alignment, "flow") and hasattr(alignment, "tile_stride"):
        from obscura.burst.align import flow_to_pixels

        if tuple(alignment.flow.shape[:1]) != (n,) or tuple(alignment.size) != (H, W):
            raise ShapeError(
                f"alignment is for {tuple(alignment.flow.shape[:1])} frames of {tuple(alignment.size)}; "
                f"the burst has {n} frames of {(H, W)}"
            )
        return flow_to_pixels(alignment, (H, W), scale=per).to(device=x.device, dtype=x.dtype)
    raise InvalidParameter(f"alignment must be 'auto', 'global', None or an Alignment; got {alignment!r}")


# ------------------------------------------------------------------------------------------ raw merge


def _linear_frames(b: Burst) -> torch.Tensor:
    """(N, H, W) float32 linearized frames (OpcodeList1, LinearizationTable, black and white levels)."""
    from obscura.isp.linearize import linearize
    from obscura.isp.opcodes import apply_opcodes

    out = []
    for f in b.frames():
        x = f.data.to(torch.float32)
        if f.meta.opcode_list1:
            x = apply_opcodes(x, f.meta.opcode_list1, cfa=f.meta.cfa, scale=65535.0)
        out.append(linearize(RawFrame(x, f.meta)).data)
    return torch.stack(out)


def _profile(meta: RawMeta, y: torch.Tensor) -> list[tuple[float, float]]:
    """(a, b) per colour R, G, B: the frame's NoiseProfile, or one estimated on its linearized mosaic."""
    np_ = meta.noise_profile
    if np_:
        pairs = [(float(p[0]), float(p[1])) for p in np_]
        if len(pairs) == 1:
            pairs = pairs * 3
        if len(pairs) != 3 or not all(math.isfinite(v) and v >= 0 for p in pairs for v in p):
            raise InvalidParameter(f"noise_profile must hold 1 or 3 pairs (a, b) ≥ 0; got {np_!r}")
        return pairs
    from obscura.isp.denoise import estimate_noise_profile

    n = cfa_period(meta.cfa)
    chans = channel_of_sites(meta.cfa)
    sites = [chans.index(c) for c in range(3)]
    planes = torch.stack([y[i // n :: n, i % n :: n] for i in sites])
    try:
        return [(float(a), float(b)) for a, b in estimate_noise_profile(planes.clamp(-1.0, 1.0))]
    except ShapeError:
        return [(1e-4, 1e-7)] * 3  # too small to estimate: weights then follow the exposure


def _pick_bracket_reference(b: Burst, e: Sequence[float]) -> int:
    """The frame of median exposure; among frames of that exposure, the sharpest (green gradient energy)."""
    order = sorted(range(len(e)), key=lambda i: e[i])
    med = e[order[(len(e) - 1) // 2]]
    cands = [i for i in range(len(e)) if abs(e[i] - med) <= 1e-3 * med][:3]
    if len(cands) == 1:
        return cands[0]
    from obscura.burst.reference import normalized_frames

    sub = Burst(b.data[cands], tuple(b.metas[i] for i in cands))
    with torch.no_grad():
        s = green_sharpness(normalized_frames(sub), b.metas[0].cfa)
    return cands[int(torch.argmax(s))]


def merge_brackets(
    burst: Burst | Sequence[RawFrame],
    *,
    reference: int | None = None,
    alignment: Any = "auto",
    weights: str = "snr",
    saturation: float = 0.95,
    ramp: float = 0.1,
    rejection: float = 2.0,
) -> RawFrame:
    """Merge raw exposure brackets into one linear HDR mosaic (see the module docstring).

    ``reference``: index of the frame whose geometry and scale the result takes (default: the frame of
    median exposure). ``alignment``: ``"auto"`` (tile alignment, :func:`obscura.burst.align.align_burst`,
    on exposure-normalized clipped data), ``"global"`` (one translation per frame by phase correlation),
    ``None`` (frames already aligned), or an :class:`~obscura.burst.align.Alignment`. ``weights``: a
    method of :data:`BRACKET_WEIGHTS` (``"snr"``: inverse noise variance from the NoiseProfile, or a
    profile estimated on each frame). A frame's weight falls smoothly from 1 to 0 as the brightest CFA
    site within one CFA tile around goes from ``saturation − ramp`` to ``saturation`` (of its white).
    ``rejection`` k: a frame whose local mean squared z-score against the reference (or, where the
    reference is saturated, against the next shorter unsaturated frame) exceeds k² loses its weight,
    fully at 2k²; 0 disables rejection.

    Returns a float32 RawFrame in the reference's normalized scale (black 0, reference white 1.0) with
    ``white_level`` = headroom (where the shortest frame saturates), ``baseline_exposure`` raised by
    log2(headroom), and a NoiseProfile for the merged data (a linear fit, see :func:`_merged_profile`).
    """
    b = check_burst(burst)
    cfa = b.metas[0].cfa
    n = len(b)
    if n > 64:
        raise InvalidParameter(f"merge_brackets takes at most 64 frames; got {n}")
    sat = check_number("saturation", saturation, 0.0, 1.0, lo_open=True)
    rmp = check_number("ramp", ramp, 0.0, 1.0, lo_open=True)
    k = check_number("rejection", rejection, 0.0, 100.0)
    weight_fn = BRACKET_WEIGHTS.get(weights)
    e_all = [exposure_scale(m) for m in b.metas]
    if reference is None:
        ref = _pick_bracket_reference(b, e_all)
    else:
        if isinstance(reference, bool) or not isinstance(reference, int) or not -n <= reference < n:
            raise InvalidParameter(f"reference must be an int in [{-n}, {n - 1}]; got {reference!r}")
        ref = reference % n
    e = [v / e_all[ref] for v in e_all]

    with torch.no_grad():
        y = _linear_frames(b)  # (N, H, W), white 1 per frame
        dev, dt = y.device, y.dtype
        profiles = [_profile(m, y[i]) for i, m in enumerate(b.metas)]
        et = torch.tensor(e, dtype=dt, device=dev)
        x = y / et[:, None, None]  # radiance in reference units
        headroom = 1.0 / min(e)
        clip = sat / max(e)
        motion = _bracket_motion(x, cfa, ref, b.metas, alignment, clip)

        # site-plane layout (N, S, h, w): per-site constants broadcast, neighbourhoods cover all sites
        yp = site_planes(y, cfa)
        s = _smoothstep((sat - _max3(yp.amax(dim=1))) / rmp)  # (N, h, w) saturation weight, before warping
        chans = torch.tensor(channel_of_sites(cfa), device=dev)
        a_t = torch.tensor([[p[0] for p in pr] for pr in profiles], dtype=dt, device=dev)[:, chans]  # (N, S)
        b_t = torch.tensor([[p[1] for p in pr] for pr in profiles], dtype=dt, device=dev)[:, chans]
        xp = site_planes(x, cfa)
        for i in range(n):
            if i != ref:
                both = _warp_planes(torch.cat([xp[i], s[i, None]]), motion[i])
                xp[i], s[i] = both[:-1], both[-1].clamp(0.0, 1.0)
        ev = et[:, None, None, None]
        av, bv = a_t[:, :, None, None], b_t[:, :, None, None]

        # a smoothed estimate of the radiance from the longest unsaturated frame sets each frame's variance
        # (the frame's own noisy value would favour its negative noise)
        order = sorted(range(n), key=lambda i: e[i])
        x0 = _box3(xp[order[0]])
        for i in order[1:]:
            x0 = torch.where((s[i] > 0.99)[None], _box3(xp[i]), x0)
        var = (av * ev * x0.clamp_min(0.0)[None] + bv) / (ev * ev)  # (N, S, h, w)
        w = weight_fn(x0[None].expand_as(xp), ev, av, bv) * s[:, None]

        if k > 0 and n > 1:
            # reference-guided estimate: the reference where it is unsaturated, else the next shorter frame
            est, est_var = xp[ref].clone(), var[ref].clone()
            valid = s[ref] > 0.5
            for i in sorted((i for i in range(n) if e[i] < e[ref]), key=lambda i: -e[i]):
                take = (~valid) & (s[i] > 0.5)
                est = torch.where(take[None], xp[i], est)
                est_var = torch.where(take[None], var[i], est_var)
                valid = valid | take
            z2 = (xp - est[None]).square() / (var + est_var[None]).clamp_min(1e-20)
            m = _box3(z2.mean(dim=1))  # local mean square z-score over all sites of a 3×3 tile neighbourhood
            keep = ((2 * k * k - m) / (k * k)).clamp(0.0, 1.0)
            keep = torch.where(valid[None], keep, torch.ones_like(keep))
            keep[ref] = 1.0
            w = w * keep[:, None]

        num = (w * xp).sum(dim=0)
        den = w.sum(dim=0)
        fallback = xp[order[0]]  # every frame saturated: the shortest frame's (clipped) value
        merged = torch.where(den > 1e-30, num / den.clamp_min(1e-30), fallback)
        out = from_site_planes(merged, cfa).contiguous()

    meta = b.metas[ref]
    new_meta = meta.replace(
        black_level=(0.0,) * len(meta.black_level),
        white_level=float(headroom),
        linearization_table=None,
        opcode_list1=(),
        baseline_exposure=float(meta.baseline_exposure) + math.log2(headroom),
        noise_profile=_merged_profile(profiles, e, headroom, sat),
    )
    return RawFrame(out, new_meta)


def _merged_profile(
    profiles: Sequence[Sequence[tuple[float, float]]], e: Sequence[float], headroom: float, saturation: float
) -> tuple[tuple[float, float], ...]:
    """NoiseProfile (a, b) per colour of the merged frame, in its normalized units (white = headroom).

    Inverse-variance merging of the frames unsaturated at radiance x (e_i·x < saturation), each with
    var_i(x) = (a_i·e_i·x + b_i)/e_i², has variance 1/Σ_i 1/var_i(x): piecewise, not linear in x. The
    linear model a·x + b is fitted to it by least squares of the relative error on 256 radiances spread
    evenly in log over [2⁻²⁰, headroom] (the fit is exact in the shadows, where every frame counts, and
    within a factor of about 2 where the longer frames drop out). Then rescaled to data / headroom.
    """
    x = torch.logspace(-20 * math.log10(2), math.log10(headroom * saturation), 256, dtype=torch.float64)
    out = []
    for c in range(3):
        inv = torch.zeros_like(x)
        for ei, p in zip(e, profiles, strict=True):
            var_i = (p[c][0] * ei * x + p[c][1]) / (ei * ei)
            inv = inv + torch.where(ei * x < saturation, 1.0 / var_i.clamp_min(1e-30), torch.zeros_like(x))
        shortest = min(range(len(e)), key=lambda i: e[i])
        var_s = (profiles[shortest][c][0] * e[shortest] * x + profiles[shortest][c][1]) / e[shortest] ** 2
        var = torch.where(inv > 0, 1.0 / inv.clamp_min(1e-300), var_s)
        A = torch.stack([x, torch.ones_like(x)], 1) / var[:, None]
        sol = torch.linalg.lstsq(A, torch.ones_like(x)[:, None]).solution[:, 0]
        a, b = float(sol[0]), float(sol[1])
        if b <= 0:
            a, b = float((x / var).sum() / (x * x / var / var).sum()), 0.0
        if a < 0:
            a, b = 0.0, float(var.min())
        out.append((a / headroom, b / headroom**2))
    return tuple(out)


# ------------------------------------------------------------------------------------------ exposure fusion


def _check_images(images: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    if isinstance(images, torch.Tensor):
        if images.ndim != 4:
            raise ShapeError(
                f"images must be a list of (3, H, W) tensors or an (N, 3, H, W) tensor; got {tuple(images.shape)}"
            )
        images = list(images)
    if not isinstance(images, Sequence) or len(images) < 1:
        raise ShapeError("images must be a non-empty list of (3, H, W) tensors")
    ims = []
    for i, im in enumerate(images):
        if not isinstance(im, torch.Tensor) or im.ndim != 3 or im.shape[0] != 3:
            shape = tuple(im.shape) if isinstance(im, torch.Tensor) else type(im).__name__
            raise ShapeError(f"image {i} must be a (3, H, W) tensor; got {shape}")
        if im.shape != images[0].shape:
            raise ShapeError(f"all images must have one size; got {tuple(images[0].shape)} and {tuple(im.shape)}")
        if im.device != images[0].device:
            raise ShapeError(f"all images must be on one device; got {images[0].device} and {im.device}")
        ims.append(im.to(torch.float32))
    if min(ims[0].shape[-2:]) < 8:
        raise ShapeError(f"images must be at least 8×8; got {tuple(ims[0].shape)}")
    return ims


def _luminance(x: torch.Tensor) -> torch.Tensor:
    w = torch.tensor([0.2126, 0.7152, 0.0722], dtype=x.dtype, device=x.device)
    return (x * w[:, None, None]).sum(dim=0)


def mertens_weights(
    images: torch.Tensor,
    *,
    contrast: float = 1.0,
    saturation: float = 1.0,
    exposedness: float = 1.0,
    sigma: float = 0.2,
) -> torch.Tensor:
    """Normalized weight maps (N, H, W) of Mertens et al. 2007: |Laplacian| of the grey image (contrast),
    standard deviation of R, G, B (saturation) and Π_c exp(−(I_c − 0.5)²/2σ²) (well-exposedness), each
    raised to its exponent; they sum to 1 over the frames at every pixel."""
    grey = images.mean(dim=1, keepdim=True)
    lap = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]], dtype=images.dtype, device=images.device)
    c = F.conv2d(F.pad(grey, (1, 1, 1, 1), mode="replicate"), lap[None, None]).abs()[:, 0]
    s = images.std(dim=1, unbiased=False)
    ex = torch.exp(-((images - 0.5) ** 2).sum(dim=1) / (2 * sigma * sigma))
    wt = c.pow(contrast) * s.pow(saturation) * ex.pow(exposedness) + 1e-12
    return wt / wt.sum(dim=0, keepdim=True)


_BINOMIAL = (1.0, 4.0, 6.0, 4.0, 1.0)


def _blur5(x: torch.Tensor) -> torch.Tensor:
    """Separable 5-tap binomial blur [1, 4, 6, 4, 1]/16 of (B, C, h, w), borders reflected (replicated when
    too small); as sums of shifted slices, which beat a 5-tap convolution on CPUs."""
    b, c, h, w = x.shape
    mode = "reflect" if min(h, w) > 2 else "replicate"
    y = F.pad(x.reshape(b * c, 1, h, w), (2, 2, 2, 2), mode=mode)[:, 0]
    k = [v / 16.0 for v in _BINOMIAL]
    r = k[0] * (y[..., :, 0:w] + y[..., :, 4 : w + 4]) + k[1] * (y[..., :, 1 : w + 1] + y[..., :, 3 : w + 3])
    r = r + k[2] * y[..., :, 2 : w + 2]
    o = k[0] * (r[..., 0:h, :] + r[..., 4 : h + 4, :]) + k[1] * (r[..., 1 : h + 1, :] + r[..., 3 : h + 3, :])
    o = o + k[2] * r[..., 2 : h + 2, :]
    return o.reshape(b, c, h, w)


def _down(x: torch.Tensor) -> torch.Tensor:
    return _blur5(x)[..., ::2, ::2]


def _up(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    b, c, h, w = x.shape
    z = torch.zeros(b, c, 2 * h, 2 * w, dtype=x.dtype, device=x.device)
    z[..., ::2, ::2] = x
    return (4.0 * _blur5(z))[..., : size[0], : size[1]]


def _laplacian_pyramid(x: torch.Tensor, levels: int) -> list[torch.Tensor]:
    pyr, cur = [], x
    for _ in range(levels - 1):
        nxt = _down(cur)
        pyr.append(cur - _up(nxt, tuple(cur.shape[-2:])))
        cur = nxt
    pyr.append(cur)
    return pyr


def _gaussian_pyramid(x: torch.Tensor, levels: int) -> list[torch.Tensor]:
    pyr = [x]
    for _ in range(levels - 1):
        pyr.append(_down(pyr[-1]))
    return pyr


def _collapse(pyr: list[torch.Tensor]) -> torch.Tensor:
    cur = pyr[-1]
    for lap in reversed(pyr[:-1]):
        cur = lap + _up(cur, tuple(lap.shape[-2:]))
    return cur


def _hist_cdf(v: torch.Tensor, bins: int) -> torch.Tensor:
    """CDF (bins + 1,) of values in [0, 1] on ``bins`` equal bins, starting at 0."""
    idx = (v.clamp(0.0, 1.0) * bins).long().clamp_max(bins - 1)
    h = torch.bincount(idx.reshape(-1), minlength=bins).to(torch.float64)
    return torch.cat([torch.zeros(1, dtype=h.dtype, device=h.device), h.cumsum(0) / h.sum()])


def intensity_mapping(src: torch.Tensor, dst: torch.Tensor, *, bins: int = 256) -> torch.Tensor:
    """Map ``src`` values to ``dst``'s exposure through the intensity mapping function of their cumulative
    histograms (Grossberg & Nayar 2003): a value at quantile q of ``src`` goes to quantile q of ``dst``.

    Both are arrays of values in [0, 1] of one scene (any shape); returns ``src`` mapped (same shape).
    Ties (e.g. a clipped bin) map to the middle of their quantile range.
    """
    cs = _hist_cdf(src, bins)
    cd = _hist_cdf(dst, bins)
    mid = 0.5 * (cs[:-1] + cs[1:])  # (bins,) quantile of each source bin's centre
    j = torch.searchsorted(cd.contiguous(), mid.contiguous()).clamp(1, bins)
    lo, hi = cd[j - 1], cd[j]
    t = ((mid - lo) / (hi - lo).clamp_min(1e-12)).clamp(0.0, 1.0)
    lut = ((j - 1).to(torch.float64) + t) / bins  # value in dst units
    idx = (src.clamp(0.0, 1.0) * bins).long().clamp_max(bins - 1)
    return lut.to(src.dtype)[idx]


def _rank_image(y: torch.Tensor, bins: int = 1024) -> torch.Tensor:
    """Exposure-invariant image: each pixel's quantile in its own histogram (a monotone camera response
    and exposure change leave it unchanged, up to clipping)."""
    c = _hist_cdf(y, bins)
    idx = (y.clamp(0.0, 1.0) * bins).long().clamp_max(bins - 1)
    return (0.5 * (c[:-1] + c[1:])).to(y.dtype)[idx]


def align_translation(images: Sequence[torch.Tensor], *, reference: int) -> list[tuple[int, int]]:
    """Per-image integer translation (dy, dx) against ``images[reference]`` by phase correlation of their
    rank (histogram-equalized) luminance images: image i shows at p + (dy, dx) what the reference shows at p."""
    ims = _check_images(images)
    ranks = [_rank_image(_luminance(im)) for im in ims]
    return [(0, 0) if i == reference else phase_correlation(ranks[reference], r) for i, r in enumerate(ranks)]


def _ghost_weights(ims: torch.Tensor, ref: int, threshold: float, margin: float = 0.04) -> torch.Tensor:
    """(N, H, W) factors in [0, 1]: 1 where a frame agrees with the reference, falling as exp(−(d/threshold)²)
    with d the local mean absolute difference after intensity mapping, taken in both exposures (the frame
    mapped to the reference's and the reference to the frame's; the larger counts, so that a difference
    compressed by a darker exposure is still seen); 1 where either is clipped."""
    n = ims.shape[0]
    out = torch.ones(n, *ims.shape[-2:], dtype=ims.dtype, device=ims.device)
    r = ims[ref]
    ok_r = ((r > margin) & (r < 1 - margin)).all(dim=0)
    for i in range(n):
        if i == ref:
            continue
        f = ims[i]
        to_ref = torch.stack([intensity_mapping(f[c], r[c]) for c in range(3)])
        to_f = torch.stack([intensity_mapping(r[c], f[c]) for c in range(3)])
        ok = ok_r & ((f > margin) & (f < 1 - margin)).all(dim=0)
        d = torch.maximum((to_ref - r).abs().mean(dim=0), (to_f - f).abs().mean(dim=0))
        g = torch.exp(-((_box3(d) / threshold) ** 2))
        g = torch.where(ok, g, torch.ones_like(g))
        # widen the rejected regions (the pyramid spreads a frame's content by a few pixels), then soften
        g = -F.max_pool2d(-g[None, None], 7, stride=1, padding=3)[0, 0]
        out[i] = _box3(g)
    return out


@FUSION.register("mertens2007")
def fuse_mertens2007(
    images: Sequence[torch.Tensor],
    *,
    contrast: float = 1.0,
    saturation: float = 1.0,
    exposedness: float = 1.0,
    sigma: float = 0.2,
    levels: int | None = None,
    align: bool = True,
    deghost: bool = True,
    ghost_threshold: float = 0.08,
    reference: int | None = None,
) -> torch.Tensor:
    """Exposure fusion (Mertens, Kautz & Van Reeth 2007) of display-encoded (3, H, W) brackets in [0, 1].

    Weight maps (:func:`mertens_weights`) are blended with the images' Laplacian pyramids (Burt &
    Adelson 1983) over ``levels`` levels (default: down to about 8 pixels). ``align``: global translation
    per image (:func:`align_translation`); ``deghost``: weights of frames that disagree with the
    reference after intensity mapping are reduced (:func:`_ghost_weights`). ``reference`` defaults to the
    image of median mean brightness. Returns a (3, H, W) display-encoded tensor in [0, 1].
    """
    ims = _check_images(images)
    n = len(ims)
    for name, v in (("contrast", contrast), ("saturation", saturation), ("exposedness", exposedness)):
        check_number(name, v, 0.0, 10.0)
    sigma = check_number("sigma", sigma, 0.0, 10.0, lo_open=True)
    ghost_threshold = check_number("ghost_threshold", ghost_threshold, 0.0, 10.0, lo_open=True)
    h, w = ims[0].shape[-2:]
    max_levels = max(1, math.floor(math.log2(min(h, w))) - 2)
    if levels is None:
        levels = max_levels
    if isinstance(levels, bool) or not isinstance(levels, int) or not 1 <= levels <= max_levels + 2:
        raise InvalidParameter(f"levels must be an int in [1, {max_levels + 2}] for a {h}×{w} image; got {levels!r}")
    if reference is None:
        means = [float(im.mean()) for im in ims]
        ref = sorted(range(n), key=lambda i: means[i])[(n - 1) // 2]
    else:
        if isinstance(reference, bool) or not isinstance(reference, int) or not -n <= reference < n:
            raise InvalidParameter(f"reference must be an int in [{-n}, {n - 1}]; got {reference!r}")
        ref = reference % n
    with torch.no_grad():
        if align and n > 1:
            shifts = align_translation(ims, reference=ref)
            ims = [shift_image(im, dy, dx) for im, (dy, dx) in zip(ims, shifts, strict=True)]
        x = torch.stack(ims).clamp(0.0, 1.0)
        wts = mertens_weights(x, contrast=contrast, saturation=saturation, exposedness=exposedness, sigma=sigma)
        if deghost and n > 1:
            # a frame's weight where it disagrees with the reference goes to the reference
            g = _ghost_weights(x, ref, ghost_threshold)
            moved = (wts * (1.0 - g)).sum(dim=0)
            wts = wts * g
            wts[ref] = wts[ref] + moved
        lp = _laplacian_pyramid(x, levels)
        gp = _gaussian_pyramid(wts[:, None], levels)
        blended = [(lap * g).sum(dim=0, keepdim=True) for lap, g in zip(lp, gp, strict=True)]
        out = _collapse(blended)[0]
    return out.clamp(0.0, 1.0)


def fuse_exposures(
    images: Sequence[torch.Tensor],
    *,
    method: str = "mertens2007",
    contrast: float = 1.0,
    saturation: float = 1.0,
    exposedness: float = 1.0,
    sigma: float = 0.2,
    levels: int | None = None,
    **options: Any,
) -> torch.Tensor:
    """Fuse display-encoded brackets (list of (3, H, W)) with a method of :data:`FUSION` (see
    :func:`fuse_mertens2007` for the options)."""
    return FUSION.get(method)(
        images,
        contrast=contrast,
        saturation=saturation,
        exposedness=exposedness,
        sigma=sigma,
        levels=levels,
        **options,
    )


# ------------------------------------------------------------------------------------------ night mode

_NIGHT_WHITE = 8.0
_NIGHT_CONTRAST = 1.5


def night_recipe() -> Recipe:
    """A low-light rendering that keeps a night looking like night.

    Compared with the default recipe: auto exposure aims the scene key at 0.05 instead of 0.18 (about
    −1.8 EV: the mean stays dark) and may lift a dark scene by at most 4 EV; a filmic curve with a longer
    shoulder (white 8) and more contrast (1.5: a deeper toe, black shadows); half the local tone mapping
    strength and a smaller shadow boost (no grey, flattened night); stronger denoising (luma 1.5, chroma
    3: chroma noise is what makes a night shot look cheap); gentler sharpening (not to sharpen the noise).
    """
    base = Recipe()
    return base.replace(
        name="night",
        exposure=Stage.of("auto", ev=0.0, target=0.05, max_ev=4.0, highlight_white=_NIGHT_WHITE),
        tone_curve=Stage.of("filmic", white=_NIGHT_WHITE, contrast=_NIGHT_CONTRAST),
        local_tone=Stage.of(
            "exposure_fusion",
            strength=0.3,
            ev_boost=0.75,
            curve_options=(("contrast", _NIGHT_CONTRAST), ("white", _NIGHT_WHITE)),
        ),
        denoise=Stage.of("bilateral", luma_strength=1.5, chroma_strength=3.0, chroma_radius=3),
        sharpen=Stage.of("usm", amount=0.25, radius=1.0),
    )


def night_mode(
    burst: Burst | Sequence[RawFrame],
    *,
    recipe: Recipe | str | None = None,
    merge: str = "auto",
    reference: int | None = None,
    alignment: Any = "auto",
    device: torch.device | str | None = None,
) -> Image:
    """Night mode: merge a long burst (noise-aware, aligned, with motion rejection) and develop it with
    :func:`night_recipe` (or ``recipe``).

    ``merge``: ``"burst"`` (HDR+-style :func:`obscura.burst.merge.merge_burst`), ``"brackets"``
    (:func:`merge_brackets`: an aligned inverse-variance mean with motion rejection, which also takes
    bursts of mixed exposures), or ``"auto"`` (``merge_burst`` when it is available and the exposures
    are equal, else ``merge_brackets``). ``alignment`` is passed to :func:`merge_brackets`.
    """
    from obscura.isp.develop import develop

    b = check_burst(burst)
    if merge not in ("auto", "burst", "brackets"):
        raise InvalidParameter(f"merge must be 'auto', 'burst' or 'brackets'; got {merge!r}")
    r = night_recipe() if recipe is None else recipe
    merge_burst = None
    if merge in ("auto", "burst"):
        try:
            from obscura.burst.merge import merge_burst
        except ImportError:
            if merge == "burst":
                raise InvalidParameter("merge='burst' needs obscura.burst.merge, which is not available") from None
    if merge == "auto" and merge_burst is not None:
        try:
            e = [exposure_scale(m) for m in b.metas]
            equal = max(e) <= min(e) * 1.001
        except InvalidParameter:
            equal = True  # no exposure times: a plain burst
        if not equal:
            merge_burst = None
    if len(b) == 1:
        merged = b[0]
    elif merge_burst is not None and merge != "brackets":
        merged = merge_burst(b, reference=reference) if reference is not None else merge_burst(b)
    else:
        if any(m.exposure_time is None for m in b.metas):
            b = Burst(b.data, tuple(m.replace(exposure_time=1.0) for m in b.metas))
        merged = merge_brackets(b, reference=reference, alignment=alignment)
    return develop(merged, recipe=r, device=device)
