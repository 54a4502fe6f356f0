"""The routing kernels a simulation calls, compiled on two cores before it starts (first run only).

A simulation snaps its stations and calls, fills travel-time tables (``reach_times``,
``travel_times``), drives units along routes (``route``) and asks ``fastest_units`` for units on
the road. On the first run after an install numba compiles the kernels behind these calls (about
10 CPU seconds, most of a first run); :func:`compile_kernels` compiles them before the simulation,
half in a forked child process (:func:`dispatch.routing.kernels.compile_concurrently`), by calling
each once on a few points of the network. Every later run finds them in numba's on-disk cache and
skips this at once. Results do not depend on it: it only decides which process compiles a kernel.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from dispatch.errors import DispatchError
from dispatch.roads.snapping import snap_kernel
from dispatch.routing import queries
from dispatch.routing.dijkstra import (
    dispatch_kernel,
    exits_kernel,
    kfastest_kernel,
    matrix_kernel,
    p2p_kernel,
    tree_path,
)
from dispatch.routing.kernels import cached_on_disk, compile_concurrently, same_arc_kernel
from dispatch.routing.kernels import seeds_kernel
from dispatch.routing.p2p import geometry_kernel

__all__ = ["KERNELS", "compile_kernels"]

#: The entry kernels a simulation calls (their helpers are compiled with them).
KERNELS = (
    snap_kernel, seeds_kernel, matrix_kernel, same_arc_kernel, p2p_kernel, tree_path,
    geometry_kernel, exits_kernel, dispatch_kernel, kfastest_kernel,
)  # fmt: skip


def _arcs(net: Any, vehicle: str, n: int = 4) -> np.ndarray:
    """``n`` arcs spread over those ``vehicle`` may use (int64, like snapped positions)."""
    arcs = np.flatnonzero(net.allowed(vehicle))
    if len(arcs) == 0:
        arcs = np.arange(len(net.graph.arc_tail))
    return np.asarray(arcs[np.linspace(0, len(arcs) - 1, n).astype(np.int64)], dtype=np.int64)


def compile_kernels(net: Any, *, vehicle: str = "ambulance", hour: float = 8.0) -> bool:
    """Compile the kernels of :data:`KERNELS` for ``net`` unless numba's on-disk cache has them.

    Returns whether anything was compiled. The calls are those of a simulation (the same
    argument types: numba compiles one version per type signature) on four places of the map:
    this process snaps and asks ``fastest_units``; the child fills a travel-time matrix and finds
    a route between edge positions (no snapping there, so that no kernel is compiled twice). A
    call that fails here (a map too small) is skipped: the simulation compiles what it needs.
    """
    if cached_on_disk(*KERNELS):
        return False
    g = net.graph
    arcs = _arcs(net, vehicle)
    nodes = g.arc_tail[arcs]
    pts = np.column_stack([g.node_lat[nodes], g.node_lon[nodes]]).astype(float)
    p0 = (float(pts[0, 0]), float(pts[0, 1]))
    unit = {"id": "warm-up", "vehicle": vehicle, "lat": float(pts[-1, 0]),
            "lon": float(pts[-1, 1]), "turnout_s": 60.0}  # fmt: skip
    t = np.full(len(arcs), 0.5)

    def matrix() -> None:
        w = net.weights(vehicle, hour)
        queries.matrix(net.engine, w, arcs[:2], t[:2], arcs[2:], t[2:])

    def route() -> None:
        w = net.weights(vehicle, hour)
        queries.route_between(net.engine, w, int(arcs[0]), 0.5, int(arcs[-1]), 0.5, vehicle)

    def quietly(job: Callable[[], object]) -> Callable[[], None]:
        def run() -> None:
            try:
                job()
            except DispatchError:
                pass

        return run

    here = [
        quietly(lambda: net.snap(p0, vehicle=vehicle)),
        quietly(lambda: net.snap(pts, vehicle=vehicle)),
        quietly(lambda: net.fastest_units(p0, [unit], k=1, hour=hour)),
    ]
    compile_concurrently(here, [quietly(matrix), quietly(route)])
    return True
