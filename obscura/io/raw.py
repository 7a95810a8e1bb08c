"""Reading camera raw files into :class:`~obscura.core.types.RawFrame` and :class:`~obscura.core.types.Burst`.

Decoding is LibRaw's job (through rawpy): every format LibRaw reads is read here. LibRaw does not
expose every DNG tag, so for DNG files the tags are read with tifffile as well (colour matrices,
forward matrices, calibration, noise profile, opcode lists, crop, EXIF ...); for other TIFF-based raws
(CR2, NEF, ARW, ...) the EXIF is read with tifffile when it can be.

Contract for the returned mosaic:

* ``data`` is float32 (H, W) in sensor units, LibRaw's visible area (DNG: the ActiveArea), cropped at
  the bottom/right to whole CFA tiles; ``meta.cfa`` is the top-left tile of that area.
* ``meta.black_level`` holds one value per CFA site in reading order (LinearRaw: per colour plane).
* DNG with a LinearizationTable: ``data`` holds the **stored codes** (decoded with tifffile and
  imagecodecs) and ``meta.linearization_table`` the table, so the ``linearize`` stage maps them; black
  and white levels are the DNG tags, which are in linearized units (DNG 1.4 §5 "Mapping Raw Values
  to Linear Reference Values"). When tifffile cannot decode the tiles, LibRaw's linearized values are
  returned and ``linearization_table`` is None (the table is then already applied).
* LinearRaw DNG (PhotometricInterpretation 34892): ``meta.cfa == ""`` and ``data`` is (3, H, W), the
  stored values from tifffile with the DNG black/white levels.
* ``default_crop`` is (x, y, width, height) in the returned mosaic's coordinates.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import logging
import os
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import rawpy
import tifffile
import torch

from obscura.core.errors import CorruptFile, InputError, ShapeError, UnsupportedFormat
from obscura.core.types import Burst, RawFrame, RawMeta, validate_cfa
from obscura.io.headerless import read_headerless
from obscura.io.opcodes import parse_opcode_list

__all__ = ["read_raw", "read_burst", "read_headerless", "RAW_EXTENSIONS", "FLIP_TO_ORIENTATION"]

# Extensions read_burst collects from a folder (formats LibRaw reads). ".raw" is left out on purpose:
# in this project it mostly names headerless mosaics, which need read_headerless and their layout.
RAW_EXTENSIONS = frozenset(
    {
        "dng",
        "cr2",
        "cr3",
        "crw",
        "nef",
        "nrw",
        "arw",
        "srf",
        "sr2",
        "raf",
        "orf",
        "rw2",
        "rwl",
        "pef",
        "srw",
        "x3f",
        "iiq",
        "3fr",
        "fff",
        "mrw",
        "mos",
        "kdc",
        "dcr",
        "erf",
        "mef",
    }
)

# LibRaw's ``flip`` (dcraw convention: bit 0 mirror horizontally, bit 1 vertically, bit 2 transpose)
# to EXIF/TIFF Orientation; the inverse of dcraw's ``"50132467"[orientation & 7]``.
FLIP_TO_ORIENTATION = {0: 1, 1: 2, 2: 4, 3: 3, 4: 5, 5: 8, 6: 6, 7: 7}

# Below this fraction of nonzero samples a decoded raw holds no image (LibRaw "decodes" stripped or
# truncated files to zeros without an error; see shared/data/raw/bad/README).
_MIN_NONZERO_FRACTION = 0.01

# A raw-named TIFF whose IFDs declare less image data than this is a stripped stub, not a new camera.
_MIN_RAW_BYTES = 64 * 1024

_PHOTOMETRIC_CFA = 32803
_PHOTOMETRIC_LINEAR_RAW = 34892

_NON_RAW_SIGNATURES = (
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"GIF8", "a GIF image"),
    (b"BM", "a BMP image"),
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive"),
)


# ---------------------------------------------------------------------------------------------- helpers


@contextlib.contextmanager
def _quiet_tifffile() -> Iterator[None]:
    """tifffile reports damaged tags through logging and warnings; we raise our own errors instead."""
    logger = logging.getLogger("tifffile")
    old = logger.disabled
    logger.disabled = True
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.disabled = old


def _check_input(path: str | os.PathLike) -> Path:
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such file")
    if p.is_dir():
        raise InputError(f"{p}: is a folder, not a raw file")
    if not os.access(p, os.R_OK):
        raise InputError(f"{p}: not readable (permission denied)")
    return p


def _sniff(p: Path) -> bytes:
    try:
        with open(p, "rb") as f:
            return f.read(512)
    except OSError as e:
        raise InputError(f"{p}: cannot be read: {e.strerror or e}") from None


def _is_tiff(head: bytes) -> bool:
    return head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")


def _looks_like_text(head: bytes) -> bool:
    if not head:
        return False
    printable = sum(32 <= b < 127 or b in (9, 10, 13) for b in head)
    return printable / len(head) > 0.95


def _what_is(head: bytes) -> str | None:
    """A short name of a known non-raw format, or None."""
    for sig, what in _NON_RAW_SIGNATURES:
        if head.startswith(sig):
            return what
    if _looks_like_text(head):
        return "a text file"
    return None


def _iter_ifds(tf: tifffile.TiffFile) -> Iterator[Any]:
    """Every IFD of a TIFF file: the pages and their SubIFDs (depth first)."""
    stack = list(tf.pages)
    while stack:
        page = stack.pop(0)
        yield page
        stack[:0] = list(getattr(page, "pages", None) or [])


def _data_past_end(tf: tifffile.TiffFile, size: int) -> str | None:
    """A reason when an IFD's image data extend past the end of the file (a truncated file)."""
    for page in _iter_ifds(tf):
        for off, cnt in zip(page.dataoffsets, page.databytecounts):
            if cnt and off + cnt > size:
                return f"image data at bytes {off}..{off + cnt} lie past the end of the {size}-byte file"
        samples = int(np.prod(page.shape)) if page.shape else 0
        stored = int(sum(page.databytecounts))
        if samples >= 100_000 and stored * 256 < samples:  # no codec packs a sensor that tightly: a stub
            return f"holds no image data: {stored} bytes stored for a {'x'.join(map(str, page.shape))} image (stripped)"
    return None


def _tiff_truncated(p: Path) -> str | None:
    """A reason when a TIFF-based file's image data extend past its end (or its IFDs cannot be read)."""
    size = p.stat().st_size
    try:
        with _quiet_tifffile(), tifffile.TiffFile(p) as tf:
            reason = _data_past_end(tf, size)
            if reason:
                return reason
            total = sum(sum(page.databytecounts) for page in _iter_ifds(tf))
    except Exception as e:
        return f"its TIFF structure cannot be read ({e})"
    if p.suffix.lower().lstrip(".") in RAW_EXTENSIONS and total < _MIN_RAW_BYTES:
        return f"its image directories hold only {total} bytes of image data (stripped)"
    return None


def _rawpy_open(p: Path, head: bytes) -> rawpy.RawPy:
    """rawpy.imread with LibRaw errors turned into obscura errors (message starts with the path)."""
    try:
        return rawpy.imread(str(p))
    except rawpy.LibRawFileUnsupportedError as e:
        if _is_tiff(head):
            reason = _tiff_truncated(p)
            if reason:
                raise CorruptFile(f"{p}: truncated or corrupt raw file: {reason} (LibRaw: {_msg(e)})") from None
        raise UnsupportedFormat(f"{p}: not a raw format LibRaw can read (LibRaw: {_msg(e)})") from None
    except (rawpy.LibRawIOError, rawpy.LibRawDataError, rawpy.LibRawTooBigError) as e:
        raise CorruptFile(f"{p}: truncated or corrupt raw file (LibRaw: {_msg(e)})") from None
    except rawpy.LibRawError as e:
        raise CorruptFile(f"{p}: cannot be decoded (LibRaw {type(e).__name__}: {_msg(e)})") from None


def _msg(e: BaseException) -> str:
    a = e.args[0] if e.args else str(e)
    return a.decode(errors="replace") if isinstance(a, bytes) else str(a)


def _check_not_empty(p: Path, arr: np.ndarray) -> None:
    n = arr.size
    nonzero = int(np.count_nonzero(arr))
    if n == 0 or nonzero < _MIN_NONZERO_FRACTION * n:
        frac = 0.0 if n == 0 else nonzero / n
        raise CorruptFile(
            f"{p}: holds no image data: the raw decodes to {'all zeros' if nonzero == 0 else 'almost all zeros'} "
            f"({frac:.2e} of {n} samples nonzero); the file is stripped or truncated"
        )


def _cfa_from_rawpy(p: Path, raw: rawpy.RawPy) -> tuple[str, np.ndarray]:
    """CFA string of the visible area's top-left tile and the colour index of each tile site."""
    desc = raw.color_desc.decode(errors="replace")
    colors = raw.raw_colors_visible
    if colors.shape[0] < 4 or colors.shape[1] < 4:
        raise CorruptFile(f"{p}: visible area {colors.shape} is too small")
    tile4 = np.asarray(colors[:4, :4])
    if raw.raw_pattern is None or raw.raw_pattern.shape[0] > 4 or raw.raw_pattern.shape[1] > 4:
        shape = None if raw.raw_pattern is None else raw.raw_pattern.shape
        raise UnsupportedFormat(f"{p}: CFA layout {shape} (e.g. X-Trans) is not supported; obscura reads Bayer")
    n = 2 if np.array_equal(tile4, np.tile(tile4[:2, :2], (2, 2))) else 4
    tile = tile4[:n, :n]
    letters = "".join(desc[int(c)] if int(c) < len(desc) else "?" for c in tile.ravel())
    if set(letters) - set("RGB"):
        raise UnsupportedFormat(f"{p}: CFA colours {desc!r} (pattern {letters}) are not RGB; not supported")
    try:
        validate_cfa(letters)
    except ShapeError as e:
        raise UnsupportedFormat(f"{p}: {e}") from None
    return letters, tile.ravel()


def _dng_cfa(raw_ifd: Any, top: int, left: int) -> str | None:
    """The CFA of a DNG raw IFD from CFARepeatPatternDim/CFAPattern, shifted to the ActiveArea origin."""
    tags = raw_ifd.tags
    if "CFARepeatPatternDim" not in tags or "CFAPattern" not in tags:
        return None
    rows, cols = (int(v) for v in tags["CFARepeatPatternDim"].value)
    codes = bytes(tags["CFAPattern"].value)
    if rows != cols or rows not in (2, 4) or len(codes) != rows * cols or any(c > 2 for c in codes):
        return None
    grid = np.frombuffer(codes, dtype=np.uint8).reshape(rows, cols)
    grid = np.roll(grid, (-top, -left), axis=(0, 1))
    cfa = "".join("RGB"[c] for c in grid.ravel())
    try:
        return validate_cfa(cfa)
    except ShapeError:
        return None


def _num(v: Any) -> float:
    return float(v[0]) / float(v[1]) if isinstance(v, tuple) and len(v) == 2 else float(v)


def _rationals(tag: Any) -> tuple[float, ...]:
    """Tag value as floats: RATIONAL/SRATIONAL come flattened as (num, den, ...) from tifffile."""
    v = tag.value
    if isinstance(v, (bytes, str)):
        raise TypeError("not numeric")
    seq = np.atleast_1d(np.asarray(v, dtype=np.float64)).ravel()
    if tag.dtype in (5, 10):  # RATIONAL, SRATIONAL
        num, den = seq[0::2], seq[1::2]
        with np.errstate(divide="ignore", invalid="ignore"):
            out = np.where(den != 0, num / np.where(den == 0, 1, den), 0.0)
        return tuple(float(x) for x in out)
    return tuple(float(x) for x in seq)


def _exif_ratio(v: Any) -> float | None:
    """EXIF value (a rational tuple or a number) as a positive float, None when absent or zero."""
    try:
        if isinstance(v, tuple):
            if len(v) == 2:
                if not v[1]:
                    return None
                x = float(v[0]) / float(v[1])
            elif len(v) == 1:
                x = float(v[0])
            else:
                return None
        else:
            x = float(v)
    except (TypeError, ValueError):
        return None
    return x if x > 0 and np.isfinite(x) else None


def _text(v: Any) -> str:
    if isinstance(v, bytes):
        v = v.split(b"\x00", 1)[0].decode(errors="replace")
    return str(v).strip("\x00 ").strip() if v is not None else ""


def _dms(v: Any) -> float | None:
    try:
        vals = [float(x) for x in np.asarray(v, dtype=np.float64).ravel()]
    except (TypeError, ValueError):
        return None
    if len(vals) == 6:
        parts = [vals[i] / vals[i + 1] if vals[i + 1] else 0.0 for i in (0, 2, 4)]
    elif len(vals) == 3:
        parts = vals
    else:
        return None
    return parts[0] + parts[1] / 60.0 + parts[2] / 3600.0


def _gps(gps: dict[str, Any]) -> tuple[float, float, float] | None:
    lat, lon = _dms(gps.get("GPSLatitude")), _dms(gps.get("GPSLongitude"))
    if lat is None or lon is None:
        return None
    if _text(gps.get("GPSLatitudeRef", "N")).upper().startswith("S"):
        lat = -lat
    if _text(gps.get("GPSLongitudeRef", "E")).upper().startswith("W"):
        lon = -lon
    alt = 0.0
    a = gps.get("GPSAltitude")
    if a is not None:
        alt = float(a[0]) / float(a[1]) if isinstance(a, tuple) and len(a) == 2 and a[1] else 0.0
        ref = gps.get("GPSAltitudeRef", 0)
        ref = ref[0] if isinstance(ref, (bytes, tuple)) and len(ref) else ref
        if int(ref or 0) == 1:
            alt = -alt
    return (lat, lon, alt)


def _exif_fields(ifd0_tags: Any) -> dict[str, Any]:
    """RawMeta fields from IFD0's TIFF tags and its EXIF / GPS sub-directories (as tifffile decodes them)."""
    out: dict[str, Any] = {}
    for tag, key in (("Make", "make"), ("Model", "model"), ("Software", "software")):
        if tag in ifd0_tags:
            out[key] = _text(ifd0_tags[tag].value)
    exif = ifd0_tags["ExifTag"].value if "ExifTag" in ifd0_tags else {}
    if isinstance(exif, dict) and exif:
        out["_has_exif"] = True
        out["exposure_time"] = _exif_ratio(exif.get("ExposureTime"))
        out["f_number"] = _exif_ratio(exif.get("FNumber"))
        out["focal_length"] = _exif_ratio(exif.get("FocalLength"))
        out["focal_length_35mm"] = _exif_ratio(exif.get("FocalLengthIn35mmFilm"))
        iso = exif.get("ISOSpeedRatings", exif.get("PhotographicSensitivity"))
        if isinstance(iso, tuple):
            iso = iso[0] if iso else None
        out["iso"] = _exif_ratio(iso)
        dto = _text(exif.get("DateTimeOriginal", ""))
        out["datetime"] = dto or None
        if exif.get("LensModel"):
            out["lens"] = _text(exif["LensModel"])
        if exif.get("BodySerialNumber"):
            out["serial"] = _text(exif["BodySerialNumber"])
    for tag, key in (("ExposureTime", "exposure_time"), ("FNumber", "f_number"), ("FocalLength", "focal_length")):
        if key not in out and tag in ifd0_tags:  # TIFF/EP puts these in IFD0
            out[key] = _exif_ratio(ifd0_tags[tag].value)
    gps = ifd0_tags["GPSTag"].value if "GPSTag" in ifd0_tags else None
    if isinstance(gps, dict):
        out["gps"] = _gps(gps)
    return {k: v for k, v in out.items() if v not in (None, "")}


# ---------------------------------------------------------------------------------------------- DNG tags


def _find_raw_ifd(tf: tifffile.TiffFile) -> Any | None:
    """The full-resolution raw IFD of a DNG: NewSubfileType 0 with CFA or LinearRaw photometric."""
    best = None
    for page in _iter_ifds(tf):
        tags = page.tags
        sub = int(tags["NewSubfileType"].value) if "NewSubfileType" in tags else 0
        photometric = int(tags["PhotometricInterpretation"].value) if "PhotometricInterpretation" in tags else -1
        is_raw = sub == 0 and photometric in (_PHOTOMETRIC_CFA, _PHOTOMETRIC_LINEAR_RAW)
        if is_raw and (best is None or page.shape[0] * page.shape[1] > best.shape[0] * best.shape[1]):
            best = page
    return best


class _DngTags:
    """Look-up of a tag in the raw IFD first, then IFD0 (DNG puts some tags in either)."""

    def __init__(self, raw_ifd: Any, ifd0: Any) -> None:
        self.dirs = [d for d in (raw_ifd, ifd0) if d is not None]

    def get(self, name: str) -> Any | None:
        for d in self.dirs:
            if name in d.tags:
                return d.tags[name]
        return None

    def floats(self, name: str, n: int | None = None) -> tuple[float, ...] | None:
        tag = self.get(name)
        if tag is None:
            return None
        try:
            vals = _rationals(tag)
        except (TypeError, ValueError):
            return None
        if n is not None and len(vals) != n:
            return None
        return vals

    def integer(self, name: str) -> int | None:
        v = self.floats(name)
        return round(v[0]) if v else None


def _dng_meta(tags: _DngTags, *, period: int, n_planes: int) -> dict[str, Any]:
    """RawMeta fields from DNG tags (everything LibRaw does not expose)."""
    out: dict[str, Any] = {}
    for name, key in (
        ("ColorMatrix1", "color_matrix1"),
        ("ColorMatrix2", "color_matrix2"),
        ("ForwardMatrix1", "forward_matrix1"),
        ("ForwardMatrix2", "forward_matrix2"),
        ("CameraCalibration1", "camera_calibration1"),
        ("CameraCalibration2", "camera_calibration2"),
    ):
        v = tags.floats(name, 9)
        if v is not None:
            out[key] = v
    for name, key, n in (("AnalogBalance", "analog_balance", 3), ("AsShotNeutral", "as_shot_neutral", 3)):
        v = tags.floats(name, n)
        if v is not None:
            out[key] = v
    xy = tags.floats("AsShotWhiteXY", 2)
    if xy is not None:
        out["as_shot_white_xy"] = xy
    for name, key in (
        ("CalibrationIlluminant1", "calibration_illuminant1"),
        ("CalibrationIlluminant2", "calibration_illuminant2"),
    ):
        v = tags.integer(name)
        if v is not None:
            out[key] = v
    be = tags.floats("BaselineExposure", 1)
    if be is not None:
        out["baseline_exposure"] = be[0]
    npf = tags.floats("NoiseProfile")
    if npf and len(npf) % 2 == 0:
        out["noise_profile"] = tuple((npf[i], npf[i + 1]) for i in range(0, len(npf), 2))
    lin = tags.get("LinearizationTable")
    if lin is not None:
        out["linearization_table"] = tuple(int(x) for x in np.atleast_1d(np.asarray(lin.value)).ravel())
    # black level: BlackLevelRepeatDim (rows, cols) × samples, expanded to each CFA site / plane.
    bl = tags.floats("BlackLevel")
    if bl:
        dim = tags.floats("BlackLevelRepeatDim", 2) or (1.0, 1.0)
        rows, cols = int(dim[0]), int(dim[1])
        if n_planes > 1:  # LinearRaw: one value per plane (first repeat cell)
            arr = np.asarray(bl, dtype=np.float64)
            if arr.size == rows * cols * n_planes:
                out["black_level"] = tuple(float(x) for x in arr.reshape(rows, cols, n_planes)[0, 0])
            elif arr.size == 1:
                out["black_level"] = (float(arr[0]),) * n_planes
        elif len(bl) == rows * cols and period % max(rows, 1) == 0 and period % max(cols, 1) == 0:
            grid = np.asarray(bl, dtype=np.float64).reshape(rows, cols)
            full = np.tile(grid, (period // rows, period // cols))
            out["black_level"] = tuple(float(x) for x in full.ravel())
        else:  # a repeat pattern that does not fit the CFA tile: its mean
            out["black_level"] = (float(np.mean(bl)),) * (period * period)
    wl = tags.floats("WhiteLevel")
    if wl:
        out["white_level"] = float(max(wl))
    ucm = tags.get("UniqueCameraModel")
    if ucm is not None:
        out["unique_camera_model"] = _text(ucm.value)
    ser = tags.get("CameraSerialNumber")
    if ser is not None:
        out["serial"] = _text(ser.value)
    ori = tags.integer("Orientation")
    if ori is not None and 1 <= ori <= 8:
        out["orientation"] = ori
    for i in (1, 2, 3):
        t = tags.get(f"OpcodeList{i}")
        if t is not None:
            out[f"opcode_list{i}"] = parse_opcode_list(bytes(t.value))
    origin = tags.floats("DefaultCropOrigin", 2)
    size = tags.floats("DefaultCropSize", 2)
    if origin is not None and size is not None:
        out["default_crop"] = tuple(round(v) for v in (*origin, *size))
    return out


def _clip_crop(crop: tuple[int, int, int, int], h: int, w: int) -> tuple[int, int, int, int] | None:
    x, y, cw, ch = crop
    x, y = max(0, min(x, w)), max(0, min(y, h))
    cw, ch = min(cw, w - x), min(ch, h - y)
    return (x, y, cw, ch) if cw > 0 and ch > 0 else None


def _decode_dng_ifd(p: Path, raw_ifd: Any, top: int, left: int, h: int, w: int) -> np.ndarray | None:
    """The stored values of a DNG raw IFD (tifffile + imagecodecs), cropped; None when they cannot be decoded."""
    try:
        with _quiet_tifffile():
            arr = raw_ifd.asarray()
    except Exception:
        return None
    return np.asarray(arr[top : top + h, left : left + w])


# ---------------------------------------------------------------------------------------------- read_raw


def read_raw(path: str | os.PathLike) -> RawFrame:
    """Read a camera raw file (DNG and every format LibRaw reads) into a RawFrame (see module docstring).

    Decoding: LibRaw (Coffin's dcraw lineage) via rawpy; DNG tags per the DNG 1.4 specification (Adobe, 2012)
    via tifffile. Raises InputError (missing/folder), UnsupportedFormat, CorruptFile (truncated, damaged or
    no image data); every message starts with the path.
    """
    p = _check_input(path)
    head = _sniff(p)
    if not head:
        raise CorruptFile(f"{p}: empty file (0 bytes)")
    what = _what_is(head)
    if what is not None:
        raise UnsupportedFormat(f"{p}: is {what}, not a camera raw file")
    ext = p.suffix.lower().lstrip(".")
    if ext == "dng" and not _is_tiff(head):
        raise UnsupportedFormat(f"{p}: not a DNG file (no TIFF header)")

    # TIFF side: DNG tags, EXIF (best effort for non-DNG TIFF-based raws).
    tiff_meta: dict[str, Any] = {}
    raw_ifd = None
    is_dng = False
    tf = None
    truncated: str | None = None
    if _is_tiff(head):
        try:
            with _quiet_tifffile():
                tf = tifffile.TiffFile(p)
                ifd0 = tf.pages.first if hasattr(tf.pages, "first") else tf.pages[0]
                is_dng = "DNGVersion" in ifd0.tags
                tiff_meta.update(_exif_fields(ifd0.tags))
                if is_dng:
                    raw_ifd = _find_raw_ifd(tf)
                truncated = _data_past_end(tf, p.stat().st_size)
        except Exception:
            if tf is not None:
                tf.close()
            tf = None
            if ext == "dng":
                raise CorruptFile(f"{p}: truncated or corrupt DNG (its TIFF structure cannot be read)") from None
        if truncated and tf is not None:
            tf.close()
            # LibRaw may "decode" such files from whatever memory it has: never trust its output here.
            raise CorruptFile(f"{p}: truncated or corrupt raw file: {truncated}")
    try:
        return _read_with_rawpy(p, head, ext, is_dng, tf, raw_ifd, tiff_meta)
    finally:
        if tf is not None:
            tf.close()


def _read_with_rawpy(
    p: Path, head: bytes, ext: str, is_dng: bool, tf: Any, raw_ifd: Any, tiff_meta: dict[str, Any]
) -> RawFrame:
    with _rawpy_open(p, head) as raw:
        try:
            sizes = raw.sizes
            linear_raw = raw.raw_type == rawpy.RawType.Stack
            mono = not linear_raw and int(raw.num_colors) == 1  # no CFA (e.g. Leica Monochrom)
            meta: dict[str, Any] = {"source_format": "dng" if is_dng else ext}
            top, left = int(sizes.top_margin), int(sizes.left_margin)
            if mono:
                vis = raw.raw_image_visible
                h, w = vis.shape[:2]
                cfa, sites, period = "", np.array([0]), 1
            elif linear_raw:
                vis = raw.raw_image_visible
                if vis.ndim != 3 or vis.shape[2] < 3:
                    raise UnsupportedFormat(f"{p}: raw of shape {vis.shape} is neither a CFA mosaic nor RGB")
                h, w = vis.shape[:2]
                cfa, sites, period = "", np.array([0, 1, 2]), 1
            else:
                vis = raw.raw_image_visible
                tag_cfa = _dng_cfa(raw_ifd, top, left) if is_dng and raw_ifd is not None else None
                if tag_cfa is not None and len(tag_cfa) == 16:
                    # LibRaw does not model 4x4 (Quad Bayer) DNG patterns: take the DNG CFAPattern
                    cfa, sites = tag_cfa, np.array(["RGB".index(c) for c in tag_cfa])
                else:
                    cfa, sites = _cfa_from_rawpy(p, raw)
                period = 2 if len(cfa) == 4 else 4
                h, w = (vis.shape[0] // period) * period, (vis.shape[1] // period) * period
            meta["cfa"] = cfa
            blacks = raw.black_level_per_channel
            meta["black_level"] = tuple(float(blacks[int(c)]) for c in sites)
            meta["white_level"] = float(raw.white_level)
            meta.update(_rawpy_colour(raw))
            meta["orientation"] = FLIP_TO_ORIENTATION.get(int(sizes.flip), 1)
            if sizes.crop_width > 0 and sizes.crop_height > 0:
                crop = (
                    int(sizes.crop_left_margin) - left,
                    int(sizes.crop_top_margin) - top,
                    int(sizes.crop_width),
                    int(sizes.crop_height),
                )
                meta["default_crop"] = crop
            if not tiff_meta.pop("_has_exif", False):  # EXIF from the file wins, even when it says "unknown"
                meta.update(_rawpy_capture(raw))
            meta.update(tiff_meta)

            data: np.ndarray | None = None
            if is_dng and raw_ifd is not None:
                n_planes = 3 if linear_raw else 1
                dng = _dng_meta(_DngTags(raw_ifd, tf.pages[0]), period=max(period, 1), n_planes=n_planes)
                stored = None
                if (linear_raw or mono) or "linearization_table" in dng:
                    stored = _decode_dng_ifd(p, raw_ifd, top, left, h, w)
                    if stored is not None and stored.shape[:2] != (h, w):
                        stored = None
                if stored is None:
                    # LibRaw's values: any linearization is already applied, and for LinearRaw its scale
                    # differs from the DNG tags, so LibRaw's own levels are kept.
                    dng.pop("linearization_table", None)
                    if linear_raw:
                        dng.pop("black_level", None)
                        dng.pop("white_level", None)
                elif mono:
                    data = stored[None] if stored.ndim == 2 else stored[..., :1].transpose(2, 0, 1)
                else:
                    data = stored[..., :3].transpose(2, 0, 1) if linear_raw else stored
                meta.update(dng)
                if "as_shot_white_xy" in dng and "as_shot_neutral" not in dng:
                    meta.pop("as_shot_neutral", None)  # keep the file's own white, not LibRaw's derivation
            if data is None:
                data = vis[None, :h, :w] if mono else vis[..., :3].transpose(2, 0, 1) if linear_raw else vis[:h, :w]
            if linear_raw or mono:
                data = data[:, :h, :w]
            _check_not_empty(p, data)
            if "default_crop" in meta:
                meta["default_crop"] = _clip_crop(meta["default_crop"], h, w)
            tensor = torch.from_numpy(np.ascontiguousarray(data, dtype=np.float32))
        except rawpy.LibRawError as e:
            raise CorruptFile(f"{p}: truncated or corrupt raw file (LibRaw: {_msg(e)})") from None
    if len(meta["black_level"]) not in (1, 3, 4, 16):
        meta["black_level"] = (float(np.mean(meta["black_level"])),)
    return RawFrame(tensor, RawMeta(**meta))


def _rawpy_colour(raw: rawpy.RawPy) -> dict[str, Any]:
    """As-shot neutral (from LibRaw's camera white balance) and the XYZ→camera matrix (D65) LibRaw knows."""
    out: dict[str, Any] = {}
    desc = raw.color_desc.decode(errors="replace")
    wb = [float(x) for x in raw.camera_whitebalance]
    try:
        r, g, b = (wb[desc.index(c)] for c in "RGB")
    except (ValueError, IndexError):
        r = g = b = 0.0
    # LibRaw gives multipliers; cam_mul[0] == -1 (or any value <= 0) means the camera recorded none.
    if r > 0 and g > 0 and b > 0:
        out["as_shot_neutral"] = (g / r, 1.0, g / b)
    m = np.asarray(raw.rgb_xyz_matrix, dtype=np.float64)[:3]
    if m.shape == (3, 3) and np.any(m != 0):
        out["color_matrix1"] = tuple(round(float(x), 6) for x in m.ravel())
        out["calibration_illuminant1"] = 21
    return out


def _rawpy_capture(raw: rawpy.RawPy) -> dict[str, Any]:
    """Exposure fields LibRaw parsed (used where the file has no TIFF EXIF, e.g. CRW)."""
    out: dict[str, Any] = {}
    o = getattr(raw, "other", None)
    if o is None:
        return out
    for key, attr in (
        ("iso", "iso_speed"),
        ("exposure_time", "shutter_speed"),
        ("f_number", "aperture"),
        ("focal_length", "focal_length"),
    ):
        v = float(getattr(o, attr, 0.0) or 0.0)
        if v > 0 and np.isfinite(v):
            out[key] = v
    ts = getattr(o, "timestamp", None)
    if isinstance(ts, _dt.datetime) and ts.year > 1970:
        out["datetime"] = ts.strftime("%Y:%m:%d %H:%M:%S")
    return out


# ---------------------------------------------------------------------------------------------- bursts


def read_burst(paths_or_folder: str | os.PathLike | Sequence[str | os.PathLike]) -> Burst:
    """Read a burst: a folder (its raw files, sorted by name) or a list of files; all one shape and CFA."""
    if isinstance(paths_or_folder, (str, os.PathLike)):
        folder = Path(paths_or_folder)
        if not folder.exists():
            raise InputError(f"{folder}: no such file or folder")
        if folder.is_dir():
            paths = sorted(
                f
                for f in folder.iterdir()
                if f.is_file() and not f.name.startswith(".") and f.suffix.lower().lstrip(".") in RAW_EXTENSIONS
            )
            if not paths:
                raise InputError(f"{folder}: holds no raw files ({', '.join(sorted(RAW_EXTENSIONS))})")
        else:
            paths = [folder]
    else:
        paths = [Path(x) for x in paths_or_folder]
        if not paths:
            raise InputError("read_burst needs at least one file; got an empty list")
    frames = []
    for f in paths:
        fr = read_raw(f)
        if frames:
            first, fp = frames[0], paths[0]
            if fr.meta.cfa != first.meta.cfa:
                raise ShapeError(f"{f}: CFA {fr.meta.cfa!r} differs from {fp} ({first.meta.cfa!r}) in the burst")
            if tuple(fr.data.shape) != tuple(first.data.shape):
                raise ShapeError(
                    f"{f}: shape {tuple(fr.data.shape)} differs from {fp} {tuple(first.data.shape)} in the burst"
                )
        frames.append(fr)
    if frames[0].meta.cfa == "":
        raise ShapeError(f"{paths[0]}: LinearRaw (demosaiced) frames cannot form a Burst of mosaics")
    return Burst.from_frames(frames)
