"""Tests for obscura.isp.linearize."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from obscura.core.errors import InvalidParameter, ShapeError
from obscura.core.types import QUAD_BAYER_PATTERNS, RawFrame, RawMeta
from obscura.isp.linearize import apply_linearization_table, linearize


def _expected(data: np.ndarray, black_tile: np.ndarray, white: float) -> np.ndarray:
    n = black_tile.shape[0]
    reps = (data.shape[0] // n, data.shape[1] // n)
    b = np.tile(black_tile, reps)
    return (data.astype(np.float64) - b) / (white - b)


def test_per_site_black_rggb(device):
    rng = np.random.default_rng(0)
    data = rng.integers(0, 4096, size=(8, 12)).astype(np.uint16)
    black = (64.0, 60.0, 62.0, 66.0)
    raw = RawFrame(
        torch.from_numpy(data.astype(np.int32)).to(device), RawMeta(cfa="GRBG", black_level=black, white_level=4095)
    )
    before = raw.data.clone()
    out = linearize(raw)
    exp = _expected(data, np.array(black).reshape(2, 2), 4095.0)
    assert out.data.dtype == torch.float32 and out.data.device.type == device
    np.testing.assert_allclose(out.data.cpu().numpy(), exp, rtol=1e-5, atol=1e-6)
    assert out.meta.black_level == (0.0,) * 4 and out.meta.white_level == 1.0 and out.meta.linearization_table is None
    assert out.meta.cfa == "GRBG"
    assert torch.equal(raw.data, before)  # input untouched
    assert float(out.data.min()) < 0  # below-black noise is kept


def test_single_black_and_float_input(device):
    x = torch.tensor([[100.0, 200.0], [1000.0, 1100.0]], device=device)
    out = linearize(RawFrame(x, RawMeta(cfa="RGGB", black_level=(100.0,), white_level=1100.0)))
    assert torch.allclose(out.data, torch.tensor([[0.0, 0.1], [0.9, 1.0]], device=device), atol=1e-6)


def test_quad_bayer_parent_and_full_tile(device):
    cfa = QUAD_BAYER_PATTERNS[0]
    rng = np.random.default_rng(1)
    data = rng.integers(0, 1024, size=(8, 8)).astype(np.float32)
    parent = (10.0, 20.0, 30.0, 40.0)
    out4 = linearize(
        RawFrame(torch.from_numpy(data).to(device), RawMeta(cfa=cfa, black_level=parent, white_level=1023))
    )
    tile = np.kron(np.array(parent).reshape(2, 2), np.ones((2, 2)))
    np.testing.assert_allclose(out4.data.cpu().numpy(), _expected(data, tile, 1023.0), rtol=1e-5, atol=1e-6)
    full = tuple(float(v) for v in range(16))
    out16 = linearize(RawFrame(torch.from_numpy(data).to(device), RawMeta(cfa=cfa, black_level=full, white_level=1023)))
    exp16 = _expected(data, np.arange(16.0).reshape(4, 4), 1023.0)
    np.testing.assert_allclose(out16.data.cpu().numpy(), exp16, rtol=1e-5, atol=1e-6)


def test_linear_raw_per_plane(device):
    x = torch.full((3, 4, 6), 500.0, device=device)
    out = linearize(RawFrame(x, RawMeta(cfa="", black_level=(0.0, 100.0, 250.0), white_level=1000.0)))
    got = out.data[:, 0, 0].cpu()
    assert torch.allclose(got, torch.tensor([0.5, 400 / 900, 250 / 750]), atol=1e-6)
    # the RawMeta default (4 zeros) on a LinearRaw frame is a 2×2 repeat of zeros
    out0 = linearize(RawFrame(x, RawMeta(cfa="", black_level=(0.0,) * 4, white_level=1000.0)))
    assert torch.allclose(out0.data, x / 1000.0)


def test_linearization_table(device):
    table = tuple(int(v) for v in (np.arange(256) ** 2 // 4))  # a 8-bit → 14-bit companding curve
    data = torch.tensor([[0, 10, 255, 300], [2, 3, 128, 254]], dtype=torch.int32, device=device)
    meta = RawMeta(cfa="RGGB", black_level=(4.0,), white_level=float(table[-1]), linearization_table=table)
    out = linearize(RawFrame(data, meta))
    codes = np.minimum(data.cpu().numpy(), 255)
    exp = (np.array(table)[codes] - 4.0) / (table[-1] - 4.0)
    np.testing.assert_allclose(out.data.cpu().numpy(), exp, rtol=1e-6, atol=1e-7)
    assert out.meta.linearization_table is None


def test_real_dng_against_rawpy(data_dir):
    rawpy = pytest.importorskip("rawpy")
    path = data_dir / "raw" / "tinydngloader" / "colorchart.dng"
    if not path.exists():
        pytest.skip("colorchart.dng absent")
    with rawpy.imread(str(path)) as r:
        img = r.raw_image_visible.astype(np.float64)[:200, :300]
        colors = r.raw_colors_visible[:200, :300]
        black = np.array(r.black_level_per_channel, dtype=np.float64)
        white = float(r.white_level)
        desc = r.color_desc.decode()
        pattern = "".join(desc[i] for i in r.raw_pattern.reshape(-1))
    expected = (img - black[colors]) / (white - black[colors])
    site_black = tuple(float(black[i]) for i in colors[:2, :2].reshape(-1))
    raw = RawFrame(
        torch.from_numpy(img.astype(np.float32)), RawMeta(cfa=pattern, black_level=site_black, white_level=white)
    )
    np.testing.assert_allclose(linearize(raw).data.numpy(), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("black", "white", "err"),
    [
        ((100.0,), 100.0, InvalidParameter),  # white not above black
        ((10.0, 10.0, 5000.0, 10.0), 4095.0, InvalidParameter),
        ((float("nan"),), 4095.0, InvalidParameter),
        ((0.0,), float("inf"), InvalidParameter),
    ],
)
def test_bad_levels(black, white, err):
    with pytest.raises(err):
        linearize(RawFrame(torch.zeros(4, 4), RawMeta(cfa="RGGB", black_level=black, white_level=white)))


def test_bad_inputs():
    with pytest.raises(ShapeError):
        linearize(torch.zeros(4, 4))  # not a RawFrame
    with pytest.raises(ShapeError):  # 16 values for a 2×2 Bayer tile
        linearize(RawFrame(torch.zeros(4, 4), RawMeta(cfa="RGGB", black_level=(0.0,) * 16, white_level=10.0)))
    with pytest.raises(ShapeError):  # odd-sized mosaic is rejected by the frame itself
        RawFrame(torch.zeros(5, 4), RawMeta(cfa="RGGB"))
    with pytest.raises(InvalidParameter):
        apply_linearization_table(torch.zeros(2, 2), ())
    with pytest.raises(InvalidParameter):
        apply_linearization_table(torch.zeros(2, 2), (0.0, float("nan")))
