"""What a simulation records: the waiting queue, per-call records, the conservation check, results.

A call is *served* once a unit is dispatched to it (its arrival time is known then: routes do not
change after departure; with run cards once every mandatory slot is filled), and *unserved* if it is
still waiting at the horizon (in the queue, or still in call processing). At the end of every run
:meth:`CallRecords.check_conservation` asserts that every generated call is in exactly one of these
states.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from dispatch.sim.travel import HospitalLike
from dispatch.sim.units import SimulationError

__all__ = ["SCAN_LIMIT", "CallRecords", "SimResult", "WaitingCalls"]

#: Waiting calls looked at per matching step (bounds the work per freed unit under overload).
SCAN_LIMIT = 64


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
        span), all within ``[warmup_s, horizon_s]``. With a move-up policy other than ``none``
        also ``relocations`` (move-up orders), ``relocation_km`` (driven on them) and
        ``relocating_s``.
    events : list of tuple
        ``(time_s, event, unit, call)`` records when the simulation was built with ``monitor=True``.
    targets_s : dict of int to float
        Response target per priority level.
    hospitals : tuple of Hospital
        The receiving hospitals (:class:`dispatch.model.Hospital`).
    run_cards : str or None
        Source of the run-card table the run dispatched with (None: one unit per call).
    move_up : str or None
        The move-up policy (None: ``none``, units return to their home station).
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
    hospitals: tuple[HospitalLike, ...] = ()
    run_cards: str | None = None
    move_up: str | None = None

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


#: A waiting call's queue key: its priority level and the vehicle classes that may answer it.
QueueKey = tuple[int, frozenset[str]]


class WaitingCalls:
    """Calls waiting for a unit, one FIFO per (priority level, accepted classes).

    Parameters
    ----------
    time_s : numpy.ndarray
        Call times (the order within a priority level).
    """

    def __init__(self, time_s: np.ndarray) -> None:
        self._time_s = time_s
        self.queues: dict[QueueKey, deque[int]] = {}
        self._key: dict[int, QueueKey] = {}
        self.n = 0

    def __len__(self) -> int:
        return self.n

    def __contains__(self, call: object) -> bool:
        return call in self._key

    def push(self, call: int, key: QueueKey) -> None:
        """Queue a call under ``key``."""
        self._key[call] = key
        self.queues.setdefault(key, deque()).append(call)
        self.n += 1

    def remove(self, call: int) -> None:
        """Take a call out of the queue (it was dispatched)."""
        self.queues[self._key.pop(call)].remove(call)
        self.n -= 1

    def in_order(self, free: set[str]) -> list[int]:
        """Waiting calls some free class could answer: most urgent, then oldest, first.

        At most :data:`SCAN_LIMIT` calls are looked at, so that an overloaded queue costs a bounded
        amount of work per freed unit.
        """
        time_s = self._time_s

        def tagged(level: int, q: deque[int]) -> Iterator[tuple[int, float, int]]:
            return ((level, float(time_s[c]), c) for c in q)

        queues = [
            tagged(key[0], q) for key, q in self.queues.items() if q and not free.isdisjoint(key[1])
        ]
        out = []
        for _, _, c in heapq.merge(*queues):
            out.append(c)
            if len(out) >= SCAN_LIMIT:
                break
        return out

    def calls(self) -> set[int]:
        """Every waiting call."""
        return {call for q in self.queues.values() for call in q}


class CallRecords:
    """Per-call state and records of one run (arrays indexed by call).

    ``arrived`` (reached the dispatcher, after call processing), ``served`` (some unit sent),
    the first unit to arrive (``unit_of_call``, ``dispatch_s``, ``turnout_s``, ``drive_s``),
    every unit sent (``sent``), arrival times, the receiving hospital, the run-card slots still to
    fill (``remaining``) and the unit that carries the patient (``transporter``).
    """

    def __init__(self, n: int) -> None:
        self.n = n
        self.served = np.zeros(n, dtype=bool)
        self.arrived = np.zeros(n, dtype=bool)
        self.unit_of_call = np.full(n, -1, dtype=np.int64)
        self.dispatch_s = np.full(n, np.nan)
        self.turnout_s = np.full(n, np.nan)
        self.drive_s = np.full(n, np.nan)
        self.hospital_of_call = np.full(n, -1, dtype=np.int64)
        self.sent: list[list[int]] = [[] for _ in range(n)]
        self.first_arrival_s = np.full(n, np.nan)  # absolute clock time of the first arrival
        self.full_arrival_s = np.full(n, np.nan)  # last mandatory unit's arrival (running max)
        self.first_mandatory_s = np.full(n, np.nan)  # first mandatory unit's arrival
        self.remaining: dict[int, list[frozenset[str]]] = {}
        self.optional_done = np.zeros(n, dtype=bool)
        self.transporter = np.full(n, -1, dtype=np.int64)

    def record_dispatch(
        self,
        call: int,
        unit: int,
        now_s: float,
        turnout_s: float,
        drive_s: float,
        *,
        mandatory: bool,
        transports: bool,
    ) -> None:
        """Record that ``unit`` was sent to ``call`` at ``now_s``.

        ``transports``: the unit may carry the patient (the first such unit sent does).
        """
        self.served[call] = True
        self.sent[call].append(unit)
        arrival = now_s + turnout_s + drive_s
        if mandatory:
            self.full_arrival_s[call] = np.fmax(self.full_arrival_s[call], arrival)
            self.first_mandatory_s[call] = np.fmin(self.first_mandatory_s[call], arrival)
        if self.transporter[call] < 0 and transports:
            self.transporter[call] = unit
        first = self.first_arrival_s[call]
        if math.isnan(first) or arrival < first:  # the record shows the first unit to arrive
            self.first_arrival_s[call] = arrival
            self.unit_of_call[call] = unit
            self.dispatch_s[call] = now_s
            self.turnout_s[call] = turnout_s
            self.drive_s[call] = drive_s

    def complete(self) -> np.ndarray:
        """Calls whose every mandatory unit was sent."""
        complete = self.served.copy()
        if self.remaining:
            complete[list(self.remaining)] = False
        return complete

    def check_conservation(self, waiting: WaitingCalls, *, run_cards: bool) -> None:
        """Every call is served (run cards: its whole card filled), waiting in the queue (run
        cards: maybe with some units already sent), or still in call processing; exactly one.

        Raises
        ------
        SimulationError
            A call lost or counted twice.
        """
        n = self.n
        queued = sum(len(q) for q in waiting.queues.values())
        processing = int(np.count_nonzero(~self.arrived))
        complete = self.complete()
        served = int(complete.sum())
        if queued != len(waiting) or served + queued + processing != n:
            raise SimulationError(
                f"conservation check failed: {n} calls generated, {served} served, {queued} "
                f"waiting, {processing} still in call processing"
            )
        waiting_set = waiting.calls()
        if (
            set(self.remaining) != (waiting_set if run_cards else set())
            or any(complete[call] or not self.arrived[call] for call in waiting_set)
            or np.any(self.served & ~self.arrived)
        ):
            raise SimulationError("conservation check failed: a call is in two states at once")

    def sent_ids(self, unit_ids: Sequence[str]) -> np.ndarray:
        """Every unit sent to each call, ``;``-separated, in dispatch order."""
        return np.array([";".join(unit_ids[i] for i in s) for s in self.sent], dtype=object)
