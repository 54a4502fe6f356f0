"""``dispatch recommend`` and ``dispatch assign``: dispatch decisions from the command line.

The CLI only wires library calls (:func:`dispatch.decide.recommend.recommend`,
:func:`dispatch.decide.assign.assign`); ``--json`` prints the documented JSON forms to stdout, otherwise a
readable table. Bad input becomes a one-line error and exit code 2 (see :mod:`dispatch.cli`).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any

from dispatch.cli import hour_arg, quiet_arg
from dispatch.io.atomic import atomic_write
from dispatch.io.paths import check_output_file

__all__ = ["register"]


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("map", metavar="MAP", help="map short name (danang, monaco, ...) or OSM file")
    p.add_argument(
        "--fleet",
        required=True,
        metavar="FLEET.csv",
        help="units: id,vehicle,lat,lon[,status,station,turnout_s]",
    )
    p.add_argument(
        "--run-cards",
        metavar="FILE.toml",
        help="run-card table (default: built-in, scenarios/run_cards.toml)",
    )
    p.add_argument(
        "--hospitals",
        metavar="FILE.csv",
        help="receiving hospitals (id,name,lat,lon,capabilities); without it no hospital leg",
    )
    p.add_argument(
        "--hour", type=hour_arg, metavar="H", help="clock hour for time-of-day speeds and closures"
    )
    p.add_argument(
        "--redispatch",
        action="store_true",
        help="let a priority-1 incident take a unit en route to a priority-3 one (threshold 120 s)",
    )
    p.add_argument("--json", action="store_true", help="print JSON to stdout")  # fmt: skip
    quiet_arg(p)


def register(subparsers: Any) -> None:
    """Add the ``recommend`` and ``assign`` subcommands."""
    rec = subparsers.add_parser(
        "recommend",
        help="units (and hospital) to send to one incident",
        description="Recommend the units to send to one incident by road ETA (turnout included), "
        "filling its run card; for 115/joint incidents, the nearest capable hospital.",
    )
    _common(rec)
    rec.add_argument(
        "--incident",
        required=True,
        metavar="INCIDENT.json",
        help='{"id", "lat", "lon", "type", "priority"}',
    )
    rec.add_argument("--geojson", metavar="OUT.geojson", help="write the scene, unit routes and hospital route as GeoJSON")  # fmt: skip
    rec.add_argument(
        "--coverage-warning",
        action="store_true",
        help="for each free unit that could go, the share of demand (a grid over the roads) its "
        "class covers within target before and after sending it, and a least-disruption "
        "alternative within --coverage-max-delay-s (advice only: the units sent do not change)",
    )
    rec.add_argument("--coverage-target-s", type=float, default=480.0, metavar="S",
                     help="coverage target, turnout included (default 480)")  # fmt: skip
    rec.add_argument("--coverage-cell-m", type=float, default=400.0, metavar="M",
                     help="demand grid cell over the roads (default 400)")  # fmt: skip
    rec.add_argument("--coverage-max-delay-s", type=float, default=30.0, metavar="S",
                     help="largest extra ETA of a least-disruption alternative (default 30)")  # fmt: skip
    rec.add_argument("--location-radius-m", type=float, default=0.0, metavar="M",
                     help="uncertainty of the caller's location: rank by the expected ETA over "
                     "points sampled in this disc, worst case given (default 0: a point)")  # fmt: skip
    rec.set_defaults(func=_recommend)

    asg = subparsers.add_parser(
        "assign",
        help="assign units to several simultaneous incidents (OR-Tools vs greedy)",
        description="Assign units to simultaneous incidents minimising the priority-weighted sum of "
        "road ETAs (OR-Tools min-cost flow / CP-SAT), compared with greedy one-call-at-a-time.",
    )
    _common(asg)
    asg.add_argument(
        "--incidents",
        required=True,
        metavar="INCIDENTS.csv|json",
        help="id,lat,lon[,type,priority] (CSV) or a JSON list",
    )
    asg.add_argument("--method", default="auto", choices=("auto", "min_cost_flow", "cp_sat", "greedy"), help="solver (default auto)")  # fmt: skip
    asg.add_argument("--objective", default="eta", choices=("eta", "targets"), help="eta: coverage then weighted ETA (default); targets: coverage, then calls reached within target, then ETA")  # fmt: skip
    asg.add_argument("--geojson", metavar="OUT.geojson", help="write scenes, unit routes and hospitals of the optimised plan as GeoJSON")  # fmt: skip
    asg.set_defaults(func=_assign)


def _load(args: argparse.Namespace) -> tuple[Any, Any, Any, Any]:
    import dispatch
    from dispatch.decide.hospitals import read_hospitals
    from dispatch.decide.incidents import read_fleet
    from dispatch.decide.runcards import load_run_cards

    fleet = read_fleet(args.fleet)
    cards = load_run_cards(args.run_cards)
    hospitals = None if args.hospitals is None else read_hospitals(args.hospitals)
    net = dispatch.load_network(args.map)
    return net, fleet, cards, hospitals


def _mmss(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "--:--"
    s = int(round(seconds))
    return f"{s // 60:02d}:{s % 60:02d}"


def _km(metres: float | None) -> str:
    return "" if metres is None else f"{metres / 1000:.2f} km"


def _units_table(plan: Any, indent: str = "  ") -> list[str]:
    rows = [("unit", "class", "fills", "ETA", "turnout", "drive", "route")]
    for a in plan.units:
        rows.append(
            (
                a.unit,
                a.vehicle,
                a.requirement + (" (optional)" if a.optional else "")
                + (f" (taken from P{a.redispatched_from_priority})" if a.redispatched_from_priority else ""),
                _mmss(a.eta_s),
                f"{a.turnout_s:.0f} s",
                _mmss(a.drive_s),
                _km(a.length_m),
            )
        )  # fmt: skip
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    out = [
        indent + "  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip()
        for r in rows
    ]
    if len(rows) == 1:
        out = [indent + "(no unit can be sent)"]
    return out


def _incident_block(plan: Any) -> list[str]:
    inc = plan.incident
    lines = [
        f"Incident {inc.id}: {inc.type} ({inc.kind.service}), priority {inc.priority}, "
        f"at {inc.lat:.5f},{inc.lon:.5f}; target {_mmss(plan.target_s)}"
    ]
    lines += _units_table(plan)
    meets = "meets" if plan.meets_target else "MISSES"
    lines.append(
        f"  first arrival {_mmss(plan.first_arrival_s)} ({meets} target), "
        f"full complement {_mmss(plan.full_complement_s)}"
    )
    for s in plan.uncovered:
        lines.append(f"  UNCOVERED: {s.missing} x {s.requirement}: {s.reason}")
    if plan.hospital is not None:
        h = plan.hospital
        fb = " (no reachable hospital has it: nearest general)" if h.fallback_general else ""
        route = f", {_km(float(h.route.length_m))}" if h.route is not None else ""
        lines.append(
            f"  hospital: {h.hospital.name} for {h.capability}{fb}, ETA from scene {_mmss(h.eta_s)}"
            f"{route} [capabilities: {h.hospital.capabilities_source}]"
        )
    elif plan.hospital_problem:
        lines.append(f"  hospital: NONE: {plan.hospital_problem}")
    return lines


def _warn(warnings: Any, args: argparse.Namespace) -> None:
    """Library warnings on stderr; a warning about a unit names the fleet file it comes from."""
    from dispatch.io.text import display_name

    for w in warnings:
        where = f"--fleet {display_name(args.fleet)}: " if str(w).startswith("unit ") else ""
        print(f"dispatch: warning: {where}{w}", file=sys.stderr)


def _recommend(args: argparse.Namespace) -> int:
    from dispatch.decide.incidents import read_incident_json
    from dispatch.decide.recommend import recommend

    incident = read_incident_json(args.incident)
    if args.geojson:
        check_output_file(args.geojson, "--geojson")
    net, fleet, cards, hospitals = _load(args)
    coverage = _coverage_state(args, net, fleet) if args.coverage_warning else None
    rec = recommend(
        net, incident, fleet, cards, hospitals=hospitals, hour=args.hour,
        redispatch=args.redispatch, coverage=coverage,
        coverage_max_delay_s=args.coverage_max_delay_s, location_radius_m=args.location_radius_m,
    )  # fmt: skip
    _warn(rec.warnings, args)
    if args.geojson:
        atomic_write(args.geojson, json.dumps(rec.geojson()))
    if args.json:
        print(json.dumps(rec.to_dict(), indent=2, ensure_ascii=False))
        return 0
    lines = _incident_block(rec.plan)
    if hospitals is None and incident.kind.needs_hospital:
        lines.append("  hospital: not computed (give --hospitals FILE.csv)")
    if rec.alternatives:
        groups: dict[str, list[str]] = {}
        for a in rec.alternatives:
            groups.setdefault(a.requirement, []).append(f"{a.unit} {_mmss(a.eta_s)}")
        alts = "; ".join(f"{req}: {', '.join(v)}" for req, v in groups.items())
        lines.append(f"  next fastest free units: {alts}")
    if rec.location is not None:
        worst = dict(zip([u.id for u in fleet], rec.location.worst_eta_s, strict=True))
        lines.append(f"  location: a disc of {rec.location.radius_m:g} m, ETAs expected over "
                     f"{rec.location.samples} points in it; worst case "
                     + ", ".join(f"{a.unit} {_mmss(float(worst[a.unit]))}" for a in rec.units))  # fmt: skip
    for adv in rec.coverage:
        lines.append(f"  coverage ({adv.requirement}): {adv.warning.message}")
    if args.geojson:
        lines.append(f"  routes written to {args.geojson}")
    print("\n".join(lines))
    return 0


def _coverage_state(args: argparse.Namespace, net: Any, fleet: Any) -> Any:
    """The coverage state of the fleet over a grid demand (``--coverage-warning``)."""
    from dispatch.plan.demand import grid_demand
    from dispatch.plan.warning import CoverageState

    records = [
        {"id": u.id, "vehicle": u.vehicle, "lat": u.lat, "lon": u.lon,
         "turnout_s": u.effective_turnout_s, "available": u.dispatchable}
        for u in fleet
    ]  # fmt: skip
    demand = grid_demand(
        net, cell_m=args.coverage_cell_m, vehicles=sorted({u.vehicle for u in fleet})
    )
    return CoverageState.build(
        net, records, demand, target_s=args.coverage_target_s, hour=args.hour
    )


def _assign(args: argparse.Namespace) -> int:
    from dispatch.decide.assign import assign
    from dispatch.decide.incidents import read_incidents

    incidents = read_incidents(args.incidents)
    if args.geojson:
        check_output_file(args.geojson, "--geojson")
    net, fleet, cards, hospitals = _load(args)
    res = assign(
        net,
        incidents,
        fleet,
        cards,
        hospitals=hospitals,
        hour=args.hour,
        method=args.method,
        redispatch=args.redispatch,
        routes=True,
        objective=args.objective,
    )
    _warn(res.warnings, args)
    if args.geojson:
        atomic_write(args.geojson, json.dumps(res.geojson()))
    if args.json:
        print(json.dumps(res.to_dict(), indent=2, ensure_ascii=False))
        return 0
    lines: list[str] = []
    for plan in res.plan.incidents:
        lines += _incident_block(plan)
        lines.append("")
    weights = ", ".join(f"P{p}={w:g}" for p, w in sorted(res.weights.items()))
    lines.append(
        f"{res.plan.method}: objective {res.objective:.1f} (sum of priority weight x ETA s; {weights}), "
        f"{res.plan.covered}/{res.plan.required} required units covered"
        + ("" if res.plan.optimal else " (time limit hit: best found, not proven optimal)")
    )
    if res.greedy is not None:
        g = res.greedy
        gain = g.objective - res.objective
        pct = 100.0 * gain / g.objective if g.objective else 0.0
        lines.append(
            f"greedy (one call at a time, by priority): objective {g.objective:.1f}, "
            f"{g.covered}/{g.required} covered; optimiser saves {gain:.1f} ({pct:.1f}%)"
        )
        changed = [
            p.incident.id
            for p, q in zip(res.plan.incidents, g.incidents, strict=True)
            if {a.unit for a in p.units} != {a.unit for a in q.units}
        ]
        if changed:
            lines.append(f"incidents where greedy sends other units: {', '.join(changed)}")

    def targets(plan: Any) -> str:
        return ", ".join(f"P{k} {m}/{n}" for k, (m, n) in plan.within_target.items())

    lines.append(
        f"first unit within target: {targets(res.plan)}"
        + ("" if res.greedy is None else f" (greedy: {targets(res.greedy)})")
    )
    print("\n".join(lines))
    if any(p.uncovered for p in res.plan.incidents):
        print(
            "dispatch: warning: some requirements are not covered (see UNCOVERED)", file=sys.stderr
        )
    return 0
