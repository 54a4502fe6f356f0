"""Recommend the units to send to one incident, with routes and the receiving hospital.

:func:`recommend` fills the incident's run card with the units that minimise the sum of arrival
times (so both the first arrival and the full complement come early), by road ETA on the real network
including each unit's turnout delay; it is :func:`dispatch.assign.assign` on one incident (the same
optimiser, availability and redispatch rules), plus each chosen unit's route, the next-fastest
alternatives per requirement, and for 115/joint incidents the nearest hospital able to treat the
incident type with the scene -> hospital ETA.

JSON form of a recommendation::

    {"incident": {...}, "units": [{"unit", "vehicle", "requirement", "eta_s", "drive_s", "turnout_s",
     "length_m"}, ...], "first_arrival_s": X, "full_complement_s": Y, "target_s": T, "meets_target": true,
     "uncovered": [{"requirement", "accepts", "missing", "reason"}], "alternatives": [...],
     "hospital": {"hospital", "name", "capability", "eta_s", ...} | null, "hospital_problem": "..."}

:meth:`Recommendation.geojson` returns a FeatureCollection with the scene, each unit's route and the
route to the hospital (lon/lat order).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from dispatch.decide.assign import (
    REDISPATCH_MIN_GAIN_S,
    IncidentPlan,
    UnitAssignment,
    assign_matrix,
    check_scenes,
    eta_matrix,
    incident_features,
)
from dispatch.decide.hospitals import (
    Hospital,
    HospitalChoice,
    NoHospitalError,
    nearest_capable_hospital,
)
from dispatch.decide.incidents import (
    UNIT_STATUSES,
    Incident,
    IncidentError,
    Unit,
    units_from_records,
)
from dispatch.decide.location import DiscETA, disc_etas
from dispatch.decide.runcards import RunCards, default_run_cards
from dispatch.model import check_hour

if TYPE_CHECKING:
    from dispatch.plan.warning import CoverageState, CoverageWarning

__all__ = ["Alternative", "CoverageAdvice", "Recommendation", "recommend"]

#: An alternative that keeps more coverage is named when it arrives at most this much later.
COVERAGE_MAX_DELAY_S = 30.0
#: A zone is reported when its covered share falls below this.
COVERAGE_ZONE_THRESHOLD = 0.8


@dataclass(frozen=True)
class CoverageAdvice:
    """The coverage-hole warning for one run-card requirement (advice; never changes the units).

    ``warning`` (:class:`dispatch.plan.warning.CoverageWarning`) gives, for each free unit the
    requirement accepts, the coverage of its class before and after sending it, the zones that fall
    below the threshold, and a least-disruption alternative within the configured delay.
    """

    requirement: str
    warning: CoverageWarning

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"requirement": self.requirement, **self.warning.as_dict()}


@dataclass(frozen=True)
class Alternative:
    """A free unit not chosen that could fill a requirement, with its ETA."""

    requirement: str
    unit: str
    vehicle: str
    eta_s: float

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "requirement": self.requirement,
            "unit": self.unit,
            "vehicle": self.vehicle,
            "eta_s": round(self.eta_s, 1),
        }


@dataclass(frozen=True)
class Recommendation:
    """Units to send to one incident, with routes, alternatives and the receiving hospital.

    Parameters
    ----------
    plan : IncidentPlan
        Units (with routes), uncovered requirements, hospital.
    alternatives : tuple of Alternative
        Up to `n_alternatives` next-fastest free units per requirement.
    objective : float
        Priority-weighted sum of mandatory units' ETAs (as in :func:`dispatch.assign.assign`).
    solver : str
        Solver used.
    """

    plan: IncidentPlan
    alternatives: tuple[Alternative, ...]
    objective: float
    solver: str
    warnings: tuple[str, ...] = ()
    #: Coverage-hole warnings, one per requirement (empty unless ``recommend(coverage=...)``).
    coverage: tuple[CoverageAdvice, ...] = ()
    #: The caller-location disc (``recommend(location_radius_m=...)``): ETAs are expected over it.
    location: DiscETA | None = None

    @property
    def incident(self) -> Incident:
        """The incident."""
        return self.plan.incident

    @property
    def units(self) -> tuple[UnitAssignment, ...]:
        """Units to send, by ETA."""
        return self.plan.units

    @property
    def hospital(self) -> HospitalChoice | None:
        """Receiving hospital, if any."""
        return self.plan.hospital

    @property
    def first_arrival_s(self) -> float:
        """ETA of the first unit."""
        return self.plan.first_arrival_s

    @property
    def full_complement_s(self) -> float:
        """ETA of the last mandatory unit (``inf`` if something is uncovered)."""
        return self.plan.full_complement_s

    def to_dict(self) -> dict[str, Any]:
        """JSON form (see the module docstring)."""
        d = self.plan.to_dict()
        d.pop("incident")
        return {
            "incident": self.incident.to_dict(),
            **{k: v for k, v in d.items() if k not in ("type", "priority", "lat", "lon")},
            "alternatives": [a.to_dict() for a in self.alternatives],
            "objective": round(self.objective, 1),
            "solver": self.solver,
            "warnings": list(self.warnings),
            **({"coverage": [c.to_dict() for c in self.coverage]} if self.coverage else {}),
            **({"location": self.location.summary()} if self.location is not None else {}),
        }

    def geojson(self) -> dict[str, Any]:
        """FeatureCollection: the scene (Point), each unit's route and the hospital route."""
        return {"type": "FeatureCollection", "features": incident_features(self.plan)}


def recommend(
    net: Any,
    incident: Incident,
    units: Sequence[Unit | Mapping[str, Any]],
    run_cards: RunCards | None = None,
    *,
    hospitals: Sequence[Hospital] | None = None,
    hour: float | None = None,
    redispatch: bool = False,
    redispatch_min_gain_s: float = REDISPATCH_MIN_GAIN_S,
    routes: bool = True,
    n_alternatives: int = 2,
    coverage: CoverageState | None = None,
    coverage_max_delay_s: float = COVERAGE_MAX_DELAY_S,
    coverage_zone_threshold: float = COVERAGE_ZONE_THRESHOLD,
    location_radius_m: float = 0.0,
) -> Recommendation:
    """Recommend the units to send to `incident` and, for 115/joint types, the hospital.

    Parameters
    ----------
    net : Network
        A loaded road network (``dispatch.load_network``).
    incident : Incident
        The call.
    units : sequence of Unit or mapping
        The fleet; ``busy``/``out_of_service`` units are skipped, ``returning`` units are sent from
        where they are.
    run_cards : RunCards, optional
        Run-card table (default: built-in, same as ``scenarios/run_cards.toml``).
    hospitals : sequence of Hospital, optional
        Receiving hospitals. ``None``: no hospital leg. A 115/joint incident with no capable reachable
        hospital gets ``hospital=None`` and a ``hospital_problem`` message (units are still sent).
    hour : float, optional
        Clock hour for time-of-day speeds and closures.
    redispatch : bool, default False
        Priority-1 redispatch rule (see :mod:`dispatch.decide.assign`).
    redispatch_min_gain_s : float
        Threshold of that rule, seconds.
    routes : bool, default True
        Compute each chosen unit's route (and the hospital route).
    n_alternatives : int, default 2
        Next-fastest free units listed per requirement (0 for none).
    coverage : CoverageState, optional
        Opt-in coverage-hole warning (:mod:`dispatch.plan.warning`): for each requirement, every
        free unit it accepts that the state knows gets the coverage of its class before and after
        sending it, and a least-disruption alternative is named when one arrives within
        ``coverage_max_delay_s`` of the fastest. It warns, never overrides: the recommended units
        are the same with or without it. The state is not changed (the caller marks the units sent
        busy with ``coverage.set_available``).
    coverage_max_delay_s : float, default 30
        Largest extra ETA of a least-disruption alternative, seconds.
    coverage_zone_threshold : float, default 0.8
        A zone is reported when its covered share falls below this share.
    location_radius_m : float, default 0
        Uncertainty of the caller's location, metres: > 0 ranks and fills the run card by the
        expected ETA over points sampled in that disc (:func:`dispatch.decide.location.disc_etas`;
        ``Recommendation.location`` holds the per-unit worst and best); routes go to the centre.

    Returns
    -------
    Recommendation

    Raises
    ------
    IncidentError
        Bad incident or scene off the road network.
    FleetError
        Empty fleet, duplicate ids, unknown class.
    RunCardError
        No run card for the incident type.
    """
    if not isinstance(incident, Incident):
        raise IncidentError(f"incident must be an Incident, got {type(incident).__name__}")
    if (
        isinstance(n_alternatives, bool)
        or not isinstance(n_alternatives, int)
        or n_alternatives < 0
    ):
        raise IncidentError(f"n_alternatives must be an integer >= 0, got {n_alternatives!r}")
    fleet = units_from_records(units)
    hour = check_hour(hour)
    cards = default_run_cards() if run_cards is None else run_cards
    card = cards.card(incident.type)
    check_scenes(net, [incident])
    disc = None
    if location_radius_m:
        disc = disc_etas(net, fleet, incident.point, location_radius_m, hour=hour)
        eta, drive, problems = (
            disc.expected_eta_s[:, None],
            disc.expected_drive_s[:, None],
            disc.problems,
        )
    else:
        eta, drive, problems = eta_matrix(net, fleet, [incident.point], hour=hour)
    res = assign_matrix(
        eta,
        [incident],
        fleet,
        cards,
        drive_s=drive,
        compare_greedy=False,
        redispatch=redispatch,
        redispatch_min_gain_s=redispatch_min_gain_s,
    )
    plan = res.plan.incidents[0]
    chosen = {a.unit for a in plan.units}
    by_id = {u.id: u for u in fleet}
    if routes:
        routed = []
        for a in plan.units:
            unit = by_id[a.unit]
            if a.walk_s > 0:  # the route ends where the crew leaves the vehicle
                row = {"id": unit.id, "vehicle": unit.vehicle, "lat": unit.point[0],
                       "lon": unit.point[1], "turnout_s": unit.effective_turnout_s}  # fmt: skip
                (best,) = net.fastest_units(incident.point, [row], k=1, hour=hour, routes=True)
                routed.append(replace(a, route=best.route, walk_coords=best.walk_coords))
                continue
            rt = net.route(unit.point, incident.point, vehicle=unit.vehicle, hour=hour)
            routed.append(replace(a, route=rt))
        plan = replace(plan, units=tuple(routed))
    free = [UNIT_STATUSES[u.status] for u in fleet]  # Unit.dispatchable, once per unit
    etas = eta[:, 0].tolist()
    alts: list[Alternative] = []
    if n_alternatives:
        for req in card.requirements:
            cands = sorted(
                (etas[u], unit.id, unit.vehicle)
                for u, unit in enumerate(fleet)
                if free[u]
                and unit.id not in chosen
                and unit.vehicle in req.accepts
                and math.isfinite(etas[u])
            )
            alts.extend(Alternative(req.cls, uid, v, e) for e, uid, v in cands[:n_alternatives])
    if hospitals is not None and incident.kind.needs_hospital:
        cap = incident.kind.hospital_capability or "general"
        try:
            hc = nearest_capable_hospital(
                net, incident.point, cap, hospitals, hour=hour, route=routes
            )
            plan = replace(plan, hospital=hc)
        except NoHospitalError as exc:
            plan = replace(plan, hospital_problem=str(exc))
    advice: list[CoverageAdvice] = []
    if coverage is not None:
        from dispatch.plan.warning import coverage_warning

        for req in card.requirements:
            pairs = [
                (unit.id, etas[u])
                for u, unit in enumerate(fleet)
                if free[u]
                and unit.vehicle in req.accepts
                and unit.id in coverage.index
                and math.isfinite(etas[u])
            ]
            w = coverage_warning(coverage, pairs, max_delay_s=coverage_max_delay_s,
                                 zone_threshold=coverage_zone_threshold)  # fmt: skip
            advice.append(CoverageAdvice(req.cls, w))
    return Recommendation(
        plan=plan,
        alternatives=tuple(alts),
        objective=res.plan.objective,
        solver=res.plan.method,
        warnings=tuple(
            f"unit {uid!r} treated as unreachable: {msg}" for uid, msg in problems.items()
        ),
        coverage=tuple(advice),
        location=disc,
    )
