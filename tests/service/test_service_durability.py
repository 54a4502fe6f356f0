"""Durability: the real server process is killed (SIGKILL) mid-stream and restarted.

Every change the server acknowledged must be in the restored state; a change in flight at the kill
may be there or not, but never half of it (an incident marked dispatched has all its units en route;
the state tables equal a replay of the log).
"""

from __future__ import annotations

import random
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("uvicorn", reason="the service needs the 'service' extra (uvicorn)")
httpx = pytest.importorskip("httpx", reason="the durability test needs httpx")

from dispatch.service.store import Store  # noqa: E402
from tests.service.conftest import free_port  # noqa: E402

STATIONS = {
    "AMB-HM1": (16.059401, 108.2098753),
    "AMB-PN": (16.0569875, 108.2182556),
    "MB-1": (16.0600, 108.2160),
    "MB-2": (16.0500, 108.2180),
    "ENG-A1": (16.0640, 108.2215),
    "ENG-B1": (16.0480, 108.2080),
}
SCENES = [(16.0575, 108.2140), (16.060909, 108.220849), (16.0550, 108.2120), (16.0610, 108.2150)]


def test_sigkill_loses_nothing_acknowledged(tmp_path: Path, server: Any) -> None:
    rng = random.Random(20261130)
    state = tmp_path / "state.sqlite"
    port = free_port()
    first = server(state, port)
    base = f"http://127.0.0.1:{port}"

    acked_units: dict[str, list[tuple[int, dict[str, Any]]]] = {u: [] for u in STATIONS}
    acked_incidents: dict[str, str] = {}  # id -> last acknowledged status
    acked_seqs: list[int] = []
    in_flight: dict[str, Any] = {}
    stop = threading.Event()
    errors: list[str] = []

    def stream(worker: int) -> None:
        wrng = random.Random(worker)
        with httpx.Client(base_url=base, timeout=10) as c:
            n = 0
            while not stop.is_set() and n < 2000:  # bounded: the kill comes long before
                n += 1
                try:
                    if wrng.random() < 0.7:
                        uid = wrng.choice(sorted(STATIONS))
                        lat, lon = STATIONS[uid]
                        body = {"lat": round(lat + wrng.uniform(-3e-4, 3e-4), 6),
                                "lon": round(lon + wrng.uniform(-3e-4, 3e-4), 6)}  # fmt: skip
                        in_flight[f"unit{worker}"] = (uid, body)
                        r = c.put(f"/v1/units/{uid}", json=body)
                        if r.status_code == 200:
                            acked_units[uid].append((r.json()["seq"], body))
                            acked_seqs.append(r.json()["seq"])
                        else:
                            errors.append(r.text)
                    else:
                        iid = f"W{worker}-{n}"
                        lat, lon = wrng.choice(SCENES)
                        in_flight[f"inc{worker}"] = iid
                        r = c.post(
                            "/v1/incidents", json={"id": iid, "location": {"lat": lat, "lon": lon}}
                        )
                        if r.status_code != 201:
                            errors.append(r.text)
                            continue
                        acked_incidents[iid] = "open"
                        acked_seqs.append(r.json()["seq"])
                        r = c.post(f"/v1/incidents/{iid}/dispatch")
                        if r.status_code == 200:
                            acked_incidents[iid] = "dispatched"
                            acked_seqs.append(r.json()["seq"])
                            r = c.patch(f"/v1/incidents/{iid}", json={"status": "cleared"})
                            if r.status_code == 200:
                                acked_incidents[iid] = "cleared"
                                acked_seqs.append(r.json()["seq"])
                except httpx.HTTPError:
                    return  # the server is gone

    workers = [threading.Thread(target=stream, args=(w,)) for w in range(3)]
    for t in workers:
        t.start()
    deadline = time.monotonic() + 60
    target = rng.randint(40, 120)
    while len(acked_seqs) < target and time.monotonic() < deadline:
        time.sleep(0.01)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    stop.set()
    for t in workers:
        t.join(timeout=30)
    assert not errors, errors[:3]
    assert len(acked_seqs) >= target, "the stream was too slow to reach the kill point"

    # the state file alone: tables equal the replayed log, every acknowledged change is in it
    store = Store(state)
    tables, replayed = store.load(), store.replay()
    assert tables == replayed
    last = store.last_seq()
    assert last >= max(acked_seqs)
    assert sorted(set(acked_seqs)) == sorted(acked_seqs)  # one seq per acknowledged change
    store.close()

    server(state, port)
    with httpx.Client(base_url=base, timeout=10) as c:
        assert c.get("/v1/health").json()["seq"] == last
        units = {u["id"]: u for u in c.get("/v1/units").json()["units"]}
        incidents = {i["id"]: i for i in c.get("/v1/incidents").json()["incidents"]}
    flying = [v for k, v in in_flight.items() if k.startswith("unit")]
    for uid, history in acked_units.items():
        if not history:
            continue
        pos = {"lat": units[uid]["lat"], "lon": units[uid]["lon"]}
        # acknowledgements may come back out of order (concurrent fsyncs): the latest acknowledged
        # change is the one with the highest seq, unless an unacknowledged one came after it
        latest = max(history, key=lambda x: x[0])[1]
        candidates = [latest] + [b for u, b in flying if u == uid]
        assert pos in candidates, (uid, pos, latest)
    order = ["open", "dispatched", "cleared"]
    for iid, status in acked_incidents.items():
        assert iid in incidents, iid
        assert order.index(incidents[iid]["status"]) >= order.index(status)
    for iid, doc in incidents.items():  # acknowledged or in flight: never half-applied
        assert iid in acked_incidents or iid in in_flight.values(), iid
        if doc["status"] == "dispatched":
            assert doc["units"], doc
            for uid in doc["units"]:
                assert units[uid]["status"] == "en_route" and units[uid]["incident"] == iid
        if doc["status"] == "open":
            assert doc["units"] == []
    busy = [u for u in units.values() if u["status"] == "en_route"]
    for u in busy:
        assert incidents[u["incident"]]["status"] == "dispatched"
