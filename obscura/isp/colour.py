"""Camera RGB → XYZ D50 → working space, following the DNG 1.4 specification, chapter 6
("Mapping Camera Color Space to CIE XYZ Space") and the behaviour of the Adobe DNG SDK.

Notation of the specification:
  CM  ColorMatrix (XYZ → reference camera), CC  CameraCalibration, AB  diag(AnalogBalance),
  FM  ForwardMatrix (white-balanced reference camera → XYZ D50).
  XYZtoCamera = AB · CC · CM, each interpolated between the two calibration illuminants linearly in
  inverse correlated colour temperature (weight clamped to [0, 1]).

The matrices are metadata-sized (3×3), so they are computed in numpy float64; only the final 3×3 is
applied to the pixels, on the tensor's device (obscura.core.colour.apply_matrix).

Colour temperature uses Robertson's (1968) isotemperature lines, as the DNG SDK does; written here
(not colour-science) because the SDK's exact interpolation and its clamping at the table ends
define which matrices a DNG reader picks. Tests compare with colour-science.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from obscura.core.colour import (
    SPACES,
    WHITE_D50,
    XYZ_to_xy,
    apply_matrix,
    bradford_matrix,
    rgb_to_xyz_d50_matrix,
    xy_to_XYZ,
)
from obscura.core.errors import InvalidParameter, ShapeError
from obscura.core.types import Image, RawMeta

__all__ = [
    "ROBERTSON_1968",
    "ILLUMINANT_CCT",
    "ILLUMINANT_XY",
    "xy_to_uv",
    "uv_to_xy",
    "xy_to_cct",
    "xy_to_cct_duv",
    "cct_to_xy",
    "illuminant_cct",
    "illuminant_xy",
    "interpolation_weight",
    "interpolated_matrices",
    "xyz_to_camera",
    "neutral_to_xy",
    "xy_to_neutral",
    "camera_to_xyz_d50",
    "ADAPTATIONS",
    "camera_to_working_matrix",
    "camera_to_working",
]

# Robertson (1968) isotemperature lines (Wyszecki & Stiles 1982, table 1(3.11)):
# reciprocal megakelvin (mired), u, v (CIE 1960 UCS) of the Planckian locus point, slope t of the isotherm.
ROBERTSON_1968 = np.array(
    [
        [0, 0.18006, 0.26352, -0.24341],
        [10, 0.18066, 0.26589, -0.25479],
        [20, 0.18133, 0.26846, -0.26876],
        [30, 0.18208, 0.27119, -0.28539],
        [40, 0.18293, 0.27407, -0.30470],
        [50, 0.18388, 0.27709, -0.32675],
        [60, 0.18494, 0.28021, -0.35156],
        [70, 0.18611, 0.28342, -0.37915],
        [80, 0.18740, 0.28668, -0.40955],
        [90, 0.18880, 0.28997, -0.44278],
        [100, 0.19032, 0.29326, -0.47888],
        [125, 0.19462, 0.30141, -0.58204],
        [150, 0.19962, 0.30921, -0.70471],
        [175, 0.20525, 0.31647, -0.84901],
        [200, 0.21142, 0.32312, -1.0182],
        [225, 0.21807, 0.32909, -1.2168],
        [250, 0.22511, 0.33439, -1.4512],
        [275, 0.23247, 0.33904, -1.7298],
        [300, 0.24010, 0.34308, -2.0637],
        [325, 0.24792, 0.34655, -2.4681],
        [350, 0.25591, 0.34951, -2.9641],
        [375, 0.26400, 0.35200, -3.5814],
        [400, 0.27218, 0.35407, -4.3633],
        [425, 0.28039, 0.35577, -5.3762],
        [450, 0.28863, 0.35714, -6.7262],
        [475, 0.29685, 0.35823, -8.5955],
        [500, 0.30505, 0.35907, -11.324],
        [525, 0.31320, 0.35968, -15.628],
        [550, 0.32129, 0.36011, -23.325],
        [575, 0.32931, 0.36038, -40.770],
        [600, 0.33724, 0.36051, -116.45],
    ]
)

# EXIF LightSource code → the colour temperature the DNG SDK assigns it (dng_camera_profile::IlluminantToTemperature).
ILLUMINANT_CCT: dict[int, float] = {
    17: 2850.0,  # Standard light A
    3: 2850.0,  # Tungsten (incandescent)
    24: 3200.0,  # ISO studio tungsten
    23: 5000.0,  # D50
    20: 5500.0,  # D55
    1: 5500.0,  # Daylight
    9: 5500.0,  # Fine weather
    4: 5500.0,  # Flash
    18: 5500.0,  # Standard light B
    21: 6500.0,  # D65
    19: 6500.0,  # Standard light C
    10: 6500.0,  # Cloudy weather
    22: 7500.0,  # D75
    11: 7500.0,  # Shade
    12: (5700.0 + 7100.0) / 2,  # Daylight fluorescent (D 5700-7100K)
    13: (4600.0 + 5500.0) / 2,  # Day white fluorescent (N 4600-5500K)
    14: (3800.0 + 4500.0) / 2,  # Cool white fluorescent (W 3800-4500K)
    2: (3800.0 + 4500.0) / 2,  # Fluorescent
    15: (3250.0 + 3800.0) / 2,  # White fluorescent (WW 3250-3800K)
    16: (2600.0 + 3250.0) / 2,  # Warm white fluorescent (L 2600-3250K)
}

# CIE 1931 2° chromaticities of the CIE standard illuminants (CIE 15:2004, table T.3); D50 as in the ICC/DNG PCS.
ILLUMINANT_XY: dict[int, tuple[float, float]] = {
    17: (0.44757, 0.40745),  # A
    18: (0.34842, 0.35161),  # B
    19: (0.31006, 0.31616),  # C
    20: (0.33242, 0.34743),  # D55
    21: (0.31271, 0.32902),  # D65
    22: (0.29902, 0.31485),  # D75
    23: WHITE_D50,  # D50
}

_len = np.sqrt(1.0 + ROBERTSON_1968[:, 3] ** 2)
# Unit vector along each isotherm, oriented towards +v (above the locus, towards green): slopes are negative.
_ISO_DIR = -np.stack([1.0 / _len, ROBERTSON_1968[:, 3] / _len], axis=1)
del _len


def xy_to_uv(xy: Sequence[float] | np.ndarray) -> np.ndarray:
    """CIE 1931 xy → CIE 1960 UCS uv."""
    x, y = float(xy[0]), float(xy[1])
    d = -2.0 * x + 12.0 * y + 3.0
    return np.array([4.0 * x / d, 6.0 * y / d])


def uv_to_xy(uv: Sequence[float] | np.ndarray) -> np.ndarray:
    """CIE 1960 UCS uv → CIE 1931 xy."""
    u, v = float(uv[0]), float(uv[1])
    d = 2.0 * u - 8.0 * v + 4.0
    return np.array([3.0 * u / d, 2.0 * v / d])


def _check_xy(xy: Sequence[float] | np.ndarray) -> tuple[float, float]:
    a = np.asarray(xy, dtype=np.float64).reshape(-1)
    if a.shape != (2,) or not np.all(np.isfinite(a)) or a[1] <= 0 or a[0] <= 0 or a.sum() >= 1:
        raise InvalidParameter(f"xy must be a chromaticity (x, y) with x, y > 0 and x + y < 1; got {xy!r}")
    return float(a[0]), float(a[1])


def xy_to_cct_duv(xy: Sequence[float] | np.ndarray) -> tuple[float, float]:
    """Correlated colour temperature (K) and Duv of a chromaticity (Robertson 1968).

    Duv is the signed distance in CIE 1960 uv from the Planckian locus along the isotherm, positive
    above the locus (towards green), as in colour-science. Out of the table (below ~1667 K) the
    result is clamped to its ends, as in the DNG SDK.
    """
    u, v = xy_to_uv(_check_xy(xy))
    t = ROBERTSON_1968
    last_d = 0.0
    for i in range(1, len(t)):
        # signed distance of (u, v) from isotherm i: positive on its high-temperature side
        du, dv = _ISO_DIR[i]
        d = (u - t[i, 1]) * dv - (v - t[i, 2]) * du
        if d <= 0.0 or i == len(t) - 1:
            d = -min(d, 0.0)
            f = 0.0 if i == 1 else d / (last_d + d)
            mired = t[i - 1, 0] * f + t[i, 0] * (1.0 - f)
            pu = t[i - 1, 1] * f + t[i, 1] * (1.0 - f)
            pv = t[i - 1, 2] * f + t[i, 2] * (1.0 - f)
            iso = _ISO_DIR[i - 1] * f + _ISO_DIR[i] * (1.0 - f)
            iso = iso / np.hypot(*iso)
            duv = (u - pu) * iso[0] + (v - pv) * iso[1]
            cct = 1.0e6 / mired if mired > 0 else math.inf
            return cct, float(duv)
        last_d = d
    raise AssertionError("unreachable")  # pragma: no cover


def xy_to_cct(xy: Sequence[float] | np.ndarray) -> float:
    """Correlated colour temperature (K) of a chromaticity (Robertson 1968)."""
    return xy_to_cct_duv(xy)[0]


def cct_to_xy(cct: float, duv: float = 0.0) -> np.ndarray:
    """Chromaticity xy at colour temperature ``cct`` (K) and distance ``duv`` from the Planckian locus.

    Robertson (1968) interpolation between isotemperature lines (the inverse of :func:`xy_to_cct_duv`);
    valid for 1667 K ≤ cct, infinite temperature allowed.
    """
    if not (cct > 0) or not math.isfinite(duv):
        raise InvalidParameter(f"cct must be a positive temperature in kelvin; got {cct!r} (duv {duv!r})")
    t = ROBERTSON_1968
    mired = 1.0e6 / cct
    if mired > t[-1, 0] + 1e-9:
        raise InvalidParameter(f"cct must be at least {1e6 / t[-1, 0]:.0f} K for Robertson (1968); got {cct}")
    i = int(np.searchsorted(t[:, 0], mired, side="right"))
    i = min(max(i, 1), len(t) - 1)
    f = (t[i, 0] - mired) / (t[i, 0] - t[i - 1, 0])  # weight of line i - 1
    u = t[i - 1, 1] * f + t[i, 1] * (1.0 - f)
    v = t[i - 1, 2] * f + t[i, 2] * (1.0 - f)
    iso = _ISO_DIR[i - 1] * f + _ISO_DIR[i] * (1.0 - f)
    iso = iso / np.hypot(*iso)
    return uv_to_xy((u + duv * iso[0], v + duv * iso[1]))


def illuminant_cct(code: int | None) -> float | None:
    """Temperature (K) the DNG SDK gives an EXIF LightSource code; None when unknown (0, 255, ...)."""
    if code is None:
        return None
    return ILLUMINANT_CCT.get(int(code))


def illuminant_xy(code: int) -> np.ndarray:
    """Chromaticity of an EXIF LightSource code: the CIE value for standard illuminants, else the
    Planckian locus at the SDK's temperature (fluorescents, tungsten) or CIE D at it (daylights)."""
    code = int(code)
    if code in ILLUMINANT_XY:
        return np.array(ILLUMINANT_XY[code], dtype=np.float64)
    if code in (1, 4, 9):  # daylight, flash, fine weather ~ D55
        return np.array(ILLUMINANT_XY[20], dtype=np.float64)
    if code == 10:  # cloudy ~ D65
        return np.array(ILLUMINANT_XY[21], dtype=np.float64)
    if code == 11:  # shade ~ D75
        return np.array(ILLUMINANT_XY[22], dtype=np.float64)
    cct = illuminant_cct(code)
    if cct is None:
        raise InvalidParameter(f"unknown EXIF LightSource code {code}; known: {sorted(ILLUMINANT_CCT)}")
    return cct_to_xy(cct)


def _mat(m: Sequence[float] | None, name: str) -> np.ndarray | None:
    if m is None:
        return None
    a = np.asarray(m, dtype=np.float64)
    if a.size != 9 or not np.all(np.isfinite(a)):
        raise ShapeError(f"{name} must hold 9 finite numbers (a 3x3 matrix); got {a.size} values")
    return a.reshape(3, 3)


def interpolation_weight(meta: RawMeta, cct: float) -> float:
    """Weight of the matrices of calibration illuminant 1 at temperature ``cct`` (DNG 1.4 §6):
    linear in inverse temperature between the two calibration temperatures, clamped to [0, 1].
    Single-illuminant profiles (or unknown illuminant temperatures) give 1."""
    if meta.color_matrix2 is None:
        return 1.0
    t1 = illuminant_cct(meta.calibration_illuminant1)
    t2 = illuminant_cct(meta.calibration_illuminant2)
    if t1 is None or t2 is None or t1 == t2:
        return 1.0
    if not cct > 0:
        return 1.0 if t1 > t2 else 0.0
    g = (1.0 / cct - 1.0 / t2) / (1.0 / t1 - 1.0 / t2)
    return float(min(max(g, 0.0), 1.0))


def interpolated_matrices(meta: RawMeta, cct: float) -> dict[str, np.ndarray | None]:
    """ColorMatrix, ForwardMatrix and CameraCalibration interpolated at ``cct`` (DNG 1.4 §6).

    Returns ``{"color_matrix", "forward_matrix" (None when absent), "camera_calibration"}``.
    """
    cm1 = _mat(meta.color_matrix1, "color_matrix1")
    if cm1 is None:
        raise InvalidParameter("the raw has no colour matrix (color_matrix1 is None); cannot map camera colour")
    g = interpolation_weight(meta, cct)
    cm2 = _mat(meta.color_matrix2, "color_matrix2")
    fm1 = _mat(meta.forward_matrix1, "forward_matrix1")
    fm2 = _mat(meta.forward_matrix2, "forward_matrix2")
    cc1 = _mat(meta.camera_calibration1, "camera_calibration1")
    cc2 = _mat(meta.camera_calibration2, "camera_calibration2")

    def lerp(a: np.ndarray | None, b: np.ndarray | None) -> np.ndarray | None:
        if a is None or b is None or g >= 1.0:
            return a if a is not None else b
        if g <= 0.0:
            return b
        return g * a + (1.0 - g) * b

    cm = lerp(cm1, cm2) if cm2 is not None else cm1
    fm = lerp(fm1, fm2)
    cc = lerp(cc1, cc2)
    return {"color_matrix": cm, "forward_matrix": fm, "camera_calibration": np.eye(3) if cc is None else cc}


def _analog_balance(meta: RawMeta) -> np.ndarray:
    if meta.analog_balance is None:
        return np.eye(3)
    ab = np.asarray(meta.analog_balance, dtype=np.float64).reshape(-1)
    if ab.shape != (3,) or not np.all(ab > 0):
        raise ShapeError(f"analog_balance must hold 3 positive numbers; got {meta.analog_balance!r}")
    return np.diag(ab)


def xyz_to_camera(meta: RawMeta, xy: Sequence[float] | np.ndarray) -> np.ndarray:
    """XYZtoCamera = AB · CC · CM with CM and CC interpolated for white chromaticity ``xy`` (DNG 1.4 §6)."""
    m = interpolated_matrices(meta, xy_to_cct(xy))
    return _analog_balance(meta) @ m["camera_calibration"] @ m["color_matrix"]


def _neutral(neutral: Sequence[float] | np.ndarray | torch.Tensor) -> np.ndarray:
    if isinstance(neutral, torch.Tensor):
        neutral = neutral.detach().to("cpu", torch.float64).numpy()
    n = np.asarray(neutral, dtype=np.float64).reshape(-1)
    if n.shape != (3,) or not np.all(np.isfinite(n)) or not np.all(n > 0):
        raise InvalidParameter(f"neutral must be 3 positive camera values (R, G, B); got {neutral!r}")
    return n / n[1]


def neutral_to_xy(
    neutral: Sequence[float] | np.ndarray | torch.Tensor, meta: RawMeta, *, max_iterations: int = 30
) -> np.ndarray:
    """White chromaticity of a camera neutral (e.g. AsShotNeutral), by the DNG 1.4 §6 iteration:
    start at D50, interpolate XYZtoCamera at the current guess's temperature, take the xy of
    inverse(XYZtoCamera) · neutral, repeat until it moves less than 1e-7 (the DNG SDK's test)."""
    n = _neutral(neutral)
    last = np.array(WHITE_D50, dtype=np.float64)
    for i in range(max_iterations):
        xyz = np.linalg.solve(xyz_to_camera(meta, last), n)
        if not np.all(np.isfinite(xyz)) or xyz.sum() <= 0 or xyz[1] <= 0:
            raise InvalidParameter(f"neutral {n.tolist()} maps to no valid white through the camera matrices")
        nxt = XYZ_to_xy(xyz)
        if not (nxt[0] > 0 and nxt[1] > 0 and nxt.sum() < 1):
            raise InvalidParameter(f"neutral {n.tolist()} maps to no valid white chromaticity ({nxt.tolist()})")
        if abs(nxt[0] - last[0]) + abs(nxt[1] - last[1]) < 1e-7:
            return nxt
        if i == max_iterations - 1:  # a two-value oscillation: settle between them, as the SDK does
            nxt = (nxt + last) / 2
        last = nxt
    return last


def xy_to_neutral(xy: Sequence[float] | np.ndarray, meta: RawMeta) -> np.ndarray:
    """Camera neutral (G = 1) of a white chromaticity: XYZtoCamera(xy) · XYZ(xy) (DNG 1.4 §6)."""
    xy = _check_xy(xy)
    n = xyz_to_camera(meta, xy) @ xy_to_XYZ(xy)
    if not np.all(n > 0):
        raise InvalidParameter(f"white xy {xy} gives a non-positive camera neutral {n.tolist()}")
    return n / n[1]


def camera_to_xyz_d50(meta: RawMeta, *, neutral: Sequence[float] | np.ndarray | torch.Tensor) -> np.ndarray:
    """(3, 3) matrix from *white-balanced* camera RGB (camera RGB / neutral, per channel; the neutral
    normalised to G = 1) to CIE XYZ relative to D50, with white (1, 1, 1) ↦ D50 white (Y = 1) exactly.

    DNG 1.4 §6: with forward matrices, CameraToXYZ_D50 = FM · D · inverse(AB · CC) with
    D = inverse(diag(inverse(AB · CC) · CameraNeutral)), FM normalised so FM · 1 = XYZ(D50) (as the SDK);
    without, CameraToXYZ_D50 = Bradford(white → D50) · inverse(XYZtoCamera). Either is then multiplied by
    diag(neutral) so that it takes white-balanced values. A raw without any colour matrix is treated as
    linear sRGB once white balanced.
    """
    n = _neutral(neutral)
    if meta.color_matrix1 is None and meta.forward_matrix1 is None:
        # No colour calibration at all (headerless raws, unknown sensors): white-balanced camera RGB is taken
        # as linear sRGB, as LibRaw does for cameras it has no matrix for.
        return rgb_to_xyz_d50_matrix("linear_srgb").copy()
    white = neutral_to_xy(n, meta)
    m = interpolated_matrices(meta, xy_to_cct(white))
    ab_cc = _analog_balance(meta) @ m["camera_calibration"]
    d50 = xy_to_XYZ(WHITE_D50)
    if m["forward_matrix"] is not None:
        fm = m["forward_matrix"]
        fm = np.diag(d50 / (fm @ np.ones(3))) @ fm
        inv_ab_cc = np.linalg.inv(ab_cc)
        ref_neutral = inv_ab_cc @ n
        cam_to_xyz = fm @ np.diag(1.0 / ref_neutral) @ inv_ab_cc
    else:
        cam_to_xyz = bradford_matrix(tuple(white), WHITE_D50) @ np.linalg.inv(ab_cc @ m["color_matrix"])
    wb = cam_to_xyz @ np.diag(n)
    y = (wb @ np.ones(3))[1]
    if not np.isfinite(y) or y <= 0:
        raise InvalidParameter(f"camera matrices map the neutral {n.tolist()} to a non-positive luminance")
    return wb / y


ADAPTATIONS = ("dng", "libraw")


def camera_to_working_matrix(
    meta: RawMeta,
    *,
    neutral: Sequence[float] | np.ndarray | torch.Tensor,
    space: str = "linear_prophoto",
    adaptation: str = "dng",
) -> np.ndarray:
    """(3, 3) matrix from white-balanced camera RGB to the linear RGB ``space`` (through XYZ D50).

    ``adaptation="dng"`` (default) follows DNG 1.4 §6: the profile is interpolated at the scene white and the
    white is carried to D50 (forward matrix, or Bradford). ``"libraw"`` reproduces dcraw/LibRaw: one fixed
    matrix for D65-balanced camera RGB (the ColorMatrix at D65, forward matrices ignored), the white balance
    gains alone doing the adaptation (von Kries in camera space); use it to compare with LibRaw renderings.
    """
    if space not in SPACES or SPACES[space].transfer != "linear" or space == "camera":
        valid = [k for k, s in SPACES.items() if s.transfer == "linear" and k != "camera"]
        raise InvalidParameter(f"space must be a linear working space, one of {', '.join(valid)}; got {space!r}")
    if adaptation == "libraw":
        _neutral(neutral)  # validated all the same
        if meta.color_matrix1 is not None:
            meta = meta.replace(forward_matrix1=None, forward_matrix2=None)
            neutral = xy_to_neutral(ILLUMINANT_XY[21], meta)
    elif adaptation != "dng":
        raise InvalidParameter(f"adaptation must be one of {', '.join(ADAPTATIONS)}; got {adaptation!r}")
    return np.linalg.solve(rgb_to_xyz_d50_matrix(space), camera_to_xyz_d50(meta, neutral=neutral))


def camera_to_working(
    rgb_wb: torch.Tensor,
    *,
    meta: RawMeta,
    neutral: Sequence[float] | np.ndarray | torch.Tensor,
    space: str = "linear_prophoto",
    adaptation: str = "dng",
) -> Image:
    """White-balanced camera RGB (3, H, W) → Image in the linear working ``space`` (DNG 1.4 §6).

    ``neutral`` is the camera's response to the scene white (what the image was divided by).
    Non-DNG raws carry LibRaw's matrix as ``color_matrix1`` (illuminant D65); the same path applies.
    ``adaptation``: "dng" (DNG 1.4 §6) or "libraw" (LibRaw's fixed D65 matrix); see
    :func:`camera_to_working_matrix`.
    """
    if not isinstance(rgb_wb, torch.Tensor) or rgb_wb.ndim != 3 or rgb_wb.shape[0] != 3:
        shape = tuple(rgb_wb.shape) if isinstance(rgb_wb, torch.Tensor) else type(rgb_wb).__name__
        raise ShapeError(f"rgb_wb must be a (3, H, W) tensor; got {shape}")
    if not rgb_wb.is_floating_point():
        raise ShapeError(f"rgb_wb must be a floating-point tensor; got {rgb_wb.dtype}")
    m = camera_to_working_matrix(meta, neutral=neutral, space=space, adaptation=adaptation)
    return Image(apply_matrix(rgb_wb, m), space, meta)
