"""The compiled road network: from OSM segments to immutable CSR arrays, cached on disk.

Pipeline (:func:`compile_roads`):

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

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

from dispatch.errors import CacheError, MapError
from dispatch.roads.osm import Facility, RawRoads, file_sha256, read_osm, resolve_map
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

#: Bump when the compiled format or the compile rules change: old caches are then rebuilt.
FORMAT_VERSION = 5
EARTH_RADIUS_M = 6_371_008.8

_ARRAY_NAMES = (
    "node_osmid", "node_lat", "node_lon",
    "arc_tail", "arc_head", "fwd_ptr", "rev_ptr", "rev_arc",
    "arc_length_m", "arc_cat", "arc_maxspeed_kmh", "arc_width_m", "arc_maxweight_t",
    "arc_contraflow", "arc_way", "arc_twin", "geom_ptr", "geom_node", "geom_lat", "geom_lon",
    "arc_tag_access",
)  # fmt: skip


def haversine_m(lat1: Any, lon1: Any, lat2: Any, lon2: Any) -> Any:
    """Great-circle distance in metres (vectorised).

    >>> round(float(haversine_m(16.0, 108.0, 16.001, 108.0)), 2)
    111.2
    """
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dp = p2 - p1
    dl = np.radians(np.asarray(lon2) - np.asarray(lon1))
    a = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(a))


# --- compile ------------------------------------------------------------------------------------


def compile_roads(raw: RawRoads) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Compile road segments into network arrays; return ``(arrays, stats)``."""
    idx_a = np.searchsorted(raw.node_id, raw.seg_a)
    idx_b = np.searchsorted(raw.node_id, raw.seg_b)
    seg_len = haversine_m(raw.node_lat[idx_a], raw.node_lon[idx_a],
                          raw.node_lat[idx_b], raw.node_lon[idx_b])  # fmt: skip
    oneway = raw.way_oneway[raw.seg_way]
    seg = np.arange(len(idx_a))
    fwd_ok = oneway >= 0
    bwd_ok = oneway <= 0
    # arcs: (tail, head, segment, reversed?, contraflow?)
    tails = np.concatenate([idx_a[fwd_ok], idx_b[bwd_ok], idx_b[~bwd_ok], idx_a[~fwd_ok]])
    heads = np.concatenate([idx_b[fwd_ok], idx_a[bwd_ok], idx_a[~bwd_ok], idx_b[~fwd_ok]])
    segs = np.concatenate([seg[fwd_ok], seg[bwd_ok], seg[~bwd_ok], seg[~fwd_ok]])
    rev = np.concatenate([np.zeros(fwd_ok.sum(), bool), np.ones(bwd_ok.sum(), bool),
                          np.ones((~bwd_ok).sum(), bool), np.zeros((~fwd_ok).sum(), bool)])  # fmt: skip
    contra = np.concatenate([np.zeros(fwd_ok.sum() + bwd_ok.sum(), bool),
                             np.ones((~bwd_ok).sum() + (~fwd_ok).sum(), bool)])  # fmt: skip

    # largest strongly connected part of the normal (non-contraflow) arcs
    n_all = len(raw.node_id)
    used = np.zeros(n_all, bool)
    used[tails[~contra]] = True
    used[heads[~contra]] = True
    nodes_before = int(used.sum())
    g = csr_matrix(
        (np.ones((~contra).sum()), (tails[~contra], heads[~contra])), shape=(n_all, n_all)
    )
    _, labels = connected_components(g, directed=True, connection="strong")
    sizes = np.bincount(labels[used])
    best = int(np.argmax(sizes))  # ties: lowest label = component of the lowest OSM id
    keep_node = (labels == best) & used
    keep_arc = keep_node[tails] & keep_node[heads]
    tails, heads, segs, rev, contra = (x[keep_arc] for x in (tails, heads, segs, rev, contra))
    way = raw.seg_way[segs]

    chains = _merge_chains(tails, heads, way, contra)
    # chains: list of (list of arc positions) in order; endpoints are the kept nodes
    end_nodes = sorted({int(tails[c[0]]) for c in chains} | {int(heads[c[-1]]) for c in chains})
    new_index = {old: i for i, old in enumerate(end_nodes)}

    rows = []
    for c in chains:
        geom = [int(tails[c[0]])] + [int(heads[a]) for a in c]
        length = float(np.sum(seg_len[segs[c]]))
        rows.append((new_index[geom[0]], new_index[geom[-1]], length, int(way[c[0]]),
                     bool(contra[c[0]]), tuple(raw.node_id[geom].tolist())))  # fmt: skip
    rows.sort(key=lambda r: (r[0], r[1], r[4], r[2], r[5]))
    m = len(rows)
    n = len(end_nodes)
    arc_tail = np.array([r[0] for r in rows], dtype=np.int32)
    arc_head = np.array([r[1] for r in rows], dtype=np.int32)
    arc_len = np.array([r[2] for r in rows], dtype=np.float64)
    arc_wayi = np.array([r[3] for r in rows], dtype=np.int64)
    arc_contra = np.array([r[4] for r in rows], dtype=bool)
    geoms = [r[5] for r in rows]
    by_geom = {(g, bool(c)): i for i, (g, c) in enumerate(zip(geoms, arc_contra, strict=True))}
    twin = np.full(m, -1, dtype=np.int32)
    for i, g in enumerate(geoms):
        # a normal arc's twin is the opposite normal arc, or else its contraflow arc
        j = by_geom.get((g[::-1], False))
        if j is None:
            j = by_geom.get((g[::-1], True))
        if j is not None and j != i:
            twin[i] = j
    geom_ptr = np.zeros(m + 1, dtype=np.int64)
    geom_ptr[1:] = np.cumsum([len(g) for g in geoms])
    geom_node = np.fromiter((x for g in geoms for x in g), dtype=np.int64, count=int(geom_ptr[-1]))
    gi = np.searchsorted(raw.node_id, geom_node)
    node_old = np.array(end_nodes, dtype=np.int64)
    fwd_ptr = np.zeros(n + 1, dtype=np.int32)
    fwd_ptr[1:] = np.cumsum(np.bincount(arc_tail, minlength=n))
    rev_arc = np.lexsort((np.arange(m), arc_head)).astype(np.int32)
    rev_ptr = np.zeros(n + 1, dtype=np.int32)
    rev_ptr[1:] = np.cumsum(np.bincount(arc_head, minlength=n))
    arrays = {
        "node_osmid": raw.node_id[node_old],
        "node_lat": raw.node_lat[node_old],
        "node_lon": raw.node_lon[node_old],
        "arc_tail": arc_tail,
        "arc_head": arc_head,
        "fwd_ptr": fwd_ptr,
        "rev_ptr": rev_ptr,
        "rev_arc": rev_arc,
        "arc_length_m": arc_len,
        "arc_cat": raw.way_category[arc_wayi].astype(np.int8),
        "arc_maxspeed_kmh": raw.way_maxspeed_kmh[arc_wayi],
        "arc_width_m": raw.way_width_m[arc_wayi],
        "arc_maxweight_t": raw.way_maxweight_t[arc_wayi],
        "arc_tag_access": raw.way_access[arc_wayi],
        "arc_contraflow": arc_contra,
        "arc_way": raw.way_id[arc_wayi],
        "arc_twin": twin,
        "geom_ptr": geom_ptr,
        "geom_node": geom_node,
        "geom_lat": raw.node_lat[gi],
        "geom_lon": raw.node_lon[gi],
    }
    stats = {
        "ways_read": raw.ways_total,
        "road_ways": len(raw.way_id),
        "segments": len(raw.seg_a),
        "dropped_node_refs": raw.dropped_refs,
        "nodes_before_scc": nodes_before,
        "nodes_in_scc": int(keep_node.sum()),
        "dropped_share": round(float(1.0 - keep_node.sum() / max(nodes_before, 1)), 6),
    }
    return arrays, stats


def _merge_chains(
    tails: np.ndarray, heads: np.ndarray, way: np.ndarray, contra: np.ndarray
) -> list[list[int]]:
    """Group arcs into chains through pass-through nodes of one way (same way, same contraflow flag)."""
    m = len(tails)
    out_arcs: dict[int, list[int]] = {}
    in_arcs: dict[int, list[int]] = {}
    for a in range(m):
        out_arcs.setdefault(int(tails[a]), []).append(a)
        in_arcs.setdefault(int(heads[a]), []).append(a)

    def key(a: int) -> tuple[int, bool]:
        return int(way[a]), bool(contra[a])

    # next_arc[a] = the arc that continues a through its head, when the head is a pass-through node
    next_arc = np.full(m, -1, dtype=np.int64)
    passthrough: set[int] = set()
    for v, ins in in_arcs.items():
        outs = out_arcs.get(v, [])
        if len(ins) != len(outs) or len(ins) not in (1, 2):
            continue
        nbrs = {int(tails[a]) for a in ins} | {int(heads[a]) for a in outs}
        if len(nbrs) != 2 or v in nbrs:
            continue
        pairing = {}
        for a in ins:
            cont = [b for b in outs if heads[b] != tails[a] and key(b) == key(a)]
            if len(cont) != 1:
                break
            pairing[a] = cont[0]
        else:
            if len(set(pairing.values())) == len(ins):
                passthrough.add(v)
                for a, b in pairing.items():
                    next_arc[a] = b
    chains: list[list[int]] = []
    visited = np.zeros(m, bool)
    starts = [a for a in range(m) if int(tails[a]) not in passthrough]
    while True:
        for a in starts:
            if visited[a]:
                continue
            chain = [a]
            visited[a] = True
            while int(heads[chain[-1]]) in passthrough:
                b = int(next_arc[chain[-1]])
                if visited[b]:
                    break
                chain.append(b)
                visited[b] = True
            chains.append(chain)
        rest = np.flatnonzero(~visited)
        if len(rest) == 0:
            return chains
        # a loop made only of pass-through nodes: cut it at its lowest node
        cut = int(min(tails[rest]))
        passthrough.discard(cut)
        # chains already closed at `cut` stay valid; restart from arcs leaving the cut node
        starts = [a for a in out_arcs.get(cut, []) if not visited[a]]


# --- cache --------------------------------------------------------------------------------------


def _digest(arrays: Mapping[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for name in _ARRAY_NAMES:
        a = np.ascontiguousarray(arrays[name])
        h.update(name.encode())
        h.update(str(a.dtype).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def cache_path(map_path: Path, settings: NetworkSettings, cache_dir: Path | None = None) -> Path:
    """Where the compiled network of a map with given settings is cached."""
    folder = cache_dir or Path(os.environ.get("DISPATCH_CACHE_DIR", map_path.parent / ".cache"))
    return Path(folder) / f"{map_path.name}.v{FORMAT_VERSION}.{settings.key()}.npz"


def _save(path: Path, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, meta=np.array(json.dumps(meta, sort_keys=True)), **arrays)  # type: ignore[arg-type]
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _load(path: Path, map_sha: str) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            arrays = {name: z[name] for name in _ARRAY_NAMES}
    except Exception as exc:  # zip/npz/json errors of every kind mean a corrupt file
        raise CacheError(f"cache file {str(path)!r} is corrupt: {exc}") from None
    if meta.get("map_sha256") != map_sha or meta.get("format") != FORMAT_VERSION:
        raise CacheError(f"cache file {str(path)!r} belongs to another map or format")
    if _digest(arrays) != meta.get("digest"):
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


def build_arrays(
    path: Path, settings: NetworkSettings, *, sha: str | None = None
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read and compile a map file (no cache)."""
    raw = read_osm(path)
    arrays, stats = compile_roads(raw)
    if len(arrays["arc_tail"]) == 0:
        raise MapError(f"map file {str(path)!r} has no connected drivable roads")
    meta = {
        "format": FORMAT_VERSION,
        "name": path.name,
        "map_sha256": sha or file_sha256(path),
        "settings_key": settings.key(),
        "stats": stats,
        "facilities": [
            {
                "kind": f.kind,
                "name": f.name,
                "lat": f.lat,
                "lon": f.lon,
                "osm_id": f.osm_id,
                "tags": dict(sorted(f.tags.items())),
            }
            for f in raw.facilities
        ],
        "digest": _digest(arrays),
    }
    return arrays, meta


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
        for name in _ARRAY_NAMES:
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
