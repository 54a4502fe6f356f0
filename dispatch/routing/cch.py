"""A customizable contraction hierarchy (CCH) for many-to-one dispatch queries and matrices.

Three phases, as in Dibbelt, Strasser and Wagner (*Customizable Contraction Hierarchies*, JEA 2016):

1. **Order** (metric-independent, once per network): nested dissection by inertial flow
   (:mod:`dispatch.routing.order`): minimum vertex separators from unit-capacity max flows between
   the two ends of the nodes projected on a few directions, ranked above both halves.
2. **Contraction** (metric-independent): eliminating nodes in rank order adds fill-in edges, giving a
   chordal "upward" graph; the elimination tree's parent of a node is its lowest upward neighbour, and
   every upward neighbour is an ancestor.
3. **Customization** (per weight array, a few milliseconds): each upward edge gets an up and a down
   weight, then every lower triangle is relaxed in rank order (found by merging two sorted rows, as
   RoutingKit does: no triangle index is stored, memory stays linear in the upward graph). Closures and speed bands only change
   the weight array, so they cost one customization, never a new order.

Queries never use a priority queue: a search from a node visits exactly its ancestors in the
elimination tree, in rank order. Distances are exact (the same shortest paths as Dijkstra, summed in
another order, so equal up to float rounding).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import NamedTuple

import numpy as np

from dispatch.progress import task
from dispatch.routing import order as _order
from dispatch.routing.kernels import (
    ArcEnds,
    Packed,
    UnitPositions,
    jit,
    leave_seed,
    reach_seed,
    same_arc_time,
)
from dispatch.routing.order import (
    contract,
    customize_arcs_kernel,
    customize_rows_kernel,
    order_nodes,
    undirected_csr,
)

#: Version of the hierarchy's construction (projection, order, contraction): part of the key of a
#: cached hierarchy (:func:`hierarchy_settings`). Bump it when a change gives another order.
HIERARCHY_VERSION = 1

#: Graphs from this many nodes report the progress of their ordering and customization
#: (:func:`dispatch.progress.task`): below it both take well under 2 s.
PROGRESS_MIN_NODES = 50_000


@dataclass(frozen=True)
class Hierarchy:
    """The metric-independent part of a CCH (rank space: node ``v`` has rank ``rank[v]``)."""

    rank: np.ndarray  # node -> rank
    order: np.ndarray  # rank -> node
    up_ptr: np.ndarray  # CSR over ranks of upward edges
    up_head: np.ndarray  # higher endpoint (rank), ascending within a row
    parent: np.ndarray  # elimination-tree parent (rank), -1 at roots
    up_tail: np.ndarray  # lower endpoint (rank) of each upward edge
    arc_edge: np.ndarray  # original arc -> upward edge (-1 for self-loops)
    arc_up: np.ndarray  # original arc goes from the lower to the higher rank

    @property
    def n_edges(self) -> int:
        """Number of upward edges (original edges plus fill-in)."""
        return len(self.up_head)

    @cached_property
    def up(self) -> Up:
        """The upward graph as the kernels take it."""
        return Up(self.up_ptr, self.up_head, self.up_tail, self.parent)

    @cached_property
    def up_p(self) -> Packed:
        """:attr:`up` as an entry kernel takes it."""
        return tuple(self.up)


class Up(NamedTuple):
    """The upward graph in rank space: CSR ``ptr``/``head`` (ascending heads), each edge's lower end
    ``tail``, and the elimination-tree ``parent`` of each rank (-1 at roots)."""

    ptr: np.ndarray
    head: np.ndarray
    tail: np.ndarray
    parent: np.ndarray


@jit
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
    return int(a)


def hierarchy_settings() -> dict[str, object]:
    """What a hierarchy depends on besides the graph: the construction's version and the order's
    settings (:data:`dispatch.routing.order.BALANCES`...). A cached hierarchy is keyed by them."""
    return {
        "version": HIERARCHY_VERSION,
        "balances": [float(b) for b in _order.BALANCES],
        "balance_max_nodes": [int(b) for b in _order.BALANCE_MAX_NODES],
    }


def build_hierarchy(
    tail: np.ndarray, head: np.ndarray, node_lat: np.ndarray, node_lon: np.ndarray
) -> Hierarchy:
    """Order, contract and index a graph given by its arcs and node coordinates (metric-independent).

    Time and memory are linear in the upward graph after the order (:mod:`.order`: nested
    dissection by inertial flow); no triangle index is stored (customization finds each lower
    triangle by merging two sorted rows, :func:`dispatch.routing.order.customize_rows_kernel`).
    On graphs of :data:`PROGRESS_MIN_NODES` nodes or more the ordering reports its progress
    (nodes placed) to :func:`dispatch.progress.task`."""
    n = len(node_lat)
    u = tail.astype(np.int64)
    v = head.astype(np.int64)
    loop = u == v
    key = np.unique(np.minimum(u[~loop], v[~loop]) * n + np.maximum(u[~loop], v[~loop]))
    eu, ev = key // n, key % n
    lat0 = float(np.mean(node_lat))
    x = (node_lon - float(np.mean(node_lon))) * math.cos(math.radians(lat0))
    y = node_lat - lat0
    xadj, adj = undirected_csr(n, eu, ev)
    if n >= PROGRESS_MIN_NODES:
        with task("ordering the road graph (CCH)", total=n, unit="node") as p:
            order = order_nodes(xadj, adj, x, y, progress=p)
    else:
        order = order_nodes(xadj, adj, x, y)
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    up_ptr, up_head, _ = contract(xadj, adj, order, rank)
    return hierarchy_from_arrays(tail, head, order, up_ptr, up_head)


def hierarchy_arrays(h: Hierarchy) -> dict[str, np.ndarray]:
    """The arrays a hierarchy is rebuilt from (:func:`hierarchy_from_arrays`), for a cache file:
    the order and the upward graph, int32 where the values fit (half the bytes on disk)."""

    def small(a: np.ndarray) -> np.ndarray:
        fits = len(a) == 0 or (int(a.min()) >= -(2**31) and int(a.max()) < 2**31)
        return a.astype(np.int32) if fits else a

    return {"order": small(h.order), "up_ptr": small(h.up_ptr), "up_head": small(h.up_head)}


def hierarchy_from_arrays(
    tail: np.ndarray, head: np.ndarray, order: np.ndarray, up_ptr: np.ndarray,
    up_head: np.ndarray,
) -> Hierarchy:  # fmt: skip
    """The hierarchy of the graph with arcs ``tail -> head`` from its order (rank -> node) and
    upward graph (CSR over ranks, heads ascending within a row); the rest is derived.

    Raises ``ValueError`` when the arrays cannot be the hierarchy of this graph (sizes, an order
    that is not a permutation, a row not ascending or not above its rank, an arc whose two ends
    share no upward edge)."""
    n = len(order)
    ne = len(up_head)
    if n >= 2**31:
        raise ValueError(f"hierarchy: {n} nodes, more than int32 ranks can number")
    rank = np.empty(n, dtype=np.int64)
    order64 = np.empty(n, dtype=np.int64)
    ptr64 = np.empty(n + 1, dtype=np.int64)
    # per-edge arrays in int32 (ranks < 2**31): the hierarchy's largest arrays, half the memory
    head32 = np.empty(ne, dtype=np.int32)
    parent = np.empty(n, dtype=np.int64)
    up_tail = np.empty(ne, dtype=np.int32)
    arc_edge = np.empty(len(tail), dtype=np.int64)
    arc_up = np.empty(len(tail), dtype=np.bool_)
    small = [np.asarray(a, dtype=np.int32) if a.dtype != np.int32 and _fits32(a) else a
             for a in (order, up_ptr, up_head)]  # one numba specialisation: int32 as stored  # fmt: skip
    err = _index_kernel(small[0], small[1], small[2], tail, head, rank, order64, ptr64, head32,
                        parent, up_tail, arc_edge, arc_up)  # fmt: skip
    if err:
        raise ValueError(f"hierarchy: {_INDEX_ERRORS[err]}")
    out = Hierarchy(rank, order64, ptr64, head32, parent, up_tail, arc_edge, arc_up)
    for arr in (rank, order64, ptr64, head32, parent, up_tail, arc_edge, arc_up):
        arr.flags.writeable = False
    return out


def _fits32(a: np.ndarray) -> bool:
    return len(a) == 0 or (int(a.min()) >= -(2**31) and int(a.max()) < 2**31)


_INDEX_ERRORS = {
    1: "the upward graph does not match the order",
    2: "the order is not a permutation of the nodes",
    3: "the upward rows are not in order",
    4: "an upward row is not ascending above its rank",
    5: "the graph has more nodes than the order",
    6: "an arc of the graph has no upward edge",
}


@jit
def _index_kernel(
    order_in: np.ndarray, ptr_in: np.ndarray, head_in: np.ndarray, tail: np.ndarray,
    head: np.ndarray, rank: np.ndarray, order: np.ndarray, up_ptr: np.ndarray,
    up_head: np.ndarray, parent: np.ndarray, up_tail: np.ndarray, arc_edge: np.ndarray,
    arc_up: np.ndarray,
) -> int:  # fmt: skip
    """Check a stored order and upward graph and derive the rest of the hierarchy in one pass;
    returns 0, or the code of the first problem found (:data:`_INDEX_ERRORS`)."""
    n = len(order_in)
    ne = len(head_in)
    if len(ptr_in) != n + 1 or ptr_in[0] != 0 or ptr_in[n] != ne:
        return 1
    for v in range(n):
        rank[v] = -1
    for r in range(n):
        v = order_in[r]
        if v < 0 or v >= n or rank[v] >= 0:
            return 2
        rank[v] = r
        order[r] = v
    up_ptr[0] = 0
    for r in range(n):
        a = ptr_in[r]
        b = ptr_in[r + 1]
        if b < a:
            return 3
        up_ptr[r + 1] = b
        parent[r] = head_in[a] if b > a else -1  # the lowest upward neighbour
        prev = r
        for i in range(a, b):
            x = head_in[i]
            if x <= prev or x >= n:
                return 4
            prev = x
            up_head[i] = x
            up_tail[i] = r
    for k in range(len(tail)):
        u = tail[k]
        v = head[k]
        if u < 0 or u >= n or v < 0 or v >= n:
            return 5
        if u == v:  # a loop: no edge
            arc_edge[k] = -1
            arc_up[k] = False
            continue
        ru = rank[u]
        rv = rank[v]
        lo = min(ru, rv)
        hi = max(ru, rv)
        a = up_ptr[lo]
        b = up_ptr[lo + 1]
        while a < b:  # the edge (lo, hi): bisection in lo's row
            mid = (a + b) >> 1
            if up_head[mid] < hi:
                a = mid + 1
            else:
                b = mid
        if a >= up_ptr[lo + 1] or up_head[a] != hi:
            return 6
        arc_edge[k] = a
        arc_up[k] = ru < rv
    return 0


class Metric(NamedTuple):
    """A customized CCH for one weight array: ``up_w`` (lower -> higher rank) and ``down_w``
    (higher -> lower) per upward edge; for path unpacking, ``*_arc`` is the original arc behind an
    edge direction and ``*_mid`` the middle rank of the triangle that gave its weight (-1: the arc)."""

    up_w: np.ndarray
    down_w: np.ndarray
    up_mid: np.ndarray
    down_mid: np.ndarray
    up_arc: np.ndarray
    down_arc: np.ndarray


def customize(h: Hierarchy, w: np.ndarray) -> Metric:
    """The customization of a hierarchy for weight array ``w`` (read-only arrays).

    On graphs of :data:`PROGRESS_MIN_NODES` nodes or more the rows are relaxed in about 100 steps
    of equal work (lower triangles) that report to :func:`dispatch.progress.task`."""
    ne = h.n_edges
    n = len(h.rank)
    # middle ranks and arcs in int32 (ranks and arc ids < 2**31): 24 bytes an edge less than int64
    m = Metric(np.empty(ne), np.empty(ne), np.empty(ne, dtype=np.int32),
               np.empty(ne, dtype=np.int32), np.empty(ne, dtype=np.int32),
               np.empty(ne, dtype=np.int32))  # fmt: skip
    customize_arcs_kernel(h.arc_edge, h.arc_up, w, *m)
    if n < PROGRESS_MIN_NODES:
        customize_rows_kernel(h.up_ptr, h.up_head, m.up_w, m.down_w, m.up_mid, m.down_mid, 0, n)
    else:
        deg = np.diff(h.up_ptr)
        work = np.cumsum(deg * (deg - 1) // 2 + 1)
        steps = np.unique(np.searchsorted(work, np.linspace(0, work[-1], 101)[1:-1]))
        bounds = [0, *steps.tolist(), n]
        with task("customizing the CCH for new weights", total=int(work[-1]),
                  unit="triangle") as p:  # fmt: skip
            for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
                if hi > lo:
                    customize_rows_kernel(h.up_ptr, h.up_head, m.up_w, m.down_w, m.up_mid,
                                          m.down_mid, lo, hi)  # fmt: skip
                    p.update(int(work[hi - 1] - (work[lo - 1] if lo else 0)))
    for a in m:
        a.flags.writeable = False
    return m


class Side(NamedTuple):
    """Labels of one upward search: distance, the edge each came by, stamp (``== cur``: valid)."""

    dist: np.ndarray
    pred: np.ndarray
    stamp: np.ndarray


@jit
def ancestor_labels(
    seed_rank: np.ndarray, seed_cost: np.ndarray, up: Up, wdir: np.ndarray, side: Side, cur: int,
    buf: np.ndarray,
) -> int:  # fmt: skip
    """Upward search from seeds: labels ``side.dist`` on every ancestor (stamped ``cur``), and
    ``side.pred``, the edge each label came by (-1 at a seed).

    ``wdir`` is ``up_w`` for a forward search (leaving the seeds) or ``down_w`` for a backward one
    (reaching them). The ancestors are left in ``buf[:count]`` in ascending rank; returns count.
    """
    dist, pred, stamp = side.dist, side.pred, side.stamp
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
            r = up.parent[r]
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
        for e in range(up.ptr[r], up.ptr[r + 1]):
            c = d + wdir[e]
            x = up.head[e]
            if c < dist[x]:
                dist[x] = c
                pred[x] = e
    return count


class CchScratch(NamedTuple):
    """One thread's scratch arrays for the CCH kernels (stamped: never cleared)."""

    fwd: Side
    bwd: Side
    buf: np.ndarray
    buf2: np.ndarray
    arcs: np.ndarray


class Workspace:
    """A thread's CCH scratch arrays and its current stamp."""

    def __init__(self, n: int) -> None:
        self.s = CchScratch(
            Side(np.empty(n), np.empty(n, dtype=np.int64), np.zeros(n, dtype=np.int64)),
            Side(np.empty(n), np.empty(n, dtype=np.int64), np.zeros(n, dtype=np.int64)),
            np.empty(n, dtype=np.int64),
            np.empty(2 * n + 2, dtype=np.int64),
            np.empty(4 * n + 16, dtype=np.int64),
        )
        self.fwd_p: Packed = tuple(self.s.fwd)
        self.bwd_p: Packed = tuple(self.s.bwd)
        self.cur = 0


class UnitLabels(NamedTuple):
    """Forward labels of units on their ancestors, CSR by unit: ``rank[ptr[u]:ptr[u + 1]]``, ``dist``."""

    ptr: np.ndarray
    rank: np.ndarray
    dist: np.ndarray


@jit
def unit_labels_kernel(
    seed_rank: np.ndarray, seed_cost: np.ndarray, up_: Packed, up_w: np.ndarray, side_: Packed, cur0: int,
    buf: np.ndarray, out_ptr: np.ndarray, max_labels: int,
) -> tuple[np.ndarray, np.ndarray, int]:  # fmt: skip
    """Forward labels of each unit (row of seeds): CSR ``out_ptr`` -> (ranks, dists); returns next stamp."""
    up = Up(*up_)
    side = Side(*side_)
    nu = seed_rank.shape[0]
    ranks = np.empty(max_labels, dtype=np.int64)
    dists = np.empty(max_labels)
    k = 0
    cur = cur0
    out_ptr[0] = 0
    for u in range(nu):
        cur += 1
        count = ancestor_labels(seed_rank[u], seed_cost[u], up, up_w, side, cur, buf)
        if k + count > len(ranks):
            grow = max(len(ranks) * 2, k + count)
            r2 = np.empty(grow, dtype=np.int64)
            d2 = np.empty(grow)
            for i in range(k):
                r2[i] = ranks[i]
                d2[i] = dists[i]
            ranks = r2
            dists = d2
        for i in range(count):
            r = buf[i]
            if side.dist[r] < np.inf:
                ranks[k] = r
                dists[k] = side.dist[r]
                k += 1
        out_ptr[u + 1] = k
    return ranks[:k], dists[:k], cur


@jit
def many_to_one_kernel(
    call_rank: np.ndarray, call_cost: np.ndarray, up: Up, down_w: np.ndarray, side: Side, cur: int,
    buf: np.ndarray, lab: UnitLabels, extra: np.ndarray, out: np.ndarray,
) -> None:  # fmt: skip
    """ETA of every unit to one call: backward labels from the call, then each unit's labels.

    ``out[u] = min(out[u], extra[u] + min_x(lab.dist[x] + dist[x]))`` over the unit's ancestors x
    that are also the call's ancestors (``out`` pre-filled with same-arc candidates)."""
    ancestor_labels(call_rank, call_cost, up, down_w, side, cur, buf)
    for u in range(len(lab.ptr) - 1):
        best = np.inf
        for i in range(lab.ptr[u], lab.ptr[u + 1]):
            r = lab.rank[i]
            if side.stamp[r] == cur:
                c = lab.dist[i] + side.dist[r]
                if c < best:
                    best = c
        c = best + extra[u]
        if c < out[u]:
            out[u] = c


def to_rank(h: Hierarchy, nodes: np.ndarray) -> np.ndarray:
    """Node ids (-1 allowed) to ranks (-1 kept)."""
    return np.where(nodes >= 0, h.rank[np.maximum(nodes, 0)], -1)


@jit
def phast_block_kernel(
    src_rank: np.ndarray, src_cost: np.ndarray, dst_rank: np.ndarray, dst_cost: np.ndarray,
    up_: Packed, w_up: np.ndarray, w_down: np.ndarray, side_: Packed, cur0: int, buf: np.ndarray,
    d: np.ndarray, out: np.ndarray,
) -> int:  # fmt: skip
    """One-to-all by an upward search then a downward sweep in rank order (PHAST), for a block of
    sources at once: ``d`` is (n, block), one column per source, so that each downward edge is read
    once per block and the inner loop runs over contiguous memory. Forward: ``w_up = up_w``,
    ``w_down = down_w``; backward (distances *to* the sources): swap them.
    ``out[s, t] = min_j d[dst_rank[t, j], s] + dst_cost[t, j]``. Returns the next stamp."""
    up = Up(*up_)
    side = Side(*side_)
    n = len(up.ptr) - 1
    ns = src_rank.shape[0]
    cur = cur0
    d[:, :ns] = np.inf
    for s in range(ns):
        cur += 1
        count = ancestor_labels(src_rank[s], src_cost[s], up, w_up, side, cur, buf)
        for i in range(count):
            r = buf[i]
            d[r, s] = side.dist[r]
    for r in range(n - 1, -1, -1):
        row = d[r]
        for e in range(up.ptr[r], up.ptr[r + 1]):
            xr = d[up.head[e]]
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


def matrix(h: Hierarchy, m: Metric, ws: Workspace, src_nodes: np.ndarray, src_cost: np.ndarray,
           dst_nodes: np.ndarray, dst_cost: np.ndarray, *, backward: bool = False) -> np.ndarray:  # fmt: skip
    """PHAST matrix: ``out[s, t]`` from source seeds to target seeds (node ids, costs, (k, 3) each).

    With ``backward`` the searches run from the targets' side: ``out[s, t]`` is then the distance
    from target seeds ``t`` to source seeds ``s`` (the caller transposes)."""
    w_up, w_down = (m.down_w, m.up_w) if backward else (m.up_w, m.down_w)
    out = np.empty((len(src_nodes), len(dst_nodes)))
    src_rank, dst_rank = to_rank(h, src_nodes), to_rank(h, dst_nodes)
    block = np.empty((len(h.rank), min(PHAST_BLOCK, max(len(src_nodes), 1))))
    for lo in range(0, len(src_nodes), PHAST_BLOCK):
        hi = min(lo + PHAST_BLOCK, len(src_nodes))
        ws.cur = phast_block_kernel(src_rank[lo:hi], src_cost[lo:hi], dst_rank, dst_cost, h.up_p,
                                    w_up, w_down, ws.fwd_p, ws.cur, ws.s.buf, block, out[lo:hi])  # fmt: skip
    return out


def unit_labels(h: Hierarchy, m: Metric, ws: Workspace, leave_nodes: np.ndarray,
                leave_cost: np.ndarray, *, backward: bool = False) -> UnitLabels:  # fmt: skip
    """Forward labels of units on their ancestors (CSR by unit); with ``backward``, the labels
    of points *reached* from their seeds (``reach`` seeds, distances to the points)."""
    ptr = np.empty(len(leave_nodes) + 1, dtype=np.int64)
    wdir = m.down_w if backward else m.up_w
    ranks, dists, ws.cur = unit_labels_kernel(to_rank(h, leave_nodes), leave_cost, h.up_p, wdir,
                                              ws.fwd_p, ws.cur, ws.s.buf, ptr,
                                              64 * len(leave_nodes) + 64)  # fmt: skip
    return UnitLabels(ptr, ranks, dists)


@jit
def dispatch_cch_kernel(
    ends_: Packed, w: np.ndarray, rank: np.ndarray, call_arc: int, call_t: float,
    units_: Packed, up_: Packed, down_w: np.ndarray, side_: Packed, cur: int, buf: np.ndarray,
    lab_: Packed, out: np.ndarray,
) -> None:  # fmt: skip
    """Exact ETA of every unit to a call on arc ``call_arc`` at fraction ``call_t``.

    The call's reach seeds (tail of its arc, or head by the twin; the node itself at an end),
    same-arc candidates, then :func:`many_to_one_kernel` on the units' forward labels."""
    _one_against_labels(ArcEnds(*ends_), w, rank, call_arc, call_t, UnitPositions(*units_),
                        Up(*up_), down_w, Side(*side_), cur, buf, UnitLabels(*lab_), out, False)  # fmt: skip


@jit
def from_one_cch_kernel(
    ends_: Packed, w: np.ndarray, rank: np.ndarray, o_arc: int, o_t: float, dests_: Packed,
    up_: Packed, up_w: np.ndarray, side_: Packed, cur: int, buf: np.ndarray, lab_: Packed,
    out: np.ndarray,
) -> None:  # fmt: skip
    """Time from one origin at arc ``o_arc``, fraction ``o_t``, to every destination (``dests_``:
    :class:`UnitPositions` with ``turnout`` 0; ``lab_``: their backward labels): the mirror of
    :func:`dispatch_cch_kernel` (the origin's leave seeds, same-arc times, then one forward
    search against the destinations' labels)."""
    _one_against_labels(ArcEnds(*ends_), w, rank, o_arc, o_t, UnitPositions(*dests_), Up(*up_),
                        up_w, Side(*side_), cur, buf, UnitLabels(*lab_), out, True)  # fmt: skip


@jit
def _one_against_labels(
    ends: ArcEnds, w: np.ndarray, rank: np.ndarray, arc: int, t: float, pts: UnitPositions, up: Up,
    wdir: np.ndarray, side: Side, cur: int, buf: np.ndarray, lab: UnitLabels, out: np.ndarray,
    leave: bool,
) -> None:  # fmt: skip
    """The body of :func:`dispatch_cch_kernel` (``leave`` False: the position at ``(arc, t)`` is
    reached, from points with forward labels) and :func:`from_one_cch_kernel` (``leave`` True: it
    is left, to points with backward labels): its three seeds, the same-arc times, then
    :func:`many_to_one_kernel` (``out[u]`` includes ``pts.turnout[u]``)."""
    seed_rank = np.empty(3, dtype=np.int64)
    seed_cost = np.empty(3)
    for j in range(3):
        if leave:
            v, c = leave_seed(ends, w, arc, t, j)
        else:
            v, c = reach_seed(ends, w, arc, t, j)
        seed_rank[j] = rank[v]
        seed_cost[j] = c
    for u in range(len(pts.arc)):
        x = np.inf
        if pts.arc[u] == arc:
            if leave:
                x = same_arc_time(ends.twin, w, arc, t, pts.t[u])
            else:
                x = same_arc_time(ends.twin, w, arc, pts.t[u], t)
        out[u] = x + pts.turnout[u]
    many_to_one_kernel(seed_rank, seed_cost, up, wdir, side, cur, buf, lab, pts.turnout, out)
