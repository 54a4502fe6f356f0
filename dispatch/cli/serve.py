"""``dispatch serve``: the live dispatch service (HTTP API, durable state, map console)."""

from __future__ import annotations

import argparse
import gc
import math
import sys
from pathlib import Path

from dispatch.cli import quiet_arg
from dispatch.errors import DispatchError

DEFAULT_STATE = "dispatch-state.sqlite"


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg,unused-ignore]
    """Add the ``serve`` subcommand."""
    p = sub.add_parser(
        "serve",
        help="run the live dispatch service (HTTP API + map console)",
        description=(
            "Load the network once, keep the fleet, incidents and closures in memory and in a "
            "SQLite state file, answer 'who goes?' over HTTP (OpenAPI at /docs), console at /."
        ),
    )
    p.add_argument("map", help="short name (danang, hcmc, monaco, ...) or path to an OSM file")
    p.add_argument("--fleet", required=True, help="fleet CSV (seeds an empty state file)")
    quiet_arg(p)
    p.add_argument("--hospitals", default=None, help="receiving hospitals CSV")
    p.add_argument("--run-cards", default=None, help="run-card TOML (default: built-in)")
    p.add_argument("--state", default=DEFAULT_STATE, help=f"state file (default {DEFAULT_STATE})")
    p.add_argument(
        "--durability",
        choices=("full", "process"),
        default="full",
        help="full (default): an acknowledged change survives a power cut (the log is fsynced "
        "before the answer; concurrent changes share an fsync); process: it survives the service "
        "being killed, not the machine losing power (no fsync)",
    )
    p.add_argument(
        "--workers",
        choices=("loop", "pool"),
        default="loop",
        help="loop (default): requests computed one at a time on the event loop's thread, which "
        "owns the engine; pool: a thread pool, the engine and state behind a lock",
    )
    p.add_argument(
        "--engine",
        choices=("thread", "process"),
        default="process",
        help="where recommendations are computed: process (default): in a worker process with "
        "its own copy of the network, so that HTTP, state changes and unit updates keep a GIL of "
        "their own (full answer p99 18-35 ms at 100 incidents/s on 2 cores, benchmarks/README.md); "
        "thread: in this process, one at a time (Da Nang: 213 instead of 399 MB, ready in 2.2 "
        "instead of 3.5 s; p99 24-313 ms there)",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help="port (default 8080; 0: any free port)")
    p.add_argument("--token-file", default=None, help="file holding the bearer token for writes")
    p.add_argument(
        "--max-radius-m",
        type=float,
        default=300.0,
        help="caller-location radius beyond which a location is 'unresolved' (default 300)",
    )
    p.add_argument(
        "--time-zone",
        default=None,
        metavar="ZONE",
        help="IANA time zone of the clock that gives a request without 'hour' its hour of day "
        "(speed bands, closure windows); default: the map's (danang, hcmc: Asia/Ho_Chi_Minh), "
        "UTC for a map given by path (with a warning)",
    )
    p.add_argument(
        "--no-clock",
        action="store_true",
        help="answer requests without 'hour' at off-peak speeds with every closure in force "
        "(the library's hour=None) instead of the hour of day now",
    )
    p.add_argument(
        "--coverage-warning",
        action="store_true",
        help="add the coverage-hole warning to every recommendation: the share of demand (a grid "
        "over the roads) each candidate's class covers within target before and after sending it",
    )
    p.add_argument("--coverage-target-s", type=float, default=480.0, metavar="S",
                   help="coverage target, turnout included (default 480)")  # fmt: skip
    p.add_argument("--coverage-cell-m", type=float, default=400.0, metavar="M",
                   help="demand grid cell over the roads (default 400)")  # fmt: skip
    p.set_defaults(func=cmd_serve)


def _read_token(path: str) -> str:
    try:
        token = Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise DispatchError(f"--token-file {path!r}: cannot read it: {exc}") from None
    if len(token) < 16 or any(c.isspace() for c in token):
        raise DispatchError(
            f"--token-file {path!r}: the token must be one word of at least 16 characters"
        )
    return token


def cmd_serve(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from dispatch.service.app import create_app
        from dispatch.service.clock import check_time_zone, utc_now
        from dispatch.service.engine import Engine
        from dispatch.service.lane import ProcessLane
        from dispatch.service.state import Service
        from dispatch.service.store import Store
    except ModuleNotFoundError as exc:
        raise DispatchError(
            f"dispatch serve needs {exc.name!r}: pip install -e '.[service]'"
        ) from None
    if not 0 <= args.port <= 65535:
        raise DispatchError(f"--port must be in [0, 65535], got {args.port}")
    token = None if args.token_file is None else _read_token(args.token_file)
    if token is None and args.host not in ("127.0.0.1", "localhost", "::1"):
        print(
            f"dispatch: warning: binding to {args.host} without --token-file: "
            "anyone who can reach this port can change the state",
            file=sys.stderr,
        )
    for name in ("coverage_target_s", "coverage_cell_m", "max_radius_m"):
        value = getattr(args, name)
        if not (math.isfinite(value) and value > 0):
            raise DispatchError(f"--{name.replace('_', '-')} must be > 0, got {value:g}")
    if args.time_zone is not None:
        check_time_zone(args.time_zone)
    settings = {
        "map_name": args.map, "hospitals": args.hospitals, "run_cards": args.run_cards,
        "coverage": args.coverage_warning, "coverage_target_s": args.coverage_target_s,
        "coverage_cell_m": args.coverage_cell_m,
    }  # fmt: skip
    engine = Engine(**settings)
    store = Store(args.state, durability=args.durability)
    lane = ProcessLane(settings) if args.engine == "process" else None
    service = Service(
        engine, store, fleet=args.fleet, max_radius_m=args.max_radius_m,
        time_zone=args.time_zone, now=None if args.no_clock else utc_now, lane=lane,
    )  # fmt: skip
    if service.time_zone_source == "default" and not args.no_clock:
        print(
            f"dispatch: warning: no known time zone for map {args.map!r}: the clock reads "
            f"{service.time_zone} (give --time-zone, e.g. Asia/Ho_Chi_Minh)",
            file=sys.stderr,
        )
    # everything the first requests would build (hierarchy, customizations of every speed band,
    # kernels, solver) is built now, before the port answers; then the start-up objects (the
    # network, the library) are frozen out of the garbage collector's scans: no request pays for
    # either (issue 10: both showed up in the latency tail)
    warmed = service.warm()
    gc.collect()
    gc.freeze()
    app = create_app(service, token=token, workers=args.workers)
    clock = "no clock" if service.clock is None else f"clock {service.time_zone}"
    clock += f", engine in a {args.engine}"
    print(
        f"dispatch: serving {engine.summary()['map']} with {len(service.units)} units, "
        f"state {args.state} (change {service.seq}), {clock}, on http://{args.host}:{args.port}/ "
        f"(warmed up in {warmed['seconds']:.1f} s)",
        file=sys.stderr,
    )
    try:
        uvicorn.run(
            app,
            host=args.host,
            port=args.port,
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=5,
        )  # fmt: skip  (open change streams end)
    finally:  # the engine's worker process (--engine process) ends with the service
        service.lane.close()
        store.close()
    return 0
