"""Tests for obscura.isp.tone: exposure, tone curves and local tone mapping."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from obscura.core.colour import srgb_decode
from obscura.core.errors import InvalidParameter, ShapeError, UnknownMethod
from obscura.isp import tone


@pytest.fixture(scope="module")
def kodak(data_dir) -> torch.Tensor:
    from PIL import Image

    a = np.asarray(Image.open(data_dir / "images" / "kodak24" / "kodim03.png"), dtype=np.float32) / 255.0
    return srgb_decode(torch.from_numpy(a).permute(2, 0, 1).contiguous())


# ------------------------------------------------------------------------------------------- exposure


def test_exposure_gain():
    assert tone.exposure_gain() == 1.0
    assert tone.exposure_gain(baseline_exposure=0.5, ev=1.5) == pytest.approx(4.0)
    assert tone.exposure_gain(ev=-1.0) == pytest.approx(0.5)
    with pytest.raises(InvalidParameter):
        tone.exposure_gain(ev=float("nan"))
    with pytest.raises(InvalidParameter):
        tone.exposure_gain(baseline_exposure=100.0)


def test_auto_exposure_maps_grey_scene_to_target(device):
    x = torch.full((3, 64, 64), 0.045, device=device)
    assert tone.auto_exposure(x) == pytest.approx(2.0, abs=1e-3)  # 0.045 · 4 = 0.18
    assert tone.auto_exposure(x, target=0.09) == pytest.approx(1.0, abs=1e-3)


def test_auto_exposure_scale_invariance(kodak, device):
    x = kodak.to(device)
    ev0 = tone.auto_exposure(x)
    for k in (-4, -1, 2, 3):
        assert tone.auto_exposure(x * 2.0**k) + k == pytest.approx(ev0, abs=0.05)


def test_auto_exposure_highlight_guard_and_clamp(device):
    g = torch.Generator().manual_seed(0)
    x = (0.02 + 0.01 * torch.rand(3, 100, 100, generator=g)).to(device)
    x[:, :2, :] = 50.0  # 2 % of the frame: a bright light
    ev = tone.auto_exposure(x, percentile=99.5, highlight_white=11.2)
    assert ev <= math.log2(11.2 / 50.0) + 1e-6  # the 99.5th percentile lands at or below the white point
    unguarded = tone.auto_exposure(x, percentile=99.5, highlight_white=1e6)
    assert unguarded > ev + 2
    assert tone.auto_exposure(torch.full((3, 8, 8), 1e-6, device=device), max_ev=3.0) == pytest.approx(3.0)
    assert tone.auto_exposure(torch.zeros(3, 8, 8, device=device)) == 0.0


# ---------------------------------------------------------------------------------------------- curves


def test_filmic_curve_properties(device):
    t = torch.linspace(0.0, 20.0, 20001, device=device)
    y = tone.filmic_curve(t)
    assert float(y[0]) == 0.0
    assert bool((y.diff() >= 0).all())
    assert bool((y.diff()[t[1:] < 11.0] > 0).all())  # strictly increasing below the white point
    assert float(y.max()) <= 1.0
    assert float(tone.filmic_curve(torch.tensor([11.2, 100.0]))[0]) == pytest.approx(1.0, abs=1e-6)
    assert float(tone.filmic_curve(torch.tensor([0.18]))[0]) == pytest.approx(0.18, abs=1e-4)
    assert float(tone.filmic_curve(torch.tensor([0.18]), grey_out=0.2)[0]) == pytest.approx(0.2, abs=1e-4)
    # a shoulder: log-log slope around grey is several times the slope in the highlights
    g = tone.filmic_curve(torch.tensor([0.09, 0.18, 0.36, 4.0, 8.0]))
    assert math.log2(g[2] / g[0]) / 2 > 3 * math.log2(g[4] / g[3])


def test_tone_curve_filmic_modes(device):
    x = torch.tensor([[0.18, 2.0, 0.05], [0.18, 1.0, 0.20], [0.18, 0.5, 0.10]], device=device)[:, :, None]
    n = tone.tone_curve(x)  # hue preserving: ratios kept
    torch.testing.assert_close(n[:, 0, 0], torch.full((3,), 0.18, device=device), atol=1e-4, rtol=0)
    for i in range(3):
        torch.testing.assert_close(n[:, i, 0] / n[:, i, 0].sum(), x[:, i, 0] / x[:, i, 0].sum(), atol=1e-5, rtol=0)
    p = tone.tone_curve(x, mode="per_channel")
    torch.testing.assert_close(p, tone.filmic_curve(x))
    assert float((p[:, 1, 0] / p[:, 1, 0].sum() - x[:, 1, 0] / x[:, 1, 0].sum()).abs().max()) > 0.05
    lum = tone.tone_curve(x, mode="luminance")
    assert float(lum.max()) <= 1.0 and float(lum.min()) >= 0.0
    assert n.shape == x.shape and n.dtype == torch.float32


def test_tone_curve_linear_is_clip(device):
    x = torch.tensor([-0.5, 0.0, 0.3, 1.0, 4.0], device=device).reshape(1, 1, 5).expand(3, 2, 5)
    y = tone.tone_curve(x, method="linear")
    torch.testing.assert_close(y, x.clamp(0, 1))


def test_inverse_curve_round_trip():
    t = torch.logspace(-4, math.log10(10.0), 200)
    y = tone.filmic_curve(t)
    back = tone.inverse_curve(tone.filmic_curve, y, white=11.2)
    torch.testing.assert_close(back, t, rtol=2e-3, atol=1e-6)


# -------------------------------------------------------------------------------------- local tone map


def test_local_tone_map_raises_shadows_keeps_range(kodak, device):
    x = kodak.clone()
    x[:, :, : x.shape[-1] // 2] /= 16.0  # a high-dynamic-range scene: left half four stops darker
    x = x.to(device)
    x = x * 2.0 ** tone.auto_exposure(x)
    glob = tone.tone_curve(x)
    loc = tone.tone_curve(tone.local_tone_map(x))
    half = x.shape[-1] // 2
    assert float(loc.min()) >= 0.0 and float(loc.max()) <= 1.0
    shadows_g, shadows_l = float(glob[:, :, :half].mean()), float(loc[:, :, :half].mean())
    assert shadows_l > 1.4 * shadows_g
    # the bright half is not pushed into clipping
    clipped_l = float((loc[:, :, half:] >= 0.999).float().mean())
    assert clipped_l <= float((glob[:, :, half:] >= 0.999).float().mean()) + 0.01


def test_local_tone_map_no_halo_at_step_edge(device):
    x = torch.full((3, 512, 1024), 0.01, device=device)
    x[:, :, 512:] = 2.0
    loc = tone.tone_curve(tone.local_tone_map(x))[1, 256]
    dark, bright = loc[:512], loc[512:]
    # each flat side stays nearly flat up to the edge (deviation from its far value, display-linear).
    # Measured with the defaults: dark side 0.0024, bright side 0.049 (a broad glow of exposure fusion,
    # no sharp overshoot); more pyramid levels give more glow (0.074 with 6 levels).
    assert float((dark - dark[0]).abs().max()) <= 0.005
    assert float((bright - bright[-1]).abs().max()) <= 0.06
    assert float((bright[:-1] - bright[1:]).abs().max()) <= 0.005  # no sharp step near the edge
    assert float(dark.mean()) > float(tone.tone_curve(x)[1, 128, 0])  # shadows lifted all the same


def test_local_tone_map_keeps_chroma_ratios(kodak, device):
    x = kodak[:, :128, :160].to(device)
    y = tone.local_tone_map(x)
    r = y / x.clamp_min(1e-6)
    m = x.amin(0) > 1e-3
    torch.testing.assert_close(r[0][m], r[1][m], rtol=1e-4, atol=0)
    torch.testing.assert_close(r[2][m], r[1][m], rtol=1e-4, atol=0)


def test_local_tone_map_identity_cases(device):
    x = torch.rand(3, 40, 50, generator=torch.Generator().manual_seed(3)).to(device)
    assert torch.equal(tone.local_tone_map(x, strength=0.0), x)
    assert torch.equal(tone.local_tone_map(x, ev_boost=0.0), x)


def test_local_tone_map_strips_match_whole():
    # the CPU path applies the gain in strips with row-wise upsampling; compare with one strip
    g = torch.Generator().manual_seed(4)
    x = torch.rand(3, 1200, 160, generator=g) * 0.5
    a = tone.local_tone_map(x, max_pixels=1 << 14)
    from obscura.isp import _filters

    old = _filters._STRIP_PIXELS
    try:
        _filters._STRIP_PIXELS = 1 << 30
        b = tone.local_tone_map(x, max_pixels=1 << 14)
    finally:
        _filters._STRIP_PIXELS = old
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


# ------------------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("fn", "x", "opts", "err"),
    [
        (tone.tone_curve, torch.zeros(8, 8), {}, ShapeError),
        (tone.tone_curve, torch.zeros(2, 8, 8), {}, ShapeError),
        (tone.tone_curve, torch.zeros(3, 8, 8, dtype=torch.int64), {}, ShapeError),
        (tone.tone_curve, torch.zeros(3, 8, 8), {"white": -1.0}, InvalidParameter),
        (tone.tone_curve, torch.zeros(3, 8, 8), {"grey_out": 1.5}, InvalidParameter),
        (tone.tone_curve, torch.zeros(3, 8, 8), {"mode": "hsv"}, InvalidParameter),
        (tone.tone_curve, torch.zeros(3, 8, 8), {"method": "aces9"}, UnknownMethod),
        (tone.local_tone_map, torch.zeros(3, 8), {}, ShapeError),
        (tone.local_tone_map, torch.zeros(3, 8, 8), {"sigma": 0.0}, InvalidParameter),
        (tone.local_tone_map, torch.zeros(3, 8, 8), {"ev_boost": float("inf")}, InvalidParameter),
        (tone.local_tone_map, torch.zeros(3, 8, 8), {"curve": "reinhard"}, InvalidParameter),
        (tone.local_tone_map, torch.zeros(3, 8, 8), {"method": "durand"}, UnknownMethod),
        (tone.auto_exposure, torch.zeros(1, 8, 8), {}, ShapeError),
        (tone.auto_exposure, torch.zeros(3, 8, 8), {"percentile": 120.0}, InvalidParameter),
        (tone.auto_exposure, torch.zeros(3, 8, 8), {"target": 0.0}, InvalidParameter),
    ],
)
def test_bad_input(fn, x, opts, err):
    with pytest.raises(err):
        fn(x, **opts)


def test_local_tone_map_is_its_two_parts(device):
    """local_tone_map = the gain on the binned image, applied at full size; strips map as the whole."""
    from obscura.isp._filters import bin2

    g = torch.Generator().manual_seed(5)
    x = (torch.rand(3, 96, 130, generator=g) ** 2 * 2.0).to(device)
    x[:, :, :40] *= 0.02
    whole = tone.local_tone_map(x, max_pixels=1 << 10)
    step = tone.local_tone_step((96, 130), max_pixels=1 << 10)
    assert step == 4  # 96·130 / 16 = 780 ≤ 1024 pixels
    coeffs = tone.local_tone_gain(bin2(bin2(x)), max_pixels=1 << 10)
    assert coeffs.shape == (2, 24, 32)
    assert torch.allclose(tone.apply_local_tone_gain(x, coeffs), whole, rtol=1e-6, atol=1e-7)
    for top, bot in ((0, 17), (17, 50), (50, 96)):
        part = tone.apply_local_tone_gain(x[:, top:bot], coeffs, top=top, size=(96, 130))
        assert torch.allclose(part, whole[:, top:bot], rtol=1e-6, atol=1e-7)
    assert float(whole[:, :, :40].mean()) > 2.0 * float(x[:, :, :40].mean())  # the shadows were lifted


def test_local_tone_parts_bad_inputs():
    x = torch.rand(3, 16, 16)
    with pytest.raises(ShapeError, match="coeffs"):
        tone.apply_local_tone_gain(x, torch.zeros(3, 4, 4))
    with pytest.raises(ShapeError, match="do not fit"):
        tone.apply_local_tone_gain(x, torch.zeros(2, 4, 4), top=8, size=(20, 16))
    with pytest.raises(UnknownMethod):
        tone.local_tone_gain(x, method="durand")
    with pytest.raises(InvalidParameter, match="max_pixels"):
        tone.local_tone_step((100, 100), max_pixels=0)


def test_fused_local_tone_curve_equals_gain_then_curve(device):
    """local_tone_curve = tone_curve(apply_local_tone_gain(x)); the filmic table matches the formula."""
    g = torch.Generator().manual_seed(6)
    x = (torch.rand(3, 40, 64, generator=g) ** 3 * 9.0 - 0.01).to(device)
    coeffs = (torch.randn(2, 10, 16, generator=g) * 0.2).to(device)
    opts = {"white": 6.0, "contrast": 1.35}
    for top in (0, 13):
        part = x[:, top : top + 27]
        ref = tone.tone_curve(tone.apply_local_tone_gain(part, coeffs, top=top, size=(40, 64)), **opts)
        fused = tone.local_tone_curve(part, coeffs, top=top, size=(40, 64), **opts)
        torch.testing.assert_close(fused, ref, atol=2e-6, rtol=0)
    lin = tone.local_tone_curve(x, coeffs, method="linear")  # other curves: the two steps in turn
    torch.testing.assert_close(lin, tone.apply_local_tone_gain(x, coeffs).clamp(0, 1))
    # the table behind the hue-preserving curve against the closed form, over the whole range
    t = torch.linspace(0.0, 8.0, 20001, device=device)
    n = torch.stack([t, t * 0.5, t * 0.25])[:, None]
    exact = n * (tone.filmic_curve(t, **opts) / t.clamp_min(1e-12))
    torch.testing.assert_close(tone.tone_curve(n, **opts), exact.clamp(0, 1), atol=1e-6, rtol=0)
    with pytest.raises(InvalidParameter, match="unknown filmic"):
        tone.local_tone_curve(x, coeffs, gamma=2.0)
