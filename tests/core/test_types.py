"""Value types, CFA helpers, registry and devices."""

from __future__ import annotations

import pytest
import torch

from obscura.core import (
    BAYER_PATTERNS,
    QUAD_BAYER_PATTERNS,
    Burst,
    Image,
    InvalidParameter,
    RawFrame,
    RawMeta,
    Registry,
    ShapeError,
    UnknownMethod,
)
from obscura.core.cfa import bayer_parent, cfa_masks, mosaic_rgb, per_site_tensor
from obscura.core.device import resolve_device


def test_rawframe_validates_shape_and_cfa():
    RawFrame(torch.zeros(4, 6), RawMeta(cfa="GRBG"))
    with pytest.raises(ShapeError, match=r"\(5, 6\)"):
        RawFrame(torch.zeros(5, 6), RawMeta())
    with pytest.raises(ShapeError, match="XYZW"):
        RawFrame(torch.zeros(4, 4), RawMeta(cfa="XYZW"))
    with pytest.raises(ShapeError, match="multiple of 4"):
        RawFrame(torch.zeros(6, 8), RawMeta(cfa=QUAD_BAYER_PATTERNS[0]))
    with pytest.raises(ShapeError, match="LinearRaw"):
        RawFrame(torch.zeros(4, 4), RawMeta(cfa=""))
    with pytest.raises(ShapeError, match=r"torch\.Tensor"):
        RawFrame([[0, 0], [0, 0]], RawMeta())


def test_meta_is_frozen_and_replace_copies():
    m = RawMeta(iso=100)
    m2 = m.replace(iso=200)
    assert m.iso == 100 and m2.iso == 200
    with pytest.raises(AttributeError):
        m.iso = 3  # type: ignore[misc]


def test_burst_and_image():
    frames = [RawFrame(torch.full((4, 4), float(i)), RawMeta(iso=100 * (i + 1))) for i in range(3)]
    b = Burst.from_frames(frames)
    assert len(b) == 3 and b[2].meta.iso == 300 and float(b[1].data[0, 0]) == 1.0
    with pytest.raises(ShapeError, match="one shape"):
        Burst.from_frames([frames[0], RawFrame(torch.zeros(2, 2), RawMeta())])
    with pytest.raises(ShapeError):
        Burst(torch.zeros(2, 4, 4), (RawMeta(),))
    Image(torch.zeros(3, 2, 2), "srgb")
    with pytest.raises(ShapeError, match="unknown colour space"):
        Image(torch.zeros(3, 2, 2), "nope")
    with pytest.raises(ShapeError, match=r"\(4, 2, 2\)"):
        Image(torch.zeros(4, 2, 2))


@pytest.mark.parametrize("cfa", BAYER_PATTERNS)
def test_mosaic_samples_the_named_channel(cfa, device):
    rgb = torch.stack([torch.full((4, 4), v, device=device) for v in (1.0, 2.0, 3.0)])
    m = mosaic_rgb(rgb, cfa=cfa)
    lut = {"R": 1.0, "G": 2.0, "B": 3.0}
    assert [float(m[0, 0]), float(m[0, 1]), float(m[1, 0]), float(m[1, 1])] == [lut[c] for c in cfa]
    assert cfa_masks(cfa, 4, 4, device=device).sum(0).eq(1).all()
    assert m.device.type == device


def test_quad_bayer_helpers():
    q = QUAD_BAYER_PATTERNS[0]
    assert q == "RRGGRRGGGGBBGGBB" and bayer_parent(q) == "RGGB"
    black = per_site_tensor((1, 2, 3, 4), q, 4, 4)
    assert black[0].tolist() == [1, 1, 2, 2] and black[3].tolist() == [3, 3, 4, 4]
    with pytest.raises(ShapeError, match="per-site"):
        per_site_tensor((1, 2, 3), "RGGB", 4, 4)


def test_registry_lists_valid_methods():
    reg = Registry("demo")

    @reg.register("a")
    def f(x):
        return x + 1

    assert reg.get("a")(1) == 2 and "a" in reg and reg.names() == ["a"]
    with pytest.raises(UnknownMethod, match="valid methods: a"):
        reg.get("b")
    with pytest.raises(ValueError, match="twice"):
        reg.register("a")(f)


def test_resolve_device():
    assert resolve_device(None, like=torch.zeros(1)).type == "cpu"
    with pytest.raises(InvalidParameter, match="invalid device"):
        resolve_device("gpu7")
    if not torch.cuda.is_available():
        with pytest.raises(InvalidParameter, match="CUDA is not available"):
            resolve_device("cuda")
