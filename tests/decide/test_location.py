"""An uncertain caller location: the disc's samples, its ETAs, and ``recommend(location_radius_m=)``.

The samples are checked by geometry (haversine distances, equal areas); the ETAs against the
network's travel-time matrix to the kept points (mean, worst, best, plus turnout)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import dispatch
from dispatch.decide.incidents import Incident, IncidentError, read_fleet
from dispatch.decide.location import disc_etas, disc_samples
from dispatch.decide.recommend import recommend
from dispatch.geo import haversine_m

ROOT = Path(__file__).parents[2]
SCENE = (16.0575, 108.2140)


@pytest.fixture(scope="module")
def net() -> Any:
    return dispatch.load_network("danang")


@pytest.fixture(scope="module")
def fleet() -> Any:
    return read_fleet(ROOT / "scenarios" / "danang_fleet.csv")


def test_samples_cover_the_disc_evenly() -> None:
    pts = disc_samples(16.06, 108.22, 200.0, n=64)
    assert pts.shape == (65, 2) and np.allclose(pts[0], [16.06, 108.22])
    d = np.array([haversine_m(16.06, 108.22, float(a), float(b)) for a, b in pts[1:]])
    assert d.max() <= 200.0 + 1e-6
    # equal areas: the share of samples within r is about (r / R)^2
    for r in (50.0, 100.0, 150.0):
        assert abs(np.mean(d <= r) - (r / 200.0) ** 2) <= 2 / 64
    assert np.array_equal(pts, disc_samples(16.06, 108.22, 200.0, n=64))  # deterministic


def test_disc_etas_are_mean_worst_best_of_the_road_times(net: Any, fleet: Any) -> None:
    d = disc_etas(net, fleet, SCENE, 120.0)
    assert 10 <= d.samples <= 17
    for i, u in enumerate(fleet):
        if not u.dispatchable:
            assert np.isinf(d.eta_s[i]).all()  # busy units are not routed
            continue
        # the crew at the call: a sample in an alley adds an on-foot leg (issue 12)
        dr, wk = net.reach_times([u.point], d.points, vehicle=u.vehicle)
        drive = np.asarray(dr)[0]
        tt = drive + np.asarray(wk)[0]
        assert d.expected_eta_s[i] == pytest.approx(tt.mean() + u.effective_turnout_s)
        assert d.worst_eta_s[i] == pytest.approx(tt.max() + u.effective_turnout_s)
        assert d.best_eta_s[i] == pytest.approx(tt.min() + u.effective_turnout_s)
        assert d.expected_drive_s[i] == pytest.approx(drive.mean())
    # each kept sample is a point every class of the fleet can be driven to
    for p in d.points:
        for v in {u.vehicle for u in fleet}:
            net.snap((float(p[0]), float(p[1])), vehicle=v)


def test_recommend_over_a_disc(net: Any, fleet: Any) -> None:
    inc = Incident("D", SCENE[0], SCENE[1], "cardiac_arrest")
    point = recommend(net, inc, fleet, routes=False)
    assert point.location is None and "location" not in point.to_dict()
    disc = recommend(net, inc, fleet, routes=False, location_radius_m=120.0)
    assert disc.location is not None
    exp = dict(zip([u.id for u in fleet], disc.location.expected_eta_s, strict=True))
    for a in disc.units:  # the chosen units carry their expected ETA
        assert a.eta_s == pytest.approx(exp[a.unit])
    for alt in disc.alternatives:
        assert alt.eta_s == pytest.approx(exp[alt.unit])
    d = disc.to_dict()["location"]
    assert d["radius_m"] == 120.0 and d["samples"] == disc.location.samples
    same = recommend(net, inc, fleet, routes=False, location_radius_m=0.0)
    assert same.to_dict() == point.to_dict()  # (engines agree to ~1e-12 s: compared rounded)
    for bad in (-5.0, float("nan"), float("inf"), "100"):
        with pytest.raises(IncidentError, match="location_radius_m"):
            recommend(net, inc, fleet, routes=False, location_radius_m=bad)  # type: ignore[arg-type]


def test_disc_in_a_river_falls_back_to_the_centre(net: Any, fleet: Any) -> None:
    """Samples off every road are dropped; when none is left the centre alone is used."""
    d = disc_etas(net, fleet, SCENE, 1e-3)  # a millimetre: every sample snaps like the centre
    assert d.samples == 17
    ok = np.isfinite(d.expected_eta_s)
    assert np.allclose(d.worst_eta_s[ok], d.best_eta_s[ok], atol=1e-3)


def test_cli_recommend_over_a_disc(capsys: pytest.CaptureFixture[str]) -> None:
    from dispatch.cli import main

    base = ["recommend", "danang", "--fleet", str(ROOT / "scenarios" / "danang_fleet.csv"),
            "--incident", str(ROOT / "scenarios" / "danang_incident.json")]  # fmt: skip
    assert main([*base, "--location-radius-m", "150", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["location"]["radius_m"] == 150.0 and out["location"]["samples"] > 1
    assert main([*base, "--location-radius-m", "150"]) == 0
    assert "location: a disc of 150 m" in capsys.readouterr().out
    assert main([*base, "--location-radius-m", "-3"]) == 2
    err = capsys.readouterr().err.strip()
    assert "location_radius_m" in err and "-3" in err and "\n" not in err
