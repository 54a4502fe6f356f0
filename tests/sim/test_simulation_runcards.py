"""Simulation with run cards: several units per call, first arrival and full complement."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from dispatch.report.outputs import calls_csv
from dispatch.sim.runner import resolve_world, run_scenario
from dispatch.sim.scenario import ScenarioError, load_scenario, parse_scenario
from dispatch.sim.simulation import Simulation, SimulationError, SimUnit
from dispatch.sim.stats import summarize
from tests._sim_fake import FakeNet
from tests.sim.test_simulation import make_calls

# a two-unit run card (1 fire engine + 1 ambulance) for the "rescue" type, inline in the scenario
TWO_UNIT_CARD = {
    "run_cards": {"rescue": {"units": [{"class": "fire_engine"}, {"class": "ambulance"}]}}
}


def rescue_scenario(**over: Any):
    doc: dict[str, Any] = {
        "name": "tiny_runcards",
        "map": "fake",
        "simulation": {"horizon_h": 3.0, "seed": 1},
        "priorities": [{"level": 1, "target_s": 600}],
        "incident_types": [
            {
                "name": "rescue",
                "service": "114",
                "priority": 1,
                "vehicles": ["fire_engine"],
                "calls_per_hour": 1.0,
                "on_scene": {"dist": "fixed", "mean_s": 600},
            }
        ],
        "stations": [
            {"name": "F", "lat": 16.0, "lon": 108.0},
            {"name": "A", "lat": 16.0, "lon": 108.01},
        ],
        "units": [
            {"id": "E1", "vehicle": "fire_engine", "station": "F", "turnout_s": 80},
            {"id": "A1", "vehicle": "ambulance", "station": "A", "turnout_s": 60},
        ],
        "run_cards": TWO_UNIT_CARD,
    }
    doc.update(over)
    return parse_scenario(doc)


def fleet() -> list[SimUnit]:
    return [
        SimUnit("E1", "fire_engine", "F", 16.0, 108.0, 80.0),
        SimUnit("A1", "ambulance", "A", 16.0, 108.01, 60.0),
    ]


def test_two_unit_card_by_hand_and_a_line_that_waits() -> None:
    # Fake network: 0.01 degree (Manhattan) = 1000 s. Call A at t=0 at (16.01, 108.0):
    #   engine 80 + 1000 = 1080 (first arrival), ambulance 60 + 1000 + 1000 = 2060 (full complement).
    #   Both stay 600 s on scene from their own arrival: engine frees at 1680, ambulance at 2660.
    # Call B at t=100 at (16.0, 108.02) finds both busy and waits. At 1680 the engine is sent from
    #   A's scene (1000 s to the corner at its station, then 2000 s east): arrives 4680. The
    #   ambulance line keeps waiting until 2660: 1000 s to the corner + 2000 s east, arrives 5660.
    sc = rescue_scenario()
    calls = make_calls([(0.0, 0, 16.01, 108.0, False), (100.0, 0, 16.0, 108.02, False)])
    res = Simulation(FakeNet(), sc, calls, fleet(), monitor=True).run()
    c = res.calls
    assert c["units"].tolist() == ["E1;A1", "E1;A1"]
    assert c["n_units"].tolist() == [2, 2]
    assert c["unit"].tolist() == ["E1", "E1"]  # the first to arrive
    assert c["response_s"].tolist() == pytest.approx([1080.0, 4580.0])
    assert c["full_complement_s"].tolist() == pytest.approx([2060.0, 5560.0])
    assert c["wait_s"].tolist() == pytest.approx([0.0, 1580.0])
    assert c["complete"].tolist() == [True, True]
    # utilisation counts both units: each was sent twice
    assert res.units["dispatches"].tolist() == [2, 2]
    # engine busy 0-1680 and 1680-5280; ambulance 0-2660 and 2660-6260
    assert res.units["busy_s"].tolist() == pytest.approx([5280.0, 6260.0])
    dispatches = [(round(t), u, k) for t, e, u, k in res.events if e == "dispatch"]
    assert dispatches == [(0, "E1", 0), (0, "A1", 0), (1680, "E1", 1), (2660, "A1", 1)]
    s = summarize(res)
    assert s["run_cards"] == "inline run_cards"
    assert s["full_complement_s"]["mean"] == pytest.approx((2060 + 5560) / 2)
    assert s["by_priority"]["1"]["complete"] == 2
    assert s["response_s"]["mean"] == pytest.approx((1080 + 4580) / 2)


def test_optional_first_responder_only_if_it_arrives_first() -> None:
    card = {
        "run_cards": {
            "rescue": {
                "units": [
                    {"class": "fire_engine"},
                    {"class": "motorbike", "only_if_first": True},
                ]
            }
        }
    }
    sc = rescue_scenario(run_cards=card)
    units = [*fleet(), SimUnit("M1", "motorbike", "A", 16.0, 108.01, 30.0)]
    # call at (16.01, 108.0): engine 1080; motorbike 30 + 2000 = 2030: later, not sent.
    # call at (16.0, 108.011): engine 80 + 1100 = 1180; motorbike 30 + 100 = 130: sent, first.
    calls = make_calls([(0.0, 0, 16.01, 108.0, False), (4000.0, 0, 16.0, 108.011, False)])
    res = Simulation(FakeNet(), sc, calls, units).run()
    assert res.calls["units"].tolist() == ["E1", "E1;M1"]
    assert res.calls["response_s"].tolist() == pytest.approx([1080.0, 130.0])
    # full complement counts mandatory units only
    assert res.calls["full_complement_s"].tolist() == pytest.approx([1080.0, 1180.0])


def test_conservation_and_utilisation_under_overload() -> None:
    sc = rescue_scenario(
        simulation={"horizon_h": 10.0, "seed": 3},
        incident_types=[
            {
                "name": "rescue",
                "service": "114",
                "priority": 1,
                "vehicles": ["fire_engine"],
                "calls_per_hour": 6.0,
                "on_scene": {"dist": "exponential", "mean_s": 1800},
            }
        ],
    )
    for r in run_scenario(sc, net=FakeNet(), policies=["fastest", "nearest_straight_line"]):
        c = r.calls
        assert r.n_calls > 40
        complete, served = c["complete"], c["served"]
        assert (~complete).sum() > 10  # two units cannot keep up: calls wait at the horizon
        assert np.all(complete <= served)
        assert np.all(np.isfinite(c["full_complement_s"][complete]))
        assert np.all(np.isnan(c["full_complement_s"][~complete]))
        assert np.all(c["full_complement_s"][complete] >= c["response_s"][complete])
        assert np.all(c["n_units"][complete] == 2)
        # every unit sent is counted (warm-up 0: every call counts)
        assert r.units["dispatches"].sum() == c["n_units"].sum()
        assert np.all(r.units["utilisation"] > 0.8)


def test_same_seed_same_calls_csv() -> None:
    sc = rescue_scenario(
        units=[
            {"id": "E", "vehicle": "fire_engine", "station": "F", "count": 2},
            {"id": "A", "vehicle": "ambulance", "station": "A", "count": 2},
        ]
    )
    a = calls_csv(run_scenario(sc, net=FakeNet(), policies=["fastest", "nearest_node"]))
    b = calls_csv(run_scenario(sc, net=FakeNet(), policies=["fastest", "nearest_node"]))
    assert a == b and "full_complement_s" in a.splitlines()[0]


def test_fleet_without_a_required_class_and_batch_policy_are_errors() -> None:
    sc = rescue_scenario()
    calls = make_calls([(0.0, 0, 16.01, 108.0, False)])
    with pytest.raises(SimulationError, match="run card needs 1 ambulance"):
        Simulation(FakeNet(), sc, calls, fleet()[:1])
    with pytest.raises(SimulationError, match="optimal_batch"):
        Simulation(FakeNet(), sc, calls, fleet(), policy="optimal_batch")
    with pytest.raises(ScenarioError, match="optimal_batch"):
        sc.with_overrides(policy="optimal_batch")


def test_default_is_one_unit_per_call() -> None:
    sc = load_scenario("danang")
    assert sc.run_cards is None
    rc = load_scenario("danang_runcards")
    assert rc.run_cards is not None and rc.run_cards.source == "run_cards.toml"
    assert rc.incident_types == sc.incident_types


def test_structure_fire_gets_two_engines_a_ladder_and_an_ambulance(danang) -> None:
    sc = load_scenario("danang_runcards")
    world = resolve_world(sc, danang)
    ti = [t.name for t in sc.incident_types].index("structure_fire")
    calls = make_calls([(0.0, ti, 16.0640, 108.2180, False)], on_scene_s=3600.0)
    res = Simulation(danang, sc, calls, world.units, world.hospitals).run()
    c = res.calls
    vehicles = {u.id: u.vehicle for u in world.units}
    sent = c["units"][0].split(";")
    assert sorted(vehicles[u] for u in sent) == [
        "ambulance",
        "fire_engine",
        "fire_engine",
        "ladder",
    ]
    assert c["complete"][0]
    assert c["full_complement_s"][0] >= c["response_s"][0] > sc.processing_s


def test_printed_summary_shows_first_arrival_and_full_complement() -> None:
    from dispatch.report.outputs import format_summary

    sc = rescue_scenario()
    calls = make_calls([(0.0, 0, 16.01, 108.0, False)])
    text = format_summary(summarize(Simulation(FakeNet(), sc, calls, fleet()).run()))
    assert "run cards inline run_cards" in text
    assert "first arrival mean 1080 s" in text and "full complement mean 2060 s" in text
