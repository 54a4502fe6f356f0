"""Compile benchmark: OSM -> network arrays on the synthetic cities, before vs after, same run.

For each size the seeded synthetic city (:mod:`synth_city`, cached in ``benchmarks/.cache/``) is
read and compiled in a fresh process, once with this tree's code and, with ``--before SRC``, once
with another source tree (e.g. ``git worktree add /tmp/before 67d9bf0``: the code before the
vectorised compiler), back to back, so both run under the same machine load. Each process reports:

``read_s``
    :func:`dispatch.roads.osm.read_osm` (pyosmium and the way classification);
``compile_s``
    :func:`dispatch.roads.compile.compile_roads` (OSM segments -> network arrays);
``save_s``
    :func:`dispatch.roads.compile.digest` and ``numpy.savez`` of the arrays (what the cache adds);
``peak_rss_mb``
    the process's peak resident memory (reading, compiling and saving);
``compile_peak_mb``
    (this tree only) the peak of memory allocated during a second ``compile_roads``, traced by
    :mod:`tracemalloc` (numpy arrays included), above what was held before it.

Both trees must compile the same arrays: the digests are compared and printed. CPU seconds are
printed beside wall seconds because the machine may be shared.

    python benchmarks/compile_time.py --sizes 10000 80000 320000 --before /tmp/before
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CACHE = HERE / ".cache"


def city_path(size: int, seed: int) -> Path:
    """Generate (once) and return the synthetic city of ``size`` intersections."""
    path = CACHE / f"city_{size}_s{seed}.osm.pbf"
    if not path.exists():
        sys.path.insert(0, str(HERE))
        from synth_city import generate

        CACHE.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.pbf")
        generate(tmp, intersections=size, seed=seed)
        os.replace(tmp, path)
    return path


def child(path: Path, trace: bool) -> dict[str, Any]:
    """Read, compile and save one map in this process; return the figures."""
    import numpy as np

    from dispatch.roads.compile import compile_roads, digest
    from dispatch.roads.osm import read_osm
    from dispatch.roads.profiles import network_settings

    settings = network_settings()
    out: dict[str, Any] = {}
    w, c = time.perf_counter(), time.process_time()
    raw = read_osm(path)
    out["read_s"], out["read_cpu_s"] = time.perf_counter() - w, time.process_time() - c
    w, c = time.perf_counter(), time.process_time()
    arrays, _ = compile_roads(raw, settings)
    out["compile_s"], out["compile_cpu_s"] = time.perf_counter() - w, time.process_time() - c
    w = time.perf_counter()
    out["digest"] = digest(arrays)
    with tempfile.TemporaryDirectory() as tmp:
        np.savez(Path(tmp) / "net.npz", **arrays)  # type: ignore[arg-type]
    out["save_s"] = time.perf_counter() - w
    out["nodes"], out["arcs"] = len(arrays["node_lat"]), len(arrays["arc_tail"])
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    if trace:
        import tracemalloc

        del arrays
        tracemalloc.start()
        held, _ = tracemalloc.get_traced_memory()
        compile_roads(raw, settings)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        out["compile_peak_mb"] = (peak - held) / 2**20
    return out


def run(src: Path, path: Path, trace: bool) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(src)}
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", str(path)]
    if trace:
        cmd.append("--trace")
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False, cwd=src)
    if proc.returncode != 0:
        raise SystemExit(f"child failed ({src}): {proc.stderr.strip().splitlines()[-1:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Compile time and memory on synthetic cities.")
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 80_000, 320_000])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--before", type=Path, default=None,
                    help="source tree of the code to compare with (run first, same run)")  # fmt: skip
    ap.add_argument("--out", type=Path, default=None, help="write the figures as JSON")
    ap.add_argument("--child", type=Path, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--trace", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child is not None:
        print(json.dumps(child(args.child, args.trace)))
        return 0
    rows: list[dict[str, Any]] = []
    print(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {platform.node()}, "
          f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")  # fmt: skip
    print("| nodes / arcs | code | read s (CPU) | compile s (CPU) | save s | peak RSS MB | "
          "compile peak MB (tracemalloc) |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for size in args.sizes:
        path = city_path(size, args.seed)
        runs = [("before", args.before)] if args.before else []
        runs.append(("after", ROOT))
        res: dict[str, Any] = {"size": size}
        for label, src in runs:
            r = run(Path(src), path, trace=label == "after")
            res[label] = r
            print(f"| {r['nodes']:,} / {r['arcs']:,} | {label} | {r['read_s']:.1f} "
                  f"({r['read_cpu_s']:.1f}) | {r['compile_s']:.1f} ({r['compile_cpu_s']:.1f}) | "
                  f"{r['save_s']:.1f} | {r['peak_rss_mb']:.0f} | "
                  f"{r.get('compile_peak_mb', float('nan')):.0f} |", flush=True)  # fmt: skip
        if args.before:
            same = res["before"]["digest"] == res["after"]["digest"]
            print(f"|  | same arrays: {same} | | | | | |", flush=True)
            if not same:
                return 1
        rows.append(res)
    if args.out:
        args.out.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
