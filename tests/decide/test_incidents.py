"""Incidents and units: validation, defaults, JSON/CSV forms, file errors naming line and field."""

from __future__ import annotations

import json
from dataclasses import FrozenInstanceError
from pathlib import Path

import pytest

import dispatch
from dispatch.decide.incidents import (
    DEFAULT_TURNOUT_S,
    INCIDENT_TYPES,
    VEHICLE_CLASSES,
    Incident,
    IncidentError,
    Unit,
    incident_type,
    read_fleet,
    read_incident_json,
    read_incidents,
    units_from_records,
)
from dispatch.errors import DispatchError, FleetError, InputFileError

DATA = Path(__file__).parents[1] / "data"
ROOT = Path(__file__).parents[2]


def test_vehicle_classes_match_core():
    assert tuple(dispatch.VEHICLE_CLASSES) == VEHICLE_CLASSES


def test_types_cover_both_hotlines_and_joint():
    services = {t.service for t in INCIDENT_TYPES.values()}
    assert services == {"114", "115", "joint"}
    assert incident_type("cardiac_arrest").hospital_capability == "cardiac"
    assert incident_type("structure_fire").hospital_capability is None
    assert incident_type("fire_with_injuries").needs_hospital
    for t in INCIDENT_TYPES.values():
        if t.service in ("115", "joint"):
            assert t.needs_hospital, t.name


def test_incident_defaults_and_json_round_trip():
    a = Incident("A", 16.05, 108.21)
    assert a.type == "general_medical" and a.priority == 2
    b = Incident("B", 16.05, 108.21, "cardiac_arrest")
    assert b.priority == 1
    c = Incident("C", 16.05, 108.21, "cardiac_arrest", 3)
    assert c.priority == 3
    assert Incident.from_dict(json.loads(json.dumps(c.to_dict()))) == c
    with pytest.raises(FrozenInstanceError):
        c.priority = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"type": "alien_landing"}, "unknown incident type 'alien_landing'"),
        ({"priority": 4}, "priority must be 1, 2 or 3, got 4"),
        ({"priority": True}, "priority must be 1, 2 or 3"),
        ({"lat": 95.0}, "lat must be in"),
        ({"lat": float("nan")}, "finite"),
        ({"lon": "east"}, "lon must be a number"),
        ({"id": " "}, "non-empty"),
    ],
)
def test_incident_validation(kwargs, match):
    args = {"id": "A", "lat": 16.05, "lon": 108.21} | kwargs
    with pytest.raises(IncidentError, match=match) as exc:
        Incident(**args)
    assert "\n" not in str(exc.value)
    assert isinstance(exc.value, DispatchError)


def test_incident_from_dict_errors():
    with pytest.raises(IncidentError, match="missing field 'lat'"):
        Incident.from_dict({"id": "A", "lon": 1.0})
    with pytest.raises(IncidentError, match="unknown field"):
        Incident.from_dict({"id": "A", "lat": 1.0, "lon": 1.0, "colour": "red"})
    with pytest.raises(IncidentError, match="expected a JSON object"):
        Incident.from_dict([1, 2])  # type: ignore[arg-type]


def test_unit_defaults_turnout_nfpa_and_status():
    e = Unit("E", "fire_engine", 16.05, 108.21)
    a = Unit("A", "ambulance", 16.05, 108.21)
    r = Unit("R", "ambulance", 16.05, 108.21, status="returning")
    assert e.effective_turnout_s == DEFAULT_TURNOUT_S["fire_engine"] == 80.0
    assert a.turnout_s is None and a.effective_turnout_s == 60.0
    assert r.effective_turnout_s == 0.0 and r.dispatchable
    assert not Unit("B", "ambulance", 16.05, 108.21, status="busy").dispatchable
    with pytest.raises(FleetError, match="needs assigned_priority"):
        Unit("X", "ambulance", 16.05, 108.21, status="en_route")
    with pytest.raises(FleetError, match="vehicle must be one of"):
        Unit("X", "helicopter", 16.05, 108.21)
    with pytest.raises(FleetError, match="status must be one of"):
        Unit("X", "ambulance", 16.05, 108.21, status="sleeping")
    with pytest.raises(FleetError, match="turnout_s must be in"):
        Unit("X", "ambulance", 16.05, 108.21, turnout_s=-1)


def test_units_from_core_style_records():
    recs = [
        {"id": "A", "vehicle": "ambulance", "lat": 16.05, "lon": 108.21, "available": False},
        {"id": "B", "vehicle": "ladder", "lat": 16.05, "lon": 108.21, "turnout_s": 30.0},
    ]
    a, b = units_from_records(recs)
    assert a.status == "busy" and b.turnout_s == 30.0
    with pytest.raises(FleetError, match="duplicate unit id 'A'"):
        units_from_records([recs[0], recs[0]])
    with pytest.raises(FleetError, match="empty"):
        units_from_records([])


def test_scenario_fleets_and_incidents_read():
    dn = read_fleet(ROOT / "scenarios" / "danang_fleet.csv")
    assert {u.vehicle for u in dn} == set(VEHICLE_CLASSES)
    assert any(u.status == "busy" for u in dn)
    assert all("ILLUSTRATIVE" in u.station for u in dn if u.vehicle in ("fire_engine", "ladder"))
    mc = read_fleet(ROOT / "scenarios" / "monaco_fleet.csv")
    assert {u.station for u in mc} >= {"Caserne de Fontvieille", "Caserne de la Condamine"}
    surge = read_incidents(ROOT / "scenarios" / "surge_danang.csv")
    assert len(surge) == 8 and {i.kind.service for i in surge} == {"114", "115", "joint"}
    one = read_incident_json(ROOT / "scenarios" / "danang_incident.json")
    assert one.type == "cardiac_arrest"


def test_incidents_csv_defaults_and_json_list(tmp_path):
    p = tmp_path / "inc.csv"
    p.write_text("id,lat,lon\nA,16.05,108.21\n")
    (a,) = read_incidents(p)
    assert a.type == "general_medical" and a.priority == 2
    j = tmp_path / "inc.json"
    j.write_text(json.dumps({"incidents": [a.to_dict(), {"id": "B", "lat": 16.0, "lon": 108.0}]}))
    assert [i.id for i in read_incidents(j)] == ["A", "B"]


@pytest.mark.parametrize(
    ("reader", "path", "match"),
    [
        (read_incident_json, "bad_incident_type/incident.json", "unknown incident type 'alien_landing'"),
        (read_incident_json, "bad_incident_json/incident.json", r"line 4, column 2: malformed JSON"),
        (read_incidents, "bad_incidents_csv/incidents.csv", r"line 3: field 'lat': not a number: '16.05x'"),
        (read_incidents, "bad_incident_priority/incidents.csv", r"line 2: field 'priority': must be 1, 2 or 3, got '5'"),
        (read_fleet, "bad_fleet_vehicle/fleet.csv", r"line 4: field 'vehicle'.*'helicopter'"),
        (read_fleet, "bad_fleet_columns/fleet.csv", r"line 1: header lacks column\(s\) lon"),
        (read_fleet, "bad_fleet_number/fleet.csv", r"line 3: field 'turnout_s': .*must be a number, got 'one minute'"),
    ],
)  # fmt: skip
def test_bad_files_name_line_and_field(reader, path, match):
    with pytest.raises(DispatchError, match=match) as exc:
        reader(DATA / path)
    assert "\n" not in str(exc.value)


def test_fleet_csv_duplicate_and_wrong_field_count(tmp_path):
    p = tmp_path / "f.csv"
    p.write_text("id,vehicle,lat,lon\nA,ambulance,16.05,108.21\nA,ambulance,16.05,108.21\n")
    with pytest.raises(
        InputFileError, match=r"line 3: field 'id': duplicate unit id 'A' \(first on line 2\)"
    ):
        read_fleet(p)
    p.write_text("id,vehicle,lat,lon\nA,ambulance,16.05\n")
    with pytest.raises(InputFileError, match="line 2: expected 4 fields"):
        read_fleet(p)
