"""The customizable contraction hierarchy gives exactly Dijkstra's answers, closures included."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

import dispatch
from dispatch.routing import cch as hierarchy
from dispatch.routing import queries as routing
from dispatch.routing.engine import EnginePolicy

#: The default policy without its wait for a hierarchy that is not cached yet: these tests check
#: the switch from Dijkstra to the CCH after ``cch_after_searches`` searches, whatever is on disk.
EAGER = EnginePolicy(hierarchy_after_searches=0)


def _scipy_graph(net: dispatch.Network, w: np.ndarray) -> csr_matrix:
    ok = np.isfinite(w)
    t, h, x = net.arc_tail[ok], net.arc_head[ok], w[ok]
    order = np.lexsort((x, h, t))
    t, h, x = t[order], h[order], x[order]
    first = np.ones(len(t), bool)
    first[1:] = (t[1:] != t[:-1]) | (h[1:] != h[:-1])  # parallel arcs: keep the fastest
    return csr_matrix((x[first], (t[first], h[first])), shape=(net.n_nodes, net.n_nodes))


@pytest.mark.parametrize("map_name", ["danang", "campo_grande", "liechtenstein"])
def test_phast_rows_equal_dijkstra(map_name: str) -> None:
    net = dispatch.load_network(map_name)
    w = net.weights("fire_engine")
    eng = net.engine
    m = eng.metric(w)
    src = np.random.default_rng(1).choice(np.flatnonzero(net.class_core("fire_engine")), 12)
    nodes = np.stack([src, -np.ones_like(src), -np.ones_like(src)], axis=1)
    costs = np.zeros(nodes.shape)
    costs[:, 1:] = np.inf
    every = np.stack(
        [np.arange(net.n_nodes), -np.ones(net.n_nodes, int), -np.ones(net.n_nodes, int)], 1
    )
    ecost = np.zeros(every.shape)
    ecost[:, 1:] = np.inf
    h, ws = eng.hierarchy(), eng.cch_workspace()
    got = hierarchy.matrix(h, m, ws, nodes, costs, every, ecost)
    ref = dijkstra(_scipy_graph(net, w), indices=src)
    both_inf = np.isinf(got) & np.isinf(ref)
    assert np.all(both_inf | np.isclose(got, ref, rtol=1e-12, atol=1e-9))
    back = hierarchy.matrix(h, m, ws, nodes, costs, every, ecost, backward=True)  # distances TO src
    ref_back = dijkstra(_scipy_graph(net, w).T.tocsr(), indices=src)
    both_inf = np.isinf(back) & np.isinf(ref_back)
    assert np.all(both_inf | np.isclose(back, ref_back, rtol=1e-12, atol=1e-9))


def test_matrix_paths_agree_and_closures_recustomize() -> None:
    net = dispatch.load_network("campo_grande", policy=EAGER)
    core = np.flatnonzero(net.class_core("ambulance"))
    rng = np.random.default_rng(5)
    pts = lambda k: np.stack([net.node_lat[k], net.node_lon[k]], axis=1)  # noqa: E731
    units, calls = pts(rng.choice(core, 30)), pts(rng.choice(core, 80))
    cch = net.travel_times(units, calls)  # 30 searches: answered by the CCH
    w = net.weights("ambulance")
    assert net.engine.has_metric(w)
    s_u, s_c = net.snap(units, role="from"), net.snap(calls)
    dij_engine = dispatch.load_network("campo_grande").engine  # the Dijkstra kernel, same input
    dij_engine.set_policy(EnginePolicy.dijkstra_only())
    dij = routing.matrix(dij_engine, w, s_u.arc[:5], s_u.t[:5], s_c.arc, s_c.t)
    assert dij == pytest.approx(cch[:5], rel=1e-12)
    # close 100 arcs: the next answers (Dijkstra first, then a new customization) stay exact
    net.close_arcs(rng.choice(net.n_arcs, 100, replace=False))
    w2 = net.weights("ambulance")
    ref = dijkstra(_scipy_graph(net, w2), indices=net.arc_tail[s_u.arc[:1]])
    first = net.travel_times(units[:1], calls[:1])
    again = net.travel_times(units, calls)
    assert net.engine.has_metric(w2)
    assert again[0, 0] == pytest.approx(first[0, 0], rel=1e-12)
    assert np.isfinite(ref).any()


def test_fastest_units_cch_path_equals_dijkstra_path() -> None:
    net = dispatch.load_network("campo_grande", policy=EAGER)
    core = np.flatnonzero(net.class_core("fire_engine"))
    rng = np.random.default_rng(9)
    picks = rng.choice(core, 80, replace=False)
    classes = ["ambulance", "fire_engine", "motorbike", "ladder"]
    units = [{"id": f"U{i:02d}", "vehicle": classes[i % 4], "lat": float(net.node_lat[n]),
              "lon": float(net.node_lon[n]), "turnout_s": float(i % 7) * 10}
             for i, n in enumerate(picks[:50])]  # fmt: skip
    calls = np.stack([net.node_lat[picks[50:]], net.node_lon[picks[50:]]], axis=1)
    first = [net.fastest_units(c, units, k=4) for c in calls]  # Dijkstra, then the CCH
    fleet = routing.prepare_fleet(net.engine, units)
    assert fleet.uses >= 2 and any(d.labels for d in fleet.by_class.values())
    net2 = dispatch.load_network("campo_grande")  # a fresh object answering with Dijkstra only
    net2.engine.set_policy(EnginePolicy.dijkstra_only())
    for c, got in zip(calls[15:], first[15:], strict=True):
        ref = net2.fastest_units(c, units, k=4)
        assert [u.unit for u in got] == [u.unit for u in ref]
        assert [u.eta_s for u in got] == pytest.approx([u.eta_s for u in ref], rel=1e-12)
    assert not net2.engine.has_metric(net2.weights("ambulance"))


def test_fastest_units_table_path_equals_dijkstra_path() -> None:
    """A fleet that does not move is answered from its nearest-units table: same units, same ETAs."""
    net = dispatch.load_network("danang", policy=EAGER)
    core = np.flatnonzero(net.class_core("ambulance"))
    rng = np.random.default_rng(11)
    picks = rng.choice(core, 140, replace=False)
    units = [{"id": f"A{i:02d}", "vehicle": "ambulance" if i % 3 else "motorbike",
              "lat": float(net.node_lat[n]), "lon": float(net.node_lon[n]), "turnout_s": 30.0 * (i % 3)}
             for i, n in enumerate(picks[:40])]  # fmt: skip
    # calls on nodes and mid-arc, including calls on the same arcs as units
    calls = [(float(net.node_lat[n]), float(net.node_lon[n])) for n in picks[40:]]
    calls += [((u["lat"] + net.node_lat[picks[60 + i]]) / 2, (u["lon"] + net.node_lon[picks[60 + i]]) / 2)
              for i, u in enumerate(units[:20])]  # fmt: skip
    got = [net.fastest_units(c, units, k=k) for c in calls for k in (1, 3)]
    fleet = routing.prepare_fleet(net.engine, units)
    assert any(d.tables for d in fleet.by_class.values())
    fresh = dispatch.load_network("danang")
    fresh.engine.set_policy(EnginePolicy.dijkstra_only())
    ref = [fresh.fastest_units(c, units, k=k) for c in calls for k in (1, 3)]
    for g, r in zip(got, ref, strict=True):
        assert [u.unit for u in g] == [u.unit for u in r]
        assert [u.eta_s for u in g] == pytest.approx([u.eta_s for u in r], rel=1e-12)


def test_routes_by_cch_unpack_to_connected_arcs_with_dijkstra_times() -> None:
    net = dispatch.load_network("campo_grande", policy=EAGER)
    core = np.flatnonzero(net.class_core("ladder"))
    rng = np.random.default_rng(4)
    a, b = rng.choice(core, 40), rng.choice(core, 40)
    pts = lambda k: np.stack([net.node_lat[k], net.node_lon[k]], axis=1)  # noqa: E731
    # mid-arc origins: 30 % of the way to another node's position, snapped
    mids = net.snap(pts(a) * 0.7 + pts(b) * 0.3, vehicle="ladder", role="from", tolerance_m=5000)
    starts = np.concatenate([pts(a), np.stack([mids.lat, mids.lon], axis=1)])
    ends = np.concatenate([pts(b), pts(b)])
    net.travel_times(starts[:20], ends, vehicle="ladder")  # customizes the CCH for this metric
    w = net.weights("ladder")
    assert net.engine.has_metric(w)
    by_cch = [net.route(s, e, vehicle="ladder") for s, e in zip(starts, ends, strict=True)]
    fresh = dispatch.load_network("campo_grande")
    fresh.engine.set_policy(EnginePolicy.dijkstra_only())
    for s, e, r in zip(starts, ends, by_cch, strict=True):
        ref = fresh.route(s, e, vehicle="ladder")
        assert r.eta_s == pytest.approx(ref.eta_s, rel=1e-12)
        assert r.times_s[0] == 0.0 and r.times_s[-1] == r.eta_s
        assert all(y >= x for x, y in zip(r.times_s, r.times_s[1:], strict=False))
        # consecutive points are at most one geometry piece apart: the arcs are connected
        c = np.array(r.coords)
        from dispatch.geo import haversine_m

        assert float(
            np.sum(haversine_m(c[:-1, 0], c[:-1, 1], c[1:, 0], c[1:, 1]))
        ) == pytest.approx(r.length_m, rel=0.01)
