"""The event core of the simulation: a clock and a heap of events.

Events are ordered by ``(time_s, priority, sequence)``, as in SimPy: at equal times the lower
priority comes first (unit transitions, :data:`P_UNIT`, before call arrivals, :data:`P_CALL`: a unit
that frees at the instant a call arrives can take it), and the sequence number (insertion order)
breaks the remaining ties, so a run is deterministic for a seed.

An event is a plain tuple ``(time_s, priority, sequence, kind, a, b)`` (cheap to push and pop a
million times); ``kind`` is one of the event kinds below, ``a`` and ``b`` its arguments (a call
index, or a unit index and the unit's epoch, which makes the events of a unit redispatched
meanwhile stale).

>>> q = EventQueue()
>>> q.push(5.0, P_CALL, CALL, 1)
>>> q.push(5.0, P_UNIT, ARRIVE_STATION, 0, 3)
>>> q.push(1.0, P_CALL, CALL, 0)
>>> [(t, EVENT_NAMES[k], a) for t, _, _, k, a, _ in q.drain(horizon_s=10.0)]
[(1.0, 'call', 0), (5.0, 'arrive_station', 0), (5.0, 'call', 1)]
>>> q.now_s
5.0
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator

__all__ = [
    "ARRIVE_HOSPITAL",
    "ARRIVE_POST",
    "ARRIVE_SCENE",
    "ARRIVE_STATION",
    "CALL",
    "DISPATCH",
    "EVENT_NAMES",
    "Event",
    "EventQueue",
    "HANDOVER_DONE",
    "LEAVE_SCENE",
    "P_CALL",
    "P_UNIT",
    "RELOCATE",
]

#: Event kinds (indices into :data:`EVENT_NAMES`). ``DISPATCH`` and ``RELOCATE`` are never queued:
#: they name the records of decisions taken at an event.
CALL, ARRIVE_SCENE, LEAVE_SCENE, ARRIVE_HOSPITAL, HANDOVER_DONE, ARRIVE_STATION, DISPATCH = range(7)
RELOCATE, ARRIVE_POST = 7, 8
EVENT_NAMES = (
    "call",
    "arrive_scene",
    "leave_scene",
    "arrive_hospital",
    "handover_done",
    "arrive_station",
    "dispatch",
    "relocate",
    "arrive_post",
)
#: Priorities at equal times: unit transitions first, then calls.
P_UNIT, P_CALL = 0, 1

#: One queued event: ``(time_s, priority, sequence, kind, a, b)``.
Event = tuple[float, int, int, int, int, int]


class EventQueue:
    """The clock and the pending events of one simulation.

    ``now_s`` is the time of the event being handled (seconds since the scenario start).
    """

    __slots__ = ("_heap", "_seq", "now_s")

    def __init__(self) -> None:
        self._heap: list[Event] = []
        self._seq = 0
        self.now_s = 0.0

    def __len__(self) -> int:
        return len(self._heap)

    @property
    def hour(self) -> float:
        """The clock in hours since the scenario start (what the network's ``hour=`` takes)."""
        return self.now_s / 3600.0

    def push(self, time_s: float, priority: int, kind: int, a: int, b: int = 0) -> None:
        """Schedule an event of ``kind`` with arguments ``a``, ``b`` at ``time_s``."""
        self._seq += 1
        heapq.heappush(self._heap, (time_s, priority, self._seq, kind, a, b))

    def drain(self, *, horizon_s: float) -> Iterator[Event]:
        """Pop events in order, advancing the clock, until none is left at or before the horizon.

        Events pushed while iterating are seen in their turn. The clock stays at the last event's
        time (the caller sets it to the horizon afterwards if it needs to).
        """
        heap = self._heap
        pop = heapq.heappop
        while heap:
            ev = pop(heap)
            if ev[0] > horizon_s:
                return
            self.now_s = ev[0]
            yield ev
