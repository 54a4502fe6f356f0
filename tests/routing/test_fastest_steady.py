"""fastest_units' fast paths give the general path's answers, bit for bit.

Two fast paths (:mod:`dispatch.routing.queries`): the steady state (``_fastest_steady``: the
weights and the class's nearest-units table built, the policy taking the table path; one compiled
call per class) and a unit list equal to the last one (recognised by one comparison with copies of
its dicts, not read again). Each test runs the same script on two networks loaded apart, one with
the steady path switched off, and compares every field of every answer; a spy counts the answers
the steady path gave, so that a test cannot pass without exercising it.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Iterator
from types import MappingProxyType
from typing import Any

import numpy as np
import pytest

import dispatch
from dispatch.errors import DispatchError
from dispatch.roads.snapping import _M_PER_DEG, CELL_M
from dispatch.routing import queries as Q
from dispatch.routing.engine import EnginePolicy

SEG_M = 111.19508  # 0.001 degree at the equator (the hand-made square of tests/conftest.py)
AB = SEG_M / 10.0  # A-B at 36 km/h


def _fields(res: list[Q.UnitETA]) -> list[tuple[Any, ...]]:
    return [(u.unit, u.vehicle, u.eta_s, u.drive_s, u.turnout_s, u.reach, u.access_point,
             u.walk_m, u.walk_s, u.note) for u in res]  # fmt: skip


def _same(got: list[Q.UnitETA], ref: list[Q.UnitETA]) -> None:
    """Answers of two engines: the same units in the same order, ETAs to float rounding."""
    assert [(u.unit, u.vehicle, u.turnout_s) for u in got] == [
        (u.unit, u.vehicle, u.turnout_s) for u in ref
    ]
    assert [u.eta_s for u in got] == pytest.approx([u.eta_s for u in ref], rel=1e-12)


class Spy:
    """Counts the answers of the steady path (``_fastest_steady`` and the plan it leaves for a
    Fleet, ``_fastest_planned``; ``planned`` counts the latter alone); ``off`` switches both off
    (the general path answers)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.answered = 0
        self.planned = 0
        self.off = False
        real = Q._fastest_steady
        real_planned = Q._fastest_planned

        def steady(*args: Any, **kwargs: Any) -> list[Q.UnitETA] | None:
            if self.off:
                return None
            out = real(*args, **kwargs)
            self.answered += out is not None
            return out

        def planned(*args: Any, **kwargs: Any) -> list[Q.UnitETA] | None:
            if self.off:
                return None
            out = real_planned(*args, **kwargs)
            self.answered += out is not None
            self.planned += out is not None
            return out

        monkeypatch.setattr(Q, "_fastest_steady", steady)
        monkeypatch.setattr(Q, "_fastest_planned", planned)


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> Iterator[Spy]:
    yield Spy(monkeypatch)


def _script(net: dispatch.Network, ask: Callable[..., None]) -> None:
    """A dispatch day in miniature: lists and Fleets, mixed classes, moves, a list changed in
    place, closures (also in a window, with hours), k from 1 to 5."""
    g = net.graph
    rng = np.random.default_rng(3)
    nodes = np.flatnonzero(net.class_core("ambulance") & (g.node_osmid > 0))

    def at(i: int, jitter: float = 0.0) -> tuple[float, float]:
        return (float(g.node_lat[i] + rng.normal(0, jitter)),
                float(g.node_lon[i] + rng.normal(0, jitter)))  # fmt: skip

    amb = [{"id": f"A{i:02d}", "vehicle": "ambulance", "lat": at(n)[0], "lon": at(n)[1],
            "turnout_s": 0.0} for i, n in enumerate(rng.choice(nodes, 30, replace=False))]  # fmt: skip
    mixed = []
    for i, n in enumerate(rng.choice(nodes, 24, replace=False)):
        lat, lon = at(n, 1e-4)
        mixed.append({"id": f"M{i:02d}", "vehicle": ("ambulance", "fire_engine", "motorbike")[i % 3],
                      "lat": lat, "lon": lon, "turnout_s": float(i % 4) * 20,
                      "available": i % 9 != 4})  # fmt: skip
    calls = [at(n, 2e-4 if j % 4 == 3 else 0.0) for j, n in enumerate(rng.choice(nodes, 48))]
    for units in (amb, mixed):
        fleet = net.fleet(units)
        for j, c in enumerate(calls):
            ask(c, units, k=(3, 1, 2, 3, 5, 3)[j % 6])
            ask(c, fleet, k=3)
        live = [dict(u) for u in units]  # one list object, changed in place between calls
        for j, c in enumerate(calls[:24]):
            ask(c, live, k=3)
            ask(c, fleet, k=2)
            n = int(nodes[rng.integers(len(nodes))])
            if j % 3 == 0:  # an AVL fix
                live[j % len(live)]["lat"], live[j % len(live)]["lon"] = at(n)
                fleet.move(units[j % len(units)]["id"], *at(n))
            if j % 5 == 1:
                live[(j + 1) % len(live)]["available"] = not live[(j + 1) % len(live)].get(
                    "available", True
                )
            if j % 7 == 2:
                live[(j + 2) % len(live)]["turnout_s"] = 45.0
                fleet._update(units[(j + 2) % len(units)]["id"], turnout_s=45.0)
            if j == 12:
                live.append({"id": "NEW", "vehicle": "ambulance", "lat": c[0], "lon": c[1]})
            if j == 18:
                del live[0]
        view = net.with_closures(dispatch.ClosureSet())
        for j, c in enumerate(calls[:24]):
            if j % 6 == 0:  # close the road at the call (for every class), or for a window
                arc = view.snap(np.array([c]), role="to").arc
                if j % 12 == 0:
                    view.close_arcs(arc)
                else:
                    view.close_arcs(arc, start_h=7.0, end_h=9.0)
            for _ in range(2):
                ask(c, units, k=3, view=view)
                ask(c, fleet, k=3, view=view, hour=8.0)
                ask(c, fleet, k=3, view=view)


def _answers(net: dispatch.Network) -> tuple[list[object], Callable[..., None]]:
    out: list[object] = []

    def ask(call: object, units: object, *, k: int, view: dispatch.Network | None = None,
            hour: float | None = None) -> None:  # fmt: skip
        try:
            out.append(_fields((view or net).fastest_units(call, units, k=k, hour=hour)))
        except DispatchError as exc:
            out.append((type(exc).__name__, str(exc)))

    return out, ask


@pytest.mark.parametrize("name", ["danang", "monaco"])
def test_steady_path_gives_the_general_answers_on_real_maps(name: str, spy: Spy) -> None:
    """Da Nang (with its walk network: calls off the road go to the general path) and Monaco:
    every field of every answer equal, the steady path answering a good share of the calls."""
    net = dispatch.load_network(name)
    # both engines with their hierarchy at hand from the start: otherwise the first builds (and
    # saves) it after its 100th search and the second finds it on disk at once, so the two take
    # the CCH at different calls and their ETAs differ in the last bits (the engines agree to
    # about 1e-12 s: EnginePolicy.eta_resolution_s), which is not what this test is about
    net.engine.hierarchy()
    fast, ask_fast = _answers(net)
    _script(net, ask_fast)
    answered = spy.answered
    spy.off = True
    other = dispatch.load_network(name)
    assert other.engine is not net.engine
    other.engine.hierarchy()
    slow, ask_slow = _answers(other)
    _script(other, ask_slow)
    assert spy.answered == answered  # switched off: no more steady answers
    assert len(fast) == len(slow) == 576
    assert fast == slow
    assert answered >= 100, answered
    assert spy.planned >= 50, spy.planned  # a Fleet's steady answers: from its plan
    assert sum(isinstance(a, list) and len(a) > 0 for a in fast) >= 500


def test_steady_path_by_hand_with_ties(square: dispatch.Network, spy: Spy) -> None:
    """On the hand-made square: the ETAs by hand, and ties within the 1 ms resolution broken by
    unit id on every repetition (the steady path answering from the fourth)."""
    units = [
        {"id": "far", "vehicle": "ambulance", "lat": 0.0, "lon": 0.002, "turnout_s": 0.0},
        {"id": "near", "vehicle": "ambulance", "lat": 0.0, "lon": 0.0005, "turnout_s": 1.0},
        {"id": "busy", "vehicle": "ambulance", "lat": 0.0, "lon": 0.001, "available": False},
        # "b" stands 0.1 mm nearer to B than "a": 1e-5 s sooner, a tie at 1 ms: "a" first
        {"id": "b", "vehicle": "ambulance", "lat": 0.0, "lon": 0.0015 - 1e-9, "turnout_s": 0.0},
        {"id": "a", "vehicle": "ambulance", "lat": 0.0, "lon": 0.0015, "turnout_s": 0.0},
    ]
    call = (0.0, 0.001)  # at B
    fleet = square.fleet(units)
    first = None
    for _ in range(6):
        for src in (units, fleet):
            got = square.fastest_units(call, src, k=3)
            assert [u.unit for u in got] == ["a", "b", "near"]
            assert got[0].eta_s == pytest.approx(AB / 2) and got[1].eta_s < got[0].eta_s
            assert got[2].eta_s == pytest.approx(1.0 + AB / 2)
            assert got[2].drive_s == pytest.approx(AB / 2) and got[2].turnout_s == 1.0
            first = first or _fields(got)
            assert _fields(got) == first
    assert spy.answered >= 6
    four = square.fastest_units(call, fleet, k=5)  # k >= table_k: the general path
    assert [u.unit for u in four] == ["a", "b", "near", "far"]
    assert four[3].eta_s == pytest.approx(AB)


def test_a_list_changed_in_place_is_never_stale(danang: dispatch.Network, spy: Spy) -> None:
    """The same list object, its dicts changed (moved, busy, turnout), items added, removed or
    replaced by another kind of mapping: each answer is a fresh network's."""
    g = danang.graph
    rng = np.random.default_rng(11)
    nodes = np.flatnonzero(danang.class_core("ambulance") & (g.node_osmid > 0))
    pick = rng.choice(nodes, 40, replace=False)
    units: list[Any] = [{"id": f"U{i}", "vehicle": "ambulance", "lat": float(g.node_lat[n]),
                         "lon": float(g.node_lon[n])} for i, n in enumerate(pick[:20])]  # fmt: skip
    call = (float(g.node_lat[pick[30]]), float(g.node_lon[pick[30]]))
    fresh = dispatch.load_network("danang")

    def check() -> list[str]:
        fresh.engine.last_fleet = None  # a fleet read afresh (another engine may answer)
        ref = fresh.fastest_units(call, [dict(u) for u in units], k=3)
        for _ in range(5):  # the snapshot kept, the table built, the steady path answering
            got = danang.fastest_units(call, units, k=3)
            _same(got, ref)  # engines change with use: the same units, ETAs to float rounding
        return [u.unit for u in ref]

    best = check()
    # the best unit drives away, then is busy, then has a long turnout
    far = units.index(next(u for u in units if u["id"] == best[0]))
    units[far]["lat"], units[far]["lon"] = float(g.node_lat[pick[39]]), float(g.node_lon[pick[39]])
    assert check()[0] != best[0]
    units[far].update(lat=call[0], lon=call[1])
    assert check()[0] == units[far]["id"]
    units[far]["available"] = False
    assert units[far]["id"] not in check()
    units[far]["available"] = True
    units[far]["turnout_s"] = 500.0
    assert units[far]["id"] not in check()
    units.append({"id": "X", "vehicle": "ambulance", "lat": call[0], "lon": call[1]})
    assert check()[0] == "X"
    units[-1] = MappingProxyType({"id": "Y", "vehicle": "ambulance", "lat": call[0],
                                  "lon": call[1], "turnout_s": 2.0})  # fmt: skip
    assert check()[0] == "Y"
    del units[-1]
    assert "Y" not in check()
    assert spy.answered >= 8


def test_closing_the_road_changes_the_steady_answer(danang: dispatch.Network, spy: Spy) -> None:
    """A closure in force after the table was built: the answer is the closed network's."""
    view = danang.with_closures(dispatch.ClosureSet())
    g = view.graph
    rng = np.random.default_rng(5)
    nodes = np.flatnonzero(view.class_core("ambulance") & (g.node_osmid > 0))
    pick = rng.choice(nodes, 21, replace=False)
    units = [{"id": f"U{i}", "vehicle": "ambulance", "lat": float(g.node_lat[n]),
              "lon": float(g.node_lon[n])} for i, n in enumerate(pick[:20])]  # fmt: skip
    fleet = view.fleet(units)
    call = (float(g.node_lat[pick[20]]), float(g.node_lon[pick[20]]))
    for _ in range(5):
        before = view.fastest_units(call, fleet, k=3)
    answered = spy.answered
    assert answered >= 1
    best = next(u for u in units if u["id"] == before[0].unit)
    route = view.route((best["lat"], best["lon"]), call)
    mid = np.array([route.coords[len(route.coords) // 2]])
    cid = view.close_arcs(view.snap(mid, role="to").arc)
    fresh = dispatch.load_network("danang").with_closures(view.closures)
    for _ in range(5):
        after = view.fastest_units(call, fleet, k=3)
        _same(after, fresh.fastest_units(call, units, k=3))
    assert after[0].eta_s > before[0].eta_s or after[0].unit != before[0].unit
    view.reopen(cid)
    assert _fields(view.fastest_units(call, fleet, k=3)) == _fields(before)
    assert spy.answered > answered


def test_answer_objects_are_plain_unit_etas() -> None:
    """The templates' UnitETA: equal to the constructor's, same fields in order, repr, pickle."""
    made = Q._drive_eta("U1", "ambulance", 75.5, 60.0)
    ref = Q.UnitETA("U1", "ambulance", 75.5, 15.5, 60.0)
    assert made == ref and repr(made) == repr(ref) and list(vars(made)) == list(vars(ref))
    assert vars(made) == vars(ref) and pickle.loads(pickle.dumps(made)) == ref
    with pytest.raises(AttributeError):
        made.eta_s = 1.0  # type: ignore[misc]  # frozen like any UnitETA


def test_two_threads_on_one_steady_fleet(campo: dispatch.Network, spy: Spy) -> None:
    """Two threads asking with the same prepared fleet at once (each thread its own candidate
    buffers): every answer is the one a single thread got."""
    import threading

    g = campo.graph
    rng = np.random.default_rng(17)
    nodes = np.flatnonzero(campo.class_core("ambulance") & (g.node_osmid > 0))
    pick = rng.choice(nodes, 50, replace=False)
    units = [{"id": f"U{i}", "vehicle": "ambulance", "lat": float(g.node_lat[n]),
              "lon": float(g.node_lon[n])} for i, n in enumerate(pick)]  # fmt: skip
    fleet = campo.fleet(units)
    calls = [(float(g.node_lat[n]), float(g.node_lon[n])) for n in rng.choice(nodes, 120)]
    for c in calls[:20]:
        campo.fastest_units(c, fleet, k=3)
    ref = [campo.fastest_units(c, fleet, k=3) for c in calls]
    got: dict[int, list[list[Q.UnitETA]]] = {0: [], 1: []}

    def run(t: int) -> None:
        for c in calls if t == 0 else calls[::-1]:
            got[t].append(campo.fastest_units(c, fleet, k=3))

    threads = [threading.Thread(target=run, args=(t,)) for t in (0, 1)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    for a, b, r in zip(got[0], got[1][::-1], ref, strict=True):
        _same(a, r)
        _same(b, r)
    assert spy.answered >= 300


def _fleet_on(net: dispatch.Network, n_amb: int, n_fire: int, seed: int) -> list[dict[str, Any]]:
    g = net.graph
    rng = np.random.default_rng(seed)
    nodes = np.flatnonzero(net.class_core("fire_engine") & (g.node_osmid > 0))
    pick = rng.choice(nodes, n_amb + n_fire, replace=False)
    return [{"id": f"U{i:02d}", "vehicle": "ambulance" if i < n_amb else "fire_engine",
             "lat": float(g.node_lat[n]), "lon": float(g.node_lon[n]), "turnout_s": float(i % 3)}
            for i, n in enumerate(pick)]  # fmt: skip


def test_the_plan_checks_what_can_change(spy: Spy) -> None:
    """A Fleet's plan (``_fastest_planned``) answers only while it holds: closures on the network,
    another policy, another speed band, a moved unit, a cleared table, a k too large each go back
    to the steady or the general path, whose answers it then gives again; every answer is a
    fresh network's (a list of dicts, read afresh)."""
    net = dispatch.load_network("danang")
    fresh = dispatch.load_network("danang")
    g = net.graph
    rng = np.random.default_rng(23)
    nodes = np.flatnonzero(net.class_core("ambulance") & (g.node_osmid > 0))
    calls = [(float(g.node_lat[n]), float(g.node_lon[n])) for n in rng.choice(nodes, 12)]
    for units in (_fleet_on(net, 30, 0, 1), _fleet_on(net, 20, 12, 2)):
        fleet = net.fleet(units)

        def ask(fleet: dispatch.Fleet = fleet, **kw: Any) -> int:
            """Every call once; returns how many the plan answered (-1 when the steady path
            answered some itself: the plan was not there or stepped aside)."""
            planned, answered = spy.planned, spy.answered
            out = [net.fastest_units(c, fleet, **kw) for c in calls]
            for c, got in zip(calls, out, strict=True):
                fresh.engine.last_fleet = None
                _same(got, fresh.fastest_units(c, fleet.units, **kw))
            planned, answered = spy.planned - planned, spy.answered - answered
            return planned if planned == answered else -1

        ask(k=3)  # the steady path answers, then leaves its plan
        assert -1 in fleet.prepared.plans
        steady = ask(k=3)  # the calls the tables prove (the others: the general path)
        assert steady >= len(calls) // 2
        assert ask(k=2, hour=7.0) == -1  # the morning rush: another band, its own plan
        assert ask(k=2, hour=7.5) >= len(calls) // 2
        assert len(fleet.prepared.plans) == 2
        assert ask(k=5) == 0  # k >= the policy's table_k: the general path
        # closures on the network itself (not a view): the plan steps aside
        arc = net.snap(np.array([calls[0]]), role="to").arc
        cid = net.close_arcs(arc)
        fresh_closed = fresh.with_closures(net.closures)
        before = spy.planned
        for c in calls:
            _same(net.fastest_units(c, fleet, k=3), fresh_closed.fastest_units(c, units, k=3))
        assert spy.planned == before
        net.reopen(cid)
        assert ask(k=3) == steady
        # another policy object (even an equal one): not planned until the steady path binds again
        net.engine.set_policy(EnginePolicy())
        assert ask(k=3) == -1
        assert ask(k=3) == steady
        # a cleared table (the fleet's table cache full): the plan refuses, the general path
        # builds the table again and the steady path binds a new plan to it
        old_plan = fleet.prepared.plans[-1]
        for cu in fleet.prepared.by_class.values():
            cu.tables.clear()
        assert ask(k=3) == -1
        assert fleet.prepared.plans[-1] is not old_plan
        assert ask(k=3) == steady
        # a unit moved: a new prepared fleet, no plan until it is steady again
        fleet.move(units[0]["id"], *calls[1])
        assert not fleet.prepared.plans
        first = net.fastest_units(calls[1], fleet, k=1)
        assert first[0].unit == units[0]["id"] and first[0].eta_s == units[0]["turnout_s"]
        units[0]["lat"], units[0]["lon"] = calls[1]
        assert ask(k=3) == -1
        assert ask(k=3) >= len(calls) // 2


def test_bad_input_to_a_planned_fleet_gets_the_general_errors(danang: dispatch.Network,
                                                              spy: Spy) -> None:  # fmt: skip
    """With a Fleet answered by its plan, bad input still gets the one-line error of the public
    boundary naming the value (the plan takes only the common form and leaves the rest)."""
    units = _fleet_on(danang, 12, 0, 5)
    fleet = danang.fleet(units)
    g = danang.graph
    call = (float(g.node_lat[0]), float(g.node_lon[0]))
    for _ in range(5):
        danang.fastest_units(call, fleet, k=3)
    planned = spy.planned
    assert planned >= 1
    nan = float("nan")
    bad: list[tuple[object, dict[str, Any]]] = [
        ((nan, nan), {}), ((91.0, call[1]), {}), ((call[0], call[1] + 5.0), {}), ("here", {}),
        ((call[0], call[1], 0.0), {}), (call, {"k": 0}), (call, {"k": True}), (call, {"k": 2.0}),
        (call, {"hour": nan}), (call, {"hour": "8"}), (call, {"hour": True}),
    ]  # fmt: skip
    monaco = dispatch.load_network("monaco")
    other = monaco.fleet(_fleet_on(monaco, 3, 0, 1))
    for where, kw in bad:
        with pytest.raises(DispatchError) as planned_err:
            danang.fastest_units(where, fleet, **{"k": 3, **kw})
        with pytest.raises(DispatchError) as list_err:
            danang.fastest_units(where, units, **{"k": 3, **kw})
        assert type(planned_err.value) is type(list_err.value)
        assert str(planned_err.value) == str(list_err.value)
        assert "\n" not in str(planned_err.value)
    with pytest.raises(DispatchError, match="another network"):
        danang.fastest_units(call, other, k=3)
    assert spy.planned == planned


def test_the_address_call_is_the_packed_kernel(spy: Spy, monkeypatch: pytest.MonkeyPatch) -> None:
    """``table_call_at`` (arrays by address) against ``table_call_kernel`` (arrays unboxed) on
    the same arguments: the same distance, count, units and ETAs, bit for bit, on HCMC and Monaco;
    and with a layout it does not take, the plan binds the packed kernel (same answers)."""
    for name in ("hcmc", "monaco"):
        net = dispatch.load_network(name)
        g = net.graph
        rng = np.random.default_rng(29)
        units = _fleet_on(net, 40, 0, 3)
        fleet = net.fleet(units)
        nodes = np.flatnonzero(net.class_core("ambulance") & (g.node_osmid > 0))
        at = [(float(g.node_lat[n]), float(g.node_lon[n])) for n in rng.choice(nodes, 60)]
        # the kernels alone: also calls off the roads, near and beyond the snapping tolerance
        calls = [(lat + rng.normal(0, 2e-4), lon + rng.normal(0, 2e-4)) for lat, lon in at]
        calls += [(lat + rng.normal(0, 3e-3), lon + rng.normal(0, 3e-3)) for lat, lon in at]
        for c in at[:20]:  # the steady path answers (and leaves its plan)
            net.fastest_units(c, fleet, k=3)
        plan = fleet.prepared.plans[-1]
        (_, cu, _, _, tab, w, _, fn, ia, fa, keep) = plan[-1][0]
        assert fn is Q._at_entry[0] and len(ia) > 0
        spacked, saccess, ends_p, _, pos_p, tab_p, ranks = keep
        eng = net.engine
        sidx, _, _, stol = eng.call_snapper()
        res = eng.policy.eta_resolution_s
        for k in (1, 3):
            for lat, lon in calls:
                x, y = (lon - sidx.lon0) * sidx.kx, (lat - sidx.lat0) * _M_PER_DEG
                a = (np.full(64, -7, dtype=np.int64), np.full(64, -7.0))
                b = (np.full(64, -7, dtype=np.int64), np.full(64, -7.0))
                got = fn(x, y, ia, fa, a[0], a[1], k)
                ref = Q.table_call_kernel(x, y, spacked, CELL_M, saccess, 0, stol, ends_p, w,
                                          pos_p, tab_p, ranks, b[0], b[1], k, res, 1.0 / res)  # fmt: skip
                assert got == ref
                assert a[0].tolist() == b[0].tolist() and a[1].tolist() == b[1].tolist()
        # a layout the address kernel does not take: the packed kernel is bound instead
        layout = Q._AT_LAYOUT
        monkeypatch.setattr(Q, "_AT_LAYOUT", layout[:-1] + ((np.int32, 1),))
        fleet2 = net.fleet(units)
        for c in at[:20]:  # steady (as the first fleet's answers compared below)
            net.fastest_units(c, fleet2, k=3)
        before = spy.planned
        got_all = [net.fastest_units(c, fleet2, k=3) for c in at]
        assert fleet2.prepared.plans[-1][-1][0][7] is not Q._at_entry[0]
        assert spy.planned - before >= 40
        for c, got in zip(at, got_all, strict=True):
            assert _fields(got) == _fields(net.fastest_units(c, fleet, k=3))
        monkeypatch.setattr(Q, "_AT_LAYOUT", layout)  # (not undo(): the spy stays)


def test_other_input_forms_leave_the_plan_in_place(danang: dispatch.Network, spy: Spy) -> None:
    """A call as a list, as numpy floats or an array, an hour as numpy float: the steady path
    answers (the plan takes the common form only), with the plan's answer, and the plan is not
    bound again on each such call."""
    units = _fleet_on(danang, 16, 0, 7)
    fleet = danang.fleet(units)
    g = danang.graph
    call = (float(g.node_lat[5]), float(g.node_lon[5]))
    for _ in range(5):
        ref = _fields(danang.fastest_units(call, fleet, k=3))
    plan = fleet.prepared.plans[-1]
    planned = spy.planned
    for form in ([call[0], call[1]], (np.float64(call[0]), np.float64(call[1])), np.array(call)):
        for _ in range(2):
            assert _fields(danang.fastest_units(form, fleet, k=3)) == ref
    assert _fields(danang.fastest_units(call, fleet, k=3, hour=np.float64(12.0))) == ref
    assert spy.planned == planned and fleet.prepared.plans[-1] is plan
    assert _fields(danang.fastest_units(call, fleet, k=3)) == ref
    assert spy.planned == planned + 1
