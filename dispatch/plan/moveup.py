"""Move-up decisions as pure functions: DMEXCLP and compliance tables.

Nothing here simulates or routes: a simulator (or a live service) computes the travel-time matrices
once and calls these functions at each event. Coverage follows the rule of
:mod:`dispatch.plan.coverage` (``time <= target_s``; put turnout into the matrices if it counts).

Call signature for a simulator
------------------------------
Precompute once per (vehicle class, speed band)::

    station_times_s = travel_time_matrix(net, stations_latlon, demand, vehicle=cls, hour=h)  # (S, D)
    policy = DMEXCLP(station_times_s, demand.weight, target_s=480, busy_fraction=0.3)
    table = compliance_table(station_times_s, demand.weight, target_s=480, n_units=N,
                             busy_fraction=0.3)                          # (N + 1, S) unit counts

When a unit becomes free (DMEXCLP, Jagtenberg, Bhulai & van der Mei 2015)::

    s = policy.choose(idle_stations=[station index of each OTHER idle unit],
                      idle_times_s=None or (U, D) times from other idle units away from a station,
                      travel_s=None or (S,) drive time from the freed unit to each station)
    # -> index of the station to send the freed unit to

Only the freed unit moves. Other idle units count at the station they wait at or drive to
(``idle_stations``) or, when the simulator prefers their current position, through their own row of
times (``idle_times_s``). Ties go to the station reached soonest (``travel_s``), then the lowest
index: the same inputs always give the same station.

Compliance table: when the number of free units changes, ``compliance_moves(table, unit_station_s)``
with ``unit_station_s`` the ``(free units, S)`` drive times returns the station for each free unit
(minimum total drive time to reach the table's row for that many free units; the Hungarian method).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from dispatch.plan import PlanError
from dispatch.plan.coverage import check_target
from dispatch.plan.demand import as_float_matrix


def _check_q(busy_fraction: float) -> float:
    q = float(busy_fraction)
    if not (math.isfinite(q) and 0 <= q < 1):
        raise PlanError(f"busy_fraction={busy_fraction!r} must be in [0, 1)")
    return q


def marginal_expected_coverage(cover: np.ndarray, weight: np.ndarray, k: np.ndarray, q: float
                               ) -> np.ndarray:  # fmt: skip
    """Gain in expected covered weight of one more unit at each station.

    With ``k[i]`` units already covering point ``i``, one more adds ``w_i (1 - q) q^k_i`` to the
    expected covered weight ``sum_i w_i (1 - q^k_i)`` (MEXCLP, Daskin 1983).

    >>> cover = np.array([[True, True, False], [False, True, True]])
    >>> marginal_expected_coverage(cover, np.array([1.0, 1.0, 1.0]), np.array([0, 1, 0]), 0.5)
    array([0.75, 0.75])
    """
    per_point = weight * (1.0 - q) * q ** k.astype(float)
    return np.asarray(cover @ per_point, dtype=float)


class DMEXCLP:
    """The DMEXCLP move-up rule with its coverage matrix precomputed.

    Parameters
    ----------
    station_times_s
        ``(S, D)`` seconds from each station to each demand point (``inf``: unreachable).
    weight
        ``(D,)`` demand weights.
    target_s
        Covered when the time is at most this.
    busy_fraction
        Probability ``q`` that a unit is busy (the system's utilisation is a usual estimate).

    Examples
    --------
    >>> times = np.array([[60.0, 60.0, 900.0, 900.0], [900.0, 60.0, 60.0, 900.0],
    ...                   [900.0, 900.0, 60.0, 60.0]])
    >>> policy = DMEXCLP(times, np.ones(4), target_s=480, busy_fraction=0.5)
    >>> policy.choose(idle_stations=[0])  # station 2 covers the two points nobody covers
    2
    >>> policy.choose(idle_stations=[2])
    0
    """

    def __init__(self, station_times_s: Any, weight: Any, *, target_s: float,
                 busy_fraction: float) -> None:  # fmt: skip
        t = as_float_matrix(station_times_s, name="station_times_s")
        self.weight = np.asarray(weight, dtype=float)
        if self.weight.shape != (t.shape[1],):
            raise PlanError(f"weight has {self.weight.size} values, station_times_s has "
                            f"{t.shape[1]} demand points")  # fmt: skip
        self.target_s = check_target(target_s)
        self.q = _check_q(busy_fraction)
        self.cover = t <= self.target_s
        self.n_stations = t.shape[0]

    def counts(self, idle_stations: Sequence[int] = (), idle_times_s: Any = None) -> np.ndarray:
        """Number of idle units (other than the freed one) covering each demand point."""
        idx = np.asarray(list(idle_stations), dtype=np.int64)
        if len(idx) and (idx.min() < 0 or idx.max() >= self.n_stations):
            bad = int(idx[(idx < 0) | (idx >= self.n_stations)][0])
            raise PlanError(f"idle station {bad} is not one of the {self.n_stations} stations")
        k = self.cover[idx].sum(axis=0) if len(idx) else np.zeros(self.cover.shape[1], np.int64)
        if idle_times_s is not None:
            it = np.asarray(idle_times_s, dtype=float).reshape(-1, self.cover.shape[1])
            k = k + (it <= self.target_s).sum(axis=0)
        return np.asarray(k, dtype=np.int64)

    def gains(self, idle_stations: Sequence[int] = (), idle_times_s: Any = None) -> np.ndarray:
        """Marginal expected coverage of the freed unit at each station."""
        k = self.counts(idle_stations, idle_times_s)
        return marginal_expected_coverage(self.cover, self.weight, k, self.q)

    def choose(self, idle_stations: Sequence[int] = (), idle_times_s: Any = None,
               travel_s: Any = None, *, max_travel_s: float | None = None) -> int:  # fmt: skip
        """The station where the freed unit adds the most expected coverage.

        ``travel_s`` (``(S,)``, the freed unit's drive to each station) breaks ties and, with
        ``max_travel_s``, excludes stations too far to drive to (if none is left, the nearest).
        """
        g = self.gains(idle_stations, idle_times_s)
        tr = np.zeros(self.n_stations) if travel_s is None else np.asarray(travel_s, dtype=float)
        if tr.shape != (self.n_stations,):
            raise PlanError(f"travel_s has shape {tr.shape}, expected ({self.n_stations},)")
        allowed = np.isfinite(tr)
        if max_travel_s is not None:
            allowed &= tr <= max_travel_s
        if not allowed.any():
            return int(np.argmin(tr))
        # largest gain (rounded off float noise), then shortest drive, then lowest index
        key = np.round(g, 9)
        order = np.lexsort((np.arange(self.n_stations), tr, -key))
        return int(next(j for j in order if allowed[j]))


def dmexclp_station(station_times_s: Any, weight: Any, *, target_s: float, busy_fraction: float,
                    idle_stations: Sequence[int] = (), idle_times_s: Any = None,
                    travel_s: Any = None) -> int:  # fmt: skip
    """One-shot form of :meth:`DMEXCLP.choose` (precompute :class:`DMEXCLP` for repeated calls)."""
    return DMEXCLP(station_times_s, weight, target_s=target_s, busy_fraction=busy_fraction).choose(
        idle_stations, idle_times_s, travel_s
    )


def compliance_table(station_times_s: Any, weight: Any, *, target_s: float, n_units: int,
                     busy_fraction: float = 0.0, max_per_station: int | None = None,
                     time_limit_s: float = 60.0) -> np.ndarray:  # fmt: skip
    """Target unit counts per station for each number of free units, solved once.

    Row ``n`` (0..``n_units``) holds how many of ``n`` free units each station should have: the
    MEXCLP optimum for ``n`` units with busy fraction ``busy_fraction`` (``0``: maximal covering
    with several units per station worth nothing extra), solved by :func:`dispatch.plan.siting.mexclp`.
    Rows are solved independently (not nested), as in JEMSS's compliance tables.

    >>> times = np.array([[60.0, 60.0, 900.0], [900.0, 60.0, 60.0]])
    >>> w = np.array([1.0, 1.0, 2.0])
    >>> compliance_table(times, w, target_s=480, n_units=2, busy_fraction=0.2).tolist()
    [[0, 0], [0, 1], [1, 1]]
    """
    from dispatch.plan.siting import mexclp

    if not (isinstance(n_units, int | np.integer) and n_units >= 0):
        raise PlanError(f"n_units={n_units!r} must be a whole number >= 0")
    t = as_float_matrix(station_times_s, name="station_times_s")
    table = np.zeros((n_units + 1, t.shape[0]), dtype=np.int64)
    for n in range(1, n_units + 1):
        r = mexclp(t, weight, target_s=target_s, p=n, busy_fraction=busy_fraction,
                   max_per_site=max_per_station, time_limit_s=time_limit_s)  # fmt: skip
        table[n] = np.bincount(np.asarray(r.selected, dtype=np.int64), minlength=t.shape[0])
    return table


def compliance_moves(table: Any, unit_station_s: Any) -> np.ndarray:
    """Station for each free unit so that the station counts match the table's row, at minimum
    total drive time (Hungarian method, :func:`scipy.optimize.linear_sum_assignment`).

    ``unit_station_s`` is ``(free units, S)``: drive time from each free unit to each station (0 for
    a unit already there). Returns ``(free units,)`` station indices.

    >>> table = np.array([[0, 0], [1, 0], [1, 1]])
    >>> compliance_moves(table, np.array([[0.0, 300.0], [50.0, 400.0]])).tolist()  # 350 s < 400 s
    [1, 0]
    """
    from scipy.optimize import linear_sum_assignment

    tab = np.asarray(table, dtype=np.int64)
    tt = np.asarray(unit_station_s, dtype=float)
    n = tt.shape[0]
    if tt.ndim != 2 or tt.shape[1] != tab.shape[1]:
        raise PlanError(f"unit_station_s has shape {tt.shape}, expected (units, {tab.shape[1]})")
    if n >= tab.shape[0]:
        raise PlanError(
            f"{n} free units but the compliance table has rows for 0..{tab.shape[0] - 1}"
        )
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    slots = np.repeat(np.arange(tab.shape[1]), tab[n])
    if len(slots) != n:
        raise PlanError(f"compliance table row {n} places {len(slots)} units, not {n}")
    cost = tt[:, slots]
    big = (np.nanmax(cost[np.isfinite(cost)]) + 1.0) * (n + 1) if np.isfinite(cost).any() else 1.0
    rows, cols = linear_sum_assignment(np.where(np.isfinite(cost), cost, big))
    out = np.empty(n, dtype=np.int64)
    out[rows] = slots[cols]
    return out
