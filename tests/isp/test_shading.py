"""Tests for obscura.isp.shading (GainMap and flat-field lens-shading correction)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from obscura.core.cfa import cfa_index_map
from obscura.core.errors import InvalidParameter, ShapeError, UnknownMethod
from obscura.core.types import DngOpcode
from obscura.isp.shading import SHADING, correct_shading, flat_field_gains


def _vignette(h, w, cfa, device):
    """cos⁴-law falloff with a channel-dependent strength (colour shading) and a decentred axis."""
    yy, xx = torch.meshgrid(torch.arange(h, device=device) + 0.5, torch.arange(w, device=device) + 0.5, indexing="ij")
    r2 = ((xx - 0.52 * w) ** 2 + (yy - 0.47 * h) ** 2) / (0.5 * w) ** 2
    idx = cfa_index_map(cfa, h, w, device=device)
    strength = torch.tensor([1.3, 1.0, 0.8], device=device)[idx]
    level = torch.tensor([0.5, 0.8, 0.4], device=device)[idx]
    return level * torch.cos(torch.atan(strength * 0.9 * torch.sqrt(r2))) ** 4


def _block_means(x, cfa, block=32):
    idx = cfa_index_map(cfa, *x.shape, device=x.device)
    out = []
    for ch in range(3):
        m = (idx == ch).float()
        s = torch.nn.functional.avg_pool2d((x * m)[None, None], block)[0, 0]
        c = torch.nn.functional.avg_pool2d(m[None, None], block)[0, 0]
        out.append(s / c)
    return out


@pytest.mark.parametrize("cfa", ["RGGB", "GBRG"])
def test_flat_field_corrects_vignetting_within_1_percent(device, cfa):
    h, w = 384, 512
    g = torch.Generator(device="cpu").manual_seed(0)
    vig = _vignette(h, w, cfa, device)
    flat = vig * (1 + 0.01 * torch.randn(h, w, generator=g).to(device))  # an independent noisy flat capture
    scene = vig * (1 + 0.01 * torch.randn(h, w, generator=g).to(device))  # a uniform grey wall, vignetted
    assert float(_block_means(scene, cfa)[1].min() / _block_means(scene, cfa)[1].max()) < 0.6  # strong vignetting
    out = correct_shading(scene, cfa=cfa, method="flat_field", flat=flat)
    for ch, means in enumerate(_block_means(out, cfa)):
        spread = float(means.max() / means.min() - 1)
        assert spread < 0.01, (ch, spread)
    # the brightest point keeps its level; channel ratios are left to white balance
    gains = flat_field_gains(flat, cfa=cfa)
    assert 0.99 < float(gains.min()) < 1.01 and float(gains.max()) > 1.6


def test_gain_map_method_equals_bilinear_interpolation(device):
    h, w = 16, 24
    pv, ph = 3, 4
    v = np.linspace(0, 1, pv)[:, None]
    u = np.linspace(0, 1, ph)[None, :]
    ops = []
    for i, (t, l) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1))):
        gains = 1 + i * 0.1 + 0.4 * u + 0.2 * v + 0.3 * u * v
        params = dict(top=t, left=l, bottom=h, right=w, plane=0, planes=1, row_pitch=2, col_pitch=2,
                      map_points_v=pv, map_points_h=ph, map_spacing_v=0.5, map_spacing_h=1 / 3, map_origin_v=0.0,
                      map_origin_h=0.0, map_planes=1, gains=tuple(gains.reshape(-1)))  # fmt: skip
        ops.append(DngOpcode(9, "GainMap", params=params))
    ops.append(DngOpcode(14, "WarpFisheye", flags=0))  # not a GainMap: ignored by this stage
    x = torch.full((h, w), 0.5, device=device)
    out = correct_shading(x, cfa="RGGB", method="gain_map", opcodes=ops).cpu().numpy()
    rr = (np.arange(h) + 0.5)[:, None] / h
    cc = (np.arange(w) + 0.5)[None, :] / w
    site = (np.arange(h)[:, None] % 2) * 2 + (np.arange(w)[None, :] % 2)
    exp = 0.5 * (1 + site * 0.1 + 0.4 * cc + 0.2 * rr + 0.3 * cc * rr)
    np.testing.assert_allclose(out, exp, rtol=1e-5)


def test_registry_and_bad_inputs():
    assert SHADING.names() == ["flat_field", "gain_map"]
    x = torch.ones(8, 8)
    with pytest.raises(UnknownMethod, match="flat_field"):
        correct_shading(x, cfa="RGGB", method="nope")
    with pytest.raises(InvalidParameter):
        correct_shading(x, cfa="RGGB", method="flat_field")
    with pytest.raises(ShapeError):
        correct_shading(x, cfa="RGGB", method="flat_field", flat=torch.ones(8, 10))
    with pytest.raises(InvalidParameter):
        correct_shading(x, cfa="RGGB", method="flat_field", flat=torch.zeros(8, 8))
    with pytest.raises(InvalidParameter):
        correct_shading(x, cfa="RGGB", method="flat_field", flat=torch.full((8, 8), float("nan")))
    with pytest.raises(InvalidParameter):
        correct_shading(x, cfa="RGGB", method="flat_field", flat=x, grid=0)
    with pytest.raises(ShapeError):
        correct_shading(torch.ones(7, 8), cfa="RGGB")
    with pytest.raises(ShapeError):
        correct_shading(torch.ones(3, 8, 8), cfa="RGGB")
