"""Locating a point on the network: snap a latitude/longitude to the nearest road the class may use.

The result is an edge position, not a node: the arc, the fraction ``t`` along it (0 at its tail, 1 at
its head) and the distance from the point. Two-way streets are indexed once (one arc of each pair); the
other direction is ``arc_twin``. The search is a uniform grid of road pieces in a local metric
projection, scanned in rings until no closer piece can exist, compiled with numba.

Everything here takes the frozen :class:`~dispatch.roads.graph.RoadGraph`, the grid
(:class:`SnapIndex`, built once by :func:`build_index`) and the per-arc class mask of where a point
may snap; the routing engine (:class:`dispatch.routing.engine.Engine`) owns and caches those, and
``Network.snap`` is the public entry point.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from dispatch.errors import PointError
from dispatch.geo import haversine_m
from dispatch.roads.graph import RoadGraph
from dispatch.routing.kernels import jit

CELL_M = 100.0
#: A :class:`SnapIndex` as a kernel receives it: a plain tuple (see :data:`dispatch.routing.kernels.Packed`).
Packed = tuple[Any, ...]
_M_PER_DEG = math.pi / 180.0 * 6_371_008.8


@dataclass(frozen=True)
class Snapped:
    """Snapped positions (arrays of equal length, one row per point).

    Attributes
    ----------
    arc
        Dense arc index of the road (the canonical direction of a two-way street).
    t
        Fraction along the arc from its tail (0) to its head (1).
    dist_m
        Distance from the point to the road.
    offset_m
        Distance along the arc from its tail to the snapped position.
    lat, lon
        The snapped position.
    """

    arc: np.ndarray
    t: np.ndarray
    dist_m: np.ndarray
    offset_m: np.ndarray
    lat: np.ndarray
    lon: np.ndarray

    def __len__(self) -> int:
        return len(self.arc)


class SnapIndex(NamedTuple):
    """The grid of road pieces for one network (built once per network; a kernel argument)."""

    lat0: float
    lon0: float
    kx: float  # metres per degree of longitude at lat0
    gx0: float
    gy0: float
    nx: int
    ny: int
    cell_ptr: np.ndarray
    cell_piece: np.ndarray
    px0: np.ndarray
    py0: np.ndarray
    px1: np.ndarray
    py1: np.ndarray
    piece_arc: np.ndarray
    piece_s0: np.ndarray  # projected length along the arc at the piece start
    arc_plen: np.ndarray  # projected length of each arc


def build_index(net: RoadGraph) -> SnapIndex:
    """Build the snapping grid of a road graph (canonical arcs only)."""
    twin = net.arc_twin
    arcs = np.arange(net.n_arcs)
    canonical = ~net.arc_contraflow & (
        (twin < 0) | net.arc_contraflow[np.maximum(twin, 0)] | (arcs < twin)
    )
    lat0 = float(np.mean(net.node_lat))
    lon0 = float(np.mean(net.node_lon))
    kx = _M_PER_DEG * math.cos(math.radians(lat0))
    gx = (net.geom_lon - lon0) * kx
    gy = (net.geom_lat - lat0) * _M_PER_DEG
    ptr = net.geom_ptr
    # pieces: consecutive geometry points of the same arc
    starts = np.arange(len(gx) - 1)
    same_arc = np.ones(len(starts), bool)
    same_arc[ptr[1:-1] - 1] = False  # the last point of an arc does not start a piece
    piece_arc_all = np.repeat(arcs, np.diff(ptr) - 1)
    starts = starts[same_arc]
    seg_len = np.hypot(gx[starts + 1] - gx[starts], gy[starts + 1] - gy[starts])
    arc_plen = np.bincount(piece_arc_all, weights=seg_len, minlength=net.n_arcs)
    cum = np.cumsum(seg_len) - seg_len
    first_piece = np.concatenate([[0], np.cumsum(np.diff(ptr) - 1)[:-1]])
    piece_s0 = cum - np.repeat(cum[first_piece], np.diff(ptr) - 1)
    keep = canonical[piece_arc_all]
    starts, piece_arc, piece_s0 = starts[keep], piece_arc_all[keep], piece_s0[keep]
    x0, y0, x1, y1 = gx[starts], gy[starts], gx[starts + 1], gy[starts + 1]
    gx0, gy0 = float(min(x0.min(), x1.min())), float(min(y0.min(), y1.min()))
    nx = int((max(x0.max(), x1.max()) - gx0) // CELL_M) + 1
    ny = int((max(y0.max(), y1.max()) - gy0) // CELL_M) + 1
    cx0 = ((np.minimum(x0, x1) - gx0) // CELL_M).astype(np.int64)
    cx1 = ((np.maximum(x0, x1) - gx0) // CELL_M).astype(np.int64)
    cy0 = ((np.minimum(y0, y1) - gy0) // CELL_M).astype(np.int64)
    cy1 = ((np.maximum(y0, y1) - gy0) // CELL_M).astype(np.int64)
    cells: list[np.ndarray] = []
    pieces: list[np.ndarray] = []
    for dx in range(int((cx1 - cx0).max()) + 1):
        for dy in range(int((cy1 - cy0).max()) + 1):
            sel = (cx0 + dx <= cx1) & (cy0 + dy <= cy1)
            p = np.flatnonzero(sel)
            cells.append((cy0[p] + dy) * nx + cx0[p] + dx)
            pieces.append(p)
    cell = np.concatenate(cells)
    piece = np.concatenate(pieces)
    order = np.lexsort((piece, cell))
    cell_ptr = np.zeros(nx * ny + 1, dtype=np.int64)
    cell_ptr[1:] = np.cumsum(np.bincount(cell, minlength=nx * ny))
    return SnapIndex(lat0, lon0, kx, gx0, gy0, nx, ny, cell_ptr, piece[order].astype(np.int32),
                     x0, y0, x1, y1, piece_arc.astype(np.int32), piece_s0, arc_plen)  # fmt: skip


@jit
def _snap_point(
    x: float, y: float, g_: Packed, cell: float, access: np.ndarray, bit: int, tol: float
) -> tuple[int, float, float]:
    """Nearest allowed road piece to one point within ``tol`` metres: ``(arc, t, dist)``, arc -1 if none."""
    g = SnapIndex(*g_)
    cx = int(math.floor((x - g.gx0) / cell))
    cy = int(math.floor((y - g.gy0) / cell))
    best = tol
    best_arc = -1
    best_t = 0.0
    rmax = int(tol / cell) + 2
    for r in range(rmax + 1):
        for gy in range(cy - r, cy + r + 1):
            if gy < 0 or gy >= g.ny:
                continue
            edge_row = gy == cy - r or gy == cy + r
            step = 1 if edge_row else 2 * r
            gx = cx - r
            while gx <= cx + r:
                if 0 <= gx < g.nx:
                    c = gy * g.nx + gx
                    for j in range(g.cell_ptr[c], g.cell_ptr[c + 1]):
                        p = g.cell_piece[j]
                        a = g.piece_arc[p]
                        if (access[a] >> bit) & 1 == 0:
                            continue
                        dx = g.px1[p] - g.px0[p]
                        dy = g.py1[p] - g.py0[p]
                        ll = dx * dx + dy * dy
                        u = 0.0
                        if ll > 0.0:
                            u = ((x - g.px0[p]) * dx + (y - g.py0[p]) * dy) / ll
                            u = min(1.0, max(0.0, u))
                        ex = g.px0[p] + u * dx - x
                        ey = g.py0[p] + u * dy - y
                        d = math.sqrt(ex * ex + ey * ey)
                        if d < best or (d == best and best_arc >= 0 and a < best_arc):
                            best = d
                            best_arc = a
                            plen = g.arc_plen[a]
                            best_t = (g.piece_s0[p] + u * math.sqrt(ll)) / plen if plen > 0 else 0.0
                if step == 0:
                    break
                gx += step
        # every piece not yet seen lies in a cell at Chebyshev ring > r: at least r*cell away
        if best_arc >= 0 and best <= r * cell:
            break
    # a point at an arc's end is at that node exactly (no 1e-16 left to drive on the arc)
    if best_t < 1e-9:
        best_t = 0.0
    elif best_t > 1.0 - 1e-9:
        best_t = 1.0
    return best_arc, best_t, (best if best_arc >= 0 else np.inf)


@jit
def snap_kernel(
    qx: np.ndarray, qy: np.ndarray, g: Packed, cell: float, access: np.ndarray, bit: int,
    tol: float, out_arc: np.ndarray, out_t: np.ndarray, out_d: np.ndarray,
) -> None:  # fmt: skip
    """:func:`_snap_point` for every query point (projected metres ``qx``, ``qy``)."""
    for i in range(len(qx)):
        out_arc[i], out_t[i], out_d[i] = _snap_point(qx[i], qy[i], g, cell, access, bit, tol)


#: Sequences of at most this many items are checked item by item for booleans and strings.
_CHECK_ITEMS = 16
_SEQ = (tuple, list)
_NOT_NUMBER = (bool, np.bool_, str, bytes)


def as_points(points: object, *, name: str = "points") -> np.ndarray:
    """Turn ``(lat, lon)`` or an (n, 2) array-like into a float (n, 2) array; check its shape.

    Booleans are refused (``True`` is not a latitude), as are strings."""
    if isinstance(points, np.ndarray):
        if points.dtype == np.bool_ or points.dtype.kind in "USO":
            raise PointError(f"{name} must be (lat, lon) numbers, got an array of {points.dtype}")
    elif isinstance(points, _SEQ) and len(points) <= _CHECK_ITEMS:
        # a point or a few (the dispatch path); long lists are left to numpy's conversion
        for p in points:
            if isinstance(p, _NOT_NUMBER) or (
                isinstance(p, _SEQ) and any(isinstance(x, _NOT_NUMBER) for x in p)
            ):
                raise PointError(f"{name} must be (lat, lon) pairs of numbers, got {points!r}")
    elif isinstance(points, _NOT_NUMBER):
        raise PointError(f"{name} must be (lat, lon) pairs of numbers, got {points!r}")
    try:
        arr = np.asarray(points, dtype=np.float64)
    except (TypeError, ValueError):
        raise PointError(f"{name} must be (lat, lon) pairs of numbers, got {points!r}") from None
    if arr.ndim == 1 and arr.shape[0] == 2:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise PointError(
            f"{name} must be (lat, lon) or an array of shape (n, 2), got shape {arr.shape}"
        )
    return arr


def check_points(
    bbox: tuple[float, float, float, float], pts: np.ndarray, *, name: str = "point"
) -> None:
    """Raise :class:`PointError` for NaN, out-of-range or swapped coordinates (first bad one named).

    ``bbox`` is the map's ``(min_lat, min_lon, max_lat, max_lon)``; points within about 5 km of it
    pass (the snapping tolerance decides the rest)."""
    min_lat, min_lon, max_lat, max_lon = bbox
    m = 0.05  # degrees of margin (about 5 km)
    if len(pts) == 1:  # the dispatch hot path: plain floats
        la, lo = float(pts[0, 0]), float(pts[0, 1])
        if min_lat - m <= la <= max_lat + m and min_lon - m <= lo <= max_lon + m:
            return
    lat, lon = pts[:, 0], pts[:, 1]
    bad = ~np.isfinite(lat) | ~np.isfinite(lon)
    if bad.any():
        i = int(np.argmax(bad))
        raise PointError(f"{name} {i} has a non-finite coordinate: ({lat[i]}, {lon[i]})")
    bad = (np.abs(lat) > 90) | (np.abs(lon) > 180)
    if bad.any():
        i = int(np.argmax(bad))
        swapped = abs(lon[i]) <= 90 and abs(lat[i]) <= 180
        hint = "; latitude and longitude look swapped" if swapped else ""
        raise PointError(
            f"{name} {i} is out of range: lat={lat[i]} must be in [-90, 90], "
            f"lon={lon[i]} in [-180, 180]{hint}"
        )
    inside = (
        (lat >= min_lat - m) & (lat <= max_lat + m) & (lon >= min_lon - m) & (lon <= max_lon + m)
    )
    swapped = (
        (lon >= min_lat - m) & (lon <= max_lat + m) & (lat >= min_lon - m) & (lat <= max_lon + m)
    )
    bad = ~inside & swapped
    if bad.any():
        i = int(np.argmax(bad))
        raise PointError(
            f"{name} {i} ({lat[i]}, {lon[i]}) is off the map but ({lon[i]}, {lat[i]}) is on it: "
            f"latitude and longitude look swapped (give LAT,LON)"
        )


def check_tolerance(tolerance_m: object, default: float) -> float:
    """The snapping tolerance in metres (``None``: the default), a positive finite number."""
    if tolerance_m is None:
        return default
    if isinstance(tolerance_m, bool) or not isinstance(tolerance_m, int | float | np.number):
        raise PointError(f"tolerance_m={tolerance_m!r} must be a positive number of metres")
    tol = float(tolerance_m)
    if not (math.isfinite(tol) and tol > 0):
        raise PointError(f"tolerance_m={tolerance_m!r} must be a positive number of metres")
    return tol


def snap_arrays(
    idx: SnapIndex, access: np.ndarray, pts: np.ndarray, bit: int, tol: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Raw snapping of validated points: ``(arc, t, dist_m)``, arc -1 beyond ``tol``.

    ``access`` is the per-arc class mask of where a point may snap (bit ``bit`` for the class)."""
    qx = (pts[:, 1] - idx.lon0) * idx.kx
    qy = (pts[:, 0] - idx.lat0) * _M_PER_DEG
    n = len(pts)
    arc = np.empty(n, dtype=np.int64)
    t = np.empty(n)
    d = np.empty(n)
    snap_kernel(qx, qy, tuple(idx), CELL_M, access, bit, tol, arc, t, d)
    return arc, t, d


def snap_one(
    idx: SnapIndex,
    access: np.ndarray,
    lat: float,
    lon: float,
    bit: int,
    tol: float,
    *,
    packed: Packed | None = None,
) -> tuple[int, float, float]:
    """:func:`snap_arrays` for one validated point, without array overhead (the dispatch hot path).

    ``packed`` is ``tuple(idx)`` when the caller keeps it (saves building it per call)."""
    return _snap_point(  # type: ignore[no-any-return,unused-ignore]
        (lon - idx.lon0) * idx.kx,
        (lat - idx.lat0) * _M_PER_DEG,
        packed if packed is not None else tuple(idx),
        CELL_M,
        access,
        bit,
        tol,
    )


def geom_cum_m(graph: RoadGraph) -> np.ndarray:
    """Cumulative length along each arc's geometry, metres, per geometry point (0 at arc start)."""
    seg = haversine_m(
        graph.geom_lat[:-1], graph.geom_lon[:-1], graph.geom_lat[1:], graph.geom_lon[1:]
    )
    seg = np.concatenate([[0.0], seg])
    first = graph.geom_ptr[:-1]
    seg[first] = 0.0
    c = np.cumsum(seg)
    cum: np.ndarray = c - np.repeat(c[first], np.diff(graph.geom_ptr))
    cum.flags.writeable = False
    return cum


def position(graph: RoadGraph, cum: np.ndarray, arc: np.ndarray, t: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Latitude/longitude of the points at fraction ``t`` along arcs (``cum``: :func:`geom_cum_m`)."""
    arc = np.asarray(arc)
    t = np.asarray(t, dtype=np.float64)
    lat = np.empty(len(arc))
    lon = np.empty(len(arc))
    for i, (a, f) in enumerate(zip(arc.tolist(), t.tolist(), strict=True)):
        lo, hi = int(graph.geom_ptr[a]), int(graph.geom_ptr[a + 1])
        c = cum[lo:hi]
        s = f * c[-1]
        j = min(int(np.searchsorted(c, s, side="right")) - 1, hi - lo - 2)
        j = max(j, 0)
        seg = c[j + 1] - c[j]
        u = (s - c[j]) / seg if seg > 0 else 0.0
        lat[i] = graph.geom_lat[lo + j] + u * (graph.geom_lat[lo + j + 1] - graph.geom_lat[lo + j])
        lon[i] = graph.geom_lon[lo + j] + u * (graph.geom_lon[lo + j + 1] - graph.geom_lon[lo + j])
    return lat, lon
