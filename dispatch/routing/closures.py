"""Road closures and flooding as values: :class:`Closure` and the immutable :class:`ClosureSet`.

A closure is a set of closed arcs, for some vehicle classes only (a flooded street a fire engine can
still ford) and only within a time window ``[start_h, end_h)`` on the query clock (``hour``). A
:class:`ClosureSet` is an immutable tuple of closures: with a vehicle class and an hour it names the
closures in force (:meth:`ClosureSet.active`) and their closed arcs (:meth:`ClosureSet.closed_arcs`);
the routing engine turns that into a weight array (a copy of the class's weights with those arcs at
``inf``, cached). Adding or removing a closure makes a new set: a what-if never changes the set
another caller is using.

The builders (:func:`arcs_of_ways`, :func:`arcs_of_edges`, :func:`arcs_in_polygon`,
:func:`read_closure_features`) validate their input and raise :class:`ClosureError` naming the
argument; a closure that closes no road is allowed but says so (:attr:`Closure.closes_nothing`).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dispatch.errors import ClosureError, VehicleError
from dispatch.roads.graph import RoadGraph
from dispatch.roads.profiles import VEHICLE_CLASSES, check_vehicle

#: Degrees of margin around the map's bounding box within which a closure polygon counts as on it.
MAP_MARGIN_DEG = 0.05
_INTEGERS = (int, np.integer)
#: A closure polygon smaller than this (square metres) is refused as having zero area.
MIN_AREA_M2 = 1.0


@dataclass(frozen=True, eq=False)
class Closure:
    """A set of closed arcs, for some classes (``None``: all) and a window (``None``: always).

    ``arcs`` is a sorted read-only array of dense arc indices; an empty one means the closure
    closes no road (:attr:`closes_nothing`), which callers should report.
    """

    id: int
    label: str
    arcs: np.ndarray
    vehicles: tuple[str, ...] | None
    start_h: float | None
    end_h: float | None
    geometry: dict[str, Any] | None = None

    @property
    def closes_nothing(self) -> bool:
        """True when the closure closes no road of the network (e.g. a polygon beside every road)."""
        return len(self.arcs) == 0

    def applies(self, vehicle_index: int, hour: float | None) -> bool:
        """Whether the closure is in force for a class at a clock hour (``None``: always)."""
        if self.vehicles is not None and VEHICLE_CLASSES[vehicle_index] not in self.vehicles:
            return False
        if hour is None:
            return True
        if self.start_h is not None and hour < self.start_h:
            return False
        return not (self.end_h is not None and hour >= self.end_h)


@dataclass(frozen=True)
class ClosureSet:
    """An immutable set of closures (in the order they were added; ids unique).

    Examples
    --------
    >>> import numpy as np
    >>> a = Closure(1, "bridge", np.array([3, 4]), None, None, None)
    >>> b = Closure(2, "flood", np.array([4, 7]), ("ambulance",), 14.0, 20.0)
    >>> cs = ClosureSet().with_closures(a, b)
    >>> cs.ids, cs.active(0, 15.0), cs.active(0, 21.0), cs.active(1, 15.0)
    ((1, 2), (1, 2), (1,), (1,))
    >>> cs.closed_arcs((1, 2)).tolist(), cs.without(1).ids, ClosureSet().ids
    ([3, 4, 7], (2,), ())
    """

    closures: tuple[Closure, ...] = ()
    _by_id: Mapping[int, Closure] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_id = {c.id: c for c in self.closures}
        if len(by_id) != len(self.closures):
            raise ClosureError("closure ids must be unique within a closure set")
        object.__setattr__(self, "_by_id", by_id)

    def __len__(self) -> int:
        return len(self.closures)

    def __iter__(self) -> Iterator[Closure]:
        return iter(self.closures)

    def __bool__(self) -> bool:
        return bool(self.closures)

    def __contains__(self, closure_id: object) -> bool:
        return closure_id in self._by_id

    @property
    def ids(self) -> tuple[int, ...]:
        """Closure ids in order."""
        return tuple(c.id for c in self.closures)

    def get(self, closure_id: int) -> Closure:
        """The closure with an id (:class:`ClosureError` if there is none)."""
        c = self._by_id.get(closure_id)
        if c is None:
            raise ClosureError(f"no closure with id {closure_id!r}")
        return c

    def with_closures(self, *closures: Closure) -> ClosureSet:
        """A new set with these closures added."""
        return ClosureSet(self.closures + tuple(closures))

    def without(self, closure_id: int) -> ClosureSet:
        """A new set without one closure (:class:`ClosureError` if there is none with that id)."""
        if closure_id not in self._by_id:
            raise ClosureError(f"no closure with id {closure_id!r}")
        return ClosureSet(tuple(c for c in self.closures if c.id != closure_id))

    def active(self, vehicle_index: int, hour: float | None) -> tuple[int, ...]:
        """Ids of the closures in force for a class at a clock hour."""
        return tuple(c.id for c in self.closures if c.applies(vehicle_index, hour))

    def closed_arcs(self, ids: Iterable[int]) -> np.ndarray:
        """The union of the arcs of some closures of the set (sorted, unique)."""
        parts = [self._by_id[i].arcs for i in ids]
        if not parts:
            return np.empty(0, dtype=np.int64)
        if len(parts) == 1:  # a closure's arcs are sorted and unique already
            return parts[0]
        return np.unique(np.concatenate(parts))


#: The empty closure set.
NO_CLOSURES = ClosureSet()


# --- validation ---------------------------------------------------------------------------------


def check_window(vehicles: Iterable[str] | str | None, start_h: object, end_h: object
                 ) -> tuple[tuple[str, ...] | None, float | None, float | None]:  # fmt: skip
    """Validate a closure's classes and window; return them normalised (a tuple, floats)."""
    problems = []
    vs: tuple[str, ...] | None = None
    if vehicles is not None:
        if isinstance(vehicles, str):
            vehicles = [vehicles]
        if not isinstance(vehicles, Iterable):
            raise ClosureError(f"vehicles={vehicles!r} must be a list of vehicle classes")
        vs = tuple(vehicles)
        if not vs:
            raise ClosureError(
                "vehicles=[] closes the road to no class; give None (every class) or class names"
            )
        for vname in vs:
            if not isinstance(vname, str):
                raise ClosureError(f"vehicles: {vname!r} is not a vehicle class name")
            try:
                check_vehicle(vname)
            except VehicleError as exc:
                raise ClosureError(f"vehicles: {exc}") from None
    out: list[float | None] = []
    for name, v in (("start_h", start_h), ("end_h", end_h)):
        if v is None:
            out.append(None)
        elif isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            problems.append(f"{name}={v!r} must be a number of hours")
            out.append(None)
        else:
            out.append(float(v))
    s, e = out
    if not problems and s is not None and e is not None and e <= s:
        problems.append(f"end_h={end_h!r} must be after start_h={start_h!r}")
    if problems:
        raise ClosureError("; ".join(problems))
    return vs, s, e


def make_closure(cid: int, arcs: np.ndarray, *, vehicles: Iterable[str] | str | None = None,
                 start_h: float | None = None, end_h: float | None = None, label: str = "",
                 geometry: Mapping[str, Any] | None = None) -> Closure:  # fmt: skip
    """A validated :class:`Closure` (arcs sorted, unique, read-only)."""
    vs, s, e = check_window(vehicles, start_h, end_h)
    if not isinstance(label, str):
        raise ClosureError(f"label={label!r} must be a string")
    a = np.unique(np.asarray(arcs, dtype=np.int64))
    a.flags.writeable = False
    return Closure(cid, label, a, vs, s, e, dict(geometry) if geometry is not None else None)


def _int_list(values: object, name: str) -> list[int]:
    """A list of integers (numpy integers accepted; bools, floats and strings refused)."""
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        raise ClosureError(f"{name}={values!r} must be a list of integers")
    out = list(values)
    for i, v in enumerate(out):
        if type(v) is not int:  # the common case costs one comparison
            if isinstance(v, bool) or not isinstance(v, _INTEGERS):
                raise ClosureError(f"{name}: {v!r} is not an integer")
            out[i] = int(v)
    return out


def _int_array(values: object, name: str) -> np.ndarray:
    """:func:`_int_list` as an int64 array; an integer numpy array is taken as it is (fast)."""
    if isinstance(values, np.ndarray) and values.ndim == 1 and values.dtype.kind in "iu":
        return values.astype(np.int64, copy=False)
    return np.array(_int_list(values, name), dtype=np.int64)


def check_arcs(graph: RoadGraph, arcs: object) -> np.ndarray:
    """Dense arc indices, checked to be in range."""
    a = _int_array(arcs, "arcs")
    if len(a) and (a.min() < 0 or a.max() >= graph.n_arcs):
        bad = (a < 0) | (a >= graph.n_arcs)
        raise ClosureError(f"arc index out of range 0..{graph.n_arcs - 1}: {a[bad][:3].tolist()}")
    return a


def arcs_of_ways(graph: RoadGraph, way_ids: object) -> np.ndarray:
    """Every arc of the given OSM ways (both directions); an error if none is on the network."""
    ids = _int_array(way_ids, "way_ids")
    if len(ids) == 0:
        raise ClosureError("way_ids is empty: give at least one OSM way id")
    arcs = np.flatnonzero(np.isin(graph.arc_way, ids))
    if len(arcs) == 0:
        raise ClosureError(f"no road of the network belongs to OSM way(s) {ids[:5].tolist()}")
    return arcs


def arcs_of_edges(graph: RoadGraph, edges: object) -> np.ndarray:
    """Arcs containing the OSM edges ``(u, v)`` (OSM node ids, in that direction)."""
    if isinstance(edges, str | bytes) or not isinstance(edges, Iterable):
        raise ClosureError(f"edges={edges!r} must be a list of (u, v) OSM node id pairs")
    pairs = []
    for e in edges:
        if isinstance(e, str | bytes) or not isinstance(e, Iterable):
            raise ClosureError(f"edges: {e!r} is not a (u, v) pair of OSM node ids")
        p = _int_list(e, "edges")
        if len(p) != 2:
            raise ClosureError(f"edges: {e!r} is not a (u, v) pair of OSM node ids")
        pairs.append((p[0], p[1]))
    geom_arc = np.repeat(np.arange(graph.n_arcs), np.diff(graph.geom_ptr))
    nxt = np.concatenate([graph.geom_node[1:], [-1]])
    same = np.concatenate([geom_arc[1:] == geom_arc[:-1], [False]])
    found: list[int] = []
    for u, v in pairs:
        hit = np.flatnonzero(same & (graph.geom_node == u) & (nxt == v))
        if len(hit) == 0:
            raise ClosureError(f"no road of the network runs from OSM node {u} to {v}")
        found.extend(geom_arc[hit].tolist())
    return np.array(found, dtype=np.int64)


def arc_lines(graph: RoadGraph) -> Any:
    """Shapely line strings of every arc (lon/lat), for polygon tests."""
    import shapely

    coords = np.stack([graph.geom_lon, graph.geom_lat], axis=1)
    idx = np.repeat(np.arange(graph.n_arcs), np.diff(graph.geom_ptr))
    return shapely.linestrings(coords, indices=idx)


def check_polygon(geometry: object, bbox: tuple[float, float, float, float]) -> Any:
    """A shapely (Multi)Polygon from GeoJSON (lon/lat), refused when empty, of zero area, swapped
    (latitude and longitude exchanged) or off the map (``bbox``: min_lat, min_lon, max_lat, max_lon)."""
    from shapely.geometry import shape

    if not isinstance(geometry, Mapping):
        raise ClosureError(
            f"closure geometry must be a GeoJSON object, got {type(geometry).__name__}"
        )
    try:
        poly = shape(geometry)
    except Exception as exc:
        raise ClosureError(f"closure geometry is not valid GeoJSON: {exc}") from None
    if poly.geom_type not in ("Polygon", "MultiPolygon"):
        raise ClosureError(
            f"closure geometry must be a Polygon or MultiPolygon, got {poly.geom_type}"
        )
    if poly.is_empty:
        raise ClosureError("closure polygon is empty")
    lon0, lat0, lon1, lat1 = poly.bounds
    if not all(math.isfinite(x) for x in (lon0, lat0, lon1, lat1)):
        raise ClosureError("closure polygon has a non-finite coordinate")
    min_lat, min_lon, max_lat, max_lon = bbox
    m = MAP_MARGIN_DEG

    def overlaps(la0: float, lo0: float, la1: float, lo1: float) -> bool:
        return (la1 >= min_lat - m and la0 <= max_lat + m and lo1 >= min_lon - m
                and lo0 <= max_lon + m)  # fmt: skip

    if not overlaps(lat0, lon0, lat1, lon1):
        where = f"lon {lon0:g}..{lon1:g}, lat {lat0:g}..{lat1:g}"
        if overlaps(lon0, lat0, lon1, lat1):
            raise ClosureError(
                f"closure polygon ({where}) is off the map but lies on it with latitude and "
                "longitude exchanged: GeoJSON coordinates are [lon, lat]"
            )
        raise ClosureError(
            f"closure polygon ({where}) is off the map (lat {min_lat:g}..{max_lat:g}, "
            f"lon {min_lon:g}..{max_lon:g})"
        )
    # area in square metres (degrees scaled at the polygon's latitude); collinear points in floats
    # leave a sliver of about 1e-18 square degrees
    m_per_deg = 111_195.0
    area_m2 = poly.area * m_per_deg**2 * abs(math.cos(math.radians((lat0 + lat1) / 2)))
    if not area_m2 >= MIN_AREA_M2:
        raise ClosureError(
            f"closure polygon has zero area ({area_m2:.3g} m2: one point, or all points on a "
            "line): give a ring of at least three points that are not collinear"
        )
    return poly


def arcs_in_polygon(lines: Any, poly: Any) -> np.ndarray:
    """Arcs whose line (from :func:`arc_lines`) intersects a checked polygon."""
    import shapely

    return np.flatnonzero(shapely.intersects(lines, poly))


# --- GeoJSON ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClosureFeature:
    """One closure read from GeoJSON, not yet resolved to arcs: a polygon or a list of OSM ways."""

    label: str
    vehicles: Iterable[str] | str | None
    start_h: float | None
    end_h: float | None
    geometry: Mapping[str, Any] | None = None
    way_ids: tuple[int, ...] | None = None


def read_closure_features(
    source: str | os.PathLike[str] | Mapping[str, Any], *,
    vehicles: Iterable[str] | None = None, start_h: float | None = None, end_h: float | None = None,
) -> tuple[str, list[ClosureFeature]]:  # fmt: skip
    """Read a GeoJSON file or dict of closures: ``(where, features)``, all validated before any is used.

    Polygon features close the roads they cross; LineString/Point features are not closures and are
    refused. A feature's ``properties`` (an object or null) may give ``vehicles`` (list),
    ``start_h``, ``end_h``, ``label`` and ``osm_way_ids`` (close these ways instead of a polygon);
    the keyword arguments are defaults.
    """
    if isinstance(source, Mapping):
        data: object = source
        where = "closures"
    elif isinstance(source, str | os.PathLike):
        where = os.fspath(source)
        try:
            data = json.loads(Path(where).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ClosureError(f"closures file {where!r} does not exist") from None
        except RecursionError:
            raise ClosureError(f"closures file {where!r} is nested too deeply") from None
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ClosureError(f"closures file {where!r} is not valid GeoJSON: {exc}") from None
        except (OSError, ValueError) as exc:  # a folder, no permission, a NUL in the name...
            raise ClosureError(f"closures file {where!r} cannot be read: {exc}") from None
    else:
        raise ClosureError(
            f"source={source!r} must be a GeoJSON file path or a GeoJSON object (dict)"
        )
    if not isinstance(data, Mapping):
        raise ClosureError(f"{where}: expected a GeoJSON object, got {type(data).__name__}")
    features = data.get("features") if data.get("type") == "FeatureCollection" else [data]
    if not isinstance(features, list):
        raise ClosureError(f"{where}: 'features' must be a list")
    out = []
    for i, f in enumerate(features):
        if not isinstance(f, Mapping):
            raise ClosureError(f"{where}: feature {i} is not an object")
        geom = f.get("geometry") if f.get("type") == "Feature" else f
        props = f.get("properties") if f.get("type") == "Feature" else None
        if props is None:
            props = {}
        if not isinstance(props, Mapping):
            raise ClosureError(
                f"{where}: feature {i}: properties must be an object, got {type(props).__name__}"
            )
        label = props.get("label", props.get("name", f"{where} feature {i}"))
        try:
            vs = props.get("vehicles", vehicles)
            if vs is not None and not isinstance(vs, list | tuple | str):
                raise ClosureError(f"vehicles={vs!r} must be a list of vehicle classes")
            window = check_window(vs, props.get("start_h", start_h), props.get("end_h", end_h))
            if "osm_way_ids" in props:
                ways = tuple(_int_list(props["osm_way_ids"], "osm_way_ids"))
                out.append(ClosureFeature(str(label), window[0], window[1], window[2],
                                          way_ids=ways))  # fmt: skip
            elif isinstance(geom, Mapping) and geom.get("type") in ("Polygon", "MultiPolygon"):
                out.append(ClosureFeature(str(label), window[0], window[1], window[2],
                                          geometry=geom))  # fmt: skip
            else:
                gtype = geom.get("type") if isinstance(geom, Mapping) else None
                raise ClosureError(f"geometry type {gtype!r} is not a closure (use a Polygon)")
        except ClosureError as exc:
            raise ClosureError(f"{where}: feature {i}: {exc}") from None
    return where, out
