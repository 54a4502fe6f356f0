"""Snapping points to roads: known streets, class access, hostile input, and a brute-force check."""

from __future__ import annotations

import math

import numpy as np
import pytest

import dispatch
from dispatch.errors import PointError
from dispatch.roads.snapping import _M_PER_DEG


def test_snap_known_street(danang: dispatch.Network) -> None:
    # a point on Nguyen Van Linh street (OSM way 295128790), and one 45 m south of it
    s = danang.snap([(16.060909, 108.220849), (16.0605, 108.22085)])
    assert s.dist_m[0] < 1.0
    assert int(danang.arc_way[s.arc[0]]) == 295128790
    assert 10 < s.dist_m[1] < 60
    assert np.all((s.t >= 0) & (s.t <= 1))
    assert s.offset_m[0] == pytest.approx(s.t[0] * danang.arc_length_m[s.arc[0]])


def test_snap_respects_class_access(square: dispatch.Network) -> None:
    # a point on the narrow (2 m) road D-A snaps there for a motorbike, elsewhere for an ambulance
    p = (0.0005, -0.00001)
    moto = square.snap(p, vehicle="motorbike")
    amb = square.snap(p, vehicle="ambulance", tolerance_m=500)
    assert moto.dist_m[0] < 2
    assert amb.dist_m[0] > 50


def test_snap_refuses_booleans_strings_and_bad_tolerance(square: dispatch.Network) -> None:
    for bad in ((True, 0.001), (0.0, False), ("0.0", "0.001"), "0,0", np.array([[True, False]])):
        with pytest.raises(PointError, match="must be"):
            square.snap(bad)
    for tol in (0, -5, math.nan, math.inf, "10", True):
        with pytest.raises(PointError, match="tolerance_m="):
            square.snap((0.0, 0.001), tolerance_m=tol)  # type: ignore[arg-type]
    with pytest.raises(PointError, match="role="):
        square.snap((0.0, 0.001), role="via")
    with pytest.raises(PointError, match="swapped"):
        square.snap((100.0, 0.001))


def test_snap_equals_brute_force_on_a_real_map(danang: dispatch.Network) -> None:
    """The grid search finds the nearest allowed road piece: every piece checked one by one."""
    net = danang
    rng = np.random.default_rng(3)
    lat0, lon0 = float(np.mean(net.node_lat)), float(np.mean(net.node_lon))
    kx = _M_PER_DEG * math.cos(math.radians(lat0))
    gx, gy = (net.geom_lon - lon0) * kx, (net.geom_lat - lat0) * _M_PER_DEG
    arc_of = np.repeat(np.arange(net.n_arcs), np.diff(net.geom_ptr))
    start = np.flatnonzero(arc_of[:-1] == arc_of[1:])  # pieces: consecutive points of one arc
    a_of = arc_of[start]
    x0, y0, x1, y1 = gx[start], gy[start], gx[start + 1], gy[start + 1]
    min_lat, min_lon, max_lat, max_lon = net.bbox
    pts = np.stack([rng.uniform(min_lat, max_lat, 60), rng.uniform(min_lon, max_lon, 60)], axis=1)
    for vehicle in ("ambulance", "motorbike"):
        s = net.snap(pts, vehicle=vehicle, raise_far=False, tolerance_m=2000)
        ok = (net.snap_access("to") >> dispatch.VEHICLE_CLASSES.index(vehicle)) & 1 == 1
        for i, (la, lo) in enumerate(pts):
            px, py = (lo - lon0) * kx, (la - lat0) * _M_PER_DEG
            dx, dy = x1 - x0, y1 - y0
            ll = dx * dx + dy * dy
            u = np.clip(
                np.where(ll > 0, ((px - x0) * dx + (py - y0) * dy) / np.where(ll > 0, ll, 1), 0),
                0,
                1,
            )
            d = np.hypot(x0 + u * dx - px, y0 + u * dy - py)
            d = np.where(ok[a_of] & ~net.arc_contraflow[a_of], d, np.inf)
            assert s.dist_m[i] == pytest.approx(float(d.min()), abs=1e-6)
