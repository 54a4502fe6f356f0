"""The walk network: every way a crew can walk or lay a hose along, as an undirected graph.

The drive network (:mod:`dispatch.roads.compile`) keeps only ways some vehicle class may drive.
Da Nang's *kiệt* and *hẻm* (alleys 1-3 m wide), footways and steps are not among them, yet that is
where many calls stand: a fire engine stops on the main road and its crew runs a hose in. The walk
network holds them all (footway, path, steps, pedestrian, living_street, service and alley,
residential... and every road; not motorways, nor trunk roads or motorroads tagged without a
sidewalk, unless ``foot=yes``), one undirected edge per OSM segment, its length in metres along the
real geometry (haversine). ``foot=no`` (or ``access=no`` without a ``foot`` permission) drops a way;
a node a person cannot pass (a wall, a fence, ``foot=no``) is split, one copy per edge meeting it.

:class:`WalkGraph` is a frozen value stored with the compiled network (``walk_*`` arrays in the
cache); :mod:`dispatch.routing.reach` uses it to find where a class's crew leaves its vehicle.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Mapping
from typing import Any

import numba
import numpy as np
from scipy.sparse import csr_matrix

from dispatch.geo import haversine_m
from dispatch.roads.graph import RoadGraph
from dispatch.roads.snapping import SnapIndex, build_index, snap_one

#: Walk edge kinds (``walk_edge_kind`` indexes this tuple): how the way is tagged.
WALK_KINDS: tuple[str, ...] = (
    "road", "residential", "living_street", "service", "alley", "track", "pedestrian",
    "footway", "path", "steps", "cycleway",
)  # fmt: skip
_KIND = {k: i for i, k in enumerate(WALK_KINDS)}
_ROADS = {
    "trunk", "primary", "secondary", "tertiary", "unclassified", "road", "busway",
    "trunk_link", "primary_link", "secondary_link", "tertiary_link",
}  # fmt: skip
_OTHER = {
    "residential": "residential", "living_street": "living_street", "track": "track",
    "pedestrian": "pedestrian", "footway": "footway", "path": "path", "steps": "steps",
    "cycleway": "cycleway", "bridleway": "path", "corridor": "footway",
}  # fmt: skip
_FOOT_YES = {"yes", "designated", "permissive", "official", "destination", "private"}
_FOOT_NO = {"no", "use_sidepath"}
_NO_SIDEWALK = {"no", "none"}
_BLOCKING_BARRIERS = {"wall", "fence", "hedge", "retaining_wall", "city_wall", "ditch"}

#: The arrays of a walk graph in the network cache.
WALK_ARRAY_NAMES = (
    "walk_node_osm", "walk_node_lat", "walk_node_lon", "walk_edge_u", "walk_edge_v",
    "walk_edge_len_m", "walk_edge_way", "walk_edge_kind", "walk_edge_drive",
)  # fmt: skip


def walk_kind(tags: Mapping[str, str]) -> int | None:
    """The walk kind (index into :data:`WALK_KINDS`) of an OSM way, or ``None`` if nobody walks it.

    ASSUMPTION (POLICY): a crew on foot may use any way a pedestrian may, including private ones
    (``access=private``: the crew enters a compound to reach a patient); ``access=no`` closes a way
    unless ``foot`` opens it; motorways, and trunk roads or motorroads tagged ``sidewalk=no``, are
    closed unless ``foot=yes``.

    Examples
    --------
    >>> WALK_KINDS[walk_kind({"highway": "steps"})], WALK_KINDS[walk_kind({"highway": "primary"})]
    ('steps', 'road')
    >>> walk_kind({"highway": "motorway"}) is None, walk_kind({"highway": "footway", "foot": "no"})
    (True, None)
    >>> WALK_KINDS[walk_kind({"highway": "service", "service": "alley", "motorcar": "no"})]
    'alley'
    """
    highway = tags.get("highway")
    if highway is None or tags.get("area") == "yes":
        return None
    if highway in ("construction", "proposed", "abandoned", "razed", "platform"):
        return None
    foot = tags.get("foot")
    if foot in _FOOT_NO:
        return None
    allowed = foot in _FOOT_YES
    if not allowed and tags.get("access") == "no":
        return None
    if highway in ("motorway", "motorway_link"):
        return _KIND["road"] if allowed else None
    no_sidewalk = tags.get("motorroad") == "yes" or (
        highway.startswith("trunk") and tags.get("sidewalk") in _NO_SIDEWALK
    )
    if no_sidewalk and not allowed:
        return None
    if highway in _ROADS:
        return _KIND["road"]
    if highway == "service":
        return _KIND["alley" if tags.get("service") == "alley" else "service"]
    kind = _OTHER.get(highway)
    return None if kind is None else _KIND[kind]


def node_blocks_walk(tags: Mapping[str, str]) -> bool:
    """Whether a person on foot cannot pass a node (``foot=no``, ``access=no``, a wall or fence).

    >>> node_blocks_walk({"barrier": "bollard"}), node_blocks_walk({"barrier": "fence"})
    (False, True)
    >>> node_blocks_walk({"barrier": "gate", "access": "no"}), node_blocks_walk({"foot": "yes", "access": "no"})
    (True, False)
    """
    foot = tags.get("foot")
    if foot in _FOOT_NO:
        return True
    if foot in _FOOT_YES:
        return False
    return tags.get("access") == "no" or tags.get("barrier") in _BLOCKING_BARRIERS


def walk_arrays(raw: Any) -> dict[str, np.ndarray]:
    """The ``walk_*`` arrays of a :class:`~dispatch.roads.osm.RawWalk` (deterministic numbering).

    Nodes are the OSM nodes sorted by id, then one copy per edge end at a blocked node; edges are
    sorted by (way, position in the file)."""
    node_id = raw.node_id
    n = len(node_id)
    u = np.searchsorted(node_id, raw.seg_a).astype(np.int64)
    v = np.searchsorted(node_id, raw.seg_b).astype(np.int64)
    length = haversine_m(raw.node_lat[u], raw.node_lon[u], raw.node_lat[v], raw.node_lon[v])
    osm = node_id.copy()
    lat = raw.node_lat.copy()
    lon = raw.node_lon.copy()
    if len(raw.blocked):
        extra = []
        for ends in (u, v):
            hit = np.flatnonzero(np.isin(node_id[ends], raw.blocked))
            for e in hit.tolist():
                extra.append(int(ends[e]))
                ends[e] = n + len(extra) - 1
        if extra:
            src = np.array(extra, dtype=np.int64)
            osm = np.concatenate([osm, node_id[src]])
            lat = np.concatenate([lat, raw.node_lat[src]])
            lon = np.concatenate([lon, raw.node_lon[src]])
    order = np.argsort(raw.seg_way, kind="stable")
    return {
        "walk_node_osm": osm,
        "walk_node_lat": lat,
        "walk_node_lon": lon,
        "walk_edge_u": u[order].astype(np.int32),
        "walk_edge_v": v[order].astype(np.int32),
        "walk_edge_len_m": np.asarray(length, dtype=np.float64)[order],
        "walk_edge_way": raw.seg_way[order],
        "walk_edge_kind": raw.seg_kind[order],
        "walk_edge_drive": raw.seg_drive_mask[order],
    }


class WalkGraph:
    """The walk network of a map: an undirected graph with edge lengths in metres (frozen).

    Nodes ``0..n_nodes-1`` carry their OSM id (``node_osm``; a node a person cannot pass appears
    once per edge meeting it); edges ``0..n_edges-1`` join ``edge_u`` and ``edge_v`` over
    ``edge_len_m`` metres, a segment of OSM way ``edge_way`` of kind ``WALK_KINDS[edge_kind]``;
    ``edge_drive`` is the bit mask of the classes whose access tags let them drive that way.

    Examples
    --------
    >>> import numpy as np
    >>> g = WalkGraph({"walk_node_osm": np.array([1, 2, 3]), "walk_node_lat": np.zeros(3),
    ...     "walk_node_lon": np.array([0.0, 0.001, 0.002]), "walk_edge_u": np.array([0, 1]),
    ...     "walk_edge_v": np.array([1, 2]), "walk_edge_len_m": np.array([111.2, 111.2]),
    ...     "walk_edge_way": np.array([7, 7]), "walk_edge_kind": np.array([7, 7]),
    ...     "walk_edge_drive": np.array([0, 0])})
    >>> e, f, d = g.locate(0.0001, 0.0015, 50.0)
    >>> int(e), round(f, 2), round(d, 1)
    (1, 0.5, 11.1)
    >>> nodes, dist = g.within(e, f, 100.0)
    >>> nodes.tolist(), dist.round(1).tolist()
    ([1, 2], [55.6, 55.6])
    """

    def __init__(self, arrays: Mapping[str, np.ndarray]) -> None:
        a = {k: np.asarray(arrays[k]) for k in WALK_ARRAY_NAMES}
        for x in a.values():
            x.flags.writeable = False
        self.arrays = a
        self.node_osm = a["walk_node_osm"]
        self.node_lat = a["walk_node_lat"]
        self.node_lon = a["walk_node_lon"]
        self.edge_u = a["walk_edge_u"]
        self.edge_v = a["walk_edge_v"]
        self.edge_len_m = a["walk_edge_len_m"]
        self.edge_way = a["walk_edge_way"]
        self.edge_kind = a["walk_edge_kind"]
        self.edge_drive = a["walk_edge_drive"]
        self.n_nodes = len(self.node_osm)
        self.n_edges = len(self.edge_u)
        # the original OSM nodes come first, strictly increasing; copies of blocked nodes follow
        down = np.flatnonzero(np.diff(self.node_osm) <= 0)
        self._n_sorted = int(down[0]) + 1 if len(down) else self.n_nodes
        self._csr: csr_matrix | None = None
        self._py: tuple[list[int], list[int], list[float], list[float]] | None = None
        self._csr_edge = np.zeros(0, dtype=np.int64)
        self._index: tuple[SnapIndex, tuple[Any, ...], np.ndarray] | None = None

    def __repr__(self) -> str:
        return f"<WalkGraph: {self.n_nodes} nodes, {self.n_edges} edges>"

    def csr(self) -> csr_matrix:
        """The symmetric adjacency matrix (minimum length over parallel edges), metres."""
        if self._csr is None:
            u = np.concatenate([self.edge_u, self.edge_v]).astype(np.int64)
            v = np.concatenate([self.edge_v, self.edge_u]).astype(np.int64)
            w = np.maximum(np.concatenate([self.edge_len_m, self.edge_len_m]), 1e-6)
            order = np.lexsort((w, v, u))
            u, v, w = u[order], v[order], w[order]
            first = np.ones(len(u), bool)
            first[1:] = (u[1:] != u[:-1]) | (v[1:] != v[:-1])
            eid = np.concatenate([np.arange(self.n_edges), np.arange(self.n_edges)])[order]
            self._csr = csr_matrix((w[first], (u[first], v[first])),
                                   shape=(self.n_nodes, self.n_nodes))  # fmt: skip
            self._csr_edge = eid[first]  # the edge of each stored entry (same order)
        return self._csr

    def _snap_index(self) -> tuple[SnapIndex, tuple[Any, ...], np.ndarray]:
        if self._index is None:
            m = self.n_edges
            lat = np.empty(2 * m)
            lon = np.empty(2 * m)
            lat[0::2], lat[1::2] = self.node_lat[self.edge_u], self.node_lat[self.edge_v]
            lon[0::2], lon[1::2] = self.node_lon[self.edge_u], self.node_lon[self.edge_v]
            g = RoadGraph({
                "arc_tail": self.edge_u, "arc_head": self.edge_v,
                "arc_twin": np.full(m, -1, dtype=np.int64), "arc_contraflow": np.zeros(m, bool),
                "node_lat": self.node_lat, "node_lon": self.node_lon,
                "geom_ptr": np.arange(0, 2 * m + 1, 2, dtype=np.int64),
                "geom_lat": lat, "geom_lon": lon,
            })  # fmt: skip
            idx = build_index(g)
            ones = np.ones(m, dtype=np.uint8)
            ones.flags.writeable = (
                False  # read-only like the drive mask: one compilation of _snap_point
            )
            self._index = (idx, tuple(idx), ones)
        return self._index

    def locate(self, lat: float, lon: float, tolerance_m: float) -> tuple[int, float, float]:
        """The walk edge nearest a point: ``(edge, fraction from edge_u, distance m)``; edge -1
        when none lies within ``tolerance_m``."""
        if self.n_edges == 0:
            return -1, 0.0, math.inf
        idx, packed, ones = self._snap_index()
        e, f, d = snap_one(idx, ones, lat, lon, 0, tolerance_m, packed=packed)
        return int(e), float(f), float(d)

    def point(self, edge: int, frac: float) -> tuple[float, float]:
        """``(lat, lon)`` at a fraction along an edge."""
        if self._py is None:  # plain lists: the per-call path reads a few items
            self._py = (self.edge_u.tolist(), self.edge_v.tolist(), self.node_lat.tolist(),
                        self.node_lon.tolist())  # fmt: skip
        eu, ev, la, lo = self._py
        u, v = eu[edge], ev[edge]
        return la[u] + frac * (la[v] - la[u]), lo[u] + frac * (lo[v] - lo[u])

    def within(self, edge: int, frac: float, limit_m: float) -> tuple[np.ndarray, np.ndarray]:
        """Nodes within ``limit_m`` metres on foot of a position on an edge, and their distances
        (a Dijkstra bounded by the limit, from both ends of the edge), sorted by node."""
        dist, _ = self._search(edge, frac, limit_m)
        nodes = np.flatnonzero(dist <= limit_m)
        return nodes, dist[nodes]

    def _search(self, edge: int, frac: float, limit_m: float) -> tuple[np.ndarray, np.ndarray]:
        csr = self.csr()
        u, v = int(self.edge_u[edge]), int(self.edge_v[edge])
        a = frac * float(self.edge_len_m[edge])
        dist = np.full(self.n_nodes, np.inf)
        pred = np.full(self.n_nodes, -1, dtype=np.int64)
        _bounded_dijkstra(csr.indptr, csr.indices, csr.data, u, a, v,
                          float(self.edge_len_m[edge]) - a, limit_m, dist, pred)  # fmt: skip
        return dist, pred

    def path_edges(self, edge: int, frac: float, node: int, limit_m: float) -> list[int]:
        """The edges of a shortest walk from a node to a position on an edge (the position's own
        edge last), or ``[]`` when the node is farther than ``limit_m``."""
        dist, pred = self._search(edge, frac, limit_m)
        if not dist[node] <= limit_m:
            return []
        csr = self.csr()
        out = []
        x = node
        while pred[x] >= 0:  # pred: the CSR entry (p -> x) the search came along
            j = int(pred[x])
            out.append(int(self._csr_edge[j]))
            x = int(np.searchsorted(csr.indptr, j, side="right")) - 1
        return [*out, edge]

    def nodes_of_osm(self, osm_ids: np.ndarray) -> np.ndarray:
        """Walk node index of each OSM node id (-1 where the id is not a walk node or is blocked)."""
        ids = self.node_osm[: self._n_sorted]
        i = np.searchsorted(ids, osm_ids)
        i = np.minimum(i, max(len(ids) - 1, 0))
        ok = (len(ids) > 0) & (ids[i] == osm_ids) if len(ids) else np.zeros(len(osm_ids), bool)
        out = np.where(ok, i, -1).astype(np.int64)
        if self._n_sorted < self.n_nodes:  # a blocked node's copies are never access points
            out[np.isin(osm_ids, self.node_osm[self._n_sorted :])] = -1
        return out


def walk_digest(arrays: Mapping[str, np.ndarray]) -> str:
    """SHA-256 of the ``walk_*`` arrays (the cache's checksum of the walk graph)."""
    import hashlib

    h = hashlib.sha256()
    for name in WALK_ARRAY_NAMES:
        a = np.ascontiguousarray(arrays[name])
        h.update(name.encode())
        h.update(str(a.dtype).encode())
        h.update(a.tobytes())
    return h.hexdigest()


@numba.njit(cache=True, nogil=True)
def _bounded_dijkstra(
    ptr: np.ndarray, idx: np.ndarray, wts: np.ndarray, u: int, a: float, v: int, b: float,
    limit: float, dist: np.ndarray, pred: np.ndarray,
) -> None:  # fmt: skip
    """Dijkstra from a point on an edge (``a`` metres to ``u``, ``b`` to ``v``), settling only
    nodes within ``limit``; ``pred[x]`` is the CSR entry the search reached ``x`` along (-1 at
    ``u``/``v``). ``dist`` and ``pred`` come filled with inf and -1."""
    h: list[tuple[float, int]] = [(a, u), (b, v)]
    heapq.heapify(h)
    if a <= limit:
        dist[u] = a
    if b <= limit and b < dist[v]:
        dist[v] = b
    while h:
        d, x = heapq.heappop(h)
        if d > dist[x] or d > limit:
            continue
        for j in range(ptr[x], ptr[x + 1]):
            y = int(np.int64(idx[j]))
            nd = d + wts[j]
            if nd <= limit and nd < dist[y]:
                dist[y] = nd
                pred[y] = j
                heapq.heappush(h, (float(nd), y))
