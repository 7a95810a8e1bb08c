"""Finding charts in real photographs: the ColorChecker and slanted edges.

ColorChecker detection uses colour-checker-detection's segmentation method (Mansencal et al.,
colour-science; ``detect_colour_checkers_segmentation``): adaptive threshold → square swatch contours
→ clustered into the 4 × 6 grid → perspective-rectified → per-swatch means, the orientation chosen
against the reference colours. It is an optional dependency (``pip install colour-checker-detection
opencv-python-headless``); without it :func:`detect_colorchecker` raises a clear error.

Slanted edges are found with our own gradient-based detector (no OpenCV / scikit-image needed):
Sobel gradients, pixels whose gradient is strong and points within a cone around the x (or y) axis,
8-connected components, a magnitude-weighted line fit per component, and a region around the edge's
middle that holds no other edge, sized for :func:`obscura.lab.measure.sfr.esfr`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from obscura.core.errors import InvalidParameter, ObscuraError, ShapeError
from obscura.lab.measure.noise import as_planes, luminance

__all__ = [
    "ColorCheckerDetection",
    "SlantedEdge",
    "detect_colorchecker",
    "find_slanted_edges",
]

INSTALL_HINT = "pip install colour-checker-detection opencv-python-headless"


@dataclass(frozen=True, eq=False)
class ColorCheckerDetection:
    """One ColorChecker Classic found in a photograph.

    ``patches``: (24, 3) linear means in chart order (dark skin … black), in the image's linear RGB;
    ``quad``: (4, 2) corners (x, y) of the swatch area in image pixels.
    """

    patches: np.ndarray
    quad: np.ndarray

    def to_dict(self) -> dict[str, Any]:
        return {"patches": self.patches.tolist(), "quad": self.quad.tolist()}


def detect_colorchecker(
    image: Any, *, encoding: str | None = "srgb", samples: int = 32, all_charts: bool = False
) -> ColorCheckerDetection | list[ColorCheckerDetection]:
    """Find a ColorChecker Classic in a photograph (colour-checker-detection, segmentation method).

    ``image``: an Image, or a (3, H, W) tensor/array encoded as ``encoding``. Returns the first chart
    found (or every chart with ``all_charts``). Raises InvalidParameter when none is found, and
    ObscuraError when colour-checker-detection is not installed.
    """
    if isinstance(samples, bool) or not isinstance(samples, int) or not 2 <= samples <= 128:
        raise InvalidParameter(f"samples must be an integer in [2, 128]; got {samples!r}")
    lin = as_planes(image, encoding=encoding)
    if lin.shape[0] != 3:
        raise ShapeError(f"image must be (3, H, W) colour; got {tuple(lin.shape)}")
    h, w = lin.shape[1:]
    if min(h, w) < 64:
        raise ShapeError(f"image is too small to find a chart in: {(h, w)}; need at least 64×64 pixels")
    try:
        from colour_checker_detection import detect_colour_checkers_segmentation
    except ImportError as e:
        raise ObscuraError(f"ColorChecker detection needs colour-checker-detection ({INSTALL_HINT}): {e}") from None
    hwc = np.ascontiguousarray(np.clip(lin, 0.0, None).transpose(1, 2, 0), dtype=np.float32)
    import colour

    with colour.utilities.suppress_warnings(colour_usage_warnings=True, colour_runtime_warnings=True):
        found = detect_colour_checkers_segmentation(hwc, samples=samples, additional_data=True)
    if not found:
        raise InvalidParameter("no ColorChecker found in the image")
    # the library works on a copy resized to its working width (1440 px by default)
    from colour_checker_detection.detection.segmentation import SETTINGS_SEGMENTATION_COLORCHECKER_CLASSIC

    scale = w / float(SETTINGS_SEGMENTATION_COLORCHECKER_CLASSIC["working_width"])
    out = [
        ColorCheckerDetection(
            patches=np.asarray(d.swatch_colours, dtype=np.float64).reshape(-1, 3),
            quad=np.asarray(d.quadrilateral, dtype=np.float64).reshape(4, 2) * scale,
        )
        for d in found
    ]
    return out if all_charts else out[0]


@dataclass(frozen=True, eq=False)
class SlantedEdge:
    """A straight edge found in an image: ``roi`` (x0, y0, x1, y1) for esfr, its tilt and length (px)."""

    roi: tuple[int, int, int, int]
    orientation: str  # "vertical" or "horizontal"
    angle_deg: float  # atan(dx/dy) (vertical) or atan(dy/dx) (horizontal), image coordinates
    length: float
    centre: tuple[float, float]

    def to_dict(self) -> dict[str, Any]:
        return {
            "roi": list(self.roi),
            "orientation": self.orientation,
            "angle_deg": self.angle_deg,
            "length": self.length,
            "centre": list(self.centre),
        }


def _edge_rois(
    mag: np.ndarray,
    mask: np.ndarray,
    strong: np.ndarray,
    *,
    transpose: bool,
    min_length: int,
    angle_range: tuple[float, float],
    half_width: int,
) -> list[SlantedEdge]:
    """Edges of one orientation, working as if near-vertical (``transpose`` handles horizontal ones)."""
    from scipy import ndimage

    if transpose:
        mag, mask, strong = mag.T, mask.T, strong.T
    _h, w = mag.shape
    labels, _n = ndimage.label(mask, structure=np.ones((3, 3)))
    out = []
    objs = ndimage.find_objects(labels)
    for i, sl in enumerate(objs, start=1):
        if sl is None:
            continue
        ys, xs = np.nonzero(labels[sl] == i)
        ys = ys + sl[0].start
        xs = xs + sl[1].start
        extent = int(ys.max() - ys.min() + 1)
        if extent < min_length:
            continue
        wt = mag[ys, xs]
        m, c = np.polyfit(ys.astype(np.float64), xs.astype(np.float64), 1, w=np.sqrt(wt))
        angle = math.degrees(math.atan(m))
        if not angle_range[0] <= abs(angle) <= angle_range[1]:
            continue
        # keep the middle 70 % along the edge (away from corners), wide enough across for the plateaus
        y0 = math.ceil(ys.min() + 0.15 * extent)
        y1 = math.floor(ys.max() - 0.15 * extent) + 1
        if y1 - y0 < 20:
            continue
        xa, xb = m * y0 + c, m * (y1 - 1) + c
        roi = None
        for hw in range(half_width, 9, -2):
            x0 = math.floor(min(xa, xb)) - hw
            x1 = math.ceil(max(xa, xb)) + hw + 1
            if x0 < 0 or x1 > w:
                continue
            other = strong[y0:y1, x0:x1] & (labels[y0:y1, x0:x1] != i)
            if not other.any():
                roi = (x0, y0, x1, y1)
                break
        if roi is None:
            continue
        ym = 0.5 * (y0 + y1 - 1)
        cx, cy = m * ym + c, ym
        if transpose:  # back to image coordinates: swap x and y
            roi = (roi[1], roi[0], roi[3], roi[2])
            cx, cy = cy, cx
        out.append(
            SlantedEdge(
                roi=tuple(int(v) for v in roi),
                orientation="horizontal" if transpose else "vertical",
                angle_deg=float(angle),
                length=float(extent * math.sqrt(1 + m * m)),
                centre=(float(cx), float(cy)),
            )
        )
    return out


def find_slanted_edges(
    image: Any,
    *,
    min_length: int = 40,
    angle_range: tuple[float, float] = (2.0, 20.0),
    half_width: int = 24,
    threshold: float = 0.25,
    encoding: str | None = "linear",
) -> list[SlantedEdge]:
    """Straight edges tilted ``angle_range`` degrees from vertical or horizontal, with e-SFR regions.

    ``image``: (H, W) or (3, H, W) (BT.709 luminance). Edge pixels are those whose Sobel gradient
    exceeds ``threshold`` × the 99.9th percentile of the gradient and points within angle_range[1] + 10°
    of an axis; components shorter than ``min_length`` px are dropped. Each region spans the middle
    70 % of its edge and ``half_width`` px (shrunk down to 10 if needed) on either side, and holds no
    other edge. Sorted longest first.
    """
    from scipy import ndimage

    if isinstance(min_length, bool) or not isinstance(min_length, int) or min_length < 20:
        raise InvalidParameter(f"min_length must be an integer ≥ 20 pixels; got {min_length!r}")
    if isinstance(half_width, bool) or not isinstance(half_width, int) or half_width < 10:
        raise InvalidParameter(f"half_width must be an integer ≥ 10 pixels; got {half_width!r}")
    try:
        lo, hi = (float(v) for v in angle_range)
    except (TypeError, ValueError):
        raise InvalidParameter(f"angle_range must be (lo, hi) degrees; got {angle_range!r}") from None
    if not 0.0 <= lo < hi <= 35.0:
        raise InvalidParameter(f"angle_range must satisfy 0 ≤ lo < hi ≤ 35 degrees; got {angle_range!r}")
    if not 0.0 < threshold < 1.0:
        raise InvalidParameter(f"threshold must be in (0, 1); got {threshold!r}")
    p = as_planes(image, encoding=encoding)
    if p.shape[0] not in (1, 3):
        raise ShapeError(f"image must be (H, W) or (3, H, W); got {tuple(p.shape)}")
    lum = luminance(p)
    if min(lum.shape) < 2 * min_length:
        raise ShapeError(f"image {lum.shape} is too small for edges of {min_length} px")
    gx = ndimage.sobel(lum, axis=1)
    gy = ndimage.sobel(lum, axis=0)
    mag = np.hypot(gx, gy)
    ref = float(np.percentile(mag, 99.9))
    if ref <= 0:
        return []
    strong = mag > threshold * ref
    cone = math.tan(math.radians(min(hi + 10.0, 45.0)))
    vert = strong & (np.abs(gy) <= cone * np.abs(gx))
    horiz = strong & (np.abs(gx) <= cone * np.abs(gy))
    opts = dict(min_length=min_length, angle_range=(lo, hi), half_width=half_width)
    edges = _edge_rois(mag, vert, strong, transpose=False, **opts) + _edge_rois(
        mag, horiz, strong, transpose=True, **opts
    )
    return sorted(edges, key=lambda e: -e.length)
