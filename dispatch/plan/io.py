"""Reading the planning inputs: units (fleet CSV), demand points, candidate and existing sites.

File reading is kept apart from the models (:mod:`dispatch.plan.coverage`, :mod:`dispatch.plan.siting`),
which take arrays. Every bad row raises :class:`dispatch.errors.InputFileError` naming the file, the
line, the field and the value; nothing is dropped silently.

Formats (``#`` lines and blank lines are skipped, UTF-8 with or without BOM):

- demand CSV: ``lat,lon`` plus optional ``weight`` (>= 0, default 1), ``zone`` (a label) and ``id``;
- sites CSV (candidates, existing stations): ``lat,lon`` plus optional ``id`` (default ``row N``)
  and ``name``;
- fleet CSV: read by :func:`read_units` through the project's fleet reader (one place to change when
  the fleet reader is unified).
"""

from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dispatch.errors import InputFileError


@dataclass(frozen=True)
class Units:
    """Units available for coverage, where they are now (a unit mid-route is its current position).

    Attributes
    ----------
    ids, vehicle : numpy.ndarray of str
        Unit id and vehicle class.
    lat, lon : numpy.ndarray of float
        Current position.
    turnout_s : numpy.ndarray of float
        Turnout (notified to rolling) added to every travel time of the unit.
    n_unavailable : int
        Units in the file that are busy or out of service (not counted in coverage).
    """

    ids: np.ndarray
    vehicle: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    turnout_s: np.ndarray
    n_unavailable: int = 0

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def from_records(cls, units: Any) -> Units:
        """Build from unit mappings (``id``, ``vehicle``, ``lat``, ``lon``, optional ``turnout_s``
        and ``available``); unavailable units are counted, not kept."""
        rows = [dict(u) for u in units]
        keep = [u for u in rows if u.get("available", True)]
        return cls(
            ids=np.array([str(u["id"]) for u in keep], dtype=object),
            vehicle=np.array([str(u["vehicle"]) for u in keep], dtype=object),
            lat=np.array([float(u["lat"]) for u in keep], dtype=float),
            lon=np.array([float(u["lon"]) for u in keep], dtype=float),
            turnout_s=np.array([float(u.get("turnout_s") or 0.0) for u in keep], dtype=float),
            n_unavailable=len(rows) - len(keep),
        )


def read_units(path: str | os.PathLike[str]) -> Units:
    """Read a fleet CSV (``id,vehicle,lat,lon[,status,station,turnout_s]``) as :class:`Units`.

    The only call of the project's fleet reader in this package.
    """
    from dispatch.io.fleet import read_fleet_csv

    return Units.from_records(read_fleet_csv(path))


def _csv_rows(path: str | os.PathLike[str], required: tuple[str, ...], what: str
              ) -> list[tuple[int, dict[str, str]]]:  # fmt: skip
    p = Path(path)
    if not p.exists() or p.is_dir():
        raise InputFileError(f"{what} file {str(p)!r} does not exist")
    try:
        text = p.read_bytes().decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputFileError(f"{what} file {str(p)!r} cannot be read: {exc}") from None
    numbered = [(i, ln) for i, ln in enumerate(text.splitlines(), start=1)
                if ln.strip() and not ln.lstrip().startswith("#")]  # fmt: skip
    if not numbered:
        raise InputFileError(f"{what} file {str(p)!r} is empty")
    reader = csv.reader([ln for _, ln in numbered])
    header = [h.strip() for h in next(reader)]
    missing = [c for c in required if c not in header]
    if missing:
        raise InputFileError(f"{what} file {str(p)!r} lacks column(s) {', '.join(missing)} "
                             f"(header: {','.join(header)})")  # fmt: skip
    out = []
    for (line, _), fields in zip(numbered[1:], reader, strict=True):
        if len(fields) != len(header):
            raise InputFileError(
                f"{p}: line {line}: {len(fields)} fields, the header has {len(header)}"
            )
        out.append((line, {h: v.strip() for h, v in zip(header, fields, strict=True)}))
    if not out:
        raise InputFileError(f"{what} file {str(p)!r} has no rows")
    return out


def _num(p: str | os.PathLike[str], line: int, field: str, value: str, lo: float, hi: float
         ) -> float:  # fmt: skip
    try:
        x = float(value)
    except ValueError:
        raise InputFileError(f"{p}: line {line}: field {field}={value!r} is not a number") from None
    if not (math.isfinite(x) and lo <= x <= hi):
        raise InputFileError(
            f"{p}: line {line}: field {field}={value!r} is out of range [{lo}, {hi}]"
        )
    return x


@dataclass(frozen=True)
class PointRows:
    """Points read from a CSV: ids, positions, weights, zone labels and their file lines."""

    ids: list[str]
    lat: np.ndarray
    lon: np.ndarray
    weight: np.ndarray
    zone: list[str]
    line: list[int]
    names: list[str]


def read_points(path: str | os.PathLike[str], *, what: str = "demand") -> PointRows:
    """Read a CSV of points (demand, candidate sites or existing stations).

    Raises
    ------
    dispatch.errors.InputFileError
        Missing column, a bad number, a duplicate id, a negative weight, or no row at all; the
        message names the file, line, field and value.
    """
    rows = _csv_rows(path, ("lat", "lon"), what)
    ids: list[str] = []
    seen: dict[str, int] = {}
    lat, lon, weight, zone, lines, names = [], [], [], [], [], []
    for line, r in rows:
        uid = r.get("id") or f"row {line}"
        if uid in seen:
            raise InputFileError(
                f"{path}: line {line}: duplicate id {uid!r} (first on line {seen[uid]})"
            )
        seen[uid] = line
        ids.append(uid)
        lat.append(_num(path, line, "lat", r["lat"], -90, 90))
        lon.append(_num(path, line, "lon", r["lon"], -180, 180))
        w = r.get("weight", "")
        weight.append(_num(path, line, "weight", w, 0, math.inf) if w != "" else 1.0)
        zone.append(r.get("zone", ""))
        names.append(r.get("name", ""))
        lines.append(line)
    return PointRows(ids, np.array(lat), np.array(lon), np.array(weight), zone, lines, names)
