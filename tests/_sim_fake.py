"""A hand-checkable travel-time oracle for simulation tests (no map, no routing core).

Travel time is Manhattan distance in degrees times ``s_per_deg`` (default 100,000 s per degree: 0.01
degree is 1,000 s), the same for every vehicle and hour. Routes go north/south first, then east/west,
as an L with a vertex at the corner, so interpolated positions are easy to check by hand.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class FakeRoute:
    eta_s: float
    length_m: float
    coords: list[tuple[float, float]]
    times_s: list[float]


@dataclass(frozen=True)
class FakeETA:
    unit: str
    vehicle: str
    eta_s: float
    drive_s: float
    turnout_s: float
    route: Any = None


@dataclass
class FakeFacility:
    kind: str
    name: str
    lat: float
    lon: float
    osm_id: int
    tags: dict[str, str] = field(default_factory=dict)


class FakeNet:
    """Manhattan-metric oracle over a small square of "roads" (a grid of segments).

    Parameters
    ----------
    s_per_deg : float
        Seconds per degree of Manhattan distance.
    bbox : (min_lat, min_lon, max_lat, max_lon)
        Extent of the road grid used to place generated calls.
    """

    name = "fake"

    def __init__(
        self, *, s_per_deg: float = 100_000.0, bbox=(16.0, 108.0, 16.04, 108.04), n: int = 5
    ):
        self.s_per_deg = s_per_deg
        self.bbox = bbox
        self.facilities: tuple[FakeFacility, ...] = ()
        lats = np.linspace(bbox[0], bbox[2], n)
        lons = np.linspace(bbox[1], bbox[3], n)
        la, lo = np.meshgrid(lats, lons, indexing="ij")
        self.node_lat = la.ravel()
        self.node_lon = lo.ravel()
        tails, heads = [], []
        for r in range(n):
            for c in range(n):
                i = r * n + c
                if c + 1 < n:
                    tails.append(i)
                    heads.append(i + 1)
                if r + 1 < n:
                    tails.append(i)
                    heads.append(i + n)
        self.arc_tail = np.array(tails)
        self.arc_head = np.array(heads)
        self.n_arcs = len(tails)
        self.n_nodes = len(self.node_lat)
        self.calls_fastest = 0
        self.closed: dict[int, Any] = {}

    def _t(self, a: tuple[float, float], b: tuple[float, float]) -> float:
        return (abs(a[0] - b[0]) + abs(a[1] - b[1])) * self.s_per_deg

    def fastest_units(
        self, call, units: Sequence[Mapping[str, Any]], *, k=3, hour=None, routes=False
    ):
        self.calls_fastest += 1
        out = []
        for u in units:
            if not u.get("available", True):
                continue
            turnout = float(u.get("turnout_s", 0.0))
            drive = self._t((u["lat"], u["lon"]), call)
            out.append(FakeETA(u["id"], u["vehicle"], turnout + drive, drive, turnout))
        out.sort(key=lambda e: (e.eta_s, e.unit))
        return out[:k]

    def route(self, origin, destination, *, vehicle="ambulance", hour=None):
        corner = (destination[0], origin[1])
        t1 = self._t(origin, corner)
        t2 = t1 + self._t(corner, destination)
        return FakeRoute(t2, t2, [tuple(origin), corner, tuple(destination)], [0.0, t1, t2])

    def travel_times(self, origins, destinations, *, vehicle="ambulance", hour=None):
        o = np.atleast_2d(np.asarray(origins, dtype=float))
        d = np.atleast_2d(np.asarray(destinations, dtype=float))
        return (
            np.abs(o[:, None, 0] - d[None, :, 0]) + np.abs(o[:, None, 1] - d[None, :, 1])
        ) * self.s_per_deg

    # closures: recorded only
    def close_polygon(self, geometry, *, vehicles=None, start_h=None, end_h=None, label=""):
        cid = len(self.closed) + 1
        self.closed[cid] = (geometry, start_h, end_h, label)
        return cid

    def close_ways(self, way_ids, *, vehicles=None, start_h=None, end_h=None, label=""):
        return self.close_polygon(None, start_h=start_h, end_h=end_h, label=label)

    def close_geojson(self, doc, **kw):
        if not isinstance(doc, dict):
            import json
            from pathlib import Path

            doc = json.loads(Path(doc).read_text(encoding="utf-8"))
        return [self.close_polygon(f["geometry"], **kw) for f in doc["features"]]

    def reopen(self, cid):
        self.closed.pop(cid, None)


def make_fake_net() -> FakeNet:
    """A picklable network factory for parallel-runner tests."""
    return FakeNet()
