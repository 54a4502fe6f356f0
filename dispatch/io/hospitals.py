"""The hospitals format: HOSPITALS.csv (reader).

Columns ``id,name,lat,lon,capabilities`` (capabilities separated by ``;``, from
:data:`dispatch.model.HOSPITAL_CAPABILITIES`) plus optional ``osm_id``, ``capabilities_source`` and
the ignored ``note``. Lines starting with ``#`` are comments.
"""

from __future__ import annotations

import os

from dispatch.io.text import read_csv_table
from dispatch.model import HOSPITAL_CAPABILITIES, Hospital, HospitalError

__all__ = ["read_hospitals"]


def read_hospitals(path: str | os.PathLike[str]) -> list[Hospital]:
    """Read HOSPITALS.csv into :class:`dispatch.model.Hospital` objects.

    Raises
    ------
    InputFileError
        On a malformed file (file, physical line and field named) or duplicate ids.
    """
    table = read_csv_table(
        path,
        "hospitals",
        required=("id", "name", "lat", "lon", "capabilities"),
        optional=("osm_id", "capabilities_source", "note"),
    )
    out: list[Hospital] = []
    seen: dict[str, int] = {}
    for n, row in table.rows:
        for key in ("id", "lat", "lon", "capabilities"):
            if not row[key]:
                raise table.fail(n, f"field {key!r} is empty")
        if row["id"] in seen:
            raise table.fail(
                n, f"field 'id': duplicate hospital id {row['id']!r} "
                f"(first on line {seen[row['id']]})",
            )  # fmt: skip
        seen[row["id"]] = n
        caps = tuple(c.strip() for c in row["capabilities"].split(";") if c.strip())
        for cap in caps:
            if cap not in HOSPITAL_CAPABILITIES:
                raise table.fail(
                    n, f"field 'capabilities': unknown capability {cap[:40]!r} "
                    f"(known: {', '.join(HOSPITAL_CAPABILITIES)})",
                )  # fmt: skip
        coords = []
        for key in ("lat", "lon"):
            try:
                coords.append(float(row[key]))
            except ValueError:
                raise table.fail(n, f"field {key!r}: not a number: {row[key][:40]!r}") from None
        try:
            out.append(
                Hospital(
                    id=row["id"],
                    name=row["name"] or row["id"],
                    lat=coords[0],
                    lon=coords[1],
                    capabilities=caps,
                    osm_id=row.get("osm_id", ""),
                    capabilities_source=row.get("capabilities_source") or "illustrative",
                )
            )
        except HospitalError as exc:
            raise table.fail(n, str(exc)) from None
    return out
