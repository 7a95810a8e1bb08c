"""Helpers shared by the subcommands: reading any raw input, parsing layouts, reporting errors."""

from __future__ import annotations

import sys
from pathlib import Path

from obscura.core.errors import InvalidParameter
from obscura.core.types import RawFrame

__all__ = ["LAYOUT_HELP", "error_line", "parse_layout", "read_input"]

LAYOUT_HELP = "headerless raw: height=H,width=W,dtype=uint16,cfa=RGGB,black=B,white=W"


def error_line(message: str) -> None:
    """Print one error line to stderr."""
    print(f"obscura: error: {message}", file=sys.stderr)


def parse_layout(text: str | None) -> dict | None:
    """Parse ``--layout height=512,width=768,dtype=uint16,cfa=RGGB,black=600,white=15520``."""
    if not text:
        return None
    out: dict = {}
    for part in text.split(","):
        if "=" not in part:
            raise InvalidParameter(f"--layout: expected key=value pairs separated by commas; got {part!r}")
        k, v = (s.strip() for s in part.split("=", 1))
        if k in ("height", "width", "offset"):
            out[k] = int(v)
        elif k in ("black", "black_level"):
            out["black_level"] = tuple(float(b) for b in v.split("/"))
        elif k in ("white", "white_level"):
            out["white_level"] = float(v)
        elif k in ("dtype", "cfa", "byte_order"):
            out[k] = v
        else:
            raise InvalidParameter(
                f"--layout: unknown key {k!r}; valid: height, width, dtype, cfa, black, white, offset, byte_order"
            )
    missing = {"height", "width", "cfa", "black_level", "white_level"} - set(out)
    if missing:
        raise InvalidParameter(f"--layout: missing {', '.join(sorted(missing))}")
    return out


def read_input(path: str | Path, *, layout: dict | None = None) -> RawFrame:
    """A raw file through LibRaw (or a headerless one through the explicit ``layout``)."""
    from obscura.io.raw import read_headerless, read_raw

    if layout:
        return read_headerless(path, **layout)
    return read_raw(path)
