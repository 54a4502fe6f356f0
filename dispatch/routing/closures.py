"""Road closures and flooding: close arcs by OSM way, by OSM edge, by arc or by a GeoJSON polygon.

A closure may apply to some vehicle classes only (a flooded street a fire engine can still ford) and
only within a time window ``[start_h, end_h)`` on the query clock (``hour``). Closing roads never
rebuilds the network: the next query copies the class's weight array and sets the closed arcs to
``inf`` (microseconds for a city), and the result is cached until the closures change.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dispatch.errors import ClosureError
from dispatch.roads.profiles import VEHICLE_CLASSES, check_vehicle

if TYPE_CHECKING:
    from dispatch.roads.network import Network


@dataclass(frozen=True)
class Closure:
    """A set of closed arcs, for some classes (``None``: all) and a window (``None``: always)."""

    id: int
    label: str
    arcs: np.ndarray
    vehicles: tuple[str, ...] | None
    start_h: float | None
    end_h: float | None
    geometry: dict[str, Any] | None = None

    def applies(self, vehicle_index: int, hour: float | None) -> bool:
        """Whether the closure is in force for a class at a clock hour (``None``: always)."""
        if self.vehicles is not None and VEHICLE_CLASSES[vehicle_index] not in self.vehicles:
            return False
        if hour is None:
            return True
        if self.start_h is not None and hour < self.start_h:
            return False
        return not (self.end_h is not None and hour >= self.end_h)


def _check_window(vehicles: Iterable[str] | None, start_h: float | None, end_h: float | None
                  ) -> tuple[str, ...] | None:  # fmt: skip
    problems = []
    vs: tuple[str, ...] | None = None
    if vehicles is not None:
        if isinstance(vehicles, str):
            vehicles = [vehicles]
        vs = tuple(vehicles)
        for vname in vs:
            check_vehicle(vname)
    for name, v in (("start_h", start_h), ("end_h", end_h)):
        if v is not None and not (isinstance(v, int | float) and math.isfinite(v)):
            problems.append(f"{name}={v!r} must be a number of hours")
    if not problems and start_h is not None and end_h is not None and end_h <= start_h:
        problems.append(f"end_h={end_h!r} must be after start_h={start_h!r}")
    if problems:
        raise ClosureError("; ".join(problems))
    return vs


def _add(net: Network, arcs: np.ndarray, vehicles: Iterable[str] | None, start_h: float | None,
         end_h: float | None, label: str, geometry: dict[str, Any] | None = None) -> int:  # fmt: skip
    vs = _check_window(vehicles, start_h, end_h)
    cid = net._next_closure
    net._next_closure += 1
    arcs = np.unique(np.asarray(arcs, dtype=np.int64))
    net._closures[cid] = Closure(cid, label, arcs, vs, start_h, end_h, geometry)
    return cid


def close_arcs(net: Network, arcs: Iterable[int], *, vehicles: Iterable[str] | None = None,
               start_h: float | None = None, end_h: float | None = None, label: str = "") -> int:  # fmt: skip
    """Close arcs by dense index; return the closure id."""
    a = np.asarray(list(arcs), dtype=np.int64)
    if len(a) and (a.min() < 0 or a.max() >= net.n_arcs):
        raise ClosureError(
            f"arc index out of range 0..{net.n_arcs - 1}: {a[(a < 0) | (a >= net.n_arcs)][:3].tolist()}"
        )
    return _add(net, a, vehicles, start_h, end_h, label or f"{len(a)} arcs")


def close_ways(net: Network, way_ids: Iterable[int], *, vehicles: Iterable[str] | None = None,
               start_h: float | None = None, end_h: float | None = None, label: str = "") -> int:  # fmt: skip
    """Close every arc of the given OSM ways (both directions); return the closure id."""
    ids = np.asarray(list(way_ids), dtype=np.int64)
    arcs = np.flatnonzero(np.isin(net.arc_way, ids))
    missing = np.setdiff1d(ids, net.arc_way)
    if len(missing) == len(ids) and len(ids):
        raise ClosureError(f"no road of the network belongs to OSM way(s) {missing[:5].tolist()}")
    return _add(net, arcs, vehicles, start_h, end_h, label or f"ways {ids[:5].tolist()}")


def close_edges(net: Network, edges: Iterable[tuple[int, int]], *, vehicles: Iterable[str] | None = None,
                start_h: float | None = None, end_h: float | None = None, label: str = "") -> int:  # fmt: skip
    """Close OSM edges given as (u, v) OSM node id pairs, in that direction (any arc containing them)."""
    geom_arc = np.repeat(np.arange(net.n_arcs), np.diff(net.geom_ptr))
    nxt = np.concatenate([net.geom_node[1:], [-1]])
    same = np.concatenate([geom_arc[1:] == geom_arc[:-1], [False]])
    found = []
    for u, v in edges:
        hit = np.flatnonzero(same & (net.geom_node == u) & (nxt == v))
        if len(hit) == 0:
            raise ClosureError(f"no road of the network runs from OSM node {u} to {v}")
        found.extend(geom_arc[hit].tolist())
    return _add(net, np.array(found), vehicles, start_h, end_h, label or "edges")


def arcs_in_polygon(net: Network, geometry: Mapping[str, Any]) -> np.ndarray:
    """Arcs whose geometry intersects a GeoJSON Polygon/MultiPolygon (lon/lat)."""
    import shapely
    from shapely.geometry import shape

    try:
        poly = shape(geometry)
    except Exception as exc:
        raise ClosureError(f"closure geometry is not valid GeoJSON: {exc}") from None
    if poly.geom_type not in ("Polygon", "MultiPolygon") or poly.is_empty:
        raise ClosureError(
            f"closure geometry must be a Polygon or MultiPolygon, got {poly.geom_type}"
        )
    lines = net._state.get("arc_lines")
    if lines is None:
        coords = np.stack([net.geom_lon, net.geom_lat], axis=1)
        idx = np.repeat(np.arange(net.n_arcs), np.diff(net.geom_ptr))
        lines = net._state["arc_lines"] = shapely.linestrings(coords, indices=idx)
    return np.flatnonzero(shapely.intersects(lines, poly))


def close_polygon(net: Network, geometry: Mapping[str, Any], *, vehicles: Iterable[str] | None = None,
                  start_h: float | None = None, end_h: float | None = None, label: str = "") -> int:  # fmt: skip
    """Close every arc that crosses a polygon (a flooded area); return the closure id."""
    arcs = arcs_in_polygon(net, geometry)
    return _add(net, arcs, vehicles, start_h, end_h, label or "polygon", dict(geometry))


def close_geojson(net: Network, source: str | os.PathLike[str] | Mapping[str, Any], *,
                  vehicles: Iterable[str] | None = None, start_h: float | None = None,
                  end_h: float | None = None) -> list[int]:  # fmt: skip
    """Apply a GeoJSON file or dict of closures; return the closure ids.

    Polygon features close the roads they cross; LineString/Point features are not closures and are
    refused. A feature's ``properties`` may give ``vehicles`` (list), ``start_h``, ``end_h``, ``label``
    and ``osm_way_ids`` (close these ways instead of a polygon); the keyword arguments are defaults.
    """
    if isinstance(source, Mapping):
        data: Any = source
        where = "closures"
    else:
        where = os.fspath(source)
        try:
            data = json.loads(Path(where).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ClosureError(f"closures file {where!r} does not exist") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ClosureError(f"closures file {where!r} is not valid GeoJSON: {exc}") from None
    if not isinstance(data, Mapping):
        raise ClosureError(f"{where}: expected a GeoJSON object, got {type(data).__name__}")
    features = data.get("features") if data.get("type") == "FeatureCollection" else [data]
    if not isinstance(features, list):
        raise ClosureError(f"{where}: 'features' must be a list")
    ids = []
    for i, f in enumerate(features):
        if not isinstance(f, Mapping):
            raise ClosureError(f"{where}: feature {i} is not an object")
        geom = f.get("geometry") if f.get("type") == "Feature" else f
        props = f.get("properties") or {}
        kw: dict[str, Any] = {
            "vehicles": props.get("vehicles", vehicles),
            "start_h": props.get("start_h", start_h),
            "end_h": props.get("end_h", end_h),
            "label": str(props.get("label", props.get("name", f"{where} feature {i}"))),
        }
        try:
            if "osm_way_ids" in props:
                ids.append(close_ways(net, props["osm_way_ids"], **kw))
            elif isinstance(geom, Mapping) and geom.get("type") in ("Polygon", "MultiPolygon"):
                ids.append(close_polygon(net, geom, **kw))
            else:
                gtype = geom.get("type") if isinstance(geom, Mapping) else None
                raise ClosureError(f"geometry type {gtype!r} is not a closure (use a Polygon)")
        except ClosureError as exc:
            raise ClosureError(f"{where}: feature {i}: {exc}") from None
    return ids


def reopen(net: Network, closure_id: int) -> None:
    """Remove one closure."""
    if closure_id not in net._closures:
        raise ClosureError(f"no closure with id {closure_id!r}")
    del net._closures[closure_id]


def reopen_all(net: Network) -> None:
    """Remove every closure."""
    net._closures.clear()


def active_closed_arcs(net: Network, vehicle_index: int, hour: float | None
                       ) -> tuple[tuple[int, ...], np.ndarray]:  # fmt: skip
    """Ids of the closures in force for a class at an hour, and the union of their arcs."""
    if not net._closures:
        return (), np.empty(0, dtype=np.int64)
    active = [c for c in net._closures.values() if c.applies(vehicle_index, hour)]
    if not active:
        return (), np.empty(0, dtype=np.int64)
    ids = tuple(c.id for c in active)
    cache = net._state.setdefault("closure_union", {})
    arcs = cache.get(ids)
    if arcs is None:
        arcs = np.unique(np.concatenate([c.arcs for c in active]))
        if len(cache) > 64:
            cache.clear()
        cache[ids] = arcs
    return ids, arcs
