"""Demand points and their road travel-time matrices.

Three sources, one type (:class:`Demand`):

- :func:`grid_demand`: square cells over the roads, one point per cell on the longest road piece in
  it, weighted by the road length in the cell (demand uniform over road length);
- :func:`points_demand`: a CSV of historical calls (``lat,lon[,weight][,zone]``, :mod:`dispatch.plan.io`);
- :func:`scenario_demand`: a scenario's call model (rates, hour profiles, locations) sampled with its
  seed and binned into the same grid: weights are expected calls per hour, optionally per hour band.

:func:`travel_time_matrix` turns origins and demand points into seconds with the routing core
(``net.travel_times``: snapped to the roads, one-ways, speed bands, closures; never straight lines).
A demand point that no road open to a class reaches within the snap tolerance gets ``inf`` for that
class and is counted as *uncoverable* by the models, never dropped.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from dispatch.plan import PlanError

if TYPE_CHECKING:
    from dispatch.roads.network import Network
    from dispatch.sim.scenario import Scenario

M_PER_DEG = math.pi / 180.0 * 6_371_008.8


@dataclass(frozen=True)
class Grid:
    """A square grid: cell ``(row, col)`` spans ``origin + (row, col) * cell_m`` (south-west corner)."""

    origin_lat: float
    origin_lon: float
    cell_m: float

    def cell_of(self, lat: np.ndarray, lon: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Row and column of each point."""
        kx = M_PER_DEG * math.cos(math.radians(self.origin_lat))
        row = np.floor((np.asarray(lat) - self.origin_lat) * M_PER_DEG / self.cell_m)
        col = np.floor((np.asarray(lon) - self.origin_lon) * kx / self.cell_m)
        return row.astype(np.int64), col.astype(np.int64)

    def polygon(self, row: int, col: int) -> list[list[float]]:
        """The cell's ring as GeoJSON ``[lon, lat]`` pairs."""
        kx = M_PER_DEG * math.cos(math.radians(self.origin_lat))
        la0 = self.origin_lat + row * self.cell_m / M_PER_DEG
        la1 = la0 + self.cell_m / M_PER_DEG
        lo0 = self.origin_lon + col * self.cell_m / kx
        lo1 = lo0 + self.cell_m / kx
        return [[lo0, la0], [lo1, la0], [lo1, la1], [lo0, la1], [lo0, la0]]


@dataclass(frozen=True)
class Demand:
    """Demand points with weights.

    Attributes
    ----------
    lat, lon : numpy.ndarray
        Positions (on or near a road).
    weight : numpy.ndarray
        Non-negative weight of each point (calls per hour, road length, or a count).
    zone : tuple of str
        Zone label of each point (grid cell ``rRRcCC`` or the CSV's ``zone``; empty when none).
    ids : tuple of str
        Point ids (grid cell or CSV id).
    source : str
        Where the demand came from (for reports).
    grid : Grid or None
        The grid when points are grid cells (the GeoJSON layer then draws cells, else points).
    cells : numpy.ndarray or None
        ``(row, col)`` of each point for a grid.
    """

    lat: np.ndarray
    lon: np.ndarray
    weight: np.ndarray
    zone: tuple[str, ...]
    ids: tuple[str, ...]
    source: str
    grid: Grid | None = None
    cells: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        n = len(self.lat)
        if n == 0:
            raise PlanError(f"demand ({self.source}) has no points")
        for name in ("lon", "weight"):
            if len(getattr(self, name)) != n:
                raise PlanError(
                    f"demand: {name} has {len(getattr(self, name))} values, lat has {n}"
                )
        w = np.asarray(self.weight, dtype=float)
        bad = ~np.isfinite(w) | (w < 0)
        if bad.any():
            i = int(np.argmax(bad))
            raise PlanError(f"demand point {self.ids[i]!r}: weight={w[i]!r} must be a number >= 0")
        if not w.sum() > 0:
            raise PlanError(f"demand ({self.source}) has no positive weight")

    def __len__(self) -> int:
        return len(self.lat)

    @property
    def points(self) -> np.ndarray:
        """Shape ``(n, 2)`` array of ``(lat, lon)``."""
        return np.column_stack([self.lat, self.lon])

    def with_weight(self, weight: np.ndarray, source: str | None = None) -> Demand:
        """The same points with other weights."""
        return Demand(self.lat, self.lon, np.asarray(weight, dtype=float), self.zone, self.ids,
                      source or self.source, self.grid, self.cells)  # fmt: skip


def _grid_for(net: Network, cell_m: float) -> Grid:
    if not (math.isfinite(cell_m) and cell_m > 0):
        raise PlanError(f"cell_m={cell_m!r} must be a positive number of metres")
    lat0, lon0, _, _ = net.bbox
    return Grid(lat0, lon0, float(cell_m))


def grid_demand(
    net: Network, *, cell_m: float = 200.0, vehicles: Sequence[str] = ("ambulance",)
) -> Demand:
    """Square cells over the roads that ``vehicles`` can reach, weighted by road length (m).

    Each cell's point is the midpoint of the longest road piece in it, so that it lies on a road.

    Examples
    --------
    >>> import dispatch
    >>> d = grid_demand(dispatch.load_network("danang"), cell_m=400)
    >>> len(d) > 30, d.source
    (True, 'grid 400 m over the roads')
    """
    from dispatch.sim.demand import road_segments

    grid = _grid_for(net, cell_m)
    seg = road_segments(net, vehicles=tuple(vehicles))
    row, col = grid.cell_of(seg.mid_lat, seg.mid_lon)
    key = row * 1_000_000 + col
    order = np.lexsort((-seg.length_m, key))  # by cell, longest piece first
    key_sorted = key[order]
    first = np.flatnonzero(np.r_[True, key_sorted[1:] != key_sorted[:-1]])
    best = order[first]
    weight = np.add.reduceat(seg.length_m[order], first)
    cells = np.column_stack([row[best], col[best]])
    names = tuple(f"r{r:02d}c{c:02d}" for r, c in cells)
    return Demand(seg.mid_lat[best], seg.mid_lon[best], weight, names, names,
                  f"grid {cell_m:g} m over the roads", grid, cells)  # fmt: skip


def points_demand(path: str, *, what: str = "demand") -> Demand:
    """Demand from a CSV of historical calls or demand points (``lat,lon[,weight][,zone][,id]``)."""
    from dispatch.plan.io import read_points

    rows = read_points(path, what=what)
    return Demand(rows.lat, rows.lon, rows.weight, tuple(rows.zone), tuple(rows.ids),
                  f"points from {path}")  # fmt: skip


#: Days of calls sampled from a scenario's call model to estimate its expected calls per cell.
SCENARIO_SAMPLE_DAYS = 200


def hour_band_name(net: Network, hour: float | None) -> str:
    """Name of the speed band of a clock hour (``off_peak`` outside every band)."""
    b = net.settings.band_index(hour)
    return "off_peak" if b < 0 else net.settings.bands[b].name


def band_hours(net: Network) -> dict[str, float]:
    """One representative clock hour per speed band (its middle), plus ``off_peak`` (12:30, or the
    first half hour outside every band), in clock order."""
    out: dict[str, float] = {}
    off = next((h + 0.5 for h in (12, *range(24)) if net.settings.band_index(h + 0.5) < 0), None)
    if off is not None:
        out["off_peak"] = off
    for b in net.settings.bands:
        out[b.name] = (b.start_h + ((b.end_h - b.start_h) % 24) / 2) % 24
    return dict(sorted(out.items(), key=lambda kv: kv[1]))


def scenario_demand(
    scenario: Scenario, net: Network, *, cell_m: float = 200.0, band: str | None = None,
    days: int = SCENARIO_SAMPLE_DAYS,
) -> Demand:  # fmt: skip
    """A scenario's call model as grid demand: expected calls per hour in each cell.

    The calls of ``days`` days are drawn with the scenario's own generator and seed
    (:func:`dispatch.sim.demand.generate_calls`: rates, hour profiles, locations), then binned into
    the cells of :func:`grid_demand` (labelled by the scenario's zones when it has a zones file, else
    by grid cell). With ``band`` (a speed band name or ``off_peak``), only calls
    whose hour of day falls in that band count, and the weight is per hour of that band.
    """
    from dispatch.sim.demand import areas_for, generate_calls, road_segments

    vehicles = sorted({v for it in scenario.incident_types for v in it.vehicles})
    base = grid_demand(net, cell_m=cell_m, vehicles=vehicles)
    long = scenario.with_overrides(horizon_h=24.0 * days)
    areas = areas_for(long, net.bbox)
    calls = generate_calls(
        long,
        segments=lambda key: road_segments(net, vehicles=key),
        areas=areas,
        replication=0,
    )
    if areas.kind == "zone":  # the scenario's zones (wards) label the points, for per-zone shares
        labels = tuple(str(areas.names[i]) for i in areas.locate(base.lat, base.lon))
        base = Demand(base.lat, base.lon, base.weight, labels, base.ids, base.source, base.grid,
                      base.cells)  # fmt: skip
    hour = (calls.time_s / 3600.0) % 24.0
    if band is None:
        keep = np.ones(len(hour), dtype=bool)
        hours_in = 24.0 * days
    else:
        names = np.array([hour_band_name(net, float(h)) for h in np.arange(24) + 0.5])
        if band not in set(names):
            raise PlanError(f"band={band!r} is not one of {', '.join(sorted(set(names)))}")
        keep = names[np.floor(hour).astype(np.int64) % 24] == band
        hours_in = float((names == band).sum()) * days
    assert base.grid is not None and base.cells is not None
    row, col = base.grid.cell_of(calls.lat[keep], calls.lon[keep])
    index = {(int(r), int(c)): i for i, (r, c) in enumerate(base.cells)}
    counts = np.zeros(len(base))
    outside = 0
    for r, c in zip(row, col, strict=True):
        i = index.get((int(r), int(c)))
        if i is None:  # a call off the grid's roads (a points/zones model): nearest cell
            outside += 1
            continue
        counts[i] += 1
    if outside:
        lat, lon = calls.lat[keep], calls.lon[keep]
        miss = np.array([(int(r), int(c)) not in index for r, c in zip(row, col, strict=True)])
        for la, lo in zip(lat[miss], lon[miss], strict=True):
            d2 = (base.lat - la) ** 2 + ((base.lon - lo) * math.cos(math.radians(la))) ** 2
            counts[int(np.argmin(d2))] += 1
    label = f"scenario {scenario.name} ({days} days sampled, calls per hour"
    label += f", band {band})" if band else ")"
    return base.with_weight(counts / hours_in, label)


def travel_time_matrix(
    net: Network, origins: np.ndarray, demand: Demand, *, vehicle: str, hour: float | None = None,
    origin_names: Sequence[str] | None = None,
) -> np.ndarray:  # fmt: skip
    """Seconds from each origin ``(lat, lon)`` to each demand point by road for a class.

    Demand points farther than the snap tolerance from any road the class can reach get ``inf``
    (counted as uncoverable by the models). An origin that cannot be placed on such a road raises
    :class:`dispatch.errors.PointError` naming it.
    """
    from dispatch.errors import PointError

    origins = np.asarray(origins, dtype=float).reshape(-1, 2)
    out = np.full((len(origins), len(demand)), np.inf)
    if len(origins) == 0:
        return out
    tol = net.settings.snap_tolerance_m
    snap = net.snap(demand.points, vehicle=vehicle, name="demand point", raise_far=False, role="to")
    ok = snap.arc >= 0
    far = net.snap(origins, vehicle=vehicle, name="origin", raise_far=False, role="from").arc < 0
    if far.any():
        i = int(np.argmax(far))
        who = repr(origin_names[i]) if origin_names is not None else f"origin {i}"
        raise PointError(f"{who} ({origins[i, 0]}, {origins[i, 1]}) is farther than "
                         f"{tol:g} m from any road open to {vehicle}")  # fmt: skip
    if ok.any():
        out[:, ok] = net.travel_times(origins, demand.points[ok], vehicle=vehicle, hour=hour)
    return out


def as_float_matrix(cost: Any, *, name: str = "cost") -> np.ndarray:
    """Check a cost matrix: 2-D, numbers, no NaN or negative value (``inf`` = unreachable)."""
    c = np.asarray(cost, dtype=float)
    if c.ndim != 2 or c.shape[0] == 0 or c.shape[1] == 0:
        raise PlanError(f"{name} must be a non-empty 2-D matrix, got shape {c.shape}")
    if np.isnan(c).any() or (c < 0).any():
        bad = np.argwhere(np.isnan(c) | (c < 0))[0]
        raise PlanError(
            f"{name}[{bad[0]}, {bad[1]}]={c[tuple(bad)]!r} must be >= 0 (inf: unreachable)"
        )
    return c


def road_node_candidates(net: Network, n: int, *, vehicle: str = "ambulance"
                         ) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:  # fmt: skip
    """``n`` candidate sites spread over the map: road intersections the class can reach and leave.

    The nodes of the class's largest strongly connected part are binned into square cells (the
    largest cell size giving at least ``n`` non-empty cells); each cell offers the node nearest its
    centre, and ``n`` of them are taken evenly in cell order. They are CANDIDATES (road positions),
    not real stations. Returns ``(lat, lon, ids)`` with ids ``node/OSMID``.
    """
    if not (isinstance(n, int | np.integer) and n >= 1):
        raise PlanError(f"n={n!r} candidate sites must be a whole number >= 1")
    core = np.flatnonzero(net.class_core(vehicle))
    if n > len(core):
        raise PlanError(f"n={n} candidate sites is more than the {len(core)} road nodes open to "
                        f"{vehicle}")  # fmt: skip
    lat, lon = net.node_lat[core], net.node_lon[core]
    lo, hi = 1.0, 20_000.0
    for _ in range(40):  # bisect the cell size
        mid = (lo + hi) / 2
        row, col = _grid_for(net, mid).cell_of(lat, lon)
        if len(np.unique(row * 1_000_000 + col)) >= n:
            lo = mid
        else:
            hi = mid
    grid = _grid_for(net, lo)
    row, col = grid.cell_of(lat, lon)
    kx = math.cos(math.radians(grid.origin_lat))
    c_lat = grid.origin_lat + (row + 0.5) * lo / M_PER_DEG
    c_lon = grid.origin_lon + (col + 0.5) * lo / (M_PER_DEG * kx)
    d2 = (lat - c_lat) ** 2 + ((lon - c_lon) * kx) ** 2
    key = row * 1_000_000 + col
    order = np.lexsort((d2, key))
    first = np.r_[True, key[order][1:] != key[order][:-1]]
    best = order[first]
    pick = best[np.unique(np.linspace(0, len(best) - 1, n).round().astype(np.int64))]
    nodes = core[pick]
    ids = tuple(f"node/{int(o)}" for o in net.node_osmid[nodes])
    return net.node_lat[nodes], net.node_lon[nodes], ids
