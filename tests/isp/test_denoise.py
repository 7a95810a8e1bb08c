"""Tests for obscura.isp.denoise: noise estimation, noise-model propagation and the denoisers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from obscura.core.colour import srgb_decode
from obscura.core.errors import InvalidParameter, ShapeError, UnknownMethod
from obscura.isp import denoise as dn

HIGH = (8e-3, 2e-4)  # variance = a·x + b
MEDIUM = (1e-3, 1e-5)
VERY_LOW = (1e-5, 1e-7)


def _load(data_dir, i: int) -> torch.Tensor:
    from PIL import Image

    a = np.asarray(Image.open(data_dir / "images" / "kodak24" / f"kodim{i:02d}.png"), dtype=np.float32) / 255.0
    return srgb_decode(torch.from_numpy(a).permute(2, 0, 1).contiguous())


@pytest.fixture(scope="module")
def kodak(data_dir) -> dict[int, torch.Tensor]:
    return {i: _load(data_dir, i) for i in (3, 7)}


def _noisy(x: torch.Tensor, a: float, b: float, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return x + torch.randn(x.shape, generator=g) * torch.sqrt(a * x.clamp_min(0) + b)


def _psnr(y: torch.Tensor, x: torch.Tensor) -> float:
    return float(10 * torch.log10(1.0 / ((y.cpu().double() - x.double()) ** 2).mean()))


def _gain(method: str, x: torch.Tensor, ab: tuple[float, float], device: str, **opts) -> float:
    n = _noisy(x, *ab)
    y = dn.denoise(n.to(device), method=method, noise_profile=(ab,) * 3, **opts)
    assert y.shape == x.shape and y.dtype == torch.float32 and y.device.type == device
    return _psnr(y, x) - _psnr(n, x)


# ---------------------------------------------------------------------------------------------- quality


@pytest.mark.parametrize("img", [3, 7])
def test_bilateral_psnr(kodak, img, device):
    x = kodak[img]
    assert _gain("bilateral", x, HIGH, device) >= 4.0  # measured 7.1 / 7.6 dB
    assert _gain("bilateral", x, MEDIUM, device) >= 2.0
    assert _gain("bilateral", x, VERY_LOW, device) >= -0.1  # measured +0.45 / +0.54 dB


@pytest.mark.parametrize("img", [3, 7])
def test_nlm_psnr(kodak, img, device):
    x = kodak[img]
    assert _gain("nlm", x, HIGH, device) >= 5.0  # measured 7.4 / 8.7 dB
    assert _gain("nlm", x, VERY_LOW, device) >= -0.1


def test_chroma_noise_removed_more_than_luma(kodak, device):
    x = kodak[3]
    n = _noisy(x, *HIGH)
    y = dn.denoise(n.to(device), noise_profile=(HIGH,) * 3).cpu()
    T = torch.tensor(dn.OPPONENT, dtype=torch.float32)

    def err(z):
        e = torch.einsum("ij,jhw->ihw", T, z - x)
        return e[0].pow(2).mean(), e[1:].pow(2).mean()

    (ly_in, lc_in), (ly_out, lc_out) = err(n), err(y)
    assert lc_out / lc_in < 0.5 * (ly_out / ly_in)  # measured: chroma ×0.06, luma ×0.5 of the noise power
    assert ly_out < ly_in


def test_strength_zero_leaves_that_component(kodak, device):
    x = _noisy(kodak[7][:, :96, :128], *HIGH).to(device)
    T = torch.tensor(dn.OPPONENT, dtype=torch.float32, device=device)
    y = dn.denoise(x, noise_profile=(HIGH,) * 3, luma_strength=0.0)
    yx, yy = torch.einsum("ij,jhw->ihw", T, x), torch.einsum("ij,jhw->ihw", T, y)
    torch.testing.assert_close(yy[0], yx[0], atol=2e-6, rtol=0)  # luma untouched
    assert float((yy[1:] - yx[1:]).abs().mean()) > 1e-3
    z = dn.denoise(x, noise_profile=(HIGH,) * 3, chroma_strength=0.0)
    zz = torch.einsum("ij,jhw->ihw", T, z)
    torch.testing.assert_close(zz[1:], yx[1:], atol=2e-6, rtol=0)  # chroma untouched
    assert torch.equal(dn.denoise(x, luma_strength=0.0, chroma_strength=0.0, sigma=0.1), x)


# ----------------------------------------------------------------------------------------- noise model


def test_profile_with_gains_equals_explicit_sigma_map(kodak):
    a, b = 2e-3, 5e-5
    gains = torch.tensor([2.0, 1.0, 1.6])
    # camera-normalised signal, kept ≥ 0.1 so that no noisy value is clipped at 0 by either path
    cam = (0.1 + 0.8 * kodak[3][:, :128, :160]) / gains[:, None, None]
    noisy_cam = _noisy(cam, a, b)
    x = noisy_cam * gains[:, None, None]  # white balanced
    y1 = dn.denoise(x, noise_profile=((a, b),) * 3, gains=gains)
    # by hand: var_c = g_c²(a·x_c/g_c + b) = g_c·a·x_c + g_c²·b, evaluated on the noisy signal
    sig = torch.sqrt(gains[:, None, None] * a * x.clamp_min(0) + gains[:, None, None] ** 2 * b)
    y2 = dn.denoise(x, sigma=sig)
    torch.testing.assert_close(y1, y2, atol=1e-5, rtol=0)


def test_sigma_forms_agree(device):
    x = (0.3 + 0.05 * torch.randn(3, 64, 80, generator=torch.Generator().manual_seed(5))).to(device)
    y1 = dn.denoise(x, sigma=0.05)
    y2 = dn.denoise(x, sigma=(0.05, 0.05, 0.05))
    y3 = dn.denoise(x, sigma=torch.full((64, 80), 0.05, device=device))
    y4 = dn.denoise(x, noise_profile=((0.0, 0.05**2),))
    for y in (y2, y3, y4):
        torch.testing.assert_close(y, y1, atol=1e-5, rtol=0)
    assert float(y1.std()) < 0.5 * float(x.std())


@pytest.mark.parametrize("img", [3, 7])
@pytest.mark.parametrize("sigma", [0.02, 0.04])
def test_estimate_noise_sigma_within_15_percent(kodak, img, sigma):
    n = kodak[img] + sigma * torch.randn(kodak[img].shape, generator=torch.Generator().manual_seed(7))
    est = dn.estimate_noise_sigma(n)
    assert est.shape == (3,)
    assert bool(((est / sigma - 1).abs() <= 0.15).all()), est


@pytest.mark.parametrize("img", [3, 7])
def test_estimate_noise_profile_within_15_percent(kodak, img):
    a, b = 4e-3, 1e-4
    n = _noisy(kodak[img], a, b, seed=8)
    for pa, pb in dn.estimate_noise_profile(n):
        for level in (0.05, 0.2, 0.5):
            ratio = ((pa * level + pb) / (a * level + b)) ** 0.5
            assert abs(ratio - 1) <= 0.15, (pa, pb, level)


def test_estimated_profile_denoises(kodak):
    x = kodak[3]
    n = _noisy(x, *HIGH)
    assert _psnr(dn.denoise(n), x) - _psnr(n, x) >= 4.0


def test_odd_sizes_and_input_untouched(device):
    x = (0.2 + 0.03 * torch.randn(3, 37, 51, generator=torch.Generator().manual_seed(9))).to(device)
    before = x.clone()
    for m in ("bilateral", "nlm"):
        y = dn.denoise(x, method=m, sigma=0.03)
        assert y.shape == x.shape
        assert float(y.std()) < float(x.std())
    assert torch.equal(x, before)


def test_strips_match_whole_frame():
    x = 0.3 + 0.05 * torch.randn(3, 600, 48, generator=torch.Generator().manual_seed(10))
    from obscura.isp import _filters

    for m in ("bilateral", "nlm"):
        a = dn.denoise(x, method=m, sigma=0.05)
        old = _filters._STRIP_PIXELS
        try:
            _filters._STRIP_PIXELS = 1 << 30
            b = dn.denoise(x, method=m, sigma=0.05)
        finally:
            _filters._STRIP_PIXELS = old
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


def test_threads_do_not_change_the_result():
    # strips spread over 2 workers (single-threaded ops) must give the one-thread result (up to rounding)
    x = 0.3 + 0.05 * torch.randn(3, 700, 64, generator=torch.Generator().manual_seed(11))
    threads = torch.get_num_threads()
    for m in ("bilateral", "nlm"):
        try:
            torch.set_num_threads(1)
            a = dn.denoise(x, method=m, sigma=0.05)
            torch.set_num_threads(2)
            b = dn.denoise(x, method=m, sigma=0.05)
        finally:
            torch.set_num_threads(threads)
        torch.testing.assert_close(a, b, atol=1e-6, rtol=0)


def test_up2_rows_equals_bilinear_interpolation():
    from torch.nn import functional as F  # noqa: N812

    from obscura.isp._filters import pad_replicate

    low = torch.rand(2, 9, 11, generator=torch.Generator().manual_seed(12))
    full = F.interpolate(low[None], scale_factor=2, mode="bilinear", align_corners=False)[0]
    lowp = pad_replicate(low, 1)
    for la, lb in [(0, 9), (0, 3), (4, 7), (6, 9)]:
        torch.testing.assert_close(dn._up2_rows(lowp, la, lb), full[:, 2 * la : 2 * lb], atol=1e-6, rtol=0)


# ------------------------------------------------------------------------------------------- bad input

_X = torch.full((3, 32, 32), 0.2)


@pytest.mark.parametrize(
    ("x", "opts", "err"),
    [
        (torch.zeros(32, 32), {"sigma": 0.1}, ShapeError),
        (torch.zeros(4, 32, 32), {"sigma": 0.1}, ShapeError),
        (torch.zeros(3, 32, 32, dtype=torch.uint8), {"sigma": 0.1}, ShapeError),
        (_X, {"sigma": -0.1}, InvalidParameter),
        (_X, {"sigma": (0.1, 0.2)}, InvalidParameter),
        (_X, {"sigma": torch.zeros(3, 16, 16)}, ShapeError),
        (_X, {"noise_profile": ((1e-3,),)}, InvalidParameter),
        (_X, {"noise_profile": ((-1e-3, 0.0),)}, InvalidParameter),
        (_X, {"noise_profile": ((1e-3, 1e-5),), "gains": (1.0, 2.0)}, InvalidParameter),
        (_X, {"noise_profile": ((1e-3, 1e-5),), "gains": (1.0, 0.0, 2.0)}, InvalidParameter),
        (_X, {"sigma": 0.1, "luma_strength": -1.0}, InvalidParameter),
        (_X, {"sigma": 0.1, "chroma_strength": float("nan")}, InvalidParameter),
        (_X, {"sigma": 0.1, "luma_radius": 99}, InvalidParameter),
        (_X, {"sigma": 0.1, "method": "bm3d"}, UnknownMethod),
    ],
)
def test_bad_input(x, opts, err):
    with pytest.raises(err):
        dn.denoise(x, **opts)


def test_small_images_without_profile():
    # too small for the estimators: they say so; denoise falls back to a global σ estimate
    x = 0.3 + 0.05 * torch.randn(3, 20, 20, generator=torch.Generator().manual_seed(11))
    with pytest.raises(ShapeError, match="too small"):
        dn.estimate_noise_profile(x)
    with pytest.raises(ShapeError, match="too small"):
        dn.estimate_noise_sigma(x)
    y = dn.denoise(x)
    assert float((y - 0.3).std()) < 0.7 * float((x - 0.3).std())
    z = dn.denoise(x[:, :64, :], iso=3200.0)  # (3, 20, 20) again; iso accepted
    assert z.shape == x.shape


def test_unknown_method_lists_valid():
    with pytest.raises(UnknownMethod, match="bilateral, nlm"):
        dn.denoise(_X, method="nope")


def test_noise_model_follows_gains_and_colour_matrix():
    """The predicted luma/chroma variance matches the measured one after WB gains and a colour matrix."""
    from obscura.isp.denoise import OPPONENT, _noise_model

    gen = torch.Generator().manual_seed(3)
    a, b = 4e-3, 1e-4
    cam = torch.tensor([0.20, 0.35, 0.15])  # a flat patch, normalized raw units
    n = 400_000
    raw = cam[:, None] + torch.randn(3, n, generator=gen) * (a * cam[:, None] + b).sqrt()
    g = torch.tensor([2.0, 1.0, 1.6])
    M = torch.tensor([[1.7, -0.5, -0.2], [-0.25, 1.45, -0.2], [0.05, -0.45, 1.4]], dtype=torch.float64)
    work = (M.float() @ (g[:, None] * raw)).reshape(3, 400, 1000)
    model = _noise_model(work, noise_profile=((a, b),) * 3, sigma=None, iso=None, gains=g, matrix=M)
    predicted = model.of(work).mean(dim=(1, 2))
    opp = torch.einsum("ij,jhw->ihw", torch.as_tensor(OPPONENT, dtype=torch.float32), work)
    measured = torch.stack([opp[0].var(), (opp[1].var() + opp[2].var()) / 2])
    assert torch.allclose(predicted.float(), measured, rtol=0.03), (predicted, measured)
    without = _noise_model(work, noise_profile=((a, b),) * 3, sigma=None, iso=None, gains=g, matrix=None)
    assert not torch.allclose(without.of(work).mean(dim=(1, 2)).float(), measured, rtol=0.03)
