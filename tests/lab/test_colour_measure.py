"""ColorChecker colour accuracy: ΔE00 / ΔC against colour-science on known renders."""

from __future__ import annotations

import math

import colour
import numpy as np
import pytest
import torch

from obscura.core.colour import srgb_encode
from obscura.core.errors import InvalidParameter, ShapeError
from obscura.core.types import Image
from obscura.lab.charts.colorchecker import colorchecker_chart
from obscura.lab.measure.colour import lab_to_linear_srgb, measure_colorchecker

D50 = colour.CCS_ILLUMINANTS["CIE 1931 2 Degree Standard Observer"]["D50"]


@pytest.fixture(scope="module")
def chart():
    return colorchecker_chart(size=(200, 300))


def _render(chart, values: np.ndarray, *, surround: float = 0.5) -> np.ndarray:
    """(3, H, W) image with each patch rectangle filled with ``values[i]`` (our own renderer)."""
    h, w = chart.scene.size
    img = np.full((3, h, w), surround)
    for v, (x0, y0, x1, y1) in zip(values, chart.reference["patches"].values()):
        img[:, y0:y1, x0:x1] = np.asarray(v)[:, None, None]
    return img


def _encode(lin: np.ndarray) -> np.ndarray:
    # obscura's sRGB convention (IEC 61966-2-1, negative values mirrored); colour-science extends the
    # linear segment below 0 instead, which only matters for out-of-gamut colours (the cyan patch's R)
    return srgb_encode(torch.from_numpy(np.asarray(lin, dtype=np.float64))).numpy()


def test_perfect_chart_measures_below_0_05(chart, device):
    img = torch.tensor(_encode(_render(chart, chart.reference["linear_srgb"])), dtype=torch.float32, device=device)
    r = measure_colorchecker(img, chart, encoding="srgb")
    assert r.max_delta_e00 < 0.05
    assert r.mean_delta_e00_normalized < 0.05
    assert abs(r.exposure_scale - 1.0) < 1e-3
    assert abs(r.saturation_pct - 100.0) < 0.1
    assert r.wb_error < 0.05
    assert np.abs(r.delta_c).max() < 0.05
    d = r.to_dict()
    assert len(d["delta_e00"]) == 24 and isinstance(d["mean_delta_e00"], float)


def test_linear_image_and_image_type(chart):
    lin = _render(chart, chart.reference["linear_srgb"])
    r1 = measure_colorchecker(lin, chart, encoding="linear")
    r2 = measure_colorchecker(Image(torch.tensor(lin, dtype=torch.float32), space="linear_srgb"), chart)
    assert r1.max_delta_e00 < 0.05 and r2.max_delta_e00 < 0.05
    # the D65 display white's CCT through colour-science is ~6504 K, Δuv ≈ +0.003
    assert 6000 < r1.cct_k < 7000


@pytest.mark.parametrize("theta_deg", [5.0, 15.0])
def test_hue_rotation_gives_expected_delta_e(chart, theta_deg):
    ref = chart.reference["lab"]
    t = math.radians(theta_deg)
    rot = ref.copy()
    rot[:, 1] = ref[:, 1] * math.cos(t) - ref[:, 2] * math.sin(t)
    rot[:, 2] = ref[:, 1] * math.sin(t) + ref[:, 2] * math.cos(t)
    # the rotated Lab rendered with colour-science (Lab D50 → XYZ → Bradford → sRGB), not our converter
    xyz = colour.Lab_to_XYZ(rot, D50)
    lin = colour.XYZ_to_RGB(xyz, "sRGB", D50, chromatic_adaptation_transform="Bradford")
    img = _encode(_render(chart, lin))
    r = measure_colorchecker(img, chart, encoding="srgb")
    expected = colour.delta_E(rot, ref, method="CIE 2000")
    assert np.abs(r.delta_e00 - expected).max() < 0.05
    assert expected.max() > 1.0  # the rotation is visible
    # a pure hue rotation keeps the chroma: ΔC ≈ 0, saturation 100 %
    assert np.abs(r.delta_c).max() < 0.05
    assert abs(r.saturation_pct - 100.0) < 0.2


def test_exposure_normalisation_and_saturation(chart):
    lin = chart.reference["linear_srgb"]
    img = _render(chart, lin * 0.5)  # one stop under
    r = measure_colorchecker(img, chart, encoding="linear")
    assert r.mean_delta_e00 > 5
    assert r.delta_e00_normalized.max() < 0.05
    assert abs(r.exposure_scale - 2.0) < 2e-3
    # chroma scaled by 1.2 about the neutral axis (in Lab): saturation 120 % from colour-science values
    lab = chart.reference["lab"].copy()
    lab[:, 1:] *= 1.2
    lin2 = colour.XYZ_to_RGB(colour.Lab_to_XYZ(lab, D50), "sRGB", D50, chromatic_adaptation_transform="Bradford")
    r2 = measure_colorchecker(_render(chart, lin2), chart, encoding="linear")
    neutral = list(range(18, 24))
    chroma = np.hypot(lab[:, 1], lab[:, 2])
    ref_c = np.hypot(chart.reference["lab"][:, 1], chart.reference["lab"][:, 2])
    expected = 100 * np.delete(chroma, neutral).mean() / np.delete(ref_c, neutral).mean()
    assert abs(r2.saturation_pct - expected) < 0.1
    assert abs(r2.saturation_pct - 120.0) < 0.1


def test_white_balance_error(chart):
    lab = chart.reference["lab"].copy()
    lab[:, 2] += 4.0  # a yellow cast of Δb* = 4 everywhere
    lin = colour.XYZ_to_RGB(colour.Lab_to_XYZ(lab, D50), "sRGB", D50, chromatic_adaptation_transform="Bradford")
    r = measure_colorchecker(_render(chart, lin), chart, encoding="linear")
    assert abs(r.wb_error - 4.0) < 0.05


def test_rois_and_reference_arrays(chart):
    img = _render(chart, chart.reference["srgb"])
    rois = list(chart.rois.values())
    r = measure_colorchecker(
        img,
        rois=rois,
        reference=chart.reference["srgb"],
        reference_space="srgb",
        exposure_patch=21,
        neutral=range(18, 24),
    )
    assert r.max_delta_e00 < 0.05
    assert lab_to_linear_srgb(chart.reference["lab"]) == pytest.approx(chart.reference["linear_srgb"], abs=1e-6)


def test_bad_inputs(chart):
    img = _render(chart, chart.reference["srgb"])
    with pytest.raises(InvalidParameter):
        measure_colorchecker(img)
    with pytest.raises(InvalidParameter):
        measure_colorchecker(img, chart, rois=[(0, 0, 5, 5)])
    with pytest.raises(ShapeError):
        measure_colorchecker(np.zeros((5,)), chart)
    with pytest.raises(InvalidParameter):
        measure_colorchecker(img, chart, encoding="gamma22")
    with pytest.raises(InvalidParameter):
        measure_colorchecker(img, rois=[(0, 0, 9999, 10)], reference=chart.reference["lab"][:1])
    with pytest.raises(ShapeError):
        measure_colorchecker(img, rois=list(chart.rois.values()), reference=chart.reference["lab"][:3])
    with pytest.raises(InvalidParameter):
        measure_colorchecker(img, chart, exposure_patch="grey 18")
    with pytest.raises(InvalidParameter):
        measure_colorchecker(np.zeros_like(img), chart)  # black image: nothing to normalise
