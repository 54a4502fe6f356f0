"""Hostile use of ``dispatch simulate`` outputs (issue 9): bad destinations refused before the
simulation, limits before any work, SIGTERM like Ctrl-C, the output set written as a whole."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import dispatch.report.outputs as outputs
import dispatch.sim.parallel as parallel
from dispatch.cli import main
from dispatch.cli.simulate import _sigterm_as_interrupt
from dispatch.report.outputs import OutputError, check_output_dir, write_outputs
from dispatch.sim.runner import (
    MAX_EXPECTED_CALLS,
    MAX_HORIZON_H,
    MAX_REPLICATIONS,
    check_run_limits,
    run_scenario,
)
from dispatch.sim.simulation import SimulationError
from dispatch.sim.stats import pooled_summary
from tests._sim_fake import FakeNet
from tests.sim.test_simulation import tiny_scenario

ROOT = Path(__file__).resolve().parents[2]


def _results() -> dict[str, list[Any]]:
    sc = tiny_scenario(units=[{"id": "U", "vehicle": "ambulance", "station": "S", "count": 2}])
    return {"fastest": run_scenario(sc, net=FakeNet())}


def _write(out: Path, **kw: Any) -> list[Path]:
    by_policy = _results()
    summary = {"scenario": "tiny", "seed": 1, **pooled_summary(by_policy["fastest"])}
    return write_outputs(out, by_policy, summary, main_policy="fastest", **kw)


def _no_tmp(folder: Path) -> None:
    assert not [p for p in folder.rglob("*") if p.name.endswith(".tmp")]


def _set_is_complete(out: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((out / "manifest.json").read_text())
    for name, meta in doc["files"].items():
        assert hashlib.sha256((out / name).read_bytes()).hexdigest() == meta["sha256"]
    return doc


@pytest.fixture
def no_simulation(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if the CLI gets as far as simulating."""

    def boom(*a: Any, **k: Any) -> Any:
        raise AssertionError("the simulation ran before the input was checked")

    monkeypatch.setattr(parallel, "run_replications", boom)


# -- destinations and limits, before any work ------------------------------------------------------


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("file", "exists and is not a folder"),
        ("/dev/full", "exists and is not a folder"),
        ("under_file", "which is not a folder"),
        ("", "the folder name is empty"),
        ("long", "folder name longer than"),
    ],
)
def test_bad_out_refused_before_the_simulation(
    where: str,
    message: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    no_simulation: None,
) -> None:
    f = tmp_path / "results.txt"
    f.write_text("keep me")
    out = {"file": str(f), "under_file": str(f / "out"), "long": str(tmp_path / ("x" * 250))}.get(
        where, where
    )
    assert main(["simulate", "danang", "--quiet", "--out", out]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert f.read_text() == "keep me"
    _no_tmp(tmp_path)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--hours", "1e9"], f"hours=1000000000.0 must be a number in (0, {MAX_HORIZON_H:g}]"),
        (["--hours", "nan"], "hours=nan must be a number in"),
        (["--hours", "0"], "hours=0.0 must be a number in"),
        (["--replications", "100000"], f"replications=100000 must be in [1, {MAX_REPLICATIONS}]"),
        (["--workers", "0"], "--workers=0 must be >= 1"),
    ],
)
def test_limits_refused_before_any_work(
    flags: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    no_simulation: None,
) -> None:
    # checked before any simulation (the scenario file itself is read: it holds the limits' context)
    assert main(["simulate", "danang", "--quiet", *flags]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_expected_calls_limit_names_the_limit() -> None:
    import dataclasses

    sc = tiny_scenario(simulation={"horizon_h": 20_000.0, "seed": 1})  # 2 calls/h: 40,000 calls
    check_run_limits(sc)
    heavy = dataclasses.replace(  # 2 x 100 calls/h for 10 years: 17.6 million calls
        sc,
        horizon_h=MAX_HORIZON_H,
        incident_types=tuple(
            dataclasses.replace(t, calls_per_hour=100.0) for t in sc.incident_types
        ),
    )
    with pytest.raises(SimulationError, match=f"above the limit of {MAX_EXPECTED_CALLS:,}"):
        check_run_limits(heavy)
    with pytest.raises(SimulationError, match=r"replications=1001 must be in \[1, 1,000\]"):
        check_run_limits(sc, 1001)


# -- the output set ------------------------------------------------------------------------------


def test_new_folder_gets_a_complete_set_with_a_manifest(tmp_path: Path) -> None:
    out = tmp_path / "a" / "b"
    paths = _write(out, html_map=False)
    assert paths[-1].name == "manifest.json"
    doc = _set_is_complete(out)
    assert sorted(doc["files"]) == sorted(p.name for p in paths[:-1])
    assert doc["run"]["scenario"] == "tiny" and doc["run_id"]
    _no_tmp(tmp_path)
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o777 & ~umask


def test_existing_folder_keeps_other_files_and_drops_stale_ones(tmp_path: Path) -> None:
    out = tmp_path / "out"
    _write(out)  # with the map
    (out / "notes.txt").write_text("mine")
    _write(out, html_map=False, plots=False)
    names = sorted(p.name for p in out.iterdir())
    assert names == ["calls.csv", "manifest.json", "notes.txt", "summary.json", "units.csv"]
    _set_is_complete(out)
    _no_tmp(tmp_path)


def test_sigterm_while_writing_leaves_the_earlier_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    _write(out, html_map=False)
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def killed(*a: Any, **k: Any) -> bytes:
        os.kill(os.getpid(), signal.SIGTERM)  # what `timeout` sends
        raise AssertionError("SIGTERM did not interrupt")

    monkeypatch.setattr(outputs, "plot_utilisation", killed)
    with pytest.raises(KeyboardInterrupt), _sigterm_as_interrupt():
        _write(out, html_map=False)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    _no_tmp(tmp_path)
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # handler restored


def test_signals_wait_while_the_set_is_moved_into_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    _write(out, html_map=False)
    real_replace = os.replace
    calls = []

    def replace_then_kill(a: Any, b: Any) -> None:
        if Path(b).parent == out:  # moving the set into place (not a file into the temporary set)
            if not calls:
                os.kill(os.getpid(), signal.SIGTERM)  # held until every file is in place
            calls.append(b)
        real_replace(a, b)

    monkeypatch.setattr(outputs.os, "replace", replace_then_kill)
    with pytest.raises(KeyboardInterrupt), _sigterm_as_interrupt():
        _write(out, html_map=False)
    assert Path(calls[-1]).name == "manifest.json"
    _set_is_complete(out)
    _no_tmp(tmp_path)


def test_full_disk_is_one_line_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(path: Any, data: Any) -> Path:
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(outputs, "atomic_write", full)
    with pytest.raises(OutputError, match="cannot write: No space left on device"):
        _write(tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


def test_check_output_dir_accepts_new_and_existing_folders(tmp_path: Path) -> None:
    assert check_output_dir(tmp_path) == tmp_path
    assert check_output_dir(tmp_path / "new" / "deeper") == tmp_path / "new" / "deeper"
    assert not (tmp_path / "new").exists()  # nothing created by the check


# -- the CLI under signals and closed streams ---------------------------------------------------


def test_cli_sigterm_during_the_simulation_is_an_interrupt(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def killed(*a: Any, **k: Any) -> Any:
        os.kill(os.getpid(), signal.SIGTERM)
        raise AssertionError("SIGTERM did not interrupt")

    monkeypatch.setattr(parallel, "run_replications", killed)
    assert main(["simulate", "danang", "--quiet", "--out", str(tmp_path / "out")]) == 130
    assert capsys.readouterr().err == "dispatch: interrupted\n"
    assert list(tmp_path.iterdir()) == []


def test_cli_json_to_a_closed_stdout_is_one_line(danang: Any) -> None:
    cmd = "exec python -m dispatch simulate danang --quiet --json --hours 1 >&-"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        ["sh", "-c", cmd.replace("python", sys.executable, 1)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    # nothing can be delivered: one line, exit 2, before any work (dispatch.cli.main's rule)
    assert (proc.returncode, proc.stderr) == (
        2,
        "dispatch: error: standard output is closed: nothing can be printed\n",
    )
    # a reader that goes away (`dispatch simulate ... --json | head -c0`)
    p = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dispatch",
            "simulate",
            "danang",
            "--quiet",
            "--json",
            "--hours",
            "1",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert p.stdout is not None and p.stderr is not None
    p.stdout.close()
    err = p.stderr.read()
    assert p.wait(timeout=600) == 0 and err == b""


def _sleeping_task(task: Any, progress: Any = None) -> list[Any]:
    import time

    time.sleep(120)
    return []


def test_sigterm_ends_the_worker_processes_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    import threading
    import time

    monkeypatch.setattr(parallel, "run_task", _sleeping_task)  # inherited by the forked workers
    timer = threading.Timer(1.0, lambda: os.kill(os.getpid(), signal.SIGTERM))
    t0 = time.monotonic()
    timer.start()
    with pytest.raises(KeyboardInterrupt), _sigterm_as_interrupt():
        parallel.run_tasks([1, 2, 3], workers=2)  # type: ignore[list-item]
    assert time.monotonic() - t0 < 60  # not waiting for the 120 s tasks
