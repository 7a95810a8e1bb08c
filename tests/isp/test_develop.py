"""develop end to end on every real raw, and colour against LibRaw in the same run."""

from __future__ import annotations

import io as _io

import numpy as np
import pytest
import torch
from PIL import Image as PILImage

from obscura.core.errors import InvalidParameter, ShapeError, UnknownMethod
from obscura.core.types import QUAD_BAYER_PATTERNS, Image, RawFrame, RawMeta
from obscura.io.write import write
from obscura.isp.develop import develop, orient
from obscura.isp.recipe import RECIPES, get_recipe, load_recipe
from obscura.lab.baseline import libraw_srgb, mean_delta_e00
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


@pytest.mark.parametrize("rel", LIBRAW_FILES)
def test_reference_recipe_matches_libraw_colour(data_dir, rel):
    """Mean ΔE00 between our `reference` sRGB rendering and rawpy.postprocess, same file, same run."""
    path = data_dir / "raw" / rel
    frame = read_any(data_dir, rel)
    ours = develop(frame, recipe=get_recipe("reference").replace(crop=False)).data.permute(1, 2, 0).double().numpy()
    ref = libraw_srgb(path)  # rawpy.postprocess, camera WB, sRGB, no auto-bright, 16 bit
    h, w = min(ours.shape[0], ref.shape[0]), min(ours.shape[1], ref.shape[1])
    assert abs(ours.shape[0] - ref.shape[0]) <= 8 and abs(ours.shape[1] - ref.shape[1]) <= 8
    b = 8  # borders: demosaic methods differ there
    de = mean_delta_e00(ours[b : h - b, b : w - b], ref[b : h - b, b : w - b])
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


# ------------------------------------------------------------------------------ strips vs whole frame


def _scene(h: int, w: int, seed: int) -> torch.Tensor:
    """A linear RGB scene with edges, a dark region, a clipped highlight and texture."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    rgb = torch.stack([0.05 + 0.6 * xx, 0.08 + 0.4 * yy, 0.1 + 0.3 * xx * yy])
    rgb = rgb * torch.where(xx < 0.3, 0.05, 1.0)  # deep shadows: local tone mapping lifts them
    rgb = rgb + 0.15 * ((torch.sin(xx * 40) * torch.sin(yy * 33)) > 0.6)  # texture and edges
    rgb[:, h // 3 : h // 2, w // 2 : 3 * w // 4] = torch.tensor([1.6, 1.3, 0.9])[:, None, None]  # clipped
    return (rgb + 0.01 * torch.randn(3, h, w, generator=g)).clamp(0.0, 1.0)


def _bayer_frame(cfa: str = "GRBG", size=(328, 200), **meta) -> RawFrame:
    from obscura.core.cfa import mosaic_rgb

    mosaic = mosaic_rgb(_scene(*size, seed=1), cfa=cfa) * 4000 + 200
    m = RawMeta(
        cfa=cfa,
        black_level=(200.0,) * len(cfa),
        white_level=4200.0,
        color_matrix1=(0.9, 0.1, 0, 0.1, 0.8, 0.1, 0, 0.1, 0.9),
        as_shot_neutral=(0.5, 1.0, 0.7),
        **meta,
    )
    return RawFrame(mosaic.round(), m)


def _linear_frame(size=(300, 180)) -> RawFrame:
    x = _scene(*size, seed=2) * 60000
    m = RawMeta(
        cfa="",
        black_level=(0.0,),
        white_level=65535.0,
        color_matrix1=(1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0),
        as_shot_neutral=(1.0, 1.0, 1.0),
    )
    return RawFrame(x.round(), m)


@pytest.mark.parametrize("recipe", ["default", "fast", "reference"])
@pytest.mark.parametrize("kind", ["bayer", "linear"])
def test_strips_equal_whole_frame(recipe, kind):
    frame = _bayer_frame() if kind == "bayer" else _linear_frame()
    whole = develop(frame, recipe=recipe, tile_rows=None).data
    strips = develop(frame, recipe=recipe, tile_rows=16).data  # many strips: 16 rows + the halo
    assert strips.shape == whole.shape == (3, *frame.data.shape[-2:])
    assert float((strips - whole).abs().max()) <= 2e-5
    assert float(whole.std()) > 0.05  # a real picture, not a constant


def test_strips_equal_whole_frame_with_crop_orientation_and_profile():
    frame = _bayer_frame("RGGB", default_crop=(6, 10, 180, 300), orientation=6, noise_profile=((2e-4, 1e-5),), iso=800)
    whole = develop(frame, recipe="default", tile_rows=None).data
    strips = develop(frame, recipe="default", tile_rows=24).data
    assert whole.shape == (3, 180, 300)  # cropped, then turned by the Orientation tag
    assert float((strips - whole).abs().max()) <= 2e-5


def test_strips_equal_whole_frame_quad_bayer_and_whole_frame_stages():
    frame = _bayer_frame(QUAD_BAYER_PATTERNS[0], size=(320, 160))
    a = develop(frame, recipe="fast", tile_rows=None).data
    b = develop(frame, recipe="fast", tile_rows=16).data
    assert float((a - b).abs().max()) <= 2e-5
    # reconstruct highlights propagate colour from far away: develop runs them on the whole frame
    rec = RECIPES["default"].replace(highlights=RECIPES["default"].highlights.of("reconstruct"))
    c = develop(_bayer_frame(), recipe=rec, tile_rows=16).data
    d = develop(_bayer_frame(), recipe=rec, tile_rows=None).data
    assert torch.equal(c, d)


def test_develop_tile_rows_bad_values():
    frame, _ = _synthetic_frame("RGGB")
    for bad in (0, 4, True, 2.5, "16"):
        with pytest.raises(InvalidParameter, match="tile_rows"):
            develop(frame, recipe="fast", tile_rows=bad)


def test_exposure_ev_subsamples_before_the_matrix():
    """exposure_ev equals auto exposure measured on the whole matrix-converted preview."""
    from obscura.core.colour import apply_matrix, rgb_to_xyz_d50_matrix
    from obscura.isp import tone
    from obscura.isp.develop import exposure_ev

    g = torch.Generator().manual_seed(3)
    prev = torch.rand(3, 700, 900, generator=g) ** 3
    m = np.array([[1.2, -0.1, -0.1], [-0.2, 1.3, -0.1], [0.0, -0.3, 1.3]])
    meta = RawMeta(baseline_exposure=0.5)
    r = RECIPES["default"]
    ev = exposure_ev(prev, meta=meta, recipe=r, camera_to_working=m)
    weights = tuple(float(w) for w in rgb_to_xyz_d50_matrix(r.working_space)[1])
    full = apply_matrix(prev.clamp_min(0), m) * 2.0**0.5
    ref = 0.5 + tone.auto_exposure(full, luma_weights=weights, highlight_white=6.0)
    assert ev == pytest.approx(ref, abs=1e-6)
    assert abs(ev - 0.5) > 0.5  # auto exposure did something


def test_noise_profile_estimated_once_from_the_mosaic():
    """Without a NoiseProfile, the profile is measured on raw CFA samples (variance a·x + b)."""
    from obscura.core.cfa import mosaic_rgb
    from obscura.isp.develop import _Global, _noise_profile

    g = torch.Generator().manual_seed(4)
    h, w = 512, 512
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    clean = mosaic_rgb(torch.stack([0.1 + 0.8 * xx, 0.1 + 0.8 * yy, 0.1 + 0.4 * (xx + yy)]), cfa="RGGB")
    a, b = 4e-4, 4e-6
    noisy = clean + torch.randn(h, w, generator=g) * (a * clean + b).sqrt()
    meta = RawMeta(cfa="RGGB")
    gl = _Global(noisy, meta, noisy[None].expand(3, -1, -1), torch.ones(3), torch.ones(3), np.eye(3), 0.0)
    prof = _noise_profile(gl, RECIPES["default"])
    assert prof is not None and len(prof) == 3
    for pa, pb in prof:
        assert pa == pytest.approx(a, rel=0.25)
        assert pa * 0.5 + pb == pytest.approx(a * 0.5 + b, rel=0.2)
