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
    "ComplianceMoveUp",
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


class _CoverageMoveUp:
    """What the coverage-based policies share: settings, demand and the ``(posts, demand)`` matrix.

    Per vehicle class and speed band (the first time the band is met), a ``(posts, demand points)``
    matrix of seconds is computed once with the routing core
    (:func:`dispatch.plan.demand.travel_time_matrix`, ``net.travel_times``) plus the class's mean
    turnout, so a point is covered when turnout plus drive is within ``target_s``. Demand: the
    scenario's call model binned into ``cell_m`` cells (:func:`dispatch.plan.demand.scenario_demand`,
    only the incident types the class serves), unless ``demand`` is given.
    """

    name: ClassVar[str]

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
        self._matrices: dict[tuple[str, int], np.ndarray] = {}
        self._allowed: dict[str, np.ndarray] = {}

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
            raise SimulationError(f"move_up={self.name!r}: no incident type uses {vehicle!r} units")
        sub = dataclasses.replace(sc, incident_types=types, run_cards=None)
        demand = scenario_demand(sub, sim.net, cell_m=cell_m, days=self.days)
        _DEMAND_CACHE.clear()  # one entry: a run uses one network and scenario
        _DEMAND_CACHE[key] = (sim.net, demand)
        return demand

    @staticmethod
    def _band(sim: Any) -> int:
        settings = getattr(sim.net, "settings", None)
        return int(settings.band_index(sim.clock.hour)) if settings is not None else 0

    def allowed(self, sim: Any, vehicle: str) -> np.ndarray:
        """Which posts of a class units may be posted at (``posts``; default every post)."""
        ok = self._allowed.get(vehicle)
        if ok is None:
            posts = self._settings(sim)[2]
            names = sim.post_names[vehicle]
            ok = np.ones(len(names), dtype=bool) if posts is None else np.isin(names, posts)
            self._allowed[vehicle] = ok
        return ok

    def matrix(self, sim: Any, vehicle: str) -> np.ndarray:
        """Turnout plus road seconds from each post of a class to each demand point, in the
        current speed band (computed once per class and band)."""
        key = (vehicle, self._band(sim))
        tt = self._matrices.get(key)
        if tt is not None:
            return tt
        net, hour = sim.net, sim.clock.hour
        demand = self._demand(sim, vehicle, self._settings(sim)[3])
        stations = np.array(sim.posts(vehicle), dtype=float)
        if getattr(net, "settings", None) is not None:  # a road network: snapped, unreachable inf
            from dispatch.plan.demand import travel_time_matrix

            tt = travel_time_matrix(net, stations, demand, vehicle=vehicle, hour=hour,
                                    origin_names=sim.post_names[vehicle])  # fmt: skip
        else:  # a test double without snapping
            tt = np.asarray(net.travel_times(stations, demand.points, vehicle=vehicle, hour=hour))
        turnout = float(np.mean([u.turnout_s for u in sim.units if u.vehicle == vehicle]))
        tt = np.asarray(tt, dtype=float) + turnout
        self._matrices[key] = tt
        return tt

    def weight(self, sim: Any, vehicle: str) -> np.ndarray:
        """The demand weights of a class."""
        return np.asarray(self._demand(sim, vehicle, self._settings(sim)[3]).weight, dtype=float)


class DMEXCLPMoveUp(_CoverageMoveUp):
    """DMEXCLP (Jagtenberg, Bhulai & van der Mei 2015): a freed unit goes to the station where it
    adds the most expected coverage, given where the other idle units of its class wait.

    The rule itself is :class:`dispatch.plan.moveup.DMEXCLP`; this class feeds it from the
    simulation, over the ``(posts, demand)`` matrix of turnout plus road seconds computed once per
    class and speed band (see :class:`_CoverageMoveUp`).

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

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self._models: dict[tuple[str, int], Any] = {}

    def model(self, sim: Any, vehicle: str) -> Any:
        """The :class:`dispatch.plan.moveup.DMEXCLP` of a class in the current speed band."""
        from dispatch.plan.moveup import DMEXCLP

        key = (vehicle, self._band(sim))
        m = self._models.get(key)
        if m is not None:
            return m
        q, target, _, _ = self._settings(sim)
        tt = self.matrix(sim, vehicle)
        try:
            m = DMEXCLP(tt, self.weight(sim, vehicle), target_s=target, busy_fraction=q)
        except ValueError as exc:
            raise SimulationError(f"move_up='dmexclp': {exc}") from None
        self._models[key] = m
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
            travel = np.where(self.allowed(sim, v), travel, np.inf)
            s = model.choose(idle_stations=others, travel_s=travel)
            if s != u.post_idx and math.isfinite(float(travel[s])):
                out.append((u, int(s)))
        return out


class ComplianceMoveUp(_CoverageMoveUp):
    """Compliance table (as in JEMSS.jl): after every dispatch and every unit freed, the idle
    units of the class are re-posted to match the table's row for their number.

    A compliance table of a class has one row per number ``n`` of idle (dispatchable) units,
    ``0..N`` (``N`` units of the class), with the number of units each post should then hold. At
    each event that dispatched or freed units of a class, the ``n`` dispatchable units of the class
    (waiting at a post, returning or relocating) are assigned to the row ``n`` slots at minimum
    total drive time from where they are (:func:`dispatch.plan.moveup.compliance_moves`, the
    Hungarian method; a unit's drive to the post it waits at or drives to counts 0, as in
    JEMSS), and each unit assigned another post relocates there. When the units already stand as
    the row says, nothing is computed.

    The table: ``tables[vehicle]`` (rows ``1..N`` over the allowed ``posts``, in their order) if
    given, else the scenario's ``[move_up.compliance_table]`` for that class (the same form),
    else solved by :func:`dispatch.plan.moveup.compliance_table` (an MEXCLP optimum for each ``n``
    with busy fraction ``q``, over the allowed posts) from the ``(posts, demand)`` matrix of
    turnout plus road seconds, once per class and speed band (see :class:`_CoverageMoveUp`; a
    given table holds in every band).

    Parameters
    ----------
    tables : mapping of str to rows, optional
        Per class, rows ``1..N`` of whole unit counts over the allowed posts (row ``n`` sums to
        ``n``).
    busy_fraction, target_s, demand, posts, cell_m, days
        As for :class:`DMEXCLPMoveUp` (``posts``: the table's columns and the only posts used).
    """

    name: ClassVar[str] = "compliance"

    def __init__(self, *, tables: dict[str, Any] | None = None, **kw: Any) -> None:
        super().__init__(**kw)
        self.tables = dict(tables) if tables is not None else None
        self._tables: dict[tuple[str, int], np.ndarray] = {}
        self._post_times: dict[tuple[str, int], np.ndarray] = {}

    def _given(self, sim: Any, vehicle: str) -> Any:
        if self.tables is not None and vehicle in self.tables:
            return self.tables[vehicle]
        mu = getattr(sim.scenario, "move_up", None)
        given = getattr(mu, "compliance_table", None) or {}
        return given.get(vehicle)

    def table(self, sim: Any, vehicle: str) -> np.ndarray:
        """``(N + 1, posts)`` unit counts of a class over all its posts, in the current band."""
        rows = self._given(sim, vehicle)
        key = (vehicle, -1 if rows is not None else self._band(sim))
        tab = self._tables.get(key)
        if tab is not None:
            return tab
        n_units = sum(1 for u in sim.units if u.vehicle == vehicle)
        ok = self.allowed(sim, vehicle)
        if rows is not None:  # columns in the order of the posts setting
            names = sim.post_names[vehicle]
            posts = self._settings(sim)[2] or ()
            cols = np.array([names.index(p) for p in posts if p in names], dtype=np.int64)
            if len(cols) != len(posts):
                missing = next(p for p in posts if p not in names)
                raise SimulationError(f"move_up='compliance': post {missing!r} is not a station")
            sub = self._check_given(sim, vehicle, rows, n_units, len(cols))
        else:
            cols = np.flatnonzero(ok)
            from dispatch.plan.moveup import compliance_table

            q, target, _, _ = self._settings(sim)
            try:
                sub = compliance_table(self.matrix(sim, vehicle)[cols], self.weight(sim, vehicle),
                                       target_s=target, n_units=n_units, busy_fraction=q)  # fmt: skip
            except ValueError as exc:
                raise SimulationError(f"move_up='compliance': {exc}") from None
        tab = np.zeros((n_units + 1, len(ok)), dtype=np.int64)
        tab[:, cols] = sub
        self._tables[key] = tab
        return tab

    def _check_given(
        self, sim: Any, vehicle: str, rows: Any, n_units: int, n_posts: int
    ) -> np.ndarray:
        where = f"move_up='compliance': the {vehicle} compliance table"
        if self._settings(sim)[2] is None:
            raise SimulationError(f"{where} needs the posts it lists (move_up posts)")
        if len(rows) != n_units:
            raise SimulationError(
                f"{where} has {len(rows)} rows but there are {n_units} {vehicle} units "
                "(one row for each number of free units, 1..N)"
            )
        sub = np.zeros((n_units + 1, n_posts), dtype=np.int64)
        for n, row in enumerate(rows, start=1):
            r = np.asarray(row, dtype=np.int64)
            if r.shape != (n_posts,) or (r < 0).any() or int(r.sum()) != n:
                raise SimulationError(
                    f"{where}: row {n} is {list(row)!r}; it must give {n_posts} counts >= 0 "
                    f"(one per post) summing to {n}"
                )
            sub[n] = r
        return sub

    def _travel(self, sim: Any, vehicle: str, units: Sequence[UnitState]) -> np.ndarray:
        """``(units, posts)`` drive seconds from where each unit is now to each post.

        A unit standing exactly at a post takes that post's row of a post-to-post table computed
        once per class and speed band (the same query, so the same seconds), unless the scenario
        has closures (their time windows are not bands); the others are one query.
        """
        posts = sim.posts(vehicle)
        hour = sim.clock.hour
        where = [sim.position(u) for u in units]
        out = np.empty((len(units), len(posts)), dtype=float)
        cached = not getattr(sim.scenario, "closures", ())
        home = [i for i, u in enumerate(units) if cached and tuple(where[i]) == posts[u.post_idx]]
        if home:
            key = (vehicle, self._band(sim))
            table = self._post_times.get(key)
            if table is None:
                table = np.asarray(sim.net.travel_times(np.array(posts), np.array(posts),
                                                        vehicle=vehicle, hour=hour), dtype=float)  # fmt: skip
                self._post_times[key] = table
            out[home] = table[[units[i].post_idx for i in home]]
        road = sorted(set(range(len(units))) - set(home))
        if road:
            out[road] = np.asarray(
                sim.net.travel_times(np.array([where[i] for i in road]), np.array(posts),
                                     vehicle=vehicle, hour=hour),
                dtype=float,
            )  # fmt: skip
        return out

    # -- the hook ---------------------------------------------------------------------------------

    def moves(self, sim: Any, changed: Sequence[UnitState]) -> list[tuple[UnitState, int]]:
        from dispatch.plan.moveup import compliance_moves

        out: list[tuple[UnitState, int]] = []
        for v in dict.fromkeys(u.vehicle for u in changed):  # each class once, first-change order
            tab = self.table(sim, v)
            free = [w for w in sim.units if w.vehicle == v and w.status in DISPATCHABLE]
            if not free:
                continue
            at = np.array([w.post_idx for w in free], dtype=np.int64)
            if np.array_equal(np.bincount(at, minlength=tab.shape[1]), tab[len(free)]):
                continue  # already as the row says
            travel = self._travel(sim, v, free)
            travel[np.arange(len(free)), at] = 0.0  # its own post counts 0 (JEMSS)
            try:
                to = compliance_moves(tab, travel)
            except ValueError as exc:
                raise SimulationError(f"move_up='compliance': {exc}") from None
            for i, w in enumerate(free):
                s = int(to[i])
                if s != at[i] and math.isfinite(float(travel[i, s])):
                    out.append((w, s))
        return out


#: The move-up policies by name.
MOVE_UP_POLICIES: dict[str, Callable[[], MoveUpPolicy]] = {
    "none": NoMoveUp,
    "fill_gaps": FillGaps,
    "dmexclp": DMEXCLPMoveUp,
    "compliance": ComplianceMoveUp,
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
