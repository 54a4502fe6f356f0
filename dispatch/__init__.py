"""dispatch: which emergency vehicle arrives first, over real OpenStreetMap streets.

Data flow, one module each: :mod:`~dispatch.roads.osm` (OSM file) -> :mod:`~dispatch.roads.network` (compiled
network) -> :mod:`~dispatch.roads.snapping` (locating points) -> :mod:`~dispatch.routing.queries` (travel times,
fastest units, routes) with :mod:`~dispatch.routing.closures` -> decisions -> simulation -> report.

>>> import dispatch
>>> net = dispatch.load_network("danang")
>>> net.vehicles
('ambulance', 'fire_engine', 'ladder', 'motorbike')
"""

from __future__ import annotations

from dispatch.errors import DispatchError
from dispatch.roads import snapping as _snapping
from dispatch.roads.network import Network, load_network
from dispatch.roads.osm import MAP_FILES, Facility
from dispatch.roads.profiles import VEHICLE_CLASSES, NetworkSettings, network_settings
from dispatch.routing import closures as _closures
from dispatch.routing import queries as _routing
from dispatch.routing.queries import Fleet, Route, UnitETA

# Thin methods on the network object; the documented functions live in their modules.
Network.vehicles = VEHICLE_CLASSES  # type: ignore[attr-defined]
Network.snap = _snapping.snap  # type: ignore[attr-defined]
Network.travel_times = _routing.travel_times  # type: ignore[attr-defined]
Network.fastest_units = _routing.fastest_units  # type: ignore[attr-defined]
Network.fleet = _routing.fleet  # type: ignore[attr-defined]
Network.route = _routing.route  # type: ignore[attr-defined]
Network.weights = _routing.weights  # type: ignore[attr-defined]
Network.close_arcs = _closures.close_arcs  # type: ignore[attr-defined]
Network.close_ways = _closures.close_ways  # type: ignore[attr-defined]
Network.close_edges = _closures.close_edges  # type: ignore[attr-defined]
Network.close_polygon = _closures.close_polygon  # type: ignore[attr-defined]
Network.close_geojson = _closures.close_geojson  # type: ignore[attr-defined]
Network.reopen = _closures.reopen  # type: ignore[attr-defined]
Network.reopen_all = _closures.reopen_all  # type: ignore[attr-defined]
Network.closures = property(lambda self: tuple(self._closures.values()))  # type: ignore[attr-defined]

__all__ = [
    "MAP_FILES",
    "VEHICLE_CLASSES",
    "DispatchError",
    "Facility",
    "Fleet",
    "Network",
    "NetworkSettings",
    "Route",
    "UnitETA",
    "load_network",
    "network_settings",
]
