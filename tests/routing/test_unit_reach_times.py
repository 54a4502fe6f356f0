"""``unit_reach_times``: the ETA matrix of units snapped once per position equals ``reach_times``
(which snaps every origin on each call) to the bit, on Da Nang with drive+walk calls, rush-hour
speeds and closures; bad units and points are named."""

from __future__ import annotations

import numpy as np
import pytest

import dispatch
from dispatch.errors import FleetError, PointError
from dispatch.roads.profiles import VEHICLE_CLASSES
from dispatch.routing.queries import unit_reach_times

#: A call in an alley of Da Nang that a fire engine reaches by drive + walk (the doctest's).
ALLEY = (16.0467028, 108.2118639)


def _points(net: dispatch.Network, rng: np.random.Generator, n: int) -> np.ndarray:
    """Random road nodes, each moved a few metres (off the node: mid-arc positions)."""
    nodes = rng.choice(net.n_nodes, n, replace=False)
    jitter = rng.normal(0.0, 4e-5, (n, 2))
    return np.column_stack([net.node_lat[nodes], net.node_lon[nodes]]) + jitter


def _placeable(net: dispatch.Network, pts: np.ndarray, vehicle: str) -> list[int]:
    ok = []
    for i, p in enumerate(pts):
        try:
            net.snap((float(p[0]), float(p[1])), vehicle=vehicle, role="from")
        except PointError:
            continue
        ok.append(i)
    return ok


@pytest.mark.parametrize("hour", [None, 8.0, 13.0])
def test_equals_reach_times_to_the_bit(danang: dispatch.Network, hour: float | None) -> None:
    rng = np.random.default_rng(7 if hour is None else int(hour))
    units = _points(danang, rng, 40)
    dests = np.vstack([_points(danang, rng, 12), [ALLEY]])
    sites: dict[int, object] = {}  # shared by the classes: the walk lookups done once
    for vehicle in VEHICLE_CLASSES:
        rows = _placeable(danang, units, vehicle)
        assert len(rows) >= 10
        origins = units[rows]
        ids = [(f"U{i}", float(origins[i, 0]), float(origins[i, 1])) for i in range(len(rows))]
        want_d, want_w = danang.reach_times(origins, dests, vehicle=vehicle, hour=hour)
        for memo in (None, sites, sites):  # then every unit from the position cache
            got_d, got_w = unit_reach_times(danang.engine, danang.closure_set,
                                            danang.reach_model, ids, dests, vehicle=vehicle,
                                            hour=hour, sites=memo)  # fmt: skip
            assert np.array_equal(got_d, want_d) and np.array_equal(got_w, want_w), vehicle
        assert np.isfinite(got_d).mean() > 0.5
    assert len(sites) == len(dests)
    # the alley call: the fire engine's crew walks the last part (the test sees that case)
    drive, walk = unit_reach_times(danang.engine, danang.closure_set, danang.reach_model,
                                   [("E", 16.0594, 108.2099)], [ALLEY], vehicle="fire_engine",
                                   hour=hour)  # fmt: skip
    assert walk[0, 0] > 100 and np.isfinite(drive[0, 0])


def test_equals_reach_times_with_closures_and_without_walk_network(
    danang: dispatch.Network,
) -> None:
    rng = np.random.default_rng(11)
    units = _points(danang, rng, 30)
    dests = _points(danang, rng, 8)
    # close the roads around the first destination (a what-if view of the network)
    lat, lon = float(dests[0, 0]), float(dests[0, 1])
    d = 0.004
    square = {"type": "Polygon", "coordinates": [[[lon - d, lat - d], [lon + d, lat - d],
                                                  [lon + d, lat + d], [lon - d, lat + d],
                                                  [lon - d, lat - d]]]}  # fmt: skip
    flood = danang.new_closure(polygon=square, label="test flood")
    view = danang.with_closures(danang.closure_set.with_closures(flood))
    rows = _placeable(view, units, "ambulance")
    origins = units[rows]
    ids = [(f"A{i}", float(p[0]), float(p[1])) for i, p in enumerate(origins)]
    want_d, want_w = view.reach_times(origins, dests, vehicle="ambulance")
    got_d, got_w = unit_reach_times(view.engine, view.closure_set, view.reach_model, ids, dests,
                                    vehicle="ambulance")  # fmt: skip
    assert np.array_equal(got_d, want_d) and np.array_equal(got_w, want_w)
    open_d, _ = danang.reach_times(origins, dests, vehicle="ambulance")
    assert not np.array_equal(open_d, want_d)  # the closure changed something
    # no walk network: the plain travel-time matrix
    want = view.travel_times(origins, dests, vehicle="ambulance")
    got_d, got_w = unit_reach_times(view.engine, view.closure_set, None, ids, dests,
                                    vehicle="ambulance")  # fmt: skip
    assert np.array_equal(got_d, want) and not got_w.any()


def test_bad_unit_and_bad_destination_are_named(danang: dispatch.Network) -> None:
    eng, cs, rm = danang.engine, danang.closure_set, danang.reach_model
    good = ("E1", 16.0594, 108.2099)
    with pytest.raises(FleetError, match="unit 'far'"):
        unit_reach_times(eng, cs, rm, [good, ("far", 10.0, 100.0)], [ALLEY], vehicle="ambulance")
    with pytest.raises(PointError, match="destination 0"):
        unit_reach_times(eng, cs, rm, [good], [(10.0, 100.0)], vehicle="ambulance")
    with pytest.raises(dispatch.DispatchError, match="vehicle"):
        unit_reach_times(eng, cs, rm, [good], [ALLEY], vehicle="bus")
