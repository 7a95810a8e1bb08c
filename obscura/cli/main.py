"""The ``obscura`` command: one module per subcommand; errors become one line and exit code 2."""

from __future__ import annotations

import argparse
import os
import sys

# Before torch is imported (the subcommands import it lazily): idle OpenMP threads yield instead of
# spinning, which on small, loaded machines otherwise stalls each small torch op by milliseconds.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
from collections.abc import Sequence

from obscura import __version__
from obscura.core.errors import ObscuraError

__all__ = ["main"]


def build_parser() -> argparse.ArgumentParser:
    from obscura.cli import burst, demo, develop, info, lab, look, simulate

    parser = argparse.ArgumentParser(prog="obscura", description="obscura: an open camera imaging system")
    parser.add_argument("--version", action="version", version=f"obscura {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (info, develop, burst, simulate, look, lab, demo):
        module.add_parser(sub)
    return parser


# Options whose values may start with "-" (EV offsets such as "-2,0,2"): argparse would take them for flags.
_SIGNED_VALUE_OPTIONS = ("--brackets", "--exposure", "--ev")


def _join_signed_values(argv: Sequence[str]) -> list[str]:
    """``--brackets -2,0,2`` → ``--brackets=-2,0,2`` so that argparse reads the value, not a flag."""
    out: list[str] = []
    it = iter(argv)
    for a in it:
        if a in _SIGNED_VALUE_OPTIONS:
            nxt = next(it, None)
            if nxt is not None and nxt.startswith("-") and nxt[1:2] not in ("-", ""):
                out.append(f"{a}={nxt}")
                continue
            out.append(a)
            if nxt is not None:
                out.append(nxt)
            continue
        out.append(a)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code (0 ok, 2 bad input or failed job, 130 interrupted)."""
    parser = build_parser()
    args = parser.parse_args(_join_signed_values(sys.argv[1:] if argv is None else argv))
    try:
        return int(args.run(args) or 0)
    except ObscuraError as e:
        print(f"obscura: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("obscura: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
