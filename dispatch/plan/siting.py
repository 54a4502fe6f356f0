"""Station siting on road travel times: MCLP, p-median, LSCP and MEXCLP, solved with OR-Tools.

Every model is built from a cost matrix ``cost[site, point]`` in seconds (rows: candidate sites and
existing stations; columns: demand points; ``inf``: unreachable), as spopt's ``from_cost_matrix``
does (note: spopt's matrices are ``[point, site]``, the transpose). A site *covers* a point when
``cost <= target_s``. Existing stations are rows fixed open; ``p`` counts the **added** sites (units
for MEXCLP) on top of them. Points that no site can cover (or reach, for p-median) are left out of the
optimisation and reported as ``uncoverable``; they stay in the shares' denominators.

Models (``w`` demand weights, ``x`` open sites, ``N(i)`` sites covering point ``i``):

- ``mclp`` (Church & ReVelle 1974): maximise the weight covered, ``p`` added sites;
- ``pmedian`` (Hakimi 1964): minimise the weighted travel time to the nearest open site;
- ``lscp`` (Toregas et al. 1971): fewest added sites so that every coverable point is covered;
- ``mexclp`` (Daskin 1983): place ``p`` added *units* (several per site allowed), each busy with
  probability ``q``; maximise the expected covered weight ``sum_i w_i (1 - q^k_i)`` where ``k_i`` is
  the number of units covering ``i``.

Solved with OR-Tools' MIP interface (SCIP, else CBC) to a relative gap of 0: the result reports the
objective, the solver's bound, the gap and whether optimality was proven, and the order in which the
added sites buy their gain (greedy order over the chosen sites, each with its marginal gain).

>>> import numpy as np
>>> cost = np.array([[1, 1, 9, 9], [9, 1, 1, 9], [9, 9, 1, 1]], dtype=float)  # 3 sites x 4 points
>>> r = mclp(cost, np.ones(4), target_s=5, p=2)
>>> r.selected, r.objective, r.optimal
((0, 2), 4.0, True)
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dispatch.plan import PlanError
from dispatch.plan.coverage import check_target
from dispatch.plan.demand import as_float_matrix

MODELS = ("mclp", "pmedian", "lscp", "mexclp")


@dataclass(frozen=True)
class SitingResult:
    """The answer of a siting model.

    Attributes
    ----------
    model : str
        ``mclp``, ``pmedian``, ``lscp`` or ``mexclp``.
    selected : tuple of int
        Added sites (row indices), in the order of their marginal gain; a site appears once per unit
        placed there for MEXCLP.
    existing : tuple of int
        Rows fixed open.
    objective : float
        Covered weight (MCLP), weighted travel time (p-median, seconds x weight), number of added
        sites (LSCP) or expected covered weight (MEXCLP), recomputed from the chosen sites.
    bound : float
        The solver's proven bound on the objective.
    gap : float
        ``|bound - objective| / max(|objective|, 1e-9)``; 0 when proven optimal.
    optimal : bool
        Whether the solver proved optimality.
    marginal : tuple of (int, float)
        ``(site, gain)`` in order: each added site's gain over the sites before it (p-median: the
        drop in weighted travel time; ``inf`` for a first site when nothing reached a point before).
    covered_share : float
        Share of demand weight within target of an open site (all models).
    uncoverable_points, uncoverable_weight
        Points no site can cover (reach, for p-median), left out of the model, never dropped from the
        shares.
    solve_s : float
        Wall time of the solver.
    """

    model: str
    selected: tuple[int, ...]
    existing: tuple[int, ...]
    objective: float
    bound: float
    gap: float
    optimal: bool
    marginal: tuple[tuple[int, float], ...]
    covered_share: float
    uncoverable_points: int
    uncoverable_weight: float
    solve_s: float
    solver: str = ""
    params: dict[str, Any] = field(default_factory=dict)

    def as_dict(self, names: Sequence[str] | None = None) -> dict[str, Any]:
        """JSON-ready result; ``names`` labels the rows (site ids)."""

        def lab(j: int) -> Any:
            return names[j] if names is not None else j

        return {
            "model": self.model,
            **self.params,
            "selected": [lab(j) for j in self.selected],
            "existing": [lab(j) for j in self.existing],
            "objective": _round(self.objective),
            "bound": _round(self.bound),
            "gap": _round(self.gap),
            "optimal": self.optimal,
            "marginal": [{"site": lab(j), "gain": _round(g)} for j, g in self.marginal],
            "covered_share": _round(self.covered_share),
            "uncoverable_points": self.uncoverable_points,
            "uncoverable_weight": _round(self.uncoverable_weight),
            "solver": self.solver,
            "solve_s": round(self.solve_s, 3),
        }


def _round(x: float) -> float | str:
    return round(x, 6) if math.isfinite(x) else str(x)


# --- objectives of a set of open sites (pure numpy) ----------------------------------------------


def objective_of(model: str, cost: np.ndarray, weight: np.ndarray, sites: Sequence[int], *,
                 target_s: float = math.inf, busy_fraction: float = 0.0) -> float:  # fmt: skip
    """The objective of open ``sites`` (repeats count as several units for MEXCLP).

    Points no site at all can cover (reach) are left out, as in the models.
    """
    s = np.asarray(list(sites), dtype=np.int64)
    if model == "pmedian":
        return _pmedian_value(cost, weight, s)[1]
    cover = cost <= target_s
    if model == "lscp":
        return float(len(set(s.tolist())))
    if model == "mclp":
        return float(weight[cover[s].any(axis=0)].sum()) if len(s) else 0.0
    if model == "mexclp":
        k = cover[s].sum(axis=0) if len(s) else np.zeros(cost.shape[1])
        return float((weight * (1.0 - busy_fraction**k)).sum())
    raise PlanError(f"model={model!r} is not one of {', '.join(MODELS)}")


def _pmedian_value(cost: np.ndarray, weight: np.ndarray, sites: np.ndarray) -> tuple[float, float]:
    """``(unserved weight, weighted travel time of the served points)`` for open ``sites``.

    Points no site at all reaches are left out; a point that some site reaches but no open one does
    is *unserved* (the model first minimises the unserved weight, then the travel time).
    """
    ok = np.isfinite(cost).any(axis=0)
    if len(sites) == 0:
        return float(weight[ok].sum()), 0.0
    best = cost[sites][:, ok].min(axis=0)
    served = np.isfinite(best)
    w = weight[ok]
    return float(w[~served].sum()), float((w[served] * best[served]).sum())


def _greedy_order(model: str, cost: np.ndarray, weight: np.ndarray, chosen: Sequence[int],
                  existing: Sequence[int], target_s: float, q: float
                  ) -> tuple[tuple[int, ...], tuple[tuple[int, float], ...]]:  # fmt: skip
    if model == "lscp":  # order by how many still-uncovered points each site adds
        cover = cost <= target_s
        have = cover[list(existing)].any(axis=0) if existing else np.zeros(cost.shape[1], bool)
        left = list(chosen)
        order, gains = [], []
        while left:
            g = [float(weight[cover[j] & ~have].sum()) for j in left]
            b = int(np.argmax(g))
            j = left.pop(b)
            have |= cover[j]
            order.append(j)
            gains.append(g[b])
        return tuple(order), tuple(zip(order, gains, strict=True))
    cur = list(existing)
    left = list(chosen)
    order, gains = [], []

    def value(sites: list[int]) -> tuple[float, float]:  # larger is better
        if model == "pmedian":
            unserved, tt = _pmedian_value(cost, weight, np.asarray(sites, dtype=np.int64))
            return (-unserved, -tt)
        return (0.0, objective_of(model, cost, weight, sites, target_s=target_s, busy_fraction=q))

    base = value(cur)
    while left:
        vals = [value([*cur, j]) for j in left]
        b = max(range(len(left)), key=lambda k: vals[k])
        j = left.pop(b)
        # p-median: the drop in travel time, inf when the site serves points nothing served before
        gain = vals[b][1] - base[1] if vals[b][0] == base[0] else math.inf
        order.append(j)
        gains.append(gain)
        cur.append(j)
        base = vals[b]
    return tuple(order), tuple(zip(order, gains, strict=True))


# --- the MIP ------------------------------------------------------------------------------------


def _solver(time_limit_s: float) -> Any:
    from ortools.linear_solver import pywraplp

    for name in ("SCIP", "CBC"):
        s = pywraplp.Solver.CreateSolver(name)
        if s is not None:
            s.SetTimeLimit(int(max(time_limit_s, 0.001) * 1000))
            return s, name
    raise PlanError("no MIP solver (SCIP or CBC) in this OR-Tools build")  # pragma: no cover


def _coverage(c: np.ndarray, target: float, existing: Sequence[int]
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """``cover[j, i]`` (site j reaches point i within target), points no site reaches, points the
    existing sites already cover."""
    cover = c <= target
    unc = np.asarray(~cover.any(axis=0))
    pre = np.asarray(cover[list(existing)].any(axis=0)) if existing else np.zeros(c.shape[1], bool)
    return cover, unc, pre


def _site_vars(
    time_limit_s: float, n_sites: int, existing: Sequence[int]
) -> tuple[Any, str, list[Any]]:
    """A MIP solver, one open/closed variable per candidate site, the existing sites fixed open."""
    s, name = _solver(time_limit_s)
    x = [s.BoolVar(f"x{j}") for j in range(n_sites)]
    for j in existing:
        s.Add(x[j] == 1)
    return s, name, x


def _solve(s: Any) -> tuple[bool, float, float]:
    from ortools.linear_solver import pywraplp

    params = pywraplp.MPSolverParameters()
    params.SetDoubleParam(params.RELATIVE_MIP_GAP, 0.0)
    status = s.Solve(params)
    if status not in (pywraplp.Solver.OPTIMAL, pywraplp.Solver.FEASIBLE):
        raise PlanError("the solver found no solution within the time limit (raise time_limit_s)")
    return status == pywraplp.Solver.OPTIMAL, s.Objective().Value(), s.Objective().BestBound()


def _check(cost: Any, weight: Any, existing: Sequence[int], p: int | None, model: str,
           per_unit: bool = False) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:  # fmt: skip
    c = as_float_matrix(cost)
    w = np.asarray(weight, dtype=float)
    if w.ndim != 1 or len(w) != c.shape[1]:
        raise PlanError(f"weight has {w.size} values, the cost matrix has {c.shape[1]} points")
    if (~np.isfinite(w) | (w < 0)).any():
        i = int(np.argmax(~np.isfinite(w) | (w < 0)))
        raise PlanError(f"weight[{i}]={w[i]!r} must be a finite number >= 0")
    ex = tuple(int(j) for j in existing)
    for j in ex:
        if not 0 <= j < c.shape[0]:
            raise PlanError(
                f"existing site {j} is not a row of the cost matrix ({c.shape[0]} rows)"
            )
    if p is not None:
        if not isinstance(p, int | np.integer) or p < 0:
            raise PlanError(f"p={p!r} must be a whole number >= 0")
        free = c.shape[0] - len(set(ex))
        if not per_unit and p > free:
            raise PlanError(f"p={p} is larger than the {free} candidate sites "
                            f"(not counting {len(set(ex))} existing) for {model}")  # fmt: skip
        if per_unit and p > 0 and c.shape[0] == 0:
            raise PlanError(f"p={p} units but no candidate site")
    return c, w, ex


def _result(model: str, c: np.ndarray, w: np.ndarray, chosen: list[int], ex: tuple[int, ...],
            target: float, q: float, optimal: bool, bound: float, t0: float, solver: str,
            unc: np.ndarray, params: dict[str, Any]) -> SitingResult:  # fmt: skip
    order, marginal = _greedy_order(model, c, w, chosen, ex, target, q)
    obj = objective_of(model, c, w, [*ex, *order], target_s=target, busy_fraction=q)
    if model == "lscp":
        obj = float(len(order))
    gap = abs(bound - obj) / max(abs(obj), 1e-9) if not optimal else 0.0
    opened = [*ex, *order]
    total = float(w.sum())
    cov = float(w[(c[opened] <= target).any(axis=0)].sum() / total) if opened and total else 0.0
    return SitingResult(model, order, ex, obj, bound, gap, optimal, marginal, cov, int(unc.sum()),
                        float(w[unc].sum()), time.perf_counter() - t0, solver, params)  # fmt: skip


def mclp(cost: Any, weight: Any, *, target_s: float, p: int, existing: Sequence[int] = (),
         time_limit_s: float = 60.0) -> SitingResult:  # fmt: skip
    """Maximal covering: ``p`` added sites maximising the demand weight within ``target_s``."""
    target = check_target(target_s)
    c, w, ex = _check(cost, weight, existing, p, "mclp")
    t0 = time.perf_counter()
    cover, unc, pre = _coverage(c, target, ex)
    s, name, x = _site_vars(time_limit_s, c.shape[0], ex)
    s.Add(sum(x[j] for j in range(c.shape[0]) if j not in ex) == p)
    obj = []
    const = float(w[pre].sum())
    for i in np.flatnonzero(~unc & ~pre & (w > 0)):
        y = s.NumVar(0.0, 1.0, f"y{i}")
        s.Add(y <= sum(x[j] for j in np.flatnonzero(cover[:, i])))
        obj.append(w[i] * y)
    s.Maximize(sum(obj) + const if obj else const + 0 * x[0])
    optimal, _, bound = _solve(s)
    chosen = [j for j in range(c.shape[0]) if j not in ex and x[j].solution_value() > 0.5]
    return _result("mclp", c, w, chosen, ex, target, 0.0, optimal, bound, t0, name, unc,
                   {"p": p, "target_s": target})  # fmt: skip


def pmedian(cost: Any, weight: Any, *, p: int, existing: Sequence[int] = (),
            target_s: float | None = None, time_limit_s: float = 60.0) -> SitingResult:  # fmt: skip
    """p-median: ``p`` added sites minimising the weighted travel time to the nearest open site.

    ``target_s`` only serves the reported ``covered_share``.
    """
    target = check_target(target_s) if target_s is not None else math.inf
    c, w, ex = _check(cost, weight, existing, p, "pmedian")
    if p + len(set(ex)) == 0:
        raise PlanError("p=0 with no existing site: p-median needs at least one open site")
    t0 = time.perf_counter()
    finite = np.isfinite(c)
    unc = np.asarray(~finite.any(axis=0))
    s, name, x = _site_vars(time_limit_s, c.shape[0], ex)
    s.Add(sum(x[j] for j in range(c.shape[0]) if j not in ex) == p)
    obj = []
    # an unserved point (reached by some site, by no open one) costs more than serving every point
    penalty = 1.0 + float((w * np.where(finite, c, 0.0).max(axis=0)).sum())
    for i in np.flatnonzero(~unc):
        js = np.flatnonzero(finite[:, i])
        z = [s.NumVar(0.0, 1.0, f"z{i}_{j}") for j in js]
        if len(js) < c.shape[0]:  # some site does not reach it: it may stay unserved
            u = s.NumVar(0.0, 1.0, f"u{i}")
            s.Add(sum(z) + u == 1)
            if w[i] > 0:
                obj.append(penalty * w[i] * u)
        else:
            s.Add(sum(z) == 1)
        for zj, jn in zip(z, js, strict=True):
            s.Add(zj <= x[jn])
            if w[i] * c[jn, i] != 0:
                obj.append(w[i] * c[jn, i] * zj)
    s.Minimize(sum(obj) if obj else 0 * x[0])
    optimal, _, bound = _solve(s)
    chosen = [j for j in range(c.shape[0]) if j not in ex and x[j].solution_value() > 0.5]
    unserved, _ = _pmedian_value(c, w, np.asarray([*ex, *chosen], dtype=np.int64))
    if unserved > 0:  # the solver's bound is of the penalised objective: report none
        bound = math.nan
    return _result("pmedian", c, w, chosen, ex, target, 0.0, optimal, bound, t0, name, unc,
                   {"p": p, "unserved_weight": unserved})  # fmt: skip


def lscp(cost: Any, weight: Any | None = None, *, target_s: float, existing: Sequence[int] = (),
         time_limit_s: float = 60.0) -> SitingResult:  # fmt: skip
    """Set covering: the fewest added sites so that every coverable point is within ``target_s``."""
    target = check_target(target_s)
    w_in = np.ones(np.shape(cost)[1]) if weight is None else weight
    c, w, ex = _check(cost, w_in, existing, None, "lscp")
    t0 = time.perf_counter()
    cover, unc, pre = _coverage(c, target, ex)
    s, name, x = _site_vars(time_limit_s, c.shape[0], ex)
    for i in np.flatnonzero(~unc & ~pre):
        s.Add(sum(x[j] for j in np.flatnonzero(cover[:, i])) >= 1)
    free = [x[j] for j in range(c.shape[0]) if j not in ex]
    s.Minimize(sum(free) if free else 0 * x[0])
    optimal, _, bound = _solve(s)
    chosen = [j for j in range(c.shape[0]) if j not in ex and x[j].solution_value() > 0.5]
    return _result("lscp", c, w, chosen, ex, target, 0.0, optimal, bound, t0, name, unc,
                   {"target_s": target})  # fmt: skip


def mexclp(cost: Any, weight: Any, *, target_s: float, p: int, busy_fraction: float,
           existing: Sequence[int] = (), max_per_site: int | None = None,
           time_limit_s: float = 60.0) -> SitingResult:  # fmt: skip
    """Expected covering (Daskin): place ``p`` added units, each busy with probability ``q``.

    ``existing`` lists the rows of units already placed (a row twice: two units there);
    ``max_per_site`` caps the units per site (default: no cap).
    """
    target = check_target(target_s)
    q = float(busy_fraction)
    if not (math.isfinite(q) and 0 <= q < 1):
        raise PlanError(f"busy_fraction={busy_fraction!r} must be in [0, 1)")
    c, w, ex = _check(cost, weight, existing, p, "mexclp", per_unit=True)
    t0 = time.perf_counter()
    cover = c <= target
    unc = np.asarray(~cover.any(axis=0))
    n_units = p + len(ex)
    base = np.bincount(np.asarray(ex, dtype=np.int64), minlength=c.shape[0])
    cap = n_units if max_per_site is None else int(max_per_site)
    if cap < base.max(initial=0):
        raise PlanError(f"max_per_site={max_per_site!r} is below the existing units at a site")
    if cap * c.shape[0] < n_units:
        raise PlanError(f"p={p}: {n_units} units do not fit {c.shape[0]} sites x {cap} per site")
    s, name = _solver(time_limit_s)
    x = [s.IntVar(float(base[j]), float(cap), f"x{j}") for j in range(c.shape[0])]
    s.Add(sum(x) == n_units)
    obj = []
    coef = (1.0 - q) * q ** np.arange(n_units)
    for i in np.flatnonzero(~unc & (w > 0)):
        js = np.flatnonzero(cover[:, i])
        kmax = min(n_units, len(js) * cap)
        ys = [s.NumVar(0.0, 1.0, f"y{i}_{k}") for k in range(kmax)]
        s.Add(sum(ys) <= sum(x[j] for j in js))
        obj += [w[i] * coef[k] * ys[k] for k in range(kmax) if coef[k] > 0]
    s.Maximize(sum(obj) if obj else 0 * x[0])
    optimal, _, bound = _solve(s)
    added = np.array([round(x[j].solution_value()) for j in range(c.shape[0])]) - base
    chosen = [j for j in range(c.shape[0]) for _ in range(int(added[j]))]
    return _result("mexclp", c, w, chosen, ex, target, q, optimal, bound, t0, name, unc,
                   {"p": p, "target_s": target, "busy_fraction": q})  # fmt: skip


def solve(model: str, cost: Any, weight: Any, *, p: int | None = None, target_s: float = 480.0,
          busy_fraction: float = 0.5, existing: Sequence[int] = (),
          time_limit_s: float = 60.0) -> SitingResult:  # fmt: skip
    """Solve one of :data:`MODELS` (``p`` is required except for ``lscp``)."""
    if model not in MODELS:
        raise PlanError(f"model={model!r} is not one of {', '.join(MODELS)}")
    if model != "lscp" and p is None:
        raise PlanError(f"model {model} needs p (the number of added sites)")
    if model == "mclp":
        return mclp(cost, weight, target_s=target_s, p=int(p or 0), existing=existing,
                    time_limit_s=time_limit_s)  # fmt: skip
    if model == "pmedian":
        return pmedian(cost, weight, p=int(p or 0), existing=existing, target_s=target_s,
                       time_limit_s=time_limit_s)  # fmt: skip
    if model == "lscp":
        return lscp(cost, weight, target_s=target_s, existing=existing, time_limit_s=time_limit_s)
    return mexclp(cost, weight, target_s=target_s, p=int(p or 0), busy_fraction=busy_fraction,
                  existing=existing, time_limit_s=time_limit_s)  # fmt: skip
