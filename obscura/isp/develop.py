"""develop: one raw frame in, a finished (display-encoded) Image out.

The stages run in the order of the DNG specification and of a camera ISP::

    OpcodeList1 → linearize → OpcodeList2 (gain maps) → bad pixels → white balance → demosaic
    → highlights → OpcodeList3 (lens) → colour and exposure (camera → working space, one matrix)
    → denoise → local tone → tone curve → sharpen → crop/orient → encode

Each stage is a registry of pure functions in its own module; the recipe names the method and the
options of each. Global decisions (white balance, auto exposure) are made once, on a half-size
preview of the whole frame.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

from obscura.core.colour import apply_matrix, rgb_to_xyz_d50_matrix
from obscura.core.device import resolve_device
from obscura.core.errors import InvalidParameter, ShapeError
from obscura.core.types import Image, RawFrame, RawMeta
from obscura.isp import colour as colour_stage
from obscura.isp import demosaic as demosaic_stage
from obscura.isp import encode as encode_stage
from obscura.isp import highlights as highlight_stage
from obscura.isp import white_balance as wb_stage
from obscura.isp.linearize import linearize
from obscura.isp.opcodes import apply_opcodes
from obscura.isp.recipe import Recipe, get_recipe

__all__ = ["develop", "develop_linear", "orient"]

Progress = Callable[[str], None] | None


def orient(x: torch.Tensor, orientation: int) -> torch.Tensor:
    """Turn a (..., H, W) tensor upright according to the EXIF/TIFF Orientation tag (1–8)."""
    if orientation in (1, 0):
        return x
    ops = {
        2: lambda t: t.flip(-1),
        3: lambda t: t.flip(-1, -2),
        4: lambda t: t.flip(-2),
        5: lambda t: t.transpose(-1, -2),
        6: lambda t: t.transpose(-1, -2).flip(-1),
        7: lambda t: t.transpose(-1, -2).flip(-1, -2),
        8: lambda t: t.transpose(-1, -2).flip(-2),
    }
    if orientation not in ops:
        raise InvalidParameter(f"orientation must be 1..8; got {orientation}")
    return ops[orientation](x).contiguous()


def _crop(x: torch.Tensor, crop: tuple[int, int, int, int] | None) -> torch.Tensor:
    if not crop:
        return x
    cx, cy, cw, ch = (int(v) for v in crop)
    h, w = x.shape[-2:]
    if cw <= 0 or ch <= 0 or cx < 0 or cy < 0 or cx + cw > w or cy + ch > h:
        return x  # a crop that does not fit is ignored rather than guessed at
    return x[..., cy : cy + ch, cx : cx + cw]


def exposure_ev(preview_wb: torch.Tensor, *, meta: RawMeta, recipe: Recipe, camera_to_working: np.ndarray) -> float:
    """The exposure (EV) the recipe asks for: its offset, BaselineExposure, and automatic exposure.

    Automatic exposure is measured on the small white-balanced preview (camera RGB) after the
    colour matrix, so that it costs nothing at full size and the gain folds into the colour matrix.
    """
    from obscura.isp import tone

    opts = recipe.exposure.kwargs
    method = recipe.exposure.method
    if method not in ("auto", "baseline", "none"):
        raise InvalidParameter(f"unknown exposure method {method!r}; valid: auto, baseline, none")
    ev = float(opts.pop("ev", 0.0))
    if method in ("auto", "baseline"):
        ev += float(meta.baseline_exposure)
    if method == "auto":
        small = apply_matrix(preview_wb.clamp_min(0), camera_to_working) * 2.0**ev
        weights = tuple(float(w) for w in rgb_to_xyz_d50_matrix(recipe.working_space)[1])
        ev += tone.auto_exposure(small, luma_weights=weights, **opts)
    return ev


def develop_linear(
    raw: RawFrame, *, recipe: Recipe, progress: Progress = None
) -> tuple[Image, torch.Tensor, torch.Tensor, float]:
    """The scene-referred part of develop: raw → white-balanced, demosaiced, exposed image in the working space.

    Returns the Image (linear, ``recipe.working_space``), the camera neutral, the WB gains, and the
    exposure (EV) that was applied (folded into the colour matrix).
    """
    say = progress or (lambda s: None)
    meta = raw.meta
    x = raw.data.to(torch.float32)

    if meta.opcode_list1:
        x = apply_opcodes(x, meta.opcode_list1, cfa=meta.cfa, scale=65535.0)  # List1 works on raw codes
    say("linearize")
    lin = linearize(RawFrame(x, meta))
    x = lin.data
    if recipe.shading.enabled and meta.opcode_list2:
        x = apply_opcodes(x, meta.opcode_list2, cfa=meta.cfa)

    mosaic = meta.cfa != ""
    if mosaic and recipe.bad_pixels.enabled:
        from obscura.isp.bad_pixels import fix_bad_pixels

        bp_options = recipe.bad_pixels.kwargs
        if recipe.bad_pixels.method == "auto" and meta.noise_profile and "sigma" not in bp_options:
            bp_options.setdefault("noise_profile", meta.noise_profile)

        say("bad pixels")
        x = fix_bad_pixels(x, cfa=meta.cfa, method=recipe.bad_pixels.method, points=meta.bad_pixels, **bp_options)

    say("white balance")
    if mosaic:
        preview = wb_stage.bin_mosaic_rgb(x, cfa=meta.cfa)
    else:
        step = max(1, int((x.shape[-2] * x.shape[-1] / 2**20) ** 0.5))
        preview = x[:, ::step, ::step]
    neutral = wb_stage.estimate_neutral(
        preview, method=recipe.white_balance.method, meta=meta, **recipe.white_balance.kwargs
    )
    gains = wb_stage.white_balance_gains(neutral)
    gains = gains / gains.min()  # the least-amplified channel saturates at 1 (as LibRaw scales)

    matrix = colour_stage.camera_to_working_matrix(
        meta, neutral=neutral, space=recipe.working_space, adaptation=recipe.colour.method
    )
    say("exposure")
    preview_wb = (preview * gains.to(preview)[:, None, None]).clamp_max(1.0)
    ev = exposure_ev(preview_wb, meta=meta, recipe=recipe, camera_to_working=matrix)

    if mosaic:
        x = wb_stage.apply_white_balance_mosaic(x, gains, cfa=meta.cfa)
        say("demosaic")
        rgb = demosaic_stage.demosaic(x, cfa=meta.cfa, method=recipe.demosaic.method, **recipe.demosaic.kwargs)
        if rgb.shape[-2:] != x.shape[-2:]:  # e.g. Quad Bayer binning halves the size
            meta = meta.replace(default_crop=None)
    else:
        rgb = x * gains.to(x)[:, None, None]

    if recipe.highlights.enabled:
        say("highlights")
        rgb = highlight_stage.reconstruct_highlights(
            rgb, saturation=gains.to(rgb), method=recipe.highlights.method, **recipe.highlights.kwargs
        )
    if recipe.lens.enabled and meta.opcode_list3:
        say("lens corrections")
        rgb = apply_opcodes(rgb, meta.opcode_list3, cfa="")

    say("colour")
    rgb = apply_matrix(rgb, matrix * 2.0**ev)  # camera → working space, with the exposure gain
    return Image(rgb, recipe.working_space, meta), neutral, gains, ev


def develop(
    raw: RawFrame,
    *,
    recipe: Recipe | str | None = None,
    device: torch.device | str | None = None,
    progress: Progress = None,
) -> Image:
    """Develop a raw frame into a display-encoded Image (``recipe.output_space``, values in [0, 1]).

    ``device`` defaults to the raw frame's device; ``"auto"`` picks CUDA when present.
    """
    if not isinstance(raw, RawFrame):
        raise ShapeError(f"develop expects a RawFrame; got {type(raw).__name__}")
    r = get_recipe(recipe)
    dev = resolve_device(device, like=raw.data)
    raw = raw.to(dev) if raw.data.device != dev else raw
    say = progress or (lambda s: None)

    with torch.no_grad():
        img, _neutral, gains, ev = develop_linear(raw, recipe=r, progress=progress)
        meta = img.meta
        x = img.data

        if r.denoise.enabled:
            from obscura.isp.denoise import denoise

            say("denoise")
            x = denoise(
                x,
                method=r.denoise.method,
                noise_profile=meta.noise_profile,
                iso=meta.iso,
                gains=gains * 2.0**ev,  # the noise was amplified by white balance and exposure
                **r.denoise.kwargs,
            )

        from obscura.isp import tone

        say("tone")
        if r.local_tone.enabled:
            x = tone.local_tone_map(x, method=r.local_tone.method, **r.local_tone.kwargs)
        x = tone.tone_curve(x, method=r.tone_curve.method, **r.tone_curve.kwargs)

        if r.sharpen.enabled:
            from obscura.isp.sharpen import sharpen

            say("sharpen")
            x = sharpen(x, method=r.sharpen.method, **r.sharpen.kwargs)

        if r.crop:
            x = _crop(x, meta.default_crop)
        if r.orient:
            x = orient(x, meta.orientation)
        say("encode")
        out = encode_stage.encode(Image(x, r.working_space, meta), space=r.output_space)
    if not math.isfinite(float(out.data.float().mean())):
        raise InvalidParameter("develop produced non-finite values (check the raw's metadata)")
    return out
