"""The Dijkstra kernel family (numba, binary heap, stamped scratch space that a query never clears).

* :func:`dispatch_kernel` / :func:`kfastest_kernel`: a reverse search from a call that stops as soon
  as no unit outside the current k best (plus a tie slack) can still beat the k-th;
* :func:`knearest_kernel` / :func:`knearest_query`: the nearest-units table of a fleet and its lookup;
* :func:`exits_kernel`: where each unit enters the graph from its edge position;
* :func:`matrix_kernel`: one early-stopping search per source row;
* :func:`p2p_kernel` and :func:`tree_path`: one route.

Every kernel takes its arrays grouped (:mod:`dispatch.routing.kernels`) and its scratch space as an
argument: the caller gives each thread its own.
"""

from __future__ import annotations

import numpy as np

from dispatch.routing.kernels import (
    Adjacency,
    ArcEnds,
    Exits,
    NearestTable,
    Packed,
    Scratch,
    UnitPositions,
    heap_pop,
    heap_push,
    jit,
    leave_seed,
    reach_seed,
    relax,
    same_arc_time,
    seed_heap,
)


@jit
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


@jit
def kfastest_kernel(
    g: Adjacency, w: np.ndarray, seed_node: np.ndarray, seed_cost: np.ndarray, s: Scratch, cur: int,
    ex: Exits, unit_best: np.ndarray, k: int, bound: float, min_extra: float, slack: float,
) -> int:  # fmt: skip
    """Reverse search from a call until the k best units are final; returns nodes settled.

    ``unit_best`` holds each unit's best ETA so far (turnout + drive; pre-filled with same-arc
    candidates) and is updated in place. The search stops when the next node's distance plus
    ``min_extra`` exceeds both ``bound`` and the k-th best ETA by more than ``slack``: every unit
    within ``slack`` of the k-th is then final too (ties at a rounding resolution are all seen).
    """
    topv = np.full(k, np.inf)
    topu = np.full(k, -1)
    for u in range(len(unit_best)):
        if unit_best[u] < topv[k - 1]:
            _top_insert(topv, topu, u, unit_best[u])
    size = seed_heap(seed_node, seed_cost, s, cur)
    settled = 0
    while size > 0:
        d = s.hd[0]
        v = s.hv[0]
        size = heap_pop(s.hd, s.hv, size)
        if d > s.dist[v]:
            continue
        limit = topv[k - 1] if topv[k - 1] < bound else bound
        if d + min_extra > limit + slack:
            break
        settled += 1
        e = ex.first[v]
        while e >= 0:
            u = ex.unit[e]
            x = d + ex.cost[e]
            if x < unit_best[u]:
                unit_best[u] = x
                if x < topv[k - 1]:
                    _top_insert(topv, topu, u, x)
            e = ex.next[e]
        size = relax(g, w, v, d, s, cur, size)
    return settled


@jit
def dispatch_kernel(
    rev_: Packed, ends_: Packed, w: np.ndarray, call_arc: int, call_t: float,
    units_: Packed, s_: Packed, cur: int, ex_: Packed, unit_best: np.ndarray, k: int,
    bound: float, min_extra: float, slack: float,
) -> int:  # fmt: skip
    """One class's part of ``fastest_units``: seeds from the call's edge position, same-arc
    candidates, then :func:`kfastest_kernel`. ``unit_best`` receives each unit's ETA (exact for
    every unit within ``slack`` of the k-th; larger values are upper bounds or inf)."""
    rev = Adjacency(*rev_)
    ends = ArcEnds(*ends_)
    units = UnitPositions(*units_)
    s = Scratch(*s_)
    ex = Exits(*ex_)
    seed_node = np.empty(3, dtype=np.int64)
    seed_cost = np.empty(3)
    for j in range(3):
        seed_node[j], seed_cost[j] = reach_seed(ends, w, call_arc, call_t, j)
    for u in range(len(units.arc)):
        x = np.inf
        if units.arc[u] == call_arc:
            x = same_arc_time(ends.twin, w, call_arc, units.t[u], call_t)
        unit_best[u] = x + units.turnout[u]
    return kfastest_kernel(rev, w, seed_node, seed_cost, s, cur, ex, unit_best, k, bound,
                           min_extra, slack)  # fmt: skip


@jit
def knearest_kernel(
    fwd_: Packed, w: np.ndarray, seed_node: np.ndarray, seed_unit: np.ndarray,
    seed_cost: np.ndarray, tab_: Packed,
) -> None:  # fmt: skip
    """For every node, its ``K`` nearest units (``K = tab.unit.shape[1]``), by a multi-label Dijkstra.

    Each (node, unit) pair is settled at most once, in order of distance; a node stops accepting
    labels once it has ``K``: a unit pruned there is beaten, at every node beyond, by the ``K`` it
    holds. Seeds are the units' exits (node, unit, cost with turnout). Heap items pack
    ``node * n_units + unit``."""
    fwd = Adjacency(*fwd_)
    tab = NearestTable(*tab_)
    kk = tab.unit.shape[1]
    nu = 1
    for i in range(len(seed_unit)):
        nu = max(nu, seed_unit[i] + 1)
    tab.n[:] = 0
    cap = kk * len(fwd.other) + len(seed_node) + 16
    hd = np.empty(cap)
    hv = np.empty(cap, dtype=np.int64)
    size = int(np.int64(0))  # not a literal: one compilation of heap_push
    for i in range(len(seed_node)):
        if seed_cost[i] < np.inf:
            size = heap_push(hd, hv, size, seed_cost[i], seed_node[i] * nu + seed_unit[i])
    while size > 0:
        d = hd[0]
        item = hv[0]
        size = heap_pop(hd, hv, size)
        v = item // nu
        u = item % nu
        cnt = tab.n[v]
        if cnt >= kk:
            continue
        dup = False
        for j in range(cnt):
            if tab.unit[v, j] == u:
                dup = True
                break
        if dup:
            continue
        tab.unit[v, cnt] = u
        tab.dist[v, cnt] = d
        tab.n[v] = cnt + 1
        for j in range(fwd.ptr[v], fwd.ptr[v + 1]):
            a = fwd.adj[j]
            nd = d + w[a]
            x = fwd.other[a]
            if nd < np.inf and tab.n[x] < kk:
                size = heap_push(hd, hv, size, nd, x * nu + u)


@jit
def knearest_query(
    ends_: Packed, w: np.ndarray, call_arc: int, call_t: float, units_: Packed,
    tab_: Packed, out_unit: np.ndarray, out_eta: np.ndarray,
) -> tuple[int, float]:  # fmt: skip
    """Candidates for the fastest units to a call from the nearest-units table.

    Fills ``out_unit``/``out_eta`` (capacity ``3 K + n_units``) with each candidate unit's best ETA
    (distinct units, sorted by ETA) and returns ``(count, bound)``: every unit with an ETA below
    ``bound`` is a candidate and its ETA is exact. A unit missing from a full list at reach node r
    is at least that list's last distance plus the cost from r, hence the bound."""
    ends = ArcEnds(*ends_)
    units = UnitPositions(*units_)
    tab = NearestTable(*tab_)
    nodes = np.empty(3, dtype=np.int64)
    costs = np.empty(3)
    for j in range(3):
        nodes[j], costs[j] = reach_seed(ends, w, call_arc, call_t, j)
    kk = tab.unit.shape[1]
    nc = 0
    bound = np.inf
    for r in range(3):
        if not costs[r] < np.inf:
            continue
        v = nodes[r]
        cnt = tab.n[v]
        if cnt >= kk:
            x = tab.dist[v, kk - 1] + costs[r]
            if x < bound:
                bound = x
        for j in range(cnt):
            nc = _candidate(out_unit, out_eta, nc, tab.unit[v, j], tab.dist[v, j] + costs[r])
    for u in range(len(units.arc)):
        if units.arc[u] == call_arc:
            x = same_arc_time(ends.twin, w, call_arc, units.t[u], call_t)
            if x < np.inf:
                nc = _candidate(out_unit, out_eta, nc, u, x + units.turnout[u])
    for i in range(1, nc):  # insertion sort by ETA (a dozen candidates)
        e = out_eta[i]
        u = out_unit[i]
        j = i - 1
        while j >= 0 and out_eta[j] > e:
            out_eta[j + 1] = out_eta[j]
            out_unit[j + 1] = out_unit[j]
            j -= 1
        out_eta[j + 1] = e
        out_unit[j + 1] = u
    return nc, bound


@jit
def _candidate(out_unit: np.ndarray, out_eta: np.ndarray, nc: int, u: int, x: float) -> int:
    """Record unit ``u`` at ETA ``x`` (keeping its best); return the new count."""
    for i in range(nc):
        if out_unit[i] == u:
            if x < out_eta[i]:
                out_eta[i] = x
            return nc
    out_unit[nc] = u
    out_eta[nc] = x
    return nc + 1


@jit
def exits_kernel(
    ends_: Packed, w: np.ndarray, units_: Packed, n: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-node linked lists of unit exits ``(first, next, unit, cost)`` (see :class:`Exits`):
    where each unit can enter the graph from its edge position (head of its arc, or tail by the
    twin, or the tail itself at ``t == 0``) and at what cost, turnout included."""
    ends = ArcEnds(*ends_)
    units = UnitPositions(*units_)
    nu = len(units.arc)
    first = np.full(n, -1, dtype=np.int64)
    nxt = np.empty(3 * nu, dtype=np.int64)
    unit = np.empty(3 * nu, dtype=np.int64)
    cost = np.empty(3 * nu)
    e = 0
    for u in range(nu):
        for j in range(3):
            v, c = leave_seed(ends, w, units.arc[u], units.t[u], j)
            if not c < np.inf:
                continue
            unit[e] = u
            cost[e] = c + units.turnout[u]
            nxt[e] = first[v]
            first[v] = e
            e += 1
    return first, nxt[:e], unit[:e], cost[:e]


@jit
def matrix_kernel(
    g_: Packed, w: np.ndarray, src_node: np.ndarray, src_cost: np.ndarray,
    dst_node: np.ndarray, dst_cost: np.ndarray, s_: Packed, cur0: int, out: np.ndarray,
) -> int:  # fmt: skip
    """One search per source row (seeds ``src_node[i]``/``src_cost[i]``), stopping once every target
    node is settled; ``out[i, d] = min_j dist[dst_node[d, j]] + dst_cost[d, j]``. Returns next stamp."""
    g = Adjacency(*g_)
    s = Scratch(*s_)
    cur = cur0
    n_dst = dst_node.shape[0]
    for i in range(src_node.shape[0]):
        cur += 1
        # mark target nodes with the current stamp: mark[v] == cur means "target not yet settled"
        remaining = 0
        for d in range(n_dst):
            for j in range(dst_node.shape[1]):
                v = dst_node[d, j]
                if v >= 0 and dst_cost[d, j] < np.inf and s.mark[v] != cur:
                    s.mark[v] = cur
                    remaining += 1
        size = seed_heap(src_node[i], src_cost[i], s, cur)
        while size > 0 and remaining > 0:
            d0 = s.hd[0]
            v = s.hv[0]
            size = heap_pop(s.hd, s.hv, size)
            if d0 > s.dist[v]:
                continue
            if s.mark[v] == cur:
                s.mark[v] = cur - 1
                remaining -= 1
            size = relax(g, w, v, d0, s, cur, size)
        for d in range(n_dst):
            best = np.inf
            for j in range(dst_node.shape[1]):
                v = dst_node[d, j]
                if v >= 0 and s.stamp[v] == cur:
                    x = s.dist[v] + dst_cost[d, j]
                    if x < best:
                        best = x
            out[i, d] = best
    return cur


@jit
def p2p_kernel(
    g_: Packed, w: np.ndarray, src_node: np.ndarray, src_cost: np.ndarray, dst_node: np.ndarray,
    dst_cost: np.ndarray, s_: Packed, cur: int,
) -> tuple[float, int]:  # fmt: skip
    """Forward search from seeds to the best target (node, cost) pair; ``s.pred`` holds the tree.

    Returns ``(eta, target index)`` (``(inf, -1)`` when unreachable)."""
    g = Adjacency(*g_)
    s = Scratch(*s_)
    size = seed_heap(src_node, src_cost, s, cur)
    best = np.inf
    best_j = -1
    while size > 0:
        d0 = s.hd[0]
        v = s.hv[0]
        size = heap_pop(s.hd, s.hv, size)
        if d0 > s.dist[v]:
            continue
        if d0 >= best:
            break
        for j in range(len(dst_node)):
            if dst_node[j] == v and d0 + dst_cost[j] < best:
                best = d0 + dst_cost[j]
                best_j = j
        size = relax(g, w, v, d0, s, cur, size)
    return best, best_j


@jit
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
