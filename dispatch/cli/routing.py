"""``dispatch nearest`` and ``dispatch route``."""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any

from dispatch.cli import hour_arg, quiet_arg
from dispatch.errors import DispatchError, FleetError
from dispatch.io.fleet import CallRow, parse_latlon, read_calls, read_fleet_csv
from dispatch.io.text import display_name
from dispatch.model import VEHICLE_CLASSES
from dispatch.roads.network import Network, load_network
from dispatch.roads.profiles import check_vehicle


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "map", help="short name (danang, hcmc, monaco, liechtenstein, campo_grande) or path"
    )
    p.add_argument(
        "--hour", type=hour_arg, default=None, help="clock hour (speed bands, closure windows)"
    )
    p.add_argument("--closures", default=None, help="GeoJSON file of closures (polygons)")
    quiet_arg(p)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg,unused-ignore]
    """Add ``nearest`` and ``route``."""
    p = sub.add_parser("nearest", help="the k units that reach a call first")
    _common(p)
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--call", help="LAT,LON of one call")
    g.add_argument("--calls", help="CSV of calls: id,lat,lon")
    p.add_argument(
        "--fleet",
        required=True,
        help="CSV of units: id,vehicle,lat,lon[,status,station,turnout_s] (- for standard input)",
    )
    p.add_argument("-k", type=int, default=3, help="how many units (default 3)")
    p.add_argument(
        "--routes", action="store_true", help="include each unit's route as GeoJSON (with --json)"
    )
    p.add_argument("--json", action="store_true", help="JSON lines on stdout")
    p.set_defaults(func=cmd_nearest)
    r = sub.add_parser("route", help="the fastest route between two points")
    _common(r)
    r.add_argument("--from", dest="origin", required=True, help="LAT,LON")
    r.add_argument("--to", dest="destination", required=True, help="LAT,LON")
    r.add_argument("--vehicle", default="ambulance", help=f"one of {', '.join(VEHICLE_CLASSES)}")
    r.add_argument("--geojson", action="store_true", help="print the route as GeoJSON")
    r.set_defaults(func=cmd_route)


def _network(args: argparse.Namespace) -> Network:
    net = load_network(args.map)
    if args.closures:
        net.close_geojson(args.closures)
    return net


def _mmss(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "unreachable"
    m, s = divmod(int(round(seconds)), 60)
    return f"{m}:{s:02d}"


def cmd_nearest(args: argparse.Namespace) -> int:
    """The k fastest units to each call. With ``--calls``, every good call is answered and each bad
    one (malformed row, point off the map) is reported (a JSON line with an ``error`` field with
    ``--json``, else a line on standard error); the exit code is 2 if any call failed."""
    if args.k < 1:
        raise FleetError(f"-k {args.k} must be a positive integer")
    units = read_fleet_csv(args.fleet)
    rows: list[CallRow]
    if args.call:
        lat, lon = parse_latlon(args.call, name="--call")
        rows = [CallRow(0, "call", {"id": "call", "lat": lat, "lon": lon}, None)]
    else:
        rows = read_calls(args.calls)
    net = _network(args)
    failed = 0
    for row in rows:
        call = row.call
        error = row.error
        best: list[Any] = []
        if call is not None:
            try:
                best = net.fastest_units((call["lat"], call["lon"]), units, k=args.k, hour=args.hour,
                                         routes=args.routes)  # fmt: skip
            except FleetError as exc:  # a unit of the file is unusable: the whole fleet is
                raise FleetError(f"--fleet {display_name(args.fleet)}: {exc}") from None
            except DispatchError as exc:
                if args.call:
                    raise
                error = f"call {row.id!r} (line {row.line}): {exc}"
        if error is not None:
            failed += 1
            if args.json:
                print(json.dumps({"call": row.id, "error": error}))
            else:
                print(f"dispatch: error: {error}", file=sys.stderr)
            continue
        assert call is not None
        reach = net.reach((call["lat"], call["lon"]))
        if all(r.kind == "drive" for r in reach.values()):
            reach = {}  # a call on a road every class drives to: the answer as before
        if args.json:
            rec: dict[str, Any] = {"call": call["id"], "units": [u.as_dict() for u in best]}
            if not best:
                rec["unreachable"] = True
            if reach:  # which class reaches the call, and how (issue 12)
                rec["reach"] = {v: r.as_dict() for v, r in reach.items()}
            print(json.dumps(rec))
            continue
        print(f"call {call['id']} at {call['lat']:.6f},{call['lon']:.6f}")
        if not best:
            print("  unreachable: no available unit can reach this call (closed roads?)")
        for i, u in enumerate(best, 1):
            walk = ""
            if u.reach != "drive" and u.access_point is not None:
                walk = (f" + walk {u.walk_m:.0f} m {u.walk_s:.0f} s from "
                        f"{u.access_point[0]:.6f},{u.access_point[1]:.6f}")  # fmt: skip
            flag = "  [beyond reach]" if u.reach == "beyond_reach" else ""
            print(f"  {i}. {u.unit:<12} {u.vehicle:<12} ETA {_mmss(u.eta_s):>6} "
                  f"(turnout {u.turnout_s:.0f} s + drive {u.drive_s:.0f} s{walk}){flag}")  # fmt: skip
        for v, r in reach.items():
            if r.kind != "drive":
                print(f"  {v}: {r.kind}; {r.reason}")
    if failed:
        sys.stdout.flush()
        print(f"dispatch: error: {failed} of {len(rows)} calls failed (see above)", file=sys.stderr)
        return 2
    return 0


def cmd_route(args: argparse.Namespace) -> int:
    check_vehicle(args.vehicle)
    o = parse_latlon(args.origin, name="--from")
    d = parse_latlon(args.destination, name="--to")
    net = _network(args)
    r = net.route(o, d, vehicle=args.vehicle, hour=args.hour)
    if args.geojson:
        print(json.dumps(r.geojson()))
        return 0
    if not math.isfinite(r.eta_s):
        print(f"unreachable: no {args.vehicle} route from {o} to {d}")
        return 0
    print(f"{args.vehicle}: ETA {_mmss(r.eta_s)} ({r.eta_s:.1f} s), {r.length_m / 1000:.2f} km, "
          f"{len(r.nodes)} intersections")  # fmt: skip
    return 0
