"""Optics of the virtual camera: PSFs (pupil or Gaussian), field-varying blur, vignetting, distortion, lateral CA.

Every effect is a pure function on ``(C, H, W)`` float tensors (any device) configured by a :class:`Lens`;
:func:`apply_lens` composes them in the order light meets them in the model:
distortion → lateral CA → field-varying PSF (incl. pixel aperture and OLPF) → vignetting.

Conventions:

* Image coordinates are continuous pixels: the image spans ``[0, W] × [0, H]``, pixel ``i`` covers
  ``[i, i + 1)`` so its centre is ``i + 0.5`` (as in :mod:`obscura.isp.lens`); the optical centre is the
  image centre.
* The scene handed to the optics is *point-sampled* at the pixel centres (a band-limited scene). The PSFs
  therefore include the pixel aperture (a box of ``fill_factor × pitch``) and the optical low-pass filter;
  a scene that is already box-integrated over each pixel should use ``fill_factor = 0`` so the aperture is
  not counted twice. Sampling the aperture-integrated PSF at whole pixels is exact for PSFs of about a
  pixel or more; for much sharper PSFs the discrete kernel aliases (the sinc of the aperture is lost).
* Aberrations are Zernike coefficients in waves with Noll's RMS normalisation (Noll 1976); defocus from
  depth is the Seidel term ``W020 ρ²`` (Goodman 2005, §6.4).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F  # noqa: N812

from obscura.core.errors import InvalidParameter, ShapeError
from obscura.core.registry import Registry
from obscura.sim import spectral

__all__ = [
    "Lens",
    "lens_from_dict",
    "ZERNIKE_TERMS",
    "LENS_ZERNIKE_TERMS",
    "DISTORTION",
    "zernike_polynomial",
    "field_zernike",
    "pupil_function",
    "psf_pupil",
    "psf_gaussian",
    "defocus_waves",
    "channel_psfs",
    "field_psf_grid",
    "convolve_psf",
    "convolve_field_varying",
    "optical_low_pass",
    "vignetting_cos4",
    "vignetting_poly",
    "lens_vignetting",
    "apply_vignetting",
    "distortion_radius",
    "distortion_field",
    "distort",
    "lateral_ca",
    "apply_lens",
]

#: Zernike terms a pupil takes (Noll 1976 numbering j in brackets), coefficients in waves RMS.
ZERNIKE_TERMS = ("defocus", "astigmatism_45", "astigmatism_0", "coma_y", "coma_x", "spherical")
#: Zernike terms of a :class:`Lens` (values at the field corner where they vary with field height h:
#: coma ∝ h along the field direction, astigmatism ∝ h², defocus and spherical constant).
LENS_ZERNIKE_TERMS = ("defocus", "spherical", "coma", "astigmatism")
PSF_MODELS = ("pupil", "gaussian", "none")
_REF_WAVELENGTH_NM = 550.0


# --------------------------------------------------------------------------------------------- lens
@dataclass(frozen=True)
class Lens:
    """A lens profile: every field has a default, so ``Lens()`` is a sharp f/2.8 phone-like lens.

    ``zernike`` maps :data:`LENS_ZERNIKE_TERMS` to waves (RMS, at the image corner for coma/astigmatism);
    ``vignetting_k`` are lensfun's "pa" ``k1, k2, k3``; ``distortion`` is ``"none"``, ``"poly3"`` (k1),
    ``"poly5"`` (k1, k2) or ``"ptlens"`` (a, b, c) with ``distortion_params`` in lensfun's conventions;
    ``tca`` is the magnification of red and blue relative to green; ``olpf_shift_px`` the 4-dot
    splitter's separation (0 = no OLPF); ``psf_grid`` the (rows, cols) of field positions where PSFs are
    computed; ``psf_size_px`` the odd PSF support; ``fill_factor`` the pixel aperture's side relative to
    the pitch (0 = point sampling); ``wavelength_step_nm`` the spacing of the monochromatic PSFs summed
    into a channel's PSF; ``depth_layers`` the number of defocus layers used for a depth map.
    """

    name: str = "lens"
    focal_length_mm: float = 26.0
    f_number: float = 2.8
    psf: str = "pupil"
    gaussian_sigma_um: float = 1.0
    zernike: Mapping[str, float] = field(default_factory=dict)
    focus_distance_m: float = math.inf
    vignetting_cos4: bool = True
    vignetting_k: tuple[float, float, float] = (0.0, 0.0, 0.0)
    distortion: str = "none"
    distortion_params: tuple[float, ...] = ()
    tca: tuple[float, float] = (1.0, 1.0)
    olpf_shift_px: float = 0.0
    transmission: float = 0.9
    psf_grid: tuple[int, int] = (3, 4)
    psf_size_px: int = 15
    fill_factor: float = 1.0
    wavelength_step_nm: float = 30.0
    depth_layers: int = 4

    def __post_init__(self) -> None:
        def num(name: str, lo: float, hi: float, *, lo_open: bool = False) -> float:
            v = getattr(self, name)
            try:
                f = float(v)
            except (TypeError, ValueError):
                raise InvalidParameter(f"lens {name} must be a number; got {v!r}") from None
            if math.isnan(f) or f > hi or f < lo or (lo_open and f == lo):
                interval = f"({lo}, {hi}]" if lo_open else f"[{lo}, {hi}]"
                raise InvalidParameter(f"lens {name} must be in {interval}; got {v!r}")
            object.__setattr__(self, name, f)
            return f

        num("focal_length_mm", 0.0, 1e5, lo_open=True)
        num("f_number", 0.5, 1e3)
        num("gaussian_sigma_um", 0.0, 1e4)
        num("focus_distance_m", 0.0, math.inf, lo_open=True)
        num("olpf_shift_px", 0.0, 16.0)
        num("transmission", 0.0, 1.0, lo_open=True)
        num("fill_factor", 0.0, 1.0)
        num("wavelength_step_nm", 1.0, 400.0)
        if self.focus_distance_m * 1000.0 <= self.focal_length_mm:
            raise InvalidParameter(
                f"lens focus_distance_m must exceed the focal length; got {self.focus_distance_m} m "
                f"for a {self.focal_length_mm} mm lens"
            )
        if self.psf not in PSF_MODELS:
            raise InvalidParameter(f"lens psf must be one of {', '.join(PSF_MODELS)}; got {self.psf!r}")
        if not isinstance(self.zernike, Mapping):
            raise InvalidParameter(f"lens zernike must be a table of {LENS_ZERNIKE_TERMS}; got {self.zernike!r}")
        z = {}
        for k, v in self.zernike.items():
            if k not in LENS_ZERNIKE_TERMS:
                raise InvalidParameter(f"unknown lens zernike term {k!r}; valid: {', '.join(LENS_ZERNIKE_TERMS)}")
            z[k] = _finite(f"lens zernike {k}", v, bound=100.0)
        object.__setattr__(self, "zernike", z)
        object.__setattr__(self, "vignetting_cos4", bool(self.vignetting_cos4))
        object.__setattr__(self, "vignetting_k", _floats("lens vignetting_k", self.vignetting_k, 3))
        object.__setattr__(self, "tca", _floats("lens tca", self.tca, 2))
        if not all(0.5 < m < 2.0 for m in self.tca):
            raise InvalidParameter(f"lens tca magnifications must be in (0.5, 2); got {self.tca}")
        nparams = _DISTORTION_NPARAMS.get(self.distortion)
        if nparams is None:
            DISTORTION.get(self.distortion)  # raises UnknownMethod listing the models
        object.__setattr__(
            self, "distortion_params", _floats("lens distortion_params", self.distortion_params, nparams)
        )
        grid = _ints("lens psf_grid", self.psf_grid, 2)
        if not all(1 <= g <= 64 for g in grid):
            raise InvalidParameter(f"lens psf_grid must be two integers in 1..64; got {self.psf_grid!r}")
        object.__setattr__(self, "psf_grid", grid)
        size = _ints("lens psf_size_px", (self.psf_size_px,), 1)[0]
        if size < 1 or size > 255 or size % 2 == 0:
            raise InvalidParameter(f"lens psf_size_px must be an odd integer in 1..255; got {self.psf_size_px!r}")
        object.__setattr__(self, "psf_size_px", size)
        layers = _ints("lens depth_layers", (self.depth_layers,), 1)[0]
        if not 1 <= layers <= 32:
            raise InvalidParameter(f"lens depth_layers must be in 1..32; got {self.depth_layers!r}")
        object.__setattr__(self, "depth_layers", layers)

    def __hash__(self) -> int:  # the zernike table is a dict: hash its sorted items (lets callers cache PSFs)
        items = tuple((f.name, getattr(self, f.name)) for f in dataclasses.fields(self) if f.name != "zernike")
        return hash((items, tuple(sorted(self.zernike.items()))))

    def replace(self, **changes: Any) -> Lens:
        """A copy with ``changes`` applied (validated again)."""
        return dataclasses.replace(self, **changes)


def lens_from_dict(d: Mapping[str, Any]) -> Lens:
    """A :class:`Lens` from a TOML ``[lens]`` table (keys as the fields; ``focus_distance_m = "inf"`` allowed)."""
    if not isinstance(d, Mapping):
        raise InvalidParameter(f"lens table must be a mapping; got {type(d).__name__}")
    names = {f.name for f in dataclasses.fields(Lens)}
    unknown = sorted(set(d) - names)
    if unknown:
        raise InvalidParameter(f"unknown lens keys {unknown}; valid keys: {', '.join(sorted(names))}")
    kw = dict(d)
    for key in ("vignetting_k", "distortion_params", "tca", "psf_grid"):
        if key in kw and isinstance(kw[key], list):
            kw[key] = tuple(kw[key])
    if isinstance(kw.get("focus_distance_m"), str) and kw["focus_distance_m"].strip().lower() in ("inf", "infinity"):
        kw["focus_distance_m"] = math.inf
    return Lens(**kw)


def _finite(name: str, v: Any, *, bound: float = math.inf) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise InvalidParameter(f"{name} must be a number; got {v!r}") from None
    if not math.isfinite(f) or abs(f) > bound:
        raise InvalidParameter(f"{name} must be finite (|v| ≤ {bound}); got {v!r}")
    return f


def _floats(name: str, v: Any, n: int) -> tuple[float, ...]:
    try:
        vals = tuple(v)
    except TypeError:
        raise InvalidParameter(f"{name} must be {n} numbers; got {v!r}") from None
    if len(vals) != n:
        raise InvalidParameter(f"{name} must be {n} numbers; got {len(vals)}: {v!r}")
    return tuple(_finite(name, x) for x in vals)


def _ints(name: str, v: Any, n: int) -> tuple[int, ...]:
    try:
        vals = tuple(v)
    except TypeError:
        raise InvalidParameter(f"{name} must be {n} integers; got {v!r}") from None
    if len(vals) != n or not all(isinstance(x, int | np.integer) and not isinstance(x, bool) for x in vals):
        raise InvalidParameter(f"{name} must be {n} integers; got {v!r}")
    return tuple(int(x) for x in vals)


def _check_chw(x: Any, name: str = "x") -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise ShapeError(f"{name} must be a torch.Tensor (C, H, W); got {type(x).__name__}")
    if x.ndim != 3 or min(x.shape) < 1:
        raise ShapeError(f"{name} must be a (C, H, W) tensor; got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ShapeError(f"{name} must be floating point; got {x.dtype}")
    return x


def _check_size(size: Any) -> tuple[int, int]:
    try:
        h, w = (int(s) for s in size)
    except (TypeError, ValueError):
        raise ShapeError(f"size must be (H, W) positive integers; got {size!r}") from None
    if h < 1 or w < 1:
        raise ShapeError(f"size must be (H, W) positive integers; got {size!r}")
    return h, w


# ------------------------------------------------------------------------------------------ Zernike
def zernike_polynomial(term: str, rho: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """Noll-normalised Zernike polynomial ``term`` (one of :data:`ZERNIKE_TERMS`) on the unit pupil (Noll 1976).

    defocus √3(2ρ²−1), astigmatism_45 √6ρ² sin2θ, astigmatism_0 √6ρ² cos2θ, coma_y √8(3ρ³−2ρ) sinθ,
    coma_x √8(3ρ³−2ρ) cosθ, spherical √5(6ρ⁴−6ρ²+1); each has unit RMS over the pupil.
    """
    r2 = rho * rho
    if term == "defocus":
        return math.sqrt(3.0) * (2.0 * r2 - 1.0)
    if term == "astigmatism_45":
        return math.sqrt(6.0) * r2 * torch.sin(2.0 * theta)
    if term == "astigmatism_0":
        return math.sqrt(6.0) * r2 * torch.cos(2.0 * theta)
    if term == "coma_y":
        return math.sqrt(8.0) * (3.0 * r2 - 2.0) * rho * torch.sin(theta)
    if term == "coma_x":
        return math.sqrt(8.0) * (3.0 * r2 - 2.0) * rho * torch.cos(theta)
    if term == "spherical":
        return math.sqrt(5.0) * (6.0 * r2 * r2 - 6.0 * r2 + 1.0)
    raise InvalidParameter(f"unknown zernike term {term!r}; valid: {', '.join(ZERNIKE_TERMS)}")


def field_zernike(lens_zernike: Mapping[str, float], *, field: tuple[float, float] = (0.0, 0.0)) -> dict[str, float]:
    """Pupil Zernike coefficients at ``field = (fy, fx)`` (offsets from the centre, 1 = half-diagonal).

    For a rotationally symmetric lens (Seidel field dependence): spherical and defocus are constant, coma
    grows as h along the field direction (coma_x = coma·fx, coma_y = coma·fy) and astigmatism as h² with
    axis 2φ (astigmatism_0 = a·(fx² − fy²), astigmatism_45 = a·2·fx·fy).
    """
    fy, fx = (float(v) for v in field)
    z = dict(lens_zernike)
    out = {}
    for k in ("defocus", "spherical"):
        if z.get(k):
            out[k] = float(z[k])
    if z.get("coma"):
        out["coma_x"] = float(z["coma"]) * fx
        out["coma_y"] = float(z["coma"]) * fy
    if z.get("astigmatism"):
        out["astigmatism_0"] = float(z["astigmatism"]) * (fx * fx - fy * fy)
        out["astigmatism_45"] = float(z["astigmatism"]) * 2.0 * fx * fy
    return out


def _check_zernike(zern: Mapping[str, float] | None) -> dict[str, float]:
    if zern is None:
        return {}
    if not isinstance(zern, Mapping):
        raise InvalidParameter(f"zernike must be a mapping of {ZERNIKE_TERMS} to waves; got {zern!r}")
    out = {}
    for k, v in zern.items():
        if k not in ZERNIKE_TERMS:
            raise InvalidParameter(f"unknown zernike term {k!r}; valid: {', '.join(ZERNIKE_TERMS)}")
        out[k] = _finite(f"zernike {k}", v, bound=1000.0)
    return out


def pupil_function(
    n: int,
    *,
    radius: float,
    zernike: Mapping[str, float] | None = None,
    defocus_waves: float = 0.0,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """The complex pupil ``A·exp(2πi W)`` (n, n) complex64, a disc of ``radius`` samples about sample n//2.

    ``W = Σ c_j Z_j(ρ, θ) + W020 ρ²`` in waves (Noll Zernikes, Seidel defocus ``defocus_waves``). The
    amplitude has a one-sample anti-aliased edge (area coverage), so the pupil's size is exact to a
    fraction of a sample (Goodman 2005, §6.2).
    """
    if int(n) < 2 or radius <= 0 or radius > n / 2:
        raise InvalidParameter(f"pupil needs n ≥ 2 and 0 < radius ≤ n/2; got n={n}, radius={radius}")
    return _pupil_batch(int(n), float(radius), [_check_zernike(zernike)], [float(defocus_waves)], device)[0]


def _pupil_batch(
    n: int, radius: float, zerns: Sequence[Mapping[str, float]], defocus: Sequence[float], device: Any
) -> torch.Tensor:
    """(B, n, n) complex64 pupils sharing one geometry (one per Zernike set / defocus)."""
    c = torch.arange(n, dtype=torch.float64, device=device) - (n // 2)
    yy, xx = c[:, None], c[None, :]
    r = torch.sqrt(xx * xx + yy * yy)
    amp = (radius + 0.5 - r).clamp(0.0, 1.0)
    rho = (r / radius).clamp(max=1.0)
    theta = torch.atan2(yy, xx).expand_as(r)
    terms = sorted({t for z in zerns for t, v in z.items() if v})
    polys = {t: zernike_polynomial(t, rho, theta) for t in terms}
    rho2 = rho * rho
    phases = []
    for z, d in zip(zerns, defocus, strict=True):
        w = torch.zeros_like(r)
        for t, v in z.items():
            if v:
                w = w + v * polys[t]
        if d:
            w = w + d * rho2
        phases.append((2.0 * math.pi) * w)
    return torch.polar(amp.float().expand(len(phases), n, n), torch.stack(phases).float())


def _aperture_matrix(k: int, os: int, m: int, *, width_px: float, shift_px: float, device: Any) -> torch.Tensor:
    """(k, m) weights turning m oversampled samples (os per pixel, centre m//2) into k pixel samples.

    Row i is the overlap of each sample cell (1/os px wide) with the pixel aperture (a box ``width_px``
    wide, centred on pixel i) convolved with the OLPF's two dots at ±shift/2, normalised to sum 1.
    """
    t = (torch.arange(m, dtype=torch.float64, device=device) - m // 2) / os  # sample centres, px
    centres = torch.arange(k, dtype=torch.float64, device=device) - k // 2
    d = t[None, :] - centres[:, None]
    half_cell = 0.5 / os
    w = max(width_px, 1e-9)
    out = torch.zeros_like(d)
    dots = (-shift_px / 2.0, shift_px / 2.0) if shift_px > 0 else (0.0,)
    for s in dots:
        lo = torch.clamp(d - half_cell, min=s - w / 2.0)
        hi = torch.clamp(d + half_cell, max=s + w / 2.0)
        out = out + (hi - lo).clamp(min=0.0) / w / len(dots)
    return out


def _smooth(n: int) -> bool:
    for f in (3, 5, 7):
        while n % f == 0:
            n //= f
    return n == 1


def _fft_friendly(s_min: int, k_min: int) -> tuple[int, int]:
    """Odd (s, k) ≥ (s_min, k_min) whose product is 3-, 5-, 7-smooth (a fast odd FFT size), smallest product."""
    best = (s_min, k_min)
    best_m = math.inf
    for s in range(s_min, s_min + 8, 2):
        for k in range(k_min, k_min + 12, 2):
            if s * k < best_m and _smooth(s * k):
                best, best_m = (s, k), s * k
    return best


def _odd_at_least(v: float) -> int:
    n = max(1, math.ceil(v - 1e-9))
    return n if n % 2 else n + 1


def psf_pupil(
    *,
    wavelength_nm: float,
    f_number: float,
    pixel_pitch_um: float,
    zernike: Mapping[str, float] | None = None,
    defocus_waves: float = 0.0,
    size_px: int = 15,
    oversample: int = 3,
    fill_factor: float = 1.0,
    olpf_shift_px: float = 0.0,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Monochromatic PSF (size_px, size_px) float32 summing to 1: ``|FFT(pupil)|²`` (Goodman 2005, §6.2).

    Sampling: with an FFT of M samples and a pupil of radius R samples, the PSF sample spacing is
    ``dx = 2·λ·N·R / M`` (Fraunhofer: dx = λ f / (M du), D = 2R du, N = f / D). We want ``dx = p / s``
    (pitch p over an odd oversampling s) on ``M = s·K`` samples (K = size_px + 4 pixels, the margin
    against wrap-around), so ``R = K·p / (2 λ N)``. The OTF (pupil autocorrelation, support 4R) must fit
    in M: ``s ≥ 2p / (λN)``; ``s`` is raised to the next odd integer ≥ that and ≥ ``oversample``, so the
    intensity is alias-free and pixel centres fall on samples. The intensity is then integrated over the
    pixel aperture (a box ``fill_factor·p`` wide, convolved with the OLPF's ±``olpf_shift_px``/2 dots in
    each axis) by an exact cell-overlap weighting — the "convolve at the oversampled rate, then bin"
    step — cropped to ``size_px`` and normalised. When ``λN < pitch/16`` (s would exceed 32) the PSF is far
    below a pixel and a Gaussian of the Airy core's width is used instead (see ``_psf_subpixel``).
    """
    lam = _finite("wavelength_nm", wavelength_nm)
    n_f = _finite("f_number", f_number)
    pitch = _finite("pixel_pitch_um", pixel_pitch_um)
    if not 100.0 <= lam <= 20000.0:
        raise InvalidParameter(f"wavelength_nm must be in [100, 20000]; got {wavelength_nm}")
    if n_f < 0.5:
        raise InvalidParameter(f"f_number must be ≥ 0.5; got {f_number}")
    if not 0.0 < pitch <= 1000.0:
        raise InvalidParameter(f"pixel_pitch_um must be in (0, 1000]; got {pixel_pitch_um}")
    size = int(size_px)
    if size < 1 or size % 2 == 0 or size > 1023:
        raise InvalidParameter(f"size_px must be an odd integer in 1..1023; got {size_px}")
    if not 0.0 <= float(fill_factor) <= 1.0:
        raise InvalidParameter(f"fill_factor must be in [0, 1]; got {fill_factor}")
    if not 0.0 <= float(olpf_shift_px) <= 16.0:
        raise InvalidParameter(f"olpf_shift_px must be in [0, 16]; got {olpf_shift_px}")
    return _psf_pupil_batch(
        lam,
        n_f,
        pitch,
        [_check_zernike(zernike)],
        [_finite("defocus_waves", defocus_waves, bound=1000.0)],
        size=size,
        oversample=int(oversample),
        fill_factor=float(fill_factor),
        olpf_shift_px=float(olpf_shift_px),
        device=device,
    )[0]


def _psf_pupil_batch(
    lam: float,
    n_f: float,
    pitch: float,
    zerns: Sequence[Mapping[str, float]],
    defocus: Sequence[float],
    *,
    size: int,
    oversample: int,
    fill_factor: float,
    olpf_shift_px: float,
    device: Any,
) -> torch.Tensor:
    """(B, size, size) float32 PSFs at one wavelength, one per Zernike set (see :func:`psf_pupil`)."""
    q = pitch / (lam * 1e-3 * n_f)  # pixels per λN
    if 2.0 * q > _MAX_OVERSAMPLE:
        return _psf_subpixel(
            q, zerns, defocus, size=size, fill_factor=fill_factor, olpf_shift_px=olpf_shift_px, device=device
        )
    s, k = _fft_friendly(_odd_at_least(max(float(oversample), 2.0 * q)), size + 4 + 2 * math.ceil(olpf_shift_px / 2.0))
    m = s * k
    pupil = _pupil_batch(m, k * q / 2.0, zerns, defocus, device)
    field = torch.fft.fft2(pupil)
    inten = torch.fft.fftshift(field.real**2 + field.imag**2, dim=(-2, -1)).double()  # zero freq. at m//2 (m odd)
    a = _aperture_matrix(k, s, m, width_px=fill_factor, shift_px=olpf_shift_px, device=device)
    px = a @ inten @ a.T
    c = (k - size) // 2
    px = px[:, c : c + size, c : c + size]
    return (px / px.sum(dim=(-2, -1), keepdim=True)).to(torch.float32)


_MAX_OVERSAMPLE = 32  # beyond this (λN < pitch / 16) the pupil PSF is far below a pixel: see _psf_subpixel


def _psf_subpixel(
    q: float,
    zerns: Sequence[Mapping[str, float]],
    defocus: Sequence[float],
    *,
    size: int,
    fill_factor: float,
    olpf_shift_px: float,
    device: Any,
) -> torch.Tensor:
    """PSFs far smaller than a pixel (λN < pitch/16, e.g. huge pixels): a Gaussian of the same core width.

    Resolving the Airy pattern there would need FFTs of > 32 samples per pixel, yet after integration over
    the pixel the detail is invisible, so the PSF is taken as a Gaussian: the Airy core's σ = 0.42 λN
    (Zhang, Zerubia & Olivo-Marin 2007), widened in quadrature by the geometric blur of the aberrations
    (defocus disc radius 4·N·λ·|W020| → σ = radius/2; each Zernike term ~ 2·N·λ·|c| of spot σ).
    """
    out = []
    for z, d in zip(zerns, defocus, strict=True):
        ab = math.hypot(2.0 * abs(d), 2.0 * math.sqrt(sum(v * v for v in z.values())))  # in λN
        sigma = math.hypot(0.42, ab) / q
        out.append(psf_gaussian(sigma, size=size, fill_factor=fill_factor, olpf_shift_px=olpf_shift_px, device=device))
    return torch.stack(out)


def psf_gaussian(
    sigma_px: float,
    *,
    size: int = 15,
    fill_factor: float = 1.0,
    olpf_shift_px: float = 0.0,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Gaussian PSF of ``sigma_px`` integrated over the pixel aperture, (size, size) float32 summing to 1.

    Separable and exact (no oversampling needed): along each axis the weight of pixel offset i is
    ``Φ((i − s + w/2)/σ) − Φ((i − s − w/2)/σ)`` averaged over the OLPF dots s = ±shift/2, with w the
    aperture width ``fill_factor`` (px) and Φ the normal CDF; its MTF is ``exp(−2π²σ²f²)·sinc(w f)·cos(π s f)``.
    ``fill_factor = 0`` samples the Gaussian at the pixel centres.
    """
    sig = _finite("sigma_px", sigma_px)
    if sig < 0 or sig > 1e3:
        raise InvalidParameter(f"sigma_px must be in [0, 1000]; got {sigma_px}")
    size = int(size)
    if size < 1 or size % 2 == 0 or size > 1023:
        raise InvalidParameter(f"size must be an odd integer in 1..1023; got {size}")
    w = float(fill_factor)
    if not 0.0 <= w <= 1.0:
        raise InvalidParameter(f"fill_factor must be in [0, 1]; got {fill_factor}")
    shift = float(olpf_shift_px)
    if not 0.0 <= shift <= 16.0:
        raise InvalidParameter(f"olpf_shift_px must be in [0, 16]; got {olpf_shift_px}")
    i = torch.arange(size, dtype=torch.float64, device=device) - size // 2
    dots = (-shift / 2.0, shift / 2.0) if shift > 0 else (0.0,)
    g = torch.zeros_like(i)
    # a zero-width aperture samples the Gaussian at the pixel centres (limit of a narrow box). Sigma is
    # floored at 0.05 px (a point, to the pixel grid) so that an OLPF dot falling between two apertures
    # (fill_factor < 1) still lands somewhere.
    sig_eff = max(sig, 0.05)
    for s in dots:
        t = i - s
        if w == 0.0:
            g = g + torch.exp(-0.5 * (t / sig_eff) ** 2)
        else:
            r = 1.0 / (sig_eff * math.sqrt(2.0))
            g = g + 0.5 * (torch.erf((t + w / 2.0) * r) - torch.erf((t - w / 2.0) * r))
    if float(g.sum()) <= 0.0:
        raise InvalidParameter(f"PSF size {size} is too small for OLPF shift {shift} px")
    g = g / g.sum()
    return (g[:, None] * g[None, :]).to(torch.float32)


def defocus_waves(
    depth_m: float | torch.Tensor,
    *,
    focus_m: float,
    focal_length_mm: float,
    f_number: float,
    wavelength_nm: float = _REF_WAVELENGTH_NM,
) -> float | torch.Tensor:
    """Seidel defocus ``W020`` in waves of an object at ``depth_m`` with the lens focused at ``focus_m``.

    Thin lens (Gaussian lens formula): image distance ``v = 1/(1/f − 1/d)``; the sensor sits at the
    focus distance's image ``v_s``. A spherical wave converging to ``v_d`` seen on the sensor through a
    pupil of diameter ``D = f/N`` has ``W020 = (D²/8)(1/v_s − 1/v_d)``, i.e. ``Δz/(8N²)`` for a distant
    object (Goodman 2005, §6.4; Δz = v_d − v_s), in waves of λ; the geometric blur diameter is
    ``8·W020·λ·v_s/D``.
    Positive for objects nearer than the focus. ``depth_m`` may be a tensor (a depth map); ``inf`` allowed.
    """
    f = _finite("focal_length_mm", focal_length_mm) * 1e-3
    n_f = _finite("f_number", f_number)
    lam = _finite("wavelength_nm", wavelength_nm) * 1e-9
    if f <= 0 or n_f < 0.5 or lam <= 0:
        raise InvalidParameter(
            f"defocus needs focal_length_mm > 0, f_number ≥ 0.5, wavelength_nm > 0; got "
            f"{focal_length_mm}, {f_number}, {wavelength_nm}"
        )
    fm = float(focus_m)
    if math.isnan(fm) or fm <= f:
        raise InvalidParameter(f"focus_m must exceed the focal length ({f} m); got {focus_m}")
    v_focus = 1.0 / (1.0 / f - 1.0 / fm)
    pupil_d = f / n_f
    if isinstance(depth_m, torch.Tensor):
        d = depth_m.to(torch.float64)
        if not bool(torch.all(d > f)) or bool(torch.isnan(d).any()):
            raise InvalidParameter(f"depth must exceed the focal length ({f} m) everywhere; min {float(d.min())}")
        v = 1.0 / (1.0 / f - 1.0 / d)
        out_dtype = depth_m.dtype if depth_m.is_floating_point() else torch.float32
        return (pupil_d**2 / 8.0 * (1.0 / v_focus - 1.0 / v) / lam).to(out_dtype)
    dm = float(depth_m)
    if math.isnan(dm) or dm <= f:
        raise InvalidParameter(f"depth_m must exceed the focal length ({f} m); got {depth_m}")
    v = 1.0 / (1.0 / f - 1.0 / dm)
    return pupil_d**2 / 8.0 * (1.0 / v_focus - 1.0 / v) / lam


# ---------------------------------------------------------------------------------- channel PSFs
def _check_spectra(channel_spectra: Any) -> np.ndarray:
    s = channel_spectra.detach().cpu().numpy() if isinstance(channel_spectra, torch.Tensor) else channel_spectra
    s = np.asarray(s, dtype=np.float64)
    n = spectral.WAVELENGTHS.size
    if s.ndim == 1:
        s = s[None]
    if s.ndim != 2 or s.shape[1] != n or s.shape[0] < 1:
        raise ShapeError(f"channel_spectra must be (C, {n}) weights on spectral.WAVELENGTHS; got {s.shape}")
    if not np.all(np.isfinite(s)) or np.any(s < 0) or np.any(s.sum(axis=1) <= 0):
        raise InvalidParameter("channel_spectra must be finite, ≥ 0 and not all zero in any channel")
    return s


def _wavelength_nodes(spectra: np.ndarray, step_nm: float) -> tuple[np.ndarray, np.ndarray]:
    """Wavelength nodes about ``step_nm`` apart over WAVELENGTHS and the (C, n) channel weights on them.

    Each sample's weight is split between its two neighbouring nodes (linear hat functions), so every
    channel's total weight is kept.
    """
    wl = spectral.WAVELENGTHS
    n = max(2, round((wl[-1] - wl[0]) / step_nm) + 1)
    nodes = np.linspace(wl[0], wl[-1], n)
    u = (wl - nodes[0]) / (nodes[1] - nodes[0])
    i0 = np.clip(np.floor(u).astype(int), 0, n - 2)
    frac = u - i0
    a = np.zeros((n, wl.size))
    a[i0, np.arange(wl.size)] += 1.0 - frac
    a[i0 + 1, np.arange(wl.size)] += frac
    return nodes, spectra @ a.T


def channel_psfs(
    lens: Lens,
    *,
    pixel_pitch_um: float,
    channel_spectra: Any,
    field: tuple[float, float] = (0.0, 0.0),
    defocus_waves: float = 0.0,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Polychromatic PSFs (C, k, k) float32, one per channel, at ``field`` (fy, fx; 1 = half-diagonal).

    ``channel_spectra`` (C, L) weighs the wavelengths of :data:`spectral.WAVELENGTHS` for each channel
    (e.g. QE × scene spectrum); the channel PSF is the weighted mean of monochromatic :func:`psf_pupil`
    PSFs at nodes ``lens.wavelength_step_nm`` apart. ``defocus_waves`` is extra W020 at 550 nm (scaled
    by 550/λ at other wavelengths, as a fixed path difference). For ``lens.psf == "gaussian"`` every
    channel gets :func:`psf_gaussian` of σ = gaussian_sigma_um / pitch, widened in quadrature by the
    geometric defocus blur (a disc of radius 4·N·λ·|W020|, σ = radius / 2).
    """
    fy, fx = _floats("field", field, 2)
    return _channel_psfs_batch(lens, pixel_pitch_um, channel_spectra, [(fy, fx)], defocus_waves, device)[0]


def _channel_psfs_batch(
    lens: Lens,
    pixel_pitch_um: float,
    channel_spectra: Any,
    fields: Sequence[tuple[float, float]],
    dfw: float,
    device: Any,
) -> torch.Tensor:
    """(n_fields, C, k, k) channel PSFs; the pupil geometry and FFTs are shared across fields per wavelength."""
    if not isinstance(lens, Lens):
        raise InvalidParameter(f"lens must be an obscura.sim.optics.Lens; got {type(lens).__name__}")
    pitch = _finite("pixel_pitch_um", pixel_pitch_um)
    if not 0.0 < pitch <= 1000.0:
        raise InvalidParameter(f"pixel_pitch_um must be in (0, 1000]; got {pixel_pitch_um}")
    spectra = _check_spectra(channel_spectra)
    dfw = _finite("defocus_waves", dfw, bound=1000.0)
    c, k, nf = spectra.shape[0], lens.psf_size_px, len(fields)
    if lens.psf in ("none", "gaussian"):
        sig = 0.0
        if lens.psf == "gaussian":
            sig_def = 2.0 * lens.f_number * _REF_WAVELENGTH_NM * 1e-3 * abs(dfw) / pitch
            sig = math.hypot(lens.gaussian_sigma_um / pitch, sig_def)
        g = psf_gaussian(sig, size=k, fill_factor=lens.fill_factor, olpf_shift_px=lens.olpf_shift_px, device=device)
        return g.expand(nf, c, k, k).clone()
    zerns = [field_zernike(lens.zernike, field=f) for f in fields]
    nodes, weights = _wavelength_nodes(spectra, lens.wavelength_step_nm)
    used = np.flatnonzero(weights.sum(axis=0) > 0)
    wn = weights[:, used] / weights[:, used].sum(axis=1, keepdims=True)
    out = torch.zeros((nf, c, k, k), dtype=torch.float32, device=device)
    for col, j in enumerate(used):
        scale = _REF_WAVELENGTH_NM / float(nodes[j])  # a fixed path difference is fewer waves at longer λ
        mono = _psf_pupil_batch(
            float(nodes[j]),
            lens.f_number,
            pitch,
            [{t: v * scale for t, v in z.items()} for z in zerns],
            [dfw * scale] * nf,
            size=k,
            oversample=3,
            fill_factor=lens.fill_factor,
            olpf_shift_px=lens.olpf_shift_px,
            device=device,
        )  # (nf, k, k)
        out += torch.tensor(wn[:, col], dtype=torch.float32, device=mono.device)[None, :, None, None] * mono[:, None]
    return out


def field_psf_grid(
    lens: Lens,
    *,
    size: tuple[int, int],
    pixel_pitch_um: float,
    channel_spectra: Any,
    grid: tuple[int, int] | None = None,
    defocus_waves: float = 0.0,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """PSFs (gy, gx, C, k, k) at the centres of a gy × gx grid of tiles over an image of ``size`` (H, W).

    The field position of tile (i, j) is its centre's offset from the image centre over the half-diagonal;
    aberrations follow :func:`field_zernike` (coma ∝ h, astigmatism ∝ h², spherical constant).
    """
    h, w = _check_size(size)
    gy, gx = _ints("grid", lens.psf_grid if grid is None else grid, 2)
    if not (1 <= gy <= 64 and 1 <= gx <= 64):
        raise InvalidParameter(f"grid must be two integers in 1..64; got {grid!r}")
    half_diag = 0.5 * math.hypot(h, w)
    fields = [
        (((i + 0.5) * h / gy - h / 2.0) / half_diag, ((j + 0.5) * w / gx - w / 2.0) / half_diag)
        for i in range(gy)
        for j in range(gx)
    ]
    psfs = _channel_psfs_batch(lens, pixel_pitch_um, channel_spectra, fields, defocus_waves, device)
    return psfs.reshape(gy, gx, *psfs.shape[1:])


# ----------------------------------------------------------------------------------- convolution
def _block_fft_size(k: int, tile: int) -> int:
    """FFT block size: a power of two ≥ 2k, at most 256, with blocks no larger than about half a tile."""
    fs = 256
    while fs // 2 >= 2 * k and fs - k + 1 > max(tile // 2, 16):
        fs //= 2
    while fs < 2 * k:
        fs *= 2
    return fs


def _node_weights(
    n_blocks: int, block: int, length: int, nodes: int, *, dtype: torch.dtype, device: Any
) -> torch.Tensor:
    """(n_blocks, nodes) bilinear weights of the tile-centre nodes at each block's centre (clamped at the ends)."""
    # the last block may run past the image: use the centre of its part inside the image
    starts = torch.arange(n_blocks, dtype=torch.float64) * block
    centres = (starts + torch.minimum(starts + block, torch.tensor(float(length)))) / 2.0
    u = (centres / (length / nodes) - 0.5).clamp(0.0, nodes - 1.0)
    i0 = torch.clamp(torch.floor(u).long(), max=max(nodes - 2, 0))
    frac = u - i0
    wgt = torch.zeros(n_blocks, nodes, dtype=torch.float64)
    wgt[torch.arange(n_blocks), i0] += 1.0 - frac
    if nodes > 1:
        wgt[torch.arange(n_blocks), i0 + 1] += frac
    return wgt.to(device=device, dtype=dtype)


def convolve_field_varying(x: torch.Tensor, psf_grid: torch.Tensor) -> torch.Tensor:
    """Convolve (C, H, W) with PSFs that vary over the field: ``psf_grid`` (gy, gx, C or 1, k, k).

    Grid PSF (i, j) belongs to the centre of tile (i, j) of a gy × gx tiling. The image is cut into blocks
    of B px (B ≤ about half a tile); each block is convolved (FFT overlap-save, Stockham 1966) with the
    bilinear interpolation of the four surrounding grid PSFs at the block's centre — which equals bilinearly
    blending those four tiles' results there — so the PSF varies continuously, in steps of at most a
    quarter of the tile-to-tile difference. The interpolation is done on the PSFs' spectra (linear), so only
    one forward and one inverse FFT per block and channel are needed. Beyond the image the scene is
    continued by replicating its edge. Energy is kept: PSFs summing to 1 keep a flat field flat.
    """
    x = _check_chw(x)
    if not isinstance(psf_grid, torch.Tensor) or psf_grid.ndim != 5:
        raise ShapeError(f"psf_grid must be a (gy, gx, C, k, k) tensor; got {_shape(psf_grid)}")
    gy, gx, cp, k, k2 = psf_grid.shape
    c, h, w = x.shape
    if k != k2 or k % 2 == 0 or cp not in (1, c) or gy < 1 or gx < 1:
        raise ShapeError(
            f"psf_grid must be (gy, gx, {c} or 1, k, k) with k odd; got {tuple(psf_grid.shape)} for x {tuple(x.shape)}"
        )
    p = k // 2
    fs = _block_fft_size(k, min(h // gy, w // gx) if gy * gx > 1 else 4096)
    b = fs - (k - 1)
    nby, nbx = -(-h // b), -(-w // b)
    xp = (
        F.pad(x[None], (p, nbx * b - w + p, p, nby * b - h + p), mode="replicate")[0]
        if p
        else (F.pad(x[None], (0, nbx * b - w, 0, nby * b - h), mode="replicate")[0])
    )
    cdtype = torch.complex128 if x.dtype == torch.float64 else torch.complex64
    spec = torch.fft.rfft2(psf_grid.to(device=x.device, dtype=x.dtype), s=(fs, fs)).to(cdtype)  # (gy, gx, cp, fs, fr)
    wy = _node_weights(nby, b, h, gy, dtype=cdtype, device=x.device)
    wx = _node_weights(nbx, b, w, gx, dtype=cdtype, device=x.device)
    # interpolate along x once: (gy, nbx, cp, fs, fr); along y per chunk of block rows (a matmul each)
    spec_x = torch.tensordot(wx, spec, dims=([1], [1])).transpose(0, 1).contiguous()
    out = torch.empty((c, nby * b, nbx * b), dtype=x.dtype, device=x.device)
    s0, s1, s2 = xp.stride()
    rows_per_chunk = max(1, 64 // nbx)
    for r0 in range(0, nby, rows_per_chunk):
        r1 = min(nby, r0 + rows_per_chunk)
        view = xp.as_strided((r1 - r0, nbx, c, fs, fs), (b * s1, b * s2, s0, s1, s2), xp.storage_offset() + r0 * b * s1)
        xf = torch.fft.rfft2(view)
        xf.mul_(torch.tensordot(wy[r0:r1], spec_x, dims=1))
        y = torch.fft.irfft2(xf, s=(fs, fs))[..., k - 1 :, k - 1 :]  # (rows, nbx, c, b, b), valid part
        out[:, r0 * b : r1 * b].view(c, r1 - r0, b, nbx, b).copy_(y.permute(2, 0, 3, 1, 4))
    if out.shape[1:] == (h, w):
        return out
    return out[:, :h, :w].contiguous()


def convolve_psf(x: torch.Tensor, psf: torch.Tensor) -> torch.Tensor:
    """Convolve (C, H, W) with one PSF, (k, k) or (C, k, k) (FFT overlap-save; edges replicated)."""
    x = _check_chw(x)
    if not isinstance(psf, torch.Tensor) or psf.ndim not in (2, 3):
        raise ShapeError(f"psf must be a (k, k) or (C, k, k) tensor; got {_shape(psf)}")
    if psf.ndim == 2:
        psf = psf[None]
    return convolve_field_varying(x, psf[None, None])


def _shape(x: object) -> object:
    return tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__


def optical_low_pass(x: torch.Tensor, *, shift_px: float) -> torch.Tensor:
    """4-dot birefringent OLPF: the mean of four copies shifted by (±shift/2, ±shift/2) (Greivenkamp 1990).

    Fractional shifts use linear interpolation (so for sub-pixel shifts this also blurs a little more
    than the ideal splitter, whose MTF is |cos(π·shift·f)| per axis); edges are replicated.
    :func:`apply_lens` folds the OLPF into the PSF at the oversampled rate instead, which is exact.
    """
    x = _check_chw(x)
    s = float(shift_px)
    if not math.isfinite(s) or s < 0 or s > 16:
        raise InvalidParameter(f"shift_px must be in [0, 16]; got {shift_px}")
    if s == 0:
        return x.clone()

    def shifted(t: torch.Tensor, d: float, dim: int) -> torch.Tensor:
        n = t.shape[dim]
        pos = torch.arange(n, dtype=torch.float64, device=t.device) - d
        pos = pos.clamp(0, n - 1)
        i0 = pos.floor().long().clamp(max=n - 1)
        i1 = (i0 + 1).clamp(max=n - 1)
        fr = (pos - i0).to(t.dtype)
        shape = [1] * t.ndim
        shape[dim] = n
        return t.index_select(dim, i0) * (1 - fr).view(shape) + t.index_select(dim, i1) * fr.view(shape)

    ax = 0.5 * (shifted(x, s / 2, 2) + shifted(x, -s / 2, 2))
    return 0.5 * (shifted(ax, s / 2, 1) + shifted(ax, -s / 2, 1))


# ------------------------------------------------------------------------------------- vignetting
def _radius2_px(h: int, w: int, *, dtype: torch.dtype, device: Any) -> torch.Tensor:
    """Squared distance (H, W) of each pixel centre from the image centre, in pixels²."""
    y = torch.arange(h, dtype=torch.float64, device=device) + 0.5 - h / 2.0
    x = torch.arange(w, dtype=torch.float64, device=device) + 0.5 - w / 2.0
    return (y * y).to(dtype)[:, None] + (x * x).to(dtype)[None, :]


def vignetting_cos4(
    size: tuple[int, int], *, focal_length_px: float, dtype: torch.dtype = torch.float32, device: Any = None
) -> torch.Tensor:
    """Natural vignetting gain (H, W): ``cos⁴θ`` with ``θ = atan(r / f)``, r the distance from the centre (px)."""
    h, w = _check_size(size)
    f = _finite("focal_length_px", focal_length_px)
    if f <= 0:
        raise InvalidParameter(f"focal_length_px must be > 0; got {focal_length_px}")
    r2 = _radius2_px(h, w, dtype=dtype, device=device)
    return (1.0 + r2 * (1.0 / (f * f))).square().reciprocal()


def vignetting_poly(
    size: tuple[int, int],
    *,
    k1: float,
    k2: float = 0.0,
    k3: float = 0.0,
    dtype: torch.dtype = torch.float32,
    device: Any = None,
) -> torch.Tensor:
    """lensfun's "pa" vignetting gain (H, W): ``1 + k1 r² + k2 r⁴ + k3 r⁶``, r = 1 at the image corner."""
    h, w = _check_size(size)
    a, b, c = (_finite(n, v) for n, v in (("k1", k1), ("k2", k2), ("k3", k3)))
    r2 = _radius2_px(h, w, dtype=dtype, device=device) * (1.0 / (0.25 * (h * h + w * w)))
    g = 1.0 + r2 * (a + r2 * (b + r2 * c))
    if float(g.min()) < 0:
        raise InvalidParameter(f"vignetting k1, k2, k3 = {a}, {b}, {c} give a negative gain in the image")
    return g.to(dtype)


def lens_vignetting(
    lens: Lens, *, size: tuple[int, int], pixel_pitch_um: float, dtype: torch.dtype = torch.float32, device: Any = None
) -> torch.Tensor:
    """The lens's vignetting gain (H, W): cos⁴ (if enabled, f in pixels = focal length / pitch) × poly."""
    h, w = _check_size(size)
    g = torch.ones((), dtype=dtype, device=device)
    if lens.vignetting_cos4:
        f = lens.focal_length_mm * 1000.0 / float(pixel_pitch_um)
        g = vignetting_cos4((h, w), focal_length_px=f, dtype=dtype, device=device)
    if any(lens.vignetting_k):
        k1, k2, k3 = lens.vignetting_k
        g = g * vignetting_poly((h, w), k1=k1, k2=k2, k3=k3, dtype=dtype, device=device)
    return g.expand(h, w)


def apply_vignetting(x: torch.Tensor, gain: torch.Tensor, *, in_place: bool = False) -> torch.Tensor:
    """``x`` (C, H, W) times the gain map (H, W); ``in_place=True`` scales ``x`` itself."""
    x = _check_chw(x)
    if not isinstance(gain, torch.Tensor) or tuple(gain.shape) != tuple(x.shape[1:]):
        raise ShapeError(f"gain must be a tensor of shape {tuple(x.shape[1:])}; got {_shape(gain)}")
    gain = gain.to(device=x.device, dtype=x.dtype)[None]
    return x.mul_(gain) if in_place else x * gain


# ------------------------------------------------------------------------------------- distortion
DISTORTION = Registry("distortion")
_DISTORTION_NPARAMS = {"none": 0, "poly3": 1, "poly5": 2, "ptlens": 3}


@DISTORTION.register("none")
def _dist_none(ru: torch.Tensor) -> torch.Tensor:
    return ru


@DISTORTION.register("poly3")
def distortion_poly3(ru: torch.Tensor, k1: float) -> torch.Tensor:
    """lensfun poly3: ``r_d = r_u (1 − k1 + k1 r_u²)``."""
    return ru * (1.0 - k1 + k1 * ru * ru)


@DISTORTION.register("poly5")
def distortion_poly5(ru: torch.Tensor, k1: float, k2: float) -> torch.Tensor:
    """lensfun poly5: ``r_d = r_u (1 + k1 r_u² + k2 r_u⁴)``."""
    r2 = ru * ru
    return ru * (1.0 + k1 * r2 + k2 * r2 * r2)


@DISTORTION.register("ptlens")
def distortion_ptlens(ru: torch.Tensor, a: float, b: float, c: float) -> torch.Tensor:
    """lensfun/PanoTools ptlens: ``r_d = r_u (a r_u³ + b r_u² + c r_u + 1 − a − b − c)``."""
    return ru * (((a * ru + b) * ru + c) * ru + 1.0 - a - b - c)


def _dist_params(model: str, params: Sequence[float]) -> tuple[Callable[..., torch.Tensor], tuple[float, ...]]:
    fn = DISTORTION.get(model)
    return fn, _floats(f"{model} params", params, _DISTORTION_NPARAMS[model])


def distortion_radius(ru: torch.Tensor | float, *, model: str, params: Sequence[float] = ()) -> torch.Tensor | float:
    """The distorted radius ``r_d`` of undistorted ``r_u`` under lensfun ``model`` (r = 1 at half the shorter side)."""
    fn, pr = _dist_params(model, params)
    if isinstance(ru, torch.Tensor):
        return fn(ru, *pr)
    return float(fn(torch.tensor(float(ru), dtype=torch.float64), *pr))


def _undistort_radius(
    rd: torch.Tensor, fn: Callable[..., torch.Tensor], pr: tuple[float, ...], *, init: torch.Tensor | None = None
) -> torch.Tensor:
    """Solve ``fn(r_u) = r_d`` for r_u by Newton iterations (numeric derivative) from ``init``, float64."""
    ru = (rd if init is None else init).clone()
    eps = 1e-6
    for _ in range(30):
        f = fn(ru, *pr) - rd
        d = (fn(ru + eps, *pr) - fn(ru - eps, *pr)) / (2 * eps)
        d = torch.where(d.abs() < 1e-6, torch.ones_like(d), d)
        step = f / d
        ru = (ru - step).clamp(min=0.0)
        if float(step.abs().max()) < 1e-12:
            break
    return ru


def distortion_field(
    size: tuple[int, int],
    model: str,
    params: Sequence[float] = (),
    *,
    magnification: float = 1.0,
    dtype: torch.dtype = torch.float32,
    device: Any = None,
    _at: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> torch.Tensor:
    """Source coordinates (2, H, W) = (x, y) in continuous pixels (centre of pixel i at i + 0.5).

    Output pixel at distorted radius ``r_d`` (lensfun normalisation: r = 1 at half the shorter image side,
    about the image centre) takes the scene at the undistorted ``r_u`` with ``model(r_u) = r_d`` (solved by
    Newton's method on the model's monotonic branch; where a strong barrel folds over before the image
    corner, pixels beyond the fold keep the fold's ratio r_u / r_d); ``magnification`` m further scales
    the image about the centre (lateral CA: the point at r appears at m·r).
    """
    h, w = _check_size(size)
    fn, pr = _dist_params(model, params)
    m = _finite("magnification", magnification)
    if not 0.1 < m < 10:
        raise InvalidParameter(f"magnification must be in (0.1, 10); got {magnification}")
    unit = min(h, w) / 2.0
    work = torch.float64 if dtype == torch.float64 else torch.float32
    iy, ix = (
        _at
        if _at is not None
        else (
            torch.arange(h, dtype=torch.float64, device=device),
            torch.arange(w, dtype=torch.float64, device=device),
        )
    )
    y = ((iy + 0.5 - h / 2.0) / unit).to(work)[:, None]
    x = ((ix + 0.5 - w / 2.0) / unit).to(work)[None, :]
    if model == "none":
        scale = torch.full((1, 1), 1.0 / m, dtype=work, device=device)
    else:
        # r_u / r_d as a function of r_d, solved once on a fine 1-D table (Newton) and interpolated per pixel
        rd = torch.sqrt(y * y + x * x) * (1.0 / m)
        r_max = math.hypot(h, w) / 2.0 / unit / m * 1.001
        n = 16385
        rd_t = torch.linspace(0.0, r_max, n, dtype=torch.float64, device=device)
        # the monotonic branch of the model from the centre out: a strong barrel folds over (r_d stops
        # growing) somewhere; beyond that radius the source keeps the fold's r_u / r_d (documented)
        ru_f = torch.linspace(0.0, 4.0 * r_max + 1.0, 65537, dtype=torch.float64, device=device)
        rd_f = fn(ru_f, *pr)
        bad = torch.nonzero(rd_f.diff() <= 0)
        fold = int(bad[0]) if bad.numel() else ru_f.numel() - 1
        if fold < 1:
            raise InvalidParameter(f"{model} distortion {tuple(pr)} is not invertible: r_d does not grow with r_u")
        ru_f, rd_f = ru_f[: fold + 1], rd_f[: fold + 1]
        rd_star = float(rd_f[-1])
        target = rd_t.clamp(max=rd_star)
        j = torch.searchsorted(rd_f, target).clamp(1, fold)
        t = (target - rd_f[j - 1]) / (rd_f[j] - rd_f[j - 1])
        ru_t = _undistort_radius(target, fn, pr, init=ru_f[j - 1] + t * (ru_f[j] - ru_f[j - 1]))
        ru_t = torch.where(rd_t > rd_star, rd_t * (float(ru_f[-1]) / rd_star), ru_t)
        ratio_t = torch.empty_like(rd_t)
        ratio_t[1:] = ru_t[1:] / rd_t[1:]
        ratio_t[0] = ratio_t[1]
        u = (rd * ((n - 1) / r_max)).clamp(0.0, n - 1.0)
        i0 = u.floor().long().clamp(max=n - 2)
        frac = u - i0.to(work)
        rt = ratio_t.to(work)
        scale = (rt[i0] * (1.0 - frac) + rt[i0 + 1] * frac) * (1.0 / m)
    sx = x * scale * unit + w / 2.0
    sy = y * scale * unit + h / 2.0
    return torch.stack(torch.broadcast_tensors(sx, sy)).to(dtype)


_INTERP = ("bilinear", "bicubic")


def distort(
    x: torch.Tensor, *, model: str = "poly3", params: Sequence[float] = (), interpolation: str = "bilinear"
) -> torch.Tensor:
    """Geometric distortion (lensfun ``model``): what the sensor records at r_d is the scene at r_u.

    Resampled with ``grid_sample``, bilinear by default: it reproduces linear ramps, so positions are
    exact (torch's bicubic uses Keys' a = −0.75, which does not, and moved a blob's centroid by 0.04 px
    in our tests), and it never overshoots; it softens a fractional shift slightly. ``"bicubic"`` is
    available (clamped at 0, radiance is never negative). Beyond the frame the edge is replicated.
    """
    x = _check_chw(x)
    if interpolation not in _INTERP:
        raise InvalidParameter(f"interpolation must be one of {', '.join(_INTERP)}; got {interpolation!r}")
    return _geometry(x, model, params, (1.0,) * x.shape[0], interpolation)


def lateral_ca(
    x: torch.Tensor, *, magnification: tuple[float, float] = (1.0, 1.0), interpolation: str = "bilinear"
) -> torch.Tensor:
    """Lateral chromatic aberration: red (plane 0) and blue (plane 2) scaled by (m_r, m_b) about the centre.

    A point imaged at radius r in green lies at m·r in red/blue. Needs 3 planes (a 1-plane image is
    returned unchanged: a monochrome sensor has no colour planes to shift).
    """
    x = _check_chw(x)
    mr, mb = _floats("magnification", magnification, 2)
    if not (0.5 < mr < 2 and 0.5 < mb < 2):
        raise InvalidParameter(f"magnification must be in (0.5, 2); got {magnification}")
    if interpolation not in _INTERP:
        raise InvalidParameter(f"interpolation must be one of {', '.join(_INTERP)}; got {interpolation!r}")
    if x.shape[0] == 1 or (mr == 1.0 and mb == 1.0):
        return x.clone()
    if x.shape[0] != 3:
        raise ShapeError(f"lateral_ca needs a (3, H, W) or (1, H, W) tensor; got {tuple(x.shape)}")
    return _geometry(x, "none", (), (mr, 1.0, mb), interpolation)


def _geometry(
    x: torch.Tensor, model: str, params: Sequence[float], mags: Sequence[float], interpolation: str
) -> torch.Tensor:
    """Distortion and per-plane magnification in one resampling.

    The source field is smooth, so it is solved exactly (float64) on a grid every ``_FIELD_STEP`` pixels
    and interpolated bilinearly to every pixel. Measured on 4000 × 3000 against :func:`distortion_field`:
    0.0005 px for poly3 k1 = −0.02, 0.008 px for poly5 (0.05, −0.02), 0.037 px for ptlens (0, −0.06, 0)
    (which nearly folds over at the corners); the full field would cost seconds instead of milliseconds.
    """
    h, w = x.shape[1:]
    coarse = _coarse_field((h, w), model, params, mags, x.device)
    # to grid_sample's normalised coordinates (align_corners=False: -1 and +1 are the image's outer edges),
    # then bilinearly up to every pixel (float32 keeps positions to ~1e-4 px on a 4000 px side)
    scale = torch.tensor([2.0 / w, 2.0 / h], dtype=torch.float64, device=x.device)[None, :, None, None]
    coarse = (coarse * scale - 1.0).to(x.dtype)
    grid = F.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=True).permute(0, 2, 3, 1)
    out = F.grid_sample(x[:, None], grid, mode=interpolation, padding_mode="border", align_corners=False)[:, 0]
    return out.clamp(min=0.0) if interpolation == "bicubic" else out


def _coarse_field(
    size: tuple[int, int], model: str, params: Sequence[float], mags: Sequence[float], device: Any
) -> torch.Tensor:
    """Source coordinates (C, 2, ny, nx) (continuous px, float64) of the distortion, one plane per
    magnification, solved exactly at pixels linspace(0, H − 1, ny) × linspace(0, W − 1, nx), a grid every
    ``_FIELD_STEP`` pixels (the field is smooth; see :func:`_geometry`)."""
    h, w = size
    ny, nx = max(2, -(-(h - 1) // _FIELD_STEP) + 1), max(2, -(-(w - 1) // _FIELD_STEP) + 1)
    at = (
        torch.linspace(0.0, h - 1.0, ny, dtype=torch.float64, device=device),
        torch.linspace(0.0, w - 1.0, nx, dtype=torch.float64, device=device),
    )
    return torch.stack(
        [
            distortion_field((h, w), model, params, magnification=m, dtype=torch.float64, device=device, _at=at)
            for m in mags
        ]
    )


_FIELD_STEP = 4


def _plane_magnifications(lens: Lens, planes: int) -> tuple[float, ...]:
    """Lateral-CA magnification per plane: ``(m_r, 1, m_b)`` for 3 planes, ``(1,)`` otherwise."""
    return (lens.tca[0], 1.0, lens.tca[1]) if planes == 3 else (1.0,)


def _bends(lens: Lens, planes: int) -> bool:
    """Whether the lens bends an image of ``planes`` planes (distortion or lateral CA)."""
    return lens.distortion != "none" or any(m != 1.0 for m in _plane_magnifications(lens, planes))


# --------------------------------------------------------------------------------------- the lens
def apply_lens(
    x: torch.Tensor,
    *,
    lens: Lens,
    pixel_pitch_um: float,
    channel_spectra: Any,
    depth: float | torch.Tensor = math.inf,
    psf_grid: torch.Tensor | None = None,
    interpolation: str = "bilinear",
) -> torch.Tensor:
    """The lens's image of ``x`` (C, H, W): distortion → lateral CA → field-varying PSF → vignetting.

    Distortion and lateral CA are one resampling (:func:`distortion_field` per plane, ``grid_sample``);
    the PSFs (:func:`field_psf_grid`, incl. pixel aperture and OLPF) are convolved with
    :func:`convolve_field_varying`; vignetting is :func:`lens_vignetting`. ``psf_grid`` may pass PSFs
    computed before (to reuse across a burst; then ``depth`` must be one distance).

    ``depth`` is one distance (m) or an (H, W) map. With a map, ``lens.depth_layers`` defocus levels
    spanning the map's W020 range are each blurred with their own PSF grid and blended per pixel by linear
    interpolation in W020 (each pixel takes the blur of its own depth): occlusion at depth edges is not
    modelled (a background does not spill behind a nearer edge), the usual layered-depth approximation.
    """
    x = _check_chw(x)
    if not isinstance(lens, Lens):
        raise InvalidParameter(f"lens must be an obscura.sim.optics.Lens; got {type(lens).__name__}")
    if x.shape[0] not in (1, 3):
        raise ShapeError(f"apply_lens needs (3, H, W) or (1, H, W); got {tuple(x.shape)}")
    pitch = _finite("pixel_pitch_um", pixel_pitch_um)
    if not 0.0 < pitch <= 1000.0:
        raise InvalidParameter(f"pixel_pitch_um must be in (0, 1000]; got {pixel_pitch_um}")
    spectra = _check_spectra(channel_spectra)
    c, h, w = x.shape
    if spectra.shape[0] != c:
        raise ShapeError(f"channel_spectra must have one row per plane ({c}); got {spectra.shape}")
    out = x
    if _bends(lens, c):
        if interpolation not in _INTERP:
            raise InvalidParameter(f"interpolation must be one of {', '.join(_INTERP)}; got {interpolation!r}")
        out = _geometry(out, lens.distortion, lens.distortion_params, _plane_magnifications(lens, c), interpolation)

    def grid_for(dfw: float) -> torch.Tensor:
        return field_psf_grid(
            lens, size=(h, w), pixel_pitch_um=pitch, channel_spectra=spectra, defocus_waves=dfw, device=x.device
        )

    def w020(d: float | torch.Tensor) -> float | torch.Tensor:
        return defocus_waves(
            d, focus_m=lens.focus_distance_m, focal_length_mm=lens.focal_length_mm, f_number=lens.f_number
        )

    if isinstance(depth, torch.Tensor) and depth.ndim == 0:
        depth = float(depth)
    if psf_grid is not None:
        if isinstance(depth, torch.Tensor):
            raise InvalidParameter("psf_grid given with a depth map: pass one distance, or no psf_grid")
        out = convolve_field_varying(out, psf_grid)
    elif isinstance(depth, torch.Tensor):
        if tuple(depth.shape) != (h, w):
            raise ShapeError(f"depth map must be (H, W) = {(h, w)}; got {tuple(depth.shape)}")
        wmap = w020(depth.to(device=x.device, dtype=torch.float64))
        lo, hi = float(wmap.min()), float(wmap.max())
        n = 1 if hi - lo < 0.05 else lens.depth_layers
        if n == 1:
            out = convolve_field_varying(out, grid_for(0.5 * (lo + hi)))
        else:
            levels = np.linspace(lo, hi, n)
            u = ((wmap - lo) / (hi - lo) * (n - 1)).clamp(0, n - 1)
            acc = torch.zeros_like(out)
            for i, lv in enumerate(levels):
                a = (1.0 - (u - i).abs()).clamp(min=0.0).to(x.dtype)
                acc = acc + a[None] * convolve_field_varying(out, grid_for(float(lv)))
            out = acc
    else:
        d = float(depth)
        out = convolve_field_varying(out, grid_for(float(w020(d))))
    if lens.vignetting_cos4 or any(lens.vignetting_k):
        gain = lens_vignetting(lens, size=(h, w), pixel_pitch_um=pitch, dtype=x.dtype, device=x.device)
        out = apply_vignetting(out, gain, in_place=out is not x)  # the blurred image is ours: scale in place
    return out
