"""The three value types that carry everything between modules: RawFrame, Burst and Image.

Pixel data are float32 (or integer sensor units for raw mosaics straight from a file) torch tensors,
channel-first, on any device. Metadata are frozen dataclasses of plain Python values (tuples, floats,
strings), so that they compare, hash and serialize simply.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from obscura.core.errors import ShapeError

__all__ = [
    "DngOpcode",
    "RawMeta",
    "RawFrame",
    "Burst",
    "Image",
    "BAYER_PATTERNS",
    "QUAD_BAYER_PATTERNS",
    "validate_cfa",
]

BAYER_PATTERNS = ("RGGB", "BGGR", "GRBG", "GBRG")


def _quad(p: str) -> str:
    """Quad Bayer 4×4 pattern (reading order) from its 2×2 Bayer parent."""
    top = p[0] * 2 + p[1] * 2
    bot = p[2] * 2 + p[3] * 2
    return top + top + bot + bot


QUAD_BAYER_PATTERNS = tuple(_quad(p) for p in BAYER_PATTERNS)


def validate_cfa(cfa: str) -> str:
    """Check a CFA string: a 2×2 Bayer (4 letters), a 4×4 Quad Bayer (16 letters), or '' (none).

    The pattern is the top-left tile of the mosaic in reading order, e.g. ``"RGGB"``.
    """
    if cfa == "":
        return cfa
    if not isinstance(cfa, str) or len(cfa) not in (4, 16) or set(cfa) - set("RGB"):
        raise ShapeError(f"cfa must be a 2x2 Bayer pattern like 'RGGB' or a 16-letter Quad Bayer pattern; got {cfa!r}")
    if cfa not in BAYER_PATTERNS and cfa not in QUAD_BAYER_PATTERNS:
        raise ShapeError(f"unsupported CFA {cfa!r}; supported: {', '.join(BAYER_PATTERNS + QUAD_BAYER_PATTERNS)}")
    return cfa


@dataclass(frozen=True)
class DngOpcode:
    """One DNG opcode (DNG 1.4 §6) as parsed from OpcodeList1/2/3.

    ``params`` holds the opcode's fields by their specification names (e.g. ``top``, ``left``,
    ``map_points_v``, ``gains`` for GainMap); opcodes obscura does not apply keep their raw
    ``data`` bytes so that they can be written back unchanged.
    """

    id: int
    name: str
    version: int = 0x01030000
    flags: int = 0
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RawMeta:
    """Everything about a raw frame besides its pixels (DNG 1.4 tag names in the comments).

    Matrices are row-major tuples of 9 floats. ``color_matrix*`` map XYZ to camera RGB
    (DNG ColorMatrix); ``forward_matrix*`` map white-balanced camera RGB to XYZ D50.
    Illuminants are EXIF LightSource codes (17 = Std A, 21 = D65, 23 = D50, ...).
    The noise profile is per colour plane ``(a, b)`` with ``variance = a·x + b`` for ``x`` the
    signal normalized to [0, 1] (black = 0, white = 1), as in the DNG NoiseProfile tag.
    """

    cfa: str = "RGGB"  # CFA top-left tile in reading order; "" for a demosaiced (LinearRaw) frame
    black_level: tuple[float, ...] = (0.0, 0.0, 0.0, 0.0)  # per CFA site, reading order
    white_level: float = 1.0
    # colour (DNG)
    color_matrix1: tuple[float, ...] | None = None
    color_matrix2: tuple[float, ...] | None = None
    forward_matrix1: tuple[float, ...] | None = None
    forward_matrix2: tuple[float, ...] | None = None
    camera_calibration1: tuple[float, ...] | None = None
    camera_calibration2: tuple[float, ...] | None = None
    analog_balance: tuple[float, ...] | None = None
    calibration_illuminant1: int = 21
    calibration_illuminant2: int | None = None
    as_shot_neutral: tuple[float, ...] | None = None
    as_shot_white_xy: tuple[float, float] | None = None
    baseline_exposure: float = 0.0
    noise_profile: tuple[tuple[float, float], ...] | None = None
    # linearization and layout
    linearization_table: tuple[int, ...] | None = None
    default_crop: tuple[int, int, int, int] | None = None  # (x, y, width, height) in the mosaic
    orientation: int = 1  # EXIF/TIFF orientation, 1..8
    opcode_list1: tuple[DngOpcode, ...] = ()
    opcode_list2: tuple[DngOpcode, ...] = ()
    opcode_list3: tuple[DngOpcode, ...] = ()
    bad_pixels: tuple[tuple[int, int], ...] = ()  # (row, col), besides any opcode list
    # capture
    exposure_time: float | None = None  # seconds
    iso: float | None = None
    f_number: float | None = None
    focal_length: float | None = None  # mm
    focal_length_35mm: float | None = None
    datetime: str | None = None  # "YYYY:MM:DD HH:MM:SS"
    gps: tuple[float, float, float] | None = None  # latitude, longitude (degrees, signed), altitude (m)
    make: str = ""
    model: str = ""
    unique_camera_model: str = ""
    lens: str = ""
    software: str = ""
    serial: str = ""
    source_format: str = ""  # "dng", "cr2", "raw" (headerless), ... for information

    def replace(self, **changes: Any) -> RawMeta:
        """A copy with ``changes`` applied (the metadata are immutable)."""
        return dataclasses.replace(self, **changes)

    @property
    def is_dual_illuminant(self) -> bool:
        return self.color_matrix2 is not None and self.calibration_illuminant2 is not None


def _check_tensor(x: Any, name: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise ShapeError(f"{name} must be a torch.Tensor; got {type(x).__name__}")
    return x


@dataclass(frozen=True)
class RawFrame:
    """A raw capture: a mosaic (H, W) in sensor units, or a LinearRaw (3, H, W) when ``meta.cfa == ''``
    ((1, H, W) for a monochrome sensor without a CFA)."""

    data: torch.Tensor
    meta: RawMeta = field(default_factory=RawMeta)

    def __post_init__(self) -> None:
        x = _check_tensor(self.data, "RawFrame.data")
        cfa = validate_cfa(self.meta.cfa)
        if cfa == "":
            if x.ndim != 3 or x.shape[0] not in (1, 3):
                raise ShapeError(
                    f"a LinearRaw frame must be (3, H, W), or (1, H, W) for a monochrome sensor; got {tuple(x.shape)}"
                )
        else:
            n = 2 if len(cfa) == 4 else 4
            if x.ndim != 2 or x.shape[0] % n or x.shape[1] % n or x.shape[0] < n or x.shape[1] < n:
                raise ShapeError(
                    f"mosaic must be (H, W) with sides multiple of {n} for CFA {cfa}; got {tuple(x.shape)}"
                )
        if len(self.meta.black_level) not in (1, 3, 4, 16):
            raise ShapeError(f"black_level must have 1, 3, 4 or 16 values; got {len(self.meta.black_level)}")

    @property
    def height(self) -> int:
        return int(self.data.shape[-2])

    @property
    def width(self) -> int:
        return int(self.data.shape[-1])

    @property
    def device(self) -> torch.device:
        return self.data.device

    def to(self, device: torch.device | str) -> RawFrame:
        return RawFrame(self.data.to(device), self.meta)

    def replace(self, **changes: Any) -> RawFrame:
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class Burst:
    """Frames of one scene: a stacked tensor (N, H, W) and one RawMeta per frame (brackets allowed).

    With ``cfa == ""`` the frames are monochrome (no CFA): ``data[i]`` is frame i's single plane and
    ``burst[i]`` is a (1, H, W) LinearRaw frame.
    """

    data: torch.Tensor
    metas: tuple[RawMeta, ...]

    def __post_init__(self) -> None:
        x = _check_tensor(self.data, "Burst.data")
        if x.ndim != 3:
            raise ShapeError(f"Burst.data must be (N, H, W); got {tuple(x.shape)}")
        if len(self.metas) != x.shape[0]:
            raise ShapeError(f"Burst has {x.shape[0]} frames but {len(self.metas)} metas")
        cfas = {m.cfa for m in self.metas}
        if len(cfas) > 1:
            raise ShapeError(f"all frames of a burst must share one CFA; got {sorted(cfas)}")

    @classmethod
    def from_frames(cls, frames: Sequence[RawFrame]) -> Burst:
        if not frames:
            raise ShapeError("a burst needs at least one frame; got 0")
        shapes = {tuple(f.data.shape) for f in frames}
        if len(shapes) != 1:
            raise ShapeError(f"all frames of a burst must have one shape; got {sorted(shapes)}")
        shape = next(iter(shapes))
        if len(shape) == 3 and shape[0] != 1:
            raise ShapeError(f"a burst holds mosaics or monochrome frames; got LinearRaw frames of shape {shape}")
        return cls(torch.stack([f.data.reshape(shape[-2:]) for f in frames]), tuple(f.meta for f in frames))

    def __len__(self) -> int:
        return int(self.data.shape[0])

    def __getitem__(self, i: int) -> RawFrame:
        m = self.metas[i]
        return RawFrame(self.data[i][None] if m.cfa == "" else self.data[i], m)

    def frames(self) -> list[RawFrame]:
        return [self[i] for i in range(len(self))]


@dataclass(frozen=True)
class Image:
    """A (3, H, W) image in the colour space ``space`` (see obscura.core.colour.SPACES).

    ``meta`` is the RawMeta of the capture it came from (for EXIF), when there is one.
    """

    data: torch.Tensor
    space: str = "linear_srgb"
    meta: RawMeta | None = None

    def __post_init__(self) -> None:
        x = _check_tensor(self.data, "Image.data")
        if x.ndim != 3 or x.shape[0] != 3:
            raise ShapeError(f"Image.data must be (3, H, W); got {tuple(x.shape)}")
        from obscura.core.colour import SPACES  # local: colour imports types

        if self.space not in SPACES:
            raise ShapeError(f"unknown colour space {self.space!r}; valid: {', '.join(SPACES)}")

    @property
    def height(self) -> int:
        return int(self.data.shape[-2])

    @property
    def width(self) -> int:
        return int(self.data.shape[-1])

    def replace(self, **changes: Any) -> Image:
        return dataclasses.replace(self, **changes)
