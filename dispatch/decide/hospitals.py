"""Hospitals and their capabilities; the nearest capable hospital by road ETA from the scene.

Capabilities are ``general``, ``trauma``, ``cardiac``, ``stroke``, ``burns`` and ``paediatrics``
(:data:`dispatch.decide.incidents.HOSPITAL_CAPABILITIES`). OpenStreetMap rarely tags them, so a hospital file
says where each capability list comes from (``capabilities_source``); a list that is not sourced must
be labelled illustrative.

HOSPITALS.csv columns: ``id,name,lat,lon,capabilities`` (``;``-separated) plus optional ``osm_id``,
``capabilities_source`` and ``note``; lines starting with ``#`` are comments.

JSON form of a choice::

    {"hospital": "H1", "name": "...", "lat": ..., "lon": ..., "capability": "cardiac",
     "eta_s": 312.4, "fallback_general": false}
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dispatch.decide.incidents import HOSPITAL_CAPABILITIES, _float_field, _read_csv_rows
from dispatch.errors import DispatchError, InputFileError

__all__ = [
    "Hospital",
    "HospitalChoice",
    "NoHospitalError",
    "choose_hospital",
    "hospitals_from_network",
    "nearest_capable_hospital",
    "read_hospitals",
]


class NoHospitalError(DispatchError):
    """No hospital (with the needed capability, or reachable by road) for a patient."""


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
        if not isinstance(self.id, str) or not self.id.strip():
            raise NoHospitalError(f"hospital id must be a non-empty string, got {self.id!r}")
        for name in ("lat", "lon"):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
            ):
                raise NoHospitalError(
                    f"hospital {self.id!r}: {name} must be a number, got {value!r}"
                )
        if not -90 <= self.lat <= 90 or not -180 <= self.lon <= 180:
            raise NoHospitalError(
                f"hospital {self.id!r}: lat/lon out of range: {self.lat}, {self.lon}"
            )
        for cap in self.capabilities:
            if cap not in HOSPITAL_CAPABILITIES:
                raise NoHospitalError(
                    f"hospital {self.id!r}: unknown capability {cap!r} "
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
class HospitalChoice:
    """The hospital chosen for a patient and the road ETA from the scene.

    Parameters
    ----------
    hospital : Hospital
        The chosen hospital.
    capability : str
        The capability that was needed.
    eta_s : float
        Ambulance road travel time scene -> hospital, seconds.
    fallback_general : bool
        True when no reachable hospital has `capability` and the nearest ``general`` one was taken.
    route : object or None
        A core ``Route`` scene -> hospital when requested.
    """

    hospital: Hospital
    capability: str
    eta_s: float
    fallback_general: bool = False
    route: Any = None

    def to_dict(self) -> dict[str, Any]:
        """JSON form (see the module docstring)."""
        out: dict[str, Any] = {
            "hospital": self.hospital.id,
            "name": self.hospital.name,
            "lat": self.hospital.lat,
            "lon": self.hospital.lon,
            "capability": self.capability,
            "eta_s": round(self.eta_s, 1),
            "fallback_general": self.fallback_general,
            "capabilities_source": self.hospital.capabilities_source,
        }
        if self.route is not None:
            out["length_m"] = round(float(self.route.length_m), 1)
        return out


def read_hospitals(path: str | Path) -> list[Hospital]:
    """Read HOSPITALS.csv (see the module docstring).

    Raises
    ------
    InputFileError
        On a malformed file (file, line and field named) or duplicate ids.
    """
    path = Path(path)
    rows = _read_csv_rows(
        path,
        required=("id", "name", "lat", "lon", "capabilities"),
        optional=("osm_id", "capabilities_source", "note"),
    )
    out: list[Hospital] = []
    seen: dict[str, int] = {}
    for n, row in rows:
        for name in ("id", "lat", "lon", "capabilities"):
            if not row[name]:
                raise InputFileError(f"{path}: line {n}: field {name!r} is empty")
        if row["id"] in seen:
            raise InputFileError(
                f"{path}: line {n}: field 'id': duplicate hospital id {row['id']!r} "
                f"(first on line {seen[row['id']]})"
            )
        seen[row["id"]] = n
        caps = tuple(c.strip() for c in row["capabilities"].split(";") if c.strip())
        for cap in caps:
            if cap not in HOSPITAL_CAPABILITIES:
                raise InputFileError(
                    f"{path}: line {n}: field 'capabilities': unknown capability {cap!r} "
                    f"(known: {', '.join(HOSPITAL_CAPABILITIES)})"
                )
        lat = _float_field(path, n, "lat", row["lat"])
        lon = _float_field(path, n, "lon", row["lon"])
        try:
            out.append(
                Hospital(
                    id=row["id"],
                    name=row["name"] or row["id"],
                    lat=lat,
                    lon=lon,
                    capabilities=caps,
                    osm_id=row.get("osm_id", ""),
                    capabilities_source=row.get("capabilities_source") or "illustrative",
                )
            )
        except NoHospitalError as exc:
            raise InputFileError(f"{path}: line {n}: {exc}") from None
    return out


def hospitals_from_network(net: Any) -> list[Hospital]:
    """Hospitals of a map (``net.facilities`` of kind ``hospital``), capability ``general`` only.

    OSM tags do not say which specialities a hospital has, so every site gets ``("general",)`` with
    ``capabilities_source="assumed general: OSM amenity=hospital"``; sites tagged ``emergency=no`` are
    left out when the map keeps that tag. Mis-tagged sites (a dental clinic or a pharmacy tagged
    ``amenity=hospital``) come through as well: for dispatch, prefer a checked hospital file
    (:func:`read_hospitals`).
    """
    out = []
    for i, fac in enumerate(getattr(net, "facilities", ())):
        tags = getattr(fac, "tags", None) or {}
        if fac.kind != "hospital" or tags.get("emergency") == "no":
            continue
        out.append(
            Hospital(
                id=f"osm-{fac.osm_id}" if fac.osm_id else f"hospital-{i}",
                name=fac.name or f"unnamed hospital {fac.osm_id}",
                lat=float(fac.lat),
                lon=float(fac.lon),
                capabilities=("general",),
                osm_id=str(fac.osm_id),
                capabilities_source="assumed general: OSM amenity=hospital",
            )
        )
    return out


def choose_hospital(
    eta_s: Sequence[float] | np.ndarray,
    hospitals: Sequence[Hospital],
    capability: str,
    *,
    fallback_general: bool = True,
) -> tuple[int, bool]:
    """Pick the hospital with the smallest ETA among those that can treat `capability`.

    Pure function on an ETA vector (one entry per hospital, ``inf`` = unreachable); ties are broken
    by hospital id.

    Returns
    -------
    index : int
        Index into `hospitals`.
    fallback : bool
        True if no reachable hospital had `capability` and a ``general`` one was taken.

    Raises
    ------
    NoHospitalError
        If no reachable hospital fits.
    """
    if capability not in HOSPITAL_CAPABILITIES:
        raise NoHospitalError(
            f"unknown capability {capability!r} (known: {', '.join(HOSPITAL_CAPABILITIES)})"
        )
    eta = np.asarray(eta_s, dtype=float)
    if eta.shape != (len(hospitals),):
        raise NoHospitalError(f"eta_s has shape {eta.shape}, expected ({len(hospitals)},)")
    if not hospitals:
        raise NoHospitalError(f"no hospital given for a patient needing {capability!r}")
    for cap, fallback in ((capability, False), ("general", True)):
        if fallback and (not fallback_general or capability == "general"):
            break
        cands = [
            (eta[i], h.id, i)
            for i, h in enumerate(hospitals)
            if h.can_treat(cap) and math.isfinite(eta[i])
        ]
        if cands:
            return min(cands)[2], fallback
    has_cap = [h.id for h in hospitals if h.can_treat(capability)]
    if has_cap:
        raise NoHospitalError(
            f"no hospital with capability {capability!r} is reachable by road "
            f"(capable: {', '.join(has_cap)})"
        )
    raise NoHospitalError(
        f"no hospital has capability {capability!r}"
        + (" and none is 'general'" if fallback_general else "")
        + f" among {len(hospitals)} hospital(s)"
    )


def nearest_capable_hospital(
    net: Any,
    scene: tuple[float, float],
    capability: str,
    hospitals: Sequence[Hospital],
    *,
    hour: float | None = None,
    fallback_general: bool = True,
    route: bool = False,
) -> HospitalChoice:
    """The hospital able to treat `capability` with the smallest ambulance road ETA from `scene`.

    Parameters
    ----------
    net : Network
        A loaded road network (``dispatch.load_network``).
    scene : tuple of float
        ``(lat, lon)`` of the incident.
    capability : str
        Needed capability (see :data:`HOSPITAL_CAPABILITIES`).
    hospitals : sequence of Hospital
        Candidate hospitals.
    hour : float, optional
        Clock hour for time-of-day speeds and closures.
    fallback_general : bool, default True
        If no reachable hospital has `capability`, take the nearest ``general`` one (flagged).
    route : bool, default False
        Also compute the route scene -> hospital.

    Raises
    ------
    NoHospitalError
        If no hospital fits or none is reachable.
    """
    if not hospitals:
        raise NoHospitalError(f"no hospital given for a patient needing {capability!r}")
    pts = np.array([h.point for h in hospitals], dtype=float)
    eta = np.asarray(
        net.travel_times(np.array([scene], dtype=float), pts, vehicle="ambulance", hour=hour),
        dtype=float,
    ).reshape(-1)
    idx, fallback = choose_hospital(eta, hospitals, capability, fallback_general=fallback_general)
    rt = None
    if route:
        rt = net.route(scene, hospitals[idx].point, vehicle="ambulance", hour=hour)
    return HospitalChoice(hospitals[idx], capability, float(eta[idx]), fallback, rt)
