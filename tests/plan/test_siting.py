"""Siting: optimality against brute force on small instances, agreement with spopt's MCLP / PMedian /
LSCP on the same cost matrix (spopt is in the test extra), the CLI and its one-line errors."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest

import dispatch
from dispatch.cli import main
from dispatch.plan import PlanError
from dispatch.plan.demand import grid_demand, road_node_candidates, travel_time_matrix
from dispatch.plan.siting import lscp, mclp, mexclp, pmedian, solve

DATA = Path(__file__).parents[1] / "data" / "plan"
ROOT = Path(__file__).parents[2]
INF = math.inf


def instance(seed: int, n_sites: int = 7, n_points: int = 22) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    c = rng.uniform(0, 600, (n_sites, n_points)).round(1)
    c[rng.random(c.shape) < 0.1] = INF  # some pairs unreachable
    return c, rng.integers(1, 10, n_points).astype(float)


# independent objectives (not the module's own objective_of)
def covered(c: np.ndarray, w: np.ndarray, sites: tuple[int, ...], t: float) -> float:
    return float(sum(w[i] for i in range(c.shape[1]) if any(c[j, i] <= t for j in sites)))


def median(c: np.ndarray, w: np.ndarray, sites: tuple[int, ...]) -> tuple[float, float]:
    """(weight of points reachable by some site but no open one, weighted time of the others)"""
    unserved = total = 0.0
    for i in range(c.shape[1]):
        if np.isfinite(c[:, i]).any():
            best = min(c[j, i] for j in sites)
            if math.isfinite(best):
                total += w[i] * best
            else:
                unserved += w[i]
    return unserved, total


def expected(c: np.ndarray, w: np.ndarray, units: tuple[int, ...], t: float, q: float) -> float:
    return float(sum(w[i] * (1 - q ** sum(c[j, i] <= t for j in units)) for i in range(c.shape[1])))


def test_hand_cover_instance() -> None:
    # 3 sites x 4 points; site 0 covers {0, 1}, site 1 covers {1, 2}, site 2 covers {2, 3}
    c = np.array([[1, 1, 9, 9], [9, 1, 1, 9], [9, 9, 1, 1]], dtype=float)
    objs = [mclp(c, np.ones(4), target_s=5, p=p).objective for p in range(4)]
    assert objs == [0.0, 2.0, 4.0, 4.0]
    r = mclp(c, np.ones(4), target_s=5, p=1, existing=[1])
    assert r.existing == (1,) and r.objective == 3.0 and r.marginal[0][1] == 1.0
    assert lscp(c, target_s=5).selected in ((0, 2), (2, 0))
    # MEXCLP with q = 0.5: a second unit on site 1 is worth less than a first unit elsewhere
    m = mexclp(c, np.ones(4), target_s=5, p=2, busy_fraction=0.5)
    assert sorted(m.selected) == [0, 2] and m.objective == pytest.approx(2.0)


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("p", [1, 2, 3])
def test_against_brute_force(seed: int, p: int) -> None:
    c, w = instance(seed)
    n = c.shape[0]
    t = 240.0
    r = mclp(c, w, target_s=t, p=p)
    assert r.optimal and r.gap == 0
    assert r.objective == pytest.approx(
        max(covered(c, w, s, t) for s in itertools.combinations(range(n), p))
    )
    assert r.objective == pytest.approx(covered(c, w, r.selected, t))
    assert sum(g for _, g in r.marginal) == pytest.approx(r.objective)
    gains = [g for _, g in r.marginal]
    assert gains == sorted(gains, reverse=True) and min(gains) >= 0  # coverage is submodular
    r = pmedian(c, w, p=p)
    best_pm = min(median(c, w, s) for s in itertools.combinations(range(n), p))
    assert (r.params["unserved_weight"], r.objective) == pytest.approx(best_pm)
    q = 0.4
    r = mexclp(c, w, target_s=t, p=p, busy_fraction=q)
    best = max(
        expected(c, w, s, t, q) for s in itertools.combinations_with_replacement(range(n), p)
    )
    assert r.objective == pytest.approx(best) and len(r.selected) == p
    # with sites 0 and 1 fixed open
    r = mclp(c, w, target_s=t, p=p, existing=[0, 1])
    others = [j for j in range(n) if j not in (0, 1)]
    bf = max(covered(c, w, (0, 1, *s), t) for s in itertools.combinations(others, p))
    assert r.objective == pytest.approx(bf) and not set(r.selected) & {0, 1}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_lscp_brute_force(seed: int) -> None:
    c, w = instance(seed)
    t = 240.0
    r = lscp(c, w, target_s=t)
    coverable = (c <= t).any(axis=0)
    assert r.uncoverable_points == int((~coverable).sum())
    need = next(k for k in range(c.shape[0] + 1) for s in itertools.combinations(range(c.shape[0]), k)
                if all((c[list(s), i] <= t).any() for i in np.flatnonzero(coverable)))  # fmt: skip
    assert r.objective == need == len(r.selected)
    assert r.covered_share == pytest.approx(w[coverable].sum() / w.sum())


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # pulp 3.x announces its 4.0 API
def test_against_spopt() -> None:
    import pulp  # installed with spopt (the test extra)
    from spopt import locate

    solver = pulp.PULP_CBC_CMD(msg=False)
    for seed in (4, 5):
        c, w = instance(seed, n_sites=12, n_points=60)
        c[~np.isfinite(c)] = 10_000.0  # spopt needs finite costs: far beyond any target
        t, p = 200.0, 3
        ours = mclp(c, w, target_s=t, p=p)
        theirs = locate.MCLP.from_cost_matrix(c.T, w, service_radius=t, p_facilities=p).solve(
            solver
        )
        open_ = [j for j in range(c.shape[0]) if theirs.fac_vars[j].value() > 0.5]
        assert ours.objective == pytest.approx(covered(c, w, tuple(open_), t))
        pre = np.zeros(c.shape[0], dtype=int)
        pre[[0, 5]] = 1
        ours = mclp(c, w, target_s=t, p=p, existing=[0, 5])
        theirs = locate.MCLP.from_cost_matrix(c.T, w, service_radius=t, p_facilities=p + 2,
                                              predefined_facilities_arr=pre).solve(solver)  # fmt: skip
        open_ = [j for j in range(c.shape[0]) if theirs.fac_vars[j].value() > 0.5]
        assert ours.objective == pytest.approx(covered(c, w, tuple(open_), t))
        ours = pmedian(c, w, p=p)
        theirs = locate.PMedian.from_cost_matrix(c.T, w, p_facilities=p).solve(solver)
        assert ours.objective == pytest.approx(pulp.value(theirs.problem.objective), rel=1e-9)
        ours = lscp(c, w, target_s=400.0)
        theirs = locate.LSCP.from_cost_matrix(c.T, service_radius=400.0).solve(solver)
        assert ours.objective == pytest.approx(pulp.value(theirs.problem.objective))


def test_real_map_mclp_monotone(danang: dispatch.Network) -> None:
    lat, lon, ids = road_node_candidates(danang, 30)
    demand = grid_demand(danang, cell_m=300)
    cost = travel_time_matrix(danang, np.column_stack([lat, lon]), demand, vehicle="ambulance")
    objs = [mclp(cost, demand.weight, target_s=120, p=p).objective for p in (1, 2, 3, 4)]
    assert objs == sorted(objs) and objs[0] < objs[-1]
    full = lscp(cost, demand.weight, target_s=120)
    r = mclp(cost, demand.weight, target_s=120, p=len(full.selected))
    assert r.covered_share == pytest.approx(full.covered_share)  # LSCP's count suffices for MCLP


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda c, w: mclp(c, w, target_s=5, p=4), "p=4 is larger than the 3 candidate sites"),
        (lambda c, w: mclp(c, w, target_s=5, p=2, existing=[0, 1]), "p=2 is larger than the 1"),
        (lambda c, w: mclp(c, w, target_s=0, p=1), "target_s=0"),
        (lambda c, w: mclp(c, w[:2], target_s=5, p=1), "weight has 2 values"),
        (lambda c, w: mexclp(c, w, target_s=5, p=1, busy_fraction=1.0), "busy_fraction=1.0"),
        (lambda c, w: pmedian(c, w, p=0), "p=0 with no existing site"),
        (lambda c, w: mclp(c, w, target_s=5, p=-1), "p=-1"),
        (lambda c, w: mclp(-c, w, target_s=5, p=1), "must be >= 0"),
        (lambda c, w: solve("pcentre", c, w, p=1), "model='pcentre'"),
    ],
)
def test_bad_input(call: object, message: str) -> None:
    c = np.array([[1, 1, 9, 9], [9, 1, 1, 9], [9, 9, 1, 1]], dtype=float)
    with pytest.raises(PlanError, match=message.replace("(", r"\(")):
        call(c, np.ones(4))  # type: ignore[operator]


def test_target_no_site_can_meet() -> None:
    c = np.array([[100.0, 200.0], [150.0, 300.0]])
    r = mclp(c, np.ones(2), target_s=50, p=1)
    assert r.objective == 0 and r.uncoverable_points == 2 and r.covered_share == 0
    r = lscp(c, np.ones(2), target_s=50)
    assert r.selected == () and r.uncoverable_points == 2


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_cli_site(capsys: pytest.CaptureFixture[str]) -> None:
    existing = str(ROOT / "scenarios" / "danang_coverage_existing.csv")
    rc, out, _ = run(capsys, "site", "danang", "--candidates", "osm", "--n-candidates", "40",
                     "--model", "mclp", "-p", "2", "--existing", existing, "--target-s", "120",
                     "--json")  # fmt: skip
    assert rc == 0
    s = json.loads(out)
    assert s["optimal"] and s["gap"] == 0 and len(s["selected"]) == 2 and s["existing"]
    assert all(x.startswith("node/") for x in s["selected"])
    assert [m["site"] for m in s["marginal"]] == s["selected"]
    rc, out, _ = run(capsys, "site", "danang", "--candidates", "osm", "--n-candidates", "40",
                     "--model", "mexclp", "-p", "3", "--busy-fraction", "0.3")  # fmt: skip
    assert rc == 0 and "optimal" in out and "expected demand weight covered" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--candidates", str(DATA / "bad_candidates_row.csv"), "-p", "1"], "line 4: field lon="),
        (["--candidates", str(DATA / "bad_candidates_duplicate.csv"), "-p", "1"], "duplicate id"),
        (["--candidates", str(DATA / "candidates_two.csv"), "-p", "5"], "-p 5 is larger than"),
        (["--candidates", "osm", "--model", "mclp"], "needs -p"),
        (["--candidates", "osm", "-p", "1", "--class", "tank"], "tank"),
        (
            ["--candidates", "osm", "-p", "1", "--demand", str(DATA / "bad_demand_row.csv")],
            "line 4",
        ),
    ],
)
def test_cli_site_bad_input(capsys: pytest.CaptureFixture[str], argv: list[str],
                            message: str) -> None:  # fmt: skip
    rc, _, err = run(capsys, "site", "danang", *argv)
    assert rc == 2 and message in err and err.count("\n") == 1
