"""``obscura simulate SCENE -o DIR``: a virtual camera writes real DNGs and their ground truth."""

from __future__ import annotations

import argparse
import math
import sys
from fractions import Fraction
from pathlib import Path

from obscura.core.errors import InvalidParameter

CHARTS = ("colorchecker", "edge", "flat")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "simulate",
        help="capture a scene with a virtual camera: DNGs + ground truth",
        description=__doc__,
    )
    p.add_argument(
        "scene",
        nargs="?",
        metavar="SCENE",
        help=f"an image (PNG/JPEG/TIFF: unprocessed to scene-linear; float TIFF/EXR/npy: linear) or a chart: "
        f"{', '.join(CHARTS)}",
    )
    p.add_argument("-o", "--output", metavar="DIR", help="output folder (DNGs, truth/)")
    p.add_argument("--camera", default="phone-main", help="camera profile name or .toml (see --list-cameras)")
    p.add_argument("--list-cameras", action="store_true", help="list the shipped camera profiles and exit")
    p.add_argument("--iso", type=float, default=None, help="ISO (default: the profile's)")
    p.add_argument("--exposure", default=None, help="exposure time in seconds: 1/30, 0.02, 2 (default: metered)")
    p.add_argument("--f-number", type=float, default=None, help="aperture (default: the lens's)")
    p.add_argument("--burst", type=int, default=1, metavar="N", help="number of frames (hand-held)")
    p.add_argument("--brackets", default=None, help="EV offsets of an exposure bracket, e.g. -2,0,2")
    p.add_argument("--size", default=None, help="output size HxW, e.g. 3000x4000 (default: the profile's)")
    p.add_argument("--luminance", type=float, default=None, help="scene white luminance, cd/m²")
    p.add_argument("--lux", type=float, default=None, help="illuminance on the scene, lux (white = lux/π cd/m²)")
    p.add_argument("--illuminant", default="D65", help="the scene's light: D65, D50, A, F2, F11, LED, ...")
    p.add_argument("--tripod", action="store_true", help="no hand shake")
    p.add_argument("--motion-blur", action="store_true", help="integrate the hand shake within each exposure")
    p.add_argument("--no-noise", action="store_true", help="noise-free capture")
    p.add_argument("--seed", type=int, default=0, help="random seed (same seed, same DNGs)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:N or auto")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(run=run)


def parse_exposure(s: str) -> float:
    """Seconds from ``1/30``, ``0.02`` or ``2``."""
    try:
        v = float(Fraction(s.strip()))
    except (ValueError, ZeroDivisionError):
        raise InvalidParameter(f"--exposure must be seconds like 1/30, 0.02 or 2; got {s!r}") from None
    if not (math.isfinite(v) and v > 0):
        raise InvalidParameter(f"--exposure must be > 0 seconds; got {s!r}")
    return v


def parse_size(s: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in s.lower().replace("×", "x").split("x"))
    except ValueError:
        raise InvalidParameter(f"--size must be HxW, e.g. 3000x4000; got {s!r}") from None
    return h, w


def parse_brackets(s: str) -> list[float]:
    try:
        return [float(v) for v in s.split(",") if v.strip()]
    except ValueError:
        raise InvalidParameter(f"--brackets must be EV offsets like -2,0,2; got {s!r}") from None


def _scene(args: argparse.Namespace, size: tuple[int, int]):
    from obscura.sim.scene import load_scene

    lum = args.luminance
    if args.scene in CHARTS:
        if args.scene == "colorchecker":
            from obscura.lab.charts.colorchecker import colorchecker_chart

            return colorchecker_chart(size=size, illuminant=args.illuminant).scene
        if args.scene == "edge":
            from obscura.lab.charts.edge import slanted_edge_chart

            return slanted_edge_chart(size=size, illuminant=args.illuminant).scene
        from obscura.sim.scene import flat_scene

        return flat_scene(size, illuminant=args.illuminant)
    kwargs = {"illuminant": args.illuminant}
    if lum is not None:
        kwargs["luminance"] = lum
    return load_scene(args.scene, **kwargs)


def run(args: argparse.Namespace) -> int:
    from obscura.sim import camera as cam_mod

    if args.list_cameras:
        for name in cam_mod.list_cameras():
            c = cam_mod.load_camera(name)
            s = c.sensor
            print(f"{name:18s} {s.width}x{s.height} {s.pixel_pitch_um:g} µm {s.cfa or 'mono'}  {c.description}")
        return 0
    if not args.scene or not args.output:
        raise InvalidParameter("simulate needs SCENE and -o DIR (or --list-cameras)")
    if args.luminance is not None and args.lux is not None:
        raise InvalidParameter("give --luminance or --lux, not both")
    for name in ("luminance", "lux"):
        v = getattr(args, name)
        if v is not None and not (math.isfinite(v) and v > 0):
            raise InvalidParameter(f"--{name} must be > 0; got {v}")
    if args.burst < 1 or args.burst > 64:
        raise InvalidParameter(f"--burst must be 1..64; got {args.burst}")
    camera = cam_mod.load_camera(args.camera)
    size = parse_size(args.size) if args.size else cam_mod._frame_size(camera, None)
    exposure = parse_exposure(args.exposure) if args.exposure else None
    brackets = parse_brackets(args.brackets) if args.brackets else None
    out = Path(args.output)
    if out.exists() and not out.is_dir():
        raise InvalidParameter(f"{out}: -o must be a folder")
    scene = _scene(args, size)
    if args.lux is not None:
        scene = scene.replace(luminance=args.lux / math.pi)
    f_no = args.f_number if args.f_number is not None else camera.lens.f_number
    iso = args.iso if args.iso is not None else camera.iso
    if exposure is not None and args.luminance is None and args.lux is None:
        # the user chose the settings: light the scene so that they meter correctly
        if not (math.isfinite(f_no) and f_no >= 0.5 and math.isfinite(iso) and iso > 0):
            raise InvalidParameter(f"impossible settings: f-number {f_no}, ISO {iso}")
        lum = cam_mod.metered_luminance(scene, f_number=f_no, iso=iso, exposure_time=exposure)
        scene = scene.replace(luminance=lum)
    say = (lambda _s: None) if args.quiet else (lambda s: print(f"obscura simulate: {s}", file=sys.stderr))
    n = len(brackets) if brackets else args.burst
    handshake = None if (args.tripod or n == 1) else True
    if handshake and args.motion_blur:
        handshake = camera.handshake.__class__(**{**camera.handshake.__dict__, "blur": True})
    shot = cam_mod.capture_burst(
        scene,
        camera=camera,
        n=n,
        exposure_time=exposure,
        iso=iso,
        f_number=f_no,
        size=size,
        handshake=handshake,
        brackets=brackets,
        seed=args.seed,
        noise=not args.no_noise,
        device=args.device,
        progress=say,
    )
    paths = cam_mod.save_shot(shot, out, overwrite=args.overwrite)
    m = shot.frame.meta
    say(
        f"{len(shot.burst)} frame(s) {size[1]}x{size[0]} {camera.name}: ISO {m.iso:g}, "
        f"{m.exposure_time:.4g} s, f/{m.f_number:g} → {out} ({len(paths)} files)"
    )
    return 0
