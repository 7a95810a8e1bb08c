"""Scenes for the virtual camera: spectral radiance as weights over a few basis spectra.

A :class:`Scene` holds ``K`` basis spectra (relative spectral radiance on
:data:`obscura.sim.spectral.WAVELENGTHS`, the scene's reference white has ``Y = 1``) and, per pixel,
either weights over them (an RGB image made spectral with the Mallett & Yuksel 2019 sRGB basis) or
an index (a chart: each pixel one reflectance under the illuminant). ``luminance`` gives the absolute
scale (cd/m² of ``Y = 1``), ``depth`` the distance in metres (one value or a map).

Builders: :func:`scene_from_rgb` (display-encoded sRGB is unprocessed after Brooks et al. 2019),
:func:`load_scene` (PNG, JPEG, TIFF, OpenEXR, .npy), :func:`scene_from_reflectances` and
:func:`flat_scene`.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from obscura.core.colour import SPACES, WHITE_D65, bradford_matrix, normalised_primary_matrix
from obscura.core.errors import (
    CorruptFile,
    InputError,
    InvalidParameter,
    ObscuraError,
    ShapeError,
    UnsupportedFormat,
)
from obscura.core.types import Image
from obscura.sim import spectral

__all__ = [
    "Scene",
    "unprocess_srgb",
    "scene_from_rgb",
    "load_scene",
    "scene_from_reflectances",
    "flat_scene",
    "SCENE_SUFFIXES",
]


def _luminance_from(luminance: float | None, lux: float | None, *, default: float = 100.0) -> float:
    """cd/m² of ``Y = 1``: ``luminance``, or ``lux / π`` (a Lambertian white under ``lux`` of illuminance)."""
    if lux is not None and luminance is not None:
        raise InvalidParameter(f"give luminance or lux, not both; got luminance={luminance}, lux={lux}")
    if lux is not None:
        lx = float(lux)
        if not math.isfinite(lx) or lx < 0:
            raise InvalidParameter(f"lux must be finite and >= 0; got {lux}")
        return lx / math.pi
    lum = default if luminance is None else float(luminance)
    if not math.isfinite(lum) or lum < 0:
        raise InvalidParameter(f"luminance must be finite and >= 0 cd/m²; got {luminance}")
    return lum


def _finite_nonnegative(x: torch.Tensor) -> bool:
    """All values finite and >= 0, in one pass (min/max propagate NaN, which fails both tests)."""
    if x.numel() == 0:
        return True  # emptiness is reported by the shape checks
    lo, hi = torch.aminmax(x)
    return bool(lo >= 0) and bool(hi < math.inf)


@dataclass(frozen=True, eq=False)
class Scene:
    """Spectral radiance as weights over a few basis spectra (relative units, reference white Y = 1).

    Exactly one of ``weights`` (``(K, H, W)``, radiance = Σ_k w_k·basis_k) and ``labels``
    (``(H, W)`` int64, radiance = basis[label]) is set. Weights must be finite and ≥ 0 (radiance
    cannot be negative); the basis finite and ≥ 0.
    """

    basis: torch.Tensor  # (K, L) float32 relative spectral radiance on spectral.WAVELENGTHS
    weights: torch.Tensor | None = None  # (K, H, W) float32, per-pixel weights of the basis spectra
    labels: torch.Tensor | None = None  # (H, W) int64 in [0, K): an indexed scene (each pixel one spectrum)
    luminance: float = 100.0  # cd/m² of a pixel with Y = 1
    depth: float | torch.Tensor = math.inf  # metres: one distance, or an (H, W) float32 depth map
    illuminant: str = "D65"  # the light (spectral.illuminant_spd name): white balance / AsShotNeutral
    name: str = "scene"

    def __post_init__(self) -> None:
        b = self.basis
        L = spectral.WAVELENGTHS.size
        if not isinstance(b, torch.Tensor) or b.dtype != torch.float32 or b.ndim != 2 or b.shape[1] != L:
            got = f"{b.dtype} {tuple(b.shape)}" if isinstance(b, torch.Tensor) else type(b).__name__
            raise ShapeError(f"Scene.basis must be a (K, {L}) float32 tensor; got {got}")
        K = b.shape[0]
        if K < 1:
            raise ShapeError("Scene.basis must hold at least one spectrum; got K = 0")
        if not _finite_nonnegative(b):
            raise InvalidParameter("Scene.basis must be finite and >= 0 (spectral radiance)")
        if (self.weights is None) == (self.labels is None):
            raise InvalidParameter("Scene needs exactly one of weights and labels")
        if self.weights is not None:
            w = self.weights
            if not isinstance(w, torch.Tensor) or w.dtype != torch.float32 or w.ndim != 3 or w.shape[0] != K:
                got = f"{w.dtype} {tuple(w.shape)}" if isinstance(w, torch.Tensor) else type(w).__name__
                raise ShapeError(f"Scene.weights must be a ({K}, H, W) float32 tensor (K from the basis); got {got}")
            if w.device != b.device:
                raise ShapeError(f"Scene.weights is on {w.device} but the basis on {b.device}")
            if not _finite_nonnegative(w):
                raise InvalidParameter("Scene.weights must be finite and >= 0")
            hw = tuple(w.shape[1:])
        else:
            lab = self.labels
            if not isinstance(lab, torch.Tensor) or lab.dtype != torch.int64 or lab.ndim != 2:
                got = f"{lab.dtype} {tuple(lab.shape)}" if isinstance(lab, torch.Tensor) else type(lab).__name__
                raise ShapeError(f"Scene.labels must be an (H, W) int64 tensor; got {got}")
            if lab.device != b.device:
                raise ShapeError(f"Scene.labels is on {lab.device} but the basis on {b.device}")
            if lab.numel() and (int(lab.min()) < 0 or int(lab.max()) >= K):
                raise InvalidParameter(f"Scene.labels must lie in [0, {K}); got [{int(lab.min())}, {int(lab.max())}]")
            hw = tuple(lab.shape)
        if hw[0] < 1 or hw[1] < 1:
            raise ShapeError(f"Scene must have at least one pixel; got size {hw}")
        lum = self.luminance
        if isinstance(lum, bool) or not isinstance(lum, (int, float)) or not math.isfinite(lum) or lum < 0:
            raise InvalidParameter(f"Scene.luminance must be a finite number >= 0 cd/m²; got {lum!r}")
        d = self.depth
        if isinstance(d, torch.Tensor):
            if d.dtype != torch.float32 or tuple(d.shape) != hw:
                raise ShapeError(
                    f"Scene.depth map must be a float32 tensor of the scene size {hw}; got {d.dtype} {tuple(d.shape)}"
                )
            if d.device != b.device:
                raise ShapeError(f"Scene.depth is on {d.device} but the basis on {b.device}")
            lo = d.min() if d.numel() else None
            if lo is None or not bool(lo > 0):  # NaN propagates through min() and fails the test
                raise InvalidParameter("Scene.depth map must be > 0 metres everywhere (inf allowed, no NaN)")
        elif isinstance(d, bool) or not isinstance(d, (int, float)) or math.isnan(d) or d <= 0:
            raise InvalidParameter(f"Scene.depth must be > 0 metres (inf allowed) or an (H, W) map; got {d!r}")
        spectral.illuminant_spd(self.illuminant)  # raises UnknownMethod listing the valid names

    # --- geometry and device ---------------------------------------------------------------
    @property
    def size(self) -> tuple[int, int]:
        """(H, W) in pixels."""
        t = self.weights if self.weights is not None else self.labels
        return int(t.shape[-2]), int(t.shape[-1])

    @property
    def device(self) -> torch.device:
        return self.basis.device

    @property
    def num_spectra(self) -> int:
        """K, the number of basis spectra."""
        return int(self.basis.shape[0])

    def to(self, device: str | torch.device) -> Scene:
        """The same scene with every tensor on ``device``."""
        dev = torch.device(device)
        return dataclasses.replace(
            self,
            basis=self.basis.to(dev),
            weights=None if self.weights is None else self.weights.to(dev),
            labels=None if self.labels is None else self.labels.to(dev),
            depth=self.depth.to(dev) if isinstance(self.depth, torch.Tensor) else self.depth,
        )

    def replace(self, **changes: Any) -> Scene:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    # --- responses -------------------------------------------------------------------------
    def palette(self, curves: torch.Tensor | np.ndarray) -> torch.Tensor:
        """(C, K): each basis spectrum integrated against each curve, ``Σ_λ curve_c(λ)·basis_k(λ)``."""
        c = torch.as_tensor(np.asarray(curves) if not isinstance(curves, torch.Tensor) else curves)
        L = spectral.WAVELENGTHS.size
        if c.ndim != 2 or c.shape[1] != L:
            raise ShapeError(f"curves must be (C, {L}) on spectral.WAVELENGTHS; got {tuple(c.shape)}")
        # float64 for the L-long dot products, then back to the scene's float32
        return (c.to(device=self.device, dtype=torch.float64) @ self.basis.double().T).to(torch.float32)

    def response(self, curves: torch.Tensor | np.ndarray) -> torch.Tensor:
        """(C, H, W): ``Σ_k w_k·(curves @ basis_k)`` per pixel, or ``palette[:, labels]`` for an indexed scene."""
        p = self.palette(curves)
        if self.labels is not None:
            return p[:, self.labels]
        return torch.einsum("ck,khw->chw", p, self.weights)

    def xyz(self) -> torch.Tensor:
        """(3, H, W) CIE 1931 XYZ, normalised so that ``Y`` is the luminance factor (reference white Y = 1)."""
        c = spectral.cmfs()
        return self.response(c / c[1].sum())

    def linear_srgb(self, *, adapt: bool = True) -> torch.Tensor:
        """(3, H, W) linear sRGB (IEC 61966-2-1 primaries) of the scene.

        ``adapt=True`` first adapts XYZ from the illuminant's white (its chromaticity on our grid) to
        D65 with Bradford (Lam 1985): what a white-balanced photo of the scene shows. ``adapt=False``
        converts the XYZ as they are (the illuminant's colour cast stays).
        """
        m = np.linalg.inv(normalised_primary_matrix(SPACES["linear_srgb"].primaries, WHITE_D65))
        if adapt:
            m = m @ bradford_matrix(spectral.illuminant_xy(self.illuminant), WHITE_D65)
        c = spectral.cmfs()
        return self.response(m @ (c / c[1].sum()))


# --- unprocessing ------------------------------------------------------------------------------
def unprocess_srgb(x: torch.Tensor, *, tone: bool = True) -> torch.Tensor:
    """Display-encoded sRGB → scene-linear values (Brooks et al. 2019, "Unprocessing Images for Learned
    Raw Denoising").

    Brooks' forward pipeline ends with gamma compression then the smoothstep tone curve
    ``y = 3x² − 2x³``, so its inverse runs backwards: the inverse smoothstep
    ``x = 0.5 − sin(asin(1 − 2y)/3)`` (when ``tone``), then the inverse sRGB curve (IEC 61966-2-1,
    where Brooks uses a plain 2.2 gamma). Inputs are clipped to [0, 1] first, as Brooks does.
    """
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise ShapeError(
            f"unprocess_srgb needs a float tensor; got {type(x).__name__}"
            + (f" {x.dtype}" if isinstance(x, torch.Tensor) else "")
        )
    # in-place on one fresh tensor: values are in [0, 1], so core.colour.srgb_decode's sign mirroring is
    # not needed and a 12 MP image unprocesses about twice as fast
    y = x.clamp(0.0, 1.0)
    if tone:
        y.mul_(-2.0).add_(1.0).asin_().div_(3.0).sin_().neg_().add_(0.5)
    low = y <= 0.04045
    lin = y.div(12.92)
    y.add_(0.055).div_(1.055).pow_(2.4)
    return torch.where(low, lin, y)


# --- builders ----------------------------------------------------------------------------------
def _check_depth(depth: float | torch.Tensor | str | Path, size: tuple[int, int], device: torch.device):
    """A depth given as metres, an (H, W) tensor or array, or a path to a depth map (.npy, TIFF, EXR)."""
    if isinstance(depth, (str, Path)):
        arr = _read_array(Path(depth))
        if arr.ndim == 3 and arr.shape[2] == 1:
            arr = arr[..., 0]
        if arr.ndim != 2:
            raise ShapeError(f"{depth}: a depth map must be one channel (H, W); got {arr.shape}")
        depth = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))
    if isinstance(depth, np.ndarray):
        depth = torch.from_numpy(np.ascontiguousarray(depth, dtype=np.float32))
    if isinstance(depth, torch.Tensor):
        if depth.ndim != 2 or tuple(depth.shape) != tuple(size):
            raise ShapeError(f"depth map must be (H, W) = {tuple(size)} like the scene; got {tuple(depth.shape)}")
        return depth.to(device=device, dtype=torch.float32)
    return depth


def _lit(reflectances: np.ndarray, illuminant: str) -> np.ndarray:
    """Reflectances (K, L) lit by ``illuminant``: relative radiance, clipped at 0 (Sprague resampling of
    spiky SPDs, e.g. the LEDs, leaves values like -1e-20 at the ends of the range)."""
    return np.clip(reflectances * spectral.illuminant_spd(illuminant)[None, :], 0.0, None)


def _srgb_spectra(illuminant: str) -> np.ndarray:
    """The Mallett & Yuksel (2019) basis as reflectances lit by ``illuminant`` (3, L)."""
    return _lit(spectral.srgb_basis(), illuminant)


def scene_from_rgb(
    image: torch.Tensor | Image,
    *,
    encoding: str | None = None,
    unprocess: bool = True,
    luminance: float | None = None,
    lux: float | None = None,
    depth: float | torch.Tensor | str | Path = math.inf,
    illuminant: str = "D65",
    name: str = "rgb",
) -> Scene:
    """A scene from an RGB image: (3, H, W) tensor or an :class:`Image`.

    ``encoding`` is ``"srgb"`` (display-encoded; the default for tensors) or ``"linear"`` (linear
    sRGB); an Image's own space decides for it (other RGB spaces are converted to linear sRGB).
    Encoded values are unprocessed with :func:`unprocess_srgb` (``unprocess=False`` skips the tone
    curve and only decodes sRGB). Linear sRGB becomes weights over the Mallett & Yuksel (2019) basis
    lit by ``illuminant``; negative values (out of the sRGB gamut) are clipped to 0, values above 1
    (HDR) are kept. ``luminance`` (cd/m² of ``Y = 1``, default 100) or ``lux`` (illuminance, giving
    ``lux / π`` for a Lambertian white).
    """
    from obscura.core.colour import convert

    if isinstance(image, Image):
        space = image.space
        if space in ("camera",):
            raise InvalidParameter("an Image in camera space has no defined colours; develop it first")
        if encoding is not None and encoding not in ("srgb", "linear"):
            raise InvalidParameter(f"encoding must be 'srgb' or 'linear'; got {encoding!r}")
        x = image.data
        if space == "srgb":
            lin = unprocess_srgb(x, tone=unprocess)
        else:
            from obscura.core.colour import SPACES

            if SPACES[space].transfer == "srgb":  # e.g. Display P3: decode, then to linear sRGB
                lin = convert(unprocess_srgb(x, tone=unprocess), src=SPACES[space].linear, dst="linear_srgb")
            else:
                lin = convert(x, src=space, dst="linear_srgb")
    else:
        if not isinstance(image, torch.Tensor):
            raise ShapeError(f"image must be a (3, H, W) tensor or an Image; got {type(image).__name__}")
        if image.ndim != 3 or image.shape[0] != 3 or image.shape[1] < 1 or image.shape[2] < 1:
            raise ShapeError(f"image must be (3, H, W); got {tuple(image.shape)}")
        if not image.is_floating_point():
            raise ShapeError(f"image must be a float tensor in [0, 1] (encoded) or linear; got {image.dtype}")
        enc = "srgb" if encoding is None else encoding
        if enc == "srgb":
            lin = unprocess_srgb(image.to(torch.float32), tone=unprocess)
        elif enc == "linear":
            lin = image.to(torch.float32)
        else:
            raise InvalidParameter(f"encoding must be 'srgb' or 'linear'; got {encoding!r}")
    lo, hi = torch.aminmax(lin)
    if not (bool(lo > -math.inf) and bool(hi < math.inf)):  # NaN fails both
        raise InvalidParameter("image values must be finite (no NaN or inf)")
    weights = lin.to(torch.float32).clamp_min(0.0).contiguous()
    basis = torch.tensor(_srgb_spectra(illuminant), dtype=torch.float32, device=weights.device)
    size = (int(weights.shape[1]), int(weights.shape[2]))
    return Scene(
        basis=basis,
        weights=weights,
        luminance=_luminance_from(luminance, lux),
        depth=_check_depth(depth, size, weights.device),
        illuminant=illuminant,
        name=name,
    )


SCENE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".exr", ".npy")


def _read_exr(p: Path) -> np.ndarray:
    """(H, W, C) float32 from an OpenEXR file (R, G, B; or Y; or a single channel)."""
    import OpenEXR

    with OpenEXR.File(str(p), separate_channels=True) as f:
        ch = f.channels()
        names = list(ch)
        if all(c in ch for c in "RGB"):
            planes = [ch[c].pixels for c in "RGB"]
        elif "Y" in ch:
            planes = [ch["Y"].pixels]
        elif len(names) == 1:
            planes = [ch[names[0]].pixels]
        else:
            raise UnsupportedFormat(f"{p}: needs R, G, B or Y channels; has {', '.join(sorted(names))}")
        return np.stack([np.asarray(a, dtype=np.float32) for a in planes], axis=-1)


def _read_array(p: Path) -> np.ndarray:
    """Pixels of a file as (H, W) or (H, W, C) (integers kept as read) for scenes and depth maps."""
    if not p.exists():
        raise InputError(f"{p}: no such file")
    if not p.is_file():
        raise InputError(f"{p}: not a file")
    suffix = p.suffix.lower()
    if suffix not in SCENE_SUFFIXES:
        raise UnsupportedFormat(f"{p}: unsupported scene file type {p.suffix!r}; valid: {', '.join(SCENE_SUFFIXES)}")
    try:
        if suffix == ".npy":
            arr = np.load(p, allow_pickle=False)
            if arr.ndim == 3 and arr.shape[0] in (1, 3) and arr.shape[2] not in (1, 3):
                arr = np.moveaxis(arr, 0, -1)  # (C, H, W) → (H, W, C)
        elif suffix == ".exr":
            arr = _read_exr(p)
        elif suffix in (".tif", ".tiff"):
            import tifffile

            with tifffile.TiffFile(p) as tf:
                arr = tf.pages[0].asarray()
        elif suffix == ".png":
            import imagecodecs  # Pillow reads 16-bit RGB PNG as 8-bit

            arr = imagecodecs.png_decode(p.read_bytes())
        else:
            from PIL import Image as PILImage

            with PILImage.open(p) as im:
                if im.mode not in ("RGB", "L", "RGBA", "LA", "I;16"):
                    im = im.convert("RGB")
                arr = np.asarray(im)
    except ObscuraError:
        raise
    except Exception as e:  # every decoder error becomes one line naming the file
        raise CorruptFile(f"{p}: cannot read the {suffix[1:].upper()} data: {e}") from None
    if arr.dtype.kind not in "uif" or arr.dtype.kind == "b":
        raise UnsupportedFormat(f"{p}: unsupported sample type {arr.dtype}")
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise InvalidParameter(f"{p}: holds non-finite values (NaN or inf)")
    return arr


def load_scene(
    path: str | Path,
    *,
    encoding: str | None = None,
    unprocess: bool = True,
    luminance: float | None = None,
    lux: float | None = None,
    depth: float | torch.Tensor | str | Path = math.inf,
    illuminant: str = "D65",
) -> Scene:
    """A scene from an image file.

    PNG, JPEG and integer TIFF (8/16-bit) are display-encoded sRGB (unprocessed, see
    :func:`scene_from_rgb`) unless ``encoding="linear"``; float TIFF, OpenEXR (.exr) and .npy
    (float, (H, W, 3), (3, H, W) or (H, W)) are linear sRGB unless ``encoding="srgb"``. Grey images
    become three equal channels. ``luminance`` is cd/m² of ``Y = 1`` (default 100); ``lux`` the
    illuminance on the scene, giving ``luminance = lux / π`` (a Lambertian white reflects E/π).
    ``depth``: metres, an (H, W) map, or the path of one (.npy, float TIFF, EXR).
    """
    p = Path(path)
    if encoding not in (None, "srgb", "linear"):
        raise InvalidParameter(f"encoding must be None, 'srgb' or 'linear'; got {encoding!r}")
    arr = _read_array(p)
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 3) or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ShapeError(f"{p}: a scene must be (H, W), (H, W, 3) or (3, H, W) pixels; got {arr.shape}")
    if arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    if arr.dtype.kind == "f":
        data = arr.astype(np.float32)
        enc = encoding or "linear"
    else:
        if p.suffix.lower() == ".npy":
            raise UnsupportedFormat(f"{p}: a .npy scene must hold floats; got {arr.dtype}")
        data = arr.astype(np.float32) / float(np.iinfo(arr.dtype).max)
        enc = encoding or "srgb"
    x = torch.from_numpy(np.ascontiguousarray(data.transpose(2, 0, 1)))
    try:
        return scene_from_rgb(
            x,
            encoding=enc,
            unprocess=unprocess,
            luminance=luminance,
            lux=lux,
            depth=depth,
            illuminant=illuminant,
            name=p.stem,
        )
    except (ShapeError, InvalidParameter) as e:
        raise type(e)(f"{p}: {e}") from None


def _spectra(x: Any, what: str) -> np.ndarray:
    a = np.asarray(x.detach().cpu().double() if isinstance(x, torch.Tensor) else x, dtype=np.float64)
    if a.ndim == 1:
        a = a[None, :]
    if a.ndim != 2 or a.shape[0] < 1:
        raise ShapeError(f"{what} must be (K, L) spectra; got {a.shape}")
    if not np.all(np.isfinite(a)) or np.any(a < 0):
        raise InvalidParameter(f"{what} must be finite and >= 0")
    return a


def scene_from_reflectances(
    reflectances: np.ndarray | torch.Tensor,
    labels: torch.Tensor | np.ndarray,
    *,
    wavelengths: np.ndarray | None = None,
    illuminant: str = "D65",
    lux: float | None = None,
    luminance: float | None = None,
    depth: float | torch.Tensor | str | Path = math.inf,
    name: str = "reflectances",
) -> Scene:
    """An indexed scene: pixel ``labels[y, x]`` shows reflectance ``reflectances[label]`` under ``illuminant``.

    ``reflectances`` is (K, L) on :data:`spectral.WAVELENGTHS`, or on ``wavelengths`` (resampled with
    colour-science, e.g. from :func:`spectral.read_spectra_csv`). The basis is reflectance × the
    illuminant SPD (``Y = 1``), so a perfect white has ``Y = 1`` at ``luminance`` cd/m² (default
    100) or ``lux / π``. ``labels`` lives on its own device.
    """
    r = _spectra(reflectances, "reflectances")
    if wavelengths is not None:
        r = spectral.resample(np.asarray(wavelengths, dtype=np.float64), r)
    elif r.shape[1] != spectral.WAVELENGTHS.size:
        raise ShapeError(
            f"reflectances must be (K, {spectral.WAVELENGTHS.size}) on spectral.WAVELENGTHS, or give "
            f"wavelengths=; got {r.shape}"
        )
    lab = torch.as_tensor(labels)
    if lab.dtype.is_floating_point or lab.dtype == torch.bool or lab.is_complex():
        raise ShapeError(f"labels must be an integer (H, W) tensor; got {lab.dtype}")
    lab = lab.to(torch.int64)
    if lab.ndim != 2:
        raise ShapeError(f"labels must be (H, W); got {tuple(lab.shape)}")
    basis = torch.tensor(_lit(r, illuminant), dtype=torch.float32, device=lab.device)
    return Scene(
        basis=basis,
        labels=lab,
        luminance=_luminance_from(luminance, lux),
        depth=_check_depth(depth, tuple(lab.shape), lab.device),
        illuminant=illuminant,
        name=name,
    )


def flat_scene(
    size: tuple[int, int],
    *,
    value: float | np.ndarray | torch.Tensor = 1.0,
    illuminant: str = "D65",
    luminance: float | None = None,
    lux: float | None = None,
    depth: float | torch.Tensor = math.inf,
    device: str | torch.device = "cpu",
    name: str = "flat",
) -> Scene:
    """A uniform field of ``size`` (H, W): a grey of reflectance ``value`` (a number ≥ 0) or a reflectance
    spectrum (L,) under ``illuminant``, at ``luminance`` cd/m² for ``Y = 1`` (default 100) or ``lux / π``.
    For noise and shading tests."""
    try:
        h, w = (int(s) for s in size)
    except (TypeError, ValueError):
        raise InvalidParameter(f"size must be (H, W); got {size!r}") from None
    if h < 1 or w < 1:
        raise InvalidParameter(f"size must be at least (1, 1); got {tuple(size)}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value) or value < 0:
            raise InvalidParameter(f"value must be a finite reflectance >= 0; got {value}")
        refl = np.full((1, spectral.WAVELENGTHS.size), float(value))
    else:
        refl = _spectra(value, "value")
        if refl.shape != (1, spectral.WAVELENGTHS.size):
            raise ShapeError(f"value must be a number or one spectrum ({spectral.WAVELENGTHS.size},); got {refl.shape}")
    dev = torch.device(device)
    basis = torch.tensor(_lit(refl, illuminant), dtype=torch.float32, device=dev)
    weights = torch.ones((1, h, w), dtype=torch.float32, device=dev)
    return Scene(
        basis=basis,
        weights=weights,
        luminance=_luminance_from(luminance, lux),
        depth=_check_depth(depth, (h, w), dev),
        illuminant=illuminant,
        name=name,
    )
