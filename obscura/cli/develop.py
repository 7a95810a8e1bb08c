"""``obscura develop FILE... -o OUT``: raw files to finished photos."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from obscura.cli.common import LAYOUT_HELP, error_line, parse_layout, read_input
from obscura.core.errors import InvalidParameter, ObscuraError, OutputExists, UnsupportedFormat

FORMATS = {
    "jpg": ".jpg",
    "jpeg": ".jpg",
    "png": ".png",
    "tif": ".tif",
    "tiff": ".tif",
    "heic": ".heic",
    "avif": ".avif",
}
SPACES = {"srgb": "srgb", "p3": "display_p3", "display_p3": "display_p3"}


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("develop", help="develop raw files into finished photos", description=__doc__)
    p.add_argument("files", nargs="+", metavar="FILE", help="raw files (DNG or any format LibRaw reads)")
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="output file (one input) or folder")
    p.add_argument("--recipe", default="default", help="built-in recipe (default, fast, reference) or a .toml file")
    p.add_argument("--look", default=None, help="a look after the tone curve: a built-in look name or a .toml file")
    p.add_argument("--format", choices=sorted(FORMATS), default=None, help="output format (default: OUT's, else jpg)")
    p.add_argument("--space", choices=sorted(SPACES), default="srgb", help="output colour space")
    p.add_argument("--quality", type=int, default=92, help="JPEG/HEIF/AVIF quality 1-100")
    p.add_argument("--bits", type=int, choices=(8, 16, 32), default=None, help="bits per sample (PNG/TIFF)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:N or auto")
    p.add_argument("--layout", default=None, help=LAYOUT_HELP)
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=run)


def output_paths(files: list[str], output: str, fmt: str | None) -> list[Path]:
    """Where each input's photo goes: OUT itself for one input with a suffix, else OUT/<stem>.<fmt>."""
    out = Path(output)
    single_file = len(files) == 1 and out.suffix and not out.is_dir()
    if single_file:
        if out.suffix.lower().lstrip(".") not in FORMATS:
            raise UnsupportedFormat(
                f"{out}: cannot tell the output format from the suffix {out.suffix!r}; "
                f"valid: {', '.join(sorted(FORMATS))}"
            )
        if fmt and FORMATS[fmt] != FORMATS.get(out.suffix.lower().lstrip(".")):
            raise InvalidParameter(f"{out}: suffix does not match --format {fmt}")
        return [out]
    if out.suffix and not out.is_dir():
        raise InvalidParameter(f"{out}: several inputs need an output folder, not a file name")
    suffix = FORMATS[fmt or "jpg"]
    paths = [out / (Path(f).stem + suffix) for f in files]
    if len(set(paths)) != len(paths):
        raise InvalidParameter("two inputs share a file name; develop them into different folders")
    return paths


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from obscura.io.write import write
    from obscura.isp.develop import develop
    from obscura.isp.recipe import get_recipe

    if not 1 <= args.quality <= 100:
        raise InvalidParameter(f"--quality must be in 1..100; got {args.quality}")
    recipe = get_recipe(args.recipe)
    recipe = recipe.replace(output_space=SPACES[args.space])
    if args.look is not None:
        from obscura.looks.look import load_look

        load_look(args.look)  # an unknown look fails before any raw is read
        recipe = recipe.replace(look=args.look)
    layout = parse_layout(args.layout)
    outs = output_paths(args.files, args.output, args.format)
    if len(outs) > 1 or not outs[0].suffix:
        folder = Path(args.output)
        if not folder.exists():
            try:
                folder.mkdir(parents=True)
            except OSError as e:
                raise ObscuraError(f"{folder}: cannot create output folder: {e.strerror}") from None
    failures = 0
    bar = tqdm(list(zip(args.files, outs)), disable=args.quiet or len(outs) < 2, unit="photo", leave=False)
    for src, dst in bar:
        bar.set_description(Path(src).name)
        try:
            if dst.exists() and not args.overwrite:
                raise OutputExists(f"{dst}: already exists (use --overwrite to replace it)")
            t0 = time.perf_counter()
            raw = read_input(src, layout=layout)
            image = develop(raw, recipe=recipe, device=args.device)
            write(image, dst, quality=args.quality, bits=args.bits, overwrite=args.overwrite)
            if not args.quiet:
                bar.write(f"{src} -> {dst} ({image.width}x{image.height}, {time.perf_counter() - t0:.2f} s)")
        except ObscuraError as e:
            failures += 1
            error_line(str(e))
    bar.close()
    return 2 if failures else 0
