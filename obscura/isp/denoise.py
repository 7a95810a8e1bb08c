"""Denoising of the scene-linear image (after colour, before tone), in a luma/chroma opponent space.

The noise model is the DNG one, per colour plane of the camera: ``variance = a·x + b`` for ``x`` the
signal normalised to [0, 1]. White balance multiplies plane c by ``g_c`` (so a → g·a, b → g²·b) and
the opponent transform mixes the planes; because the model is linear in the signal, the variance of
each opponent channel is again linear in the (noisy) RGB values and is evaluated per pixel. The
camera → working-space matrix is not known to this stage; pass ``matrix`` to include it, otherwise it
is taken as the identity (the variance is then underestimated by roughly the matrix's noise gain).

Without a profile or an explicit ``sigma``, the profile is estimated from the image (robust median
of the finest Haar diagonal band, Donoho & Johnstone 1994, in bins of brightness).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch.nn import functional as F  # noqa: N812

from obscura.core.errors import InvalidParameter, ShapeError
from obscura.core.registry import Registry
from obscura.core.validate import check_image, check_number
from obscura.isp import _filters
from obscura.isp._filters import bin2, blur_separable, pad_replicate, parallel_map, parallel_threads, strip_map

__all__ = [
    "DENOISE",
    "OPPONENT",
    "denoise",
    "denoise_bilateral",
    "denoise_nlm",
    "estimate_noise_sigma",
    "estimate_noise_profile",
]

DENOISE = Registry("denoise")

# Linear opponent transform: Y (mean of R, G, B), C1 (red − blue), C2 (green − magenta).
OPPONENT = np.array([[1 / 3, 1 / 3, 1 / 3], [1 / 2, 0.0, -1 / 2], [-1 / 4, 1 / 2, -1 / 4]])
_OPPONENT_INV = np.linalg.inv(OPPONENT)
_LOG2E = 1.4426950408889634
_MAD = 0.6744897501960817  # median |N(0, 1)|
_NLM_H = 0.3
_BOX3 = torch.full((3,), 1.0 / 3.0)


# --------------------------------------------------------------------------------------------- checks


def _check_image(x: torch.Tensor, name: str = "image") -> None:
    check_image(x, name=name, min_size=2)


_num = check_number


def _mix(m: np.ndarray | torch.Tensor, x, *, out: torch.Tensor | None = None) -> torch.Tensor:
    """A (3, 3) matrix times a (3, h, w) tensor (or 3 planes), as multiply-adds (cheap on small strips)."""
    if out is None:
        out = torch.empty((3, *x[0].shape), dtype=x[0].dtype, device=x[0].device)
    for i in range(3):
        torch.mul(x[0], float(m[i][0]), out=out[i])
        out[i].add_(x[1], alpha=float(m[i][1])).add_(x[2], alpha=float(m[i][2]))
    return out


# ------------------------------------------------------------------------------------ noise estimation


_BLOCK = 8  # pixels per side of the blocks whose Haar energy is measured
_QUANTILE = 0.1


def _block_stats(x: torch.Tensor, max_blocks: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per channel and 8×8 block: the mean, and the mean square of the finest diagonal Haar band.

    HH = (a − b − c + d)/2 over each 2×2 has the noise's variance for white noise and is nearly blind
    to smooth signal; texture only adds energy.
    """
    B = _BLOCK
    H, W = x.shape[-2:]
    s = max(1, math.ceil(math.sqrt(H * W / (B * B) / max_blocks)))
    nh, nw = H // (B * s), W // (B * s)
    if nh * nw < 64:
        raise ShapeError(f"image too small to estimate its noise (needs ≥ 64 blocks of 8×8); got {tuple(x.shape)}")
    # every s-th block in each direction, gathered without copying the rest of the frame
    ri = (torch.arange(nh, device=x.device)[:, None] * (B * s) + torch.arange(B, device=x.device)).reshape(-1)
    ci = (torch.arange(nw, device=x.device)[:, None] * (B * s) + torch.arange(B, device=x.device)).reshape(-1)
    t = x[:, ri][:, :, ci].reshape(3, nh, B, nw, B)
    a, b = t[:, :, 0::2, :, 0::2], t[:, :, 0::2, :, 1::2]
    c, d = t[:, :, 1::2, :, 0::2], t[:, :, 1::2, :, 1::2]
    hh = (a - b - c + d) / 2
    energy = (hh * hh).mean(dim=(2, 4)).reshape(3, -1)
    mean = t.mean(dim=(2, 4)).reshape(3, -1)
    return mean, energy


def _chi2_quantile_ratio(k: int, q: float) -> float:
    """Quantile q of χ²_k / k (Wilson & Hilferty 1931 approximation)."""
    from statistics import NormalDist

    z = NormalDist().inv_cdf(q)
    c = 2.0 / (9.0 * k)
    return (1.0 - c + z * math.sqrt(c)) ** 3


def _low_quantile_variance(energy: torch.Tensor) -> torch.Tensor:
    """Noise variance from block energies: their 10 % quantile over that of pure noise (χ²₁₆/16).

    Texture only raises a block's energy, so the low quantile comes from the flattest blocks.
    """
    k = (_BLOCK // 2) ** 2
    return torch.quantile(energy.float(), _QUANTILE, dim=-1) / _chi2_quantile_ratio(k, _QUANTILE)


def estimate_noise_sigma(x: torch.Tensor, *, max_blocks: int = 1 << 18) -> torch.Tensor:
    """Per-channel noise standard deviation (3,) of an image with signal-independent noise.

    Robust estimate in the spirit of Donoho & Johnstone (1994) (noise from the finest diagonal wavelet
    band) with flat-region selection: the low quantile of 8×8-block Haar energies, bias-corrected.
    """
    _check_image(x)
    _, energy = _block_stats(x, max_blocks)
    return _low_quantile_variance(energy).sqrt()


def estimate_noise_profile(
    x: torch.Tensor, *, bins: int = 8, max_blocks: int = 1 << 18
) -> tuple[tuple[float, float], tuple[float, float], tuple[float, float]]:
    """Per-channel signal-dependent noise ``variance = a·x + b`` fitted to the image.

    Blocks are sorted by brightness into ``bins`` equal-count bins; in each the noise variance is
    estimated as in :func:`estimate_noise_sigma`; a, b ≥ 0 are then fitted by least squares
    (a Poisson–Gaussian fit in the spirit of Foi et al. 2008).
    """
    _check_image(x)
    bins = int(_num("bins", bins, 2, 64))
    mean, energy = _block_stats(x, max_blocks)
    n = mean.shape[1] // bins * bins
    if n < bins * 16:
        raise ShapeError(f"image too small to estimate a noise profile in {bins} bins; got {tuple(x.shape)}")
    out = []
    for c in range(3):
        order = torch.argsort(mean[c])[-n:]
        mb = mean[c][order].reshape(bins, -1).median(dim=1).values.double().clamp_min(0.0)
        vb = _low_quantile_variance(energy[c][order].reshape(bins, -1)).double()
        A = torch.stack([mb, torch.ones_like(mb)], 1)
        sol = torch.linalg.lstsq(A.cpu(), vb[:, None].cpu()).solution[:, 0]
        a, b = float(sol[0]), float(sol[1])
        if b < 0:  # refit through the origin
            a, b = float((mb * vb).sum() / (mb * mb).sum().clamp_min(1e-30)), 0.0
        if a < 0:
            a, b = 0.0, float(vb.mean())
        out.append((a, b))
    return tuple(out)  # type: ignore[return-value]


# -------------------------------------------------------------------------------------- noise model


class _Variance:
    """Per-pixel noise variance of luma and of chroma (mean of C1 and C2): ``V = A @ rgb + B`` or a map."""

    def __init__(self, A: np.ndarray, B: np.ndarray, vmap: torch.Tensor | None = None) -> None:
        # rows: Y, and the mean of the two chroma channels
        G = np.array([[1.0, 0.0, 0.0], [0.0, 0.5, 0.5]])
        self.A, self.B = G @ A, G @ B
        self.vmap = None if vmap is None else torch.stack([vmap[0], (vmap[1] + vmap[2]) * 0.5])

    def of(self, x: torch.Tensor, vmap: torch.Tensor | None = None, *, scale: float = 1.0) -> torch.Tensor:
        """Variance (2, h, w) [luma, chroma] for the RGB strip ``x`` (``vmap``: the strip of a map)."""
        if vmap is not None:
            return vmap * scale if scale != 1.0 else vmap
        floor = max(float(self.B.min()), 1e-12) * scale
        xc = x.clamp_min(0.0)
        v = torch.empty((2, *x.shape[1:]), dtype=x.dtype, device=x.device)
        for k in range(2):
            a = self.A[k] * scale
            torch.mul(xc[0], float(a[0]), out=v[k])
            v[k].add_(xc[1], alpha=float(a[1])).add_(xc[2], alpha=float(a[2])).add_(float(self.B[k]) * scale)
        return v.clamp_min_(floor)


def _noise_model(
    x: torch.Tensor,
    *,
    noise_profile,
    sigma,
    iso: float | None,
    gains,
    matrix,
) -> _Variance:
    T2 = OPPONENT**2
    if sigma is not None:
        if isinstance(sigma, torch.Tensor) and sigma.ndim >= 2:
            s = sigma.to(device=x.device, dtype=x.dtype)
            if s.ndim == 2:
                s = s.expand(3, -1, -1)
            if s.shape != x.shape:
                raise ShapeError(
                    f"sigma map must be (H, W) or (3, H, W) like the image {tuple(x.shape)}; got {tuple(sigma.shape)}"
                )
            if not bool(torch.isfinite(s).all()) or bool((s < 0).any()):
                raise InvalidParameter("sigma map must be finite and ≥ 0")
            vmap = _mix(T2, s * s).clamp_min_(1e-12)
            return _Variance(np.zeros((3, 3)), np.full(3, 1e-12), vmap)
        sv = sigma.detach().cpu() if isinstance(sigma, torch.Tensor) else sigma
        sv = np.asarray(sv, dtype=np.float64).reshape(-1)
        if sv.size == 1:
            sv = np.repeat(sv, 3)
        if sv.size != 3 or not np.all(np.isfinite(sv)) or np.any(sv < 0) or np.any(sv > 10):
            raise InvalidParameter(f"sigma must be a number, 3 numbers in [0, 10] or a map; got {sigma!r}")
        return _Variance(np.zeros((3, 3)), T2 @ (sv**2) + 1e-12)

    if noise_profile is not None:
        prof = np.asarray(noise_profile, dtype=np.float64)
        if prof.ndim != 2 or prof.shape[1] != 2 or prof.shape[0] < 1 or not np.all(np.isfinite(prof)):
            raise InvalidParameter(f"noise_profile must be ((a, b), ...) per colour plane; got {noise_profile!r}")
        if np.any(prof < 0):
            raise InvalidParameter(f"noise_profile values must be ≥ 0; got {noise_profile!r}")
        # 3 planes: R, G, B; otherwise (1 plane, or 4 CFA sites of unknown order) the mean of all
        prof = prof if prof.shape[0] == 3 else np.repeat(prof.mean(0, keepdims=True), 3, 0)
        a, b = prof[:, 0], prof[:, 1]
    else:
        try:
            est = estimate_noise_profile(x)
            a, b = np.array([e[0] for e in est]), np.array([e[1] for e in est])
        except ShapeError:  # too small for a profile: one σ per channel, from all 2×2 blocks (Donoho 1994)
            h, w = x.shape[-2] // 2 * 2, x.shape[-1] // 2 * 2
            hh = (x[:, 0:h:2, 0:w:2] - x[:, 0:h:2, 1:w:2] - x[:, 1:h:2, 0:w:2] + x[:, 1:h:2, 1:w:2]) / 2
            sig = hh.abs().reshape(3, -1).median(dim=1).values / _MAD
            a, b = np.zeros(3), np.asarray(sig.double().cpu()) ** 2
        if iso is not None:
            # heuristic floor following ISO: a clean-looking estimate on a high-ISO frame is texture-limited
            isof = _num("iso", iso, 0.0, 1e7)
            b = np.maximum(b, (2e-4 * math.sqrt(max(isof, 1.0) / 100.0)) ** 2)
        gains = None  # the estimate is already in the image's units
    g = np.ones(3) if gains is None else np.asarray(torch.as_tensor(gains).detach().cpu(), dtype=np.float64).reshape(-1)
    if g.size != 3 or not np.all(np.isfinite(g)) or np.any(g <= 0):
        raise InvalidParameter(f"gains must be 3 positive numbers; got {gains!r}")
    alpha, beta = g * a, g * g * b  # after white balance, in the units of the WB'd signal
    M = np.eye(3) if matrix is None else np.asarray(torch.as_tensor(matrix).detach().cpu(), dtype=np.float64)
    if M.shape != (3, 3) or not np.all(np.isfinite(M)):
        raise InvalidParameter(f"matrix must be a finite (3, 3); got shape {M.shape}")
    # camera noise is independent per channel; the matrix correlates it, so the opponent variance is
    # V_i = Σ_j (T·M)_ij² (α_j (M⁻¹x)_j + β_j), not T² applied to the working-space variances
    TM2 = (OPPONENT @ M) ** 2
    return _Variance(TM2 @ np.diag(alpha) @ np.linalg.inv(M), TM2 @ beta + 1e-12)


# -------------------------------------------------------------------------------------- building blocks


def _offsets(r: int) -> list[tuple[int, int]]:
    return [(dy, dx) for dy in range(-r, r + 1) for dx in range(-r, r + 1) if (dy, dx) != (0, 0)]


def _bilateral(
    vals: torch.Tensor, feats: torch.Tensor, inv: torch.Tensor | None, *, radius: int, spatial_sigma: float
) -> torch.Tensor:
    """Cross bilateral filter (Tomasi & Manduchi 1998) of ``vals`` (C, h, w).

    Weight G_s(q − p)·exp(−‖f_q − f_p‖²·(inv_p + inv_q)/2) with ``feats`` (F, h, w) and
    ``inv`` = 1/(2σ_r²) per pixel (``None``: 1 everywhere). The weight is symmetric in p and q, so each
    is computed once for the pair of shifts ±d (half the exponentials).
    """
    h, w = vals.shape[-2:]
    r = radius
    Hp, Wp = h + 2 * r, w + 2 * r
    vp, fp = pad_replicate(vals, r), pad_replicate(feats, r)
    # exp(z) = 2^(z·log2 e): exp2 is ~3× faster on CPU; below 2^-100 a weight is nil, and clamping there
    # avoids the slow path of denormal results
    nip = None if inv is None else pad_replicate(inv * (-0.5 * _LOG2E), r)
    num, den = vals.clone(), torch.ones_like(vals[0])
    for dy, dx in _offsets(r):
        if dy < 0 or (dy == 0 and dx < 0):
            continue
        g = math.exp(-(dy * dy + dx * dx) / (2 * spatial_sigma**2)) if spatial_sigma > 0 else 1.0
        oy, ox, ey, ex = max(0, -dy), max(0, -dx), Hp - max(0, dy), Wp - max(0, dx)
        d2 = fp[0, oy + dy : ey + dy, ox + dx : ex + dx] - fp[0, oy:ey, ox:ex]
        d2.mul_(d2)
        for f in range(1, fp.shape[0]):
            d = fp[f, oy + dy : ey + dy, ox + dx : ex + dx] - fp[f, oy:ey, ox:ex]
            d2.addcmul_(d, d)
        if nip is None:
            wr = d2.clamp_max_(100.0 / _LOG2E).mul_(-_LOG2E).exp2_()
        else:
            wr = (nip[oy:ey, ox:ex] + nip[oy + dy : ey + dy, ox + dx : ex + dx]).mul_(d2)
            wr = wr.clamp_min_(-100.0).exp2_()
        wf = wr[r - oy : r - oy + h, r - ox : r - ox + w]  # pair (p, p + d), stored at p
        num.addcmul_(vp[..., r + dy : r + dy + h, r + dx : r + dx + w], wf, value=g)
        den.add_(wf, alpha=g)
        wb = wr[r - dy - oy : r - dy - oy + h, r - dx - ox : r - dx - ox + w]  # pair (p − d, p)
        num.addcmul_(vp[..., r - dy : r - dy + h, r - dx : r - dx + w], wb, value=g)
        den.add_(wb, alpha=g)
    return num.div_(den)


def _up2_rows(lowp: torch.Tensor, la: int, lb: int) -> torch.Tensor:
    """Rows [2·la, 2·lb) of the ×2 bilinear upsampling (align_corners=False) of ``low`` (C, h, w).

    ``lowp`` is ``low`` replicate-padded by one row and column on each side. Each output is ¾ of the
    nearest low-resolution sample plus ¼ of the next one along each axis: two lerps per axis.
    """
    C, w2 = lowp.shape[0], lowp.shape[-1]
    n = lb - la
    c = lowp[:, la + 1 : lb + 1]
    rows = torch.empty((C, 2 * n, w2), dtype=lowp.dtype, device=lowp.device)
    torch.lerp(c, lowp[:, la:lb], 0.25, out=rows[:, 0::2])
    torch.lerp(c, lowp[:, la + 2 : lb + 2], 0.25, out=rows[:, 1::2])
    out = torch.empty((C, 2 * n, 2 * (w2 - 2)), dtype=lowp.dtype, device=lowp.device)
    cc = rows[..., 1:-1]
    torch.lerp(cc, rows[..., :-2], 0.25, out=out[..., 0::2])
    torch.lerp(cc, rows[..., 2:], 0.25, out=out[..., 1::2])
    return out


def _nlm(vals: torch.Tensor, feats: torch.Tensor, *, search: int, patch: int, h2: float) -> torch.Tensor:
    """Non-local means (Buades, Coll, Morel 2005) of ``vals`` (C, h, w) with noise-normalised ``feats``.

    ``feats`` (F, h, w) have unit noise variance, so the patch distance (mean of Δf² over the patch and
    the features) is ≈ 2 for pure noise; weights exp(−max(d² − 2, 0)/h2), centre weight = best neighbour.
    """
    h, w = vals.shape[-2:]
    R = search + patch
    vp, fp = pad_replicate(vals, R), pad_replicate(feats, R)
    core = (slice(search, search + h + 2 * patch), slice(search, search + w + 2 * patch))
    base = fp[(..., *core)]
    num, den = torch.zeros_like(vals), torch.zeros_like(vals[0])
    wmax = torch.zeros_like(den)
    scale = 1.0 / feats.shape[0]
    box = torch.full((2 * patch + 1,), 1.0 / (2 * patch + 1), dtype=vals.dtype, device=vals.device)
    for dy, dx in _offsets(search):
        sl = (slice(search + dy, search + dy + h + 2 * patch), slice(search + dx, search + dx + w + 2 * patch))
        d = fp[(..., *sl)] - base
        d2 = (d * d).sum(0).mul_(scale)
        if patch > 0:
            d2 = blur_separable(d2, box)[patch:-patch, patch:-patch]
        wgt = d2.sub_(2.0).clamp_min_(0.0).mul_(-1.0 / h2).exp_()
        num.addcmul_(vp[(..., slice(R + dy, R + dy + h), slice(R + dx, R + dx + w))], wgt)
        den.add_(wgt)
        wmax = torch.maximum(wmax, wgt)
    wmax.clamp_min_(1e-6)
    return (num + vals * wmax) / (den + wmax)


def _luma_chroma(
    x: torch.Tensor,
    model: _Variance,
    *,
    luma_fn,
    luma_halo: int,
    chroma_fn,
    chroma_halo: int,
    chroma_strength: float,
) -> torch.Tensor:
    """Shared driver: luma filtered at full resolution, chroma on the 2×2-binned image plus detail coring.

    ``luma_fn(Y, V_Y)`` → Y' on a strip; ``chroma_fn(opponent, variance)`` → (C1', C2') on a binned strip.
    The chroma detail lost by binning, r = C − up2(bin(C)), is put back with the empirical Wiener
    gain max(0, 1 − 1.5·σ_r²/⟨r²⟩₃ₓ₃), so nothing is lost where the detail stands above the noise.
    """
    T, Ti = OPPONENT, _OPPONENT_INV
    cs = chroma_strength
    H, W = x.shape[-2:]
    He, We = H + H % 2, W + W % 2
    even = (He, We) == (H, W)
    xe = x if even else F.pad(x[None], (0, We - W, 0, He - H), mode="replicate")[0]
    vmap_e = model.vmap
    if vmap_e is not None and not even:
        vmap_e = F.pad(vmap_e[None], (0, We - W, 0, He - H), mode="replicate")[0]

    lows = None
    if chroma_fn is not None and cs > 0:
        xl = bin2(xe)
        vl = bin2(vmap_e) / 4 if vmap_e is not None else None

        def low(s: torch.Tensor, *vm: torch.Tensor) -> torch.Tensor:
            return chroma_fn(_mix(T, s), vm[0] if vm else model.of(s, scale=0.25))

        c_low = strip_map(low, *((xl,) if vl is None else (xl, vl)), halo=chroma_halo)
        c_bin = _mix(T, xl)[1:]
        lows = pad_replicate(torch.cat([c_low, c_bin]), 1)  # both chroma versions, upsampled together
        del c_low, c_bin
    # noise variance of the detail band C − up2(bin(C)) for white noise: (1 + 100/1024 − 2·9/64)·V
    hf = 0.81640625 * 1.5 * cs * cs

    rows = max(8, _filters._STRIP_PIXELS // We) // 2 * 2
    out = torch.empty_like(xe)
    halo = max(luma_halo, 2) + max(luma_halo, 2) % 2  # even: strips start on a row of the 2×2 binning
    cpu = x.device.type == "cpu"

    def one(top: int) -> None:
        bot = min(He, top + rows) if cpu else He
        lo, hi = max(0, top - halo), min(He, bot + halo)
        s = xe[:, lo:hi]
        o = _mix(T, s)
        v = model.of(s, vmap_e[:, lo:hi] if vmap_e is not None else None)
        y = luma_fn(o[0], v[0]) if luma_fn is not None else o[0]
        c = o[1:]
        if lows is not None:
            up = _up2_rows(lows, lo // 2, hi // 2)
            resid = torch.sub(c, up[2:], out=up[2:])
            e = torch.mul(resid[0], resid[0]).addcmul_(resid[1], resid[1])
            e = blur_separable(e, _BOX3.to(resid)).clamp_min_(1e-20)
            kk = torch.mul(v[1], -2.0 * hf).div_(e).add_(1.0).clamp_min_(0.0)
            c = up[:2].addcmul_(resid, kk)
        k0, k1 = top - lo, bot - lo
        _mix(Ti, (y[k0:k1], c[0, k0:k1], c[1, k0:k1]), out=out[:, top:bot])

    parallel_map(one, range(0, He, rows if cpu else He), threads=parallel_threads(x.device))
    return out if even else out[:, :H, :W].contiguous()


def _chroma_features(o: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Opponent channels in units of their noise σ (luma; chroma with the mean chroma variance)."""
    fy = o[:1] * torch.rsqrt(v[:1])
    fc = o[1:] * torch.rsqrt(v[1:2])
    return torch.cat([fy, fc])


@DENOISE.register("bilateral")
def denoise_bilateral(
    x: torch.Tensor,
    *,
    noise_profile=None,
    sigma=None,
    iso: float | None = None,
    gains=None,
    matrix=None,
    luma_strength: float = 1.0,
    chroma_strength: float = 1.0,
    luma_radius: int = 1,
    chroma_radius: int = 2,
) -> torch.Tensor:
    """Fast luma/chroma bilateral denoising (Tomasi & Manduchi 1998), noise-profile driven.

    Luma: a (2·``luma_radius``+1)² bilateral at full resolution (spatial σ = radius) whose range
    kernel follows the per-pixel noise: σ_r = 2·``luma_strength``·σ_noise. Chroma: a cross bilateral
    (guided by luma and chroma, σ_r = 2.5·``chroma_strength``·σ_noise) on the 2×2-binned image, which
    has 4× less noise and doubles the footprint, plus Wiener coring of the chroma detail lost by
    binning. See the module docstring for the noise model.
    """
    _check_image(x)
    ls = _num("luma_strength", luma_strength, 0.0, 10.0)
    cs = _num("chroma_strength", chroma_strength, 0.0, 10.0)
    lr = int(_num("luma_radius", luma_radius, 0, 5))
    cr = int(_num("chroma_radius", chroma_radius, 0, 5))
    model = _noise_model(x, noise_profile=noise_profile, sigma=sigma, iso=iso, gains=gains, matrix=matrix)
    if ls == 0.0 and cs == 0.0:
        return x.clone()
    inv_luma = 1.0 / (2.0 * (2.0 * max(ls, 1e-6)) ** 2)
    rng_c = 1.0 / (math.sqrt(2.0) * 2.5 * max(cs, 1e-6))

    def luma(y: torch.Tensor, vy: torch.Tensor) -> torch.Tensor:
        return _bilateral(y[None], y[None], inv_luma / vy, radius=lr, spatial_sigma=float(lr))[0]

    def chroma(o: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        feats = _chroma_features(o, v).mul_(rng_c)
        return _bilateral(o[1:], feats, None, radius=cr, spatial_sigma=float(cr))

    return _luma_chroma(
        x,
        model,
        luma_fn=luma if ls > 0 and lr > 0 else None,
        luma_halo=lr,
        chroma_fn=chroma if cr > 0 else None,
        chroma_halo=cr,
        chroma_strength=cs,
    )


@DENOISE.register("nlm")
def denoise_nlm(
    x: torch.Tensor,
    *,
    noise_profile=None,
    sigma=None,
    iso: float | None = None,
    gains=None,
    matrix=None,
    luma_strength: float = 1.0,
    chroma_strength: float = 1.0,
    search_radius: int = 3,
    patch_radius: int = 1,
) -> torch.Tensor:
    """Non-local means (Buades, Coll, Morel 2005) on luma (full resolution) and chroma (2×2-binned).

    Patch distances are computed for every shift of a (2·``search_radius``+1)² window as a box filter
    of squared differences normalised by the per-pixel noise variance; h² = (0.3·strength)².
    Chroma detail lost by binning is restored by Wiener coring as in ``bilateral``. Slower than
    ``bilateral`` (about 25 full-frame passes per shift).
    """
    _check_image(x)
    ls = _num("luma_strength", luma_strength, 0.0, 10.0)
    cs = _num("chroma_strength", chroma_strength, 0.0, 10.0)
    sr = int(_num("search_radius", search_radius, 1, 10))
    pr = int(_num("patch_radius", patch_radius, 0, 5))
    model = _noise_model(x, noise_profile=noise_profile, sigma=sigma, iso=iso, gains=gains, matrix=matrix)
    if ls == 0.0 and cs == 0.0:
        return x.clone()
    h2y, h2c = (max(1e-6, (_NLM_H * s) ** 2) for s in (ls, cs))

    def luma(y: torch.Tensor, vy: torch.Tensor) -> torch.Tensor:
        return _nlm(y[None], (y * torch.rsqrt(vy))[None], search=sr, patch=pr, h2=h2y)[0]

    def chroma(o: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return _nlm(o[1:], _chroma_features(o, v), search=sr, patch=pr, h2=h2c)

    return _luma_chroma(
        x,
        model,
        luma_fn=luma if ls > 0 else None,
        luma_halo=sr + pr,
        chroma_fn=chroma,
        chroma_halo=sr + pr,
        chroma_strength=cs,
    )


def denoise(
    rgb: torch.Tensor,
    *,
    method: str = "bilateral",
    noise_profile=None,
    sigma=None,
    iso: float | None = None,
    luma_strength: float = 1.0,
    chroma_strength: float = 1.0,
    gains=None,
    **options,
) -> torch.Tensor:
    """Denoise a scene-linear (3, H, W) image with the named method (:data:`DENOISE`).

    ``noise_profile``: ((a, b), ...) per camera colour plane, variance = a·x + b (DNG NoiseProfile);
    ``gains``: the white-balance gains applied since (3,); ``sigma``: instead, the noise standard
    deviation as a number, 3 numbers (R, G, B) or a per-pixel (H, W) / (3, H, W) map; with neither,
    the profile is estimated from the image (``iso`` then sets a floor).
    """
    return DENOISE.get(method)(
        rgb,
        noise_profile=noise_profile,
        sigma=sigma,
        iso=iso,
        gains=gains,
        luma_strength=luma_strength,
        chroma_strength=chroma_strength,
        **options,
    )
