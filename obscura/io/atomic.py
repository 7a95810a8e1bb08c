"""Writing files without ever losing a user's file.

Outputs go to a temporary file in the target folder and are renamed into place only when complete;
an existing output is not replaced unless ``overwrite=True``; on any failure the temporary file is
removed and a :class:`WriteError` names the file and the problem.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from obscura.core.errors import OutputExists, WriteError

__all__ = ["atomic_output", "check_output_path"]


def check_output_path(path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Validate an output path before any work: folder exists and is writable, no clobbering."""
    p = Path(path)
    if p.is_dir():
        raise WriteError(f"{p}: is a folder, not a file name")
    if p.exists() and not overwrite:
        raise OutputExists(f"{p}: already exists (use --overwrite / overwrite=True to replace it)")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise WriteError(f"{p}: output folder {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise WriteError(f"{p}: output folder {parent} is not writable")
    return p


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, *, overwrite: bool = False) -> Iterator[Path]:
    """Context manager yielding a temporary path next to ``path``; renamed onto ``path`` on success.

    Usage::

        with atomic_output(out, overwrite=False) as tmp:
            image.save(tmp, format="JPEG")
    """
    p = check_output_path(path, overwrite=overwrite)
    parent = p.parent if str(p.parent) else Path(".")
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".part", dir=parent)
    except OSError as e:
        raise WriteError(f"{p}: cannot create a file in {parent}: {e.strerror or e}") from None
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        if p.exists() and not overwrite:  # appeared meanwhile
            raise OutputExists(f"{p}: already exists (use --overwrite / overwrite=True to replace it)")
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual permissions
        os.replace(tmp, p)
    except OSError as e:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(e, WriteError | OutputExists):
            raise
        reason = "the disk is full" if e.errno == errno.ENOSPC else (e.strerror or str(e))
        raise WriteError(f"{p}: cannot write: {reason}") from None
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
