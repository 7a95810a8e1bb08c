"""Test charts: generators of scenes with regions of interest and reference values (lazy re-exports)."""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["Chart", "slanted_edge_chart"]

_EXPORTS = {
    "Chart": "obscura.lab.charts.base",
    "slanted_edge_chart": "obscura.lab.charts.edge",
}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
