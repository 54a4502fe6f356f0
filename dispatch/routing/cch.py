"""A customizable contraction hierarchy (CCH) for many-to-one dispatch queries and matrices.

Three phases, as in Dibbelt, Strasser and Wagner (*Customizable Contraction Hierarchies*, JEA 2016):

1. **Order** (metric-independent, once per network): nested dissection by geometric cuts. At every
   level the nodes are cut along one of four directions at one of three quantiles; the cut's smaller
   boundary is the separator, ranked above both halves. Nodes are then renumbered by rank.
2. **Contraction** (metric-independent): eliminating nodes in rank order adds fill-in edges, giving a
   chordal "upward" graph; the elimination tree's parent of a node is its lowest upward neighbour, and
   every upward neighbour is an ancestor.
3. **Customization** (per weight array, a few milliseconds): each upward edge gets an up and a down
   weight, then every lower triangle is relaxed in rank order. Closures and speed bands only change
   the weight array, so they cost one customization, never a new order.

Queries never use a priority queue: a search from a node visits exactly its ancestors in the
elimination tree, in rank order. Distances are exact (the same shortest paths as Dijkstra, summed in
another order, so equal up to float rounding).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numba
import numpy as np

from dispatch.routing.kernels import reach_seed, same_arc_time
from dispatch.routing.order import contract, count_triangles, order_nodes, undirected_csr

if TYPE_CHECKING:
    from dispatch.roads.network import Network


@dataclass(frozen=True)
class Hierarchy:
    """The metric-independent part of a CCH (rank space: node ``v`` has rank ``rank[v]``)."""

    rank: np.ndarray  # node -> rank
    order: np.ndarray  # rank -> node
    up_ptr: np.ndarray  # CSR over ranks of upward edges
    up_head: np.ndarray  # higher endpoint (rank), ascending within a row
    parent: np.ndarray  # elimination-tree parent (rank), -1 at roots
    up_tail: np.ndarray  # lower endpoint (rank) of each upward edge
    tri_edge: np.ndarray  # per lower triangle, in customization order: the edge closing it
    # (empty when built with triangles=False)
    arc_edge: np.ndarray  # original arc -> upward edge (-1 for self-loops)
    arc_up: np.ndarray  # original arc goes from the lower to the higher rank

    @property
    def n_edges(self) -> int:
        """Number of upward edges (original edges plus fill-in)."""
        return len(self.up_head)


def _nested_dissection(
    n: int, eu: np.ndarray, ev: np.ndarray, x: np.ndarray, y: np.ndarray
) -> np.ndarray:
    """Node order (lowest rank first): nested dissection by inertial flow (:mod:`.order`)."""
    xadj, adj = undirected_csr(n, eu, ev)
    return order_nodes(xadj, adj, x, y)


@numba.njit(cache=True, nogil=True)
def _find_edge(up_ptr: np.ndarray, up_head: np.ndarray, lo: int, hi: int) -> int:
    """Index of the upward edge from rank ``lo`` to rank ``hi`` (binary search in ``lo``'s row)."""
    a = up_ptr[lo]
    b = up_ptr[lo + 1]
    while a < b:
        mid = (a + b) >> 1
        if up_head[mid] < hi:
            a = mid + 1
        else:
            b = mid
    return a


@numba.njit(cache=True, nogil=True)
def _triangles(up_ptr: np.ndarray, up_head: np.ndarray) -> np.ndarray:
    """For every lower triangle (r; i < j in row r) the edge joining up_head[i] and up_head[j].

    The heads after ``i`` in row ``r`` are all in the (ascending) row of ``up_head[i]``: one merge."""
    n = len(up_ptr) - 1
    out = np.empty(count_triangles(up_ptr), dtype=np.int32)
    k = 0
    for r in range(n):
        end = up_ptr[r + 1]
        for i in range(up_ptr[r], end):
            f = up_ptr[up_head[i]]
            for j in range(i + 1, end):
                while up_head[f] < up_head[j]:
                    f += 1
                out[k] = f
                k += 1
    return out


def build_hierarchy(net: Network, *, triangles: bool = True) -> Hierarchy:
    """Order, contract and index a network (metric-independent; cached on the network).

    Time and memory are linear in the upward graph after the order (:mod:`.order`); the stored
    triangle index ``tri_edge`` is the one part that grows with the number of lower triangles
    (4 bytes each: 0.6 GB on an 80k-node grid-like city). With ``triangles=False`` it is left
    empty, for a customization that finds the triangles itself
    (:func:`dispatch.routing.order.customize_lazy_kernel`; :func:`customize_kernel` needs it)."""
    n = net.n_nodes
    u = net.arc_tail.astype(np.int64)
    v = net.arc_head.astype(np.int64)
    loop = u == v
    key = np.unique(np.minimum(u[~loop], v[~loop]) * n + np.maximum(u[~loop], v[~loop]))
    eu, ev = key // n, key % n
    lat0 = float(np.mean(net.node_lat))
    x = (net.node_lon - float(np.mean(net.node_lon))) * math.cos(math.radians(lat0))
    y = net.node_lat - lat0
    xadj, adj = undirected_csr(n, eu, ev)
    order = order_nodes(xadj, adj, x, y)
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    up_ptr, up_head, parent = contract(xadj, adj, order, rank)
    tri_edge = _triangles(up_ptr, up_head) if triangles else np.empty(0, dtype=np.int32)
    up_tail = np.repeat(np.arange(n, dtype=np.int64), np.diff(up_ptr))
    ru, rv = rank[u], rank[v]
    # rows ascending, heads ascending within a row: (tail, head) keys are sorted
    edge_key = up_tail * n + up_head
    arc_edge = np.searchsorted(edge_key, np.minimum(ru, rv) * n + np.maximum(ru, rv))
    arc_edge[loop] = -1
    return Hierarchy(rank, order, up_ptr, up_head, parent, up_tail, tri_edge, arc_edge, ru < rv)


def hierarchy(net: Network) -> Hierarchy:
    """The network's CCH, built on first use."""
    h = net._state.get("cch")
    if h is None:
        h = net._state["cch"] = build_hierarchy(net)
    return h  # type: ignore[no-any-return,unused-ignore]


@numba.njit(cache=True, nogil=True)
def customize_kernel(
    up_ptr: np.ndarray, up_head: np.ndarray, tri_edge: np.ndarray, arc_edge: np.ndarray,
    arc_up: np.ndarray, w: np.ndarray, up_w: np.ndarray, down_w: np.ndarray,
    up_mid: np.ndarray, down_mid: np.ndarray, up_arc: np.ndarray, down_arc: np.ndarray,
) -> None:  # fmt: skip
    """Fill ``up_w`` (lower -> higher rank) and ``down_w`` (higher -> lower) from arc weights ``w``.

    For path unpacking, ``*_arc`` is the original arc behind an edge direction and ``*_mid`` the
    middle rank of the triangle that gave its weight (-1: the original arc itself)."""
    up_w[:] = np.inf
    down_w[:] = np.inf
    up_mid[:] = -1
    down_mid[:] = -1
    up_arc[:] = -1
    down_arc[:] = -1
    for a in range(len(w)):
        e = arc_edge[a]
        if e < 0:
            continue
        if arc_up[a]:
            if w[a] < up_w[e]:
                up_w[e] = w[a]
                up_arc[e] = a
        elif w[a] < down_w[e]:
            down_w[e] = w[a]
            down_arc[e] = a
    k = 0
    n = len(up_ptr) - 1
    for r in range(n):
        for i in range(up_ptr[r], up_ptr[r + 1]):
            for j in range(i + 1, up_ptr[r + 1]):
                f = tri_edge[k]
                k += 1
                # x = up_head[i] < y = up_head[j]: x -> r -> y and y -> r -> x
                c = down_w[i] + up_w[j]
                if c < up_w[f]:
                    up_w[f] = c
                    up_mid[f] = r
                c = down_w[j] + up_w[i]
                if c < down_w[f]:
                    down_w[f] = c
                    down_mid[f] = r


@dataclass
class Metric:
    """A customized CCH for one weight array (``w`` kept to check identity)."""

    w: np.ndarray
    up_w: np.ndarray
    down_w: np.ndarray
    up_mid: np.ndarray
    down_mid: np.ndarray
    up_arc: np.ndarray
    down_arc: np.ndarray


def metric(net: Network, w: np.ndarray) -> Metric:
    """The customization of the network's CCH for weight array ``w`` (cached per array)."""
    h = hierarchy(net)
    cache: dict[int, Metric] = net._state.setdefault("cch_metrics", {})
    m = cache.get(id(w))
    if m is not None and m.w is w:
        return m
    ne = h.n_edges
    m = Metric(w, np.empty(ne), np.empty(ne), np.empty(ne, dtype=np.int64),
               np.empty(ne, dtype=np.int64), np.empty(ne, dtype=np.int64), np.empty(ne, dtype=np.int64))  # fmt: skip
    customize_kernel(h.up_ptr, h.up_head, h.tri_edge, h.arc_edge, h.arc_up, w, m.up_w, m.down_w,
                     m.up_mid, m.down_mid, m.up_arc, m.down_arc)  # fmt: skip
    if len(cache) > 16:
        cache.clear()
    cache[id(w)] = m
    return m


@numba.njit(cache=True, nogil=True)
def ancestor_labels(
    seed_rank: np.ndarray, seed_cost: np.ndarray, up_ptr: np.ndarray, up_head: np.ndarray,
    wdir: np.ndarray, parent: np.ndarray, dist: np.ndarray, pred: np.ndarray, stamp: np.ndarray,
    cur: int, buf: np.ndarray,
) -> int:  # fmt: skip
    """Upward search from seeds: labels ``dist`` on every ancestor (stamped ``cur``), and ``pred``,
    the edge each label came by (-1 at a seed).

    ``wdir`` is ``up_w`` for a forward search (leaving the seeds) or ``down_w`` for a backward one
    (reaching them). The ancestors are left in ``buf[:count]`` in ascending rank; returns count.
    """
    count = 0
    for s in range(len(seed_rank)):
        r = seed_rank[s]
        if r < 0 or not seed_cost[s] < np.inf:
            continue
        while r >= 0 and stamp[r] != cur:
            stamp[r] = cur
            dist[r] = np.inf
            pred[r] = -1
            buf[count] = r
            count += 1
            r = parent[r]
    for s in range(len(seed_rank)):
        r = seed_rank[s]
        if r >= 0 and seed_cost[s] < dist[r]:
            dist[r] = seed_cost[s]
    buf[:count].sort()
    for i in range(count):
        r = buf[i]
        d = dist[r]
        if not d < np.inf:
            continue
        for e in range(up_ptr[r], up_ptr[r + 1]):
            c = d + wdir[e]
            x = up_head[e]
            if c < dist[x]:
                dist[x] = c
                pred[x] = e
    return count


@numba.njit(cache=True, nogil=True)
def unit_labels_kernel(
    seed_rank: np.ndarray, seed_cost: np.ndarray, up_ptr: np.ndarray, up_head: np.ndarray,
    up_w: np.ndarray, parent: np.ndarray, dist: np.ndarray, pred: np.ndarray, stamp: np.ndarray,
    cur0: int, buf: np.ndarray, out_ptr: np.ndarray, max_labels: int,
) -> tuple[np.ndarray, np.ndarray, int]:  # fmt: skip
    """Forward labels of each unit (row of seeds): CSR ``out_ptr`` -> (ranks, dists); returns next stamp."""
    nu = seed_rank.shape[0]
    ranks = np.empty(max_labels, dtype=np.int64)
    dists = np.empty(max_labels)
    k = 0
    cur = cur0
    out_ptr[0] = 0
    for u in range(nu):
        cur += 1
        count = ancestor_labels(seed_rank[u], seed_cost[u], up_ptr, up_head, up_w, parent, dist,
                                pred, stamp, cur, buf)  # fmt: skip
        if k + count > len(ranks):
            grow = max(len(ranks) * 2, k + count)
            r2 = np.empty(grow, dtype=np.int64)
            d2 = np.empty(grow)
            r2[:k] = ranks[:k]
            d2[:k] = dists[:k]
            ranks = r2
            dists = d2
        for i in range(count):
            r = buf[i]
            if dist[r] < np.inf:
                ranks[k] = r
                dists[k] = dist[r]
                k += 1
        out_ptr[u + 1] = k
    return ranks[:k], dists[:k], cur


@numba.njit(cache=True, nogil=True)
def many_to_one_kernel(
    call_rank: np.ndarray, call_cost: np.ndarray, up_ptr: np.ndarray, up_head: np.ndarray,
    down_w: np.ndarray, parent: np.ndarray, dist: np.ndarray, pred: np.ndarray, stamp: np.ndarray,
    cur: int, buf: np.ndarray, unit_ptr: np.ndarray, unit_rank: np.ndarray, unit_dist: np.ndarray,
    extra: np.ndarray, out: np.ndarray,
) -> None:  # fmt: skip
    """ETA of every unit to one call: backward labels from the call, then each unit's labels.

    ``out[u] = min(out[u], extra[u] + min_x(unit_dist[x] + dist[x]))`` over the unit's ancestors x
    that are also the call's ancestors (``out`` pre-filled with same-arc candidates)."""
    ancestor_labels(call_rank, call_cost, up_ptr, up_head, down_w, parent, dist, pred, stamp, cur,
                    buf)  # fmt: skip
    for u in range(len(unit_ptr) - 1):
        best = np.inf
        for i in range(unit_ptr[u], unit_ptr[u + 1]):
            r = unit_rank[i]
            if stamp[r] == cur:
                c = unit_dist[i] + dist[r]
                if c < best:
                    best = c
        c = best + extra[u]
        if c < out[u]:
            out[u] = c


class Workspace:
    """Scratch arrays for the CCH kernels of one network (stamped: never cleared)."""

    def __init__(self, n: int) -> None:
        self.lab = np.empty(n)
        self.stamp = np.zeros(n, dtype=np.int64)
        self.buf = np.empty(n, dtype=np.int64)
        self.d = np.empty(n)
        self.cur = 0
        # point-to-point paths: a backward side of their own, and the arcs found
        self.pred = np.empty(n, dtype=np.int64)
        self.lab_b = np.empty(n)
        self.pred_b = np.empty(n, dtype=np.int64)
        self.stamp_b = np.zeros(n, dtype=np.int64)
        self.buf2 = np.empty(2 * n + 2, dtype=np.int64)
        self.arcs = np.empty(4 * n + 16, dtype=np.int64)


def workspace(net: Network) -> Workspace:
    """The network's CCH workspace."""
    ws = net._state.get("cch_ws")
    if ws is None:
        ws = net._state["cch_ws"] = Workspace(net.n_nodes)
    return ws  # type: ignore[no-any-return,unused-ignore]


def to_rank(h: Hierarchy, nodes: np.ndarray) -> np.ndarray:
    """Node ids (-1 allowed) to ranks (-1 kept)."""
    return np.where(nodes >= 0, h.rank[np.maximum(nodes, 0)], -1)


@numba.njit(cache=True, nogil=True)
def phast_block_kernel(
    src_rank: np.ndarray, src_cost: np.ndarray, dst_rank: np.ndarray, dst_cost: np.ndarray,
    up_ptr: np.ndarray, up_head: np.ndarray, w_up: np.ndarray, w_down: np.ndarray,
    parent: np.ndarray, lab: np.ndarray, pred: np.ndarray, stamp: np.ndarray, cur0: int,
    buf: np.ndarray, d: np.ndarray, out: np.ndarray,
) -> int:  # fmt: skip
    """One-to-all by an upward search then a downward sweep in rank order (PHAST), for a block of
    sources at once: ``d`` is (n, block), one column per
    source, so that each downward edge is read once per block and the inner loop runs over
    contiguous memory. Forward: ``w_up = up_w``, ``w_down = down_w``; backward (distances *to* the
    sources): swap them. ``out[s, t] = min_j d[dst_rank[t, j], s] + dst_cost[t, j]``. Returns the
    next stamp."""
    n = len(up_ptr) - 1
    ns = src_rank.shape[0]
    cur = cur0
    d[:, :ns] = np.inf
    for s in range(ns):
        cur += 1
        count = ancestor_labels(src_rank[s], src_cost[s], up_ptr, up_head, w_up, parent, lab, pred,
                                stamp, cur, buf)  # fmt: skip
        for i in range(count):
            r = buf[i]
            d[r, s] = lab[r]
    for r in range(n - 1, -1, -1):
        row = d[r]
        for e in range(up_ptr[r], up_ptr[r + 1]):
            xr = d[up_head[e]]
            we = w_down[e]
            for s in range(ns):
                c = xr[s] + we
                if c < row[s]:
                    row[s] = c
    for t in range(dst_rank.shape[0]):
        for s in range(ns):
            best = np.inf
            for j in range(dst_rank.shape[1]):
                r = dst_rank[t, j]
                if r >= 0:
                    c = d[r, s] + dst_cost[t, j]
                    if c < best:
                        best = c
            out[s, t] = best
    return cur


#: Sources swept together by :func:`phast_block_kernel` (memory: n x block floats).
PHAST_BLOCK = 64


def matrix(net: Network, m: Metric, src_nodes: np.ndarray, src_cost: np.ndarray,
           dst_nodes: np.ndarray, dst_cost: np.ndarray, *, backward: bool = False) -> np.ndarray:  # fmt: skip
    """PHAST matrix: ``out[s, t]`` from source seeds to target seeds (node ids, costs, (k, 3) each).

    With ``backward`` the searches run from the targets' side: ``out[s, t]`` is then the distance
    from target seeds ``t`` to source seeds ``s`` (the caller transposes)."""
    h = hierarchy(net)
    ws = workspace(net)
    w_up, w_down = (m.down_w, m.up_w) if backward else (m.up_w, m.down_w)
    out = np.empty((len(src_nodes), len(dst_nodes)))
    src_rank, dst_rank = to_rank(h, src_nodes), to_rank(h, dst_nodes)
    block = np.empty((net.n_nodes, min(PHAST_BLOCK, max(len(src_nodes), 1))))
    for lo in range(0, len(src_nodes), PHAST_BLOCK):
        hi = min(lo + PHAST_BLOCK, len(src_nodes))
        ws.cur = phast_block_kernel(src_rank[lo:hi], src_cost[lo:hi], dst_rank, dst_cost, h.up_ptr,
                                    h.up_head, w_up, w_down, h.parent, ws.lab, ws.pred, ws.stamp,
                                    ws.cur, ws.buf, block, out[lo:hi])  # fmt: skip
    return out


def unit_labels(net: Network, m: Metric, leave_nodes: np.ndarray, leave_cost: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """Forward labels of units on their ancestors: ``(ptr, ranks, dists)``, CSR by unit."""
    h = hierarchy(net)
    ws = workspace(net)
    ptr = np.empty(len(leave_nodes) + 1, dtype=np.int64)
    ranks, dists, ws.cur = unit_labels_kernel(to_rank(h, leave_nodes), leave_cost, h.up_ptr,
                                              h.up_head, m.up_w, h.parent, ws.lab, ws.pred,
                                              ws.stamp, ws.cur, ws.buf, ptr,
                                              64 * len(leave_nodes) + 64)  # fmt: skip
    return ptr, ranks, dists


@numba.njit(cache=True, nogil=True)
def dispatch_cch_kernel(
    tail: np.ndarray, head: np.ndarray, twin: np.ndarray, w: np.ndarray, rank: np.ndarray,
    call_arc: int, call_t: float, unit_arc: np.ndarray, unit_t: np.ndarray, turnout: np.ndarray,
    up_ptr: np.ndarray, up_head: np.ndarray, down_w: np.ndarray, parent: np.ndarray,
    dist: np.ndarray, pred: np.ndarray, stamp: np.ndarray, cur: int, buf: np.ndarray,
    unit_ptr: np.ndarray, unit_rank: np.ndarray, unit_dist: np.ndarray, out: np.ndarray,
) -> None:  # fmt: skip
    """Exact ETA of every unit to a call on arc ``call_arc`` at fraction ``call_t``.

    The call's reach seeds (tail of its arc, or head by the twin; the node itself at an end),
    same-arc candidates, then :func:`many_to_one_kernel` on the units' forward labels."""
    seed_rank = np.empty(3, dtype=np.int64)
    seed_cost = np.empty(3)
    for j in range(3):
        v, seed_cost[j] = reach_seed(tail, head, twin, w, call_arc, call_t, j)
        seed_rank[j] = rank[v]
    for u in range(len(unit_arc)):
        x = np.inf
        if unit_arc[u] == call_arc:
            x = same_arc_time(twin, w, call_arc, unit_t[u], call_t)
        out[u] = x + turnout[u]
    many_to_one_kernel(seed_rank, seed_cost, up_ptr, up_head, down_w, parent, dist, pred, stamp, cur, buf,
                       unit_ptr, unit_rank, unit_dist, turnout, out)  # fmt: skip


@numba.njit(cache=True, nogil=True)
def _unpack(
    e: int, up: bool, lo: int, up_ptr: np.ndarray, up_head: np.ndarray, up_mid: np.ndarray,
    down_mid: np.ndarray, up_arc: np.ndarray, down_arc: np.ndarray, out: np.ndarray, k: int,
) -> int:  # fmt: skip
    """Append to ``out[k:]`` the original arcs behind edge ``e`` (lower end ``lo``) driven upward
    (``lo -> head``) or downward; returns the new length. Explicit stack, driving order."""
    cap = 64
    stack_e = np.empty(cap, dtype=np.int64)
    stack_up = np.empty(cap, dtype=np.bool_)
    stack_lo = np.empty(cap, dtype=np.int64)
    stack_e[0] = e
    stack_up[0] = up
    stack_lo[0] = lo
    top = 1
    while top > 0:
        top -= 1
        e = stack_e[top]
        up = stack_up[top]
        lo = stack_lo[top]
        hi = up_head[e]
        mid = up_mid[e] if up else down_mid[e]
        if mid < 0:
            out[k] = up_arc[e] if up else down_arc[e]
            k += 1
            continue
        e_lo = _find_edge(up_ptr, up_head, mid, lo)  # edge (mid, lo)
        e_hi = _find_edge(up_ptr, up_head, mid, hi)  # edge (mid, hi)
        if top + 2 > cap:
            cap *= 2
            se = np.empty(cap, dtype=np.int64)
            su = np.empty(cap, dtype=np.bool_)
            sl = np.empty(cap, dtype=np.int64)
            se[:top] = stack_e[:top]
            su[:top] = stack_up[:top]
            sl[:top] = stack_lo[:top]
            stack_e, stack_up, stack_lo = se, su, sl
        # push in reverse driving order
        if up:  # lo -> mid (down along e_lo), then mid -> hi (up along e_hi)
            stack_e[top], stack_up[top], stack_lo[top] = e_hi, True, mid
            top += 1
            stack_e[top], stack_up[top], stack_lo[top] = e_lo, False, mid
            top += 1
        else:  # hi -> mid (down along e_hi), then mid -> lo (up along e_lo)
            stack_e[top], stack_up[top], stack_lo[top] = e_lo, True, mid
            top += 1
            stack_e[top], stack_up[top], stack_lo[top] = e_hi, False, mid
            top += 1
    return k


@numba.njit(cache=True, nogil=True)
def p2p_path_kernel(
    src_rank: np.ndarray, src_cost: np.ndarray, dst_rank: np.ndarray, dst_cost: np.ndarray,
    up_ptr: np.ndarray, up_head: np.ndarray, up_tail: np.ndarray, up_w: np.ndarray,
    down_w: np.ndarray, up_mid: np.ndarray, down_mid: np.ndarray, up_arc: np.ndarray,
    down_arc: np.ndarray, parent: np.ndarray, dist_f: np.ndarray, pred_f: np.ndarray,
    stamp_f: np.ndarray, dist_b: np.ndarray, pred_b: np.ndarray, stamp_b: np.ndarray, cur: int,
    buf: np.ndarray, out_arcs: np.ndarray,
) -> tuple[float, int, int, int]:  # fmt: skip
    """Fastest path between seed sets by the CCH: ``(eta, n_arcs, start rank, end rank)``; the
    original arcs in driving order are in ``out_arcs[:n_arcs]``. ``(inf, 0, -1, -1)`` if none."""
    nf = ancestor_labels(src_rank, src_cost, up_ptr, up_head, up_w, parent, dist_f, pred_f, stamp_f,
                      cur, buf)  # fmt: skip
    ancestor_labels(dst_rank, dst_cost, up_ptr, up_head, down_w, parent, dist_b, pred_b, stamp_b, cur,
                 buf[nf:])  # fmt: skip
    best = np.inf
    meet = -1
    for i in range(nf):
        r = buf[i]
        if stamp_b[r] == cur:
            c = dist_f[r] + dist_b[r]
            if c < best:
                best = c
                meet = r
    if meet < 0:
        return np.inf, 0, -1, -1
    # forward half: edges from the meeting node back down to a source seed
    nfe = 0
    r = meet
    while pred_f[r] >= 0:
        e = pred_f[r]
        buf[nfe] = e
        nfe += 1
        r = up_tail[e]
    start = r
    k = 0
    for i in range(nfe - 1, -1, -1):
        e = buf[i]
        k = _unpack(e, True, up_tail[e], up_ptr, up_head, up_mid, down_mid, up_arc, down_arc,
                    out_arcs, k)  # fmt: skip
    r = meet
    while pred_b[r] >= 0:
        e = pred_b[r]
        k = _unpack(e, False, up_tail[e], up_ptr, up_head, up_mid, down_mid, up_arc, down_arc,
                    out_arcs, k)  # fmt: skip
        r = up_tail[e]
    return best, k, start, r


def path(net: Network, m: Metric, src_nodes: np.ndarray, src_cost: np.ndarray, dst_nodes: np.ndarray,
         dst_cost: np.ndarray) -> tuple[float, np.ndarray, int, int]:  # fmt: skip
    """Fastest path between two seed sets (node ids, costs): ``(eta, arcs, start node, end node)``."""
    h = hierarchy(net)
    ws = workspace(net)
    ws.cur += 1
    eta, k, start, end = p2p_path_kernel(
        to_rank(h, src_nodes), src_cost, to_rank(h, dst_nodes), dst_cost, h.up_ptr, h.up_head,
        h.up_tail, m.up_w, m.down_w, m.up_mid, m.down_mid, m.up_arc, m.down_arc, h.parent, ws.lab,
        ws.pred, ws.stamp, ws.lab_b, ws.pred_b, ws.stamp_b, ws.cur, ws.buf2, ws.arcs,
    )  # fmt: skip
    if start < 0:
        return eta, ws.arcs[:0].copy(), -1, -1
    return eta, ws.arcs[:k].copy(), int(h.order[start]), int(h.order[end])
