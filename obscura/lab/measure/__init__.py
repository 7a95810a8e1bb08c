"""Measurements on captures of charts (lazy re-exports)."""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    **{name: "obscura.lab.measure.sfr" for name in ("SFRResult", "esfr", "mtf50", "mtf50p")},
    **{name: "obscura.lab.measure.texture" for name in ("TextureResult", "dead_leaves_mtf", "acutance")},
    **{
        name: "obscura.lab.measure.noise"
        for name in (
            "SNRResult",
            "PatchNoise",
            "VisualNoiseResult",
            "ViewingCondition",
            "patch_snr",
            "measure_snr",
            "visual_noise_iso15739",
        )
    },
    **{name: "obscura.lab.measure.colour" for name in ("ColourResult", "measure_colorchecker")},
    **{name: "obscura.lab.measure.tone" for name in ("ToneResult", "ExposureResult", "measure_tone", "exposure_error")},
    **{
        name: "obscura.lab.measure.detect"
        for name in ("ColorCheckerDetection", "SlantedEdge", "detect_colorchecker", "find_slanted_edges")
    },
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
