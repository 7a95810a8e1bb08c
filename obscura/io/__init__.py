"""Input and output: read_raw (rawpy + DNG tags), read_headerless, read_burst, write_dng, write."""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "read_raw": "obscura.io.raw",
    "read_headerless": "obscura.io.headerless",
    "parse_opcode_list": "obscura.io.opcodes",
    "serialize_opcode_list": "obscura.io.opcodes",
    "make_opcode": "obscura.io.opcodes",
    "read_burst": "obscura.io.raw",
    "write_dng": "obscura.io.dng",
    "write": "obscura.io.write",
    "read_image": "obscura.io.write",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:  # lazy: importing obscura.io stays cheap
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'obscura.io' has no attribute {name!r}")
