"""Property test (issue 9): random bytes and random CSV/JSON/TOML structures fed to every reader.

Whatever the input, a reader returns or raises a :class:`dispatch.errors.DispatchError`: never
another exception. Examples are bounded (a few seconds in all) and derandomized, so the test gives
the same verdict on every run.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dispatch.decide.runcards import load_run_cards
from dispatch.errors import DispatchError
from dispatch.io.fleet import read_calls, read_calls_csv, read_fleet
from dispatch.io.hospitals import read_hospitals
from dispatch.io.incidents import read_incident_json, read_incidents
from dispatch.model import Incident, Unit
from dispatch.sim.scenario import load_scenario, parse_scenario

FUZZ = settings(max_examples=30, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])  # fmt: skip

READERS: dict[str, tuple[str, Callable[[Path], Any]]] = {
    "fleet": ("fleet.csv", read_fleet),
    "calls": ("calls.csv", read_calls),
    "calls_strict": ("calls.csv", read_calls_csv),
    "hospitals": ("hospitals.csv", read_hospitals),
    "incidents_csv": ("incidents.csv", read_incidents),
    "incidents_json": ("incidents.json", read_incidents),
    "incident_json": ("incident.json", read_incident_json),
    "run_cards": ("run_cards.toml", load_run_cards),
    "scenario": ("scenario.toml", load_scenario),
}

COLUMNS = ["id", "vehicle", "lat", "lon", "status", "station", "turnout_s", "assigned_priority",
           "name", "capabilities", "type", "priority", "note", "x", "lat", ""]  # fmt: skip
CELLS = st.one_of(
    st.sampled_from(
        [
            "",
            "A1",
            "ambulance",
            "ladder",
            "16.05",
            "108.2",
            "nan",
            "inf",
            "-1",
            "1e308",
            "available",
            "en_route",
            "busy",
            "2",
            "true",
            "general;trauma",
            "stroke",
            '"',
            "#",
            "\ufeff",
            "9" * 5000,
        ]
    ),  # fmt: skip
    st.text(max_size=12),
)


def _csv_text(header: list[str], rows: list[list[str]]) -> str:
    return "\n".join(",".join(r) for r in [header, *rows]) + "\n"


csv_docs = st.builds(
    _csv_text,
    st.lists(st.sampled_from(COLUMNS), min_size=0, max_size=8),
    st.lists(st.lists(CELLS, max_size=9), max_size=6),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8)
    | st.sampled_from(["cardiac_arrest", "id", "lat", "lon", "priority", "type", 16.05, 108.2])
    | st.builds(pow, st.just(10), st.just(5000)),
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.sampled_from(["id", "lat", "lon", "type", "priority", "incidents", "x"]), inner, max_size=5),
    max_leaves=12,
)  # fmt: skip
toml_values = st.recursive(
    st.booleans() | st.integers(-(10**6), 10**6) | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.sampled_from(["map", "simulation", "horizon_h", "units", "id", "vehicle",
                                       "station", "count", "priorities", "level", "target_s",
                                       "incident_types", "run_cards", "1", "units"]), inner, max_size=4),
    max_leaves=10,
)  # fmt: skip


def _only_dispatch_errors(reader: Callable[[Path], Any], path: Path) -> None:
    try:
        reader(path)
    except DispatchError as exc:
        assert "\n" not in str(exc), str(exc)


@pytest.mark.parametrize("name", list(READERS))
@FUZZ
@given(data=st.binary(max_size=300))
def test_random_bytes(tmp_path: Path, name: str, data: bytes) -> None:
    filename, reader = READERS[name]
    p = tmp_path / filename
    p.write_bytes(data)
    _only_dispatch_errors(reader, p)


@pytest.mark.parametrize("name", ["fleet", "calls", "calls_strict", "hospitals", "incidents_csv"])
@FUZZ
@given(doc=csv_docs)
def test_random_csv(tmp_path: Path, name: str, doc: str) -> None:
    filename, reader = READERS[name]
    p = tmp_path / filename
    p.write_bytes(doc.encode("utf-8", errors="replace"))
    _only_dispatch_errors(reader, p)


@pytest.mark.parametrize("name", ["incidents_json", "incident_json"])
@FUZZ
@given(value=json_values)
def test_random_json(tmp_path: Path, name: str, value: Any) -> None:
    filename, reader = READERS[name]
    p = tmp_path / filename
    try:
        p.write_text(json.dumps(value))
    except ValueError:  # an integer too long for str(): json.dumps itself refuses it
        return
    _only_dispatch_errors(reader, p)


@FUZZ
@given(value=st.dictionaries(st.sampled_from(["map", "simulation", "priorities", "incident_types",
                                              "units", "stations", "hospitals", "turnout", "fleet",
                                              "run_cards", "demand", "closures", "extends"]),
                             toml_values, max_size=6))  # fmt: skip
def test_random_scenario_structures(value: dict[str, Any]) -> None:
    try:
        parse_scenario(value)
    except DispatchError as exc:
        assert "\n" not in str(exc)


@FUZZ
@given(value=st.dictionaries(st.sampled_from(["priorities", "compatibility", "run_cards", "x"]),
                             toml_values, max_size=4))  # fmt: skip
def test_random_run_card_structures(value: dict[str, Any]) -> None:
    from dispatch.decide.runcards import RunCards

    try:
        RunCards.from_dict(value, source="fuzz")
    except DispatchError as exc:
        assert "\n" not in str(exc)


@FUZZ
@given(value=json_values)
def test_random_unit_and_incident_mappings(value: Any) -> None:
    for build in (Unit.from_dict, Incident.from_dict):
        try:
            build(value)
        except DispatchError as exc:
            assert "\n" not in str(exc)
