"""Network compile, vehicle access, cache and determinism, on hand-made and real maps."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import dispatch
from dispatch.errors import MapError
from dispatch.roads.network import cache_path
from tests.conftest import HAND_SETTINGS, SQUARE_NODES, osm_xml

SEG_M = 2 * 6_371_008.8 * math.asin(math.sin(math.radians(0.001) / 2))  # 0.001 deg on the equator


def arcs(net: dispatch.Network, vehicle: str) -> dict[tuple[int, int], float]:
    tab = net.edge_table(vehicle)
    return {
        (int(u), int(v)): float(t)
        for u, v, t in zip(tab["u"], tab["v"], tab["travel_time_s"], strict=True)
    }


def test_square_arcs_by_hand(square: dispatch.Network) -> None:
    # node 6 is a pass-through point of way 13: merged away; the footway is not a road
    assert sorted(square.node_osmid.tolist()) == [1, 2, 3, 4, 5]
    amb = arcs(square, "ambulance")
    assert amb[(1, 2)] == pytest.approx(SEG_M / 10.0)  # 36 km/h = 10 m/s
    assert amb[(2, 1)] == pytest.approx(SEG_M / 10.0)
    assert amb[(2, 3)] == pytest.approx(SEG_M / 20.0)  # 72 km/h
    assert (3, 2) not in amb  # one-way
    assert amb[(3, 4)] == pytest.approx(SEG_M / 5.0)  # alley at 18 km/h
    assert (4, 1) not in amb and (1, 4) not in amb  # tagged 2 m wide: too narrow for an ambulance
    moto = arcs(square, "motorbike")
    assert moto[(4, 1)] == pytest.approx(SEG_M / 10.0)  # two pieces merged: 2 x half a segment
    fire = arcs(square, "fire_engine")
    assert (3, 4) not in fire  # alleys are closed to engines
    assert set(fire) == {(1, 2), (2, 1), (2, 3), (2, 5), (5, 2)}


def test_emergency_factor_and_bands(square_map: Path, tmp_path: Path) -> None:
    net = dispatch.load_network(square_map, cache_dir=tmp_path)  # default profiles
    t = arcs(net, "ambulance")[(1, 2)]
    p = net.settings.profiles["ambulance"]
    assert t == pytest.approx(SEG_M / (36 * p.emergency_factor / 3.6))
    rush = net.settings.bands[0]
    w = net.weights("ambulance", hour=(rush.start_h + rush.end_h) / 2)
    a = int(
        np.flatnonzero((net.node_osmid[net.arc_tail] == 1) & (net.node_osmid[net.arc_head] == 2))[0]
    )
    assert w[a] == pytest.approx(t / rush.factors["residential"])


def test_contraflow_is_off_by_default_and_can_be_enabled(square_map: Path, tmp_path: Path) -> None:
    net = dispatch.load_network(square_map, settings=HAND_SETTINGS, cache_dir=tmp_path)
    assert (3, 2) not in arcs(net, "ambulance")
    s = dispatch.network_settings(profiles={"ambulance": {"contraflow": True, "emergency_factor": 1.0,
                                                          "contraflow_factor": 0.5, "contraflow_max_m": 200.0}})  # fmt: skip
    net2 = dispatch.load_network(square_map, settings=s, cache_dir=tmp_path)
    assert arcs(net2, "ambulance")[(3, 2)] == pytest.approx(SEG_M / 10.0)  # 72 km/h x 0.5


def test_clipped_extract_keeps_ways_and_counts_missing_refs(tmp_path: Path) -> None:
    p = tmp_path / "clipped.osm"
    # way 20 references node 99, which the file does not hold (a clipped extract)
    p.write_text(osm_xml(SQUARE_NODES, [(20, [1, 2, 99, 5], {"highway": "residential"}),
                                        (21, [2, 5], {"highway": "residential"})]))  # fmt: skip
    net = dispatch.load_network(p, cache_dir=tmp_path)
    assert net.stats["dropped_node_refs"] == 1
    assert sorted(net.node_osmid.tolist()) == [1, 2, 5]


def test_largest_strongly_connected_part_and_dropped_share(tmp_path: Path) -> None:
    nodes = {**SQUARE_NODES, 7: (0.002, 0.002), 8: (0.002, 0.003)}
    ways = [(10, [1, 2], {"highway": "residential"}), (11, [2, 5], {"highway": "residential"}),
            (30, [7, 8], {"highway": "residential"})]  # an island  # fmt: skip
    p = tmp_path / "island.osm"
    p.write_text(osm_xml(nodes, ways))
    net = dispatch.load_network(p, cache_dir=tmp_path)
    assert sorted(net.node_osmid.tolist()) == [1, 2, 5]
    assert net.stats["dropped_share"] == pytest.approx(2 / 5)


def test_cache_rebuilds_on_changed_map_and_detects_corruption(square_map: Path, tmp_path: Path,
                                                              caplog: pytest.LogCaptureFixture) -> None:  # fmt: skip
    cdir = tmp_path / "c"
    net = dispatch.load_network(square_map, settings=HAND_SETTINGS, cache_dir=cdir)
    cpath = cache_path(square_map, HAND_SETTINGS, cdir)
    assert cpath.exists()
    again = dispatch.load_network(square_map, settings=HAND_SETTINGS, cache_dir=cdir)
    assert again.digest == net.digest
    # corrupt the cache (a half-written file; flipped bytes in the arrays): detected, rebuilt
    data = cpath.read_bytes()
    cpath.write_bytes(data[: len(data) // 2])
    with caplog.at_level("WARNING"):
        rebuilt = dispatch.load_network(square_map, settings=HAND_SETTINGS, cache_dir=cdir)
    assert "corrupt" in caplog.text
    assert rebuilt.digest == net.digest
    data = bytearray(cpath.read_bytes())
    at = data.find(np.asarray(net.arc_length_m).tobytes()[:16])
    data[at + 3] ^= 0xFF
    cpath.write_bytes(bytes(data))
    caplog.clear()
    with caplog.at_level("WARNING"):
        rebuilt = dispatch.load_network(square_map, settings=HAND_SETTINGS, cache_dir=cdir)
    assert "corrupt" in caplog.text
    assert rebuilt.digest == net.digest
    # change the map: the cache is not reused
    square_map.write_text(square_map.read_text().replace('maxspeed" v="36"', 'maxspeed" v="30"', 1))
    changed = dispatch.load_network(square_map, settings=HAND_SETTINGS, cache_dir=cdir)
    assert changed.digest != net.digest
    # other settings: another cache file
    s2 = dispatch.network_settings(snap_tolerance_m=50)
    assert cache_path(square_map, s2, cdir) != cpath


def test_same_network_byte_for_byte_across_hash_seeds(tmp_path: Path) -> None:
    code = ("import dispatch, sys; n = dispatch.load_network('danang', cache_dir=sys.argv[1], rebuild=True);"
            "print(n.digest)")  # fmt: skip
    digests = set()
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run([sys.executable, "-c", code, str(tmp_path / seed)], env=env,
                             capture_output=True, text=True, check=True)  # fmt: skip
        digests.add(out.stdout.strip())
    assert len(digests) == 1


@pytest.mark.parametrize(
    ("name", "nodes_range", "dropped_refs"),
    [("danang", (1500, 2500), 0), ("hcmc", (300, 600), 0), ("monaco", (1500, 3000), 0),
     ("liechtenstein", (3500, 5000), 0), ("campo_grande", (7000, 9500), (1000, 2000))],
)  # fmt: skip
def test_real_maps_build(name: str, nodes_range: tuple[int, int], dropped_refs: object) -> None:
    net = dispatch.load_network(name)
    assert nodes_range[0] <= net.n_nodes <= nodes_range[1]
    assert 2 * net.n_nodes < net.n_arcs < 4 * net.n_nodes
    if isinstance(dropped_refs, tuple):
        assert dropped_refs[0] <= net.stats["dropped_node_refs"] <= dropped_refs[1]
    else:
        assert net.stats["dropped_node_refs"] == dropped_refs
    assert 0 <= net.stats["dropped_share"] < 0.2
    s = net.summary()
    assert s["reachable_share"]["motorbike"] > 0.99


def test_facilities_from_osm() -> None:
    monaco = dispatch.load_network("monaco")
    assert sum(f.kind == "fire_station" for f in monaco.facilities) == 3
    danang = dispatch.load_network("danang")
    kinds = [f.kind for f in danang.facilities]
    assert kinds.count("hospital") == 7 and "fire_station" not in kinds


def test_empty_and_corrupt_and_roadless_maps(tmp_path: Path) -> None:
    empty = tmp_path / "empty.osm"
    empty.write_text("")
    with pytest.raises(MapError, match="empty"):
        dispatch.load_network(empty)
    corrupt = tmp_path / "corrupt.osm"
    corrupt.write_text("<osm><node id='1' lat='0' lon='0'><way")
    with pytest.raises(MapError, match="cannot read"):
        dispatch.load_network(corrupt, cache_dir=tmp_path)
    roadless = tmp_path / "roadless.osm"
    roadless.write_text(osm_xml(SQUARE_NODES, [(1, [1, 2], {"highway": "footway"})]))
    with pytest.raises(MapError, match="no drivable roads"):
        dispatch.load_network(roadless, cache_dir=tmp_path)


def test_unreadable_or_foreign_cache_is_left_alone(square_map: Path, tmp_path: Path,
                                                   caplog: pytest.LogCaptureFixture) -> None:  # fmt: skip
    """A cache path that cannot be read is reported as not readable and never replaced."""
    cdir = tmp_path / "c"
    cpath = cache_path(square_map, HAND_SETTINGS, cdir)
    cpath.mkdir(parents=True)  # a folder where the cache file should be
    with caplog.at_level("WARNING"):
        net = dispatch.load_network(square_map, settings=HAND_SETTINGS, cache_dir=cdir)
    assert "not readable" in caplog.text and "corrupt" not in caplog.text
    assert cpath.is_dir() and net.n_arcs > 0
    if not hasattr(os, "getuid") or os.getuid() != 0:
        return  # giving a file to another user needs root
    cpath.rmdir()
    dispatch.load_network(square_map, settings=HAND_SETTINGS, cache_dir=cdir)
    cpath.write_bytes(b"not a cache")
    os.chown(cpath, 12345, 12345)  # another user's (corrupt) cache file
    caplog.clear()
    with caplog.at_level("WARNING"):
        dispatch.load_network(square_map, settings=HAND_SETTINGS, cache_dir=cdir)
    assert "another user" in caplog.text
    assert cpath.read_bytes() == b"not a cache" and cpath.stat().st_uid == 12345


def test_empty_cache_dir_variable_means_unset(square_map: Path, monkeypatch: pytest.MonkeyPatch,
                                              tmp_path: Path) -> None:  # fmt: skip
    monkeypatch.setenv("DISPATCH_CACHE_DIR", "")
    assert cache_path(square_map, HAND_SETTINGS).parent == square_map.parent / ".cache"
    monkeypatch.setenv("DISPATCH_CACHE_DIR", str(tmp_path / "here"))
    assert cache_path(square_map, HAND_SETTINGS).parent == tmp_path / "here"


def test_bad_load_arguments(tmp_path: Path) -> None:
    for bad in (None, 5, True, ["danang"]):
        with pytest.raises(MapError, match="map_name="):
            dispatch.load_network(bad)  # type: ignore[arg-type]
    with pytest.raises(MapError, match="settings="):
        dispatch.load_network("danang", settings={"snap_tolerance_m": 5})  # type: ignore[arg-type]


def test_graph_is_frozen(square: dispatch.Network) -> None:
    with pytest.raises(ValueError, match="read-only"):
        square.arc_head[0] = 1
    with pytest.raises(AttributeError, match="immutable"):
        square.graph.arc_head = square.graph.arc_tail  # type: ignore[misc]
    with pytest.raises(ValueError, match="read-only"):
        square.weights("ambulance")[0] = 0.0
