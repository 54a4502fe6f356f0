"""Issue 9 in the readers: each hostile file gives one DispatchError line naming file and problem."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import dispatch.io.text as text_mod
from dispatch.errors import DispatchError, InputFileError
from dispatch.io.fleet import (
    fleet_csv_text,
    read_calls,
    read_calls_csv,
    read_fleet,
    write_fleet_csv,
)
from dispatch.io.hospitals import read_hospitals
from dispatch.io.incidents import read_incident_json, read_incidents, write_incidents_json
from dispatch.model import Incident, Unit

DATA = Path(__file__).parents[1] / "data"
ROOT = Path(__file__).parents[2]


@pytest.mark.parametrize(
    ("reader", "path", "match"),
    [
        (read_fleet, "bad_fleet_duplicate_column/fleet.csv", r"line 2: header repeats column 'lat'"),
        (read_calls_csv, "bad_calls_duplicate_column/calls.csv", r"line 1: header repeats column 'lon'"),
        (read_hospitals, "bad_hospitals_duplicate_column/hospitals.csv", r"line 1: header repeats column 'lat'"),
        (read_incidents, "bad_incidents_duplicate_column/incidents.csv", r"line 1: header repeats column 'type'"),
        # physical line numbers: comment and blank lines count
        (read_fleet, "bad_fleet_after_comments/fleet.csv", r"line 7: field 'lat'.*'16.05x'"),
        (read_fleet, "bad_fleet_turnout_limit/fleet.csv", r"line 2: field 'turnout_s'.*\[0, 3600\]"),
        (read_fleet, "bad_fleet_long_line/fleet.csv", r"line 2: longer than the limit of 10,000 characters"),
        (read_incident_json, "bad_incident_nested/incident.json", "JSON nested too deeply"),
        (read_incident_json, "bad_incident_bigint/incident.json", "malformed JSON: Exceeds the limit"),
        (read_incident_json, "bad_incident_bool_priority/incident.json", "priority must be 1, 2 or 3, got True"),
        (read_incident_json, "bad_incident_bool_lat/incident.json", "lat must be a number, got True"),
    ],
)  # fmt: skip
def test_hostile_files_one_line_error(reader, path: str, match: str) -> None:
    with pytest.raises(DispatchError, match=match) as exc:
        reader(DATA / path)
    msg = str(exc.value)
    assert "\n" not in msg and len(msg) < 400
    assert str(DATA / path) in msg or Path(path).name in msg


def test_foreign_file_content_is_never_printed() -> None:
    with pytest.raises(InputFileError) as exc:
        read_fleet(DATA / "not_a_fleet" / "fleet.csv")
    assert "SECRET" not in str(exc.value) and "lacks column(s) id, vehicle, lat, lon" in str(
        exc.value
    )


def test_unreadable_files_name_the_file_and_the_problem(tmp_path: Path) -> None:
    long_name = tmp_path / ("f" * 300 + ".csv")
    binary = tmp_path / "fleet.bin"
    binary.write_bytes(b"id,vehicle,lat,lon\n\x00\x01\x02")
    latin = tmp_path / "latin.csv"
    latin.write_bytes("id,vehicle,lat,lon\nA,ambulance,1,1,caf\xe9\n".encode("latin-1"))
    cases = {
        tmp_path / "missing.csv": "does not exist",
        tmp_path: "is a folder",
        long_name: "cannot be read: File name too long",
        binary: r"is binary \(NUL bytes\)",
        latin: r"is not UTF-8 text \(invalid byte at offset",
        Path("/dev/zero"): "larger than the limit of 64 MiB",
    }
    for path, match in cases.items():
        for reader in (read_fleet, read_calls_csv, read_hospitals, read_incidents):
            with pytest.raises(InputFileError, match=match) as exc:
                reader(path)
            assert "\n" not in str(exc.value) and len(str(exc.value)) < 400


def test_row_limit_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(text_mod, "MAX_ROWS", 3)
    p = tmp_path / "f.csv"
    p.write_text("id,lat,lon\n" + "".join(f"c{i},1,1\n" for i in range(4)))
    with pytest.raises(InputFileError, match="more than the limit of 3 rows"):
        read_calls_csv(p)


def test_byte_order_mark_on_standard_input() -> None:
    code = (
        "import sys; from dispatch.io.fleet import read_fleet; "
        "u = read_fleet('-'); print(u[0].id, u[0].lat)"
    )
    out = subprocess.run([sys.executable, "-c", code], input=(DATA / "fleet_bom" / "fleet.csv").read_bytes(),
                         capture_output=True, cwd=ROOT)  # fmt: skip
    assert (DATA / "fleet_bom" / "fleet.csv").read_bytes().startswith(b"\xef\xbb\xbf")
    assert out.returncode == 0, out.stderr
    assert out.stdout.decode().split() == ["A1", "16.0594"]


def test_calls_reader_keeps_going_past_bad_rows() -> None:
    rows = read_calls(DATA / "bad_calls_some_rows" / "calls.csv")
    assert [(r.id, r.error is None) for r in rows] == [
        ("good1", True), ("bad_number", False), ("far_away", True), ("good2", True)
    ]  # fmt: skip
    assert "line 3" in (rows[1].error or "") and "16.06x" in (rows[1].error or "")


def test_fleet_and_incidents_round_trip(tmp_path: Path) -> None:
    units = read_fleet(DATA / "fleet_all_statuses" / "fleet.csv")
    write_fleet_csv(tmp_path / "f.csv", units)
    assert read_fleet(tmp_path / "f.csv") == units
    assert fleet_csv_text(units) == (tmp_path / "f.csv").read_text()
    incs = [Incident("I1", 16.05, 108.21, "stroke"), Incident("I2", 16.06, 108.22, priority=3)]
    write_incidents_json(tmp_path / "i.json", incs)
    assert read_incidents(tmp_path / "i.json") == incs


def test_hundred_thousand_units_parse(tmp_path: Path) -> None:
    """Linear reading (figures in the commit; no timing asserted here)."""
    p = tmp_path / "big.csv"
    p.write_text(
        "id,vehicle,lat,lon\n" + "".join(f"U{i},ambulance,16.05,108.21\n" for i in range(100_000))
    )
    units = read_fleet(p)
    assert len(units) == 100_000 and units[-1] == Unit("U99999", "ambulance", 16.05, 108.21)
