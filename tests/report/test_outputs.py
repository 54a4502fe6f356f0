"""Report writers: atomic files, deterministic CSVs, PNGs and HTML map, terminal tables, the CLI."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from dispatch.report.outputs import (
    CALL_COLUMNS,
    atomic_write,
    calls_csv,
    format_comparison,
    format_summary,
    write_outputs,
)
from dispatch.sim.runner import run_scenario
from dispatch.sim.stats import paired_differences, pooled_summary
from tests._sim_fake import FakeNet
from tests.sim.test_simulation import tiny_scenario

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _results():
    sc = tiny_scenario(
        simulation={"horizon_h": 24.0, "seed": 8},
        units=[{"id": "U", "vehicle": "ambulance", "station": "S", "count": 2}],
        closures=[
            {
                "label": "flood",
                "start_h": 2,
                "end_h": 4,
                "polygon": [[16.0, 108.0], [16.01, 108.0], [16.01, 108.01]],
            }
        ],
    )
    res = run_scenario(sc, net=FakeNet(), policies=["fastest", "nearest_node"])
    return sc, {r.policy: [r] for r in res}


def test_atomic_write_replaces_and_cleans_up(tmp_path: Path) -> None:
    p = atomic_write(tmp_path / "a" / "x.txt", "one")
    atomic_write(p, b"two")
    assert p.read_bytes() == b"two"
    umask = os.umask(0)
    os.umask(umask)
    assert p.stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's 0600
    assert [q.name for q in p.parent.iterdir()] == ["x.txt"]

    class Boom(Exception):
        pass

    class Bad(str):
        def encode(self, *a, **k):  # type: ignore[override]
            raise Boom

    with pytest.raises(Boom):
        atomic_write(p, Bad("three"))
    assert p.read_bytes() == b"two"  # the old file is intact, no temporary file left
    assert [q.name for q in p.parent.iterdir()] == ["x.txt"]


def test_write_outputs_files(tmp_path: Path) -> None:
    sc, by_policy = _results()
    summary = pooled_summary(by_policy["fastest"])
    closures = [{"label": "flood", "start_h": 2, "end_h": 4, "geometry": {
        "type": "Polygon", "coordinates": [[[108.0, 16.0], [108.0, 16.01], [108.01, 16.01], [108.0, 16.0]]]}}]  # fmt: skip
    paths = write_outputs(
        tmp_path, by_policy, summary, main_policy="fastest", stations={"S": (16.0, 108.0)},
        closures=closures,
    )  # fmt: skip
    names = sorted(p.name for p in paths)
    assert names == sorted(
        ["calls.csv", "units.csv", "summary.json", "response_by_priority.png", "utilisation.png",
         "response_by_hour.png", "map.html", "map.geojson", "manifest.json"]
    )  # fmt: skip
    for png in ("response_by_priority.png", "utilisation.png", "response_by_hour.png"):
        data = (tmp_path / png).read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 10_000
    lines = (tmp_path / "calls.csv").read_text().splitlines()
    assert lines[0].split(",") == list(CALL_COLUMNS)
    n = sum(r.n_calls for rs in by_policy.values() for r in rs)
    assert len(lines) == n + 1
    units = (tmp_path / "units.csv").read_text().splitlines()
    assert len(units) == 1 + 2 * 2
    assert json.loads((tmp_path / "summary.json").read_text())["calls"] == summary["calls"]
    html = (tmp_path / "map.html").read_text()
    assert "leaflet" in html.lower() and "closed: flood" in html and "station: S" in html
    assert "hospital: H" in html and "OpenStreetMap contributors" in html
    gj = json.loads((tmp_path / "map.geojson").read_text())
    layers = [f["properties"]["layer"] for f in gj["features"]]
    main = by_policy["fastest"][0]
    assert layers.count("call") == int(main.calls["in_stats"].sum())
    assert layers.count("closure") == 1 and layers.count("hospital") == len(main.hospitals)
    served = [
        f
        for f in gj["features"]
        if f["properties"]["layer"] == "call" and f["properties"]["served"]
    ]
    assert all(f["properties"]["response_s"] >= 0 for f in served)
    lon, lat = gj["features"][0]["geometry"]["coordinates"]  # GeoJSON order: lon, lat
    assert 107 < lon < 109 and 15 < lat < 17
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_calls_csv_is_deterministic() -> None:
    _, a = _results()
    _, b = _results()
    assert calls_csv(a["fastest"]) == calls_csv(b["fastest"])


def test_terminal_tables() -> None:
    _, by_policy = _results()
    s = pooled_summary(by_policy["fastest"])
    text = format_summary(s, title="tiny")
    assert text.splitlines()[0] == "tiny"
    assert (
        "all calls" in text and "priority 1 (target 600 s)" in text and "unit utilisation" in text
    )
    diffs = paired_differences(by_policy)
    table = format_comparison({p: pooled_summary(r) for p, r in by_policy.items()}, diffs)
    assert "nearest_node" in table and "(reference)" in table and "paired" in table


def test_cli_json_is_deterministic_and_has_the_top_level_keys(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from dispatch.cli import main

    argv = ["simulate", "danang", "--hours", "6", "--seed", "3", "--json", "--quiet"]
    assert main(argv) == 0
    first = capsys.readouterr().out
    assert main(argv) == 0
    second = capsys.readouterr().out
    assert first == second
    d = json.loads(first)
    for key in ("calls", "served", "unserved", "response_s", "within_target", "by_priority"):
        assert key in d
    assert d["served"] + d["unserved"] == d["calls"]
    assert set(d["response_s"]) == {"mean", "median", "p90", "p95", "max"}


def test_cli_errors_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from dispatch.cli import main

    assert main(["simulate", "atlantis", "--quiet"]) == 2
    assert "atlantis" in capsys.readouterr().err
    bad = Path(__file__).parents[1] / "data" / "bad_scenarios" / "negative_rate.toml"
    assert main(["simulate", str(bad), "--quiet"]) == 2
    assert "calls_per_hour" in capsys.readouterr().err
    assert main(["simulate", "danang", "--replications", "0", "--quiet"]) == 2
