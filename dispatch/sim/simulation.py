"""Discrete-event simulation of 114/115 dispatch over the road network: one run of one policy.

:class:`Simulation` wires the parts of the simulator, each in its own module:

- :mod:`dispatch.sim.events`: the clock and the event heap, events ordered by
  ``(time_s, priority, sequence)`` (unit transitions before call arrivals at equal times);
- :mod:`dispatch.sim.units`: the unit state machine, a table of allowed
  ``(status, transition) -> status``;
- :mod:`dispatch.sim.policies`: the dispatch policies behind one protocol (``fastest``,
  ``nearest_straight_line``, ``nearest_node``, ``optimal_batch``, run cards);
- :mod:`dispatch.sim.moveup`: what an idle unit does after each dispatch and each unit freed
  (``none``: it returns to its home station);
- :mod:`dispatch.sim.travel`: the network protocol, travel tables and unit ETAs;
- :mod:`dispatch.sim.records`: the waiting queue, per-call records, the conservation check and the
  result;
- :mod:`dispatch.sim.runner`: from a scenario to runs (stations, units, closures, policies).

Without run cards each call gets one unit, of a class its incident type accepts. With run cards
(``run_cards`` in the scenario, :mod:`dispatch.decide.runcards`) each call gets its type's whole unit
mix (:class:`dispatch.sim.policies.RunCardDispatch`). Every unit sent lives its own lifecycle; each
stays on scene the call's on-scene time from its own arrival, and only the first ambulance sent
carries the patient, to the hospital chosen by the live rule
(:func:`dispatch.decide.hospitals.choose_hospital`). Response time is call to *first* arrival; *full
complement* is call to the last mandatory unit's arrival.

Calls that find no unit wait in a priority queue (priority level, then call time) and are served when
a unit frees up. At the end of every run a conservation check asserts that every generated call is
served, waiting or still in call processing (:meth:`dispatch.sim.records.CallRecords.check_conservation`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from dispatch.model import Hospital
from dispatch.sim.demand import Calls
from dispatch.sim.events import (
    ARRIVE_HOSPITAL,
    ARRIVE_POST,
    ARRIVE_SCENE,
    ARRIVE_STATION,
    CALL,
    DISPATCH,
    EVENT_NAMES,
    HANDOVER_DONE,
    LEAVE_SCENE,
    P_CALL,
    P_UNIT,
    RELOCATE,
    EventQueue,
)
from dispatch.sim.moveup import MoveUpPolicy, make_move_up
from dispatch.sim.policies import make_policy
from dispatch.sim.records import CallRecords, SimResult, WaitingCalls
from dispatch.sim.scenario import Scenario
from dispatch.sim.travel import Choice, RouteLike, Timing, TravelOracle, TravelTables, UnitETALike
from dispatch.sim.units import ARRIVE_HOSPITAL as T_ARRIVE_HOSPITAL
from dispatch.sim.units import ARRIVE_POST as T_ARRIVE_POST
from dispatch.sim.units import ARRIVE_SCENE as T_ARRIVE_SCENE
from dispatch.sim.units import ARRIVE_STATION as T_ARRIVE_STATION
from dispatch.sim.units import (
    AVAILABLE,
    BUSY,
    CLEAR_AT_POST,
    DISPATCHABLE,
    HEAD_TO_POST,
    RELOCATING,
    RETURNING,
    TRANSPORT,
    SimulationError,
    SimUnit,
    UnitState,
    clip_span,
)
from dispatch.sim.units import DISPATCH as T_DISPATCH
from dispatch.sim.units import RELOCATE as T_RELOCATE

__all__ = [
    "RouteLike",
    "SimResult",
    "SimUnit",
    "Simulation",
    "SimulationError",
    "TravelOracle",
    "UnitETALike",
]


class Simulation:
    """One run of a scenario under one dispatch policy.

    Parameters
    ----------
    net : TravelOracle
        The road network (:class:`dispatch.roads.network.Network`, closures already applied) or a
        test double.
    scenario : Scenario
        Incident types, priorities, horizon, warm-up, processing delay, run cards.
    calls : Calls
        The calls to simulate (:func:`dispatch.sim.demand.generate_calls`).
    units : sequence of SimUnit
        The fleet at its stations.
    hospitals : sequence of Hospital
        Receiving hospitals for 115 transports.
    policy : str
        One of :data:`dispatch.sim.policies.POLICY_CLASSES`.
    replication, seed : int
        Recorded in the result.
    monitor : bool
        Keep every event as a ``(time_s, event, unit, call)`` record in ``result.events``.
    node_coords : (lat, lon) arrays, optional
        Node coordinates of the network (needed by ``nearest_node``).
    tables : bool
        Precompute travel-time tables (posts, calls, hospitals) per routing regime with
        ``net.travel_times`` (default). False asks the network one query at a time: the same
        numbers, slower; kept as the reference the tables are tested against.
    move_up : str or MoveUpPolicy, optional
        What idle units do after each dispatch and each unit freed (:mod:`dispatch.sim.moveup`);
        default ``none``: a freed unit returns to its home station.
    stations : mapping of str to (lat, lon), optional
        Every station a move-up policy may send units to (default: the units' home stations).

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
        hospitals: Sequence[Hospital] = (),
        *,
        policy: str = "fastest",
        replication: int = 0,
        seed: int | None = None,
        monitor: bool = False,
        node_coords: tuple[np.ndarray, np.ndarray] | None = None,
        tables: bool = True,
        move_up: str | MoveUpPolicy | None = None,
        stations: dict[str, tuple[float, float]] | None = None,
    ) -> None:
        if not units:
            raise SimulationError("units: the fleet is empty")
        ids = [u.id for u in units]
        if len(set(ids)) != len(ids):
            dup = next(i for i in ids if ids.count(i) > 1)
            raise SimulationError(f"units: duplicate unit id {dup!r}")
        types = scenario.incident_types
        self.net = net
        self.scenario = scenario
        self.calls = calls
        self.policy = policy
        self.dispatcher = make_policy(
            policy, types=types, cards=scenario.run_cards, fleet_classes={u.vehicle for u in units}
        )
        self.replication = replication
        self.seed = scenario.seed if seed is None else seed
        self.monitor = monitor
        self.horizon_s = scenario.horizon_h * 3600.0
        self.warmup_s = scenario.warmup_h * 3600.0
        self.clock = EventQueue()
        self.units = [UnitState(i, u) for i, u in enumerate(units)]
        self.hospitals = tuple(hospitals)
        self.type_names = [t.name for t in types]
        self.type_priority = [t.priority for t in types]
        self.weight = {p.level: p.weight for p in scenario.priorities}
        self.node_coords = node_coords
        self._type_hospitals = _hospitals_by_type(types, self.hospitals)
        # move-up: the stations idle units may be posted at (the home stations only for `none`)
        # the given policy, else the scenario's [move_up] policy (default none)
        self.move_up = make_move_up(move_up if move_up is not None else scenario.move_up.policy)
        self._posts = self._post_table(stations if self.move_up.name != "none" else None)
        self.tables = (
            TravelTables(net, calls, self._posts, self.hospitals, self.dispatcher.type_vehicles)
            if tables
            else None
        )
        self.timing = Timing(
            net, self.clock, calls, self.units, self.tables, returning=scenario.returning
        )
        self.waiting = WaitingCalls(calls.time_s)
        self.records = CallRecords(len(calls))
        self.events: list[tuple[float, str, str, int]] = []
        self._moved: list[UnitState] = []  # units dispatched or freed at this event (move-up)
        self._ran = False

    def _post_table(
        self, stations: dict[str, tuple[float, float]] | None
    ) -> dict[str, list[tuple[float, float]]]:
        """Per class, the posts (home stations in unit order, then the other stations)."""
        posts: dict[str, list[tuple[float, float]]] = {}
        for u in self.units:
            lst = posts.setdefault(u.vehicle, [])
            if u.home not in lst:
                lst.append(u.home)
            u.home_idx = u.post_idx = lst.index(u.home)
        self.post_names: dict[str, list[str]] = {}
        for v, lst in posts.items():
            names = [
                next(u.station for u in self.units if u.vehicle == v and u.home == p) for p in lst
            ]
            for name, p in (stations or {}).items():
                if p not in lst:
                    lst.append(p)
                    names.append(name)
            self.post_names[v] = names
        return posts

    # -- what policies see (dispatch.sim.policies.DispatchContext) ------------------------------

    @property
    def now_s(self) -> float:
        """The simulation clock, seconds since the scenario start."""
        return self.clock.now_s

    @property
    def n_fastest_units(self) -> int:
        """Calls to ``net.fastest_units`` so far (for the benchmark profile)."""
        return self.timing.n_fastest_units

    @property
    def n_routes(self) -> int:
        """Calls to ``net.route`` so far."""
        return self.timing.n_routes

    def posts(self, vehicle: str) -> list[tuple[float, float]]:
        """The posts of a class (home stations first; with move-up every station), by index."""
        return self._posts[vehicle]

    def candidates(self, vehicles: frozenset[str]) -> list[UnitState]:
        """Dispatchable units of the given classes."""
        return [u for u in self.units if u.status in DISPATCHABLE and u.vehicle in vehicles]

    def reachable_nodes(self, vehicle: str) -> np.ndarray:
        """Nodes a class can use (its largest strongly connected part; every node of a network
        without arcs, such as a test double)."""
        from dispatch.sim.demand import _reachable_arcs

        net: Any = self.net
        if hasattr(net, "arc_tail"):
            ok = _reachable_arcs(net, vehicle)
            return np.unique(np.concatenate([net.arc_tail[ok], net.arc_head[ok]]))
        assert self.node_coords is not None
        return np.arange(len(self.node_coords[0]))

    def free_classes(self) -> set[str]:
        """Classes of the dispatchable units."""
        return {u.vehicle for u in self.units if u.status in DISPATCHABLE}

    def position(self, u: UnitState) -> tuple[float, float]:
        """Where a unit is now."""
        return self.timing.position(u)

    def dispatch(self, call: int, choice: Choice, *, mandatory: bool = True) -> None:
        """Send the chosen unit to a call now (``choice`` from a policy: unit, ETA, ...)."""
        u, eta_s = choice[0], choice[1]
        now = self.clock.now_s
        # a unit on the road has no turnout: the delay to its next route vertex is driving
        turnout_s = u.turnout_s if u.status == AVAILABLE else 0.0
        drive_s = eta_s - turnout_s
        if u.status in (RETURNING, RELOCATING):
            self._end_drive_to_post(u, now)
        u.pos = self.timing.position(u)
        u.apply(T_DISPATCH)
        u.epoch += 1
        u.call = call
        u.dispatches += 1 if self.calls.time_s[call] >= self.warmup_s else 0
        u.busy_since_s = now
        u.route_coords = ()
        self.records.record_dispatch(
            call,
            u.index,
            now,
            turnout_s,
            drive_s,
            mandatory=mandatory,
            transports=self.scenario.run_cards is None or u.vehicle == "ambulance",
        )
        self.clock.push(now + eta_s, P_UNIT, ARRIVE_SCENE, u.index, u.epoch)
        self._log(DISPATCH, u, call)
        self._moved.append(u)

    # -- unit transitions --------------------------------------------------------------------------

    def _log(self, event: int, unit: UnitState | None, call: int) -> None:
        if self.monitor:
            self.events.append(
                (self.clock.now_s, EVENT_NAMES[event], unit.id if unit else "", call)
            )

    def _end_drive_to_post(self, u: UnitState, now: float) -> None:
        """Account for a drive to the post that ends now (arrived, or dispatched on the way)."""
        span = clip_span(u.returning_since_s, now, self.warmup_s, self.horizon_s)
        if u.status == RETURNING:
            u.returning_s += span
        else:
            u.relocating_s += span
            if self.warmup_s <= u.route_start_s:
                self.timing.ensure_route(u)
                u.relocation_m += u.driven_m(now)

    def _free(self, u: UnitState) -> None:
        """The unit is done with its call where it is: it heads to its post, dispatchable again."""
        now = self.clock.now_s
        u.busy_s += clip_span(u.busy_since_s, now, self.warmup_s, self.horizon_s)
        u.call = -1
        hour = self.clock.hour
        u.route_coords = ()
        if self.tables is not None:
            if u.ret_hospital >= 0:
                eta = self.tables.hospital_to_home(u.vehicle, hour, u.ret_hospital, u.post_idx)
            else:
                eta = self.tables.call_to_home(u.vehicle, hour, u.ret_call, u.post_idx)
        else:
            self.timing.n_routes += 1
            route = self.net.route(u.pos, u.post, vehicle=u.vehicle, hour=hour)
            eta = float(route.eta_s)
            u.route_coords = route.coords
            u.route_times = route.times_s
        if not math.isfinite(eta) or eta <= 0.5:
            u.apply(CLEAR_AT_POST)
            u.pos = u.post
            u.route_coords = ()
        else:
            u.apply(HEAD_TO_POST)
            u.ret_origin = u.pos
            u.ret_hour = hour
            u.ret_eta_s = eta
            u.route_start_s = now
            u.returning_since_s = now
            self.clock.push(now + eta, P_UNIT, ARRIVE_STATION, u.index, u.epoch)
        self._moved.append(u)
        self.dispatcher.match(self)

    def relocate(self, u: UnitState, post_idx: int) -> bool:
        """Send an idle unit (available or driving to its post) to the post ``post_idx`` of its
        class, a routed drive on which it stays dispatchable. False if no road leads there."""
        if post_idx == u.post_idx:
            return False
        now = self.clock.now_s
        hour = self.clock.hour
        target = self._posts[u.vehicle][post_idx]
        start = self.timing.position(u)
        route = self.net.route(start, target, vehicle=u.vehicle, hour=hour)
        self.timing.n_routes += 1
        eta = float(route.eta_s)
        if not route.coords or not math.isfinite(eta):
            return False
        if u.status in (RETURNING, RELOCATING):
            self._end_drive_to_post(u, now)
        u.apply(T_RELOCATE)
        u.epoch += 1
        u.post, u.post_idx = target, post_idx
        u.post_station = self.post_names[u.vehicle][post_idx]
        u.pos = start
        u.ret_origin, u.ret_call, u.ret_hospital = start, -1, -1
        u.ret_hour, u.ret_eta_s = hour, eta
        u.route_coords, u.route_times = route.coords, route.times_s
        u.route_start_s = u.returning_since_s = now
        if now >= self.warmup_s:
            u.relocations += 1
        self.clock.push(now + eta, P_UNIT, ARRIVE_POST, u.index, u.epoch)
        self._log(RELOCATE, u, -1)
        return True

    def _after_decisions(self) -> None:
        """The move-up hook, after the dispatches and the units freed at this event."""
        moved, self._moved = self._moved, []
        if moved and self.move_up.name != "none":
            for unit, post_idx in self.move_up.moves(self, moved):
                self.relocate(unit, post_idx)
            self._moved.clear()

    def _choose_hospital(self, eta_s: np.ndarray, type_index: int) -> int:
        """Hospital by :func:`dispatch.decide.hospitals.choose_hospital`; -1 if none is reachable."""
        from dispatch.decide.hospitals import NoHospitalError, choose_hospital

        cap = self.scenario.incident_types[type_index].hospital_capability or "general"
        try:
            j, _fallback = choose_hospital(eta_s, list(self.hospitals), cap)
        except NoHospitalError:
            return -1
        return int(j) if math.isfinite(float(eta_s[j])) else -1

    def _handle(self, kind: int, a: int, b: int) -> None:
        clock = self.clock
        if kind == CALL:
            self.records.arrived[a] = True
            self._log(kind, None, a)
            self.dispatcher.enqueue(self, a)
            self.dispatcher.match(self)
            return
        u = self.units[a]
        if b != u.epoch:  # a stale event of a unit redispatched meanwhile
            return
        call = u.call
        self._log(kind, u, call)
        if kind == ARRIVE_SCENE:
            u.apply(T_ARRIVE_SCENE)
            u.pos = (float(self.calls.lat[call]), float(self.calls.lon[call]))
            clock.push(
                clock.now_s + float(self.calls.on_scene_s[call]), P_UNIT, LEAVE_SCENE, a, u.epoch
            )
        elif kind == LEAVE_SCENE:
            ti = int(self.calls.type_idx[call])
            if (
                self.calls.transport[call]
                and self._type_hospitals[ti]
                and self.records.transporter[call] == u.index
            ):
                # every hospital's ETA, then the live-dispatch rule (dispatch.decide.hospitals):
                # the fastest that can treat the patient, else the fastest general one
                if self.tables is not None:
                    tt = self.tables.call_to_hospitals(u.vehicle, clock.hour, call)
                else:
                    pts = np.array([(h.lat, h.lon) for h in self.hospitals])
                    tt = self.net.travel_times(u.pos, pts, vehicle=u.vehicle, hour=clock.hour)[0]
                j = self._choose_hospital(np.asarray(tt, dtype=float), ti)
                if j >= 0:
                    u.apply(TRANSPORT)
                    self.records.hospital_of_call[call] = j
                    u.pos = (self.hospitals[j].lat, self.hospitals[j].lon)
                    clock.push(clock.now_s + float(tt[j]), P_UNIT, ARRIVE_HOSPITAL, a, u.epoch)
                    return
            u.ret_call, u.ret_hospital = call, -1
            self._free(u)
        elif kind == ARRIVE_HOSPITAL:
            u.apply(T_ARRIVE_HOSPITAL)
            clock.push(
                clock.now_s + float(self.calls.handover_s[call]), P_UNIT, HANDOVER_DONE, a, u.epoch
            )
        elif kind == HANDOVER_DONE:
            u.ret_call, u.ret_hospital = -1, int(self.records.hospital_of_call[call])
            self._free(u)
        elif kind in (ARRIVE_STATION, ARRIVE_POST):
            self._end_drive_to_post(u, clock.now_s)
            u.apply(T_ARRIVE_STATION if kind == ARRIVE_STATION else T_ARRIVE_POST)
            u.pos = u.post
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
        clock = self.clock
        for i in range(len(times)):
            clock.push(float(times[i]) + delay, P_CALL, CALL, i)
        step = max(1, len(times) // 100)
        seen = 0
        moving = self.move_up.name != "none"
        for _, _, _, kind, a, b in clock.drain(horizon_s=self.horizon_s):
            self._handle(kind, a, b)
            if moving:
                self._after_decisions()
            elif self._moved:
                self._moved.clear()
            if kind == CALL and progress is not None:
                seen += 1
                if seen % step == 0:
                    progress(step)
        clock.now_s = self.horizon_s
        if progress is not None and seen % step:
            progress(seen % step)
        return self._result()

    def _result(self) -> SimResult:
        c = self.calls
        sc = self.scenario
        types = sc.incident_types
        n = len(c)
        rec = self.records
        # close the open intervals at the horizon
        for u in self.units:
            if u.status in BUSY:
                u.busy_s += clip_span(u.busy_since_s, self.horizon_s, self.warmup_s, self.horizon_s)
            elif u.status in (RETURNING, RELOCATING):
                self._end_drive_to_post(u, self.horizon_s)
        rec.check_conservation(self.waiting, run_cards=sc.run_cards is not None)
        complete = rec.complete()
        type_names = np.array(self.type_names)
        services = np.array([t.service for t in types])
        prios = np.array(self.type_priority, dtype=np.int64)
        targets = {p.level: p.target_s for p in sc.priorities}
        prio = prios[c.type_idx]
        ids = np.array([u.id for u in self.units] + [""])
        vehicles = np.array([u.vehicle for u in self.units] + [""])
        uidx = np.where(rec.unit_of_call >= 0, rec.unit_of_call, len(self.units))
        hnames = np.array([h.name for h in self.hospitals] + [""])
        hidx = np.where(rec.hospital_of_call >= 0, rec.hospital_of_call, len(self.hospitals))
        arrival = rec.dispatch_s + rec.turnout_s + rec.drive_s
        sent_ids = rec.sent_ids([u.id for u in self.units])
        full = np.where(complete, rec.full_arrival_s - c.time_s, np.nan)
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
            "served": rec.served.copy(),
            "unit": ids[uidx],
            "vehicle": vehicles[uidx],
            "dispatch_s": rec.dispatch_s,
            "wait_s": rec.dispatch_s - c.time_s - sc.processing_s,
            "turnout_s": rec.turnout_s,
            "drive_s": rec.drive_s,
            "response_s": arrival - c.time_s,
            "target_s": np.array([targets[int(p)] for p in prio]) if n else np.zeros(0),
            "transport": c.transport & (hidx < len(self.hospitals)),
            "hospital": hnames[hidx],
            "on_scene_s": c.on_scene_s,
            "n_units": np.array([len(s) for s in rec.sent], dtype=np.int64),
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
        if self.move_up.name != "none":
            units["relocations"] = np.array([u.relocations for u in self.units], dtype=np.int64)
            units["relocation_km"] = np.array([u.relocation_m / 1000.0 for u in self.units])
            units["relocating_s"] = np.array([u.relocating_s for u in self.units])
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
            run_cards=sc.run_cards.source if sc.run_cards is not None else None,
            move_up=self.move_up.name if self.move_up.name != "none" else None,
        )


def _hospitals_by_type(types: Sequence[Any], hospitals: Sequence[Hospital]) -> list[list[int]]:
    """Per incident type, the hospitals it may transport to (by capability; [] if no transport)."""
    out: list[list[int]] = []
    for t in types:
        if t.transport_probability <= 0:
            out.append([])
            continue
        ok = [
            i
            for i, h in enumerate(hospitals)
            if t.hospital_capability is None or h.can_treat(t.hospital_capability)
        ]
        if not ok:
            raise SimulationError(
                f"incident type {t.name!r} transports to a hospital with capability "
                f"{t.hospital_capability!r} but no hospital has it"
            )
        out.append(ok)
    return out
