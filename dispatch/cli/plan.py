"""``dispatch coverage`` and ``dispatch site``: wiring of :mod:`dispatch.plan`."""

from __future__ import annotations

import argparse
import json
import math
from typing import Any

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


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg,unused-ignore]
    """Add ``coverage`` and ``site``."""
    p = sub.add_parser("coverage", help="share of demand reached within target from the units now")
    _map_args(p)
    p.add_argument("--fleet", required=True,
                   help="CSV of units: id,vehicle,lat,lon[,status,station,turnout_s]")  # fmt: skip
    g = p.add_mutually_exclusive_group()
    g.add_argument("--scenario", help="demand from a scenario's call model (name or TOML)")
    g.add_argument(
        "--demand", help="CSV of demand points / historical calls: lat,lon[,weight,zone]"
    )
    p.add_argument("--hour", type=float, default=None,
                   help="one clock hour (default: every speed band at its middle hour)")  # fmt: skip
    p.add_argument("--out", default=None, help="folder for coverage.json, GeoJSON and PNG per band")
    p.set_defaults(func=cmd_coverage)


def _network(args: argparse.Namespace) -> Network:
    net = load_network(args.map)
    if args.closures:
        net.close_geojson(args.closures)  # type: ignore[attr-defined]
    return net


def _check_hour(hour: float | None) -> None:
    if hour is not None and not (math.isfinite(hour) and 0 <= hour < 24):
        from dispatch.plan import PlanError

        raise PlanError(f"--hour {hour!r} must be a clock hour in [0, 24)")


def cmd_coverage(args: argparse.Namespace) -> int:
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
    units = read_units(args.fleet)
    scenario = None
    if args.scenario:
        from dispatch.sim.scenario import load_scenario

        scenario = load_scenario(args.scenario)
    fixed: Demand | None = points_demand(args.demand) if args.demand else None
    net = _network(args)
    if len(units) == 0:
        from dispatch.plan import PlanError

        raise PlanError(f"--fleet {args.fleet!r}: no available unit (all busy or out of service)")
    if fixed is None and scenario is None:
        vehicles = sorted(set(units.vehicle))
        fixed = grid_demand(net, cell_m=args.cell_m, vehicles=vehicles)
    hours = ({hour_band_name(net, args.hour): args.hour} if args.hour is not None
             else band_hours(net))  # fmt: skip
    bands: dict[str, Any] = {}
    layers = {}
    for band, h in hours.items():
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
        "closures": len(net.closures),  # type: ignore[attr-defined]
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
    unc = first["uncoverable_points"]
    if unc:
        print(f"uncoverable (no road of any unit's class reaches): {unc} points")
    if args.out:
        print(f"wrote {len(summary['files'])} files to {args.out}")
    return 0
