"""Discrete-event simulation of 114/115 dispatch over the road network.

All state lives in one :class:`Simulation` object (no module globals). Events sit in a heap ordered by
``(time_s, priority, sequence)``: at equal times unit transitions come before call arrivals (a unit
that frees at the instant a call arrives can take it) and the sequence number keeps insertion order,
so a run is deterministic for a seed.

Unit lifecycle::

    available at station -> turnout -> driving -> on scene -> [115: driving to hospital -> handover]
    -> returning (dispatchable, from where it is) -> available at station

Without run cards each call gets one unit, of a class its incident type accepts. With run cards
(``run_cards`` in the scenario, :mod:`dispatch.decide.runcards`) each call gets its type's whole unit mix:
every mandatory slot (one per unit of each requirement) is filled by the fastest dispatchable unit of
a compatible class, the same ``net.fastest_units`` timing; a slot that no unit can fill now *waits*:
the call stays in the queue for its unfilled slots and gets them as units free up. Optional first
responders (``only_if_first``) are sent once, when the call reaches the dispatcher, if they arrive
before every mandatory unit sent. Every unit sent lives its own lifecycle; each stays on scene the
call's on-scene time from its own arrival, and only the first ambulance sent carries the patient.
Response time stays call to *first* arrival; *full complement* is call to the last mandatory unit's
arrival.

Calls that find no unit wait in a priority queue (priority level, then call time) and are served when
a unit frees up. A call is *served* once a unit is dispatched to it (its arrival time is known then:
routes do not change after departure; with run cards once every mandatory slot is filled), and
*unserved* if it is still waiting at the horizon (in the queue, or still in call processing). At the
end of every run a conservation check asserts that every generated call is in exactly one of these
states.

The simulator talks to the road network through the :class:`TravelOracle` protocol, a subset of the
core's API (``docs/api-contract.md``): :meth:`~TravelOracle.fastest_units` (the live-dispatch code
path), :meth:`~TravelOracle.route` and :meth:`~TravelOracle.travel_times`. The ``hour`` passed to them
is the simulation clock in hours since the scenario start, so time-windowed closures and speed bands by
hour of day (``hour % 24``) apply as in the scenario. Travel times are fixed at departure.

Dispatch policies
-----------------
``fastest``
    The unit with the smallest road ETA (turnout + drive), by ``net.fastest_units``: what live
    dispatch does.
``nearest_straight_line``
    The unit nearest as the crow flies (what CAD systems ranking by haversine do).
``nearest_node``
    Call and units snapped to their nearest graph node, ranked by node-to-node road time (what tools
    using a node-based travel matrix do).
``optimal_batch``
    Like ``fastest`` for a single call; when several calls wait, the waiting calls of the most urgent
    priority are assigned to the dispatchable units jointly (minimum total ETA, OR-Tools linear sum
    assignment), and so on down the priorities.

The chosen unit's arrival is always timed on the roads with ``net.fastest_units``, whatever policy
chose it, so that policies are compared on real response times.
"""

from __future__ import annotations

import heapq
import math
from bisect import bisect_right
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from dispatch.errors import DispatchError
from dispatch.geo import haversine_m, point_distance_m
from dispatch.sim.demand import Calls
from dispatch.sim.scenario import POLICIES, Hospital, Scenario

__all__ = [
    "RouteLike",
    "SimHospital",
    "SimResult",
    "SimUnit",
    "Simulation",
    "SimulationError",
    "TravelOracle",
    "UnitETALike",
]

#: Waiting calls looked at per matching step (bounds the work per freed unit under overload).
SCAN_LIMIT = 64
#: Slack of the straight-line lower bound on a returning unit's ETA (snapping offsets), metres.
LOWER_BOUND_SLACK_M = 300.0


class SimulationError(DispatchError):
    """A simulation that cannot run (bad policy, no unit for an incident type, broken invariant)."""


# ----------------------------------------------------------------------------------------------
# the travel-time oracle protocol (what the simulator needs from the network)
# ----------------------------------------------------------------------------------------------


class RouteLike(Protocol):
    """What the simulator reads from a route: its ETA and its timed polyline."""

    eta_s: float
    coords: Sequence[tuple[float, float]]
    times_s: Sequence[float]


class UnitETALike(Protocol):
    """What the simulator reads from one entry of ``fastest_units``."""

    unit: str
    eta_s: float
    drive_s: float
    turnout_s: float


class TravelOracle(Protocol):
    """The network calls the simulator makes (a subset of :class:`dispatch.roads.network.Network`).

    A test can implement it with straight lines and a constant speed (``tests/_sim_fake.py``).
    """

    def fastest_units(
        self,
        call: tuple[float, float],
        units: Sequence[Mapping[str, Any]],
        *,
        k: int = 3,
        hour: float | None = None,
        routes: bool = False,
    ) -> Sequence[UnitETALike]: ...

    def route(
        self,
        origin: tuple[float, float],
        destination: tuple[float, float],
        *,
        vehicle: str = "ambulance",
        hour: float | None = None,
    ) -> RouteLike: ...

    def travel_times(
        self,
        origins: Any,
        destinations: Any,
        *,
        vehicle: str = "ambulance",
        hour: float | None = None,
    ) -> np.ndarray: ...


# ----------------------------------------------------------------------------------------------
# inputs and results
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SimUnit:
    """A unit as the simulation starts: id, class, home station and position, turnout."""

    id: str
    vehicle: str
    station: str
    lat: float
    lon: float
    turnout_s: float


#: A receiving hospital: name, position, capabilities (empty: takes every patient). The simulator's
#: hospitals are the scenario's (:class:`dispatch.sim.scenario.Hospital`).
SimHospital = Hospital


@dataclass(frozen=True)
class SimResult:
    """The outcome of one run.

    Attributes
    ----------
    scenario : str
        Scenario name.
    policy : str
        Dispatch policy.
    replication, seed : int
        Which replication of which seed.
    horizon_s, warmup_s : float
        Simulated span and warm-up (calls before ``warmup_s`` are simulated, not counted).
    calls : dict of str to numpy.ndarray
        One row per generated call, columns: ``call`` (index), ``time_s``, ``type``, ``service``,
        ``priority``, ``lat``, ``lon``, ``area``, ``in_stats`` (after warm-up), ``served``,
        ``unit``, ``vehicle``, ``dispatch_s`` (time of dispatch), ``wait_s`` (waiting for a free
        unit: dispatch minus call time minus the scenario's call-processing delay),
        ``turnout_s``, ``drive_s``, ``response_s`` (call to first arrival), ``target_s``,
        ``transport``, ``hospital``, ``on_scene_s``, ``hour`` (hour of day of the call),
        ``n_units`` and ``units`` (every unit sent, ``;``-separated, in dispatch order),
        ``complete`` (every mandatory unit sent) and ``full_complement_s`` (call to the last
        mandatory unit's arrival; ``nan`` while a slot is unfilled). ``unit``, ``vehicle``,
        ``dispatch_s``, ``wait_s``, ``turnout_s`` and ``drive_s`` describe the first unit to arrive.
        Without run cards one unit is sent, so ``full_complement_s`` equals ``response_s``.
        Unserved calls have ``nan`` times and empty ``unit``.
    units : dict of str to numpy.ndarray
        One row per unit: ``unit``, ``vehicle``, ``station``, ``lat``, ``lon``, ``dispatches``,
        ``busy_s`` (committed to calls: dispatch to free at scene or hospital),
        ``returning_s`` (driving back, dispatchable), ``utilisation`` (``busy_s`` over the counted
        span), all within ``[warmup_s, horizon_s]``.
    events : list of tuple
        ``(time_s, event, unit, call)`` records when the simulation was built with ``monitor=True``.
    area_names : tuple of str
        Names of the statistics areas (``calls['area']`` holds names).
    run_cards : str or None
        Source of the run-card table the run dispatched with (None: one unit per call).
    """

    scenario: str
    policy: str
    replication: int
    seed: int
    horizon_s: float
    warmup_s: float
    calls: dict[str, np.ndarray]
    units: dict[str, np.ndarray]
    events: list[tuple[float, str, str, int]]
    targets_s: dict[int, float]
    hospitals: tuple[SimHospital, ...] = ()
    run_cards: str | None = None

    @property
    def n_calls(self) -> int:
        """Calls generated."""
        return len(self.calls["time_s"])

    @property
    def n_served(self) -> int:
        """Calls a unit was dispatched to."""
        return int(np.count_nonzero(self.calls["served"]))

    @property
    def n_unserved(self) -> int:
        """Calls still waiting at the horizon."""
        return self.n_calls - self.n_served


# ----------------------------------------------------------------------------------------------
# the simulation
# ----------------------------------------------------------------------------------------------

# event kinds
_CALL, _ARRIVE_SCENE, _LEAVE_SCENE, _ARRIVE_HOSPITAL, _HANDOVER_DONE, _ARRIVE_STATION, _DISPATCH = (
    range(7)
)
_EVENT_NAMES = (
    "call",
    "arrive_scene",
    "leave_scene",
    "arrive_hospital",
    "handover_done",
    "arrive_station",
    "dispatch",
)
# event priorities at equal time: unit transitions first, then calls
_P_UNIT, _P_CALL = 0, 1
# unit statuses
_AVAILABLE, _ENROUTE, _ON_SCENE, _TO_HOSPITAL, _HANDOVER, _RETURNING = range(6)


class _UnitState:
    """Mutable state of one unit inside a :class:`Simulation`."""

    __slots__ = (
        "index", "id", "vehicle", "station", "home", "turnout_s", "status", "epoch", "pos",
        "route_coords", "route_times", "route_start_s", "busy_since_s", "busy_s",
        "returning_since_s", "returning_s", "dispatches", "call", "record", "home_idx",
        "ret_origin", "ret_call", "ret_hospital", "ret_hour", "ret_eta_s",
    )  # fmt: skip

    def __init__(self, index: int, u: SimUnit) -> None:
        self.index = index
        self.id = u.id
        self.vehicle = u.vehicle
        self.station = u.station
        self.home = (u.lat, u.lon)
        self.turnout_s = u.turnout_s
        self.status = _AVAILABLE
        self.epoch = 0
        self.pos = self.home
        self.route_coords: Sequence[tuple[float, float]] = ()
        self.route_times: Sequence[float] = ()
        self.route_start_s = 0.0
        self.busy_since_s = 0.0
        self.busy_s = 0.0
        self.returning_since_s = 0.0
        self.returning_s = 0.0
        self.dispatches = 0
        self.call = -1
        self.home_idx = 0  # index of its home among its class's homes (travel tables)
        self.ret_origin = self.home  # where the current return trip started
        self.ret_call = -1  # the return started at this call's scene, or
        self.ret_hospital = -1  # at this hospital
        self.ret_hour = 0.0  # clock hour of the return's departure (its travel times)
        self.ret_eta_s = 0.0
        self.record: dict[str, Any] = {
            "id": u.id, "vehicle": u.vehicle, "lat": u.lat, "lon": u.lon, "turnout_s": u.turnout_s,
        }  # fmt: skip


class _Tables:
    """Travel-time tables of one simulation, from the core's ``net.travel_times``.

    Units wait at a few homes, calls are known in advance and patients go to a few hospitals, so
    the times home -> call, call -> home, call -> hospital and hospital -> home are computed for
    every call at once, per vehicle class and per *routing regime* (the arc weights in force at an
    hour: speed band and active closures), the first time a regime is needed. The numbers are the
    same as one query at a time (same snapping, same exact shortest paths); only the order of work
    changes. Part of the :class:`Simulation` state.
    """

    def __init__(
        self,
        net: TravelOracle,
        calls: Calls,
        units: Sequence[_UnitState],
        hospitals: Sequence[SimHospital],
        type_vehicles: Sequence[frozenset[str]],
    ) -> None:
        self.net = net
        self.call_pts = np.column_stack([calls.lat, calls.lon]) if len(calls) else np.zeros((0, 2))
        self.hosp_pts = np.array([(h.lat, h.lon) for h in hospitals], dtype=float).reshape(-1, 2)
        homes: dict[str, list[tuple[float, float]]] = {}
        for u in units:
            lst = homes.setdefault(u.vehicle, [])
            if u.home not in lst:
                lst.append(u.home)
            u.home_idx = lst.index(u.home)
        self.homes = {v: np.array(h, dtype=float) for v, h in homes.items()}
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
            if name == "home_call":
                t = tt(homes, pts, vehicle=vehicle, hour=hour)
            elif name == "call_home":
                t = tt(pts, homes, vehicle=vehicle, hour=hour)
            elif name == "call_hosp":
                t = tt(pts, self.hosp_pts, vehicle=vehicle, hour=hour)
            elif name == "home_hosp":
                t = tt(homes, self.hosp_pts, vehicle=vehicle, hour=hour)
            else:  # hosp_home
                t = tt(self.hosp_pts, homes, vehicle=vehicle, hour=hour)
            t = np.asarray(t, dtype=float)
            self._tables[key] = t
            self.computed += 1
        return t

    def home_to_call(self, vehicle: str, hour: float, call: int) -> np.ndarray:
        """Drive time from each home of a class to a call (one entry per home)."""
        return self._table("home_call", vehicle, hour)[:, self.call_col[vehicle][call]]

    def call_to_home(self, vehicle: str, hour: float, call: int, home: int) -> float:
        return float(self._table("call_home", vehicle, hour)[self.call_col[vehicle][call], home])

    def call_to_hospitals(self, vehicle: str, hour: float, call: int) -> np.ndarray:
        return self._table("call_hosp", vehicle, hour)[self.call_col[vehicle][call]]

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
        from a call's scene or a hospital (ALT bound, the homes as landmarks ``L``).

        With ``p`` the unit's position and ``o`` the origin: ``T(p, L) >= T(o, L) - elapsed`` and
        ``T(L, p) <= T(L, o) + elapsed``, so ``T(p, c) >= T(o, L) - elapsed - T(c, L)`` and
        ``T(p, c) >= T(L, c) - T(L, o) - elapsed``. Valid when the return and the query are in the
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

    def hospital_to_home(self, vehicle: str, hour: float, hospital: int, home: int) -> float:
        return float(self._table("hosp_home", vehicle, hour)[hospital, home])


class Simulation:
    """One run of a scenario under one dispatch policy.

    Parameters
    ----------
    net : TravelOracle
        The road network (:class:`dispatch.roads.network.Network`, closures already applied) or a test
        double.
    scenario : Scenario
        Incident types, priorities, horizon, warm-up, processing delay.
    calls : Calls
        The calls to simulate (:func:`dispatch.sim.demand.generate_calls`).
    units : sequence of SimUnit
        The fleet at its stations.
    hospitals : sequence of SimHospital
        Receiving hospitals for 115 transports.
    policy : str
        One of :data:`dispatch.sim.scenario.POLICIES`.
    replication, seed : int
        Recorded in the result.
    monitor : bool
        Keep every event as a ``(time_s, event, unit, call)`` record in ``result.events``.
    node_coords : (lat, lon) arrays, optional
        Node coordinates of the network (needed by ``nearest_node``).
    tables : bool
        Precompute travel-time tables (homes, calls, hospitals) per routing regime with
        ``net.travel_times`` (default). False asks the network one query at a time: the same numbers,
        slower; kept as the reference the tables are tested against.

    Examples
    --------
    >>> sim = Simulation(net, scenario, calls, units, hospitals, policy="fastest")  # doctest: +SKIP
    >>> result = sim.run()  # doctest: +SKIP
    """

    def __init__(
        self,
        net: TravelOracle,
        scenario: Scenario,
        calls: Calls,
        units: Sequence[SimUnit],
        hospitals: Sequence[SimHospital] = (),
        *,
        policy: str = "fastest",
        replication: int = 0,
        seed: int | None = None,
        monitor: bool = False,
        node_coords: tuple[np.ndarray, np.ndarray] | None = None,
        tables: bool = True,
    ) -> None:
        if policy not in POLICIES:
            raise SimulationError(f"policy={policy!r} is not one of {', '.join(POLICIES)}")
        if not units:
            raise SimulationError("units: the fleet is empty")
        ids = [u.id for u in units]
        if len(set(ids)) != len(ids):
            dup = next(i for i in ids if ids.count(i) > 1)
            raise SimulationError(f"units: duplicate unit id {dup!r}")
        self.net = net
        self.scenario = scenario
        self.calls = calls
        self.policy = policy
        self.replication = replication
        self.seed = scenario.seed if seed is None else seed
        self.monitor = monitor
        self.horizon_s = scenario.horizon_h * 3600.0
        self.warmup_s = scenario.warmup_h * 3600.0
        self.units = [_UnitState(i, u) for i, u in enumerate(units)]
        self.unit_by_id = {u.id: u for u in self.units}
        self.hospitals = tuple(hospitals)
        types = scenario.incident_types
        present = {u.vehicle for u in units}
        # run cards: per type, the mandatory slots (one per unit needed) and the optional ones
        self._cards = scenario.run_cards
        self._type_slots: list[tuple[frozenset[str], ...]] = []
        self._type_optional: list[tuple[frozenset[str], ...]] = []
        if self._cards is not None:
            if policy == "optimal_batch":
                raise SimulationError("policy='optimal_batch' does not take run cards yet")
            for t in types:
                card = self._cards.card(t.name)
                self._type_slots.append(
                    tuple(frozenset(r.accepts) for r in card.mandatory for _ in range(r.count))
                )
                self._type_optional.append(
                    tuple(frozenset(r.accepts) for r in card.optional for _ in range(r.count))
                )
                for r in card.mandatory:
                    if not present.intersection(r.accepts):
                        raise SimulationError(
                            f"incident type {t.name!r}: its run card needs {r.count} "
                            f"{r.cls} ({', '.join(r.accepts)}) but the fleet has none "
                            f"(fleet classes: {', '.join(sorted(present))})"
                        )
        for t in types:
            if self._cards is None and not present.intersection(t.vehicles):
                raise SimulationError(
                    f"incident type {t.name!r} needs one of {', '.join(t.vehicles)} but the fleet has "
                    f"none (fleet classes: {', '.join(sorted(present))})"
                )
        # hospitals each type may use (by capability)
        self._type_hospitals: list[list[int]] = []
        for t in types:
            if t.transport_probability <= 0:
                self._type_hospitals.append([])
                continue
            ok = [
                i
                for i, h in enumerate(self.hospitals)
                if t.hospital_capability is None
                or not h.capabilities
                or t.hospital_capability in h.capabilities
            ]
            if not ok:
                raise SimulationError(
                    f"incident type {t.name!r} transports to a hospital with capability "
                    f"{t.hospital_capability!r} but no hospital has it"
                )
            self._type_hospitals.append(ok)
        # the same hospitals as dispatch.decide.hospitals objects (ids keep the listed order for ties);
        # a hospital listed without capabilities takes every patient
        from dispatch.decide.hospitals import Hospital as LiveHospital
        from dispatch.decide.incidents import HOSPITAL_CAPABILITIES

        self._live_hospitals = [
            LiveHospital(
                f"H{i:04d}", h.name, h.lat, h.lon,
                tuple(c for c in h.capabilities if c in HOSPITAL_CAPABILITIES) or HOSPITAL_CAPABILITIES,
            )
            for i, h in enumerate(self.hospitals)
        ]  # fmt: skip
        self._type_vehicles = [frozenset(t.vehicles) for t in types]
        if self._cards is not None:  # the classes any line of the card accepts
            self._type_vehicles = [
                frozenset().union(*self._type_slots[i], *self._type_optional[i])
                for i in range(len(types))
            ]
        self._type_priority = [t.priority for t in types]
        self._weight = {p.level: p.weight for p in scenario.priorities}
        self._node_coords = node_coords
        self._node_trees: dict[str, tuple[Any, np.ndarray, float]] = {}
        self._tables = (
            _Tables(net, calls, self.units, self.hospitals, self._type_vehicles) if tables else None
        )
        self._vmax_mps = {v: _max_speed_mps(net, v) for v in present}
        self._returning = scenario.returning
        self._route_cache: dict[tuple[int, int, str, int], tuple[Any, Any]] = {}
        self.n_fastest_units = 0  # calls to net.fastest_units (for the benchmark profile)
        self.n_routes = 0  # calls to net.route
        # event heap and waiting queue
        self._heap: list[tuple[float, int, int, int, int, int]] = []
        self._seq = 0
        self._waiting: dict[tuple[int, frozenset[str]], deque[int]] = {}
        self._wait_key: dict[int, tuple[int, frozenset[str]]] = {}
        self._n_waiting = 0
        self.now_s = 0.0
        self.events: list[tuple[float, str, str, int]] = []
        n = len(calls)
        self._served = np.zeros(n, dtype=bool)
        self._arrived = np.zeros(n, dtype=bool)  # reached the dispatcher (after processing)
        self._unit_of_call = np.full(n, -1, dtype=np.int64)
        self._dispatch_s = np.full(n, np.nan)
        self._turnout_s = np.full(n, np.nan)
        self._drive_s = np.full(n, np.nan)
        self._hospital_of_call = np.full(n, -1, dtype=np.int64)
        # every unit sent (run cards: several per call), arrival times, slots still to fill
        self._sent: list[list[int]] = [[] for _ in range(n)]
        self._first_arrival_s = np.full(n, np.nan)  # absolute clock time of the first arrival
        self._full_arrival_s = np.full(n, np.nan)  # last mandatory unit's arrival (running max)
        self._first_mandatory_s = np.full(n, np.nan)  # first mandatory unit's arrival
        self._remaining: dict[int, list[frozenset[str]]] = {}
        self._optional_done = np.zeros(n, dtype=bool)
        self._transporter = np.full(n, -1, dtype=np.int64)  # the unit that carries the patient
        self._ran = False

    # -- event plumbing ---------------------------------------------------------------------------

    def _push(self, time_s: float, prio: int, kind: int, a: int, b: int = 0) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (time_s, prio, self._seq, kind, a, b))

    def _log(self, event: int, unit: _UnitState | None, call: int) -> None:
        if self.monitor:
            self.events.append((self.now_s, _EVENT_NAMES[event], unit.id if unit else "", call))

    def _hour(self) -> float:
        return self.now_s / 3600.0

    # -- positions -------------------------------------------------------------------------------

    def _ensure_route(self, u: _UnitState) -> None:
        """Compute a returning unit's route home (lazily: only when its position is needed)."""
        if u.status != _RETURNING or u.route_coords:
            return
        if self._returning == "home":  # no route: a straight line, for display and baselines only
            u.route_coords = [u.ret_origin, u.home]
            u.route_times = [0.0, u.ret_eta_s]
            return
        key = None
        if u.ret_hospital >= 0 and self._tables is not None:  # hospital -> home repeats: cache it
            key = (
                u.ret_hospital,
                u.home_idx,
                u.vehicle,
                self._tables.regime(u.vehicle, u.ret_hour),
            )
            hit = self._route_cache.get(key)
            if hit is not None:
                u.route_coords, u.route_times = hit
                return
        self.n_routes += 1
        r = self.net.route(u.ret_origin, u.home, vehicle=u.vehicle, hour=u.ret_hour)
        if r.coords and math.isfinite(float(r.eta_s)):
            u.route_coords = r.coords
            u.route_times = r.times_s
        else:  # pragma: no cover - a return time was found, so a route exists
            u.route_coords = [u.ret_origin, u.home]
            u.route_times = [0.0, u.ret_eta_s]
        if key is not None:
            self._route_cache[key] = (u.route_coords, u.route_times)

    def position(self, u: _UnitState) -> tuple[float, float]:
        """Where a unit is now (interpolated along its route while returning)."""
        self._ensure_route(u)
        if u.status != _RETURNING or not u.route_coords:
            return u.pos
        elapsed = self.now_s - u.route_start_s
        times = u.route_times
        i = bisect_right(times, elapsed)
        if i >= len(times):
            return u.route_coords[-1]
        if i == 0:
            return u.route_coords[0]
        t0, t1 = times[i - 1], times[i]
        f = 0.0 if t1 <= t0 else (elapsed - t0) / (t1 - t0)
        (la0, lo0), (la1, lo1) = u.route_coords[i - 1], u.route_coords[i]
        return (la0 + f * (la1 - la0), lo0 + f * (lo1 - lo0))

    def _dispatch_point(self, u: _UnitState) -> tuple[tuple[float, float], float]:
        """Point and extra delay to use when routing a unit from where it is now.

        A unit at its station starts from the station after its turnout. A returning unit is placed
        at the next vertex of its route, with the time still needed to reach it as its delay (the
        crew is already on the road: no turnout). Using the vertex keeps the point on the road.
        """
        self._ensure_route(u)
        if u.status != _RETURNING or not u.route_coords:
            return u.pos, u.turnout_s
        elapsed = self.now_s - u.route_start_s
        times = u.route_times
        i = bisect_right(times, elapsed)
        if i >= len(times):
            return u.route_coords[-1], 0.0
        return u.route_coords[i], float(times[i]) - elapsed

    # -- policies --------------------------------------------------------------------------------

    def _candidates(self, vehicles: frozenset[str]) -> list[_UnitState]:
        return [
            u
            for u in self.units
            if (u.status == _AVAILABLE or u.status == _RETURNING) and u.vehicle in vehicles
        ]

    def _fastest(
        self, point: tuple[float, float], cands: Sequence[_UnitState], k: int = 1
    ) -> list[tuple[_UnitState, float, float, float]]:
        recs = []
        for u in cands:
            (lat, lon), delay = self._dispatch_point(u)
            r = u.record
            r["lat"], r["lon"], r["turnout_s"] = lat, lon, delay
            recs.append(r)
        self.n_fastest_units += 1
        out = self.net.fastest_units(point, recs, k=k, hour=self._hour())
        return [
            (self.unit_by_id[e.unit], float(e.eta_s), float(e.turnout_s), float(e.drive_s))
            for e in out
        ]

    def _fastest_tables(
        self, call: int, cands: Sequence[_UnitState]
    ) -> tuple[_UnitState, float, float, float] | None:
        """The fastest unit, with the travel tables for units at their stations.

        Units at home are timed from the home -> call table. A returning unit is asked of
        ``net.fastest_units`` (from the next vertex of its route), together with the best unit at
        home, unless a lower bound on its ETA (straight-line distance at the class's top speed,
        knowing how far it can have driven since it left) already loses to that unit.
        """
        assert self._tables is not None
        hour = self._hour()
        point = (float(self.calls.lat[call]), float(self.calls.lon[call]))
        best: tuple[float, str, _UnitState] | None = None
        returning = []
        home_eta: dict[str, np.ndarray] = {}
        for u in cands:
            if u.status == _RETURNING:
                returning.append(u)
                continue
            col = home_eta.get(u.vehicle)
            if col is None:
                col = home_eta[u.vehicle] = self._tables.home_to_call(u.vehicle, hour, call)
            eta = u.turnout_s + float(col[u.home_idx])
            if math.isfinite(eta) and (best is None or (eta, u.id) < best[:2]):
                best = (eta, u.id, u)
        if returning and self._returning == "home":
            # each returning unit as if it drove home first: remaining time + home -> call
            for u in returning:
                col = home_eta.get(u.vehicle)
                if col is None:
                    col = home_eta[u.vehicle] = self._tables.home_to_call(u.vehicle, hour, call)
                rem = max(u.ret_eta_s - (self.now_s - u.route_start_s), 0.0)
                eta = rem + float(col[u.home_idx])
                if math.isfinite(eta) and (best is None or (eta, u.id) < best[:2]):
                    best = (eta, u.id, u)
            returning = []
        if returning:
            bound = math.inf if best is None else best[0]
            keep = [u for u in returning if self._eta_lower_bound(u, point, call) <= bound]
            if keep:
                ask = keep + ([best[2]] if best is not None else [])
                timed = self._fastest(point, ask, k=1)
                if timed:
                    return timed[0]
                return None
        if best is None:
            return None
        eta, _, u = best
        turnout = u.turnout_s if u.status == _AVAILABLE else 0.0
        return (u, eta, turnout, eta - turnout)

    def _eta_lower_bound(self, u: _UnitState, point: tuple[float, float], call: int = -1) -> float:
        """A lower bound of a returning unit's drive time to ``point`` (no route needed).

        It left ``ret_origin`` ``elapsed`` seconds ago and is ``remaining`` seconds from home on a
        shortest path, so it is within ``vmax * elapsed`` of the origin and ``vmax * remaining`` of
        home; the straight line to the call, less that and a snapping slack, at ``vmax``.
        """
        vmax = self._vmax_mps.get(u.vehicle, math.inf)
        if not math.isfinite(vmax) or vmax <= 0:
            return 0.0
        elapsed = self.now_s - u.route_start_s
        remaining = max(u.ret_eta_s - elapsed, 0.0)
        d_o = point_distance_m(u.ret_origin, point)
        d_h = point_distance_m(u.home, point)
        d = max(d_o - vmax * elapsed, d_h - vmax * remaining) - LOWER_BOUND_SLACK_M
        lb = max(d, 0.0) / vmax
        tables = self._tables
        if tables is not None and call >= 0:
            hour = self._hour()
            if tables.regime(u.vehicle, hour) == tables.regime(u.vehicle, u.ret_hour):
                # exact in one routing regime only; also T(here -> home) = remaining
                bound = tables.landmark_bound(
                    u.vehicle, hour, u.ret_call, u.ret_hospital, call, elapsed
                )
                back = tables.call_to_home(u.vehicle, hour, call, u.home_idx)
                lb = max(lb, bound, remaining - back)
        return lb

    def _time_unit(self, u: _UnitState, call: int) -> tuple[_UnitState, float, float, float] | None:
        """Road ETA of one chosen unit (what a baseline's choice really costs)."""
        if self._tables is not None and (u.status == _AVAILABLE or self._returning == "home"):
            drive = float(self._tables.home_to_call(u.vehicle, self._hour(), call)[u.home_idx])
            if not math.isfinite(drive):
                return None
            if u.status == _AVAILABLE:
                return (u, u.turnout_s + drive, u.turnout_s, drive)
            drive += max(u.ret_eta_s - (self.now_s - u.route_start_s), 0.0)
            return (u, drive, 0.0, drive)
        point = (float(self.calls.lat[call]), float(self.calls.lon[call]))
        timed = self._fastest(point, [u], k=1)
        return timed[0] if timed else None

    def _choose(
        self, call: int, cands: Sequence[_UnitState]
    ) -> tuple[_UnitState, float, float, float] | None:
        point = (float(self.calls.lat[call]), float(self.calls.lon[call]))
        if self.policy in ("fastest", "optimal_batch"):
            if self._tables is not None:
                return self._fastest_tables(call, cands)
            best = self._fastest(point, cands, k=1)
            return best[0] if best else None
        if self.policy == "nearest_straight_line":
            pos = np.array([self.position(u) for u in cands])
            d = haversine_m(pos[:, 0], pos[:, 1], point[0], point[1])
        else:  # nearest_node
            d = self._node_ranking(point, cands)
        # rank by the baseline's proxy (ties by unit id), time the chosen unit on the roads;
        # a unit the roads cannot bring there is skipped for the next one
        order = sorted(range(len(cands)), key=lambda j: (d[j], cands[j].id))
        for j in order:
            if not math.isfinite(d[j]):
                continue
            timed_one = self._time_unit(cands[j], call)
            if timed_one is not None:
                return timed_one
        return None

    def _node_tree_for(self, vehicle: str) -> tuple[Any, np.ndarray, float]:
        """KD-tree of the nodes a class can reach (its largest strongly connected part)."""
        tree = self._node_trees.get(vehicle)
        if tree is None:
            from scipy.spatial import cKDTree

            from dispatch.sim.demand import _reachable_arcs

            assert self._node_coords is not None
            lat, lon = self._node_coords
            net: Any = self.net
            if hasattr(net, "arc_tail"):
                ok = _reachable_arcs(net, vehicle)
                nodes = np.unique(np.concatenate([net.arc_tail[ok], net.arc_head[ok]]))
            else:
                nodes = np.arange(len(lat))
            kx = math.cos(math.radians(float(np.mean(lat))))
            tree = (cKDTree(np.column_stack([lat[nodes], lon[nodes] * kx])), nodes, kx)
            self._node_trees[vehicle] = tree
        return tree

    def _node_ranking(self, point: tuple[float, float], cands: Sequence[_UnitState]) -> np.ndarray:
        """``nearest_node``: call and units at their nearest graph node, node-to-node road time."""
        if self._node_coords is None:
            raise SimulationError("policy='nearest_node' needs the network's node coordinates")
        lat, lon = self._node_coords
        out = np.full(len(cands), np.inf)
        by_vehicle: dict[str, list[int]] = {}
        for j, u in enumerate(cands):
            by_vehicle.setdefault(u.vehicle, []).append(j)
        for vehicle, js in by_vehicle.items():
            tree, nodes, kx = self._node_tree_for(vehicle)
            pts = np.array([point] + [self.position(cands[j]) for j in js])
            _, idx = tree.query(np.column_stack([pts[:, 0], pts[:, 1] * kx]))
            at = np.column_stack([lat[nodes[idx]], lon[nodes[idx]]])
            try:
                tt = self.net.travel_times(at[1:], at[:1], vehicle=vehicle, hour=self._hour())
            except DispatchError:  # a node the class cannot use: this baseline cannot rank them
                continue
            for row, j in enumerate(js):
                out[j] = float(tt[row, 0]) + (
                    cands[j].turnout_s if cands[j].status == _AVAILABLE else 0.0
                )
        return out

    # -- dispatch --------------------------------------------------------------------------------

    def _dispatch(
        self,
        call: int,
        u: _UnitState,
        eta_s: float,
        turnout_s: float,
        drive_s: float,
        *,
        mandatory: bool = True,
    ) -> None:
        now = self.now_s
        # a returning unit has no turnout: the delay to its next route vertex is driving
        turnout_s = u.turnout_s if u.status == _AVAILABLE else 0.0
        drive_s = eta_s - turnout_s
        if u.status == _RETURNING:
            u.returning_s += _clip_span(u.returning_since_s, now, self.warmup_s, self.horizon_s)
        u.pos = self.position(u)
        u.status = _ENROUTE
        u.epoch += 1
        u.call = call
        u.dispatches += 1 if self.calls.time_s[call] >= self.warmup_s else 0
        u.busy_since_s = now
        u.route_coords = ()
        self._served[call] = True
        self._sent[call].append(u.index)
        arrival = now + turnout_s + drive_s
        if mandatory:
            self._full_arrival_s[call] = np.fmax(self._full_arrival_s[call], arrival)
            self._first_mandatory_s[call] = np.fmin(self._first_mandatory_s[call], arrival)
        if self._transporter[call] < 0 and (self._cards is None or u.vehicle == "ambulance"):
            self._transporter[call] = u.index
        first = self._first_arrival_s[call]
        if math.isnan(first) or arrival < first:  # the record shows the first unit to arrive
            self._first_arrival_s[call] = arrival
            self._unit_of_call[call] = u.index
            self._dispatch_s[call] = now
            self._turnout_s[call] = turnout_s
            self._drive_s[call] = drive_s
        self._push(now + eta_s, _P_UNIT, _ARRIVE_SCENE, u.index, u.epoch)
        self._log(_DISPATCH, u, call)

    def _enqueue(self, call: int) -> None:
        ti = int(self.calls.type_idx[call])
        if self._cards is None:
            key = (self._type_priority[ti], self._type_vehicles[ti])
        else:  # keyed by the classes its unfilled slots accept
            rem = self._remaining.setdefault(call, list(self._type_slots[ti]))
            key = (self._type_priority[ti], frozenset().union(*rem))
        self._wait_key[call] = key
        self._waiting.setdefault(key, deque()).append(call)
        self._n_waiting += 1

    def _waiting_in_order(self, free: set[str]) -> list[int]:
        """Waiting calls some free class could answer: most urgent, then oldest, first.

        At most :data:`SCAN_LIMIT` calls are looked at, so that an overloaded queue costs a bounded
        amount of work per freed unit.
        """
        time_s = self.calls.time_s

        def tagged(level: int, q: deque[int]) -> Iterator[tuple[int, float, int]]:
            return ((level, float(time_s[c]), c) for c in q)

        queues = [
            tagged(key[0], q)
            for key, q in self._waiting.items()
            if q and not free.isdisjoint(key[1])
        ]
        out = []
        for _, _, c in heapq.merge(*queues):
            out.append(c)
            if len(out) >= SCAN_LIMIT:
                break
        return out

    def _match(self) -> None:
        """Dispatch waiting calls while some dispatchable unit can take one."""
        if self._n_waiting == 0:
            return
        if self.policy == "optimal_batch":
            self._match_batch()
            return
        while self._n_waiting:
            free = {
                u.vehicle for u in self.units if u.status == _AVAILABLE or u.status == _RETURNING
            }
            if not free:
                return
            progressed = False
            for call in self._waiting_in_order(free):
                if self._cards is not None:
                    if self._serve_card(call):
                        progressed = True
                        break
                    continue
                choice = self._choose(call, self._candidates(self._key(call)[1]))
                if choice is None:  # no free unit can reach it now; it keeps waiting
                    continue
                self._remove_waiting(call)
                self._dispatch(call, *choice)
                progressed = True
                break
            if not progressed:
                return

    def _match_batch(self) -> None:
        """``optimal_batch``: assign the waiting calls jointly with :func:`dispatch.decide.assign.solve`."""
        from dispatch.decide.assign import Demand, build_problem, solve

        while self._n_waiting:
            free_units = [u for u in self.units if u.status == _AVAILABLE or u.status == _RETURNING]
            if not free_units:
                return
            calls = self._waiting_in_order({u.vehicle for u in free_units})
            if not calls:
                return
            if len(calls) == 1 or len(free_units) == 1 and len(calls) == 1:
                call = calls[0]
                choice = self._choose(call, self._candidates(self._key(call)[1]))
                if choice is None:
                    return
                self._remove_waiting(call)
                self._dispatch(call, *choice)
                continue
            # ETA (turnout or time to the next route vertex, plus drive) of each unit to each call
            eta = np.full((len(free_units), len(calls)), np.inf)
            pts = np.array([(self.calls.lat[c], self.calls.lon[c]) for c in calls])
            by_vehicle: dict[str, list[int]] = {}
            for i, u in enumerate(free_units):
                by_vehicle.setdefault(u.vehicle, []).append(i)
            for vehicle, idx in by_vehicle.items():
                # only the calls this class may answer (others may lie on roads it cannot use)
                cols = [j for j, c in enumerate(calls) if vehicle in self._key(c)[1]]
                if not cols:
                    continue
                starts = [self._dispatch_point(free_units[i]) for i in idx]
                tt = self.net.travel_times(
                    np.array([p for p, _ in starts]), pts[cols], vehicle=vehicle, hour=self._hour()
                )
                eta[np.ix_(idx, cols)] = tt + np.array([d for _, d in starts])[:, None]
            types = self.scenario.incident_types
            demands = [
                Demand(
                    j, types[int(self.calls.type_idx[c])].name, tuple(sorted(self._key(c)[1])), 1
                )
                for j, c in enumerate(calls)
            ]
            weights = [self._weight[self._key(c)[0]] for c in calls]
            problem = build_problem(
                eta,
                [u.id for u in free_units],
                [u.vehicle for u in free_units],
                weights,
                demands,
                order=list(range(len(calls))),
            )
            pairs = solve(problem, method="min_cost_flow").pairs
            dispatched = 0
            for i, j in sorted(pairs, key=lambda p: p[1]):
                u, call = free_units[i], calls[j]
                timed = self._time_unit(u, call)
                if timed is None:
                    continue
                self._remove_waiting(call)
                self._dispatch(call, *timed)
                dispatched += 1
            if not dispatched:
                return

    def _serve_card(self, call: int) -> bool:
        """Fill what can be filled of a waiting call's run card now; True if a unit was sent.

        Each unfilled mandatory slot, in card order, gets the fastest dispatchable unit of an
        accepted class (the policy's choice, timed on the roads); a slot no unit can fill now stays
        open and the call keeps waiting for it. Optional first responders (``only_if_first``) are
        looked at once, when the call first reaches the dispatcher: one is sent when it would arrive
        before every mandatory unit sent so far (the rule of :func:`dispatch.assign.assign`).
        """
        rem = self._remaining[call]
        left: list[frozenset[str]] = []
        sent = 0
        for slot in rem:
            cands = self._candidates(slot)
            choice = self._choose(call, cands) if cands else None
            if choice is None:
                left.append(slot)
                continue
            self._dispatch(call, *choice, mandatory=True)
            sent += 1
        if not self._optional_done[call]:
            self._optional_done[call] = True
            ti = int(self.calls.type_idx[call])
            for slot in self._type_optional[ti]:
                cands = self._candidates(slot)
                choice = self._choose(call, cands) if cands else None
                if choice is None:
                    continue
                first = self._first_mandatory_s[call]
                if math.isnan(first) or self.now_s + choice[1] < first:
                    self._dispatch(call, *choice, mandatory=False)
                    sent += 1
        if not sent:
            return False
        self._remove_waiting(call)
        self._remaining[call] = left
        if left:
            self._enqueue(call)
        else:
            del self._remaining[call]
        return True

    def _choose_hospital(self, eta_s: np.ndarray, type_index: int) -> int:
        """Hospital index by :func:`dispatch.decide.hospitals.choose_hospital`; -1 if none is reachable."""
        from dispatch.decide.hospitals import NoHospitalError, choose_hospital

        cap = self.scenario.incident_types[type_index].hospital_capability or "general"
        try:
            j, _fallback = choose_hospital(eta_s, self._live_hospitals, cap)
        except NoHospitalError:
            return -1
        return int(j) if math.isfinite(float(eta_s[j])) else -1

    def _key(self, call: int) -> tuple[int, frozenset[str]]:
        ti = int(self.calls.type_idx[call])
        return (self._type_priority[ti], self._type_vehicles[ti])

    def _remove_waiting(self, call: int) -> None:
        self._waiting[self._wait_key.pop(call)].remove(call)
        self._n_waiting -= 1

    # -- unit transitions --------------------------------------------------------------------------

    def _free(self, u: _UnitState) -> None:
        """The unit is done with its call where it is: it heads home and is dispatchable again."""
        now = self.now_s
        u.busy_s += _clip_span(u.busy_since_s, now, self.warmup_s, self.horizon_s)
        u.call = -1
        hour = self._hour()
        u.route_coords = ()
        if self._tables is not None:
            if u.ret_hospital >= 0:
                eta = self._tables.hospital_to_home(u.vehicle, hour, u.ret_hospital, u.home_idx)
            else:
                eta = self._tables.call_to_home(u.vehicle, hour, u.ret_call, u.home_idx)
        else:
            self.n_routes += 1
            route = self.net.route(u.pos, u.home, vehicle=u.vehicle, hour=hour)
            eta = float(route.eta_s)
            u.route_coords = route.coords
            u.route_times = route.times_s
        if not math.isfinite(eta) or eta <= 0.5:
            u.status = _AVAILABLE
            u.pos = u.home
            u.route_coords = ()
        else:
            u.status = _RETURNING
            u.ret_origin = u.pos
            u.ret_hour = hour
            u.ret_eta_s = eta
            u.route_start_s = now
            u.returning_since_s = now
            self._push(now + eta, _P_UNIT, _ARRIVE_STATION, u.index, u.epoch)
        self._match()

    def _handle(self, kind: int, a: int, b: int) -> None:
        if kind == _CALL:
            self._arrived[a] = True
            self._log(kind, None, a)
            self._enqueue(a)
            self._match()
            return
        u = self.units[a]
        if b != u.epoch:  # a stale event of a unit redispatched meanwhile
            return
        call = u.call
        self._log(kind, u, call)
        if kind == _ARRIVE_SCENE:
            u.status = _ON_SCENE
            u.pos = (float(self.calls.lat[call]), float(self.calls.lon[call]))
            self._push(
                self.now_s + float(self.calls.on_scene_s[call]), _P_UNIT, _LEAVE_SCENE, a, u.epoch
            )
        elif kind == _LEAVE_SCENE:
            ti = int(self.calls.type_idx[call])
            if (
                self.calls.transport[call]
                and self._type_hospitals[ti]
                and self._transporter[call] == u.index
            ):
                # every hospital's ETA, then the live-dispatch rule (dispatch.decide.hospitals): the
                # fastest that can treat the patient, else the fastest general one
                if self._tables is not None:
                    tt = self._tables.call_to_hospitals(u.vehicle, self._hour(), call)
                else:
                    pts = np.array([(h.lat, h.lon) for h in self.hospitals])
                    tt = self.net.travel_times(u.pos, pts, vehicle=u.vehicle, hour=self._hour())[0]
                j = self._choose_hospital(np.asarray(tt, dtype=float), ti)
                if j >= 0:
                    u.status = _TO_HOSPITAL
                    self._hospital_of_call[call] = j
                    u.pos = (self.hospitals[j].lat, self.hospitals[j].lon)
                    self._push(self.now_s + float(tt[j]), _P_UNIT, _ARRIVE_HOSPITAL, a, u.epoch)
                    return
            u.ret_call, u.ret_hospital = call, -1
            self._free(u)
        elif kind == _ARRIVE_HOSPITAL:
            u.status = _HANDOVER
            self._push(
                self.now_s + float(self.calls.handover_s[call]), _P_UNIT, _HANDOVER_DONE, a, u.epoch
            )
        elif kind == _HANDOVER_DONE:
            u.ret_call, u.ret_hospital = -1, int(self._hospital_of_call[call])
            self._free(u)
        elif kind == _ARRIVE_STATION:
            u.returning_s += _clip_span(
                u.returning_since_s, self.now_s, self.warmup_s, self.horizon_s
            )
            u.status = _AVAILABLE
            u.pos = u.home
            u.route_coords = ()

    # -- run -------------------------------------------------------------------------------------

    def run(self, *, progress: Callable[[int], None] | None = None) -> SimResult:
        """Run to the horizon and return the result (a simulation runs once).

        Parameters
        ----------
        progress : callable, optional
            Called with the number of calls that arrived since the previous call (about every 1%).
        """
        if self._ran:
            raise SimulationError("a Simulation runs once; build a new one")
        self._ran = True
        delay = self.scenario.processing_s
        times = self.calls.time_s
        for i in range(len(times)):
            self._push(float(times[i]) + delay, _P_CALL, _CALL, i)
        step = max(1, len(times) // 100)
        seen = 0
        heap = self._heap
        while heap:
            t, _, _, kind, a, b = heapq.heappop(heap)
            if t > self.horizon_s:
                break
            self.now_s = t
            self._handle(kind, a, b)
            if kind == _CALL and progress is not None:
                seen += 1
                if seen % step == 0:
                    progress(step)
        self.now_s = self.horizon_s
        if progress is not None and seen % step:
            progress(seen % step)
        return self._result()

    def _result(self) -> SimResult:
        c = self.calls
        sc = self.scenario
        types = sc.incident_types
        n = len(c)
        # close the open intervals at the horizon
        for u in self.units:
            if u.status in (_ENROUTE, _ON_SCENE, _TO_HOSPITAL, _HANDOVER):
                u.busy_s += _clip_span(
                    u.busy_since_s, self.horizon_s, self.warmup_s, self.horizon_s
                )
            elif u.status == _RETURNING:
                u.returning_s += _clip_span(
                    u.returning_since_s, self.horizon_s, self.warmup_s, self.horizon_s
                )
        # conservation: every call is served (run cards: its whole card filled), waiting in the
        # queue (run cards: maybe with some units already sent), or still in call processing
        queued = sum(len(q) for q in self._waiting.values())
        processing = int(np.count_nonzero(~self._arrived))
        complete = self._served.copy()
        if self._remaining:
            complete[list(self._remaining)] = False
        served = int(complete.sum())
        if queued != self._n_waiting or served + queued + processing != n:
            raise SimulationError(
                f"conservation check failed: {n} calls generated, {served} served, {queued} "
                f"waiting, {processing} still in call processing"
            )
        waiting_set = {call for q in self._waiting.values() for call in q}
        if (
            set(self._remaining) != (waiting_set if self._cards is not None else set())
            or any(complete[call] or not self._arrived[call] for call in waiting_set)
            or np.any(self._served & ~self._arrived)
        ):
            raise SimulationError("conservation check failed: a call is in two states at once")
        type_names = np.array([t.name for t in types])
        services = np.array([t.service for t in types])
        prios = np.array([t.priority for t in types], dtype=np.int64)
        targets = {p.level: p.target_s for p in sc.priorities}
        prio = prios[c.type_idx]
        ids = np.array([u.id for u in self.units] + [""])
        vehicles = np.array([u.vehicle for u in self.units] + [""])
        uidx = np.where(self._unit_of_call >= 0, self._unit_of_call, len(self.units))
        hnames = np.array([h.name for h in self.hospitals] + [""])
        hidx = np.where(self._hospital_of_call >= 0, self._hospital_of_call, len(self.hospitals))
        arrival = self._dispatch_s + self._turnout_s + self._drive_s
        unit_ids = [u.id for u in self.units]
        sent_ids = np.array([";".join(unit_ids[i] for i in s) for s in self._sent], dtype=object)
        full = np.where(complete, self._full_arrival_s - c.time_s, np.nan)
        calls = {
            "call": np.arange(n),
            "time_s": c.time_s,
            "hour": np.floor(c.time_s / 3600.0).astype(np.int64) % 24,
            "type": type_names[c.type_idx] if n else np.array([], dtype=str),
            "service": services[c.type_idx] if n else np.array([], dtype=str),
            "priority": prio,
            "lat": c.lat,
            "lon": c.lon,
            "area": np.array(c.areas.names)[c.area] if n else np.array([], dtype=str),
            "in_stats": c.time_s >= self.warmup_s,
            "served": self._served.copy(),
            "unit": ids[uidx],
            "vehicle": vehicles[uidx],
            "dispatch_s": self._dispatch_s,
            "wait_s": self._dispatch_s - c.time_s - sc.processing_s,
            "turnout_s": self._turnout_s,
            "drive_s": self._drive_s,
            "response_s": arrival - c.time_s,
            "target_s": np.array([targets[int(p)] for p in prio]) if n else np.zeros(0),
            "transport": c.transport & (hidx < len(self.hospitals)),
            "hospital": hnames[hidx],
            "on_scene_s": c.on_scene_s,
            "n_units": np.array([len(s) for s in self._sent], dtype=np.int64),
            "units": sent_ids.astype(str) if n else np.array([], dtype=str),
            "complete": complete,
            "full_complement_s": full,
        }
        span = max(self.horizon_s - self.warmup_s, 1e-9)
        units = {
            "unit": np.array([u.id for u in self.units]),
            "vehicle": np.array([u.vehicle for u in self.units]),
            "station": np.array([u.station for u in self.units]),
            "lat": np.array([u.home[0] for u in self.units]),
            "lon": np.array([u.home[1] for u in self.units]),
            "dispatches": np.array([u.dispatches for u in self.units], dtype=np.int64),
            "busy_s": np.array([u.busy_s for u in self.units]),
            "returning_s": np.array([u.returning_s for u in self.units]),
            "utilisation": np.array([u.busy_s / span for u in self.units]),
        }
        return SimResult(
            scenario=sc.name,
            policy=self.policy,
            replication=self.replication,
            seed=self.seed,
            horizon_s=self.horizon_s,
            warmup_s=self.warmup_s,
            calls=calls,
            units=units,
            events=self.events,
            targets_s=targets,
            hospitals=self.hospitals,
            run_cards=self._cards.source if self._cards is not None else None,
        )


def _max_speed_mps(net: Any, vehicle: str) -> float:
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


def _clip_span(start: float, end: float, lo: float, hi: float) -> float:
    return max(0.0, min(end, hi) - max(start, lo))


# ----------------------------------------------------------------------------------------------
# from a scenario to runs
# ----------------------------------------------------------------------------------------------

#: Service of each vehicle class (for the turnout default).
VEHICLE_SERVICE = {"ambulance": "115", "motorbike": "115", "fire_engine": "114", "ladder": "114"}


@dataclass(frozen=True)
class World:
    """What a scenario resolves to on its map, shared by every policy and replication.

    Attributes
    ----------
    units : tuple of SimUnit
    hospitals : tuple of SimHospital
    stations : dict of str to (lat, lon)
    segments : dispatch.sim.demand.RoadSegments
    areas : dispatch.sim.demand.Areas
    node_coords : (lat, lon) arrays or None
    bbox : (min_lat, min_lon, max_lat, max_lon)
    closures : tuple of dict
        ``label``, ``start_h``, ``end_h`` and GeoJSON ``geometry`` (None for way closures).
    """

    units: tuple[SimUnit, ...]
    hospitals: tuple[SimHospital, ...]
    stations: Mapping[str, tuple[float, float]]
    segments: Any
    areas: Any
    node_coords: tuple[np.ndarray, np.ndarray] | None
    bbox: tuple[float, float, float, float]
    closures: tuple[Mapping[str, Any], ...] = ()


def _facility_name(f: Any) -> str:
    name = str(getattr(f, "name", "") or "").strip()
    if not name or name == "(unnamed)":
        return f"{f.kind} ({f.osm_id})"
    return name


def resolve_world(scenario: Scenario, net: Any) -> World:
    """Resolve a scenario's stations, units, hospitals, demand areas on a network.

    Raises
    ------
    dispatch.sim.scenario.ScenarioError
        A unit at an unknown station, a map without the facilities asked for, and so on.
    """
    from dispatch.sim.demand import areas_for, road_segments
    from dispatch.sim.scenario import ScenarioError

    where = str(scenario.source) if scenario.source else scenario.name
    stations: dict[str, tuple[float, float]] = {s.name: (s.lat, s.lon) for s in scenario.stations}
    units: list[SimUnit] = []

    def turnout(vehicle: str, override: float | None) -> float:
        return (
            float(override)
            if override is not None
            else float(scenario.turnout_s[VEHICLE_SERVICE[vehicle]])
        )

    if scenario.map_stations is not None:
        ms = scenario.map_stations
        facs = [f for f in net.facilities if f.kind in ms.kinds]
        if not facs:
            raise ScenarioError(
                f"{where}: map_stations: the map {scenario.map!r} has no {', '.join(ms.kinds)}"
            )
        prefix = {"fire_station": "FS", "ambulance_station": "AS", "hospital": "H", "clinic": "C"}
        for n, f in enumerate(sorted(facs, key=lambda f: (f.kind, str(f.osm_id))), 1):
            name = _facility_name(f)
            if name in stations:
                name = f"{name} ({f.osm_id})"
            stations[name] = (float(f.lat), float(f.lon))
            for vehicle, count in ms.units:
                for k in range(count):
                    uid = f"{prefix.get(f.kind, 'S')}{n}-{vehicle}-{k + 1}"
                    units.append(
                        SimUnit(
                            uid, vehicle, name, float(f.lat), float(f.lon), turnout(vehicle, None)
                        )
                    )
    for i, u in enumerate(scenario.units):
        if u.station not in stations:
            raise ScenarioError(f"{where}: units[{i}].station: {u.station!r} is not a station")
        lat, lon = stations[u.station]
        units.append(SimUnit(u.id, u.vehicle, u.station, lat, lon, turnout(u.vehicle, u.turnout_s)))
    if scenario.fleet_csv is not None:
        from dispatch.decide.incidents import read_fleet

        for fu in read_fleet(scenario.fleet_csv):
            if fu.status == "out_of_service":
                continue
            station = fu.station or f"{fu.id} base"
            stations.setdefault(station, (fu.lat, fu.lon))
            units.append(
                SimUnit(
                    fu.id, fu.vehicle, station, fu.lat, fu.lon, turnout(fu.vehicle, fu.turnout_s)
                )
            )
    ids = [u.id for u in units]
    if len(set(ids)) != len(ids):
        dup = sorted({i for i in ids if ids.count(i) > 1})
        raise ScenarioError(f"{where}: units: duplicate unit ids {', '.join(dup)}")
    hospitals = list(scenario.hospitals)
    if scenario.hospitals_from_map:
        for f in net.facilities:
            if f.kind == "hospital":
                hospitals.append(SimHospital(_facility_name(f), float(f.lat), float(f.lon), ()))
    seg_cache: dict[tuple[str, ...], Any] = {}

    def segments(vehicles: tuple[str, ...]) -> Any:
        if vehicles not in seg_cache:
            seg_cache[vehicles] = road_segments(net, vehicles=vehicles)
        return seg_cache[vehicles]

    bbox = tuple(float(x) for x in net.bbox)
    areas = areas_for(scenario, bbox)  # type: ignore[arg-type]
    node_coords = None
    if hasattr(net, "node_lat"):
        node_coords = (np.asarray(net.node_lat), np.asarray(net.node_lon))
    closures = []
    for c in scenario.closures:
        geom = None
        if c.geojson is not None:
            import json

            geom = json.loads(c.geojson.read_text(encoding="utf-8"))
        elif c.polygon is not None:
            ring = [[lon, lat] for lat, lon in c.polygon]
            geom = {"type": "Polygon", "coordinates": [[*ring, ring[0]]]}
        closures.append(
            {"label": c.label, "start_h": c.start_h, "end_h": c.end_h, "geometry": geom}
        )
    return World(
        units=tuple(units),
        hospitals=tuple(hospitals),
        stations=stations,
        segments=segments,
        areas=areas,
        node_coords=node_coords,
        bbox=bbox,  # type: ignore[arg-type]
        closures=tuple(closures),
    )


def apply_closures(scenario: Scenario, net: Any) -> list[int]:
    """Apply a scenario's closures to a network; return the closure ids (for ``net.reopen``)."""
    import json

    ids: list[int] = []
    for c in scenario.closures:
        kw: dict[str, Any] = {
            "vehicles": c.vehicles,
            "start_h": c.start_h,
            "end_h": c.end_h,
            "label": c.label,
        }
        if c.geojson is not None:
            doc = json.loads(c.geojson.read_text(encoding="utf-8"))
            if doc.get("type") == "FeatureCollection":
                kw.pop("label")  # feature properties may carry their own labels
                ids.extend(net.close_geojson(str(c.geojson), **kw))
            else:
                geom = doc.get("geometry", doc) if doc.get("type") == "Feature" else doc
                ids.append(net.close_polygon(geom, **kw))
        elif c.polygon is not None:
            ring = [[lon, lat] for lat, lon in c.polygon]
            ids.append(
                net.close_polygon({"type": "Polygon", "coordinates": [[*ring, ring[0]]]}, **kw)
            )
        elif c.way_ids is not None:
            ids.append(net.close_ways(list(c.way_ids), **kw))
    return ids


def load_scenario_network(scenario: Scenario) -> Any:
    """Load the scenario's map with :func:`dispatch.load_network`."""
    from dispatch.roads.network import load_network

    return load_network(scenario.map)


def run_scenario(
    scenario: Scenario,
    *,
    net: Any = None,
    replication: int = 0,
    policies: Sequence[str] | None = None,
    monitor: bool = False,
    progress: Callable[[int], None] | None = None,
) -> list[SimResult]:
    """Run one replication of a scenario under one or several policies (common random numbers).

    The calls are generated once (seed, replication) and every policy simulates the same calls with
    the same service times, so their differences are paired.

    Parameters
    ----------
    scenario : Scenario
    net : Network, optional
        A loaded network (its closures are left as they were on return); default: load the map.
    replication : int
        Replication number (its random streams are independent of the others').
    policies : sequence of str, optional
        Default: the scenario's policy.
    monitor : bool
        Keep every event record.
    progress : callable, optional
        Progress callback (calls arrived), see :meth:`Simulation.run`.
    """
    from dispatch.sim.demand import generate_calls

    if net is None:
        net = load_scenario_network(scenario)
    policies = tuple(policies) if policies else (scenario.policy,)
    for p in policies:
        if p not in POLICIES:
            raise SimulationError(f"policy={p!r} is not one of {', '.join(POLICIES)}")
    world = resolve_world(scenario, net)
    calls = generate_calls(
        scenario, segments=world.segments, areas=world.areas, replication=replication
    )
    closure_ids = apply_closures(scenario, net)
    try:
        out = []
        for p in policies:
            sim = Simulation(
                net, scenario, calls, world.units, world.hospitals, policy=p,
                replication=replication, monitor=monitor, node_coords=world.node_coords,
            )  # fmt: skip
            out.append(sim.run(progress=progress))
        return out
    finally:
        for cid in closure_ids:
            net.reopen(cid)
