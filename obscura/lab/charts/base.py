"""The test-chart value type: a scene plus named regions of interest and reference values.

Charts are generated at the pixel size they will be captured at (the sensor's), so a simulated
capture needs no resampling and the ROIs index the raw frame directly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the scene module is imported lazily so charts and scenes can import each other
    from obscura.sim.scene import Scene

__all__ = ["Chart"]


@dataclass(frozen=True, eq=False)
class Chart:
    """A generated test chart.

    ``rois`` maps names to rectangles ``(x0, y0, x1, y1)`` in scene pixels (``x1``/``y1`` exclusive);
    ``reference`` holds the chart's reference values (edge angles, patch sRGB/Lab/XYZ, densities, ...).
    """

    name: str
    scene: Scene
    rois: Mapping[str, tuple[int, int, int, int]]
    reference: Mapping[str, Any]
