"""Coverage-hole warning at dispatch time: what sending each candidate unit does to coverage.

For each candidate unit, the share of demand within target of its class *before* and *after* it
leaves, the zones that fall below a threshold, and a *least-disruption alternative* when a unit that
takes less coverage away arrives within ``max_delay_s`` of the fastest. It **warns, never
overrides**: the fastest unit stays the recommendation (coverage-aware dispatch cuts late arrivals
but raises mean response time; Jagtenberg et al. 2017).

Per-unit reach (which demand points each unit covers: turnout + road time <= target, the rule of
:mod:`dispatch.plan.coverage`) is computed once (:meth:`CoverageState.build`) and updated
incrementally: :meth:`CoverageState.move` recomputes one unit's row (one road search),
:meth:`CoverageState.set_available` only adds or removes its row from the counts. A warning is then
array arithmetic over the candidates (no road search).

>>> import numpy as np
>>> resp = np.array([[100.0, 100.0, 900.0], [100.0, 900.0, 100.0], [900.0, 900.0, 100.0]])
>>> st = CoverageState.from_matrix(resp, ["a", "b", "c"], ["ambulance"] * 3, [1.0, 1.0, 1.0],
...                                target_s=480, zone=["x", "y", "z"])
>>> w = st.warn([("a", 200.0), ("b", 220.0)], max_delay_s=30, zone_threshold=0.5)
>>> [round(c.after, 3) for c in w.candidates], w.alternative
([0.667, 1.0], 'b')
>>> w.candidates[0].zones_below
('y',)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from dispatch.plan import PlanError
from dispatch.plan.coverage import check_target
from dispatch.plan.demand import Demand, travel_time_matrix
from dispatch.plan.io import Units

if TYPE_CHECKING:
    from dispatch.roads.network import Network


@dataclass(frozen=True)
class CandidateImpact:
    """What sending one unit does to the coverage of its class."""

    unit: str
    vehicle: str
    eta_s: float
    before: float
    after: float
    zones_below: tuple[str, ...]

    @property
    def loss(self) -> float:
        """Share of demand weight that loses its last covering unit of the class."""
        return self.before - self.after


@dataclass(frozen=True)
class CoverageWarning:
    """The warning for one dispatch decision (advice only; the fastest stays recommended)."""

    candidates: tuple[CandidateImpact, ...]
    fastest: str | None
    alternative: str | None
    alternative_delay_s: float
    message: str

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "fastest": self.fastest,
            "alternative": self.alternative,
            "alternative_delay_s": round(self.alternative_delay_s, 1),
            "message": self.message,
            "candidates": [
                {"unit": c.unit, "vehicle": c.vehicle, "eta_s": round(c.eta_s, 1),
                 "coverage_before": round(c.before, 4), "coverage_after": round(c.after, 4),
                 "zones_below": list(c.zones_below)}
                for c in self.candidates
            ],
        }  # fmt: skip


class CoverageState:
    """Per-unit reach over a demand, with per-class cover counts kept up to date.

    Build with :meth:`build` (road times from the network) or :meth:`from_matrix` (a response
    matrix already computed, e.g. by a simulator). Not thread-safe: one state per dispatcher thread.
    """

    def __init__(self, reach: np.ndarray, ids: Sequence[str], vehicle: Sequence[str],
                 weight: Any, zone: Sequence[str] | None, target_s: float,
                 available: Sequence[bool] | None = None) -> None:  # fmt: skip
        self.target_s = check_target(target_s)
        self.reach = np.array(reach, dtype=bool)
        self.ids = [str(i) for i in ids]
        self.index = {u: k for k, u in enumerate(self.ids)}
        if len(self.index) != len(self.ids):
            raise PlanError("units: duplicate unit ids")
        self.vehicle = [str(v) for v in vehicle]
        self.weight = np.asarray(weight, dtype=float)
        if self.reach.shape != (len(self.ids), len(self.weight)):
            raise PlanError(f"reach has shape {self.reach.shape}, expected "
                            f"({len(self.ids)}, {len(self.weight)})")  # fmt: skip
        self.total = float(self.weight.sum())
        if not self.total > 0:
            raise PlanError("demand has no positive weight")
        self.available = (
            np.ones(len(self.ids), dtype=bool)
            if available is None
            else np.array(available, dtype=bool)
        )
        zones = list(zone) if zone is not None and any(zone) else []
        names = sorted(set(zones))
        self.zone_names = tuple(names)
        lookup = {z: i for i, z in enumerate(names)}
        self.zone_idx = np.array([lookup[z] for z in zones], dtype=np.int64) if names else None
        self.zone_weight = (np.bincount(self.zone_idx, weights=self.weight, minlength=len(names))
                            if self.zone_idx is not None else np.zeros(0))  # fmt: skip
        self.counts: dict[str, np.ndarray] = {}
        for v in set(self.vehicle):
            rows = np.array([x == v for x in self.vehicle]) & self.available
            self.counts[v] = self.reach[rows].sum(axis=0).astype(np.int64)
        self._net: Network | None = None
        self._demand: Demand | None = None
        self._hour: float | None = None
        self._turnout: dict[str, float] = {}

    # --- construction ------------------------------------------------------------------------

    @classmethod
    def from_matrix(cls, response_s: Any, ids: Sequence[str], vehicle: Sequence[str], weight: Any,
                    *, target_s: float = 480.0, zone: Sequence[str] | None = None,
                    available: Sequence[bool] | None = None) -> CoverageState:  # fmt: skip
        """From a response matrix (turnout + road time, units x points)."""
        t = check_target(target_s)
        return cls(np.asarray(response_s, dtype=float) <= t, ids, vehicle, weight, zone, t,
                   available)  # fmt: skip

    @classmethod
    def build(cls, net: Network, units: Units | Any, demand: Demand, *, target_s: float = 480.0,
              hour: float | None = None) -> CoverageState:  # fmt: skip
        """Road times from every unit (its current position and turnout) to every demand point.

        Units marked unavailable (busy) keep a row that does not count until
        :meth:`set_available`.
        """
        from dispatch.plan.coverage import response_matrix

        t = check_target(target_s)
        rows = [dict(u) for u in units] if not isinstance(units, Units) else None
        u = (
            units
            if isinstance(units, Units)
            else Units.from_records([{**r, "available": True} for r in rows or []])
        )
        avail = [bool(r.get("available", True)) for r in rows] if rows is not None else None
        resp, _ = response_matrix(net, u, demand, hour=hour)
        st = cls(resp <= t, list(u.ids), list(u.vehicle), demand.weight, demand.zone, t, avail)
        st._net, st._demand, st._hour = net, demand, hour
        st._turnout = {str(i): float(x) for i, x in zip(u.ids, u.turnout_s, strict=True)}
        return st

    # --- incremental updates -----------------------------------------------------------------

    def _k(self, unit_id: Any) -> int:
        k = self.index.get(str(unit_id))
        if k is None:
            raise PlanError(f"unit {unit_id!r} is not in the coverage state")
        return k

    def set_reach(self, unit_id: Any, reach: Any) -> None:
        """Replace one unit's row of reach (e.g. after it moved), keeping the counts right."""
        k = self._k(unit_id)
        new = np.asarray(reach, dtype=bool)
        if new.shape != self.reach[k].shape:
            raise PlanError(f"reach of unit {unit_id!r} has shape {new.shape}, expected "
                            f"{self.reach[k].shape}")  # fmt: skip
        if self.available[k]:
            c = self.counts[self.vehicle[k]]
            c -= self.reach[k]
            c += new
        self.reach[k] = new

    def move(self, unit_id: Any, lat: float, lon: float) -> None:
        """A unit moved: recompute its reach with one road search (states from :meth:`build`)."""
        if self._net is None or self._demand is None:
            raise PlanError("move() needs a state built from a network (CoverageState.build)")
        k = self._k(unit_id)
        tt = travel_time_matrix(self._net, np.array([[lat, lon]]), self._demand,
                                vehicle=self.vehicle[k], hour=self._hour,
                                origin_names=[self.ids[k]])[0]  # fmt: skip
        self.set_reach(unit_id, tt + self._turnout.get(self.ids[k], 0.0) <= self.target_s)

    def set_available(self, unit_id: Any, available: bool) -> None:
        """A unit became busy (``False``) or free again (``True``)."""
        k = self._k(unit_id)
        if bool(available) == bool(self.available[k]):
            return
        c = self.counts[self.vehicle[k]]
        if available:
            c += self.reach[k]
        else:
            c -= self.reach[k]
        self.available[k] = bool(available)

    # --- queries -----------------------------------------------------------------------------

    def share(self, vehicle: str) -> float:
        """Share of demand weight within target of an available unit of a class."""
        c = self.counts.get(vehicle)
        if c is None:
            return 0.0
        return float(self.weight[c > 0].sum() / self.total)

    def zone_shares(self, vehicle: str) -> dict[str, float]:
        """Per zone, the share of its weight within target of an available unit of the class."""
        if self.zone_idx is None:
            return {}
        covered = self.counts.get(vehicle, np.zeros(len(self.weight), dtype=np.int64)) > 0
        zs = np.bincount(
            self.zone_idx, weights=self.weight * covered, minlength=len(self.zone_names)
        )
        return {z: float(s / w) if w > 0 else 1.0
                for z, s, w in zip(self.zone_names, zs, self.zone_weight, strict=True)}  # fmt: skip

    def warn(self, candidates: Sequence[Any], *, max_delay_s: float = 30.0,
             zone_threshold: float = 0.8) -> CoverageWarning:  # fmt: skip
        """Coverage before and after sending each candidate; a least-disruption alternative.

        Parameters
        ----------
        candidates
            ``(unit_id, eta_s)`` pairs, or objects with ``unit`` and ``eta_s`` attributes (such as
            :class:`dispatch.routing.queries.UnitETA` from ``net.fastest_units``).
        max_delay_s
            An alternative is named only when it arrives at most this much later than the fastest.
        zone_threshold
            A zone is reported when its covered share is at or above this before and below after.
        """
        if not (math.isfinite(max_delay_s) and max_delay_s >= 0):
            raise PlanError(f"max_delay_s={max_delay_s!r} must be a number of seconds >= 0")
        if not (0 <= zone_threshold <= 1):
            raise PlanError(f"zone_threshold={zone_threshold!r} must be a share in [0, 1]")
        pairs = [(str(c.unit), float(c.eta_s)) if hasattr(c, "unit") else (str(c[0]), float(c[1]))
                 for c in candidates]  # fmt: skip
        w = self.weight
        out: list[CandidateImpact] = []
        zone_before: dict[str, np.ndarray] = {}
        for uid, eta in pairs:
            k = self._k(uid)
            v = self.vehicle[k]
            counts = self.counts[v]
            covered = counts > 0
            before = float(w[covered].sum() / self.total)
            if self.available[k]:
                lost = self.reach[k] & (counts == 1)
            else:  # already busy: sending it changes nothing
                lost = np.zeros(len(w), dtype=bool)
            after = before - float(w[lost].sum() / self.total)
            zones: tuple[str, ...] = ()
            if self.zone_idx is not None and lost.any():
                zb = zone_before.get(v)
                if zb is None:
                    zb = zone_before[v] = np.bincount(self.zone_idx, weights=w * covered,
                                                      minlength=len(self.zone_names))  # fmt: skip
                za = zb - np.bincount(
                    self.zone_idx, weights=w * lost, minlength=len(self.zone_names)
                )
                zw = np.maximum(self.zone_weight, 1e-300)
                fell = (zb / zw >= zone_threshold) & (za / zw < zone_threshold)
                zones = tuple(self.zone_names[i] for i in np.flatnonzero(fell))
            out.append(CandidateImpact(uid, v, eta, before, after, zones))
        if not out:
            return CoverageWarning((), None, None, 0.0, "no candidate unit")
        fastest = min(out, key=lambda c: (c.eta_s, c.loss))
        near = [c for c in out if c.eta_s <= fastest.eta_s + max_delay_s]
        best = min(near, key=lambda c: (c.loss, c.eta_s))
        alt = best if best.loss < fastest.loss - 1e-12 else None
        msg = (f"sending {fastest.unit} leaves {fastest.after:.1%} of demand covered by "
               f"{fastest.vehicle} (from {fastest.before:.1%})")  # fmt: skip
        if fastest.zones_below:
            msg += f"; zones below {zone_threshold:.0%}: {', '.join(fastest.zones_below)}"
        if alt is not None:
            msg += (f"; {alt.unit} arrives {alt.eta_s - fastest.eta_s:.0f} s later and keeps "
                    f"{alt.after:.1%}")  # fmt: skip
        return CoverageWarning(tuple(out), fastest.unit, alt.unit if alt else None,
                               (alt.eta_s - fastest.eta_s) if alt else 0.0, msg)  # fmt: skip


def coverage_warning(state: CoverageState, candidates: Sequence[Any], *, max_delay_s: float = 30.0,
                     zone_threshold: float = 0.8) -> CoverageWarning:  # fmt: skip
    """Function form of :meth:`CoverageState.warn` (for ``recommend`` and the service)."""
    return state.warn(candidates, max_delay_s=max_delay_s, zone_threshold=zone_threshold)
