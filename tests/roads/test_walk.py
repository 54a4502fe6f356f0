"""The walk network (dispatch.roads.walk): which ways a crew walks, lengths, blocked nodes, cache."""

from __future__ import annotations

import json
import logging
import xml.etree.ElementTree as ET
from pathlib import Path

import networkx as nx
import numpy as np
import pytest

import dispatch
from dispatch.geo import haversine_m
from dispatch.roads.network import cache_path
from dispatch.roads.walk import WALK_ARRAY_NAMES, WALK_KINDS, node_blocks_walk, walk_kind
from tests.conftest import HAND_SETTINGS

DATA = Path(__file__).resolve().parent.parent / "data"
ALLEYS = DATA / "reach_alleys.osm"
BLOCK_M = 111.19508  # 0.001 degree at the equator


@pytest.mark.parametrize(
    ("tags", "kind"),
    [
        ({"highway": "footway"}, "footway"),
        ({"highway": "steps"}, "steps"),
        ({"highway": "path"}, "path"),
        ({"highway": "pedestrian"}, "pedestrian"),
        ({"highway": "service", "service": "alley", "motorcar": "no"}, "alley"),
        ({"highway": "residential", "access": "private"}, "residential"),
        ({"highway": "primary"}, "road"),
        ({"highway": "trunk"}, "road"),
        ({"highway": "track"}, "track"),
        ({"highway": "footway", "access": "no", "foot": "yes"}, "footway"),
        ({"highway": "motorway", "foot": "yes"}, "road"),
        ({"highway": "motorway"}, None),
        ({"highway": "motorway_link"}, None),
        ({"highway": "trunk", "sidewalk": "no"}, None),
        ({"highway": "primary", "motorroad": "yes"}, None),
        ({"highway": "footway", "foot": "no"}, None),
        ({"highway": "residential", "access": "no"}, None),
        ({"highway": "pedestrian", "area": "yes"}, None),
        ({"highway": "construction"}, None),
        ({"building": "yes"}, None),
    ],
)
def test_walk_kind(tags: dict[str, str], kind: str | None) -> None:
    got = walk_kind(tags)
    assert (None if got is None else WALK_KINDS[got]) == kind


def test_nodes_that_stop_people() -> None:
    assert node_blocks_walk({"barrier": "wall"})
    assert node_blocks_walk({"barrier": "gate", "access": "no"})
    assert node_blocks_walk({"foot": "no"})
    assert not node_blocks_walk({"barrier": "bollard"})
    assert not node_blocks_walk({"barrier": "gate", "access": "no", "foot": "yes"})


@pytest.fixture(scope="module")
def alleys(tmp_path_factory: pytest.TempPathFactory) -> dispatch.Network:
    return dispatch.load_network(
        ALLEYS, settings=HAND_SETTINGS, cache_dir=tmp_path_factory.mktemp("walk")
    )


def test_walk_graph_of_the_hand_map(alleys: dispatch.Network) -> None:
    assert alleys.reach_model is not None
    w = alleys.reach_model.walk
    # 13 OSM nodes + node 30 (a wall) once per edge meeting it
    assert w.n_nodes == 15 and w.n_edges == 12
    assert sorted(w.node_osm.tolist()) == [1, 2, 3, 4, 5, 6, 7, 8, 9, 20, 21, 30, 30, 30, 31]
    by_way: dict[int, list[float]] = {}
    for way, length in zip(w.edge_way.tolist(), w.edge_len_m.tolist(), strict=True):
        by_way.setdefault(way, []).append(length)
    assert by_way[100] == pytest.approx([BLOCK_M] * 3, abs=1e-3)  # main road, 3 segments
    assert by_way[102] == pytest.approx([2 * BLOCK_M], abs=1e-3)  # spur, one segment of 0.002
    assert by_way[106] == pytest.approx([BLOCK_M / 2], abs=1e-3)  # island footway
    kinds = {WALK_KINDS[k] for k in w.edge_kind.tolist()}
    assert kinds == {"road", "alley", "residential", "footway", "track", "steps"}
    # the drive network has neither the footways nor the steps
    assert not set(alleys.arc_way.tolist()) & {103, 106, 107}


def test_the_wall_node_stops_people(alleys: dispatch.Network) -> None:
    assert alleys.reach_model is not None
    w = alleys.reach_model.walk
    e31 = int(np.flatnonzero(w.edge_way == 107)[-1])
    u = int(w.edge_u[e31])
    at31 = 0.0 if w.node_osm[u] == 31 else 1.0
    nodes, _ = w.within(e31, at31, 10_000.0)
    assert set(w.node_osm[nodes].tolist()) == {30, 31}  # the wall's copy, nothing beyond


def _nx_walk(path: Path) -> nx.Graph:
    """An independent walk graph: every way of the hand map, the wall node cut out."""
    root = ET.parse(path).getroot()
    pos = {int(n.get("id", 0)): (float(n.get("lat", 0)), float(n.get("lon", 0)))
           for n in root.iter("node")}  # fmt: skip
    g = nx.Graph()
    for way in root.iter("way"):
        refs = [int(nd.get("ref", 0)) for nd in way.iter("nd")]
        for a, b in zip(refs, refs[1:], strict=False):
            if 30 in (a, b):
                continue
            d = float(haversine_m(*pos[a], *pos[b]))
            if not g.has_edge(a, b) or g[a][b]["weight"] > d:
                g.add_edge(a, b, weight=d)
    return g


def test_walk_distances_match_networkx(alleys: dispatch.Network) -> None:
    assert alleys.reach_model is not None
    w = alleys.reach_model.walk
    ref = nx.single_source_dijkstra_path_length(_nx_walk(ALLEYS), 5, weight="weight")
    e = int(np.flatnonzero(w.edge_way == 103)[0])  # the footway 5 - 6
    frac = 0.0 if w.node_osm[w.edge_u[e]] == 5 else 1.0
    nodes, dist = w.within(e, frac, 1000.0)
    got = dict(zip(w.node_osm[nodes].tolist(), dist.tolist(), strict=True))
    got.pop(30, None)
    want = {n: d for n, d in ref.items() if d <= 1000.0}
    assert got.keys() == want.keys()
    for n, d in want.items():
        assert got[n] == pytest.approx(d, abs=1e-6)
    # by hand: 5 -> 6 by the footway, 5 -> 2 down the alley, 5 -> 9 over the track
    assert got[6] == pytest.approx(BLOCK_M, abs=1e-3)
    assert got[2] == pytest.approx(2 * BLOCK_M, abs=1e-3)
    assert got[9] == pytest.approx(6 * BLOCK_M, abs=1e-3)  # 5-6-3, 3-7, 7-8-9 (or by the alley)


def test_walk_graph_is_cached_and_checked(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    first = dispatch.load_network(ALLEYS, settings=HAND_SETTINGS, cache_dir=tmp_path)
    cpath = cache_path(ALLEYS, HAND_SETTINGS, tmp_path)
    assert cpath.exists()
    with np.load(cpath) as z:
        assert set(WALK_ARRAY_NAMES) <= set(z.files)
        arrays = {k: z[k] for k in z.files}
    again = dispatch.load_network(ALLEYS, settings=HAND_SETTINGS, cache_dir=tmp_path)
    assert first.reach_model is not None and again.reach_model is not None
    for k in WALK_ARRAY_NAMES:
        assert np.array_equal(first.reach_model.walk.arrays[k], again.reach_model.walk.arrays[k])
    # a cache without the walk network (written by an older build) is rebuilt, not trusted
    meta = json.loads(str(arrays.pop("meta")))
    meta.pop("walk_digest")
    for k in WALK_ARRAY_NAMES:
        arrays.pop(k)
    with open(cpath, "wb") as f:
        np.savez(f, meta=np.array(json.dumps(meta)), **arrays)  # type: ignore[arg-type]
    with caplog.at_level(logging.WARNING):
        rebuilt = dispatch.load_network(ALLEYS, settings=HAND_SETTINGS, cache_dir=tmp_path)
    assert "walk network" in caplog.text
    assert rebuilt.reach_model is not None and rebuilt.reach_model.walk.n_edges == 12
