"""Closures as values: what-ifs that never change another caller's network, and hostile input."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dispatch
from dispatch.errors import ClosureError, DispatchError
from dispatch.routing.closures import Closure, ClosureSet
from tests.routing.test_queries import AB

BAD = Path(__file__).resolve().parents[1] / "data" / "bad_closures"
A, E = (0.0, 0.0), (0.0, 0.002)
# a square around B (0, 0.001) on the hand-made map: it crosses A-B and B-E
AROUND_B = {"type": "Polygon", "coordinates": [[[0.0009, -0.0001], [0.0011, -0.0001],
            [0.0011, 0.0001], [0.0009, 0.0001], [0.0009, -0.0001]]]}  # fmt: skip


def test_closure_set_is_a_value(square: dispatch.Network) -> None:
    """A what-if view shares the graph and caches, and never changes the network it came from."""
    c = square.new_closure(way_ids=[14], label="B-E flooded")
    assert isinstance(c, Closure) and not c.closes_nothing and square.closures == ()
    what_if = square.with_closures(ClosureSet((c,)))
    assert what_if.engine is square.engine and what_if.graph is square.graph
    assert what_if.travel_times(A, E)[0, 0] == math.inf
    assert square.travel_times(A, E)[0, 0] == pytest.approx(2 * AB)  # untouched
    # a per-query value does the same without a view
    assert square.travel_times(A, E, closures=ClosureSet((c,)))[0, 0] == math.inf
    units = [{"id": "U1", "vehicle": "ambulance", "lat": 0.0, "lon": 0.0}]
    assert square.fastest_units(E, units, closures=[c]) == []
    assert [u.unit for u in square.fastest_units(E, units)] == ["U1"]
    # closing on the view changes the view only, and ids stay unique across views
    cid = what_if.close_ways([10])
    assert cid != c.id and square.closures == () and len(what_if.closures) == 2
    with pytest.raises(ClosureError, match="no closure with id"):
        square.reopen(cid)


def test_close_and_reopen_swap_the_set(square: dispatch.Network) -> None:
    before = square.closure_set
    cid = square.close_ways([14])
    after = square.closure_set
    assert before is not after and len(before) == 0 and after.ids == (cid,)
    square.reopen(cid)
    assert square.closure_set.ids == () and after.ids == (cid,)  # old values never change
    w_open = square.weights("ambulance")
    square.close_ways([14])
    assert square.weights("ambulance") is not w_open
    square.reopen_all()
    assert square.weights("ambulance") is w_open  # the same array: the same routing regime


def test_closure_that_closes_nothing_says_so(square: dispatch.Network) -> None:
    # on the map's area but beside every road
    far = {"type": "Polygon", "coordinates": [[[0.0017, 0.0007], [0.0019, 0.0007],
           [0.0019, 0.0009], [0.0017, 0.0009], [0.0017, 0.0007]]]}  # fmt: skip
    cid = square.close_polygon(far)
    assert square.closure(cid).closes_nothing
    cid2 = square.close_polygon(AROUND_B)
    assert not square.closure(cid2).closes_nothing


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("swapped_lat_lon.geojson", "latitude and\\s+longitude exchanged"),
        ("off_the_map.geojson", "off the map"),
        ("collinear_points.geojson", "zero area"),
        ("one_point.geojson", "zero area|empty|not valid"),
        ("second_feature_invalid.geojson", "feature 1: geometry type 'LineString'"),
        ("properties_not_object.geojson", "feature 0: properties must be an object"),
        ("way_ids_not_integers.geojson", "feature 0: osm_way_ids: 'abc' is not an integer"),
        ("empty_vehicles.geojson", "feature 0: vehicles=\\[\\] closes the road to no class"),
    ],
)
def test_bad_closure_files_are_refused_whole(danang: dispatch.Network, name: str,
                                             message: str) -> None:  # fmt: skip
    net = danang.with_closures(ClosureSet())  # a private view: the session fixture stays clean
    with pytest.raises(ClosureError, match=message) as err:
        net.close_geojson(BAD / name)
    assert "\n" not in str(err.value) and str(BAD / name) in str(err.value)
    assert net.closures == ()  # all or nothing: the valid first feature is not applied either


def test_close_geojson_all_or_nothing_with_a_dict(danang: dispatch.Network) -> None:
    net = danang.with_closures(ClosureSet())
    doc = json.loads((BAD / "second_feature_invalid.geojson").read_text())
    with pytest.raises(ClosureError):
        net.close_geojson(doc)
    assert net.closures == ()
    ids = net.close_geojson({"type": "FeatureCollection", "features": doc["features"][:1]})
    assert len(ids) == 1 and net.closure(ids[0]).label == "riverside"


def test_bad_closure_arguments(square: dispatch.Network) -> None:
    cases = [
        (lambda: square.close_ways(["abc"]), "way_ids: 'abc' is not an integer"),
        (lambda: square.close_ways("14"), "way_ids='14' must be a list"),
        (lambda: square.close_ways([]), "way_ids is empty"),
        (lambda: square.close_ways([999]), "no road of the network belongs"),
        (lambda: square.close_edges([1]), "edges: 1 is not a \\(u, v\\) pair"),
        (lambda: square.close_edges([(1, 2, 3)]), "is not a \\(u, v\\) pair"),
        (lambda: square.close_arcs([True]), "arcs: True is not an integer"),
        (lambda: square.close_arcs([10**6]), "arc index out of range"),
        (lambda: square.close_ways([14], vehicles=[]), "vehicles=\\[\\]"),
        (lambda: square.close_ways([14], vehicles=["tank"]), "unknown vehicle class 'tank'"),
        (lambda: square.close_ways([14], start_h="17"), "start_h='17' must be a number"),
        (lambda: square.close_ways([14], start_h=5, end_h=4), "end_h=4 must be after"),
        (lambda: square.close_polygon("not a dict"), "must be a GeoJSON object"),  # type: ignore[arg-type]
        (lambda: square.close_polygon({"type": "Point", "coordinates": [0, 0]}), "Polygon"),
        (lambda: square.close_geojson(5), "source=5 must be"),  # type: ignore[arg-type]
        (lambda: square.with_closures(["x"]), "'x' is not a Closure"),  # type: ignore[list-item]
    ]
    for call, message in cases:
        with pytest.raises(ClosureError, match=message):
            call()
    assert square.closures == ()


def test_bad_query_arguments(square: dispatch.Network) -> None:
    units = [{"id": "U1", "vehicle": "ambulance", "lat": 0.0, "lon": 0.0}]
    for hour in ("17", math.nan, math.inf, True):
        with pytest.raises(DispatchError, match="hour="):
            square.travel_times(A, E, hour=hour)  # type: ignore[arg-type]
        with pytest.raises(DispatchError, match="hour="):
            square.fastest_units(E, units, hour=hour)  # type: ignore[arg-type]
        with pytest.raises(DispatchError, match="hour="):
            square.route(A, E, hour=hour)  # type: ignore[arg-type]
        with pytest.raises(DispatchError, match="hour="):
            square.weights("ambulance", hour)  # type: ignore[arg-type]
    with pytest.raises(DispatchError, match="call must be"):
        square.fastest_units((True, 0.001), units)
    with pytest.raises(DispatchError, match="lat=True"):
        square.fastest_units(E, [{"id": "U1", "vehicle": "ambulance", "lat": True, "lon": 0.0}])
    with pytest.raises(DispatchError, match="unit id \\['U1'\\]"):
        square.fastest_units(E, [{"id": ["U1"], "vehicle": "ambulance", "lat": 0.0, "lon": 0.0}])
    with pytest.raises(DispatchError, match="map_name=None"):
        dispatch.load_network(None)  # type: ignore[arg-type]
    assert np.isfinite(square.travel_times(A, E, hour=np.float64(17.0))).all()


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)
_feature = st.fixed_dictionaries(
    {"type": st.sampled_from(["Feature", "Polygon", "x"]), "geometry": _json, "properties": _json}
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(doc=st.one_of(_json, st.fixed_dictionaries({"type": st.just("FeatureCollection"),
                                                  "features": st.lists(_feature | _json, max_size=3)})))  # fmt: skip
def test_random_geojson_gives_closures_or_a_closure_error(
    square: dispatch.Network, doc: object
) -> None:
    """Whatever the structure, reading closures ends in closure values or a ClosureError."""
    try:
        cs = square.closures_from_geojson(doc)  # type: ignore[arg-type]
    except ClosureError as exc:
        assert "\n" not in str(exc)
    else:
        assert all(isinstance(c, Closure) for c in cs)
    assert square.closures == ()
