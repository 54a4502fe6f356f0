"""Traffic-signal, stop-sign and gate delays per class, and the hgv=no rule (issue 13, item 5).

The maps are tiny hand-made files in ``tests/data/osm/delays_*.osm`` at the equator, where
0.001 deg is 111.195 m: one block ``T`` at 36 km/h is 11.12 s. Speeds are made exact per class
(no lights-and-sirens factor, no cap), so every expected time below is ``k T`` plus a count of
signals and gates times the class's delay, checked by hand on each file's sketch.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np
import pytest

import dispatch
from dispatch.errors import VehicleError
from dispatch.roads.delays import arc_delay_s
from dispatch.roads.profiles import (
    GATE_DELAY_S,
    SIGNAL_DELAY_S,
    VEHICLE_CLASSES,
    classify_way,
    network_settings,
)

DATA = Path(__file__).resolve().parents[1] / "data" / "osm"
SEG_M = 2 * 6_371_008.8 * math.asin(math.sin(math.radians(0.001) / 2))
T = SEG_M / 10.0  # one block at 36 km/h
EXACT = {v: {"emergency_factor": 1.0, "max_speed_kmh": 200.0} for v in VEHICLE_CLASSES}
NODES = {  # (lat, lon) of the node ids used in the files
    "chain": {1: (0, 0), 2: (0, 0.001), 3: (0, 0.002), 4: (0, 0.003), 5: (0, 0.0032),
              6: (0, 0.004), 7: (0.001, 0.003)},
    "junction": {1: (0, 0), 4: (0, 0.001), 6: (0, 0.002), 7: (0.001, 0.001)},
    "gates": {1: (0, 0), 2: (0, 0.001), 3: (0, 0.002), 4: (0.001, 0), 5: (0.001, 0.001),
              6: (0.001, 0.002)},
    "hgv": {1: (0, 0), 2: (0, 0.001), 3: (0, 0.002), 4: (0.001, 0), 5: (0.001, 0.001),
            6: (0.001, 0.002)},
}  # fmt: skip


def load(tmp_path: Path, name: str, profiles: dict[str, dict[str, Any]] | None = None) -> Any:
    over = {v: dict(EXACT[v], **(profiles or {}).get(v, {})) for v in VEHICLE_CLASSES}
    # node delays alone: turn costs at these junctions are tests/roads/test_turn_costs.py's
    return dispatch.load_network(DATA / f"delays_{name}.osm", cache_dir=tmp_path / "cache",
                                 settings=network_settings(profiles=over, turn_costs="off"))  # fmt: skip


def eta(net: Any, name: str, a: int, b: int, vehicle: str = "ambulance") -> float:
    p, q = NODES[name][a], NODES[name][b]
    return float(net.travel_times(p, q, vehicle=vehicle)[0, 0])


@pytest.mark.parametrize("vehicle", VEHICLE_CLASSES)
def test_signals_on_a_chain_by_hand(tmp_path: Path, vehicle: str) -> None:
    net = load(tmp_path, "chain")
    s = SIGNAL_DELAY_S[vehicle]
    # eastbound 1 -> 4 passes 2 (both ways) and 3 (eastbound only); westbound only 2
    assert eta(net, "chain", 1, 4, vehicle) == pytest.approx(3 * T + 2 * s)
    assert eta(net, "chain", 4, 1, vehicle) == pytest.approx(3 * T + s)
    # 5: untagged, 22 m east of junction 4: an approach signal for westbound traffic only
    assert eta(net, "chain", 4, 6, vehicle) == pytest.approx(T)
    assert eta(net, "chain", 6, 4, vehicle) == pytest.approx(T + s)
    assert eta(net, "chain", 1, 6, vehicle) == pytest.approx(4 * T + 2 * s)
    assert eta(net, "chain", 6, 1, vehicle) == pytest.approx(4 * T + 2 * s)
    assert eta(net, "chain", 7, 1, vehicle) == pytest.approx(4 * T + s)
    d = net.stats["node_delays"]
    counted = (d["signals_on_network"], d["signals_directional"], d["signals_direction_inferred"])
    assert counted == (3, 1, 1)


def test_signal_delay_is_a_profile_value(tmp_path: Path) -> None:
    net = load(tmp_path, "chain", {"ambulance": {"signal_delay_s": 0.0},
                                   "fire_engine": {"signal_delay_s": 20.0}})  # fmt: skip
    assert eta(net, "chain", 1, 4) == pytest.approx(3 * T)
    assert eta(net, "chain", 1, 4, "fire_engine") == pytest.approx(3 * T + 40.0)
    assert eta(net, "chain", 1, 4, "ladder") == pytest.approx(3 * T + 2 * SIGNAL_DELAY_S["ladder"])


def test_part_of_an_arc_pays_its_share_of_the_delay(tmp_path: Path) -> None:
    """The documented convention: a position part-way along an arc pays that share of its delays
    (the arc 1 -> 4 is one arc of 3 T through the signals 2 and 3)."""
    net = load(tmp_path, "chain")
    s = SIGNAL_DELAY_S["ambulance"]
    assert eta(net, "chain", 1, 2) == pytest.approx((3 * T + 2 * s) / 3)


def test_signals_match_a_segment_level_reference(tmp_path: Path) -> None:
    """Every pair of nodes against networkx on the OSM segments, each signal charged on entering
    its node in the directions it controls (node 5's inferred direction given by hand)."""
    net = load(tmp_path, "chain")
    s = SIGNAL_DELAY_S["ambulance"]
    g = nx.DiGraph()
    chain = [1, 2, 3, 4, 5, 6]
    lon = {n: NODES["chain"][n][1] for n in chain}

    def add(a: int, b: int, length_m: float, east: bool | None) -> None:
        signal = b == 2 or (b == 3 and east is True) or (b == 5 and east is False)
        g.add_edge(a, b, w=length_m / 10.0 + (s if signal else 0.0))

    for a, b in zip(chain, chain[1:], strict=False):
        length = SEG_M * abs(lon[b] - lon[a]) / 0.001
        add(a, b, length, True)
        add(b, a, length, False)
    add(4, 7, SEG_M, None)
    add(7, 4, SEG_M, None)
    ends = (1, 4, 6, 7)  # arc ends (2, 3 and 5 are inside arcs: shares, above)
    for a in ends:
        dist = nx.single_source_dijkstra_path_length(g, a, weight="w")
        for b in ends:
            assert eta(net, "chain", a, b) == pytest.approx(dist[b]), (a, b)


def test_signal_on_an_expanded_junction_is_paid_once(tmp_path: Path) -> None:
    net = load(tmp_path, "junction")
    s = SIGNAL_DELAY_S["ambulance"]
    assert net.stats["turn_restrictions"]["applied"] == 1
    assert net.stats["expanded_nodes"] > 0
    assert eta(net, "junction", 1, 6) == pytest.approx(2 * T + s)  # straight through
    assert eta(net, "junction", 7, 1) == pytest.approx(2 * T + s)
    # no left turn from 100 into 101: on to the dead end 6, turn back, through 4 again
    assert eta(net, "junction", 1, 7) == pytest.approx(4 * T + 2 * s)
    gadget = net.arc_length_m == 0
    assert gadget.any() and not net.graph.arc_signals[gadget].any()


@pytest.mark.parametrize(
    ("vehicle", "one_to_three", "four_to_six"),
    [
        ("ambulance", 4 * T + GATE_DELAY_S["ambulance"], 2 * T + GATE_DELAY_S["ambulance"]),
        ("fire_engine", 4 * T + GATE_DELAY_S["fire_engine"], 2 * T + GATE_DELAY_S["fire_engine"]),
        ("ladder", 4 * T + GATE_DELAY_S["ladder"], 2 * T + GATE_DELAY_S["ladder"]),
        ("motorbike", 2 * T + GATE_DELAY_S["motorbike"], 2 * T + GATE_DELAY_S["motorbike"]),
    ],
)
def test_gates_cost_time_only_where_the_class_passes(
    tmp_path: Path, vehicle: str, one_to_three: float, four_to_six: float
) -> None:
    net = load(tmp_path, "gates")
    # the lift gate 2 stops the four-wheel classes (they go round through the gate 5)
    assert eta(net, "gates", 1, 3, vehicle) == pytest.approx(one_to_three)
    assert eta(net, "gates", 4, 6, vehicle) == pytest.approx(four_to_six)
    d = net.stats["node_delays"]
    assert d["gates_passable_per_class"] == {
        "ambulance": 1, "fire_engine": 1, "ladder": 1, "motorbike": 2
    }  # fmt: skip
    # a stopped class is not charged for driving up to the gate it cannot pass
    stopped = net.graph.arc_gates[:, VEHICLE_CLASSES.index("ambulance")]
    assert stopped.sum() == 2  # into 5 from either side
    assert net.graph.arc_gates[:, VEHICLE_CLASSES.index("motorbike")].sum() == 4


def test_gate_delay_is_a_profile_value(tmp_path: Path) -> None:
    net = load(tmp_path, "gates", {"ambulance": {"gate_delay_s": 60.0}})
    # the gate 5 now costs more than the perimeter: still no way through 2, so 4 T + 60 s
    assert eta(net, "gates", 1, 3) == pytest.approx(4 * T + 60.0)
    assert eta(net, "gates", 4, 6) == pytest.approx(2 * T + 60.0)


@pytest.mark.parametrize(
    ("profiles", "expected"),
    [
        ({}, {"ambulance": 2, "fire_engine": 2, "ladder": 2, "motorbike": 2}),
        ({"fire_engine": {"obey_hgv_bans": True}},
         {"ambulance": 2, "fire_engine": 4, "ladder": 2, "motorbike": 2}),
        ({v: {"obey_hgv_bans": True} for v in VEHICLE_CLASSES},
         {"ambulance": 2, "fire_engine": 4, "ladder": 4, "motorbike": 2}),
    ],
)  # fmt: skip
def test_hgv_ban_per_class(
    tmp_path: Path, profiles: dict[str, dict[str, Any]], expected: dict[str, int]
) -> None:
    net = load(tmp_path, "hgv", profiles)
    for vehicle, blocks in expected.items():
        assert eta(net, "hgv", 1, 3, vehicle) == pytest.approx(blocks * T), vehicle
    # way 14 has motorcar=no too: closed to the four-wheel classes whatever the hgv rule
    for vehicle in ("ambulance", "fire_engine", "ladder"):
        assert not (net.allowed(vehicle) & (net.arc_way == 14)).any()
    assert (net.allowed("motorbike") & (net.arc_way == 14)).any()
    assert net.stats["hgv_bans"]["ways"] == 1  # way 14 is closed by motorcar=no alone
    bound = {v for v in ("fire_engine", "ladder") if profiles.get(v, {}).get("obey_hgv_bans")}
    assert set(net.stats["hgv_bans"]["not_applied_to"]) == {"fire_engine", "ladder"} - bound


@pytest.mark.parametrize("obey", [False, True])
def test_hgv_ban_on_a_gate(tmp_path: Path, obey: bool) -> None:
    net = load(tmp_path, "hgv_gate", {v: {"obey_hgv_bans": obey} for v in VEHICLE_CLASSES})
    amb = 2 * T + GATE_DELAY_S["ambulance"]
    assert eta(net, "hgv", 1, 3) == pytest.approx(amb)
    engine = 4 * T if obey else 2 * T + GATE_DELAY_S["fire_engine"]
    assert eta(net, "hgv", 1, 3, "fire_engine") == pytest.approx(engine)
    assert net.stats["hgv_bans"]["nodes"] == 1
    assert net.stats["barriers_per_class"]["fire_engine"] == int(obey)


def test_hgv_ban_masks() -> None:
    r = classify_way({"highway": "residential", "hgv": "no"})
    assert r is not None and (r.fwd_mask, r.hgv_exempt) == (9, (15, 15, 15, 0))
    r = classify_way({"highway": "residential", "hgv:forward": "no", "oneway": "no"})
    assert r is not None and (r.fwd_mask, r.bwd_mask, r.hgv_exempt) == (9, 15, (15, 15, 15, 0))
    r = classify_way({"highway": "residential", "hgv": "destination"})
    assert r is not None and (r.restricted_mask, r.hgv_exempt) == (6, (15, 15, 15, 0))
    # hgv=yes still opens a road closed to cars; a ban on cars binds the engines anyway
    r = classify_way({"highway": "residential", "motor_vehicle": "no", "hgv": "yes"})
    assert r is not None and (r.fwd_mask, r.hgv_exempt) == (6, None)
    r = classify_way({"highway": "residential", "motorcar": "no", "hgv": "no"})
    assert r is not None and (r.fwd_mask, r.hgv_exempt) == (8, None)


@pytest.mark.parametrize(
    "bad", [{"signal_delay_s": -1}, {"gate_delay_s": math.inf}, {"stop_delay_s": True},
            {"signal_delay_s": 601}, {"obey_hgv_bans": "no"}],
)  # fmt: skip
def test_bad_delay_values_are_refused(bad: dict[str, Any]) -> None:
    key = next(iter(bad))
    with pytest.raises(VehicleError, match=key):
        network_settings(profiles={"ambulance": bad})


def test_real_map_delays_reach_every_kernel(danang: dispatch.Network) -> None:
    """Da Nang: the exported weights are driving time plus the counted delays, and a networkx
    Dijkstra on the export (the exactness reference) agrees with the engine on arcs with signals."""
    g = danang.graph
    assert int(g.arc_signals.sum()) > 0 and int(g.arc_gates.sum()) > 0
    assert not g.arc_signals[danang.arc_length_m == 0].any()  # gadget arcs pay nothing
    zero = dispatch.load_network("danang", settings=network_settings(profiles={
        v: {"signal_delay_s": 0.0, "stop_delay_s": 0.0, "gate_delay_s": 0.0}
        for v in VEHICLE_CLASSES}))  # fmt: skip
    for v in VEHICLE_CLASSES:
        p = danang.settings.profiles[v]
        w, w0 = danang.base_weights(v), zero.base_weights(v)
        ok = np.isfinite(w0)
        extra = (
            p.signal_delay_s * g.arc_signals
            + p.gate_delay_s * g.arc_gates[:, VEHICLE_CLASSES.index(v)]
        )
        np.testing.assert_allclose(w[ok] - w0[ok], extra[ok], atol=1e-9)
        turn = np.array([0.0, 0.0, p.near_turn_s, p.far_turn_s, p.u_turn_s])[g.arc_turn + 1]
        np.testing.assert_allclose(arc_delay_s(g.arrays, v, p)[ok], extra[ok] + turn[ok])
    tab = danang.edge_table("ambulance")
    ref = nx.DiGraph()
    for u, x, t in zip(tab["u"].tolist(), tab["v"].tolist(), tab["travel_time_s"].tolist(),
                       strict=True):  # fmt: skip
        if not ref.has_edge(u, x) or ref[u][x]["w"] > t:
            ref.add_edge(u, x, w=t)
    usable = (g.arc_signals > 0) & np.isfinite(danang.base_weights("ambulance"))
    usable &= (danang.node_osmid[g.arc_tail] > 0) & (danang.node_osmid[g.arc_head] > 0)
    signal_arcs = np.flatnonzero(usable)
    heads = [int(danang.node_osmid[g.arc_head[a]]) for a in signal_arcs[:10]]
    tails = [int(danang.node_osmid[g.arc_tail[a]]) for a in signal_arcs[:10]]
    pts = np.column_stack([danang.node_lat, danang.node_lon])
    index = {int(k): i for i, k in enumerate(danang.node_osmid)}
    for s in tails[:5]:
        dist = nx.single_source_dijkstra_path_length(ref, s, weight="w")
        got = danang.travel_times(pts[index[s]], pts[[index[h] for h in heads]])[0]
        want = [dist.get(h, np.inf) for h in heads]
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-6)


def test_map_info_reports_signals_gates_and_hgv_bans(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from dispatch.cli import main

    monkeypatch.setenv("DISPATCH_CACHE_DIR", str(tmp_path))
    assert main(["map", "info", str(DATA / "delays_chain.osm")]) == 0
    out = capsys.readouterr().out
    assert "3 traffic signals (1 tagged one direction, 1 approach signals inferred)" in out
    assert main(["map", "info", str(DATA / "delays_gates.osm")]) == 0
    out = capsys.readouterr().out
    assert "gates passed at a delay: ambulance 1  fire_engine 1  ladder 1  motorbike 2" in out
    assert main(["map", "info", str(DATA / "delays_hgv.osm"), "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["hgv_bans"] == {"ways": 1, "nodes": 0, "not_applied_to": ["fire_engine", "ladder"]}
    assert s["node_delays"]["signals_on_network"] == 0
