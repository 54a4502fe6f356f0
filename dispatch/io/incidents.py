"""The incidents formats: INCIDENTS.csv, a JSON list and one incident JSON (reader and writer).

CSV: ``id,lat,lon`` plus optional ``type`` (default ``general_medical``), ``priority`` (default the
type's) and the ignored ``note``. JSON: a list of incident objects, ``{"incidents": [...]}`` or one
object ``{"id", "lat", "lon", "type", "priority"}`` (numbers as JSON numbers: ``"priority": true``
is refused). Errors name the file, the physical line (CSV) or the incident's place in the list.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from dispatch.errors import InputFileError
from dispatch.io.atomic import atomic_write
from dispatch.io.text import display_name, read_csv_table, read_json
from dispatch.model import DEFAULT_INCIDENT_TYPE, INCIDENT_TYPES, Incident, IncidentError

__all__ = ["read_incident_json", "read_incidents", "write_incidents_json"]


def read_incidents(path: str | os.PathLike[str]) -> list[Incident]:
    """Read incidents from CSV or, for a ``.json`` file, JSON.

    Raises
    ------
    InputFileError
        On a malformed file (file, line and field named) or duplicate ids.
    IncidentError
        On an unknown type or bad priority in JSON (the incident is named).
    """
    name = display_name(path)
    if Path(path).suffix.lower() == ".json":
        data = read_json(path, "incidents")
        if isinstance(data, Mapping) and "incidents" in data:
            data = data["incidents"]
        if isinstance(data, Mapping):
            data = [data]
        if not isinstance(data, list) or not data:
            raise InputFileError(f"{name}: expected a non-empty list of incidents")
        incidents = [
            Incident.from_dict(item, where=f"{name}: incident #{i + 1}")
            for i, item in enumerate(data)
        ]
    else:
        table = read_csv_table(
            path, "incidents", required=("id", "lat", "lon"), optional=("type", "priority", "note")
        )
        incidents = []
        for n, row in table.rows:
            for key in ("id", "lat", "lon"):
                if not row[key]:
                    raise table.fail(n, f"field {key!r} is empty")
            prio = row.get("priority") or None
            if prio is not None and prio not in ("1", "2", "3"):
                raise table.fail(n, f"field 'priority': must be 1, 2 or 3, got {prio[:40]!r}")
            kind = row.get("type") or DEFAULT_INCIDENT_TYPE
            if kind not in INCIDENT_TYPES:
                raise table.fail(
                    n, f"field 'type': unknown incident type {kind[:40]!r} "
                    f"(known: {', '.join(INCIDENT_TYPES)})",
                )  # fmt: skip
            lat, lon = (_float(table.name, n, k, row[k]) for k in ("lat", "lon"))
            try:
                incidents.append(
                    Incident(id=row["id"], lat=lat, lon=lon, type=kind,
                             priority=None if prio is None else int(prio))
                )  # fmt: skip
            except IncidentError as exc:
                raise table.fail(n, str(exc)) from None
    seen: set[str] = set()
    for inc in incidents:
        if inc.id in seen:
            raise InputFileError(f"{name}: duplicate incident id {inc.id!r}")
        seen.add(inc.id)
    return incidents


def _float(name: str, n: int, key: str, value: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise InputFileError(
            f"{name}: line {n}: field {key!r}: not a number: {value[:40]!r}"
        ) from None


def read_incident_json(path: str | os.PathLike[str]) -> Incident:
    """Read one incident from a JSON file (its JSON form, or a list of exactly one).

    Raises
    ------
    InputFileError
        On malformed JSON (line and column named) or a list with more than one incident.
    IncidentError
        On an unknown type, a missing field or a bad priority.
    """
    name = display_name(path)
    data = read_json(path, "incident")
    if isinstance(data, list):
        if len(data) != 1:
            raise InputFileError(f"{name}: expected one incident object, got a list of {len(data)}")
        data = data[0]
    return Incident.from_dict(data, where=name)


def write_incidents_json(path: str | os.PathLike[str], incidents: Iterable[Incident]) -> None:
    """Write incidents as a JSON list, atomically; :func:`read_incidents` reads them back."""
    atomic_write(path, json.dumps([i.to_dict() for i in incidents], indent=2) + "\n")
