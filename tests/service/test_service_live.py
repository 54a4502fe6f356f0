"""The live side of the service: the priority path of unit updates, the clock, the change stream,
the coverage-hole warning. Answers are recomputed with the library."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="the service needs the 'service' extra (fastapi)")
pytest.importorskip("httpx", reason="the API tests need httpx")

from fastapi.testclient import TestClient  # noqa: E402

import dispatch  # noqa: E402
from dispatch.decide.hospitals import read_hospitals  # noqa: E402
from dispatch.decide.incidents import Incident, read_fleet  # noqa: E402
from dispatch.decide.recommend import recommend  # noqa: E402
from dispatch.service.app import create_app  # noqa: E402
from dispatch.service.clock import Clock, check_time_zone  # noqa: E402
from dispatch.service.engine import Engine  # noqa: E402
from dispatch.service.state import Service  # noqa: E402
from dispatch.service.store import Store  # noqa: E402
from tests.service.conftest import FLEET, HOSPITALS  # noqa: E402

SCENE = {"lat": 16.0575, "lon": 108.2140}
NEAR_SCENE = {"lat": 16.0576, "lon": 108.2139}
CALL = (16.060909, 108.220849)
FLOOD = {
    "type": "Polygon",
    "coordinates": [
        [[108.2195, 16.0600], [108.2225, 16.0600], [108.2225, 16.0620], [108.2195, 16.0620],
         [108.2195, 16.0600]]
    ],
}  # fmt: skip
#: 03:00 UTC is 10:00 in Da Nang (off-peak); 10:00 UTC is 17:00 (the evening rush band).
OFF_PEAK = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)
RUSH = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)
#: Longest a test waits for a thread it started (a deadlock breaker, not a time measured).
JOIN_S = 60.0


def make_service(state: str | Path = ":memory:", *, coverage: bool = False, **kw: Any) -> Service:
    engine = Engine("danang", hospitals=HOSPITALS, coverage=coverage)
    return Service(engine, Store(state), fleet=FLEET, now=kw.pop("now", lambda: OFF_PEAK), **kw)


def library_records(units: list[Any]) -> list[dict[str, Any]]:
    return [
        {"id": u.id, "vehicle": u.vehicle, "lat": u.lat, "lon": u.lon,
         "available": u.dispatchable, "turnout_s": u.effective_turnout_s}
        for u in units
    ]  # fmt: skip


# --- the priority path ------------------------------------------------------------------------


@pytest.mark.parametrize("workers", ["loop", "pool"])
def test_unit_updates_do_not_wait_behind_a_recommendation(workers: str) -> None:
    """A recommendation held inside the engine (a hook that blocks until released) does not hold
    up unit updates, batch updates, dispatches or reads; the held answer is for its snapshot."""
    service = make_service()
    entered, release = threading.Event(), threading.Event()
    real = service.engine.recommend

    def held(*a: Any, **k: Any) -> Any:
        entered.set()
        release.wait(JOIN_S)
        return real(*a, **k)

    service.engine.recommend = held  # type: ignore[method-assign]
    with TestClient(create_app(service, workers=workers)) as c:
        got: dict[str, Any] = {}
        slow = threading.Thread(
            target=lambda: got.setdefault(
                "held", c.post("/v1/incidents", json={"id": "H", "location": SCENE})
            )
        )
        slow.start()
        assert entered.wait(JOIN_S), "the recommendation never started"

        def priority() -> None:
            got["one"] = c.put("/v1/units/MB-2", json=NEAR_SCENE)
            got["batch"] = c.put("/v1/units", json={"units": [{"id": "MB-1", "status": "busy"}]})
            got["same_id"] = c.post("/v1/incidents", json={"id": "H", "location": SCENE})
            got["units"] = c.get("/v1/units")

        fast = threading.Thread(target=priority)
        fast.start()
        fast.join(JOIN_S)
        done_while_held = not fast.is_alive()
        release.set()
        fast.join(JOIN_S)
        slow.join(JOIN_S)
        after = c.post("/v1/incidents", json={"id": "N", "location": SCENE}).json()
    assert done_while_held, "a unit update waited behind the recommendation"
    assert got["one"].status_code == 200 and got["batch"].status_code == 200
    assert got["same_id"].status_code == 409  # the id is taken while it is computed
    held_answer = got["held"].json()
    assert got["held"].status_code == 201, held_answer
    # the held answer is for the state before the updates (its snapshot), committed after them
    assert held_answer["state_seq"] == 1 < got["one"].json()["seq"] < got["batch"].json()["seq"]
    assert held_answer["seq"] > got["batch"].json()["seq"]
    assert held_answer["ranked"][0]["unit"] == "MB-1"
    # the next answer sees both updates: MB-2 next to the scene, MB-1 busy
    assert after["state_seq"] == held_answer["seq"]
    assert after["ranked"][0]["unit"] == "MB-2"
    assert "MB-1" not in {x["unit"] for x in after["ranked"]}


# --- the clock --------------------------------------------------------------------------------


def test_hour_comes_from_the_clock_in_the_maps_time_zone() -> None:
    service = make_service(now=lambda: RUSH)
    assert service.time_zone == "Asia/Ho_Chi_Minh" and service.time_zone_source == "map"
    net = dispatch.load_network("danang")
    fleet = read_fleet(FLEET)
    inc = Incident("R", SCENE["lat"], SCENE["lon"], "cardiac_arrest")
    with TestClient(create_app(service)) as c:
        h = c.get("/v1/health").json()
        assert h["time_zone"] == "Asia/Ho_Chi_Minh" and h["hour"] == 17.0
        assert h["clock"].startswith("2026-11-30T17:00:00+07:00")
        rush = c.post("/v1/incidents", json={"id": "R", "type": "cardiac_arrest",
                                             "location": SCENE}).json()  # fmt: skip
        assert (rush["hour"], rush["hour_source"]) == (17.0, "clock")
        lib = recommend(net, inc, fleet, hospitals=read_hospitals(HOSPITALS), hour=17.0,
                        routes=False)  # fmt: skip
        assert rush["recommendation"] == lib.to_dict()
        off = recommend(net, inc, fleet, hospitals=read_hospitals(HOSPITALS), routes=False)
        assert rush["recommendation"]["first_arrival_s"] > off.first_arrival_s  # rush is slower
        # an explicit hour wins
        night = c.post("/v1/incidents?hour=3", json={"id": "N", "location": SCENE}).json()
        assert (night["hour"], night["hour_source"]) == (3.0, "request")
        best = net.fastest_units((SCENE["lat"], SCENE["lon"]), library_records(fleet), k=10,
                                 hour=3.0)  # fmt: skip
        assert [(x["unit"], x["eta_s"]) for x in night["ranked"]] == [
            (b.unit, round(b.eta_s, 1)) for b in best
        ]
        # a closure window (14-20 local) applies now by the clock, not at an explicit 10:00
        c.post("/v1/closures", json={"geometry": FLOOD, "vehicles": ["ambulance"],
                                     "start_h": 14, "end_h": 20})  # fmt: skip
        call = {"lat": CALL[0], "lon": CALL[1]}
        now = c.post("/v1/incidents", json={"id": "C1", "location": call}).json()
        at10 = c.post("/v1/incidents?hour=10", json={"id": "C2", "location": call}).json()
        assert not any(x["vehicle"] == "ambulance" for x in now["ranked"])
        assert any(x["vehicle"] == "ambulance" for x in at10["ranked"])
        r = c.post("/v1/route", json={"origin": {"lat": 16.0594, "lon": 108.2099},
                                      "destination": call, "vehicle": "fire_engine"}).json()  # fmt: skip
        assert r["hour"] == 17.0 and r["hour_source"] == "clock"
        rt = net.route((16.0594, 108.2099), CALL, vehicle="fire_engine", hour=17.0)
        assert r["eta_s"] == round(rt.eta_s, 3)


def test_clock_options() -> None:
    monaco = make_service(now=lambda: RUSH, time_zone="Europe/Monaco")
    assert monaco.hour_for(None) == (11.0, "clock")  # CET, UTC+1 in November
    assert monaco.time_zone_source == "option"
    none = make_service(now=None)
    assert none.hour_for(None) == (None, "none") and none.hour_for(7.5) == (7.5, "request")
    with pytest.raises(dispatch.DispatchError, match="'Mars/Olympus'"):
        check_time_zone("Mars/Olympus")
    with pytest.raises(dispatch.DispatchError, match="naive"):
        Clock("UTC", now=lambda: datetime(2026, 1, 1, 10)).hour()  # noqa: DTZ001
    # a map given by path: its zone found by the shipped file's name; an unknown file: none
    engine = object.__new__(Engine)
    engine.map_name = str(Path("maps") / "danang_haichau_core.osm")
    assert engine.map_time_zone() == "Asia/Ho_Chi_Minh"
    engine.map_name = "/somewhere/town.osm.pbf"
    assert engine.map_time_zone() is None


# --- the change stream ------------------------------------------------------------------------


def read_events(text: str) -> list[dict[str, Any]]:
    """Parse a Server-Sent Events body: ``id`` and ``data`` of each ``change`` event."""
    out = []
    for block in text.split("\n\n"):
        fields = dict(
            line.split(": ", 1) for line in block.splitlines() if ": " in line and line[0] != ":"
        )
        if fields.get("event") == "change":
            ev = json.loads(fields["data"])
            assert int(fields["id"]) == ev["seq"]
            out.append(ev)
    return out


def apply(state: dict[str, dict[str, Any]], events: list[dict[str, Any]]) -> None:
    for ev in events:
        for ch in ev["changes"]:
            table = state.setdefault(ch["table"], {})
            if ch["doc"] is None:
                table.pop(ch["id"], None)
            else:
                table[ch["id"]] = ch["doc"]


@pytest.mark.parametrize("workers", ["loop", "pool"])
def test_stream_replays_the_log_and_resumes(workers: str) -> None:
    service = make_service()
    with TestClient(create_app(service, workers=workers)) as c:
        first = c.get("/v1/stream?after=0&max_events=1")
        assert first.status_code == 200
        assert first.headers["content-type"].startswith("text/event-stream")
        [ev] = read_events(first.text)
        assert ev["seq"] == 1 and ev["kind"] == "fleet_loaded"
        state: dict[str, dict[str, Any]] = {}
        apply(state, [ev])
        first_units = sorted(state["units"].values(), key=lambda d: d["id"])
        assert first_units == c.get("/v1/units").json()["units"]
        c.put("/v1/units/MB-2", json=NEAR_SCENE)
        c.post("/v1/incidents", json={"id": "C1", "type": "cardiac_arrest", "location": SCENE})
        c.post("/v1/incidents/C1/dispatch")
        cid = c.post("/v1/closures", json={"geometry": FLOOD}).json()["closure"]["id"]
        c.delete(f"/v1/closures/{cid}")
        last = c.get("/v1/health").json()["seq"]
        rest = read_events(c.get(f"/v1/stream?after=1&max_events={last - 1}").text)
        assert [e["seq"] for e in rest] == list(range(2, last + 1))
        assert [e["kind"] for e in rest] == [
            "unit", "incident", "dispatch", "closure", "closure_lifted"
        ]  # fmt: skip
        apply(state, rest)  # the events rebuild the state exactly
        units = sorted(state["units"].values(), key=lambda d: d["id"])
        assert units == c.get("/v1/units").json()["units"]
        assert [state["incidents"]["C1"]] == c.get("/v1/incidents").json()["incidents"]
        assert state.get("closures", {}) == {}
        # a reconnecting EventSource sends Last-Event-ID: it wins over the URL's after=
        resumed = c.get("/v1/stream?after=0&max_events=2", headers={"Last-Event-ID": "3"})
        assert [e["seq"] for e in read_events(resumed.text)] == [4, 5]
        # a stream open before a change receives it when it is durable
        got: dict[str, Any] = {}
        t = threading.Thread(
            target=lambda: got.setdefault("r", c.get(f"/v1/stream?after={last}&max_events=1"))
        )
        t.start()
        seq = c.put("/v1/units/MB-1", json={"status": "busy"}).json()["seq"]
        t.join(JOIN_S)
        assert not t.is_alive(), "the open stream did not deliver the change"
        [live] = read_events(got["r"].text)
        assert live["seq"] == seq and live["changes"][0]["doc"]["status"] == "busy"
        # long polling: nothing new within wait_s, the stream ends empty
        idle = c.get(f"/v1/stream?after={seq}&wait_s=0.2")
        assert idle.status_code == 200 and read_events(idle.text) == []
        # errors: ahead of the state, not a number
        r = c.get(f"/v1/stream?after={seq + 5}")
        assert r.status_code == 409 and r.json()["code"] == "stream_ahead"
        r = c.get("/v1/stream", headers={"Last-Event-ID": "abc"})
        assert r.status_code == 422 and "Last-Event-ID" in r.json()["message"]
        r = c.get("/v1/stream?after=-1")
        assert r.status_code == 422 and r.json()["code"] == "invalid_request"


def test_stream_sends_only_durable_changes(tmp_path: Path) -> None:
    """With durability "full", a change is streamed once its fsync is done, never before."""
    service = make_service(tmp_path / "state.sqlite")
    with TestClient(create_app(service)) as c:
        seq = c.put("/v1/units/MB-1", json={"status": "busy"}).json()["seq"]
        assert service.store.durable_seq() >= seq
        # a change committed but not yet flushed (as inside a request) is not in the stream
        with service.lock:
            pending = service._commit("unit", {"id": "MB-2"}, [("units", "MB-2",
                                      {**service.units["MB-2"], "status": "busy"})])  # fmt: skip
        assert [e["seq"] for e in service.events(0)][-1] == seq < pending
        service.flush_pending()
        assert [e["seq"] for e in service.events(0)][-1] == pending


# --- the coverage-hole warning ----------------------------------------------------------------


def test_coverage_warning_is_the_librarys_and_follows_the_state() -> None:
    from dispatch.plan.demand import grid_demand
    from dispatch.plan.warning import CoverageState

    service = make_service(coverage=True)
    net = dispatch.load_network("danang")
    demand = grid_demand(net, cell_m=400, vehicles=list(dispatch.VEHICLE_CLASSES))

    def library(iid: str) -> list[dict[str, Any]]:
        units = service.fleet()
        state = CoverageState.build(net, library_records(units), demand, target_s=480.0)
        rec = recommend(net, Incident(iid, SCENE["lat"], SCENE["lon"], "structure_fire"), units,
                        hospitals=read_hospitals(HOSPITALS), routes=False, coverage=state)  # fmt: skip
        return list(rec.to_dict()["coverage"])

    with TestClient(create_app(service)) as c:
        assert c.get("/v1/health").json()["coverage_warning"] is True
        want = library("F1")
        body = c.post("/v1/incidents", json={"id": "F1", "type": "structure_fire",
                                             "location": SCENE}).json()  # fmt: skip
        got = body["recommendation"]["coverage"]
        assert got == want and len(got) == 3  # engine, engine, ladder (+ ambulance optional)
        assert all(w["message"].startswith("sending ") for w in got)
        # units move and are sent: the kept state answers as one built afresh
        c.post("/v1/incidents/F1/dispatch")
        c.put("/v1/units/ENG-B1", json={"lat": 16.0500, "lon": 108.2100})
        want = library("F2")
        body = c.post("/v1/incidents", json={"id": "F2", "type": "structure_fire",
                                             "location": SCENE}).json()  # fmt: skip
        assert body["recommendation"]["coverage"] == want
    plain = make_service()
    with TestClient(create_app(plain)) as c:
        body = c.post("/v1/incidents", json={"id": "F1", "type": "structure_fire",
                                             "location": SCENE}).json()  # fmt: skip
        assert "coverage" not in body["recommendation"]


def test_stream_resumes_after_the_server_is_killed_and_restarted(
    tmp_path: Path, server: Any
) -> None:
    """Over real sockets: a client reads part of the stream, the server is SIGKILLed and started
    again on the same state file; resuming from the last event seen loses nothing."""
    import httpx

    from tests.service.conftest import free_port

    state = tmp_path / "state.sqlite"
    port = free_port()
    proc = server(state, port)
    moves = [(16.0576, 108.2139), (16.0580, 108.2150), (16.0590, 108.2120), (16.0570, 108.2130)]
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as c:
        for lat, lon in moves[:2]:
            assert c.put("/v1/units/MB-2", json={"lat": lat, "lon": lon}).status_code == 200
        seen = read_events(c.get("/v1/stream?after=0&max_events=2").text)
        for lat, lon in moves[2:]:
            assert c.put("/v1/units/MB-2", json={"lat": lat, "lon": lon}).status_code == 200
        last = c.get("/v1/health").json()["seq"]
    proc.kill()
    proc.wait(timeout=30)
    port = free_port()
    server(state, port)
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as c:
        n = last - seen[-1]["seq"]
        resumed = read_events(
            c.get(
                f"/v1/stream?max_events={n}", headers={"Last-Event-ID": str(seen[-1]["seq"])}
            ).text
        )
        every = read_events(c.get(f"/v1/stream?after=0&max_events={last}").text)
        units = c.get("/v1/units").json()["units"]
    assert [e["seq"] for e in seen + resumed] == list(range(1, last + 1))
    assert seen + resumed == every
    rebuilt: dict[str, dict[str, Any]] = {}
    apply(rebuilt, seen + resumed)
    assert sorted(rebuilt["units"].values(), key=lambda d: d["id"]) == units
    assert (units_by := {u["id"]: u for u in units})["MB-2"]["lat"] == moves[-1][0]
    assert units_by["MB-2"]["lon"] == moves[-1][1]


# --- the engine in a worker process -----------------------------------------------------------


def wait_for_file(path: str, timeout_s: float) -> bool:
    """Run in the engine's worker process: hold it until `path` exists (a deterministic hold)."""
    import os
    import time

    deadline = time.monotonic() + timeout_s
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


@pytest.fixture(scope="module")
def process_lane() -> Any:
    from dispatch.service.lane import ProcessLane

    lane = ProcessLane({"map_name": "danang", "hospitals": HOSPITALS})
    yield lane
    lane.close()


def test_process_lane_answers_as_the_thread_lane(process_lane: Any) -> None:
    """The same requests to a service computing in-process and one computing in a worker process
    (which follows the closures of each snapshot) get the same answers."""
    answers = []
    for lane in (None, process_lane):
        service = make_service(lane=lane)
        with TestClient(create_app(service)) as c:
            out = [c.post("/v1/incidents", json={"id": "A", "type": "structure_fire",
                                                 "location": SCENE}).json()]  # fmt: skip
            c.post("/v1/incidents/A/dispatch")
            c.put("/v1/units/MB-2", json=NEAR_SCENE)
            call = {"lat": CALL[0], "lon": CALL[1]}
            cid = c.post("/v1/closures", json={"geometry": FLOOD, "vehicles": ["ambulance"]})
            out.append(
                c.post("/v1/incidents?routes=true", json={"id": "B", "location": call}).json()
            )
            out.append(c.post("/v1/incidents", json={"id": "D", "location": {
                **SCENE, "radius_m": 120.0}}).json())  # fmt: skip
            out.append(c.post("/v1/route", json={"origin": {"lat": 16.0594, "lon": 108.2099},
                                                 "destination": call}).json())  # fmt: skip
            c.delete(f"/v1/closures/{cid.json()['closure']['id']}")
            out.append(c.post("/v1/incidents", json={"id": "E", "location": call}).json())
            out.append(c.post("/v1/assign", json={"incidents": [
                {"id": "S1", "type": "structure_fire", "location": SCENE},
                {"id": "S2", "type": "cardiac_arrest", "location": call}]}).json())  # fmt: skip
            out.append(c.post("/v1/travel-times", json={"origins": [call], "destinations": [SCENE],
                                                        "vehicle": "ladder"}).json())  # fmt: skip
            bad = c.post("/v1/incidents", json={"id": "X", "location": {"lat": 16.2, "lon": 108.5}})
            out.append({"status": bad.status_code, **bad.json()})
        for o in out:  # times of day and solver times differ between runs; the rest must not
            for key in ("created_at", "updated_at"):
                o.get("incident", {}).pop(key, None)
            for part in (o, *(o.get(k) for k in ("greedy", "optimised"))):
                if isinstance(part, dict):
                    part.pop("solve_time_s", None)
        answers.append(out)
    assert answers[0] == answers[1]
    assert not any(x["vehicle"] == "ambulance" for x in answers[1][1]["ranked"])  # the closure
    assert any(x["vehicle"] == "ambulance" for x in answers[1][4]["ranked"])  # lifted


def test_unit_updates_do_not_wait_behind_the_worker_process(
    process_lane: Any, tmp_path: Path
) -> None:
    """The worker held by a job that waits for a file: an incident queues behind it, unit
    updates and dispatches are answered meanwhile."""
    service = make_service(lane=process_lane)
    release = tmp_path / "release"
    queued = threading.Event()

    class Spy:  # tells when a computation was handed to the lane (its snapshot taken)
        def run(self, *a: Any, **k: Any) -> Any:
            queued.set()
            return process_lane.run(*a, **k)

    service.lane = Spy()  # type: ignore[assignment]
    with TestClient(create_app(service)) as c:
        hold = process_lane.submit(wait_for_file, str(release), JOIN_S)
        got: dict[str, Any] = {}
        slow = threading.Thread(
            target=lambda: got.setdefault(
                "held", c.post("/v1/incidents", json={"id": "H", "location": SCENE})
            )
        )
        slow.start()
        assert queued.wait(JOIN_S), "the incident never reached the lane"

        def priority() -> None:
            got["one"] = c.put("/v1/units/MB-2", json=NEAR_SCENE)
            got["batch"] = c.put("/v1/units", json={"units": [{"id": "MB-1", "status": "busy"}]})

        fast = threading.Thread(target=priority)
        fast.start()
        fast.join(JOIN_S)
        done_while_held = not fast.is_alive() and slow.is_alive()
        release.touch()
        assert hold.result(timeout=JOIN_S) is True, "the worker was never released"
        slow.join(JOIN_S)
    assert done_while_held, "a unit update waited behind the worker's computation"
    assert got["one"].status_code == 200 and got["batch"].status_code == 200
    held = got["held"].json()
    assert got["held"].status_code == 201, held
    # its snapshot was taken before it queued: before the updates
    assert held["state_seq"] == 1 and held["ranked"][0]["unit"] == "MB-1"


def test_units_pickle_with_their_extra_columns() -> None:
    """The process lane sends library units to its worker by pickle (no converter of its own)."""
    import pickle
    from types import MappingProxyType

    from dispatch.model import Unit

    u = Unit("A1", "ambulance", 16.05, 108.2, "en_route", "S1", 60.0, 2,
             MappingProxyType({"crew": 3}))  # fmt: skip
    back = pickle.loads(pickle.dumps(u))
    assert back == u and dict(back.extra) == {"crew": 3} and back.effective_turnout_s == 60.0
    with pytest.raises(TypeError):
        back.extra["crew"] = 4  # type: ignore[index]  # still read-only
    plain = pickle.loads(pickle.dumps(Unit("M1", "motorbike", 16.0, 108.2)))
    assert plain == Unit("M1", "motorbike", 16.0, 108.2) and len(plain.extra) == 0
