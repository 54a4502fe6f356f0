"""Point-to-point routes in one compiled call: snapping, CCH query, path unpacking and geometry.

A single route (``Network.route``) is what a console, the simulator and a hospital choice ask for
one at a time, so its cost is mostly fixed overhead: validating two points, snapping them, building
seed arrays, the query, unpacking shortcuts and cutting the first and last arcs' geometry. Here all
of it after validation is one numba call (:func:`route_points_kernel`): the bidirectional CCH
search (an upward search from each end over its
elimination-tree ancestors, no priority queue), the shortcuts unpacked to original arcs, then the
polyline and cumulative times cut at the two edge positions (:func:`geometry_kernel`, also used for
routes found by Dijkstra). The answer is the same route as before, to float rounding: the
same seeds (:func:`dispatch.routing.kernels.leave_seed` / ``reach_seed``), the same same-arc rule,
the same geometry.

:class:`RouteStatic` holds the per-engine arrays these kernels read (built once per engine, kept in
a weak map so that the engine's module need not know about it).
"""

from __future__ import annotations

import math
import threading
import weakref
from dataclasses import dataclass

import numba
import numpy as np

from dispatch.roads.snapping import SnapIndex, _snap_point
from dispatch.routing.cch import Metric, Side, Up, _find_edge, ancestor_labels
from dispatch.routing.engine import Engine
from dispatch.routing.kernels import ArcEnds, Packed, leave_seed, reach_seed, same_arc_time

_M_PER_DEG = math.pi / 180.0 * 6_371_008.8

#: Status codes of :func:`route_points_kernel`.
OK, NO_ORIGIN, NO_DESTINATION = 0, 1, 2


@dataclass(frozen=True)
class RouteStatic:
    """Arrays of one engine that every route reads (packed as the kernels take them)."""

    snap: Packed  # tuple(SnapIndex)
    cell_m: float
    access_from: np.ndarray  # per-arc class bits where an origin may snap
    access_to: np.ndarray  # ... a destination
    ends: Packed  # tuple(ArcEnds)
    geo: Packed  # (geom_ptr, geom_lat, geom_lon, geom_cum_m, arc_length_m, arc_head, node_osmid)


_STATIC: weakref.WeakKeyDictionary[Engine, RouteStatic] = weakref.WeakKeyDictionary()
_STATIC_LOCK = threading.Lock()


def route_static(engine: Engine) -> RouteStatic:
    """The :class:`RouteStatic` of an engine (built on first use)."""
    st = _STATIC.get(engine)
    if st is None:
        from dispatch.roads.snapping import CELL_M

        g = engine.graph
        st = RouteStatic(
            tuple(engine.snap_index()),
            CELL_M,
            engine.snap_access("from"),
            engine.snap_access("to"),
            engine.ends_p,
            (g.geom_ptr, g.geom_lat, g.geom_lon, engine.geom_cum_m(), g.arc_length_m, g.arc_head,
             g.node_osmid),
        )  # fmt: skip
        with _STATIC_LOCK:
            _STATIC[engine] = st
    return st


@numba.njit(cache=True, nogil=True)
def _interp(cum: np.ndarray, coord: np.ndarray, lo: int, hi: int, s: float) -> float:
    """``numpy.interp(s, cum[lo:hi], coord[lo:hi])`` for one value (``cum`` non-decreasing)."""
    if s <= cum[lo]:
        return float(coord[lo])
    if s >= cum[hi - 1]:
        return float(coord[hi - 1])
    j = lo
    while j + 1 < hi and cum[j + 1] <= s:
        j += 1
    if cum[j] == s:
        return float(coord[j])
    span = cum[j + 1] - cum[j]
    return float(coord[j] + (s - cum[j]) / span * (coord[j + 1] - coord[j]))


@numba.njit(cache=True, nogil=True)
def _geometry(
    geo: Packed, w: np.ndarray, arcs: np.ndarray, t0: np.ndarray, t1: np.ndarray, n: int,
    eta_fix: float,
) -> tuple[float, float, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """Polyline, cumulative times and passed nodes of driving ``arcs[i]`` from ``t0[i]`` to ``t1[i]``.

    Parts of zero length are skipped (a unit at the end of a closed arc drives none of it, and
    ``0 * inf`` would be NaN). Returns ``(eta, length_m, lat, lon, times, node_osmids)``; ``eta`` is
    the sum of the parts' times unless ``eta_fix`` is finite (the query's own figure, then also the
    last time). With no part left the route is the point at ``(arcs[0], t0[0])``."""
    geom_ptr, glat, glon, cum, arc_len, arc_head, osmid = geo
    cap = 2
    for i in range(n):
        cap += geom_ptr[arcs[i] + 1] - geom_ptr[arcs[i]]
    lat = np.empty(cap)
    lon = np.empty(cap)
    times = np.empty(cap)
    nodes = np.empty(n, dtype=np.int64)
    k = 0
    nn = 0
    start_s = 0.0
    length = 0.0
    first = -1
    last = -1
    for i in range(n):
        if t1[i] > t0[i]:
            if first < 0:
                first = i
            last = i
    if first < 0:  # a route of zero length: the point itself
        a = arcs[0] if n > 0 else 0
        lo, hi = geom_ptr[a], geom_ptr[a + 1]
        s = (t0[0] if n > 0 else 0.0) * cum[hi - 1]
        lat[0] = _interp(cum, glat, lo, hi, s)
        lon[0] = _interp(cum, glon, lo, hi, s)
        times[0] = 0.0
        eta = eta_fix if eta_fix < np.inf else 0.0
        return eta, 0.0, lat[:1], lon[:1], times[:1], nodes[:0]
    for i in range(first, last + 1):
        a0 = t0[i]
        a1 = t1[i]
        if not a1 > a0:
            continue
        a = arcs[i]
        lo, hi = geom_ptr[a], geom_ptr[a + 1]
        total = cum[hi - 1]
        s0 = a0 * total
        s1 = a1 * total
        sec = w[a] * (a1 - a0)
        per_m = w[a] / total if total > 0 else 0.0
        if i == first and a0 > 0:
            la = _interp(cum, glat, lo, hi, s0)
            lo_ = _interp(cum, glon, lo, hi, s0)
            if k == 0 or la != lat[k - 1] or lo_ != lon[k - 1]:
                lat[k], lon[k], times[k] = la, lo_, start_s
                k += 1
        for p in range(lo, hi):
            c = cum[p]
            if c >= s0 and c <= s1:
                if k > 0 and glat[p] == lat[k - 1] and glon[p] == lon[k - 1]:
                    continue
                lat[k], lon[k] = glat[p], glon[p]
                times[k] = start_s + (c - s0) * per_m
                k += 1
        if i == last and a1 < 1:
            la = _interp(cum, glat, lo, hi, s1)
            lo_ = _interp(cum, glon, lo, hi, s1)
            if k == 0 or la != lat[k - 1] or lo_ != lon[k - 1]:
                lat[k], lon[k], times[k] = la, lo_, start_s + (s1 - s0) * per_m
                k += 1
        if a1 >= 1.0:
            nodes[nn] = osmid[arc_head[a]]
            nn += 1
        length += arc_len[a] * (a1 - a0)
        start_s += sec
    eta = eta_fix if eta_fix < np.inf else start_s
    if k > 0:
        times[0] = 0.0
        times[k - 1] = eta
    return eta, length, lat[:k], lon[:k], times[:k], nodes[:nn]


@numba.njit(cache=True, nogil=True)
def geometry_kernel(
    geo: Packed, w: np.ndarray, arcs: np.ndarray, t0: np.ndarray, t1: np.ndarray, eta_fix: float
) -> tuple[float, float, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_geometry` as an entry kernel (routes whose arcs were found by Dijkstra)."""
    return _geometry(geo, w, arcs, t0, t1, len(arcs), eta_fix)


@numba.njit(cache=True, nogil=True)
def _unpack_into(e: int, is_up0: bool, up: Up, m: Metric, out: np.ndarray, k: int,
                 stack: np.ndarray) -> tuple[int, np.ndarray]:  # fmt: skip
    """Append to ``out[k:]`` the original arcs behind upward edge ``e`` driven upward (lower end
    to higher) or downward, in driving order; ``stack`` (edge, direction) pairs, grown if needed.
    Returns the new length and the (possibly grown) stack."""
    stack[0] = e
    stack[1] = 1 if is_up0 else 0
    top = 2
    while top > 0:
        top -= 2
        e = stack[top]
        is_up = stack[top + 1] == 1
        mid = m.up_mid[e] if is_up else m.down_mid[e]
        if mid < 0:
            out[k] = m.up_arc[e] if is_up else m.down_arc[e]
            k += 1
            continue
        lo = up.tail[e]
        hi = up.head[e]
        e_lo = _find_edge(up.ptr, up.head, mid, lo)  # edge (mid, lo)
        e_hi = _find_edge(up.ptr, up.head, mid, hi)  # edge (mid, hi)
        if top + 4 > len(stack):
            grown = np.empty(2 * len(stack), dtype=np.int64)
            grown[:top] = stack[:top]
            stack = grown
        # pushed in reverse driving order
        if is_up:  # lo -> mid (down along e_lo), then mid -> hi (up along e_hi)
            stack[top], stack[top + 1] = e_hi, 1
            stack[top + 2], stack[top + 3] = e_lo, 0
        else:  # hi -> mid (down along e_hi), then mid -> lo (up along e_lo)
            stack[top], stack[top + 1] = e_lo, 1
            stack[top + 2], stack[top + 3] = e_hi, 0
        top += 4
    return k, stack


@numba.njit(cache=True, nogil=True)
def _p2p_path(
    src_rank: np.ndarray, src_cost: np.ndarray, dst_rank: np.ndarray, dst_cost: np.ndarray,
    up: Up, m: Metric, fwd: Side, bwd: Side, buf: np.ndarray, out_arcs: np.ndarray, cur: int,
) -> tuple[float, int, int, int]:  # fmt: skip
    """Fastest path between seed sets by the CCH (an upward search from each side, shortcuts
    unpacked with one stack for the whole path): ``(eta, n_arcs, start rank, end rank)``, the
    original arcs in driving order in ``out_arcs[:n_arcs]``; ``(inf, 0, -1, -1)`` if none."""
    nf = ancestor_labels(src_rank, src_cost, up, m.up_w, fwd, cur, buf)
    ancestor_labels(dst_rank, dst_cost, up, m.down_w, bwd, cur, buf[nf:])
    best = np.inf
    meet = -1
    for i in range(nf):
        r = buf[i]
        if bwd.stamp[r] == cur:
            c = fwd.dist[r] + bwd.dist[r]
            if c < best:
                best = c
                meet = r
    if meet < 0:
        return np.inf, 0, -1, -1
    nfe = 0
    r = meet
    while fwd.pred[r] >= 0:
        e = fwd.pred[r]
        buf[nfe] = e
        nfe += 1
        r = up.tail[e]
    start = r
    stack = np.empty(128, dtype=np.int64)
    k = 0
    for i in range(nfe - 1, -1, -1):
        k, stack = _unpack_into(buf[i], True, up, m, out_arcs, k, stack)
    r = meet
    while bwd.pred[r] >= 0:
        e = bwd.pred[r]
        k, stack = _unpack_into(e, False, up, m, out_arcs, k, stack)
        r = up.tail[e]
    return best, k, start, r


@numba.njit(cache=True, nogil=True)
def _route_core(
    ends_: Packed, w: np.ndarray, geo: Packed, rank: np.ndarray, up_: Packed, m_: Packed,
    fwd_: Packed, bwd_: Packed, buf: np.ndarray, arcs: np.ndarray, cur: int, oa: int, ot: float,
    da: int, dt: float,
) -> tuple[float, float, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """Fastest route between two edge positions by the CCH; ``eta`` inf (and empty arrays) if none."""
    ends = ArcEnds(*ends_)
    src_rank = np.empty(3, dtype=np.int64)
    src_cost = np.empty(3)
    dst_rank = np.empty(3, dtype=np.int64)
    dst_cost = np.empty(3)
    for j in range(3):
        v, c = leave_seed(ends, w, oa, ot, j)
        src_rank[j] = rank[v]
        src_cost[j] = c
        v, c = reach_seed(ends, w, da, dt, j)
        dst_rank[j] = rank[v]
        dst_cost[j] = c
    fwd = Side(*fwd_)
    bwd = Side(*bwd_)
    eta, k, start, end = _p2p_path(src_rank, src_cost, dst_rank, dst_cost, Up(*up_), Metric(*m_),
                                   fwd, bwd, buf, arcs, cur)  # fmt: skip
    direct = same_arc_time(ends.twin, w, oa, ot, dt) if oa == da else np.inf
    t0 = np.zeros(k + 2)
    t1 = np.ones(k + 2)
    parts = np.empty(k + 2, dtype=np.int64)
    if direct <= eta:
        if direct == np.inf:
            e = np.empty(0)
            return np.inf, np.inf, e, e, e, np.empty(0, dtype=np.int64)
        if dt >= ot:
            parts[0], t0[0], t1[0] = oa, ot, dt
        else:
            parts[0], t0[0], t1[0] = ends.twin[oa], 1.0 - ot, 1.0 - dt
        return _geometry(geo, w, parts, t0, t1, 1, np.inf)
    # which seed the path leaves from and which it arrives at: the seed whose cost is the label
    # the search started from at that rank (exact: a seed's label is its cost unless improved)
    fdist = fwd.dist
    bdist = bwd.dist
    js = -1
    for j in range(3):
        if src_rank[j] == start and src_cost[j] == fdist[start]:
            js = j
            break
    je = -1
    for j in range(3):
        if dst_rank[j] == end and dst_cost[j] == bdist[end]:
            je = j
            break
    n = 0
    if js == 0:
        parts[0], t0[0] = oa, ot
        n = 1
    elif js == 1:
        parts[0], t0[0] = ends.twin[oa], 1.0 - ot
        n = 1
    for i in range(k):
        parts[n] = arcs[i]
        n += 1
    if je == 0:
        parts[n], t1[n] = da, dt
        n += 1
    elif je == 1:
        parts[n], t1[n] = ends.twin[da], 1.0 - dt
        n += 1
    if n == 0:  # origin and destination at the same node
        parts[0], t0[0], t1[0] = oa, ot, ot
        n = 1
    # the time is the parts' sum in path order, not the search's figure (the same to ~1e-13 s):
    # summed so, the same path has the same time whichever engine found it (Dijkstra before the
    # CCH is customized, the CCH after), so a route does not depend on what was asked before
    return _geometry(geo, w, parts, t0, t1, n, np.inf)


@numba.njit(cache=True, nogil=True)
def route_arcs_kernel(
    ends_: Packed, w: np.ndarray, geo: Packed, rank: np.ndarray, up_: Packed, m_: Packed,
    fwd_: Packed, bwd_: Packed, buf: np.ndarray, arcs: np.ndarray, cur: int, oa: int, ot: float,
    da: int, dt: float,
) -> tuple[float, float, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """:func:`_route_core` as an entry kernel (positions already snapped)."""
    return _route_core(ends_, w, geo, rank, up_, m_, fwd_, bwd_, buf, arcs, cur, oa, ot, da, dt)


@numba.njit(cache=True, nogil=True)
def route_points_kernel(
    olat: float, olon: float, dlat: float, dlon: float, snap_: Packed, cell: float,
    acc_from: np.ndarray, acc_to: np.ndarray, bit: int, tol: float, ends_: Packed, w: np.ndarray,
    geo: Packed, rank: np.ndarray, up_: Packed, m_: Packed, fwd_: Packed, bwd_: Packed,
    buf: np.ndarray, arcs: np.ndarray, cur: int,
) -> tuple[int, float, float, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """Snap two validated points for class bit ``bit`` (origin: where it may leave from, destination:
    where it may be reached) and route between them: ``(status, eta, length_m, lat, lon, times,
    node_osmids)``; status :data:`NO_ORIGIN` / :data:`NO_DESTINATION` when a point is farther than
    ``tol`` from any road open to the class (the caller then raises the usual error)."""
    g = SnapIndex(*snap_)
    oa, ot, _ = _snap_point((olon - g.lon0) * g.kx, (olat - g.lat0) * _M_PER_DEG, snap_, cell,
                            acc_from, bit, tol)  # fmt: skip
    e = np.empty(0)
    if oa < 0:
        return NO_ORIGIN, np.inf, np.inf, e, e, e, np.empty(0, dtype=np.int64)
    da, dt, _ = _snap_point((dlon - g.lon0) * g.kx, (dlat - g.lat0) * _M_PER_DEG, snap_, cell,
                            acc_to, bit, tol)  # fmt: skip
    if da < 0:
        return NO_DESTINATION, np.inf, np.inf, e, e, e, np.empty(0, dtype=np.int64)
    eta, length, lat, lon, times, nodes = _route_core(ends_, w, geo, rank, up_, m_, fwd_, bwd_, buf,
                                                      arcs, cur, oa, ot, da, dt)  # fmt: skip
    return OK, eta, length, lat, lon, times, nodes
