"""Issue 9 through the CLI: hostile options and files give one line and exit 2, never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dispatch.cli import main

DATA = Path(__file__).parents[1] / "data"
ROOT = Path(__file__).parents[2]
FLEET = str(DATA / "fleet_danang.csv")
INCIDENT = str(ROOT / "scenarios" / "danang_incident.json")
SURGE = str(ROOT / "scenarios" / "surge_danang.csv")
CALL = "16.060909,108.220849"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        rc = main(list(argv))
    except SystemExit as exc:  # argparse refuses an option value
        rc = int(exc.code or 0)
    out, err = capsys.readouterr()
    return rc, out, err


COMMANDS = {
    "nearest": ["nearest", "danang", "--call", CALL, "--fleet", FLEET],
    "route": ["route", "danang", "--from", "16.0594,108.2099", "--to", CALL],
    "map export": ["map", "export", "danang", "--out", "OUT"],
    "recommend": ["recommend", "danang", "--fleet", FLEET, "--incident", INCIDENT],
    "assign": ["assign", "danang", "--fleet", FLEET, "--incidents", SURGE],
}


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("hour", ["nan", "inf", "-inf", "-1", "17h", "1e999"])
def test_hour_refused_in_every_command(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, command: str, hour: str
) -> None:
    argv = [str(tmp_path / "out") if a == "OUT" else a for a in COMMANDS[command]]
    rc, out, err = run(capsys, *argv, f"--hour={hour}")
    assert rc == 2 and "--hour must be a" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_output_destinations_checked_before_work(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    a_file = tmp_path / "a_file"
    a_file.write_text("keep me")
    cases = [
        (["map", "export", "danang", "--out", str(a_file)], "exists and is not a folder"),
        (["map", "export", "danang", "--out", "/dev/full"], "exists and is not a folder"),
        (["map", "export", "danang", "--out", str(a_file / "sub")], "which is not a folder"),
        (["map", "export", "danang", "--out", str(tmp_path / ("d" * 300))], "longer than the file system allows"),
        ([*COMMANDS["recommend"], "--geojson", "/dev/full"], "exists and is not a regular file"),
        ([*COMMANDS["recommend"], "--geojson", str(tmp_path)], "exists and is a folder"),
        ([*COMMANDS["assign"], "--geojson", str(a_file / "x.geojson")], "which is not a folder"),
        ([*COMMANDS["assign"], "--geojson", str(tmp_path / ("g" * 300))], "longer than the file system allows"),
    ]  # fmt: skip
    for argv, match in cases:
        rc, out, err = run(capsys, *argv)
        assert rc == 2 and match in err and err.count("\n") == 1, (argv, err)
    assert a_file.read_text() == "keep me"
    # an existing regular file is replaced (atomically) by --geojson
    target = tmp_path / "plan.geojson"
    target.write_text("old")
    rc, _, err = run(capsys, *COMMANDS["recommend"], "--geojson", str(target))
    assert rc == 0, err
    assert json.loads(target.read_text())["type"] == "FeatureCollection"


@pytest.mark.parametrize("flag", ["--fleet", "--incident"])
def test_file_names_longer_than_the_file_system_allows(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, flag: str
) -> None:
    argv = list(COMMANDS["recommend"])
    argv[argv.index(flag) + 1] = str(tmp_path / ("n" * 300 + ".csv"))
    rc, _, err = run(capsys, *argv)
    assert rc == 2 and "File name too long" in err and err.count("\n") == 1


def test_scenario_name_too_long(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    rc, _, err = run(capsys, "simulate", str(tmp_path / ("s" * 300 + ".toml")))
    assert rc == 2 and "File name too long" in err and err.count("\n") == 1


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["--hours", "1e9"], "hours=1000000000.0 must be a number in (0, 87840]"),
        (["--hours", "inf"], "hours=inf"),
        (["--replications", "10000"], "replications=10000 must be in [1, 1000]"),
    ],
)
def test_simulate_limits_before_any_work(
    capsys: pytest.CaptureFixture[str], argv: list[str], match: str
) -> None:
    rc, _, err = run(capsys, "simulate", "danang", *argv)
    assert rc == 2 and match in err and err.count("\n") == 1, err


def test_duplicate_column_fleet_refused_by_every_command(
    capsys: pytest.CaptureFixture[str],
) -> None:
    bad = str(DATA / "bad_fleet_duplicate_column" / "fleet.csv")
    for name in ("nearest", "recommend", "assign"):
        argv = [bad if a == FLEET else a for a in COMMANDS[name]]
        rc, out, err = run(capsys, *argv)
        assert rc == 2 and "header repeats column 'lat'" in err and out == "", (name, err)


def test_unit_off_the_map_names_unit_file_and_option(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    f = tmp_path / "fleet.csv"
    f.write_text("id,vehicle,lat,lon\nA1,ambulance,16.0594,108.2099\nFAR,ambulance,10.0,106.0\n")
    rc, _, err = run(capsys, "nearest", "danang", "--call", CALL, "--fleet", str(f))
    assert (
        rc == 2 and "--fleet" in err and str(f) in err and "'FAR'" in err and err.count("\n") == 1
    )


def test_nearest_calls_answers_every_good_call(capsys: pytest.CaptureFixture[str]) -> None:
    calls = str(DATA / "bad_calls_some_rows" / "calls.csv")
    rc, out, err = run(capsys, "nearest", "danang", "--calls", calls, "--fleet", FLEET, "--json")
    lines = [json.loads(x) for x in out.splitlines()]
    assert rc == 2 and [r["call"] for r in lines] == ["good1", "bad_number", "far_away", "good2"]
    assert lines[0]["units"] and lines[3]["units"]
    assert "line 3" in lines[1]["error"] and "16.06x" in lines[1]["error"]
    assert "line 4" in lines[2]["error"] and "farther than" in lines[2]["error"]
    assert "2 of 4 calls failed" in err
    rc, out, err = run(capsys, "nearest", "danang", "--calls", calls, "--fleet", FLEET)
    assert (
        rc == 2
        and "call good1" in out
        and "call good2" in out
        and err.count("dispatch: error:") == 3
    )


def _subprocess(argv: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "dispatch", *argv], capture_output=True, text=True,
                          cwd=ROOT, env=env, **kw)  # type: ignore[call-overload,no-any-return]  # fmt: skip


def test_closed_and_full_stdout_without_traceback() -> None:
    for argv in (
        ["map", "info", "monaco", "--json"],
        ["nearest", "danang", "--call", CALL, "--fleet", FLEET, "--json"],
    ):
        closed = _subprocess(argv, stdout=None, stdin=subprocess.DEVNULL,
                             preexec_fn=lambda: os.close(1))  # fmt: skip
        assert closed.returncode == 2 and "standard output is closed" in closed.stderr
        assert "Traceback" not in closed.stderr
        with open("/dev/full", "w") as full:
            res = subprocess.run([sys.executable, "-m", "dispatch", *argv], stdout=full, stderr=subprocess.PIPE,
                                 text=True, cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)))  # fmt: skip
        assert (
            res.returncode == 2
            and "No space left on device" in res.stderr
            and "Traceback" not in res.stderr
        )


def test_fleet_with_bom_from_stdin() -> None:
    res = _subprocess(["nearest", "danang", "--call", CALL, "--fleet", "-", "--json"],
                      input=(DATA / "fleet_bom" / "fleet.csv").read_text(encoding="utf-8"))  # fmt: skip
    # text=True encodes the str back to UTF-8, BOM included
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["units"][0]["unit"] == "A1"


def test_recommend_names_the_fleet_file_of_a_unit_off_the_map(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    f = tmp_path / "fleet.csv"
    f.write_text("id,vehicle,lat,lon\nA1,ambulance,16.0594,108.2099\nFAR,ambulance,10.0,106.0\n")
    rc, out, err = run(capsys, "recommend", "danang", "--fleet", str(f), "--incident", INCIDENT)
    assert rc == 0 and "A1" in out
    assert f"--fleet {f}: unit 'FAR' treated as unreachable" in err


def test_simulate_station_off_the_map_names_file_key_and_unit(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    sc = tmp_path / "offmap.toml"
    sc.write_text(
        'extends = "danang"\n[[stations]]\nname = "Far away"\nlat = 16.2\nlon = 108.5\n'
        '[[units]]\nid = "X1"\nvehicle = "ambulance"\nstation = "Far away"\n'
    )
    rc, _, err = run(capsys, "simulate", str(sc), "--quiet")
    assert rc == 2 and err.count("\n") == 1, err
    assert "offmap.toml" in err and "stations[0] 'Far away'" in err and "'X1'" in err, err
