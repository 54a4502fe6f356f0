"""Coverage: the share of demand reached within a target from where the units are now.

Rule (stated once, used everywhere in :mod:`dispatch.plan`): a unit *covers* a demand point when its
**turnout plus its road travel time** to the point is at most the target::

    response_s[u, d] = turnout_s[u] + travel_s[u, d]   (road time from the routing core)
    covered[u, d]    = response_s[u, d] <= target_s

The target is counted from the moment the unit is notified (call handling is not included: subtract
it from the centre's call-to-arrival target). A unit mid-route counts from its current position; busy
and out-of-service units do not count. A point that no unit of a class can reach at all (no road open
to the class near it, or cut off by closures) is *uncoverable* for that class (``inf``): it stays in
the denominator and is reported, never dropped.

The model is built from a matrix (:func:`coverage_from_matrix`, spopt style); :func:`coverage` and
:func:`coverage_by_band` compute the matrices with the routing core.

>>> import numpy as np
>>> r = coverage_from_matrix(np.array([[100.0, 500.0, np.inf], [300.0, 200.0, np.inf]]),
...                          ["ambulance", "ambulance"], np.array([1.0, 1.0, 2.0]), target_s=480)
>>> r.first_share, r.double_share, r.uncoverable_points
(0.5, 0.25, 1)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from dispatch.plan import PlanError
from dispatch.plan.demand import Demand, band_hours, hour_band_name, travel_time_matrix
from dispatch.plan.io import Units

if TYPE_CHECKING:
    from dispatch.roads.network import Network


def check_target(target_s: float, *, name: str = "target_s") -> float:
    """A target in seconds: a finite number > 0."""
    try:
        t = float(target_s)
    except (TypeError, ValueError):
        raise PlanError(f"{name}={target_s!r} is not a number of seconds") from None
    if not (math.isfinite(t) and t > 0):
        raise PlanError(f"{name}={target_s!r} must be a finite number of seconds > 0")
    return t


@dataclass(frozen=True)
class ClassCoverage:
    """Coverage by the units of one vehicle class."""

    vehicle: str
    units: int
    share: float
    double_share: float
    uncoverable_points: int
    uncoverable_weight: float


@dataclass(frozen=True)
class CoverageResult:
    """Coverage of a demand by a set of units.

    Attributes
    ----------
    target_s : float
        Turnout plus travel time that counts as covered.
    first_share : float
        Share of demand weight reached within target by the first unit of any class.
    double_share : float
        Share reached within target by at least two units (any class).
    by_class : dict
        :class:`ClassCoverage` per vehicle class present in the fleet.
    uncoverable_points, uncoverable_weight
        Demand points that no unit of any class can reach at all (no road), and their weight.
    first_s : numpy.ndarray
        Earliest response (turnout + travel) at each point, ``inf`` if none.
    n_within : numpy.ndarray
        Units within target of each point.
    zones : dict
        Per zone label: ``{"weight", "share"}`` (empty when the demand has no zones).
    """

    target_s: float
    total_weight: float
    first_share: float
    double_share: float
    by_class: dict[str, ClassCoverage]
    uncoverable_points: int
    uncoverable_weight: float
    first_s: np.ndarray = field(repr=False)
    n_within: np.ndarray = field(repr=False)
    zones: dict[str, dict[str, float]] = field(default_factory=dict, repr=False)
    n_units: int = 0
    n_unavailable: int = 0

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary (no per-point arrays)."""
        return {
            "target_s": self.target_s,
            "units": self.n_units,
            "units_unavailable": self.n_unavailable,
            "demand_points": len(self.first_s),
            "demand_weight": round(self.total_weight, 6),
            "first_unit_share": round(self.first_share, 6),
            "double_share": round(self.double_share, 6),
            "uncoverable_points": self.uncoverable_points,
            "uncoverable_weight": round(self.uncoverable_weight, 6),
            "by_class": {
                v: {
                    "units": c.units,
                    "share": round(c.share, 6),
                    "double_share": round(c.double_share, 6),
                    "uncoverable_points": c.uncoverable_points,
                }
                for v, c in self.by_class.items()
            },
            "zones_below_half": sorted(z for z, s in self.zones.items() if s["share"] < 0.5),
        }


def coverage_from_matrix(
    response_s: Any, vehicle: Sequence[str], weight: Any, *, target_s: float = 480.0,
    zone: Sequence[str] | None = None, unreachable: Mapping[str, np.ndarray] | None = None,
) -> CoverageResult:  # fmt: skip
    """Coverage from a matrix of response times (turnout included), one row per unit.

    Parameters
    ----------
    response_s
        Shape ``(units, points)``: turnout + road travel time, ``inf`` where the unit cannot reach.
    vehicle
        Class of each unit (row).
    weight
        Demand weight of each point (column).
    target_s
        Covered when ``response_s <= target_s``.
    zone
        Zone label of each point (optional), for per-zone shares.
    unreachable
        Per class, a mask of points no road open to the class reaches (counted as uncoverable for
        the class even when it has no unit); default: columns that are ``inf`` for all its units.
    """
    target = check_target(target_s)
    r = np.asarray(response_s, dtype=float)
    w = np.asarray(weight, dtype=float)
    if r.ndim != 2 or r.shape[1] != len(w) or r.shape[0] != len(vehicle):
        raise PlanError(f"response_s has shape {r.shape}, expected ({len(vehicle)}, {len(w)})")
    total = float(w.sum())
    if not total > 0:
        raise PlanError("demand has no positive weight")
    within = r <= target
    n_within = within.sum(axis=0)
    first_s = r.min(axis=0) if len(r) else np.full(len(w), np.inf)
    vehicles = np.asarray(vehicle, dtype=object)
    by_class: dict[str, ClassCoverage] = {}
    never = np.ones(len(w), dtype=bool)
    classes = sorted(set(vehicles) | set(unreachable or {}))
    for v in classes:
        rows = vehicles == v
        k = within[rows].sum(axis=0)
        if unreachable is not None and v in unreachable:
            unr = np.asarray(unreachable[v], dtype=bool)
        else:
            unr = np.isinf(r[rows]).all(axis=0) if rows.any() else np.ones(len(w), dtype=bool)
        never &= unr
        by_class[v] = ClassCoverage(v, int(rows.sum()), float(w[k >= 1].sum() / total),
                                    float(w[k >= 2].sum() / total), int(unr.sum()),
                                    float(w[unr].sum()))  # fmt: skip
    if not classes:
        never[:] = True
    zones: dict[str, dict[str, float]] = {}
    if zone is not None and any(zone):
        za = np.asarray(zone, dtype=object)
        for z in sorted(set(zone)):
            m = za == z
            zw = float(w[m].sum())
            share = float(w[m & (n_within >= 1)].sum() / zw) if zw > 0 else 1.0
            zones[str(z)] = {"weight": zw, "share": share}
    return CoverageResult(
        target_s=target,
        total_weight=total,
        first_share=float(w[n_within >= 1].sum() / total),
        double_share=float(w[n_within >= 2].sum() / total),
        by_class=by_class,
        uncoverable_points=int(never.sum()),
        uncoverable_weight=float(w[never].sum()),
        first_s=first_s,
        n_within=n_within,
        zones=zones,
        n_units=len(vehicles),
    )


def response_matrix(
    net: Network, units: Units, demand: Demand, *, hour: float | None = None
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Turnout + road travel time from each unit to each demand point, and per class the mask of
    points no road open to the class reaches."""
    out = np.full((len(units), len(demand)), np.inf)
    unreachable: dict[str, np.ndarray] = {}
    for v in sorted(set(units.vehicle)):
        rows = np.flatnonzero(units.vehicle == v)
        tt = travel_time_matrix(net, np.column_stack([units.lat[rows], units.lon[rows]]), demand,
                                vehicle=v, hour=hour, origin_names=list(units.ids[rows]))  # fmt: skip
        out[rows] = tt + units.turnout_s[rows, None]
        unreachable[v] = np.isinf(tt).all(axis=0) if len(rows) else np.ones(len(demand), bool)
    return out, unreachable


def coverage(
    net: Network, units: Units | Any, demand: Demand, *, target_s: float = 480.0,
    hour: float | None = None,
) -> CoverageResult:  # fmt: skip
    """Coverage of ``demand`` by ``units`` on the road network at a clock hour.

    Parameters
    ----------
    net
        The network (its closures in force apply).
    units
        :class:`dispatch.plan.io.Units`, or unit mappings (``id, vehicle, lat, lon[, turnout_s,
        available]``) such as :func:`dispatch.io.fleet.read_fleet_csv` returns.
    demand
        :class:`dispatch.plan.demand.Demand`.
    target_s
        Turnout + travel time that counts as covered (default 480 s).
    hour
        Clock hour: speed band and closure windows (``None``: off-peak).

    Examples
    --------
    >>> import dispatch
    >>> from dispatch.plan.demand import grid_demand
    >>> net = dispatch.load_network("danang")
    >>> units = [{"id": "A", "vehicle": "ambulance", "lat": 16.0594, "lon": 108.2099, "turnout_s": 60}]
    >>> r = coverage(net, units, grid_demand(net, cell_m=400), target_s=300)
    >>> 0 < r.first_share < 1, r.by_class["ambulance"].units
    (True, 1)
    """
    check_target(target_s)
    u = units if isinstance(units, Units) else Units.from_records(units)
    if len(u) == 0:
        raise PlanError("units: no available unit (all busy or out of service)")
    resp, unreachable = response_matrix(net, u, demand, hour=hour)
    res = coverage_from_matrix(resp, list(u.vehicle), demand.weight, target_s=target_s,
                               zone=demand.zone, unreachable=unreachable)  # fmt: skip
    return CoverageResult(**{**res.__dict__, "n_unavailable": u.n_unavailable})


def coverage_by_band(
    net: Network, units: Units | Any, demand: Demand | Callable[[str], Demand], *,
    target_s: float = 480.0, hours: Mapping[str, float] | None = None,
) -> dict[str, tuple[float, CoverageResult]]:  # fmt: skip
    """Coverage per speed band: ``{band: (hour, result)}``.

    ``demand`` is one :class:`Demand` for every band or a function of the band name (a scenario's
    call model differs by hour). ``hours`` maps band names to the clock hour used (default: the
    middle of each band, :func:`dispatch.plan.demand.band_hours`).
    """
    out: dict[str, tuple[float, CoverageResult]] = {}
    for name, h in (hours or band_hours(net)).items():
        d = demand(name) if callable(demand) else demand
        out[name] = (h, coverage(net, units, d, target_s=target_s, hour=h))
    return out


__all__ = [
    "ClassCoverage",
    "CoverageResult",
    "check_target",
    "coverage",
    "coverage_by_band",
    "coverage_from_matrix",
    "hour_band_name",
    "response_matrix",
]
