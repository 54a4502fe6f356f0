"""Coverage: hand-checked matrices, the turnout rule, independent recomputation with scipy on the
exported network, and the CLI's outputs and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

import dispatch
from dispatch.cli import main
from dispatch.plan import PlanError
from dispatch.plan.coverage import coverage, coverage_by_band, coverage_from_matrix
from dispatch.plan.demand import Demand, grid_demand, points_demand, scenario_demand
from dispatch.plan.io import Units

DATA = Path(__file__).parents[1] / "data" / "plan"
ROOT = Path(__file__).parents[2]
FLEET = str(ROOT / "scenarios" / "danang_fleet.csv")
INF = np.inf


def test_hand_matrix_shares() -> None:
    # 3 units (2 ambulances, 1 engine) x 4 points; target 300 s
    r = np.array([[100.0, 400.0, 250.0, INF],
                  [200.0, 290.0, 500.0, INF],
                  [50.0, 301.0, INF, INF]])  # fmt: skip
    w = np.array([1.0, 2.0, 3.0, 4.0])
    res = coverage_from_matrix(r, ["ambulance", "ambulance", "fire_engine"], w, target_s=300,
                               zone=["a", "a", "b", "b"])  # fmt: skip
    # point 0: 3 units within; point 1: one (290); point 2: one (250); point 3: none and no road
    assert res.first_share == pytest.approx(6 / 10)
    assert res.double_share == pytest.approx(1 / 10)
    assert list(res.n_within) == [3, 1, 1, 0]
    assert res.by_class["ambulance"].share == pytest.approx(6 / 10)
    assert res.by_class["ambulance"].double_share == pytest.approx(1 / 10)
    assert res.by_class["fire_engine"].share == pytest.approx(1 / 10)
    assert res.by_class["fire_engine"].uncoverable_points == 2  # points 2 and 3
    assert res.uncoverable_points == 1 and res.uncoverable_weight == 4.0
    assert res.zones == {"a": {"weight": 3.0, "share": 1.0}, "b": {"weight": 7.0, "share": 3 / 7}}
    # exactly on the target counts as covered
    assert coverage_from_matrix([[300.0]], ["ambulance"], [1.0], target_s=300).first_share == 1.0


@pytest.mark.parametrize("target", [0, -5, float("nan"), float("inf"), "x"])
def test_bad_target(target: object) -> None:
    with pytest.raises(PlanError, match="target_s"):
        coverage_from_matrix([[1.0]], ["ambulance"], [1.0], target_s=target)  # type: ignore[arg-type]


def test_turnout_rule_and_scipy_recomputation(danang: dispatch.Network) -> None:
    """Units and demand on intersections: response = turnout + scipy Dijkstra on the exported edges."""
    # plain nodes: a junction expanded for restrictions or turn costs has several at one point
    core = np.flatnonzero(danang.class_core("ambulance") & (danang.node_osmid > 0))
    rng = np.random.default_rng(7)
    unit_nodes = rng.choice(core, 4, replace=False)
    dem_nodes = rng.choice(core, 60, replace=False)
    turnout = np.array([0.0, 30.0, 60.0, 90.0])
    units = Units(np.array(["u0", "u1", "u2", "u3"], dtype=object),
                  np.array(["ambulance"] * 4, dtype=object), danang.node_lat[unit_nodes],
                  danang.node_lon[unit_nodes], turnout)  # fmt: skip
    demand = Demand(danang.node_lat[dem_nodes], danang.node_lon[dem_nodes], np.ones(60),
                    ("",) * 60, tuple(map(str, dem_nodes)), "nodes")  # fmt: skip
    et = danang.edge_table("ambulance", hour=7.5)
    index = {int(o): i for i, o in enumerate(danang.node_osmid)}
    u = np.array([index[int(x)] for x in et["u"]])
    v = np.array([index[int(x)] for x in et["v"]])
    # parallel arcs: keep the fastest (csr_matrix would add duplicates up)
    order = np.lexsort((et["travel_time_s"], v, u))
    first = np.r_[True, (np.diff(u[order]) != 0) | (np.diff(v[order]) != 0)]
    keep = order[first]
    g = csr_matrix(
        (et["travel_time_s"][keep], (u[keep], v[keep])), shape=(danang.n_nodes, danang.n_nodes)
    )
    d = dijkstra(g, indices=unit_nodes)[:, dem_nodes] + turnout[:, None]
    for target in (120.0, 240.0):
        res = coverage(danang, units, demand, target_s=target, hour=7.5)
        within = (d <= target + 1e-6).sum(axis=0)
        np.testing.assert_array_equal(res.n_within, within)
        np.testing.assert_allclose(res.first_s, d.min(axis=0), rtol=1e-9, atol=1e-6)
    # the rule: +t turnout on every unit is the same as a target t shorter
    more = Units(units.ids, units.vehicle, units.lat, units.lon, turnout + 45.0)
    a = coverage(danang, more, demand, target_s=240.0, hour=7.5)
    b = coverage(danang, units, demand, target_s=195.0, hour=7.5)
    np.testing.assert_array_equal(a.n_within, b.n_within)


def test_closure_lowers_coverage(danang: dispatch.Network) -> None:
    units = [{"id": "A", "vehicle": "ambulance", "lat": 16.0594, "lon": 108.2099, "turnout_s": 60}]
    demand = grid_demand(danang, cell_m=300)
    before = coverage(danang, units, demand, target_s=240)
    ring = [[108.2040, 16.0400], [108.2160, 16.0400], [108.2160, 16.0700], [108.2040, 16.0700],
            [108.2040, 16.0400]]  # fmt: skip
    cid = danang.close_polygon({"type": "Polygon", "coordinates": [ring]}, vehicles=["ambulance"])  # type: ignore[attr-defined]
    try:
        during = coverage(danang, units, demand, target_s=240)
    finally:
        danang.reopen(cid)  # type: ignore[attr-defined]
    assert during.first_share < before.first_share
    assert coverage(danang, units, demand, target_s=240).first_share == before.first_share


def test_uncoverable_point_counted_not_dropped(danang: dispatch.Network) -> None:
    demand = points_demand(str(DATA / "demand_unreachable.csv"))
    units = [{"id": "A", "vehicle": "ambulance", "lat": 16.0594, "lon": 108.2099}]
    res = coverage(danang, units, demand, target_s=900)
    assert res.uncoverable_points == 1 and res.uncoverable_weight == 1.0
    assert res.first_share == pytest.approx(3 / 4)
    assert res.zones["east"]["share"] == pytest.approx(2 / 3)


def test_scenario_demand_by_band(danang: dispatch.Network) -> None:
    from dispatch.sim.scenario import load_scenario

    sc = load_scenario("danang")
    day = scenario_demand(sc, danang, cell_m=400, days=50)
    rush = scenario_demand(sc, danang, cell_m=400, band="evening_rush", days=50)
    rate = sum(it.calls_per_hour for it in sc.incident_types)
    assert day.weight.sum() == pytest.approx(rate, rel=0.1)  # expected calls per hour
    assert rush.weight.sum() > day.weight.sum()  # the profiles peak in the evening
    again = scenario_demand(sc, danang, cell_m=400, days=50)
    np.testing.assert_array_equal(day.weight, again.weight)  # same seed, same numbers
    units = [{"id": "A", "vehicle": "ambulance", "lat": 16.0594, "lon": 108.2099}]
    bands = coverage_by_band(danang, units, lambda b: scenario_demand(sc, danang, cell_m=400,
                                                                      band=b, days=20))  # fmt: skip
    assert set(bands) == {"off_peak", "morning_rush", "evening_rush", "night"}
    assert bands["morning_rush"][1].first_s.mean() > bands["night"][1].first_s.mean()


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_cli_coverage_outputs(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    rc, out, _ = run(capsys, "coverage", "danang", "--fleet", FLEET, "--hour", "7.5",
                     "--target-s", "150", "--json", "--out", str(tmp_path))  # fmt: skip
    assert rc == 0
    s = json.loads(out)
    b = s["bands"]["morning_rush"]
    assert b["units"] == 12 and b["units_unavailable"] == 1
    assert 0 < b["double_share"] < b["first_unit_share"] < 1
    assert b["first_unit_share"] >= max(c["share"] for c in b["by_class"].values())
    gj = json.loads((tmp_path / "coverage_morning_rush.geojson").read_text())
    demand = [f for f in gj["features"] if f["properties"]["layer"] == "demand"]
    assert len(demand) == b["demand_points"]
    assert {f["properties"]["status"] for f in demand} >= {"covered", "uncovered"}
    assert (tmp_path / "coverage_morning_rush.png").read_bytes()[:4] == b"\x89PNG"
    assert json.loads((tmp_path / "coverage.json").read_text())["bands"]["morning_rush"] == b


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--demand", str(DATA / "bad_demand_row.csv")], "line 4: field lat='16.05x'"),
        (["--demand", str(DATA / "bad_demand_weight.csv")], "line 3: field weight='-3'"),
        (["--target-s", "0"], "--target-s=0.0"),
        (["--hour", "25"], "--hour 25.0"),
    ],
)
def test_cli_coverage_bad_input(capsys: pytest.CaptureFixture[str], argv: list[str],
                                message: str) -> None:  # fmt: skip
    rc, _, err = run(capsys, "coverage", "danang", "--fleet", FLEET, *argv)
    assert rc == 2 and message in err and err.count("\n") == 1


def test_cli_coverage_all_busy(capsys: pytest.CaptureFixture[str]) -> None:
    rc, _, err = run(capsys, "coverage", "danang", "--fleet", str(DATA / "fleet_all_busy.csv"))
    assert rc == 2 and "no available unit" in err and err.count("\n") == 1


def test_cli_target_no_unit_can_meet(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run(
        capsys, "coverage", "danang", "--fleet", FLEET, "--hour", "12", "--target-s", "30"
    )
    assert rc == 0 and "no unit reaches any demand point within 30 s in: off_peak" in out
    assert "0.0%" in out


def test_scenario_zones_label_points(danang: dispatch.Network, tmp_path: Path) -> None:
    """A scenario with a zones file: demand points carry the zone names, shares per zone."""
    lat0, lon0, lat1, lon1 = danang.bbox
    mid = (lon0 + lon1) / 2

    def box(a: float, b: float) -> list[list[float]]:
        return [[a, lat0 - 0.01], [b, lat0 - 0.01], [b, lat1 + 0.01], [a, lat1 + 0.01],
                [a, lat0 - 0.01]]  # fmt: skip

    zones = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"name": "west", "weight": 1},
         "geometry": {"type": "Polygon", "coordinates": [box(lon0 - 0.01, mid)]}},
        {"type": "Feature", "properties": {"name": "east", "weight": 3},
         "geometry": {"type": "Polygon", "coordinates": [box(mid, lon1 + 0.01)]}},
    ]}  # fmt: skip
    (tmp_path / "zones.geojson").write_text(json.dumps(zones))
    (tmp_path / "s.toml").write_text(
        'extends = "danang"\n[demand]\nlocations = "zones"\nzones = "zones.geojson"\n'
    )
    from dispatch.sim.scenario import load_scenario

    d = scenario_demand(load_scenario(tmp_path / "s.toml"), danang, cell_m=300, days=30)
    assert set(d.zone) == {"west", "east"}
    east = np.array([z == "east" for z in d.zone])
    assert d.weight[east].sum() > 2 * d.weight[~east].sum()  # weights 3:1 by zone
    units = [{"id": "A", "vehicle": "ambulance", "lat": 16.0594, "lon": 108.2099}]
    res = coverage(danang, units, d, target_s=150)
    assert set(res.zones) == {"west", "east"}
    assert res.zones["west"]["share"] > res.zones["east"]["share"]  # the unit stands in the west


def test_cli_scenario_units(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run(capsys, "coverage", "danang", "--scenario", "danang", "--hour", "12",
                     "--target-s", "240", "--json")  # fmt: skip
    b = json.loads(out)["bands"]["off_peak"]
    assert rc == 0 and b["units"] == 6  # 3 ambulances, 2 engines, 1 ladder at their stations
    assert set(b["by_class"]) == {"ambulance", "fire_engine", "ladder"}
    rc, _, err = run(capsys, "coverage", "danang")
    assert rc == 2 and "give --fleet" in err and err.count("\n") == 1
