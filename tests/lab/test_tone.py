"""OECF, exposure error and dynamic range on a step chart with known Poisson–Gaussian noise."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from obscura.core.errors import InvalidParameter, ShapeError
from obscura.lab.measure.tone import dynamic_range, exposure_error, measure_tone

A, B = 2e-4, 1e-7  # noise variance = A·x + B (shot + read), signal clipped at 1
N_PATCHES, STOPS, SIDE = 24, 17.0, 96


def _step_chart(seed: int = 0, x_top: float = 0.8 * 2 ** (17 / 23)):
    """Our own generator: 24 patches over 17 stops (4 × 6 grid), Poisson–Gaussian noise, clipped at 1."""
    rng = np.random.default_rng(seed)
    x = x_top * 2.0 ** (-np.arange(N_PATCHES) * STOPS / (N_PATCHES - 1))
    img = np.zeros((4 * SIDE, 6 * SIDE))
    rois = {}
    for i, xi in enumerate(x):
        r, c = divmod(i, 6)
        shot = A * rng.poisson(xi / A, size=(SIDE, SIDE))
        read = rng.normal(0.0, math.sqrt(B), size=(SIDE, SIDE))
        img[r * SIDE : (r + 1) * SIDE, c * SIDE : (c + 1) * SIDE] = np.minimum(shot + read, 1.0)
        rois[f"step {i}"] = (c * SIDE + 4, r * SIDE + 4, (c + 1) * SIDE - 4, (r + 1) * SIDE - 4)
    return img, rois, x


def _analytic_dr(x_bright: float, t: float) -> float:
    """Stops from x_bright to the signal where x / sqrt(A·x + B) = t (solve x² = t²(A·x + B))."""
    k = t * t
    x_t = (k * A + math.sqrt((k * A) ** 2 + 4 * k * B)) / 2
    return math.log2(x_bright / x_t)


def test_step_chart_dynamic_range_and_snr():
    img, rois, x = _step_chart()
    r = measure_tone(img, rois, x, encoding="linear", clip_level=1.0)
    # the top patch (x = 1.33) clips; the next (x = 0.8, 7σ below the clip) does not
    assert r.saturated[0] and not r.saturated[1:].any()
    assert r.brightest == 1
    for t in (1.0, 10.0, 32.0):
        expected = _analytic_dr(x[1], t)
        assert abs(r.dynamic_range[t] - expected) < 0.2, (t, r.dynamic_range[t], expected)
        assert not r.dr_limited[t]
    snr_true = x / np.sqrt(A * x + B)
    sel = ~r.saturated & (snr_true >= 2)
    assert sel.sum() > 10
    np.testing.assert_allclose(r.snr[sel], snr_true[sel], rtol=0.03)
    lx, m = r.oecf
    assert np.all(np.diff(lx) > 0)
    np.testing.assert_allclose(m[::-1][1:8], x[1:8], rtol=0.01)  # linear OECF: mean = exposure
    d = r.to_dict()
    assert set(d["dynamic_range"]) == {"snr_1", "snr_10", "snr_32"}


def test_dynamic_range_interpolation_exact_for_power_law():
    # SNR ∝ exposure^0.5 exactly: log-log linear, so the interpolated crossing is exact
    e = np.log2(2.0 ** -np.arange(10.0))
    snr = 100.0 * (2.0**e) ** 0.5
    stops, limited, top = dynamic_range(e, snr, np.zeros(10, bool), 10.0)
    assert top == 0 and not limited
    assert stops == pytest.approx(2 * math.log2(10.0), abs=1e-12)
    stops, limited, _ = dynamic_range(e, snr, np.zeros(10, bool), 0.01)
    assert limited and stops == pytest.approx(9.0)
    stops, *_ = dynamic_range(e, snr, np.zeros(10, bool), 1000.0)
    assert math.isnan(stops)


def test_exposure_error(device):
    img = torch.full((3, 32, 32), 0.09, device=device)  # linear luminance 0.09: one stop under 18 %
    r = exposure_error(img, (4, 4, 28, 28), encoding="linear")
    assert r.ev == pytest.approx(-1.0, abs=1e-6)
    enc = torch.full((3, 32, 32), 0.4614, device=device)  # sRGB-encoded ≈ 0.18 linear
    assert exposure_error(enc, (0, 0, 32, 32)).ev == pytest.approx(0.0, abs=2e-3)
    assert exposure_error(enc, (0, 0, 32, 32)).to_dict()["exposure_error_ev"] == pytest.approx(0.0, abs=2e-3)


def test_bad_inputs():
    img, rois, x = _step_chart()
    with pytest.raises(ShapeError):
        measure_tone(img, rois, x[:5])
    with pytest.raises(InvalidParameter):
        measure_tone(img, rois, -x)
    with pytest.raises(InvalidParameter):
        measure_tone(img, {"a": (0, 0, 9999, 10), "b": (0, 0, 10, 10)}, [1.0, 0.5])
    with pytest.raises(InvalidParameter):
        measure_tone(img, rois, x, thresholds=(0,))
    with pytest.raises(InvalidParameter):
        measure_tone(np.ones((64, 64)), {"a": (0, 0, 32, 32), "b": (32, 32, 64, 64)}, [1.0, 0.5])  # all clipped
    with pytest.raises(ShapeError):
        measure_tone(np.ones((2, 64, 64)), rois, x)
    with pytest.raises(InvalidParameter):
        exposure_error(np.zeros((3, 8, 8)), (0, 0, 8, 8))
    with pytest.raises(InvalidParameter):
        exposure_error(np.ones((3, 8, 8)), (0, 0, 8, 8), target=0)
