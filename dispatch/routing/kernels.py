"""Numba primitives shared by the routing kernels: the binary heap and the edge-position arithmetic.

An edge position is ``(arc, t)``: fraction ``t`` along ``arc`` from its tail (0) to its head (1); the
other direction of a two-way street is ``twin[arc]`` (-1 when there is none). Everything here is
scalar and allocation-free except the small seed arrays, so that every kernel agrees on the same
arithmetic: a point is *left* forward to the arc's head or back along the twin to its tail, and
*reached* from the arc's tail or, along the twin, from its head; a point at an arc's end is at that
node.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def heap_push(hd: np.ndarray, hv: np.ndarray, size: int, d: float, v: int) -> int:
    """Push ``(d, v)`` on the binary min-heap ``hd``/``hv`` of ``size`` items; return the new size."""
    i = size
    while i > 0:
        p = (i - 1) >> 1
        if hd[p] <= d:
            break
        hd[i] = hd[p]
        hv[i] = hv[p]
        i = p
    hd[i] = d
    hv[i] = v
    return size + 1


@numba.njit(cache=True, nogil=True)
def heap_pop(hd: np.ndarray, hv: np.ndarray, size: int) -> int:
    """Remove the top of the heap (read ``hd[0]``, ``hv[0]`` first); return the new size."""
    size -= 1
    d = hd[size]
    v = hv[size]
    i = 0
    while True:
        c = 2 * i + 1
        if c >= size:
            break
        if c + 1 < size and hd[c + 1] < hd[c]:
            c += 1
        if hd[c] >= d:
            break
        hd[i] = hd[c]
        hv[i] = hv[c]
        i = c
    hd[i] = d
    hv[i] = v
    return size


@numba.njit(cache=True, nogil=True)
def relax(
    ptr: np.ndarray, adj: np.ndarray, other: np.ndarray, w: np.ndarray, v: int, d: float,
    dist: np.ndarray, stamp: np.ndarray, pred: np.ndarray, cur: int, hd: np.ndarray, hv: np.ndarray,
    size: int,
) -> int:  # fmt: skip
    """Relax the arcs of settled node ``v`` (at ``d``) in a stamped Dijkstra; return the heap size.

    ``adj[ptr[v]:ptr[v + 1]]`` are arc ids and ``other[a]`` the node at their far end (forward: head;
    reverse: tail). A node not stamped ``cur`` counts as unvisited; ``pred`` records the arc used."""
    for j in range(ptr[v], ptr[v + 1]):
        a = adj[j]
        nd = d + w[a]
        t = other[a]
        if nd < np.inf and (stamp[t] != cur or nd < dist[t]):
            stamp[t] = cur
            dist[t] = nd
            pred[t] = a
            size = heap_push(hd, hv, size, nd, t)
    return size


@numba.njit(cache=True, nogil=True)
def leave_seed(
    tail: np.ndarray, head: np.ndarray, twin: np.ndarray, w: np.ndarray, a: int, t: float, j: int
) -> tuple[int, float]:
    """Seed ``j`` (0..2) of a point *leaving* position ``(a, t)``: ``(node, cost)``, cost inf if none.

    0: forward to the head for ``(1-t) w[a]``; 1: back to the tail along the twin for ``t w[twin]``;
    2: at the tail for 0 when ``t == 0``."""
    if j == 0:
        return head[a], (0.0 if t >= 1.0 else (1.0 - t) * w[a])
    if j == 1:
        b = twin[a]
        return tail[a], (np.inf if (t <= 0.0 or b < 0) else t * w[b])
    return tail[a], (0.0 if t <= 0.0 else np.inf)


@numba.njit(cache=True, nogil=True)
def reach_seed(
    tail: np.ndarray, head: np.ndarray, twin: np.ndarray, w: np.ndarray, a: int, t: float, j: int
) -> tuple[int, float]:
    """Seed ``j`` (0..2) of a point *reached* at position ``(a, t)``: ``(node, cost)``.

    0: from the tail for ``t w[a]``; 1: from the head along the twin for ``(1-t) w[twin]``; 2: at the
    head for 0 when ``t == 1``."""
    if j == 0:
        return tail[a], (0.0 if t <= 0.0 else t * w[a])
    if j == 1:
        b = twin[a]
        return head[a], (np.inf if (t >= 1.0 or b < 0) else (1.0 - t) * w[b])
    return head[a], (0.0 if t >= 1.0 else np.inf)


@numba.njit(cache=True, nogil=True)
def same_arc_time(twin: np.ndarray, w: np.ndarray, a: int, t_from: float, t_to: float) -> float:
    """Time to drive along arc ``a`` from fraction ``t_from`` to ``t_to`` (forward on ``a``,
    backward on its twin); inf when the direction needed does not exist."""
    ahead = t_to - t_from
    if ahead == 0.0:
        return 0.0
    if ahead > 0.0:
        return ahead * w[a]
    b = twin[a]
    return -ahead * w[b] if b >= 0 else np.inf


@numba.njit(cache=True, nogil=True)
def seeds_kernel(
    tail: np.ndarray, head: np.ndarray, twin: np.ndarray, w: np.ndarray, arcs: np.ndarray,
    ts: np.ndarray, reach: bool, nodes: np.ndarray, costs: np.ndarray,
) -> None:  # fmt: skip
    """Fill ``nodes``/``costs`` (n, 3) with the leave (or ``reach``) seeds of many positions."""
    for i in range(len(arcs)):
        for j in range(3):
            if reach:
                nodes[i, j], costs[i, j] = reach_seed(tail, head, twin, w, arcs[i], ts[i], j)
            else:
                nodes[i, j], costs[i, j] = leave_seed(tail, head, twin, w, arcs[i], ts[i], j)


@numba.njit(cache=True, nogil=True)
def same_arc_kernel(
    twin: np.ndarray, w: np.ndarray, o_arc: np.ndarray, o_t: np.ndarray, d_arc: np.ndarray,
    d_t: np.ndarray, out: np.ndarray,
) -> None:  # fmt: skip
    """``out[i, j]``: time from origin i to destination j along the arc they share, else inf."""
    for i in range(len(o_arc)):
        for j in range(len(d_arc)):
            out[i, j] = (
                same_arc_time(twin, w, o_arc[i], o_t[i], d_t[j]) if o_arc[i] == d_arc[j] else np.inf
            )
