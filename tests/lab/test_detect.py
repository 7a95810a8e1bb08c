"""Chart finding: ColorChecker detection in rendered photos, slanted edges for e-SFR."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from scipy import ndimage

from obscura.core.colour import srgb_encode
from obscura.core.errors import InvalidParameter, ObscuraError, ShapeError
from obscura.lab.charts.colorchecker import colorchecker_chart
from obscura.lab.charts.edge import slanted_edge_chart
from obscura.lab.measure.colour import delta_e00, linear_srgb_to_lab
from obscura.lab.measure.detect import detect_colorchecker, find_slanted_edges
from obscura.lab.measure.sfr import esfr


@pytest.fixture(scope="module")
def checker():
    return colorchecker_chart(size=(400, 600))


def _photo(lin: np.ndarray, angle: float, seed: int, *, noise: float = 0.01) -> np.ndarray:
    """The chart rotated by ``angle`` degrees on a grey background, sRGB-encoded, with Gaussian noise."""
    rot = np.stack([ndimage.rotate(c, angle, reshape=True, order=1, cval=0.0) for c in lin])
    alpha = ndimage.rotate(np.ones(lin.shape[1:]), angle, reshape=True, order=1, cval=0.0)
    big_h, big_w = 700, 1000
    canvas = np.full((3, big_h, big_w), 0.35)
    h, w = alpha.shape
    y0, x0 = (big_h - h) // 2, (big_w - w) // 2
    canvas[:, y0 : y0 + h, x0 : x0 + w] = rot * alpha + canvas[:, y0 : y0 + h, x0 : x0 + w] * (1 - alpha)
    enc = srgb_encode(torch.from_numpy(canvas)).numpy()
    return np.clip(enc + np.random.default_rng(seed).normal(0.0, noise, enc.shape), 0.0, 1.0)


@pytest.mark.parametrize("angle", [0.0, 5.0, 15.0])
def test_colorchecker_found_in_rotated_noisy_photo(checker, angle):
    pytest.importorskip("colour_checker_detection")
    lin = checker.scene.linear_srgb().numpy().astype(np.float64)
    img = _photo(lin, angle, seed=int(angle))
    d = detect_colorchecker(img, encoding="srgb")
    # the truth a display-encoded photo can hold: the reference clipped to the sRGB gamut (cyan's R < 0)
    truth = linear_srgb_to_lab(np.clip(checker.reference["linear_srgb"], 0.0, 1.0))
    de = delta_e00(linear_srgb_to_lab(d.patches), truth)
    assert d.patches.shape == (24, 3)
    assert de.max() < 2.0, de.round(2)
    # the quad encloses the chart's centre and is rotated by about the chart's angle
    centre = np.array([500.0, 350.0])
    assert np.linalg.norm(d.quad.mean(axis=0) - centre) < 20
    assert d.to_dict()["quad"] == d.quad.tolist()


def test_colorchecker_not_found():
    pytest.importorskip("colour_checker_detection")
    with pytest.raises(InvalidParameter):
        detect_colorchecker(np.full((3, 200, 300), 0.5))


def test_detection_without_the_package_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "colour_checker_detection", None)  # import now raises ImportError
    with pytest.raises(ObscuraError, match="colour-checker-detection"):
        detect_colorchecker(np.full((3, 200, 300), 0.5))


@pytest.mark.parametrize("angle", [3.0, 8.0])
def test_slanted_edges_found_and_measured(angle, device):
    ch = slanted_edge_chart(size=(480, 640), angle_deg=angle)
    img = ch.scene.linear_srgb().to(device)
    edges = find_slanted_edges(img)
    assert len(edges) == 48  # 12 squares × 4 sides
    assert sum(e.orientation == "vertical" for e in edges) == 24
    for e in edges[::5]:
        x0, y0, x1, y1 = e.roi
        r = esfr(img[:, y0:y1, x0:x1])
        assert abs(abs(r.angle_deg) - angle) < 0.05
        assert abs(abs(e.angle_deg) - angle) < 0.2
    # the chart's own ROI for the first square's right side measures the same MTF50 as a found one
    ref = esfr(img[:, slice(*ch.rois["edge_r0c0_v"][1::2]), slice(*ch.rois["edge_r0c0_v"][::2])])
    found = next(e for e in edges if e.orientation == "vertical")
    x0, y0, x1, y1 = found.roi
    assert esfr(img[:, y0:y1, x0:x1]).mtf50 == pytest.approx(ref.mtf50, rel=0.03)


def test_slanted_edges_outside_angle_range_and_noise():
    ch = slanted_edge_chart(size=(480, 640), angle_deg=1.0)
    img = ch.scene.linear_srgb().numpy()
    assert find_slanted_edges(img) == []  # 1° is below the 2° minimum
    ch = slanted_edge_chart(size=(480, 640), angle_deg=5.0)
    noisy = ch.scene.linear_srgb().numpy() + np.random.default_rng(0).normal(0.0, 0.01, (3, 480, 640))
    edges = find_slanted_edges(noisy)
    assert len(edges) >= 40
    assert all(abs(abs(e.angle_deg) - 5.0) < 0.5 for e in edges)
    assert find_slanted_edges(np.full((200, 200), 0.5)) == []


def test_bad_inputs():
    img = np.zeros((3, 200, 200))
    with pytest.raises(InvalidParameter):
        find_slanted_edges(img, min_length=5)
    with pytest.raises(InvalidParameter):
        find_slanted_edges(img, angle_range=(20, 2))
    with pytest.raises(ShapeError):
        find_slanted_edges(np.zeros((2, 200, 200)))
    with pytest.raises(ShapeError):
        find_slanted_edges(np.zeros((30, 30)))
    with pytest.raises(ShapeError):
        detect_colorchecker(np.zeros((200, 200)))
    with pytest.raises(InvalidParameter):
        detect_colorchecker(img, samples=0)
