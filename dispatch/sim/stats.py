"""Statistics of simulation runs: response times, targets, waiting, utilisation, replications.

Response time is call to first arrival (the NFPA 1710 way: alarm processing + turnout + travel, plus
any wait for a free unit); statistics are taken over the calls after the warm-up. A call still
waiting at the horizon is *unserved*: it has no response time, and it counts as a miss in the share
within target. Percentiles are reported next to means because standards (NFPA 1710) are set at the
90th percentile.

With several replications, :func:`across_replications` gives the mean and a 95% t-interval of each
replication-level figure; :func:`paired_differences` compares policies replication by replication
(they saw the same calls: common random numbers), which gives much tighter intervals than comparing
two independent means.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from dispatch.sim.records import SimResult

__all__ = [
    "METRICS",
    "across_replications",
    "group_stats",
    "paired_differences",
    "pooled_summary",
    "response_stats",
    "summarize",
]

#: Replication-level figures that get a mean and a confidence interval.
METRICS = (
    "response_mean_s",
    "response_median_s",
    "response_p90_s",
    "response_p95_s",
    "within_target",
    "wait_mean_s",
    "unserved",
    "utilisation_mean",
)


def _r(x: float) -> float | None:
    """Round for JSON; ``None`` for NaN/inf (no value)."""
    if x is None or not math.isfinite(x):
        return None
    return round(float(x), 3)


def response_stats(
    response_s: np.ndarray,
    target_s: np.ndarray,
    served: np.ndarray,
    wait_s: np.ndarray,
    *,
    full_complement_s: np.ndarray | None = None,
) -> dict[str, Any]:
    """Statistics of one group of calls.

    Parameters
    ----------
    response_s, target_s, wait_s : ndarray
        Per call (NaN where unserved).
    served : ndarray of bool
        Whether a unit was dispatched.
    full_complement_s : ndarray, optional
        Call to the last mandatory unit's arrival (NaN while the run card is not filled).

    Returns
    -------
    dict
        ``calls``, ``served``, ``unserved``, ``response_s`` (``mean``, ``median``, ``p90``,
        ``p95``, ``max``), ``within_target`` (share of all calls, unserved count as misses),
        ``wait_s`` (``mean``, ``p90``, ``max``) and ``waited`` (share of served calls that waited
        for a unit more than a second). With `full_complement_s`, also ``full_complement_s``
        (``mean``, ``median``, ``p90``, ``p95``, ``max`` over the calls whose run card was filled)
        and ``complete`` (their number).
    """
    n = len(served)
    rs = response_s[served]
    ws = wait_s[served]
    hit = int(np.count_nonzero(rs <= target_s[served]))
    if len(rs):
        q = np.percentile(rs, [50, 90, 95])
        resp = {
            "mean": _r(rs.mean()),
            "median": _r(q[0]),
            "p90": _r(q[1]),
            "p95": _r(q[2]),
            "max": _r(rs.max()),
        }
        wait = {"mean": _r(ws.mean()), "p90": _r(np.percentile(ws, 90)), "max": _r(ws.max())}
    else:
        resp = {k: None for k in ("mean", "median", "p90", "p95", "max")}
        wait = {"mean": None, "p90": None, "max": None}
    out: dict[str, Any] = {
        "calls": n,
        "served": int(len(rs)),
        "unserved": int(n - len(rs)),
        "response_s": resp,
        "within_target": _r(hit / n) if n else None,
        "wait_s": wait,
        "waited": _r(float(np.count_nonzero(ws > 1.0)) / len(ws)) if len(ws) else None,
    }
    if full_complement_s is not None:
        fs = full_complement_s[np.isfinite(full_complement_s)]
        if len(fs):
            qf = np.percentile(fs, [50, 90, 95])
            full = {
                "mean": _r(fs.mean()),
                "median": _r(qf[0]),
                "p90": _r(qf[1]),
                "p95": _r(qf[2]),
                "max": _r(fs.max()),
            }
        else:
            full = {k: None for k in ("mean", "median", "p90", "p95", "max")}
        out["complete"] = int(len(fs))
        out["full_complement_s"] = full
    return out


def group_stats(calls: Mapping[str, np.ndarray], by: str) -> dict[str, dict[str, Any]]:
    """:func:`response_stats` for each value of column ``by`` (``priority``, ``type``, ``area``...)."""
    keys = calls[by]
    out: dict[str, dict[str, Any]] = {}
    for value in sorted(set(keys.tolist()), key=lambda v: (str(type(v)), v)):
        m = keys == value
        fc = calls.get("full_complement_s")
        out[str(value)] = response_stats(
            calls["response_s"][m],
            calls["target_s"][m],
            calls["served"][m],
            calls["wait_s"][m],
            full_complement_s=None if fc is None else fc[m],
        )
    return out


def _counted(result: SimResult) -> dict[str, np.ndarray]:
    m = result.calls["in_stats"]
    return {k: v[m] for k, v in result.calls.items()}


def unit_stats(units: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """Utilisation per unit and its mean, and dispatches per unit."""
    return {
        "utilisation_mean": _r(float(np.mean(units["utilisation"])))
        if len(units["unit"])
        else None,
        "per_unit": {
            str(u): {
                "vehicle": str(v),
                "station": str(s),
                "dispatches": int(d),
                "utilisation": _r(float(x)),
                "busy_h": _r(float(b) / 3600.0),
            }
            for u, v, s, d, x, b in zip(
                units["unit"],
                units["vehicle"],
                units["station"],
                units["dispatches"],
                units["utilisation"],
                units["busy_s"],
                strict=True,
            )
        },
    }


def summarize(result: SimResult) -> dict[str, Any]:
    """Summary of one run: overall, per priority, type, service, area, hour; units.

    The top level has ``calls`` (generated after the warm-up), ``served``, ``unserved`` and the
    response-time statistics of :func:`response_stats` (first arrival and full complement), and
    ``run_cards`` (the run-card table used, None for one unit per call). No wall-clock figure is included: the same
    seed gives the same summary.
    """
    c = _counted(result)
    out = response_stats(
        c["response_s"],
        c["target_s"],
        c["served"],
        c["wait_s"],
        full_complement_s=c.get("full_complement_s"),
    )
    out["run_cards"] = result.run_cards
    out["calls_generated_incl_warmup"] = result.n_calls
    out["by_priority"] = group_stats(c, "priority")
    out["by_service"] = group_stats(c, "service")
    out["by_type"] = group_stats(c, "type")
    out["by_area"] = group_stats(c, "area")
    out["by_hour"] = {
        h: {"calls": v["calls"], "response_mean_s": v["response_s"]["mean"]}
        for h, v in group_stats(c, "hour").items()
    }
    out["targets_s"] = {str(k): v for k, v in sorted(result.targets_s.items())}
    out["units"] = unit_stats(result.units)
    if result.move_up is not None:
        out["move_up"] = move_up_stats(result)
    return out


def move_up_stats(result: SimResult) -> dict[str, Any]:
    """Relocations of a run with a move-up policy: count, kilometres, per unit per counted day.

    Counted after the warm-up (relocations ordered, kilometres of the drives that began after it).
    """
    u = result.units
    days = max(result.horizon_s - result.warmup_s, 1e-9) / 86400.0
    n = max(len(u["unit"]), 1)
    moves = float(np.sum(u["relocations"]))
    km = float(np.sum(u["relocation_km"]))
    return {
        "policy": result.move_up,
        "relocations": _r(moves),
        "relocation_km": _r(km),
        "relocating_h": _r(float(np.sum(u["relocating_s"])) / 3600.0),
        "moves_per_unit_per_day": _r(moves / n / days),
        "km_per_unit_per_day": _r(km / n / days),
    }


def replication_metrics(result: SimResult) -> dict[str, float]:
    """The figures of :data:`METRICS` for one replication (NaN where undefined)."""
    c = _counted(result)
    s = response_stats(c["response_s"], c["target_s"], c["served"], c["wait_s"])

    def f(x: Any) -> float:
        return float("nan") if x is None else float(x)

    return {
        "response_mean_s": f(s["response_s"]["mean"]),
        "response_median_s": f(s["response_s"]["median"]),
        "response_p90_s": f(s["response_s"]["p90"]),
        "response_p95_s": f(s["response_s"]["p95"]),
        "within_target": f(s["within_target"]),
        "wait_mean_s": f(s["wait_s"]["mean"]),
        "unserved": float(s["unserved"]),
        "utilisation_mean": float(np.mean(result.units["utilisation"])),
    }


def mean_ci(values: Sequence[float], *, level: float = 0.95) -> dict[str, Any]:
    """Mean and two-sided t confidence interval; ``half_width`` is None with fewer than 2 values."""
    x = np.asarray([v for v in values if math.isfinite(v)], dtype=float)
    n = len(x)
    if n == 0:
        return {"mean": None, "half_width": None, "low": None, "high": None, "n": 0}
    mean = float(x.mean())
    if n < 2:
        return {"mean": _r(mean), "half_width": None, "low": None, "high": None, "n": n}
    from scipy.stats import t

    hw = float(t.ppf(0.5 + level / 2, n - 1) * x.std(ddof=1) / math.sqrt(n))
    return {
        "mean": _r(mean),
        "half_width": _r(hw),
        "low": _r(mean - hw),
        "high": _r(mean + hw),
        "n": n,
    }


def across_replications(results: Sequence[SimResult]) -> dict[str, dict[str, Any]]:
    """Mean and 95% confidence interval of each of :data:`METRICS` over replications."""
    per = [replication_metrics(r) for r in results]
    return {m: mean_ci([p[m] for p in per]) for m in METRICS}


def pooled_summary(results: Sequence[SimResult]) -> dict[str, Any]:
    """Summary of several replications of one policy: calls pooled, plus per-replication CIs.

    The top level (``calls``, ``served``, ``unserved``, ``response_s``...) pools the counted calls
    of every replication; ``replications`` holds the mean and 95% CI of each replication figure.
    """
    if not results:
        raise ValueError("results: no run to summarize")
    if len(results) == 1:
        out = summarize(results[0])
    else:
        merged = _merge(results)
        out = summarize(merged)
    out["replications"] = len(results)
    out["ci95"] = across_replications(results) if len(results) > 1 else None
    return out


#: Unit columns of a run with move-up (averaged over replications when pooled).
_MOVE_UP_COLUMNS = ("relocations", "relocation_km", "relocating_s")


def _merge(results: Sequence[SimResult]) -> SimResult:
    import dataclasses

    calls = {k: np.concatenate([r.calls[k] for r in results]) for k in results[0].calls}
    units = dict(results[0].units)
    for k in ("dispatches", "busy_s", "returning_s", "utilisation", *_MOVE_UP_COLUMNS):
        if k in units:
            units[k] = np.mean([r.units[k] for r in results], axis=0)
    units["dispatches"] = np.sum([r.units["dispatches"] for r in results], axis=0)
    return dataclasses.replace(results[0], calls=calls, units=units, events=[])


def paired_differences(
    by_policy: Mapping[str, Sequence[SimResult]], *, reference: str = "fastest"
) -> dict[str, dict[str, Any]]:
    """Paired differences (policy minus reference) of each of :data:`METRICS`, replication by replication.

    Parameters
    ----------
    by_policy : mapping of str to sequence of SimResult
        Results of each policy, in replication order; every policy ran the same replications.
    reference : str
        The policy the others are compared with.

    Returns
    -------
    dict
        For each other policy, each metric's mean difference with its 95% CI and the reference's
        and the policy's means. A positive ``response_mean_s`` difference means the policy is slower.
    """
    if reference not in by_policy:
        raise ValueError(f"reference={reference!r} is not among the policies {list(by_policy)}")
    ref = [replication_metrics(r) for r in by_policy[reference]]
    out: dict[str, dict[str, Any]] = {}
    for policy, results in by_policy.items():
        if policy == reference:
            continue
        if [r.replication for r in results] != [r.replication for r in by_policy[reference]]:
            raise ValueError(
                f"policy {policy!r} did not run the same replications as {reference!r}"
            )
        per = [replication_metrics(r) for r in results]
        out[policy] = {
            m: {
                "difference": mean_ci([p[m] - q[m] for p, q in zip(per, ref, strict=True)]),
                reference: _r(float(np.nanmean([q[m] for q in ref]))),
                policy: _r(float(np.nanmean([p[m] for p in per]))),
            }
            for m in METRICS
        }
    return out
