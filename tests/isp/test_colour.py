"""isp.colour: DNG 1.4 chapter 6 colour pipeline, against colour-science, LibRaw and exact properties."""

from __future__ import annotations

import colour
import numpy as np
import pytest
import torch

from obscura.core.colour import WHITE_D50, rgb_to_xyz_d50_matrix, xy_to_XYZ
from obscura.core.errors import InvalidParameter, ShapeError
from obscura.core.types import RawMeta
from obscura.isp import colour as ic

CIE = colour.CCS_ILLUMINANTS["CIE 1931 2 Degree Standard Observer"]

# A synthetic dual-illuminant camera: XYZ → camera matrices at A (illuminant 1) and D65 (illuminant 2).
CM_A = np.array([[0.80, -0.20, -0.05], [-0.40, 1.25, 0.15], [-0.05, 0.20, 0.55]])
CM_D65 = np.array([[0.70, -0.15, -0.08], [-0.45, 1.30, 0.20], [-0.10, 0.25, 0.70]])
CC = np.diag([0.97, 1.0, 1.02])
AB = (1.05, 1.0, 0.98)


def synthetic_meta(**changes) -> RawMeta:
    m = RawMeta(
        color_matrix1=tuple(CM_A.ravel()),
        color_matrix2=tuple(CM_D65.ravel()),
        camera_calibration1=tuple(CC.ravel()),
        camera_calibration2=tuple(CC.ravel()),
        analog_balance=AB,
        calibration_illuminant1=17,
        calibration_illuminant2=21,
    )
    return m.replace(**changes)


# --- colour temperature ---------------------------------------------------------------------------


def test_robertson_table_is_colour_sciences():
    ref = np.asarray(colour.temperature.robertson1968.DATA_ISOTEMPERATURE_LINES_ROBERTSON1968)
    np.testing.assert_array_equal(ic.ROBERTSON_1968, ref)


@pytest.mark.parametrize(
    "xy", [(0.31271, 0.32902), (0.44757, 0.40745), (0.3457, 0.3585), (0.28, 0.29), (0.40, 0.38), (0.33, 0.36)]
)
def test_xy_to_cct_matches_colour_science_robertson(xy):
    cct, duv = ic.xy_to_cct_duv(xy)
    ref_cct, ref_duv = colour.temperature.uv_to_CCT_Robertson1968(colour.xy_to_UCS_uv(np.array(xy)))
    assert cct == pytest.approx(ref_cct, rel=1e-9)
    assert duv == pytest.approx(ref_duv, abs=1e-10)
    # and an independent method (Ohno 2013, from the Planckian locus itself) within 0.2 %
    ohno = colour.temperature.uv_to_CCT_Ohno2013(colour.xy_to_UCS_uv(np.array(xy)))[0]
    assert cct == pytest.approx(ohno, rel=2e-3)


@pytest.mark.parametrize("cct,duv", [(2000, 0.0), (2850, 0.01), (5000, 0.0), (6500, -0.01), (10000, 0.005)])
def test_cct_to_xy_matches_colour_science_and_round_trips(cct, duv):
    xy = ic.cct_to_xy(cct, duv)
    ref = colour.UCS_uv_to_xy(colour.temperature.CCT_to_uv_Robertson1968(np.array([cct, duv])))
    np.testing.assert_allclose(xy, ref, atol=1e-12)
    back_cct, back_duv = ic.xy_to_cct_duv(xy)
    # exact on the locus; off it the two interpolations (temperature, isotherm direction) differ slightly
    assert back_cct == pytest.approx(cct, rel=1e-12 if duv == 0 else 1e-5)
    assert back_duv == pytest.approx(duv, abs=1e-8)


def test_cct_bad_input():
    with pytest.raises(InvalidParameter):
        ic.cct_to_xy(-5)
    with pytest.raises(InvalidParameter):
        ic.cct_to_xy(1000)  # below the Robertson table (1667 K)
    with pytest.raises(InvalidParameter):
        ic.xy_to_cct((0.7, 0.5))  # x + y > 1
    with pytest.raises(InvalidParameter):
        ic.xy_to_cct((0.3,))


@pytest.mark.parametrize("code,name", [(17, "A"), (18, "B"), (19, "C"), (20, "D55"), (21, "D65"), (22, "D75")])
def test_illuminant_xy_is_cie(code, name):
    np.testing.assert_allclose(ic.illuminant_xy(code), CIE[name], atol=6e-5)


def test_illuminant_temperatures_are_the_dng_sdks():
    assert ic.illuminant_cct(17) == 2850 and ic.illuminant_cct(3) == 2850
    assert ic.illuminant_cct(21) == 6500 and ic.illuminant_cct(23) == 5000 and ic.illuminant_cct(24) == 3200
    assert ic.illuminant_cct(22) == 7500 and ic.illuminant_cct(11) == 7500 and ic.illuminant_cct(20) == 5500
    assert ic.illuminant_cct(14) == 4150 and ic.illuminant_cct(16) == 2925
    assert ic.illuminant_cct(0) is None and ic.illuminant_cct(255) is None
    np.testing.assert_allclose(ic.illuminant_xy(23), WHITE_D50)
    # fluorescents lie on the Planckian locus at the SDK temperature
    assert ic.xy_to_cct(ic.illuminant_xy(14)) == pytest.approx(4150, rel=1e-6)
    with pytest.raises(InvalidParameter):
        ic.illuminant_xy(99)


# --- matrix interpolation -------------------------------------------------------------------------


def test_interpolation_weight_at_and_between_calibration_illuminants():
    m = synthetic_meta()
    at_a = ic.interpolated_matrices(m, 2850.0)
    at_d65 = ic.interpolated_matrices(m, 6500.0)
    np.testing.assert_array_equal(at_a["color_matrix"], CM_A)
    np.testing.assert_array_equal(at_d65["color_matrix"], CM_D65)
    # clamped outside the calibration range
    np.testing.assert_array_equal(ic.interpolated_matrices(m, 2000.0)["color_matrix"], CM_A)
    np.testing.assert_array_equal(ic.interpolated_matrices(m, 12000.0)["color_matrix"], CM_D65)
    # linear in inverse temperature between them
    g = (1 / 4000 - 1 / 6500) / (1 / 2850 - 1 / 6500)
    assert ic.interpolation_weight(m, 4000.0) == pytest.approx(g, rel=1e-12)
    np.testing.assert_allclose(
        ic.interpolated_matrices(m, 4000.0)["color_matrix"], g * CM_A + (1 - g) * CM_D65, atol=1e-15
    )
    # the order of the illuminants does not matter
    swapped = synthetic_meta(
        color_matrix1=tuple(CM_D65.ravel()),
        color_matrix2=tuple(CM_A.ravel()),
        calibration_illuminant1=21,
        calibration_illuminant2=17,
    )
    np.testing.assert_allclose(
        ic.interpolated_matrices(swapped, 4000.0)["color_matrix"], g * CM_A + (1 - g) * CM_D65, atol=1e-15
    )


def test_single_illuminant_uses_matrix_1():
    m = synthetic_meta(color_matrix2=None, calibration_illuminant2=None)
    for t in (2000.0, 4000.0, 9000.0):
        np.testing.assert_array_equal(ic.interpolated_matrices(m, t)["color_matrix"], CM_A)
    unknown = synthetic_meta(calibration_illuminant1=0)  # unknown illuminant temperature: matrix 1
    np.testing.assert_array_equal(ic.interpolated_matrices(unknown, 6500.0)["color_matrix"], CM_A)


# --- neutral <-> white xy ---------------------------------------------------------------------------


@pytest.mark.parametrize("xy", [CIE["A"], CIE["D65"], WHITE_D50, (0.38, 0.38), (0.30, 0.31), (0.42, 0.40)])
def test_xy_neutral_round_trip(xy):
    m = synthetic_meta()
    n = ic.xy_to_neutral(xy, m)
    assert n[1] == 1.0
    np.testing.assert_allclose(ic.neutral_to_xy(n, m), xy, atol=1e-6)


def test_neutral_is_camera_response_to_white_at_calibration_illuminant():
    m = synthetic_meta()
    xyz = xy_to_XYZ(CIE["D65"])
    expected = np.diag(AB) @ CC @ CM_D65 @ xyz
    np.testing.assert_allclose(ic.xy_to_neutral(CIE["D65"], m), expected / expected[1], atol=1e-12)


def test_neutral_bad_input():
    m = synthetic_meta()
    with pytest.raises(InvalidParameter):
        ic.neutral_to_xy((1.0, -1.0, 1.0), m)
    with pytest.raises(InvalidParameter):
        ic.neutral_to_xy((1.0, 1.0), m)
    with pytest.raises(InvalidParameter, match="no valid white"):
        ic.neutral_to_xy((5.0, 1.0, 0.01), m)  # no real light gives that camera response
    with pytest.raises(InvalidParameter):
        ic.neutral_to_xy((0.5, 1.0, 0.6), RawMeta(color_matrix1=None))
    with pytest.raises(ShapeError):
        ic.camera_to_xyz_d50(RawMeta(color_matrix1=(1.0, 2.0)), neutral=(0.5, 1, 0.6))


# --- camera -> XYZ D50 --------------------------------------------------------------------------


def test_no_colour_matrix_means_linear_srgb():
    """Headerless raws carry no matrix: white-balanced camera RGB is taken as linear sRGB."""
    mat = ic.camera_to_xyz_d50(RawMeta(color_matrix1=None), neutral=(0.5, 1, 0.6))
    np.testing.assert_allclose(mat, rgb_to_xyz_d50_matrix("linear_srgb"), atol=1e-15)
    to_srgb = ic.camera_to_working_matrix(RawMeta(color_matrix1=None), neutral=(0.5, 1, 0.6), space="linear_srgb")
    np.testing.assert_allclose(to_srgb, np.eye(3), atol=1e-12)


def test_colour_matrix_path_against_colour_science():
    """CM path = Bradford(white → D50) · inverse(AB·CC·CM) · diag(neutral), Y-normalised; the Bradford
    matrix from colour-science's von Kries implementation."""
    m = synthetic_meta()
    n = np.array([0.55, 1.0, 0.72])
    white = ic.neutral_to_xy(n, m)
    g = ic.interpolation_weight(m, ic.xy_to_cct(white))
    cm = g * CM_A + (1 - g) * CM_D65
    cat = colour.adaptation.matrix_chromatic_adaptation_VonKries(
        colour.xy_to_XYZ(white), colour.xy_to_XYZ(np.array(WHITE_D50)), transform="Bradford"
    )
    ref = cat @ np.linalg.inv(np.diag(AB) @ CC @ cm) @ np.diag(n)
    ref = ref / (ref @ np.ones(3))[1]
    np.testing.assert_allclose(ic.camera_to_xyz_d50(m, neutral=n), ref, atol=1e-12)


@pytest.mark.parametrize("neutral", [(0.45, 1.0, 0.8), (0.6, 1.0, 0.5), (1.2, 1.0, 0.4)])
@pytest.mark.parametrize("with_fm", [False, True])
def test_neutral_maps_to_d50_white(neutral, with_fm):
    m = synthetic_meta()
    if with_fm:
        fm = np.array([[0.6, 0.25, 0.1], [0.25, 0.8, -0.05], [0.0, -0.1, 0.95]])
        m = m.replace(forward_matrix1=tuple(fm.ravel()), forward_matrix2=tuple((fm * 1.1).ravel()))
    mat = ic.camera_to_xyz_d50(m, neutral=neutral)
    np.testing.assert_allclose(mat @ np.ones(3), xy_to_XYZ(WHITE_D50), atol=1e-12)


def test_forward_matrix_path_agrees_with_colour_matrix_path():
    """A camera whose ForwardMatrix is derived from its ColorMatrix: both paths give the same matrix at the
    calibration white (DNG 1.4 §6), with camera calibration and analog balance in the way."""
    cm = CM_D65
    ref_neutral = cm @ xy_to_XYZ(CIE["D65"])
    cat = colour.adaptation.matrix_chromatic_adaptation_VonKries(
        colour.xy_to_XYZ(CIE["D65"]), colour.xy_to_XYZ(np.array(WHITE_D50)), transform="Bradford"
    )
    fm = cat @ np.linalg.inv(cm) @ np.diag(ref_neutral)
    base = RawMeta(
        color_matrix1=tuple(cm.ravel()),
        camera_calibration1=tuple(CC.ravel()),
        analog_balance=AB,
        calibration_illuminant1=21,
    )
    n = ic.xy_to_neutral(CIE["D65"], base)
    via_cm = ic.camera_to_xyz_d50(base, neutral=n)
    via_fm = ic.camera_to_xyz_d50(base.replace(forward_matrix1=tuple(fm.ravel())), neutral=n)
    np.testing.assert_allclose(via_fm, via_cm, atol=1e-6)


# --- camera -> working space on tensors -----------------------------------------------------------------


def test_camera_to_working_on_tensor(device):
    m = synthetic_meta()
    n = (0.5, 1.0, 0.7)
    torch.manual_seed(0)
    x = torch.rand(3, 16, 24, device=device)
    img = ic.camera_to_working(x, meta=m, neutral=n, space="linear_srgb")
    assert img.space == "linear_srgb" and img.data.device.type == device and img.meta is m
    mat = np.linalg.solve(rgb_to_xyz_d50_matrix("linear_srgb"), ic.camera_to_xyz_d50(m, neutral=n))
    ref = np.einsum("ij,jhw->ihw", mat, x.cpu().double().numpy())
    np.testing.assert_allclose(img.data.cpu().numpy(), ref, atol=1e-5)
    # white-balanced white is white in every working space
    for space in ("linear_srgb", "linear_prophoto", "linear_rec2020", "linear_p3", "xyz_d50"):
        w = ic.camera_to_working(torch.ones(3, 2, 2, device=device), meta=m, neutral=n, space=space).data
        target = xy_to_XYZ(WHITE_D50) if space == "xyz_d50" else np.ones(3)
        np.testing.assert_allclose(w[:, 0, 0].cpu().numpy(), target, atol=1e-5)
    assert torch.equal(x, x.clone())  # input untouched (functional)


def test_camera_to_working_bad_input():
    m = synthetic_meta()
    with pytest.raises(ShapeError):
        ic.camera_to_working(torch.rand(4, 8, 8), meta=m, neutral=(0.5, 1, 0.7))
    with pytest.raises(ShapeError):
        ic.camera_to_working(torch.ones(3, 4, 4, dtype=torch.int32), meta=m, neutral=(0.5, 1, 0.7))
    with pytest.raises(InvalidParameter):
        ic.camera_to_working(torch.rand(3, 8, 8), meta=m, neutral=(0.5, 1, 0.7), space="srgb")
    with pytest.raises(InvalidParameter):
        ic.camera_to_working(torch.rand(3, 8, 8), meta=m, neutral=(0.5, 1, 0.7), space="nope")
    with pytest.raises(InvalidParameter):
        ic.camera_to_working(torch.rand(3, 8, 8), meta=m, neutral=(0.0, 1, 0.7))
    with pytest.raises(InvalidParameter, match="adaptation"):
        ic.camera_to_working(torch.rand(3, 8, 8), meta=m, neutral=(0.5, 1, 0.7), adaptation="cat02")


# --- real DNGs ---------------------------------------------------------------------------------------


def _dng_meta(path) -> RawMeta:
    """The colour tags of IFD0, read with tifffile directly."""
    import tifffile

    with tifffile.TiffFile(path) as tf:
        tags = {t.name: t.value for t in tf.pages[0].tags.values()}

    def rational(v):
        v = np.asarray(v, dtype=np.float64)
        return tuple((v[0::2] / v[1::2]).tolist())

    names = {
        "ColorMatrix1": "color_matrix1",
        "ColorMatrix2": "color_matrix2",
        "ForwardMatrix1": "forward_matrix1",
        "ForwardMatrix2": "forward_matrix2",
        "CameraCalibration1": "camera_calibration1",
        "CameraCalibration2": "camera_calibration2",
        "AnalogBalance": "analog_balance",
        "AsShotNeutral": "as_shot_neutral",
    }
    kw = {ours: rational(tags[tag]) for tag, ours in names.items() if tag in tags}
    for i in (1, 2):
        if f"CalibrationIlluminant{i}" in tags:
            kw[f"calibration_illuminant{i}"] = int(tags[f"CalibrationIlluminant{i}"])
    return RawMeta(**kw)


DNGS = [
    "tinydngloader/colorchart.dng",
    "more/skia_lg-h815_sample_1mp.dng",
    "more/blackmagic_pocket_cinema_camera_4k_12bit.dng",
]


@pytest.mark.parametrize("name", DNGS)
def test_real_dng_matches_libraw_at_d65(data_dir, name):
    """LibRaw's camera → sRGB matrix (rawpy ``color_matrix``) is inverse(CM_D65 · sRGB-to-XYZ) with rows
    normalised: camera RGB balanced for D65 → linear sRGB. Ours on the ColorMatrix path at the D65 neutral
    must be the same (LibRaw's sRGB matrix has fewer digits: 5e-4)."""
    rawpy = pytest.importorskip("rawpy")
    path = data_dir / "raw" / name
    meta = _dng_meta(path)
    with rawpy.imread(str(path)) as r:
        libraw = np.asarray(r.color_matrix, dtype=np.float64)[:, :3]
    cm_only = meta.replace(forward_matrix1=None, forward_matrix2=None)
    n65 = ic.xy_to_neutral(CIE["D65"], cm_only)
    ours = ic.camera_to_working_matrix(cm_only, neutral=n65, space="linear_srgb")
    np.testing.assert_allclose(ours, libraw, atol=5e-4)
    # adaptation="libraw" is that fixed matrix whatever the white balance (von Kries in camera space)
    for n in (meta.as_shot_neutral, (0.5, 1.0, 0.5)):
        fixed = ic.camera_to_working_matrix(meta, neutral=n, space="linear_srgb", adaptation="libraw")
        np.testing.assert_allclose(fixed, libraw, atol=5e-4)
    # while the DNG adaptation carries the as-shot white to D50 (here 4100-5300 K, far from D65)
    dng = ic.camera_to_working_matrix(meta, neutral=meta.as_shot_neutral, space="linear_srgb")
    assert np.abs(dng - libraw).max() > 0.02


def test_real_lg_g4_forward_matrices(data_dir):
    """LG G4 DNG: dual illuminant (D65 / A), ForwardMatrix1/2 and CameraCalibration."""
    meta = _dng_meta(data_dir / "raw" / "more" / "skia_lg-h815_sample_1mp.dng")
    assert meta.forward_matrix1 is not None and meta.is_dual_illuminant and meta.camera_calibration1 is not None
    white = ic.neutral_to_xy(meta.as_shot_neutral, meta)
    cct, duv = ic.xy_to_cct_duv(white)
    assert 4500 < cct < 5500 and abs(duv) < 0.01  # an as-shot white near the daylight/Planckian locus
    np.testing.assert_allclose(ic.xy_to_neutral(white, meta), np.array(meta.as_shot_neutral), atol=1e-6)
    mat = ic.camera_to_working_matrix(meta, neutral=meta.as_shot_neutral, space="linear_srgb")
    np.testing.assert_allclose(mat @ np.ones(3), np.ones(3), atol=1e-4)  # a neutral patch stays neutral
    # the FM and CM paths of the same profile differ only a little (same camera, two calibrations)
    cm_only = ic.camera_to_working_matrix(
        meta.replace(forward_matrix1=None, forward_matrix2=None), neutral=meta.as_shot_neutral, space="linear_srgb"
    )
    assert np.abs(mat - cm_only).max() < 0.15
    # interpolation weight at the as-shot white is strictly between the two calibrations
    assert 0.0 < ic.interpolation_weight(meta, cct) < 1.0


def test_real_pixels_match_libraw_end_to_end(data_dir):
    """colorchart.dng (Canon 550D): mosaic → black/white → 2×2 bin → D65 white balance → camera_to_working
    (linear sRGB) against LibRaw's half-size linear sRGB render with the same gains. They agree up to one
    global scale (LibRaw's own 16-bit scaling; the same in every channel): median relative error 8e-5."""
    rawpy = pytest.importorskip("rawpy")
    from obscura.isp import white_balance as wb

    path = data_dir / "raw" / "tinydngloader" / "colorchart.dng"
    meta = _dng_meta(path)
    n65 = ic.xy_to_neutral(CIE["D65"], meta)
    gains = 1.0 / n65
    with rawpy.imread(str(path)) as r:
        assert r.sizes.height % 2 == 0 and r.sizes.width % 2 == 0
        raw = r.raw_image_visible.astype(np.float32)
        black, white = float(r.black_level_per_channel[0]), float(r.white_level)
        lib = r.postprocess(
            half_size=True,
            user_wb=[float(gains[0]), 1.0, float(gains[2]), 1.0],
            output_color=rawpy.ColorSpace.sRGB,
            gamma=(1, 1),
            no_auto_bright=True,
            output_bps=16,
            highlight_mode=rawpy.HighlightMode.Clip,
            user_flip=0,
        )
    x = (torch.from_numpy(raw) - black) / (white - black)
    rgb = wb.bin_mosaic_rgb(x, cfa="RGGB") * torch.tensor(gains, dtype=torch.float32)[:, None, None]
    ours = ic.camera_to_working(rgb, meta=meta, neutral=n65, space="linear_srgb").data.double().numpy()
    lib = lib.transpose(2, 0, 1).astype(np.float64) / 65535.0
    assert ours.shape == lib.shape
    ok = (lib.max(0) < 0.95) & (lib.min(0) > 0.02) & (ours.min(0) > 0.02)
    assert ok.mean() > 0.3
    scale = np.median(lib[:, ok] / ours[:, ok], axis=1)
    np.testing.assert_allclose(scale, scale.mean(), rtol=1e-3)  # one scale for all channels: same colours
    rel = np.abs(lib[:, ok] - ours[:, ok] * scale.mean()) / lib[:, ok]
    assert np.median(rel) < 5e-4 and np.percentile(rel, 99) < 3e-3
