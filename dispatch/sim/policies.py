"""Dispatch policies of the simulation, behind one protocol (:class:`DispatchPolicy`).

A policy decides which dispatchable unit goes to a call (:meth:`~DispatchPolicy.choose`) and how the
waiting calls are matched to the units when a unit frees up or a call arrives
(:meth:`~DispatchPolicy.match`). Each class states once, in ``supports_run_cards``, whether it can
fill run cards; :func:`check_policy` (called by :func:`make_policy`) is the one place that rule is
checked. This module does not import the scenario reader, so the reader can call it.

``fastest`` (:class:`Fastest`)
    The unit with the smallest road ETA (turnout + drive), by ``net.fastest_units``: what live
    dispatch does.
``nearest_straight_line`` (:class:`NearestStraightLine`)
    The unit nearest as the crow flies (what CAD systems ranking by haversine do).
``nearest_node`` (:class:`NearestNode`)
    Call and units snapped to their nearest graph node, ranked by node-to-node road time (what tools
    using a node-based travel matrix do).
``optimal_batch`` (:class:`OptimalBatch`)
    Like ``fastest`` for a single call; when several calls wait, the waiting calls of the most urgent
    priority are assigned to the dispatchable units jointly, with the live surge code
    (:func:`dispatch.decide.assign.build_problem` and :func:`~dispatch.decide.assign.solve`: minimum
    weighted total ETA), and so on down the priorities. No run cards yet.
run cards (:class:`RunCardDispatch`)
    Wraps one of the policies above: each call gets its type's whole unit mix, every mandatory slot
    filled by the wrapped policy's choice among the units of an accepted class; a slot no unit can
    fill now waits (the call stays in the queue for it).

The chosen unit's arrival is always timed on the roads (:class:`dispatch.sim.travel.Timing`),
whatever policy chose it, so that policies are compared on real response times.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar, Protocol

import numpy as np

from dispatch.errors import DispatchError
from dispatch.geo import haversine_m
from dispatch.sim.records import CallRecords, QueueKey, WaitingCalls
from dispatch.sim.travel import CallsLike, Choice, Timing
from dispatch.sim.units import AVAILABLE, DISPATCHABLE, SimulationError, UnitState

__all__ = [
    "POLICY_CLASSES",
    "DispatchContext",
    "DispatchPolicy",
    "Fastest",
    "NearestNode",
    "NearestStraightLine",
    "OptimalBatch",
    "RunCardDispatch",
    "check_policy",
    "make_policy",
    "policy_names",
]


class DispatchContext(Protocol):
    """What a policy sees of the simulation (implemented by :class:`dispatch.sim.simulation.Simulation`)."""

    timing: Timing
    waiting: WaitingCalls
    records: CallRecords
    units: list[UnitState]
    type_names: list[str]
    type_priority: list[int]
    weight: dict[int, float]
    node_coords: tuple[np.ndarray, np.ndarray] | None

    @property
    def calls(self) -> CallsLike: ...

    @property
    def now_s(self) -> float: ...

    def candidates(self, vehicles: frozenset[str]) -> list[UnitState]: ...

    def free_classes(self) -> set[str]: ...

    def reachable_nodes(self, vehicle: str) -> np.ndarray:
        """Nodes of the network a class can use (its largest strongly connected part)."""

    def dispatch(self, call: int, choice: Choice, *, mandatory: bool = True) -> None: ...


class DispatchPolicy(Protocol):
    """A dispatch policy: which unit to a call, and how waiting calls meet free units."""

    #: Per incident type, the vehicle classes a call of that type may get.
    type_vehicles: list[frozenset[str]]

    @property
    def name(self) -> str:
        """Name in scenarios and on the command line."""

    @property
    def supports_run_cards(self) -> bool:
        """Whether it can fill run cards (several units per call)."""

    def choose(self, sim: DispatchContext, call: int, cands: Sequence[UnitState]) -> Choice | None:
        """The unit to send to ``call`` among ``cands`` (timed on the roads), or None."""

    def enqueue(self, sim: DispatchContext, call: int) -> None:
        """Put a call that reached the dispatcher in the waiting queue."""

    def match(self, sim: DispatchContext) -> None:
        """Dispatch waiting calls while some dispatchable unit can take one."""


class _OneUnitPerCall:
    """Base of the one-unit policies: the queue and the greedy match (most urgent, oldest first)."""

    name: ClassVar[str] = ""
    supports_run_cards: ClassVar[bool] = True

    def __init__(self, type_vehicles: Sequence[frozenset[str]]) -> None:
        self.type_vehicles = list(type_vehicles)

    def choose(self, sim: DispatchContext, call: int, cands: Sequence[UnitState]) -> Choice | None:
        raise NotImplementedError

    def key(self, sim: DispatchContext, call: int) -> QueueKey:
        """A call's queue key: its priority and the classes its type accepts."""
        ti = int(sim.calls.type_idx[call])
        return (sim.type_priority[ti], self.type_vehicles[ti])

    def enqueue(self, sim: DispatchContext, call: int) -> None:
        sim.waiting.push(call, self.key(sim, call))

    def serve(self, sim: DispatchContext, call: int) -> bool:
        """Send a unit to a waiting call if one can go now; True if one was sent."""
        choice = self.choose(sim, call, sim.candidates(self.key(sim, call)[1]))
        if choice is None:  # no free unit can reach it now; it keeps waiting
            return False
        sim.waiting.remove(call)
        sim.dispatch(call, choice)
        return True

    def match(self, sim: DispatchContext) -> None:
        _greedy_match(sim, self.serve)


def _greedy_match(sim: DispatchContext, serve: Any) -> None:
    """Serve waiting calls (most urgent, then oldest) one dispatch at a time while any progress."""
    while len(sim.waiting):
        free = sim.free_classes()
        if not free:
            return
        for call in sim.waiting.in_order(free):
            if serve(sim, call):
                break
        else:
            return


class Fastest(_OneUnitPerCall):
    """The unit with the smallest road ETA (live dispatch's ``net.fastest_units``)."""

    name = "fastest"

    def choose(self, sim: DispatchContext, call: int, cands: Sequence[UnitState]) -> Choice | None:
        return sim.timing.fastest_to_call(call, cands)


class _RankedBaseline(_OneUnitPerCall):
    """A baseline that ranks units by a proxy, then times the chosen one on the roads."""

    def rank(
        self, sim: DispatchContext, point: tuple[float, float], cands: Sequence[UnitState]
    ) -> np.ndarray:
        raise NotImplementedError

    def choose(self, sim: DispatchContext, call: int, cands: Sequence[UnitState]) -> Choice | None:
        d = self.rank(sim, sim.timing.point(call), cands)
        # rank by the baseline's proxy (ties by unit id), time the chosen unit on the roads;
        # a unit the roads cannot bring there is skipped for the next one
        order = sorted(range(len(cands)), key=lambda j: (d[j], cands[j].id))
        for j in order:
            if not math.isfinite(d[j]):
                continue
            timed = sim.timing.time_unit(cands[j], call)
            if timed is not None:
                return timed
        return None


class NearestStraightLine(_RankedBaseline):
    """The unit nearest as the crow flies."""

    name = "nearest_straight_line"

    def rank(
        self, sim: DispatchContext, point: tuple[float, float], cands: Sequence[UnitState]
    ) -> np.ndarray:
        pos = np.array([sim.timing.position(u) for u in cands])
        return np.asarray(haversine_m(pos[:, 0], pos[:, 1], point[0], point[1]))


class NearestNode(_RankedBaseline):
    """Call and units at their nearest graph node, ranked by node-to-node road time."""

    name = "nearest_node"

    def __init__(self, type_vehicles: Sequence[frozenset[str]]) -> None:
        super().__init__(type_vehicles)
        self._trees: dict[str, tuple[Any, np.ndarray, float]] = {}

    def _tree(self, sim: DispatchContext, vehicle: str) -> tuple[Any, np.ndarray, float]:
        """KD-tree of the nodes a class can reach (its largest strongly connected part)."""
        tree = self._trees.get(vehicle)
        if tree is None:
            from scipy.spatial import cKDTree

            assert sim.node_coords is not None
            lat, lon = sim.node_coords
            nodes = sim.reachable_nodes(vehicle)
            kx = math.cos(math.radians(float(np.mean(lat))))
            tree = (cKDTree(np.column_stack([lat[nodes], lon[nodes] * kx])), nodes, kx)
            self._trees[vehicle] = tree
        return tree

    def rank(
        self, sim: DispatchContext, point: tuple[float, float], cands: Sequence[UnitState]
    ) -> np.ndarray:
        if sim.node_coords is None:
            raise SimulationError("policy='nearest_node' needs the network's node coordinates")
        lat, lon = sim.node_coords
        out = np.full(len(cands), np.inf)
        by_vehicle: dict[str, list[int]] = {}
        for j, u in enumerate(cands):
            by_vehicle.setdefault(u.vehicle, []).append(j)
        for vehicle, js in by_vehicle.items():
            tree, nodes, kx = self._tree(sim, vehicle)
            pts = np.array([point] + [sim.timing.position(cands[j]) for j in js])
            _, idx = tree.query(np.column_stack([pts[:, 0], pts[:, 1] * kx]))
            at = np.column_stack([lat[nodes[idx]], lon[nodes[idx]]])
            try:
                tt = sim.timing.net.travel_times(
                    at[1:], at[:1], vehicle=vehicle, hour=sim.timing.clock.hour
                )
            except DispatchError:  # a node the class cannot use: this baseline cannot rank them
                continue
            for row, j in enumerate(js):
                out[j] = float(tt[row, 0]) + (
                    cands[j].turnout_s if cands[j].status == AVAILABLE else 0.0
                )
        return out


class OptimalBatch(Fastest):
    """``fastest`` for one call; several waiting calls are assigned jointly by the live surge code."""

    name = "optimal_batch"
    supports_run_cards = False

    def match(self, sim: DispatchContext) -> None:
        """Assign the waiting calls jointly with :func:`dispatch.decide.assign.solve`."""
        from dispatch.decide.assign import Demand, build_problem, solve

        while len(sim.waiting):
            free_units = [u for u in sim.units if u.status in DISPATCHABLE]
            if not free_units:
                return
            calls = sim.waiting.in_order({u.vehicle for u in free_units})
            if not calls:
                return
            if len(calls) == 1:
                if not self.serve(sim, calls[0]):
                    return
                continue
            # ETA (turnout or time to the next route vertex, plus drive) of each unit to each call
            eta = np.full((len(free_units), len(calls)), np.inf)
            pts = np.array([(sim.calls.lat[c], sim.calls.lon[c]) for c in calls])
            keys = [self.key(sim, c) for c in calls]
            by_vehicle: dict[str, list[int]] = {}
            for i, u in enumerate(free_units):
                by_vehicle.setdefault(u.vehicle, []).append(i)
            for vehicle, idx in by_vehicle.items():
                # only the calls this class may answer (others may lie on roads it cannot use)
                cols = [j for j, k in enumerate(keys) if vehicle in k[1]]
                if not cols:
                    continue
                starts = [sim.timing.dispatch_point(free_units[i]) for i in idx]
                tt = sim.timing.net.travel_times(
                    np.array([p for p, _ in starts]),
                    pts[cols],
                    vehicle=vehicle,
                    hour=sim.timing.clock.hour,
                )
                eta[np.ix_(idx, cols)] = tt + np.array([d for _, d in starts])[:, None]
            demands = [
                Demand(j, sim.type_names[int(sim.calls.type_idx[c])], tuple(sorted(k[1])), 1)
                for j, (c, k) in enumerate(zip(calls, keys, strict=True))
            ]
            problem = build_problem(
                eta,
                [u.id for u in free_units],
                [u.vehicle for u in free_units],
                [sim.weight[k[0]] for k in keys],
                demands,
                order=list(range(len(calls))),
            )
            pairs = solve(problem, method="min_cost_flow").pairs
            dispatched = 0
            for i, j in sorted(pairs, key=lambda p: p[1]):
                u, call = free_units[i], calls[j]
                timed = sim.timing.time_unit(u, call)
                if timed is None:
                    continue
                sim.waiting.remove(call)
                sim.dispatch(call, timed)
                dispatched += 1
            if not dispatched:
                return


class RunCardDispatch:
    """Run cards: every call gets its type's unit mix, each slot filled by a wrapped policy.

    Parameters
    ----------
    inner : a one-unit policy
        Chooses the unit of each slot (``fastest``, ``nearest_straight_line``, ``nearest_node``).
    cards : dispatch.decide.runcards.RunCards
    types : sequence of incident types
        Each needs a card (its ``name``).
    fleet_classes : set of str
        The classes present in the fleet (every mandatory line needs one).

    Raises
    ------
    SimulationError
        A policy that cannot fill run cards, or a fleet without a class a card needs.
    """

    supports_run_cards: ClassVar[bool] = True

    def __init__(
        self, inner: _OneUnitPerCall, cards: Any, types: Sequence[Any], fleet_classes: set[str]
    ) -> None:
        self.inner = inner
        self.name = inner.name
        self.cards = cards
        self.slots: list[tuple[frozenset[str], ...]] = []
        self.optional: list[tuple[frozenset[str], ...]] = []
        for t in types:
            card = cards.card(t.name)
            self.slots.append(
                tuple(frozenset(r.accepts) for r in card.mandatory for _ in range(r.count))
            )
            self.optional.append(
                tuple(frozenset(r.accepts) for r in card.optional for _ in range(r.count))
            )
            for r in card.mandatory:
                if not fleet_classes.intersection(r.accepts):
                    raise SimulationError(
                        f"incident type {t.name!r}: its run card needs {r.count} "
                        f"{r.cls} ({', '.join(r.accepts)}) but the fleet has none "
                        f"(fleet classes: {', '.join(sorted(fleet_classes))})"
                    )
        # the classes any line of the card accepts
        self.type_vehicles = [
            frozenset().union(*self.slots[i], *self.optional[i]) for i in range(len(types))
        ]
        inner.type_vehicles = self.type_vehicles

    def choose(self, sim: DispatchContext, call: int, cands: Sequence[UnitState]) -> Choice | None:
        return self.inner.choose(sim, call, cands)

    def enqueue(self, sim: DispatchContext, call: int) -> None:
        """Queue a call keyed by the classes its unfilled slots accept."""
        ti = int(sim.calls.type_idx[call])
        rem = sim.records.remaining.setdefault(call, list(self.slots[ti]))
        sim.waiting.push(call, (sim.type_priority[ti], frozenset().union(*rem)))

    def serve(self, sim: DispatchContext, call: int) -> bool:
        """Fill what can be filled of a waiting call's run card now; True if a unit was sent.

        Each unfilled mandatory slot, in card order, gets the wrapped policy's unit among the
        dispatchable units of an accepted class (timed on the roads); a slot no unit can fill now
        stays open and the call keeps waiting for it. Optional first responders (``only_if_first``)
        are looked at once, when the call first reaches the dispatcher: one is sent when it would
        arrive before every mandatory unit sent so far (the rule of :func:`dispatch.decide.assign.assign`).
        """
        rec = sim.records
        rem = rec.remaining[call]
        left: list[frozenset[str]] = []
        sent = 0
        for slot in rem:
            cands = sim.candidates(slot)
            choice = self.choose(sim, call, cands) if cands else None
            if choice is None:
                left.append(slot)
                continue
            sim.dispatch(call, choice, mandatory=True)
            sent += 1
        if not rec.optional_done[call]:
            rec.optional_done[call] = True
            ti = int(sim.calls.type_idx[call])
            for slot in self.optional[ti]:
                cands = sim.candidates(slot)
                choice = self.choose(sim, call, cands) if cands else None
                if choice is None:
                    continue
                first = rec.first_mandatory_s[call]
                if math.isnan(first) or sim.now_s + choice[1] < first:
                    sim.dispatch(call, choice, mandatory=False)
                    sent += 1
        if not sent:
            return False
        sim.waiting.remove(call)
        rec.remaining[call] = left
        if left:
            self.enqueue(sim, call)
        else:
            del rec.remaining[call]
        return True

    def match(self, sim: DispatchContext) -> None:
        _greedy_match(sim, self.serve)


#: The policies by name, in the order ``--compare-policies`` runs them.
POLICY_CLASSES: dict[str, type[_OneUnitPerCall]] = {
    c.name: c for c in (Fastest, NearestStraightLine, NearestNode, OptimalBatch)
}


def policy_names(*, run_cards: bool = False) -> tuple[str, ...]:
    """Names of the policies (only those that can fill run cards when ``run_cards``)."""
    return tuple(n for n, c in POLICY_CLASSES.items() if c.supports_run_cards or not run_cards)


def check_policy(name: str, *, run_cards: bool = False) -> None:
    """Raise :class:`SimulationError` for an unknown policy or one that cannot fill run cards."""
    cls = POLICY_CLASSES.get(name)
    if cls is None:
        raise SimulationError(f"policy={name!r} is not one of {', '.join(POLICY_CLASSES)}")
    if run_cards and not cls.supports_run_cards:
        raise SimulationError(f"policy={name!r} does not take run cards yet")


def make_policy(
    name: str, *, types: Sequence[Any], cards: Any = None, fleet_classes: set[str]
) -> DispatchPolicy:
    """The policy ``name`` for these incident types, wrapped in run cards when ``cards`` is given.

    Raises
    ------
    SimulationError
        Unknown policy, a policy that cannot fill run cards, a fleet without a class a type needs.
    """
    check_policy(name, run_cards=cards is not None)
    inner = POLICY_CLASSES[name]([frozenset(t.vehicles) for t in types])
    if cards is not None:
        return RunCardDispatch(inner, cards, types, fleet_classes)
    for t in types:
        if not fleet_classes.intersection(t.vehicles):
            raise SimulationError(
                f"incident type {t.name!r} needs one of {', '.join(t.vehicles)} but the fleet has "
                f"none (fleet classes: {', '.join(sorted(fleet_classes))})"
            )
    return inner
