"""The compiled road graph as a frozen value: read-only numpy arrays, dense indices.

:class:`RoadGraph` holds whatever arrays :mod:`dispatch.roads.compile` produced (its
``ARRAY_NAMES``), each made read-only, and refuses attribute assignment. It knows nothing of vehicle
classes, closures or caches: those belong to :class:`dispatch.routing.engine.Engine`.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

import numpy as np


class RoadGraph:
    """Frozen arrays of a compiled road network (see :mod:`dispatch.roads.compile`).

    Nodes are ``0..n_nodes-1`` and arcs ``0..n_arcs-1``; arcs are numbered by tail, so that the
    forward CSR of node ``v`` is ``fwd_ptr[v]:fwd_ptr[v + 1]``; ``rev_arc[rev_ptr[v]:rev_ptr[v + 1]]``
    are the arcs into ``v``. Two-way pairs are linked by ``arc_twin`` (-1: none). Each arc's polyline
    is ``geom_lat/geom_lon[geom_ptr[a]:geom_ptr[a + 1]]``.

    Examples
    --------
    >>> import numpy as np
    >>> g = RoadGraph({"arc_tail": np.array([0]), "arc_head": np.array([1]),
    ...                "node_lat": np.zeros(2), "node_lon": np.zeros(2)})
    >>> g.n_nodes, g.n_arcs, g.arc_head.flags.writeable
    (2, 1, False)
    """

    node_osmid: np.ndarray
    node_lat: np.ndarray
    node_lon: np.ndarray
    arc_tail: np.ndarray
    arc_head: np.ndarray
    fwd_ptr: np.ndarray
    rev_ptr: np.ndarray
    rev_arc: np.ndarray
    arc_length_m: np.ndarray
    arc_cat: np.ndarray
    arc_maxspeed_kmh: np.ndarray
    arc_width_m: np.ndarray
    arc_maxweight_t: np.ndarray
    arc_contraflow: np.ndarray
    arc_way: np.ndarray
    arc_twin: np.ndarray
    geom_ptr: np.ndarray
    geom_node: np.ndarray
    geom_lat: np.ndarray
    geom_lon: np.ndarray
    arc_tag_access: np.ndarray
    arc_signals: np.ndarray  # dispatch.roads.delays: signals, stop signs, gates (per class) passed
    arc_stops: np.ndarray
    arc_gates: np.ndarray
    n_nodes: int
    n_arcs: int
    arrays: Mapping[str, np.ndarray]
    _bbox: tuple[float, float, float, float]

    def __init__(self, arrays: Mapping[str, np.ndarray]) -> None:
        frozen: dict[str, np.ndarray] = {}
        for name, value in arrays.items():
            a = np.asarray(value)
            if a.flags.writeable:
                a = a.view()
                a.flags.writeable = False
            frozen[name] = a
            object.__setattr__(self, name, a)
        object.__setattr__(self, "arrays", MappingProxyType(frozen))
        object.__setattr__(self, "n_nodes", len(frozen["node_lat"]))
        object.__setattr__(self, "n_arcs", len(frozen["arc_tail"]))
        lat = frozen.get("geom_lat", frozen["node_lat"])
        lon = frozen.get("geom_lon", frozen["node_lon"])
        box = (float(lat.min()), float(lon.min()), float(lat.max()), float(lon.max()))
        object.__setattr__(self, "_bbox", box)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"RoadGraph is immutable: cannot set {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"RoadGraph is immutable: cannot delete {name!r}")

    def __repr__(self) -> str:
        return f"<RoadGraph: {self.n_nodes} nodes, {self.n_arcs} arcs>"

    @property
    def bbox(self) -> tuple[float, float, float, float]:
        """``(min_lat, min_lon, max_lat, max_lon)`` of the geometry (of the nodes without one)."""
        return self._bbox
