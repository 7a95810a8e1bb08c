"""The slanted-edge chart: exact pixel coverage, one edge per ROI, and its e-SFR is the pixel aperture."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from obscura.core.errors import InvalidParameter, ShapeError, UnknownMethod
from obscura.lab.charts import Chart, slanted_edge_chart
from obscura.lab.charts.edge import half_plane_coverage, polygon_pixel_area, render_edge
from obscura.lab.measure import esfr
from obscura.sim import spectral


@pytest.fixture(scope="module")
def chart() -> Chart:
    return slanted_edge_chart(size=(360, 480), angle_deg=5.0, grid=(2, 3))


def dark_fraction(chart: Chart) -> np.ndarray:
    return chart.scene.weights[1].double().cpu().numpy()


# --- the exact renderers against brute-force integration -------------------------------------


@pytest.mark.parametrize("angle", (0.0, 3.0, 37.0))
@pytest.mark.parametrize("sigma", (0.0, 0.8))
def test_half_plane_coverage_matches_supersampling(angle, sigma):
    t = math.radians(angle)
    n = (math.cos(t), math.sin(t))
    rng = np.random.default_rng(1)
    xs, ys = rng.uniform(-3, 3, 40), rng.uniform(-3, 3, 40)
    got = half_plane_coverage(xs, ys, normal=n, offset=0.3, sigma=sigma)
    m = 256  # midpoint rule over the pixel square
    u = (np.arange(m) + 0.5) / m - 0.5
    px = xs[:, None, None] + u[None, None, :]
    py = ys[:, None, None] + u[None, :, None]
    s = n[0] * px + n[1] * py - 0.3
    if sigma == 0:
        want = (s > 0).mean(axis=(1, 2))
        tol = 2.0 / m  # one row of sub-samples
    else:
        from scipy.special import ndtr

        want = ndtr(s / sigma).mean(axis=(1, 2))
        tol = 1e-4
    np.testing.assert_allclose(got, want, atol=tol)


def test_polygon_pixel_area():
    assert polygon_pixel_area([(-5, -5), (5, -5), (5, 5), (-5, 5)], 0.0, 0.0) == pytest.approx(1.0)
    assert polygon_pixel_area([(0, -5), (5, -5), (5, 5), (0, 5)], 0.0, 0.0) == pytest.approx(0.5)
    assert polygon_pixel_area([(3, 3), (4, 3), (4, 4)], 0.0, 0.0) == 0.0
    # a triangle cutting the pixel corner: legs of 0.5 inside the pixel → area 0.125
    assert polygon_pixel_area([(0.0, 0.5), (0.5, 0.5), (0.5, 0.0)], 0.0, 0.0) == pytest.approx(0.125)


def test_render_edge_mean_is_the_area_fraction():
    e = render_edge((50, 60), angle_deg=7.0, centre=(27.3, 24.5))
    # the line x = 27.3 + (y − 24.5)·(−tan 7°) over the image rectangle [−0.5, 59.5] × [−0.5, 49.5]
    bright_area = 50 * (59.5 - 27.3)  # linear in y and symmetric about y = 24.5 → the midline's width
    assert e.sum() == pytest.approx(bright_area, rel=1e-9)


# --- the chart ----------------------------------------------------------------------------


def test_chart_structure(chart):
    assert isinstance(chart, Chart)
    assert chart.scene.size == (360, 480)
    assert chart.scene.weights.shape == (2, 360, 480)
    assert sorted(chart.rois) == sorted(f"edge_r{r}c{c}_{o}" for r in range(2) for c in range(3) for o in "vh")
    assert chart.reference["reflectances"] == (0.8, 0.2)
    assert set(chart.reference["angles"]) == set(chart.rois)
    w = chart.scene.weights
    assert torch.allclose(w.sum(0), torch.ones_like(w[0]))
    # the basis is reflectance × illuminant: Y = 0.8 and 0.2
    y = spectral.xyz_from_spectra(chart.scene.basis.double().numpy())[:, 1]
    np.testing.assert_allclose(y, [0.8, 0.2], rtol=1e-5)


def test_each_square_has_its_exact_area(chart):
    dark = dark_fraction(chart)
    side = chart.reference["square_side_px"]
    h, w = dark.shape
    for r in range(2):
        for c in range(3):
            cell = dark[r * h // 2 : (r + 1) * h // 2, c * w // 3 : (c + 1) * w // 3]
            assert cell.sum() == pytest.approx(side * side, rel=1e-9)


def test_roi_mean_is_the_exact_area_fraction(chart):
    dark = dark_fraction(chart)
    side = chart.reference["square_side_px"]
    t = math.radians(chart.reference["angle_deg"])
    c, s = math.cos(t), math.sin(t)
    for name, (x0, y0, x1, y1) in chart.rois.items():
        cx, cy = chart.reference["square_centres"][name[5:9].rstrip("_")]
        X0, X1, Y0, Y1 = x0 - 0.5, x1 - 0.5, y0 - 0.5, y1 - 0.5  # pixel edges of the ROI
        if name.endswith("_v"):  # right side: through centre + R(θ)(side/2, 0), direction (−sin, cos); dark left
            mx, my = cx + c * side / 2, cy + s * side / 2
            x_mid = mx + ((Y0 + Y1) / 2 - my) * (-s / c)
            area = (Y1 - Y0) * (x_mid - X0)
        else:  # top side: through centre + R(θ)(0, −side/2), direction (cos, sin); dark below
            mx, my = cx + s * side / 2, cy - c * side / 2
            y_mid = my + ((X0 + X1) / 2 - mx) * (s / c)
            area = (X1 - X0) * (Y1 - y_mid)
        assert dark[y0:y1, x0:x1].sum() == pytest.approx(area, rel=1e-9), name


def test_each_roi_crosses_exactly_one_edge(chart):
    dark = dark_fraction(chart)
    for name, (x0, y0, x1, y1) in chart.rois.items():
        roi = dark[y0:y1, x0:x1]
        if name.endswith("_h"):
            roi = roi[::-1].T  # make it dark on the left, rows along the edge
        assert np.all(roi[:, 0] == 1.0) and np.all(roi[:, -1] == 0.0), name
        assert np.all(np.diff(roi, axis=1) <= 0.0), name  # one monotone transition per row
        assert np.all(((roi > 0) & (roi < 1)).sum(axis=1) <= 2), name


def test_esfr_of_every_roi_is_the_pixel_aperture(chart):
    lum = chart.scene.xyz()[1]
    for name, (x0, y0, x1, y1) in chart.rois.items():
        r = esfr(lum[y0:y1, x0:x1])
        assert r.angle_deg == pytest.approx(chart.reference["angles"][name], abs=0.05), name
        assert r.orientation == ("vertical" if name.endswith("_v") else "horizontal")
        assert r.polarity == ("dark-to-bright" if name.endswith("_v") else "bright-to-dark")
        f = r.freq[r.freq <= 0.5]
        np.testing.assert_allclose(r.sfr[: f.size], np.abs(np.sinc(f)), atol=0.02, err_msg=name)
        assert r.edge_contrast == pytest.approx(4.0, rel=1e-4)


def test_contrast_option_and_other_angles(device):
    ch = slanted_edge_chart(size=(200, 200), angle_deg=-8.0, grid=(1, 1), contrast=10.0, device=device)
    assert ch.reference["reflectances"] == (0.8, pytest.approx(0.08))
    assert ch.scene.device.type == device
    lum = ch.scene.xyz()[1]
    for name, (x0, y0, x1, y1) in ch.rois.items():
        r = esfr(lum[y0:y1, x0:x1])
        assert r.edge_contrast == pytest.approx(10.0, rel=1e-4)
        assert r.angle_deg == pytest.approx(ch.reference["angles"][name], abs=0.05)


def test_illuminant_and_luminance_are_carried():
    ch = slanted_edge_chart(size=(200, 200), grid=(1, 1), illuminant="A", luminance=250.0)
    assert ch.scene.illuminant == "A" and ch.scene.luminance == 250.0
    np.testing.assert_allclose(
        ch.scene.basis[0].double().numpy(), 0.8 * spectral.illuminant_spd("A"), rtol=1e-6, atol=1e-6
    )


# --- bad input ----------------------------------------------------------------------------


def test_bad_chart_parameters():
    with pytest.raises(InvalidParameter, match="too small"):
        slanted_edge_chart(size=(200, 200), grid=(4, 4))
    with pytest.raises(InvalidParameter, match="angle_deg"):
        slanted_edge_chart(angle_deg=45.0)
    with pytest.raises(InvalidParameter, match="dark reflectance"):
        slanted_edge_chart(reflectances=(0.2, 0.8))
    with pytest.raises(InvalidParameter, match="contrast"):
        slanted_edge_chart(contrast=0.5)
    with pytest.raises(InvalidParameter, match="grid"):
        slanted_edge_chart(grid=(0, 2))
    with pytest.raises(ShapeError, match="size"):
        slanted_edge_chart(size=(200,))
    with pytest.raises(UnknownMethod):
        slanted_edge_chart(size=(200, 200), grid=(1, 1), illuminant="sodium")
    with pytest.raises(InvalidParameter, match="orientation"):
        render_edge((50, 50), angle_deg=5.0, orientation="diagonal")
    with pytest.raises(InvalidParameter, match="unit vector"):
        half_plane_coverage(np.zeros(2), np.zeros(2), normal=(1.0, 1.0), offset=0.0)
