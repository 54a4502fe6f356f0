"""Move-up policies against return-home: the share of P1 calls later than target, paired.

For each scenario, every replication simulates the same calls under each move-up policy with the
fastest-unit dispatch policy: ``none`` (a freed unit returns to its home station), ``dmexclp``
(:class:`dispatch.sim.moveup.DMEXCLPMoveUp`) and ``compliance``
(:class:`dispatch.sim.moveup.ComplianceMoveUp`). Per replication: the share of counted P1 calls
(after warm-up) whose response is later than the P1 target (an unserved call counts as late).
Reports the mean late share of each policy and, for each policy against ``none``, the paired
difference with a 95 % t interval over replications (:func:`dispatch.sim.stats.mean_ci`) and the
relative change (difference / return-home share; its interval is the difference's interval over
the return-home mean, which ignores the baseline's own sampling error). Also moves per unit per day
and kilometres driven relocating. Batch means: each replication's counted horizon is cut into
``--batches`` equal spans (default 12: months of a year) and the paired difference is taken per
span as well, which gives an interval from a single long replication (valid when consecutive
spans are close to independent: the lag-1 autocorrelation of the per-span differences is reported).

    python benchmarks/moveup.py danang_moveup campo_grande_moveup:2000 --replications 10
    python benchmarks/moveup.py campo_grande_moveup --replications 6 --cache benchmarks/results/moveup

``NAME:HOURS`` shortens a scenario's horizon. With ``--cache DIR`` each (scenario, horizon, seed,
policy, replication) run's figures are written to ``DIR`` as soon as it finishes and reused by the
next run (a long comparison can be stopped and resumed, or extended by a policy, without re-running
what is done; replication ``r`` always simulates the same calls, checked by a fingerprint of the
call times); ``--cached-only`` reports what is cached without running anything. Each policy is
compared with ``none`` on the replications done for both. Results are recorded in
benchmarks/SIMULATION.md. Published reference: a 16.8 % relative reduction of late arrivals in an
urban region (Jagtenberg, Bhulai & van der Mei 2015, Utrecht, 19 ambulances).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import numpy as np

from dispatch.io.atomic import atomic_open, atomic_write
from dispatch.sim.parallel import Task, run_task
from dispatch.sim.records import SimResult
from dispatch.sim.scenario import Scenario, load_scenario
from dispatch.sim.stats import mean_ci, move_up_stats

POLICIES = ("none", "dmexclp", "compliance")


def late_share(res: SimResult, level: int = 1) -> float:
    c = res.calls
    keep = c["in_stats"] & (c["priority"] == level)
    if not keep.any():
        return float("nan")
    late = ~c["served"][keep] | ~(c["response_s"][keep] <= c["target_s"][keep])
    return float(late.mean())


def run_figures(res: SimResult, wall_s: float) -> dict[str, Any]:
    """What the comparison needs from one run (small enough to cache)."""
    amb = res.units["vehicle"] == "ambulance"
    return {
        "late_share": late_share(res),
        "p1_calls": int(((res.calls["priority"] == 1) & res.calls["in_stats"]).sum()),
        "ambulance_utilisation": float(np.mean(res.units["utilisation"][amb])),
        "calls_sha256": hashlib.sha256(np.ascontiguousarray(res.calls["time_s"])).hexdigest(),
        "move_up": move_up_stats(res) if "relocations" in res.units else None,  # none: no columns
        "wall_s": round(wall_s, 1),
    }


def p1_calls(res: SimResult, level: int = 1) -> dict[str, np.ndarray]:
    """Time and lateness of each counted P1 call (for batch means)."""
    c = res.calls
    keep = c["in_stats"] & (c["priority"] == level)
    late = ~c["served"][keep] | ~(c["response_s"][keep] <= c["target_s"][keep])
    return {"time_s": np.asarray(c["time_s"][keep], dtype=float), "late": np.asarray(late)}


def _one(task: Task) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    t0 = time.perf_counter()
    (res,) = run_task(task)
    return run_figures(res, time.perf_counter() - t0), p1_calls(res)


def batch_late_shares(calls: dict[str, np.ndarray], sc: Scenario, batches: int) -> list[float]:
    """Late share of the P1 calls in each of ``batches`` equal spans of the counted horizon."""
    edges = np.linspace(sc.warmup_h * 3600.0, sc.horizon_h * 3600.0, batches + 1)
    b = np.clip(np.searchsorted(edges, calls["time_s"], side="right") - 1, 0, batches - 1)
    n = np.bincount(b, minlength=batches)
    late = np.bincount(b, weights=calls["late"].astype(float), minlength=batches)
    return [float(x) for x in late / np.maximum(n, 1)]


def _cache_path(cache: Path, sc: Scenario, policy: str, r: int) -> Path:
    return cache / f"{sc.name}-{sc.horizon_h:g}h-seed{sc.seed}-{policy}-r{r}.json"


Runs = dict[str, dict[int, Any]]


def run_all(
    sc: Scenario,
    policies: tuple[str, ...],
    replications: int,
    workers: int,
    cache: Path | None,
    cached_only: bool = False,
) -> tuple[Runs, Runs]:
    """Figures and P1 calls by policy and replication; cached runs are read, the others run
    (in parallel) unless ``cached_only``."""
    got: Runs = {p: {} for p in policies}
    calls: Runs = {p: {} for p in policies}
    todo: list[tuple[str, int]] = []
    for r in range(replications):  # replication-major: paired sets complete first
        for p in policies:
            path = _cache_path(cache, sc, p, r) if cache is not None else None
            if path is not None and path.exists() and path.with_suffix(".npz").exists():
                got[p][r] = json.loads(path.read_text())
                with np.load(path.with_suffix(".npz")) as z:
                    calls[p][r] = {k: z[k] for k in z.files}
            else:
                todo.append((p, r))
    if not todo or cached_only:
        return got, calls
    with ProcessPoolExecutor(max_workers=max(1, min(workers, len(todo)))) as pool:
        futures = {pool.submit(_one, Task(sc, r, ("fastest",), move_up=p)): (p, r) for p, r in todo}
        for fut in as_completed(futures):
            p, r = futures[fut]
            fig, c = fut.result()
            got[p][r], calls[p][r] = fig, c
            if cache is not None:
                path = _cache_path(cache, sc, p, r)
                with atomic_open(path.with_suffix(".npz"), "wb") as f:
                    np.savez_compressed(f, **c)
                atomic_write(path, json.dumps(fig, indent=1))
    return got, calls


def _paired(new: list[float], base: list[float]) -> dict[str, Any]:
    """Paired difference in percentage points and relative to the base mean, 95 % t intervals."""
    b_mean = float(np.nanmean(base))
    return {
        "difference_pp": mean_ci([100.0 * (d - b) for d, b in zip(new, base, strict=True)]),
        "relative_change": mean_ci([(d - b) / b_mean for d, b in zip(new, base, strict=True)]),
    }


def measure(
    spec: str,
    policies: tuple[str, ...],
    replications: int,
    workers: int,
    cache: Path | None,
    batches: int = 12,
    cached_only: bool = False,
) -> dict[str, Any]:
    name, _, hours = spec.partition(":")
    sc = load_scenario(name).with_overrides(
        horizon_h=float(hours) if hours else None, replications=replications
    )
    t0 = time.perf_counter()
    got, calls = run_all(sc, policies, replications, workers, cache, cached_only)
    wall_s = time.perf_counter() - t0
    base_reps = sorted(got["none"])
    out: dict[str, Any] = {
        "scenario": name,
        "horizon_h": sc.horizon_h,
        "warmup_h": sc.warmup_h,
        "batches_per_replication": batches,
        "batch_h": round((sc.horizon_h - sc.warmup_h) / batches, 1),
        "p1_calls_per_replication": _mean([got["none"][r]["p1_calls"] for r in base_reps]),
        "ambulance_utilisation_none": _mean(
            [got["none"][r]["ambulance_utilisation"] for r in base_reps]
        ),
        "late_share_pct": {
            p: mean_ci([100.0 * got[p][r]["late_share"] for r in sorted(got[p])]) for p in policies
        },
        "wall_s_this_run": round(wall_s, 1),
        "wall_s_per_run": {p: _mean([got[p][r]["wall_s"] for r in got[p]]) for p in policies},
    }
    for p in policies:
        if p == "none":
            continue
        # paired: the replications done under both, which simulated the same calls
        reps = [r for r in base_reps if r in got[p]]
        for r in reps:
            assert got[p][r]["calls_sha256"] == got["none"][r]["calls_sha256"], (p, r)
        late = [got[p][r]["late_share"] for r in reps]
        base = [got["none"][r]["late_share"] for r in reps]
        # batch means: each replication's counted horizon cut into `batches` spans, paired by span
        bl = [x for r in reps for x in batch_late_shares(calls[p][r], sc, batches)]
        bb = [x for r in reps for x in batch_late_shares(calls["none"][r], sc, batches)]
        out[p] = {
            "replications": len(reps),
            "late_share_pct_paired": {"none": mean_ci([100.0 * x for x in base]),
                                      p: mean_ci([100.0 * x for x in late])},
            "by_replication": _paired(late, base) if reps else None,  # one pair per replication
            "batch_means": _paired(bl, bb) if reps else None,  # one pair per batch
            # independence check: lag-1 autocorrelation of the per-batch differences (within runs)
            "batch_lag1_autocorrelation": _lag1([d - b for d, b in zip(bl, bb, strict=True)],
                                                batches),
            "move_up": {
                k: _mean([got[p][r]["move_up"][k] for r in reps])
                for k in ("relocations", "relocation_km", "moves_per_unit_per_day",
                          "km_per_unit_per_day")
            },
        }  # fmt: skip
    return out


def _lag1(diffs: list[float], batches: int) -> float | None:
    """Lag-1 autocorrelation of consecutive batches of the same replication."""
    x = np.asarray(diffs, dtype=float).reshape(-1, batches)
    if x.size < 3 or batches < 2:
        return None
    d = x - x.mean()
    den = float((d**2).sum())
    return round(float((d[:, 1:] * d[:, :-1]).sum()) / den, 3) if den > 0 else None


def _mean(x: list[float]) -> float | None:
    return round(float(np.mean(x)), 3) if x else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("scenarios", nargs="+", help="NAME or NAME:HOURS")
    ap.add_argument("--replications", type=int, default=10)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--policies", nargs="+", default=list(POLICIES), choices=POLICIES,
                    help="move-up policies to compare (none is always included)")  # fmt: skip
    ap.add_argument("--batches", type=int, default=12,
                    help="batch means: equal spans of each replication's counted horizon")  # fmt: skip
    ap.add_argument("--cache", type=Path, default=None,
                    help="directory keeping each run's figures (resume, extend)")  # fmt: skip
    ap.add_argument("--cached-only", action="store_true",
                    help="run nothing: report the replications cached for every policy")  # fmt: skip
    args = ap.parse_args()
    if args.cached_only and args.cache is None:
        ap.error("--cached-only needs --cache DIR")
    policies = ("none", *[p for p in dict.fromkeys(args.policies) if p != "none"])
    if args.cache is not None:
        args.cache.mkdir(parents=True, exist_ok=True)
    out = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "results": [
            measure(
                s,
                policies,
                args.replications,
                args.workers,
                args.cache,
                args.batches,
                args.cached_only,
            )  # fmt: skip
            for s in args.scenarios
        ],
    }
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
