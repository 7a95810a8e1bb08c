"""Neutral patch charts: an OECF step chart (ISO 14524, dynamic range per ISO 15739) and uniform noise patches.

The step chart is a *scene*, like a backlit transmissive chart: its patches span ``stops`` of luminance
(2^-16 of the brightest and below), which no print can hold, so it is meant for the virtual camera
(and as a guide for a real transmissive chart's densities). Patches are axis-aligned rectangles on
whole pixels, so each patch is exactly uniform.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from obscura.core.errors import InvalidParameter
from obscura.core.validate import check_number
from obscura.lab.charts.base import Chart
from obscura.lab.charts.geometry import INNER_FRACTION, chart_size, inner_box, neutral_scene

__all__ = ["step_chart", "noise_chart", "patch_grid", "GREY18"]

GREY18 = 0.18  # the mid-grey reference reflectance for exposure (ISO 2721 / ISO 12232 practice)


def patch_grid(
    size: tuple[int, int], n: int, *, margin: float = 0.05, gap: float = 0.2
) -> list[tuple[float, float, float, float]]:
    """``n`` square patch rectangles (x0, y0, x1, y1) on whole pixels, row-major, in a grid centred in
    ``size`` (H, W): the columns are chosen so the grid fits the aspect ratio; ``margin`` (fraction of
    the shorter side) is kept clear around it and ``gap`` (fraction of the pitch) between patches."""
    h, w = size
    m = margin * min(h, w)
    cols = max(1, math.ceil(math.sqrt(n * (w - 2 * m) / max(h - 2 * m, 1.0))))
    rows = math.ceil(n / cols)
    while cols > 1 and math.ceil(n / (cols - 1)) == rows:  # fewest columns for that many rows
        cols -= 1
    pitch = min((w - 2 * m) / cols, (h - 2 * m) / rows)
    side = pitch * (1.0 - gap)
    if side < 5:
        raise InvalidParameter(f"size {(h, w)} leaves {n} patches of {side:.1f} px; need at least 5 px")
    ox, oy = (w - cols * pitch) / 2, (h - rows * pitch) / 2
    boxes = []
    for i in range(n):
        r, c = divmod(i, cols)
        x0 = round(ox + c * pitch + (pitch - side) / 2)
        y0 = round(oy + r * pitch + (pitch - side) / 2)
        boxes.append((x0, y0, x0 + round(side), y0 + round(side)))
    return boxes


def step_chart(
    *,
    size: tuple[int, int] = (480, 640),
    patches: int = 24,
    stops: float = 17.0,
    white: float = 1.0,
    surround: float = 0.0,
    illuminant: str = "D65",
    luminance: float | None = None,
    lux: float | None = None,
    depth: float = math.inf,
    device: str | torch.device = "cpu",
) -> Chart:
    """An OECF step chart: ``patches`` neutral patches whose luminance falls by equal steps over ``stops``
    (patch ``i`` has ``Y = white · 2^(−stops·i/(patches − 1))``; density ``stops·log10 2·i/(patches − 1)``
    as on a transmissive chart, ISO 14524), plus an 18 % grey patch for the exposure reference, on a
    ``surround`` of that reflectance (0: the opaque mask of a transmissive chart, no flare). ``white`` may
    exceed 1 (a light box brighter than the diffuse white).

    ROIs ``step_00`` … (brightest first) and ``grey18``: the centred inner 60 % of each patch.
    ``reference``: ``names``; ``Y``, ``log2_y`` (log2 of ``Y``, the log exposure in stops relative to
    ``Y = 1``), ``density`` (relative to the brightest patch) as arrays in ROI order;
    ``grey18_Y``; ``stops``; ``patches`` (the full patch rectangles).
    """
    h, w = chart_size(size, minimum=(48, 48))
    if isinstance(patches, bool) or not isinstance(patches, int) or not 2 <= patches <= 200:
        raise InvalidParameter(f"patches must be an integer in [2, 200]; got {patches!r}")
    span = check_number("stops", stops, 1.0, 30.0)
    top = check_number("white", white, 0.0, 1e4, lo_open=True)
    sur = check_number("surround", surround, 0.0, 1e4)
    boxes = patch_grid((h, w), patches + 1)
    i = np.arange(patches, dtype=np.float64)
    log2_rel = -span * i / (patches - 1)
    y = top * np.exp2(log2_rel)
    refl = np.full((h, w), sur, dtype=np.float64)
    values = [*y.tolist(), GREY18]
    names = [f"step_{k:02d}" for k in range(patches)] + ["grey18"]
    for (x0, y0, x1, y1), v in zip(boxes, values):
        refl[y0:y1, x0:x1] = v
    scene = neutral_scene(
        refl, illuminant=illuminant, luminance=luminance, lux=lux, depth=depth, device=device, name="step_chart"
    )
    reference = {
        "names": tuple(names[:-1]),
        "Y": y,
        "log2_y": np.log2(y),
        "density": -log2_rel * math.log10(2.0),
        "stops": span,
        "grey18_Y": GREY18,
        "surround": sur,
        "patches": dict(zip(names, boxes)),
    }
    rois = {n: inner_box(b, INNER_FRACTION) for n, b in zip(names, boxes)}
    return Chart(name="step_chart", scene=scene, rois=rois, reference=reference)


_NOISE_LEVELS = (0.031, 0.06, 0.1, 0.18, 0.3, 0.45, 0.62, 0.9)  # about equal steps in L* (≈ 20 … 96)


def noise_chart(
    *,
    size: tuple[int, int] = (240, 640),
    reflectances: tuple[float, ...] = _NOISE_LEVELS,
    surround: float = 0.18,
    illuminant: str = "D65",
    luminance: float | None = None,
    lux: float | None = None,
    depth: float = math.inf,
    device: str | torch.device = "cpu",
) -> Chart:
    """Uniform neutral patches of known flat spectral ``reflectances`` (SNR and ISO 15739 visual noise).

    An indexed scene (each patch one reflectance under ``illuminant``) on a ``surround`` grey; patches
    in a row (or a grid, by the aspect ratio). ROIs ``patch_00`` …, the inner 60 % of each patch, in the
    order given. ``reference``: ``names``, ``Y`` (the luminance factor of each patch: its reflectance),
    ``patches`` (full rectangles).
    """
    from obscura.sim import spectral
    from obscura.sim.scene import scene_from_reflectances

    h, w = chart_size(size, minimum=(32, 32))
    try:
        levels = np.array([float(v) for v in reflectances], dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidParameter(f"reflectances must be a sequence of numbers; got {reflectances!r}") from None
    if not 1 <= levels.size <= 64 or not np.all(np.isfinite(levels)) or np.any(levels < 0) or np.any(levels > 1):
        raise InvalidParameter(f"reflectances must be 1–64 values in [0, 1]; got {reflectances!r}")
    sur = check_number("surround", surround, 0.0, 1.0)
    n = levels.size
    boxes = patch_grid((h, w), n, gap=0.15)
    labels = torch.full((h, w), n, dtype=torch.int64)
    for k, (x0, y0, x1, y1) in enumerate(boxes):
        labels[y0:y1, x0:x1] = k
    refl = np.repeat(np.append(levels, sur)[:, None], spectral.WAVELENGTHS.size, axis=1)
    scene = scene_from_reflectances(
        refl,
        labels.to(device),
        illuminant=illuminant,
        lux=lux,
        luminance=luminance,
        depth=depth,
        name="noise_chart",
    )
    names = tuple(f"patch_{k:02d}" for k in range(n))
    reference = {"names": names, "Y": levels.copy(), "surround": sur, "patches": dict(zip(names, boxes))}
    return Chart(
        name="noise_chart",
        scene=scene,
        rois={a: inner_box(b, INNER_FRACTION) for a, b in zip(names, boxes)},
        reference=reference,
    )
