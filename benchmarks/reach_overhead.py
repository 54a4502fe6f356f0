"""What the two-stage reach (issue 12) costs ``fastest_units`` on Da Nang, with answers checked.

Compares ``net.fastest_units`` (with the walk network) with the same query without it (the
pre-issue-12 code path, ``dispatch.routing.queries.fastest_units(..., reach=None)``), in the same
process and run, on three sets of calls: 200 on roads every class drives (their answers must be
identical), 100 in ``motorcar=no`` alleys, and 200 random points of the bounding box (off-road, as
geocoded calls are). 48 units, k = 3, best of 3 passes. Run from the repository root::

    PYTHONPATH=. python benchmarks/reach_overhead.py
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence

import numpy as np

import dispatch
from dispatch.routing import queries as q

Call = tuple[float, float]


def main() -> None:
    net = dispatch.load_network("danang")
    rm = net.reach_model
    assert rm is not None
    rng = np.random.default_rng(12)
    nodes = np.flatnonzero(net.class_core("fire_engine") & (net.node_osmid > 0))
    classes = ["ambulance", "fire_engine", "ladder", "motorbike"]
    units: list[dict[str, object]] = [
        {"id": f"U{i:02d}", "vehicle": classes[i % 4], "lat": float(net.node_lat[n]),
         "lon": float(net.node_lon[n]), "turnout_s": 60}
        for i, n in enumerate(rng.choice(nodes, 48, replace=False))
    ]  # fmt: skip
    ladder = np.flatnonzero(net.class_core("ladder") & (net.node_osmid > 0))
    on_road = [(float(net.node_lat[n]), float(net.node_lon[n]))
               for n in rng.choice(ladder, 200, replace=False)]  # fmt: skip
    w = rm.walk
    alley = []
    for n in range(w.n_nodes):
        e = np.flatnonzero((w.edge_u == n) | (w.edge_v == n))
        if len(e) == 2 and (w.edge_drive[e] == 8).all():  # inside a way open to motorbikes only
            alley.append(n)
    alley_calls = [(float(w.node_lat[n]), float(w.node_lon[n]))
                   for n in rng.choice(alley, 100, replace=False)]  # fmt: skip
    lo, hi = net.bbox[:2], net.bbox[2:]
    random_pts = [(float(rng.uniform(lo[0], hi[0])), float(rng.uniform(lo[1], hi[1])))
                  for _ in range(200)]  # fmt: skip

    def without(call: Call, fl: object) -> list[dispatch.UnitETA]:
        return q.fastest_units(net.engine, net.closure_set, call, fl, k=3)

    def with_reach(call: Call, fl: object) -> list[dispatch.UnitETA]:
        return net.fastest_units(call, fl, k=3)

    def answer(f: Callable[[Call, object], list[dispatch.UnitETA]], c: Call) -> object:
        try:
            return [(u.unit, round(u.eta_s, 3)) for u in f(c, units)]
        except dispatch.DispatchError as exc:
            return str(exc)

    def per_call_us(
        f: Callable[[Call, object], object], calls: Sequence[Call], fl: object
    ) -> float:
        best = np.inf
        for _ in range(3):
            t = time.perf_counter()
            for c in calls:
                with contextlib.suppress(dispatch.DispatchError):
                    f(c, fl)
            best = min(best, (time.perf_counter() - t) / len(calls))
        return float(best * 1e6)

    fleet = net.fleet(units)
    for c in on_road[:5] + alley_calls[:5]:  # compile kernels, fill caches
        for f in (without, with_reach):
            answer(f, c)
            f(c, fleet)
    same = sum(answer(without, c) == answer(with_reach, c) for c in on_road)
    assert same == len(on_road), f"{len(on_road) - same} on-road answers changed"
    print(f"on-road calls: {same}/{len(on_road)} identical answers with and without reach")
    kinds: dict[str, int] = {}
    for c in alley_calls:
        try:
            for u in with_reach(c, units):
                key = f"{u.vehicle}:{u.reach}"
                kinds[key] = kinds.get(key, 0) + 1
        except dispatch.DispatchError:
            kinds["error"] = kinds.get("error", 0) + 1
    print("alley calls, listed units by reach:", dict(sorted(kinds.items())))
    diff = sum(answer(without, c) != answer(with_reach, c) for c in random_pts)
    print(f"random points: {diff}/{len(random_pts)} answers change with reach")
    for name, calls in (("on-road", on_road), ("alley", alley_calls), ("random", random_pts)):
        for fl_name, fl in (("list of 48", units), ("Fleet of 48", fleet)):
            a = per_call_us(without, calls, fl)
            b = per_call_us(with_reach, calls, fl)
            print(f"{name:8s} {fl_name:12s} without reach {a:8.1f} us/call  with reach "
                  f"{b:8.1f} us/call  ratio {b / a:5.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
