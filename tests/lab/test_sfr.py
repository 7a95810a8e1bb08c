"""ISO 12233 e-SFR against analytic ground truth: exactly rendered edges, Gaussian blur, noise, real data."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.optimize import brentq

from obscura.core.errors import InvalidParameter, ShapeError, UnknownMethod
from obscura.lab.charts.edge import render_edge
from obscura.lab.measure.sfr import SFR_WINDOWS, esfr, mtf50, mtf50p

ANGLES = (3.0, 5.0, 8.0)
ORIENTATIONS = ("vertical", "horizontal")
POLARITIES = ("dark-to-bright", "bright-to-dark")


def analytic_mtf(f: np.ndarray, sigma: float, angle_deg: float) -> np.ndarray:
    """Gaussian PSF × square pixel aperture, along the normal of an edge tilted by ``angle_deg``.

    A square pixel projected onto a direction at angle θ is a box of width cos θ convolved with one of
    width sin θ, so its MTF along the normal is sinc(f cos θ)·sinc(f sin θ) (→ |sinc(f)| as θ → 0).
    """
    t = math.radians(angle_deg)
    f = np.asarray(f, dtype=np.float64)
    return np.exp(-2 * math.pi**2 * sigma**2 * f**2) * np.abs(np.sinc(f * math.cos(t)) * np.sinc(f * math.sin(t)))


def analytic_mtf50(sigma: float, angle_deg: float) -> float:
    return brentq(lambda f: analytic_mtf(f, sigma, angle_deg) - 0.5, 1e-6, 0.99)


def edge_image(
    angle: float, orientation: str = "vertical", polarity: str = "dark-to-bright", sigma: float = 0.0, across: int = 96
) -> np.ndarray:
    """An edge from 0.2 to 0.8 (4:1, ISO 12233:2017 low contrast), 100 px along and ``across`` px across."""
    size = (100, across) if orientation == "vertical" else (across, 100)
    e = render_edge(size, angle_deg=angle, orientation=orientation, polarity=polarity, sigma_px=sigma)
    return 0.2 + 0.6 * e


@pytest.mark.parametrize("polarity", POLARITIES)
@pytest.mark.parametrize("orientation", ORIENTATIONS)
@pytest.mark.parametrize("angle", ANGLES)
def test_unblurred_edge_is_the_pixel_aperture(angle, orientation, polarity):
    r = esfr(edge_image(angle, orientation, polarity))
    assert r.orientation == orientation
    assert r.polarity == polarity
    assert r.angle_deg == pytest.approx(angle, abs=0.02)
    f = r.freq[r.freq <= 0.5]
    s = r.sfr[r.freq <= 0.5]
    assert f[-1] == pytest.approx(0.5, abs=0.01)
    # the pixel box: |sinc(f)| within 2 % up to Nyquist; the exact slanted-box MTF within 1.5 %
    np.testing.assert_allclose(s, np.abs(np.sinc(f)), atol=0.02)
    np.testing.assert_allclose(s, analytic_mtf(f, 0.0, angle), atol=0.015)
    assert r.mtf_at(0.5) == pytest.approx(2 / math.pi, abs=0.02)
    assert r.edge_contrast == pytest.approx(4.0, rel=1e-6)
    assert r.overshoot < 0.01 and r.undershoot < 0.01


def test_negative_tilt_is_reported_with_its_sign():
    r = esfr(edge_image(-5.0))
    assert r.angle_deg == pytest.approx(-5.0, abs=0.02)
    r = esfr(edge_image(-5.0, "horizontal", "bright-to-dark"))
    assert r.angle_deg == pytest.approx(-5.0, abs=0.02)


@pytest.mark.parametrize("polarity", POLARITIES)
@pytest.mark.parametrize("orientation", ORIENTATIONS)
@pytest.mark.parametrize("angle", ANGLES)
@pytest.mark.parametrize("sigma", (0.7, 1.0, 2.0))
def test_gaussian_blur_mtf50_matches_analytic(sigma, angle, orientation, polarity):
    r = esfr(edge_image(angle, orientation, polarity, sigma=sigma))
    expected = analytic_mtf50(sigma, angle)
    # the brief's reference (|sinc(f)| for the pixel) differs from the slanted one by < 0.01 % here
    assert expected == pytest.approx(analytic_mtf50(sigma, 0.0), rel=1e-3)
    assert r.mtf50 == pytest.approx(expected, rel=0.02)
    f = r.freq[r.freq <= 0.5]
    np.testing.assert_allclose(r.sfr[: f.size], analytic_mtf(f, sigma, angle), atol=0.02)


@pytest.mark.parametrize("sigma", (0.7, 2.0))
def test_tukey_window_matches_too(sigma):
    r = esfr(edge_image(5.0, sigma=sigma), window="tukey")
    assert r.mtf50 == pytest.approx(analytic_mtf50(sigma, 5.0), rel=0.01)


@pytest.mark.parametrize("seed", (0, 1, 2))
@pytest.mark.parametrize("sigma", (0.7, 1.0, 2.0))
def test_noise_keeps_mtf50_within_5_percent(sigma, seed):
    rng = np.random.default_rng(seed)
    img = edge_image(5.0, sigma=sigma) + rng.normal(0.0, 0.01, (100, 96))  # SNR of the step: 60
    r = esfr(img)
    assert r.mtf50 == pytest.approx(analytic_mtf50(sigma, 5.0), rel=0.05)
    assert r.angle_deg == pytest.approx(5.0, abs=0.1)


def test_overshoot_of_a_sharpened_edge():
    """Unsharp masking (1 + k)·E(σ1) − k·E(σ2) is linear, so it renders exactly; its over/undershoot is known."""
    s1, s2, k = 0.8, 2.0, 0.5
    img = 0.2 + 0.6 * (
        (1 + k) * render_edge((100, 96), angle_deg=5, sigma_px=s1)
        - k * render_edge((100, 96), angle_deg=5, sigma_px=s2)
    )
    r = esfr(img)
    # the same profile along the normal, exactly pixel-integrated, sampled finely
    from obscura.lab.charts.edge import half_plane_coverage

    t = math.radians(5.0)
    n = (math.cos(t), -math.sin(t))
    s = np.linspace(-10, 10, 4001)
    prof = (1 + k) * half_plane_coverage(s * n[0], s * n[1], normal=n, offset=0.0, sigma=s1) - k * half_plane_coverage(
        s * n[0], s * n[1], normal=n, offset=0.0, sigma=s2
    )
    expected = 100 * (prof.max() - 1.0)
    assert expected > 5
    assert r.overshoot == pytest.approx(expected, rel=0.1)
    assert r.undershoot == pytest.approx(expected, rel=0.1)  # symmetric sharpening
    assert r.mtf50p < r.mtf50  # the peak is above 1
    assert r.sfr.max() > 1.05


def test_second_order_fit_follows_a_curved_edge():
    """A bowed edge x = x0 + y·tan θ + κ·(y − yc)², box-integrated numerically at 16× per side."""
    h, w, os_ = 100, 64, 16
    y = (np.arange(h * os_) + 0.5) / os_ - 0.5
    x = (np.arange(w * os_) + 0.5) / os_ - 0.5
    edge_x = 31.5 + (y - 49.5) * math.tan(math.radians(5)) + 0.002 * (y - 49.5) ** 2
    fine = (x[None, :] > edge_x[:, None]).astype(np.float64)
    img = 0.2 + 0.6 * fine.reshape(h, os_, w, os_).mean(axis=(1, 3))
    r1 = esfr(img, fit_order=1)
    r2 = esfr(img, fit_order=2)
    assert r2.mtf_at(0.25) == pytest.approx(float(np.sinc(0.25)), abs=0.02)
    assert r2.mtf_at(0.25) > r1.mtf_at(0.25) + 0.05  # the straight fit smears the bow
    assert r2.edge_fit[0] == pytest.approx(0.002, rel=0.02)


def test_colour_roi_gives_luminance_and_channels(device):
    sig = (0.7, 1.0, 2.0)
    rgb = np.stack([edge_image(5.0, sigma=s) for s in sig])
    r = esfr(torch.tensor(rgb, dtype=torch.float32, device=device))
    assert len(r.channels) == 3
    for ch, s in zip(r.channels, sig):
        assert ch.mtf50 == pytest.approx(analytic_mtf50(s, 5.0), rel=0.02)
    lum = esfr(np.tensordot(np.array([0.2126, 0.7152, 0.0722]), rgb, axes=1))
    assert r.mtf50 == pytest.approx(lum.mtf50, rel=1e-4)
    assert analytic_mtf50(2.0, 5) < r.mtf50 < analytic_mtf50(0.7, 5)
    g = esfr(rgb, channel_weights=(0.0, 1.0, 0.0))
    assert g.mtf50 == pytest.approx(esfr(rgb[1]).mtf50, rel=1e-9)
    assert g.mtf50 == pytest.approx(r.channels[1].mtf50, rel=1e-6)  # float32 input vs float64


def test_torch_and_numpy_inputs_agree(device):
    img = edge_image(5.0, sigma=1.0)
    a = esfr(img)
    b = esfr(torch.tensor(img, device=device))
    np.testing.assert_allclose(a.sfr, b.sfr, atol=1e-12)
    assert esfr(img[None]).mtf50 == pytest.approx(a.mtf50)


def test_mtf50_and_mtf50p_by_linear_interpolation():
    f = np.linspace(0, 1, 11)
    s = 1 - f  # crosses 0.5 at 0.5 exactly
    assert mtf50(f, s) == pytest.approx(0.5)
    s2 = np.array([1.0, 1.2, 1.4, 1.2, 1.0, 0.8, 0.6, 0.4, 0.2, 0.1, 0.0])
    assert mtf50(f, s2) == pytest.approx(0.6 + 0.1 * (0.6 - 0.5) / (0.6 - 0.4))
    assert mtf50p(f, s2) == pytest.approx(0.5 + 0.1 * (0.8 - 0.7) / (0.8 - 0.6))  # 50 % of the 1.4 peak
    assert math.isnan(mtf50(f, np.ones(11)))
    r = esfr(edge_image(5.0, sigma=1.0))
    assert r.mtf_at(0.25) == pytest.approx(float(np.interp(0.25, r.freq, r.sfr)))
    assert r.mtf_at(0.0) == pytest.approx(1.0)


def test_real_satellite_knife_edge_is_plausible(data_dir):
    import tifffile

    paths = sorted((data_dir / "charts" / "mtf_estimator").glob("*.tif"))
    if not paths:
        pytest.skip("no mtf_estimator crop")
    a = tifffile.imread(paths[0]).astype(np.float64)
    for r0, r1, c0, c1 in ((20, 44, 45, 85), (60, 87, 33, 75)):  # two single-edge crops of the Baotou target
        roi = a[r0:r1, c0:c1]
        r = esfr(roi)
        # a simple line fit through the per-row 50 % crossings
        mid = 0.5 * (np.percentile(roi, 5) + np.percentile(roi, 95))
        xs = []
        for row in roi:
            j = int(np.flatnonzero(np.diff(np.sign(row - mid)) != 0)[0])
            xs.append(j + (mid - row[j]) / (row[j + 1] - row[j]))
        simple = math.degrees(math.atan(np.polyfit(np.arange(len(xs)), xs, 1)[0]))
        assert r.angle_deg == pytest.approx(simple, abs=0.5)
        assert 0.08 < r.mtf50 < 0.35  # a few-pixel blur: sane for a satellite imager
        assert 0.0 < r.mtf_at(0.5) < r.mtf_at(0.25) < 1.0


# --- steep edges (up to 45°) and the analysed span -----------------------------------------


@pytest.mark.parametrize("orientation", ORIENTATIONS)
@pytest.mark.parametrize("angle", (-43.0, 30.0, 37.0, 44.0))
@pytest.mark.parametrize("sigma", (0.0, 1.0))
def test_steep_edges_in_a_square_roi(angle, sigma, orientation):
    """A 100×100 ROI crossed corner to corner: the pixel aperture along the normal is sinc(f cos θ)·sinc(f sin θ)."""
    e = render_edge((100, 100), angle_deg=angle, orientation=orientation, sigma_px=sigma)
    r = esfr(0.2 + 0.6 * e)
    assert r.orientation == orientation
    assert r.angle_deg == pytest.approx(angle, abs=0.05)
    f = r.freq[r.freq <= 0.5]
    np.testing.assert_allclose(r.sfr[: f.size], analytic_mtf(f, sigma, angle), atol=0.015)
    assert r.mtf50 == pytest.approx(analytic_mtf50(sigma, angle), rel=0.01)
    # unblurred, the slanted aperture's MTF50 (0.626 at 44°) is 4 % above |sinc(f)|'s (0.603): resolved
    if abs(angle) > 40 and sigma == 0:
        assert r.mtf50 > 1.025 * analytic_mtf50(0.0, 0.0)


def test_near_45_degrees_in_a_wide_roi_picks_the_right_axis():
    # a wide ROI makes the side test favour "vertical" for a 46° (= 44° from horizontal) edge
    e = render_edge((80, 140), angle_deg=44.0, orientation="horizontal", sigma_px=0.8)
    r = esfr(0.2 + 0.6 * e)
    assert r.orientation == "horizontal"
    assert r.angle_deg == pytest.approx(44.0, abs=0.05)
    assert r.mtf50 == pytest.approx(analytic_mtf50(0.8, 44.0), rel=0.01)


def test_edge_leaving_the_side_of_a_tall_roi():
    """Rows past the edge's exit carry no edge: they are left out of the fit but still feed the ESF."""
    e = render_edge((160, 60), angle_deg=20.0, sigma_px=0.8)  # crosses x ∈ [0, 59] only over ~160 rows · tan 20°
    r = esfr(0.2 + 0.6 * e)
    assert r.angle_deg == pytest.approx(20.0, abs=0.05)
    assert r.mtf50 == pytest.approx(analytic_mtf50(0.8, 20.0), rel=0.01)


@pytest.mark.parametrize("sigma", (0.5, 2.0))
def test_auto_span_agrees_with_the_full_region(sigma):
    img = edge_image(5.0, sigma=sigma, across=128)
    auto = esfr(img)
    full = esfr(img, half_width="full")
    fixed = esfr(img, half_width=20)
    assert auto.lsf.size < full.lsf.size
    assert fixed.lsf.size == pytest.approx(40 * 4, abs=2)
    assert auto.esf.size == full.esf.size  # the ESF is returned whole; only the analysis is narrowed
    for r in (auto, full, fixed):
        assert r.mtf50 == pytest.approx(analytic_mtf50(sigma, 5.0), rel=0.01)
    # ISO 12233's own computation: Hamming over the whole region (slightly narrowing a wide LSF)
    iso = esfr(img, half_width="full", window="hamming")
    assert iso.mtf50 == pytest.approx(analytic_mtf50(sigma, 5.0), rel=0.015)


@pytest.mark.parametrize("seed", range(4))
def test_auto_span_cuts_the_noise(seed):
    rng = np.random.default_rng(seed)
    base = edge_image(5.0, sigma=0.4, across=128)
    errs = {"auto": [], "full": []}
    for _ in range(8):
        img = base + rng.normal(0.0, 0.6 / 30, base.shape)  # SNR 30
        for k in errs:
            errs[k].append(esfr(img, half_width=k).mtf50 / analytic_mtf50(0.4, 5.0) - 1)
    rms = {k: float(np.sqrt(np.mean(np.square(v)))) for k, v in errs.items()}
    assert rms["auto"] < 0.5 * rms["full"]  # measured 0.17–0.42 over seeds 0–7
    assert rms["auto"] < 0.03


# --- bad input ------------------------------------------------------------------------------


def test_flat_roi_has_no_edge():
    with pytest.raises(InvalidParameter, match="no edge"):
        esfr(np.full((64, 64), 0.5))
    rng = np.random.default_rng(0)
    with pytest.raises(InvalidParameter, match="no edge"):
        esfr(0.5 + rng.normal(0, 0.01, (64, 64)))


def test_too_small_and_wrong_shapes():
    with pytest.raises(ShapeError, match="too small"):
        esfr(edge_image(5.0)[:12])
    with pytest.raises(ShapeError, match=r"\(H, W\) or \(3, H, W\)"):
        esfr(np.zeros((4, 64, 64)))
    with pytest.raises(ShapeError):
        esfr(np.zeros(64))
    with pytest.raises(ShapeError):
        esfr("edge.png")
    with pytest.raises(ShapeError, match="dtype"):
        esfr(np.zeros((64, 64), dtype=complex))


def test_angle_outside_the_iso_range():
    with pytest.raises(InvalidParameter, match="angle"):
        esfr(edge_image(0.3))
    # 1°–45° by default (ISO 12233:2017); a narrower range on request
    assert esfr(edge_image(25.0)).angle_deg == pytest.approx(25.0, abs=0.05)
    with pytest.raises(InvalidParameter, match="angle"):
        esfr(edge_image(25.0), angle_range=(1.0, 20.0))
    with pytest.raises(InvalidParameter, match="angle_range"):
        esfr(edge_image(5.0), angle_range=(10.0, 50.0))


def test_bad_options():
    img = edge_image(5.0)
    with pytest.raises(InvalidParameter, match="fit_order"):
        esfr(img, fit_order=6)
    with pytest.raises(InvalidParameter, match="oversample"):
        esfr(img, oversample=1)
    with pytest.raises(UnknownMethod, match="hamming, tukey"):
        esfr(img, window="blackman")
    with pytest.raises(InvalidParameter, match="channel_weights"):
        esfr(img, channel_weights=(1, 1, 1))
    with pytest.raises(InvalidParameter, match="non-finite"):
        esfr(np.where(img > 0.5, np.nan, img))
    for hw in ("iso", 1.0, -5, True, math.nan):
        with pytest.raises(InvalidParameter, match="half_width"):
            esfr(img, half_width=hw)
    with pytest.raises(InvalidParameter, match="frequency"):
        esfr(img).mtf_at(2.0)
    assert SFR_WINDOWS.names() == ["hamming", "tukey"]
