"""The exact one-incident solver (``exact_single``) against CP-SAT, the min-cost flow and brute
force: the same units, the same objective, the same requirement per unit (the tie rule), on random
and hand-made cases; and ``recommend`` on Da Nang equal to CP-SAT's plan on the same ETAs."""

from __future__ import annotations

import math

import numpy as np
import pytest

import dispatch
from dispatch.decide.assign import (
    AssignError,
    Demand,
    MatrixProblem,
    assign_matrix,
    build_problem,
    eta_matrix,
    solve,
)
from dispatch.decide.incidents import Incident, Unit
from dispatch.decide.recommend import recommend
from dispatch.decide.runcards import RunCards, default_run_cards
from tests.decide.oracles import feasible_assignments

INF = math.inf
CLASSES = ("ambulance", "fire_engine", "ladder", "motorbike")
EXACT = [("exact_single", True), ("min_cost_flow", True), ("cp_sat", False), ("cp_sat", True)]


def brute_force(problem: MatrixProblem) -> tuple[int, list[tuple[int, int]]]:
    """Every assignment of units to slots: the most slots filled, then the least ETA summed in
    milliseconds, then the least sum of the units' ranks by id; of that unit set, the labelling
    that is smallest in card order with the units taken by (ETA, id). Returns (slots, pairs)."""
    i = problem.demands[0].incident
    rank = {u: r for r, u in enumerate(sorted(range(problem.n_units),
                                              key=lambda u: problem.unit_ids[u]))}  # fmt: skip
    best_key, best_sets = None, []
    for pairs in feasible_assignments(problem):
        ms = sum(round(float(problem.eta_s[u, i]) * 1000) for u, _ in pairs)
        key = (-len(pairs), ms, sum(rank[u] for u, _ in pairs))
        if best_key is None or key < best_key:
            best_key, best_sets = key, [pairs]
        elif key == best_key:
            best_sets.append(pairs)
    assert best_key is not None
    unit_sets = {frozenset(u for u, _ in p) for p in best_sets}
    assert len(unit_sets) == 1, "the optimum's unit set is unique (distinct unit costs)"
    order = sorted(next(iter(unit_sets)), key=lambda u: (problem.eta_s[u, i], problem.unit_ids[u]))
    labelled = min(best_sets, key=lambda p: [dict(p)[u] for u in order])
    return -best_key[0], sorted(labelled)


def random_single(rng: np.random.Generator, n_units: int) -> MatrixProblem:
    """One incident; requirements with overlapping accepted classes; ETAs on a coarse grid (many
    exact ties), some unreachable; some units unavailable; a few redispatch pairs allowed."""
    classes = [CLASSES[int(c)] for c in rng.integers(0, 3, n_units)]
    eta = rng.choice([60.0, 90.0, 120.0, 120.0, 150.0, 240.0, 300.5], (n_units, 2))
    eta[rng.random((n_units, 2)) < 0.1] = INF
    demands = []
    for _ in range(int(rng.integers(1, 4))):
        accepts = tuple(sorted({CLASSES[int(c)] for c in rng.integers(0, 3, 2)}))
        demands.append(Demand(1, "/".join(accepts), accepts, int(rng.integers(1, 3))))
    available = rng.random(n_units) > 0.2
    extra = rng.random((n_units, len(demands))) < 0.1
    ids = [f"U{j}" for j in rng.permutation(n_units)]  # ids not in row order
    return build_problem(eta, ids, classes, [2.0, 4.0], demands, available=available,
                         extra_allowed=extra)  # fmt: skip


@pytest.mark.parametrize("seed", range(40))
def test_random_cases_every_exact_solver_gives_the_brute_force_answer(seed: int) -> None:
    rng = np.random.default_rng(1000 + seed)
    problem = random_single(rng, int(rng.integers(1, 7)))
    slots, want = brute_force(problem)
    for method, warm in EXACT:
        sol = solve(problem, method=method, warm_start=warm)
        assert sol.optimal, method
        assert list(sol.pairs) == want, (method, warm)
        assert len(sol.pairs) == slots
    assert solve(problem).method == "exact_single"


@pytest.mark.parametrize("seed", range(30))
def test_larger_random_cases_agree_with_cp_sat(seed: int) -> None:
    """Beyond brute force (up to 50 units, as the service's fleet): CP-SAT on its own proves the
    optimum; the pairs (units and requirements) are identical."""
    rng = np.random.default_rng(2000 + seed)
    problem = random_single(rng, int(rng.integers(8, 51)))
    fast = solve(problem, method="exact_single")
    for method, warm in EXACT[1:]:
        sol = solve(problem, method=method, warm_start=warm)
        assert sol.optimal
        assert sol.pairs == fast.pairs, (method, warm)
        assert sol.objective == fast.objective and sol.covered_weight == fast.covered_weight


def test_equal_etas_smallest_ids_and_the_requirement_rule() -> None:
    # "engine" (fire_engine or ladder) x1 then "ladder" x1; three units at the same ETA
    cards = RunCards.from_dict({
        "compatibility": {"engine": ["fire_engine", "ladder"]},
        "run_cards": {"structure_fire": {"units": [{"class": "engine", "count": 1},
                                                   {"class": "ladder", "count": 1}]}},
    })  # fmt: skip
    fleet = [Unit("L9", "ladder", 16.0, 108.0, turnout_s=0.0),
             Unit("L2", "ladder", 16.0, 108.0, turnout_s=0.0),
             Unit("E5", "fire_engine", 16.0, 108.0, turnout_s=0.0)]  # fmt: skip
    incident = [Incident("F", 16.0, 108.0, "structure_fire")]
    eta = np.array([[100.0], [100.0], [100.0]])
    plans = {m: assign_matrix(eta, incident, fleet, cards, method=m, compare_greedy=False)
             for m in ("exact_single", "min_cost_flow", "cp_sat")}  # fmt: skip
    for m, res in plans.items():
        got = {a.unit: a.requirement for a in res.plan.incidents[0].units}
        # ties: the smallest ids (E5, L2); by (ETA, id) E5 first takes the first requirement
        # it can fill (engine), L2 then the ladder slot
        assert got == {"E5": "engine", "L2": "ladder"}, m
    # a faster ladder: by (ETA, id) it comes first and takes "engine"; the engine would then be
    # left out, so the rule gives the ladder "ladder" (the next units must still fit)
    eta = np.array([[300.0], [50.0], [100.0]])
    for m in ("exact_single", "min_cost_flow", "cp_sat"):
        res = assign_matrix(eta, incident, fleet, cards, method=m, compare_greedy=False)
        got = {a.unit: a.requirement for a in res.plan.incidents[0].units}
        assert got == {"L2": "ladder", "E5": "engine"}, m
    # two ladders fastest: the first takes "engine", the second "ladder"; the engine stays home
    eta = np.array([[60.0], [50.0], [100.0]])
    for m in ("exact_single", "min_cost_flow", "cp_sat"):
        res = assign_matrix(eta, incident, fleet, cards, method=m, compare_greedy=False)
        got = {a.unit: a.requirement for a in res.plan.incidents[0].units}
        assert got == {"L2": "engine", "L9": "ladder"}, m


def test_more_slots_than_units_and_nothing_to_send() -> None:
    fleet = [Unit("A1", "ambulance", 16.0, 108.0, turnout_s=0.0),
             Unit("E1", "fire_engine", 16.0, 108.0, turnout_s=0.0)]  # fmt: skip
    fire = [Incident("F", 16.0, 108.0, "building_collapse")]  # 2 engines, ladder, 2 ambulances
    res = assign_matrix(np.array([[200.0], [100.0]]), fire, fleet)
    p = res.plan.incidents[0]
    assert res.plan.method == "exact_single"
    assert sorted(a.unit for a in p.units) == ["A1", "E1"]
    assert sorted((s.requirement, s.missing) for s in p.uncovered) == [
        ("ambulance", 1), ("fire_engine", 1), ("ladder", 1)]  # fmt: skip
    res = assign_matrix(np.array([[INF], [INF]]), fire, fleet)
    assert res.plan.incidents[0].units == () and res.objective == 0.0


def test_exact_single_refuses_a_surge_and_the_targets_objective() -> None:
    fleet = [Unit("A1", "ambulance", 16.0, 108.0)]
    two = [Incident("C1", 16.0, 108.0, "stroke"), Incident("C2", 16.0, 108.0, "stroke")]
    with pytest.raises(AssignError, match="one incident"):
        assign_matrix(np.array([[100.0, 200.0]]), two, fleet, method="exact_single")
    with pytest.raises(AssignError, match="targets"):
        assign_matrix(np.array([[100.0]]), two[:1], fleet, method="exact_single",
                      objective="targets")  # fmt: skip


def test_recommend_on_danang_is_cp_sats_plan(danang: dispatch.Network) -> None:
    """The library's answer on the real network equals CP-SAT's (and the flow's) plan on the same
    ETA matrix: units, requirements, ETAs; for every incident type of the built-in cards."""
    rng = np.random.default_rng(8)
    nodes = rng.choice(danang.n_nodes, 60, replace=False)
    fleet = [Unit(f"U{i:02d}", CLASSES[i % 4], float(danang.node_lat[n]),
                  float(danang.node_lon[n])) for i, n in enumerate(nodes[:40])]  # fmt: skip
    cards = default_run_cards()
    types = sorted(cards.cards)
    seen = 0
    for j, n in enumerate(nodes[40:]):
        inc = Incident(f"I{j}", float(danang.node_lat[n]), float(danang.node_lon[n]),
                       types[j % len(types)])  # fmt: skip
        try:
            rec = recommend(danang, inc, fleet, cards, routes=False)
        except dispatch.DispatchError:
            continue  # a node no class reaches
        seen += 1
        assert rec.solver == "exact_single"
        eta, drive, _ = eta_matrix(danang, fleet, [inc.point])
        for method in ("cp_sat", "min_cost_flow"):
            res = assign_matrix(eta, [inc], fleet, cards, drive_s=drive, method=method,
                                compare_greedy=False)  # fmt: skip
            assert res.plan.incidents[0].to_dict()["units"] == rec.plan.to_dict()["units"]
            assert res.plan.objective == rec.objective
    assert seen >= 15
