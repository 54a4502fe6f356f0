"""Move-up: what idle units do after each dispatch and each unit freed.

After every event at which units were dispatched or freed, the simulation asks its
:class:`MoveUpPolicy` for relocations: ``(unit, post)`` pairs sending an idle unit (available at its
post, or driving to it) to another station of its class. A relocation is a real routed drive on
which the unit stays dispatchable (:meth:`dispatch.sim.simulation.Simulation.relocate`); it is
counted and its kilometres reported.

``none`` (:class:`NoMoveUp`)
    No relocation: a freed unit returns to its home station (what the simulator always did).
``fill_gaps`` (:class:`FillGaps`)
    Keep every station that has units of a class in the plan (its home allocation) from standing
    empty of that class: when a dispatch leaves such a station with no idle unit of the class posted
    there, the idle unit of the class waiting at a station that keeps another one, and that is the
    fewest seconds away, moves there; a freed unit goes to the nearest (by road, from where it is)
    station of its class left empty, if there is one, else to its post. A simple, myopic rule (a
    baseline for coverage-based policies such as DMEXCLP).
``dmexclp`` (:class:`DMEXCLPMoveUp`)
    A freed unit goes to the station where it adds the most expected coverage given the other idle
    units of its class (Jagtenberg, Bhulai & van der Mei 2015), by
    :class:`dispatch.plan.moveup.DMEXCLP` over a road travel-time matrix from the posts to the
    scenario's demand, computed once per class and speed band. Settings: the scenario's
    ``[move_up]`` section (busy fraction, target, allowed posts, demand cell).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Protocol

import numpy as np

from dispatch.sim.units import (
    AVAILABLE,
    BUSY,
    DISPATCHABLE,
    SimulationError,
    UnitState,
)

__all__ = [
    "DEFAULT_BUSY_FRACTION",
    "MOVE_UP_POLICIES",
    "DMEXCLPMoveUp",
    "FillGaps",
    "MoveUpPolicy",
    "NoMoveUp",
    "make_move_up",
]


def _each_once(changed: Sequence[UnitState]) -> list[UnitState]:
    """The changed units, each once, in its state after the event (first-change order)."""
    return list({u.index: u for u in changed}.values())


class MoveUpPolicy(Protocol):
    """Decides relocations of idle units (see the module docstring)."""

    @property
    def name(self) -> str:
        """Name in scenarios and on the command line."""

    def moves(self, sim: Any, changed: Sequence[UnitState]) -> list[tuple[UnitState, int]]:
        """Relocations to order now: ``(unit, post index among its class's posts)``.

        ``changed``: the units dispatched or freed at this event, in order.
        """


class NoMoveUp:
    """No relocation: freed units return to their home station."""

    name: ClassVar[str] = "none"

    def moves(self, sim: Any, changed: Sequence[UnitState]) -> list[tuple[UnitState, int]]:
        return []


class FillGaps:
    """Keep each planned station of a class from standing empty (see the module docstring).

    Travel times between stations and from a freed unit to the stations come from
    ``net.travel_times`` at the simulation clock (the speed band and closures in force).
    """

    name: ClassVar[str] = "fill_gaps"

    def moves(self, sim: Any, changed: Sequence[UnitState]) -> list[tuple[UnitState, int]]:
        out: list[tuple[UnitState, int]] = []
        for u in _each_once(changed):
            if u.status in BUSY:
                out.extend(self._refill(sim, u, out))
            elif u.status in DISPATCHABLE:
                q = self._nearest_gap(sim, u, out)
                if q is not None:
                    out.append((u, q))
        return out

    @staticmethod
    def _plan(sim: Any, vehicle: str) -> np.ndarray:
        """Units of a class each post has in the plan (their home stations)."""
        n = len(sim.post_names[vehicle])
        plan = np.zeros(n, dtype=np.int64)
        for u in sim.units:
            if u.vehicle == vehicle:
                plan[u.home_idx] += 1
        return plan

    @staticmethod
    def _posted(sim: Any, vehicle: str, moves: Sequence[tuple[UnitState, int]] = ()) -> np.ndarray:
        """Idle units of a class posted at each post (after the moves already ordered)."""
        n = len(sim.post_names[vehicle])
        posted = np.zeros(n, dtype=np.int64)
        moved = {m[0].index: m[1] for m in moves}
        for u in sim.units:
            if u.vehicle == vehicle and u.status in DISPATCHABLE:
                posted[moved.get(u.index, u.post_idx)] += 1
        return posted

    def _refill(
        self, sim: Any, u: UnitState, ordered: Sequence[tuple[UnitState, int]]
    ) -> list[tuple[UnitState, int]]:
        """After ``u`` was dispatched: move an idle unit to its post if the post is now empty."""
        v, p = u.vehicle, u.post_idx
        plan, posted = self._plan(sim, v), self._posted(sim, v, ordered)
        busy = {m[0].index for m in ordered}
        if plan[p] == 0 or posted[p] > 0:
            return []
        donors = [
            w
            for w in sim.units
            if w.vehicle == v
            and w.status == AVAILABLE
            and w.index not in busy
            and posted[w.post_idx] >= 2
        ]
        if not donors:
            return []
        posts = sim.posts(v)
        tt = sim.net.travel_times(
            np.array([posts[w.post_idx] for w in donors]),
            np.array([posts[p]]),
            vehicle=v,
            hour=sim.clock.hour,
        )[:, 0]
        best = min(range(len(donors)), key=lambda i: (float(tt[i]), donors[i].id))
        if not math.isfinite(float(tt[best])):
            return []
        return [(donors[best], p)]

    def _nearest_gap(
        self, sim: Any, u: UnitState, ordered: Sequence[tuple[UnitState, int]]
    ) -> int | None:
        """After ``u`` was freed: the nearest planned post of its class with no idle unit."""
        v = u.vehicle
        plan = self._plan(sim, v)
        posted = self._posted(sim, v, ordered)
        posted[u.post_idx] -= 1  # without the unit itself
        gaps = np.flatnonzero((plan > 0) & (posted <= 0))
        if len(gaps) == 0 or (len(gaps) == 1 and gaps[0] == u.post_idx):
            return None
        posts = sim.posts(v)
        tt = np.asarray(
            sim.net.travel_times(
                np.array([sim.position(u)]), np.array([posts[q] for q in gaps]), vehicle=v,
                hour=sim.clock.hour,
            )
        )[0]  # fmt: skip
        best = min(range(len(gaps)), key=lambda i: (float(tt[i]), int(gaps[i])))
        if not math.isfinite(float(tt[best])) or int(gaps[best]) == u.post_idx:
            return None
        return int(gaps[best])


#: Busy fraction ``q`` when neither the policy nor the scenario's ``[move_up]`` gives one (an
#: ASSUMPTION: about a third of units busy, a usual planning value; the simulated utilisation of the
#: scenario, ``units.utilisation`` in the result, is the better estimate to put in the scenario).
DEFAULT_BUSY_FRACTION = 0.3
#: Demand grid cell (m) when the scenario's ``[move_up]`` gives none.
DEFAULT_CELL_M = 500.0
#: Days of calls sampled from the scenario's call model to weight the demand cells.
DEFAULT_DEMAND_DAYS = 60

# per process: (net, scenario, vehicle, cell_m, days) -> Demand, so that the policies of one
# replication and the replications run in one process share the sampled demand
_DEMAND_CACHE: dict[tuple[int, str, int, str, float, int], tuple[Any, Any]] = {}


class DMEXCLPMoveUp:
    """DMEXCLP (Jagtenberg, Bhulai & van der Mei 2015): a freed unit goes to the station where it
    adds the most expected coverage, given where the other idle units of its class wait.

    The rule itself is :class:`dispatch.plan.moveup.DMEXCLP`; this class feeds it from the
    simulation. Per vehicle class and speed band (the first time the band is met), a
    ``(posts, demand points)`` matrix of seconds is computed once with the routing core
    (:func:`dispatch.plan.demand.travel_time_matrix`, ``net.travel_times``) plus the class's mean
    turnout, so a point is covered when turnout plus drive is within ``target_s``. Demand: the
    scenario's call model binned into ``cell_m`` cells (:func:`dispatch.plan.demand.scenario_demand`,
    only the incident types the class serves), unless ``demand`` is given.

    When a unit is freed it is sent to ``DMEXCLP.choose(idle_stations=posts of the other
    dispatchable units of its class, travel_s=its drive to each post)``; a post not in the allowed
    ``posts`` is never chosen. Only the freed unit moves (the published rule); dispatches move
    nobody.

    Parameters
    ----------
    busy_fraction : float, optional
        ``q``; default the scenario's ``[move_up] busy_fraction``, else
        :data:`DEFAULT_BUSY_FRACTION`.
    target_s : float, optional
        Coverage target; default ``[move_up] target_s``, else the target of the most urgent
        priority level.
    demand : dispatch.plan.demand.Demand, optional
        Demand points and weights (default: from the scenario's call model).
    posts : sequence of str, optional
        Station names units may be posted at (default ``[move_up] posts``, else every station).
    cell_m : float, optional
        Demand grid cell; default ``[move_up] cell_m``, else :data:`DEFAULT_CELL_M`.
    days : int
        Days of calls sampled for the demand weights.
    """

    name: ClassVar[str] = "dmexclp"

    def __init__(
        self,
        *,
        busy_fraction: float | None = None,
        target_s: float | None = None,
        demand: Any = None,
        posts: Sequence[str] | None = None,
        cell_m: float | None = None,
        days: int = DEFAULT_DEMAND_DAYS,
    ) -> None:
        self.busy_fraction = busy_fraction
        self.target_s = target_s
        self.demand = demand
        self.posts = tuple(posts) if posts is not None else None
        self.cell_m = cell_m
        self.days = days
        self._models: dict[tuple[str, int], Any] = {}
        self._allowed: dict[str, np.ndarray] = {}

    # -- settings ---------------------------------------------------------------------------------

    def _settings(self, sim: Any) -> tuple[float, float, tuple[str, ...] | None, float]:
        mu = getattr(sim.scenario, "move_up", None)
        q = self.busy_fraction
        if q is None:
            q = getattr(mu, "busy_fraction", None)
        target = self.target_s if self.target_s is not None else getattr(mu, "target_s", None)
        if target is None:
            target = min(sim.scenario.priorities, key=lambda p: p.level).target_s
        posts = self.posts if self.posts is not None else getattr(mu, "posts", None)
        cell = self.cell_m if self.cell_m is not None else getattr(mu, "cell_m", None)
        return (
            DEFAULT_BUSY_FRACTION if q is None else float(q),
            float(target),
            posts,
            DEFAULT_CELL_M if cell is None else float(cell),
        )

    def _demand(self, sim: Any, vehicle: str, cell_m: float) -> Any:
        if self.demand is not None:
            return self.demand
        import dataclasses

        from dispatch.plan.demand import scenario_demand

        sc = sim.scenario
        key = (id(sim.net), sc.name, sc.seed, vehicle, cell_m, self.days)
        hit = _DEMAND_CACHE.get(key)
        if hit is not None and hit[0] is sim.net:
            return hit[1]
        types = tuple(t for t in sc.incident_types if vehicle in t.vehicles)
        if not types:
            raise SimulationError(f"move_up='dmexclp': no incident type uses {vehicle!r} units")
        sub = dataclasses.replace(sc, incident_types=types, run_cards=None)
        demand = scenario_demand(sub, sim.net, cell_m=cell_m, days=self.days)
        _DEMAND_CACHE.clear()  # one entry: a run uses one network and scenario
        _DEMAND_CACHE[key] = (sim.net, demand)
        return demand

    def model(self, sim: Any, vehicle: str) -> Any:
        """The :class:`dispatch.plan.moveup.DMEXCLP` of a class in the current speed band."""
        from dispatch.plan.moveup import DMEXCLP

        net = sim.net
        hour = sim.clock.hour
        settings = getattr(net, "settings", None)
        band = int(settings.band_index(hour)) if settings is not None else 0
        key = (vehicle, band)
        m = self._models.get(key)
        if m is not None:
            return m
        q, target, posts, cell_m = self._settings(sim)
        demand = self._demand(sim, vehicle, cell_m)
        stations = np.array(sim.posts(vehicle), dtype=float)
        if settings is not None:  # a road network: snapped, unreachable points inf
            from dispatch.plan.demand import travel_time_matrix

            tt = travel_time_matrix(net, stations, demand, vehicle=vehicle, hour=hour,
                                    origin_names=sim.post_names[vehicle])  # fmt: skip
        else:  # a test double without snapping
            tt = np.asarray(net.travel_times(stations, demand.points, vehicle=vehicle, hour=hour))
        turnout = float(np.mean([u.turnout_s for u in sim.units if u.vehicle == vehicle]))
        try:
            m = DMEXCLP(tt + turnout, demand.weight, target_s=target, busy_fraction=q)
        except ValueError as exc:
            raise SimulationError(f"move_up='dmexclp': {exc}") from None
        self._models[key] = m
        if vehicle not in self._allowed:
            names = sim.post_names[vehicle]
            if posts is None:
                self._allowed[vehicle] = np.ones(len(names), dtype=bool)
            else:
                self._allowed[vehicle] = np.array([n in posts for n in names])
        return m

    # -- the hook ---------------------------------------------------------------------------------

    def moves(self, sim: Any, changed: Sequence[UnitState]) -> list[tuple[UnitState, int]]:
        out: list[tuple[UnitState, int]] = []
        for u in _each_once(changed):
            if u.status not in DISPATCHABLE:
                continue  # dispatched: DMEXCLP moves only freed units
            v = u.vehicle
            model = self.model(sim, v)
            moved = {m[0].index: m[1] for m in out}
            others = [
                moved.get(w.index, w.post_idx)
                for w in sim.units
                if w.vehicle == v and w.status in DISPATCHABLE and w.index != u.index
            ]
            posts = sim.posts(v)
            travel = np.asarray(
                sim.net.travel_times(np.array([sim.position(u)]), np.array(posts), vehicle=v,
                                     hour=sim.clock.hour),
                dtype=float,
            )[0]  # fmt: skip
            travel = np.where(self._allowed[v], travel, np.inf)
            s = model.choose(idle_stations=others, travel_s=travel)
            if s != u.post_idx and math.isfinite(float(travel[s])):
                out.append((u, int(s)))
        return out


#: The move-up policies by name.
MOVE_UP_POLICIES: dict[str, Callable[[], MoveUpPolicy]] = {
    "none": NoMoveUp,
    "fill_gaps": FillGaps,
    "dmexclp": DMEXCLPMoveUp,
}


def make_move_up(policy: str | MoveUpPolicy | None) -> MoveUpPolicy:
    """A move-up policy from its name (None: ``none``) or an object following the protocol."""
    if policy is None:
        return NoMoveUp()
    if isinstance(policy, str):
        cls = MOVE_UP_POLICIES.get(policy)
        if cls is None:
            raise SimulationError(f"move_up={policy!r} is not one of {', '.join(MOVE_UP_POLICIES)}")
        return cls()
    return policy
