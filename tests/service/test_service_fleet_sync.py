"""``Engine.sync_fleet``: the fleet handle follows the snapshots it is given (moves, statuses,
turnouts, units added and removed) and answers as a handle built afresh from the same units."""

from __future__ import annotations

from dataclasses import replace

from dispatch.decide.incidents import read_fleet
from dispatch.service.engine import Engine
from tests.service.conftest import FLEET


def _records(engine: Engine) -> list[dict[str, object]]:
    return [] if engine._fleet is None else engine._fleet.units


def test_fleet_handle_follows_every_kind_of_change() -> None:
    eng = Engine("danang")
    units = read_fleet(FLEET)
    steps = [list(units)]
    u = list(units)
    u[0] = replace(u[0], lat=u[1].lat, lon=u[1].lon)  # a move
    steps.append(list(u))
    u[2] = replace(u[2], status="busy")  # no longer available
    steps.append(list(u))
    u[2] = replace(u[2], status="available")
    u[3] = replace(u[3], status="returning")  # available, no turnout: rebuilt
    steps.append(list(u))
    steps.append(list(u[:-1]))  # a unit removed
    steps.append([*u[:-1], replace(u[-1], id="NEW-1")])  # another added in its place
    call = (16.0575, 108.2140)
    for snap in steps:
        eng.sync_fleet(snap)
        fresh = Engine.__new__(Engine)
        fresh.net, fresh._fleet, fresh._fleet_units = eng.net, None, []
        fresh.sync_fleet(snap)  # built from nothing
        assert _records(eng) == _records(fresh)
        assert _records(eng) == [Engine._fleet_record(x) for x in snap]
        got = eng.net.fastest_units(call, eng._fleet, k=5)
        want = eng.net.fastest_units(call, fresh._fleet, k=5)
        # (to 1e-9 s: a fresh handle's first query and a handle's table sum arcs in other orders)
        assert [x.unit for x in got] == [x.unit for x in want]
        assert [round(x.eta_s, 9) for x in got] == [round(x.eta_s, 9) for x in want]
