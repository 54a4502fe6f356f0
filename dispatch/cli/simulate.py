"""``dispatch simulate SCENARIO``: simulate a day to a year of 114/115 calls and report statistics."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import signal
import sys
from collections.abc import Iterator
from typing import Any

__all__ = ["register", "run"]


def register(subparsers: Any) -> None:
    """Add the ``simulate`` subcommand."""
    from dispatch.sim.moveup import MOVE_UP_POLICIES
    from dispatch.sim.policies import policy_names
    from dispatch.sim.scenario import shipped_scenarios

    shipped = ", ".join(shipped_scenarios()) or "none"
    p = subparsers.add_parser(
        "simulate",
        help="simulate a scenario of 114/115 calls and report response times",
        description=(
            "Simulate a scenario (a TOML file, or a shipped short name: "
            f"{shipped}) with the same fastest-unit routing as live dispatch, and print "
            "response-time statistics (call to first arrival, seconds)."
        ),
    )
    p.add_argument("scenario", metavar="SCENARIO", help="scenario file or shipped short name")
    p.add_argument("--seed", type=int, default=None, help="random seed (default: the scenario's)")
    p.add_argument(
        "--hours", type=float, default=None, help="horizon in hours (default: the scenario's)"
    )
    p.add_argument(
        "--replications",
        type=int,
        default=None,
        help="independent replications (default: the scenario's)",
    )
    p.add_argument(
        "--policy",
        choices=policy_names(),
        default=None,
        help="dispatch policy (default: the scenario's, usually fastest)",
    )
    p.add_argument(
        "--move-up",
        choices=tuple(MOVE_UP_POLICIES),
        default=None,
        help="what idle units do after each dispatch and each unit freed (default: the scenario's "
        "[move_up] policy, else none: return to their home station; fill_gaps: keep every planned "
        "station from standing empty; dmexclp: a freed unit goes where it adds the most expected "
        "coverage; compliance: the idle units are re-posted to the compliance table's row for "
        "their number)",
    )
    p.add_argument(
        "--compare-policies",
        action="store_true",
        help="run every policy on the same calls and print paired differences against fastest",
    )
    p.add_argument(
        "--out",
        metavar="DIR",
        default=None,
        help="write CSVs, JSON, PNG plots and an HTML map to DIR",
    )
    p.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")
    p.add_argument("--quiet", action="store_true", help="no progress bar or messages on stderr")
    p.add_argument(
        "--workers", type=int, default=None, help="local processes for replications (default: CPUs)"
    )
    p.add_argument(
        "--dask",
        metavar="SCHEDULER_ADDRESS",
        default=None,
        help="run replications on a Dask cluster (optional extra dispatch[dask])",
    )
    p.set_defaults(func=run)


def _progress_bar(total: int, *, quiet: bool, unit: str) -> Any:
    """A tqdm bar on stderr that appears only after 2 s, and only on a terminal."""
    from tqdm import tqdm

    return tqdm(
        total=total,
        unit=unit,
        disable=quiet or not sys.stderr.isatty(),
        delay=2.0,
        file=sys.stderr,
        leave=False,
        dynamic_ncols=True,
    )


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Handle SIGTERM (``timeout``, service managers) like Ctrl-C: a KeyboardInterrupt, so that
    outputs being written are cleaned up and the command ends with "interrupted" (exit 130)."""

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    try:
        old = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def _check_flags(args: argparse.Namespace) -> None:
    """Check the numeric flags before any work (``--hours`` and ``--replications`` are checked by
    :meth:`dispatch.sim.scenario.Scenario.with_overrides`, against the scenario reader's limits)."""
    from dispatch.errors import DispatchError

    if args.seed is not None and args.seed < 0:
        raise DispatchError(f"--seed={args.seed} must be >= 0")
    if args.workers is not None and args.workers < 1:
        raise DispatchError(f"--workers={args.workers} must be >= 1")


def _print(text: str) -> None:
    """Print to standard output; nothing if it is closed (``>&-``): the files were the point."""
    if sys.stdout is not None:
        print(text)


def run(args: argparse.Namespace) -> int:
    """Run ``dispatch simulate``; return the exit code."""
    with _sigterm_as_interrupt():
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    from dispatch.report.outputs import (
        check_output_dir,
        format_comparison,
        format_summary,
        write_outputs,
    )
    from dispatch.sim.parallel import run_replications
    from dispatch.sim.policies import policy_names
    from dispatch.sim.runner import check_run_limits
    from dispatch.sim.scenario import load_scenario
    from dispatch.sim.stats import paired_differences, pooled_summary

    _check_flags(args)
    if args.out is not None:
        check_output_dir(args.out)  # before the simulation, not after it
    sc = load_scenario(args.scenario).with_overrides(
        seed=args.seed, horizon_h=args.hours, replications=args.replications, policy=args.policy
    )
    check_run_limits(sc)
    if args.dask is None:
        # the first run after an install: the routing kernels compiled on both cores first
        # (before any progress bar: tqdm's monitor thread would keep the process from forking)
        from dispatch.roads.network import load_network
        from dispatch.sim.warmup import compile_kernels, hierarchy_cached

        compile_kernels(lambda: load_network(sc.map), hierarchy=hierarchy_cached(sc.map))
    main = sc.policy
    if args.compare_policies:
        names = policy_names(run_cards=sc.run_cards is not None)
        policies: tuple[str, ...] = (main, *[p for p in names if p != main])
    else:
        policies = (main,)
    # the command line's --move-up, else the scenario's [move_up] policy
    move_up = args.move_up if args.move_up is not None else sc.move_up.policy
    expected = int(sum(t.calls_per_hour for t in sc.incident_types) * sc.horizon_h)
    reps = sc.replications
    if reps == 1:
        bar = _progress_bar(expected * len(policies), quiet=args.quiet, unit="call")
        kw: dict[str, Any] = {"progress": bar.update, "workers": 1}
    else:
        bar = _progress_bar(reps, quiet=args.quiet, unit="replication")
        kw = {"on_done": bar.update, "workers": args.workers}
    try:
        by_policy = run_replications(
            sc, policies=policies, dask_address=args.dask, move_up=move_up, **kw
        )
    finally:
        bar.close()
    if args.compare_policies and move_up != "none":
        # the main policy without move-up on the same calls: the move-up's paired effect
        base = run_replications(
            sc,
            policies=(main,),
            dask_address=args.dask,
            workers=kw.get("workers"),
            move_up="none",
        )
        label = f"{main}, move-up none"
        by_policy[label] = [dataclasses.replace(r, policy=label) for r in base[main]]

    summary: dict[str, Any] = {
        "scenario": sc.name,
        "map": sc.map,
        "policy": main,
        "seed": sc.seed,
        "horizon_h": sc.horizon_h,
        "warmup_h": sc.warmup_h,
    }
    summary.update(pooled_summary(by_policy[main]))
    comparison_text = ""
    if args.compare_policies:
        summaries = {p: pooled_summary(rs) for p, rs in by_policy.items()}
        diffs = paired_differences(by_policy, reference="fastest")
        summary["comparison"] = {
            "reference": "fastest",
            "policies": {
                p: {
                    k: s[k]
                    for k in (
                        "calls",
                        "served",
                        "unserved",
                        "response_s",
                        "within_target",
                        "wait_s",
                    )
                }
                for p, s in summaries.items()
            },
            "paired_differences": diffs,
        }
        comparison_text = format_comparison(summaries, diffs, reference="fastest")

    if args.out is not None:
        from dispatch.sim.runner import load_scenario_network, resolve_world

        world = resolve_world(sc, load_scenario_network(sc))
        paths = write_outputs(
            args.out,
            by_policy,
            summary,
            main_policy=main,
            stations=world.stations,
            closures=world.closures,
        )
        if not args.quiet:
            print(
                f"wrote {len(paths)} files to {args.out}: " + ", ".join(p.name for p in paths),
                file=sys.stderr,
            )

    if args.json:
        _print(json.dumps(summary, indent=2))
    else:
        title = (
            f"{sc.name}: policy {main}, seed {sc.seed}, {reps} replication(s) of {sc.horizon_h:g} h"
            + (f" (warm-up {sc.warmup_h:g} h)" if sc.warmup_h else "")
            + f", map {sc.map}"
        )
        _print(format_summary(summary, title=title))
        if comparison_text:
            _print("")
            _print(comparison_text)
    return 0
