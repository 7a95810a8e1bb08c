"""Scenes: unprocessing (Brooks et al. 2019), RGB and reflectance scenes, loaders, validation."""

from __future__ import annotations

import math

import colour
import numpy as np
import pytest
import torch

from obscura.core.errors import (
    CorruptFile,
    InputError,
    InvalidParameter,
    ObscuraError,
    ShapeError,
    UnknownMethod,
    UnsupportedFormat,
)
from obscura.core.types import Image
from obscura.sim import spectral
from obscura.sim.scene import Scene, flat_scene, load_scene, scene_from_reflectances, scene_from_rgb, unprocess_srgb

L = spectral.WAVELENGTHS.size


def _brooks_forward(x: np.ndarray) -> np.ndarray:
    """Brooks et al. 2019 processing tail: gamma (here the sRGB curve, from colour-science) then smoothstep."""
    y = colour.cctf_encoding(x, function="sRGB")
    return 3 * y**2 - 2 * y**3


# --- unprocess_srgb ----------------------------------------------------------------------------
def test_unprocess_inverts_brooks_forward(device):
    x = np.linspace(0.0, 1.0, 2001)
    y = torch.tensor(_brooks_forward(x), dtype=torch.float64, device=device)
    back = unprocess_srgb(y).cpu().numpy()
    assert np.abs(back - x).max() < 1e-5
    # float32: the same within float32 rounding through asin near the ends
    back32 = unprocess_srgb(y.float()).cpu().numpy()
    assert np.abs(back32 - x).max() < 2e-4


def test_unprocess_without_tone_is_srgb_decoding(device):
    y = np.linspace(0.0, 1.0, 1001)
    ours = unprocess_srgb(torch.tensor(y, device=device), tone=False).cpu().numpy()
    assert np.abs(ours - colour.cctf_decoding(y, function="sRGB")).max() < 1e-12


def test_unprocess_tone_curve_darkens_midtones_and_keeps_ends():
    y = torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64)
    # inverse smoothstep of 0.5 is 0.5, so the midtone is the sRGB decoding of 0.5
    assert unprocess_srgb(y).tolist() == pytest.approx([0.0, colour.cctf_decoding(0.5, function="sRGB"), 1.0])
    # out-of-range inputs are clipped as Brooks does
    assert unprocess_srgb(torch.tensor([-0.5, 1.5])).tolist() == pytest.approx([0.0, 1.0])


def test_unprocess_bad_input():
    with pytest.raises(ShapeError, match="float tensor"):
        unprocess_srgb(torch.zeros(3, 2, 2, dtype=torch.uint8))
    with pytest.raises(ShapeError):
        unprocess_srgb(np.zeros((3, 2, 2)))


# --- scene_from_rgb ----------------------------------------------------------------------------
def _rgb(h=12, w=16, seed=0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand((3, h, w), generator=g)


def test_linear_rgb_scene_reproduces_srgb_and_xyz(device):
    x = _rgb().to(device)
    s = scene_from_rgb(x, encoding="linear")
    assert s.size == (12, 16) and s.device.type == device and s.num_spectra == 3
    # the Mallett & Yuksel basis resampled to our 10 nm grid reproduces sRGB within 1% (measured 0.71%)
    err = (s.linear_srgb() - x).abs().max().item()
    assert err < 1e-2
    # XYZ against colour-science's sRGB → XYZ of the same values
    ref = colour.RGB_to_XYZ(x.permute(1, 2, 0).cpu().double().numpy(), "sRGB")
    assert np.abs(s.xyz().permute(1, 2, 0).cpu().numpy() - ref).max() < 1e-2


def test_encoded_rgb_scene_is_unprocessed(device):
    x = _rgb(seed=1).to(device)
    s = scene_from_rgb(x)  # default: display-encoded sRGB with Brooks' tone curve
    assert torch.allclose(s.weights, unprocess_srgb(x), atol=1e-6)
    s2 = scene_from_rgb(x, unprocess=False)
    ref = colour.cctf_decoding(x.cpu().double().numpy(), function="sRGB")
    assert np.abs(s2.weights.cpu().numpy() - ref).max() < 1e-6


def test_rgb_scene_clips_negative_and_keeps_hdr():
    x = torch.tensor([[[-0.5, 4.0]], [[0.2, 4.0]], [[0.1, 4.0]]])
    s = scene_from_rgb(x, encoding="linear", luminance=250.0)
    assert s.weights[:, 0, 0].tolist() == pytest.approx([0.0, 0.2, 0.1])
    assert s.weights[:, 0, 1].tolist() == pytest.approx([4.0, 4.0, 4.0])
    assert s.xyz()[1, 0, 1].item() == pytest.approx(4.0, rel=1e-2)
    assert s.luminance == 250.0


def test_rgb_scene_from_image_uses_its_space():
    x = _rgb(4, 5, seed=2)
    a = scene_from_rgb(Image(x, "srgb"))
    assert torch.equal(a.weights, scene_from_rgb(x).weights)
    b = scene_from_rgb(Image(x, "linear_srgb"))
    assert torch.allclose(b.weights, x)
    # Display P3 linear → linear sRGB with colour-science's matrix (negatives clipped to 0)
    c = scene_from_rgb(Image(x, "linear_p3"))
    ref = colour.RGB_to_RGB(x.permute(1, 2, 0).double().numpy(), "Display P3", "sRGB")
    assert np.abs(c.weights.permute(1, 2, 0).numpy() - np.clip(ref, 0, None)).max() < 1e-3
    with pytest.raises(InvalidParameter, match="camera"):
        scene_from_rgb(Image(x, "camera"))


def test_illuminant_a_scene_adapts_to_neutral():
    # a flat white under A: XYZ is A's white; adapted linear sRGB is neutral
    s = flat_scene((3, 4), illuminant="A")
    xyz = s.xyz()[:, 0, 0].double().numpy()
    x, y = xyz[0] / xyz.sum(), xyz[1] / xyz.sum()
    assert (x, y) == pytest.approx(colour.CCS_ILLUMINANTS["CIE 1931 2 Degree Standard Observer"]["A"], abs=2e-4)
    rgb = s.linear_srgb(adapt=True)[:, 0, 0]
    assert (rgb - 1.0).abs().max().item() < 1e-3
    raw = s.linear_srgb(adapt=False)[:, 0, 0]
    assert raw[0] > 1.3 * raw[2]  # unadapted, A's orange cast stays
    # greys of an sRGB image lit by A adapt to the same greys: Mallett's basis sums to a flat
    # reflectance (saturated colours shift under A, as real reflectances do: not tested)
    grey = torch.linspace(0.0, 2.0, 7).reshape(1, 1, 7).expand(3, 1, 7)
    t = scene_from_rgb(grey, encoding="linear", illuminant="A")
    assert (t.linear_srgb() - grey).abs().max().item() < 2e-3


def test_scene_lux_sets_luminance():
    s = flat_scene((2, 2), lux=1000.0)
    assert s.luminance == pytest.approx(1000.0 / math.pi)
    with pytest.raises(InvalidParameter, match="not both"):
        flat_scene((2, 2), lux=10.0, luminance=5.0)
    with pytest.raises(InvalidParameter, match="luminance"):
        scene_from_rgb(_rgb(2, 2), luminance=-1.0)
    with pytest.raises(InvalidParameter, match="lux"):
        flat_scene((2, 2), lux=-3.0)


def test_rgb_scene_bad_input():
    with pytest.raises(ShapeError, match=r"\(3, H, W\)"):
        scene_from_rgb(torch.zeros(4, 5, 5))
    with pytest.raises(ShapeError, match=r"\(3, H, W\)"):
        scene_from_rgb(torch.zeros(5, 5))
    with pytest.raises(ShapeError, match="float"):
        scene_from_rgb(torch.zeros(3, 5, 5, dtype=torch.uint8))
    with pytest.raises(ShapeError):
        scene_from_rgb(np.zeros((3, 5, 5)))
    with pytest.raises(InvalidParameter, match="finite"):
        scene_from_rgb(torch.full((3, 2, 2), float("nan")), encoding="linear")
    with pytest.raises(InvalidParameter, match="encoding"):
        scene_from_rgb(_rgb(2, 2), encoding="gamma22")
    with pytest.raises(UnknownMethod, match="D65"):
        scene_from_rgb(_rgb(2, 2), illuminant="moonlight")


# --- Scene validation and methods --------------------------------------------------------------
def test_indexed_and_weighted_scenes_agree(device):
    g = torch.Generator().manual_seed(4)
    basis = torch.rand((5, L), generator=g).to(device)
    labels = torch.randint(0, 5, (6, 7), generator=g).to(device)
    a = Scene(basis=basis, labels=labels)
    onehot = torch.nn.functional.one_hot(labels, 5).permute(2, 0, 1).float()
    b = Scene(basis=basis, weights=onehot)
    curves = torch.rand((4, L), generator=g).to(device)
    ra, rb = a.response(curves), b.response(curves)
    assert ra.shape == (4, 6, 7)
    assert torch.allclose(ra, rb, rtol=1e-5)
    # response is the per-pixel spectral integral Σ_λ curve·spectrum
    y, x = 2, 3
    ref = (curves.double().cpu() @ basis[labels[y, x]].double().cpu()).float()
    assert torch.allclose(ra[:, y, x].cpu(), ref, rtol=1e-5)
    # XYZ of the basis spectra match spectral.xyz_from_spectra (colour-science CMFs)
    want = spectral.xyz_from_spectra(basis.cpu().double().numpy())[labels.cpu().numpy()]
    assert np.abs(a.xyz().permute(1, 2, 0).cpu().numpy() - want).max() < 1e-5


def test_scene_to_and_replace(device):
    s = flat_scene((3, 4), value=0.5, depth=2.0)
    t = s.to(device)
    assert t.device.type == device and t.weights.device.type == device
    assert s.device.type == "cpu"  # the original is unchanged
    d = torch.full((3, 4), 3.0)
    u = s.replace(depth=d, name="x")
    assert u.name == "x" and u.depth is d and s.depth == 2.0
    v = u.to(device)
    assert v.depth.device.type == device
    assert s.xyz()[1, 0, 0].item() == pytest.approx(0.5, rel=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "err", "match"),
    [
        ({"basis": torch.ones(2, L)}, InvalidParameter, "exactly one"),
        (
            {"basis": torch.ones(2, L), "weights": torch.ones(2, 3, 3), "labels": torch.zeros(3, 3, dtype=torch.int64)},
            InvalidParameter,
            "exactly one",
        ),
        ({"basis": torch.ones(2, 10), "weights": torch.ones(2, 3, 3)}, ShapeError, "basis"),
        ({"basis": torch.ones(2, L, dtype=torch.float64), "weights": torch.ones(2, 3, 3)}, ShapeError, "float32"),
        ({"basis": -torch.ones(2, L), "weights": torch.ones(2, 3, 3)}, InvalidParameter, ">= 0"),
        ({"basis": torch.ones(2, L), "weights": torch.ones(3, 3, 3)}, ShapeError, "K from the basis"),
        ({"basis": torch.ones(2, L), "weights": torch.ones(2, 3)}, ShapeError, "weights"),
        ({"basis": torch.ones(2, L), "weights": torch.full((2, 3, 3), float("inf"))}, InvalidParameter, "finite"),
        ({"basis": torch.ones(2, L), "weights": -torch.ones(2, 3, 3)}, InvalidParameter, "finite and >= 0"),
        (
            {"basis": torch.ones(2, L), "labels": torch.full((3, 3), 2, dtype=torch.int64)},
            InvalidParameter,
            r"\[0, 2\)",
        ),
        ({"basis": torch.ones(2, L), "labels": torch.zeros(3, 3)}, ShapeError, "int64"),
        ({"basis": torch.ones(2, L), "weights": torch.ones(2, 0, 3)}, ShapeError, "one pixel"),
        ({"basis": torch.ones(1, L), "weights": torch.ones(1, 3, 3), "luminance": -5.0}, InvalidParameter, "luminance"),
        ({"basis": torch.ones(1, L), "weights": torch.ones(1, 3, 3), "depth": 0.0}, InvalidParameter, "depth"),
        ({"basis": torch.ones(1, L), "weights": torch.ones(1, 3, 3), "depth": torch.ones(4, 3)}, ShapeError, "depth"),
        (
            {"basis": torch.ones(1, L), "weights": torch.ones(1, 3, 3), "depth": -torch.ones(3, 3)},
            InvalidParameter,
            "depth",
        ),
        ({"basis": torch.ones(1, L), "weights": torch.ones(1, 3, 3), "illuminant": "X9"}, UnknownMethod, "D65"),
    ],
)
def test_scene_validation(kwargs, err, match):
    with pytest.raises(err, match=match):
        Scene(**kwargs)


def test_response_bad_curves():
    s = flat_scene((2, 2))
    with pytest.raises(ShapeError, match="curves"):
        s.response(torch.ones(3, 10))


# --- reflectance and flat scenes ---------------------------------------------------------------
def test_reflectance_scene_resamples_and_matches_colour_science():
    # the BabelColor spectra as colour-science ships them (native 10 nm, 380–730), resampled by us
    sds = colour.SDS_COLOURCHECKERS["BabelColor Average"]
    wl = sds["dark skin"].wavelengths
    refl = np.stack([sds[n].values for n in sds])
    labels = torch.arange(24).reshape(4, 6)
    s = scene_from_reflectances(refl, labels, wavelengths=wl, illuminant="D65", lux=500.0)
    assert s.luminance == pytest.approx(500.0 / math.pi)
    cmfs = colour.MSDS_CMFS["CIE 1931 2 Degree Standard Observer"]
    with colour.utilities.suppress_warnings(colour_runtime_warnings=True, colour_usage_warnings=True):
        ref = np.array([colour.sd_to_XYZ(sds[n], cmfs, colour.SDS_ILLUMINANTS["D65"]) for n in sds]) / 100
    ours = s.xyz().reshape(3, 24).T.numpy()
    assert np.abs(ours - ref).max() < 1e-3


def test_reflectance_scene_bad_input():
    with pytest.raises(ShapeError, match="wavelengths"):
        scene_from_reflectances(np.ones((2, 20)), torch.zeros(2, 2, dtype=torch.int64))
    with pytest.raises(InvalidParameter, match=">= 0"):
        scene_from_reflectances(-np.ones((2, L)), torch.zeros(2, 2, dtype=torch.int64))
    with pytest.raises(ShapeError, match="integer"):
        scene_from_reflectances(np.ones((2, L)), torch.zeros(2, 2))
    with pytest.raises(ShapeError, match=r"\(H, W\)"):
        scene_from_reflectances(np.ones((2, L)), torch.zeros(2, 2, 2, dtype=torch.int64))
    with pytest.raises(InvalidParameter, match=r"\[0, 2\)"):
        scene_from_reflectances(np.ones((2, L)), torch.full((2, 2), 5))


def test_flat_scene_values(device):
    s = flat_scene((5, 6), value=0.18, illuminant="D50", luminance=1000.0, device=device)
    xyz = s.xyz()
    assert s.size == (5, 6) and s.device.type == device and s.luminance == 1000.0
    d50 = spectral.xyz_from_spectra(spectral.illuminant_spd("D50"))
    assert np.abs(xyz[:, 2, 3].cpu().double().numpy() - 0.18 * d50).max() < 1e-6
    assert torch.equal(xyz, xyz[:, :1, :1].expand_as(xyz))
    refl = np.linspace(0.1, 0.9, L)
    t = flat_scene((2, 2), value=refl)
    assert t.xyz()[1, 0, 0].item() == pytest.approx(spectral.luminance_factor(refl * spectral.illuminant_spd("D65")))
    with pytest.raises(InvalidParameter, match="value"):
        flat_scene((2, 2), value=-1.0)
    with pytest.raises(ShapeError, match="one spectrum"):
        flat_scene((2, 2), value=np.ones(7))
    with pytest.raises(InvalidParameter, match="size"):
        flat_scene((0, 3))
    with pytest.raises(InvalidParameter, match="size"):
        flat_scene("big")


# --- loaders -----------------------------------------------------------------------------------
def _lin(h=6, w=9, seed=5) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0.0, 3.0, (h, w, 3)).astype(np.float32)


def test_load_npy_both_layouts_and_grey(tmp_path):
    a = _lin()
    np.save(tmp_path / "hwc.npy", a)
    np.save(tmp_path / "chw.npy", np.ascontiguousarray(a.transpose(2, 0, 1)))
    np.save(tmp_path / "grey.npy", a[..., 1])
    want = torch.from_numpy(a.transpose(2, 0, 1))
    for name in ("hwc", "chw"):
        s = load_scene(tmp_path / f"{name}.npy")
        assert s.name == name and torch.equal(s.weights, want)
    g = load_scene(tmp_path / "grey.npy")
    assert torch.equal(g.weights, want[1:2].expand(3, -1, -1))


def test_load_float_tiff_and_exr(tmp_path):
    import OpenEXR
    import tifffile

    a = _lin(seed=6)
    want = torch.from_numpy(a.transpose(2, 0, 1))
    tifffile.imwrite(tmp_path / "f.tif", a, photometric="rgb")
    assert torch.equal(load_scene(tmp_path / "f.tif").weights, want)
    header = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}
    with OpenEXR.File(header, {"RGB": a}) as f:
        f.write(str(tmp_path / "f.exr"))
    assert torch.equal(load_scene(tmp_path / "f.exr").weights, want)
    with OpenEXR.File(header, {"Y": a[..., 0].copy()}) as f:
        f.write(str(tmp_path / "y.exr"))
    assert torch.equal(load_scene(tmp_path / "y.exr").weights, want[:1].expand(3, -1, -1))


def test_load_integer_images_are_unprocessed(tmp_path):
    import tifffile
    from PIL import Image as PILImage

    rng = np.random.default_rng(7)
    a8 = rng.integers(0, 256, (6, 9, 3), dtype=np.uint8)
    a16 = rng.integers(0, 65536, (6, 9, 3), dtype=np.uint16)
    PILImage.fromarray(a8).save(tmp_path / "a.png")
    tifffile.imwrite(tmp_path / "b.tif", a16, photometric="rgb")
    import imagecodecs

    (tmp_path / "c.png").write_bytes(imagecodecs.png_encode(a16))
    PILImage.fromarray(a8[..., 0]).save(tmp_path / "g.png")
    for path, arr in (("a.png", a8), ("b.tif", a16), ("c.png", a16)):
        y = arr.astype(np.float64) / np.iinfo(arr.dtype).max
        x = 0.5 - np.sin(np.arcsin(1 - 2 * y) / 3)  # Brooks' inverse smoothstep
        want = colour.cctf_decoding(x, function="sRGB").transpose(2, 0, 1)
        s = load_scene(tmp_path / path)
        assert np.abs(s.weights.numpy() - want).max() < 1e-5, path
        lin = load_scene(tmp_path / path, encoding="linear")
        assert np.abs(lin.weights.numpy() - y.transpose(2, 0, 1)).max() < 1e-6
    g = load_scene(tmp_path / "g.png", unprocess=False)
    want = colour.cctf_decoding(a8[..., 0] / 255.0, function="sRGB")
    assert np.abs(g.weights.numpy() - want[None]).max() < 1e-6


def test_load_jpeg(tmp_path):
    from PIL import Image as PILImage

    a8 = np.full((8, 8, 3), (200, 120, 40), dtype=np.uint8)
    PILImage.fromarray(a8).save(tmp_path / "a.jpg", quality=95)
    s = load_scene(tmp_path / "a.jpg", encoding="linear")
    assert np.abs(s.weights.numpy().mean((1, 2)) - np.array([200, 120, 40]) / 255).max() < 0.02


def test_load_depth_and_scale(tmp_path):
    a = _lin(seed=8)
    np.save(tmp_path / "s.npy", a)
    depth = np.random.default_rng(9).uniform(0.5, 10.0, a.shape[:2]).astype(np.float32)
    np.save(tmp_path / "d.npy", depth)
    s = load_scene(tmp_path / "s.npy", depth=tmp_path / "d.npy", lux=314.159, illuminant="D50")
    assert torch.equal(s.depth, torch.from_numpy(depth))
    assert s.luminance == pytest.approx(100.0, rel=1e-5) and s.illuminant == "D50"
    t = load_scene(tmp_path / "s.npy", depth=torch.from_numpy(depth), luminance=40.0)
    assert torch.equal(t.depth, s.depth) and t.luminance == 40.0
    with pytest.raises(ShapeError, match="depth"):
        load_scene(tmp_path / "s.npy", depth=np.ones((2, 2), dtype=np.float32))
    with pytest.raises(InvalidParameter, match="depth"):
        load_scene(tmp_path / "s.npy", depth=np.zeros(a.shape[:2], dtype=np.float32))


def test_load_bad_input(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        load_scene(tmp_path / "missing.png")
    with pytest.raises(InputError, match="not a file"):
        load_scene(tmp_path)
    (tmp_path / "x.gif").write_bytes(b"GIF89a")
    with pytest.raises(UnsupportedFormat, match=r"x\.gif"):
        load_scene(tmp_path / "x.gif")
    (tmp_path / "bad.png").write_bytes(b"not a png at all")
    with pytest.raises(CorruptFile, match=r"bad\.png"):
        load_scene(tmp_path / "bad.png")
    cases = {
        "rgba.npy": (np.ones((4, 4, 4), np.float32), ShapeError),
        "line.npy": (np.ones(16, np.float32), ShapeError),
        "nan.npy": (np.full((4, 4, 3), np.nan, np.float32), InvalidParameter),
        "int.npy": (np.ones((4, 4, 3), np.int32), UnsupportedFormat),
    }
    for name, (arr, err) in cases.items():
        np.save(tmp_path / name, arr)
        with pytest.raises(err, match=name):
            load_scene(tmp_path / name)
    np.save(tmp_path / "ok.npy", np.ones((4, 4, 3), np.float32))
    with pytest.raises(InvalidParameter, match=r"ok\.npy.*luminance"):
        load_scene(tmp_path / "ok.npy", luminance=-1.0)
    with pytest.raises(InvalidParameter, match="encoding"):
        load_scene(tmp_path / "ok.npy", encoding="log")
    with pytest.raises(ObscuraError, match=r"d\.gif"):
        load_scene(tmp_path / "ok.npy", depth=tmp_path / "d.gif")


def test_load_babelcolor_csv_scene(data_dir):
    wl, refl = spectral.read_spectra_csv(data_dir / "charts" / "colour_reference" / "babelcolor_average.csv")
    s = scene_from_reflectances(refl, torch.arange(24).reshape(4, 6), wavelengths=wl)
    ours = s.xyz().reshape(3, 24).T.numpy()
    want = spectral.xyz_from_spectra(spectral.colorchecker_reflectances() * spectral.illuminant_spd("D65"))
    assert np.abs(ours - want).max() < 2e-3  # the CSV holds 3 decimals
