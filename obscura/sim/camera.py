"""The virtual camera: profiles (lens + sensor + defaults), ``capture`` and ``capture_burst``.

A capture runs the physical chain on a :class:`~obscura.sim.scene.Scene`:

1. the scene's spectral radiance → electrons per second per pixel for each colour plane
   (:func:`obscura.sim.sensor.electron_rate`: f-number, transmission, pixel area, quantum efficiency);
2. the frame's geometry: hand shake (translation + roll, optionally integrated over the exposure)
   and moving objects, resampled onto the sensor grid;
3. the lens (:func:`obscura.sim.optics.apply_lens`: distortion, lateral CA, field-varying PSF with the
   pixel aperture and OLPF, vignetting);
4. the CFA (:func:`obscura.sim.sensor.sample_cfa`) and the exposure with its noise, gain, black level,
   quantization and clipping (:func:`obscura.sim.sensor.expose`);
5. a :class:`~obscura.core.types.RawFrame` whose RawMeta carries DNG colour matrices fitted to the
   sensor's spectral model for two illuminants, the AsShotNeutral of the scene's light, the
   NoiseProfile of the noise model and the exposure EXIF.

``size`` renders the sensor at another resolution with the same field of view: pixels are merged
(or split) and the pixel pitch, full well, read noise and dark current scale accordingly, as in pixel
binning. Quad Bayer sensors rendered at half resolution or less read out as their parent Bayer pattern
(the phones' 4-in-1 binned mode).

Hand-shake motion is physiological tremor: a sum of sinusoids (1–12 Hz) with random phases, scaled
to the requested RMS translation and roll. A frame's motion ``(dx, dy, angle)`` is the displacement of
the image content: ``frame(x, y) = scene(R(−angle)·((x, y) − c − (dx, dy)) + c)`` about the centre
``c``; the shift of frame ``i`` relative to frame ``j`` is ``motion[i] − motion[j]``.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812

from obscura.core.errors import (
    CorruptFile,
    InputError,
    InvalidParameter,
    ShapeError,
    UnknownMethod,
    WriteError,
)
from obscura.core.types import BAYER_PATTERNS, QUAD_BAYER_PATTERNS, Burst, RawFrame, RawMeta
from obscura.sim import optics, spectral
from obscura.sim import sensor as sensor_mod
from obscura.sim.optics import Lens
from obscura.sim.scene import Scene
from obscura.sim.sensor import Sensor

__all__ = [
    "HandShake",
    "MovingObject",
    "Camera",
    "FrameMotion",
    "Truth",
    "Shot",
    "list_cameras",
    "load_camera",
    "camera_from_dict",
    "effective_sensor",
    "metered_exposure_time",
    "metered_luminance",
    "handshake_trajectory",
    "capture",
    "shoot",
    "capture_burst",
    "save_shot",
]

_FULL_FRAME_DIAGONAL_MM = 43.2666
_METER_K = 12.5  # reflected-light meter calibration constant, cd·s/m² (ISO 2720)
_DATETIME = "2026:01:01 12:00:00"  # fixed, so that the same seed gives bit-identical DNGs


# --------------------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class HandShake:
    """Handheld motion: RMS translation (output pixels) and roll (degrees) of physiological tremor."""

    translation_px: float = 1.5
    rotation_deg: float = 0.03
    frame_interval_s: float = 1 / 30
    blur: bool = False  # integrate the motion within each exposure (motion blur)
    blur_samples: int = 5

    def __post_init__(self) -> None:
        for name in ("translation_px", "rotation_deg"):
            v = getattr(self, name)
            if not (math.isfinite(v) and 0 <= v <= 1000):
                raise InvalidParameter(f"HandShake.{name} must be in [0, 1000]; got {v}")
        if not (self.frame_interval_s > 0 and math.isfinite(self.frame_interval_s)):
            raise InvalidParameter(f"HandShake.frame_interval_s must be > 0; got {self.frame_interval_s}")
        if not 1 <= int(self.blur_samples) <= 64:
            raise InvalidParameter(f"HandShake.blur_samples must be in 1..64; got {self.blur_samples}")

    @property
    def off(self) -> bool:
        return self.translation_px == 0 and self.rotation_deg == 0


@dataclass(frozen=True)
class MovingObject:
    """An object crossing the scene during a burst: a disk or square, flat or checkered, in linear sRGB
    reflectance under the scene's light. ``center`` is at frame 0; ``velocity`` in pixels per frame."""

    center: tuple[float, float]
    velocity: tuple[float, float]
    radius: float = 24.0
    shape: str = "disk"
    rgb: tuple[float, float, float] = (0.7, 0.15, 0.1)
    texture: str = "checker"
    checker_px: float = 6.0

    def __post_init__(self) -> None:
        if self.shape not in ("disk", "square"):
            raise UnknownMethod(f"unknown MovingObject shape {self.shape!r}; valid: disk, square")
        if self.texture not in ("checker", "flat"):
            raise UnknownMethod(f"unknown MovingObject texture {self.texture!r}; valid: checker, flat")
        if not self.radius > 0:
            raise InvalidParameter(f"MovingObject.radius must be > 0; got {self.radius}")
        if any(not (math.isfinite(v) and v >= 0) for v in self.rgb):
            raise InvalidParameter(f"MovingObject.rgb must be finite and >= 0; got {self.rgb}")


@dataclass(frozen=True)
class Camera:
    """A camera profile: lens, sensor and default settings (see ``obscura/sim/profiles/*.toml``)."""

    name: str
    lens: Lens
    sensor: Sensor
    description: str = ""
    make: str = "obscura"
    model: str = ""
    size: tuple[int, int] | None = None  # default output (H, W); None = the sensor's own
    iso: float = 100.0
    handshake: HandShake = field(default_factory=HandShake)

    def replace(self, **changes: Any) -> Camera:
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class FrameMotion:
    """One frame's image-content displacement (pixels, degrees) and its exposure."""

    dx: float
    dy: float
    angle_deg: float
    exposure_time: float
    ev: float = 0.0


@dataclass(frozen=True, eq=False)
class Truth:
    """What the camera saw, without noise.

    ``clean_camera``: the reference frame in camera RGB (one plane per CFA colour) after the optics,
    normalized raw units (0 = black, 1 = white, clipped). ``linear_srgb``: the scene as the reference
    frame frames it, without optics, white-balanced linear sRGB relative to the scene white (Y = 1).
    ``clean_mosaics``: every frame's mosaic without noise, normalized raw units. ``masks``: where the
    moving objects cover each frame (coverage in [0, 1]), or None.
    """

    clean_camera: torch.Tensor | None
    linear_srgb: torch.Tensor | None
    clean_mosaics: torch.Tensor
    motion: tuple[FrameMotion, ...]
    noise: Mapping[str, Any]
    settings: Mapping[str, Any]
    masks: torch.Tensor | None = None
    reference: int = 0


@dataclass(frozen=True, eq=False)
class Shot:
    """The frames of a capture and their ground truth."""

    burst: Burst
    truth: Truth

    @property
    def frame(self) -> RawFrame:
        """The reference frame."""
        return self.burst[self.truth.reference]


# --------------------------------------------------------------------------------------- profiles


def _profiles_dir() -> Path:
    return Path(str(resources.files("obscura.sim") / "profiles"))


def list_cameras() -> list[str]:
    """Names of the shipped camera profiles."""
    return sorted(p.stem for p in _profiles_dir().glob("*.toml"))


def camera_from_dict(d: Mapping[str, Any], *, source: str = "profile") -> Camera:
    """A Camera from a parsed profile (``[lens]``, ``[sensor]``, ``[defaults]``, ``[handshake]``)."""
    d = dict(d)
    known = {"name", "description", "make", "model", "lens", "sensor", "defaults", "handshake"}
    extra = set(d) - known
    if extra:
        raise CorruptFile(f"{source}: unknown keys {sorted(extra)}; valid: {sorted(known)}")
    if "lens" not in d or "sensor" not in d:
        raise CorruptFile(f"{source}: a camera profile needs [lens] and [sensor] tables")
    try:
        lens = optics.lens_from_dict(d["lens"])
        sen = sensor_mod.sensor_from_dict(d["sensor"])
        defaults = dict(d.get("defaults", {}))
        size = defaults.pop("size", None)
        iso = float(defaults.pop("iso", sen.base_iso))
        if defaults:
            raise CorruptFile(f"{source}: unknown [defaults] keys {sorted(defaults)}; valid: iso, size")
        hs = HandShake(**d.get("handshake", {}))
    except TypeError as e:
        raise CorruptFile(f"{source}: {e}") from None
    return Camera(
        name=str(d.get("name", Path(source).stem)),
        description=str(d.get("description", "")),
        make=str(d.get("make", "obscura")),
        model=str(d.get("model", d.get("name", ""))),
        lens=lens,
        sensor=sen,
        size=tuple(int(v) for v in size) if size else None,
        iso=iso,
        handshake=hs,
    )


@functools.cache
def _load_shipped(name: str) -> Camera:
    p = _profiles_dir() / f"{name}.toml"
    return camera_from_dict(tomllib.loads(p.read_text()), source=str(p))


def load_camera(camera: str | Path | Camera) -> Camera:
    """A shipped profile by name (see :func:`list_cameras`), a profile ``.toml`` path, or a Camera."""
    if isinstance(camera, Camera):
        return camera
    s = str(camera)
    if s in list_cameras():
        return _load_shipped(s)
    p = Path(s)
    if p.suffix.lower() == ".toml":
        if not p.is_file():
            raise InputError(f"{p}: no such camera profile file")
        try:
            data = tomllib.loads(p.read_text())
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
            raise CorruptFile(f"{p}: not a valid TOML camera profile: {e}") from None
        return camera_from_dict(data, source=str(p))
    raise UnknownMethod(f"unknown camera profile {s!r}; valid: {', '.join(list_cameras())} (or a .toml file)")


# --------------------------------------------------------------------------------------- physics


def effective_sensor(sen: Sensor, size: tuple[int, int] | None) -> Sensor:
    """The sensor read out at ``size`` (H, W) with the same field of view (binning-like scaling).

    The pitch becomes ``√(sensor area / pixel count)``; full well and dark current scale with the pixel
    area, read noise with its square root (independent sub-pixel reads summed). A Quad Bayer sensor read
    at half resolution or less uses its parent Bayer pattern.
    """
    if size is None or (int(size[0]), int(size[1])) == (sen.height, sen.width):
        return sen
    h, w = int(size[0]), int(size[1])
    if h < 8 or w < 8:
        raise InvalidParameter(f"size must be at least 8×8 pixels; got {(h, w)}")
    area_mm2 = sen.width * sen.height * (sen.pixel_pitch_um * 1e-3) ** 2
    pitch = math.sqrt(area_mm2 / (h * w)) * 1e3
    k = pitch / sen.pixel_pitch_um  # linear scale
    cfa = sen.cfa
    if cfa in QUAD_BAYER_PATTERNS and k >= 1.999:
        cfa = BAYER_PATTERNS[QUAD_BAYER_PATTERNS.index(cfa)]
    return dataclasses.replace(
        sen,
        width=w,
        height=h,
        pixel_pitch_um=pitch,
        cfa=cfa,
        full_well_e=sen.full_well_e * k * k,
        read_noise_e=sen.read_noise_e * k,
        dark_current_e_s=sen.dark_current_e_s * k * k,
        dsnu_e=sen.dsnu_e * k,
        row_noise_e=sen.row_noise_e * k,
        column_noise_e=sen.column_noise_e * k,
    )


def _mean_luminance_factor(scene: Scene) -> float:
    """Mean Y of the scene (relative units, white = 1)."""
    y = scene.xyz()[1]
    return float(y.mean())


def metered_exposure_time(scene: Scene, *, f_number: float, iso: float) -> float:
    """Exposure time an averaging reflected-light meter picks: ``t = K·N² / (L·S)`` (ISO 2720, K = 12.5)."""
    lum = scene.luminance * _mean_luminance_factor(scene)
    if lum <= 0:
        raise InvalidParameter(f"scene {scene.name!r} is black: no exposure time can be metered")
    return _METER_K * f_number**2 / (lum * iso)


def metered_luminance(scene: Scene, *, f_number: float, iso: float, exposure_time: float) -> float:
    """The scene luminance (cd/m² at Y = 1) for which ``exposure_time`` at ``iso`` meters correctly."""
    y = _mean_luminance_factor(scene)
    if y <= 0:
        raise InvalidParameter(f"scene {scene.name!r} is black: no luminance can be metered")
    return _METER_K * f_number**2 / (exposure_time * iso) / y


def handshake_trajectory(
    hs: HandShake, *, n: int, exposure_times: Sequence[float], seed: int
) -> list[list[tuple[float, float, float]]]:
    """Per frame, ``blur_samples`` (dx, dy, angle_deg) positions within its exposure (1 without blur).

    Tremor as a sum of sinusoids at 1.5, 4, 8 and 11 Hz with random phases and 1/f amplitudes,
    normalized to the requested RMS over the burst's time span.
    """
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x5AC3]))
    freqs = np.array([1.5, 4.0, 8.0, 11.0])
    amps = 1.0 / freqs
    phases = rng.uniform(0, 2 * np.pi, size=(3, freqs.size))
    starts = np.arange(n) * hs.frame_interval_s
    starts = starts + np.concatenate([[0.0], np.cumsum(exposure_times[:-1])])  # frames follow each other

    def path(t: np.ndarray) -> np.ndarray:  # (3, T)
        return (
            amps[None, :, None] * np.sin(2 * np.pi * freqs[None, :, None] * t[None, None, :] + phases[..., None])
        ).sum(1)

    span = np.linspace(0.0, float(starts[-1] + exposure_times[-1]) + 0.5, 2048)
    ref = path(span)
    rms = np.sqrt(((ref - ref.mean(1, keepdims=True)) ** 2).mean(1)) + 1e-12
    scale = np.array([hs.translation_px, hs.translation_px, hs.rotation_deg]) / rms
    out = []
    k = int(hs.blur_samples) if hs.blur else 1
    for i in range(n):
        ts = (
            starts[i] + (np.arange(k) + 0.5) / k * exposure_times[i]
            if k > 1
            else starts[i : i + 1] + exposure_times[i] / 2
        )
        p = (path(np.asarray(ts)) - ref.mean(1, keepdims=True)) * scale[:, None]
        out.append([tuple(float(v) for v in p[:, j]) for j in range(p.shape[1])])
    return out


# t' − t ≈ u·v·(c0 + c1·u + c2·u²), u = t(1 − t), v = 1 − 2t: least-squares fit of the exact inverse (below)
_KEYS_INVERSE = (-0.36934188, 0.23227533, -5.40894378)  # max error 4.5e-4 px


def _unbias_bicubic(s: torch.Tensor) -> torch.Tensor:
    """Source coordinates (pixel index units) remapped so torch's bicubic samples land where intended.

    torch's bicubic is Keys' (1981) cubic convolution with a = −0.75, which does not reproduce linear
    functions: sampling at fraction t returns the signal at t + e(t), e(t) = 0.5·t(1 − t)(1 − 2t)
    (|e| ≤ 0.048 px) — a sub-pixel shift of everything, which would bias the hand-shake ground truth.
    Sampling at t' with t' + e(t') = t removes it; t' comes from a fitted odd polynomial (in-place ops:
    this runs on every coordinate of a 12 MP frame).
    """
    c0, c1, c2 = _KEYS_INVERSE
    t = s - torch.floor(s)
    u = t * (1 - t)
    v = t.mul_(-2).add_(1)  # 1 − 2t (t is not needed any more)
    g = u * c2
    g.add_(c1).mul_(u).add_(c0).mul_(u).mul_(v)
    return g.add_(s)


def _resample(x: torch.Tensor, size: tuple[int, int], motion: tuple[float, float, float]) -> torch.Tensor:
    """The scene image ``x`` (C, Hs, Ws) seen by a frame of ``size`` displaced by ``motion`` (no lens)."""
    hs, ws = x.shape[-2:]
    still = motion == (0.0, 0.0, 0.0)
    if (hs, ws) == tuple(size) and still:
        return x
    src = x
    if hs > 1.5 * size[0] or ws > 1.5 * size[1]:  # area-filter first so the warp does not alias
        src = F.interpolate(x[None], size=tuple(size), mode="area")[0]
        if still:
            return src
    if still:  # a pure rescale: the same mapping as the grid below, without building it
        y = F.interpolate(src[None], size=tuple(size), mode="bicubic", align_corners=False)[0]
        return y.clamp_min(0)
    grid = _frame_grid(tuple(size), tuple(src.shape[-2:]), None, motion, planes=1, device=x.device, dtype=x.dtype)
    return _sample(src, grid)


@functools.lru_cache(maxsize=8)
def _coarse_distortion(
    size: tuple[int, int], model: str, params: tuple[float, ...], mags: tuple[float, ...], device: str
) -> torch.Tensor:
    """:func:`optics._coarse_field` (C, 2, ny, nx), cached: the lens geometry is the same every frame."""
    return optics._coarse_field(size, model, params, mags, device)


def _frame_grid(
    size: tuple[int, int],
    src_size: tuple[int, int],
    lens: Lens | None,
    motion: tuple[float, float, float],
    *,
    planes: int,
    device,
    dtype,
) -> torch.Tensor:
    """One grid_sample grid (C, H, W, 2) for the lens geometry (distortion, lateral CA) composed with the
    frame's motion, so the scene is resampled once; (1, H, W, 2) when there is no geometry (``lens`` None
    or without distortion and lateral CA)."""
    h, w = size
    if _geometric(lens, planes):
        params = tuple(float(v) for v in lens.distortion_params)
        mags = optics._plane_magnifications(lens, planes)
        f = _coarse_distortion((h, w), lens.distortion, params, mags, str(device))
    else:  # motion only: one plane, the identity field
        f = _coarse_distortion((h, w), "none", (), (1.0,), str(device))
    px, py = f[:, 0] - 0.5, f[:, 1] - 0.5  # continuous → index coordinates (pixel centre at i)
    dx, dy, ang = motion
    cx, cy = (w - 1) / 2, (h - 1) / 2
    a = math.radians(ang)
    u, v = px - cx - dx, py - cy - dy
    sx = math.cos(a) * u + math.sin(a) * v + cx
    sy = -math.sin(a) * u + math.cos(a) * v + cy
    hs, ws = src_size
    fx, fy = ws / w, hs / h
    sx = (sx + 0.5) * fx - 0.5  # source pixel units
    sy = (sy + 0.5) * fy - 0.5
    if (hs, ws) == (h, w):
        # Same grid: a pixel's source position is its index plus a smooth displacement, so the fractional
        # part — and torch bicubic's bias correction (_unbias_bicubic) — is smooth too: correct the coarse
        # field, not every pixel. (Rescaling scenes cycle through all fractions pixel by pixel; their
        # residual bias is a ripple that averages out over any region.)
        ny, nx = sx.shape[-2:]
        iy = torch.linspace(0.0, h - 1.0, ny, dtype=sx.dtype, device=sx.device)[:, None]
        ix = torch.linspace(0.0, w - 1.0, nx, dtype=sx.dtype, device=sx.device)[None, :]
        sx = _unbias_bicubic(sx - ix) + ix
        sy = _unbias_bicubic(sy - iy) + iy
    coarse = torch.stack([(2 * sx + 1) / ws - 1, (2 * sy + 1) / hs - 1], dim=1).to(torch.float32)
    return F.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=True).permute(0, 2, 3, 1).to(dtype)


def _geometric(lens: Lens | None, planes: int) -> bool:
    """Whether the lens bends the image (distortion or lateral CA)."""
    return lens is not None and optics._bends(lens, planes)


def _sample(src: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """Bicubic samples of ``src`` (C, Hs, Ws) on ``grid`` (one per plane, or one (1, H, W, 2) for all)."""
    if grid.shape[0] == 1:
        y = F.grid_sample(src[None], grid, mode="bicubic", padding_mode="reflection", align_corners=False)[0]
    else:
        y = F.grid_sample(src[:, None], grid, mode="bicubic", padding_mode="reflection", align_corners=False)[:, 0]
    return y.clamp_min(0)  # bicubic undershoots next to hard edges; light is ≥ 0


def _supersampling(scene_size: tuple[int, int], size: tuple[int, int]) -> int:
    """How many scene samples per frame pixel (per axis) to warp before integrating over the pixel: a
    scene finer than the sensor keeps its detail (and the sensor's aliasing) when it is moved first and
    area-integrated second; 1 when the scene is not finer, at most 4."""
    ratio = min(scene_size[0] / size[0], scene_size[1] / size[1])
    return 1 if ratio < 1.5 else int(min(4, math.floor(ratio + 0.25)))


def _render_frame_rate(
    rate: torch.Tensor, size: tuple[int, int], lens: Lens, positions: list[tuple[float, float, float]]
) -> tuple[torch.Tensor, bool]:
    """The scene's electron rate seen through the lens geometry at each position (averaged: motion blur).

    A scene finer than the frame is warped at ``k`` × the frame's resolution and then averaged over each
    pixel's k × k footprint (the pixel aperture), so hand shake samples new scene detail in every frame, as
    on a real sensor. Returns the rate (C, H, W) and whether the lens geometry was applied here (one
    resampling of the scene instead of two)."""
    k = _supersampling(tuple(rate.shape[-2:]), size)
    over = (size[0] * k, size[1] * k)
    hs, ws = rate.shape[-2:]
    src = rate
    if hs > 1.5 * over[0] or ws > 1.5 * over[1]:
        src = F.interpolate(rate[None], size=over, mode="area")[0]
    acc = None
    done = _geometric(lens, rate.shape[0])
    for p in positions:
        q = (p[0] * k, p[1] * k, p[2])  # frame pixels → supersampled pixels
        if tuple(src.shape[-2:]) == over and q == (0.0, 0.0, 0.0) and not done:
            y = src
        else:
            y = _sample(src, _frame_grid(over, tuple(src.shape[-2:]), lens, q, planes=rate.shape[0],
                                         device=rate.device, dtype=rate.dtype))  # fmt: skip
        if k > 1:
            y = F.avg_pool2d(y[None], k)[0]
        acc = y if acc is None else acc + y
    return acc / len(positions), done


def _object_coverage(obj: MovingObject, size: tuple[int, int], frame: int, *, device, dtype) -> torch.Tensor:
    """Anti-aliased coverage (H, W) of a moving object in frame ``frame`` (4×4 supersampling)."""
    h, w = size
    cx = obj.center[0] + obj.velocity[0] * frame
    cy = obj.center[1] + obj.velocity[1] * frame
    s = 4
    off = (torch.arange(s, device=device, dtype=dtype) + 0.5) / s - 0.5
    ys = (torch.arange(h, device=device, dtype=dtype)[:, None] + off[None, :]).reshape(-1)
    xs = (torch.arange(w, device=device, dtype=dtype)[:, None] + off[None, :]).reshape(-1)
    dy = (ys - cy)[:, None]
    dx = (xs - cx)[None, :]
    inside = (
        (dx * dx + dy * dy <= obj.radius**2)
        if obj.shape == "disk"
        else ((dx.abs() <= obj.radius) & (dy.abs() <= obj.radius))
    )
    cov = inside.to(dtype).reshape(h, s, w, s).mean(dim=(1, 3))
    return cov


def _object_texture(obj: MovingObject, size: tuple[int, int], frame: int, *, device, dtype) -> torch.Tensor:
    """The object's reflectance pattern (H, W), moving with it: a checkerboard or flat."""
    if obj.texture == "flat":
        return torch.ones(size, device=device, dtype=dtype)
    h, w = size
    cx = obj.center[0] + obj.velocity[0] * frame
    cy = obj.center[1] + obj.velocity[1] * frame
    ys = torch.arange(h, device=device, dtype=dtype)[:, None] - cy
    xs = torch.arange(w, device=device, dtype=dtype)[None, :] - cx
    c = (torch.floor(xs / obj.checker_px) + torch.floor(ys / obj.checker_px)) % 2
    return 0.35 + 0.65 * c


def _object_patch(obj: MovingObject, scene: Scene) -> Scene:
    """The object's flat colour (linear sRGB reflectance) as a 1 × 1 scene under the scene's light."""
    from obscura.sim.scene import scene_from_rgb

    rgb = torch.tensor(obj.rgb, dtype=torch.float32, device=scene.device).reshape(3, 1, 1)
    return scene_from_rgb(rgb, encoding="linear", luminance=scene.luminance, illuminant=scene.illuminant)


# --------------------------------------------------------------------------------------- capture


def _check_settings(*, exposure_time: float, iso: float, f_number: float, sen: Sensor) -> None:
    if not (isinstance(exposure_time, (int, float)) and math.isfinite(exposure_time) and 0 < exposure_time <= 3600):
        raise InvalidParameter(f"exposure_time must be in (0, 3600] seconds; got {exposure_time}")
    if not (isinstance(iso, (int, float)) and math.isfinite(iso) and iso > 0):
        raise InvalidParameter(f"iso must be > 0; got {iso}")
    if iso < sen.base_iso * 0.999 or iso > sen.base_iso * 2**12:
        raise InvalidParameter(
            f"iso must be in [{sen.base_iso:g}, {sen.base_iso * 2**12:g}] for this sensor; got {iso}"
        )
    if not (isinstance(f_number, (int, float)) and math.isfinite(f_number) and 0.5 <= f_number <= 64):
        raise InvalidParameter(f"f_number must be in [0.5, 64]; got {f_number}")


def _frame_size(camera: Camera, size: tuple[int, int] | None) -> tuple[int, int]:
    s = size if size is not None else (camera.size or (camera.sensor.height, camera.sensor.width))
    if len(s) != 2:
        raise InvalidParameter(f"size must be (H, W); got {s}")
    h, w = int(s[0]), int(s[1])
    if h % 4 or w % 4 or h < 8 or w < 8:
        raise InvalidParameter(f"size must be at least 8×8 with sides multiple of 4 (CFA tiles); got {(h, w)}")
    return h, w


def _meta(
    *,
    camera: Camera,
    sen: Sensor,
    curves: np.ndarray,
    scene: Scene,
    exposure_time: float,
    iso: float,
    f_number: float,
    frame_index: int,
) -> RawMeta:
    from obscura import __version__

    white = float(sen.white_level)
    n_sites = 1 if sen.cfa == "" else len(sen.cfa)
    diag = math.hypot(sen.width, sen.height) * sen.pixel_pitch_um * 1e-3
    f35 = camera.lens.focal_length_mm * _FULL_FRAME_DIAGONAL_MM / diag
    tags: dict[str, Any] = {}
    neutral = None
    if sen.cfa != "":
        tags = dict(sensor_mod.dng_colour_tags(curves))
        neutral = tuple(float(v) for v in sensor_mod.as_shot_neutral(curves, scene.illuminant))
    profile = sensor_mod.noise_model(sen, iso=iso, exposure_time=exposure_time)
    model = camera.model or camera.name
    return RawMeta(
        cfa=sen.cfa,
        black_level=(float(sen.black_level_dn),) * n_sites,
        white_level=white,
        as_shot_neutral=neutral,
        noise_profile=tuple((float(a), float(b)) for a, b in profile),
        exposure_time=float(exposure_time),
        iso=float(iso),
        f_number=float(f_number),
        focal_length=float(camera.lens.focal_length_mm),
        focal_length_35mm=float(round(f35)),
        datetime=_DATETIME,
        make=camera.make,
        model=model,
        unique_camera_model=f"{camera.make} {model}",
        lens=f"obscura {camera.lens.focal_length_mm:g} mm f/{camera.lens.f_number:g}",
        software=f"obscura {__version__} simulate",
        serial=f"{frame_index:04d}",
        source_format="dng",
        **tags,
    )


@functools.lru_cache(maxsize=8)
def _psf_grid(lens: Lens, size: tuple[int, int], pitch: float, curves: bytes, w020: float, device: str) -> torch.Tensor:
    """The lens's PSF grid for a frame (cached: a burst, a lab protocol and repeated captures reuse it)."""
    spectra = torch.frombuffer(bytearray(curves), dtype=torch.float64).reshape(-1, spectral.WAVELENGTHS.size)
    return optics.field_psf_grid(
        lens,
        size=size,
        pixel_pitch_um=pitch,
        channel_spectra=spectra.to(torch.float32),
        defocus_waves=w020,
        device=device,
    )


def _lens_at(lens: Lens, f_number: float) -> Lens:
    return lens if f_number == lens.f_number else dataclasses.replace(lens, f_number=float(f_number))


def _lens_for_pitch(lens: Lens, pitch_um: float, depth: float | torch.Tensor) -> Lens:
    """The lens with its pupil PSF swapped for the equivalent Gaussian when pixels dwarf the PSF.

    Sampling the pupil model needs ``≥ 2p/(λN)`` samples per pixel (see :func:`optics.psf_pupil`), which
    explodes when a frame is rendered far below the sensor's resolution (big effective pixels). When the
    Airy disk plus the aberrations span under a quarter of a pixel, the PSF only matters through its
    width: a Gaussian of σ = 0.42·λN (Airy core) widened by the RMS wavefront error is used instead.
    """
    if lens.psf != "pupil" or isinstance(depth, torch.Tensor) or math.isfinite(lens.focus_distance_m):
        return lens
    lam_n = 0.6 * lens.f_number  # µm at 600 nm
    waves = math.sqrt(sum(float(v) ** 2 for v in lens.zernike.values()))
    sigma = 0.42 * lam_n * (1.0 + 4.0 * waves)
    if 4 * 2.44 * lam_n * (1.0 + 4.0 * waves) > pitch_um:
        return lens
    return dataclasses.replace(lens, psf="gaussian", gaussian_sigma_um=sigma)


def capture_burst(
    scene: Scene,
    *,
    camera: str | Path | Camera = "phone-main",
    n: int = 8,
    exposure_time: float | None = None,
    iso: float | None = None,
    f_number: float | None = None,
    size: tuple[int, int] | None = None,
    handshake: HandShake | bool | None = True,
    brackets: Sequence[float] | None = None,
    moving: Sequence[MovingObject] = (),
    reference: int = 0,
    seed: int = 0,
    noise: bool = True,
    device: torch.device | str | None = None,
    progress: Callable[[str], None] | None = None,
    truth_images: bool = True,
) -> Shot:
    """Capture ``n`` frames (or one per bracket, EV offsets from ``exposure_time``) with ground truth.

    ``truth_images=False`` skips the reference frame's clean camera-RGB and linear-sRGB images (their
    Truth fields are then None), for callers that only need the raw frames.

    ``handshake``: a HandShake, True for the camera's default, False/None for a tripod. ``moving``:
    objects that cross the scene. Deterministic: the same arguments and ``seed`` give identical frames.
    """
    if not isinstance(scene, Scene):
        raise ShapeError(f"capture needs an obscura.sim.scene.Scene; got {type(scene).__name__}")
    cam = load_camera(camera)
    from obscura.core.device import resolve_device

    dev = resolve_device(device) if device is not None else scene.device
    scene = scene.to(dev)
    frame_size = _frame_size(cam, size)
    sen = effective_sensor(cam.sensor, frame_size)
    f_no = float(f_number if f_number is not None else cam.lens.f_number)
    iso_v = float(iso if iso is not None else cam.iso)
    evs = [float(e) for e in brackets] if brackets is not None else [0.0] * int(n)
    if not 1 <= len(evs) <= 64:
        raise InvalidParameter(f"a burst needs 1 to 64 frames; got {len(evs)}")
    if any(not (math.isfinite(e) and -12 <= e <= 12) for e in evs):
        raise InvalidParameter(f"brackets must be EV offsets in [-12, 12]; got {list(brackets or [])}")
    if not 0 <= int(reference) < len(evs):
        raise InvalidParameter(f"reference must index a frame (0..{len(evs) - 1}); got {reference}")
    _check_settings(exposure_time=1.0, iso=iso_v, f_number=f_no, sen=sen)  # ISO and aperture before metering
    base_t = (
        float(exposure_time) if exposure_time is not None else metered_exposure_time(scene, f_number=f_no, iso=iso_v)
    )
    _check_settings(exposure_time=base_t, iso=iso_v, f_number=f_no, sen=sen)
    times = [base_t * 2.0**e for e in evs]
    for t in times:
        _check_settings(exposure_time=t, iso=iso_v, f_number=f_no, sen=sen)
    hs = cam.handshake if handshake is True else (handshake if isinstance(handshake, HandShake) else None)
    if hs is not None and hs.off:
        hs = None
    say = progress or (lambda _s: None)
    lens = _lens_for_pitch(_lens_at(cam.lens, f_no), sen.pixel_pitch_um, scene.depth)
    # The scene reaches the optics as pixel-area averages at the frame's resolution (charts integrate
    # each pixel's footprint, images are resampled with an area filter), so the pixel aperture is already
    # in the data: the PSF is sampled at pixel centres, or the aperture would blur twice.
    lens = dataclasses.replace(lens, fill_factor=0.0)
    curves = sensor_mod.sensitivities(sen)
    curves_t = torch.as_tensor(curves, dtype=torch.float32, device=dev)

    say("scene")
    rate_scene = sensor_mod.electron_rate(scene, sensor=sen, f_number=f_no, transmission=lens.transmission)
    srgb_scene = scene.linear_srgb() if truth_images else None
    if moving:
        patches = [_object_patch(o, scene) for o in moving]
        obj_rates = [
            sensor_mod.electron_rate(p, sensor=sen, f_number=f_no, transmission=lens.transmission) for p in patches
        ]
        obj_srgb = [p.linear_srgb() for p in patches]
    traj = (
        handshake_trajectory(hs, n=len(evs), exposure_times=times, seed=seed)
        if hs is not None
        else [[(0.0, 0.0, 0.0)] for _ in evs]
    )
    depth = scene.depth
    if isinstance(depth, torch.Tensor):  # the depth map moves with the scene
        depth = _resample(depth[None].to(dev), frame_size, (0.0, 0.0, 0.0))[0]

    psf_grid = None  # the same PSFs for every frame when the depth is one distance
    if not isinstance(depth, torch.Tensor) and lens.psf != "none":
        w020 = optics.defocus_waves(
            float(depth), focus_m=lens.focus_distance_m, focal_length_mm=lens.focal_length_mm, f_number=lens.f_number
        )
        psf_grid = _psf_grid(lens, frame_size, float(sen.pixel_pitch_um), curves.tobytes(), float(w020), str(dev))
    gain = None
    frames, metas, mosaics, motions, masks = [], [], [], [], []
    clean_camera = None
    seeds = np.random.SeedSequence([int(seed), 0x0B5C]).generate_state(len(evs))
    for i, (t, ev) in enumerate(zip(times, evs)):
        say(f"frame {i + 1}/{len(evs)}")
        positions = traj[i]
        rate, geometry_done = _render_frame_rate(rate_scene, frame_size, lens, positions)
        mask_i = None
        if moving:
            mask_i = torch.zeros(frame_size, device=dev, dtype=rate.dtype)
            layers = [  # coverage and texture of each object in this frame (the truth reuses them)
                (_object_coverage(o, frame_size, i, device=dev, dtype=rate.dtype),
                 _object_texture(o, frame_size, i, device=dev, dtype=rate.dtype))
                for o in moving
            ]  # fmt: skip
            for (cov, tex), orate in zip(layers, obj_rates):
                rate = rate * (1 - cov) + orate * (tex * cov)
                mask_i = torch.maximum(mask_i, cov)
            masks.append(mask_i)
        rate = optics.apply_lens(
            rate,
            lens=lens.replace(distortion="none", distortion_params=(), tca=(1.0, 1.0)) if geometry_done else lens,
            pixel_pitch_um=sen.pixel_pitch_um,
            channel_spectra=curves_t,
            depth=depth,
            psf_grid=psf_grid,
        ).clamp_min(0)  # bicubic warps and FFT convolution undershoot by ~1e-7 of the peak next to edges
        mosaic_rate = sensor_mod.sample_cfa(rate, sen.cfa)
        gen = torch.Generator(device=dev).manual_seed(int(seeds[i]))
        exp = sensor_mod.expose(mosaic_rate, sensor=sen, exposure_time=t, iso=iso_v, generator=gen, noise=noise)
        span = exp.white_level - exp.black_level
        gain = exp.gain_dn_per_e
        mosaics.append(((exp.clean - exp.black_level) / span).to(torch.float32))
        if i == reference and truth_images:
            clean_camera = (rate * (t * gain) / span).clamp(0, 1).to(torch.float32)
            srgb = sum(_resample(srgb_scene, frame_size, q) for q in positions) / len(positions)
            if moving:
                for (cov, tex), osrgb in zip(layers, obj_srgb):
                    srgb = srgb * (1 - cov) + osrgb * (tex * cov)
        mid = np.mean(np.asarray(positions), axis=0)
        motions.append(FrameMotion(float(mid[0]), float(mid[1]), float(mid[2]), float(t), float(ev)))
        meta = _meta(
            camera=cam, sen=sen, curves=curves, scene=scene, exposure_time=t, iso=iso_v, f_number=f_no, frame_index=i
        )
        metas.append(meta)
        frames.append(exp.raw.to(torch.float32))
    burst = Burst(torch.stack(frames), tuple(metas))
    noise_info = {
        "model": "variance = a·x + b per CFA plane, x = (DN − black)/(white − black)",
        "noise_profile": [list(p) for p in metas[reference].noise_profile or ()],
        "gain_dn_per_e": float(gain or 0.0),
        "sensor": dataclasses.asdict(sen),
    }
    settings = {
        "camera": cam.name,
        "scene": scene.name,
        "size": list(frame_size),
        "exposure_times": times,
        "brackets": evs,
        "iso": iso_v,
        "f_number": f_no,
        "seed": int(seed),
        "noise": bool(noise),
        "handshake": dataclasses.asdict(hs) if hs is not None else None,
        "moving": [dataclasses.asdict(o) for o in moving],
        "scene_luminance_cd_m2": float(scene.luminance),
        "illuminant": scene.illuminant,
    }
    truth = Truth(
        clean_camera=clean_camera,
        linear_srgb=srgb.to(torch.float32) if truth_images else None,
        clean_mosaics=torch.stack(mosaics),
        motion=tuple(motions),
        noise=noise_info,
        settings=settings,
        masks=torch.stack(masks) if moving else None,
        reference=int(reference),
    )
    return Shot(burst, truth)


def shoot(scene: Scene, *, camera: str | Path | Camera = "phone-main", **options: Any) -> Shot:
    """One frame with its ground truth (``capture_burst`` with ``n=1`` and no hand shake by default)."""
    options.setdefault("handshake", None)
    return capture_burst(scene, camera=camera, n=1, **options)


def capture(
    scene: Scene,
    *,
    camera: str | Path | Camera = "phone-main",
    exposure_time: float | None = None,
    iso: float | None = None,
    **options: Any,
) -> RawFrame:
    """Capture one raw frame of ``scene`` (see :func:`capture_burst` for the options)."""
    options.setdefault("truth_images", False)  # only the frame is returned
    return shoot(scene, camera=camera, exposure_time=exposure_time, iso=iso, **options).frame


# --------------------------------------------------------------------------------------- saving


def _write_float_tiff(x: torch.Tensor, path: Path, *, overwrite: bool) -> None:
    import tifffile

    from obscura.io.atomic import atomic_output

    arr = np.ascontiguousarray(x.detach().to("cpu", torch.float32).numpy())
    with atomic_output(path, overwrite=overwrite) as tmp:
        tifffile.imwrite(
            tmp, arr, photometric="minisblack", compression="zlib", compressionargs={"level": 1}, predictor=True
        )


def _write_json(obj: Any, path: Path, *, overwrite: bool) -> None:
    from obscura.io.atomic import atomic_output

    with atomic_output(path, overwrite=overwrite) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, default=str) + "\n")


def save_shot(shot: Shot, directory: str | Path, *, stem: str = "frame", overwrite: bool = False) -> list[Path]:
    """Write the frames as DNGs (``stem_00.dng`` …) and the ground truth in ``directory/truth/``.

    Truth files: ``clean_camera.tif`` (C, H, W), ``linear_srgb.tif`` (3, H, W), ``clean_mosaic_NN.tif``,
    ``mask_NN.tif`` (moving objects), ``motion.json``, ``noise.json``, ``capture.json`` — float32 TIFFs
    in normalized raw units (see :class:`Truth`). Nothing is overwritten without ``overwrite``.
    """
    from obscura.io.atomic import check_output_path
    from obscura.io.dng import write_dng

    d = Path(directory)
    n = len(shot.burst)
    dngs = [d / f"{stem}_{i:02d}.dng" for i in range(n)]
    t = d / "truth"
    tr = shot.truth
    images = [(tr.clean_camera, t / "clean_camera.tif"), (tr.linear_srgb, t / "linear_srgb.tif")]
    images = [(x, p) for x, p in images if x is not None]
    others = [p for _, p in images] + [t / "motion.json", t / "noise.json", t / "capture.json"]
    others += [t / f"clean_mosaic_{i:02d}.tif" for i in range(n)]
    if shot.truth.masks is not None:
        others += [t / f"mask_{i:02d}.tif" for i in range(n)]
    if d.exists() and not d.is_dir():
        raise InvalidParameter(f"{d}: the output must be a folder")
    try:
        t.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise WriteError(f"{t}: cannot create the output folder: {e.strerror or e}") from None
    for p in dngs + others:  # fail before writing anything
        check_output_path(p, overwrite=overwrite)
    for i, p in enumerate(dngs):
        write_dng(shot.burst[i], p, overwrite=overwrite)
    for x, p in images:
        _write_float_tiff(x, p, overwrite=overwrite)
    for i in range(n):
        _write_float_tiff(tr.clean_mosaics[i], t / f"clean_mosaic_{i:02d}.tif", overwrite=overwrite)
        if tr.masks is not None:
            _write_float_tiff(tr.masks[i], t / f"mask_{i:02d}.tif", overwrite=overwrite)
    motion = {
        "convention": "frame(x, y) = scene(R(-angle)·((x, y) - c - (dx, dy)) + c), c = image centre; pixels, degrees",
        "reference": tr.reference,
        "frames": [dataclasses.asdict(m) | {"file": dngs[i].name} for i, m in enumerate(tr.motion)],
    }
    _write_json(motion, t / "motion.json", overwrite=overwrite)
    _write_json(dict(tr.noise), t / "noise.json", overwrite=overwrite)
    _write_json(dict(tr.settings) | {"files": [p.name for p in dngs]}, t / "capture.json", overwrite=overwrite)
    return dngs + others
