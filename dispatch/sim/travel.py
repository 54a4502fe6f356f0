"""Travel times in the simulation: the network protocol, travel tables and unit timing.

The simulator talks to the road network through the :class:`TravelOracle` protocol, a subset of the
core's API (``docs/api-contract.md``): :meth:`~TravelOracle.fastest_units` (the live-dispatch code
path), :meth:`~TravelOracle.route` and :meth:`~TravelOracle.travel_times`. The ``hour`` passed to
them is the simulation clock in hours since the scenario start, so time-windowed closures and speed
bands by hour of day (``hour % 24``) apply as in the scenario. Travel times are fixed at departure.

:class:`TravelTables` precomputes, per vehicle class and routing regime, the times between the
posts, the calls and the hospitals with ``net.travel_times``; :class:`Timing` answers "how long would
this unit take to reach this call now", from the tables for units at their posts and with
``net.fastest_units`` (and lower bounds that skip the hopeless) for units on the road.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from dispatch.geo import point_distance_m
from dispatch.routing.oracle import RouteLike, TravelOracle, UnitETALike
from dispatch.sim.events import EventQueue
from dispatch.sim.units import AVAILABLE, DRIVING_TO_POST, UnitState

# This module and the policies read calls and hospitals through the protocols below (attribute
# names of dispatch.sim.demand.Calls and dispatch.model.Hospital), so that they import
# neither the scenario reader nor the call generator: the reader may use the policies.

__all__ = [
    "LOWER_BOUND_SLACK_M",
    "CallsLike",
    "Choice",
    "HospitalLike",
    "RouteLike",
    "Timing",
    "TravelOracle",
    "TravelTables",
    "UnitETALike",
    "max_speed_mps",
]

#: Slack of the straight-line lower bound on a returning unit's ETA (snapping offsets), metres.
LOWER_BOUND_SLACK_M = 300.0

#: A timed choice: the unit, its ETA (turnout + drive), turnout, drive, seconds.
Choice = tuple[UnitState, float, float, float]


class CallsLike(Protocol):
    """What the simulator reads from the calls (:class:`dispatch.sim.demand.Calls`)."""

    @property
    def time_s(self) -> np.ndarray: ...

    @property
    def type_idx(self) -> np.ndarray: ...

    @property
    def lat(self) -> np.ndarray: ...

    @property
    def lon(self) -> np.ndarray: ...

    @property
    def on_scene_s(self) -> np.ndarray: ...

    @property
    def transport(self) -> np.ndarray: ...

    @property
    def handover_s(self) -> np.ndarray: ...

    def __len__(self) -> int: ...


class HospitalLike(Protocol):
    """What the simulator reads from a hospital (:class:`dispatch.model.Hospital`)."""

    @property
    def name(self) -> str: ...

    @property
    def lat(self) -> float: ...

    @property
    def lon(self) -> float: ...

    @property
    def capabilities(self) -> tuple[str, ...]: ...


def max_speed_mps(net: Any, vehicle: str) -> float:
    """Top speed of a class over the whole day (every speed band), ``inf`` if unknown."""
    weights = getattr(net, "weights", None)
    length = getattr(net, "arc_length_m", None)
    if weights is None or length is None:
        return math.inf
    top = 0.0
    for hour in np.arange(0.0, 24.0, 0.25):
        w = np.asarray(weights(vehicle, None if hour < 0 else float(hour)))
        ok = np.isfinite(w) & (w > 0)
        if ok.any():
            top = max(top, float(np.max(np.asarray(length)[ok] / w[ok])))
    return top if top > 0 else math.inf


class TravelTables:
    """Travel-time tables of one simulation, from the core's ``net.travel_times``.

    Units wait at a few posts, calls are known in advance and patients go to a few hospitals, so
    the times post -> call, call -> post, call -> hospital and hospital -> post are computed for
    every call at once, per vehicle class and per *routing regime* (the arc weights in force at an
    hour: speed band and active closures), the first time a regime is needed. The numbers are the
    same as one query at a time (same snapping, same exact shortest paths); only the order of work
    changes.

    Parameters
    ----------
    net : TravelOracle
    calls : CallsLike
    posts : mapping of str to sequence of (lat, lon)
        Per vehicle class, the posts its units may wait at (a unit's ``post_idx`` indexes them).
    hospitals : sequence of HospitalLike
    type_vehicles : sequence of frozenset of str
        Per incident type, the classes that may answer it (a class's tables hold those calls only).
    """

    def __init__(
        self,
        net: TravelOracle,
        calls: CallsLike,
        posts: Mapping[str, Sequence[tuple[float, float]]],
        hospitals: Sequence[HospitalLike],
        type_vehicles: Sequence[frozenset[str]],
    ) -> None:
        self.net = net
        self.call_pts = np.column_stack([calls.lat, calls.lon]) if len(calls) else np.zeros((0, 2))
        self.hosp_pts = np.array([(h.lat, h.lon) for h in hospitals], dtype=float).reshape(-1, 2)
        self.homes = {v: np.array(p, dtype=float) for v, p in posts.items()}
        # per class: the calls it may answer, and each call's column in that class's tables
        self.call_col: dict[str, np.ndarray] = {}
        self.call_idx: dict[str, np.ndarray] = {}
        tv = np.array([sorted(x) for x in type_vehicles], dtype=object)
        for v in self.homes:
            ok = np.array([v in t for t in tv], dtype=bool)
            mask = ok[calls.type_idx] if len(calls) else np.zeros(0, dtype=bool)
            idx = np.flatnonzero(mask)
            col = np.full(len(calls), -1, dtype=np.int64)
            col[idx] = np.arange(len(idx))
            self.call_idx[v] = idx
            self.call_col[v] = col
        self._tables: dict[tuple[str, str, int], np.ndarray] = {}
        self._alive: dict[int, Any] = {}
        self._last_key: tuple[str, float] | None = None
        self._last_regime = 0
        self.computed = 0

    def regime(self, vehicle: str, hour: float) -> int:
        """Identity of the arc weights in force for a class at an hour (0 for a network without)."""
        if self._last_key == (vehicle, hour):  # several lookups per event at the same time
            return self._last_regime
        weights = getattr(self.net, "weights", None)
        if weights is None:
            return 0
        w = weights(vehicle, hour)
        k = id(w)
        if k not in self._alive:
            self._alive[k] = w  # keep it alive so that its id stays unique
        self._last_key = (vehicle, hour)
        self._last_regime = k
        return k

    def _table(self, name: str, vehicle: str, hour: float) -> np.ndarray:
        key = (name, vehicle, self.regime(vehicle, hour))
        t = self._tables.get(key)
        if t is None:
            pts = self.call_pts[self.call_idx[vehicle]]
            homes = self.homes[vehicle]
            tt = self.net.travel_times
            reach_times = getattr(self.net, "reach_times", None)
            if name == "home_call" and reach_times is not None:
                # response time = the crew at the call: a call in an alley the class cannot
                # drive adds the on-foot leg from the best access point (dispatch.routing.reach)
                drive, walk = reach_times(homes, pts, vehicle=vehicle, hour=hour)
                t = np.asarray(drive, dtype=float) + np.asarray(walk, dtype=float)
            elif name == "home_call":
                t = tt(homes, pts, vehicle=vehicle, hour=hour)
            elif name == "call_home":
                t = tt(pts, homes, vehicle=vehicle, hour=hour)
            elif name == "call_hosp":
                t = tt(pts, self.hosp_pts, vehicle=vehicle, hour=hour)
            elif name == "home_hosp":
                t = tt(homes, self.hosp_pts, vehicle=vehicle, hour=hour)
            elif name == "home_home":
                t = tt(homes, homes, vehicle=vehicle, hour=hour)
            else:  # hosp_home
                t = tt(self.hosp_pts, homes, vehicle=vehicle, hour=hour)
            t = np.asarray(t, dtype=float)
            self._tables[key] = t
            self.computed += 1
        return t

    def home_to_call(self, vehicle: str, hour: float, call: int) -> np.ndarray:
        """Time from each post of a class to the crew at a call (one entry per post): the drive,
        plus the on-foot leg for a call the class cannot drive to (``net.reach_times``)."""
        return self._table("home_call", vehicle, hour)[:, self.call_col[vehicle][call]]

    def call_to_home(self, vehicle: str, hour: float, call: int, home: int) -> float:
        """Drive time from a call's scene to a post."""
        return float(self._table("call_home", vehicle, hour)[self.call_col[vehicle][call], home])

    def call_to_hospitals(self, vehicle: str, hour: float, call: int) -> np.ndarray:
        """Drive time from a call's scene to each hospital."""
        return np.asarray(self._table("call_hosp", vehicle, hour)[self.call_col[vehicle][call]])

    def hospital_to_home(self, vehicle: str, hour: float, hospital: int, home: int) -> float:
        """Drive time from a hospital to a post."""
        return float(self._table("hosp_home", vehicle, hour)[hospital, home])

    def home_to_home(self, vehicle: str, hour: float) -> np.ndarray:
        """Drive times between the posts of a class (rows: from, columns: to)."""
        return self._table("home_home", vehicle, hour)

    def landmark_bound(
        self,
        vehicle: str,
        hour: float,
        origin_call: int,
        origin_hospital: int,
        call: int,
        elapsed_s: float,
    ) -> float:
        """Lower bound of the drive time to ``call`` of a unit ``elapsed_s`` into a shortest path
        from a call's scene or a hospital (ALT bound, the posts as landmarks ``L``).

        With ``p`` the unit's position and ``o`` the origin: ``T(p, L) >= T(o, L) - elapsed`` and
        ``T(L, p) <= T(L, o) + elapsed``, so ``T(p, c) >= T(o, L) - elapsed - T(c, L)`` and
        ``T(p, c) >= T(L, c) - T(L, o) - elapsed``. Valid when the drive and the query are in the
        same routing regime (the caller checks).
        """
        col = self.call_col[vehicle][call]
        t_c_l = self._table("call_home", vehicle, hour)[col]
        t_l_c = self._table("home_call", vehicle, hour)[:, col]
        if origin_hospital >= 0:
            t_o_l = self._table("hosp_home", vehicle, hour)[origin_hospital]
            t_l_o = self._table("home_hosp", vehicle, hour)[:, origin_hospital]
        else:
            ocol = self.call_col[vehicle][origin_call]
            t_o_l = self._table("call_home", vehicle, hour)[ocol]
            t_l_o = self._table("home_call", vehicle, hour)[:, ocol]
        with np.errstate(invalid="ignore"):
            b = np.concatenate([t_o_l - elapsed_s - t_c_l, t_l_c - t_l_o - elapsed_s])
        b = b[np.isfinite(b)]
        return float(b.max()) if len(b) else 0.0


class Timing:
    """ETAs of units to calls at the simulation clock: what every dispatch policy asks.

    Parameters
    ----------
    net : TravelOracle
    clock : EventQueue
        Its ``now_s`` is the time of every query.
    calls : CallsLike
    units : sequence of UnitState
    tables : TravelTables or None
        None asks the network one query at a time (the same numbers, slower; the reference the
        tables are tested against).
    returning : {"route", "home"}
        How a unit driving to its post is timed: from where it is on its route (``route``) or as if
        it drove to its post first (``home``).
    """

    def __init__(
        self,
        net: TravelOracle,
        clock: EventQueue,
        calls: CallsLike,
        units: Sequence[UnitState],
        tables: TravelTables | None,
        *,
        returning: str = "route",
    ) -> None:
        self.net = net
        self.clock = clock
        self.calls = calls
        self.tables = tables
        self.returning = returning
        self.unit_by_id = {u.id: u for u in units}
        self.vmax_mps = {v: max_speed_mps(net, v) for v in sorted({u.vehicle for u in units})}
        self.route_cache: dict[tuple[int, int, str, int], tuple[Any, Any]] = {}
        self.n_fastest_units = 0  # calls to net.fastest_units (for the benchmark profile)
        self.n_routes = 0  # calls to net.route

    def point(self, call: int) -> tuple[float, float]:
        """A call's scene."""
        return (float(self.calls.lat[call]), float(self.calls.lon[call]))

    # -- routes to the post ----------------------------------------------------------------------

    def ensure_route(self, u: UnitState) -> None:
        """Compute a unit's route to its post (lazily: only when its position is needed)."""
        if u.status not in DRIVING_TO_POST or u.route_coords:
            return
        if self.returning == "home":  # no route: a straight line, for display and baselines only
            u.route_coords = [u.ret_origin, u.post]
            u.route_times = [0.0, u.ret_eta_s]
            return
        key = None
        if u.ret_hospital >= 0 and self.tables is not None:  # hospital -> post repeats: cache it
            key = (
                u.ret_hospital,
                u.post_idx,
                u.vehicle,
                self.tables.regime(u.vehicle, u.ret_hour),
            )
            hit = self.route_cache.get(key)
            if hit is not None:
                u.route_coords, u.route_times = hit
                return
        self.n_routes += 1
        r = self.net.route(u.ret_origin, u.post, vehicle=u.vehicle, hour=u.ret_hour)
        if r.coords and math.isfinite(float(r.eta_s)):
            u.route_coords = r.coords
            u.route_times = r.times_s
        else:  # pragma: no cover - a return time was found, so a route exists
            u.route_coords = [u.ret_origin, u.post]
            u.route_times = [0.0, u.ret_eta_s]
        if key is not None:
            self.route_cache[key] = (u.route_coords, u.route_times)

    def position(self, u: UnitState) -> tuple[float, float]:
        """Where a unit is now (interpolated along its route while driving to its post)."""
        self.ensure_route(u)
        return u.position_at(self.clock.now_s)

    def dispatch_point(self, u: UnitState) -> tuple[tuple[float, float], float]:
        """Point and extra delay to route a unit from now (:meth:`UnitState.dispatch_point_at`)."""
        self.ensure_route(u)
        return u.dispatch_point_at(self.clock.now_s)

    # -- ETAs ------------------------------------------------------------------------------------

    def fastest(
        self, point: tuple[float, float], cands: Sequence[UnitState], k: int = 1
    ) -> list[Choice]:
        """The ``k`` fastest of ``cands`` to ``point`` by ``net.fastest_units`` (live dispatch)."""
        recs = []
        for u in cands:
            (lat, lon), delay = self.dispatch_point(u)
            r = u.record
            r["lat"], r["lon"], r["turnout_s"] = lat, lon, delay
            recs.append(r)
        self.n_fastest_units += 1
        out = self.net.fastest_units(point, recs, k=k, hour=self.clock.hour)
        return [
            # travel = drive + the on-foot leg when the call is in an alley (crew at the call)
            (
                self.unit_by_id[e.unit],
                float(e.eta_s),
                float(e.turnout_s),
                float(e.drive_s) + float(getattr(e, "walk_s", 0.0)),
            )  # fmt: skip
            for e in out
        ]

    def fastest_to_call(self, call: int, cands: Sequence[UnitState]) -> Choice | None:
        """The fastest of ``cands`` to a call: from the tables when there are, else the network."""
        if self.tables is None:
            best = self.fastest(self.point(call), cands, k=1)
            return best[0] if best else None
        return self._fastest_tables(call, cands)

    def _fastest_tables(self, call: int, cands: Sequence[UnitState]) -> Choice | None:
        """The fastest unit, with the travel tables for units at their posts.

        Units at their posts are timed from the post -> call table. A unit driving to its post is
        asked of ``net.fastest_units`` (from the next vertex of its route), together with the best
        unit at a post, unless a lower bound on its ETA (straight-line distance at the class's top
        speed, knowing how far it can have driven since it left) already loses to that unit.
        """
        tables = self.tables
        assert tables is not None
        now = self.clock.now_s
        hour = self.clock.hour
        best: tuple[float, str, UnitState] | None = None
        returning = []
        home_eta: dict[str, np.ndarray] = {}
        for u in cands:
            if u.status != AVAILABLE:
                returning.append(u)
                continue
            col = home_eta.get(u.vehicle)
            if col is None:
                col = home_eta[u.vehicle] = tables.home_to_call(u.vehicle, hour, call)
            eta = u.turnout_s + float(col[u.post_idx])
            if math.isfinite(eta) and (best is None or (eta, u.id) < best[:2]):
                best = (eta, u.id, u)
        if returning and self.returning == "home":
            # each unit on the road as if it drove to its post first: remaining + post -> call
            for u in returning:
                col = home_eta.get(u.vehicle)
                if col is None:
                    col = home_eta[u.vehicle] = tables.home_to_call(u.vehicle, hour, call)
                rem = max(u.ret_eta_s - (now - u.route_start_s), 0.0)
                eta = rem + float(col[u.post_idx])
                if math.isfinite(eta) and (best is None or (eta, u.id) < best[:2]):
                    best = (eta, u.id, u)
            returning = []
        if returning:
            point = self.point(call)
            bound = math.inf if best is None else best[0]
            keep = [u for u in returning if self.eta_lower_bound(u, point, call) <= bound]
            if keep:
                ask = keep + ([best[2]] if best is not None else [])
                timed = self.fastest(point, ask, k=1)
                if timed:
                    return timed[0]
                return None
        if best is None:
            return None
        eta, _, u = best
        turnout = u.turnout_s if u.status == AVAILABLE else 0.0
        return (u, eta, turnout, eta - turnout)

    def eta_lower_bound(self, u: UnitState, point: tuple[float, float], call: int = -1) -> float:
        """A lower bound of the drive time to ``point`` of a unit driving to its post (no route).

        It left ``ret_origin`` ``elapsed`` seconds ago and is ``remaining`` seconds from its post on
        a shortest path, so it is within ``vmax * elapsed`` of the origin and ``vmax * remaining``
        of the post; the straight line to the call, less that and a snapping slack, at ``vmax``.
        """
        vmax = self.vmax_mps.get(u.vehicle, math.inf)
        if not math.isfinite(vmax) or vmax <= 0:
            return 0.0
        elapsed = self.clock.now_s - u.route_start_s
        remaining = max(u.ret_eta_s - elapsed, 0.0)
        d_o = point_distance_m(u.ret_origin, point)
        d_h = point_distance_m(u.post, point)
        d = max(d_o - vmax * elapsed, d_h - vmax * remaining) - LOWER_BOUND_SLACK_M
        lb = max(d, 0.0) / vmax
        tables = self.tables
        if tables is not None and call >= 0:
            hour = self.clock.hour
            if tables.regime(u.vehicle, hour) == tables.regime(u.vehicle, u.ret_hour):
                # exact in one routing regime only; also T(here -> post) = remaining
                if u.ret_call >= 0 or u.ret_hospital >= 0:  # not for a relocation's start
                    bound = tables.landmark_bound(
                        u.vehicle, hour, u.ret_call, u.ret_hospital, call, elapsed
                    )
                    lb = max(lb, bound)
                back = tables.call_to_home(u.vehicle, hour, call, u.post_idx)
                lb = max(lb, remaining - back)
        return lb

    def time_unit(self, u: UnitState, call: int) -> Choice | None:
        """Road ETA of one chosen unit (what a baseline's choice really costs)."""
        if self.tables is not None and (u.status == AVAILABLE or self.returning == "home"):
            now = self.clock.now_s
            drive = float(self.tables.home_to_call(u.vehicle, self.clock.hour, call)[u.post_idx])
            if not math.isfinite(drive):
                return None
            if u.status == AVAILABLE:
                return (u, u.turnout_s + drive, u.turnout_s, drive)
            drive += max(u.ret_eta_s - (now - u.route_start_s), 0.0)
            return (u, drive, 0.0, drive)
        timed = self.fastest(self.point(call), [u], k=1)
        return timed[0] if timed else None
