"""Move-up: what idle units do after each dispatch and each unit freed.

After every event at which units were dispatched or freed, the simulation asks its
:class:`MoveUpPolicy` for relocations: ``(unit, post)`` pairs sending an idle unit (available at its
post, or driving to it) to another station of its class. A relocation is a real routed drive on
which the unit stays dispatchable (:meth:`dispatch.sim.simulation.Simulation.relocate`); it is
counted and its kilometres reported.

``none`` (:class:`NoMoveUp`)
    No relocation: a freed unit returns to its home station (what the simulator always did).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Protocol

from dispatch.sim.units import SimulationError, UnitState

__all__ = ["MOVE_UP_POLICIES", "MoveUpPolicy", "NoMoveUp", "make_move_up"]


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


#: The move-up policies by name.
MOVE_UP_POLICIES: dict[str, type[Any]] = {"none": NoMoveUp}


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
