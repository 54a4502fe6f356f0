"""Query cost of turn-awareness: turn restrictions and turn costs, side by side with routingkit-cch.

Run from the repository root (routingkit-cch comes with ``pip install -e ".[bench]"``)::

    nice python benchmarks/turns.py [--maps danang hcmc monaco liechtenstein campo_grande]
                                    [--modes ignored obeyed signals junctions]
                                    [--calls 200] [--out benchmarks/results/turns.json]

For every map the network is compiled once per mode (:mod:`dispatch.roads.compile`):

* ``ignored``: ``obey_turn_restrictions = False`` for every class, no turn costs (no expansion);
* ``obeyed``: restrictions obeyed (the junctions they touch are expanded), no turn costs;
* ``signals``: the default, restrictions obeyed and turn costs at signalised junctions (expanded);
* ``junctions``: restrictions obeyed and turn costs at every junction (every one expanded).

On each compiled graph, in the same process:

* **preprocessing**: compile (OSM -> arrays, into a temporary cache folder, once), our CCH order +
  contraction (:func:`dispatch.routing.cch.build_hierarchy`) and customization for the ambulance
  weights; routingkit-cch's ``compute_order_inertial`` + ``CCH`` + ``CCHMetric`` on the SAME compiled
  arcs (ambulance arcs, parallel arcs merged to their minimum, weights in integer milliseconds);
  medians of 5, the graphs alternating;
* **fastest_units**: one call, k = 3 fastest of 50 units, two ways: ``ours`` with the same list of
  unit dicts on every call (as ``benchmarks/routing.py`` does), ``ours_fleet`` with the fleet
  prepared once (``net.fleet(units)``, what a dispatch system keeps: the path the service uses);
  against routingkit's fresh ``CCHManyToOne`` per call + argsort (``rk``) and one ``CCHManyToOne``
  kept while the fleet does not move (``rk_pinned``). Ours takes the call as (lat, lon) and snaps
  it, checks its input and returns unit ids with their ETAs; routingkit gets the call's node id;
  the contenders (four per graph) interleaved in blocks of 10 calls in a rotating order;
* **matrix 50 x 1000**: ``net.travel_times(units, calls)`` against ``CCHOneToMany`` with the calls
  pinned, one sweep per unit (median of a few repetitions, interleaved the same way).

Queries (seeded) are positions of OSM nodes present in every compiled graph, in the ambulance's
largest strongly connected part, alone at their coordinates (a junction expanded for restrictions
or turn costs has several nodes at one point) and snapping to themselves (not to a road passing over them). Answers (checked outside the timing): ours against scipy Dijkstra on the same float arcs
(1e-6 s: the k first are the k best, each unit's ETA exact), routingkit against scipy on the
millisecond weights (its distance to every unit, and its k first the k best); any disagreement
fails the run.
Ratios are ``routingkit / ours`` (above 1: ours faster) and ``mode / ignored`` (the cost of
turn-awareness for each engine).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS",
             "RAYON_NUM_THREADS"):  # fmt: skip
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Sequence  # noqa: E402
from importlib import metadata  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
from scipy.sparse import csr_matrix  # noqa: E402
from scipy.sparse.csgraph import connected_components, dijkstra  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import dispatch  # noqa: E402
from dispatch.io.atomic import atomic_write  # noqa: E402
from dispatch.roads.osm import MAP_FILES  # noqa: E402
from dispatch.routing import cch  # noqa: E402

VEHICLE = "ambulance"
K = 3
MODES = ("ignored", "obeyed", "signals", "junctions")
DEFAULT_MAPS = ("danang", "hcmc", "monaco", "liechtenstein", "campo_grande")


def settings_for(mode: str) -> dispatch.NetworkSettings:
    if mode == "ignored":
        return dispatch.network_settings(
            profiles={c: {"obey_turn_restrictions": False} for c in dispatch.VEHICLE_CLASSES},
            turn_costs="off",
        )
    return dispatch.network_settings(turn_costs="off" if mode == "obeyed" else mode)


def _timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


class Graph:
    """One compiled network with its merged ambulance arcs (what routingkit and scipy get)."""

    def __init__(self, name: str, mode: str, cache: Path) -> None:
        self.mode = mode
        s = settings_for(mode)
        _, self.compile_s = _timed(
            lambda: dispatch.load_network(name, settings=s, cache_dir=cache, rebuild=True)
        )
        self.net = dispatch.load_network(name, settings=s, cache_dir=cache)
        g = self.net.graph
        self.n = g.n_nodes
        w = self.net.weights(VEHICLE)
        ok = np.isfinite(w) & (g.arc_tail != g.arc_head)
        u, v, ww = g.arc_tail[ok].astype(np.int64), g.arc_head[ok].astype(np.int64), w[ok]
        order = np.lexsort((ww, v, u))
        first = np.ones(len(order), bool)
        first[1:] = (u[order][1:] != u[order][:-1]) | (v[order][1:] != v[order][:-1])
        keep = order[first]
        self.eu, self.ev, self.ew = u[keep], v[keep], ww[keep]
        self.ew_ms = np.rint(self.ew * 1000).astype(np.int64)
        self.rev = csr_matrix((self.ew, (self.ev, self.eu)), shape=(self.n, self.n))
        self.fwd = csr_matrix((self.ew, (self.eu, self.ev)), shape=(self.n, self.n))
        self.rev_ms = csr_matrix((self.ew_ms / 1000, (self.ev, self.eu)), shape=(self.n, self.n))
        self.fwd_ms = csr_matrix((self.ew_ms / 1000, (self.eu, self.ev)), shape=(self.n, self.n))
        _, lab = connected_components(self.fwd, directed=True, connection="strong")
        self.scc = lab == np.bincount(lab).argmax()

    def preprocess(self, reps: int = 1) -> dict[str, float]:
        """Our order + contraction and customization; routingkit's, on the same arcs (medians of
        ``reps``; numba kernels are compiled before, by a warm-up on the first graph)."""
        import routingkit_cch as rk

        g = self.net.graph
        w = self.net.weights(VEHICLE)
        tail, head = self.eu.tolist(), self.ev.tolist()
        lat, lon = g.node_lat.tolist(), g.node_lon.tolist()
        t: dict[str, list[float]] = {k: [] for k in ("ours_order_contract_s", "ours_customize_s",
                                                     "rk_order_s", "rk_cch_s", "rk_customize_s")}  # fmt: skip
        for _ in range(reps):
            h, dt = _timed(lambda: cch.build_hierarchy(g.arc_tail, g.arc_head, g.node_lat,
                                                       g.node_lon))  # fmt: skip
            t["ours_order_contract_s"].append(dt)
            t["ours_customize_s"].append(_timed(lambda: cch.customize(h, w))[1])  # noqa: B023
            order, dt = _timed(lambda: rk.compute_order_inertial(self.n, tail, head, lat, lon))
            t["rk_order_s"].append(dt)
            rcch, dt = _timed(lambda: rk.CCH(order, tail, head, False))  # noqa: B023
            t["rk_cch_s"].append(dt)
            metric, dt = _timed(lambda: rk.CCHMetric(rcch, self.ew_ms.tolist()))  # noqa: B023
            t["rk_customize_s"].append(dt)
        self.rk_cch, self.rk_metric, self.rk = rcch, metric, rk
        return {k: float(np.median(v)) for k, v in t.items()}


def pick_queries(graphs: dict[str, Graph], calls: int, batch: int, seed: int) -> dict[str, Any]:
    """OSM node ids usable as points in both graphs: SCC, positive id, alone at its position."""
    ok: set[int] | None = None
    for gr in graphs.values():
        g = gr.net.graph
        key = np.round(g.node_lat * 1e7) * 1e9 + np.round(g.node_lon * 1e7)
        _, inv, cnt = np.unique(key, return_inverse=True, return_counts=True)
        good = np.flatnonzero(gr.scc & (cnt[inv] == 1) & (g.node_osmid > 0))
        # a point there must snap to the node itself (not mid-way along another road whose
        # geometry passes the same coordinates: a bridge over it, a way without a shared node)
        pts = np.stack([g.node_lat[good], g.node_lon[good]], axis=1)
        for role in ("from", "to"):
            sn = gr.net.snap(pts, vehicle=VEHICLE, role=role)
            at = np.where(
                sn.t == 0, g.arc_tail[sn.arc], np.where(sn.t == 1, g.arc_head[sn.arc], -1)
            )
            keep = at == good
            good, pts = good[keep], pts[keep]
        ids = set(g.node_osmid[good].tolist())
        ok = ids if ok is None else ok & ids
    assert ok
    pool = np.array(sorted(ok), dtype=np.int64)
    rng = np.random.default_rng(seed)
    return {"units": rng.choice(pool, 50, replace=False), "calls": rng.choice(pool, calls),
            "batch": rng.choice(pool, batch)}  # fmt: skip


class Probes:
    """One compiled graph's timed probes (ours and routingkit) with their answers checked."""

    def __init__(self, gr: Graph, q: dict[str, Any]) -> None:
        g = gr.net.graph
        self.gr = gr
        idx = {k: np.searchsorted(g.node_osmid, v) for k, v in q.items()}
        self.idx = idx

        def pts(ix: np.ndarray) -> list[tuple[float, float]]:
            return [(float(g.node_lat[i]), float(g.node_lon[i])) for i in ix.tolist()]

        self.unit_pts, self.call_pts, self.batch_pts = (pts(idx["units"]), pts(idx["calls"]),
                                                        pts(idx["batch"]))  # fmt: skip
        self.units = [{"id": f"u{i:02d}", "vehicle": VEHICLE, "lat": a, "lon": b, "turnout_s": 0.0}
                      for i, (a, b) in enumerate(self.unit_pts)]  # fmt: skip
        self.ids = [u["id"] for u in self.units]
        self.ulist = idx["units"].tolist()
        self.ref = dijkstra(gr.rev, indices=idx["calls"])[:, idx["units"]]  # (calls, units)
        self.ref_ms = dijkstra(gr.rev_ms, indices=idx["calls"])[:, idx["units"]]
        self.ref_b = dijkstra(gr.fwd, indices=idx["units"])[:, idx["batch"]]
        self.ref_b_ms = dijkstra(gr.fwd_ms, indices=idx["units"])[:, idx["batch"]]
        net = gr.net
        net.fastest_units(self.call_pts[0], self.units[1:] + self.units[:1], k=K)  # JIT warm-up
        net.fastest_units(self.call_pts[0], self.units, k=K)  # fleet snapping (not timed)
        self.fleet = net.fleet(self.units)  # prepared once, as a dispatch system keeps it
        net.fastest_units(self.call_pts[0], self.fleet, k=K)
        self.m2o = gr.rk.CCHManyToOne(gr.rk_metric, self.ulist)  # rk_pinned's kept query object
        net.travel_times(self.unit_pts, self.batch_pts, vehicle=VEHICLE)  # lazy state (not timed)
        self.err = {"ours": 0.0, "routingkit": 0.0}

    def ours(self, i: int) -> float:
        return self._ours(i, self.units)

    def ours_fleet(self, i: int) -> float:
        return self._ours(i, self.fleet)

    def _ours(self, i: int, units: object) -> float:
        t = time.perf_counter()
        res = self.gr.net.fastest_units(self.call_pts[i], units, k=K)
        dt = time.perf_counter() - t
        got = np.array([u.eta_s for u in res])
        # units are ranked by ETA rounded to the engine's resolution (1 ms), then by id: the k
        # best may swap a unit with one less than 1 ms faster; each unit's ETA itself is exact
        res_s = self.gr.net.policy.eta_resolution_s
        assert float(np.max(np.abs(got - np.sort(self.ref[i])[:K]))) <= res_s + 1e-9
        e = 0.0
        for u in res:
            e = max(e, abs(u.eta_s - self.ref[i, self.ids.index(u.unit)]))
        self.err["ours"] = max(self.err["ours"], e)
        return dt

    def rk(self, i: int) -> float:
        gr = self.gr
        c = int(self.idx["calls"][i])
        t = time.perf_counter()
        m2o = gr.rk.CCHManyToOne(gr.rk_metric, self.ulist)
        d = np.array(m2o.distances_to(c), dtype=float)
        top = np.argsort(d)[:K]
        dt = time.perf_counter() - t
        del m2o
        self._check_rk(i, d, top)
        return dt

    def _check_rk(self, i: int, d: np.ndarray, top: np.ndarray) -> None:
        """routingkit's distance to every unit (not only the k it ranks first) against scipy on
        the millisecond weights, and its k first the k smallest of scipy's (outside the timing)."""
        ref = self.ref_ms[i]
        e = float(np.max(np.abs(d / 1000 - ref)))
        e = max(e, float(np.max(np.abs(np.sort(ref)[:K] - d[top] / 1000))))
        self.err["routingkit"] = max(self.err["routingkit"], e)

    def rk_pinned(self, i: int) -> float:
        c = int(self.idx["calls"][i])
        t = time.perf_counter()
        d = np.array(self.m2o.distances_to(c), dtype=float)
        top = np.argsort(d)[:K]
        dt = time.perf_counter() - t
        self._check_rk(i, d, top)
        return dt

    def ours_matrix(self) -> float:
        t = time.perf_counter()
        mat = self.gr.net.travel_times(self.unit_pts, self.batch_pts, vehicle=VEHICLE)
        dt = time.perf_counter() - t
        self.err["ours"] = max(self.err["ours"], float(np.max(np.abs(mat - self.ref_b))))
        return dt

    def rk_matrix(self) -> float:
        gr = self.gr
        t = time.perf_counter()
        o2m = gr.rk.CCHOneToMany(gr.rk_metric, self.idx["batch"].tolist())
        mat = np.array([o2m.distances_from(u) for u in self.ulist], dtype=float)
        dt = time.perf_counter() - t
        del o2m
        e = float(np.max(np.abs(mat / 1000 - self.ref_b_ms)))
        self.err["routingkit"] = max(self.err["routingkit"], e)
        return dt


FU_WHO = ("ours", "ours_fleet", "rk", "rk_pinned")
FU_KEY = {"ours": "ours", "ours_fleet": "ours_fleet", "rk": "routingkit",
          "rk_pinned": "routingkit_pinned"}  # fmt: skip


def bench(probes: dict[str, Probes], calls: int, reps: int) -> dict[str, dict[str, Any]]:
    """The fastest_units contenders (ours with a list and with a prepared fleet, routingkit fresh
    and pinned, on each graph) interleaved in blocks of 10 calls in a rotating order, so that
    a burst of load on the shared machine hits all alike; the matrices likewise."""
    modes = list(probes)
    names = [(m, who) for m in modes for who in FU_WHO]
    t: dict[tuple[str, str], list[float]] = {k: [] for k in names}
    for b, lo in enumerate(range(0, calls, 10)):
        r = b % len(names)
        for m, who in names[r:] + names[:r]:
            fn = getattr(probes[m], who)
            t[(m, who)].extend(fn(i) for i in range(lo, min(lo + 10, calls)))
    mnames = [(m, who) for m in modes for who in ("ours", "rk")]
    tm: dict[tuple[str, str], list[float]] = {k: [] for k in mnames}
    for r in range(reps):
        nm = len(mnames)
        for m, who in mnames[r % nm :] + mnames[: r % nm]:
            p = probes[m]
            tm[(m, who)].append(p.ours_matrix() if who == "ours" else p.rk_matrix())
    out: dict[str, dict[str, Any]] = {}
    for m in modes:
        g = probes[m].gr.net.graph
        err = probes[m].err
        assert err["ours"] <= 1e-6 and err["routingkit"] <= 1e-6, f"answers disagree ({m}): {err}"
        out[m] = {"nodes": g.n_nodes, "arcs": g.n_arcs, "compile_s": probes[m].gr.compile_s,
                  "fastest_units_ms": {FU_KEY[who]: 1e3 * float(np.median(t[(m, who)]))
                                       for who in FU_WHO},
                  "matrix_50x1000_ms": {"ours": 1e3 * float(np.median(tm[(m, "ours")])),
                                        "routingkit": 1e3 * float(np.median(tm[(m, "rk")]))},
                  "max_abs_diff_s": dict(err)}  # fmt: skip
    return out


def run_map(name: str, calls: int, seed: int, reps: int,
            modes: Sequence[str] = MODES, fu_only: bool = False) -> dict[str, Any]:  # fmt: skip
    modes = list(modes)
    with tempfile.TemporaryDirectory(prefix=f"turns_{name}_") as tmp:
        graphs = {m: Graph(name, m, Path(tmp) / m) for m in modes}
        graphs[modes[0]].preprocess(reps=1)  # warm-up: numba kernels compiled or loaded
        if fu_only:
            for m in modes:
                graphs[m].preprocess(reps=1)
            q = pick_queries(graphs, calls, 1000, seed)
            probes = {m: Probes(graphs[m], q) for m in modes}
            res = bench(probes, calls, 1)
            return {"map": name, "modes": res}
        runs: dict[str, list[dict[str, float]]] = {m: [] for m in modes}
        nm = len(modes)
        for r in range(5):  # the graphs alternate, so that load bursts hit all alike
            for m in modes[r % nm :] + modes[: r % nm]:
                runs[m].append(graphs[m].preprocess(reps=1))
        pre = {m: {k: float(np.median([x[k] for x in v])) for k in v[0]} for m, v in runs.items()}
        q = pick_queries(graphs, calls, 1000, seed)
        probes = {m: Probes(graphs[m], q) for m in modes}
        res = bench(probes, calls, reps)
        for m in modes:
            res[m]["preprocess"] = pre[m]
            res[m]["turn_cost_junctions"] = graphs[m].net.stats["turn_costs"]["junctions"]
        return {"map": name, "modes": res}


def fu_table(results: list[dict[str, Any]]) -> str:
    """The fastest_units figures alone: ours (list, prepared fleet) against routingkit."""
    lines = ["| map | mode | ours list ms | ours fleet ms | rk ms | rk pinned ms | × list "
             "| × fleet | × fleet vs pinned |", "|---|---|---:|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    for r in results:
        for m in r["modes"]:
            f = r["modes"][m]["fastest_units_ms"]
            lines.append(
                f"| {r['map']} | {m} | {f['ours']:.4f} | {f['ours_fleet']:.4f} | "
                f"{f['routingkit']:.4f} | {f['routingkit_pinned']:.4f} | "
                f"{f['routingkit'] / f['ours']:.2f} | {f['routingkit'] / f['ours_fleet']:.2f} | "
                f"{f['routingkit_pinned'] / f['ours_fleet']:.2f} |"
            )
    return "\n".join(lines)


def table(results: list[dict[str, Any]]) -> str:
    lines = ["| map | mode | nodes / arcs | compile s | ours order+contract / customize ms "
             "| rk order+CCH / customize ms | fastest_units ours ms | rk ms | × | matrix 50x1000 "
             "ours ms | rk ms | × |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    for r in results:
        for m in r["modes"]:
            x = r["modes"][m]
            p = x["preprocess"]
            f, mm = x["fastest_units_ms"], x["matrix_50x1000_ms"]
            lines.append(
                f"| {r['map']} | {m} | {x['nodes']:,} / {x['arcs']:,} | {x['compile_s']:.2f} | "
                f"{1e3 * p['ours_order_contract_s']:.1f} / {1e3 * p['ours_customize_s']:.2f} | "
                f"{1e3 * (p['rk_order_s'] + p['rk_cch_s']):.1f} / {1e3 * p['rk_customize_s']:.2f} | "
                f"{f['ours']:.4f} | {f['routingkit']:.4f} | {f['routingkit'] / f['ours']:.2f} | "
                f"{mm['ours']:.2f} | {mm['routingkit']:.2f} | {mm['routingkit'] / mm['ours']:.2f} |"
            )
    lines += ["", "| map | ratio | ours fastest_units | rk | ours matrix | rk | ours preprocessing "
              "(order+contract+customize) | rk |", "|---|---|---:|---:|---:|---:|---:|---:|"]  # fmt: skip

    def pre(x: dict[str, Any], who: str) -> float:
        p = x["preprocess"]
        if who == "ours":
            return float(p["ours_order_contract_s"] + p["ours_customize_s"])
        return float(p["rk_order_s"] + p["rk_cch_s"] + p["rk_customize_s"])

    def ratio(a: dict[str, Any], b: dict[str, Any], key: str, who: str) -> str:
        return f"{a[key][who] / b[key][who]:.2f}"

    for r in results:
        base = next(iter(r["modes"]))
        for m in list(r["modes"])[1:]:
            a, b = r["modes"][m], r["modes"][base]
            lines.append(
                f"| {r['map']} | {m} / {base} | {ratio(a, b, 'fastest_units_ms', 'ours')} | "
                f"{ratio(a, b, 'fastest_units_ms', 'routingkit')} | "
                f"{ratio(a, b, 'matrix_50x1000_ms', 'ours')} | "
                f"{ratio(a, b, 'matrix_50x1000_ms', 'routingkit')} | "
                f"{pre(a, 'ours') / pre(b, 'ours'):.2f} | {pre(a, 'rk') / pre(b, 'rk'):.2f} |"
            )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--maps", nargs="+", default=list(DEFAULT_MAPS), choices=sorted(MAP_FILES))
    ap.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    ap.add_argument("--calls", type=int, default=200)
    ap.add_argument("--reps", type=int, default=11, help="matrix repetitions")
    ap.add_argument("--seed", type=int, default=12345)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/turns.json")
    ap.add_argument("--fastest-units-only", action="store_true",
                    help="only the fastest_units contenders (no preprocessing medians, no matrices)")  # fmt: skip
    args = ap.parse_args(argv)
    results = []
    for name in args.maps:
        t = time.perf_counter()
        results.append(
            run_map(name, args.calls, args.seed, args.reps, args.modes, args.fastest_units_only)
        )
        print(f"{name}: {time.perf_counter() - t:.1f} s", file=sys.stderr)
    data = {"date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "machine": {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(),
                        "python": platform.python_version(), "load_avg": os.getloadavg()},
            "versions": {p: metadata.version(p) for p in ("numpy", "numba", "routingkit-cch")},
            "seed": args.seed, "maps": results}  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(args.out, json.dumps(data, indent=1, default=float))
    if not args.fastest_units_only:
        print(table(results))
        print()
    print(fu_table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
