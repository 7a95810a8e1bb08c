"""The virtual camera end to end: DNG validity, metadata, noise, colour, motion, determinism, bad input."""

from __future__ import annotations

import dataclasses
import hashlib
import math
import shutil
import subprocess

import numpy as np
import pytest
import rawpy
import torch

from obscura.core.errors import InvalidParameter, ObscuraError, ShapeError, UnknownMethod
from obscura.io.raw import read_raw
from obscura.sim.camera import (
    HandShake,
    MovingObject,
    capture,
    capture_burst,
    effective_sensor,
    list_cameras,
    load_camera,
    metered_exposure_time,
    save_shot,
    shoot,
)
from obscura.sim.optics import Lens
from obscura.sim.scene import flat_scene, scene_from_rgb
from obscura.sim.sensor import noise_model

SMALL = (64, 96)


def _texture(size=(96, 128), seed=0) -> torch.Tensor:
    """A smooth random texture in encoded sRGB (band-limited so sub-pixel shifts are well defined)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand((3, size[0] // 4, size[1] // 4), generator=g)
    return torch.nn.functional.interpolate(x[None], size=size, mode="bicubic", align_corners=False)[0].clamp(0, 1)


def _plain_camera(name="fullframe", **sensor_changes):
    """A profile with an ideal lens (no PSF, vignetting or geometry): isolates the sensor."""
    cam = load_camera(name)
    lens = Lens(focal_length_mm=cam.lens.focal_length_mm, f_number=cam.lens.f_number, psf="none", vignetting_cos4=False)
    return cam.replace(lens=lens, sensor=dataclasses.replace(cam.sensor, **sensor_changes))


# ------------------------------------------------------------------------------------ profiles


def test_shipped_profiles() -> None:
    names = list_cameras()
    for required in ("phone-main", "phone-tele", "phone-ultrawide", "fullframe", "monochrome"):
        assert required in names
    main = load_camera("phone-main")
    # 1-inch type (13.1 × 9.8 mm), 50 MP, 23 mm equivalent at f/1.9
    s = main.sensor
    assert s.width * s.height > 50e6
    diag = math.hypot(s.width, s.height) * s.pixel_pitch_um / 1000
    assert 15.5 < diag < 17.0
    assert abs(main.lens.focal_length_mm * 43.27 / diag - 23) < 1
    assert main.lens.f_number == 1.9
    assert load_camera("phone-tele").lens.f_number == 4.1
    assert load_camera("phone-ultrawide").lens.f_number == 2.2
    assert load_camera("monochrome").sensor.cfa == ""


def test_unknown_camera_lists_valid() -> None:
    with pytest.raises(UnknownMethod, match="phone-main"):
        load_camera("no-such-camera")


def test_effective_sensor_bins_quad_bayer() -> None:
    s = load_camera("phone-main").sensor
    b = effective_sensor(s, (s.height // 2, s.width // 2))
    assert b.cfa == "RGGB" and b.pixel_pitch_um == pytest.approx(2 * s.pixel_pitch_um)
    assert b.full_well_e == pytest.approx(4 * s.full_well_e)
    assert effective_sensor(s, (s.height // 4 * 3 // 4 * 4, s.width // 4 * 3 // 4 * 4)).cfa == s.cfa


# ------------------------------------------------------------------------------------ DNG files


@pytest.mark.parametrize("camera", ["phone-main", "phone-tele", "phone-ultrawide", "fullframe", "monochrome"])
def test_dng_valid_and_read_back(camera, tmp_path) -> None:
    scene = scene_from_rgb(_texture(), luminance=50.0)
    shot = shoot(scene, camera=camera, size=SMALL, iso=400, seed=3)
    paths = save_shot(shot, tmp_path)
    dng = paths[0]
    if shutil.which("exiftool"):
        out = subprocess.run(["exiftool", "-validate", "-warning", "-a", str(dng)], capture_output=True, text=True)
        assert "Validate                        : OK" in out.stdout, out.stdout
    frame = shot.frame
    with rawpy.imread(str(dng)) as r:
        mosaic = r.raw_image.copy()
    want = frame.data.numpy().astype(np.uint16)
    assert np.array_equal(mosaic, want[0] if want.ndim == 3 else want)
    back = read_raw(dng)
    assert torch.equal(back.data, frame.data)
    m, b = frame.meta, back.meta
    for f in dataclasses.fields(m):
        if f.name in ("source_format",):
            continue
        a, c = getattr(m, f.name), getattr(b, f.name)
        if isinstance(a, float) or (isinstance(a, tuple) and a and isinstance(a[0], (float, tuple))):
            np.testing.assert_allclose(np.asarray(c, float), np.asarray(a, float), rtol=1e-5, atol=1e-9, err_msg=f.name)
        else:
            assert c == a, f.name
    if camera != "monochrome":
        assert m.color_matrix1 is not None and m.color_matrix2 is not None and m.forward_matrix2 is not None
        assert {m.calibration_illuminant1, m.calibration_illuminant2} == {17, 21}


def test_quad_bayer_native_readout(tmp_path) -> None:
    cam = load_camera("phone-main")
    frame = capture(scene_from_rgb(_texture()), camera=cam, size=(64, 96))
    assert frame.meta.cfa == "RGGB"  # binned
    s = cam.sensor
    native = cam.replace(sensor=dataclasses.replace(s, width=96 * 4, height=64 * 4))
    # reading at a 1.5× coarser pitch keeps the Quad Bayer layout
    frame = capture(scene_from_rgb(_texture()), camera=native, size=(64 * 8 // 3 // 4 * 4, 96 * 8 // 3 // 4 * 4))
    assert len(frame.meta.cfa) == 16
    shot = shoot(scene_from_rgb(_texture()), camera=native, size=(160, 256))
    p = save_shot(shot, tmp_path)[0]
    back = read_raw(p)
    assert back.meta.cfa == shot.frame.meta.cfa and torch.equal(back.data, shot.frame.data)


def test_determinism(tmp_path) -> None:
    scene = scene_from_rgb(_texture(), luminance=30.0)
    kw = dict(camera="phone-main", size=SMALL, iso=1600, exposure_time=1 / 30, n=2)
    a = capture_burst(scene, seed=7, **kw)
    b = capture_burst(scene, seed=7, **kw)
    c = capture_burst(scene, seed=8, **kw)
    pa = save_shot(a, tmp_path / "a")
    pb = save_shot(b, tmp_path / "b")
    save_shot(c, tmp_path / "c")
    for x, y in zip(pa, pb):
        assert hashlib.sha256(x.read_bytes()).digest() == hashlib.sha256(y.read_bytes()).digest(), x.name
    assert not torch.equal(a.burst.data, c.burst.data)
    assert a.truth.motion == b.truth.motion  # the hand shake follows the seed too
    assert a.truth.motion != c.truth.motion


# ------------------------------------------------------------------------------------ noise


def test_noise_matches_model_and_profile(tmp_path) -> None:
    """Flat fields at 6 exposure levels: var(x) = a·x + b fitted within 5 % of the model and the DNG."""
    # phone-main's 1.6 µm pixels at their native pitch (a 128 × 96 sensor), without fixed patterns
    cam = _plain_camera(
        "phone-main", width=128, height=96, cfa="RGGB", prnu=0.0, dsnu_e=0.0, column_noise_e=0.0, hot_pixel_fraction=0.0
    )
    iso = 800.0
    scene = flat_scene((96, 128), value=0.9, luminance=100.0)
    t_meter = metered_exposure_time(scene, f_number=cam.lens.f_number, iso=iso)
    probe = shoot(scene, camera=cam, size=(96, 128), iso=iso, exposure_time=t_meter, noise=False)
    level = float(probe.truth.clean_mosaics.mean())  # normalized signal at the metered exposure
    means, variances, profile = [], [], None
    for frac in (0.0005, 0.003, 0.02, 0.05, 0.12, 0.25, 0.45, 0.7):
        kw = dict(camera=cam, size=(96, 128), iso=iso, exposure_time=t_meter * frac / level)
        s1, s2 = shoot(scene, seed=1, **kw), shoot(scene, seed=2, **kw)
        m = s1.frame.meta
        span = m.white_level - m.black_level[0]
        x1 = (s1.frame.data - m.black_level[0]) / span
        x2 = (s2.frame.data - m.black_level[0]) / span
        for plane in ((0, 0), (0, 1), (1, 1)):  # R, G, B sites of RGGB
            a1, a2 = x1[plane[0] :: 2, plane[1] :: 2], x2[plane[0] :: 2, plane[1] :: 2]
            means.append(float((a1 + a2).mean() / 2))
            variances.append(float((a1 - a2).var() / 2))  # the difference cancels fixed patterns
        profile = m.noise_profile
        back = read_raw(save_shot(s1, tmp_path / f"{frac}")[0]).meta.noise_profile
        np.testing.assert_allclose(np.asarray(back), np.asarray(profile), rtol=1e-6)
    a_model, b_model = noise_model(effective_sensor(cam.sensor, (96, 128)), iso=iso, exposure_time=t_meter)[0]
    # weighted least squares (weights 1/σ² of each variance estimate ∝ 1/var²): the dark levels fix b
    m, v = np.asarray(means), np.asarray(variances)
    wts = 1.0 / (a_model * np.clip(m, 0, None) + b_model)
    A = np.stack([m, np.ones_like(m)], axis=1) * wts[:, None]
    (a_fit, b_fit), *_ = np.linalg.lstsq(A, v * wts, rcond=None)
    assert max(means) > 0.3 and min(means) < 0.003  # the levels span the range
    assert a_fit == pytest.approx(a_model, rel=0.05)
    assert b_fit == pytest.approx(b_model, rel=0.05)
    assert a_fit == pytest.approx(profile[0][0], rel=0.05) and b_fit == pytest.approx(profile[0][1], rel=0.05)


# ------------------------------------------------------------------------------------ colour


@pytest.mark.parametrize("camera", ["fullframe", "phone-main"])
def test_colorchecker_develops_to_reference(camera) -> None:
    """Noise-free spectral ColorChecker → capture → develop(reference) reproduces the chart (ΔE00 < 2)."""
    import colour

    from obscura.isp.develop import develop
    from obscura.lab.charts.colorchecker import colorchecker_chart

    chart = colorchecker_chart(size=(200, 300))
    cam = load_camera(camera)
    cam = cam.replace(lens=dataclasses.replace(cam.lens, vignetting_cos4=False, vignetting_k=(0.0, 0.0, 0.0)))
    frame = capture(chart.scene, camera=cam, size=(200, 300), noise=False)
    img = develop(frame, recipe="reference").data.numpy()
    got = []
    for name in chart.reference["names"]:
        x0, y0, x1, y1 = chart.rois[name]
        got.append(img[:, y0:y1, x0:x1].reshape(3, -1).mean(1))
    got = colour.cctf_decoding(np.clip(np.array(got), 0, 1), function="sRGB")
    want = np.clip(chart.reference["linear_srgb"], 0, None)
    # exposure normalization on the white patch (develop's auto exposure picks its own brightness)
    got = got * (want[19, 1] / got[19, 1])
    lab = [colour.XYZ_to_Lab(colour.RGB_to_XYZ(v, "sRGB")) for v in (got, want)]
    de = colour.delta_E(lab[0], lab[1], method="CIE 2000")
    assert de.mean() < 2.0, de.round(2)


# ------------------------------------------------------------------------------------ motion


def _lk_shift(a: np.ndarray, b: np.ndarray, *, border: int = 12) -> tuple[float, float]:
    """Translation (dx, dy) with b(x) ≈ a(x − d): iterated Lucas–Kanade (Lucas & Kanade 1981) on the
    interior, with ``a`` shifted by cubic-spline interpolation (scipy), independent of obscura's code."""
    from scipy import ndimage

    d = np.zeros(2)  # (dy, dx)
    core = (slice(border, -border), slice(border, -border))
    for _ in range(8):
        warped = ndimage.shift(a, d, order=3, mode="nearest")
        gy, gx = np.gradient(warped)
        e = (b - warped)[core]
        G = np.stack([gy[core].ravel(), gx[core].ravel()], 1)
        step, *_ = np.linalg.lstsq(G, -e.ravel(), rcond=None)
        d += step
    return float(d[1]), float(d[0])


def test_handshake_shifts_recorded() -> None:
    cam = _plain_camera("fullframe")
    scene = scene_from_rgb(_texture((128, 128), seed=2), luminance=50.0)
    hs = HandShake(translation_px=2.0, rotation_deg=0.0)
    shot = capture_burst(scene, camera=cam, n=4, size=(128, 128), handshake=hs, noise=False, exposure_time=0.01)
    mos = shot.truth.clean_mosaics.numpy()
    g0 = mos[0, 0::2, 1::2] + mos[0, 1::2, 0::2]  # green pairs at 2× subsampling
    m0 = shot.truth.motion[0]
    moved = 0.0
    for i in range(1, 4):
        gi = mos[i, 0::2, 1::2] + mos[i, 1::2, 0::2]
        dx, dy = _lk_shift(g0, gi)
        mi = shot.truth.motion[i]
        want = ((mi.dx - m0.dx) / 2, (mi.dy - m0.dy) / 2)
        assert abs(dx - want[0]) < 0.05 and abs(dy - want[1]) < 0.05, (dx, dy, want)
        moved = max(moved, math.hypot(*want))
    assert moved > 0.2


def test_static_scene_without_handshake_identical_clean_mosaics() -> None:
    scene = scene_from_rgb(_texture(), luminance=50.0)
    shot = capture_burst(scene, camera="phone-main", n=3, size=SMALL, handshake=False, iso=800)
    c = shot.truth.clean_mosaics
    assert torch.equal(c[0], c[1]) and torch.equal(c[0], c[2])
    assert not torch.equal(shot.burst.data[0], shot.burst.data[1])  # the noise differs
    assert all(m.dx == 0 and m.dy == 0 and m.angle_deg == 0 for m in shot.truth.motion)


def test_brackets_and_moving_object(tmp_path) -> None:
    scene = scene_from_rgb(_texture(), luminance=50.0)
    obj = MovingObject(center=(30, 40), velocity=(8, 0), radius=10)
    shot = capture_burst(
        scene,
        camera="fullframe",
        size=(96, 128),
        brackets=[-2, 0, 2],
        exposure_time=0.01,
        moving=[obj],
        handshake=False,
    )
    times = [m.exposure_time for m in shot.burst.metas]
    assert times == pytest.approx([0.0025, 0.01, 0.04])
    masks = shot.truth.masks
    assert masks.shape == (3, 96, 128)
    cx = [float((masks[i] * torch.arange(128)).sum() / masks[i].sum()) for i in range(3)]
    assert np.diff(cx) == pytest.approx([8, 8], abs=0.05)
    paths = save_shot(shot, tmp_path)
    assert (tmp_path / "truth" / "mask_02.tif").is_file() and len([p for p in paths if p.suffix == ".dng"]) == 3


# ------------------------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    ("kw", "err"),
    [
        ({"exposure_time": -0.01}, InvalidParameter),
        ({"iso": 0}, InvalidParameter),
        ({"f_number": 0.4}, InvalidParameter),
        ({"size": (63, 96)}, InvalidParameter),
        ({"camera": "nope"}, UnknownMethod),
        ({"brackets": [0, 99]}, InvalidParameter),
    ],
)
def test_bad_settings(kw, err) -> None:
    scene = scene_from_rgb(_texture())
    kw = {"camera": "phone-main", "size": SMALL, **kw}
    with pytest.raises(err):
        capture_burst(scene, n=1, **kw)


def test_bad_scene_type() -> None:
    with pytest.raises(ShapeError, match="Scene"):
        capture(torch.rand(3, 64, 64), camera="phone-main")


def test_save_never_overwrites(tmp_path) -> None:
    shot = shoot(scene_from_rgb(_texture()), camera="phone-main", size=SMALL)
    save_shot(shot, tmp_path)
    before = (tmp_path / "frame_00.dng").read_bytes()
    with pytest.raises(ObscuraError, match="exists"):
        save_shot(shoot(scene_from_rgb(_texture(seed=5)), camera="phone-main", size=SMALL), tmp_path)
    assert (tmp_path / "frame_00.dng").read_bytes() == before
