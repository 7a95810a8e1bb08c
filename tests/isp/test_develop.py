"""develop end to end on every real raw, and colour against LibRaw in the same run."""

from __future__ import annotations

import io as _io

import colour
import numpy as np
import pytest
import rawpy
import torch
from PIL import Image as PILImage

from obscura.core.errors import InvalidParameter, ShapeError, UnknownMethod
from obscura.core.types import QUAD_BAYER_PATTERNS, Image, RawFrame, RawMeta
from obscura.io.write import write
from obscura.isp.develop import develop, orient
from obscura.isp.recipe import RECIPES, get_recipe, load_recipe
from tests.rawfiles import HEADERLESS, LIBRAW_FILES, read_any


def _expected_size(frame: RawFrame) -> tuple[int, int]:
    """(width, height) of the developed photo: DefaultCrop, then Orientation."""
    w, h = frame.width, frame.height
    if frame.meta.default_crop:
        _, _, w, h = frame.meta.default_crop
    return (h, w) if frame.meta.orientation in (5, 6, 7, 8) else (w, h)


@pytest.mark.parametrize("rel", LIBRAW_FILES + list(HEADERLESS))
def test_every_real_raw_develops_to_a_valid_jpeg(data_dir, tmp_path, rel):
    frame = read_any(data_dir, rel)
    image = develop(frame, recipe="default")
    assert image.space == "srgb" and image.data.dtype == torch.float32
    assert torch.isfinite(image.data).all() and image.data.min() >= 0 and image.data.max() <= 1
    assert image.data.std() > 0.02  # not a flat or black picture
    out = write(image, tmp_path / "out.jpg")
    with PILImage.open(out) as im:
        im.load()
        assert im.format == "JPEG" and im.size == _expected_size(frame)
        exif = im.getexif()
        assert exif.get(0x0131, "").startswith("obscura")  # Software
        if frame.meta.make:
            assert exif.get(0x010F) == frame.meta.make
        if frame.meta.model:
            assert exif.get(0x0110) == frame.meta.model
        assert im.info.get("icc_profile")


def _libraw_reference(path) -> np.ndarray:
    with rawpy.imread(str(path)) as r:
        rgb = r.postprocess(
            use_camera_wb=True,
            no_auto_bright=True,
            output_color=rawpy.ColorSpace.sRGB,
            gamma=(2.4, 12.92),
            output_bps=16,
            adjust_maximum_thr=0.0,  # LibRaw's default rescales white to the data maximum (an exposure heuristic)
        )
    return rgb.astype(np.float64) / 65535.0


def _mean_delta_e00(a: np.ndarray, b: np.ndarray) -> float:
    lab = [colour.XYZ_to_Lab(colour.sRGB_to_XYZ(x)) for x in (a, b)]
    return float(np.mean(colour.delta_E(lab[0], lab[1], method="CIE 2000")))


@pytest.mark.parametrize("rel", LIBRAW_FILES)
def test_reference_recipe_matches_libraw_colour(data_dir, rel):
    """Mean ΔE00 between our `reference` sRGB rendering and rawpy.postprocess, same file, same run."""
    path = data_dir / "raw" / rel
    frame = read_any(data_dir, rel)
    ours = develop(frame, recipe=get_recipe("reference").replace(crop=False)).data.permute(1, 2, 0).double().numpy()
    ref = _libraw_reference(path)
    h, w = min(ours.shape[0], ref.shape[0]), min(ours.shape[1], ref.shape[1])
    assert abs(ours.shape[0] - ref.shape[0]) <= 8 and abs(ours.shape[1] - ref.shape[1]) <= 8
    b = 8  # borders: demosaic methods differ there
    de = _mean_delta_e00(ours[b : h - b, b : w - b], ref[b : h - b, b : w - b])
    assert de < 2.0, f"{rel}: mean ΔE00 {de:.2f} vs LibRaw"


def test_recipes_differ_and_load_from_toml(tmp_path):
    assert set(RECIPES) >= {"default", "fast", "reference"}
    ref = RECIPES["reference"]
    assert not ref.denoise.enabled and not ref.local_tone.enabled and not ref.sharpen.enabled
    p = tmp_path / "mine.toml"
    p.write_text('base = "fast"\nworking_space = "linear_rec2020"\n[demosaic]\nmethod = "malvar2004"\n')
    r = load_recipe(p)
    assert r.name == "mine" and r.demosaic.method == "malvar2004" and r.working_space == "linear_rec2020"
    assert r.denoise.method == "none"  # from the fast base
    p.write_text("colour_temperature = 5000\n")
    with pytest.raises(InvalidParameter, match="unknown recipe key"):
        load_recipe(p)
    with pytest.raises(InvalidParameter, match="built-in recipes"):
        get_recipe("nope")


def _synthetic_frame(cfa: str, *, size=(64, 96), seed=0) -> tuple[RawFrame, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    h, w = size
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    rgb = torch.stack([0.2 + 0.5 * xx, 0.3 + 0.2 * yy, 0.25 + 0.1 * torch.rand(h, w, generator=g)])
    from obscura.core.cfa import mosaic_rgb

    mosaic = mosaic_rgb(rgb, cfa=cfa) * 4000 + 200
    meta = RawMeta(
        cfa=cfa,
        black_level=(200.0,) * (len(cfa)),
        white_level=4200.0,
        color_matrix1=(1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0),
        as_shot_neutral=(1.0, 1.0, 1.0),
    )
    return RawFrame(mosaic.round(), meta), rgb


def test_develop_quad_bayer_and_linear_output():
    frame, _ = _synthetic_frame(QUAD_BAYER_PATTERNS[0])
    img = develop(frame, recipe="fast")
    assert img.data.shape[0] == 3 and img.data.shape[1] in (32, 64)


def test_develop_does_not_modify_input():
    frame, _ = _synthetic_frame("GRBG")
    before = frame.data.clone()
    develop(frame, recipe="default")
    assert torch.equal(frame.data, before)


def test_develop_bad_inputs():
    with pytest.raises(ShapeError, match="RawFrame"):
        develop(torch.zeros(4, 4))
    frame, _ = _synthetic_frame("RGGB")
    with pytest.raises(UnknownMethod, match="valid methods"):
        develop(frame, recipe=RECIPES["fast"].replace(demosaic=RECIPES["fast"].demosaic.of("nope")))


@pytest.mark.parametrize("o", range(1, 9))
def test_orient_matches_pillow_exif_transpose(o):
    x = torch.arange(2 * 3, dtype=torch.float32).reshape(1, 2, 3).expand(3, -1, -1)
    arr = x[0].numpy().astype(np.uint8)
    im = PILImage.fromarray(arr)
    exif = im.getexif()
    exif[0x0112] = o
    buf = _io.BytesIO()
    im.save(buf, format="PNG", exif=exif)
    from PIL import ImageOps

    ref = np.asarray(ImageOps.exif_transpose(PILImage.open(buf)))
    np.testing.assert_array_equal(orient(x, o)[0].numpy().astype(np.uint8), ref)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_develop_on_cuda_matches_cpu():
    frame, _ = _synthetic_frame("RGGB", size=(128, 128))
    cpu = develop(frame, recipe="default")
    gpu = develop(frame, recipe="default", device="cuda")
    assert gpu.data.device.type == "cuda"
    assert torch.allclose(cpu.data, gpu.data.cpu(), atol=2e-3)


def test_image_type_from_develop_has_meta():
    frame, _ = _synthetic_frame("BGGR")
    img = develop(frame, recipe="reference")
    assert isinstance(img, Image) and img.meta is not None and img.meta.cfa == "BGGR"
