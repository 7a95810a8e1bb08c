"""Checks at the boundary of the stages, with messages that say what was received."""

from __future__ import annotations

import math
from typing import Any

import torch

from obscura.core.errors import InvalidParameter, ShapeError

__all__ = ["check_image", "check_number"]


def check_image(x: Any, *, name: str = "image", min_size: int = 1, what: str = "") -> torch.Tensor:
    """``x`` must be a floating-point (3, H, W) tensor with H, W ≥ ``min_size``; returns it."""
    if not isinstance(x, torch.Tensor):
        raise ShapeError(f"{name} must be a torch.Tensor; got {type(x).__name__}")
    kind = f"{what} tensor " if what else ""
    if x.ndim != 3 or x.shape[0] != 3 or x.shape[1] < min_size or x.shape[2] < min_size:
        size = f" with H, W ≥ {min_size}" if min_size > 1 else ""
        raise ShapeError(f"{name} must be a {kind}(3, H, W){size}; got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ShapeError(f"{name} must be floating point; got {x.dtype}")
    return x


def check_number(name: str, v: Any, lo: float, hi: float, *, lo_open: bool = False) -> float:
    """``v`` as a finite float in [lo, hi] (or (lo, hi] with ``lo_open``), else InvalidParameter (also for a
    bool, which is not a number here)."""
    if isinstance(v, bool):
        raise InvalidParameter(f"{name} must be a number; got {v!r}")
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise InvalidParameter(f"{name} must be a number; got {v!r}") from None
    ok = math.isfinite(f) and (lo < f if lo_open else lo <= f) and f <= hi
    if not ok:
        interval = f"({lo}, {hi}]" if lo_open else f"[{lo}, {hi}]"
        raise InvalidParameter(f"{name} must be in {interval}; got {v!r}")
    return f
