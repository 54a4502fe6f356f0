"""The compliance-table move-up policy in the simulator: moves checked by hand, tables from the
scenario or solved from the posts, settings validated, same seed same run."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from dispatch.sim.moveup import ComplianceMoveUp
from dispatch.sim.runner import run_scenario
from dispatch.sim.simulation import Simulation, SimulationError, SimUnit
from tests._sim_fake import FakeNet
from tests.sim.test_simulation import HOSP, make_calls, tiny_scenario

# FakeNet: Manhattan metric, 0.01 degree = 1,000 s, routes north/south first then east/west.
# Three stations: S1 with A1, S2 0.02 degree east with B1, S3 0.02 degree north of S2 with C1.
# Turnout 60 s. The call: type 1 ("minor", no transport, 600 s on scene) 0.005 degree east of S2.
S1, S2, S3 = (16.0, 108.0), (16.0, 108.02), (16.02, 108.02)
STATIONS = {"S1": S1, "S2": S2, "S3": S3}
POSTS = ["S1", "S2", "S3"]
CALL = (0.0, 1, 16.0, 108.025, False)


def fleet() -> list[SimUnit]:
    return [
        SimUnit("A1", "ambulance", "S1", *S1, 60.0),
        SimUnit("B1", "ambulance", "S2", *S2, 60.0),
        SimUnit("C1", "ambulance", "S3", *S3, 60.0),
    ]


def run(policy: Any, rows: list[tuple[float, int, float, float, bool]] | None = None) -> Any:
    sc = tiny_scenario(
        stations=[{"name": n, "lat": p[0], "lon": p[1]} for n, p in STATIONS.items()],
        units=[{"id": "U", "vehicle": "ambulance", "station": "S1"}],
    )
    return Simulation(FakeNet(), sc, make_calls(rows or [CALL]), fleet(), HOSP, monitor=True,
                      move_up=policy, stations=STATIONS).run()  # fmt: skip


def events(res: Any, unit: str) -> list[tuple[str, float]]:
    return [(e, round(t, 6)) for t, e, u, _ in res.events if u == unit]


def test_given_table_moves_by_hand() -> None:
    # Rows for 1, 2, 3 free units over (S1, S2, S3): S1; S1 + S2; one at each.
    # t=0: B1 goes (60 + 500 s). Free: A1 at S1, C1 at S3; row 2 wants S1 + S2. Assignments:
    # A1->S1 + C1->S2 = 0 + 2,000 s; A1->S2 + C1->S1 = 2,000 + 4,000 s. So C1 drives S3 -> S2
    # (due south, 2,000 s).
    # t=1,160: B1 freed at (16.0, 108.025), returning to S2; C1 is 0.0116 degree south of S3 at
    # (16.0084, 108.02). Free: A1 (S1), C1 (post S2), B1 (post S2): counts (1, 2, 0), row 3 wants
    # (1, 1, 1). Drive to each post (the unit's own post counts 0):
    #   A1: 0, 2,000, 4,000   C1: 2,840, 0, 1,160   B1: 2,500, 0, 2,500
    # The six assignments cost 2,500 (A1 S1, C1 S2, B1 S3), 1,160 (A1 S1, C1 S3, B1 S2), 6,340,
    # 5,660, 6,840, 6,500: C1 turns back to S3 (1,160 s, there at 2,320 s) and B1 returns to S2.
    policy = ComplianceMoveUp(posts=POSTS, tables={"ambulance": [[1, 0, 0], [1, 1, 0], [1, 1, 1]]})
    res = run(policy)
    assert res.move_up == "compliance"
    assert res.calls["unit"].tolist() == ["B1"]
    assert events(res, "C1") == [
        ("relocate", 0.0), ("relocate", 1160.0), ("arrive_post", 2320.0)
    ]  # fmt: skip
    assert events(res, "B1")[-1] == ("arrive_station", 1660.0)
    assert events(res, "A1") == []
    assert res.units["relocations"].tolist() == [0, 0, 2]
    assert res.units["relocating_s"] == pytest.approx([0.0, 0.0, 2320.0])
    km = 2 * 0.0116 * 111.195  # two legs of 0.0116 degree of latitude (haversine, 6,371 km)
    assert res.units["relocation_km"] == pytest.approx([0.0, 0.0, km], rel=1e-3)
    assert policy._tables[("ambulance", -1)].tolist() == [  # given: every band (key -1)
        [0, 0, 0], [1, 0, 0], [1, 1, 0], [1, 1, 1]
    ]  # fmt: skip


def hand_demand() -> Any:
    from dispatch.plan.demand import Demand

    pts = np.array([S1, S2, S3])
    w = np.array([3.0, 2.0, 1.0])
    return Demand(pts[:, 0], pts[:, 1], w, ("a", "b", "c"), ("a", "b", "c"), "hand")


def test_table_solved_from_the_posts_by_hand() -> None:
    # Demand: a point at each station, weights 3 (S1), 2 (S2), 1 (S3); covered only from its own
    # station (60 + 0 s <= 600 s; the stations are 2,000 s apart). q = 0.5: the k-th unit at a
    # point adds w * 0.5 * 0.5^k. Best placements (MEXCLP): 1 unit S1 (1.5); 2: S1 + S2
    # (1.5 + 1.0); 3: two at S1 + S2 (1.5 + 0.75 + 1.0 beats 1.5 + 1.0 + 0.5).
    # t=0: B1 goes; free A1 (S1), C1 (S3); row 2 = (1, 1, 0): C1 drives to S2 (as above).
    # t=1,160: free A1 (S1), C1 (-> S2, at (16.0084, 108.02)), B1 (-> S2, at (16.0, 108.025));
    # row 3 = (2, 1, 0): two of them to S1, one to S2. A1 + C1 to S1: 0 + 2,840; A1 + B1 to S1:
    # 0 + 2,500 (C1 keeps S2); C1 + B1 to S1: 5,340 + A1 to S2 2,000. So B1 goes to S1 (2,500 s,
    # there at 3,660 s) and C1 carries on to S2 (there at 2,000 s).
    policy = ComplianceMoveUp(demand=hand_demand(), busy_fraction=0.5, target_s=600.0)
    res = run(policy)
    assert policy._tables[("ambulance", 0)].tolist() == [  # solved for the (one) speed band
        [0, 0, 0], [1, 0, 0], [1, 1, 0], [2, 1, 0]
    ]  # fmt: skip
    assert events(res, "C1") == [("relocate", 0.0), ("arrive_post", 2000.0)]
    assert events(res, "B1")[-2:] == [("relocate", 1160.0), ("arrive_post", 3660.0)]
    assert res.units["relocations"].tolist() == [0, 1, 1]


def test_only_the_allowed_posts_are_used() -> None:
    # As above but S2 is not a post. Rows over (S1, S3), weights 3 and 1: 1 unit S1 (1.5); 2: two
    # at S1 (1.5 + 0.75 beats 1.5 + 0.5); 3: two at S1 + S3 (2.25 + 0.5 beats 2.25 + 0.375).
    # t=0: B1 goes; free A1 (S1), C1 (S3); row 2 wants both at S1: C1 drives S3 -> S1 (south
    # 0.02 then west 0.02 degree: 4,000 s). t=1,160: C1 at (16.0084, 108.02), B1 freed at
    # (16.0, 108.025) with its post S2 not allowed; row 3 = S1, S1, S3. Who takes S3: A1
    # 4,000 + B1 to S1 2,500; C1 1,160 + B1 to S1 2,500; B1 2,500 + 0 + 0. So B1 goes to S3
    # (2,500 s, there at 3,660 s) and C1 carries on to S1 (there at 4,000 s).
    policy = ComplianceMoveUp(demand=hand_demand(), busy_fraction=0.5, target_s=600.0,
                              posts=["S1", "S3"])  # fmt: skip
    res = run(policy)
    assert policy._tables[("ambulance", 0)].tolist() == [
        [0, 0, 0], [1, 0, 0], [2, 0, 0], [2, 0, 1]
    ]  # fmt: skip
    assert events(res, "C1") == [("relocate", 0.0), ("arrive_post", 4000.0)]
    assert events(res, "B1")[-2:] == [("relocate", 1160.0), ("arrive_post", 3660.0)]
    assert res.units["relocations"].tolist() == [0, 1, 1]


def test_a_given_table_must_fit_the_fleet() -> None:
    with pytest.raises(SimulationError, match="has 2 rows but there are 3 ambulance units"):
        run(ComplianceMoveUp(posts=POSTS, tables={"ambulance": [[1, 0, 0], [1, 1, 0]]}))
    with pytest.raises(SimulationError, match=r"row 2 is \[2, 1, 0\]; it must give 3 counts"):
        run(ComplianceMoveUp(posts=POSTS, tables={"ambulance": [[1, 0, 0], [2, 1, 0], [1, 1, 1]]}))
    with pytest.raises(SimulationError, match="needs the posts it lists"):
        run(ComplianceMoveUp(tables={"ambulance": [[1, 0, 0], [1, 1, 0], [1, 1, 1]]}))


TABLE_TOML = {
    "policy": "compliance",
    "posts": ["S3", "S1", "S2"],  # the table's columns, in this order
    "compliance_table": {"ambulance": [[0, 1, 0], [0, 1, 1], [1, 1, 1]]},
}


def test_the_scenario_table_and_its_column_order() -> None:
    from dispatch.sim.scenario import MoveUp

    sc = tiny_scenario(
        stations=[{"name": n, "lat": p[0], "lon": p[1]} for n, p in STATIONS.items()],
        units=[{"id": "U", "vehicle": "ambulance", "station": "S1"}],
        move_up=TABLE_TOML,
    )
    assert sc.move_up == MoveUp(
        "compliance", None, None, ("S3", "S1", "S2"), None,
        {"ambulance": ((0, 1, 0), (0, 1, 1), (1, 1, 1))},
    )  # fmt: skip
    # the scenario's policy and table: the same moves as test_given_table_moves_by_hand
    res = Simulation(FakeNet(), sc, make_calls([CALL]), fleet(), HOSP, monitor=True,
                     stations=STATIONS).run()  # fmt: skip
    assert res.move_up == "compliance"
    assert events(res, "C1") == [
        ("relocate", 0.0), ("relocate", 1160.0), ("arrive_post", 2320.0)
    ]  # fmt: skip


def test_same_seed_same_run_on_the_scenario_demand() -> None:
    # the table solved from the scenario's own call model on the fake roads; a day of calls
    sc = tiny_scenario(
        simulation={"horizon_h": 24.0, "seed": 4},
        stations=[{"name": n, "lat": p[0], "lon": p[1]} for n, p in STATIONS.items()],
        units=[{"id": "A", "vehicle": "ambulance", "station": "S1", "count": 2},
               {"id": "B", "vehicle": "ambulance", "station": "S2"}],
        move_up={"policy": "compliance", "cell_m": 1000.0, "busy_fraction": 0.3},
    )  # fmt: skip
    a = run_scenario(sc, net=FakeNet())[0]
    b = run_scenario(sc, net=FakeNet(), move_up="compliance")[0]
    assert a.move_up == b.move_up == "compliance"
    assert a.n_served + a.n_unserved == a.n_calls > 20
    assert a.units["relocations"].sum() > 0
    for k in a.calls:
        np.testing.assert_array_equal(a.calls[k], b.calls[k])
    for k in a.units:
        np.testing.assert_array_equal(a.units[k], b.units[k])
    other = run_scenario(sc.with_overrides(seed=5), net=FakeNet())[0]
    assert not np.array_equal(other.calls["time_s"], a.calls["time_s"])


def test_selectable_on_the_command_line(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import functools
    import json

    import dispatch.sim.parallel as parallel
    from dispatch.cli import main
    from tests._sim_fake import make_fake_net
    from tests.sim.test_simulation_moveup import TINY_TOML

    path = tmp_path / "tiny_moveup.toml"
    path.write_text(TINY_TOML)
    monkeypatch.setattr(
        parallel,
        "run_replications",
        functools.partial(parallel.run_replications, net_factory=make_fake_net),
    )
    args = ["simulate", str(path), "--quiet", "--json", "--move-up", "compliance"]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["move_up"]["policy"] == "compliance" and out["move_up"]["relocations"] > 0
    # a table the fleet does not fit: one line, exit 2
    bad = tmp_path / "bad.toml"
    bad.write_text(TINY_TOML + '[move_up]\nposts = ["S1", "S2"]\n'
                   "[move_up.compliance_table]\nambulance = [[1, 0]]\n")  # fmt: skip
    assert main(["simulate", str(bad), "--quiet", "--move-up", "compliance"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "has 1 rows but there are 3 ambulance units" in err, err
