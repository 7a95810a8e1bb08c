"""read_raw / read_headerless / read_burst on the real files in shared/data/raw, against rawpy and tifffile."""

from __future__ import annotations

import os
import shutil

import imagecodecs
import numpy as np
import pytest
import rawpy
import tifffile
import torch

from obscura.core.errors import CorruptFile, InputError, InvalidParameter, ShapeError, UnsupportedFormat
from obscura.io.raw import read_burst, read_headerless, read_raw

MOSAIC_FILES = [
    "tinydngloader/colorchart.dng",
    "boost_gil/RAW_CANON_D30_SRGB.CRW",
    "more/blackmagic_pocket_cinema_camera_4k_12bit.dng",
]
LINEAR_FILES = ["more/skia_lg-h815_sample_1mp.dng", "more/skia_lg-h815_sample_1mp_rotated.dng"]

BAD = {
    "exiftool_CanonRaw.cr2": CorruptFile,
    "exiftool_CanonRaw.cr3": CorruptFile,
    "exiftool_CanonRaw.crw": CorruptFile,
    "exiftool_DNG.dng": CorruptFile,  # silent failure: decodes to zeros
    "exiftool_FujiFilm.raf": CorruptFile,
    "exiftool_Minolta.mrw": CorruptFile,
    "exiftool_Nikon.nef": CorruptFile,
    "exiftool_Panasonic.rw2": CorruptFile,  # silent failure: 0.18 % nonzero
    "exiftool_PhaseOne.iiq": CorruptFile,
    "exiftool_SigmaDP2.x3f": CorruptFile,
    "exiv2_iphone12pro_proraw_stripped.dng": CorruptFile,  # silent failure
    "filetype_canon_eos_r_truncated.cr3": CorruptFile,
    "filetype_leica_m10_truncated.dng": CorruptFile,
    "filetype_sony_zv-e10_truncated.arw": CorruptFile,
    "imagemeta_sony_slt-a55v_truncated.arw": CorruptFile,  # silent failure
    "metadata-extractor_nikon_d70s_jpeg_misnamed.nef": UnsupportedFormat,
}
SILENT = {
    "exiftool_DNG.dng",
    "exiftool_Panasonic.rw2",
    "exiv2_iphone12pro_proraw_stripped.dng",
    "imagemeta_sony_slt-a55v_truncated.arw",
}


def _need(data_dir, rel):
    p = data_dir / "raw" / rel
    if not p.exists():
        pytest.skip(f"{p} is absent")
    return p


@pytest.mark.parametrize("rel", MOSAIC_FILES)
def test_mosaic_matches_rawpy(data_dir, rel):
    p = _need(data_dir, rel)
    frame = read_raw(p)
    with rawpy.imread(str(p)) as r:
        vis = r.raw_image_visible.copy()
        desc = r.color_desc.decode()
        colors = r.raw_colors_visible[:2, :2].ravel()
        blacks = [float(r.black_level_per_channel[c]) for c in colors]
        white = float(r.white_level)
    h, w = vis.shape[0] // 2 * 2, vis.shape[1] // 2 * 2
    assert frame.data.dtype == torch.float32 and tuple(frame.data.shape) == (h, w)
    assert frame.meta.cfa == "".join(desc[c] for c in colors) == "RGGB"
    assert frame.meta.black_level == tuple(blacks)
    assert frame.meta.white_level == white
    table = frame.meta.linearization_table
    got = frame.data.numpy().astype(np.int64)
    if table is None:
        np.testing.assert_array_equal(got, vis[:h, :w])
    else:
        # stored codes + table; LibRaw returns linearized values. They agree except where LibRaw's own
        # lossless-JPEG decode differs by one code (about 4 % of the pixels, never more than one code).
        lut = np.asarray(table)
        lin = lut[got]
        assert np.mean(lin == vis[:h, :w]) > 0.95
        codes_libraw = np.searchsorted(lut, vis[:h, :w])
        assert np.abs(codes_libraw - got).max() <= 1
    assert frame.meta.source_format == ("dng" if rel.endswith(".dng") else "crw")


def test_crw_offsets_and_metadata(data_dir):
    p = _need(data_dir, "boost_gil/RAW_CANON_D30_SRGB.CRW")
    f = read_raw(p)
    with rawpy.imread(str(p)) as r:
        s = r.sizes
        full = r.raw_image
        # visible area = raw_image[top:top+h, left:left+w]; pattern checked on the full-raw colours there
        np.testing.assert_array_equal(
            f.data.numpy(), full[s.top_margin : s.top_margin + s.height, s.left_margin : s.left_margin + s.width]
        )
        c = r.raw_colors[s.top_margin : s.top_margin + 2, s.left_margin : s.left_margin + 2].ravel()
        assert f.meta.cfa == "".join(r.color_desc.decode()[i] for i in c)
        np.testing.assert_allclose(f.meta.color_matrix1, np.asarray(r.rgb_xyz_matrix)[:3].ravel(), atol=1e-6)
    assert f.meta.calibration_illuminant1 == 21
    assert f.meta.as_shot_neutral is None  # camera_whitebalance[0] == -1: no as-shot WB recorded
    assert f.meta.iso == 100.0 and f.meta.datetime == "2002:11:24 15:11:22"
    assert f.meta.default_crop == (8, 6, 2160, 1440)


def _tag(page, name):
    return page.tags[name].value if name in page.tags else None


def _rat(v):
    a = np.asarray(v, dtype=np.float64).ravel()
    return tuple(a[0::2] / a[1::2])


def test_dng_tags_against_tifffile(data_dir):
    p = _need(data_dir, "more/blackmagic_pocket_cinema_camera_4k_12bit.dng")
    m = read_raw(p).meta
    with tifffile.TiffFile(p) as tf:
        pg = tf.pages[0]
        np.testing.assert_allclose(m.color_matrix1, _rat(_tag(pg, "ColorMatrix1")), rtol=0, atol=1e-12)
        np.testing.assert_allclose(m.color_matrix2, _rat(_tag(pg, "ColorMatrix2")), atol=1e-12)
        np.testing.assert_allclose(m.forward_matrix1, _rat(_tag(pg, "ForwardMatrix1")), atol=1e-12)
        np.testing.assert_allclose(m.forward_matrix2, _rat(_tag(pg, "ForwardMatrix2")), atol=1e-12)
        np.testing.assert_allclose(m.camera_calibration1, _rat(_tag(pg, "CameraCalibration1")), atol=1e-12)
        np.testing.assert_allclose(m.as_shot_neutral, _rat(_tag(pg, "AsShotNeutral")), atol=1e-12)
        np.testing.assert_allclose(m.analog_balance, _rat(_tag(pg, "AnalogBalance")), atol=1e-12)
        assert m.baseline_exposure == pytest.approx(2.65412)
        assert (m.calibration_illuminant1, m.calibration_illuminant2) == (17, 21)
        assert m.linearization_table == tuple(int(x) for x in _tag(pg, "LinearizationTable"))
        assert m.default_crop == (16, 8, 4096, 2160)
        assert m.black_level == (512.0,) * 4 and m.white_level == 65535.0
        assert m.unique_camera_model == "Blackmagic Pocket Cinema Camera 4K"
        # the codes are tifffile's decode, and libjpeg-turbo decodes the first tile identically
        fh = tf.filehandle
        fh.seek(pg.dataoffsets[0])
        tile = imagecodecs.jpeg8_decode(fh.read(pg.databytecounts[0])).reshape(2176, 1032)
    np.testing.assert_array_equal(read_raw(p).data[:, :1032].numpy(), tile)


def test_colorchart_dng_tags(data_dir):
    p = _need(data_dir, "tinydngloader/colorchart.dng")
    m = read_raw(p).meta
    with tifffile.TiffFile(p) as tf:
        pg = tf.pages[0]
        np.testing.assert_allclose(m.color_matrix1, _rat(_tag(pg, "ColorMatrix1")), atol=1e-12)
        np.testing.assert_allclose(m.as_shot_neutral, _rat(_tag(pg, "AsShotNeutral")), atol=1e-12)
        assert m.black_level == (float(_tag(pg, "BlackLevel")),) * 4
        assert m.white_level == float(_tag(pg, "WhiteLevel"))
        assert m.default_crop == (*_tag(pg, "DefaultCropOrigin"), *_tag(pg, "DefaultCropSize"))
        cfa = "".join("RGB"[i] for i in _tag(pg, "CFAPattern"))  # ActiveArea origin (26, 152) is even
    assert m.cfa == cfa
    assert (m.make, m.model, m.software) == ("Canon", "Canon EOS Kiss X4", "Magic Lantern")
    assert m.exposure_time is None and m.iso is None  # EXIF says 0 = unknown


@pytest.mark.parametrize("rel", LINEAR_FILES)
def test_linear_raw(data_dir, rel):
    p = _need(data_dir, rel)
    f = read_raw(p)
    assert f.meta.cfa == "" and tuple(f.data.shape) == (3, 338, 600)
    with tifffile.TiffFile(p) as tf:
        sub = tf.pages[0].pages[0]
        np.testing.assert_array_equal(f.data.numpy(), sub.asarray().transpose(2, 0, 1))
        assert f.meta.white_level == 255.0 and f.meta.black_level == (0.0, 0.0, 0.0)
        ops = f.meta.opcode_list2
        assert [o.name for o in ops] == ["MapPolynomial"] * 3 and len(sub.tags["OpcodeList2"].value) > 0
    with rawpy.imread(str(p)) as r:
        ref = r.raw_image_visible[..., :3].astype(np.float64).transpose(2, 0, 1)
        expected_orientation = {0: 1, 5: 8}[r.sizes.flip]
    # LibRaw rescales the 8-bit samples; the planes still agree strongly
    for c in range(3):
        assert np.corrcoef(f.data[c].numpy().ravel(), ref[c].ravel())[0, 1] > 0.9
    assert f.meta.orientation == expected_orientation
    assert f.meta.as_shot_neutral == (0.515625, 1.0, 0.65625)
    assert (f.meta.exposure_time, f.meta.iso, f.meta.f_number) == (0.0005, 50.0, 1.8)
    assert f.meta.make == "LG Mobile" and f.meta.calibration_illuminant2 == 17


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_files(data_dir, name):
    p = _need(data_dir, f"bad/{name}")
    with pytest.raises(BAD[name]) as e:
        read_raw(p)
    assert str(e.value).startswith(str(p))
    if name in SILENT:
        assert "no image data" in str(e.value) or "past the end" in str(e.value)


def test_not_raw_inputs(tmp_path):
    txt = tmp_path / "notes.dng"
    txt.write_text("this is not a DNG\n" * 20)
    with pytest.raises(UnsupportedFormat, match=r"notes\.dng"):
        read_raw(txt)
    rnd = tmp_path / "noise.nef"
    rnd.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(UnsupportedFormat, match=r"noise\.nef"):
        read_raw(rnd)
    with pytest.raises(InputError, match="is a folder"):
        read_raw(tmp_path)
    with pytest.raises(InputError, match="no such file"):
        read_raw(tmp_path / "missing.cr2")
    empty = tmp_path / "empty.arw"
    empty.write_bytes(b"")
    with pytest.raises(CorruptFile, match="empty"):
        read_raw(empty)


def test_headerless_raw(data_dir):
    p = _need(data_dir, "mushfiqulalam_isp/DSC_1339_768x512_rggb.raw")
    f = read_headerless(p, height=512, width=768, cfa="RGGB", black_level=600, white_level=15520)
    ref = np.fromfile(p, dtype="<u2").reshape(512, 768)
    np.testing.assert_array_equal(f.data.numpy(), ref)
    assert f.meta.black_level == (600.0,) * 4 and f.meta.white_level == 15520 and f.meta.source_format == "raw"
    # measured 2x2 means from the data README
    assert float(f.data[0::2, 0::2].mean()) == pytest.approx(2140.4, abs=0.1)
    assert float(f.data[1::2, 1::2].mean()) == pytest.approx(1152.6, abs=0.1)
    with pytest.raises(CorruptFile, match="786432"):
        read_headerless(p, height=512, width=770, cfa="RGGB", black_level=600, white_level=15520)
    with pytest.raises(CorruptFile, match="too short"):
        read_headerless(p, height=512, width=768, cfa="RGGB", black_level=600, white_level=15520, offset=2)
    with pytest.raises(InvalidParameter):
        read_headerless(p, height=512, width=768, cfa="RGGB", black_level=600, white_level=100)
    with pytest.raises(InvalidParameter):
        read_headerless(p, height=512, width=768, dtype="int7", cfa="RGGB", black_level=0, white_level=1)


def test_headerless_8bit_and_png(data_dir):
    p = _need(data_dir, "more/infinite_isp_Indoor1_2592x1536_8bit_GRBG.raw")
    f = read_headerless(p, height=1536, width=2592, dtype="uint8", cfa="GRBG", black_level=12.5, white_level=255)
    assert tuple(f.data.shape) == (1536, 2592) and f.meta.cfa == "GRBG"
    assert float(f.data[0::2, 1::2].mean()) == pytest.approx(48.5, abs=0.1)  # R mean (README)
    q = _need(data_dir, "halide/bayer_small.png")
    g = read_headerless(q, height=344, width=256, cfa="GRBG", black_level=25, white_level=1023)
    from PIL import Image as PILImage

    with PILImage.open(q) as im:
        np.testing.assert_array_equal(g.data.numpy(), np.array(im))
    assert float(g.data.max()) == 1053.0 and g.meta.source_format == "png"  # 16 bits kept (README: max 1053)
    with pytest.raises(CorruptFile, match="344x256"):
        read_headerless(q, height=256, width=344, cfa="GRBG", black_level=25, white_level=1023)


def test_read_burst(data_dir, tmp_path):
    p = _need(data_dir, "tinydngloader/colorchart.dng")
    for i in range(2):
        os.symlink(p, tmp_path / f"frame{i}.dng")
    (tmp_path / "readme.txt").write_text("ignored")
    b = read_burst(tmp_path)
    assert len(b) == 2 and tuple(b.data.shape) == (2, 1156, 1734)
    assert torch.equal(b.data[0], b.data[1])
    shutil.copy(_need(data_dir, "boost_gil/RAW_CANON_D30_SRGB.CRW"), tmp_path / "frame2.crw")
    with pytest.raises(ShapeError, match=r"frame2\.crw"):
        read_burst(tmp_path)
    with pytest.raises(InputError):
        read_burst(tmp_path / "nothing")
    with pytest.raises(InputError):
        read_burst([])
