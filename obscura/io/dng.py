"""Writing a RawFrame as a DNG 1.4 file (Adobe DNG specification 1.4, 2012) with tifffile.

Layout: the raw image (uint16, uncompressed) is IFD0 itself (NewSubfileType 0), CFA mosaics with
PhotometricInterpretation CFA (32803), demosaiced frames (``meta.cfa == ""``) as LinearRaw (34892).
Every RawMeta field goes to its DNG/TIFF tag; EXIF capture fields (exposure, aperture, ISO, focal
lengths, date, lens, serial) go to an EXIF IFD and the position to a GPS IFD, which are appended after
tifffile has written the file (tifffile has no API for EXIF sub-IFDs) and linked from IFD0.
``meta.bad_pixels`` are written as a FixBadPixelsList opcode appended to OpcodeList1 (they are read
back as part of ``opcode_list1``). The file is written to a temporary name and renamed (never clobbers).
"""

from __future__ import annotations

import math
import os
import struct
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import tifffile
import torch

from obscura.core.errors import InvalidParameter, ShapeError
from obscura.core.types import RawFrame, RawMeta
from obscura.io.atomic import atomic_output
from obscura.io.opcodes import make_opcode, serialize_opcode_list

__all__ = ["write_dng"]

_CFA_CODE = {"R": 0, "G": 1, "B": 2}
_MAX32 = 2**31 - 1


def _rational(x: float, *, signed: bool) -> tuple[int, int]:
    """``x`` as (num, den) with the largest denominator that keeps the numerator in 32 bits."""
    if not math.isfinite(x):
        raise InvalidParameter(f"cannot write a non-finite value {x!r} as a DNG rational")
    if not signed and x < 0:
        raise InvalidParameter(f"value {x!r} must be >= 0 for an unsigned DNG rational")
    limit = _MAX32 if signed else 2**32 - 1
    max_den = max(1, min(limit, int(limit // max(1.0, abs(x) + 1.0))))
    f = Fraction(x).limit_denominator(max_den)
    return f.numerator, f.denominator


def _rationals(vals: Any, *, signed: bool) -> tuple[int, ...]:
    out: list[int] = []
    for v in vals:
        out.extend(_rational(float(v), signed=signed))
    return tuple(out)


def _ascii(s: str) -> str:
    return s.encode("ascii", "replace").decode("ascii")


# ------------------------------------------------------------------------------------ EXIF / GPS IFDs


def _ifd_bytes(entries: list[tuple[int, int, int, bytes]], start: int) -> bytes:
    """A little-endian classic TIFF IFD at file offset ``start`` (entries: tag, type, count, value bytes)."""
    entries = sorted(entries)
    n = len(entries)
    data_at = start + 2 + 12 * n + 4
    head = [struct.pack("<H", n)]
    extra = bytearray()
    for tag, typ, count, value in entries:
        if len(value) <= 4:
            head.append(struct.pack("<HHI", tag, typ, count) + value.ljust(4, b"\x00"))
        else:
            off = data_at + len(extra)
            head.append(struct.pack("<HHII", tag, typ, count, off))
            extra += value
            if len(extra) % 2:
                extra += b"\x00"
    head.append(struct.pack("<I", 0))
    return b"".join(head) + bytes(extra)


def _rat_entry(tag: int, vals: Any) -> tuple[int, int, int, bytes]:
    r = _rationals(vals, signed=False)
    return (tag, 5, len(r) // 2, struct.pack(f"<{len(r)}I", *r))


def _ascii_entry(tag: int, s: str) -> tuple[int, int, int, bytes]:
    b = _ascii(s).encode("ascii") + b"\x00"
    return (tag, 2, len(b), b)


def _exif_entries(m: RawMeta) -> list[tuple[int, int, int, bytes]]:
    e: list[tuple[int, int, int, bytes]] = [(36864, 7, 4, b"0230")]  # ExifVersion
    if m.exposure_time is not None:
        e.append(_rat_entry(33434, [m.exposure_time]))
    if m.f_number is not None:
        e.append(_rat_entry(33437, [m.f_number]))
    if m.iso is not None:
        e.append((34855, 3, 1, struct.pack("<H", max(0, min(65535, round(m.iso))))))
        e.append((34864, 3, 1, struct.pack("<H", 3)))  # SensitivityType: ISO speed
    if m.datetime:
        e.append(_ascii_entry(36867, m.datetime))
    if m.focal_length is not None:
        e.append(_rat_entry(37386, [m.focal_length]))
    if m.focal_length_35mm is not None:
        e.append((41989, 3, 1, struct.pack("<H", max(0, min(65535, round(m.focal_length_35mm))))))
    if m.serial:
        e.append(_ascii_entry(42033, m.serial))
    if m.lens:
        e.append(_ascii_entry(42036, m.lens))
    return e


def _gps_entries(gps: tuple[float, float, float]) -> list[tuple[int, int, int, bytes]]:
    lat, lon, alt = (float(v) for v in gps)

    def dms(v: float) -> list[float]:
        v = abs(v)
        d = math.floor(v)
        mnt = math.floor((v - d) * 60.0)
        s = (v - d - mnt / 60.0) * 3600.0
        return [d, mnt, max(0.0, s)]

    return [
        (0, 1, 4, bytes([2, 3, 0, 0])),
        _ascii_entry(1, "S" if lat < 0 else "N"),
        _rat_entry(2, dms(lat)),
        _ascii_entry(3, "W" if lon < 0 else "E"),
        _rat_entry(4, dms(lon)),
        (5, 1, 1, bytes([1 if alt < 0 else 0])),
        _rat_entry(6, [abs(alt)]),
    ]


def _link_sub_ifds(
    path: Path, subs: dict[int, list[tuple[int, int, int, bytes]]], *, photometric: int | None = None
) -> None:
    """Append IFDs (EXIF, GPS) to a little-endian classic TIFF and link them from a rewritten IFD0.

    tifffile refuses to write the ExifIFD/GPSInfo pointer tags itself, so IFD0's entries are copied
    (their out-of-line values stay where they are) into a new IFD0 at the end of the file with the
    pointer entries added in tag order, and the header is pointed at it. ``photometric`` replaces the
    PhotometricInterpretation value (tifffile refuses one-sample LinearRaw, which DNG allows).
    """
    with open(path, "r+b") as f:
        head = f.read(8)
        if head[:4] != b"II*\x00":
            raise InvalidParameter("internal: expected a little-endian classic TIFF from tifffile")
        ifd0 = struct.unpack("<I", head[4:8])[0]
        f.seek(ifd0)
        (n,) = struct.unpack("<H", f.read(2))
        raw_entries = [f.read(12) for _ in range(n)]
        (next_ifd,) = struct.unpack("<I", f.read(4))
        entries = {struct.unpack("<H", e[:2])[0]: e for e in raw_entries}
        if photometric is not None:
            entries[262] = struct.pack("<HHIHH", 262, 3, 1, photometric, 0)
        for tag, sub in subs.items():
            f.seek(0, os.SEEK_END)
            start = f.tell()
            if start % 2:
                f.write(b"\x00")
                start += 1
            f.write(_ifd_bytes(sub, start))
            entries[tag] = struct.pack("<HHII", tag, 4, 1, start)
        f.seek(0, os.SEEK_END)
        start = f.tell()
        if start % 2:
            f.write(b"\x00")
            start += 1
        f.write(struct.pack("<H", len(entries)) + b"".join(entries[t] for t in sorted(entries)))
        f.write(struct.pack("<I", next_ifd))
        f.seek(4)
        f.write(struct.pack("<I", start))


# ------------------------------------------------------------------------------------ write_dng


def _mosaic_uint16(frame: RawFrame) -> np.ndarray:
    x = frame.data.detach().to("cpu")
    if x.is_floating_point():
        xf = x.to(torch.float64)
        if not bool(torch.isfinite(xf).all()) or not bool((xf == torch.round(xf)).all()):
            raise InvalidParameter("write_dng needs integral sensor values (uint16); got non-integral floats")
    lo, hi = (float(x.min()), float(x.max())) if x.numel() else (0.0, 0.0)
    if lo < 0 or hi > 65535:
        raise InvalidParameter(f"write_dng needs values in 0..65535 (uint16); got range [{lo}, {hi}]")
    return x.numpy().astype(np.uint16)


def write_dng(frame: RawFrame, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write ``frame`` as a DNG 1.4 file at ``path``; returns the path. See the module docstring."""
    if not isinstance(frame, RawFrame):
        raise ShapeError(f"write_dng needs a RawFrame; got {type(frame).__name__}")
    m = frame.meta
    arr = _mosaic_uint16(frame)
    tags: list[tuple[int, int | str, int, Any, bool]] = []

    def add(code: int, dtype: int | str, value: Any) -> None:
        if isinstance(value, str):
            tags.append((code, 2, 0, _ascii(value), True))
            return
        value = tuple(value) if isinstance(value, (tuple, list)) else (value,)
        count = len(value) // 2 if dtype in (5, 10) else len(value)
        tags.append((code, dtype, count, value, True))

    linear = m.cfa == ""
    if linear:
        n_sites = arr.shape[0]  # 3, or 1 for a monochrome sensor (LinearRaw with one sample)
        arr = np.ascontiguousarray(arr.transpose(1, 2, 0)) if n_sites == 3 else np.ascontiguousarray(arr[0])
        photometric = 34892
    else:
        photometric = 32803
        n = 2 if len(m.cfa) == 4 else 4
        add(33421, 3, (n, n))  # CFARepeatPatternDim
        tags.append((33422, 1, n * n, bytes(_CFA_CODE[c] for c in m.cfa), True))  # CFAPattern
        add(50710, 1, (0, 1, 2))  # CFAPlaneColor
        add(50711, 3, 1)  # CFALayout: rectangular
        n_sites = n * n
    add(50706, 1, (1, 4, 0, 0))  # DNGVersion
    add(50707, 1, (1, 3, 0, 0))  # DNGBackwardVersion (1.3: opcode lists)
    add(50708, "s", m.unique_camera_model or m.model or "obscura")
    if m.make:
        add(271, "s", m.make)
    if m.model:
        add(272, "s", m.model)
    add(274, 3, int(m.orientation))
    if m.linearization_table is not None:
        add(50712, 3, tuple(int(v) for v in m.linearization_table))
    # black level per CFA site (BlackLevelRepeatDim = tile) or per plane for LinearRaw
    bl = tuple(float(v) for v in m.black_level)
    if len(bl) == 1:
        bl = bl * n_sites
    if len(bl) != n_sites:
        raise InvalidParameter(f"black_level needs 1 or {n_sites} values for CFA {m.cfa!r}; got {len(bl)}")
    if linear:
        add(50713, 3, (1, 1))
    else:
        add(50713, 3, (n, n))
    add(50714, 5, _rationals(bl, signed=False))
    white = float(m.white_level)
    if white != round(white) or not 0 < white <= 65535:
        raise InvalidParameter(f"white_level must be an integer in 1..65535 for a uint16 DNG; got {m.white_level}")
    add(50717, 4, (int(white),) * (n_sites if linear else 1))
    if m.default_crop is not None:
        x, y, w, h = (int(v) for v in m.default_crop)
        add(50719, 4, (x, y))
        add(50720, 4, (w, h))
    for code, v in (
        (50721, m.color_matrix1),
        (50722, m.color_matrix2),
        (50723, m.camera_calibration1),
        (50724, m.camera_calibration2),
        (50964, m.forward_matrix1),
        (50965, m.forward_matrix2),
    ):
        if v is not None:
            if len(v) != 9:
                raise InvalidParameter(f"DNG tag {code} needs a 3x3 matrix (9 values); got {len(v)}")
            add(code, 10, _rationals(v, signed=True))
    if m.analog_balance is not None:
        add(50727, 5, _rationals(m.analog_balance, signed=False))
    if m.as_shot_neutral is not None:
        add(50728, 5, _rationals(m.as_shot_neutral, signed=False))
    elif m.as_shot_white_xy is not None:
        add(50729, 5, _rationals(m.as_shot_white_xy, signed=False))
    add(50730, 10, _rationals([m.baseline_exposure], signed=True))
    add(50778, 3, int(m.calibration_illuminant1))
    if m.calibration_illuminant2 is not None:
        add(50779, 3, int(m.calibration_illuminant2))
    if m.noise_profile is not None:
        add(51041, 12, tuple(float(v) for pair in m.noise_profile for v in pair))
    if m.serial:
        add(50735, "s", m.serial)
    op1 = tuple(m.opcode_list1)
    if m.bad_pixels:
        op1 += (make_opcode("FixBadPixelsList", bayer_phase=0, bad_points=tuple(m.bad_pixels), bad_rects=()),)
    for code, ops in ((51008, op1), (51009, m.opcode_list2), (51022, m.opcode_list3)):
        if ops:
            data = serialize_opcode_list(ops)
            tags.append((code, 7, len(data), data, True))
    exif = _exif_entries(m)
    subs: dict[int, list[tuple[int, int, int, bytes]]] = {34665: exif}  # ExifIFD, linked after writing
    if m.gps is not None:
        subs[34853] = _gps_entries(m.gps)  # GPSInfo IFD
    # tifffile writes tags in code order as given in extratags; 's' strings need dtype 2
    extratags = [(c, 2 if d == "s" else d, cnt, v, wo) for c, d, cnt, v, wo in tags]

    with atomic_output(path, overwrite=overwrite) as tmp:
        tifffile.imwrite(
            tmp,
            arr,
            bigtiff=False,
            byteorder="<",
            photometric=photometric if not (linear and n_sites == 1) else "minisblack",
            planarconfig="contig" if linear and n_sites == 3 else None,
            subfiletype=0,
            software=_ascii(m.software) if m.software else None,
            datetime=None,
            metadata=None,
            extratags=extratags,
        )
        _link_sub_ifds(tmp, subs, photometric=photometric if linear and n_sites == 1 else None)
    return Path(path)
