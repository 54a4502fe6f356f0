"""Move-up decisions: DMEXCLP and compliance tables against brute force; real-map wiring."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

import dispatch
from dispatch.plan import PlanError
from dispatch.plan.demand import grid_demand, travel_time_matrix
from dispatch.plan.io import read_points
from dispatch.plan.moveup import (
    DMEXCLP,
    compliance_moves,
    compliance_table,
    dmexclp_station,
)

ROOT = Path(__file__).parents[2]


def expected_cover(
    times: np.ndarray, w: np.ndarray, units_at: list[int], t: float, q: float
) -> float:
    """sum_i w_i (1 - q^k_i), k_i = units (at the given stations) within t of point i."""
    k = np.zeros(times.shape[1])
    for s in units_at:
        k += times[s] <= t
    return float((w * (1 - q**k)).sum())


@pytest.mark.parametrize("seed", range(6))
def test_dmexclp_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    times = rng.uniform(0, 900, (6, 40))
    w = rng.integers(1, 5, 40).astype(float)
    q = float(rng.uniform(0.1, 0.7))
    idle = list(rng.integers(0, 6, 3))
    policy = DMEXCLP(times, w, target_s=480, busy_fraction=q)
    s = policy.choose(idle_stations=idle)
    vals = [expected_cover(times, w, [*idle, j], 480, q) for j in range(6)]
    assert vals[s] == pytest.approx(max(vals))
    # an idle unit away from a station, given by its own row of times, counts the same
    assert policy.choose(idle_stations=idle[:2], idle_times_s=times[idle[2]][None, :]) == s
    assert dmexclp_station(times, w, target_s=480, busy_fraction=q, idle_stations=idle) == s


def test_dmexclp_ties_and_reach() -> None:
    times = np.array([[100.0, 900.0], [100.0, 900.0], [900.0, 100.0]])
    policy = DMEXCLP(times, np.array([1.0, 1.0]), target_s=480, busy_fraction=0.5)
    # stations 0 and 1 tie on gain; the freed unit goes to the one it reaches sooner
    assert policy.choose(idle_stations=[2], travel_s=[300.0, 100.0, 50.0]) == 1
    assert policy.choose(idle_stations=[2]) == 0  # no travel times: lowest index
    # every idle unit already at point 1's station: a second one there is worth (1-q) q = 0.25
    assert policy.choose(idle_stations=[0]) == 2
    # station 2 is out of reach: among the rest (equal gains) the nearer one
    assert policy.choose(idle_stations=[0], travel_s=[20.0, 10.0, 999.0], max_travel_s=60) == 1
    with pytest.raises(PlanError, match="idle station 7"):
        policy.choose(idle_stations=[7])
    with pytest.raises(PlanError, match="busy_fraction=1"):
        DMEXCLP(times, [1.0, 1.0], target_s=480, busy_fraction=1)
    with pytest.raises(PlanError, match="weight has 3 values"):
        DMEXCLP(times, [1.0, 1.0, 1.0], target_s=480, busy_fraction=0.2)


@pytest.mark.parametrize("seed", range(3))
def test_compliance_table_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    times = rng.uniform(0, 900, (5, 30))
    w = rng.integers(1, 5, 30).astype(float)
    q = 0.3
    table = compliance_table(times, w, target_s=400, n_units=4, busy_fraction=q)
    assert table.shape == (5, 5) and list(table.sum(axis=1)) == [0, 1, 2, 3, 4]
    for n in range(1, 5):
        got = expected_cover(times, w, list(np.repeat(np.arange(5), table[n])), 400, q)
        best = max(expected_cover(times, w, list(c), 400, q)
                   for c in itertools.combinations_with_replacement(range(5), n))  # fmt: skip
        assert got == pytest.approx(best)


@pytest.mark.parametrize("seed", range(4))
def test_compliance_moves_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    table = np.array([[0, 0, 0, 0], [0, 1, 0, 0], [1, 1, 0, 0], [1, 1, 1, 0], [1, 1, 1, 1]])
    n = 3
    drive = rng.uniform(0, 600, (n, 4))
    got = compliance_moves(table, drive)
    assert sorted(got.tolist()) == [0, 1, 2]
    best = min(sum(drive[u, s] for u, s in enumerate(p)) for p in itertools.permutations([0, 1, 2]))
    assert sum(drive[u, s] for u, s in enumerate(got)) == pytest.approx(best)
    with pytest.raises(PlanError, match="5 free units"):
        compliance_moves(table, rng.uniform(0, 1, (5, 4)))


def test_real_map_dmexclp(danang: dispatch.Network) -> None:
    st = read_points(ROOT / "scenarios" / "danang_moveup_stations.csv", what="stations")
    demand = grid_demand(danang, cell_m=250)
    times = travel_time_matrix(danang, np.column_stack([st.lat, st.lon]), demand,
                               vehicle="ambulance", hour=17.5) + 60.0  # fmt: skip
    policy = DMEXCLP(times, demand.weight, target_s=180, busy_fraction=0.3)
    # all other idle ambulances wait at the three hospitals: the freed unit goes where it adds most
    s = policy.choose(idle_stations=[0, 1, 2])
    gains = policy.gains([0, 1, 2])
    assert gains[s] == gains.max() and gains[s] > 0
    table = compliance_table(times, demand.weight, target_s=180, n_units=5, busy_fraction=0.3)
    assert list(table.sum(axis=1)) == [0, 1, 2, 3, 4, 5]
