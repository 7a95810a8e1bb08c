"""develop: one raw frame in, a finished (display-encoded) Image out.

The stages run in the order of the DNG specification and of a camera ISP::

    OpcodeList1 → linearize → OpcodeList2 (gain maps) → bad pixels → white balance → demosaic
    → highlights → OpcodeList3 (lens) → colour and exposure (camera → working space, one matrix)
    → denoise → local tone → tone curve → look → sharpen → crop/orient → encode

Each stage is a registry of pure functions in its own module; the recipe names the method and the
options of each.

Two passes. The **global pass** works on the whole mosaic where a stage is cheap or must see the whole
frame: OpcodeLists 1–2, linearization, bad pixels, and every global decision, made once on a
half-size preview: white balance, auto exposure, the noise profile (from the mosaic when the raw has
none), and the low-resolution gain of local tone mapping. The **strip pass** then runs the pixel
pipeline (white balance on the mosaic → demosaic → highlights → colour → denoise → local tone →
tone curve → sharpen → crop → encode) on overlapping horizontal strips of ``tile_rows`` rows plus a
halo covering every stage's support, writing each strip's interior into the output: memory stays
bounded and the strips' temporaries stay in cache, and the result equals the whole-frame run
(``tile_rows=None``) up to float rounding. Stages that need the whole frame (OpcodeList3 lens warps,
``reconstruct`` highlights, Quad Bayer binning) make develop run as one strip.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch

from obscura.core.cfa import cfa_period, channel_of_sites
from obscura.core.colour import apply_matrix, rgb_to_xyz_d50_matrix
from obscura.core.device import resolve_device
from obscura.core.errors import InvalidParameter, ShapeError
from obscura.core.types import Image, RawFrame, RawMeta
from obscura.isp import colour as colour_stage
from obscura.isp import demosaic as demosaic_stage
from obscura.isp import encode as encode_stage
from obscura.isp import highlights as highlight_stage
from obscura.isp import tone
from obscura.isp import white_balance as wb_stage
from obscura.isp._filters import bin2
from obscura.isp.linearize import linearize
from obscura.isp.opcodes import apply_opcodes
from obscura.isp.recipe import Recipe, get_recipe

__all__ = ["DEFAULT_TILE_ROWS", "develop", "develop_linear", "exposure_ev", "orient", "strip_halo"]

Progress = Callable[[str], None] | None

DEFAULT_TILE_ROWS = 256  # rows per strip (plus the halo): a strip's planes stay in the CPU's cache

# Per-stage seconds accumulated inside develop when set to a dict (profiling; not thread-safe).
STAGE_TIMES: dict[str, float] | None = None

# highlight methods that work pixel by pixel (others, e.g. "reconstruct", look at the whole frame)
_PER_PIXEL_HIGHLIGHTS = ("clip", "blend")


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


def _crop_box(size: tuple[int, int], crop: tuple[int, int, int, int] | None) -> tuple[int, int, int, int]:
    """(x, y, w, h) of the DefaultCrop within ``size`` (H, W); the whole frame when absent or not fitting."""
    h, w = size
    if not crop:
        return 0, 0, w, h
    cx, cy, cw, ch = (int(v) for v in crop)
    if cw <= 0 or ch <= 0 or cx < 0 or cy < 0 or cx + cw > w or cy + ch > h:
        return 0, 0, w, h  # a crop that does not fit is ignored rather than guessed at
    return cx, cy, cw, ch


def _exposure_step(size: tuple[int, int], max_samples: int) -> int:
    """The subsampling step auto exposure uses on an image of ``size`` (≤ ``max_samples`` pixels)."""
    h, w = size
    return max(1, math.ceil(math.sqrt(h * w / max(1, int(max_samples)))))


def exposure_ev(preview_wb: torch.Tensor, *, meta: RawMeta, recipe: Recipe, camera_to_working: np.ndarray) -> float:
    """The exposure (EV) the recipe asks for: its offset, BaselineExposure, and automatic exposure.

    Automatic exposure is measured on the small white-balanced preview (camera RGB) after the
    colour matrix, so that it costs nothing at full size and the gain folds into the colour matrix.
    The preview is subsampled to the ``max_samples`` pixels auto exposure looks at before the matrix.
    """
    opts = recipe.exposure.kwargs
    method = recipe.exposure.method
    if method not in ("auto", "baseline", "none"):
        raise InvalidParameter(f"unknown exposure method {method!r}; valid: auto, baseline, none")
    ev = float(opts.pop("ev", 0.0))
    if method in ("auto", "baseline"):
        ev += float(meta.baseline_exposure)
    if method == "auto":
        ms = int(opts.get("max_samples", 1 << 18))
        step = _exposure_step(tuple(preview_wb.shape[-2:]), ms)
        sub = preview_wb[:, ::step, ::step]
        small = apply_matrix(sub.clamp_min(0), camera_to_working) * 2.0**ev
        opts["max_samples"] = max(ms, small.shape[-2] * small.shape[-1])  # already subsampled
        weights = tuple(float(w) for w in rgb_to_xyz_d50_matrix(recipe.working_space)[1])
        ev += tone.auto_exposure(small, luma_weights=weights, **opts)
    return ev


@dataclass(frozen=True)
class _Global:
    """What the global pass decides for the whole frame."""

    x: torch.Tensor  # linearized mosaic (H, W), or linear camera RGB (3, H, W) for LinearRaw
    meta: RawMeta
    preview: torch.Tensor  # camera RGB, not white-balanced: binned mosaic, or a subsample for LinearRaw
    neutral: torch.Tensor
    gains: torch.Tensor
    matrix: np.ndarray  # camera → working space (without the exposure gain)
    ev: float

    @property
    def mosaic(self) -> bool:
        return self.meta.cfa != ""


def monochrome_as_rgb(raw: RawFrame) -> RawFrame:
    """A monochrome (1, H, W) LinearRaw frame as three equal planes whose colour model is neutral.

    The camera space is declared linear sRGB under D65 with a (1, 1, 1) neutral, so that the DNG colour
    pipeline maps every value to a grey of the same luminance.
    """
    from obscura.core.colour import SPACES, normalised_primary_matrix

    m = raw.meta
    srgb = SPACES["linear_srgb"]
    xyz_to_cam = np.linalg.inv(normalised_primary_matrix(srgb.primaries, srgb.white))
    bl = m.black_level if len(m.black_level) == 1 else (float(np.mean(m.black_level)),)
    meta = m.replace(
        black_level=bl * 3,
        color_matrix1=tuple(float(v) for v in xyz_to_cam.ravel()),
        color_matrix2=None,
        forward_matrix1=None,
        forward_matrix2=None,
        camera_calibration1=None,
        camera_calibration2=None,
        calibration_illuminant1=21,
        calibration_illuminant2=None,
        as_shot_neutral=(1.0, 1.0, 1.0),
        as_shot_white_xy=None,
        noise_profile=tuple(m.noise_profile[:1]) * 3 if m.noise_profile else None,
    )
    return RawFrame(raw.data.expand(3, -1, -1), meta)


def _global_pass(raw: RawFrame, recipe: Recipe, say: Callable[[str], None]) -> _Global:
    """OpcodeList1, linearize, OpcodeList2, bad pixels on the whole frame; WB and exposure from the preview."""
    if raw.meta.cfa == "" and raw.data.shape[0] == 1:
        raw = monochrome_as_rgb(raw)
    meta = raw.meta
    x = raw.data.to(torch.float32)
    if meta.opcode_list1:
        x = apply_opcodes(x, meta.opcode_list1, cfa=meta.cfa, scale=65535.0)  # List1 works on raw codes
    say("linearize")
    x = linearize(RawFrame(x, meta)).data
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
    # only the pixels auto exposure looks at are white-balanced (the same subsample it would take)
    ms = int(recipe.exposure.kwargs.get("max_samples", 1 << 18))
    step = _exposure_step(tuple(preview.shape[-2:]), ms)
    preview_wb = (preview[:, ::step, ::step] * gains.to(preview)[:, None, None]).clamp_max(1.0)
    recipe_ms = recipe if step == 1 else _with_exposure_samples(recipe, preview_wb)
    ev = exposure_ev(preview_wb, meta=meta, recipe=recipe_ms, camera_to_working=matrix)
    return _Global(x, meta, preview, neutral, gains, matrix, ev)


def _with_exposure_samples(recipe: Recipe, sub: torch.Tensor) -> Recipe:
    """The recipe with auto exposure's ``max_samples`` raised to the size of the subsample ``sub``."""
    opts = recipe.exposure.kwargs
    opts["max_samples"] = max(int(opts.get("max_samples", 1 << 18)), sub.shape[-2] * sub.shape[-1])
    return recipe.replace(exposure=recipe.exposure.of(recipe.exposure.method, **opts))


def develop_linear(
    raw: RawFrame, *, recipe: Recipe, progress: Progress = None
) -> tuple[Image, torch.Tensor, torch.Tensor, float]:
    """The scene-referred part of develop: raw → white-balanced, demosaiced, exposed image in the working space.

    Returns the Image (linear, ``recipe.working_space``), the camera neutral, the WB gains, and the
    exposure (EV) that was applied (folded into the colour matrix). Whole frame, in one piece.
    """
    say = progress or (lambda s: None)
    g = _global_pass(raw, recipe, say)
    rgb = _camera_to_working_rows(g, recipe, 0, g.x.shape[-2], say=say)
    meta = g.meta if rgb.shape[-2:] == g.x.shape[-2:] else g.meta.replace(default_crop=None)  # Quad Bayer bin
    return Image(rgb, recipe.working_space, meta), g.neutral, g.gains, g.ev


# ------------------------------------------------------------------------------------ global estimates


def _site_planes(x: torch.Tensor, cfa: str) -> torch.Tensor:
    """(3, H/n, W/n): one CFA site of each colour (the first in the pattern), as sampled by the sensor."""
    n = cfa_period(cfa)
    chans = channel_of_sites(cfa)
    sites = [chans.index(c) for c in range(3)]
    return torch.stack([x[i // n :: n, i % n :: n] for i in sites])


def _noise_profile(g: _Global, recipe: Recipe) -> tuple | None:
    """The noise profile ((a, b) per R, G, B; variance a·x + b in linearized raw units before white
    balance) that denoise uses for every strip: the raw's NoiseProfile, or one estimated once on the
    whole mosaic (one site of each colour: raw samples, whose noise demosaicing has not yet correlated).
    None when the image is too small for an estimate (denoise then estimates on its input)."""
    if g.meta.noise_profile or "noise_profile" in recipe.denoise.options:
        return g.meta.noise_profile
    from obscura.isp.denoise import estimate_noise_profile

    planes = _site_planes(g.x, g.meta.cfa) if g.mosaic else g.x
    try:
        est = estimate_noise_profile(planes, max_blocks=1 << 16)
    except ShapeError:
        return None
    a = [float(e[0]) for e in est]
    b = [float(e[1]) for e in est]
    if g.meta.iso is not None:
        # as denoise's own estimate: a clean-looking estimate on a high-ISO frame is texture-limited
        floor = (2e-4 * math.sqrt(max(float(g.meta.iso), 1.0) / 100.0)) ** 2
        b = [max(v, floor) for v in b]
    return tuple(zip(a, b, strict=True))


def _ltm_coeffs(g: _Global, recipe: Recipe, size: tuple[int, int]) -> torch.Tensor | None:
    """Local tone mapping's low-resolution coefficients, from the preview (white-balanced, highlights
    treated, colour matrix and exposure applied), for an image of ``size``: no full-size pass."""
    if not recipe.local_tone.enabled:
        return None
    opts = recipe.local_tone.kwargs
    step = tone.local_tone_step(size, max_pixels=opts.get("max_pixels", 1 << 20))
    if g.mosaic:
        small = g.preview
        f = max(1, size[0] // small.shape[-2])  # the preview is already binned by f (2, or 4 for Quad Bayer)
    else:
        small, f = g.x, 1
    while f < step:
        small, f = bin2(small), 2 * f
    small = small * g.gains.to(small)[:, None, None]
    if recipe.highlights.enabled:
        small = highlight_stage.reconstruct_highlights(
            small, saturation=g.gains.to(small), method=recipe.highlights.method, **recipe.highlights.kwargs
        )
    small = apply_matrix(small, g.matrix * 2.0**g.ev)
    return tone.local_tone_gain(small, method=recipe.local_tone.method, **opts)


def strip_halo(recipe: Recipe, cfa: str = "RGGB") -> int:
    """Rows of context a strip needs on each side so that its interior equals the whole-frame result:
    the sum of the supports of demosaic, denoise and sharpen (local tone mapping and the rest are
    pixelwise once the global decisions are made), rounded up to whole CFA periods."""
    halo = 16  # demosaic: RCD and Menon pad their tiles by 14 pixels
    if len(cfa) == 16:
        halo += 4  # Quad Bayer remosaicing moves pixels within 4×4 tiles
    if recipe.denoise.enabled:
        o = recipe.denoise.kwargs
        if recipe.denoise.method == "nlm":
            r = int(o.get("search_radius", 3)) + int(o.get("patch_radius", 1))
        elif recipe.denoise.method == "bilateral":
            r = max(int(o.get("luma_radius", 1)), int(o.get("chroma_radius", 2)))
        else:
            r = 8
        halo += 3 * r + 6  # luma at full size, chroma on the 2×2-binned image, detail coring, up-sampling
    if recipe.sharpen.enabled:
        halo += math.ceil(2.5 * float(recipe.sharpen.kwargs.get("radius", 1.0))) + 2
    return -(-halo // 4) * 4


# -------------------------------------------------------------------------------------------- strips


class _Timer:
    """Calls ``progress`` with each stage's name and, when :data:`STAGE_TIMES` is a dict, adds up the
    seconds spent in each stage (per worker thread, so strips running in parallel add their times)."""

    def __init__(self, say: Callable[[str], None]) -> None:
        self.say = say
        self.local = threading.local()
        self.lock = threading.Lock()

    def __call__(self, name: str) -> None:
        if STAGE_TIMES is not None:
            now = time.perf_counter()
            last = getattr(self.local, "last", None)
            if last is not None:
                with self.lock:
                    STAGE_TIMES[last[0]] = STAGE_TIMES.get(last[0], 0.0) + now - last[1]
            self.local.last = (name, now)
        with self.lock:
            self.say(name)


def _camera_to_working_rows(g: _Global, r: Recipe, lo: int, hi: int, *, say: Callable[[str], None]) -> torch.Tensor:
    """Rows [lo, hi) through white balance, demosaic, highlights, lens opcodes and the colour matrix."""
    meta = g.meta
    if g.mosaic:
        say("demosaic")
        m = wb_stage.apply_white_balance_mosaic(g.x[lo:hi], g.gains, cfa=meta.cfa)
        rgb = demosaic_stage.demosaic(m, cfa=meta.cfa, method=r.demosaic.method, **r.demosaic.kwargs)
    else:
        rgb = g.x[:, lo:hi] * g.gains.to(g.x)[:, None, None]
    if r.highlights.enabled:
        say("highlights")
        rgb = highlight_stage.reconstruct_highlights(
            rgb, saturation=g.gains.to(rgb), method=r.highlights.method, **r.highlights.kwargs
        )
    if r.lens.enabled and meta.opcode_list3:
        say("lens corrections")
        rgb = apply_opcodes(rgb, meta.opcode_list3, cfa="")  # only ever on the whole frame
    say("colour")
    return apply_matrix(rgb, g.matrix * 2.0**g.ev)  # camera → working space, with the exposure gain


def _render_rows(
    g: _Global,
    r: Recipe,
    lo: int,
    hi: int,
    *,
    size: tuple[int, int],
    coeffs: torch.Tensor | None,
    profile: tuple | None,
    say: Callable[[str], None],
) -> torch.Tensor:
    """Rows [lo, hi) of the frame through white balance … sharpen: display-linear (3, ·, W) in the working space."""
    meta = g.meta
    x = _camera_to_working_rows(g, r, lo, hi, say=say)
    if r.denoise.enabled:
        from obscura.isp.denoise import denoise

        say("denoise")
        x = denoise(
            x,
            method=r.denoise.method,
            noise_profile=profile,
            iso=meta.iso,
            gains=g.gains * 2.0**g.ev,  # the noise was amplified by white balance and exposure
            matrix=g.matrix,  # ... and mixed by the colour matrix
            **r.denoise.kwargs,
        )
    say("tone")
    if coeffs is not None:  # the local gain and the curve in one pass
        lw = r.local_tone.kwargs.get("luma_weights", tone.REC709_LUMA)
        x = tone.local_tone_curve(
            x, coeffs, top=lo, size=size, luma_weights=lw, method=r.tone_curve.method, **r.tone_curve.kwargs
        )
    else:
        x = tone.tone_curve(x, method=r.tone_curve.method, **r.tone_curve.kwargs)
    if r.look != "none":
        from obscura.looks.look import apply_look

        say("look")  # display-linear, in the working space; vignetting and grain in full-frame coordinates
        x = apply_look(x, look=r.look, space=r.working_space, top=lo, size=(size[0], x.shape[-1]))
    if r.sharpen.enabled:
        from obscura.isp.sharpen import sharpen

        say("sharpen")
        x = sharpen(x, method=r.sharpen.method, **r.sharpen.kwargs)
    return x


def _whole_frame_only(g: _Global, r: Recipe) -> bool:
    """Stages that need the whole frame at once: lens warps, propagating highlight recovery, binning."""
    if r.lens.enabled and g.meta.opcode_list3:
        return True
    if r.highlights.enabled and r.highlights.method not in _PER_PIXEL_HIGHLIGHTS:
        return True
    return len(g.meta.cfa) == 16 and r.demosaic.kwargs.get("quad", "remosaic") != "remosaic"


def develop(
    raw: RawFrame,
    *,
    recipe: Recipe | str | None = None,
    device: torch.device | str | None = None,
    progress: Progress = None,
    tile_rows: int | None = DEFAULT_TILE_ROWS,
) -> Image:
    """Develop a raw frame into a display-encoded Image (``recipe.output_space``, values in [0, 1]).

    ``device`` defaults to the raw frame's device; ``"auto"`` picks CUDA when present. The pixel
    pipeline runs on strips of ``tile_rows`` rows (plus a halo, :func:`strip_halo`); ``None`` runs it
    on the whole frame at once (same result, more memory).
    """
    if not isinstance(raw, RawFrame):
        raise ShapeError(f"develop expects a RawFrame; got {type(raw).__name__}")
    if tile_rows is not None and (isinstance(tile_rows, bool) or not isinstance(tile_rows, int) or tile_rows < 8):
        raise InvalidParameter(f"tile_rows must be an int ≥ 8 or None; got {tile_rows!r}")
    r = get_recipe(recipe)
    if r.look != "none":
        from obscura.looks.look import load_look

        load_look(r.look)  # an unknown look or a bad look file fails before any work
    dev = resolve_device(device, like=raw.data)
    raw = raw.to(dev) if raw.data.device != dev else raw
    say = _Timer(progress or (lambda s: None))

    with torch.no_grad():
        g = _global_pass(raw, r, say)
        meta = g.meta
        H, W = g.x.shape[-2:]
        size = (H, W)
        binned = g.mosaic and len(meta.cfa) == 16 and r.demosaic.kwargs.get("quad", "remosaic") == "bin"
        if binned:  # Quad Bayer binning halves the size
            size = (H // 2, W // 2)
            meta = meta.replace(default_crop=None)
            g = _Global(g.x, meta, g.preview, g.neutral, g.gains, g.matrix, g.ev)
        say("global estimates")
        profile = _noise_profile(g, r) if r.denoise.enabled else None
        coeffs = _ltm_coeffs(g, r, size)

        cx, cy, cw, ch = _crop_box(size, meta.default_crop if r.crop else None)
        period = cfa_period(meta.cfa) if g.mosaic else 1
        halo = strip_halo(r, meta.cfa)
        whole = tile_rows is None or _whole_frame_only(g, r) or tile_rows + 2 * halo >= ch
        rows = ch if whole else int(tile_rows)
        out = torch.empty((3, ch, cw), dtype=torch.float32, device=g.x.device)
        jobs = []
        for top in range(cy, cy + ch, rows):
            bot = min(cy + ch, top + rows)
            if whole:
                lo, hi = 0, H
            else:  # whole CFA periods, so that every strip starts on the same CFA phase
                lo = max(0, (top - halo) // period * period)
                hi = min(H, -(-(bot + halo) // period) * period)
            jobs.append((top, bot, lo, hi))

        def work(job: tuple[int, int, int, int]) -> float:
            top, bot, lo, hi = job
            x = _render_rows(g, r, lo, hi, size=size, coeffs=coeffs, profile=profile, say=say)
            say("encode")
            if binned:
                lo = 0
            strip = x[:, top - lo : bot - lo, cx : cx + cw]
            enc = encode_stage.encode(Image(strip, r.working_space, meta), space=r.output_space).data
            out[:, top - cy : bot - cy] = enc
            say("strip done")
            return float(enc.sum())

        threads = torch.get_num_threads()
        if g.x.device.type != "cpu" or threads == 1 or len(jobs) == 1:
            total = sum(work(job) for job in jobs)
        else:
            # Strips run in parallel, each op single-threaded (as demosaic does with its tiles): a strip's
            # ops are small and cache-resident, and an intra-op parallel region per op costs more than the
            # op whenever the cores are shared. Worker threads take the thread count current when they
            # start (1); torch releases the GIL inside ops.
            torch.set_num_threads(1)
            try:
                with ThreadPoolExecutor(min(threads, len(jobs))) as pool:
                    total = sum(pool.map(work, jobs))
            finally:
                torch.set_num_threads(threads)
        say("orient")
        if r.orient:
            out = orient(out, meta.orientation)
        say("done")
    if not math.isfinite(total):
        raise InvalidParameter("develop produced non-finite values (check the raw's metadata)")
    return Image(out, r.output_space, meta)
