"""Boundary checks shared by the stages."""

from __future__ import annotations

import math

import pytest
import torch

from obscura.core.errors import InvalidParameter, ShapeError
from obscura.core.validate import check_image, check_number


def test_check_image():
    x = torch.zeros(3, 4, 5)
    assert check_image(x) is x
    with pytest.raises(ShapeError, match=r"got \(4, 4, 5\)"):
        check_image(torch.zeros(4, 4, 5))
    with pytest.raises(ShapeError, match="H, W ≥ 8"):
        check_image(x, min_size=8)
    with pytest.raises(ShapeError, match="floating point"):
        check_image(torch.zeros(3, 4, 5, dtype=torch.int32))
    with pytest.raises(ShapeError, match="list"):
        check_image([1, 2, 3], name="rgb")


def test_check_number():
    assert check_number("k", "2.5", 0, 3) == 2.5
    assert check_number("k", 0, 0, 3) == 0.0
    with pytest.raises(InvalidParameter, match=r"\(0, 3\]"):
        check_number("k", 0, 0, 3, lo_open=True)
    for bad in (math.nan, math.inf, 4, "x", None):
        with pytest.raises(InvalidParameter, match="k must"):
            check_number("k", bad, 0, 3)
