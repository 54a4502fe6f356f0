"""A point standing exactly at a junction the compiler expanded (turn costs, restrictions).

Such a junction is several nodes at one place (one arrival copy per road in, one departure copy per
road out, turn arcs between them). A unit whose position is the junction's own coordinates must
be able to take any turn there, as a vehicle that has just come in along its road can: never
worse than a point 1 m before the junction on that road (but for that 1 m). A call at the junction is reached as
soon as a vehicle gets there, never later than a point 1 m past it on the road it snapped to (but for that 1 m).
Before the seeds at an expanded junction opened the copy on the other side (``leave_seed`` at
``t == 0``, ``reach_seed`` at ``t == 1``), such points drove round the block.
"""

from __future__ import annotations

import numpy as np

import dispatch
from dispatch.roads.snapping import geom_cum_m, position
from tests.conftest import expanded_nodes

VEHICLE = "ambulance"


def _points(net: dispatch.Network, arcs: np.ndarray, t: np.ndarray) -> np.ndarray:
    lat, lon = position(net.graph, geom_cum_m(net.graph), arcs, t)
    return np.stack([lat, lon], axis=1)


def test_a_point_at_an_expanded_junction_takes_every_turn_and_is_reached_at_once() -> None:
    net = dispatch.load_network("danang")  # turn costs at signalised junctions: expanded
    g = net.graph
    expanded, _ = expanded_nodes(net)
    ok = np.isfinite(net.weights(VEHICLE))
    twin = g.arc_twin
    # roads out of an expanded junction with a twin coming back in: the two ends are two copies
    cand = np.flatnonzero(ok & expanded[g.arc_tail] & (twin >= 0) & (g.arc_length_m > 20.0))
    cand = cand[ok[twin[cand]] & (g.arc_head[twin[cand]] != g.arc_tail[cand])]
    assert len(cand) >= 20
    rng = np.random.default_rng(5)
    picks = rng.choice(cand, 20, replace=False)
    far = np.flatnonzero(ok & ~expanded[g.arc_tail] & ~expanded[g.arc_head])
    x = _points(net, rng.choice(far, 40, replace=False), np.full(40, 0.5))
    at = _points(net, picks, np.zeros(len(picks)))  # the junction's own coordinates
    w = net.weights(VEHICLE)
    checked = 0
    for i, a in enumerate(picks.tolist()):
        p = at[i : i + 1]
        s_from = net.snap(p, vehicle=VEHICLE, role="from")
        s_to = net.snap(p, vehicle=VEHICLE, role="to")
        for s, role in ((s_from, "from"), (s_to, "to")):
            sa, st = int(s.arc[0]), float(s.t[0])
            assert st in (0.0, 1.0), (a, st)  # snapped to an end of a road at the junction
            # 1 m from the junction on the same road: arriving (leave) or departing (reach)
            if role == "from":  # a vehicle that came in along the snapped road
                r, tr = (
                    (sa, 1.0 - 1.0 / g.arc_length_m[sa])
                    if st == 1.0
                    else (int(twin[sa]), 1.0 - 1.0 / g.arc_length_m[twin[sa]])
                )
            else:  # a point just past the junction on the snapped road
                r, tr = (
                    (sa, 1.0 / g.arc_length_m[sa])
                    if st == 0.0
                    else (int(twin[sa]), 1.0 / g.arc_length_m[twin[sa]])
                )
            if r < 0 or not ok[r]:
                continue
            q = _points(net, np.array([r]), np.array([tr]))
            if role == "from":
                tp = net.travel_times(p, x, vehicle=VEHICLE)[0]
                tq = net.travel_times(q, x, vehicle=VEHICLE)[0]
            else:
                tp = net.travel_times(x, p, vehicle=VEHICLE)[:, 0]
                tq = net.travel_times(x, q, vehicle=VEHICLE)[:, 0]
            # Q may head away along the street 1 m shorter than P (in either direction's speed)
            one_m_s = max(float(w[b] / g.arc_length_m[b]) for b in (r, int(twin[r])) if b >= 0)
            assert np.all(tp <= tq + one_m_s * 1.001 + 1e-6), (a, role, float(np.max(tp - tq)))
            checked += 1
    assert checked >= 30
