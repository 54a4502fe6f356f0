"""Scenario files: the shipped ones load; every malformed one fails naming its file and key."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from dispatch.errors import DispatchError
from dispatch.sim.scenario import (
    POLICIES,
    ScenarioError,
    load_scenario,
    parse_scenario,
    scenario_path,
    shipped_scenarios,
)

BAD = Path(__file__).parents[1] / "data" / "bad_scenarios"
BAD_FILES = sorted(BAD.glob("*.toml"))


def test_shipped_scenarios_load_and_are_labelled() -> None:
    names = shipped_scenarios()
    for n in ("danang", "danang_flood", "monaco", "campo_grande_year"):
        assert n in names
    for n in names:
        sc = load_scenario(n)
        assert sc.policy in POLICIES and sc.horizon_h > 0
        text = scenario_path(n).read_text(encoding="utf-8")
        # made-up values are labelled as such, with where real ones come from
        assert "ILLUSTRATIVE" in text and "call records" in text or "extends" in text


def test_danang_is_a_day_in_hai_chau_with_nfpa_turnout() -> None:
    sc = load_scenario("danang")
    assert sc.map == "danang" and sc.horizon_h == 24
    assert sc.turnout_s == {"114": 80.0, "115": 60.0}
    assert {t.service for t in sc.incident_types} == {"114", "115"}
    assert all(abs(sum(t.hour_profile) - 24) < 1e-9 for t in sc.incident_types)


def test_flood_extends_danang_with_a_timed_closure() -> None:
    base, flood = load_scenario("danang"), load_scenario("danang_flood")
    assert flood.name == "danang_flood"
    assert flood.incident_types == base.incident_types and flood.units == base.units
    (c,) = flood.closures
    assert (c.start_h, c.end_h) == (14.0, 20.0)
    assert c.geojson is not None and c.geojson.name == "danang_flood.geojson"
    assert flood.replications == 10


def test_overrides_are_validated() -> None:
    sc = load_scenario("danang")
    assert sc.with_overrides(seed=5, horizon_h=2.0, policy="nearest_node").seed == 5
    with pytest.raises(ScenarioError, match="policy='x'"):
        sc.with_overrides(policy="x")
    with pytest.raises(ScenarioError, match="hours=-1"):
        sc.with_overrides(horizon_h=-1.0)
    with pytest.raises(ScenarioError, match="replications=0"):
        sc.with_overrides(replications=0)


def test_unknown_scenario_name() -> None:
    with pytest.raises(ScenarioError, match="scenario='atlantis' is neither a file nor a shipped"):
        load_scenario("atlantis")


def test_there_is_one_bad_file_per_failure_mode() -> None:
    assert len(BAD_FILES) >= 30
    expectations = [f.read_text(encoding="utf-8").splitlines()[0] for f in BAD_FILES]
    assert len(set(expectations)) == len(expectations)


@pytest.mark.parametrize("path", BAD_FILES, ids=[p.stem for p in BAD_FILES])
def test_malformed_scenario_names_file_and_key(path: Path) -> None:
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith("# expect: ")
    expected = first.removeprefix("# expect: ")
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    msg = str(info.value)
    assert isinstance(info.value, DispatchError) and "\n" not in msg
    assert str(path) in msg, msg
    assert expected in msg, msg


def test_parse_without_file_and_defaults() -> None:
    sc = parse_scenario(
        {
            "map": "danang",
            "simulation": {"horizon_h": 1},
            "priorities": [{"level": 1, "target_s": 480}],
            "incident_types": [
                {
                    "name": "fire",
                    "service": "114",
                    "priority": 1,
                    "vehicles": ["fire_engine"],
                    "calls_per_hour": 1,
                    "on_scene": {"dist": "exponential", "mean_s": 600},
                }
            ],
            "stations": [{"name": "S", "lat": 16.06, "lon": 108.22}],
            "units": [{"id": "E", "vehicle": "fire_engine", "station": "S", "count": 2}],
        }
    )
    assert [u.id for u in sc.units] == ["E-1", "E-2"]
    assert sc.policy == "fastest" and sc.replications == 1 and sc.warmup_h == 0
    assert sc.priorities[0].weight == 4.0  # the run-card default weight of priority 1
    assert sc.demand.kind == "roads" and sc.returning == "route"


def test_off_map_station_unit_and_hospital_name_file_key_and_unit(tmp_path: Path, danang) -> None:
    from dispatch.sim.scenario import check_on_map

    base = (BAD / "negative_rate.toml").read_text().split("\n", 1)[1]
    base = base.replace("calls_per_hour = -1.0", "calls_per_hour = 1.0")
    check_on_map(parse_scenario(tomllib.loads(base)), danang)  # all on the map
    cases = {
        "station": (base.replace("lat = 16.0594", "lat = 10.0", 1), "stations[0] 'S' (units[0] 'A1', ambulance)"),
        "hospital": (base[::-1].replace("4950.61 = tal", "0.01 = tal", 1)[::-1], "hospitals[0] 'H'"),
    }  # fmt: skip
    fleet = tmp_path / "fleet.csv"
    fleet.write_text("id,vehicle,lat,lon\nOK,ambulance,16.0594,108.2099\nFAR,ladder,10.0,106.0\n")
    with_fleet = base.replace('map = "danang"\n', f'map = "danang"\nfleet = {str(fleet)!r}\n', 1)
    cases["fleet"] = (with_fleet, "fleet: fleet.csv: unit 'FAR' (ladder)")
    for name, (text, match) in cases.items():
        p = tmp_path / f"{name}.toml"
        p.write_text(text)
        with pytest.raises(ScenarioError) as info:
            check_on_map(load_scenario(p), danang)
        msg = str(info.value)
        assert str(p) in msg and match in msg and "farther than" in msg and "\n" not in msg, msg


def test_demand_files_read_through_the_bounded_readers() -> None:
    from dispatch.sim.demand import _load_zones, read_points
    from dispatch.sim.scenario import DemandLocations

    data = Path(__file__).parents[1] / "data"
    with pytest.raises(ScenarioError, match="line 1: header repeats column 'lat'"):
        read_points(data / "bad_points_duplicate_column" / "points.csv")
    with pytest.raises(ScenarioError, match="JSON nested too deeply"):
        _load_zones(
            DemandLocations(kind="zones", zones=data / "bad_zones_nested" / "zones.geojson")
        )
