"""Tests for obscura.isp.opcodes (DNG 1.4 §6 opcode application)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from obscura.core.errors import InvalidParameter, ShapeError
from obscura.core.types import DngOpcode
from obscura.isp.lens import fix_vignette_radial
from obscura.isp.opcodes import OPCODES, apply_opcodes, gain_map_gains


def _area(h, w, **kw):
    p = dict(top=0, left=0, bottom=h, right=w, plane=0, planes=1, row_pitch=1, col_pitch=1)
    p.update(kw)
    return p


def _gain_map(h, w, gains, pv, ph, mp=1, sv=None, sh=None, ov=0.0, oh=0.0, **kw):
    p = _area(h, w, **kw)
    p.update(
        map_points_v=pv,
        map_points_h=ph,
        map_spacing_v=sv if sv is not None else 1.0 / max(pv - 1, 1),
        map_spacing_h=sh if sh is not None else 1.0 / max(ph - 1, 1),
        map_origin_v=ov,
        map_origin_h=oh,
        map_planes=mp,
        gains=tuple(float(g) for g in np.asarray(gains).reshape(-1)),
    )
    return DngOpcode(9, "GainMap", params=p)


def _spec_gain(gains, pv, ph, sv, sh, ov, oh, row, col, h, w, mplane):
    """Per-pixel DNG GainMap gain, written straight from the specification (scalar reference)."""
    g = np.asarray(gains, dtype=np.float64).reshape(pv, ph, -1)[:, :, mplane]
    fv = min(max(((row + 0.5) / h - ov) / sv, 0.0), pv - 1)
    fh = min(max(((col + 0.5) / w - oh) / sh, 0.0), ph - 1)
    i, j = min(int(fv), max(pv - 2, 0)), min(int(fh), max(ph - 2, 0))
    tv, th = fv - i, fh - j
    i2, j2 = min(i + 1, pv - 1), min(j + 1, ph - 1)
    top = g[i, j] * (1 - th) + g[i, j2] * th
    bot = g[i2, j] * (1 - th) + g[i2, j2] * th
    return top * (1 - tv) + bot * tv


def test_gain_map_bilinear_function_is_exact(device):
    # a bilinear gain surface is reproduced exactly by bilinear interpolation of its samples
    h, w, pv, ph = 24, 36, 4, 5
    v = np.linspace(0, 1, pv)[:, None]
    u = np.linspace(0, 1, ph)[None, :]
    gains = 1.0 + 0.5 * u + 0.3 * v + 0.8 * u * v
    x = torch.ones(h, w, device=device)
    out = apply_opcodes(x, [_gain_map(h, w, gains, pv, ph)], cfa="RGGB")
    rr = (np.arange(h) + 0.5)[:, None] / h
    cc = (np.arange(w) + 0.5)[None, :] / w
    exp = 1.0 + 0.5 * cc + 0.3 * rr + 0.8 * cc * rr
    np.testing.assert_allclose(out.cpu().numpy(), exp, rtol=1e-6)
    assert torch.equal(x, torch.ones(h, w, device=device))  # input untouched


def test_gain_map_matches_spec_reference_with_pitch_planes_and_clamp(device):
    rng = np.random.default_rng(3)
    h, w, pv, ph, mp = 20, 28, 3, 4, 2
    gains = rng.uniform(0.8, 2.0, size=(pv, ph, mp))
    # map covers only the middle of the image: gains are held beyond its first and last points
    op = _gain_map(h, w, gains, pv, ph, mp, sv=0.25, sh=0.2, ov=0.25, oh=0.2, top=1, left=1, row_pitch=2, col_pitch=2,
                   plane=1, planes=2)  # fmt: skip
    x = torch.from_numpy(rng.uniform(0.1, 0.9, size=(3, h, w)).astype(np.float32)).to(device)
    out = apply_opcodes(x, [op], cfa="").cpu().numpy()
    xn = x.cpu().numpy()
    np.testing.assert_array_equal(out[0], xn[0])  # plane 0 is outside the area's planes
    for plane in (1, 2):
        for r in range(h):
            for c in range(w):
                if r % 2 == 1 and c % 2 == 1:
                    g = _spec_gain(gains, pv, ph, 0.25, 0.2, 0.25, 0.2, r, c, h, w, min(plane, mp - 1))
                    assert out[plane, r, c] == pytest.approx(xn[plane, r, c] * g, rel=1e-5)
                else:
                    assert out[plane, r, c] == xn[plane, r, c]
    # the public helper gives the same gains
    gg = gain_map_gains(op.params, h, w, 1)
    assert gg.shape == (10, 14)
    assert float(gg[0, 0]) == pytest.approx(_spec_gain(gains, pv, ph, 0.25, 0.2, 0.25, 0.2, 1, 1, h, w, 1), rel=1e-6)


def test_gain_map_single_point_is_constant():
    op = _gain_map(4, 6, [1.5], 1, 1, sv=0.0, sh=0.0)  # spacing is ignored for a single point (as the SDK)
    out = apply_opcodes(torch.full((4, 6), 0.5), [op], cfa="RGGB")
    assert torch.allclose(out, torch.full((4, 6), 0.75))


@pytest.mark.parametrize("name", ["DeltaPerRow", "DeltaPerColumn", "ScalePerRow", "ScalePerColumn"])
def test_per_row_and_column(name, device):
    h, w = 6, 8
    x = torch.arange(h * w, dtype=torch.float32, device=device).reshape(h, w) / 100
    along_row = name.endswith("Row")
    area = _area(h, w, top=1, left=2, bottom=6, right=8, row_pitch=2, col_pitch=3)
    rows, cols = list(range(1, 6, 2)), list(range(2, 8, 3))
    vals = [0.1 * (i + 1) for i in range(len(rows) if along_row else len(cols))]
    key = "deltas" if name.startswith("Delta") else "scales"
    ids = {"DeltaPerRow": 10, "DeltaPerColumn": 11, "ScalePerRow": 12, "ScalePerColumn": 13}
    out = apply_opcodes(x, [DngOpcode(ids[name], name, params={**area, key: tuple(vals)})], cfa="RGGB", scale=2.0)
    exp = x.cpu().numpy().copy()
    for i, r in enumerate(rows):
        for j, c in enumerate(cols):
            v = vals[i] if along_row else vals[j]
            exp[r, c] = exp[r, c] + v * 2.0 if key == "deltas" else exp[r, c] * v
    np.testing.assert_allclose(out.cpu().numpy(), exp, rtol=1e-6, atol=1e-7)
    with pytest.raises(InvalidParameter, match=r"rows|columns"):
        apply_opcodes(x, [DngOpcode(ids[name], name, params={**area, key: (1.0,) * 7})], cfa="RGGB")


def test_map_table_raw_codes_and_normalized(device):
    table = tuple(65535 - i for i in range(0, 4096))  # an inverting curve over 12-bit codes
    op = DngOpcode(7, "MapTable", params={**_area(2, 2), "table": table})
    x = torch.tensor([[0.0, 100.0], [4095.0, 5000.0]], device=device)
    out = apply_opcodes(x, [op], cfa="RGGB", scale=65535.0)
    assert out.cpu().tolist() == [[65535.0, 65435.0], [61440.0, 61440.0]]  # past the end: last entry
    xn = x / 65535.0
    outn = apply_opcodes(xn, [op], cfa="RGGB")
    np.testing.assert_allclose(outn.cpu().numpy(), out.cpu().numpy() / 65535.0, rtol=1e-6)


def test_map_polynomial(device):
    x = torch.linspace(0, 1, 16, device=device).reshape(4, 4)
    op = DngOpcode(8, "MapPolynomial", params={**_area(4, 4), "coefficients": (0.1, 2.0, -1.0)})
    out = apply_opcodes(x, [op], cfa="RGGB")
    assert torch.allclose(out, 0.1 + 2 * x - x * x, atol=1e-6)


def test_trim_bounds():
    x = torch.arange(48.0).reshape(6, 8)
    out = apply_opcodes(x, [DngOpcode(6, "TrimBounds", params=dict(top=2, left=2, bottom=6, right=6))], cfa="RGGB")
    assert torch.equal(out, x[2:6, 2:6]) and out.is_contiguous()
    odd = DngOpcode(6, "TrimBounds", params=dict(top=1, left=0, bottom=5, right=8))
    with pytest.raises(InvalidParameter, match="CFA"):
        apply_opcodes(x, [odd], cfa="RGGB")
    skipped = apply_opcodes(x, [DngOpcode(6, "TrimBounds", flags=1, params=dict(odd.params))], cfa="RGGB")
    assert torch.equal(skipped, x)
    rgb = torch.rand(3, 6, 8)
    assert torch.equal(apply_opcodes(rgb, [odd], cfa=""), rgb[:, 1:5])


def test_fix_bad_pixels_constant_and_list(device):
    h, w = 12, 16
    rr, cc = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    truth = (100 + 10 * rr + 3 * cc).to(device)  # a plane: same-colour neighbour medians are exact
    x = truth.clone()
    x[5, 7] = 0.0
    x[8, 8] = 0.0
    out = apply_opcodes(x, [DngOpcode(4, "FixBadPixelsConstant", params=dict(constant=0, bayer_phase=0))],
                        cfa="RGGB", scale=65535.0)  # fmt: skip
    assert torch.allclose(out, truth)
    y = truth.clone()
    y[3, 4] = 5000.0
    y[6:8, 10:12] = -5.0
    op = DngOpcode(5, "FixBadPixelsList", params=dict(bayer_phase=1, bad_points=((3, 4),), bad_rects=((6, 10, 8, 12),)))
    assert torch.allclose(apply_opcodes(y, [op], cfa="GRBG"), truth)
    with pytest.raises(InvalidParameter, match="bayer_phase"):
        apply_opcodes(y, [DngOpcode(5, "FixBadPixelsList", params=dict(bayer_phase=7, bad_points=()))], cfa="RGGB")
    # points and rectangles outside the (cropped) mosaic are dropped / clipped, as the DNG SDK
    ramp = (100 + 3 * cc).to(device)  # a horizontal ramp: same-colour medians are exact up to the top edge too
    z = ramp.clone()
    z[0:2, 12:14] = 0.0
    z[5, 3] = 0.0
    op = DngOpcode(5, "FixBadPixelsList", params=dict(bayer_phase=0, bad_points=((99, 0), (-1, 3), (5, 3)),
                                                       bad_rects=((-4, 12, 2, 14), (50, 0, 60, 4))))  # fmt: skip
    assert torch.allclose(apply_opcodes(z, [op], cfa="RGGB"), ramp, atol=1e-3)
    with pytest.raises(InvalidParameter, match="empty"):
        apply_opcodes(y, [DngOpcode(5, "FixBadPixelsList", params=dict(bayer_phase=0, bad_rects=((4, 4, 2, 8),)))],
                      cfa="RGGB")  # fmt: skip
    with pytest.raises(InvalidParameter, match="pairs"):
        apply_opcodes(y, [DngOpcode(5, "FixBadPixelsList", params=dict(bayer_phase=0, bad_points=((1, "a"),)))],
                      cfa="RGGB")  # fmt: skip


def test_lens_opcodes_and_applicability(device):
    rgb = torch.rand(3, 10, 14, device=device)
    ident = DngOpcode(1, "WarpRectilinear", params=dict(planes=1, coefficients=((1, 0, 0, 0, 0, 0),), center_x=0.5,
                                                         center_y=0.5))  # fmt: skip
    assert torch.allclose(apply_opcodes(rgb, [ident], cfa=""), rgb, atol=1e-5)
    k = (0.3, 0.1, 0.0, 0.0, 0.0)
    vig = DngOpcode(3, "FixVignetteRadial", params=dict(k=k, center_x=0.4, center_y=0.6))
    assert torch.allclose(apply_opcodes(rgb, [vig], cfa=""), fix_vignette_radial(rgb, k=k, center=(0.4, 0.6)))
    mosaic = torch.rand(10, 14, device=device)
    with pytest.raises(InvalidParameter, match="WarpRectilinear"):
        apply_opcodes(mosaic, [ident], cfa="RGGB")
    optional = DngOpcode(1, "WarpRectilinear", flags=1, params=dict(ident.params))
    assert torch.equal(apply_opcodes(mosaic, [optional], cfa="RGGB"), mosaic)


def test_unknown_opcodes():
    x = torch.rand(4, 4)
    assert torch.equal(apply_opcodes(x, [DngOpcode(14, "WarpFisheye", flags=1)], cfa="RGGB"), x)
    assert torch.equal(apply_opcodes(x, [DngOpcode(14, "WarpFisheye", flags=3)], cfa="RGGB"), x)
    with pytest.raises(InvalidParameter, match="WarpFisheye"):
        apply_opcodes(x, [DngOpcode(14, "WarpFisheye", flags=2)], cfa="RGGB")  # preview-only skip is not optional
    for name in ("GainMap", "WarpRectilinear", "FixVignetteRadial", "TrimBounds", "MapTable", "MapPolynomial",
                 "DeltaPerRow", "DeltaPerColumn", "ScalePerRow", "ScalePerColumn", "FixBadPixelsConstant",
                 "FixBadPixelsList"):  # fmt: skip
        assert name in OPCODES


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (dict(top=10, bottom=10), "empty"),
        (dict(left=30, right=20), "empty"),
        (dict(row_pitch=0), "pitch"),
        (dict(plane=1), "plane"),
        (dict(gains=(1.0,) * 5), "gains"),
        (dict(gains=(float("nan"),) * 6), "NaN"),
        (dict(map_spacing_v=-0.5), "spacing"),
        (dict(map_origin_h=float("inf")), "finite"),
        (dict(map_points_h=0), "map_points"),
    ],
)
def test_gain_map_bad_parameters(change, match):
    op = _gain_map(20, 24, np.ones(6), 2, 3)
    params = {**op.params, **change}
    with pytest.raises(InvalidParameter, match=match):
        apply_opcodes(torch.ones(20, 24), [DngOpcode(9, "GainMap", params=params)], cfa="RGGB")


def test_bad_inputs():
    op = _gain_map(4, 4, np.ones(4), 2, 2)
    with pytest.raises(ShapeError):
        apply_opcodes(torch.ones(1, 3, 4, 4), [op], cfa="")
    with pytest.raises(ShapeError):
        apply_opcodes(torch.ones(3, 4, 4), [op], cfa="RGGB")
    with pytest.raises(ShapeError):
        apply_opcodes(np.ones((4, 4)), [op], cfa="RGGB")
    with pytest.raises(InvalidParameter):
        apply_opcodes(torch.ones(4, 4), [op], cfa="RGGB", scale=-1.0)
    with pytest.raises(InvalidParameter):
        apply_opcodes(torch.ones(4, 4), [op], cfa="RGGB", scale=math.nan)
    with pytest.raises(InvalidParameter, match="top"):
        apply_opcodes(torch.ones(4, 4), [DngOpcode(9, "GainMap", params={})], cfa="RGGB")
    with pytest.raises(InvalidParameter):
        apply_opcodes(torch.ones(4, 4), ["GainMap"], cfa="RGGB")


def _spec_apply(name, x, area, values=None):
    """Reference: the opcode applied pixel by pixel over the full area, skipping pixels outside the image."""
    out = x.copy()
    h, w = x.shape
    rows = list(range(area["top"], area["bottom"], area["row_pitch"]))
    cols = list(range(area["left"], area["right"], area["col_pitch"]))
    for i, r in enumerate(rows):
        for j, c in enumerate(cols):
            if 0 <= r < h and 0 <= c < w:
                if name == "DeltaPerRow":
                    out[r, c] += values[i]
                elif name == "ScalePerColumn":
                    out[r, c] *= values[j]
                elif name == "MapPolynomial":
                    out[r, c] = 0.5 + 2.0 * out[r, c]
    return out


@pytest.mark.parametrize("name", ["DeltaPerRow", "ScalePerColumn", "MapPolynomial"])
def test_areas_are_clipped_to_the_image(name, device):
    # a full-sensor area applied to a cropped image: only the overlap changes, on the area's own pitch grid
    h, w = 10, 12
    x = torch.rand(h, w, generator=torch.Generator().manual_seed(4)).to(device)
    area = _area(h, w, top=-5, left=-3, bottom=h + 6, right=w + 4, row_pitch=2, col_pitch=3)
    rows, cols = len(range(-5, h + 6, 2)), len(range(-3, w + 4, 3))
    values = [0.01 * (i + 1) for i in range(rows if name == "DeltaPerRow" else cols)]
    params = dict(area)
    if name == "DeltaPerRow":
        params["deltas"] = tuple(values)
    elif name == "ScalePerColumn":
        params["scales"] = tuple(values)
    else:
        params["coefficients"] = (0.5, 2.0)
    out = apply_opcodes(x, [DngOpcode(10, name, params=params)], cfa="RGGB")
    exp = _spec_apply(name, x.cpu().numpy().astype(np.float64), area, values)
    np.testing.assert_allclose(out.cpu().numpy(), exp, rtol=1e-6, atol=1e-7)
    assert not np.allclose(exp, x.cpu().numpy())  # the opcode did act on the overlap


def test_gain_map_and_map_table_clipped_or_skipped(device):
    h, w = 8, 10
    x = torch.full((h, w), 0.5, device=device)
    # a gain map over a larger area: the overlap gets the gains of the image-relative positions
    gains = np.array([[1.0, 2.0], [3.0, 4.0]])
    big = _gain_map(h, w, gains, 2, 2, top=-4, left=-4, bottom=h + 4, right=w + 4)
    inside = _gain_map(h, w, gains, 2, 2)
    np.testing.assert_allclose(apply_opcodes(x, [big], cfa="RGGB").cpu().numpy(),
                               apply_opcodes(x, [inside], cfa="RGGB").cpu().numpy(), rtol=1e-6)  # fmt: skip
    assert gain_map_gains(big.params, h, w).shape == (h, w)
    # areas that miss the image altogether: the opcode does nothing, optional or not
    below = _gain_map(h, w, gains, 2, 2, top=h, bottom=h + 8)
    assert gain_map_gains(below.params, h, w).shape == (0, 0)
    table = DngOpcode(7, "MapTable", params={**_area(h, w, left=-20, right=-2), "table": (0, 1, 2)})
    trim = DngOpcode(6, "TrimBounds", params=dict(top=h + 2, left=0, bottom=h + 6, right=w))
    fix = DngOpcode(5, "FixBadPixelsList", params=dict(bayer_phase=0, bad_points=((h + 1, 0),), bad_rects=()))
    assert torch.equal(apply_opcodes(x, [below, table, trim, fix], cfa="RGGB"), x)
    # TrimBounds beyond the image keeps the overlap
    y = torch.arange(float(h * w), device=device).reshape(h, w)
    over = DngOpcode(6, "TrimBounds", params=dict(top=-2, left=2, bottom=h + 3, right=w + 8))
    assert torch.equal(apply_opcodes(y, [over], cfa="RGGB"), y[:, 2:])
