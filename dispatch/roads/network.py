"""The compiled road network: immutable CSR arrays (compiled by :mod:`dispatch.roads.compile`), cached on disk.

The compile pipeline (one arc per OSM segment and direction, road rules: access, barriers, turn
restrictions by junction expansion, dimensions; largest strongly connected part; chains merged only
along one OSM way; deterministic numbering) is described in :mod:`dispatch.roads.compile`.

The arrays are saved with :func:`numpy.savez` next to the map (``maps/.cache/``), keyed by the map file's
SHA-256 and :meth:`NetworkSettings.key`, with a checksum that detects a corrupt file. Loading the cache
imports neither osmnx nor pyosmium. A cache file that cannot be read (another user's, a folder) is
reported and left alone: the network is then compiled in memory.

The CCH's metric-independent part (nested-dissection order and upward graph,
:class:`~dispatch.routing.cch.Hierarchy`) is cached beside it by :class:`HierarchyFile` once built:
keyed by the compiled graph's digest and the order's settings
(:func:`dispatch.routing.cch.hierarchy_settings`), checksummed, written atomically, rebuilt when
stale or corrupt, so a new process answers its first matrix without ordering the graph again.

The :class:`Network` is a view: a frozen :class:`~dispatch.roads.graph.RoadGraph`, a routing
:class:`~dispatch.routing.engine.Engine` (caches, per-thread scratch space; shared by every view of the
same graph) and a :class:`~dispatch.routing.closures.ClosureSet` value. ``net.with_closures(cs)`` is
another view with other closures; ``net.close_*``/``reopen`` swap the view's closure set atomically
(copy on write), so a query running in another thread sees the old set or the new one, never half.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from dispatch.errors import CacheError, ClosureError, MapError, PointError
from dispatch.io.atomic import atomic_open
from dispatch.roads.compile import ARRAY_NAMES, FORMAT_VERSION, build_arrays, digest
from dispatch.roads.graph import RoadGraph
from dispatch.roads.osm import Facility, file_sha256, read_osm, resolve_map
from dispatch.roads.profiles import (
    ROAD_CATEGORIES,
    VEHICLE_CLASSES,
    NetworkSettings,
    check_vehicle,
    network_settings,
)
from dispatch.roads.snapping import (
    Snapped,
    as_points,
    check_points,
    check_tolerance,
    position,
    snap_arrays,
)
from dispatch.roads.walk import WALK_ARRAY_NAMES, WalkGraph, walk_arrays, walk_digest
from dispatch.routing import cch as _cch
from dispatch.routing import closures as _cl
from dispatch.routing import queries as _q
from dispatch.routing.closures import Closure, ClosureSet
from dispatch.routing.engine import Engine, EnginePolicy, check_hour
from dispatch.routing.queries import Fleet, Route, UnitETA
from dispatch.routing.reach import ClassReach, ReachModel

log = logging.getLogger(__name__)

# --- cache --------------------------------------------------------------------------------------


def cache_path(map_path: Path, settings: NetworkSettings, cache_dir: Path | None = None) -> Path:
    """Where the compiled network of a map with given settings is cached."""
    # an empty DISPATCH_CACHE_DIR counts as unset (not as the current folder)
    folder = cache_dir or Path(os.environ.get("DISPATCH_CACHE_DIR") or map_path.parent / ".cache")
    return Path(folder) / f"{map_path.name}.v{FORMAT_VERSION}.{settings.key()}.npz"


def _save(path: Path, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> None:
    with atomic_open(path, "wb") as f:
        np.savez(f, meta=np.array(json.dumps(meta, sort_keys=True)), **arrays)  # type: ignore[arg-type]


class CacheUnreadable(CacheError):
    """A cache file this process may not read (another user's, a folder...): left as it is."""


def _read_npz(
    path: Path, names: tuple[str, ...], optional: tuple[str, ...] = ()
) -> tuple[dict[str, Any], dict[str, np.ndarray], list[str]]:
    """``(meta, arrays, missing optional names)`` of a cache file: the network's or a hierarchy's.

    Raises :class:`CacheUnreadable` when this process may not read the file (left as it is) and
    :class:`CacheError` when it is corrupt (zip, npz or JSON errors of every kind).
    """
    if not path.is_file():
        raise CacheUnreadable(f"cache file {str(path)!r} is not readable: not a regular file")
    try:
        with open(path, "rb") as f:
            f.read(1)
    except OSError as exc:
        raise CacheUnreadable(f"cache file {str(path)!r} is not readable: {exc.strerror}") from None
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            arrays = {name: z[name] for name in names}
            missing = [n for n in optional if n not in z.files]
            arrays.update({name: z[name] for name in optional if name in z.files})
    except Exception as exc:  # zip/npz/json errors of every kind mean a corrupt file
        raise CacheError(f"cache file {str(path)!r} is corrupt: {exc}") from None
    return meta, arrays, missing


def _load(path: Path, map_sha: str) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    meta, arrays, missing_walk = _read_npz(path, ARRAY_NAMES, WALK_ARRAY_NAMES)
    if meta.get("map_sha256") != map_sha or meta.get("format") != FORMAT_VERSION:
        raise CacheError(f"cache file {str(path)!r} belongs to another map or format")
    if digest(arrays) != meta.get("digest"):
        raise CacheError(f"cache file {str(path)!r} is corrupt: checksum mismatch")
    if missing_walk or walk_digest(arrays) != meta.get("walk_digest"):
        raise CacheError(f"cache file {str(path)!r} is corrupt: walk network missing or changed")
    return arrays, meta


def hierarchy_cache_path(network_cache: Path) -> Path:
    """Where the CCH hierarchy of a cached network is kept: beside it, named by the hierarchy's
    settings (:func:`dispatch.routing.cch.hierarchy_settings`)."""
    key = hashlib.sha256(json.dumps(_cch.hierarchy_settings(), sort_keys=True).encode())
    stem = network_cache.name.removesuffix(".npz")
    return network_cache.with_name(f"{stem}.cch{_cch.HIERARCHY_VERSION}-{key.hexdigest()[:12]}.npz")


def _arrays_digest(arrays: Mapping[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(name.encode())
        h.update(str(a.dtype).encode())
        h.update(str(a.shape).encode())
        h.update(a.data)
    return h.hexdigest()


class HierarchyFile:
    """The disk cache of one network's CCH hierarchy (a :class:`~dispatch.routing.engine.HierarchyStore`).

    The file (:func:`hierarchy_cache_path`, an uncompressed ``.npz``: the order and the upward
    graph as int32, about ``4 (n + e)`` bytes for ``n`` nodes and ``e`` upward edges) records the
    graph's digest, the hierarchy settings and a SHA-256 of its arrays; one that does not match is
    rebuilt (and replaced if it is this user's), one that cannot be read is left alone.
    """

    def __init__(self, network_cache: Path, graph_digest: str, tail: np.ndarray,
                 head: np.ndarray) -> None:  # fmt: skip
        self.network_cache = network_cache
        self.graph_digest = graph_digest
        self._tail = tail
        self._head = head
        self._writable = True

    @property
    def path(self) -> Path:
        """The file (its name follows the current hierarchy settings)."""
        return hierarchy_cache_path(self.network_cache)

    def exists(self) -> bool:
        """Whether the file is there (current or not)."""
        path = self.path
        return path.exists() or path.is_symlink()

    def load(self) -> _cch.Hierarchy | None:
        """The stored hierarchy, or ``None`` (missing, stale, corrupt, unreadable: reported)."""
        path = self.path
        if not (path.exists() or path.is_symlink()):
            return None
        try:
            return self._read(path)
        except CacheUnreadable as exc:
            log.warning("%s; building the hierarchy in memory (the file is left as it is)", exc)
            self._writable = False
        except CacheError as exc:
            if _ours(path):
                log.warning("%s; rebuilding", exc)
            else:
                log.warning("%s; building the hierarchy in memory (the file belongs to another "
                            "user)", exc)  # fmt: skip
                self._writable = False
        return None

    def _read(self, path: Path) -> _cch.Hierarchy:
        meta, arrays, _ = _read_npz(path, ("order", "up_ptr", "up_head"))
        if meta.get("graph_digest") != self.graph_digest:
            raise CacheError(f"cache file {str(path)!r} belongs to another graph (stale)")
        if meta.get("hierarchy") != _cch.hierarchy_settings():
            raise CacheError(f"cache file {str(path)!r} was built with other settings")
        if meta.get("checksum") != _arrays_digest(arrays):
            raise CacheError(f"cache file {str(path)!r} is corrupt: checksum mismatch")
        try:
            return _cch.hierarchy_from_arrays(self._tail, self._head, **arrays)
        except ValueError as exc:
            raise CacheError(f"cache file {str(path)!r} is corrupt: {exc}") from None

    def save(self, h: _cch.Hierarchy) -> None:
        """Write the file atomically (skipped, with a warning, when the folder is read-only)."""
        path = self.path
        if not self._writable or ((path.exists() or path.is_symlink()) and not _ours(path)):
            return
        arrays = _cch.hierarchy_arrays(h)
        meta = {"graph_digest": self.graph_digest, "hierarchy": _cch.hierarchy_settings(),
                "checksum": _arrays_digest(arrays)}  # fmt: skip
        try:
            _save(path, arrays, meta)
        except OSError as exc:  # a read-only folder: work without this cache
            log.warning("cannot write cache %s: %s", path, exc)
            self._writable = False


def load_network(
    map_name: str | os.PathLike[str] = "danang",
    *,
    settings: NetworkSettings | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    rebuild: bool = False,
    policy: EnginePolicy | None = None,
) -> Network:
    """Load a map as a compiled :class:`Network`, from the cache when it is current.

    Parameters
    ----------
    map_name
        A short name (``danang``, ``hcmc``, ``monaco``, ``liechtenstein``, ``campo_grande``) or a path
        to an ``.osm``, ``.osm.bz2`` or ``.osm.pbf`` file.
    settings
        Vehicle profiles, default speeds, speed bands, snap tolerance (:func:`network_settings`).
    cache_dir
        Folder of the compiled cache (default: ``.cache/`` beside the map, or ``$DISPATCH_CACHE_DIR``).
    rebuild
        Compile again even when the cache is current.
    policy
        Which routing engine answers which query, and the cache bounds (default
        :class:`~dispatch.routing.engine.EnginePolicy`).

    Examples
    --------
    >>> net = load_network("danang")
    >>> net.n_nodes > 500 and net.n_arcs > net.n_nodes
    True
    """
    if isinstance(map_name, bool) or not isinstance(map_name, str | os.PathLike):
        raise MapError(f"map_name={map_name!r} must be a short map name or a path to an OSM file")
    if settings is not None and not isinstance(settings, NetworkSettings):
        raise MapError(f"settings={settings!r} must come from dispatch.network_settings()")
    if cache_dir is not None and not isinstance(cache_dir, str | os.PathLike):
        raise MapError(f"cache_dir={cache_dir!r} must be a folder path")
    if policy is not None and not isinstance(policy, EnginePolicy):
        raise MapError(f"policy={policy!r} must be a dispatch.EnginePolicy")
    settings = settings or network_settings()
    path = resolve_map(map_name)
    sha = file_sha256(path)
    cpath = cache_path(path, settings, Path(cache_dir) if cache_dir else None)
    save = True
    if (cpath.exists() or cpath.is_symlink()) and not rebuild:
        try:
            arrays, meta = _load(cpath, sha)
            return Network(arrays, meta, settings, policy=policy, cache_file=cpath)
        except CacheUnreadable as exc:
            log.warning("%s; compiling in memory (the file is left as it is)", exc)
            save = False
        except CacheError as exc:
            if not _ours(cpath):
                log.warning("%s; compiling in memory (the file belongs to another user)", exc)
                save = False
            else:
                log.warning("%s; rebuilding", exc)
    elif rebuild and cpath.exists() and not _ours(cpath):
        save = False
    raw = read_osm(
        path, walk=True
    )  # one pass: the roads and the walk network (dispatch.roads.walk)
    arrays, meta = build_arrays(path, settings, sha=sha, raw=raw)
    assert raw.walk is not None
    walk = walk_arrays(raw.walk)  # stored alongside
    arrays = {**arrays, **walk}
    meta["walk_digest"] = walk_digest(walk)
    if save:
        try:
            _save(cpath, arrays, meta)
        except OSError as exc:  # a read-only folder: work without a cache
            log.warning("cannot write cache %s: %s", cpath, exc)
            save = False
    return Network(arrays, meta, settings, policy=policy, cache_file=cpath if save else None)


def _ours(path: Path) -> bool:
    """Whether a cache file is a regular file of this user (one we may replace)."""
    try:
        st = path.lstat()
    except OSError:
        return True  # gone meanwhile: nothing to protect
    getuid = getattr(os, "getuid", None)
    return path.is_file() and not path.is_symlink() and (getuid is None or st.st_uid == getuid())


# --- the network object -------------------------------------------------------------------------


class Network:
    """A road network with per-class travel times: a frozen graph, a routing engine, closures.

    Nodes and arcs are dense indices inside; OSM ids appear only at the boundary (``node_osmid``,
    ``arc_way``, exports). The arrays (``arc_tail``, ``geom_lat``...) are the graph's, read-only.
    Queries (:meth:`travel_times`, :meth:`fastest_units`, :meth:`route`, :meth:`snap`) take an
    optional ``closures=`` value (:class:`~dispatch.routing.closures.ClosureSet`) to ask a what-if
    without changing what other callers see; by default they use the network's own closure set
    (:attr:`closure_set`), which ``close_*`` and ``reopen`` replace atomically.
    """

    #: The vehicle classes, in the order of their bit in the access masks.
    vehicles: tuple[str, ...] = VEHICLE_CLASSES

    graph: RoadGraph
    engine: Engine
    meta: dict[str, Any]
    settings: NetworkSettings
    name: str
    digest: str
    stats: dict[str, Any]
    facilities: tuple[Facility, ...]
    reach_model: ReachModel | None
    n_nodes: int
    n_arcs: int
    access: np.ndarray
    node_osmid: np.ndarray
    node_lat: np.ndarray
    node_lon: np.ndarray
    arc_tail: np.ndarray
    arc_head: np.ndarray
    fwd_ptr: np.ndarray
    rev_ptr: np.ndarray
    rev_arc: np.ndarray
    arc_length_m: np.ndarray
    arc_cat: np.ndarray
    arc_maxspeed_kmh: np.ndarray
    arc_width_m: np.ndarray
    arc_maxweight_t: np.ndarray
    arc_contraflow: np.ndarray
    arc_way: np.ndarray
    arc_twin: np.ndarray
    geom_ptr: np.ndarray
    geom_node: np.ndarray
    geom_lat: np.ndarray
    geom_lon: np.ndarray
    arc_tag_access: np.ndarray

    def __init__(
        self, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any], settings: NetworkSettings,
        *, policy: EnginePolicy | None = None, cache_file: Path | None = None,
    ) -> None:  # fmt: skip
        graph = RoadGraph({k: v for k, v in arrays.items() if not k.startswith("walk_")})
        store = (None if cache_file is None
                 else HierarchyFile(cache_file, str(meta["digest"]), graph.arc_tail, graph.arc_head))  # fmt: skip
        engine = Engine(graph, settings, policy, hierarchy_store=store)
        self._setup(graph, engine, dict(meta), ClosureSet())
        walk = WalkGraph(arrays) if all(n in arrays for n in WALK_ARRAY_NAMES) else None
        self.reach_model = None if walk is None else ReachModel(walk, self.engine)

    def _setup(
        self, graph: RoadGraph, engine: Engine, meta: dict[str, Any], closures: ClosureSet
    ) -> None:
        for name, a in graph.arrays.items():
            setattr(self, name, a)
        self.graph = graph
        self.engine = engine
        self.meta = meta
        self.settings = engine.settings
        self.name = meta["name"]
        self.digest = meta["digest"]
        self.stats = dict(meta["stats"])
        self.facilities = tuple(Facility(**f) for f in meta["facilities"])
        self.n_nodes = graph.n_nodes
        self.n_arcs = graph.n_arcs
        self.access = engine.access
        self._closure_set = closures
        self._closure_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<Network {self.name}: {self.n_nodes} nodes, {self.n_arcs} arcs>"

    @property
    def bbox(self) -> tuple[float, float, float, float]:
        """``(min_lat, min_lon, max_lat, max_lon)`` of the network's geometry."""
        return self.graph.bbox

    @property
    def policy(self) -> EnginePolicy:
        """The engine's policy (which engine answers; cache bounds)."""
        return self.engine.policy

    # --- closures as values -------------------------------------------------------------------

    @property
    def closure_set(self) -> ClosureSet:
        """The closures this view's queries use by default (an immutable value)."""
        return self._closure_set

    @property
    def closures(self) -> tuple[Closure, ...]:
        """The closures in force on this view, in the order they were added."""
        return self._closure_set.closures

    def closure(self, closure_id: int) -> Closure:
        """One closure of this view by id (its ``closes_nothing`` says whether it closed a road)."""
        return self._closure_set.get(closure_id)

    def with_closures(self, closures: ClosureSet | Iterable[Closure]) -> Network:
        """A view of this network with another closure set, sharing the graph and every cache.

        Closing roads on the view (or on this network) never changes the other.

        Examples
        --------
        >>> net = load_network("danang")
        >>> flood = net.new_closure(way_ids=[295128790], label="what-if")
        >>> what_if = net.with_closures(net.closure_set.with_closures(flood))
        >>> len(what_if.closures), len(net.closures), flood.closes_nothing
        (1, 0, False)
        """
        cs = _as_closure_set(closures)
        view = object.__new__(Network)
        view._setup(self.graph, self.engine, self.meta, cs)
        view.reach_model = self.reach_model
        return view

    def new_closure(
        self, *, arcs: Iterable[int] | None = None, way_ids: Iterable[int] | None = None,
        edges: Iterable[tuple[int, int]] | None = None, polygon: Mapping[str, Any] | None = None,
        vehicles: Iterable[str] | None = None, start_h: float | None = None,
        end_h: float | None = None, label: str = "",
    ) -> Closure:  # fmt: skip
        """A closure value (not applied): give exactly one of ``arcs`` (dense indices), ``way_ids``
        (OSM ways), ``edges`` (OSM node id pairs) or ``polygon`` (GeoJSON, lon/lat).

        Apply it with :meth:`with_closures` (a what-if) or let ``close_*`` do both at once."""
        given = [k for k, v in (("arcs", arcs), ("way_ids", way_ids), ("edges", edges),
                                ("polygon", polygon)) if v is not None]  # fmt: skip
        if len(given) != 1:
            raise ClosureError(
                f"give exactly one of arcs, way_ids, edges, polygon (got {', '.join(given) or 'none'})"
            )
        g = self.graph
        geometry = None
        if arcs is not None:
            a = _cl.check_arcs(g, arcs)
            label = label or f"{len(a)} arcs"
        elif way_ids is not None:
            a = _cl.arcs_of_ways(g, way_ids)
            label = label or f"ways {sorted(set(g.arc_way[a].tolist()))[:5]}"
        elif edges is not None:
            a = _cl.arcs_of_edges(g, edges)
            label = label or "edges"
        else:
            poly = _cl.check_polygon(polygon, g.bbox)
            a = _cl.arcs_in_polygon(self.engine.arc_lines(), poly)
            label = label or "polygon"
            geometry = polygon
        c = _cl.make_closure(self.engine.new_closure_id(), a, vehicles=vehicles, start_h=start_h,
                             end_h=end_h, label=label, geometry=geometry)  # fmt: skip
        if c.closes_nothing:
            log.warning("closure %r closes no road of %s", c.label, self.name)
        return c

    def closures_from_geojson(
        self, source: str | os.PathLike[str] | Mapping[str, Any], *,
        vehicles: Iterable[str] | None = None, start_h: float | None = None,
        end_h: float | None = None,
    ) -> list[Closure]:  # fmt: skip
        """Closure values from a GeoJSON file or dict (see :meth:`close_geojson`), none applied.

        Every feature is checked before any closure is made: an invalid one raises naming it."""
        where, features = _cl.read_closure_features(source, vehicles=vehicles, start_h=start_h,
                                                    end_h=end_h)  # fmt: skip
        out = []
        for i, f in enumerate(features):
            try:
                if f.way_ids is not None:
                    c = self.new_closure(way_ids=f.way_ids, vehicles=f.vehicles, start_h=f.start_h,
                                         end_h=f.end_h, label=f.label)  # fmt: skip
                else:
                    c = self.new_closure(polygon=f.geometry, vehicles=f.vehicles,
                                         start_h=f.start_h, end_h=f.end_h, label=f.label)  # fmt: skip
            except ClosureError as exc:
                raise ClosureError(f"{where}: feature {i}: {exc}") from None
            out.append(c)
        return out

    def _apply(self, closures: list[Closure]) -> None:
        with self._closure_lock:  # copy on write: readers see the old set or the new one
            self._closure_set = self._closure_set.with_closures(*closures)

    def close_arcs(self, arcs: Iterable[int], *, vehicles: Iterable[str] | None = None,
                   start_h: float | None = None, end_h: float | None = None, label: str = "") -> int:  # fmt: skip
        """Close arcs by dense index; return the closure id."""
        c = self.new_closure(
            arcs=arcs, vehicles=vehicles, start_h=start_h, end_h=end_h, label=label
        )
        self._apply([c])
        return c.id

    def close_ways(self, way_ids: Iterable[int], *, vehicles: Iterable[str] | None = None,
                   start_h: float | None = None, end_h: float | None = None, label: str = "") -> int:  # fmt: skip
        """Close every arc of the given OSM ways (both directions); return the closure id."""
        c = self.new_closure(way_ids=way_ids, vehicles=vehicles, start_h=start_h, end_h=end_h,
                             label=label)  # fmt: skip
        self._apply([c])
        return c.id

    def close_edges(self, edges: Iterable[tuple[int, int]], *, vehicles: Iterable[str] | None = None,
                    start_h: float | None = None, end_h: float | None = None, label: str = "") -> int:  # fmt: skip
        """Close OSM edges given as (u, v) OSM node id pairs, in that direction; return the id."""
        c = self.new_closure(edges=edges, vehicles=vehicles, start_h=start_h, end_h=end_h,
                             label=label)  # fmt: skip
        self._apply([c])
        return c.id

    def close_polygon(self, geometry: Mapping[str, Any], *, vehicles: Iterable[str] | None = None,
                      start_h: float | None = None, end_h: float | None = None, label: str = "") -> int:  # fmt: skip
        """Close every arc that crosses a GeoJSON Polygon/MultiPolygon (lon/lat); return the id.

        A polygon off the map, with latitude and longitude exchanged, of zero area or of one point
        is refused; one that closes no road is applied and says so (``net.closure(id).closes_nothing``).
        """
        c = self.new_closure(polygon=geometry, vehicles=vehicles, start_h=start_h, end_h=end_h,
                             label=label)  # fmt: skip
        self._apply([c])
        return c.id

    def close_geojson(self, source: str | os.PathLike[str] | Mapping[str, Any], *,
                      vehicles: Iterable[str] | None = None, start_h: float | None = None,
                      end_h: float | None = None) -> list[int]:  # fmt: skip
        """Apply a GeoJSON file or dict of closures, all or nothing; return the closure ids.

        Polygon features close the roads they cross; LineString/Point features are not closures and
        are refused. A feature's ``properties`` may give ``vehicles`` (list), ``start_h``, ``end_h``,
        ``label`` and ``osm_way_ids`` (close these ways instead of a polygon); the keyword arguments
        are defaults. An invalid feature raises and leaves no closure applied.
        """
        cs = self.closures_from_geojson(source, vehicles=vehicles, start_h=start_h, end_h=end_h)
        self._apply(cs)
        return [c.id for c in cs]

    def reopen(self, closure_id: int) -> None:
        """Remove one closure."""
        with self._closure_lock:
            self._closure_set = self._closure_set.without(closure_id)

    def reopen_all(self) -> None:
        """Remove every closure."""
        with self._closure_lock:
            self._closure_set = ClosureSet()

    def _cs(self, closures: ClosureSet | Iterable[Closure] | None) -> ClosureSet:
        return self._closure_set if closures is None else _as_closure_set(closures)

    # --- class masks and weights --------------------------------------------------------------

    def allowed(self, vehicle: str) -> np.ndarray:
        """Boolean mask of the arcs a class may use (access rules and contraflow)."""
        return self.engine.allowed(vehicle)

    def base_weights(self, vehicle: str, band: int = -1) -> np.ndarray:
        """Travel time in seconds per arc for a class in a speed band, ``inf`` where not allowed."""
        return self.engine.base_weights(vehicle, band)

    def weights(
        self, vehicle: str, hour: float | None = None, *, closures: ClosureSet | None = None
    ) -> np.ndarray:
        """Travel time (s) per arc for a class at a clock hour, with the closures in force then.

        ``inf`` marks arcs the class may not use or that are closed. The same (read-only) array
        object while nothing changes: its identity names a routing regime.
        """
        return self.engine.weights(vehicle, check_hour(hour), self._cs(closures))

    def class_core(self, vehicle: str) -> np.ndarray:
        """Mask of the nodes in the largest strongly connected part open to a class.

        Points snap only to arcs inside it: an alley stub an engine could enter but not leave is
        no place to send one.
        """
        return self.engine.class_core(vehicle)

    def snap_access(self, role: str = "to") -> np.ndarray:
        """Per-arc bit mask of the classes that may snap a point to it.

        ``role="to"`` (a destination, e.g. a call): the arc can be reached from the class's core (its
        largest strongly connected part); ``role="from"`` (an origin, e.g. a unit): the core can be
        reached from the arc. An alley stub an engine could neither enter nor leave is never chosen.
        Two-way pairs are indexed once: the pair counts if either direction qualifies.
        """
        return self.engine.snap_access(role)

    def reachable_share(self, vehicle: str) -> float:
        """Share of the network's nodes in the largest strongly connected part open to a class."""
        return float(self.class_core(vehicle).mean())

    # --- queries ------------------------------------------------------------------------------

    def snap(
        self, points: object, *, vehicle: str = "ambulance", tolerance_m: float | None = None,
        name: str = "point", raise_far: bool = True, role: str = "to",
    ) -> Snapped:  # fmt: skip
        """Snap points to the nearest road the vehicle class may use.

        Parameters
        ----------
        points
            ``(lat, lon)`` or an array of shape (n, 2).
        vehicle
            Vehicle class: only roads it may use are candidates.
        tolerance_m
            Farthest allowed distance to a road (default: the network settings' ``snap_tolerance_m``).
        raise_far
            Raise :class:`PointError` for a point beyond the tolerance (else its arc is -1).
        role
            ``"to"``: the point is a destination (a call): only roads the class can reach qualify;
            ``"from"``: an origin (a unit): only roads from which the class can drive on qualify.

        Examples
        --------
        >>> net = load_network("danang")
        >>> s = net.snap((16.060909, 108.220849))  # on Nguyen Van Linh street (OSM way 295128790)
        >>> len(s), bool(s.dist_m[0] < 30)
        (1, True)
        """
        bit = check_vehicle(vehicle)
        if role not in ("to", "from"):
            raise PointError(f"role={role!r} must be 'to' or 'from'")
        pts = as_points(points, name=name + "s")
        check_points(self.bbox, pts, name=name)
        tol = check_tolerance(tolerance_m, self.settings.snap_tolerance_m)
        eng = self.engine
        arc, t, d = snap_arrays(eng.snap_index(), eng.snap_access(role), pts, bit, tol)
        if raise_far and (arc < 0).any():
            i = int(np.argmax(arc < 0))
            raise PointError(
                f"{name} {i} ({pts[i, 0]}, {pts[i, 1]}) is farther than {tol:g} m from any road "
                f"open to {vehicle}"
            )
        ok = arc >= 0
        a = np.where(ok, arc, 0)
        offset = np.where(ok, t * self.arc_length_m[a], np.nan)
        lat, lon = position(self.graph, eng.geom_cum_m(), a, t)
        return Snapped(arc, t, d, offset, np.where(ok, lat, np.nan), np.where(ok, lon, np.nan))

    def travel_times(
        self, origins: object, destinations: object, *, vehicle: str = "ambulance",
        hour: float | None = None, closures: ClosureSet | None = None,
    ) -> np.ndarray:  # fmt: skip
        """Travel times in seconds from every origin to every destination.

        Parameters
        ----------
        origins, destinations
            ``(lat, lon)`` or arrays of shape (n, 2); each point is snapped to the nearest road the
            class may use (:meth:`snap`).
        vehicle
            Vehicle class.
        hour
            Clock hour for speed bands and closure windows (``None``: off-peak, every closure applies).
        closures
            A closure set to use instead of the network's (a what-if).

        Returns
        -------
        numpy.ndarray
            Shape ``(len(origins), len(destinations))``, seconds, ``inf`` where unreachable.

        Examples
        --------
        >>> net = load_network("danang")
        >>> tt = net.travel_times([(16.060909, 108.220849)], [(16.056437, 108.217138), (16.060909, 108.220849)])
        >>> tt.shape, bool(0 < tt[0, 0] < 900), float(tt[0, 1])
        ((1, 2), True, 0.0)
        """
        return _q.travel_times(self.engine, self._cs(closures), origins, destinations,
                               vehicle=vehicle, hour=hour)  # fmt: skip

    def reach_times(
        self, origins: object, destinations: object, *, vehicle: str = "ambulance",
        hour: float | None = None, closures: ClosureSet | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
        """``(drive_s, walk_s)`` matrices with the crew at the call (:mod:`dispatch.routing.reach`).

        Like :meth:`travel_times`, but a destination on a way the class cannot drive is reached
        through its best access point plus an on-foot leg (``walk_s``); ``inf`` beyond the class's
        on-foot limit. Response time = ``turnout + drive_s + walk_s``.

        Examples
        --------
        >>> net = load_network("danang")
        >>> drive, walk = net.reach_times([(16.0594, 108.2099)], [(16.0467028, 108.2118639)],
        ...                               vehicle="fire_engine")
        >>> bool(drive[0, 0] > 0), round(float(walk[0, 0]))
        (True, 131)
        """
        return _q.reach_times(self.engine, self._cs(closures), self.reach_model, origins,
                              destinations, vehicle=vehicle, hour=hour)  # fmt: skip

    def reach(self, call: object) -> dict[str, ClassReach]:
        """How each class reaches a call: ``"drive"``, ``"drive+walk"`` or ``"beyond_reach"``
        with the reason (:class:`~dispatch.routing.reach.ClassReach`); ``{}`` without a walk network.

        Examples
        --------
        >>> net = load_network("danang")
        >>> {v: r.kind for v, r in net.reach((16.0467028, 108.2118639)).items()}["fire_engine"]
        'drive+walk'
        """
        pts = as_points(call, name="call")
        if len(pts) != 1:
            raise PointError(f"call must be one (lat, lon), got {len(pts)} points")
        check_points(self.bbox, pts, name="call")
        rm = self.reach_model
        if rm is None:
            return {}
        lat, lon = float(pts[0, 0]), float(pts[0, 1])
        site = rm.locate(lat, lon)
        if site is None:
            return {}
        out = {}
        for c, v in enumerate(VEHICLE_CLASSES):
            a0, _, d0 = self.engine.snap_call(lat, lon, c)
            out[v] = _q.class_reach(rm, site, c, d0 if a0 >= 0 else np.inf, [])
        return out

    def route(
        self, origin: object, destination: object, *, vehicle: str = "ambulance",
        hour: float | None = None, closures: ClosureSet | None = None,
    ) -> Route:  # fmt: skip
        """The fastest route from ``origin`` to ``destination`` (each a ``(lat, lon)``).

        Examples
        --------
        >>> net = load_network("danang")
        >>> r = net.route((16.060909, 108.220849), (16.056437, 108.217138))
        >>> tt = net.travel_times((16.060909, 108.220849), (16.056437, 108.217138))
        >>> r.times_s[0], r.times_s[-1] == r.eta_s, bool(abs(r.eta_s - tt[0, 0]) < 1e-9)
        (0.0, True, True)
        """
        return _q.route(self.engine, self._cs(closures), origin, destination, vehicle=vehicle,
                        hour=hour)  # fmt: skip

    def fleet(self, units: object) -> Fleet:
        """Prepare a fleet for repeated :meth:`fastest_units` calls (see :class:`Fleet`)."""
        return Fleet(self, units)

    def fastest_units(
        self, call: object, units: object, *, k: int = 3, hour: float | None = None,
        routes: bool = False, closures: ClosureSet | None = None,
    ) -> list[UnitETA]:  # fmt: skip
        """The ``k`` available units that reach ``call`` first, sorted by ETA then unit id.

        ETAs are compared after rounding to ``policy.eta_resolution_s`` (1 ms): the same query gets
        the same units in the same order whatever was asked before and whichever engine answers.

        Parameters
        ----------
        call
            ``(lat, lon)`` of the call; snapped per vehicle class.
        units
            Sequence of mappings with ``id``, ``vehicle``, ``lat``, ``lon`` and optional ``available``
            (default True) and ``turnout_s`` (default: the class's,
            ``dispatch.model.DEFAULT_TURNOUT_S``), a pandas DataFrame with those columns, or a
            :class:`Fleet` (:meth:`fleet`: the fastest for repeated queries; a list equal to the
            previous call's is recognised without being read again).
        k
            How many units; more than are available returns all reachable available units.
        hour
            Clock hour (speed bands, closure windows).
        routes
            Also build each unit's :class:`Route` (off by default to keep the query lean).
        closures
            A closure set to use instead of the network's (a what-if).

        Returns
        -------
        list of UnitETA
            Units that cannot reach the call (closed roads) are left out; an empty list means no
            available unit can reach it.

        Examples
        --------
        >>> net = load_network("danang")
        >>> units = [{"id": "A1", "vehicle": "ambulance", "lat": 16.056437, "lon": 108.217138,
        ...           "turnout_s": 0},
        ...          {"id": "A2", "vehicle": "ambulance", "lat": 16.0550, "lon": 108.2050}]
        >>> best = net.fastest_units((16.060909, 108.220849), units, k=1)
        >>> tt = net.travel_times((16.056437, 108.217138), (16.060909, 108.220849))
        >>> [u.unit for u in best], bool(abs(best[0].eta_s - tt[0, 0]) < 1e-9)
        (['A1'], True)
        """
        if type(units) is Fleet and closures is None and not routes:  # a dispatch system's fleet
            out = _q._fastest_planned(self.engine, self._closure_set, self.reach_model, call,
                                      units, k, hour)  # fmt: skip
            if out is not None:  # the steady state's answer (the same as below, to the bit)
                return out
        return _q.fastest_units(self.engine, self._cs(closures), call, units, k=k, hour=hour,
                                routes=routes, reach=self.reach_model)  # fmt: skip

    # --- exports ------------------------------------------------------------------------------

    def edge_table(self, vehicle: str, *, hour: float | None = None) -> dict[str, np.ndarray]:
        """The arcs a class may use with their travel times (what ``dispatch map export`` writes).

        Returns ``u``, ``v`` (OSM node ids), ``travel_time_s``, ``length_m``, ``arc`` (dense index).
        """
        w = self.weights(vehicle, hour)
        ok = np.isfinite(w)
        return {
            "u": self.node_osmid[self.arc_tail[ok]],
            "v": self.node_osmid[self.arc_head[ok]],
            "travel_time_s": w[ok],
            "length_m": self.arc_length_m[ok],
            "arc": np.flatnonzero(ok),
        }

    def summary(self) -> dict[str, Any]:
        """Figures for ``dispatch map info``: counts, bounding box, per-class reachable share."""
        cats = np.bincount(self.arc_cat, minlength=len(ROAD_CATEGORIES))
        return {
            "map": self.name,
            "nodes": self.n_nodes,
            "arcs": self.n_arcs,
            "contraflow_arcs": int(self.arc_contraflow.sum()),
            "length_km": round(float(self.arc_length_m[~self.arc_contraflow].sum()) / 1000, 3),
            "bbox": dict(zip(("min_lat", "min_lon", "max_lat", "max_lon"), self.bbox, strict=True)),
            "arcs_by_category": {
                c: int(k) for c, k in zip(ROAD_CATEGORIES, cats, strict=True) if k
            },
            "reachable_share": {v: round(self.reachable_share(v), 4) for v in VEHICLE_CLASSES},
            **self.stats,
            "facilities": [
                {
                    "kind": f.kind,
                    "name": f.name,
                    "lat": round(f.lat, 7),
                    "lon": round(f.lon, 7),
                    "osm_id": f.osm_id,
                }
                for f in self.facilities
            ],  # fmt: skip
            "digest": self.digest,
        }


def _as_closure_set(closures: ClosureSet | Iterable[Closure]) -> ClosureSet:
    if isinstance(closures, ClosureSet):
        return closures
    if isinstance(closures, str | bytes | Mapping) or not isinstance(closures, Iterable):
        raise ClosureError(f"closures={closures!r} must be a ClosureSet or a list of Closure")
    items = tuple(closures)
    for c in items:
        if not isinstance(c, Closure):
            raise ClosureError(f"closures: {c!r} is not a Closure")
    return ClosureSet(items)
