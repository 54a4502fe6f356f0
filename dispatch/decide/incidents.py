"""Incidents and units: the inputs of dispatch decisions, with their JSON/CSV forms.

An :class:`Incident` is a call at a location with a type and a priority. Types cover both Vietnamese
hotlines: **114** (fire and rescue) and **115** (emergency medical), plus **joint** types that need
units of both (a fire with injured people, a traffic crash with entrapment). Each type has a default
priority and, when a patient may be transported, the hospital capability it needs.

A :class:`Unit` is a vehicle of the fleet (``ambulance``, ``fire_engine``, ``ladder`` or ``motorbike``)
with a position, a status and a turnout (mobilisation) delay.

JSON forms
----------
Incident::

    {"id": "C1", "lat": 16.0544, "lon": 108.2022, "type": "structure_fire", "priority": 1}

``type`` defaults to ``general_medical`` and ``priority`` to the type's default priority.

Unit (one row of FLEET.csv; columns ``id,vehicle,lat,lon`` plus optional ``status``, ``station``,
``turnout_s``, ``assigned_priority``)::

    {"id": "AMB-1", "vehicle": "ambulance", "lat": 16.05, "lon": 108.21, "status": "available",
     "station": "Hoan My General Hospital", "turnout_s": 60.0}

Unit status: ``available`` (default) and ``returning`` (on its way back to its station; it can be
dispatched from where it is, with no turnout delay since the crew is already on board) can be sent;
``busy`` and ``out_of_service`` are skipped; ``en_route`` (already sent to an incident whose priority
is ``assigned_priority``) is skipped unless the priority-1 redispatch rule is switched on
(see :mod:`dispatch.decide.assign`).

Turnout defaults are the NFPA 1710 turnout-time objectives (80 s for fire units, 60 s for EMS units);
they are standards for the 90th percentile, used here as a labelled default, not Da Nang measurements.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dispatch.errors import DispatchError, FleetError, InputFileError

__all__ = [
    "DEFAULT_INCIDENT_TYPE",
    "DEFAULT_TURNOUT_S",
    "HOSPITAL_CAPABILITIES",
    "INCIDENT_TYPES",
    "UNIT_STATUSES",
    "VEHICLE_CLASSES",
    "Incident",
    "IncidentError",
    "IncidentType",
    "Unit",
    "incident_type",
    "read_fleet",
    "read_incident_json",
    "read_incidents",
    "units_from_records",
]

#: Vehicle classes of the fleet (same tuple as ``dispatch.VEHICLE_CLASSES`` in the core).
VEHICLE_CLASSES: tuple[str, ...] = ("ambulance", "fire_engine", "ladder", "motorbike")

#: Hospital capabilities an incident may need and a hospital may offer.
HOSPITAL_CAPABILITIES: tuple[str, ...] = (
    "general",
    "trauma",
    "cardiac",
    "stroke",
    "burns",
    "paediatrics",
)

#: Default turnout (mobilisation) delay per vehicle class, seconds: NFPA 1710 turnout objectives
#: (80 s fire, 60 s EMS; the motorbike first responder counts as EMS). Labelled defaults.
DEFAULT_TURNOUT_S: dict[str, float] = {
    "ambulance": 60.0,
    "fire_engine": 80.0,
    "ladder": 80.0,
    "motorbike": 60.0,
}

#: Unit statuses and whether a unit with that status can normally be dispatched.
UNIT_STATUSES: dict[str, bool] = {
    "available": True,
    "returning": True,
    "busy": False,
    "out_of_service": False,
    "en_route": False,
}


class IncidentError(DispatchError):
    """An incident that cannot be used: unknown type, bad priority, bad location or id."""


@dataclass(frozen=True)
class IncidentType:
    """A kind of incident.

    Parameters
    ----------
    name : str
        Identifier used in files (``structure_fire``).
    service : str
        ``"114"`` (fire and rescue), ``"115"`` (emergency medical) or ``"joint"`` (both).
    default_priority : int
        Priority 1 (most urgent) to 3 used when an incident does not give one.
    hospital_capability : str or None
        Capability of the hospital a patient is taken to (``None``: no transport expected).
    description : str
        One line for humans.
    """

    name: str
    service: str
    default_priority: int
    hospital_capability: str | None
    description: str

    def __post_init__(self) -> None:
        if self.service not in ("114", "115", "joint"):
            raise IncidentError(f"service must be '114', '115' or 'joint', got {self.service!r}")
        if self.default_priority not in (1, 2, 3):
            raise IncidentError(
                f"default_priority must be 1, 2 or 3, got {self.default_priority!r}"
            )
        if (
            self.hospital_capability is not None
            and self.hospital_capability not in HOSPITAL_CAPABILITIES
        ):
            raise IncidentError(
                f"hospital_capability must be one of {HOSPITAL_CAPABILITIES}, "
                f"got {self.hospital_capability!r}"
            )

    @property
    def needs_hospital(self) -> bool:
        """Whether a patient is expected to be transported (115 and joint types)."""
        return self.hospital_capability is not None


_TYPES = (
    # 114: fire and rescue
    IncidentType("structure_fire", "114", 1, None, "fire in a house, shop or other building"),
    IncidentType("high_rise_fire", "114", 1, None, "fire in a building above the reach of engines"),
    IncidentType("vehicle_fire", "114", 2, None, "car, truck or motorbike on fire"),
    IncidentType("rescue", "114", 1, None, "technical rescue (person trapped, fall, lift)"),
    IncidentType("water_rescue", "114", 1, None, "flood or water rescue (typhoon, river)"),
    IncidentType("hazmat", "114", 1, None, "hazardous materials leak or spill"),
    IncidentType("fire_alarm", "114", 3, None, "automatic fire alarm to check"),
    # 115: emergency medical
    IncidentType("cardiac_arrest", "115", 1, "cardiac", "cardiac arrest or chest pain"),
    IncidentType("stroke", "115", 1, "stroke", "suspected stroke"),
    IncidentType("trauma", "115", 1, "trauma", "serious injury (fall, assault, crash)"),
    IncidentType("burns", "115", 2, "burns", "burn injury without fire in progress"),
    IncidentType("paediatric", "115", 2, "paediatrics", "sick or injured child"),
    IncidentType("general_medical", "115", 2, "general", "general medical emergency"),
    IncidentType("minor_medical", "115", 3, "general", "minor illness or injury"),
    # joint 114 + 115
    IncidentType("fire_with_injuries", "joint", 1, "burns", "fire with injured people"),
    IncidentType(
        "traffic_crash_entrapment", "joint", 1, "trauma", "traffic crash with people trapped"
    ),
    IncidentType("building_collapse", "joint", 1, "trauma", "collapse with casualties"),
)

#: Every incident type by name.
INCIDENT_TYPES: dict[str, IncidentType] = {t.name: t for t in _TYPES}

#: Type used when an incident does not give one (a general medical call: one ambulance).
DEFAULT_INCIDENT_TYPE = "general_medical"


def incident_type(name: str) -> IncidentType:
    """Return the :class:`IncidentType` called `name`.

    Raises
    ------
    IncidentError
        If `name` is not a known type.
    """
    try:
        return INCIDENT_TYPES[name]
    except (KeyError, TypeError):
        known = ", ".join(INCIDENT_TYPES)
        raise IncidentError(f"unknown incident type {name!r} (known: {known})") from None


def _check_latlon(what: str, lat: Any, lon: Any, error: type[DispatchError]) -> tuple[float, float]:
    try:
        flat, flon = float(lat), float(lon)
    except (TypeError, ValueError):
        raise error(f"{what}: lat/lon must be numbers, got lat={lat!r}, lon={lon!r}") from None
    if not (math.isfinite(flat) and math.isfinite(flon)):
        raise error(f"{what}: lat/lon must be finite, got lat={lat!r}, lon={lon!r}")
    if not -90.0 <= flat <= 90.0:
        raise error(f"{what}: lat must be in [-90, 90], got {lat!r}")
    if not -180.0 <= flon <= 180.0:
        raise error(f"{what}: lon must be in [-180, 180], got {lon!r}")
    return flat, flon


@dataclass(frozen=True)
class Incident:
    """An emergency call to serve.

    Parameters
    ----------
    id : str
        Identifier, unique within a batch.
    lat, lon : float
        Scene location (WGS84 degrees).
    type : str
        One of :data:`INCIDENT_TYPES` (default ``general_medical``).
    priority : int or None
        1 (most urgent), 2 or 3; ``None`` takes the type's default priority.
    """

    id: str
    lat: float
    lon: float
    type: str = DEFAULT_INCIDENT_TYPE
    priority: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id.strip():
            raise IncidentError(f"incident id must be a non-empty string, got {self.id!r}")
        lat, lon = _check_latlon(f"incident {self.id!r}", self.lat, self.lon, IncidentError)
        object.__setattr__(self, "lat", lat)
        object.__setattr__(self, "lon", lon)
        kind = incident_type(self.type)
        prio = kind.default_priority if self.priority is None else self.priority
        if isinstance(prio, bool) or prio not in (1, 2, 3):
            raise IncidentError(
                f"incident {self.id!r}: priority must be 1, 2 or 3, got {self.priority!r}"
            )
        object.__setattr__(self, "priority", int(prio))

    @property
    def kind(self) -> IncidentType:
        """The :class:`IncidentType` of this incident."""
        return INCIDENT_TYPES[self.type]

    @property
    def point(self) -> tuple[float, float]:
        """``(lat, lon)`` of the scene."""
        return (self.lat, self.lon)

    def to_dict(self) -> dict[str, Any]:
        """JSON form (see the module docstring)."""
        return {
            "id": self.id,
            "lat": self.lat,
            "lon": self.lon,
            "type": self.type,
            "priority": self.priority,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, where: str = "incident") -> Incident:
        """Build an incident from its JSON form; `where` prefixes error messages."""
        if not isinstance(data, Mapping):
            raise IncidentError(f"{where}: expected a JSON object, got {type(data).__name__}")
        unknown = set(data) - {"id", "lat", "lon", "type", "priority"}
        if unknown:
            raise IncidentError(f"{where}: unknown field(s) {sorted(unknown)}")
        for key in ("id", "lat", "lon"):
            if key not in data:
                raise IncidentError(f"{where}: missing field {key!r}")
        prio = data.get("priority")
        if prio is not None and not isinstance(prio, int | str):
            raise IncidentError(f"{where}: priority must be 1, 2 or 3, got {prio!r}")
        try:
            prio_int = None if prio in (None, "") else int(prio)
        except ValueError:
            raise IncidentError(f"{where}: priority must be 1, 2 or 3, got {prio!r}") from None
        try:
            return cls(
                id=str(data["id"]),
                lat=data["lat"],
                lon=data["lon"],
                type=data.get("type") or DEFAULT_INCIDENT_TYPE,
                priority=prio_int,
            )
        except IncidentError as exc:
            raise IncidentError(f"{where}: {exc}") from None


@dataclass(frozen=True)
class Unit:
    """A vehicle of the fleet.

    Parameters
    ----------
    id : str
        Unique identifier.
    vehicle : str
        One of :data:`VEHICLE_CLASSES`.
    lat, lon : float
        Current position (the station, or where a returning unit is now).
    status : str
        One of :data:`UNIT_STATUSES` (default ``available``).
    station : str
        Home station label (free text).
    turnout_s : float or None
        Turnout delay in seconds; ``None`` takes :data:`DEFAULT_TURNOUT_S` for an ``available``
        unit and 0 for a ``returning`` or ``en_route`` unit (crew already on the road).
    assigned_priority : int or None
        For an ``en_route`` unit, the priority of the incident it is going to.
    """

    id: str
    vehicle: str
    lat: float
    lon: float
    status: str = "available"
    station: str = ""
    turnout_s: float | None = None
    assigned_priority: int | None = None
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id.strip():
            raise FleetError(f"unit id must be a non-empty string, got {self.id!r}")
        if self.vehicle not in VEHICLE_CLASSES:
            raise FleetError(
                f"unit {self.id!r}: vehicle must be one of {VEHICLE_CLASSES}, got {self.vehicle!r}"
            )
        lat, lon = _check_latlon(f"unit {self.id!r}", self.lat, self.lon, FleetError)
        object.__setattr__(self, "lat", lat)
        object.__setattr__(self, "lon", lon)
        if self.status not in UNIT_STATUSES:
            raise FleetError(
                f"unit {self.id!r}: status must be one of {tuple(UNIT_STATUSES)}, got {self.status!r}"
            )
        if self.turnout_s is None:
            turnout = (
                DEFAULT_TURNOUT_S[self.vehicle] if self.status in ("available", "busy") else 0.0
            )
        else:
            try:
                turnout = float(self.turnout_s)
            except (TypeError, ValueError):
                raise FleetError(
                    f"unit {self.id!r}: turnout_s must be a number, got {self.turnout_s!r}"
                ) from None
            if not (math.isfinite(turnout) and 0.0 <= turnout <= 3600.0):
                raise FleetError(
                    f"unit {self.id!r}: turnout_s must be in [0, 3600], got {self.turnout_s!r}"
                )
        object.__setattr__(self, "turnout_s", turnout)
        if self.assigned_priority is not None and self.assigned_priority not in (1, 2, 3):
            raise FleetError(
                f"unit {self.id!r}: assigned_priority must be 1, 2 or 3, "
                f"got {self.assigned_priority!r}"
            )
        if self.status == "en_route" and self.assigned_priority is None:
            raise FleetError(f"unit {self.id!r}: status 'en_route' needs assigned_priority")

    @property
    def dispatchable(self) -> bool:
        """Whether the unit can be sent without redispatch (``available`` or ``returning``)."""
        return UNIT_STATUSES[self.status]

    @property
    def point(self) -> tuple[float, float]:
        """``(lat, lon)`` of the unit."""
        return (self.lat, self.lon)

    def to_dict(self) -> dict[str, Any]:
        """JSON form (see the module docstring)."""
        out: dict[str, Any] = {
            "id": self.id,
            "vehicle": self.vehicle,
            "lat": self.lat,
            "lon": self.lon,
            "status": self.status,
            "station": self.station,
            "turnout_s": self.turnout_s,
        }
        if self.assigned_priority is not None:
            out["assigned_priority"] = self.assigned_priority
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, where: str = "unit") -> Unit:
        """Build a unit from a mapping (JSON form, CSV row or a core fleet record)."""
        if not isinstance(data, Mapping):
            raise FleetError(f"{where}: expected a mapping, got {type(data).__name__}")
        for key in ("id", "vehicle", "lat", "lon"):
            if data.get(key) in (None, ""):
                raise FleetError(f"{where}: missing field {key!r}")
        status = data.get("status")
        if status in (None, ""):
            available = data.get("available")
            status = "busy" if available is False else "available"
        turnout = data.get("turnout_s")
        prio = data.get("assigned_priority")
        try:
            prio_int = None if prio in (None, "") else int(prio)
        except (TypeError, ValueError):
            raise FleetError(
                f"{where}: assigned_priority must be 1, 2 or 3, got {prio!r}"
            ) from None
        known = {"id", "vehicle", "lat", "lon", "status", "available", "station", "turnout_s"}
        try:
            return cls(
                id=str(data["id"]).strip(),
                vehicle=str(data["vehicle"]).strip(),
                lat=data["lat"],
                lon=data["lon"],
                status=str(status).strip(),
                station=str(data.get("station") or ""),
                turnout_s=None if turnout in (None, "") else turnout,
                assigned_priority=prio_int,
                extra={k: v for k, v in data.items() if k not in known | {"assigned_priority"}},
            )
        except FleetError as exc:
            raise FleetError(f"{where}: {exc}") from None


def units_from_records(records: Iterable[Unit | Mapping[str, Any]]) -> list[Unit]:
    """Turn units or mappings (e.g. rows of ``read_fleet_csv``) into a list of :class:`Unit`.

    Raises
    ------
    FleetError
        On an empty fleet, a bad record or duplicate ids.
    """
    units: list[Unit] = []
    for i, rec in enumerate(records):
        units.append(rec if isinstance(rec, Unit) else Unit.from_dict(rec, where=f"unit #{i + 1}"))
    if not units:
        raise FleetError("fleet is empty: no unit given")
    seen: set[str] = set()
    for u in units:
        if u.id in seen:
            raise FleetError(f"duplicate unit id {u.id!r}")
        seen.add(u.id)
    return units


def _data_lines(path: Path) -> tuple[list[tuple[int, str]], str]:
    """Lines of a CSV file without comment lines (``#``), with their 1-based line numbers."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputFileError(f"{path}: not UTF-8 text ({exc.reason})") from None
    lines = [
        (n, line)
        for n, line in enumerate(text.splitlines(), start=1)
        if line.strip() and not line.lstrip().startswith("#")
    ]
    return lines, text


def _read_csv_rows(
    path: Path, *, required: Sequence[str], optional: Sequence[str]
) -> list[tuple[int, dict[str, str]]]:
    lines, _ = _data_lines(path)
    if not lines:
        raise InputFileError(f"{path}: empty file (no header line)")
    header_no, header_line = lines[0]
    header = [h.strip() for h in next(csv.reader([header_line]))]
    missing = [c for c in required if c not in header]
    if missing:
        raise InputFileError(
            f"{path}: line {header_no}: header lacks column(s) {missing} (has {header})"
        )
    unknown = [c for c in header if c not in required and c not in optional]
    if unknown:
        raise InputFileError(f"{path}: line {header_no}: unknown column(s) {unknown}")
    if len(set(header)) != len(header):
        raise InputFileError(f"{path}: line {header_no}: duplicate column names in {header}")
    rows = []
    for n, line in lines[1:]:
        cells = [c.strip() for c in next(csv.reader([line]))]
        if len(cells) != len(header):
            raise InputFileError(
                f"{path}: line {n}: expected {len(header)} fields ({','.join(header)}), "
                f"got {len(cells)}"
            )
        rows.append((n, dict(zip(header, cells, strict=True))))
    if not rows:
        raise InputFileError(f"{path}: no data rows after the header")
    return rows


def _float_field(path: Path, n: int, name: str, value: str) -> float:
    try:
        out = float(value)
    except ValueError:
        raise InputFileError(f"{path}: line {n}: field {name!r}: not a number: {value!r}") from None
    if not math.isfinite(out):
        raise InputFileError(f"{path}: line {n}: field {name!r}: not finite: {value!r}")
    return out


def read_fleet(path: str | Path) -> list[Unit]:
    """Read FLEET.csv: ``id,vehicle,lat,lon`` plus optional columns.

    Optional columns: ``status`` (default ``available``), ``station``, ``turnout_s`` (default per class,
    :data:`DEFAULT_TURNOUT_S`), ``assigned_priority`` (for ``en_route`` units), ``note`` (ignored).
    Lines starting with ``#`` are comments.

    Raises
    ------
    InputFileError
        On a malformed file; the message names the file, line and field.
    FleetError
        On duplicate ids.
    """
    path = Path(path)
    rows = _read_csv_rows(
        path,
        required=("id", "vehicle", "lat", "lon"),
        optional=("status", "station", "turnout_s", "assigned_priority", "note", "source"),
    )
    units = []
    seen: dict[str, int] = {}
    for n, row in rows:
        for name in ("id", "vehicle", "lat", "lon"):
            if not row[name]:
                raise InputFileError(f"{path}: line {n}: field {name!r} is empty")
        lat = _float_field(path, n, "lat", row["lat"])
        lon = _float_field(path, n, "lon", row["lon"])
        turnout = row.get("turnout_s") or None
        turnout_f = None if turnout is None else _float_field(path, n, "turnout_s", turnout)
        prio = row.get("assigned_priority") or None
        if prio is not None and prio not in ("1", "2", "3"):
            raise InputFileError(
                f"{path}: line {n}: field 'assigned_priority': must be 1, 2 or 3, got {prio!r}"
            )
        if row["id"] in seen:
            raise InputFileError(
                f"{path}: line {n}: field 'id': duplicate unit id {row['id']!r} "
                f"(first on line {seen[row['id']]})"
            )
        seen[row["id"]] = n
        try:
            units.append(
                Unit(
                    id=row["id"],
                    vehicle=row["vehicle"],
                    lat=lat,
                    lon=lon,
                    status=row.get("status") or "available",
                    station=row.get("station") or "",
                    turnout_s=turnout_f,
                    assigned_priority=None if prio is None else int(prio),
                )
            )
        except FleetError as exc:
            field_name = _field_of(str(exc), ("vehicle", "status", "turnout_s", "lat", "lon"))
            raise InputFileError(f"{path}: line {n}: field {field_name!r}: {exc}") from None
    return units


def _field_of(message: str, names: Sequence[str]) -> str:
    for name in names:
        if name in message:
            return name
    return names[0]


def read_incidents(path: str | Path) -> list[Incident]:
    """Read incidents from CSV (``id,lat,lon`` plus optional ``type``, ``priority``) or JSON.

    JSON: a list of incident objects, or ``{"incidents": [...]}``, or a single incident object.

    Raises
    ------
    InputFileError
        On a malformed file (file, line and field named) or duplicate ids.
    IncidentError
        On an unknown type or bad priority in JSON (the incident is named).
    """
    path = Path(path)
    if path.suffix.lower() == ".json":
        data = _load_json(path)
        if isinstance(data, Mapping) and "incidents" in data:
            data = data["incidents"]
        if isinstance(data, Mapping):
            data = [data]
        if not isinstance(data, list) or not data:
            raise InputFileError(f"{path}: expected a non-empty list of incidents")
        incidents = [
            Incident.from_dict(item, where=f"{path}: incident #{i + 1}")
            for i, item in enumerate(data)
        ]
    else:
        rows = _read_csv_rows(
            path, required=("id", "lat", "lon"), optional=("type", "priority", "note")
        )
        incidents = []
        for n, row in rows:
            for name in ("id", "lat", "lon"):
                if not row[name]:
                    raise InputFileError(f"{path}: line {n}: field {name!r} is empty")
            lat = _float_field(path, n, "lat", row["lat"])
            lon = _float_field(path, n, "lon", row["lon"])
            prio = row.get("priority") or None
            if prio is not None and prio not in ("1", "2", "3"):
                raise InputFileError(
                    f"{path}: line {n}: field 'priority': must be 1, 2 or 3, got {prio!r}"
                )
            kind = row.get("type") or DEFAULT_INCIDENT_TYPE
            if kind not in INCIDENT_TYPES:
                raise InputFileError(
                    f"{path}: line {n}: field 'type': unknown incident type {kind!r} "
                    f"(known: {', '.join(INCIDENT_TYPES)})"
                )
            try:
                incidents.append(
                    Incident(
                        id=row["id"],
                        lat=lat,
                        lon=lon,
                        type=kind,
                        priority=None if prio is None else int(prio),
                    )
                )
            except IncidentError as exc:
                raise InputFileError(f"{path}: line {n}: {exc}") from None
    seen: set[str] = set()
    for inc in incidents:
        if inc.id in seen:
            raise InputFileError(f"{path}: duplicate incident id {inc.id!r}")
        seen.add(inc.id)
    return incidents


def read_incident_json(path: str | Path) -> Incident:
    """Read one incident from a JSON file (its JSON form).

    Raises
    ------
    InputFileError
        On malformed JSON (line and column named) or a list with more than one incident.
    IncidentError
        On an unknown type, a missing field or a bad priority.
    """
    path = Path(path)
    data = _load_json(path)
    if isinstance(data, list):
        if len(data) != 1:
            raise InputFileError(f"{path}: expected one incident object, got a list of {len(data)}")
        data = data[0]
    return Incident.from_dict(data, where=str(path))


def _load_json(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputFileError(f"{path}: not UTF-8 text ({exc.reason})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputFileError(
            f"{path}: line {exc.lineno}, column {exc.colno}: malformed JSON: {exc.msg}"
        ) from None
