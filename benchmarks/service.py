"""The live service under a bounded load over loopback: latency, throughput, answers checked.

Starts ``dispatch serve danang`` (a fresh state file, 50 units, Da Nang hospitals) on 127.0.0.1, then
for each offered rate and each answer mode sends a fixed number of ``POST /v1/incidents`` on an
open-loop schedule (request i is due at ``i / rate`` s; its latency counts from that time, so a
server that falls behind is not flattered) while 20 unit updates per second (``PUT /v1/units/ID``,
AVL fixes to random road nodes) arrive on another connection. Every phase stops at its request
count or its time cap, whichever comes first.

The load generator is cheap so that it takes little of the CPUs it shares with the server: a
process of its own with one asyncio loop, a pool of keep-alive connections (``--connections``,
an incident waits for a free one: that wait counts in its latency), every request encoded before
the phase, no garbage collection during it. ``--server-cpus`` / ``--client-cpus`` pin the two
(``os.sched_setaffinity``). Per phase it reports the server's CPU seconds (its process and the
engine's worker process) and the generator's, the load average, and where the slowest 1 % of
requests spent their time in the service (the stages of its ``Server-Timing`` header).

The priority path first: unit updates (20 per second) alone for 5 s, then the same updates while
incidents are offered at 300 per second (above what the service computes: a backlog builds in its
engine lane) for 5 s; the update latency of the two is compared (updates must not queue behind
recommendations).

Modes: ``plan`` is the full answer (run-card plan by the exact one-incident solver ``exact_single``
of :mod:`dispatch.decide.assign`, alternatives, hospital, ranked units); ``ranked`` is
``?plan=false`` (the ranked units from the in-memory ``Fleet``).

Answers: after each phase the updates stop, the state is read back (``GET /v1/units``) and 30
incidents are answered both by the server and by the library in this process on the same state
and at the hour the server's clock gave (``recommend`` / ``fastest_units``); they must be identical (exit status 1 otherwise). The library's
own time for the same answers is the in-process baseline: the service's overhead is the difference.

    python benchmarks/service.py                           # rates 100 and 30 per second, both modes
    python benchmarks/service.py --rates 100 --requests-per-rate-s 5   # a short run
    python benchmarks/service.py --out /tmp/service.json

Figures are recorded in benchmarks/README.md ("Live service"). No test asserts a time.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import multiprocessing
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

import dispatch  # noqa: E402
from dispatch.decide.hospitals import read_hospitals  # noqa: E402
from dispatch.decide.incidents import Incident, Unit  # noqa: E402
from dispatch.decide.recommend import recommend  # noqa: E402
from dispatch.io.atomic import atomic_write  # noqa: E402

HOSPITALS = ROOT / "scenarios" / "danang_hospitals.csv"
#: Class mix of the 50 units (ILLUSTRATIVE positions: random road nodes of the Da Nang extract).
CLASSES = ["ambulance"] * 20 + ["fire_engine"] * 14 + ["ladder"] * 4 + ["motorbike"] * 12
#: Incident type mix of the load (ILLUSTRATIVE shares).
TYPES = ["cardiac_arrest", "general_medical", "trauma", "structure_fire", "minor_medical"]


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def road_nodes(net: Any) -> np.ndarray:
    """Nodes every class can start from and reach (ladders are the most restricted)."""
    ok = []
    for n in range(net.n_nodes):
        p = (float(net.node_lat[n]), float(net.node_lon[n]))
        try:
            net.snap(p, vehicle="ladder", role="from")
            net.snap(p, vehicle="ladder", role="to")
        except dispatch.DispatchError:
            continue
        ok.append(n)
    return np.array(ok)


def write_fleet(net: Any, nodes_ok: np.ndarray, rng: np.random.Generator, path: Path) -> None:
    nodes = rng.choice(nodes_ok, len(CLASSES), replace=False)
    lines = [
        "# ILLUSTRATIVE benchmark fleet: 50 units at random road nodes of the Da Nang extract",
        "id,vehicle,lat,lon,status,station",
    ]
    for i, (cls, n) in enumerate(zip(CLASSES, nodes, strict=True)):
        lines.append(
            f"U{i:02d},{cls},{net.node_lat[n]:.7f},{net.node_lon[n]:.7f},available,node {n}"
        )
    path.write_text("\n".join(lines) + "\n")


def start(
    state: Path,
    fleet: Path,
    port: int,
    durability: str,
    workers: str,
    engine: str = "thread",
    cpus: list[int] | None = None,
) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "dispatch", "serve", "danang", "--fleet", str(fleet),
           "--hospitals", str(HOSPITALS), "--state", str(state), "--port", str(port),
           "--durability", durability, "--workers", workers, "--engine", engine]  # fmt: skip
    pin = None if not cpus else (lambda: os.sched_setaffinity(0, cpus))
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, preexec_fn=pin)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v1/health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("server did not start within 120 s")


def server_stages(head: str) -> dict[str, float]:
    """``Server-Timing: app;dur=12.1, compute;dur=3.2`` -> ``{"app": 12.1, "compute": 3.2}``."""
    out = {}
    for part in head.split(","):
        name, _, dur = part.strip().partition(";dur=")
        if dur:
            out[name] = float(dur)
    return out


def server_ms(r: httpx.Response) -> float:
    """The service's own time for a request (its ``Server-Timing: app;dur=`` header), ms."""
    return server_stages(r.headers.get("server-timing", "")).get("app", float("nan"))


def tail_stages(stages: list[dict[str, float]], q: float = 99.0) -> dict[str, Any]:
    """Where the slowest requests spent their time in the service: the mean of each stage over
    the requests whose in-service time is at or above its `q`-th percentile, and every stage's
    p50 and p99 over all requests (ms)."""
    apps = [s.get("app", float("nan")) for s in stages]
    if not apps:
        return {}
    cut = pct(apps, q)
    slow = [s for s in stages if s.get("app", 0.0) >= cut]
    names = sorted({k for s in stages for k in s})
    return {
        "slowest_n": len(slow),
        "slowest_mean_ms": {k: round(sum(s.get(k, 0.0) for s in slow) / len(slow), 2)
                            for k in names},
        "p50_ms": {k: round(pct([s.get(k, 0.0) for s in stages], 50), 2) for k in names},
        "p99_ms": {k: round(pct([s.get(k, 0.0) for s in stages], 99), 2) for k in names},
    }  # fmt: skip


def pct(xs: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(xs), q)) if xs else float("nan")


class _Conn:
    """One keep-alive HTTP/1.1 connection over a raw asyncio stream (requests pre-encoded)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def request(self, raw: bytes) -> tuple[int, dict[str, float]]:
        """Send one pre-encoded request; return (status, the service's own stages in ms from
        ``Server-Timing``: ``app`` is its whole time). The body is read and dropped."""
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length, srv = 0, {}
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name = name.lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"server-timing":
                srv = server_stages(value.decode())
        if length:
            await self.reader.readexactly(length)
        return status, srv


def encode(method: str, path: str, body: dict[str, Any] | None, port: int) -> bytes:
    """A request as bytes, encoded before the phase starts (the generator only writes them)."""
    data = b"" if body is None else json.dumps(body, separators=(",", ":")).encode()
    head = (f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json"
            f"\r\nContent-Length: {len(data)}\r\n\r\n")  # fmt: skip
    return head.encode() + data


async def _phase(
    port: int,
    incidents: list[bytes],
    rate: float,
    updates: list[bytes],
    updates_per_s: float,
    cap_s: float,
    hold_s: float,
    connections: int,
) -> dict[str, Any]:
    """The open-loop schedule on one event loop: incident i due at i / rate (on a free
    connection of a pool: waiting for one counts in its latency), update j due at
    j / updates_per_s on a connection of its own, one at a time."""
    conns: asyncio.Queue[_Conn] = asyncio.Queue()
    n_conn = min(connections, max(1, len(incidents)))
    opened = []
    for _ in range(n_conn if incidents else 0):
        c = _Conn(*await asyncio.open_connection("127.0.0.1", port))
        opened.append(c)
        conns.put_nowait(c)
    upd_conn = _Conn(*await asyncio.open_connection("127.0.0.1", port))
    loop = asyncio.get_running_loop()
    inc_lat: list[float] = []
    inc_srv: list[dict[str, float]] = []
    upd_lat: list[float] = []
    upd_srv: list[dict[str, float]] = []
    errors: list[str] = []
    t0 = loop.time() + 0.05
    until = t0 + max(cap_s, hold_s)

    async def one(raw: bytes, due: float) -> None:
        c = await conns.get()
        try:
            status, srv = await c.request(raw)
        finally:
            conns.put_nowait(c)
        inc_lat.append(loop.time() - due)
        inc_srv.append(srv)
        if status != 201:
            errors.append(f"incident: HTTP {status}")

    async def incident_load() -> float:
        tasks = []
        for i, raw in enumerate(incidents):
            due = t0 + i / rate
            if due - t0 > cap_s:
                break
            await asyncio.sleep(max(0.0, due - loop.time()))
            tasks.append(asyncio.create_task(one(raw, due)))
        await asyncio.gather(*tasks)
        return loop.time() - t0

    upd_end = [t0]

    async def update_load() -> None:
        try:
            await _updates()
        finally:
            upd_end[0] = loop.time()

    async def _updates() -> None:
        for j, raw in enumerate(updates):
            due = t0 + j / updates_per_s
            if due >= t0 + hold_s and (inc_done.done() or due >= until):
                break  # the incidents are answered (or their cap passed) and hold_s is over
            await asyncio.sleep(max(0.0, due - loop.time()))
            status, srv = await upd_conn.request(raw)
            upd_lat.append(loop.time() - due)
            upd_srv.append(srv)
            if status != 200:
                errors.append(f"unit update: HTTP {status}")

    inc_done: asyncio.Future[float] = loop.create_future()

    async def incidents_then_mark() -> None:
        inc_done.set_result(await incident_load() if incidents else 0.0)

    await asyncio.gather(incidents_then_mark(), update_load())
    wall = inc_done.result()
    upd_wall = upd_end[0] - t0  # the updates' own span (they may end before the incidents)
    for c in [*opened, upd_conn]:
        c.writer.close()
    return {"inc_lat": inc_lat, "inc_srv": inc_srv, "upd_lat": upd_lat, "upd_srv": upd_srv,
            "errors": errors, "wall": wall, "upd_wall": upd_wall}  # fmt: skip


def _phase_child(conn: Any, args: tuple[Any, ...], cpus: list[int] | None) -> None:
    """The load generator's process: its own CPUs (if given), no garbage collection pauses."""
    if cpus:
        os.sched_setaffinity(0, cpus)
    gc.collect()
    gc.freeze()  # what the process inherited is never scanned; the phase makes no cycles
    gc.disable()
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    out = asyncio.run(_phase(*args))
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    out["generator_cpu_s"] = (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)
    conn.send(out)
    conn.close()


def proc_cpu_s(pid: int) -> float:
    """CPU seconds (user + system, all threads) a process and its child processes (the engine's
    worker process) have used: Linux /proc, nan elsewhere."""
    total = 0.0
    try:
        procs = [Path(f"/proc/{pid}/stat")]
        procs += [p for p in Path("/proc").glob("[0-9]*/stat") if _ppid(p) == pid]
        for p in procs:
            fields = p.read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except OSError:
        return float("nan")
    return total


def _ppid(stat: Path) -> int:
    try:
        return int(stat.read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return -1


class Load:
    """One phase: incidents at `rate` per second, 20 unit updates per second."""

    def __init__(
        self,
        base: str,
        net: Any,
        nodes: np.ndarray,
        rng: np.random.Generator,
        unit_ids: list[str],
        server_pid: int,
        client_cpus: list[int] | None,
        connections: int,
    ) -> None:
        self.base = base
        self.port = int(base.rsplit(":", 1)[1])
        self.nodes = nodes
        self.net = net
        self.rng = rng
        self.unit_ids = unit_ids
        self.server_pid = server_pid
        self.client_cpus = client_cpus
        self.connections = connections
        self.n = 0

    def incident_body(self) -> dict[str, Any]:
        self.n += 1
        node = int(self.rng.choice(self.nodes))
        return {
            "id": f"B{self.n:06d}",
            "type": TYPES[self.n % len(TYPES)],
            "location": {
                "lat": float(self.net.node_lat[node]),
                "lon": float(self.net.node_lon[node]),
            },
        }

    def run(
        self,
        rate: float,
        count: int,
        cap_s: float,
        mode: str,
        updates_per_s: float,
        hold_s: float = 0.0,
    ) -> dict[str, Any]:
        """`count` incidents at `rate` per second (time cap `cap_s`) with unit updates meanwhile;
        the updates go on until `hold_s` has passed (``count=0``: updates alone, the baseline).

        The load runs in a process of its own (one asyncio loop, raw keep-alive connections,
        every request encoded beforehand), pinned to `client_cpus` if given."""
        query = "" if mode == "plan" else "?plan=false"
        incidents = [encode("POST", "/v1/incidents" + query, self.incident_body(), self.port)
                     for _ in range(count)]  # fmt: skip
        # enough updates to last until the incidents are answered, however late (the loop
        # stops them then)
        n_upd = int(updates_per_s * (max(cap_s, hold_s) + 60)) + 1
        upd_nodes = self.rng.choice(self.nodes, size=n_upd)
        upd_units = self.rng.integers(len(self.unit_ids), size=n_upd)
        updates = [
            encode("PUT", f"/v1/units/{self.unit_ids[int(u)]}",
                   {"lat": float(self.net.node_lat[int(n)]), "lon": float(self.net.node_lon[int(n)])},
                   self.port)
            for u, n in zip(upd_units, upd_nodes, strict=True)
        ]  # fmt: skip
        ctx = multiprocessing.get_context("fork")
        parent, child = ctx.Pipe()
        args = (self.port, incidents, rate, updates, updates_per_s, cap_s, hold_s, self.connections)
        proc = ctx.Process(target=_phase_child, args=(child, args, self.client_cpus))
        cpu0 = proc_cpu_s(self.server_pid)
        proc.start()
        if not parent.poll(cap_s + hold_s + 120):
            proc.kill()
            raise SystemExit("the load generator did not finish in time")
        res = parent.recv()
        proc.join(timeout=30)
        server_cpu = proc_cpu_s(self.server_pid) - cpu0
        lat, inc_stages = res["inc_lat"], res["inc_srv"]
        upd_lat, upd_stages = res["upd_lat"], res["upd_srv"]
        srv = [x.get("app", float("nan")) for x in inc_stages]
        upd_srv = [x.get("app", float("nan")) for x in upd_stages]
        wall, upd_wall = res["wall"], res["upd_wall"]
        ms = [x * 1e3 for x in lat]
        upd_ms = [x * 1e3 for x in upd_lat]
        errors = res["errors"]
        return {
            "mode": mode,
            "offered_per_s": rate,
            "sent": len(lat),
            "planned": count,
            "wall_s": round(wall, 2),
            "throughput_per_s": round(len(lat) / wall, 1) if lat else 0.0,
            "p50_ms": round(pct(ms, 50), 2),
            "p90_ms": round(pct(ms, 90), 2),
            "p99_ms": round(pct(ms, 99), 2),
            "max_ms": round(max(ms), 2) if ms else None,
            "hold_s": hold_s,
            "server_p50_ms": round(pct(srv, 50), 2),
            "server_p99_ms": round(pct(srv, 99), 2),
            "server_max_ms": round(max(srv), 2) if srv else None,
            "unit_updates": len(upd_lat),
            "unit_updates_per_s": round(len(upd_lat) / upd_wall, 1),
            "unit_update_p50_ms": round(pct(upd_ms, 50), 2),
            "unit_update_p99_ms": round(pct(upd_ms, 99), 2),
            "unit_update_max_ms": round(max(upd_ms), 2) if upd_ms else None,
            "unit_update_server_p50_ms": round(pct(upd_srv, 50), 2),
            "unit_update_server_p99_ms": round(pct(upd_srv, 99), 2),
            "server_stages": tail_stages(inc_stages),
            "unit_update_server_stages": tail_stages(upd_stages),
            "server_cpu_s": round(server_cpu, 2),
            "server_cpu_share": round(server_cpu / upd_wall, 3) if upd_wall else None,
            "generator_cpu_s": round(res["generator_cpu_s"], 2),
            "load_average": [round(x, 2) for x in os.getloadavg()],
            "errors": len(errors),
            "first_error": errors[0] if errors else None,
        }


def library_units(docs: list[dict[str, Any]]) -> list[Unit]:
    """The service's units as the library sees them (same rule as dispatch.service.state)."""
    out = []
    for d in sorted(docs, key=lambda d: d["id"]):
        on_board = d["status"] in ("returning", "en_route")
        out.append(Unit(d["id"], d["vehicle"], d["lat"], d["lon"], status=d["status"],
                        station=d["station"], turnout_s=None if on_board else d["turnout_s"],
                        assigned_priority=d.get("assigned_priority")))  # fmt: skip
    return out


def in_process(
    fleet: Path, nodes: np.ndarray, net: Any, rng: np.random.Generator, n: int
) -> list[dict[str, Any]]:
    """The service's state layer without HTTP: one incident at a time, per durability and mode."""
    from dispatch.service.engine import Engine
    from dispatch.service.state import Service
    from dispatch.service.store import Store

    rows = []
    for durability in ("full", "process"):
        tmp = Path(tempfile.mkdtemp(prefix="dispatch-bench-inproc-"))
        svc = Service(Engine("danang", hospitals=HOSPITALS), Store(tmp / "s.sqlite", durability=durability),
                      fleet=fleet)  # fmt: skip
        for mode in ("plan", "ranked"):
            times = []
            for i in range(n + 5):
                node = int(rng.choice(nodes))
                body = {"id": f"{durability}-{mode}-{i}", "type": TYPES[i % len(TYPES)],
                        "location": {"lat": float(net.node_lat[node]), "lon": float(net.node_lon[node])}}  # fmt: skip
                t = time.perf_counter()
                svc.create_incident(body, plan=mode == "plan")
                svc.flush_pending()  # as the HTTP layer does before answering (the fsync)
                if i >= 5:  # the first few warm up
                    times.append(time.perf_counter() - t)
            uid = f"U{int(rng.integers(len(CLASSES))):02d}"
            upd = []
            for _ in range(n):
                node = int(rng.choice(nodes))
                t = time.perf_counter()
                svc.put_unit(
                    uid, {"lat": float(net.node_lat[node]), "lon": float(net.node_lon[node])}
                )
                svc.flush_pending()
                upd.append(time.perf_counter() - t)
            rows.append({
                "durability": durability, "mode": mode, "n": n,
                "incident_median_ms": round(statistics.median(times) * 1e3, 3),
                "incident_p90_ms": round(float(np.percentile(times, 90)) * 1e3, 3),
                "unit_update_median_ms": round(statistics.median(upd) * 1e3, 3),
            })  # fmt: skip
            print(f"in-process {durability:7s} {mode:6s}: incident {rows[-1]['incident_median_ms']} ms "
                  f"(p90 {rows[-1]['incident_p90_ms']}), unit update {rows[-1]['unit_update_median_ms']} ms",
                  flush=True)  # fmt: skip
        svc.store.close()
    return rows


def check_answers(base: str, load: Load, net: Any, hospitals: Any, n: int) -> dict[str, Any]:
    """Server vs library on the same state: identical answers; in-process time of the library."""
    with httpx.Client(base_url=base, timeout=30) as c:
        units = library_units(c.get("/v1/units").json()["units"])
        records = [{"id": u.id, "vehicle": u.vehicle, "lat": u.lat, "lon": u.lon,
                    "available": u.dispatchable, "turnout_s": u.turnout_s} for u in units]  # fmt: skip
        fleet = net.fleet(records)
        mismatches = 0
        lib_plan, lib_ranked, srv_plan, srv_ranked = [], [], [], []
        app_plan, app_ranked = [], []
        for _ in range(n):
            body = load.incident_body()
            inc = Incident(
                body["id"], body["location"]["lat"], body["location"]["lon"], body["type"]
            )
            t = time.perf_counter()
            r = c.post("/v1/incidents", json=body)
            srv_plan.append(time.perf_counter() - t)
            app_plan.append(server_ms(r) / 1e3)
            got = r.json()
            hour = got["hour"]  # the server's clock (hour of day in the map's time zone)
            t = time.perf_counter()
            rec = recommend(net, inc, units, hospitals=hospitals, routes=False, hour=hour)
            lib_plan.append(time.perf_counter() - t)
            t = time.perf_counter()
            best = net.fastest_units(inc.point, fleet, k=10, hour=hour)
            lib_ranked.append(time.perf_counter() - t)
            want_ranked = [[b.unit, round(b.eta_s, 1)] for b in best]
            if (
                got["recommendation"] != rec.to_dict()
                or [[x["unit"], x["eta_s"]] for x in got["ranked"]] != want_ranked
            ):
                mismatches += 1
            body2 = load.incident_body()
            t = time.perf_counter()
            r2 = c.post("/v1/incidents?plan=false", json=body2)
            srv_ranked.append(time.perf_counter() - t)
            app_ranked.append(server_ms(r2) / 1e3)
    ms = lambda xs: round(statistics.median(xs) * 1e3, 3)  # noqa: E731
    return {
        "checked": n,
        "mismatches": mismatches,
        "sequential_server_plan_median_ms": ms(srv_plan),
        "sequential_app_plan_median_ms": ms(app_plan),
        "sequential_app_ranked_median_ms": ms(app_ranked),
        "library_recommend_median_ms": ms(lib_plan),
        "sequential_server_ranked_median_ms": ms(srv_ranked),
        "library_fastest_units_median_ms": ms(lib_ranked),
    }


def run_engine(
    args: argparse.Namespace,
    engine: str,
    base: str,
    net: Any,
    nodes: np.ndarray,
    rng: np.random.Generator,
    hospitals: Any,
    phases: list[dict[str, Any]],
    checks: list[dict[str, Any]],
    priority: list[dict[str, Any]],
    server_pid: int,
) -> None:
    """The phases on one server (one engine lane); results appended to the lists."""
    load = Load(base, net, nodes, rng, [f"U{i:02d}" for i in range(len(CLASSES))], server_pid,
                args.client_cpus, args.connections)  # fmt: skip
    with httpx.Client(base_url=base, timeout=30) as c:  # warm-up (JIT, CP-SAT, caches)
        for _ in range(20):
            c.post("/v1/incidents", json=load.incident_body())
            c.post("/v1/incidents?plan=false", json=load.incident_body())
    if args.saturate_s > 0:
        # the priority path: unit-update latency alone, then under incidents offered faster
        # than the service computes them (a backlog builds in the engine lane)
        for label, rate in (("updates alone", 0.0), ("saturated", args.saturate_rate)):
            count = int(rate * args.saturate_s)
            res = load.run(max(rate, 1.0), count, args.saturate_s, "plan", args.updates_per_s,
                           hold_s=args.saturate_s)  # fmt: skip
            res["phase"], res["engine"] = label, engine
            priority.append(res)
            print(f"priority {label:13s}: incidents offered {rate:5.0f}/s, served "
                  f"{res['throughput_per_s']:6.1f}/s (p50 {res['p50_ms']} ms); unit updates "
                  f"{res['unit_updates']} at {res['unit_updates_per_s']}/s: p50 "
                  f"{res['unit_update_p50_ms']} ms, p99 {res['unit_update_p99_ms']} ms, max "
                  f"{res['unit_update_max_ms']} ms (in the service p50 "
                  f"{res['unit_update_server_p50_ms']}, p99 {res['unit_update_server_p99_ms']} ms)"
                  f"  errors {res['errors']}", flush=True)  # fmt: skip
        alone, sat = priority[-2:]
        if alone["unit_update_p99_ms"] > 0:
            ratio = sat["unit_update_p99_ms"] / alone["unit_update_p99_ms"]
            res_ratio = round(ratio, 2)
            sat["update_p99_ratio_to_alone"] = res_ratio
            print(f"priority: update p99 saturated / alone = {res_ratio}", flush=True)
    for rate in args.rates:
        for mode in args.modes:
            res = load.run(rate, int(rate * args.requests_per_rate_s), args.cap_s, mode,
                           args.updates_per_s)  # fmt: skip
            res["engine"] = engine
            phases.append(res)
            print(f"{mode:6s} offered {rate:5.0f}/s: sent {res['sent']:5d} in {res['wall_s']:6.2f} s "
                  f"({res['throughput_per_s']:6.1f}/s)  p50 {res['p50_ms']:8.2f} ms  p99 "
                  f"{res['p99_ms']:8.2f} ms  (in the service: p50 {res['server_p50_ms']}, p99 "
                  f"{res['server_p99_ms']} ms)  updates {res['unit_updates_per_s']}/s "
                  f"(p99 {res['unit_update_p99_ms']} ms)  errors {res['errors']}; CPU s: server "
                  f"{res['server_cpu_s']}, generator {res['generator_cpu_s']}; load average "
                  f"{res['load_average'][0]}", flush=True)  # fmt: skip
            print(f"       slowest 1% in the service, mean ms per stage: "
                  f"{res['server_stages'].get('slowest_mean_ms')}", flush=True)  # fmt: skip
            chk = check_answers(base, load, net, hospitals, args.check)
            chk["engine"], chk["mode"], chk["offered_per_s"] = engine, mode, rate
            checks.append(chk)
            print(f"       answers: {chk['mismatches']} of {chk['checked']} differ from the library; "
                  f"sequential server {chk['sequential_server_plan_median_ms']} ms (plan) / "
                  f"{chk['sequential_server_ranked_median_ms']} ms (ranked) [in the service "
                  f"{chk['sequential_app_plan_median_ms']} / {chk['sequential_app_ranked_median_ms']} ms] "
                  "vs library in-process "
                  f"{chk['library_recommend_median_ms']} / {chk['library_fastest_units_median_ms']} ms",
                  flush=True)  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rates", type=float, nargs="*", default=[100.0, 30.0],
                    help="offered incident rates of the latency phases (none: priority only)")  # fmt: skip
    ap.add_argument("--modes", nargs="+", default=["plan", "ranked"], choices=["plan", "ranked"])
    ap.add_argument("--requests-per-rate-s", type=float, default=10.0,
                    help="requests per phase = rate x this (default 10 s worth)")  # fmt: skip
    ap.add_argument("--cap-s", type=float, default=30.0, help="time cap per phase, seconds")
    ap.add_argument("--updates-per-s", type=float, default=20.0)
    ap.add_argument("--check", type=int, default=30, help="answers checked against the library")
    ap.add_argument("--seed", type=int, default=114115)
    ap.add_argument("--durability", choices=["full", "process"], default="full")
    ap.add_argument("--in-process", type=int, default=50,
                    help="incidents timed in the state layer without HTTP, per setting (0: skip)")  # fmt: skip
    ap.add_argument("--workers", choices=["loop", "pool"], default="loop")
    ap.add_argument("--engines", nargs="+", choices=["thread", "process"],
                    default=["thread", "process"], help="engine lanes measured (a server each)")  # fmt: skip
    ap.add_argument("--saturate-rate", type=float, default=300.0,
                    help="incidents per second offered in the priority phase (above capacity)")  # fmt: skip
    ap.add_argument("--saturate-s", type=float, default=5.0,
                    help="seconds of the priority phases: updates alone, then saturated (0: skip)")  # fmt: skip
    ap.add_argument("--server-cpus", type=int, nargs="+", default=None, metavar="CPU",
                    help="pin the server to these CPUs (default: not pinned)")  # fmt: skip
    ap.add_argument("--client-cpus", type=int, nargs="+", default=None, metavar="CPU",
                    help="pin the load generator (and this process) to these CPUs")  # fmt: skip
    ap.add_argument("--connections", type=int, default=64,
                    help="keep-alive connections of the incident load (open loop over a pool)")  # fmt: skip
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "service.json"))
    args = ap.parse_args(argv)
    if args.client_cpus:
        os.sched_setaffinity(0, args.client_cpus)
    rng = np.random.default_rng(args.seed)
    net = dispatch.load_network("danang")
    hospitals = read_hospitals(HOSPITALS)
    tmp = Path(tempfile.mkdtemp(prefix="dispatch-bench-"))
    fleet = tmp / "fleet.csv"
    nodes = road_nodes(net)
    write_fleet(net, nodes, rng, fleet)
    inproc = in_process(fleet, nodes, net, rng, args.in_process) if args.in_process else []
    phases, checks = [], []
    priority: list[dict[str, Any]] = []
    for engine in args.engines:
        port = free_port()
        proc = start(tmp / f"state-{engine}.sqlite", fleet, port, args.durability, args.workers,
                     engine, args.server_cpus)  # fmt: skip
        print(f"--- engine in a {engine} (--engine {engine})", flush=True)
        try:
            run_engine(args, engine, f"http://127.0.0.1:{port}", net, nodes, rng, hospitals,
                       phases, checks, priority, proc.pid)  # fmt: skip
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    out = {
        "benchmark": "service",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()} {platform.processor() or ''} {os.cpu_count()} CPUs".strip(),
        "python": platform.python_version(),
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "map": "danang",
        "units": len(CLASSES),
        "settings": vars(args),
        "in_process": inproc,
        "priority": priority,
        "phases": phases,
        "answer_checks": checks,
    }
    atomic_write(args.out, json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.out}")
    bad = sum(c["mismatches"] for c in checks) + sum(p["errors"] for p in phases + priority)
    if bad:
        print(f"FAILED: {bad} mismatches or errors", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
