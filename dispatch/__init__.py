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

from typing import TYPE_CHECKING, Any

from dispatch.errors import DispatchError
from dispatch.model import Hospital, Incident, Station, Unit, UnitStatus, VehicleClass
from dispatch.roads.network import Network, load_network
from dispatch.roads.osm import MAP_FILES, Facility
from dispatch.roads.profiles import VEHICLE_CLASSES, NetworkSettings, network_settings
from dispatch.routing.closures import Closure, ClosureSet
from dispatch.routing.engine import EnginePolicy
from dispatch.routing.oracle import TravelOracle
from dispatch.routing.queries import Fleet, Route, UnitETA

if TYPE_CHECKING:
    from dispatch.decide.assign import assign
    from dispatch.decide.recommend import recommend
    from dispatch.sim.runner import run_scenario as simulate
    from dispatch.sim.scenario import load_scenario

#: Decisions and simulation, imported on first use (OR-Tools and the simulator are not needed to
#: route, and ``import dispatch`` stays fast for a dispatch system that only asks who goes).
_LAZY = {
    "recommend": ("dispatch.decide.recommend", "recommend"),
    "assign": ("dispatch.decide.assign", "assign"),
    "load_scenario": ("dispatch.sim.scenario", "load_scenario"),
    "simulate": ("dispatch.sim.runner", "run_scenario"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'dispatch' has no attribute {name!r}")


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
    "Hospital",
    "Incident",
    "Station",
    "Unit",
    "UnitStatus",
    "VehicleClass",
    "assign",
    "load_network",
    "load_scenario",
    "network_settings",
    "recommend",
    "simulate",
]
