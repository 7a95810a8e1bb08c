"""``obscura burst FRAMES... -o OUT``: merge a raw burst (a folder or a list of files) into one photo.

Modes: ``merge`` (HDR+-style align and merge, Hasinoff et al. 2016), ``sr`` (handheld multi-frame
super-resolution, Wronski et al. 2019; ``--scale``), ``hdr`` (raw exposure brackets merged into a linear
radiance map; display-encoded brackets, e.g. JPEGs, are fused with Mertens et al. 2007) and ``night``
(a long burst merged and developed with the night recipe). ``--dng`` also writes the merged raw.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Sequence
from pathlib import Path

from obscura.core.errors import InputError, InvalidParameter, ShapeError, UnsupportedFormat

MODES = ("merge", "sr", "hdr", "night")
SCALE_RANGE = (1.0, 4.0)
MAX_FRAMES = 64


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("burst", help="merge a raw burst into one photo (merge, sr, hdr, night)", description=__doc__)
    p.add_argument("frames", nargs="+", metavar="FRAMES", help="raw files of one burst, or one folder of them")
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="output photo (.jpg, .png, .tif, .heic, .avif)")
    p.add_argument("--mode", default="merge", help=f"one of {', '.join(MODES)} (default: merge)")
    p.add_argument("--scale", type=float, default=None, help="super-resolution factor in [1, 4] (--mode sr; default 2)")
    p.add_argument("--reference", type=int, default=None, metavar="N", help="index of the reference frame")
    p.add_argument("--dng", default=None, metavar="PATH", help="also write the merged raw as a DNG")
    p.add_argument("--recipe", default=None, help="built-in recipe or a .toml file (default: default; night: night)")
    p.add_argument("--quality", type=int, default=92, help="JPEG/HEIF/AVIF quality 1-100")
    p.add_argument("--bits", type=int, choices=(8, 16, 32), default=None, help="bits per sample (PNG/TIFF)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:N or auto")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=run)


# ------------------------------------------------------------------------------------ inputs


def burst_paths(frames: Sequence[str]) -> list[Path]:
    """The files of a burst: one folder (its raw files, else its images, sorted by name) or a list of files."""
    from obscura.io.raw import RAW_EXTENSIONS

    if len(frames) == 1 and Path(frames[0]).is_dir():
        folder = Path(frames[0])
        files = sorted(f for f in folder.iterdir() if f.is_file() and not f.name.startswith("."))
        raws = [f for f in files if f.suffix.lower().lstrip(".") in RAW_EXTENSIONS]
        paths = raws or [f for f in files if _is_image(f)]
        if not paths:
            raise InputError(f"{folder}: holds no raw files ({', '.join(sorted(RAW_EXTENSIONS))})")
    else:
        paths = [Path(f) for f in frames]
        for p in paths:
            if not p.exists():
                raise InputError(f"{p}: no such file")
            if p.is_dir():
                raise InputError(f"{p}: is a folder; give one folder or a list of files, not both")
    if len(paths) > MAX_FRAMES:
        raise InvalidParameter(f"a burst takes at most {MAX_FRAMES} frames; got {len(paths)}")
    return paths


def _is_image(p: Path) -> bool:
    """Whether ``p``'s suffix is one of the developed-image formats obscura.io.write reads and writes."""
    from obscura.io.write import FORMATS

    return any(p.suffix.lower() in suffixes for suffixes in FORMATS.values())


def check_frames(frames: Sequence, paths: Sequence[Path]) -> None:
    """One size, one CFA pattern and one camera (make, model) across the burst; the error names the file."""
    first, fp = frames[0], paths[0]
    for f, p in zip(frames[1:], paths[1:], strict=True):
        if f.meta.cfa != first.meta.cfa:
            raise ShapeError(
                f"{p}: CFA {f.meta.cfa!r} differs from {fp.name} ({first.meta.cfa!r}); one burst, one pattern"
            )
        if tuple(f.data.shape) != tuple(first.data.shape):
            raise ShapeError(
                f"{p}: size {tuple(f.data.shape)} differs from {fp.name} {tuple(first.data.shape)}; one burst, one size"
            )
        cam, cam0 = (f.meta.make, f.meta.model), (first.meta.make, first.meta.model)
        if cam != cam0:
            raise InvalidParameter(f"{p}: camera {' '.join(cam)!r} differs from {fp.name} ({' '.join(cam0)!r})")
    if first.meta.cfa == "":
        raise ShapeError(f"{fp}: LinearRaw (demosaiced) frames cannot be merged; a burst needs CFA mosaics")


def check_options(args: argparse.Namespace, n_frames: int | None = None) -> float | None:
    """Validate mode, scale, reference and quality before any frame is read; returns the SR scale."""
    if args.mode not in MODES:
        raise InvalidParameter(f"unknown --mode {args.mode!r}; valid modes: {', '.join(MODES)}")
    if not 1 <= args.quality <= 100:
        raise InvalidParameter(f"--quality must be in 1..100; got {args.quality}")
    scale = args.scale
    if scale is not None and args.mode != "sr":
        raise InvalidParameter(f"--scale applies to --mode sr only; got --mode {args.mode}")
    if args.mode == "sr":
        scale = 2.0 if scale is None else scale
        lo, hi = SCALE_RANGE
        if not (math.isfinite(scale) and lo <= scale <= hi):
            raise InvalidParameter(f"--scale must be in [{lo:g}, {hi:g}]; got {args.scale}")
    if n_frames is not None and args.reference is not None and not -n_frames <= args.reference < n_frames:
        raise InvalidParameter(f"--reference must index a frame (0..{n_frames - 1}); got {args.reference}")
    return scale


def output_path(output: str) -> Path:
    from obscura.cli.develop import FORMATS

    out = Path(output)
    if out.suffix.lower().lstrip(".") not in FORMATS:
        raise UnsupportedFormat(
            f"{out}: cannot tell the output format from the suffix {out.suffix!r}; valid: {', '.join(sorted(FORMATS))}"
        )
    return out


# ------------------------------------------------------------------------------------ raw output


def dng_ready(frame):
    """A RawFrame write_dng can store: integral uint16 values. Float results (HDR radiance, a LinearRaw SR
    frame) are scaled so that their white level maps to 65535, clipped to [0, 65535] and rounded; the
    levels follow, so normalized values (and the NoiseProfile, which is in normalized units) are kept."""
    import torch

    from obscura.core.types import RawFrame

    x = frame.data.to(torch.float32)
    if bool((x == torch.round(x)).all()) and float(x.min()) >= 0 and float(x.max()) <= 65535:
        return frame
    m = frame.meta
    blk = max(m.black_level) if m.black_level else 0.0
    if any(b != 0 for b in m.black_level):
        raise InvalidParameter("cannot store a float raw with a black level as DNG")  # merges give black 0
    span = float(m.white_level) - blk
    s = 65535.0 / span
    data = torch.round(x.clamp(0.0, span) * s)
    return RawFrame(data, m.replace(white_level=65535.0))


# ------------------------------------------------------------------------------------ run


def _equal_exposures(metas) -> bool:
    from obscura.burst.hdr import exposure_scale

    try:
        e = [exposure_scale(m) for m in metas]
    except InvalidParameter:
        return True  # no exposure times: a plain burst
    return max(e) <= min(e) * 1.001


def _merge(burst, args: argparse.Namespace, scale: float | None, say):
    """The merged RawFrame of ``burst`` for ``args.mode``."""
    if args.mode == "sr":
        from obscura.burst.superres import super_resolve_frame

        return super_resolve_frame(burst, scale=scale, reference=args.reference, device=args.device, progress=say)
    if args.mode == "hdr":
        from obscura.burst.hdr import merge_brackets

        if _equal_exposures(burst.metas):
            raise InvalidParameter("--mode hdr needs frames of different exposures (a bracket); use --mode merge")
        return merge_brackets(burst, reference=args.reference)
    from obscura.burst.merge import merge_burst

    if args.mode == "night" and not _equal_exposures(burst.metas):
        from obscura.burst.hdr import merge_brackets

        return merge_brackets(burst, reference=args.reference)
    return merge_burst(burst, reference=args.reference, device=args.device, progress=say)


def _fuse_images(paths: Sequence[Path], args: argparse.Namespace, out: Path, bar) -> int:
    """Display-encoded brackets (JPEG, PNG, ...) → Mertens exposure fusion (``--mode hdr`` only)."""
    from obscura.burst.hdr import fuse_exposures
    from obscura.core.types import Image
    from obscura.io.write import read_image, write

    if args.mode != "hdr":
        raise InvalidParameter(f"{paths[0]}: not a raw file; only --mode hdr fuses developed images (JPEG, PNG, ...)")
    if args.dng is not None:
        raise InvalidParameter("--dng needs raw frames; developed images have no raw to write")
    images = []
    for p in bar:
        bar.set_description(p.name)
        im = read_image(p)
        if images and im.data.shape != images[0].data.shape:
            raise ShapeError(
                f"{p}: size {tuple(im.data.shape)} differs from {paths[0].name} {tuple(images[0].data.shape)}"
            )
        images.append(im)
    n = len(images)
    if n < 2:
        raise InvalidParameter(f"exposure fusion needs at least 2 images; got {n}")
    if args.reference is not None and not -n <= args.reference < n:
        raise InvalidParameter(f"--reference must index a frame (0..{n - 1}); got {args.reference}")
    bar.set_description("fusing")
    from obscura.core.colour import convert

    ims = [convert(im.data, src=im.space, dst="srgb") for im in images]
    fused = fuse_exposures(ims, reference=args.reference)
    write(Image(fused, "srgb"), out, quality=args.quality, bits=args.bits, overwrite=args.overwrite)
    return n


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from obscura.io.atomic import check_output_path
    from obscura.io.raw import read_raw
    from obscura.io.write import write
    from obscura.isp.develop import develop
    from obscura.isp.recipe import get_recipe

    t0 = time.perf_counter()
    scale = check_options(args)
    out = check_output_path(output_path(args.output), overwrite=args.overwrite)
    dng = None
    if args.dng is not None:
        dng = check_output_path(args.dng, overwrite=args.overwrite)
        if dng.suffix.lower() != ".dng":
            raise UnsupportedFormat(f"{dng}: --dng needs a .dng file name")
        if dng.resolve() == out.resolve():
            raise InvalidParameter(f"{dng}: --dng and -o name the same file")
    if args.recipe is not None or args.mode != "night":
        recipe = get_recipe(args.recipe)  # an unknown recipe fails before any frame is read
    else:
        from obscura.burst.hdr import night_recipe

        recipe = night_recipe()
    paths = burst_paths(args.frames)
    bar = tqdm(paths, disable=args.quiet, unit="frame", leave=False)
    try:
        if all(_is_image(p) for p in paths):
            n = _fuse_images(paths, args, out, bar)
            if not args.quiet:
                bar.write(f"{n} images -> {out} (exposure fusion, {time.perf_counter() - t0:.2f} s)")
            return 0
        frames = []
        for p in bar:
            bar.set_description(p.name)
            frames.append(read_raw(p))
            check_frames(frames, paths[: len(frames)])
        check_options(args, len(frames))
        from obscura.core.types import Burst

        burst = Burst.from_frames(frames)
        del frames

        def say(stage: str) -> None:
            bar.set_description(stage)
            bar.refresh()

        say(args.mode)
        merged = _merge(burst, args, scale, say)
        if dng is not None:
            from obscura.io.dng import write_dng

            say("writing DNG")
            write_dng(dng_ready(merged), dng, overwrite=args.overwrite)
        say("developing")
        image = develop(merged, recipe=recipe, device=args.device)
        say("writing")
        write(image, out, quality=args.quality, bits=args.bits, overwrite=args.overwrite)
        if not args.quiet:
            extra = f", raw {dng}" if dng is not None else ""
            bar.write(
                f"{len(burst)} frames -> {out} ({args.mode}, {image.width}x{image.height}{extra}, "
                f"{time.perf_counter() - t0:.2f} s)"
            )
    finally:
        bar.close()
    return 0
