"""``dispatch coverage`` and ``dispatch site``: wiring of :mod:`dispatch.plan`."""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any

from dispatch.cli import quiet_arg
from dispatch.plan.io import Units
from dispatch.roads.network import Network, load_network


def _map_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "map", help="short name (danang, hcmc, monaco, liechtenstein, campo_grande) or path"
    )
    p.add_argument("--closures", default=None, help="GeoJSON file of closures (polygons)")
    p.add_argument("--target-s", type=float, default=480.0,
                   help="turnout + travel time that counts as covered (default 480 s)")  # fmt: skip
    p.add_argument("--cell-m", type=float, default=200.0,
                   help="grid cell size of grid and scenario demand (default 200 m)")  # fmt: skip
    p.add_argument("--json", action="store_true", help="JSON on stdout")
    quiet_arg(p)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg,unused-ignore]
    """Add ``coverage`` and ``site``."""
    p = sub.add_parser("coverage", help="share of demand reached within target from the units now")
    _map_args(p)
    p.add_argument("--fleet", default=None,
                   help="CSV of units: id,vehicle,lat,lon[,status,station,turnout_s] "
                        "(default with --scenario: its units at their stations)")  # fmt: skip
    g = p.add_mutually_exclusive_group()
    g.add_argument("--scenario", help="demand from a scenario's call model (name or TOML)")
    g.add_argument(
        "--demand", help="CSV of demand points / historical calls: lat,lon[,weight,zone]"
    )
    p.add_argument("--hour", type=float, default=None,
                   help="one clock hour (default: every speed band at its middle hour)")  # fmt: skip
    p.add_argument("--out", default=None, help="folder for coverage.json, GeoJSON and PNG per band")
    p.set_defaults(func=cmd_coverage)

    s = sub.add_parser("site", help="station siting: MCLP, p-median, LSCP, MEXCLP on road times")
    _map_args(s)
    s.add_argument("--candidates", required=True,
                   help="CSV of candidate sites (id,lat,lon[,name]) or 'osm' (road intersections)")  # fmt: skip
    s.add_argument("--n-candidates", type=int, default=100,
                   help="how many road-intersection candidates with --candidates osm (default 100)")  # fmt: skip
    g = s.add_mutually_exclusive_group()
    g.add_argument("--scenario", help="demand from a scenario's call model (name or TOML)")
    g.add_argument(
        "--demand", help="CSV of demand points / historical calls: lat,lon[,weight,zone]"
    )
    s.add_argument("--model", choices=("mclp", "pmedian", "lscp", "mexclp"), default="mclp")
    s.add_argument("-p", type=int, default=None, help="sites (MEXCLP: units) to add")
    s.add_argument("--existing", default=None, help="CSV of existing stations (fixed open)")
    s.add_argument("--class", dest="vehicle", default="ambulance", help="vehicle class")
    s.add_argument("--busy-fraction", type=float, default=0.5, help="MEXCLP busy fraction q")
    s.add_argument("--turnout-s", type=float, default=0.0,
                   help="turnout added to every travel time (default 0)")  # fmt: skip
    s.add_argument("--hour", type=float, default=None, help="clock hour (speed band, closures)")
    s.add_argument("--time-limit-s", type=float, default=60.0, help="solver time limit")
    s.set_defaults(func=cmd_site)


def _network(args: argparse.Namespace) -> Network:
    net = load_network(args.map)
    if args.closures:
        net.close_geojson(args.closures)
    return net


def _check_hour(hour: float | None) -> None:
    if hour is not None and not (math.isfinite(hour) and 0 <= hour < 24):
        from dispatch.plan import PlanError

        raise PlanError(f"--hour {hour!r} must be a clock hour in [0, 24)")


def cmd_coverage(args: argparse.Namespace) -> int:
    from dispatch.plan import PlanError
    from dispatch.plan.coverage import check_target, coverage
    from dispatch.plan.demand import (
        Demand,
        band_hours,
        grid_demand,
        hour_band_name,
        points_demand,
        scenario_demand,
    )
    from dispatch.plan.io import read_units

    check_target(args.target_s, name="--target-s")
    _check_hour(args.hour)
    if args.fleet is None and args.scenario is None:
        raise PlanError(
            "give --fleet FLEET.csv, or --scenario S to use its units at their stations"
        )
    units = read_units(args.fleet) if args.fleet else None
    scenario = None
    if args.scenario:
        from dispatch.sim.scenario import load_scenario

        scenario = load_scenario(args.scenario)
    fixed: Demand | None = points_demand(args.demand) if args.demand else None
    net = _network(args)
    if units is None:
        assert scenario is not None
        units = scenario_units(scenario, net)
    if len(units) == 0:
        raise PlanError(f"--fleet {args.fleet!r}: no available unit (all busy or out of service)")
    if fixed is None and scenario is None:
        vehicles = sorted(set(units.vehicle))
        fixed = grid_demand(net, cell_m=args.cell_m, vehicles=vehicles)
    hours = ({hour_band_name(net, args.hour): args.hour} if args.hour is not None
             else band_hours(net))  # fmt: skip
    bands: dict[str, Any] = {}
    layers = {}
    from tqdm import tqdm

    # a bar on stderr that appears only after 2 s, and only on a terminal
    bar = tqdm(hours.items(), unit="band", disable=not sys.stderr.isatty(), delay=2.0,
               file=sys.stderr, leave=False, dynamic_ncols=True)  # fmt: skip
    for band, h in bar:
        if fixed is not None:
            dem = fixed
        else:
            assert scenario is not None
            dem = scenario_demand(scenario, net, cell_m=args.cell_m, band=band)
        res = coverage(net, units, dem, target_s=args.target_s, hour=h)
        bands[band] = {"hour": h, "demand": dem.source, **res.as_dict()}
        layers[band] = (res, dem)
    summary: dict[str, Any] = {
        "map": net.name,
        "rule": "covered when turnout_s + road travel time <= target_s (from unit notification)",
        "closures": len(net.closures),
        "bands": bands,
    }
    if args.out:
        from dispatch.plan.report import write_coverage

        summary["files"] = [str(p) for p in write_coverage(args.out, summary, layers, net, units)]
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    first = next(iter(bands.values()))
    print(f"{net.name}: {first['units']} available units ({first['units_unavailable']} busy/out), "
          f"{first['demand_points']} demand points, target {args.target_s:g} s (turnout + drive)")  # fmt: skip
    print(f"demand: {first['demand']}")
    classes = sorted({v for b in bands.values() for v in b["by_class"]})
    head = f"{'band':<14}{'hour':>6}{'first unit':>12}{'double':>9}" + "".join(
        f"{v:>13}" for v in classes
    )
    print(head)
    for band, b in bands.items():
        cells = "".join(f"{b['by_class'][v]['share']:>13.1%}" if v in b["by_class"] else f"{'-':>13}"
                        for v in classes)  # fmt: skip
        print(f"{band:<14}{b['hour']:>6.1f}{b['first_unit_share']:>12.1%}{b['double_share']:>9.1%}"
              f"{cells}")  # fmt: skip
    none = [band for band, b in bands.items() if b["first_unit_share"] == 0]
    if none:
        print(f"no unit reaches any demand point within {args.target_s:g} s in: {', '.join(none)}")
    unc = first["uncoverable_points"]
    if unc:
        print(
            f"uncoverable (no unit of any class can reach them: no road, or closed): {unc} point(s)"
        )
    if args.out:
        print(f"wrote {len(summary['files'])} files to {args.out}")
    return 0


def cmd_site(args: argparse.Namespace) -> int:
    import numpy as np

    from dispatch.plan import PlanError
    from dispatch.plan.coverage import check_target
    from dispatch.plan.demand import (
        Demand,
        grid_demand,
        points_demand,
        road_node_candidates,
        scenario_demand,
        travel_time_matrix,
    )
    from dispatch.plan.io import read_points
    from dispatch.plan.siting import solve
    from dispatch.roads.profiles import check_vehicle

    check_vehicle(args.vehicle)
    check_target(args.target_s, name="--target-s")
    _check_hour(args.hour)
    if not (math.isfinite(args.turnout_s) and 0 <= args.turnout_s < 86400):
        raise PlanError(f"--turnout-s {args.turnout_s!r} must be a number of seconds >= 0")
    if args.model != "lscp" and args.p is None:
        raise PlanError(f"--model {args.model} needs -p (the number of sites to add)")
    if args.p is not None and args.p < 0:
        raise PlanError(f"-p {args.p} must be >= 0")
    cand = None if args.candidates == "osm" else read_points(args.candidates, what="candidates")
    n_cand = args.n_candidates if cand is None else len(cand.ids)
    if args.p is not None and args.model != "mexclp" and args.p > n_cand:
        raise PlanError(f"-p {args.p} is larger than the {n_cand} candidate sites")
    existing = read_points(args.existing, what="existing stations") if args.existing else None
    demand: Demand | None = points_demand(args.demand) if args.demand else None
    scenario = None
    if args.scenario:
        from dispatch.sim.scenario import load_scenario

        scenario = load_scenario(args.scenario)
    net = _network(args)
    if cand is None:
        c_lat, c_lon, c_ids = road_node_candidates(net, args.n_candidates, vehicle=args.vehicle)
        c_names = tuple("CANDIDATE road intersection" for _ in c_ids)
    else:
        c_lat, c_lon, c_ids = cand.lat, cand.lon, tuple(cand.ids)
        c_names = tuple(cand.names)
    if demand is None:
        if scenario is not None:
            demand = scenario_demand(scenario, net, cell_m=args.cell_m)
        else:
            demand = grid_demand(net, cell_m=args.cell_m, vehicles=[args.vehicle])
    ids = list(c_ids)
    lat, lon = list(c_lat), list(c_lon)
    names = list(c_names)
    if existing is not None:
        ids += [f"existing:{i}" for i in existing.ids]
        lat += list(existing.lat)
        lon += list(existing.lon)
        names += list(existing.names)
    cost = travel_time_matrix(net, np.column_stack([lat, lon]), demand, vehicle=args.vehicle,
                              hour=args.hour, origin_names=ids) + args.turnout_s  # fmt: skip
    fixed = list(range(len(c_ids), len(ids)))
    res = solve(args.model, cost, demand.weight, p=args.p, target_s=args.target_s,
                busy_fraction=args.busy_fraction, existing=fixed,
                time_limit_s=args.time_limit_s)  # fmt: skip
    out = {
        "map": net.name,
        "class": args.vehicle,
        "hour": args.hour,
        "turnout_s": args.turnout_s,
        "candidates": len(c_ids),
        "candidates_source": "road intersections (CANDIDATES, not real stations)"
        if cand is None else args.candidates,
        "existing": len(fixed),
        "demand": demand.source,
        "demand_points": len(demand),
        **res.as_dict(ids),
        "sites": {ids[j]: {"lat": round(float(lat[j]), 7), "lon": round(float(lon[j]), 7),
                           "name": names[j]} for j in (*res.existing, *res.selected)},
    }  # fmt: skip
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    unit = {"mclp": "demand weight covered", "pmedian": "weighted travel time (s x weight)",
            "lscp": "added sites", "mexclp": "expected demand weight covered"}[args.model]  # fmt: skip
    print(f"{net.name}: {args.model} for {args.vehicle}, {len(c_ids)} candidates "
          f"({out['candidates_source']}), {len(fixed)} existing, {len(demand)} demand points "
          f"({demand.source}), target {args.target_s:g} s")  # fmt: skip
    status = "optimal" if res.optimal else f"gap {res.gap:.4%}"
    print(f"objective {res.objective:.6g} ({unit}), bound {res.bound:.6g}, {status}, "
          f"solved by {res.solver} in {res.solve_s:.2f} s")  # fmt: skip
    print(f"covered within target: {res.covered_share:.1%} of demand weight; uncoverable points: "
          f"{res.uncoverable_points}")  # fmt: skip
    print("added sites, in order of what each buys:")
    for k, (j, gain) in enumerate(res.marginal, 1):
        print(f"  {k:>2}. {ids[j]:<22} {float(lat[j]):.6f},{float(lon[j]):.6f}  gain {gain:.6g}")
    return 0


def scenario_units(scenario: Any, net: Any) -> Units:
    """The units of a scenario at their home stations (with the scenario's turnout per class).

    Wired here, in the CLI: the planning package does not import the simulator (which imports it).
    """
    from dispatch.sim.runner import resolve_world

    world = resolve_world(scenario, net)
    return Units.from_records(
        {"id": u.id, "vehicle": u.vehicle, "lat": u.lat, "lon": u.lon, "turnout_s": u.turnout_s}
        for u in world.units
    )
