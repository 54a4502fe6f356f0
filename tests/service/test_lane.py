"""The process lane: a worker process of its own, fed only what changed between requests.

Its answers are compared with the thread lane's (the service's own engine) on the same snapshots
of a real Da Nang service, after each kind of change; the requests it sent are read back to check
that they carried only the change. Then its failures: errors crossing the pipe, a killed worker,
``close()``.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="the service needs the 'service' extra (fastapi)")
pytest.importorskip("httpx", reason="the API tests need httpx")

from fastapi.testclient import TestClient  # noqa: E402

from dispatch.decide.incidents import Incident  # noqa: E402
from dispatch.errors import DispatchError  # noqa: E402
from dispatch.service.app import create_app  # noqa: E402
from dispatch.service.engine import Engine  # noqa: E402
from dispatch.service.lane import LaneError, ProcessLane  # noqa: E402
from dispatch.service.state import Service  # noqa: E402
from tests.service.conftest import HOSPITALS, free_port  # noqa: E402
from tests.service.test_service_live import (  # noqa: E402
    CALL,
    FLOOD,
    JOIN_S,
    NEAR_SCENE,
    SCENE,
    make_service,
    wait_for_file,
)

SETTINGS = {"map_name": "danang", "hospitals": HOSPITALS}
#: 10:00 in Da Nang: off-peak (the hour is given, not read from a clock).
HOUR = 10.0
#: A point in the sea east of the city: no road near it.
OFF_MAP = (16.2, 108.5)


@pytest.fixture(scope="module")
def lane() -> Iterator[ProcessLane]:
    lane = ProcessLane(SETTINGS)
    yield lane
    lane.close()


class Recorder:
    """Stands in for the lane's end of the pipe and keeps every request it sends, decoded."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.sent: list[tuple[Any, ...]] = []

    def send_bytes(self, data: bytes) -> None:
        self.sent.append(pickle.loads(data))
        self.conn.send_bytes(data)

    def recv_bytes(self) -> bytes:
        data: bytes = self.conn.recv_bytes()
        return data

    def close(self) -> None:
        self.conn.close()


@pytest.fixture
def recorded(lane: ProcessLane) -> Iterator[Recorder]:
    rec = Recorder(lane._conn)
    lane._conn = rec  # type: ignore[assignment]
    try:
        yield rec
    finally:
        lane._conn = rec.conn


def both(service: Service, lane: ProcessLane, *args: Any, **kw: Any) -> tuple[Any, Any]:
    """The thread lane's and the process lane's recommendation on one snapshot of `service`."""
    units, closures, _seq = service.snapshot()
    return tuple(
        ln.run("recommend", closures, *args, units, hour=HOUR, **kw) for ln in (service.lane, lane)
    )  # type: ignore[return-value]


def fleet_sent(rec: Recorder) -> tuple[Any, Any, Any]:
    """The last request's (unit ids or None, changed units' ids, closure records or None)."""
    _call, _n, _method, pos, fleet, specs, args, _kw = rec.sent[-1]
    assert pos == 1 and args[pos] is None, "the unit list went whole"
    ids, changed = fleet
    return ids, [u.id for u in changed], specs


def test_changes_between_requests_answer_as_the_thread_lane(
    lane: ProcessLane, recorded: Recorder
) -> None:
    """Moves, a status change, a unit added, one removed, a closure added and lifted: after each,
    the worker (fed only the change) answers as the service's own engine on the same snapshot."""
    service = make_service()
    call = Incident("C", CALL[0], CALL[1], "cardiac_arrest")
    fire = Incident("F", SCENE["lat"], SCENE["lon"], "structure_fire")
    ids0 = tuple(u.id for u in service.fleet())

    def check(inc: Incident, **kw: Any) -> Any:
        thread, process = both(service, lane, inc, **kw)
        assert process == thread
        return process

    first = check(call)
    ids, changed, specs = fleet_sent(recorded)
    # a fresh service's units are new objects: each one goes once (ids only if they changed)
    assert sorted(changed) == sorted(ids0) and ids in (None, ids0) and specs in (None, [])
    assert any(r["vehicle"] == "ambulance" for r in first["ranked"])

    check(call, plan=False)  # nothing changed: nothing sent but the request
    assert fleet_sent(recorded) == (None, [], None)

    service.put_unit("MB-2", NEAR_SCENE)  # an AVL fix
    moved = check(fire)
    assert fleet_sent(recorded) == (None, ["MB-2"], None)
    assert moved["ranked"][0]["unit"] == "MB-2"  # it is now next to the scene

    service.put_unit("MB-2", {"status": "busy"})  # a status change
    busy = check(fire)
    assert fleet_sent(recorded) == (None, ["MB-2"], None)
    assert "MB-2" not in [r["unit"] for r in busy["ranked"]]

    service.put_unit("AMB-NEW", {"vehicle": "ambulance", **NEAR_SCENE})  # a unit added
    added = check(fire)
    ids, changed, specs = fleet_sent(recorded)
    assert ids == tuple(sorted((*ids0, "AMB-NEW"))) and changed == ["AMB-NEW"] and specs is None
    assert "AMB-NEW" in [r["unit"] for r in added["ranked"]]

    units, closures, _seq = service.snapshot()  # a unit removed (a list without it)
    fewer = [u for u in units if u.id != "AMB-NEW"]
    thread = service.lane.run("recommend", closures, fire, fewer, hour=HOUR)
    assert lane.run("recommend", closures, fire, fewer, hour=HOUR) == thread
    assert fleet_sent(recorded) == (tuple(u.id for u in fewer), [], None)
    assert "AMB-NEW" not in [r["unit"] for r in thread["ranked"]]

    _seq, spec = service.add_closure({"geometry": FLOOD, "vehicles": ["ambulance"]})
    closed = check(call)
    ids, changed, specs = fleet_sent(recorded)
    # back to the full fleet: the unit removed from the worker's copy goes again
    assert ids == tuple(sorted((*ids0, "AMB-NEW"))) and changed == ["AMB-NEW"]
    assert [s["id"] for s in specs] == [spec["id"]]
    assert not any(r["vehicle"] == "ambulance" for r in closed["ranked"])  # the closure holds

    check(call, plan=False)
    assert fleet_sent(recorded) == (None, [], None)  # the closures went once

    service.delete_closure(spec["id"])
    lifted = check(call)
    assert fleet_sent(recorded) == (None, [], [])
    assert any(r["vehicle"] == "ambulance" for r in lifted["ranked"])  # lifted

    units, closures, _seq = service.snapshot()  # a surge plan: its unit list goes the same way
    incs = [fire, call]
    thread = service.lane.run("assign", closures, incs, units, hour=HOUR)
    process = lane.run("assign", closures, incs, units, hour=HOUR)
    for out in (thread, process):
        for part in (out, out.get("greedy"), out.get("optimised")):
            if isinstance(part, dict):
                part.pop("solve_time_s", None)
    assert process == thread
    assert recorded.sent[-1][2] == "assign" and recorded.sent[-1][4] == (None, [])


def test_a_method_it_does_not_know_gets_its_arguments_whole(
    lane: ProcessLane, recorded: Recorder
) -> None:
    service = make_service()
    units, closures, _seq = service.snapshot()
    origins, dests = [(16.0594, 108.2099), CALL], [(SCENE["lat"], SCENE["lon"])]
    thread = service.lane.run("travel_times", closures, origins, dests, vehicle="ladder", hour=HOUR)
    assert lane.run("travel_times", closures, origins, dests, vehicle="ladder", hour=HOUR) == thread
    _call, _n, method, pos, fleet, _specs, args, kw = recorded.sent[-1]
    assert (method, pos, fleet, args) == ("travel_times", None, None, (origins, dests))
    assert all(x is not None and x > 0 for row in thread for x in row)
    assert kw == {"vehicle": "ladder", "hour": HOUR}
    # a unit list under a name it does not expect goes whole too
    fire = Incident("F", SCENE["lat"], SCENE["lon"], "structure_fire")
    thread = service.lane.run("recommend", closures, fire, units=units, hour=HOUR)
    assert lane.run("recommend", closures, fire, units=units, hour=HOUR) == thread
    assert recorded.sent[-1][3:5] == (None, None) and recorded.sent[-1][7]["units"] == units


def test_a_worker_that_lost_its_state_is_sent_the_whole_of_it(
    lane: ProcessLane, recorded: Recorder
) -> None:
    """The service believes the worker holds a unit it does not: the worker says its state is
    lost, the lane sends everything again, and the answer is still the right one."""
    service = make_service()
    fire = Incident("F", SCENE["lat"], SCENE["lon"], "structure_fire")
    both(service, lane, fire)
    service.put_unit("AMB-NEW", {"vehicle": "ambulance", **NEAR_SCENE})
    units, closures, _seq = service.snapshot()
    new = next(u for u in units if u.id == "AMB-NEW")
    lane._sent_units["AMB-NEW"] = new  # a fault: the worker never got it
    lane._sent_list = None
    n_before = len(recorded.sent)
    thread = service.lane.run("recommend", closures, fire, units, hour=HOUR)
    assert lane.run("recommend", closures, fire, units, hour=HOUR) == thread
    assert "AMB-NEW" in [r["unit"] for r in thread["ranked"]]
    faulty, whole = recorded.sent[n_before:]
    assert "AMB-NEW" not in [u.id for u in faulty[4][1]]
    assert [u.id for u in whole[4][1]] == [u.id for u in units] and whole[5] == []


class TwoArgs(Exception):
    """An exception that does not survive pickling (its constructor takes two arguments)."""

    def __init__(self, a: int, b: int) -> None:
        super().__init__(f"{a}/{b}")


def raise_two_args() -> None:
    raise TwoArgs(1, 2)


def test_errors_cross_the_pipe_and_the_lane_goes_on(lane: ProcessLane) -> None:
    service = make_service()
    units, closures, _seq = service.snapshot()
    far = Incident("X", *OFF_MAP)
    errors = []
    for ln in (service.lane, lane):
        with pytest.raises(DispatchError) as info:
            ln.run("recommend", closures, far, units, hour=HOUR)
        errors.append(info.value)
    assert type(errors[1]) is type(errors[0]) and str(errors[1]) == str(errors[0])
    assert str(errors[0])  # a message naming the problem
    with pytest.raises(AttributeError, match="no_such_method") as attr:
        lane.run("no_such_method", closures)
    assert "in the engine worker process" in "".join(getattr(attr.value, "__notes__", []))
    with pytest.raises(RuntimeError, match="TwoArgs: 1/2"):  # cannot travel: its nearest does
        lane.submit(raise_two_args).result(JOIN_S)
    fire = Incident("F", SCENE["lat"], SCENE["lon"], "structure_fire")
    thread = service.lane.run("recommend", closures, fire, units, hour=HOUR)
    assert lane.run("recommend", closures, fire, units, hour=HOUR) == thread  # still answers


def test_a_library_error_in_the_worker_is_the_same_422(lane: ProcessLane) -> None:
    body = {"id": "X", "location": {"lat": OFF_MAP[0], "lon": OFF_MAP[1]}}
    answers = []
    for ln in (None, lane):
        with TestClient(create_app(make_service(lane=ln))) as c:
            r = c.post("/v1/incidents", json=body)
            answers.append((r.status_code, r.json()))
    assert answers[0][0] == 422 and answers[1] == answers[0]


def test_a_killed_worker_is_a_503_then_a_new_worker_answers(tmp_path: Path) -> None:
    """The computation whose worker is killed gets LaneError (503); the next one starts a new
    worker, sends it the whole state and answers as before; a worker that cannot start is a 503
    and is not tried again before RESTART_RETRY_S."""
    lane = ProcessLane(SETTINGS)
    try:
        service = make_service(lane=lane)
        units, closures, _seq = service.snapshot()
        fire = Incident("F", SCENE["lat"], SCENE["lon"], "structure_fire")
        before = lane.run("recommend", closures, fire, units, hour=HOUR)
        assert before["ranked"]
        first = lane.process.pid
        held = lane.submit(wait_for_file, str(tmp_path / "never"), JOIN_S)  # a computation...
        os.kill(first or 0, signal.SIGKILL)  # ...whose worker is killed
        with pytest.raises(LaneError, match="stopped"):
            held.result(JOIN_S)
        assert lane.run("recommend", closures, fire, units, hour=HOUR) == before  # a new worker
        assert lane.restarts == 1 and lane.process.pid != first and lane.process.is_alive()
        with TestClient(create_app(service)) as c:
            os.kill(lane.process.pid or 0, signal.SIGKILL)  # killed between computations:
            lane.process.join(JOIN_S)
            r = c.post("/v1/incidents", json={"id": "A", "location": SCENE})
            assert r.status_code == 201, r.text  # replaced before the next one, unseen
            os.kill(lane.process.pid or 0, signal.SIGKILL)
            lane.process.join(JOIN_S)
            lane.settings = {**SETTINGS, "map_name": str(tmp_path / "gone.osm")}  # cannot start
            r = c.post("/v1/incidents", json={"id": "B", "location": SCENE})
            assert r.status_code == 503 and r.json()["code"] == "engine_unavailable"
            assert "did not start" in r.json()["message"]
            assert c.put("/v1/units/MB-2", json=NEAR_SCENE).status_code == 200  # state goes on
            lane.settings = dict(SETTINGS)  # the map is back, but the retry waits its time
            r = c.post("/v1/incidents", json={"id": "C", "location": SCENE})
            assert r.status_code == 503 and "tried again in" in r.json()["message"]
            assert c.get("/v1/health").json()["engine_lane"] == {
                "engine": "process",
                "worker_alive": False,
                "worker_pid": None,
                "restarts": 2,
            }
            lane._retry_at = 0.0  # the retry's time has come
            assert c.post("/v1/incidents", json={"id": "D", "location": SCENE}).status_code == 201
            assert c.get("/v1/health").json()["engine_lane"] == {
                "engine": "process", "worker_alive": True, "worker_pid": lane.process.pid,
                "restarts": 3}  # fmt: skip
        assert lane.restarts == 3
    finally:
        lane.close()
    assert not lane.process.is_alive()


def test_close_ends_the_worker() -> None:
    lane = ProcessLane(SETTINGS)
    assert lane.process.is_alive() and lane.summary["map"]
    lane.close()
    assert not lane.process.is_alive() and lane.process.exitcode == 0  # it ended by itself
    with pytest.raises(LaneError, match="closed"):
        lane.run("summary", (None, []))
    lane.close()  # twice is harmless


def _state_and_parent(pid: int) -> tuple[str, int] | None:
    """A process's state letter and parent id (/proc), None once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    state, ppid = stat.rsplit(")", 1)[1].split()[:2]
    return state, int(ppid)


def alive(pids: list[int]) -> list[int]:
    """Those of `pids` still running (ended ones and zombies are not)."""
    return [p for p in pids if (sp := _state_and_parent(p)) is not None and sp[0] != "Z"]


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads processes from /proc")
def test_the_worker_ends_with_a_killed_server(tmp_path: Path, server: Any) -> None:
    """``dispatch serve --engine process`` killed with SIGKILL (no time to close its lane): its
    worker process ends by itself, nothing is left running."""
    import httpx

    port = free_port()
    proc = server(tmp_path / "state.sqlite", port, "--engine", "process")
    r = httpx.post(f"http://127.0.0.1:{port}/v1/incidents",
                   json={"id": "A", "location": SCENE}, timeout=JOIN_S)  # fmt: skip
    assert r.status_code == 201 and r.json()["ranked"]
    pids = [int(e.name) for e in Path("/proc").iterdir() if e.name.isdigit()]
    children = [p for p in alive(pids) if (sp := _state_and_parent(p)) and sp[1] == proc.pid]
    assert children, "no worker process"
    proc.kill()
    proc.wait(timeout=JOIN_S)
    deadline = time.monotonic() + JOIN_S
    while alive(children) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(children), f"left running: {alive(children)}"


def test_a_worker_that_cannot_load_its_map_raises_the_library_error() -> None:
    """The worker's start-up error (an unknown map) is raised by the constructor, as the
    service's own engine raises it; no process is left."""
    before = set(multiprocessing.active_children())
    with pytest.raises(DispatchError) as here:
        Engine("no-such-map")
    with pytest.raises(type(here.value), match="no-such-map") as there:
        ProcessLane({"map_name": "no-such-map"})
    assert str(there.value) == str(here.value)
    assert set(multiprocessing.active_children()) <= before
