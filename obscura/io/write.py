"""Writing finished images (JPEG, PNG, TIFF, HEIF, AVIF) with EXIF and an ICC profile, and reading them back.

Encoders: Pillow for JPEG and AVIF, pillow-heif for HEIF, tifffile for TIFF, imagecodecs (libpng) for
PNG (Pillow cannot write 16-bit RGB PNG). Every file goes through ``atomic_output``: a temporary file in
the target folder renamed into place, so that a failed write never leaves a partial file nor replaces an
existing one. All options are checked before anything is written.
"""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import torch

from obscura.core.colour import SPACES, convert
from obscura.core.errors import CorruptFile, InputError, InvalidParameter, ShapeError, UnsupportedFormat
from obscura.core.types import Image
from obscura.io.atomic import atomic_output, check_output_path
from obscura.io.exif import exif_from_meta, exif_tags, exif_tiff_block
from obscura.io.icc import ICC_SPACES, icc_profile, icc_space
from obscura.isp.encode import ENCODED_SPACES, encode, quantize

__all__ = ["FORMATS", "BITS", "SUBSAMPLINGS", "write", "read_image", "format_from_path"]

FORMATS: dict[str, tuple[str, ...]] = {
    "jpeg": (".jpg", ".jpeg"),
    "png": (".png",),
    "tiff": (".tif", ".tiff"),
    "heif": (".heic", ".heif"),
    "avif": (".avif",),
}
BITS: dict[str, tuple[int, ...]] = {"jpeg": (8,), "png": (8, 16), "tiff": (8, 16, 32), "heif": (8, 10), "avif": (8,)}
_DEFAULT_BITS = {"jpeg": 8, "png": 8, "tiff": 16, "heif": 8, "avif": 8}
SUBSAMPLINGS = ("4:4:4", "4:2:2", "4:2:0")
_DITHER_SEED = 0  # fixed: the same image always gives the same file


def _valid_formats() -> str:
    return ", ".join(f"{k} ({'/'.join(v)})" for k, v in FORMATS.items())


def format_from_path(path: str | os.PathLike, format: str | None = None) -> str:
    """The format name (``jpeg``, ``png``, ``tiff``, ``heif``, ``avif``) from ``format`` or the suffix."""
    if format is not None:
        f = str(format).lower().lstrip(".")
        f = {"jpg": "jpeg", "tif": "tiff", "heic": "heif"}.get(f, f)
        if f not in FORMATS:
            raise UnsupportedFormat(f"unknown output format {format!r}; valid: {_valid_formats()}")
        return f
    suffix = Path(path).suffix.lower()
    for name, suffixes in FORMATS.items():
        if suffix in suffixes:
            return name
    raise UnsupportedFormat(f"{path}: cannot tell the format from the suffix {suffix!r}; valid: {_valid_formats()}")


def _output_space(image_space: str, space: str | None, *, linear: bool) -> str:
    if image_space == "camera":
        raise InvalidParameter("cannot write an image in camera space: convert it with isp.colour first")
    if linear:  # float TIFF: the linear counterpart of the requested space
        if space is None:
            s = SPACES[image_space].linear
            return s if s in ICC_SPACES else "linear_srgb"
        s = SPACES[space].linear if space in SPACES else space
        if s not in ICC_SPACES or SPACES[s].transfer != "linear":
            valid = ", ".join(x for x in ICC_SPACES)
            raise InvalidParameter(f"space for a float TIFF must be one of {valid}; got {space!r}")
        return s
    if space is None:
        if image_space in ENCODED_SPACES:
            return image_space
        return "display_p3" if SPACES[image_space].linear == "linear_p3" else "srgb"
    if space not in ENCODED_SPACES:
        raise InvalidParameter(f"output space must be one of {', '.join(ENCODED_SPACES)}; got {space!r}")
    return space


def _check_options(fmt: str, quality: Any, subsampling: Any, bits: Any) -> int:
    if isinstance(quality, bool) or not isinstance(quality, int | np.integer) or not 1 <= quality <= 100:
        raise InvalidParameter(f"quality must be an integer in 1..100; got {quality!r}")
    if subsampling not in SUBSAMPLINGS:
        raise InvalidParameter(f"subsampling must be one of {', '.join(SUBSAMPLINGS)}; got {subsampling!r}")
    b = _DEFAULT_BITS[fmt] if bits is None else bits
    if isinstance(b, bool) or b not in BITS[fmt]:
        raise InvalidParameter(f"{fmt} supports bits {', '.join(map(str, BITS[fmt]))}; got {bits!r}")
    return int(b)


# --- encoders: (tmp path, HWC array, icc, exif bytes, options) -> None ------------------------------------


def _save_pillow(tmp: Path, arr: np.ndarray, *, fmt: str, icc: bytes, exif: bytes, quality: int, subsampling: str):
    from PIL import Image as PILImage

    im = PILImage.fromarray(arr)  # (H, W, 3) uint8 → RGB
    im.save(tmp, format=fmt.upper(), quality=quality, subsampling=subsampling, icc_profile=icc, exif=exif)


def _save_jpeg(tmp: Path, arr: np.ndarray, *, icc: bytes, exif: bytes, quality: int, subsampling: str, bits: int):
    _save_pillow(tmp, arr, fmt="jpeg", icc=icc, exif=exif, quality=quality, subsampling=subsampling)


def _save_avif(tmp: Path, arr: np.ndarray, *, icc: bytes, exif: bytes, quality: int, subsampling: str, bits: int):
    _save_pillow(tmp, arr, fmt="avif", icc=icc, exif=exif, quality=quality, subsampling=subsampling)


def png_chunk(kind: bytes, data: bytes) -> bytes:
    """One PNG chunk: length, type ``kind``, ``data`` and the CRC-32 of type and data (PNG 1.2 §5.3)."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_iccp_chunk(icc: bytes) -> bytes:
    """An iCCP chunk (PNG 1.2 §11.3.3.3): profile name, NUL, compression method 0, zlib stream of ``icc``."""
    return png_chunk(b"iCCP", b"ICC profile\0\0" + zlib.compress(icc))


def png_insert_after_ihdr(png: bytes, chunks: bytes) -> bytes:
    """The PNG stream ``png`` with ``chunks`` (already framed) inserted right after IHDR, so before IDAT."""
    if png[:8] != b"\x89PNG\r\n\x1a\n" or png[12:16] != b"IHDR":
        raise CorruptFile("libpng produced an unexpected stream")
    ihdr_end = 8 + 12 + struct.unpack(">I", png[8:12])[0]
    return png[:ihdr_end] + chunks + png[ihdr_end:]


def _save_png(tmp: Path, arr: np.ndarray, *, icc: bytes, exif: bytes, quality: int, subsampling: str, bits: int):
    import imagecodecs

    png = bytes(imagecodecs.png_encode(arr, level=6))
    # eXIf (PNG 3rd ed.): the TIFF structure without the JPEG "Exif\0\0" prefix; like iCCP, before IDAT.
    extra = png_iccp_chunk(icc) + png_chunk(b"eXIf", exif[6:] if exif.startswith(b"Exif\0\0") else exif)
    with open(tmp, "wb") as f:
        f.write(png_insert_after_ihdr(png, extra))


def _save_heif(tmp: Path, arr: np.ndarray, *, icc: bytes, exif: bytes, quality: int, subsampling: str, bits: int):
    import pillow_heif

    h, w = arr.shape[:2]
    mode = "RGB" if arr.dtype == np.uint8 else "RGB;16"
    heif = pillow_heif.from_bytes(mode=mode, size=(w, h), data=np.ascontiguousarray(arr).tobytes())
    with open(tmp, "wb") as f:
        heif.save(
            f, format="HEIF", quality=quality, chroma=int(subsampling.replace(":", "")), exif=exif, icc_profile=icc
        )


_WRITERS = {"jpeg": _save_jpeg, "png": _save_png, "heif": _save_heif, "avif": _save_avif}


# tifffile refuses to write the ExifIFD and GPSInfo pointer tags: we write them under these unused codes
# (the same sort position in IFD0: no tag lies between each one and its real code) and rename them.
_EXIF_PLACEHOLDER = {34665: 34664, 34853: 34852}


def _write_tiff(tmp: Path, arr: np.ndarray, *, icc: bytes, tags: tuple[dict, dict, dict]) -> None:
    """TIFF via tifffile (ICC in tag 34675); the Exif and GPS IFDs, which tifffile does not write, are
    appended after the image and IFD0's ExifIFD/GPSInfo pointers patched to them."""
    import tifffile

    ifd0, exif, gps = tags
    exif = {k: v for k, v in exif.items() if k not in (0xA002, 0xA003)}  # PixelX/YDimension: not for TIFF
    extratags = [(274, "H", 1, 1, True)]
    for code in (0x010F, 0x0110):
        if code in ifd0:
            extratags.append((code, "s", 0, ifd0[code], True))
    extratags.append((_EXIF_PLACEHOLDER[34665], "I", 1, 0, True))
    if gps:
        extratags.append((_EXIF_PLACEHOLDER[34853], "I", 1, 0, True))
    tifffile.imwrite(
        tmp,
        arr,
        photometric="rgb",
        planarconfig="contig",
        byteorder="<",
        iccprofile=icc,
        software=ifd0[0x0131],
        datetime=ifd0[0x0132],
        metadata=None,
        extratags=extratags,
    )
    with open(tmp, "r+b") as f:
        head = f.read(8)
        if head[:4] != b"II*\x00":
            raise CorruptFile("tifffile wrote an unexpected header")
        (ifd_off,) = struct.unpack("<I", head[4:8])
        f.seek(ifd_off)
        (count,) = struct.unpack("<H", f.read(2))
        entries = f.read(12 * count)
        where = {}  # real tag → file offset of its entry
        for i in range(count):
            code = struct.unpack_from("<H", entries, 12 * i)[0]
            for real, placeholder in _EXIF_PLACEHOLDER.items():
                if code == placeholder:
                    where[real] = ifd_off + 2 + 12 * i
        if 34665 not in where or (gps and 34853 not in where):
            raise CorruptFile("tifffile did not write the EXIF pointer placeholders")
        end = f.seek(0, os.SEEK_END)
        if end % 2:
            f.write(b"\0")
            end += 1
        block, exif_off, gps_off = exif_tiff_block(exif, gps, offset=end)
        f.write(block)
        for real, off in ((34665, exif_off), (34853, gps_off)):
            if real in where and off is not None:
                f.seek(where[real])
                f.write(struct.pack("<HHII", real, 4, 1, off))  # tag, type LONG, count 1, value


def _to_hwc(x: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(x.permute(1, 2, 0).cpu().numpy())


def write(
    image: Image,
    path: str | os.PathLike,
    *,
    format: str | None = None,
    quality: int = 95,
    subsampling: str = "4:2:0",
    bits: int | None = None,
    space: str | None = None,
    overwrite: bool = False,
    dither: bool = True,
) -> Path:
    """Write ``image`` to ``path`` with EXIF (from ``image.meta``) and the ICC profile of the output space.

    ``format``: jpeg, png, tiff, heif, avif (default: from the suffix). ``quality`` 1–100 and
    ``subsampling`` ("4:4:4", "4:2:2", "4:2:0") apply to JPEG/HEIF/AVIF. ``bits``: 8 (JPEG, AVIF),
    8/16 (PNG, default 8), 8/16/32 (TIFF, default 16; 32 = float32 linear values with a linear ICC),
    8/10 (HEIF). ``space``: "srgb" or "display_p3" (default: the image's own when it is encoded, Display P3
    for linear P3, sRGB otherwise); a linear image is encoded first. 8-bit output is TPDF-dithered
    (fixed seed) unless ``dither=False``. Returns the path written.
    """
    if not isinstance(image, Image):
        raise ShapeError(f"write expects an Image; got {type(image).__name__}")
    fmt = format_from_path(path, format)
    b = _check_options(fmt, quality, subsampling, bits)
    out_space = _output_space(image.space, space, linear=b == 32)
    p = check_output_path(path, overwrite=overwrite)
    x = image.data.detach()
    if not x.is_floating_point():
        raise ShapeError(f"Image.data must be floating point; got {x.dtype}")
    if b == 32:
        data = convert(x.float(), src=image.space, dst=out_space).nan_to_num(nan=0.0)
        arr = _to_hwc(data.to(torch.float32))
    else:
        if image.space != out_space:
            x = encode(image, space=out_space).data
        codes = quantize(x, bits=16 if b == 16 else b, dither=dither, seed=_DITHER_SEED)
        if b == 10:  # pillow-heif takes 16-bit samples and keeps their top 10 bits
            codes = codes.mul_(64)
        arr = _to_hwc(codes)
        if b > 8:
            arr = arr.astype(np.uint16)
    icc = icc_profile(out_space)
    tags = exif_tags(image.meta, width=image.width, height=image.height, space=out_space)
    with atomic_output(p, overwrite=overwrite) as tmp:
        if fmt == "tiff":
            _write_tiff(tmp, arr, icc=icc, tags=tags)
        else:
            exif = exif_from_meta(
                image.meta, width=image.width, height=image.height, space=out_space, now=tags[0][0x0132]
            )
            _WRITERS[fmt](tmp, arr, icc=icc, exif=exif, quality=int(quality), subsampling=subsampling, bits=b)
    return p


# --- reading ----------------------------------------------------------------------------------------------


def _sniff(head: bytes) -> str | None:
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "tiff"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"avif", b"avis"):
            return "avif"
        if brand in (b"heic", b"heix", b"mif1", b"msf1", b"heim", b"heis", b"hevc"):
            return "heif"
    return None


def _read_pixels(path: Path, kind: str) -> tuple[np.ndarray, bytes | None, int]:
    """(H×W×C array, ICC profile or None, significant bits of integer samples)."""
    from PIL import Image as PILImage

    if kind == "tiff":
        import tifffile

        with tifffile.TiffFile(path) as tf:
            page = tf.pages[0]
            arr = page.asarray()
            tag = page.tags.get(34675)
            icc = bytes(tag.value) if tag is not None else None
        return arr, icc, 8 * arr.dtype.itemsize
    if kind == "png":
        import imagecodecs

        arr = imagecodecs.png_decode(path.read_bytes())
        with PILImage.open(path) as im:  # Pillow only for the iCCP chunk (it reads 16-bit RGB as 8-bit)
            icc = im.info.get("icc_profile")
        return arr, icc, 8 * arr.dtype.itemsize
    if kind == "heif":
        import pillow_heif

        h = pillow_heif.open_heif(path, convert_hdr_to_8bit=False)
        arr = np.asarray(h)
        depth = int(h.info.get("bit_depth", 8))
        if arr.dtype == np.uint16:  # samples come scaled to 16 bits: keep the significant ones
            arr = arr >> (16 - depth)
        return arr, h.info.get("icc_profile"), depth
    with PILImage.open(path) as im:
        icc = im.info.get("icc_profile")
        if im.mode not in ("RGB", "L", "RGBA", "LA"):
            im = im.convert("RGB")
        arr = np.asarray(im)
    return arr, icc, 8


def read_image(path: str | os.PathLike) -> Image:
    """Read a PNG, JPEG, TIFF, HEIF or AVIF file into an Image (values in [0, 1], float32, CPU).

    The space comes from the embedded ICC profile when it is one of ours or matches one (colorants and
    curve); otherwise integer files are taken as sRGB and float files as linear sRGB. Alpha is dropped,
    grey is repeated on three channels. ``meta`` is None.
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: no such file" if not p.exists() else f"{p}: not a file")
    try:
        with open(p, "rb") as f:
            head = f.read(16)
    except OSError as e:
        raise InputError(f"{p}: cannot open: {e.strerror or e}") from None
    kind = _sniff(head)
    if kind is None:
        raise UnsupportedFormat(f"{p}: not a PNG, JPEG, TIFF, HEIF or AVIF file")
    try:
        arr, icc, depth = _read_pixels(p, kind)
    except (OSError, ValueError, SyntaxError, RuntimeError) as e:  # imagecodecs raises RuntimeError subclasses
        raise CorruptFile(f"{p}: cannot decode the {kind.upper()} data: {e}") from None
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 2, 3, 4):
        raise UnsupportedFormat(f"{p}: unsupported sample layout {arr.shape}")
    arr = arr[..., :3] if arr.shape[2] >= 3 else np.repeat(arr[..., :1], 3, axis=2)
    if arr.dtype.kind == "f":
        data = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))
        default = "linear_srgb"
    elif arr.dtype.kind in "ui":
        data = torch.from_numpy(arr.astype(np.float32) / float((1 << depth) - 1))
        default = "srgb"
    else:
        raise UnsupportedFormat(f"{p}: unsupported sample type {arr.dtype}")
    found = None
    if icc:
        try:
            found = icc_space(bytes(icc))
        except CorruptFile:
            found = None
    space = found or default
    return Image(data.permute(2, 0, 1).contiguous(), space)
