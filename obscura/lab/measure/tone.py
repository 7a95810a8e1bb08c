"""Exposure and tone: the OECF of a step chart, the exposure error, and dynamic range at SNR thresholds.

OECF (ISO 14524:2009): the mean output of each patch against the log of its scene exposure.
Dynamic range (ISO 15739:2013 §7; DXOMARK's "SNR = 1" landscape DR): the span in stops from the
brightest patch that is not saturated to the exposure where the patch SNR (mean / σ) falls to a
threshold, found by linear interpolation of log2 SNR against log2 exposure between neighbouring
patches. Thresholds 1 (the noise floor), 10 (acceptable) and 32 (excellent) as in ISO 15739.

This measures images rather than being a pipeline stage, so it works in numpy (float64).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from obscura.core.errors import InvalidParameter, ShapeError
from obscura.lab.measure.noise import as_planes, crop, luminance, plane_stats

__all__ = ["ToneResult", "ExposureResult", "measure_tone", "dynamic_range", "exposure_error"]

DR_THRESHOLDS = (1.0, 10.0, 32.0)


@dataclass(frozen=True, eq=False)
class ToneResult:
    """Step-chart tone and noise, patches in the order given.

    ``log2_exposure``, ``mean``, ``std``, ``snr`` (mean / σ), ``saturated`` (bool) are (N,) arrays;
    ``dynamic_range`` maps each SNR threshold to stops (nan when even the brightest usable patch is below
    it); ``dr_limited[t]`` is True when every usable patch reaches the threshold, so the chart's range,
    not the camera, bounds the value. ``brightest`` is the index of the brightest unsaturated patch.
    """

    names: tuple[str, ...]
    log2_exposure: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    snr: np.ndarray
    saturated: np.ndarray
    brightest: int
    dynamic_range: dict[float, float]
    dr_limited: dict[float, bool]

    @property
    def oecf(self) -> tuple[np.ndarray, np.ndarray]:
        """(log2 exposure, mean output) sorted by exposure."""
        o = np.argsort(self.log2_exposure)
        return self.log2_exposure[o], self.mean[o]

    def to_dict(self) -> dict[str, Any]:
        return {
            "names": list(self.names),
            "log2_exposure": self.log2_exposure.tolist(),
            "mean": self.mean.tolist(),
            "std": self.std.tolist(),
            "snr": self.snr.tolist(),
            "saturated": [bool(s) for s in self.saturated],
            "brightest": self.brightest,
            "dynamic_range": {f"snr_{t:g}": v for t, v in self.dynamic_range.items()},
            "dr_limited": {f"snr_{t:g}": v for t, v in self.dr_limited.items()},
        }


def dynamic_range(
    log2_exposure: np.ndarray, snr: np.ndarray, saturated: np.ndarray, threshold: float
) -> tuple[float, bool, int]:
    """Stops from the brightest unsaturated patch down to where SNR crosses ``threshold``.

    Returns (stops, limited, brightest index). Walking down from the brightest usable patch, the first
    patch below the threshold and the one above it are interpolated linearly in (log2 E, log2 SNR).
    """
    e = np.asarray(log2_exposure, dtype=np.float64)
    s = np.asarray(snr, dtype=np.float64)
    ok = ~np.asarray(saturated, dtype=bool)
    if not ok.any():
        raise InvalidParameter("every patch is saturated: no dynamic range can be measured")
    order = [int(i) for i in np.argsort(-e) if ok[i]]
    top = order[0]
    if not s[top] >= threshold:
        return math.nan, False, top
    prev = top
    for i in order[1:]:
        if not s[i] >= threshold:  # also catches nan / negative SNR of a patch at the noise floor
            hi_e, lo_e = e[prev], e[i]
            ls_hi = math.log2(s[prev])
            ls_lo = math.log2(s[i]) if s[i] > 0 else -math.inf
            lt = math.log2(threshold)
            cross = lo_e if math.isinf(ls_lo) else lo_e + (lt - ls_lo) * (hi_e - lo_e) / (ls_hi - ls_lo)
            return float(e[top] - cross), False, top
        prev = i
    return float(e[top] - e[prev]), True, top


def measure_tone(
    image: Any,
    rois: Mapping[str, Sequence[int]] | Sequence[Sequence[int]],
    exposures: Sequence[float] | np.ndarray,
    *,
    encoding: str | None = "linear",
    clip_level: float | None = None,
    saturation_fraction: float = 0.005,
    thresholds: Sequence[float] = DR_THRESHOLDS,
    detrend: bool = False,
) -> ToneResult:
    """OECF, SNR per patch and dynamic range of a step-chart capture.

    ``rois``: the patches ((x0, y0, x1, y1), a mapping or a list); ``exposures``: their relative scene
    exposures (> 0, e.g. transmittances or 10^−density). The signal is the BT.709 luminance of linear
    RGB, or the single plane of an (H, W) image (e.g. one raw CFA channel). A patch is saturated when
    more than ``saturation_fraction`` of its pixels reach ``clip_level`` (default: the image maximum).
    """
    planes = as_planes(image, encoding=encoding)
    if planes.shape[0] not in (1, 3):
        raise ShapeError(f"image must be (H, W) or (3, H, W); got {tuple(planes.shape)}")
    lum = luminance(planes)[None]
    names = tuple(str(n) for n in rois) if isinstance(rois, Mapping) else tuple(f"patch {i}" for i in range(len(rois)))
    boxes = list(rois.values()) if isinstance(rois, Mapping) else list(rois)
    exp = np.asarray(exposures, dtype=np.float64)
    if exp.shape != (len(boxes),):
        raise ShapeError(f"exposures must be ({len(boxes)},), one per roi; got {tuple(exp.shape)}")
    if len(boxes) < 2:
        raise InvalidParameter(f"a step chart needs at least 2 patches; got {len(boxes)}")
    if not np.all(np.isfinite(exp)) or np.any(exp <= 0):
        raise InvalidParameter("exposures must be finite and > 0 (relative scene exposure)")
    if not 0.0 <= saturation_fraction < 1.0:
        raise InvalidParameter(f"saturation_fraction must be in [0, 1); got {saturation_fraction!r}")
    ts = tuple(float(t) for t in thresholds)
    if not ts or any(not (math.isfinite(t) and t > 0) for t in ts):
        raise InvalidParameter(f"thresholds must be positive SNR values; got {thresholds!r}")
    # the maximum of the raw planes, not of the luminance, is what clips
    clip = float(planes.max()) if clip_level is None else float(clip_level)
    if not math.isfinite(clip):
        raise InvalidParameter(f"clip_level must be finite; got {clip_level!r}")
    means, stds, sat = [], [], []
    for i, b in enumerate(boxes):
        p = crop(lum, b, name=f"roi {names[i]!r}")[0]
        m, s = plane_stats(p, detrend)
        raw = crop(planes, b, name=f"roi {names[i]!r}")
        sat.append(float((raw >= clip).any(axis=0).mean()) > saturation_fraction)
        means.append(m)
        stds.append(s)
    mean, std = np.array(means), np.array(stds)
    with np.errstate(divide="ignore", invalid="ignore"):
        snr = np.where(std > 0, mean / np.where(std > 0, std, 1.0), np.inf)
    saturated = np.array(sat)
    log2e = np.log2(exp)
    drs, lim = {}, {}
    top = 0
    for t in ts:
        drs[t], lim[t], top = dynamic_range(log2e, snr, saturated, t)
    return ToneResult(
        names=names,
        log2_exposure=log2e,
        mean=mean,
        std=std,
        snr=snr,
        saturated=saturated,
        brightest=top,
        dynamic_range=drs,
        dr_limited=lim,
    )


@dataclass(frozen=True, eq=False)
class ExposureResult:
    """Exposure error of a grey patch: ``ev = log2(measured / target)`` (positive: over-exposed)."""

    ev: float
    measured: float
    target: float

    def to_dict(self) -> dict[str, Any]:
        return {"exposure_error_ev": self.ev, "measured": self.measured, "target": self.target}


def exposure_error(
    image: Any, roi: Sequence[int], *, target: float = 0.18, encoding: str | None = "srgb"
) -> ExposureResult:
    """Exposure error in EV of the 18 % grey patch ``roi``: log2 of its mean linear luminance over ``target``."""
    if isinstance(target, bool) or not isinstance(target, (int, float)) or not (math.isfinite(target) and target > 0):
        raise InvalidParameter(f"target must be a positive linear luminance; got {target!r}")
    planes = as_planes(image, encoding=encoding)
    if planes.shape[0] not in (1, 3):
        raise ShapeError(f"image must be (H, W) or (3, H, W); got {tuple(planes.shape)}")
    y = float(luminance(crop(planes, roi, min_size=1)).mean())
    if y <= 0:
        raise InvalidParameter(f"the grey patch measures {y:.3g} ≤ 0: no exposure error can be computed")
    return ExposureResult(ev=math.log2(y / target), measured=y, target=float(target))
