"""write(): every format re-opened by its library (Pillow, pillow-heif, tifffile, libpng), with the pixels,
bit depth, ICC profile and EXIF checked; never losing a file; options checked before writing."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess

import imagecodecs
import numpy as np
import pillow_heif
import pytest
import tifffile
import torch
from PIL import Image as PILImage
from PIL import JpegImagePlugin

from obscura.core.colour import convert
from obscura.core.errors import InputError, InvalidParameter, OutputExists, UnsupportedFormat, WriteError
from obscura.core.types import Image, RawMeta
from obscura.io.icc import icc_profile
from obscura.io.write import read_image, write
from obscura.isp.encode import encode, quantize

META = RawMeta(make="Obscura", model="Virtual One", iso=200, exposure_time=0.01, f_number=4.0, gps=(1.5, 2.5, 3.0))
needs_exiftool = pytest.mark.skipif(shutil.which("exiftool") is None, reason="exiftool is not installed")


def smooth_image(h=48, w=64, space="linear_srgb", device="cpu") -> Image:
    """A smooth linear image (gradients), mostly inside every gamut."""
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    x = torch.stack([0.05 + 0.8 * xx, 0.05 + 0.8 * yy, 0.3 + 0.3 * xx * yy]) ** 2
    return Image(x.to(device), space, META)


def psnr(a: np.ndarray, b: np.ndarray, peak: float) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 10 * np.log10(peak**2 / max(mse, 1e-20))


def expected_codes(img: Image, space: str, bits: int) -> np.ndarray:
    enc = encode(img, space=space).data
    return quantize(enc, bits=bits, dither=False).permute(1, 2, 0).cpu().numpy()


def exif_of(path) -> dict:
    out = subprocess.run(["exiftool", "-j", "-n", str(path)], capture_output=True, text=True, check=True).stdout
    return json.loads(out)[0]


def reopen(path):
    """(pixels H×W×3, significant bits, ICC bytes) with the format's own library."""
    suffix = path.suffix.lower()
    if suffix in (".tif", ".tiff"):
        with tifffile.TiffFile(path) as tf:
            page = tf.pages[0]
            return page.asarray(), page.dtype.itemsize * 8, bytes(page.tags[34675].value)
    if suffix == ".png":
        arr = imagecodecs.png_decode(path.read_bytes())
        with PILImage.open(path) as im:
            return arr, arr.dtype.itemsize * 8, im.info["icc_profile"]
    if suffix in (".heic", ".heif"):
        h = pillow_heif.open_heif(path, convert_hdr_to_8bit=False)
        depth = h.info["bit_depth"]
        arr = np.asarray(h)
        return (arr >> (16 - depth) if depth > 8 else arr), depth, h.info["icc_profile"]
    with PILImage.open(path) as im:
        return np.asarray(im.convert("RGB")), 8, im.info["icc_profile"]


LOSSLESS = [("a.png", 8), ("b.png", 16), ("c.tif", 16), ("d.tif", 8)]


@pytest.mark.parametrize("space", ["srgb", "display_p3"])
@pytest.mark.parametrize(("name", "bits"), LOSSLESS)
def test_lossless_formats_exact(tmp_path, name, bits, space):
    img = smooth_image()
    out = write(img, tmp_path / name, bits=bits, space=space, dither=False)
    assert out == tmp_path / name
    arr, depth, icc = reopen(out)
    assert arr.shape == (48, 64, 3) and depth == bits
    assert np.array_equal(arr.astype(np.int64), expected_codes(img, space, bits).astype(np.int64))
    assert icc == icc_profile(space)
    back = read_image(out)
    assert back.space == space and back.data.shape == (3, 48, 64)


@pytest.mark.parametrize(
    ("name", "kwargs", "depth", "min_psnr"),
    [
        ("a.jpg", {"quality": 95}, 8, 40.0),
        ("b.jpeg", {"quality": 90, "subsampling": "4:4:4"}, 8, 40.0),
        ("c.heic", {"quality": 90}, 8, 38.0),
        ("d.heic", {"quality": 90, "bits": 10}, 10, 38.0),
        ("e.avif", {"quality": 90}, 8, 36.0),
    ],
)
def test_lossy_formats(tmp_path, name, kwargs, depth, min_psnr):
    img = smooth_image()
    out = write(img, tmp_path / name, space="display_p3", **kwargs)
    arr, got_depth, icc = reopen(out)
    assert arr.shape == (48, 64, 3) and got_depth == depth
    peak = (1 << depth) - 1
    ref = encode(img, space="display_p3").data.permute(1, 2, 0).numpy() * peak
    assert psnr(arr, ref, peak) > min_psnr
    assert icc == icc_profile("display_p3")


def test_jpeg_subsampling_and_quality(tmp_path):
    img = smooth_image()
    for s, expect in (("4:4:4", 0), ("4:2:2", 1), ("4:2:0", 2)):
        with PILImage.open(write(img, tmp_path / f"s{expect}.jpg", subsampling=s)) as im:
            assert JpegImagePlugin.get_sampling(im) == expect
    small = write(img, tmp_path / "q10.jpg", quality=10).stat().st_size
    big = write(img, tmp_path / "q100.jpg", quality=100).stat().st_size
    assert small < big


def test_float_tiff_stays_linear(tmp_path):
    img = smooth_image(space="linear_p3")
    out = write(img, tmp_path / "f.tif", bits=32)
    arr, depth, icc = reopen(out)
    assert depth == 32 and arr.dtype == np.float32
    assert np.array_equal(arr, img.data.permute(1, 2, 0).numpy())
    assert icc == icc_profile("linear_p3")
    back = read_image(out)
    assert back.space == "linear_p3" and torch.equal(back.data, img.data)
    # asked for sRGB: the linear sRGB values
    out2 = write(img, tmp_path / "g.tif", bits=32, space="srgb")
    arr2, _, icc2 = reopen(out2)
    ref = convert(img.data, src="linear_p3", dst="linear_srgb").permute(1, 2, 0).numpy()
    assert np.abs(arr2 - ref).max() < 1e-6 and icc2 == icc_profile("linear_srgb")


def test_encoded_image_is_written_as_is(tmp_path):
    x = torch.randint(0, 256, (3, 16, 24)).float() / 255
    img = Image(x, "srgb")
    arr, _, icc = reopen(write(img, tmp_path / "a.png", dither=False))
    assert np.array_equal(arr, (x * 255).round().byte().permute(1, 2, 0).numpy())
    assert icc == icc_profile("srgb")
    # and converted when another output space is asked for
    p3 = read_image(write(img, tmp_path / "b.png", space="display_p3", bits=16))
    assert p3.space == "display_p3"
    assert (convert(p3.data, src="display_p3", dst="srgb") - x).abs().max() < 2e-4


def test_dither_on_by_default_and_reproducible(tmp_path):
    img = smooth_image()
    a = write(img, tmp_path / "a.png").read_bytes()
    b = write(img, tmp_path / "b.png").read_bytes()
    assert a == b  # fixed seed: the same image gives the same file
    arr, _, _ = reopen(tmp_path / "a.png")
    ref = encode(img, space="srgb").data.permute(1, 2, 0).numpy() * 255
    assert np.abs(arr - ref).max() < 1.5 and not np.array_equal(arr, expected_codes(img, "srgb", 8))


@needs_exiftool
@pytest.mark.parametrize(
    ("name", "bits"), [("a.jpg", None), ("b.png", 16), ("c.tif", 16), ("d.tif", 32), ("e.heic", None), ("f.avif", None)]
)
def test_exif_in_every_format(tmp_path, name, bits):
    img = smooth_image(space="linear_p3")
    t = exif_of(write(img, tmp_path / name, bits=bits))
    assert t["Make"] == "Obscura" and t["Model"] == "Virtual One"
    assert t["ISO"] == 200 and t["ExposureTime"] == pytest.approx(0.01) and t["FNumber"] == pytest.approx(4.0)
    assert t["GPSLatitude"] == pytest.approx(1.5) and t["GPSLongitude"] == pytest.approx(2.5)
    # Pillow's AVIF writer moves Orientation into the irot/imir boxes (none needed for 1) and drops the tag
    assert t.get("Orientation", 1 if name.endswith(".avif") else None) == 1 and t["Software"] == "obscura"
    assert t["ColorSpace"] == 0xFFFF  # Display P3 / linear: uncalibrated in EXIF terms
    if not name.endswith(".tif"):  # PixelX/YDimension are not allowed in TIFF
        assert (t["ExifImageWidth"], t["ExifImageHeight"]) == (64, 48)
    assert t["ExifVersion"] == "0232"
    assert "Warning" not in t


def test_never_overwrites_without_asking(tmp_path):
    target = tmp_path / "a.jpg"
    target.write_bytes(b"precious")
    with pytest.raises(OutputExists, match=r"a\.jpg"):
        write(smooth_image(), target)
    assert target.read_bytes() == b"precious"
    assert sorted(os.listdir(tmp_path)) == ["a.jpg"]  # no temporary file left
    write(smooth_image(), target, overwrite=True)
    with PILImage.open(target) as im:
        assert im.size == (64, 48)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"quality": 0}, InvalidParameter, "1..100"),
        ({"quality": 101}, InvalidParameter, "1..100"),
        ({"quality": 9.5}, InvalidParameter, "1..100"),
        ({"bits": 12}, InvalidParameter, "jpeg supports bits 8"),
        ({"bits": 16}, InvalidParameter, "jpeg supports bits 8"),
        ({"subsampling": "4:1:1"}, InvalidParameter, "4:4:4"),
        ({"space": "adobe_rgb"}, InvalidParameter, "srgb, display_p3"),
        ({"format": "gif"}, UnsupportedFormat, "jpeg .*png .*tiff .*heif .*avif"),
    ],
)
def test_invalid_options_raise_before_writing(tmp_path, kwargs, error, match):
    with pytest.raises(error, match=match):
        write(smooth_image(), tmp_path / "a.jpg", **kwargs)
    assert os.listdir(tmp_path) == []


def test_unknown_suffix_and_bad_images(tmp_path):
    with pytest.raises(UnsupportedFormat, match=r"\.bmp.*jpeg \(\.jpg/\.jpeg\)"):
        write(smooth_image(), tmp_path / "a.bmp")
    with pytest.raises(UnsupportedFormat):
        write(smooth_image(), tmp_path / "noext")
    with pytest.raises(InvalidParameter, match="camera"):
        write(Image(torch.rand(3, 4, 4), "camera"), tmp_path / "a.png")
    with pytest.raises(InvalidParameter, match="float TIFF"):
        write(smooth_image(), tmp_path / "a.tif", bits=32, space="xyz_d50")
    assert os.listdir(tmp_path) == []


def test_unwritable_folder(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        if os.access(folder, os.W_OK):
            pytest.skip("running as root: chmod does not make the folder unwritable")
        with pytest.raises(WriteError, match="ro"):
            write(smooth_image(), folder / "a.jpg")
        assert os.listdir(folder) == []
    finally:
        folder.chmod(0o700)


def test_unwritable_folder_simulated(tmp_path, monkeypatch):
    """The same check when running as root: the folder reported as not writable."""
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if str(p) == str(tmp_path) else real(p, mode))
    with pytest.raises(WriteError, match="not writable"):
        write(smooth_image(), tmp_path / "a.jpg")
    assert os.listdir(tmp_path) == []


def test_missing_folder(tmp_path):
    with pytest.raises(WriteError, match="does not exist"):
        write(smooth_image(), tmp_path / "nope" / "a.jpg")


@pytest.mark.parametrize("name", ["a.jpg", "b.tif", "c.png"])
def test_full_disk_leaves_nothing(tmp_path, monkeypatch, name):
    def fail(*args, **kwargs):
        path = args[1] if isinstance(args[0], PILImage.Image) else args[0]
        with open(path, "wb") as f:  # a partial file, then the disk fills up
            f.write(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(PILImage.Image, "save", fail)
    monkeypatch.setattr(tifffile, "imwrite", fail)

    def png_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(imagecodecs, "png_encode", png_full)
    with pytest.raises(WriteError, match=rf"{name}.*disk is full"):
        write(smooth_image(), tmp_path / name)
    assert os.listdir(tmp_path) == []  # neither the output nor the temporary file


def test_write_from_device(tmp_path, device):
    img = smooth_image(device=device)
    arr, _, _ = reopen(write(img, tmp_path / "a.png", dither=False))
    assert np.array_equal(arr, expected_codes(smooth_image(), "srgb", 8))


# --- read_image ---------------------------------------------------------------------------------------------


def test_read_image_foreign_files(tmp_path):
    grey = np.tile(np.arange(0, 256, 4, dtype=np.uint8), (8, 1))
    PILImage.fromarray(grey).save(tmp_path / "g.png")
    img = read_image(tmp_path / "g.png")
    assert img.space == "srgb" and img.data.shape == (3, 8, 64)
    assert torch.equal(img.data[0], img.data[2]) and float(img.data[0, 0, 1]) == pytest.approx(4 / 255)
    rgba = np.zeros((4, 5, 4), np.uint8)
    rgba[..., 0] = 255
    PILImage.fromarray(rgba).save(tmp_path / "a.png")
    assert read_image(tmp_path / "a.png").data[:, 0, 0].tolist() == [1.0, 0.0, 0.0]
    tifffile.imwrite(tmp_path / "f.tif", np.full((4, 5, 3), 0.25, np.float32), photometric="rgb")
    f = read_image(tmp_path / "f.tif")
    assert f.space == "linear_srgb" and float(f.data.mean()) == 0.25


def test_read_image_bad_inputs(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read_image(tmp_path / "missing.png")
    (tmp_path / "x.png").write_bytes(b"this is not an image at all")
    with pytest.raises(UnsupportedFormat):
        read_image(tmp_path / "x.png")
    with pytest.raises(InputError, match="not a file"):
        read_image(tmp_path)
