"""Move-up in the simulation: the hook, ``none`` = return home, ``fill_gaps`` by hand, reporting."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from dispatch.geo import haversine_m
from dispatch.sim.moveup import MOVE_UP_POLICIES, make_move_up
from dispatch.sim.runner import run_scenario
from dispatch.sim.simulation import Simulation, SimulationError, SimUnit
from dispatch.sim.stats import pooled_summary
from tests._sim_fake import FakeNet
from tests.sim.test_simulation import HOSP, make_calls, tiny_scenario

# Two stations on one east-west line (FakeNet: 0.01 degree = 1,000 s): S1 with A1 and A2,
# S2 0.02 degree east with B1. Turnout 60 s; calls of type 1 ("minor": no transport), 600 s on scene.
S1, S2 = (16.0, 108.0), (16.0, 108.02)


def fleet() -> list[SimUnit]:
    return [
        SimUnit("A1", "ambulance", "S1", *S1, 60.0),
        SimUnit("A2", "ambulance", "S1", *S1, 60.0),
        SimUnit("B1", "ambulance", "S2", *S2, 60.0),
    ]


def run(rows: list[tuple[float, int, float, float, bool]], move_up: Any, **kw: Any) -> Any:
    sc = tiny_scenario()
    return Simulation(
        FakeNet(), sc, make_calls(rows), fleet(), HOSP, monitor=True, move_up=move_up, **kw
    ).run()


def test_fill_gaps_refills_an_emptied_station_by_hand() -> None:
    # t=0: a call 0.005 degree north of S2: B1 goes (60 + 500 s); S2 is empty of ambulances while
    # S1 keeps two, so A1 (id order breaks the tie with A2) drives S1 -> S2: 2,000 s, 2.14 km.
    # B1, freed at 1,160 s, finds no empty station (S1 has A2, S2 has A1 coming) and goes to S2.
    res = run([(0.0, 1, 16.005, 108.02, False)], "fill_gaps")
    a1 = [(e, round(t, 6)) for t, e, u, _ in res.events if u == "A1"]
    assert a1 == [("relocate", 0.0), ("arrive_post", 2000.0)]
    assert res.calls["unit"].tolist() == ["B1"]
    km = float(haversine_m(S1[0], S1[1], S2[0], S2[1])) / 1000
    assert km == pytest.approx(2.14, abs=0.01)
    assert res.units["relocations"].tolist() == [1, 0, 0]
    assert res.units["relocation_km"] == pytest.approx([km, 0.0, 0.0])
    assert res.units["relocating_s"] == pytest.approx([2000.0, 0.0, 0.0])
    assert res.move_up == "fill_gaps"
    s = pooled_summary([res])["move_up"]
    assert s["policy"] == "fill_gaps" and s["relocations"] == 1
    per_unit_day = 1 / 3 / (3.0 / 24)  # one move, 3 units, 3 hours
    assert s["moves_per_unit_per_day"] == pytest.approx(per_unit_day, abs=1e-3)
    assert s["relocation_km"] == pytest.approx(km, abs=1e-3)


def test_a_relocating_unit_is_dispatched_on_the_way() -> None:
    # As above; at t=1,000 A1 is half way to S2 (next route vertex: S2, 1,000 s on) when a call
    # comes in 0.005 degree east of S2: A1 arrives after 1,000 + 500 s (no turnout: it is on the
    # road); A2 at S1 would need 60 + 2,500 s and B1 is on scene. A1 drove 1.07 km relocating.
    res = run([(0.0, 1, 16.005, 108.02, False), (1000.0, 1, 16.0, 108.025, False)], "fill_gaps")
    assert res.calls["unit"].tolist() == ["B1", "A1"]
    assert res.calls["dispatch_s"][1] == pytest.approx(1000.0)
    assert res.calls["response_s"][1] == pytest.approx(1500.0)
    assert res.calls["turnout_s"][1] == 0.0
    half = float(haversine_m(S1[0], S1[1], S2[0], S2[1])) / 2000
    assert res.units["relocation_km"][0] == pytest.approx(half)
    assert res.units["relocating_s"][0] == pytest.approx(1000.0)


def test_none_is_return_home_and_changes_nothing() -> None:
    rows = [(0.0, 1, 16.005, 108.02, False), (1000.0, 1, 16.0, 108.025, False)]
    base = run(rows, None)
    none = run(rows, "none")
    assert base.move_up is None and none.move_up is None
    assert set(none.units) == set(base.units)  # no move-up columns
    for k in base.calls:
        np.testing.assert_array_equal(base.calls[k], none.calls[k])
    assert base.events == none.events
    assert not [e for e in base.events if e[1] in ("relocate", "arrive_post")]
    # without move-up the second call gets A1 from S1 (B1 busy; A1 before A2 by id)
    assert base.calls["unit"].tolist() == ["B1", "A1"]
    assert base.calls["response_s"][1] == pytest.approx(60 + 2500.0)
    assert "move_up" not in pooled_summary([base])


def test_fill_gaps_conserves_calls_and_tables_match_one_query_at_a_time() -> None:
    sc = tiny_scenario(
        simulation={"horizon_h": 24.0, "seed": 4},
        stations=[{"name": "S1", "lat": S1[0], "lon": S1[1]},
                  {"name": "S2", "lat": S2[0], "lon": S2[1]}],
        units=[{"id": "A", "vehicle": "ambulance", "station": "S1", "count": 2},
               {"id": "B", "vehicle": "ambulance", "station": "S2"}],
    )  # fmt: skip
    a, b = run_scenario(sc, net=FakeNet(), policies=["fastest", "nearest_straight_line"],
                        move_up="fill_gaps")  # fmt: skip
    for r in (a, b):
        assert r.n_served + r.n_unserved == r.n_calls
        assert r.units["relocations"].sum() > 0
    from dispatch.sim.demand import generate_calls
    from dispatch.sim.runner import resolve_world

    net = FakeNet()
    world = resolve_world(sc, net)
    calls = generate_calls(sc, segments=world.segments, areas=world.areas)
    runs = [
        Simulation(net, sc, calls, world.units, world.hospitals, move_up="fill_gaps",
                   stations=dict(world.stations), tables=t).run()
        for t in (True, False)
    ]  # fmt: skip
    for k in runs[0].calls:
        np.testing.assert_array_equal(runs[0].calls[k], runs[1].calls[k])
    np.testing.assert_allclose(runs[0].units["relocation_km"], runs[1].units["relocation_km"])


def test_unknown_move_up_policy() -> None:
    assert set(MOVE_UP_POLICIES) == {"none", "fill_gaps", "dmexclp", "compliance"}
    with pytest.raises(
        SimulationError, match="move_up='dm' is not one of none, fill_gaps, dmexclp, compliance"
    ):
        make_move_up("dm")
    with pytest.raises(SimulationError, match="move_up='x'"):
        run_scenario(tiny_scenario(), net=FakeNet(), move_up="x")


def test_a_custom_policy_through_the_protocol() -> None:
    # a policy object: after the first dispatch, send B1 (idle at S2) to S1; counted like any move
    class SendB1West:
        name = "send_b1_west"

        def __init__(self) -> None:
            self.done = False

        def moves(self, sim: Any, changed: Any) -> list[tuple[Any, int]]:
            if self.done:
                return []
            self.done = True
            b1 = next(u for u in sim.units if u.id == "B1")
            return [(b1, sim.post_names["ambulance"].index("S1"))]

    res = run([(0.0, 1, 15.99, 108.0, False)], SendB1West())
    b1 = [(e, round(t, 6)) for t, e, u, _ in res.events if u == "B1"]
    assert b1 == [("relocate", 0.0), ("arrive_post", 2000.0)]
    assert res.units["relocations"].tolist() == [0, 0, 1]


TINY_TOML = """
name = "tiny_moveup"
map = "fake"
[simulation]
horizon_h = 24.0
seed = 4
[[priorities]]
level = 1
target_s = 600
[[incident_types]]
name = "medical"
service = "115"
priority = 1
vehicles = ["ambulance"]
calls_per_hour = 2.0
on_scene = { dist = "fixed", mean_s = 900 }
[[stations]]
name = "S1"
lat = 16.0
lon = 108.0
[[stations]]
name = "S2"
lat = 16.0
lon = 108.02
[[units]]
id = "A"
vehicle = "ambulance"
station = "S1"
count = 2
[[units]]
id = "B"
vehicle = "ambulance"
station = "S2"
"""


def test_compare_policies_pairs_the_move_up_with_none(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import functools
    import json

    import dispatch.sim.parallel as parallel
    from dispatch.cli import main
    from tests._sim_fake import make_fake_net

    path = tmp_path / "tiny_moveup.toml"
    path.write_text(TINY_TOML)
    monkeypatch.setattr(
        parallel,
        "run_replications",
        functools.partial(parallel.run_replications, net_factory=make_fake_net),
    )
    args = ["simulate", str(path), "--quiet", "--json", "--compare-policies"]
    assert main([*args, "--move-up", "fill_gaps"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["move_up"]["policy"] == "fill_gaps" and out["move_up"]["relocations"] > 0
    cmp = out["comparison"]
    assert list(cmp["policies"])[-1] == "fastest, move-up none"
    # the same calls with and without move-up; the paired difference is none minus fill_gaps
    assert main(args) == 0
    plain = json.loads(capsys.readouterr().out)
    assert "move_up" not in plain
    assert cmp["policies"]["fastest, move-up none"] == plain["comparison"]["policies"]["fastest"]
    d = cmp["paired_differences"]["fastest, move-up none"]["response_mean_s"]
    mean_none = plain["response_s"]["mean"]
    assert d["difference"]["mean"] == pytest.approx(mean_none - out["response_s"]["mean"], abs=2e-3)


# -- DMEXCLP ------------------------------------------------------------------------------------
# A third station S3, 0.02 degree north of S1, with no unit (a post). Demand: one point at each
# station, weights 1 (S1), 1 (S2) and w3 (S3). Covered: turnout 60 s + drive <= 600 s, so only the
# point at a unit's own station (the stations are 2,000 s apart). q = 0.5.
S3 = (16.02, 108.0)
STATIONS = {"S1": S1, "S2": S2, "S3": S3}


def dmexclp(w3: float, **kw: Any) -> Any:
    from dispatch.plan.demand import Demand
    from dispatch.sim.moveup import DMEXCLPMoveUp

    pts = np.array([S1, S2, S3])
    d = Demand(
        pts[:, 0], pts[:, 1], np.array([1.0, 1.0, w3]), ("a", "b", "c"), ("a", "b", "c"), "hand"
    )
    return DMEXCLPMoveUp(demand=d, busy_fraction=0.5, target_s=600.0, **kw)


def test_dmexclp_sends_the_freed_unit_where_it_adds_most_coverage_by_hand() -> None:
    # t=0: a call 0.005 degree north of S2; B1 goes (560 s), is on scene 600 s, freed at 1,160 s at
    # (16.005, 108.02). The other idle units, A1 and A2, wait at S1: the S1 point has k = 2, the
    # others k = 0. Gain of B1 at S1: 1 * 0.5 * 0.5^2 = 0.125; at S2: 1 * 0.5 = 0.5; at S3:
    # 3 * 0.5 = 1.5. So B1 goes to S3: 0.015 + 0.02 degree = 3,500 s, arriving at 4,660 s.
    policy = dmexclp(3.0)
    res = run([(0.0, 1, 16.005, 108.02, False)], policy, stations=STATIONS)
    b1 = [(e, round(t, 6)) for t, e, u, _ in res.events if u == "B1"]
    assert b1[-2:] == [("relocate", 1160.0), ("arrive_post", 4660.0)]
    assert res.units["relocations"].tolist() == [0, 0, 1]
    assert res.move_up == "dmexclp"
    model = policy._models[("ambulance", 0)]
    assert model.gains(idle_stations=[0, 0]) == pytest.approx([0.125, 0.5, 1.5])
    # the A units never moved: DMEXCLP moves only the freed unit
    assert not [e for e in res.events if e[2] in ("A1", "A2") and e[1] == "relocate"]


def test_dmexclp_keeps_the_unit_home_when_home_adds_most() -> None:
    # w3 = 0.4: gain at S3 is 0.4 * 0.5 = 0.2 < 0.5 at S2, so B1 just returns to S2
    res = run([(0.0, 1, 16.005, 108.02, False)], dmexclp(0.4), stations=STATIONS)
    assert res.units["relocations"].tolist() == [0, 0, 0]
    b1 = [(e, round(t, 6)) for t, e, u, _ in res.events if u == "B1"]
    assert b1[-1] == ("arrive_station", 1160.0 + 500.0)


def test_dmexclp_only_uses_the_allowed_posts() -> None:
    # S3 would win (as above) but it is not an allowed post: B1 stays with S2
    res = run([(0.0, 1, 16.005, 108.02, False)], dmexclp(3.0, posts=["S1", "S2"]),
              stations=STATIONS)  # fmt: skip
    assert res.units["relocations"].tolist() == [0, 0, 0]


def test_dmexclp_settings_from_the_scenario() -> None:
    from dispatch.sim.moveup import DEFAULT_BUSY_FRACTION, DMEXCLPMoveUp

    sc = tiny_scenario(move_up={"policy": "dmexclp", "busy_fraction": 0.2, "target_s": 700,
                                "posts": ["S"]})  # fmt: skip
    q, target, posts, cell = DMEXCLPMoveUp()._settings(Simulation(
        FakeNet(), sc, make_calls([]), fleet(), HOSP))  # fmt: skip
    assert (q, target, posts, cell) == (0.2, 700.0, ("S",), 500.0)
    q, target, _, _ = DMEXCLPMoveUp()._settings(
        Simulation(FakeNet(), tiny_scenario(), make_calls([]), fleet(), HOSP)
    )
    assert (q, target) == (DEFAULT_BUSY_FRACTION, 600.0)  # default q, the P1 target


def test_dmexclp_on_the_scenario_demand_conserves_calls_and_repeats() -> None:
    # demand from the scenario's call model (sampled, binned in cells) on the fake roads
    sc = tiny_scenario(
        simulation={"horizon_h": 24.0, "seed": 4},
        stations=[{"name": "S1", "lat": S1[0], "lon": S1[1]},
                  {"name": "S2", "lat": S2[0], "lon": S2[1]},
                  {"name": "S3", "lat": 16.03, "lon": 108.03}],
        units=[{"id": "A", "vehicle": "ambulance", "station": "S1", "count": 2},
               {"id": "B", "vehicle": "ambulance", "station": "S2"}],
        move_up={"cell_m": 1000.0},
    )  # fmt: skip
    a = run_scenario(sc, net=FakeNet(), move_up="dmexclp")[0]
    b = run_scenario(sc, net=FakeNet(), move_up="dmexclp")[0]
    assert a.n_served + a.n_unserved == a.n_calls
    assert a.units["relocations"].sum() > 0
    for k in a.calls:
        np.testing.assert_array_equal(a.calls[k], b.calls[k])
    none = run_scenario(sc, net=FakeNet())[0]
    np.testing.assert_array_equal(none.calls["time_s"], a.calls["time_s"])  # the same calls
