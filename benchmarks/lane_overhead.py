"""What handing a computation to the engine's worker process costs (``dispatch serve --engine
process``): the pipe lane against the executor lane it replaced, and the thread lane.

One Da Nang service state (50 units at random road nodes, Da Nang hospitals; its snapshots share
the ``Unit`` objects of unchanged units, as the live service's do); for each of ``--requests``
incidents (random road nodes, random types, the full answer at 10:00) a snapshot is taken and the
same request goes to each lane in turn (order rotated per request); between requests a unit moves
now and then (``--moves-per-request``, 0.2 = 20 AVL fixes per second at 100 incidents per second).

Lanes:

* ``pipe``: :class:`dispatch.service.lane.ProcessLane` (a persistent duplex pipe, the calling
  thread waits for the answer itself; only the changed units and closure records travel).
* ``executor``: the lane of main up to session 6 (reproduced here as the reference): a
  ``ProcessPoolExecutor(max_workers=1)``, the whole unit list and the closure records pickled with
  every request, the hand-over through the executor's threads.
* ``thread``: :class:`dispatch.service.lane.ThreadLane` (the engine in the calling thread).

Two answers, taken in turn (``--modes``): ``plan``, the full answer (run-card plan, hospital,
ranked units), and ``ranked`` (``?plan=false``). Per lane and answer: the hand-over (``run()``'s wall time minus the engine's own time in the worker, measured
there around the engine call), the CPU time the calling process spent per request (its every
thread: ``time.process_time`` around ``run()``; for the thread lane that is the computation
itself), the bytes sent per request. Every answer is compared with the thread lane's (exit status
1 if one differs).

    python benchmarks/lane_overhead.py --requests 300

Writes ``benchmarks/results/lane_overhead.json`` (``--out``) with the date and the machine. No test
asserts a time.
"""

from __future__ import annotations

import argparse
import gc
import json
import multiprocessing
import os
import pickle
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from service import HOSPITALS, TYPES, road_nodes, write_fleet  # noqa: E402

import dispatch  # noqa: E402
from dispatch.decide.incidents import Incident  # noqa: E402
from dispatch.io.atomic import atomic_write  # noqa: E402
from dispatch.service.engine import Engine  # noqa: E402
from dispatch.service.lane import ProcessLane, ThreadLane  # noqa: E402
from dispatch.service.state import Service  # noqa: E402
from dispatch.service.store import Store  # noqa: E402

HOUR = 10.0  # off-peak in Da Nang
OUT = ROOT / "benchmarks" / "results" / "lane_overhead.json"

# --- the executor lane of main up to session 6 (the reference) --------------------------------

_ENGINE: Engine | None = None


def _start_worker(settings: dict[str, Any]) -> None:
    global _ENGINE
    _ENGINE = Engine(**settings)


def _work(
    method: str, specs: Sequence[Mapping[str, Any]], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[Any, float]:
    engine = _ENGINE
    assert engine is not None
    engine.sync_closures(specs)
    t = time.perf_counter()
    out = getattr(engine, method)(*args, **kwargs)
    compute_s = time.perf_counter() - t
    if method == "warm":
        gc.collect()
        gc.freeze()
    return out, compute_s


class ExecutorLane:
    """main's ``ProcessLane`` until session 6, plus the engine's own time in the answer."""

    def __init__(self, settings: Mapping[str, Any]) -> None:
        self.pool = ProcessPoolExecutor(
            max_workers=1,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_worker,
            initargs=(dict(settings),),
        )
        self.compute_s = 0.0
        self.sent_bytes = 0
        self.pool.submit(_work, "summary", (), (), {}).result()

    def run(self, method: str, closures: Any, *args: Any, **kwargs: Any) -> Any:
        job = self.pool.submit(_work, method, list(closures[1]), args, kwargs)
        out, self.compute_s = job.result()
        return out

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


class Counting:
    """The pipe lane's end of its pipe, counting the bytes sent."""

    def __init__(self, conn: Any) -> None:
        self.conn, self.sent_bytes = conn, 0

    def send_bytes(self, data: bytes) -> None:
        self.sent_bytes += len(data)
        self.conn.send_bytes(data)

    def recv_bytes(self) -> bytes:
        data: bytes = self.conn.recv_bytes()
        return data

    def close(self) -> None:
        self.conn.close()


def summary(xs: list[float]) -> dict[str, float]:
    a = np.asarray(xs) * 1e3
    return {
        "median_ms": round(float(np.median(a)), 4),
        "p90_ms": round(float(np.percentile(a, 90)), 4),
        "mean_ms": round(float(a.mean()), 4),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--requests", type=int, default=300, help="timed requests (default 300)")
    ap.add_argument("--warmup", type=int, default=20, help="untimed requests first (default 20)")
    ap.add_argument("--moves-per-request", type=float, default=0.2)
    ap.add_argument(
        "--modes",
        nargs="+",
        choices=["plan", "ranked"],
        default=["plan", "ranked"],
        help="answers, taken in turn: plan = the full answer, ranked = ?plan=false",
    )
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    if args.requests < 1:
        raise SystemExit("--requests must be >= 1")
    rng = np.random.default_rng(args.seed)
    net = dispatch.load_network("danang")
    nodes = road_nodes(net)
    tmp = Path(tempfile.mkdtemp(prefix="dispatch-lane-"))
    fleet_csv = tmp / "fleet.csv"
    write_fleet(net, nodes, rng, fleet_csv)
    settings = {"map_name": "danang", "hospitals": HOSPITALS}
    service = Service(Engine(**settings), Store(":memory:"), fleet=fleet_csv, now=None)
    t0 = time.perf_counter()
    lanes: dict[str, Any] = {
        "pipe": ProcessLane(settings),
        "executor": ExecutorLane(settings),
        "thread": ThreadLane(service.engine),
    }
    lanes["pipe"]._conn = counting = Counting(lanes["pipe"]._conn)
    print(f"lanes started in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    units, closures, _ = service.snapshot()
    for lane in lanes.values():
        lane.run("warm", closures, units)
    gc.collect()
    gc.freeze()
    unit_ids = [u.id for u in units]
    names = list(lanes)
    keys = [(m, k) for m in args.modes for k in names]
    wall: dict[tuple[str, str], list[float]] = {k: [] for k in keys}
    handover: dict[tuple[str, str], list[float]] = {k: [] for k in keys}
    cpu: dict[tuple[str, str], list[float]] = {k: [] for k in keys}
    sent: dict[tuple[str, str], list[int]] = {k: [] for k in keys}
    differ = 0
    moves = 0.0
    load_before = os.getloadavg()
    t_start = time.perf_counter()
    total = args.warmup + args.requests
    for i in range(total):
        moves += args.moves_per_request
        while moves >= 1.0:  # an AVL fix: one unit to a random road node
            moves -= 1.0
            n = int(rng.choice(nodes))
            uid = unit_ids[int(rng.integers(len(unit_ids)))]
            lat, lon = float(net.node_lat[n]), float(net.node_lon[n])
            service.put_unit(uid, {"lat": lat, "lon": lon})
        n = int(rng.choice(nodes))
        kind = TYPES[int(rng.integers(len(TYPES)))]
        inc = Incident(f"I{i}", float(net.node_lat[n]), float(net.node_lon[n]), kind)
        mode = args.modes[i % len(args.modes)]
        kw = {"hour": HOUR, "plan": mode == "plan"}
        units, closures, _ = service.snapshot()
        answers: dict[str, Any] = {}
        for k in range(len(names)):
            name = names[(i + k) % len(names)]
            lane = lanes[name]
            before = counting.sent_bytes
            c0, t = time.process_time(), time.perf_counter()
            answers[name] = lane.run("recommend", closures, inc, units, **kw)
            dt, dc = time.perf_counter() - t, time.process_time() - c0
            if i < args.warmup:
                continue
            key = (mode, name)
            wall[key].append(dt)
            cpu[key].append(dc)
            handover[key].append(0.0 if name == "thread" else dt - lane.compute_s)
            if name == "pipe":
                sent[key].append(counting.sent_bytes - before)
            elif name == "executor":  # what the executor pickles for this request
                sent[key].append(
                    len(pickle.dumps((_work, "recommend", list(closures[1]), (inc, units), kw)))
                )
        if any(answers[k] != answers["thread"] for k in names):
            differ += 1
    elapsed_s = time.perf_counter() - t_start
    load_after = os.getloadavg()
    for lane in lanes.values():
        lane.close()
    rows: dict[str, dict[str, Any]] = {m: {} for m in args.modes}
    for mode, name in keys:
        key = (mode, name)
        rows[mode][name] = {
            "requests": len(wall[key]),
            "run": summary(wall[key]),
            "handover": summary(handover[key]),
            "server_cpu_per_request": summary(cpu[key]),
            **({"sent_bytes_median": int(statistics.median(sent[key]))} if sent[key] else {}),
        }
    for mode in args.modes:
        r = rows[mode]
        r["handover_median_ratio_executor_to_pipe"] = round(
            r["executor"]["handover"]["median_ms"] / r["pipe"]["handover"]["median_ms"], 2
        )
        r["server_cpu_ratio_executor_to_pipe"] = round(
            r["executor"]["server_cpu_per_request"]["mean_ms"]
            / r["pipe"]["server_cpu_per_request"]["mean_ms"],
            2,
        )
    out = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()} {os.cpu_count()} CPUs, {platform.platform()}",
        "python": platform.python_version(),
        "command": "python benchmarks/lane_overhead.py " + " ".join(sys.argv[1:]),
        "note": "shared machine: load average before/after the timed loop below",
        "load_average_before_after": [round(load_before[0], 2), round(load_after[0], 2)],
        "elapsed_s": round(elapsed_s, 1),
        "requests": args.requests,
        "units": len(unit_ids),
        "moves_per_request": args.moves_per_request,
        "answers_differing_from_thread_lane": differ,
        "modes": rows,
    }
    for mode in args.modes:
        for name in names:
            r = rows[mode][name]
            print(
                f"{mode:6s} {name:9s} run median {r['run']['median_ms']:.3f} ms, hand-over median "
                f"{r['handover']['median_ms']:.3f} ms (p90 {r['handover']['p90_ms']:.3f}), "
                f"server CPU {r['server_cpu_per_request']['mean_ms']:.3f} ms/request"
                + (f", {r['sent_bytes_median']} B sent" if "sent_bytes_median" in r else "")
            )
    print(f"answers differing from the thread lane's: {differ}")
    atomic_write(args.out, json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.out}", file=sys.stderr)
    return 1 if differ else 0


if __name__ == "__main__":
    raise SystemExit(main())
