"""Looks as data: the built-in looks measured on real photos and on the ColorChecker, TOML loading and its
errors, spaces, batches and strips, LUT tables, and the look stage of develop."""

from __future__ import annotations

import dataclasses

import colour
import numpy as np
import pytest
import torch

from obscura.core.colour import convert, srgb_decode, srgb_encode
from obscura.core.errors import InputError, InvalidParameter, ShapeError, UnknownMethod, UnsupportedFormat
from obscura.io.write import read_image
from obscura.looks import ops
from obscura.looks.look import Gamut, Look, apply_look, list_looks, load_look, look_from_dict, look_srgb_fn

BUILT_IN = {
    "natural",
    "authentic",
    "vibrant",
    "monochrome",
    "monochrome-high-contrast",
    "slide",
    "negative",
    "cinema",
}
CC = colour.CCS_COLOURCHECKERS["ColorChecker24 - After November 2014"]
D50 = CC.illuminant
D65 = colour.CCS_ILLUMINANTS["CIE 1931 2 Degree Standard Observer"]["D65"]


def _photo(seed: int = 0, size=(48, 64)) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, size[0]), torch.linspace(0, 1, size[1]), indexing="ij")
    base = torch.stack([0.02 + 0.8 * xx, 0.05 + 0.5 * yy, 0.1 + 0.4 * xx * yy])
    return (base * (0.5 + torch.rand(3, *size, generator=g))).clamp(0, 1)


# ------------------------------------------------------------------------------------------- built-ins


def test_built_in_looks_load_and_apply():
    assert set(list_looks()) >= BUILT_IN
    x = _photo()
    for name in list_looks():
        lk = load_look(name)
        assert lk.name == name and len(lk.description) > 40 and not lk.is_identity
        y = apply_look(x, look=name)
        assert y.shape == x.shape and bool(torch.isfinite(y).all())
        if name != "natural":
            assert float((y - x).abs().max()) > 1e-3, name  # each look does something
    assert load_look("none").is_identity
    assert torch.equal(apply_look(x, look="none"), x)
    # natural leaves this scene as it is, but for the smooth gamut compression of its most saturated pixels
    nat = apply_look(x, look="natural")
    g = load_look("natural").gamut
    ref = ops.gamut_compress(x, threshold=g.threshold, shoulder=g.shoulder, power=g.power)
    assert float((nat - ref).abs().max()) < 1e-5
    assert float((nat - x).abs().mean()) < 2e-3
    mono = apply_look(x, look="monochrome")
    assert float(ops.mean_chroma(mono)) < 1e-3


def _dataset(data_dir):
    files = sorted((data_dir / "images/kodak24").glob("*.png")) + sorted((data_dir / "images/mcmaster").glob("*.png"))
    assert len(files) == 28
    return files


def test_authentic_and_vibrant_measured_on_kodak_and_mcmaster(data_dir):
    """Per image (subsampled by 4): authentic has a steeper mid-tone curve and darker shadows than natural,
    vibrant a higher mean chroma; the means are printed for the record."""
    rows = {n: [] for n in ("natural", "authentic", "vibrant")}
    for f in _dataset(data_dir):
        img = read_image(f)
        x = img.data[:, ::4, ::4]
        for n, r in rows.items():
            y = apply_look(x, look=n, space=img.space)
            r.append(
                (
                    ops.midtone_slope(x, y, space=img.space),
                    ops.midtone_contrast(y, space=img.space),
                    ops.shadow_depth(y, space=img.space),
                    ops.mean_chroma(y, space=img.space),
                )
            )
    nat, aut, vib = (np.array(rows[k]) for k in ("natural", "authentic", "vibrant"))
    for name, part in (("kodak24 (16)", slice(0, 16)), ("mcmaster (12)", slice(16, 28))):
        for look, a in rows.items():
            m = np.array(a)[part].mean(0)
            print(f"{name:14s} {look:9s} slope {m[0]:.3f} IQR(L) {m[1]:.4f} shadows {m[2]:.4f} chroma {m[3]:.4f}")
    assert np.all(aut[:, 0] > 1.2 * nat[:, 0])  # mid-tone slope of the tone curve
    assert aut[:, 1].mean() > 1.2 * nat[:, 1].mean()  # inter-quartile range of L
    assert np.all(aut[:, 2] < nat[:, 2] - 0.05)  # mean L of the darkest 10 %
    assert np.all(vib[:, 3] > 1.1 * nat[:, 3]) and vib[:, 3].mean() > 1.25 * nat[:, 3].mean()  # mean OKLCh chroma
    assert np.all(vib[:, 2] > nat[:, 2])  # vibrant lifts the shadows
    assert np.allclose(nat[:, 0], 1.0, atol=1e-2)  # identity tone; only the gamut compression moves L


def test_vignetting_differs_authentic_natural_vibrant():
    grey = torch.full((3, 60, 90), 0.18)
    ratios = {n: ops.corner_ratio(apply_look(grey, look=n)) for n in ("natural", "authentic", "vibrant")}
    assert ratios["natural"] == pytest.approx(1.0, abs=1e-4) and ratios["vibrant"] == pytest.approx(1.0, abs=1e-4)
    assert ratios["authentic"] < 0.93


def _colorchecker() -> tuple[np.ndarray, torch.Tensor]:
    XYZ = colour.xyY_to_XYZ(np.array(list(CC.data.values())))  # relative to D50
    return XYZ, torch.tensor(XYZ.T[:, None, :], dtype=torch.float32)


def _oklch_d50(XYZ: np.ndarray) -> np.ndarray:
    xyz65 = colour.chromatic_adaptation(
        XYZ, colour.xy_to_XYZ(D50), colour.xy_to_XYZ(D65), method="Von Kries", transform="Bradford"
    )
    return colour.Oklab_to_Oklch(colour.XYZ_to_Oklab(xyz65))


def test_colorchecker_natural_delta_e_and_vibrant_skin_hue():
    XYZ, img = _colorchecker()
    h0 = _oklch_d50(XYZ)[:2, 2]
    out = {}
    for n in ("natural", "vibrant"):
        y = apply_look(img, look=n, space="xyz_d50")[:, 0, :].T.double().numpy()
        de = colour.delta_E(colour.XYZ_to_Lab(XYZ, D50), colour.XYZ_to_Lab(y, D50), method="CIE 2000")
        dh = (_oklch_d50(y)[:2, 2] - h0 + 180) % 360 - 180
        out[n] = (de.mean(), np.abs(dh).max())
        print(f"ColorChecker {n}: mean ΔE00 {de.mean():.3f}, skin hue change {np.abs(dh).max():.3f}°")
    assert out["natural"][0] < 1.0
    assert out["vibrant"][0] > 3.0  # vibrant does change colours ...
    assert out["vibrant"][1] < 3.0  # ... but dark and light skin keep their hue within 3°
    # protection matters: a look that turns reds and yellows by 20° moves skin unless protected
    turn = {"colour": {"saturation": 1.3, "hue_by_hue": {"red": 20.0, "yellow": 20.0}}}
    for protect, bound in ((0.0, None), (1.0, 3.0)):
        lk = look_from_dict({**turn, "skin": {"protect": protect}})
        y = apply_look(img, look=lk, space="xyz_d50")[:, 0, :].T.double().numpy()
        dh = np.abs((_oklch_d50(y)[:2, 2] - h0 + 180) % 360 - 180).max()
        assert (dh < bound) if bound else (dh > 10.0)


# ----------------------------------------------------------------------------------- spaces, batches, strips


def test_spaces_batches_and_strips():
    x = _photo(1)
    lk = load_look("monochrome-high-contrast")  # vignetting and grain: position-dependent
    enc = apply_look(srgb_encode(x), look="cinema", space="srgb")
    assert torch.allclose(enc, srgb_encode(apply_look(x, look="cinema")), atol=1e-6)
    pp = convert(x, src="linear_srgb", dst="linear_prophoto")
    cinema = load_look("cinema")
    free = cinema.replace(gamut=Gamut())  # the gamut compression works in (and depends on) the working space
    y_pp = apply_look(pp, look=free, space="linear_prophoto")
    assert torch.allclose(convert(y_pp, src="linear_prophoto", dst="linear_srgb"), apply_look(x, look=free), atol=1e-5)
    y_pp = apply_look(pp * 1.5, look=cinema, space="linear_prophoto")  # lands inside ProPhoto's cube
    assert float(y_pp.min()) > 0.0 and float(y_pp.max()) < 1.0
    batch = torch.stack([x, _photo(2)])
    yb = apply_look(batch, look=lk, seed=5)
    assert torch.allclose(yb[0], apply_look(x, look=lk, seed=5), atol=1e-6)
    assert torch.allclose(yb[1], apply_look(_photo(2), look=lk, seed=6), atol=1e-6)  # frame i: seed + i
    whole = apply_look(x, look=lk)
    strip = apply_look(x[:, 13:30], look=lk, top=13, size=(48, 64))
    assert float((strip - whole[:, 13:30]).abs().max()) < 1e-6
    assert not torch.equal(whole, apply_look(x, look=lk, seed=1))
    xc = x.clone()
    apply_look(x, look="slide")
    assert torch.equal(x, xc)


def test_lut_table_applied_last_in_srgb(tmp_path):
    from obscura.looks.lut import apply_lut, bake_srgb, write_cube

    lut = bake_srgb(lambda e: (0.1 + 0.8 * e.flip(0)) ** 1.1, size=17)  # swaps R and B, lowers contrast
    write_cube(lut, tmp_path / "swap.cube")
    (tmp_path / "mine.toml").write_text('description = "x"\n[tone]\ncontrast = 1.2\n[lut]\nfile = "swap.cube"\n')
    lk = load_look(tmp_path / "mine.toml")
    assert lk.name == "mine" and lk.lut is not None
    x = _photo(3)
    y = apply_look(x, look=lk)
    without = apply_look(x, look=lk.replace(lut=None))
    ref = srgb_decode(apply_lut(srgb_encode(without).clamp(0, 1), lut))
    assert torch.allclose(y, ref, atol=1e-5)


def test_export_fn_matches_the_look():
    from obscura.looks.lut import apply_lut, bake_srgb

    fn = look_srgb_fn("authentic")
    lut = bake_srgb(fn, size=33)
    e = srgb_encode(_photo(4))
    direct = apply_look(e, look=load_look("authentic").without_spatial(), space="srgb").clamp(0, 1)
    assert float((apply_lut(e, lut) - direct).abs().mean()) < 2e-3


# -------------------------------------------------------------------------------------------- TOML


def test_toml_base_round_trip_and_defaults(tmp_path):
    p = tmp_path / "warm.toml"
    p.write_text('base = "authentic"\nname = "warm"\n[split_toning]\nhighlight_strength = 0.5\n')
    lk = load_look(p)
    auth = load_look("authentic")
    assert lk.tone == auth.tone and lk.vignette == auth.vignette
    assert lk.split_toning.highlight_strength == 0.5
    assert look_from_dict(lk.to_dict()) == lk
    (tmp_path / "child.toml").write_text('base = "warm.toml"\n[grain]\nstrength = 0.2\n')
    child = load_look(tmp_path / "child.toml")
    assert child.split_toning == lk.split_toning and child.grain.strength == 0.2 and child.name == "child"
    mono = look_from_dict({"monochrome": {"amount": 1.0, "filter": "orange"}})
    assert (mono.monochrome.filter_hue, mono.monochrome.filter_strength) == ops.MONO_FILTERS["orange"]
    assert Look().is_identity and all(load_look(n).to_dict()["description"] for n in list_looks())


@pytest.mark.parametrize(
    ("data", "error", "needles"),
    [
        ({"tone": {"contrast": 9.0}}, InvalidParameter, ["tone.contrast", "[0.25, 4.0]", "9.0"]),
        ({"grain": {"strength": -1}}, InvalidParameter, ["grain.strength", "[0.0, 1.0]"]),
        ({"vignette": {"strength": "big"}}, InvalidParameter, ["vignette.strength", "number"]),
        ({"tone": {"contrast": True}}, InvalidParameter, ["tone.contrast"]),
        ({"tone": {"contrst": 1.0}}, InvalidParameter, ["contrst", "contrast", "highlight_rolloff"]),
        ({"colours": {}}, InvalidParameter, ["colours", "colour", "vignette"]),
        ({"tone": 3}, InvalidParameter, ["[tone] must be a table"]),
        ({"colour": {"saturation_by_hue": {"purple": 0.2}}}, InvalidParameter, ["purple", "magenta"]),
        ({"colour": {"hue_by_hue": {"red": 90}}}, InvalidParameter, ["hue_by_hue.red", "[-60.0, 60.0]"]),
        ({"monochrome": {"filter": "blue"}}, InvalidParameter, ["monochrome.filter", "orange"]),
        ({"lut": {"file": "nope.cube"}}, InputError, ["nope.cube"]),
        ({"lut": {"file": "a.cube", "space": "linear"}}, InvalidParameter, ["lut.space"]),
        ({"base": "nope"}, UnknownMethod, ["nope", "authentic", "vibrant"]),
    ],
)
def test_bad_look_data(data, error, needles):
    with pytest.raises(error) as e:
        look_from_dict(data, source="mine.toml")
    for n in needles:
        assert n in str(e.value), (n, str(e.value))


def test_bad_look_names_files_and_arguments(tmp_path):
    with pytest.raises(UnknownMethod) as e:
        load_look("vivid")
    assert "vivid" in str(e.value) and all(n in str(e.value) for n in BUILT_IN)
    (tmp_path / "bad.toml").write_text("[tone\ncontrast = 1")
    with pytest.raises(UnsupportedFormat, match=r"bad\.toml"):
        load_look(tmp_path / "bad.toml")
    with pytest.raises(InputError, match="missing"):
        load_look(tmp_path / "missing.toml")
    with pytest.raises(InvalidParameter, match="look must be"):
        load_look(3)
    x = _photo()
    with pytest.raises(ShapeError, match=r"got \(48, 64\)"):
        apply_look(x[0], look="vibrant")
    with pytest.raises(InvalidParameter, match="space must be one of"):
        apply_look(x, look="vibrant", space="camera")
    with pytest.raises(ShapeError, match="size"):
        apply_look(x, look="vibrant", top=10, size=(40, 64))
    with pytest.raises(InvalidParameter, match="top"):
        apply_look(x, look="vibrant", top=-1)
    with pytest.raises(InvalidParameter, match="seed"):
        apply_look(x, look="vibrant", seed=0.5)


# --------------------------------------------------------------------------------------------- develop


def test_develop_look_stage_strips_and_recipe_toml(tmp_path):
    from obscura.isp.develop import develop
    from obscura.isp.recipe import get_recipe, load_recipe
    from tests.isp.test_develop import _bayer_frame

    frame = _bayer_frame(size=(160, 120))
    r = get_recipe("fast")
    plain = develop(frame, recipe=r).data
    assert torch.equal(develop(frame, recipe=r.replace(look="none")).data, plain)
    lr = r.replace(look="monochrome-high-contrast")
    whole = develop(frame, recipe=lr, tile_rows=None).data
    strips = develop(frame, recipe=lr, tile_rows=16).data
    assert float((strips - whole).abs().max()) <= 2e-5  # vignetting and grain in full-frame coordinates
    assert float(ops.mean_chroma(whole, space="srgb")) < 2e-3 < float(ops.mean_chroma(plain, space="srgb"))
    (tmp_path / "r.toml").write_text('base = "fast"\nlook = "authentic"\n')
    rec = load_recipe(tmp_path / "r.toml")
    assert rec.look == "authentic"
    auth = develop(frame, recipe=rec).data
    assert ops.shadow_depth(auth, space="srgb") < ops.shadow_depth(plain, space="srgb")
    with pytest.raises(UnknownMethod, match="vivid"):
        develop(frame, recipe=r.replace(look="vivid"))
    (tmp_path / "bad.toml").write_text('base = "fast"\nlook = 3\n')
    with pytest.raises(InvalidParameter, match="look"):
        load_recipe(tmp_path / "bad.toml")
    assert dataclasses.asdict(get_recipe("default"))["look"] == "none"
