"""Issue 8: the SAME fleet file read by every command gives the same units, statuses and turnouts.

``tests/data/fleet_all_statuses/fleet.csv`` has every status and no ``turnout_s`` column. Before the
domain model, ``nearest`` gave its units 0 s turnout and rejected ``en_route``, ``recommend`` and
``assign`` gave 60/80 s, and a scenario's ``[turnout]`` was ignored for fleet-CSV units.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import dispatch
from dispatch.cli import main
from dispatch.io.fleet import read_fleet, read_fleet_csv
from dispatch.model import DEFAULT_TURNOUT_S, UNIT_STATUSES
from dispatch.sim.scenario import load_scenario

DATA = Path(__file__).parents[1] / "data"
ROOT = Path(__file__).parents[2]
FLEET = DATA / "fleet_all_statuses" / "fleet.csv"
#: By hand from the one rule: 60 s EMS classes, 80 s fire classes, 0 s returning/en route.
EXPECTED_TURNOUT_S = {"A1": 60.0, "A2": 0.0, "A3": 60.0, "A4": 0.0, "A5": 60.0, "E1": 80.0,
                      "L1": 80.0, "M1": 60.0}  # fmt: skip
SENDABLE = {"A1", "A2", "E1", "L1", "M1"}  # available or returning


def _json(capsys: pytest.CaptureFixture[str], *argv: str) -> list[dict]:
    rc = main([*argv])
    out, err = capsys.readouterr()
    assert rc == 0, err
    text = out.strip()
    return (
        [json.loads(line) for line in text.splitlines()]
        if text.startswith('{"call"')
        else [json.loads(text)]
    )


def _unit_turnouts(obj: object, found: dict[str, float]) -> dict[str, float]:
    """Every ``{"unit": id, "turnout_s": x}`` anywhere in a JSON answer."""
    if isinstance(obj, dict):
        if "unit" in obj and "turnout_s" in obj:
            assert found.setdefault(obj["unit"], obj["turnout_s"]) == obj["turnout_s"]
        for v in obj.values():
            _unit_turnouts(v, found)
    elif isinstance(obj, list):
        for v in obj:
            _unit_turnouts(v, found)
    return found


def test_every_status_is_accepted_by_the_one_reader() -> None:
    units = read_fleet(FLEET)
    assert {str(u.status) for u in units} == set(UNIT_STATUSES)
    assert {u.id: u.effective_turnout_s for u in units} == EXPECTED_TURNOUT_S
    recs = read_fleet_csv(FLEET)  # what `nearest` hands to fastest_units
    assert {r["id"]: r["turnout_s"] for r in recs} == EXPECTED_TURNOUT_S
    assert {r["id"] for r in recs if r["available"]} == SENDABLE


def test_same_fleet_same_turnouts_in_nearest_recommend_and_assign(
    capsys: pytest.CaptureFixture[str],
) -> None:
    fleet = str(FLEET)
    nearest = _json(capsys, "nearest", "danang", "--call", "16.060909,108.220849", "--fleet", fleet,
                    "-k", "8", "--json")  # fmt: skip
    rec = _json(capsys, "recommend", "danang", "--fleet", fleet, "--json",
                "--incident", str(ROOT / "scenarios" / "danang_incident.json"))  # fmt: skip
    asg = _json(capsys, "assign", "danang", "--fleet", fleet, "--json",
                "--incidents", str(ROOT / "scenarios" / "surge_danang.csv"))  # fmt: skip
    seen_nearest = _unit_turnouts(nearest, {})
    assert set(seen_nearest) == SENDABLE  # busy, en route and out of service are not sent
    for answer in (seen_nearest, _unit_turnouts(rec, {}), _unit_turnouts(asg, {})):
        assert answer, "no unit in the answer"
        for uid, t in answer.items():
            assert t == EXPECTED_TURNOUT_S[uid], (uid, t)
    # the ETA of a unit is its turnout plus its drive in every command
    for u in nearest[0]["units"]:
        assert u["eta_s"] == pytest.approx(u["turnout_s"] + u["drive_s"], abs=1e-3)


def test_scenario_turnout_applies_to_units_from_a_fleet_csv(
    tmp_path: Path, danang: dispatch.Network
) -> None:
    from dispatch.sim.runner import resolve_world

    base = (DATA / "bad_scenarios" / "negative_rate.toml").read_text().split("\n", 1)[1]
    text = base.replace("calls_per_hour = -1.0", "calls_per_hour = 1.0")
    text = text.split("[[units]]")[0] + "[[hospitals]]" + text.split("[[hospitals]]")[1]
    text = text.replace('map = "danang"\n', f'map = "danang"\nfleet = {str(FLEET)!r}\n', 1)
    text = text.replace(
        "[[priorities]]", "[turnout]\nfire_s = 100\nems_s = 200\n\n[[priorities]]", 1
    )
    p = tmp_path / "fleet_scenario.toml"
    p.write_text(text)
    sc = load_scenario(p)
    assert sc.turnout_s == {"114": 100.0, "115": 200.0} and sc.fleet_csv == FLEET
    world = resolve_world(sc, danang)
    got = {u.id: u.turnout_s for u in world.units}
    # out_of_service is left out of the simulation; every other unit waits at its station and
    # takes the scenario's turnout of its service (the file gives none)
    assert got == {"A1": 200.0, "A2": 200.0, "A3": 200.0, "A4": 200.0, "E1": 100.0, "L1": 100.0,
                   "M1": 200.0}  # fmt: skip
    # without [turnout] the same units get the one default per class
    p.write_text(text.replace("[turnout]\nfire_s = 100\nems_s = 200\n", ""))
    world = resolve_world(load_scenario(p), danang)
    assert {u.id: u.turnout_s for u in world.units} == {
        u: DEFAULT_TURNOUT_S[v] for u, v in (("A1", "ambulance"), ("A2", "ambulance"), ("A3", "ambulance"),
                                            ("A4", "ambulance"), ("E1", "fire_engine"), ("L1", "ladder"),
                                            ("M1", "motorbike"))
    }  # fmt: skip
