"""Query cost of turn-awareness: turn restrictions obeyed vs ignored, side by side with routingkit-cch.

Run from the repository root (routingkit-cch comes with ``pip install -e ".[bench]"``)::

    nice python benchmarks/turns.py [--maps danang hcmc monaco liechtenstein campo_grande]
                                    [--calls 200] [--out benchmarks/results/turns.json]

For every map the network is compiled twice: with the default profiles (turn restrictions obeyed:
the junctions they touch are expanded, :mod:`dispatch.roads.compile`) and with
``obey_turn_restrictions = False`` for every class (no expansion). On each compiled graph, in the
same process:

* **preprocessing**: compile (OSM -> arrays, into a temporary cache folder), our CCH order +
  contraction (:func:`dispatch.routing.cch.build_hierarchy`) and customization for the ambulance
  weights; routingkit-cch's ``compute_order_inertial`` + ``CCH`` + ``CCHMetric`` on the SAME compiled
  arcs (ambulance arcs, parallel arcs merged to their minimum, weights in integer milliseconds);
* **fastest_units**: one call, k = 3 fastest of 50 units (the same list of unit dicts on every call,
  as ``benchmarks/routing.py`` does), against routingkit's fresh ``CCHManyToOne`` per call + argsort;
  interleaved in blocks of 10 calls;
* **matrix 50 x 1000**: ``net.travel_times(units, calls)`` against ``CCHOneToMany`` with the calls
  pinned, one sweep per unit (median of a few repetitions).

Queries (seeded) are positions of OSM nodes present in both compiled graphs, in the ambulance's
largest strongly connected part, alone at their coordinates (a junction expanded for restrictions
has several nodes at one point). Answers: ours against scipy Dijkstra on the same float arcs
(1e-6 s), routingkit against scipy on the millisecond weights; any disagreement fails the run.
Ratios are ``routingkit / ours`` (above 1: ours faster) and ``obeyed / ignored`` (the cost of
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
MODES = ("obeyed", "ignored")
DEFAULT_MAPS = ("danang", "hcmc", "monaco", "liechtenstein", "campo_grande")


def settings_for(mode: str) -> dispatch.NetworkSettings:
    if mode == "obeyed":
        return dispatch.network_settings()
    return dispatch.network_settings(
        profiles={c: {"obey_turn_restrictions": False} for c in dispatch.VEHICLE_CLASSES}
    )


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

    def preprocess(self, reps: int = 3) -> dict[str, float]:
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
        good = gr.scc & (cnt[inv] == 1) & (g.node_osmid > 0)
        ids = set(g.node_osmid[good].tolist())
        ok = ids if ok is None else ok & ids
    assert ok
    pool = np.array(sorted(ok), dtype=np.int64)
    rng = np.random.default_rng(seed)
    return {"units": rng.choice(pool, 50, replace=False), "calls": rng.choice(pool, calls),
            "batch": rng.choice(pool, batch)}  # fmt: skip


def bench_mode(gr: Graph, q: dict[str, Any], reps: int) -> dict[str, Any]:
    g = gr.net.graph
    idx = {k: np.searchsorted(g.node_osmid, v) for k, v in q.items()}

    def pts(ix: np.ndarray) -> list[tuple[float, float]]:
        return [(float(g.node_lat[i]), float(g.node_lon[i])) for i in ix.tolist()]

    unit_pts, call_pts, batch_pts = pts(idx["units"]), pts(idx["calls"]), pts(idx["batch"])
    units = [{"id": f"u{i:02d}", "vehicle": VEHICLE, "lat": a, "lon": b, "turnout_s": 0.0}
             for i, (a, b) in enumerate(unit_pts)]  # fmt: skip
    ids = [u["id"] for u in units]
    net = gr.net
    uix = idx["units"]
    ref = dijkstra(gr.rev, indices=idx["calls"])[:, uix]  # (calls, units) drive times
    ref_ms = dijkstra(gr.rev_ms, indices=idx["calls"])[:, uix]
    warm = units[1:] + units[:1]
    net.fastest_units(call_pts[0], warm, k=K)  # JIT warm-up with a throwaway fleet
    net.fastest_units(call_pts[0], units, k=K)  # fleet snapping: timed apart in routing.py
    err_ours = err_rk = 0.0
    t_ours: list[float] = []
    t_rk: list[float] = []
    rk = gr.rk
    ulist = uix.tolist()
    n = len(call_pts)
    for lo in range(0, n, 10):
        for who in ("ours", "rk") if (lo // 10) % 2 == 0 else ("rk", "ours"):
            for i in range(lo, min(lo + 10, n)):
                if who == "ours":
                    t = time.perf_counter()
                    res = net.fastest_units(call_pts[i], units, k=K)
                    t_ours.append(time.perf_counter() - t)
                    want = np.sort(ref[i])[:K]
                    got = np.array([u.eta_s for u in res])
                    err_ours = max(err_ours, float(np.max(np.abs(got - want))))
                    for u in res:
                        err_ours = max(err_ours, abs(u.eta_s - ref[i, ids.index(u.unit)]))
                else:
                    c = int(idx["calls"][i])
                    t = time.perf_counter()
                    m2o = rk.CCHManyToOne(gr.rk_metric, ulist)
                    d = np.array(m2o.distances_to(c), dtype=float)
                    top = np.argsort(d)[:K]
                    t_rk.append(time.perf_counter() - t)
                    del m2o
                    err_rk = max(err_rk, float(np.max(np.abs(d[top] / 1000 - ref_ms[i, top]))))
    # matrix 50 x 1000
    bix = idx["batch"]
    net.travel_times(unit_pts, batch_pts, vehicle=VEHICLE)  # first call: lazy state (timed apart)
    t_m_ours = []
    t_m_rk = []
    ref_b = dijkstra(gr.fwd, indices=uix)[:, bix]
    ref_b_ms = dijkstra(gr.fwd_ms, indices=uix)[:, bix]
    for _ in range(reps):
        mat, t = _timed(lambda: net.travel_times(unit_pts, batch_pts, vehicle=VEHICLE))
        t_m_ours.append(t)
        err_ours = max(err_ours, float(np.max(np.abs(mat - ref_b))))

        def rk_batch() -> np.ndarray:
            o2m = rk.CCHOneToMany(gr.rk_metric, bix.tolist())
            out = np.array([o2m.distances_from(u) for u in ulist], dtype=float)
            del o2m
            return out

        mat_rk, t = _timed(rk_batch)
        t_m_rk.append(t)
        err_rk = max(err_rk, float(np.max(np.abs(mat_rk / 1000 - ref_b_ms))))
    out = {"nodes": g.n_nodes, "arcs": g.n_arcs, "compile_s": gr.compile_s,
           "fastest_units_ms": {"ours": 1e3 * float(np.median(t_ours)),
                                "routingkit": 1e3 * float(np.median(t_rk))},
           "matrix_50x1000_ms": {"ours": 1e3 * float(np.median(t_m_ours)),
                                 "routingkit": 1e3 * float(np.median(t_m_rk))},
           "max_abs_diff_s": {"ours": err_ours, "routingkit": err_rk}}  # fmt: skip
    assert err_ours <= 1e-6 and err_rk <= 1e-6, f"answers disagree: {out['max_abs_diff_s']}"
    return out


def run_map(name: str, calls: int, seed: int, reps: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix=f"turns_{name}_") as tmp:
        graphs = {m: Graph(name, m, Path(tmp) / m) for m in MODES}
        graphs["ignored"].preprocess(reps=1)  # warm-up: numba kernels compiled or loaded
        pre = {m: gr.preprocess() for m, gr in graphs.items()}
        q = pick_queries(graphs, calls, 1000, seed)
        res = {m: {**bench_mode(graphs[m], q, reps), "preprocess": pre[m]} for m in MODES}
        return {"map": name, "modes": res}


def table(results: list[dict[str, Any]]) -> str:
    lines = ["| map | restrictions | nodes / arcs | compile s | ours order+contract / customize ms "
             "| rk order+CCH / customize ms | fastest_units ours ms | rk ms | × | matrix 50x1000 "
             "ours ms | rk ms | × |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    for r in results:
        for m in MODES:
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
    lines += ["", "| map | obeyed / ignored: ours fastest_units | rk | ours matrix | rk | ours "
              "preprocessing (order+contract+customize) | rk |", "|---|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    for r in results:
        a, b = r["modes"]["obeyed"], r["modes"]["ignored"]

        def pre(x: dict[str, Any], who: str) -> float:
            p = x["preprocess"]
            if who == "ours":
                return float(p["ours_order_contract_s"] + p["ours_customize_s"])
            return float(p["rk_order_s"] + p["rk_cch_s"] + p["rk_customize_s"])

        lines.append(
            f"| {r['map']} | {a['fastest_units_ms']['ours'] / b['fastest_units_ms']['ours']:.2f} | "
            f"{a['fastest_units_ms']['routingkit'] / b['fastest_units_ms']['routingkit']:.2f} | "
            f"{a['matrix_50x1000_ms']['ours'] / b['matrix_50x1000_ms']['ours']:.2f} | "
            f"{a['matrix_50x1000_ms']['routingkit'] / b['matrix_50x1000_ms']['routingkit']:.2f} | "
            f"{pre(a, 'ours') / pre(b, 'ours'):.2f} | {pre(a, 'rk') / pre(b, 'rk'):.2f} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--maps", nargs="+", default=list(DEFAULT_MAPS), choices=sorted(MAP_FILES))
    ap.add_argument("--calls", type=int, default=200)
    ap.add_argument("--reps", type=int, default=5, help="matrix repetitions")
    ap.add_argument("--seed", type=int, default=12345)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/turns.json")
    args = ap.parse_args(argv)
    results = []
    for name in args.maps:
        t = time.perf_counter()
        results.append(run_map(name, args.calls, args.seed, args.reps))
        print(f"{name}: {time.perf_counter() - t:.1f} s", file=sys.stderr)
    data = {"date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "machine": {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(),
                        "python": platform.python_version(), "load_avg": os.getloadavg()},
            "versions": {p: metadata.version(p) for p in ("numpy", "numba", "routingkit-cch")},
            "seed": args.seed, "maps": results}  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(args.out, json.dumps(data, indent=1, default=float))
    print(table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
