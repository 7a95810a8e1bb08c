"""Tests for obscura.isp.lens (DNG WarpRectilinear and FixVignetteRadial)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from obscura.core.errors import InvalidParameter, ShapeError
from obscura.isp.lens import fix_vignette_radial, warp_rectilinear

COEFFS = (1.0, 0.15, -0.05, 0.01, 0.004, -0.003)
CENTER = (0.46, 0.55)


def _model(px, py, coeffs, center, h, w):
    """DNG WarpRectilinear written out in scalars: output position → input position (pixel centres at i + 0.5)."""
    kr0, kr1, kr2, kr3, kt0, kt1 = coeffs
    cx, cy = center[0] * w, center[1] * h
    m = max(math.hypot(cx - x, cy - y) for x in (0, w) for y in (0, h))
    dx, dy = (px - cx) / m, (py - cy) / m
    r2 = dx * dx + dy * dy
    f = kr0 + kr1 * r2 + kr2 * r2**2 + kr3 * r2**3
    sx = dx * f + 2 * kt0 * dx * dy + kt1 * (r2 + 2 * dx * dx)
    sy = dy * f + 2 * kt1 * dx * dy + kt0 * (r2 + 2 * dy * dy)
    return cx + m * sx, cy + m * sy


def _centroid(img, xx, yy, win):
    wgt = img[win]
    return (wgt * xx[win]).sum() / wgt.sum(), (wgt * yy[win]).sum() / wgt.sum()


def _dot(h, w, x0, y0, sigma=1.6):
    yy, xx = np.mgrid[0:h, 0:w] + 0.5
    return np.exp(-((xx - x0) ** 2 + (yy - y0) ** 2) / (2 * sigma**2))


@pytest.mark.parametrize("interpolation", ["bicubic", "bilinear"])
def test_dot_moves_to_model_position(device, interpolation):
    h, w = 120, 160
    targets = [(20.3, 15.7), (140.2, 100.9), (110.0, 40.0), (30.6, 95.4)]  # output positions (x, y)
    for tx, ty in targets:
        sx, sy = _model(tx, ty, COEFFS, CENTER, h, w)
        src = torch.from_numpy(_dot(h, w, sx, sy).astype(np.float32)).to(device)
        out = warp_rectilinear(src.expand(3, h, w), coefficients=COEFFS, center=CENTER, interpolation=interpolation)
        o = out[0].cpu().numpy().astype(np.float64)
        # the analytic result: the source dot evaluated exactly at the model position of each output pixel
        yy, xx = np.mgrid[0:h, 0:w] + 0.5
        mx, my = _model(xx, yy, COEFFS, CENTER, h, w)
        ideal = np.exp(-((mx - sx) ** 2 + (my - sy) ** 2) / (2 * 1.6**2))
        r0, c0 = int(ty), int(tx)
        win = (slice(r0 - 8, r0 + 9), slice(c0 - 8, c0 + 9))
        got, ref = _centroid(o, xx, yy, win), _centroid(ideal, xx, yy, win)
        assert abs(got[0] - ref[0]) < 0.05 and abs(got[1] - ref[1]) < 0.05, (tx, ty, got, ref)
        assert abs(ref[0] - tx) < 0.1 and abs(ref[1] - ty) < 0.1  # and that is where the dot was aimed
        assert math.hypot(sx - tx, sy - ty) > 0.5  # the model really moved the dot


def test_identity_returns_input(device):
    x = torch.rand(3, 33, 47, device=device)
    for interp in ("bilinear", "bicubic", "nearest"):
        out = warp_rectilinear(x, coefficients=(1, 0, 0, 0, 0, 0), center=(0.3, 0.8), interpolation=interp)
        assert torch.allclose(out, x, atol=1e-4), interp
    assert out.shape == x.shape and out.device == x.device


def test_per_plane_coefficients_lateral_ca(device):
    h, w = 64, 96
    src = torch.from_numpy(_dot(h, w, 70.5, 20.5).astype(np.float32)).to(device).expand(3, h, w).contiguous()
    sets = [(1.01, 0, 0, 0, 0, 0), (1, 0, 0, 0, 0, 0), (0.99, 0, 0, 0, 0, 0)]
    out = warp_rectilinear(src, coefficients=sets)
    assert torch.allclose(out[1], src[1], atol=1e-4)  # green is identity
    # red samples further out, so its dot appears nearer the centre than green's; blue the other way
    xs = torch.arange(w, device=device, dtype=torch.float32) + 0.5
    centroid = [(out[i].sum(0) * xs).sum() / out[i].sum() for i in range(3)]
    assert centroid[0] < centroid[1] < centroid[2]


def test_fix_vignette_radial_values(device):
    h, w = 10, 16
    k = (0.5, -0.1, 0.02, 0.0, 0.001)
    x = torch.ones(2, h, w, device=device)
    out = fix_vignette_radial(x, k=k, center=(0.25, 0.5)).cpu().numpy()
    cx, cy = 0.25 * w, 0.5 * h
    m = max(math.hypot(cx - a, cy - b) for a in (0, w) for b in (0, h))
    yy, xx = np.mgrid[0:h, 0:w] + 0.5
    r2 = ((xx - cx) ** 2 + (yy - cy) ** 2) / m**2
    exp = 1 + sum(kk * r2 ** (i + 1) for i, kk in enumerate(k))
    np.testing.assert_allclose(out[0], exp, rtol=1e-6)
    np.testing.assert_allclose(out[1], exp, rtol=1e-6)
    mosaic = torch.full((h, w), 0.5, device=device)
    np.testing.assert_allclose(fix_vignette_radial(mosaic, k=k, center=(0.25, 0.5)).cpu().numpy(), 0.5 * exp, rtol=1e-6)


def test_bad_inputs():
    x = torch.rand(3, 8, 8)
    with pytest.raises(ShapeError):
        warp_rectilinear(torch.rand(8, 8), coefficients=(1, 0, 0, 0, 0, 0))
    with pytest.raises(ShapeError):
        warp_rectilinear(torch.rand(3, 1, 8), coefficients=(1, 0, 0, 0, 0, 0))
    with pytest.raises(InvalidParameter):
        warp_rectilinear(x, coefficients=(1, 0, 0))
    with pytest.raises(InvalidParameter):
        warp_rectilinear(x, coefficients=[(1, 0, 0, 0, 0, 0)] * 2)  # 2 sets for 3 planes
    with pytest.raises(InvalidParameter):
        warp_rectilinear(x, coefficients=(1, float("nan"), 0, 0, 0, 0))
    with pytest.raises(InvalidParameter):
        warp_rectilinear(x, coefficients=(1, 0, 0, 0, 0, 0), center=(1.5, 0.5))
    with pytest.raises(InvalidParameter):
        warp_rectilinear(x, coefficients=(1, 0, 0, 0, 0, 0), interpolation="lanczos")
    with pytest.raises(InvalidParameter):
        fix_vignette_radial(x, k=(0.1, 0.2))
    with pytest.raises(InvalidParameter):
        fix_vignette_radial(x, k=(-3.0, 0, 0, 0, 0))  # gain ≤ 0 at the corners
    with pytest.raises(InvalidParameter):
        fix_vignette_radial(x, k=(0.1, 0, 0, 0, 0), center=(float("nan"), 0.5))
    with pytest.raises(ShapeError):
        fix_vignette_radial(torch.rand(8), k=(0.1, 0, 0, 0, 0))
