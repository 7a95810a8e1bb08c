"""Core value types, colour spaces, errors, devices and the method registry."""

from obscura.core.errors import (
    CorruptFile,
    InputError,
    InvalidParameter,
    ObscuraError,
    OutputExists,
    ShapeError,
    UnknownMethod,
    UnsupportedFormat,
    WriteError,
)
from obscura.core.registry import Registry
from obscura.core.types import (
    BAYER_PATTERNS,
    QUAD_BAYER_PATTERNS,
    Burst,
    DngOpcode,
    Image,
    RawFrame,
    RawMeta,
    validate_cfa,
)

__all__ = [
    "BAYER_PATTERNS",
    "QUAD_BAYER_PATTERNS",
    "Burst",
    "CorruptFile",
    "DngOpcode",
    "Image",
    "InputError",
    "InvalidParameter",
    "ObscuraError",
    "OutputExists",
    "RawFrame",
    "RawMeta",
    "Registry",
    "ShapeError",
    "UnknownMethod",
    "UnsupportedFormat",
    "WriteError",
    "validate_cfa",
]
