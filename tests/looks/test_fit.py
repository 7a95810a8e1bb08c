"""Fitting a look (3D LUT) from before/after pairs; ΔE00 checked with colour-science in the test."""

from __future__ import annotations

import tomllib
from pathlib import Path

import colour
import numpy as np
import pytest
import torch

from obscura.core.errors import InvalidParameter, OutputExists, ShapeError
from obscura.looks.fit import FitResult, _mean_delta_e00, fit_lut, lut_monotonicity, lut_smoothness, save_fit
from obscura.looks.lut import LUT3D, apply_lut, identity_lut, read_cube
from tests.looks.test_lut import known_look, kodak


def de00_colour(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean CIEDE2000 of two sRGB (3, H, W) images, through colour.convert (a path independent of fit.py)."""

    def lab(x):
        rgb = x.permute(1, 2, 0).double().clamp(0, 1).numpy()
        return 100 * colour.convert(rgb, "sRGB", "CIE Lab")  # convert returns Lab on the 0-1 scale

    return float(np.mean(colour.delta_E(lab(a), lab(b), method="CIE 2000")))


@pytest.fixture(scope="module")
def kodak_sets(data_dir):
    return [kodak(data_dir, i) for i in range(1, 13)], [kodak(data_dir, i) for i in range(13, 17)]


def test_fit_recovers_a_known_look_on_held_out_kodak_images(kodak_sets):
    train, test = kodak_sets
    res = fit_lut(train, [known_look(x) for x in train], size=17, steps=200, lr=0.02, batch=1 << 14, seed=0)
    assert isinstance(res, FitResult) and res.steps_run == 200 and res.lut.size == 17
    assert res.delta_e_holdout < 0.5 and res.delta_e_train < 0.5
    before = [de00_colour(x, known_look(x)) for x in test]
    after = [de00_colour(apply_lut(x, res.lut), known_look(x)) for x in test]
    assert np.mean(before) > 4.0  # the look is a real change ...
    assert np.mean(after) < 1.0  # ... and images never seen in the fit get it back (measured ≈ 0.15)
    # fit.py's own ΔE00 agrees with colour.convert's
    assert abs(_mean_delta_e00(apply_lut(test[0], res.lut), known_look(test[0])) - after[0]) < 1e-3


def test_fit_recovers_builtin_vibrant_look(kodak_sets):
    try:
        from obscura.looks.look import apply_look
    except ImportError:
        pytest.skip("obscura.looks.look (built-in looks) is not available")
    train, test = kodak_sets

    def vibrant(x):
        return apply_look(x, look="vibrant", space="srgb")

    res = fit_lut(train, [vibrant(x) for x in train], size=17, steps=200, lr=0.02, batch=1 << 14)
    errs = [de00_colour(apply_lut(x, res.lut), vibrant(x)) for x in test]
    assert np.mean(errs) < 1.0  # measured ≈ 0.5
    assert np.mean([de00_colour(x, vibrant(x)) for x in test]) > 3.0


def test_fit_on_device_and_holdout_statistics(device):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(3, 64, 64, generator=g)
    y = known_look(x)
    res = fit_lut([x.to(device)], [y.to(device)], size=9, steps=150, lr=0.03, batch=1024, holdout=0.25)
    assert res.lut.table.device.type == "cpu" and res.steps_run == 150
    assert res.delta_e_holdout < 1.0 and res.delta_e_train < 1.0
    res0 = fit_lut([x], [y], size=9, steps=1, lr=1e-6, holdout=0.0)
    assert np.isnan(res0.delta_e_holdout)
    assert res0.delta_e_train == pytest.approx(de00_colour(x, y), rel=0.02)  # identity LUT after one tiny step


def test_regularizers_have_known_values():
    ident = identity_lut(9).table
    assert lut_smoothness(ident).item() < 1e-9 and lut_monotonicity(ident).item() == 0
    affine = ident @ torch.tensor([[0.8, 0.1, 0.0], [0.1, 0.9, 0.2], [0.1, 0.0, 0.7]]) + 0.05
    assert lut_smoothness(affine).item() < 1e-9
    # red output falling along red: every difference is -1 after scaling by N-1 → (1 + 0 + 0) / 3
    rev = ident.clone()
    rev[..., 0] = 1 - rev[..., 0]
    assert lut_monotonicity(rev).item() == pytest.approx(1 / 3, rel=1e-5)
    # a quadratic x²: second derivative 2 along red only, on the red output → 4 / 3 (channels) / 3 (axes)
    quad = ident.clone()
    quad[..., 0] = quad[..., 0] ** 2
    assert lut_smoothness(quad).item() == pytest.approx(4 / 9, rel=1e-4)


def test_save_fit_writes_look_and_cube(tmp_path, kodak_sets):
    train, _ = kodak_sets
    x = train[0]
    res = fit_lut([x], [known_look(x)], size=9, steps=20, lr=0.02, batch=4096)
    toml_path, cube_path = save_fit(res, tmp_path / "mine.toml", description='a "quoted" test')
    assert cube_path == tmp_path / "mine.cube"
    d = tomllib.loads(toml_path.read_text())
    assert d["name"] == "mine" and d["description"] == 'a "quoted" test'
    assert d["lut"] == {"file": "mine.cube", "space": "srgb"}
    assert (read_cube(cube_path).table - res.lut.table).abs().max().item() < 1e-6
    with pytest.raises(OutputExists, match=r"mine\.toml"):
        save_fit(res, tmp_path / "mine.toml")
    save_fit(res, tmp_path / "mine.toml", overwrite=True)
    try:
        from obscura.looks.look import apply_look, load_look
    except ImportError:
        return
    look = load_look(toml_path)
    assert look.lut is not None and Path(look.lut.file).name == "mine.cube"
    out = apply_look(x, look=look, space="srgb")
    assert (out - apply_lut(x, res.lut)).abs().max().item() < 1e-4


def test_fit_bad_inputs():
    x = torch.rand(3, 8, 8)
    with pytest.raises(InvalidParameter, match="same number"):
        fit_lut([x], [], size=5)
    with pytest.raises(InvalidParameter, match="same number"):
        fit_lut([], [], size=5)
    with pytest.raises(ShapeError, match=r"before\[0\] and after\[0\].*\(3, 8, 8\).*\(3, 4, 4\)"):
        fit_lut([x], [torch.rand(3, 4, 4)], size=5)
    with pytest.raises(ShapeError, match=r"after\[0\].*\(8, 8\)"):
        fit_lut([x], [torch.rand(8, 8)], size=5)
    with pytest.raises(InvalidParameter, match="size"):
        fit_lut([x], [x], size=1)
    with pytest.raises(InvalidParameter, match="lr"):
        fit_lut([x], [x], lr=-1)
    with pytest.raises(InvalidParameter, match="holdout"):
        fit_lut([x], [x], holdout=0.95)
    with pytest.raises(InvalidParameter, match="steps"):
        fit_lut([x], [x], steps=0)
    with pytest.raises(InvalidParameter, match="non-finite"):
        fit_lut([x], [x / 0], size=5)
    with pytest.raises(InvalidParameter, match="FitResult"):
        save_fit(LUT3D(torch.zeros(2, 2, 2, 3)), "x.toml")
    with pytest.raises(ShapeError, match="delta_e00"):
        _mean_delta_e00(torch.rand(3, 4), torch.rand(3, 5))
