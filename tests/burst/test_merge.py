"""HDR+-style merge: denoising gain, no ghosts, every CFA, hot pixels, DNG and develop round trips."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F  # noqa: N812

from obscura.burst.align import Alignment, align_burst
from obscura.burst.merge import (
    merge_burst,
    noise_per_site,
    raised_cosine_window,
    spatial_denoise_tiles,
    suppress_hot_pixels,
    wiener_merge_tiles,
)
from obscura.burst.reference import normalized_frames
from obscura.core.errors import InvalidParameter, ShapeError
from obscura.core.types import BAYER_PATTERNS, QUAD_BAYER_PATTERNS, Burst, RawFrame
from tests.burst.synth import default_data_dir, make_burst, psnr


def _norm(frame: RawFrame) -> torch.Tensor:
    return normalized_frames(Burst(frame.data[None].cpu(), (frame.meta,)))[0]


def _gain(s, merged: RawFrame, mask: torch.Tensor | None = None) -> float:
    ref = normalized_frames(s.burst)[s.reference]
    m, clean = _norm(merged), s.clean[s.reference]
    if mask is not None:
        ref, m, clean = ref[mask], m[mask], clean[mask]
    return psnr(m, clean, data_range=1.0) - psnr(ref, clean, data_range=1.0)


@pytest.fixture(scope="module")
def handheld():
    """8 frames, handheld shifts up to ±3 px, high ISO (variance 8e-3·x + 2e-4), sharp lens."""
    return make_burst(8, (256, 256), psf_sigma=0.7, image="kodim05", data_dir=default_data_dir(), seed=3)


def test_denoising_gain_handheld(handheld):
    """Brief: ≥ 6 dB over the reference frame (8 static frames: ceiling 9.0 dB for plain averaging).

    Measured: kodim05 6.5 dB, kodim01 8.2 dB handheld; 8.5 / 8.9 dB static.
    """
    merged = merge_burst(handheld.burst, reference=0)
    assert merged.meta.cfa == "RGGB" and merged.data.shape == (256, 256)
    assert _gain(handheld, merged) >= 6.0
    # the merged NoiseProfile is the reference's reduced by the achieved variance ratio (≥ 1/8)
    a0, b0 = handheld.burst.metas[0].noise_profile[0]
    a1, b1 = merged.meta.noise_profile[0]
    assert 1 / 8 - 1e-6 <= a1 / a0 < 1 / 4 and b1 / b0 == pytest.approx(a1 / a0)


def test_denoising_static_near_ceiling():
    s = make_burst(8, (256, 256), psf_sigma=0.7, image="kodim05", data_dir=default_data_dir(), seed=3, max_shift=0)
    g = _gain(s, merge_burst(s.burst, reference=0, spatial_strength=0.0))
    assert 7.0 <= g <= 9.1  # temporal merge alone cannot beat averaging 8 frames


@pytest.mark.parametrize("n, least", [(2, 1.5), (16, 7.0)])
def test_burst_lengths(n, least):
    s = make_burst(n, (128, 128), psf_sigma=0.7, image=None, seed=7, max_shift=2.0)
    assert _gain(s, merge_burst(s.burst, reference=0)) >= least


def test_no_ghosts_with_a_moving_object():
    s = make_burst(
        8, (256, 256), psf_sigma=0.7, image="kodim05", data_dir=default_data_dir(), seed=3, moving_object=True
    )
    merged = merge_burst(s.burst, reference=0)
    inside = s.masks[0]
    assert _gain(s, merged, inside) >= 0.0  # the object itself is not worse than the reference alone
    # where the object was in other frames but not in the reference a ghost would show: a double edge
    # is a local (4×4) mean error far above noise; the merge's must stay below the reference's own
    ghost = s.masks[1:].any(0) & ~inside
    ref = normalized_frames(s.burst)[0]

    def local_err(x):
        return F.avg_pool2d((x - s.clean[0])[None, None], 4, stride=1, padding=2)[0, 0, :256, :256].abs()

    e_merge, e_ref = local_err(_norm(merged))[ghost], local_err(ref)[ghost]
    assert float(e_merge.quantile(0.999)) < float(e_ref.quantile(0.999))
    assert _gain(s, merged, ghost) > 0.0
    # without per-pixel rejection and with a Wiener factor that never rejects, the ghost appears
    weak = merge_burst(s.burst, reference=0, robustness=1e-3, temporal_strength=1e5)
    assert float(local_err(_norm(weak))[ghost].quantile(0.999)) > float(e_ref.quantile(0.999))


@pytest.mark.parametrize("cfa", BAYER_PATTERNS + QUAD_BAYER_PATTERNS)
def test_every_pattern(cfa):
    s = make_burst(4, (128, 128), cfa=cfa, psf_sigma=0.7, image=None, seed=8, max_shift=2.0)
    merged = merge_burst(s.burst, reference=0)
    assert merged.meta.cfa == cfa and merged.data.shape == (128, 128)
    assert _gain(s, merged) >= 3.0


def test_hot_pixels_suppressed():
    hot = ((40, 41), (77, 90), (100, 12))
    s = make_burst(4, (128, 128), psf_sigma=0.7, image=None, seed=9, max_shift=2.0, hot_pixels=hot)
    clean = s.clean[0]
    rows, cols = zip(*hot, strict=True)
    good = _norm(merge_burst(s.burst, reference=0))[rows, cols]
    bad = _norm(merge_burst(s.burst, reference=0, hot_pixels=False))[rows, cols]
    assert float((good - clean[rows, cols]).abs().max()) < 0.1
    assert float((bad - clean[rows, cols]).abs().min()) > 0.2


def test_suppress_hot_pixels_keeps_noise():
    g = torch.Generator().manual_seed(0)
    a, b = torch.full((4,), 1e-3), torch.full((4,), 1e-5)
    x = 0.3 + 0.02 * torch.randn(4, 32, 32, generator=g)
    y = x.clone()
    y[1, 5, 7] = 1.0
    out = suppress_hot_pixels(y, a, b)
    assert torch.equal(out[0], x[0]) and abs(float(out[1, 5, 7]) - 0.3) < 0.05
    assert int((out != x).sum()) == 1


def test_raised_cosine_window_partition_of_unity():
    w = raised_cosine_window(16, dtype=torch.float64)
    tot = torch.zeros(48, 48, dtype=torch.float64)
    for y in range(0, 33, 8):
        for x in range(0, 33, 8):
            tot[y : y + 16, x : x + 16] += w
    torch.testing.assert_close(tot[8:40, 8:40], torch.ones(32, 32, dtype=torch.float64))


def test_wiener_merge_limits():
    g = torch.Generator().manual_seed(0)
    ref = torch.randn(5, 1, 4, 3, generator=g, dtype=torch.complex64)
    alt = torch.randn(5, 3, 1, 4, 3, generator=g, dtype=torch.complex64)
    var = torch.ones(5, 1, 1, 1)
    avg, r_avg = wiener_merge_tiles(ref, alt, var, strength=1e9)  # no rejection: the plain mean
    torch.testing.assert_close(avg, (ref + alt.sum(1)) / 4, atol=1e-5, rtol=1e-4)
    assert float(r_avg.mean()) == pytest.approx(0.25, abs=1e-3)
    same, r_ref = wiener_merge_tiles(ref, alt * 1e3, var, strength=1e-9)  # all rejected: the reference
    torch.testing.assert_close(same, ref, atol=1e-3, rtol=1e-4)
    assert float(r_ref.mean()) == pytest.approx(1.0, abs=1e-3)
    spec = torch.fft.rfft2(torch.rand(2, 16, 16, generator=g))
    out = spatial_denoise_tiles(spec, torch.tensor(1e3), strength=1.0)
    assert torch.equal(out[..., 0, 0], spec[..., 0, 0])  # the mean is kept
    assert float(out[..., 5, 5].abs().max()) < float(spec[..., 5, 5].abs().max())


def test_dng_round_trip_and_develop(handheld, tmp_path):
    from obscura.io.dng import write_dng
    from obscura.io.raw import read_raw
    from obscura.isp.develop import develop

    merged = merge_burst(handheld.burst, reference=0)
    assert torch.equal(merged.data, merged.data.round()) and float(merged.data.max()) <= 65535
    back = read_raw(write_dng(merged, tmp_path / "merged.dng"))
    assert torch.equal(back.data.to(torch.float32), merged.data)
    assert back.meta.cfa == "RGGB" and back.meta.white_level == merged.meta.white_level
    torch.testing.assert_close(_norm(back), _norm(merged))
    img = develop(merged)
    assert img.data.shape == (3, 256, 256) and bool(torch.isfinite(img.data).all())


def test_estimated_noise_profile_without_metadata():
    s = make_burst(8, (256, 256), psf_sigma=0.7, image="kodim05", data_dir=default_data_dir(), seed=3)
    bare = Burst(s.burst.data, tuple(m.replace(noise_profile=None) for m in s.burst.metas))
    merged = merge_burst(bare, reference=0)
    assert _gain(s, merged) >= 5.0
    a = merged.meta.noise_profile[1][0]
    assert 0 < a < 8e-3 / 3


def test_merge_on_device(device):
    s = make_burst(3, (64, 64), psf_sigma=0.7, image=None, seed=10, max_shift=1.5)
    merged = merge_burst(s.burst.__class__(s.burst.data.to(device), s.burst.metas), reference=0)
    assert merged.data.device.type == device
    assert _gain(s, merged.to("cpu")) > 1.5


def test_noise_per_site():
    a, b = noise_per_site(((1.0, 2.0), (3.0, 4.0), (5.0, 6.0)), "GRBG")
    assert a == [3.0, 1.0, 5.0, 3.0] and b == [4.0, 2.0, 6.0, 4.0]
    assert noise_per_site(((1.0, 2.0),), QUAD_BAYER_PATTERNS[0])[0] == [1.0] * 16
    with pytest.raises(InvalidParameter, match="noise profile"):
        noise_per_site(((1.0, 2.0), (1.0, 2.0)), "RGGB")
    with pytest.raises(InvalidParameter, match="noise profile"):
        noise_per_site(((-1.0, 2.0),), "RGGB")


def test_merge_bad_inputs():
    s = make_burst(3, (64, 64), image=None, seed=1)
    frames = s.burst.frames()
    with pytest.raises(ShapeError, match="one shape"):
        merge_burst([frames[0], RawFrame(torch.zeros(64, 66), frames[1].meta)])
    with pytest.raises(ShapeError, match="one CFA"):
        merge_burst([frames[0], RawFrame(frames[1].data, frames[1].meta.replace(cfa="BGGR"))])
    with pytest.raises(InvalidParameter, match="one camera"):
        merge_burst([frames[0], RawFrame(frames[1].data, frames[1].meta.replace(make="Other"))])
    for kw, msg in [
        ({"tile_size": 12}, "tile_size"),
        ({"temporal_strength": 0}, "temporal_strength"),
        ({"spatial_strength": -1}, "spatial_strength"),
        ({"robustness": float("nan")}, "robustness"),
        ({"noise_profile": ((0.0, 0.0),)}, "all zero"),
        ({"reference": 3}, "reference index"),
    ]:
        with pytest.raises(InvalidParameter, match=msg):
            merge_burst(s.burst, **kw)
    al = align_burst(s.burst, reference=0)
    short = Alignment(al.flow[:2], al.tile_size, al.tile_stride, 0, al.size)
    with pytest.raises(ShapeError, match="alignment is for"):
        merge_burst(s.burst, alignment=short)
    with pytest.raises(InvalidParameter, match="alignment is against"):
        merge_burst(s.burst, alignment=al, reference=1)
    with pytest.raises(ShapeError, match="too small"):
        merge_burst(make_burst(2, (16, 16), image=None).burst, tile_size=16)


def test_strips_do_not_change_the_result():
    """Memory is bounded by merging a few tile rows at a time; the strip height must not matter."""
    s = make_burst(4, (128, 96), psf_sigma=0.7, image=None, seed=12, max_shift=2.5, hot_pixels=((10, 20),))
    al = align_burst(s.burst, reference=0)
    one = merge_burst(s.burst, alignment=al, rows_per_strip=1)
    many = merge_burst(s.burst, alignment=al, rows_per_strip=64)
    assert float((one.data - many.data).abs().max()) <= 1.0  # rounding of the 16-bit output only
    assert _gain(s, one) >= 3.0
    with pytest.raises(InvalidParameter, match="rows_per_strip"):
        merge_burst(s.burst, alignment=al, rows_per_strip=0)


def test_suppress_hot_pixels_matches_brute_force():
    g = torch.Generator().manual_seed(5)
    x = 0.2 + 0.01 * torch.randn(2, 4, 12, 14, generator=g)
    x[0, 1, 3, 4] = x[1, 3, 6, 12] = x[1, 2, 5, 5] = 0.9
    a, b = torch.full((4,), 1e-3), torch.full((4,), 1e-5)
    out = suppress_hot_pixels(x, a, b)
    p = F.pad(x.reshape(-1, 1, 12, 14), (1, 1, 1, 1), mode="replicate").reshape(2, 4, 14, 16)
    want = x.clone()
    for i in range(2):
        for c in range(4):
            for r in range(12):
                for q in range(14):
                    nb = p[i, c, r : r + 3, q : q + 3].reshape(-1)
                    nb = torch.cat([nb[:4], nb[5:]])
                    if x[i, c, r, q] > nb.max() + 8.0 * float(1e-3 * nb.max() + 1e-5) ** 0.5:
                        want[i, c, r, q] = nb.median()
    assert torch.equal(out, want) and int((out != x).sum()) == 3


def test_small_rotation_is_followed():
    """Frames also rotated by up to ±0.3° (±0.7 px at the corners): the per-tile motion follows."""
    s = make_burst(8, (256, 256), psf_sigma=0.7, image="kodim05", data_dir=default_data_dir(), seed=4, rotation=0.005)
    assert _gain(s, merge_burst(s.burst, reference=0)) >= 6.0
