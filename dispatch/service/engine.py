"""The one place where the service calls the library (the adapter).

Everything the HTTP service needs from the routing engine and the decision layer goes through
:class:`Engine`: loading the network, the fleet handle, recommendations, surge assignment, routes,
travel-time matrices, closures and the road network as GeoJSON. When the library's API changes
(closures as values, a new fleet type), only this module changes.

Computations (:meth:`Engine.recommend`, :meth:`Engine.assign`, ...) run one at a time in the
service's engine lane (:mod:`dispatch.service.lane`): the fleet handle and the coverage state are
theirs. They take a snapshot of the state (units, and the closure set: an immutable value) and
answer on exactly it, so state changes (unit updates, closures: the network swaps its closure set
atomically) never wait for them (:mod:`dispatch.service.state`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import dispatch
from dispatch.decide.assign import assign, check_scenes
from dispatch.decide.hospitals import Hospital, read_hospitals
from dispatch.decide.incidents import (
    INCIDENT_TYPES,
    UNIT_STATUSES,
    VEHICLE_CLASSES,
    Incident,
    IncidentError,
    Unit,
    read_fleet,
)
from dispatch.decide.location import DiscETA, disc_etas, disc_samples
from dispatch.decide.recommend import Recommendation, recommend
from dispatch.decide.runcards import RunCards, default_run_cards, load_run_cards
from dispatch.errors import ClosureError, DispatchError, PointError

__all__ = [
    "INCIDENT_TYPES",
    "UNIT_STATUSES",
    "VEHICLE_CLASSES",
    "DispatchError",
    "Engine",
    "Incident",
    "LocationAnswer",
    "Unit",
    "disc_samples",
    "load_units",
]

#: Coverage-hole warning defaults of the service (the same as ``dispatch recommend``'s).
COVERAGE_TARGET_S = 480.0
COVERAGE_CELL_M = 400.0


def load_units(path: str | Path) -> list[Unit]:
    """Read the fleet CSV the service starts from (``dispatch.decide.incidents.read_fleet``)."""
    return read_fleet(path)


def unit_from_dict(data: Mapping[str, Any], *, where: str = "unit") -> Unit:
    """A validated :class:`Unit` from its JSON form (raises ``FleetError`` naming the field)."""
    return Unit.from_dict(data, where=where)


def incident_from_dict(data: Mapping[str, Any], *, where: str = "incident") -> Incident:
    """A validated :class:`Incident` (raises ``IncidentError`` naming the field)."""
    return Incident.from_dict(data, where=where)


@dataclass(frozen=True)
class LocationAnswer:
    """How the caller's location was used: resolved disc, or unresolved (ranked for the centre)."""

    lat: float
    lon: float
    radius_m: float
    confidence: float | None
    resolved: bool
    samples: int
    max_radius_m: float

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "lat": self.lat,
            "lon": self.lon,
            "radius_m": self.radius_m,
            "confidence": self.confidence,
            "resolved": self.resolved,
            "samples": self.samples,
            "max_radius_m": self.max_radius_m,
            "method": (
                "point"
                if self.samples <= 1
                else f"expected ETA over {self.samples} points sampled in the disc, each snapped"
            ),
        }


def _num(x: float, nd: int = 1) -> float | None:
    return round(float(x), nd) if math.isfinite(x) else None


class Engine:
    """The road network, run cards and hospitals of one running service.

    Parameters
    ----------
    map_name : str
        Map short name or path (``dispatch.load_network``).
    hospitals, run_cards : path, optional
        Hospitals CSV and run-card TOML (default: the built-in run cards).
    coverage : bool, default False
        Add the coverage-hole warning to every recommendation (:mod:`dispatch.plan.warning`):
        the share of demand (a grid of `coverage_cell_m` over the roads) each candidate's class
        covers within `coverage_target_s` before and after sending it.
    coverage_target_s, coverage_cell_m : float
        Coverage target (turnout included; default 480 s) and demand grid cell (default 400 m).
    """

    def __init__(
        self,
        map_name: str,
        *,
        hospitals: str | Path | None = None,
        run_cards: str | Path | None = None,
        coverage: bool = False,
        coverage_target_s: float = COVERAGE_TARGET_S,
        coverage_cell_m: float = COVERAGE_CELL_M,
    ) -> None:
        self.map_name = str(map_name)
        self.net: Any = dispatch.load_network(
            map_name
        )  # methods attached at import (see api-contract)
        self.hospitals: list[Hospital] | None = (
            None if hospitals is None else read_hospitals(hospitals)
        )
        self.run_cards: RunCards = (
            default_run_cards() if run_cards is None else load_run_cards(run_cards)
        )
        self._fleet: Any = None
        self._fleet_units: list[Unit] = []  # the units the fleet handle was last synced with
        self.coverage = bool(coverage)
        self.coverage_target_s = float(coverage_target_s)
        self.coverage_cell_m = float(coverage_cell_m)
        self._coverage: Any = None
        self._coverage_key: tuple[tuple[str, str], ...] = ()
        self._coverage_pos: dict[str, tuple[float, float]] = {}
        self._demand: Any = None
        self._closure_ids: dict[str, int] = {}
        self._network_geojson: dict[str, Any] | None = None

    # --- facts ---------------------------------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        """Map name, size and bounding box."""
        net = self.net
        return {
            "map": str(net.name),
            "n_nodes": int(net.n_nodes),
            "n_arcs": int(net.n_arcs),
            "bbox": [float(x) for x in net.bbox],
        }

    def map_time_zone(self) -> str | None:
        """IANA time zone of a shipped map (by short name or file name); None when unknown."""
        from dispatch.roads.osm import MAP_FILES
        from dispatch.service.clock import MAP_TIME_ZONES

        if self.map_name in MAP_TIME_ZONES:
            return MAP_TIME_ZONES[self.map_name]
        file_name = Path(self.map_name).name
        short = next((k for k, f in MAP_FILES.items() if f == file_name), None)
        return None if short is None else MAP_TIME_ZONES.get(short)

    def incident_types(self) -> list[dict[str, Any]]:
        """Incident types with hotline, default priority, description and run card."""
        return [
            {
                "type": name,
                "service": kind.service,
                "default_priority": kind.default_priority,
                "description": kind.description,
                "run_card": [r.to_dict() for r in self.run_cards.card(name).requirements],
            }
            for name, kind in INCIDENT_TYPES.items()
        ]

    def network_geojson(self) -> dict[str, Any]:
        """The road network as GeoJSON (lon/lat): one MultiLineString per access level.

        ``roads``: roads a fire engine may use; ``narrow``: roads only smaller classes may use
        (alleys, service roads). Each two-way road appears once.
        """
        if self._network_geojson is not None:
            return self._network_geojson
        net = self.net
        ptr, glat, glon = net.geom_ptr, net.geom_lat, net.geom_lon
        twin = np.asarray(net.arc_twin)
        engine_ok = np.asarray(net.allowed("fire_engine"), dtype=bool)
        any_ok = np.zeros(net.n_arcs, dtype=bool)
        for v in VEHICLE_CLASSES:
            any_ok |= np.asarray(net.allowed(v), dtype=bool)
        lines: dict[str, list[list[list[float]]]] = {"roads": [], "narrow": []}
        for a in range(int(net.n_arcs)):
            t = int(twin[a])
            if 0 <= t < a:  # the other direction of the same road was drawn
                continue
            ok_e = bool(engine_ok[a] or (t >= 0 and engine_ok[t]))
            ok_any = bool(any_ok[a] or (t >= 0 and any_ok[t]))
            if not ok_any:
                continue
            sl = slice(int(ptr[a]), int(ptr[a + 1]))
            coords = [
                [round(float(x), 6), round(float(y), 6)]
                for x, y in zip(glon[sl], glat[sl], strict=True)
            ]
            lines["roads" if ok_e else "narrow"].append(coords)
        self._network_geojson = {
            "type": "FeatureCollection",
            "features": [
                {
                    "type": "Feature",
                    "geometry": {"type": "MultiLineString", "coordinates": coords},
                    "properties": {"kind": kind, "map": str(net.name)},
                }
                for kind, coords in lines.items()
            ],
        }
        return self._network_geojson

    # --- start-up ------------------------------------------------------------------------------

    def warm_hours(self) -> list[float | None]:
        """One clock hour in each speed band, one outside every band, and ``None`` (no clock)."""
        settings = self.net.engine.settings
        hours: list[float | None] = [float(b.start_h) for b in settings.bands]
        off = next((float(h) for h in range(24) if settings.band_index(h) < 0), None)
        if off is not None:
            hours.append(off)
        return [*hours, None]

    def warm(
        self, units: Sequence[Unit], *, closures: Any = None, hours: Sequence[float | None] = ()
    ) -> dict[str, Any]:
        """Build now what the first requests would otherwise build while a caller waits.

        The CCH hierarchy (from the disk cache, or ordered and contracted), its customization for
        every class at each of `hours` (default :meth:`warm_hours`: every speed band, so the clock
        crossing into the rush hour customizes nothing inside a request), the compiled kernels,
        the fleet handle, the walk network and the run-card solver: one full and one ranked answer
        for an incident at each unit class's first unit, at each hour. Nothing is stored. Returns
        what was done (hours, answers, seconds).
        """
        import time

        t0 = time.perf_counter()
        net = self._view(closures)
        eng = net.engine
        eng.hierarchy()
        todo = list(hours) if hours else self.warm_hours()
        closure_set = net.closure_set
        for hour in todo:
            for v in VEHICLE_CLASSES:
                w = eng.weights(v, hour, closure_set)
                if np.isfinite(w).any():
                    eng.metric(w)
        answers = 0
        seen: set[str] = set()
        scenes = []
        for u in units:
            if u.vehicle not in seen:
                seen.add(u.vehicle)
                scenes.append(u)
        for hour in todo:
            for n, u in enumerate(scenes):
                kind = "structure_fire" if n % 2 else "cardiac_arrest"
                inc = Incident(f"warm-up-{n}", u.lat, u.lon, kind)
                for plan in (True, False):
                    try:
                        self.recommend(inc, units, closures=closures, hour=hour, plan=plan)
                    except DispatchError:
                        continue  # a scene no class reaches: warmed by the others
                    answers += 1
        return {
            "hours": todo,
            "answers": answers,
            "seconds": round(time.perf_counter() - t0, 3),
        }

    # --- fleet handle --------------------------------------------------------------------------

    def sync_fleet(self, units: Sequence[Unit]) -> None:
        """Bring the in-memory ``Fleet`` handle up to date with `units` (moves, availability).

        The service's snapshots share the ``Unit`` objects of the units that did not change
        (:meth:`Service.fleet <dispatch.service.state.Service.fleet>`), so only the units that are
        not the objects of the last sync are compared: a move or an availability change updates
        the handle, a new id, class or turnout rebuilds it.
        """
        last = self._fleet_units
        if self._fleet is not None and len(units) == len(last):
            changed = [i for i, (old, new) in enumerate(zip(last, units, strict=True))
                       if old is not new]  # fmt: skip
            if all(
                last[i].id == units[i].id
                and last[i].vehicle == units[i].vehicle
                and last[i].effective_turnout_s == units[i].effective_turnout_s
                for i in changed
            ):
                for i in changed:
                    old, new = last[i], units[i]
                    if (old.lat, old.lon) != (new.lat, new.lon):
                        self._fleet.move(new.id, new.lat, new.lon)
                    if UNIT_STATUSES[old.status] != UNIT_STATUSES[new.status]:
                        self._fleet.set_available(new.id, UNIT_STATUSES[new.status])
                    last[i] = new  # synced so far (after a failed move, the rest are retried)
                return
        self._fleet = self.net.fleet([self._fleet_record(u) for u in units]) if units else None
        self._fleet_units = list(units)

    @staticmethod
    def _fleet_record(u: Unit) -> dict[str, Any]:
        return {
            "id": u.id,
            "vehicle": u.vehicle,
            "lat": u.lat,
            "lon": u.lon,
            "available": u.dispatchable,
            "turnout_s": u.effective_turnout_s,
        }

    def check_unit(self, unit: Unit) -> None:
        """Raise ``PointError`` if the unit cannot be placed on a road its class may leave by."""
        self.net.snap(unit.point, vehicle=unit.vehicle, role="from")

    # --- decisions -----------------------------------------------------------------------------

    def recommend(
        self,
        incident: Incident,
        units: Sequence[Unit],
        *,
        closures: Any = None,
        radius_m: float = 0.0,
        confidence: float | None = None,
        max_radius_m: float = 300.0,
        hour: float | None = None,
        routes: bool = False,
        k: int = 10,
        plan: bool = True,
    ) -> dict[str, Any]:
        """Recommendation for one incident, the ranked list of free units, and warnings.

        Returns plain JSON-ready data (it may cross a process boundary): ``recommendation``
        (``Recommendation.to_dict()`` or None), ``routes`` (GeoJSON or None), ``recommended``
        (unit ids), ``location``, ``ranked``, ``warnings``.

        `units` and `closures` are a snapshot of the service's state (:meth:`closure_set` taken
        with it): the answer is the library's on exactly that state, whatever changes meanwhile.
        A point location (``radius_m`` 0) is :func:`dispatch.decide.recommend.recommend` and the
        ranked list is ``net.fastest_units`` on the fleet handle; ``plan=False`` skips the
        run-card plan (ranked units only, with their routes if asked). A disc within
        `max_radius_m` is ``recommend(location_radius_m=radius_m)`` (expected ETA over points
        sampled in it, :mod:`dispatch.decide.location`); beyond it the location is unresolved and
        units are ranked for the centre. With a coverage state (``coverage=True`` at start) the
        recommendation carries the coverage-hole warning of each requirement.
        """
        net = self._view(closures)
        warnings: list[str] = []
        resolved = radius_m <= max_radius_m
        if not resolved:
            warnings.append(
                f"location unresolved: radius_m={radius_m:g} exceeds {max_radius_m:g} m; "
                "units ranked for the centre of the disc"
            )
        disc_r = radius_m if radius_m > 0 and resolved else 0.0
        rec: Recommendation | None = None
        n = 1
        if plan:
            rec = recommend(
                net,
                incident,
                units,
                self.run_cards,
                hospitals=self.hospitals,
                hour=hour,
                routes=routes,
                location_radius_m=disc_r,
                coverage=self._coverage_for(units),
            )
            disc = rec.location
        elif disc_r:
            check_scenes(net, [incident])
            disc = disc_etas(net, units, incident.point, disc_r, hour=hour)
        else:
            disc = None
            try:
                net.snap(incident.point, vehicle="ambulance")
            except PointError as exc:
                raise IncidentError(f"incident {incident.id!r}: {exc}") from None
        if disc is not None:
            ranked, n = self._ranked_disc(disc, units, k), disc.samples
            if not plan and disc.problems:
                warnings += [
                    f"unit {u!r} treated as unreachable: {m}" for u, m in disc.problems.items()
                ]
        else:
            ranked = self._ranked_point(net, incident, units, hour, k, routes=routes and not plan)
        loc = LocationAnswer(
            incident.lat, incident.lon, radius_m, confidence, resolved, n, max_radius_m
        )
        return {
            "recommendation": None if rec is None else rec.to_dict(),
            "routes": rec.geojson() if routes and rec is not None else None,
            "recommended": (
                [a.unit for a in rec.units] if rec is not None else [r["unit"] for r in ranked[:1]]
            ),
            "location": loc.to_dict(),
            "ranked": ranked,
            "warnings": warnings + ([] if rec is None else list(rec.warnings)),
        }

    def sync_closures(self, specs: Sequence[Mapping[str, Any]]) -> None:
        """Make the applied closures exactly `specs` (a snapshot's records, by id): lift the
        others, apply the missing ones (the engine of a worker process follows the service's)."""
        want = {str(c["id"]): c for c in specs}
        for sid in [s for s in self._closure_ids if s not in want]:
            self.remove_closure(sid)
        for sid, spec in want.items():
            if sid not in self._closure_ids:
                self.add_closure(spec)

    def closure_set(self) -> Any:
        """The network's closures now (an immutable value: a snapshot for :meth:`recommend`)."""
        return self.net.closure_set

    def _view(self, closures: Any) -> Any:
        """The network with the closures of a snapshot (the network itself for ``None``)."""
        return self.net if closures is None else self.net.with_closures(closures)

    def _ranked_point(
        self,
        net: Any,
        incident: Incident,
        units: Sequence[Unit],
        hour: float | None,
        k: int,
        *,
        routes: bool = False,
    ) -> list[dict[str, Any]]:
        self.sync_fleet(units)
        if self._fleet is None or not any(UNIT_STATUSES[u.status] for u in units):
            return []
        best = net.fastest_units(incident.point, self._fleet, k=k, hour=hour, routes=routes)
        out = []
        for b in best:
            d: dict[str, Any] = {
                "unit": b.unit,
                "vehicle": b.vehicle,
                "eta_s": round(b.eta_s, 1),
                "drive_s": round(b.drive_s, 1),
                "turnout_s": round(b.turnout_s, 1),
            }
            if b.reach != "drive":  # the crew covers the last part on foot (dispatch.routing.reach)
                d.update(reach=b.reach, walk_s=round(b.walk_s, 1), walk_m=round(b.walk_m, 1),
                         access_point=b.access_point)  # fmt: skip
            if b.route is not None:
                d["route"] = b.route.geojson()
            out.append(d)
        return out

    @staticmethod
    def _ranked_disc(disc: DiscETA, units: Sequence[Unit], k: int) -> list[dict[str, Any]]:
        """Free units by expected ETA over the disc, with the worst and best case."""
        exp_eta, exp_drive = disc.expected_eta_s, disc.expected_drive_s
        worst, best = disc.worst_eta_s, disc.best_eta_s
        order = sorted(
            (float(exp_eta[i]), u.id, i)
            for i, u in enumerate(units)
            if u.dispatchable and math.isfinite(exp_eta[i])
        )
        return [
            {
                "unit": units[i].id,
                "vehicle": units[i].vehicle,
                "eta_s": round(e, 1),
                "drive_s": round(float(exp_drive[i]), 1),
                "turnout_s": round(units[i].effective_turnout_s, 1),
                "eta_worst_s": _num(float(worst[i])),
                "eta_best_s": _num(float(best[i])),
            }
            for e, _, i in order[:k]
        ]

    # --- coverage-hole warning -----------------------------------------------------------------

    def _coverage_for(self, units: Sequence[Unit]) -> Any:
        """The coverage state brought up to date with `units` (None when the warning is off).

        Built on the first use over a grid demand (``coverage_cell_m``) with each unit's turnout
        then; a moved unit's reach is recomputed (one road search), availability only changes the
        counts; a new or removed unit (or a changed class) rebuilds it.
        """
        if not self.coverage:
            return None
        from dispatch.plan.demand import grid_demand
        from dispatch.plan.warning import CoverageState

        key = tuple((u.id, u.vehicle) for u in units)
        if self._coverage is None or key != self._coverage_key:
            records = [
                {"id": u.id, "vehicle": u.vehicle, "lat": u.lat, "lon": u.lon,
                 "turnout_s": u.effective_turnout_s, "available": u.dispatchable}
                for u in units
            ]  # fmt: skip
            if self._demand is None:
                self._demand = grid_demand(
                    self.net, cell_m=self.coverage_cell_m, vehicles=list(VEHICLE_CLASSES)
                )
            self._coverage = CoverageState.build(
                self.net, records, self._demand, target_s=self.coverage_target_s
            )
            self._coverage_key = key
            self._coverage_pos = {u.id: (u.lat, u.lon) for u in units}
            return self._coverage
        for u in units:
            if self._coverage_pos.get(u.id) != (u.lat, u.lon):
                self._coverage.move(u.id, u.lat, u.lon)
                self._coverage_pos[u.id] = (u.lat, u.lon)
            self._coverage.set_available(u.id, u.dispatchable)
        return self._coverage

    def assign(
        self,
        incidents: Sequence[Incident],
        units: Sequence[Unit],
        *,
        hour: float | None = None,
        objective: str = "eta",
        routes: bool = False,
        time_limit_s: float = 5.0,
        closures: Any = None,
    ) -> dict[str, Any]:
        """Surge assignment (:func:`dispatch.decide.assign.assign`), JSON form (+ GeoJSON)."""
        res = assign(
            self._view(closures),
            incidents,
            units,
            self.run_cards,
            hospitals=self.hospitals,
            hour=hour,
            objective=objective,
            routes=routes,
            time_limit_s=time_limit_s,
        )
        out = res.to_dict()
        if routes:
            out["geojson"] = res.geojson()
        return out

    def route(
        self,
        origin: tuple[float, float],
        destination: tuple[float, float],
        *,
        vehicle: str,
        hour: float | None = None,
        closures: Any = None,
    ) -> dict[str, Any]:
        """Fastest route: ``eta_s``, ``length_m``, GeoJSON Feature (``null`` ETA if unreachable)."""
        r = self._view(closures).route(origin, destination, vehicle=vehicle, hour=hour)
        reachable = math.isfinite(r.eta_s)
        return {
            "vehicle": vehicle,
            "reachable": reachable,
            "eta_s": _num(r.eta_s, 3),
            "length_m": _num(r.length_m) if reachable else None,
            "geojson": r.geojson() if reachable else None,
        }

    def travel_times(
        self,
        origins: Sequence[tuple[float, float]],
        destinations: Sequence[tuple[float, float]],
        *,
        vehicle: str,
        hour: float | None = None,
        closures: Any = None,
    ) -> list[list[float | None]]:
        """Travel-time matrix in seconds (``None`` = unreachable)."""
        tt = np.asarray(
            self._view(closures).travel_times(
                np.asarray(origins, dtype=float),
                np.asarray(destinations, dtype=float),
                vehicle=vehicle,
                hour=hour,
            ),
            dtype=float,
        )
        return [[_num(float(x), 3) for x in row] for row in tt]

    # --- closures ------------------------------------------------------------------------------

    def add_closure(self, spec: Mapping[str, Any]) -> int:
        """Apply one closure spec (the service's record); return how many arcs it closes.

        A spec has ``id`` and either ``geometry`` (GeoJSON Polygon/MultiPolygon) or ``osm_way_ids``,
        plus ``vehicles``, ``start_h``, ``end_h``, ``label``. Raises ``ClosureError``.
        """
        sid = str(spec["id"])
        if sid in self._closure_ids:
            raise ClosureError(f"closure {sid!r} is already applied")
        kw: dict[str, Any] = {
            "vehicles": spec.get("vehicles"),
            "start_h": spec.get("start_h"),
            "end_h": spec.get("end_h"),
            "label": str(spec.get("label") or sid),
        }
        if spec.get("geometry") is not None:
            cid = self.net.close_polygon(dict(spec["geometry"]), **kw)
        else:
            cid = self.net.close_ways([int(w) for w in spec["osm_way_ids"]], **kw)
        self._closure_ids[sid] = cid
        for c in self.net.closures:
            if c.id == cid:
                return len(c.arcs)
        return 0  # pragma: no cover - the closure was just added

    def remove_closure(self, closure_id: str) -> None:
        """Lift a closure applied with :meth:`add_closure`."""
        cid = self._closure_ids.pop(str(closure_id))
        self.net.reopen(cid)
