"""Colour filter array helpers shared by the stages, the simulator and the tests.

A CFA is named by its top-left tile in reading order: ``"RGGB"`` (2×2 Bayer) or a 16-letter
Quad Bayer tile (see :data:`obscura.core.types.QUAD_BAYER_PATTERNS`).
"""

from __future__ import annotations

import torch

from obscura.core.errors import ShapeError
from obscura.core.types import validate_cfa

__all__ = [
    "cfa_period",
    "cfa_index_map",
    "cfa_masks",
    "mosaic_rgb",
    "channel_of_sites",
    "per_site_tensor",
    "bayer_parent",
]

_CHANNEL = {"R": 0, "G": 1, "B": 2}


def cfa_period(cfa: str) -> int:
    """Side of the repeating tile: 2 for Bayer, 4 for Quad Bayer."""
    return 2 if len(validate_cfa(cfa)) == 4 else 4


def channel_of_sites(cfa: str) -> list[int]:
    """Colour channel (0 R, 1 G, 2 B) of each site of the tile, in reading order."""
    return [_CHANNEL[c] for c in validate_cfa(cfa)]


def bayer_parent(cfa: str) -> str:
    """The 2×2 Bayer pattern a Quad Bayer tile is made of (itself for Bayer)."""
    cfa = validate_cfa(cfa)
    if len(cfa) == 4:
        return cfa
    return cfa[0] + cfa[2] + cfa[8] + cfa[10]


def cfa_index_map(cfa: str, height: int, width: int, *, device: torch.device | str | None = None) -> torch.Tensor:
    """(H, W) int64 map of the colour channel (0, 1, 2) at each pixel."""
    n = cfa_period(cfa)
    tile = torch.tensor(channel_of_sites(cfa), dtype=torch.int64, device=device).reshape(n, n)
    reps = (-(-height // n), -(-width // n))
    return tile.repeat(*reps)[:height, :width]


def cfa_masks(
    cfa: str,
    height: int,
    width: int,
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """(3, H, W) masks, 1 where the pixel samples channel R, G or B."""
    idx = cfa_index_map(cfa, height, width, device=device)
    return torch.stack([(idx == c) for c in range(3)]).to(dtype)


def mosaic_rgb(rgb: torch.Tensor, *, cfa: str) -> torch.Tensor:
    """Sample a (3, H, W) image through the CFA: the (H, W) mosaic a sensor would record."""
    if rgb.ndim != 3 or rgb.shape[0] != 3:
        raise ShapeError(f"rgb must be (3, H, W); got {tuple(rgb.shape)}")
    idx = cfa_index_map(cfa, rgb.shape[1], rgb.shape[2], device=rgb.device)
    return torch.gather(rgb, 0, idx[None]).squeeze(0)


def per_site_tensor(
    values: tuple[float, ...] | list[float],
    cfa: str,
    height: int,
    width: int,
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """(H, W) map of a per-CFA-site value (e.g. black level) tiled over the mosaic.

    ``values`` has one entry (all sites), one per site of the tile (4 or 16), or, for Quad Bayer,
    4 entries that apply to its 2×2 Bayer parent sites.
    """
    n = cfa_period(cfa) if cfa else 2
    v = [float(x) for x in values]
    if len(v) == 1:
        v = v * n * n
    elif len(v) == 4 and n == 4:
        # expand the 2x2 parent values to the 4x4 tile
        v = [v[(r // 2) * 2 + (c // 2)] for r in range(4) for c in range(4)]
    if len(v) != n * n:
        raise ShapeError(f"expected 1 or {n * n} per-site values for CFA {cfa!r}; got {len(values)}")
    tile = torch.tensor(v, dtype=dtype, device=device).reshape(n, n)
    reps = (-(-height // n), -(-width // n))
    return tile.repeat(*reps)[:height, :width]
