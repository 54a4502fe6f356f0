"""Shared fixtures: hand-made OSM files and the real maps."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import dispatch
from dispatch.roads.profiles import VEHICLE_CLASSES, network_settings

# Emergency factor 1 and no speed caps below the limits: travel times are length / limit, by hand.
HAND_SETTINGS = network_settings(
    profiles={v: {"emergency_factor": 1.0, "max_speed_kmh": 200.0} for v in VEHICLE_CLASSES}
)


def nx_graph(net: dispatch.Network, vehicle: str) -> Any:
    """The network's exported edge table for ``vehicle`` as a networkx DiGraph (weight ``w``,
    parallel arcs merged to their minimum): the independent reference of the exactness tests."""
    import networkx as nx

    tab = net.edge_table(vehicle)
    g = nx.DiGraph()
    for u, v, t in zip(tab["u"].tolist(), tab["v"].tolist(), tab["travel_time_s"].tolist(),
                       strict=True):  # fmt: skip
        if not g.has_edge(u, v) or g[u][v]["w"] > t:
            g.add_edge(u, v, w=t)
    return g


def expanded_nodes(net: dispatch.Network) -> tuple[np.ndarray, np.ndarray]:
    """``(expanded, next_to)``: node masks of the junction copies the compiler added (barriers,
    restrictions, turn costs) and of the nodes one arc away from one (where the rules bite)."""
    expanded = net.node_osmid < 0
    nbr = np.zeros(net.n_nodes, bool)
    nbr[net.arc_tail[expanded[net.arc_head]]] = True
    nbr[net.arc_head[expanded[net.arc_tail]]] = True
    return expanded, nbr


def assert_kernels_match_networkx(net: dispatch.Network, vehicle: str, nodes: np.ndarray) -> Any:
    """travel_times (matrix kernels) between ``nodes`` equal networkx Dijkstra on the exported edge
    table, and fastest_units from the first 8 to each of the next 8 equals the matrix minimum;
    returns the matrix."""
    import math

    import networkx as nx

    g = nx_graph(net, vehicle)
    pts = np.stack([net.node_lat[nodes], net.node_lon[nodes]], axis=1)
    tt = net.travel_times(pts, pts, vehicle=vehicle)
    for i, a in enumerate(nodes.tolist()):
        dist = nx.single_source_dijkstra_path_length(g, int(net.node_osmid[a]), weight="w")
        exp = [dist.get(int(net.node_osmid[b]), math.inf) for b in nodes.tolist()]
        assert tt[i] == pytest.approx(exp, rel=1e-9, abs=1e-9)
    units = [{"id": f"U{i}", "vehicle": vehicle, "lat": float(p[0]), "lon": float(p[1]),
              "turnout_s": 0.0} for i, p in enumerate(pts[:8])]  # fmt: skip
    for j in range(8, 16):
        best = net.fastest_units(tuple(pts[j]), units, k=1)[0]
        assert best.eta_s == pytest.approx(float(np.min(tt[:8, j])), rel=1e-9)
    return tt


def osm_xml(nodes: dict[int, tuple[float, float]], ways: list[tuple[int, list[int], dict[str, str]]],
            extra_nodes: str = "") -> str:  # fmt: skip
    """An OSM XML document from ``{id: (lat, lon)}`` and ``[(way id, node ids, tags)]``."""
    out = ['<?xml version="1.0" encoding="UTF-8"?>', '<osm version="0.6" generator="test">']
    for i, (lat, lon) in sorted(nodes.items()):
        out.append(f'  <node id="{i}" version="1" lat="{lat}" lon="{lon}"/>')
    out.append(extra_nodes)
    for wid, refs, tags in ways:
        out.append(f'  <way id="{wid}" version="1">')
        out += [f'    <nd ref="{r}"/>' for r in refs]
        out += [f'    <tag k="{k}" v="{v}"/>' for k, v in tags.items()]
        out.append("  </way>")
    out.append("</osm>")
    return "\n".join(out) + "\n"


# A 2 x 2 block at the equator (0.001 deg = 111.195 m):
#   D(4) ---alley--- C(3)
#    |                ^  one-way B->C, primary 72 km/h
#  width 2 m          |
#   A(1) --- 36 ---- B(2) ---- E(5) residential 36 km/h, a dead end back
SQUARE_NODES = {1: (0.0, 0.0), 2: (0.0, 0.001), 3: (0.001, 0.001), 4: (0.001, 0.0), 5: (0.0, 0.002),
                6: (0.0005, 0.0)}  # fmt: skip
SQUARE_WAYS = [
    (10, [1, 2], {"highway": "residential", "maxspeed": "36"}),
    (11, [2, 3], {"highway": "primary", "oneway": "yes", "maxspeed": "72"}),
    (12, [3, 4], {"highway": "service", "service": "alley", "maxspeed": "18"}),
    (13, [4, 6, 1], {"highway": "residential", "width": "2", "maxspeed": "36"}),
    (14, [2, 5], {"highway": "residential", "maxspeed": "36"}),
    (15, [1, 4], {"highway": "footway"}),  # not a road for anyone
]


@pytest.fixture
def square_map(tmp_path: Path) -> Path:
    p = tmp_path / "square.osm"
    p.write_text(osm_xml(SQUARE_NODES, SQUARE_WAYS))
    return p


@pytest.fixture
def square(square_map: Path, tmp_path: Path) -> dispatch.Network:
    return dispatch.load_network(square_map, settings=HAND_SETTINGS, cache_dir=tmp_path / "cache")


@pytest.fixture(scope="session")
def danang() -> dispatch.Network:
    return dispatch.load_network("danang")


@pytest.fixture(scope="session")
def campo() -> dispatch.Network:
    return dispatch.load_network("campo_grande")
