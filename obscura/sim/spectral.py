"""The spectral grid and spectral data of the virtual camera: CMFs, illuminants, reflectances.

Every spectrum in :mod:`obscura.sim` is sampled on :data:`WAVELENGTHS` (380–730 nm in 10 nm steps,
the range of the BabelColor ColorChecker data). Spectra are *relative*: a spectrum's luminance factor
is ``Y = Σ ȳ·s / Σ ȳ``, so an equal-energy spectrum has ``Y = 1``, an illuminant from
:func:`illuminant_spd` has ``Y = 1``, and a reflectance ``r`` under it has ``Y`` equal to its
luminance factor. :func:`radiance_scale` turns relative spectra into absolute spectral radiance.

The data come from colour-science (CIE 1931 2° observer, CIE illuminants, BabelColor ColorChecker
reflectances, Mallett & Yuksel 2019 sRGB basis); we only resample them onto our grid.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from obscura.core.errors import CorruptFile, InputError, UnknownMethod

__all__ = [
    "WAVELENGTHS",
    "STEP_NM",
    "ILLUMINANTS",
    "EXIF_LIGHT_SOURCE",
    "COLORCHECKER_NAMES",
    "resample",
    "band_average",
    "cmfs",
    "xyz_from_spectra",
    "luminance_factor",
    "illuminant_spd",
    "illuminant_xy",
    "colorchecker_reflectances",
    "srgb_basis",
    "radiance_scale",
    "read_spectra_csv",
    "PLANCK",
    "LIGHT_SPEED",
]

WAVELENGTHS = np.arange(380.0, 731.0, 10.0)
STEP_NM = 10.0
PLANCK = 6.62607015e-34  # J·s
LIGHT_SPEED = 2.99792458e8  # m/s
_KM = 683.002  # lm/W, maximum luminous efficacy

# Friendly names → colour-science's SDS_ILLUMINANTS keys.
ILLUMINANTS: dict[str, str] = {
    "D65": "D65",
    "D50": "D50",
    "D55": "D55",
    "D75": "D75",
    "A": "A",
    "E": "E",
    **{f"F{i}": f"FL{i}" for i in range(1, 13)},
    **{f"FL{i}": f"FL{i}" for i in range(1, 13)},
    **{k: k for k in ("LED-B1", "LED-B2", "LED-B3", "LED-B4", "LED-B5", "LED-BH1", "LED-RGB1", "LED-V1", "LED-V2")},
    "LED": "LED-B3",  # a phosphor-converted white LED near 4100 K (CIE 015:2018)
}

# EXIF LightSource codes (EXIF 2.32 §4.6.5) used for the DNG CalibrationIlluminant tags; 255 = other.
EXIF_LIGHT_SOURCE: dict[str, int] = {
    "D65": 21,
    "D50": 23,
    "D55": 20,
    "D75": 22,
    "A": 17,
    "F1": 12,  # daylight fluorescent
    "F2": 14,  # cool white fluorescent
    "F7": 12,
    "F11": 15,  # white fluorescent (TL84-like)
}

COLORCHECKER_NAMES = (
    "dark skin",
    "light skin",
    "blue sky",
    "foliage",
    "blue flower",
    "bluish green",
    "orange",
    "purplish blue",
    "moderate red",
    "purple",
    "yellow green",
    "orange yellow",
    "blue",
    "green",
    "red",
    "yellow",
    "magenta",
    "cyan",
    "white 9.5 (.05 D)",
    "neutral 8 (.23 D)",
    "neutral 6.5 (.44 D)",
    "neutral 5 (.70 D)",
    "neutral 3.5 (1.05 D)",
    "black 2 (1.5 D)",
)


def resample(wavelengths: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Values (..., L_in) sampled at ``wavelengths`` resampled onto :data:`WAVELENGTHS` (..., L).

    Interpolation is colour-science's (Sprague for uniform data, linear otherwise); outside the
    measured range the end values are held (CIE 015:2004 §7.2.2.1).
    """
    import colour

    wl = np.asarray(wavelengths, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    if wl.ndim != 1 or v.shape[-1] != wl.size:
        raise InputError(f"spectra must be (..., L) with L = {wl.size} wavelengths; got {v.shape}")
    flat = v.reshape(-1, wl.size)
    shape = colour.SpectralShape(WAVELENGTHS[0], WAVELENGTHS[-1], STEP_NM)
    out = np.empty((flat.shape[0], WAVELENGTHS.size))
    for i, row in enumerate(flat):
        sd = colour.SpectralDistribution(dict(zip(wl, row)))
        out[i] = sd.copy().align(shape).values
    return out.reshape((*v.shape[:-1], WAVELENGTHS.size))


@functools.cache
def _cmfs() -> np.ndarray:
    import colour

    c = colour.MSDS_CMFS["CIE 1931 2 Degree Standard Observer"]
    return np.ascontiguousarray(c.copy().align(colour.SpectralShape(380, 730, 10)).values.T)


def cmfs() -> np.ndarray:
    """CIE 1931 2° colour-matching functions x̄, ȳ, z̄ on :data:`WAVELENGTHS` as (3, L) (CIE 015:2018)."""
    return _cmfs().copy()


def xyz_from_spectra(spectra: np.ndarray) -> np.ndarray:
    """CIE XYZ (..., 3) of relative spectra (..., L), normalized so that ``Y`` is the luminance factor."""
    c = _cmfs()
    return np.asarray(spectra, dtype=np.float64) @ c.T / c[1].sum()


def luminance_factor(spectra: np.ndarray) -> np.ndarray:
    """``Y = Σ ȳ·s / Σ ȳ`` of relative spectra (..., L)."""
    return xyz_from_spectra(spectra)[..., 1]


def band_average(wavelengths: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Values (L_in,) averaged over each 10 nm band of :data:`WAVELENGTHS` (L,).

    Spiky spectra (fluorescent lamps, some LEDs) must be integrated over the band, not point-sampled:
    the spectrum is interpolated to 1 nm (colour-science) and averaged with a triangular window of
    ±10 nm, the weighting that linear interpolation between our samples implies.
    """
    import colour

    sd = colour.SpectralDistribution(dict(zip(np.asarray(wavelengths, float), np.asarray(values, float))))
    fine = sd.copy().align(colour.SpectralShape(WAVELENGTHS[0] - STEP_NM, WAVELENGTHS[-1] + STEP_NM, 1.0))
    v = fine.values
    tri = 1.0 - np.abs(np.arange(-STEP_NM + 1, STEP_NM)) / STEP_NM  # 19 taps
    tri /= tri.sum()
    smooth = np.convolve(v, tri, mode="same")
    idx = (WAVELENGTHS - fine.wavelengths[0]).astype(int)
    return smooth[idx]


@functools.cache
def _illuminant(key: str) -> np.ndarray:
    import colour

    sd = colour.SDS_ILLUMINANTS[key]
    spiky = key.startswith(("FL", "HP"))  # line spectra: integrate over the band; smooth ones: sample
    v = band_average(sd.wavelengths, sd.values) if spiky else resample(sd.wavelengths, sd.values)
    v = np.clip(v, 0.0, None)  # some LED tables dip below 0 by 1e-18
    return v / luminance_factor(v)


def illuminant_spd(name: str) -> np.ndarray:
    """Relative SPD (L,) of a CIE illuminant (D65, D50, A, F1–F12, LED-*, E), scaled to ``Y = 1``."""
    key = ILLUMINANTS.get(name) or ILLUMINANTS.get(str(name).upper())
    if key is None:
        raise UnknownMethod(f"unknown illuminant {name!r}; valid: {', '.join(ILLUMINANTS)}")
    return _illuminant(key).copy()


def illuminant_xy(name: str) -> tuple[float, float]:
    """CIE 1931 chromaticity (x, y) of an illuminant on our grid."""
    X, Y, Z = xyz_from_spectra(illuminant_spd(name))
    s = X + Y + Z
    return float(X / s), float(Y / s)


@functools.cache
def _colorchecker() -> np.ndarray:
    import colour

    sds = colour.SDS_COLOURCHECKERS["BabelColor Average"]
    rows = [sds[n] for n in sds]
    return np.stack([resample(sd.wavelengths, sd.values) for sd in rows])


def colorchecker_reflectances() -> np.ndarray:
    """Spectral reflectances (24, L) of the ColorChecker Classic patches, in :data:`COLORCHECKER_NAMES`
    order (BabelColor average, Pascale 2006, as shipped by colour-science)."""
    return _colorchecker().copy()


@functools.cache
def _srgb_basis() -> np.ndarray:
    import colour

    b = colour.recovery.MSDS_BASIS_FUNCTIONS_sRGB_MALLETT2019
    return resample(b.wavelengths, b.values.T)


def srgb_basis() -> np.ndarray:
    """Mallett & Yuksel (2019) reflectance basis (3, L): ``r·B_r + g·B_g + b·B_b`` is a reflectance
    whose colour under D65 is the linear sRGB triple (r, g, b); bounded in [0, 1] for in-gamut colours."""
    return _srgb_basis().copy()


def radiance_scale(luminance: float) -> float:
    """W·sr⁻¹·m⁻²·nm⁻¹ per unit of relative spectrum, for a scene whose ``Y = 1`` has ``luminance`` cd/m².

    ``L_v = K_m Σ ȳ(λ) L_e(λ) Δλ`` (CIE 015:2018), so ``L_e = s · L_v / (K_m Σ ȳ Δλ)``.
    """
    return float(luminance) / (_KM * _cmfs()[1].sum() * STEP_NM)


def read_spectra_csv(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """A CSV of spectra: first column wavelength (nm), one column per spectrum, one header row.

    Returns ``(wavelengths (L_in,), values (M, L_in))``.
    """
    p = Path(path)
    try:
        data = np.genfromtxt(p, delimiter=",", skip_header=1, dtype=np.float64)
    except (OSError, ValueError) as e:
        raise CorruptFile(f"{p}: cannot read spectra CSV: {e}") from None
    if data.ndim != 2 or data.shape[1] < 2 or not np.all(np.isfinite(data)):
        raise CorruptFile(f"{p}: expected a header row then rows of 'wavelength,value,...' numbers")
    return data[:, 0], np.ascontiguousarray(data[:, 1:].T)
