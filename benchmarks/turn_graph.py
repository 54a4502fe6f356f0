"""What turn costs would cost: graph size and CCH time of turn-expanded graphs (docs/turn-costs.md).

Turn costs (left/right/U-turn) need the arc a vehicle arrives on, so the graph must be expanded.
This measures, on a compiled map, the node-based graph as it is and three expansions, each as
arrays the CCH builds on (no turn costs are applied: only the structure's cost is measured):

* ``edge_based``: the full line graph (one node per arc, one arc per pair of consecutive arcs);
* ``junctions``: only nodes with three or more road neighbours (where a turn is a choice) become one
  node per arc in and one per arc out, joined by one turn arc per (in, out) pair: the same gadget
  the compiler uses for turn restrictions (:mod:`dispatch.roads.compile`), applied to every junction;
* ``signal_junctions``: the same, only at junctions with a traffic signal on one of their arcs
  (turn costs where waiting to turn across traffic matters most);
* ``compiled_signals`` / ``compiled_junctions``: what the compiler builds with
  ``turn_costs="signals"`` (the default) / ``"junctions"`` (:mod:`dispatch.roads.compile`: turn arcs
  only where a turn is a choice, pass-through nodes merged), against ``node_based`` = ``"off"``.

For each: nodes, arcs, upward CCH edges, ``build_hierarchy`` (order + contraction) and
``customize`` times (median of ``--repeat`` runs, after one warm-up that compiles the kernels).

    python benchmarks/turn_graph.py danang --repeat 3
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

import dispatch
from dispatch.routing import cch

Graph = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # tail, head, lat, lon


def edge_based(net: Any) -> Graph:
    """The line graph: node ``a`` per arc (at its midpoint), arc ``a -> b`` when head(a) = tail(b)."""
    tail, head = net.arc_tail.astype(np.int64), net.arc_head.astype(np.int64)
    lat = (net.node_lat[tail] + net.node_lat[head]) / 2
    lon = (net.node_lon[tail] + net.node_lon[head]) / 2
    order = np.argsort(tail, kind="stable")
    start = np.searchsorted(tail[order], np.arange(net.n_nodes + 1))
    counts = start[head + 1] - start[head]
    a = np.repeat(np.arange(len(tail)), counts)
    b = np.concatenate([order[start[h] : start[h + 1]] for h in head.tolist()])
    return a, b, lat, lon


def expand(net: Any, junction: np.ndarray) -> Graph:
    """Split the nodes of mask ``junction`` into one node per arc in and per arc out."""
    tail, head = net.arc_tail.astype(np.int64), net.arc_head.astype(np.int64)
    m, n = len(tail), net.n_nodes
    lat, lon = list(net.node_lat), list(net.node_lon)
    new_head, new_tail = head.copy(), tail.copy()
    turn_t: list[int] = []
    turn_h: list[int] = []
    for v in np.flatnonzero(junction).tolist():
        ins = np.flatnonzero(head == v)
        outs = np.flatnonzero(tail == v)
        arr = list(range(len(lat), len(lat) + len(ins)))
        lat += [net.node_lat[v]] * len(ins)
        lon += [net.node_lon[v]] * len(ins)
        dep = list(range(len(lat), len(lat) + len(outs)))
        lat += [net.node_lat[v]] * len(outs)
        lon += [net.node_lon[v]] * len(outs)
        new_head[ins] = arr
        new_tail[outs] = dep
        for x in arr:
            turn_t += [x] * len(dep)
            turn_h += dep
    t = np.concatenate([new_tail, np.array(turn_t, dtype=np.int64)])
    h = np.concatenate([new_head, np.array(turn_h, dtype=np.int64)])
    used = np.zeros(len(lat), bool)
    used[t] = used[h] = True
    keep = np.flatnonzero(used)  # junction nodes themselves are no longer used
    index = np.full(len(lat), -1, dtype=np.int64)
    index[keep] = np.arange(len(keep))
    assert m <= len(t) and n <= len(lat)
    return index[t], index[h], np.array(lat)[keep], np.array(lon)[keep]


def junctions(net: Any) -> np.ndarray:
    """Nodes with three or more distinct road neighbours."""
    u = np.concatenate([net.arc_tail, net.arc_head]).astype(np.int64)
    v = np.concatenate([net.arc_head, net.arc_tail]).astype(np.int64)
    pairs = np.unique(u[u != v] * net.n_nodes + v[u != v])
    return np.bincount(pairs // net.n_nodes, minlength=net.n_nodes) >= 3


def mean_ancestors(h: cch.Hierarchy) -> float:
    """Mean number of elimination-tree ancestors per node: a CCH query's search space per side."""
    parent = h.parent
    depth = np.zeros(len(parent), dtype=np.int64)
    for r in range(len(parent) - 1, -1, -1):  # parents have higher ranks
        p = parent[r]
        depth[r] = 1 + (depth[p] if p >= 0 else 0)
    return float(depth.mean())


def timed(f: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = f()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def measure(map_name: str, repeat: int) -> list[dict[str, Any]]:
    net = dispatch.load_network(map_name, settings=dispatch.network_settings(turn_costs="off"))
    g = net.graph
    signal_nodes = np.zeros(net.n_nodes, bool)
    sig = g.arc_signals > 0
    signal_nodes[g.arc_head[sig]] = signal_nodes[g.arc_tail[sig]] = True
    variants: dict[str, Graph] = {
        "node_based": (g.arc_tail, g.arc_head, g.node_lat, g.node_lon),
        "signal_junctions": expand(net, junctions(net) & signal_nodes),
        "junctions": expand(net, junctions(net)),
        "edge_based": edge_based(net),
    }
    for mode in ("signals", "junctions"):
        c = dispatch.load_network(
            map_name, settings=dispatch.network_settings(turn_costs=mode)
        ).graph
        variants[f"compiled_{mode}"] = (c.arc_tail, c.arc_head, c.node_lat, c.node_lon)
    cch.customize(cch.build_hierarchy(*variants["node_based"]), net.weights("ambulance"))  # warm-up
    rows = []
    for name, (t, h, lat, lon) in variants.items():
        build_s, hier = timed(lambda t=t, h=h, lat=lat, lon=lon: cch.build_hierarchy(t, h, lat, lon),
                              repeat)  # fmt: skip
        w = np.ones(len(t))
        cust_s, _ = timed(lambda hier=hier, w=w: cch.customize(hier, w), repeat)
        rows.append({"map": map_name, "graph": name, "nodes": len(lat), "arcs": len(t),
                     "up_edges": hier.n_edges, "ancestors": round(mean_ancestors(hier), 1),
                     "build_s": round(build_s, 4),
                     "customize_s": round(cust_s, 5)})  # fmt: skip
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("maps", nargs="*", default=["danang"])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    print(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
          f"{platform.processor() or platform.machine()}, Python {platform.python_version()}")  # fmt: skip
    print(
        "| map | graph | nodes | arcs | CCH upward edges | mean ancestors | build s | customize s |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for m in args.maps:
        for r in measure(m, args.repeat):
            print(f"| {r['map']} | {r['graph']} | {r['nodes']:,} | {r['arcs']:,} | "
                  f"{r['up_edges']:,} | {r['ancestors']} | {r['build_s']} | {r['customize_s']} |")  # fmt: skip


if __name__ == "__main__":
    main()
