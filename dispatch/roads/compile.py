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
     along a via way are duplicated only while a vehicle is still inside the restricted sequence;
   * a junction where turns cost time (``NetworkSettings.turn_costs``: signalised junctions by
     default, every junction, or none) is expanded the same way with one arrival node per road in,
     and each turn arc records its kind (``arc_turn``: straight, near, far, U-turn, from the bearings
     of the segments at the junction, :func:`dispatch.roads.delays.turn_kind`), which
     :func:`dispatch.roads.delays.arc_delay_s` prices per class (docs/turn-costs.md).
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
from scipy.sparse.csgraph import breadth_first_order, connected_components

from dispatch.errors import MapError
from dispatch.geo import haversine_m
from dispatch.progress import Progress, task
from dispatch.roads.delays import (
    TURN_NONE,
    bearings_deg,
    control_counts,
    junction_nodes,
    signal_junctions,
    turn_kind,
)
from dispatch.roads.osm import RawRoads, file_sha256, read_osm, with_hgv_exemption
from dispatch.roads.profiles import (
    ACCESS_KEYS,
    RESTRICTED_SPEED_KMH,
    VEHICLE_CLASSES,
    NetworkSettings,
    dimension_mask,
    hgv_exempt_mask,
    network_settings,
)

#: Bump when the compiled format or the compile rules change: old caches are then rebuilt.
FORMAT_VERSION = 9

ARRAY_NAMES = (
    "node_osmid", "node_lat", "node_lon",
    "arc_tail", "arc_head", "fwd_ptr", "rev_ptr", "rev_arc",
    "arc_length_m", "arc_cat", "arc_maxspeed_kmh", "arc_width_m", "arc_maxweight_t",
    "arc_contraflow", "arc_way", "arc_twin", "geom_ptr", "geom_node", "geom_lat", "geom_lon",
    "arc_tag_access", "node_osm",
    "arc_turn",  # turn arcs: straight / near / far / U-turn (dispatch.roads.delays.turn_kind)
    "arc_signals", "arc_stops", "arc_gates",  # dispatch.roads.delays
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
    if not raw.restrictions:
        stats["applied_per_class"] = dict.fromkeys(VEHICLE_CLASSES, 0)
        return []
    # way and node positions of the ids the relations name (the last way of a repeated id)
    named_ids = {w for r in raw.restrictions for w in (*r.from_ways, *r.via_ways, *r.to_ways)}
    named_at = np.flatnonzero(np.isin(raw.way_id, np.array(sorted(named_ids), dtype=np.int64)))
    way_index = {int(raw.way_id[i]): int(i) for i in named_at.tolist()}
    via_ids = np.array(sorted({n for r in raw.restrictions for n in r.via_nodes}), dtype=np.int64)
    at = np.minimum(np.searchsorted(raw.node_id, via_ids), max(len(raw.node_id) - 1, 0))
    node_index = {int(n): int(i) for n, i in zip(via_ids.tolist(), at.tolist(), strict=True)
                  if len(raw.node_id) and raw.node_id[i] == n}  # fmt: skip
    seg_way = raw.seg_way
    # normal arcs by (segment, reversed?), for the ways the relations name
    named = [way_index[w] for r in raw.restrictions
             for w in (*r.from_ways, *r.via_ways, *r.to_ways) if w in way_index]  # fmt: skip
    normal: dict[tuple[int, bool], int] = {}
    for a in np.flatnonzero(np.isin(seg_way[segs], named) & ~contra).tolist():
        normal[(int(segs[a]), bool(rev[a]))] = a

    by_tail: list[tuple[np.ndarray, np.ndarray]] = []

    def out_arcs(v: int) -> list[int]:
        if not by_tail:  # built on first use (only_* restrictions)
            by_tail.append(_grouped(tails, int(tails.max(initial=v)) + 1))
        ptr, order = by_tail[0]
        return order[ptr[v] : ptr[v + 1]].tolist() if v + 1 < len(ptr) else []

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


def _between(inside: np.ndarray, tails: np.ndarray, heads: np.ndarray) -> np.ndarray:
    """Nodes reachable from a node of ``inside`` that also reach one (along the arcs)."""
    n = len(inside)
    src = np.flatnonzero(inside)
    out = []
    for a, b in ((tails, heads), (heads, tails)):
        # one extra node, n, with an arc to every node inside: a search from it
        t = np.concatenate([a, np.full(len(src), n)])
        h = np.concatenate([b, src])
        g = csr_matrix((np.ones(len(t), dtype=np.int8), (t, h)), shape=(n + 1, n + 1))
        seen = np.zeros(n + 1, dtype=bool)
        seen[breadth_first_order(g, n, directed=True, return_predecessors=False)] = True
        out.append(seen[:n])
    return out[0] & out[1]


def _grouped(keys: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``(ptr, order)``: the positions of ``keys`` (ints in ``[0, n)``) grouped by key, ascending
    within a key: the positions with key ``v`` are ``order[ptr[v]:ptr[v + 1]]``."""
    order = np.argsort(keys, kind="stable")
    ptr = np.zeros(n + 1, dtype=np.int64)
    ptr[1:] = np.cumsum(np.bincount(keys, minlength=n))
    return ptr, order


def _arcs_at(arcs: np.ndarray, ends: np.ndarray) -> dict[int, list[int]]:
    """``{node: arcs ending there}`` for the given ``arcs`` (ascending), keyed by ``ends[arcs]``."""
    out: dict[int, list[int]] = {}
    for a, v in zip(arcs.tolist(), ends[arcs].tolist(), strict=True):
        out.setdefault(v, []).append(a)
    return out


def compile_roads(
    raw: RawRoads, settings: NetworkSettings | None = None
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Compile road segments into network arrays; return ``(arrays, stats)``.

    ``settings`` decide the class masks that depend on the vehicles (height, length, whether a class
    obeys turn restrictions); the cache is keyed by them.

    Every step works on whole arrays (numpy/scipy); Python loops run only over the junctions that
    carry a barrier, a turn restriction or turn costs (a few hundred on a city map by default; every
    junction with ``turn_costs="junctions"``), never over every arc.
    """
    settings = settings or network_settings()
    with task("compiling the road network", total=6, unit="step") as progress:
        return _compile(raw, settings, progress)


def _compile(
    raw: RawRoads, settings: NetworkSettings, progress: Progress
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
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
    progress.update(1)

    # --- turn restrictions: forbidden arc sequences
    obey = sum(1 << i for i, name in enumerate(VEHICLE_CLASSES)
               if settings.profiles[name].obey_turn_restrictions)  # fmt: skip
    rstats: dict[str, Any] = {"relations": len(raw.restrictions), "applied": 0, "via_way": 0,
                              "conditional_skipped": 0, "not_for_these_classes": 0,
                              "ignored_by_profile": 0, "unresolved": 0}  # fmt: skip
    patterns = _resolve_restrictions(raw, tails, heads, segs, rev, contra, obey, rstats)
    restricted_nodes = {int(heads[p[i]]) for p, _ in patterns for i in range(len(p) - 1)}

    # --- turn costs: the junctions that get them, and the bearing of every arc (one segment each)
    mode = settings.turn_costs
    if mode == "signals":
        costed = set(signal_junctions(raw).tolist())
    elif mode == "junctions":
        costed = set(junction_nodes(raw).tolist())
    else:
        costed = set()
    a_from = np.where(rev, idx_b[segs], idx_a[segs])
    a_to = np.where(rev, idx_a[segs], idx_b[segs])
    bearing = bearings_deg(raw.node_lat[a_from], raw.node_lon[a_from], raw.node_lat[a_to],
                           raw.node_lon[a_to])  # fmt: skip
    near_is_right = settings.driving_side == "right"

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
    near = np.flatnonzero(np.isin(tails, blocked) | np.isin(heads, blocked))
    for a in near.tolist():
        for v in (int(tails[a]), int(heads[a])):
            if v in incident:
                incident[v].add(int(segs[a]))
    # arcs leaving / entering each barrier node, read before any of them is rewired (rewiring a
    # node's arcs changes only that node's entries)
    out_at, in_at = _arcs_at(near, tails), _arcs_at(near, heads)
    barrier_counts = dict.fromkeys(VEHICLE_CLASSES, 0)
    new_orig: list[int] = []  # original node of each new node
    new_group: list[int] = []  # 0: ordered with the original nodes; 1: after them
    # (tail, head, kind, mask, attr arc, turn kind)
    gadget: list[tuple[int, int, int, int, int, int]] = []
    barrier_patterns: list[tuple[tuple[int, ...], int]] = []
    for v in sorted(incident):
        arms = sorted(incident[v])
        if len(arms) < 2:
            continue  # a barrier at a dead end stops nothing
        for i, name in enumerate(VEHICLE_CLASSES):
            barrier_counts[name] += int(block[v]) >> i & 1
        sel_t = np.array(out_at.get(v, []), dtype=np.int64)
        sel_h = np.array(in_at.get(v, []), dtype=np.int64)
        if v in restricted_nodes or v in costed:  # expanded anyway: forbid passage by pairs
            barrier_patterns += [((int(e), int(g)), int(block[v])) for e in sel_h for g in sel_t
                                 if segs[e] != segs[g]]  # fmt: skip
            continue
        mouth = {}
        for s in arms:
            mouth[s] = n_all + len(new_orig)
            new_orig.append(v)
            new_group.append(0)
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
                        gadget.append(
                            (mouth[s1], mouth[s2], _PASSAGE, passing, attr[s2], TURN_NONE)
                        )
    patterns += barrier_patterns

    # --- expand restricted nodes: arrival states x departure roads
    in_r = {int(heads[p[i]]) for p, _ in patterns for i in range(len(p) - 1)}
    expanded = in_r | costed
    r_arr = np.array(sorted(expanded), dtype=np.int64)
    touch_t = np.isin(tails, r_arr)
    touch_h = np.isin(heads, r_arr)
    out_arcs = _arcs_at(np.flatnonzero(touch_t), tails)
    in_arcs = _arcs_at(np.flatnonzero(touch_h), heads)
    # a pass-through point of one way (inside a via way) had no U-turn before expansion: keep it so
    for v in sorted(in_r):
        ins = np.array(in_arcs.get(v, []), dtype=np.int64)
        outs = np.array(out_arcs.get(v, []), dtype=np.int64)
        ends = set(tails[ins].tolist()) | set(heads[outs].tolist())
        ways_here = set(raw.seg_way[segs[np.concatenate([ins, outs])]].tolist())
        if len(ends) == 2 and len(ways_here) == 1:
            patterns += [((int(e), int(g)), ALL_CLASSES) for e in ins for g in outs
                         if segs[e] == segs[g]]  # fmt: skip
    auto = _Automaton(patterns)
    plain = np.flatnonzero(~touch_t & ~touch_h)  # arcs far from any restriction: kept as they are
    phys: list[tuple[int, int, int, bool]] = []  # (tail, head, arc, tracked copy?)
    # arrival nodes by (node, state, arc in): the arc in only where turns cost (-1 elsewhere)
    arrival: dict[tuple[int, int, int], int] = {}
    departure: dict[tuple[int, int], int] = {}
    work: deque[tuple[int, int, int]] = deque()

    def new_node(orig: int, group: int) -> int:
        new_orig.append(orig)
        new_group.append(group)
        return n_all + len(new_orig) - 1

    def orig_of(x: int) -> int:
        return x if x < n_all else new_orig[x - n_all]

    def arrive(v: int, s: int, a_in: int) -> int:
        key = (v, s, a_in if v in costed else -1)
        node = arrival.get(key)
        if node is None:
            node = arrival[key] = new_node(orig_of(v), 1)
            work.append(key)
        return node

    for a in np.flatnonzero(~touch_t & touch_h).tolist():
        s, _ = auto.step(0, a)
        phys.append((int(tails[a]), arrive(int(heads[a]), s, a), a, False))
    while work:
        v, s, e = work.popleft()
        here = arrival[(v, s, e)]
        for a in out_arcs.get(v, []):
            s2, forbidden = auto.step(s, a)
            turn = ALL_CLASSES & ~forbidden & int(masks[a])
            if not turn:
                continue
            kind_of_turn = (
                TURN_NONE
                if e < 0
                else turn_kind(
                    float(bearing[e]), float(bearing[a]), bool(segs[e] == segs[a]), near_is_right
                )
            )
            dep = departure.get((a, s2))
            if dep is None:
                tracked = auto.depth[s2] > 1
                dep = departure[(a, s2)] = new_node(orig_of(v), 1 if tracked else 0)
                head = int(heads[a])
                if head in expanded:
                    phys.append((dep, arrive(head, s2, a), a, tracked))
                else:
                    assert s2 == 0, "a restriction state reached a node outside the expansion"
                    phys.append((dep, head, a, tracked))
            gadget.append((here, dep, _TURN, turn, a, kind_of_turn))
    progress.update(1)

    # --- one table of arcs: physical copies, then zero-length gadget arcs
    n_tot = n_all + len(new_orig)
    n_p = len(plain) + len(phys)
    cat = np.concatenate
    x_tail = cat([tails[plain], np.array([p[0] for p in phys] + [g[0] for g in gadget], np.int64)])
    x_head = cat([heads[plain], np.array([p[1] for p in phys] + [g[1] for g in gadget], np.int64)])
    x_src = cat([plain, np.array([p[2] for p in phys] + [g[4] for g in gadget], dtype=np.int64)])
    x_kind = cat([np.full(n_p, _PHYSICAL, np.int8), np.array([g[2] for g in gadget], np.int8)])
    x_mask = cat([masks[x_src[:n_p]], np.array([g[3] for g in gadget], dtype=np.uint8)])
    x_tracked = cat([np.zeros(len(plain), bool),
                     np.array([p[3] for p in phys] + [False] * len(gadget), dtype=bool)])  # fmt: skip
    x_contra = np.where(x_kind == _PHYSICAL, contra[x_src], False)
    x_turn = cat([np.full(n_p, TURN_NONE, np.int8), np.array([g[5] for g in gadget], np.int8)])
    orig = np.concatenate([np.arange(n_all), np.array(new_orig, dtype=np.int64)])
    group = np.concatenate([np.zeros(n_all, np.int64), np.array(new_group, dtype=np.int64)])
    del tails, heads, touch_t, touch_h, plain

    # largest strongly connected part of the normal (non-contraflow) arcs
    used = np.zeros(n_tot, bool)
    norm = ~x_contra
    used[x_tail[norm]] = True
    used[x_head[norm]] = True
    nodes_before = _count_distinct(orig[used], n_all)
    g = csr_matrix((np.ones(int(norm.sum())), (x_tail[norm], x_head[norm])), shape=(n_tot, n_tot))
    _, labels = connected_components(g, directed=True, connection="strong")
    sizes = np.bincount(labels[used])
    best = int(np.argmax(sizes))  # ties: lowest label = component of the lowest OSM id
    keep_node = (labels == best) & used
    if mode != "off" and x_contra.any() and any(p.contraflow for p in settings.profiles.values()):
        # the departure node of a contraflow arc out of a junction expanded for turn costs (and
        # the arrival node it leads to) are on no normal cycle: keep the expanded nodes on a path
        # out of the part and back into it, or contraflow would stop at every costed junction
        # (with turn costs off the compiler stays main's, which drops them at restricted nodes;
        # with no class driving contraflow, the copies would only grow the graph)
        keep_node |= _between(keep_node, x_tail, x_head) & (np.arange(n_tot) >= n_all)
    keep_arc = keep_node[x_tail] & keep_node[x_head]
    sel = np.flatnonzero(keep_arc)
    nodes_in_scc = _count_distinct(orig[keep_node], n_all)
    del g, labels, used, norm, keep_node, keep_arc
    x_tail, x_head, x_src = x_tail[sel], x_head[sel], x_src[sel]
    x_kind, x_mask, x_tracked, x_contra = x_kind[sel], x_mask[sel], x_tracked[sel], x_contra[sel]
    x_turn = x_turn[sel]
    way = raw.seg_way[segs[x_src]]
    merge_key = np.where(
        x_kind == _PHYSICAL,
        way.astype(np.int64) * 64 + x_mask.astype(np.int64) * 2 + x_tracked,
        -1 - np.arange(len(sel)),
    )
    progress.update(1)

    sel_len = seg_len[segs]  # length of each arc of the first table
    node_key, end_nodes, first, arc_tail, arc_head, arc_len, arc_contra, geom_ptr, gi = _rows(
        x_tail, x_head, x_kind, x_src, x_contra, merge_key, orig, group, n_all, sel_len,
        raw.node_id, progress,
    )  # fmt: skip
    del x_tail, x_head, merge_key, sel_len
    m = len(arc_tail)
    n = len(end_nodes)
    osm_of = raw.node_id[orig[end_nodes]]
    geom_node = raw.node_id[gi]

    kind = x_kind[first]
    src = x_src[first]
    arc_wayi = raw.seg_way[segs[src]]
    backwards = rev[src]
    speed = np.where(backwards, raw.way_maxspeed_bwd_kmh[arc_wayi],
                     raw.way_maxspeed_fwd_kmh[arc_wayi])  # fmt: skip
    slow = (raw.way_restricted_mask[arc_wayi] & raw.way_open_mask[arc_wayi]) > 0
    speed = np.where(slow, np.fmin(speed, RESTRICTED_SPEED_KMH), speed)
    speed = np.where(kind == _PHYSICAL, speed, np.nan)
    twin = _twins(geom_ptr, geom_node, arc_tail, arc_head, kind, arc_contra, x_tracked[first])
    node_old = orig[end_nodes]
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
        "arc_turn": x_turn[first],
    }
    turn_arcs = np.flatnonzero(arrays["arc_turn"] != TURN_NONE)
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
        "expanded_nodes": int(np.count_nonzero(end_nodes >= n_all)),
        "turn_costs": {
            "mode": mode,
            "driving_side": settings.driving_side,
            "junctions": len(np.unique(osm_of[arc_tail[turn_arcs]])),
            "turn_arcs": {
                k: int(np.count_nonzero(arrays["arc_turn"] == i))
                for i, k in enumerate(("straight", "near", "far", "u_turn"))
            },
        },  # fmt: skip
        "weight_signs_not_applied": int(np.isfinite(raw.way_weight_sign_t).sum()),
        "restricted_access_ways": int((raw.way_restricted_mask > 0).sum()),
    }
    stats["dropped_share"] = round(1.0 - nodes_in_scc / max(nodes_before, 1), 6)
    progress.update(1)
    return arrays, stats


def _rows(
    x_tail: np.ndarray,
    x_head: np.ndarray,
    x_kind: np.ndarray,
    x_src: np.ndarray,
    x_contra: np.ndarray,
    merge_key: np.ndarray,
    orig: np.ndarray,
    group: np.ndarray,
    n_all: int,
    sel_len: np.ndarray,
    node_id: np.ndarray,
    progress: Progress,
) -> tuple[np.ndarray, ...]:
    """Merge the arcs into chains and turn each chain into one row of the network.

    Returns ``(node_key, end_nodes, first, arc_tail, arc_head, arc_len, arc_contra, geom_ptr,
    geom_index)``: the nodes by key, and the rows in their final order: each row's first arc,
    ends, length (its segments summed in chain order), contraflow flag and geometry (positions in
    ``node_id``).
    """
    chain_ptr, chain_arc = _merge_chains(x_tail, x_head, merge_key * 2 + x_contra, orig)
    c_first = chain_arc[chain_ptr[:-1]]
    c_last = chain_arc[chain_ptr[1:] - 1]
    n_tot = len(orig)
    is_end = np.zeros(n_tot, dtype=bool)
    is_end[x_tail[c_first]] = True
    is_end[x_head[c_last]] = True
    node_key, end_nodes = _node_keys(node_id, orig, group, n_all, np.flatnonzero(is_end))
    new_index = np.full(n_tot, -1, dtype=np.int64)
    new_index[end_nodes] = np.arange(len(end_nodes))
    progress.update(1)

    # --- one row per chain: ends, length (summed in chain order), geometry, sort order
    n_chain = len(c_first)
    c_size = np.diff(chain_ptr)
    r_tail = new_index[x_tail[c_first]]
    r_head = new_index[x_head[c_last]]
    r_contra = x_contra[c_first]
    r_kind = x_kind[c_first]
    r_src = x_src[c_first]
    r_len = np.zeros(n_chain, dtype=np.float64)
    arc_seg_len = sel_len[x_src[chain_arc]]  # in chain order
    physical = r_kind == _PHYSICAL
    # chains of one size at a time: one np.sum per row of a 2-D block rounds as np.sum over the
    # chain's own list of lengths did (numpy's pairwise summation depends on the size only)
    by_size = np.flatnonzero(physical)
    by_size = by_size[np.argsort(c_size[by_size], kind="stable")]
    sizes = c_size[by_size]
    cuts = np.flatnonzero(np.r_[True, sizes[1:] != sizes[:-1], True])
    for lo, hi in zip(cuts[:-1].tolist(), cuts[1:].tolist(), strict=True):
        rows_k = by_size[lo:hi]
        block = chain_ptr[rows_k][:, None] + np.arange(int(sizes[lo]))
        r_len[rows_k] = arc_seg_len[block].sum(axis=1)
    # geometry of chain i: its first tail, then every head (positions in node_id)
    g_ptr = chain_ptr + np.arange(n_chain + 1)
    g_node = np.empty(int(g_ptr[-1]), dtype=np.int64)
    g_node[g_ptr[:-1]] = orig[x_tail[c_first]]
    g_node[np.arange(len(chain_arc)) + np.repeat(np.arange(n_chain) + 1, c_size)] = orig[
        x_head[chain_arc]
    ]
    order = np.lexsort((r_src, r_kind, r_len, r_contra, r_head, r_tail))
    order = _sort_ties(order, (r_tail, r_head, r_contra, r_len), g_ptr, g_node, node_id,
                       r_kind, r_src)  # fmt: skip
    m = n_chain
    first = c_first[order]
    arc_tail = r_tail[order].astype(np.int32)
    arc_head = r_head[order].astype(np.int32)
    arc_len = r_len[order]
    arc_contra = r_contra[order]
    g_size = (c_size + 1)[order]
    geom_ptr = np.zeros(m + 1, dtype=np.int64)
    geom_ptr[1:] = np.cumsum(g_size)
    gi = g_node[np.repeat(g_ptr[:-1][order] - geom_ptr[:-1], g_size) +
                np.arange(int(geom_ptr[-1]))]  # fmt: skip
    progress.update(1)
    return node_key, end_nodes, first, arc_tail, arc_head, arc_len, arc_contra, geom_ptr, gi


def _count_distinct(values: np.ndarray, n: int) -> int:
    """How many distinct values in ``[0, n)`` ``values`` holds."""
    seen = np.zeros(n, dtype=bool)
    seen[values] = True
    return int(np.count_nonzero(seen))


def _node_keys(
    node_id: np.ndarray, orig: np.ndarray, group: np.ndarray, n_all: int, nodes: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``(keys, nodes)``: the graph nodes ``nodes`` (ascending) sorted by their key.

    A node's key is its OSM id, or for an expanded node ``-(osm_id * 10000 + k)``, ``k`` counting
    down from 9999 in (group, creation) order: sorted by key, a via way's first copy precedes its
    tracked copies.
    """
    osm = node_id[orig[nodes]]
    keys = osm.copy()
    new = np.flatnonzero(nodes >= n_all)
    if len(new):
        k, k_osm = nodes[new], osm[new]
        by = np.lexsort((k, group[k], k_osm))
        s_osm = k_osm[by]
        starts = np.flatnonzero(np.r_[True, s_osm[1:] != s_osm[:-1]])
        run = np.diff(np.r_[starts, len(by)])
        rank = np.arange(len(by)) - np.repeat(starts, run)
        if run.max() > 9999:
            bad = np.flatnonzero(run > 9999)  # name the one met first in node order
            worst = bad[np.argmin(np.minimum.reduceat(k[by], starts)[bad])]
            raise MapError(f"node {int(s_osm[starts[worst]])} would be expanded into "
                           f"{int(run[worst])} nodes (at most 9999)")  # fmt: skip
        keys[new[by]] = -(s_osm * 10000 + 9999 - rank)
    order = np.argsort(keys, kind="stable")
    return keys[order], nodes[order]


def _sort_ties(
    order: np.ndarray,
    keys: tuple[np.ndarray, ...],
    g_ptr: np.ndarray,
    g_node: np.ndarray,
    node_id: np.ndarray,
    kind: np.ndarray,
    src: np.ndarray,
) -> np.ndarray:
    """Reorder runs of rows equal in ``keys`` by (geometry, kind, source arc), the full key.

    ``order`` sorts rows by ``(*keys, kind, src)``; rows equal in ``keys`` (parallel arcs of the
    same length) are rare, so their geometries are compared in Python, as tuples.
    """
    if len(order) < 2:
        return order
    same = np.ones(len(order) - 1, dtype=bool)
    for key in keys:
        k = key[order]
        same &= k[1:] == k[:-1]
    if not same.any():
        return order
    order = order.copy()
    tie = np.flatnonzero(same)
    run_starts = tie[np.r_[True, tie[1:] != tie[:-1] + 1]]
    for s0 in run_starts.tolist():
        s1 = s0 + 1
        while s1 < len(same) and same[s1]:
            s1 += 1
        rows = order[s0 : s1 + 1].tolist()
        rows.sort(key=lambda r: (tuple(node_id[g_node[g_ptr[r] : g_ptr[r + 1]]].tolist()),
                                 int(kind[r]), int(src[r])))  # fmt: skip
        order[s0 : s1 + 1] = rows
    return order


_MIX1, _MIX2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
_STEP = np.uint64(0x9E3779B97F4A7C15)


def _mix(x: np.ndarray) -> np.ndarray:
    """A bijective 64-bit mixer (splitmix64's finaliser), element-wise and wrapping."""
    x = x ^ (x >> np.uint64(30))  # a new array: the caller's is left as it is
    x *= _MIX1
    x ^= x >> np.uint64(27)
    x *= _MIX2
    x ^= x >> np.uint64(31)
    return x


def _twins(
    geom_ptr: np.ndarray,
    geom_node: np.ndarray,
    tail: np.ndarray,
    head: np.ndarray,
    kind: np.ndarray,
    contra: np.ndarray,
    tracked: np.ndarray,
) -> np.ndarray:
    """The opposite direction of each arc: the physical arc with the reversed geometry (a normal
    arc before a contraflow one, a first copy before a via-way copy), or for a barrier passage the
    passage back; -1 for turn arcs and roads without an opposite direction.

    Geometries are matched by a hash of the node sequence read forwards and backwards, and every
    match is then checked node by node (a hash collision never pairs two arcs)."""
    m = len(tail)
    twin = np.full(m, -1, dtype=np.int32)
    phys = np.flatnonzero(kind == _PHYSICAL)
    if len(phys):
        size_all = np.diff(geom_ptr)
        pos = np.arange(len(geom_node)) - np.repeat(geom_ptr[:-1], size_all)
        with np.errstate(over="ignore"):
            node_h = geom_node.astype(np.uint64)
            size_h = _mix(size_all.astype(np.uint64))
            terms = _mix(node_h ^ (pos.astype(np.uint64) * _STEP))
            h_fwd = (np.add.reduceat(terms, geom_ptr[:-1]) + size_h)[phys]
            np.subtract(np.repeat(size_all - 1, size_all), pos, out=pos)  # read backwards
            terms = _mix(node_h ^ (pos.astype(np.uint64) * _STEP))
            h_back = (np.add.reduceat(terms, geom_ptr[:-1]) + size_h)[phys]
            del pos, terms, node_h
        size, starts = size_all[phys], geom_ptr[phys]
        by = np.argsort(h_fwd, kind="stable")
        h_sorted = h_fwd[by]
        q = np.argsort(h_back)  # sorted queries: searchsorted walks forward
        lo = np.empty(len(phys), dtype=np.int64)
        hi = np.empty(len(phys), dtype=np.int64)
        lo[q] = np.searchsorted(h_sorted, h_back[q], side="left")
        hi[q] = np.searchsorted(h_sorted, h_back[q], side="right")
        cnt = hi - lo
        pi = np.repeat(np.arange(len(phys)), cnt)  # candidate pairs (i, j), positions in phys
        pj = by[np.repeat(lo, cnt) + np.arange(int(cnt.sum())) - np.repeat(np.cumsum(cnt) - cnt,
                                                                           cnt)]  # fmt: skip
        ok = (pi != pj) & (size[pi] == size[pj])
        pi, pj = pi[ok], pj[ok]
        if len(pi):  # check the reversal node by node
            L = size[pi]
            within = np.arange(int(L.sum())) - np.repeat(np.cumsum(L) - L, L)
            a_nodes = geom_node[np.repeat(starts[pi] + L - 1, L) - within]
            b_nodes = geom_node[np.repeat(starts[pj], L) + within]
            same = np.logical_and.reduceat(a_nodes == b_nodes, np.cumsum(L) - L)
            pi, pj = pi[same], pj[same]
            i_arc, j_arc = phys[pi], phys[pj]
            best = np.lexsort((j_arc, tracked[j_arc], contra[j_arc], i_arc))
            i_arc, j_arc = i_arc[best], j_arc[best]
            lead = np.r_[True, i_arc[1:] != i_arc[:-1]]
            twin[i_arc[lead]] = j_arc[lead]
    passage = np.flatnonzero(kind == _PASSAGE)
    if len(passage):
        n = int(max(tail.max(), head.max())) + 1
        code = tail[passage].astype(np.int64) * n + head[passage]
        back = head[passage].astype(np.int64) * n + tail[passage]
        by = np.argsort(code, kind="stable")
        at = np.searchsorted(code[by], back, side="right") - 1  # the last such passage
        found = (at >= 0) & (code[by][np.maximum(at, 0)] == back)
        twin[passage[found]] = passage[by[at[found]]]
    return twin


def _merge_chains(
    tails: np.ndarray, heads: np.ndarray, key: np.ndarray, place: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Group arcs into chains through pass-through nodes (arcs of one ``key``: way, class mask,
    contraflow flag); return ``(ptr, arcs)``: chain ``c`` is ``arcs[ptr[c]:ptr[c + 1]]`` in order.

    ``place[v]`` is the OSM node a graph node stands for (expanded nodes share one): a node whose
    roads lead to two places is a pass-through even when one place is split into arrival and
    departure nodes, so that expansion adds no U-turn point beside a restricted junction. A node
    is a pass-through when it has one or two arcs in, as many out, its roads lead to exactly two
    other places, and each arc in continues by exactly one arc out of its key that does not go
    back (a bijection). A loop made only of pass-through nodes is cut at its lowest node.
    """
    m = len(tails)
    if m == 0:
        return np.zeros(1, dtype=np.int64), np.zeros(0, dtype=np.int64)
    n = int(max(tails.max(), heads.max())) + 1
    in_ptr, in_arc = _grouped(heads, n)
    out_ptr, out_arc = _grouped(tails, n)
    deg = np.diff(in_ptr)
    cand = (deg == np.diff(out_ptr)) & ((deg == 1) | (deg == 2))
    next_arc = np.full(m, -1, dtype=np.int64)
    # one arc in, one out
    v = np.flatnonzero(cand & (deg == 1))
    a, b = in_arc[in_ptr[v]], out_arc[out_ptr[v]]
    pv, pu, pw = place[v], place[tails[a]], place[heads[b]]
    ok = (pu != pw) & (pv != pu) & (pv != pw) & (key[a] == key[b])
    next_arc[a[ok]] = b[ok]
    # two in, two out
    v = np.flatnonzero(cand & (deg == 2))
    a1, a2 = in_arc[in_ptr[v]], in_arc[in_ptr[v] + 1]
    b1, b2 = out_arc[out_ptr[v]], out_arc[out_ptr[v] + 1]
    pv = place[v]
    u1, u2, w1, w2 = place[tails[a1]], place[tails[a2]], place[heads[b1]], place[heads[b2]]
    distinct = 1 + (u2 != u1) + ((w1 != u1) & (w1 != u2)) + ((w2 != u1) & (w2 != u2) & (w2 != w1))
    ok = (distinct == 2) & (pv != u1) & (pv != u2) & (pv != w1) & (pv != w2)
    c11 = (w1 != u1) & (key[b1] == key[a1])
    c12 = (w2 != u1) & (key[b2] == key[a1])
    c21 = (w1 != u2) & (key[b1] == key[a2])
    c22 = (w2 != u2) & (key[b2] == key[a2])
    ok &= (c11 != c12) & (c21 != c22) & (c11 != c21)  # one continuation each, not the same one
    next_arc[a1[ok]] = np.where(c11, b1, b2)[ok]
    next_arc[a2[ok]] = np.where(c21, b1, b2)[ok]

    # chains start at arcs without a predecessor; a loop of pass-through nodes has none, so it is
    # cut at its lowest node (the tail of an arc of the loop)
    linked = np.flatnonzero(next_arc >= 0)
    pred = np.full(m, -1, dtype=np.int64)
    pred[next_arc[linked]] = linked
    start = pred < 0
    links = csr_matrix((np.ones(len(linked)), (linked, next_arc[linked])), shape=(m, m))
    n_comp, comp = connected_components(links, directed=False)
    has_start = np.zeros(n_comp, dtype=bool)
    has_start[comp[start]] = True
    loop = np.flatnonzero(~has_start[comp])
    if len(loop):
        lowest = np.full(n_comp, np.iinfo(np.int64).max, dtype=np.int64)
        np.minimum.at(lowest, comp[loop], tails[loop])
        start[loop[tails[loop] == lowest[comp[loop]]]] = True
    pred[start] = -1
    # rank every arc in its chain by pointer jumping: its chain's first arc and its distance to it
    root = np.where(pred >= 0, pred, np.arange(m))
    dist = (pred >= 0).astype(np.int64)
    hop = pred.copy()
    while True:
        act = np.flatnonzero(hop >= 0)
        if len(act) == 0:
            break
        h = hop[act]
        dist[act] += dist[h]
        root[act] = root[h]
        hop[act] = hop[h]
    arcs = np.lexsort((dist, root))
    r = root[arcs]
    ptr = np.r_[np.flatnonzero(np.r_[True, r[1:] != r[:-1]]), m].astype(np.int64)
    return ptr, arcs


def digest(arrays: Mapping[str, np.ndarray]) -> str:
    """SHA-256 of the arrays of :data:`ARRAY_NAMES` present, in that order (names, dtypes, bytes).

    ``compile_roads`` gives all but the per-arc delay counts that :func:`build_arrays` adds; the
    cache loader checks separately that every name is there.
    """
    h = hashlib.sha256()
    for name in ARRAY_NAMES:
        if name not in arrays:
            continue
        a = np.ascontiguousarray(arrays[name])
        h.update(name.encode())
        h.update(str(a.dtype).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def build_arrays(
    path: Path, settings: NetworkSettings, *, sha: str | None = None, raw: RawRoads | None = None
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read and compile a map file (no cache); ``raw``: the file already read by :func:`read_osm`."""
    raw = read_osm(path) if raw is None else raw
    exempt = hgv_exempt_mask(settings)
    raw = with_hgv_exemption(raw, exempt)
    arrays, stats = compile_roads(raw, settings)
    if len(arrays["arc_tail"]) == 0:
        raise MapError(f"map file {str(path)!r} has no connected drivable roads")
    counts, stats["node_delays"] = control_counts(raw, arrays, settings)
    arrays.update(counts)
    stats["hgv_bans"] = {
        "ways": len(raw.way_hgv_exempt),
        "nodes": len(raw.controls.hgv_block),
        "not_applied_to": [v for i, v in enumerate(VEHICLE_CLASSES)
                           if exempt >> i & 1 and "hgv" in ACCESS_KEYS[v]],
    }  # fmt: skip
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
