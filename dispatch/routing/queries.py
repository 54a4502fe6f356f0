"""Exact fastest-unit routing: travel-time matrices, k fastest units, routes.

Each query takes the routing :class:`~dispatch.routing.engine.Engine` (caches, scratch space) and a
:class:`~dispatch.routing.closures.ClosureSet` (the closures it should see), validates its input at
this boundary and calls one kernel family: Dijkstra (:mod:`dispatch.routing.dijkstra`), the CCH
(:mod:`dispatch.routing.cch`) or a fleet's nearest-units table, as
:class:`~dispatch.routing.engine.EnginePolicy` decides. ``Network`` methods
(:meth:`dispatch.Network.fastest_units` ...) are the public entry points.

Positions are edge positions (:mod:`dispatch.roads.snapping`): a unit mid-arc first drives the rest of its
arc (or, on a two-way street, turns back along the twin arc); a call is reached at its offset along
its arc, from either direction on a two-way street; a point at an arc's end is at that node.

The dispatch query (:func:`fastest_units`) is, by Dijkstra, a reverse search from the call that stops
as soon as no unit outside the current k best can still beat the k-th: with 50 units spread over a
city it settles a few hundred nodes instead of the whole graph. Units are ranked by their ETA rounded
to ``EnginePolicy.eta_resolution_s`` (1 ms), then by unit id, so that the answer does not depend on
which engine gave it.
"""

from __future__ import annotations

import bisect
import contextlib
import math
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, cast

import numpy as np
from numba.np.numpy_support import carray

from dispatch.errors import FleetError, PointError
from dispatch.model import DEFAULT_TURNOUT_S, MAX_TURNOUT_S
from dispatch.roads.profiles import VEHICLE_CLASSES, check_vehicle
from dispatch.roads.snapping import (
    _M_PER_DEG,
    CELL_M,
    SnapIndex,
    _snap_point,
    as_points,
    check_points,
)
from dispatch.routing import cch, p2p
from dispatch.routing.closures import ClosureSet
from dispatch.routing.dijkstra import (
    dispatch_kernel,
    knearest_query,
    matrix_kernel,
    p2p_kernel,
    tree_path,
)
from dispatch.routing.engine import (
    ClassUnits,
    Engine,
    EnginePolicy,
    PreparedFleet,
    UnitRow,
    check_hour,
)
from dispatch.routing.kernels import Packed, address_pointer, jit, same_arc_kernel
from dispatch.routing.reach import SAME_ROAD_M

if TYPE_CHECKING:
    from dispatch.routing.reach import CallSite, ClassReach, ReachModel

INF = np.inf

# --- matrices -----------------------------------------------------------------------------------


def _same_arc(engine: Engine, o_arc: np.ndarray, o_t: np.ndarray, d_arc: np.ndarray,
              d_t: np.ndarray, w: np.ndarray) -> np.ndarray:  # fmt: skip
    """Direct time along a shared (canonical) arc from each origin to each destination, else inf."""
    out = np.empty((len(o_arc), len(d_arc)))
    same_arc_kernel(engine.ends.twin, w, np.asarray(o_arc, dtype=np.int64),
                    np.asarray(o_t, dtype=float), np.asarray(d_arc, dtype=np.int64),
                    np.asarray(d_t, dtype=float), out)  # fmt: skip
    return out


def travel_times(
    engine: Engine, closures: ClosureSet, origins: object, destinations: object, *,
    vehicle: str = "ambulance", hour: float | None = None,
) -> np.ndarray:  # fmt: skip
    """Travel times in seconds from every origin to every destination (see ``Network.travel_times``)."""
    hour = check_hour(hour)
    check_vehicle(vehicle)
    o = as_points(origins, name="origins")
    d = as_points(destinations, name="destinations")
    o_arc, o_t = engine.locate(o, vehicle, "origin", "from")
    d_arc, d_t = engine.locate(d, vehicle, "destination", "to")
    w = engine.weights(vehicle, hour, closures)
    return matrix(engine, w, o_arc, o_t, d_arc, d_t)


def reach_times(
    engine: Engine, closures: ClosureSet, reach: ReachModel | None, origins: object,
    destinations: object, *, vehicle: str = "ambulance", hour: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """``(drive_s, walk_s)`` from every origin to every destination with the crew at the call.

    A destination standing on a way the class cannot drive (:mod:`dispatch.routing.reach`) is
    reached through the access point that minimises drive + walk for each origin, also when the
    walk exceeds the class's on-foot limit (``beyond_reach``: the crew still gets there, late);
    ``inf`` when no access point lies within the search radius. Without a reach model (or where
    the class drives) ``walk_s`` is 0 and ``drive_s`` is :func:`travel_times`.
    """
    hour = check_hour(hour)
    c = check_vehicle(vehicle)
    o = as_points(origins, name="origins")
    d = as_points(destinations, name="destinations")
    if reach is None:
        return travel_times(engine, closures, o, d, vehicle=vehicle, hour=hour), np.zeros(
            (len(o), len(d))
        )
    check_points(engine.graph.bbox, d, name="destination")
    o_arc, o_t = engine.locate(o, vehicle, "origin", "from")
    return _reach_times_from(engine, closures, reach, o_arc, o_t, d, vehicle, c, hour, {})


#: A CCH query between ``LABELS_MAX_POINTS`` points or fewer on one side and
#: ``LABELS_MAX_FEW`` or fewer on the other is answered from the many side's labels
#: (:meth:`Engine.point_labels`, cached) and one search per point of the few side
#: (:func:`_by_labels`), not by PHAST sweeps of the whole graph: a live service's units to a call
#: (or to its access points), a call to the hospitals. The rule depends on the query's size alone,
#: so the same query is always summed the same way. Computing the labels costs about what one PHAST
#: sweep does up to ~64 points (Da Nang, 18:20: 50 x 1 0.30 vs 0.22 ms, 128 x 1 0.56 vs 0.33 ms,
#: 256 x 1 1.40 vs 0.48 ms uncached); kept, they make the next query ~20 us per few-side point.
LABELS_MAX_POINTS = 64
LABELS_MAX_FEW = 8


def _by_labels(engine: Engine, h: cch.Hierarchy, m: cch.Metric, ws: cch.Workspace, w: np.ndarray,
               o_arc: np.ndarray, o_t: np.ndarray, d_arc: np.ndarray, d_t: np.ndarray) -> np.ndarray:  # fmt: skip
    """The matrix by the CCH's labels (see ``LABELS_MAX_POINTS``): to a few destinations, the
    origins' forward labels against one backward search from each destination (the kernel of
    ``fastest_units``' labels path, with no turnout); from a few origins, the destinations'
    backward labels against one forward search from each origin; same-arc times included."""
    if len(d_arc) <= LABELS_MAX_FEW:
        lab, pos = engine.point_labels(w, o_arc, o_t)
        out = np.empty((len(d_arc), len(o_arc)))
        for j in range(len(d_arc)):
            ws.cur += 1
            cch.dispatch_cch_kernel(engine.ends_p, w, h.rank, int(d_arc[j]), float(d_t[j]), pos,
                                    h.up_p, m.down_w, ws.fwd_p, ws.cur, ws.s.buf, lab, out[j])  # fmt: skip
        return out.T.copy()
    lab, pos = engine.point_labels(w, d_arc, d_t, reach=True)
    res = np.empty((len(o_arc), len(d_arc)))
    for i in range(len(o_arc)):
        ws.cur += 1
        cch.from_one_cch_kernel(engine.ends_p, w, h.rank, int(o_arc[i]), float(o_t[i]), pos,
                                h.up_p, m.up_w, ws.fwd_p, ws.cur, ws.s.buf, lab, res[i])  # fmt: skip
    return res


def _labels_fit(n_o: int, n_d: int) -> bool:
    """Whether a matrix of this size goes by labels (:func:`_by_labels`)."""
    return (n_d <= LABELS_MAX_FEW and n_o <= LABELS_MAX_POINTS) or (
        n_o <= LABELS_MAX_FEW and n_d <= LABELS_MAX_POINTS
    )


def matrix(engine: Engine, w: np.ndarray, o_arc: np.ndarray, o_t: np.ndarray, d_arc: np.ndarray,
           d_t: np.ndarray) -> np.ndarray:  # fmt: skip
    """Travel-time matrix between snapped positions under weights ``w`` (CCH or Dijkstra)."""
    forward = len(o_arc) <= len(d_arc)
    if engine.use_cch(w, min(len(o_arc), len(d_arc))):
        h, m, ws = engine.hierarchy(), engine.metric(w), engine.cch_workspace()
        if _labels_fit(len(o_arc), len(d_arc)):
            return _by_labels(engine, h, m, ws, w, o_arc, o_t, d_arc, d_t)
        ln, lc = engine.pairs(o_arc, o_t, w, reach=False)
        rn, rc = engine.pairs(d_arc, d_t, w, reach=True)
        if forward:  # one PHAST sweep per origin
            out = cch.matrix(h, m, ws, ln, lc, rn, rc)
        else:  # one backward sweep per destination
            out = cch.matrix(h, m, ws, rn, rc, ln, lc, backward=True).T.copy()
        both: np.ndarray = np.minimum(out, _same_arc(engine, o_arc, o_t, d_arc, d_t, w))
        return both
    ln, lc = engine.pairs(o_arc, o_t, w, reach=False)
    rn, rc = engine.pairs(d_arc, d_t, w, reach=True)
    dws = engine.scratch()
    if forward:  # Dijkstra from each origin, stopping once every destination is settled
        out = np.empty((len(o_arc), len(d_arc)))
        dws.cur = matrix_kernel(engine.fwd_p, w, ln, lc, rn, rc, dws.sp, dws.cur, out)
    else:  # reverse searches from destinations
        out_t = np.empty((len(d_arc), len(o_arc)))
        dws.cur = matrix_kernel(engine.rev_p, w, rn, rc, ln, lc, dws.sp, dws.cur, out_t)
        out = out_t.T.copy()
    res: np.ndarray = np.minimum(out, _same_arc(engine, o_arc, o_t, d_arc, d_t, w))
    return res


# --- routes -------------------------------------------------------------------------------------


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
        Cumulative driving seconds at each point of ``coords`` (0 first, ``eta_s`` last; never NaN).
    nodes
        OSM ids of the network nodes passed.
    vehicle
        Vehicle class.

    A route is an immutable value. The query leaves its geometry as arrays; ``coords``, ``times_s``
    and ``nodes`` become Python lists on first access (a caller that needs only ``eta_s`` pays for
    none of them).
    """

    __slots__ = ("eta_s", "length_m", "vehicle", "_coords", "_times", "_nodes", "_arrays")

    eta_s: float
    length_m: float
    vehicle: str
    _coords: list[tuple[float, float]] | None
    _times: list[float] | None
    _nodes: list[int] | None
    _arrays: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None

    def __init__(self, eta_s: float, length_m: float, coords: list[tuple[float, float]],
                 times_s: list[float], nodes: list[int], vehicle: str) -> None:  # fmt: skip
        for k, v in (("eta_s", eta_s), ("length_m", length_m), ("vehicle", vehicle),
                     ("_coords", coords), ("_times", times_s), ("_nodes", nodes),
                     ("_arrays", None)):  # fmt: skip
            object.__setattr__(self, k, v)

    @classmethod
    def _from_arrays(cls, eta_s: float, length_m: float, lat: np.ndarray, lon: np.ndarray,
                     times: np.ndarray, nodes: np.ndarray, vehicle: str) -> Route:  # fmt: skip
        r = cls.__new__(cls)
        for k, v in (("eta_s", eta_s), ("length_m", length_m), ("vehicle", vehicle),
                     ("_coords", None), ("_times", None), ("_nodes", None),
                     ("_arrays", (lat, lon, times, nodes))):  # fmt: skip
            object.__setattr__(r, k, v)
        return r

    def _materialize(self) -> None:
        arrays = self._arrays
        if arrays is not None:
            lat, lon, times, nodes = arrays
            object.__setattr__(self, "_coords", list(zip(lat.tolist(), lon.tolist(), strict=True)))
            object.__setattr__(self, "_times", times.tolist())
            object.__setattr__(self, "_nodes", nodes.tolist())
            object.__setattr__(self, "_arrays", None)

    @property
    def coords(self) -> list[tuple[float, float]]:
        """``(lat, lon)`` points from origin to destination."""
        if self._coords is None:
            self._materialize()
        assert self._coords is not None
        return self._coords

    @property
    def times_s(self) -> list[float]:
        """Cumulative driving seconds at each point of :attr:`coords`."""
        if self._times is None:
            self._materialize()
        assert self._times is not None
        return self._times

    @property
    def nodes(self) -> list[int]:
        """OSM ids of the network nodes passed."""
        if self._nodes is None:
            self._materialize()
        assert self._nodes is not None
        return self._nodes

    def _key(self) -> tuple[object, ...]:
        return (self.eta_s, self.length_m, self.coords, self.times_s, self.nodes, self.vehicle)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Route):
            return NotImplemented
        return self._key() == other._key()

    __hash__ = None  # type: ignore[assignment]  # mutable lists inside, as the dataclass had

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"Route is immutable: cannot set {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"Route is immutable: cannot delete {name!r}")

    def __reduce__(self) -> tuple[type[Route], tuple[object, ...]]:
        # pickling and copying rebuild the value through the constructor (slots are read-only)
        return (Route, (self.eta_s, self.length_m, self.coords, self.times_s, self.nodes,
                        self.vehicle))  # fmt: skip

    def __repr__(self) -> str:
        return (f"Route(eta_s={self.eta_s!r}, length_m={self.length_m!r}, "
                f"coords=<{len(self.coords)} points>, nodes=<{len(self.nodes)}>, "
                f"vehicle={self.vehicle!r})")  # fmt: skip

    def geojson(self) -> dict[str, object]:
        """The route as a GeoJSON Feature (LineString, lon/lat order)."""
        return {
            "type": "Feature",
            "geometry": {"type": "LineString", "coordinates": [[lon, lat] for lat, lon in self.coords]},
            "properties": {"eta_s": self.eta_s, "length_m": self.length_m, "vehicle": self.vehicle,
                           "nodes": self.nodes},
        }  # fmt: skip


_NO_ROUTE = (np.empty(0), np.empty(0), np.empty(0), np.empty(0, dtype=np.int64))


def _unreachable(vehicle: str) -> Route:
    return Route._from_arrays(INF, INF, *_NO_ROUTE, vehicle)


def _route_from_parts(
    engine: Engine, arcs: np.ndarray, t0: np.ndarray, t1: np.ndarray, w: np.ndarray, vehicle: str,
    eta_s: float = INF,
) -> Route:  # fmt: skip
    """A :class:`Route` driving ``arcs[i]`` from fraction ``t0[i]`` to ``t1[i]``, in order.

    Speed is uniform along an arc, so time along it is proportional to distance along its geometry
    (:func:`dispatch.routing.p2p.geometry_kernel`). Parts of zero length are dropped: a unit
    standing at the end of a closed arc (``inf`` weight) drives none of it, and ``0 * inf`` would
    be NaN. ``eta_s``, when finite, is the query's own figure (reported as the route's time).
    """
    eta, length, lat, lon, times, nodes = p2p.geometry_kernel(
        p2p.route_static(engine).geo, w, np.asarray(arcs, dtype=np.int64),
        np.asarray(t0, dtype=np.float64), np.asarray(t1, dtype=np.float64), float(eta_s),
    )  # fmt: skip
    return Route._from_arrays(eta, length, lat, lon, times, nodes, vehicle)


def _one_point(p: object) -> tuple[float, float] | None:
    """``(lat, lon)`` of a plain pair of real numbers (the common case), else None."""
    if (type(p) is tuple or type(p) is list) and len(p) == 2:
        a, b = p
        ta, tb = type(a), type(b)
        if (ta is float or ta is int) and (tb is float or tb is int):
            return float(a), float(b)
    return None


def route(
    engine: Engine, closures: ClosureSet, origin: object, destination: object, *,
    vehicle: str = "ambulance", hour: float | None = None,
) -> Route:  # fmt: skip
    """The fastest route from ``origin`` to ``destination`` (see ``Network.route``).

    Once the CCH is customized for the weights in force, the whole query after validation is one
    compiled call (:func:`dispatch.routing.p2p.route_points_kernel`)."""
    hour = check_hour(hour)
    c = check_vehicle(vehicle)
    o = _one_point(origin)
    d = _one_point(destination)
    if o is None or d is None:
        op = as_points(origin, name="origin")
        dp = as_points(destination, name="destination")
        if len(op) != 1 or len(dp) != 1:
            raise PointError("route takes one origin and one destination (lat, lon)")
        o = (float(op[0, 0]), float(op[0, 1]))
        d = (float(dp[0, 0]), float(dp[0, 1]))
    bbox = engine.graph.bbox
    for (la, lo), name in ((o, "origin"), (d, "destination")):
        if not (bbox[0] - 0.05 <= la <= bbox[2] + 0.05 and bbox[1] - 0.05 <= lo <= bbox[3] + 0.05):
            check_points(bbox, np.array([[la, lo]]), name=name)
    w = engine.weights(vehicle, hour, closures)
    if engine.use_cch(w, 1):
        st = p2p.route_static(engine)
        h, m, ws = engine.hierarchy(), engine.metric(w), engine.cch_workspace()
        ws.cur += 1
        status, eta, length, lat, lon, times, nodes = p2p.route_points_kernel(
            o[0], o[1], d[0], d[1], st.snap, st.cell_m, st.access_from, st.access_to, c,
            engine.settings.snap_tolerance_m, st.ends, w, st.geo, h.rank, h.up_p, tuple(m),
            ws.fwd_p, ws.bwd_p, ws.s.buf2, ws.s.arcs, ws.cur,
        )  # fmt: skip
        if status == p2p.OK:
            return Route._from_arrays(eta, length, lat, lon, times, nodes, vehicle)
    # Dijkstra (CCH not customized yet), or a point that does not snap (raises the usual error)
    pts = np.array([o, d])
    o_arc, o_t = engine.locate(pts[:1], vehicle, "origin", "from")
    d_arc, d_t = engine.locate(pts[1:], vehicle, "destination", "to")
    return route_between(engine, w, int(o_arc[0]), float(o_t[0]), int(d_arc[0]), float(d_t[0]),
                         vehicle)  # fmt: skip


def route_between(
    engine: Engine, w: np.ndarray, oa: int, ot: float, da: int, dt: float, vehicle: str
) -> Route:
    """The fastest route between two edge positions under weights ``w``."""
    g = engine.graph
    if engine.use_cch(w, 1):  # one compiled call: CCH query, unpacking, geometry
        st = p2p.route_static(engine)
        h, m, ws = engine.hierarchy(), engine.metric(w), engine.cch_workspace()
        ws.cur += 1
        eta, length, lat, lon, times, nodes = p2p.route_arcs_kernel(
            st.ends, w, st.geo, h.rank, h.up_p, tuple(m), ws.fwd_p, ws.bwd_p, ws.s.buf2,
            ws.s.arcs, ws.cur, int(oa), float(ot), int(da), float(dt),
        )  # fmt: skip
        return Route._from_arrays(eta, length, lat, lon, times, nodes, vehicle)
    ln, lc = engine.pairs(np.array([oa]), np.array([ot]), w, reach=False)
    rn, rc = engine.pairs(np.array([da]), np.array([dt]), w, reach=True)
    dws = engine.scratch()
    eta, j = p2p_kernel(engine.fwd_p, w, ln[0], lc[0], rn[0], rc[0], dws.sp, dws.next_stamp())
    direct = float(
        _same_arc(engine, np.array([oa]), np.array([ot]), np.array([da]), np.array([dt]), w)[0, 0]
    )
    if direct <= eta:
        if direct == INF:
            return _unreachable(vehicle)
        if dt >= ot:
            return _route_from_parts(
                engine, np.array([oa]), np.array([ot]), np.array([dt]), w, vehicle
            )
        b = int(g.arc_twin[oa])
        return _route_from_parts(
            engine, np.array([b]), np.array([1 - ot]), np.array([1 - dt]), w, vehicle
        )
    if j < 0:
        return _unreachable(vehicle)
    path, v = tree_path(dws.s.pred, g.arc_tail, int(rn[0][j]))
    start_cost = float(dws.s.dist[v])
    first: list[tuple[int, float]] = []
    if v == g.arc_head[oa] and abs(start_cost - lc[0][0]) <= 1e-9 * max(1.0, eta):
        first = [(oa, ot)]
    elif ot > 0:
        first = [(int(g.arc_twin[oa]), 1 - ot)]
    last: list[tuple[int, float]] = []
    if j == 0:
        last = [(da, dt)]
    elif j == 1:
        last = [(int(g.arc_twin[da]), 1 - dt)]
    arcs = np.concatenate([[a for a, _ in first], path, [a for a, _ in last]]).astype(np.int64)
    t0 = np.zeros(len(arcs))
    t1 = np.ones(len(arcs))
    if first:
        t0[0] = first[0][1]
    if last:
        t1[-1] = last[0][1]
    if len(arcs) == 0:  # origin and destination at the same node
        arcs, t0, t1 = np.array([oa]), np.array([ot]), np.array([ot])
    # the time is the pieces' sum in path order, as the CCH's route reports it (p2p._route_core):
    # the same path gets the same time from either engine
    return _route_from_parts(engine, arcs, t0, t1, w, vehicle)


# --- fastest units ------------------------------------------------------------------------------


@dataclass(frozen=True)
class UnitETA:
    """One recommended unit: ``eta_s = turnout_s + drive_s + walk_s`` (the crew at the call).

    ``reach`` is ``"drive"`` (the call stands on a road the class drives to), ``"drive+walk"``
    (the crew leaves the vehicle at ``access_point`` and covers ``walk_m`` on foot in ``walk_s``)
    or ``"beyond_reach"`` (the on-foot leg exceeds the class's limit; ``note`` says why and which
    classes reach the call): see :mod:`dispatch.routing.reach`. The ``route`` ends at the access
    point.
    """

    unit: str
    vehicle: str
    eta_s: float
    drive_s: float
    turnout_s: float
    route: Route | None = field(default=None, compare=False)
    reach: str = "drive"
    access_point: tuple[float, float] | None = None
    walk_m: float = 0.0
    walk_s: float = 0.0
    note: str = field(default="", compare=False)
    walk_coords: tuple[tuple[float, float], ...] = field(default=(), compare=False)

    def walk_geojson(self) -> dict[str, object] | None:
        """The on-foot leg as a GeoJSON Feature (LineString along paths, drawn dashed), or None."""
        if len(self.walk_coords) < 2:
            return None
        return {
            "type": "Feature",
            "geometry": {"type": "LineString",
                         "coordinates": [[lon, lat] for lat, lon in self.walk_coords]},
            "properties": {"leg": "walk", "unit": self.unit, "vehicle": self.vehicle,
                           "walk_m": round(self.walk_m, 1), "walk_s": round(self.walk_s, 3),
                           "dashArray": "6 6"},
        }  # fmt: skip

    def as_dict(self) -> dict[str, object]:
        """JSON form: ``{"unit", "vehicle", "eta_s", "drive_s", "turnout_s", "reach", "walk_m",
        "walk_s", "access_point"}`` (``[lat, lon]`` or null; + ``note`` and ``route`` GeoJSON)."""
        d: dict[str, object] = {"unit": self.unit, "vehicle": self.vehicle,
                                "eta_s": round(self.eta_s, 3), "drive_s": round(self.drive_s, 3),
                                "turnout_s": self.turnout_s, "reach": self.reach,
                                "walk_m": round(self.walk_m, 1), "walk_s": round(self.walk_s, 3),
                                "access_point": None if self.access_point is None
                                else [round(x, 7) for x in self.access_point]}  # fmt: skip
        if self.note:
            d["note"] = self.note
        if self.route is not None:
            d["route"] = self.route.geojson()
        walk = self.walk_geojson()
        if walk is not None:
            d["walk_route"] = walk
        return d


_new_unit_eta = object.__new__
_set_dict = object.__setattr__


def _drive_template(uid: str, vehicle: str, turnout: float) -> dict[str, object]:
    """The fields of ``UnitETA(uid, vehicle, eta, eta - turnout, turnout)`` in field order, the
    two ETAs left to fill (see :func:`_drive_eta`)."""
    return {"unit": uid, "vehicle": vehicle, "eta_s": 0.0, "drive_s": 0.0, "turnout_s": turnout,
            "route": None, "reach": "drive", "access_point": None, "walk_m": 0.0, "walk_s": 0.0,
            "note": "", "walk_coords": ()}  # fmt: skip


def _drive_eta(uid: str, vehicle: str, eta: float, turnout: float,
               template: dict[str, object] | None = None) -> UnitETA:  # fmt: skip
    """``UnitETA(uid, vehicle, eta, eta - turnout, turnout)`` (a unit that drives to the call, no
    route), built from a copy of its :func:`_drive_template` without the frozen dataclass's
    ``object.__setattr__`` per field: the same value (equal, same ``repr`` and ``vars``, pickled
    alike) in a fraction of the time, which counts when a query takes a few tens of microseconds."""
    d = (template or _drive_template(uid, vehicle, turnout)).copy()
    d["eta_s"] = eta
    d["drive_s"] = eta - turnout
    u: UnitETA = _new_unit_eta(UnitETA)
    _set_dict(u, "__dict__", d)
    return u


def _drive_templates(cu: ClassUnits, vehicle: str) -> list[dict[str, object]]:
    """Each member's :func:`_drive_template` (kept by the class's units once built)."""
    t = cu.templates
    if t is None:
        t = cu.templates = [_drive_template(uid, vehicle, to)
                            for uid, to in zip(cu.ids, cu.turnouts, strict=True)]  # fmt: skip
    return t


def _class_answers(cu: ClassUnits, c: int, out_u: np.ndarray, out_e: np.ndarray,
                   n: int) -> list[UnitETA]:  # fmt: skip
    """The answer of a one-class fleet from its steady kernel's ranked candidates (members
    ``out_u[:n]``, ETAs ``out_e[:n]``): :func:`_drive_eta` inline, at a few us a query."""
    tmpl = cu.templates or _drive_templates(cu, VEHICLE_CLASSES[c])
    turnouts = cu.turnouts
    out = []
    for e, m_ in zip(out_e[:n].tolist(), out_u[:n].tolist(), strict=True):
        d = tmpl[m_].copy()
        d["eta_s"] = e
        d["drive_s"] = e - turnouts[m_]
        u: UnitETA = _new_unit_eta(UnitETA)
        _set_dict(u, "__dict__", d)
        out.append(u)
    return out


def _merged_answers(
    hits: list[tuple[int, ClassUnits, np.ndarray, int, int, np.ndarray, np.ndarray]],
    by_class: Mapping[int, ClassUnits], k: int, inv_res: float,
) -> list[UnitETA]:  # fmt: skip
    """The steady answer of a fleet of several classes: each class's ranked candidates (its
    first ``kc`` contain the answer's) merged by the general path's rank (ETA in resolution
    steps, then unit id); the ``k`` first. Also counts each class's query (as
    :meth:`ClassUnits.count_use` does)."""
    for _, cu, w, used, _, _, _ in hits:
        wu = cu.w_uses
        if len(wu) > 16:
            wu.clear()
        wu[id(w)] = (w, used + 1)
    found = []
    for c, cu, _, _, n, out_u, out_e in hits:
        mids = cu.ids
        for e, m_ in zip(out_e[:n].tolist(), out_u[:n].tolist(), strict=True):
            found.append((math.floor(e * inv_res + 0.5), mids[m_], e, c, m_))
    found.sort()
    out = []
    for _, uid, e, c, m_ in found[:k]:
        cu = by_class[c]
        tmpl = cu.templates or _drive_templates(cu, VEHICLE_CLASSES[c])
        out.append(_drive_eta(uid, VEHICLE_CLASSES[c], e, cu.turnouts[m_], tmpl[m_]))
    return out


_UNIT_KEYS = ("id", "vehicle", "lat", "lon")


class _DataFrameLike(Protocol):
    columns: object

    def to_dict(self, orient: str) -> list[dict[str, object]]: ...


def _fleet_rows(units: object) -> list[UnitRow]:
    if hasattr(units, "to_dict") and hasattr(units, "columns"):  # a pandas DataFrame
        units = units.to_dict("records")
    if isinstance(units, Mapping) or not isinstance(units, Sequence) or isinstance(units, str):
        raise FleetError(
            f"units must be a sequence of mappings or a DataFrame, got {type(units).__name__}"
        )
    if len(units) == 0:
        raise FleetError("the fleet is empty: give at least one unit")
    default = DEFAULT_TURNOUT_S.get  # no turnout_s: the model's one default (by class)
    try:  # the common case in one comprehension (a dispatch system re-reads its list per call)
        rows: list[UnitRow] = [
            (
                u["id"],
                u["vehicle"],
                u["lat"],
                u["lon"],
                u.get("available", True),
                t
                if (t := u.get("turnout_s")) is not None
                else default(v, 0.0)
                if isinstance(v := u["vehicle"], str)
                else 0.0,
            )
            for u in units
        ]
    except (KeyError, TypeError, AttributeError):
        for i, u in enumerate(units):
            missing = [k for k in _UNIT_KEYS if not isinstance(u, Mapping) or k not in u]
            if missing or not isinstance(u, Mapping):
                raise FleetError(f"unit {i} lacks {', '.join(missing) or 'mapping form'}") from None
        raise FleetError("units must be mappings with id, vehicle, lat, lon") from None
    return rows


def _check_rows(engine: Engine, rows: list[UnitRow]) -> None:
    """Raise :class:`FleetError` naming the first bad units (rows validated before are skipped)."""
    checked = engine.checked_rows
    problems = []
    for r in rows:
        try:
            if r in checked:  # validated before (a unit that has not changed)
                continue
        except TypeError:  # an unhashable field (a list as id...)
            pass
        uid = r[0]
        if isinstance(uid, bool) or not isinstance(uid, str | int | np.integer):
            problems.append(f"unit id {uid!r} must be a string or an integer")
        if r[1] not in VEHICLE_CLASSES:
            problems.append(f"unit {uid!r} has unknown vehicle class {r[1]!r}")
        t = r[5]
        ok_t = (not isinstance(t, bool) and isinstance(t, int | float | np.integer | np.floating)
                and math.isfinite(t) and 0 <= t <= MAX_TURNOUT_S)  # fmt: skip
        if not ok_t:
            problems.append(
                f"unit {uid!r} has turnout_s={t!r}; expected seconds in [0, {MAX_TURNOUT_S:g}]"
            )
        if not isinstance(r[4], bool | np.bool_):
            problems.append(f"unit {uid!r} has available={r[4]!r}; expected true or false")
        for k, v in (("lat", r[2]), ("lon", r[3])):
            if isinstance(v, bool | np.bool_) or not isinstance(
                v, int | float | np.floating | np.integer
            ):
                problems.append(f"unit {uid!r} has {k}={v!r}; expected a number")
    if problems:
        raise FleetError(
            "; ".join(problems[:5]) + (f" (+{len(problems) - 5} more)" if len(problems) > 5 else "")
        )
    if len(checked) > 100_000:
        checked.clear()
    with contextlib.suppress(TypeError):  # unhashable fields: validated, just not remembered
        checked.update(rows)


def prepare_fleet(engine: Engine, units: object) -> PreparedFleet:
    """The prepared form of a fleet (a :class:`Fleet` handle, or a list of units checked and
    snapped, reusing the engine's last fleet when only a few units moved)."""
    if isinstance(units, Fleet):
        if units.engine is not engine:
            raise FleetError("this Fleet was prepared for another network")
        return units.prepared
    cached = engine.last_fleet
    if cached is not None and type(units) is list:
        snap = cached.snapshot
        if snap is not None:
            try:  # one comparison in C of the unit mappings (equal mappings, equal rows)
                if units == snap:
                    return cached
            except (TypeError, ValueError):  # a value that does not compare (an array...)
                pass
    rows = _fleet_rows(units)
    if cached is not None and cached.rows == rows:
        if cached.snapshot is None and type(units) is list:
            _keep_snapshot(cached, units)
        return cached
    _check_rows(engine, rows)
    fleet = (cached.moved(engine, rows) if cached is not None else None) or PreparedFleet(
        engine, rows
    )
    engine.last_fleet = fleet
    return fleet


def _keep_snapshot(fleet: PreparedFleet, units: list[object]) -> None:
    """Remember copies of ``units`` (plain dicts, read into ``fleet.rows``) so that the next call
    with an equal list is answered by ``fleet`` after one comparison instead of a re-read.

    Copies, not the caller's dicts: a dict changed in place after this call must compare unequal.
    Rows read from the copies are checked against the fleet's (nothing kept otherwise)."""
    if not all(type(u) is dict for u in units):
        return
    snap: list[dict[object, object]] = [dict(u) for u in units]  # type: ignore[call-overload]
    if _fleet_rows(snap) == fleet.rows:
        fleet.snapshot = snap


class HasEngine(Protocol):
    """Anything that carries a routing engine (a ``Network``)."""

    @property
    def engine(self) -> Engine: ...


class Fleet:
    """A fleet prepared once for a network: what a dispatch system keeps and updates from AVL.

    Passing it to ``fastest_units`` instead of a list of unit mappings skips re-reading the list
    on every call (the fastest way to ask many calls of one fleet: from the fourth call with the
    same fleet and road state, one compiled call per vehicle class answers, see
    ``benchmarks/README.md``); :meth:`move` and :meth:`set_available` update one unit (only a
    moved unit is snapped again). Updates swap in a new prepared state: a query running in another thread sees
    the fleet before or after the update, never half of it.

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

    def __init__(self, net: HasEngine, units: object) -> None:
        engine = net.engine
        rows = _fleet_rows(units)
        _check_rows(engine, rows)
        self.net = net
        self.engine = engine
        self.prepared = PreparedFleet(engine, rows)
        self._index = {uid: i for i, uid in enumerate(self.prepared.ids)}

    def __len__(self) -> int:
        return len(self.prepared.rows)

    def _update(self, unit_id: object, **changes: object) -> None:
        i = self._index.get(str(unit_id))
        if i is None:
            raise FleetError(f"no unit {unit_id!r} in the fleet")
        rows = list(self.prepared.rows)
        r = rows[i]
        new_row: UnitRow = (r[0], r[1], changes.get("lat", r[2]), changes.get("lon", r[3]),
                            changes.get("available", r[4]), changes.get("turnout_s", r[5]))  # fmt: skip
        _check_rows(self.engine, [new_row])
        rows[i] = new_row
        self.prepared = self.prepared.moved(self.engine, rows) or PreparedFleet(self.engine, rows)

    def move(self, unit_id: object, lat: float, lon: float) -> None:
        """A unit's new position (an AVL fix); it is snapped again on the next query."""
        self._update(unit_id, lat=lat, lon=lon)

    def set_available(self, unit_id: object, available: bool) -> None:
        """Mark a unit available or not (busy, out of service)."""
        self._update(unit_id, available=available)

    @property
    def units(self) -> list[dict[str, object]]:
        """The units as mappings (``id``, ``vehicle``, ``lat``, ``lon``, ``available``, ``turnout_s``)."""
        keys = ("id", "vehicle", "lat", "lon", "available", "turnout_s")
        return [dict(zip(keys, r, strict=True)) for r in self.prepared.rows]


def fastest_units(
    engine: Engine, closures: ClosureSet, call: object, units: object, *, k: int = 3,
    hour: float | None = None, routes: bool = False, reach: ReachModel | None = None,
) -> list[UnitETA]:  # fmt: skip
    """The ``k`` available units that reach ``call`` first (see ``Network.fastest_units``).

    Ranked by ETA rounded to ``engine.policy.eta_resolution_s``, then unit id: every engine finds
    all units within that resolution of the k-th, so the same query gets the same units in the
    same order whichever engine answers. With a ``reach`` model (:mod:`dispatch.routing.reach`)
    a call standing on a way a class cannot drive is reached by drive + walk; units beyond their
    class's on-foot limit come after every unit that reaches (only when fewer than k reach)."""
    if type(k) is not int and (
        isinstance(k, bool) or not isinstance(k, int | np.integer)
    ):  # fmt: skip
        raise FleetError(f"k={k!r} must be a positive integer")
    if k < 1:
        raise FleetError(f"k={k!r} must be a positive integer")
    if hour is not None:
        hour = check_hour(hour)
    p: tuple[float, float] | None
    if type(call) is tuple and len(call) == 2 and type(call[0]) is float and type(call[1]) is float:
        p = call  # a (lat, lon) pair of floats: the common case, without an array
    else:
        p = _one_point(call)
    if p is None:
        pt = as_points(call, name="call")
        if len(pt) != 1:
            raise PointError(f"call must be one (lat, lon), got {len(pt)} points")
        p = (float(pt[0, 0]), float(pt[0, 1]))
    lat, lon = p
    if type(units) is Fleet and units.engine is engine:  # a prepared fleet: the CAD path
        fleet = units.prepared
    else:
        fleet = prepare_fleet(engine, units)
    fleet.uses += 1
    if not fleet.by_class:
        raise FleetError("no available unit in the fleet")
    bbox = engine.graph.bbox
    if not (bbox[0] - 0.05 <= lat <= bbox[2] + 0.05 and bbox[1] - 0.05 <= lon <= bbox[3] + 0.05):
        check_points(bbox, np.array([p]), name="call")  # raises for a bad point, names it
    kk = int(k)
    if not routes:
        steady = _fastest_steady(engine, closures, fleet, lat, lon, kk, hour, reach,
                                 type(units) is Fleet)  # fmt: skip
        if steady is not None:
            return steady
    policy = engine.policy
    res = policy.eta_resolution_s
    # (beyond reach, rank key: ETA in resolution steps, unit id, ETA, class, member index)
    found: list[tuple[int, int, str, float, int, int]] = []
    inv_res = 1.0 / res
    bound = INF
    snapped_any = False
    call_pos: dict[int, tuple[int, float]] = {}
    site: CallSite | None = None  # where the call stands on the walk network (located lazily)
    located = False
    reached: dict[int, ClassReach] = {}
    around: list[tuple[np.ndarray, np.ndarray]] = []
    # the call snapped per class as Engine.snap_call does (the same arithmetic, one projection)
    sidx, spacked, saccess, stol = engine.call_snapper()
    sx, sy = (lon - sidx.lon0) * sidx.kx, (lat - sidx.lat0) * _M_PER_DEG
    for c, cu in fleet.by_class.items():
        a0, t0, d0 = _snap_point(sx, sy, spacked, CELL_M, saccess, c, stol)
        cr = None
        if reach is not None and a0 >= 0 and d0 <= SAME_ROAD_M:
            # on a road the class drives (class_reach's rule holds whatever the walk network
            # says, as the call's distance to it is >= 0): no walk-network lookup
            reached[c] = reach.drive_reach[c]
        elif reach is not None:
            if not located:
                site, located = reach.locate(lat, lon), True
            if site is not None:
                cr = reached[c] = class_reach(reach, site, c, d0 if a0 >= 0 else INF, around)
                if cr.kind == "beyond_reach":
                    continue
                if cr.kind == "drive":
                    cr = None
        if a0 < 0 and cr is None:
            continue
        snapped_any = True
        call_pos[c] = (a0, t0)
        w = engine.weights(VEHICLE_CLASSES[c], hour, closures)
        nc = len(cu.ids)
        kc = min(kk, nc)
        n_w = cu.count_use(w)
        cands: list[tuple[float, int]] | None = None  # (ETA, member) of this class's candidates
        if cr is None and n_w >= policy.table_after_uses and kc < policy.table_k:
            # neither the fleet nor the weights changed lately: look the answer up in the fleet's
            # nearest-units table (built on the policy's n-th such query, so that a closure's next
            # answer never waits for it)
            tab_p = fleet.table_packed(engine, c, w)[1]
            cap = 3 * policy.table_k + nc
            out_u = np.empty(cap, dtype=np.int64)
            out_e = np.empty(cap)
            got, tb = knearest_query(engine.ends_p, w, a0, t0, cu.pos_p, tab_p, out_u, out_e)
            # candidates come sorted by ETA; every unit below tb is one, with its exact ETA
            etas = out_e[:got].tolist()
            if got >= kc:
                cut = etas[kc - 1] + res
                proven = cut < tb  # every unit within the resolution of the k-th is listed
            else:
                cut = INF
                proven = tb == INF  # no full list at the call: every unit that reaches it is listed
            if proven:
                n = bisect.bisect_right(etas, cut)
                cands = list(zip(etas[:n], out_u[:n].tolist(), strict=True))
        if cands is None:
            best = np.empty(nc)
            if cr is not None:  # drive + walk: one search seeded at every access point
                _walk_best(engine, fleet, c, w, cr, best, kc, bound, res)
            elif (fleet.uses >= 2 or nc <= policy.cch_small_fleet) and engine.use_cch(w, 1):
                # exact ETA of every unit from its CCH labels (a fleet reused, or a few units
                # whose labels cost less than a search reaching as far as they are)
                h = engine.hierarchy()
                lab = fleet.labels(engine, c, w)
                m = engine.metric(w)
                ws = engine.cch_workspace()
                ws.cur += 1
                cch.dispatch_cch_kernel(engine.ends_p, w, h.rank, a0, t0, cu.pos_p, h.up_p,
                                        m.down_w, ws.fwd_p, ws.cur, ws.s.buf, tuple(lab), best)  # fmt: skip
            else:  # a reverse search from the call that stops once the k best are final
                ex = fleet.exits(engine, c, w)
                dws = engine.scratch()
                dispatch_kernel(engine.rev_p, engine.ends_p, w, a0, t0, cu.pos_p, dws.sp,
                                dws.next_stamp(), tuple(ex), best, kc, bound, cu.min_turnout, res)  # fmt: skip
            if nc > kc:  # only the class's k best, and those within the resolution of the k-th
                cutoff = float(np.partition(best, kc - 1)[kc - 1]) + res
                sel = np.flatnonzero(best <= cutoff)
                cands = list(zip(best[sel].tolist(), sel.tolist(), strict=True))
            else:
                cands = list(zip(best.tolist(), range(nc), strict=False))
        mids = cu.ids
        for e, m_ in cands:
            if e < INF:
                found.append((0, math.floor(e * inv_res + 0.5), mids[m_], e, c, m_))
        found.sort()
        if len(found) >= kk:
            bound = found[kk - 1][3]
    if len(found) < kk:  # fewer than k reach: then the units beyond reach, after them
        for c, cr in reached.items():
            if cr.kind != "beyond_reach" or len(cr.ap_arc) == 0:
                continue
            cu = fleet.by_class[c]
            w = engine.weights(VEHICLE_CLASSES[c], hour, closures)
            best = np.empty(len(cu.members))
            _walk_best(engine, fleet, c, w, cr, best, len(cu.members), INF, res)
            for m_, e in enumerate(best.tolist()):
                if e < INF:
                    found.append((1, math.floor(e * inv_res + 0.5), cu.ids[m_], e, c, m_))
        found.sort()
        snapped_any = snapped_any or bool(found)
    if not snapped_any and reached and site is not None:
        raise PointError(
            f"call ({lat}, {lon}) on {site.kind} way {site.way} is beyond the reach of "
            f"the fleet: {'; '.join(cr.why for cr in reached.values())}"
        )
    if not snapped_any:
        tol = engine.settings.snap_tolerance_m
        raise PointError(
            f"call ({lat}, {lon}) is farther than {tol:g} m from any road the fleet may use"
        )
    out = []
    for _, _, uid, eta, c, j in found[:kk]:
        cu = fleet.by_class[c]
        turnout = cu.turnouts[j]
        vehicle = VEHICLE_CLASSES[c]
        cr = reached.get(c)
        if cr is not None and cr.kind != "drive" and reach is not None and site is not None:
            out.append(_walk_eta(engine, reach, site, cr, reached, uid, eta, turnout, cu, j,
                                 engine.weights(vehicle, hour, closures), routes))  # fmt: skip
        elif routes:
            w = engine.weights(vehicle, hour, closures)
            a0, t0 = call_pos[c]
            r = route_between(engine, w, int(cu.pos.arc[j]), float(cu.pos.t[j]), a0, t0, vehicle)
            out.append(UnitETA(uid, vehicle, eta, eta - turnout, turnout, r))
        else:
            out.append(_drive_eta(uid, vehicle, eta, turnout))
    return out


def _fastest_steady(
    engine: Engine, closures: ClosureSet, fleet: PreparedFleet, lat: float, lon: float, kk: int,
    hour: float | None, reach: ReachModel | None, plan: bool = False,
) -> list[UnitETA] | None:  # fmt: skip
    """The answer of :func:`fastest_units` in its steady state, or None (then the general path
    answers, from the start).

    Steady: for every class of the fleet the weights in force and the class's nearest-units table
    are built, the policy would take the table path (query count, ``k < table_k``), the call lies
    on a road the class drives (within ``SAME_ROAD_M``: no walk-network question) and the table
    proves the answer. That is what the general path would find, by the same kernels (one compiled
    call per class, :func:`table_call_kernel`, which also ranks the class's candidates as the
    general path does), so the answer is the same to the bit and in the same order (rank: ETA in
    resolution steps, then unit id). Nothing is changed before every class is known to be steady;
    then the general path's bookkeeping is done (the weights asked for, each class's query counted
    as :meth:`ClassUnits.count_use` does). Written flat: at a few microseconds per query, every
    Python call counts.

    With ``plan`` (the fleet is a :class:`Fleet` handle) and no closure in force, the classes'
    calls are also bound, once, into the fleet's plan for the speed band, which
    :func:`_fastest_planned` answers the next queries with."""
    policy = engine.policy
    table_k = policy.table_k
    after = policy.table_after_uses - 1
    res = policy.eta_resolution_s
    inv_res = 1.0 / res
    sidx, spacked, saccess, stol = engine.call_snapper()
    sx, sy = (lon - sidx.lon0) * sidx.kx, (lat - sidx.lat0) * _M_PER_DEG
    ends_p = engine.ends_p
    closed = closures if closures else None
    hits: list[tuple[int, ClassUnits, np.ndarray, int, int, np.ndarray, np.ndarray]] = []
    bound: list[tuple[Any, ...]] = []  # each class's bound call (the plan, see below)
    for c, cu in fleet.by_class.items():
        nc = len(cu.ids)
        kc = kk if kk < nc else nc
        if kc >= table_k:
            return None
        w = engine.weights_if_built(c, hour, closed)
        if w is None:
            return None
        key = id(w)
        tab = cu.tables.get(key)
        if tab is None or tab[0] is not w or tab[1].unit.shape[1] < table_k:
            return None
        uses = cu.w_uses.get(key)
        if uses is None or uses[0] is not w or uses[1] < after:
            return None
        ranks = cu.ranks
        if ranks is None:
            ranks = cu.ranks = _id_ranks(cu.ids)
        cap = 3 * table_k + nc  # this thread's candidate buffers (a fresh pair per class)
        bufs = getattr(_steady_bufs, "free", None)
        if bufs is not None and len(bufs[0]) >= cap and not hits:
            out_u, out_e = bufs
        else:
            out_u, out_e = np.empty(max(cap, 64), dtype=np.int64), np.empty(max(cap, 64))
            if not hits:
                _steady_bufs.free = (out_u, out_e)
        tab_p = tab[2]
        pos_p = cu.pos_p
        hit = _table_entries.get(id(tab_p))
        if (hit is not None and hit[0] is tab_p and hit[1] is spacked and hit[2] is ends_p
                and hit[3] is pos_p and hit[4] is saccess and hit[5] is ranks
                and hit[6] == (w.flags.writeable, w.flags.c_contiguous)):  # fmt: skip
            call = hit[7]
        else:
            call = _table_entry(tab_p, spacked, ends_p, pos_p, saccess, ranks, w,
                                (sx, sy, spacked, CELL_M, saccess, c, stol, ends_p, w, pos_p, tab_p,
                                 ranks, out_u, out_e, kc, res, inv_res))  # fmt: skip
        d0, n = call(sx, sy, spacked, CELL_M, saccess, c, stol, ends_p, w, pos_p, tab_p, ranks,
                     out_u, out_e, kc, res, inv_res)  # fmt: skip
        if n < 0 or (reach is not None and d0 > SAME_ROAD_M):
            return None
        hits.append((c, cu, w, uses[1], n, out_u, out_e))
        if plan and closed is None:
            bound.append((c, cu, nc, key, tab, w, cap, call, spacked, saccess, stol, ends_p,
                          pos_p, tab_p, ranks))  # fmt: skip
    if bound:  # no closure in force: the Fleet's plan for this band (see _fastest_planned)
        band = engine.settings.band_index(hour)
        old = fleet.plans.get(band)
        # bound again only when stale (another policy, a table rebuilt): a Fleet asked with input
        # the plan leaves to this path (a list as the call, numpy floats...) costs no rebinding
        if (old is None or old[0] is not policy or len(old[-1]) != len(bound)
                or any(a[4] is not b[4] for a, b in zip(old[-1], bound, strict=True))):  # fmt: skip
            _keep_plan(engine, fleet, band, policy, sidx, bound)
    if closed:  # asking for the weights moves them up in the engine's LRU, as the general path
        for c, _, w, _, _, _, _ in hits:
            if engine.weights(VEHICLE_CLASSES[c], hour, closures) is not w:
                return None  # evicted and rebuilt meanwhile by another thread: the general path
    if len(hits) == 1:  # one class: its ranked candidates are the answer
        c, cu, w, used, n, out_u, out_e = hits[0]
        wu = cu.w_uses  # ClassUnits.count_use, inline
        if len(wu) > 16:
            wu.clear()
        wu[id(w)] = (w, used + 1)
        return _class_answers(cu, c, out_u, out_e, n)
    return _merged_answers(hits, fleet.by_class, kk, inv_res)


def _keep_plan(
    engine: Engine, fleet: PreparedFleet, band: int, policy: EnginePolicy, sidx: SnapIndex,
    found: list[tuple[Any, ...]],
) -> None:  # fmt: skip
    """Bind each class's steady call (:func:`_bind_table_call`) into the fleet's plan for ``band``
    (``found``: per class what :func:`_fastest_steady` checked and called)."""
    res = policy.eta_resolution_s
    inv_res = 1.0 / res
    bound = tuple(
        (c, cu, nc, key, tab, w, cap,
         *_bind_table_call(call, spacked, saccess, c, stol, ends_p, w, pos_p, tab_p, ranks, res,
                           inv_res))
        for c, cu, nc, key, tab, w, cap, call, spacked, saccess, stol, ends_p, pos_p, tab_p, ranks
        in found
    )  # fmt: skip
    bb = engine.graph.bbox
    plans = fleet.plans
    if len(plans) > 8:
        plans.clear()
    plans[band] = (policy, policy.table_k, res, inv_res, sidx.lon0, sidx.kx, sidx.lat0,
                   bb[0] - 0.05, bb[2] + 0.05, bb[1] - 0.05, bb[3] + 0.05, bound)  # fmt: skip


def _fastest_planned(
    engine: Engine, closures: ClosureSet, reach: ReachModel | None, call: object, units: Fleet,
    k: object, hour: object,
) -> list[UnitETA] | None:  # fmt: skip
    """:func:`fastest_units` for a :class:`Fleet` in its steady state with no closure in force,
    by the plan :func:`_fastest_steady` left on the prepared fleet; or None, and then
    :func:`fastest_units` answers (and checks the input) as before.

    The plan of a speed band holds, per class, what :func:`_fastest_steady` found and would find
    again: the weights (with no closure in force, the engine's base array of the band, built once
    and kept for the engine's life), the class's nearest-units table entry and the call of
    :func:`table_call_kernel` bound to its arrays (:func:`_bind_table_call`). Before the call it
    checks what can change: the policy (the same object), no closure in force, each class's table
    entry still the one cached (``cu.tables``: cleared when full; a moved fleet is a new prepared
    fleet, without plans) and its query count still kept (``cu.w_uses``); then one compiled call
    per class, the same ranking and the same bookkeeping as :func:`_fastest_steady`. Only input
    of the common form is taken here (a ``(lat, lon)`` tuple of floats within the map's box,
    ``k`` a positive int, ``hour`` None, an int or a finite float): anything else goes to
    :func:`fastest_units`, whose checks name a bad value. So the answer is
    :func:`_fastest_steady`'s, to the bit, in the same order (``tests/routing/
    test_fastest_steady.py``)."""
    if closures.closures or units.engine is not engine:
        return None
    if hour is None:
        plan = units.prepared.plans.get(-1)
    elif (type(hour) is float and hour - hour == 0.0) or type(hour) is int:  # finite, no bool
        plan = units.prepared.plans.get(engine.settings.band_index(hour))
    else:
        return None
    if plan is None or type(k) is not int or k < 1 or type(call) is not tuple or len(call) != 2:
        return None
    policy, table_k, res, inv_res, lon0, kx, lat0, lat_lo, lat_hi, lon_lo, lon_hi, bound = plan
    lat, lon = call
    if (policy is not engine.policy or type(lat) is not float or type(lon) is not float
            or not (lat_lo <= lat <= lat_hi and lon_lo <= lon <= lon_hi)):  # fmt: skip
        return None  # (outside the box or NaN: fastest_units names the bad point)
    sx, sy = (lon - lon0) * kx, (lat - lat0) * _M_PER_DEG
    bufs = getattr(_steady_bufs, "free", None)
    if len(bound) == 1:  # one class (the common fleet): its ranked candidates are the answer
        c, cu, nc, key, tab, w, cap, fn, ia, fa, _ = bound[0]
        kc = k if k < nc else nc
        if kc >= table_k or cu.tables.get(key) is not tab:
            return None
        wu = cu.w_uses
        uses = wu.get(key)
        if uses is None or uses[0] is not w:
            return None
        if bufs is not None and len(bufs[0]) >= cap:
            out_u, out_e = bufs
        else:
            out_u, out_e = np.empty(max(cap, 64), dtype=np.int64), np.empty(max(cap, 64))
            _steady_bufs.free = (out_u, out_e)
        d0, n = fn(sx, sy, ia, fa, out_u, out_e, kc)
        if n < 0 or (reach is not None and d0 > SAME_ROAD_M):
            return None
        units.prepared.uses += 1
        if len(wu) > 16:  # ClassUnits.count_use, inline
            wu.clear()
        wu[key] = (w, uses[1] + 1)
        return _class_answers(cu, c, out_u, out_e, n)
    # several classes: as _fastest_steady, merged by the same rank
    hits: list[tuple[int, ClassUnits, np.ndarray, int, int, np.ndarray, np.ndarray]] = []
    for c, cu, nc, key, tab, w, cap, fn, ia, fa, _ in bound:
        kc = k if k < nc else nc
        if kc >= table_k or cu.tables.get(key) is not tab:
            return None
        uses = cu.w_uses.get(key)
        if uses is None or uses[0] is not w:
            return None
        if bufs is not None and len(bufs[0]) >= cap and not hits:
            out_u, out_e = bufs
        else:
            out_u, out_e = np.empty(max(cap, 64), dtype=np.int64), np.empty(max(cap, 64))
            if not hits:
                _steady_bufs.free = (out_u, out_e)
        d0, n = fn(sx, sy, ia, fa, out_u, out_e, kc)
        if n < 0 or (reach is not None and d0 > SAME_ROAD_M):
            return None
        hits.append((c, cu, w, uses[1], n, out_u, out_e))
    units.prepared.uses += 1
    return _merged_answers(hits, units.prepared.by_class, k, inv_res)


#: The compiled entry point of :func:`table_call_kernel` for the argument types of one class's
#: steady state, keyed by the identity of its packed table (and checked against the other packed
#: arguments): calling it skips numba's dispatch, which types every argument on each call (about
#: 4 us of the steady path's 12-16 us on the small maps). The types come from numba itself
#: (:meth:`typeof_pyval` of every argument, the overload it compiled for them).
_table_entries: dict[int, tuple[Any, ...]] = {}
_table_lock = threading.Lock()


def _table_entry(
    tab_p: Any, spacked: Any, ends_p: Any, pos_p: Any, saccess: Any, ranks: Any, w: np.ndarray,
    args: tuple[Any, ...],
) -> Callable[..., tuple[float, int]]:  # fmt: skip
    """The compiled overload of :func:`table_call_kernel` for ``args``' types (compiled on first
    use like any call), remembered in :data:`_table_entries`; numba's dispatcher where it has
    none to give."""
    kernel: Any = table_call_kernel
    sig = tuple(kernel.typeof_pyval(a) for a in args)
    over = kernel.overloads.get(sig)
    if over is None:
        kernel.compile(sig)
        over = kernel.overloads.get(sig)
    call = over.entry_point if over is not None else kernel
    with _table_lock:
        if len(_table_entries) > 256:
            _table_entries.clear()
        _table_entries[id(tab_p)] = (tab_p, spacked, ends_p, pos_p, saccess, ranks,
                                     (w.flags.writeable, w.flags.c_contiguous), call)  # fmt: skip
    return cast("Callable[..., tuple[float, int]]", call)


#: The arrays :func:`table_call_at` reads by address, in ``ia``'s order: (dtype, dimensions) of
#: the snapping grid's nine arrays, the call access mask, the arc ends (three), the weights, the
#: class's unit positions (three), its nearest-units table (three) and the id ranks.
_AT_LAYOUT: tuple[tuple[type, int], ...] = (
    (np.int64, 1), (np.int32, 1), (np.float64, 1), (np.float64, 1), (np.float64, 1),
    (np.float64, 1), (np.int32, 1), (np.float64, 1), (np.float64, 1),
    (np.uint8, 1), (np.int32, 1), (np.int32, 1), (np.int32, 1), (np.float64, 1),
    (np.int64, 1), (np.float64, 1), (np.float64, 1),
    (np.int64, 2), (np.float64, 2), (np.int64, 1), (np.int64, 1),
)  # fmt: skip
_at_entry: list[Any] = []  # table_call_at's compiled entry point, once known


def _bind_table_call(
    kcall: Callable[..., tuple[float, int]], spacked: Packed, saccess: np.ndarray, c: int,
    stol: float, ends_p: Packed, w: np.ndarray, pos_p: Packed, tab_p: Packed, ranks: np.ndarray,
    res: float, inv_res: float,
) -> tuple[Callable[..., tuple[float, int]], np.ndarray, np.ndarray, tuple[Any, ...]]:  # fmt: skip
    """One class's steady call as ``fn(x, y, ia, fa, out_unit, out_eta, kc)``: returns ``(fn, ia,
    fa, keep)``, where ``keep`` holds every array ``ia`` points to (whoever keeps the binding
    keeps them alive; none of them changes after it is built: the grid, the masks and weights
    are read-only or never written, a moved fleet or a rebuilt table is a new array).

    :func:`table_call_at`'s compiled entry where every array has its layout (dtype, dimensions,
    C order) and the scalars their types; else ``kcall`` (the packed kernel) with the packed
    arguments bound. Either way the same kernel on the same values."""
    arrays = (*spacked[7:], saccess, *ends_p, w, *pos_p, *tab_p, ranks)
    keep = (spacked, saccess, ends_p, w, pos_p, tab_p, ranks)
    ok = (len(spacked) == 16 and len(arrays) == len(_AT_LAYOUT)
          and all(type(v) is float for v in spacked[:5]) and type(spacked[5]) is int
          and type(spacked[6]) is int and type(c) is int and type(stol) is float
          and all(type(a) is np.ndarray and a.dtype == dt and a.ndim == nd
                  and a.flags.c_contiguous
                  for a, (dt, nd) in zip(arrays, _AT_LAYOUT, strict=True)))  # fmt: skip
    if not ok:

        def packed(x: float, y: float, ia: np.ndarray, fa: np.ndarray, out_unit: np.ndarray,
                   out_eta: np.ndarray, kc: int) -> tuple[float, int]:  # fmt: skip
            return kcall(x, y, spacked, CELL_M, saccess, c, stol, ends_p, w, pos_p, tab_p, ranks,
                         out_unit, out_eta, kc, res, inv_res)  # fmt: skip

        return packed, np.zeros(0, dtype=np.int64), np.zeros(0), keep
    ia_l: list[int] = [spacked[5], spacked[6], c]
    for a in arrays:
        ia_l.append(a.ctypes.data)
        ia_l.extend(a.shape)
    ia = np.array(ia_l, dtype=np.int64)
    fa = np.array([*spacked[:5], CELL_M, stol, res, inv_res], dtype=np.float64)
    ia.flags.writeable = False
    fa.flags.writeable = False
    if not _at_entry:
        kernel: Any = table_call_at
        args = (0.0, 0.0, ia, fa, np.empty(1, dtype=np.int64), np.empty(1), 1)
        sig = tuple(kernel.typeof_pyval(a) for a in args)
        over = kernel.overloads.get(sig)
        if over is None:
            kernel.compile(sig)
            over = kernel.overloads.get(sig)
        if over is None:  # numba gave no entry point: its dispatcher then
            return cast("Callable[..., tuple[float, int]]", kernel), ia, fa, keep
        _at_entry.append(over.entry_point)
    return cast("Callable[..., tuple[float, int]]", _at_entry[0]), ia, fa, keep


#: Per thread, the candidate buffers of the steady path's first class (reused call after call;
#: the kernel writes them before they are read, and a thread runs one query at a time).
_steady_bufs = threading.local()


def _id_ranks(ids: list[str]) -> np.ndarray:
    """Each member's rank among the class's unit ids in Python's string order (ties by id)."""
    ranks = np.empty(len(ids), dtype=np.int64)
    ranks[sorted(range(len(ids)), key=ids.__getitem__)] = np.arange(len(ids))
    return ranks


@jit
def table_call_kernel(
    x: float, y: float, snap_: Packed, cell: float, access: np.ndarray, bit: int, tol: float,
    ends_: Packed, w: np.ndarray, units_: Packed, tab_: Packed, ranks: np.ndarray,
    out_unit: np.ndarray, out_eta: np.ndarray, kc: int, res: float, inv_res: float,
) -> tuple[float, int]:  # fmt: skip
    """One class's steady-state ``fastest_units`` in one compiled call: snap the call (projected
    ``x``, ``y``; :func:`dispatch.roads.snapping._snap_point`), look it up in the nearest-units
    table (:func:`dispatch.routing.dijkstra.knearest_query`), check that the answer is proven
    (every unit within ``res`` of the ``kc``-th is listed) and rank the candidates as
    :func:`fastest_units` does (ETA in steps of ``res``, ``inv_res = 1 / res``, then ``ranks``:
    each member's rank by unit id).

    Returns ``(dist, n)``: the call's distance to the class's nearest road and ``n`` >= 0 ranked
    candidates (at most ``kc``) in ``out_unit``/``out_eta``; ``n`` is -1 when the table does not
    prove the answer, -2 when the call is beyond ``tol`` of any road open to the class."""
    a0, t0, d0 = _snap_point(x, y, snap_, cell, access, bit, tol)
    if a0 < 0:
        return d0, -2
    got, tb = knearest_query(ends_, w, a0, t0, units_, tab_, out_unit, out_eta)
    if got >= kc:
        cut = out_eta[kc - 1] + res
        proven = cut < tb
    else:
        cut = np.inf
        proven = tb == np.inf
    if not proven:
        return d0, -1
    n = 0
    for i in range(got):  # the candidates sorted by ETA: those within the cut, finite
        e = out_eta[i]
        if e > cut:
            break
        if e < np.inf:
            out_eta[n] = e
            out_unit[n] = out_unit[i]
            n += 1
    for i in range(1, n):  # insertion sort by (ETA in resolution steps, id rank)
        e = out_eta[i]
        u = out_unit[i]
        ke = np.floor(e * inv_res + 0.5)
        r = ranks[u]
        j = i - 1
        while j >= 0:
            kj = np.floor(out_eta[j] * inv_res + 0.5)
            if kj < ke or (kj == ke and ranks[out_unit[j]] < r):
                break
            out_eta[j + 1] = out_eta[j]
            out_unit[j + 1] = out_unit[j]
            j -= 1
        out_eta[j + 1] = e
        out_unit[j + 1] = u
    return d0, min(n, kc)


@jit
def table_call_at(
    x: float, y: float, ia: np.ndarray, fa: np.ndarray, out_unit: np.ndarray, out_eta: np.ndarray,
    kc: int,
) -> tuple[float, int]:  # fmt: skip
    """:func:`table_call_kernel` with its arrays given by address (the same call on the same
    values: the same answer to the bit), for the steady plan of a prepared fleet: a call unboxes
    four arrays instead of twenty-three (about 1.3 us of a 3 us call on HCMC).

    ``ia`` (int64): the snapping grid's ``nx``, ``ny``, the class bit, then ``(address, length)``
    of each array in :data:`_AT_LAYOUT`'s order (``(address, rows, columns)`` for the table's two
    2-D arrays); ``fa`` (float64): the grid's ``lat0``, ``lon0``, ``kx``, ``gx0``, ``gy0``, the
    cell size, the snapping tolerance, ``res`` and ``inv_res`` (:func:`_bind_table_call`)."""
    snap = (fa[0], fa[1], fa[2], fa[3], fa[4], ia[0], ia[1],
            carray(address_pointer(ia[3]), ia[4], dtype=np.int64),
            carray(address_pointer(ia[5]), ia[6], dtype=np.int32),
            carray(address_pointer(ia[7]), ia[8], dtype=np.float64),
            carray(address_pointer(ia[9]), ia[10], dtype=np.float64),
            carray(address_pointer(ia[11]), ia[12], dtype=np.float64),
            carray(address_pointer(ia[13]), ia[14], dtype=np.float64),
            carray(address_pointer(ia[15]), ia[16], dtype=np.int32),
            carray(address_pointer(ia[17]), ia[18], dtype=np.float64),
            carray(address_pointer(ia[19]), ia[20], dtype=np.float64))  # fmt: skip
    access = carray(address_pointer(ia[21]), ia[22], dtype=np.uint8)
    ends = (carray(address_pointer(ia[23]), ia[24], dtype=np.int32),
            carray(address_pointer(ia[25]), ia[26], dtype=np.int32),
            carray(address_pointer(ia[27]), ia[28], dtype=np.int32))  # fmt: skip
    w = carray(address_pointer(ia[29]), ia[30], dtype=np.float64)
    units = (carray(address_pointer(ia[31]), ia[32], dtype=np.int64),
             carray(address_pointer(ia[33]), ia[34], dtype=np.float64),
             carray(address_pointer(ia[35]), ia[36], dtype=np.float64))  # fmt: skip
    tab = (carray(address_pointer(ia[37]), (ia[38], ia[39]), dtype=np.int64),
           carray(address_pointer(ia[40]), (ia[41], ia[42]), dtype=np.float64),
           carray(address_pointer(ia[43]), ia[44], dtype=np.int64))  # fmt: skip
    ranks = carray(address_pointer(ia[45]), ia[46], dtype=np.int64)
    return table_call_kernel(x, y, snap, fa[5], access, ia[2], fa[6], ends, w, units, tab, ranks,
                             out_unit, out_eta, kc, fa[7], fa[8])  # fmt: skip


def class_reach(
    reach: ReachModel, site: CallSite, c: int, drive_dist_m: float,
    around: list[tuple[np.ndarray, np.ndarray]],
) -> ClassReach:  # fmt: skip
    """The reach of class ``c`` at a call site; ``around`` memoises the walk search around the
    call (it runs once per query, and only when some class cannot drive to the call)."""
    if drive_dist_m <= site.dist_m + SAME_ROAD_M or reach.drivable_edges(c)[site.edge]:
        return reach.drive_reach[c]
    if not around:
        around.append(reach.around(site))
    return reach.class_reach(site, c, drive_dist_m, around[0])


def _walk_best(
    engine: Engine, fleet: PreparedFleet, c: int, w: np.ndarray, cr: ClassReach,
    best: np.ndarray, kc: int, bound: float, res: float,
) -> None:  # fmt: skip
    """Each unit's ETA through the class's access points (exact for the k best, see
    :func:`dispatch.routing.reach.walk_dispatch_kernel`)."""
    from dispatch.routing.reach import walk_dispatch_kernel

    cu = fleet.by_class[c]
    ex = fleet.exits(engine, c, w)
    dws = engine.scratch()
    walk_dispatch_kernel(engine.rev_p, engine.ends_p, w, cr.ap_arc, cr.ap_t, cr.ap_walk_s,
                         cu.pos_p, dws.sp, dws.next_stamp(), tuple(ex), best, kc, bound,
                         cu.min_turnout, res)  # fmt: skip


def _walk_eta(
    engine: Engine, reach: ReachModel, site: CallSite, cr: ClassReach,
    reached: Mapping[int, ClassReach],
    uid: str, eta: float, turnout: float, cu: ClassUnits, j: int, w: np.ndarray, routes: bool,
) -> UnitETA:  # fmt: skip
    """A unit's answer through its best access point (the one minimising drive + walk)."""
    from dispatch.routing.reach import walk_pick_kernel

    pos = cu.pos
    ua, ut = int(pos.arc[j]), float(pos.t[j])
    dws = engine.scratch()
    limit = eta - turnout - float(cr.ap_walk_s.min())
    i, _ = walk_pick_kernel(engine.fwd_p, engine.ends_p, w, ua, ut, cr.ap_arc, cr.ap_t,
                            cr.ap_walk_s, dws.sp, dws.next_stamp(),
                            limit + 1e-9 * max(1.0, eta))  # fmt: skip
    walk_s = float(cr.ap_walk_s[i])
    r = None
    leg: tuple[tuple[float, float], ...] = ()
    if routes:
        r = route_between(engine, w, ua, ut, int(cr.ap_arc[i]), float(cr.ap_t[i]), cr.vehicle)
        leg = tuple(reach.walk_coords(site, int(cr.ap_node[i]), float(cr.ap_walk_m[i])))
    note = ""
    if cr.kind == "beyond_reach":
        can = [x.vehicle for x in reached.values() if x.reaches]
        note = cr.reason + (
            f"; reached by: {', '.join(can)}" if can else "; no class of the fleet reaches it"
        )
    return UnitETA(
        uid,
        cr.vehicle,
        eta,
        eta - turnout - walk_s,
        turnout,
        r,
        cr.kind,
        reach.access_point(int(cr.ap_node[i])),
        float(cr.ap_walk_m[i]),
        walk_s,
        note,
        leg,
    )


# --- units snapped once: the decision layer's ETA matrices --------------------------------------


def unit_reach_times(
    engine: Engine, closures: ClosureSet, reach: ReachModel | None,
    units: Sequence[tuple[str, float, float]], destinations: object, *, vehicle: str,
    hour: float | None = None, sites: dict[int, Any] | None = None,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """``(drive_s, walk_s)`` from units of class ``vehicle`` to every destination: :func:`reach_times`
    with the units' positions snapped once per (class, position) instead of on every call.

    ``units`` are ``(unit id, lat, lon)``, the origins in row order. Each is placed as a prepared
    fleet places it (:meth:`Engine.snap_unit`: role ``from``, the engine's position cache, which
    :class:`Fleet` and :class:`PreparedFleet` fill), which is what :func:`reach_times` computes for
    the same point, so the matrices are the same to the bit: the same origins, in the same order,
    go to the same kernels. A unit that cannot be placed raises :class:`FleetError` naming it
    (:func:`reach_times` says ``origin i``); a bad destination :class:`PointError` as there.

    ``sites``: pass the same (initially empty) dict to the calls of each class for the same
    ``destinations``: where each destination stands on the walk network, and the walk search
    around it, are then looked up once for all classes (as :func:`fastest_units` does for one
    call); the answers are the same.

    Examples
    --------
    >>> from dispatch import load_network
    >>> net = load_network("danang")
    >>> a = (16.0594, 108.2099)
    >>> d = [(16.0467028, 108.2118639), (16.060909, 108.220849)]
    >>> drive, walk = unit_reach_times(net.engine, net.closure_set, net.reach_model, [("E1", *a)],
    ...                                d, vehicle="fire_engine")
    >>> d2, w2 = net.reach_times([a], d, vehicle="fire_engine")
    >>> bool((drive == d2).all() and (walk == w2).all()), round(float(walk[0, 0]))
    (True, 131)
    """
    hour = check_hour(hour)
    c = check_vehicle(vehicle)
    o_arc = np.empty(len(units), dtype=np.int64)
    o_t = np.empty(len(units))
    snap_unit = engine.snap_unit
    for j, (uid, lat, lon) in enumerate(units):
        o_arc[j], o_t[j] = snap_unit(c, float(lat), float(lon), str(uid))
    return _reach_times_from(engine, closures, reach, o_arc, o_t, destinations, vehicle, c, hour,
                             {} if sites is None else sites)  # fmt: skip


def _reach_times_from(
    engine: Engine, closures: ClosureSet, reach: ReachModel | None, o_arc: np.ndarray,
    o_t: np.ndarray, destinations: object, vehicle: str, c: int, hour: float | None,
    sites: dict[int, Any],
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """:func:`reach_times` from origins already snapped (``o_arc``, ``o_t``): its body, shared
    with :func:`unit_reach_times` (origins placed from the engine's position cache); ``sites``
    memoises destination ``j``'s ``(site, around)`` (the walk network's answers, the same for
    every class)."""
    d = as_points(destinations, name="destinations")
    if reach is None:  # travel_times
        d_arc, d_t = engine.locate(d, vehicle, "destination", "to")
        w = engine.weights(vehicle, hour, closures)
        return matrix(engine, w, o_arc, o_t, d_arc, d_t), np.zeros((len(o_arc), len(d)))
    check_points(engine.graph.bbox, d, name="destination")
    w = engine.weights(vehicle, hour, closures)
    drive = np.full((len(o_arc), len(d)), INF)
    walk = np.zeros((len(o_arc), len(d)))
    plain: list[int] = []
    p_arc: list[int] = []
    p_t: list[float] = []
    for j in range(len(d)):
        lat, lon = float(d[j, 0]), float(d[j, 1])
        a0, t0, d0 = engine.snap_call(lat, lon, c)
        memo = sites.get(j)
        if memo is None:
            memo = sites[j] = (reach.locate(lat, lon), [])
        site, around = memo
        if site is None:
            if a0 < 0:
                tol = engine.settings.snap_tolerance_m
                raise PointError(f"destination {j} ({lat}, {lon}) is farther than {tol:g} m from "
                                 f"any road open to {vehicle}")  # fmt: skip
            cr = None
        else:
            cr = class_reach(reach, site, c, d0 if a0 >= 0 else INF, around)
        if cr is None or cr.kind == "drive":
            plain.append(j)
            p_arc.append(a0)
            p_t.append(t0)
        elif len(cr.ap_arc):
            m = matrix(engine, w, o_arc, o_t, cr.ap_arc, cr.ap_t)
            best = np.argmin(m + cr.ap_walk_s[None, :], axis=1)
            rows = np.arange(len(o_arc))
            drive[:, j] = m[rows, best]
            walk[:, j] = np.where(np.isfinite(drive[:, j]), cr.ap_walk_s[best], 0.0)
    if plain:
        drive[:, plain] = matrix(engine, w, o_arc, o_t, np.array(p_arc, dtype=np.int64),
                                 np.array(p_t))  # fmt: skip
    return drive, walk
