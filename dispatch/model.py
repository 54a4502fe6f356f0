"""The domain model: vehicle classes, unit statuses, units, incidents, incident types, hospitals, stations.

One type per concept and one source for every default, used by every command, the library and the
simulator. The dataclasses are frozen and validate their fields (numbers are numbers, never booleans;
latitudes and longitudes in range; known classes, statuses and types); a bad value raises a subclass
of :class:`dispatch.errors.DispatchError` naming the object and the field. File formats are read in
:mod:`dispatch.io`; OSM ids appear only there and in the road network, never here.

Defaults (one rule each)
------------------------
Turnout (mobilisation, notified to en route)
    Per **vehicle class**: 80 s for ``fire_engine`` and ``ladder`` (service 114), 60 s for
    ``ambulance`` and ``motorbike`` (service 115): the NFPA 1710 turnout objectives, used as labelled
    defaults, not Da Nang measurements. A unit's own ``turnout_s`` always wins; a ``returning`` or
    ``en_route`` unit without one has 0 s (its crew is already on the road). In a simulation, the
    scenario's ``[turnout] fire_s / ems_s`` replaces the class default of every unit of that service
    that does not give its own ``turnout_s`` (units of ``[[units]]``, ``[map_stations]`` and a fleet
    CSV alike). Every turnout is in ``[0, MAX_TURNOUT_S]`` (3,600 s) wherever it is read.
Unit statuses
    ``available`` (default) and ``returning`` can be sent; ``busy`` and ``out_of_service`` are
    skipped; ``en_route`` (sent to an incident of priority ``assigned_priority``) is skipped unless
    the priority-1 redispatch rule is on. Every fleet reader accepts exactly these five.
Priorities
    1 (most urgent) to 3; targets 480 / 900 / 1800 s and optimiser weights 4 / 2 / 1
    (:data:`DEFAULT_TARGETS_S`, :data:`DEFAULT_PRIORITY_WEIGHTS`).

>>> u = Unit("A1", "ambulance", 16.0594, 108.2099)
>>> u.vehicle is VehicleClass.AMBULANCE, u.effective_turnout_s
(True, 60.0)
>>> Unit("E1", "fire_engine", 16.06, 108.21, status="returning").effective_turnout_s
0.0
>>> VehicleClass("ladder").service, VehicleClass("ladder").default_turnout_s
('114', 80.0)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from dispatch.errors import DispatchError, FleetError

__all__ = [
    "DEFAULT_INCIDENT_TYPE",
    "DEFAULT_PRIORITY_WEIGHTS",
    "DEFAULT_TARGETS_S",
    "DEFAULT_TURNOUT_S",
    "HOSPITAL_CAPABILITIES",
    "INCIDENT_TYPES",
    "MAX_TURNOUT_S",
    "PRIORITIES",
    "SERVICES",
    "SERVICE_TURNOUT_S",
    "UNIT_STATUSES",
    "VEHICLE_CLASSES",
    "VEHICLE_SERVICE",
    "Hospital",
    "HospitalError",
    "HourError",
    "Incident",
    "IncidentError",
    "IncidentType",
    "Station",
    "Unit",
    "UnitStatus",
    "VehicleClass",
    "check_hour",
    "check_latlon",
    "check_number",
    "short_repr",
    "incident_type",
    "turnout_for",
]


class IncidentError(DispatchError):
    """An incident that cannot be used: unknown type, bad priority, bad location or id."""


class HourError(DispatchError):
    """A clock hour that is not a finite number >= 0 (``'17'``, ``True``, NaN, inf)."""


class HospitalError(DispatchError):
    """A hospital that cannot be used (bad id, location or capability)."""


# ----------------------------------------------------------------------------------------------
# vehicle classes, services, statuses
# ----------------------------------------------------------------------------------------------

#: Services: 114 fire and rescue, 115 emergency medical.
SERVICES: tuple[str, ...] = ("114", "115")

#: NFPA 1710 turnout objectives per service, seconds (labelled defaults, not local measurements).
SERVICE_TURNOUT_S: dict[str, float] = {"114": 80.0, "115": 60.0}

#: The one limit on any turnout delay, seconds (an hour: beyond it the unit is not really available).
MAX_TURNOUT_S = 3600.0


class VehicleClass(StrEnum):
    """A vehicle class of the fleet (a ``str``: ``VehicleClass.AMBULANCE == "ambulance"``)."""

    AMBULANCE = "ambulance"
    FIRE_ENGINE = "fire_engine"
    LADDER = "ladder"
    MOTORBIKE = "motorbike"

    @property
    def service(self) -> str:
        """``"114"`` (fire and rescue) or ``"115"`` (EMS; the motorbike first responder counts as EMS)."""
        return VEHICLE_SERVICE[self.value]

    @property
    def default_turnout_s(self) -> float:
        """The class's default turnout (:data:`DEFAULT_TURNOUT_S`)."""
        return DEFAULT_TURNOUT_S[self.value]


#: Vehicle class names, in a fixed order (the same tuple as ``dispatch.roads.profiles.VEHICLE_CLASSES``).
VEHICLE_CLASSES: tuple[str, ...] = tuple(v.value for v in VehicleClass)

#: Service of each vehicle class.
VEHICLE_SERVICE: dict[str, str] = {
    "ambulance": "115",
    "fire_engine": "114",
    "ladder": "114",
    "motorbike": "115",
}

#: Default turnout per vehicle class, seconds: the turnout of its service (:data:`SERVICE_TURNOUT_S`).
DEFAULT_TURNOUT_S: dict[str, float] = {
    v: SERVICE_TURNOUT_S[VEHICLE_SERVICE[v]] for v in VEHICLE_CLASSES
}


class UnitStatus(StrEnum):
    """Status of a unit (a ``str``). See the module docstring for what each allows."""

    AVAILABLE = "available"
    RETURNING = "returning"
    EN_ROUTE = "en_route"
    BUSY = "busy"
    OUT_OF_SERVICE = "out_of_service"

    @property
    def dispatchable(self) -> bool:
        """Whether a unit in this status can be sent without redispatch."""
        return self in (UnitStatus.AVAILABLE, UnitStatus.RETURNING)

    @property
    def on_the_road(self) -> bool:
        """Whether the crew is already on board (no turnout when sent)."""
        return self in (UnitStatus.RETURNING, UnitStatus.EN_ROUTE)


#: Unit statuses and whether a unit with that status can normally be dispatched.
UNIT_STATUSES: dict[str, bool] = {s.value: s.dispatchable for s in UnitStatus}

_NO_EXTRA: Mapping[str, Any] = MappingProxyType({})  # shared: no dict per unit

_VEHICLE_BY_NAME: dict[str, VehicleClass] = {v.value: v for v in VehicleClass}
_STATUS_BY_NAME: dict[str, UnitStatus] = {s.value: s for s in UnitStatus}

#: Priority levels (1 most urgent).
PRIORITIES: tuple[int, ...] = (1, 2, 3)

#: Response targets per priority, seconds. P1 480 s is the NFPA 1710 full-first-alarm travel
#: objective used as a total response target; P2/P3 are ILLUSTRATIVE, not Vietnamese regulations.
DEFAULT_TARGETS_S: dict[int, float] = {1: 480.0, 2: 900.0, 3: 1800.0}

#: Optimiser weights per priority (ILLUSTRATIVE, as ``scenarios/run_cards.toml``).
DEFAULT_PRIORITY_WEIGHTS: dict[int, float] = {1: 4.0, 2: 2.0, 3: 1.0}

#: Hospital capabilities an incident may need and a hospital may offer.
HOSPITAL_CAPABILITIES: tuple[str, ...] = (
    "general",
    "trauma",
    "cardiac",
    "stroke",
    "burns",
    "paediatrics",
)


def turnout_for(
    vehicle: str,
    status: str = "available",
    turnout_s: float | None = None,
    service_turnout_s: Mapping[str, float] | None = None,
) -> float:
    """The turnout delay of a unit, by the one rule of the module docstring.

    Parameters
    ----------
    vehicle : str
        Vehicle class.
    status : str
        Unit status (``returning`` and ``en_route`` units have no default turnout).
    turnout_s : float or None
        The unit's own turnout; wins when given.
    service_turnout_s : mapping, optional
        Per-service turnouts (``{"114": 80, "115": 60}``, a scenario's ``[turnout]``) replacing the
        class defaults.

    >>> turnout_for("ladder"), turnout_for("ladder", turnout_s=30), turnout_for("ambulance", "returning")
    (80.0, 30.0, 0.0)
    >>> turnout_for("ambulance", service_turnout_s={"114": 90, "115": 200})
    200.0
    """
    if turnout_s is not None:
        return float(turnout_s)
    if UnitStatus(status).on_the_road:
        return 0.0
    if service_turnout_s is not None:
        return float(service_turnout_s[VEHICLE_SERVICE[vehicle]])
    return DEFAULT_TURNOUT_S[vehicle]


# ----------------------------------------------------------------------------------------------
# validation helpers (shared by the dataclasses and the readers)
# ----------------------------------------------------------------------------------------------


def check_number(
    value: Any,
    name: str,
    *,
    lo: float | None = None,
    hi: float | None = None,
    error: type[DispatchError] = DispatchError,
    where: str = "",
) -> float:
    """``value`` as a finite float in ``[lo, hi]``; booleans and non-numbers are refused.

    >>> check_number(3, "x", lo=0)
    3.0
    >>> check_number(True, "turnout_s")
    Traceback (most recent call last):
    ...
    dispatch.errors.DispatchError: turnout_s must be a number, got True
    """
    prefix = f"{where}: " if where else ""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise error(f"{prefix}{name} must be a number, got {short_repr(value)}")
    try:
        x = float(value)
    except OverflowError:  # an int too large for a float
        raise error(f"{prefix}{name} is out of range, got {short_repr(value)}") from None
    if not math.isfinite(x):
        raise error(f"{prefix}{name} must be finite, got {value!r}")
    if (lo is not None and x < lo) or (hi is not None and x > hi):
        lo_s = "-inf" if lo is None else f"{lo:g}"
        hi_s = "inf" if hi is None else f"{hi:g}"
        raise error(f"{prefix}{name} must be in [{lo_s}, {hi_s}], got {value!r}")
    return x


def check_latlon(
    lat: Any, lon: Any, *, error: type[DispatchError] = DispatchError, where: str = ""
) -> tuple[float, float]:
    """``(lat, lon)`` as floats, checked numbers in range (``lat=True`` is refused)."""
    return (
        check_number(lat, "lat", lo=-90.0, hi=90.0, error=error, where=where),
        check_number(lon, "lon", lo=-180.0, hi=180.0, error=error, where=where),
    )


def check_hour(hour: Any, *, name: str = "hour") -> float | None:
    """A clock hour: None, or a finite number >= 0 (``'17'``, ``True``, NaN and inf are refused).

    >>> check_hour(None), check_hour(17)
    (None, 17.0)
    """
    if hour is None:
        return None
    return check_number(hour, name, lo=0.0, error=HourError)


def _check_id(value: Any, what: str, error: type[DispatchError]) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise error(f"{what} id must be a non-empty string, got {short_repr(value)}")
    text = str(value).strip()
    if not text:
        raise error(f"{what} id must be a non-empty string, got {value!r}")
    return text


def short_repr(value: Any) -> str:
    """``repr`` of a value, cut to 60 characters (a 5,000-digit integer is described, not printed).

    >>> short_repr(10**5000)
    'an integer of about 5001 digits'
    """
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 190:
        return f"an integer of about {int(value.bit_length() * math.log10(2)) + 1} digits"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _check_priority(value: Any, what: str, error: type[DispatchError]) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value not in PRIORITIES:
        raise error(f"{what} must be 1, 2 or 3, got {short_repr(value)}")
    return int(value)


# ----------------------------------------------------------------------------------------------
# incident types and incidents
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IncidentType:
    """A kind of incident in the live-dispatch catalogue.

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
        _check_priority(self.default_priority, "default_priority", IncidentError)
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
        raise IncidentError(f"unknown incident type {short_repr(name)} (known: {known})") from None


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
        if not isinstance(self.id, str):
            raise IncidentError(
                f"incident id must be a non-empty string, got {short_repr(self.id)}"
            )
        object.__setattr__(self, "id", _check_id(self.id, "incident", IncidentError))
        what = f"incident {self.id!r}"
        lat, lon = check_latlon(self.lat, self.lon, error=IncidentError, where=what)
        object.__setattr__(self, "lat", lat)
        object.__setattr__(self, "lon", lon)
        kind = incident_type(self.type)
        prio = kind.default_priority if self.priority is None else self.priority
        object.__setattr__(
            self, "priority", _check_priority(prio, f"{what}: priority", IncidentError)
        )

    @property
    def kind(self) -> IncidentType:
        """The :class:`IncidentType` of this incident."""
        return INCIDENT_TYPES[self.type]

    @property
    def point(self) -> tuple[float, float]:
        """``(lat, lon)`` of the scene."""
        return (self.lat, self.lon)

    def to_dict(self) -> dict[str, Any]:
        """JSON form: ``{"id", "lat", "lon", "type", "priority"}``."""
        return {
            "id": self.id,
            "lat": self.lat,
            "lon": self.lon,
            "type": self.type,
            "priority": self.priority,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, where: str = "incident") -> Incident:
        """Build an incident from its JSON form; `where` prefixes error messages.

        Numbers must be JSON numbers (``"priority": true`` and ``"lat": "16"`` are refused); a
        priority may also be the text ``"1"``..``"3"`` (a CSV cell).
        """
        if not isinstance(data, Mapping):
            raise IncidentError(f"{where}: expected a JSON object, got {type(data).__name__}")
        unknown = set(data) - {"id", "lat", "lon", "type", "priority"}
        if unknown:
            raise IncidentError(
                f"{where}: unknown field(s) {short_repr(sorted(map(str, unknown)))}"
            )
        for key in ("id", "lat", "lon"):
            if key not in data:
                raise IncidentError(f"{where}: missing field {key!r}")
        prio = data.get("priority")
        if isinstance(prio, str) and prio.strip() in ("", "1", "2", "3"):
            prio = int(prio) if prio.strip() else None
        kind = data.get("type")
        if kind is not None and not isinstance(kind, str):
            raise IncidentError(f"{where}: type must be a string, got {short_repr(kind)}")
        try:
            if isinstance(data["id"], bool) or not isinstance(data["id"], str | int):
                raise IncidentError(f"id must be a non-empty string, got {short_repr(data['id'])}")
            return cls(
                id=str(data["id"]),
                lat=data["lat"],
                lon=data["lon"],
                type=kind or DEFAULT_INCIDENT_TYPE,
                priority=prio,
            )
        except IncidentError as exc:
            raise IncidentError(f"{where}: {exc}") from None


# ----------------------------------------------------------------------------------------------
# units
# ----------------------------------------------------------------------------------------------


def _unpickle_unit(
    uid: str,
    vehicle: str,
    lat: float,
    lon: float,
    status: str,
    station: str,
    turnout_s: float | None,
    assigned_priority: int | None,
    extra: dict[str, Any],
) -> Unit:
    return Unit(uid, vehicle, lat, lon, status, station, turnout_s, assigned_priority,
                MappingProxyType(extra) if extra else _NO_EXTRA)  # fmt: skip


@dataclass(frozen=True)
class Unit:
    """A vehicle of the fleet.

    Parameters
    ----------
    id : str
        Unique identifier.
    vehicle : VehicleClass or str
        One of :data:`VEHICLE_CLASSES` (stored as a :class:`VehicleClass`).
    lat, lon : float
        Current position (the station, or where a returning unit is now).
    status : UnitStatus or str
        One of :data:`UNIT_STATUSES` (default ``available``; stored as a :class:`UnitStatus`).
    station : str
        Home station label (free text).
    turnout_s : float or None
        The unit's own turnout delay in ``[0, MAX_TURNOUT_S]``; ``None`` (not given) takes the
        default of the module docstring, see :attr:`effective_turnout_s`.
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
    extra: Mapping[str, Any] = field(default_factory=lambda: _NO_EXTRA, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.id, str):
            raise FleetError(f"unit id must be a non-empty string, got {short_repr(self.id)}")
        if not self.id or self.id != self.id.strip():
            object.__setattr__(self, "id", _check_id(self.id, "unit", FleetError))
        vehicle = _VEHICLE_BY_NAME.get(self.vehicle) if isinstance(self.vehicle, str) else None
        if vehicle is None:
            raise FleetError(
                f"unit {self.id!r}: vehicle must be one of {VEHICLE_CLASSES}, "
                f"got {short_repr(self.vehicle)}"
            )
        object.__setattr__(self, "vehicle", vehicle)
        lat, lon = self.lat, self.lon
        if not (
            type(lat) is float and type(lon) is float and -90 <= lat <= 90 and -180 <= lon <= 180
        ):  # the fast path above is the common case (NaN fails it too)
            lat, lon = check_latlon(lat, lon, error=FleetError, where=f"unit {self.id!r}")
            object.__setattr__(self, "lat", lat)
            object.__setattr__(self, "lon", lon)
        what = f"unit {self.id!r}"
        status = _STATUS_BY_NAME.get(self.status) if isinstance(self.status, str) else None
        if status is None:
            raise FleetError(
                f"{what}: status must be one of {tuple(UNIT_STATUSES)}, got {short_repr(self.status)}"
            )
        object.__setattr__(self, "status", status)
        if not isinstance(self.station, str):
            raise FleetError(f"{what}: station must be a string, got {short_repr(self.station)}")
        if self.turnout_s is not None:
            t = check_number(
                self.turnout_s, "turnout_s", lo=0.0, hi=MAX_TURNOUT_S, error=FleetError, where=what
            )
            object.__setattr__(self, "turnout_s", t)
        if self.assigned_priority is not None:
            _check_priority(self.assigned_priority, f"{what}: assigned_priority", FleetError)
        if self.status == UnitStatus.EN_ROUTE and self.assigned_priority is None:
            raise FleetError(f"{what}: status 'en_route' needs assigned_priority")
        # read for every unit of every answer: computed once (the fields never change)
        object.__setattr__(self, "_turnout", turnout_for(self.vehicle, self.status, self.turnout_s))

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickling (a worker process, ``multiprocessing``): the fields, the extra columns as a
        plain dict (their read-only mapping is not picklable); unpickled through the constructor."""
        return (
            _unpickle_unit,
            (self.id, str(self.vehicle), self.lat, self.lon, str(self.status), self.station,
             self.turnout_s, self.assigned_priority, dict(self.extra)),
        )  # fmt: skip

    @property
    def effective_turnout_s(self) -> float:
        """The turnout used for ETAs: :attr:`turnout_s`, else the default (:func:`turnout_for`)."""
        t: float = self.__dict__["_turnout"]
        return t

    @property
    def dispatchable(self) -> bool:
        """Whether the unit can be sent without redispatch (``available`` or ``returning``)."""
        return UnitStatus(self.status).dispatchable

    @property
    def point(self) -> tuple[float, float]:
        """``(lat, lon)`` of the unit."""
        return (self.lat, self.lon)

    def to_dict(self) -> dict[str, Any]:
        """JSON form (``turnout_s`` is the effective turnout)."""
        out: dict[str, Any] = {
            "id": self.id,
            "vehicle": str(self.vehicle),
            "lat": self.lat,
            "lon": self.lon,
            "status": str(self.status),
            "station": self.station,
            "turnout_s": self.effective_turnout_s,
        }
        if self.assigned_priority is not None:
            out["assigned_priority"] = self.assigned_priority
        return out

    def to_record(self) -> dict[str, Any]:
        """The mapping :func:`dispatch.routing.queries.fastest_units` takes (``available`` flag)."""
        rec = self.to_dict()
        rec["available"] = self.dispatchable
        return rec

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, where: str = "unit") -> Unit:
        """Build a unit from a mapping (JSON form, CSV row of strings, or a core fleet record).

        Text cells (``"16.05"``) are converted; booleans where numbers are expected are refused.
        """
        if not isinstance(data, Mapping):
            raise FleetError(f"{where}: expected a mapping, got {type(data).__name__}")
        for key in ("id", "vehicle", "lat", "lon"):
            if data.get(key) is None or (isinstance(data.get(key), str) and not data[key].strip()):
                raise FleetError(f"{where}: missing field {key!r}")
        status = data.get("status")
        if status is None or (isinstance(status, str) and not status.strip()):
            available = data.get("available")
            status = "busy" if available is False else "available"
        try:
            uid = data["id"]
            if isinstance(uid, bool) or not isinstance(uid, str | int):
                raise FleetError(f"id must be a non-empty string, got {short_repr(uid)}")
            vehicle = data["vehicle"]
            return cls(
                id=str(uid).strip(),
                vehicle=vehicle.strip() if isinstance(vehicle, str) else vehicle,
                lat=_text_number(data["lat"], "lat"),
                lon=_text_number(data["lon"], "lon"),
                status=status.strip() if isinstance(status, str) else status,
                station=_text(data.get("station")),
                turnout_s=_text_number(data.get("turnout_s"), "turnout_s"),
                assigned_priority=_text_int(data.get("assigned_priority"), "assigned_priority"),
                extra={k: v for k, v in data.items() if k not in _UNIT_KEYS} or _NO_EXTRA,
            )
        except FleetError as exc:
            raise FleetError(f"{where}: {exc}") from None


_UNIT_KEYS = frozenset(
    {
        "id",
        "vehicle",
        "lat",
        "lon",
        "status",
        "available",
        "station",
        "turnout_s",
        "assigned_priority",
    }
)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise FleetError(f"station must be a string, got {short_repr(value)}")
    return value


def _text_number(value: Any, name: str) -> Any:
    """A CSV cell to a float (other values pass through to the dataclass check)."""
    if isinstance(value, str):
        s = value.strip()
        if not s:
            return None
        try:
            return float(s)
        except ValueError:
            raise FleetError(f"{name} must be a number, got {short_repr(value)}") from None
    return value


def _text_int(value: Any, name: str) -> Any:
    if isinstance(value, str):
        s = value.strip()
        if not s:
            return None
        if s not in ("1", "2", "3"):
            raise FleetError(f"{name} must be 1, 2 or 3, got {short_repr(value)}")
        return int(s)
    return value


# ----------------------------------------------------------------------------------------------
# hospitals and stations
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Hospital:
    """A receiving hospital.

    Parameters
    ----------
    id : str
        Unique identifier.
    name : str
        Display name.
    lat, lon : float
        Location (WGS84 degrees).
    capabilities : tuple of str
        Subset of :data:`HOSPITAL_CAPABILITIES`.
    osm_id : str
        OSM element (``node/123``) when the site comes from OpenStreetMap, else ``""``.
    capabilities_source : str
        Where the capability list comes from (``illustrative`` when invented for a scenario).
    """

    id: str
    name: str
    lat: float
    lon: float
    capabilities: tuple[str, ...]
    osm_id: str = ""
    capabilities_source: str = "illustrative"

    def __post_init__(self) -> None:
        if not isinstance(self.id, str):
            raise HospitalError(
                f"hospital id must be a non-empty string, got {short_repr(self.id)}"
            )
        object.__setattr__(self, "id", _check_id(self.id, "hospital", HospitalError))
        what = f"hospital {self.id!r}"
        lat, lon = check_latlon(self.lat, self.lon, error=HospitalError, where=what)
        object.__setattr__(self, "lat", lat)
        object.__setattr__(self, "lon", lon)
        if isinstance(self.capabilities, str) or not isinstance(self.capabilities, tuple | list):
            raise HospitalError(
                f"{what}: capabilities must be a tuple, got {short_repr(self.capabilities)}"
            )
        for cap in self.capabilities:
            if cap not in HOSPITAL_CAPABILITIES:
                raise HospitalError(
                    f"{what}: unknown capability {short_repr(cap)} "
                    f"(known: {', '.join(HOSPITAL_CAPABILITIES)})"
                )
        object.__setattr__(self, "capabilities", tuple(dict.fromkeys(self.capabilities)))

    @property
    def point(self) -> tuple[float, float]:
        """``(lat, lon)``."""
        return (self.lat, self.lon)

    def can_treat(self, capability: str) -> bool:
        """Whether the hospital offers `capability`."""
        return capability in self.capabilities

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "id": self.id,
            "name": self.name,
            "lat": self.lat,
            "lon": self.lon,
            "capabilities": list(self.capabilities),
            "osm_id": self.osm_id,
            "capabilities_source": self.capabilities_source,
        }


@dataclass(frozen=True)
class Station:
    """A station (fire station or ambulance base) where units wait."""

    name: str
    lat: float
    lon: float

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise FleetError(
                f"station name must be a non-empty string, got {short_repr(self.name)}"
            )
        lat, lon = check_latlon(
            self.lat, self.lon, error=FleetError, where=f"station {self.name!r}"
        )
        object.__setattr__(self, "lat", lat)
        object.__setattr__(self, "lon", lon)
