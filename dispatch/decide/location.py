"""An uncertain caller location: road ETAs over a disc instead of a point.

A handset's location comes with an uncertainty radius (AML fixes are typically within 50 m,
cell-based ones kilometres). :func:`disc_etas` spreads points evenly over the disc
(:func:`disc_samples`), keeps those every class of the fleet can drive to (a sample in a river or a
park is not a place to drive to), and gives each unit's road ETA to each point: the *expected* ETA
(each kept point stands for an equal share of the disc) ranks the units, the *worst* bounds the
wait. :func:`dispatch.decide.recommend.recommend` uses it when given ``location_radius_m``; the
live service and ``dispatch recommend --location-radius-m`` both go through it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dispatch.decide.assign import eta_matrix
from dispatch.decide.incidents import IncidentError, Unit
from dispatch.errors import PointError
from dispatch.geo import EARTH_RADIUS_M

__all__ = ["DISC_SAMPLES", "DiscETA", "disc_etas", "disc_samples"]

#: Points sampled in a caller-location disc (plus the centre).
DISC_SAMPLES = 16


def disc_samples(lat: float, lon: float, radius_m: float, n: int = DISC_SAMPLES) -> np.ndarray:
    """The centre and `n` points spread evenly over a disc (Vogel's sunflower spiral), ``(n+1, 2)``.

    Deterministic: the same disc gives the same points. Each sample stands for an equal area.

    >>> pts = disc_samples(16.06, 108.22, 100.0, n=4)
    >>> pts.shape, bool(np.allclose(pts[0], [16.06, 108.22]))
    ((5, 2), True)
    """
    i = np.arange(n, dtype=float)
    r = radius_m * np.sqrt((i + 0.5) / n)
    theta = i * math.pi * (3.0 - math.sqrt(5.0))
    dlat = np.degrees(r * np.cos(theta) / EARTH_RADIUS_M)
    dlon = np.degrees(r * np.sin(theta) / (EARTH_RADIUS_M * math.cos(math.radians(lat))))
    pts = np.column_stack([lat + dlat, lon + dlon])
    return np.vstack([[lat, lon], pts])


@dataclass(frozen=True)
class DiscETA:
    """Road ETAs of every unit to the points kept in a disc.

    ``eta_s``/``drive_s`` have shape ``(n_units, n_points)`` (``inf``: unreachable, busy);
    ``problems`` maps a unit id to why it was treated as unreachable.
    """

    lat: float
    lon: float
    radius_m: float
    points: np.ndarray
    eta_s: np.ndarray
    drive_s: np.ndarray
    problems: dict[str, str] = field(default_factory=dict)

    @property
    def samples(self) -> int:
        """How many points of the disc were kept (the centre counts)."""
        return len(self.points)

    @property
    def expected_eta_s(self) -> np.ndarray:
        """Per unit, the mean ETA over the kept points (each an equal share of the disc)."""
        return np.asarray(self.eta_s.mean(axis=1))

    @property
    def expected_drive_s(self) -> np.ndarray:
        """Per unit, the mean drive time over the kept points."""
        return np.asarray(self.drive_s.mean(axis=1))

    @property
    def worst_eta_s(self) -> np.ndarray:
        """Per unit, the largest ETA over the kept points."""
        return np.asarray(self.eta_s.max(axis=1))

    @property
    def best_eta_s(self) -> np.ndarray:
        """Per unit, the smallest ETA over the kept points."""
        return np.asarray(self.eta_s.min(axis=1))

    def summary(self) -> dict[str, Any]:
        """JSON form of the disc (without the per-unit matrices)."""
        return {
            "lat": self.lat,
            "lon": self.lon,
            "radius_m": self.radius_m,
            "samples": self.samples,
            "method": f"expected ETA over {self.samples} points sampled in the disc, each snapped",
        }


def disc_etas(
    net: Any,
    units: Sequence[Unit],
    point: tuple[float, float],
    radius_m: float,
    *,
    hour: float | None = None,
    n_samples: int = DISC_SAMPLES,
) -> DiscETA:
    """ETAs from every unit to the points of a disc every class of the fleet can drive to.

    Parameters
    ----------
    net : Network
        The road network.
    units : sequence of Unit
        The fleet (as :func:`dispatch.decide.assign.eta_matrix` takes it).
    point : (lat, lon)
        Centre of the disc (the reported location).
    radius_m : float
        Uncertainty radius, metres (> 0).
    hour : float, optional
        Clock hour for time-of-day speeds and closures.
    n_samples : int, default 16
        Points spread over the disc besides the centre.

    Returns
    -------
    DiscETA
        If no point of the disc (not even the centre) is reachable by every class, the centre
        alone is used.

    Raises
    ------
    IncidentError
        `radius_m` not a positive finite number or `n_samples` < 1.
    """
    if isinstance(radius_m, bool) or not isinstance(radius_m, int | float):
        raise IncidentError(f"location_radius_m must be a number of metres, got {radius_m!r}")
    if not (math.isfinite(radius_m) and radius_m > 0):
        raise IncidentError(f"location_radius_m must be > 0 and finite, got {radius_m!r}")
    if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 1:
        raise IncidentError(f"n_samples must be an integer >= 1, got {n_samples!r}")
    lat, lon = float(point[0]), float(point[1])
    classes = sorted({u.vehicle for u in units})
    pts: list[tuple[float, float]] = []
    for p in disc_samples(lat, lon, float(radius_m), n_samples):
        try:
            for v in classes:
                net.snap((float(p[0]), float(p[1])), vehicle=v)
        except PointError:
            continue  # off every road a class may use: not a place to drive to
        pts.append((float(p[0]), float(p[1])))
    if not pts:
        pts = [(lat, lon)]
    eta, drive, problems = eta_matrix(net, units, pts, hour=hour)
    return DiscETA(lat, lon, float(radius_m), np.asarray(pts), eta, drive, problems)
