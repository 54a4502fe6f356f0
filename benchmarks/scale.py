"""Scale benchmark: compile, preprocess and query synthetic cities of 10k to 320k intersections.

Run from the repository root::

    python benchmarks/scale.py [--sizes 10000 80000 320000] [--seed 1]
                               [--out benchmarks/results/scale.json]

For each size a seeded synthetic city (:mod:`synth_city`, OSM PBF) is generated once into
``benchmarks/.cache/`` and measured in fresh processes, so that each peak RSS is that process's own:

``compile``
    ``dispatch.load_network(path, rebuild=True)``: OSM -> arrays -> cache file (peak RSS of that process).
``ours``
    a new process: load the network from the cache (its cached CCH hierarchy deleted first), the
    first ``travel_times`` 50 x 1000 (CCH ordering, build and customization included: the
    preprocessing; the hierarchy is then saved beside the network), the same matrix again,
    ``fastest_units`` (k=3 of 50) first and repeated, with one unit moving before each call, and
    close 100 arcs then answer; peak RSS of the whole process.
``preprocess``
    a new process: load from the cache, load our numba kernels by preprocessing a small real map
    (``hcmc``; routingkit's code is loaded by its import), then time
    :func:`dispatch.routing.cch.build_hierarchy` (order and contraction) and
    :func:`dispatch.routing.cch.customize` on the city: the same steps as routingkit's column,
    wall-clock and CPU; RSS added.
``restart``
    a new process, as a restarted service or a simulation worker starts: load the network and its
    CCH hierarchy from the cache (``load_network`` + ``net.engine.hierarchy()``, no ordering), then
    the first ``travel_times`` 50 x 1000 (customization included) and the first ``fastest_units``;
    the on-disk size of both cache files; peak RSS. Seconds from the process start too (imports).
``routingkit``
    a new process: routingkit-cch (inertial-flow order + build + customize) on the SAME arcs (the
    ambulance edge table, parallel arcs merged to their minimum, integer milliseconds), then
    ``CCHOneToMany`` 50 x 1000; RSS added by the preprocessing.

Preprocessing is timed in wall-clock seconds (the ratio) and in CPU seconds of the process
(``time.process_time``): on a shared machine the CPU figures are the steadier comparison.

Answers are checked: our matrix and routingkit's against scipy Dijkstra from 5 of the 50 units on the
same arcs (tolerance 1e-6 s for ours, 1 ms per edge for routingkit's integer weights). Units and calls
are placed on nodes of the ambulance graph's largest strongly connected part (seeded).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS",
             "RAYON_NUM_THREADS"):  # fmt: skip
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent
for p in (str(ROOT), str(HERE)):
    if p not in sys.path:
        sys.path.insert(0, p)

VEHICLE = "ambulance"
N_UNITS, N_CALLS, N_CHECK = 50, 1000, 5
CACHE = HERE / ".cache"


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def city_path(size: int, seed: int) -> Path:
    """Generate (once) and return the synthetic city of ``size`` intersections."""
    from synth_city import generate

    path = CACHE / f"city_{size}_s{seed}.osm.pbf"
    if not path.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.pbf")
        generate(tmp, intersections=size, seed=seed)
        os.replace(tmp, path)
    return path


# --- child processes ------------------------------------------------------------------------------


def child_compile(path: Path, cache_dir: Path) -> dict[str, Any]:
    import dispatch

    t0 = time.perf_counter()
    net = dispatch.load_network(path, cache_dir=cache_dir, rebuild=True)
    return {"compile_s": time.perf_counter() - t0, "nodes": int(len(net.node_lat)),
            "arcs": int(len(net.arc_tail)), "peak_rss_mb": _peak_rss_mb()}  # fmt: skip


def _points(net: Any, seed: int, edges_out: Path) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Unit and call node indices (into the exported node list) and the exported edges."""
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import connected_components

    et = net.edge_table(VEHICLE)
    osmid, inv = np.unique(np.concatenate([et["u"], et["v"]]), return_inverse=True)
    m = len(et["u"])
    u, v = inv[:m].astype(np.int64), inv[m:].astype(np.int64)
    w = np.asarray(et["travel_time_s"], dtype=np.float64)
    n = len(osmid)
    g = csr_matrix((np.ones(m), (u, v)), shape=(n, n))
    _, labels = connected_components(g, directed=True, connection="strong")
    scc = np.flatnonzero(labels == np.bincount(labels).argmax())
    rng = np.random.default_rng(seed)
    picks = rng.choice(scc, N_UNITS + N_CALLS + N_UNITS, replace=False)
    pos = np.searchsorted(net.node_osmid, osmid)
    lat, lon = net.node_lat[pos], net.node_lon[pos]
    np.savez(edges_out, u=u, v=v, w=w, lat=lat, lon=lon, picks=picks)
    return lat[picks], lon[picks], {"n": n, "m": m}


def _hierarchy_file(net: Any) -> Path:
    store = net.engine.hierarchy_store
    assert store is not None, "the network was not loaded from a writable cache"
    return Path(store.path)


def child_ours(path: Path, cache_dir: Path, seed: int, edges_out: Path) -> dict[str, Any]:
    import dispatch

    out: dict[str, Any] = {}
    t0 = time.perf_counter()
    # the CCH from the first matrix (no wait for a hierarchy that is not cached: it is deleted)
    net = dispatch.load_network(path, cache_dir=cache_dir,
                                policy=dispatch.EnginePolicy(hierarchy_after_searches=0))  # fmt: skip
    out["load_s"] = time.perf_counter() - t0
    _hierarchy_file(net).unlink(missing_ok=True)
    out["rss_after_load_mb"] = _rss_mb()
    plat, plon, dims = _points(net, seed, edges_out)
    units = list(zip(plat[:N_UNITS], plon[:N_UNITS], strict=True))
    calls = list(zip(plat[N_UNITS : N_UNITS + N_CALLS], plon[N_UNITS : N_UNITS + N_CALLS],
                     strict=True))  # fmt: skip
    t0, c0 = time.perf_counter(), time.process_time()
    tt = net.travel_times(units, calls, vehicle=VEHICLE)
    out["first_matrix_s"] = time.perf_counter() - t0
    out["first_matrix_cpu_s"] = time.process_time() - c0
    out["rss_after_first_matrix_mb"] = _rss_mb()
    t0 = time.perf_counter()
    tt2 = net.travel_times(units, calls, vehicle=VEHICLE)
    out["matrix_s"] = time.perf_counter() - t0
    assert np.array_equal(tt, tt2)
    np.save(edges_out.with_suffix(".ours.npy"), tt)
    fleet = [{"id": f"U{i:02d}", "vehicle": VEHICLE, "lat": float(a), "lon": float(b)}
             for i, (a, b) in enumerate(units)]  # fmt: skip
    t0 = time.perf_counter()
    net.fastest_units(calls[0], fleet, k=3)
    out["first_fastest_ms"] = (time.perf_counter() - t0) * 1e3
    times = []
    for c in calls[1:201]:
        t0 = time.perf_counter()
        net.fastest_units(c, fleet, k=3)
        times.append(time.perf_counter() - t0)
    out["fastest_ms"] = float(np.median(times)) * 1e3
    moves = list(zip(plat[N_UNITS + N_CALLS :], plon[N_UNITS + N_CALLS :], strict=True))
    times = []
    for i, c in enumerate(calls[201:301]):
        j = i % N_UNITS
        fleet[j] = {**fleet[j], "lat": float(moves[j][0]), "lon": float(moves[j][1])}
        t0 = time.perf_counter()
        net.fastest_units(c, fleet, k=3)
        times.append(time.perf_counter() - t0)
    out["fastest_moving_ms"] = float(np.median(times)) * 1e3
    rng = np.random.default_rng(seed + 1)
    arcs = rng.choice(len(net.arc_tail), 100, replace=False)
    t0 = time.perf_counter()
    cid = net.close_arcs(arcs)
    net.fastest_units(calls[400], fleet, k=3)
    out["close100_then_answer_ms"] = (time.perf_counter() - t0) * 1e3
    net.reopen(cid)
    out["peak_rss_mb"] = _peak_rss_mb()
    out.update(dims)
    return out


def child_preprocess(path: Path, cache_dir: Path) -> dict[str, Any]:
    import dispatch
    from dispatch.routing import cch

    net = dispatch.load_network(path, cache_dir=cache_dir)
    small = dispatch.load_network("hcmc")
    hs = cch.build_hierarchy(small.arc_tail, small.arc_head, small.node_lat, small.node_lon)
    cch.customize(hs, small.weights(VEHICLE))  # numba kernels loaded from their cache
    w = net.weights(VEHICLE)
    rss0 = _rss_mb()
    t0, c0 = time.perf_counter(), time.process_time()
    h = cch.build_hierarchy(net.arc_tail, net.arc_head, net.node_lat, net.node_lon)
    t1, c1 = time.perf_counter(), time.process_time()
    cch.customize(h, w)
    t2, c2 = time.perf_counter(), time.process_time()
    return {"order_build_s": t1 - t0, "order_build_cpu_s": c1 - c0,
            "customize_s": t2 - t1, "customize_cpu_s": c2 - c1, "preprocess_s": t2 - t0,
            "preprocess_cpu_s": c2 - c0, "up_edges": h.n_edges,
            "triangles": int(np.sum(np.diff(h.up_ptr) * (np.diff(h.up_ptr) - 1) // 2)),
            "extra_rss_mb": _rss_mb() - rss0, "peak_rss_mb": _peak_rss_mb()}  # fmt: skip


def child_restart(
    path: Path, cache_dir: Path, seed: int, edges: Path, started: float
) -> dict[str, Any]:
    """A new process with the network and its hierarchy cached: load both, first answers."""
    import dispatch

    out: dict[str, Any] = {"imports_s": time.time() - started}
    t0, c0 = time.perf_counter(), time.process_time()
    net = dispatch.load_network(path, cache_dir=cache_dir)
    t1 = time.perf_counter()
    hfile = _hierarchy_file(net)
    assert hfile.is_file(), "no cached hierarchy: run the 'ours' child first"
    h = net.engine.hierarchy()
    t2, c2 = time.perf_counter(), time.process_time()
    out.update({"load_network_s": t1 - t0, "load_hierarchy_s": t2 - t1, "load_s": t2 - t0,
                "load_cpu_s": c2 - c0, "up_edges": h.n_edges,
                "network_file_mb": Path(net.engine.hierarchy_store.network_cache).stat().st_size / 2**20,
                "hierarchy_file_mb": hfile.stat().st_size / 2**20,
                "rss_after_load_mb": _rss_mb()})  # fmt: skip
    z = np.load(edges)
    picks = z["picks"]
    lat, lon = z["lat"][picks], z["lon"][picks]
    units = list(zip(lat[:N_UNITS], lon[:N_UNITS], strict=True))
    calls = list(zip(lat[N_UNITS : N_UNITS + N_CALLS], lon[N_UNITS : N_UNITS + N_CALLS],
                     strict=True))  # fmt: skip
    t3, c3 = time.perf_counter(), time.process_time()
    tt = net.travel_times(units, calls, vehicle=VEHICLE)
    t4, c4 = time.perf_counter(), time.process_time()
    out["first_matrix_s"] = t4 - t3
    out["first_matrix_cpu_s"] = c4 - c3
    out["first_matrix_from_start_s"] = time.time() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    out["first_matrix_from_start_cpu_s"] = usage.ru_utime + usage.ru_stime
    assert np.array_equal(tt, np.load(edges.with_suffix(".ours.npy"))), "another answer"
    fleet = [{"id": f"U{i:02d}", "vehicle": VEHICLE, "lat": float(a), "lon": float(b)}
             for i, (a, b) in enumerate(units)]  # fmt: skip
    t5 = time.perf_counter()
    net.fastest_units(calls[0], fleet, k=3)
    out["first_fastest_ms"] = (time.perf_counter() - t5) * 1e3
    out["peak_rss_mb"] = _peak_rss_mb()
    return out


def child_routingkit(edges: Path) -> dict[str, Any]:
    import routingkit_cch as rk

    z = np.load(edges)
    u, v, w = z["u"], z["v"], z["w"]
    ok = u != v
    order = np.lexsort((w, v, u))
    order = order[ok[order]]
    first = np.ones(len(order), bool)
    first[1:] = (u[order][1:] != u[order][:-1]) | (v[order][1:] != v[order][:-1])
    keep = order[first]
    eu, ev = u[keep].tolist(), v[keep].tolist()
    ew_ms = np.rint(w[keep] * 1000).astype(np.int64).tolist()
    n = len(z["lat"])
    picks = z["picks"]
    rss0 = _rss_mb()
    c0 = time.process_time()
    t0 = time.perf_counter()
    ordr = rk.compute_order_inertial(n, eu, ev, z["lat"].tolist(), z["lon"].tolist())
    t1 = time.perf_counter()
    cch = rk.CCH(ordr, eu, ev, False)
    t2 = time.perf_counter()
    metric = rk.CCHMetric(cch, ew_ms)
    t3 = time.perf_counter()
    cpu = time.process_time() - c0
    rss1 = _rss_mb()
    units, calls = picks[:N_UNITS].tolist(), picks[N_UNITS : N_UNITS + N_CALLS].tolist()
    t4 = time.perf_counter()
    o2m = rk.CCHOneToMany(metric, calls)
    mat = np.array([[np.inf if d is None else d / 1000 for d in o2m.distances_from(x)]
                    for x in units])  # fmt: skip
    t5 = time.perf_counter()
    np.save(edges.with_suffix(".rk.npy"), mat)
    return {"order_s": t1 - t0, "build_s": t2 - t1, "customize_s": t3 - t2,
            "preprocess_s": t3 - t0, "preprocess_cpu_s": cpu, "matrix_s": t5 - t4, "extra_rss_mb": rss1 - rss0,
            "peak_rss_mb": _peak_rss_mb()}  # fmt: skip


def check(edges: Path) -> dict[str, float]:
    """Max abs difference of ours and routingkit's matrices vs scipy Dijkstra (5 units)."""
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import dijkstra

    z = np.load(edges)
    u, v, w = z["u"], z["v"], z["w"]
    n = len(z["lat"])
    order = np.lexsort((w, v, u))
    first = np.ones(len(order), bool)
    first[1:] = (u[order][1:] != u[order][:-1]) | (v[order][1:] != v[order][:-1])
    keep = order[first]
    g = csr_matrix((w[keep], (u[keep], v[keep])), shape=(n, n))
    picks = z["picks"]
    units, calls = picks[:N_CHECK], picks[N_UNITS : N_UNITS + N_CALLS]
    ref = dijkstra(g, directed=True, indices=units)[:, calls]
    out = {
        "ours_max_abs_s": float(
            np.max(np.abs(np.load(edges.with_suffix(".ours.npy"))[:N_CHECK] - ref))
        )
    }
    rk_path = edges.with_suffix(".rk.npy")
    if rk_path.exists():
        out["routingkit_max_abs_s"] = float(np.max(np.abs(np.load(rk_path)[:N_CHECK] - ref)))
    return out


# --- driver ---------------------------------------------------------------------------------------


def _run_child(*args: str) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True,
                          text=True, check=False)  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(f"child {args[0]} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_size(size: int, seed: int, with_rk: bool, with_pre: bool = True) -> dict[str, Any]:
    path = city_path(size, seed)
    cache_dir = CACHE / f"net_{size}_s{seed}"
    edges = CACHE / f"edges_{size}_s{seed}.npz"
    res: dict[str, Any] = {"size": size, "pbf_mb": path.stat().st_size / 2**20}
    res["compile"] = _run_child("compile", str(path), str(cache_dir))
    res["ours"] = _run_child("ours", str(path), str(cache_dir), str(seed), str(edges))
    if with_pre:
        res["preprocess"] = _run_child("preprocess", str(path), str(cache_dir))
    res["restart"] = _run_child("restart", str(path), str(cache_dir), str(seed), str(edges),
                                repr(time.time()))  # fmt: skip
    if with_rk:
        try:
            res["routingkit"] = _run_child("routingkit", str(edges))
        except RuntimeError as exc:
            res["routingkit"] = {"error": str(exc).splitlines()[-1]}
    res["check"] = check(edges)
    return res


def table(results: list[dict[str, Any]]) -> str:
    rows = ["| nodes / arcs | compile s (peak MB) | load s | first matrix s (CPU s) | matrix s | "
            "k=3 of 50 ms (moving) | close 100 + answer ms | peak RSS MB | "
            "ours order+build+customize s (CPU s) | routingkit order+build+customize s (CPU s) | "
            "ratio rk/ours (CPU) | ours / rk extra MB | rk matrix s | "
            "restart: load network + hierarchy s (CPU s) | cache files MB (network + hierarchy) | "
            "restart: first matrix s / CPU s (from process start) | restart peak RSS MB |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    nan = float("nan")
    for r in results:
        c, o, k = r["compile"], r["ours"], r.get("routingkit", {})
        p = r.get("preprocess", {"preprocess_s": nan, "preprocess_cpu_s": nan, "extra_rss_mb": nan})
        rs = r["restart"]
        rk_pre, rk_cpu = k.get("preprocess_s", nan), k.get("preprocess_cpu_s", nan)
        rows.append(
            f"| {o['n']:,} / {o['m']:,} | {c['compile_s']:.1f} ({c['peak_rss_mb']:.0f}) "
            f"| {o['load_s']:.2f} | {o['first_matrix_s']:.2f} ({o['first_matrix_cpu_s']:.2f}) "
            f"| {o['matrix_s']:.3f} | {o['fastest_ms']:.3f} ({o['fastest_moving_ms']:.3f}) "
            f"| {o['close100_then_answer_ms']:.1f} | {o['peak_rss_mb']:.0f} "
            f"| {p['preprocess_s']:.2f} ({p['preprocess_cpu_s']:.2f}) "
            f"| {rk_pre:.2f} ({rk_cpu:.2f}) "
            f"| {rk_pre / p['preprocess_s']:.2f} ({rk_cpu / p['preprocess_cpu_s']:.2f}) "
            f"| {p['extra_rss_mb']:.0f} / {k.get('extra_rss_mb', nan):.0f} "
            f"| {k.get('matrix_s', nan):.3f} "
            f"| {rs['load_network_s']:.2f} + {rs['load_hierarchy_s']:.2f} ({rs['load_cpu_s']:.2f}) "
            f"| {rs['network_file_mb']:.0f} + {rs['hierarchy_file_mb']:.0f} "
            f"| {rs['first_matrix_s']:.2f} / {rs['first_matrix_cpu_s']:.2f} "
            f"({rs['first_matrix_from_start_s']:.2f} / {rs['first_matrix_from_start_cpu_s']:.2f}) "
            f"| {rs['peak_rss_mb']:.0f} |"
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--child":
        kind, rest = argv[1], argv[2:]
        if kind == "compile":
            out = child_compile(Path(rest[0]), Path(rest[1]))
        elif kind == "preprocess":
            out = child_preprocess(Path(rest[0]), Path(rest[1]))
        elif kind == "ours":
            out = child_ours(Path(rest[0]), Path(rest[1]), int(rest[2]), Path(rest[3]))
        elif kind == "restart":
            out = child_restart(Path(rest[0]), Path(rest[1]), int(rest[2]), Path(rest[3]),
                                float(rest[4]))  # fmt: skip
        else:
            out = child_routingkit(Path(rest[0]))
        print(json.dumps(out))
        return 0
    ap = argparse.ArgumentParser(description="Scale benchmark on synthetic cities.")
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 80_000, 320_000])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--no-routingkit", action="store_true")
    ap.add_argument("--no-preprocess", action="store_true",
                    help="skip the 'preprocess' child (the preprocessing is still in 'ours')")  # fmt: skip
    ap.add_argument("--out", type=Path, default=HERE / "results" / "scale.json")
    args = ap.parse_args(argv)
    try:
        import routingkit_cch  # noqa: F401

        with_rk = not args.no_routingkit
    except ImportError:
        print("routingkit-cch not installed (pip install -e '.[bench]'): its columns are skipped")
        with_rk = False
    results = []
    for size in args.sizes:
        print(f"size {size:,} ...", flush=True)
        results.append(run_size(size, args.seed, with_rk, not args.no_preprocess))
        print(json.dumps(results[-1], indent=1), flush=True)
    print(table(results))
    print(f"load average (1 min) at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    import platform

    from dispatch.io.atomic import atomic_write

    meta = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cpus": os.cpu_count(),
            "platform": platform.platform(), "load_avg_1min": os.getloadavg()[0]}  # fmt: skip
    atomic_write(args.out, json.dumps({"meta": meta, "results": results}, indent=1) + "\n")
    bad = [r for r in results if r["check"]["ours_max_abs_s"] > 1e-6]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
