"""Texture MTF on a dead-leaves chart and CPIQ acutance.

Dead-leaves texture MTF (Cao, Guichard & Hornung 2010, "Dead leaves model for measuring texture
quality on a digital camera", Proc. SPIE 7537), in the "intrinsic" form of McElvain et al. 2010
("Texture-based measurement of spatial frequency response using the dead leaves target", Proc. SPIE
7537): the radially averaged power spectrum of the windowed capture, minus the noise power spectrum
measured on a uniform grey patch, divided by the power spectrum of the ideal chart, square-rooted:

    MTF(f) = sqrt( (P_capture(f) − P_noise(f)) / P_chart(f) )

Acutance (CPIQ, IEEE 1858-2016; ISO 19567-2 texture acutance; Baxter et al. 2012): the MTF weighted
by the contrast sensitivity function a·ν^c·e^(−bν)/K (a = 75, b = 0.2, c = 0.8, K = 34.05, ν in
cycles/degree) over 0 … Nyquist for a viewing condition, normalised by the CSF's own integral.

This measures images rather than being a pipeline stage, so it works in numpy (float64).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from obscura.core.errors import InvalidParameter, ShapeError
from obscura.core.registry import Registry
from obscura.lab.measure.noise import (
    ViewingCondition,
    as_planes,
    csf_luminance,
    luminance,
    viewing_condition,
)
from obscura.lab.measure.sfr import mtf50

__all__ = [
    "TextureResult",
    "AcutanceResult",
    "dead_leaves_mtf",
    "radial_power_spectrum",
    "acutance",
    "PSD_WINDOWS",
]

MIN_SIZE = 32
PSD_WINDOWS = Registry("power spectrum window")


@PSD_WINDOWS.register("hann")
def _window_hann(n: int) -> np.ndarray:
    """Hann window (von Hann; Blackman & Tukey 1958), symmetric."""
    return np.hanning(n)


@PSD_WINDOWS.register("none")
def _window_none(n: int) -> np.ndarray:
    """Rectangular window: for periodic (wrapped) test images only."""
    return np.ones(n)


def _plane(x: Any, name: str, encoding: str | None) -> np.ndarray:
    p = as_planes(x, encoding=encoding, name=name)
    if p.shape[0] not in (1, 3):
        raise ShapeError(f"{name} must be (H, W) or (3, H, W); got {tuple(p.shape)}")
    lum = luminance(p)
    if lum.shape[0] < MIN_SIZE or lum.shape[1] < MIN_SIZE:
        raise ShapeError(f"{name} must be at least {MIN_SIZE}×{MIN_SIZE} pixels; got {tuple(p.shape)}")
    return lum


def radial_power_spectrum(plane: np.ndarray, *, window: str = "hann") -> tuple[np.ndarray, np.ndarray]:
    """Radially averaged power spectral density of an (H, W) plane, mean removed, windowed.

    Normalised per pixel (|FFT|² / Σw²), so white noise of variance σ² gives σ² at every frequency
    whatever the plane's size. Bins are 1 / min(H, W) wide, from the first non-zero one up to Nyquist
    (0.5 cycles/pixel); each bin's frequency is the mean radius of the FFT samples in it.
    """
    x = np.asarray(plane, dtype=np.float64)
    if x.ndim != 2 or min(x.shape) < MIN_SIZE:
        raise ShapeError(f"plane must be (H, W) with sides ≥ {MIN_SIZE}; got {tuple(x.shape)}")
    h, w = x.shape
    wf = PSD_WINDOWS.get(window)
    win = np.outer(wf(h), wf(w))
    xw = (x - x.mean()) * win
    p = np.abs(np.fft.fft2(xw)) ** 2 / float((win * win).sum())
    f = np.hypot(np.fft.fftfreq(h)[:, None], np.fft.fftfreq(w)[None, :])
    df = 1.0 / min(h, w)
    k = np.rint(f / df).astype(np.int64)
    nb = math.floor(0.5 / df)
    sel = (k >= 1) & (k <= nb)
    counts = np.bincount(k[sel], minlength=nb + 1)[1:]
    psd = np.bincount(k[sel], weights=p[sel], minlength=nb + 1)[1:] / np.maximum(counts, 1)
    freq = np.bincount(k[sel], weights=f[sel], minlength=nb + 1)[1:] / np.maximum(counts, 1)
    return freq, psd


def _running_mean(p: np.ndarray, n: int) -> np.ndarray:
    """Centred running mean over ``n`` bins (shrinking at the ends): a noise spectrum varies slowly."""
    if n == 1:
        return p
    c = np.concatenate([[0.0], np.cumsum(p)])
    i = np.arange(p.size)
    lo = np.clip(i - n // 2, 0, p.size)
    hi = np.clip(i + n // 2 + 1, 0, p.size)
    return (c[hi] - c[lo]) / (hi - lo)


def _spectrum(x: Any, name: str, window: str, encoding: str | None) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(x, tuple) and len(x) == 2:
        f, p = (np.asarray(v, dtype=np.float64) for v in x)
        if f.ndim != 1 or f.shape != p.shape or f.size < 2 or np.any(np.diff(f) <= 0):
            raise ShapeError(f"{name} as (freq, psd) must be two 1-D arrays of one length, freq increasing")
        return f, p
    return radial_power_spectrum(_plane(x, name, encoding), window=window)


@dataclass(frozen=True, eq=False)
class AcutanceResult:
    """CPIQ acutance of an MTF for a viewing condition (1 = a perfect system)."""

    acutance: float
    pixels_per_degree: float
    viewing: ViewingCondition

    def to_dict(self) -> dict[str, Any]:
        return {
            "acutance": self.acutance,
            "pixels_per_degree": self.pixels_per_degree,
            "viewing": self.viewing.to_dict(),
        }


def acutance(
    freq: np.ndarray,
    mtf: np.ndarray,
    *,
    viewing: str | ViewingCondition | tuple[float, float] = "monitor_100pct",
    image_height_px: int,
) -> AcutanceResult:
    """CPIQ acutance: ∫ MTF(ν)·CSF(ν) dν / ∫ CSF(ν) dν over 0 … Nyquist in cycles/degree (IEEE 1858-2016).

    ``freq`` in cycles/pixel with ``mtf`` (MTF(0) = 1 is assumed below the first sample);
    ``image_height_px`` is the full image's height (for print-size viewing conditions).
    """
    f = np.asarray(freq, dtype=np.float64)
    m = np.asarray(mtf, dtype=np.float64)
    if f.ndim != 1 or f.shape != m.shape or f.size < 2:
        raise ShapeError(f"freq and mtf must be 1-D arrays of one length ≥ 2; got {f.shape} and {m.shape}")
    view = viewing_condition(viewing)
    ppd = view.pixels_per_degree(image_height_px)
    nu = np.linspace(0.0, 0.5 * ppd, 2049)
    mt = np.interp(nu / ppd, np.concatenate([[0.0], f]), np.concatenate([[1.0], m]))
    csf = csf_luminance(nu)
    value = float(np.trapezoid(mt * csf, nu) / np.trapezoid(csf, nu))
    return AcutanceResult(acutance=value, pixels_per_degree=ppd, viewing=view)


@dataclass(frozen=True, eq=False)
class TextureResult:
    """Dead-leaves texture MTF: ``freq`` (cycles/pixel, up to Nyquist), ``mtf``, ``mtf50``, acutance."""

    freq: np.ndarray
    mtf: np.ndarray
    mtf50: float
    acutance: float
    pixels_per_degree: float
    viewing: ViewingCondition
    noise_subtracted: bool

    def mtf_at(self, f: float) -> float:
        """MTF at ``f`` cycles/pixel (linear interpolation)."""
        if not (0.0 <= f <= float(self.freq[-1])):
            raise InvalidParameter(f"frequency must be in [0, {float(self.freq[-1]):.3g}] cycles/pixel; got {f!r}")
        return float(np.interp(f, np.concatenate([[0.0], self.freq]), np.concatenate([[1.0], self.mtf])))

    def to_dict(self) -> dict[str, Any]:
        return {
            "freq": self.freq.tolist(),
            "texture_mtf": self.mtf.tolist(),
            "texture_mtf50": self.mtf50,
            "texture_acutance": self.acutance,
            "pixels_per_degree": self.pixels_per_degree,
            "viewing": self.viewing.to_dict(),
            "noise_subtracted": self.noise_subtracted,
        }


def dead_leaves_mtf(
    roi: Any,
    reference: Any,
    *,
    noise: Any = None,
    window: str = "hann",
    encoding: str | None = "linear",
    normalize: bool = False,
    noise_smooth: int = 9,
    viewing: str | ViewingCondition | tuple[float, float] = "monitor_100pct",
    image_height_px: int | None = None,
) -> TextureResult:
    """Texture MTF of a dead-leaves capture (Cao et al. 2010; McElvain et al. 2010, noise subtracted).

    ``roi``: the captured dead-leaves region, (H, W) or (3, H, W) (BT.709 luminance of linear RGB);
    ``reference``: the ideal chart over the same region, in the same units (an image of any size, or its
    radial spectrum ``(freq, psd)``); ``noise``: a uniform grey patch of the same capture (or its
    ``(freq, psd)``) whose power spectrum is subtracted. ``normalize`` divides the MTF by its mean below
    0.02 cycles/pixel (for a capture whose contrast differs from the reference's); ``noise_smooth``
    the running-mean width (bins) applied to the noise spectrum before subtraction. ``encoding``: how
    ``roi``, ``reference`` and ``noise`` are encoded ("linear" or "srgb").
    """
    if isinstance(noise_smooth, bool) or not isinstance(noise_smooth, int) or noise_smooth < 1 or noise_smooth % 2 == 0:
        raise InvalidParameter(f"noise_smooth must be an odd number of bins ≥ 1; got {noise_smooth!r}")
    if not isinstance(normalize, bool):
        raise InvalidParameter(f"normalize must be True or False; got {normalize!r}")
    PSD_WINDOWS.get(window)
    lum = _plane(roi, "roi", encoding)
    freq, p_meas = radial_power_spectrum(lum, window=window)
    rf, rp = _spectrum(reference, "reference", window, encoding)
    p_ref = np.interp(freq, rf, rp)
    if np.any(p_ref <= 0):
        raise InvalidParameter("the reference has no power at some frequencies: is it a dead-leaves chart?")
    if noise is not None:
        nf, npsd = _spectrum(noise, "noise", window, encoding)
        npsd = _running_mean(npsd, noise_smooth)
        p_meas = p_meas - np.interp(freq, nf, npsd)
    mtf = np.sqrt(np.clip(p_meas / p_ref, 0.0, None))
    if normalize:
        low = freq <= 0.02
        if not low.any():
            low = np.arange(freq.size) < 2
        mtf = mtf / float(mtf[low].mean())
    h = int(image_height_px) if image_height_px is not None else int(lum.shape[0])
    acu = acutance(freq, mtf, viewing=viewing, image_height_px=h)
    return TextureResult(
        freq=freq,
        mtf=mtf,
        mtf50=mtf50(freq, mtf),
        acutance=acu.acutance,
        pixels_per_degree=acu.pixels_per_degree,
        viewing=acu.viewing,
        noise_subtracted=noise is not None,
    )
