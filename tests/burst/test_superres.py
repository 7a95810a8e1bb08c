"""Tests of obscura.burst.superres (Wronski et al. 2019 handheld super-resolution).

The bursts are rendered analytically: a straight edge integrated exactly over every (box) pixel at each frame's
sub-pixel shift (obscura.lab.charts.edge.render_edge), so the frames are true, aliased samplings of one scene.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.nn import functional as F  # noqa: N812

from obscura.burst.superres import (
    accumulate_kernel_regression,
    anisotropic_kernels,
    normalize_accumulation,
    structure_tensor,
    super_resolve,
    super_resolve_frame,
)
from obscura.core.cfa import cfa_index_map, mosaic_rgb
from obscura.core.errors import InvalidParameter, ShapeError, UnknownMethod
from obscura.core.types import BAYER_PATTERNS, Burst, RawFrame, RawMeta
from obscura.lab.charts.edge import render_edge

GAINS = (0.55, 1.0, 0.75)  # camera RGB of a neutral scene, not white-balanced


def _shifts(n: int, seed: int, amp: float = 2.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    s = (torch.rand(n, 2, generator=g, dtype=torch.float64) * 2 - 1) * amp
    s[0] = 0
    return s


def edge_burst(n=16, size=(128, 128), cfa="RGGB", seed=0, a=2e-5, b=1e-7, model="A", lum=None):
    """A handheld burst of a 5° slanted edge: frame i shows at p + shift_i what frame 0 shows at p."""
    h, w = size
    sh = _shifts(n, seed)
    g = torch.Generator().manual_seed(seed + 1)
    frames = []
    for i in range(n):
        dy, dx = float(sh[i, 0]), float(sh[i, 1])
        if lum is None:
            cov = render_edge((h, w), angle_deg=5.0, centre=((w - 1) / 2 + dx, (h - 1) / 2 + dy))
            y = 0.15 + 0.6 * torch.from_numpy(cov)
        else:
            y = torch.full((h, w), lum, dtype=torch.float64)
        rgb = torch.stack([gg * y for gg in GAINS]).float()
        m = mosaic_rgb(rgb, cfa=cfa).double()
        noisy = a * torch.poisson(m / a, generator=g) + math.sqrt(b) * torch.randn(
            m.shape, generator=g, dtype=torch.float64
        )
        frames.append((noisy * 4000 + 100).round().clamp(0, 4095).float())
    meta = RawMeta(
        cfa=cfa, black_level=(100.0,) * 4, white_level=4100.0, noise_profile=((a, b),) * 3, make="T", model=model
    )
    return Burst(torch.stack(frames), (meta,) * n), sh


# ------------------------------------------------------------------------------------ pieces


def test_structure_tensor_matches_numpy_gradients():
    rng = np.random.default_rng(0)
    img = rng.random((20, 24)).astype(np.float32)
    t = structure_tensor(torch.from_numpy(img), noise_std=1.0, sigma=0.0).numpy()
    gy, gx = np.gradient(img.astype(np.float64))  # central differences inside
    s = 2.0  # gradients in units of the central difference's noise σ/√2 with σ = 1
    np.testing.assert_allclose(t[0, 1:-1, 1:-1], (gy * gy * s)[1:-1, 1:-1], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(t[1, 1:-1, 1:-1], (gx * gy * s)[1:-1, 1:-1], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(t[2, 1:-1, 1:-1], (gx * gx * s)[1:-1, 1:-1], rtol=1e-4, atol=1e-6)


def test_anisotropic_kernel_is_long_along_the_edge_and_round_when_flat():
    # a tensor of a pure x gradient (vertical edge) and a flat one
    t = torch.tensor([[0.0, 0.0], [0.0, 0.0], [400.0, 0.0]]).reshape(3, 1, 2)
    p = anisotropic_kernels(t, k_detail=0.3, k_denoise=3.0, k_stretch=4.0, k_shrink=2.0, d_th=1.0, d_tr=1.5)
    cov_edge = np.linalg.inv(np.array([[p[0, 0, 0], p[1, 0, 0]], [p[1, 0, 0], p[2, 0, 0]]], dtype=np.float64))
    # across (x): 0.3 / (2·2) = 0.075; along (y): 0.3·4·2 = 2.4 (A = 2 for a rank-one tensor)
    np.testing.assert_allclose(np.sqrt(np.diag(cov_edge)), [2.4, 0.075], rtol=1e-4)
    np.testing.assert_allclose(p[:, 0, 1].numpy(), [1 / 0.9**2, 0.0, 1 / 0.9**2], rtol=1e-4)  # flat: 0.3·3 round


def test_accumulation_of_a_constant_mosaic_is_exact(device):
    h, w = 8, 10
    mosaic = torch.full((h, w), 0.37, device=device)
    ch = cfa_index_map("GRBG", h, w, device=device)
    yy, xx = torch.meshgrid(
        torch.linspace(0, h - 1, 13, device=device), torch.linspace(0, w - 1, 9, device=device), indexing="ij"
    )
    prec = torch.tensor([4.0, 1.0, 3.0], device=device)[:, None].expand(3, yy.numel()).contiguous()
    acc = accumulate_kernel_regression(mosaic, ch, yy.reshape(-1), xx.reshape(-1), prec)
    out = normalize_accumulation(acc)
    torch.testing.assert_close(out, torch.full_like(out, 0.37), rtol=1e-6, atol=1e-6)
    assert bool((acc[3:6] > 0).all())  # every colour has a sample in each 3×3 neighbourhood


def test_accumulation_bad_shapes():
    m = torch.zeros(8, 8)
    with pytest.raises(ShapeError, match="channels"):
        accumulate_kernel_regression(
            m, torch.zeros(4, 4, dtype=torch.long), torch.zeros(3), torch.zeros(3), torch.zeros(3, 3)
        )
    with pytest.raises(ShapeError, match="precision"):
        accumulate_kernel_regression(
            m, torch.zeros(8, 8, dtype=torch.long), torch.zeros(3), torch.zeros(3), torch.zeros(3, 4)
        )


# ------------------------------------------------------------------------------------ whole


@pytest.mark.parametrize("cfa", BAYER_PATTERNS)
def test_flat_burst_every_bayer_pattern(cfa):
    burst, _ = edge_burst(n=4, size=(48, 48), cfa=cfa, lum=0.5)
    out = super_resolve(burst, scale=1.5)
    assert out.shape == (3, 72, 72)
    want = torch.tensor(GAINS)[:, None, None] * 0.5
    assert float((out - want).abs().mean()) < 2e-3
    assert float((out - want).abs().max()) < 0.02


def test_super_resolution_beats_single_frame_mtf50():
    """×2 from 16 frames vs one frame demosaiced (Menon 2007) and upscaled ×2 bicubic: the e-SFR MTF50 of the
    edge (same output grid), with the estimated motion and the default options (robustness on), on three
    handheld bursts. Measured: +32.3 %, +30.1 %, +31.9 % (0.221 → 0.292 cycles/output px on the first); +10 %
    to +20 % before the motion along the edge came from the frame's global motion."""
    from obscura.burst.reference import normalized_frames
    from obscura.isp.demosaic import demosaic
    from obscura.lab.measure.sfr import esfr

    gains = []
    for seed in (0, 1, 2):
        burst, _ = edge_burst(seed=seed)
        single = demosaic(normalized_frames(burst)[0], cfa="RGGB", method="menon2007")
        up = F.interpolate(single[None], scale_factor=2, mode="bicubic", align_corners=False)[0]
        sr = super_resolve(burst, scale=2.0, reference=0)
        roi = (slice(None), slice(64, 192), slice(96, 160))
        m_single, m_sr = esfr(up[roi]).mtf50, esfr(sr[roi]).mtf50
        # the exact limit: a box pixel of 2 output pixels has MTF50 ≈ 0.30 cycles/pixel
        assert m_sr < 0.31
        gains.append(m_sr / m_single)
    assert sum(gains) / len(gains) > 1.30, gains
    assert min(gains) > 1.28, gains


def zone_plate_burst(n=16, size=(128, 128), seed=0, f_max=0.4, a=2e-5, b=1e-7):
    """A handheld burst of a neutral zone plate cos(k r²), pixel-integrated exactly (Fresnel integrals), whose
    local frequency k·r/π reaches ``f_max`` cycles/px at r = h/2; returns the burst and k."""
    from obscura.lab.charts.star import render_zone_plate

    h, w = size
    k = math.pi * f_max / (h / 2)
    sh = _shifts(n, seed)
    g = torch.Generator().manual_seed(seed + 1)
    frames = []
    for i in range(n):
        cx, cy = (w - 1) / 2 + float(sh[i, 1]), (h - 1) / 2 + float(sh[i, 0])
        y = 0.45 + 0.35 * torch.from_numpy(render_zone_plate((h, w), k=k, centre=(cx, cy)))
        m = mosaic_rgb(torch.stack([gg * y for gg in GAINS]).float(), cfa="RGGB").double()
        noisy = a * torch.poisson(m / a, generator=g) + math.sqrt(b) * torch.randn(
            m.shape, generator=g, dtype=torch.float64
        )
        frames.append((noisy * 4000 + 100).round().clamp(0, 4095).float())
    meta = RawMeta(
        cfa="RGGB", black_level=(100.0,) * 4, white_level=4100.0, noise_profile=((a, b),) * 3, make="T", model="A"
    )
    return Burst(torch.stack(frames), (meta,) * n), k


def _chroma_energy(img: torch.Tensor, k: float, f0: float, f1: float, raw_size: int) -> float:
    """var(a*) + var(b*) of a white-balanced camera-RGB zone plate where its frequency is in [f0, f1)."""
    from obscura.lab.measure.artifacts import colour_moire

    lin = (img / torch.tensor(GAINS)[:, None, None]).clamp(0, 1)
    hh, ww = lin.shape[-2:]
    s = hh / raw_size
    yy, xx = np.mgrid[0:hh, 0:ww]
    f = k * np.hypot(yy - (hh - 1) / 2, xx - (ww - 1) / 2) / s / math.pi
    return colour_moire(lin.numpy(), encoding="linear", region=(f >= f0) & (f < f1)).chroma_energy


def test_super_resolution_removes_colour_moire_on_a_zone_plate():
    """A neutral zone plate to 0.4 cycles/px (beyond the red and blue Nyquist of 0.25): one frame demosaiced
    (Menon 2007) and upscaled makes false colour; ×2 from 16 frames, whose samples cover every colour at
    every position, much less. Measured (var a* + var b*, bands 0–0.2, 0.2–0.3, 0.3–0.4 cycles/px, seed 0):
    single 41.6 / 211 / 210; super-resolution 2.1 / 15.4 / 145 (92.5 without the motion check, which rejects
    more where aliasing misleads the alignment; before the raw-resolution structure tensor
    and the global-motion prior: 11.7 / 156 / 263 on a harder plate where single gave 52 / 211 / 216)."""
    from obscura.burst.reference import normalized_frames
    from obscura.isp.demosaic import demosaic

    burst, k = zone_plate_burst()
    single = demosaic(normalized_frames(burst)[0], cfa="RGGB", method="menon2007")
    up = F.interpolate(single[None], scale_factor=2, mode="bicubic", align_corners=False)[0]
    sr = super_resolve(burst, scale=2.0, reference=0)
    for f0, f1, ratio in ((0.0, 0.2, 0.15), (0.2, 0.3, 0.15), (0.3, 0.4, 0.7)):
        e_single = _chroma_energy(up, k, f0, f1, 128)
        e_sr = _chroma_energy(sr, k, f0, f1, 128)
        assert e_sr < ratio * e_single, (f0, f1, e_single, e_sr)


def test_frame_for_develop_and_metadata():
    from obscura.isp.develop import develop

    burst, _ = edge_burst(n=4, size=(48, 64))
    metas = tuple(m.replace(default_crop=(4, 2, 40, 44)) for m in burst.metas)
    burst = Burst(burst.data, metas)
    frame = super_resolve_frame(burst, scale=2.0, reference=0)
    assert frame.meta.cfa == "" and frame.data.shape == (3, 96, 128)
    assert frame.meta.default_crop == (8, 4, 80, 88)
    assert frame.meta.black_level == (0.0, 0.0, 0.0) and frame.meta.white_level == 1.0
    # 4 frames merged: the noise variance drops (at most to 1/4 of one frame's, per channel)
    a0 = burst.metas[0].noise_profile[0][0]
    for a, _b in frame.meta.noise_profile:
        assert 0.1 * a0 < a < 0.95 * a0
    img = develop(frame)
    assert img.data.shape[-2:] == (88, 80)
    assert bool(torch.isfinite(img.data).all())


def test_bad_inputs():
    burst, _ = edge_burst(n=3, size=(32, 32))
    with pytest.raises(InvalidParameter, match="scale"):
        super_resolve(burst, scale=0.5)
    with pytest.raises(InvalidParameter, match="scale"):
        super_resolve(burst, scale=float("nan"))
    with pytest.raises(UnknownMethod, match="anisotropic"):
        super_resolve(burst, kernel="sinc")
    with pytest.raises(InvalidParameter, match="k_detail"):
        super_resolve(burst, k_detail=-1.0)
    frames = burst.frames()
    other_size = RawFrame(torch.zeros(32, 36), frames[0].meta)
    with pytest.raises(ShapeError, match="one shape"):
        super_resolve([frames[0], other_size])
    other_cfa = RawFrame(frames[1].data, frames[1].meta.replace(cfa="BGGR"))
    with pytest.raises(ShapeError, match="CFA"):
        super_resolve([frames[0], other_cfa])
    other_cam = RawFrame(frames[1].data, frames[1].meta.replace(model="B"))
    with pytest.raises(InvalidParameter, match="camera"):
        super_resolve([frames[0], other_cam])
    linear = RawFrame(torch.zeros(3, 32, 32), RawMeta(cfa=""))
    with pytest.raises(ShapeError):
        super_resolve([linear])
    from obscura.burst.align import align_burst

    al = align_burst(Burst(burst.data[:2], burst.metas[:2]), reference=0)
    with pytest.raises(ShapeError, match="alignment"):
        super_resolve(burst, alignment=al)


def test_device_result_matches_cpu(device):
    burst, _ = edge_burst(n=4, size=(48, 48))
    cpu = super_resolve(burst, scale=2.0, reference=0)
    out = super_resolve(Burst(burst.data.to(device), burst.metas), scale=2.0, reference=0)
    assert out.device.type == torch.device(device).type
    torch.testing.assert_close(out.cpu(), cpu, rtol=0, atol=2e-3)
