"""obscura: an open camera imaging system (develop, burst, look, simulate, measure).

The few entry points a user needs are re-exported here (imported lazily); the rest is reached
through its package (``obscura.isp``, ``obscura.io``, ...).
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "read_raw": "obscura.io.raw",
    "read_burst": "obscura.io.raw",
    "write": "obscura.io.write",
    "write_dng": "obscura.io.dng",
    "develop": "obscura.isp.develop",
    "apply_look": "obscura.looks.look",
    "capture": "obscura.sim.camera",
    "merge_burst": "obscura.burst.merge",
    "measure": "obscura.lab.score:measure_chart",  # measure(chart, image) → the chart's measurements
}

__all__ = ["__version__", *sorted(_EXPORTS)]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        module, _, attr = _EXPORTS[name].partition(":")
        return getattr(import_module(module), attr or name)
    raise AttributeError(f"module 'obscura' has no attribute {name!r}")
