"""``obscura lab ...``: the camera lab. ``obscura lab charts -o DIR`` writes every test chart to print."""

from __future__ import annotations

import argparse
from pathlib import Path

from obscura.core.errors import InvalidParameter, ObscuraError, OutputExists

FORMATS = {"png": (".png",), "pdf": (".pdf",), "both": (".png", ".pdf")}


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("lab", help="the camera lab: test charts and measurements", description=__doc__)
    lab_sub = p.add_subparsers(dest="lab_command", required=True, metavar="SUBCOMMAND")
    add_charts_parser(lab_sub)


def add_charts_parser(sub: argparse._SubParsersAction) -> None:
    from obscura.lab.charts import CHARTS

    p = sub.add_parser(
        "charts",
        help="write the test charts as 16-bit PNG and/or PDF",
        description="Write every test chart (or those named with --chart) to DIR as <name>.png / <name>.pdf.",
    )
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="output folder (created if missing)")
    p.add_argument("--size", default=None, metavar="HxW", help="chart size in pixels, e.g. 600x800 (default: each's)")
    p.add_argument("--format", choices=sorted(FORMATS), default="png", help="file format (default png)")
    p.add_argument("--chart", action="append", choices=CHARTS.names(), default=None, help="only this chart (repeat)")
    p.add_argument("--encoding", choices=("srgb", "linear"), default="srgb", help="PNG encoding (PDF is sRGB)")
    p.add_argument("--dpi", type=float, default=300.0, help="print resolution, pixels per inch (default 300)")
    p.add_argument("--outline", action="store_true", help="outline the ROIs in red (a preview, not for print)")
    p.add_argument("--overwrite", action="store_true", help="replace existing files")
    p.add_argument("--quiet", action="store_true", help="do not list the files written")
    p.set_defaults(run=run_charts)


def parse_size(text: str | None) -> tuple[int, int] | None:
    """``"600x800"`` → (600, 800) (H × W); None stays None."""
    if text is None:
        return None
    parts = text.lower().replace("×", "x").split("x")
    try:
        h, w = (int(s) for s in parts)
    except ValueError:
        raise InvalidParameter(f"--size must be HxW in pixels, e.g. 600x800; got {text!r}") from None
    if h < 1 or w < 1:
        raise InvalidParameter(f"--size must be positive; got {text!r}")
    return h, w


def run_charts(args: argparse.Namespace) -> int:
    from obscura.lab.charts import CHARTS
    from obscura.lab.charts.printable import write_chart

    size = parse_size(args.size)
    if args.encoding == "linear" and args.format != "png":
        raise InvalidParameter("--encoding linear is for PNG only (a PDF chart is sRGB); use --format png")
    names = args.chart or CHARTS.names()
    folder = Path(args.output)
    if folder.exists() and not folder.is_dir():
        raise InvalidParameter(f"{folder}: is a file, not a folder")
    outs = [folder / f"{n}{suffix}" for n in names for suffix in FORMATS[args.format]]
    if not args.overwrite:  # fail before any work rather than halfway through
        for o in outs:
            if o.exists():
                raise OutputExists(f"{o}: already exists (use --overwrite to replace it)")
    # every chart is built before any file is written, so a bad --size writes nothing
    options = {} if size is None else {"size": size}
    charts = {n: CHARTS.get(n)(**options) for n in names}
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ObscuraError(f"{folder}: cannot create output folder: {e.strerror}") from None
    for n, chart in charts.items():
        for suffix in FORMATS[args.format]:
            dst = folder / f"{n}{suffix}"
            enc = args.encoding if suffix == ".png" else "srgb"
            write_chart(chart, dst, encoding=enc, dpi=args.dpi, outline_rois=args.outline, overwrite=args.overwrite)
            if not args.quiet:
                h, w = chart.scene.size
                print(f"{dst} ({w}x{h} px, {w / args.dpi * 25.4:.1f} x {h / args.dpi * 25.4:.1f} mm)")
    return 0
