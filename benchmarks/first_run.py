"""First run after a fresh install: ``dispatch simulate danang`` with empty caches, then warm.

Run from the repository root::

    python benchmarks/first_run.py [--command simulate danang] [--repeat 1]
                                   [--out benchmarks/results/first_run.json]

Each run is a new process (``python -m dispatch ... --quiet``, this checkout on ``PYTHONPATH``):

``cold``
    an empty ``NUMBA_CACHE_DIR`` (numba compiles every kernel the command calls) and an empty
    ``DISPATCH_CACHE_DIR`` (the map is compiled from OSM): what a new user waits for after
    ``pip install -e .``.
``kernels cached``
    the kernels cached by the cold run, an empty network cache again (another map, a new setting).
``warm``
    both caches as the previous runs left them: every later run.
``upgrade``
    an empty ``NUMBA_CACHE_DIR`` but a map cache that holds the map's CCH hierarchy (saved by
    ``dispatch serve`` or a long run before): the first run after an upgrade that changed the
    kernels, where the simulation routes with the CCH from its first queries
    (``--hierarchy-map``, the map the command uses).

For each: wall seconds, CPU seconds of the process (user + system, from ``os.wait4``: its own
and those of the processes it waited for, such as the child that compiles half of the kernels on
a first run, :func:`dispatch.routing.kernels.compile_concurrently`), its peak RSS, and the machine's 1-minute load average before the run (the machine may be shared: the
CPU seconds are the steadier figure). The command's stdout must be the same in every run (the
same seed, the same numbers): checked.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent


def run(command: list[str], numba_dir: Path, cache_dir: Path, checkout: Path) -> dict[str, Any]:
    env = {**os.environ, "NUMBA_CACHE_DIR": str(numba_dir), "DISPATCH_CACHE_DIR": str(cache_dir),
           "PYTHONPATH": str(checkout)}  # fmt: skip
    load = os.getloadavg()[0]
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "dispatch", *command, "--quiet"], env=env,
                                cwd=checkout, stdout=out, stderr=err, text=True)  # fmt: skip
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own CPU time and peak RSS
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if proc.returncode != 0:
        raise RuntimeError(f"{command} failed:\n{stderr[-2000:]}")
    return {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime,
            "peak_rss_mb": usage.ru_maxrss / 1024.0, "load_avg_before": load, "stdout": stdout}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="First run after a fresh install, then warm.")
    ap.add_argument("--command", nargs="+", default=["simulate", "danang"])
    ap.add_argument("--repeat", type=int, default=1, help="cold/warm rounds (fresh caches each)")
    ap.add_argument("--checkout", type=Path, default=ROOT,
                    help="the repository to run (default: this one; e.g. another branch's worktree)")  # fmt: skip
    ap.add_argument(
        "--hierarchy-map",
        default="danang",
        help="the map of --command, whose hierarchy the 'upgrade' run finds cached",
    )
    ap.add_argument("--out", type=Path, default=HERE / "results" / "first_run.json")
    args = ap.parse_args(argv)
    rounds = []
    for _ in range(args.repeat):
        tmp = Path(tempfile.mkdtemp(prefix="dispatch-first-run-"))
        try:
            nb, c1, c2 = tmp / "numba", tmp / "maps1", tmp / "maps2"
            nb0, nb3, c3 = tmp / "numba0", tmp / "numba3", tmp / "maps3"
            for d in (nb, c1, c2, nb0, nb3, c3):
                d.mkdir()
            cold = run(args.command, nb, c1, args.checkout)
            kernels_cached = run(args.command, nb, c2, args.checkout)
            warm = run(args.command, nb, c1, args.checkout)
            # the map cache of an earlier install (its own numba cache): the hierarchy saved
            subprocess.run([sys.executable, "-c", "import sys, dispatch; dispatch.load_network("
                            "sys.argv[1]).engine.hierarchy()", args.hierarchy_map],
                           env={**os.environ, "NUMBA_CACHE_DIR": str(nb0),
                                "DISPATCH_CACHE_DIR": str(c3), "PYTHONPATH": str(args.checkout)},
                           cwd=args.checkout, check=True, capture_output=True)  # fmt: skip
            if not any(p.name.endswith(".npz") and ".cch" in p.name for p in c3.iterdir()):
                raise RuntimeError("no hierarchy saved in the map cache")
            upgrade = run(args.command, nb3, c3, args.checkout)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        outs = {cold.pop("stdout"), kernels_cached.pop("stdout"), warm.pop("stdout"),
                upgrade.pop("stdout")}  # fmt: skip
        if len(outs) != 1:
            raise RuntimeError("the runs printed different results")
        rounds.append({"cold": cold, "kernels_cached": kernels_cached, "warm": warm,
                       "upgrade": upgrade})  # fmt: skip
    print(f"`dispatch {' '.join(args.command)}` in a new process ({args.checkout})")
    print("| run | wall s | CPU s | peak RSS MB | load avg before |")
    print("|---|---|---|---|---|")
    for r in rounds:
        for name, key in (("cold (empty numba + map caches)", "cold"),
                          ("kernels cached, map cache empty", "kernels_cached"),
                          ("warm (both cached)", "warm"),
                          ("upgrade (empty numba cache, hierarchy in the map cache)", "upgrade")):  # fmt: skip
            x = r[key]
            print(f"| {name} | {x['wall_s']:.1f} | {x['cpu_s']:.1f} | {x['peak_rss_mb']:.0f} "
                  f"| {x['load_avg_before']:.1f} |")  # fmt: skip
    meta = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cpus": os.cpu_count(),
            "platform": platform.platform(), "command": args.command,
            "checkout": str(args.checkout)}  # fmt: skip
    sys.path.insert(0, str(ROOT))
    from dispatch.io.atomic import atomic_write

    atomic_write(args.out, json.dumps({"meta": meta, "rounds": rounds}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
