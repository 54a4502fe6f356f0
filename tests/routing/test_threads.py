"""Two threads query one network at once and get the answers a fresh network gives in any order."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import dispatch
from dispatch.routing.engine import EnginePolicy

Answer = list[tuple[str, float]]


def _inputs(net: dispatch.Network) -> tuple[list[dict[str, object]], list[tuple[float, float]]]:
    core = np.flatnonzero(net.class_core("fire_engine"))
    rng = np.random.default_rng(33)
    picks = rng.choice(core, 160, replace=False)
    classes = ["ambulance", "fire_engine", "motorbike", "ladder"]
    units: list[dict[str, object]] = [
        {"id": f"U{i:02d}", "vehicle": classes[i % 4], "lat": float(net.node_lat[n]),
         "lon": float(net.node_lon[n]), "turnout_s": float(i % 5) * 15}
        for i, n in enumerate(picks[:60])
    ]  # fmt: skip
    calls = [(float(net.node_lat[n]), float(net.node_lon[n])) for n in picks[60:]]
    return units, calls


def _ask(net: dispatch.Network, units: list[dict[str, object]], calls: list[tuple[float, float]],
         order: list[int]) -> dict[int, tuple[Answer, np.ndarray]]:  # fmt: skip
    out = {}
    for i in order:
        best = net.fastest_units(calls[i], units, k=3, hour=float(i % 24))
        tt = net.travel_times(calls[i], calls[:12], vehicle="ambulance", hour=float(i % 24))
        out[i] = ([(u.unit, u.eta_s) for u in best], tt[0])
    return out


def _same(a: dict[int, tuple[Answer, np.ndarray]], b: dict[int, tuple[Answer, np.ndarray]]) -> None:
    assert a.keys() == b.keys()
    for i in a:
        (ua, ta), (ub, tb) = a[i], b[i]
        assert [u for u, _ in ua] == [u for u, _ in ub], f"call {i}"
        assert [e for _, e in ua] == pytest.approx([e for _, e in ub], rel=1e-12)
        assert ta == pytest.approx(tb, rel=1e-12)


def test_two_threads_one_network_same_answers_as_a_fresh_one(campo: dispatch.Network) -> None:
    net = campo.with_closures(dispatch.ClosureSet())
    net.close_arcs(np.random.default_rng(2).choice(net.n_arcs, 60, replace=False))
    units, calls = _inputs(net)
    n = len(calls)
    results: list[dict[int, tuple[Answer, np.ndarray]]] = [{}, {}]
    errors: list[BaseException] = []
    start = threading.Barrier(2)
    scratch_ids: list[int] = [0, 0]

    def work(t: int) -> None:
        try:
            start.wait(timeout=60)
            order = list(range(n)) if t == 0 else list(range(n))[::-1]
            results[t] = _ask(net, units, calls, order)
            scratch_ids[t] = id(net.engine.scratch())
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=600)
    assert not errors, errors
    assert scratch_ids[0] != scratch_ids[1]  # each thread has its own scratch space
    _same(results[0], results[1])
    # a fresh network, asked in another order with another engine, answers the same
    fresh = dispatch.load_network("campo_grande")
    fresh.close_arcs(np.asarray(net.closures[0].arcs))
    fresh.engine.set_policy(EnginePolicy.dijkstra_only())
    order = list(range(1, n, 2)) + list(range(0, n, 2))
    _same(results[0], _ask(fresh, units, calls, order))


@pytest.mark.parametrize(
    "policy",
    [EnginePolicy.dijkstra_only(), EnginePolicy.cch_always(), EnginePolicy.table_first()],
    ids=["dijkstra", "cch", "table"],
)
def test_every_engine_gives_the_same_units_in_the_same_order(policy: EnginePolicy) -> None:
    """Near ties (units 1e-12 s apart by different engines) are broken by id after rounding."""
    net = dispatch.load_network("danang")
    net.engine.set_policy(policy)
    core = np.flatnonzero(net.class_core("ambulance"))
    rng = np.random.default_rng(8)
    picks = rng.choice(core, 60, replace=False)
    # pairs of units at the same spot: exact ties that only the id can break
    units = [{"id": f"A{i:02d}{s}", "vehicle": "ambulance", "lat": float(net.node_lat[n]),
              "lon": float(net.node_lon[n])} for i, n in enumerate(picks[:15]) for s in "ba"]  # fmt: skip
    calls = [(float(net.node_lat[n]), float(net.node_lon[n])) for n in picks[15:]]
    got = [[u.unit for u in net.fastest_units(c, units, k=3)] for c in calls for _ in range(4)]
    ref_net = dispatch.load_network("danang")
    ref_net.engine.set_policy(EnginePolicy.dijkstra_only())
    ref = [[u.unit for u in ref_net.fastest_units(c, units, k=3)] for c in calls for _ in range(4)]
    assert got == ref
    for g in got:  # the two units of a pair tie: "a" comes first
        for x, y in zip(g, g[1:], strict=False):
            if x[:3] == y[:3]:
                assert (x[3], y[3]) == ("a", "b")
