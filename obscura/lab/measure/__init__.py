"""Measurements on captures of charts (lazy re-exports)."""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["SFRResult", "esfr", "mtf50", "mtf50p"]

_EXPORTS = {name: "obscura.lab.measure.sfr" for name in __all__}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
