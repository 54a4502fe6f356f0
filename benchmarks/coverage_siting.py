"""Coverage benchmarks: MCLP solved to proven optimality against spopt, and the dispatch-time warning.

(Not named ``coverage.py``: a script of that name in ``benchmarks/`` would shadow the ``coverage``
package that numba imports, for every script run from this folder.)

Run from the repository root::

    python benchmarks/coverage_siting.py [--quick] [--out benchmarks/results/coverage.json]

On Da Nang (``maps/danang_haichau_core.osm``):

``mclp``
    200 CANDIDATE sites (road intersections spread over the map by
    :func:`dispatch.plan.demand.road_node_candidates`; not real stations) x 2,000 demand points drawn
    uniformly over the ambulance road length (seeded), weight 1, road travel times of the ambulance
    class from the routing core (``travel_time_matrix``, PHAST over the CCH). MCLP for several ``p``
    and targets: ours (:func:`dispatch.plan.siting.mclp`, OR-Tools SCIP, gap 0) against spopt's
    ``MCLP.from_cost_matrix(...).solve(PULP_CBC_CMD)`` on the SAME matrix (model build + solve for
    both). The objectives must agree (both optimal); the ratio is ``spopt / ours`` (above 1: ours is
    faster).
``warning``
    20 ambulances at random road intersections (turnout 60 s), the same 2,000 demand points, target
    240 s: :meth:`CoverageState.build` once, then for 200 random calls the 20 candidates from
    ``net.fastest_units(call, units, k=20)`` and :meth:`CoverageState.warn` (timed alone: the
    coverage before/after of every candidate, zones, alternative). ``move``: one unit's reach
    recomputed after it moved. The answers are checked against a rebuild from scratch.

Everything single-threaded (thread variables set before imports). ``--quick``: 50 x 500, one ``p``,
20 calls (a smoke run for tests).
"""

from __future__ import annotations

import os
import sys

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS",
             "NUMBA_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "RAYON_NUM_THREADS"):  # fmt: skip
    os.environ[_var] = "1"

import argparse  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from importlib import metadata  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

import dispatch  # noqa: E402
from dispatch.io.atomic import atomic_write  # noqa: E402
from dispatch.plan.demand import Demand, road_node_candidates, travel_time_matrix  # noqa: E402
from dispatch.plan.siting import mclp  # noqa: E402
from dispatch.plan.warning import CoverageState  # noqa: E402
from dispatch.sim.demand import road_segments  # noqa: E402


def road_points(net: dispatch.Network, n: int, seed: int) -> Demand:
    """``n`` points uniform over the ambulance road length (seeded)."""
    seg = road_segments(net, vehicles=("ambulance",))
    rng = np.random.default_rng(seed)
    cum = np.cumsum(seg.length_m) / seg.length_m.sum()
    i = np.minimum(np.searchsorted(cum, rng.random(n), side="right"), len(cum) - 1)
    t = rng.random(n)
    lat = seg.lat1[i] + t * (seg.lat2[i] - seg.lat1[i])
    lon = seg.lon1[i] + t * (seg.lon2[i] - seg.lon1[i])
    ids = tuple(f"p{k}" for k in range(n))
    return Demand(lat, lon, np.ones(n), ("",) * n, ids, f"{n} points uniform over road length")


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in ("numpy", "ortools", "spopt", "pulp"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def bench_mclp(cost: np.ndarray, w: np.ndarray, runs: list[tuple[float, int]]
               ) -> list[dict[str, Any]]:  # fmt: skip
    try:
        import pulp
        from spopt import locate
    except ImportError as exc:  # spopt is in the test extra
        print(f"spopt not importable ({exc}); timing ours only")
        locate = None
    rows = []
    for target, p in runs:
        t0 = time.perf_counter()
        ours = mclp(cost, w, target_s=target, p=p, time_limit_s=600)
        ours_s = time.perf_counter() - t0
        row: dict[str, Any] = {"target_s": target, "p": p, "ours_s": round(ours_s, 3),
                               "ours_optimal": ours.optimal, "ours_gap": ours.gap,
                               "objective": ours.objective,
                               "covered_share": round(ours.covered_share, 4),
                               "uncoverable_points": ours.uncoverable_points}  # fmt: skip
        if locate is not None:
            finite = np.where(np.isfinite(cost), cost, 1e9)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                t0 = time.perf_counter()
                model = locate.MCLP.from_cost_matrix(finite.T, w, service_radius=target,
                                                     p_facilities=p)  # fmt: skip
                model.solve(pulp.PULP_CBC_CMD(msg=False))
                spopt_s = time.perf_counter() - t0
            opened = [j for j in range(cost.shape[0]) if model.fac_vars[j].value() > 0.5]
            theirs = float(w[(cost[opened] <= target).any(axis=0)].sum())
            row.update({"spopt_s": round(spopt_s, 3), "spopt_objective": theirs,
                        "spopt_status": pulp.LpStatus[model.problem.status],
                        "agree": abs(theirs - ours.objective) <= 1e-6,
                        "ratio_spopt_over_ours": round(spopt_s / ours_s, 2)})  # fmt: skip
        rows.append(row)
        print(f"  MCLP target {target:g} s p={p}: ours {ours_s:.2f} s "
              f"(optimal={ours.optimal}, objective {ours.objective:g}, "
              f"covered {ours.covered_share:.1%})"
              + (f"; spopt+CBC {row['spopt_s']:.2f} s objective {row['spopt_objective']:g} "
                 f"ratio {row['ratio_spopt_over_ours']}" if "spopt_s" in row else ""))  # fmt: skip
    return rows


def bench_warning(net: dispatch.Network, demand: Demand, n_units: int, n_calls: int, seed: int
                  ) -> dict[str, Any]:  # fmt: skip
    rng = np.random.default_rng(seed + 1)
    core = np.flatnonzero(net.class_core("ambulance"))
    nodes = rng.choice(core, n_units, replace=False)
    units = [{"id": f"U{i:02d}", "vehicle": "ambulance", "lat": float(net.node_lat[n]),
              "lon": float(net.node_lon[n]), "turnout_s": 60.0} for i, n in enumerate(nodes)]  # fmt: skip
    t0 = time.perf_counter()
    st = CoverageState.build(net, units, demand, target_s=240.0)
    build_s = time.perf_counter() - t0
    calls = road_points(net, n_calls, seed + 2)
    warn_ms, alternatives = [], 0
    for c in range(n_calls):
        etas = net.fastest_units((calls.lat[c], calls.lon[c]), units, k=n_units)  # type: ignore[attr-defined]
        t0 = time.perf_counter()
        w = st.warn(etas, max_delay_s=30.0)
        warn_ms.append((time.perf_counter() - t0) * 1e3)
        alternatives += w.alternative is not None
    move_ms = []
    for k in range(min(n_units, 10)):
        n = int(rng.choice(core))
        t0 = time.perf_counter()
        st.move(f"U{k:02d}", float(net.node_lat[n]), float(net.node_lon[n]))
        move_ms.append((time.perf_counter() - t0) * 1e3)
        units[k] = {**units[k], "lat": float(net.node_lat[n]), "lon": float(net.node_lon[n])}
    fresh = CoverageState.build(net, units, demand, target_s=240.0)
    agree = bool((fresh.counts["ambulance"] == st.counts["ambulance"]).all())
    out = {"units": n_units, "demand_points": len(demand), "calls": n_calls,
           "build_s": round(build_s, 3),
           "warn_ms_median": round(float(np.median(warn_ms)), 3),
           "warn_ms_p95": round(float(np.percentile(warn_ms, 95)), 3),
           "move_ms_median": round(float(np.median(move_ms)), 2),
           "calls_with_alternative": alternatives, "incremental_equals_rebuild": agree}  # fmt: skip
    print(f"  warning: {n_units} units x {len(demand)} points: build {build_s:.2f} s, warn median "
          f"{out['warn_ms_median']} ms (p95 {out['warn_ms_p95']} ms), move median "
          f"{out['move_ms_median']} ms, incremental == rebuild: {agree}")  # fmt: skip
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="small instance (smoke run)")
    ap.add_argument("--out", default="benchmarks/results/coverage.json")
    ap.add_argument("--seed", type=int, default=12345)
    args = ap.parse_args(argv)
    n_cand, n_dem = (50, 500) if args.quick else (200, 2000)
    runs = [(60.0, 5)] if args.quick else [(60.0, 5), (60.0, 10), (60.0, 20), (90.0, 5), (90.0, 10)]
    net = dispatch.load_network("danang")
    print(f"danang: {net}; {n_cand} candidates x {n_dem} demand points (seed {args.seed})")
    c_lat, c_lon, _ = road_node_candidates(net, n_cand)
    demand = road_points(net, n_dem, args.seed)
    travel_time_matrix(net, np.column_stack([c_lat[:2], c_lon[:2]]), demand, vehicle="ambulance")
    t0 = time.perf_counter()
    cost = travel_time_matrix(net, np.column_stack([c_lat, c_lon]), demand, vehicle="ambulance")
    matrix_s = time.perf_counter() - t0
    print(f"  cost matrix {cost.shape}: {matrix_s:.3f} s (routing core, snapping included)")
    mclp_rows = bench_mclp(cost, demand.weight, runs)
    warn = bench_warning(net, demand, 20, 20 if args.quick else 200, args.seed)
    result = {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()} {platform.processor() or ''} {os.cpu_count()} cores, "
        f"{platform.system()} {platform.release()}".replace("  ", " "),
        "versions": versions(),
        "map": net.name,
        "candidates": n_cand,
        "demand_points": n_dem,
        "matrix_s": round(matrix_s, 3),
        "mclp": mclp_rows,
        "warning": warn,
        "all_agree": all(r.get("agree", True) and r["ours_optimal"] for r in mclp_rows)
        and warn["incremental_equals_rebuild"],
    }
    atomic_write(args.out, json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    print("\n| target s | p | ours (SCIP) s | optimal | spopt (PuLP+CBC) s | ratio spopt/ours | "
          "covered |\n|---|---|---|---|---|---|---|")  # fmt: skip
    for r in mclp_rows:
        print(f"| {r['target_s']:g} | {r['p']} | {r['ours_s']} | {r['ours_optimal']} | "
              f"{r.get('spopt_s', '-')} | {r.get('ratio_spopt_over_ours', '-')} | "
              f"{r['covered_share']:.1%} |")  # fmt: skip
    return 0 if result["all_agree"] else 1


if __name__ == "__main__":
    sys.exit(main())
