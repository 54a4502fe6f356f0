"""Time lost at nodes: traffic signals, stop signs and gates passed by each arc.

The compiled graph is node-based; a control at an OSM node is charged to the arcs that *reach*
it. For every arc, :func:`control_counts` walks the arc's OSM node sequence (``geom_node``) and
counts the controlled nodes it passes, the head end included and the tail end excluded, so that
a drive through a node pays it once whichever arcs it is split into:

* a traffic signal or stop sign tagged ``direction=forward``/``backward`` (or
  ``traffic_signals:direction``) counts only for arcs that reach it moving along (against) the
  OSM way it is on; untagged ones count for every direction;
* a gate counts for the classes its access tags let through (and whose height fits under a
  ``maxheight`` on it); a class the gate stops never passes it (the compiler expanded it);
* zero-length gadget arcs of expanded junctions (barrier passages, turn arcs) repeat one OSM node
  and count nothing: the physical arc into the junction already paid it; contraflow arcs count
  like the arc they reverse, with the direction they are driven in.

The counts are stored with the network (``arc_signals``, ``arc_stops``, ``arc_gates``, one row per
arc and, for gates, one column per class) and turned into seconds per class by
:func:`arc_delay_s`, which :meth:`dispatch.routing.engine.Engine.base_weights` adds to each arc's
driving time. Every kernel (Dijkstra, CCH, matrices, tables, routes) therefore stays exact with
delays. A position part-way along an arc (a snapped unit or call) pays the same share of the
arc's delay as of its driving time, like every other arc cost.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from dispatch.geo import haversine_m
from dispatch.roads.osm import BACKWARD, BOTH, FORWARD, RawRoads
from dispatch.roads.profiles import (
    STRAIGHT_MAX_DEG,
    UTURN_MIN_DEG,
    VEHICLE_CLASSES,
    NetworkSettings,
    VehicleProfile,
)

#: Kinds of turn arcs (``arc_turn``): not a costed turn (every physical arc, barrier passages,
#: turns at junctions without turn costs), straight on, a turn to the near side (right in
#: right-hand traffic), to the far side (across oncoming traffic: left in right-hand traffic), a
#: U-turn.
TURN_NONE, TURN_STRAIGHT, TURN_NEAR, TURN_FAR, TURN_U = -1, 0, 1, 2, 3


def bearings_deg(
    lat0: np.ndarray, lon0: np.ndarray, lat1: np.ndarray, lon1: np.ndarray
) -> np.ndarray:
    """Compass bearing (degrees clockwise from north, in ``(-180, 180]``) from point 0 to point 1,
    on a local flat projection (exact enough over one road segment).

    >>> bearings_deg(np.array([16.0]), np.array([108.0]), np.array([16.0]), np.array([108.001]))
    array([90.])
    """
    dx = (lon1 - lon0) * np.cos(np.radians((lat0 + lat1) / 2))
    out: np.ndarray = np.degrees(np.arctan2(dx, lat1 - lat0))
    return out


def turn_kind(bearing_in: float, bearing_out: float, reverse: bool, near_is_right: bool) -> int:
    """The kind of the turn from a segment driven at ``bearing_in`` onto one at ``bearing_out``.

    ``reverse``: the second segment is the first one driven back (a U-turn whatever the angle).
    The bearing change is straight on below :data:`~dispatch.roads.profiles.STRAIGHT_MAX_DEG`,
    a U-turn from :data:`~dispatch.roads.profiles.UTURN_MIN_DEG`, otherwise a turn to the right
    (clockwise) or left, near or far by the driving side.

    >>> turn_kind(0.0, 90.0, False, True), turn_kind(0.0, -90.0, False, True)
    (1, 2)
    >>> turn_kind(0.0, 10.0, False, True), turn_kind(0.0, 179.0, False, True)
    (0, 3)
    >>> turn_kind(0.0, 90.0, False, False)
    2
    """
    change = (bearing_out - bearing_in + 180.0) % 360.0 - 180.0
    if reverse or abs(change) >= UTURN_MIN_DEG:
        return TURN_U
    if abs(change) < STRAIGHT_MAX_DEG:
        return TURN_STRAIGHT
    return TURN_NEAR if (change > 0) == near_is_right else TURN_FAR


#: Names of the arrays :func:`control_counts` adds to a compiled network.
DELAY_ARRAY_NAMES = ("arc_signals", "arc_stops", "arc_gates")

#: A traffic signal without a direction tag on a road between junctions, at most this far (m)
#: from the junction on one side and at least twice as far from the one on the other side, is
#: read as controlling only traffic moving towards the near junction. ASSUMPTION (reasoned): OSM
#: maps signals either on the junction node or on each approach a few metres before the stop line
#: (the wiki page ``Tag:highway=traffic_signals``); an approach signal without
#: ``traffic_signals:direction`` would otherwise be charged to traffic leaving the junction too,
#: so a straight drive through a junction would pay two signals (40 of Da Nang's 59 signals are
#: such untagged approach nodes).
APPROACH_SIGNAL_M = 50.0


def _passes(
    geom_ptr: np.ndarray, geom_node: np.ndarray, nodes: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``(position, arc)`` of every time an arc reaches one of ``nodes`` (sorted OSM ids)."""
    m = len(geom_ptr) - 1
    hit = np.isin(geom_node, nodes)
    hit[geom_ptr[:-1]] = False  # the tail end: paid by the arc that reached it
    hit[1:] &= geom_node[1:] != geom_node[:-1]  # gadget arcs repeat their node
    pos = np.flatnonzero(hit)
    arc = np.searchsorted(geom_ptr, pos, side="right") - 1
    assert len(arc) == 0 or (arc.min() >= 0 and arc.max() < m)
    return pos, arc


def _directed_counts(
    raw: RawRoads,
    arrays: Mapping[str, np.ndarray],
    controls: Mapping[int, int],
) -> np.ndarray:
    """Per arc: the controlled nodes it reaches in a direction they control."""
    m = len(arrays["arc_tail"])
    counts = np.zeros(m, dtype=np.uint16)
    if not controls:
        return counts.astype(np.uint8)
    nodes = np.array(sorted(controls), dtype=np.int64)
    geom_node = arrays["geom_node"]
    pos, arc = _passes(arrays["geom_ptr"], geom_node, nodes)
    direction = np.array([controls[int(n)] for n in geom_node[pos]], dtype=np.int8)
    ok = direction == 0
    directed = np.flatnonzero(~ok)
    if len(directed):
        # segments (way, a, b) in way order that end at a directional node
        into = np.isin(raw.seg_b, nodes[[controls[int(n)] != 0 for n in nodes]])
        way_osm = raw.way_id[raw.seg_way[into]]
        forward_steps = set(zip(way_osm.tolist(), raw.seg_a[into].tolist(),
                                raw.seg_b[into].tolist(), strict=True))  # fmt: skip
        arc_way = arrays["arc_way"]
        for i in directed.tolist():
            p = int(pos[i])
            step = (int(arc_way[arc[i]]), int(geom_node[p - 1]), int(geom_node[p]))
            along = step in forward_steps
            ok[i] = along == (direction[i] == FORWARD)
    np.add.at(counts, arc[ok], 1)
    return np.minimum(counts, 255).astype(np.uint8)


def neighbours(raw: RawRoads) -> tuple[np.ndarray, np.ndarray]:
    """``(ptr, nbr)``: the distinct road neighbours of node position ``v`` (in ``raw.node_id``)
    are ``nbr[ptr[v]:ptr[v + 1]]``, ascending."""
    ids = raw.node_id
    a = np.searchsorted(ids, raw.seg_a)
    b = np.searchsorted(ids, raw.seg_b)
    n_ids = np.int64(len(ids))
    code = np.unique(np.concatenate([a * n_ids + b, b * n_ids + a]))  # sorted (node, neighbour)
    ptr = np.zeros(len(ids) + 1, dtype=np.int64)
    ptr[1:] = np.cumsum(np.bincount(code // n_ids, minlength=len(ids)))
    return ptr, code % n_ids


def signal_junctions(raw: RawRoads) -> np.ndarray:
    """Positions (in ``raw.node_id``, ascending) of the junctions a traffic signal controls.

    A junction is a node with three or more road neighbours. A signal on a junction controls it;
    a signal on a road between junctions (an approach signal, see :data:`APPROACH_SIGNAL_M`)
    controls the junctions at most :data:`APPROACH_SIGNAL_M` metres from it along the road, on
    either side (a directional tag is not needed to find them). A signal farther from every
    junction (a pedestrian crossing mid-block) controls none.
    """
    signals = np.array(sorted(raw.controls.signals), dtype=np.int64)
    ids = raw.node_id
    signals = signals[np.isin(signals, ids)]
    if len(signals) == 0:
        return np.zeros(0, dtype=np.int64)
    ptr, nbr = neighbours(raw)
    degree = np.diff(ptr)
    lat, lon = raw.node_lat, raw.node_lon
    found: set[int] = set()
    for v in np.searchsorted(ids, signals).tolist():
        if degree[v] >= 3:
            found.add(v)
            continue
        for w in nbr[ptr[v] : ptr[v + 1]].tolist():
            prev, x = v, w
            dist = float(haversine_m(lat[prev], lon[prev], lat[x], lon[x]))
            while degree[x] == 2 and dist <= APPROACH_SIGNAL_M:
                y, z = (int(u) for u in nbr[ptr[x] : ptr[x + 1]])
                prev, x = x, (z if y == prev else y)
                if x == v:
                    break  # a loop without junctions
                dist += float(haversine_m(lat[prev], lon[prev], lat[x], lon[x]))
            if degree[x] >= 3 and dist <= APPROACH_SIGNAL_M:
                found.add(x)
    return np.array(sorted(found), dtype=np.int64)


def junction_nodes(raw: RawRoads) -> np.ndarray:
    """Positions (in ``raw.node_id``, ascending) of the nodes with three or more road neighbours."""
    ptr, _ = neighbours(raw)
    return np.flatnonzero(np.diff(ptr) >= 3)


def infer_approach_directions(raw: RawRoads, controls: Mapping[int, int]) -> dict[int, int]:
    """Directions of untagged signals on approaches to a junction (see :data:`APPROACH_SIGNAL_M`).

    Returns the controls with each such node's direction set relative to its way: towards the
    near junction. Junction nodes (three or more road neighbours), signals with a direction tag
    and signals with junctions at similar distances on both sides keep their direction.
    """
    out = dict(controls)
    todo = [n for n, d in controls.items() if d == BOTH]
    if not todo:
        return out
    ids = raw.node_id
    a = np.searchsorted(ids, raw.seg_a)
    b = np.searchsorted(ids, raw.seg_b)
    ptr, nbr = neighbours(raw)
    lat, lon = raw.node_lat, raw.node_lon

    def degree(v: int) -> int:
        return int(ptr[v + 1] - ptr[v])

    def distance_to_junction(prev: int, v: int) -> float:
        """Metres from ``prev`` through ``v`` along pass-through nodes to a junction (inf: none)."""
        dist = float(haversine_m(lat[prev], lon[prev], lat[v], lon[v]))
        start = prev
        while degree(v) == 2 and dist <= 2 * APPROACH_SIGNAL_M:  # farther: "far" is enough
            x, y = (int(u) for u in nbr[ptr[v] : ptr[v + 1]])
            prev, v = v, (y if x == prev else x)
            if v == start:
                return np.inf  # a loop without junctions
            dist += float(haversine_m(lat[prev], lon[prev], lat[v], lon[v]))
        return dist if degree(v) >= 3 else np.inf

    first_seg: dict[int, int] = {}
    for i in np.flatnonzero(np.isin(raw.seg_a, np.array(todo, dtype=np.int64))).tolist():
        first_seg.setdefault(int(raw.seg_a[i]), i)
    for n in todo:
        v = int(np.searchsorted(ids, n))
        s = first_seg.get(n)
        if degree(v) != 2 or s is None or s == 0 or raw.seg_b[s - 1] != n:
            continue  # a junction, a dead end, or the end of its way: no single way through it
        if raw.seg_way[s - 1] != raw.seg_way[s]:
            continue
        ahead = distance_to_junction(v, int(b[s]))
        behind = distance_to_junction(v, int(a[s - 1]))
        if ahead <= APPROACH_SIGNAL_M and behind > 2 * ahead:
            out[n] = FORWARD
        elif behind <= APPROACH_SIGNAL_M and ahead > 2 * behind:
            out[n] = BACKWARD
    return out


def control_counts(
    raw: RawRoads, arrays: Mapping[str, np.ndarray], settings: NetworkSettings
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Count the signals, stop signs and gates each compiled arc passes; return ``(arrays, stats)``.

    ``arrays`` are the compiled network's (``geom_ptr``, ``geom_node``, ``arc_way``, ``arc_tail``);
    ``raw`` the roads they were compiled from (its :class:`~dispatch.roads.osm.NodeControls`, its
    segments for the direction of each way, its ``node_block`` masks for the classes a gate stops,
    after the profiles' ``hgv`` rule); ``settings`` the classes' heights (a gate under a
    ``maxheight`` lower than a class lets no such vehicle through).

    Returns ``arc_signals`` and ``arc_stops`` (uint8 per arc) and ``arc_gates`` (uint8, one column
    per class of :data:`~dispatch.roads.profiles.VEHICLE_CLASSES`), and counts for ``map info``.
    """
    c = raw.controls
    m = len(arrays["arc_tail"])
    geom_ptr, geom_node = arrays["geom_ptr"], arrays["geom_node"]
    signal_dirs = infer_approach_directions(raw, c.signals)
    signals = _directed_counts(raw, arrays, signal_dirs)
    stops = _directed_counts(raw, arrays, c.stops)
    gates = np.zeros((m, len(VEHICLE_CLASSES)), dtype=np.uint8)
    every = np.array(sorted({*c.signals, *c.stops, *c.gates}), dtype=np.int64)
    on_network = set(every[np.isin(every, geom_node)].tolist())
    passes_per_class = dict.fromkeys(VEHICLE_CLASSES, 0)
    if c.gates:
        nodes = np.array(sorted(c.gates), dtype=np.int64)
        pos, arc = _passes(geom_ptr, geom_node, nodes)
        for i, name in enumerate(VEHICLE_CLASSES):
            h = settings.profiles[name].height_m
            open_to = {
                n for n in c.gates
                if not raw.node_block.get(n, 0) >> i & 1
                and not raw.node_maxheight_m.get(n, np.inf) < h
            }  # fmt: skip
            ok = np.array([int(n) in open_to for n in geom_node[pos]], dtype=bool)
            col = np.zeros(m, dtype=np.uint16)
            np.add.at(col, arc[ok], 1)
            gates[:, i] = np.minimum(col, 255)
            passes_per_class[name] = sum(1 for n in open_to if n in on_network)
    stats = {
        "signals_read": len(c.signals),
        "signals_on_network": sum(1 for n in c.signals if n in on_network),
        "signals_directional": sum(1 for n, d in c.signals.items() if d and n in on_network),
        "signals_direction_inferred": sum(
            1 for n, d in signal_dirs.items() if d != c.signals[n] and n in on_network
        ),
        "stops_read": len(c.stops),
        "stops_on_network": sum(1 for n in c.stops if n in on_network),
        "gates_read": len(c.gates),
        "gates_on_network": sum(1 for n in c.gates if n in on_network),
        "gates_passable_per_class": passes_per_class,
        "arcs_with_signals": int((signals > 0).sum()),
    }
    out = {"arc_signals": signals, "arc_stops": stops, "arc_gates": gates}
    return out, stats


def arc_delay_s(
    arrays: Mapping[str, np.ndarray], vehicle: str, profile: VehicleProfile
) -> np.ndarray:
    """Seconds lost per arc by a class at the signals, stop signs and gates the arc passes, and
    on the turn arcs of junctions with turn costs (``arc_turn``: the profile's ``near_turn_s``,
    ``far_turn_s`` or ``u_turn_s``; straight on costs nothing).

    Zero everywhere for arrays compiled without counts (a hand-built graph).

    >>> import numpy as np
    >>> from dispatch.roads.profiles import DEFAULT_PROFILES
    >>> a = {"arc_signals": np.array([0, 2], np.uint8), "arc_stops": np.array([1, 0], np.uint8),
    ...      "arc_gates": np.array([[1, 0, 0, 1], [0, 0, 0, 0]], np.uint8)}
    >>> arc_delay_s(a, "ambulance", DEFAULT_PROFILES["ambulance"]).tolist()
    [20.5, 9.0]
    """
    signals = arrays.get("arc_signals")
    if signals is None:
        return np.zeros(len(arrays["arc_tail"]))
    c = VEHICLE_CLASSES.index(vehicle)
    out = (
        profile.signal_delay_s * signals.astype(np.float64)
        + profile.stop_delay_s * arrays["arc_stops"].astype(np.float64)
        + profile.gate_delay_s * arrays["arc_gates"][:, c].astype(np.float64)
    )
    kind = arrays.get("arc_turn")
    if kind is not None:
        # index 0..4 = TURN_NONE..TURN_U
        cost = np.array([0.0, 0.0, profile.near_turn_s, profile.far_turn_s, profile.u_turn_s])
        out += cost[kind.astype(np.int64) + 1]
    return out
