"""Tests of obscura.sim.sensor: sensitivities, electron rates, CFA sampling, noise, ADC and clipping."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import scipy.constants
import torch

from obscura.core.cfa import cfa_masks
from obscura.core.errors import InvalidParameter, ShapeError, UnknownMethod
from obscura.core.types import BAYER_PATTERNS, QUAD_BAYER_PATTERNS
from obscura.sim import sensor as sen
from obscura.sim import spectral
from obscura.sim.scene import Scene, flat_scene

L = spectral.WAVELENGTHS.size


def _gen(device: str, seed: int) -> torch.Generator:
    g = torch.Generator(device=device)
    g.manual_seed(seed)
    return g


# --- sensitivities ------------------------------------------------------------------------------
def test_canon_curves_are_the_shared_measured_data(data_dir: Path) -> None:
    import colour

    ours = (
        Path(colour.__file__).parent / "characterisation/datasets/rawtoaces/CANON_EOS_5DMark_II_RGB_Sensitivities.csv"
    )
    shared = data_dir / "charts/colour_reference/CANON_EOS_5DMark_II_RGB_Sensitivities.csv"
    assert ours.read_bytes() == shared.read_bytes()
    # the 10 nm grid points are measured samples (5 nm data): our curves are the CSV's values / peak
    raw = np.genfromtxt(shared, delimiter=",", skip_header=1)
    rows = np.searchsorted(raw[:, 0], spectral.WAVELENGTHS)
    expected = raw[rows, 1:].T / raw[:, 1:].max()
    np.testing.assert_allclose(sen.sensitivities("canon_5d2"), expected, rtol=1e-9, atol=1e-12)


def test_sensitivity_shapes_peaks_and_scale() -> None:
    wl = spectral.WAVELENGTHS
    canon = sen.sensitivities("canon_5d2")
    phone = sen.sensitivities("phone")
    mono = sen.sensitivities("mono")
    assert canon.shape == phone.shape == (3, L) and mono.shape == (1, L)
    assert canon.max() == pytest.approx(1.0) and phone.max() == pytest.approx(1.0)
    np.testing.assert_allclose(wl[canon.argmax(1)], [600, 530, 460])
    # a generic phone: R/G/B peaks near 600/530/460 nm, all ≥ 0, overlapping neighbours, IR cut above 700 nm
    np.testing.assert_allclose(wl[phone.argmax(1)], [605, 530, 460], atol=10)
    assert phone.min() >= 0 and mono.min() >= 0
    at = {int(w): i for i, w in enumerate(wl)}
    assert phone[1, at[500]] > 0.3 * phone[1].max() and phone[2, at[500]] > 0.1 * phone[2].max()  # G–B overlap
    assert phone[0, at[580]] > 0.2 * phone[0].max() and phone[1, at[580]] > 0.2 * phone[1].max()  # R–G overlap
    assert phone[:, at[720]].max() < 0.02
    assert np.all(mono[0, at[450] : at[650]] > 0.6)  # panchromatic
    # a Sensor scales the curves to its peak QE
    s = sen.Sensor(sensitivities="canon_5d2", quantum_efficiency=0.42)
    np.testing.assert_allclose(sen.sensitivities(s), 0.42 * canon)
    np.testing.assert_allclose(sen.sensitivities("canon_5d2", quantum_efficiency=0.5), 0.5 * canon)


def test_luther_sensor_curves_are_matrix_times_cmfs() -> None:
    m = ((0.6, 0.4, 0.0), (0.1, 0.9, 0.0), (0.0, 0.1, 0.9))
    s = sen.Sensor(matrix=tuple(v for row in m for v in row), quantum_efficiency=0.8)
    want = np.array(m) @ spectral.cmfs() / spectral.WAVELENGTHS  # QE per photon of an energy-Luther camera
    np.testing.assert_allclose(sen.sensitivities(s), 0.8 * want / want.max(), rtol=1e-12)
    with pytest.raises(InvalidParameter, match="negative"):
        sen.sensitivities(sen.Sensor(matrix=(1.0, -1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)))


def test_sensitivities_from_csv(tmp_path: Path) -> None:
    wl = np.arange(360.0, 801.0, 5.0)
    g = np.exp(-0.5 * ((wl - 540) / 40) ** 2)
    p = tmp_path / "cam.csv"
    np.savetxt(p, np.column_stack([wl, 0.5 * g, g, 0.25 * g]), delimiter=",", header="wl,r,g,b", comments="")
    c = sen.sensitivities(str(p))
    expected = np.exp(-0.5 * ((spectral.WAVELENGTHS - 540) / 40) ** 2)
    np.testing.assert_allclose(c, np.stack([0.5 * expected, expected, 0.25 * expected]), atol=1e-6)
    s = sen.Sensor(sensitivities=str(p), quantum_efficiency=0.5)
    assert sen.sensitivities(s).max() == pytest.approx(0.5)


# --- electron rate --------------------------------------------------------------------------------
def test_electron_rate_matches_photometry() -> None:
    """A spike at 560 nm: luminance → radiance (K_m = 683.002 lm/W), image-plane irradiance π·τ·L/(4N²),
    photons E·A·λ/(h·c), times the QE at 560 nm (scipy's CODATA constants)."""
    i = int(np.flatnonzero(spectral.WAVELENGTHS == 560)[0])
    basis = np.zeros((1, L))
    basis[0, i] = 1.0
    lum = 250.0
    scene = Scene(basis=torch.tensor(basis, dtype=torch.float32), weights=torch.ones(1, 4, 6), luminance=lum)
    sensor = sen.Sensor(sensitivities="canon_5d2", pixel_pitch_um=2.0, quantum_efficiency=0.5)
    rate = sen.electron_rate(scene, sensor=sensor, f_number=2.8, transmission=0.8)
    assert rate.shape == (3, 4, 6) and rate.dtype == torch.float32
    cm = spectral.cmfs()
    lv = lum * cm[1, i] / cm[1].sum()  # cd/m² of the spike (its luminance factor times the scale)
    radiance_w = lv / (683.002 * cm[1, i])  # W/(sr·m²) in the 10 nm bin
    irradiance = math.pi * 0.8 * radiance_w / (4 * 2.8**2)
    photons = irradiance * (2e-6) ** 2 * 560e-9 / (scipy.constants.h * scipy.constants.c)
    want = sen.sensitivities(sensor)[:, i] * photons
    np.testing.assert_allclose(rate[:, 0, 0].double().numpy(), want, rtol=1e-5)
    assert torch.all(rate == rate[:, :1, :1])
    # scaling laws: 1/N², pitch², transmission
    r2 = sen.electron_rate(scene, sensor=sensor.replace(pixel_pitch_um=1.0), f_number=5.6, transmission=0.4)
    torch.testing.assert_close(r2, rate / 32, rtol=1e-5, atol=0)


def test_electron_rate_plausible_magnitude() -> None:
    """A 100 cd/m² white at f/2 on a 1.4 µm phone pixel gets tens of thousands of e⁻/s (17.7 lux at the sensor)."""
    rate = sen.electron_rate(flat_scene((2, 2), luminance=100.0), sensor=sen.Sensor(), f_number=2.0)
    assert 1e4 < float(rate[1].mean()) < 1e5


# --- CFA sampling ----------------------------------------------------------------------------------
@pytest.mark.parametrize("cfa", BAYER_PATTERNS + QUAD_BAYER_PATTERNS)
def test_sample_cfa_puts_each_plane_at_its_sites(cfa: str, device: str) -> None:
    h, w = 8, 12
    x = torch.stack([torch.full((h, w), 10.0 ** (c + 1), device=device) for c in range(3)])
    x = x + torch.arange(h * w, dtype=torch.float32, device=device).reshape(h, w) * 1e-3
    m = sen.sample_cfa(x, cfa)
    masks = cfa_masks(cfa, h, w, device=device)
    torch.testing.assert_close(m, (x * masks).sum(0), rtol=0, atol=0)
    # explicit sites from the pattern letters
    n = 2 if len(cfa) == 4 else 4
    for k, letter in enumerate(cfa):
        r, c = divmod(k, n)
        assert float(m[r, c]) == pytest.approx(float(x["RGB".index(letter), r, c]))
    assert x.shape == (3, h, w)  # input untouched


def test_sample_cfa_monochrome_and_bad_shapes() -> None:
    x = torch.rand(1, 6, 6)
    torch.testing.assert_close(sen.sample_cfa(x, ""), x[0])
    with pytest.raises(ShapeError, match=r"\(1, H, W\)"):
        sen.sample_cfa(torch.rand(3, 6, 6), "")
    with pytest.raises(ShapeError, match="multiples of 4"):
        sen.sample_cfa(torch.rand(3, 6, 6), QUAD_BAYER_PATTERNS[0])
    with pytest.raises(ShapeError, match=r"\(3, H, W\)"):
        sen.sample_cfa(torch.rand(6, 6), "RGGB")
    with pytest.raises(ShapeError):
        sen.sample_cfa(torch.rand(3, 6, 6), "RGBG")


# --- ADC, gain, clipping ----------------------------------------------------------------------------
def test_gain_black_white_and_clipping(device: str) -> None:
    s = sen.Sensor(bits=10, black_level_dn=64, full_well_e=4000, base_iso=100)
    assert s.white_level == 1023
    g = sen.conversion_gain(s, iso=100)
    assert g == pytest.approx((1023 - 64) / 4000)
    assert sen.conversion_gain(s, iso=400) == pytest.approx(4 * g)
    rate = torch.tensor([[0.0, 1000.0], [3999.0, 1e6]], device=device)
    e = sen.expose(rate, sensor=s, exposure_time=1.0, iso=100, generator=None, noise=False)
    assert e.black_level == 64 and e.white_level == 1023 and e.gain_dn_per_e == pytest.approx(g)
    want = torch.tensor([[64.0, 64 + 1000 * g], [64 + 3999 * g, 1023.0]], device=device)
    torch.testing.assert_close(e.clean, want)
    torch.testing.assert_close(e.electrons, torch.tensor([[0.0, 1000.0], [3999.0, 4000.0]], device=device))
    assert torch.equal(e.raw, torch.round(e.clean))
    # ISO 400: the ADC saturates at a quarter of the well
    e4 = sen.expose(rate, sensor=s, exposure_time=1.0, iso=400, noise=False)
    assert float(e4.clean[1, 0]) == 1023.0 and float(e4.raw[0, 1]) == round(64 + 4000 * g)
    # with noise: integer codes inside [0, white]; a full well reads white less its read noise (≈ 0.6 DN)
    en = sen.expose(rate, sensor=s, exposure_time=1.0, iso=100, generator=_gen(device, 1))
    assert torch.equal(en.raw, torch.round(en.raw)) and float(en.raw.min()) >= 0 and float(en.raw.max()) <= 1023
    assert 1023 - 5 <= float(en.raw[1, 1]) <= 1023


def test_full_well_clips_electrons_before_the_adc() -> None:
    # gain below the ADC range: the well fills first and the raw stays below white
    s = sen.Sensor(
        bits=16,
        black_level_dn=0,
        full_well_e=1000,
        base_iso=100,
        read_noise_e=0,
        adc_noise_dn=0,
        row_noise_e=0,
        column_noise_e=0,
        dark_current_e_s=0,
        prnu=0,
        dsnu_e=0,
        hot_pixel_fraction=0,
    )
    rate = torch.full((4, 4), 1e5)
    e = sen.expose(rate, sensor=s, exposure_time=1.0, iso=100, generator=_gen("cpu", 0))
    assert torch.all(e.raw == 65535)  # full well maps to white at base ISO
    s2 = s.replace(full_well_e=100_000)  # gain 0.655 DN/e⁻: a 1e5 e⁻ signal ends exactly at white
    e2 = sen.expose(torch.full((4, 4), 2e5), sensor=s2, exposure_time=1.0, iso=100, generator=_gen("cpu", 0))
    assert torch.all(e2.electrons == 100_000) and torch.all(e2.raw == 65535)


# --- noise -----------------------------------------------------------------------------------------
def _plane_stats(raw: torch.Tensor, black: float, white: float) -> list[tuple[float, float]]:
    x = (raw.double() - black) / (white - black)
    out = []
    for r in range(2):
        for c in range(2):
            p = x[r::2, c::2]
            out.append((float(p.mean()), float(p.var())))
    return out


@pytest.mark.parametrize("prnu", [0.0, 0.02])
def test_variance_versus_mean_matches_noise_model(prnu: float, device: str) -> None:
    """Six flat fields from 1 % to 80 % of white, spatial variance of one 512² frame per CFA plane.

    The spatial variance of a single frame holds the temporal noise (shot, read, row, ADC, dark shot,
    rounding) and the fixed patterns (column, DSNU, PRNU) that the noise model counts as variance.
    Fit ``var = a·x + b`` (+ ``c·x²`` with PRNU) and compare with noise_model (within 5 %).
    """
    s = sen.Sensor(
        prnu=prnu, hot_pixel_fraction=0.0, dark_current_e_s=400.0, row_noise_e=0.6, column_noise_e=0.5, dsnu_e=0.8
    )
    iso, t = 800.0, 0.01
    g = sen.conversion_gain(s, iso=iso)
    (a, b), *_ = sen.noise_model(s, iso=iso, exposure_time=t)
    assert len(sen.noise_model(s, iso=iso, exposure_time=t)) == 3
    assert a == pytest.approx(g / (s.white_level - s.black_level_dn))
    xs, vs = [], []
    for k, level in enumerate([0.01, 0.05, 0.15, 0.3, 0.55, 0.8]):
        e_target = level * (s.white_level - s.black_level_dn) / g
        rate = torch.full((512, 512), e_target / t, device=device)
        ex = sen.expose(rate, sensor=s, exposure_time=t, iso=iso, generator=_gen(device, 100 + k))
        for m, v in _plane_stats(ex.raw, ex.black_level, ex.white_level):
            xs.append(m)
            vs.append(v)
    xs, vs = np.array(xs), np.array(vs)
    design = np.column_stack([xs, np.ones_like(xs)] + ([xs**2] if prnu else []))
    coef = np.linalg.lstsq(design / vs[:, None], np.ones_like(vs), rcond=None)[0]  # relative-error weights
    assert coef[0] == pytest.approx(a, rel=0.05)
    assert coef[1] == pytest.approx(b, rel=0.05)
    if prnu:
        assert coef[2] == pytest.approx(prnu**2, rel=0.1)
        np.testing.assert_allclose(sen.prnu_variance(s, 0.5), prnu**2 / 4)
    # the model predicts each measured variance within 4 % (65k-pixel planes, plus the sampled row/column patterns)
    pred = a * xs + b + sen.prnu_variance(s, xs)
    np.testing.assert_allclose(vs, pred, rtol=0.04)


def test_shot_noise_is_poisson(device: str) -> None:
    for mean in (3.0, 250.0, 40_000.0):
        m = torch.full((400_000,), mean, device=device)
        x = sen.shot_noise(m, generator=_gen(device, 7)).double()
        n = x.numel()
        assert torch.equal(x, torch.round(x))
        assert float(x.mean()) == pytest.approx(mean, abs=5 * math.sqrt(mean / n))
        # var of the sample variance of a Poisson ≈ (2λ² + λ)/n
        assert float(x.var()) == pytest.approx(mean, abs=5 * math.sqrt((2 * mean**2 + mean) / n))
    assert torch.all(sen.shot_noise(torch.zeros(10, device=device)) == 0)


def test_shot_noise_large_tensors_chunked_and_deterministic() -> None:
    """Over 2²⁰ elements the CPU sampler works in fixed chunks on threads: still Poisson, still seeded."""
    mean = 80.0
    m = torch.full((1200, 1000), mean)
    a = sen.shot_noise(m, generator=_gen("cpu", 5))
    b = sen.shot_noise(m, generator=_gen("cpu", 5))
    c = sen.shot_noise(m, generator=_gen("cpu", 6))
    assert torch.equal(a, b) and not torch.equal(a, c) and a.shape == m.shape
    flat = a.reshape(-1)
    assert not torch.equal(flat[:1000], flat[1 << 20 : (1 << 20) + 1000])  # chunks have their own streams
    n = a.numel()
    assert float(a.double().mean()) == pytest.approx(mean, abs=5 * math.sqrt(mean / n))
    assert float(a.double().var()) == pytest.approx(mean, abs=5 * math.sqrt((2 * mean**2 + mean) / n))


def test_quantize(device: str) -> None:
    q = sen.quantize(torch.tensor([-3.0, 0.4, 0.6, 2.5, 1e6], device=device), white_level=1023)
    assert q.tolist() == [0.0, 0.0, 1.0, 2.0, 1023.0]


def test_shot_noise_only_through_expose() -> None:
    """Only shot noise and rounding, gain 1 DN/e⁻: the DN variance equals the mean electrons + 1/12."""
    s = sen.Sensor(
        bits=16,
        black_level_dn=1000,
        full_well_e=64535,
        read_noise_e=0,
        adc_noise_dn=0,
        row_noise_e=0,
        column_noise_e=0,
        dark_current_e_s=0,
        prnu=0,
        dsnu_e=0,
        hot_pixel_fraction=0,
    )
    assert sen.conversion_gain(s, iso=s.base_iso) == pytest.approx(1.0)
    ex = sen.expose(
        torch.full((400, 400), 900.0), sensor=s, exposure_time=0.5, iso=s.base_iso, generator=_gen("cpu", 3)
    )
    d = ex.raw.double() - 1000
    n = d.numel()
    assert float(d.mean()) == pytest.approx(450, abs=5 * math.sqrt(450 / n))
    assert float(d.var()) == pytest.approx(450 + 1 / 12, abs=5 * math.sqrt(2 * 450**2 / n))


def test_hot_pixels_dark_frame_and_fixed_positions(device: str) -> None:
    s = sen.Sensor(hot_pixel_fraction=0.01, hot_pixel_rate_e_s=20_000.0, dark_current_e_s=10.0, prnu=0.0)
    rate = torch.zeros((256, 256), device=device)
    f1 = sen.expose(rate, sensor=s, exposure_time=0.1, iso=100, generator=_gen(device, 1)).raw
    f2 = sen.expose(rate, sensor=s, exposure_time=0.1, iso=100, generator=_gen(device, 2)).raw
    hot = sen.fixed_pattern(s, 256, 256, device=device).hot
    assert hot is not None and abs(int(hot.sum()) - 0.01 * 256 * 256) < 5 * math.sqrt(0.01 * 256 * 256)
    g = sen.conversion_gain(s, iso=100)
    for f in (f1, f2):
        # hot sites stand 2000 e⁻ above black; every other pixel sits near black (dark mean clamped)
        np.testing.assert_allclose(float(f[hot].mean()), s.black_level_dn + 2000 * g, rtol=0.02)
        assert abs(float(f[~hot].mean()) - s.black_level_dn) < 0.5
    assert torch.equal(f1 > s.black_level_dn + 1000 * g, f2 > s.black_level_dn + 1000 * g)
    assert torch.equal(f1 > s.black_level_dn + 1000 * g, hot)


def test_fixed_patterns_shared_across_frames_temporal_noise_not(device: str) -> None:
    s = sen.Sensor(column_noise_e=3.0, dsnu_e=2.0, read_noise_e=1.0, row_noise_e=0.0, prnu=0.01)
    rate = torch.full((256, 256), 100.0, device=device)
    kw = {"sensor": s, "exposure_time": 0.1, "iso": 200}
    a = sen.expose(rate, generator=_gen(device, 11), **kw).raw.double()
    b = sen.expose(rate, generator=_gen(device, 12), **kw).raw.double()
    a2 = sen.expose(rate, generator=_gen(device, 11), **kw).raw
    assert torch.equal(a2.double(), a)  # same seed, bit-identical
    assert not torch.equal(a, b)  # different seeds differ
    g = sen.conversion_gain(s, iso=200)
    col_a, col_b = a.mean(0), b.mean(0)
    # the column pattern (σ 3 e⁻) is the same in both frames; their difference has none
    assert float(torch.corrcoef(torch.stack([col_a, col_b]))[0, 1]) > 0.9
    assert float((col_a - col_b).std()) < 0.3 * float(col_a.std())
    assert float(col_a.std()) == pytest.approx(3.0 * g, rel=0.3)
    # a different fixed-pattern seed gives a different pattern
    c = sen.expose(rate, generator=_gen(device, 11), **{**kw, "sensor": s.replace(fixed_pattern_seed=5)}).raw.double()
    assert float(torch.corrcoef(torch.stack([col_a, c.mean(0)]))[0, 1]) < 0.5


def test_row_noise_is_temporal(device: str) -> None:
    s = sen.Sensor(row_noise_e=4.0, read_noise_e=0.5, column_noise_e=0, dsnu_e=0, prnu=0, hot_pixel_fraction=0)
    rate = torch.full((256, 256), 1000.0, device=device)
    kw = {"sensor": s, "exposure_time": 0.1, "iso": 400}
    a = sen.expose(rate, generator=_gen(device, 1), **kw).raw.double().mean(1)
    b = sen.expose(rate, generator=_gen(device, 2), **kw).raw.double().mean(1)
    g = sen.conversion_gain(s, iso=400)
    assert float(a.std()) == pytest.approx(4.0 * g, rel=0.2)
    assert abs(float(torch.corrcoef(torch.stack([a, b]))[0, 1])) < 0.3


def test_noise_false_is_round_clean_and_inputs_untouched(device: str) -> None:
    rate = torch.rand((64, 64), generator=_gen("cpu", 0)).to(device) * 1e5
    before = rate.clone()
    s = sen.Sensor()
    e = sen.expose(rate, sensor=s, exposure_time=0.02, iso=50, generator=_gen(device, 0), noise=False)
    assert torch.equal(e.raw, torch.round(e.clean))
    assert torch.equal(rate, before)
    e2 = sen.expose(rate, sensor=s, exposure_time=0.02, iso=50, generator=_gen(device, 0))
    assert torch.equal(rate, before) and e2.raw.device.type == device


# --- saturation speed -----------------------------------------------------------------------------
def test_saturation_iso_against_colour_science() -> None:
    """ISO 12232 S_sat = 78 / H_sat, with H_sat computed at 1 nm from colour-science's D55 and CMFS for a
    Luther sensor whose three channels are ȳ (QE peak 1)."""
    import colour

    s = sen.Sensor(matrix=(0.0, 1.0, 0.0) * 3, quantum_efficiency=1.0, pixel_pitch_um=2.0, full_well_e=10_000)
    shape = colour.SpectralShape(380, 730, 1)
    d55 = colour.SDS_ILLUMINANTS["D55"].copy().align(shape).values
    ybar = colour.MSDS_CMFS["CIE 1931 2 Degree Standard Observer"].copy().align(shape).values[:, 1]
    wl = np.arange(380, 731) * 1e-9
    e_lux = d55 / (683.002 * (ybar * d55).sum())  # W/m²/nm of 1 lux
    qe = ybar / np.arange(380, 731)  # the Luther sensor's QE: energy response ȳ, per photon ȳ/λ
    qe = qe / (spectral.cmfs()[1] / spectral.WAVELENGTHS).max()  # normalised on our 10 nm grid as sensitivities()
    e_per_lux_s = (qe * e_lux * (2e-6) ** 2 * wl / (scipy.constants.h * scipy.constants.c)).sum()
    assert sen.saturation_iso(s) == pytest.approx(78.0 * e_per_lux_s / 10_000, rel=0.01)
    # scaling: 4× the pixel area → 4× the speed; 2× the full well → half
    assert sen.saturation_iso(s.replace(pixel_pitch_um=4.0)) == pytest.approx(4 * sen.saturation_iso(s), rel=1e-9)
    assert sen.saturation_iso(s.replace(full_well_e=20_000)) == pytest.approx(sen.saturation_iso(s) / 2, rel=1e-9)


# --- profiles and bad input -------------------------------------------------------------------------
def test_sensor_from_dict() -> None:
    s = sen.sensor_from_dict(
        {"name": "x", "cfa": "GRBG", "bits": 14, "matrix": [[0.5, 0.5, 0], [0, 1, 0], [0, 0.2, 0.8]]}
    )
    assert s.cfa == "GRBG" and s.bits == 14 and s.matrix == (0.5, 0.5, 0.0, 0.0, 1.0, 0.0, 0.0, 0.2, 0.8)
    assert sen.sensor_from_dict({}) == sen.Sensor()
    with pytest.raises(InvalidParameter, match=r"unknown \[sensor\] keys.*full_well_e"):
        sen.sensor_from_dict({"full_well": 3})
    mono = sen.sensor_from_dict({"cfa": "", "sensitivities": "mono"})
    assert mono.channels == 1 and sen.sensitivities(mono).shape == (1, L)
    assert len(sen.noise_model(mono, iso=100, exposure_time=0.01)) == 1


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"bits": 7}, "bits"),
        ({"bits": 17}, "bits"),
        ({"bits": 12.5}, "integer"),
        ({"black_level_dn": 5000}, "black_level_dn"),
        ({"full_well_e": 0}, "full_well_e"),
        ({"pixel_pitch_um": -1}, "pixel_pitch_um"),
        ({"quantum_efficiency": 1.5}, "quantum_efficiency"),
        ({"read_noise_e": -1}, "read_noise_e"),
        ({"prnu": float("nan")}, "prnu"),
        ({"cfa": "XYZW"}, "cfa"),
        ({"cfa": "", "sensitivities": "canon_5d2"}, "monochrome"),
        ({"sensitivities": "mono"}, "without CFA"),
        ({"width": 4001}, "multiples"),
        ({"matrix": (1, 2, 3)}, "9 finite"),
    ],
)
def test_bad_sensor_settings(kwargs: dict, match: str) -> None:
    with pytest.raises((InvalidParameter, ShapeError), match=match):
        sen.Sensor(**kwargs)


def test_bad_inputs() -> None:
    s = sen.Sensor()
    rate = torch.full((4, 4), 100.0)
    with pytest.raises(UnknownMethod, match="canon_5d2, mono, phone"):
        sen.sensitivities("nikon")
    with pytest.raises(InvalidParameter, match="iso"):
        sen.expose(rate, sensor=s, exposure_time=0.01, iso=0)
    with pytest.raises(InvalidParameter, match="base ISO 50"):
        sen.expose(rate, sensor=s, exposure_time=0.01, iso=25)
    with pytest.raises(InvalidParameter, match="exposure_time"):
        sen.expose(rate, sensor=s, exposure_time=-0.01, iso=100)
    with pytest.raises(InvalidParameter, match="exposure_time"):
        sen.noise_model(s, iso=100, exposure_time=0)
    with pytest.raises(ShapeError, match=r"\(H, W\) mosaic.*\(3, 4, 4\)"):
        sen.expose(torch.ones(3, 4, 4), sensor=s, exposure_time=0.01, iso=100)
    with pytest.raises(InvalidParameter, match=">= 0"):
        sen.expose(-rate, sensor=s, exposure_time=0.01, iso=100)
    with pytest.raises(InvalidParameter, match="finite"):
        sen.expose(rate * float("nan"), sensor=s, exposure_time=0.01, iso=100)
    with pytest.raises(ShapeError, match="floating point"):
        sen.expose(torch.ones(4, 4, dtype=torch.int32), sensor=s, exposure_time=0.01, iso=100)
    with pytest.raises(ShapeError, match=r"torch\.Tensor"):
        sen.expose(np.ones((4, 4)), sensor=s, exposure_time=0.01, iso=100)
    scene = flat_scene((4, 4))
    with pytest.raises(InvalidParameter, match="f_number"):
        sen.electron_rate(scene, sensor=s, f_number=0.4)
    with pytest.raises(InvalidParameter, match="transmission"):
        sen.electron_rate(scene, sensor=s, f_number=2, transmission=0)
    with pytest.raises(ShapeError, match="Scene"):
        sen.electron_rate(torch.ones(3, 4, 4), sensor=s, f_number=2)


def test_csv_with_wrong_curve_count(tmp_path: Path) -> None:
    p = tmp_path / "one.csv"
    wl = spectral.WAVELENGTHS
    np.savetxt(p, np.column_stack([wl, np.ones_like(wl)]), delimiter=",", header="wl,y", comments="")
    with pytest.raises(InvalidParameter, match="needs 3 sensitivity curves"):
        sen.sensitivities(sen.Sensor(sensitivities=str(p)))
    assert sen.sensitivities(sen.Sensor(cfa="", sensitivities=str(p))).shape == (1, L)
