"""``obscura look apply|list|export|fit``: looks on developed images, as .cube files, and learned from examples.

obscura look apply IMG... --look vibrant -o OUT     # JPEG/PNG/TIFF/HEIF in, the same in the look
obscura look list                                   # the built-in looks and what they do
obscura look export NAME -o NAME.cube [--size 33]   # a look as a 3D LUT for other tools
obscura look fit --before A.png ... --after A2.png ... -o mine.toml   # a look learned from pairs
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from obscura.cli.common import error_line
from obscura.core.errors import InvalidParameter, ObscuraError, OutputExists, UnsupportedFormat


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "look",
        help="apply, list, export and fit looks",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    lsub = p.add_subparsers(dest="look_command", required=True, metavar="ACTION")

    a = lsub.add_parser("apply", help="apply a look to developed images (JPEG, PNG, TIFF, HEIF, AVIF)")
    a.add_argument("files", nargs="+", metavar="IMG", help="developed images")
    a.add_argument("--look", required=True, help="a built-in look (see `obscura look list`) or a .toml file")
    a.add_argument("-o", "--output", required=True, metavar="OUT", help="output file (one input) or folder")
    a.add_argument("--quality", type=int, default=92, help="JPEG/HEIF/AVIF quality 1-100")
    a.add_argument("--bits", type=int, choices=(8, 16, 32), default=None, help="bits per sample (PNG/TIFF)")
    a.add_argument("--seed", type=int, default=0, help="grain seed")
    a.add_argument("--device", default=None, help="cpu, cuda, cuda:N or auto")
    a.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    a.add_argument("--quiet", action="store_true", help="no per-file lines")
    a.set_defaults(run=run_apply)

    s = lsub.add_parser("list", help="list the built-in looks")
    s.set_defaults(run=run_list)

    e = lsub.add_parser("export", help="write a look as a .cube 3D LUT (sRGB in, sRGB out)")
    e.add_argument("name", metavar="NAME", help="a built-in look or a .toml file")
    e.add_argument("-o", "--output", required=True, metavar="NAME.cube", help="the .cube file to write")
    e.add_argument("--size", type=int, default=33, help="LUT nodes per axis (17, 33 or 65 are usual)")
    e.add_argument("--overwrite", action="store_true", help="replace an existing file")
    e.set_defaults(run=run_export)

    f = lsub.add_parser("fit", help="learn a look (a 3D LUT) from before/after image pairs")
    f.add_argument("--before", nargs="+", required=True, metavar="IMG", help="the images without the look")
    f.add_argument("--after", nargs="+", required=True, metavar="IMG", help="the same images with the look")
    f.add_argument("-o", "--output", required=True, metavar="LOOK.toml", help="the look file (a .cube goes beside)")
    f.add_argument("--size", type=int, default=33, help="LUT nodes per axis")
    f.add_argument("--steps", type=int, default=600, help="optimisation steps")
    f.add_argument("--name", default=None, help="the look's name (default: the file's stem)")
    f.add_argument("--device", default=None, help="cpu, cuda, cuda:N or auto")
    f.add_argument("--overwrite", action="store_true", help="replace existing files")
    f.set_defaults(run=run_fit)


def _output_paths(files: list[str], output: str) -> list[Path]:
    """OUT itself for one input when OUT has an image suffix, else OUT/<input name> for each input."""
    out = Path(output)
    if len(files) == 1 and out.suffix and not out.is_dir():
        from obscura.io.write import format_from_path

        format_from_path(out)  # UnsupportedFormat naming the file for a suffix that is no image format
        return [out]
    if out.suffix and not out.is_dir():
        raise InvalidParameter(f"{out}: several inputs need an output folder, not a file name")
    paths = [out / Path(f).name for f in files]
    if len(set(paths)) != len(paths):
        raise InvalidParameter("two inputs share a file name; apply the look to them into different folders")
    return paths


def run_apply(args: argparse.Namespace) -> int:
    from obscura.core.device import resolve_device
    from obscura.core.types import Image
    from obscura.io.write import read_image, write
    from obscura.looks.look import apply_look as look_apply
    from obscura.looks.look import load_look

    if not 1 <= args.quality <= 100:
        raise InvalidParameter(f"--quality must be in 1..100; got {args.quality}")
    look = load_look(args.look)
    dev = resolve_device(args.device)
    outs = _output_paths(args.files, args.output)
    if len(outs) > 1 or not outs[0].suffix:
        folder = Path(args.output)
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ObscuraError(f"{folder}: cannot create output folder: {e.strerror}") from None
    failures = 0
    for src, dst in zip(args.files, outs):
        try:
            if Path(src).resolve() == dst.resolve():
                raise OutputExists(f"{dst}: is the input itself; write the result elsewhere")
            if dst.exists() and not args.overwrite:
                raise OutputExists(f"{dst}: already exists (use --overwrite to replace it)")
            img = read_image(src)
            y = look_apply(img.data.to(dev), look=look, space=img.space, seed=args.seed)
            if img.space in ("srgb", "display_p3"):
                y = y.clamp(0.0, 1.0)
            write(
                Image(y.cpu(), img.space, img.meta), dst, quality=args.quality, bits=args.bits, overwrite=args.overwrite
            )
            if not args.quiet:
                print(f"{src} -> {dst} ({look.name})")
        except ObscuraError as e:
            failures += 1
            error_line(str(e))
    return 2 if failures else 0


def run_list(args: argparse.Namespace) -> int:
    from obscura.looks.look import list_looks, load_look

    for name in list_looks():
        desc = " ".join(load_look(name).description.split())
        print(f"{name:26s} {desc}")
    return 0


def run_export(args: argparse.Namespace) -> int:
    from obscura.io.atomic import check_output_path
    from obscura.looks.look import load_look, look_srgb_fn
    from obscura.looks.lut import bake_srgb, write_cube

    if isinstance(args.size, bool) or not 2 <= args.size <= 129:
        raise InvalidParameter(f"--size must be in 2..129 (17, 33 or 65 are usual); got {args.size}")
    look = load_look(args.name)
    out = Path(args.output)
    if out.suffix.lower() != ".cube":
        raise UnsupportedFormat(f"{out}: the output must be a .cube file")
    check_output_path(out, overwrite=args.overwrite)
    lut = bake_srgb(look_srgb_fn(look), size=args.size, title=f"obscura look {look.name}")
    write_cube(lut, out, overwrite=args.overwrite)
    if look.is_spatial:
        print(f"note: {look.name}'s vignetting and grain depend on the pixel position: not in the LUT", file=sys.stderr)
    print(f"{look.name} -> {out} ({args.size}^3)")
    return 0


def run_fit(args: argparse.Namespace) -> int:
    from obscura.core.colour import convert
    from obscura.io.atomic import check_output_path
    from obscura.io.write import read_image
    from obscura.looks.fit import fit_lut, save_fit

    if len(args.before) != len(args.after):
        raise InvalidParameter(
            f"--before and --after need as many images each; got {len(args.before)} and {len(args.after)}"
        )
    out = Path(args.output)
    if out.suffix.lower() != ".toml":
        raise UnsupportedFormat(f"{out}: the output must be a .toml look file")
    check_output_path(out, overwrite=args.overwrite)
    check_output_path(out.with_suffix(".cube"), overwrite=args.overwrite)

    def srgb(path: str):
        img = read_image(path)
        return convert(img.data, src=img.space, dst="srgb").clamp(0.0, 1.0)

    before = [srgb(p) for p in args.before]
    after = [srgb(p) for p in args.after]
    res = fit_lut(before, after, size=args.size, steps=args.steps, device=args.device, title=args.name or out.stem)
    tp, cp = save_fit(res, out, name=args.name, overwrite=args.overwrite)
    print(f"{tp} + {cp}: mean ΔE00 {res.delta_e_train:.2f} (training), {res.delta_e_holdout:.2f} (held out)")
    return 0
