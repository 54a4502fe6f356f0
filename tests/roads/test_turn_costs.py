"""Turn costs per class at expanded junctions (issue 13, item 5; docs/turn-costs.md).

The hand-made map ``tests/data/osm/turns_cross.osm`` is a signalised crossing at the equator, where
0.001 deg is 111.195 m: one block ``T`` at 36 km/h is 11.12 s. Speeds are made exact per class (no
lights-and-sirens factor, no cap), so every expected time is blocks, the signal's delay ``s`` (paid
once, whatever the turn) and the class's turn cost, checked by hand on the file's sketch. Then the
real maps: every kernel against networkx on the exported, expanded network with turn costs on.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import dispatch
from dispatch.errors import VehicleError
from dispatch.geo import haversine_m
from dispatch.roads.delays import TURN_NONE, arc_delay_s, turn_kind
from dispatch.roads.profiles import (
    SIGNAL_DELAY_S,
    TURN_COSTS_S,
    VEHICLE_CLASSES,
    network_settings,
)
from tests.conftest import assert_kernels_match_networkx, expanded_nodes

CROSS = Path(__file__).resolve().parents[1] / "data" / "osm" / "turns_cross.osm"
SEG_M = 2 * 6_371_008.8 * math.asin(math.sin(math.radians(0.001) / 2))
T = SEG_M / 10.0  # one block at 36 km/h
EXACT = {v: {"emergency_factor": 1.0, "max_speed_kmh": 200.0} for v in VEHICLE_CLASSES}
W, C, E, N, S, M = (0.0, 0.0), (0.0, 0.001), (0.0, 0.002), (0.001, 0.001), (-0.001, 0.001), (
    0.00005, 0.0005)  # fmt: skip
C_M = float(haversine_m(*C, *M)) / 10.0  # C -> M on the westbound one-way, in seconds
M_W = float(haversine_m(*M, *W)) / 10.0


def load(tmp_path: Path, path: Path = CROSS, **options: Any) -> dispatch.Network:
    return dispatch.load_network(path, cache_dir=tmp_path / "cache",
                                 settings=network_settings(profiles=EXACT, **options))  # fmt: skip


def eta(net: dispatch.Network, a: tuple[float, float], b: tuple[float, float],
        vehicle: str = "ambulance") -> float:  # fmt: skip
    return float(net.travel_times(a, b, vehicle=vehicle)[0, 0])


@pytest.mark.parametrize("vehicle", VEHICLE_CLASSES)
def test_each_turn_costs_its_class_value_at_a_signal(tmp_path: Path, vehicle: str) -> None:
    net = load(tmp_path)
    s = SIGNAL_DELAY_S[vehicle]
    near, far, u = TURN_COSTS_S[vehicle]
    assert eta(net, W, E, vehicle) == pytest.approx(2 * T + s)  # straight on: nothing
    assert eta(net, W, N, vehicle) == pytest.approx(2 * T + s + far)  # left, across traffic
    assert eta(net, W, S, vehicle) == pytest.approx(2 * T + s + near)  # right
    # back at C, or (cheaper for the trucks) straight on to the dead end E, where the node-based
    # graph turns back for free, and straight on through C again
    assert eta(net, W, M, vehicle) == pytest.approx(min(T + s + u + C_M, 3 * T + 2 * s + C_M))
    assert eta(net, N, E, vehicle) == pytest.approx(2 * T + s + far)  # southbound, left
    assert eta(net, E, W, vehicle) == pytest.approx(T + s + C_M + M_W)  # 6 deg: straight on
    tc = net.stats["turn_costs"]
    assert (tc["mode"], tc["junctions"]) == ("signals", 1)
    # 4 roads in (from W, E, N, S) x 4 out (to M, E, N, S): one of each kind per road in (the
    # contraflow arcs against ways 100 and 102 are left out: no class drives contraflow here)
    assert tc["turn_arcs"] == {"straight": 4, "near": 4, "far": 4, "u_turn": 4}


def test_off_gives_the_times_without_turn_costs(tmp_path: Path) -> None:
    net = load(tmp_path, turn_costs="off")
    s = SIGNAL_DELAY_S["ambulance"]
    assert eta(net, W, N) == pytest.approx(2 * T + s)
    assert eta(net, W, S) == pytest.approx(2 * T + s)
    assert eta(net, W, M) == pytest.approx(T + s + C_M)  # the node-based graph's free U-turn
    assert net.stats["turn_costs"]["junctions"] == 0
    assert (net.graph.arc_turn == TURN_NONE).all()
    for v in VEHICLE_CLASSES:  # the turn term adds exactly 0.0: weights bit for bit as before
        p = net.settings.profiles[v]
        without = {k: a for k, a in net.graph.arrays.items() if k != "arc_turn"}
        assert arc_delay_s(net.graph.arrays, v, p).tobytes() == arc_delay_s(without, v, p).tobytes()


def test_turn_costs_are_profile_values_and_the_driving_side_a_setting(tmp_path: Path) -> None:
    over = {v: dict(EXACT[v]) for v in VEHICLE_CLASSES}
    over["ambulance"].update(near_turn_s=0.0, far_turn_s=10.0, u_turn_s=100.0)
    net = dispatch.load_network(CROSS, cache_dir=tmp_path / "cache",
                                settings=network_settings(profiles=over))  # fmt: skip
    s = SIGNAL_DELAY_S["ambulance"]
    assert eta(net, W, N) == pytest.approx(2 * T + s + 10.0)  # 4 T + 2 s by the dead end E
    assert eta(net, W, S) == pytest.approx(2 * T + s)
    assert eta(net, W, M) == pytest.approx(3 * T + 2 * s + C_M)  # via the dead end E, not 100 s
    left = load(tmp_path / "left", driving_side="left")  # a left turn is now the near one
    near, far, _ = TURN_COSTS_S["ambulance"]
    assert eta(left, W, N) == pytest.approx(2 * T + s + near)
    assert eta(left, W, S) == pytest.approx(2 * T + s + far)


def test_junctions_mode_costs_turns_without_a_signal(tmp_path: Path) -> None:
    plain = tmp_path / "plain.osm"
    plain.write_text(CROSS.read_text().replace('<tag k="highway" v="traffic_signals"/>', ""))
    near, far, u = TURN_COSTS_S["fire_engine"]
    signals = load(tmp_path / "a", plain)
    assert signals.stats["turn_costs"]["junctions"] == 0  # no signal: no turn cost by default
    assert eta(signals, W, N, "fire_engine") == pytest.approx(2 * T)
    every = load(tmp_path / "b", plain, turn_costs="junctions")
    assert every.stats["turn_costs"]["junctions"] == 1
    assert eta(every, W, N, "fire_engine") == pytest.approx(2 * T + far)
    assert eta(every, W, S, "fire_engine") == pytest.approx(2 * T + near)
    assert eta(every, W, M, "fire_engine") == pytest.approx(min(T + u + C_M, 3 * T + C_M))


def test_turn_kind_by_the_bearing_change() -> None:
    # right-hand traffic: clockwise is the near side
    assert [turn_kind(90.0, b, False, True) for b in (90.0, 115.0, 180.0, 0.0, -91.0, 240.0)] == [
        0, 0, 1, 2, 3, 3]  # fmt: skip
    assert turn_kind(0.0, 0.0, True, True) == 3  # the same segment back: a U-turn at any angle
    assert turn_kind(-170.0, 170.0, False, True) == 0  # across the +-180 seam: 20 deg


@pytest.mark.parametrize(
    ("options", "match"),
    [({"turn_costs": "everywhere"}, "turn_costs='everywhere' must be one of signals"),
     ({"driving_side": "middle"}, "driving_side='middle' must be 'right' or 'left'"),
     ({"profiles": {"ladder": {"u_turn_s": -1.0}}}, "u_turn_s=-1.0 must be a number of seconds"),
     ({"profiles": {"ladder": {"far_turn_s": True}}}, "far_turn_s=True must be a number")],
)  # fmt: skip
def test_bad_settings_are_named(options: dict[str, Any], match: str) -> None:
    with pytest.raises(VehicleError, match=match):
        network_settings(**options)


def test_map_info_reports_the_junctions_with_turn_costs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from dispatch.cli import main

    monkeypatch.setenv("DISPATCH_CACHE_DIR", str(tmp_path))
    assert main(["map", "info", str(CROSS)]) == 0
    out = capsys.readouterr().out
    assert "turn costs   1 junctions (signals; right-hand traffic): 4 straight, 4 right, 4 left, " \
           "4 U-turn arcs" in out  # fmt: skip
    assert "ambulance 2/5/20" in out


# --- real maps: every kernel against networkx on the exported, expanded network ---------------


@pytest.mark.parametrize(("map_name", "mode"), [("danang", "signals"), ("danang", "junctions"),
                                                ("monaco", "junctions")])  # fmt: skip
def test_kernels_match_networkx_on_the_expanded_export(map_name: str, mode: str) -> None:
    """travel_times (matrix kernels) and fastest_units (early-stop search) with turn costs equal
    networkx Dijkstra on the exported edge table (turn arcs and their costs included), between
    plain nodes next to a costed junction (where the turns bite) and elsewhere."""
    net = dispatch.load_network(map_name, settings=network_settings(turn_costs=mode))
    off = dispatch.load_network(map_name, settings=network_settings(turn_costs="off"))
    assert net.stats["turn_costs"]["junctions"] > 0
    vehicle = "fire_engine"
    expanded, nbr = expanded_nodes(net)
    plain = net.class_core(vehicle) & ~expanded
    rng = np.random.default_rng(13)
    near = rng.choice(np.flatnonzero(plain & nbr), 10, replace=False)
    rest = np.setdiff1d(np.flatnonzero(plain), near)  # with every junction expanded, few are far
    nodes = np.concatenate([near, rng.choice(rest, 6, replace=False)])
    tt = assert_kernels_match_networkx(net, vehicle, nodes)
    pts = np.stack([net.node_lat[nodes], net.node_lon[nodes]], axis=1)
    # the costs bite: some times grow, none shrinks (costs only add; the graph is otherwise the
    # same; a point snaps to another arc of the same road: fractions round differently, < 1 ms)
    base = off.travel_times(pts, pts, vehicle=vehicle)
    assert (tt >= base - 1e-3).all() and (tt > base + 1.0).any()


def test_contraflow_leaves_a_costed_junction(tmp_path: Path) -> None:
    """The ambulance may take the eastbound one-way W -> C against the flow (factor 1 here): from E
    it reaches a point 0.3 blocks east of W straight through C, 0.7 T along the contraflow arc,
    instead of round by M (C -> M -> W -> point: 2.3 T). The contraflow arc leaves from a departure
    node of the expanded junction and must survive the compiler's strongly-connected-part step."""
    over = {v: dict(EXACT[v]) for v in VEHICLE_CLASSES}
    over["ambulance"].update(contraflow=True, contraflow_max_m=200.0, contraflow_factor=1.0)
    s = SIGNAL_DELAY_S["ambulance"]
    point = (0.0, 0.0003)
    etas = {}
    for mode in ("off", "signals"):
        net = dispatch.load_network(CROSS, cache_dir=tmp_path / mode,
                                    settings=network_settings(profiles=over, turn_costs=mode))  # fmt: skip
        assert int(net.arc_contraflow.sum()) == 2  # against ways 100 and 102
        etas[mode] = eta(net, E, point)
    assert etas["off"] == pytest.approx(1.7 * T + s)
    assert etas["signals"] == pytest.approx(1.7 * T + s)  # straight on into it: no turn cost
