"""Compile OSM road segments into the network's arrays (no cache, no network object).

Pipeline (:func:`compile_roads`):

1. one arc per OSM segment and allowed direction, its length by haversine; one-way segments also get a
   *contraflow* arc that only classes with ``contraflow`` enabled may use;
2. keep the largest strongly connected part (contraflow arcs left out), report the dropped share;
3. merge chains of pass-through nodes into one arc, but only along one OSM way, so that an arc has one
   road category, speed limit and width: travel times are exact per original segment and no attribute
   is ever picked from a list (the cause of osmnx's hash-seed-dependent travel times);
4. number nodes by OSM id and arcs by (tail, head, ...): the same map and settings give the same arrays,
   byte for byte, in any process (:func:`digest`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

from dispatch.errors import MapError
from dispatch.geo import haversine_m
from dispatch.roads.osm import RawRoads, file_sha256, read_osm
from dispatch.roads.profiles import NetworkSettings

#: Bump when the compiled format or the compile rules change: old caches are then rebuilt.
FORMAT_VERSION = 5

ARRAY_NAMES = (
    "node_osmid", "node_lat", "node_lon",
    "arc_tail", "arc_head", "fwd_ptr", "rev_ptr", "rev_arc",
    "arc_length_m", "arc_cat", "arc_maxspeed_kmh", "arc_width_m", "arc_maxweight_t",
    "arc_contraflow", "arc_way", "arc_twin", "geom_ptr", "geom_node", "geom_lat", "geom_lon",
    "arc_tag_access",
)  # fmt: skip


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


def digest(arrays: Mapping[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for name in ARRAY_NAMES:
        a = np.ascontiguousarray(arrays[name])
        h.update(name.encode())
        h.update(str(a.dtype).encode())
        h.update(a.tobytes())
    return h.hexdigest()


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
        "digest": digest(arrays),
    }
    return arrays, meta
