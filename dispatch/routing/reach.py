"""Two-stage reach: drive to the best access point, then the crew walks or lays hose to the call.

A call in a Da Nang *kiệt* (an alley 1-3 m wide) stands on a way a fire engine cannot drive. The
reach model locates the call on the walk network (:class:`~dispatch.roads.walk.WalkGraph`: the
road, alley, footway or steps it really stands on) and, per vehicle class:

* ``"drive"``: the way the call stands on is one the class may drive to (a road of its network):
  the answer is today's drive;
* ``"drive+walk"``: otherwise the **access points** are the walk nodes within the class's on-foot
  limit (``VehicleProfile.max_walk_m``, a Dijkstra on the walk graph bounded by it) that lie on a
  road the class may drive to (matched by OSM node id, expanded junction copies included); a
  unit's ETA is ``turnout + min over access points (drive to it + walk_m / walk_speed_mps)``: the
  best access point minimises drive + walk, not drive alone;
* ``"beyond_reach"``: no access point within the limit. Units of the class are still timed
  through the access points found within a search radius (the largest limit, at least the snap
  tolerance) and ranked after every unit that can reach; the reason is given in words.

Exactness: the drive part is one reverse Dijkstra seeded at every access point's edge position
with an initial cost equal to its walk time (:func:`walk_dispatch_kernel`, the multi-target form
of :func:`~dispatch.routing.dijkstra.dispatch_kernel`): its distance at a node is
``min over access points (drive from the node + walk)``, so the early stop on the k best is exact
as for one target.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numba
import numpy as np

from dispatch.roads.profiles import VEHICLE_CLASSES
from dispatch.roads.walk import WALK_KINDS, WalkGraph
from dispatch.routing.dijkstra import kfastest_kernel
from dispatch.routing.engine import Engine
from dispatch.routing.kernels import (
    Adjacency,
    ArcEnds,
    Exits,
    Packed,
    Scratch,
    UnitPositions,
    heap_pop,
    leave_seed,
    reach_seed,
    relax,
    same_arc_time,
    seed_heap,
)

#: Reach kinds, in rank order (a unit that reaches comes before one beyond reach).
REACH_KINDS = ("drive", "drive+walk", "beyond_reach")
#: A call whose drivable snap is within this many metres of where it stands on the walk network
#: stands on that road (the two snaps use slightly different local projections).
SAME_ROAD_M = 0.5


@dataclass(frozen=True)
class CallSite:
    """Where a call stands on the walk network: an edge, the fraction along it, the distance."""

    edge: int
    frac: float
    dist_m: float
    lat: float
    lon: float
    way: int
    kind: str


@dataclass(frozen=True)
class ClassReach:
    """How one class reaches a call (see the module docstring).

    ``ap_*`` are the access points' drive-network positions (one row per edge position of an
    access node; several rows may share a walk node): the arc, the fraction along it, the walk
    node, the walk in metres and seconds. Empty for ``"drive"``.
    """

    vehicle: str
    kind: str
    reason: str
    why: str
    ap_arc: np.ndarray
    ap_t: np.ndarray
    ap_node: np.ndarray
    ap_walk_m: np.ndarray
    ap_walk_s: np.ndarray
    max_walk_m: float

    @property
    def reaches(self) -> bool:
        """Whether the class reaches the call (``drive`` or ``drive+walk``)."""
        return self.kind != "beyond_reach"

    @property
    def min_walk_m(self) -> float:
        """The shortest on-foot leg from any access point (0 for ``drive``, inf if none)."""
        if self.kind == "drive":
            return 0.0
        return float(self.ap_walk_m.min()) if len(self.ap_walk_m) else float("inf")

    def as_dict(self) -> dict[str, object]:
        """JSON form: ``{"vehicle", "reach", "min_walk_m", "max_walk_m", "reason"}``."""
        m = self.min_walk_m
        return {"vehicle": self.vehicle, "reach": self.kind,
                "min_walk_m": round(m, 1) if m < float("inf") else None,
                "max_walk_m": self.max_walk_m, "reason": self.reason}  # fmt: skip


_EMPTY_I = np.zeros(0, dtype=np.int64)
_EMPTY_F = np.zeros(0)


class ReachModel:
    """The walk network of a map joined to its drive network (one per engine; thread-safe caches).

    Examples
    --------
    >>> import dispatch
    >>> net = dispatch.load_network("danang")
    >>> site = net.reach_model.locate(16.0609, 108.2208)
    >>> site.kind, site.edge >= 0
    ('road', True)
    """

    def __init__(self, walk: WalkGraph, engine: Engine) -> None:
        self.walk = walk
        self.engine = engine
        self._lock = threading.Lock()
        self._tables: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = {}
        self._drivable: dict[int, np.ndarray] = {}
        self._tol = float(engine.settings.snap_tolerance_m)
        self._way: list[int] = walk.edge_way.tolist()
        self._kind: list[str] = [WALK_KINDS[k] for k in walk.edge_kind.tolist()]
        limits = {v: float(p.max_walk_m) for v, p in engine.settings.profiles.items()}
        #: the answer for a class that drives to the call (one value per class, no allocation)
        self.drive_reach = tuple(
            ClassReach(
                v, "drive", "", "", _EMPTY_I, _EMPTY_F, _EMPTY_I, _EMPTY_F, _EMPTY_F, limits[v]
            )  # fmt: skip
            for v in VEHICLE_CLASSES
        )

    # --- per-class tables -----------------------------------------------------------------------

    def _positions(self, c: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Every geometry point of the arcs class ``c`` may use and snap to, as walk nodes.

        ``(ptr, arc, t, node)`` sorted by walk node, ``ptr`` indexing rows per walk node."""
        hit = self._tables.get(c)
        if hit is not None:
            return hit
        eng = self.engine
        g = eng.graph
        ok = eng.allowed(VEHICLE_CLASSES[c]) & (((eng.snap_access("to") >> c) & 1) == 1)
        # inside a two-way pair's geometry, (a, t) and (twin, 1 - t) give the same reach seeds:
        # keep one; at the ends keep both (next to an expanded junction the ends differ)
        twin = g.arc_twin
        canonical = (twin < 0) | ~ok[np.maximum(twin, 0)] | (np.arange(g.n_arcs) < twin)
        arcs = np.flatnonzero(ok)
        lo = g.geom_ptr[arcs]
        npts = g.geom_ptr[arcs + 1] - lo
        rows = np.repeat(arcs, npts)
        idx = (
            np.arange(int(npts.sum()))
            - np.repeat(np.cumsum(npts) - npts, npts)
            + np.repeat(lo, npts)
        )
        cum = eng.geom_cum_m()
        total = cum[np.repeat(lo + npts - 1, npts)]
        with np.errstate(invalid="ignore", divide="ignore"):
            t = np.where(total > 0, cum[idx] / total, 0.0)
        last = idx == np.repeat(lo + npts - 1, npts)
        t = np.where(last, 1.0, t)
        node = self.walk.nodes_of_osm(g.geom_node[idx])
        end = last | (idx == np.repeat(lo, npts))
        keep = (node >= 0) & (canonical[rows] | end)
        rows, t, node = rows[keep], t[keep], node[keep]
        order = np.lexsort((t, rows, node))
        rows, t, node = rows[order], t[order], node[order]
        ptr = np.zeros(self.walk.n_nodes + 1, dtype=np.int64)
        ptr[1:] = np.cumsum(np.bincount(node, minlength=self.walk.n_nodes))
        out = (ptr, rows.astype(np.int64), t, node)
        with self._lock:
            self._tables[c] = out
        return out

    def drivable_edges(self, c: int) -> np.ndarray:
        """Mask of the walk edges that are segments of a road class ``c`` may drive to."""
        hit = self._drivable.get(c)
        if hit is not None:
            return hit
        eng = self.engine
        g = eng.graph
        ok = eng.allowed(VEHICLE_CLASSES[c]) & (((eng.snap_access("to") >> c) & 1) == 1)
        arcs = np.flatnonzero(ok)
        lo = g.geom_ptr[arcs]
        npts = g.geom_ptr[arcs + 1] - lo
        # consecutive geometry points of one arc: pieces a -> b
        first = np.repeat(lo, npts - 1) + (
            np.arange(int((npts - 1).sum())) - np.repeat(np.cumsum(npts - 1) - (npts - 1), npts - 1)
        )
        wa = self.walk.nodes_of_osm(g.geom_node[first])
        wb = self.walk.nodes_of_osm(g.geom_node[first + 1])
        n = self.walk.n_nodes
        good = (wa >= 0) & (wb >= 0)
        keys = np.unique(np.minimum(wa, wb)[good] * n + np.maximum(wa, wb)[good])
        eu = self.walk.edge_u.astype(np.int64)
        ev = self.walk.edge_v.astype(np.int64)
        ekeys = np.minimum(eu, ev) * n + np.maximum(eu, ev)
        mask = np.isin(ekeys, keys)
        mask.flags.writeable = False
        with self._lock:
            self._drivable[c] = mask
        return mask

    # --- per call -------------------------------------------------------------------------------

    def locate(self, lat: float, lon: float, tolerance_m: float | None = None) -> CallSite | None:
        """Where a call stands on the walk network (``None`` beyond the snap tolerance)."""
        tol = self._tol if tolerance_m is None else tolerance_m
        e, f, d = self.walk.locate(lat, lon, tol)
        if e < 0:
            return None
        plat, plon = self.walk.point(e, f)
        return CallSite(e, f, d, plat, plon, self._way[e], self._kind[e])

    def search_radius_m(self) -> float:
        """How far on foot access points are searched: the largest on-foot limit, at least the
        snap tolerance (units beyond their class's limit are still timed within it)."""
        s = self.engine.settings
        return max(s.snap_tolerance_m, *(p.max_walk_m for p in s.profiles.values()))

    def around(self, site: CallSite) -> tuple[np.ndarray, np.ndarray]:
        """Walk nodes within :meth:`search_radius_m` of the call and their on-foot distances."""
        return self.walk.within(site.edge, site.frac, self.search_radius_m())

    def class_reach(
        self, site: CallSite, c: int, drive_dist_m: float,
        around: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> ClassReach:  # fmt: skip
        """How class ``c`` reaches a call standing at ``site`` (its drive snap ``drive_dist_m``
        away; inf when the class has no road within the tolerance)."""
        vehicle = VEHICLE_CLASSES[c]
        prof = self.engine.settings.profiles[vehicle]
        limit = float(prof.max_walk_m)
        if self.drivable_edges(c)[site.edge] or drive_dist_m <= site.dist_m + SAME_ROAD_M:
            return self.drive_reach[c]
        nodes, dist = self.around(site) if around is None else around
        ptr, arc, t, _ = self._positions(c)
        cnt = ptr[nodes + 1] - ptr[nodes]
        has = cnt > 0
        nodes, dist, cnt = nodes[has], dist[has], cnt[has]
        rows = np.repeat(ptr[nodes], cnt) + (
            np.arange(int(cnt.sum())) - np.repeat(np.cumsum(cnt) - cnt, cnt)
        )
        walk_m = np.repeat(dist, cnt)
        ap_node = np.repeat(nodes, cnt)
        where = self._where(site, vehicle)
        within = walk_m <= limit
        if within.any():
            kind = "drive+walk"
            why = f"{where}: the crew walks from the nearest point {vehicle} can drive to"
            sel = within
        elif len(walk_m):
            kind = "beyond_reach"
            i = int(np.argmin(walk_m))
            nearest = float(walk_m[i])
            drivable = self.drivable_edges(c)
            path = self.walk.path_edges(site.edge, site.frac, int(ap_node[i]), nearest + 1.0)
            kinds = sorted(
                {WALK_KINDS[int(self.walk.edge_kind[e])] for e in path if not drivable[e]}
            )
            over = f"reached only over {', '.join(kinds)} ways; " if kinds else ""
            why = (f"{where}: {over}nearest access point {nearest:.0f} m on foot, beyond the "
                   f"{vehicle} on-foot limit of {limit:g} m")  # fmt: skip
            sel = np.ones(len(walk_m), bool)
        else:
            kind = "beyond_reach"
            why = f"{where}: no road {vehicle} can drive to within {self.search_radius_m():g} m on foot"
            sel = np.ones(0, bool)
        reason = f"on {site.kind} way {site.way}, {why}"
        r = rows[sel]
        wm = walk_m[sel]
        return ClassReach(vehicle, kind, reason, why, arc[r], t[r], ap_node[sel], wm,
                          wm / float(prof.walk_speed_mps), limit)  # fmt: skip

    def _where(self, site: CallSite, vehicle: str) -> str:
        bit = 1 << VEHICLE_CLASSES.index(vehicle)
        if int(self.walk.edge_drive[site.edge]) & bit:
            return f"cut off from the {vehicle} network"
        return f"closed to {vehicle}"

    def walk_coords(self, site: CallSite, node: int, walk_m: float) -> list[tuple[float, float]]:
        """The on-foot leg as ``(lat, lon)`` points along the walk network: from an access node
        (``walk_m`` metres away) to where the call stands."""
        w = self.walk
        edges = w.path_edges(site.edge, site.frac, node, walk_m + 1.0)
        pts = [self.access_point(node)]
        x = node
        for e in edges[:-1]:
            u, v = int(w.edge_u[e]), int(w.edge_v[e])
            x = v if x == u else u
            pts.append(self.access_point(x))
        pts.append((site.lat, site.lon))
        return [p for i, p in enumerate(pts) if i == 0 or p != pts[i - 1]]

    def access_point(self, node: int) -> tuple[float, float]:
        """``(lat, lon)`` of a walk node."""
        return float(self.walk.node_lat[node]), float(self.walk.node_lon[node])


@numba.njit(cache=True, nogil=True)
def walk_dispatch_kernel(
    rev_: Packed, ends_: Packed, w: np.ndarray, ap_arc: np.ndarray, ap_t: np.ndarray,
    ap_walk_s: np.ndarray, units_: Packed, s_: Packed, cur: int, ex_: Packed,
    unit_best: np.ndarray, k: int, bound: float, min_extra: float, slack: float,
) -> int:  # fmt: skip
    """One class's part of ``fastest_units`` for a call reached on foot: a reverse search seeded
    at every access point (its reach seeds, each cost plus the walk time), same-arc candidates,
    then :func:`~dispatch.routing.dijkstra.kfastest_kernel`. ``unit_best`` receives each unit's
    ETA (turnout + drive + walk; exact within ``slack`` of the k-th, else an upper bound or inf)."""
    rev = Adjacency(*rev_)
    ends = ArcEnds(*ends_)
    units = UnitPositions(*units_)
    s = Scratch(*s_)
    ex = Exits(*ex_)
    n = len(ap_arc)
    seed_node = np.empty(3 * n, dtype=np.int64)
    seed_cost = np.empty(3 * n)
    for i in range(n):
        for j in range(3):
            v, c = reach_seed(ends, w, ap_arc[i], ap_t[i], j)
            seed_node[3 * i + j] = v
            seed_cost[3 * i + j] = c + ap_walk_s[i]
    for u in range(len(units.arc)):
        x = np.inf
        for i in range(n):
            if units.arc[u] == ap_arc[i]:
                y = same_arc_time(ends.twin, w, ap_arc[i], units.t[u], ap_t[i]) + ap_walk_s[i]
                if y < x:
                    x = y
        unit_best[u] = x + units.turnout[u]
    return kfastest_kernel(rev, w, seed_node, seed_cost, s, cur, ex, unit_best, k, bound,
                           min_extra, slack)  # fmt: skip


@numba.njit(cache=True, nogil=True)
def walk_pick_kernel(
    fwd_: Packed, ends_: Packed, w: np.ndarray, unit_arc: int, unit_t: float,
    ap_arc: np.ndarray, ap_t: np.ndarray, ap_walk_s: np.ndarray, s_: Packed, cur: int,
    limit: float,
) -> tuple[int, float]:  # fmt: skip
    """The access point a unit uses: ``(row, drive s)`` minimising drive + walk (row -1: none).

    A forward search from the unit bounded by ``limit`` (its drive + walk less the shortest walk:
    no access point farther by road can be its best), then each access point's reach seeds."""
    fwd = Adjacency(*fwd_)
    ends = ArcEnds(*ends_)
    s = Scratch(*s_)
    seed_node = np.empty(3, dtype=np.int64)
    seed_cost = np.empty(3)
    for j in range(3):
        seed_node[j], seed_cost[j] = leave_seed(ends, w, unit_arc, unit_t, j)
    size = seed_heap(seed_node, seed_cost, s, cur)
    while size > 0:
        d = s.hd[0]
        v = s.hv[0]
        size = heap_pop(s.hd, s.hv, size)
        if d > s.dist[v]:
            continue
        if d > limit:
            break
        size = relax(fwd, w, v, d, s, cur, size)
    best = np.inf
    best_row = -1
    best_drive = np.inf
    for i in range(len(ap_arc)):
        x = np.inf
        if ap_arc[i] == unit_arc:
            x = same_arc_time(ends.twin, w, unit_arc, unit_t, ap_t[i])
        for k in range(3):
            r, c = reach_seed(ends, w, ap_arc[i], ap_t[i], k)
            if r >= 0 and c < np.inf and s.stamp[r] == cur and s.dist[r] <= limit:
                y = s.dist[r] + c
                if y < x:
                    x = y
        tot = x + ap_walk_s[i]
        if tot < best:
            best = tot
            best_row = i
            best_drive = x
    return best_row, best_drive
