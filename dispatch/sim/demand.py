"""Call generation: Poisson arrivals per incident type with an hour-of-day profile.

Arrivals of each incident type follow a piecewise-constant (hourly) non-homogeneous Poisson process:
in clock hour ``h`` the number of calls is Poisson with mean ``calls_per_hour * hour_profile[h % 24]``
(pro rata for a partial last hour) and their times are uniform inside the hour. Locations are uniform
over road length, weighted by zones or grid cells, or drawn from historical call points. Service
times (on scene, hospital transport, handover) are drawn with the call, so that every dispatch policy
sees exactly the same calls with the same service times: *common random numbers* across policies.

Every random stream comes from :class:`numpy.random.SeedSequence` keyed by (seed, replication,
incident type, purpose): adding an incident type or a replication does not change the others.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dispatch.sim.scenario import DemandLocations, Distribution, Scenario, ScenarioError

__all__ = [
    "Areas",
    "Calls",
    "RoadSegments",
    "areas_for",
    "generate_calls",
    "read_points",
    "road_segments",
    "sample_distribution",
]

_EARTH_M_PER_DEG = 111_194.93  # metres per degree of latitude (mean Earth radius)

# Purposes of the random streams (part of each stream's seed key; never renumber).
_ARRIVALS, _LOCATIONS, _ON_SCENE, _TRANSPORT, _HANDOVER = range(5)


@dataclass(frozen=True)
class RoadSegments:
    """Straight road pieces ``(lat1, lon1) -> (lat2, lon2)`` with their lengths, for sampling.

    Each undirected road piece appears once, whatever its number of directions.
    """

    lat1: np.ndarray
    lon1: np.ndarray
    lat2: np.ndarray
    lon2: np.ndarray
    length_m: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.lat1)
        for name in ("lon1", "lat2", "lon2", "length_m"):
            if len(getattr(self, name)) != n:
                raise ValueError(
                    f"RoadSegments.{name} has {len(getattr(self, name))} rows, not {n}"
                )
        if n == 0 or not float(np.sum(self.length_m)) > 0:
            raise ScenarioError("the map has no road length to place calls on")

    @classmethod
    def from_endpoints(cls, lat1: Any, lon1: Any, lat2: Any, lon2: Any) -> RoadSegments:
        """Build from endpoint arrays; lengths by the equirectangular approximation."""
        a = [np.asarray(x, dtype=np.float64) for x in (lat1, lon1, lat2, lon2)]
        dy = (a[2] - a[0]) * _EARTH_M_PER_DEG
        dx = (a[3] - a[1]) * _EARTH_M_PER_DEG * np.cos(np.radians((a[0] + a[2]) / 2))
        return cls(a[0], a[1], a[2], a[3], np.hypot(dx, dy))

    @property
    def mid_lat(self) -> np.ndarray:
        return np.asarray((self.lat1 + self.lat2) / 2)

    @property
    def mid_lon(self) -> np.ndarray:
        return np.asarray((self.lon1 + self.lon2) / 2)


@dataclass(frozen=True)
class Areas:
    """Statistics areas: zones from a GeoJSON file, or square grid cells.

    Parameters
    ----------
    names : tuple of str
        Area names; index ``len(names) - 1`` may be ``"outside"`` for zones.
    kind : {"zone", "grid"}
    cell_m : float
        Grid cell size in metres (grid only).
    origin : (lat, lon)
        South-west corner of the grid (grid only).
    polygons : tuple
        Shapely geometries of the zones (zones only), aligned with ``names``.
    """

    names: tuple[str, ...]
    kind: str
    cell_m: float
    origin: tuple[float, float]
    polygons: tuple[Any, ...] = ()
    n_cols: int = 0
    n_rows: int = 0

    def locate(self, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
        """Area index of each point."""
        lat = np.asarray(lat, dtype=np.float64)
        lon = np.asarray(lon, dtype=np.float64)
        if self.kind == "zone":
            import shapely

            out = np.full(len(lat), len(self.names) - 1, dtype=np.int32)
            for i, poly in enumerate(self.polygons):
                inside = shapely.contains_xy(poly, lon, lat) & (out == len(self.names) - 1)
                out[inside] = i
            return out
        row, col = self._cell(lat, lon)
        return np.asarray(row * self.n_cols + col, dtype=np.int32)

    def _cell(self, lat: np.ndarray, lon: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        lat0, lon0 = self.origin
        y = (lat - lat0) * _EARTH_M_PER_DEG
        x = (lon - lon0) * _EARTH_M_PER_DEG * math.cos(math.radians(lat0))
        row = np.clip(np.floor(y / self.cell_m), 0, self.n_rows - 1).astype(np.int64)
        col = np.clip(np.floor(x / self.cell_m), 0, self.n_cols - 1).astype(np.int64)
        return row, col


@dataclass(frozen=True)
class Calls:
    """Generated calls, one row per call, sorted by ``time_s`` then by type.

    Columns are numpy arrays of equal length. ``type_idx`` indexes ``scenario.incident_types``;
    ``area`` indexes ``areas.names``. ``on_scene_s``, ``transport`` and ``handover_s`` are drawn for
    every call (``handover_s`` is used only when ``transport``).
    """

    time_s: np.ndarray
    type_idx: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    on_scene_s: np.ndarray
    transport: np.ndarray
    handover_s: np.ndarray
    area: np.ndarray
    areas: Areas

    def __len__(self) -> int:
        return len(self.time_s)


# ----------------------------------------------------------------------------------------------
# road segments and areas
# ----------------------------------------------------------------------------------------------


def _reachable_arcs(net: Any, vehicle: str) -> np.ndarray:
    """Arcs a class may drive whose both ends lie in its largest strongly connected part."""
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import connected_components

    n_arcs = int(net.n_arcs)
    ok = np.ones(n_arcs, dtype=bool)
    if hasattr(net, "allowed"):
        ok &= np.asarray(net.allowed(vehicle), dtype=bool)
    if hasattr(net, "arc_contraflow"):
        ok &= ~np.asarray(net.arc_contraflow, dtype=bool)
    tail = np.asarray(net.arc_tail)
    head = np.asarray(net.arc_head)
    if hasattr(net, "allowed"):  # the fake test networks are connected by construction
        n = int(net.n_nodes)
        g = csr_matrix((np.ones(int(ok.sum())), (tail[ok], head[ok])), shape=(n, n))
        _, labels = connected_components(g, directed=True, connection="strong")
        big = np.bincount(labels).argmax()
        ok &= (labels[tail] == big) & (labels[head] == big)
    return ok


def road_segments(net: Any, *, vehicles: Sequence[str] = ("ambulance",)) -> RoadSegments:
    """The road pieces that at least one of ``vehicles`` can reach, each undirected piece once.

    A piece counts when a class may drive it and it lies in that class's largest strongly connected
    part of the network (so a call placed on it can be reached and left by road).

    Uses the arc geometry of :class:`dispatch.roads.network.Network` (``geom_ptr``, ``geom_lat``,
    ``geom_lon``, ``arc_twin``, ``arc_contraflow``, :meth:`~dispatch.roads.network.Network.allowed`);
    falls back to straight arcs between nodes for a network without geometry.
    """
    n_arcs = int(net.n_arcs)
    keep = np.zeros(n_arcs, dtype=bool)
    for v in vehicles:
        keep |= _reachable_arcs(net, v)
    if hasattr(net, "arc_twin"):
        twin = np.asarray(net.arc_twin)
        idx = np.arange(n_arcs)
        # a two-way road is two arcs: keep the one with the smaller index (or the only one allowed)
        twin_ok = (twin >= 0) & keep[np.clip(twin, 0, None)]
        keep &= ~twin_ok | (idx < twin)
    arcs = np.flatnonzero(keep)
    if hasattr(net, "geom_ptr"):
        ptr = np.asarray(net.geom_ptr)
        glat = np.asarray(net.geom_lat)
        glon = np.asarray(net.geom_lon)
        starts = ptr[arcs]
        counts = ptr[arcs + 1] - starts - 1  # pieces per arc
        counts = np.clip(counts, 0, None)
        first = np.repeat(starts, counts) + (
            np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
        )
        return RoadSegments.from_endpoints(
            glat[first], glon[first], glat[first + 1], glon[first + 1]
        )
    tail = np.asarray(net.arc_tail)[arcs]
    head = np.asarray(net.arc_head)[arcs]
    nlat = np.asarray(net.node_lat)
    nlon = np.asarray(net.node_lon)
    return RoadSegments.from_endpoints(nlat[tail], nlon[tail], nlat[head], nlon[head])


def _load_zones(loc: DemandLocations) -> tuple[list[str], list[Any], np.ndarray]:
    import shapely.geometry

    assert loc.zones is not None
    where = str(loc.zones)
    from dispatch.io.text import read_json

    doc = read_json(loc.zones, "zones GeoJSON", error=ScenarioError)
    feats = doc.get("features") if isinstance(doc, dict) else None
    if not isinstance(feats, list) or not feats:
        raise ScenarioError(f"{where}: zones must be a GeoJSON FeatureCollection with features")
    names: list[str] = []
    polys: list[Any] = []
    weights: list[float] = []
    for i, f in enumerate(feats):
        if not isinstance(f, dict) or not isinstance(f.get("properties") or {}, dict):
            raise ScenarioError(f"{where}: features[{i}] must be a GeoJSON Feature object")
        props = f.get("properties") or {}
        try:
            geom = shapely.geometry.shape(f["geometry"])
        except Exception as exc:  # shapely raises several types on bad geometry
            raise ScenarioError(f"{where}: features[{i}].geometry: {exc}") from None
        if geom.geom_type not in ("Polygon", "MultiPolygon"):
            raise ScenarioError(
                f"{where}: features[{i}].geometry: {geom.geom_type} is not a polygon"
            )
        w = props.get(loc.weight_property, 1.0)
        if (
            isinstance(w, bool)
            or not isinstance(w, int | float)
            or not (math.isfinite(w) and w >= 0)
        ):
            raise ScenarioError(
                f"{where}: features[{i}].properties.{loc.weight_property}={w!r} must be a number >= 0"
            )
        names.append(str(props.get(loc.name_property, f"zone{i}")))
        polys.append(geom)
        weights.append(float(w))
    return names, polys, np.asarray(weights)


def areas_for(scenario: Scenario, bbox: tuple[float, float, float, float]) -> Areas:
    """Statistics areas of a scenario: its zones when it has a zones file, else a grid over ``bbox``."""
    loc = scenario.demand
    if loc.zones is not None:
        zone_names, polys, _ = _load_zones(loc)
        return Areas((*zone_names, "outside"), "zone", 0.0, (bbox[0], bbox[1]), tuple(polys))
    cell = scenario.area_cell_m
    lat0, lon0, lat1, lon1 = bbox
    ny = max(1, math.ceil((lat1 - lat0) * _EARTH_M_PER_DEG / cell + 1e-9))
    nx = max(
        1, math.ceil((lon1 - lon0) * _EARTH_M_PER_DEG * math.cos(math.radians(lat0)) / cell + 1e-9)
    )
    names = tuple(f"r{r:02d}c{c:02d}" for r in range(ny) for c in range(nx))
    return Areas(names, "grid", cell, (lat0, lon0), (), nx, ny)


def read_points(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Read historical call points: a CSV with columns ``lat``, ``lon`` and optional ``weight``.

    Raises
    ------
    ScenarioError
        Missing column, or a bad value (the message names the file, line and column).
    """
    from dispatch.errors import InputFileError
    from dispatch.io.text import read_csv_table

    try:  # the one bounded CSV reader: repeated columns refused, physical line numbers
        table = read_csv_table(path, "call points", required=("lat", "lon"), optional=None,
                               allow_empty=True)  # fmt: skip
    except InputFileError as exc:
        raise ScenarioError(str(exc)) from None
    lats: list[float] = []
    lons: list[float] = []
    ws: list[float] = []
    for line, row in table.rows:
        vals = []
        for col, lo, hi in (("lat", -90, 90), ("lon", -180, 180), ("weight", 0, math.inf)):
            raw = row.get(col)
            if col == "weight" and (raw is None or raw == ""):
                vals.append(1.0)
                continue
            try:
                v = float(raw or "")
            except ValueError:
                raise ScenarioError(f"{path}:{line}: {col}={raw!r} is not a number") from None
            if not (math.isfinite(v) and lo <= v <= hi):
                raise ScenarioError(f"{path}:{line}: {col}={raw!r} is out of range")
            vals.append(v)
        lats.append(vals[0])
        lons.append(vals[1])
        ws.append(vals[2])
    if not lats or sum(ws) <= 0:
        raise ScenarioError(f"{path}: no call points with a positive weight")
    return np.asarray(lats), np.asarray(lons), np.asarray(ws)


# ----------------------------------------------------------------------------------------------
# sampling
# ----------------------------------------------------------------------------------------------


def sample_distribution(dist: Distribution, rng: np.random.Generator, n: int) -> np.ndarray:
    """Draw ``n`` durations in seconds from a :class:`~dispatch.sim.scenario.Distribution`."""
    if n == 0:
        return np.zeros(0)
    if dist.dist == "fixed" or (dist.dist in ("lognormal", "gamma") and dist.sd_s == 0):
        x = np.full(n, dist.mean_s)
    elif dist.dist == "exponential":
        x = rng.exponential(dist.mean_s, n) if dist.mean_s > 0 else np.zeros(n)
    elif dist.dist == "lognormal":
        sigma2 = math.log1p((dist.sd_s / dist.mean_s) ** 2)
        x = rng.lognormal(math.log(dist.mean_s) - sigma2 / 2, math.sqrt(sigma2), n)
    elif dist.dist == "gamma":
        shape = (dist.mean_s / dist.sd_s) ** 2
        x = rng.gamma(shape, dist.sd_s**2 / dist.mean_s, n)
    elif dist.dist == "uniform":
        x = rng.uniform(dist.min_s, dist.max_s, n)
    else:  # pragma: no cover - validated by Distribution
        raise ScenarioError(f"dist={dist.dist!r} is not supported")
    return np.asarray(np.clip(x, dist.min_s, dist.max_s))


def _rng(seed: int, replication: int, type_i: int, purpose: int) -> np.random.Generator:
    return np.random.default_rng(
        np.random.SeedSequence(seed, spawn_key=(replication, type_i, purpose))
    )


def _arrival_times(
    rate_per_h: float, profile: Sequence[float], horizon_h: float, rng: np.random.Generator
) -> np.ndarray:
    n_hours = math.ceil(horizon_h)
    hours = np.arange(n_hours)
    span = np.minimum(horizon_h - hours, 1.0)  # partial last hour
    lam = rate_per_h * np.asarray(profile)[hours % 24] * span
    counts = rng.poisson(lam)
    start = np.repeat(hours.astype(np.float64), counts)
    frac = rng.random(int(counts.sum())) * np.repeat(span, counts)
    return np.sort((start + frac) * 3600.0)


class _Locator:
    """Draws call locations for one scenario (shared by all incident types)."""

    def __init__(self, loc: DemandLocations, segments: RoadSegments) -> None:
        self.kind = loc.kind
        self.seg = segments
        if loc.kind == "points":
            assert loc.points is not None
            lat, lon, w = read_points(loc.points)
            self.p_lat, self.p_lon = lat, lon
            self.p_cum = np.cumsum(w) / w.sum()
            return
        if loc.kind == "roads":
            groups = [np.arange(len(segments.length_m))]
            weights = np.ones(1)
        else:
            import shapely

            if loc.kind == "zones":
                _, polys, weights = _load_zones(loc)
            else:
                polys = []
                half_lat = loc.cell_m / 2 / _EARTH_M_PER_DEG
                for clat, clon, _ in loc.cells:
                    half_lon = half_lat / math.cos(math.radians(clat))
                    polys.append(
                        shapely.box(
                            clon - half_lon, clat - half_lat, clon + half_lon, clat + half_lat
                        )
                    )
                weights = np.array([w for _, _, w in loc.cells], dtype=np.float64)
            mid_lat, mid_lon = segments.mid_lat, segments.mid_lon
            groups = [np.flatnonzero(shapely.contains_xy(p, mid_lon, mid_lat)) for p in polys]
            road = np.array([segments.length_m[g].sum() for g in groups])
            weights = np.where(road > 0, weights, 0.0)
            if not weights.sum() > 0:
                raise ScenarioError(
                    f"demand: no road inside any {'zone' if loc.kind == 'zones' else 'cell'} "
                    "with a positive weight"
                )
        self.group_cum = np.cumsum(weights) / weights.sum()
        self.groups = groups
        self.seg_cum = [
            np.cumsum(segments.length_m[g]) / segments.length_m[g].sum() if len(g) else np.ones(0)
            for g in groups
        ]

    def draw(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
        if self.kind == "points":
            i = np.searchsorted(self.p_cum, rng.random(n), side="right")
            i = np.minimum(i, len(self.p_lat) - 1)
            return self.p_lat[i].copy(), self.p_lon[i].copy()
        u_group, u_seg, u_t = rng.random(n), rng.random(n), rng.random(n)
        g = np.minimum(np.searchsorted(self.group_cum, u_group, side="right"), len(self.groups) - 1)
        seg_idx = np.empty(n, dtype=np.int64)
        for gi in np.unique(g):
            m = g == gi
            cum = self.seg_cum[gi]
            k = np.minimum(np.searchsorted(cum, u_seg[m], side="right"), len(cum) - 1)
            seg_idx[m] = self.groups[gi][k]
        s = self.seg
        lat = s.lat1[seg_idx] + u_t * (s.lat2[seg_idx] - s.lat1[seg_idx])
        lon = s.lon1[seg_idx] + u_t * (s.lon2[seg_idx] - s.lon1[seg_idx])
        return lat, lon


def generate_calls(
    scenario: Scenario,
    *,
    segments: RoadSegments | Callable[[tuple[str, ...]], RoadSegments],
    areas: Areas,
    replication: int = 0,
    seed: int | None = None,
) -> Calls:
    """Generate the calls of one replication of a scenario.

    Parameters
    ----------
    scenario : Scenario
        Rates, hour profiles, locations and service-time distributions.
    segments : RoadSegments or callable
        Road pieces to place calls on (:func:`road_segments`), or a function of an incident type's
        vehicle classes giving the pieces those classes can reach.
    areas : Areas
        Statistics areas (:func:`areas_for`).
    replication : int
        Replication number; each has its own independent streams.
    seed : int, optional
        Overrides ``scenario.seed``.

    Returns
    -------
    Calls
        Sorted by time (ties by incident type order). The same (scenario, seed, replication) gives
        the same calls, whatever the policy.
    """
    seed = scenario.seed if seed is None else seed
    locators: dict[tuple[str, ...], _Locator] = {}
    parts: list[tuple[np.ndarray, ...]] = []
    for ti, it in enumerate(scenario.incident_types):
        key = tuple(sorted(it.vehicles))
        if key not in locators:
            seg = segments if isinstance(segments, RoadSegments) else segments(key)
            locators[key] = _Locator(scenario.demand, seg)
        locator = locators[key]
        t = _arrival_times(
            it.calls_per_hour,
            it.hour_profile,
            scenario.horizon_h,
            _rng(seed, replication, ti, _ARRIVALS),
        )
        n = len(t)
        lat, lon = locator.draw(_rng(seed, replication, ti, _LOCATIONS), n)
        on_scene = sample_distribution(it.on_scene, _rng(seed, replication, ti, _ON_SCENE), n)
        transport = _rng(seed, replication, ti, _TRANSPORT).random(n) < it.transport_probability
        if it.handover is not None:
            handover = sample_distribution(it.handover, _rng(seed, replication, ti, _HANDOVER), n)
        else:
            handover = np.zeros(n)
        parts.append((t, np.full(n, ti, dtype=np.int32), lat, lon, on_scene, transport, handover))
    cols = [np.concatenate([p[j] for p in parts]) for j in range(7)]
    order = np.lexsort((cols[1], cols[0]))
    time_s, type_idx, lat, lon, on_scene, transport, handover = (c[order] for c in cols)
    return Calls(
        time_s=time_s,
        type_idx=type_idx,
        lat=lat,
        lon=lon,
        on_scene_s=on_scene,
        transport=transport.astype(bool),
        handover_s=handover,
        area=areas.locate(lat, lon),
        areas=areas,
    )
