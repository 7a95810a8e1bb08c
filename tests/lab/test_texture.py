"""Dead-leaves texture MTF against the analytic MTF of a known Gaussian blur; CPIQ acutance."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.integrate import quad

from obscura.core.errors import InvalidParameter, ShapeError, UnknownMethod
from obscura.lab.measure.noise import ViewingCondition
from obscura.lab.measure.texture import acutance, dead_leaves_mtf, radial_power_spectrum

N = 512


def _dead_leaves(n: int, seed: int, rmin: float = 1.0, rmax: float = 200.0) -> np.ndarray:
    """Our own generator: disks of radius density ∝ r⁻³ on [rmin, rmax] (scale invariant), each painted
    over the earlier ones, grey levels uniform in [0.15, 0.85], about 6 disks over every pixel."""
    rng = np.random.default_rng(seed)
    img = np.full((n, n), 0.5)
    mean_area = math.pi * math.log(rmax / rmin) / (0.5 * (rmin**-2 - rmax**-2))
    count = int(6 * n * n / mean_area)
    u = rng.random(count)
    r = 1.0 / np.sqrt(rmin**-2 - u * (rmin**-2 - rmax**-2))  # inverse CDF of the r⁻³ density
    cx, cy = rng.random(count) * n, rng.random(count) * n
    val = rng.uniform(0.15, 0.85, count)
    idx = np.arange(n)
    for i in range(count):
        x0, x1 = max(int(cx[i] - r[i]), 0), min(int(cx[i] + r[i]) + 2, n)
        y0, y1 = max(int(cy[i] - r[i]), 0), min(int(cy[i] + r[i]) + 2, n)
        if x0 < x1 and y0 < y1:
            m = (idx[y0:y1, None] + 0.5 - cy[i]) ** 2 + (idx[None, x0:x1] + 0.5 - cx[i]) ** 2 <= r[i] ** 2
            img[y0:y1, x0:x1][m] = val[i]
    return img


def _gaussian_blur_fourier(img: np.ndarray, sigma: float) -> np.ndarray:
    """Exact (circular) Gaussian blur: multiply the DFT by exp(−2π²σ²f²)."""
    f2 = np.fft.fftfreq(img.shape[0])[:, None] ** 2 + np.fft.fftfreq(img.shape[1])[None, :] ** 2
    return np.real(np.fft.ifft2(np.fft.fft2(img) * np.exp(-2 * np.pi**2 * sigma**2 * f2)))


@pytest.fixture(scope="module")
def chart() -> np.ndarray:
    return _dead_leaves(N, seed=0)


@pytest.mark.parametrize(("sigma", "noise_sigma"), [(1.0, 0.0), (1.5, 0.0), (1.0, 0.01), (1.5, 0.004)])
def test_dead_leaves_recovers_gaussian_mtf(chart, sigma, noise_sigma, device):
    rng = np.random.default_rng(7)
    meas = _gaussian_blur_fourier(chart, sigma)
    noise = None
    if noise_sigma:
        meas = meas + rng.normal(0.0, noise_sigma, meas.shape)
        noise = 0.5 + rng.normal(0.0, noise_sigma, (N, N))  # the uniform grey patch of the same capture
        noise = torch.tensor(noise, dtype=torch.float32, device=device)
    roi = torch.tensor(meas, dtype=torch.float32, device=device)
    r = dead_leaves_mtf(roi, chart, noise=noise)
    analytic = np.exp(-2 * np.pi**2 * sigma**2 * r.freq**2)
    sel = r.freq <= 0.25
    assert sel.sum() > 100
    np.testing.assert_allclose(r.mtf[sel], analytic[sel], rtol=0.05)
    assert r.mtf50 == pytest.approx(math.sqrt(math.log(2) / (2 * np.pi**2 * sigma**2)), rel=0.02)
    assert r.noise_subtracted == bool(noise_sigma)
    if noise_sigma:  # without the subtraction the noise inflates the high frequencies
        biased = dead_leaves_mtf(roi, chart)
        assert biased.mtf_at(0.25) > r.mtf_at(0.25)
    d = r.to_dict()
    assert d["texture_mtf50"] == r.mtf50 and len(d["texture_mtf"]) == r.freq.size


def test_rgb_roi_and_reference_spectrum(chart):
    meas = _gaussian_blur_fourier(chart, 1.0)
    rgb = np.stack([meas] * 3)
    ref_spec = radial_power_spectrum(chart)
    r = dead_leaves_mtf(rgb, ref_spec, normalize=True)
    sel = r.freq <= 0.25
    np.testing.assert_allclose(r.mtf[sel], np.exp(-2 * np.pi**2 * r.freq[sel] ** 2), rtol=0.05)


def test_white_noise_psd_is_variance():
    x = np.random.default_rng(3).normal(0.0, 0.1, (256, 256))
    f, p = radial_power_spectrum(x)
    assert 1 / 256 <= f[0] < 1.5 / 256 and 0.49 < f[-1] < 0.5 + 1 / 256  # bin 1: the 4 axial and 4 diagonal neighbours
    assert p[f > 0.1].mean() == pytest.approx(0.01, rel=0.03)  # a flat spectrum at σ²


def test_acutance_against_quadrature():
    view = ViewingCondition("test", distance_cm=60.0, pixel_pitch_cm=0.027)
    ppd = 2 * 60.0 * math.tan(math.radians(0.5)) / 0.027
    sigma = 1.0
    f = np.linspace(0.001, 0.5, 500)
    r = acutance(f, np.exp(-2 * np.pi**2 * sigma**2 * f**2), viewing=view, image_height_px=1000)
    assert r.pixels_per_degree == pytest.approx(ppd)

    def csf(nu):  # CPIQ: 75 ν^0.8 e^(−0.2ν) / 34.05
        return 75 * nu**0.8 * math.exp(-0.2 * nu) / 34.05

    num = quad(lambda nu: math.exp(-2 * np.pi**2 * sigma**2 * (nu / ppd) ** 2) * csf(nu), 0, 0.5 * ppd)[0]
    den = quad(csf, 0, 0.5 * ppd)[0]
    assert r.acutance == pytest.approx(num / den, abs=2e-3)
    perfect = acutance(f, np.ones_like(f), viewing="print_20x16_1m", image_height_px=3000)
    assert perfect.acutance == pytest.approx(1.0, abs=1e-9)
    # farther away, the same blur is less visible
    far = acutance(f, np.exp(-2 * np.pi**2 * f**2), viewing=(20.0, 200.0), image_height_px=1000)
    near = acutance(f, np.exp(-2 * np.pi**2 * f**2), viewing=(20.0, 30.0), image_height_px=1000)
    assert far.acutance > near.acutance


def test_bad_inputs(chart):
    with pytest.raises(ShapeError):
        dead_leaves_mtf(np.zeros((10, 10)), chart)
    with pytest.raises(ShapeError):
        dead_leaves_mtf(np.zeros((2, 64, 64)), chart)
    with pytest.raises(InvalidParameter):
        dead_leaves_mtf(chart, np.full((64, 64), 0.5))  # a flat "reference" has no power
    with pytest.raises(UnknownMethod):
        dead_leaves_mtf(chart, chart, window="kaiser")
    with pytest.raises(InvalidParameter):
        dead_leaves_mtf(chart, chart, noise_smooth=4)
    with pytest.raises(InvalidParameter):
        dead_leaves_mtf(chart, chart, viewing="cinema")
    with pytest.raises(InvalidParameter):
        ViewingCondition("bad", distance_cm=-1.0, image_height_cm=10.0)
    with pytest.raises(ShapeError):
        dead_leaves_mtf(chart, (np.arange(3.0), np.ones(4)))
