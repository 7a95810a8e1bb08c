"""Shared fixtures: the shared data folder, devices, and the gpu marker."""

from __future__ import annotations

import os

# Idle OpenMP threads yield instead of spinning: on a loaded 2-core machine spinning workers stall
# small torch ops by milliseconds each (measured 10× swings in test times). Must precede torch.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from pathlib import Path

import pytest
import torch

_CANDIDATES = [
    os.environ.get("OBSCURA_SHARED_DATA", ""),
    str(Path(__file__).resolve().parents[1].parent / "shared" / "data"),
]


def shared_data_dir() -> Path | None:
    for c in _CANDIDATES:
        if c and Path(c).is_dir():
            return Path(c)
    return None


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """../shared/data, or skip the test cleanly when it is absent."""
    d = shared_data_dir()
    if d is None:
        pytest.skip("../shared/data is not present")
    return d


DEVICES = [
    pytest.param("cpu", id="cpu"),
    pytest.param(
        "cuda",
        id="cuda",
        marks=[pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")],
    ),
]


@pytest.fixture(params=DEVICES)
def device(request) -> str:
    """Run the test on the CPU and, when present, on a CUDA device."""
    return request.param
