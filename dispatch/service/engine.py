"""The one place where the service calls the library (the adapter).

Everything the HTTP service needs from the routing engine and the decision layer goes through
:class:`Engine`: loading the network, the fleet handle, recommendations, surge assignment, routes,
travel-time matrices, closures and the road network as GeoJSON. When the library's API changes
(closures as values, a new fleet type), only this module changes.

The engine is not thread-safe (the network keeps per-network scratch space); the service calls it
under its state lock (:mod:`dispatch.service.state`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

import dispatch
from dispatch.decide.assign import assign, assign_matrix, check_scenes, eta_matrix
from dispatch.decide.hospitals import (
    Hospital,
    NoHospitalError,
    nearest_capable_hospital,
    read_hospitals,
)
from dispatch.decide.incidents import (
    INCIDENT_TYPES,
    UNIT_STATUSES,
    VEHICLE_CLASSES,
    Incident,
    IncidentError,
    Unit,
    read_fleet,
)
from dispatch.decide.recommend import Alternative, Recommendation, recommend
from dispatch.decide.runcards import RunCards, default_run_cards, load_run_cards
from dispatch.errors import ClosureError, DispatchError, PointError
from dispatch.geo import EARTH_RADIUS_M

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

#: Points sampled in a caller-location disc (plus the centre).
DISC_SAMPLES = 16


def load_units(path: str | Path) -> list[Unit]:
    """Read the fleet CSV the service starts from (``dispatch.decide.incidents.read_fleet``)."""
    return read_fleet(path)


def unit_from_dict(data: Mapping[str, Any], *, where: str = "unit") -> Unit:
    """A validated :class:`Unit` from its JSON form (raises ``FleetError`` naming the field)."""
    return Unit.from_dict(data, where=where)


def incident_from_dict(data: Mapping[str, Any], *, where: str = "incident") -> Incident:
    """A validated :class:`Incident` (raises ``IncidentError`` naming the field)."""
    return Incident.from_dict(data, where=where)


def disc_samples(lat: float, lon: float, radius_m: float, n: int = DISC_SAMPLES) -> np.ndarray:
    """The centre and `n` points spread evenly over a disc (Vogel's sunflower spiral), ``(n+1, 2)``.

    Deterministic: the same disc gives the same points. Each sample stands for an equal area.

    >>> pts = disc_samples(16.06, 108.22, 100.0, n=4)
    >>> pts.shape, bool(np.allclose(pts[0], [16.06, 108.22]))
    ((5, 2), True)
    """
    i = np.arange(n, dtype=float)
    r = radius_m * np.sqrt((i + 0.5) / n)
    theta = i * math.pi * (3.0 - math.sqrt(5.0))
    dlat = np.degrees(r * np.cos(theta) / EARTH_RADIUS_M)
    dlon = np.degrees(r * np.sin(theta) / (EARTH_RADIUS_M * math.cos(math.radians(lat))))
    pts = np.column_stack([lat + dlat, lon + dlon])
    return np.vstack([[lat, lon], pts])


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
    """

    def __init__(
        self,
        map_name: str,
        *,
        hospitals: str | Path | None = None,
        run_cards: str | Path | None = None,
    ) -> None:
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
        self._fleet_key: tuple[tuple[str, str, float], ...] = ()
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

    # --- fleet handle --------------------------------------------------------------------------

    def sync_fleet(self, units: Sequence[Unit]) -> None:
        """Bring the in-memory ``Fleet`` handle up to date with `units` (moves, availability)."""
        key = tuple((u.id, u.vehicle, u.effective_turnout_s) for u in units)
        if self._fleet is None or key != self._fleet_key:
            self._fleet = self.net.fleet([self._fleet_record(u) for u in units]) if units else None
            self._fleet_key = key
            return
        current = {r["id"]: r for r in self._fleet.units}
        for u in units:
            r = current[u.id]
            if (r["lat"], r["lon"]) != (u.lat, u.lon):
                self._fleet.move(u.id, u.lat, u.lon)
            if bool(r["available"]) != u.dispatchable:
                self._fleet.set_available(u.id, u.dispatchable)

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
        radius_m: float = 0.0,
        confidence: float | None = None,
        max_radius_m: float = 300.0,
        hour: float | None = None,
        routes: bool = False,
        k: int = 10,
        plan: bool = True,
    ) -> tuple[Recommendation | None, LocationAnswer, list[dict[str, Any]], list[str]]:
        """Recommendation for one incident, the ranked list of free units, and warnings.

        A point location (``radius_m`` 0) is :func:`dispatch.decide.recommend.recommend` and the
        ranked list is ``net.fastest_units`` on the fleet handle; ``plan=False`` skips the
        run-card plan (no recommendation; ranked units only, with their routes if asked). A disc within `max_radius_m`
        ranks by expected ETA over points sampled in it (each snapped); beyond it the location is
        unresolved and units are ranked for the centre.
        """
        warnings: list[str] = []
        resolved = radius_m <= max_radius_m
        if not resolved:
            warnings.append(
                f"location unresolved: radius_m={radius_m:g} exceeds {max_radius_m:g} m; "
                "units ranked for the centre of the disc"
            )
        rec: Recommendation | None
        if radius_m > 0 and resolved:
            rec, ranked, n = self._recommend_disc(incident, units, radius_m, hour, routes, k)
            if not plan:
                rec = None
        elif not plan:
            try:
                self.net.snap(incident.point, vehicle="ambulance")
            except PointError as exc:
                raise IncidentError(f"incident {incident.id!r}: {exc}") from None
            ranked = self._ranked_point(incident, units, hour, k, routes=routes)
            rec, n = None, 1
        else:
            rec = recommend(
                self.net,
                incident,
                units,
                self.run_cards,
                hospitals=self.hospitals,
                hour=hour,
                routes=routes,
            )
            ranked = self._ranked_point(incident, units, hour, k)
            n = 1
        loc = LocationAnswer(
            incident.lat, incident.lon, radius_m, confidence, resolved, n, max_radius_m
        )
        return rec, loc, ranked, warnings + ([] if rec is None else list(rec.warnings))

    def _ranked_point(
        self,
        incident: Incident,
        units: Sequence[Unit],
        hour: float | None,
        k: int,
        *,
        routes: bool = False,
    ) -> list[dict[str, Any]]:
        self.sync_fleet(units)
        if self._fleet is None or not any(u.dispatchable for u in units):
            return []
        best = self.net.fastest_units(incident.point, self._fleet, k=k, hour=hour, routes=routes)
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

    def _recommend_disc(
        self,
        incident: Incident,
        units: Sequence[Unit],
        radius_m: float,
        hour: float | None,
        routes: bool,
        k: int,
    ) -> tuple[Recommendation, list[dict[str, Any]], int]:
        net = self.net
        check_scenes(net, [incident])
        classes = sorted({u.vehicle for u in units})
        pts = []
        for p in disc_samples(incident.lat, incident.lon, radius_m):
            try:
                for v in classes:
                    net.snap((float(p[0]), float(p[1])), vehicle=v)
            except PointError:
                continue  # a sample off every road (a river, a park): not a place to drive to
            pts.append((float(p[0]), float(p[1])))
        if not pts:  # no sample (not even the centre) reachable by every class: the centre alone
            pts = [incident.point]
        eta, drive, problems = eta_matrix(net, units, pts, hour=hour)
        exp_eta = eta.mean(axis=1)
        exp_drive = drive.mean(axis=1)
        worst = eta.max(axis=1)
        res = assign_matrix(
            exp_eta[:, None],
            [incident],
            units,
            self.run_cards,
            drive_s=exp_drive[:, None],
            compare_greedy=False,
        )
        plan = res.plan.incidents[0]
        by_id = {u.id: (i, u) for i, u in enumerate(units)}
        if routes:
            routed = [
                replace(
                    a,
                    route=net.route(
                        by_id[a.unit][1].point, incident.point, vehicle=a.vehicle, hour=hour
                    ),
                )
                for a in plan.units
            ]
            plan = replace(plan, units=tuple(routed))
        chosen = {a.unit for a in plan.units}
        alts: list[Alternative] = []
        for req in self.run_cards.card(incident.type).requirements:
            cands = sorted(
                (float(exp_eta[i]), u.id, u.vehicle)
                for i, u in enumerate(units)
                if u.dispatchable
                and u.id not in chosen
                and u.vehicle in req.accepts
                and math.isfinite(exp_eta[i])
            )
            alts.extend(Alternative(req.cls, uid, v, e) for e, uid, v in cands[:2])
        if self.hospitals is not None and incident.kind.needs_hospital:
            cap = incident.kind.hospital_capability or "general"
            try:
                hc = nearest_capable_hospital(
                    net, incident.point, cap, self.hospitals, hour=hour, route=routes
                )
                plan = replace(plan, hospital=hc)
            except NoHospitalError as exc:
                plan = replace(plan, hospital_problem=str(exc))
        rec = Recommendation(
            plan=plan,
            alternatives=tuple(alts),
            objective=res.plan.objective,
            solver=res.plan.method,
            warnings=tuple(
                f"unit {uid!r} treated as unreachable: {msg}" for uid, msg in problems.items()
            ),
        )
        order = sorted(
            (float(exp_eta[i]), u.id, i)
            for i, u in enumerate(units)
            if u.dispatchable and math.isfinite(exp_eta[i])
        )
        ranked = [
            {
                "unit": units[i].id,
                "vehicle": units[i].vehicle,
                "eta_s": round(e, 1),
                "drive_s": round(float(exp_drive[i]), 1),
                "turnout_s": round(units[i].effective_turnout_s, 1),
                "eta_worst_s": _num(float(worst[i])),
                "eta_best_s": _num(float(eta[i].min())),
            }
            for e, _, i in order[:k]
        ]
        return rec, ranked, len(pts)

    def assign(
        self,
        incidents: Sequence[Incident],
        units: Sequence[Unit],
        *,
        hour: float | None = None,
        objective: str = "eta",
        routes: bool = False,
        time_limit_s: float = 5.0,
    ) -> dict[str, Any]:
        """Surge assignment (:func:`dispatch.decide.assign.assign`), JSON form (+ GeoJSON)."""
        res = assign(
            self.net,
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
    ) -> dict[str, Any]:
        """Fastest route: ``eta_s``, ``length_m``, GeoJSON Feature (``null`` ETA if unreachable)."""
        r = self.net.route(origin, destination, vehicle=vehicle, hour=hour)
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
    ) -> list[list[float | None]]:
        """Travel-time matrix in seconds (``None`` = unreachable)."""
        tt = np.asarray(
            self.net.travel_times(
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
