"""The fleet CSV and calls CSV formats: one reader (and writer) each, used by every command.

``FLEET.csv`` (``-``: standard input): columns ``id,vehicle,lat,lon`` plus optional ``status``
(``available`` default, ``returning``, ``en_route``, ``busy``, ``out_of_service``), ``station``,
``turnout_s`` (empty or absent: the default of :mod:`dispatch.model`, 80 s fire classes, 60 s EMS
classes, 0 s returning/en route), ``assigned_priority`` (for ``en_route`` units) and the ignored
columns ``note`` and ``source``. Lines starting with ``#`` are comments. ``dispatch nearest``,
``recommend``, ``assign`` and a scenario's ``fleet = "file.csv"`` all read it with
:func:`read_fleet`.

``CALLS.csv``: ``id,lat,lon`` plus any columns (kept as strings).

Errors name the file, the physical line and the field.
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from dispatch.errors import FleetError, InputFileError
from dispatch.io.atomic import atomic_write
from dispatch.io.text import read_csv_table
from dispatch.model import Unit

__all__ = [
    "FLEET_COLUMNS",
    "CallRow",
    "fleet_csv_text",
    "parse_latlon",
    "read_calls",
    "read_calls_csv",
    "read_fleet",
    "read_fleet_csv",
    "write_fleet_csv",
]

#: Columns of FLEET.csv: required, then optional.
FLEET_COLUMNS = (
    "id",
    "vehicle",
    "lat",
    "lon",
    "status",
    "station",
    "turnout_s",
    "assigned_priority",
)
_FLEET_IGNORED = ("note", "source")


def read_fleet(path: str | os.PathLike[str]) -> list[Unit]:
    """Read FLEET.csv into :class:`dispatch.model.Unit` objects.

    A unit without ``turnout_s`` keeps ``turnout_s=None`` (the default of its class and status,
    :attr:`Unit.effective_turnout_s`; in a simulation the scenario's ``[turnout]``).

    Raises
    ------
    InputFileError
        On a malformed file; the message names the file, the physical line and the field.
    """
    table = read_csv_table(
        path, "fleet", required=FLEET_COLUMNS[:4], optional=FLEET_COLUMNS[4:] + _FLEET_IGNORED
    )
    units: list[Unit] = []
    seen: dict[str, int] = {}
    for n, row in table.rows:
        for name in ("id", "vehicle", "lat", "lon"):
            if not row[name]:
                raise table.fail(n, f"field {name!r} is empty")
        if row["id"] in seen:
            raise table.fail(
                n, f"field 'id': duplicate unit id {row['id']!r} (first on line {seen[row['id']]})"
            )
        seen[row["id"]] = n
        try:
            units.append(
                Unit(
                    id=row["id"],
                    vehicle=row["vehicle"],
                    lat=_cell(row["lat"], "lat") or 0.0,  # not empty: checked above
                    lon=_cell(row["lon"], "lon") or 0.0,
                    status=row.get("status") or "available",
                    station=row.get("station", ""),
                    turnout_s=_cell(row.get("turnout_s", ""), "turnout_s"),
                    assigned_priority=_priority_cell(row.get("assigned_priority", "")),
                )
            )
        except FleetError as exc:
            msg = str(exc)
            raise table.fail(n, f"field {_field_of(msg)!r}: {msg}") from None
    return units


def _cell(text: str, name: str) -> float | None:
    """A number cell (empty: None); the range is checked by :class:`Unit`."""
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        raise FleetError(f"{name} must be a number, got {text[:40]!r}") from None


def _priority_cell(text: str) -> int | None:
    if not text:
        return None
    if text not in ("1", "2", "3"):
        raise FleetError(f"assigned_priority must be 1, 2 or 3, got {text[:40]!r}")
    return int(text)


def _field_of(message: str) -> str:
    for name in ("assigned_priority", "turnout_s", "vehicle", "status", "station", "lat", "lon"):
        if name in message:
            return name
    return "id"


def read_fleet_csv(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Read FLEET.csv as the unit mappings :func:`dispatch.routing.queries.fastest_units` takes.

    The same reader as :func:`read_fleet`; each mapping has ``id``, ``vehicle``, ``lat``, ``lon``,
    ``status``, ``station``, ``turnout_s`` (the effective turnout) and ``available``.
    """
    return [u.to_record() for u in read_fleet(path)]


def fleet_csv_text(units: Iterable[Unit]) -> str:
    """FLEET.csv text of `units`; :func:`read_fleet` reads it back to equal units."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(FLEET_COLUMNS)
    for u in units:
        w.writerow([
            u.id, str(u.vehicle), repr(u.lat), repr(u.lon), str(u.status), u.station,
            "" if u.turnout_s is None else repr(u.turnout_s),
            "" if u.assigned_priority is None else u.assigned_priority,
        ])  # fmt: skip
    return buf.getvalue()


def write_fleet_csv(path: str | os.PathLike[str], units: Iterable[Unit]) -> None:
    """Write units as FLEET.csv, atomically (:func:`dispatch.io.atomic.atomic_write`)."""
    atomic_write(path, fleet_csv_text(units))


@dataclass(frozen=True)
class CallRow:
    """One data row of CALLS.csv: the call mapping, or why the row is unusable."""

    line: int
    id: str
    call: dict[str, Any] | None
    error: str | None


def _number(value: str, field: str, lo: float, hi: float) -> float:
    try:
        x = float(value)
    except ValueError:
        raise ValueError(f"field {field}={value[:40]!r} is not a number") from None
    if not (math.isfinite(x) and lo <= x <= hi):
        raise ValueError(f"field {field}={value[:40]!r} is out of range [{lo:g}, {hi:g}]")
    return x


def read_calls(path: str | os.PathLike[str]) -> list[CallRow]:
    """Read CALLS.csv row by row: a bad row is returned with its error instead of raising.

    Raises
    ------
    InputFileError
        Only for the file as a whole: unreadable, too large, no ``id,lat,lon`` header, no rows.
    """
    table = read_csv_table(path, "calls", required=("id", "lat", "lon"), optional=None,
                           strict_rows=False)  # fmt: skip
    out: list[CallRow] = []
    for n, row in table.rows:
        try:
            if not row["id"]:
                raise ValueError("field id is empty")
            call: dict[str, Any] = dict(row)
            call["lat"] = _number(row["lat"], "lat", -90, 90)
            call["lon"] = _number(row["lon"], "lon", -180, 180)
            out.append(CallRow(n, row["id"], call, None))
        except ValueError as exc:
            out.append(CallRow(n, row["id"], None, f"{table.name}: line {n}: {exc}"))
    return out


def read_calls_csv(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Read CALLS.csv: ``id``, ``lat``, ``lon`` (numbers checked) plus other columns as strings.

    Raises
    ------
    InputFileError
        At the first bad row (see :func:`read_calls` to keep going).
    """
    calls = []
    for row in read_calls(path):
        if row.error is not None:
            raise InputFileError(row.error)
        assert row.call is not None
        calls.append(row.call)
    return calls


def parse_latlon(text: str, *, name: str = "point") -> tuple[float, float]:
    """Parse ``"LAT,LON"`` (the CLI form of a point; ranges are checked where the point is used).

    >>> parse_latlon("16.0678,108.2208")
    (16.0678, 108.2208)
    """
    parts = text.split(",")
    try:
        if len(parts) != 2:
            raise ValueError
        return float(parts[0]), float(parts[1])
    except ValueError:
        raise InputFileError(f"{name} {text[:60]!r} must be LAT,LON (two numbers)") from None
