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
from dispatch.model import (
    DEFAULT_PRIORITY_WEIGHTS,
    HOSPITAL_CAPABILITIES,
    MAX_TURNOUT_S,
    SERVICE_TURNOUT_S,
    SERVICES,
    VEHICLE_CLASSES,
    Station,
    short_repr,
)

__all__ = [
    "POLICIES",
    "SERVICES",
    "DEFAULT_TURNOUT_S",
    "Closure",
    "DemandLocations",
    "Distribution",
    "Hospital",
    "IncidentType",
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
POLICIES = ("fastest", "nearest_straight_line", "nearest_node", "optimal_batch")
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
class IncidentType:
    """One incident type: its service, priority, rate, hour profile and service-time distributions.

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
class Hospital:
    """A receiving hospital with its capabilities (empty: takes every patient)."""

    name: str
    lat: float
    lon: float
    capabilities: tuple[str, ...] = ()


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
class Closure:
    """A road closure with an optional time window in hours since the scenario start.

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
    incident_types: tuple[IncidentType, ...]
    stations: tuple[Station, ...]
    map_stations: MapStations | None
    units: tuple[Unit, ...]
    fleet_csv: Path | None
    hospitals: tuple[Hospital, ...]
    hospitals_from_map: bool
    demand: DemandLocations
    closures: tuple[Closure, ...] = ()
    area_cell_m: float = 1000.0
    returning: str = "route"
    #: Run cards (``run_cards`` key): every call gets its type's full unit mix; None: one unit.
    run_cards: RunCards | None = None

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
            if policy not in POLICIES:
                raise ScenarioError(f"policy={policy!r} is not one of {', '.join(POLICIES)}")
            if policy == "optimal_batch" and self.run_cards is not None:
                raise ScenarioError("policy='optimal_batch' does not take run cards yet")
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


def _capabilities() -> tuple[str, ...]:
    """Hospital capabilities known to live dispatch (:data:`dispatch.model.HOSPITAL_CAPABILITIES`)."""
    return HOSPITAL_CAPABILITIES


def _check_expected_calls(types: Sequence[IncidentType], horizon_h: float, key: str) -> None:
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


class _Parser:
    """Walks the TOML document, keeping the file name for error messages."""

    def __init__(self, source: Path | None) -> None:
        self.source = source
        self.base = source.parent if source is not None else Path.cwd()
        self.where = str(source) if source is not None else "<scenario>"

    # -- primitives ---------------------------------------------------------------------------

    def fail(self, key: str, msg: str) -> ScenarioError:
        return ScenarioError(f"{self.where}: {key}: {msg}")

    def table(self, value: Any, key: str) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            raise self.fail(key, f"must be a table, got {type(value).__name__} {value!r}")
        return value

    def keys(self, tbl: Mapping[str, Any], key: str, allowed: Sequence[str]) -> None:
        for k in tbl:
            if k not in allowed:
                full = f"{key}.{k}" if key else k
                raise self.fail(full, f"unknown key (allowed: {', '.join(allowed)})")

    def req(self, tbl: Mapping[str, Any], name: str, key: str) -> Any:
        if name not in tbl:
            full = f"{key}.{name}" if key else name
            raise self.fail(full, "missing required key")
        return tbl[name]

    def num(
        self,
        value: Any,
        key: str,
        *,
        lo: float | None = None,
        hi: float | None = None,
        lo_open: bool = False,
    ) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(key, f"must be a number, got {short_repr(value)}")
        try:
            v = float(value)
        except OverflowError:  # an integer of hundreds of digits
            raise self.fail(key, f"must be a finite number, got {short_repr(value)}") from None
        if not math.isfinite(v):
            raise self.fail(key, f"must be finite, got {value!r}")
        if lo is not None and (v < lo or (lo_open and v <= lo)):
            raise self.fail(
                key, f"must be {'>' if lo_open else '>='} {lo:g}, got {short_repr(value)}"
            )
        if hi is not None and v > hi:
            raise self.fail(key, f"must be <= {hi:g}, got {short_repr(value)}")
        return v

    def int_(self, value: Any, key: str, *, lo: int | None = None, hi: int | None = None) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(key, f"must be an integer, got {short_repr(value)}")
        if lo is not None and value < lo:
            raise self.fail(key, f"must be >= {lo}, got {short_repr(value)}")
        if hi is not None and value > hi:
            raise self.fail(key, f"must be <= {hi:,}, got {short_repr(value)}")
        return value

    def str_(self, value: Any, key: str, *, choices: Sequence[str] | None = None) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.fail(key, f"must be a non-empty string, got {value!r}")
        if choices is not None and value not in choices:
            raise self.fail(key, f"{value!r} is not one of {', '.join(choices)}")
        return value

    def list_(self, value: Any, key: str) -> list[Any]:
        if not isinstance(value, list):
            raise self.fail(key, f"must be an array, got {value!r}")
        return value

    def lat_lon(self, tbl: Mapping[str, Any], key: str) -> tuple[float, float]:
        lat = self.num(self.req(tbl, "lat", key), f"{key}.lat", lo=-90, hi=90)
        lon = self.num(self.req(tbl, "lon", key), f"{key}.lon", lo=-180, hi=180)
        return lat, lon

    def path(self, value: Any, key: str) -> Path:
        s = self.str_(value, key)
        p = Path(s)
        if not p.is_absolute():
            p = self.base / p
        if not _is_file(p):
            raise self.fail(key, f"file {s!r} not found (looked at {p})")
        return p

    # -- sections -----------------------------------------------------------------------------

    def distribution(self, value: Any, key: str) -> Distribution:
        tbl = self.table(value, key)
        self.keys(tbl, key, ("dist", "mean_s", "sd_s", "min_s", "max_s"))
        dist = self.str_(self.req(tbl, "dist", key), f"{key}.dist", choices=_DISTS)
        if dist == "uniform":
            lo = self.num(self.req(tbl, "min_s", key), f"{key}.min_s", lo=0)
            hi = self.num(self.req(tbl, "max_s", key), f"{key}.max_s", lo=0)
            if hi < lo:
                raise self.fail(f"{key}.max_s", f"must be >= min_s={lo:g}, got {hi:g}")
            return Distribution(dist, (lo + hi) / 2, 0.0, lo, hi)
        mean = self.num(self.req(tbl, "mean_s", key), f"{key}.mean_s", lo=0)
        sd = 0.0
        if dist in ("lognormal", "gamma"):
            sd = self.num(self.req(tbl, "sd_s", key), f"{key}.sd_s", lo=0)
            if mean <= 0:
                raise self.fail(f"{key}.mean_s", f"must be > 0 for dist={dist!r}, got {mean:g}")
        elif "sd_s" in tbl:
            raise self.fail(f"{key}.sd_s", f"not used by dist={dist!r}")
        lo = self.num(tbl.get("min_s", 0.0), f"{key}.min_s", lo=0)
        hi = self.num(tbl["max_s"], f"{key}.max_s", lo=0) if "max_s" in tbl else math.inf
        if hi < lo:
            raise self.fail(f"{key}.max_s", f"must be >= min_s={lo:g}, got {hi:g}")
        return Distribution(dist, mean, sd, lo, hi)

    def priorities(self, value: Any) -> tuple[Priority, ...]:
        out: list[Priority] = []
        for i, item in enumerate(self.list_(value, "priorities")):
            key = f"priorities[{i}]"
            tbl = self.table(item, key)
            self.keys(tbl, key, ("level", "name", "target_s", "weight"))
            level = self.int_(self.req(tbl, "level", key), f"{key}.level", lo=1)
            name = self.str_(tbl.get("name", f"P{level}"), f"{key}.name")
            target = self.num(self.req(tbl, "target_s", key), f"{key}.target_s", lo=0, lo_open=True)
            if any(p.level == level for p in out):
                raise self.fail(f"{key}.level", f"duplicate level {level}")
            weight = self.num(
                tbl.get("weight", DEFAULT_PRIORITY_WEIGHTS.get(level, 1.0)),
                f"{key}.weight",
                lo=0,
                lo_open=True,
            )
            out.append(Priority(level, name, target, weight))
        if not out:
            raise self.fail("priorities", "at least one [[priorities]] entry is needed")
        return tuple(sorted(out, key=lambda p: p.level))

    def incident_types(self, value: Any, levels: set[int]) -> tuple[IncidentType, ...]:
        out: list[IncidentType] = []
        allowed = (
            "name",
            "service",
            "priority",
            "vehicles",
            "calls_per_hour",
            "hour_profile",
            "on_scene",
            "transport_probability",
            "handover",
            "hospital_capability",
            "turnout_s",
        )
        items = self.list_(value, "incident_types")
        if not items:
            raise self.fail("incident_types", "at least one [[incident_types]] entry is needed")
        for i, item in enumerate(items):
            key = f"incident_types[{i}]"
            tbl = self.table(item, key)
            self.keys(tbl, key, allowed)
            name = self.str_(self.req(tbl, "name", key), f"{key}.name")
            if any(t.name == name for t in out):
                raise self.fail(f"{key}.name", f"duplicate incident type {name!r}")
            service = self.str_(
                str(self.req(tbl, "service", key)), f"{key}.service", choices=SERVICES
            )
            prio = self.int_(self.req(tbl, "priority", key), f"{key}.priority", lo=1)
            if prio not in levels:
                raise self.fail(f"{key}.priority", f"{prio} is not defined in [[priorities]]")
            vehicles = tuple(
                self.str_(v, f"{key}.vehicles[{j}]", choices=_VEHICLES)
                for j, v in enumerate(self.list_(self.req(tbl, "vehicles", key), f"{key}.vehicles"))
            )
            if not vehicles:
                raise self.fail(f"{key}.vehicles", "must name at least one vehicle class")
            rate = self.num(
                self.req(tbl, "calls_per_hour", key),
                f"{key}.calls_per_hour",
                lo=0,
                hi=MAX_CALLS_PER_HOUR,
            )
            profile: tuple[float, ...] = (1.0,) * 24
            if "hour_profile" in tbl:
                raw = self.list_(tbl["hour_profile"], f"{key}.hour_profile")
                if len(raw) != 24:
                    raise self.fail(
                        f"{key}.hour_profile", f"must have 24 values (one per hour), got {len(raw)}"
                    )
                vals = [self.num(v, f"{key}.hour_profile[{h}]", lo=0) for h, v in enumerate(raw)]
                total = sum(vals)
                if total <= 0:
                    raise self.fail(f"{key}.hour_profile", "must have a positive value somewhere")
                profile = tuple(v * 24.0 / total for v in vals)
            on_scene = self.distribution(self.req(tbl, "on_scene", key), f"{key}.on_scene")
            p_tr = self.num(
                tbl.get("transport_probability", 0.0), f"{key}.transport_probability", lo=0, hi=1
            )
            if p_tr > 0 and service != "115":
                raise self.fail(f"{key}.transport_probability", "only 115 (EMS) calls transport")
            handover = None
            if "handover" in tbl:
                handover = self.distribution(tbl["handover"], f"{key}.handover")
            if p_tr > 0 and handover is None:
                raise self.fail(f"{key}.handover", "needed when transport_probability > 0")
            cap = None
            if "hospital_capability" in tbl:
                cap = self.str_(
                    tbl["hospital_capability"],
                    f"{key}.hospital_capability",
                    choices=_capabilities(),
                )
            turnout = None
            if "turnout_s" in tbl:
                turnout = self.num(tbl["turnout_s"], f"{key}.turnout_s", lo=0, hi=MAX_TURNOUT_S)
            out.append(
                IncidentType(
                    name,
                    service,
                    prio,
                    vehicles,
                    rate,
                    profile,
                    on_scene,
                    p_tr,
                    handover,
                    cap,
                    turnout,
                )  # fmt: skip
            )
        return tuple(out)

    def stations(self, value: Any) -> tuple[Station, ...]:
        out: list[Station] = []
        for i, item in enumerate(self.list_(value, "stations")):
            key = f"stations[{i}]"
            tbl = self.table(item, key)
            self.keys(tbl, key, ("name", "lat", "lon"))
            name = self.str_(self.req(tbl, "name", key), f"{key}.name")
            if any(s.name == name for s in out):
                raise self.fail(f"{key}.name", f"duplicate station {name!r}")
            out.append(Station(name, *self.lat_lon(tbl, key)))
        return tuple(out)

    def map_stations(self, value: Any) -> MapStations:
        key = "map_stations"
        tbl = self.table(value, key)
        self.keys(tbl, key, ("kinds", "units"))
        kinds = tuple(
            self.str_(
                k,
                f"{key}.kinds[{j}]",
                choices=("fire_station", "ambulance_station", "hospital", "clinic"),
            )
            for j, k in enumerate(self.list_(self.req(tbl, "kinds", key), f"{key}.kinds"))
        )
        if not kinds:
            raise self.fail(f"{key}.kinds", "must name at least one facility kind")
        units_tbl = self.table(self.req(tbl, "units", key), f"{key}.units")
        units: list[tuple[str, int]] = []
        for v, n in units_tbl.items():
            self.str_(v, f"{key}.units.{v}", choices=_VEHICLES)
            units.append((v, self.int_(n, f"{key}.units.{v}", lo=0, hi=1000)))
        if sum(n for _, n in units) == 0:
            raise self.fail(f"{key}.units", "must place at least one unit per station")
        return MapStations(kinds, tuple(units))

    def units(self, value: Any, station_names: set[str], has_map: bool) -> tuple[Unit, ...]:
        out: list[Unit] = []
        seen: set[str] = set()
        for i, item in enumerate(self.list_(value, "units")):
            key = f"units[{i}]"
            tbl = self.table(item, key)
            self.keys(tbl, key, ("id", "vehicle", "station", "turnout_s", "count"))
            uid = self.str_(str(self.req(tbl, "id", key)), f"{key}.id")
            vehicle = self.str_(self.req(tbl, "vehicle", key), f"{key}.vehicle", choices=_VEHICLES)
            station = self.str_(self.req(tbl, "station", key), f"{key}.station")
            if station not in station_names and not has_map:
                raise self.fail(f"{key}.station", f"{station!r} is not a [[stations]] name")
            turnout = None
            if "turnout_s" in tbl:
                turnout = self.num(tbl["turnout_s"], f"{key}.turnout_s", lo=0, hi=MAX_TURNOUT_S)
            count = self.int_(tbl.get("count", 1), f"{key}.count", lo=1, hi=MAX_UNITS - len(out))
            ids = [uid] if count == 1 else [f"{uid}-{n + 1}" for n in range(count)]
            for u in ids:
                if u in seen:
                    raise self.fail(f"{key}.id", f"duplicate unit id {u!r}")
                seen.add(u)
                out.append(Unit(u, vehicle, station, turnout))
        return tuple(out)

    def hospitals(self, value: Any) -> tuple[Hospital, ...]:
        out: list[Hospital] = []
        for i, item in enumerate(self.list_(value, "hospitals")):
            key = f"hospitals[{i}]"
            tbl = self.table(item, key)
            self.keys(tbl, key, ("name", "lat", "lon", "capabilities"))
            name = self.str_(self.req(tbl, "name", key), f"{key}.name")
            lat, lon = self.lat_lon(tbl, key)
            caps = tuple(
                self.str_(c, f"{key}.capabilities[{j}]", choices=_capabilities())
                for j, c in enumerate(
                    self.list_(tbl.get("capabilities", []), f"{key}.capabilities")
                )
            )
            out.append(Hospital(name, lat, lon, caps))
        return tuple(out)

    def demand(self, value: Any) -> DemandLocations:
        key = "demand"
        tbl = self.table(value, key)
        self.keys(
            tbl, key, ("locations", "zones", "weight_property", "name_property", "cell_m", "cells", "points")
        )  # fmt: skip
        kind = self.str_(tbl.get("locations", "roads"), f"{key}.locations", choices=_LOCATION_KINDS)
        zones = self.path(tbl["zones"], f"{key}.zones") if "zones" in tbl else None
        points = self.path(tbl["points"], f"{key}.points") if "points" in tbl else None
        cell_m = self.num(tbl.get("cell_m", 1000.0), f"{key}.cell_m", lo=10)
        cells: list[tuple[float, float, float]] = []
        for j, c in enumerate(self.list_(tbl.get("cells", []), f"{key}.cells")):
            row = self.list_(c, f"{key}.cells[{j}]")
            if len(row) != 3:
                raise self.fail(f"{key}.cells[{j}]", f"must be [lat, lon, weight], got {row!r}")
            cells.append(
                (
                    self.num(row[0], f"{key}.cells[{j}][0] (lat)", lo=-90, hi=90),
                    self.num(row[1], f"{key}.cells[{j}][1] (lon)", lo=-180, hi=180),
                    self.num(row[2], f"{key}.cells[{j}][2] (weight)", lo=0),
                )
            )
        if kind == "zones" and zones is None:
            raise self.fail(f"{key}.zones", "needed when locations = 'zones'")
        if kind == "points" and points is None:
            raise self.fail(f"{key}.points", "needed when locations = 'points'")
        if kind == "grid" and (not cells or sum(c[2] for c in cells) <= 0):
            raise self.fail(
                f"{key}.cells", "needs cells with a positive weight when locations = 'grid'"
            )
        wp = self.str_(tbl.get("weight_property", "weight"), f"{key}.weight_property")
        np_ = self.str_(tbl.get("name_property", "name"), f"{key}.name_property")
        return DemandLocations(kind, zones, wp, np_, cell_m, tuple(cells), points)

    def closures(self, value: Any) -> tuple[Closure, ...]:
        out: list[Closure] = []
        for i, item in enumerate(self.list_(value, "closures")):
            key = f"closures[{i}]"
            tbl = self.table(item, key)
            self.keys(
                tbl, key, ("label", "start_h", "end_h", "vehicles", "geojson", "polygon", "way_ids")
            )
            label = self.str_(tbl.get("label", f"closure {i}"), f"{key}.label")
            start = self.num(tbl["start_h"], f"{key}.start_h", lo=0) if "start_h" in tbl else None
            end = self.num(tbl["end_h"], f"{key}.end_h", lo=0) if "end_h" in tbl else None
            if start is not None and end is not None and end <= start:
                raise self.fail(f"{key}.end_h", f"must be > start_h={start:g}, got {end:g}")
            vehicles = None
            if "vehicles" in tbl:
                vehicles = tuple(
                    self.str_(v, f"{key}.vehicles[{j}]", choices=_VEHICLES)
                    for j, v in enumerate(self.list_(tbl["vehicles"], f"{key}.vehicles"))
                )
            given = [k for k in ("geojson", "polygon", "way_ids") if k in tbl]
            if len(given) != 1:
                raise self.fail(
                    key, f"needs exactly one of geojson, polygon, way_ids (got {given or 'none'})"
                )
            geo = self.path(tbl["geojson"], f"{key}.geojson") if "geojson" in tbl else None
            poly = None
            if "polygon" in tbl:
                ring = self.list_(tbl["polygon"], f"{key}.polygon")
                pts = []
                for j, pt in enumerate(ring):
                    pt = self.list_(pt, f"{key}.polygon[{j}]")
                    if len(pt) != 2:
                        raise self.fail(f"{key}.polygon[{j}]", f"must be [lat, lon], got {pt!r}")
                    pts.append(
                        (
                            self.num(pt[0], f"{key}.polygon[{j}][0] (lat)", lo=-90, hi=90),
                            self.num(pt[1], f"{key}.polygon[{j}][1] (lon)", lo=-180, hi=180),
                        )
                    )
                if len(pts) < 3:
                    raise self.fail(f"{key}.polygon", f"needs at least 3 points, got {len(pts)}")
                poly = tuple(pts)
            ways = None
            if "way_ids" in tbl:
                ways = tuple(
                    self.int_(w, f"{key}.way_ids[{j}]", lo=1)
                    for j, w in enumerate(self.list_(tbl["way_ids"], f"{key}.way_ids"))
                )
                if not ways:
                    raise self.fail(f"{key}.way_ids", "must list at least one way id")
            out.append(Closure(label, start, end, vehicles, geo, poly, ways))
        return tuple(out)

    # -- whole document -----------------------------------------------------------------------

    def run_cards(self, value: Any, types: Sequence[IncidentType]) -> RunCards:
        """``run_cards``: ``true`` (built-in table), a TOML path, or an inline run-card table."""
        key = "run_cards"
        try:
            if value is True:
                cards = load_run_cards(None)
            elif isinstance(value, str):
                import dataclasses

                # labelled as written (not the absolute path): the summary stays machine-independent
                cards = dataclasses.replace(load_run_cards(self.path(value, key)), source=value)
            elif isinstance(value, Mapping):
                cards = RunCards.from_dict(value, source="inline run_cards")
            else:
                raise self.fail(
                    key, f"must be true, a run-card TOML path or a table, got {value!r}"
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

    def scenario(self, data: Mapping[str, Any]) -> Scenario:
        top = (
            "name",
            "description",
            "map",
            "simulation",
            "turnout",
            "priorities",
            "incident_types",
            "stations",
            "map_stations",
            "units",
            "fleet",
            "hospitals",
            "hospitals_from_map",
            "demand",
            "closures",
            "stats",
            "run_cards",
        )
        self.keys(data, "", top)
        default_name = self.source.stem if self.source is not None else "scenario"
        name = self.str_(data.get("name", default_name), "name")
        description = data.get("description", "")
        if not isinstance(description, str):
            raise self.fail("description", f"must be a string, got {description!r}")
        map_name = self.str_(self.req(data, "map", ""), "map")
        # A map given as a relative path resolves against the scenario folder.
        if ("/" in map_name or map_name.endswith((".osm", ".pbf", ".bz2"))) and not Path(
            map_name
        ).is_absolute():
            map_name = str(self.base / map_name)

        sim = self.table(data.get("simulation", {}), "simulation")
        self.keys(
            sim,
            "simulation",
            (
                "horizon_h",
                "warmup_h",
                "seed",
                "replications",
                "policy",
                "processing_s",
                "returning",
            ),
        )
        horizon = self.num(
            self.req(sim, "horizon_h", "simulation"),
            "simulation.horizon_h",
            lo=0,
            lo_open=True,
            hi=MAX_HORIZON_H,
        )
        warmup = self.num(sim.get("warmup_h", 0.0), "simulation.warmup_h", lo=0)
        if warmup >= horizon:
            raise self.fail(
                "simulation.warmup_h", f"must be < horizon_h={horizon:g}, got {warmup:g}"
            )
        seed = self.int_(sim.get("seed", 0), "simulation.seed", lo=0)
        reps = self.int_(
            sim.get("replications", 1), "simulation.replications", lo=1, hi=MAX_REPLICATIONS
        )
        policy = self.str_(sim.get("policy", "fastest"), "simulation.policy", choices=POLICIES)
        processing = self.num(sim.get("processing_s", 0.0), "simulation.processing_s", lo=0)
        returning = self.str_(
            sim.get("returning", "route"), "simulation.returning", choices=("route", "home")
        )

        turnout_tbl = self.table(data.get("turnout", {}), "turnout")
        self.keys(turnout_tbl, "turnout", ("fire_s", "ems_s"))
        turnout = {
            "114": self.num(
                turnout_tbl.get("fire_s", DEFAULT_TURNOUT_S["114"]),
                "turnout.fire_s",
                lo=0,
                hi=MAX_TURNOUT_S,
            ),
            "115": self.num(
                turnout_tbl.get("ems_s", DEFAULT_TURNOUT_S["115"]),
                "turnout.ems_s",
                lo=0,
                hi=MAX_TURNOUT_S,
            ),
        }

        priorities = self.priorities(self.req(data, "priorities", ""))
        types = self.incident_types(
            self.req(data, "incident_types", ""), {p.level for p in priorities}
        )
        try:
            _check_expected_calls(types, horizon, "simulation.horizon_h")
        except ScenarioError as exc:
            raise ScenarioError(f"{self.where}: {exc}") from None
        stations = self.stations(data.get("stations", []))
        map_st = self.map_stations(data["map_stations"]) if "map_stations" in data else None
        units = self.units(data.get("units", []), {s.name for s in stations}, map_st is not None)
        fleet = self.path(data["fleet"], "fleet") if "fleet" in data else None
        if not units and fleet is None and map_st is None:
            raise self.fail(
                "units", "no units: give [[units]], fleet = 'file.csv' or [map_stations]"
            )
        hospitals = self.hospitals(data.get("hospitals", []))
        from_map = data.get("hospitals_from_map", False)
        if not isinstance(from_map, bool):
            raise self.fail("hospitals_from_map", f"must be true or false, got {from_map!r}")
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
        stats = self.table(data.get("stats", {}), "stats")
        self.keys(stats, "stats", ("cell_m",))
        cell_m = self.num(stats.get("cell_m", demand.cell_m), "stats.cell_m", lo=10)

        run_cards = self.run_cards(data["run_cards"], types) if "run_cards" in data else None
        if run_cards is not None and policy == "optimal_batch":
            raise self.fail(
                "simulation.policy", "optimal_batch does not take run cards yet (use fastest)"
            )

        return Scenario(
            name=name,
            source=self.source,
            map=map_name,
            description=description,
            horizon_h=horizon,
            warmup_h=warmup,
            seed=seed,
            replications=reps,
            policy=policy,
            processing_s=processing,
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
            returning=returning,
            run_cards=run_cards,
        )
