"""Tests for obscura.isp.sharpen (unsharp mask on luminance with halo limiting)."""

from __future__ import annotations

import math

import pytest
import torch

from obscura.core.errors import InvalidParameter, ShapeError, UnknownMethod
from obscura.isp.sharpen import SHARPEN, sharpen


def _blurred_step(lo: float, hi: float, *, sigma: float = 1.5, width: int = 96, height: int = 24) -> torch.Tensor:
    """A vertical edge from ``lo`` to ``hi`` (display-linear), blurred by a Gaussian of ``sigma`` pixels."""
    t = torch.arange(width, dtype=torch.float64) - width / 2 + 0.5
    prof = lo + (hi - lo) * 0.5 * (1 + torch.erf(t / (sigma * math.sqrt(2))))
    return prof.float()[None, None, :].expand(3, height, width).contiguous()


def _rise_distance(p: torch.Tensor) -> float:
    """10–90 % rise distance (pixels, linearly interpolated) of a monotone-ish edge profile."""
    p = p.double()
    lo, hi = float(p[:8].mean()), float(p[-8:].mean())

    def cross(level: float) -> float:
        v = lo + level * (hi - lo)
        i = int(torch.nonzero(p >= v)[0])
        return i - 1 + (v - float(p[i - 1])) / (float(p[i]) - float(p[i - 1]))

    return cross(0.9) - cross(0.1)


def test_registry_names():
    assert "usm" in SHARPEN.names()


def test_edge_gains_acutance_with_bounded_overshoot(device):
    lo, hi, hl = 0.05, 0.6, 0.05
    x = _blurred_step(lo, hi).to(device)
    y = sharpen(x, amount=4.0, radius=1.0, halo_limit=hl)
    p_in, p_out = x[1, 12].cpu(), y[1, 12].cpu()
    assert _rise_distance(p_out) < 0.8 * _rise_distance(p_in)
    # overshoot and undershoot in the perceptual domain (√Y) stay within halo_limit × the local contrast
    step = math.sqrt(hi) - math.sqrt(lo)
    assert math.sqrt(float(p_out.max())) - math.sqrt(hi) <= hl * step + 1e-4
    assert math.sqrt(lo) - math.sqrt(float(p_out.min())) <= hl * step + 1e-4
    # without the limit the same settings overshoot more than the bound (so the clamp is what holds it)
    free = sharpen(x, amount=4.0, radius=1.0, halo_limit=None)[1, 12].cpu()
    assert math.sqrt(float(free.max())) - math.sqrt(hi) > hl * step


def test_halo_limit_zero_means_no_overshoot(device):
    lo, hi = 0.1, 0.5
    x = _blurred_step(lo, hi).to(device)
    y = sharpen(x, amount=2.0, radius=1.0, halo_limit=0.0)
    assert float(y.max()) <= hi + 1e-5
    assert float(y.min()) >= lo - 1e-5
    assert _rise_distance(y[0, 5].cpu()) < _rise_distance(x[0, 5].cpu())


def test_amount_zero_is_identity(device):
    x = torch.rand(3, 20, 30, generator=torch.Generator().manual_seed(0)).to(device)
    y = sharpen(x, amount=0.0)
    assert torch.equal(y, x)
    assert y.data_ptr() != x.data_ptr()


def test_flat_region_unchanged(device):
    x = torch.empty(3, 40, 50, device=device)
    x[0], x[1], x[2] = 0.3, 0.2, 0.1
    y = sharpen(x, amount=1.0, radius=2.0)
    torch.testing.assert_close(y, x, atol=1e-5, rtol=0)


def test_chroma_unchanged_on_coloured_edge(device):
    # a dark teal → light orange edge: luminance changes, and each side has its own chromaticity
    t = _blurred_step(0.0, 1.0, sigma=1.2)[0]
    a = torch.tensor([0.02, 0.10, 0.09])[:, None, None]
    b = torch.tensor([0.70, 0.40, 0.15])[:, None, None]
    x = (a + (b - a) * t).to(device)
    y = sharpen(x, amount=1.0, radius=1.0, halo_limit=0.5)
    assert float((y - x).abs().max()) > 0.01  # it did sharpen
    cx, cy = x / x.sum(0, keepdim=True), y / y.sum(0, keepdim=True)
    torch.testing.assert_close(cy, cx, atol=2e-5, rtol=0)


def test_threshold_protects_low_contrast_texture(device):
    g = torch.Generator().manual_seed(1)
    x = (0.3 + 0.002 * torch.randn(1, 32, 32, generator=g)).expand(3, -1, -1).contiguous().to(device)
    y = sharpen(x, amount=1.0, radius=1.0, threshold=0.05)
    torch.testing.assert_close(y, x, atol=1e-5, rtol=0)
    assert float((sharpen(x, amount=1.0, radius=1.0) - x).abs().max()) > 1e-3


def test_input_not_modified_and_dtype_kept(device):
    x = _blurred_step(0.1, 0.7).to(device)
    before = x.clone()
    y = sharpen(x, amount=1.0)
    assert torch.equal(x, before)
    assert y.dtype == torch.float32 and y.shape == x.shape and y.device == x.device
    assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0


def test_strips_match_whole_frame():
    # the CPU path runs in strips; a tall image must give the same result as per-column-block processing
    g = torch.Generator().manual_seed(2)
    x = torch.rand(3, 700, 40, generator=g)
    y = sharpen(x, amount=0.8, radius=1.5)
    y_top = sharpen(x[:, :300], amount=0.8, radius=1.5)
    torch.testing.assert_close(y[:, :290], y_top[:, :290], atol=1e-6, rtol=0)


def test_parallel_strips_match_one_thread_and_nest():
    # strip_map spreads strips over 2 workers; a strip_map inside a worker runs serially (no deadlock)
    from obscura.isp import _filters

    x = torch.rand(3, 900, 64, generator=torch.Generator().manual_seed(5))
    threads = torch.get_num_threads()
    old = _filters._STRIP_PIXELS
    try:
        _filters._STRIP_PIXELS = 64 * 50  # 18 strips
        torch.set_num_threads(1)
        serial = sharpen(x, amount=0.8, radius=1.5)
        torch.set_num_threads(2)
        parallel = sharpen(x, amount=0.8, radius=1.5)

        def nested(s: torch.Tensor) -> torch.Tensor:
            return _filters.strip_map(lambda t: t * 2.0, s, halo=0, rows=8)

        doubled = _filters.strip_map(nested, x, halo=0, rows=100)
        assert torch.get_num_threads() == 2
    finally:
        _filters._STRIP_PIXELS = old
        torch.set_num_threads(threads)
    assert torch.equal(serial, parallel)
    assert torch.equal(doubled, x * 2.0)


@pytest.mark.parametrize(
    ("x", "opts", "err"),
    [
        (torch.zeros(20, 20), {}, ShapeError),
        (torch.zeros(4, 20, 20), {}, ShapeError),
        (torch.zeros(3, 20, 20, dtype=torch.int32), {}, ShapeError),
        (torch.zeros(3, 20, 20), {"amount": -1.0}, InvalidParameter),
        (torch.zeros(3, 20, 20), {"amount": float("nan")}, InvalidParameter),
        (torch.zeros(3, 20, 20), {"radius": 0.0}, InvalidParameter),
        (torch.zeros(3, 20, 20), {"halo_limit": -0.5}, InvalidParameter),
        (torch.zeros(3, 20, 20), {"threshold": "a"}, InvalidParameter),
        (torch.zeros(3, 20, 20), {"luma_weights": (1.0, 0.0)}, InvalidParameter),
    ],
)
def test_bad_input(x, opts, err):
    with pytest.raises(err):
        sharpen(x, **opts)


def test_unknown_method_lists_valid():
    with pytest.raises(UnknownMethod, match="usm"):
        sharpen(torch.zeros(3, 8, 8), method="nope")
