"""The CLI as a user runs it: real maps, JSON contracts, one-line errors with exit code 2."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import networkx as nx
import pytest

import dispatch
from dispatch.cli import main

DATA = Path(__file__).parents[1] / "data"
FLEET = str(DATA / "fleet_danang.csv")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_map_info_json(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run(capsys, "map", "info", "danang", "--json")
    assert rc == 0
    s = json.loads(out)
    assert s["nodes"] > 1000 and s["arcs"] > s["nodes"]
    assert set(s["reachable_share"]) == set(dispatch.VEHICLE_CLASSES)
    assert 16.0 < s["bbox"]["min_lat"] < s["bbox"]["max_lat"] < 16.1
    assert any(f["kind"] == "hospital" and "Hoan My" in f["name"] for f in s["facilities"])


def test_map_info_pbf_text(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run(capsys, "map", "info", "liechtenstein")
    assert rc == 0 and "fire_station" in out and "reachable" in out


def test_map_export_matches_routing(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    rc, _, err = run(
        capsys, "map", "export", "danang", "--vehicle", "fire_engine", "--out", str(tmp_path)
    )
    assert rc == 0 and "edges.csv" in err
    nodes = list(csv.DictReader((tmp_path / "nodes.csv").open()))
    edges = list(csv.DictReader((tmp_path / "edges.csv").open()))
    assert list(nodes[0]) == ["node", "lat", "lon"]
    assert list(edges[0]) == ["u", "v", "travel_time_s", "length_m"]
    # networkx on the exported files gives the routing's node-to-node times
    g = nx.DiGraph()
    for e in edges:
        u, v, t = int(e["u"]), int(e["v"]), float(e["travel_time_s"])
        if not g.has_edge(u, v) or g[u][v]["w"] > t:
            g.add_edge(u, v, w=t)
    net = dispatch.load_network("danang")
    pos = {int(n["node"]): (float(n["lat"]), float(n["lon"])) for n in nodes}
    # plain nodes: a junction expanded for restrictions or turn costs has several at one point
    plain = net.class_core("fire_engine") & (net.node_osmid > 0)
    core = [int(x) for x in net.node_osmid[plain][:400:40]]
    dist = nx.single_source_dijkstra_path_length(g, core[0], weight="w")
    tt = net.travel_times(pos[core[0]], [pos[c] for c in core[1:]], vehicle="fire_engine")[0]
    assert tt == pytest.approx([dist[c] for c in core[1:]], rel=1e-9)


def test_nearest_single_and_batch(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run(
        capsys, "nearest", "danang", "--call", "16.060909,108.220849", "--fleet", FLEET
    )
    assert rc == 0 and "ETA" in out and "A3" not in out  # A3 is busy
    rc, out, _ = run(capsys, "nearest", "danang", "--calls", str(DATA / "calls_danang.csv"),
                     "--fleet", FLEET, "--json", "-k", "2")  # fmt: skip
    lines = [json.loads(x) for x in out.splitlines()]
    assert [x["call"] for x in lines] == ["c1", "c2"]
    for x in lines:
        assert len(x["units"]) == 2
        assert x["units"][0]["eta_s"] <= x["units"][1]["eta_s"]
        assert set(x["units"][0]) >= {"unit", "vehicle", "eta_s"}


def test_route_and_geojson(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    rc, out, _ = run(capsys, "route", "danang", "--from", "16.060909,108.220849", "--to",
                     "16.050086,108.216239", "--vehicle", "ladder", "--geojson")  # fmt: skip
    g = json.loads(out)
    assert rc == 0 and g["geometry"]["type"] == "LineString" and g["properties"]["eta_s"] > 0
    # closures: a polygon around the destination makes it unreachable, with a clear message
    lat, lon = 16.050086, 108.216239
    d = 0.004  # wider than the snap tolerance: no class can reach the call
    ring = [
        [lon - d, lat - d],
        [lon + d, lat - d],
        [lon + d, lat + d],
        [lon - d, lat + d],
        [lon - d, lat - d],
    ]
    f = tmp_path / "flood.geojson"
    f.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"label": "flood"}, "geometry": {"type": "Polygon", "coordinates": [ring]}}]}))  # fmt: skip
    rc, out, _ = run(capsys, "route", "danang", "--from", "16.060909,108.220849", "--to",
                     f"{lat},{lon}", "--closures", str(f))  # fmt: skip
    assert rc == 0 and out.startswith("unreachable")
    rc, out, _ = run(capsys, "nearest", "danang", "--call", f"{lat},{lon}", "--fleet", FLEET,
                     "--closures", str(f), "--json")  # fmt: skip
    assert rc == 0 and json.loads(out)["units"] == [] and json.loads(out)["unreachable"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["map", "info", "nowhere"], "unknown map 'nowhere'"),
        (["map", "info", "missing.osm"], "does not exist"),
        (["map", "export", "danang", "--vehicle", "tank", "--out", "x"], "unknown vehicle class 'tank'"),
        (["route", "danang", "--from", "91,108.2", "--to", "16.05,108.21"], "out of range"),
        (["route", "danang", "--from", "nan,108.2", "--to", "16.05,108.21"], "non-finite"),
        (["route", "danang", "--from", "108.2208,16.0609", "--to", "16.05,108.21"], "look swapped"),
        (["route", "danang", "--from", "16.1500,108.2208", "--to", "16.05,108.21"], "farther than 300 m"),
        (["route", "danang", "--from", "16.05", "--to", "16.05,108.21"], "must be LAT,LON"),
        (["nearest", "danang", "--call", "16.05,108.21", "--fleet", "nofile.csv"], "does not exist"),
        (["nearest", "danang", "--call", "16.05,108.21", "--fleet", FLEET, "-k", "0"], "-k 0"),
    ],
)  # fmt: skip
def test_bad_input_one_line_exit_2(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    rc, out, err = run(capsys, *argv)
    assert rc == 2
    assert message in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_bad_map_files(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    empty = tmp_path / "empty.osm"
    empty.write_text("")
    corrupt = tmp_path / "bad.osm.bz2"
    corrupt.write_bytes(b"not bzip2 at all")
    unreadable = tmp_path / "secret.osm"
    unreadable.write_text("<osm/>")
    roadless = tmp_path / "roadless.osm"
    roadless.write_text('<osm version="0.6"><node id="1" lat="0" lon="0"/></osm>')
    for path, msg in ((empty, "empty"), (corrupt, "cannot read"), (roadless, "no drivable roads")):
        rc, _, err = run(capsys, "map", "info", str(path))
        assert rc == 2 and msg in err and err.count("\n") == 1


def test_bad_fleet_files(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    cases = {
        "id,vehicle,lat\nA,ambulance,16.05\n": "lacks column(s) lon",
        "id,vehicle,lat,lon\nA,tank,16.05,108.21\n": "line 2: field 'vehicle'",
        "id,vehicle,lat,lon\nA,ambulance,abc,108.21\n": "line 2: field 'lat': lat must be a number, got 'abc'",
        "id,vehicle,lat,lon\nA,ambulance,16.05,108.21\nA,ambulance,16.05,108.21\n": "duplicate unit id 'A'",
        "id,vehicle,lat,lon,status\nA,ambulance,16.05,108.21,sleeping\n": "got 'sleeping'",
        "id,vehicle,lat,lon\n": "has no data rows",
    }
    for i, (text, msg) in enumerate(cases.items()):
        f = tmp_path / f"fleet{i}.csv"
        f.write_text(text)
        rc, _, err = run(
            capsys, "nearest", "danang", "--call", "16.0609,108.2208", "--fleet", str(f)
        )
        assert rc == 2 and msg in err, (text, err)


def test_console_script_runs_without_traceback() -> None:
    out = subprocess.run([sys.executable, "-m", "dispatch", "route", "danang", "--from", "0,0", "--to", "0,0"],
                         capture_output=True, text=True)  # fmt: skip
    assert (
        out.returncode == 2 and "Traceback" not in out.stderr and "dispatch: error:" in out.stderr
    )


def test_fleet_from_stdin_and_a_closed_pipe(tmp_path: Path) -> None:
    fleet = (DATA / "fleet_danang.csv").read_text()
    out = subprocess.run([sys.executable, "-m", "dispatch", "nearest", "danang", "--call",
                          "16.060909,108.220849", "--fleet", "-", "--json"],
                         input=fleet, capture_output=True, text=True)  # fmt: skip
    assert out.returncode == 0 and json.loads(out.stdout)["units"]
    # `dispatch nearest ... --json | head -1` with more output than a pipe holds: the reader leaves
    # early, the writer stops quietly
    calls = tmp_path / "calls.csv"
    calls.write_text("id,lat,lon\n" + "".join(f"c{i},16.060909,108.220849\n" for i in range(3000)))
    p = subprocess.Popen([sys.executable, "-m", "dispatch", "nearest", "danang", "--calls", str(calls),
                          "--fleet", str(DATA / "fleet_danang.csv"), "--json"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    assert p.stdout is not None and p.stdout.readline().startswith(b'{"call"')
    p.stdout.close()
    err = p.stderr.read().decode() if p.stderr else ""
    assert p.wait() == 0 and "Traceback" not in err
