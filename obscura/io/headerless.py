"""Headerless raw mosaics: bare sample dumps (``.raw``) and greyscale PNG-packed Bayer mosaics.

Such files carry no metadata, so the caller gives the layout (size, sample type, CFA, levels). The
container is detected from the file's first bytes: a PNG signature means a 8/16-bit greyscale PNG
(read with Pillow keeping all 16 bits), anything else a bare dump of ``height × width`` samples.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from obscura.core.errors import CorruptFile, InputError, InvalidParameter, ShapeError, UnsupportedFormat
from obscura.core.types import RawFrame, RawMeta, validate_cfa

__all__ = ["read_headerless"]

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_DTYPES = ("uint8", "uint16", "uint32", "float32")


def _levels(black_level: float | Sequence[float], n_sites: int) -> tuple[float, ...]:
    vals = (black_level,) if isinstance(black_level, (int, float)) else tuple(black_level)
    try:
        vals = tuple(float(v) for v in vals)
    except (TypeError, ValueError):
        raise InvalidParameter(
            f"black_level must be a number or one number per CFA site; got {black_level!r}"
        ) from None
    if len(vals) == 1:
        return vals * n_sites
    if len(vals) != n_sites:
        raise InvalidParameter(f"black_level needs 1 or {n_sites} values for this CFA; got {len(vals)}")
    return vals


def _read_png(p: Path) -> np.ndarray:
    from PIL import Image as PILImage

    try:
        with PILImage.open(p) as im:
            im.load()
            mode = im.mode
            if mode not in ("L", "I;16", "I;16B", "I;16L", "I"):
                raise UnsupportedFormat(f"{p}: PNG mode {mode!r} is not a greyscale mosaic (need 8- or 16-bit grey)")
            arr = np.array(im)
    except UnsupportedFormat:
        raise
    except (OSError, ValueError, SyntaxError) as e:
        raise CorruptFile(f"{p}: truncated or corrupt PNG ({e})") from None
    if mode == "I" and (arr.min() < 0 or arr.max() > 65535):
        raise UnsupportedFormat(f"{p}: 32-bit PNG values outside 0..65535 are not a sensor mosaic")
    return arr


def read_headerless(
    path: str | os.PathLike,
    *,
    height: int | None = None,
    width: int | None = None,
    dtype: str = "uint16",
    cfa: str,
    black_level: float | Sequence[float],
    white_level: float,
    offset: int = 0,
    byte_order: str = "<",
    meta: RawMeta | None = None,
) -> RawFrame:
    """Read a headerless raw mosaic (bare samples, or a greyscale PNG) with the layout given.

    ``height``/``width`` are required for bare dumps and checked against a PNG's size when given.
    ``black_level`` is one value or one per CFA site (reading order). ``meta`` supplies any other
    RawMeta fields (colour matrices, white balance, ...). Raises CorruptFile when the file does not
    hold exactly the samples the layout asks for.
    """
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such file")
    if p.is_dir():
        raise InputError(f"{p}: is a folder, not a raw file")
    cfa = validate_cfa(cfa)
    if cfa == "":
        raise InvalidParameter("a headerless mosaic needs a CFA pattern like 'RGGB'; got ''")
    n = 2 if len(cfa) == 4 else 4
    if dtype not in _DTYPES:
        raise InvalidParameter(f"dtype must be one of {', '.join(_DTYPES)}; got {dtype!r}")
    if byte_order not in ("<", ">"):
        raise InvalidParameter(f"byte_order must be '<' (little-endian) or '>' (big-endian); got {byte_order!r}")
    if not isinstance(offset, int) or offset < 0:
        raise InvalidParameter(f"offset must be a non-negative integer; got {offset!r}")
    blacks = _levels(black_level, len(cfa))
    white = float(white_level)
    if not np.isfinite(white) or white <= max(blacks):
        raise InvalidParameter(f"white_level must be above the black level {max(blacks)}; got {white_level!r}")
    for name, v in (("height", height), ("width", width)):
        if v is not None and (not isinstance(v, int) or v <= 0):
            raise InvalidParameter(f"{name} must be a positive integer; got {v!r}")

    try:
        with open(p, "rb") as f:
            head = f.read(8)
    except OSError as e:
        raise InputError(f"{p}: cannot be read: {e.strerror or e}") from None

    if head.startswith(_PNG_SIGNATURE):
        arr = _read_png(p)
        if arr.ndim != 2:
            raise UnsupportedFormat(f"{p}: PNG has shape {arr.shape}; a mosaic is one grey channel")
        if (height is not None and arr.shape[0] != height) or (width is not None and arr.shape[1] != width):
            raise CorruptFile(f"{p}: PNG is {arr.shape[0]}x{arr.shape[1]} (rows x cols); expected {height}x{width}")
        source = "png"
    else:
        if height is None or width is None:
            raise InvalidParameter(f"{p}: a headerless raw needs height and width; got {height} x {width}")
        dt = np.dtype(dtype).newbyteorder(byte_order) if dtype != "uint8" else np.dtype("uint8")
        expected = height * width * dt.itemsize
        size = p.stat().st_size
        if size - offset != expected:
            raise CorruptFile(
                f"{p}: holds {size - offset} bytes after offset {offset}; a {height}x{width} {dtype} mosaic needs "
                f"{expected} (file is {'too short' if size - offset < expected else 'too long'})"
            )
        with open(p, "rb") as f:
            f.seek(offset)
            arr = np.frombuffer(f.read(expected), dtype=dt).reshape(height, width)
        source = "raw"
    if arr.shape[0] % n or arr.shape[1] % n:
        raise ShapeError(f"{p}: mosaic must have sides multiple of {n} for CFA {cfa}; got {arr.shape}")
    data = torch.from_numpy(arr.astype(np.float32))
    base = meta if meta is not None else RawMeta()
    return RawFrame(data, base.replace(cfa=cfa, black_level=blacks, white_level=white, source_format=source))
