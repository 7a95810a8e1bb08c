"""SNR on patches of known Gaussian noise; ISO 15739 visual noise."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from obscura.core.errors import InvalidParameter, ShapeError
from obscura.core.types import Image
from obscura.lab.measure.noise import (
    VIEWING_CONDITIONS,
    ViewingCondition,
    measure_snr,
    patch_snr,
    visual_noise_iso15739,
)


@pytest.mark.parametrize(("mean", "sigma"), [(0.5, 0.01), (0.1, 0.02), (0.02, 0.005)])
def test_snr_within_3_percent(mean, sigma, device):
    rng = np.random.default_rng(1)
    means = np.array([mean, 0.8 * mean, 1.2 * mean])
    sig = np.array([sigma, 0.5 * sigma, 2 * sigma])
    x = means[:, None, None] + sig[:, None, None] * rng.standard_normal((3, 128, 128))
    r = patch_snr(torch.tensor(x, dtype=torch.float32, device=device))
    np.testing.assert_allclose(r.snr, means / sig, rtol=0.03)
    np.testing.assert_allclose(r.snr_db, 20 * np.log10(means / sig), atol=20 * math.log10(1.03))
    w = np.array([0.2126, 0.7152, 0.0722])  # independent channels: σ_Y² = Σ w² σ²
    assert r.luminance_snr == pytest.approx(w @ means / math.sqrt((w**2) @ sig**2), rel=0.03)
    assert r.pixels == 128 * 128


def test_detrend_removes_shading():
    rng = np.random.default_rng(2)
    yy, xx = np.mgrid[0:100, 0:100]
    shading = 0.3 + 0.002 * xx - 0.001 * yy  # a ramp of ±0.1 across the patch
    x = shading + 0.005 * rng.standard_normal((100, 100))
    plain = patch_snr(x)
    flat = patch_snr(x, detrend=True)
    assert flat.snr[0] == pytest.approx(x.mean() / 0.005, rel=0.03)
    assert plain.snr[0] < 0.2 * flat.snr[0]  # the ramp counts as noise without detrending
    assert flat.mean[0] == pytest.approx(x.mean())


def test_measure_snr_on_patches_and_srgb():
    rng = np.random.default_rng(3)
    img = np.zeros((3, 64, 128))
    img[:, :, :64] = 0.2 + 0.01 * rng.standard_normal((3, 64, 64))
    img[:, :, 64:] = 0.6 + 0.01 * rng.standard_normal((3, 64, 64))
    r = measure_snr(img, {"dark": (0, 0, 64, 64), "light": (64, 0, 128, 64)})
    np.testing.assert_allclose(r.mean, [0.2, 0.6], rtol=0.01)
    assert r.to_dict()["names"] == ["dark", "light"]
    # an sRGB-encoded Image: SNR of the decoded linear values
    enc = torch.full((3, 32, 32), 0.5)
    s = patch_snr(Image(enc, space="srgb"))
    assert s.mean[0] == pytest.approx(((0.5 + 0.055) / 1.055) ** 2.4, rel=1e-5)
    assert s.snr[0] == math.inf


def _csf_l(nu):  # CPIQ / ISO 15739 luminance CSF, published constants
    return 75 * nu**0.8 * np.exp(-0.2 * nu) / 34.05


def _csf_c(nu, a1, b1, c1, a2, b2, c2):  # Johnson & Fairchild 2003, normalised at 0
    return (a1 * np.exp(b1 * nu**c1) + a2 * np.exp(b2 * nu**c2)) / (a1 + a2)


def _luv(xyz: np.ndarray, white: tuple[float, float, float] = (0.95047, 1.0, 1.08883)) -> np.ndarray:
    """CIE 1976 L*u*v* (CIE 15:2004) of one XYZ triple, relative to D65."""
    x, y, z = xyz
    yr = y / white[1]
    lum = 116 * np.cbrt(yr) - 16 if yr > 216 / 24389 else 24389 / 27 * yr
    up, vp = 4 * x / (x + 15 * y + 3 * z), 9 * y / (x + 15 * y + 3 * z)
    den = white[0] + 15 * white[1] + 3 * white[2]
    return np.array([lum, 13 * lum * (up - 4 * white[0] / den), 13 * lum * (vp - 9 * white[1] / den)])


def test_visual_noise_grey_noise_matches_linear_prediction():
    """Grey (R = G = B) white noise of small σ on mid grey: σ of L*, u*, v* and the visual noise predicted
    from the filters' gains and the CIELUV formulas linearised at the grey."""
    n, g, s = 256, 0.2, 0.002
    rng = np.random.default_rng(4)
    noise = s * rng.standard_normal((n, n))
    img = np.broadcast_to(g + noise, (3, n, n)).copy()
    view = ViewingCondition("t", distance_cm=60.0, pixel_pitch_cm=0.027)
    r = visual_noise_iso15739(img, encoding="linear", viewing=view)
    ppd = 2 * 60 * math.tan(math.radians(0.5)) / 0.027
    nu = np.hypot(np.fft.fftfreq(n)[:, None], np.fft.fftfreq(n)[None, :]) * ppd
    h = [
        _csf_l(nu),
        _csf_c(nu, 109.1413, -0.0004, 3.4244, 93.5971, -0.0037, 2.1677),
        _csf_c(nu, 7.0328, 0.0, 4.2582, 40.6910, -0.1039, 1.6487),
    ]
    m_xyz = np.array(
        [[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750], [0.0193339, 0.1191920, 0.9503041]]
    )
    m_opp = np.array([[0.279, 0.720, -0.107], [-0.449, 0.290, -0.077], [0.086, -0.590, 0.501]])
    w = m_xyz @ np.ones(3)  # XYZ of a unit grey
    spec = np.fft.fft2(noise - noise.mean())
    d_opp = np.stack([(m_opp @ w)[i] * np.real(np.fft.ifft2(spec * hi)) for i, hi in enumerate(h)])
    d_xyz = np.tensordot(np.linalg.inv(m_opp), d_opp, axes=1)  # the filtered XYZ perturbation
    x0, eps = g * w, 1e-7
    jac = np.stack([(_luv(x0 + eps * e) - _luv(x0 - eps * e)) / (2 * eps) for e in np.eye(3)], axis=1)
    sl, su, sv = np.tensordot(jac, d_xyz, axes=1).std(axis=(1, 2))  # L*u*v* linearised at XYZ = g·w
    assert (r.sigma_l, r.sigma_u, r.sigma_v) == pytest.approx((sl, su, sv), rel=0.01)
    assert r.vn == pytest.approx(math.log10(1 + sl + 0.852 * su + 0.323 * sv), rel=0.01)


def test_visual_noise_properties():
    flat = np.full((3, 64, 64), 0.5)
    assert visual_noise_iso15739(flat).vn == pytest.approx(0.0, abs=1e-9)
    rng = np.random.default_rng(5)
    base = 0.5 + rng.standard_normal((3, 128, 128))
    vn = [visual_noise_iso15739(0.5 + (base - 0.5) * s).vn for s in (0.005, 0.01, 0.02)]
    assert vn[0] < vn[1] < vn[2]
    near = visual_noise_iso15739(0.5 + (base - 0.5) * 0.01, viewing=(20.0, 30.0))
    far = visual_noise_iso15739(0.5 + (base - 0.5) * 0.01, viewing=(20.0, 300.0))
    assert far.vn < near.vn
    assert set(VIEWING_CONDITIONS) >= {"monitor_100pct", "print_20x16_1m"}
    assert near.to_dict()["viewing"]["distance_cm"] == 30.0


def test_bad_inputs():
    with pytest.raises(ShapeError):
        patch_snr(np.zeros((2, 2)))
    with pytest.raises(ShapeError):
        patch_snr(np.zeros((2, 8, 8)))
    with pytest.raises(ShapeError):
        patch_snr("patch")
    with pytest.raises(InvalidParameter):
        patch_snr(np.full((8, 8), np.nan))
    with pytest.raises(InvalidParameter):
        patch_snr(np.ones((8, 8)), encoding="log")
    with pytest.raises(InvalidParameter):
        measure_snr(np.ones((3, 8, 8)), {"a": (0, 0, 100, 100)})
    with pytest.raises(InvalidParameter):
        measure_snr(np.ones((3, 8, 8)), {})
    with pytest.raises(ShapeError):
        visual_noise_iso15739(np.ones((64, 64)))
    with pytest.raises(InvalidParameter):
        visual_noise_iso15739(np.ones((3, 64, 64)), viewing="cinema")
    with pytest.raises(InvalidParameter):
        ViewingCondition("x", distance_cm=50.0)
