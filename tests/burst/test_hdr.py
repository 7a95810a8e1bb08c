"""Tests of obscura.burst.hdr: raw bracket merging, exposure fusion, night mode."""

from __future__ import annotations

import math

import colour
import numpy as np
import pytest
import torch
from scipy import ndimage

from obscura.burst.hdr import (
    BRACKET_WEIGHTS,
    align_translation,
    exposure_scale,
    fuse_exposures,
    intensity_mapping,
    merge_brackets,
    mertens_weights,
    night_mode,
    night_recipe,
    phase_correlation,
    shift_image,
)
from obscura.core.cfa import mosaic_rgb
from obscura.core.errors import InvalidParameter, ShapeError, UnknownMethod
from obscura.core.types import BAYER_PATTERNS, Burst, RawFrame, RawMeta
from obscura.isp.develop import develop
from obscura.isp.linearize import linearize
from obscura.isp.recipe import Recipe, Stage, get_recipe
from tests.burst.synth_hdr import dynamic_range, make_brackets, patch_stats

SHIFTS = ((4, -6), (0, 0), (-2, 8))


@pytest.fixture(scope="module")
def brackets():
    return make_brackets()


@pytest.fixture(scope="module")
def merged(brackets):
    return merge_brackets(brackets.burst, alignment=None)


def _dr_gain(sb, m: RawFrame) -> tuple[float, float]:
    cfa = sb.burst.metas[0].cfa
    ref = sb.evs.index(0.0)
    return dynamic_range(linearize(sb.burst[ref]).data, sb.scene, cfa=cfa), dynamic_range(
        m.data.cpu(), sb.scene, cfa=cfa
    )


# ------------------------------------------------------------------------------------------- raw merge


def test_exposure_scale():
    m = RawMeta(exposure_time=0.5, iso=200.0, f_number=4.0)
    assert exposure_scale(m) == pytest.approx(0.5 * 2.0 / 16.0)
    assert exposure_scale(RawMeta(exposure_time=0.25)) == 0.25
    with pytest.raises(InvalidParameter, match="exposure_time"):
        exposure_scale(RawMeta())
    with pytest.raises(InvalidParameter, match="exposure_time"):
        exposure_scale(RawMeta(exposure_time=-1.0))


def test_dynamic_range_gain(brackets, merged):
    """−2, 0, +2 EV merged: ≥ 3 stops more dynamic range than the 0 EV frame (definition in synth_hdr)."""
    dr0, drm = _dr_gain(brackets, merged)
    assert dr0 > 7.0  # the measure itself is sane: a 14-bit frame with this noise records ~9 stops
    assert drm - dr0 >= 3.0, (dr0, drm)
    # the radiance map is unbiased: every recorded patch with SNR ≥ 10 within 2 % of the truth
    for t, mean, rms in patch_stats(merged.data, brackets.scene, cfa="RGGB"):
        if t / rms >= 10:
            assert mean == pytest.approx(t, rel=0.02)
    # the brightest patch (clipped in the 0 and +2 EV frames) is recovered
    t, mean, _ = patch_stats(merged.data, brackets.scene, cfa="RGGB")[0]
    assert t > 3.0 and mean == pytest.approx(t, rel=0.02)


def test_merged_metadata(brackets, merged):
    m = merged.meta
    assert m.white_level == pytest.approx(4.0)  # the −2 EV frame saturates at 4× the reference's white
    assert m.black_level == (0.0,) * 4
    assert m.baseline_exposure == pytest.approx(2.0)
    assert m.exposure_time == brackets.burst.metas[1].exposure_time  # the reference (0 EV) frame's
    assert merged.data.dtype == torch.float32 and merged.data.shape == brackets.burst.data.shape[1:]
    assert float(merged.data.max()) <= 4.0 * 1.01


def test_merged_noise_profile_matches_measured_noise(brackets, merged):
    """Where no frame is saturated the merged NoiseProfile predicts the measured variance (the linear
    model is fitted there; above, where the longer frames drop out, it underestimates: documented)."""
    a, b = merged.meta.noise_profile[1]
    hr = merged.meta.white_level
    checked = 0
    for t, _, rms in patch_stats(merged.data, brackets.scene, cfa="RGGB"):
        if t * 4 < 0.8 and t / rms > 2:  # the +2 EV frame is unsaturated here
            var_pred = (a * (t / hr) + b) * hr * hr
            assert rms**2 == pytest.approx(var_pred, rel=0.2), t
            checked += 1
    assert checked >= 5


def test_snr_weights_beat_uniform_in_the_shadows(brackets, merged):
    uni = merge_brackets(brackets.burst, alignment=None, weights="uniform")
    exp = merge_brackets(brackets.burst, alignment=None, weights="exposure")
    snr = patch_stats(merged.data, brackets.scene, cfa="RGGB")
    su = patch_stats(uni.data, brackets.scene, cfa="RGGB")
    se = patch_stats(exp.data, brackets.scene, cfa="RGGB")
    dark = [i for i, (t, _, _) in enumerate(snr) if 1e-3 < t < 0.05]
    assert len(dark) >= 4
    for i in dark:
        assert snr[i][2] < 0.6 * su[i][2]  # inverse-variance weighting is far less noisy than a plain mean
        assert snr[i][2] <= 1.05 * se[i][2]
    assert sorted(BRACKET_WEIGHTS.names()) == ["exposure", "snr", "uniform"]


@pytest.mark.parametrize("alignment", ["auto", "global"])
def test_handheld_brackets_are_aligned(alignment):
    sb = make_brackets(shifts=SHIFTS)
    m = merge_brackets(sb.burst, alignment=alignment)
    dr0, drm = _dr_gain(sb, m)
    assert drm - dr0 >= 3.0
    truth = mosaic_rgb(sb.scene.rgb, cfa="RGGB")
    # texture band, well exposed region: aligned merge follows the truth; unaligned one does not
    band = (slice(200, 250), slice(200, 370))
    err = float(((m.data - truth).abs() / truth)[band].median())
    un = merge_brackets(sb.burst, alignment=None, rejection=0.0)
    err_un = float(((un.data - truth).abs() / truth)[band].median())
    assert err < 0.03 and err_un > 2 * err, (err, err_un)


def test_phase_correlation_recovers_shift(device):
    g = torch.Generator().manual_seed(3)
    img = torch.rand(96, 128, generator=g).to(device)
    img = torch.nn.functional.avg_pool2d(img[None, None], 3, stride=1, padding=1)[0, 0]
    moved = shift_image(img, -5, 7)  # moved(p) = img(p + (−5, 7)): it shows at p + (5, −7) what img shows at p
    assert phase_correlation(img, moved) == (5, -7)
    assert phase_correlation(img, img) == (0, 0)
    with pytest.raises(ShapeError):
        phase_correlation(img, img[:-1])


@pytest.mark.parametrize("cfa", BAYER_PATTERNS)
def test_every_bayer_pattern(cfa):
    sb = make_brackets(cfa=cfa, shifts=SHIFTS)
    m = merge_brackets(sb.burst, alignment="global")
    assert m.meta.cfa == cfa
    dr0, drm = _dr_gain(sb, m)
    assert drm - dr0 >= 3.0, (cfa, dr0, drm)


@pytest.mark.parametrize("evs", [(-2.0, 0.0), tuple(float(v) for v in np.linspace(-3, 3, 16))], ids=["2", "16"])
def test_burst_lengths(evs):
    sb = make_brackets(evs=evs, size=(128, 192), reference=len(evs) // 2 - (len(evs) == 2))
    m = merge_brackets(sb.burst, alignment=None, reference=len(evs) // 2 - (len(evs) == 2))
    e_ref = evs[len(evs) // 2 - (len(evs) == 2)]
    assert m.meta.white_level == pytest.approx(2.0 ** (e_ref - min(evs)))
    # in reference units: the truth scaled by the reference's exposure relative to 0 EV
    scale = 2.0**e_ref
    stats = patch_stats(m.data / scale, sb.scene, cfa="RGGB")
    good = [(t, mean) for t, mean, rms in stats if t / rms >= 10 and not math.isnan(mean)]
    assert len(good) >= 6
    for t, mean in good:
        assert mean == pytest.approx(t, rel=0.03)
    y0 = linearize(sb.burst[len(evs) // 2 - (len(evs) == 2)]).data / scale
    gain = dynamic_range(m.data / scale, sb.scene, cfa="RGGB") - dynamic_range(y0, sb.scene, cfa="RGGB")
    assert gain >= (1.5 if len(evs) == 2 else 3.0)


@pytest.mark.parametrize("frame,value", [(2, 0.002), (0, 3.0)], ids=["dark-object-in-long", "bright-in-short"])
def test_motion_rejection_no_ghost(frame, value):
    box = (40, 100, 40, 120)  # over patches the reference records well
    sb = make_brackets(ghost=(frame, box, value))
    truth = mosaic_rgb(sb.scene.rgb, cfa="RGGB")[box[0] : box[1], box[2] : box[3]]
    m = merge_brackets(sb.burst, alignment=None)
    ratio = float((m.data[box[0] : box[1], box[2] : box[3]] / truth).median())
    assert ratio == pytest.approx(1.0, abs=0.03)
    ghosted = merge_brackets(sb.burst, alignment=None, rejection=0.0)
    ratio_g = float((ghosted.data[box[0] : box[1], box[2] : box[3]] / truth).median())
    assert abs(ratio_g - 1.0) > 0.3  # without rejection the object shows: the test can fail


def test_develop_merged_frame(brackets, merged):
    """develop takes the merged frame: highlights clipped in the 0 EV frame come out distinct, mid-tones
    match the 0 EV frame developed at the same exposure."""
    r = get_recipe("reference").replace(exposure=Stage.of("baseline", ev=-2.0))
    hdr = develop(merged, recipe=r).data
    single = develop(brackets.burst[1], recipe=r).data
    assert torch.isfinite(hdr).all() and float(hdr.min()) >= 0 and float(hdr.max()) <= 1

    def patch(img, i):
        y0, y1, x0, x1 = brackets.scene.boxes[i]
        return float(img[1, y0 + 6 : y1 - 6, x0 + 6 : x1 - 6].mean())

    assert patch(hdr, 0) - patch(hdr, 1) > 0.1 and patch(hdr, 1) - patch(hdr, 2) > 0.1
    assert patch(single, 0) == pytest.approx(patch(single, 1), abs=1e-3)  # clipped in the single frame
    for i in (4, 5, 6, 7):
        assert patch(hdr, i) == pytest.approx(patch(single, i), rel=0.03)
    out = develop(merged, recipe="fast").data
    assert torch.isfinite(out).all() and out.shape == (3, 256, 384)


def test_merge_on_device(device, brackets):
    b = Burst(brackets.burst.data.to(device), brackets.burst.metas)
    m = merge_brackets(b, alignment="global")
    assert m.data.device.type == device
    ref = merge_brackets(brackets.burst, alignment="global")
    assert torch.allclose(m.data.cpu(), ref.data, rtol=1e-4, atol=1e-6)


def test_merge_does_not_modify_input(brackets):
    before = brackets.burst.data.clone()
    merge_brackets(brackets.burst, alignment="global")
    assert torch.equal(before, brackets.burst.data)


def test_merge_bad_inputs(brackets):
    frames = brackets.burst.frames()
    small = RawFrame(frames[0].data[:128], frames[0].meta)
    with pytest.raises(ShapeError, match="one shape"):
        merge_brackets([frames[0], small])
    with pytest.raises(ShapeError, match="CFA"):
        merge_brackets([frames[0], RawFrame(frames[1].data, frames[1].meta.replace(cfa="BGGR"))])
    with pytest.raises(InvalidParameter, match="camera"):
        merge_brackets([frames[0], RawFrame(frames[1].data, frames[1].meta.replace(model="Other"))])
    with pytest.raises(InvalidParameter, match="exposure_time"):
        merge_brackets([frames[0], RawFrame(frames[1].data, frames[1].meta.replace(exposure_time=None))])
    with pytest.raises(ShapeError, match="CFA mosaics"):
        merge_brackets(Burst(torch.zeros(2, 8, 8), (RawMeta(cfa="", exposure_time=1.0),) * 2))
    with pytest.raises(InvalidParameter, match="saturation"):
        merge_brackets(brackets.burst, saturation=1.5)
    with pytest.raises(InvalidParameter, match="rejection"):
        merge_brackets(brackets.burst, rejection=-1.0)
    with pytest.raises(UnknownMethod, match="snr"):
        merge_brackets(brackets.burst, weights="median")
    with pytest.raises(InvalidParameter, match="reference"):
        merge_brackets(brackets.burst, reference=3)
    with pytest.raises(InvalidParameter, match="alignment"):
        merge_brackets(brackets.burst, alignment="optical-flow")


# ------------------------------------------------------------------------------------- exposure fusion


def _mertens_numpy(ims: list[np.ndarray], levels: int) -> np.ndarray:
    """Independent NumPy/SciPy Mertens et al. 2007 (weights, Gaussian/Laplacian pyramids, collapse)."""
    k = np.array([1, 4, 6, 4, 1], float) / 16

    def blur(x):
        return ndimage.convolve1d(ndimage.convolve1d(x, k, axis=-1, mode="mirror"), k, axis=-2, mode="mirror")

    def down(x):
        return blur(x)[..., ::2, ::2]

    def up(x, shape):
        z = np.zeros((*x.shape[:-2], 2 * x.shape[-2], 2 * x.shape[-1]))
        z[..., ::2, ::2] = x
        return 4 * blur(z)[..., : shape[0], : shape[1]]

    x = np.stack(ims).astype(np.float64)
    grey = x.mean(axis=1)
    lap = np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], float)
    c = np.abs(np.stack([ndimage.convolve(g, lap, mode="nearest") for g in grey]))
    s = x.std(axis=1)
    e = np.exp(-((x - 0.5) ** 2).sum(axis=1) / (2 * 0.2**2))
    w = c * s * e + 1e-12
    w /= w.sum(axis=0)
    out = None
    gw, cur = w, x
    lps, gws = [], []
    for _ in range(levels - 1):
        nxt = down(cur)
        lps.append(cur - up(nxt, cur.shape[-2:]))
        gws.append(gw)
        cur, gw = nxt, down(gw)
    lps.append(cur)
    gws.append(gw)
    blended = [(lp * g[:, None]).sum(axis=0) for lp, g in zip(lps, gws, strict=True)]
    out = blended[-1]
    for lp in reversed(blended[:-1]):
        out = lp + up(out, lp.shape[-2:])
    return np.clip(out, 0, 1)


def _synthetic_brackets(h: int = 64, w: int = 80) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(5)
    base = torch.nn.functional.interpolate(torch.rand(1, 3, h // 8, w // 8, generator=g), size=(h, w), mode="bicubic")
    lin = (base[0].clamp(0, 1) * 4.0) ** 2
    return [colour_encode(lin * 2.0**ev) for ev in (-2, 0, 2)]


def colour_encode(lin: torch.Tensor) -> torch.Tensor:
    from obscura.core.colour import srgb_encode

    return srgb_encode(lin.clamp(0, 1))


def test_mertens_matches_numpy_reference():
    ims = _synthetic_brackets()
    out = fuse_exposures(ims, align=False, deghost=False, levels=4)
    ref = _mertens_numpy([im.numpy() for im in ims], levels=4)
    np.testing.assert_allclose(out.numpy(), ref, atol=5e-4)  # float32 vs float64 where weights are ~1e-12
    assert float(np.abs(out.numpy() - ref).mean()) < 2e-6
    w = mertens_weights(torch.stack(ims))
    assert torch.allclose(w.sum(0), torch.ones(w.shape[1:]), atol=1e-5)


def test_fusion_of_identical_images_is_identity(device):
    im = _synthetic_brackets()[1].to(device)
    out = fuse_exposures([im, im, im])
    assert out.device.type == device
    assert torch.allclose(out, im, atol=1e-5)


@pytest.fixture(scope="module")
def jpeg_brackets(data_dir):
    from PIL import Image as PILImage

    d = data_dir / "brackets" / "colour_hdri_frobisher_001"
    paths = [d / f"IMG_260{i}.jpg" for i in range(3)]  # 1/8 s, 1 s, 8 s at f/8 ISO 100
    if not all(p.is_file() for p in paths):
        pytest.skip("bracket JPEGs absent")
    return [
        torch.from_numpy(np.asarray(PILImage.open(p).convert("RGB"), dtype=np.float32) / 255)
        .permute(2, 0, 1)
        .contiguous()
        for p in paths
    ]


def _grad_ncc(a: torch.Tensor, b: torch.Tensor) -> float:
    def gmag(x):
        y = x.mean(0)
        return torch.hypot(y[1:, 1:] - y[:-1, 1:], y[1:, 1:] - y[1:, :-1])

    ga, gb = gmag(a), gmag(b)
    ga, gb = ga - ga.mean(), gb - gb.mean()
    return float((ga * gb).sum() / (ga.norm() * gb.norm()))


def test_real_jpeg_brackets_fuse_without_ghosts(jpeg_brackets):
    ims = jpeg_brackets
    assert align_translation(ims, reference=1) == [(0, 0), (0, 0), (0, 0)]  # a tripod bracket: nothing to align
    fused = fuse_exposures(ims)
    ref = ims[1]
    # more of the scene is recorded: fewer clipped and fewer black pixels than the middle exposure
    assert float((fused > 0.98).float().mean()) < 0.5 * float((ref > 0.98).float().mean())
    assert float((fused < 0.02).float().mean()) < 0.2 * float((ref < 0.02).float().mean())
    # ghost-free: the fused edges are the reference's (a frame moved by 6 px and fused unaligned is not)
    ncc = _grad_ncc(fused, ref)
    moved = [ims[0], ims[1], shift_image(ims[2], 0, 6)]
    ghost = fuse_exposures(moved, align=False, deghost=False)
    assert ncc > 0.75 and ncc > _grad_ncc(ghost, ref) + 0.05, (ncc, _grad_ncc(ghost, ref))


def test_real_jpeg_brackets_known_shifts_are_recovered(jpeg_brackets):
    ims = jpeg_brackets
    m = 20
    crop = [
        ims[0][:, m + 5 : -m + 5, m - 7 : -m - 7],
        ims[1][:, m:-m, m:-m],
        ims[2][:, m - 3 : -m - 3, m + 9 : -m + 9],
    ]
    # frame 0 shows at p what the reference shows at p + (5, −7): it is moved by (−5, 7)
    assert align_translation(crop, reference=1) == [(-5, 7), (0, 0), (3, -9)]
    aligned = fuse_exposures(crop)
    plain = fuse_exposures([im[:, m:-m, m:-m] for im in ims], align=False)
    inner = (slice(None), slice(16, -16), slice(16, -16))
    assert float((aligned - plain)[inner].abs().mean()) < 0.01


def _highpass(x: torch.Tensor) -> torch.Tensor:
    y = x.mean(0)
    low = torch.nn.functional.avg_pool2d(y[None, None], 5, stride=1, padding=2, count_include_pad=False)[0, 0]
    return y - low


def _ncc(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / (a.norm() * b.norm()))


def test_deghosting_removes_a_moving_object(jpeg_brackets):
    """An object (the basket, copied from elsewhere) appears on the wall in the long frame only: with
    deghosting its texture is gone from the fused image, without it the object shows."""
    ims = [im[:, ::2, ::2].contiguous() for im in jpeg_brackets]
    box = (slice(None), slice(120, 160), slice(20, 90))  # the wall, well exposed in the reference
    moved = [ims[0], ims[1], ims[2].clone()]
    moved[2][box] = ims[2][:, 160:200, 110:180]
    obj = _highpass(moved[2][box])
    fixed = _ncc(_highpass(fuse_exposures(moved)[box]), obj)
    ghost = _ncc(_highpass(fuse_exposures(moved, deghost=False)[box]), obj)
    assert ghost > 0.9 and fixed < 0.4, (fixed, ghost)


def test_intensity_mapping_inverts_an_exposure_change():
    g = torch.Generator().manual_seed(1)
    lin = torch.rand(20000, generator=g) * 0.4
    src = colour_encode(lin[None, None].expand(3, 1, -1))[0, 0]
    dst = colour_encode((lin * 2)[None, None].expand(3, 1, -1))[0, 0]
    mapped = intensity_mapping(src, dst, bins=1024)
    assert float((mapped - dst).abs().max()) < 0.01


def test_fusion_bad_inputs():
    im = torch.rand(3, 32, 32)
    with pytest.raises(ShapeError, match="one size"):
        fuse_exposures([im, torch.rand(3, 32, 30)])
    with pytest.raises(ShapeError, match=r"\(3, H, W\)"):
        fuse_exposures([im, torch.rand(32, 32)])
    with pytest.raises(ShapeError):
        fuse_exposures([])
    with pytest.raises(InvalidParameter, match="sigma"):
        fuse_exposures([im, im], sigma=0.0)
    with pytest.raises(InvalidParameter, match="levels"):
        fuse_exposures([im, im], levels=40)
    with pytest.raises(UnknownMethod, match="mertens2007"):
        fuse_exposures([im, im], method="debevec")


# ------------------------------------------------------------------------------------------- night mode


def _mean_lstar(img: torch.Tensor) -> float:
    rgb = img.permute(1, 2, 0).double().numpy()
    return float(colour.XYZ_to_Lab(colour.sRGB_to_XYZ(rgb))[..., 0].mean())


def test_night_recipe_is_darker_and_stronger():
    r, d = night_recipe(), get_recipe("default")
    assert isinstance(r, Recipe) and r.name == "night"
    assert r.exposure.kwargs["target"] < 0.18
    assert r.local_tone.kwargs["strength"] < d.local_tone.kwargs["strength"]
    assert r.denoise.kwargs["chroma_strength"] > d.denoise.kwargs.get("chroma_strength", 1.0)


def test_night_mode_keeps_night_dark_and_lowers_noise():
    shifts = ((0, 0), (2, -2), (-2, 4), (4, 0), (0, 2), (-4, -2), (2, 2), (0, -4))
    sb = make_brackets(evs=(-4.0,) * 8, size=(128, 192), a=2e-3, b=4e-5, iso=3200.0, shifts=shifts, reference=0)
    night = night_mode(sb.burst, merge="brackets", alignment="global", reference=0).data
    single_default = develop(sb.burst[0]).data
    single_night = develop(sb.burst[0], recipe=night_recipe()).data
    # a night stays a night: mean L* well under the default rendering's
    assert _mean_lstar(night) < _mean_lstar(single_default) - 10
    # less noise in the flat patches than one frame developed the same way
    ratios = []
    for y0, y1, x0, x1 in sb.scene.boxes[8:12]:
        a = night[1, y0 + 5 : y1 - 5, x0 + 5 : x1 - 5]
        b = single_night[1, y0 + 5 : y1 - 5, x0 + 5 : x1 - 5]
        ratios.append(float(a.std() / b.std()))
    # (the merged frame is denoised less, its NoiseProfile being lower: the gain shrinks after develop)
    assert max(ratios) < 0.8 and sum(ratios) / len(ratios) < 0.65, ratios


def test_night_mode_bad_inputs(brackets):
    with pytest.raises(InvalidParameter, match="merge"):
        night_mode(brackets.burst, merge="median")
