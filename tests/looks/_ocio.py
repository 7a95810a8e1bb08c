"""OpenColorIO as the outside reference for exported .cube files (skips when PyOpenColorIO is missing)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


def ocio_apply(path: str | Path, rgb: np.ndarray) -> np.ndarray:
    """``rgb`` (N, 3) through the .cube at ``path`` by OpenColorIO (FileTransform, tetrahedral), float32."""
    ocio = pytest.importorskip("PyOpenColorIO")
    proc = (
        ocio.Config.CreateRaw()
        .getProcessor(ocio.FileTransform(src=str(path), interpolation=ocio.INTERP_TETRAHEDRAL))
        .getDefaultCPUProcessor()
    )
    out = np.ascontiguousarray(rgb, dtype=np.float32).copy()
    proc.applyRGB(out)
    return out
