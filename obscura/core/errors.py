"""Errors raised by obscura.

Every error derives from :class:`ObscuraError`; the CLI turns any of them into one clear line
and exit code 2. Subclasses also derive from the closest built-in exception so that callers that
catch ``ValueError`` or ``OSError`` keep working.
"""

from __future__ import annotations

__all__ = [
    "ObscuraError",
    "UnsupportedFormat",
    "CorruptFile",
    "ShapeError",
    "InputError",
    "InvalidParameter",
    "UnknownMethod",
    "OutputExists",
    "WriteError",
]


class ObscuraError(Exception):
    """Base class of every error obscura raises on purpose."""


class InputError(ObscuraError, OSError):
    """An input cannot be opened: missing, a folder where a file was expected, or unreadable."""


class UnsupportedFormat(ObscuraError, ValueError):
    """The file is not in a format obscura (or LibRaw) can read or write."""


class CorruptFile(ObscuraError, ValueError):
    """The file claims a known format but is truncated, damaged or holds no image data."""


class ShapeError(ObscuraError, ValueError):
    """A tensor has the wrong shape, dtype or layout for the function it was given to."""


class InvalidParameter(ObscuraError, ValueError):
    """An option is out of its valid range or of the wrong kind."""


class UnknownMethod(InvalidParameter):
    """A method name is not registered; the message lists the valid ones."""


class OutputExists(ObscuraError, FileExistsError):
    """The output file exists and overwriting was not asked for."""


class WriteError(ObscuraError, OSError):
    """An output could not be written (unwritable folder, full disk, ...)."""
