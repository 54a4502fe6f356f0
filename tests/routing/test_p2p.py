"""Single routes by the compiled CCH path (dispatch.routing.p2p): same answer as Dijkstra and networkx."""

from __future__ import annotations

import math

import networkx as nx
import numpy as np
import pytest

import dispatch
from dispatch import EnginePolicy
from dispatch.geo import haversine_m
from dispatch.roads.snapping import position
from dispatch.routing.queries import Route
from tests.conftest import nx_graph


def _mid_arc_points(net: dispatch.Network, vehicle: str, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    c = dispatch.VEHICLE_CLASSES.index(vehicle)
    eng = net.engine
    both = ((eng.snap_access("from") >> c) & 1) & ((eng.snap_access("to") >> c) & 1) == 1
    arcs = np.flatnonzero(np.isfinite(net.weights(vehicle)) & ~net.arc_contraflow & both)
    pick = rng.choice(arcs, n)
    t = rng.uniform(0, 1, n)
    t[: n // 5] = 0.0  # some exactly at a node
    lat, lon = position(net.graph, net.engine.geom_cum_m(), pick, t)
    return np.stack([lat, lon], axis=1)


@pytest.mark.parametrize("map_name", ["danang", "monaco"])
@pytest.mark.parametrize("vehicle", ["ambulance", "fire_engine"])
def test_cch_route_equals_dijkstra_route(map_name: str, vehicle: str) -> None:
    fast = dispatch.load_network(map_name, policy=EnginePolicy.cch_always())
    slow = dispatch.load_network(map_name, policy=EnginePolicy.dijkstra_only())
    pts = _mid_arc_points(fast, vehicle, 80, seed=11)
    origins = [tuple(p) for p in pts[:40].tolist()]
    dests = [tuple(p) for p in pts[40:].tolist()]
    tt = slow.travel_times(pts[:40], pts[40:], vehicle=vehicle)
    for i, (o, d) in enumerate(zip(origins, dests, strict=True)):
        a = fast.route(o, d, vehicle=vehicle)
        b = slow.route(o, d, vehicle=vehicle)
        assert fast.engine.has_metric(fast.weights(vehicle))
        if not math.isfinite(b.eta_s):
            assert not math.isfinite(a.eta_s) and a.coords == [] and a.times_s == []
            continue
        assert a.eta_s == pytest.approx(b.eta_s, rel=1e-12, abs=1e-9)
        assert a.eta_s == pytest.approx(tt[i, i], rel=1e-12, abs=1e-9)
        if a.nodes == b.nodes:  # the same path: the same time to the bit, whichever engine
            assert a.eta_s == b.eta_s and a.times_s == b.times_s  # found it (sum in path order)
        assert a.length_m == pytest.approx(b.length_m, rel=1e-6, abs=1e-6) or a.nodes != b.nodes
        assert a.times_s[0] == 0.0 and a.times_s[-1] == a.eta_s
        assert all(y >= x for x, y in zip(a.times_s, a.times_s[1:], strict=False))
        assert len(a.coords) == len(a.times_s)
        c = np.array(a.coords)
        geo_len = float(np.sum(haversine_m(c[:-1, 0], c[:-1, 1], c[1:, 0], c[1:, 1])))
        assert geo_len == pytest.approx(a.length_m, rel=0.01, abs=0.5)
        # the route starts and ends where the points snap
        so = fast.snap([o], vehicle=vehicle, role="from")
        sd = fast.snap([d], vehicle=vehicle, role="to")
        assert a.coords[0] == pytest.approx((float(so.lat[0]), float(so.lon[0])), abs=1e-9)
        assert a.coords[-1] == pytest.approx((float(sd.lat[0]), float(sd.lon[0])), abs=1e-9)


def test_cch_route_between_nodes_matches_networkx_path() -> None:
    net = dispatch.load_network("danang", policy=EnginePolicy.cch_always())
    g = nx_graph(net, "ambulance")
    core = np.flatnonzero(net.class_core("ambulance"))
    # nodes that are the only node at their position (a junction expanded for turn restrictions
    # has several nodes at one point: a point there is not one node)
    key = np.round(net.node_lat * 1e7) * 1e9 + np.round(net.node_lon * 1e7)
    _, inv, cnt = np.unique(key, return_inverse=True, return_counts=True)
    core = core[cnt[inv[core]] == 1]
    rng = np.random.default_rng(3)
    for a, b in zip(rng.choice(core, 25), rng.choice(core, 25), strict=True):
        r = net.route((float(net.node_lat[a]), float(net.node_lon[a])),
                      (float(net.node_lat[b]), float(net.node_lon[b])))  # fmt: skip
        want = nx.dijkstra_path_length(g, int(net.node_osmid[a]), int(net.node_osmid[b]),
                                       weight="w")  # fmt: skip
        assert r.eta_s == pytest.approx(want, rel=1e-9, abs=1e-9)
        # the nodes passed are a path of the exported graph whose times sum to the ETA
        seq = [int(net.node_osmid[a]), *r.nodes]
        assert seq[-1] == int(net.node_osmid[b]) or a == b
        total = sum(g[u][v]["w"] for u, v in zip(seq, seq[1:], strict=False))
        assert total == pytest.approx(r.eta_s, rel=1e-9, abs=1e-9)


def test_route_value_is_immutable_and_compares_by_content(danang: dispatch.Network) -> None:
    o, d = (16.060909, 108.220849), (16.050086, 108.216239)
    r1 = danang.route(o, d)
    r2 = danang.route(list(o), np.array(d))  # other point forms: the same route
    assert r1 == r2 and r1 is not r2
    with pytest.raises(AttributeError, match="immutable"):
        r1.eta_s = 0.0  # type: ignore[misc]
    assert "Route(eta_s=" in repr(r1)
    same = danang.route(o, o)
    assert (same.eta_s, same.length_m, same.times_s, same.nodes) == (0.0, 0.0, [0.0], [])
    assert len(same.coords) == 1
    assert isinstance(r1, Route) and r1.geojson()["properties"]["nodes"] == r1.nodes
    import copy
    import pickle

    assert pickle.loads(pickle.dumps(r1)) == r1 and copy.deepcopy(r1) == r1
