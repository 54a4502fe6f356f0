"""Reading OpenStreetMap files: the map registry, road segments and emergency facilities.

Every format (``.osm``, ``.osm.bz2``, ``.osm.gz``, ``.osm.pbf``) is read by pyosmium, which keeps ways
that reference nodes missing from a clipped extract (``osmnx.graph_from_xml`` refuses such files):
the missing references are dropped, the rest of each way is kept, and the count is reported.
osmnx is used only to download a new map (:func:`fetch_map`), never on the load path.
"""

from __future__ import annotations

import hashlib
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dispatch.errors import MapError
from dispatch.roads.profiles import classify_way

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


@dataclass
class RawRoads:
    """Road segments read from an OSM file, before any graph is built.

    One row per consecutive pair of present nodes of a kept way (``seg_*``), plus per-way attributes
    (``way_*``) and node coordinates (``node_*``, sorted by OSM id).
    """

    seg_a: np.ndarray  # int64 OSM node id
    seg_b: np.ndarray
    seg_way: np.ndarray  # int32 index into way_* arrays
    way_id: np.ndarray  # int64 OSM way id
    way_category: np.ndarray  # int8
    way_oneway: np.ndarray  # int8: 1, -1, 0
    way_maxspeed_kmh: np.ndarray  # float64, NaN untagged
    way_width_m: np.ndarray  # float64, NaN untagged
    way_maxweight_t: np.ndarray  # float64, NaN untagged
    way_access: np.ndarray  # uint8 bit mask of the classes the access tags allow
    way_name: list[str]
    node_id: np.ndarray  # int64 sorted
    node_lat: np.ndarray
    node_lon: np.ndarray
    facilities: list[Facility]
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


def read_osm(path: Path) -> RawRoads:
    """Read the roads and facilities of an OSM file with pyosmium.

    Raises
    ------
    MapError
        When the file cannot be parsed, or holds no road an emergency vehicle may use.
    """
    import osmium  # heavy-ish import kept off the cached load path

    seg_a: list[int] = []
    seg_b: list[int] = []
    seg_way: list[int] = []
    way_rows: list[tuple[int, int, int, float, float, float, int]] = []
    way_name: list[str] = []
    coords: dict[int, tuple[float, float]] = {}
    facilities: list[Facility] = []
    dropped = 0
    ways_total = 0
    try:
        fp = osmium.FileProcessor(str(path)).with_locations()
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
                continue
            if not obj.is_way():
                continue
            ways_total += 1
            tags = dict(obj.tags)
            kind = _facility_kind(tags)
            if kind:
                pts = [(n.location.lat, n.location.lon) for n in obj.nodes if n.location.valid()]
                if pts:
                    lat = sum(p[0] for p in pts) / len(pts)
                    lon = sum(p[1] for p in pts) / len(pts)
                    facilities.append(Facility(kind, _facility_name(tags), lat, lon,
                                               f"way/{obj.id}", tags))  # fmt: skip
            cls = classify_way(tags)
            if cls is None:
                continue
            category, oneway, maxspeed, width, maxweight, access = cls
            w = len(way_rows)
            prev: int | None = None
            kept_any = False
            for n in obj.nodes:
                if not n.location.valid():
                    dropped += 1
                    prev = None
                    continue
                coords[n.ref] = (n.location.lat, n.location.lon)
                if prev is not None and prev != n.ref:
                    seg_a.append(prev)
                    seg_b.append(n.ref)
                    seg_way.append(w)
                    kept_any = True
                prev = n.ref
            if kept_any:
                way_rows.append(
                    (obj.id, category, oneway,
                     math.nan if maxspeed is None else maxspeed,
                     math.nan if width is None else width,
                     math.nan if maxweight is None else maxweight, access)
                )  # fmt: skip
                way_name.append(tags.get("name", ""))
    except RuntimeError as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise MapError(f"cannot read OSM file {str(path)!r}: {reason}") from None
    if not seg_a:
        raise MapError(f"map file {str(path)!r} has no drivable roads")
    node_id = np.array(sorted(coords), dtype=np.int64)
    lat = np.array([coords[int(i)][0] for i in node_id])
    lon = np.array([coords[int(i)][1] for i in node_id])
    ways = list(zip(*way_rows, strict=True))
    facilities.sort(key=lambda f: (f.kind, f.name, f.osm_id))
    return RawRoads(
        seg_a=np.array(seg_a, dtype=np.int64),
        seg_b=np.array(seg_b, dtype=np.int64),
        seg_way=np.array(seg_way, dtype=np.int32),
        way_id=np.array(ways[0], dtype=np.int64),
        way_category=np.array(ways[1], dtype=np.int8),
        way_oneway=np.array(ways[2], dtype=np.int8),
        way_maxspeed_kmh=np.array(ways[3], dtype=np.float64),
        way_width_m=np.array(ways[4], dtype=np.float64),
        way_maxweight_t=np.array(ways[5], dtype=np.float64),
        way_access=np.array(ways[6], dtype=np.uint8),
        way_name=way_name,
        node_id=node_id,
        node_lat=lat,
        node_lon=lon,
        facilities=facilities,
        ways_total=ways_total,
        dropped_refs=dropped,
    )


def fetch_map(place: str, out: Path) -> Path:  # pragma: no cover - needs the network
    """Download the drivable streets of ``place`` with osmnx (Overpass) and save them as OSM XML.

    Needs network access; tests never call it.
    """
    import osmnx as ox

    graph = ox.graph_from_place(place, network_type="drive", simplify=False, retain_all=True)
    ox.io.save_graph_xml(graph, filepath=out)
    return out
