"""recommend / assign on the real Da Nang and Monaco networks, hospitals, and the CLI (exit codes, output)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import dispatch
from dispatch.cli import main
from dispatch.decide.assign import assign
from dispatch.decide.hospitals import (
    Hospital,
    NoHospitalError,
    choose_hospital,
    nearest_capable_hospital,
    read_hospitals,
)
from dispatch.decide.incidents import Incident, IncidentError, Unit, read_fleet, read_incidents
from dispatch.decide.recommend import recommend

ROOT = Path(__file__).parents[2]
SC = ROOT / "scenarios"
DATA = Path(__file__).parents[1] / "data"


@pytest.fixture(scope="module")
def danang():
    return dispatch.load_network("danang")


@pytest.fixture(scope="module")
def dn_fleet():
    return read_fleet(SC / "danang_fleet.csv")


@pytest.fixture(scope="module")
def dn_hospitals():
    return read_hospitals(SC / "danang_hospitals.csv")


# ---------------------------------------------------------------- recommend on the real network


def test_recommend_cardiac_arrest_by_road_eta(danang, dn_fleet, dn_hospitals):
    inc = Incident("C1", 16.0575, 108.2140, "cardiac_arrest")
    rec = recommend(danang, inc, dn_fleet, hospitals=dn_hospitals)
    amb = [a for a in rec.units if not a.optional]
    assert [a.vehicle for a in amb] == ["ambulance"]
    # the chosen ambulance is the fastest free one by road (turnout + drive), not straight line
    free = [u for u in dn_fleet if u.vehicle == "ambulance" and u.dispatchable]
    tt = danang.travel_times(np.array([u.point for u in free]), inc.point, vehicle="ambulance")[
        :, 0
    ]
    etas = tt + np.array([u.effective_turnout_s for u in free])
    assert amb[0].eta_s == pytest.approx(etas.min())
    assert amb[0].eta_s == pytest.approx(amb[0].turnout_s + amb[0].drive_s)
    assert amb[0].route is not None and amb[0].route.eta_s == pytest.approx(amb[0].drive_s)
    assert amb[0].length_m > 0
    # the busy ambulance is never sent
    assert "AMB-GD2" not in {a.unit for a in rec.units}
    # hospital: nearest (by road) of those with the cardiac capability
    assert rec.hospital is not None and rec.hospital.capability == "cardiac"
    capable = [h for h in dn_hospitals if h.can_treat("cardiac")]
    h_tt = danang.travel_times(inc.point, np.array([h.point for h in capable]))[0]
    assert rec.hospital.eta_s == pytest.approx(h_tt.min())
    assert rec.hospital.hospital.id == capable[int(np.argmin(h_tt))].id
    d = rec.to_dict()
    assert d["incident"]["id"] == "C1" and d["hospital"]["capability"] == "cardiac"
    gj = rec.geojson()
    roles = [f["properties"]["role"] for f in gj["features"]]
    assert roles[0] == "incident" and "unit_route" in roles and "hospital_route" in roles
    json.dumps(gj)


def test_recommend_structure_fire_full_complement(danang, dn_fleet):
    inc = Incident("F1", 16.0600, 108.2150, "structure_fire")
    rec = recommend(danang, inc, dn_fleet, hospitals=None)
    by_req: dict[str, list[str]] = {}
    for a in rec.units:
        by_req.setdefault(a.requirement, []).append(a.vehicle)
    assert sorted(by_req) == ["ambulance", "fire_engine", "ladder"]
    assert len(by_req["fire_engine"]) == 2
    assert rec.plan.uncovered == ()
    assert rec.first_arrival_s <= rec.full_complement_s < np.inf
    assert rec.hospital is None  # a 114 type needs no hospital
    assert all(
        a.requirement == "fire_engine" or a.requirement == "ambulance" for a in rec.alternatives
    )


def test_recommend_joint_incident_both_services(danang, dn_fleet, dn_hospitals):
    inc = Incident("J1", 16.0590, 108.2130, "fire_with_injuries")
    rec = recommend(danang, inc, dn_fleet, hospitals=dn_hospitals)
    vehicles = {a.vehicle for a in rec.units}
    assert {"fire_engine", "ladder", "ambulance"} <= vehicles
    assert rec.hospital is not None and rec.hospital.capability == "burns"


def test_recommend_reports_missing_hospital_but_still_sends_units(danang, dn_fleet):
    hosp = read_hospitals(DATA / "no_hospital_capable" / "hospitals.csv")
    inc = Incident("T1", 16.0575, 108.2140, "trauma")
    rec = recommend(danang, inc, dn_fleet, hospitals=hosp)
    assert rec.units and rec.hospital is None
    assert "no hospital has capability 'trauma'" in rec.plan.hospital_problem
    with pytest.raises(NoHospitalError, match="no hospital has capability 'trauma'"):
        nearest_capable_hospital(danang, inc.point, "trauma", hosp)


def test_returning_unit_sent_from_where_it_is(danang):
    # a returning ambulance right at the scene beats the station ambulance and has no turnout
    scene = (16.0575, 108.2140)
    fleet = [
        Unit("STATION", "ambulance", 16.059401, 108.2098753),
        Unit("BACK", "ambulance", 16.0576, 108.2141, status="returning"),
    ]
    rec = recommend(danang, Incident("R1", *scene, "stroke"), fleet)
    (a,) = rec.units
    assert a.unit == "BACK" and a.turnout_s == 0.0


def test_incident_off_the_map_names_the_incident(danang, dn_fleet):
    with pytest.raises(IncidentError, match="incident 'FAR'"):
        recommend(danang, Incident("FAR", 10.0, 106.0), dn_fleet)


def test_choose_hospital_fallback_and_ties():
    hs = [
        Hospital("B", "b", 16.0, 108.0, ("general",)),
        Hospital("A", "a", 16.0, 108.0, ("general", "cardiac")),
        Hospital("C", "c", 16.0, 108.0, ("burns",)),
    ]
    assert choose_hospital([100.0, 100.0, 50.0], hs, "general") == (1, False)  # tie by id
    assert choose_hospital([100.0, np.inf, 50.0], hs, "cardiac") == (0, True)  # fallback general
    with pytest.raises(NoHospitalError, match="not reachable|reachable"):
        choose_hospital([np.inf, np.inf, np.inf], hs, "burns")
    with pytest.raises(NoHospitalError, match="unknown capability"):
        choose_hospital([1.0, 1.0, 1.0], hs, "dermatology")


# ---------------------------------------------------------------- assign on the real network


def test_surge_danang_optimiser_beats_greedy(danang, dn_fleet, dn_hospitals):
    incs = read_incidents(SC / "surge_danang.csv")
    res = assign(danang, incs, dn_fleet, hospitals=dn_hospitals)
    assert res.plan.method == "cp_sat" and res.plan.optimal
    assert res.plan.covered == res.greedy.covered == 10 and res.plan.required == 13
    # 6557 vs 6598 with OSM's road rules (issue 13: barriers, restrictions); 7008 vs 7699 before
    assert res.objective < res.greedy_objective
    d = res.to_dict()
    assert set(d) >= {"incidents", "objective", "greedy_objective", "solver", "covered", "greedy"}
    first = d["incidents"][0]
    assert set(first) >= {"incident", "units", "uncovered", "hospital", "first_arrival_s"}
    assert set(first["units"][0]) >= {"unit", "vehicle", "eta_s"}
    sent = [a["unit"] for p in d["incidents"] for a in p["units"]]
    assert len(sent) == len(set(sent))  # no unit twice
    assert "AMB-GD2" not in sent  # busy
    short = [s for p in d["incidents"] for s in p["uncovered"]]
    assert short and all(s["reason"] for s in short)


def test_assign_monaco_real_fire_stations():
    net = dispatch.load_network("monaco")
    fleet = read_fleet(SC / "monaco_fleet.csv")
    res = assign(net, read_incidents(SC / "monaco_incidents.csv"), fleet)
    assert res.objective <= res.greedy_objective + 1e-6
    m1 = res.plan.incidents[0]
    assert m1.incident.type == "structure_fire" and len(m1.units) == 4


# ---------------------------------------------------------------- CLI


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_recommend_human_and_json(capsys, tmp_path):
    args = ["recommend", "danang", "--incident", SC / "danang_incident.json", "--fleet",
            SC / "danang_fleet.csv", "--hospitals", SC / "danang_hospitals.csv"]  # fmt: skip
    code, out, err = run_cli(capsys, *args, "--geojson", tmp_path / "r.geojson")
    assert code == 0, err
    assert "Incident DN-1: cardiac_arrest (115), priority 1" in out
    assert "hospital:" in out and " km" in out
    assert json.loads((tmp_path / "r.geojson").read_text())["type"] == "FeatureCollection"
    code, out, _ = run_cli(capsys, *args, "--json")
    assert code == 0 and json.loads(out)["incident"]["id"] == "DN-1"


def test_cli_assign_surge_json_and_geojson(capsys, tmp_path):
    code, out, err = run_cli(
        capsys, "assign", "danang", "--incidents", SC / "surge_danang.csv", "--fleet",
        SC / "danang_fleet.csv", "--json", "--geojson", tmp_path / "a.geojson",
    )  # fmt: skip
    assert code == 0, err
    d = json.loads(out)
    assert d["objective"] < d["greedy_objective"]
    assert all("length_m" in a for p in d["incidents"] for a in p["units"])
    gj = json.loads((tmp_path / "a.geojson").read_text())
    roles = [f["properties"]["role"] for f in gj["features"]]
    assert roles.count("incident") == 8
    assert roles.count("unit_route") == sum(len(p["units"]) for p in d["incidents"])
    for f in gj["features"]:
        if f["properties"]["role"] == "unit_route":
            lon, lat = f["geometry"]["coordinates"][-1]
            assert 108.1 < lon < 108.3 and 16.0 < lat < 16.1  # lon/lat order


def test_cli_assign_human_table_monaco(capsys):
    code, out, err = run_cli(
        capsys, "assign", "monaco", "--incidents", SC / "monaco_incidents.csv", "--fleet",
        SC / "monaco_fleet.csv", "--hospitals", SC / "monaco_hospitals.csv",
    )  # fmt: skip
    assert code == 0, err
    assert "greedy (one call at a time, by priority): objective" in out
    assert "CD-ENG1" in out


def test_cli_more_incidents_than_units_is_partial(capsys):
    d = DATA / "more_incidents_than_units"
    code, out, err = run_cli(
        capsys, "assign", "danang", "--incidents", d / "incidents.csv", "--fleet", d / "fleet.csv",
        "--json",
    )  # fmt: skip
    assert code == 0
    res = {p["incident"]: p for p in json.loads(out)["incidents"]}
    assert [a["unit"] for a in res["C"]["units"]] == ["AMB-1"]  # the P1 call gets it
    assert res["A"]["uncovered"] and res["B"]["uncovered"]


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        (["--incident", DATA / "bad_incident_type/incident.json"], "unknown incident type 'alien_landing'"),
        (["--incident", DATA / "bad_incident_json/incident.json"], "malformed JSON"),
        (["--fleet", DATA / "bad_fleet_vehicle/fleet.csv"], "line 4: field 'vehicle'"),
        (["--fleet", DATA / "bad_fleet_columns/fleet.csv"], "header lacks column"),
        (["--fleet", DATA / "bad_fleet_number/fleet.csv"], "field 'turnout_s'"),
        (["--run-cards", DATA / "bad_run_card_class/run_cards.toml"], "unknown unit class 'helicopter'"),
        (["--run-cards", DATA / "bad_run_card_type/run_cards.toml"], "unknown incident type"),
        (["--run-cards", DATA / "bad_run_card_toml/run_cards.toml"], "malformed TOML"),
        (["--hospitals", DATA / "bad_hospital_capability/hospitals.csv"], "unknown capability 'neurosurgery'"),
        (["--incident", DATA / "does_not_exist.json"], "does_not_exist.json' does not exist"),
    ],
)  # fmt: skip
def test_cli_bad_input_exit_2_one_line(capsys, extra, match):
    base = {"--incident": SC / "danang_incident.json", "--fleet": SC / "danang_fleet.csv"}
    base[str(extra[0])] = extra[1]
    argv = ["recommend", "danang"]
    for k, v in base.items():
        argv += [k, v]
    code, out, err = run_cli(capsys, *argv)
    assert code == 2
    assert match in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert out == ""


@pytest.mark.parametrize(
    "path", ["bad_incidents_csv/incidents.csv", "bad_incident_priority/incidents.csv"]
)
def test_cli_assign_bad_incidents_exit_2(capsys, path):
    code, _, err = run_cli(
        capsys, "assign", "danang", "--incidents", DATA / path, "--fleet", SC / "danang_fleet.csv"
    )
    assert code == 2 and "line " in err and err.count("\n") == 1


def test_unit_off_the_map_is_a_warning_not_a_failure(danang):
    fleet = [
        Unit("OK", "ambulance", 16.059401, 108.2098753),
        Unit("LOST", "ambulance", 10.0, 106.0),  # Ho Chi Minh City: far off this map
    ]
    rec = recommend(danang, Incident("W1", 16.0575, 108.2140, "stroke"), fleet)
    assert [a.unit for a in rec.units] == ["OK"]
    assert len(rec.warnings) == 1 and "'LOST'" in rec.warnings[0]
    res = assign(danang, [Incident("W1", 16.0575, 108.2140, "stroke")], fleet)
    assert res.to_dict()["warnings"] == list(rec.warnings)


def test_cli_assign_liechtenstein_real_fire_stations(capsys):
    code, out, err = run_cli(
        capsys, "assign", "liechtenstein", "--incidents", SC / "liechtenstein_incidents.csv",
        "--fleet", SC / "liechtenstein_fleet.csv", "--hospitals", SC / "liechtenstein_hospitals.csv",
        "--json",
    )  # fmt: skip
    assert code == 0, err
    d = json.loads(out)
    assert d["objective"] <= d["greedy_objective"]
    assert d["warnings"] == []  # every unit, Balzers included, is on the road network
    sent = {a["unit"] for p in d["incidents"] for a in p["units"]}
    assert sent <= {
        line.split(",")[0] for line in (SC / "liechtenstein_fleet.csv").read_text().splitlines()
    }


def test_redispatch_rule_on_the_road_network(danang, capsys, tmp_path):
    scene = (16.0575, 108.2140)
    fleet_csv = tmp_path / "fleet.csv"
    fleet_csv.write_text(
        "id,vehicle,lat,lon,status,assigned_priority\n"
        "FAR,ambulance,16.0480,108.2080,available,\n"
        "NEAR,ambulance,16.0576,108.2141,en_route,3\n"
    )
    inc_json = tmp_path / "inc.json"
    inc_json.write_text(
        json.dumps({"id": "P1", "lat": scene[0], "lon": scene[1], "type": "stroke"})
    )
    base = ["recommend", "danang", "--incident", inc_json, "--fleet", fleet_csv, "--json"]
    code, out, _ = run_cli(capsys, *base)
    assert code == 0 and [a["unit"] for a in json.loads(out)["units"]] == ["FAR"]
    code, out, _ = run_cli(capsys, *base, "--redispatch")
    (a,) = json.loads(out)["units"]
    assert code == 0 and a["unit"] == "NEAR" and a["redispatched_from_priority"] == 3
    assert a["turnout_s"] == 0.0  # already on the road


def test_hour_is_passed_to_the_network(danang, dn_fleet):
    inc = Incident("H1", 16.0575, 108.2140, "stroke")
    rec = recommend(danang, inc, dn_fleet, hour=8.0, routes=False)
    (a,) = rec.units
    unit = next(u for u in dn_fleet if u.id == a.unit)
    tt = danang.travel_times(unit.point, inc.point, vehicle="ambulance", hour=8.0)[0, 0]
    assert a.drive_s == pytest.approx(tt)


def test_hospitals_from_network_are_labelled_assumed(danang):
    from dispatch.decide.hospitals import hospitals_from_network

    hs = hospitals_from_network(danang)
    assert hs and all(h.capabilities == ("general",) for h in hs)
    assert all(h.capabilities_source.startswith("assumed general") for h in hs)
    assert "Hoan My General Hospital" in {h.name for h in hs}


# ---------------------------------------------------------------- coverage-hole warning (opt-in)


def test_recommend_coverage_warning_recomputed_independently(danang, dn_fleet):
    from dispatch.plan.demand import grid_demand
    from dispatch.plan.warning import CoverageState

    inc = Incident("C1", 16.0575, 108.2140, "cardiac_arrest")
    records = [
        {"id": u.id, "vehicle": u.vehicle, "lat": u.lat, "lon": u.lon,
         "turnout_s": u.effective_turnout_s, "available": u.dispatchable}
        for u in dn_fleet
    ]  # fmt: skip
    demand = grid_demand(danang, cell_m=400, vehicles=["ambulance"])
    state = CoverageState.build(danang, records, demand, target_s=150.0)
    plain = recommend(danang, inc, dn_fleet, routes=False)
    rec = recommend(danang, inc, dn_fleet, routes=False, coverage=state, coverage_max_delay_s=600)
    # it warns, never overrides: the same units
    assert [a.unit for a in rec.units] == [a.unit for a in plain.units]
    assert plain.coverage == () and "coverage" not in plain.to_dict()
    (adv,) = [c for c in rec.coverage if c.requirement == "ambulance"]
    # independent recomputation: turnout + road time <= 150 s from each free ambulance
    free = [u for u in dn_fleet if u.vehicle == "ambulance" and u.dispatchable]
    tt = danang.travel_times(np.array([u.point for u in free]), demand.points, vehicle="ambulance")
    reach = tt + np.array([u.effective_turnout_s for u in free])[:, None] <= 150.0
    w = demand.weight / demand.weight.sum()
    before = float(w[reach.any(axis=0)].sum())
    assert 0 < before < 1
    assert any(
        np.delete(reach, i, axis=0).any(axis=0).sum() < reach.any(axis=0).sum()
        for i in range(len(free))
    )  # some unit leaves a hole
    cands = {c.unit: c for c in adv.warning.candidates}
    assert set(cands) == {u.id for u in free}
    for i, u in enumerate(free):
        after = float(w[np.delete(reach, i, axis=0).any(axis=0)].sum())
        assert cands[u.id].before == pytest.approx(before, abs=1e-9)
        assert cands[u.id].after == pytest.approx(after, abs=1e-9)
    fastest = min(cands.values(), key=lambda c: (c.eta_s, c.loss))
    amb = next(a.unit for a in rec.units if a.vehicle == "ambulance")
    assert adv.warning.fastest == fastest.unit == amb
    if adv.warning.alternative is not None:  # within the delay and taking less coverage away
        alt = cands[adv.warning.alternative]
        assert alt.eta_s <= fastest.eta_s + 600 and alt.loss < fastest.loss
    else:
        near = [c for c in cands.values() if c.eta_s <= fastest.eta_s + 600]
        assert min(c.loss for c in near) >= fastest.loss - 1e-12
    d = rec.to_dict()["coverage"][0]
    assert d["requirement"] == "ambulance" and len(d["candidates"]) == len(free)
    assert state.share("ambulance") == pytest.approx(before)  # the state is left as it was


def test_cli_recommend_coverage_warning(capsys):
    args = ["recommend", "danang", "--incident", SC / "danang_incident.json", "--fleet",
            SC / "danang_fleet.csv", "--coverage-warning"]  # fmt: skip
    code, out, err = run_cli(capsys, *args)
    assert code == 0, err
    assert "coverage (ambulance): sending " in out and "of demand covered by ambulance" in out
    code, out, _ = run_cli(capsys, *args, "--json")
    cov = json.loads(out)["coverage"]
    assert cov[0]["requirement"] == "ambulance" and cov[0]["candidates"]
    code, out, err = run_cli(capsys, *args, "--coverage-target-s", "-5")
    assert code == 2 and "target_s" in err and len(err.strip().splitlines()) == 1
