"""Coarse-to-fine tile alignment against known sub-pixel shifts."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import ndimage
from torch.nn import functional as F  # noqa: N812

from obscura.burst.align import (
    Alignment,
    align_burst,
    flow_to_pixels,
    gather_tiles,
    gaussian_blur,
    gaussian_pyramid,
    median_filter_flow,
    propagate_flow,
    raw_to_grey,
    raw_to_grey_full,
    sample_bicubic,
    shift_tiles,
    subpixel_quadratic,
    tile_distances_l1,
    tile_distances_l2,
    tile_grid,
    upsample_flow_candidates,
)
from obscura.core.errors import InvalidParameter, ShapeError
from obscura.core.types import BAYER_PATTERNS, QUAD_BAYER_PATTERNS
from tests.burst.synth import make_burst


def _textured_interior(clean: torch.Tensor, al: Alignment, q: float = 0.5) -> torch.Tensor:
    """Tiles away from the border, textured in every direction: smallest eigenvalue of the clean
    structure tensor in the upper ``q`` quantile (straight edges and flat tiles have an aperture problem)."""
    ts, st = al.tile_size, al.tile_stride
    gy = F.pad(clean[1:] - clean[:-1], (0, 0, 0, 1))
    gx = F.pad(clean[:, 1:] - clean[:, :-1], (0, 1))
    s = [F.avg_pool2d(v[None, None], ts, stride=st)[0, 0] for v in (gy * gy, gx * gx, gx * gy)]
    tr, det = s[0] + s[1], s[0] * s[1] - s[2] ** 2
    e = tr / 2 - ((tr / 2) ** 2 - det).clamp_min(0).sqrt()
    e = e[: al.flow.shape[-2], : al.flow.shape[-1]]
    inner = torch.zeros_like(e, dtype=torch.bool)
    inner[1:-1, 1:-1] = True
    return inner & (e >= e[inner].quantile(q))


def textured_tiles(clean: torch.Tensor, al: Alignment, a: float, b: float, *, snr: float = 2.0) -> torch.Tensor:
    """Textured tiles, defined against the noise: on the grey image the aligner sees (2×2 mean of the
    clean mosaic, so no CFA pattern counts as texture), the tile mean of the smallest eigenvalue of the
    structure tensor is at least ``snr`` times the grey noise variance (a·x + b)/4; border tiles excluded.
    This is the condition under which a tile's translation is well determined (its Cramér–Rao bound
    is ∝ noise variance / smallest eigenvalue)."""
    g = F.avg_pool2d(clean[None, None], 2)[0, 0]
    ts, st = al.tile_size // 2, al.tile_stride // 2
    gy = F.pad(g[1:] - g[:-1], (0, 0, 0, 1))
    gx = F.pad(g[:, 1:] - g[:, :-1], (0, 1))
    s = [F.avg_pool2d(v[None, None], ts, stride=st)[0, 0] for v in (gy * gy, gx * gx, gx * gy)]
    tr, det = s[0] + s[1], s[0] * s[1] - s[2] ** 2
    ty, tx = al.flow.shape[-2:]
    e = (tr / 2 - ((tr / 2) ** 2 - det).clamp_min(0).sqrt())[:ty, :tx]
    mean = F.avg_pool2d(g[None, None], ts, stride=st)[0, 0][:ty, :tx]
    inner = torch.zeros_like(e, dtype=torch.bool)
    inner[1:-1, 1:-1] = True
    return inner & (e >= snr * (a * mean + b) / 4)


def _tile_errors(s, al, mask=None):
    m = _textured_interior(s.clean[s.reference], al) if mask is None else mask
    err = (al.flow.cpu() - s.shifts[:, :, None, None])[1:]
    return err.permute(0, 2, 3, 1)[:, m]


@pytest.mark.parametrize(
    "image, seed", [("kodim08", 1), ("kodim08", 2), ("kodim13", 1), ("kodim05", 1), ("kodim01", 1)]
)
def test_alignment_accuracy_on_textured_tiles(data_dir, image, seed):
    """Textured tiles defined against the noise (:func:`textured_tiles`), several scenes, high ISO:
    within 0.1 raw px RMS of the true shifts.

    Measured (per-component RMS / max error norm in raw px) with Lucas–Kanade finished on the
    raw-resolution grey image: kodim08 0.058 / 0.35 and 0.061 / 0.37 (seeds 1, 2), kodim13 0.071 / 0.39,
    kodim05 0.077 / 0.46, kodim01 0.077 / 0.31 (on the half-resolution grey image only: 0.079, 0.086,
    0.109, 0.107, 0.113).
    """
    s = make_burst(6, (256, 256), psf_sigma=0.7, image=image, data_dir=data_dir, seed=seed)
    al = align_burst(s.burst, reference=0)
    m = textured_tiles(s.clean[0], al, s.a, s.b)
    assert int(m.sum()) >= 50  # enough textured tiles (× 5 frames) for the statistic to mean something
    e = _tile_errors(s, al, m)
    assert float(e.square().mean().sqrt()) < 0.1
    assert float(e.norm(dim=-1).max()) < 0.6  # no integer-search outliers (those are ≥ 1 px)
    # flat tiles are excluded: fewer tiles qualify at a higher noise
    noisy = make_burst(2, (256, 256), psf_sigma=0.7, image=image, data_dir=data_dir, seed=seed, a=8e-2, b=2e-3)
    assert int(textured_tiles(noisy.clean[0], al, noisy.a, noisy.b).sum()) < int(m.sum())


@pytest.mark.parametrize("sigma, stride", [(0.5, 1), (0.7, 2), (2.0, 4)])
def test_gaussian_blur_matches_scipy(sigma, stride):
    g = torch.Generator().manual_seed(7)
    x = torch.rand(2, 37, 50, generator=g, dtype=torch.float64)
    r = math.ceil(2.5 * sigma)  # the kernel's radius
    ref = np.stack([ndimage.gaussian_filter(a, sigma, mode="nearest", truncate=r / sigma) for a in x.numpy()])
    out = gaussian_blur(x, sigma, stride=stride)
    np.testing.assert_allclose(out.numpy(), ref[:, ::stride, ::stride], atol=1e-12)


@pytest.mark.parametrize("cfa", ["RGGB", "GBRG", QUAD_BAYER_PATTERNS[0]])
def test_raw_to_grey_full_is_the_half_resolution_grey_on_even_pixels(cfa, device):
    g = torch.Generator().manual_seed(2)
    x = torch.rand(2, 24, 32, generator=g).to(device)
    full, half = raw_to_grey_full(x, cfa), raw_to_grey(x, cfa)
    assert full.shape == (2, 24, 32) and full.device.type == device
    torch.testing.assert_close(full[:, 2:-2:2, 2:-2:2], half[:, 1:-1, 1:-1])  # interior (borders pad differently)
    # one full CFA period per pixel: a grey-world mosaic of a flat colour has no pattern left
    from obscura.core.cfa import mosaic_rgb

    flat = mosaic_rgb(torch.tensor([0.2, 0.5, 0.9])[:, None, None].expand(3, 24, 32), cfa=cfa).to(device)
    grey = raw_to_grey_full(flat[None], cfa)[:, 2:-2, 2:-2]  # (the replicated border breaks the period)
    torch.testing.assert_close(grey, torch.full_like(grey, 0.525))


def test_shift_tiles_matches_sample_bicubic(device):
    g = torch.Generator().manual_seed(3)
    img = torch.rand(2, 40, 50, generator=g).to(device)
    y0, x0 = torch.tensor([0, 10, 30], device=device), torch.tensor([-3, 20, 40], device=device)
    shift = torch.tensor([[0.3, -1.7], [-2.25, 0.5], [1.0, 3.9]], device=device)
    out = shift_tiles(img, y0, x0, 12, shift)
    assert out.shape == (3, 2, 12, 12) and out.device.type == device
    r = torch.arange(12, device=device, dtype=torch.float32)
    for t in range(3):
        sy = (y0[t] + r + shift[t, 0])[:, None].expand(12, 12)
        sx = (x0[t] + r + shift[t, 1])[None, :].expand(12, 12)
        torch.testing.assert_close(out[t], sample_bicubic(img, sy, sx), atol=1e-5, rtol=1e-5)


def test_gather_tiles_replicates_borders():
    img = torch.arange(30.0).reshape(5, 6)
    t = gather_tiles(img, torch.tensor([-2, 3]), torch.tensor([4, -1]), 3)
    rows = torch.tensor([[-2, -1, 0], [3, 4, 5]]).clamp(0, 4)
    cols = torch.tensor([[4, 5, 6], [-1, 0, 1]]).clamp(0, 5)
    for k in range(2):
        assert torch.equal(t[k], img[rows[k][:, None], cols[k][None, :]])


@pytest.mark.parametrize("cfa", BAYER_PATTERNS + QUAD_BAYER_PATTERNS[:1])
def test_alignment_every_pattern(cfa):
    s = make_burst(
        3, (192, 192), cfa=cfa, psf_sigma=0.7, a=2e-3, b=5e-5, image=None, seed=4, max_shift=2.5, reference=1
    )
    al = align_burst(s.burst, reference=1)
    assert al.reference == 1 and torch.all(al.flow[1] == 0)
    m = _textured_interior(s.clean[1], al)
    err = (al.flow - s.shifts[:, :, None, None])[[0, 2]].permute(0, 2, 3, 1)[:, m]
    assert float(err.abs().median()) < 0.15
    assert float(err.square().mean().sqrt()) < 0.4


def test_alignment_finds_large_motion_through_pyramid():
    """A 21 px shift is beyond the finest search radius: only the coarse levels can find it."""
    shifts = torch.tensor([[0.0, 0.0], [21.3, -14.6]])
    s = make_burst(2, (512, 512), shifts=shifts, psf_sigma=0.7, a=1e-3, b=1e-5, image=None, seed=5, max_shift=22)
    al = align_burst(s.burst, reference=0)
    m = _textured_interior(s.clean[0], al)
    err = (al.flow[1] - shifts[1][:, None, None]).permute(1, 2, 0)[m]
    assert float(err.abs().median()) < 0.1
    one = align_burst(s.burst, reference=0, levels=1)
    assert float((one.flow[1] - shifts[1][:, None, None]).abs().median()) > 5  # the test can fail


def test_sample_bicubic_matches_fourier_shift(device):
    g = torch.Generator().manual_seed(0)
    n = 64
    X = torch.fft.fft2(torch.randn(1, n, n, generator=g, dtype=torch.float64))
    ky = torch.fft.fftfreq(n, dtype=torch.float64)[:, None]
    kx = torch.fft.fftfreq(n, dtype=torch.float64)[None]
    X = X * torch.exp(-(ky**2 + kx**2) * 2 * math.pi**2 * 2.0**2)  # band-limited (σ = 2 px)
    img = torch.fft.ifft2(X).real
    dy, dx = 0.3, -0.45
    truth = torch.fft.ifft2(X * torch.exp(2j * math.pi * (ky * dy + kx * dx))).real  # img(y + dy, x + dx)
    yy, xx = torch.meshgrid(torch.arange(n, dtype=torch.float64), torch.arange(n, dtype=torch.float64), indexing="ij")
    out = sample_bicubic(img.float().to(device), (yy + dy).float().to(device), (xx + dx).float().to(device))
    err = (out.cpu().double() - truth)[:, 8:-8, 8:-8].abs().mean() / img.std()
    assert out.device.type == device
    assert float(err) < 0.006
    # torch's bicubic (a = −0.75) is markedly worse: the reason sample_bicubic exists
    grid = torch.stack([2 * (xx + dx) / (n - 1) - 1, 2 * (yy + dy) / (n - 1) - 1], -1)[None]
    gs = F.grid_sample(img[None], grid, mode="bicubic", align_corners=True)[0]
    assert float((gs - truth)[:, 8:-8, 8:-8].abs().mean() / img.std()) > 2 * float(err)


def test_subpixel_quadratic_exact_on_a_bowl():
    u, v = torch.meshgrid(torch.arange(-1.0, 2.0), torch.arange(-1.0, 2.0), indexing="ij")
    d = (u - 0.3) ** 2 + 2 * (v + 0.2) ** 2 + 0.5 * (u - 0.3) * (v + 0.2) + 7
    flat = torch.zeros(3, 3)
    out = subpixel_quadratic(torch.stack([d, flat]))
    torch.testing.assert_close(out[0], torch.tensor([0.3, -0.2]), atol=1e-5, rtol=0)
    assert torch.all(out[1] == 0)  # not a bowl: no sub-pixel offset


def test_tile_distances_match_brute_force():
    g = torch.Generator().manual_seed(1)
    img = torch.rand(40, 40, generator=g)
    alt = torch.rand(40, 40, generator=g)
    y0, x0, ts, r = torch.tensor([4, 20]), torch.tensor([8, 16]), 8, 2
    ref = gather_tiles(img, y0, x0, ts)
    patches = gather_tiles(alt, y0 - r, x0 - r, ts + 2 * r)
    d1, d2 = tile_distances_l1(ref, patches, r), tile_distances_l2(ref, patches, r)
    for t in range(2):
        for a in range(2 * r + 1):
            for b in range(2 * r + 1):
                y, x = int(y0[t]) + a - r, int(x0[t]) + b - r
                diff = alt[y : y + ts, x : x + ts] - img[int(y0[t]) : int(y0[t]) + ts, int(x0[t]) : int(x0[t]) + ts]
                assert math.isclose(float(d1[t, a, b]), float(diff.abs().sum()), rel_tol=1e-5)
                assert math.isclose(float(d2[t, a, b]), float(diff.square().sum()), rel_tol=1e-5)


def test_pyramid_and_candidates():
    pyr = gaussian_pyramid(torch.rand(2, 128, 96), (1, 2, 4, 4))
    assert [tuple(p.shape) for p in pyr] == [(2, 128, 96), (2, 64, 48), (2, 16, 12), (2, 4, 3)]
    coarse = torch.zeros(2, 3, 4)
    coarse[0], coarse[1] = 1.5, -2.0
    coarse[0, 2, 3] = 9.0  # one odd tile
    c = upsample_flow_candidates(coarse, 8, 4, 4, (6, 8), 16, 8)
    assert c.shape == (3, 48, 2)
    assert torch.all(c[0, :, 0][c[0, :, 0] != 36.0] == 6.0) and torch.all(c[:, :, 1] == -8.0)
    # the last fine tile's nearest coarse tile is the odd one; its neighbours offer the common motion
    assert float(c[0, -1, 0]) == 36.0 and float(c[1, -1, 0]) == 6.0 and float(c[2, -1, 0]) == 6.0


def test_flow_to_pixels_interpolates_between_tile_centres():
    flow = torch.zeros(1, 2, 2, 3)
    flow[0, 1] = torch.tensor([[0.0, 1.0, 2.0], [0.0, 1.0, 2.0]])
    al = Alignment(flow=flow, tile_size=8, tile_stride=4, reference=0, size=(16, 16))
    px = flow_to_pixels(al)
    assert px.shape == (1, 2, 16, 16)
    # tile centres at x = 3.5, 7.5, 11.5: flow 0, 1, 2 there and linear between, constant beyond
    torch.testing.assert_close(px[0, 1, 5, [0, 3, 5, 9, 11, 15]], torch.tensor([0.0, 0.0, 0.375, 1.375, 1.875, 2.0]))
    assert torch.all(px[0, 0] == 0)
    half = flow_to_pixels(al, scale=2)
    assert half.shape == (1, 2, 8, 8)
    torch.testing.assert_close(half[0, 1, 0, 4], torch.tensor((1.0 + 0.25 * 1.0) / 2))


def _repeated_texture(h: int, w: int, seed: int) -> torch.Tensor:
    """A texture with period 7 in y plus a weak non-periodic part: a whole period off is nearly a tie."""
    rng = np.random.default_rng(seed)
    period = ndimage.gaussian_filter(rng.standard_normal((7, w)), 1.0, mode="wrap")
    weak = ndimage.gaussian_filter(rng.standard_normal((h, w)), 1.0)
    return torch.from_numpy(np.tile(period, (h // 7 + 1, 1))[:h] + 0.2 * weak).float()


def test_propagate_flow_repairs_a_patch_on_a_wrong_period(device):
    """A 5×5 patch of tiles one period (7 px) off, too large for a 3×3 median: the neighbours' motion
    matches better and spreads into the whole patch; a real motion region (an object) is kept."""
    ref = _repeated_texture(200, 200, 3).to(device)
    true = torch.tensor([2, -1], device=device)
    alt = torch.roll(ref, shifts=(2, -1), dims=(0, 1))  # alt(p + (2, −1)) = ref(p)
    ts, stride = 16, 8
    grid = tile_grid(200, 200, ts, stride)
    iy = torch.arange(grid[0], device=device) * stride
    ix = torch.arange(grid[1], device=device) * stride
    y0, x0 = iy[:, None].expand(grid).reshape(-1), ix[None, :].expand(grid).reshape(-1)
    good = true.float()[:, None, None].expand(2, *grid).clone()
    bad = good.clone()
    bad[:, 6:11, 6:11] += torch.tensor([7.0, 0.0], device=device)[:, None, None]
    assert torch.all(median_filter_flow(bad)[0, 7:10, 7:10] == 9)  # the median cannot see it (the test can fail)
    out = propagate_flow(ref, alt, y0, x0, ts, bad)
    assert out.device.type == device and torch.equal(out, good) and torch.equal(bad[0, 8, 8], good[0, 8, 8] + 7)
    assert torch.equal(propagate_flow(ref, alt, y0, x0, ts, good), good)
    # an object moving on its own (alt shows ref shifted by (−3, 4) in a block): its inner tiles keep that
    obj = alt.clone()
    obj[60:150, 60:150] = torch.roll(ref, shifts=(-3, 4), dims=(0, 1))[60:150, 60:150]
    moving = good.clone()
    moving[:, 8:16, 8:16] = torch.tensor([-3.0, 4.0], device=device)[:, None, None]
    out = propagate_flow(ref, obj, y0, x0, ts, moving)
    assert torch.equal(out[:, 8:16, 8:16], moving[:, 8:16, 8:16])


def test_align_burst_on_device(device):
    s = make_burst(3, (128, 128), psf_sigma=0.7, a=1e-3, b=1e-5, image=None, seed=6, max_shift=2.0)
    al = align_burst(s.burst, reference=0, device=device)
    assert al.flow.device.type == device
    m = _textured_interior(s.clean[0], al)
    err = (al.flow.cpu() - s.shifts[:, :, None, None])[1:].permute(0, 2, 3, 1)[:, m]
    assert float(err.abs().median()) < 0.1


def test_align_bad_inputs():
    s = make_burst(2, (64, 64), image=None, seed=1)
    with pytest.raises(InvalidParameter, match="levels"):
        align_burst(s.burst, levels=0)
    with pytest.raises(InvalidParameter, match="tile_sizes"):
        align_burst(s.burst, tile_sizes=(16, 16))
    with pytest.raises(InvalidParameter, match="factors"):
        align_burst(s.burst, factors=(2, 2, 4, 4))
    with pytest.raises(InvalidParameter, match="reference index"):
        align_burst(s.burst, reference=5)
    with pytest.raises(ShapeError, match="too small"):
        align_burst(make_burst(2, (16, 16), image=None).burst)
    with pytest.raises(InvalidParameter, match="device"):
        align_burst(s.burst, device="tpu")


# ------------------------------------------------------------------------------------ motion models


def _edge_grey(size, angle, shift=(0.0, 0.0), sigma=0.0):
    from obscura.lab.charts.edge import render_edge

    h, w = size
    cov = render_edge(size, angle_deg=angle, centre=((w - 1) / 2 + shift[1], (h - 1) / 2 + shift[0]), sigma_px=sigma)
    return torch.from_numpy(0.2 + 0.5 * cov).float()


def test_tile_information_of_an_edge_is_across_it_only_and_of_a_flat_tile_none():
    from obscura.burst.align import tile_information

    ref = _edge_grey((64, 64), 0.0, sigma=0.7)  # a vertical edge: information in x only
    alt = _edge_grey((64, 64), 0.0, (0.0, 0.3), sigma=0.7)
    flow = torch.tensor([0.0, 0.3])[:, None, None].expand(2, 3, 3).contiguous()
    info = tile_information(ref, alt, flow, tile_size=32, tile_stride=16, raw_var=1e-6)
    jyy, jxy, jxx = info[:, 1, 1]
    assert float(jxx) > 1e4 and float(jyy) < 1e-3 * float(jxx) and abs(float(jxy)) < 1e-3 * float(jxx)
    g = torch.Generator().manual_seed(0)
    flat_r = 0.3 + 1e-3 * torch.randn(64, 64, generator=g)
    flat_a = 0.3 + 1e-3 * torch.randn(64, 64, generator=g)
    info = tile_information(flat_r, flat_a, torch.zeros(2, 3, 3), tile_size=32, tile_stride=16, raw_var=4e-6)
    assert float(info.abs().max()) < 1.0  # noise is not texture (the edge tile above: > 1e4)


def test_global_motion_fit_recovers_an_affine_motion_despite_a_majority_of_outliers():
    from obscura.burst.align import fit_global_motion

    ty, tx = 9, 12
    cy = torch.arange(ty, dtype=torch.float32) * 32 + 31.5
    cx = torch.arange(tx, dtype=torch.float32) * 32 + 31.5
    yy, xx = torch.meshgrid(cy, cx, indexing="ij")
    true = torch.stack([1.2 + 0.002 * (xx - 200), -0.7 + 0.001 * (yy - 150) - 0.002 * (xx - 200)])
    flow = true.clone()
    g = torch.Generator().manual_seed(0)
    bad = torch.rand(ty, tx, generator=g) < 0.55  # most tiles misled, each its own way
    off = 1.5 + 2.5 * torch.rand(2, int(bad.sum()), generator=g)  # 1.5–4 px off, either way
    flow[:, bad] += torch.where(torch.rand(2, int(bad.sum()), generator=g) < 0.5, -off, off)
    info = torch.zeros(1, 3, ty, tx)
    info[0, 0], info[0, 2] = 400.0, 400.0
    prior = fit_global_motion(flow[None], info, (cy, cx))[0]
    assert float((prior - true).abs().max()) < 0.02, float((prior - true).abs().max())


def test_global_motion_of_parallel_edges_is_the_smallest_motion_and_fusion_keeps_the_measured_part():
    """One straight edge everywhere (the aperture problem): the fit gives the motion across the edge only, and
    fusing a tile that wandered along the edge keeps its across component and takes the prior along it."""
    from obscura.burst.align import fit_global_motion, fuse_with_prior

    a = math.radians(5.0)
    n = torch.tensor([-math.sin(a), math.cos(a)])  # across the edge (y, x)
    t = torch.tensor([math.cos(a), math.sin(a)])  # along it
    ty, tx = 5, 6
    true = torch.tensor([-0.4, 1.3])
    g = torch.Generator().manual_seed(1)
    along = torch.randn(ty, tx, generator=g) * 10  # what the search found along the edge: anything
    flow = (true[:, None, None] + along[None] * t[:, None, None])[None]
    j = 5e4 * torch.stack([n[0] * n[0], n[0] * n[1], n[1] * n[1]])[:, None, None].expand(3, ty, tx)[None]
    cy, cx = torch.arange(ty) * 16.0 + 15.5, torch.arange(tx) * 16.0 + 15.5
    prior = fit_global_motion(flow, j, (cy, cx))
    want = float(true @ n) * n  # minimum norm: across component only
    torch.testing.assert_close(prior[0, :, 2, 3], want, atol=0.02, rtol=0)
    fused = fuse_with_prior(flow, j, prior, prior_std=0.2)[0]
    across = (fused * n[:, None, None]).sum(0)
    along_f = (fused * t[:, None, None]).sum(0)
    assert float((across - true @ n).abs().max()) < 0.01
    assert float(along_f.abs().max()) < 0.05
