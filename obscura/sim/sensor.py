"""The sensor of the virtual camera: spectral sensitivities, CFA sampling, noise, ADC and colour calibration.

Flow (each step a pure function; :mod:`obscura.sim.camera` composes them)::

    electron_rate(scene)   (C, H, W) e⁻/s per pixel, one plane per CFA colour
      → (optics)           obscura.sim.optics.apply_lens
      → sample_cfa         (H, W) the mosaic of rates
      → expose             Exposure: raw DN (noisy, quantized), clean DN, electrons

Noise model (the classic photon-transfer model, EMVA 1288 release 4.0; Healey & Kondepudy 1994):

* photo-electrons: Poisson with mean ``rate·t·(1 + PRNU)``; dark electrons: Poisson with mean
  ``dark_current·t`` (plus ``hot_pixel_rate·t`` at fixed hot sites); the sum is clipped at the full well.
  The mean dark signal is removed, as the optical-black clamp of a real sensor does, so the black level
  stays at ``black_level_dn`` and only the dark shot noise (and the hot pixels) remain.
* electron-domain offsets: DSNU (fixed per pixel), column noise (fixed per column), row noise
  (temporal, one value per row and frame), read noise (temporal, per pixel): Gaussian, in e⁻.
* analog gain ``g`` DN/e⁻ (ISO), ADC noise (Gaussian, DN), black level, rounding, clipping to
  ``[0, 2**bits − 1]``.

At base ISO the conversion gain maps the full well onto the ADC range above black; at ISO ``s`` the
gain is ``× s / base_iso`` (the ADC then saturates before the well). Fixed patterns (PRNU, DSNU,
column noise, hot pixels) depend only on ``Sensor.fixed_pattern_seed`` and the frame size, so they are
the same in every frame of a burst; temporal noise comes from the ``torch.Generator`` passed to
:func:`expose`.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from obscura.core.cfa import cfa_period, mosaic_rgb
from obscura.core.colour import WHITE_D50, XYZ_to_xy, bradford_matrix, xy_to_XYZ
from obscura.core.errors import InvalidParameter, ShapeError
from obscura.core.registry import Registry
from obscura.core.types import validate_cfa
from obscura.core.validate import check_number
from obscura.isp._filters import parallel_map, parallel_threads
from obscura.sim import spectral

__all__ = [
    "Sensor",
    "sensor_from_dict",
    "SENSITIVITIES",
    "sensitivities",
    "sensitivities_canon_5d2",
    "sensitivities_phone",
    "sensitivities_mono",
    "silicon_qe",
    "ir_cut_filter",
    "electron_rate",
    "sample_cfa",
    "conversion_gain",
    "FixedPattern",
    "fixed_pattern",
    "shot_noise",
    "quantize",
    "Exposure",
    "expose",
    "noise_model",
    "prnu_variance",
    "camera_response",
    "fit_colour_matrix_wpp",
    "dng_colour_tags",
    "as_shot_neutral",
    "saturation_iso",
]

_CANON_CSV = "CANON_EOS_5DMark_II_RGB_Sensitivities.csv"


# --- the sensor ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Sensor:
    """A sensor: geometry, spectral response, electronics and noise (defaults: a generic 12 MP phone sensor,
    1.4 µm pixels, in line with published data for 1/2.55" BSI sensors)."""

    name: str = "generic_phone"
    width: int = 4000
    height: int = 3000
    pixel_pitch_um: float = 1.4
    cfa: str = "RGGB"  # 2×2 Bayer, 16-letter Quad Bayer, or "" (monochrome: no CFA)
    sensitivities: str = "phone"  # "canon_5d2" | "phone" | "mono" | path to a CSV (wavelength, curves...)
    matrix: tuple[float, ...] | None = None  # camera-from-XYZ 3×3 (row-major): a Luther camera instead
    quantum_efficiency: float = 0.65  # peak QE of the most sensitive channel
    full_well_e: float = 6000.0
    base_iso: float = 50.0
    bits: int = 12
    black_level_dn: float = 256.0
    read_noise_e: float = 1.8
    adc_noise_dn: float = 0.3
    row_noise_e: float = 0.3
    column_noise_e: float = 0.15
    dark_current_e_s: float = 5.0
    prnu: float = 0.006  # σ of the per-pixel gain, relative
    dsnu_e: float = 0.3  # σ of the per-pixel dark offset, e⁻
    hot_pixel_fraction: float = 2e-5
    hot_pixel_rate_e_s: float = 2000.0
    fixed_pattern_seed: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.name, str):
            raise InvalidParameter(f"sensor name must be a string; got {self.name!r}")
        for f in ("width", "height", "bits", "fixed_pattern_seed"):
            v = getattr(self, f)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                raise InvalidParameter(f"sensor {f} must be an integer; got {v!r}")
        cfa = validate_cfa(self.cfa) if isinstance(self.cfa, str) else None
        if cfa is None:
            raise InvalidParameter(f"sensor cfa must be a string like 'RGGB' or ''; got {self.cfa!r}")
        n = cfa_period(cfa) if cfa else 1
        if self.width < n or self.height < n or self.width % n or self.height % n:
            raise InvalidParameter(
                f"sensor size must be positive multiples of {n} for CFA {cfa!r}; got {self.width}×{self.height}"
            )
        check_number("bits", self.bits, 8, 16)
        # renders far below the native resolution have big pixels
        check_number("pixel_pitch_um", self.pixel_pitch_um, 0.0, 1000.0, lo_open=True)
        check_number("quantum_efficiency", self.quantum_efficiency, 0.0, 1.0, lo_open=True)
        check_number("full_well_e", self.full_well_e, 0.0, 1e12, lo_open=True)
        check_number("base_iso", self.base_iso, 0.0, 1e7, lo_open=True)
        white = 2**self.bits - 1
        check_number("black_level_dn", self.black_level_dn, 0.0, white - 1)
        for f in ("read_noise_e", "row_noise_e", "column_noise_e", "dsnu_e"):
            check_number(f, getattr(self, f), 0.0, 1e5)
        check_number("adc_noise_dn", self.adc_noise_dn, 0.0, white)
        check_number("dark_current_e_s", self.dark_current_e_s, 0.0, 1e12)
        check_number("hot_pixel_rate_e_s", self.hot_pixel_rate_e_s, 0.0, 1e9)
        check_number("prnu", self.prnu, 0.0, 0.5)
        check_number("hot_pixel_fraction", self.hot_pixel_fraction, 0.0, 1.0)
        if not isinstance(self.sensitivities, (str, Path)):
            raise InvalidParameter(f"sensitivities must be a name or a CSV path; got {self.sensitivities!r}")
        if self.matrix is not None:
            m = np.asarray(self.matrix, dtype=np.float64).reshape(-1) if _is_numeric(self.matrix) else None
            if m is None or m.size != 9 or not np.all(np.isfinite(m)):
                raise InvalidParameter(
                    f"sensor matrix must be 9 finite numbers (3×3 camera-from-XYZ); got {self.matrix}"
                )
            if cfa == "":
                raise InvalidParameter("a monochrome sensor (cfa '') cannot have a 3×3 colour matrix")
            object.__setattr__(self, "matrix", tuple(float(v) for v in m))
        elif str(self.sensitivities) in _COLOUR_SETS and cfa == "":
            raise InvalidParameter(
                f"a monochrome sensor (cfa '') needs one curve (sensitivities 'mono' or a 1-column CSV); "
                f"got {self.sensitivities!r}"
            )
        elif str(self.sensitivities) == "mono" and cfa != "":
            raise InvalidParameter(f"sensitivities 'mono' is for a sensor without CFA (cfa ''); got cfa {cfa!r}")

    @property
    def white_level(self) -> int:
        """The ADC's largest code, ``2**bits − 1``."""
        return 2**self.bits - 1

    @property
    def channels(self) -> int:
        """Colour planes: 3 with a CFA, 1 for a monochrome sensor."""
        return 3 if self.cfa else 1

    def replace(self, **changes: Any) -> Sensor:
        return dataclasses.replace(self, **changes)


def _is_numeric(x: Any) -> bool:
    try:
        np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        return False
    return True


def sensor_from_dict(d: Mapping[str, Any]) -> Sensor:
    """A :class:`Sensor` from the ``[sensor]`` table of a camera profile (TOML); unknown keys are an error.

    ``matrix`` may be nine numbers or three rows of three.
    """
    if not isinstance(d, Mapping):
        raise InvalidParameter(f"the [sensor] table must be a mapping; got {type(d).__name__}")
    fields = {f.name for f in dataclasses.fields(Sensor)}
    unknown = sorted(set(d) - fields)
    if unknown:
        raise InvalidParameter(f"unknown [sensor] keys {unknown}; valid: {', '.join(sorted(fields))}")
    kw = dict(d)
    if kw.get("matrix") is not None:
        if not _is_numeric(kw["matrix"]):
            raise InvalidParameter(f"sensor matrix must be 9 numbers or 3 rows of 3; got {kw['matrix']!r}")
        kw["matrix"] = tuple(float(v) for v in np.asarray(kw["matrix"], dtype=np.float64).reshape(-1))
    if "sensitivities" in kw:
        kw["sensitivities"] = str(kw["sensitivities"])
    return Sensor(**kw)


# --- spectral sensitivities ---------------------------------------------------------------------
SENSITIVITIES = Registry("sensitivities")
_COLOUR_SETS = ("canon_5d2", "phone")


def _wl() -> np.ndarray:
    return spectral.WAVELENGTHS


def silicon_qe(wavelengths: np.ndarray | None = None) -> np.ndarray:
    """Relative QE (peak 1) of a back-side illuminated silicon photodiode: a broad curve peaking near
    560 nm, about 0.6 at 380 nm and 730 nm (shape after published BSI CMOS QE curves, e.g. EMVA 1288
    data sheets; a model, not a measurement)."""
    wl = _wl() if wavelengths is None else np.asarray(wavelengths, dtype=np.float64)
    return np.exp(-0.5 * ((wl - 560.0) / 170.0) ** 2)


def ir_cut_filter(wavelengths: np.ndarray | None = None, *, cutoff_nm: float = 650.0, width_nm: float = 10.0):
    """Transmittance of a hot-mirror IR-cut filter: a logistic edge, 50 % at ``cutoff_nm``."""
    wl = _wl() if wavelengths is None else np.asarray(wavelengths, dtype=np.float64)
    return 1.0 / (1.0 + np.exp((wl - cutoff_nm) / width_nm))


@SENSITIVITIES.register("canon_5d2")
def sensitivities_canon_5d2() -> np.ndarray:
    """Measured Canon EOS 5D Mark II RGB sensitivities (3, L), peak 1 (rawtoaces data, as shipped by
    colour-science in ``colour/characterisation/datasets/rawtoaces``)."""
    import colour

    p = Path(colour.__file__).parent / "characterisation" / "datasets" / "rawtoaces" / _CANON_CSV
    wl, v = spectral.read_spectra_csv(p)
    c = spectral.resample(wl, v)
    return c / c.max()


@SENSITIVITIES.register("phone")
def sensitivities_phone() -> np.ndarray:
    """A generic phone sensor (3, L), peak 1: dye colour filters × hot-mirror IR cut (50 % at 650 nm) ×
    silicon QE. Blue and green filters are Gaussian-like passbands (460 nm, σ 30 nm; 530 nm, σ 38 nm),
    red a long-pass edge at 570 nm; each has a 2 % off-band floor, giving the channel overlaps of real
    pigment filters. Peaks fall near 610 / 530 / 460 nm (a model, not a measured camera)."""
    wl = _wl()
    blue = 0.03 + 0.90 * np.exp(-0.5 * ((wl - 458.0) / 30.0) ** 2)
    green = 0.03 + 0.92 * np.exp(-0.5 * ((wl - 530.0) / 38.0) ** 2)
    red = 0.03 + 0.92 / (1.0 + np.exp(-(wl - 570.0) / 10.0))
    c = np.stack([red, green, blue]) * ir_cut_filter(wl) * silicon_qe(wl)
    return c / c.max()


@SENSITIVITIES.register("mono")
def sensitivities_mono() -> np.ndarray:
    """A panchromatic monochrome sensor (1, L), peak 1: silicon QE × IR cut (50 % at 680 nm), no CFA."""
    c = (silicon_qe() * ir_cut_filter(cutoff_nm=680.0))[None]
    return c / c.max()


def _curves_from_csv(path: Path) -> np.ndarray:
    wl, v = spectral.read_spectra_csv(path)
    c = spectral.resample(wl, v)
    if np.any(c < 0) or c.max() <= 0:
        raise InvalidParameter(f"{path}: sensitivities must be >= 0 with a positive peak")
    return c / c.max()


def sensitivities(sensor: Sensor | str, *, quantum_efficiency: float | None = None) -> np.ndarray:
    """Quantum-efficiency curves (C, L) on :data:`spectral.WAVELENGTHS` (e⁻ per photon).

    ``sensor`` is a :class:`Sensor` (its ``matrix`` if set, else its ``sensitivities``, peak = its
    ``quantum_efficiency``) or a name / CSV path (peak = ``quantum_efficiency``, default 1). With a
    camera-from-XYZ ``matrix`` the curves are ``matrix @ cmfs / λ``: a photon-counting camera whose
    response to spectral *energy* is ``matrix @ cmfs`` (it meets the Luther condition).
    """
    if isinstance(sensor, Sensor):
        qe = sensor.quantum_efficiency if quantum_efficiency is None else quantum_efficiency
        if sensor.matrix is not None:
            # energy response matrix @ cmfs (Luther); QE per photon is that divided by λ
            c = np.asarray(sensor.matrix).reshape(3, 3) @ spectral.cmfs() / spectral.WAVELENGTHS
            if c.min() < -1e-9 * abs(c).max():
                raise InvalidParameter(
                    f"sensor matrix {sensor.matrix} gives negative spectral sensitivities (min {c.min():.3g}); "
                    "a physical Luther camera needs matrix @ cmfs >= 0"
                )
            c = np.clip(c, 0.0, None) / c.max()
        else:
            c = _named_curves(sensor.sensitivities)
        want = sensor.channels
        if c.shape[0] != want:
            raise InvalidParameter(
                f"sensor {sensor.name!r} (cfa {sensor.cfa!r}) needs {want} sensitivity curves; "
                f"{sensor.sensitivities!r} has {c.shape[0]}"
            )
    else:
        qe = 1.0 if quantum_efficiency is None else quantum_efficiency
        c = _named_curves(sensor)
    qe = check_number("quantum_efficiency", qe, 0.0, 1.0, lo_open=True)
    return c * qe


def _named_curves(name: str | Path) -> np.ndarray:
    s = str(name)
    if s in SENSITIVITIES:
        return SENSITIVITIES.get(s)()
    if isinstance(name, Path) or s.lower().endswith(".csv") or "/" in s:
        return _curves_from_csv(Path(s))
    return SENSITIVITIES.get(s)()  # raises UnknownMethod listing the valid names


# --- scene → electrons ----------------------------------------------------------------------------
def _photon_curves(
    curves: np.ndarray, *, pixel_pitch_um: float, f_number: float, transmission: float, luminance: float
):
    """Curves (C, L) that turn a relative spectrum into e⁻/s per pixel (see :func:`electron_rate`)."""
    irradiance = math.pi * transmission / (4.0 * f_number**2) * spectral.radiance_scale(luminance)
    return curves * (irradiance * _photons_per_irradiance(pixel_pitch_um))[None, :]


def _photons_per_irradiance(pixel_pitch_um: float) -> np.ndarray:
    """(L,) photons/s on one pixel per W·m⁻²·nm⁻¹ of spectral irradiance in each bin: ``A_pix·λ/(h·c)·Δλ``."""
    wl_m = spectral.WAVELENGTHS * 1e-9
    area = (pixel_pitch_um * 1e-6) ** 2
    return area * wl_m / (spectral.PLANCK * spectral.LIGHT_SPEED) * spectral.STEP_NM


def electron_rate(scene: Any, *, sensor: Sensor, f_number: float, transmission: float = 0.9) -> torch.Tensor:
    """(C, H, W) photo-electrons per second per pixel, full resolution, one plane per CFA colour.

    On-axis image-plane spectral irradiance of a Lambertian scene ``E_λ = π·τ·L_λ / (4N²)`` (cos⁴ fall-off
    belongs to the optics), photons ``E_λ·A_pix·λ/(h·c)·Δλ``, electrons ``Σ_λ QE_c(λ)·photons``.
    """
    from obscura.sim.scene import Scene

    if not isinstance(scene, Scene):
        raise ShapeError(f"scene must be an obscura.sim.scene.Scene; got {type(scene).__name__}")
    if not isinstance(sensor, Sensor):
        raise InvalidParameter(f"sensor must be a Sensor; got {type(sensor).__name__}")
    f = check_number("f_number", f_number, 0.5, 1e4)
    tau = check_number("transmission", transmission, 0.0, 1.0, lo_open=True)
    pc = _photon_curves(
        sensitivities(sensor),
        pixel_pitch_um=sensor.pixel_pitch_um,
        f_number=f,
        transmission=tau,
        luminance=scene.luminance,
    )
    return scene.response(pc)


def sample_cfa(x: torch.Tensor, cfa: str) -> torch.Tensor:
    """The (H, W) mosaic of a (C, H, W) full-resolution image through ``cfa`` (Bayer, Quad Bayer, or ''
    for a monochrome sensor, where C must be 1). H and W must be multiples of the CFA period."""
    if not isinstance(x, torch.Tensor):
        raise ShapeError(f"x must be a torch.Tensor; got {type(x).__name__}")
    cfa = validate_cfa(cfa)
    if cfa == "":
        if x.ndim != 3 or x.shape[0] != 1:
            raise ShapeError(f"a monochrome sensor (cfa '') needs x of shape (1, H, W); got {tuple(x.shape)}")
        return x[0].clone()
    n = cfa_period(cfa)
    if x.ndim != 3 or x.shape[0] != 3 or x.shape[1] % n or x.shape[2] % n or x.shape[1] < n or x.shape[2] < n:
        raise ShapeError(f"x must be (3, H, W) with H, W multiples of {n} for CFA {cfa}; got {tuple(x.shape)}")
    return mosaic_rgb(x, cfa=cfa)


# --- electronics --------------------------------------------------------------------------------
def _check_iso(sensor: Sensor, iso: Any) -> float:
    s = check_number("iso", iso, 0.0, 1e7, lo_open=True)
    if s < sensor.base_iso * (1 - 1e-9):
        raise InvalidParameter(f"iso must be >= the sensor's base ISO {sensor.base_iso:g}; got {iso!r}")
    return s


def conversion_gain(sensor: Sensor, *, iso: float) -> float:
    """Conversion gain in DN per electron at ``iso``: ``(white − black) / full_well × iso / base_iso``."""
    s = _check_iso(sensor, iso)
    return (sensor.white_level - sensor.black_level_dn) / sensor.full_well_e * s / sensor.base_iso


@dataclass(frozen=True, eq=False)
class FixedPattern:
    """The fixed-pattern noise of a sensor at one frame size (the same in every frame)."""

    prnu: torch.Tensor | None  # (H, W) per-pixel gain, 1 + σ·N(0, 1)
    dsnu: torch.Tensor | None  # (H, W) per-pixel dark offset, e⁻
    column: torch.Tensor | None  # (W,) per-column offset, e⁻
    hot: torch.Tensor | None  # (H, W) bool, hot pixel sites
    offset: torch.Tensor | None = None  # (H, W) dsnu + column, e⁻ (what expose adds)
    hot_index: torch.Tensor | None = None  # flat indices of the hot sites


@functools.lru_cache(maxsize=4)
def _fixed_pattern_cached(
    seed: int, height: int, width: int, device: str, prnu: float, dsnu: float, column: float, hot: float
) -> FixedPattern:
    dev = torch.device(device)
    out: dict[str, torch.Tensor | None] = {}
    # One generator per pattern so that turning one pattern off leaves the others unchanged.
    for i, (key, sigma) in enumerate((("prnu", prnu), ("dsnu", dsnu), ("column", column), ("hot", hot))):
        if sigma <= 0:
            out[key] = None
            continue
        g = torch.Generator(device=dev)
        g.manual_seed(int(seed) * 4 + i)
        if key == "column":
            out[key] = torch.randn(width, generator=g, device=dev) * sigma
        elif key == "hot":
            out[key] = torch.rand((height, width), generator=g, device=dev) < sigma
        else:
            z = torch.randn((height, width), generator=g, device=dev) * sigma
            out[key] = z.add_(1.0) if key == "prnu" else z
    offset = out["dsnu"]
    if out["column"] is not None:
        offset = out["column"].expand(height, width).clone() if offset is None else offset + out["column"][None, :]
    hot_index = None if out["hot"] is None else torch.nonzero(out["hot"].reshape(-1)).squeeze(1)
    return FixedPattern(**out, offset=offset, hot_index=hot_index)


def fixed_pattern(sensor: Sensor, height: int, width: int, *, device: torch.device | str = "cpu") -> FixedPattern:
    """PRNU, DSNU, column offsets and hot-pixel sites of ``sensor`` for an (H, W) frame on ``device``.

    Drawn from ``sensor.fixed_pattern_seed`` only (cached: do not modify the tensors), so every frame
    of a burst shares them; different devices draw different (but fixed) patterns.
    """
    dev = torch.device(device)
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device("cuda", torch.cuda.current_device())
    return _fixed_pattern_cached(
        int(sensor.fixed_pattern_seed),
        int(height),
        int(width),
        str(dev),
        float(sensor.prnu),
        float(sensor.dsnu_e),
        float(sensor.column_noise_e),
        float(sensor.hot_pixel_fraction),
    )


_POISSON_CHUNK = 1 << 20  # elements per chunk: fixed, so results do not depend on the thread count


def shot_noise(mean_e: torch.Tensor, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """Photon (and dark) shot noise: exact Poisson counts with mean ``mean_e`` (torch.poisson).

    torch's CPU sampler is serial, so large CPU tensors are cut into fixed 2²⁰-element chunks, each with
    its own generator seeded from ``generator``, and sampled on a thread pool (torch releases the GIL):
    the result depends on the seed only, never on the number of threads.
    """
    if mean_e.device.type != "cpu" or mean_e.numel() <= _POISSON_CHUNK:
        return torch.poisson(mean_e, generator=generator)
    flat = mean_e.reshape(-1)
    out = torch.empty_like(flat)
    n = -(-flat.numel() // _POISSON_CHUNK)
    seeds = torch.randint(0, 2**62, (n,), generator=generator).tolist()

    def work(i: int) -> None:
        g = torch.Generator()
        g.manual_seed(seeds[i])
        sl = slice(i * _POISSON_CHUNK, (i + 1) * _POISSON_CHUNK)
        out[sl] = torch.poisson(flat[sl], generator=g)

    parallel_map(work, range(n), threads=parallel_threads(mean_e.device))
    return out.view_as(mean_e)


def quantize(dn: torch.Tensor, *, white_level: float) -> torch.Tensor:
    """Round to integer codes and clip to the ADC range ``[0, white_level]``."""
    return torch.round(dn).clamp_(0.0, float(white_level))


@dataclass(frozen=True, eq=False)
class Exposure:
    """The result of :func:`expose`. DN values are float32 tensors holding integers (``raw``)."""

    raw: torch.Tensor  # (H, W) DN with every noise, quantized and clipped
    clean: torch.Tensor  # (H, W) DN expected value: no noise or fixed pattern; gain, black level, clipping
    electrons: torch.Tensor  # (H, W) expected photo-electrons, clipped at the full well
    gain_dn_per_e: float
    white_level: float
    black_level: float


def _check_rate(rate: Any) -> torch.Tensor:
    if not isinstance(rate, torch.Tensor):
        raise ShapeError(f"rate_mosaic must be a torch.Tensor; got {type(rate).__name__}")
    if rate.ndim != 2 or rate.shape[0] < 1 or rate.shape[1] < 1:
        raise ShapeError(f"rate_mosaic must be an (H, W) mosaic of e⁻/s; got {tuple(rate.shape)}")
    if not rate.is_floating_point():
        raise ShapeError(f"rate_mosaic must be floating point; got {rate.dtype}")
    lo, hi = (float(v) for v in torch.aminmax(rate))  # one pass; NaN propagates into both
    if not (math.isfinite(lo) and math.isfinite(hi) and lo >= 0):
        raise InvalidParameter(f"rate_mosaic must be finite and >= 0 (electrons per second); got [{lo}, {hi}]")
    return rate


def expose(
    rate_mosaic: torch.Tensor,
    *,
    sensor: Sensor,
    exposure_time: float,
    iso: float,
    generator: torch.Generator | None = None,
    noise: bool = True,
) -> Exposure:
    """Expose an (H, W) mosaic of e⁻/s for ``exposure_time`` seconds at ``iso``: the raw DN values.

    ``noise=False`` gives ``raw == round(clean)`` exactly (no noise, no fixed pattern, no dark signal).
    The same ``generator`` state gives bit-identical results on the same device.
    """
    rate = _check_rate(rate_mosaic).to(torch.float32)
    if not isinstance(sensor, Sensor):
        raise InvalidParameter(f"sensor must be a Sensor; got {type(sensor).__name__}")
    t = check_number("exposure_time", exposure_time, 0.0, 1e5, lo_open=True)
    g = conversion_gain(sensor, iso=iso)
    if generator is not None and torch.device(generator.device).type != rate.device.type:
        raise InvalidParameter(f"generator is on {generator.device} but rate_mosaic on {rate.device}")
    white = float(sensor.white_level)
    black = float(sensor.black_level_dn)
    fw = float(sensor.full_well_e)
    electrons = (rate * t).clamp_(max=fw)
    clean = (electrons * g + black).clamp_(max=white)
    if not noise:
        return Exposure(torch.round(clean), clean, electrons, g, white, black)
    h, w = rate.shape
    fp = fixed_pattern(sensor, h, w, device=rate.device)
    # Dark signal, shot noise, row noise, read noise and ADC noise, fused in place for speed (12 MP
    # frames); read and ADC noise are one Gaussian draw of σ² = (g·σ_read)² + σ_adc².
    mean = rate * t
    if fp.prnu is not None:
        mean.mul_(fp.prnu)
    dark_e = sensor.dark_current_e_s * t
    if dark_e > 0:
        mean.add_(dark_e)
    if fp.hot_index is not None and sensor.hot_pixel_rate_e_s > 0:
        mean.view(-1)[fp.hot_index] += sensor.hot_pixel_rate_e_s * t
    e = shot_noise(mean, generator=generator).clamp_(max=fw)
    del mean
    if fp.offset is not None:
        e.add_(fp.offset)
    if sensor.row_noise_e > 0:
        e.add_(torch.randn((h, 1), generator=generator, device=e.device).mul_(sensor.row_noise_e))
    dn = e.mul_(g).add_(black - dark_e * g)  # the optical-black clamp removes the mean dark signal
    sigma = math.hypot(g * sensor.read_noise_e, sensor.adc_noise_dn)
    if sigma > 0:
        dn.add_(torch.randn((h, w), generator=generator, device=dn.device), alpha=sigma)
    return Exposure(quantize(dn, white_level=white), clean, electrons, g, white, black)


def noise_model(sensor: Sensor, *, iso: float, exposure_time: float) -> tuple[tuple[float, float], ...]:
    """The DNG NoiseProfile ``(a, b)`` per colour plane: ``var_x = a·x + b`` for ``x = (DN − black)/(white −
    black)``, away from clipping.

    ``a = g / R`` (shot noise of photo-electrons, ``g`` DN/e⁻, ``R = white − black``);
    ``b = (g²·(dark·t + σ_read² + σ_row² + σ_col² + σ_dsnu²) + σ_adc² + 1/12) / R²`` (dark shot noise,
    temporal and fixed-pattern offsets as variances, ADC noise, rounding). PRNU adds ``prnu²·x²``
    (:func:`prnu_variance`), which a linear profile cannot hold; hot pixels are outliers, not modelled.
    """
    g = conversion_gain(sensor, iso=iso)
    t = check_number("exposure_time", exposure_time, 0.0, 1e5, lo_open=True)
    r = sensor.white_level - sensor.black_level_dn
    var_e = (
        sensor.dark_current_e_s * t
        + sensor.read_noise_e**2
        + sensor.row_noise_e**2
        + sensor.column_noise_e**2
        + sensor.dsnu_e**2
    )
    a = g / r
    b = (g * g * var_e + sensor.adc_noise_dn**2 + 1.0 / 12.0) / (r * r)
    return tuple((float(a), float(b)) for _ in range(sensor.channels))


def prnu_variance(sensor: Sensor, x: float | np.ndarray) -> float | np.ndarray:
    """The PRNU term of the normalised variance, ``prnu²·x²``, to add to :func:`noise_model`'s ``a·x + b``."""
    return sensor.prnu**2 * np.asarray(x, dtype=np.float64) ** 2


# --- colour calibration -------------------------------------------------------------------------
def camera_response(curves: np.ndarray, spectra: np.ndarray) -> np.ndarray:
    """Relative raw response (..., C) to relative spectra (..., L) of a photon-counting sensor with QE
    ``curves`` (C, L): ``Σ_λ QE_c(λ)·s(λ)·λ`` (photons per unit energy ∝ λ), as :func:`electron_rate`
    integrates, up to its absolute scale."""
    return np.asarray(spectra, dtype=np.float64) @ (curves * (spectral.WAVELENGTHS / 560.0)).T


def _check_curves(curves: Any) -> np.ndarray:
    c = np.asarray(curves.detach().cpu() if isinstance(curves, torch.Tensor) else curves, dtype=np.float64)
    L = spectral.WAVELENGTHS.size
    if c.ndim != 2 or c.shape[1] != L or c.shape[0] not in (1, 3):
        raise ShapeError(f"curves must be (3, {L}) (or (1, {L}) for monochrome) on spectral.WAVELENGTHS; got {c.shape}")
    if not np.all(np.isfinite(c)) or c.max() <= 0:
        raise InvalidParameter("curves must be finite with a positive peak")
    return c


def fit_colour_matrix_wpp(
    camera: np.ndarray,
    xyz: np.ndarray,
    *,
    white_camera: np.ndarray,
    white_xyz: np.ndarray,
    weights: np.ndarray | None = None,
) -> np.ndarray:
    """The 3×3 ``M`` (camera → XYZ) minimising ``Σ w_i·|M·c_i − X_i|²`` subject to ``M·white_camera =
    white_xyz``: white-point-preserving least squares (Finlayson & Drew 1996), closed form per row with a
    Lagrange multiplier. ``camera``, ``xyz``: (N, 3)."""
    c = np.asarray(camera, dtype=np.float64)
    x = np.asarray(xyz, dtype=np.float64)
    n = np.asarray(white_camera, dtype=np.float64)
    w = np.ones(len(c)) if weights is None else np.asarray(weights, dtype=np.float64)
    A = c.T @ (w[:, None] * c)
    Ainv = np.linalg.inv(A)
    m_ls = Ainv @ c.T @ (w[:, None] * x)  # (3, 3): column j = row j of M
    An = Ainv @ n
    lam = (np.asarray(white_xyz, dtype=np.float64) - n @ m_ls) / (n @ An)
    return (m_ls + An[:, None] * lam[None, :]).T


def _lab(xyz: np.ndarray, white: np.ndarray) -> np.ndarray:
    import colour

    return colour.XYZ_to_Lab(xyz, colour.XYZ_to_xy(white))


def _fit_perceptual(cam, xyz, n, w_xyz) -> np.ndarray:
    """Refine the WPP fit to minimise ΔE2000 (CIE 2000) over the training set, keeping the white exact:
    ``M = M0 + D`` with every row of ``D`` orthogonal to the camera white (6 free parameters)."""
    import colour
    from scipy.optimize import least_squares

    m0 = fit_colour_matrix_wpp(cam, xyz, white_camera=n, white_xyz=w_xyz)
    # basis of the plane orthogonal to n
    q, _ = np.linalg.qr(np.column_stack([n, np.eye(3)[:, :2]]))
    basis = q[:, 1:3]  # (3, 2)
    lab_ref = _lab(xyz, w_xyz)

    def residual(p):
        m = m0 + p.reshape(3, 2) @ basis.T
        return colour.delta_E(_lab(cam @ m.T, w_xyz), lab_ref, method="CIE 2000")

    sol = least_squares(residual, np.zeros(6), method="lm")
    m = m0 + sol.x.reshape(3, 2) @ basis.T
    return m if np.mean(residual(sol.x)) <= np.mean(residual(np.zeros(6))) else m0


def _training_set(training: np.ndarray | None) -> np.ndarray:
    r = spectral.colorchecker_reflectances() if training is None else np.asarray(training, dtype=np.float64)
    L = spectral.WAVELENGTHS.size
    if r.ndim != 2 or r.shape[1] != L or r.shape[0] < 3 or not np.all(np.isfinite(r)):
        raise ShapeError(f"training reflectances must be (N >= 3, {L}); got {r.shape}")
    return r


def _illuminant_code(name: str) -> int:
    spectral.illuminant_spd(name)  # unknown names → UnknownMethod listing the valid ones
    code = spectral.EXIF_LIGHT_SOURCE.get(name)
    if code is None:
        valid = ", ".join(spectral.EXIF_LIGHT_SOURCE)
        raise InvalidParameter(f"calibration illuminant {name!r} has no EXIF LightSource code; use one of {valid}")
    return code


def dng_colour_tags(
    curves: np.ndarray | torch.Tensor,
    *,
    illuminants: Sequence[str] = ("A", "D65"),
    training: np.ndarray | None = None,
    perceptual: bool = False,
) -> dict[str, Any]:
    """DNG colour tags (DNG 1.4 §6) derived from the sensor's spectral model: ``color_matrix1/2``,
    ``forward_matrix1/2`` (row-major 9-tuples) and ``calibration_illuminant1/2`` (EXIF codes), ready for
    ``RawMeta.replace(**tags)``. ``curves`` are QE curves (:func:`sensitivities`); responses are photon
    counts (:func:`camera_response`). Monochrome curves (1, L) give ``{}``.

    For each illuminant, the training reflectances (ColorChecker by default) give camera responses and
    true XYZ; ``M`` (camera → XYZ) is fitted by white-point-preserving least squares in XYZ (Finlayson &
    Drew 1996) and, with ``perceptual`` (slower, ~1 s), refined to minimise ΔE2000 with the white still
    exact. The plain fit already gives a mean ΔE2000 of 0.73 (D65) / 1.06 (A) on the ColorChecker for the
    Canon 5D Mark II curves. ColorMatrix =
    ``M⁻¹`` scaled so the illuminant's white (Y = 1) maps to the camera neutral with max 1;
    ForwardMatrix = ``Bradford(illuminant → D50)·M·diag(neutral)``, scaled so (1, 1, 1) → D50 (Y = 1).
    """
    c = _check_curves(curves)
    if c.shape[0] == 1:
        return {}
    if isinstance(illuminants, str) or len(illuminants) not in (1, 2):
        raise InvalidParameter(f"illuminants must be one or two names like ('A', 'D65'); got {illuminants!r}")
    refl = _training_set(training)
    d50 = xy_to_XYZ(WHITE_D50)
    tags: dict[str, Any] = {}
    for i, name in enumerate(illuminants, start=1):
        code = _illuminant_code(name)
        spd = spectral.illuminant_spd(name)
        stimuli = refl * spd[None, :]
        cam = camera_response(c, stimuli)
        xyz = spectral.xyz_from_spectra(stimuli)
        n = camera_response(c, spd)
        w_xyz = spectral.xyz_from_spectra(spd)  # Y = 1
        m = (
            _fit_perceptual(cam, xyz, n, w_xyz)
            if perceptual
            else fit_colour_matrix_wpp(cam, xyz, white_camera=n, white_xyz=w_xyz)
        )
        cm = np.linalg.inv(m) / n.max()  # cm @ w_xyz = n / max(n)
        fm = bradford_matrix(XYZ_to_xy(w_xyz), WHITE_D50) @ m @ np.diag(n)
        fm = fm * (d50 / (fm @ np.ones(3)))[:, None]  # exact (1, 1, 1) → D50 despite rounding
        tags[f"color_matrix{i}"] = tuple(float(v) for v in cm.reshape(-1))
        tags[f"forward_matrix{i}"] = tuple(float(v) for v in fm.reshape(-1))
        tags[f"calibration_illuminant{i}"] = code
    return tags


def as_shot_neutral(curves: np.ndarray | torch.Tensor, illuminant: str) -> tuple[float, ...]:
    """DNG AsShotNeutral: the camera's raw response (:func:`camera_response`) to a neutral lit by
    ``illuminant``, green = 1 (one value ``(1.0,)`` for monochrome curves)."""
    c = _check_curves(curves)
    n = camera_response(c, spectral.illuminant_spd(illuminant))
    if c.shape[0] == 1:
        return (1.0,)
    return tuple(float(v) for v in n / n[1])


def saturation_iso(sensor: Sensor, *, illuminant: str = "D55") -> float:
    """ISO 12232:2019 saturation-based speed at base gain, ``S_sat = 78 / H_sat``: ``H_sat`` is the
    focal-plane exposure (lux·s) of ``illuminant`` light that fills the full well of the most sensitive
    channel."""
    c = sensitivities(sensor)
    # spectral irradiance (W/m²/nm) of 1 lux, E_v = K_m Σ ȳ E_λ Δλ: the SPD has Y = 1, so the same scale as
    # the radiance of 1 cd/m²
    e_lambda = spectral.illuminant_spd(illuminant) * spectral.radiance_scale(1.0)
    e_per_lux_s = float((c @ (e_lambda * _photons_per_irradiance(sensor.pixel_pitch_um))).max())
    h_sat = (
        min(
            sensor.full_well_e,
            (sensor.white_level - sensor.black_level_dn) / conversion_gain(sensor, iso=sensor.base_iso),
        )
        / e_per_lux_s
    )
    return 78.0 / h_sat
