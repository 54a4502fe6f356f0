"""``--quiet`` on every subcommand that loads a map: progress bars (compile, preprocessing) off."""

from __future__ import annotations

import argparse

from dispatch.cli import build_parser, main


def _leaves(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], argparse.ArgumentParser]]:  # fmt: skip
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        return [(path, parser)]
    out = []
    for name, child in subs[0].choices.items():
        out += _leaves(child, (*path, name))
    return out


def test_every_subcommand_that_loads_a_map_accepts_quiet() -> None:
    loaders = []
    for path, parser in _leaves(build_parser()):
        dests = {a.dest for a in parser._actions}
        if dests & {"map", "scenario"}:  # it loads a map (a scenario names one)
            loaders.append(" ".join(path))
            assert "--quiet" in parser._option_string_actions, f"dispatch {' '.join(path)}"
    assert {"map info", "map export", "nearest", "route", "recommend", "assign", "simulate",
            "coverage", "site", "serve"} <= set(loaders)  # fmt: skip


def test_quiet_runs(capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["map", "info", "hcmc", "--quiet", "--json"]) == 0
    out = capsys.readouterr()
    assert '"map"' in out.out and out.err == ""
