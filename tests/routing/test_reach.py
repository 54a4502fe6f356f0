"""Two-stage reach (dispatch.routing.reach): drive to the best access point, then walk.

The hand map (tests/data/reach_alleys.osm, at the equator: 0.001 degree = 111.195 m; primary road
at 36 km/h = 10 m/s with HAND_SETTINGS) makes every figure checkable by hand::

    (0.002)       5 ---footway--- 6          alley 2-4-5 closed to cars (motorcar=no)
                  |               |          spur 3-6 residential
    (0.001)       4        8 --- 9           track 7-8, residential 8-9 (an enclave)
                  |        |
    (0)     1 --- 2 ------ 3 ---- 7          main road, units at node 1
"""

from __future__ import annotations

import math
from pathlib import Path

import networkx as nx
import numpy as np
import pytest

import dispatch
from dispatch.errors import PointError
from dispatch.geo import haversine_m
from dispatch.routing import queries as _q
from dispatch.routing.reach import ReachModel
from tests.conftest import HAND_SETTINGS

DATA = Path(__file__).resolve().parent.parent / "data"
B = 111.19508  # metres per 0.001 degree at the equator
V = 10.0  # m/s on the 36 km/h roads
WALK_MPS = {"ambulance": 1.0, "fire_engine": 0.8, "ladder": 1.2, "motorbike": 1.3}


@pytest.fixture(scope="module")
def alleys(tmp_path_factory: pytest.TempPathFactory) -> dispatch.Network:
    return dispatch.load_network(
        DATA / "reach_alleys.osm", settings=HAND_SETTINGS, cache_dir=tmp_path_factory.mktemp("r")
    )


def _units(net: dispatch.Network, lat: float = 0.0, lon: float = 0.0) -> list[dict[str, object]]:
    return [{"id": v, "vehicle": v, "lat": lat, "lon": lon, "turnout_s": 0} for v in net.vehicles]


def _by_vehicle(answer: list[dispatch.UnitETA]) -> dict[str, dispatch.UnitETA]:
    return {u.vehicle: u for u in answer}


def test_profiles_carry_walk_values() -> None:
    p = dispatch.network_settings().profiles
    assert (p["fire_engine"].walk_speed_mps, p["fire_engine"].max_walk_m) == (0.8, 500.0)
    assert p["ladder"].max_walk_m == pytest.approx(45.7)  # IFC 503.1.1: 150 ft
    s = dispatch.network_settings(profiles={"ambulance": {"max_walk_m": 50.0}})
    assert s.profiles["ambulance"].max_walk_m == 50.0
    with pytest.raises(dispatch.DispatchError, match="walk_speed_mps"):
        dispatch.network_settings(profiles={"ambulance": {"walk_speed_mps": 0}})


def test_engine_closed_alley(alleys: dispatch.Network) -> None:
    call = (0.0012, 0.001)  # in the alley, 1.2 blocks from the main road
    got = _by_vehicle(alleys.fastest_units(call, _units(alleys), k=4))
    for v in ("ambulance", "fire_engine"):
        u = got[v]
        assert u.reach == "drive+walk"
        assert u.access_point == pytest.approx((0.0, 0.001))  # where the alley leaves the road
        assert u.walk_m == pytest.approx(1.2 * B, abs=1e-3)
        assert u.walk_s == pytest.approx(1.2 * B / WALK_MPS[v], abs=1e-3)
        assert u.drive_s == pytest.approx(B / V, abs=1e-6)
        assert u.eta_s == pytest.approx(u.turnout_s + u.drive_s + u.walk_s, abs=1e-9)
    # the motorbike drives the alley: the same answer as a plain drive
    m = got["motorbike"]
    assert (m.reach, m.walk_m, m.access_point) == ("drive", 0.0, None)
    tt = alleys.travel_times((0.0, 0.0), call, vehicle="motorbike")
    assert m.eta_s == pytest.approx(float(tt[0, 0]), abs=1e-9)
    # the ladder's on-foot limit is 45.7 m: beyond reach, ranked after every unit that reaches
    order = [u.vehicle for u in alleys.fastest_units(call, _units(alleys), k=4)]
    assert order[-1] == "ladder" and got["ladder"].eta_s < got["fire_engine"].eta_s
    lad = got["ladder"]
    assert lad.reach == "beyond_reach"
    assert "beyond the ladder on-foot limit of 45.7 m" in lad.note
    assert "reached by: ambulance, fire_engine, motorbike" in lad.note
    assert lad.as_dict()["reach"] == "beyond_reach"
    # k smaller than the units that reach: nobody beyond reach is listed
    assert [u.vehicle for u in alleys.fastest_units(call, _units(alleys), k=3)] == order[:3]


def test_footway_shortcut_minimises_drive_plus_walk(alleys: dispatch.Network) -> None:
    # the call at the alley's end (node 5): the nearest access by road is node 2 (drive 1 block,
    # walk 2 blocks), but the footway from the spur's end (node 6) is shorter on foot
    call = (0.002, 0.001)
    e = _by_vehicle(alleys.fastest_units(call, _units(alleys), k=4))["fire_engine"]
    via2 = B / V + 2 * B / 0.8
    via6 = 2 * B / V + 2 * B / V + B / 0.8
    assert via6 < via2
    assert e.access_point == pytest.approx((0.002, 0.002))
    assert e.eta_s == pytest.approx(via6, abs=1e-6)
    assert (e.walk_m, e.drive_s) == (pytest.approx(B, abs=1e-3), pytest.approx(4 * B / V))


def test_enclave_reached_only_by_track(alleys: dispatch.Network, tmp_path: Path) -> None:
    call = (0.001, 0.004)  # node 9, on a residential street open to ambulances but cut off
    got = _by_vehicle(alleys.fastest_units(call, _units(alleys), k=4))
    a = got["ambulance"]
    assert a.reach == "drive+walk" and a.access_point == pytest.approx((0.0, 0.003))
    assert a.walk_m == pytest.approx(2 * B, abs=1e-3)
    assert a.eta_s == pytest.approx(3 * B / V + 2 * B / 1.0, abs=1e-6)
    assert got["motorbike"].reach == "drive"  # motorbikes ride the track
    note = got["ladder"].note
    assert "cut off from the ladder network" in note and "reached only over" in note
    assert "track" in note
    # with a shorter stretcher carry the ambulance is beyond reach too, and says why
    short = dispatch.network_settings(profiles={
        **{v: {"emergency_factor": 1.0, "max_speed_kmh": 200.0} for v in alleys.vehicles},
        "ambulance": {"emergency_factor": 1.0, "max_speed_kmh": 200.0, "max_walk_m": 100.0},
    })  # fmt: skip
    net = dispatch.load_network(DATA / "reach_alleys.osm", settings=short, cache_dir=tmp_path)
    amb = [{"id": "A", "vehicle": "ambulance", "lat": 0.0, "lon": 0.0, "turnout_s": 0}]
    (only,) = net.fastest_units(call, amb, k=1)
    assert only.reach == "beyond_reach"
    assert "nearest access point 222 m on foot, beyond the ambulance on-foot limit of 100 m" in (
        only.note
    )
    assert "no class of the fleet reaches it" in only.note


def test_a_call_nobody_reaches_names_the_reason(alleys: dispatch.Network) -> None:
    call = (0.003, 0.00025)  # on a footway joined to nothing
    with pytest.raises(PointError) as err:
        alleys.fastest_units(call, _units(alleys), k=4)
    msg = str(err.value)
    assert "on footway way 106 is beyond the reach of the fleet" in msg
    assert "farther than" not in msg
    assert "closed to fire_engine: no road fire_engine can drive to within 500 m on foot" in msg


def test_calls_on_drivable_roads_are_unchanged(alleys: dispatch.Network) -> None:
    units = _units(alleys)
    for call in [(0.0, 0.0015), (0.0, 0.0025), (0.001, 0.002)]:
        with_reach = alleys.fastest_units(call, units, k=4)
        plain = _q.fastest_units(alleys.engine, alleys.closure_set, call, units, k=4)
        assert [(u.unit, u.eta_s) for u in with_reach] == [(u.unit, u.eta_s) for u in plain]
        assert all(u.reach == "drive" for u in with_reach)


def test_route_ends_at_the_access_point(alleys: dispatch.Network) -> None:
    call = (0.002, 0.001)
    e = _by_vehicle(alleys.fastest_units(call, _units(alleys), k=4, routes=True))["fire_engine"]
    assert e.route is not None and e.access_point is not None
    assert e.route.coords[-1] == pytest.approx(e.access_point)
    assert e.route.eta_s == pytest.approx(e.drive_s, abs=1e-9)


# --- independent recomputation with networkx ------------------------------------------------------


def _nx_drive(net: dispatch.Network, vehicle: str) -> nx.DiGraph:
    """The class's drive graph at the resolution of the OSM geometry (one edge per piece)."""
    w = net.weights(vehicle)
    g = nx.DiGraph()
    for a in np.flatnonzero(np.isfinite(w)).tolist():
        lo, hi = int(net.geom_ptr[a]), int(net.geom_ptr[a + 1])
        lat, lon = net.geom_lat[lo:hi], net.geom_lon[lo:hi]
        seg = haversine_m(lat[:-1], lon[:-1], lat[1:], lon[1:])
        total = float(seg.sum())
        keys: list[object] = [("n", int(net.arc_tail[a]))]
        # a road's inner points belong to its arc: shared between the two directions, they would
        # let the reference turn back for free mid-road, which no kernel (nor a truck) does
        keys += [("o", int(x), a) for x in net.geom_node[lo + 1 : hi - 1].tolist()]
        keys.append(("n", int(net.arc_head[a])))
        for i in range(len(seg)):
            t = float(w[a]) * (float(seg[i]) / total if total > 0 else 1.0 / len(seg))
            x, y = keys[i], keys[i + 1]
            if not g.has_edge(x, y) or g[x][y]["weight"] > t:
                g.add_edge(x, y, weight=t)
    return g


def _reference_etas(net: dispatch.Network, rm: ReachModel, call_node: int, vehicle: str,
                    unit_nodes: list[int]) -> list[float]:  # fmt: skip
    """ETA of a unit standing at each drive node to a call at a walk node, by networkx."""
    walk = rm.walk
    wg = nx.Graph()
    for u, v, d in zip(walk.edge_u.tolist(), walk.edge_v.tolist(), walk.edge_len_m.tolist(),
                       strict=True):  # fmt: skip
        if not wg.has_edge(u, v) or wg[u][v]["weight"] > d:
            wg.add_edge(u, v, weight=d)
    prof = net.settings.profiles[vehicle]
    on_foot = nx.single_source_dijkstra_path_length(wg, call_node, cutoff=prof.max_walk_m)
    dg = _nx_drive(net, vehicle)
    node_osm = net.graph.arrays["node_osm"]
    out = []
    for un in unit_nodes:
        drive = nx.single_source_dijkstra_path_length(dg, ("n", un), weight="weight")
        best = math.inf
        for key, t in drive.items():
            osm = int(node_osm[key[1]]) if key[0] == "n" else key[1]
            for wn in np.flatnonzero(walk.node_osm == osm).tolist():
                if wn in on_foot:
                    best = min(best, t + on_foot[wn] / prof.walk_speed_mps)
        out.append(best)
    return out


def _alley_nodes(net: dispatch.Network, rm: ReachModel, c: int) -> list[int]:
    """Walk nodes inside ways closed to cars (motorcar=no: drive mask motorbike only) whose every
    walk edge is such a way: a call there stands in the alley, not at its mouth."""
    walk = rm.walk
    bike_only = walk.edge_drive == 8
    nodes = []
    for n in range(walk.n_nodes):
        edges = np.flatnonzero((walk.edge_u == n) | (walk.edge_v == n))
        if len(edges) == 2 and bike_only[edges].all() and not rm.drivable_edges(c)[edges].any():
            nodes.append(n)
    return nodes


def test_hand_map_matches_networkx(alleys: dispatch.Network) -> None:
    rm = alleys.reach_model
    assert rm is not None
    n4 = int(np.flatnonzero(rm.walk.node_osm == 4)[0])
    call = (float(rm.walk.node_lat[n4]), float(rm.walk.node_lon[n4]))
    starts = [int(i) for i in np.flatnonzero(alleys.node_osmid > 0)]
    for vehicle in ("ambulance", "fire_engine"):
        core = alleys.class_core(vehicle)
        nodes = [i for i in starts if core[i]]
        ref = _reference_etas(alleys, rm, n4, vehicle, nodes)
        units = [{"id": f"u{i}", "vehicle": vehicle, "lat": float(alleys.node_lat[i]),
                  "lon": float(alleys.node_lon[i]), "turnout_s": 0} for i in nodes]  # fmt: skip
        got = {u.unit: u.eta_s for u in alleys.fastest_units(call, units, k=len(units))}
        for i, r in zip(nodes, ref, strict=True):
            assert got[f"u{i}"] == pytest.approx(r, abs=1e-6)


# --- the real map ---------------------------------------------------------------------------------


def test_danang_motorcar_no_alleys(danang: dispatch.Network) -> None:
    rm = danang.reach_model
    assert rm is not None
    nodes = _alley_nodes(danang, rm, 1)
    assert len(nodes) >= 10
    rng = np.random.default_rng(7)
    calls = [int(n) for n in rng.choice(nodes, size=6, replace=False)]
    units = [
        {"id": "E1", "vehicle": "fire_engine", "lat": 16.0650, "lon": 108.2150, "turnout_s": 0},
        {"id": "E2", "vehicle": "fire_engine", "lat": 16.0560, "lon": 108.2070, "turnout_s": 0},
        {"id": "M1", "vehicle": "motorbike", "lat": 16.0610, "lon": 108.2200, "turnout_s": 0},
    ]
    walked = 0
    for n in calls:
        call = (float(rm.walk.node_lat[n]), float(rm.walk.node_lon[n]))
        got = {u.unit: u for u in danang.fastest_units(call, units, k=3)}
        assert got["M1"].reach == "drive"
        for e in ("E1", "E2"):
            assert got[e].reach in ("drive+walk", "beyond_reach")
            assert got[e].walk_m > 0 and got[e].access_point is not None
            assert got[e].eta_s == pytest.approx(got[e].drive_s + got[e].walk_s, abs=1e-9)
        walked += got["E1"].reach == "drive+walk"
    assert walked >= 4


def test_danang_alleys_match_networkx(danang: dispatch.Network) -> None:
    rm = danang.reach_model
    assert rm is not None
    nodes = _alley_nodes(danang, rm, 1)
    core = danang.class_core("fire_engine")
    rng = np.random.default_rng(3)
    starts = [int(i) for i in rng.choice(np.flatnonzero(core & (danang.node_osmid > 0)), 4)]
    units = [{"id": f"u{i}", "vehicle": "fire_engine", "lat": float(danang.node_lat[i]),
              "lon": float(danang.node_lon[i]), "turnout_s": 0} for i in starts]  # fmt: skip
    checked = 0
    for n in [int(x) for x in rng.choice(nodes, size=4, replace=False)]:
        call = (float(rm.walk.node_lat[n]), float(rm.walk.node_lon[n]))
        ref = _reference_etas(danang, rm, n, "fire_engine", starts)
        if not any(math.isfinite(r) for r in ref):  # an alley cut off on foot too
            with pytest.raises(PointError, match="beyond the reach of the fleet"):
                danang.fastest_units(call, units, k=len(units))
            continue
        got = {u.unit: u.eta_s for u in danang.fastest_units(call, units, k=len(units))}
        for i, r in zip(starts, ref, strict=True):
            assert got.get(f"u{i}", math.inf) == pytest.approx(r, abs=1e-6)
        checked += 1
    assert checked >= 2


def test_issue_example_node(danang: dispatch.Network) -> None:
    rm = danang.reach_model
    assert rm is not None
    n = int(np.flatnonzero(rm.walk.node_osm == 6048495106)[0])
    call = (float(rm.walk.node_lat[n]), float(rm.walk.node_lon[n]))
    units = [
        {"id": "A1", "vehicle": "ambulance", "lat": 16.0594, "lon": 108.2099, "turnout_s": 60},
        {"id": "E1", "vehicle": "fire_engine", "lat": 16.0650, "lon": 108.2150, "turnout_s": 80},
    ]
    got = {u.unit: u for u in danang.fastest_units(call, units, k=2)}
    # ambulances now drive onto this service stub (private roads are kept since issue 12 was
    # filed); the engine stops on the road about 105 m away and lays hose
    assert got["A1"].reach == "drive"
    e = got["E1"]
    assert e.reach == "drive+walk"
    assert 90 < e.walk_m < 120
    assert e.walk_s == pytest.approx(e.walk_m / 0.8)


# --- threaded through: matrices, decisions, CLI, GeoJSON ------------------------------------------


def test_reach_times_agree_with_fastest_units(alleys: dispatch.Network) -> None:
    units = _units(alleys)
    for call in [(0.0012, 0.001), (0.002, 0.001), (0.001, 0.004), (0.0, 0.0015)]:
        got = _by_vehicle(alleys.fastest_units(call, units, k=4))
        for v, u in got.items():
            drive, walk = alleys.reach_times([(0.0, 0.0)], [call], vehicle=v)
            assert float(drive[0, 0] + walk[0, 0]) == pytest.approx(u.eta_s, abs=1e-9)
            assert float(walk[0, 0]) == pytest.approx(u.walk_s, abs=1e-9)
    # a destination on a road: reach_times is travel_times
    drive, walk = alleys.reach_times([(0.0, 0.0)], [(0.0, 0.0025)], vehicle="fire_engine")
    tt = alleys.travel_times([(0.0, 0.0)], [(0.0, 0.0025)], vehicle="fire_engine")
    assert float(drive[0, 0]) == float(tt[0, 0]) and float(walk[0, 0]) == 0.0


def test_walk_leg_geojson_follows_the_footway(alleys: dispatch.Network) -> None:
    e = _by_vehicle(alleys.fastest_units((0.002, 0.001), _units(alleys), k=4, routes=True))
    f = e["fire_engine"].walk_geojson()
    assert f is not None and f["properties"]["leg"] == "walk"  # type: ignore[index]
    coords = f["geometry"]["coordinates"]  # type: ignore[index]
    assert coords == [[pytest.approx(0.002), pytest.approx(0.002)],
                      [pytest.approx(0.001), pytest.approx(0.002)]]  # fmt: skip
    assert e["motorbike"].walk_geojson() is None
    assert "walk_route" in e["fire_engine"].as_dict()


def test_recommend_sends_the_crew_on_foot(alleys: dispatch.Network) -> None:
    from dispatch.model import Incident

    inc = Incident("C1", 0.002, 0.001, "structure_fire", 1)
    units = [
        {"id": "E1", "vehicle": "fire_engine", "lat": 0.0, "lon": 0.0, "turnout_s": 0},
        {"id": "E2", "vehicle": "fire_engine", "lat": 0.0, "lon": 0.003, "turnout_s": 0},
        {"id": "L1", "vehicle": "ladder", "lat": 0.0, "lon": 0.0, "turnout_s": 0},
    ]
    rec = dispatch.recommend(alleys, inc, units)
    got = {a.unit: a for a in rec.plan.units}
    e1 = got["E1"]
    assert e1.walk_s == pytest.approx(B / 0.8, abs=1e-6) and e1.reach == "drive+walk"
    assert e1.eta_s == pytest.approx(4 * B / V + B / 0.8, abs=1e-6)
    assert e1.to_dict()["walk_s"] == round(B / 0.8, 1)
    roles = [f["properties"]["role"] for f in rec.geojson()["features"]]
    assert roles.count("unit_walk") == sum(1 for a in rec.plan.units if a.walk_s > 0) >= 2
    # routes end where the crew leaves the vehicle
    assert e1.route is not None and e1.route.coords[-1] == pytest.approx((0.002, 0.002))


def test_cli_nearest_says_which_class_reaches(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from dispatch.cli import main

    monkeypatch.setenv("DISPATCH_CACHE_DIR", str(tmp_path))
    fleet = tmp_path / "fleet.csv"
    fleet.write_text("id,vehicle,lat,lon,status,station,turnout_s\n"
                     "E1,fire_engine,0.0,0.0,available,x,0\nL1,ladder,0.0,0.0,available,x,0\n")  # fmt: skip
    osm = str(DATA / "reach_alleys.osm")
    rc = main(["nearest", osm, "--call", "0.0012,0.001", "--fleet", str(fleet), "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0
    (e1, l1) = out["units"]
    assert (e1["unit"], e1["reach"], e1["walk_m"]) == ("E1", "drive+walk", round(1.2 * B, 1))
    assert e1["access_point"] == [0.0, 0.001]
    assert (l1["unit"], l1["reach"]) == ("L1", "beyond_reach")
    assert out["reach"]["fire_engine"]["reach"] == "drive+walk"
    assert out["reach"]["ladder"]["reach"] == "beyond_reach"
    assert out["reach"]["motorbike"]["reach"] == "drive"
    rc = main(["nearest", osm, "--call", "0.0012,0.001", "--fleet", str(fleet)])
    text = capsys.readouterr().out
    assert rc == 0 and f"walk {1.2 * B:.0f} m" in text and "[beyond reach]" in text
    assert "ladder: beyond_reach" in text
    # a call no class reaches: one line naming why, exit 2
    rc = main(["nearest", osm, "--call", "0.003,0.00025", "--fleet", str(fleet)])
    err = capsys.readouterr().err
    assert rc == 2 and "beyond the reach of the fleet" in err and len(err.strip().splitlines()) == 1
