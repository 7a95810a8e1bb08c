"""The remaining lab charts (dead leaves, steps, noise patches, Siemens star, zone plate, dot grid, flat
field), their printable output and the ``lab charts`` CLI: values against analytic ground truth."""

from __future__ import annotations

import argparse
import math
import struct
import sys

import numpy as np
import pytest
import torch

from obscura.core.errors import InvalidParameter, ObscuraError, ShapeError, UnknownMethod
from obscura.lab.charts import (
    CHARTS,
    Chart,
    dead_leaves_chart,
    dot_grid_chart,
    flat_field_chart,
    noise_chart,
    radial_power_spectrum,
    siemens_star_chart,
    step_chart,
    zone_plate_chart,
)
from obscura.lab.charts.deadleaves import render_dead_leaves, sample_radii
from obscura.lab.charts.printable import (
    chart_preview,
    chart_rgb,
    pdf_page_size,
    write_chart,
    write_chart_pdf,
    write_chart_png,
)
from obscura.lab.charts.star import render_siemens_star, render_zone_plate


def luminance(chart: Chart) -> np.ndarray:
    """(H, W) float64 Y of the chart's scene (the luminance factor, white = 1)."""
    return chart.scene.xyz()[1].double().cpu().numpy()


def roi_mean(y: np.ndarray, box: tuple[int, int, int, int]) -> float:
    x0, y0, x1, y1 = box
    assert 0 <= x0 < x1 <= y.shape[1] and 0 <= y0 < y1 <= y.shape[0]
    return float(y[y0:y1, x0:x1].mean())


# --- step chart and noise patches ---------------------------------------------------------------


def test_step_chart_spans_16_stops_with_monotone_patches():
    c = step_chart(size=(240, 320))
    ref = c.reference
    names = ref["names"]
    assert len(names) >= 20
    y = luminance(c)
    means = np.array([roi_mean(y, c.rois[n]) for n in names])
    # each ROI is uniform and equals its reference Y (float32 scene: relative 1e-5)
    np.testing.assert_allclose(means, ref["Y"], rtol=2e-5)
    for n in names:
        x0, y0, x1, y1 = c.rois[n]
        patch = y[y0:y1, x0:x1]
        assert patch.max() - patch.min() <= 1e-6 * patch.max()
    assert np.all(np.diff(means) < 0)  # strictly darker, brightest first
    assert math.log2(means[0] / means[-1]) >= 16.0
    np.testing.assert_allclose(ref["log2_y"], np.log2(ref["Y"]))
    np.testing.assert_allclose(ref["density"], -np.log10(ref["Y"] / ref["Y"][0]), atol=1e-12)
    assert roi_mean(y, c.rois["grey18"]) == pytest.approx(0.18, rel=1e-5)
    # equal steps in log exposure
    steps = np.diff(np.log2(means))
    np.testing.assert_allclose(steps, steps[0], rtol=1e-4)


def test_step_chart_options():
    c = step_chart(size=(200, 300), patches=30, stops=20.0, white=2.0, surround=0.05)
    y = luminance(c)
    assert len(c.reference["names"]) == 30
    assert roi_mean(y, c.rois["step_00"]) == pytest.approx(2.0, rel=1e-5)
    assert roi_mean(y, c.rois["step_29"]) == pytest.approx(2.0 * 2.0**-20, rel=1e-4)
    assert y[0, 0] == pytest.approx(0.05, rel=1e-5)  # the surround


def test_noise_chart_patch_means_and_neutrality():
    import colour

    levels = (0.05, 0.2, 0.4, 0.6, 0.9)
    c = noise_chart(size=(120, 400), reflectances=levels, illuminant="A")
    xyz = c.scene.xyz().double().numpy()
    # a flat reflectance under illuminant A has A's chromaticity (colour-science reference)
    xy_a = colour.CCS_ILLUMINANTS["CIE 1931 2 Degree Standard Observer"]["A"]
    for name, want in zip(c.reference["names"], levels):
        x0, y0, x1, y1 = c.rois[name]
        big_x, big_y, big_z = xyz[:, y0:y1, x0:x1].mean(axis=(1, 2))
        assert big_y == pytest.approx(want, rel=1e-5)
        total = big_x + big_y + big_z
        np.testing.assert_allclose((big_x / total, big_y / total), xy_a, atol=2e-4)
    np.testing.assert_array_equal(c.reference["Y"], levels)


# --- dead leaves ------------------------------------------------------------------------------


def test_radii_follow_the_r_minus_3_law():
    from scipy import stats

    rmin, rmax = 1.0, 100.0
    r = sample_radii(np.random.default_rng(3), 20000, rmin=rmin, rmax=rmax)

    def cdf(x):
        return (rmin**-2 - np.clip(x, rmin, rmax) ** -2) / (rmin**-2 - rmax**-2)

    assert r.min() >= rmin and r.max() <= rmax
    assert stats.kstest(r, cdf).pvalue > 0.01


def test_radial_power_spectrum_of_white_noise_is_its_variance():
    # white noise of σ = 0.3: a flat spectrum at σ² (the Hann-normalized periodogram), averaged over 4 draws
    spectra = [radial_power_spectrum(np.random.default_rng(s).normal(0.0, 0.3, (256, 256)), bins=16) for s in range(4)]
    f = spectra[0][0]
    p = np.mean([sp[1] for sp in spectra], axis=0)
    assert f[0] > 0 and f[-1] <= 0.5 and np.all(np.diff(f) > 0)
    np.testing.assert_allclose(p[f >= 0.1], 0.09, rtol=0.08)  # low bins hold few, correlated samples
    assert p.mean() == pytest.approx(0.09, rel=0.03)


def test_dead_leaves_power_spectrum_slope_is_minus_2():
    tex = render_dead_leaves((256, 256), rmin=1.0, rmax=64.0, levels=(0.1, 0.7), seed=1)
    f, p = radial_power_spectrum(tex)
    sel = (f >= 0.02) & (f <= 0.2)  # one decade
    slope = np.polyfit(np.log(f[sel]), np.log(p[sel]), 1)[0]
    assert abs(slope + 2.0) <= 0.3, slope
    assert tex.min() >= 0.1 and tex.max() <= 0.7  # fully covered: every pixel is a mix of disc greys


def test_dead_leaves_occlusion_first_disc_is_on_top():
    # brute force: each sample shows the grey of the first disc (in drawing order) that covers it
    ss, n = 2, 1000
    tex = render_dead_leaves((8, 8), rmin=50.0, rmax=50.0, levels=(0.2, 0.6), supersample=ss, seed=5)
    rng = np.random.default_rng(5)  # the same draws: radii, x, y, then the greys of the first batch
    rng.random(n)
    cx, cy = rng.uniform(-50.5, 57.5, n), rng.uniform(-50.5, 57.5, n)
    grey = rng.uniform(0.2, 0.6, n)
    s = (np.arange(8 * ss) + 0.5) / ss - 0.5
    sy, sx = np.meshgrid(s, s, indexing="ij")
    covers = (sx[..., None] - cx) ** 2 + (sy[..., None] - cy) ** 2 <= 2500.0  # (16, 16, n)
    assert np.all(covers.any(axis=-1))  # one batch covers this tiny image
    want = grey[np.argmax(covers, axis=-1)].reshape(8, ss, 8, ss).mean(axis=(1, 3))
    np.testing.assert_allclose(tex, want, rtol=1e-12)
    assert np.ptp(tex) > 0  # several discs show: the test sees the occlusion order


def test_dead_leaves_chart_layout_and_reference():
    c = dead_leaves_chart(size=(200, 300), seed=2)
    y = luminance(c)
    ref = c.reference
    x0, y0, x1, y1 = c.rois["deadleaves"]
    assert x1 - x0 == y1 - y0 == 160
    tex = y[y0:y1, x0:x1]
    assert tex.mean() == pytest.approx(ref["mean"], rel=1e-5)
    assert tex.var() == pytest.approx(ref["variance"], rel=1e-4)
    assert ref["mean"] == pytest.approx(0.4, abs=0.05)  # uniform greys in (0.1, 0.7)
    assert len(ref["grey_Y"]) == 8
    for name, want in ref["grey_Y"].items():
        assert roi_mean(y, c.rois[name]) == pytest.approx(want, rel=1e-5)
    assert ref["power_spectrum"]["frequency"].shape == ref["power_spectrum"]["power"].shape
    _, p = radial_power_spectrum(tex)
    np.testing.assert_allclose(p, ref["power_spectrum"]["power"], rtol=1e-3)
    # seeded: the same seed gives the same chart, another seed another one
    assert torch.equal(dead_leaves_chart(size=(200, 300), seed=2).scene.weights, c.scene.weights)
    assert not torch.equal(dead_leaves_chart(size=(200, 300), seed=3).scene.weights, c.scene.weights)


# --- Siemens star and zone plate -----------------------------------------------------------------


@pytest.mark.parametrize("profile", ["sine", "binary"])
def test_siemens_star_sector_count_and_mean(profile):
    c = siemens_star_chart(size=(256, 256), cycles=36, profile=profile, supersample=6)
    ref = c.reference
    assert ref["sectors"] == 72
    y = luminance(c)
    cx, cy = ref["centre"]
    r = 0.8 * ref["radius"]
    th = np.linspace(0, 2 * np.pi, 4000, endpoint=False)
    xs, ys = np.round(cx + r * np.cos(th)).astype(int), np.round(cy + r * np.sin(th)).astype(int)
    mid = sum(ref["levels"]) / 2
    s = np.sign(y[ys, xs] - mid)
    s = s[s != 0]
    sectors = int(np.count_nonzero(s != np.roll(s, 1)))  # sign changes around the circle
    assert sectors == ref["sectors"]
    # sin(Nθ) averages to 0 over the disc and the ground is the mid grey: the chart's mean is the mid grey
    assert y.mean() == pytest.approx(mid, abs=2e-3)
    assert ref["nyquist_radius"] == pytest.approx(36 / math.pi)


def test_siemens_star_modulation_matches_formula_far_from_centre():
    m = render_siemens_star((200, 200), cycles=8, profile="sine", supersample=8)
    cx = cy = 99.5
    x, y = 170, 120  # far out, where a pixel sees a nearly linear part of sin(8θ)
    want = math.sin(8 * math.atan2(y - cy, x - cx))
    assert m[y, x] == pytest.approx(want, abs=0.01)


def test_zone_plate_is_the_exact_pixel_integral():
    k = math.pi * 0.5 / 16
    z = render_zone_plate((32, 40), k=k)
    ss = 64
    u = (np.arange(ss) + 0.5) / ss - 0.5
    x = (np.arange(40)[:, None] + u).ravel() - 19.5
    yv = (np.arange(32)[:, None] + u).ravel() - 15.5
    brute = np.cos(k * (yv[:, None] ** 2 + x[None, :] ** 2)).reshape(32, ss, 40, ss).mean(axis=(1, 3))
    np.testing.assert_allclose(z, brute, atol=2e-4)


@pytest.mark.parametrize("radius", [60.0, 100.0, 140.0])
def test_zone_plate_local_frequency(radius):
    c = zone_plate_chart(size=(384, 384))
    ref = c.reference
    assert ref["edge_frequency"] == 0.5 and ref["corner_frequency"] > 0.5
    y = luminance(c)
    cx, cy = ref["centre"]
    n = 32
    x0, y0 = round(cx + radius) - n // 2, round(cy) - n // 2
    win = y[y0 : y0 + n, x0 : x0 + n]
    win = (win - win.mean()) * np.outer(np.hanning(n), np.hanning(n))
    pad = 1024
    spec = np.abs(np.fft.rfft(win.sum(axis=0), pad))  # along x: the radial direction here
    f_meas = np.argmax(spec[1:]) / pad + 1 / pad
    f_want = ref["frequency_per_px"] * (x0 + n / 2 - 0.5 - cx)
    assert f_meas == pytest.approx(f_want, rel=0.03)
    assert np.interp(radius, ref["radius"], ref["frequency"]) == pytest.approx(ref["frequency_per_px"] * radius)


# --- dot grid and flat field -----------------------------------------------------------------


def test_dot_grid_centroids_match_reference():
    c = dot_grid_chart(size=(160, 224), spacing=24.0, radius=5.0)
    ref = c.reference
    ground, dot = ref["reflectances"]
    cov = (ground - luminance(c)) / (ground - dot)  # fraction of each pixel covered by a dot
    centres = ref["centres"]
    assert centres.shape == (ref["rows"] * ref["cols"], 2) and ref["rows"] % 2 == 1 and ref["cols"] % 2 == 1
    assert centres.mean(axis=0) == pytest.approx(ref["centre"])
    half = 10  # window: the dot plus ground, no neighbour (pitch 24)
    errs = []
    for x, yv in centres:
        i0, j0 = round(yv) - half, round(x) - half
        w = cov[i0 : i0 + 2 * half + 1, j0 : j0 + 2 * half + 1]
        ii, jj = np.mgrid[i0 : i0 + 2 * half + 1, j0 : j0 + 2 * half + 1]
        errs.append(math.hypot((w * jj).sum() / w.sum() - x, (w * ii).sum() / w.sum() - yv))
        assert w.sum() == pytest.approx(math.pi * 25.0, rel=2e-3)  # the dot's area
    assert max(errs) < 0.05


def test_flat_field_is_uniform():
    c = flat_field_chart(size=(90, 120), reflectance=0.5)
    y = luminance(c)
    np.testing.assert_allclose(y, 0.5, rtol=1e-5)
    assert c.rois["corner_br"] == (111, 81, 120, 90)
    assert c.reference["uniform"] is True and c.reference["Y"] == 0.5


# --- registry, devices, bad input ---------------------------------------------------------------


def test_registry_builds_every_chart_at_a_size():
    assert set(CHARTS.names()) == {"edge", "colorchecker", "deadleaves", "steps", "noise", "star", "zoneplate", "dots",
                                   "flat"}  # fmt: skip
    for name in CHARTS:
        c = CHARTS.get(name)(size=(240, 320))
        assert isinstance(c, Chart) and c.scene.size == (240, 320), name
        for box in c.rois.values():
            x0, y0, x1, y1 = box
            assert 0 <= x0 < x1 <= 320 and 0 <= y0 < y1 <= 240, (name, box)
    with pytest.raises(UnknownMethod, match="valid methods: colorchecker"):
        CHARTS.get("usaf1951")


def test_charts_on_device(device):
    for make in (
        lambda: step_chart(size=(96, 128), device=device),
        lambda: noise_chart(size=(64, 128), device=device),
        lambda: zone_plate_chart(size=(64, 64), device=device),
        lambda: flat_field_chart(size=(32, 32), device=device),
    ):
        c = make()
        assert c.scene.device.type == device
        assert c.scene.xyz().device.type == device


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: step_chart(size=(20, 20)), "too small"),
        (lambda: step_chart(size=(100,)), "size must be"),
        (lambda: step_chart(patches=1), "patches"),
        (lambda: step_chart(stops=0.5), "stops"),
        (lambda: step_chart(white=-1.0), "white"),
        (lambda: noise_chart(reflectances=(0.2, 1.5)), "reflectances"),
        (lambda: noise_chart(reflectances="ab"), "reflectances"),
        (lambda: dead_leaves_chart(size=(40, 40)), "too small"),
        (lambda: dead_leaves_chart(size=(128, 160), rmin=0.0), "rmin"),
        (lambda: dead_leaves_chart(size=(128, 160), rmin=4.0, rmax=2.0), "rmax"),
        (lambda: dead_leaves_chart(size=(128, 160), levels=(0.8, 0.2)), "levels"),
        (lambda: dead_leaves_chart(size=(128, 160), grey_patches=-1), "grey_patches"),
        (lambda: siemens_star_chart(cycles=2), "cycles"),
        (lambda: siemens_star_chart(profile="square"), "profile"),
        (lambda: siemens_star_chart(size=(64, 64), radius=1000.0), "radius"),
        (lambda: zone_plate_chart(edge_frequency=float("nan")), "edge_frequency"),
        (lambda: zone_plate_chart(size=(10**6, 10)), "size"),
        (lambda: dot_grid_chart(size=(64, 64), spacing=40.0), "spacing"),
        (lambda: dot_grid_chart(spacing=32.0, radius=20.0), "radius"),
        (lambda: dot_grid_chart(reflectances=(0.5, 0.5)), "differ"),
        (lambda: flat_field_chart(reflectance=-0.1), "reflectance"),
        (lambda: flat_field_chart(size=(8, 8)), "too small"),
        (lambda: flat_field_chart(illuminant="D99"), "D65"),
    ],
)
def test_bad_input(make, match):
    with pytest.raises(ObscuraError, match=match):
        make()


def test_radial_power_spectrum_bad_input():
    with pytest.raises(ShapeError, match=r"\(H, W\)"):
        radial_power_spectrum(np.zeros((3, 16, 16)))
    with pytest.raises(InvalidParameter, match="bins"):
        radial_power_spectrum(np.zeros((16, 16)), bins=1)


# --- printable output ----------------------------------------------------------------------------


def test_png_is_16_bit_with_the_same_content_and_dpi(tmp_path):
    import colour
    import imagecodecs
    from PIL import Image as PILImage

    from obscura.io.write import read_image

    c = noise_chart(size=(60, 160), reflectances=(0.05, 0.18, 0.5, 0.9))
    p = write_chart_png(c, tmp_path / "noise.png", dpi=150)
    codes = imagecodecs.png_decode(p.read_bytes())
    assert codes.dtype == np.uint16 and codes.shape == (60, 160, 3)
    # sRGB encoding against colour-science's IEC 61966-2-1 curve, at the patch centres
    for name, yv in zip(c.reference["names"], c.reference["Y"]):
        x0, y0, x1, y1 = c.rois[name]
        want = colour.cctf_encoding(yv, function="sRGB") * 65535
        np.testing.assert_allclose(codes[y0:y1, x0:x1].astype(float), want, atol=2.0)
    np.testing.assert_array_equal(codes, np.round(chart_rgb(c) * 65535).astype(np.uint16))
    back = read_image(p)  # our reader: the sRGB profile is recognised and the codes survive
    assert back.space == "srgb"
    np.testing.assert_allclose(back.data.permute(1, 2, 0).double().numpy() * 65535, codes, atol=1e-2)
    with PILImage.open(p) as im:
        assert im.info["dpi"] == pytest.approx((150, 150), rel=1e-4)  # whole pixels per metre

    lin = write_chart_png(c, tmp_path / "noise_linear.png", encoding="linear", width_mm=80.0)
    codes_lin = imagecodecs.png_decode(lin.read_bytes())
    x0, y0, x1, y1 = c.rois["patch_01"]
    np.testing.assert_allclose(codes_lin[y0:y1, x0:x1], 0.18 * 65535, atol=2.0)
    with PILImage.open(lin) as im:
        assert im.info["dpi"][0] == pytest.approx(160 / (80 / 25.4), rel=1e-3)
    with pytest.raises(ObscuraError, match="already exists"):
        write_chart_png(c, tmp_path / "noise.png")
    write_chart_png(c, tmp_path / "noise.png", overwrite=True)


def test_pdf_has_the_stated_physical_size(tmp_path):
    c = siemens_star_chart(size=(120, 180), cycles=12, supersample=2)
    p = write_chart_pdf(c, tmp_path / "star.pdf", dpi=200.0, outline_rois=True)
    data = p.read_bytes()
    assert data.startswith(b"%PDF-") and data.rstrip().endswith(b"%%EOF")
    w_pt, h_pt = pdf_page_size(p)
    assert (w_pt, h_pt) == pytest.approx((180 / 200 * 72, 120 / 200 * 72), abs=0.01)
    p2 = write_chart(c, tmp_path / "star_a.pdf", width_mm=100.0)
    assert pdf_page_size(p2)[0] == pytest.approx(100 / 25.4 * 72, abs=0.01)


def test_preview_outlines_rois():
    c = flat_field_chart(size=(40, 60), reflectance=0.5)
    prev = chart_preview(c)
    x0, y0, x1, y1 = c.rois["centre"]
    assert tuple(prev[y0, x0]) == (1.0, 0.0, 0.0) and tuple(prev[y1 - 1, x1 - 1]) == (1.0, 0.0, 0.0)
    assert prev[y0 + 1, x0 + 1, 1] == pytest.approx(prev[20, 5, 1])  # inside untouched
    assert np.array_equal(chart_preview(c, outline_rois=False), chart_rgb(c))


def test_printable_bad_input(tmp_path):
    c = flat_field_chart(size=(32, 32))
    with pytest.raises(InvalidParameter, match="encoding"):
        chart_rgb(c, encoding="gamma22")
    with pytest.raises(InvalidParameter, match="Chart"):
        chart_rgb(torch.zeros(3, 8, 8))
    with pytest.raises(InvalidParameter, match="dpi"):
        write_chart_png(c, tmp_path / "a.png", dpi=0.0)
    with pytest.raises(InvalidParameter, match="not both"):
        write_chart_pdf(c, tmp_path / "a.pdf", dpi=100.0, width_mm=50.0)
    with pytest.raises(InvalidParameter, match="suffix"):
        write_chart(c, tmp_path / "a.jpg")
    assert not list(tmp_path.iterdir())  # nothing written on bad input


# --- CLI ------------------------------------------------------------------------------------------


def run_cli(argv: list[str]) -> int:
    """What obscura.cli.main.main does, on a local parser holding only the lab command."""
    from obscura.cli import lab

    parser = argparse.ArgumentParser(prog="obscura")
    sub = parser.add_subparsers(dest="command", required=True)
    lab.add_parser(sub)
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except ObscuraError as e:
        print(f"obscura: error: {e}", file=sys.stderr)
        return 2


def test_cli_lab_charts_writes_every_chart(tmp_path, capsys):
    out = tmp_path / "charts"
    assert run_cli(["lab", "charts", "-o", str(out), "--size", "240x320", "--format", "both", "--quiet"]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(f"{n}.{s}" for n in CHARTS.names() for s in ("png", "pdf"))
    import imagecodecs

    a = imagecodecs.png_decode((out / "steps.png").read_bytes())
    assert a.shape == (240, 320, 3) and a.dtype == np.uint16
    assert (out / "star.pdf").read_bytes().startswith(b"%PDF")
    # again without --overwrite: refused before anything is written, one line, exit 2
    capsys.readouterr()
    assert run_cli(["lab", "charts", "-o", str(out), "--chart", "flat"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "already exists" in err[0]


def test_cli_lab_charts_one_chart_linear(tmp_path, capsys):
    out = tmp_path / "c"
    code = run_cli(["lab", "charts", "-o", str(out), "--chart", "flat", "--encoding", "linear", "--dpi", "100"])
    assert code == 0
    assert "flat.png" in capsys.readouterr().out
    import imagecodecs

    a = imagecodecs.png_decode((out / "flat.png").read_bytes())
    np.testing.assert_allclose(a, 0.8 * 65535, atol=2)  # the default flat field, linear


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["--size", "big"], "--size must be HxW"),
        (["--size", "8x8", "--chart", "flat"], "too small"),
        (["--format", "pdf", "--encoding", "linear"], "linear is for PNG"),
    ],
)
def test_cli_lab_charts_bad_input(tmp_path, capsys, argv, match):
    out = tmp_path / "o"
    assert run_cli(["lab", "charts", "-o", str(out), *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and match in err[0]
    assert not out.exists()  # nothing written


def test_png_phys_chunk_bytes(tmp_path):
    # the pHYs chunk itself (PNG 1.2 §11.3.5.3): pixels per metre, unit byte 1
    p = write_chart_png(flat_field_chart(size=(16, 16)), tmp_path / "f.png", dpi=254.0)
    data = p.read_bytes()
    i = data.index(b"pHYs")
    ppx, ppy, unit = struct.unpack(">IIB", data[i + 4 : i + 13])
    assert (ppx, ppy, unit) == (10000, 10000, 1)
    assert i < data.index(b"IDAT")
