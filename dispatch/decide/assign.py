"""Assign units to several simultaneous incidents at once (OR-Tools), compared with greedy dispatch.

Model
-----
Each incident *i* (priority weight :math:`w_i`, from the run-card table) has run-card requirements
*r*, each needing :math:`c_r` units of the vehicle classes it accepts. :math:`x_{ur} = 1` sends unit
*u* to requirement *r*; every unit fills at most one requirement, every requirement gets at most
:math:`c_r` units, and a unit may fill a requirement only if its class is accepted, it can be
dispatched (``available``/``returning``, or ``en_route`` under the redispatch rule) and it can reach the
scene by road. ETAs include the unit's turnout delay.

The objective is lexicographic:

1. cover as many requirement slots as possible, each weighted by its incident's priority weight
   (a unit is never left idle while it could fill a slot; a P1 slot outranks a P3 slot);
2. then minimise the **priority-weighted sum of unit ETAs**
   :math:`\\sum_{u,r} w_{i(r)} \\, \\mathrm{eta}_{u,i(r)} \\, x_{ur}` (the reported ``objective``).
   When every incident needs one unit this is the priority-weighted sum of response times.

Solvers: ``exact_single`` (one incident, as :func:`dispatch.recommend` asks: every slot has the
same weight and a unit's ETA is the same whichever requirement it fills, so the units sent are the
lightest basis of a transversal matroid, found exactly by the greedy algorithm with augmenting
paths; used by ``auto`` for one incident with the ``eta`` objective), ``min_cost_flow`` (OR-Tools
``SimpleMinCostFlow``; exact, used when every incident needs exactly one unit), ``cp_sat`` (OR-Tools CP-SAT, two phases for the lexicographic objective; used for
multi-unit run cards, the place for side constraints; as modelled today the problem is a
transportation problem, so CP-SAT is warm-started with the exact min-cost-flow solution and the
better of the two is kept, which keeps large surges fast and optimal), ``greedy`` (sequential: incidents by priority then input order, each takes the
fastest free units; what a dispatcher does one call at a time). ``assign`` always reports greedy on the
same input next to the optimiser.

Ties (the same answer whichever exact solver gives it): costs are integers, the weighted ETA in
milliseconds scaled so that the sum of the units' ranks by id only decides between assignments of
equal weighted ETA (see ``_int_costs``). For one incident the optimum is then unique (unit costs
are distinct, and a matroid with distinct weights has one lightest basis): ``exact_single``,
``min_cost_flow`` and ``cp_sat`` send the same units. Which requirement a unit fills when several
of its incident's requirements accept it (an alias such as ``engine``) does not change the
objective; every exact solver follows one rule for it: the incident's units by ETA, then id, each
takes the first requirement of the card it can fill while the units after it can still be placed.

``objective="targets"`` inserts a level between 1 and 2: maximise the priority-weighted number of
incidents whose first mandatory unit arrives within its priority's target (CP-SAT only). It trades
total ETA for more calls answered in time, e.g. sending a slightly slower unit to one call so that
another call can be reached within its target.

Optional first responders (run-card lines with ``only_if_first``) are added after the main solve, for
both the optimiser and greedy: incidents by priority then input order take the fastest free unit of
the class that arrives before the incident's first mandatory unit. They are not in the objective.

Redispatch rule (``redispatch=True``): a priority-1 incident may take a unit already ``en_route`` to an
incident of priority :data:`REDISPATCH_FROM_PRIORITY` (3) when that unit's ETA beats the best free
unit of an accepted class by at least :data:`REDISPATCH_MIN_GAIN_S` (120 s). The threshold is an
illustrative default (JEMSS models redispatch with a priority-pair table); the lower-priority incident
then needs another unit, which the caller must re-dispatch.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dispatch.decide.hospitals import Hospital, HospitalChoice, NoHospitalError, choose_hospital
from dispatch.decide.incidents import (
    UNIT_STATUSES,
    Incident,
    IncidentError,
    Unit,
    units_from_records,
)
from dispatch.decide.runcards import RunCards, default_run_cards
from dispatch.errors import DispatchError, FleetError, PointError
from dispatch.model import check_hour
from dispatch.roads.profiles import check_vehicle
from dispatch.routing.queries import unit_reach_times

__all__ = [
    "METHODS",
    "OBJECTIVES",
    "REDISPATCH_FROM_PRIORITY",
    "REDISPATCH_MIN_GAIN_S",
    "AssignResult",
    "Demand",
    "IncidentPlan",
    "MatrixProblem",
    "Plan",
    "Shortfall",
    "UnitAssignment",
    "assign",
    "assign_matrix",
    "build_problem",
    "eta_matrix",
    "incident_features",
    "objective_of",
    "solve",
]

#: Minimum ETA gain (seconds) for a P1 incident to take a unit en route to a P3 incident.
#: Illustrative default; set it with ``redispatch_min_gain_s``.
REDISPATCH_MIN_GAIN_S = 120.0
#: Lowest-urgency priority whose units may be taken by a priority-1 incident.
REDISPATCH_FROM_PRIORITY = 3
#: Solver names accepted by :func:`solve` and :func:`assign`.
METHODS = ("auto", "exact_single", "min_cost_flow", "cp_sat", "greedy")
#: Objectives: ``eta`` (coverage, then weighted ETA) and ``targets`` (coverage, then incidents
#: reached within target, then weighted ETA).
OBJECTIVES = ("eta", "targets")

_WEIGHT_SCALE = 100  # objective weights are rounded to 1/100
_AMBULANCE = check_vehicle("ambulance")  # the class index of the scene check


class AssignError(DispatchError):
    """Bad arguments to the assignment (shapes, solver name, time limit)."""


# ----------------------------------------------------------------------------------------------
# Matrix-level problem (no network): what the solvers see
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Demand:
    """One mandatory run-card requirement of one incident.

    Parameters
    ----------
    incident : int
        Column of the ETA matrix.
    cls : str
        Requirement class (run-card name).
    accepts : tuple of str
        Vehicle classes that may fill it.
    count : int
        Units needed.
    """

    incident: int
    cls: str
    accepts: tuple[str, ...]
    count: int


@dataclass(frozen=True)
class MatrixProblem:
    """An assignment problem on an ETA matrix.

    Parameters
    ----------
    eta_s : ndarray, shape (n_units, n_incidents)
        Unit -> scene ETA in seconds including turnout; ``inf`` = cannot reach.
    unit_ids : tuple of str
        Unit ids (row order; used for tie-breaking).
    unit_classes : tuple of str
        Vehicle class of each unit.
    weights : ndarray, shape (n_incidents,)
        Priority weight of each incident (> 0).
    demands : tuple of Demand
        Requirements to fill.
    allowed : ndarray of bool, shape (n_units, n_demands)
        Which unit may fill which demand (class, availability, redispatch rule, reachability).
    order : tuple of int
        Incident order for greedy (priority, then input order).
    target_s : ndarray, shape (n_incidents,), optional
        Target response time per incident (used by ``objective="targets"``).
    """

    eta_s: np.ndarray
    unit_ids: tuple[str, ...]
    unit_classes: tuple[str, ...]
    weights: np.ndarray
    demands: tuple[Demand, ...]
    allowed: np.ndarray
    order: tuple[int, ...]
    target_s: np.ndarray | None = None

    @property
    def n_units(self) -> int:
        """Number of units (rows)."""
        return int(self.eta_s.shape[0])

    @property
    def n_demands(self) -> int:
        """Number of demands."""
        return len(self.demands)


def build_problem(
    eta_s: np.ndarray,
    unit_ids: Sequence[str],
    unit_classes: Sequence[str],
    weights: Sequence[float] | np.ndarray,
    demands: Sequence[Demand],
    *,
    available: Sequence[bool] | np.ndarray | None = None,
    extra_allowed: np.ndarray | None = None,
    order: Sequence[int] | None = None,
    target_s: Sequence[float] | np.ndarray | None = None,
) -> MatrixProblem:
    """Validate and build a :class:`MatrixProblem`.

    Parameters
    ----------
    eta_s : array, shape (n_units, n_incidents)
        ETAs in seconds (``inf`` = unreachable); NaN or negative values are rejected.
    unit_ids, unit_classes : sequence of str
        One per unit.
    weights : sequence of float
        One positive weight per incident.
    demands : sequence of Demand
        Requirements.
    available : sequence of bool, optional
        Units that may be dispatched (default: all).
    extra_allowed : ndarray of bool, shape (n_units, n_demands), optional
        Extra (unit, demand) pairs allowed even though the unit is not available (redispatch).
    order : sequence of int, optional
        Incident order for greedy (default: by decreasing weight, then index).
    target_s : sequence of float, optional
        Target response time per incident, seconds (needed by ``objective="targets"``).
    """
    eta = np.array(eta_s, dtype=float)
    if eta.ndim != 2:
        raise AssignError(f"eta_s must be 2-D (units x incidents), got shape {eta.shape}")
    n_u, n_i = eta.shape
    if np.isnan(eta).any() or (eta < 0).any():
        raise AssignError("eta_s must be >= 0 or inf, got NaN or a negative value")
    if len(unit_ids) != n_u or len(unit_classes) != n_u:
        raise AssignError(
            f"unit_ids/unit_classes must have {n_u} entries, got {len(unit_ids)}/{len(unit_classes)}"
        )
    w = np.array(weights, dtype=float)
    if w.shape != (n_i,) or not np.all(np.isfinite(w)) or (w <= 0).any():
        raise AssignError(f"weights must be {n_i} positive numbers, got {list(w)}")
    for d in demands:
        if not 0 <= d.incident < n_i or d.count < 1:
            raise AssignError(f"bad demand {d!r} for {n_i} incidents")
    avail = np.ones(n_u, dtype=bool) if available is None else np.asarray(available, dtype=bool)
    if avail.shape != (n_u,):
        raise AssignError(f"available must have {n_u} entries, got shape {avail.shape}")
    allowed = np.zeros((n_u, len(demands)), dtype=bool)
    for k, d in enumerate(demands):
        cls_ok = np.array([c in d.accepts for c in unit_classes], dtype=bool)
        allowed[:, k] = cls_ok & np.isfinite(eta[:, d.incident])
    base = allowed & avail[:, None]
    if extra_allowed is not None:
        extra = np.asarray(extra_allowed, dtype=bool)
        if extra.shape != allowed.shape:
            raise AssignError(f"extra_allowed must have shape {allowed.shape}, got {extra.shape}")
        base |= allowed & extra
    if order is None:
        order = sorted(range(n_i), key=lambda i: (-w[i], i))
    elif sorted(order) != list(range(n_i)):
        raise AssignError(f"order must be a permutation of range({n_i}), got {list(order)}")
    tgt = None
    if target_s is not None:
        tgt = np.array(target_s, dtype=float)
        if tgt.shape != (n_i,) or np.isnan(tgt).any() or (tgt <= 0).any():
            raise AssignError(f"target_s must be {n_i} positive numbers, got {list(tgt)}")
        tgt.setflags(write=False)
    eta.setflags(write=False)
    w.setflags(write=False)
    base.setflags(write=False)
    return MatrixProblem(
        target_s=tgt,
        eta_s=eta,
        unit_ids=tuple(str(u) for u in unit_ids),
        unit_classes=tuple(unit_classes),
        weights=w,
        demands=tuple(demands),
        allowed=base,
        order=tuple(int(i) for i in order),
    )


@dataclass(frozen=True)
class MatrixSolution:
    """Solver output: ``pairs`` of (unit row, demand index), sorted."""

    method: str
    pairs: tuple[tuple[int, int], ...]
    objective: float
    covered_weight: float
    optimal: bool
    solve_time_s: float


def objective_of(problem: MatrixProblem, pairs: Sequence[tuple[int, int]]) -> float:
    """Priority-weighted sum of ETAs of `pairs` (unit row, demand index)."""
    return float(
        sum(
            problem.weights[problem.demands[k].incident]
            * problem.eta_s[u, problem.demands[k].incident]
            for u, k in pairs
        )
    )


def _covered_weight(problem: MatrixProblem, pairs: Sequence[tuple[int, int]]) -> float:
    return float(sum(problem.weights[problem.demands[k].incident] for _, k in pairs))


def _check_pairs(problem: MatrixProblem, pairs: Sequence[tuple[int, int]]) -> None:
    units = [u for u, _ in pairs]
    assert len(units) == len(set(units)), "a unit was assigned twice"
    for u, k in pairs:
        assert problem.allowed[u, k], f"pair {(u, k)} not allowed"
    for k, d in enumerate(problem.demands):
        assert sum(1 for _, kk in pairs if kk == k) <= d.count


def _int_costs(problem: MatrixProblem) -> tuple[np.ndarray, np.ndarray]:
    """Integer weights and integer weighted costs, with ties broken towards smaller unit ids.

    Cost = weighted ETA (milliseconds, coarsened if needed to stay well inside int64) times
    ``tie`` plus the unit's rank in id order; ``tie`` exceeds any sum of ranks, so the rank only
    decides between assignments of equal weighted ETA.
    """
    wq = np.maximum(1, np.rint(problem.weights * _WEIGHT_SCALE)).astype(np.int64)
    eta = np.where(np.isfinite(problem.eta_s), problem.eta_s, 0.0)
    slots = max(1, min(problem.n_units, sum(d.count for d in problem.demands)))
    rank = np.empty(problem.n_units, dtype=np.int64)
    rank[sorted(range(problem.n_units), key=lambda u: problem.unit_ids[u])] = np.arange(
        problem.n_units
    )
    tie = problem.n_units * slots + 1
    resolution = 1000.0  # milliseconds
    while True:
        eta_q = np.rint(eta * resolution).astype(np.int64)
        max_c = (int(eta_q.max(initial=0)) * int(wq.max(initial=1)) + 1) * tie
        bound = (max_c * slots + 1) * int(wq.max(initial=1)) * slots
        if bound < 2**60 or resolution <= 1e-3:
            break
        resolution /= 10.0
    cost = eta_q * wq[None, :] * tie + rank[:, None]
    return wq, cost


def _solve_min_cost_flow(problem: MatrixProblem) -> tuple[list[tuple[int, int]], bool]:
    from ortools.graph.python import min_cost_flow

    n_u, n_d = problem.n_units, problem.n_demands
    wq, cost = _int_costs(problem)
    slots = max(1, min(n_u, sum(d.count for d in problem.demands)))
    big = int(cost.max(initial=0)) * slots + 1  # one more weighted slot beats any ETA saving
    flow = min_cost_flow.SimpleMinCostFlow()
    src, sink = n_u + n_d, n_u + n_d + 1
    arcs: list[tuple[int, int, int]] = []
    for u in range(n_u):
        flow.add_arc_with_capacity_and_unit_cost(src, u, 1, 0)
        flow.add_arc_with_capacity_and_unit_cost(u, sink, 1, 0)  # unit stays idle
        for kk in np.flatnonzero(problem.allowed[u]):
            k = int(kk)
            i = problem.demands[k].incident
            c = int(cost[u, i]) - big * int(wq[i])
            arcs.append((flow.add_arc_with_capacity_and_unit_cost(u, n_u + k, 1, c), u, k))
    for k, d in enumerate(problem.demands):
        flow.add_arc_with_capacity_and_unit_cost(n_u + k, sink, d.count, 0)
    flow.set_node_supply(src, n_u)
    flow.set_node_supply(sink, -n_u)
    status = flow.solve()
    if status != flow.OPTIMAL:
        raise AssignError(f"min-cost flow failed with status {status}")
    pairs = [(u, k) for a, u, k in arcs if flow.flow(a) > 0]
    return pairs, True


def _met_of(problem: MatrixProblem, wq: np.ndarray, pairs: Any) -> int:
    """Weighted number of incidents with a mandatory unit within target."""
    if problem.target_s is None:
        return 0
    met = {
        problem.demands[k].incident
        for u, k in pairs
        if problem.eta_s[u, problem.demands[k].incident]
        <= problem.target_s[problem.demands[k].incident]
    }
    return int(sum(int(wq[i]) for i in met))


def _solve_cp_sat(
    problem: MatrixProblem,
    *,
    time_limit_s: float,
    workers: int,
    warm_start: bool = True,
    targets: bool = False,
) -> tuple[list[tuple[int, int]], bool]:
    """Lexicographic CP-SAT, one phase per level.

    Levels: weighted coverage (max); with `targets`, weighted incidents whose first mandatory unit
    is within target (max); weighted ETA (min). With `warm_start` the exact min-cost-flow solution
    is the hint and the fallback: the result is never worse than it.
    """
    from ortools.sat.python import cp_model

    if targets and problem.target_s is None:
        raise AssignError("objective 'targets' needs target_s in the problem")
    n_u = problem.n_units
    wq, cost = _int_costs(problem)
    pairs_all = [(u, int(k)) for u in range(n_u) for k in np.flatnonzero(problem.allowed[u])]
    if not pairs_all:
        return [], True
    hint: set[tuple[int, int]] = set()
    if warm_start:
        hint = set(_solve_min_cost_flow(problem)[0])

    def cover_of(pairs: Any) -> int:
        return int(sum(int(wq[problem.demands[k].incident]) for _, k in pairs))

    def cost_of(pairs: Any) -> int:
        return int(sum(int(cost[u, problem.demands[k].incident]) for u, k in pairs))

    def key(pairs: Any) -> tuple[int, int, int]:
        return (cover_of(pairs), _met_of(problem, wq, pairs) if targets else 0, -cost_of(pairs))

    def model_with(
        cover_at_least: int | None, met_at_least: int | None
    ) -> tuple[Any, dict[tuple[int, int], Any], Any, Any]:
        m = cp_model.CpModel()
        x = {p: m.new_bool_var(f"x_{p[0]}_{p[1]}") for p in pairs_all}
        by_unit: dict[int, list[Any]] = {}
        by_dem: dict[int, list[Any]] = {}
        for (u, k), var in x.items():
            by_unit.setdefault(u, []).append(var)
            by_dem.setdefault(k, []).append(var)
        for vars_ in by_unit.values():
            m.add_at_most_one(vars_)
        for k, vars_ in by_dem.items():
            m.add(sum(vars_) <= problem.demands[k].count)
        cover = sum(int(wq[problem.demands[k].incident]) * var for (_, k), var in x.items())
        if cover_at_least is not None:
            m.add(cover >= cover_at_least)
        met: Any = 0
        if targets and problem.target_s is not None:
            fast: dict[int, list[Any]] = {}
            for (u, k), var in x.items():
                i = problem.demands[k].incident
                if problem.eta_s[u, i] <= problem.target_s[i]:
                    fast.setdefault(i, []).append(var)
            terms = []
            hint_met = {
                problem.demands[k].incident
                for u, k in hint
                if problem.eta_s[u, problem.demands[k].incident]
                <= problem.target_s[problem.demands[k].incident]
            }
            for i, vars_ in sorted(fast.items()):
                y = m.new_bool_var(f"met_{i}")
                m.add(y <= sum(vars_))
                terms.append(int(wq[i]) * y)
                if warm_start:
                    m.add_hint(y, i in hint_met)
            met = sum(terms)
            if met_at_least is not None:
                m.add(met >= met_at_least)
        if warm_start:
            for p, var in x.items():
                m.add_hint(var, p in hint)
        return m, x, cover, met

    def run(m: Any) -> tuple[Any, str]:
        solver = cp_model.CpSolver()
        solver.parameters.max_time_in_seconds = float(time_limit_s)
        solver.parameters.num_workers = int(workers)
        solver.parameters.random_seed = 0
        solver.parameters.linearization_level = 2  # LP relaxation: fast on assignment structure
        status = solver.solve(m)
        if status == cp_model.OPTIMAL:
            return solver, "optimal"
        if status == cp_model.FEASIBLE:
            return solver, "feasible"
        if status == cp_model.UNKNOWN and warm_start:
            return solver, "none"  # time limit before any solution: the flow solution stands
        raise AssignError(f"CP-SAT found no solution (status {solver.status_name(status)})")

    proved = True
    # level 1: maximal weighted coverage (the exact flow already gives it when warm-starting)
    if warm_start:
        best_cover = cover_of(hint)
    else:
        m1, _, cover1, _ = model_with(None, None)
        m1.maximize(cover1)
        s1, st1 = run(m1)
        best_cover, proved = round(s1.objective_value), st1 == "optimal"
    # level 2 (targets): maximal weighted number of incidents reached within target
    best_met: int | None = None
    if targets:
        m2, _, _, met2 = model_with(best_cover, None)
        m2.maximize(met2)
        s2, st2 = run(m2)
        floor = _met_of(problem, wq, hint) if warm_start else 0
        best_met = floor if st2 == "none" else max(round(s2.objective_value), floor)
        proved = proved and st2 == "optimal"
    # level 3: minimal weighted ETA
    m3, x3, _, _ = model_with(best_cover, best_met)
    m3.minimize(sum(int(cost[u, problem.demands[k].incident]) * var for (u, k), var in x3.items()))
    s3, st3 = run(m3)
    pairs = [] if st3 == "none" else [p for p, var in x3.items() if s3.value(var)]
    if warm_start:
        if st3 == "none" or key(hint) > key(pairs):
            pairs = sorted(hint)
        if not targets:
            return pairs, True  # the flow is exact for the plain model
    return pairs, bool(proved and st3 == "optimal")


def _solve_greedy(problem: MatrixProblem) -> list[tuple[int, int]]:
    used = np.zeros(problem.n_units, dtype=bool)
    pairs: list[tuple[int, int]] = []
    by_incident: dict[int, list[int]] = {}
    for k, d in enumerate(problem.demands):
        by_incident.setdefault(d.incident, []).append(k)
    for i in problem.order:
        for k in by_incident.get(i, []):
            for _ in range(problem.demands[k].count):
                cands = [
                    (problem.eta_s[u, i], problem.unit_ids[u], u)
                    for u in np.flatnonzero(problem.allowed[:, k] & ~used)
                ]
                if not cands:
                    break
                u = int(min(cands)[2])
                used[u] = True
                pairs.append((u, k))
    return pairs


def _one_incident(problem: MatrixProblem) -> int | None:
    """The incident every demand belongs to, or None when the demands span several (or none)."""
    incs = {d.incident for d in problem.demands}
    return incs.pop() if len(incs) == 1 else None


def _augment(
    u: int, adj: Mapping[int, list[int]], slots: list[int], filled: list[list[int]],
    seen: list[bool],
) -> bool:  # fmt: skip
    """Place unit ``u`` in one of the demands ``adj[u]``, moving placed units along an
    alternating path if needed (Kuhn's augmenting path; demand ``k`` has ``slots[k]`` places);
    False when no such path exists."""
    ks = adj[u]
    for k in ks:
        if not seen[k] and len(filled[k]) < slots[k]:
            filled[k].append(u)
            return True
    for k in ks:
        if seen[k]:
            continue
        seen[k] = True
        for j, v in enumerate(filled[k]):
            if _augment(v, adj, slots, filled, seen):
                filled[k][j] = u
                return True
    return False


def _solve_single(problem: MatrixProblem) -> list[tuple[int, int]]:
    """Exact solution of a problem whose demands all belong to one incident.

    With one incident every slot has the same weight and a unit's cost (:func:`_int_costs`)
    does not depend on the demand it fills, so the problem is: the cheapest set of units that
    fills as many slots as possible. The sets of units that can fill slots together are the
    independent sets of a transversal matroid (units matched into slots), so the greedy
    algorithm is exact (Rado-Edmonds): units by increasing cost, each kept if the kept ones and
    it can still all be placed (an augmenting path). Costs are distinct (the unit's rank by id
    breaks ETA ties), hence so is the optimum: the same units as the min-cost flow and CP-SAT,
    whose objective is the same sum of the same integer costs.
    """
    i = _one_incident(problem)
    if i is None:
        raise AssignError("method 'exact_single' solves the demands of one incident")
    _, cost = _int_costs(problem)
    col = cost[:, i]
    allowed = problem.allowed
    cands = [int(u) for u in np.flatnonzero(allowed.any(axis=1))]
    cands.sort(key=lambda u: int(col[u]))
    adj: dict[int, list[int]] = {}  # filled as units are tried (most never are)
    slots = [d.count for d in problem.demands]
    total = min(sum(slots), len(cands))
    filled: list[list[int]] = [[] for _ in slots]
    placed = 0
    for u in cands:
        if placed == total:
            break
        adj[u] = allowed[u].nonzero()[0].tolist()
        if _augment(u, adj, slots, filled, [False] * len(slots)):
            placed += 1
    return [(u, k) for k, us in enumerate(filled) for u in us]


def _canonical_labels(
    problem: MatrixProblem, pairs: Sequence[tuple[int, int]]
) -> list[tuple[int, int]]:
    """The same units for each incident, each filling the demand the tie rule gives it.

    Which demand of an incident a unit fills does not change the objective (its ETA is the
    incident's), so where several of an incident's demands accept a unit, exact solvers may
    differ. The rule, for every exact solver: the incident's units in order of ETA, then unit id,
    each takes the first demand of the card (in card order) it may fill while the units after it
    can still all be placed. Pairs whose units can fill only one demand are returned unchanged.
    """
    allowed = problem.allowed
    by_inc: dict[int, list[int]] = {}
    for u, k in pairs:
        by_inc.setdefault(problem.demands[k].incident, []).append(u)
    out = list(pairs)
    for i, us in by_inc.items():
        ks = [k for k, d in enumerate(problem.demands) if d.incident == i]
        if all(int(allowed[u, ks].sum()) == 1 for u in us):
            continue  # every unit has one demand it may fill: nothing to choose
        order = sorted(us, key=lambda u: (problem.eta_s[u, i], problem.unit_ids[u]))
        adj = {u: [k for k in ks if allowed[u, k]] for u in us}
        slots = [problem.demands[k].count if k in ks else 0 for k in range(problem.n_demands)]
        chosen: dict[int, int] = {}
        for n, u in enumerate(order):
            for k in adj[u]:
                if slots[k] == 0:
                    continue
                slots[k] -= 1
                filled: list[list[int]] = [[] for _ in slots]
                rest = order[n + 1 :]
                if all(_augment(v, adj, slots, filled, [False] * len(slots)) for v in rest):
                    chosen[u] = k
                    break
                slots[k] += 1
        out = [(u, chosen[u]) if u in chosen else (u, k) for u, k in out]
    return out


def solve(
    problem: MatrixProblem,
    *,
    method: str = "auto",
    time_limit_s: float = 10.0,
    workers: int = 1,
    warm_start: bool = True,
    objective: str = "eta",
) -> MatrixSolution:
    """Solve an assignment problem.

    Parameters
    ----------
    problem : MatrixProblem
        The problem (see :func:`build_problem`).
    method : {"auto", "exact_single", "min_cost_flow", "cp_sat", "greedy"}
        ``auto``: ``exact_single`` when every demand belongs to one incident (and the objective
        is ``eta``), else min-cost flow when every incident needs one unit, else CP-SAT.
    time_limit_s : float, default 10
        CP-SAT time limit per phase (``optimal`` is False if it was hit).
    workers : int, default 1
        CP-SAT search workers (1 keeps results deterministic).
    warm_start : bool, default True
        Hint CP-SAT with the min-cost-flow solution of the same model and keep the better of the two
        (the flow is exact for this model, so the result is optimal even if CP-SAT hits its time
        limit); ``False`` runs CP-SAT alone (used by the tests to check it independently).
    objective : {"eta", "targets"}, default "eta"
        ``targets`` adds a level between coverage and ETA: maximise the priority-weighted number of
        incidents whose first mandatory unit arrives within its target (needs ``problem.target_s``;
        CP-SAT only, so ``auto`` then means ``cp_sat``).

    Returns
    -------
    MatrixSolution
    """
    if method not in METHODS:
        raise AssignError(f"method must be one of {METHODS}, got {method!r}")
    if not (isinstance(time_limit_s, int | float) and time_limit_s > 0):
        raise AssignError(f"time_limit_s must be > 0, got {time_limit_s!r}")
    if objective not in OBJECTIVES:
        raise AssignError(f"objective must be one of {OBJECTIVES}, got {objective!r}")
    targets = objective == "targets"
    if targets and method == "min_cost_flow":
        raise AssignError("objective 'targets' needs method 'cp_sat' (or 'auto')")
    if method == "auto" and targets:
        method = "cp_sat"
    if targets and method == "exact_single":
        raise AssignError("objective 'targets' needs method 'cp_sat' (or 'auto')")
    if method == "auto" and _one_incident(problem) is not None:
        method = "exact_single"
    if method == "auto":
        per_incident: dict[int, int] = {}
        for d in problem.demands:
            per_incident[d.incident] = per_incident.get(d.incident, 0) + d.count
        single = all(v == 1 for v in per_incident.values())
        method = "min_cost_flow" if single else "cp_sat"
    t0 = time.perf_counter()
    if method == "greedy":
        pairs, optimal = _solve_greedy(problem), False
    elif method == "exact_single":
        pairs, optimal = _solve_single(problem), True
    elif method == "min_cost_flow":
        pairs, optimal = _solve_min_cost_flow(problem)
    else:
        pairs, optimal = _solve_cp_sat(
            problem,
            time_limit_s=time_limit_s,
            workers=workers,
            warm_start=warm_start,
            targets=targets,
        )
    if method != "greedy":  # the tie rule of every exact solver (which demand a unit fills)
        pairs = _canonical_labels(problem, pairs)
    elapsed = time.perf_counter() - t0
    pairs = sorted(pairs)
    _check_pairs(problem, pairs)
    return MatrixSolution(
        method=method,
        pairs=tuple(pairs),
        objective=objective_of(problem, pairs),
        covered_weight=_covered_weight(problem, pairs),
        optimal=optimal,
        solve_time_s=elapsed,
    )


# ----------------------------------------------------------------------------------------------
# Results
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UnitAssignment:
    """A unit sent to an incident.

    Parameters
    ----------
    unit, vehicle : str
        Unit id and vehicle class.
    requirement : str
        Run-card class it fills.
    eta_s, drive_s, turnout_s : float
        ETA at the scene (= turnout + drive + walk), seconds.
    optional : bool
        Optional first responder (``only_if_first``).
    redispatched_from_priority : int or None
        Set when the unit was taken from an incident of that priority (redispatch rule).
    route : object or None
        Core ``Route`` unit -> scene, when routes were requested.
    """

    unit: str
    vehicle: str
    requirement: str
    eta_s: float
    drive_s: float
    turnout_s: float
    optional: bool = False
    redispatched_from_priority: int | None = None
    route: Any = None
    walk_s: float = 0.0
    walk_coords: tuple[tuple[float, float], ...] = ()

    @property
    def reach(self) -> str:
        """``"drive"``, or ``"drive+walk"`` when the crew covers the last part on foot
        (:mod:`dispatch.routing.reach`; ``walk_s`` may exceed the class's on-foot limit)."""
        return "drive+walk" if self.walk_s > 0 else "drive"

    @property
    def length_m(self) -> float | None:
        """Route length in metres (``None`` without a route)."""
        return None if self.route is None else float(self.route.length_m)

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        out: dict[str, Any] = {
            "unit": self.unit,
            "vehicle": self.vehicle,
            "requirement": self.requirement,
            "eta_s": round(self.eta_s, 1),
            "drive_s": round(self.drive_s, 1),
            "turnout_s": round(self.turnout_s, 1),
        }
        if self.optional:
            out["optional"] = True
        if self.redispatched_from_priority is not None:
            out["redispatched_from_priority"] = self.redispatched_from_priority
        if self.route is not None:
            out["length_m"] = round(float(self.route.length_m), 1)
        if self.walk_s > 0:
            out["reach"] = self.reach
            out["walk_s"] = round(self.walk_s, 1)
        return out


@dataclass(frozen=True)
class Shortfall:
    """A requirement not (fully) covered, and why."""

    requirement: str
    accepts: tuple[str, ...]
    missing: int
    reason: str

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "requirement": self.requirement,
            "accepts": list(self.accepts),
            "missing": self.missing,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class IncidentPlan:
    """What one incident gets.

    Parameters
    ----------
    incident : Incident
        The incident.
    units : tuple of UnitAssignment
        Units sent, by ETA then id.
    uncovered : tuple of Shortfall
        Mandatory requirements not filled.
    target_s : float
        Target response time of its priority.
    hospital : HospitalChoice or None
        Receiving hospital (115 and joint types, when hospitals were given).
    hospital_problem : str
        Why no hospital was chosen, if so.
    """

    incident: Incident
    units: tuple[UnitAssignment, ...]
    uncovered: tuple[Shortfall, ...]
    target_s: float
    hospital: HospitalChoice | None = None
    hospital_problem: str = ""

    @property
    def first_arrival_s(self) -> float:
        """ETA of the first unit (``inf`` if none)."""
        return min((a.eta_s for a in self.units), default=math.inf)

    @property
    def full_complement_s(self) -> float:
        """ETA of the last mandatory unit; ``inf`` if a requirement is uncovered."""
        if self.uncovered:
            return math.inf
        return max((a.eta_s for a in self.units if not a.optional), default=math.inf)

    @property
    def meets_target(self) -> bool:
        """Whether the first unit arrives within the priority's target."""
        return self.first_arrival_s <= self.target_s

    def to_dict(self) -> dict[str, Any]:
        """JSON form (``inf`` becomes ``null``)."""
        return {
            "incident": self.incident.id,
            "type": self.incident.type,
            "service": self.incident.kind.service,
            "priority": self.incident.priority,
            "lat": self.incident.lat,
            "lon": self.incident.lon,
            "units": [a.to_dict() for a in self.units],
            "first_arrival_s": _num(self.first_arrival_s),
            "full_complement_s": _num(self.full_complement_s),
            "target_s": self.target_s,
            "meets_target": self.meets_target,
            "uncovered": [s.to_dict() for s in self.uncovered],
            "hospital": None if self.hospital is None else self.hospital.to_dict(),
            **({"hospital_problem": self.hospital_problem} if self.hospital_problem else {}),
        }


def _num(x: float) -> float | None:
    return round(x, 1) if math.isfinite(x) else None


@dataclass(frozen=True)
class Plan:
    """A complete assignment of several incidents by one method."""

    method: str
    incidents: tuple[IncidentPlan, ...]
    objective: float
    covered: int
    required: int
    optimal: bool
    solve_time_s: float

    @property
    def within_target(self) -> dict[int, tuple[int, int]]:
        """Per priority: (incidents whose first unit arrives within target, incidents)."""
        out: dict[int, tuple[int, int]] = {}
        for p in self.incidents:
            met, n = out.get(p.incident.priority or 2, (0, 0))
            out[p.incident.priority or 2] = (met + int(p.meets_target), n + 1)
        return dict(sorted(out.items()))

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "method": self.method,
            "objective": round(self.objective, 1),
            "covered": self.covered,
            "required": self.required,
            "optimal": self.optimal,
            "solve_time_s": round(self.solve_time_s, 4),
            "within_target": _within_json(self),
            "incidents": [p.to_dict() for p in self.incidents],
        }


def _within_json(plan: Plan) -> dict[str, dict[str, int]]:
    return {f"P{k}": {"met": m, "incidents": n} for k, (m, n) in plan.within_target.items()}


@dataclass(frozen=True)
class AssignResult:
    """Result of :func:`assign`: the optimised plan and greedy on the same input."""

    plan: Plan
    greedy: Plan | None
    weights: Mapping[int, float] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    @property
    def objective(self) -> float:
        """Objective of the optimised plan."""
        return self.plan.objective

    @property
    def greedy_objective(self) -> float | None:
        """Objective of greedy sequential assignment."""
        return None if self.greedy is None else self.greedy.objective

    def to_dict(self) -> dict[str, Any]:
        """JSON form: ``{"incidents": [...], "objective": X, "greedy_objective": Y, ...}``."""
        out: dict[str, Any] = {
            "incidents": [p.to_dict() for p in self.plan.incidents],
            "objective": round(self.plan.objective, 1),
            "greedy_objective": None if self.greedy is None else round(self.greedy.objective, 1),
            "solver": self.plan.method,
            "optimal": self.plan.optimal,
            "covered": self.plan.covered,
            "required": self.plan.required,
            "greedy_covered": None if self.greedy is None else self.greedy.covered,
            "within_target": _within_json(self.plan),
            "greedy_within_target": None if self.greedy is None else _within_json(self.greedy),
            "objective_definition": "sum over assigned mandatory units of priority weight x eta_s",
            "priority_weights": {str(k): v for k, v in sorted(self.weights.items())},
            "solve_time_s": round(self.plan.solve_time_s, 4),
            "warnings": list(self.warnings),
        }
        if self.greedy is not None:
            g = self.greedy.objective
            out["improvement_s"] = round(g - self.plan.objective, 1)
            out["improvement_pct"] = round(100.0 * (g - self.plan.objective) / g, 2) if g else 0.0
            out["greedy"] = {"incidents": [p.to_dict() for p in self.greedy.incidents]}
        return out

    def geojson(self) -> dict[str, Any]:
        """FeatureCollection of the optimised plan: scenes, unit routes (when computed), hospitals."""
        feats: list[dict[str, Any]] = []
        for p in self.plan.incidents:
            feats += incident_features(p)
        return {"type": "FeatureCollection", "features": feats}


def incident_features(plan: IncidentPlan) -> list[dict[str, Any]]:
    """GeoJSON features (lon/lat) of one incident's plan.

    The scene (Point, ``role="incident"``), each unit's route when it was computed (LineString,
    ``role="unit_route"``; to the access point when the crew walks the rest, that walk a dashed
    LineString ``role="unit_walk"``), and the hospital (Point, ``role="hospital"``) with its route
    (``role="hospital_route"``) when computed.
    """
    inc = plan.incident
    feats: list[dict[str, Any]] = [
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [inc.lon, inc.lat]},
            "properties": {"role": "incident", **inc.to_dict()},
        }
    ]
    for a in plan.units:
        if a.route is not None and a.route.coords:
            f = a.route.geojson()
            props = f.setdefault("properties", {})
            props.update({"role": "unit_route", "incident": inc.id, **a.to_dict()})
            feats.append(f)
        if len(a.walk_coords) >= 2:  # the on-foot leg from the access point, drawn dashed
            feats.append({
                "type": "Feature",
                "geometry": {"type": "LineString",
                             "coordinates": [[lon, lat] for lat, lon in a.walk_coords]},
                "properties": {"role": "unit_walk", "incident": inc.id, "unit": a.unit,
                               "walk_s": round(a.walk_s, 1), "dashArray": "6 6"},
            })  # fmt: skip
    h = plan.hospital
    if h is not None:
        feats.append(
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [h.hospital.lon, h.hospital.lat]},
                "properties": {"role": "hospital", "incident": inc.id, **h.to_dict()},
            }
        )
        if h.route is not None and h.route.coords:
            f = h.route.geojson()
            f.setdefault("properties", {}).update({"role": "hospital_route", "incident": inc.id})
            feats.append(f)
    return feats


# ----------------------------------------------------------------------------------------------
# From incidents, units and run cards to plans (network-free core)
# ----------------------------------------------------------------------------------------------


def _demands(
    incidents: Sequence[Incident], run_cards: RunCards
) -> tuple[list[Demand], list[tuple[int, str, tuple[str, ...], int]]]:
    demands: list[Demand] = []
    optional: list[tuple[int, str, tuple[str, ...], int]] = []
    for i, inc in enumerate(incidents):
        card = run_cards.card(inc.type)
        for r in card.requirements:
            if r.only_if_first:
                optional.append((i, r.cls, r.accepts, r.count))
            else:
                demands.append(Demand(i, r.cls, r.accepts, r.count))
    return demands, optional


def _redispatch_mask(
    units: Sequence[Unit],
    incidents: Sequence[Incident],
    demands: Sequence[Demand],
    eta: np.ndarray,
    *,
    min_gain_s: float,
) -> np.ndarray:
    n_u = len(units)
    mask = np.zeros((n_u, len(demands)), dtype=bool)
    cand = [
        u
        for u, unit in enumerate(units)
        if unit.status == "en_route"
        and unit.assigned_priority is not None
        and unit.assigned_priority >= REDISPATCH_FROM_PRIORITY
    ]
    if not cand:
        return mask
    for k, d in enumerate(demands):
        if incidents[d.incident].priority != 1:
            continue
        free = [
            eta[u, d.incident]
            for u, unit in enumerate(units)
            if unit.dispatchable and unit.vehicle in d.accepts
        ]
        best_free = min(free, default=math.inf)
        for u in cand:
            if units[u].vehicle in d.accepts and eta[u, d.incident] + min_gain_s <= best_free:
                mask[u, k] = True
    return mask


def _shortfall_reason(
    d: Demand, units: Sequence[Unit], eta: np.ndarray, allowed_col: np.ndarray
) -> str:
    acc = "/".join(d.accepts)
    of_class = [u for u, unit in enumerate(units) if unit.vehicle in d.accepts]
    if not of_class:
        return f"no {acc} unit in the fleet"
    free = [u for u in of_class if units[u].dispatchable]
    if not free:
        statuses = sorted({units[u].status for u in of_class})
        return f"all {len(of_class)} {acc} unit(s) are {'/'.join(statuses)}"
    reach = [u for u in free if math.isfinite(eta[u, d.incident])]
    if not reach:
        return f"no free {acc} unit can reach the scene by road"
    if not allowed_col.any():
        return f"no free {acc} unit may be sent"
    return (
        f"all {len(reach)} free {acc} unit(s) that can reach it are assigned to other requirements"
    )


def _optional_pass(
    problem: MatrixProblem,
    pairs: Sequence[tuple[int, int]],
    optional: Sequence[tuple[int, str, tuple[str, ...], int]],
    available: np.ndarray,
) -> list[tuple[int, int, str]]:
    """Optional first responders: (unit row, incident, requirement class)."""
    used = np.zeros(problem.n_units, dtype=bool)
    first = np.full(problem.eta_s.shape[1], math.inf)
    for u, k in pairs:
        used[u] = True
        i = problem.demands[k].incident
        first[i] = min(first[i], problem.eta_s[u, i])
    rank = {i: n for n, i in enumerate(problem.order)}
    out = []
    for i, cls, accepts, count in sorted(optional, key=lambda t: rank[t[0]]):
        for _ in range(count):
            cands = [
                (problem.eta_s[u, i], problem.unit_ids[u], u)
                for u in range(problem.n_units)
                if available[u]
                and not used[u]
                and problem.unit_classes[u] in accepts
                and problem.eta_s[u, i] < first[i]
            ]
            if not cands:
                break
            u = int(min(cands)[2])
            used[u] = True
            out.append((u, i, cls))
    return out


def _make_plan(
    sol: MatrixSolution,
    problem: MatrixProblem,
    incidents: Sequence[Incident],
    units: Sequence[Unit],
    drive_s: np.ndarray,
    optional: Sequence[tuple[int, str, tuple[str, ...], int]],
    run_cards: RunCards,
    available: np.ndarray,
) -> Plan:
    extra = _optional_pass(problem, sol.pairs, optional, available)
    per_inc: dict[int, list[UnitAssignment]] = {i: [] for i in range(len(incidents))}

    def ua(u: int, i: int, cls: str, opt: bool) -> UnitAssignment:
        unit = units[u]
        redis = unit.assigned_priority if unit.status == "en_route" else None
        walk = float(problem.eta_s[u, i]) - unit.effective_turnout_s - float(drive_s[u, i])
        return UnitAssignment(
            unit=unit.id,
            vehicle=unit.vehicle,
            requirement=cls,
            eta_s=float(problem.eta_s[u, i]),
            drive_s=float(drive_s[u, i]),
            turnout_s=unit.effective_turnout_s,
            optional=opt,
            redispatched_from_priority=redis,
            walk_s=walk if walk > 1e-6 else 0.0,
        )

    filled = np.zeros(problem.n_demands, dtype=int)
    for u, k in sol.pairs:
        d = problem.demands[k]
        filled[k] += 1
        per_inc[d.incident].append(ua(u, d.incident, d.cls, False))
    for u, i, cls in extra:
        per_inc[i].append(ua(u, i, cls, True))
    short: dict[int, list[Shortfall]] = {i: [] for i in range(len(incidents))}
    for k, d in enumerate(problem.demands):
        if filled[k] < d.count:
            reason = _shortfall_reason(d, units, problem.eta_s, problem.allowed[:, k])
            short[d.incident].append(Shortfall(d.cls, d.accepts, int(d.count - filled[k]), reason))
    plans = tuple(
        IncidentPlan(
            incident=inc,
            units=tuple(sorted(per_inc[i], key=lambda a: (a.eta_s, a.unit))),
            uncovered=tuple(short[i]),
            target_s=run_cards.target_s(inc.priority or 2),
        )
        for i, inc in enumerate(incidents)
    )
    return Plan(
        method=sol.method,
        incidents=plans,
        objective=sol.objective,
        covered=len(sol.pairs),
        required=sum(d.count for d in problem.demands),
        optimal=sol.optimal,
        solve_time_s=sol.solve_time_s,
    )


def _check_inputs(
    incidents: Sequence[Incident], units: Sequence[Unit | Mapping[str, Any]]
) -> tuple[list[Incident], list[Unit]]:
    if (
        incidents is None
        or isinstance(incidents, str | bytes | Mapping | Incident)
        or not isinstance(incidents, Iterable)
    ):
        raise IncidentError(
            f"incidents must be a sequence of Incident, got {type(incidents).__name__}"
        )
    incs = list(incidents)
    if not incs:
        raise IncidentError("incidents: no incident given")
    for k, inc in enumerate(incs):
        if not isinstance(inc, Incident):
            raise IncidentError(f"incidents[{k}] must be an Incident, got {type(inc).__name__}")
    seen: set[str] = set()
    for inc in incs:
        if inc.id in seen:
            raise IncidentError(f"duplicate incident id {inc.id!r}")
        seen.add(inc.id)
    return incs, units_from_records(units)


def assign_matrix(
    eta_s: np.ndarray,
    incidents: Sequence[Incident],
    units: Sequence[Unit | Mapping[str, Any]],
    run_cards: RunCards | None = None,
    *,
    drive_s: np.ndarray | None = None,
    method: str = "auto",
    compare_greedy: bool = True,
    redispatch: bool = False,
    redispatch_min_gain_s: float = REDISPATCH_MIN_GAIN_S,
    time_limit_s: float = 10.0,
    objective: str = "eta",
) -> AssignResult:
    """:func:`assign` on a given ETA matrix (no road network): the testable core.

    Parameters
    ----------
    eta_s : ndarray, shape (n_units, n_incidents)
        Unit -> scene ETA in seconds *including* turnout (``inf`` = unreachable).
    incidents, units, run_cards
        As for :func:`assign`.
    drive_s : ndarray, optional
        Drive part of `eta_s` (default: `eta_s` minus each unit's turnout).
    method, compare_greedy, redispatch, redispatch_min_gain_s, time_limit_s, objective
        As for :func:`assign`.
    """
    incs, fleet = _check_inputs(incidents, units)
    cards = default_run_cards() if run_cards is None else run_cards
    eta = np.asarray(eta_s, dtype=float)
    if eta.shape != (len(fleet), len(incs)):
        raise AssignError(f"eta_s must have shape ({len(fleet)}, {len(incs)}), got {eta.shape}")
    if drive_s is None:
        turn = np.array([u.effective_turnout_s for u in fleet])
        drive = eta - turn[:, None]
    else:
        drive = np.asarray(drive_s, dtype=float)
    if not (math.isfinite(redispatch_min_gain_s) and redispatch_min_gain_s >= 0):
        raise AssignError(f"redispatch_min_gain_s must be >= 0, got {redispatch_min_gain_s!r}")
    demands, optional = _demands(incs, cards)
    available = np.array([UNIT_STATUSES[u.status] for u in fleet], dtype=bool)
    extra = (
        _redispatch_mask(fleet, incs, demands, eta, min_gain_s=redispatch_min_gain_s)
        if redispatch
        else None
    )
    weights = np.array([cards.weight(inc.priority or 2) for inc in incs])
    order = sorted(range(len(incs)), key=lambda i: (incs[i].priority, i))
    problem = build_problem(
        eta,
        [u.id for u in fleet],
        [u.vehicle for u in fleet],
        weights,
        demands,
        available=available,
        extra_allowed=extra,
        order=order,
        target_s=[cards.target_s(inc.priority or 2) for inc in incs],
    )
    sol = solve(problem, method=method, time_limit_s=time_limit_s, objective=objective)
    plan = _make_plan(sol, problem, incs, fleet, drive, optional, cards, available)
    greedy = None
    if compare_greedy and sol.method != "greedy":
        gsol = solve(problem, method="greedy")
        greedy = _make_plan(gsol, problem, incs, fleet, drive, optional, cards, available)
    return AssignResult(
        plan=plan, greedy=greedy, weights={p: lv.weight for p, lv in cards.priorities.items()}
    )


# ----------------------------------------------------------------------------------------------
# On the road network
# ----------------------------------------------------------------------------------------------


def eta_matrix(
    net: Any,
    units: Sequence[Unit],
    points: Sequence[tuple[float, float]] | np.ndarray,
    *,
    hour: float | None = None,
) -> tuple[np.ndarray, np.ndarray, dict[str, str]]:
    """Road ETAs from every unit to every point, by each unit's vehicle class.

    With the crew at the call: a point on a way the class cannot drive (an alley) is reached by
    driving to the best access point and walking (``net.reach_times``, :mod:`dispatch.routing.reach`),
    also beyond the class's on-foot limit (the long walk is in the ETA; ``fastest_units`` ranks
    such units after those within their limit).

    Returns
    -------
    eta_s : ndarray, shape (n_units, n_points)
        Turnout + drive + walk time, seconds (``inf`` = unreachable; also for ``busy`` and
        ``out_of_service`` units, which are not routed).
    drive_s : ndarray, shape (n_units, n_points)
        Drive time only (``eta_s - turnout - drive_s`` is the on-foot leg).
    problems : dict
        Unit id -> why it was treated as unreachable (e.g. off the map).
    """
    pts = np.asarray(points, dtype=float).reshape(-1, 2)
    n_u = len(units)
    drive = np.full((n_u, len(pts)), math.inf)
    walk = np.zeros((n_u, len(pts)))
    problems: dict[str, str] = {}
    reach_times = getattr(net, "reach_times", None)  # a Network; a plain TravelOracle drives only

    def times(origins: np.ndarray, cls: str) -> tuple[np.ndarray, np.ndarray]:
        if reach_times is None:
            tt = np.asarray(net.travel_times(origins, pts, vehicle=cls, hour=hour), dtype=float)
            return tt, np.zeros_like(tt)
        dr, wk = reach_times(origins, pts, vehicle=cls, hour=hour)
        return np.asarray(dr, dtype=float), np.asarray(wk, dtype=float)

    # a Network: units placed once per position (the engine's cache, which the service's fleet
    # handle fills), the same matrices as reach_times' (dispatch.routing.queries.unit_reach_times)
    engine = getattr(net, "engine", None) if reach_times is not None else None
    closures = getattr(net, "closure_set", None)
    reach = getattr(net, "reach_model", None)

    sites: dict[int, Any] = {}  # the walk network's answers per point, shared by the classes

    def placed_times(rows: list[int], cls: str) -> tuple[np.ndarray, np.ndarray] | None:
        if engine is None or closures is None:
            return None
        try:
            return unit_reach_times(engine, closures, reach,
                                    [(units[u].id, units[u].lat, units[u].lon) for u in rows],
                                    pts, vehicle=cls, hour=hour, sites=sites)  # fmt: skip
        except (PointError, FleetError):  # a unit or the point off the map: as below, named
            return None

    by_class: dict[str, list[int]] = {}
    for u, unit in enumerate(units):
        # busy / out of service: never sent (UNIT_STATUSES: whether a status is dispatchable, the
        # one table of Unit.dispatchable, read without its enum conversion per unit)
        if UNIT_STATUSES[unit.status] or unit.status == "en_route":
            by_class.setdefault(unit.vehicle, []).append(u)
    for cls, rows in sorted(by_class.items()):
        placed = placed_times(rows, cls)
        if placed is not None:
            drive[rows, :], walk[rows, :] = placed
            continue
        origins = np.array([units[u].point for u in rows], dtype=float)
        try:
            tt, wk = times(origins, cls)
            drive[rows, :] = tt.reshape(len(rows), len(pts))
            walk[rows, :] = wk.reshape(len(rows), len(pts))
        except PointError:
            for u in rows:  # find the culprits; the others still count
                try:
                    tt, wk = times(np.array([units[u].point]), cls)
                    drive[u, :] = tt.reshape(-1)
                    walk[u, :] = wk.reshape(-1)
                except PointError as exc:
                    problems[units[u].id] = str(exc)
    turn = np.array([u.effective_turnout_s for u in units], dtype=float)
    return drive + walk + turn[:, None], drive, problems


def check_scenes(net: Any, incidents: Sequence[Incident]) -> None:
    """Snap each incident scene; raise :class:`IncidentError` naming the incident if one fails."""
    reach_of = getattr(net, "reach", None)  # a Network: some class may reach it on foot
    engine = getattr(net, "engine", None)
    bbox = getattr(net, "bbox", None)
    for inc in incidents:
        lat, lon = inc.point
        if (
            engine is not None
            and bbox is not None
            and bbox[0] <= lat <= bbox[2]
            and bbox[1] <= lon <= bbox[3]
            and engine.snap_call(lat, lon, _AMBULANCE)[0] >= 0
        ):
            continue  # on a road an ambulance reaches: net.snap's answer, without its Snapped
        try:
            net.snap(inc.point, vehicle="ambulance")
        except PointError as exc:
            reach = reach_of(inc.point) if reach_of is not None else {}
            if any(r.reaches for r in reach.values()):
                continue  # off the ambulance network, but a class reaches it (drive + walk)
            if reach:  # say why no class reaches it (dispatch.routing.reach)
                why = "; ".join(f"{v}: {r.why}" for v, r in reach.items())
                raise IncidentError(f"incident {inc.id!r} is beyond the reach of every class: "
                                    f"{why}") from None  # fmt: skip
            raise IncidentError(f"incident {inc.id!r}: {exc}") from None


def attach_hospitals(
    net: Any,
    plan: Plan,
    hospitals: Sequence[Hospital] | None,
    *,
    hour: float | None = None,
) -> Plan:
    """Add the nearest capable hospital (road ETA scene -> hospital) to each 115/joint incident."""
    need = [p for p in plan.incidents if p.incident.kind.needs_hospital]
    if hospitals is None or not need:
        return plan
    eta = np.empty((len(need), len(hospitals)))
    if hospitals:
        scenes = np.array([p.incident.point for p in need], dtype=float)
        pts = np.array([h.point for h in hospitals], dtype=float)
        eta = np.asarray(
            net.travel_times(scenes, pts, vehicle="ambulance", hour=hour), dtype=float
        ).reshape(len(need), len(hospitals))
    choice: dict[str, IncidentPlan] = {}
    for n, p in enumerate(need):
        cap = p.incident.kind.hospital_capability or "general"
        try:
            idx, fb = choose_hospital(eta[n], hospitals, cap)
            hc = HospitalChoice(hospitals[idx], cap, float(eta[n, idx]), fb)
            choice[p.incident.id] = _replace_plan(p, hospital=hc)
        except NoHospitalError as exc:
            choice[p.incident.id] = _replace_plan(p, hospital_problem=str(exc))
    return Plan(
        method=plan.method,
        incidents=tuple(choice.get(p.incident.id, p) for p in plan.incidents),
        objective=plan.objective,
        covered=plan.covered,
        required=plan.required,
        optimal=plan.optimal,
        solve_time_s=plan.solve_time_s,
    )


def _replace_plan(p: IncidentPlan, **changes: Any) -> IncidentPlan:
    from dataclasses import replace

    return replace(p, **changes)


def assign(
    net: Any,
    incidents: Sequence[Incident],
    units: Sequence[Unit | Mapping[str, Any]],
    run_cards: RunCards | None = None,
    *,
    hospitals: Sequence[Hospital] | None = None,
    hour: float | None = None,
    method: str = "auto",
    compare_greedy: bool = True,
    redispatch: bool = False,
    redispatch_min_gain_s: float = REDISPATCH_MIN_GAIN_S,
    time_limit_s: float = 10.0,
    routes: bool = False,
    objective: str = "eta",
) -> AssignResult:
    """Assign units to several simultaneous incidents, minimising priority-weighted road ETAs.

    Parameters
    ----------
    net : Network
        A loaded road network (``dispatch.load_network``); ETAs are road travel times by each unit's
        vehicle class (``net.travel_times``) plus its turnout delay.
    incidents : sequence of Incident
        The calls to serve at once (unique ids).
    units : sequence of Unit or mapping
        The fleet (``id, vehicle, lat, lon`` plus ``status``, ``turnout_s``, ...).
    run_cards : RunCards, optional
        Run-card table (default: the built-in one, ``scenarios/run_cards.toml``).
    hospitals : sequence of Hospital, optional
        Receiving hospitals; 115 and joint incidents then get the nearest capable one.
    hour : float, optional
        Clock hour for time-of-day speeds and closures (see the core contract).
    method : {"auto", "exact_single", "min_cost_flow", "cp_sat", "greedy"}, default "auto"
        Solver (see the module docstring).
    compare_greedy : bool, default True
        Also run greedy sequential assignment on the same input.
    redispatch : bool, default False
        Allow the priority-1 redispatch rule.
    redispatch_min_gain_s : float, default :data:`REDISPATCH_MIN_GAIN_S`
        ETA gain a redispatched unit must bring.
    time_limit_s : float, default 10
        CP-SAT time limit per phase.
    routes : bool, default False
        Attach each assigned unit's route (``net.route``) in the optimised plan.
    objective : {"eta", "targets"}, default "eta"
        ``targets``: after coverage, first maximise the priority-weighted number of incidents whose
        first mandatory unit arrives within its priority's target, then minimise weighted ETA.

    Returns
    -------
    AssignResult
        Plan, objective, uncovered requirements with reasons, and greedy on the same input.

    Raises
    ------
    IncidentError
        Unknown type, duplicate ids, or a scene off the road network.
    FleetError
        Empty fleet, duplicate unit ids, unknown class.
    RunCardError
        No run card for an incident type.
    """
    incs, fleet = _check_inputs(incidents, units)
    hour = check_hour(hour)
    cards = default_run_cards() if run_cards is None else run_cards
    for inc in incs:
        cards.card(inc.type)
    check_scenes(net, incs)
    eta, drive, problems = eta_matrix(net, fleet, [i.point for i in incs], hour=hour)
    warnings = tuple(f"unit {uid!r} treated as unreachable: {msg}" for uid, msg in problems.items())
    res = assign_matrix(
        eta,
        incs,
        fleet,
        cards,
        drive_s=drive,
        method=method,
        compare_greedy=compare_greedy,
        redispatch=redispatch,
        redispatch_min_gain_s=redispatch_min_gain_s,
        time_limit_s=time_limit_s,
        objective=objective,
    )
    plan, greedy = res.plan, res.greedy
    if routes:
        plan = attach_routes(net, plan, fleet, hour=hour)
    if hospitals is not None:
        plan = attach_hospitals(net, plan, hospitals, hour=hour)
        greedy = None if greedy is None else attach_hospitals(net, greedy, hospitals, hour=hour)
    return AssignResult(plan=plan, greedy=greedy, weights=res.weights, warnings=warnings)


def attach_routes(
    net: Any, plan: Plan, units: Sequence[Unit], *, hour: float | None = None
) -> Plan:
    """Attach each assigned unit's road route (unit position -> scene) to `plan`."""
    from dataclasses import replace

    by_id = {u.id: u for u in units}
    incs = []
    for p in plan.incidents:
        routed = tuple(
            replace(
                a,
                route=net.route(
                    by_id[a.unit].point, p.incident.point, vehicle=a.vehicle, hour=hour
                ),
            )
            for a in p.units
        )
        incs.append(replace(p, units=routed))
    return replace(plan, incidents=tuple(incs))
