"""Colour calibration of the virtual sensor: DNG ColorMatrix / ForwardMatrix / AsShotNeutral from spectra."""

from __future__ import annotations

import colour
import numpy as np
import pytest
import torch

from obscura.core.colour import WHITE_D50, bradford_matrix, xy_to_XYZ
from obscura.core.errors import InvalidParameter, ShapeError, UnknownMethod
from obscura.core.types import RawMeta
from obscura.isp.colour import camera_to_xyz_d50
from obscura.sim import sensor as sen
from obscura.sim import spectral
from obscura.sim.scene import flat_scene

D50 = xy_to_XYZ(WHITE_D50)


def _chart(curves: np.ndarray, illuminant: str):
    """Camera responses (24, 3), true XYZ (24, 3) and the camera neutral of the ColorChecker under ``illuminant``."""
    spd = spectral.illuminant_spd(illuminant)
    stimuli = spectral.colorchecker_reflectances() * spd[None]
    photon = curves * spectral.WAVELENGTHS  # a photon-counting sensor: response to energy ∝ QE·λ
    return stimuli @ photon.T, spectral.xyz_from_spectra(stimuli), photon @ spd


def _xy(xyz: np.ndarray) -> np.ndarray:
    return xyz[:2] / xyz.sum()


def _de00(xyz_a: np.ndarray, xyz_b: np.ndarray, white_xyz: np.ndarray) -> np.ndarray:
    w = _xy(white_xyz)
    return colour.delta_E(colour.XYZ_to_Lab(xyz_a, w), colour.XYZ_to_Lab(xyz_b, w), method="CIE 2000")


@pytest.mark.parametrize(("index", "illuminant", "max_mean"), [(1, "A", 1.5), (2, "D65", 1.0)])
def test_canon_tags_reproduce_colorchecker(index: int, illuminant: str, max_mean: float) -> None:
    """Canon 5D Mark II curves: the ForwardMatrix maps white-balanced camera RGB of the 24 patches to
    XYZ D50 with mean ΔE2000 < 1.5 under A and < 1 under D65 (measured 1.06 and 0.73; max 4.7 and 2.2)
    against the true XYZ Bradford-adapted to D50; the ColorMatrix (inverted) does as well in the
    illuminant's own XYZ."""
    c = sen.sensitivities("canon_5d2")
    tags = sen.dng_colour_tags(c)
    assert tags[f"calibration_illuminant{index}"] == {"A": 17, "D65": 21}[illuminant]
    cam, xyz, n = _chart(c, illuminant)
    w = spectral.xyz_from_spectra(spectral.illuminant_spd(illuminant))
    fm = np.array(tags[f"forward_matrix{index}"]).reshape(3, 3)
    true50 = xyz @ bradford_matrix(tuple(_xy(w)), WHITE_D50).T
    de = _de00((cam / n) @ fm.T, true50, D50)
    assert de.mean() < max_mean and de.max() < 5.0
    cm = np.array(tags[f"color_matrix{index}"]).reshape(3, 3)
    de_cm = _de00((cam / n.max()) @ np.linalg.inv(cm).T, xyz, w)
    assert de_cm.mean() < max_mean and de_cm.max() < 5.0


@pytest.mark.parametrize("name", ["canon_5d2", "phone"])
def test_matrix_normalisation(name: str) -> None:
    """DNG 1.4 §6: ColorMatrix maps the calibration illuminant's XYZ (Y = 1) to the camera neutral with
    max 1; ForwardMatrix maps (1, 1, 1) to the D50 white."""
    c = sen.sensitivities(name, quantum_efficiency=0.6)
    tags = sen.dng_colour_tags(c, illuminants=("A", "D65"))
    for i, ill in ((1, "A"), (2, "D65")):
        spd = spectral.illuminant_spd(ill)
        n = sen.camera_response(c, spd)
        cm = np.array(tags[f"color_matrix{i}"]).reshape(3, 3)
        np.testing.assert_allclose(cm @ spectral.xyz_from_spectra(spd), n / n.max(), atol=1e-12)
        fm = np.array(tags[f"forward_matrix{i}"]).reshape(3, 3)
        np.testing.assert_allclose(fm @ np.ones(3), D50, atol=1e-12)


def test_as_shot_neutral_is_the_camera_response_to_white() -> None:
    c = sen.sensitivities("canon_5d2")
    for ill in ("D65", "A", "F2", "LED"):
        cam, _, n = _chart(c, ill)
        neutral = sen.as_shot_neutral(c, ill)
        assert neutral[1] == 1.0
        np.testing.assert_allclose(neutral, n / n[1], rtol=1e-12)
        # the ColorChecker's white patch is nearly flat (its blue end dips): its raw response matches within 3 %
        np.testing.assert_allclose(cam[18] / cam[18, 1], neutral, rtol=0.03)
    # tungsten light is red-heavy: more red, less blue than daylight, relative to green
    a, d = sen.as_shot_neutral(c, "A"), sen.as_shot_neutral(c, "D65")
    assert a[0] > d[0] and a[2] < d[2]


def test_scene_electrons_of_a_white_follow_the_neutral() -> None:
    """Through the scene path: a white under A, integrated by electron_rate, has the as-shot neutral."""
    s = sen.Sensor(sensitivities="canon_5d2")
    rate = sen.electron_rate(flat_scene((2, 2), illuminant="A"), sensor=s, f_number=2.0)
    r = rate[:, 0, 0].double().numpy()
    np.testing.assert_allclose(r / r[1], sen.as_shot_neutral(sen.sensitivities(s), "A"), rtol=1e-5)


def test_develop_pipeline_reads_the_tags() -> None:
    """obscura.isp.colour (the DNG reader's maths: matrices interpolated at the neutral's CCT) turns the
    captured ColorChecker under D65 into XYZ D50 with mean ΔE2000 < 1."""
    c = sen.sensitivities("canon_5d2")
    meta = RawMeta(**sen.dng_colour_tags(c), as_shot_neutral=sen.as_shot_neutral(c, "D65"))
    cam, xyz, n = _chart(c, "D65")
    m = camera_to_xyz_d50(meta, neutral=meta.as_shot_neutral)
    w = spectral.xyz_from_spectra(spectral.illuminant_spd("D65"))
    true50 = xyz @ bradford_matrix(tuple(_xy(w)), WHITE_D50).T
    de = _de00((cam / n) @ m.T, true50, D50)
    assert de.mean() < 1.0


def test_luther_camera_is_exact() -> None:
    m = ((0.6, 0.4, 0.0), (0.1, 0.9, 0.0), (0.0, 0.1, 0.9))
    s = sen.Sensor(matrix=tuple(v for row in m for v in row))
    c = sen.sensitivities(s)
    tags = sen.dng_colour_tags(c)
    for i, ill in ((1, "A"), (2, "D65")):
        cam, xyz, n = _chart(c, ill)
        w = spectral.xyz_from_spectra(spectral.illuminant_spd(ill))
        cm = np.array(tags[f"color_matrix{i}"]).reshape(3, 3)
        assert _de00((cam / n.max()) @ np.linalg.inv(cm).T, xyz, w).max() < 1e-6
        # the colour matrix is the Sensor's matrix up to the neutral's scale
        np.testing.assert_allclose(cm / cm[0, 0], np.array(m) / m[0][0], rtol=1e-9, atol=1e-12)


def test_perceptual_refinement_keeps_white_and_does_not_worsen() -> None:
    c = sen.sensitivities("phone")
    cam, xyz, n = _chart(c, "D65")
    w = spectral.xyz_from_spectra(spectral.illuminant_spd("D65"))
    errs = []
    for perceptual in (False, True):
        cm = np.array(sen.dng_colour_tags(c, illuminants=("D65",), perceptual=perceptual)["color_matrix1"])
        cm = cm.reshape(3, 3)
        np.testing.assert_allclose(cm @ w, n / n.max(), atol=1e-9)
        errs.append(_de00((cam / n.max()) @ np.linalg.inv(cm).T, xyz, w).mean())
    assert errs[1] <= errs[0] + 1e-9 and errs[0] < 1.5


def test_wpp_fit_closed_form_against_constrained_lstsq() -> None:
    """Finlayson & Drew's closed form equals scipy's equality-constrained least squares (lsq via KKT)."""
    rng = np.random.default_rng(0)
    cam = rng.uniform(0.05, 1, (30, 3))
    xyz = cam @ rng.uniform(-0.2, 1, (3, 3)).T + rng.normal(0, 0.02, (30, 3))
    n, wx = np.array([0.5, 1.0, 0.7]), np.array([0.95, 1.0, 1.09])
    m = sen.fit_colour_matrix_wpp(cam, xyz, white_camera=n, white_xyz=wx)
    np.testing.assert_allclose(m @ n, wx, atol=1e-12)
    for j in range(3):  # KKT system per row
        kkt = np.block([[2 * cam.T @ cam, n[:, None]], [n[None, :], np.zeros((1, 1))]])
        sol = np.linalg.solve(kkt, np.concatenate([2 * cam.T @ xyz[:, j], [wx[j]]]))
        np.testing.assert_allclose(m[j], sol[:3], rtol=1e-9, atol=1e-12)


def test_monochrome_and_single_illuminant() -> None:
    mono = sen.sensitivities("mono")
    assert sen.dng_colour_tags(mono) == {}
    assert sen.as_shot_neutral(mono, "D65") == (1.0,)
    tags = sen.dng_colour_tags(sen.sensitivities("phone"), illuminants=("D50",))
    assert set(tags) == {"color_matrix1", "forward_matrix1", "calibration_illuminant1"}
    assert tags["calibration_illuminant1"] == 23
    assert torch.is_tensor(torch.tensor(tags["color_matrix1"]))


def test_bad_colour_inputs() -> None:
    c = sen.sensitivities("phone")
    with pytest.raises(ShapeError, match=r"\(3, 36\)"):
        sen.dng_colour_tags(c[:, :10])
    with pytest.raises(ShapeError, match=r"\(3, 36\)"):
        sen.as_shot_neutral(c[:2], "D65")
    with pytest.raises(InvalidParameter, match="EXIF LightSource"):
        sen.dng_colour_tags(c, illuminants=("LED", "D65"))
    with pytest.raises(UnknownMethod, match="unknown illuminant"):
        sen.dng_colour_tags(c, illuminants=("D95",))
    with pytest.raises(InvalidParameter, match="one or two"):
        sen.dng_colour_tags(c, illuminants=("A", "D50", "D65"))
    with pytest.raises(ShapeError, match="training"):
        sen.dng_colour_tags(c, training=np.ones((2, 36)))
    with pytest.raises(InvalidParameter, match="finite"):
        sen.dng_colour_tags(c * np.nan)
