"""The ColorChecker Classic chart (24 patches, 4 × 6), spectral, with colour-science reference values.

Patch spectra are the BabelColor average reflectances (Pascale 2006) as shipped by colour-science,
on :data:`obscura.sim.spectral.WAVELENGTHS`; the chart is an indexed :class:`~obscura.sim.scene.Scene`
(each pixel one reflectance under the illuminant) drawn at the requested pixel size.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch

from obscura.core.errors import InvalidParameter
from obscura.lab.charts.base import Chart
from obscura.lab.charts.geometry import INNER_FRACTION, inner_box
from obscura.sim import spectral
from obscura.sim.scene import scene_from_reflectances

__all__ = ["colorchecker_chart", "colorchecker_reference", "colorchecker_layout", "LAB_WHITE"]

LAB_WHITE = "D50"  # CIE Lab references are relative to D50 (ICC PCS), after Bradford adaptation
_ROWS, _COLS = 4, 6


@functools.cache
def _reference(illuminant: str) -> tuple[tuple[float, ...], ...]:
    import colour

    key = spectral.ILLUMINANTS.get(illuminant) or spectral.ILLUMINANTS.get(str(illuminant).upper())
    spectral.illuminant_spd(illuminant)  # raises UnknownMethod listing the valid names
    cmfs = colour.MSDS_CMFS["CIE 1931 2 Degree Standard Observer"]
    ill = colour.SDS_ILLUMINANTS[key]
    sds = colour.SDS_COLOURCHECKERS["BabelColor Average"]
    # colour-science warns that it aligns the illuminant to the CMFs and extrapolates the 380–730 nm
    # reflectances (ASTM E308-15 practice): that is what we ask of it
    with colour.utilities.suppress_warnings(colour_runtime_warnings=True, colour_usage_warnings=True):
        xyz = np.array([colour.sd_to_XYZ(sds[n], cmfs, ill) for n in sds]) / 100.0
        white = colour.sd_to_XYZ(colour.sd_ones(ill.shape), cmfs, ill) / 100.0
    white_xy = colour.XYZ_to_xy(white)
    lin = colour.XYZ_to_RGB(xyz, "sRGB", illuminant=white_xy, chromatic_adaptation_transform="Bradford")
    enc = colour.cctf_encoding(lin, function="sRGB")
    d50_xy = colour.CCS_ILLUMINANTS["CIE 1931 2 Degree Standard Observer"][LAB_WHITE]
    d50 = colour.xy_to_XYZ(d50_xy)
    xyz_d50 = colour.adaptation.chromatic_adaptation_VonKries(xyz, white / white[1], d50, transform="Bradford")
    lab = colour.XYZ_to_Lab(xyz_d50, illuminant=d50_xy)
    return tuple(tuple(map(float, a.ravel())) for a in (xyz, lin, enc, lab, white))


def colorchecker_reference(illuminant: str = "D65") -> dict[str, np.ndarray]:
    """Reference values (24, 3) of the patches under ``illuminant``, in :data:`spectral.COLORCHECKER_NAMES`
    order, computed with colour-science from the BabelColor spectra (CIE 1931 2°, ASTM E308):

    ``xyz`` (the perfect diffuser has ``Y = 1``, so ``Y`` is the luminance factor), ``linear_srgb``
    (Bradford-adapted from the illuminant's white to D65), ``srgb`` (IEC 61966-2-1 encoded, not
    clipped), ``lab`` (CIE 1976 L*a*b* relative to D50 after Bradford adaptation), ``white_xyz`` (3,).
    """
    xyz, lin, enc, lab, white = _reference(illuminant)
    out = {k: np.array(v).reshape(24, 3) for k, v in zip(("xyz", "linear_srgb", "srgb", "lab"), (xyz, lin, enc, lab))}
    out["white_xyz"] = np.array(white)
    return out


def colorchecker_layout(
    size: tuple[int, int], *, margin: float = 0.05, gap: float = 0.2
) -> list[tuple[int, int, int, int]]:
    """Patch rectangles ``(x0, y0, x1, y1)`` (24, row-major from dark skin) for a chart of ``size`` (H, W).

    Square patches on a square pitch, the grid centred; ``margin`` is a fraction of the shorter side
    kept clear around the grid, ``gap`` the fraction of the pitch between neighbouring patches.
    """
    try:
        h, w = (int(s) for s in size)
    except (TypeError, ValueError):
        raise InvalidParameter(f"size must be (H, W); got {size!r}") from None
    if not 0.0 <= margin < 0.4:
        raise InvalidParameter(f"margin must be in [0, 0.4) of the shorter side; got {margin}")
    if not 0.0 <= gap < 0.9:
        raise InvalidParameter(f"gap must be in [0, 0.9) of the patch pitch; got {gap}")
    m = margin * min(h, w)
    pitch = min((w - 2 * m) / _COLS, (h - 2 * m) / _ROWS)
    side = pitch * (1.0 - gap)
    if side < 5:
        raise InvalidParameter(f"size {(h, w)} leaves patches of {side:.1f} px; need at least 5 px (e.g. (400, 600))")
    ox = (w - _COLS * pitch) / 2
    oy = (h - _ROWS * pitch) / 2
    boxes = []
    for r in range(_ROWS):
        for c in range(_COLS):
            x0 = ox + c * pitch + (pitch - side) / 2
            y0 = oy + r * pitch + (pitch - side) / 2
            boxes.append((round(x0), round(y0), round(x0 + side), round(y0 + side)))
    return boxes


def colorchecker_chart(
    *,
    size: tuple[int, int] = (400, 600),
    illuminant: str = "D65",
    lux: float | None = None,
    luminance: float | None = None,
    surround: float = 0.2,
    margin: float = 0.05,
    gap: float = 0.2,
    depth: float = math.inf,
    device: str | torch.device = "cpu",
) -> Chart:
    """A spectral ColorChecker Classic of ``size`` (H, W) pixels under ``illuminant``.

    24 BabelColor patches in the Classic 4 × 6 layout on a neutral surround of flat reflectance
    ``surround``; ``luminance`` (cd/m² of the perfect white, default 100) or ``lux`` (illuminance,
    giving ``lux / π``). ``rois``: one per patch, named by :data:`spectral.COLORCHECKER_NAMES`, the
    centred inner 60% of the patch. ``reference``: ``names``, ``illuminant``, ``lab_white`` ("D50"),
    ``patches`` (the full patch rectangles) and the (24, 3) arrays of :func:`colorchecker_reference`.
    """
    if isinstance(surround, bool) or not isinstance(surround, (int, float)) or not 0.0 <= surround <= 1.0:
        raise InvalidParameter(f"surround must be a reflectance in [0, 1]; got {surround!r}")
    boxes = colorchecker_layout(size, margin=margin, gap=gap)
    h, w = (int(s) for s in size)
    labels = torch.full((h, w), 24, dtype=torch.int64)
    for i, (x0, y0, x1, y1) in enumerate(boxes):
        labels[y0:y1, x0:x1] = i
    refl = np.concatenate([spectral.colorchecker_reflectances(), np.full((1, spectral.WAVELENGTHS.size), surround)])
    scene = scene_from_reflectances(
        refl,
        labels.to(device),
        illuminant=illuminant,
        lux=lux,
        luminance=luminance,
        depth=depth,
        name="colorchecker",
    )
    names = spectral.COLORCHECKER_NAMES
    rois = {n: inner_box(b, INNER_FRACTION) for n, b in zip(names, boxes)}
    reference = {
        "names": names,
        "illuminant": illuminant,
        "lab_white": LAB_WHITE,
        "surround": float(surround),
        "patches": dict(zip(names, boxes)),
        **colorchecker_reference(illuminant),
    }
    return Chart(name="colorchecker", scene=scene, rois=rois, reference=reference)
