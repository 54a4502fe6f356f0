"""Compile OSM road segments into the network's arrays (no cache, no network object).

Pipeline (:func:`compile_roads`):

1. one arc per OSM segment and allowed direction, its length by haversine, with a bit mask of the
   classes that may drive it (access, one-way per class, vehicle height and length against the
   way's limits); the reverse of a one-way also gets a *contraflow* arc that only classes with
   ``contraflow`` enabled may use;
2. road rules at nodes, by expanding only the nodes that carry them, so that the graph stays a plain
   node-based graph and every routing kernel stays exact without knowing about them:

   * a *barrier* (or ``access=no`` node) that stops some classes becomes one node per road that
     meets it (its *mouths*: a stopped class drives up to it and turns back) joined by zero-length
     arcs open only to the classes that pass;
   * a node where a *turn restriction* applies (its via node, or the nodes of its via ways) becomes
     one arrival node per state (how the vehicle came in, as far as restrictions care) and one
     departure node per road out, joined by zero-length *turn arcs* whose class masks leave out the
     forbidden turns. States come from an Aho-Corasick automaton over the forbidden arc sequences, so
     ``no_*``/``only_*`` restrictions via a node or via several ways, per class, are exact. Roads
     along a via way are duplicated only while a vehicle is still inside the restricted sequence.
3. keep the largest strongly connected part (contraflow arcs left out), report the dropped share;
4. merge chains of pass-through nodes into one arc, but only along one OSM way with one class mask
   (never through an expanded node), so that an arc has one road category, speed limit and width:
   travel times are exact per original segment and no attribute is ever picked from a list (the
   cause of osmnx's hash-seed-dependent travel times);
5. number nodes by OSM id and arcs by (tail, head, ...): the same map and settings give the same
   arrays, byte for byte, in any process (:func:`digest`). Expanded nodes get synthetic negative
   keys ``-(osm_id * 10000 + k)`` in ``node_osmid`` (unique and sorted, e.g. for an export; they
   come first); ``node_osm`` holds the real OSM node id of every node.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

from dispatch.errors import MapError
from dispatch.geo import haversine_m
from dispatch.roads.osm import RawRoads, file_sha256, read_osm
from dispatch.roads.profiles import (
    RESTRICTED_SPEED_KMH,
    VEHICLE_CLASSES,
    NetworkSettings,
    dimension_mask,
    network_settings,
)

#: Bump when the compiled format or the compile rules change: old caches are then rebuilt.
FORMAT_VERSION = 7

ARRAY_NAMES = (
    "node_osmid", "node_lat", "node_lon",
    "arc_tail", "arc_head", "fwd_ptr", "rev_ptr", "rev_arc",
    "arc_length_m", "arc_cat", "arc_maxspeed_kmh", "arc_width_m", "arc_maxweight_t",
    "arc_contraflow", "arc_way", "arc_twin", "geom_ptr", "geom_node", "geom_lat", "geom_lon",
    "arc_tag_access", "node_osm",
)  # fmt: skip

ALL_CLASSES = (1 << len(VEHICLE_CLASSES)) - 1
_PHYSICAL, _PASSAGE, _TURN = 0, 1, 2


class _Automaton:
    """Aho-Corasick automaton over forbidden sequences of arcs, each with a class mask."""

    def __init__(self, patterns: list[tuple[tuple[int, ...], int]]) -> None:
        self.children: list[dict[int, int]] = [{}]
        self.fail = [0]
        self.depth = [0]
        term = [0]
        for seq, mask in patterns:
            s = 0
            for a in seq:
                nxt = self.children[s].get(a)
                if nxt is None:
                    nxt = len(self.children)
                    self.children[s][a] = nxt
                    self.children.append({})
                    self.fail.append(0)
                    self.depth.append(self.depth[s] + 1)
                    term.append(0)
                s = nxt
            term[s] |= mask
        self.out = list(term)
        queue = deque(self.children[0].values())
        while queue:
            s = queue.popleft()
            self.out[s] |= self.out[self.fail[s]]
            for a, t in self.children[s].items():
                f = self.fail[s]
                while f and a not in self.children[f]:
                    f = self.fail[f]
                self.fail[t] = self.children[f].get(a, 0) if s else 0
                queue.append(t)

    def step(self, s: int, a: int) -> tuple[int, int]:
        """``(next state, classes forbidden by this step)``; states without a future become their
        longest proper suffix that has one (so equal futures share one state)."""
        while s and a not in self.children[s]:
            s = self.fail[s]
        t = self.children[s].get(a, 0)
        forbidden = self.out[t]
        while t and not self.children[t]:
            t = self.fail[t]
        return t, forbidden


def _resolve_restrictions(
    raw: RawRoads,
    tails: np.ndarray,
    heads: np.ndarray,
    segs: np.ndarray,
    rev: np.ndarray,
    contra: np.ndarray,
    obey: int,
    stats: dict[str, Any],
) -> list[tuple[tuple[int, ...], int]]:
    """Turn restriction relations into forbidden arc sequences (arc positions, class mask)."""
    way_index = {int(w): i for i, w in enumerate(raw.way_id.tolist())}
    node_index = {int(n): i for i, n in enumerate(raw.node_id.tolist())}
    seg_way = raw.seg_way
    # normal arcs by (segment, reversed?), for the ways the relations name
    named = [way_index[w] for r in raw.restrictions
             for w in (*r.from_ways, *r.via_ways, *r.to_ways) if w in way_index]  # fmt: skip
    normal: dict[tuple[int, bool], int] = {}
    for a in np.flatnonzero(np.isin(seg_way[segs], named) & ~contra).tolist():
        normal[(int(segs[a]), bool(rev[a]))] = a

    def out_arcs(v: int) -> list[int]:
        return np.flatnonzero(tails == v).tolist()

    seg_start = np.searchsorted(seg_way, np.arange(len(raw.way_id) + 1))
    idx_a = np.searchsorted(raw.node_id, raw.seg_a)
    idx_b = np.searchsorted(raw.node_id, raw.seg_b)

    def way_segs(w: int) -> range:
        return range(int(seg_start[w]), int(seg_start[w + 1]))

    def way_nodes(w: int) -> list[int]:
        nodes: list[int] = []
        for s in way_segs(w):
            if not nodes or nodes[-1] != idx_a[s]:
                nodes.append(int(idx_a[s]))
            nodes.append(int(idx_b[s]))
        return nodes

    def arcs_into(w: int, v: int) -> list[int]:
        out = []
        for s in way_segs(w):
            if idx_b[s] == v and (s, False) in normal:
                out.append(normal[(s, False)])
            if idx_a[s] == v and (s, True) in normal:
                out.append(normal[(s, True)])
        return out

    def arcs_from(w: int, v: int) -> list[int]:
        out = []
        for s in way_segs(w):
            if idx_a[s] == v and (s, False) in normal:
                out.append(normal[(s, False)])
            if idx_b[s] == v and (s, True) in normal:
                out.append(normal[(s, True)])
        return out

    def path_along(w: int, start: int, end: int) -> list[int] | None:
        """Normal arcs along way ``w`` from node ``start`` to node ``end`` (None if impossible)."""
        ss = list(way_segs(w))
        pos_a = [i for i, s in enumerate(ss) if idx_a[s] == start or idx_b[s] == start]
        pos_b = [i for i, s in enumerate(ss) if idx_a[s] == end or idx_b[s] == end]
        if not pos_a or not pos_b or start == end:
            return None
        i0 = pos_a[0] if idx_a[ss[pos_a[0]]] == start else pos_a[-1] + 1
        i1 = pos_b[-1] + 1 if idx_b[ss[pos_b[-1]]] == end else pos_b[0]
        i0 = min(i0, len(ss))
        if i1 > i0:
            chosen = [(ss[i], False) for i in range(i0, i1)]
        else:
            chosen = [(ss[i], True) for i in range(i0 - 1, i1 - 1, -1)]
        arcs = [normal.get((int(s), r)) for s, r in chosen]
        if not arcs or any(a is None for a in arcs):
            return None
        node = start
        for a in arcs:
            assert a is not None
            if int(tails[a]) != node:
                return None
            node = int(heads[a])
        return [a for a in arcs if a is not None] if node == end else None

    patterns: list[tuple[tuple[int, ...], int]] = []
    applied = dict.fromkeys(VEHICLE_CLASSES, 0)
    for r in raw.restrictions:
        if r.conditional:
            stats["conditional_skipped"] += 1
            continue
        no_mask, only_mask = r.no_mask & obey, r.only_mask & obey
        if not (r.no_mask | r.only_mask):
            stats["not_for_these_classes"] += 1
            continue
        if not (no_mask | only_mask):
            stats["ignored_by_profile"] += 1
            continue
        froms = [way_index.get(w) for w in r.from_ways]
        tos = [way_index.get(w) for w in r.to_ways]
        vias_w = [way_index.get(w) for w in r.via_ways]
        if (
            None in froms or None in tos or None in vias_w or not froms or not tos
            or len(r.via_nodes) + (1 if r.via_ways else 0) != 1
        ):  # fmt: skip
            stats["unresolved"] += 1
            continue
        found: list[tuple[tuple[int, ...], int]] = []
        for fw in froms:
            for tw in tos:
                assert fw is not None and tw is not None
                if r.via_nodes:
                    v = node_index.get(r.via_nodes[0])
                    if v is None:
                        continue
                    via: list[int] = []
                    start = end = v
                else:
                    chain = [fw, *vias_w, tw]
                    nodes = [set(way_nodes(int(w))) for w in chain if w is not None]
                    joins = [nodes[i] & nodes[i + 1] for i in range(len(nodes) - 1)]
                    if any(len(j) != 1 for j in joins):
                        continue
                    points = [next(iter(j)) for j in joins]
                    via = []
                    ok = True
                    for i, w in enumerate(vias_w):
                        assert w is not None
                        piece = path_along(w, points[i], points[i + 1])
                        if piece is None:
                            ok = False
                            break
                        via += piece
                    if not ok:
                        continue
                    start, end = points[0], points[-1]
                f_arcs = arcs_into(fw, start)
                t_arcs = arcs_from(tw, end)
                if fw == tw and not via:  # a U-turn ban: only the reversals, not straight on
                    pairs = [(f, t) for f in f_arcs for t in t_arcs if segs[f] == segs[t]]
                else:
                    pairs = [(f, t) for f in f_arcs for t in t_arcs]
                if not pairs:
                    continue
                if no_mask:
                    found += [((f, *via, t), no_mask) for f, t in pairs]
                if only_mask:
                    for f in sorted({f for f, _ in pairs}):
                        allowed = {t for ff, t in pairs if ff == f}
                        found += [((f, *via, g), only_mask) for g in out_arcs(end)
                                  if g not in allowed]  # fmt: skip
        if not found:
            stats["unresolved"] += 1
            continue
        patterns += found
        stats["applied"] += 1
        if r.via_ways:
            stats["via_way"] += 1
        for i, name in enumerate(VEHICLE_CLASSES):
            if (no_mask | only_mask) >> i & 1:
                applied[name] += 1
    stats["applied_per_class"] = applied
    return patterns


def compile_roads(
    raw: RawRoads, settings: NetworkSettings | None = None
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Compile road segments into network arrays; return ``(arrays, stats)``.

    ``settings`` decide the class masks that depend on the vehicles (height, length, whether a class
    obeys turn restrictions); the cache is keyed by them.
    """
    settings = settings or network_settings()
    n_all = len(raw.node_id)
    idx_a = np.searchsorted(raw.node_id, raw.seg_a)
    idx_b = np.searchsorted(raw.node_id, raw.seg_b)
    seg_len = haversine_m(raw.node_lat[idx_a], raw.node_lon[idx_a],
                          raw.node_lat[idx_b], raw.node_lon[idx_b])  # fmt: skip
    dims = dimension_mask(settings, raw.way_maxheight_m, raw.way_maxlength_m)
    w = raw.seg_way
    f_m = (raw.way_fwd_mask & dims)[w]
    b_m = (raw.way_bwd_mask & dims)[w]
    o_m = (raw.way_open_mask & dims)[w]
    c_f = o_m & ~f_m
    c_b = o_m & ~b_m
    seg = np.arange(len(idx_a))
    groups = [  # (tails, heads, segments, contraflow?, masks)
        (idx_a, idx_b, f_m, False), (idx_b, idx_a, b_m, False),
        (idx_a, idx_b, c_f, True), (idx_b, idx_a, c_b, True),
    ]  # fmt: skip
    tails = np.concatenate([t[m > 0] for t, _, m, _ in groups])
    heads = np.concatenate([h[m > 0] for _, h, m, _ in groups])
    segs = np.concatenate([seg[m > 0] for _, _, m, _ in groups])
    contra = np.concatenate([np.full(int((m > 0).sum()), c) for _, _, m, c in groups])
    masks = np.concatenate([m[m > 0] for _, _, m, _ in groups]).astype(np.uint8)
    rev = np.concatenate([np.full(int((m > 0).sum()), r) for r, (_, _, m, _) in
                          zip((False, True, False, True), groups, strict=True)])  # fmt: skip

    # --- turn restrictions: forbidden arc sequences
    obey = sum(1 << i for i, name in enumerate(VEHICLE_CLASSES)
               if settings.profiles[name].obey_turn_restrictions)  # fmt: skip
    rstats: dict[str, Any] = {"relations": len(raw.restrictions), "applied": 0, "via_way": 0,
                              "conditional_skipped": 0, "not_for_these_classes": 0,
                              "ignored_by_profile": 0, "unresolved": 0}  # fmt: skip
    patterns = _resolve_restrictions(raw, tails, heads, segs, rev, contra, obey, rstats)
    restricted_nodes = {int(heads[p[i]]) for p, _ in patterns for i in range(len(p) - 1)}

    # --- barriers: per-class blocks at nodes (barrier and access tags, height restrictors)
    block = np.zeros(n_all, dtype=np.uint8)
    for osm, m in raw.node_block.items():
        block[int(np.searchsorted(raw.node_id, osm))] |= m
    for osm, h in raw.node_maxheight_m.items():
        for i, name in enumerate(VEHICLE_CLASSES):
            if h < settings.profiles[name].height_m:
                block[int(np.searchsorted(raw.node_id, osm))] |= 1 << i
    incident: dict[int, set[int]] = {v: set() for v in np.flatnonzero(block).tolist()}
    blocked = np.flatnonzero(block)
    for a in np.flatnonzero(np.isin(tails, blocked) | np.isin(heads, blocked)).tolist():
        for v in (int(tails[a]), int(heads[a])):
            if v in incident:
                incident[v].add(int(segs[a]))
    barrier_counts = dict.fromkeys(VEHICLE_CLASSES, 0)
    new_orig: list[int] = []  # original node of each new node
    new_group: list[int] = []  # 0: ordered with the original nodes; 1: after them
    gadget: list[tuple[int, int, int, int, int]] = []  # (tail, head, kind, mask, attr arc)
    barrier_patterns: list[tuple[tuple[int, ...], int]] = []
    for v in sorted(incident):
        arms = sorted(incident[v])
        if len(arms) < 2:
            continue  # a barrier at a dead end stops nothing
        for i, name in enumerate(VEHICLE_CLASSES):
            barrier_counts[name] += int(block[v]) >> i & 1
        if v in restricted_nodes:  # also a via node: stop passage with forbidden pairs
            ins = np.flatnonzero(heads == v)
            outs = np.flatnonzero(tails == v)
            barrier_patterns += [((int(e), int(g)), int(block[v])) for e in ins for g in outs
                                 if segs[e] != segs[g]]  # fmt: skip
            continue
        mouth = {}
        for s in arms:
            mouth[s] = n_all + len(new_orig)
            new_orig.append(v)
            new_group.append(0)
        sel_t = np.flatnonzero(tails == v)
        sel_h = np.flatnonzero(heads == v)
        tails[sel_t] = [mouth[int(s)] for s in segs[sel_t]]
        heads[sel_h] = [mouth[int(s)] for s in segs[sel_h]]
        passing = ALL_CLASSES & ~int(block[v])
        if passing:
            attr = {int(s): int(a) for a, s in zip(np.concatenate([sel_t, sel_h]).tolist(),
                                                   segs[np.concatenate([sel_t, sel_h])].tolist(),
                                                   strict=True)}  # fmt: skip
            for s1 in arms:
                for s2 in arms:
                    if s1 != s2:
                        gadget.append((mouth[s1], mouth[s2], _PASSAGE, passing, attr[s2]))
    patterns += barrier_patterns

    # --- expand restricted nodes: arrival states x departure roads
    in_r = {int(heads[p[i]]) for p, _ in patterns for i in range(len(p) - 1)}
    # a pass-through point of one way (inside a via way) had no U-turn before expansion: keep it so
    for v in sorted(in_r):
        ins = np.flatnonzero(heads == v)
        outs = np.flatnonzero(tails == v)
        ends = set(tails[ins].tolist()) | set(heads[outs].tolist())
        ways_here = set(raw.seg_way[segs[np.concatenate([ins, outs])]].tolist())
        if len(ends) == 2 and len(ways_here) == 1:
            patterns += [((int(e), int(g)), ALL_CLASSES) for e in ins for g in outs
                         if segs[e] == segs[g]]  # fmt: skip
    auto = _Automaton(patterns)
    r_arr = np.array(sorted(in_r), dtype=np.int64)
    touch_t = np.isin(tails, r_arr)
    touch_h = np.isin(heads, r_arr)
    out_arcs: dict[int, list[int]] = {}
    for a in np.flatnonzero(touch_t).tolist():
        out_arcs.setdefault(int(tails[a]), []).append(a)
    plain = np.flatnonzero(~touch_t & ~touch_h)  # arcs far from any restriction: kept as they are
    phys: list[tuple[int, int, int, bool]] = []  # (tail, head, arc, tracked copy?)
    arrival: dict[tuple[int, int], int] = {}
    departure: dict[tuple[int, int], int] = {}
    work: deque[tuple[int, int]] = deque()

    def new_node(orig: int, group: int) -> int:
        new_orig.append(orig)
        new_group.append(group)
        return n_all + len(new_orig) - 1

    def orig_of(x: int) -> int:
        return x if x < n_all else new_orig[x - n_all]

    def arrive(v: int, s: int) -> int:
        key = (v, s)
        node = arrival.get(key)
        if node is None:
            node = arrival[key] = new_node(orig_of(v), 1)
            work.append(key)
        return node

    for a in np.flatnonzero(~touch_t & touch_h).tolist():
        s, _ = auto.step(0, a)
        phys.append((int(tails[a]), arrive(int(heads[a]), s), a, False))
    while work:
        v, s = work.popleft()
        here = arrival[(v, s)]
        for a in out_arcs.get(v, []):
            s2, forbidden = auto.step(s, a)
            turn = ALL_CLASSES & ~forbidden & int(masks[a])
            if not turn:
                continue
            dep = departure.get((a, s2))
            if dep is None:
                tracked = auto.depth[s2] > 1
                dep = departure[(a, s2)] = new_node(orig_of(v), 1 if tracked else 0)
                head = int(heads[a])
                if head in in_r:
                    phys.append((dep, arrive(head, s2), a, tracked))
                else:
                    assert s2 == 0, "a restriction state reached a node outside the expansion"
                    phys.append((dep, head, a, tracked))
            gadget.append((here, dep, _TURN, turn, a))

    # --- one table of arcs: physical copies, then zero-length gadget arcs
    n_tot = n_all + len(new_orig)
    n_p = len(plain) + len(phys)
    cat = np.concatenate
    x_tail = cat([tails[plain], np.array([p[0] for p in phys] + [g[0] for g in gadget], np.int64)])
    x_head = cat([heads[plain], np.array([p[1] for p in phys] + [g[1] for g in gadget], np.int64)])
    x_src = cat([plain, np.array([p[2] for p in phys] + [g[4] for g in gadget], dtype=np.int64)])
    x_kind = np.array([_PHYSICAL] * n_p + [g[2] for g in gadget], dtype=np.int8)
    x_mask = cat([masks[x_src[:n_p]], np.array([g[3] for g in gadget], dtype=np.uint8)])
    x_tracked = cat([np.zeros(len(plain), bool),
                     np.array([p[3] for p in phys] + [False] * len(gadget), dtype=bool)])  # fmt: skip
    x_contra = np.where(x_kind == _PHYSICAL, contra[x_src], False)
    orig = np.concatenate([np.arange(n_all), np.array(new_orig, dtype=np.int64)])
    group = np.concatenate([np.zeros(n_all, np.int64), np.array(new_group, dtype=np.int64)])

    # largest strongly connected part of the normal (non-contraflow) arcs
    used = np.zeros(n_tot, bool)
    norm = ~x_contra
    used[x_tail[norm]] = True
    used[x_head[norm]] = True
    nodes_before = len(set(orig[used].tolist()))
    g = csr_matrix((np.ones(int(norm.sum())), (x_tail[norm], x_head[norm])), shape=(n_tot, n_tot))
    _, labels = connected_components(g, directed=True, connection="strong")
    sizes = np.bincount(labels[used])
    best = int(np.argmax(sizes))  # ties: lowest label = component of the lowest OSM id
    keep_node = (labels == best) & used
    keep_arc = keep_node[x_tail] & keep_node[x_head]
    sel = np.flatnonzero(keep_arc)
    x_tail, x_head, x_src = x_tail[sel], x_head[sel], x_src[sel]
    x_kind, x_mask, x_tracked, x_contra = x_kind[sel], x_mask[sel], x_tracked[sel], x_contra[sel]
    way = raw.seg_way[segs[x_src]]
    merge_key = np.where(
        x_kind == _PHYSICAL,
        way.astype(np.int64) * 64 + x_mask.astype(np.int64) * 2 + x_tracked,
        -1 - np.arange(len(sel)),
    )

    chains = _merge_chains(x_tail, x_head, merge_key, x_contra, orig)
    end_set = {int(x_tail[c[0]]) for c in chains} | {int(x_head[c[-1]]) for c in chains}
    # node keys: the OSM id, or for expanded nodes -(osm_id * 10000 + k), k counting down from 9999
    # in (group, creation) order: sorted by key, a via way's first copy precedes its tracked copies
    by_osm: dict[int, list[int]] = {}
    for k in sorted(end_set):
        if k >= n_all:
            by_osm.setdefault(int(raw.node_id[orig[k]]), []).append(k)
    key_of = {k: int(raw.node_id[k]) for k in end_set if k < n_all}
    for osm, ks in by_osm.items():
        if len(ks) > 9999:
            raise MapError(f"node {osm} would be expanded into {len(ks)} nodes (at most 9999)")
        for r, k in enumerate(sorted(ks, key=lambda k: (int(group[k]), k))):
            key_of[k] = -(osm * 10000 + 9999 - r)
    end_nodes = sorted(end_set, key=key_of.__getitem__)
    new_index = {old: i for i, old in enumerate(end_nodes)}
    osm_of = raw.node_id[orig[np.array(end_nodes, dtype=np.int64)]]
    node_key = np.array([key_of[k] for k in end_nodes], dtype=np.int64)

    seg_of = segs[x_src]
    rows = []
    for c in chains:
        geom = [int(orig[x_tail[c[0]]])] + [int(orig[x_head[a]]) for a in c]
        physical = x_kind[c[0]] == _PHYSICAL
        length = float(np.sum(seg_len[seg_of[c]])) if physical else 0.0
        rows.append((new_index[int(x_tail[c[0]])], new_index[int(x_head[c[-1]])], length,
                     c[0], bool(x_contra[c[0]]), tuple(raw.node_id[geom].tolist())))  # fmt: skip
    rows.sort(key=lambda r: (r[0], r[1], r[4], r[2], r[5], int(x_kind[r[3]]), int(x_src[r[3]])))
    m = len(rows)
    n = len(end_nodes)
    first = np.array([r[3] for r in rows], dtype=np.int64)
    arc_tail = np.array([r[0] for r in rows], dtype=np.int32)
    arc_head = np.array([r[1] for r in rows], dtype=np.int32)
    arc_len = np.array([r[2] for r in rows], dtype=np.float64)
    arc_contra = np.array([r[4] for r in rows], dtype=bool)
    kind = x_kind[first]
    src = x_src[first]
    arc_wayi = raw.seg_way[segs[src]]
    backwards = rev[src]
    speed = np.where(backwards, raw.way_maxspeed_bwd_kmh[arc_wayi],
                     raw.way_maxspeed_fwd_kmh[arc_wayi])  # fmt: skip
    slow = (raw.way_restricted_mask[arc_wayi] & raw.way_open_mask[arc_wayi]) > 0
    speed = np.where(slow, np.fmin(speed, RESTRICTED_SPEED_KMH), speed)
    speed = np.where(kind == _PHYSICAL, speed, np.nan)
    geoms = [r[5] for r in rows]
    twin = _twins(geoms, arc_tail, arc_head, kind, arc_contra, x_tracked[first])
    geom_ptr = np.zeros(m + 1, dtype=np.int64)
    geom_ptr[1:] = np.cumsum([len(gm) for gm in geoms])
    geom_node = np.fromiter(
        (x for gm in geoms for x in gm), dtype=np.int64, count=int(geom_ptr[-1])
    )
    gi = np.searchsorted(raw.node_id, geom_node)
    node_old = orig[np.array(end_nodes, dtype=np.int64)]
    fwd_ptr = np.zeros(n + 1, dtype=np.int32)
    fwd_ptr[1:] = np.cumsum(np.bincount(arc_tail, minlength=n))
    rev_arc = np.lexsort((np.arange(m), arc_head)).astype(np.int32)
    rev_ptr = np.zeros(n + 1, dtype=np.int32)
    rev_ptr[1:] = np.cumsum(np.bincount(arc_head, minlength=n))
    arrays = {
        "node_osmid": node_key,
        "node_lat": raw.node_lat[node_old],
        "node_lon": raw.node_lon[node_old],
        "arc_tail": arc_tail,
        "arc_head": arc_head,
        "fwd_ptr": fwd_ptr,
        "rev_ptr": rev_ptr,
        "rev_arc": rev_arc,
        "arc_length_m": arc_len,
        "arc_cat": raw.way_category[arc_wayi].astype(np.int8),
        "arc_maxspeed_kmh": speed,
        "arc_width_m": raw.way_width_m[arc_wayi],
        "arc_maxweight_t": raw.way_maxweight_t[arc_wayi],
        "arc_tag_access": x_mask[first].astype(np.uint8),
        "arc_contraflow": arc_contra,
        "arc_way": raw.way_id[arc_wayi],
        "arc_twin": twin,
        "geom_ptr": geom_ptr,
        "geom_node": geom_node,
        "geom_lat": raw.node_lat[gi],
        "geom_lon": raw.node_lon[gi],
        "node_osm": osm_of,
    }
    nodes_in_scc = len(set(orig[keep_node].tolist()))
    stats: dict[str, Any] = {
        "ways_read": raw.ways_total,
        "road_ways": len(raw.way_id),
        "segments": len(raw.seg_a),
        "dropped_node_refs": raw.dropped_refs,
        "nodes_before_scc": nodes_before,
        "nodes_in_scc": nodes_in_scc,
        "dropped_share": 0.0,
        "turn_restrictions": rstats,
        "barriers_per_class": barrier_counts,
        "expanded_nodes": int(sum(1 for k in end_nodes if k >= n_all)),
        "weight_signs_not_applied": int(np.isfinite(raw.way_weight_sign_t).sum()),
        "restricted_access_ways": int((raw.way_restricted_mask > 0).sum()),
    }
    stats["dropped_share"] = round(1.0 - nodes_in_scc / max(nodes_before, 1), 6)
    return arrays, stats


def _twins(
    geoms: list[tuple[int, ...]],
    tail: np.ndarray,
    head: np.ndarray,
    kind: np.ndarray,
    contra: np.ndarray,
    tracked: np.ndarray,
) -> np.ndarray:
    """The opposite direction of each arc: the physical arc with the reversed geometry (a normal
    arc before a contraflow one, a first copy before a via-way copy), or for a barrier passage the
    passage back; -1 for turn arcs and roads without an opposite direction."""
    m = len(geoms)
    twin = np.full(m, -1, dtype=np.int32)
    by_geom: dict[tuple[int, ...], list[int]] = {}
    by_ends: dict[tuple[int, int], int] = {}
    for i in range(m):
        if kind[i] == _PHYSICAL:
            by_geom.setdefault(geoms[i], []).append(i)
        elif kind[i] == _PASSAGE:
            by_ends[(int(tail[i]), int(head[i]))] = i
    for i in range(m):
        if kind[i] == _PHYSICAL:
            cands = [j for j in by_geom.get(geoms[i][::-1], []) if j != i]
            if cands:
                twin[i] = min(cands, key=lambda j: (bool(contra[j]), bool(tracked[j]), j))
        elif kind[i] == _PASSAGE:
            twin[i] = by_ends.get((int(head[i]), int(tail[i])), -1)
    return twin


def _merge_chains(
    tails: np.ndarray,
    heads: np.ndarray,
    way: np.ndarray,
    contra: np.ndarray,
    place: np.ndarray | None = None,
) -> list[list[int]]:
    """Group arcs into chains through pass-through nodes of one way (same way, same contraflow flag).

    ``place[v]`` is the OSM node a graph node stands for (expanded nodes share one): a node whose
    roads lead to two places is a pass-through even when one place is split into arrival and
    departure nodes, so that expansion adds no U-turn point beside a restricted junction.
    """
    m = len(tails)
    if place is None:
        place = np.arange(int(max(tails.max(initial=0), heads.max(initial=0))) + 1)
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
        nbrs = {int(place[tails[a]]) for a in ins} | {int(place[heads[a]]) for a in outs}
        if len(nbrs) != 2 or int(place[v]) in nbrs:
            continue
        pairing = {}
        for a in ins:
            cont = [b for b in outs if place[heads[b]] != place[tails[a]] and key(b) == key(a)]
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
    arrays, stats = compile_roads(raw, settings)
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
