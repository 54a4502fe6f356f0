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
    baseline for coverage-based policies such as DMEXCLP, which live in ``dispatch.plan``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar, Protocol

import numpy as np

from dispatch.sim.units import (
    AVAILABLE,
    BUSY,
    DISPATCHABLE,
    SimulationError,
    UnitState,
)

__all__ = ["MOVE_UP_POLICIES", "FillGaps", "MoveUpPolicy", "NoMoveUp", "make_move_up"]


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
        seen: dict[int, UnitState] = {}
        for u in changed:  # each unit once, in its state after the event
            seen[u.index] = u
        out: list[tuple[UnitState, int]] = []
        for u in seen.values():
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


#: The move-up policies by name.
MOVE_UP_POLICIES: dict[str, type[Any]] = {"none": NoMoveUp, "fill_gaps": FillGaps}


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
