"""Routing benchmarks: our dispatch queries against the routing libraries a Python user could pick.

Run from the repository root::

    python benchmarks/routing.py [--maps danang monaco campo_grande] [--quick]
                                 [--out benchmarks/results/routing.json]

For each map the harness loads our network (:func:`dispatch.load_network`), exports the arrays of the
ambulance class (:meth:`dispatch.Network.edge_table`) and builds every peer from those SAME arrays in
the same process: scipy.sparse.csgraph (also the reference), networkx, igraph, routingkit-cch,
pandana (``twoway=False``) and the osmnx approach (``osmnx.shortest_path`` per unit). A peer that is
not installed is skipped with a printed reason.

Queries are seeded (:func:`numpy.random.default_rng`) and identical for every library. Call and
unit points are positions ON network nodes (nodes of the largest strongly connected part of the
ambulance graph): node-based peers answer the same question as our edge-snapping API, which snaps
such a point to the node itself.

Benchmarks (medians, milliseconds):

``dispatch_50`` / ``dispatch_200``
    One call against 50 (200) units, the 3 fastest with their ETA. Ours:
    ``net.fastest_units(call, units, k=3)`` with the same list of unit dicts on every call, snapping
    of the call included. Peers: their fastest reverse / many-to-one search, then argsort of 3.
``dispatch_50_moving``
    As ``dispatch_50`` but one unit has moved (a list item replaced by a new dict, same id) before
    each call: what a simulation or a live fleet does. Peers get the new unit array.
``batch_1000x50``
    Travel-time matrix 50 units x 1000 calls. Ours: ``net.travel_times(unit_points, call_points)``
    (snapping included); peers: their best one-to-many method.
``closure_100``
    Close 100 random arcs, then the next correct dispatch query (50 units). Ours:
    ``net.close_arcs(arcs)`` + ``fastest_units``; scipy: rebuild the CSR; routingkit-cch:
    ``CCHMetricPartialUpdater``; pandana: full rebuild; networkx / igraph: edit the edges.
``load``
    Time to the first dispatch answer. Ours: ``load_network`` from the cache + first
    ``fastest_units`` (in this process, imports done); peers: build from the arrays + first query.
    ``load_fresh_process`` (ours only): a fresh interpreter, ``import dispatch`` included.

Every answer is compared with the reference (scipy Dijkstra on the same float arrays; for the
integer-weight peers, scipy on the same millisecond weights) and the max abs difference is printed;
a difference beyond tolerance fails the run (exit status 1, after the table and JSON are written).
Ratios are ``peer / ours``: above 1 means ours is faster.
"""

from __future__ import annotations

import os

# Single-threaded for fairness: must be set before numpy, numba or any peer is imported.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS",
             "NUMBA_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "RAYON_NUM_THREADS"):  # fmt: skip
    os.environ[_var] = "1"

import argparse  # noqa: E402
import contextlib  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from collections.abc import Callable, Iterator, Sequence  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from functools import partial  # noqa: E402
from importlib import metadata  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
from scipy.sparse import csr_matrix  # noqa: E402
from scipy.sparse.csgraph import connected_components, dijkstra  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # benchmark this checkout, not another installed copy
    sys.path.insert(0, str(ROOT))

import dispatch  # noqa: E402

INF = math.inf
VEHICLE = "ambulance"
K = 3
#: Float peers and ours against the float reference (seconds).
TOL_FLOAT_S = 1e-6
#: Integer peers against the millisecond reference (seconds; the sums are exact integers).
TOL_MS_S = 1e-6
#: RoutingKit's ``inf_weight``: a larger weight silently overflows.
RK_INF = 2**31 - 1
BENCHES = ("dispatch_50", "dispatch_200", "dispatch_50_moving", "batch_1000x50", "closure_100",
           "load")  # fmt: skip
DEFAULT_MAPS = ("danang", "monaco", "campo_grande")


# --- sizes --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sizes:
    """How many queries and repetitions each benchmark runs."""

    calls: int  # single dispatch queries (per unit count)
    slow_calls: int  # networkx / pandana-public dispatch queries
    osmnx_calls_50: int
    osmnx_calls_200: int
    batch_calls: int
    batch_reps: int
    slow_batch_reps: int  # networkx / pandana batch
    closures: int
    rebuild_closures: int  # pandana full rebuilds
    load_reps: int
    fresh_reps: int


FULL = Sizes(calls=200, slow_calls=40, osmnx_calls_50=5, osmnx_calls_200=2, batch_calls=1000,
             batch_reps=5, slow_batch_reps=1, closures=20, rebuild_closures=3, load_reps=5,
             fresh_reps=3)  # fmt: skip
QUICK = Sizes(calls=20, slow_calls=5, osmnx_calls_50=1, osmnx_calls_200=1, batch_calls=1000,
              batch_reps=1, slow_batch_reps=1, closures=3, rebuild_closures=1, load_reps=1,
              fresh_reps=1)  # fmt: skip


# --- the shared arrays --------------------------------------------------------------------------


@dataclass
class Case:
    """One map's exported ambulance arrays, as every peer receives them.

    Peer nodes are ``0..n-1`` over the OSM ids that appear in the edge table. ``raw_*`` are the rows
    of :meth:`dispatch.Network.edge_table` (one per arc); ``e*`` are the merged simple edges the
    peers are built from (self-loops dropped, parallel arcs merged to their minimum travel time);
    ``group[i]`` is the merged edge of raw arc ``i`` (-1 for a self-loop).
    """

    name: str
    net: Any
    osmid: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    raw_u: np.ndarray
    raw_v: np.ndarray
    raw_w: np.ndarray
    raw_arc: np.ndarray
    group: np.ndarray
    eu: np.ndarray
    ev: np.ndarray
    ew: np.ndarray
    ew_ms: np.ndarray
    scc: np.ndarray

    @property
    def n(self) -> int:
        """Number of peer nodes."""
        return len(self.osmid)


def prepare(map_name: str) -> Case:
    """Load our network and export the ambulance arrays (the input of every peer)."""
    net = dispatch.load_network(map_name)
    et = net.edge_table(VEHICLE)
    osmid, inv = np.unique(np.concatenate([et["u"], et["v"]]), return_inverse=True)
    m = len(et["u"])
    raw_u, raw_v = inv[:m].astype(np.int64), inv[m:].astype(np.int64)
    raw_w = np.asarray(et["travel_time_s"], dtype=np.float64)
    pos = np.searchsorted(net.node_osmid, osmid)
    assert np.array_equal(net.node_osmid[pos], osmid)
    # merge: self-loops out, parallel arcs to their minimum
    ok = raw_u != raw_v
    order = np.lexsort((raw_w, raw_v, raw_u))
    order = order[ok[order]]
    first = np.ones(len(order), bool)
    first[1:] = (raw_u[order][1:] != raw_u[order][:-1]) | (raw_v[order][1:] != raw_v[order][:-1])
    gid = np.cumsum(first) - 1
    group = np.full(m, -1, dtype=np.int64)
    group[order] = gid
    keep = order[first]
    eu, ev, ew = raw_u[keep], raw_v[keep], raw_w[keep]
    n = len(osmid)
    g = csr_matrix((np.ones(len(eu)), (eu, ev)), shape=(n, n))
    _, labels = connected_components(g, directed=True, connection="strong")
    scc = np.flatnonzero(labels == np.bincount(labels).argmax())
    lat, lon = net.node_lat[pos], net.node_lon[pos]
    # points on nodes that share their coordinates with another node would be ambiguous
    _, cidx, ccount = np.unique(np.column_stack([lat, lon]), axis=0, return_inverse=True,
                                return_counts=True)  # fmt: skip
    scc = scc[ccount[cidx.ravel()[scc]] == 1]
    return Case(map_name, net, osmid, lat, lon, raw_u, raw_v, raw_w,
                np.asarray(et["arc"], dtype=np.int64), group, eu, ev, ew,
                np.rint(ew * 1000).astype(np.int64), scc)  # fmt: skip


# --- queries ------------------------------------------------------------------------------------


@dataclass
class Closure:
    """100 closed arcs: raw rows, their dense arc ids (ours) and the merged-edge weight changes."""

    raw: np.ndarray
    arcs: np.ndarray
    changed: np.ndarray  # merged edge ids whose weight changes
    new_w: np.ndarray  # their new float weight (inf: closed)
    new_ms: np.ndarray  # their new integer weight (RK_INF: closed)
    call: int


@dataclass
class Queries:
    """Seeded queries shared by every library (peer node indices)."""

    calls: np.ndarray
    units50: np.ndarray
    units200: np.ndarray
    moving: np.ndarray  # (calls, 50): the fleet at each call, one unit moved before each call
    batch_calls: np.ndarray
    closures: list[Closure]


def make_queries(case: Case, sizes: Sizes, seed: int) -> Queries:
    """Draw call and unit nodes, batch calls and closure sets with ``default_rng(seed)``."""
    rng = np.random.default_rng(seed)
    pool = case.scc
    calls = rng.choice(pool, sizes.calls, replace=True)
    units200 = rng.choice(pool, 200, replace=False)
    units50 = units200[:50].copy()
    batch_calls = rng.choice(pool, sizes.batch_calls, replace=True)
    closures = []
    for _ in range(sizes.closures):
        raw = np.sort(rng.choice(len(case.raw_u), 100, replace=False))
        closed = np.zeros(len(case.raw_u), bool)
        closed[raw] = True
        g = case.group[raw]
        aff = np.unique(g[g >= 0])
        valid = case.group >= 0
        best = np.full(len(case.ew), INF)
        np.minimum.at(best, case.group[valid], np.where(closed, INF, case.raw_w)[valid])
        changed = aff[best[aff] != case.ew[aff]]
        new_w = best[changed]
        new_ms = np.where(
            np.isfinite(new_w), np.rint(np.nan_to_num(new_w, posinf=0) * 1000), RK_INF
        )
        closures.append(Closure(raw, case.raw_arc[raw], changed, new_w, new_ms.astype(np.int64),
                                int(rng.choice(pool))))  # fmt: skip
    moving = np.empty((len(calls), 50), dtype=np.int64)
    cur = units50.copy()
    for i in range(len(calls)):
        taken = set(cur.tolist())
        while True:
            v = int(rng.choice(pool))
            if v not in taken:
                break
        cur[i % 50] = v
        moving[i] = cur
    return Queries(calls, units50, units200, moving, batch_calls, closures)


# --- reference ----------------------------------------------------------------------------------


class Reference:
    """scipy Dijkstra on the same arrays: float seconds, and exact integer milliseconds."""

    def __init__(self, case: Case, q: Queries) -> None:
        n = case.n
        self.case = case
        rev = csr_matrix((case.ew, (case.ev, case.eu)), shape=(n, n))
        rev_ms = csr_matrix((case.ew_ms.astype(float), (case.ev, case.eu)), shape=(n, n))
        fwd = csr_matrix((case.ew, (case.eu, case.ev)), shape=(n, n))
        fwd_ms = csr_matrix((case.ew_ms.astype(float), (case.eu, case.ev)), shape=(n, n))
        d = dijkstra(rev, indices=q.calls)
        d_ms = dijkstra(rev_ms, indices=q.calls) / 1000
        self.dispatch = {50: d[:, q.units50], 200: d[:, q.units200]}
        self.dispatch_ms = {50: d_ms[:, q.units50], 200: d_ms[:, q.units200]}
        rows = np.arange(len(q.calls))[:, None]
        self.moving = d[rows, q.moving]
        self.moving_ms = d_ms[rows, q.moving]
        self.batch = dijkstra(fwd, indices=q.units50)[:, q.batch_calls]
        self.batch_ms = dijkstra(fwd_ms, indices=q.units50)[:, q.batch_calls] / 1000
        self.closure = []
        self.closure_ms = []
        for c in q.closures:
            w = case.ew.copy()
            w[c.changed] = c.new_w
            wm = case.ew_ms.astype(float)
            wm[c.changed] = np.where(c.new_ms >= RK_INF, INF, c.new_ms)
            ok = np.isfinite(w)
            a = csr_matrix((w[ok], (case.ev[ok], case.eu[ok])), shape=(n, n))
            am = csr_matrix((wm[ok], (case.ev[ok], case.eu[ok])), shape=(n, n))
            self.closure.append(dijkstra(a, indices=c.call)[q.units50])
            self.closure_ms.append(dijkstra(am, indices=c.call)[q.units50] / 1000)


def max_abs_diff(got: np.ndarray, want: np.ndarray) -> float:
    """Largest ``|got - want|``; inf where exactly one side is infinite (unreachable)."""
    got = np.asarray(got, dtype=float)
    want = np.asarray(want, dtype=float)
    if got.shape != want.shape:
        return INF
    both_inf = np.isinf(got) & np.isinf(want)
    d = np.abs(np.where(both_inf, 0.0, got) - np.where(both_inf, 0.0, want))
    d = np.nan_to_num(d, nan=INF)
    return float(d.max()) if d.size else 0.0


# --- results ------------------------------------------------------------------------------------


@dataclass
class Row:
    """One (benchmark, library) measurement and its agreement check."""

    bench: str
    lib: str
    times_ms: list[float]
    diff_s: float | None = None  # max abs difference with the reference
    tol_s: float = TOL_FLOAT_S
    ref: str = "float"
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def median_ms(self) -> float:
        """Median of the timings (ms)."""
        return float(np.median(self.times_ms)) if self.times_ms else INF

    @property
    def agree(self) -> bool:
        """Whether the answers are within tolerance (True when nothing was checked)."""
        return self.diff_s is None or self.diff_s <= self.tol_s


def _clock() -> float:
    return time.perf_counter_ns() / 1e6


@contextlib.contextmanager
def quiet_fd1() -> Iterator[None]:
    """Silence writes to file descriptor 1 (pandana prints CH build progress from C++)."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
            try:
                yield
            finally:
                sys.stdout.flush()
                os.dup2(saved, 1)
    finally:
        os.close(saved)


def _sorted_top(d: np.ndarray, k: int = K) -> tuple[np.ndarray, np.ndarray]:
    idx = np.argsort(d, kind="stable")[:k]
    return idx, d[idx]


def _ours_topk_error(res: Sequence[Any], ids: Sequence[str], ref: np.ndarray) -> float:
    """Max error of our top-k answer: each unit's ETA against its reference time, and the sorted
    ETAs against the reference's k smallest finite times (robust to ties)."""
    want = np.sort(ref[np.isfinite(ref)])[:K]
    got = np.array([r.eta_s for r in res], dtype=float)
    if len(got) != len(want):
        return INF
    pos = {uid: j for j, uid in enumerate(ids)}
    own = np.array([ref[pos[r.unit]] for r in res], dtype=float)
    return max(max_abs_diff(got, want), max_abs_diff(got, own))


# --- ours ---------------------------------------------------------------------------------------


def _unit_dicts(case: Case, nodes: np.ndarray) -> list[dict[str, Any]]:
    # turnout 0: the peers answer drive times (a unit without turnout_s takes its class default)
    return [{"id": f"u{j:03d}", "vehicle": VEHICLE, "lat": float(case.lat[v]),
             "lon": float(case.lon[v]), "turnout_s": 0.0} for j, v in enumerate(nodes)]  # fmt: skip


def _point(case: Case, v: int) -> tuple[float, float]:
    return float(case.lat[v]), float(case.lon[v])


#: One timed query of a contender for call ``i``: returns (elapsed ms, max abs diff of its answer).
Probe = Callable[[int], tuple[float, float]]


@dataclass
class Contender:
    """One library's per-call probe for one dispatch benchmark (timed interleaved with the others)."""

    lib: str
    n_calls: int
    probe: Probe
    tol: float = TOL_FLOAT_S
    ref: str = "float"
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    cleanup: Callable[[], None] | None = None


def ours_contenders(case: Case, q: Queries, ref: Reference, bench: str) -> list[Contender]:
    """Our ``fastest_units`` probe for one dispatch benchmark (fleet prepared, first call timed)."""
    net = case.net
    n = len(q.calls)
    if bench == "dispatch_50_moving":
        # a fleet that changes between calls: one unit has moved (same list object, item replaced)
        fleet = _unit_dicts(case, q.moving[0])
        ids = [u["id"] for u in fleet]
        net.fastest_units(_point(case, int(q.calls[0])), fleet, k=K)

        def moving(i: int) -> tuple[float, float]:
            j = i % 50
            v = int(q.moving[i, j])
            fleet[j] = {"id": ids[j], "vehicle": VEHICLE, "turnout_s": 0.0, "lat": float(case.lat[v]),
                        "lon": float(case.lon[v])}  # fmt: skip
            pt = _point(case, int(q.calls[i]))
            t0 = _clock()
            res = net.fastest_units(pt, fleet, k=K)
            dt = _clock() - t0
            return dt, _ours_topk_error(res, ids, ref.moving[i])

        handle = net.fleet(_unit_dicts(case, q.moving[0]))
        net.fastest_units(_point(case, int(q.calls[0])), handle, k=K)

        def moving_handle(i: int) -> tuple[float, float]:
            j = i % 50
            v = int(q.moving[i, j])
            pt = _point(case, int(q.calls[i]))
            t0 = _clock()  # the AVL update is timed with the query (as routingkit's repin is)
            handle.move(ids[j], float(case.lat[v]), float(case.lon[v]))
            res = net.fastest_units(pt, handle, k=K)
            dt = _clock() - t0
            return dt, _ours_topk_error(res, ids, ref.moving[i])

        return [Contender("ours", n, moving, note="one unit moved before each call"),
                Contender("ours_fleet", n, moving_handle,
                          note="Fleet handle: fleet.move(id, lat, lon) + query, both timed")]  # fmt: skip
    nu = 50 if bench == "dispatch_50" else 200
    fleet = _unit_dicts(case, q.units50 if nu == 50 else q.units200)  # the SAME list every call
    ids = [u["id"] for u in fleet]
    t0 = _clock()  # timed apart: snapping of the fleet and any per-fleet state
    net.fastest_units(_point(case, int(q.calls[0])), fleet, k=K)
    first = _clock() - t0

    def static(i: int) -> tuple[float, float]:
        pt = _point(case, int(q.calls[i]))
        t0 = _clock()
        res = net.fastest_units(pt, fleet, k=K)
        dt = _clock() - t0
        return dt, _ours_topk_error(res, ids, ref.dispatch[nu][i])

    handle = net.fleet(fleet)  # what a dispatch system keeps: a prepared Fleet
    net.fastest_units(_point(case, int(q.calls[0])), handle, k=K)

    def static_handle(i: int) -> tuple[float, float]:
        pt = _point(case, int(q.calls[i]))
        t0 = _clock()
        res = net.fastest_units(pt, handle, k=K)
        dt = _clock() - t0
        return dt, _ours_topk_error(res, ids, ref.dispatch[nu][i])

    return [Contender("ours", n, static, extra={"first_call_ms": first},
                      note=f"first call with this fleet {first:.2f} ms (not in the median)"),
            Contender("ours_fleet", n, static_handle, note="net.fleet(units) prepared once")]  # fmt: skip


def bench_ours(case: Case, q: Queries, ref: Reference, sizes: Sizes) -> list[Row]:
    """Our API on the batch, closure and load benchmarks (dispatch: :func:`ours_contenders`)."""
    net = case.net
    rows = []
    up = np.column_stack([case.lat[q.units50], case.lon[q.units50]])
    cp = np.column_stack([case.lat[q.batch_calls], case.lon[q.batch_calls]])
    times, diff = [], 0.0
    net.travel_times(up[:2], cp[:2])  # JIT warm-up
    t0 = _clock()
    tt = net.travel_times(up, cp)  # the first full call may build lazy state: timed apart
    first = _clock() - t0
    diff = max_abs_diff(tt, ref.batch)
    for _ in range(sizes.batch_reps):
        t0 = _clock()
        tt = net.travel_times(up, cp)
        times.append(_clock() - t0)
        diff = max(diff, max_abs_diff(tt, ref.batch))
    rows.append(Row("batch_1000x50", "ours", times, diff, extra={"first_call_ms": first},
                    note=f"first call (lazy preprocessing included) {first:.1f} ms"))  # fmt: skip
    fleet = _unit_dicts(case, q.units50)
    ids = [u["id"] for u in fleet]
    net.fastest_units(_point(case, int(q.calls[0])), fleet, k=K)
    times, diff = [], 0.0
    for i, c in enumerate(q.closures):
        pt = _point(case, c.call)
        arcs = c.arcs.tolist()
        t0 = _clock()
        cid = net.close_arcs(arcs)
        res = net.fastest_units(pt, fleet, k=K)
        times.append(_clock() - t0)
        net.reopen(cid)
        diff = max(diff, _ours_topk_error(res, ids, ref.closure[i]))
    rows.append(Row("closure_100", "ours", times, diff))
    # load: in-process (imports done) and in a fresh interpreter
    times, diff = [], 0.0
    pt = _point(case, int(q.calls[0]))
    for _ in range(sizes.load_reps):
        gc.collect()
        t0 = _clock()
        net2 = dispatch.load_network(case.name)
        res = net2.fastest_units(pt, fleet, k=K)
        times.append(_clock() - t0)
        diff = max(diff, _ours_topk_error(res, ids, ref.dispatch[50][0]))
    del net2
    rows.append(Row("load", "ours", times, diff,
                    note="load_network from cache + first fastest_units, imports done"))  # fmt: skip
    rows.append(fresh_process_load(case, q, ref, sizes))
    return rows


_FRESH = r"""
import json, sys, time
t0 = time.perf_counter()
sys.path.insert(0, sys.argv[1])
import dispatch
t1 = time.perf_counter()
net = dispatch.load_network(sys.argv[2])
t2 = time.perf_counter()
call = tuple(json.loads(sys.argv[3]))
fleet = json.loads(sys.argv[4])
res = net.fastest_units(call, fleet, k=3)
t3 = time.perf_counter()
print(json.dumps({"import_ms": (t1 - t0) * 1e3, "load_ms": (t2 - t1) * 1e3,
                  "first_query_ms": (t3 - t2) * 1e3, "total_ms": (t3 - t0) * 1e3,
                  "etas": [[r.unit, r.eta_s] for r in res]}))
"""


def fresh_process_load(case: Case, q: Queries, ref: Reference, sizes: Sizes) -> Row:
    """A fresh interpreter: ``import dispatch``, ``load_network`` (cache), first ``fastest_units``."""
    fleet = _unit_dicts(case, q.units50)
    ids = [u["id"] for u in fleet]
    call = _point(case, int(q.calls[0]))
    parts: dict[str, list[float]] = {}
    times, diff = [], 0.0
    for _ in range(sizes.fresh_reps):
        out = subprocess.run(
            [sys.executable, "-c", _FRESH, str(ROOT), case.name, json.dumps(call), json.dumps(fleet)],
            capture_output=True, text=True, check=True, env=dict(os.environ), cwd=ROOT,
        )  # fmt: skip
        r = json.loads(out.stdout.strip().splitlines()[-1])
        times.append(r["total_ms"])
        for key in ("import_ms", "load_ms", "first_query_ms"):
            parts.setdefault(key, []).append(r[key])

        class _R:  # the subprocess's answer in UnitETA shape
            def __init__(self, unit: str, eta: float) -> None:
                self.unit, self.eta_s = unit, eta

        res = [_R(u, e) for u, e in r["etas"]]
        diff = max(diff, _ours_topk_error(res, ids, ref.dispatch[50][0]))
    extra = {k: float(np.median(v)) for k, v in parts.items()}
    note = "fresh interpreter: " + ", ".join(f"{k[:-3]} {v:.0f} ms" for k, v in extra.items())
    return Row("load_fresh_process", "ours", times, diff, note=note, extra=extra)


# --- peers --------------------------------------------------------------------------------------


class Peer:
    """A routing library built from the shared arrays; subclasses fill in the queries.

    ``ref`` is ``"float"`` (compared with the float reference) or ``"ms"`` (integer milliseconds,
    compared with the millisecond reference). ``slow`` peers run fewer repetitions.
    """

    name = "peer"
    ref = "float"
    slow = False
    module = ""
    dispatch_only = False  # a variant of another peer: only its dispatch rows are timed

    def __init__(self, case: Case) -> None:
        self.case = case

    def build(self) -> None:
        """Build the library's graph from ``self.case`` arrays."""
        raise NotImplementedError

    def dispatch(self, call: int, units: np.ndarray) -> np.ndarray:
        """Travel time (s) from each unit node to the call node (inf: unreachable)."""
        raise NotImplementedError

    def batch(self, units: np.ndarray, calls: np.ndarray) -> np.ndarray | None:
        """Matrix (len(units), len(calls)) of seconds, or None when not offered."""
        return None

    def close(self, c: Closure) -> None:
        """Apply a closure's weight changes (timed together with the next query)."""
        raise NotImplementedError

    def reopen(self, c: Closure) -> None:
        """Undo :meth:`close` (not timed)."""
        raise NotImplementedError


class ScipyPeer(Peer):
    """scipy.sparse.csgraph.dijkstra from the call on the transposed CSR (the reference method)."""

    name = "scipy"
    module = "scipy"

    def build(self) -> None:
        """Transposed and forward CSR matrices."""
        c = self.case
        n = c.n
        self.rev = csr_matrix((c.ew, (c.ev, c.eu)), shape=(n, n))
        self.fwd = csr_matrix((c.ew, (c.eu, c.ev)), shape=(n, n))

    def dispatch(self, call: int, units: np.ndarray) -> np.ndarray:
        """One reverse Dijkstra from the call."""
        return dijkstra(self.rev, indices=call)[units]

    def batch(self, units: np.ndarray, calls: np.ndarray) -> np.ndarray:
        """One forward Dijkstra per unit."""
        return dijkstra(self.fwd, indices=units)[:, calls]

    def close(self, c: Closure) -> None:
        """Rebuild the transposed CSR without the closed edges."""
        w = self.case.ew.copy()
        w[c.changed] = c.new_w
        ok = np.isfinite(w)
        n = self.case.n
        self.rev = csr_matrix((w[ok], (self.case.ev[ok], self.case.eu[ok])), shape=(n, n))

    def reopen(self, c: Closure) -> None:
        """Back to the open network."""
        self.build()


class NetworkxPeer(Peer):
    """networkx ``single_source_dijkstra_path_length`` on a reversed DiGraph."""

    name = "networkx"
    module = "networkx"
    slow = True

    def build(self) -> None:
        """DiGraph and its reversed copy."""
        import networkx as nx

        c = self.case
        g = nx.DiGraph()
        g.add_nodes_from(range(c.n))
        g.add_weighted_edges_from(zip(c.eu.tolist(), c.ev.tolist(), c.ew.tolist(), strict=True))
        self.g = g
        self.rev = g.reverse(copy=True)

    def dispatch(self, call: int, units: np.ndarray) -> np.ndarray:
        """Reverse SSSP from the call, then gather the units."""
        import networkx as nx

        d = nx.single_source_dijkstra_path_length(self.rev, call, weight="weight")
        return np.array([d.get(u, INF) for u in units.tolist()])

    def batch(self, units: np.ndarray, calls: np.ndarray) -> np.ndarray:
        """One forward SSSP per unit."""
        import networkx as nx

        out = np.empty((len(units), len(calls)))
        cl = calls.tolist()
        for i, u in enumerate(units.tolist()):
            d = nx.single_source_dijkstra_path_length(self.g, u, weight="weight")
            out[i] = [d.get(x, INF) for x in cl]
        return out

    def close(self, c: Closure) -> None:
        """Remove closed edges from the reversed graph, reweight partially closed ones."""
        u, v = self.case.eu[c.changed].tolist(), self.case.ev[c.changed].tolist()
        for a, b, w in zip(u, v, c.new_w.tolist(), strict=True):
            if math.isinf(w):
                self.rev.remove_edge(b, a)
            else:
                self.rev[b][a]["weight"] = w

    def reopen(self, c: Closure) -> None:
        """Restore the original edges."""
        for g in c.changed.tolist():
            a, b = int(self.case.eu[g]), int(self.case.ev[g])
            self.rev.add_edge(b, a, weight=float(self.case.ew[g]))


class OsmnxPeer(Peer):
    """What most osmnx users write: ``osmnx.shortest_path`` from each unit, then sum the path."""

    name = "osmnx_style"
    module = "osmnx"
    slow = True

    def build(self) -> None:
        """An osmnx-style MultiDiGraph keyed by OSM node id with a ``travel_time`` attribute."""
        import networkx as nx

        c = self.case
        g = nx.MultiDiGraph(crs="epsg:4326")
        for i in range(c.n):
            g.add_node(int(c.osmid[i]), y=float(c.lat[i]), x=float(c.lon[i]))
        for a, b, w in zip(c.osmid[c.eu].tolist(), c.osmid[c.ev].tolist(), c.ew.tolist(),
                           strict=True):  # fmt: skip
            g.add_edge(a, b, travel_time=w)
        self.g = g

    def dispatch(self, call: int, units: np.ndarray) -> np.ndarray:
        """One bidirectional Dijkstra per unit (``cpus=1``), path travel times summed."""
        import osmnx as ox

        osm = self.case.osmid
        orig = osm[units].tolist()
        paths = ox.shortest_path(self.g, orig, [int(osm[call])] * len(orig), weight="travel_time",
                                 cpus=1)  # fmt: skip
        out = np.full(len(orig), INF)
        for i, p in enumerate(paths):
            if p is not None:
                out[i] = sum(min(d["travel_time"] for d in self.g[a][b].values())
                             for a, b in zip(p[:-1], p[1:], strict=True))  # fmt: skip
        return out


class IgraphPeer(Peer):
    """igraph ``distances(mode='in')`` from the call to the units."""

    name = "igraph"
    module = "igraph"

    def build(self) -> None:
        """Directed igraph Graph with a ``weight`` edge attribute."""
        import igraph as ig

        c = self.case
        self.g = ig.Graph(n=c.n, edges=np.column_stack([c.eu, c.ev]).tolist(), directed=True)
        self.g.es["weight"] = c.ew.tolist()

    def dispatch(self, call: int, units: np.ndarray) -> np.ndarray:
        """One Dijkstra on incoming edges (igraph needs distinct targets: units are distinct)."""
        return np.array(
            self.g.distances(source=[call], target=units.tolist(), weights="weight", mode="in")[0]
        )

    def batch(self, units: np.ndarray, calls: np.ndarray) -> np.ndarray:
        """One call with distinct targets, re-expanded (igraph rejects duplicate targets)."""
        uniq, inv = np.unique(calls, return_inverse=True)
        d = self.g.distances(source=units.tolist(), target=uniq.tolist(), weights="weight",
                             mode="out")  # fmt: skip
        return np.asarray(d, dtype=float)[:, inv]

    def close(self, c: Closure) -> None:
        """Set the changed edges' weights (``inf`` closes)."""
        self.g.es[c.changed.tolist()]["weight"] = c.new_w.tolist()

    def reopen(self, c: Closure) -> None:
        """Restore the weights."""
        self.g.es[c.changed.tolist()]["weight"] = self.case.ew[c.changed].tolist()


def _rk_seconds(d: list[int | None]) -> np.ndarray:
    a = np.array(d, dtype=float)  # None -> nan
    return np.where(np.isnan(a), INF, a) / 1000


class RoutingkitPeer(Peer):
    """routingkit-cch (customizable contraction hierarchy), integer millisecond weights.

    Dispatch: a new ``CCHManyToOne`` with the units pinned, per call (what the issue's target
    names), then argsort. Query objects are dropped before any customisation (else a Rust panic).
    """

    name = "routingkit_cch"
    module = "routingkit_cch"
    ref = "ms"

    def build(self) -> None:
        """Inertial order, CCH, customised metric."""
        import routingkit_cch as rk

        c = self.case
        tail, head = c.eu.tolist(), c.ev.tolist()
        order = rk.compute_order_inertial(c.n, tail, head, c.lat.tolist(), c.lon.tolist())
        self.cch = rk.CCH(order, tail, head, False)
        self.metric = rk.CCHMetric(self.cch, c.ew_ms.tolist())
        self.rk = rk

    def dispatch(self, call: int, units: np.ndarray) -> np.ndarray:
        """Many-to-one from the pinned units to the call."""
        m2o = self.rk.CCHManyToOne(self.metric, units.tolist())
        return _rk_seconds(m2o.distances_to(call))

    def batch(self, units: np.ndarray, calls: np.ndarray) -> np.ndarray:
        """``CCHOneToMany`` with the 1000 calls pinned, one sweep per unit."""
        o2m = self.rk.CCHOneToMany(self.metric, calls.tolist())
        return np.stack([_rk_seconds(o2m.distances_from(u)) for u in units.tolist()])

    def close(self, c: Closure) -> None:
        """``CCHMetricPartialUpdater`` with closed edges at ``2**31 - 1``."""
        upd = self.rk.CCHMetricPartialUpdater(self.cch)
        upd.apply(self.metric, dict(zip(c.changed.tolist(), c.new_ms.tolist(), strict=True)))

    def reopen(self, c: Closure) -> None:
        """Partial update back to the original weights."""
        upd = self.rk.CCHMetricPartialUpdater(self.cch)
        upd.apply(self.metric, dict(zip(c.changed.tolist(), self.case.ew_ms[c.changed].tolist(),
                                        strict=True)))  # fmt: skip


class PandanaPeer(Peer):
    """pandana contraction hierarchy (``twoway=False``), public ``shortest_path_lengths``.

    pandana multiplies weights by 1000 and truncates to integers: it is given the exact
    millisecond weights (``(ms + 0.5) / 1000`` seconds) and compared with the millisecond reference.
    It has no many-to-one query (one CH query per pair) and no weight update (closure = rebuild).
    """

    name = "pandana"
    module = "pandana"
    ref = "ms"
    slow = True
    UNREACHABLE = 4294967.295

    def build(self) -> None:
        """``pandana.Network`` from the arrays (CH build, KD-tree)."""
        self._build(self.case.ew_ms.astype(float), np.ones(len(self.case.ew), bool))

    def _build(self, w_ms: np.ndarray, ok: np.ndarray) -> None:
        import pandana
        import pandas as pd

        c = self.case
        idx = pd.RangeIndex(c.n)
        with quiet_fd1():
            self.net = pandana.Network(
                pd.Series(c.lon, index=idx), pd.Series(c.lat, index=idx),
                pd.Series(c.eu[ok]), pd.Series(c.ev[ok]),
                pd.DataFrame({"tt": (w_ms[ok] + 0.5) / 1000}), twoway=False,
            )  # fmt: skip

    def _fix(self, d: Any) -> np.ndarray:
        a = np.asarray(d, dtype=float)
        return np.where(a >= self.UNREACHABLE, INF, a)

    def dispatch(self, call: int, units: np.ndarray) -> np.ndarray:
        """``shortest_path_lengths(units, [call] * k)``: one CH query per unit."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return self._fix(self.net.shortest_path_lengths(units, np.full(len(units), call)))

    def batch(self, units: np.ndarray, calls: np.ndarray) -> np.ndarray:
        """50,000 point-to-point CH queries in one call."""
        a = np.repeat(units, len(calls))
        b = np.tile(calls, len(units))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return self._fix(self.net.shortest_path_lengths(a, b)).reshape(len(units), len(calls))

    def close(self, c: Closure) -> None:
        """Full rebuild without the closed edges (pandana cannot update weights)."""
        w = self.case.ew_ms.astype(float)
        w[c.changed] = c.new_ms
        self._build(w, w < RK_INF)

    def reopen(self, c: Closure) -> None:
        """Rebuild the open network."""
        self.build()


class PandanaRawPeer(PandanaPeer):
    """pandana's C++ ``cyaccess.shortest_path_distances`` directly (skips the pandas id mapping)."""

    name = "pandana_raw"
    dispatch_only = True

    def dispatch(self, call: int, units: np.ndarray) -> np.ndarray:
        """Raw CH point-to-point queries, node ids are already 0..n-1."""
        u = units.astype(np.int64)
        return self._fix(
            self.net.net.shortest_path_distances(u, np.full(len(u), call, np.int64), 0)
        )


PEERS: tuple[type[Peer], ...] = (ScipyPeer, NetworkxPeer, IgraphPeer, RoutingkitPeer, PandanaPeer,
                                 PandanaRawPeer, OsmnxPeer)  # fmt: skip


def _available(peer: type[Peer]) -> str | None:
    """None when the peer's library imports, else the reason it is skipped."""
    try:
        __import__(peer.module)
        if peer.module == "pandana":
            __import__("pandas")
    except Exception as exc:  # an ImportError, or a broken binary wheel
        return f"{peer.module} not importable ({type(exc).__name__}: {exc})"
    if peer.module == "pandana" and metadata.version("pandana").split(".")[:2] != ["0", "7"]:
        # 0.7 truncates weights x 1000 to integers, which the harness feeds exactly; 0.8 (the only
        # release for numpy 2) rounds them differently: its answers are off by a few milliseconds
        # from the reference on the same weights, so it would not be an exact peer
        return f"pandana {metadata.version('pandana')}: only 0.7's integer weights are fed exactly"
    return None


def build_peer(cls: type[Peer], case: Case, q: Queries, ref: Reference,
               sizes: Sizes) -> tuple[Peer, list[Row]]:  # fmt: skip
    """Build a peer ``load_reps`` times (build from arrays + first query timed); keep the last."""
    r_dispatch = ref.dispatch_ms if cls.ref == "ms" else ref.dispatch
    reps = 1 if cls is OsmnxPeer or cls.dispatch_only else sizes.load_reps
    times = []
    peer: Peer = cls(case)
    d = np.empty(0)
    for _ in range(reps):
        peer = cls(case)
        gc.collect()
        t0 = _clock()
        peer.build()
        d = peer.dispatch(int(q.calls[0]), q.units50)
        _sorted_top(d)
        times.append(_clock() - t0)
    if cls.dispatch_only:
        return peer, []
    diff = max_abs_diff(d, r_dispatch[50][0])
    tol = TOL_MS_S if cls.ref == "ms" else TOL_FLOAT_S
    return peer, [Row("load", cls.name, times, diff, tol, cls.ref,
                      note="build from arrays + first dispatch query")]  # fmt: skip


def peer_contenders(peer: Peer, q: Queries, ref: Reference, sizes: Sizes,
                    bench: str) -> list[Contender]:  # fmt: skip
    """A peer's per-call probes for one dispatch benchmark (routingkit: also the pinned variant)."""
    cls = type(peer)
    is_ms = cls.ref == "ms"
    tol = TOL_MS_S if is_ms else TOL_FLOAT_S
    if bench == "dispatch_50_moving":
        if cls is OsmnxPeer:
            return []
        want = ref.moving_ms if is_ms else ref.moving

        def units_at(i: int) -> np.ndarray:
            return q.moving[i]
    else:
        nu = 50 if bench == "dispatch_50" else 200
        want = (ref.dispatch_ms if is_ms else ref.dispatch)[nu]
        fixed = q.units50 if nu == 50 else q.units200

        def units_at(i: int) -> np.ndarray:
            return fixed

    if cls is OsmnxPeer:
        n = sizes.osmnx_calls_50 if bench == "dispatch_50" else sizes.osmnx_calls_200
    else:
        n = sizes.slow_calls if cls.slow else sizes.calls
    n = min(n, len(q.calls))

    def probe(i: int) -> tuple[float, float]:
        units = units_at(i)
        call = int(q.calls[i])
        t0 = _clock()
        d = peer.dispatch(call, units)
        _sorted_top(d)
        dt = _clock() - t0
        return dt, max_abs_diff(d, want[i])

    out = [Contender(cls.name, n, probe, tol, cls.ref)]
    if isinstance(peer, RoutingkitPeer) and bench != "dispatch_200":
        out.append(_rk_pinned(peer, q, want, n, bench))
    return out


def _rk_pinned(peer: RoutingkitPeer, q: Queries, want: np.ndarray, n: int,
               bench: str) -> Contender:  # fmt: skip
    """routingkit-cch keeping ONE ``CCHManyToOne``: pinned once (static fleet), or
    ``repin_sources`` before each call (moving fleet)."""
    moving = bench == "dispatch_50_moving"
    state = {
        "m2o": peer.rk.CCHManyToOne(peer.metric, (q.moving[0] if moving else q.units50).tolist())
    }

    def probe(i: int) -> tuple[float, float]:
        m2o = state["m2o"]
        call = int(q.calls[i])
        units = q.moving[i].tolist() if moving else None
        t0 = _clock()
        if units is not None:
            m2o.repin_sources(units)
        d = _rk_seconds(m2o.distances_to(call))
        _sorted_top(d)
        dt = _clock() - t0
        return dt, max_abs_diff(d, want[i])

    def cleanup() -> None:
        state.clear()  # a live query object would make the next customisation panic

    note = "repin_sources + query" if moving else "one CCHManyToOne reused (fleet pinned)"
    return Contender("routingkit_cch_pinned", n, probe, TOL_MS_S, "ms", note=note, cleanup=cleanup)


#: Calls per block in :func:`run_interleaved`: long enough for warm caches, short enough that a
#: burst of machine noise hits every library alike.
BLOCK = 10


def run_interleaved(bench: str, contenders: list[Contender],
                    failed: dict[str, str]) -> list[Row]:  # fmt: skip
    """Time the contenders in blocks of :data:`BLOCK` calls: calls 0-9 for every library (in a
    rotating order), then calls 10-19, ... A contender that raises is dropped and reported."""
    times: dict[str, list[float]] = {c.lib: [] for c in contenders}
    diffs: dict[str, float] = {c.lib: 0.0 for c in contenders}
    n_max = max((c.n_calls for c in contenders), default=0)
    for b, lo in enumerate(range(0, n_max, BLOCK)):
        k = b % len(contenders)
        for c in contenders[k:] + contenders[:k]:
            for i in range(lo, min(lo + BLOCK, c.n_calls)):
                if c.lib in failed:
                    break
                try:
                    dt, d = c.probe(i)
                except (KeyboardInterrupt, SystemExit):
                    raise
                except BaseException as exc:  # a peer's panic must not stop the run
                    failed[c.lib] = f"failed in {bench}: {type(exc).__name__}: {exc}"
                    break
                times[c.lib].append(dt)
                diffs[c.lib] = max(diffs[c.lib], d)
    rows = []
    for c in contenders:
        if c.cleanup is not None:
            c.cleanup()
        if c.lib in failed or not times[c.lib]:
            continue
        rows.append(Row(bench, c.lib, times[c.lib], diffs[c.lib], c.tol, c.ref, c.note, c.extra))
    return rows


def bench_peer_rest(peer: Peer, q: Queries, ref: Reference, sizes: Sizes) -> list[Row]:
    """A peer's batch and closure benchmarks (not the osmnx approach, not variants)."""
    cls = type(peer)
    if cls.dispatch_only or cls is OsmnxPeer:
        return []
    rows: list[Row] = []
    is_ms = cls.ref == "ms"
    tol = TOL_MS_S if is_ms else TOL_FLOAT_S
    r_batch = ref.batch_ms if is_ms else ref.batch
    r_closure = ref.closure_ms if is_ms else ref.closure
    times, diff = [], 0.0
    m = None
    for _ in range(sizes.slow_batch_reps if cls.slow else sizes.batch_reps):
        t0 = _clock()
        m = peer.batch(q.units50, q.batch_calls)
        times.append(_clock() - t0)
        if m is None:
            break
        diff = max(diff, max_abs_diff(m, r_batch))
    if m is not None:
        rows.append(Row("batch_1000x50", cls.name, times, diff, tol, cls.ref))
    n_cl = sizes.rebuild_closures if cls.slow else len(q.closures)
    times, diff = [], 0.0
    for i, c in enumerate(q.closures[:n_cl]):
        t0 = _clock()
        peer.close(c)
        d = peer.dispatch(c.call, q.units50)
        _sorted_top(d)
        times.append(_clock() - t0)
        peer.reopen(c)
        diff = max(diff, max_abs_diff(d, r_closure[i]))
    rows.append(Row("closure_100", cls.name, times, diff, tol, cls.ref))
    return rows


# --- report -------------------------------------------------------------------------------------


def _fmt_ms(x: float) -> str:
    if not math.isfinite(x):
        return "–"
    if x >= 100:
        return f"{x:,.0f}"
    if x >= 1:
        return f"{x:.3g}" if x < 10 else f"{x:.1f}"
    return f"{x:.3g}"


def _fmt_ratio(x: float) -> str:
    if not math.isfinite(x):
        return "–"
    return f"{x:,.0f}" if x >= 100 else f"{x:.3g}"


def table(map_result: dict[str, Any]) -> str:
    """Markdown table of medians (ms) with ratio peer / ours for one map."""
    rows = map_result["rows"]
    order = ["ours", "ours_fleet", "scipy", "networkx", "igraph", "routingkit_cch", "routingkit_cch_pinned",
             "pandana", "pandana_raw", "osmnx_style"]  # fmt: skip
    libs = sorted({r["lib"] for r in rows}, key=lambda x: (order.index(x) if x in order else 99, x))
    cell = {(r["bench"], r["lib"]): r for r in rows}
    head = "| library | " + " | ".join(f"{b} ms | ×" for b in BENCHES) + " | max abs diff (s) |"
    out = [head, "|---|" + "---:|---:|" * len(BENCHES) + "---:|"]
    for lib in libs:
        cells = []
        worst = 0.0
        for b in BENCHES:
            r = cell.get((b, lib))
            if r is None:
                cells += ["–", "–"]
                continue
            worst = max(worst, r["max_abs_diff_s"] if r["max_abs_diff_s"] is not None else 0.0)
            mark = "" if r["agree"] else " ✗"
            cells += [_fmt_ms(r["median_ms"]) + mark,
                      "1" if lib == "ours" else _fmt_ratio(r.get("ratio", INF))]  # fmt: skip
        out.append(f"| {lib} | " + " | ".join(cells) + f" | {worst:.3g} |")
    fresh = cell.get(("load_fresh_process", "ours"))
    if fresh is not None:
        out.append("")
        out.append(f"ours, fresh process to first answer: {_fmt_ms(fresh['median_ms'])} ms "
                   f"({fresh['note']})")  # fmt: skip
    firsts = [(b, cell[(b, "ours")]["first_call_ms"]) for b in ("dispatch_50", "dispatch_200")
              if (b, "ours") in cell and "first_call_ms" in cell[(b, "ours")]]  # fmt: skip
    if firsts:
        out.append("")
        out.append("ours, first `fastest_units` call with a new fleet (warm kernels; fleet snapping "
                   "and per-fleet state included, not in the medians): "
                   + ", ".join(f"{b} {_fmt_ms(x)} ms" for b, x in firsts))  # fmt: skip
    batch = cell.get(("batch_1000x50", "ours"))
    if batch is not None and "first_call_ms" in batch:
        out.append("")
        out.append(f"ours, first `travel_times` 1000x50 call on a loaded network (lazy "
                   f"preprocessing included): {_fmt_ms(batch['first_call_ms'])} ms")  # fmt: skip
    return "\n".join(out)


def checks_table(map_result: dict[str, Any]) -> str:
    """One line per (benchmark, library): n, median, max abs diff, tolerance, verdict."""
    out = [f"{'bench':<20} {'library':<22} {'n':>4} {'median ms':>11} {'max abs diff s':>15} "
           f"{'tol s':>7} {'ref':>5}  ok"]  # fmt: skip
    for r in map_result["rows"]:
        d = r["max_abs_diff_s"]
        out.append(f"{r['bench']:<20} {r['lib']:<22} {r['n']:>4} {_fmt_ms(r['median_ms']):>11} "
                   f"{'–' if d is None else f'{d:.3g}':>15} {r['tol_s']:>7.0e} {r['ref']:>5}  "
                   f"{'yes' if r['agree'] else 'NO'}")  # fmt: skip
    return "\n".join(out)


_IMPORTS = {"dispatch": "dispatch", "scipy": "scipy.sparse.csgraph", "networkx": "networkx",
            "igraph": "igraph", "routingkit_cch": "routingkit_cch", "pandana": "pandana",
            "osmnx": "osmnx"}  # fmt: skip


def import_times(reps: int) -> dict[str, float | None]:
    """Median wall time (ms) of importing each library in a fresh interpreter (None: not installed)."""
    code = "import sys, time; sys.path.insert(0, sys.argv[1]); t = time.perf_counter(); "
    code += "__import__(sys.argv[2]); print((time.perf_counter() - t) * 1e3)"
    out: dict[str, float | None] = {}
    for name, module in _IMPORTS.items():
        times = []
        for _ in range(reps):
            r = subprocess.run([sys.executable, "-c", code, str(ROOT), module], capture_output=True,
                               text=True, check=False, env=dict(os.environ), cwd=ROOT)  # fmt: skip
            if r.returncode != 0:
                break
            times.append(float(r.stdout.strip().splitlines()[-1]))
        out[name] = float(np.median(times)) if times else None
    return out


def report(data: dict[str, Any]) -> str:
    """Markdown summary of a JSON result: run facts, then one table per map."""
    git = data.get("git", {})
    lines = [
        f"Run {data['started_utc']}, {data['machine']['cpus']} CPUs "
        f"({data['machine']['cpu_model']}), threads 1, seed {data['seed']}, "
        f"{'quick' if data['quick'] else 'full'} mode; commit {git.get('commit', '?')[:7]}"
        f"{' + uncommitted dispatch/ changes' if git.get('dispatch_dirty') else ''}; "
        f"all answers agree with the reference: {data['all_agree']}.",
        "",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in data["versions"].items()) + ".",
    ]
    if data.get("import_ms"):
        lines += ["", "Import time in a fresh interpreter (ms): " + ", ".join(
            f"{k} {_fmt_ms(v) if isinstance(v, float | int) else 'not installed'}"
            for k, v in data["import_ms"].items()) + "."]  # fmt: skip
    for res in data["maps"]:
        lines += ["", f"#### {res['map']}: ambulance graph {res['peer_nodes']:,} nodes, "
                      f"{res['peer_edges']:,} edges (our network: {res['our_nodes']:,} nodes, "
                      f"{res['our_arcs']:,} arcs)", "", table(res)]  # fmt: skip
        if res["skipped"]:
            lines += ["", "Skipped: " + "; ".join(f"{k}: {v}" for k, v in res["skipped"].items())]
    return "\n".join(lines)


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in ("numpy", "scipy", "numba", "networkx", "osmnx", "igraph", "routingkit-cch",
                 "pandana", "pandas"):  # fmt: skip
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def _git_state() -> dict[str, Any]:
    """Commit of the checkout and whether ``dispatch/`` has uncommitted changes (measured code)."""

    def git(*a: str) -> str:
        r = subprocess.run(["git", *a], capture_output=True, text=True, cwd=ROOT, check=False)
        return r.stdout.strip() if r.returncode == 0 else ""

    return {"commit": git("rev-parse", "HEAD"),
            "dispatch_dirty": bool(git("status", "--porcelain", "--", "dispatch"))}  # fmt: skip


def _machine() -> dict[str, Any]:
    model = platform.processor() or ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {"cpus": os.cpu_count(), "cpu_model": model, "platform": platform.platform()}


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically (temporary file in the same folder, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)  # mkstemp makes 0600; a result file is for everyone to read
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=1, allow_nan=False, default=str)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _json_num(x: float | None) -> float | str | None:
    if x is None:
        return None
    return x if math.isfinite(x) else ("inf" if x > 0 else "-inf")


def run_map(map_name: str, sizes: Sizes, seed: int, peers: Sequence[type[Peer]],
            log: Callable[[str], None]) -> dict[str, Any]:  # fmt: skip
    """Every benchmark on one map; returns its JSON-ready result."""
    t_map = time.perf_counter()
    case = prepare(map_name)
    q = make_queries(case, sizes, seed)
    ref = Reference(case, q)
    log(f"== {map_name}: {case.net.n_nodes} nodes / {case.net.n_arcs} arcs in our network; "
        f"ambulance arrays: {case.n} nodes, {len(case.raw_u)} arcs -> {len(case.ew)} simple edges; "
        f"query pool {len(case.scc)} nodes")  # fmt: skip
    skipped: dict[str, str] = {}

    def guarded(name: str, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # a peer that breaks (even a Rust panic)
            skipped[name] = f"failed: {type(exc).__name__}: {exc}"
            log(f"   skip {name}: {skipped[name]}")
            return None

    # build every peer (the load benchmark), JIT warm-up of ours
    t0 = time.perf_counter()
    rows: list[Row] = []
    built: list[Peer] = []
    for cls in peers:
        why = _available(cls)
        if why is not None:
            skipped[cls.name] = why
            log(f"   skip {cls.name}: {why}")
            continue
        got = guarded(cls.name, partial(build_peer, cls, case, q, ref, sizes))
        if got is not None:
            built.append(got[0])
            rows += got[1]
    case.net.fastest_units(_point(case, int(q.calls[0])), _unit_dicts(case, q.units200[-3:]), k=K)
    log(f"   peers built: {time.perf_counter() - t0:.1f} s")
    # per-call dispatch benchmarks, every library interleaved call by call
    for bench in ("dispatch_50", "dispatch_200", "dispatch_50_moving"):
        t0 = time.perf_counter()
        contenders = ours_contenders(case, q, ref, bench)
        for peer in built:
            if peer.name not in skipped:
                more = guarded(peer.name, partial(peer_contenders, peer, q, ref, sizes, bench))
                contenders += more or []
        rows += run_interleaved(bench, contenders, skipped)
        log(f"   {bench}: {time.perf_counter() - t0:.1f} s")
    # batch, closure, load: one library after the other
    t0 = time.perf_counter()
    rows += bench_ours(case, q, ref, sizes)
    log(f"   ours batch/closure/load: {time.perf_counter() - t0:.1f} s")
    for peer in built:
        if peer.name in skipped:
            continue
        t0 = time.perf_counter()
        rows += guarded(peer.name, partial(bench_peer_rest, peer, q, ref, sizes)) or []
        log(f"   {peer.name} batch/closure: {time.perf_counter() - t0:.1f} s")
    failed = {k for k, v in skipped.items() if v.startswith("failed")}
    rows = [r for r in rows if r.lib not in failed and r.lib.replace("_pinned", "") not in failed]
    ours = {r.bench: r.median_ms for r in rows if r.lib == "ours"}
    out_rows = []
    for r in rows:
        d: dict[str, Any] = {
            "bench": r.bench, "lib": r.lib, "n": len(r.times_ms), "median_ms": r.median_ms,
            "min_ms": float(np.min(r.times_ms)), "max_abs_diff_s": r.diff_s, "tol_s": r.tol_s,
            "ref": r.ref, "agree": r.agree, "note": r.note, **r.extra,
        }  # fmt: skip
        if r.lib != "ours" and r.bench in ours:
            d["ratio"] = r.median_ms / ours[r.bench]
        out_rows.append(d)
    return {
        "map": map_name,
        "our_nodes": case.net.n_nodes,
        "our_arcs": case.net.n_arcs,
        "peer_nodes": case.n,
        "peer_raw_arcs": len(case.raw_u),
        "peer_edges": len(case.ew),
        "query_pool": len(case.scc),
        "seconds": round(time.perf_counter() - t_map, 2),
        "skipped": skipped,
        "rows": out_rows,
    }


def _sanitize(obj: Any) -> Any:
    if isinstance(obj, float):
        return _json_num(obj)
    if isinstance(obj, dict):
        return {k: _sanitize(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_sanitize(v) for v in obj]
    return obj


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns 0 when every answer agrees with the reference, else 1."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--maps", nargs="+", default=list(DEFAULT_MAPS), help="short map names")
    p.add_argument("--quick", action="store_true", help="few repetitions (a smoke run, seconds)")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "routing.json",
                   help="JSON result file (written atomically)")  # fmt: skip
    p.add_argument("--seed", type=int, default=12345)
    p.add_argument("--peers", nargs="+", default=None,
                   help=f"subset of peers (default: all installed): {[c.name for c in PEERS]}")  # fmt: skip
    p.add_argument("--report", type=Path, default=None, metavar="JSON",
                   help="only print the markdown tables of an earlier run's JSON file")  # fmt: skip
    args = p.parse_args(argv)
    if args.report is not None:
        print(report(json.loads(args.report.read_text(encoding="utf-8"))))
        return 0
    peers = PEERS if args.peers is None else tuple(c for c in PEERS if c.name in args.peers)
    sizes = QUICK if args.quick else FULL

    def log(msg: str) -> None:
        print(msg, flush=True)

    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    git_state = _git_state()  # the code measured: taken before the run
    results = []
    for m in args.maps:
        res = run_map(m, sizes, args.seed, peers, log)
        results.append(res)
        log("")
        log(f"### {m} (medians in ms; × = peer / ours, above 1 means ours is faster)")
        log("")
        log(table(res))
        log("")
        log(checks_table(res))
        log("")
    imports = {} if args.quick else import_times(sizes.fresh_reps)
    if imports:
        shown = (
            f"{k} {_fmt_ms(v) if v is not None else 'not installed'}" for k, v in imports.items()
        )
        log("import time in a fresh interpreter (ms): " + ", ".join(shown))
    bad = [(r["map"], row["bench"], row["lib"], row["max_abs_diff_s"])
           for r in results for row in r["rows"] if not row["agree"]]  # fmt: skip
    data = {
        "started_utc": started,
        "command": " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]) if argv is None else "",
        "quick": args.quick,
        "seed": args.seed,
        "vehicle": VEHICLE,
        "k": K,
        "threads": 1,
        "machine": _machine(),
        "git": git_state,
        "versions": _versions(),
        "import_ms": imports,
        "all_agree": not bad,
        "maps": results,
    }
    write_json(args.out, _sanitize(data))
    log(f"wrote {args.out}")
    if bad:
        for m, b, lib, d in bad:
            log(f"DISAGREEMENT: {m} {b} {lib}: max abs diff {d} s beyond tolerance")
        raise AssertionError(f"{len(bad)} benchmark(s) disagree with the reference: {bad[:5]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
