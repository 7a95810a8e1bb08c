"""Noise measurements on uniform patches: SNR per patch and ISO 15739 visual noise.

SNR is the patch mean over its standard deviation (per channel and for the BT.709 luminance of linear
RGB), optionally after removing a fitted plane so that shading across the patch does not count as
noise (ISO 15739:2013 §6 recommends a high-pass or plane removal for the same reason).

Visual noise follows ISO 15739:2013 Annex (after Zhang & Wandell 1996, S-CIELAB; Johnson & Fairchild
2003 for the chromatic CSFs): linear sRGB → XYZ → opponent space (A, C1, C2); each channel filtered in
the Fourier domain by its contrast sensitivity function for the viewing condition; back to XYZ (negative
values set to 0) → CIE L*u*v* (D65 white); VN = log10(1 + σ(L*) + 0.852·σ(u*) + 0.323·σ(v*)).

This measures images rather than being a pipeline stage, so it works in numpy (float64); it accepts
:class:`~obscura.core.types.Image`, torch tensors (any device) and numpy arrays.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from obscura.core.errors import InvalidParameter, ShapeError

__all__ = [
    "SNRResult",
    "PatchNoise",
    "VisualNoiseResult",
    "ViewingCondition",
    "VIEWING_CONDITIONS",
    "as_planes",
    "crop",
    "detrend_plane",
    "patch_snr",
    "measure_snr",
    "visual_noise_iso15739",
    "csf_luminance",
    "csf_chrominance",
    "LUMINANCE_WEIGHTS",
    "SRGB_Y_WEIGHTS",
    "plane_stats",
    "srgb_decode",
]

LUMINANCE_WEIGHTS = (0.2126, 0.7152, 0.0722)  # ITU-R BT.709 luminance of linear RGB
SRGB_Y_WEIGHTS = (0.2126729, 0.7151522, 0.0721750)  # Y row of IEC 61966-2-1 linear sRGB → XYZ (D65)
ENCODINGS = ("linear", "srgb")
MIN_PATCH = 4  # pixels per side


# --- input helpers shared by the lab measurements ---------------------------------------------
def srgb_decode(x: np.ndarray) -> np.ndarray:
    """IEC 61966-2-1 decoding, negative values mirrored (as obscura.core.colour.srgb_decode)."""
    a = np.abs(x)
    return np.sign(x) * np.where(a <= 0.04045, a / 12.92, ((a + 0.055) / 1.055) ** 2.4)


def as_planes(x: Any, *, encoding: str | None = "linear", name: str = "image") -> np.ndarray:
    """``x`` as a float64 (C, H, W) numpy array of *linear* values.

    ``x``: an :class:`~obscura.core.types.Image` (its colour space decides; converted to linear sRGB,
    ``encoding`` is ignored), a torch tensor or numpy array of shape (H, W) or (C, H, W), decoded from
    sRGB when ``encoding="srgb"``; ``encoding=None`` keeps the values as they are.
    """
    from obscura.core.types import Image

    if isinstance(x, Image):
        from obscura.core.colour import convert

        if x.space == "camera":
            arr = x.data.detach().to("cpu", dtype=x.data.dtype).double().numpy()
        else:
            arr = convert(x.data.detach().float(), src=x.space, dst="linear_srgb").to("cpu").double().numpy()
        return arr
    if encoding is not None and encoding not in ENCODINGS:
        raise InvalidParameter(f"encoding must be one of {', '.join(ENCODINGS)}; got {encoding!r}")
    try:
        import torch

        if isinstance(x, torch.Tensor):
            if x.is_complex() or x.dtype == torch.bool:
                raise ShapeError(f"{name} must hold real numbers; got {x.dtype}")
            x = x.detach().to("cpu", torch.float64).numpy()
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    if not isinstance(x, np.ndarray):
        raise ShapeError(f"{name} must be an Image, torch.Tensor or numpy array; got {type(x).__name__}")
    if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)) or x.dtype == bool:
        raise ShapeError(f"{name} must hold real numbers; got dtype {x.dtype}")
    if x.ndim == 2:
        x = x[None]
    if x.ndim != 3:
        raise ShapeError(f"{name} must be (H, W) or (C, H, W); got {tuple(x.shape)}")
    arr = x.astype(np.float64)
    if not np.all(np.isfinite(arr)):
        raise InvalidParameter(f"{name} holds non-finite values (nan or inf)")
    return srgb_decode(arr) if encoding == "srgb" else arr


def crop(planes: np.ndarray, roi: Sequence[int], *, name: str = "roi", min_size: int = MIN_PATCH) -> np.ndarray:
    """The (C, h, w) region ``roi = (x0, y0, x1, y1)`` (exclusive ends) of a (C, H, W) array, checked."""
    try:
        x0, y0, x1, y1 = (int(v) for v in roi)
    except (TypeError, ValueError):
        raise InvalidParameter(f"{name} must be (x0, y0, x1, y1); got {roi!r}") from None
    _, h, w = planes.shape
    if not (0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h):
        raise InvalidParameter(f"{name} {(x0, y0, x1, y1)} is not inside the image of size (H, W) = {(h, w)}")
    if x1 - x0 < min_size or y1 - y0 < min_size:
        raise InvalidParameter(f"{name} {(x0, y0, x1, y1)} is smaller than {min_size}×{min_size} pixels")
    return planes[:, y0:y1, x0:x1]


def luminance(planes: np.ndarray) -> np.ndarray:
    """BT.709 luminance (H, W) of (3, H, W) linear RGB; a single plane is returned as it is."""
    if planes.shape[0] == 1:
        return planes[0]
    if planes.shape[0] != 3:
        raise ShapeError(f"luminance needs 1 or 3 channels; got {planes.shape[0]}")
    return np.tensordot(np.asarray(LUMINANCE_WEIGHTS), planes, axes=1)


def detrend_plane(plane: np.ndarray) -> np.ndarray:
    """``plane`` minus its least-squares fit ``a + b·x + c·y``, plus its mean (the mean is kept)."""
    h, w = plane.shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    xx -= xx.mean()
    yy -= yy.mean()
    a = np.stack([np.ones(h * w), xx.ravel(), yy.ravel()], axis=1)
    coef, *_ = np.linalg.lstsq(a, plane.ravel(), rcond=None)
    return plane - coef[1] * xx - coef[2] * yy


# --- SNR ---------------------------------------------------------------------------------------
def _db(snr: float) -> float:
    return 20.0 * math.log10(snr) if snr > 0 and math.isfinite(snr) else (math.inf if snr == math.inf else -math.inf)


@dataclass(frozen=True, eq=False)
class SNRResult:
    """SNR of one uniform patch: ``mean``/``std``/``snr`` per channel (tuples), and of the luminance.

    ``snr = mean / std`` (inf for a noiseless patch), ``snr_db = 20·log10(snr)``. ``std`` uses ``ddof=1``.
    """

    mean: tuple[float, ...]
    std: tuple[float, ...]
    snr: tuple[float, ...]
    snr_db: tuple[float, ...]
    luminance_mean: float
    luminance_std: float
    luminance_snr: float
    luminance_snr_db: float
    pixels: int
    detrended: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "mean": list(self.mean),
            "std": list(self.std),
            "snr": list(self.snr),
            "snr_db": list(self.snr_db),
            "luminance_mean": self.luminance_mean,
            "luminance_std": self.luminance_std,
            "luminance_snr": self.luminance_snr,
            "luminance_snr_db": self.luminance_snr_db,
            "pixels": self.pixels,
            "detrended": self.detrended,
        }


def plane_stats(plane: np.ndarray, detrend: bool) -> tuple[float, float]:
    """Mean and sample standard deviation of ``plane``, after removing a fitted plane when ``detrend``."""
    p = detrend_plane(plane) if detrend else plane
    return float(p.mean()), float(p.std(ddof=1))


def _snr(mean: float, std: float) -> float:
    return math.inf if std == 0 else mean / std


def patch_snr(patch: Any, *, encoding: str | None = "linear", detrend: bool = False) -> SNRResult:
    """SNR of a uniform patch given as (H, W) or (C, H, W) (an Image, tensor or array).

    ``encoding="srgb"`` decodes to linear first; ``detrend`` removes a fitted plane per channel
    (shading is not noise). The luminance is BT.709 for 3 channels, the plane itself for 1.
    """
    p = as_planes(patch, encoding=encoding, name="patch")
    if p.shape[-1] < MIN_PATCH or p.shape[-2] < MIN_PATCH:
        raise ShapeError(f"patch must be at least {MIN_PATCH}×{MIN_PATCH} pixels; got {tuple(p.shape)}")
    if p.shape[0] not in (1, 3):
        raise ShapeError(f"patch must have 1 or 3 channels; got {tuple(p.shape)}")
    stats = [plane_stats(c, detrend) for c in p]
    lm, ls = plane_stats(luminance(p), detrend)
    snrs = tuple(_snr(m, s) for m, s in stats)
    return SNRResult(
        mean=tuple(m for m, _ in stats),
        std=tuple(s for _, s in stats),
        snr=snrs,
        snr_db=tuple(_db(s) for s in snrs),
        luminance_mean=lm,
        luminance_std=ls,
        luminance_snr=_snr(lm, ls),
        luminance_snr_db=_db(_snr(lm, ls)),
        pixels=int(p.shape[-1] * p.shape[-2]),
        detrended=bool(detrend),
    )


@dataclass(frozen=True, eq=False)
class PatchNoise:
    """SNR of named patches of one image: ``names`` and per-patch arrays (N,) of the luminance."""

    names: tuple[str, ...]
    patches: tuple[SNRResult, ...]
    mean: np.ndarray
    std: np.ndarray
    snr: np.ndarray
    snr_db: np.ndarray

    def to_dict(self) -> dict[str, Any]:
        return {
            "names": list(self.names),
            "mean": self.mean.tolist(),
            "std": self.std.tolist(),
            "snr": self.snr.tolist(),
            "snr_db": self.snr_db.tolist(),
            "patches": {n: p.to_dict() for n, p in zip(self.names, self.patches)},
        }


def measure_snr(
    image: Any, rois: Mapping[str, Sequence[int]], *, encoding: str | None = "linear", detrend: bool = False
) -> PatchNoise:
    """SNR of each named region ``rois = {name: (x0, y0, x1, y1)}`` of ``image`` (see :func:`patch_snr`)."""
    if not isinstance(rois, Mapping) or not rois:
        raise InvalidParameter(f"rois must be a non-empty mapping name -> (x0, y0, x1, y1); got {rois!r}")
    planes = as_planes(image, encoding=encoding)
    res = tuple(patch_snr(crop(planes, r, name=f"roi {n!r}"), encoding=None, detrend=detrend) for n, r in rois.items())
    return PatchNoise(
        names=tuple(str(n) for n in rois),
        patches=res,
        mean=np.array([r.luminance_mean for r in res]),
        std=np.array([r.luminance_std for r in res]),
        snr=np.array([r.luminance_snr for r in res]),
        snr_db=np.array([r.luminance_snr_db for r in res]),
    )


# --- viewing conditions and contrast sensitivity ---------------------------------------------------
@dataclass(frozen=True)
class ViewingCondition:
    """How an image is looked at: its displayed height (cm) and the viewing distance (cm).

    ``image_height_cm=None`` with ``pixel_pitch_cm`` set means a 100 % view on a display: each image
    pixel is one display pixel of that pitch, whatever the image size.
    """

    name: str
    distance_cm: float
    image_height_cm: float | None = None
    pixel_pitch_cm: float | None = None

    def __post_init__(self) -> None:
        if not (
            isinstance(self.distance_cm, (int, float)) and math.isfinite(self.distance_cm) and self.distance_cm > 0
        ):
            raise InvalidParameter(f"distance_cm must be a positive number; got {self.distance_cm!r}")
        if (self.image_height_cm is None) == (self.pixel_pitch_cm is None):
            raise InvalidParameter("ViewingCondition needs exactly one of image_height_cm and pixel_pitch_cm")
        v = self.image_height_cm if self.image_height_cm is not None else self.pixel_pitch_cm
        if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
            raise InvalidParameter(f"image_height_cm / pixel_pitch_cm must be a positive number; got {v!r}")

    def pixels_per_degree(self, image_height_px: int) -> float:
        """Image pixels per degree of visual angle at the centre of view."""
        if (
            isinstance(image_height_px, bool)
            or not isinstance(image_height_px, (int, np.integer))
            or image_height_px < 1
        ):
            raise InvalidParameter(f"image_height_px must be a positive integer; got {image_height_px!r}")
        pitch = self.pixel_pitch_cm if self.pixel_pitch_cm is not None else self.image_height_cm / image_height_px
        return 2.0 * self.distance_cm * math.tan(math.radians(0.5)) / pitch

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "distance_cm": self.distance_cm,
            "image_height_cm": self.image_height_cm,
            "pixel_pitch_cm": self.pixel_pitch_cm,
        }


VIEWING_CONDITIONS: dict[str, ViewingCondition] = {
    # 100 % crop on a 24" 1920×1200 monitor (pitch 0.0270 cm) at 60 cm (CPIQ / IEEE 1858 "computer monitor")
    "monitor_100pct": ViewingCondition("monitor_100pct", distance_cm=60.0, pixel_pitch_cm=0.0270),
    # the whole image as a 20"×16" print (16" = 40.64 cm high) viewed from 1 m (CPIQ "large print")
    "print_20x16_1m": ViewingCondition("print_20x16_1m", distance_cm=100.0, image_height_cm=40.64),
    # the whole image on a 6.1" phone held at 30 cm (portrait height ≈ 14 cm)
    "phone_30cm": ViewingCondition("phone_30cm", distance_cm=30.0, image_height_cm=14.0),
}


def viewing_condition(v: str | ViewingCondition | tuple[float, float]) -> ViewingCondition:
    """A ViewingCondition from a preset name, itself, or ``(image_height_cm, distance_cm)``."""
    if isinstance(v, ViewingCondition):
        return v
    if isinstance(v, str):
        if v not in VIEWING_CONDITIONS:
            raise InvalidParameter(f"unknown viewing condition {v!r}; valid: {', '.join(sorted(VIEWING_CONDITIONS))}")
        return VIEWING_CONDITIONS[v]
    if isinstance(v, (tuple, list)) and len(v) == 2:
        h, d = v
        return ViewingCondition(f"{h} cm high at {d} cm", distance_cm=d, image_height_cm=h)
    raise InvalidParameter(
        f"viewing must be a preset name, a ViewingCondition or (image_height_cm, distance_cm); got {v!r}"
    )


# CPIQ / ISO 15739:2013 luminance CSF: a·ν^c·e^(−bν)/K with ν in cycles/degree (peak ≈ 3 at 4 c/deg)
CSF_LUMINANCE_CONSTANTS = {"a": 75.0, "b": 0.2, "c": 0.8, "K": 34.05}
# Johnson & Fairchild (2003) chromatic CSFs a1·e^(b1·ν^c1) + a2·e^(b2·ν^c2), as used by ISO 15739:2013
CSF_CHROMINANCE_CONSTANTS = {
    "rg": (109.1413, -0.0004, 3.4244, 93.5971, -0.0037, 2.1677),
    "by": (7.0328, 0.0000, 4.2582, 40.6910, -0.1039, 1.6487),
}


def csf_luminance(nu: np.ndarray) -> np.ndarray:
    """Luminance contrast sensitivity (CPIQ, IEEE 1858-2016; ISO 15739:2013): a·ν^c·e^(−bν)/K, ν ≥ 0 in c/deg."""
    k = CSF_LUMINANCE_CONSTANTS
    n = np.asarray(nu, dtype=np.float64)
    return k["a"] * np.power(n, k["c"]) * np.exp(-k["b"] * n) / k["K"]


def csf_chrominance(nu: np.ndarray, channel: str) -> np.ndarray:
    """Chromatic CSF (Johnson & Fairchild 2003) for ``channel`` "rg" or "by", normalised to 1 at ν = 0."""
    if channel not in CSF_CHROMINANCE_CONSTANTS:
        raise InvalidParameter(f"channel must be 'rg' or 'by'; got {channel!r}")
    a1, b1, c1, a2, b2, c2 = CSF_CHROMINANCE_CONSTANTS[channel]
    n = np.asarray(nu, dtype=np.float64)
    return (a1 * np.exp(b1 * n**c1) + a2 * np.exp(b2 * n**c2)) / (a1 + a2)


# S-CIELAB opponent transform from XYZ (Zhang & Wandell 1996; Poirson & Wandell 1993), used by ISO 15739
_XYZ_TO_OPP = np.array([[0.279, 0.720, -0.107], [-0.449, 0.290, -0.077], [0.086, -0.590, 0.501]])
_SRGB_TO_XYZ = np.array(  # IEC 61966-2-1 linear sRGB → XYZ (D65)
    [[0.4124564, 0.3575761, 0.1804375], SRGB_Y_WEIGHTS, [0.0193339, 0.1191920, 0.9503041]]
)
_D65_XYZ = np.array([0.95047, 1.0, 1.08883])


def _xyz_to_luv(xyz: np.ndarray) -> np.ndarray:
    """CIE 1976 L*u*v* of (3, ...) XYZ relative to D65 (CIE 15:2004)."""
    x, y, z = xyz
    yr = y / _D65_XYZ[1]
    eps, kappa = 216 / 24389, 24389 / 27
    lum = np.where(yr > eps, 116.0 * np.cbrt(yr) - 16.0, kappa * yr)
    den = x + 15 * y + 3 * z
    safe = np.where(den > 0, den, 1.0)
    up = np.where(den > 0, 4 * x / safe, 0.0)
    vp = np.where(den > 0, 9 * y / safe, 0.0)
    wd = _D65_XYZ[0] + 15 * _D65_XYZ[1] + 3 * _D65_XYZ[2]
    un, vn = 4 * _D65_XYZ[0] / wd, 9 * _D65_XYZ[1] / wd
    return np.stack([lum, 13 * lum * (up - un), 13 * lum * (vp - vn)])


@dataclass(frozen=True, eq=False)
class VisualNoiseResult:
    """ISO 15739:2013 visual noise of a patch: ``vn = log10(1 + σL* + 0.852σu* + 0.323σv*)``."""

    vn: float
    sigma_l: float
    sigma_u: float
    sigma_v: float
    pixels_per_degree: float
    viewing: ViewingCondition

    def to_dict(self) -> dict[str, Any]:
        return {
            "visual_noise": self.vn,
            "sigma_L": self.sigma_l,
            "sigma_u": self.sigma_u,
            "sigma_v": self.sigma_v,
            "pixels_per_degree": self.pixels_per_degree,
            "viewing": self.viewing.to_dict(),
        }


def visual_noise_iso15739(
    patch: Any,
    *,
    encoding: str | None = "srgb",
    viewing: str | ViewingCondition | tuple[float, float] = "monitor_100pct",
    image_height_px: int | None = None,
    white: float = 1.0,
) -> VisualNoiseResult:
    """ISO 15739:2013 visual noise of a uniform (3, H, W) patch of an sRGB image.

    ``encoding``: how the values are encoded ("srgb" display-encoded, "linear"); ``white`` the linear
    value of the display white (Y = 1 after scaling). ``viewing``: preset name, ViewingCondition or
    (image_height_cm, distance_cm); ``image_height_px`` is the full image's height (the patch's by default),
    needed to turn cycles/pixel into cycles/degree for a print-size condition.
    """
    p = as_planes(patch, encoding=encoding, name="patch")
    if p.shape[0] != 3:
        raise ShapeError(f"visual noise needs a (3, H, W) colour patch; got {tuple(p.shape)}")
    if p.shape[1] < 16 or p.shape[2] < 16:
        raise ShapeError(f"patch must be at least 16×16 pixels for visual noise; got {tuple(p.shape)}")
    if not (isinstance(white, (int, float)) and math.isfinite(white) and white > 0):
        raise InvalidParameter(f"white must be a positive number; got {white!r}")
    view = viewing_condition(viewing)
    ppd = view.pixels_per_degree(int(image_height_px) if image_height_px is not None else int(p.shape[1]))
    xyz = np.tensordot(_SRGB_TO_XYZ, p / white, axes=1)
    opp = np.tensordot(_XYZ_TO_OPP, xyz, axes=1)
    h, w = opp.shape[1:]
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.fftfreq(w)[None, :]
    nu = np.hypot(fx, fy) * ppd  # cycles/degree
    filters = (csf_luminance(nu), csf_chrominance(nu, "rg"), csf_chrominance(nu, "by"))
    out = np.empty_like(opp)
    for i, f in enumerate(filters):
        mean = opp[i].mean()
        spec = np.fft.fft2(opp[i] - mean) * f  # DC removed, the mean added back unfiltered
        out[i] = np.real(np.fft.ifft2(spec)) + mean
    xyz_f = np.clip(np.tensordot(np.linalg.inv(_XYZ_TO_OPP), out, axes=1), 0.0, None)
    luv = _xyz_to_luv(xyz_f)
    sl, su, sv = (float(c.std()) for c in luv)
    vn = math.log10(1.0 + sl + 0.852 * su + 0.323 * sv)
    return VisualNoiseResult(vn=vn, sigma_l=sl, sigma_u=su, sigma_v=sv, pixels_per_degree=ppd, viewing=view)
