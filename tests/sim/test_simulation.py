"""Discrete-event simulation: hand-checkable runs on a fake network, replay, conservation, policies."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from dispatch.model import HOSPITAL_CAPABILITIES, Hospital
from dispatch.sim.demand import Areas, Calls, generate_calls, road_segments
from dispatch.sim.runner import run_scenario
from dispatch.sim.scenario import parse_scenario
from dispatch.sim.simulation import Simulation, SimulationError, SimUnit
from tests._sim_fake import FakeNet

STATION = (16.0, 108.0)
HOSP = [Hospital("H", "H", 16.0, 108.01, HOSPITAL_CAPABILITIES)]


def tiny_scenario(**over: Any):
    doc: dict[str, Any] = {
        "name": "tiny",
        "map": "fake",
        "simulation": {"horizon_h": 3.0, "seed": 1},
        "priorities": [{"level": 1, "target_s": 600}, {"level": 2, "target_s": 1200}],
        "incident_types": [
            {
                "name": "medical",
                "service": "115",
                "priority": 1,
                "vehicles": ["ambulance"],
                "calls_per_hour": 1.0,
                "on_scene": {"dist": "fixed", "mean_s": 600},
                "transport_probability": 0.5,
                "handover": {"dist": "fixed", "mean_s": 300},
            },
            {
                "name": "minor",
                "service": "115",
                "priority": 2,
                "vehicles": ["ambulance"],
                "calls_per_hour": 1.0,
                "on_scene": {"dist": "fixed", "mean_s": 600},
            },
        ],
        "stations": [{"name": "S", "lat": STATION[0], "lon": STATION[1]}],
        "units": [{"id": "U1", "vehicle": "ambulance", "station": "S"}],
        "hospitals": [{"name": "H", "lat": 16.0, "lon": 108.01}],
    }
    for k, v in over.items():
        doc[k] = v
    return parse_scenario(doc)


def make_calls(
    rows: list[tuple[float, int, float, float, bool]], *, on_scene_s: float = 600.0
) -> Calls:
    """Calls from (time_s, type_idx, lat, lon, transport) rows."""
    n = len(rows)
    areas = Areas(("all",), "grid", 1e6, (15.0, 107.0), (), 1, 1)
    return Calls(
        time_s=np.array([r[0] for r in rows], dtype=float),
        type_idx=np.array([r[1] for r in rows], dtype=np.int32),
        lat=np.array([r[2] for r in rows]),
        lon=np.array([r[3] for r in rows]),
        on_scene_s=np.full(n, on_scene_s),
        transport=np.array([r[4] for r in rows], dtype=bool),
        handover_s=np.full(n, 300.0),
        area=np.zeros(n, dtype=np.int32),
        areas=areas,
    )


def one_unit(turnout_s: float = 60.0) -> list[SimUnit]:
    return [SimUnit("U1", "ambulance", "S", STATION[0], STATION[1], turnout_s)]


def test_tiny_second_call_waits_for_the_only_unit() -> None:
    # Call A at t=0, 0.01 deg north (1000 s); unit turnout 60 s: arrives 1060, on scene to 1660.
    # Call B at t=1200, 0.02 deg east (2000 s from the station): waits until 1660, when the unit
    # frees at A and is sent from there, no turnout: 1000 s back to the corner + 2000 s east = 3000 s.
    sc = tiny_scenario()
    calls = make_calls([(0.0, 0, 16.01, 108.0, False), (1200.0, 0, 16.0, 108.02, False)])
    res = Simulation(FakeNet(), sc, calls, one_unit(), HOSP, monitor=True).run()
    c = res.calls
    assert res.n_calls == 2 and res.n_served == 2 and res.n_unserved == 0
    assert c["response_s"].tolist() == pytest.approx([1060.0, 3460.0])
    assert c["wait_s"].tolist() == pytest.approx([0.0, 460.0])
    assert c["turnout_s"].tolist() == pytest.approx([60.0, 0.0])
    assert c["drive_s"].tolist() == pytest.approx([1000.0, 3000.0])
    assert c["unit"].tolist() == ["U1", "U1"]
    # busy: 0-1660 (A) and 1660-5260 (B: 3000 drive + 600 on scene), then 2000 s home
    assert res.units["busy_s"][0] == pytest.approx(1660 + 3600)
    assert res.units["returning_s"][0] == pytest.approx(2000.0)
    assert res.units["utilisation"][0] == pytest.approx(5260 / 10800)
    names = [e[1] for e in res.events]
    assert names == [
        "call", "dispatch", "arrive_scene", "call", "leave_scene", "dispatch", "arrive_scene",
        "leave_scene", "arrive_station",
    ]  # fmt: skip


def test_tiny_dispatched_while_returning_from_where_it_is() -> None:
    # A as above: unit frees at 1660 and drives home (1000 s, straight south along the meridian).
    # B at t=2000: the unit is 340 s into its return; the next vertex of its route is the corner
    # (the station itself), 660 s away; from there 2000 s east: eta 2660 s, no turnout.
    sc = tiny_scenario()
    calls = make_calls([(0.0, 0, 16.01, 108.0, False), (2000.0, 0, 16.0, 108.02, False)])
    sim = Simulation(FakeNet(), sc, calls, one_unit(), HOSP)
    res = sim.run()
    c = res.calls
    assert c["response_s"].tolist() == pytest.approx([1060.0, 2660.0])
    assert c["wait_s"].tolist() == pytest.approx([0.0, 0.0])
    assert c["turnout_s"].tolist() == pytest.approx([60.0, 0.0])


def test_tiny_transport_to_hospital_and_handover() -> None:
    sc = tiny_scenario()
    calls = make_calls([(0.0, 0, 16.01, 108.0, True), (3000.0, 0, 16.01, 108.0, False)])
    res = Simulation(FakeNet(), sc, calls, one_unit(), HOSP, monitor=True).run()
    # A: arrive 1060, leave 1660, hospital (16.0, 108.01) is 2000 s away: 3660, handover to 3960.
    # B at 3000 waits; the unit frees at the hospital at 3960 and drives 0.01 N + 0.01 W = 2000 s.
    assert res.calls["hospital"].tolist() == ["H", ""]
    assert res.calls["transport"].tolist() == [True, False]
    assert res.calls["response_s"].tolist() == pytest.approx([1060.0, 960.0 + 2000.0])
    names = [e[1] for e in res.events][:8]
    assert names == [
        "call", "dispatch", "arrive_scene", "leave_scene", "call", "arrive_hospital", "handover_done",
        "dispatch",
    ]  # fmt: skip


def test_priority_queue_serves_the_most_urgent_first() -> None:
    sc = tiny_scenario()
    # A occupies the unit; B (priority 2) at t=100 and C (priority 1) at t=200 both wait;
    # at 1660 the unit goes to C first.
    calls = make_calls(
        [
            (0.0, 0, 16.01, 108.0, False),
            (100.0, 1, 16.0, 108.01, False),
            (200.0, 0, 16.0, 108.02, False),
        ]
    )
    res = Simulation(FakeNet(), sc, calls, one_unit(), HOSP).run()
    d = res.calls["dispatch_s"]
    assert d[2] == pytest.approx(1660.0) and d[1] > d[2]


def test_conservation_under_overload() -> None:
    sc = tiny_scenario(
        simulation={"horizon_h": 10.0, "seed": 3},
        incident_types=[
            {
                "name": "medical",
                "service": "115",
                "priority": 1,
                "vehicles": ["ambulance"],
                "calls_per_hour": 20.0,
                "on_scene": {"dist": "exponential", "mean_s": 1800},
            }
        ],
    )
    net = FakeNet()
    res = run_scenario(sc, net=net, policies=["fastest", "nearest_straight_line", "optimal_batch"])
    for r in res:
        assert r.n_calls > 150
        assert r.n_unserved > 50  # one unit cannot serve 20 calls an hour
        assert r.n_served + r.n_unserved == r.n_calls
        served = r.calls["served"]
        assert np.all(np.isfinite(r.calls["response_s"][served]))
        assert np.all(np.isnan(r.calls["response_s"][~served]))
        assert np.all(r.calls["wait_s"][served] >= 0)
        assert r.units["utilisation"][0] > 0.9


def test_deterministic_replay_same_seed_same_calls() -> None:
    sc = tiny_scenario(units=[{"id": "U", "vehicle": "ambulance", "station": "S", "count": 3}])
    a = run_scenario(sc, net=FakeNet(), policies=["fastest", "nearest_node"])
    b = run_scenario(sc, net=FakeNet(), policies=["fastest", "nearest_node"])
    for x, y in zip(a, b, strict=True):
        for k in x.calls:
            np.testing.assert_array_equal(x.calls[k], y.calls[k])
    c = run_scenario(sc.with_overrides(seed=2), net=FakeNet())[0]
    assert not np.array_equal(c.calls["time_s"], a[0].calls["time_s"])


def test_policies_see_the_same_calls() -> None:
    sc = tiny_scenario(units=[{"id": "U", "vehicle": "ambulance", "station": "S", "count": 2}])
    res = run_scenario(
        sc,
        net=FakeNet(),
        policies=["fastest", "nearest_straight_line", "nearest_node", "optimal_batch"],
    )
    for r in res[1:]:
        np.testing.assert_array_equal(r.calls["time_s"], res[0].calls["time_s"])
        np.testing.assert_array_equal(r.calls["lat"], res[0].calls["lat"])


def test_unknown_policy_and_missing_vehicle_class() -> None:
    sc = tiny_scenario()
    calls = make_calls([(0.0, 0, 16.01, 108.0, False)])
    with pytest.raises(SimulationError, match="policy='bogus'"):
        Simulation(FakeNet(), sc, calls, one_unit(), HOSP, policy="bogus")
    fire = [SimUnit("E1", "fire_engine", "S", 16.0, 108.0, 80.0)]
    with pytest.raises(SimulationError, match="needs one of ambulance"):
        Simulation(FakeNet(), sc, calls, fire, HOSP)


def test_warmup_excluded_and_generated_calls_on_roads() -> None:
    sc = tiny_scenario(simulation={"horizon_h": 4.0, "warmup_h": 1.0, "seed": 5})
    net = FakeNet()
    seg = road_segments(net)
    assert seg.length_m.sum() > 0
    res = run_scenario(sc, net=net)[0]
    c = res.calls
    assert np.all(c["in_stats"] == (c["time_s"] >= 3600.0))
    b = net.bbox
    assert np.all((c["lat"] >= b[0]) & (c["lat"] <= b[2]) & (c["lon"] >= b[1]) & (c["lon"] <= b[3]))
    assert math.isclose(res.warmup_s, 3600.0)


def test_hospital_capability_is_required() -> None:
    sc = tiny_scenario()
    import dataclasses

    t0 = dataclasses.replace(sc.incident_types[0], hospital_capability="burns")
    sc2 = dataclasses.replace(sc, incident_types=(t0, sc.incident_types[1]))
    calls = make_calls([(0.0, 0, 16.01, 108.0, True)])
    with pytest.raises(SimulationError, match="capability 'burns'"):
        Simulation(
            FakeNet(), sc2, calls, one_unit(), [Hospital("H", "H", 16.0, 108.01, ("trauma",))]
        )
    res = Simulation(
        FakeNet(),
        sc2,
        calls,
        one_unit(),
        [
            Hospital("B", "B", 16.0, 108.03, ("burns",)),
            Hospital("T", "T", 16.0, 108.01, ("trauma",)),
        ],
    ).run()
    assert res.calls["hospital"].tolist() == ["B"]


def test_generate_calls_rate_and_profile() -> None:
    profile = [0.0] * 12 + [2.0] * 12
    sc = tiny_scenario(
        simulation={"horizon_h": 240.0, "seed": 9},
        incident_types=[
            {
                "name": "medical",
                "service": "115",
                "priority": 1,
                "vehicles": ["ambulance"],
                "calls_per_hour": 5.0,
                "hour_profile": profile,
                "on_scene": {"dist": "lognormal", "mean_s": 1200, "sd_s": 600},
            }
        ],
    )
    net = FakeNet()
    seg = road_segments(net)
    from dispatch.sim.demand import areas_for

    calls = generate_calls(sc, segments=seg, areas=areas_for(sc, net.bbox))
    n = len(calls)
    assert abs(n - 1200) < 4 * math.sqrt(1200)
    hours = (calls.time_s // 3600) % 24
    assert np.all(hours >= 12)
    assert np.all(np.diff(calls.time_s) >= 0)
    assert abs(calls.on_scene_s.mean() - 1200) < 100
    again = generate_calls(sc, segments=seg, areas=areas_for(sc, net.bbox))
    np.testing.assert_array_equal(calls.lat, again.lat)
    rep1 = generate_calls(sc, segments=seg, areas=areas_for(sc, net.bbox), replication=1)
    assert len(rep1) != n or not np.array_equal(rep1.time_s, calls.time_s)


# --- parallel runners: identical results whichever executor ---------------------------------


def _parallel_scenario():
    return tiny_scenario(
        simulation={"horizon_h": 8.0, "seed": 11, "replications": 3},
        units=[{"id": "U", "vehicle": "ambulance", "station": "S", "count": 2}],
    )


def _same(a: dict, b: dict) -> None:
    assert list(a) == list(b)
    for p in a:
        assert [r.replication for r in a[p]] == [r.replication for r in b[p]]
        for x, y in zip(a[p], b[p], strict=True):
            for k in x.calls:
                np.testing.assert_array_equal(x.calls[k], y.calls[k])


def test_processes_give_the_same_results_as_one_process() -> None:
    from dispatch.sim.parallel import run_replications
    from tests._sim_fake import make_fake_net

    sc = _parallel_scenario()
    pols = ["fastest", "nearest_straight_line"]
    here = run_replications(sc, policies=pols, workers=1, net_factory=make_fake_net)
    procs = run_replications(sc, policies=pols, workers=2, net_factory=make_fake_net)
    _same(here, procs)
    # replications differ from each other (independent streams)
    assert not np.array_equal(
        here["fastest"][0].calls["time_s"], here["fastest"][1].calls["time_s"]
    )


def test_dask_cluster_gives_the_same_results() -> None:
    distributed = pytest.importorskip("distributed")
    from dispatch.sim.parallel import run_replications
    from tests._sim_fake import make_fake_net

    sc = _parallel_scenario()
    pols = ["fastest", "optimal_batch"]
    here = run_replications(sc, policies=pols, workers=1, net_factory=make_fake_net)
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None
    ) as cluster:
        there = run_replications(
            sc, policies=pols, dask_address=cluster.scheduler_address, net_factory=make_fake_net
        )
    _same(here, there)


def test_dask_unreachable_scheduler_is_a_clean_error() -> None:
    pytest.importorskip("distributed")
    from dispatch.errors import DispatchError
    from dispatch.sim.parallel import run_tasks

    with pytest.raises(DispatchError, match="cannot reach the scheduler"):
        run_tasks([], dask_address="tcp://127.0.0.1:9")


# --- the real network (the danang map, compiled once and cached) ----------------------------


@pytest.fixture(scope="module")
def danang_net():
    import dispatch

    return dispatch.load_network("danang")


def test_tables_match_one_query_at_a_time_on_the_real_map(danang_net) -> None:
    from dispatch.sim.runner import apply_closures, resolve_world
    from dispatch.sim.scenario import load_scenario

    sc = load_scenario("danang_flood").with_overrides(horizon_h=20.0, seed=7)
    world = resolve_world(sc, danang_net)
    calls = generate_calls(sc, segments=world.segments, areas=world.areas)
    ids = apply_closures(sc, danang_net)
    try:
        for policy in ("fastest", "nearest_straight_line"):
            a = Simulation(danang_net, sc, calls, world.units, world.hospitals, policy=policy).run()
            b = Simulation(
                danang_net, sc, calls, world.units, world.hospitals, policy=policy, tables=False
            ).run()
            np.testing.assert_array_equal(a.calls["unit"], b.calls["unit"])
            np.testing.assert_array_equal(a.calls["hospital"], b.calls["hospital"])
            np.testing.assert_allclose(a.calls["response_s"], b.calls["response_s"], atol=1e-6)
    finally:
        for i in ids:
            danang_net.reopen(i)


def test_deterministic_replay_on_the_real_map(danang_net, tmp_path) -> None:
    from dispatch.report.outputs import calls_csv
    from dispatch.sim.scenario import load_scenario

    sc = load_scenario("danang").with_overrides(horizon_h=12.0)
    a = calls_csv(run_scenario(sc, net=danang_net))
    b = calls_csv(run_scenario(sc, net=danang_net))
    assert a == b and a.count("\n") > 20


def test_baselines_against_fastest_on_shipped_scenarios(danang_net) -> None:
    """Report (do not force) how the baselines compare with fastest on the shipped scenarios."""
    import dispatch
    from dispatch.sim.scenario import POLICIES, load_scenario
    from dispatch.sim.stats import paired_differences

    lines = []
    monaco = dispatch.load_network("monaco")
    for name, net in (("danang", danang_net), ("danang_flood", danang_net), ("monaco", monaco)):
        sc = load_scenario(name)
        res = run_scenario(sc, net=net, policies=list(POLICIES))
        diffs = paired_differences({r.policy: [r] for r in res})
        for policy, d in diffs.items():
            m = d["response_mean_s"]["difference"]["mean"]
            p90 = d["response_p90_s"]["difference"]["mean"]
            lines.append(f"{name}: {policy} - fastest: mean {m:+.1f} s, p90 {p90:+.1f} s")
            assert m is not None
        # every policy served the same calls
        assert len({r.n_calls for r in res}) == 1
    print("\n".join(lines))


# --- where calls come from ------------------------------------------------------------------


def test_zones_weight_calls_and_name_the_areas(tmp_path) -> None:
    import json

    from dispatch.sim.demand import areas_for

    west = [[108.0, 16.0], [108.02, 16.0], [108.02, 16.04], [108.0, 16.04], [108.0, 16.0]]
    east = [[108.02, 16.0], [108.04, 16.0], [108.04, 16.04], [108.02, 16.04], [108.02, 16.0]]
    doc = {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "properties": {"name": "West", "weight": 3},
             "geometry": {"type": "Polygon", "coordinates": [west]}},
            {"type": "Feature", "properties": {"name": "East", "weight": 1},
             "geometry": {"type": "Polygon", "coordinates": [east]}},
        ],
    }  # fmt: skip
    (tmp_path / "wards.geojson").write_text(json.dumps(doc))
    sc = parse_scenario_in(tmp_path, {"locations": "zones", "zones": "wards.geojson"})
    net = FakeNet()
    calls = generate_calls(sc, segments=road_segments(net), areas=areas_for(sc, net.bbox))
    names = np.array(calls.areas.names)[calls.area]
    n_w, n_e = int(np.sum(names == "West")), int(np.sum(names == "East"))
    assert n_w + n_e == len(calls) > 200
    assert 2.0 < n_w / n_e < 4.5  # weights 3:1
    res = run_scenario(sc, net=net)[0]
    from dispatch.sim.stats import summarize

    assert set(summarize(res)["by_area"]) <= {"West", "East", "outside"}


def test_grid_cells_and_historical_points(tmp_path) -> None:
    from dispatch.sim.demand import areas_for

    net = FakeNet()
    sc = parse_scenario_in(
        tmp_path, {"locations": "grid", "cell_m": 2000, "cells": [[16.03, 108.03, 1.0]]}
    )
    calls = generate_calls(sc, segments=road_segments(net), areas=areas_for(sc, net.bbox))
    assert len(calls) > 100
    # on the four road pieces whose middles fall in the cell: within one piece (0.01 deg) of it
    assert np.all(np.abs(calls.lat - 16.03) <= 0.0101) and np.all(
        np.abs(calls.lon - 108.03) <= 0.0101
    )
    (tmp_path / "calls.csv").write_text("lat,lon,weight\n16.01,108.01,1\n16.02,108.03,0\n")
    sc = parse_scenario_in(tmp_path, {"locations": "points", "points": "calls.csv"})
    calls = generate_calls(sc, segments=road_segments(net), areas=areas_for(sc, net.bbox))
    assert set(zip(calls.lat.tolist(), calls.lon.tolist(), strict=True)) == {(16.01, 108.01)}
    (tmp_path / "bad.csv").write_text("lat,lon\n16.01,abc\n")
    sc = parse_scenario_in(tmp_path, {"locations": "points", "points": "bad.csv"})
    from dispatch.sim.scenario import ScenarioError

    with pytest.raises(ScenarioError, match=r"bad.csv:2: lon='abc' is not a number"):
        generate_calls(sc, segments=road_segments(net), areas=areas_for(sc, net.bbox))


def parse_scenario_in(folder, demand: dict):
    """tiny_scenario with a [demand] table, as if its file were in ``folder``."""
    import dataclasses

    from dispatch.sim.scenario import _Parser

    base = tiny_scenario(simulation={"horizon_h": 200.0, "seed": 2})
    loc = _Parser(folder / "scenario.toml").demand(demand)
    return dataclasses.replace(base, demand=loc)
