"""What the signal and gate delays, the hgv rule and turn costs change in ETAs (not a speed benchmark).

For each map: 200 call points and 50 unit points (seeded, drawn from the nodes in every
class's reachable part, so that every class can snap them), the travel-time matrix of each class
with the default profiles (delays on) and with every node delay set to 0 (before), and for the
fire classes with ``obey_hgv_bans=True`` (hgv=no binding, as before). Reports per class the change
of every finite unit-to-call ETA and of each call's fastest unit (its ETA, and the share of calls
whose fastest unit changes), as median and percentiles.

Turn costs (``turns``): the same counts of calls and units, drawn as positions part-way along
random roads (seeded; a call or a station stands anywhere on a street, and a point exactly at an
expanded junction would start on one of its copies), timed with turn costs at signalised
junctions (the default) and at every junction, each against ``turn_costs="off"``.

    python benchmarks/node_delays.py danang --calls 200 --units 50 --seed 13

Results are recorded in benchmarks/README.md ("Node delays and the hgv rule").
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from typing import Any

import numpy as np

import dispatch
from dispatch.roads.profiles import VEHICLE_CLASSES

ZERO = {
    v: {"signal_delay_s": 0.0, "stop_delay_s": 0.0, "gate_delay_s": 0.0} for v in VEHICLE_CLASSES
}
HGV = {v: {"obey_hgv_bans": True} for v in ("fire_engine", "ladder")}


def _pct(x: np.ndarray) -> dict[str, float]:
    if len(x) == 0:
        return {}
    q = np.percentile(x, [1, 10, 50, 90, 99])
    out = {f"p{k}": round(float(v), 2) for k, v in zip((1, 10, 50, 90, 99), q, strict=True)}
    return {**out, "median": out["p50"], "mean": round(float(x.mean()), 2)}


def compare(after: np.ndarray, before: np.ndarray) -> dict[str, Any]:
    """ETA changes between two (units x calls) matrices of the same points."""
    both = np.isfinite(after) & np.isfinite(before)
    d = (after - before)[both]
    rel = 100.0 * d / np.maximum(before[both], 1e-9)
    best_a, best_b = after.min(axis=0), before.min(axis=0)
    ok = np.isfinite(best_a) & np.isfinite(best_b)
    changed = after.argmin(axis=0) != before.argmin(axis=0)
    return {
        "pairs": int(both.sum()),
        "pairs_reachable_before_only": int((np.isfinite(before) & ~np.isfinite(after)).sum()),
        "pairs_reachable_after_only": int((np.isfinite(after) & ~np.isfinite(before)).sum()),
        "eta_change_s": _pct(d),
        "eta_change_pct": _pct(rel),
        "fastest_unit_eta_change_s": _pct((best_a - best_b)[ok]),
        "fastest_unit_changed_share": round(float(changed[ok].mean()), 4) if ok.any() else None,
    }


def turn_effect(map_name: str, n_calls: int, n_units: int, seed: int) -> dict[str, Any]:
    """ETA changes from turn costs (signals, junctions) against none, per class."""
    from dispatch.roads.snapping import position

    nets = {m: dispatch.load_network(map_name, settings=dispatch.network_settings(turn_costs=m))
            for m in ("off", "signals", "junctions")}  # fmt: skip
    off = nets["off"]
    rng = np.random.default_rng(seed)
    every = (1 << len(VEHICLE_CLASSES)) - 1
    core = np.logical_and.reduce([off.class_core(v) for v in VEHICLE_CLASSES])
    ok = np.logical_and.reduce([np.isfinite(off.weights(v)) for v in VEHICLE_CLASSES])
    ok &= core[off.arc_tail] & core[off.arc_head] & ~off.arc_contraflow
    ok &= (off.snap_access("from") & off.snap_access("to") & every) == every
    ok &= off.arc_length_m > 20.0
    arcs = rng.choice(np.flatnonzero(ok), n_calls + n_units, replace=False)
    lat, lon = position(off.graph, off.engine.geom_cum_m(), arcs,
                        rng.uniform(0.1, 0.9, len(arcs)))  # fmt: skip
    pts = np.column_stack([lat, lon])
    calls, units = pts[:n_calls], pts[n_calls:]
    out: dict[str, Any] = {m: {"junctions": nets[m].stats["turn_costs"]["junctions"]}
                           for m in ("signals", "junctions")}  # fmt: skip
    for v in VEHICLE_CLASSES:
        before = off.travel_times(units, calls, vehicle=v)
        for m in ("signals", "junctions"):
            out[m][v] = compare(nets[m].travel_times(units, calls, vehicle=v), before)
    return out


def measure(map_name: str, n_calls: int, n_units: int, seed: int) -> dict[str, Any]:
    net = dispatch.load_network(map_name)
    zero = dispatch.load_network(map_name, settings=dispatch.network_settings(profiles=ZERO))
    hgv = dispatch.load_network(map_name, settings=dispatch.network_settings(profiles=HGV))
    rng = np.random.default_rng(seed)
    core = np.flatnonzero(
        np.logical_and.reduce([net.class_core(v) for v in VEHICLE_CLASSES]) & (net.node_osmid > 0)
    )
    pts = np.column_stack([net.node_lat, net.node_lon])
    calls = pts[rng.choice(core, n_calls, replace=False)]
    units = pts[rng.choice(core, n_units, replace=False)]
    out: dict[str, Any] = {"map": map_name, "calls": n_calls, "units": n_units, "seed": seed,
                           "node_delays": net.stats["node_delays"],
                           "hgv_bans": net.stats["hgv_bans"], "delays": {}, "hgv": {}}  # fmt: skip
    t0 = time.perf_counter()
    for v in VEHICLE_CLASSES:
        after = net.travel_times(units, calls, vehicle=v)
        out["delays"][v] = compare(after, zero.travel_times(units, calls, vehicle=v))
        if v in HGV:
            out["hgv"][v] = compare(after, hgv.travel_times(units, calls, vehicle=v))
            out["hgv"][v]["reachable_share"] = {
                "bound": round(hgv.reachable_share(v), 4), "not_bound": round(net.reachable_share(v), 4)
            }  # fmt: skip
    out["turns"] = turn_effect(map_name, n_calls, n_units, seed)
    out["wall_s"] = round(time.perf_counter() - t0, 2)
    out["machine"] = f"{platform.processor() or platform.machine()}, {platform.python_version()}"
    out["date"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("maps", nargs="*", default=["danang"])
    ap.add_argument("--calls", type=int, default=200)
    ap.add_argument("--units", type=int, default=50)
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--json", action="store_true", help="print JSON only")
    args = ap.parse_args()
    for m in args.maps:
        r = measure(m, args.calls, args.units, args.seed)
        if args.json:
            print(json.dumps(r, sort_keys=True))
            continue
        print(f"{m}: {args.calls} calls x {args.units} units, seed {args.seed} ({r['date']})")
        sections = [(k, r[k]) for k in ("delays", "hgv")]
        for mode in ("signals", "junctions"):
            t = dict(r["turns"][mode])
            print(f"  turn costs at {mode}: {t.pop('junctions')} junctions")
            sections.append((f"turns@{mode}", t))
        for kind, section in sections:
            for v, c in section.items():
                e, f = c["eta_change_s"], c["fastest_unit_eta_change_s"]
                print(f"  {kind:<6} {v:<11} ETA change s median {e.get('median')} p90 {e.get('p90')} "
                      f"p99 {e.get('p99')} ({c['eta_change_pct'].get('median')} % median); "
                      f"fastest unit: median {f.get('median')} s, p90 {f.get('p90')} s, changed in "
                      f"{c['fastest_unit_changed_share']:.1%} of calls; pairs reachable only "
                      f"before {c['pairs_reachable_before_only']}, only after "
                      f"{c['pairs_reachable_after_only']}")  # fmt: skip


if __name__ == "__main__":
    main()
