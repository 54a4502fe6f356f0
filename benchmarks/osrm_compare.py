"""OSRM side by side: the fastest unit by our ambulance network and by OSRM, and single-route speed.

Run in a Python 3.12 environment (osrm-bindings ships wheels for Python >= 3.12 only)::

    python3.12 -m venv /work/venv312
    /work/venv312/bin/pip install -e ".[bench,osrm]"
    nice /work/venv312/bin/python benchmarks/osrm_compare.py [--maps danang ...] [--calls 200]
        [--units 50] [--seed 12345] [--out benchmarks/results/osrm_compare.json]

For every shipped map the harness builds three OSRM datasets with the executables the osrm-bindings
wheel ships (``osrm-extract`` then ``osrm-contract``: contraction hierarchies), in a temporary folder:

* ``car``: OSRM's own car profile (``profiles/car.lua`` of the wheel), as it is;
* ``ours``: a Lua profile generated here that runs car.lua's way handlers, then sets every way's
  speed and direction access from OUR compiled ambulance network (the speed of each arc, per way
  and direction, without our turn costs and signal/stop/gate delays; ways we do not route on are
  closed). Speeds and access are then ours; what is left
  of OSRM is its road rules: its turn restrictions, barriers and node access, turn costs and traffic
  signal delays, ``destination``/``private`` ways only as the first or last stretch, its snapping.
* ``ours_nocost``: the same with car.lua's turn, U-turn, traffic-signal and gate seconds set to 0
  (what is left: restrictions, barriers, destination-only ways, snapping).

The same seeded queries go to both engines: ``--units`` unit positions and ``--calls`` call
positions, drawn along the roads of our ambulance network (length-weighted, uniform along the
arc). Ours: ``net.travel_times(units, calls)``; OSRM: one ``Table`` request (units as sources, calls
as destinations) in-process through the bindings. For each call the fastest unit is compared; every
disagreement is put in the first category that explains it:

1. ``tie``: the two units are within 1 s of each other in either engine (OSRM stores durations in
   0.1 s per segment);
2. ``speeds/access`` (car profile only): OSRM with our speeds and access (the ``ours`` dataset)
   picks our unit, or one within 1 s of it by our ETAs: the car profile's speeds or way access
   made the difference;
3. ``snapping``: OSRM put the call or one of the two units more than 10 m from where we did (a
   different road: OSRM snaps to any road its profile routes on, we only to roads the ambulance can
   leave from / reach);
4. ``turn/signal/gate costs``: OSRM's turn, traffic-signal and gate seconds (route duration less
   the sum of its segment durations; car.lua: up to 7.5 s a turn, 20 s a U-turn, 2 s a signal, 60 s
   a gate) decide: without them OSRM would pick our unit (or tie), or the ``ours_nocost`` dataset
   (same speeds, no such seconds) picks our unit or one within 1 s of it by our ETAs;
5. ``our turn/signal/gate costs``: ours without our turn costs and signal/stop/gate delays (a
   network compiled with ``turn_costs="off"`` and those delays 0) picks OSRM's unit (or ties);
6. ``destination/private``: our route for our unit (its first and last stretches, on the unit's
   and the call's roads, included) uses a way whose access tags are ``destination``,
   ``private``, ``customers``... (OSRM: only as first or last stretch, never entered again
   from an open road);
7. ``barrier``: our route for our unit passes a node with a ``barrier`` or ``access`` tag;
8. ``road closed to us``: OSRM's route for its unit uses a way our ambulance may not use (width,
   category, dimension limits, access);
9. ``other``: anything else (listed with its ways).

It also times a single route (unit -> call) by ours (``net.route``) and OSRM's in-process CH route
on the ``car`` dataset, interleaved, in the same run: ETA only (OSRM ``overview=false``; our
``Route`` leaves its geometry unread) and with the full geometry read into Python lists.

Writes a JSON (atomically) and prints markdown tables; the README of this folder records a run.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS",
             "RAYON_NUM_THREADS"):  # fmt: skip
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402
from collections.abc import Sequence  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from importlib import metadata  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import osmium  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import dispatch  # noqa: E402
from dispatch.geo import haversine_m  # noqa: E402
from dispatch.io.atomic import atomic_write  # noqa: E402
from dispatch.roads.osm import MAP_FILES, resolve_map  # noqa: E402
from dispatch.roads.profiles import network_settings  # noqa: E402
from dispatch.roads.snapping import position  # noqa: E402

VEHICLE = "ambulance"
TIE_S = 1.0
SNAP_M = 10.0
RESTRICTED = {"destination", "private", "customers", "delivery", "permit", "residents"}
ACCESS_KEYS = ("access", "vehicle", "motor_vehicle", "motorcar")
DEFAULT_MAPS = ("danang", "hcmc", "monaco", "liechtenstein", "campo_grande")
CATEGORIES = ("tie", "speeds/access", "snapping", "turn/signal/gate costs",
              "our turn/signal/gate costs", "destination/private", "barrier", "road closed to us",
              "other")  # fmt: skip


# --- OSM tags the categories need -------------------------------------------------------------


class _Tags(osmium.SimpleHandler):  # type: ignore[misc]
    """Way node lists and tags of highways; tags of nodes with barrier/access/signals."""

    def __init__(self) -> None:
        super().__init__()
        self.way_nodes: dict[int, list[int]] = {}
        self.way_tags: dict[int, dict[str, str]] = {}
        self.node_tags: dict[int, dict[str, str]] = {}

    def node(self, n: Any) -> None:
        t = {k: v for k, v in n.tags}
        if "barrier" in t or any(k in t for k in ACCESS_KEYS) or t.get("highway") in (
            "traffic_signals", "stop", "give_way"
        ):  # fmt: skip
            self.node_tags[n.id] = t

    def way(self, w: Any) -> None:
        if "highway" in w.tags:
            self.way_nodes[w.id] = [r.ref for r in w.nodes]
            self.way_tags[w.id] = {k: v for k, v in w.tags}


def read_tags(path: Path) -> _Tags:
    h = _Tags()
    h.apply_file(str(path), locations=False)
    return h


# --- the generated profile ----------------------------------------------------------------------


def way_speeds(net: dispatch.Network, tags: _Tags) -> dict[int, tuple[float, float]]:
    """Our ambulance speed (km/h) per OSM way and direction (0: closed), from the compiled arcs."""
    g = net.graph
    w = net.weights(VEHICLE)
    ok = np.isfinite(w) & (w > 0)
    speeds: dict[tuple[int, int], list[float]] = {}
    index: dict[int, dict[int, int]] = {}
    for a in np.flatnonzero(ok).tolist():
        way = int(g.arc_way[a])
        nodes = tags.way_nodes.get(way)
        lo = int(g.geom_ptr[a])
        if nodes is None or int(g.geom_ptr[a + 1]) - lo < 2:
            continue
        pos = index.get(way)
        if pos is None:
            pos = index[way] = {}
            for i, nd in enumerate(nodes):
                pos.setdefault(nd, i)
        i0 = pos.get(int(g.geom_node[lo]))
        i1 = pos.get(int(g.geom_node[lo + 1]))
        if i0 is None or i1 is None:
            continue
        d = 0 if i1 > i0 else 1
        speeds.setdefault((way, d), []).append(float(g.arc_length_m[a] / w[a] * 3.6))
    out: dict[int, tuple[float, float]] = {}
    for (way, d), v in speeds.items():
        f, b = out.get(way, (0.0, 0.0))
        s = float(np.median(v))
        out[way] = (s, b) if d == 0 else (f, s)
    return out


def ours_profile_lua(profiles_dir: Path, speeds: dict[int, tuple[float, float]],
                     costs: bool = True) -> str:  # fmt: skip
    """car.lua's handlers, then our speed and access per way and direction; without ``costs``,
    car.lua's turn, U-turn, traffic-signal and gate seconds are set to 0."""
    setup = "car.setup" if costs else "setup"
    rows = ",\n".join(f"  [{way}] = {{{f:.4f}, {b:.4f}}}" for way, (f, b) in sorted(speeds.items()))
    return f"""-- generated by benchmarks/osrm_compare.py: OSRM's car profile with dispatch's ambulance
-- speeds and direction access per way (km/h; 0 = closed). Road rules stay OSRM's.
package.path = '{profiles_dir}/?.lua;' .. package.path
local car = dofile('{profiles_dir}/car.lua')
local SPEEDS = {{
{rows}
}}
local function setup()
  local p = car.setup()
  p.turn_penalty = 0
  p.oncoming_turn_penalty = 0
  p.properties.u_turn_penalty = 0
  p.properties.traffic_signal_penalty = 0
  p.barrier_penalties = {{ gate = 0, lift_gate = 0 }}
  return p
end
local function process_way(profile, way, result, relations)
  car.process_way(profile, way, result, relations)
  local s = SPEEDS[way:id()]
  if s == nil then
    result.forward_mode = mode.inaccessible
    result.backward_mode = mode.inaccessible
    return
  end
  if s[1] > 0 then
    result.forward_mode = mode.driving
    result.forward_speed = s[1]
    result.forward_rate = s[1] / 3.6
  else
    result.forward_mode = mode.inaccessible
  end
  if s[2] > 0 then
    result.backward_mode = mode.driving
    result.backward_speed = s[2]
    result.backward_rate = s[2] / 3.6
  else
    result.backward_mode = mode.inaccessible
  end
end
return {{ setup = {setup}, process_way = process_way, process_node = car.process_node,
         process_turn = car.process_turn }}
"""


def build_osrm(
    map_path: Path, profile: Path, work: Path, name: str
) -> tuple[Path, dict[str, float]]:
    """osrm-extract + osrm-contract (one thread) into ``work``; returns the dataset and seconds."""
    import osrm

    bin_dir = Path(osrm.__file__).parent / "bin"
    suffix = "".join(map_path.suffixes[-2:]) if map_path.name.endswith(".bz2") else map_path.suffix
    src = work / f"{name}{suffix}"
    shutil.copyfile(map_path, src)
    times: dict[str, float] = {}
    for step, args in (
        ("extract", [str(bin_dir / "osrm-extract"), "-p", str(profile), "-t", "1", str(src)]),
        ("contract", [str(bin_dir / "osrm-contract"), "-t", "1", str(work / f"{name}.osrm")]),
    ):
        t = time.perf_counter()
        res = subprocess.run(args, capture_output=True, text=True, check=False)
        times[step] = time.perf_counter() - t
        if res.returncode != 0:
            raise RuntimeError(f"osrm-{step} failed on {map_path.name}:\n{res.stderr[-2000:]}")
    return work / f"{name}.osrm", times


# --- queries ------------------------------------------------------------------------------------


def road_points(net: dispatch.Network, n: int, rng: np.random.Generator) -> np.ndarray:
    """Points along the roads an ambulance may both leave from and be reached on (length-weighted)."""
    eng = net.engine
    c = dispatch.VEHICLE_CLASSES.index(VEHICLE)
    both = ((eng.snap_access("from") >> c) & 1) & ((eng.snap_access("to") >> c) & 1) == 1
    arcs = np.flatnonzero(np.isfinite(net.weights(VEHICLE)) & both & (net.graph.arc_length_m > 0))
    p = net.graph.arc_length_m[arcs] / net.graph.arc_length_m[arcs].sum()
    pick = rng.choice(arcs, n, p=p)
    lat, lon = position(net.graph, eng.geom_cum_m(), pick, rng.uniform(0.02, 0.98, n))
    return np.stack([lat, lon], axis=1)


def osrm_table(
    o: Any, units: np.ndarray, calls: np.ndarray
) -> tuple[np.ndarray, list[Any], list[Any]]:
    import osrm

    coords = [(float(b), float(a)) for a, b in np.concatenate([units, calls])]
    nu = len(units)
    p = osrm.TableParameters(coordinates=coords, sources=list(range(nu)),
                             destinations=list(range(nu, len(coords))), annotations=["duration"],
                             generate_hints=False)  # fmt: skip
    r = o.Table(p)
    d = np.array([[math.inf if x is None else float(x) for x in row] for row in r["durations"]])
    return d, list(r["sources"]), list(r["destinations"])


def _loc(wp: Any) -> tuple[float, float]:
    loc = wp["location"]
    return float(loc[1]), float(loc[0])


def osrm_route_info(o: Any, a: np.ndarray, b: np.ndarray) -> tuple[float, float, list[int]]:
    """(duration, turn + signal seconds, OSM nodes) of OSRM's route from a to b."""
    import osrm

    p = osrm.RouteParameters(coordinates=[(float(a[1]), float(a[0])), (float(b[1]), float(b[0]))],
                             overview="false", annotations=["duration", "nodes"],
                             generate_hints=False)  # fmt: skip
    r = o.Route(p)
    if r["code"] != "Ok" or not len(r["routes"]):
        return math.inf, 0.0, []
    rt = r["routes"][0]
    ann = rt["legs"][0]["annotation"]
    seg = float(sum(float(x) for x in ann["duration"]))
    return float(rt["duration"]), float(rt["duration"]) - seg, [int(x) for x in ann["nodes"]]


# --- what our route uses -------------------------------------------------------------------------


@dataclass
class Lookup:
    """Our arcs by (tail, head) node index and the OSM way pairs each arc covers."""

    net: dispatch.Network
    tags: _Tags
    arc_of: dict[tuple[int, int], int] = field(default_factory=dict)
    allowed_pairs: set[tuple[int, int]] = field(default_factory=set)
    pair_way: dict[tuple[int, int], int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        g = self.net.graph
        w = self.net.weights(VEHICLE)
        for a in np.flatnonzero(np.isfinite(w)).tolist():
            key = (int(g.arc_tail[a]), int(g.arc_head[a]))
            if key not in self.arc_of or w[a] < w[self.arc_of[key]]:
                self.arc_of[key] = a
            gn = g.geom_node[int(g.geom_ptr[a]) : int(g.geom_ptr[a + 1])].tolist()
            self.allowed_pairs.update(zip(gn, gn[1:], strict=False))
        for way, nodes in self.tags.way_nodes.items():
            for x, y in zip(nodes, nodes[1:], strict=False):
                self.pair_way.setdefault((x, y), way)
                self.pair_way.setdefault((y, x), way)

    def route_arcs(self, nodes_osm: list[int]) -> list[int]:
        """Our arcs between the consecutive network nodes of a route."""
        g = self.net.graph
        idx = np.searchsorted(g.node_osmid, np.array(nodes_osm, dtype=np.int64)).tolist()
        return [self.arc_of[(a, b)] for a, b in zip(idx, idx[1:], strict=False)
                if (a, b) in self.arc_of]  # fmt: skip

    def restricted_way(self, arcs: list[int]) -> int | None:
        for a in arcs:
            way = int(self.net.graph.arc_way[a])
            t = self.tags.way_tags.get(way, {})
            if any(t.get(k) in RESTRICTED for k in ACCESS_KEYS):
                return way
        return None

    def barrier_node(self, arcs: list[int]) -> int | None:
        g = self.net.graph
        for a in arcs:
            for nd in g.geom_node[int(g.geom_ptr[a]) : int(g.geom_ptr[a + 1])].tolist():
                t = self.tags.node_tags.get(nd)
                if t and ("barrier" in t or any(k in t for k in ACCESS_KEYS)):
                    return int(nd)
        return None

    def closed_way(self, osrm_nodes: list[int]) -> int | None:
        for x, y in zip(osrm_nodes, osrm_nodes[1:], strict=False):
            if (x, y) not in self.allowed_pairs:
                return self.pair_way.get((x, y), -1)
        return None


def _dist_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    return float(haversine_m(a[0], a[1], b[0], b[1]))


def explain(
    j: int, u: int, v: int, ours: np.ndarray, theirs: np.ndarray, units: np.ndarray,
    calls: np.ndarray, our_snap: tuple[np.ndarray, ...], osrm_snap: tuple[list[Any], list[Any]],
    o: Any, net: dispatch.Network, look: Lookup, speed_agree: set[int] | None,
    ours_plain: np.ndarray, nocost_agree: set[int],
) -> dict[str, Any]:  # fmt: skip
    """The category of one disagreement (our unit u, OSRM's unit v, call j) with evidence."""
    rec: dict[str, Any] = {"call": j, "ours_unit": u, "osrm_unit": v,
                           "ours_s": [round(float(ours[u, j]), 2), round(float(ours[v, j]), 2)],
                           "osrm_s": [round(float(theirs[u, j]), 2), round(float(theirs[v, j]), 2)]}  # fmt: skip
    if abs(ours[u, j] - ours[v, j]) <= TIE_S or abs(theirs[u, j] - theirs[v, j]) <= TIE_S:
        rec["category"] = "tie"
        return rec
    if speed_agree is not None and j in speed_agree:
        rec["category"] = "speeds/access"
        return rec
    (u_pts, c_pts, u_arc, c_arc), (src, dst) = our_snap, osrm_snap
    for name, mine, arc, wp in (("call", c_pts[j], c_arc[j], dst[j]),
                                ("our unit", u_pts[u], u_arc[u], src[u]),
                                ("OSRM's unit", u_pts[v], u_arc[v], src[v])):  # fmt: skip
        d = _dist_m(tuple(mine), _loc(wp))
        if d > SNAP_M:
            rec["category"] = "snapping"
            way = int(net.graph.arc_way[arc])
            rec["evidence"] = (f"{name}: OSRM snapped {d:.0f} m from ours (ours on way {way} "
                               f"{look.tags.way_tags.get(way, {}).get('highway')}; OSRM onto "
                               f"'{wp['name']}')")  # fmt: skip
            return rec
    du, pen_u, nodes_u = osrm_route_info(o, units[u], calls[j])
    dv, pen_v, nodes_v = osrm_route_info(o, units[v], calls[j])
    rec["osrm_turn_signal_s"] = [round(pen_u, 1), round(pen_v, 1)]
    # OSRM's seconds decide: the route it would take without them picks our unit, or the dataset
    # without them (``ours_nocost``, same speeds) agrees with us on this call
    if (math.isfinite(du) and du - pen_u <= dv - pen_v + TIE_S) or j in nocost_agree:
        rec["category"] = "turn/signal/gate costs"
        gates = [n for n in nodes_u
                 if look.tags.node_tags.get(n, {}).get("barrier") in ("gate", "lift_gate")]  # fmt: skip
        signals = sum(look.tags.node_tags.get(n, {}).get("highway") == "traffic_signals"
                      for n in nodes_u)  # fmt: skip
        rec["evidence"] = (f"OSRM turn/signal/gate seconds: our unit {pen_u:.1f}, its unit "
                           f"{pen_v:.1f}; OSRM's route for our unit {du:.1f} s vs ours "
                           f"{ours[u, j]:.1f} s; it passes {len(gates)} gates {gates[:3]} and "
                           f"{signals} signals")  # fmt: skip
        return rec
    pu, pv = float(ours_plain[u, j]), float(ours_plain[v, j])
    if pv <= pu + TIE_S:  # without our seconds we pick OSRM's unit
        rec["category"] = "our turn/signal/gate costs"
        rec["evidence"] = (f"without our turn costs and signal/stop/gate delays: our unit "
                           f"{pu:.1f} s, OSRM's {pv:.1f} s; OSRM without its seconds: "
                           f"{du - pen_u:.1f} s, {dv - pen_v:.1f} s")  # fmt: skip
        return rec
    r = net.route(tuple(units[u]), tuple(calls[j]), vehicle=VEHICLE)
    # the whole route: the stretches on the unit's and the call's own roads too (a route that
    # leaves a destination-only road and comes back to it is one OSRM's car never drives: it
    # forbids entering such a road from an open one, car.lua's routability weight)
    arcs = [int(u_arc[u]), *look.route_arcs(r.nodes), int(c_arc[j])]
    way = look.restricted_way(arcs)
    if way is not None:
        rec["category"] = "destination/private"
        rec["evidence"] = f"way {way} {look.tags.way_tags.get(way, {})}"
        return rec
    nd = look.barrier_node(arcs)
    if nd is not None:
        rec["category"] = "barrier"
        rec["evidence"] = f"node {nd} {look.tags.node_tags.get(nd, {})}"
        return rec
    way = look.closed_way(nodes_v)
    if way is not None:
        rec["category"] = "road closed to us"
        rec["evidence"] = f"way {way} {look.tags.way_tags.get(way, {})}"
        return rec
    rec["category"] = "other"
    rec["evidence"] = f"our route ways {sorted({int(net.graph.arc_way[a]) for a in arcs})[:8]}"
    return rec


# --- route timing -------------------------------------------------------------------------------


def time_routes(net: dispatch.Network, o: Any, units: np.ndarray, calls: np.ndarray,
                n: int) -> dict[str, Any]:  # fmt: skip
    """Median µs of one route by ours and by OSRM (CH, in-process), interleaved per query."""
    import osrm

    pairs = [(tuple(units[i % len(units)].tolist()), tuple(calls[i % len(calls)].tolist()))
             for i in range(n)]  # fmt: skip

    def ours_eta(a: Any, b: Any) -> float:
        return float(net.route(a, b, vehicle=VEHICLE).eta_s)

    def ours_geom(a: Any, b: Any) -> int:
        return len(net.route(a, b, vehicle=VEHICLE).coords)

    def osrm_eta(a: Any, b: Any) -> float:
        p = osrm.RouteParameters(coordinates=[(a[1], a[0]), (b[1], b[0])], overview="false",
                                 generate_hints=False)  # fmt: skip
        return float(o.Route(p)["routes"][0]["duration"])

    def osrm_geom(a: Any, b: Any) -> int:
        p = osrm.RouteParameters(coordinates=[(a[1], a[0]), (b[1], b[0])], overview="full",
                                 geometries="geojson", generate_hints=False)  # fmt: skip
        c = o.Route(p)["routes"][0]["geometry"]["coordinates"]
        return len([(float(x[1]), float(x[0])) for x in c])

    fns = {"ours_eta": ours_eta, "osrm_eta": osrm_eta, "ours_geometry": ours_geom,
           "osrm_geometry": osrm_geom}  # fmt: skip
    for f in fns.values():  # warm-up (JIT, CCH customization, caches)
        for a, b in pairs[:20]:
            f(a, b)
    times: dict[str, list[float]] = {k: [] for k in fns}
    names = list(fns)
    for i, (a, b) in enumerate(pairs):
        for k in names[i % 4 :] + names[: i % 4]:  # rotating order
            t = time.perf_counter_ns()
            fns[k](a, b)
            times[k].append((time.perf_counter_ns() - t) / 1000)
    med = {k: float(np.median(v)) for k, v in times.items()}
    return {"n": n, "median_us": med,
            "ratio_eta": med["osrm_eta"] / med["ours_eta"],
            "ratio_geometry": med["osrm_geometry"] / med["ours_geometry"]}  # fmt: skip


# --- one map ------------------------------------------------------------------------------------


def run_map(name: str, calls_n: int, units_n: int, seed: int, route_n: int,
            work: Path) -> dict[str, Any]:  # fmt: skip
    import osrm

    path = resolve_map(name)
    net = dispatch.load_network(name)
    tags = read_tags(path)
    profiles_dir = Path(osrm.__file__).parent / "share" / "profiles"
    # ours without our own turn costs and signal/stop/gate delays: tells where they decide; and
    # the speeds given to OSRM: our arc weights less those seconds (OSRM adds its own or none)
    plain = dispatch.load_network(
        name,
        settings=network_settings(
            turn_costs="off",
            profiles={VEHICLE: {"signal_delay_s": 0.0, "stop_delay_s": 0.0, "gate_delay_s": 0.0}},
        ),
    )
    speeds = way_speeds(plain, tags)
    luas = {"car": profiles_dir / "car.lua"}
    for prof, costs in (("ours", True), ("ours_nocost", False)):
        luas[prof] = work / f"{name}_{prof}.lua"
        luas[prof].write_text(ours_profile_lua(profiles_dir, speeds, costs), encoding="utf-8")
    rng = np.random.default_rng(seed)
    units = road_points(net, units_n, rng)
    calls = road_points(net, calls_n, rng)
    t = time.perf_counter()
    ours = net.travel_times(units, calls, vehicle=VEHICLE)
    ours_s = time.perf_counter() - t
    ours_plain = plain.travel_times(units, calls, vehicle=VEHICLE)
    su = net.snap(units, vehicle=VEHICLE, role="from")
    sc = net.snap(calls, vehicle=VEHICLE, role="to")
    our_snap = (np.stack([su.lat, su.lon], 1), np.stack([sc.lat, sc.lon], 1), su.arc, sc.arc)
    look = Lookup(net, tags)
    out: dict[str, Any] = {"map": name, "nodes": net.n_nodes, "arcs": net.n_arcs,
                           "ways_with_our_speed": len(speeds), "calls": calls_n, "units": units_n,
                           "ours_matrix_s": ours_s, "profiles": {}}  # fmt: skip
    engines: dict[str, Any] = {}
    speed_agree: set[int] | None = None
    nocost_agree: set[int] = set()
    for prof in ("ours_nocost", "ours", "car"):
        lua = luas[prof]
        sub = work / f"{name}_{prof}"
        sub.mkdir()
        base, build_s = build_osrm(path, lua, sub, name)
        o = osrm.OSRM(storage_config=str(base), algorithm="CH", use_shared_memory=False)
        engines[prof] = o
        theirs, src, dst = osrm_table(o, units, calls)
        ok = np.isfinite(ours).any(0) & np.isfinite(theirs).any(0)
        pick_ours = np.argmin(ours, 0)
        pick_osrm = np.argmin(theirs, 0)
        recs = []
        for j in np.flatnonzero(ok & (pick_ours != pick_osrm)).tolist():
            recs.append(explain(j, int(pick_ours[j]), int(pick_osrm[j]), ours, theirs, units,
                                calls, our_snap, (src, dst), o, net, look,
                                speed_agree if prof == "car" else None, ours_plain,
                                nocost_agree if prof != "ours_nocost" else set()))  # fmt: skip
        # calls where this dataset picks our unit or one tied with it by our ETAs (within TIE_S)
        cols = np.arange(len(calls))
        same = ok & (ours[pick_osrm, cols] <= ours[pick_ours, cols] + TIE_S)
        if prof == "ours":
            speed_agree = set(np.flatnonzero(same).tolist())
        if prof == "ours_nocost":
            nocost_agree = set(np.flatnonzero(same).tolist())
        cats = Counter(r["category"] for r in recs)
        both = np.isfinite(ours) & np.isfinite(theirs)
        rel = (theirs[both] - ours[both]) / np.maximum(ours[both], 1.0)
        n_ok = int(ok.sum())
        agree = n_ok - len(recs)
        out["profiles"][prof] = {
            "build_s": build_s,
            "answered_calls": n_ok,
            "agree": agree,
            "agree_share": agree / max(n_ok, 1),
            "agree_or_tie_share": (agree + cats.get("tie", 0)) / max(n_ok, 1),
            "categories": {c: cats.get(c, 0) for c in CATEGORIES},
            "eta_median_rel_diff": float(np.median(rel)) if rel.size else None,
            "unreachable_ours_only": int((~np.isfinite(ours) & np.isfinite(theirs)).sum()),
            "unreachable_osrm_only": int((np.isfinite(ours) & ~np.isfinite(theirs)).sum()),
            "disagreements": recs,
        }
    out["route_timing"] = time_routes(net, engines["car"], units, calls, route_n)
    return out


# --- report -------------------------------------------------------------------------------------


def table(results: list[dict[str, Any]]) -> str:
    lines = ["| map | profile | calls | agree | agree or tie | " + " | ".join(CATEGORIES[1:])
             + " | median (OSRM - ours) / ours |",
             "|---|---|---:|---:|---:|" + "---:|" * (len(CATEGORIES) - 1) + "---:|"]  # fmt: skip
    for r in results:
        for prof, p in r["profiles"].items():
            cats = " | ".join(str(p["categories"][c]) for c in CATEGORIES[1:])
            rel = p["eta_median_rel_diff"]
            lines.append(f"| {r['map']} | {prof} | {p['answered_calls']} | "
                         f"{100 * p['agree_share']:.1f} % | {100 * p['agree_or_tie_share']:.1f} % | "
                         f"{cats} | {'' if rel is None else f'{100 * rel:+.1f} %'} |")  # fmt: skip
    lines += ["", "| map | ours route µs | OSRM route µs | × | ours route + geometry µs | "
              "OSRM route + geometry µs | × |", "|---|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    for r in results:
        t = r["route_timing"]
        m = t["median_us"]
        lines.append(f"| {r['map']} | {m['ours_eta']:.1f} | {m['osrm_eta']:.1f} | "
                     f"{t['ratio_eta']:.2f} | {m['ours_geometry']:.1f} | {m['osrm_geometry']:.1f} | "
                     f"{t['ratio_geometry']:.2f} |")  # fmt: skip
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--maps", nargs="+", default=list(DEFAULT_MAPS), choices=sorted(MAP_FILES))
    ap.add_argument("--calls", type=int, default=200)
    ap.add_argument("--units", type=int, default=50)
    ap.add_argument("--routes", type=int, default=400, help="timed single routes per map")
    ap.add_argument("--seed", type=int, default=12345)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/osrm_compare.json")
    args = ap.parse_args(argv)
    try:
        import osrm  # noqa: F401
    except ImportError as exc:
        print(f"osrm-bindings is not installed ({exc}); it needs Python >= 3.12: "
              f"pip install -e '.[bench,osrm]' in a 3.12 environment", file=sys.stderr)  # fmt: skip
        return 2
    results = []
    with tempfile.TemporaryDirectory(prefix="osrm_compare_") as tmp:
        for name in args.maps:
            t = time.perf_counter()
            r = run_map(name, args.calls, args.units, args.seed, args.routes, Path(tmp))
            print(f"{name}: {time.perf_counter() - t:.1f} s", file=sys.stderr)
            results.append(r)
    versions = {p: metadata.version(p) for p in ("osrm-bindings", "numpy", "numba")}
    data = {"date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "machine": {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(),
                        "python": platform.python_version(), "load_avg": os.getloadavg()},
            "versions": versions, "seed": args.seed, "maps": results}  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(args.out, json.dumps(data, indent=1, default=float))
    print(table(results))
    for r in results:
        for prof, p in r["profiles"].items():
            for rec in p["disagreements"]:
                if rec["category"] != "tie":
                    print(
                        f"{r['map']} {prof}: call {rec['call']} {rec['category']}: "
                        f"ours {rec['ours_s']} osrm {rec['osrm_s']} {rec.get('evidence', '')}"
                    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
