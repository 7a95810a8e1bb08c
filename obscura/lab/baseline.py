"""Outside baselines to compare obscura with: LibRaw's own rendering, and colour differences.

``libraw_srgb`` is what ``rawpy.postprocess`` gives with the camera white balance, no auto
brightening, sRGB primaries and the sRGB transfer (gamma 2.4, slope 12.92), as float in [0, 1].
LibRaw's ``adjust_maximum_thr`` is set to 0: by default LibRaw replaces the white level by the
data maximum when that exceeds 75 % of it, an image-dependent exposure change that is not colour.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["libraw_srgb", "mean_delta_e00"]


def libraw_srgb(path: str | Path) -> np.ndarray:
    """(H, W, 3) float64 sRGB rendering of ``path`` by LibRaw (rawpy.postprocess)."""
    import rawpy

    with rawpy.imread(str(path)) as r:
        rgb = r.postprocess(
            use_camera_wb=True,
            no_auto_bright=True,
            output_color=rawpy.ColorSpace.sRGB,
            gamma=(2.4, 12.92),
            output_bps=16,
            adjust_maximum_thr=0.0,
        )
    return rgb.astype(np.float64) / 65535.0


def mean_delta_e00(a: np.ndarray, b: np.ndarray) -> float:
    """Mean CIEDE2000 between two (H, W, 3) sRGB-encoded images in [0, 1] (colour-science)."""
    import colour

    lab = [colour.XYZ_to_Lab(colour.sRGB_to_XYZ(np.asarray(x, dtype=np.float64))) for x in (a, b)]
    return float(np.mean(colour.delta_E(lab[0], lab[1], method="CIE 2000")))
