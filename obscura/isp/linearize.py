"""Linearization: raw sensor codes → normalized linear signal (black 0, white 1).

DNG 1.4 §5 (LinearizationTable, BlackLevel, WhiteLevel): the linearization table maps each stored
code to a linear value first; the black level of each CFA site is then subtracted and the result is
divided by ``white_level − black``.
"""

from __future__ import annotations

import torch

from obscura.core.cfa import cfa_period
from obscura.core.errors import InvalidParameter, ShapeError
from obscura.core.types import RawFrame

__all__ = ["linearize", "apply_linearization_table"]


def apply_linearization_table(x: torch.Tensor, table: tuple[int, ...] | list[int] | torch.Tensor) -> torch.Tensor:
    """Map codes through a DNG LinearizationTable (codes past its end take the last entry).

    Non-integer inputs are rounded to the nearest code; returns float32.
    """
    t = torch.as_tensor(table, dtype=torch.float32, device=x.device).reshape(-1)
    if t.numel() == 0:
        raise InvalidParameter("linearization_table is empty")
    if not bool(torch.isfinite(t).all()):
        raise InvalidParameter("linearization_table holds NaN or infinite values")
    if x.dtype.is_floating_point:
        idx = torch.nan_to_num(x, nan=0.0).round().clamp(0, t.numel() - 1).long()
    else:
        idx = x.long().clamp(0, t.numel() - 1)
    return t[idx]


def _tile_view(x: torch.Tensor, n: int) -> torch.Tensor:
    """(..., H, W) → (..., H/n, n, W/n, n) view (H and W multiples of n)."""
    *lead, h, w = x.shape
    return x.reshape(*lead, h // n, n, w // n, n)


def linearize(raw: RawFrame) -> RawFrame:
    """Raw codes → float32 signal with black 0 and white 1 per CFA site (DNG 1.4 §5).

    ``meta.black_level`` has 1 value, one per site of the CFA tile in reading order (4 or 16; 4 values
    for a Quad Bayer tile apply to its 2×2 Bayer parent), or for a LinearRaw frame (``cfa == ""``)
    1 value or 3 (one per plane); 4 or 16 values on a LinearRaw frame repeat over a 2×2 or 4×4 tile
    (DNG BlackLevelRepeatDim). Negative values (noise below black) and values above 1 are kept, not
    clipped: later stages need the unbiased noise and the highlight headroom. The returned metadata have
    ``black_level`` all 0, ``white_level`` 1.0 and no linearization table.
    """
    if not isinstance(raw, RawFrame):
        raise ShapeError(f"linearize expects a RawFrame; got {type(raw).__name__}")
    meta = raw.meta
    x = raw.data
    if meta.linearization_table is not None:
        x = apply_linearization_table(x, meta.linearization_table)
    else:
        x = x.to(torch.float32)
    black = [float(b) for b in meta.black_level]
    white = float(meta.white_level)
    if not all(map(_finite, [*black, white])):
        raise InvalidParameter(f"black_level and white_level must be finite; got {meta.black_level}, {white}")
    if any(white <= b for b in black):
        raise InvalidParameter(f"white_level ({white}) must exceed every black level; got black_level {tuple(black)}")

    if meta.cfa == "" and len(black) == 3:
        b = torch.tensor(black, dtype=torch.float32, device=x.device)[:, None, None]
        out = (x - b) / (white - b)
    else:
        n = 1 if len(black) == 1 else (cfa_period(meta.cfa) if meta.cfa else (2 if len(black) == 4 else 4))
        if meta.cfa and n == 4 and len(black) == 4:  # Quad Bayer: values of the 2×2 parent sites
            black = [black[(r // 2) * 2 + (c // 2)] for r in range(4) for c in range(4)]
        if len(black) != n * n:
            raise ShapeError(
                f"black_level must have 1 or {n * n} values for CFA {meta.cfa!r}; got {len(meta.black_level)}"
            )
        h, w = x.shape[-2:]
        if h % n or w % n:
            raise ShapeError(f"data sides must be multiples of {n} for a per-site black level; got {tuple(x.shape)}")
        # (x − b)·s = x·s − b·s with b and s as (n, W) row patterns broadcast over (H/n, n, W): one fused pass
        b = torch.tensor(black, dtype=torch.float64, device=x.device).reshape(n, n).repeat(1, w // n)
        s = 1.0 / (white - b)
        xs = x.reshape(*x.shape[:-2], h // n, n, w)
        out = torch.addcmul((-b * s).to(torch.float32), xs, s.to(torch.float32)).reshape(x.shape)
    new_meta = meta.replace(black_level=(0.0,) * len(meta.black_level), white_level=1.0, linearization_table=None)
    return RawFrame(out, new_meta)


def _finite(v: float) -> bool:
    return v == v and abs(v) != float("inf")
