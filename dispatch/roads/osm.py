"""Reading OpenStreetMap files: the map registry, roads, barriers, turn restrictions, facilities.

Every format (``.osm``, ``.osm.bz2``, ``.osm.gz``, ``.osm.pbf``) is read by pyosmium, which keeps ways
that reference nodes missing from a clipped extract (``osmnx.graph_from_xml`` refuses such files):
the missing references are dropped, the rest of each way is kept, and the count is reported.
osmnx is used only to download a new map (:func:`fetch_map`), never on the load path.
"""

from __future__ import annotations

import hashlib
import math
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from dispatch.errors import MapError
from dispatch.progress import task
from dispatch.roads.profiles import (
    GATE_BARRIERS,
    classify_way,
    node_block_mask,
    parse_metres,
)

#: Short names of the shipped extracts (in the project's ``maps/`` folder).
MAP_FILES: dict[str, str] = {
    "danang": "danang_haichau_core.osm",
    "hcmc": "hcmc_district1_small.osm",
    "monaco": "monaco.osm.bz2",
    "liechtenstein": "liechtenstein.osm.pbf",
    "campo_grande": "campo_grande.osm.bz2",
}
OSM_SUFFIXES = (".osm", ".osm.bz2", ".osm.gz", ".osm.pbf", ".pbf", ".xml")


def maps_dir() -> Path:
    """The folder of the shipped maps (``$DISPATCH_MAPS_DIR`` or the project's ``maps/``)."""
    env = os.environ.get("DISPATCH_MAPS_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "maps"


def resolve_map(map_name: str | os.PathLike[str]) -> Path:
    """Turn a short name (``"danang"``) or a path into an existing, readable OSM file path.

    >>> resolve_map("danang").name
    'danang_haichau_core.osm'
    """
    text = os.fspath(map_name)
    if text in MAP_FILES:
        path = maps_dir() / MAP_FILES[text]
        if not path.is_file():
            raise MapError(f"map {text!r}: shipped file {path} is missing")
        return path
    path = Path(text)
    if not any(text.lower().endswith(s) for s in OSM_SUFFIXES) and not path.exists():
        raise MapError(
            f"unknown map {text!r}: not a short name ({', '.join(MAP_FILES)}) "
            f"nor a path to an .osm, .osm.bz2 or .osm.pbf file"
        )
    if not path.exists():
        raise MapError(f"map file {text!r} does not exist")
    if not path.is_file():
        raise MapError(f"map {text!r} is not a file")
    if not os.access(path, os.R_OK):
        raise MapError(f"map file {text!r} is not readable")
    if path.stat().st_size == 0:
        raise MapError(f"map file {text!r} is empty")
    return path


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes (the map half of the cache key)."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass(frozen=True)
class Facility:
    """An emergency facility tagged in the OSM data (a real place, with its OSM id)."""

    kind: str  # "hospital", "clinic", "fire_station", "ambulance_station"
    name: str
    lat: float
    lon: float
    osm_id: str  # "node/123" or "way/456"
    tags: dict[str, str] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class Restriction:
    """A ``type=restriction`` relation: members by OSM id, and the classes it binds (bit masks)."""

    osm_id: int
    no_mask: int
    only_mask: int
    from_ways: tuple[int, ...]
    via_nodes: tuple[int, ...]
    via_ways: tuple[int, ...]
    to_ways: tuple[int, ...]
    conditional: bool = False


#: Direction codes of a traffic signal or stop sign relative to each way through its node.
BOTH, FORWARD, BACKWARD = 0, 1, -1
_DIRECTIONS = {"forward": FORWARD, "backward": BACKWARD}


@dataclass
class NodeControls:
    """Nodes that cost time to pass: traffic signals, stop signs and gates (OSM id keys).

    ``signals``/``stops`` map a node to the direction it controls (:data:`BOTH`, :data:`FORWARD`
    or :data:`BACKWARD`: traffic moving along a way in (against) the way's direction as it
    reaches the node); ``gates`` are the gate nodes (which classes pass one is the compiler's
    barrier rule, :func:`~dispatch.roads.profiles.node_block_mask`). ``hgv_block`` maps a node
    whose ``hgv`` tag stops some class to its block mask with ``hgv`` bans ignored.
    ``crossing=traffic_signals`` (pedestrian lights) and ``give_way`` are not read: ASSUMPTION,
    an emergency vehicle with lights and sirens is given way there.

    >>> c = NodeControls()
    >>> c.add(1, {"highway": "traffic_signals", "traffic_signals:direction": "backward"})
    >>> c.add(2, {"barrier": "gate", "motor_vehicle": "no", "motorcycle": "yes"})
    >>> c.add(3, {"highway": "stop"})
    >>> c.add(4, {"barrier": "lift_gate", "hgv": "no"})
    >>> c.signals, sorted(c.gates), c.stops, c.hgv_block
    ({1: -1}, [2, 4], {3: 0}, {4: 0})
    """

    signals: dict[int, int] = field(default_factory=dict)
    stops: dict[int, int] = field(default_factory=dict)
    gates: set[int] = field(default_factory=set)
    hgv_block: dict[int, int] = field(default_factory=dict)

    def add(self, osm_id: int, tags: dict[str, str]) -> None:
        """Record a node if its tags make it a signal, a stop sign or a gate."""
        highway = tags.get("highway")
        if highway == "traffic_signals":
            value = tags.get("traffic_signals:direction") or tags.get("direction") or ""
            self.signals[osm_id] = _DIRECTIONS.get(value.strip().lower(), BOTH)
        elif highway == "stop":
            value = tags.get("stop:direction") or tags.get("direction") or ""
            self.stops[osm_id] = _DIRECTIONS.get(value.strip().lower(), BOTH)
        if tags.get("barrier") in GATE_BARRIERS:
            self.gates.add(osm_id)
        if any(k == "hgv" or k.startswith("hgv:") for k in tags):
            lenient = node_block_mask(tags, lenient="hgv")
            if lenient != node_block_mask(tags):
                self.hgv_block[osm_id] = lenient

    def restricted_to(self, present: set[int] | dict[int, Any]) -> NodeControls:
        """The controls on nodes of ``present`` (the nodes of kept roads)."""
        return NodeControls(
            {k: v for k, v in self.signals.items() if k in present},
            {k: v for k, v in self.stops.items() if k in present},
            {k for k in self.gates if k in present},
            {k: v for k, v in self.hgv_block.items() if k in present},
        )


@dataclass
class RawRoads:
    """Road segments read from an OSM file, before any graph is built.

    One row per consecutive pair of present nodes of a kept way (``seg_*``, in way order), plus
    per-way attributes (``way_*``, see :class:`dispatch.roads.profiles.WayRules`), node coordinates
    (``node_*``, sorted by OSM id), the nodes that stop some classes (``node_block``: OSM id to
    class mask; ``node_maxheight_m``: height restrictors) and the turn restrictions.
    """

    seg_a: np.ndarray  # int64 OSM node id
    seg_b: np.ndarray
    seg_way: np.ndarray  # int32 index into way_* arrays
    way_id: np.ndarray  # int64 OSM way id
    way_category: np.ndarray  # int8
    way_fwd_mask: np.ndarray  # uint8 classes allowed forward
    way_bwd_mask: np.ndarray  # uint8 classes allowed backward
    way_open_mask: np.ndarray  # uint8 classes allowed in some direction
    way_restricted_mask: np.ndarray  # uint8 classes allowed only as private/destination traffic
    way_maxspeed_fwd_kmh: np.ndarray  # float64, NaN untagged
    way_maxspeed_bwd_kmh: np.ndarray
    way_width_m: np.ndarray  # float64, NaN untagged (road width, or maxwidth + clearance)
    way_maxweight_t: np.ndarray  # float64, NaN: no limit that applies
    way_maxheight_m: np.ndarray
    way_maxlength_m: np.ndarray
    way_weight_sign_t: np.ndarray  # plain maxweight read as a truck ban (reported, not applied)
    way_name: list[str]
    node_id: np.ndarray  # int64 sorted
    node_lat: np.ndarray
    node_lon: np.ndarray
    facilities: list[Facility]
    node_block: dict[int, int] = field(default_factory=dict)
    node_maxheight_m: dict[int, float] = field(default_factory=dict)
    restrictions: list[Restriction] = field(default_factory=list)
    controls: NodeControls = field(default_factory=NodeControls)
    #: OSM way id -> (fwd, bwd, open, restricted) masks with ``hgv`` bans ignored (ways that have one)
    way_hgv_exempt: dict[int, tuple[int, int, int, int]] = field(default_factory=dict)
    #: the walkable ways read in the same pass (``read_osm(..., walk=True)``), else ``None``
    walk: RawWalk | None = None
    ways_total: int = 0
    dropped_refs: int = 0  # node references to nodes missing from the file


_FACILITY_KIND = {
    ("amenity", "hospital"): "hospital",
    ("healthcare", "hospital"): "hospital",
    ("amenity", "clinic"): "clinic",
    ("amenity", "fire_station"): "fire_station",
    ("emergency", "ambulance_station"): "ambulance_station",
}


def _facility_kind(tags: dict[str, str]) -> str | None:
    for (key, value), kind in _FACILITY_KIND.items():
        if tags.get(key) == value:
            return kind
    return None


def _facility_name(tags: dict[str, str]) -> str:
    return tags.get("name") or tags.get("name:en") or tags.get("name:vi") or "(unnamed)"


def read_osm(path: Path, *, walk: bool = False) -> RawRoads:
    """Read the roads, barriers, turn restrictions and facilities of an OSM file with pyosmium.

    With ``walk=True`` the same pass also reads the walkable ways (``RawRoads.walk``, as
    :func:`read_walkways` gives them).

    Nodes without tags never reach Python (pyosmium stores their locations for the ways); each
    distinct tag set of a way is classified once.

    Raises
    ------
    MapError
        When the file cannot be parsed, or holds no road an emergency vehicle may use.
    """
    import osmium  # heavy-ish import kept off the cached load path

    from dispatch.roads.profiles import WayRules, restriction_rules

    seg_a: list[int] = []
    seg_b: list[int] = []
    seg_way: list[int] = []
    way_rows: list[tuple[Any, ...]] = []
    way_name: list[str] = []
    refs: list[int] = []  # every present node of a road way, with its location
    lats: list[float] = []
    lons: list[float] = []
    facilities: list[Facility] = []
    node_block: dict[int, int] = {}
    node_height: dict[int, float] = {}
    restrictions: list[Restriction] = []
    controls = NodeControls()
    walker = _WalkCollector() if walk else None
    hgv_exempt: dict[int, tuple[int, int, int, int]] = {}
    rules_of: dict[frozenset[tuple[str, str]], WayRules | None] = {}
    dropped = 0
    ways_total = 0
    nan = math.nan
    step = 4096
    try:
        untagged = osmium.filter.EmptyTagFilter()
        untagged.enable_for(osmium.osm.NODE)
        fp = osmium.FileProcessor(str(path)).with_locations().with_filter(untagged)
        with task("reading OSM ways", unit="way") as progress:
            for item in fp:
                obj: Any = item
                if obj.is_node():
                    if len(obj.tags) == 0:
                        continue
                    tags = dict(obj.tags)
                    kind = _facility_kind(tags)
                    if kind and obj.location.valid():
                        facilities.append(
                            Facility(kind, _facility_name(tags), obj.location.lat,
                                     obj.location.lon, f"node/{obj.id}", tags)
                        )  # fmt: skip
                    block = node_block_mask(tags)
                    if block:
                        node_block[obj.id] = block
                    height = parse_metres(tags.get("maxheight")) if "maxheight" in tags else None
                    if height is not None:
                        node_height[obj.id] = height
                    controls.add(obj.id, tags)
                    if walker is not None:
                        walker.node(obj.id, tags)
                    continue
                if obj.is_relation():
                    tags = dict(obj.tags)
                    if tags.get("type") != "restriction":
                        continue
                    rules = restriction_rules(tags)
                    conditional = any(
                        k.startswith("restriction") and k.endswith(":conditional") for k in tags
                    ) or any(k in tags for k in ("day_on", "hour_on"))
                    roles: dict[str, list[tuple[str, int]]] = {}
                    for m in obj.members:
                        roles.setdefault(m.role, []).append((m.type, m.ref))
                    restrictions.append(Restriction(
                        obj.id, rules["no"], rules["only"],
                        tuple(r for t, r in roles.get("from", []) if t == "w"),
                        tuple(r for t, r in roles.get("via", []) if t == "n"),
                        tuple(r for t, r in roles.get("via", []) if t == "w"),
                        tuple(r for t, r in roles.get("to", []) if t == "w"),
                        conditional and not (rules["no"] or rules["only"]),
                    ))  # fmt: skip
                    continue
                if not obj.is_way():
                    continue
                ways_total += 1
                if ways_total % step == 0:
                    progress.update(step)
                tags = dict(obj.tags)
                kind = _facility_kind(tags)
                if kind:
                    pts = [(n.location.lat, n.location.lon) for n in obj.nodes
                           if n.location.valid()]  # fmt: skip
                    if pts:
                        lat = sum(p[0] for p in pts) / len(pts)
                        lon = sum(p[1] for p in pts) / len(pts)
                        facilities.append(Facility(kind, _facility_name(tags), lat, lon,
                                                   f"way/{obj.id}", tags))  # fmt: skip
                key = frozenset(tags.items())
                if key in rules_of:
                    rules_w = rules_of[key]
                else:  # classify_way reads nothing but the tags
                    rules_w = rules_of[key] = classify_way(tags)
                wrules = None if walker is None else walker.rules(tags, key)
                if rules_w is None:
                    if walker is not None and wrules is not None and wrules[0] is not None:
                        walker.way(obj, tags, key)  # walkable only: read its nodes here
                    continue
                r0 = len(refs)
                w = len(way_rows)
                n_segs = len(seg_a)
                dropped += _read_way_nodes(obj, refs, lats, lons, seg_a, seg_b)
                if walker is not None and wrules is not None and wrules[0] is not None:
                    # walkable too: the same present nodes and segments
                    walker.extend(obj.id, wrules, refs[r0:], lats[r0:], lons[r0:],
                                  seg_a[n_segs:], seg_b[n_segs:])  # fmt: skip
                if len(seg_a) > n_segs:
                    seg_way.extend([w] * (len(seg_a) - n_segs))
                    r = rules_w
                    way_rows.append((
                        obj.id, r.category, r.fwd_mask, r.bwd_mask, r.open_mask,
                        r.restricted_mask, *(nan if x is None else x for x in (
                            r.maxspeed_fwd_kmh, r.maxspeed_bwd_kmh, r.width_m, r.maxweight_t,
                            r.maxheight_m, r.maxlength_m, r.weight_sign_t)),
                    ))  # fmt: skip
                    way_name.append(tags.get("name", ""))
                    if r.hgv_exempt is not None:
                        hgv_exempt[obj.id] = r.hgv_exempt
    except RuntimeError as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise MapError(f"cannot read OSM file {str(path)!r}: {reason}") from None
    if not seg_a:
        raise MapError(f"map file {str(path)!r} has no drivable roads")
    # one row per node (its last reading, as all readings of a node agree), sorted by id
    ref_arr = np.array(refs, dtype=np.int64)[::-1]
    node_id, first = np.unique(ref_arr, return_index=True)
    lat = np.array(lats, dtype=np.float64)[::-1][first]
    lon = np.array(lons, dtype=np.float64)[::-1][first]
    known = np.array(sorted(set(node_block) | set(node_height) | set(controls.signals)
                            | set(controls.stops) | controls.gates | set(controls.hgv_block)),
                     dtype=np.int64)  # fmt: skip
    present = set(known[np.isin(known, node_id)].tolist())
    ways = list(zip(*way_rows, strict=True))
    facilities.sort(key=lambda f: (f.kind, f.name, f.osm_id))
    f64 = np.float64
    return RawRoads(
        seg_a=np.array(seg_a, dtype=np.int64),
        seg_b=np.array(seg_b, dtype=np.int64),
        seg_way=np.array(seg_way, dtype=np.int32),
        way_id=np.array(ways[0], dtype=np.int64),
        way_category=np.array(ways[1], dtype=np.int8),
        way_fwd_mask=np.array(ways[2], dtype=np.uint8),
        way_bwd_mask=np.array(ways[3], dtype=np.uint8),
        way_open_mask=np.array(ways[4], dtype=np.uint8),
        way_restricted_mask=np.array(ways[5], dtype=np.uint8),
        way_maxspeed_fwd_kmh=np.array(ways[6], dtype=f64),
        way_maxspeed_bwd_kmh=np.array(ways[7], dtype=f64),
        way_width_m=np.array(ways[8], dtype=f64),
        way_maxweight_t=np.array(ways[9], dtype=f64),
        way_maxheight_m=np.array(ways[10], dtype=f64),
        way_maxlength_m=np.array(ways[11], dtype=f64),
        way_weight_sign_t=np.array(ways[12], dtype=f64),
        way_name=way_name,
        node_id=node_id,
        node_lat=lat,
        node_lon=lon,
        facilities=facilities,
        node_block={k: v for k, v in node_block.items() if k in present},
        node_maxheight_m={k: v for k, v in node_height.items() if k in present},
        restrictions=sorted(restrictions, key=lambda r: r.osm_id),
        controls=controls.restricted_to(present),
        way_hgv_exempt=hgv_exempt,
        walk=None if walker is None else walker.finish(),
        ways_total=ways_total,
        dropped_refs=dropped,
    )


def with_hgv_exemption(raw: RawRoads, exempt: int) -> RawRoads:
    """``raw`` with the ``hgv`` bans lifted for the classes in bit mask ``exempt``.

    The classes of ``exempt`` take, on every way with an ``hgv`` ban, the access masks the way has
    without it (``way_hgv_exempt``), and at every node with one its block mask without it
    (``controls.hgv_block``); other classes keep theirs (see
    :data:`dispatch.roads.profiles.HGV_BAN_RULE`). Returns ``raw`` itself when nothing changes.
    """
    if not exempt or not (raw.way_hgv_exempt or raw.controls.hgv_block):
        return raw
    block = dict(raw.node_block)
    for n, lenient in raw.controls.hgv_block.items():
        block[n] = (block.get(n, 0) & ~exempt) | (lenient & exempt)
    block = {n: m for n, m in block.items() if m}
    index = {int(w): i for i, w in enumerate(raw.way_id.tolist())}
    rows = [(index[w], m) for w, m in raw.way_hgv_exempt.items() if w in index]
    if not rows:
        return replace(raw, node_block=block)
    at = np.array([i for i, _ in rows], dtype=np.int64)
    alt = np.array([m for _, m in rows], dtype=np.uint8).reshape(-1, 4)
    keep = np.uint8(~exempt & 0xFF)
    new = []
    for col, arr in enumerate((raw.way_fwd_mask, raw.way_bwd_mask, raw.way_open_mask,
                               raw.way_restricted_mask)):  # fmt: skip
        out = arr.copy()
        out[at] = (out[at] & keep) | (alt[:, col] & np.uint8(exempt))
        new.append(out)
    return replace(raw, way_fwd_mask=new[0], way_bwd_mask=new[1], way_open_mask=new[2],
                   way_restricted_mask=new[3], node_block=block)  # fmt: skip


def fetch_map(place: str, out: Path) -> Path:
    """Download the drivable streets of ``place`` with osmnx (Overpass) and save them as OSM XML.

    Needs network access; tests never reach the servers.

    Raises
    ------
    MapError
        ``cannot reach the OpenStreetMap servers`` without a connection; the place is not found.
    """
    try:
        import osmnx as ox
    except ImportError:  # pragma: no cover - osmnx is a dependency
        raise MapError("dispatch map fetch needs osmnx (pip install osmnx)") from None
    import requests

    try:
        graph = ox.graph_from_place(place, network_type="drive", simplify=False, retain_all=True)
    except (requests.exceptions.RequestException, OSError) as exc:
        reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise MapError(f"cannot reach the OpenStreetMap servers ({reason})") from None
    except (ValueError, TypeError, KeyError) as exc:  # geocoder: no such place / no polygon
        raise MapError(f"place {place!r} was not found on OpenStreetMap: {exc}") from None
    try:  # pragma: no cover - needs the network
        ox.io.save_graph_xml(graph, filepath=out)
    except OSError as exc:  # pragma: no cover
        raise MapError(f"cannot write {str(out)!r}: {exc.strerror or exc}") from None
    return out  # pragma: no cover


@dataclass
class RawWalk:
    """The walkable ways of an OSM file (see :mod:`dispatch.roads.walk`), before any graph is built.

    One row per consecutive pair of present nodes of a walkable way (``seg_*``), the node
    coordinates (``node_*``, sorted by OSM id) and the nodes a person on foot cannot pass.
    """

    seg_a: np.ndarray  # int64 OSM node id
    seg_b: np.ndarray
    seg_way: np.ndarray  # int64 OSM way id
    seg_kind: np.ndarray  # int8 index into dispatch.roads.walk.WALK_KINDS
    seg_drive_mask: np.ndarray  # uint8 classes the way's tags open to driving (0: none)
    node_id: np.ndarray  # int64 sorted
    node_lat: np.ndarray
    node_lon: np.ndarray
    blocked: np.ndarray  # int64 sorted OSM ids of nodes closed to people on foot


def _read_way_nodes(obj: Any, refs: list[int], lats: list[float], lons: list[float],
                    seg_a: list[int], seg_b: list[int]) -> int:  # fmt: skip
    """Append a way's present nodes (id, lat, lon) and a segment between each two consecutive
    present, distinct ones; return how many of its node references are missing from the file."""
    missing = 0
    prev: int | None = None
    for n in obj.nodes:
        loc = n.location
        if not loc.valid():
            missing += 1
            prev = None
            continue
        ref = n.ref
        refs.append(ref)
        lats.append(loc.lat)
        lons.append(loc.lon)
        if prev is not None and prev != ref:
            seg_a.append(prev)
            seg_b.append(ref)
        prev = ref
    return missing


class _WalkCollector:
    """Collects the walkable ways of one pass over an OSM file into a :class:`RawWalk`.

    Fed the tagged nodes and every way (with its tag dict and that dict's frozen key); used by
    :func:`read_walkways` and by :func:`read_osm` with ``walk=True`` (one pass for both networks).
    """

    def __init__(self) -> None:
        from dispatch.roads.walk import node_blocks_walk, walk_kind

        self._blocks = node_blocks_walk
        self._kind = walk_kind
        self.seg_a: list[int] = []
        self.seg_b: list[int] = []
        self.seg_way: list[int] = []
        self.seg_kind: list[int] = []
        self.seg_drive: list[int] = []
        self.refs: list[int] = []
        self.lats: list[float] = []
        self.lons: list[float] = []
        self.blocked: set[int] = set()
        # (walk kind, drive mask) per distinct tag set: both read nothing but the tags
        self.rules_of: dict[frozenset[tuple[str, str]], tuple[int | None, int]] = {}

    def node(self, osm_id: int, tags: dict[str, str]) -> None:
        if self._blocks(tags):
            self.blocked.add(osm_id)

    def rules(
        self, tags: dict[str, str], key: frozenset[tuple[str, str]]
    ) -> tuple[int | None, int]:
        """``(walk kind or None, drive mask)`` of a way's tags (memoised per tag set)."""
        got = self.rules_of.get(key)
        if got is None:
            kind_ = self._kind(tags)
            rules = None if kind_ is None else classify_way(tags)
            got = self.rules_of[key] = (kind_, 0 if rules is None else rules.open_mask)
        return got

    def extend(self, way_id: int, rules: tuple[int | None, int], refs: list[int],
               lats: list[float], lons: list[float], seg_a: list[int], seg_b: list[int]) -> None:  # fmt: skip
        """Add a walkable way whose present nodes and segments the caller already read (by
        :func:`_read_way_nodes`, as :meth:`way` reads them)."""
        self.refs += refs
        self.lats += lats
        self.lons += lons
        self.seg_a += seg_a
        self.seg_b += seg_b
        self._label(way_id, rules, len(seg_a))

    def way(self, obj: Any, tags: dict[str, str], key: frozenset[tuple[str, str]]) -> None:
        rules = self.rules(tags, key)
        if rules[0] is None:
            return
        n0 = len(self.seg_a)
        _read_way_nodes(obj, self.refs, self.lats, self.lons, self.seg_a, self.seg_b)
        self._label(obj.id, rules, len(self.seg_a) - n0)

    def _label(self, way_id: int, rules: tuple[int | None, int], n: int) -> None:
        """Way, kind and drive mask of the ``n`` segments just added."""
        kind, drive = rules
        self.seg_way += [way_id] * n
        self.seg_kind += [kind] * n  # type: ignore[list-item]
        self.seg_drive += [drive] * n

    def finish(self) -> RawWalk:
        # one row per node (its last reading, as all readings of a node agree), sorted by id
        ref_arr = np.array(self.refs, dtype=np.int64)[::-1]
        node_id, first = np.unique(ref_arr, return_index=True)
        present = set(node_id.tolist()) if self.blocked else set()
        return RawWalk(
            seg_a=np.array(self.seg_a, dtype=np.int64),
            seg_b=np.array(self.seg_b, dtype=np.int64),
            seg_way=np.array(self.seg_way, dtype=np.int64),
            seg_kind=np.array(self.seg_kind, dtype=np.int8),
            seg_drive_mask=np.array(self.seg_drive, dtype=np.uint8),
            node_id=node_id,
            node_lat=np.array(self.lats, dtype=np.float64)[::-1][first],
            node_lon=np.array(self.lons, dtype=np.float64)[::-1][first],
            blocked=np.array(sorted(self.blocked & present), dtype=np.int64),
        )


def read_walkways(path: Path) -> RawWalk:
    """Read every way a person can walk or drag a hose along (:func:`dispatch.roads.walk.walk_kind`).

    A pass of its own over the file (``read_osm(path, walk=True).walk`` gives the same in the
    drive network's pass).

    Raises
    ------
    MapError
        When the file cannot be parsed.
    """
    import osmium

    walk = _WalkCollector()
    try:
        untagged = osmium.filter.EmptyTagFilter()  # untagged nodes still give ways their locations
        untagged.enable_for(osmium.osm.NODE)
        fp = osmium.FileProcessor(str(path)).with_locations().with_filter(untagged)
        with task("reading walkable ways", unit="way") as progress:
            n_ways = 0
            for item in fp:
                obj: Any = item
                if obj.is_node():
                    if len(obj.tags):
                        walk.node(obj.id, dict(obj.tags))
                    continue
                if not obj.is_way():
                    continue
                n_ways += 1
                if n_ways % 4096 == 0:
                    progress.update(4096)
                tags = dict(obj.tags)
                walk.way(obj, tags, frozenset(tags.items()))
    except RuntimeError as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise MapError(f"cannot read OSM file {str(path)!r}: {reason}") from None
    return walk.finish()
