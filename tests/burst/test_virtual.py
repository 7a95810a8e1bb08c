"""Burst photography on virtual-camera bursts, measured against the camera's ground truth.

The camera is the phone-main profile read out as a small 1.6 µm crop (so a 256×384 frame keeps the real
pixel's full well) at ISO 4320, where its NoiseProfile is the brief's high-ISO case, variance ≈ 8e-3·x + 2e-4
on the normalized raw (read noise tuned to 1.73 e⁻ for the offset). Fixed-pattern noise (PRNU, DSNU) and hot
pixels are off: they are the same in every frame, so no merge can average them and the 9.0 dB ceiling of
8 frames would not hold. The lens is a Gaussian PSF without vignetting or distortion, so the true motion of
every tile follows from the hand-shake truth (translation + roll) alone.

Measured (2 shared CPU cores, this file ≈ 17–25 s): see the numbers in each test's docstring.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from torch.nn import functional as F  # noqa: N812

from obscura.burst.align import align_burst
from obscura.burst.hdr import merge_brackets
from obscura.burst.merge import merge_burst
from obscura.burst.reference import normalized_frames, site_planes
from obscura.core.errors import InvalidParameter, ShapeError
from obscura.core.types import BAYER_PATTERNS, Burst, RawFrame
from obscura.lab.charts.steps import step_chart
from obscura.lab.measure.artifacts import ghosting
from obscura.lab.measure.reference import psnr
from obscura.lab.measure.tone import measure_tone
from obscura.sim.camera import HandShake, MovingObject, capture_burst, load_camera
from obscura.sim.optics import Lens
from obscura.sim.scene import scene_from_rgb

SIZE = (256, 384)
SMALL = (128, 192)
ISO = 4320.0  # phone-main crop: a = 8e-3 exactly (125 e⁻ at white)
BRIEF_NOISE = (8e-3, 2e-4)
SHAKE = HandShake(translation_px=2.0, rotation_deg=0.03)


def virtual_camera(cfa: str = "RGGB", size: tuple[int, int] = SIZE, *, model: str = ""):
    """phone-main as a crop of its 1.6 µm sensor at ``size``, Bayer ``cfa``, temporal noise only."""
    cam = load_camera("phone-main")
    sen = dataclasses.replace(
        cam.sensor,
        width=size[1],
        height=size[0],
        cfa=cfa,
        read_noise_e=1.73,
        prnu=0.0,
        dsnu_e=0.0,
        hot_pixel_fraction=0.0,
    )
    lens = Lens(
        focal_length_mm=cam.lens.focal_length_mm,
        f_number=cam.lens.f_number,
        psf="gaussian",
        gaussian_sigma_um=1.2,
        vignetting_cos4=False,
    )
    return cam.replace(sensor=sen, lens=lens, size=size, model=model or cam.model)


def texture_scene(size: tuple[int, int], seed: int = 0):
    """A colourful multi-scale texture (sRGB-encoded, unprocessed to a spectral scene): every tile textured."""
    g = torch.Generator().manual_seed(seed)
    x = torch.zeros(3, *size)
    for k, amp in ((4, 0.5), (8, 0.3), (16, 0.2)):
        r = torch.rand((3, size[0] // k + 3, size[1] // k + 3), generator=g)
        up = F.interpolate(r[None], scale_factor=k, mode="bicubic", align_corners=False)[0]
        x = x + amp * up[:, : size[0], : size[1]]
    return scene_from_rgb(x.clamp(0, 1))


def shoot(n: int, *, cfa: str = "RGGB", size=SIZE, seed: int = 1, handshake=SHAKE, **kw):
    return capture_burst(
        texture_scene(size, seed=seed),
        camera=virtual_camera(cfa, size),
        n=n,
        size=size,
        iso=ISO,
        handshake=handshake,
        seed=seed,
        **kw,
    )


def norm(frame: RawFrame) -> torch.Tensor:
    return normalized_frames(Burst(frame.data[None], (frame.meta,)))[0]


def gain_db(shot, merged: RawFrame, mask: torch.Tensor | None = None) -> tuple[float, float]:
    """PSNR gain of the merged raw over the reference frame, both against the clean reference mosaic."""
    r = shot.truth.reference
    clean = shot.truth.clean_mosaics[r]
    ref, m = normalized_frames(shot.burst)[r], norm(merged)
    if mask is not None:  # PSNR over the masked samples (psnr itself takes whole images)
        ref, m, clean = ref[mask][None], m[mask][None], clean[mask][None]
    p_ref = float(psnr(ref, clean, data_range=1.0))
    return float(psnr(m, clean, data_range=1.0)) - p_ref, p_ref


def grey(x: torch.Tensor, cfa: str) -> torch.Tensor:
    """(H, W) mosaic → (H/2, W/2) mean of each CFA tile (no colour pattern left)."""
    return site_planes(x, cfa).mean(dim=-3)


@pytest.fixture(scope="module")
def handheld():
    """8 handheld frames (2 px RMS shake, 0.03° roll), 256×384, ISO 4320."""
    return shoot(8)


# ------------------------------------------------------------------------------------ noise


def test_camera_noise_is_the_briefs(handheld):
    """NoiseProfile (8.0e-3, 1.95e-4); the measured residual variance matches it within 10 %."""
    a, b = handheld.burst.metas[0].noise_profile[0]
    assert a == pytest.approx(BRIEF_NOISE[0], rel=0.02) and b == pytest.approx(BRIEF_NOISE[1], rel=0.05)
    x = normalized_frames(handheld.burst)
    clean = handheld.truth.clean_mosaics
    res = (x - clean).reshape(-1)
    c = clean.reshape(-1)
    for lo, hi in ((0.02, 0.06), (0.1, 0.2)):
        sel = (c >= lo) & (c < hi)
        want = float((a * c[sel] + b).mean())
        assert float(res[sel].var()) == pytest.approx(want, rel=0.1)


# ------------------------------------------------------------------------------------ denoising


def test_denoising_gain_handheld(handheld):
    """≥ 6 dB over the reference frame on 8 handheld frames. Measured: 9.7–10.5 dB with the spatial denoise,
    8.4–9.0 dB from the temporal merge alone (ceiling of averaging 8 frames: 10·log10 8 = 9.03 dB)."""
    merged = merge_burst(handheld.burst, reference=0)
    assert merged.meta.cfa == "RGGB" and tuple(merged.data.shape) == SIZE
    g, p_ref = gain_db(handheld, merged)
    temporal, _ = gain_db(handheld, merge_burst(handheld.burst, reference=0, spatial_strength=0.0))
    print(
        f"\nhandheld 8 frames: reference {p_ref:.2f} dB; merged +{g:.2f} dB; temporal only +{temporal:.2f} dB "
        f"of the 9.03 dB ceiling ({temporal / (10 * math.log10(8)):.0%})"
    )
    assert g >= 6.0
    assert 6.0 <= temporal <= 10 * math.log10(8) + 0.1


def test_denoising_static_reaches_the_ceiling():
    """8 perfectly static frames, temporal merge only: close to the 9.03 dB of averaging, never above it.
    Measured 7.0–7.9 dB (78–88 %, while merge.py was being reworked; 8.29 dB with the true zero motion:
    the aligner's noise-driven sub-pixel motion on
    static frames at this ISO, ≈ 0.19 px RMS, costs the rest)."""
    shot = shoot(8, size=SMALL, handshake=None, seed=2)
    g, _ = gain_db(shot, merge_burst(shot.burst, reference=0, spatial_strength=0.0))
    print(f"\nstatic 8 frames, temporal merge: +{g:.2f} dB of 9.03 dB ({g / (10 * math.log10(8)):.1%})")
    assert 6.5 <= g <= 10 * math.log10(8) + 0.05


# ------------------------------------------------------------------------------------ alignment


def true_flow(shot, centres: tuple[torch.Tensor, torch.Tensor], size: tuple[int, int]) -> torch.Tensor:
    """(2, Ty, Tx) per frame: where frame i shows what the reference shows at each tile centre, minus the
    centre, from the truth's (dx, dy, roll) (frame(x) = scene(R(−a)(x − c − d) + c))."""
    h, w = size
    c = torch.tensor([(w - 1) / 2, (h - 1) / 2], dtype=torch.float64)
    ys, xs = (t.to(torch.float64) for t in centres)
    p = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), -1)  # (Ty, Tx, 2) as (x, y)
    ref = shot.truth.motion[shot.truth.reference]

    def rot(v, deg):
        a = math.radians(deg)
        m = torch.tensor([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]], dtype=torch.float64)
        return v @ m.T

    s = rot(p - c - torch.tensor([ref.dx, ref.dy], dtype=torch.float64), -ref.angle_deg) + c  # scene point
    out = []
    for m in shot.truth.motion:
        q = rot(s - c, m.angle_deg) + c + torch.tensor([m.dx, m.dy], dtype=torch.float64)
        d = q - p
        out.append(torch.stack([d[..., 1], d[..., 0]]))  # (dy, dx)
    return torch.stack(out).to(torch.float32)


def _alignment_rms(shot, **options) -> tuple[float, float, int]:
    al = align_burst(shot.burst, reference=0, **options)
    want = true_flow(shot, al.tile_centers, SIZE)
    cy, cx = al.tile_centers
    inner_y = (cy > al.tile_size) & (cy < SIZE[0] - al.tile_size)  # away from the content entering at the borders
    inner_x = (cx > al.tile_size) & (cx < SIZE[1] - al.tile_size)
    inner = inner_y[:, None] & inner_x[None, :]
    err = (al.flow - want)[1:].permute(0, 2, 3, 1)[:, inner]  # (N−1, T, 2)
    still = want[1:].permute(0, 2, 3, 1)[:, inner]
    return float(err.square().sum(-1).mean().sqrt()), float(still.square().sum(-1).mean().sqrt()), err.shape[1]


def test_alignment_accuracy_on_textured_tiles(handheld):
    """Per-tile motion against the truth (shift + roll). Noise-free: 0.013 px RMS (< 0.1 px as briefed). At
    ISO 4320 on this texture (mean level 0.1 of white) the aligner reaches only 0.27 px RMS (0.13 px on
    kodim05 one stop brighter): the brief's 0.1 px holds on the synthetic bursts of test_align.py, not yet
    here; the bound below guards against regressions. Per-frame biases of up to 0.1 px remain even
    without noise."""
    clean_shot = shoot(8, noise=False)
    rms0, still, tiles = _alignment_rms(clean_shot)
    rms, _, _ = _alignment_rms(handheld)
    print(
        f"\nalignment: RMS error noise-free {rms0:.3f} px, ISO 4320 {rms:.3f} px over {tiles} tiles × 7 frames "
        f"(unaligned: {still:.2f} px RMS)"
    )
    assert still > 1.0  # a real handheld burst, not a trivially still one
    assert rms0 < 0.1
    assert rms < 0.35


def test_alignment_with_the_global_motion_prior(handheld):
    """align_burst(motion_prior=…): what a tile does not measure comes from its frame's affine motion, which
    a tile leaves by about motion_prior px where it measures it. Measured on this dim, noisy burst (inner
    tiles): none 0.273 px RMS; 0.2 → 0.246; 0.1 → 0.194; 0.05 → 0.114; 0.02 → 0.056 (the hand's motion here
    is exactly affine, shift + roll, so a tight prior only helps; real scenes with parallax or lens
    distortion need a looser one)."""
    rms, _, _ = _alignment_rms(handheld)
    rms_p, _, tiles = _alignment_rms(handheld, motion_prior=0.1)
    rms_t, _, _ = _alignment_rms(handheld, motion_prior=0.02)
    print(
        f"\nalignment with the motion prior: {rms:.3f} → {rms_p:.3f} (0.1 px), {rms_t:.3f} (0.02 px) px RMS over "
        f"{tiles} tiles × 7 frames"
    )
    assert rms_p < 0.8 * rms
    assert rms_t < 0.1
    with pytest.raises(InvalidParameter, match="motion_prior"):
        align_burst(handheld.burst, motion_prior=-1.0)


# ------------------------------------------------------------------------------------ ghosting


@pytest.fixture(scope="module")
def moving():
    """8 handheld frames with a checkered disk crossing at 6 px per frame."""
    obj = MovingObject(center=(150.0, 128.0), velocity=(6.0, 0.0), radius=30.0, texture="checker", checker_px=5.0)
    return shoot(8, seed=4, moving=[obj])


def test_no_ghosts_with_a_moving_object(moving):
    """Inside the object the merge is not worse than the reference frame alone, and the double-edge score
    against the ground truth stays low (a plain mean of the frames ghosts). Measured: object +2.74 dB,
    double-edge NCC 0.086 (plain mean 0.53)."""
    merged = merge_burst(moving.burst, reference=0)
    mask = moving.truth.masks[0] > 0.5
    g_obj, _ = gain_db(moving, merged, mask)
    g_all, _ = gain_db(moving, merged)
    cfa = merged.meta.cfa
    clean = grey(moving.truth.clean_mosaics[0], cfa).numpy()
    half = F.avg_pool2d(mask[None, None].float(), 2)[0, 0].numpy() > 0.5
    motion = (6.0 / 2, 0.0)  # the object moves 6 raw px per frame: 3 grey px
    res = ghosting(grey(norm(merged), cfa).numpy(), clean, mask=half, motion=motion, data_range=1.0)
    plain = normalized_frames(moving.burst).mean(0)
    res_plain = ghosting(grey(plain, cfa).numpy(), clean, mask=half, motion=motion, data_range=1.0)
    print(
        f"\nmoving object: gain inside {g_obj:+.2f} dB (whole frame {g_all:+.2f} dB); double-edge NCC "
        f"{res.double_edge:.3f} (plain mean {res_plain.double_edge:.3f})"
    )
    assert g_obj >= 0.0
    assert g_all >= 6.0
    assert not res.detected and res.double_edge < 0.2
    assert res_plain.detected  # the measure sees a ghost where there is one


def test_super_resolution_with_a_moving_object():
    """Super-resolution ×1 of 8 handheld frames with a checkered disc (12 px squares) crossing at 6 px a frame,
    against the reference frame demosaiced (Menon 2007), inside the disc. Measured: +4.3 dB inside it over
    the single frame; double-edge score 0.22 (0.38 without the motion check, whose local statistics take the
    moved texture for a sub-pixel misregistration; the single frame 0.02). A disc of 5 px squares, which moves
    more than a whole period a frame, keeps a partial ghost (0.35, from 0.44)."""
    from obscura.burst.superres import super_resolve
    from obscura.isp.demosaic import demosaic

    obj = MovingObject(center=(150.0, 128.0), velocity=(6.0, 0.0), radius=30.0, texture="checker", checker_px=12.0)
    shot = shoot(8, seed=4, moving=[obj])
    r = shot.truth.reference
    clean = shot.truth.clean_camera
    mask = shot.truth.masks[r] > 0.5
    single = demosaic(normalized_frames(shot.burst)[r], cfa="RGGB", method="menon2007")
    res = {}
    for name, img in (
        ("single", single),
        ("sr", super_resolve(shot.burst, scale=1.0, reference=r)),
        ("sr_unchecked", super_resolve(shot.burst, scale=1.0, reference=r, motion_tolerance=None)),
    ):
        g = ghosting(img.mean(0).numpy(), clean.mean(0).numpy(), mask=mask.numpy(), motion=(6.0, 0.0), data_range=1.0)
        res[name] = (float(psnr(img[:, mask], clean[:, mask], data_range=1.0)), g.double_edge)
    print(f"\nsuper-resolution with a moving object (PSNR inside dB, double-edge): {res}")
    assert res["sr"][0] > res["single"][0] + 3.0
    assert res["sr"][1] < 0.3 and res["sr"][1] < res["sr_unchecked"][1] - 0.1


# ------------------------------------------------------------------------------------ HDR


def _tone(x: np.ndarray, chart, clip: float):
    rois = {k: tuple(v // 2 for v in b) for k, b in chart.rois.items() if k.startswith("step_")}
    return measure_tone(x, rois, chart.reference["Y"], clip_level=clip, thresholds=(1.0, 10.0))


def test_hdr_brackets_extend_dynamic_range():
    """Brackets −2, 0, +2 EV of the step chart (17 stops) at ISO 4320, the 0 EV frame clipping its top two
    stops: the merged radiance map is linear and its dynamic range (SNR = 1, ISO 15739) exceeds the 0 EV
    frame's by ≥ 3 stops. Measured: 0 EV 6.3 stops, merged 10.5 stops (+4.2); at SNR 10: +4.6."""
    chart = step_chart(size=SIZE, patches=24, stops=17.0)
    cam = virtual_camera("RGGB", SIZE)
    probe = capture_burst(
        chart.scene, camera=cam, n=1, size=SIZE, iso=ISO, handshake=None, noise=False, exposure_time=1e-4
    )
    top = float(probe.truth.clean_mosaics[0].max())
    assert 0.0 < top < 0.95
    t0 = 1e-4 * 3.5 / top  # the brightest patch at 3.5× white in the 0 EV frame: 0.875 in the −2 EV one
    shot = capture_burst(
        chart.scene, camera=cam, size=SIZE, iso=ISO, handshake=None, brackets=[-2, 0, 2], exposure_time=t0, seed=5
    )
    merged = merge_brackets(shot.burst, reference=1, alignment=None)
    hdr = grey(merged.data, "RGGB").numpy().astype(np.float64)
    mid = grey(normalized_frames(shot.burst)[1], "RGGB").numpy().astype(np.float64)
    t_mid = _tone(mid, chart, 1.0)
    t_hdr = _tone(hdr, chart, float(merged.meta.white_level))
    dr0, dr1 = t_mid.dynamic_range[1.0], t_hdr.dynamic_range[1.0]
    g10 = t_hdr.dynamic_range[10.0] - t_mid.dynamic_range[10.0]
    print(f"\nHDR: dynamic range 0 EV {dr0:.2f} stops, merged {dr1:.2f} stops (+{dr1 - dr0:.2f}); at SNR 10 +{g10:.2f}")
    assert t_mid.saturated[:2].all() and not t_hdr.saturated.any()
    assert not t_hdr.dr_limited[1.0]
    assert dr1 - dr0 >= 3.0
    # linear radiance: patch means ∝ the chart's Y where the SNR is good (log-log slope 1, one scale)
    good = t_hdr.snr > 10
    fit = np.polyfit(t_hdr.log2_exposure[good], np.log2(t_hdr.mean[good]), 1)
    assert fit[0] == pytest.approx(1.0, abs=0.02)
    assert int(good.sum()) >= 6


# ------------------------------------------------------------------------------------ patterns, lengths, errors


@pytest.mark.parametrize("cfa", BAYER_PATTERNS)
def test_every_bayer_pattern(cfa):
    """Measured +7.9 … 8.2 dB on 4 frames (temporal ceiling 6.0 dB, plus the spatial denoise)."""
    shot = shoot(4, cfa=cfa, size=SMALL, seed=6)
    merged = merge_burst(shot.burst, reference=0)
    assert merged.meta.cfa == cfa
    g, _ = gain_db(shot, merged)
    assert g >= 4.5, (cfa, g)


def test_super_resolution_on_the_virtual_phone_camera():
    """×2 super-resolution of 16 handheld frames of a slanted square through phone-main's own lens (pupil PSF,
    f/1.9, 1.6 µm pixels; no vignetting) at ISO 200, against the reference frame demosaiced (Menon 2007) and
    upscaled ×2: the e-SFR MTF50 of both edges. The lens already takes most of what lies beyond Nyquist, so
    the gain is far smaller than on the lens-free analytic bursts of test_superres.py (+30 %). Measured on this
    burst +10.3 % (vertical edge) and +15.8 % (horizontal), the same with the true motion (+11.5 %, +15.9 %:
    the optics limit it, not the alignment); over three hand-shake seeds, with and without vignetting, −3 % to
    +16 % per edge (single-frame MTF50 itself varies by ±8 % with the noise and the edge phase)."""
    from obscura.burst.superres import super_resolve
    from obscura.isp.demosaic import demosaic
    from obscura.lab.charts.edge import slanted_edge_chart
    from obscura.lab.measure.sfr import esfr

    size = (192, 256)
    chart = slanted_edge_chart(size=size, grid=(1, 1), square_fraction=0.6)
    lens = dataclasses.replace(load_camera("phone-main").lens, vignetting_cos4=False)
    cam = virtual_camera("RGGB", size).replace(lens=lens)
    shot = capture_burst(chart.scene, camera=cam, n=16, size=size, iso=200.0, handshake=SHAKE, seed=3)
    r = shot.truth.reference
    single = demosaic(normalized_frames(shot.burst)[r], cfa="RGGB", method="menon2007")
    up = F.interpolate(single[None], scale_factor=2, mode="bicubic", align_corners=False)[0]
    sr = super_resolve(shot.burst, scale=2.0, reference=r)
    ratios = []
    for roi in ("edge_r0c0_v", "edge_r0c0_h"):
        x0, y0, x1, y1 = chart.rois[roi]
        box = (slice(None), slice(2 * y0, 2 * y1), slice(2 * x0, 2 * x1))
        ratios.append(esfr(sr[box]).mtf50 / esfr(up[box]).mtf50)
    assert min(ratios) > 1.05 and sum(ratios) / 2 > 1.10, ratios


def test_burst_lengths_2_to_16():
    """The gain grows with the burst: measured +4.9 (2), +7.1 (4), +9.2 (16) dB; each frame count's temporal
    part stays below its averaging ceiling 10·log10 n."""
    gains = {}
    shot16 = shoot(16, size=SMALL, seed=7)
    for n in (2, 4, 16):
        sub = Burst(shot16.burst.data[:n], shot16.burst.metas[:n])
        s = dataclasses.replace(shot16, burst=sub)
        g, _ = gain_db(s, merge_burst(sub, reference=0))
        t, _ = gain_db(s, merge_burst(sub, reference=0, spatial_strength=0.0))
        gains[n] = g
        assert t <= 10 * math.log10(n) + 0.1, (n, t)
        assert t >= 0.5 * 10 * math.log10(n), (n, t)
    print(f"\nburst lengths: {', '.join(f'{n}: +{g:.2f} dB' for n, g in gains.items())}")
    assert gains[2] < gains[4] < gains[16]


def _one(cfa="RGGB", size=SMALL, model=""):
    cam = virtual_camera(cfa, size, model=model)
    return capture_burst(texture_scene(size), camera=cam, n=1, size=size, iso=ISO, handshake=None).frame


def test_mixed_frames_are_refused():
    a = _one()
    with pytest.raises(ShapeError, match="one shape"):
        merge_burst([a, _one(size=(128, 128))])
    with pytest.raises(ShapeError, match="one CFA"):
        merge_burst([a, _one(cfa="BGGR")])
    with pytest.raises(InvalidParameter, match="one camera"):
        merge_burst([a, _one(model="Other Phone")])
    with pytest.raises(InvalidParameter, match="one camera"):
        merge_brackets([a, _one(model="Other Phone")])
