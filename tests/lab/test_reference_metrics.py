"""Full-reference metrics against scikit-image, colour-science and the official IQA values."""

from __future__ import annotations

import csv

import colour
import numpy as np
import pytest
import torch
from PIL import Image
from scipy import ndimage

from obscura.core.errors import InvalidParameter, ShapeError
from obscura.lab.measure.reference import delta_e00, delta_e00_map, ms_ssim, psnr, rgb_to_lab, rgb_to_y, ssim, ssim_map

skm = pytest.importorskip("skimage.metrics")
SK = dict(gaussian_weights=True, sigma=1.5, use_sample_covariance=False)


def _load(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def _distortions(img: np.ndarray, rng) -> list[np.ndarray]:
    """Noisy, blurred and quantised-shifted versions (uint8)."""
    f = img.astype(np.float64)
    noisy = np.clip(f + rng.normal(0, 12, f.shape), 0, 255)
    blur = ndimage.gaussian_filter(f, sigma=(1.2, 1.2, 0))
    dark = 0.8 * f + 10
    return [np.round(v).astype(np.uint8) for v in (noisy, blur, dark)]


def _t(a: np.ndarray, device: str) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1))).to(device)


@pytest.mark.parametrize("name", ["kodak24/kodim03.png", "kodak24/kodim08.png", "mcmaster/4.png"])
def test_psnr_ssim_match_scikit_image(data_dir, device, name):
    rng = np.random.default_rng(0)
    ref = _load(data_dir / "images" / name)[:192, :256]
    for dist in _distortions(ref, rng):
        for scale in (255.0, 1.0):
            r = _t(ref, device).float() / (255.0 / scale)
            d = _t(dist, device).float() / (255.0 / scale)
            rn, dn = r.cpu().double().numpy(), d.cpu().double().numpy()
            want_s = skm.structural_similarity(rn, dn, data_range=scale, channel_axis=0, **SK)
            want_p = skm.peak_signal_noise_ratio(rn, dn, data_range=scale)
            assert float(ssim(r, d, data_range=scale)) == pytest.approx(want_s, abs=1e-4)
            assert float(psnr(r, d, data_range=scale)) == pytest.approx(want_p, abs=1e-4)
    # batched (N, C, H, W) gives the per-image values
    batch_r = torch.stack([_t(ref, device).float()] * 2)
    batch_d = torch.stack([_t(v, device).float() for v in _distortions(ref, rng)[:2]])
    s = ssim(batch_r, batch_d, data_range=255)
    assert s.shape == (2,)
    for i in range(2):
        assert float(s[i]) == pytest.approx(float(ssim(batch_r[i], batch_d[i], data_range=255)), abs=1e-6)


def test_ssim_options_match_scikit_image(data_dir, device):
    rng = np.random.default_rng(1)
    ref = _load(data_dir / "images" / "kodak24" / "kodim05.png")[:128, :160]
    dist = _distortions(ref, rng)[0]
    r, d = _t(ref, device), _t(dist, device)
    # uniform 7×7 window with the sample covariance (scikit-image's other defaults)
    want = skm.structural_similarity(ref, dist, data_range=255, channel_axis=2, win_size=7)
    assert float(ssim(r, d, data_range=255, gaussian_weights=False, win_size=7, use_sample_covariance=True)) == (
        pytest.approx(want, abs=1e-4)
    )
    # full map (no crop): scikit-image's ``full=True`` map with its reflect borders
    _, full = skm.structural_similarity(ref, dist, data_range=255, channel_axis=2, full=True, **SK)
    assert float(ssim(r, d, data_range=255, crop=False)) == pytest.approx(full.mean(), abs=1e-4)
    m = ssim_map(r, d, data_range=255)
    np.testing.assert_allclose(m[0].cpu().numpy(), full.transpose(2, 0, 1), atol=1e-4)
    # greyscale input, k1/k2
    g1, g2 = ref[..., 1].astype(np.float64), dist[..., 1].astype(np.float64)
    want = skm.structural_similarity(g1, g2, data_range=255, K1=0.02, K2=0.05, **SK)
    got = ssim(torch.from_numpy(g1).to(device), torch.from_numpy(g2).to(device), data_range=255, k1=0.02, k2=0.05)
    assert float(got) == pytest.approx(want, abs=1e-4)


def test_ssim_downsample_is_block_mean_then_ssim(device):
    rng = np.random.default_rng(2)
    a = rng.random((600, 520))
    b = np.clip(a + 0.1 * rng.standard_normal(a.shape), 0, 1)
    f = round(520 / 256)  # 2
    da = a.reshape(300, f, 260, f).mean(axis=(1, 3))
    db = b.reshape(300, f, 260, f).mean(axis=(1, 3))
    want = skm.structural_similarity(da, db, data_range=1.0, **SK)
    got = ssim(torch.from_numpy(a).to(device), torch.from_numpy(b).to(device), data_range=1.0, downsample=True)
    assert float(got) == pytest.approx(want, abs=1e-6)


def _official(data_dir):
    root = data_dir / "iqa_reference" / "iqa_pytorch_calibration"
    with open(root / "results_official_I03_I04_I06.csv", newline="") as fh:
        rows = {r["Method"]: r for r in csv.DictReader(fh)}
    return root, rows


@pytest.mark.parametrize("pair", ["I03", "I04", "I06"])
def test_official_iqa_values(data_dir, pair):
    root, rows = _official(data_dir)
    ref = _t(_load(root / "ref_dir" / f"{pair}.png"), "cpu").float() / 255
    dist = _t(_load(root / "dist_dir" / f"{pair}.png"), "cpu").float() / 255
    off = {k: float(rows[k][f"{pair}.bmp"]) for k in ("psnr", "ssim", "ms_ssim")}
    # PSNR: RGB, 8-bit range. SSIM / MS-SSIM: rounded BT.601 luma (MATLAB rgb2gray), 8-bit range.
    assert float(psnr(ref, dist, data_range=1.0)) == pytest.approx(off["psnr"], rel=0.005)
    yr, yd = rgb_to_y(255 * ref).round(), rgb_to_y(255 * dist).round()
    assert float(ssim(yr, yd, data_range=255)) == pytest.approx(off["ssim"], rel=0.005)
    assert float(ms_ssim(yr, yd, data_range=255)) == pytest.approx(off["ms_ssim"], rel=0.005)


def test_ms_ssim_properties(device):
    rng = np.random.default_rng(3)
    a = torch.from_numpy(rng.random((3, 200, 180))).to(device)
    assert float(ms_ssim(a, a, data_range=1.0)) == pytest.approx(1.0, abs=1e-12)
    b = (a + 0.05 * torch.from_numpy(rng.standard_normal((3, 200, 180))).to(device)).clamp(0, 1)
    c = (a + 0.2 * torch.from_numpy(rng.standard_normal((3, 200, 180))).to(device)).clamp(0, 1)
    mb, mc = float(ms_ssim(b, a, data_range=1.0)), float(ms_ssim(c, a, data_range=1.0))
    assert 0 < mc < mb < 1
    # one scale with weight 1 is SSIM itself
    assert float(ms_ssim(b, a, data_range=1.0, weights=(1.0,))) == pytest.approx(
        float(ssim(b, a, data_range=1.0)), abs=1e-9
    )
    batch = ms_ssim(torch.stack([b, c]), torch.stack([a, a]), data_range=1.0)
    assert batch.shape == (2,) and float(batch[1]) == pytest.approx(mc, abs=1e-9)


def test_delta_e00_matches_colour_science(device):
    rng = np.random.default_rng(4)
    n = 4000
    lab1 = np.stack([rng.uniform(0, 100, n), rng.uniform(-90, 90, n), rng.uniform(-90, 90, n)], axis=1)
    lab2 = lab1 + rng.normal(0, 8, lab1.shape)
    lab1[:50, 1:] = 0.0  # neutral colours (zero chroma) take the special hue branches
    lab2[25:75, 1:] = 0.0
    want = colour.delta_E(lab1, lab2, method="CIE 2000")
    got = delta_e00(torch.from_numpy(lab1).to(device), torch.from_numpy(lab2).to(device)).cpu().numpy()
    np.testing.assert_allclose(got, want, atol=1e-4)
    # Sharma, Wu & Dalal (2005) Table 1, pair 1: ΔE00 = 2.0425
    p = delta_e00(torch.tensor([50.0, 2.6772, -79.7751]), torch.tensor([50.0, 0.0, -82.7485]))
    assert float(p) == pytest.approx(2.0425, abs=1e-4)


def test_delta_e00_map_matches_colour_science(device):
    rng = np.random.default_rng(5)
    x = rng.random((3, 24, 32))
    y = np.clip(x + rng.normal(0, 0.05, x.shape), 0, 1)
    d65 = colour.CCS_ILLUMINANTS["CIE 1931 2 Degree Standard Observer"]["D65"]
    # obscura derives RGB→XYZ from the primaries; colour's sRGB defaults to IEC 61966-2-1's rounded matrix
    srgb = colour.RGB_COLOURSPACES["sRGB"].copy()
    srgb.use_derived_matrix_RGB_to_XYZ = True

    def lab(v, encoded):
        rgb = v.transpose(1, 2, 0)
        xyz = colour.RGB_to_XYZ(rgb, srgb, apply_cctf_decoding=encoded)
        return colour.XYZ_to_Lab(xyz, d65)

    for enc in ("srgb", "linear"):
        want = colour.delta_E(lab(x, enc == "srgb"), lab(y, enc == "srgb"), method="CIE 2000")
        got = delta_e00_map(
            torch.from_numpy(x).float().to(device), torch.from_numpy(y).float().to(device), encoding=enc
        )
        assert got.shape == (24, 32) and got.dtype == torch.float32
        np.testing.assert_allclose(got.cpu().numpy(), want, atol=1e-4)
        got64 = delta_e00_map(torch.from_numpy(x).to(device), torch.from_numpy(y).to(device), encoding=enc)
        np.testing.assert_allclose(got64.cpu().numpy(), want, atol=1e-4)
    white = rgb_to_lab(torch.ones(3, 1, 1, dtype=torch.float64))
    np.testing.assert_allclose(white[:, 0, 0].numpy(), [100.0, 0.0, 0.0], atol=1e-3)


def test_reference_bad_input():
    a = torch.rand(3, 32, 32)
    with pytest.raises(InvalidParameter):
        psnr(a, a, data_range=0)
    with pytest.raises(InvalidParameter):
        ssim(a, a, data_range=True)
    with pytest.raises(ShapeError):
        ssim(a, a[:, :30], data_range=1.0)
    with pytest.raises(InvalidParameter):
        ssim(a, a, data_range=1.0, win_size=8)
    with pytest.raises(InvalidParameter):
        ssim(a, a, data_range=1.0, channel_axis=2)
    with pytest.raises(ShapeError):
        ssim(torch.rand(3, 8, 8), torch.rand(3, 8, 8), data_range=1.0)
    with pytest.raises(ShapeError):
        ms_ssim(a, a, data_range=1.0)
    with pytest.raises(InvalidParameter):
        ms_ssim(a, a, data_range=1.0, weights=())
    with pytest.raises(ShapeError):
        rgb_to_y(torch.rand(2, 8, 8))
    with pytest.raises(InvalidParameter):
        delta_e00_map(a, a, encoding="gamma")
    with pytest.raises(ShapeError):
        delta_e00(torch.rand(4, 5, 5), torch.rand(4, 5, 5))
    with pytest.raises(ShapeError):
        psnr([1, 2], [1, 2], data_range=1.0)
