"""Artifact measurements against analytic ground truth (obscura.lab.measure.artifacts)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import ndimage, special

from obscura.core.cfa import mosaic_rgb
from obscura.core.errors import InvalidParameter, ShapeError
from obscura.isp.demosaic import demosaic
from obscura.lab.measure.artifacts import (
    aliasing_energy,
    colour_moire,
    find_dots,
    fit_radial_distortion,
    ghosting,
    lateral_ca,
    ringing,
    shading,
    tv_distortion,
)


# --------------------------------------------------------------------------- distortion
def _poly3(p: np.ndarray, k1: float, h: int, w: int) -> np.ndarray:
    """lensfun poly3 forward model on (K, 2) pixel points (r = 1 at half the shorter side)."""
    c = np.array([(w - 1) / 2.0, (h - 1) / 2.0])
    norm = min(h, w) / 2.0
    u = (p - c) / norm
    r2 = (u**2).sum(axis=1, keepdims=True)
    return c + u * (1.0 - k1 + k1 * r2) * norm


def _dot_image(centres: np.ndarray, h: int, w: int, radius: float, ss: int = 4) -> np.ndarray:
    """Dark anti-aliased discs (supersampled ss×ss) on a white ground."""
    yy, xx = np.mgrid[0 : h * ss, 0 : w * ss].astype(np.float64)
    xx, yy = (xx + 0.5) / ss - 0.5, (yy + 0.5) / ss - 0.5
    img = np.ones((h * ss, w * ss))
    for cx, cy in centres:
        y0, y1 = int(max(0, (cy - radius - 2) * ss)), int(min(h * ss, (cy + radius + 2) * ss))
        x0, x1 = int(max(0, (cx - radius - 2) * ss)), int(min(w * ss, (cx + radius + 2) * ss))
        d2 = (xx[y0:y1, x0:x1] - cx) ** 2 + (yy[y0:y1, x0:x1] - cy) ** 2
        img[y0:y1, x0:x1][d2 <= radius**2] = 0.1
    return img.reshape(h, ss, w, ss).mean(axis=(1, 3))


def test_tv_distortion_barrel_grid_matches_analytic():
    h, w, k1 = 240, 320, -0.04
    gx, gy = np.meshgrid(np.linspace(30, w - 31, 9), np.linspace(25, h - 26, 7))
    ideal = np.stack([gx.ravel(), gy.ravel()], axis=1)
    dist = _poly3(ideal, k1, h, w)
    top, bot = dist.reshape(7, 9, 2)[0], dist.reshape(7, 9, 2)[-1]
    a = 0.5 * (np.hypot(*(bot[0] - top[0])) + np.hypot(*(bot[-1] - top[-1])))
    b = np.hypot(*(bot[4] - top[4]))
    expected = 100.0 * (a - b) / b
    img = _dot_image(dist, h, w, radius=4.0)
    found = find_dots(torch.from_numpy(img).float())
    assert found.shape == (63, 2)
    res = tv_distortion(found)
    assert (res.rows, res.cols) == (7, 9)
    assert expected < -0.5  # barrel
    assert res.tv_distortion == pytest.approx(expected, abs=0.05)
    fit = fit_radial_distortion(found, ideal, size=(h, w))
    assert fit.k1 == pytest.approx(k1, abs=0.002)
    assert fit.rms < 0.1
    assert set(res.to_dict()) >= {"tv_distortion_pct"}


def test_find_dots_subpixel():
    pts = np.array([[20.3, 15.7], [45.85, 16.1], [20.0, 40.45]])
    found = find_dots(_dot_image(pts, 60, 70, radius=3.5, ss=16))
    order = np.lexsort((pts[:, 0], pts[:, 1]))
    np.testing.assert_allclose(found, pts[order], atol=0.02)


def test_distortion_bad_input():
    with pytest.raises(ShapeError):
        tv_distortion(np.zeros((4, 3)))
    rng = np.random.default_rng(0)
    with pytest.raises(InvalidParameter):
        tv_distortion(
            np.concatenate(
                [
                    np.stack(np.meshgrid(np.arange(4) * 10.0, np.arange(3) * 10.0), -1).reshape(-1, 2),
                    rng.random((1, 2)) * 5 + 100,
                ]
            )
        )
    with pytest.raises(InvalidParameter):
        find_dots(np.ones((20, 20)))
    with pytest.raises(ShapeError):
        fit_radial_distortion(np.zeros((5, 2)), np.zeros((4, 2)), size=(10, 10))


# --------------------------------------------------------------------------- shading
def test_shading_cos4_matches_analytic(device):
    h, w, f = 300, 400, 350.0
    y = torch.arange(h, dtype=torch.float64, device=device) - (h - 1) / 2
    x = torch.arange(w, dtype=torch.float64, device=device) - (w - 1) / 2
    r2 = y[:, None] ** 2 + x[None, :] ** 2
    g = 1.0 / (1.0 + r2 / f**2) ** 2  # cos⁴θ, θ = atan(r/f)
    gains = torch.tensor([1.0, 1.0, 1.0], dtype=torch.float64, device=device)
    colour = torch.stack([g**1.1, g, g**0.9]) * 0.5 * gains[:, None, None]
    torch.manual_seed(0)
    noisy = (colour + 0.002 * torch.randn(colour.shape, dtype=torch.float64, device=device)).float()
    res = shading(noisy, window=0.03)
    n = round(0.03 * h)
    # analytic: cos⁴ at the corner window's centre vs the image centre
    rc = math.hypot((w - 1) / 2 - (n - 1) / 2, (h - 1) / 2 - (n - 1) / 2)
    ev = math.log2(1.0 / (1.0 + rc**2 / f**2) ** 2)
    for v in res.channel_ev:
        assert v[1] == pytest.approx(ev, abs=0.02)
        assert v[0] == pytest.approx(1.1 * ev, abs=0.02)
    assert res.worst_ev == pytest.approx(min(res.luminance_ev))
    # colour shading: (g^1.1 / g)/(1) − 1 at the corner
    assert res.colour_shading_rg == pytest.approx(100 * abs(2 ** (0.1 * ev) - 1), abs=0.3)
    assert res.colour_shading_bg == pytest.approx(100 * abs(2 ** (-0.1 * ev) - 1), abs=0.3)


def test_shading_bad_input():
    with pytest.raises(InvalidParameter):
        shading(np.ones((3, 50, 50)), window=0.9)
    with pytest.raises(InvalidParameter):
        shading(-np.ones((50, 50)))
    with pytest.raises(ShapeError):
        shading(np.ones((2, 50, 50)))


# --------------------------------------------------------------------------- lateral CA
def _square_chart(h: int, w: int, half: float, angle_deg: float, scales: tuple[float, ...], sigma: float):
    """A bright tilted square on a dark ground, one plane per scale (magnification CA), Gaussian-blurred edges."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    u, v = xx - (w - 1) / 2, yy - (h - 1) / 2
    t = math.radians(angle_deg)
    ur, vr = u * math.cos(t) + v * math.sin(t), -u * math.sin(t) + v * math.cos(t)
    planes = []
    for s in scales:
        d = half * s - np.maximum(np.abs(ur), np.abs(vr))  # > 0 inside, distance to the nearest side
        planes.append(0.1 + 0.7 * 0.5 * (1 + special.erf(d / (math.sqrt(2) * sigma))))
    return np.stack(planes)


def test_lateral_ca_known_subpixel_shift(device):
    h, w, half = 200, 260, 70.0
    a_r, a_b = 0.3 / half, -0.2 / half  # R +0.3 px outward, B −0.2 px at the square's sides
    img = torch.from_numpy(_square_chart(h, w, half, 5.0, (1 + a_r, 1.0, 1 + a_b), 1.0)).float().to(device)
    cx, cy = (w - 1) / 2, (h - 1) / 2
    rois = [
        (int(cx + half - 20), int(cy - 30), int(cx + half + 20), int(cy + 30)),  # right side
        (int(cx - half - 20), int(cy - 30), int(cx - half + 20), int(cy + 30)),  # left
        (int(cx - 30), int(cy + half - 20), int(cx + 30), int(cy + half + 20)),  # bottom
    ]
    res = lateral_ca(img, rois)
    for rg, bg in zip(res.shift_rg, res.shift_bg):
        assert rg == pytest.approx(0.3, abs=0.05)
        assert bg == pytest.approx(-0.2, abs=0.05)
    assert res.field_heights[0] == pytest.approx(half / (0.5 * math.hypot(h, w)), abs=0.02)
    assert res.max_abs == pytest.approx(0.3, abs=0.05)


def test_lateral_ca_bad_input():
    img = np.ones((3, 50, 50))
    with pytest.raises(InvalidParameter):
        lateral_ca(img, [])
    with pytest.raises(InvalidParameter):
        lateral_ca(img, [(0, 0, 80, 80)])
    with pytest.raises(ShapeError):
        lateral_ca(np.ones((50, 50)), [(0, 0, 30, 30)])


# --------------------------------------------------------------------------- ringing
def _edge_roi(esf, h: int = 60, w: int = 64, angle_deg: float = 5.0) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    t = math.radians(angle_deg)
    d = (xx - (w - 1) / 2) * math.cos(t) - (yy - (h - 1) / 2) * math.sin(t)
    return 0.2 + 0.6 * esf(d)


def test_ringing_gibbs_overshoot():
    # Ideal low-pass of a step: ESF = 1/2 + Si(2π fc d)/π; Gibbs overshoot (Si(π)/π − 1/2) = 8.95 %.
    fc = 0.15
    roi = _edge_roi(lambda d: 0.5 + special.sici(2 * math.pi * fc * d)[0] / math.pi, h=80, w=96)
    res = ringing(roi)
    gibbs = 100 * (special.sici(math.pi)[0] / math.pi - 0.5)
    assert gibbs == pytest.approx(8.949, abs=0.01)
    assert res.overshoot == pytest.approx(gibbs, abs=0.5)
    assert res.undershoot == pytest.approx(gibbs, abs=0.5)
    assert res.ringing > 2.0
    smooth = ringing(_edge_roi(lambda d: 0.5 * (1 + special.erf(d / (math.sqrt(2) * 1.2))), h=80, w=96))
    assert smooth.overshoot < 0.3 and smooth.ringing < 0.5 * res.ringing
    assert set(res.to_dict()) == {"overshoot_pct", "undershoot_pct", "ringing_pct", "main_lobe_px"}


def test_ringing_unsharp_mask_overshoot():
    # Gaussian edge (σ) sharpened by unsharp masking (amount A, radius s): (1+A)Φ(d/σ) − AΦ(d/√(σ²+s²)).
    sig, s, amount = 1.0, 1.5, 0.8

    def esf(d):
        phi = lambda z: 0.5 * (1 + special.erf(z / math.sqrt(2)))  # noqa: E731
        return (1 + amount) * phi(d / sig) - amount * phi(d / math.hypot(sig, s))

    dd = np.linspace(0, 20, 200001)
    expected = 100 * (esf(dd).max() - 1.0)
    res = ringing(_edge_roi(esf, h=80, w=96))
    assert res.overshoot == pytest.approx(expected, abs=0.5)


# --------------------------------------------------------------------------- aliasing and moiré
def _zone_plate(n: int, k: float, ss: int) -> np.ndarray:
    """cos(π k r²) (local frequency k·r cycles/px), sampled ss× finer, values in [0.1, 0.9]."""
    c = (n - 1) / 2
    t = (np.arange(n * ss) + 0.5) / ss - 0.5 - c
    r2 = t[:, None] ** 2 + t[None, :] ** 2
    return 0.5 + 0.4 * np.cos(math.pi * k * r2)


def test_aliasing_energy_decimation_without_low_pass():
    n, k = 128, 1.0 / 100  # frequency 0.5 cycles/px (Nyquist) at r = 50 px, 0.9 at the corners
    ss = 8
    fine = _zone_plate(n, k, ss)
    # Correct rendering: low-pass (Gaussian σ = 0.6 output px) the 8× supersampled plate, then decimate.
    lp = ndimage.gaussian_filter(fine, sigma=0.6 * ss)
    correct = lp[ss // 2 :: ss, ss // 2 :: ss]
    aliased = _zone_plate(n, k, 1)  # point-sampled: frequencies beyond Nyquist fold back
    # Reference: the analytic plate with its modulation times the Gaussian's transfer at the local frequency.
    c = (n - 1) / 2
    t = np.arange(n) - c
    r = np.hypot(t[:, None], t[None, :])
    mtf = np.exp(-2 * (math.pi * 0.6 * k * r) ** 2)
    ref = 0.5 + 0.4 * np.cos(math.pi * k * r**2) * mtf
    beyond = r > 0.5 / k
    ra = aliasing_energy(aliased, ref, region=beyond)
    rc = aliasing_energy(correct, ref, region=beyond)
    assert ra.aliasing_energy > 0.2
    assert rc.aliasing_energy < 0.01 * ra.aliasing_energy
    assert ra.region_pixels == int(beyond.sum())


def test_colour_moire_bilinear_worse_than_menon(device):
    n, k = 128, 1.0 / 110
    plate = torch.from_numpy(_zone_plate(n, k, 1)).float().to(device)
    rgb = plate.expand(3, n, n).contiguous()
    mosaic = mosaic_rgb(rgb, cfa="RGGB")
    bil = demosaic(mosaic, cfa="RGGB", method="bilinear").clamp(0, 1)
    men = demosaic(mosaic, cfa="RGGB", method="menon2007").clamp(0, 1)
    truth = colour_moire(rgb, encoding="linear")
    mb = colour_moire(bil, encoding="linear")
    mm = colour_moire(men, encoding="linear")
    assert truth.chroma_energy < 1e-6
    assert mb.chroma_energy > 2.0 * mm.chroma_energy
    assert mm.chroma_energy > 10 * truth.chroma_energy + 1e-3


def test_aliasing_and_moire_bad_input():
    with pytest.raises(ShapeError):
        aliasing_energy(np.zeros((10, 10)), np.zeros((10, 12)))
    with pytest.raises(InvalidParameter):
        aliasing_energy(np.zeros((10, 10)), np.ones((10, 10)))
    with pytest.raises(InvalidParameter):
        colour_moire(np.ones((3, 10, 10)), encoding="gamma")
    with pytest.raises(ShapeError):
        colour_moire(np.ones((10, 10)), encoding="srgb")


# --------------------------------------------------------------------------- ghosting
def test_ghosting_detects_blended_shifted_copy():
    rng = np.random.default_rng(1)
    h, w = 96, 128
    ref = np.full((h, w), 0.3)
    mask = np.zeros((h, w), dtype=bool)
    mask[30:66, 40:80] = True
    ref[mask] = 0.7 + 0.1 * ndimage.gaussian_filter(rng.standard_normal((h, w)), 1.5)[mask]
    motion = (9.0, 0.0)
    shifted = ndimage.shift(ref, (0.0, 9.0), order=1, mode="nearest")
    ghosted = 0.75 * ref + 0.25 * shifted + 0.005 * rng.standard_normal((h, w))
    clean = ref + 0.005 * rng.standard_normal((h, w))
    g = ghosting(torch.from_numpy(ghosted), torch.from_numpy(ref), mask=mask, motion=motion, data_range=1.0)
    c = ghosting(clean, ref, mask=mask, motion=motion, data_range=1.0)
    assert g.detected and g.double_edge > 0.5
    assert not c.detected and abs(c.double_edge) < 0.15
    expected_psnr = 10 * math.log10(1.0 / np.mean((ghosted - ref)[mask] ** 2))
    assert g.psnr == pytest.approx(expected_psnr, abs=1e-9)
    assert c.psnr > g.psnr + 10


def test_ghosting_bad_input():
    a = np.zeros((20, 20))
    m = np.ones((20, 20), dtype=bool)
    with pytest.raises(InvalidParameter):
        ghosting(a, a, mask=m, motion=(0.0, 0.0), data_range=1.0)
    with pytest.raises(InvalidParameter):
        ghosting(a, a, mask=m, motion=(3.0, 0.0), data_range=0)
    with pytest.raises(InvalidParameter):
        ghosting(a, a, mask=np.zeros((20, 20)), motion=(3.0, 0.0), data_range=1.0)
    with pytest.raises(ShapeError):
        ghosting(a, np.zeros((20, 21)), mask=m, motion=(3.0, 0.0), data_range=1.0)
