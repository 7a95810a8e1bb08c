"""EXIF from RawMeta: every field read back by exiftool (an outside reader) from files Pillow wrote."""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image as PILImage

from obscura.core.errors import InvalidParameter
from obscura.core.types import RawMeta
from obscura.io.exif import EXIF_IFD, GPS_IFD, exif_from_meta

META = RawMeta(
    make="Canon",
    model="Canon EOS 5D Mark IV",
    lens="EF24-70mm f/2.8L II USM",
    exposure_time=1 / 250,
    iso=800,
    f_number=5.6,
    focal_length=35.0,
    focal_length_35mm=35,
    datetime="2024:05:06 07:08:09",
    gps=(48.858370, 2.294481, 35.5),
    orientation=6,
)

needs_exiftool = pytest.mark.skipif(shutil.which("exiftool") is None, reason="exiftool is not installed")


def exiftool(path) -> dict:
    out = subprocess.run(["exiftool", "-j", "-n", str(path)], capture_output=True, text=True, check=True).stdout
    return json.loads(out)[0]


def _jpeg(tmp_path, exif: bytes, name="e.jpg"):
    p = tmp_path / name
    PILImage.fromarray(np.zeros((48, 64, 3), np.uint8)).save(p, exif=exif)
    return p


@needs_exiftool
def test_every_field_reads_back(tmp_path):
    exif = exif_from_meta(META, width=64, height=48, software="obscura 0.1", now="2025:01:02 03:04:05")
    assert exif.startswith(b"Exif\0\0")
    t = exiftool(_jpeg(tmp_path, exif))
    assert t["Make"] == "Canon"
    assert t["Model"] == "Canon EOS 5D Mark IV"
    assert t["LensModel"] == "EF24-70mm f/2.8L II USM"
    assert t["ExposureTime"] == pytest.approx(1 / 250)
    assert t["ISO"] == 800
    assert t["FNumber"] == pytest.approx(5.6)
    assert t["FocalLength"] == pytest.approx(35.0)
    assert t["FocalLengthIn35mmFormat"] == 35
    assert t["DateTimeOriginal"] == "2024:05:06 07:08:09"
    assert t["ModifyDate"] == "2025:01:02 03:04:05"  # DateTime
    assert t["Software"] == "obscura 0.1"
    assert t["Orientation"] == 1  # pixels already upright, whatever the raw said
    assert t["ColorSpace"] == 1
    assert (t["ExifImageWidth"], t["ExifImageHeight"]) == (64, 48)
    assert t["GPSLatitudeRef"] == "N" and t["GPSLongitudeRef"] == "E"
    assert t["GPSLatitude"] == pytest.approx(48.858370, abs=1e-6)
    assert t["GPSLongitude"] == pytest.approx(2.294481, abs=1e-6)
    assert t["GPSAltitude"] == pytest.approx(35.5)
    assert t["GPSAltitudeRef"] == 0


@needs_exiftool
def test_southern_western_below_sea_level_and_p3(tmp_path):
    meta = META.replace(gps=(-33.8568, -70.6483, -12.0), exposure_time=2.5)
    t = exiftool(_jpeg(tmp_path, exif_from_meta(meta, width=64, height=48, space="display_p3")))
    assert t["GPSLatitudeRef"] == "S" and t["GPSLongitudeRef"] == "W"
    assert t["GPSLatitude"] == pytest.approx(-33.8568, abs=1e-6)
    assert t["GPSLongitude"] == pytest.approx(-70.6483, abs=1e-6)
    assert t["GPSAltitude"] == pytest.approx(-12.0) and t["GPSAltitudeRef"] == 1
    assert t["ExposureTime"] == pytest.approx(2.5)
    assert t["ColorSpace"] == 0xFFFF  # uncalibrated: the ICC profile says Display P3


@needs_exiftool
def test_no_meta_gives_minimal_block(tmp_path):
    t = exiftool(_jpeg(tmp_path, exif_from_meta(None, width=64, height=48)))
    assert t["Software"] == "obscura" and t["Orientation"] == 1
    assert (t["ExifImageWidth"], t["ExifImageHeight"]) == (64, 48)
    for absent in ("Make", "Model", "ISO", "ExposureTime", "GPSLatitude", "DateTimeOriginal"):
        assert absent not in t


def test_pillow_reads_the_ifds():
    e = PILImage.Exif()
    e.load(exif_from_meta(META, width=10, height=20))
    assert e[0x010F] == "Canon" and e[0x0112] == 1
    sub = e.get_ifd(EXIF_IFD)
    assert float(sub[0x829A]) == pytest.approx(0.004) and sub[0x8827] == 800
    assert sub[0xA002] == 10 and sub[0xA003] == 20
    gps = e.get_ifd(GPS_IFD)
    d, m, s = (float(v) for v in gps[2])
    assert d + m / 60 + s / 3600 == pytest.approx(48.858370, abs=1e-6)


def test_absurd_values_are_left_out():
    meta = RawMeta(exposure_time=float("nan"), iso=-5, f_number=0.0, gps=(float("nan"), 0.0, 0.0))
    e = PILImage.Exif()
    e.load(exif_from_meta(meta, width=4, height=4))
    sub = e.get_ifd(EXIF_IFD)
    assert 0x829A not in sub and 0x8827 not in sub and 0x829D not in sub
    assert not e.get_ifd(GPS_IFD)


def test_bad_inputs():
    with pytest.raises(InvalidParameter, match="positive"):
        exif_from_meta(META, width=0, height=10)
    with pytest.raises(InvalidParameter, match="display_p3"):
        exif_from_meta(META, width=10, height=10, space="adobe")
