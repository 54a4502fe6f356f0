"""Command-line interface: ``dispatch SUBCOMMAND ...``.

The CLI only wires library calls. Each submodule registers its subcommands through
``register(subparsers)`` and sets ``func`` on its parser; ``func(args)`` returns the exit code.
Every :class:`dispatch.errors.DispatchError` becomes a one-line message on stderr and exit code 2;
so do operating-system errors (a file name too long, a full disk) and a closed standard output. The
helpers here (:func:`hour_arg`) give every subcommand the same checks of shared options.
"""

from __future__ import annotations

import argparse
import importlib
import math
import os
import sys
from collections.abc import Sequence

from dispatch.errors import DispatchError
from dispatch.progress import reporting, tqdm_reporter

#: Submodules of ``dispatch.cli`` that register subcommands, in help order.
SUBCOMMAND_MODULES = ("maps", "routing", "decide", "simulate", "plan", "serve")


def hour_arg(text: str) -> float:
    """``--hour``: a finite clock hour >= 0 (``nan``, ``inf``, ``-1`` and words are refused).

    The same check in every subcommand (``nearest``, ``route``, ``map export``, ``recommend``,
    ``assign``).
    """
    try:
        h = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--hour must be a number, got {text[:40]!r}") from None
    if not math.isfinite(h) or h < 0:
        raise argparse.ArgumentTypeError(f"--hour must be a finite number >= 0, got {text[:40]!r}")
    return h


def quiet_arg(p: argparse.ArgumentParser) -> None:
    """``--quiet``: no progress bar on stderr (every subcommand that loads a map has it; bars show
    only on a terminal, after 2 s of work, e.g. while a map is compiled)."""
    p.add_argument("--quiet", action="store_true", help="no progress bar or messages on stderr")


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with every available subcommand."""
    parser = argparse.ArgumentParser(
        prog="dispatch",
        description="Emergency-vehicle dispatch optimizer on real OpenStreetMap streets.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in SUBCOMMAND_MODULES:
        try:
            module = importlib.import_module(f"dispatch.cli.{name}")
        except ModuleNotFoundError as exc:  # a subcommand module not written yet
            if exc.name != f"dispatch.cli.{name}":
                raise
            continue
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the exit code (0 ok, 2 bad input)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if sys.stdout is None:  # started with standard output closed (``dispatch ... >&-``)
        print("dispatch: error: standard output is closed: nothing can be printed", file=sys.stderr)
        return 2
    try:
        with reporting(tqdm_reporter(quiet=bool(getattr(args, "quiet", False)))):
            code = int(args.func(args) or 0)
        sys.stdout.flush()  # a full disk or device (``> /dev/full``) fails here, not at exit
        return code
    except DispatchError as exc:
        print(f"dispatch: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("dispatch: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (``dispatch ... | head``): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:  # no such file, permission, a name too long, a full disk...
        where = f": {_short_name(exc.filename)!r}" if exc.filename else ""
        print(f"dispatch: error: {exc.strerror or exc}{where}", file=sys.stderr)
        if exc.errno == 28:  # ENOSPC on stdout: do not fail again at exit
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 2


def _short_name(name: object) -> str:
    s = os.fsdecode(name) if isinstance(name, str | bytes) else str(name)
    return s if len(s) <= 120 else s[:60] + "..." + s[-57:]


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
