"""Exact fastest-unit routing: travel-time matrices, k fastest units, routes.

One Dijkstra kernel family (compiled with numba, binary heap, stamped workspaces so that a query
touches only the nodes it settles) under thin public wrappers that validate input at the boundary.

Positions are edge positions (:mod:`dispatch.roads.snapping`): a unit mid-arc first drives the rest of its
arc (or, on a two-way street, turns back along the twin arc); a call is reached at its offset along
its arc, from either direction on a two-way street; a point at an arc's end is at that node.

The dispatch query (:func:`fastest_units`) is a reverse search from the call that stops as soon as
no unit outside the current k best can still beat the k-th: with 50 units spread over a city it settles
a few hundred nodes instead of the whole graph.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numba
import numpy as np

from dispatch.errors import FleetError, PointError
from dispatch.roads.profiles import VEHICLE_CLASSES, check_vehicle
from dispatch.roads.snapping import as_points, check_points, geom_cum_m, snap_arrays, snap_one
from dispatch.routing import cch as hierarchy
from dispatch.routing.kernels import (
    heap_pop,
    heap_push,
    leave_seed,
    reach_seed,
    relax,
    same_arc_kernel,
    same_arc_time,
    seeds_kernel,
)

if TYPE_CHECKING:
    from dispatch.roads.network import Network

INF = np.inf
_CLASS_INDEX = {v: i for i, v in enumerate(VEHICLE_CLASSES)}

# --- kernels ------------------------------------------------------------------------------------


@numba.njit(cache=True, nogil=True)
def _seed(
    seed_node: np.ndarray, seed_cost: np.ndarray, dist: np.ndarray, stamp: np.ndarray,
    pred: np.ndarray, cur: int, hd: np.ndarray, hv: np.ndarray,
) -> int:  # fmt: skip
    size = 0
    for j in range(len(seed_node)):
        v = seed_node[j]
        c = seed_cost[j]
        if v < 0 or not c < np.inf:
            continue
        if stamp[v] != cur or c < dist[v]:
            stamp[v] = cur
            dist[v] = c
            pred[v] = -1
            size = heap_push(hd, hv, size, c, v)
    return size


@numba.njit(cache=True, nogil=True)
def _top_insert(topv: np.ndarray, topu: np.ndarray, u: int, x: float) -> None:
    """Put unit ``u`` at value ``x`` (below the last) into the sorted k-best list, moving it up if
    it is already there, else pushing the last one out."""
    k = len(topv)
    i = k - 1
    for j in range(k):
        if topu[j] == u:
            i = j
            break
    while i > 0 and topv[i - 1] > x:
        topv[i] = topv[i - 1]
        topu[i] = topu[i - 1]
        i -= 1
    topv[i] = x
    topu[i] = u


@numba.njit(cache=True, nogil=True)
def kfastest_kernel(
    ptr: np.ndarray, adj: np.ndarray, other: np.ndarray, w: np.ndarray,
    seed_node: np.ndarray, seed_cost: np.ndarray,
    dist: np.ndarray, stamp: np.ndarray, pred: np.ndarray, hd: np.ndarray, hv: np.ndarray,
    cur: int,
    exit_first: np.ndarray, exit_next: np.ndarray, exit_unit: np.ndarray, exit_cost: np.ndarray,
    unit_best: np.ndarray, k: int, bound: float, min_extra: float,
) -> int:  # fmt: skip
    """Reverse search from a call until the k best units are final; returns nodes settled.

    ``unit_best`` holds each unit's best ETA so far (turnout + drive; pre-filled with same-arc
    candidates) and is updated in place. ``exit_*`` is a linked list per node of (unit, cost to leave
    from the unit's position to that node, turnout included). The search stops when the next node's
    distance plus ``min_extra`` exceeds both ``bound`` and the k-th best ETA.
    """
    topv = np.full(k, np.inf)
    topu = np.full(k, -1)
    for u in range(len(unit_best)):
        if unit_best[u] < topv[k - 1]:
            _top_insert(topv, topu, u, unit_best[u])
    size = _seed(seed_node, seed_cost, dist, stamp, pred, cur, hd, hv)
    settled = 0
    while size > 0:
        d = hd[0]
        v = hv[0]
        size = heap_pop(hd, hv, size)
        if d > dist[v]:
            continue
        limit = topv[k - 1] if topv[k - 1] < bound else bound
        if d + min_extra > limit:
            break
        settled += 1
        e = exit_first[v]
        while e >= 0:
            u = exit_unit[e]
            x = d + exit_cost[e]
            if x < unit_best[u]:
                unit_best[u] = x
                if x < topv[k - 1]:
                    _top_insert(topv, topu, u, x)
            e = exit_next[e]
        size = relax(ptr, adj, other, w, v, d, dist, stamp, pred, cur, hd, hv, size)
    return settled


@numba.njit(cache=True, nogil=True)
def dispatch_kernel(
    rev_ptr: np.ndarray, rev_arc: np.ndarray, tail: np.ndarray, head: np.ndarray, twin: np.ndarray,
    w: np.ndarray, call_arc: int, call_t: float,
    unit_arc: np.ndarray, unit_t: np.ndarray, turnout: np.ndarray,
    dist: np.ndarray, stamp: np.ndarray, pred: np.ndarray, hd: np.ndarray, hv: np.ndarray,
    cur: int,
    exit_first: np.ndarray, exit_next: np.ndarray, exit_unit: np.ndarray, exit_cost: np.ndarray,
    unit_best: np.ndarray, k: int, bound: float, min_extra: float,
) -> int:  # fmt: skip
    """One class's part of :func:`fastest_units`: seeds from the call's edge position, same-arc
    candidates, then :func:`kfastest_kernel`. ``unit_best`` receives each unit's ETA (inf if not final)."""
    seed_node = np.empty(3, dtype=np.int64)
    seed_cost = np.empty(3)
    for j in range(3):
        seed_node[j], seed_cost[j] = reach_seed(tail, head, twin, w, call_arc, call_t, j)
    for u in range(len(unit_arc)):
        x = np.inf
        if unit_arc[u] == call_arc:
            x = same_arc_time(twin, w, call_arc, unit_t[u], call_t)
        unit_best[u] = x + turnout[u]
    return kfastest_kernel(rev_ptr, rev_arc, tail, w, seed_node, seed_cost, dist, stamp, pred, hd, hv,
                           cur, exit_first, exit_next, exit_unit, exit_cost, unit_best, k, bound,
                           min_extra)  # fmt: skip


@numba.njit(cache=True, nogil=True)
def knearest_kernel(
    ptr: np.ndarray, head: np.ndarray, w: np.ndarray, seed_node: np.ndarray, seed_unit: np.ndarray,
    seed_cost: np.ndarray, lab_unit: np.ndarray, lab_dist: np.ndarray, lab_count: np.ndarray,
) -> None:  # fmt: skip
    """For every node, its ``K`` nearest units (``K = lab_unit.shape[1]``), by a multi-label Dijkstra.

    Each (node, unit) pair is settled at most once, in order of distance; a node stops accepting
    labels once it has ``K``: a unit pruned there is beaten, at every node beyond, by the ``K`` it
    holds. Seeds are the units' exits (node, unit, cost with turnout). Heap items pack
    ``node * n_units + unit``."""
    kk = lab_unit.shape[1]
    nu = 1
    for s in range(len(seed_unit)):
        nu = max(nu, seed_unit[s] + 1)
    lab_count[:] = 0
    cap = kk * len(head) + len(seed_node) + 16
    hd = np.empty(cap)
    hv = np.empty(cap, dtype=np.int64)
    size = 0
    for s in range(len(seed_node)):
        if seed_cost[s] < np.inf:
            size = heap_push(hd, hv, size, seed_cost[s], seed_node[s] * nu + seed_unit[s])
    while size > 0:
        d = hd[0]
        item = hv[0]
        size = heap_pop(hd, hv, size)
        v = item // nu
        u = item % nu
        cnt = lab_count[v]
        if cnt >= kk:
            continue
        dup = False
        for j in range(cnt):
            if lab_unit[v, j] == u:
                dup = True
                break
        if dup:
            continue
        lab_unit[v, cnt] = u
        lab_dist[v, cnt] = d
        lab_count[v] = cnt + 1
        for a in range(ptr[v], ptr[v + 1]):
            nd = d + w[a]
            x = head[a]
            if nd < np.inf and lab_count[x] < kk:
                size = heap_push(hd, hv, size, nd, x * nu + u)


@numba.njit(cache=True, nogil=True)
def knearest_query(
    tail: np.ndarray, head: np.ndarray, twin: np.ndarray, w: np.ndarray, call_arc: int,
    call_t: float, unit_arc: np.ndarray, unit_t: np.ndarray, turnout: np.ndarray,
    id_rank: np.ndarray, lab_unit: np.ndarray, lab_dist: np.ndarray, lab_count: np.ndarray,
    k: int, out_unit: np.ndarray, out_eta: np.ndarray,
) -> int:  # fmt: skip
    """The k fastest units to a call from the nearest-units table; returns how many, or -1 when the
    table cannot prove the answer (then the caller searches).

    Candidates are the units listed at the call's reach nodes plus units on the call's own arc. A
    unit missing from a full list at reach node r is at least that list's last distance plus the cost
    from r, so the answer is exact when the k-th candidate is strictly below that bound."""
    nodes = np.empty(3, dtype=np.int64)
    costs = np.empty(3)
    for j in range(3):
        nodes[j], costs[j] = reach_seed(tail, head, twin, w, call_arc, call_t, j)
    kk = lab_unit.shape[1]
    cu = np.empty(3 * kk + len(unit_arc), dtype=np.int64)
    ce = np.empty(3 * kk + len(unit_arc))
    nc = 0
    bound = np.inf
    for r in range(3):
        if not costs[r] < np.inf:
            continue
        v = nodes[r]
        cnt = lab_count[v]
        if cnt >= kk:
            x = lab_dist[v, kk - 1] + costs[r]
            if x < bound:
                bound = x
        for j in range(cnt):
            cu[nc] = lab_unit[v, j]
            ce[nc] = lab_dist[v, j] + costs[r]
            nc += 1
    for u in range(len(unit_arc)):
        if unit_arc[u] == call_arc:
            x = same_arc_time(twin, w, call_arc, unit_t[u], call_t)
            if x < np.inf:
                cu[nc] = u
                ce[nc] = x + turnout[u]
                nc += 1
    # best per unit, then the k smallest by (eta, id rank): selection by repeated minimum (k small)
    got = 0
    while got < k:
        bi = -1
        for i in range(nc):
            if cu[i] < 0:
                continue
            if bi < 0 or ce[i] < ce[bi] or (ce[i] == ce[bi] and id_rank[cu[i]] < id_rank[cu[bi]]):
                bi = i
        if bi < 0:
            break
        u = cu[bi]
        out_unit[got] = u
        out_eta[got] = ce[bi]
        got += 1
        for i in range(nc):
            if cu[i] == u:
                cu[i] = -1
    if got > 0 and not out_eta[got - 1] < bound:
        return -1
    if got < k and bound < np.inf:
        return -1  # fewer than k candidates but some units may be unlisted
    return got


@numba.njit(cache=True, nogil=True)
def exits_kernel(
    tail: np.ndarray, head: np.ndarray, twin: np.ndarray, w: np.ndarray, unit_arc: np.ndarray,
    unit_t: np.ndarray, turnout: np.ndarray, n: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """Per-node linked lists of unit exits ``(first, next, unit, cost)``: where each unit can enter
    the graph from its edge position (head of its arc, or tail by the twin, or the tail itself at
    ``t == 0``) and at what cost, turnout included."""
    nu = len(unit_arc)
    first = np.full(n, -1, dtype=np.int64)
    nxt = np.empty(3 * nu, dtype=np.int64)
    unit = np.empty(3 * nu, dtype=np.int64)
    cost = np.empty(3 * nu)
    e = 0
    for u in range(nu):
        for j in range(3):
            v, c = leave_seed(tail, head, twin, w, unit_arc[u], unit_t[u], j)
            if not c < np.inf:
                continue
            unit[e] = u
            cost[e] = c + turnout[u]
            nxt[e] = first[v]
            first[v] = e
            e += 1
    return first, nxt[:e], unit[:e], cost[:e]


@numba.njit(cache=True, nogil=True)
def matrix_kernel(
    ptr: np.ndarray, adj: np.ndarray, other: np.ndarray, w: np.ndarray,
    src_node: np.ndarray, src_cost: np.ndarray, dst_node: np.ndarray, dst_cost: np.ndarray,
    dist: np.ndarray, stamp: np.ndarray, pred: np.ndarray, mark: np.ndarray,
    hd: np.ndarray, hv: np.ndarray, cur0: int, out: np.ndarray,
) -> int:  # fmt: skip
    """One search per source row (seeds ``src_node[s]``/``src_cost[s]``), stopping once every target
    node is settled; ``out[s, d] = min_j dist[dst_node[d, j]] + dst_cost[d, j]``. Returns next stamp."""
    cur = cur0
    n_dst = dst_node.shape[0]
    for s in range(src_node.shape[0]):
        cur += 1
        # mark target nodes with the current stamp: mark[v] == cur means "target not yet settled"
        remaining = 0
        for d in range(n_dst):
            for j in range(dst_node.shape[1]):
                v = dst_node[d, j]
                if v >= 0 and dst_cost[d, j] < np.inf and mark[v] != cur:
                    mark[v] = cur
                    remaining += 1
        size = _seed(src_node[s], src_cost[s], dist, stamp, pred, cur, hd, hv)
        while size > 0 and remaining > 0:
            d0 = hd[0]
            v = hv[0]
            size = heap_pop(hd, hv, size)
            if d0 > dist[v]:
                continue
            if mark[v] == cur:
                mark[v] = cur - 1
                remaining -= 1
            size = relax(ptr, adj, other, w, v, d0, dist, stamp, pred, cur, hd, hv, size)
        for d in range(n_dst):
            best = np.inf
            for j in range(dst_node.shape[1]):
                v = dst_node[d, j]
                if v >= 0 and stamp[v] == cur:
                    x = dist[v] + dst_cost[d, j]
                    if x < best:
                        best = x
            out[s, d] = best
    return cur


@numba.njit(cache=True, nogil=True)
def p2p_kernel(
    ptr: np.ndarray, adj: np.ndarray, other: np.ndarray, w: np.ndarray,
    src_node: np.ndarray, src_cost: np.ndarray, dst_node: np.ndarray, dst_cost: np.ndarray,
    dist: np.ndarray, stamp: np.ndarray, pred: np.ndarray, hd: np.ndarray, hv: np.ndarray, cur: int,
) -> tuple[float, int]:  # fmt: skip
    """Forward search from seeds to the best target (node, cost) pair; ``pred`` holds the tree.

    Returns ``(eta, target index)`` (``(inf, -1)`` when unreachable)."""
    size = _seed(src_node, src_cost, dist, stamp, pred, cur, hd, hv)
    best = np.inf
    best_j = -1
    while size > 0:
        d0 = hd[0]
        v = hv[0]
        size = heap_pop(hd, hv, size)
        if d0 > dist[v]:
            continue
        if d0 >= best:
            break
        for j in range(len(dst_node)):
            if dst_node[j] == v and d0 + dst_cost[j] < best:
                best = d0 + dst_cost[j]
                best_j = j
        size = relax(ptr, adj, other, w, v, d0, dist, stamp, pred, cur, hd, hv, size)
    return best, best_j


# --- weights and workspaces ---------------------------------------------------------------------


def weights(net: Network, vehicle: str, hour: float | None = None) -> np.ndarray:
    """Travel time (s) per arc for a class at a clock hour, with the closures in force then.

    ``inf`` marks arcs the class may not use or that are closed. Cached per (class, band, closures).
    """
    from dispatch.routing.closures import active_closed_arcs

    band = net.settings.band_index(hour)
    if not net._closures:  # the common case: one dict lookup
        w = net._weights.get((_CLASS_INDEX.get(vehicle, -1), band, ()))
        if w is not None:
            return w
    c = check_vehicle(vehicle)
    ids, arcs = active_closed_arcs(net, c, hour)
    if not ids:
        return net.base_weights(vehicle, band)
    key = (c, band, ids)
    w = net._weights.get(key)
    if w is None:
        w = net.base_weights(vehicle, band).copy()
        w[arcs] = INF
        w.flags.writeable = False
        if len(net._weights) > 256:
            net._weights.clear()
        net._weights[key] = w
    return w


class _Workspace:
    """Per-network scratch arrays for the kernels; stamped so that no query clears them."""

    def __init__(self, n: int, m: int) -> None:
        self.dist = np.empty(n)
        self.stamp = np.zeros(n, dtype=np.int64)
        self.pred = np.empty(n, dtype=np.int32)
        self.mark = np.zeros(n, dtype=np.int64)
        self.hd = np.empty(m + 64)
        self.hv = np.empty(m + 64, dtype=np.int32)
        self.cur = 0

    def next_stamp(self) -> int:
        self.cur += 1
        return self.cur


def _fwd_adj(net: Network) -> np.ndarray:
    """Arc ids in forward CSR order (the identity: forward arcs are numbered by tail)."""
    adj = net._state.get("fwd_adj")
    if adj is None:
        adj = net._state["fwd_adj"] = np.arange(net.n_arcs, dtype=np.int32)
    return adj  # type: ignore[no-any-return,unused-ignore]


def _ws(net: Network) -> _Workspace:
    ws = net._state.get("ws")
    if ws is None:
        ws = net._state["ws"] = _Workspace(net.n_nodes, net.n_arcs)
    return ws


# --- positions ----------------------------------------------------------------------------------


def _leave_pairs(
    net: Network, arc: np.ndarray, t: np.ndarray, w: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(nodes, costs), shape (n, 3): where points on arcs enter the graph (:func:`leave_seed`)."""
    return _pairs(net, arc, t, w, reach=False)


def _reach_pairs(
    net: Network, arc: np.ndarray, t: np.ndarray, w: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(nodes, costs), shape (n, 3): from which nodes points on arcs are reached (:func:`reach_seed`)."""
    return _pairs(net, arc, t, w, reach=True)


def _pairs(
    net: Network, arc: np.ndarray, t: np.ndarray, w: np.ndarray, *, reach: bool
) -> tuple[np.ndarray, np.ndarray]:
    nodes = np.empty((len(arc), 3), dtype=np.int64)
    costs = np.empty((len(arc), 3))
    seeds_kernel(net.arc_tail, net.arc_head, net.arc_twin, w, np.asarray(arc, dtype=np.int64),
                 np.asarray(t, dtype=np.float64), reach, nodes, costs)  # fmt: skip
    return nodes, costs


def _same_arc(net: Network, o_arc: np.ndarray, o_t: np.ndarray, d_arc: np.ndarray, d_t: np.ndarray,
              w: np.ndarray) -> np.ndarray:  # fmt: skip
    """Direct time along a shared (canonical) arc from each origin to each destination, else inf."""
    out = np.empty((len(o_arc), len(d_arc)))
    same_arc_kernel(net.arc_twin, w, np.asarray(o_arc, dtype=np.int64), np.asarray(o_t, dtype=float),
                    np.asarray(d_arc, dtype=np.int64), np.asarray(d_t, dtype=float), out)  # fmt: skip
    return out


def _locate(
    net: Network, pts: np.ndarray, vehicle: str, name: str, role: str
) -> tuple[np.ndarray, np.ndarray]:
    check_points(net, pts, name=name)
    tol = net.settings.snap_tolerance_m
    arc, t, _ = snap_arrays(net, pts, check_vehicle(vehicle), tol, role)
    if (arc < 0).any():
        i = int(np.argmax(arc < 0))
        raise PointError(
            f"{name} {i} ({pts[i, 0]}, {pts[i, 1]}) is farther than {tol:g} m from any road "
            f"open to {vehicle}"
        )
    return arc, t


# --- public queries -----------------------------------------------------------------------------


def travel_times(
    net: Network, origins: Any, destinations: Any, *, vehicle: str = "ambulance",
    hour: float | None = None,
) -> np.ndarray:  # fmt: skip
    """Travel times in seconds from every origin to every destination.

    Parameters
    ----------
    net
        The network.
    origins, destinations
        ``(lat, lon)`` or arrays of shape (n, 2); each point is snapped to the nearest road the class
        may use (:func:`dispatch.roads.snapping.snap`).
    vehicle
        Vehicle class.
    hour
        Clock hour for speed bands and closure windows (``None``: off-peak, every closure applies).

    Returns
    -------
    numpy.ndarray
        Shape ``(len(origins), len(destinations))``, seconds, ``inf`` where unreachable.

    Examples
    --------
    >>> from dispatch import load_network
    >>> net = load_network("danang")
    >>> tt = net.travel_times([(16.060909, 108.220849)], [(16.056437, 108.217138), (16.060909, 108.220849)])
    >>> tt.shape, bool(0 < tt[0, 0] < 900), float(tt[0, 1])
    ((1, 2), True, 0.0)
    """
    o = as_points(origins, name="origins")
    d = as_points(destinations, name="destinations")
    o_arc, o_t = _locate(net, o, vehicle, "origin", "from")
    d_arc, d_t = _locate(net, d, vehicle, "destination", "to")
    w = weights(net, vehicle, hour)
    return _matrix(net, w, o_arc, o_t, d_arc, d_t)


#: Searches per weight array after which the CCH is customized for it (a customization costs about
#: as much as ten Dijkstra searches on a city graph; until then, and right after a closure, queries
#: use Dijkstra, so the first answer after any change stays fast).
CCH_AFTER_SEARCHES = 12
#: Queries with the same fleet and the same weights (speed band, closures) after which the fleet's
#: nearest-units table is built (about four Dijkstra searches), and how many units per node it
#: keeps: queries with ``k < TABLE_K`` are then lookups.
TABLE_AFTER_USES = 3
TABLE_K = 4
#: A class with at most this many units is answered by the CCH even when the fleet has just moved
#: (labels for a few units cost microseconds; a search must reach as far as the k-th of them).
CCH_SMALL_FLEET = 12


def _use_cch(net: Network, w: np.ndarray, searches: int) -> bool:
    """Whether to answer with the CCH: already customized for ``w``, or enough searches to amortize."""
    cache = net._state.get("cch_metrics")
    if cache is not None and id(w) in cache and cache[id(w)].w is w:
        return True
    uses: dict[int, tuple[np.ndarray, int]] = net._state.setdefault("w_uses", {})
    prev = uses.get(id(w))
    count = (prev[1] if prev is not None and prev[0] is w else 0) + searches
    if len(uses) > 64:
        uses.clear()
    uses[id(w)] = (w, count)
    return count >= CCH_AFTER_SEARCHES


def _matrix(net: Network, w: np.ndarray, o_arc: np.ndarray, o_t: np.ndarray, d_arc: np.ndarray,
            d_t: np.ndarray) -> np.ndarray:  # fmt: skip
    ln, lc = _leave_pairs(net, o_arc, o_t, w)
    rn, rc = _reach_pairs(net, d_arc, d_t, w)
    forward = len(o_arc) <= len(d_arc)
    if _use_cch(net, w, min(len(o_arc), len(d_arc))):
        m = hierarchy.metric(net, w)
        if forward:  # one PHAST sweep per origin
            out = hierarchy.matrix(net, m, ln, lc, rn, rc)
        else:  # one backward sweep per destination
            out = hierarchy.matrix(net, m, rn, rc, ln, lc, backward=True).T.copy()
        return np.minimum(out, _same_arc(net, o_arc, o_t, d_arc, d_t, w))
    ws = _ws(net)
    if forward:  # Dijkstra from each origin, stopping once every destination is settled
        out = np.empty((len(o_arc), len(d_arc)))
        ws.cur = matrix_kernel(net.fwd_ptr, _fwd_adj(net), net.arc_head, w,
                               ln, lc, rn, rc, ws.dist, ws.stamp, ws.pred, ws.mark, ws.hd, ws.hv,
                               ws.cur, out)  # fmt: skip
    else:  # reverse searches from destinations
        out_t = np.empty((len(d_arc), len(o_arc)))
        ws.cur = matrix_kernel(net.rev_ptr, net.rev_arc, net.arc_tail, w, rn, rc, ln, lc,
                               ws.dist, ws.stamp, ws.pred, ws.mark, ws.hd, ws.hv, ws.cur, out_t)  # fmt: skip
        out = out_t.T.copy()
    return np.minimum(out, _same_arc(net, o_arc, o_t, d_arc, d_t, w))


@dataclass(frozen=True)
class Route:
    """A driven route.

    Attributes
    ----------
    eta_s
        Driving time in seconds (``inf`` when unreachable).
    length_m
        Driven length in metres.
    coords
        ``(lat, lon)`` points from origin to destination.
    times_s
        Cumulative driving seconds at each point of ``coords`` (0 first, ``eta_s`` last).
    nodes
        OSM ids of the network nodes passed.
    vehicle
        Vehicle class.
    """

    eta_s: float
    length_m: float
    coords: list[tuple[float, float]]
    times_s: list[float]
    nodes: list[int]
    vehicle: str

    def geojson(self) -> dict[str, Any]:
        """The route as a GeoJSON Feature (LineString, lon/lat order)."""
        return {
            "type": "Feature",
            "geometry": {"type": "LineString", "coordinates": [[lon, lat] for lat, lon in self.coords]},
            "properties": {"eta_s": self.eta_s, "length_m": self.length_m, "vehicle": self.vehicle,
                           "nodes": self.nodes},
        }  # fmt: skip


@numba.njit(cache=True, nogil=True)
def tree_path(pred: np.ndarray, tail: np.ndarray, target: int) -> tuple[np.ndarray, int]:
    """Arcs from the search's seed to ``target`` along ``pred``, in driving order, and the seed node."""
    n = 0
    v = target
    while pred[v] >= 0:
        n += 1
        v = tail[pred[v]]
    out = np.empty(n, dtype=np.int64)
    v = target
    for i in range(n - 1, -1, -1):
        a = pred[v]
        out[i] = a
        v = tail[a]
    return out, v


def _route_from_parts(
    net: Network, arcs: np.ndarray, t0: np.ndarray, t1: np.ndarray, w: np.ndarray, vehicle: str
) -> Route:
    """A :class:`Route` driving ``arcs[i]`` from fraction ``t0[i]`` to ``t1[i]``, in order (vectorised).

    Speed is uniform along an arc, so time along it is proportional to distance along its geometry.
    """
    cum_all = geom_cum_m(net)
    lo = net.geom_ptr[arcs]
    npts = net.geom_ptr[arcs + 1] - lo
    part = np.repeat(np.arange(len(arcs)), npts)
    idx = np.arange(int(npts.sum())) - np.repeat(np.cumsum(npts) - npts, npts) + np.repeat(lo, npts)
    total = cum_all[lo + npts - 1]  # geometry length of each arc
    s0, s1 = t0 * total, t1 * total
    cum = cum_all[idx]
    keep = (cum >= s0[part]) & (cum <= s1[part])
    lat, lon, cum, part = net.geom_lat[idx][keep], net.geom_lon[idx][keep], cum[keep], part[keep]

    # a partial first or last arc starts or ends between geometry points: interpolate there
    def at(i: int, s_at: float) -> tuple[float, float]:
        sl = slice(int(lo[i]), int(lo[i] + npts[i]))
        c = cum_all[sl]
        return float(np.interp(s_at, c, net.geom_lat[sl])), float(
            np.interp(s_at, c, net.geom_lon[sl])
        )

    if t0[0] > 0:
        la, lo_ = at(0, s0[0])
        lat, lon = np.concatenate([[la], lat]), np.concatenate([[lo_], lon])
        cum, part = np.concatenate([[s0[0]], cum]), np.concatenate([[0], part])
    if t1[-1] < 1:
        k = len(arcs) - 1
        la, lo_ = at(k, s1[k])
        lat, lon = np.concatenate([lat, [la]]), np.concatenate([lon, [lo_]])
        cum, part = np.concatenate([cum, [s1[k]]]), np.concatenate([part, [k]])
    sec = w[arcs] * (t1 - t0)
    start_s = np.cumsum(sec) - sec
    with np.errstate(invalid="ignore", divide="ignore"):
        per_m = np.where(total > 0, w[arcs] / total, 0.0)
    times = start_s[part] + (cum - s0[part]) * per_m[part]
    # consecutive arcs share their joint node: drop repeated points
    dup = np.zeros(len(lat), bool)
    dup[1:] = (lat[1:] == lat[:-1]) & (lon[1:] == lon[:-1])
    lat, lon, times = lat[~dup], lon[~dup], times[~dup]
    eta = float(sec.sum())
    if len(times):
        times[0] = 0.0
        times[-1] = eta
    full = t1 >= 1.0
    return Route(
        eta,
        float(np.sum(net.arc_length_m[arcs] * (t1 - t0))),
        list(zip(lat.tolist(), lon.tolist(), strict=True)),
        times.tolist(),
        net.node_osmid[net.arc_head[arcs[full]]].tolist(),
        vehicle,
    )


def route(
    net: Network, origin: Any, destination: Any, *, vehicle: str = "ambulance",
    hour: float | None = None,
) -> Route:  # fmt: skip
    """The fastest route from ``origin`` to ``destination`` (each a ``(lat, lon)``).

    Examples
    --------
    >>> from dispatch import load_network
    >>> net = load_network("danang")
    >>> r = net.route((16.060909, 108.220849), (16.056437, 108.217138))
    >>> tt = net.travel_times((16.060909, 108.220849), (16.056437, 108.217138))
    >>> r.times_s[0], r.times_s[-1] == r.eta_s, bool(abs(r.eta_s - tt[0, 0]) < 1e-9)
    (0.0, True, True)
    """
    o = as_points(origin, name="origin")
    d = as_points(destination, name="destination")
    if len(o) != 1 or len(d) != 1:
        raise PointError("route takes one origin and one destination (lat, lon)")
    o_arc, o_t = _locate(net, o, vehicle, "origin", "from")
    d_arc, d_t = _locate(net, d, vehicle, "destination", "to")
    w = weights(net, vehicle, hour)
    return _route(net, w, int(o_arc[0]), float(o_t[0]), int(d_arc[0]), float(d_t[0]), vehicle)


def _route(
    net: Network, w: np.ndarray, oa: int, ot: float, da: int, dt: float, vehicle: str
) -> Route:
    ln, lc = _leave_pairs(net, np.array([oa]), np.array([ot]), w)
    rn, rc = _reach_pairs(net, np.array([da]), np.array([dt]), w)
    ws = _ws(net)
    cur = ws.next_stamp()
    cch = _use_cch(net, w, 1)
    if cch:  # CCH query and shortcut unpacking
        eta, path, v, end = hierarchy.path(
            net, hierarchy.metric(net, w), ln[0], lc[0], rn[0], rc[0]
        )
        # which reach seed the path ends at (the cheapest one at that node)
        j = -1
        for jj in range(3):
            if rn[0][jj] == end and rc[0][jj] < INF and (j < 0 or rc[0][jj] < rc[0][j]):
                j = jj
    else:
        eta, j = p2p_kernel(net.fwd_ptr, _fwd_adj(net), net.arc_head, w, ln[0], lc[0], rn[0],
                            rc[0], ws.dist, ws.stamp, ws.pred, ws.hd, ws.hv, cur)  # fmt: skip
    direct = float(
        _same_arc(net, np.array([oa]), np.array([ot]), np.array([da]), np.array([dt]), w)[0, 0]
    )
    if direct <= eta:
        if direct == INF:
            return Route(INF, INF, [], [], [], vehicle)
        if dt >= ot:
            return _route_from_parts(
                net, np.array([oa]), np.array([ot]), np.array([dt]), w, vehicle
            )
        b = int(net.arc_twin[oa])
        return _route_from_parts(
            net, np.array([b]), np.array([1 - ot]), np.array([1 - dt]), w, vehicle
        )
    if j < 0:
        return Route(INF, INF, [], [], [], vehicle)
    if not cch:
        path, v = tree_path(ws.pred, net.arc_tail, int(rn[0][j]))
        start_cost = float(ws.dist[v])
    else:  # the seed's own cost: the path's time less the arcs driven
        start_cost = float(eta - rc[0][j] - w[path].sum())
    first: list[tuple[int, float]] = []
    if v == net.arc_head[oa] and abs(start_cost - lc[0][0]) <= 1e-9 * max(1.0, eta):
        first = [(oa, ot)]
    elif ot > 0:
        first = [(int(net.arc_twin[oa]), 1 - ot)]
    last: list[tuple[int, float]] = []
    if j == 0:
        last = [(da, dt)]
    elif j == 1:
        last = [(int(net.arc_twin[da]), 1 - dt)]
    arcs = np.concatenate([[a for a, _ in first], path, [a for a, _ in last]]).astype(np.int64)
    t0 = np.zeros(len(arcs))
    t1 = np.ones(len(arcs))
    if first:
        t0[0] = first[0][1]
    if last:
        t1[-1] = last[0][1]
    r = _route_from_parts(net, arcs, t0, t1, w, vehicle)
    # the pieces sum to the kernel's eta up to float rounding: report the kernel's figure
    times = r.times_s
    if times:
        times[-1] = eta
    return Route(eta, r.length_m, r.coords, times, r.nodes, vehicle)


# --- fastest units ------------------------------------------------------------------------------


@dataclass(frozen=True)
class UnitETA:
    """One recommended unit: ``eta_s = turnout_s + drive_s``."""

    unit: str
    vehicle: str
    eta_s: float
    drive_s: float
    turnout_s: float
    route: Route | None = field(default=None, compare=False)

    def as_dict(self) -> dict[str, Any]:
        """JSON form: ``{"unit", "vehicle", "eta_s", "drive_s", "turnout_s"}`` (+ ``route`` GeoJSON)."""
        d: dict[str, Any] = {"unit": self.unit, "vehicle": self.vehicle, "eta_s": round(self.eta_s, 3),
                             "drive_s": round(self.drive_s, 3), "turnout_s": self.turnout_s}  # fmt: skip
        if self.route is not None:
            d["route"] = self.route.geojson()
        return d


_UNIT_KEYS = ("id", "vehicle", "lat", "lon")


class _Fleet:
    """Units prepared for one network: validated, snapped, indexed by class (cached between calls)."""

    def __init__(self, net: Network, rows: list[tuple[Any, ...]]) -> None:
        self.rows = rows
        ids = [str(r[0]) for r in rows]
        if len(set(ids)) != len(ids):
            seen: set[str] = set()
            for uid in ids:
                if uid in seen:
                    raise FleetError(f"duplicate unit id {uid!r} in the fleet")
                seen.add(uid)
        self.ids = ids
        self.uses = 0  # queries answered with this exact fleet
        self.by_class: dict[int, dict[str, Any]] = {}
        cache: dict[tuple[int, float, float], tuple[int, float]] = net._state.setdefault(
            "unit_snaps", {}
        )
        for c, vehicle in enumerate(VEHICLE_CLASSES):
            members = [i for i, r in enumerate(rows) if r[1] == vehicle and r[4]]
            if not members:
                continue
            arc = np.empty(len(members), dtype=np.int64)
            t = np.empty(len(members))
            todo = []
            for j, i in enumerate(members):
                hit = cache.get((c, rows[i][2], rows[i][3]))
                if hit is None:
                    todo.append(j)
                else:
                    arc[j], t[j] = hit
            if todo:
                pts = np.array(
                    [[rows[members[j]][2], rows[members[j]][3]] for j in todo], dtype=float
                )
                a, tt = _locate_units(net, pts, vehicle, [ids[members[j]] for j in todo])
                for jj, j in enumerate(todo):
                    arc[j], t[j] = int(a[jj]), float(tt[jj])
                    if len(cache) > 100_000:
                        cache.clear()
                    cache[(c, rows[members[j]][2], rows[members[j]][3])] = (
                        int(a[jj]),
                        float(tt[jj]),
                    )
            turnout = np.array([rows[i][5] for i in members], dtype=float)
            self.by_class[c] = {"members": np.array(members), "arc": arc, "t": t, "turnout": turnout,
                                "exits": {}, "labels": {}, "tables": {}, "w_uses": {},
                                "best": np.empty(len(members)), "id_rank": None,
                                "min_turnout": float(turnout.min())}  # fmt: skip

    def moved(self, net: Network, rows: list[tuple[Any, ...]]) -> _Fleet | None:
        """This fleet with some units moved (or with a new turnout), or None if more changed.

        The common live and simulation case: the same units, in the same order, in the same class and
        availability, a few of them elsewhere. Only the moved units are snapped again; the per-weights
        state (exits, labels, tables) starts afresh."""
        old = self.rows
        if len(rows) != len(old):
            return None
        changed = [i for i, (r, q) in enumerate(zip(rows, old, strict=True)) if r != q]
        if len(changed) > max(4, len(rows) // 8):
            return None
        for i in changed:
            if rows[i][:2] != old[i][:2] or rows[i][4] != old[i][4]:
                return None
        new = object.__new__(_Fleet)
        new.rows = rows
        new.ids = self.ids
        new.uses = 0
        new.by_class = {}
        where = {}  # row index -> (class, member position)
        for c, data in self.by_class.items():
            d = {**data, "arc": data["arc"].copy(), "t": data["t"].copy(),
                 "turnout": data["turnout"].copy(), "exits": {}, "labels": {}, "tables": {},
                 "w_uses": {}, "best": np.empty(len(data["arc"]))}  # fmt: skip
            new.by_class[c] = d
            for j, i in enumerate(data["members"].tolist()):
                where[i] = (c, j)
        cache: dict[tuple[int, float, float], tuple[int, float]] = net._state["unit_snaps"]
        for i in changed:
            if i not in where:  # an unavailable unit: nothing to place
                continue
            c, j = where[i]
            d = new.by_class[c]
            key = (c, rows[i][2], rows[i][3])
            hit = cache.get(key)
            if hit is None:
                pt = np.array([[rows[i][2], rows[i][3]]], dtype=float)
                a, tt = _locate_units(net, pt, VEHICLE_CLASSES[c], [self.ids[i]])
                hit = cache[key] = (int(a[0]), float(tt[0]))
            d["arc"][j], d["t"][j] = hit
            d["turnout"][j] = rows[i][5]
            d["min_turnout"] = float(d["turnout"].min())
        return new

    def labels(
        self, net: Network, c: int, w: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """CCH forward labels of the class's units under weights ``w`` (cached per w)."""
        data = self.by_class[c]
        hit = data["labels"].get(id(w))
        if hit is not None and hit[0] is w:
            return hit[1]  # type: ignore[no-any-return,unused-ignore]
        nodes, costs = _leave_pairs(net, data["arc"], data["t"], w)
        out = hierarchy.unit_labels(net, hierarchy.metric(net, w), nodes, costs)
        if len(data["labels"]) > 8:
            data["labels"].clear()
        data["labels"][id(w)] = (w, out)
        return out

    def table(self, net: Network, c: int, w: np.ndarray, kk: int) -> tuple[np.ndarray, ...]:
        """Nearest-units table (``kk`` per node) of the class under weights ``w`` (cached per w)."""
        data = self.by_class[c]
        hit = data["tables"].get(id(w))
        if hit is not None and hit[0] is w and hit[1][0].shape[1] >= kk:
            return hit[1]  # type: ignore[no-any-return,unused-ignore]
        nodes, costs = _leave_pairs(net, data["arc"], data["t"], w)
        nu = len(data["arc"])
        lab_unit = np.empty((net.n_nodes, kk), dtype=np.int64)
        lab_dist = np.empty((net.n_nodes, kk))
        lab_count = np.empty(net.n_nodes, dtype=np.int64)
        knearest_kernel(net.fwd_ptr, net.arc_head, w, nodes.ravel(), np.repeat(np.arange(nu), 3),
                        (costs + data["turnout"][:, None]).ravel(), lab_unit, lab_dist, lab_count)  # fmt: skip
        out = (lab_unit, lab_dist, lab_count)
        if len(data["tables"]) > 4:
            data["tables"].clear()
        data["tables"][id(w)] = (w, out)
        return out

    def exits(self, net: Network, c: int, w: np.ndarray) -> tuple[np.ndarray, ...]:
        """Per-node linked list of unit exits for class ``c`` under weights ``w`` (cached per w)."""
        data = self.by_class[c]
        key = id(w)
        hit = data["exits"].get(key)
        if hit is not None and hit[0] is w:
            return hit[1]
        out = exits_kernel(net.arc_tail, net.arc_head, net.arc_twin, w, data["arc"], data["t"],
                           data["turnout"], net.n_nodes)  # fmt: skip
        if len(data["exits"]) > 8:
            data["exits"].clear()
        data["exits"][key] = (w, out)
        return out


def _locate_units(
    net: Network, pts: np.ndarray, vehicle: str, ids: list[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Snap unit positions; a bad one raises :class:`FleetError` naming the unit."""
    try:
        return _locate(net, pts, vehicle, "unit", "from")
    except PointError:
        for i, uid in enumerate(ids):
            try:
                _locate(net, pts[i : i + 1], vehicle, "unit", "from")
            except PointError as exc:
                raise FleetError(f"unit {uid!r}: {str(exc).replace('unit 0 ', '', 1)}") from None
        raise


def _fleet_rows(units: Any) -> list[tuple[Any, ...]]:
    if hasattr(units, "to_dict") and hasattr(units, "columns"):  # a pandas DataFrame
        units = units.to_dict("records")
    if isinstance(units, Mapping) or not isinstance(units, Sequence) or isinstance(units, str):
        raise FleetError(
            f"units must be a sequence of mappings or a DataFrame, got {type(units).__name__}"
        )
    if len(units) == 0:
        raise FleetError("the fleet is empty: give at least one unit")
    rows = []
    for i, u in enumerate(units):
        try:
            rows.append((u["id"], u["vehicle"], u["lat"], u["lon"], u.get("available", True),
                         u.get("turnout_s", 0.0)))  # fmt: skip
        except (KeyError, TypeError, AttributeError):
            missing = [k for k in _UNIT_KEYS if not isinstance(u, Mapping) or k not in u]
            raise FleetError(f"unit {i} lacks {', '.join(missing) or 'mapping form'}") from None
    return rows


def _check_rows(net: Network, rows: list[tuple[Any, ...]]) -> None:
    """Raise :class:`FleetError` naming the first bad units (rows validated before are skipped)."""
    checked: set[tuple[Any, ...]] = net._state.setdefault("checked_rows", set())
    problems = []
    for r in rows:
        if r in checked:  # validated before (a unit that has not changed)
            continue
        if r[1] not in VEHICLE_CLASSES:
            problems.append(f"unit {r[0]!r} has unknown vehicle class {r[1]!r}")
        ok_t = isinstance(r[5], int | float) and math.isfinite(r[5]) and r[5] >= 0
        if not ok_t:
            problems.append(f"unit {r[0]!r} has turnout_s={r[5]!r}; expected seconds >= 0")
        if not isinstance(r[4], bool | np.bool_):
            problems.append(f"unit {r[0]!r} has available={r[4]!r}; expected true or false")
        for k, v in (("lat", r[2]), ("lon", r[3])):
            if isinstance(v, bool) or not isinstance(v, int | float | np.floating | np.integer):
                problems.append(f"unit {r[0]!r} has {k}={v!r}; expected a number")
    if problems:
        raise FleetError(
            "; ".join(problems[:5]) + (f" (+{len(problems) - 5} more)" if len(problems) > 5 else "")
        )
    if len(checked) > 100_000:
        checked.clear()
    checked.update(rows)


def _prepare_fleet(net: Network, units: Any) -> _Fleet:
    if isinstance(units, Fleet):
        if units.net is not net:
            raise FleetError("this Fleet was prepared for another network")
        return units._fleet
    rows = _fleet_rows(units)
    cached = net._state.get("fleet")
    if cached is not None and cached.rows == rows:
        return cached  # type: ignore[no-any-return,unused-ignore]
    _check_rows(net, rows)
    fleet = (cached.moved(net, rows) if cached is not None else None) or _Fleet(net, rows)
    net._state["fleet"] = fleet
    return fleet


class Fleet:
    """A fleet prepared once for a network: what a dispatch system keeps and updates from AVL.

    Passing it to :func:`fastest_units` instead of a list of unit mappings skips re-reading the list
    on every call; :meth:`move` and :meth:`set_available` update one unit (only a moved unit is
    snapped again).

    Examples
    --------
    >>> from dispatch import load_network
    >>> net = load_network("danang")
    >>> fleet = net.fleet([{"id": "A1", "vehicle": "ambulance", "lat": 16.0594, "lon": 108.2099},
    ...                    {"id": "A2", "vehicle": "ambulance", "lat": 16.0548, "lon": 108.2072}])
    >>> [u.unit for u in net.fastest_units((16.060909, 108.220849), fleet, k=2)]
    ['A1', 'A2']
    >>> fleet.move("A2", 16.0606, 108.2205)
    >>> fleet.set_available("A1", False)
    >>> [u.unit for u in net.fastest_units((16.060909, 108.220849), fleet, k=2)]
    ['A2']
    """

    def __init__(self, net: Network, units: Any) -> None:
        rows = _fleet_rows(units)
        _check_rows(net, rows)
        self.net = net
        self._fleet = _Fleet(net, rows)
        self._index = {uid: i for i, uid in enumerate(self._fleet.ids)}

    def __len__(self) -> int:
        return len(self._fleet.rows)

    def _update(self, unit_id: Any, **changes: Any) -> None:
        i = self._index.get(str(unit_id))
        if i is None:
            raise FleetError(f"no unit {unit_id!r} in the fleet")
        rows = list(self._fleet.rows)
        r = rows[i]
        rows[i] = (r[0], r[1], changes.get("lat", r[2]), changes.get("lon", r[3]),
                   changes.get("available", r[4]), changes.get("turnout_s", r[5]))  # fmt: skip
        _check_rows(self.net, [rows[i]])
        self._fleet = self._fleet.moved(self.net, rows) or _Fleet(self.net, rows)

    def move(self, unit_id: Any, lat: float, lon: float) -> None:
        """A unit's new position (an AVL fix); it is snapped again on the next query."""
        self._update(unit_id, lat=lat, lon=lon)

    def set_available(self, unit_id: Any, available: bool) -> None:
        """Mark a unit available or not (busy, out of service)."""
        self._update(unit_id, available=available)

    @property
    def units(self) -> list[dict[str, Any]]:
        """The units as mappings (``id``, ``vehicle``, ``lat``, ``lon``, ``available``, ``turnout_s``)."""
        keys = ("id", "vehicle", "lat", "lon", "available", "turnout_s")
        return [dict(zip(keys, r, strict=True)) for r in self._fleet.rows]


def fleet(net: Network, units: Any) -> Fleet:
    """Prepare a fleet for repeated :func:`fastest_units` calls (see :class:`Fleet`)."""
    return Fleet(net, units)


def fastest_units(
    net: Network, call: Any, units: Any, *, k: int = 3, hour: float | None = None,
    routes: bool = False,
) -> list[UnitETA]:  # fmt: skip
    """The ``k`` available units that reach ``call`` first, sorted by (ETA, unit id).

    Parameters
    ----------
    net
        The network.
    call
        ``(lat, lon)`` of the call; snapped per vehicle class.
    units
        Sequence of mappings with ``id``, ``vehicle``, ``lat``, ``lon`` and optional ``available``
        (default True) and ``turnout_s`` (default 0), or a pandas DataFrame with those columns.
    k
        How many units; more than are available returns all reachable available units.
    hour
        Clock hour (speed bands, closure windows).
    routes
        Also build each unit's :class:`Route` (off by default to keep the query lean).

    Returns
    -------
    list of UnitETA
        Units that cannot reach the call (closed roads) are left out; an empty list means no
        available unit can reach it.

    Examples
    --------
    >>> from dispatch import load_network
    >>> net = load_network("danang")
    >>> units = [{"id": "A1", "vehicle": "ambulance", "lat": 16.056437, "lon": 108.217138},
    ...          {"id": "A2", "vehicle": "ambulance", "lat": 16.0550, "lon": 108.2050}]
    >>> best = net.fastest_units((16.060909, 108.220849), units, k=1)
    >>> tt = net.travel_times((16.056437, 108.217138), (16.060909, 108.220849))
    >>> [u.unit for u in best], bool(abs(best[0].eta_s - tt[0, 0]) < 1e-9)
    (['A1'], True)
    """
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise FleetError(f"k={k!r} must be a positive integer")
    pt = as_points(call, name="call")
    if len(pt) != 1:
        raise PointError(f"call must be one (lat, lon), got {len(pt)} points")
    fleet = _prepare_fleet(net, units)
    fleet.uses += 1
    if not fleet.by_class:
        raise FleetError("no available unit in the fleet")
    check_points(net, pt, name="call")
    ws = _ws(net)
    tol = net.settings.snap_tolerance_m
    kk = int(k)
    found: list[tuple[float, str, int, int]] = []  # (eta, id, class, member index)
    bound = INF
    lat, lon = float(pt[0, 0]), float(pt[0, 1])
    snapped_any = False
    for c, data in fleet.by_class.items():
        a0, t0, _ = snap_one(net, lat, lon, c, tol)
        if a0 < 0:
            continue
        snapped_any = True
        w = weights(net, VEHICLE_CLASSES[c], hour)
        nc = len(data["arc"])
        kc = min(kk, nc)
        uses = data["w_uses"]
        prev = uses.get(id(w))
        n_w = (prev[1] if prev is not None and prev[0] is w else 0) + 1
        if len(uses) > 16:
            uses.clear()
        uses[id(w)] = (w, n_w)
        if n_w >= TABLE_AFTER_USES and kc < TABLE_K:
            # neither the fleet nor the weights changed lately: look the answer up in the fleet's
            # nearest-units table (built on the third such query, so a closure's next answer
            # never waits for it)
            lab_unit, lab_dist, lab_count = fleet.table(net, c, w, TABLE_K)
            if data["id_rank"] is None:  # rank of each member's id, for ties
                data["id_rank"] = np.argsort(np.argsort([fleet.ids[i] for i in data["members"]]))
            out_u = np.empty(kc, dtype=np.int64)
            out_e = np.empty(kc)
            got = knearest_query(net.arc_tail, net.arc_head, net.arc_twin, w, a0, t0, data["arc"],
                                 data["t"], data["turnout"], data["id_rank"], lab_unit, lab_dist,
                                 lab_count, kc, out_u, out_e)  # fmt: skip
            if got >= 0:
                for m, e in zip(out_u[:got].tolist(), out_e[:got].tolist(), strict=True):
                    found.append((e, fleet.ids[data["members"][m]], c, m))
                found.sort()
                if len(found) >= kk:
                    bound = found[kk - 1][0]
                continue
        best = data["best"]
        if (fleet.uses >= 2 or nc <= CCH_SMALL_FLEET) and _use_cch(net, w, 1):
            # exact ETA of every unit from its CCH labels (a fleet reused, or a few units whose
            # labels cost less than a search reaching as far as they are)
            h = hierarchy.hierarchy(net)
            lab = fleet.labels(net, c, w)  # may advance the workspace stamp: take ours after
            hws = hierarchy.workspace(net)
            hws.cur += 1
            hierarchy.dispatch_cch_kernel(
                net.arc_tail, net.arc_head, net.arc_twin, w, h.rank, a0, t0, data["arc"], data["t"],
                data["turnout"], h.up_ptr, h.up_head, hierarchy.metric(net, w).down_w, h.parent,
                hws.lab, hws.pred, hws.stamp, hws.cur, hws.buf, lab[0], lab[1], lab[2], best,
            )  # fmt: skip
        else:  # a reverse search from the call that stops once the k best are final
            first, nxt, eunit, ecost = fleet.exits(net, c, w)
            dispatch_kernel(net.rev_ptr, net.rev_arc, net.arc_tail, net.arc_head, net.arc_twin, w,
                            a0, t0, data["arc"], data["t"], data["turnout"], ws.dist, ws.stamp,
                            ws.pred, ws.hd, ws.hv, ws.next_stamp(), first, nxt, eunit, ecost, best,
                            kc, bound, data["min_turnout"])  # fmt: skip
        # only the class's k best (and ties) can be among the overall k best
        cutoff = np.partition(best, kk - 1)[kk - 1] if nc > kk else INF
        for m in np.flatnonzero(best <= cutoff).tolist():
            if best[m] < INF:
                found.append((float(best[m]), fleet.ids[data["members"][m]], c, m))
        found.sort()
        if len(found) >= kk:
            bound = found[kk - 1][0]
    if not snapped_any:
        raise PointError(
            f"call ({pt[0, 0]}, {pt[0, 1]}) is farther than {tol:g} m from any road the fleet may use"
        )
    out = []
    for eta, uid, c, j in found[:kk]:
        data = fleet.by_class[c]
        turnout = float(data["turnout"][j])
        r = None
        if routes:
            vehicle = VEHICLE_CLASSES[c]
            w = weights(net, vehicle, hour)
            arc, t, _ = snap_arrays(net, pt, c, tol)
            r = _route(
                net, w, int(data["arc"][j]), float(data["t"][j]), int(arc[0]), float(t[0]), vehicle
            )
        out.append(UnitETA(uid, VEHICLE_CLASSES[c], eta, eta - turnout, turnout, r))
    return out
