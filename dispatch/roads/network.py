"""The compiled road network: immutable CSR arrays (compiled by :mod:`dispatch.roads.compile`), cached on disk.

Compile pipeline (:func:`dispatch.roads.compile.compile_roads`):

1. one arc per OSM segment and allowed direction, its length by haversine; one-way segments also get a
   *contraflow* arc that only classes with ``contraflow`` enabled may use;
2. keep the largest strongly connected part (contraflow arcs left out), report the dropped share;
3. merge chains of pass-through nodes into one arc, but only along one OSM way, so that an arc has one
   road category, speed limit and width: travel times are exact per original segment and no attribute
   is ever picked from a list (the cause of osmnx's hash-seed-dependent travel times);
4. number nodes by OSM id and arcs by (tail, head, ...): the same map and settings give the same arrays,
   byte for byte, in any process (:attr:`Network.digest`).

The arrays are saved with :func:`numpy.savez` next to the map (``maps/.cache/``), keyed by the map file's
SHA-256 and :meth:`NetworkSettings.key`, with a checksum that detects a corrupt file. Loading the cache
imports neither osmnx nor pyosmium.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

from dispatch.errors import CacheError
from dispatch.io.atomic import atomic_open
from dispatch.roads.compile import ARRAY_NAMES, FORMAT_VERSION, build_arrays, digest
from dispatch.roads.osm import Facility, file_sha256, resolve_map
from dispatch.roads.profiles import (
    ROAD_CATEGORIES,
    VEHICLE_CLASSES,
    NetworkSettings,
    access_mask,
    arc_speeds_kmh,
    check_vehicle,
    network_settings,
)

log = logging.getLogger(__name__)

# --- cache --------------------------------------------------------------------------------------


def cache_path(map_path: Path, settings: NetworkSettings, cache_dir: Path | None = None) -> Path:
    """Where the compiled network of a map with given settings is cached."""
    folder = cache_dir or Path(os.environ.get("DISPATCH_CACHE_DIR", map_path.parent / ".cache"))
    return Path(folder) / f"{map_path.name}.v{FORMAT_VERSION}.{settings.key()}.npz"


def _save(path: Path, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> None:
    with atomic_open(path, "wb") as f:
        np.savez(f, meta=np.array(json.dumps(meta, sort_keys=True)), **arrays)  # type: ignore[arg-type]


def _load(path: Path, map_sha: str) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            arrays = {name: z[name] for name in ARRAY_NAMES}
    except Exception as exc:  # zip/npz/json errors of every kind mean a corrupt file
        raise CacheError(f"cache file {str(path)!r} is corrupt: {exc}") from None
    if meta.get("map_sha256") != map_sha or meta.get("format") != FORMAT_VERSION:
        raise CacheError(f"cache file {str(path)!r} belongs to another map or format")
    if digest(arrays) != meta.get("digest"):
        raise CacheError(f"cache file {str(path)!r} is corrupt: checksum mismatch")
    return arrays, meta


def load_network(
    map_name: str | os.PathLike[str] = "danang",
    *,
    settings: NetworkSettings | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    rebuild: bool = False,
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

    Examples
    --------
    >>> net = load_network("danang")
    >>> net.n_nodes > 500 and net.n_arcs > net.n_nodes
    True
    """
    settings = settings or network_settings()
    path = resolve_map(map_name)
    sha = file_sha256(path)
    cpath = cache_path(path, settings, Path(cache_dir) if cache_dir else None)
    if cpath.exists() and not rebuild:
        try:
            arrays, meta = _load(cpath, sha)
            return Network(arrays, meta, settings)
        except CacheError as exc:
            log.warning("%s; rebuilding", exc)
    arrays, meta = build_arrays(path, settings, sha=sha)
    try:
        _save(cpath, arrays, meta)
    except OSError as exc:  # a read-only folder: work without a cache
        log.warning("cannot write cache %s: %s", cpath, exc)
    return Network(arrays, meta, settings)


# --- the network object -------------------------------------------------------------------------


class Network:
    """An immutable, array-based road network with per-class travel times.

    Nodes and arcs are dense indices inside; OSM ids appear only at the boundary (``node_osmid``,
    ``arc_way``, exports). Queries (:meth:`travel_times`, :meth:`fastest_units`, :meth:`route`,
    :meth:`snap`) and closures are added by :mod:`dispatch.routing.queries`, :mod:`dispatch.roads.snapping` and
    :mod:`dispatch.routing.closures`.
    """

    def __init__(
        self, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any], settings: NetworkSettings
    ) -> None:
        for name in ARRAY_NAMES:
            a = np.asarray(arrays[name])
            a.flags.writeable = False
            setattr(self, name, a)
        self.meta = dict(meta)
        self.settings = settings
        self.name: str = meta["name"]
        self.digest: str = meta["digest"]
        self.stats: dict[str, Any] = dict(meta["stats"])
        self.facilities: tuple[Facility, ...] = tuple(Facility(**f) for f in meta["facilities"])
        self.n_nodes = len(self.node_osmid)
        self.n_arcs = len(self.arc_tail)
        self._bbox = (float(self.geom_lat.min()), float(self.geom_lon.min()),
                      float(self.geom_lat.max()), float(self.geom_lon.max()))  # fmt: skip
        self.access = access_mask(
            self.arc_cat, self.arc_width_m, self.arc_maxweight_t, settings, self.arc_tag_access
        )
        self._weights: dict[tuple[int, int, tuple[int, ...]], np.ndarray] = {}
        self._closures: dict[int, Any] = {}
        self._next_closure = 1
        # snapping index, workspaces, fleet caches (rebuilt lazily)
        self._state: dict[Any, Any] = {}

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

    def __repr__(self) -> str:
        return f"<Network {self.name}: {self.n_nodes} nodes, {self.n_arcs} arcs>"

    @property
    def bbox(self) -> tuple[float, float, float, float]:
        """``(min_lat, min_lon, max_lat, max_lon)`` of the network's geometry."""
        return self._bbox

    def allowed(self, vehicle: str) -> np.ndarray:
        """Boolean mask of the arcs a class may use (access rules and contraflow)."""
        c = check_vehicle(vehicle)
        ok = (self.access >> c) & 1 == 1
        p = self.settings.profiles[vehicle]
        if p.contraflow:
            ok &= ~self.arc_contraflow | (self.arc_length_m <= p.contraflow_max_m)
        else:
            ok &= ~self.arc_contraflow
        return ok

    def base_weights(self, vehicle: str, band: int = -1) -> np.ndarray:
        """Travel time in seconds per arc for a class in a speed band, ``inf`` where not allowed."""
        key = (VEHICLE_CLASSES.index(vehicle), band, ())
        w = self._weights.get(key)
        if w is None:
            speed = arc_speeds_kmh(
                vehicle, self.arc_cat, self.arc_maxspeed_kmh, self.settings, band
            )
            p = self.settings.profiles[vehicle]
            speed = np.where(self.arc_contraflow, speed * p.contraflow_factor, speed)
            w = np.where(self.allowed(vehicle), self.arc_length_m / (speed / 3.6), np.inf)
            w.flags.writeable = False
            self._weights[key] = w
        return w

    def class_core(self, vehicle: str) -> np.ndarray:
        """Mask of the nodes in the largest strongly connected part open to a class.

        Points snap only to arcs inside it: an alley stub an engine could enter but not leave is
        no place to send one.
        """
        key = ("core", vehicle)
        core = self._state.get(key)
        if core is None:
            ok = self.allowed(vehicle)
            g = csr_matrix(
                (np.ones(int(ok.sum())), (self.arc_tail[ok], self.arc_head[ok])),
                shape=(self.n_nodes, self.n_nodes),
            )
            _, labels = connected_components(g, directed=True, connection="strong")
            core = labels == np.argmax(np.bincount(labels))
            self._state[key] = core
        return core  # type: ignore[no-any-return,unused-ignore]

    def snap_access(self, role: str = "to") -> np.ndarray:
        """Per-arc bit mask of the classes that may snap a point to it.

        ``role="to"`` (a destination, e.g. a call): the arc can be reached from the class's core (its
        largest strongly connected part); ``role="from"`` (an origin, e.g. a unit): the core can be
        reached from the arc. An alley stub an engine could neither enter nor leave is never chosen.
        Two-way pairs are indexed once: the pair counts if either direction qualifies.
        """
        key = ("snap_access", role)
        mask = self._state.get(key)
        if mask is None:
            from scipy.sparse.csgraph import breadth_first_order

            mask = np.zeros(self.n_arcs, dtype=np.uint8)
            n = self.n_nodes
            twin = self.arc_twin
            for i, v in enumerate(VEHICLE_CLASSES):
                ok = self.allowed(v)
                core = np.flatnonzero(self.class_core(v))
                src, dst = (self.arc_tail[ok], self.arc_head[ok])
                if role == "from":  # reach the core: search the reversed graph
                    src, dst = dst, src
                # a virtual node n linked to every core node
                g = csr_matrix(
                    (np.ones(len(src) + len(core)), (np.concatenate([src, np.full(len(core), n)]),
                                                     np.concatenate([dst, core]))),
                    shape=(n + 1, n + 1),
                )  # fmt: skip
                seen = np.zeros(n + 1, bool)
                seen[breadth_first_order(g, n, directed=True, return_predecessors=False)] = True
                end = self.arc_tail if role == "to" else self.arc_head
                good = ok & seen[end]
                good |= np.where(twin >= 0, good[np.maximum(twin, 0)], False)
                mask |= good.astype(np.uint8) << i
            self._state[key] = mask
        return mask  # type: ignore[no-any-return,unused-ignore]

    def reachable_share(self, vehicle: str) -> float:
        """Share of the network's nodes in the largest strongly connected part open to a class."""
        return float(self.class_core(vehicle).mean())

    def edge_table(self, vehicle: str, *, hour: float | None = None) -> dict[str, np.ndarray]:
        """The arcs a class may use with their travel times (what ``dispatch map export`` writes).

        Returns ``u``, ``v`` (OSM node ids), ``travel_time_s``, ``length_m``, ``arc`` (dense index).
        """
        from dispatch.routing.queries import weights

        w = weights(self, vehicle, hour)
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
