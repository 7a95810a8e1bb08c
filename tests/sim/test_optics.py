"""Tests of obscura.sim.optics against analytic optics (Goodman 2005), lensfun's models and outside code."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import ndimage, special
from torch.nn import functional as F  # noqa: N812

from obscura.core.errors import InvalidParameter, ShapeError, UnknownMethod
from obscura.sim import optics, spectral
from obscura.sim.optics import Lens


def _ramp_spectra(c: int = 3) -> np.ndarray:
    centres = (600.0, 540.0, 460.0)[:c] if c == 3 else (550.0,)
    return np.stack([np.exp(-0.5 * ((spectral.WAVELENGTHS - m) / 30.0) ** 2) for m in centres])


def _mtf_row(psf: torch.Tensor) -> np.ndarray:
    """|DFT| of a (k, k) PSF along fx at fy = 0 (frequencies m / k cycles per sample)."""
    p = psf.double().cpu().numpy()
    return np.abs(np.fft.fft2(np.fft.ifftshift(p)))[0]


# -------------------------------------------------------------------------------------- PSFs
def test_psf_gaussian_is_the_box_integrated_gaussian_and_its_mtf():
    sigma = 1.5
    psf = optics.psf_gaussian(sigma, size=21)
    assert psf.shape == (21, 21) and psf.dtype == torch.float32
    assert float(psf.sum()) == pytest.approx(1.0, abs=1e-6)
    i = np.arange(21) - 10
    g = special.ndtr((i + 0.5) / sigma) - special.ndtr((i - 0.5) / sigma)  # scipy's normal CDF
    np.testing.assert_allclose(psf.numpy(), np.outer(g, g) / np.outer(g, g).sum(), atol=1e-7)
    f = np.arange(21) / 21
    sel = f <= 0.5
    analytic = np.exp(-2 * math.pi**2 * sigma**2 * f**2) * np.abs(np.sinc(f))
    np.testing.assert_allclose(_mtf_row(psf)[sel], analytic[sel], atol=2e-4)


def test_psf_gaussian_of_zero_sigma_is_a_delta_and_olpf_dots_between_apertures_are_kept():
    delta = torch.zeros(3, 3)
    delta[1, 1] = 1.0
    torch.testing.assert_close(optics.psf_gaussian(0.0, size=3), delta)
    split = optics.psf_gaussian(0.0, size=3, fill_factor=0.8, olpf_shift_px=1.0)  # dots at ±0.5 px
    assert torch.isfinite(split).all() and float(split.sum()) == pytest.approx(1.0, abs=1e-6)
    torch.testing.assert_close(split[1], torch.tensor([0.125, 0.25, 0.125]), atol=1e-6, rtol=0)


def test_psf_gaussian_olpf_multiplies_mtf_by_cosine():
    sigma, shift = 1.2, 1.0
    psf = optics.psf_gaussian(sigma, size=21, olpf_shift_px=shift)
    f = np.arange(21) / 21
    sel = f <= 0.5
    analytic = np.exp(-2 * math.pi**2 * sigma**2 * f**2) * np.abs(np.sinc(f) * np.cos(math.pi * shift * f))
    np.testing.assert_allclose(_mtf_row(psf)[sel], analytic[sel], atol=5e-4)


def _diffraction_mtf(nu: np.ndarray) -> np.ndarray:
    nu = np.clip(nu, 0.0, 1.0)
    return (2 / math.pi) * (np.arccos(nu) - nu * np.sqrt(1 - nu * nu))


def test_diffraction_mtf_matches_circular_pupil_and_cuts_off_at_one_over_lambda_n():
    lam, n_f = 550.0, 2.0
    pitch = lam * 1e-3 * n_f / 4.0  # 4 samples per λN: cutoff 1/(λN) = 0.25 cycles/sample
    size = 511
    psf = optics.psf_pupil(
        wavelength_nm=lam, f_number=n_f, pixel_pitch_um=pitch, size_px=size, oversample=1, fill_factor=0.0
    )
    mtf = _mtf_row(psf)
    f_cyc_mm = np.arange(size) / size / (pitch * 1e-3)  # cycles per mm
    cutoff = 1.0 / (lam * 1e-6 * n_f)  # cycles per mm
    half = f_cyc_mm < 1.3 * cutoff
    analytic = _diffraction_mtf(f_cyc_mm / cutoff)
    assert np.max(np.abs(mtf[half] - analytic[half])) < 0.01
    at = np.interp([0.5 * cutoff, 0.98 * cutoff, 1.02 * cutoff], f_cyc_mm[half], mtf[half])
    assert at[0] == pytest.approx(_diffraction_mtf(np.array(0.5)), abs=0.005)
    assert 0.0 < at[1] < 0.01  # analytic 0.0034
    assert at[2] < 1e-3


def test_airy_first_dark_ring_at_1_22_lambda_n_and_airy_profile():
    lam, n_f = 500.0, 4.0
    per = 8.0  # samples per λN
    pitch = lam * 1e-3 * n_f / per
    psf = optics.psf_pupil(
        wavelength_nm=lam, f_number=n_f, pixel_pitch_um=pitch, size_px=511, oversample=1, fill_factor=0.0
    )
    c = 255
    prof = psf[c, c:].double().numpy()
    i = int(np.argmin(prof[:14]))
    a, b, cc = prof[i - 1], prof[i], prof[i + 1]
    x_min = i + 0.5 * (a - cc) / (a - 2 * b + cc)
    assert x_min / per == pytest.approx(1.22, rel=0.02)
    x = math.pi * np.arange(1, 30) / per  # π r / (λN)
    airy = (2 * special.j1(x) / x) ** 2
    np.testing.assert_allclose(prof[1:30] / prof[0], airy, atol=3e-3)


def test_psf_pupil_far_below_a_pixel_is_the_pixel_aperture():
    # λN = 0.55 µm under 100 µm pixels: the PSF is a point; the pixel-integrated PSF is (nearly) a delta
    psf = optics.psf_pupil(wavelength_nm=550, f_number=1.0, pixel_pitch_um=100.0, size_px=5)
    assert float(psf.sum()) == pytest.approx(1.0, abs=1e-6)
    assert float(psf[2, 2]) > 0.999


def test_pupil_function_zernike_rms_and_defocus():
    p = optics.pupil_function(256, radius=100.0, zernike={"coma_x": 0.1})
    amp = p.abs()
    assert float(amp.max()) == pytest.approx(1.0)
    inside = amp > 0.999
    phase_waves = torch.angle(p)[inside].double() / (2 * math.pi)
    # Noll normalisation: unit RMS over the pupil → 0.1 waves RMS (the small phase does not wrap)
    assert float(phase_waves.std()) == pytest.approx(0.1, rel=0.03)
    with pytest.raises(InvalidParameter, match="unknown zernike term"):
        optics.pupil_function(64, radius=20.0, zernike={"trefoil": 0.1})


def test_defocus_waves_matches_circle_of_confusion_formula():
    f_mm, n_f, focus, depth, lam = 50.0, 2.0, 2.0, 1.0, 550.0
    w = optics.defocus_waves(depth, focus_m=focus, focal_length_mm=f_mm, f_number=n_f, wavelength_nm=lam)
    f = f_mm * 1e-3
    coc = f * f / (n_f * (focus - f)) * abs(depth - focus) / depth  # blur-circle diameter (DOF formula)
    v_s = 1 / (1 / f - 1 / focus)
    assert w * lam * 1e-9 * 8 * v_s / (f / n_f) == pytest.approx(coc, rel=1e-9)  # c = 8·W020·λ·v_s/D
    assert w > 0
    assert optics.defocus_waves(focus, focus_m=focus, focal_length_mm=f_mm, f_number=n_f) == pytest.approx(0.0)
    dm = torch.tensor([[1.0, 2.0], [math.inf, 4.0]])
    wm = optics.defocus_waves(dm, focus_m=focus, focal_length_mm=f_mm, f_number=n_f, wavelength_nm=lam)
    assert float(wm[0, 0]) == pytest.approx(w, rel=1e-6) and float(wm[1, 0]) < 0
    with pytest.raises(InvalidParameter):
        optics.defocus_waves(0.01, focus_m=focus, focal_length_mm=f_mm, f_number=n_f)


def test_channel_psfs_monochromatic_channel_equals_psf_pupil_and_sum_to_one():
    lens = Lens(f_number=2.0, zernike={"spherical": 0.05})
    spectra = np.zeros((1, spectral.WAVELENGTHS.size))
    spectra[0, list(spectral.WAVELENGTHS).index(560.0)] = 1.0
    lens1 = lens.replace(wavelength_step_nm=10.0)
    ch = optics.channel_psfs(lens1, pixel_pitch_um=1.2, channel_spectra=spectra)
    ref = optics.psf_pupil(
        wavelength_nm=560.0, f_number=2.0, pixel_pitch_um=1.2, zernike={"spherical": 0.05 * 550 / 560}, size_px=15
    )
    torch.testing.assert_close(ch[0], ref, atol=1e-6, rtol=0)
    rgb = optics.channel_psfs(lens, pixel_pitch_um=1.2, channel_spectra=_ramp_spectra())
    assert rgb.shape == (3, 15, 15)
    torch.testing.assert_close(rgb.sum(dim=(1, 2)), torch.ones(3), atol=1e-5, rtol=0)
    # diffraction grows with λ: the red channel's peak is lower than the blue one's
    assert float(rgb[0].max()) < float(rgb[2].max())


def test_field_psf_grid_aberrations_grow_with_field_height():
    lens = Lens(f_number=2.8, zernike={"coma": 0.3, "astigmatism": 0.3}, psf_grid=(3, 3))
    grid = optics.field_psf_grid(lens, size=(300, 300), pixel_pitch_um=1.4, channel_spectra=_ramp_spectra())
    assert grid.shape == (3, 3, 3, 15, 15)
    peaks = grid[:, :, 1].amax(dim=(-2, -1))
    assert float(peaks[1, 1]) > float(peaks[0, 0]) and float(peaks[1, 1]) > float(peaks[2, 2])
    # the lens is rotationally symmetric: opposite corners are point reflections of each other
    torch.testing.assert_close(grid[0, 0], grid[2, 2].flip(-1, -2), atol=1e-5, rtol=0)


# ------------------------------------------------------------------------------- convolution
def test_convolve_psf_matches_scipy_convolve_and_conv2d(device):
    g = torch.Generator().manual_seed(1)
    x = torch.rand(3, 90, 130, generator=g)
    k = torch.rand(3, 9, 9, generator=g)
    k[:, 0, :] += 2.0  # asymmetric: a flipped kernel would show
    k = k / k.sum(dim=(1, 2), keepdim=True)
    y = optics.convolve_psf(x.to(device), k.to(device))
    assert y.device.type == device and y.shape == x.shape
    for c in range(3):
        ref = ndimage.convolve(x[c].double().numpy(), k[c].double().numpy(), mode="nearest")
        np.testing.assert_allclose(y[c].cpu().double().numpy(), ref, atol=1e-5)
    ref2 = F.conv2d(F.pad(x[None], (4, 4, 4, 4), mode="replicate"), k.flip(-1, -2)[:, None], groups=3)[0]
    torch.testing.assert_close(y.cpu(), ref2, atol=1e-5, rtol=0)
    # energy: a PSF summing to 1 keeps the sum of an image that is dark at its borders
    z = torch.zeros(1, 64, 64)
    z[0, 20:40, 25:45] = torch.rand(20, 20, generator=g)
    assert float(optics.convolve_psf(z, k[0]).sum()) == pytest.approx(float(z.sum()), rel=1e-5)


def test_field_varying_with_equal_psfs_equals_plain_convolution(device):
    g = torch.Generator().manual_seed(2)
    x = torch.rand(3, 257, 301, generator=g).to(device)
    k = optics.psf_gaussian(1.3, size=11, fill_factor=1.0).to(device)
    grid = k.expand(3, 4, 3, 11, 11).contiguous()
    a = optics.convolve_field_varying(x, grid)
    b = optics.convolve_psf(x, k)
    ref = torch.from_numpy(ndimage.convolve(x[0].cpu().double().numpy(), k.cpu().double().numpy(), mode="nearest"))
    torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
    torch.testing.assert_close(a[0].cpu().double(), ref, atol=1e-5, rtol=0)


def _per_pixel_blend(x: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """Reference: each grid PSF's full convolution, blended per pixel with bilinear tile-centre weights."""
    gy, gx = grid.shape[:2]
    h, w = x.shape[1:]

    def weights(n: int, nodes: int) -> torch.Tensor:
        u = ((torch.arange(n) + 0.5) / (n / nodes) - 0.5).clamp(0, nodes - 1)
        return torch.stack([(1 - (u - j).abs()).clamp(min=0) for j in range(nodes)])  # (nodes, n)

    wy, wx = weights(h, gy), weights(w, gx)
    out = torch.zeros_like(x)
    for i in range(gy):
        for j in range(gx):
            out += (wy[i][:, None] * wx[j][None, :]) * optics.convolve_psf(x, grid[i, j])
    return out


def test_field_varying_psfs_blend_smoothly_without_seams():
    h, w = 240, 320
    sig = [[0.6, 1.0, 1.6, 2.4], [0.8, 1.3, 2.0, 2.8], [1.0, 1.6, 2.4, 3.2]]
    grid = torch.stack([torch.stack([optics.psf_gaussian(s, size=15)[None] for s in row]) for row in sig])
    xx = torch.arange(w, dtype=torch.float32)
    x = (1.0 + 0.8 * torch.sin(2 * math.pi * xx / 6.0))[None, None, :].expand(1, h, w).contiguous()
    y = optics.convolve_field_varying(x, grid)
    ref = _per_pixel_blend(x, grid)
    # neighbouring tiles' results differ by this much; the output must follow the smooth blend closely
    tile_step = (optics.convolve_psf(x, grid[1, 1]) - optics.convolve_psf(x, grid[1, 2])).abs().max()
    err = (y - ref)[:, 10:-10, 10:-10].abs().max()
    assert float(err) < 0.3 * float(tile_step)
    # the sinusoid's amplitude changes continuously: no jump between neighbouring columns beyond the
    # sinusoid's own change (measured on the per-pixel reference)
    amp = (y - 1.0).abs().unfold(2, 6, 1).amax(-1)[0, 120]
    amp_ref = (ref - 1.0).abs().unfold(2, 6, 1).amax(-1)[0, 120]
    assert float(amp.diff().abs().max()) < 2.0 * float(amp_ref.diff().abs().max()) + 1e-3
    flat = optics.convolve_field_varying(torch.full((1, h, w), 0.7), grid)
    torch.testing.assert_close(flat, torch.full((1, h, w), 0.7), atol=1e-5, rtol=0)


def test_optical_low_pass_mtf_is_cosine():
    w = 256
    f = 1 / 8
    xx = torch.arange(w, dtype=torch.float64)
    x = torch.cos(2 * math.pi * f * xx)[None, None, :].expand(1, 16, w).contiguous()
    y = optics.optical_low_pass(x, shift_px=2.0)
    amp = float(y[0, 8, 64:192].abs().max())
    assert amp == pytest.approx(abs(math.cos(math.pi * 2.0 * f)), abs=1e-6)
    torch.testing.assert_close(optics.optical_low_pass(x, shift_px=0.0), x)


# ----------------------------------------------------------------------------------- vignetting
def test_vignetting_cos4_and_poly():
    h, w, f = 60, 80, 50.0
    g = optics.vignetting_cos4((h, w), focal_length_px=f)
    yy, xx = np.mgrid[0:h, 0:w] + 0.5
    r = np.hypot(yy - h / 2, xx - w / 2)
    np.testing.assert_allclose(g.numpy(), np.cos(np.arctan(r / f)) ** 4, rtol=1e-5)
    p = optics.vignetting_poly((h, w), k1=-0.3, k2=0.05, k3=-0.01)
    rn = r / math.hypot(h / 2, w / 2)  # lensfun "pa": r = 1 at the corner
    np.testing.assert_allclose(p.numpy(), 1 - 0.3 * rn**2 + 0.05 * rn**4 - 0.01 * rn**6, rtol=1e-5)
    x = torch.ones(3, h, w)
    torch.testing.assert_close(optics.apply_vignetting(x, g), g.expand(3, h, w))
    with pytest.raises(InvalidParameter, match="negative gain"):
        optics.vignetting_poly((h, w), k1=-2.0)


# ----------------------------------------------------------------------------------- distortion
@pytest.mark.parametrize(
    ("model", "params"), [("poly3", (-0.05,)), ("poly5", (0.04, -0.01)), ("ptlens", (0.01, -0.03, 0.02))]
)
def test_distortion_field_inverts_the_lensfun_model(model, params):
    h, w = 120, 160
    fld = optics.distortion_field((h, w), model, params, dtype=torch.float64)
    unit = min(h, w) / 2
    yy, xx = np.mgrid[0:h, 0:w] + 0.5
    rd = np.hypot(xx - w / 2, yy - h / 2) / unit
    ru = np.hypot(fld[0].numpy() - w / 2, fld[1].numpy() - h / 2) / unit
    if model == "poly3":
        fwd = ru * (1 - params[0] + params[0] * ru**2)
    elif model == "poly5":
        fwd = ru * (1 + params[0] * ru**2 + params[1] * ru**4)
    else:
        a, b, c = params
        fwd = ru * (a * ru**3 + b * ru**2 + c * ru + 1 - a - b - c)
    np.testing.assert_allclose(fwd, rd, atol=1e-8)
    # the source lies on the same ray from the centre
    ang_d = np.arctan2(yy - h / 2, xx - w / 2)
    ang_u = np.arctan2(fld[1].numpy() - h / 2, fld[0].numpy() - w / 2)
    np.testing.assert_allclose(np.cos(ang_d - ang_u), 1.0, atol=1e-9)


def test_distortion_folding_over_before_the_corner_stays_continuous():
    # poly3 k1 = -0.3 folds at r_u = 1.20 (r_d = 1.04) inside a 4:3 image (corner r = 1.67)
    fld = optics.distortion_field((90, 120), "poly3", (-0.3,), dtype=torch.float64)
    assert torch.isfinite(fld).all()
    row = fld[0, 45, 60:]  # source x along the centre row, from the centre out: never turns back
    assert bool((row.diff() > 0).all())
    ratio = (fld[0, 45, 60:] - 60.0) / (torch.arange(60, dtype=torch.float64) + 0.5)  # r_u / r_d
    ru_fold = math.sqrt(1.3 / 0.9)  # d r_d / d r_u = 1.3 − 0.9 r_u² = 0
    assert float(ratio[-1]) == pytest.approx(1.0 / (1.3 - 0.3 * ru_fold**2), rel=1e-3)
    with pytest.raises(InvalidParameter, match="not invertible"):
        optics.distortion_field((90, 120), "poly3", (1.5,))


def _centroid(img: torch.Tensor) -> tuple[float, float]:
    h, w = img.shape
    yy, xx = torch.meshgrid(torch.arange(h) + 0.5, torch.arange(w) + 0.5, indexing="ij")
    m = img.double()
    return float((m * xx).sum() / m.sum()), float((m * yy).sum() / m.sum())


def _blob(h: int, w: int, cx: float, cy: float, sigma: float = 1.5) -> torch.Tensor:
    yy, xx = torch.meshgrid(torch.arange(h) + 0.5, torch.arange(w) + 0.5, indexing="ij")
    return torch.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * sigma**2)).float()


def test_distort_moves_a_point_to_the_model_radius(device):
    h, w = 200, 240
    unit = min(h, w) / 2
    ru = 0.8
    cx, cy = w / 2 + ru * unit * math.cos(0.5), h / 2 + ru * unit * math.sin(0.5)
    x = _blob(h, w, cx, cy)[None].to(device)
    k1 = 0.08
    y = optics.distort(x, model="poly3", params=(k1,))
    px, py = _centroid(y[0].cpu())
    rd = math.hypot(px - w / 2, py - h / 2) / unit
    assert rd == pytest.approx(ru * (1 - k1 + k1 * ru * ru), abs=3e-3)
    assert optics.distortion_radius(ru, model="poly3", params=(k1,)) == pytest.approx(ru * (1 - k1 + k1 * ru * ru))
    # near the corner (r_u = 1.3) under poly5, through the interpolated warp field
    ru2 = 1.3
    cx2, cy2 = w / 2 - ru2 * unit * math.cos(0.6), h / 2 - ru2 * unit * math.sin(0.6)
    y2 = optics.distort(_blob(h, w, cx2, cy2)[None].to(device), model="poly5", params=(0.05, -0.02))
    px2, py2 = _centroid(y2[0].cpu())
    rd2 = ru2 * (1 + 0.05 * ru2**2 - 0.02 * ru2**4)
    assert math.hypot(px2 - w / 2, py2 - h / 2) == pytest.approx(rd2 * unit, abs=0.05)
    ident = optics.distort(x, model="poly3", params=(0.0,))
    torch.testing.assert_close(ident, x, atol=1e-5, rtol=0)


def test_lateral_ca_scales_red_and_blue_about_the_centre():
    h, w = 160, 200
    cx, cy = 30.0, 25.0  # near the top-left corner
    x = _blob(h, w, cx, cy)[None].expand(3, h, w).contiguous()
    y = optics.lateral_ca(x, magnification=(1.01, 0.985))
    for plane, m in ((0, 1.01), (1, 1.0), (2, 0.985)):
        px, py = _centroid(y[plane])
        assert px - w / 2 == pytest.approx(m * (cx - w / 2), abs=0.02)
        assert py - h / 2 == pytest.approx(m * (cy - h / 2), abs=0.02)
    torch.testing.assert_close(optics.lateral_ca(x[:1], magnification=(1.01, 0.99)), x[:1])


# --------------------------------------------------------------------------------------- lens
def test_lens_validation_and_from_dict():
    lens = optics.lens_from_dict(
        {
            "f_number": 4,
            "distortion": "poly5",
            "distortion_params": [0.01, 0.0],
            "psf_grid": [2, 3],
            "zernike": {"coma": 0.1},
            "focus_distance_m": "inf",
        }
    )
    assert lens.f_number == 4.0 and lens.distortion_params == (0.01, 0.0) and lens.psf_grid == (2, 3)
    assert math.isinf(lens.focus_distance_m)
    assert lens == lens.replace() and hash(lens) == hash(lens.replace()) and lens != lens.replace(f_number=5.6)
    with pytest.raises(InvalidParameter, match="f_number"):
        Lens(f_number=0.4)
    with pytest.raises(InvalidParameter, match="gaussian_sigma_um"):
        Lens(gaussian_sigma_um=-1.0)
    with pytest.raises(UnknownMethod, match="valid methods: none, poly3, poly5, ptlens"):
        Lens(distortion="fisheye")
    with pytest.raises(InvalidParameter, match="distortion_params must be 1 numbers"):
        Lens(distortion="poly3", distortion_params=(0.1, 0.2))
    with pytest.raises(InvalidParameter, match="unknown lens keys"):
        optics.lens_from_dict({"fnumber": 2.0})
    with pytest.raises(InvalidParameter, match="psf_size_px"):
        Lens(psf_size_px=14)
    with pytest.raises(InvalidParameter, match="zernike"):
        Lens(zernike={"trefoil": 0.1})


def test_bad_inputs_raise_obscura_errors():
    with pytest.raises(InvalidParameter, match="sigma_px"):
        optics.psf_gaussian(-1.0, size=9)
    with pytest.raises(InvalidParameter, match="f_number"):
        optics.psf_pupil(wavelength_nm=550, f_number=0.3, pixel_pitch_um=1.0)
    with pytest.raises(ShapeError, match=r"\(C, H, W\)"):
        optics.convolve_psf(torch.zeros(32, 32), torch.ones(3, 3) / 9)
    with pytest.raises(ShapeError, match="psf_grid"):
        optics.convolve_field_varying(torch.zeros(3, 32, 32), torch.ones(2, 2, 2, 3, 3))
    with pytest.raises(ShapeError, match="k odd"):
        optics.convolve_psf(torch.zeros(3, 32, 32), torch.ones(4, 4) / 16)
    with pytest.raises(UnknownMethod, match="valid methods: none, poly3, poly5, ptlens"):
        optics.distort(torch.zeros(3, 16, 16), model="fisheye")
    with pytest.raises(InvalidParameter, match="poly5 params"):
        optics.distort(torch.zeros(3, 16, 16), model="poly5", params=(0.1,))
    with pytest.raises(ShapeError, match="channel_spectra"):
        optics.apply_lens(torch.zeros(3, 16, 16), lens=Lens(), pixel_pitch_um=1.0, channel_spectra=np.ones((3, 5)))
    with pytest.raises(ShapeError, match="depth map"):
        optics.apply_lens(
            torch.zeros(3, 16, 16),
            lens=Lens(),
            pixel_pitch_um=1.0,
            channel_spectra=_ramp_spectra(),
            depth=torch.ones(8, 8),
        )
    with pytest.raises(ShapeError, match="gain"):
        optics.apply_vignetting(torch.zeros(3, 16, 16), torch.ones(8, 8))


def test_apply_lens_flat_field_gets_exactly_the_vignetting(device):
    h, w = 96, 128
    lens = Lens(
        f_number=2.0,
        focal_length_mm=4.0,
        zernike={"coma": 0.2},
        vignetting_k=(-0.2, 0.0, 0.0),
        psf_grid=(2, 2),
        tca=(1.002, 0.998),
    )
    x = torch.full((3, h, w), 5.0, device=device)
    y = optics.apply_lens(x, lens=lens, pixel_pitch_um=1.0, channel_spectra=_ramp_spectra())
    gain = optics.lens_vignetting(lens, size=(h, w), pixel_pitch_um=1.0)
    expect = optics.vignetting_cos4((h, w), focal_length_px=4000.0) * optics.vignetting_poly((h, w), k1=-0.2)
    torch.testing.assert_close(gain, expect, atol=1e-6, rtol=0)
    torch.testing.assert_close(y.cpu(), 5.0 * expect.expand(3, h, w), atol=1e-4, rtol=0)
    mono = optics.apply_lens(x[:1], lens=lens, pixel_pitch_um=1.0, channel_spectra=_ramp_spectra()[1:2])
    assert mono.shape == (1, h, w)


def test_apply_lens_depth_map_blurs_out_of_focus_regions():
    h, w = 64, 96
    lens = Lens(
        f_number=2.0, focal_length_mm=25.0, focus_distance_m=2.0, vignetting_cos4=False, psf_grid=(1, 1), psf_size_px=21
    )
    g = torch.Generator().manual_seed(3)
    x = torch.rand(1, h, w, generator=g)
    spectra = _ramp_spectra()[1:2]
    depth = torch.full((h, w), 2.0)
    depth[:, w // 2 :] = 1.0  # right half near: defocused
    y = optics.apply_lens(x, lens=lens, pixel_pitch_um=4.0, channel_spectra=spectra, depth=depth)
    sharp = optics.apply_lens(x, lens=lens, pixel_pitch_um=4.0, channel_spectra=spectra, depth=2.0)
    near = optics.apply_lens(x, lens=lens, pixel_pitch_um=4.0, channel_spectra=spectra, depth=1.0)
    torch.testing.assert_close(y[:, :, 8:30], sharp[:, :, 8:30], atol=1e-5, rtol=0)
    torch.testing.assert_close(y[:, :, 60:-8], near[:, :, 60:-8], atol=1e-5, rtol=0)
    assert float(near.std()) < 0.8 * float(sharp.std())
    torch.testing.assert_close(
        optics.apply_lens(x, lens=lens, pixel_pitch_um=4.0, channel_spectra=spectra, depth=torch.full((h, w), 2.0)),
        sharp,
        atol=1e-5,
        rtol=0,
    )


# ------------------------------------------------------------------------------- slanted edge
def _point_sampled_edge(h: int, w: int, angle_deg: float) -> torch.Tensor:
    """An ideal near-vertical edge sampled at the pixel centres (the scene as the optics take it)."""
    t = math.radians(angle_deg)
    yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij")
    d = (xx - (w - 1) / 2) * math.cos(t) - (yy - (h - 1) / 2) * math.sin(t)
    return (0.1 + 0.8 * (d > 0)).float()


def _analytic_mtf50(sigma: float) -> float:
    from scipy.optimize import brentq

    return brentq(lambda f: math.exp(-2 * math.pi**2 * sigma**2 * f * f) * abs(np.sinc(f)) - 0.5, 1e-4, 0.5)


@pytest.mark.parametrize("sigma", [1.0, 1.5])
def test_slanted_edge_mtf50_through_gaussian_psf_matches_analytic(sigma):
    from obscura.lab.charts.edge import render_edge
    from obscura.lab.measure.sfr import esfr

    want = _analytic_mtf50(sigma)
    h, w = 100, 100
    # the point-sampled scene through the PSF with the pixel aperture
    x = _point_sampled_edge(h, w, 5.0)[None]
    y = optics.convolve_psf(x, optics.psf_gaussian(sigma, size=21, fill_factor=1.0))
    got = esfr(y[0, 10:-10, 10:-10]).mtf50
    assert got == pytest.approx(want, rel=0.02)
    # a chart already integrated over each pixel takes the PSF without the aperture (fill_factor = 0)
    box = torch.from_numpy(0.1 + 0.8 * render_edge((h, w), angle_deg=5.0)).float()[None]
    y2 = optics.convolve_psf(box, optics.psf_gaussian(sigma, size=21, fill_factor=0.0))
    got2 = esfr(y2[0, 10:-10, 10:-10]).mtf50
    assert got2 == pytest.approx(want, rel=0.02)
