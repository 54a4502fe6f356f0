"""The parts of the simulator: event order, the unit state machine, policies, records."""

from __future__ import annotations

import itertools

import networkx as nx
import numpy as np
import pytest

from dispatch.sim import units as U
from dispatch.sim.events import (
    ARRIVE_STATION,
    CALL,
    EVENT_NAMES,
    P_CALL,
    P_UNIT,
    EventQueue,
)
from dispatch.sim.policies import (
    POLICY_CLASSES,
    NearestNode,
    OptimalBatch,
    RunCardDispatch,
    check_policy,
    make_policy,
    policy_names,
)
from dispatch.sim.records import CallRecords, WaitingCalls
from dispatch.sim.scenario import POLICIES
from dispatch.sim.simulation import Simulation, SimulationError
from tests._sim_fake import FakeNet
from tests.sim.test_simulation import HOSP, make_calls, one_unit, tiny_scenario

# -- events ---------------------------------------------------------------------------------------


def test_events_by_time_then_priority_then_insertion() -> None:
    q = EventQueue()
    q.push(10.0, P_CALL, CALL, 0)
    q.push(10.0, P_UNIT, ARRIVE_STATION, 1, 7)
    q.push(10.0, P_UNIT, ARRIVE_STATION, 2, 7)
    q.push(3.0, P_CALL, CALL, 3)
    q.push(30.0, P_CALL, CALL, 4)  # after the horizon: never handled
    seen = []
    for t, _, _, kind, a, _ in q.drain(horizon_s=20.0):
        seen.append((t, EVENT_NAMES[kind], a))
        if a == 3:  # an event pushed while draining is handled in its turn
            q.push(10.0, P_CALL, CALL, 5)
    assert seen == [
        (3.0, "call", 3),
        (10.0, "arrive_station", 1),
        (10.0, "arrive_station", 2),
        (10.0, "call", 0),
        (10.0, "call", 5),
    ]
    assert q.now_s == 10.0 and q.hour == pytest.approx(10.0 / 3600)


# -- the unit state machine ---------------------------------------------------------------------

#: The lifecycle written out by hand (what docs/simulation.md describes).
EXPECTED = {
    ("available", "dispatch"): "en_route",
    ("returning", "dispatch"): "en_route",
    ("relocating", "dispatch"): "en_route",
    ("en_route", "arrive_scene"): "on_scene",
    ("on_scene", "transport"): "to_hospital",
    ("to_hospital", "arrive_hospital"): "handover",
    ("on_scene", "head_to_post"): "returning",
    ("handover", "head_to_post"): "returning",
    ("on_scene", "clear_at_post"): "available",
    ("handover", "clear_at_post"): "available",
    ("returning", "arrive_station"): "available",
    ("available", "relocate"): "relocating",
    ("returning", "relocate"): "relocating",
    ("relocating", "relocate"): "relocating",
    ("relocating", "arrive_post"): "available",
}


def test_transition_table_is_the_documented_lifecycle() -> None:
    got = {
        (U.STATUS_NAMES[s], U.TRANSITION_NAMES[t]): U.STATUS_NAMES[new]
        for (s, t), new in U.TRANSITIONS.items()
    }
    assert got == EXPECTED


def test_every_other_transition_is_refused() -> None:
    unit = U.SimUnit("A1", "ambulance", "S", 16.0, 108.0, 60.0)
    for s, t in itertools.product(range(len(U.STATUS_NAMES)), range(len(U.TRANSITION_NAMES))):
        u = U.UnitState(0, unit)
        u.status = s
        if (s, t) in U.TRANSITIONS:
            assert u.apply(t) == U.TRANSITIONS[(s, t)]
        else:
            with pytest.raises(SimulationError, match="is not allowed from"):
                u.apply(t)
            assert u.status == s  # unchanged


def test_every_status_is_reachable_and_leads_back_to_available() -> None:
    g = nx.DiGraph([(s, new) for (s, _), new in U.TRANSITIONS.items()])
    assert set(g) == set(range(len(U.STATUS_NAMES)))
    assert nx.descendants(g, U.AVAILABLE) | {U.AVAILABLE} == set(g)
    for s in g:
        assert s == U.AVAILABLE or nx.has_path(g, s, U.AVAILABLE)
    assert set(U.DISPATCHABLE) == {s for (s, t) in U.TRANSITIONS if t == U.DISPATCH}


def test_a_run_follows_the_lifecycle() -> None:
    # one transported call: dispatch, scene, hospital, handover, back to the station
    sc = tiny_scenario()
    calls = make_calls([(0.0, 0, 16.01, 108.0, True)])
    res = Simulation(FakeNet(), sc, calls, one_unit(), HOSP, monitor=True).run()
    assert [e[1] for e in res.events if e[2] == "U1"] == [
        "dispatch",
        "arrive_scene",
        "leave_scene",
        "arrive_hospital",
        "handover_done",
        "arrive_station",
    ]


# -- policies -----------------------------------------------------------------------------------


def test_policy_registry_and_run_card_support_stated_once() -> None:
    assert tuple(POLICY_CLASSES) == POLICIES
    assert policy_names(run_cards=True) == ("fastest", "nearest_straight_line", "nearest_node")
    assert [c.supports_run_cards for c in POLICY_CLASSES.values()] == [True, True, True, False]
    check_policy("nearest_node", run_cards=True)
    with pytest.raises(SimulationError, match="policy='optimal_batch' does not take run cards"):
        check_policy("optimal_batch", run_cards=True)
    with pytest.raises(SimulationError, match="policy='x' is not one of fastest"):
        check_policy("x")
    sc = tiny_scenario()
    assert isinstance(
        make_policy("nearest_node", types=sc.incident_types, fleet_classes={"ambulance"}),
        NearestNode,
    )


def test_run_cards_wrap_the_chosen_policy() -> None:
    from tests.sim.test_simulation_runcards import rescue_scenario

    sc = rescue_scenario()
    kw = {
        "types": sc.incident_types,
        "cards": sc.run_cards,
        "fleet_classes": {"ambulance", "fire_engine"},
    }
    p = make_policy("nearest_straight_line", **kw)
    assert isinstance(p, RunCardDispatch) and p.name == "nearest_straight_line"
    assert p.slots[0] == (frozenset({"fire_engine"}), frozenset({"ambulance"}))
    assert p.type_vehicles[0] == frozenset({"fire_engine", "ambulance"})
    with pytest.raises(SimulationError, match="optimal_batch"):
        make_policy("optimal_batch", **kw)
    kw["fleet_classes"] = {"ambulance"}
    with pytest.raises(SimulationError, match="needs 1 fire_engine"):
        make_policy("fastest", **kw)


def test_optimal_batch_takes_the_nearer_waiting_call_fastest_the_older() -> None:
    # One unit (turnout 60 s) at (16.0, 108.0); FakeNet: 0.01 degree = 1,000 s. Call X at t=0 at
    # (16.01, 108.0): on scene 1060..1660. Meanwhile A (t=100, 0.03 deg east of the station) and
    # B (t=200, 0.005 deg east of X) wait. At 1660 the unit heads home; its next route vertex is
    # the station, 1,000 s away: ETA to A 1000 + 3000 = 4000 s, to B 1000 + 1500 = 2500 s.
    # fastest serves the older call (A) first; optimal_batch assigns the two waiting calls with
    # dispatch.decide.assign (one unit: the smaller ETA wins) and sends it to B.
    sc = tiny_scenario()
    rows = [
        (0.0, 1, 16.01, 108.0, False),
        (100.0, 1, 16.0, 108.03, False),
        (200.0, 1, 16.01, 108.005, False),
    ]
    fast = Simulation(FakeNet(), sc, make_calls(rows), one_unit(), HOSP).run()
    batch = Simulation(
        FakeNet(), sc, make_calls(rows), one_unit(), HOSP, policy="optimal_batch"
    ).run()
    assert isinstance(make_policy("optimal_batch", types=sc.incident_types,
                                  fleet_classes={"ambulance"}), OptimalBatch)  # fmt: skip
    p = sc.processing_s
    assert fast.calls["dispatch_s"][1] == pytest.approx(1660.0)
    assert fast.calls["response_s"][1] == pytest.approx(1660.0 + 4000.0 - 100.0)
    assert batch.calls["dispatch_s"][2] == pytest.approx(1660.0)
    assert batch.calls["response_s"][2] == pytest.approx(1660.0 + 2500.0 - 200.0)
    assert batch.calls["dispatch_s"][1] > batch.calls["dispatch_s"][2] + p


# -- records ------------------------------------------------------------------------------------


def test_conservation_check_catches_a_lost_and_a_doubled_call() -> None:
    rec = CallRecords(3)
    waiting = WaitingCalls(np.array([0.0, 1.0, 2.0]))
    rec.arrived[:] = True
    rec.served[0] = True
    waiting.push(1, (1, frozenset({"ambulance"})))
    with pytest.raises(SimulationError, match="3 calls generated, 1 served, 1 waiting, 0 still"):
        rec.check_conservation(waiting, run_cards=False)  # call 2 is nowhere
    waiting.push(2, (1, frozenset({"ambulance"})))
    rec.check_conservation(waiting, run_cards=False)
    rec.served[2] = True  # served and still waiting
    with pytest.raises(SimulationError, match="conservation check failed"):
        rec.check_conservation(waiting, run_cards=False)
