"""The routing engine: every cache and scratch array of one road graph, with named attributes.

:class:`Engine` owns, for one frozen :class:`~dispatch.roads.graph.RoadGraph` and its
:class:`~dispatch.roads.profiles.NetworkSettings`:

* per-class masks (``allowed``, class cores, snapping masks) and the snapping grid;
* base weight arrays per (class, speed band), and closed-road weight arrays per (class, band,
  closures in force), bounded LRU (``EnginePolicy.max_weight_arrays``);
* the customizable contraction hierarchy and its metrics per weight array, bounded LRU
  (``EnginePolicy.max_metrics``);
* the last prepared fleet and per-fleet tables (exits, CCH labels, nearest-units tables);
* the CCH labels of recently asked point sets (:meth:`Engine.point_labels`: a query from the
  same origins, a live service's units, or to the same destinations, its hospitals, costs one
  search from the other side);
* per-thread scratch space (:meth:`Engine.scratch`, :meth:`Engine.cch_workspace`): two threads can
  query the same engine at once (the numba kernels release the GIL).

Memory bound (``n`` nodes, ``m`` arcs, ``e`` CCH edges, about ``2 m``): graph-sized caches are
``O(m)`` bytes each; closed-road weights at most ``max_weight_arrays * 8 m`` bytes; metrics at most
``max_metrics * 48 e`` bytes; fleet tables at most ``max_fleet_tables * (16 K n)`` per class; one
scratch set (about ``40 n + 12 m`` bytes) per thread that queried. For Campo Grande (8,243 nodes,
26,064 arcs) the defaults bound the whole at about 60 MB.

Which engine answers a query is decided by :class:`EnginePolicy` (documented there); every engine
gives the same answer to float rounding, and :func:`dispatch.routing.queries.fastest_units` compares
ETAs after rounding to ``EnginePolicy.eta_resolution_s``, so the units and their order never depend
on which engine answered, hence not on what was asked before.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import threading
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import breadth_first_order, connected_components

from dispatch.errors import DispatchError, FleetError, HourError, PointError
from dispatch.roads.delays import arc_delay_s
from dispatch.roads.graph import RoadGraph
from dispatch.roads.profiles import (
    VEHICLE_CLASSES,
    NetworkSettings,
    access_mask,
    arc_speeds_kmh,
    check_vehicle,
)
from dispatch.roads.snapping import (
    SnapIndex,
    build_index,
    check_points,
    geom_cum_m,
    snap_arrays,
    snap_one,
)
from dispatch.routing import cch
from dispatch.routing.closures import ClosureSet, arc_lines
from dispatch.routing.dijkstra import exits_kernel, knearest_kernel
from dispatch.routing.kernels import (
    Adjacency,
    ArcEnds,
    Exits,
    NearestTable,
    Packed,
    Scratch,
    UnitPositions,
    new_scratch,
    seeds_kernel,
)

INF = np.inf
#: Point sets whose CCH labels :meth:`Engine.point_labels` keeps (labels of at most
#: ``queries.LABELS_MAX_POINTS`` points each, a few hundred ancestors per point).
POINT_LABEL_SETS = 32
K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
_CLASS_INDEX = {v: i for i, v in enumerate(VEHICLE_CLASSES)}


def check_hour(hour: object) -> float | None:
    """A clock hour: ``None`` or a finite real number (not a string, not a boolean)."""
    if hour is None:
        return None
    if isinstance(hour, bool) or not isinstance(hour, int | float | np.integer | np.floating):
        raise HourError(f"hour={hour!r} must be a number of hours (or None)")
    h = float(hour)
    if not math.isfinite(h):
        raise HourError(f"hour={hour!r} must be a finite number of hours")
    return h


@dataclass(frozen=True)
class EnginePolicy:
    """When each engine answers, and how much the engine may cache.

    Three exact engines answer the same questions:

    * **Dijkstra** (early-stopping, from the call or per matrix row): no preprocessing, so it answers
      the first queries after a load or a closure;
    * **CCH** (customizable contraction hierarchy): a metric-independent order built once per graph,
      then one customization per weight array (a few ms), then microsecond queries;
    * **nearest-units table** of a fleet that does not move (K units per node, one multi-label
      search): ``fastest_units`` with ``k < table_k`` is then a lookup.

    Attributes
    ----------
    cch_after_searches
        Searches with one weight array after which the CCH is customized for it (a customization
        costs about ten searches on a city graph); 0: always the CCH.
    table_after_uses
        Queries with the same fleet and weights after which its nearest-units table is built.
    table_k
        Units per node in that table; queries with ``k < table_k`` can be lookups.
    cch_small_fleet
        A class with at most this many units is answered by the CCH once it is customized for the
        weights, even with a fleet that has just moved.
    eta_resolution_s
        ETAs are compared after rounding to this resolution, then by unit id: the engines agree to
        about 1e-12 s, and the answer (units, order) must not depend on which one answered.
    max_weight_arrays, max_metrics, max_fleet_tables
        LRU bounds of the closed-road weight arrays, CCH metrics, and per-fleet tables per class.
    hierarchy_after_searches
        Searches (with any weights) before the engine builds the CCH's metric-independent part
        (order and contraction) when it has none, in memory or in its disk cache
        (:func:`dispatch.load_network` keeps it beside the network). Ordering costs a few hundred
        searches, and the first time after an install also the compilation of the CCH kernels
        (about 20 s): a short command (a day of calls on a small map, a few queries) is answered by
        Dijkstra alone. A hierarchy once built is saved, so a later process uses the CCH after
        ``cch_after_searches`` searches, as when it is in memory. 0: no such wait.

    Examples
    --------
    >>> EnginePolicy.dijkstra_only().cch_after_searches > 10**8
    True
    """

    cch_after_searches: int = 12
    table_after_uses: int = 3
    table_k: int = 4
    cch_small_fleet: int = 12
    eta_resolution_s: float = 1e-3
    max_weight_arrays: int = 64
    max_metrics: int = 16
    max_fleet_tables: int = 4
    hierarchy_after_searches: int = 100

    def __post_init__(self) -> None:
        for name in ("cch_after_searches", "table_after_uses", "cch_small_fleet",
                     "max_weight_arrays", "max_metrics", "max_fleet_tables",
                     "hierarchy_after_searches"):  # fmt: skip
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise DispatchError(f"EnginePolicy {name}={v!r} must be an integer >= 0")
        if isinstance(self.table_k, bool) or not isinstance(self.table_k, int) or self.table_k < 2:
            raise DispatchError(f"EnginePolicy table_k={self.table_k!r} must be an integer >= 2")
        r = self.eta_resolution_s
        if isinstance(r, bool) or not isinstance(r, int | float) or not (0 < r < 60):
            raise DispatchError(f"EnginePolicy eta_resolution_s={r!r} must be in (0, 60) seconds")

    @classmethod
    def dijkstra_only(cls) -> EnginePolicy:
        """Every query by Dijkstra (no CCH, no table): the reference the others are tested against."""
        return cls(cch_after_searches=_NEVER, table_after_uses=_NEVER, cch_small_fleet=0)

    @classmethod
    def cch_always(cls) -> EnginePolicy:
        """Every query by the CCH (customized on first use), no table."""
        return cls(cch_after_searches=0, table_after_uses=_NEVER, cch_small_fleet=_NEVER,
                   hierarchy_after_searches=0)  # fmt: skip

    @classmethod
    def table_first(cls) -> EnginePolicy:
        """Nearest-units tables from the first query (falling back to the CCH when not proven)."""
        return cls(cch_after_searches=0, table_after_uses=0, cch_small_fleet=_NEVER,
                   hierarchy_after_searches=0)  # fmt: skip


_NEVER = 2**62


class HierarchyStore(Protocol):
    """Where an engine keeps its CCH hierarchy between processes (the network cache's folder:
    :class:`dispatch.roads.network.HierarchyFile`). The store reports its own problems (a corrupt
    or stale file is rebuilt, an unwritable folder is worked around) and never raises."""

    def exists(self) -> bool:
        """Whether a hierarchy file is there (current or not: :meth:`load` checks)."""
        ...

    def load(self) -> cch.Hierarchy | None:
        """The stored hierarchy if it is current and intact, else ``None``."""
        ...

    def save(self, h: cch.Hierarchy) -> None:
        """Keep ``h`` for later processes (atomically; silently skipped when impossible)."""
        ...


class DijkstraWorkspace:
    """One thread's Dijkstra scratch arrays and its current stamp."""

    def __init__(self, n_nodes: int, n_arcs: int) -> None:
        self.s: Scratch = new_scratch(n_nodes, n_arcs)
        self.sp: Packed = tuple(self.s)
        self.cur = 0

    def next_stamp(self) -> int:
        """A stamp no earlier search of this workspace used."""
        self.cur += 1
        return self.cur


class _LRU(Generic[K, V]):
    """A small least-recently-used map; writes under a lock, reads lock-free under the GIL."""

    def __init__(self, bound: int) -> None:
        self.bound = bound
        self._d: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        v = self._d.get(key)
        if v is not None:
            with contextlib.suppress(KeyError):  # evicted by another thread meanwhile
                self._d.move_to_end(key)
        return v

    def peek(self, key: K) -> V | None:
        """The value for ``key`` without marking it used (the order of eviction is unchanged)."""
        return self._d.get(key)

    def put(self, key: K, value: V) -> None:
        with self._lock:
            self._d[key] = value
            self._d.move_to_end(key)
            while len(self._d) > max(self.bound, 1):
                self._d.popitem(last=False)

    def __len__(self) -> int:
        return len(self._d)

    def __contains__(self, key: object) -> bool:
        return key in self._d

    def clear(self) -> None:
        with self._lock:
            self._d.clear()


#: A unit row as read from a fleet: (id, vehicle, lat, lon, available, turnout_s).
UnitRow = tuple[object, object, object, object, object, object]


class Engine:
    """Caches and scratch space of one road graph (shared by every view of a network).

    Examples
    --------
    >>> from dispatch import load_network
    >>> eng = load_network("danang").engine
    >>> w = eng.weights("ambulance", None, ClosureSet())
    >>> w is eng.weights("ambulance", None, ClosureSet()), bool(w.flags.writeable)
    (True, False)
    """

    def __init__(
        self, graph: RoadGraph, settings: NetworkSettings, policy: EnginePolicy | None = None,
        *, hierarchy_store: HierarchyStore | None = None,
    ) -> None:  # fmt: skip
        self.graph = graph
        self.hierarchy_store = hierarchy_store
        self.settings = settings
        self.policy = policy or EnginePolicy()
        self.ends = ArcEnds(graph.arc_tail, graph.arc_head, graph.arc_twin)
        identity = np.arange(graph.n_arcs, dtype=np.int32)
        identity.flags.writeable = False
        self.fwd = Adjacency(graph.fwd_ptr, identity, graph.arc_head)  # arcs are numbered by tail
        self.rev = Adjacency(graph.rev_ptr, graph.rev_arc, graph.arc_tail)
        # the same groups as entry kernels take them (see dispatch.routing.kernels.Packed)
        self.ends_p: Packed = tuple(self.ends)
        self.fwd_p: Packed = tuple(self.fwd)
        self.rev_p: Packed = tuple(self.rev)
        access = access_mask(graph.arc_cat, graph.arc_width_m, graph.arc_maxweight_t, settings,
                             graph.arc_tag_access)  # fmt: skip
        access.flags.writeable = False
        self.access: np.ndarray = access
        self._lock = threading.RLock()
        self._local = threading.local()
        self._allowed: dict[int, np.ndarray] = {}
        self._core: dict[int, np.ndarray] = {}
        self._snap_access: dict[str, np.ndarray] = {}
        self._snap_index: SnapIndex | None = None
        self._snap_hot: tuple[SnapIndex, Packed, np.ndarray] | None = None  # the call-snapping path
        self._geom_cum: np.ndarray | None = None
        self._arc_lines: object | None = None
        self._base: dict[tuple[int, int], np.ndarray] = {}
        self._closed: _LRU[tuple[int, int, tuple[int, ...]], np.ndarray] = _LRU(
            self.policy.max_weight_arrays
        )
        self._hierarchy: cch.Hierarchy | None = None
        self._hierarchy_stored: bool | None = None  # a hierarchy file exists (checked once)
        self._n_searches = 0  # searches counted by use_cch (for hierarchy_after_searches)
        self._metrics: _LRU[int, tuple[np.ndarray, cch.Metric]] = _LRU(self.policy.max_metrics)
        self._point_labels: _LRU[tuple[int, bool, bytes, bytes], tuple[np.ndarray, Packed, Packed]]
        self._point_labels = _LRU(POINT_LABEL_SETS)
        self._searches: dict[int, tuple[np.ndarray, int]] = {}
        self.unit_snaps: dict[tuple[int, float, float], tuple[int, float]] = {}
        self.checked_rows: set[UnitRow] = set()
        self.last_fleet: PreparedFleet | None = None
        self._closure_ids = itertools.count(1)

    def __repr__(self) -> str:
        return (f"<Engine: {self.graph.n_nodes} nodes, {self.graph.n_arcs} arcs, "
                f"{len(self._metrics)} metrics, {len(self._closed)} closed weight arrays>")  # fmt: skip

    def new_closure_id(self) -> int:
        """A closure id unique among every view sharing this engine."""
        with self._lock:
            return next(self._closure_ids)

    def set_policy(self, policy: EnginePolicy) -> None:
        """Change the policy (tests; a service's configuration). Cached metrics are kept."""
        if not isinstance(policy, EnginePolicy):
            raise DispatchError(f"policy={policy!r} must be an EnginePolicy")
        self.policy = policy
        self._closed.bound = policy.max_weight_arrays
        self._metrics.bound = policy.max_metrics

    # --- per-thread scratch -------------------------------------------------------------------

    def scratch(self) -> DijkstraWorkspace:
        """This thread's Dijkstra workspace."""
        ws: DijkstraWorkspace | None = getattr(self._local, "dij", None)
        if ws is None:
            ws = self._local.dij = DijkstraWorkspace(self.graph.n_nodes, self.graph.n_arcs)
        return ws

    def cch_workspace(self) -> cch.Workspace:
        """This thread's CCH workspace."""
        ws: cch.Workspace | None = getattr(self._local, "cch", None)
        if ws is None:
            ws = self._local.cch = cch.Workspace(self.graph.n_nodes)
        return ws

    # --- class masks --------------------------------------------------------------------------

    def allowed(self, vehicle: str) -> np.ndarray:
        """Boolean mask of the arcs a class may use (access rules and contraflow)."""
        c = check_vehicle(vehicle)
        ok = self._allowed.get(c)
        if ok is None:
            g = self.graph
            ok = (self.access >> c) & 1 == 1
            p = self.settings.profiles[vehicle]
            if p.contraflow:
                ok &= ~g.arc_contraflow | (g.arc_length_m <= p.contraflow_max_m)
            else:
                ok &= ~g.arc_contraflow
            ok.flags.writeable = False
            self._allowed[c] = ok
        return ok

    def class_core(self, vehicle: str) -> np.ndarray:
        """Mask of the nodes in the largest strongly connected part open to a class."""
        c = check_vehicle(vehicle)
        core = self._core.get(c)
        if core is None:
            g = self.graph
            ok = self.allowed(vehicle)
            m = csr_matrix((np.ones(int(ok.sum())), (g.arc_tail[ok], g.arc_head[ok])),
                           shape=(g.n_nodes, g.n_nodes))  # fmt: skip
            _, labels = connected_components(m, directed=True, connection="strong")
            core = labels == np.argmax(np.bincount(labels))
            core.flags.writeable = False
            self._core[c] = core
        return core

    def snap_access(self, role: str = "to") -> np.ndarray:
        """Per-arc bit mask of the classes that may snap a point to it (see ``Network.snap_access``)."""
        mask = self._snap_access.get(role)
        if mask is not None:
            return mask
        if role not in ("to", "from"):
            raise PointError(f"role={role!r} must be 'to' or 'from'")
        g = self.graph
        mask = np.zeros(g.n_arcs, dtype=np.uint8)
        n = g.n_nodes
        twin = g.arc_twin
        for i, v in enumerate(VEHICLE_CLASSES):
            ok = self.allowed(v)
            core = np.flatnonzero(self.class_core(v))
            src, dst = (g.arc_tail[ok], g.arc_head[ok])
            if role == "from":  # reach the core: search the reversed graph
                src, dst = dst, src
            # a virtual node n linked to every core node
            m = csr_matrix(
                (np.ones(len(src) + len(core)), (np.concatenate([src, np.full(len(core), n)]),
                                                 np.concatenate([dst, core]))),
                shape=(n + 1, n + 1),
            )  # fmt: skip
            seen = np.zeros(n + 1, bool)
            seen[breadth_first_order(m, n, directed=True, return_predecessors=False)] = True
            end = g.arc_tail if role == "to" else g.arc_head
            good = ok & seen[end]
            good |= np.where(twin >= 0, good[np.maximum(twin, 0)], False)
            mask |= good.astype(np.uint8) << i
        mask.flags.writeable = False
        self._snap_access[role] = mask
        return mask

    # --- geometry -----------------------------------------------------------------------------

    def snap_index(self) -> SnapIndex:
        """The snapping grid (built on first use)."""
        idx = self._snap_index
        if idx is None:
            with self._lock:
                idx = self._snap_index
                if idx is None:
                    idx = self._snap_index = build_index(self.graph)
        return idx

    def geom_cum_m(self) -> np.ndarray:
        """Cumulative length along each arc's geometry (see :func:`dispatch.roads.snapping.geom_cum_m`)."""
        cum = self._geom_cum
        if cum is None:
            cum = self._geom_cum = geom_cum_m(self.graph)
        return cum

    def arc_lines(self) -> object:
        """Shapely lines of every arc, for closure polygons (built on first use)."""
        lines = self._arc_lines
        if lines is None:
            lines = self._arc_lines = arc_lines(self.graph)
        return lines

    def locate(
        self, pts: np.ndarray, vehicle: str, name: str, role: str
    ) -> tuple[np.ndarray, np.ndarray]:
        """Snap validated-shape points for a class; :class:`PointError` for a bad or far one."""
        check_points(self.graph.bbox, pts, name=name)
        tol = self.settings.snap_tolerance_m
        arc, t, _ = snap_arrays(self.snap_index(), self.snap_access(role), pts,
                                check_vehicle(vehicle), tol)  # fmt: skip
        if (arc < 0).any():
            i = int(np.argmax(arc < 0))
            raise PointError(
                f"{name} {i} ({pts[i, 0]}, {pts[i, 1]}) is farther than {tol:g} m from any road "
                f"open to {vehicle}"
            )
        return arc, t

    def snap_call(self, lat: float, lon: float, c: int) -> tuple[int, float, float]:
        """Snap one validated call point for class index ``c`` (role ``to``): ``(arc, t, dist)``."""
        hot = self._snap_hot
        if hot is None:
            idx = self.snap_index()
            hot = self._snap_hot = (idx, tuple(idx), self.snap_access("to"))
        return snap_one(hot[0], hot[2], lat, lon, c, self.settings.snap_tolerance_m, packed=hot[1])

    def call_snapper(self) -> tuple[SnapIndex, Packed, np.ndarray, float]:
        """What :meth:`snap_call` hands the snapping kernel: the index, its packed form, the
        per-arc access mask of calls (role ``to``) and the tolerance; for a caller that snaps
        one call for several classes (``fastest_units``) without the per-call wrappers."""
        hot = self._snap_hot
        if hot is None:
            idx = self.snap_index()
            hot = self._snap_hot = (idx, tuple(idx), self.snap_access("to"))
        return hot[0], hot[1], hot[2], self.settings.snap_tolerance_m

    # --- weights ------------------------------------------------------------------------------

    def base_weights(self, vehicle: str, band: int = -1) -> np.ndarray:
        """Travel time in seconds per arc for a class in a speed band, ``inf`` where not allowed."""
        c = check_vehicle(vehicle)
        key = (c, band)
        w = self._base.get(key)
        if w is None:
            g = self.graph
            speed = arc_speeds_kmh(vehicle, g.arc_cat, g.arc_maxspeed_kmh, self.settings, band)
            p = self.settings.profiles[vehicle]
            speed = np.where(g.arc_contraflow, speed * p.contraflow_factor, speed)
            drive_s = g.arc_length_m / (speed / 3.6) + arc_delay_s(g.arrays, vehicle, p)
            w = np.where(self.allowed(vehicle), drive_s, np.inf)
            w.flags.writeable = False
            self._base[key] = w
        return w

    def weights(self, vehicle: str, hour: float | None, closures: ClosureSet) -> np.ndarray:
        """Travel time (s) per arc for a class at a clock hour with the closures in force then.

        The same array object while nothing changes: its identity names a routing regime."""
        c = _CLASS_INDEX.get(vehicle)
        if c is None:
            c = check_vehicle(vehicle)
        band = self.settings.band_index(hour)
        if closures:
            ids = closures.active(c, hour)
            if ids:
                key = (c, band, ids)
                w = self._closed.get(key)
                if w is None:
                    w = self.base_weights(vehicle, band).copy()
                    w[closures.closed_arcs(ids)] = INF
                    w.flags.writeable = False
                    self._closed.put(key, w)
                return w
        w = self._base.get((c, band))
        return w if w is not None else self.base_weights(vehicle, band)

    def weights_if_built(
        self, c: int, hour: float | None, closures: ClosureSet | None
    ) -> np.ndarray | None:
        """The array :meth:`weights` would return now for class index ``c`` if it exists already,
        else None; no cache is touched (``fastest_units`` looks before it snaps, and then asks
        :meth:`weights` exactly as before: the LRU order and every cache stay as they were).
        ``closures`` None: none in force."""
        band = -1 if hour is None else self.settings.band_index(hour)
        if closures:
            ids = closures.active(c, hour)
            if ids:
                return self._closed.peek((c, band, ids))
        return self._base.get((c, band))

    # --- CCH ----------------------------------------------------------------------------------

    def hierarchy(self) -> cch.Hierarchy:
        """The graph's CCH order and upward graph: from the hierarchy store (the disk cache) when
        it holds a current one, else built (and saved there) on first use."""
        h = self._hierarchy
        if h is None:
            with self._lock:
                h = self._hierarchy
                if h is None:
                    store = self.hierarchy_store
                    h = store.load() if store is not None else None
                    if h is None:
                        g = self.graph
                        h = cch.build_hierarchy(g.arc_tail, g.arc_head, g.node_lat, g.node_lon)
                        if store is not None:
                            store.save(h)
                    self._hierarchy = h
        return h

    def _hierarchy_at_hand(self) -> bool:
        """Whether the hierarchy is in memory or (probably) in the store."""
        if self._hierarchy is not None:
            return True
        stored = self._hierarchy_stored
        if stored is None:
            store = self.hierarchy_store
            stored = self._hierarchy_stored = store is not None and store.exists()
        return stored

    def metric(self, w: np.ndarray) -> cch.Metric:
        """The CCH customized for weight array ``w`` (LRU-cached by the array's identity)."""
        hit = self._metrics.get(id(w))
        if hit is not None and hit[0] is w:
            return hit[1]
        m = cch.customize(self.hierarchy(), w)
        self._metrics.put(id(w), (w, m))
        return m

    def has_metric(self, w: np.ndarray) -> bool:
        """Whether the CCH is already customized for ``w``."""
        hit = self._metrics.get(id(w))
        return hit is not None and hit[0] is w

    def use_cch(self, w: np.ndarray, searches: int) -> bool:
        """Whether to answer with the CCH (policy): customized already, or enough searches with
        ``w`` to amortize a customization (counting these ``searches``)."""
        if self.has_metric(w):
            return True
        self._n_searches += searches
        if (self._n_searches < self.policy.hierarchy_after_searches
                and not self._hierarchy_at_hand()):  # fmt: skip
            return False
        prev = self._searches.get(id(w))
        count = (prev[1] if prev is not None and prev[0] is w else 0) + searches
        if len(self._searches) > 64:
            self._searches.clear()
        self._searches[id(w)] = (w, count)
        return count >= self.policy.cch_after_searches

    def point_labels(
        self, w: np.ndarray, arc: np.ndarray, t: np.ndarray, *, reach: bool = False
    ) -> tuple[Packed, Packed]:
        """CCH labels of points at edge positions ``(arc, t)`` under weights ``w``, and their
        positions (turnout 0), packed for :func:`~dispatch.routing.cch.dispatch_cch_kernel`
        (forward labels of origins) or, with ``reach``, for
        :func:`~dispatch.routing.cch.from_one_cch_kernel` (backward labels of destinations).

        Computed once per (weights, points, direction) and kept in a small LRU
        (``POINT_LABEL_SETS``), so that the same points asked again (a service's units, its
        hospitals, call after call) cost nothing. Labels are a function of the points and the
        metric alone: the same numbers whether computed now or taken from the cache."""
        arc = np.ascontiguousarray(arc, dtype=np.int64)
        t = np.ascontiguousarray(t, dtype=np.float64)
        key = (id(w), reach, arc.tobytes(), t.tobytes())
        hit = self._point_labels.get(key)
        if hit is not None and hit[0] is w:
            return hit[1], hit[2]
        nodes, costs = self.pairs(arc, t, w, reach=reach)
        lab = cch.unit_labels(self.hierarchy(), self.metric(w), self.cch_workspace(), nodes, costs,
                              backward=reach)  # fmt: skip
        pos: Packed = tuple(UnitPositions(arc, t, np.zeros(len(arc))))
        self._point_labels.put(key, (w, tuple(lab), pos))
        return tuple(lab), pos

    # --- positions ----------------------------------------------------------------------------

    def pairs(
        self, arc: np.ndarray, t: np.ndarray, w: np.ndarray, *, reach: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        """(nodes, costs), shape (n, 3): where points leave to (or are ``reach``-ed from) the graph."""
        nodes = np.empty((len(arc), 3), dtype=np.int64)
        costs = np.empty((len(arc), 3))
        seeds_kernel(self.ends_p, w, np.asarray(arc, dtype=np.int64), np.asarray(t, dtype=np.float64),
                     reach, nodes, costs)  # fmt: skip
        return nodes, costs

    # --- fleets -------------------------------------------------------------------------------

    def locate_units(
        self, pts: np.ndarray, vehicle: str, ids: Sequence[str]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Snap unit positions (role ``from``); a bad one raises :class:`FleetError` naming the unit."""
        try:
            return self.locate(pts, vehicle, "unit", "from")
        except PointError:
            for i, uid in enumerate(ids):
                try:
                    self.locate(pts[i : i + 1], vehicle, "unit", "from")
                except PointError as exc:
                    raise FleetError(
                        f"unit {uid!r}: {str(exc).replace('unit 0 ', '', 1)}"
                    ) from None
            raise

    def snap_unit(self, c: int, lat: float, lon: float, uid: str) -> tuple[int, float]:
        """A unit's edge position for class index ``c`` (cached per (class, lat, lon))."""
        key = (c, lat, lon)
        hit = self.unit_snaps.get(key)
        if hit is None:
            pt = np.array([[lat, lon]], dtype=float)
            a, tt = self.locate_units(pt, VEHICLE_CLASSES[c], [uid])
            hit = (int(a[0]), float(tt[0]))
            if len(self.unit_snaps) > 100_000:
                self.unit_snaps.clear()
            self.unit_snaps[key] = hit
        return hit


def _num(x: object) -> float:
    """A validated unit row's number (see ``queries._check_rows``)."""
    if isinstance(x, int | float | np.integer | np.floating):
        return float(x)
    raise FleetError(f"{x!r} is not a number")


class ClassUnits:
    """The available units of one class in a prepared fleet, and their per-weights tables."""

    def __init__(self, members: np.ndarray, pos: UnitPositions, ids: list[str]) -> None:
        self.members = members  # row index of each member in the fleet
        self.pos = pos
        self.pos_p: Packed = tuple(pos)
        self.min_turnout = float(pos.turnout.min())
        # the query's Python side reads these per answer: plain lists (no numpy scalar per read)
        self.ids = ids  # each member's unit id
        self.turnouts: list[float] = pos.turnout.tolist()
        # per member, the answer's fields but its ETA (queries._drive_templates, built lazily)
        self.templates: list[dict[str, object]] | None = None
        self.ranks: np.ndarray | None = None  # each member's rank by unit id (Python str order)
        self.id_rank: np.ndarray | None = None
        self.exits: dict[int, tuple[np.ndarray, Exits]] = {}
        self.labels: dict[int, tuple[np.ndarray, cch.UnitLabels]] = {}
        self.tables: dict[int, tuple[np.ndarray, NearestTable, Packed]] = {}
        self.w_uses: dict[int, tuple[np.ndarray, int]] = {}

    def count_use(self, w: np.ndarray) -> int:
        """Count one more query of this class under weights ``w``; return the count."""
        prev = self.w_uses.get(id(w))
        n = (prev[1] if prev is not None and prev[0] is w else 0) + 1
        if len(self.w_uses) > 16:
            self.w_uses.clear()
        self.w_uses[id(w)] = (w, n)
        return n


class PreparedFleet:
    """Units prepared for one engine: validated, snapped, indexed by class."""

    def __init__(self, engine: Engine, rows: list[UnitRow]) -> None:
        self.rows = rows
        ids = [str(r[0]) for r in rows]
        if len(set(ids)) != len(ids):
            seen: set[str] = set()
            for uid in ids:
                if uid in seen:
                    raise FleetError(f"duplicate unit id {uid!r} in the fleet")
                seen.add(uid)
        self.ids = ids
        self.uses = 0  # queries answered with this exact fleet
        # copies of the unit mappings this fleet was read from (set by queries.prepare_fleet once
        # the same list came again): a list equal to them is this fleet, without re-reading it
        self.snapshot: list[dict[object, object]] | None = None
        # the steady state's pre-bound calls per speed band, set by queries._fastest_steady once
        # it answered with no closure in force (read by queries._fastest_planned)
        self.plans: dict[int, tuple[Any, ...]] = {}
        self.by_class: dict[int, ClassUnits] = {}
        cache = engine.unit_snaps
        for c, vehicle in enumerate(VEHICLE_CLASSES):
            members = [i for i, r in enumerate(rows) if r[1] == vehicle and r[4]]
            if not members:
                continue
            arc = np.empty(len(members), dtype=np.int64)
            t = np.empty(len(members))
            todo = []
            for j, i in enumerate(members):
                hit = cache.get((c, _num(rows[i][2]), _num(rows[i][3])))
                if hit is None:
                    todo.append(j)
                else:
                    arc[j], t[j] = hit
            if todo:
                pts = np.array(
                    [[rows[members[j]][2], rows[members[j]][3]] for j in todo], dtype=float
                )
                a, tt = engine.locate_units(pts, vehicle, [ids[members[j]] for j in todo])
                if len(cache) > 100_000:
                    cache.clear()
                for jj, j in enumerate(todo):
                    arc[j], t[j] = int(a[jj]), float(tt[jj])
                    key = (c, _num(rows[members[j]][2]), _num(rows[members[j]][3]))
                    cache[key] = (int(a[jj]), float(tt[jj]))
            turnout = np.array([rows[i][5] for i in members], dtype=float)
            self.by_class[c] = ClassUnits(np.array(members), UnitPositions(arc, t, turnout),
                                          [ids[i] for i in members])  # fmt: skip

    def moved(self, engine: Engine, rows: list[UnitRow]) -> PreparedFleet | None:
        """This fleet with some units moved (or with a new turnout), or None if more changed.

        The common live and simulation case: the same units, in the same order, in the same class
        and availability, a few of them elsewhere. Only the moved units are snapped again; the
        per-weights tables start afresh."""
        old = self.rows
        if len(rows) != len(old):
            return None
        changed = [i for i, (r, q) in enumerate(zip(rows, old, strict=True)) if r != q]
        if len(changed) > max(4, len(rows) // 8):
            return None
        for i in changed:
            if rows[i][:2] != old[i][:2] or rows[i][4] != old[i][4]:
                return None
        new = object.__new__(PreparedFleet)
        new.rows = rows
        new.ids = self.ids
        new.uses = 0
        new.snapshot = None
        new.plans = {}
        new.by_class = {}
        where = {}  # row index -> (class, member position)
        for c, cu in self.by_class.items():
            pos = UnitPositions(cu.pos.arc.copy(), cu.pos.t.copy(), cu.pos.turnout.copy())
            d = ClassUnits(cu.members, pos, cu.ids)
            d.id_rank = cu.id_rank
            new.by_class[c] = d
            for j, i in enumerate(cu.members.tolist()):
                where[i] = (c, j)
        for i in changed:
            if i not in where:  # an unavailable unit: nothing to place
                continue
            c, j = where[i]
            d = new.by_class[c]
            d.pos.arc[j], d.pos.t[j] = engine.snap_unit(
                c, _num(rows[i][2]), _num(rows[i][3]), self.ids[i]
            )
            d.pos.turnout[j] = rows[i][5]
            d.turnouts[j] = float(d.pos.turnout[j])
            d.min_turnout = float(d.pos.turnout.min())
        return new

    def id_rank(self, c: int) -> np.ndarray:
        """Rank of each member's id within its class (ties broken by id)."""
        cu = self.by_class[c]
        if cu.id_rank is None:
            cu.id_rank = np.argsort(np.argsort([self.ids[i] for i in cu.members]))
        return cu.id_rank

    def labels(self, engine: Engine, c: int, w: np.ndarray) -> cch.UnitLabels:
        """CCH forward labels of the class's units under weights ``w`` (cached per w)."""
        cu = self.by_class[c]
        hit = cu.labels.get(id(w))
        if hit is not None and hit[0] is w:
            return hit[1]
        nodes, costs = engine.pairs(cu.pos.arc, cu.pos.t, w, reach=False)
        out = cch.unit_labels(engine.hierarchy(), engine.metric(w), engine.cch_workspace(), nodes,
                              costs)  # fmt: skip
        if len(cu.labels) > 8:
            cu.labels.clear()
        cu.labels[id(w)] = (w, out)
        return out

    def table(self, engine: Engine, c: int, w: np.ndarray) -> NearestTable:
        """Nearest-units table (``policy.table_k`` per node) of the class under ``w`` (cached)."""
        return self.table_packed(engine, c, w)[0]

    def table_packed(self, engine: Engine, c: int, w: np.ndarray) -> tuple[NearestTable, Packed]:
        """:meth:`table` and its packed form (what the query kernel takes), both cached."""
        cu = self.by_class[c]
        kk = engine.policy.table_k
        hit = cu.tables.get(id(w))
        if hit is not None and hit[0] is w and hit[1].unit.shape[1] >= kk:
            return hit[1], hit[2]
        nodes, costs = engine.pairs(cu.pos.arc, cu.pos.t, w, reach=False)
        n = engine.graph.n_nodes
        nu = len(cu.pos.arc)
        tab = NearestTable(np.empty((n, kk), dtype=np.int64), np.empty((n, kk)),
                           np.empty(n, dtype=np.int64))  # fmt: skip
        knearest_kernel(engine.fwd_p, w, nodes.ravel(), np.repeat(np.arange(nu), 3),
                        (costs + cu.pos.turnout[:, None]).ravel(), tuple(tab))  # fmt: skip
        if len(cu.tables) >= engine.policy.max_fleet_tables:
            cu.tables.clear()
        packed: Packed = tuple(tab)
        cu.tables[id(w)] = (w, tab, packed)
        return tab, packed

    def exits(self, engine: Engine, c: int, w: np.ndarray) -> Exits:
        """Per-node linked list of unit exits for class ``c`` under weights ``w`` (cached per w)."""
        cu = self.by_class[c]
        hit = cu.exits.get(id(w))
        if hit is not None and hit[0] is w:
            return hit[1]
        out = Exits(*exits_kernel(engine.ends_p, w, cu.pos_p, engine.graph.n_nodes))
        if len(cu.exits) > 8:
            cu.exits.clear()
        cu.exits[id(w)] = (w, out)
        return out
