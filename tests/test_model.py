"""The domain model: one definition per concept, one source per default, booleans refused."""

from __future__ import annotations

import pytest

import dispatch.decide.incidents as decide_incidents
import dispatch.roads.profiles as profiles
import dispatch.sim.scenario as scenario
from dispatch.decide.assign import assign
from dispatch.decide.recommend import recommend
from dispatch.errors import DispatchError, FleetError
from dispatch.model import (
    DEFAULT_TURNOUT_S,
    MAX_TURNOUT_S,
    SERVICE_TURNOUT_S,
    VEHICLE_CLASSES,
    Hospital,
    HospitalError,
    HourError,
    Incident,
    IncidentError,
    Unit,
    UnitStatus,
    VehicleClass,
    check_hour,
    turnout_for,
)

LAT, LON = 16.0594, 108.2099


def test_vehicle_classes_have_one_source() -> None:
    assert tuple(v.value for v in VehicleClass) == VEHICLE_CLASSES
    # the copies that remain are the same tuple (roads/profiles keeps its own for the road layer)
    assert profiles.VEHICLE_CLASSES == VEHICLE_CLASSES
    assert decide_incidents.VEHICLE_CLASSES is VEHICLE_CLASSES
    assert scenario._VEHICLES is VEHICLE_CLASSES


def test_one_turnout_rule() -> None:
    # per class, from the service: 80 s fire (114), 60 s EMS (115)
    assert DEFAULT_TURNOUT_S == {
        "ambulance": 60.0,
        "fire_engine": 80.0,
        "ladder": 80.0,
        "motorbike": 60.0,
    }
    assert scenario.DEFAULT_TURNOUT_S is SERVICE_TURNOUT_S
    assert decide_incidents.DEFAULT_TURNOUT_S is DEFAULT_TURNOUT_S
    for status in UnitStatus:
        u = Unit("U", "ladder", LAT, LON, status=status, assigned_priority=2)
        assert u.effective_turnout_s == (0.0 if status.on_the_road else 80.0)
        assert (
            Unit(
                "U", "ladder", LAT, LON, status=status, assigned_priority=2, turnout_s=5
            ).effective_turnout_s
            == 5
        )
    assert turnout_for("motorbike", service_turnout_s={"114": 1, "115": 2}) == 2.0
    # one limit everywhere (3,600 s): Unit, fleet CSV (tests/io) and scenario TOML (bad_scenarios)
    Unit("U", "ambulance", LAT, LON, turnout_s=MAX_TURNOUT_S)
    with pytest.raises(FleetError, match=r"turnout_s must be in \[0, 3600\], got 1e\+308"):
        Unit("U", "ambulance", LAT, LON, turnout_s=1e308)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: Unit("U", "ambulance", LAT, LON, turnout_s=True), "turnout_s must be a number, got True"),  # type: ignore[arg-type]
        (lambda: Unit("U", "ambulance", True, LON), "lat must be a number, got True"),  # type: ignore[arg-type]
        (lambda: Unit(["a", "b"], "ambulance", LAT, LON), r"unit id must be a non-empty string, got \['a', 'b'\]"),  # type: ignore[arg-type]
        (lambda: Unit.from_dict({"id": ["a"], "vehicle": "ambulance", "lat": LAT, "lon": LON}, where="units[0]"),
         r"units\[0\]: id must be a non-empty string"),
        (lambda: Unit("U", "ambulance", LAT, LON, status="en_route"), "needs assigned_priority"),
        (lambda: Unit("U", "ambulance", LAT, LON, status="en_route", assigned_priority=True), "got True"),  # type: ignore[arg-type]
        (lambda: Unit("U", "ambulance", LAT, LON, turnout_s=10**5000), "out of range, got an integer of about 5001 digits"),
        (lambda: Incident("I", LAT, LON, priority=True), "priority must be 1, 2 or 3, got True"),  # type: ignore[arg-type]
        (lambda: Incident.from_dict({"id": "I", "lat": LAT, "lon": LON, "priority": 10**5000}), "got an integer of about 5001 digits"),
        (lambda: Incident("I", LAT, float("inf")), "lon must be finite"),
        (lambda: Hospital("H", "H", True, LON, ("general",)), "lat must be a number, got True"),  # type: ignore[arg-type]
        (lambda: Hospital("H", "H", LAT, LON, "general"), "capabilities must be a tuple"),  # type: ignore[arg-type]
        (lambda: check_hour("17"), "hour must be a number, got '17'"),
        (lambda: check_hour(float("nan")), "hour must be finite"),
        (lambda: check_hour(True), "hour must be a number, got True"),
    ],
)  # fmt: skip
def test_wrong_types_are_dispatch_errors(make, match: str) -> None:
    with pytest.raises(DispatchError, match=match) as exc:
        make()
    assert "\n" not in str(exc.value) and len(str(exc.value)) < 300


def test_library_calls_with_wrong_arguments_name_them(danang) -> None:
    fleet = [Unit("A1", "ambulance", LAT, LON)]
    inc = Incident("I", 16.0575, 108.214, "cardiac_arrest")
    with pytest.raises(
        IncidentError, match="incidents must be a sequence of Incident, got NoneType"
    ):
        assign(danang, None, fleet)  # type: ignore[arg-type]
    with pytest.raises(FleetError, match="units must be a sequence"):
        assign(danang, [inc], None)  # type: ignore[arg-type]
    with pytest.raises(
        FleetError, match=r"units\[0\]: id must be a non-empty string, got \['A1'\]"
    ):
        recommend(danang, inc, [{"id": ["A1"], "vehicle": "ambulance", "lat": LAT, "lon": LON}])
    for bad in ("17", float("nan"), float("inf"), True, -1):
        with pytest.raises(HourError, match="hour"):
            recommend(danang, inc, fleet, hour=bad)  # type: ignore[arg-type]
        with pytest.raises(HourError, match="hour"):
            assign(danang, [inc], fleet, hour=bad)  # type: ignore[arg-type]


def test_hospital_errors_are_dispatch_errors() -> None:
    assert issubclass(HospitalError, DispatchError)
    with pytest.raises(HospitalError, match="unknown capability 'neurosurgery'"):
        Hospital("H", "H", LAT, LON, ("neurosurgery",))
