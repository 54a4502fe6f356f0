"""The HTTP API through the ASGI app: answers recomputed with the library, every error path."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("fastapi", reason="the service needs the 'service' extra (fastapi)")
pytest.importorskip("httpx", reason="the API tests need httpx")

from fastapi.testclient import TestClient  # noqa: E402

import dispatch  # noqa: E402
from dispatch.decide.assign import assign  # noqa: E402
from dispatch.decide.hospitals import read_hospitals  # noqa: E402
from dispatch.decide.incidents import Incident, read_fleet  # noqa: E402
from dispatch.decide.recommend import recommend  # noqa: E402
from dispatch.service.app import LIMITS, create_app  # noqa: E402
from dispatch.service.engine import Engine, disc_samples  # noqa: E402
from dispatch.service.state import Service  # noqa: E402
from dispatch.service.store import Store  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
FLEET = ROOT / "scenarios" / "danang_fleet.csv"
HOSPITALS = ROOT / "scenarios" / "danang_hospitals.csv"
SCENE = {"lat": 16.0575, "lon": 108.2140}
CALL = (16.060909, 108.220849)  # Nguyen Van Linh (README)
FLOOD = {
    "type": "Polygon",
    "coordinates": [
        [[108.2195, 16.0600], [108.2225, 16.0600], [108.2225, 16.0620], [108.2195, 16.0620],
         [108.2195, 16.0600]]
    ],
}  # fmt: skip
TOKEN = "s3cret-token-for-tests"


#: The injected clock: 03:00 UTC is 10:00 in Da Nang (off-peak: the speeds of the library's
#: ``hour=None``, so the answers below are the library's with its defaults).
OFF_PEAK = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)


def make_service(state: str | Path = ":memory:", **kw: Any) -> Service:
    engine = Engine("danang", hospitals=HOSPITALS)
    return Service(engine, Store(state), fleet=FLEET, now=kw.pop("now", lambda: OFF_PEAK), **kw)


@pytest.fixture
def service() -> Service:
    return make_service()


@pytest.fixture(params=["loop", "pool"])
def client(service: Service, request: pytest.FixtureRequest) -> Iterator[TestClient]:
    """The app with the engine owned by the event loop, and with a thread pool and a lock."""
    with TestClient(create_app(service, workers=request.param)) as c:
        yield c


def err(r: Any, status: int, code: str, *words: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"code", "message"}, body
    assert body["code"] == code, body
    assert "\n" not in body["message"]
    for w in words:
        assert w in body["message"], body["message"]
    return dict(body)


def post_incident(client: TestClient, iid: str, **kw: Any) -> Any:
    body = {"id": iid, "location": dict(SCENE), **kw}
    return client.post("/v1/incidents", json=body)


# --- answers --------------------------------------------------------------------------------


def test_health_counts_the_seeded_fleet(client: TestClient) -> None:
    h = client.get("/v1/health").json()
    assert h["status"] == "ok" and h["map"].startswith("danang")
    assert h["units"] == len(read_fleet(FLEET)) == 13
    assert h["units_by_status"] == {"available": 12, "busy": 1}
    assert h["seq"] == 1  # the fleet seeding is change 1


def test_incident_answer_is_the_librarys(client: TestClient) -> None:
    r = post_incident(client, "C1", type="cardiac_arrest")
    assert r.status_code == 201, r.text
    body = r.json()
    net = dispatch.load_network("danang")
    fleet = read_fleet(FLEET)
    lib = recommend(
        net, Incident("C1", SCENE["lat"], SCENE["lon"], "cardiac_arrest"), fleet,
        hospitals=read_hospitals(HOSPITALS), routes=False,
    )  # fmt: skip
    assert body["recommendation"] == lib.to_dict()
    assert [u["unit"] for u in body["recommendation"]["units"]] == ["MB-1", "AMB-HM1"]
    assert body["recommendation"]["hospital"]["name"] == "Hoan My General Hospital"
    # the ranked list is net.fastest_units over the free units
    records = [
        {"id": u.id, "vehicle": u.vehicle, "lat": u.lat, "lon": u.lon,
         "available": u.dispatchable, "turnout_s": u.turnout_s}
        for u in fleet
    ]  # fmt: skip
    best = net.fastest_units((SCENE["lat"], SCENE["lon"]), records, k=10)
    assert [(x["unit"], x["eta_s"]) for x in body["ranked"]] == [
        (b.unit, round(b.eta_s, 1)) for b in best
    ]
    for x in body["ranked"]:
        walk = x.get("walk_s", 0.0)  # an on-foot leg (issue 12: the scene is near an alley)
        assert x["eta_s"] == pytest.approx(x["drive_s"] + x["turnout_s"] + walk, abs=0.16)
    assert "AMB-GD2" not in {x["unit"] for x in body["ranked"]}  # busy
    assert body["incident"]["status"] == "open"
    assert body["incident"]["recommended"] == ["MB-1", "AMB-HM1"]
    assert body["location"]["resolved"] and body["location"]["samples"] == 1
    assert "routes" not in body


def test_routes_on_request_are_geojson(client: TestClient) -> None:
    body = post_incident(client, "C1", type="structure_fire").json()
    assert "routes" not in body
    body = client.post(
        "/v1/incidents?routes=true", json={"id": "C2", "type": "structure_fire", "location": SCENE}
    ).json()
    feats = body["routes"]["features"]
    lines = [f for f in feats if f["geometry"]["type"] == "LineString"]
    # the crews' on-foot legs into the alley are dashed lines of their own (issue 12)
    routes = [f for f in lines if f["properties"].get("role") != "unit_walk"]
    assert len(routes) == len(body["recommendation"]["units"]) == 4  # 2 engines, ladder, ambulance
    for f in lines:
        lon, lat = f["geometry"]["coordinates"][-1]
        assert abs(lat - SCENE["lat"]) < 0.003 and abs(lon - SCENE["lon"]) < 0.003  # at the scene


def test_dispatch_commits_units_then_they_are_not_ranked(client: TestClient) -> None:
    post_incident(client, "C1", type="cardiac_arrest")
    r = client.post("/v1/incidents/C1/dispatch")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["incident"]["status"] == "dispatched"
    assert sorted(body["incident"]["units"]) == ["AMB-HM1", "MB-1"]
    units = {u["id"]: u for u in client.get("/v1/units").json()["units"]}
    for uid in ("AMB-HM1", "MB-1"):
        assert units[uid]["status"] == "en_route"
        assert units[uid]["incident"] == "C1" and units[uid]["assigned_priority"] == 1
    nxt = post_incident(client, "C2", type="cardiac_arrest").json()
    assert not {"AMB-HM1", "MB-1"} & {x["unit"] for x in nxt["ranked"]}
    # MB-2 (148 s) does not beat AMB-HM2 (119 s): the optional first responder is not sent
    assert [u["unit"] for u in nxt["recommendation"]["units"]] == ["AMB-HM2"]
    err(client.post("/v1/incidents/C2/dispatch", json={"units": ["MB-1"]}), 409,
        "unit_not_available", "MB-1", "en_route")  # fmt: skip
    # on scene: busy; cleared: returning (sent from where they are, no turnout)
    assert client.patch("/v1/incidents/C1", json={"status": "on_scene"}).status_code == 200
    units = {u["id"]: u for u in client.get("/v1/units").json()["units"]}
    assert units["MB-1"]["status"] == "busy"
    client.patch("/v1/incidents/C1", json={"status": "cleared"})
    units = {u["id"]: u for u in client.get("/v1/units").json()["units"]}
    assert units["MB-1"]["status"] == "returning" and units["MB-1"]["incident"] is None
    c3 = post_incident(client, "C3", type="cardiac_arrest").json()
    mb1 = next(x for x in c3["ranked"] if x["unit"] == "MB-1")
    assert mb1["turnout_s"] == 0.0
    assert [i["id"] for i in client.get("/v1/incidents?status=cleared").json()["incidents"]] == [
        "C1"
    ]
    assert client.get("/v1/incidents/C3").json()["status"] == "open"


def test_avl_move_changes_the_answer(client: TestClient) -> None:
    first = post_incident(client, "C1", type="cardiac_arrest").json()["ranked"][0]["unit"]
    assert first == "MB-1"
    r = client.put("/v1/units/MB-2", json={"lat": 16.0576, "lon": 108.2139})
    assert r.status_code == 200 and r.json()["unit"]["lat"] == 16.0576
    top = post_incident(client, "C2", type="cardiac_arrest").json()["ranked"][0]
    assert top["unit"] == "MB-2" and top["drive_s"] < 15
    # batch: one change for many units
    r = client.put("/v1/units", json={"units": [
        {"id": "MB-2", "status": "out_of_service"}, {"id": "MB-1", "status": "busy"},
        {"id": "AMB-NEW", "vehicle": "ambulance", "lat": 16.0574, "lon": 108.2141}]})  # fmt: skip
    assert r.status_code == 200, r.text
    seq = r.json()["seq"]
    ranked = post_incident(client, "C3", type="cardiac_arrest").json()["ranked"]
    assert ranked[0]["unit"] == "AMB-NEW" and ranked[0]["turnout_s"] == 60.0
    assert not {"MB-1", "MB-2"} & {x["unit"] for x in ranked}
    assert client.get("/v1/health").json()["seq"] == seq + 1


def test_closure_changes_the_answer_and_lifting_restores_it(client: TestClient) -> None:
    call = {"lat": CALL[0], "lon": CALL[1]}
    before = client.post("/v1/incidents", json={"id": "A", "location": call}).json()
    r = client.post("/v1/closures", json={"geometry": FLOOD, "vehicles": ["ambulance"],
                                          "label": "flood"})  # fmt: skip
    assert r.status_code == 201, r.text
    cl = r.json()["closure"]
    assert cl["arcs"] > 0 and cl["label"] == "flood"
    during = client.post("/v1/incidents", json={"id": "B", "location": call}).json()
    assert not any(x["vehicle"] == "ambulance" for x in during["ranked"])
    assert any(x["vehicle"] == "ambulance" for x in before["ranked"])
    assert [c["id"] for c in client.get("/v1/closures").json()["closures"]] == [cl["id"]]
    assert client.delete(f"/v1/closures/{cl['id']}").status_code == 200
    after = client.post("/v1/incidents", json={"id": "C", "location": call}).json()
    assert after["ranked"] == before["ranked"]
    # a time window: closed 14-20 only
    client.post("/v1/closures", json={"geometry": FLOOD, "vehicles": ["ambulance"],
                                      "start_h": 14, "end_h": 20})  # fmt: skip
    at15 = client.post("/v1/incidents?hour=15", json={"id": "D", "location": call}).json()
    at10 = client.post("/v1/incidents?hour=10", json={"id": "E", "location": call}).json()
    assert not any(x["vehicle"] == "ambulance" for x in at15["ranked"])
    assert any(x["vehicle"] == "ambulance" for x in at10["ranked"])
    # by OSM way
    r = client.post(
        "/v1/closures", json={"osm_way_ids": [int(dispatch.load_network("danang").arc_way[0])]}
    )
    assert r.status_code == 201 and r.json()["closure"]["arcs"] >= 1


def test_uncertain_location_expected_and_worst_eta(client: TestClient, service: Service) -> None:
    r = post_incident(client, "P", type="cardiac_arrest")
    point = {x["unit"]: x for x in r.json()["ranked"]}
    loc = {**SCENE, "radius_m": 120.0, "confidence": 0.68}
    body = client.post("/v1/incidents", json={"id": "D", "type": "cardiac_arrest",
                                              "location": loc}).json()  # fmt: skip
    assert body["location"]["resolved"] and body["location"]["confidence"] == 0.68
    n = body["location"]["samples"]
    assert 10 <= n <= 17
    # independent recomputation: mean of road travel times to the disc samples, plus turnout
    net = dispatch.load_network("danang")
    pts = disc_samples(SCENE["lat"], SCENE["lon"], 120.0)
    fleet = {u.id: u for u in read_fleet(FLEET)}
    for x in body["ranked"]:
        u = fleet[x["unit"]]
        # the crew at the call: samples in an alley add an on-foot leg (issue 12)
        dr, wk = net.reach_times([u.point], pts, vehicle=u.vehicle)
        tt = (np.asarray(dr) + np.asarray(wk))[0]
        assert len(pts) == n  # every sample of this disc is on a road
        assert x["eta_s"] == pytest.approx(float(tt.mean()) + u.turnout_s, abs=0.06)
        assert x["eta_worst_s"] == pytest.approx(float(tt.max()) + u.turnout_s, abs=0.06)
        assert x["eta_best_s"] <= x["eta_s"] <= x["eta_worst_s"]
        # (the disc may rank a unit the centre's top k left out, e.g. a ladder beyond its
        # on-foot limit at the centre)
        if x["unit"] in point:
            assert x["eta_worst_s"] >= point[x["unit"]]["eta_s"] - 0.1  # the centre is in the disc
    etas = [x["eta_s"] for x in body["ranked"]]
    assert etas == sorted(etas)
    # beyond the configured radius: unresolved, ranked for the centre
    far = client.post("/v1/incidents", json={"id": "F", "type": "cardiac_arrest",
                                             "location": {**SCENE, "radius_m": 2800}}).json()  # fmt: skip
    assert far["location"]["resolved"] is False and far["location"]["samples"] == 1
    assert any("location unresolved" in w and "2800" in w for w in far["warnings"])
    assert [x["eta_s"] for x in far["ranked"]] == [
        x["eta_s"] for x in r.json()["ranked"] if x["unit"] in {y["unit"] for y in far["ranked"]}
    ]


def test_assign_route_travel_times_are_the_librarys(client: TestClient) -> None:
    net = dispatch.load_network("danang")
    incs = [
        {"id": "S1", "type": "structure_fire", "location": {"lat": 16.0575, "lon": 108.2140}},
        {"id": "S2", "type": "cardiac_arrest", "location": {"lat": 16.0500, "lon": 108.2150}},
    ]
    r = client.post("/v1/assign", json={"incidents": incs})
    assert r.status_code == 200, r.text
    lib = assign(
        net, [Incident(i["id"], i["location"]["lat"], i["location"]["lon"], i["type"]) for i in incs],
        read_fleet(FLEET), hospitals=read_hospitals(HOSPITALS), time_limit_s=5.0,
    ).to_dict()  # fmt: skip
    got = r.json()
    for key in ("objective", "greedy_objective", "covered", "required"):
        assert got[key] == lib[key]
    assert [p["units"] for p in got["incidents"]] == [p["units"] for p in lib["incidents"]]
    assert client.get("/v1/health").json()["seq"] == 1  # a plan stores nothing

    a, b = (16.0594, 108.2099), CALL
    r = client.post("/v1/route", json={"origin": {"lat": a[0], "lon": a[1]},
                                       "destination": {"lat": b[0], "lon": b[1]},
                                       "vehicle": "ladder"}).json()  # fmt: skip
    rt = net.route(a, b, vehicle="ladder")
    assert r["eta_s"] == round(rt.eta_s, 3) and r["length_m"] == round(rt.length_m, 1)
    assert r["geojson"]["geometry"]["type"] == "LineString"

    pts = [{"lat": a[0], "lon": a[1]}, {"lat": b[0], "lon": b[1]}]
    r = client.post("/v1/travel-times", json={"origins": pts, "destinations": pts,
                                              "hour": 17}).json()  # fmt: skip
    tt = net.travel_times([a, b], [a, b], hour=17)
    assert np.allclose(np.array(r["durations_s"], dtype=float), tt, atol=1e-3)


def test_console_and_network_layer_are_served(client: TestClient) -> None:
    r = client.get("/")
    assert r.status_code == 200 and "/static/vendor/leaflet/leaflet.js" in r.text
    assert "http://" not in r.text and "https://" not in r.text  # nothing from elsewhere
    js = client.get("/static/vendor/leaflet/leaflet.js")
    assert js.status_code == 200 and "Leaflet" in js.text[:500]
    assert client.get("/static/vendor/leaflet/LICENSE").status_code == 200
    net = client.get("/v1/network").json()
    kinds = {f["properties"]["kind"]: f for f in net["features"]}
    assert set(kinds) == {"roads", "narrow"}
    n_lines = sum(len(f["geometry"]["coordinates"]) for f in net["features"])
    real = dispatch.load_network("danang")
    twin = np.asarray(real.arc_twin)
    one_per_road = sum(1 for a in range(real.n_arcs) if not 0 <= twin[a] < a)
    assert 0.9 * one_per_road <= n_lines <= one_per_road  # a few arcs no class may use
    assert client.get("/openapi.json").json()["info"]["title"] == "dispatch live service"
    assert client.get("/docs").status_code == 200


# --- errors ---------------------------------------------------------------------------------


def test_bad_incidents_are_4xx_naming_the_field(client: TestClient) -> None:
    err(client.post("/v1/incidents", json={"id": "X", "location": {"lat": 16.05, "lon": "x"}}),
        422, "invalid_request", "location.lon", '"x"')  # fmt: skip
    err(client.post("/v1/incidents", json={"id": "X", "location": {"lat": 95, "lon": 108.2}}),
        422, "invalid_request", "location.lat", "95")  # fmt: skip
    err(client.post("/v1/incidents", json={"id": "X"}), 422, "invalid_request", "location")
    err(post_incident(client, "X", type="volcano"), 422, "invalid_incident", "volcano")
    err(post_incident(client, "X", priority=7), 422, "invalid_request", "priority", "7")
    err(post_incident(client, "X", colour="red"), 422, "invalid_request", "colour")
    err(
        client.post("/v1/incidents", json={"id": "X", "location": {"lat": 16.2, "lon": 108.5}}),
        422,
        "invalid_incident",
        "incident 'X'",
    )  # fmt: skip  (off the road network)
    err(
        client.post("/v1/incidents", json={"id": "", "location": SCENE}),
        422,
        "invalid_request",
        "id",
    )
    err(client.post("/v1/incidents", json={"id": "X", "location": {**SCENE, "radius_m": -5}}),
        422, "invalid_request", "radius_m")  # fmt: skip
    err(client.post("/v1/incidents", json={"id": "X", "location": {**SCENE, "confidence": 68}}),
        422, "invalid_request", "confidence")  # fmt: skip
    err(client.post("/v1/incidents?k=0", json={"id": "X", "location": SCENE}), 422,
        "invalid_request", "k")  # fmt: skip
    err(client.post("/v1/incidents", content=b"{not json", headers={"content-type": "application/json"}),
        422, "invalid_request")  # fmt: skip
    err(client.post("/v1/incidents", content=b'{"id": "X", "location": {"lat": NaN, "lon": 1}}',
                    headers={"content-type": "application/json"}), 422, "invalid_request", "lat")  # fmt: skip
    assert post_incident(client, "X").status_code == 201
    err(post_incident(client, "X"), 409, "incident_exists", "'X'")
    assert client.get("/v1/health").json()["seq"] == 2  # refused requests stored nothing


def test_bad_dispatch_and_patch(client: TestClient) -> None:
    err(client.post("/v1/incidents/NOPE/dispatch"), 404, "incident_not_found", "NOPE")
    err(client.patch("/v1/incidents/NOPE", json={"status": "cleared"}), 404, "incident_not_found")
    post_incident(client, "C1", type="cardiac_arrest")
    err(client.post("/v1/incidents/C1/dispatch", json={"units": ["GHOST"]}), 404,
        "unit_not_found", "GHOST")  # fmt: skip
    err(client.post("/v1/incidents/C1/dispatch", json={"units": ["AMB-GD2"]}), 409,
        "unit_not_available", "AMB-GD2", "busy")  # fmt: skip
    err(client.post("/v1/incidents/C1/dispatch", json={"units": []}), 422, "no_units")
    err(client.post("/v1/incidents/C1/dispatch", json={"units": ["MB-1", "MB-1"]}), 422,
        "duplicate_unit")  # fmt: skip
    # a refused dispatch changed nothing (all or none)
    err(client.post("/v1/incidents/C1/dispatch", json={"units": ["MB-1", "AMB-GD2"]}), 409,
        "unit_not_available")  # fmt: skip
    units = {u["id"]: u for u in client.get("/v1/units").json()["units"]}
    assert units["MB-1"]["status"] == "available"
    err(client.patch("/v1/incidents/C1", json={"status": "closed"}), 422, "invalid_request",
        "status", "closed")  # fmt: skip
    err(client.patch("/v1/incidents/C1", json={"type": "volcano"}), 422, "invalid_incident",
        "volcano")  # fmt: skip
    client.patch("/v1/incidents/C1", json={"status": "cleared"})
    err(client.patch("/v1/incidents/C1", json={"status": "open"}), 409, "status_backwards")
    err(client.post("/v1/incidents/C1/dispatch"), 409, "incident_cleared")


def test_bad_unit_updates(client: TestClient) -> None:
    err(client.put("/v1/units/NEW", json={"lat": 16.05, "lon": 108.21}), 404, "unit_not_found",
        "vehicle")  # fmt: skip
    err(client.put("/v1/units/MB-1", json={"status": "asleep"}), 422, "invalid_request", "asleep")
    err(client.put("/v1/units/MB-1", json={"vehicle": "tank"}), 422, "invalid_request", "tank")
    err(
        client.put("/v1/units/MB-1", json={"lat": 16.2, "lon": 108.5}), 422, "invalid_point", "MB-1"
    )  # fmt: skip  (far off the map)
    err(client.put("/v1/units/MB-1", json={"status": "en_route"}), 422, "invalid_fleet",
        "assigned_priority")  # fmt: skip
    err(client.put("/v1/units/MB-1", json={"turnout_s": -1}), 422, "invalid_request", "turnout_s")
    before = client.get("/v1/units").json()
    err(client.put("/v1/units", json={"units": [{"id": "MB-1", "lat": 16.0577, "lon": 108.2141},
                                                {"id": "MB-2", "lat": 16.2, "lon": 108.5}]}),
        422, "invalid_point", "units[1]", "MB-2")  # fmt: skip
    err(client.put("/v1/units", json={"units": [{"id": "MB-1"}, {"id": "MB-1"}]}), 422,
        "duplicate_unit", "units[1]")  # fmt: skip
    err(client.put("/v1/units", json={"units": []}), 422, "invalid_request", "units")
    too_many = [{"id": f"U{i}", "status": "busy"} for i in range(LIMITS["units_batch"] + 1)]
    err(client.put("/v1/units", json={"units": too_many}), 422, "invalid_request", "units")
    assert client.get("/v1/units").json() == before  # nothing half-applied


def test_bad_closures(client: TestClient) -> None:
    err(client.post("/v1/closures", json={}), 422, "invalid_closure", "geometry", "osm_way_ids")
    err(client.post("/v1/closures", json={"geometry": FLOOD, "osm_way_ids": [1]}), 422,
        "invalid_closure")  # fmt: skip
    err(client.post("/v1/closures", json={"geometry": {"type": "Point", "coordinates": [1, 2]}}),
        422, "invalid_request", "geometry.type")  # fmt: skip
    err(client.post("/v1/closures", json={"geometry": {"type": "Polygon", "coordinates": [[[1, 2]]]}}),
        422, "invalid_closure", "linearring")  # fmt: skip
    err(client.post("/v1/closures", json={"osm_way_ids": [1]}), 422, "invalid_closure", "[1]")
    err(client.post("/v1/closures", json={"geometry": FLOOD, "start_h": 20, "end_h": 14}), 422,
        "invalid_closure", "start_h=20")  # fmt: skip
    err(client.post("/v1/closures", json={"geometry": FLOOD, "vehicles": ["boat"]}), 422,
        "invalid_request", "boat")  # fmt: skip
    err(client.delete("/v1/closures/NOPE"), 404, "closure_not_found", "NOPE")
    assert client.post("/v1/closures", json={"id": "F1", "geometry": FLOOD}).status_code == 201
    err(client.post("/v1/closures", json={"id": "F1", "geometry": FLOOD}), 409, "closure_exists")
    ring = [
        [108.2 + 0.01 * math.cos(t / 1000), 16.05 + 0.01 * math.sin(t / 1000)] for t in range(11000)
    ]
    ring.append(ring[0])
    err(client.post("/v1/closures", json={"geometry": {"type": "Polygon", "coordinates": [ring]}}),
        413, "too_many_vertices")  # fmt: skip


def test_bad_queries(client: TestClient) -> None:
    p = {"lat": 16.0594, "lon": 108.2099}
    err(client.post("/v1/route", json={"origin": p, "destination": {"lat": 16.2, "lon": 108.5}}),
        422, "invalid_point")  # fmt: skip
    err(client.post("/v1/route", json={"origin": p, "destination": p, "vehicle": "bus"}), 422,
        "invalid_request", "bus")  # fmt: skip
    big = [p] * 400
    err(client.post("/v1/travel-times", json={"origins": big, "destinations": big}), 413,
        "matrix_too_large", "160000")  # fmt: skip
    err(client.post("/v1/travel-times", json={"origins": [], "destinations": [p]}), 422,
        "invalid_request", "origins")  # fmt: skip
    incs = [{"id": "A", "location": SCENE}, {"id": "A", "location": SCENE}]
    err(client.post("/v1/assign", json={"incidents": incs}), 422, "duplicate_incident")
    err(client.post("/v1/assign", json={"incidents": [{"id": "A", "type": "volcano",
                                                       "location": SCENE}]}),
        422, "invalid_incident", "incidents[0]", "volcano")  # fmt: skip
    err(client.get("/v1/nothing"), 404, "not_found", "/v1/nothing")
    err(client.delete("/v1/units"), 405, "method_not_allowed")
    err(client.get("/v1/incidents?status=lost"), 422, "invalid_request", "lost")
    err(client.get("/v1/incidents/NOPE"), 404, "incident_not_found")


def test_request_size_is_capped(client: TestClient) -> None:
    blob = (
        b'{"id": "X", "location": {"lat": 16.05, "lon": 108.2}, "pad": "' + b"x" * 1_100_000 + b'"}'
    )
    err(client.post("/v1/incidents", content=blob, headers={"content-type": "application/json"}),
        413, "request_too_large")  # fmt: skip

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it streams
        yield b'{"id": "X", "pad": "'
        for _ in range(20):
            yield b"x" * 100_000
        yield b'"}'

    err(client.post("/v1/incidents", content=chunks(), headers={"content-type": "application/json"}),
        413, "request_too_large")  # fmt: skip


def test_token_guards_writes_only(service: Service) -> None:
    with TestClient(create_app(service, token=TOKEN)) as c:
        err(post_incident(c, "X"), 401, "unauthorized", "Bearer")
        err(c.post("/v1/incidents", json={"id": "X", "location": SCENE},
                   headers={"Authorization": "Bearer wrong"}), 401, "unauthorized")  # fmt: skip
        err(c.put("/v1/units/MB-1", json={"status": "busy"}), 401, "unauthorized")
        err(c.post("/v1/closures", json={"geometry": FLOOD}), 401, "unauthorized")
        err(c.delete("/v1/closures/X"), 401, "unauthorized")
        auth = {"Authorization": f"Bearer {TOKEN}"}
        assert (
            c.post("/v1/incidents", json={"id": "X", "location": SCENE}, headers=auth).status_code
            == 201
        )
        assert c.get("/v1/units").status_code == 200  # reads need no token
        assert c.get("/v1/health").json()["seq"] == 2


def test_no_cors_headers(client: TestClient) -> None:
    r = client.options("/v1/units", headers={"Origin": "http://evil.example",
                                             "Access-Control-Request-Method": "PUT"})  # fmt: skip
    assert "access-control-allow-origin" not in {k.lower() for k in r.headers}


# --- state file -----------------------------------------------------------------------------


def test_restart_restores_state_and_log_replays_to_it(tmp_path: Path) -> None:
    db = tmp_path / "state.sqlite"
    s1 = make_service(db)
    with TestClient(create_app(s1)) as c:
        post_incident(c, "C1", type="cardiac_arrest")
        c.post("/v1/incidents/C1/dispatch")
        c.put("/v1/units/ENG-B1", json={"lat": 16.0500, "lon": 108.2100})
        cid = c.post("/v1/closures", json={"geometry": FLOOD, "vehicles": ["ambulance"]}).json()
        c.post("/v1/closures", json={"id": "gone", "geometry": FLOOD})
        c.delete("/v1/closures/gone")
        answer = c.post(
            "/v1/incidents", json={"id": "Q", "location": {"lat": CALL[0], "lon": CALL[1]}}
        ).json()
        units, incs = c.get("/v1/units").json(), c.get("/v1/incidents").json()
        seq = c.get("/v1/health").json()["seq"]
    s1.store.close()
    s2 = make_service(db)  # the fleet file does not overwrite a stored fleet
    with TestClient(create_app(s2)) as c:
        assert c.get("/v1/units").json() == units
        assert c.get("/v1/incidents").json() == incs
        assert c.get("/v1/health").json()["seq"] == seq
        assert [x["id"] for x in c.get("/v1/closures").json()["closures"]] == [cid["closure"]["id"]]
        again = c.post(
            "/v1/incidents", json={"id": "Q2", "location": {"lat": CALL[0], "lon": CALL[1]}}
        ).json()
        assert again["ranked"] == answer["ranked"]  # the closure is back in force
    assert s2.store.replay() == s2.store.load()
    kinds = [k for _, _, k, _ in s2.store.log()]
    assert kinds[:4] == ["fleet_loaded", "incident", "dispatch", "unit"]
    assert "closure_lifted" in kinds


def test_state_of_another_map_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "state.sqlite"
    Store(db).set_meta("map", "monaco.osm.bz2")
    with pytest.raises(dispatch.DispatchError, match="belongs to map 'monaco.osm.bz2'"):
        make_service(db)


def test_ranked_only_answer_without_plan(client: TestClient) -> None:
    full = post_incident(client, "A", type="cardiac_arrest").json()
    r = client.post(
        "/v1/incidents?plan=false&routes=true&k=3",
        json={"id": "B", "type": "cardiac_arrest", "location": SCENE},
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["recommendation"] is None and "routes" not in body
    assert [x["unit"] for x in body["ranked"]] == [x["unit"] for x in full["ranked"][:3]]
    for x in body["ranked"]:
        assert x["route"]["geometry"]["type"] == "LineString"
        assert x["route"]["properties"]["eta_s"] == pytest.approx(x["drive_s"], abs=0.06)
    assert body["incident"]["recommended"] == ["MB-1"]  # the fastest unit
    err(client.post("/v1/incidents?plan=false", json={"id": "C", "location": {"lat": 16.2, "lon": 108.5}}),
        422, "invalid_incident", "incident 'C'")  # fmt: skip


def _stages(r: Any) -> dict[str, float]:
    out = {}
    for part in r.headers["server-timing"].split(", "):
        name, dur = part.split(";dur=")
        out[name] = float(dur)
    assert next(iter(out)) == "app"  # the whole time first
    return out


def test_server_timing_header(client: TestClient) -> None:
    # a read: no stage of its own (a garbage collection may happen to run in it)
    assert set(_stages(client.get("/v1/health"))) - {"gc"} == {"app"}
    # an incident: waited for a thread and the lane, computed, committed, encoded, made durable
    st = _stages(post_incident(client, "T1"))
    assert {"app", "queue", "lane", "compute", "commit", "encode", "resume", "durable"} <= set(st)
    assert all(v >= 0.0 for v in st.values())
    assert st["app"] >= st["compute"] + st["commit"] + st["durable"]
    st = _stages(client.put("/v1/units/MB-1", json={"status": "busy"}))
    assert {"app", "commit", "durable"} <= set(st) and "compute" not in st


def test_health_reports_gc_pauses(client: TestClient) -> None:
    gc_doc = client.get("/v1/health").json()["gc"]
    assert len(gc_doc["collections"]) == 3 and len(gc_doc["max_ms"]) == 3
    assert gc_doc["frozen_objects"] >= 0


@pytest.mark.parametrize("workers", ["loop", "pool"])
def test_writes_are_acknowledged_after_their_fsync(tmp_path: Path, workers: str) -> None:
    service = make_service(tmp_path / "state.sqlite")  # durability "full" by default
    with TestClient(create_app(service, workers=workers)) as c:
        seq = post_incident(c, "C1").json()["seq"]
        assert service.store._synced >= seq
        seq = c.put("/v1/units/MB-1", json={"status": "busy"}).json()["seq"]
        assert service.store._synced >= seq
    assert service.store.fsyncs >= 2


def test_warm_up_builds_every_band_and_answers_the_same(service: Service) -> None:
    """Start-up builds the hierarchy and the customization of every class in every speed band
    (so a request never does); answers are the same as without it."""
    net = service.engine.net
    hour = 7.0  # the morning rush band
    before = service.engine.recommend(
        Incident("W1", 16.0575, 108.2140, "structure_fire"), service.fleet(), hour=hour
    )
    done = service.warm()
    hours = done["hours"]
    assert None in hours and any(net.engine.settings.band_index(h) < 0 for h in hours if h)
    assert {net.engine.settings.band_index(h) for h in hours if h is not None} >= {0, 1, 2}
    assert done["answers"] > 0
    for h in hours:
        for v in ("ambulance", "fire_engine", "ladder", "motorbike"):
            assert net.engine.has_metric(net.engine.weights(v, h, net.closure_set))
    after = service.engine.recommend(
        Incident("W1", 16.0575, 108.2140, "structure_fire"), service.fleet(), hour=hour
    )
    assert after == before
    assert service.seq == 1  # nothing stored
