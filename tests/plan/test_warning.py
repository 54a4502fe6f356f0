"""Coverage-hole warning: hand-checked cases, incremental updates equal a rebuild, real fleet input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import dispatch
from dispatch.plan import PlanError
from dispatch.plan.coverage import coverage
from dispatch.plan.demand import grid_demand
from dispatch.plan.io import read_units
from dispatch.plan.warning import CoverageState, coverage_warning

ROOT = Path(__file__).parents[2]
INF = np.inf


def hand_state() -> CoverageState:
    # 4 ambulances + 1 engine x 5 points (weights 1..5), target 300 s
    resp = np.array([[100, 100, INF, INF, INF],
                     [200, INF, 100, INF, INF],
                     [INF, INF, 250, 290, INF],
                     [INF, INF, INF, 100, INF],
                     [100, 100, 100, 100, 100]], dtype=float)  # fmt: skip
    return CoverageState.from_matrix(resp, ["a1", "a2", "a3", "a4", "e1"],
                                     ["ambulance"] * 4 + ["fire_engine"], [1, 2, 3, 4, 5],
                                     target_s=300, zone=["n", "n", "s", "s", "s"])  # fmt: skip


def test_hand_warning() -> None:
    st = hand_state()
    # ambulances cover points 0..3 (weight 10 of 15); point 1 only by a1, point 2 by a2 and a3
    assert st.share("ambulance") == pytest.approx(10 / 15)
    w = st.warn([("a1", 120.0), ("a2", 140.0), ("a3", 200.0)], max_delay_s=30)
    by = {c.unit: c for c in w.candidates}
    assert by["a1"].after == pytest.approx(8 / 15)  # loses point 1 (weight 2)
    assert by["a2"].after == pytest.approx(10 / 15)  # point 0 still a1, point 2 still a3
    assert by["a3"].after == pytest.approx(10 / 15)
    assert w.fastest == "a1" and w.alternative == "a2" and w.alternative_delay_s == 20
    assert by["a1"].zones_below == ("n",)  # zone n: 3/3 -> 1/3 < 0.8
    assert "a2 arrives 20 s later" in w.message
    # a3 is 80 s later than a1: outside a 30 s window, inside a 90 s one (a2 wins the tie on ETA)
    assert st.warn([("a1", 120.0), ("a3", 200.0)], max_delay_s=30).alternative is None
    assert st.warn([("a1", 120.0), ("a3", 200.0)], max_delay_s=90).alternative == "a3"
    # the engine's coverage is its own class's
    e = st.warn([("e1", 60.0)]).candidates[0]
    assert (e.before, e.after) == (1.0, 0.0)


def test_incremental_updates() -> None:
    st = hand_state()
    st.set_available("a2", False)  # busy: a3 alone covers point 2
    w = st.warn([("a3", 100.0)])
    assert w.candidates[0].after == pytest.approx(7 / 15)
    st.set_available("a2", False)  # idempotent
    st.set_available("a2", True)
    assert st.warn([("a3", 100.0)]).candidates[0].after == pytest.approx(10 / 15)
    st.set_reach("a4", [False, True, False, False, False])  # a4 moved north
    assert st.share("ambulance") == pytest.approx(10 / 15)  # a3 still covers point 3
    assert st.warn([("a1", 1.0)]).candidates[0].after == pytest.approx(10 / 15)  # a4 keeps point 1
    assert st.warn([("a3", 1.0)]).candidates[0].after == pytest.approx(6 / 15)  # a3 alone on 3
    with pytest.raises(PlanError, match="'zz' is not in"):
        st.warn([("zz", 1.0)])
    with pytest.raises(PlanError, match="max_delay_s"):
        coverage_warning(st, [("a1", 1.0)], max_delay_s=-1)


def test_real_fleet_move_equals_rebuild(danang: dispatch.Network) -> None:
    units = read_units(ROOT / "scenarios" / "danang_fleet.csv")
    demand = grid_demand(danang, cell_m=250)
    st = CoverageState.build(danang, units, demand, target_s=150, hour=17.5)
    share = coverage(danang, units, demand, target_s=150, hour=17.5).by_class["ambulance"].share
    assert st.share("ambulance") == pytest.approx(share)
    st.move("AMB-PN", 16.0480, 108.2080)  # the unit drives south-west
    lat, lon = units.lat.copy(), units.lon.copy()
    k = list(units.ids).index("AMB-PN")
    lat[k], lon[k] = 16.0480, 108.2080
    moved = type(units)(units.ids, units.vehicle, lat, lon, units.turnout_s)
    fresh = CoverageState.build(danang, moved, demand, target_s=150, hour=17.5)
    np.testing.assert_array_equal(st.counts["ambulance"], fresh.counts["ambulance"])
    # candidates straight from the routing core's answer (UnitETA objects)
    recs = [{"id": str(i), "vehicle": str(v), "lat": float(a), "lon": float(b), "turnout_s": float(t)}
            for i, v, a, b, t in zip(moved.ids, moved.vehicle, lat, lon, moved.turnout_s,
                                     strict=True) if v == "ambulance"]  # fmt: skip
    etas = danang.fastest_units((16.0560, 108.2150), recs, k=4, hour=17.5)  # type: ignore[attr-defined]
    w = st.warn(etas, max_delay_s=30)
    assert w.fastest == etas[0].unit and len(w.candidates) == 4
    assert all(c.after <= c.before for c in w.candidates)
