"""Incidents and units: the inputs of dispatch decisions.

The types live in :mod:`dispatch.model` (one definition each, one source for every default) and the
file formats in :mod:`dispatch.io`; this module gathers what a dispatch decision needs.

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

Unit (one row of FLEET.csv, :mod:`dispatch.io.fleet`)::

    {"id": "AMB-1", "vehicle": "ambulance", "lat": 16.05, "lon": 108.21, "status": "available",
     "station": "Hoan My General Hospital", "turnout_s": 60.0}

Statuses and the turnout rule are those of :mod:`dispatch.model`: ``available`` and ``returning``
units can be sent, ``busy`` and ``out_of_service`` are skipped, ``en_route`` (with
``assigned_priority``) only by the priority-1 redispatch rule (:mod:`dispatch.decide.assign`);
turnout defaults to 80 s for fire classes and 60 s for EMS classes (NFPA 1710 objectives, labelled
defaults), 0 s for a returning or en-route unit.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from dispatch.errors import FleetError
from dispatch.io.fleet import read_fleet
from dispatch.io.incidents import read_incident_json, read_incidents
from dispatch.model import (
    DEFAULT_INCIDENT_TYPE,
    DEFAULT_TURNOUT_S,
    HOSPITAL_CAPABILITIES,
    INCIDENT_TYPES,
    UNIT_STATUSES,
    VEHICLE_CLASSES,
    Incident,
    IncidentError,
    IncidentType,
    Unit,
    incident_type,
)

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


def units_from_records(records: Iterable[Unit | Mapping[str, Any]]) -> list[Unit]:
    """Turn units or mappings (e.g. rows of ``read_fleet_csv``) into a list of :class:`Unit`.

    Raises
    ------
    FleetError
        On a fleet that is not a sequence of units or mappings, an empty fleet, a bad record or
        duplicate ids (the message names the argument ``units``).
    """
    if (
        records is None
        or isinstance(records, str | bytes | Mapping)
        or not isinstance(records, Iterable)
    ):
        raise FleetError(
            f"units must be a sequence of Unit or mappings, got {type(records).__name__}"
        )
    units: list[Unit] = []
    for i, rec in enumerate(records):
        units.append(rec if isinstance(rec, Unit) else Unit.from_dict(rec, where=f"units[{i}]"))
    if not units:
        raise FleetError("units: the fleet is empty: no unit given")
    seen: set[str] = set()
    for u in units:
        if u.id in seen:
            raise FleetError(f"units: duplicate unit id {u.id!r}")
        seen.add(u.id)
    return units
