"""dispatch: which emergency vehicle arrives first, over real OpenStreetMap streets.

Data flow, one module each: :mod:`~dispatch.roads.osm` (OSM file) -> :mod:`~dispatch.roads.compile`
(arrays) -> :mod:`~dispatch.roads.network` (the :class:`Network`: a frozen
:class:`~dispatch.roads.graph.RoadGraph`, a routing :class:`~dispatch.routing.engine.Engine` and a
:class:`~dispatch.routing.closures.ClosureSet`) -> :mod:`~dispatch.roads.snapping` (locating points)
-> :mod:`~dispatch.routing.queries` (travel times, fastest units, routes) -> decisions -> simulation
-> report. See docs/architecture.md.

>>> import dispatch
>>> net = dispatch.load_network("danang")
>>> net.vehicles
('ambulance', 'fire_engine', 'ladder', 'motorbike')
"""

from __future__ import annotations

from dispatch.errors import DispatchError
from dispatch.roads.network import Network, load_network
from dispatch.roads.osm import MAP_FILES, Facility
from dispatch.roads.profiles import VEHICLE_CLASSES, NetworkSettings, network_settings
from dispatch.routing.closures import Closure, ClosureSet
from dispatch.routing.engine import EnginePolicy
from dispatch.routing.oracle import TravelOracle
from dispatch.routing.queries import Fleet, Route, UnitETA

__all__ = [
    "MAP_FILES",
    "VEHICLE_CLASSES",
    "Closure",
    "ClosureSet",
    "DispatchError",
    "EnginePolicy",
    "Facility",
    "Fleet",
    "Network",
    "NetworkSettings",
    "Route",
    "TravelOracle",
    "UnitETA",
    "load_network",
    "network_settings",
]
