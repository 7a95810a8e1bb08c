"""obscura.looks: looks as data (TOML of perceptual operations in OKLab), LUT files, and fitting.

The entry points are re-exported lazily (importing the package costs nothing):
``apply_look``, ``load_look``, ``list_looks`` (obscura.looks.look) and ``read_cube``, ``write_cube``,
``apply_lut`` (obscura.looks.lut).
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["apply_look", "load_look", "list_looks", "read_cube", "write_cube", "apply_lut"]

_WHERE = {
    "apply_look": "obscura.looks.look",
    "load_look": "obscura.looks.look",
    "list_looks": "obscura.looks.look",
    "read_cube": "obscura.looks.lut",
    "write_cube": "obscura.looks.lut",
    "apply_lut": "obscura.looks.lut",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'obscura.looks' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
