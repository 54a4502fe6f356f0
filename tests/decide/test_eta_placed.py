"""``eta_matrix`` on a Network (units placed once per position, ``unit_reach_times``) equals the
matrix of the per-call snapping path (``net.reach_times`` on every unit) to the bit, with
en-route, returning, busy and off-the-map units, and on a what-if closure view."""

from __future__ import annotations

from typing import Any

import numpy as np

import dispatch
from dispatch.decide.assign import eta_matrix
from dispatch.decide.incidents import Incident, Unit

STATUSES = ["available"] * 6 + ["returning", "en_route", "busy", "out_of_service"]


class PerCallSnapping:
    """A network seen only through ``reach_times``: ``eta_matrix``'s path before units were
    placed once (each call snaps every unit again)."""

    def __init__(self, net: dispatch.Network) -> None:
        self.net = net

    def reach_times(self, *args: Any, **kwargs: Any) -> Any:
        return self.net.reach_times(*args, **kwargs)


def _fleet(net: dispatch.Network, rng: np.random.Generator, n: int) -> list[Unit]:
    nodes = rng.choice(net.n_nodes, n, replace=False)
    classes = ["ambulance", "fire_engine", "ladder", "motorbike"]
    units = []
    for i, node in enumerate(nodes):
        status = STATUSES[int(rng.integers(len(STATUSES)))]
        units.append(Unit(f"U{i:02d}", classes[i % 4], float(net.node_lat[node]) + 3e-5,
                          float(net.node_lon[node]) - 2e-5, status=status,
                          assigned_priority=3 if status == "en_route" else None))  # fmt: skip
    return units


def _cch_answers(net: dispatch.Network, hour: float | None = None) -> None:
    """Customize the CCH for every class's weights in force: every matrix is then the CCH's.
    Otherwise the engine's policy answers with Dijkstra until enough searches (or a hierarchy
    saved in the map cache: there in a working copy, not in a fresh clone) and then the CCH, and
    the two sum a path's arcs in different orders (last-bit differences)."""
    for v in ("ambulance", "fire_engine", "ladder", "motorbike"):
        net.engine.metric(net.weights(v, hour))


def _same(a: tuple[Any, Any, Any], b: tuple[Any, Any, Any]) -> bool:
    return bool(np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2])


def test_placed_units_give_the_per_call_matrix(danang: dispatch.Network) -> None:
    rng = np.random.default_rng(3)
    nodes = rng.choice(danang.n_nodes, 20, replace=False)
    calls = np.column_stack([danang.node_lat[nodes], danang.node_lon[nodes]])
    calls = np.vstack([calls, [(16.0467028, 108.2118639)]])  # an alley: drive + walk
    for hour in (None, 7.5):
        units = _fleet(danang, rng, 48)
        units.append(Unit("OFF", "ambulance", 10.0, 100.0))  # off the map: a warning, as before
        _cch_answers(danang, hour)  # compared where the CCH answers, as in a running service
        want = eta_matrix(PerCallSnapping(danang), units, calls, hour=hour)
        for _ in range(2):
            got = eta_matrix(danang, units, calls, hour=hour)
            assert _same(got, want)
        assert "OFF" in got[2] and np.isinf(got[0][-1]).all()
        busy = [i for i, u in enumerate(units) if u.status in ("busy", "out_of_service")]
        assert busy and np.isinf(got[0][busy]).all()
        assert np.isfinite(got[0]).mean() > 0.5


def test_placed_units_on_a_closure_view(danang: dispatch.Network) -> None:
    rng = np.random.default_rng(5)
    units = _fleet(danang, rng, 30)
    call = (16.0575, 108.2140)
    d = 0.003
    lat, lon = call
    square = {"type": "Polygon", "coordinates": [[[lon - d, lat - d], [lon + d, lat - d],
                                                  [lon + d, lat + d], [lon - d, lat + d],
                                                  [lon - d, lat - d]]]}  # fmt: skip
    view = danang.with_closures(danang.closure_set.with_closures(
        danang.new_closure(polygon=square, label="test")))  # fmt: skip
    _cch_answers(view)
    want = eta_matrix(PerCallSnapping(view), units, [call])
    got = eta_matrix(view, units, [call])
    assert _same(got, want)
    assert not _same(eta_matrix(danang, units, [call]), got)


class SnapOnly:
    """A network seen through ``snap`` and ``reach`` only: ``check_scenes``' path before its
    check by the engine's call snapping."""

    def __init__(self, net: dispatch.Network) -> None:
        self.net = net

    def snap(self, *args: Any, **kwargs: Any) -> Any:
        return self.net.snap(*args, **kwargs)

    def reach(self, *args: Any, **kwargs: Any) -> Any:
        return self.net.reach(*args, **kwargs)


def test_check_scenes_by_call_snapping_agrees_with_net_snap(danang: dispatch.Network) -> None:
    from dispatch.decide.assign import check_scenes
    from dispatch.errors import DispatchError

    rng = np.random.default_rng(9)
    lat0, lon0, lat1, lon1 = danang.bbox
    pts = np.column_stack([rng.uniform(lat0 - 0.01, lat1 + 0.01, 400),
                           rng.uniform(lon0 - 0.01, lon1 + 0.01, 400)])  # fmt: skip
    outcomes = {True: 0, False: 0}
    for i, (lat, lon) in enumerate(pts):
        inc = [Incident(f"S{i}", float(lat), float(lon), "stroke")]
        errors = []
        for net in (danang, SnapOnly(danang)):
            try:
                check_scenes(net, inc)
                errors.append(None)
            except DispatchError as exc:
                errors.append(str(exc))
        assert errors[0] == errors[1], (lat, lon)
        outcomes[errors[0] is None] += 1
    assert outcomes[True] > 50 and outcomes[False] > 50  # both cases seen
