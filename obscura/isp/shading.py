"""Lens shading (vignetting and colour shading) correction on the raw mosaic.

- ``"gain_map"``: apply the DNG GainMap opcodes (OpcodeList2, DNG 1.4 §6) that the camera wrote;
- ``"flat_field"``: divide by a flat-field capture (a uniformly lit, defocused white target): per CFA
  site the flat is block-averaged to a coarse grid (which removes its noise and texture) and
  interpolated back bilinearly (extrapolating linearly to the edges); the gain of each site is the
  maximum of its colour channel over the smoothed flat divided by the smoothed flat, so the brightest
  point keeps its level and the relative colour of the channels is left to white balance
  (classic flat-fielding, e.g. Howell 2006, *Handbook of CCD Astronomy* §4.5).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.nn import functional as F  # noqa: N812

from obscura.core.cfa import cfa_period, channel_of_sites
from obscura.core.errors import InvalidParameter, ShapeError
from obscura.core.registry import Registry
from obscura.core.types import DngOpcode
from obscura.isp.opcodes import apply_opcodes

__all__ = ["SHADING", "correct_shading", "shading_gain_map", "shading_flat_field", "flat_field_gains"]

SHADING = Registry("shading")


def _check_mosaic(mosaic: torch.Tensor, cfa: str, name: str = "mosaic") -> tuple[torch.Tensor, int]:
    if not isinstance(mosaic, torch.Tensor) or mosaic.ndim != 2:
        shape = tuple(mosaic.shape) if isinstance(mosaic, torch.Tensor) else type(mosaic).__name__
        raise ShapeError(f"{name} must be a (H, W) tensor; got {shape}")
    n = cfa_period(cfa)
    h, w = mosaic.shape
    if h % n or w % n or h < 2 * n or w < 2 * n:
        raise ShapeError(f"{name} must be (H, W) with sides multiples of {n} for CFA {cfa}; got {(h, w)}")
    return (mosaic if mosaic.dtype.is_floating_point else mosaic.to(torch.float32)), n


@SHADING.register("gain_map")
def shading_gain_map(mosaic: torch.Tensor, *, cfa: str, opcodes: Sequence[DngOpcode] = ()) -> torch.Tensor:
    """Apply the GainMap opcodes among ``opcodes`` (others are ignored here) to a normalized mosaic."""
    x, _ = _check_mosaic(mosaic, cfa)
    maps = [op for op in opcodes if isinstance(op, DngOpcode) and op.name == "GainMap"]
    return apply_opcodes(x, maps, cfa=cfa)


def _lerp_matrix(n_out: int, n_grid: int, *, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """(n_out, n_grid) weights: linear interpolation between block centres, linear extrapolation beyond."""
    if n_grid == 1:
        return torch.ones(n_out, 1, dtype=dtype, device=device)
    block = n_out / n_grid
    pos = (torch.arange(n_out, dtype=torch.float64, device=device) + 0.5) / block - 0.5  # in block-centre units
    i0 = pos.floor().clamp(0, n_grid - 2)
    t = pos - i0
    i0 = i0.long()
    m = torch.zeros(n_out, n_grid, dtype=torch.float64, device=device)
    m.scatter_(1, i0[:, None], (1 - t)[:, None])
    m.scatter_add_(1, (i0 + 1)[:, None], t[:, None])
    return m.to(dtype)


def flat_field_gains(flat: torch.Tensor, *, cfa: str, grid: int = 32) -> torch.Tensor:
    """(H, W) gains that flatten ``flat``: per CFA channel, max(smoothed flat) / smoothed flat."""
    f, n = _check_mosaic(flat, cfa, "flat")
    if not isinstance(grid, int) or grid < 1:
        raise InvalidParameter(f"grid must be a positive integer (blocks along the long side); got {grid!r}")
    if not bool(torch.isfinite(f).all()):
        raise InvalidParameter("flat holds NaN or infinite values")
    h, w = f.shape
    hs, ws = h // n, w // n
    gl = min(grid, max(hs, ws))
    gv = max(1, min(hs, round(gl * hs / max(hs, ws))))
    gh = max(1, min(ws, round(gl * ws / max(hs, ws))))
    planes = f.reshape(hs, n, ws, n).permute(1, 3, 0, 2).reshape(n * n, hs, ws)
    coarse = F.adaptive_avg_pool2d(planes[None].to(torch.float64), (gv, gh))[0]  # (n², gv, gh)
    av = _lerp_matrix(hs, gv, dtype=torch.float64, device=f.device)
    ah = _lerp_matrix(ws, gh, dtype=torch.float64, device=f.device)
    smooth = av @ coarse @ ah.T  # (n², hs, ws)
    if bool((smooth <= 0).any()):
        raise InvalidParameter("the flat field must be positive everywhere (after black subtraction); got values ≤ 0")
    channels = torch.tensor(channel_of_sites(cfa), device=f.device)
    peak = torch.stack([smooth[channels == channels[s]].amax() for s in range(n * n)])
    gains = (peak[:, None, None] / smooth).to(f.dtype)
    return gains.reshape(n, n, hs, ws).permute(2, 0, 3, 1).reshape(h, w)


@SHADING.register("flat_field")
def shading_flat_field(
    mosaic: torch.Tensor, *, cfa: str, flat: torch.Tensor | None = None, grid: int = 32
) -> torch.Tensor:
    """Divide by a flat-field capture (same size, CFA and normalization as ``mosaic``); see module docstring."""
    x, _ = _check_mosaic(mosaic, cfa)
    if flat is None:
        raise InvalidParameter("shading method 'flat_field' needs flat=<a (H, W) flat-field mosaic>")
    if not isinstance(flat, torch.Tensor) or flat.shape != x.shape:
        got = tuple(flat.shape) if isinstance(flat, torch.Tensor) else type(flat).__name__
        raise ShapeError(f"flat must have the mosaic's shape {tuple(x.shape)}; got {got}")
    return x * flat_field_gains(flat.to(device=x.device, dtype=x.dtype), cfa=cfa, grid=grid)


def correct_shading(mosaic: torch.Tensor, *, cfa: str, method: str = "gain_map", **options: object) -> torch.Tensor:
    """Lens-shading dispatcher: ``method`` is one of :data:`SHADING` (``"gain_map"``, ``"flat_field"``)."""
    return SHADING.get(method)(mosaic, cfa=cfa, **options)
