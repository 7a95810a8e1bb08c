"""Colour accuracy on a ColorChecker: ΔE00 and ΔC per patch, white balance, saturation.

Patch means are taken in linear light (an sRGB-encoded image is decoded per pixel first, so noise does
not bias the mean), converted from linear sRGB (D65) to CIE XYZ adapted to D50 with Bradford (Lam 1985)
and to CIE 1976 L*a*b* (D50, the ICC PCS white the chart references use), then compared with the
reference by CIEDE2000 (Luo, Cui & Rigg 2001; Sharma, Wu & Dalal 2005). colour-science does the
conversions and ΔE (the reference implementation; these are per-patch values, not pixels).

With exposure normalisation the measured linear values are first scaled so the luminance factor Y
of the 18 % grey patch ("neutral 5 (.70 D)") matches the reference, as Imatest and DXOMARK do, so
that an exposure error does not count as a colour error.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from obscura.core.errors import InvalidParameter, ShapeError
from obscura.lab.measure.noise import SRGB_Y_WEIGHTS, as_planes, crop, srgb_decode

__all__ = [
    "ColourResult",
    "measure_colorchecker",
    "patch_means",
    "linear_srgb_to_lab",
    "lab_to_linear_srgb",
    "delta_e00",
    "NEUTRAL_18",
]

NEUTRAL_18 = "neutral 5 (.70 D)"  # the ColorChecker's 18 % (Y ≈ 0.19) grey


def _d50_xy() -> np.ndarray:
    import colour

    return colour.CCS_ILLUMINANTS["CIE 1931 2 Degree Standard Observer"]["D50"]


def linear_srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """(…, 3) linear sRGB (D65) → CIE L*a*b* relative to D50 (Bradford adaptation), via colour-science."""
    import colour

    d50 = _d50_xy()
    xyz = colour.RGB_to_XYZ(np.asarray(rgb, dtype=np.float64), "sRGB", d50, chromatic_adaptation_transform="Bradford")
    return colour.XYZ_to_Lab(xyz, d50)


def lab_to_linear_srgb(lab: np.ndarray) -> np.ndarray:
    """(…, 3) CIE L*a*b* (D50) → linear sRGB (D65, Bradford), via colour-science; not clipped."""
    import colour

    d50 = _d50_xy()
    xyz = colour.Lab_to_XYZ(np.asarray(lab, dtype=np.float64), d50)
    return colour.XYZ_to_RGB(xyz, "sRGB", d50, chromatic_adaptation_transform="Bradford")


def delta_e00(lab1: np.ndarray, lab2: np.ndarray) -> np.ndarray:
    """CIEDE2000 colour difference (Sharma et al. 2005) of (…, 3) Lab arrays, via colour-science."""
    import colour

    return np.asarray(colour.delta_E(np.asarray(lab1, float), np.asarray(lab2, float), method="CIE 2000"))


def patch_means(
    image: Any, rois: Sequence[Sequence[int]] | Mapping[str, Sequence[int]], *, encoding: str | None = "srgb"
) -> np.ndarray:
    """(N, C) linear means of the regions ``rois`` ((x0, y0, x1, y1), exclusive ends) of ``image``."""
    planes = as_planes(image, encoding=encoding)
    boxes = list(rois.values()) if isinstance(rois, Mapping) else list(rois)
    if not boxes:
        raise InvalidParameter("rois is empty: give one (x0, y0, x1, y1) per patch")
    return np.array([crop(planes, b, name=f"roi {i}", min_size=1).mean(axis=(1, 2)) for i, b in enumerate(boxes)])


@dataclass(frozen=True, eq=False)
class ColourResult:
    """ColorChecker colour accuracy. Arrays are per patch, in ``names`` order.

    ``delta_e00``/``delta_c``: as measured; ``*_normalized``: after scaling exposure so the 18 % patch's Y
    matches (``exposure_scale`` is that factor). ``delta_c`` is the signed chroma difference
    C*ab(measured) − C*ab(reference). ``wb_error``: mean over the neutral patches of the (a*, b*) distance to
    the reference (exposure-normalised); ``saturation_pct``: 100 × mean C*ab of the chromatic patches
    measured / reference (exposure-normalised). ``cct_k`` and ``duv`` of the mean neutral (D65 display).
    """

    names: tuple[str, ...]
    measured_lab: np.ndarray
    reference_lab: np.ndarray
    measured_linear: np.ndarray
    delta_e00: np.ndarray
    delta_e00_normalized: np.ndarray
    delta_c: np.ndarray
    delta_c_normalized: np.ndarray
    exposure_scale: float
    neutral: tuple[int, ...]
    wb_error: float
    saturation_pct: float
    cct_k: float
    duv: float

    @property
    def mean_delta_e00(self) -> float:
        return float(self.delta_e00.mean())

    @property
    def max_delta_e00(self) -> float:
        return float(self.delta_e00.max())

    @property
    def mean_delta_e00_normalized(self) -> float:
        return float(self.delta_e00_normalized.mean())

    def to_dict(self) -> dict[str, Any]:
        return {
            "names": list(self.names),
            "delta_e00": self.delta_e00.tolist(),
            "delta_e00_normalized": self.delta_e00_normalized.tolist(),
            "delta_c": self.delta_c.tolist(),
            "delta_c_normalized": self.delta_c_normalized.tolist(),
            "mean_delta_e00": self.mean_delta_e00,
            "max_delta_e00": self.max_delta_e00,
            "mean_delta_e00_normalized": self.mean_delta_e00_normalized,
            "exposure_scale": self.exposure_scale,
            "wb_error": self.wb_error,
            "saturation_pct": self.saturation_pct,
            "cct_k": self.cct_k,
            "duv": self.duv,
            "measured_lab": self.measured_lab.tolist(),
            "reference_lab": self.reference_lab.tolist(),
        }


def _chroma(lab: np.ndarray) -> np.ndarray:
    return np.hypot(lab[..., 1], lab[..., 2])


def _cct_duv(rgb: np.ndarray) -> tuple[float, float]:
    """CCT and Δuv (Ohno 2014) of a linear sRGB colour, via colour-science; nan when undefined."""
    import colour

    try:
        xyz = colour.RGB_to_XYZ(rgb, "sRGB")
        if xyz[1] <= 0:
            return math.nan, math.nan
        uv = colour.UCS_to_uv(colour.XYZ_to_UCS(xyz))
        with colour.utilities.suppress_warnings(colour_runtime_warnings=True, colour_usage_warnings=True):
            cct, duv = colour.uv_to_CCT(uv, method="Ohno 2013")
        return float(cct), float(duv)
    except (ValueError, ZeroDivisionError, FloatingPointError):  # pragma: no cover - degenerate colours
        return math.nan, math.nan


def _reference_lab(reference: Any, space: str) -> np.ndarray:
    if isinstance(reference, Mapping):
        if "lab" in reference:
            return np.asarray(reference["lab"], dtype=np.float64)
        raise InvalidParameter(f"reference mapping needs a 'lab' entry; got keys {sorted(reference)}")
    ref = np.asarray(reference, dtype=np.float64)
    if ref.ndim != 2 or ref.shape[1] != 3:
        raise ShapeError(f"reference must be (N, 3); got {tuple(ref.shape)}")
    if space == "lab":
        return ref
    if space == "srgb":
        return linear_srgb_to_lab(srgb_decode(ref))
    if space == "linear_srgb":
        return linear_srgb_to_lab(ref)
    raise InvalidParameter(f"reference_space must be 'lab', 'srgb' or 'linear_srgb'; got {space!r}")


def measure_colorchecker(
    image: Any,
    chart: Any = None,
    *,
    rois: Sequence[Sequence[int]] | Mapping[str, Sequence[int]] | None = None,
    reference: Any = None,
    reference_space: str = "lab",
    names: Sequence[str] | None = None,
    encoding: str | None = "srgb",
    neutral: Sequence[int] | None = None,
    exposure_patch: int | str = NEUTRAL_18,
) -> ColourResult:
    """Colour accuracy of a ColorChecker capture (CIEDE2000 against the reference).

    Either ``chart`` (an :class:`~obscura.lab.charts.base.Chart` from ``colorchecker_chart``: its ROIs,
    names and D50 Lab reference) or ``rois`` + ``reference`` ((N, 3) in ``reference_space``: "lab" (D50),
    "srgb" (encoded) or "linear_srgb"; or a mapping with a "lab" entry). ``image``: an Image, or a
    (3, H, W) tensor/array encoded as ``encoding`` ("srgb" or "linear"). ``neutral``: indices of the
    grey patches (default: the names starting with white/neutral/black, or the last 6 of 24).
    """
    if chart is not None:
        if rois is not None or reference is not None:
            raise InvalidParameter("give either chart or rois + reference, not both")
        rois, reference, names = chart.rois, chart.reference, chart.reference.get("names", tuple(chart.rois))
        reference_space = "lab"
    if rois is None or reference is None:
        raise InvalidParameter("measure_colorchecker needs a chart, or rois and reference")
    ref_lab = _reference_lab(reference, reference_space)
    if names is None:
        names = tuple(rois) if isinstance(rois, Mapping) else tuple(f"patch {i}" for i in range(len(rois)))
    names = tuple(str(n) for n in names)
    lin = patch_means(image, rois, encoding=encoding)
    if lin.shape[1] != 3:
        raise ShapeError(f"image must have 3 channels; got {lin.shape[1]}")
    n = lin.shape[0]
    if ref_lab.shape != (n, 3) or len(names) != n:
        raise ShapeError(f"{n} rois but reference {tuple(ref_lab.shape)} and {len(names)} names: need (N, 3) and N")
    if neutral is None:
        neutral = tuple(i for i, s in enumerate(names) if s.split(" ")[0] in ("white", "neutral", "black"))
        if not neutral and n == 24:
            neutral = tuple(range(18, 24))
    neutral = tuple(int(i) for i in neutral)
    if not neutral or any(not 0 <= i < n for i in neutral):
        raise InvalidParameter(f"neutral must be indices of grey patches in [0, {n}); got {neutral!r}")
    if isinstance(exposure_patch, str):
        if exposure_patch not in names:
            raise InvalidParameter(f"exposure_patch {exposure_patch!r} is not a patch name; names: {', '.join(names)}")
        ei = names.index(exposure_patch)
    else:
        ei = int(exposure_patch)
        if not 0 <= ei < n:
            raise InvalidParameter(f"exposure_patch must be in [0, {n}); got {exposure_patch!r}")

    import colour

    lab = linear_srgb_to_lab(lin)
    y_meas = float(np.dot(lin[ei], SRGB_Y_WEIGHTS))
    y_ref = float(colour.Lab_to_XYZ(ref_lab[ei], _d50_xy())[1])
    if y_meas <= 0:
        raise InvalidParameter(f"the exposure patch {names[ei]!r} measures Y = {y_meas:.3g} ≤ 0: cannot normalise")
    scale = y_ref / y_meas
    lab_n = linear_srgb_to_lab(lin * scale)
    c_ref = _chroma(ref_lab)
    chromatic = [i for i in range(n) if i not in neutral]
    sat = 100.0 * float(_chroma(lab_n)[chromatic].mean() / c_ref[chromatic].mean()) if chromatic else math.nan
    wb = float(np.hypot(*(lab_n[list(neutral), 1:] - ref_lab[list(neutral), 1:]).T).mean())
    cct, duv = _cct_duv(lin[list(neutral)].mean(axis=0))
    return ColourResult(
        names=names,
        measured_lab=lab,
        reference_lab=ref_lab,
        measured_linear=lin,
        delta_e00=delta_e00(lab, ref_lab),
        delta_e00_normalized=delta_e00(lab_n, ref_lab),
        delta_c=_chroma(lab) - c_ref,
        delta_c_normalized=_chroma(lab_n) - c_ref,
        exposure_scale=scale,
        neutral=neutral,
        wb_error=wb,
        saturation_pct=sat,
        cct_k=cct,
        duv=duv,
    )
