"""encode (linear → sRGB / Display P3) against colour-science, and quantize (TPDF dither) properties."""

from __future__ import annotations

import colour
import numpy as np
import pytest
import torch

from obscura.core.errors import InvalidParameter, ShapeError, UnknownMethod
from obscura.core.types import Image, RawMeta
from obscura.isp.encode import GAMUT, encode, gamut_desaturate, quantize


def _derived(name: str) -> colour.RGB_Colourspace:
    """A colour-science colourspace with matrices derived from its primaries and white (as ours are):
    its published sRGB matrices are rounded to 4 decimals and not exact inverses (2e-4 apart)."""
    cs = colour.RGB_COLOURSPACES[name].copy()
    cs.use_derived_matrix_RGB_to_XYZ = True
    cs.use_derived_matrix_XYZ_to_RGB = True
    return cs


# obscura space → colour-science colourspace (its linear counterpart for linear spaces, no CCTF applied)
CS = {
    "linear_srgb": _derived("sRGB"),
    "linear_p3": _derived("Display P3"),
    "linear_prophoto": _derived("ProPhoto RGB"),
    "linear_rec2020": _derived("ITU-R BT.2020"),
    "srgb": _derived("sRGB"),
    "display_p3": _derived("Display P3"),
}


def _in_gamut_colours(src: str, dst: str, n: int = 4096, seed: int = 0) -> np.ndarray:
    """Random colours of ``src`` (linear values) that lie inside the gamut of ``dst``."""
    rng = np.random.default_rng(seed)
    dst_lin = rng.uniform(0.0, 1.0, (n, 3))
    dst_lin[:8] = [
        [0, 0, 0],
        [1, 1, 1],
        [1, 0, 0],
        [0, 1, 0],
        [0, 0, 1],
        [0.5, 0.5, 0.5],
        [0.002, 0.003, 0.001],
        [1, 1, 0],
    ]
    return colour.RGB_to_RGB(dst_lin, CS[dst], CS[src], chromatic_adaptation_transform="Bradford")


def _as_image(rgb: np.ndarray, space: str, device: str) -> Image:
    side = int(np.sqrt(len(rgb)))
    x = torch.tensor(rgb[: side * side].T.reshape(3, side, side), dtype=torch.float32, device=device)
    return Image(x, space, RawMeta(make="X"))


@pytest.mark.parametrize("dst", ["srgb", "display_p3"])
@pytest.mark.parametrize("src", ["linear_srgb", "linear_p3", "linear_prophoto", "linear_rec2020"])
def test_encode_matches_colour_science(src, dst, device):
    rgb = _in_gamut_colours(src, dst)
    img = _as_image(rgb, src, device)
    got = encode(img, space=dst)
    ref = colour.RGB_to_RGB(
        img.data.cpu().double().numpy().reshape(3, -1).T,
        CS[src],
        CS[dst],
        chromatic_adaptation_transform="Bradford",
        apply_cctf_encoding=True,
    )
    ref = np.clip(ref, 0, 1)  # in gamut up to float rounding at the edges
    err = np.abs(got.data.cpu().numpy().reshape(3, -1).T - ref).max()
    assert err < 1e-5, err
    assert got.space == dst and got.meta == img.meta
    assert got.data.device.type == torch.device(device).type and got.data.dtype == torch.float32


def test_encode_from_encoded_space(device):
    """An sRGB-encoded image re-encoded as Display P3 (decode, matrix, encode)."""
    rgb = np.random.default_rng(1).uniform(0, 1, (1024, 3))
    img = _as_image(rgb, "srgb", device)
    got = encode(img, space="display_p3").data.cpu().numpy().reshape(3, -1).T
    ref = colour.RGB_to_RGB(
        img.data.cpu().double().numpy().reshape(3, -1).T,
        CS["srgb"],
        CS["display_p3"],
        apply_cctf_decoding=True,
        apply_cctf_encoding=True,
    )
    assert np.abs(got - ref).max() < 1e-5
    same = encode(img, space="srgb").data.cpu().numpy().reshape(3, -1).T
    assert np.abs(same - img.data.cpu().numpy().reshape(3, -1).T).max() < 1e-5


def test_encode_clips_out_of_gamut_and_keeps_input(device):
    x = torch.tensor([[[0.0, 1.0, 2.0, -0.5]], [[1.0, 0.0, 0.3, 0.2]], [[0.0, 0.0, 0.3, 0.2]]], device=device)
    before = x.clone()
    img = Image(x, "linear_rec2020")
    y = encode(img, space="srgb").data
    assert torch.equal(x, before)  # input untouched
    assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0
    lin = colour.RGB_to_RGB(x.cpu().double().numpy().reshape(3, -1).T, CS["linear_rec2020"], CS["linear_srgb"])
    ref = colour.cctf_encoding(np.clip(lin, 0, 1), "sRGB")
    assert np.abs(y.cpu().numpy().reshape(3, -1).T - ref).max() < 1e-5


def test_gamut_desaturate_keeps_luminance_and_in_gamut_colours(device):
    # Rec.2020 green is far outside sRGB: one channel negative after the matrix
    g = torch.tensor([[[0.0, 0.2, 0.5]], [[0.5, 0.3, 0.5]], [[0.0, 0.1, 0.5]]], device=device)
    lin = colour.RGB_to_RGB(g.cpu().double().numpy().reshape(3, -1).T, CS["linear_rec2020"], CS["linear_srgb"])
    x = torch.tensor(lin.T.reshape(3, 1, 3), dtype=torch.float32, device=device)
    assert float(x[:, 0, 0].min()) < 0  # really out of gamut
    y = gamut_desaturate(x, space="linear_srgb")
    w = torch.tensor(CS["linear_srgb"].matrix_RGB_to_XYZ[1], dtype=torch.float32, device=device)
    lum_in = torch.einsum("c,chw->hw", w, x)
    lum_out = torch.einsum("c,chw->hw", w, y)
    assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0
    assert torch.allclose(lum_in[0, 0], lum_out[0, 0], atol=1e-4)  # out-of-gamut: luminance kept
    assert torch.allclose(y[:, 0, 2], x[:, 0, 2], atol=1e-6)  # grey: unchanged
    img = Image(g, "linear_rec2020")
    enc = encode(img, space="srgb", gamut="desaturate").data
    assert float(enc.min()) >= 0.0 and float(enc.max()) <= 1.0


def test_encode_bad_inputs():
    img = Image(torch.rand(3, 4, 4), "linear_srgb")
    with pytest.raises(InvalidParameter, match="srgb, display_p3"):
        encode(img, space="adobe_rgb")
    with pytest.raises(InvalidParameter, match="linear_srgb"):
        encode(img, space="linear_srgb")
    with pytest.raises(UnknownMethod, match="clip, desaturate"):
        encode(img, gamut="magic")
    with pytest.raises(InvalidParameter, match="camera"):
        encode(Image(torch.rand(3, 4, 4), "camera"))
    with pytest.raises(ShapeError, match="Image"):
        encode(torch.rand(3, 4, 4))
    with pytest.raises(ShapeError, match="floating"):
        encode(Image(torch.ones(3, 4, 4, dtype=torch.int32), "linear_srgb"))
    assert GAMUT.names() == ["clip", "desaturate"]


# --- quantize ----------------------------------------------------------------------------------------------


def test_quantize_rounding_and_range(device):
    v = torch.tensor(
        [0.0, 0.49 / 255, 0.51 / 255, 100.4 / 255, 100.6 / 255, 1.0, -0.3, 1.7, float("nan"), float("inf")],
        device=device,
    )
    q8 = quantize(v, bits=8, dither=False)
    assert q8.dtype == torch.uint8 and q8.device.type == torch.device(device).type
    assert q8.cpu().tolist() == [0, 0, 1, 100, 101, 255, 0, 255, 0, 255]
    q16 = quantize(v, bits=16)
    assert q16.dtype == torch.int32
    expect16 = [0, round(0.49 / 255 * 65535), round(0.51 / 255 * 65535), round(100.4 / 255 * 65535)]
    assert q16.cpu().tolist()[:4] == expect16
    assert q16.cpu().tolist()[5:] == [65535, 0, 65535, 0, 65535]
    q10 = quantize(torch.tensor([0.0, 0.5, 1.0], device=device), bits=10)
    assert q10.cpu().tolist() == [0, 512, 1023]  # 511.5 rounds half to even → 512
    assert quantize(torch.rand(2, 3, 5, device=device)).shape == (2, 3, 5)


def test_quantize_16bit_matches_numpy():
    x = torch.rand(3, 64, 64)
    q = quantize(x, bits=16).numpy()
    assert np.array_equal(q, np.round(x.numpy() * np.float32(65535)).astype(np.int32))


def test_quantize_dither_is_tpdf_bounded_and_seeded(device):
    x = torch.full((3, 300, 300), 100.3 / 255, device=device)  # > 2^18 values: the tiled-noise path on CPU
    a = quantize(x, seed=3)
    b = quantize(x, seed=3)
    c = quantize(x, seed=4)
    assert torch.equal(a, b) and not torch.equal(a, c)
    vals = a.float()
    assert set(torch.unique(a).cpu().tolist()) <= {99, 100, 101}  # TPDF: at most ±1 code around the value
    assert abs(float(vals.mean()) - 100.3) < 0.01  # the mean is exact
    # TPDF makes the total error variance independent of the signal: 1/6 (dither) + 1/12 (rounding) LSB²
    assert abs(float(vals.std()) - 0.5) < 0.02
    undithered = quantize(x, dither=False)
    assert float(undithered.float().mean()) == 100.0  # without dither the mean is biased by 0.3


@pytest.mark.parametrize("shape", [(3, 64, 1024), (3, 256, 1024)])  # below and above the chunk size
def test_dither_removes_banding(shape, device):
    """A shallow gradient (≈ 25 codes over the width): the dithered codes' local mean follows the float
    gradient within 0.2 code values, plain rounding (a staircase) does not."""
    w = shape[-1]
    ramp = torch.linspace(0.40, 0.50, w, device=device)
    x = ramp.expand(shape).contiguous()
    target = (ramp * 255).double().cpu()

    def local_mean(q: torch.Tensor) -> torch.Tensor:
        cols = q.double().mean(dim=(0, 1)).cpu()  # mean over channels and rows
        k = 16
        return torch.nn.functional.avg_pool1d(cols[None, None], k, 1)[0, 0], target.unfold(0, k, 1).mean(-1)

    m, t = local_mean(quantize(x, seed=0))
    assert float((m - t).abs().max()) < 0.2
    m0, t0 = local_mean(quantize(x, dither=False))
    assert float((m0 - t0).abs().max()) > 0.3  # banding without dither


def test_quantize_bad_inputs():
    with pytest.raises(InvalidParameter, match="8, 10 or 16"):
        quantize(torch.rand(3), bits=12)
    with pytest.raises(InvalidParameter):
        quantize(torch.rand(3), bits=True)
    with pytest.raises(ShapeError, match="floating"):
        quantize(torch.ones(3, dtype=torch.int64))
    with pytest.raises(ShapeError, match="Tensor"):
        quantize(np.zeros(3))


def test_srgb_oetf_matches_the_exact_curve(device):
    # the fast form (log2/exp2, no where) against IEC 61966-2-1 in float64, densely and around the knee
    from obscura.isp.encode import srgb_oetf

    x64 = torch.cat([torch.linspace(0.0, 1.0, 200_001, dtype=torch.float64), 0.0031308 + torch.arange(-50, 51) * 1e-8])
    exact = torch.where(x64 <= 0.0031308, x64 * 12.92, 1.055 * x64.clamp_min(0.0031308) ** (1 / 2.4) - 0.055)
    x = x64.float().to(device)
    y = srgb_oetf(x)
    assert float((y.double().cpu() - exact).abs().max()) < 1e-6
    out = torch.empty_like(x)
    assert srgb_oetf(x, out=out) is out and torch.equal(out, y)
    assert torch.isnan(srgb_oetf(torch.tensor([float("nan")], device=device))).all()


def test_encode_parallel_equals_serial():
    x = torch.rand(3, 300, 500, generator=torch.Generator().manual_seed(3)) * 1.2 - 0.1
    img = Image(x, "linear_prophoto")
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        serial = encode(img).data
        torch.set_num_threads(2)
        parallel = encode(img).data
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(serial, parallel)
