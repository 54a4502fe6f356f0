"""Reading fleets and calls from CSV files (the CLI's input formats).

A path of ``-`` reads standard input. ``FLEET.csv``: ``id,vehicle,lat,lon`` plus optional ``status`` (``available`` default, ``busy``,
``out_of_service``), ``station`` and ``turnout_s``. ``CALLS.csv``: ``id,lat,lon`` plus optional
columns, kept as strings. Errors name the file, line and field.
"""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path
from typing import Any

from dispatch.errors import InputFileError
from dispatch.roads.profiles import VEHICLE_CLASSES

STATUSES = ("available", "busy", "out_of_service", "returning")


def _rows(
    path: str | os.PathLike[str], required: tuple[str, ...], what: str
) -> list[dict[str, str]]:
    p = Path(path)
    if str(path) == "-":  # standard input, e.g. a CAD system piping its fleet
        import sys

        text = sys.stdin.read()
    else:
        if not p.exists() or p.is_dir():
            raise InputFileError(f"{what} file {str(p)!r} does not exist")
        try:
            text = p.read_bytes().decode("utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise InputFileError(f"{what} file {str(p)!r} cannot be read: {exc}") from None
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    reader = csv.DictReader(lines)
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in required if c not in header]
    if missing:
        raise InputFileError(f"{what} file {str(p)!r} lacks column(s) {', '.join(missing)} "
                             f"(header: {','.join(header) or 'empty'})")  # fmt: skip
    out = []
    for i, row in enumerate(reader, start=2):
        if None in row:
            raise InputFileError(f"{p}: line {i}: more fields than the header has")
        out.append({k.strip(): (v or "").strip() for k, v in row.items()})
    return out


def _number(
    p: str | os.PathLike[str], line: int, field: str, value: str, lo: float, hi: float
) -> float:
    try:
        x = float(value)
    except ValueError:
        raise InputFileError(f"{p}: line {line}: field {field}={value!r} is not a number") from None
    if not (math.isfinite(x) and lo <= x <= hi):
        raise InputFileError(
            f"{p}: line {line}: field {field}={value!r} is out of range [{lo}, {hi}]"
        )
    return x


def read_fleet_csv(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Read a fleet CSV into unit mappings for :func:`dispatch.routing.queries.fastest_units`.

    Each unit gets ``id``, ``vehicle``, ``lat``, ``lon``, ``available`` (status is ``available``),
    ``status``, ``station`` and ``turnout_s`` (default 0).
    """
    units = []
    seen: dict[str, int] = {}
    for line, row in enumerate(_rows(path, ("id", "vehicle", "lat", "lon"), "fleet"), start=2):
        uid = row["id"]
        if not uid:
            raise InputFileError(f"{path}: line {line}: field id is empty")
        if uid in seen:
            raise InputFileError(
                f"{path}: line {line}: duplicate unit id {uid!r} (first on line {seen[uid]})"
            )
        seen[uid] = line
        if row["vehicle"] not in VEHICLE_CLASSES:
            raise InputFileError(f"{path}: line {line}: field vehicle={row['vehicle']!r} is not one of "
                                 f"{', '.join(VEHICLE_CLASSES)}")  # fmt: skip
        status = row.get("status") or "available"
        if status not in STATUSES:
            raise InputFileError(
                f"{path}: line {line}: field status={status!r} is not one of {', '.join(STATUSES)}"
            )
        turnout = row.get("turnout_s") or "0"
        units.append({
            "id": uid,
            "vehicle": row["vehicle"],
            "lat": _number(path, line, "lat", row["lat"], -90, 90),
            "lon": _number(path, line, "lon", row["lon"], -180, 180),
            "available": status in ("available", "returning"),
            "status": status,
            "station": row.get("station", ""),
            "turnout_s": _number(path, line, "turnout_s", turnout, 0, 86400),
        })  # fmt: skip
    if not units:
        raise InputFileError(f"fleet file {str(path)!r} has no units")
    return units


def read_calls_csv(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Read a calls CSV: ``id``, ``lat``, ``lon`` (numbers checked) plus other columns as strings."""
    calls = []
    for line, row in enumerate(_rows(path, ("id", "lat", "lon"), "calls"), start=2):
        if not row["id"]:
            raise InputFileError(f"{path}: line {line}: field id is empty")
        call: dict[str, Any] = dict(row)
        call["lat"] = _number(path, line, "lat", row["lat"], -90, 90)
        call["lon"] = _number(path, line, "lon", row["lon"], -180, 180)
        calls.append(call)
    if not calls:
        raise InputFileError(f"calls file {str(path)!r} has no calls")
    return calls


def parse_latlon(text: str, *, name: str = "point") -> tuple[float, float]:
    """Parse ``"LAT,LON"`` (the CLI form of a point).

    >>> parse_latlon("16.0678,108.2208")
    (16.0678, 108.2208)
    """
    parts = text.split(",")
    try:
        if len(parts) != 2:
            raise ValueError
        return float(parts[0]), float(parts[1])
    except ValueError:
        raise InputFileError(f"{name} {text!r} must be LAT,LON (two numbers)") from None
