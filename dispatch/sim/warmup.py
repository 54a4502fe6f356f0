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
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from dispatch.errors import DispatchError
from dispatch.roads.snapping import snap_kernel
from dispatch.routing import cch, queries
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
from dispatch.routing.order import customize_arcs_kernel, customize_rows_kernel
from dispatch.routing.p2p import geometry_kernel, route_points_kernel

__all__ = ["CCH_KERNELS", "KERNELS", "compile_kernels", "grid_network", "hierarchy_cached",
           "warmup_jobs"]  # fmt: skip

#: The entry kernels a simulation calls (their helpers are compiled with them).
KERNELS = (
    snap_kernel, seeds_kernel, matrix_kernel, same_arc_kernel, p2p_kernel, tree_path,
    geometry_kernel, exits_kernel, dispatch_kernel, kfastest_kernel,
)  # fmt: skip

#: The entry kernels of the CCH, which a simulation calls as soon as the map's hierarchy is in
#: the map cache (``dispatch serve`` or a long run saved it): loading it, customizing it for the
#: day's weights, matrices, routes and ``fastest_units`` on its labels.
CCH_KERNELS = (
    cch._index_kernel, customize_arcs_kernel, customize_rows_kernel, cch.phast_block_kernel,
    cch.unit_labels_kernel, cch.dispatch_cch_kernel, cch.many_to_one_kernel,
    cch.from_one_cch_kernel, route_points_kernel,
)  # fmt: skip


def hierarchy_cached(map_name: str | os.PathLike[str]) -> bool:
    """Whether the map (default settings) has its CCH hierarchy in the map cache: then a
    simulation routes with the CCH from its first queries and its kernels are warmed up too."""
    from dispatch.roads.network import cache_path, hierarchy_cache_path
    from dispatch.roads.osm import resolve_map
    from dispatch.roads.profiles import network_settings

    try:
        return hierarchy_cache_path(cache_path(resolve_map(map_name), network_settings())).exists()
    except DispatchError:
        return False


def _arcs(net: Any, vehicle: str, n: int = 4) -> np.ndarray:
    """``n`` arcs spread over those ``vehicle`` may use (int64, like snapped positions)."""
    arcs = np.flatnonzero(net.allowed(vehicle))
    if len(arcs) == 0:
        arcs = np.arange(len(net.graph.arc_tail))
    return np.asarray(arcs[np.linspace(0, len(arcs) - 1, n).astype(np.int64)], dtype=np.int64)


def grid_network(folder: str | os.PathLike[str]) -> Any:
    """A 3 x 3 grid of two-way residential streets (100 m blocks at the equator), compiled from
    OSM XML like any map (the same array types), its cache in ``folder``. ILLUSTRATIVE: it only
    gives the kernels arguments of the right types."""
    from dispatch.roads.network import load_network

    nodes = "".join(
        f'<node id="{3 * i + j + 1}" version="1" lat="{i * 0.0009:.4f}" lon="{j * 0.0009:.4f}"/>'
        for i in range(3)
        for j in range(3)
    )
    ways = []
    for k, (a, b) in enumerate([(1, 2), (2, 3), (4, 5), (5, 6), (7, 8), (8, 9),
                                (1, 4), (4, 7), (2, 5), (5, 8), (3, 6), (6, 9)]):  # fmt: skip
        ways.append(f'<way id="{k + 1}" version="1"><nd ref="{a}"/><nd ref="{b}"/>'
                    '<tag k="highway" v="residential"/></way>')  # fmt: skip
    path = Path(folder) / "grid.osm"
    path.write_text(f'<?xml version="1.0" encoding="UTF-8"?><osm version="0.6">{nodes}'
                    f"{''.join(ways)}</osm>\n")  # fmt: skip
    return load_network(path, cache_dir=Path(folder) / "cache")


def warmup_jobs(
    load: Callable[[], Any], *, vehicle: str = "ambulance", hour: float = 8.0,
    hierarchy: bool = False,
) -> tuple[list[Callable[[], None]], list[Callable[[], None]]]:  # fmt: skip
    """The warm-up calls of :func:`compile_kernels`: ``(first, pool)``, two lists of jobs.

    ``first`` is empty. ``pool`` makes the calls of a simulation (the same argument types: numba
    compiles one version per type signature) on :func:`grid_network`, largest first: a route
    between edge positions, ``fastest_units``, a travel-time matrix (the kernels of
    ``reach_times`` and ``travel_times``); then it loads the map with ``load()`` (compiled from
    OSM on a first run and written to the map cache, where the simulation finds it, whichever
    process ran it); then snapping. With ``hierarchy`` (the map's CCH hierarchy is cached, see
    :func:`hierarchy_cached`) three jobs come first that make the same calls on the map itself
    with its hierarchy loaded and customized (a matrix, ``fastest_units``, a route), so that the
    CCH kernels are compiled too. A call that fails is skipped: the simulation compiles (or
    reads) what it needs itself.
    """
    grids: list[Any] = []  # one grid per process (built after the fork)

    def grid() -> Any:
        if not grids:
            folder = tempfile.mkdtemp(prefix="dispatch-warm-up-")
            try:
                grids.append(grid_network(folder))
            finally:
                shutil.rmtree(folder, ignore_errors=True)
        return grids[0]

    def place(net: Any) -> tuple[np.ndarray, np.ndarray, tuple[float, float], dict[str, Any]]:
        arcs = _arcs(net, vehicle)
        g = net.graph
        nodes = g.arc_tail[arcs]
        pts = np.column_stack([g.node_lat[nodes], g.node_lon[nodes]]).astype(float)
        unit = {"id": "warm-up", "vehicle": vehicle, "lat": float(pts[-1, 0]),
                "lon": float(pts[-1, 1]), "turnout_s": 60.0}  # fmt: skip
        return arcs, pts, (float(pts[0, 0]), float(pts[0, 1])), unit

    def route() -> None:
        net = grid()
        arcs = place(net)[0]
        w = net.weights(vehicle, hour)
        queries.route_between(net.engine, w, int(arcs[0]), 0.5, int(arcs[-1]), 0.5, vehicle)

    def fastest() -> None:
        net = grid()
        _, _, p0, unit = place(net)
        net.fastest_units(p0, [unit], k=1, hour=hour)

    def matrix() -> None:
        net = grid()
        arcs = place(net)[0]
        t = np.full(len(arcs), 0.5)
        w = net.weights(vehicle, hour)
        queries.matrix(net.engine, w, arcs[:2], t[:2], arcs[2:], t[2:])

    def snap() -> None:
        net = grid()
        _, pts, p0, _ = place(net)
        net.snap(p0, vehicle=vehicle)
        net.snap(pts, vehicle=vehicle)

    def quietly(job: Callable[[], object]) -> Callable[[], None]:
        def run() -> None:
            with contextlib.suppress(DispatchError):
                job()

        return run

    def read_map() -> None:  # in the child: written to the map cache, read from it here
        load()

    maps: list[Any] = []  # the map with its customized hierarchy, once per process

    def real() -> tuple[Any, np.ndarray]:
        if not maps:
            net = load()
            w = net.weights(vehicle, hour)
            net.engine.metric(w)  # loads the hierarchy and customizes it: the CCH answers next
            maps.append((net, w))
        net, w = maps[0]
        return net, w

    def cch_matrix() -> None:
        net, w = real()
        arcs = place(net)[0]
        t = np.full(len(arcs), 0.5)
        # by the points' labels, both ways (a few points on one side), and by PHAST sweeps
        # (enough on both sides): see queries.LABELS_MAX_FEW
        few, many = arcs[:1], np.resize(arcs, queries.LABELS_MAX_FEW + 1)
        tm = np.full(len(many), 0.5)
        queries.matrix(net.engine, w, many, tm, few, t[:1])
        queries.matrix(net.engine, w, few, t[:1], many, tm)
        queries.matrix(net.engine, w, many, tm, many, tm)

    def cch_fastest() -> None:
        net, _ = real()
        _, _, p0, unit = place(net)
        net.fastest_units(p0, [unit], k=1, hour=hour)

    def cch_route() -> None:
        net, _ = real()
        _, pts, _, _ = place(net)
        a, b = (float(pts[0, 0]), float(pts[0, 1])), (float(pts[-1, 0]), float(pts[-1, 1]))
        net.route(a, b, vehicle=vehicle, hour=hour)

    jobs: tuple[Callable[[], None], ...] = (route, fastest, matrix, read_map, snap)
    if hierarchy:
        jobs = (cch_matrix, cch_fastest, cch_route, *jobs)
    return [], [quietly(j) for j in jobs]


def compile_kernels(
    load: Callable[[], Any], *, vehicle: str = "ambulance", hour: float = 8.0,
    hierarchy: bool = False,
) -> bool:  # fmt: skip
    """Compile the kernels of :data:`KERNELS` (and :data:`CCH_KERNELS` with ``hierarchy``: the
    map's hierarchy is cached) unless numba's on-disk cache has them.

    ``load()`` loads the map the simulation will use (called only when something is compiled).
    Runs :func:`warmup_jobs` on two cores (:func:`dispatch.routing.kernels.compile_concurrently`)
    and returns True, or returns False at once when every kernel is cached (every later run).
    """
    if cached_on_disk(*KERNELS, *(CCH_KERNELS if hierarchy else ())):
        return False
    first, pool = warmup_jobs(load, vehicle=vehicle, hour=hour, hierarchy=hierarchy)
    compile_concurrently(first, pool)
    return True
