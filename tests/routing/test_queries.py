"""Exactness of travel times, fastest units and routes: by hand, and against networkx on real maps."""

from __future__ import annotations

import math
import warnings

import networkx as nx
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dispatch
from dispatch.errors import FleetError, PointError
from tests.roads.test_network import SEG_M

# --- hand-made square (see conftest): A(1)=(0,0) B(2)=(0,.001) C(3)=(.001,.001) D(4)=(.001,0) E(5)=(0,.002)
AB = SEG_M / 10.0  # residential 36 km/h
BC = SEG_M / 20.0  # primary one-way 72 km/h
CD = SEG_M / 5.0  # alley 18 km/h
DA = SEG_M / 10.0  # 2 m wide: motorbikes only


def test_travel_times_by_hand(square: dispatch.Network) -> None:
    A, B, C, D, E = (0.0, 0.0), (0.0, 0.001), (0.001, 0.001), (0.001, 0.0), (0.0, 0.002)
    tt = square.travel_times([A, B], [B, C, D, E], vehicle="ambulance")
    assert tt[0] == pytest.approx([AB, AB + BC, AB + BC + CD, 2 * AB])
    assert tt[1] == pytest.approx([0.0, BC, BC + CD, AB])
    # one-way B->C and D-A too narrow: an ambulance can reach C and D but not leave them, so they
    # are destinations but never origins (an origin there snaps to a road it can leave by)
    with pytest.raises(PointError, match="farther than 50 m"):
        square.snap(C, vehicle="ambulance", role="from", tolerance_m=50)
    assert square.snap(C, vehicle="ambulance", role="to").dist_m[0] < 1e-6
    moto = square.travel_times(C, B, vehicle="motorbike")
    assert moto[0, 0] == pytest.approx(CD + DA + AB)


def test_mid_edge_positions_by_hand(square: dispatch.Network) -> None:
    mid_ab = (0.0, 0.0005)  # halfway along A-B (two-way)
    mid_bc = (0.0005, 0.001)  # halfway along B->C (one-way)
    tt = square.travel_times([mid_ab], [mid_ab, mid_bc, (0.0, 0.0)], vehicle="ambulance")
    assert tt[0, 0] == 0.0
    assert tt[0, 1] == pytest.approx(AB / 2 + BC / 2)  # drive to B, then half of B->C
    assert tt[0, 2] == pytest.approx(AB / 2)  # a two-way street: turn towards A
    moto = square.travel_times(mid_bc, mid_ab, vehicle="motorbike")
    assert moto[0, 0] == pytest.approx(BC / 2 + CD + DA + AB / 2)  # one-way: around the block
    # same one-way edge: ahead is reachable directly, behind is not
    ahead = square.travel_times(mid_bc, (0.00075, 0.001), vehicle="motorbike")
    behind = square.travel_times(mid_bc, (0.00025, 0.001), vehicle="motorbike")
    assert ahead[0, 0] == pytest.approx(BC / 4)
    assert behind[0, 0] == pytest.approx(BC / 2 + CD + DA + AB + BC / 4)  # around the block
    # same two-way edge, both directions
    a = square.travel_times((0.0, 0.00025), (0.0, 0.00075), vehicle="ambulance")[0, 0]
    b = square.travel_times((0.0, 0.00075), (0.0, 0.00025), vehicle="ambulance")[0, 0]
    assert a == pytest.approx(AB / 2) and b == pytest.approx(AB / 2)


def test_asymmetry_from_one_way(square: dispatch.Network) -> None:
    B, C = (0.0, 0.001), (0.001, 0.001)
    to_c = square.travel_times(B, C, vehicle="motorbike")[0, 0]
    to_b = square.travel_times(C, B, vehicle="motorbike")[0, 0]
    assert to_c == pytest.approx(BC) and to_b == pytest.approx(CD + DA + AB)


def test_closed_bridge_and_windows(square_map, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import HAND_SETTINGS

    net = dispatch.load_network(square_map, settings=HAND_SETTINGS, cache_dir=tmp_path)
    A, E = (0.0, 0.0), (0.0, 0.002)
    assert net.travel_times(A, E)[0, 0] == pytest.approx(2 * AB)
    cid = net.close_ways([14], start_h=14, end_h=20, label="flooded B-E")
    assert net.travel_times(A, E, hour=15)[0, 0] == math.inf
    assert net.travel_times(A, E, hour=13.9)[0, 0] == pytest.approx(2 * AB)
    assert net.travel_times(A, E, hour=20)[0, 0] == pytest.approx(2 * AB)
    assert net.travel_times(A, E)[0, 0] == math.inf  # hour=None: every closure applies
    units = [{"id": "U1", "vehicle": "ambulance", "lat": 0.0, "lon": 0.0}]
    assert net.fastest_units(E, units, hour=15) == []  # unreachable: an empty answer, no crash
    net.reopen(cid)
    assert net.travel_times(A, E)[0, 0] == pytest.approx(2 * AB)
    # a class-specific closure: fire engines cannot ford, motorbikes can
    net.close_polygon({"type": "Polygon", "coordinates": [[[0.0014, -0.0001], [0.0016, -0.0001],
                       [0.0016, 0.0001], [0.0014, 0.0001], [0.0014, -0.0001]]]},
                      vehicles=["fire_engine"])  # fmt: skip
    assert net.travel_times(A, E, vehicle="fire_engine")[0, 0] == math.inf
    assert net.travel_times(A, E, vehicle="motorbike")[0, 0] == pytest.approx(2 * AB)
    net.reopen_all()
    assert net.closures == ()


def test_fastest_units_by_hand(square: dispatch.Network) -> None:
    units = [
        {
            "id": "far",
            "vehicle": "ambulance",
            "lat": 0.0,
            "lon": 0.002,
            "turnout_s": 0.0,
        },  # E: 2 AB from A... to B: AB
        {"id": "near", "vehicle": "ambulance", "lat": 0.0, "lon": 0.0005, "turnout_s": 1.0},
        {"id": "busy", "vehicle": "ambulance", "lat": 0.0, "lon": 0.001, "available": False},
        {"id": "bike", "vehicle": "motorbike", "lat": 0.001, "lon": 0.0, "turnout_s": 0.0},
    ]
    call = (0.0, 0.001)  # at B
    best = square.fastest_units(call, units, k=10)
    assert [u.unit for u in best] == ["near", "far", "bike"]
    assert best[0].eta_s == pytest.approx(1.0 + AB / 2) and best[0].drive_s == pytest.approx(AB / 2)
    assert best[1].eta_s == pytest.approx(AB)
    assert best[2].eta_s == pytest.approx(DA + AB)
    # a unit without turnout_s takes its class's default (dispatch.model: 60 s EMS, 80 s fire)
    units[0] = {k: v for k, v in units[0].items() if k != "turnout_s"}
    units.append({"id": "engine", "vehicle": "fire_engine", "lat": 0.0, "lon": 0.002})
    by_id = {u.unit: u for u in square.fastest_units(call, units, k=10)}
    assert by_id["far"].turnout_s == 60.0 and by_id["far"].eta_s == pytest.approx(60.0 + AB)
    assert by_id["engine"].turnout_s == 80.0
    one = square.fastest_units(call, units, k=1, routes=True)
    assert len(one) == 1 and one[0].route is not None
    assert one[0].route.eta_s == pytest.approx(AB / 2)
    assert one[0].route.length_m == pytest.approx(SEG_M / 2, rel=1e-6)


def test_fastest_units_ties_broken_by_id(square: dispatch.Network) -> None:
    units = [{"id": i, "vehicle": "ambulance", "lat": 0.0, "lon": 0.0} for i in ("b", "a", "c")]
    assert [u.unit for u in square.fastest_units((0.0, 0.001), units, k=2)] == ["a", "b"]


def test_fleet_errors(square: dispatch.Network) -> None:
    call = (0.0, 0.001)
    with pytest.raises(FleetError, match="empty"):
        square.fastest_units(call, [])
    with pytest.raises(FleetError, match="no available unit"):
        square.fastest_units(
            call, [{"id": 1, "vehicle": "ambulance", "lat": 0, "lon": 0, "available": False}]
        )
    with pytest.raises(FleetError, match="unknown vehicle class 'tank'"):
        square.fastest_units(call, [{"id": 1, "vehicle": "tank", "lat": 0, "lon": 0}])
    with pytest.raises(FleetError, match="duplicate unit id '1'"):
        square.fastest_units(call, [{"id": 1, "vehicle": "ambulance", "lat": 0, "lon": 0}] * 2)
    with pytest.raises(FleetError, match="unit 'x'.*farther than"):
        square.fastest_units(call, [{"id": "x", "vehicle": "ambulance", "lat": 0.05, "lon": 0.05}])
    with pytest.raises(PointError, match="call"):
        square.fastest_units((0.05, 0.05), [{"id": 1, "vehicle": "ambulance", "lat": 0, "lon": 0}])


def test_route_geometry_and_times(danang: dispatch.Network) -> None:
    r = danang.route((16.060909, 108.220849), (16.050086, 108.216239), vehicle="fire_engine")
    assert math.isfinite(r.eta_s) and r.length_m > 500
    assert r.times_s[0] == 0.0 and r.times_s[-1] == r.eta_s
    assert all(b >= a for a, b in zip(r.times_s, r.times_s[1:], strict=False))
    assert len(r.coords) == len(r.times_s)
    g = r.geojson()
    assert (
        g["geometry"]["type"] == "LineString" and g["geometry"]["coordinates"][0][0] > 100
    )  # lon first
    # the geometry's length agrees with the reported length within a metre per piece
    from dispatch.geo import haversine_m

    c = np.array(r.coords)
    geo_len = float(np.sum(haversine_m(c[:-1, 0], c[:-1, 1], c[1:, 0], c[1:, 1])))
    assert geo_len == pytest.approx(r.length_m, rel=0.01)


# --- independent recomputation on the real maps -------------------------------------------------


def _reference(net: dispatch.Network, vehicle: str) -> tuple[nx.DiGraph, dict[int, float]]:
    """networkx DiGraph from the exported edge table (what `dispatch map export` writes)."""
    tab = net.edge_table(vehicle)
    g = nx.DiGraph()
    for u, v, t in zip(
        tab["u"].tolist(), tab["v"].tolist(), tab["travel_time_s"].tolist(), strict=True
    ):
        if not g.has_edge(u, v) or g[u][v]["w"] > t:
            g.add_edge(u, v, w=t)
    return g, dict(zip(tab["arc"].tolist(), tab["travel_time_s"].tolist(), strict=True))


def _expected(net, g, w, o, d) -> float:  # type: ignore[no-untyped-def]
    """Partial-edge arithmetic by hand: leave o's arc either way, reach d's arc either way."""
    osm = net.node_osmid
    tail, head, twin = net.arc_tail, net.arc_head, net.arc_twin

    def wt(a: int) -> float:
        return w.get(a, math.inf) if a >= 0 else math.inf

    (oa, ot), (da, dt) = o, d
    leave = [(osm[head[oa]], (1 - ot) * wt(oa) if ot < 1 else 0.0)]
    if ot > 0 and twin[oa] >= 0:  # the twin's own head (at an expanded junction: not tail[oa])
        leave.append((osm[head[twin[oa]]], ot * wt(twin[oa])))
    if ot == 0:
        leave.append((osm[tail[oa]], 0.0))
    reach = [(osm[tail[da]], dt * wt(da) if dt > 0 else 0.0)]
    if dt < 1 and twin[da] >= 0:  # from the twin's own tail
        reach.append((osm[tail[twin[da]]], (1 - dt) * wt(twin[da])))
    if dt == 1:
        reach.append((osm[head[da]], 0.0))
    best = math.inf
    for x, cx in leave:
        if not math.isfinite(cx) or x not in g:
            continue
        dist = nx.single_source_dijkstra_path_length(g, x, weight="w")
        for y, cy in reach:
            if y in dist:
                best = min(best, cx + dist[y] + cy)
    if oa == da:
        if dt >= ot:
            best = min(best, (dt - ot) * wt(oa))
        if dt <= ot and twin[oa] >= 0:
            best = min(best, (ot - dt) * wt(twin[oa]))
    return best


@pytest.mark.parametrize("map_name", ["danang", "campo_grande"])
@pytest.mark.parametrize("vehicle", ["ambulance", "fire_engine"])
def test_travel_times_match_networkx_on_real_maps(map_name: str, vehicle: str) -> None:
    net = dispatch.load_network(map_name)
    g, w = _reference(net, vehicle)
    rng = np.random.default_rng(7)
    arcs = np.flatnonzero(np.isfinite(net.weights(vehicle)) & ~net.arc_contraflow)
    pick = rng.choice(arcs, 8)
    from dispatch.roads.snapping import position

    lat, lon = position(net.graph, net.engine.geom_cum_m(), pick, rng.uniform(0, 1, 8))
    pts = np.stack([lat, lon], axis=1)
    tt = net.travel_times(pts[:4], pts[4:], vehicle=vehicle)
    so = net.snap(pts[:4], vehicle=vehicle, role="from")  # origins snap where a unit can leave
    sd = net.snap(pts[4:], vehicle=vehicle, role="to")  # destinations where a call can be reached
    for i in range(4):
        for j in range(4):
            exp = _expected(
                net, g, w, (int(so.arc[i]), float(so.t[i])), (int(sd.arc[j]), float(sd.t[j]))
            )
            assert tt[i, j] == pytest.approx(exp, rel=1e-9, abs=1e-9)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.data())
def test_property_random_points_danang(danang: dispatch.Network, data: st.DataObject) -> None:
    g, w = (
        _REF_DANANG
        if _REF_DANANG
        else _REF_DANANG.extend(_reference(danang, "ambulance")) or _REF_DANANG
    )
    lat0, lon0, lat1, lon1 = 16.048, 108.206, 16.064, 108.222  # the dense core of the extract
    pts = [(data.draw(st.floats(lat0, lat1)), data.draw(st.floats(lon0, lon1))) for _ in range(2)]
    so = danang.snap(pts[0], role="from", tolerance_m=1000)  # where a unit there would start
    sd = danang.snap(pts[1], role="to", tolerance_m=1000)  # where a call there is reached
    got = danang.travel_times([(so.lat[0], so.lon[0])], [(sd.lat[0], sd.lon[0])])[0, 0]
    # re-snapping the snapped points must land on the same positions
    so2 = danang.snap((so.lat[0], so.lon[0]), role="from")
    sd2 = danang.snap((sd.lat[0], sd.lon[0]), role="to")
    exp = _expected(
        danang, g, w, (int(so2.arc[0]), float(so2.t[0])), (int(sd2.arc[0]), float(sd2.t[0]))
    )
    assert got == pytest.approx(exp, rel=1e-9, abs=1e-9)


_REF_DANANG: list = []  # type: ignore[type-arg]


def test_fastest_units_agree_with_brute_force(campo: dispatch.Network) -> None:
    rng = np.random.default_rng(3)
    nodes = rng.choice(campo.n_nodes, 60, replace=False)
    classes = ["ambulance", "fire_engine", "motorbike"]
    units = [{"id": f"U{i:02d}", "vehicle": classes[i % 3], "lat": float(campo.node_lat[n]),
              "lon": float(campo.node_lon[n]), "turnout_s": float(rng.integers(0, 90))}
             for i, n in enumerate(nodes[:50])]  # fmt: skip
    # keep only units that snap for their class
    ok = []
    for u in units:
        try:
            campo.snap((u["lat"], u["lon"]), vehicle=u["vehicle"])
            ok.append(u)
        except PointError:
            pass
    calls = np.stack([campo.node_lat[nodes[50:]], campo.node_lon[nodes[50:]]], axis=1)
    for call in calls:
        try:
            got = campo.fastest_units(call, ok, k=3)
        except PointError:
            continue
        etas = []
        for u in ok:
            try:
                t = campo.travel_times((u["lat"], u["lon"]), call, vehicle=u["vehicle"])[0, 0]
            except PointError:
                continue
            if math.isfinite(t):
                etas.append((t + u["turnout_s"], u["id"]))
        etas.sort()
        assert [u.unit for u in got] == [e[1] for e in etas[:3]]
        assert [u.eta_s for u in got] == pytest.approx([e[0] for e in etas[:3]], rel=1e-9)


def test_points_exactly_at_nodes_match_networkx(danang: dispatch.Network) -> None:
    """A point at a node is at that node (regression: t = 1 - 1e-16 on a one-way arc was unreachable)."""
    g, _ = _reference(danang, "ambulance")
    # nodes of expanded junctions (negative keys) share one place: a point there is at one of them
    core = np.flatnonzero(danang.class_core("ambulance") & (danang.node_osmid > 0))
    rng = np.random.default_rng(0)
    u, c = rng.choice(core, 10), rng.choice(core, 60)
    pts = lambda idx: np.stack([danang.node_lat[idx], danang.node_lon[idx]], axis=1)  # noqa: E731
    tt = danang.travel_times(pts(u), pts(c))
    for i in range(len(u)):
        dist = nx.single_source_dijkstra_path_length(g, int(danang.node_osmid[u[i]]), weight="w")
        exp = [dist[int(danang.node_osmid[j])] for j in c]
        assert tt[i] == pytest.approx(exp, rel=1e-9, abs=1e-9)


def test_fastest_units_accepts_a_dataframe(danang: dispatch.Network) -> None:
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame(
        {"id": ["A1", "A2"], "vehicle": ["ambulance", "motorbike"], "lat": [16.0594, 16.0548],
         "lon": [108.2099, 108.2072], "available": [True, True], "turnout_s": [60.0, 30.0]}
    )  # fmt: skip
    got = danang.fastest_units((16.060909, 108.220849), df, k=2)
    ref = danang.fastest_units((16.060909, 108.220849), df.to_dict("records"), k=2)
    assert [(u.unit, u.eta_s) for u in got] == [(u.unit, u.eta_s) for u in ref]
    assert {u.unit for u in got} == {"A1", "A2"}


def test_moving_units_update_the_fleet_in_place(campo: dispatch.Network) -> None:
    """A unit that moves (AVL update, simulation) is snapped again; answers equal a fresh network's."""
    core = np.flatnonzero(campo.class_core("ambulance"))
    rng = np.random.default_rng(21)
    start, moves, calls = rng.choice(core, 30), rng.choice(core, 40), rng.choice(core, 40)
    units = [{"id": f"U{i}", "vehicle": "ambulance", "lat": float(campo.node_lat[n]),
              "lon": float(campo.node_lon[n]), "turnout_s": 10.0 * (i % 4)} for i, n in enumerate(start)]  # fmt: skip
    fresh = dispatch.load_network("campo_grande")
    for i in range(40):
        j = i % 30
        mid = 0.5  # halfway between two nodes: a mid-arc position after snapping
        units[j] = {**units[j], "lat": float(campo.node_lat[moves[i]]) * mid + units[j]["lat"] * (1 - mid),
                    "lon": float(campo.node_lon[moves[i]]) * mid + units[j]["lon"] * (1 - mid)}  # fmt: skip
        call = (float(campo.node_lat[calls[i]]), float(campo.node_lon[calls[i]]))
        try:
            got = campo.fastest_units(call, units, k=3)
        except (
            FleetError
        ):  # a midpoint off every road: the fleet is refused whole, the same for both
            with pytest.raises(FleetError):
                fresh.engine.last_fleet = None
                fresh.fastest_units(call, units, k=3)
            units[j] = {
                **units[j],
                "lat": float(campo.node_lat[moves[i]]),
                "lon": float(campo.node_lon[moves[i]]),
            }
            continue
        fresh.engine.last_fleet = None  # no incremental update on this side
        ref = fresh.fastest_units(call, units, k=3)
        assert [(u.unit, u.eta_s) for u in got] == [
            (u.unit, pytest.approx(u.eta_s, rel=1e-12)) for u in ref
        ]


def test_prepared_fleet_handle(danang: dispatch.Network) -> None:
    """A Fleet kept by a dispatch system answers like the list it came from, and updates in place."""
    units = [{"id": "A1", "vehicle": "ambulance", "lat": 16.0594, "lon": 108.2099},
             {"id": "A2", "vehicle": "ambulance", "lat": 16.0548, "lon": 108.2072},
             {"id": "E1", "vehicle": "fire_engine", "lat": 16.0650, "lon": 108.2150, "turnout_s": 80.0}]  # fmt: skip
    fleet = danang.fleet(units)
    call = (16.060909, 108.220849)
    assert [(u.unit, u.eta_s) for u in danang.fastest_units(call, fleet, k=3)] == [
        (u.unit, u.eta_s) for u in danang.fastest_units(call, units, k=3)
    ]
    fleet.move("E1", 16.0606, 108.2205)
    moved = [dict(u) for u in units]
    moved[2].update(lat=16.0606, lon=108.2205)
    assert [(u.unit, u.eta_s) for u in danang.fastest_units(call, fleet, k=3)] == [
        (u.unit, pytest.approx(u.eta_s, rel=1e-12)) for u in danang.fastest_units(call, moved, k=3)
    ]
    fleet.set_available("E1", False)
    assert "E1" not in [u.unit for u in danang.fastest_units(call, fleet, k=3)]
    assert fleet.units[2]["available"] is False and len(fleet) == 3
    with pytest.raises(FleetError, match="no unit 'Z9'"):
        fleet.move("Z9", 16.06, 108.22)
    with pytest.raises(FleetError, match="turnout_s"):
        fleet._update("A1", turnout_s=-5)
    other = dispatch.load_network("monaco")
    with pytest.raises(FleetError, match="another network"):
        other.fastest_units((43.73, 7.42), fleet)


def test_route_from_a_junction_beside_a_closed_road_has_no_nan(square: dispatch.Network) -> None:
    """A unit standing at the end of a closed road drives none of it: no ``0 * inf`` NaN."""
    from dispatch.routing.queries import route_between

    square.close_ways([10])  # A-B closed; the unit stands at B, at the end (t = 1) of arc A->B
    w = square.weights("ambulance")
    ab = int(np.flatnonzero((square.arc_way == 10) & (square.arc_tail == 0))[0])
    e_arc = int(np.flatnonzero(square.arc_way == 14)[0])
    e_t = 1.0 if square.arc_head[e_arc] == 4 else 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a RuntimeWarning (inf * 0) fails the test
        r = route_between(square.engine, w, ab, 1.0, e_arc, e_t, "ambulance")
        z = route_between(square.engine, w, ab, 1.0, ab, 1.0, "ambulance")
    assert r.eta_s == pytest.approx(AB) and not any(math.isnan(t) for t in r.times_s)
    assert r.times_s[0] == 0.0 and r.times_s[-1] == r.eta_s and len(r.coords) == len(r.times_s)
    assert r.coords[0] == pytest.approx((0.0, 0.001)) and r.length_m == pytest.approx(SEG_M)
    # a route of zero length (already there) is one point at time 0
    assert (z.eta_s, z.times_s, len(z.coords)) == (0.0, [0.0], 1)


def test_routes_from_node_positions_beside_closed_roads_on_a_real_map(
    campo: dispatch.Network,
) -> None:
    """Units at nodes (snapped to an arc's end), that arc closed: every route's times are numbers."""
    net = campo.with_closures(dispatch.ClosureSet())
    core = np.flatnonzero(net.class_core("ambulance"))
    rng = np.random.default_rng(13)
    nodes = rng.choice(core, 200, replace=False)
    pts = np.stack([net.node_lat[nodes], net.node_lon[nodes]], axis=1)
    s = net.snap(pts, role="from")
    at_end = np.flatnonzero(s.t == 1.0)[:15]
    assert len(at_end) >= 5
    net.close_arcs(s.arc[at_end])
    units = [{"id": f"U{i}", "vehicle": "ambulance", "lat": float(pts[i, 0]),
              "lon": float(pts[i, 1])} for i in at_end]  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for dest in pts[-10:]:
            for u in net.fastest_units(tuple(dest), units, k=3, routes=True):
                assert u.route is not None and not any(math.isnan(t) for t in u.route.times_s)
                assert u.route.times_s[-1] == pytest.approx(u.drive_s, rel=1e-9)
