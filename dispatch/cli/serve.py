"""``dispatch serve``: the live dispatch service (HTTP API, durable state, map console)."""

from __future__ import annotations

import argparse
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
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help="port (default 8080; 0: any free port)")
    p.add_argument("--token-file", default=None, help="file holding the bearer token for writes")
    p.add_argument(
        "--max-radius-m",
        type=float,
        default=300.0,
        help="caller-location radius beyond which a location is 'unresolved' (default 300)",
    )
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
        from dispatch.service.engine import Engine
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
    engine = Engine(args.map, hospitals=args.hospitals, run_cards=args.run_cards)
    store = Store(args.state, durability=args.durability)
    service = Service(engine, store, fleet=args.fleet, max_radius_m=args.max_radius_m)
    app = create_app(service, token=token, workers=args.workers)
    print(
        f"dispatch: serving {engine.summary()['map']} with {len(service.units)} units, "
        f"state {args.state} (change {service.seq}), on http://{args.host}:{args.port}/",
        file=sys.stderr,
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)
    return 0
