"""Looks as data: a TOML file of continuous parameters, applied in OKLab to a linear image.

A look is applied to the linear working image before output encoding (in develop: after the tone curve,
before sharpening), or to a developed image (decoded, looked, re-encoded), or to a batch of video frames.
The operations (obscura.looks.ops), in order: tone curve on OKLab L → saturation, vibrance and hue (global
and per hue band) → skin-tone protection → monochrome with a colour filter → split toning → vignetting →
grain → smooth gamut compression into the working space's cube (``[gamut]``) → optional 3D LUT
(``[lut]``, applied in display-encoded sRGB as the last step).

TOML layout (every key optional; every value continuous and defaulting to "no change")::

    name = "mine"
    description = "what it does"
    base = "authentic"            # optional: start from a built-in look

    [tone]        # contrast, pivot, toe, shoulder, black, highlight_rolloff, brightness, chroma_follow
    contrast = 1.2
    [colour]      # saturation, vibrance, hue_shift, [colour.saturation_by_hue], [colour.hue_by_hue]
    saturation = 1.1
    [colour.saturation_by_hue]
    blue = 0.2                    # bands: red, yellow, green, cyan, blue, magenta
    [skin]        # protect, hue, width, max_chroma
    [monochrome]  # amount, filter ("yellow", "orange", "red", "green"), filter_hue, filter_strength
    [split_toning]  # shadow_hue, shadow_strength, highlight_hue, highlight_strength, balance
    [vignette]    # strength, falloff, midpoint, roundness
    [grain]       # strength, size, luminance
    [gamut]       # threshold, shoulder, power: smooth compression into [0, 1]³ instead of a hard clip
    [lut]         # file = "x.cube" (relative to the TOML), space = "srgb"
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch

from obscura.core.colour import convert, srgb_decode, srgb_encode
from obscura.core.errors import InputError, InvalidParameter, ShapeError, UnknownMethod, UnsupportedFormat
from obscura.core.validate import check_number
from obscura.looks import ops

__all__ = [
    "Colour",
    "Gamut",
    "Grain",
    "Look",
    "LutRef",
    "Monochrome",
    "Skin",
    "SplitToning",
    "Tone",
    "Vignette",
    "DATA_DIR",
    "apply_look",
    "list_looks",
    "load_look",
    "look_from_dict",
    "look_srgb_fn",
]

DATA_DIR = Path(__file__).with_name("data")


def _p(default: float, lo: float, hi: float) -> Any:
    """A continuous look parameter with its default and valid range."""
    return field(default=default, metadata={"range": (lo, hi)})


@dataclass(frozen=True)
class Tone:
    """Tone curve on OKLab L (see :func:`obscura.looks.ops.tone_curve_lab`); ``brightness`` is a gamma on L
    (L ← L^(2^−brightness), with a finite slope at black when it brightens: > 0 brightens the mid-tones,
    keeps black and white)."""

    contrast: float = _p(1.0, 0.25, 4.0)
    pivot: float = _p(0.57, 0.1, 0.9)
    toe: float = _p(0.0, -2.0, 2.0)
    shoulder: float = _p(0.0, -2.0, 2.0)
    black: float = _p(0.0, -0.2, 0.3)
    highlight_rolloff: float = _p(0.0, 0.0, 1.0)
    brightness: float = _p(0.0, -1.0, 1.0)
    chroma_follow: float = _p(1.0, 0.0, 2.0)


@dataclass(frozen=True)
class Colour:
    """Saturation (×), vibrance, hue shift (degrees), and per-hue-band saturation (relative) and hue shift."""

    saturation: float = _p(1.0, 0.0, 3.0)
    vibrance: float = _p(0.0, -1.0, 2.0)
    hue_shift: float = _p(0.0, -180.0, 180.0)
    saturation_by_hue: tuple[tuple[str, float], ...] = ()
    hue_by_hue: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True)
class Skin:
    """Skin-tone protection: skin hues (``hue`` ± ``width`` degrees, chroma below ``max_chroma``; both fading
    out beyond) keep their hue and chroma through the colour changes, by ``protect`` (0–1)."""

    protect: float = _p(0.0, 0.0, 1.0)
    hue: float = _p(45.0, 0.0, 360.0)
    width: float = _p(12.0, 0.0, 90.0)
    max_chroma: float = _p(0.12, 0.01, 0.5)


@dataclass(frozen=True)
class Monochrome:
    """Black and white (``amount`` 0–1) through a contrast filter (``filter`` name or ``filter_hue``/strength)."""

    amount: float = _p(0.0, 0.0, 1.0)
    filter_hue: float = _p(0.0, 0.0, 360.0)
    filter_strength: float = _p(0.0, 0.0, 2.0)


@dataclass(frozen=True)
class SplitToning:
    shadow_hue: float = _p(220.0, 0.0, 360.0)
    shadow_strength: float = _p(0.0, 0.0, 2.0)
    highlight_hue: float = _p(60.0, 0.0, 360.0)
    highlight_strength: float = _p(0.0, 0.0, 2.0)
    balance: float = _p(0.0, -1.0, 1.0)


@dataclass(frozen=True)
class Vignette:
    strength: float = _p(0.0, -1.0, 1.0)
    falloff: float = _p(2.0, 0.5, 8.0)
    midpoint: float = _p(0.0, 0.0, 0.9)
    roundness: float = _p(0.0, 0.0, 1.0)


@dataclass(frozen=True)
class Grain:
    strength: float = _p(0.0, 0.0, 1.0)
    size: float = _p(1.0, 0.5, 8.0)
    luminance: float = _p(1.0, 0.0, 4.0)


@dataclass(frozen=True)
class Gamut:
    """Smooth gamut compression as the last colour step (see :func:`obscura.looks.ops.gamut_compress`):
    channel distances from the achromatic level beyond ``threshold`` and luminance above ``shoulder`` are
    compressed so that the look's output lands inside [0, 1]³ of the working space without a hard clip
    (which shifts hues, flattens saturated colours and puts kinks in an exported LUT). 1 = off."""

    threshold: float = _p(1.0, 0.5, 1.0)
    shoulder: float = _p(1.0, 0.5, 1.0)
    power: float = _p(1.2, 1.0, 4.0)


@dataclass(frozen=True)
class LutRef:
    """A 3D LUT file applied last, in display-encoded ``space`` (sRGB)."""

    file: str
    space: str = "srgb"


_SECTIONS: dict[str, type] = {
    "tone": Tone,
    "colour": Colour,
    "skin": Skin,
    "monochrome": Monochrome,
    "split_toning": SplitToning,
    "vignette": Vignette,
    "grain": Grain,
    "gamut": Gamut,
}


@dataclass(frozen=True)
class Look:
    """A look: its name, a description, and the parameters of each operation (defaults: no change)."""

    name: str = "none"
    description: str = "no look: the image unchanged"
    tone: Tone = field(default_factory=Tone)
    colour: Colour = field(default_factory=Colour)
    skin: Skin = field(default_factory=Skin)
    monochrome: Monochrome = field(default_factory=Monochrome)
    split_toning: SplitToning = field(default_factory=SplitToning)
    vignette: Vignette = field(default_factory=Vignette)
    grain: Grain = field(default_factory=Grain)
    gamut: Gamut = field(default_factory=Gamut)
    lut: LutRef | None = None

    @property
    def is_identity(self) -> bool:
        """True when applying the look changes nothing."""
        return all(getattr(self, s) == cls() for s, cls in _SECTIONS.items()) and self.lut is None

    @property
    def is_spatial(self) -> bool:
        """True when the look depends on the pixel position (vignetting, grain): a LUT cannot hold it."""
        return self.vignette.strength != 0.0 or self.grain.strength != 0.0

    def without_spatial(self) -> Look:
        """The look without vignetting and grain (what a 3D LUT can hold)."""
        return dataclasses.replace(self, vignette=Vignette(), grain=Grain())

    def replace(self, **changes: Any) -> Look:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """The look as a TOML-ready mapping (only what differs from the defaults)."""
        out: dict[str, Any] = {"name": self.name, "description": self.description}
        for s, cls in _SECTIONS.items():
            sec, default = getattr(self, s), cls()
            d = {}
            for f in dataclasses.fields(cls):
                v = getattr(sec, f.name)
                if v != getattr(default, f.name):
                    d[f.name] = dict(v) if isinstance(v, tuple) else v
            if d:
                out[s] = d
        if self.lut is not None:
            out["lut"] = {"file": self.lut.file, "space": self.lut.space}
        return out


# ------------------------------------------------------------------------------------------- loading


def _valid(keys) -> str:
    return ", ".join(sorted(keys))


def _section(cls: type, current: Any, value: Any, *, name: str, source: str) -> Any:
    """A section dataclass from a TOML table, each value checked against its range."""
    if not isinstance(value, Mapping):
        raise InvalidParameter(f"{source}: [{name}] must be a table; got {value!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    extra = {"filter"} if cls is Monochrome else set()
    changes: dict[str, Any] = {}
    value = dict(value)
    if cls is Monochrome and "filter" in value:
        filt = value.pop("filter")
        if filt not in ops.MONO_FILTERS:
            raise InvalidParameter(
                f"{source}: monochrome.filter must be one of {', '.join(ops.MONO_FILTERS)}; got {filt!r}"
            )
        hue, strength = ops.MONO_FILTERS[filt]
        changes.update(filter_hue=hue, filter_strength=strength)
    for key, v in value.items():
        if key not in fields:
            raise InvalidParameter(
                f"{source}: unknown key {name}.{key!r}; valid keys of [{name}]: {_valid(set(fields) | extra)}"
            )
        if key in ("saturation_by_hue", "hue_by_hue"):
            changes[key] = _bands(v, name=f"{name}.{key}", source=source)
            continue
        lo, hi = fields[key].metadata["range"]
        if isinstance(v, bool):
            raise InvalidParameter(f"{source}: {name}.{key} must be a number in [{lo}, {hi}]; got {v!r}")
        try:
            changes[key] = check_number(f"{name}.{key}", v, lo, hi)
        except InvalidParameter as e:
            raise InvalidParameter(f"{source}: {e}") from None
    return dataclasses.replace(current, **changes)


def _bands(v: Any, *, name: str, source: str) -> tuple[tuple[str, float], ...]:
    if not isinstance(v, Mapping):
        raise InvalidParameter(f"{source}: [{name}] must be a table of hue bands; got {v!r}")
    lo, hi = (-1.0, 2.0) if name.endswith("saturation_by_hue") else (-60.0, 60.0)
    out = {}
    for band, x in v.items():
        if band not in ops.HUE_BANDS:
            raise InvalidParameter(f"{source}: unknown hue band {name}.{band!r}; valid: {', '.join(ops.HUE_BANDS)}")
        try:
            out[band] = check_number(f"{name}.{band}", x, lo, hi)
        except InvalidParameter as e:
            raise InvalidParameter(f"{source}: {e}") from None
    return tuple(sorted(out.items()))


def look_from_dict(d: Mapping[str, Any], *, source: str = "look", root: Path | None = None) -> Look:
    """Build a Look from a mapping (parsed TOML), checking every key and range; ``root`` resolves ``[lut]``."""
    d = dict(d)
    base = d.pop("base", None)
    if base is not None and not isinstance(base, str):
        raise InvalidParameter(f"{source}: base must be a look name or a .toml path; got {base!r}")
    if base and root is not None and base.endswith(".toml") and not Path(base).is_absolute():
        base = str(root / base)  # a base file is found next to the look that names it
    look = load_look(base) if base else Look()
    valid = {"name", "description", "lut", *_SECTIONS}
    changes: dict[str, Any] = {}
    for key, value in d.items():
        if key not in valid:
            raise InvalidParameter(f"{source}: unknown look key {key!r}; valid keys: {_valid(valid | {'base'})}")
        if key in ("name", "description"):
            if not isinstance(value, str):
                raise InvalidParameter(f"{source}: {key} must be a string; got {value!r}")
            changes[key] = value
        elif key == "lut":
            changes[key] = _lut_ref(value, source=source, root=root)
        else:
            changes[key] = _section(_SECTIONS[key], getattr(look, key), value, name=key, source=source)
    return dataclasses.replace(look, **changes)


def _lut_ref(value: Any, *, source: str, root: Path | None) -> LutRef:
    if not isinstance(value, Mapping) or not isinstance(value.get("file"), str):
        raise InvalidParameter(f'{source}: [lut] must be a table with file = "name.cube"; got {value!r}')
    extra = set(value) - {"file", "space"}
    if extra:
        raise InvalidParameter(f"{source}: unknown key lut.{sorted(extra)[0]!r}; valid keys of [lut]: file, space")
    space = value.get("space", "srgb")
    if space != "srgb":
        raise InvalidParameter(f"{source}: lut.space must be 'srgb'; got {space!r}")
    p = Path(value["file"])
    if not p.is_absolute() and root is not None:
        p = root / p
    if not p.is_file():
        raise InputError(f"{source}: LUT file {p} not found")
    return LutRef(str(p), space)


def list_looks() -> list[str]:
    """The names of the built-in looks (files ``obscura/looks/data/*.toml``), sorted."""
    return sorted(p.stem for p in DATA_DIR.glob("*.toml"))


def _read_toml(p: Path) -> dict:
    try:
        return tomllib.loads(p.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise UnsupportedFormat(f"{p}: not a valid TOML look: {e}") from None
    except OSError as e:
        raise InputError(f"{p}: cannot read: {e.strerror or e}") from None


@lru_cache(maxsize=64)
def _load_file(path: str, mtime: float) -> Look:
    p = Path(path)
    data = _read_toml(p)
    data.setdefault("name", p.stem)
    return look_from_dict(data, source=str(p), root=p.parent)


def load_look(name_or_path: str | os.PathLike | Look) -> Look:
    """A built-in look by name (:func:`list_looks`, or ``"none"``), a look TOML file, or a Look as is."""
    if isinstance(name_or_path, Look):
        return name_or_path
    if not isinstance(name_or_path, str | os.PathLike):
        raise InvalidParameter(f"look must be a name, a .toml path or a Look; got {type(name_or_path).__name__}")
    name = str(name_or_path)
    if name == "none":
        return Look()
    p = DATA_DIR / f"{name}.toml"
    if "/" not in name and os.sep not in name and p.is_file():
        return _load_file(str(p), p.stat().st_mtime)
    q = Path(name)
    if q.suffix == ".toml" or q.exists():
        if not q.is_file():
            raise InputError(f"{q}: look file not found")
        return _load_file(str(q.resolve()), q.stat().st_mtime)
    raise UnknownMethod(f"unknown look {name!r}; valid looks: {', '.join(['none', *list_looks()])} (or a .toml file)")


# ------------------------------------------------------------------------------------------- applying


@lru_cache(maxsize=8)
def _read_lut(path: str, mtime: float):
    from obscura.looks.lut import read_cube

    return read_cube(path)


def _apply_lut_srgb(lin: torch.Tensor, ref: LutRef, space: str) -> torch.Tensor:
    """Encode to sRGB, apply the LUT (F's tetrahedral apply_lut), decode back to linear ``space``."""
    from obscura.looks.lut import apply_lut

    lut = _read_lut(ref.file, os.stat(ref.file).st_mtime)
    e = convert(lin, src=space, dst="srgb").clamp(0.0, 1.0)
    frames = e.unbind(0) if e.ndim == 4 else (e,)
    out = [apply_lut(f, lut) for f in frames]
    y = torch.stack(out) if e.ndim == 4 else out[0]
    return convert(y, src="srgb", dst=space)


def apply_look(
    x: torch.Tensor,
    *,
    look: Look | str | os.PathLike,
    space: str = "linear_srgb",
    top: int = 0,
    size: tuple[int, int] | None = None,
    seed: int = 0,
) -> torch.Tensor:
    """Apply ``look`` to a (3, H, W) image or a (N, 3, H, W) batch of frames in colour space ``space``.

    Linear spaces are looked at as they are (display-linear in develop); encoded spaces (``srgb``,
    ``display_p3``) are decoded first and encoded again. ``top`` and ``size`` (H, W) place the rows of ``x``
    in the full frame, for vignetting and grain on strips (default: ``x`` is the whole frame); ``seed`` picks
    the grain (frame ``i`` of a batch uses ``seed + i``). Returns a new tensor in ``space``.
    """
    lk = load_look(look)
    ops.check_lab(x)
    lin_space, encoded = ops._split_space(space, camera=False)
    h, w = x.shape[-2:]
    if isinstance(top, bool) or not isinstance(top, int) or top < 0:
        raise InvalidParameter(f"top must be an int ≥ 0; got {top!r}")
    if size is None:
        size = (top + h, w)
    if (
        not isinstance(size, tuple | list)
        or len(size) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in size)
        or size[0] < top + h
        or size[1] != w
    ):
        raise ShapeError(
            f"size must be (H, W) of the full frame holding rows {top}..{top + h} of width {w}; got {size!r}"
        )
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise InvalidParameter(f"seed must be an int; got {seed!r}")
    if lk.is_identity:
        return x.clone()
    lin = srgb_decode(x) if encoded else x
    lab0 = ops.rgb_to_oklab(lin, space=lin_space)
    t = lk.tone
    lab = lab0
    if t.brightness != 0.0:
        L = lab[..., 0, :, :]
        L2 = torch.where((L > 0) & (L < 1), ops._finite_power(L.clamp(0, 1), 2.0 ** (-t.brightness)), L)
        lab = torch.cat((L2.unsqueeze(-3), lab[..., 1:, :, :]), dim=-3)
    lab = ops.tone_curve_lab(
        lab,
        contrast=t.contrast,
        pivot=t.pivot,
        toe=t.toe,
        shoulder=t.shoulder,
        black=t.black,
        highlight_rolloff=t.highlight_rolloff,
        chroma_follow=t.chroma_follow,
    )
    c = lk.colour
    toned = lab
    lab = ops.adjust_colour(
        lab,
        saturation=c.saturation,
        vibrance=c.vibrance,
        hue_shift=c.hue_shift,
        saturation_by_hue=dict(c.saturation_by_hue),
        hue_by_hue=dict(c.hue_by_hue),
    )
    s = lk.skin
    lab = ops.protect_skin(toned, lab, amount=s.protect, hue=s.hue, width=s.width, max_chroma=s.max_chroma)
    m = lk.monochrome
    lab = ops.monochrome(lab, amount=m.amount, filter_hue=m.filter_hue, filter_strength=m.filter_strength)
    st = lk.split_toning
    lab = ops.split_tone(
        lab,
        shadow_hue=st.shadow_hue,
        shadow_strength=st.shadow_strength,
        highlight_hue=st.highlight_hue,
        highlight_strength=st.highlight_strength,
        balance=st.balance,
    )
    v = lk.vignette
    lab = ops.vignette(
        lab,
        strength=v.strength,
        falloff=v.falloff,
        midpoint=v.midpoint,
        roundness=v.roundness,
        top=top,
        size=tuple(size),
    )
    g = lk.grain
    lab = ops.add_grain(lab, strength=g.strength, size=g.size, luminance=g.luminance, seed=seed, top=top)
    out = ops.oklab_to_rgb(lab, space=lin_space)
    gm = lk.gamut
    out = ops.gamut_compress(out, threshold=gm.threshold, shoulder=gm.shoulder, power=gm.power, space=lin_space)
    if lk.lut is not None:
        out = _apply_lut_srgb(out, lk.lut, lin_space)
    return srgb_encode(out) if encoded else out


def look_srgb_fn(look: Look | str | os.PathLike):
    """The look without its spatial operations as a function of display-encoded sRGB (3, H, W) in [0, 1]:
    what :func:`obscura.looks.lut.bake_srgb` samples to export a look as a ``.cube``."""
    lk = load_look(look).without_spatial()

    def fn(e: torch.Tensor) -> torch.Tensor:
        return apply_look(e, look=lk, space="srgb").clamp(0.0, 1.0)

    return fn
