"""Units in the simulation: the state machine of one unit, as an explicit table of transitions.

Unit lifecycle::

    available at its post -> [dispatch] -> en route -> on scene
        -> [115, transport] -> to hospital -> handover
        -> returning to its post (dispatchable, from where it is) -> available
    available / returning -> [relocate, move-up] -> relocating to another post (dispatchable)
        -> available at the new post

A unit's *post* is the station it returns to; it is its home station unless a move-up policy
(:mod:`dispatch.sim.moveup`) relocated it. Every change of status goes through
:meth:`UnitState.apply`, which looks the ``(status, transition)`` pair up in :data:`TRANSITIONS`
and raises :class:`SimulationError` for a pair the table does not allow.

>>> u = UnitState(0, SimUnit("A1", "ambulance", "S", 16.0, 108.0, 60.0))
>>> STATUS_NAMES[u.status]
'available'
>>> STATUS_NAMES[u.apply(DISPATCH)], STATUS_NAMES[u.apply(ARRIVE_SCENE)]
('en_route', 'on_scene')
>>> u.apply(ARRIVE_STATION)
Traceback (most recent call last):
...
dispatch.sim.units.SimulationError: unit 'A1': transition 'arrive_station' is not allowed from 'on_scene'
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from dispatch.errors import DispatchError
from dispatch.geo import haversine_m

__all__ = [
    "AVAILABLE",
    "BUSY",
    "DISPATCHABLE",
    "DRIVING_TO_POST",
    "EN_ROUTE",
    "HANDOVER",
    "ON_SCENE",
    "RELOCATING",
    "RETURNING",
    "STATUS_NAMES",
    "SimUnit",
    "SimulationError",
    "TO_HOSPITAL",
    "TRANSITIONS",
    "TRANSITION_NAMES",
    "UnitState",
    "clip_span",
    "polyline_length_m",
]


class SimulationError(DispatchError):
    """A simulation that cannot run (bad policy, no unit for an incident type, broken invariant)."""


# statuses (plain ints: they are compared a few million times in a year's run)
AVAILABLE, EN_ROUTE, ON_SCENE, TO_HOSPITAL, HANDOVER, RETURNING, RELOCATING = range(7)
STATUS_NAMES = (
    "available",
    "en_route",
    "on_scene",
    "to_hospital",
    "handover",
    "returning",
    "relocating",
)
#: Statuses in which a unit may be dispatched to a call.
DISPATCHABLE = (AVAILABLE, RETURNING, RELOCATING)
#: Statuses of a unit driving to its post (it is dispatched from where it is on the road).
DRIVING_TO_POST = (RETURNING, RELOCATING)
#: Statuses of a unit committed to a call (its ``busy_s``).
BUSY = (EN_ROUTE, ON_SCENE, TO_HOSPITAL, HANDOVER)

# transitions
(
    DISPATCH,
    ARRIVE_SCENE,
    TRANSPORT,
    ARRIVE_HOSPITAL,
    HEAD_TO_POST,
    CLEAR_AT_POST,
    ARRIVE_STATION,
    RELOCATE,
    ARRIVE_POST,
) = range(9)
TRANSITION_NAMES = (
    "dispatch",
    "arrive_scene",
    "transport",
    "arrive_hospital",
    "head_to_post",
    "clear_at_post",
    "arrive_station",
    "relocate",
    "arrive_post",
)

#: The allowed ``(status, transition) -> new status`` pairs; any other pair is an error.
TRANSITIONS: dict[tuple[int, int], int] = {
    (AVAILABLE, DISPATCH): EN_ROUTE,
    (RETURNING, DISPATCH): EN_ROUTE,
    (RELOCATING, DISPATCH): EN_ROUTE,
    (EN_ROUTE, ARRIVE_SCENE): ON_SCENE,
    (ON_SCENE, TRANSPORT): TO_HOSPITAL,
    (TO_HOSPITAL, ARRIVE_HOSPITAL): HANDOVER,
    # done with the call (at the scene, or after the handover): drive to the post ...
    (ON_SCENE, HEAD_TO_POST): RETURNING,
    (HANDOVER, HEAD_TO_POST): RETURNING,
    # ... or free at once (already at the post, or no road back)
    (ON_SCENE, CLEAR_AT_POST): AVAILABLE,
    (HANDOVER, CLEAR_AT_POST): AVAILABLE,
    (RETURNING, ARRIVE_STATION): AVAILABLE,
    # move-up: an idle unit is sent to another post
    (AVAILABLE, RELOCATE): RELOCATING,
    (RETURNING, RELOCATE): RELOCATING,
    (RELOCATING, RELOCATE): RELOCATING,
    (RELOCATING, ARRIVE_POST): AVAILABLE,
}


@dataclass(frozen=True)
class SimUnit:
    """A unit as the simulation starts: id, class, home station and position, turnout."""

    id: str
    vehicle: str
    station: str
    lat: float
    lon: float
    turnout_s: float


def clip_span(start: float, end: float, lo: float, hi: float) -> float:
    """Length of ``[start, end]`` inside ``[lo, hi]`` (0 if they do not overlap).

    >>> clip_span(0.0, 10.0, 5.0, 20.0)
    5.0
    """
    return max(0.0, min(end, hi) - max(start, lo))


def polyline_length_m(coords: Sequence[tuple[float, float]]) -> float:
    """Great-circle length of a (lat, lon) polyline, metres."""
    if len(coords) < 2:
        return 0.0
    a = np.asarray(coords, dtype=float)
    return float(np.sum(haversine_m(a[:-1, 0], a[:-1, 1], a[1:, 0], a[1:, 1])))


class UnitState:
    """Mutable state of one unit inside a simulation.

    Attributes of note: ``status`` (one of the statuses above, changed only by :meth:`apply`),
    ``epoch`` (incremented at each dispatch and relocation: queued events of an older epoch are
    stale), ``pos`` (position when not driving to its post), ``post``/``post_idx`` (the station it
    returns to and its index among its class's posts in the travel tables), the route it follows to
    its post (``route_coords``, ``route_times``, from ``route_start_s``) and where that drive began
    (``ret_origin``: the scene of ``ret_call`` or the hospital ``ret_hospital``, or a relocation's
    start when both are -1).
    """

    __slots__ = (
        "index", "id", "vehicle", "station", "home", "turnout_s", "status", "epoch", "pos",
        "route_coords", "route_times", "route_start_s", "busy_since_s", "busy_s",
        "returning_since_s", "returning_s", "dispatches", "call", "record", "home_idx",
        "post", "post_idx", "post_station", "ret_origin", "ret_call", "ret_hospital", "ret_hour",
        "ret_eta_s", "relocations", "relocation_m", "relocating_s",
    )  # fmt: skip

    def __init__(self, index: int, u: SimUnit) -> None:
        self.index = index
        self.id = u.id
        self.vehicle = u.vehicle
        self.station = u.station
        self.home = (u.lat, u.lon)
        self.turnout_s = u.turnout_s
        self.status = AVAILABLE
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
        self.home_idx = 0  # index of its home among its class's posts (travel tables)
        self.post = self.home  # the station it returns to (move-up may change it)
        self.post_idx = 0
        self.post_station = u.station
        self.ret_origin = self.home  # where the current drive to the post started
        self.ret_call = -1  # the drive started at this call's scene, or
        self.ret_hospital = -1  # at this hospital (both -1: a relocation)
        self.ret_hour = 0.0  # clock hour of the drive's departure (its travel times)
        self.ret_eta_s = 0.0
        self.relocations = 0  # move-up orders (counted after the warm-up)
        self.relocation_m = 0.0  # metres driven on relocations (after the warm-up)
        self.relocating_s = 0.0
        self.record: dict[str, Any] = {
            "id": u.id, "vehicle": u.vehicle, "lat": u.lat, "lon": u.lon, "turnout_s": u.turnout_s,
        }  # fmt: skip

    def apply(self, transition: int) -> int:
        """Change status by ``transition`` (see :data:`TRANSITIONS`); return the new status."""
        new = TRANSITIONS.get((self.status, transition))
        if new is None:
            raise SimulationError(
                f"unit {self.id!r}: transition {TRANSITION_NAMES[transition]!r} is not allowed "
                f"from {STATUS_NAMES[self.status]!r}"
            )
        self.status = new
        return new

    # -- following the route to the post -----------------------------------------------------------

    def position_at(self, now_s: float) -> tuple[float, float]:
        """Where the unit is at ``now_s`` (interpolated along its route while driving to its post).

        The route must be known (:meth:`dispatch.sim.travel.Timing.ensure_route`).
        """
        if self.status not in DRIVING_TO_POST or not self.route_coords:
            return self.pos
        elapsed = now_s - self.route_start_s
        times = self.route_times
        i = bisect_right(times, elapsed)
        if i >= len(times):
            return self.route_coords[-1]
        if i == 0:
            return self.route_coords[0]
        t0, t1 = times[i - 1], times[i]
        f = 0.0 if t1 <= t0 else (elapsed - t0) / (t1 - t0)
        (la0, lo0), (la1, lo1) = self.route_coords[i - 1], self.route_coords[i]
        return (la0 + f * (la1 - la0), lo0 + f * (lo1 - lo0))

    def dispatch_point_at(self, now_s: float) -> tuple[tuple[float, float], float]:
        """Point and extra delay to use when routing the unit from where it is at ``now_s``.

        A unit at its post starts from there after its turnout. A unit driving to its post is
        placed at the next vertex of its route, with the time still needed to reach it as its delay
        (the crew is already on the road: no turnout). Using the vertex keeps the point on the road.
        """
        if self.status not in DRIVING_TO_POST or not self.route_coords:
            return self.pos, self.turnout_s
        elapsed = now_s - self.route_start_s
        times = self.route_times
        i = bisect_right(times, elapsed)
        if i >= len(times):
            return self.route_coords[-1], 0.0
        return self.route_coords[i], float(times[i]) - elapsed

    def driven_m(self, now_s: float) -> float:
        """Metres driven since the current drive to the post began (along its route)."""
        if not self.route_coords:
            return 0.0
        elapsed = now_s - self.route_start_s
        i = bisect_right(self.route_times, elapsed)
        done = list(self.route_coords[:i])
        if i < len(self.route_coords):
            done.append(self.position_at(now_s))
        return polyline_length_m(done)
