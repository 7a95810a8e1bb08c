"""write_dng: synthetic frames with every RawMeta field set, read back by rawpy, read_raw and exiftool."""

from __future__ import annotations

import math
import shutil
import subprocess

import numpy as np
import pytest
import rawpy
import torch

from obscura.core.errors import InvalidParameter, OutputExists, ShapeError
from obscura.core.types import BAYER_PATTERNS, QUAD_BAYER_PATTERNS, RawFrame, RawMeta
from obscura.io.dng import write_dng
from obscura.io.opcodes import make_opcode
from obscura.io.raw import read_raw

H, W = 64, 96


def _full_meta(cfa: str) -> RawMeta:
    n = len(cfa)
    gain = make_opcode(
        "GainMap",
        top=0,
        left=0,
        bottom=H,
        right=W,
        plane=0,
        planes=1,
        row_pitch=1,
        col_pitch=1,
        map_points_v=2,
        map_points_h=2,
        map_spacing_v=1.0,
        map_spacing_h=1.0,
        map_origin_v=0.0,
        map_origin_h=0.0,
        map_planes=1,
        gains=(1.0, 1.1, 1.2, 1.3),
    )
    warp = make_opcode(
        "WarpRectilinear", planes=1, coefficients=((1.0, 0.01, -0.002, 0.0, 1e-4, -2e-4),), center_x=0.5, center_y=0.5
    )
    return RawMeta(
        cfa=cfa,
        black_level=tuple(60.0 + i for i in range(n)) if cfa else (60.0, 61.0, 62.0),
        white_level=4095.0,
        color_matrix1=(0.9, -0.3, -0.1, -0.4, 1.2, 0.2, -0.05, 0.15, 0.7),
        color_matrix2=(1.1, -0.35, -0.12, -0.41, 1.25, 0.21, -0.06, 0.16, 0.71),
        forward_matrix1=(0.6, 0.3, 0.05, 0.2, 0.9, -0.1, 0.0, -0.2, 1.0),
        forward_matrix2=(0.61, 0.31, 0.051, 0.21, 0.91, -0.11, 0.01, -0.21, 1.01),
        camera_calibration1=(1.01, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.99),
        camera_calibration2=(1.02, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.98),
        analog_balance=(1.05, 1.0, 0.95),
        calibration_illuminant1=17,
        calibration_illuminant2=21,
        as_shot_neutral=(0.4533, 1.0, 0.53),
        baseline_exposure=-0.654,
        noise_profile=((1e-4, 2e-6), (1.1e-4, 2.1e-6), (1.2e-4, 2.2e-6)),
        linearization_table=tuple(range(0, 8192, 2)),
        default_crop=(4, 8, 80, 48),
        orientation=6,
        opcode_list1=(make_opcode("FixBadPixelsConstant", constant=0, bayer_phase=1),),
        opcode_list2=(gain,),
        opcode_list3=(warp,),
        bad_pixels=((3, 4), (10, 11)),
        exposure_time=1 / 125,
        iso=400.0,
        f_number=2.8,
        focal_length=35.0,
        focal_length_35mm=50.0,
        datetime="2024:05:06 07:08:09",
        gps=(48.8566, -2.3522, -35.5),
        make="Obscura",
        model="Virtual One",
        unique_camera_model="Obscura Virtual One",
        lens="Obscura 35mm f/2.8",
        software="obscura test",
        serial="SN123",
        source_format="dng",
    )


def _expected_back(meta: RawMeta) -> RawMeta:
    """What read_raw returns: bad_pixels come back as a FixBadPixelsList opcode at the end of OpcodeList1."""
    fix = make_opcode("FixBadPixelsList", bayer_phase=0, bad_points=meta.bad_pixels, bad_rects=())
    return meta.replace(bad_pixels=(), opcode_list1=(*meta.opcode_list1, fix))


def _assert_meta_equal(got: RawMeta, want: RawMeta) -> None:
    for name in RawMeta.__dataclass_fields__:
        a, b = getattr(got, name), getattr(want, name)
        if a is None or b is None:
            assert a is b, name
        elif name == "gps":  # degrees/minutes/seconds rationals: exact to ~1e-9 degree
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-7, err_msg=name)
        elif isinstance(b, tuple) and b and isinstance(b[0], float):
            np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12, err_msg=name)  # SRATIONAL, large denominators
        elif isinstance(b, float):
            assert a == pytest.approx(b, rel=1e-9, abs=1e-12), name
        else:
            assert a == b, name


def _mosaic(seed: int = 0, shape=(H, W)) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 4096, shape, generator=g).float()


def _exiftool_errors(path) -> list[str]:
    exe = shutil.which("exiftool")
    if exe is None:
        pytest.skip("exiftool is not installed: cannot validate the DNG structure")
    out = subprocess.run([exe, "-validate", "-warning", "-error", "-a", str(path)], capture_output=True, text=True)
    lines = (out.stdout + out.stderr).splitlines()
    assert any(line.startswith("Validate") for line in lines), lines
    return [line for line in lines if "error" in line.lower() or ("validate" in line.lower() and "OK" not in line)]


@pytest.mark.parametrize("cfa", BAYER_PATTERNS)
def test_bayer_round_trip(tmp_path, cfa):
    meta = _full_meta(cfa)
    data = _mosaic()
    out = write_dng(RawFrame(data, meta), tmp_path / f"{cfa}.dng")
    assert out.exists() and not list(tmp_path.glob(".*.part"))
    # LibRaw: identical linearized mosaic, CFA and levels
    with rawpy.imread(str(out)) as r:
        desc = r.color_desc.decode()
        got_cfa = "".join(desc[c] for c in r.raw_colors_visible[:2, :2].ravel())
        assert got_cfa == cfa
        lut = np.asarray(meta.linearization_table)
        np.testing.assert_array_equal(r.raw_image_visible, lut[data.numpy().astype(np.int64)])
        sites = r.raw_colors_visible[:2, :2].ravel()
        assert tuple(float(r.black_level_per_channel[c]) for c in sites) == meta.black_level
        assert r.white_level == 4095
        assert r.sizes.flip == 6  # EXIF orientation 6
    # our reader: identical codes, metadata field for field
    back = read_raw(out)
    assert torch.equal(back.data, data)
    _assert_meta_equal(back.meta, _expected_back(meta))
    assert _exiftool_errors(out) == []


def test_without_linearization_rawpy_mosaic_identical(tmp_path):
    meta = _full_meta("RGGB").replace(linearization_table=None, as_shot_neutral=None, as_shot_white_xy=(0.3127, 0.329))
    data = _mosaic(1)
    out = write_dng(RawFrame(data, meta), tmp_path / "plain.dng")
    with rawpy.imread(str(out)) as r:
        np.testing.assert_array_equal(r.raw_image_visible, data.numpy().astype(np.uint16))
    _assert_meta_equal(read_raw(out).meta, _expected_back(meta))


@pytest.mark.parametrize("cfa", QUAD_BAYER_PATTERNS)
def test_quad_bayer_round_trip(tmp_path, cfa):
    # LibRaw reads the pixels but not the 4x4 pattern (it reports a 2x2 one), so only read_raw is checked
    meta = _full_meta(cfa)
    data = _mosaic(2)
    out = write_dng(RawFrame(data, meta), tmp_path / "quad.dng")
    back = read_raw(out)
    assert torch.equal(back.data, data)
    _assert_meta_equal(back.meta, _expected_back(meta))
    with rawpy.imread(str(out)) as r:
        np.testing.assert_array_equal(
            r.raw_image_visible, np.asarray(meta.linearization_table)[data.numpy().astype(int)]
        )
    assert _exiftool_errors(out) == []


def test_linear_raw_round_trip(tmp_path):
    meta = _full_meta("").replace(linearization_table=None, bad_pixels=())
    data = _mosaic(3, (3, H, W))
    out = write_dng(RawFrame(data, meta), tmp_path / "linear.dng")
    back = read_raw(out)
    assert back.meta.cfa == "" and torch.equal(back.data, data)
    _assert_meta_equal(back.meta, meta)
    with rawpy.imread(str(out)) as r:
        assert r.raw_type == rawpy.RawType.Stack
        np.testing.assert_array_equal(r.raw_image_visible[..., :3].transpose(2, 0, 1), data.numpy())
    assert _exiftool_errors(out) == []


def test_colorchart_rewrite(data_dir, tmp_path):
    src = data_dir / "raw" / "tinydngloader" / "colorchart.dng"
    if not src.exists():
        pytest.skip(f"{src} is absent")
    frame = read_raw(src)
    out = write_dng(frame, tmp_path / "colorchart.dng")
    back = read_raw(out)
    assert torch.equal(back.data, frame.data)
    with rawpy.imread(str(out)) as r, rawpy.imread(str(src)) as s:
        np.testing.assert_array_equal(r.raw_image_visible, s.raw_image_visible)
        assert r.black_level_per_channel == s.black_level_per_channel and r.white_level == s.white_level
    _assert_meta_equal(back.meta, frame.meta)
    assert _exiftool_errors(out) == []


def test_never_clobbers_and_overwrites_on_request(tmp_path):
    p = tmp_path / "a.dng"
    p.write_bytes(b"precious")
    frame = RawFrame(_mosaic(), RawMeta(cfa="RGGB", white_level=4095.0))
    with pytest.raises(OutputExists):
        write_dng(frame, p)
    assert p.read_bytes() == b"precious"
    write_dng(frame, p, overwrite=True)
    assert torch.equal(read_raw(p).data, frame.data)


def test_bad_inputs(tmp_path):
    meta = RawMeta(cfa="RGGB", white_level=4095.0)
    with pytest.raises(InvalidParameter, match="integral"):
        write_dng(RawFrame(_mosaic() + 0.5, meta), tmp_path / "f.dng")
    with pytest.raises(InvalidParameter, match="65535"):
        write_dng(RawFrame(_mosaic() * 100, meta), tmp_path / "g.dng")
    with pytest.raises(InvalidParameter, match="white_level"):
        write_dng(RawFrame(_mosaic(), meta.replace(white_level=1e6)), tmp_path / "h.dng")
    with pytest.raises(ShapeError):
        write_dng(_mosaic(), tmp_path / "i.dng")
    with pytest.raises(InvalidParameter, match="non-finite"):
        write_dng(RawFrame(_mosaic(), meta.replace(baseline_exposure=math.inf)), tmp_path / "j.dng")
    assert not list(tmp_path.iterdir())  # nothing left behind
