"""From a scenario to simulation runs: stations, units and hospitals on the map, closures, policies.

:func:`run_scenario` runs one replication of a scenario under one or several policies on the same
calls (common random numbers); :mod:`dispatch.sim.parallel` runs many replications.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from dispatch.model import HOSPITAL_CAPABILITIES, Hospital, turnout_for
from dispatch.sim.policies import check_policy
from dispatch.sim.records import SimResult
from dispatch.sim.scenario import (
    MAX_EXPECTED_CALLS,
    MAX_HORIZON_H,
    MAX_REPLICATIONS,
    Scenario,
)
from dispatch.sim.simulation import Simulation
from dispatch.sim.units import SimulationError, SimUnit

__all__ = [
    "MAX_EXPECTED_CALLS",
    "MAX_HORIZON_H",
    "MAX_REPLICATIONS",
    "check_run_limits",
    "World",
    "apply_closures",
    "load_scenario_network",
    "resolve_world",
    "run_scenario",
]


# Limits of a run, checked before any work: the scenario reader's limits (one source), a horizon
# of at most 10 years, at most 1,000 replications, at most 2,000,000 expected calls per replication
# (about 500 MB of records; a year of Campo Grande is 100,000).


def check_run_limits(scenario: Scenario, replications: int | None = None) -> None:
    """Raise :class:`SimulationError` when a run would exceed :data:`MAX_HORIZON_H`,
    :data:`MAX_REPLICATIONS` or :data:`MAX_EXPECTED_CALLS` (the message names the limit)."""
    reps = scenario.replications if replications is None else replications
    h = scenario.horizon_h
    if not (math.isfinite(h) and 0 < h <= MAX_HORIZON_H):
        raise SimulationError(f"horizon_h={h!r} must be in (0, {MAX_HORIZON_H:g}] hours (10 years)")
    if not 1 <= reps <= MAX_REPLICATIONS:
        raise SimulationError(f"replications={reps!r} must be in [1, {MAX_REPLICATIONS:,}]")
    expected = sum(t.calls_per_hour for t in scenario.incident_types) * h
    if not expected <= MAX_EXPECTED_CALLS:
        raise SimulationError(
            f"{scenario.name}: {expected:,.0f} expected calls per replication, above the limit "
            f"of {MAX_EXPECTED_CALLS:,} (shorten the horizon or lower the call rates)"
        )


@dataclass(frozen=True)
class World:
    """What a scenario resolves to on its map, shared by every policy and replication.

    Attributes
    ----------
    units : tuple of SimUnit
    hospitals : tuple of Hospital
    stations : dict of str to (lat, lon)
    segments : dispatch.sim.demand.RoadSegments
    areas : dispatch.sim.demand.Areas
    node_coords : (lat, lon) arrays or None
    bbox : (min_lat, min_lon, max_lat, max_lon)
    closures : tuple of dict
        ``label``, ``start_h``, ``end_h`` and GeoJSON ``geometry`` (None for way closures).
    """

    units: tuple[SimUnit, ...]
    hospitals: tuple[Hospital, ...]
    stations: Mapping[str, tuple[float, float]]
    segments: Any
    areas: Any
    node_coords: tuple[np.ndarray, np.ndarray] | None
    bbox: tuple[float, float, float, float]
    closures: tuple[Mapping[str, Any], ...] = ()


def _facility_name(f: Any) -> str:
    name = str(getattr(f, "name", "") or "").strip()
    if not name or name == "(unnamed)":
        return f"{f.kind} ({f.osm_id})"
    return name


def resolve_world(scenario: Scenario, net: Any) -> World:
    """Resolve a scenario's stations, units, hospitals, demand areas on a network.

    Raises
    ------
    dispatch.sim.scenario.ScenarioError
        A unit at an unknown station, a map without the facilities asked for, and so on.
    """
    from dispatch.sim.demand import areas_for, road_segments
    from dispatch.sim.scenario import ScenarioError

    where = str(scenario.source) if scenario.source else scenario.name
    stations: dict[str, tuple[float, float]] = {s.name: (s.lat, s.lon) for s in scenario.stations}
    units: list[SimUnit] = []

    def turnout(vehicle: str, override: float | None) -> float:
        return turnout_for(vehicle, turnout_s=override, service_turnout_s=scenario.turnout_s)

    if scenario.map_stations is not None:
        ms = scenario.map_stations
        facs = [f for f in net.facilities if f.kind in ms.kinds]
        if not facs:
            raise ScenarioError(
                f"{where}: map_stations: the map {scenario.map!r} has no {', '.join(ms.kinds)}"
            )
        prefix = {"fire_station": "FS", "ambulance_station": "AS", "hospital": "H", "clinic": "C"}
        for n, f in enumerate(sorted(facs, key=lambda f: (f.kind, str(f.osm_id))), 1):
            name = _facility_name(f)
            if name in stations:
                name = f"{name} ({f.osm_id})"
            stations[name] = (float(f.lat), float(f.lon))
            for vehicle, count in ms.units:
                for k in range(count):
                    uid = f"{prefix.get(f.kind, 'S')}{n}-{vehicle}-{k + 1}"
                    units.append(
                        SimUnit(
                            uid, vehicle, name, float(f.lat), float(f.lon), turnout(vehicle, None)
                        )
                    )
    for i, u in enumerate(scenario.units):
        if u.station not in stations:
            raise ScenarioError(f"{where}: units[{i}].station: {u.station!r} is not a station")
        lat, lon = stations[u.station]
        units.append(SimUnit(u.id, u.vehicle, u.station, lat, lon, turnout(u.vehicle, u.turnout_s)))
    if scenario.fleet_csv is not None:
        from dispatch.decide.incidents import read_fleet

        for fu in read_fleet(scenario.fleet_csv):
            if fu.status == "out_of_service":
                continue
            station = fu.station or f"{fu.id} base"
            stations.setdefault(station, (fu.lat, fu.lon))
            units.append(
                SimUnit(
                    fu.id, fu.vehicle, station, fu.lat, fu.lon, turnout(fu.vehicle, fu.turnout_s)
                )
            )
    ids = [u.id for u in units]
    if len(set(ids)) != len(ids):
        dup = sorted({i for i in ids if ids.count(i) > 1})
        raise ScenarioError(f"{where}: units: duplicate unit ids {', '.join(dup)}")
    hospitals = list(scenario.hospitals)
    if scenario.hospitals_from_map:
        for f in net.facilities:
            if f.kind == "hospital":
                # a map hospital's services are unknown: it takes every patient (ASSUMPTION)
                hospitals.append(
                    Hospital(
                        f"H{len(hospitals):04d}",
                        _facility_name(f),
                        float(f.lat),
                        float(f.lon),
                        HOSPITAL_CAPABILITIES,
                        osm_id=f.osm_id,
                        capabilities_source="map: services unknown, takes every patient (assumption)",
                    )
                )
    seg_cache: dict[tuple[str, ...], Any] = {}

    def segments(vehicles: tuple[str, ...]) -> Any:
        if vehicles not in seg_cache:
            seg_cache[vehicles] = road_segments(net, vehicles=vehicles)
        return seg_cache[vehicles]

    bbox = tuple(float(x) for x in net.bbox)
    areas = areas_for(scenario, bbox)  # type: ignore[arg-type]
    node_coords = None
    if hasattr(net, "node_lat"):
        node_coords = (np.asarray(net.node_lat), np.asarray(net.node_lon))
    closures = []
    for c in scenario.closures:
        geom = None
        if c.geojson is not None:
            import json

            geom = json.loads(c.geojson.read_text(encoding="utf-8"))
        elif c.polygon is not None:
            ring = [[lon, lat] for lat, lon in c.polygon]
            geom = {"type": "Polygon", "coordinates": [[*ring, ring[0]]]}
        closures.append(
            {"label": c.label, "start_h": c.start_h, "end_h": c.end_h, "geometry": geom}
        )
    return World(
        units=tuple(units),
        hospitals=tuple(hospitals),
        stations=stations,
        segments=segments,
        areas=areas,
        node_coords=node_coords,
        bbox=bbox,  # type: ignore[arg-type]
        closures=tuple(closures),
    )


def apply_closures(scenario: Scenario, net: Any) -> list[int]:
    """Apply a scenario's closures to a network; return the closure ids (for ``net.reopen``)."""
    import json

    ids: list[int] = []
    for c in scenario.closures:
        kw: dict[str, Any] = {
            "vehicles": c.vehicles,
            "start_h": c.start_h,
            "end_h": c.end_h,
            "label": c.label,
        }
        if c.geojson is not None:
            doc = json.loads(c.geojson.read_text(encoding="utf-8"))
            if doc.get("type") == "FeatureCollection":
                kw.pop("label")  # feature properties may carry their own labels
                ids.extend(net.close_geojson(str(c.geojson), **kw))
            else:
                geom = doc.get("geometry", doc) if doc.get("type") == "Feature" else doc
                ids.append(net.close_polygon(geom, **kw))
        elif c.polygon is not None:
            ring = [[lon, lat] for lat, lon in c.polygon]
            ids.append(
                net.close_polygon({"type": "Polygon", "coordinates": [[*ring, ring[0]]]}, **kw)
            )
        elif c.way_ids is not None:
            ids.append(net.close_ways(list(c.way_ids), **kw))
    return ids


def load_scenario_network(scenario: Scenario) -> Any:
    """Load the scenario's map with :func:`dispatch.load_network` and check that its stations, units
    and hospitals lie on it (:func:`dispatch.sim.scenario.check_on_map`: the error names the file,
    the key and the unit)."""
    from dispatch.roads.network import load_network
    from dispatch.sim.scenario import check_on_map

    net = load_network(scenario.map)
    check_on_map(scenario, net)
    return net


def run_scenario(
    scenario: Scenario,
    *,
    net: Any = None,
    replication: int = 0,
    policies: Sequence[str] | None = None,
    monitor: bool = False,
    progress: Callable[[int], None] | None = None,
    move_up: str | None = None,
) -> list[SimResult]:
    """Run one replication of a scenario under one or several policies (common random numbers).

    The calls are generated once (seed, replication) and every policy simulates the same calls with
    the same service times, so their differences are paired.

    Parameters
    ----------
    scenario : Scenario
    net : Network, optional
        A loaded network (its closures are left as they were on return); default: load the map.
    replication : int
        Replication number (its random streams are independent of the others').
    policies : sequence of str, optional
        Default: the scenario's policy.
    monitor : bool
        Keep every event record.
    progress : callable, optional
        Progress callback (calls arrived), see :meth:`Simulation.run`.
    move_up : str, optional
        Move-up policy (:mod:`dispatch.sim.moveup`; default ``none``); units may be posted at any
        station of the scenario.
    """
    from dispatch.sim.demand import generate_calls
    from dispatch.sim.moveup import make_move_up

    make_move_up(move_up)  # an unknown name fails before any work

    if net is None:
        net = load_scenario_network(scenario)
    policies = tuple(policies) if policies else (scenario.policy,)
    for p in policies:
        check_policy(p, run_cards=scenario.run_cards is not None)
    world = resolve_world(scenario, net)
    calls = generate_calls(
        scenario, segments=world.segments, areas=world.areas, replication=replication
    )
    closure_ids = apply_closures(scenario, net)
    try:
        out = []
        for p in policies:
            sim = Simulation(
                net, scenario, calls, world.units, world.hospitals, policy=p,
                replication=replication, monitor=monitor, node_coords=world.node_coords,
                move_up=move_up, stations=dict(world.stations),
            )  # fmt: skip
            out.append(sim.run(progress=progress))
        return out
    finally:
        for cid in closure_ids:
            net.reopen(cid)
