"""Test charts: generators of scenes with regions of interest and reference values (lazy re-exports)."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from obscura.core.registry import Registry

__all__ = [
    "CHARTS",
    "Chart",
    "slanted_edge_chart",
    "colorchecker_chart",
    "dead_leaves_chart",
    "step_chart",
    "noise_chart",
    "siemens_star_chart",
    "zone_plate_chart",
    "dot_grid_chart",
    "flat_field_chart",
    "radial_power_spectrum",
    "chart_rgb",
    "chart_preview",
    "write_chart",
    "write_chart_png",
    "write_chart_pdf",
]

_EXPORTS = {
    "Chart": "obscura.lab.charts.base",
    "slanted_edge_chart": "obscura.lab.charts.edge",
    "colorchecker_chart": "obscura.lab.charts.colorchecker",
    "dead_leaves_chart": "obscura.lab.charts.deadleaves",
    "radial_power_spectrum": "obscura.lab.charts.deadleaves",
    "step_chart": "obscura.lab.charts.steps",
    "noise_chart": "obscura.lab.charts.steps",
    "siemens_star_chart": "obscura.lab.charts.star",
    "zone_plate_chart": "obscura.lab.charts.star",
    "dot_grid_chart": "obscura.lab.charts.geometry",
    "flat_field_chart": "obscura.lab.charts.geometry",
    "chart_rgb": "obscura.lab.charts.printable",
    "chart_preview": "obscura.lab.charts.printable",
    "write_chart": "obscura.lab.charts.printable",
    "write_chart_png": "obscura.lab.charts.printable",
    "write_chart_pdf": "obscura.lab.charts.printable",
}

# Chart name → generator, e.g. ``CHARTS.get("star")(size=(512, 512))``; an unknown name lists the valid ones.
# Each entry imports its module on first call, so importing this package stays light.
_GENERATORS = {
    "edge": "slanted_edge_chart",
    "colorchecker": "colorchecker_chart",
    "deadleaves": "dead_leaves_chart",
    "steps": "step_chart",
    "noise": "noise_chart",
    "star": "siemens_star_chart",
    "zoneplate": "zone_plate_chart",
    "dots": "dot_grid_chart",
    "flat": "flat_field_chart",
}


def _lazy(function: str) -> Callable[..., Any]:
    def generate(**options: Any) -> Any:
        return getattr(importlib.import_module(_EXPORTS[function]), function)(**options)

    generate.__name__ = generate.__qualname__ = function
    generate.__doc__ = f"{_EXPORTS[function]}.{function} (imported on first call)"
    return generate


CHARTS = Registry("chart")
for _name, _function in _GENERATORS.items():
    CHARTS.register(_name)(_lazy(_function))


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
