"""Tests for obscura.isp.bad_pixels."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from obscura.core.cfa import mosaic_rgb
from obscura.core.colour import srgb_decode
from obscura.core.errors import InvalidParameter, ShapeError, UnknownMethod
from obscura.core.types import QUAD_BAYER_PATTERNS
from obscura.isp.bad_pixels import BAD_PIXELS, detect_bad_pixels, fill_bad_pixels, fix_bad_pixels


def _kodak_mosaic(data_dir, name, cfa, device, sigma=0.01, seed=0):
    path = data_dir / "images" / "kodak24" / f"{name}.png"
    if not path.exists():
        pytest.skip(f"{path} absent")
    rgb = torch.from_numpy(np.array(Image.open(path).convert("RGB"), dtype=np.float32) / 255.0).permute(2, 0, 1)
    # upsampled ×2: a camera's lens and anti-aliasing filter band-limit the image at the photosite scale,
    # which the sharp Kodak scans are not
    rgb = torch.nn.functional.interpolate(rgb[None], scale_factor=2, mode="bilinear", align_corners=False)[0]
    clean = mosaic_rgb(srgb_decode(rgb.clamp(0, 1)), cfa=cfa)
    g = torch.Generator().manual_seed(seed)
    noisy = clean + sigma * torch.randn(clean.shape, generator=g)
    return clean.to(device), noisy.to(device)


def _inject(noisy, clean, n_hot, n_dead, seed=1):
    """Hot pixels (stuck high) and dead pixels (stuck at 0) that differ from the truth by ≥ 0.2."""
    rng = np.random.default_rng(seed)
    x = noisy.clone()
    h, w = x.shape
    c = clean.cpu().numpy()
    bad = torch.zeros(h, w, dtype=torch.bool)
    placed = {"hot": 0, "dead": 0}
    while placed["hot"] < n_hot or placed["dead"] < n_dead:
        r, col = int(rng.integers(0, h)), int(rng.integers(0, w))
        if bad[max(r - 2, 0) : r + 3, max(col - 2, 0) : col + 3].any():
            continue  # isolated defects
        kind = "hot" if placed["hot"] < n_hot else "dead"
        value = float(rng.uniform(0.3, 1.0)) if kind == "hot" else 0.0
        if abs(value - c[r, col]) < 0.2:
            continue
        x[r, col] = value
        bad[r, col] = True
        placed[kind] += 1
    return x, bad.to(x.device)


@pytest.mark.parametrize(
    ("name", "cfa"), [("kodim08", "RGGB"), ("kodim13", "GBRG"), ("kodim01", "BGGR"), ("kodim05", "GRBG")]
)
def test_auto_detects_defects_on_textured_images(data_dir, device, name, cfa):
    clean, noisy = _kodak_mosaic(data_dir, name, cfa, device)
    x, bad = _inject(noisy, clean, 300, 300)
    found = detect_bad_pixels(x, cfa=cfa)
    recall = float((found & bad).sum()) / float(bad.sum())
    false_pos = float((found & ~bad).sum()) / found.numel()
    assert recall >= 0.95, recall
    assert false_pos < 0.0005, false_pos
    fixed = fix_bad_pixels(x, cfa=cfa, method="auto")
    err = (fixed - clean)[bad].abs()
    assert float(err.median()) < 0.015 and float((err < 0.1).float().mean()) >= 0.95, (err.median(), err)
    # pixels that were fine and not flagged are untouched; the input is untouched
    keep = ~bad & ~found
    assert torch.equal(fixed[keep], x[keep])
    assert torch.equal(x[bad].cpu(), _inject(noisy, clean, 300, 300)[0][bad].cpu())
    # the fill alone (true mask): colour-difference interpolation recovers the truth closely
    filled = fill_bad_pixels(x, bad, cfa=cfa)
    ferr = (filled - clean)[bad].abs()
    assert float((ferr < 0.1).float().mean()) >= 0.98 and float(ferr.median()) < 0.012
    # ... and beats the plain same-colour median, the usual fallback
    merr = (fill_bad_pixels(x, bad, cfa=cfa, statistic="median") - clean)[bad].abs()
    assert float(ferr.mean()) < 0.9 * float(merr.mean())
    # without defects the detector stays almost silent on the same textured image
    assert float(detect_bad_pixels(noisy, cfa=cfa).float().mean()) < 0.0005


def _star_field(h, w, psf_sigmas, n_stars=60, seed=2):
    """A dark noisy sky with isolated point sources seen through a Gaussian lens PSF (brighter than any hot pixel)."""
    yy, xx = torch.meshgrid(torch.arange(h) + 0.5, torch.arange(w) + 0.5, indexing="ij")
    sky = torch.full((h, w), 0.02)
    rng = np.random.default_rng(seed)
    stars = []
    while len(stars) < n_stars:
        sx, sy = rng.uniform(8, w - 8), rng.uniform(8, h - 8)
        if any(abs(sy - r) < 10 and abs(sx - c) < 10 for r, c in stars):
            continue  # isolated: overlapping stars make other shapes
        s = float(rng.uniform(*psf_sigmas))
        sky += float(rng.uniform(0.3, 0.9)) * torch.exp(-((xx - sx) ** 2 + (yy - sy) ** 2) / (2 * s**2))
        stars.append((int(sy), int(sx)))
    g = torch.Generator().manual_seed(seed + 3)
    return sky + 0.005 * torch.randn(h, w, generator=g), stars


@pytest.mark.parametrize("psf", [(0.7, 0.7), (0.7, 1.0), (1.0, 1.0)])
def test_stars_are_not_defects(device, psf):
    # isolated stars of PSF sigma 0.7–1 px are brighter than their same-colour neighbours at distance 2 like a hot
    # pixel, but lift the adjacent photosites of the other colours: no detection
    cfa = "RGGB"
    sky, stars = _star_field(256, 256, psf, n_stars=80)
    x = sky.to(device)
    assert int(detect_bad_pixels(x, cfa=cfa).sum()) == 0
    assert torch.equal(fix_bad_pixels(x, cfa=cfa), x)
    # hot and dead pixels on the same sky, away from the stars, are still all found, and nothing else
    y = x.clone()
    expected = torch.zeros_like(y, dtype=torch.bool)
    rng = np.random.default_rng(7)
    while int(expected.sum()) < 20:
        r, c = (int(v) for v in rng.integers(4, 252, size=2))
        if any(abs(r - sr) < 5 and abs(c - sc) < 5 for sr, sc in stars) or expected[r - 2 : r + 3, c - 2 : c + 3].any():
            continue
        y[r, c] = 0.35 if int(expected.sum()) % 2 else 0.6
        expected[r, c] = True
    assert torch.equal(detect_bad_pixels(y, cfa=cfa), expected)
    # a dim hot pixel on the sky: 6 noise sigmas
    z = x.clone()
    r, c = next((r, c) for r in range(20, 240, 7) for c in range(20, 240, 7)
                if all(abs(r - sr) > 6 or abs(c - sc) > 6 for sr, sc in stars))  # fmt: skip
    z[r, c] += 0.06
    assert detect_bad_pixels(z, cfa=cfa, sigma=0.005, min_deviation=0.01).nonzero().cpu().tolist() == [[r, c]]


def test_noise_profile_sets_a_signal_dependent_threshold(device):
    # shot + read noise, variance a·x + b: sigma 0.001 at black, 0.014 at white
    h, w = 128, 256
    a, b = 2e-4, 1e-6
    g = torch.Generator().manual_seed(11)
    level = torch.linspace(0.0, 1.0, w).expand(h, w)
    x = level + (a * level + b).sqrt() * torch.randn(h, w, generator=g)
    # small defects in the dark part: 0.05 above a signal whose noise sigma is ≤ 0.0065
    spots = [(10, 11), (40, 30), (77, 52), (101, 20), (120, 43)]
    for r, c in spots:
        x[r, c] += 0.05
    x = x.to(device)
    found = detect_bad_pixels(x, cfa="GRBG", noise_profile=(a, b), min_deviation=0.01)
    assert sorted(found.nonzero().cpu().tolist()) == sorted([list(p) for p in spots])
    # one sigma for the whole frame (the dark one) takes the bright noise for defects
    dark = float((a * 0.1 + b) ** 0.5)
    assert int(detect_bad_pixels(x, cfa="GRBG", sigma=dark, min_deviation=0.01).sum()) > 20
    # per colour (R, G, B) and per CFA site profiles are the same model
    same = detect_bad_pixels(x, cfa="GRBG", noise_profile=[(a, b)] * 3, min_deviation=0.01)
    assert torch.equal(same, found)
    assert torch.equal(detect_bad_pixels(x, cfa="GRBG", noise_profile=[(a, b)] * 4, min_deviation=0.01), found)


def test_list_method_points_and_rects(device):
    h, w = 32, 40
    rr, cc = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    truth = (0.2 + 0.01 * rr + 0.005 * cc).to(device)
    x = truth.clone()
    x[3, 5] = 1.0
    x[0, 0] = 0.0  # a corner: only three same-colour neighbours
    x[10:14, 20] = 0.9  # a bad column segment
    x[20:26, 10:16] = 0.0  # a cluster larger than a neighbourhood
    for statistic in ("directional", "median", "mean"):
        out = fix_bad_pixels(x, cfa="RGGB", method="list", points=[(3, 5), (0, 0)], rects=[(10, 20, 14, 21),
                             (20, 10, 26, 16)], statistic=statistic)  # fmt: skip
        assert torch.allclose(out, truth, atol=0.02), statistic
        assert float((out - truth).abs()[:3, :3].max()) < 0.025  # a corner extrapolates
    assert torch.equal(x[3, 5], torch.tensor(1.0, device=device))  # input untouched


def test_quad_bayer(device):
    cfa = QUAD_BAYER_PATTERNS[0]
    h, w = 64, 64
    g = torch.Generator().manual_seed(3)
    rr, cc = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    x = (0.3 + 0.002 * rr + 0.003 * cc + 0.005 * torch.randn(h, w, generator=g)).to(device)
    x[17, 22] = 1.0
    x[40, 9] = 0.0
    found = detect_bad_pixels(x, cfa=cfa)
    assert found.nonzero().cpu().tolist() == [[17, 22], [40, 9]]
    out = fix_bad_pixels(x, cfa=cfa)
    assert abs(float(out[17, 22]) - (0.3 + 0.002 * 17 + 0.003 * 22)) < 0.02


def test_registry_and_bad_inputs():
    assert BAD_PIXELS.names() == ["auto", "list"]
    x = torch.rand(16, 16)
    with pytest.raises(UnknownMethod, match="auto"):
        fix_bad_pixels(x, cfa="RGGB", method="magic")
    with pytest.raises(ShapeError):
        fix_bad_pixels(torch.rand(15, 16), cfa="RGGB")
    with pytest.raises(ShapeError):
        fix_bad_pixels(torch.rand(3, 16, 16), cfa="RGGB")
    with pytest.raises(ShapeError):
        fix_bad_pixels(torch.rand(4, 4), cfa="RGGB")  # too small for a same-colour neighbourhood
    with pytest.raises(InvalidParameter):
        fix_bad_pixels(x, cfa="")
    with pytest.raises(InvalidParameter, match="k must"):
        detect_bad_pixels(x, cfa="RGGB", k=2.0)
    with pytest.raises(InvalidParameter, match="either"):
        detect_bad_pixels(x, cfa="RGGB", sigma=0.01, noise_profile=(1e-4, 1e-6))
    for profile in [(1e-4,), (1e-4, -1.0), [(1e-4, 1e-6)] * 2, ((1e-4, float("nan")),), "ab"]:
        with pytest.raises(InvalidParameter, match="noise_profile"):
            detect_bad_pixels(x, cfa="RGGB", noise_profile=profile)
    with pytest.raises(InvalidParameter):
        detect_bad_pixels(x, cfa="RGGB", neighbour_ratio=0.0)
    with pytest.raises(InvalidParameter):
        detect_bad_pixels(x, cfa="RGGB", k=float("nan"))
    with pytest.raises(InvalidParameter):
        detect_bad_pixels(x, cfa="RGGB", min_deviation=-1.0)
    with pytest.raises(InvalidParameter):
        detect_bad_pixels(x, cfa="RGGB", sigma=(0.1, 0.2))
    with pytest.raises(InvalidParameter):
        fix_bad_pixels(x, cfa="RGGB", method="list", points=[(16, 0)])
    with pytest.raises(InvalidParameter):
        fix_bad_pixels(x, cfa="RGGB", method="list", rects=[(4, 4, 2, 8)])
    with pytest.raises(InvalidParameter):
        fix_bad_pixels(x, cfa="RGGB", method="list", points=[(1, 1)], statistic="mode")
    with pytest.raises(InvalidParameter, match="statistic"):
        fix_bad_pixels(x, cfa="RGGB", method="auto", statistic="mode")
    with pytest.raises(ShapeError):
        fill_bad_pixels(x, torch.zeros(8, 8, dtype=torch.bool), cfa="RGGB")
    with pytest.raises(InvalidParameter):
        fill_bad_pixels(x, torch.ones(16, 16, dtype=torch.bool), cfa="RGGB")
