"""Device handling: work follows the input's device unless a device is asked for."""

from __future__ import annotations

import torch

from obscura.core.errors import InvalidParameter

__all__ = ["resolve_device", "cuda_available"]


def cuda_available() -> bool:
    return torch.cuda.is_available()


def resolve_device(device: torch.device | str | None, *, like: torch.Tensor | None = None) -> torch.device:
    """The device to work on: ``device`` if given (``"auto"`` picks CUDA when present), else ``like``'s."""
    if device is None:
        return like.device if like is not None else torch.device("cpu")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise InvalidParameter(f"invalid device {device!r}; use 'cpu', 'cuda', 'cuda:N' or 'auto'") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InvalidParameter(f"device {device!r} asked for, but CUDA is not available on this machine")
    return dev
