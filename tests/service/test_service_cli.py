"""``dispatch serve``: bad options are one line and exit 2; the start-up warnings; no server is run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("uvicorn", reason="the service needs the 'service' extra (uvicorn)")

from dispatch.cli import main  # noqa: E402
from tests.service.conftest import FLEET  # noqa: E402


@pytest.fixture
def runs(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Replace uvicorn.run: record what would be served instead of serving it."""
    import uvicorn

    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append({"app": app, **kw}))
    return calls


def serve(tmp_path: Path, *extra: str) -> int:
    return main(["serve", "danang", "--fleet", str(FLEET), "--state", str(tmp_path / "s.sqlite"),
                 *extra])  # fmt: skip


def test_serves_on_loopback_by_default(tmp_path: Path, runs: list[dict[str, Any]],
                                       capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    assert serve(tmp_path) == 0
    assert runs[0]["host"] == "127.0.0.1" and runs[0]["port"] == 8080
    err = capsys.readouterr().err
    assert "warning" not in err and "13 units" in err and "change 1" in err
    assert "clock Asia/Ho_Chi_Minh" in err  # the map's time zone


def test_clock_and_coverage_options(tmp_path: Path, runs: list[dict[str, Any]],
                                    capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    assert serve(tmp_path, "--time-zone", "Europe/Monaco", "--coverage-warning") == 0
    service = runs[0]["app"].state.service
    assert service.time_zone == "Europe/Monaco" and service.engine.coverage
    assert "clock Europe/Monaco" in capsys.readouterr().err
    assert serve(tmp_path, "--no-clock") == 0
    assert runs[1]["app"].state.service.clock is None
    assert "no clock" in capsys.readouterr().err


def test_warns_when_binding_elsewhere_without_token(
    tmp_path: Path, runs: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    assert serve(tmp_path, "--host", "0.0.0.0", "--port", "0") == 0  # not started: recorded only
    assert "warning: binding to 0.0.0.0 without --token-file" in capsys.readouterr().err
    token = tmp_path / "token.txt"
    token.write_text("a-long-enough-secret-token\n")
    assert serve(tmp_path, "--host", "0.0.0.0", "--token-file", str(token)) == 0
    assert "warning" not in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("--token-file", "{tmp}/missing.txt"), ["--token-file", "missing.txt"]),
        (("--token-file", "{tmp}/short.txt"), ["at least 16 characters"]),
        (("--port", "70000"), ["--port", "70000"]),
        (("--fleet", "tests/data/bad_fleet_vehicle/fleet.csv"), ["vehicle"]),
        (("--time-zone", "Mars/Olympus"), ["time zone", "'Mars/Olympus'"]),
        (("--coverage-target-s", "0"), ["--coverage-target-s", "0"]),
        (("--coverage-cell-m", "nan"), ["--coverage-cell-m", "nan"]),
    ],
)
def test_bad_options_are_one_line_exit_2(
    tmp_path: Path, runs: list[dict[str, Any]], capsys: pytest.CaptureFixture[str],
    args: tuple[str, ...], words: list[str],
) -> None:  # fmt: skip
    (tmp_path / "short.txt").write_text("short\n")
    argv = [a.replace("{tmp}", str(tmp_path)) for a in args]
    assert serve(tmp_path, *argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("dispatch: error:") and "\n" not in err and "Traceback" not in err
    for w in words:
        assert w in err, err
    assert not runs


def test_state_of_another_map_is_refused_at_start(
    tmp_path: Path, runs: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    from dispatch.service.store import Store

    Store(tmp_path / "s.sqlite").set_meta("map", "monaco.osm.bz2")
    assert serve(tmp_path) == 2
    assert "belongs to map 'monaco.osm.bz2'" in capsys.readouterr().err
