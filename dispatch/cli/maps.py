"""``dispatch map info|export|fetch``."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

from dispatch.cli import hour_arg, quiet_arg
from dispatch.io.atomic import atomic_open
from dispatch.io.paths import check_output_dir, check_output_file
from dispatch.roads.network import load_network
from dispatch.roads.profiles import VEHICLE_CLASSES, check_vehicle


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg,unused-ignore]
    """Add the ``map`` subcommand group."""
    p = sub.add_parser("map", help="inspect, export or fetch a map")
    msub = p.add_subparsers(dest="map_command", metavar="ACTION")
    msub.required = True
    info = msub.add_parser(
        "info",
        help="nodes, arcs, bbox, reachable share, restrictions and barriers per class, facilities",
    )
    info.add_argument(
        "map", help="short name (danang, hcmc, monaco, liechtenstein, campo_grande) or path"
    )
    info.add_argument("--json", action="store_true", help="print JSON")
    info.add_argument("--rebuild", action="store_true", help="recompile, ignoring the cache")
    quiet_arg(info)
    info.set_defaults(func=cmd_info)
    exp = msub.add_parser("export", help="write nodes.csv and edges.csv of a class's network")
    exp.add_argument("map")
    exp.add_argument("--vehicle", default="ambulance", help=f"one of {', '.join(VEHICLE_CLASSES)}")
    exp.add_argument("--hour", type=hour_arg, default=None, help="clock hour for speed bands")
    exp.add_argument("--out", required=True, help="output folder")
    quiet_arg(exp)
    exp.set_defaults(func=cmd_export)
    fetch = msub.add_parser("fetch", help="download a place's streets with osmnx (needs network)")
    fetch.add_argument("place", help='e.g. "Hai Chau, Da Nang, Vietnam"')
    fetch.add_argument("--out", required=True, help="output .osm file")
    fetch.set_defaults(func=cmd_fetch)


def cmd_info(args: argparse.Namespace) -> int:
    net = load_network(args.map, rebuild=args.rebuild)
    s = net.summary()
    if args.json:
        json.dump(s, sys.stdout, indent=2)
        print()
        return 0
    bb = s["bbox"]
    print(f"map          {s['map']}")
    print(f"nodes        {s['nodes']:,}   arcs {s['arcs']:,} ({s['contraflow_arcs']:,} contraflow)   "
          f"road length {s['length_km']:,} km")  # fmt: skip
    print(
        f"bbox         lat {bb['min_lat']:.5f}..{bb['max_lat']:.5f}  lon {bb['min_lon']:.5f}..{bb['max_lon']:.5f}"
    )
    print(f"read         {s['ways_read']:,} ways, {s['road_ways']:,} roads, {s['segments']:,} segments, "
          f"{s['dropped_node_refs']:,} references to missing nodes dropped")  # fmt: skip
    print(f"kept         largest strongly connected part: {s['nodes_in_scc']:,} of {s['nodes_before_scc']:,} "
          f"road nodes (dropped share {s['dropped_share']:.1%})")  # fmt: skip
    print("reachable    " + "  ".join(f"{v} {x:.1%}" for v, x in s["reachable_share"].items()))
    r = s.get("turn_restrictions")
    if r is not None:
        per = "  ".join(f"{v} {n}" for v, n in r["applied_per_class"].items())
        print(f"restrictions {r['applied']:,} of {r['relations']:,} turn restriction relations applied "
              f"({r['via_way']:,} via ways; {r['conditional_skipped']:,} conditional and "
              f"{r['unresolved']:,} unresolvable skipped)")  # fmt: skip
        print(f"  per class  {per}")
        print(
            "barriers     nodes that stop a class: "
            + "  ".join(f"{v} {n}" for v, n in s["barriers_per_class"].items())
        )
        print(f"expanded     {s['expanded_nodes']:,} nodes added for barriers, restrictions and "
              f"turn costs; {s['restricted_access_ways']:,} private/destination ways slowed; "
              f"{s['weight_signs_not_applied']:,} street maxweight signs read as truck bans")  # fmt: skip
    d = s.get("node_delays")
    if d is not None:
        gates = "  ".join(f"{v} {n}" for v, n in d["gates_passable_per_class"].items())
        print(f"delays       {d['signals_on_network']:,} traffic signals ({d['signals_directional']:,} "
              f"tagged one direction, {d['signals_direction_inferred']:,} approach signals "
              f"inferred), {d['stops_on_network']:,} stop signs; gates passed at a delay: {gates}")  # fmt: skip
    tc = s.get("turn_costs")
    if tc is not None:
        near, far = ("right", "left") if tc["driving_side"] == "right" else ("left", "right")
        k = tc["turn_arcs"]
        costs = "  ".join(f"{v} {p.near_turn_s:g}/{p.far_turn_s:g}/{p.u_turn_s:g}"
                          for v, p in net.settings.profiles.items())  # fmt: skip
        print(f"turn costs   {tc['junctions']:,} junctions ({tc['mode']}; {tc['driving_side']}-hand "
              f"traffic): {k['straight']:,} straight, {k['near']:,} {near}, {k['far']:,} {far}, "
              f"{k['u_turn']:,} U-turn arcs")  # fmt: skip
        print(f"  s per turn {near}/{far}/U-turn: {costs}")
    h = s.get("hgv_bans")
    if h is not None:
        who = ", ".join(h["not_applied_to"]) or "none"
        print(f"hgv bans     {h['ways']:,} ways and {h.get('nodes', 0):,} barrier nodes with an hgv "
              f"ban; not applied to: {who}")  # fmt: skip
    print(f"facilities   {len(s['facilities'])} tagged in the OSM data")
    for f in s["facilities"]:
        print(
            f"  {f['kind']:<18} {f['name'][:48]:<48} {f['lat']:.6f},{f['lon']:.6f}  {f['osm_id']}"
        )
    return 0


def _write_csv_atomic(path: Path, header: list[str], rows: object) -> None:
    with atomic_open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)  # type: ignore[arg-type]


def cmd_export(args: argparse.Namespace) -> int:
    check_vehicle(args.vehicle)
    out = check_output_dir(args.out, "--out")  # before the work: a file, a device, under a file
    net = load_network(args.map)
    out.mkdir(parents=True, exist_ok=True)
    tab = net.edge_table(args.vehicle, hour=args.hour)
    _write_csv_atomic(out / "nodes.csv", ["node", "lat", "lon"],
                      zip(net.node_osmid.tolist(), net.node_lat.tolist(), net.node_lon.tolist(), strict=True))  # fmt: skip
    _write_csv_atomic(out / "edges.csv", ["u", "v", "travel_time_s", "length_m"],
                      ((int(u), int(v), repr(float(t)), repr(float(m))) for u, v, t, m in
                       zip(tab["u"], tab["v"], tab["travel_time_s"], tab["length_m"], strict=True)))  # fmt: skip
    print(f"wrote {out / 'nodes.csv'} ({net.n_nodes} nodes) and {out / 'edges.csv'} "
          f"({len(tab['u'])} edges for {args.vehicle})", file=sys.stderr)  # fmt: skip
    return 0


def cmd_fetch(args: argparse.Namespace) -> int:  # pragma: no cover - needs the network
    from dispatch.roads.osm import fetch_map

    path = fetch_map(args.place, check_output_file(args.out, "--out"))
    print(f"wrote {path}", file=sys.stderr)
    return 0
