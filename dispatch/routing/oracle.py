"""What decisions and simulation need from the road network: the :class:`TravelOracle` protocol.

:class:`dispatch.Network` implements it; a test can implement it with straight lines and a constant
speed. Code that only needs travel times should type its network argument as ``TravelOracle``, not
``Network`` or ``Any``: it then works with any implementation and never reaches into the engine.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class RouteLike(Protocol):
    """What a caller reads from a route: its ETA and its timed polyline."""

    @property
    def eta_s(self) -> float: ...

    @property
    def coords(self) -> Sequence[tuple[float, float]]: ...

    @property
    def times_s(self) -> Sequence[float]: ...


@runtime_checkable
class UnitETALike(Protocol):
    """What a caller reads from one entry of ``fastest_units``."""

    @property
    def unit(self) -> str: ...

    @property
    def eta_s(self) -> float: ...

    @property
    def drive_s(self) -> float: ...

    @property
    def turnout_s(self) -> float: ...


@runtime_checkable
class TravelOracle(Protocol):
    """Travel times over the road network (the subset of :class:`dispatch.Network` that decisions
    and simulation use).

    Examples
    --------
    >>> import dispatch
    >>> isinstance(dispatch.load_network("danang"), TravelOracle)
    True
    """

    def fastest_units(
        self, call: tuple[float, float], units: Sequence[Mapping[str, object]], *, k: int = 3,
        hour: float | None = None, routes: bool = False,
    ) -> Sequence[UnitETALike]:  # fmt: skip
        """The ``k`` available units that reach ``call`` first, by ETA (rounded to 1 ms) then id."""
        ...

    def route(
        self, origin: tuple[float, float], destination: tuple[float, float], *,
        vehicle: str = "ambulance", hour: float | None = None,
    ) -> RouteLike:  # fmt: skip
        """The fastest route between two points."""
        ...

    def travel_times(
        self, origins: object, destinations: object, *, vehicle: str = "ambulance",
        hour: float | None = None,
    ) -> np.ndarray:  # fmt: skip
        """Seconds from each origin to each destination, ``inf`` where unreachable."""
        ...
