"""Vehicle classes, OSM speed parsing and access rules.

Everything here is a documented, overridable parameter. Values that are not law or measurement are
labelled as assumptions: calibrate them from the centre's own AVL/GPS history (per-class speed factors
per road type and hour) before using figures for planning decisions.

Data flow: :mod:`dispatch.roads.osm` classifies every OSM way with :func:`classify_way` (road category,
speed limit, width, one-way, per-class access); :mod:`dispatch.roads.network` turns that into per-class
travel times with :func:`arc_speeds_kmh`.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from dispatch.errors import VehicleError

#: Vehicle classes, in the fixed order used for bit masks and arrays.
VEHICLE_CLASSES: tuple[str, ...] = ("ambulance", "fire_engine", "ladder", "motorbike")

#: Road categories, in the fixed order used by ``arc_cat`` arrays. ``*_link`` roads take their parent's.
ROAD_CATEGORIES: tuple[str, ...] = (
    "motorway",
    "trunk",
    "primary",
    "secondary",
    "tertiary",
    "unclassified",
    "residential",
    "living_street",
    "service",
    "alley",  # highway=service + service=alley: the hem/ngo of Vietnamese cities
    "track",
    "path",  # path/footway/pedestrian/cycleway explicitly open to motorcycles
)
CATEGORY_INDEX = {name: i for i, name in enumerate(ROAD_CATEGORIES)}

#: Typical speed (km/h) per road category where OSM has no usable ``maxspeed``.
#: ASSUMPTION, not law: urban values in the range osmnx imputes from tagged roads, lowered for
#: narrow categories. A centre should replace them with its measured speeds.
DEFAULT_SPEED_KMH: dict[str, float] = {
    "motorway": 90.0,
    "trunk": 70.0,
    "primary": 50.0,
    "secondary": 45.0,
    "tertiary": 40.0,
    "unclassified": 35.0,
    "residential": 30.0,
    "living_street": 15.0,
    "service": 20.0,
    "alley": 15.0,
    "track": 15.0,
    "path": 10.0,
}

#: Implicit ``maxspeed`` values ("VN:urban", "DE:rural", ...), km/h.
#: Vietnam: Circular 31/2019/TT-BGTVT, art. 6: 50 km/h on undivided urban roads (60 on divided ones; we
#: take the lower); art. 7 outside urban areas: 80 km/h on undivided roads (cars). Other countries: the
#: general urban limit of 50 km/h and the national rural limits listed on the OSM wiki page
#: "Default speed limits" (France 80, Germany/Austria 100, Switzerland/Liechtenstein 80, Brazil 60 on
#: "vias coletoras"/80 rural as used by its OSM community). Unknown ``XX:urban`` falls back to 50 and
#: ``XX:rural`` to 80.
IMPLICIT_MAXSPEED_KMH: dict[str, float] = {
    "VN:urban": 50.0,
    "VN:rural": 80.0,
    "VN:motorway": 120.0,
    "FR:urban": 50.0,
    "FR:rural": 80.0,
    "FR:motorway": 130.0,
    "MC:urban": 50.0,
    "DE:urban": 50.0,
    "DE:rural": 100.0,
    "AT:urban": 50.0,
    "AT:rural": 100.0,
    "CH:urban": 50.0,
    "CH:rural": 80.0,
    "CH:motorway": 120.0,
    "LI:urban": 50.0,
    "LI:rural": 80.0,
    "BR:urban": 60.0,
    "BR:rural": 80.0,
}
_SUFFIX_FALLBACK_KMH = {"urban": 50.0, "rural": 80.0, "motorway": 120.0, "trunk": 100.0}
_WORD_MAXSPEED_KMH = {"walk": 7.0, "living_street": 15.0}


def parse_maxspeed(value: str | None) -> float | None:
    """Parse an OSM ``maxspeed`` value into km/h.

    Numbers are km/h unless followed by ``mph`` or ``knots``; ``"VN:urban"``-style implicit values come
    from :data:`IMPLICIT_MAXSPEED_KMH`; several values (``"50;30"``) give the lowest; ``"none"``,
    ``"signals"`` and anything unparsable give ``None`` (the category default is used instead).

    Examples
    --------
    >>> parse_maxspeed("50"), parse_maxspeed("30 mph"), parse_maxspeed("VN:urban")
    (50.0, 48.28032, 50.0)
    >>> parse_maxspeed("50;30"), parse_maxspeed("signals"), parse_maxspeed(None)
    (30.0, None, None)
    """
    if value is None:
        return None
    speeds = []
    for part in value.split(";"):
        part = part.strip()
        if not part:
            continue
        m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(km/h|kmh|kph|mph|knots)?", part, flags=re.IGNORECASE)
        if m:
            number = float(m.group(1))
            unit = (m.group(2) or "km/h").lower()
            factor = 1.609344 if unit == "mph" else 1.852 if unit == "knots" else 1.0
            if number > 0:
                speeds.append(round(number * factor, 6))
            continue
        if part in IMPLICIT_MAXSPEED_KMH:
            speeds.append(IMPLICIT_MAXSPEED_KMH[part])
            continue
        if ":" in part:
            suffix = part.split(":", 1)[1].lower()
            if suffix in _SUFFIX_FALLBACK_KMH:
                speeds.append(_SUFFIX_FALLBACK_KMH[suffix])
            elif suffix in _WORD_MAXSPEED_KMH:
                speeds.append(_WORD_MAXSPEED_KMH[suffix])
            continue
        if part.lower() in _WORD_MAXSPEED_KMH:
            speeds.append(_WORD_MAXSPEED_KMH[part.lower()])
    return min(speeds) if speeds else None


def parse_metres(value: str | None) -> float | None:
    """Parse an OSM length such as ``width``/``maxwidth`` (``"3"``, ``"2.5 m"``, ``"7'6\\""``) into metres.

    >>> parse_metres("2.5 m"), parse_metres("3,5"), parse_metres("7'6\\""), parse_metres("narrow")
    (2.5, 3.5, 2.286, None)
    """
    if value is None:
        return None
    text = value.strip().replace(",", ".")
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(m|metres|meters)?", text)
    if m:
        return float(m.group(1))
    m = re.fullmatch(r"(\d+)\s*'\s*(?:(\d+)\s*\")?", text)
    if m:
        return round(int(m.group(1)) * 0.3048 + int(m.group(2) or 0) * 0.0254, 4)
    return None


def parse_tonnes(value: str | None) -> float | None:
    """Parse an OSM ``maxweight`` into tonnes (``"10"``, ``"10 t"``, ``"3.5"``); ``None`` if unknown."""
    if value is None:
        return None
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(t|tonnes)?", value.strip().replace(",", "."))
    return float(m.group(1)) if m else None


@dataclass(frozen=True)
class VehicleProfile:
    """How one vehicle class drives.

    Parameters
    ----------
    name
        Class name, one of :data:`VEHICLE_CLASSES`.
    hotline
        ``"114"`` (fire and rescue) or ``"115"`` (ambulance).
    emergency_factor
        Multiplier on the road speed when driving with lights and sirens. ASSUMPTION: studies of
        lights-and-sirens transport report time savings of roughly 10-25 % (e.g. Ho & Lindquist,
        Prehosp Emerg Care 2001: 43.5 s mean saving); heavy fire apparatus gain less. Calibrate from AVL.
    max_speed_kmh
        Speed cap for the class (heavy apparatus are slower than the limit on fast roads). ASSUMPTION.
    width_m
        Vehicle width plus clearance: roads whose tagged ``width``/``maxwidth`` is below it are closed to
        the class. ASSUMPTION (typical: ambulance van 2.0 m + 0.5 m, engine 2.5 m + 0.5 m, aerial 2.55 m
        + 0.95 m for outriggers/turning, motorbike 0.8 m + 0.2 m).
    weight_t
        Gross weight in tonnes: roads tagged with a lower ``maxweight`` are closed. ASSUMPTION.
    excluded_categories
        Road categories closed to the class where no width is tagged (narrow by type).
    contraflow
        Whether the class may drive short one-way segments against the flow (off by default).
    contraflow_max_m
        Longest one-way segment the class may take against the flow when ``contraflow`` is on.
    contraflow_factor
        Speed multiplier when driving against the flow (slow, careful).
    """

    name: str
    hotline: str
    emergency_factor: float
    max_speed_kmh: float
    width_m: float
    weight_t: float
    excluded_categories: tuple[str, ...] = ()
    contraflow: bool = False
    contraflow_max_m: float = 100.0
    contraflow_factor: float = 0.5

    def validated(self) -> VehicleProfile:
        """Return self, or raise :class:`VehicleError` naming every bad field at once."""
        problems = []
        if self.name not in VEHICLE_CLASSES:
            problems.append(f"name={self.name!r} is not one of {VEHICLE_CLASSES}")
        for key in (
            "emergency_factor",
            "max_speed_kmh",
            "width_m",
            "weight_t",
            "contraflow_factor",
        ):
            v = getattr(self, key)
            if not (isinstance(v, int | float) and math.isfinite(v) and v > 0):
                problems.append(f"{key}={v!r} must be a positive number")
        unknown = [c for c in self.excluded_categories if c not in CATEGORY_INDEX]
        if unknown:
            problems.append(f"excluded_categories has unknown categories {unknown}")
        if problems:
            raise VehicleError(f"vehicle profile {self.name!r}: " + "; ".join(problems))
        return self


_NARROW = ("living_street", "service", "alley", "track", "path")

#: The default profiles. Every number is an ASSUMPTION (see :class:`VehicleProfile`); override with
#: :func:`network_settings` or a scenario file.
DEFAULT_PROFILES: dict[str, VehicleProfile] = {
    "ambulance": VehicleProfile(
        "ambulance", "115", emergency_factor=1.15, max_speed_kmh=90.0, width_m=2.5, weight_t=3.5,
        excluded_categories=("track", "path"),
    ),
    "fire_engine": VehicleProfile(
        "fire_engine", "114", emergency_factor=1.05, max_speed_kmh=70.0, width_m=3.0, weight_t=15.0,
        excluded_categories=_NARROW,
    ),
    "ladder": VehicleProfile(
        "ladder", "114", emergency_factor=1.0, max_speed_kmh=60.0, width_m=3.5, weight_t=26.0,
        excluded_categories=_NARROW,
    ),
    "motorbike": VehicleProfile(
        "motorbike", "115", emergency_factor=1.10, max_speed_kmh=70.0, width_m=1.0, weight_t=0.3,
        excluded_categories=(),
    ),
}  # fmt: skip


@dataclass(frozen=True)
class SpeedBand:
    """A time-of-day band: from ``start_h`` (inclusive) to ``end_h`` (exclusive), hours of day.

    ``factors`` maps road categories to a speed multiplier; categories not listed keep 1.0.
    """

    name: str
    start_h: float
    end_h: float
    factors: Mapping[str, float] = field(default_factory=dict)

    def contains(self, hour_of_day: float) -> bool:
        """Whether the hour of day falls in the band (bands may wrap past midnight)."""
        if self.start_h <= self.end_h:
            return self.start_h <= hour_of_day < self.end_h
        return hour_of_day >= self.start_h or hour_of_day < self.end_h


_RUSH = {
    "trunk": 0.6,
    "primary": 0.55,
    "secondary": 0.6,
    "tertiary": 0.65,
    "unclassified": 0.75,
    "residential": 0.8,
}

#: Default speed bands. ASSUMPTION (illustrative): Da Nang's peak hours are usually given as about
#: 06:30-08:30 and 16:30-18:30; the factors are placeholders for measured peak/off-peak speed ratios.
DEFAULT_BANDS: tuple[SpeedBand, ...] = (
    SpeedBand("morning_rush", 6.5, 8.5, _RUSH),
    SpeedBand("evening_rush", 16.5, 18.5, _RUSH),
    SpeedBand("night", 22.0, 5.0, {c: 1.1 for c in ROAD_CATEGORIES}),
)


@dataclass(frozen=True)
class NetworkSettings:
    """Everything that decides the compiled network; its :meth:`key` keys the on-disk cache.

    Parameters
    ----------
    profiles
        Vehicle profiles by class name.
    default_speed_kmh
        Speed per road category where ``maxspeed`` is missing.
    bands
        Time-of-day speed bands; an hour outside every band uses factor 1.
    snap_tolerance_m
        Default farthest distance from a point to a road it may snap to.
    """

    profiles: Mapping[str, VehicleProfile] = field(default_factory=lambda: dict(DEFAULT_PROFILES))
    default_speed_kmh: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_SPEED_KMH))
    bands: tuple[SpeedBand, ...] = DEFAULT_BANDS
    snap_tolerance_m: float = 300.0

    def key(self) -> str:
        """A stable hash of the settings (same settings, same key, in any process)."""
        payload = json.dumps(_jsonable(self), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    def band_index(self, hour: float | None) -> int:
        """Index of the speed band for a clock hour (``hour % 24``); -1 for none/off-peak."""
        if hour is None:
            return -1
        h = float(hour) % 24.0
        for i, band in enumerate(self.bands):
            if band.contains(h):
                return i
        return -1


def _jsonable(obj: Any) -> Any:
    if hasattr(obj, "__dataclass_fields__"):
        return {k: _jsonable(v) for k, v in asdict(obj).items()}
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in sorted(obj.items())}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    return obj


def network_settings(
    *,
    profiles: Mapping[str, Mapping[str, Any]] | None = None,
    default_speed_kmh: Mapping[str, float] | None = None,
    snap_tolerance_m: float | None = None,
    bands: tuple[SpeedBand, ...] | None = None,
) -> NetworkSettings:
    """Build :class:`NetworkSettings` from overrides of the defaults, validating every field.

    Parameters
    ----------
    profiles
        ``{class: {field: value}}`` overrides, e.g. ``{"ambulance": {"contraflow": True}}``.
    default_speed_kmh
        Overrides of :data:`DEFAULT_SPEED_KMH` by road category.
    snap_tolerance_m
        Default snap tolerance in metres.
    bands
        Replacement speed bands.

    Examples
    --------
    >>> s = network_settings(profiles={"ambulance": {"contraflow": True}})
    >>> s.profiles["ambulance"].contraflow, s.profiles["fire_engine"].contraflow
    (True, False)
    """
    merged = dict(DEFAULT_PROFILES)
    problems = []
    for name, overrides in (profiles or {}).items():
        if name not in DEFAULT_PROFILES:
            raise VehicleError(
                f"unknown vehicle class {name!r} in profiles; expected one of {VEHICLE_CLASSES}"
            )
        bad = [k for k in overrides if k not in VehicleProfile.__dataclass_fields__ or k == "name"]
        if bad:
            problems.append(f"profiles[{name!r}] has unknown keys {bad}")
            continue
        values = dict(overrides)
        if "excluded_categories" in values:
            values["excluded_categories"] = tuple(values["excluded_categories"])
        merged[name] = replace(DEFAULT_PROFILES[name], **values).validated()
    speeds = dict(DEFAULT_SPEED_KMH)
    for cat, v in (default_speed_kmh or {}).items():
        if cat not in CATEGORY_INDEX:
            problems.append(f"default_speed_kmh has unknown road category {cat!r}")
        elif not (isinstance(v, int | float) and math.isfinite(v) and v > 0):
            problems.append(f"default_speed_kmh[{cat!r}]={v!r} must be a positive number")
        else:
            speeds[cat] = float(v)
    tol = 300.0 if snap_tolerance_m is None else snap_tolerance_m
    if not (isinstance(tol, int | float) and math.isfinite(tol) and tol > 0):
        problems.append(f"snap_tolerance_m={snap_tolerance_m!r} must be a positive number")
    if problems:
        raise VehicleError("; ".join(problems))
    return NetworkSettings(
        profiles=merged,
        default_speed_kmh=speeds,
        bands=DEFAULT_BANDS if bands is None else bands,
        snap_tolerance_m=float(tol),
    )


def check_vehicle(vehicle: str) -> int:
    """Return the index of a vehicle class, or raise :class:`VehicleError` naming it.

    >>> check_vehicle("ladder")
    2
    """
    try:
        return VEHICLE_CLASSES.index(vehicle)
    except ValueError:
        raise VehicleError(
            f"unknown vehicle class {vehicle!r}; expected one of {', '.join(VEHICLE_CLASSES)}"
        ) from None


# --- way classification ------------------------------------------------------------------------

_DRIVE_HIGHWAYS = {
    "motorway", "trunk", "primary", "secondary", "tertiary", "unclassified", "residential",
    "living_street", "service", "road", "busway",
    "motorway_link", "trunk_link", "primary_link", "secondary_link", "tertiary_link",
}  # fmt: skip
_PATH_HIGHWAYS = {"path", "footway", "pedestrian", "cycleway", "bridleway"}
# osmnx's "drive" filter drops these service values; we keep "alley" (its own category) and
# "emergency_access" (open to emergency vehicles by definition).
_DROPPED_SERVICE = {"parking", "parking_aisle", "driveway", "private", "drive-through"}
_NO = {"no", "private"}
_YES = {"yes", "designated", "permissive", "destination", "official"}


#: The OSM access keys each class obeys, from the most general to the most specific (the last one
#: tagged wins), as in the OSM access hierarchy. Fire apparatus follow ``motorcar`` before ``hgv``:
#: emergency apparatus may use roads open to cars unless a heavy-vehicle ban says otherwise (their
#: weight and width are checked separately against ``maxweight``/``width``).
ACCESS_KEYS: dict[str, tuple[str, ...]] = {
    "ambulance": ("access", "vehicle", "motor_vehicle", "motorcar"),
    "fire_engine": ("access", "vehicle", "motor_vehicle", "motorcar", "hgv"),
    "ladder": ("access", "vehicle", "motor_vehicle", "motorcar", "hgv"),
    "motorbike": ("access", "vehicle", "motor_vehicle", "motorcycle"),
}


def _allowed_by_tags(tags: Mapping[str, str], keys: tuple[str, ...], default: bool) -> bool:
    allowed = default
    for key in keys:
        value = tags.get(key)
        if value in _NO:
            allowed = False
        elif value in _YES:
            allowed = True
    return allowed


def classify_way(
    tags: Mapping[str, str],
) -> tuple[int, int, float | None, float | None, float | None, int] | None:
    """Classify an OSM way for the network, or return ``None`` when no emergency vehicle may use it.

    Mirrors osmnx's ``"drive"`` filter (same highway types, ``area``, parking/private service roads
    dropped) with changes that matter for emergency vehicles: access follows the OSM hierarchy per
    class (:data:`ACCESS_KEYS`: ``motor_vehicle=no`` + ``motorcar=yes`` is open to cars), and
    ``emergency=yes`` opens a road to every class (``emergency=no`` closes it); ``service=alley`` is
    kept as its own category (motorbikes and ambulances use alleys); ``track`` and motorcycle-legal
    paths are kept for motorbikes.

    Returns
    -------
    (category, oneway, maxspeed_kmh, width_m, maxweight_t, class_mask) or None
        ``oneway`` is 1 (forward only), -1 (backward only) or 0 (both directions); bit ``i`` of
        ``class_mask`` is set when ``VEHICLE_CLASSES[i]`` may use the way by its access tags.

    Examples
    --------
    >>> classify_way({"highway": "primary", "motor_vehicle": "no", "motorcar": "yes"})[-1]
    7
    >>> classify_way({"highway": "residential", "access": "private", "emergency": "yes"})[-1]
    15
    >>> classify_way({"highway": "footway"}) is None
    True
    """
    highway = tags.get("highway")
    if highway is None or tags.get("area") == "yes":
        return None
    emergency = tags.get("emergency")
    if highway in _DRIVE_HIGHWAYS:
        if highway == "service":
            service = tags.get("service")
            if service == "alley":
                category = "alley"
            elif service in _DROPPED_SERVICE and emergency not in _YES:
                return None
            else:
                category = "service"
        elif highway in ("road", "busway"):
            category = "unclassified"
        else:
            category = highway.removesuffix("_link")
        default = True
    elif highway == "track":
        category, default = "track", True
    elif highway in _PATH_HIGHWAYS:
        category, default = "path", False  # only where motorcycles (or emergencies) are allowed
    else:
        return None
    mask = 0
    for i, vehicle in enumerate(VEHICLE_CLASSES):
        keys = ACCESS_KEYS[vehicle]
        if category == "path":
            keys = (*keys, "moped") if vehicle == "motorbike" else keys
        ok = _allowed_by_tags(tags, keys, default)
        if emergency in _YES:
            ok = True
        elif emergency in _NO:
            ok = False
        mask |= int(ok) << i
    if mask == 0:
        return None

    oneway_tag = tags.get("oneway", "")
    if oneway_tag in ("yes", "true", "1"):
        oneway = 1
    elif oneway_tag in ("-1", "reverse"):
        oneway = -1
    elif oneway_tag in ("no", "false", "0", "alternating", "reversible"):
        oneway = 0
    elif tags.get("junction") in ("roundabout", "circular") or highway == "motorway":
        oneway = 1
    else:
        oneway = 0
    maxspeed = parse_maxspeed(tags.get("maxspeed"))
    width = parse_metres(tags.get("maxwidth")) or parse_metres(tags.get("width"))
    maxweight = parse_tonnes(tags.get("maxweight"))
    return CATEGORY_INDEX[category], oneway, maxspeed, width, maxweight, mask


def access_mask(
    category: np.ndarray,
    width_m: np.ndarray,
    maxweight_t: np.ndarray,
    settings: NetworkSettings,
    tag_mask: np.ndarray | None = None,
) -> np.ndarray:
    """Bit mask per arc of the classes allowed on it (bit ``i`` = ``VEHICLE_CLASSES[i]``).

    A tagged width (NaN when untagged) decides alone: the road is open to a class when it is at least
    the class's ``width_m``; untagged roads follow the class's ``excluded_categories``. A tagged
    ``maxweight`` below the class's weight closes the road to it.
    """
    mask = np.zeros(len(category), dtype=np.uint8)
    tagged = ~np.isnan(width_m)
    for i, name in enumerate(VEHICLE_CLASSES):
        p = settings.profiles[name]
        excluded = np.isin(category, [CATEGORY_INDEX[c] for c in p.excluded_categories])
        ok = np.where(tagged, width_m >= p.width_m, ~excluded)
        ok &= ~(maxweight_t < p.weight_t)  # NaN compares False: untagged stays open
        mask |= ok.astype(np.uint8) << i
    if tag_mask is not None:
        mask &= tag_mask.astype(np.uint8)
    return mask


def arc_speeds_kmh(
    vehicle: str,
    category: np.ndarray,
    maxspeed_kmh: np.ndarray,
    settings: NetworkSettings,
    band: int,
) -> np.ndarray:
    """Driving speed per arc for a class in a speed band (-1: none), before access rules.

    ``speed = min(limit_or_default * band_factor * emergency_factor, max_speed_kmh)``.
    """
    p = settings.profiles[vehicle]
    defaults = np.array([settings.default_speed_kmh[c] for c in ROAD_CATEGORIES])
    base = np.where(np.isnan(maxspeed_kmh), defaults[category], maxspeed_kmh)
    if band >= 0:
        factors = settings.bands[band].factors
        band_f = np.array([factors.get(c, 1.0) for c in ROAD_CATEGORIES])
        base = base * band_f[category]
    return np.minimum(base * p.emergency_factor, p.max_speed_kmh)
