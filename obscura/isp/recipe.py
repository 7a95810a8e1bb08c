"""Recipes: which method and options each develop stage uses, as a frozen dataclass loadable from TOML.

A recipe names, for each stage, a method registered in that stage's registry (or ``"none"`` to skip
the stage) and the stage's options. Built-in recipes:

- ``default``: best quality (RCD demosaic, noise-profile-driven denoise, local tone mapping, sharpening);
- ``fast``: bilinear-quality shortcuts for previews and batch work;
- ``reference``: colour and the sRGB transfer only (no denoise, no local tone mapping, no sharpening,
  no auto exposure, highlights clipped, LibRaw's colour adaptation): the rendering to compare with other
  raw converters.

TOML layout::

    name = "my look"
    base = "default"            # optional: start from a built-in recipe
    working_space = "linear_prophoto"
    look = "authentic"          # optional: a look (obscura.looks) after the tone curve; default "none"

    [demosaic]
    method = "rcd"

    [denoise]
    method = "bilateral"
    luma_strength = 0.8
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from obscura.core.colour import SPACES
from obscura.core.errors import InputError, InvalidParameter, UnsupportedFormat

__all__ = ["RECIPES", "Recipe", "Stage", "get_recipe", "load_recipe", "recipe_from_dict"]


@dataclass(frozen=True)
class Stage:
    """One stage's method (``"none"`` skips it) and its keyword options."""

    method: str = "none"
    options: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def of(cls, method: str, **options: Any) -> Stage:
        return cls(method, tuple(sorted(options.items())))

    @property
    def enabled(self) -> bool:
        return self.method not in ("none", "", None)

    @property
    def kwargs(self) -> dict[str, Any]:
        return dict(self.options)


STAGES = (
    "bad_pixels",
    "shading",
    "white_balance",
    "highlights",
    "demosaic",
    "lens",
    "colour",
    "denoise",
    "exposure",
    "tone_curve",
    "local_tone",
    "sharpen",
)


# The default look's tone: Hable's filmic curve with its white at 6 (scene-linear, middle grey 0.18),
# a display-space contrast of 1.35 around middle grey, and auto exposure that keeps the 99.5th
# percentile at or below that white. Chosen by eye on the real raws of ../shared/data.
_WHITE = 6.0
_CONTRAST = 1.35


def _tone() -> Stage:
    return Stage.of("filmic", white=_WHITE, contrast=_CONTRAST)


def _exposure() -> Stage:
    return Stage.of("auto", ev=0.0, highlight_white=_WHITE)


@dataclass(frozen=True)
class Recipe:
    """Which method and options each stage of :func:`obscura.isp.develop.develop` uses."""

    name: str = "default"
    bad_pixels: Stage = field(default_factory=lambda: Stage.of("auto"))
    shading: Stage = field(default_factory=lambda: Stage.of("gain_map"))
    white_balance: Stage = field(default_factory=lambda: Stage.of("as_shot"))
    highlights: Stage = field(default_factory=lambda: Stage.of("blend"))
    demosaic: Stage = field(default_factory=lambda: Stage.of("rcd"))
    lens: Stage = field(default_factory=lambda: Stage.of("dng_opcodes"))
    colour: Stage = field(default_factory=lambda: Stage.of("dng"))  # "dng" (DNG 1.4 §6) or "libraw"
    denoise: Stage = field(default_factory=lambda: Stage.of("bilateral"))
    exposure: Stage = field(default_factory=_exposure)
    tone_curve: Stage = field(default_factory=_tone)
    local_tone: Stage = field(
        default_factory=lambda: Stage.of(
            "exposure_fusion",
            strength=0.6,
            ev_boost=1.5,
            curve_options=(("contrast", _CONTRAST), ("white", _WHITE)),
        )
    )
    sharpen: Stage = field(default_factory=lambda: Stage.of("usm", amount=0.4, radius=1.0))
    working_space: str = "linear_prophoto"
    output_space: str = "srgb"
    crop: bool = True  # apply the DNG DefaultCrop
    orient: bool = True  # rotate/flip upright from the Orientation tag
    look: str = "none"  # a look (obscura.looks: built-in name or .toml path) after the tone curve; "none" skips

    def replace(self, **changes: Any) -> Recipe:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            out[f.name] = {"method": v.method, **v.kwargs} if isinstance(v, Stage) else v
        return out


def recipe_from_dict(d: Mapping[str, Any], *, source: str = "recipe") -> Recipe:
    """Build a Recipe from a mapping (parsed TOML), validating names and spaces."""
    d = dict(d)
    base = d.pop("base", None)
    recipe = get_recipe(base) if base else Recipe()
    changes: dict[str, Any] = {}
    valid = {f.name for f in dataclasses.fields(Recipe)}
    for key, value in d.items():
        if key not in valid:
            raise InvalidParameter(f"{source}: unknown recipe key {key!r}; valid keys: {', '.join(sorted(valid))}")
        if key in STAGES:
            if isinstance(value, str):
                changes[key] = Stage.of(value)
            elif isinstance(value, Mapping):
                opts = dict(value)
                method = opts.pop("method", getattr(recipe, key).method)
                changes[key] = Stage.of(str(method), **opts)
            else:
                raise InvalidParameter(f"{source}: [{key}] must be a table or a method name; got {value!r}")
        else:
            changes[key] = value
    recipe = dataclasses.replace(recipe, **changes)
    for key in ("working_space", "output_space"):
        if getattr(recipe, key) not in SPACES:
            raise InvalidParameter(f"{source}: unknown {key} {getattr(recipe, key)!r}; valid: {', '.join(SPACES)}")
    if not isinstance(recipe.look, str) or not recipe.look:
        raise InvalidParameter(f"{source}: look must be a look name or a .toml path; got {recipe.look!r}")
    if recipe.output_space not in ("srgb", "display_p3"):
        raise InvalidParameter(f"{source}: output_space must be 'srgb' or 'display_p3'; got {recipe.output_space!r}")
    return recipe


def load_recipe(path: str | Path) -> Recipe:
    """Load a recipe from a TOML file."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: recipe file not found")
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise UnsupportedFormat(f"{p}: not a valid TOML recipe: {e}") from None
    data.setdefault("name", p.stem)
    return recipe_from_dict(data, source=str(p))


RECIPES: dict[str, Recipe] = {
    "default": Recipe(),
    "fast": Recipe(
        name="fast",
        bad_pixels=Stage.of("none"),
        highlights=Stage.of("clip"),
        demosaic=Stage.of("bilinear"),
        denoise=Stage.of("none"),
        local_tone=Stage.of("none"),
        sharpen=Stage.of("none"),  # costs a tenth of the time and is barely visible at preview sizes
        working_space="linear_srgb",  # the output's own primaries: encode needs no matrix
    ),
    "reference": Recipe(
        name="reference",
        bad_pixels=Stage.of("none"),
        colour=Stage.of("libraw"),  # LibRaw's fixed D65 matrix: the rendering other converters make
        highlights=Stage.of("clip"),
        demosaic=Stage.of("rcd"),
        denoise=Stage.of("none"),
        exposure=Stage.of("none", ev=0.0),
        tone_curve=Stage.of("linear"),
        local_tone=Stage.of("none"),
        sharpen=Stage.of("none"),
    ),
}


def get_recipe(recipe: str | Path | Recipe | None) -> Recipe:
    """A built-in recipe by name, a TOML file, or a Recipe as is (None gives ``default``)."""
    if recipe is None:
        return RECIPES["default"]
    if isinstance(recipe, Recipe):
        return recipe
    name = str(recipe)
    if name in RECIPES:
        return RECIPES[name]
    if name.endswith(".toml") or Path(name).is_file():
        return load_recipe(name)
    raise InvalidParameter(f"unknown recipe {name!r}; built-in recipes: {', '.join(RECIPES)} (or a .toml file)")
