"""The synthetic city of the scale benchmark: reproducible bytes, a realistic network, exact routing.

Issue 14 asks that the exactness tests (independent Dijkstra on the exported network) also run on
the generated 10k city: here networkx recomputes our travel times between intersections.
"""

from __future__ import annotations

import sys
from pathlib import Path

import networkx as nx
import numpy as np
import pytest

import dispatch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
from synth_city import generate  # noqa: E402


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a.osm.pbf", tmp_path / "b.osm.pbf", tmp_path / "c.osm.pbf"
    generate(a, intersections=400, seed=3)
    generate(b, intersections=400, seed=3)
    generate(c, intersections=400, seed=4)
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()


@pytest.fixture(scope="module")
def city10k(tmp_path_factory: pytest.TempPathFactory) -> dispatch.Network:
    d = tmp_path_factory.mktemp("city")
    counts = generate(d / "city.osm.pbf", intersections=10_000, seed=1)
    assert counts["grid_nodes"] == 10_000
    return dispatch.load_network(d / "city.osm.pbf", cache_dir=d / "cache")


def test_city_has_the_variety_of_a_real_one(city10k: dispatch.Network) -> None:
    net = city10k
    # pass-through shape nodes are merged away; missing segments drop a few dead-end nodes
    assert 9_000 < len(net.node_lat) <= 10_000
    # one-way streets: fewer arcs than twice the number of two-way edges would give
    assert 3.0 < len(net.arc_tail) / len(net.node_lat) < 4.5
    for v in net.vehicles:
        assert net.reachable_share(v) > 0.95
    # alleys are closed to fire engines (untagged width rules) but open to motorbikes
    assert net.allowed("motorbike").sum() > net.allowed("fire_engine").sum()


def test_travel_times_equal_networkx_dijkstra(city10k: dispatch.Network) -> None:
    net = city10k
    et = net.edge_table("fire_engine")
    g = nx.DiGraph()
    for u, v, w in zip(
        et["u"].tolist(), et["v"].tolist(), et["travel_time_s"].tolist(), strict=True
    ):
        if not g.has_edge(u, v) or g[u][v]["w"] > w:
            g.add_edge(u, v, w=w)
    rng = np.random.default_rng(7)
    nodes = np.array(sorted(g.nodes))
    src = rng.choice(nodes, 3, replace=False)
    dst = rng.choice(nodes, 40, replace=False)
    idx = np.searchsorted(net.node_osmid, np.concatenate([src, dst]))
    pts = list(zip(net.node_lat[idx].tolist(), net.node_lon[idx].tolist(), strict=True))
    ours = net.travel_times(pts[:3], pts[3:], vehicle="fire_engine")
    for i, s in enumerate(src.tolist()):
        ref = nx.single_source_dijkstra_path_length(g, s, weight="w")
        want = np.array([ref.get(d, np.inf) for d in dst.tolist()])
        np.testing.assert_allclose(ours[i], want, rtol=0, atol=1e-6)
