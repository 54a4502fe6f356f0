"""Command-line interface: ``dispatch SUBCOMMAND ...``.

The CLI only wires library calls. Each submodule registers its subcommands through
``register(subparsers)`` and sets ``func`` on its parser; ``func(args)`` returns the exit code.
Every :class:`dispatch.errors.DispatchError` becomes a one-line message on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from dispatch.errors import DispatchError

#: Submodules of ``dispatch.cli`` that register subcommands, in help order.
SUBCOMMAND_MODULES = ("maps", "routing", "decide", "simulate", "serve")


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
    try:
        return int(args.func(args) or 0)
    except DispatchError as exc:
        print(f"dispatch: error: {exc}", file=sys.stderr)
        return 2
    except (FileNotFoundError, PermissionError, IsADirectoryError) as exc:
        print(f"dispatch: error: {exc.strerror}: {exc.filename!r}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("dispatch: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (``dispatch ... | head``): stop quietly
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
