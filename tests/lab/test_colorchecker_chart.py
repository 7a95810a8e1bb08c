"""The spectral ColorChecker chart: layout, ROIs, and its colours against colour-science."""

from __future__ import annotations

import math

import colour
import numpy as np
import pytest
import torch

from obscura.core.errors import InvalidParameter, UnknownMethod
from obscura.lab.charts.base import Chart
from obscura.lab.charts.colorchecker import colorchecker_chart, colorchecker_layout, colorchecker_reference
from obscura.sim import spectral

NAMES = spectral.COLORCHECKER_NAMES
_CMFS = colour.MSDS_CMFS["CIE 1931 2 Degree Standard Observer"]


def _colour_science_xyz(illuminant_key: str) -> np.ndarray:
    """XYZ (24, 3) of colour-science's BabelColor spectra; the perfect diffuser has Y = 1."""
    sds = colour.SDS_COLOURCHECKERS["BabelColor Average"]
    ill = colour.SDS_ILLUMINANTS[illuminant_key]
    with colour.utilities.suppress_warnings(colour_runtime_warnings=True, colour_usage_warnings=True):
        return np.array([colour.sd_to_XYZ(sds[n], _CMFS, ill) for n in NAMES]) / 100.0


def _roi_means(chart: Chart, img: torch.Tensor) -> np.ndarray:
    return np.array(
        [img[:, y0:y1, x0:x1].double().mean((1, 2)).cpu().numpy() for x0, y0, x1, y1 in chart.rois.values()]
    )


def test_layout_rois_and_labels():
    c = colorchecker_chart(size=(400, 600))
    assert isinstance(c, Chart) and c.scene.size == (400, 600) and c.scene.num_spectra == 25
    assert tuple(c.rois) == NAMES and tuple(c.reference["names"]) == NAMES
    labels = c.scene.labels
    boxes = c.reference["patches"]
    for i, n in enumerate(NAMES):
        x0, y0, x1, y1 = c.rois[n]
        px0, py0, px1, py1 = boxes[n]
        # the ROI is the centred inner 60% of the patch
        assert px0 < x0 < x1 < px1 and py0 < y0 < y1 < py1
        assert (x1 - x0) == pytest.approx(0.6 * (px1 - px0), abs=2) and (y1 - y0) == pytest.approx(
            0.6 * (py1 - py0), abs=2
        )
        assert abs((x0 + x1) - (px0 + px1)) <= 1 and abs((y0 + y1) - (py0 + py1)) <= 1
        assert bool((labels[py0:py1, px0:px1] == i).all())
    # 4 rows × 6 columns in reading order, square patches, and a surround (label 24) between them
    xs = sorted({b[0] for b in boxes.values()})
    ys = sorted({b[1] for b in boxes.values()})
    assert len(xs) == 6 and len(ys) == 4
    assert boxes["dark skin"][:2] == (xs[0], ys[0]) and boxes["black 2 (1.5 D)"][:2] == (xs[-1], ys[-1])
    assert all(abs((b[2] - b[0]) - (b[3] - b[1])) <= 1 for b in boxes.values())
    assert int((labels == 24).sum()) == 400 * 600 - sum((b[2] - b[0]) * (b[3] - b[1]) for b in boxes.values())
    assert labels[0, 0] == 24 and labels[200, (boxes["dark skin"][2] + boxes["light skin"][0]) // 2] == 24


@pytest.mark.parametrize(("name", "key"), [("D65", "D65"), ("A", "A"), ("LED", "LED-B3"), ("D50", "D50")])
def test_patch_xyz_matches_colour_science(name, key):
    c = colorchecker_chart(size=(120, 180), illuminant=name)
    want = _colour_science_xyz(key)
    # the scene itself (our 10 nm grid) and the reference values, both against colour-science
    assert np.abs(_roi_means(c, c.scene.xyz()) - want).max() < 1e-3
    assert np.abs(c.reference["xyz"] - want).max() < 1e-6
    # linear sRGB of the scene (Bradford-adapted to D65) against colour-science's conversion
    ill = colour.SDS_ILLUMINANTS[key]
    with colour.utilities.suppress_warnings(colour_runtime_warnings=True, colour_usage_warnings=True):
        white = colour.sd_to_XYZ(colour.sd_ones(ill.shape), _CMFS, ill)
    lin = colour.XYZ_to_RGB(want, "sRGB", illuminant=colour.XYZ_to_xy(white), chromatic_adaptation_transform="Bradford")
    assert np.abs(_roi_means(c, c.scene.linear_srgb()) - lin).max() < 2e-3
    assert np.abs(c.reference["linear_srgb"] - lin).max() < 1e-6


def test_reference_srgb_and_lab_against_xrite_2014():
    """BabelColor average spectra vs X-Rite's post-2014 formulation (colour-science's xyY, D50):
    measured mean ΔE00 0.91, max 2.67 (light skin) on the encoded sRGB; 0.91 / 2.50 on Lab D50."""
    ref = colour.CCS_COLOURCHECKERS["ColorChecker24 - After November 2014"]
    assert tuple(ref.data) == NAMES[:18] + tuple(ref.data)[18:]  # same patch order
    xyz_ref = colour.xyY_to_XYZ(np.array(list(ref.data.values())))
    srgb_ref = colour.XYZ_to_RGB(
        xyz_ref, "sRGB", illuminant=ref.illuminant, chromatic_adaptation_transform="Bradford", apply_cctf_encoding=True
    )
    ours = colorchecker_reference("D65")
    wp = colour.RGB_COLOURSPACES["sRGB"].whitepoint

    def lab(s):
        return colour.XYZ_to_Lab(colour.RGB_to_XYZ(s, "sRGB", apply_cctf_decoding=True), wp)

    de = colour.delta_E(lab(srgb_ref), lab(ours["srgb"]), method="CIE 2000")
    assert de.mean() < 1.5 and de.max() < 3.0
    assert de[18:].max() < 1.1  # the neutrals agree closely
    de_lab = colour.delta_E(colour.XYZ_to_Lab(xyz_ref, ref.illuminant), ours["lab"], method="CIE 2000")
    assert de_lab.mean() < 1.5 and de_lab.max() < 3.0
    # encoded sRGB is the sRGB curve of the linear values; Lab is relative to D50 (white patch L* ≈ 96)
    assert np.abs(colour.cctf_decoding(ours["srgb"], function="sRGB") - ours["linear_srgb"]).max() < 1e-9
    assert ours["lab"][18, 0] == pytest.approx(96.0, abs=1.0) and abs(ours["lab"][21, 1]) < 1.0


def test_babelcolor_csv_gives_the_same_patches(data_dir):
    wl, refl = spectral.read_spectra_csv(data_dir / "charts" / "colour_reference" / "babelcolor_average.csv")
    assert refl.shape == (24, wl.size)
    r = spectral.resample(wl, refl)
    assert np.abs(r - spectral.colorchecker_reflectances()).max() < 1e-3  # the CSV holds 3 decimals
    c = colorchecker_chart(size=(120, 180))
    xyz = spectral.xyz_from_spectra(r * spectral.illuminant_spd("D65"))
    assert np.abs(_roi_means(c, c.scene.xyz()) - xyz).max() < 1e-3


def test_illuminant_a_white_balanced_neutrals():
    c = colorchecker_chart(size=(120, 180), illuminant="A")
    lin = c.scene.linear_srgb(adapt=True)
    # the surround is a flat 0.2 reflectance: adapted, it is exactly neutral
    assert (lin[:, 0, 0] - 0.2).abs().max().item() < 1e-3
    # the white patch under A, adapted, is the same colour as under D65 (it is slightly yellow: the
    # BabelColor white has b ≈ 0.87 of r in linear sRGB under D65 too)
    white_a = _roi_means(c, lin)[18]
    d65 = colorchecker_chart(size=(120, 180))
    white_d65 = _roi_means(d65, d65.scene.linear_srgb())[18]
    assert np.abs(white_a - white_d65).max() < 1e-2
    assert np.abs(white_a - c.reference["linear_srgb"][18]).max() < 1e-3
    # unadapted, A's orange cast shows
    raw = _roi_means(c, c.scene.linear_srgb(adapt=False))[18]
    assert raw[0] > 1.5 * raw[2]


def test_scale_depth_and_device(device):
    c = colorchecker_chart(size=(80, 120), lux=1000.0, surround=0.5, depth=3.0, device=device)
    assert c.scene.luminance == pytest.approx(1000 / math.pi) and c.scene.depth == 3.0
    assert c.scene.device.type == device
    assert c.scene.xyz()[1, 0, 0].item() == pytest.approx(0.5, rel=1e-5)
    cpu = colorchecker_chart(size=(80, 120))
    assert torch.allclose(c.scene.xyz().cpu()[:, c.scene.labels.cpu() < 24], cpu.scene.xyz()[:, cpu.scene.labels < 24])
    assert colorchecker_chart(luminance=250.0, size=(80, 120)).scene.luminance == 250.0


def test_layout_scales_with_size():
    small = colorchecker_layout((80, 120))
    big = colorchecker_layout((800, 1200))
    assert len(small) == len(big) == 24
    for a, b in zip(small, big):
        assert all(abs(10 * u - v) <= 10 for u, v in zip(a, b))


@pytest.mark.parametrize(
    ("kwargs", "err", "match"),
    [
        ({"size": (20, 30)}, InvalidParameter, "at least 5 px"),
        ({"size": "big"}, InvalidParameter, "size"),
        ({"surround": 1.5}, InvalidParameter, "surround"),
        ({"margin": 0.5}, InvalidParameter, "margin"),
        ({"gap": 1.0}, InvalidParameter, "gap"),
        ({"illuminant": "candle"}, UnknownMethod, "D65"),
        ({"lux": 10.0, "luminance": 3.0}, InvalidParameter, "not both"),
        ({"luminance": -1.0}, InvalidParameter, "luminance"),
        ({"depth": -1.0}, InvalidParameter, "depth"),
    ],
)
def test_bad_input(kwargs, err, match):
    kwargs = {"size": (80, 120), **kwargs}
    with pytest.raises(err, match=match):
        colorchecker_chart(**kwargs)
