"""``obscura info FILE [--json]``: everything obscura reads from a raw file."""

from __future__ import annotations

import argparse
import dataclasses
import json
from typing import Any

from obscura.cli.common import LAYOUT_HELP, parse_layout, read_input

_NAMES = {
    17: "Standard light A",
    18: "Standard light B",
    19: "Standard light C",
    20: "D55",
    21: "D65",
    22: "D75",
    23: "D50",
}


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("info", help="show the metadata of a raw file", description=__doc__)
    p.add_argument("file", metavar="FILE")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    p.add_argument("--layout", default=None, help=LAYOUT_HELP)
    p.set_defaults(run=run)


def _plain(v: Any) -> Any:
    if dataclasses.is_dataclass(v):
        return {f.name: _plain(getattr(v, f.name)) for f in dataclasses.fields(v)}
    if isinstance(v, bytes):
        return f"<{len(v)} bytes>"
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, tuple | list):
        if len(v) > 24 and all(isinstance(x, int | float) for x in v):
            return f"<{len(v)} values: {v[0]} … {v[-1]}>"
        return [_plain(x) for x in v]
    return v


def describe(frame) -> dict[str, Any]:
    """A JSON-ready description of a RawFrame: its size and every RawMeta field."""
    x = frame.data
    meta = _plain(frame.meta)
    for key in ("opcode_list1", "opcode_list2", "opcode_list3"):
        meta[key] = [op["name"] for op in meta[key]]
    return {
        "shape": list(x.shape),
        "dtype": str(x.dtype).replace("torch.", ""),
        "min": float(x.min()),
        "max": float(x.max()),
        **meta,
    }


def run(args: argparse.Namespace) -> int:
    frame = read_input(args.file, layout=parse_layout(args.layout))
    d = describe(frame)
    if args.json:
        print(json.dumps({"file": args.file, **d}, indent=2))
        return 0
    print(args.file)
    for k, v in d.items():
        if v in (None, "", [], ()):
            continue
        if k.startswith("calibration_illuminant") and v in _NAMES:
            v = f"{v} ({_NAMES[v]})"
        print(f"  {k:22s} {v}")
    return 0
