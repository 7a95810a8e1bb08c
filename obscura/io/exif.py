"""EXIF metadata for written images, from the capture's RawMeta (EXIF 2.32 / CIPA DC-008 tag numbers).

Pillow builds and serializes the TIFF structure (``PIL.Image.Exif``); this module only maps RawMeta
fields to tags. ``Orientation`` is always 1: develop turns the pixels upright.
"""

from __future__ import annotations

import datetime as _dt
import math
import struct
from fractions import Fraction
from typing import Any

from PIL import Image as PILImage
from PIL import TiffImagePlugin

from obscura.core.errors import InvalidParameter
from obscura.core.types import RawMeta

__all__ = ["exif_from_meta", "exif_tags", "exif_tiff_block", "EXIF_IFD", "GPS_IFD"]

EXIF_IFD = 0x8769
GPS_IFD = 0x8825
_COLOR_SPACE = {"srgb": 1, "display_p3": 0xFFFF}  # EXIF ColorSpace: 1 = sRGB, 0xFFFF = uncalibrated


def _rational(v: float, max_den: int = 1_000_000) -> TiffImagePlugin.IFDRational:
    f = Fraction(float(v)).limit_denominator(max_den)
    return TiffImagePlugin.IFDRational(f.numerator, f.denominator)


def _exposure(t: float) -> TiffImagePlugin.IFDRational:
    """Exposure time as a rational; short times as 1/n (the way cameras write them)."""
    if 0 < t < 1 and abs(1 / t - round(1 / t)) < 1e-3 * (1 / t):
        return TiffImagePlugin.IFDRational(1, round(1 / t))
    return _rational(t)


def _dms(deg: float) -> tuple[TiffImagePlugin.IFDRational, ...]:
    """Degrees to (degrees, minutes, seconds) rationals, seconds to 1/10000."""
    a = abs(deg)
    d = int(a)
    m = int((a - d) * 60)
    s = (a - d - m / 60) * 3600
    return (
        TiffImagePlugin.IFDRational(d, 1),
        TiffImagePlugin.IFDRational(m, 1),
        TiffImagePlugin.IFDRational(round(s * 10000), 10000),
    )


def _ascii(s: str) -> str:
    return s.encode("ascii", errors="replace").decode("ascii")


def _finite(v: float | None) -> bool:
    return v is not None and math.isfinite(float(v)) and float(v) > 0


def exif_tags(
    meta: RawMeta | None,
    *,
    width: int,
    height: int,
    software: str = "obscura",
    space: str = "srgb",
    now: str | None = None,
) -> tuple[dict[int, Any], dict[int, Any], dict[int, Any]]:
    """The (IFD0, Exif IFD, GPS IFD) tag dictionaries for an image of ``width`` × ``height``.

    ``space`` is the output colour space (ColorSpace tag); ``now`` the DateTime ("YYYY:MM:DD HH:MM:SS",
    default: the current local time).
    """
    if space not in _COLOR_SPACE and not space.startswith("linear"):
        raise InvalidParameter(f"EXIF space must be srgb, display_p3 or a linear space; got {space!r}")
    if int(width) <= 0 or int(height) <= 0:
        raise InvalidParameter(f"width and height must be positive; got {width}x{height}")
    m = meta or RawMeta()
    ifd0: dict[int, Any] = {
        0x0112: 1,  # Orientation: the pixels are upright
        0x0131: _ascii(software),
        0x0132: now or _dt.datetime.now().strftime("%Y:%m:%d %H:%M:%S"),
    }
    if m.make:
        ifd0[0x010F] = _ascii(m.make)
    if m.model:
        ifd0[0x0110] = _ascii(m.model)
    exif: dict[int, Any] = {
        0x9000: b"0232",  # ExifVersion 2.32
        0xA000: b"0100",  # FlashpixVersion 1.0
        0xA001: _COLOR_SPACE.get(space, 0xFFFF),
        0xA002: int(width),
        0xA003: int(height),
    }
    if _finite(m.exposure_time):
        exif[0x829A] = _exposure(m.exposure_time)
    if _finite(m.f_number):
        exif[0x829D] = _rational(m.f_number, 1000)
    if _finite(m.iso):
        exif[0x8827] = min(round(m.iso), 65535)  # ISOSpeedRatings / PhotographicSensitivity
        exif[0x8830] = 3  # SensitivityType: ISO speed
    if m.datetime:
        exif[0x9003] = _ascii(m.datetime)
    if _finite(m.focal_length):
        exif[0x920A] = _rational(m.focal_length, 1000)
    if _finite(m.focal_length_35mm):
        exif[0xA405] = min(round(m.focal_length_35mm), 65535)
    if m.lens:
        exif[0xA434] = _ascii(m.lens)
    gps: dict[int, Any] = {}
    if m.gps is not None and all(math.isfinite(float(v)) for v in m.gps):
        lat, lon, alt = (float(v) for v in m.gps)
        gps = {
            0: b"\x02\x03\x00\x00",  # GPSVersionID 2.3.0.0
            1: "N" if lat >= 0 else "S",
            2: _dms(lat),
            3: "E" if lon >= 0 else "W",
            4: _dms(lon),
            5: 0 if alt >= 0 else 1,  # above / below sea level
            6: _rational(abs(alt), 1000),
        }
    return ifd0, exif, gps


def exif_from_meta(
    meta: RawMeta | None,
    *,
    width: int,
    height: int,
    software: str = "obscura",
    space: str = "srgb",
    now: str | None = None,
) -> bytes:
    """The EXIF block (``b"Exif\\0\\0"`` + TIFF structure) Pillow and pillow-heif embed, from ``meta``."""
    ifd0, exif, gps = exif_tags(meta, width=width, height=height, software=software, space=space, now=now)
    e = PILImage.Exif()
    for k, v in ifd0.items():
        e[k] = v
    sub = e.get_ifd(EXIF_IFD)
    sub.update(exif)
    if gps:
        e.get_ifd(GPS_IFD).update(gps)
    return e.tobytes()


def exif_tiff_block(exif: dict[int, Any], gps: dict[int, Any], *, offset: int) -> tuple[bytes, int, int | None]:
    """The Exif (and GPS) IFDs as little-endian bytes to be placed at file ``offset`` of a TIFF.

    Returns ``(block, exif_ifd_offset, gps_ifd_offset or None)``, the absolute offsets to store in the
    ExifIFD (34665) and GPSInfo (34853) tags of IFD0.
    """
    if offset % 2:
        raise InvalidParameter(f"IFD offset must be even; got {offset}")
    holder = TiffImagePlugin.ImageFileDirectory_v2(ifh=b"II\x2a\x00\x08\x00\x00\x00")
    holder[EXIF_IFD] = exif
    if gps:
        holder[GPS_IFD] = gps
    block = holder.tobytes(offset)
    # ``holder`` itself is a small IFD (entry count, entries, next-IFD pointer) that nothing points to;
    # its entries give the absolute offsets of the sub-IFDs that follow it.
    (count,) = struct.unpack_from("<H", block, 0)
    offsets = {}
    for i in range(count):
        tag, _typ, _n, value = struct.unpack_from("<HHII", block, 2 + 12 * i)
        offsets[tag] = value
    return block, offsets[EXIF_IFD], offsets.get(GPS_IFD)
