"""The perceptual operations of looks: OKLab against colour-science, each operation's defining property,
grain determinism across strips, the look metrics against direct computations, and bad input."""

from __future__ import annotations

import colour
import numpy as np
import pytest
import scipy.stats
import torch

from obscura.core.colour import convert
from obscura.core.errors import InvalidParameter, ShapeError
from obscura.looks import ops

D65 = colour.CCS_ILLUMINANTS["CIE 1931 2 Degree Standard Observer"]["D65"]


def _t(a, device, dtype=torch.float32) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a), dtype=dtype, device=device)


def _img(rgb, device) -> torch.Tensor:
    """(N, 3) colours → a (3, 1, N) image."""
    return _t(np.asarray(rgb, dtype=np.float64).T[:, None, :], device)


def _cols(x: torch.Tensor) -> np.ndarray:
    return x[:, 0, :].T.double().cpu().numpy()


# ------------------------------------------------------------------------------------------- OKLab


def test_oklab_matches_colour_science(device):
    rng = np.random.default_rng(0)
    XYZ = np.concatenate([rng.uniform(0, 1.2, (500, 3)), colour.xy_to_XYZ(D65)[None], np.zeros((1, 3))])
    ours = _cols(ops.xyz_d65_to_oklab(_img(XYZ, device)))
    ref = colour.XYZ_to_Oklab(XYZ)
    assert np.abs(ours - ref).max() < 1e-5
    back = _cols(ops.oklab_to_xyz_d65(_img(ref, device)))
    assert np.abs(back - XYZ).max() < 1e-5


@pytest.mark.parametrize("space", ["linear_srgb", "linear_prophoto", "linear_p3"])
def test_rgb_to_oklab_matches_colour_science(space, device):
    rng = np.random.default_rng(1)
    rgb = rng.uniform(0, 1, (300, 3))
    ours = _cols(ops.rgb_to_oklab(_img(rgb, device), space=space))
    # colour-science: our RGB → XYZ D50 (checked against colour-science in tests/core), Bradford to D65, Oklab
    xyz50 = _cols(convert(_img(rgb, "cpu").double(), src=space, dst="xyz_d50"))
    xyz65 = colour.chromatic_adaptation(
        xyz50,
        colour.xy_to_XYZ(colour.CCS_ILLUMINANTS["CIE 1931 2 Degree Standard Observer"]["D50"]),
        colour.xy_to_XYZ(D65),
        method="Von Kries",
        transform="Bradford",
    )
    assert np.abs(ours - colour.XYZ_to_Oklab(xyz65)).max() < 1e-5
    white = _cols(ops.rgb_to_oklab(_img([[1.0, 1.0, 1.0]], device), space=space))[0]
    # the space's white: L 1, neutral (to 1.3e-4: OKLab's matrices put D65 at b = −1.2e-4, as in colour-science)
    assert abs(white[0] - 1.0) < 1e-4 and np.abs(white[1:]).max() < 1.3e-4
    back = _cols(ops.oklab_to_rgb(ops.rgb_to_oklab(_img(rgb, device), space=space), space=space))
    assert np.abs(back - rgb).max() < 1e-5


def test_oklch_round_trip_and_band_hues(device):
    prim = np.array([[1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 1, 1], [0, 0, 1], [1, 0, 1]], dtype=float)
    lch = _cols(ops.oklab_to_oklch(ops.rgb_to_oklab(_img(prim, device))))
    ref = colour.Oklab_to_Oklch(colour.XYZ_to_Oklab(colour.sRGB_to_XYZ(prim, apply_cctf_decoding=False)))
    assert np.abs(lch[:, 2] - ref[:, 2]).max() < 0.05
    assert np.abs(lch[:, 2] - np.array(list(ops.HUE_BANDS.values()))).max() < 0.2  # the band centres
    x = ops.rgb_to_oklab(_img(np.random.default_rng(2).uniform(0, 1, (50, 3)), device))
    assert float((ops.oklch_to_oklab(ops.oklab_to_oklch(x)) - x).abs().max()) < 1e-6


# -------------------------------------------------------------------------------------------- tone


def _grey_lab(L, device):
    L = _t(L, device)
    return torch.stack([L, torch.zeros_like(L), torch.zeros_like(L)])[:, None, :]


def test_tone_curve_defaults_identity_and_contrast_slope(device):
    lab = ops.rgb_to_oklab(_img(np.random.default_rng(3).uniform(0, 1, (200, 3)), device))
    assert torch.equal(ops.tone_curve_lab(lab), lab)
    p, e = 0.57, 1e-3
    for c in (0.8, 1.3, 2.0):
        y = ops.tone_curve_lab(_grey_lab([p - e, p, p + e], device), contrast=c)[0, 0].double().cpu().numpy()
        assert y[1] == pytest.approx(p, abs=1e-6)  # the pivot stays
        assert (y[2] - y[0]) / (2 * e) == pytest.approx(c, rel=1e-2)  # the slope there is the contrast
    L = np.linspace(0, 1.3, 400)
    for kw in ({"contrast": 1.6, "toe": 0.5}, {"black": 0.05, "shoulder": 0.7}, {"highlight_rolloff": 1.0}):
        y = ops.tone_curve_lab(_grey_lab(L, device), **kw)[0, 0].cpu().numpy()
        assert np.all(np.diff(y) >= -1e-6), kw  # monotone
    y = ops.tone_curve_lab(_grey_lab([0.03, 0.0], device), black=0.05)[0, 0].cpu().numpy()
    assert y.tolist() == [0.0, 0.0]  # crushed blacks
    y = ops.tone_curve_lab(_grey_lab([0.0], device), black=-0.05)[0, 0].item()
    assert y == pytest.approx(0.05 / 1.05, abs=1e-6)  # lifted blacks
    r = 0.5
    y = ops.tone_curve_lab(_grey_lab([0.5, 1.0 - 0.3 * r, 1.0 + r], device), highlight_rolloff=r)[0, 0].cpu().numpy()
    assert y[0] == pytest.approx(0.5) and y[1] == pytest.approx(1 - 0.3 * r) and y[2] == pytest.approx(1.0, abs=1e-5)


def test_tone_curve_keeps_hue_and_darkening_reduces_chroma(device):
    lab = ops.rgb_to_oklab(_img(np.random.default_rng(4).uniform(0.02, 1, (300, 3)), device))
    y = ops.tone_curve_lab(lab, contrast=1.5, toe=0.5)
    h0, h1 = ops.oklab_to_oklch(lab)[2], ops.oklab_to_oklch(y)[2]
    assert float(((h1 - h0 + 180) % 360 - 180).abs().max()) < 1e-2
    dark = y[0] < lab[0] - 1e-3
    c0, c1 = ops.oklab_to_oklch(lab)[1], ops.oklab_to_oklch(y)[1]
    assert bool(dark.any()) and bool((c1[dark] < c0[dark]).all())


# ------------------------------------------------------------------------------------------ colour


def test_adjust_colour_saturation_hue_and_bands(device):
    lab = ops.rgb_to_oklab(_img(np.random.default_rng(5).uniform(0, 1, (300, 3)), device))
    lch = ops.oklab_to_oklch(lab)
    assert float((ops.adjust_colour(lab) - lab).abs().max()) < 1e-6
    y = ops.oklab_to_oklch(ops.adjust_colour(lab, saturation=1.5, hue_shift=30.0))
    assert torch.allclose(y[1], lch[1] * 1.5, atol=1e-6)
    ok = lch[1] > 1e-3
    assert float((((y[2] - lch[2] - 30 + 180) % 360) - 180)[ok].abs().max()) < 1e-2
    assert torch.equal(y[0], lch[0])
    prim = ops.rgb_to_oklab(_img([[1, 0, 0], [0, 1, 1], [1, 1, 0]], device))
    c0 = ops.oklab_to_oklch(prim)[1, 0]
    z = ops.oklab_to_oklch(ops.adjust_colour(prim, saturation_by_hue={"red": 0.5}, hue_by_hue={"red": 10.0}))
    assert float(z[1, 0, 0] / c0[0]) == pytest.approx(1.5, rel=1e-3)  # red, at its band centre
    assert float(z[1, 0, 1] / c0[1]) == pytest.approx(1.0, abs=1e-4)  # cyan: untouched
    assert float(z[1, 0, 2] / c0[2]) == pytest.approx(1.0, abs=1e-4)  # yellow: the next band centre
    assert float(z[2, 0, 0] - ops.oklab_to_oklch(prim)[2, 0, 0]) == pytest.approx(10.0, abs=0.05)
    v = ops.oklab_to_oklch(
        ops.adjust_colour(prim * torch.tensor([1, 0.2, 0.2], device=device)[:, None, None], vibrance=1.0)
    )
    assert bool((v[1] > ops.oklab_to_oklch(prim * torch.tensor([1, 0.2, 0.2], device=device)[:, None, None])[1]).all())


def test_protect_skin_holds_skin_and_leaves_the_rest(device):
    cc = colour.CCS_COLOURCHECKERS["ColorChecker24 - After November 2014"]
    XYZ = colour.xyY_to_XYZ(np.array(list(cc.data.values())))
    lab = ops.rgb_to_oklab(_img(XYZ, device), space="xyz_d50")
    after = ops.adjust_colour(lab, saturation=1.4, hue_by_hue={"red": 20.0, "yellow": 20.0})
    held = ops.protect_skin(lab, after, amount=1.0)
    h0, h1, h2 = (ops.oklab_to_oklch(t)[2, 0] for t in (lab, after, held))
    dh = lambda a, b: float(((a - b + 180) % 360 - 180).abs().max())  # noqa: E731
    assert dh(h1[:2], h0[:2]) > 10.0  # without protection the skins move
    assert dh(h2[:2], h0[:2]) < 0.5  # dark skin and light skin held
    assert dh(h2[4], h1[4]) < 1e-3  # blue flower (hue far from skin) gets the change
    assert torch.equal(ops.protect_skin(lab, after, amount=0.0), after)


def test_monochrome_filters(device):
    cols = _img([[0.5, 0.5, 0.5], [0.6, 0.05, 0.03], [0.05, 0.15, 0.6], [0.1, 0.4, 0.05]], device)
    lab = ops.rgb_to_oklab(cols)
    plain = ops.monochrome(lab, amount=1.0)
    assert float(plain[1:].abs().max()) == 0.0 and torch.equal(plain[0], lab[0])
    hue, s = ops.MONO_FILTERS["red"]
    red = ops.monochrome(lab, amount=1.0, filter_hue=hue, filter_strength=s)
    assert float(red[0, 0, 0]) == pytest.approx(float(lab[0, 0, 0]), abs=3e-4)  # grey unchanged (b = −1.2e-4)
    assert float(red[0, 0, 1]) > float(lab[0, 0, 1])  # red lighter
    assert float(red[0, 0, 2]) < float(lab[0, 0, 2])  # blue sky darker
    assert float(red[0, 0, 3]) < float(lab[0, 0, 3])  # foliage darker
    gh, gs = ops.MONO_FILTERS["green"]
    green = ops.monochrome(lab, amount=1.0, filter_hue=gh, filter_strength=gs)
    assert float(green[0, 0, 3]) > float(lab[0, 0, 3])  # a green filter lightens foliage
    assert torch.equal(ops.monochrome(lab), lab)


def test_split_tone_tints_shadows_and_highlights(device):
    lab = _grey_lab([0.3, 0.9], device)
    y = ops.split_tone(lab, shadow_hue=220.0, shadow_strength=1.0, highlight_hue=60.0, highlight_strength=1.0)
    lch = ops.oklab_to_oklch(y)[:, 0]
    assert float(lch[2, 1]) == pytest.approx(60.0, abs=0.01)  # L 0.9: highlights only
    assert 0.04 < float(lch[1, 1]) <= 0.0501
    shadows = ops.oklab_to_oklch(ops.split_tone(lab, shadow_hue=220.0, shadow_strength=1.0))[:, 0]
    assert float(shadows[2, 0]) == pytest.approx(220.0, abs=0.01) and 0.03 < float(shadows[1, 0]) <= 0.05
    assert float(shadows[1, 1]) == 0.0  # no shadow tint in the highlights
    assert float(lch[1, 0]) > 0.02
    assert torch.equal(y[0], lab[0]) and torch.equal(ops.split_tone(lab), lab)


# -------------------------------------------------------------------------------------- vignette, grain


def test_vignette_gain_in_linear_light_and_strips(device):
    H, W = 41, 61
    lab = ops.rgb_to_oklab(torch.full((3, H, W), 0.4, device=device))
    y = ops.oklab_to_rgb(ops.vignette(lab, strength=0.5, falloff=2.0))
    assert float(y[:, H // 2, W // 2].mean()) == pytest.approx(0.4, rel=1e-3)  # centre untouched
    g = _t(np.ones(1), device)
    corner = float(y[:, 0, 0].mean()) / 0.4
    rho = np.hypot((0.5 - H / 2) / (H / 2), (0.5 - W / 2) / (W / 2)) / np.sqrt(2)
    assert corner == pytest.approx(1 - 0.5 * rho**2, rel=1e-3) and float(g) == 1.0
    assert float((y[0] - y[1]).abs().max()) < 1e-5  # a grey stays grey
    strip = ops.vignette(lab[:, 10:25], strength=0.5, top=10, size=(H, W))
    assert float((strip - ops.vignette(lab, strength=0.5)[:, 10:25]).abs().max()) < 1e-6


def _lowbias32(x: int) -> int:
    """Wellons' lowbias32 in plain Python integers (the outside reference)."""
    x &= 0xFFFFFFFF
    x ^= x >> 16
    x = (x * 0x7FEB352D) & 0xFFFFFFFF
    x ^= x >> 15
    x = (x * 0x846CA68B) & 0xFFFFFFFF
    return x ^ (x >> 16)


def test_hash_matches_reference(device):
    xs = [0, 1, 2, 12345, 0xFFFFFFFF, 0x80000000, 987654321]
    got = ops._hash32(torch.tensor(xs, dtype=torch.int64, device=device)).tolist()
    assert got == [_lowbias32(x) for x in xs]


def test_grain_is_gaussian_deterministic_and_joins_across_strips(device):
    n = ops.grain_noise((200, 150), size=1.0, seed=3, device=device).double().cpu().numpy().ravel()
    assert abs(n.mean()) < 0.02 and abs(n.std() - 1.0) < 0.02
    assert scipy.stats.kstest(n, "norm").pvalue > 1e-3
    a = ops.grain_noise((60, 80), size=2.5, seed=7, device=device)
    b = ops.grain_noise((20, 80), size=2.5, seed=7, top=30, device=device)
    assert torch.equal(a[30:50], b)
    assert not torch.equal(a, ops.grain_noise((60, 80), size=2.5, seed=8, device=device))
    big = ops.grain_noise((200, 200), size=4.0, seed=1, device=device).cpu().numpy()
    assert abs(big.std() - 1.0) < 0.1
    lag1 = np.corrcoef(big[:, :-1].ravel(), big[:, 1:].ravel())[0, 1]
    assert lag1 > 0.7  # coarse grain: neighbours alike
    lab = _grey_lab(np.r_[np.zeros(50), np.full(50, 0.5)], device)
    y = ops.add_grain(lab, strength=1.0, seed=0)
    assert float((y[0, 0, :50]).abs().max()) == 0.0  # black stays black (grain follows the tones)
    assert 0.03 < float((y[0, 0, 50:] - 0.5).std()) < 0.05  # 0.04·strength in the mid-tones
    batch = ops.add_grain(torch.stack([lab, lab]), strength=1.0, seed=0)
    assert torch.equal(batch[0], y) and not torch.equal(batch[1], y)


# ------------------------------------------------------------------------------------------ metrics


def _oklab_L(rgb_hw3: np.ndarray) -> np.ndarray:
    return colour.XYZ_to_Oklab(colour.sRGB_to_XYZ(rgb_hw3, apply_cctf_decoding=False))[..., 0]


def test_metrics_against_direct_computation():
    rng = np.random.default_rng(6)
    rgb = rng.uniform(0, 1, (40, 50, 3)) ** 2
    x = torch.tensor(rgb.transpose(2, 0, 1), dtype=torch.float32)
    L = _oklab_L(rgb).ravel()
    q25, q75 = np.quantile(L, [0.25, 0.75])
    assert ops.midtone_contrast(x) == pytest.approx(q75 - q25, abs=1e-4)
    assert ops.shadow_depth(x) == pytest.approx(np.sort(L)[:200].mean(), abs=1e-5)
    lab = colour.XYZ_to_Oklab(colour.sRGB_to_XYZ(rgb, apply_cctf_decoding=False))
    assert ops.mean_chroma(x) == pytest.approx(np.hypot(lab[..., 1], lab[..., 2]).mean(), abs=1e-5)
    # a known tone curve: L → 0.57 + 1.3 (L − 0.57) on greys gives slope 1.3
    g = np.linspace(0.05, 0.95, 500) ** 3
    grey = torch.tensor(np.stack([g, g, g])[:, None, :], dtype=torch.float32)
    Lg = ops.rgb_to_oklab(grey)[0]
    out = ops.oklab_to_rgb(torch.stack([0.57 + 1.3 * (Lg - 0.57), 0 * Lg, 0 * Lg]))
    assert ops.midtone_slope(grey, out) == pytest.approx(1.3, rel=1e-3)
    assert ops.midtone_slope(grey, grey) == pytest.approx(1.0, abs=1e-6)
    # vignetting: corners at half the centre's light
    img = torch.full((3, 50, 80), 0.5)
    r = ops._radius(img, top=0, size=(50, 80), roundness=0.0)
    img = torch.where((r >= 0.8)[None], torch.tensor(0.25), img)
    assert ops.corner_ratio(img) == pytest.approx(0.5 ** (1 / 3), rel=1e-3)


def test_bad_inputs():
    with pytest.raises(ShapeError, match=r"\(3, H, W\) or \(N, 3, H, W\); got \(4, 5\)"):
        ops.rgb_to_oklab(torch.zeros(4, 5))
    with pytest.raises(ShapeError, match="floating point"):
        ops.tone_curve_lab(torch.zeros(3, 4, 4, dtype=torch.int32))
    with pytest.raises(ShapeError, match=r"must be a torch\.Tensor"):
        ops.vignette(np.zeros((3, 4, 4)), strength=0.2)
    x = torch.rand(3, 8, 8)
    with pytest.raises(InvalidParameter, match="band"):
        ops.midtone_slope(x, x, band=(0.8, 0.2))
    with pytest.raises(ShapeError, match="one shape"):
        ops.midtone_slope(x, x[:, :4])
    with pytest.raises(InvalidParameter, match="fraction"):
        ops.shadow_depth(x, fraction=0.0)
    with pytest.raises(InvalidParameter, match="unknown colour space"):
        ops.rgb_to_oklab(x, space="nope")


# ------------------------------------------------------------------------------------------- gamut


def test_gamut_compress_in_gamut_identity_monotone_and_smooth(device):
    g = torch.Generator().manual_seed(21)
    x = (torch.rand(3, 64, 64, generator=g) * 2.4 - 0.6).to(device)  # far outside the cube on both sides
    y = ops.gamut_compress(x, threshold=0.75, shoulder=0.9)
    assert float(y.min()) > 0.0 and float(y.max()) < 1.0  # lands inside, no clip
    # identity for colours whose channel distances from Y are inside the threshold and Y below the knee
    inner = 0.3 + 0.1 * torch.rand(3, 32, 32, generator=g).to(device)
    assert float((ops.gamut_compress(inner, threshold=0.75, shoulder=0.9) - inner).abs().max()) < 1e-6
    # monotone in each channel, with a continuous derivative (second differences bounded as the step shrinks)
    t = torch.linspace(-0.1, 2.0, 20001, dtype=torch.float64, device=device)  # Y > 0 on the whole line
    for c in range(3):
        rgb = torch.full((3, 1, t.numel()), 0.3, dtype=torch.float64, device=device)
        rgb[c, 0] = t
        out = ops.gamut_compress(rgb, threshold=0.75, shoulder=0.9)[c, 0]
        d1 = torch.diff(out) / torch.diff(t)
        assert float(d1.min()) > 0.0
        assert float(torch.diff(d1).abs().max()) < 1e-2  # no jump in the slope (a clip jumps by 1)
    s = ops.soft_limit(t, threshold=0.8)
    assert float(s.max()) < 1.0 and float((s[t <= 0.8] - t[t <= 0.8]).abs().max()) == 0.0
    with pytest.raises(InvalidParameter, match="threshold"):
        ops.gamut_compress(x, threshold=0.2)
    with pytest.raises(InvalidParameter, match="shoulder"):
        ops.gamut_compress(x, shoulder=1.5)
