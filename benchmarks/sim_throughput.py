"""Simulated calls per second on ``campo_grande_year`` (about 100,000 calls), whole process.

Runs ``python -m dispatch simulate SCENARIO --quiet --json`` as a fresh process (interpreter start,
imports, map load from its compiled cache, call generation, simulation, statistics) and reports the
wall-clock time and calls per second, median of ``--repeat`` runs, and the CPU time of the child
process (user + system, from ``getrusage``: much less sensitive than the wall clock to other
processes sharing the machine). The map cache is warmed first.

    python benchmarks/sim_throughput.py                      # the shipped scenario (returning = "route")
    python benchmarks/sim_throughput.py --returning home     # returning units timed via their home
    python benchmarks/sim_throughput.py --profile --hours 2000   # where the time goes (cProfile)

Target (issue 5): 100k calls in under 30 s on the project's 2-core machine. Results and the profile
are recorded in benchmarks/SIMULATION.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _scenario(name: str, returning: str | None, hours: float | None) -> tuple[str, Path | None]:
    """The scenario to run: the shipped one, or a temporary child that overrides it."""
    if returning is None and hours is None:
        return name, None
    lines = [f'extends = "{name}"', f'name = "{name}"', "[simulation]"]
    if returning is not None:
        lines.append(f'returning = "{returning}"')
    if hours is not None:
        lines.append(f"horizon_h = {hours}")
    tmp = Path(tempfile.mkdtemp()) / f"{name}_bench.toml"
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(tmp), tmp


def whole_process(scenario: str, repeat: int) -> dict[str, object]:
    cmd = [sys.executable, "-m", "dispatch", "simulate", scenario, "--quiet", "--json"]
    times = []
    cpus = []
    out: dict[str, object] = {}
    for _ in range(repeat):
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True)
        times.append(time.perf_counter() - t0)
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime)
        out = json.loads(proc.stdout)
    wall = statistics.median(times)
    calls = int(out["calls_generated_incl_warmup"])  # type: ignore[arg-type]
    return {
        "calls": calls,
        "wall_s": round(wall, 2),
        "runs_s": [round(t, 2) for t in times],
        "cpu_s": round(statistics.median(cpus), 2),
        "cpu_runs_s": [round(t, 2) for t in cpus],
        "calls_per_s": round(calls / wall),
        "response_mean_s": out["response_s"]["mean"],  # type: ignore[index]
    }


def profile(scenario: str) -> None:
    import cProfile
    import pstats

    sys.path.insert(0, str(ROOT))
    import dispatch
    from dispatch.sim.runner import run_scenario
    from dispatch.sim.scenario import load_scenario

    sc = load_scenario(scenario)
    net = dispatch.load_network(sc.map)
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    (res,) = run_scenario(sc, net=net)
    prof.disable()
    print(f"{res.n_calls} calls in {time.perf_counter() - t0:.1f} s under cProfile")
    pstats.Stats(prof).sort_stats("tottime").print_stats(18)


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--scenario", default="campo_grande_year")
    ap.add_argument("--returning", choices=("route", "home"), default=None)
    ap.add_argument("--hours", type=float, default=None, help="override the horizon")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument(
        "--profile", action="store_true", help="cProfile the simulation (in this process)"
    )
    args = ap.parse_args()
    scenario, tmp = _scenario(args.scenario, args.returning, args.hours)
    try:
        if args.profile:
            profile(scenario)
            return 0
        # warm the compiled-map cache (not timed)
        subprocess.run(
            [sys.executable, "-c", "import dispatch, sys; dispatch.load_network(sys.argv[1])", "campo_grande"],
            cwd=ROOT, check=True,
        )  # fmt: skip
        res = whole_process(scenario, args.repeat)
        res.update(
            scenario=args.scenario,
            returning=args.returning or "scenario default",
            machine=f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.processor() or 'n/a'}",
            python=platform.python_version(),
            date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            load_average=[round(x, 2) for x in os.getloadavg()],
        )
        print(json.dumps(res, indent=2))
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
