"""Burst photography: reference choice, tile alignment, HDR+-style merge, bracket HDR, night mode, super-resolution.

The entry points are re-exported lazily; the algorithms live in their modules (``align.py``, ``merge.py``, ...).
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "pick_reference": "obscura.burst.reference",
    "check_burst": "obscura.burst.reference",
    "Alignment": "obscura.burst.align",
    "align_burst": "obscura.burst.align",
    "flow_to_pixels": "obscura.burst.align",
    "merge_burst": "obscura.burst.merge",
    "merge_brackets": "obscura.burst.hdr",
    "fuse_exposures": "obscura.burst.hdr",
    "night_mode": "obscura.burst.hdr",
    "night_recipe": "obscura.burst.hdr",
    "super_resolve": "obscura.burst.superres",
    "super_resolve_frame": "obscura.burst.superres",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'obscura.burst' has no attribute {name!r}")
