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

import contextlib
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
from dispatch.routing.kernels import (
    cached_on_disk,
    compile_concurrently,
    same_arc_kernel,
    seeds_kernel,
)
from dispatch.routing.p2p import geometry_kernel

__all__ = ["KERNELS", "compile_kernels", "warmup_jobs"]

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


def warmup_jobs(
    net: Any, *, vehicle: str = "ambulance", hour: float = 8.0
) -> tuple[list[Callable[[], None]], list[Callable[[], None]]]:
    """The warm-up calls of :func:`compile_kernels`: ``(here, elsewhere)``, two lists of jobs.

    The calls are those of a simulation (the same argument types: numba compiles one version per
    type signature) on four places of the map. ``here`` snaps and asks ``fastest_units``;
    ``elsewhere`` fills a travel-time matrix (the kernels of ``reach_times`` and
    ``travel_times``) and finds a route between edge positions: no snapping there, so that the
    two lists share as few kernels as possible. A call that fails (a map too small to hold the
    places chosen) is skipped: the simulation compiles what it needs itself.
    """
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
            with contextlib.suppress(DispatchError):
                job()

        return run

    here = [
        quietly(lambda: net.snap(p0, vehicle=vehicle)),
        quietly(lambda: net.snap(pts, vehicle=vehicle)),
        quietly(lambda: net.fastest_units(p0, [unit], k=1, hour=hour)),
    ]
    return here, [quietly(matrix), quietly(route)]


def compile_kernels(net: Any, *, vehicle: str = "ambulance", hour: float = 8.0) -> bool:
    """Compile the kernels of :data:`KERNELS` for ``net`` unless numba's on-disk cache has them.

    Runs :func:`warmup_jobs` on two cores (:func:`dispatch.routing.kernels.compile_concurrently`)
    and returns True, or returns False at once when every kernel is cached (every later run).
    """
    if cached_on_disk(*KERNELS):
        return False
    here, elsewhere = warmup_jobs(net, vehicle=vehicle, hour=hour)
    compile_concurrently(here, elsewhere)
    return True
