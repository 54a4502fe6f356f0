"""Simulation scenarios: a TOML file loaded into validated, frozen dataclasses.

A scenario says which map to use, where the stations and units are, which hospitals take patients,
which incident types arrive at which rates (with an hour-of-day profile), where calls come from, how
long units stay on scene and at hospital, road closures with time windows, the horizon, warm-up,
seed, replications and dispatch policy. Every key is checked: an unknown key or a bad value raises
:class:`ScenarioError` naming the file and the key (``incident_types[2].on_scene.mean_s``).

Relative paths inside a scenario (fleet CSV, zones GeoJSON, call-point CSV, closure GeoJSON) are
resolved against the scenario file's folder. ``extends = "danang"`` (a shipped name or a path) starts
from another scenario: tables merge key by key, arrays (``[[closures]]``, ``[[units]]``...) replace. Loading a scenario never loads a map: the map is
resolved when the simulation is built (:func:`dispatch.sim.simulation.build_simulation`).

Examples
--------
>>> sc = load_scenario("danang")  # doctest: +SKIP
>>> sc.horizon_h, sc.policy  # doctest: +SKIP
(24.0, 'fastest')
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dispatch.decide.runcards import RunCardError, RunCards, load_run_cards
from dispatch.errors import DispatchError
from dispatch.io.schema import Bool, Field, FilePath, Int, ListOf, Num, Str, Table, Validator
from dispatch.model import (
    DEFAULT_PRIORITY_WEIGHTS,
    HOSPITAL_CAPABILITIES,
    MAX_TURNOUT_S,
    SERVICE_TURNOUT_S,
    SERVICES,
    VEHICLE_CLASSES,
    Hospital,
    Station,
    short_repr,
)
from dispatch.sim.policies import check_policy, policy_names

__all__ = [
    "POLICIES",
    "SERVICES",
    "DEFAULT_TURNOUT_S",
    "ClosureSpec",
    "DemandLocations",
    "Distribution",
    "Hospital",
    "CallModel",
    "MapStations",
    "Priority",
    "Scenario",
    "ScenarioError",
    "Station",
    "Unit",
    "check_on_map",
    "load_scenario",
    "parse_scenario",
    "scenario_path",
    "shipped_scenarios",
]

#: Dispatch policies the simulator knows (``fastest`` is the default and the live-dispatch rule).
POLICIES = policy_names()
#: NFPA 1710 turnout objectives per service (notified to en route), used when a scenario gives none:
#: the class defaults of :mod:`dispatch.model` (one rule; ``[turnout]`` replaces it per service for
#: every unit without its own ``turnout_s``, fleet-CSV units included).
DEFAULT_TURNOUT_S = SERVICE_TURNOUT_S
_VEHICLES = VEHICLE_CLASSES
#: Limits checked when a scenario is loaded or overridden, before any work (the message names the
#: value): a horizon of at most 10 years, at most 1,000 calls per hour per incident type and
#: 2,000,000 expected calls per replication (memory grows with calls), at most 1,000 replications,
#: at most 100,000 units, and every turnout in [0, 3600] s (:data:`dispatch.model.MAX_TURNOUT_S`).
MAX_HORIZON_H = 24.0 * 366 * 10
MAX_CALLS_PER_HOUR = 1_000.0
MAX_EXPECTED_CALLS = 2_000_000
MAX_REPLICATIONS = 1_000
MAX_UNITS = 100_000
_DISTS = ("fixed", "exponential", "lognormal", "gamma", "uniform")
_LOCATION_KINDS = ("roads", "zones", "grid", "points")

#: Folder of the scenarios shipped with the project.
SCENARIO_DIR = Path(__file__).resolve().parents[2] / "scenarios"


class ScenarioError(DispatchError):
    """A scenario file that cannot be used; the message names the file and the key."""


# ----------------------------------------------------------------------------------------------
# dataclasses
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Distribution:
    """A duration distribution in seconds.

    Parameters
    ----------
    dist : {"fixed", "exponential", "lognormal", "gamma", "uniform"}
        Family. ``fixed`` always gives ``mean_s``; ``uniform`` draws in ``[min_s, max_s]``.
    mean_s : float
        Mean in seconds (for ``uniform`` the midpoint).
    sd_s : float
        Standard deviation in seconds (``lognormal`` and ``gamma``).
    min_s, max_s : float
        Bounds of ``uniform``; every draw of any family is clipped to ``[min_s, max_s]``.
    """

    dist: str
    mean_s: float
    sd_s: float = 0.0
    min_s: float = 0.0
    max_s: float = math.inf

    def __post_init__(self) -> None:
        if self.dist not in _DISTS:
            raise ScenarioError(f"dist={self.dist!r} is not one of {', '.join(_DISTS)}")
        for name in ("mean_s", "sd_s", "min_s"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v >= 0):
                raise ScenarioError(f"{name}={v!r} must be a finite number >= 0")
        if not (self.max_s >= self.min_s):
            raise ScenarioError(f"max_s={self.max_s!r} must be >= min_s={self.min_s!r}")
        if self.dist in ("lognormal", "gamma") and self.mean_s <= 0:
            raise ScenarioError(f"mean_s={self.mean_s!r} must be > 0 for dist={self.dist!r}")
        if self.dist == "uniform" and not math.isfinite(self.max_s):
            raise ScenarioError("dist='uniform' needs a finite max_s")


@dataclass(frozen=True)
class Priority:
    """A call priority level (1 = most urgent) with its response-time target and optimiser weight."""

    level: int
    name: str
    target_s: float
    weight: float = 1.0


@dataclass(frozen=True)
class CallModel:
    """How calls of one incident type arise in a scenario (a ``[[incident_types]]`` entry): service,
    priority, rate, hour profile and service-time distributions.

    Not to be confused with :class:`dispatch.model.IncidentType`, the catalogue entry of a live
    incident (its service, priority and hospital capability): a call model is the statistics a
    simulation draws calls from.

    Parameters
    ----------
    name : str
        Identifier (``cardiac_arrest``).
    service : {"114", "115"}
        Fire and rescue or emergency medical.
    priority : int
        Priority level, defined in ``[[priorities]]``.
    vehicles : tuple of str
        Vehicle classes that may answer (the fastest of them is sent).
    calls_per_hour : float
        Mean rate over the day; the hour profile redistributes it by hour of day.
    hour_profile : tuple of 24 float
        Relative rate per hour of day, normalised to mean 1 when loaded.
    on_scene : Distribution
        Time on scene.
    transport_probability : float
        Probability that the patient goes to hospital (115 only; 0 for 114).
    handover : Distribution or None
        Hospital handover time (needed when ``transport_probability > 0``).
    hospital_capability : str or None
        Capability a receiving hospital must have (``trauma``, ``burns``, ...); None: any hospital.
    turnout_s : float or None
        Turnout override for this type; None uses the service default.
    """

    name: str
    service: str
    priority: int
    vehicles: tuple[str, ...]
    calls_per_hour: float
    hour_profile: tuple[float, ...]
    on_scene: Distribution
    transport_probability: float = 0.0
    handover: Distribution | None = None
    hospital_capability: str | None = None
    turnout_s: float | None = None


@dataclass(frozen=True)
class MapStations:
    """Stations taken from the map's facilities, each staffed with the same units.

    Parameters
    ----------
    kinds : tuple of str
        Facility kinds to use (``fire_station``, ``ambulance_station``, ``hospital``).
    units : tuple of (vehicle, count)
        Units placed at every such station.
    """

    kinds: tuple[str, ...]
    units: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class Unit:
    """A unit (vehicle and crew) based at a station."""

    id: str
    vehicle: str
    station: str
    turnout_s: float | None = None


@dataclass(frozen=True)
class DemandLocations:
    """Where calls come from.

    Parameters
    ----------
    kind : {"roads", "zones", "grid", "points"}
        ``roads``: uniform over road length. ``zones``: a zone by its weight, then uniform over the
        road length inside it (GeoJSON polygons). ``grid``: the same with square cells of ``cell_m``
        metres centred on ``cells`` (lat, lon, weight). ``points``: a CSV of historical call points
        (columns ``lat,lon`` and optional ``weight``), drawn with replacement by weight.
    zones : Path or None
        GeoJSON FeatureCollection for ``zones`` (also used for per-zone statistics).
    weight_property : str
        Feature property that holds a zone's weight.
    name_property : str
        Feature property that holds a zone's name.
    cell_m : float
        Cell size of ``grid`` and of the statistics grid when there are no zones.
    cells : tuple of (lat, lon, weight)
        Grid cell centres and weights for ``grid``.
    points : Path or None
        CSV of historical points for ``points``.
    """

    kind: str = "roads"
    zones: Path | None = None
    weight_property: str = "weight"
    name_property: str = "name"
    cell_m: float = 1000.0
    cells: tuple[tuple[float, float, float], ...] = ()
    points: Path | None = None


@dataclass(frozen=True)
class ClosureSpec:
    """A road closure as a scenario states it, with an optional window in hours since the start.

    A specification, not yet on a map: the simulator resolves it into a
    :class:`dispatch.routing.closures.Closure` (the closed arcs) on the scenario's network.

    Exactly one of ``geojson`` (a GeoJSON file of polygons), ``polygon`` (a ring of (lat, lon)) or
    ``way_ids`` (OSM way ids) is set.
    """

    label: str
    start_h: float | None = None
    end_h: float | None = None
    vehicles: tuple[str, ...] | None = None
    geojson: Path | None = None
    polygon: tuple[tuple[float, float], ...] | None = None
    way_ids: tuple[int, ...] | None = None


#: Move-up policy names (the keys of :data:`dispatch.sim.moveup.MOVE_UP_POLICIES`).
MOVE_UP_NAMES = ("none", "fill_gaps", "dmexclp", "compliance")


@dataclass(frozen=True)
class MoveUp:
    """The ``[move_up]`` section: what idle units do after each dispatch and each unit freed.

    ``policy`` is the default move-up policy (the command line's ``--move-up`` overrides it);
    ``busy_fraction`` (``q``), ``target_s``, ``posts`` (station names units may be posted at; None:
    every station) and ``cell_m`` (demand grid cell) tune ``dmexclp`` and ``compliance``
    (:class:`dispatch.sim.moveup.DMEXCLPMoveUp`, :class:`dispatch.sim.moveup.ComplianceMoveUp`);
    None leaves the policy's default. ``compliance_table`` (``[move_up.compliance_table]``) gives
    ``compliance`` its table per vehicle class: rows for 1..N free units, each with one whole count
    per entry of ``posts`` (required with it) summing to the row's number; a class without one
    has its table solved from the posts (:func:`dispatch.plan.moveup.compliance_table`).
    """

    policy: str = "none"
    busy_fraction: float | None = None
    target_s: float | None = None
    posts: tuple[str, ...] | None = None
    cell_m: float | None = None
    compliance_table: dict[str, tuple[tuple[int, ...], ...]] | None = None


@dataclass(frozen=True)
class Scenario:
    """A validated simulation scenario. Build it with :func:`load_scenario`."""

    name: str
    source: Path | None
    map: str
    description: str
    horizon_h: float
    warmup_h: float
    seed: int
    replications: int
    policy: str
    processing_s: float
    turnout_s: Mapping[str, float]
    priorities: tuple[Priority, ...]
    incident_types: tuple[CallModel, ...]
    stations: tuple[Station, ...]
    map_stations: MapStations | None
    units: tuple[Unit, ...]
    fleet_csv: Path | None
    hospitals: tuple[Hospital, ...]
    hospitals_from_map: bool
    demand: DemandLocations
    closures: tuple[ClosureSpec, ...] = ()
    area_cell_m: float = 1000.0
    returning: str = "route"
    #: Run cards (``run_cards`` key): every call gets its type's full unit mix; None: one unit.
    run_cards: RunCards | None = None
    #: Move-up settings (``[move_up]``); default: none (units return to their home station).
    move_up: MoveUp = MoveUp()

    def priority(self, level: int) -> Priority:
        """The :class:`Priority` of a level."""
        for p in self.priorities:
            if p.level == level:
                return p
        raise ScenarioError(f"priority={level!r} is not defined in [[priorities]]")

    def with_overrides(
        self,
        *,
        seed: int | None = None,
        horizon_h: float | None = None,
        replications: int | None = None,
        policy: str | None = None,
    ) -> Scenario:
        """A copy with the command-line overrides applied (None keeps the scenario's value)."""
        import dataclasses

        changes: dict[str, Any] = {}
        if seed is not None:
            changes["seed"] = _check_int(seed, "seed", lo=0)
        if horizon_h is not None:
            if (
                isinstance(horizon_h, bool)
                or not isinstance(horizon_h, int | float)
                or not (math.isfinite(horizon_h) and 0 < horizon_h <= MAX_HORIZON_H)
            ):
                raise ScenarioError(
                    f"hours={horizon_h!r} must be a number in (0, {MAX_HORIZON_H:g}] (10 years)"
                )
            _check_expected_calls(self.incident_types, float(horizon_h), "hours")
            changes["horizon_h"] = float(horizon_h)
            if self.warmup_h >= horizon_h:
                changes["warmup_h"] = 0.0
        if replications is not None:
            changes["replications"] = _check_int(
                replications, "replications", lo=1, hi=MAX_REPLICATIONS
            )
        if policy is not None:
            try:  # the one rule of which policy takes run cards (dispatch.sim.policies)
                check_policy(policy, run_cards=self.run_cards is not None)
            except DispatchError as exc:
                raise ScenarioError(str(exc)) from None
            changes["policy"] = policy
        return dataclasses.replace(self, **changes)


# ----------------------------------------------------------------------------------------------
# loading
# ----------------------------------------------------------------------------------------------


def shipped_scenarios() -> tuple[str, ...]:
    """Short names of the scenarios shipped in ``scenarios/``."""
    if not SCENARIO_DIR.is_dir():
        return ()
    out = []
    for p in SCENARIO_DIR.glob("*.toml"):
        # other TOML files live there too (run_cards.toml): a scenario names a map or a parent
        head = p.read_text(encoding="utf-8", errors="replace")
        if any(line.startswith(("map =", "extends =")) for line in head.splitlines()):
            out.append(p.stem)
    return tuple(sorted(out))


def scenario_path(name_or_path: str | Path) -> Path:
    """Resolve a scenario short name (``danang``) or a path to an existing file.

    Raises
    ------
    ScenarioError
        Neither a file nor a shipped scenario name.
    """
    if not isinstance(name_or_path, str | Path):
        raise ScenarioError(f"scenario must be a name or a path, got {short_repr(name_or_path)}")
    p = Path(name_or_path)
    if _is_file(p):
        return p
    if p.suffix == "" and "/" not in str(name_or_path):
        q = SCENARIO_DIR / f"{name_or_path}.toml"
        if _is_file(q):
            return q
    known = ", ".join(shipped_scenarios()) or "none"
    from dispatch.io.text import display_name

    raise ScenarioError(
        f"scenario={display_name(name_or_path)!r} is neither a file nor a shipped scenario ({known})"
    )


def _is_file(p: Path) -> bool:
    try:
        return p.is_file()
    except OSError as exc:  # a name too long for the file system, ...
        from dispatch.io.text import display_name

        raise ScenarioError(
            f"scenario={display_name(p)!r} cannot be read: {exc.strerror or exc}"
        ) from None


def load_scenario(name_or_path: str | Path) -> Scenario:
    """Load and validate a scenario from a TOML file or a shipped short name.

    Parameters
    ----------
    name_or_path : str or Path
        A path to a ``.toml`` file, or the short name of a shipped scenario (``danang``).

    Returns
    -------
    Scenario

    Raises
    ------
    ScenarioError
        Unreadable TOML, an unknown key, a missing key or a bad value; the message names the file
        and the key.
    """
    path = scenario_path(name_or_path)
    return parse_scenario(_read_with_parents(path, depth=0), source=path)


def _read_toml(path: Path) -> dict[str, Any]:
    from dispatch.io.text import read_toml

    return read_toml(path, "scenario", error=ScenarioError)


def _read_with_parents(path: Path, *, depth: int) -> dict[str, Any]:
    """The TOML document, merged over the scenario it ``extends`` (tables merge, arrays replace)."""
    data = _read_toml(path)
    parent = data.pop("extends", None)
    if parent is None:
        return data
    if not isinstance(parent, str) or not parent.strip():
        raise ScenarioError(f"{path}: extends: must be a scenario name or path, got {parent!r}")
    if depth >= 4:
        raise ScenarioError(f"{path}: extends: more than 4 levels (a cycle?)")
    candidate = path.parent / parent
    try:
        ppath = candidate if _is_file(candidate) else scenario_path(parent)
    except ScenarioError as exc:
        raise ScenarioError(f"{path}: extends: {exc}") from None
    return _merge(_read_with_parents(ppath, depth=depth + 1), data)


def _merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


def check_on_map(scenario: Scenario, net: Any) -> None:
    """Check that every station, unit and hospital of `scenario` lies near a road of `net`.

    A unit's position (its station's, or its own for a fleet-CSV unit) must be within the snap
    tolerance of a road its vehicle class may use; a hospital, of a road ambulances may use. Call it
    when the network is known, before the simulation is built.

    Raises
    ------
    ScenarioError
        Naming the scenario file, the key (``stations[2]``, ``hospitals[0]``, ``fleet``), the
        station or unit and the problem.
    """
    from dispatch.io.fleet import read_fleet

    where = str(scenario.source) if scenario.source is not None else scenario.name

    def check(point: tuple[float, float], vehicle: str, what: str) -> None:
        try:
            net.snap(point, vehicle=vehicle)
        except DispatchError as exc:
            raise ScenarioError(f"{where}: {what}: {exc}") from None

    index = {s.name: i for i, s in enumerate(scenario.stations)}
    done: set[tuple[str, str]] = set()
    for i, u in enumerate(scenario.units):
        j = index.get(u.station)
        if j is None or (u.station, u.vehicle) in done:
            continue  # a station of [map_stations] lies on the map by construction
        done.add((u.station, u.vehicle))
        st = scenario.stations[j]
        check((st.lat, st.lon), u.vehicle,
              f"stations[{j}] {st.name!r} (units[{i}] {u.id!r}, {u.vehicle})")  # fmt: skip
    if scenario.fleet_csv is not None:
        try:
            fleet = read_fleet(scenario.fleet_csv)
        except DispatchError as exc:
            raise ScenarioError(f"{where}: fleet: {exc}") from None
        for fu in fleet:
            check((fu.lat, fu.lon), str(fu.vehicle),
                  f"fleet: {scenario.fleet_csv.name}: unit {fu.id!r} ({fu.vehicle})")  # fmt: skip
    for k, h in enumerate(scenario.hospitals):
        check((h.lat, h.lon), "ambulance", f"hospitals[{k}] {h.name!r}")


def parse_scenario(data: Mapping[str, Any], *, source: Path | None = None) -> Scenario:
    """Validate a scenario given as a mapping (the parsed TOML).

    Parameters
    ----------
    data : mapping
        The parsed TOML document.
    source : Path, optional
        The file it came from: named in errors, and relative paths resolve against its folder.
    """
    return _Parser(source).scenario(data)


# ----------------------------------------------------------------------------------------------
# validation helpers
# ----------------------------------------------------------------------------------------------


def _check_expected_calls(types: Sequence[CallModel], horizon_h: float, key: str) -> None:
    expected = sum(t.calls_per_hour for t in types) * horizon_h
    if expected > MAX_EXPECTED_CALLS:
        raise ScenarioError(
            f"{key}: {horizon_h:g} h at {sum(t.calls_per_hour for t in types):g} calls per hour "
            f"is {expected:,.0f} expected calls, above the limit of {MAX_EXPECTED_CALLS:,} per "
            "replication"
        )


def _check_int(value: Any, key: str, *, lo: int | None = None, hi: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ScenarioError(f"{key}={value!r} must be an integer")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        rng = f">= {lo}" if hi is None else f"in [{lo}, {hi}]"
        raise ScenarioError(f"{key}={value!r} must be {rng}")
    return value


# ----------------------------------------------------------------------------------------------
# the declared schema, one table per section (dispatch.io.schema validates and names file and key)
# ----------------------------------------------------------------------------------------------

_LAT = Field(Num(lo=-90, hi=90), required=True)
_LON = Field(Num(lo=-180, hi=180), required=True)
_TURNOUT = Num(lo=0, hi=MAX_TURNOUT_S)
_NAME = Field(Str(), required=True)

#: ``{ dist = ..., mean_s, sd_s, min_s, max_s }``: which keys a family needs is checked after.
DISTRIBUTION = Table({
    "dist": Field(Str(_DISTS), required=True),
    "mean_s": Field(Num(lo=0)),
    "sd_s": Field(Num(lo=0)),
    "min_s": Field(Num(lo=0)),
    "max_s": Field(Num(lo=0)),
})  # fmt: skip

SIMULATION = Table({
    "horizon_h": Field(Num(lo=0, lo_open=True, hi=MAX_HORIZON_H), required=True),
    "warmup_h": Field(Num(lo=0), default=0.0),
    "seed": Field(Int(lo=0), default=0),
    "replications": Field(Int(lo=1, hi=MAX_REPLICATIONS), default=1),
    "policy": Field(Str(POLICIES), default="fastest"),
    "processing_s": Field(Num(lo=0), default=0.0),
    "returning": Field(Str(("route", "home")), default="route"),
})  # fmt: skip

TURNOUT = Table({
    "fire_s": Field(_TURNOUT, default=DEFAULT_TURNOUT_S["114"]),
    "ems_s": Field(_TURNOUT, default=DEFAULT_TURNOUT_S["115"]),
})  # fmt: skip

PRIORITY = Table({
    "level": Field(Int(lo=1), required=True),
    "name": Field(Str()),
    "target_s": Field(Num(lo=0, lo_open=True), required=True),
    "weight": Field(Num(lo=0, lo_open=True)),
})  # fmt: skip

INCIDENT_TYPE = Table({
    "name": _NAME,
    "service": Field(Str(SERVICES, from_int=True), required=True),
    "priority": Field(Int(lo=1), required=True),
    "vehicles": Field(ListOf(Str(VEHICLE_CLASSES), min_length=1,
                             too_short="must name at least one vehicle class"), required=True),
    "calls_per_hour": Field(Num(lo=0, hi=MAX_CALLS_PER_HOUR), required=True),
    "hour_profile": Field(ListOf(Num(lo=0), length=24)),
    "on_scene": Field(DISTRIBUTION, required=True),
    "transport_probability": Field(Num(lo=0, hi=1), default=0.0),
    "handover": Field(DISTRIBUTION),
    "hospital_capability": Field(Str(HOSPITAL_CAPABILITIES)),
    "turnout_s": Field(_TURNOUT),
})  # fmt: skip

STATION = Table({"name": _NAME, "lat": _LAT, "lon": _LON})

MAP_STATIONS = Table({
    "kinds": Field(ListOf(Str(("fire_station", "ambulance_station", "hospital", "clinic")),
                          min_length=1, too_short="must name at least one facility kind"),
                   required=True),
    "units": Field(Table({v: Field(Int(lo=0, hi=1000)) for v in VEHICLE_CLASSES}), required=True),
})  # fmt: skip

UNIT = Table({
    "id": Field(Str(from_int=True), required=True),
    "vehicle": Field(Str(VEHICLE_CLASSES), required=True),
    "station": _NAME,
    "turnout_s": Field(_TURNOUT),
    "count": Field(Int(lo=1, hi=MAX_UNITS), default=1),
})  # fmt: skip

HOSPITAL = Table({
    "name": _NAME,
    "lat": _LAT,
    "lon": _LON,
    "capabilities": Field(ListOf(Str(HOSPITAL_CAPABILITIES)), default=()),
})  # fmt: skip

DEMAND = Table({
    "locations": Field(Str(_LOCATION_KINDS), default="roads"),
    "zones": Field(FilePath()),
    "weight_property": Field(Str(), default="weight"),
    "name_property": Field(Str(), default="name"),
    "cell_m": Field(Num(lo=10), default=1000.0),
    "cells": Field(ListOf(ListOf(Num(), length=3, too_short="must be [lat, lon, weight]")), default=()),
    "points": Field(FilePath()),
})  # fmt: skip

CLOSURE = Table({
    "label": Field(Str()),
    "start_h": Field(Num(lo=0)),
    "end_h": Field(Num(lo=0)),
    "vehicles": Field(ListOf(Str(VEHICLE_CLASSES))),
    "geojson": Field(FilePath()),
    "polygon": Field(ListOf(ListOf(Num(), length=2, too_short="must be [lat, lon]"), min_length=3,
                            too_short="needs at least 3 points")),
    "way_ids": Field(ListOf(Int(lo=1), min_length=1, too_short="must list at least one way id")),
})  # fmt: skip

STATS = Table({"cell_m": Field(Num(lo=10))})

MOVE_UP = Table({
    "policy": Field(Str(MOVE_UP_NAMES), default="none"),
    "busy_fraction": Field(Num(lo=0, hi=0.99)),
    "target_s": Field(Num(lo=0, lo_open=True)),
    "posts": Field(ListOf(Str(), min_length=1, too_short="must name at least one station")),
    "cell_m": Field(Num(lo=10)),
    # per class: rows for 1..N free units, one whole count per entry of `posts`
    "compliance_table": Field(Table({
        v: Field(ListOf(ListOf(Int(lo=0), min_length=1, too_short="must give one count per post"),
                        min_length=1, too_short="must have a row for 1 free unit"))
        for v in VEHICLE_CLASSES
    })),
})  # fmt: skip

#: Top-level keys; the array sections are checked item by item with the tables above.
TOP_LEVEL = (
    "name", "description", "map", "simulation", "turnout", "priorities", "incident_types",
    "stations", "map_stations", "units", "fleet", "hospitals", "hospitals_from_map", "demand",
    "closures", "stats", "run_cards", "move_up",
)  # fmt: skip


class _Parser:
    """Validates the TOML document against the declared sections, then the cross-section rules."""

    def __init__(self, source: Path | None) -> None:
        self.source = source
        self.base = source.parent if source is not None else Path.cwd()
        self.where = str(source) if source is not None else "<scenario>"
        self.v = Validator(self.where, error=ScenarioError, base=self.base)

    def fail(self, key: str, msg: str) -> ScenarioError:
        return ScenarioError(f"{self.where}: {key}: {msg}")

    def items(self, value: Any, key: str, spec: Table) -> list[dict[str, Any]]:
        """An array of tables (``[[stations]]``), each checked against `spec`."""
        if not isinstance(value, list):
            raise self.fail(key, f"must be an array, got {short_repr(value)}")
        return [self.v.check(spec, item, f"{key}[{i}]") for i, item in enumerate(value)]

    # -- sections with rules across keys ------------------------------------------------------

    def distribution(self, t: Mapping[str, Any], key: str) -> Distribution:
        dist = t["dist"]
        if dist == "uniform":
            for k in ("min_s", "max_s"):
                if k not in t:
                    raise self.fail(f"{key}.{k}", "missing required key")
            lo, hi = t["min_s"], t["max_s"]
            if hi < lo:
                raise self.fail(f"{key}.max_s", f"must be >= min_s={lo:g}, got {hi:g}")
            return Distribution(dist, (lo + hi) / 2, 0.0, lo, hi)
        if "mean_s" not in t:
            raise self.fail(f"{key}.mean_s", "missing required key")
        mean, sd = t["mean_s"], 0.0
        if dist in ("lognormal", "gamma"):
            if "sd_s" not in t:
                raise self.fail(f"{key}.sd_s", "missing required key")
            sd = t["sd_s"]
            if mean <= 0:
                raise self.fail(f"{key}.mean_s", f"must be > 0 for dist={dist!r}, got {mean:g}")
        elif "sd_s" in t:
            raise self.fail(f"{key}.sd_s", f"not used by dist={dist!r}")
        lo, hi = t.get("min_s", 0.0), t.get("max_s", math.inf)
        if hi < lo:
            raise self.fail(f"{key}.max_s", f"must be >= min_s={lo:g}, got {hi:g}")
        return Distribution(dist, mean, sd, lo, hi)

    def priorities(self, value: Any) -> tuple[Priority, ...]:
        out: list[Priority] = []
        for i, t in enumerate(self.items(value, "priorities", PRIORITY)):
            level = t["level"]
            if any(p.level == level for p in out):
                raise self.fail(f"priorities[{i}].level", f"duplicate level {level}")
            weight = t.get("weight", DEFAULT_PRIORITY_WEIGHTS.get(level, 1.0))
            out.append(Priority(level, t.get("name", f"P{level}"), t["target_s"], weight))
        if not out:
            raise self.fail("priorities", "at least one [[priorities]] entry is needed")
        return tuple(sorted(out, key=lambda p: p.level))

    def incident_types(self, value: Any, levels: set[int]) -> tuple[CallModel, ...]:
        rows = self.items(value, "incident_types", INCIDENT_TYPE)
        if not rows:
            raise self.fail("incident_types", "at least one [[incident_types]] entry is needed")
        out: list[CallModel] = []
        for i, t in enumerate(rows):
            key = f"incident_types[{i}]"
            if any(x.name == t["name"] for x in out):
                raise self.fail(f"{key}.name", f"duplicate incident type {t['name']!r}")
            if t["priority"] not in levels:
                raise self.fail(
                    f"{key}.priority", f"{t['priority']} is not defined in [[priorities]]"
                )
            profile: tuple[float, ...] = (1.0,) * 24
            if "hour_profile" in t:
                total = sum(t["hour_profile"])
                if total <= 0:
                    raise self.fail(f"{key}.hour_profile", "must have a positive value somewhere")
                profile = tuple(x * 24.0 / total for x in t["hour_profile"])
            p_tr = t["transport_probability"]
            if p_tr > 0 and t["service"] != "115":
                raise self.fail(f"{key}.transport_probability", "only 115 (EMS) calls transport")
            handover = None
            if "handover" in t:
                handover = self.distribution(t["handover"], f"{key}.handover")
            if p_tr > 0 and handover is None:
                raise self.fail(f"{key}.handover", "needed when transport_probability > 0")
            out.append(
                CallModel(
                    name=t["name"],
                    service=t["service"],
                    priority=t["priority"],
                    vehicles=t["vehicles"],
                    calls_per_hour=t["calls_per_hour"],
                    hour_profile=profile,
                    on_scene=self.distribution(t["on_scene"], f"{key}.on_scene"),
                    transport_probability=p_tr,
                    handover=handover,
                    hospital_capability=t.get("hospital_capability"),
                    turnout_s=t.get("turnout_s"),
                )
            )
        return tuple(out)

    def stations(self, value: Any) -> tuple[Station, ...]:
        out: list[Station] = []
        names: set[str] = set()
        for i, t in enumerate(self.items(value, "stations", STATION)):
            if t["name"] in names:
                raise self.fail(f"stations[{i}].name", f"duplicate station {t['name']!r}")
            names.add(t["name"])
            out.append(Station(t["name"], t["lat"], t["lon"]))
        return tuple(out)

    def map_stations(self, value: Any) -> MapStations:
        t = self.v.check(MAP_STATIONS, value, "map_stations")
        order = self.v.table(value, "map_stations")["units"]  # keep the file's order (unit ids)
        units = tuple((v, t["units"][v]) for v in order)
        if sum(n for _, n in units) == 0:
            raise self.fail("map_stations.units", "must place at least one unit per station")
        return MapStations(t["kinds"], units)

    def units(self, value: Any, station_names: set[str], has_map: bool) -> tuple[Unit, ...]:
        out: list[Unit] = []
        seen: set[str] = set()
        for i, t in enumerate(self.items(value, "units", UNIT)):
            key = f"units[{i}]"
            if t["station"] not in station_names and not has_map:
                raise self.fail(f"{key}.station", f"{t['station']!r} is not a [[stations]] name")
            count = t["count"]
            if len(out) + count > MAX_UNITS:
                raise self.fail(f"{key}.count", f"more than {MAX_UNITS:,} units in all")
            uid = t["id"]
            ids = [uid] if count == 1 else [f"{uid}-{n + 1}" for n in range(count)]
            for u in ids:
                if u in seen:
                    raise self.fail(f"{key}.id", f"duplicate unit id {u!r}")
                seen.add(u)
                out.append(Unit(u, t["vehicle"], t["station"], t.get("turnout_s")))
        return tuple(out)

    def move_up(self, value: Any, station_names: set[str], has_map: bool) -> MoveUp:
        t = self.v.check(MOVE_UP, value, "move_up")
        posts = t.get("posts")
        if posts is not None:
            for i, name in enumerate(posts):
                if name not in station_names and not has_map:
                    raise self.fail(f"move_up.posts[{i}]", f"{name!r} is not a [[stations]] name")
            posts = tuple(posts)
        table = t.get("compliance_table")
        if table is not None:
            if posts is None:
                raise self.fail("move_up.compliance_table",
                                "needs move_up.posts (the stations its columns stand for)")  # fmt: skip
            for v, rows in table.items():
                for n, row in enumerate(rows, start=1):
                    key = f"move_up.compliance_table.{v}[{n - 1}]"
                    if len(row) != len(posts):
                        raise self.fail(key, f"has {len(row)} counts, posts has {len(posts)}")
                    if sum(row) != n:
                        raise self.fail(key, f"places {sum(row)} units; row {n} is for {n} "
                                             f"free units and must place {n}")  # fmt: skip
            table = {v: tuple(tuple(r) for r in rows) for v, rows in table.items()}
        return MoveUp(t["policy"], t.get("busy_fraction"), t.get("target_s"), posts,
                      t.get("cell_m"), table or None)  # fmt: skip

    def hospitals(self, value: Any) -> tuple[Hospital, ...]:
        # ids by position (H0000, H0001, ...): the tie-break between equally near hospitals;
        # no capabilities listed: the hospital takes every patient
        return tuple(
            Hospital(
                f"H{i:04d}",
                t["name"],
                t["lat"],
                t["lon"],
                tuple(t["capabilities"]) or HOSPITAL_CAPABILITIES,
                capabilities_source="scenario"
                if t["capabilities"]
                else "scenario: none listed, takes every patient",
            )  # fmt: skip
            for i, t in enumerate(self.items(value, "hospitals", HOSPITAL))
        )

    def demand(self, value: Any) -> DemandLocations:
        t = self.v.check(DEMAND, value, "demand")
        for j, (lat, lon, w) in enumerate(t["cells"]):
            for k, (x, lo, hi, what) in enumerate(
                ((lat, -90, 90, "lat"), (lon, -180, 180, "lon"), (w, 0, math.inf, "weight"))
            ):
                if not lo <= x <= hi:
                    raise self.fail(
                        f"demand.cells[{j}][{k}] ({what})", f"must be in [{lo}, {hi}], got {x:g}"
                    )
        kind = t["locations"]
        if kind == "zones" and "zones" not in t:
            raise self.fail("demand.zones", "needed when locations = 'zones'")
        if kind == "points" and "points" not in t:
            raise self.fail("demand.points", "needed when locations = 'points'")
        if kind == "grid" and (not t["cells"] or sum(c[2] for c in t["cells"]) <= 0):
            raise self.fail(
                "demand.cells", "needs cells with a positive weight when locations = 'grid'"
            )
        return DemandLocations(kind, t.get("zones"), t["weight_property"], t["name_property"],
                               t["cell_m"], tuple(t["cells"]), t.get("points"))  # fmt: skip

    def closures(self, value: Any) -> tuple[ClosureSpec, ...]:
        out: list[ClosureSpec] = []
        for i, t in enumerate(self.items(value, "closures", CLOSURE)):
            key = f"closures[{i}]"
            start, end = t.get("start_h"), t.get("end_h")
            if start is not None and end is not None and end <= start:
                raise self.fail(f"{key}.end_h", f"must be > start_h={start:g}, got {end:g}")
            given = [k for k in ("geojson", "polygon", "way_ids") if k in t]
            if len(given) != 1:
                raise self.fail(
                    key, f"needs exactly one of geojson, polygon, way_ids (got {given or 'none'})"
                )
            poly = t.get("polygon")
            for j, (lat, lon) in enumerate(poly or ()):
                if not (-90 <= lat <= 90 and -180 <= lon <= 180):
                    raise self.fail(
                        f"{key}.polygon[{j}]", f"must be [lat, lon] in range, got {[lat, lon]}"
                    )
            out.append(ClosureSpec(t.get("label", f"closure {i}"), start, end, t.get("vehicles"),
                               t.get("geojson"), poly, t.get("way_ids")))  # fmt: skip
        return tuple(out)

    def run_cards(self, value: Any, types: Sequence[CallModel]) -> RunCards:
        """``run_cards``: ``true`` (built-in table), a TOML path, or an inline run-card table."""
        key = "run_cards"
        try:
            if value is True:
                cards = load_run_cards(None)
            elif isinstance(value, str):
                import dataclasses

                # labelled as written (not the absolute path): the summary stays machine-independent
                path = self.v.check(FilePath(), value, key)
                cards = dataclasses.replace(load_run_cards(path), source=value)
            elif isinstance(value, Mapping):
                cards = RunCards.from_dict(value, source="inline run_cards")
            else:
                raise self.fail(
                    key, f"must be true, a run-card TOML path or a table, got {short_repr(value)}"
                )
        except (RunCardError, DispatchError) as exc:
            if isinstance(exc, ScenarioError):
                raise
            raise self.fail(key, str(exc)) from None
        for i, t in enumerate(types):
            if t.name not in cards.cards:
                raise self.fail(
                    key,
                    f"no run card for incident_types[{i}] {t.name!r} in {cards.source} "
                    f"(cards: {', '.join(sorted(cards.cards))})",
                )
        return cards

    # -- whole document -----------------------------------------------------------------------

    def scenario(self, data: Mapping[str, Any]) -> Scenario:
        for k in data:
            if k not in TOP_LEVEL:
                raise self.fail(str(k), f"unknown key (allowed: {', '.join(TOP_LEVEL)})")
        default_name = self.source.stem if self.source is not None else "scenario"
        name = self.v.check(Str(), data.get("name", default_name), "name")
        description = data.get("description", "")
        if not isinstance(description, str):
            raise self.fail("description", f"must be a string, got {short_repr(description)}")
        if "map" not in data:
            raise self.fail("map", "missing required key")
        map_name = self.v.check(Str(), data["map"], "map")
        # A map given as a relative path resolves against the scenario folder.
        if ("/" in map_name or map_name.endswith((".osm", ".pbf", ".bz2"))) and not Path(
            map_name
        ).is_absolute():
            map_name = str(self.base / map_name)

        sim = self.v.check(SIMULATION, data.get("simulation", {}), "simulation")
        horizon, warmup = sim["horizon_h"], sim["warmup_h"]
        if warmup >= horizon:
            raise self.fail(
                "simulation.warmup_h", f"must be < horizon_h={horizon:g}, got {warmup:g}"
            )
        turnout_tbl = self.v.check(TURNOUT, data.get("turnout", {}), "turnout")
        turnout = {"114": turnout_tbl["fire_s"], "115": turnout_tbl["ems_s"]}

        if "priorities" not in data:
            raise self.fail("priorities", "missing required key")
        if "incident_types" not in data:
            raise self.fail("incident_types", "missing required key")
        priorities = self.priorities(data["priorities"])
        types = self.incident_types(data["incident_types"], {p.level for p in priorities})
        try:
            _check_expected_calls(types, horizon, "simulation.horizon_h")
        except ScenarioError as exc:
            raise ScenarioError(f"{self.where}: {exc}") from None
        stations = self.stations(data.get("stations", []))
        map_st = self.map_stations(data["map_stations"]) if "map_stations" in data else None
        units = self.units(data.get("units", []), {s.name for s in stations}, map_st is not None)
        fleet = self.v.check(FilePath(), data["fleet"], "fleet") if "fleet" in data else None
        if not units and fleet is None and map_st is None:
            raise self.fail(
                "units", "no units: give [[units]], fleet = 'file.csv' or [map_stations]"
            )
        hospitals = self.hospitals(data.get("hospitals", []))
        from_map = self.v.check(Bool(), data.get("hospitals_from_map", False), "hospitals_from_map")
        if any(t.transport_probability > 0 for t in types) and not hospitals and not from_map:
            raise self.fail(
                "hospitals",
                "115 types transport patients but no [[hospitals]] (or hospitals_from_map)",
            )
        demand = self.demand(data.get("demand", {}))
        closures = self.closures(data.get("closures", []))
        for c in closures:
            if c.start_h is not None and c.start_h >= horizon:
                raise self.fail(
                    "closures", f"{c.label!r}: start_h={c.start_h:g} is past horizon_h={horizon:g}"
                )
        stats = self.v.check(STATS, data.get("stats", {}), "stats")
        cell_m = stats.get("cell_m", demand.cell_m)

        run_cards = self.run_cards(data["run_cards"], types) if "run_cards" in data else None
        move_up = self.move_up(
            data.get("move_up", {}), {s.name for s in stations}, map_st is not None
        )
        try:  # the one rule of which policy takes run cards (dispatch.sim.policies)
            check_policy(sim["policy"], run_cards=run_cards is not None)
        except DispatchError as exc:
            raise self.fail("simulation.policy", f"{exc} (use fastest)") from None

        return Scenario(
            name=name,
            source=self.source,
            map=map_name,
            description=description,
            horizon_h=horizon,
            warmup_h=warmup,
            seed=sim["seed"],
            replications=sim["replications"],
            policy=sim["policy"],
            processing_s=sim["processing_s"],
            turnout_s=turnout,
            priorities=priorities,
            incident_types=types,
            stations=stations,
            map_stations=map_st,
            units=units,
            fleet_csv=fleet,
            hospitals=hospitals,
            hospitals_from_map=from_map,
            demand=demand,
            closures=closures,
            area_cell_m=cell_m,
            returning=sim["returning"],
            run_cards=run_cards,
            move_up=move_up,
        )
