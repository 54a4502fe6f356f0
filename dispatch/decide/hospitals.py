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
from typing import Any

import numpy as np

from dispatch.errors import DispatchError
from dispatch.io.hospitals import read_hospitals
from dispatch.model import HOSPITAL_CAPABILITIES, Hospital

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
