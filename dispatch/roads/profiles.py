"""Vehicle classes, OSM speed parsing and access rules.

Everything here is a documented, overridable parameter. Values that are not law or measurement are
labelled as assumptions: calibrate them from the centre's own AVL/GPS history (per-class speed factors
per road type and hour) before using figures for planning decisions.

Data flow: :mod:`dispatch.roads.osm` classifies every OSM way with :func:`classify_way` (road category,
speed limits per direction, width, height, length and weight limits, per-class access and one-way),
every tagged node with :func:`node_block_mask` (barriers, node access) and every restriction relation
with :func:`restriction_rules`; :mod:`dispatch.roads.compile` turns them into per-class arc masks
(expanding only the nodes with barriers or restrictions); :mod:`dispatch.roads.network` turns that into
per-class travel times with :func:`arc_speeds_kmh` and :func:`access_mask`.
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


_NO_LIMIT = {"none", "default", "no", "unsigned", "below_default", "no_sign", "no_indications"}


def parse_metres(value: str | None) -> float | None:
    """Parse an OSM length (``width``, ``maxwidth``, ``maxheight``, ``maxlength``) into metres.

    Metres by default (``"3"``, ``"2.5 m"``, ``"3,5"``); feet and inches as ``7'6"``, ``12 ft``,
    ``12'``; several values (``"3.5;4"``) give the lowest; ``"none"``, ``"default"`` and anything
    unparsable give ``None``.

    >>> parse_metres("2.5 m"), parse_metres("3,5"), parse_metres("7'6\\""), parse_metres("narrow")
    (2.5, 3.5, 2.286, None)
    >>> parse_metres("12 ft"), parse_metres("12'6\\""), parse_metres("3.8;4.2"), parse_metres("none")
    (3.6576, 3.81, 3.8, None)
    """
    if value is None:
        return None
    out = []
    for part in value.split(";"):
        text = part.strip().lower().replace(",", ".")
        if not text or text in _NO_LIMIT:
            continue
        m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(m|metres|meters|metre|meter)?", text)
        if m:
            out.append(float(m.group(1)))
            continue
        m = re.fullmatch(
            r"(\d+(?:\.\d+)?)\s*(?:ft|feet|')\s*(?:(\d+(?:\.\d+)?)\s*(?:in|\"|''))?", text
        )
        if m:
            out.append(round(float(m.group(1)) * 0.3048 + float(m.group(2) or 0) * 0.0254, 4))
            continue
        m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(?:in|\")", text)
        if m:
            out.append(round(float(m.group(1)) * 0.0254, 4))
    return min(out) if out else None


#: Tonnes per unit of OSM weight values: metric tonnes by default; ``st`` is the US short ton.
_WEIGHT_UNITS = {
    "": 1.0, "t": 1.0, "tonnes": 1.0, "tonne": 1.0, "tons": 1.0, "ton": 1.0,
    "kg": 0.001, "lbs": 0.00045359237, "lb": 0.00045359237, "st": 0.90718474, "cwt": 0.05080235,
}  # fmt: skip


def parse_tonnes(value: str | None) -> float | None:
    """Parse an OSM weight (``maxweight``, ``maxweightrating``) into tonnes; ``None`` if unknown.

    >>> parse_tonnes("10"), parse_tonnes("3.5 t"), parse_tonnes("7500 kg"), parse_tonnes("none")
    (10.0, 3.5, 7.5, None)
    >>> round(parse_tonnes("10000 lbs"), 4), round(parse_tonnes("5 st"), 4)
    (4.5359, 4.5359)
    """
    if value is None:
        return None
    out = []
    for part in value.split(";"):
        text = part.strip().lower().replace(",", ".")
        m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([a-z]*)", text)
        if m and m.group(2) in _WEIGHT_UNITS and float(m.group(1)) > 0:
            out.append(round(float(m.group(1)) * _WEIGHT_UNITS[m.group(2)], 6))
    return min(out) if out else None


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
        Gross weight in tonnes: roads with a lower *physical* weight limit are closed (see
        :func:`weight_limit_t` for which ``maxweight`` tags count). ASSUMPTION.
    height_m
        Vehicle height in metres: roads and barriers with a lower ``maxheight`` (or
        ``maxheight:physical``) are closed. ASSUMPTION (typical: high-roof ambulance van such as the
        Hyundai Solati or Ford Transit 2.6-2.8 m; 6-9 t fire engine on a Hino/Isuzu chassis 3.0-3.3 m;
        aerial ladder on a 26 t chassis 3.4-3.9 m; motorbike with rider 1.3 m). Measure the fleet.
    length_m
        Vehicle length in metres: roads with a lower ``maxlength`` are closed. ASSUMPTION (same
        vehicles: 6.0-6.2 m, 7.5-8.5 m, 10-12 m, 2.0 m).
    excluded_categories
        Road categories closed to the class where no width is tagged (narrow by type).
    contraflow
        Whether the class may drive short one-way segments against the flow (off by default).
    contraflow_max_m
        Longest one-way segment the class may take against the flow when ``contraflow`` is on.
    contraflow_factor
        Speed multiplier when driving against the flow (slow, careful).
    obey_turn_restrictions
        Whether the class obeys turn restrictions (``type=restriction`` relations). ASSUMPTION:
        on by default. Vietnam's road traffic law lets priority vehicles on duty use any road they
        can travel, against the flow and through red lights (Law 23/2008/QH12 art. 22; verify against
        the law in force), but an illegal turn across traffic is slow and risky, so the default obeys;
        set it to ``False`` to model crews who ignore legal (non-physical) turn bans. Barriers,
        dimensions and one-ways are not affected (one-ways have ``contraflow``).
    signal_delay_s
        Expected time lost passing a traffic signal (``highway=traffic_signals``, per direction
        with ``traffic_signals:direction``/``direction``), added to every arc per signal it passes
        (:mod:`dispatch.roads.delays`). ASSUMPTION (see :data:`SIGNAL_DELAY_S`): lights and sirens
        do not make a red light free.
    stop_delay_s
        Time lost at a stop sign (``highway=stop``, per direction like signals). ASSUMPTION (see
        :data:`STOP_DELAY_S`).
    gate_delay_s
        Time lost passing a gate the class may pass (``barrier=gate``, ``lift_gate``,
        ``swing_gate``... that its access tags open): someone opens it. ASSUMPTION (see
        :data:`GATE_DELAY_S`). A gate that stops the class costs nothing: it is not passed.
    near_turn_s
        Time lost turning to the side the traffic drives on (right in Vietnam: no oncoming lane
        to cross) at a junction with turn costs (:attr:`NetworkSettings.turn_costs`), on top of
        any signal delay. ASSUMPTION (see :data:`TURN_COSTS_S`).
    far_turn_s
        Time lost turning across oncoming traffic (left in Vietnam), the same way. ASSUMPTION.
    u_turn_s
        Time lost turning back at a junction with turn costs (back along the road the vehicle
        came on, or a turn sharper than :data:`UTURN_MIN_DEG`). ASSUMPTION.
    obey_hgv_bans
        Whether ``hgv=no`` (and ``hgv=*`` values that close or restrict, per direction) closes
        roads and barrier nodes to the class (only classes whose access keys include ``hgv``: fire engine and
        ladder). RULE (documented decision, issue 13): off by default; in Vietnam ``hgv=no``
        stands for the P.106a/P.106b "no lorries" signs that keep goods vehicles out of the
        centre, a traffic rule priority vehicles on duty are not bound by (see
        :data:`HGV_BAN_RULE`). ``hgv=yes``/``designated`` still open a road either way.
    walk_speed_mps
        Speed of the crew's on-foot leg from where the vehicle stops to a call it cannot drive to
        (:mod:`dispatch.routing.reach`): walking with kit, carrying a stretcher, or laying hose.
        ASSUMPTION, see :data:`DEFAULT_PROFILES`.
    max_walk_m
        Longest on-foot leg (metres along paths) before the call counts as beyond the class's
        reach: the hose an engine carries, how far a crew carries a stretcher. ASSUMPTION, see
        :data:`DEFAULT_PROFILES`.
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
    height_m: float = 2.7
    length_m: float = 6.0
    obey_turn_restrictions: bool = True
    signal_delay_s: float = 0.0
    stop_delay_s: float = 0.0
    gate_delay_s: float = 0.0
    near_turn_s: float = 0.0
    far_turn_s: float = 0.0
    u_turn_s: float = 0.0
    obey_hgv_bans: bool = False
    walk_speed_mps: float = 1.2
    max_walk_m: float = 300.0

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
            "height_m",
            "length_m",
            "contraflow_max_m",
            "walk_speed_mps",
            "max_walk_m",
        ):
            v = getattr(self, key)
            if isinstance(v, bool) or not (
                isinstance(v, int | float) and math.isfinite(v) and v > 0
            ):
                problems.append(f"{key}={v!r} must be a positive number")
        for key in ("signal_delay_s", "stop_delay_s", "gate_delay_s", "near_turn_s", "far_turn_s",
                    "u_turn_s"):  # fmt: skip
            v = getattr(self, key)
            if isinstance(v, bool) or not (
                isinstance(v, int | float) and math.isfinite(v) and 0 <= v <= MAX_NODE_DELAY_S
            ):
                problems.append(
                    f"{key}={v!r} must be a number of seconds from 0 to {MAX_NODE_DELAY_S:g}"
                )
        for key in ("contraflow", "obey_turn_restrictions", "obey_hgv_bans"):
            if not isinstance(getattr(self, key), bool):
                problems.append(f"{key}={getattr(self, key)!r} must be true or false")
        if not isinstance(self.excluded_categories, tuple) or not all(
            isinstance(c, str) for c in self.excluded_categories
        ):
            problems.append(
                f"excluded_categories={self.excluded_categories!r} must be a list of names"
            )
            raise VehicleError(f"vehicle profile {self.name!r}: " + "; ".join(problems))
        unknown = [c for c in self.excluded_categories if c not in CATEGORY_INDEX]
        if unknown:
            problems.append(f"excluded_categories has unknown categories {unknown}")
        if problems:
            raise VehicleError(f"vehicle profile {self.name!r}: " + "; ".join(problems))
        return self


_NARROW = ("living_street", "service", "alley", "track", "path")

#: Largest delay (s) a profile may put on one signal, stop sign or gate (a typing error guard).
MAX_NODE_DELAY_S = 600.0

#: Expected time (s) lost per traffic signal passed, per class. ASSUMPTION (reasoned, not
#: measured): an emergency vehicle slows at every signalised junction and, on red, crosses only
#: after slowing to walking pace and checking that cross traffic has yielded (Vietnam: priority
#: vehicles may pass a red light, Law 23/2008/QH12 art. 22, but must do so safely). Expected loss
#: = P(red) x stop loss + P(green) x ~1 s of caution, with P(red) = 0.5 and stop loss
#: = v/(2 a_dec) + v/(2 a_acc) + 3 s check at v = 40 km/h (11.1 m/s): van a_dec 3, a_acc 2 m/s2
#: -> 7.6 s; 6-9 t engine 2 and 1.0 -> 11.4 s; 26 t ladder 2 and 0.7 -> 13.7 s; motorbike 3 and
#: 2.5 -> 6.1 s (acceleration of loaded trucks 0.5-1 m/s2 from the usual traffic-engineering
#: design values, e.g. AASHTO's Green Book). For comparison OSRM's car profile charges 2 s per
#: signal. Calibrate from AVL traces through signalised junctions.
SIGNAL_DELAY_S: dict[str, float] = {
    "ambulance": 4.5, "fire_engine": 6.0, "ladder": 7.5, "motorbike": 3.5,
}  # fmt: skip
#: Time (s) lost per stop sign passed. ASSUMPTION: the same slow-to-walking-pace manoeuvre as at a
#: red light, every time, with a 1 s look instead of 3 s (none of the shipped maps tags
#: ``highway=stop``; the rule is there for maps that do). ``give_way`` costs nothing (an
#: emergency vehicle with lights and sirens is given way).
STOP_DELAY_S: dict[str, float] = {
    "ambulance": 5.5, "fire_engine": 9.5, "ladder": 11.5, "motorbike": 5.0,
}  # fmt: skip
#: Time (s) lost per gate passed. ASSUMPTION (illustrative): a guard raises the boom or opens the
#: gate of a compound or residential estate when the siren is heard; a four-wheel vehicle stops
#: or crawls for about 15 s, a motorbike slips past a half-raised boom in about 5 s. Locked gates
#: and gates whose access tags close them stop the class instead (:func:`node_block_mask`).
GATE_DELAY_S: dict[str, float] = {
    "ambulance": 15.0, "fire_engine": 15.0, "ladder": 15.0, "motorbike": 5.0,
}  # fmt: skip
#: Time (s) lost per turn at a junction with turn costs, per class: ``(near, far, U-turn)``, on
#: top of the junction's signal delay; straight on costs nothing. ASSUMPTION (reasoned, not
#: measured; calibrate from AVL traces through junctions: the time from entering to leaving a
#: junction by turn type, against straight-through passages). A turn costs the slow-down to turning
#: speed and back, ``(v - u)^2 / (2 v) * (1/a_dec + 1/a_acc)``; from 40 km/h (11.1 m/s) to about
#: 18 km/h (5 m/s) for a near-side (right) turn: van 1.4 s, 6-9 t engine 2.8 s, 26 t ladder 3.6
#: s, motorbike 0.7 s (decelerations and accelerations as in :data:`SIGNAL_DELAY_S`), rounded up
#: for the tighter radius of longer vehicles; a far-side (left) turn also waits for a gap in
#: oncoming traffic or for the crossing to clear (lights and sirens shorten, not remove, that
#: wait); a U-turn needs a full stop, and a 8.5-11 m truck a three-point turn on most streets.
#: For comparison, OSRM's car profile (``profiles/car.lua``: ``turn_penalty`` 7.5 s, ``turn_bias``
#: 1.075, ``u_turn_penalty`` 20 s, a sigmoid of the turn angle) charges about 2.1 s for a 90 deg
#: right turn, 5.4 s for a 90 deg left turn and 27.5 s for a U-turn; Valhalla's ``osrm`` cost
#: model uses the same constants; Conveyal R5 charges a car 10 s right, 30 s left, 90 s U-turn
#: (straight below 27 deg, U-turn above 153 deg, mirrored for left-hand traffic).
TURN_COSTS_S: dict[str, tuple[float, float, float]] = {
    "ambulance": (2.0, 5.0, 20.0), "fire_engine": (3.0, 7.0, 30.0),
    "ladder": (4.0, 9.0, 45.0), "motorbike": (1.0, 2.5, 6.0),
}  # fmt: skip
#: A turn whose bearing changes by less than this (degrees) is straight on; more than
#: :data:`UTURN_MIN_DEG` is a U-turn. ASSUMPTION: R5's 27/153 deg, rounded.
STRAIGHT_MAX_DEG = 30.0
UTURN_MIN_DEG = 150.0
#: Where turn costs apply (:attr:`NetworkSettings.turn_costs`).
TURN_COST_MODES = ("signals", "junctions", "off")
#: The gate kinds that cost :data:`GATE_DELAY_S` when passed (other passable barriers, such as toll
#: booths, cattle grids and entrances, cost nothing: an emergency vehicle drives through).
GATE_BARRIERS = frozenset({
    "gate", "lift_gate", "swing_gate", "sliding_gate", "hampshire_gate", "bump_gate", "sally_port",
})  # fmt: skip
#: RULE (documented decision, issue 13) behind ``obey_hgv_bans=False``: QCVN 41:2019/BGTVT (the
#: national regulation on road signs), Appendix B.6 a), defines sign P.106a "no lorries" as
#: banning lorries "except priority vehicles as regulated" (tru cac xe duoc uu tien theo quy
#: dinh), and Law 23/2008/QH12 art. 22 makes fire engines and ambulances on duty priority
#: vehicles; ``hgv=no`` is how OSM maps those signs (28 Da Nang ways: 14 residential streets, 8 alleys, primary/secondary/tertiary streets,
#: e.g. the ramps tagged ``hgv=no`` + ``maxweight=2.5``). ASSUMPTION: verify against the texts in
#: force; a street that is physically too weak or narrow should carry ``maxweightrating`` or
#: ``width`` (applied) or be closed by the centre.
HGV_BAN_RULE = "priority vehicles are not bound by hgv=no (QCVN 41:2019/BGTVT, Law 23/2008 art. 22)"

#: The default profiles. Every number is an ASSUMPTION (see :class:`VehicleProfile`); override with
#: :func:`network_settings` or a scenario file.
#:
#: Width and height of the fire classes, reviewed against the norms (issue 12): TCVN 2622:1995 and
#: QCVN 06:2022/BXD (section 6) require fire-truck access roads of at least 3.5 m clear width and
#: 4.5 m clear height; IFC 503.1.1 asks for an apparatus road within 150 ft (45.7 m) of every
#: exterior wall. These are *design* minima for new roads, not the narrowest road a truck can pass:
#: ``width_m`` is the vehicle's width plus clearance, compared with a tagged road width. Engine:
#: 2.5 m (a 6-9 t Hino/Isuzu chassis, SOURCE: typical body widths 2.3-2.5 m) + 0.5 m = 3.0 m, below
#: the 3.5 m norm (a road narrower than the norm but 3.0 m wide is still driven, slowly); ladder
#: 3.5 m = the TCVN/QCVN clear width (outriggers and turning need the full access road). Height
#: stays the vehicle's own height (``maxheight`` is compared with it); the 4.5 m clear height of the
#: norms is what a compliant road offers, not a vehicle dimension. Untagged narrow road types
#: (``living_street``, ``service``, ``alley``, ``track``, ``path``) stay closed to both (ASSUMPTION:
#: in Da Nang such ways are mostly kiệt/hẻm of 1-3 m, below the 3.5 m norm).
#:
#: On-foot leg (``walk_speed_mps``, ``max_walk_m``; ASSUMPTION, calibrate from incident records):
#: ambulance crew carrying a stretcher and kit, 1.0 m/s up to 300 m (normal walking is about
#: 1.3-1.4 m/s; a loaded two-person carry is slower; the issue's example is a 150 m stub);
#: fire engine hose lay 0.8 m/s up to 500 m (Da Nang fires: hẻm 2 kiệt 3 Hà Thị Thân, December
#: 2025, trucks about 100 m away; kiệt 110 Mẹ Suốt, August 2025, nearly 500 m of hose; 20 m hose
#: lengths coupled as the crew advances); ladder crew 1.2 m/s, but the ladder itself is useless
#: farther than IFC 503.1.1's 45.7 m (150 ft) from the wall, so its limit is 45.7 m; motorbike
#: first responder walking with a kit bag 1.3 m/s up to 300 m.
DEFAULT_PROFILES: dict[str, VehicleProfile] = {
    "ambulance": VehicleProfile(
        "ambulance", "115", emergency_factor=1.15, max_speed_kmh=90.0, width_m=2.5, weight_t=3.5,
        excluded_categories=("track", "path"), height_m=2.7, length_m=6.2,
        signal_delay_s=SIGNAL_DELAY_S["ambulance"], stop_delay_s=STOP_DELAY_S["ambulance"],
        gate_delay_s=GATE_DELAY_S["ambulance"],
        near_turn_s=TURN_COSTS_S["ambulance"][0], far_turn_s=TURN_COSTS_S["ambulance"][1],
        u_turn_s=TURN_COSTS_S["ambulance"][2],
        walk_speed_mps=1.0, max_walk_m=300.0,
    ),
    "fire_engine": VehicleProfile(
        "fire_engine", "114", emergency_factor=1.05, max_speed_kmh=70.0, width_m=3.0, weight_t=15.0,
        excluded_categories=_NARROW, height_m=3.3, length_m=8.5,
        signal_delay_s=SIGNAL_DELAY_S["fire_engine"], stop_delay_s=STOP_DELAY_S["fire_engine"],
        gate_delay_s=GATE_DELAY_S["fire_engine"],
        near_turn_s=TURN_COSTS_S["fire_engine"][0], far_turn_s=TURN_COSTS_S["fire_engine"][1],
        u_turn_s=TURN_COSTS_S["fire_engine"][2],
        walk_speed_mps=0.8, max_walk_m=500.0,
    ),
    "ladder": VehicleProfile(
        "ladder", "114", emergency_factor=1.0, max_speed_kmh=60.0, width_m=3.5, weight_t=26.0,
        excluded_categories=_NARROW, height_m=3.8, length_m=11.0,
        signal_delay_s=SIGNAL_DELAY_S["ladder"], stop_delay_s=STOP_DELAY_S["ladder"],
        gate_delay_s=GATE_DELAY_S["ladder"],
        near_turn_s=TURN_COSTS_S["ladder"][0], far_turn_s=TURN_COSTS_S["ladder"][1],
        u_turn_s=TURN_COSTS_S["ladder"][2],
        walk_speed_mps=1.2, max_walk_m=45.7,
    ),
    "motorbike": VehicleProfile(
        "motorbike", "115", emergency_factor=1.10, max_speed_kmh=70.0, width_m=1.0, weight_t=0.3,
        excluded_categories=(), height_m=1.3, length_m=2.0,
        signal_delay_s=SIGNAL_DELAY_S["motorbike"], stop_delay_s=STOP_DELAY_S["motorbike"],
        gate_delay_s=GATE_DELAY_S["motorbike"],
        near_turn_s=TURN_COSTS_S["motorbike"][0], far_turn_s=TURN_COSTS_S["motorbike"][1],
        u_turn_s=TURN_COSTS_S["motorbike"][2],
        walk_speed_mps=1.3, max_walk_m=300.0,
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
    turn_costs
        Junctions where turns cost the profiles' ``near_turn_s``/``far_turn_s``/``u_turn_s``
        (:mod:`dispatch.roads.compile` expands them: one node per road in and out, one turn arc per
        pair): ``"signals"`` (default) junctions with a traffic signal on the junction or on an
        approach to it (where a turn across traffic waits for its phase or a gap), ``"junctions"``
        every node with three or more road neighbours (exact everywhere, a bigger graph), ``"off"``
        none. Junctions expanded for turn restrictions get the costs too unless ``"off"``.
    driving_side
        ``"right"`` (default, Vietnam) or ``"left"``: which turn is the near one (no oncoming
        traffic to cross).
    """

    profiles: Mapping[str, VehicleProfile] = field(default_factory=lambda: dict(DEFAULT_PROFILES))
    default_speed_kmh: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_SPEED_KMH))
    bands: tuple[SpeedBand, ...] = DEFAULT_BANDS
    snap_tolerance_m: float = 300.0
    turn_costs: str = "signals"
    driving_side: str = "right"

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
    turn_costs: str = "signals",
    driving_side: str = "right",
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
    turn_costs
        ``"signals"``, ``"junctions"`` or ``"off"``: where turns cost time
        (:attr:`NetworkSettings.turn_costs`).
    driving_side
        ``"right"`` or ``"left"`` (:attr:`NetworkSettings.driving_side`).

    Examples
    --------
    >>> s = network_settings(profiles={"ambulance": {"contraflow": True}})
    >>> s.profiles["ambulance"].contraflow, s.profiles["fire_engine"].contraflow
    (True, False)
    """
    merged = dict(DEFAULT_PROFILES)
    problems = []
    if profiles is not None and not isinstance(profiles, Mapping):
        raise VehicleError(
            f"profiles={profiles!r} must be a mapping of class name to field overrides"
        )
    for name, overrides in (profiles or {}).items():
        if name not in DEFAULT_PROFILES:
            raise VehicleError(
                f"unknown vehicle class {name!r} in profiles; expected one of {VEHICLE_CLASSES}"
            )
        if not isinstance(overrides, Mapping):
            raise VehicleError(
                f"profiles[{name!r}]={overrides!r} must be a mapping of field overrides, "
                f"e.g. {{'contraflow': True}}"
            )
        bad = [k for k in overrides if k not in VehicleProfile.__dataclass_fields__ or k == "name"]
        if bad:
            problems.append(f"profiles[{name!r}] has unknown keys {bad}")
            continue
        values = dict(overrides)
        if "excluded_categories" in values:
            cats = values["excluded_categories"]
            if isinstance(cats, str) or not isinstance(cats, list | tuple):
                problems.append(
                    f"profiles[{name!r}]['excluded_categories']={cats!r} must be a list of names"
                )
                continue
            values["excluded_categories"] = tuple(cats)
        merged[name] = replace(DEFAULT_PROFILES[name], **values).validated()
    if default_speed_kmh is not None and not isinstance(default_speed_kmh, Mapping):
        raise VehicleError(
            f"default_speed_kmh={default_speed_kmh!r} must be a mapping of road category to km/h"
        )
    speeds = dict(DEFAULT_SPEED_KMH)
    for cat, v in (default_speed_kmh or {}).items():
        if cat not in CATEGORY_INDEX:
            problems.append(f"default_speed_kmh has unknown road category {cat!r}")
        elif isinstance(v, bool) or not (isinstance(v, int | float) and math.isfinite(v) and v > 0):
            problems.append(f"default_speed_kmh[{cat!r}]={v!r} must be a positive number")
        else:
            speeds[cat] = float(v)
    tol = 300.0 if snap_tolerance_m is None else snap_tolerance_m
    if isinstance(tol, bool) or not (
        isinstance(tol, int | float) and math.isfinite(tol) and tol > 0
    ):
        problems.append(f"snap_tolerance_m={snap_tolerance_m!r} must be a positive number")
    if turn_costs not in TURN_COST_MODES:
        problems.append(f"turn_costs={turn_costs!r} must be one of {', '.join(TURN_COST_MODES)}")
    if driving_side not in ("right", "left"):
        problems.append(f"driving_side={driving_side!r} must be 'right' or 'left'")
    if problems:
        raise VehicleError("; ".join(problems))
    return NetworkSettings(
        profiles=merged,
        default_speed_kmh=speeds,
        bands=DEFAULT_BANDS if bands is None else bands,
        snap_tolerance_m=float(tol),
        turn_costs=turn_costs,
        driving_side=driving_side,
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


#: Access levels of a way or node for one class.
OPEN, RESTRICTED, CLOSED = 0, 1, 2
#: Values that close a road or barrier to a class (OSM access values).
_CLOSED_VALUES = {"no", "agricultural", "forestry", "use_sidepath", "discouraged_no"}
#: Values that keep it open only for some users (private compounds, residents, destination
#: traffic). POLICY (ASSUMPTION): an emergency vehicle enters them to reach a call, so they stay
#: open, at :data:`RESTRICTED_SPEED_KMH` (a time penalty that keeps them out of through routes).
_RESTRICTED_VALUES = {"private", "destination", "customers", "delivery", "permit", "residents",
                      "permissive_destination"}  # fmt: skip
_OPEN_VALUES = {"yes", "designated", "permissive", "official", "emergency"}

#: Speed cap (km/h) on roads a class may use only as private or destination traffic. ASSUMPTION:
#: walking-to-cycling pace inside a compound or residential estate; it is the time penalty that
#: keeps such roads out of through routes (OSRM's car profile refuses them, or allows them only at
#: the end of a route).
RESTRICTED_SPEED_KMH = 10.0

#: Default speed (km/h) of ``*_link`` roads without ``maxspeed``. ASSUMPTION: the link speeds of
#: OSRM's car profile (``profiles/car.lua``), slower than their parent road.
LINK_SPEED_KMH: dict[str, float] = {
    "motorway": 45.0, "trunk": 40.0, "primary": 30.0, "secondary": 25.0, "tertiary": 20.0,
}  # fmt: skip


def _access_level(tags: Mapping[str, str], keys: tuple[str, ...], default: int,
                  direction: str | None = None, lenient: str | None = None) -> int:  # fmt: skip
    """Access level for a class by the OSM access hierarchy: the most specific tagged key wins;
    ``key:forward``/``key:backward`` override ``key`` for that direction. Values of the ``lenient``
    key that close or restrict are skipped (a ban the class is not bound by)."""
    level = default
    for key in keys:
        value = tags.get(f"{key}:{direction}") if direction else None
        if value is None:
            value = tags.get(key)
        if value is None:
            continue
        value = value.split(";")[0].strip()
        if key == lenient and value not in _OPEN_VALUES:
            continue
        if value in _CLOSED_VALUES:
            level = CLOSED
        elif value in _RESTRICTED_VALUES:
            level = RESTRICTED
        elif value in _OPEN_VALUES:
            level = OPEN
    return level


#: The ``oneway`` keys each class obeys, most general first (the last one tagged wins):
#: ``oneway:motorcycle=no`` opens a one-way street to the motorbike class only (common in Vietnam).
ONEWAY_KEYS: dict[str, tuple[str, ...]] = {
    "ambulance": ("oneway", "oneway:vehicle", "oneway:motor_vehicle", "oneway:motorcar"),
    "fire_engine": ("oneway", "oneway:vehicle", "oneway:motor_vehicle", "oneway:motorcar",
                    "oneway:hgv"),
    "ladder": ("oneway", "oneway:vehicle", "oneway:motor_vehicle", "oneway:motorcar", "oneway:hgv"),
    "motorbike": ("oneway", "oneway:vehicle", "oneway:motor_vehicle", "oneway:motorcycle"),
}  # fmt: skip

#: Closed values of ``construction=*`` on a road: ``minor``/``widening`` works leave it open.
_OPEN_CONSTRUCTION = {"no", "minor", "widening", "none"}


def _oneway_value(tags: Mapping[str, str], keys: tuple[str, ...], implied: int) -> int | None:
    """1 forward only, -1 backward only, 0 both, ``None`` closed (``reversible``)."""
    value: int | None = implied
    for key in keys:
        tag = tags.get(key)
        if tag is None:
            continue
        if tag in ("yes", "true", "1"):
            value = 1
        elif tag in ("-1", "reverse"):
            value = -1
        elif tag in ("no", "false", "0", "alternating"):
            # POLICY (ASSUMPTION): an alternating single-lane stretch is open both ways (no wait
            # at its signal is modelled)
            value = 0
        elif tag == "reversible":
            # POLICY: the direction of a reversible road changes with the time of day, which the
            # data does not say: closed to routing, as in OSRM's car profile
            value = None
    return value


@dataclass(frozen=True)
class WayRules:
    """What one OSM way means for routing (see :func:`classify_way`).

    ``fwd_mask``/``bwd_mask``: bit ``i`` set when ``VEHICLE_CLASSES[i]`` may legally drive the way
    forward/backward (access and one-way rules); ``open_mask``: the classes that may use the way in
    some direction (the reverse of a one-way stays available to classes with ``contraflow``);
    ``restricted_mask``: the classes that may use it only as private or destination traffic.
    """

    category: int
    fwd_mask: int
    bwd_mask: int
    open_mask: int
    restricted_mask: int
    maxspeed_fwd_kmh: float | None
    maxspeed_bwd_kmh: float | None
    width_m: float | None
    maxweight_t: float | None
    maxheight_m: float | None
    maxlength_m: float | None
    weight_sign_t: float | None  # a plain maxweight read as a truck ban (not applied)
    #: ``(fwd, bwd, open, restricted)`` masks if the ``hgv`` classes ignore ``hgv`` bans (profile
    #: option ``obey_hgv_bans=False``, :data:`HGV_BAN_RULE`); ``None`` when the way has none
    hgv_exempt: tuple[int, int, int, int] | None = None


#: Clearance (m) added to a tagged ``maxwidth`` (the widest vehicle allowed) to compare it with a
#: profile's ``width_m`` (vehicle width plus clearance). ASSUMPTION, as in :class:`VehicleProfile`.
MAXWIDTH_CLEARANCE_M = 0.5


def weight_limit_t(tags: Mapping[str, str]) -> tuple[float | None, float | None]:
    """``(applied, sign)``: the weight limit emergency vehicles obey, and a plain sign they do not.

    RULE (documented decision, issue 13): ``maxweightrating``, ``maxweight:physical`` and a
    ``maxweight`` on a bridge (``bridge=*`` other than ``no``, or ``man_made=bridge``) are load
    limits of the structure: applied to every class. A plain ``maxweight`` on an ordinary street is
    read as a truck ban (in Vietnam the P.115 sign on main streets such as Trung Nu Vuong, way
    302751295, and 2 Thang 9, way 302751284, keeps lorries out of the centre): a traffic rule that
    priority vehicles on duty are not bound by (Law 23/2008/QH12 art. 22), so it is reported
    (``sign``) but not applied. ASSUMPTION: a street whose pavement really cannot bear an engine
    should be tagged ``maxweightrating`` or be closed by the centre.

    >>> weight_limit_t({"maxweight": "2.5"}), weight_limit_t({"maxweight": "10", "bridge": "yes"})
    ((None, 2.5), (10.0, None))
    >>> weight_limit_t({"maxweightrating": "7500 kg", "maxweight": "3"})
    (7.5, 3.0)
    """
    bridge = tags.get("bridge", "no") != "no" or tags.get("man_made") == "bridge"
    plain = parse_tonnes(tags.get("maxweight"))
    limits = [
        parse_tonnes(tags.get("maxweightrating")),
        parse_tonnes(tags.get("maxweight:physical")),
    ]
    if bridge:
        limits.append(plain)
    found = [x for x in limits if x is not None]
    applied = min(found) if found else None
    sign = None if bridge else plain
    return applied, sign


def classify_way(tags: Mapping[str, str]) -> WayRules | None:
    """Classify an OSM way for the network, or return ``None`` when no emergency vehicle may use it.

    Mirrors osmnx's ``"drive"`` filter (same highway types, ``area``, parking/private service roads
    dropped) with changes that matter for emergency vehicles: access follows the OSM hierarchy per
    class (:data:`ACCESS_KEYS`: ``motor_vehicle=no`` + ``motorcar=yes`` is open to cars), with
    ``key:forward``/``key:backward`` per direction; ``emergency=yes`` opens a road to every class
    (``emergency=no`` closes it); ``private``/``destination`` roads stay open at a speed penalty
    (:data:`RESTRICTED_SPEED_KMH`); one-ways per class (:data:`ONEWAY_KEYS`); ``reversible`` roads,
    ``smoothness=impassable`` and roads under ``construction`` are closed; ``service=alley`` is its
    own category (motorbikes and ambulances use alleys); ``track`` and motorcycle-legal paths are
    kept for motorbikes.

    Examples
    --------
    >>> classify_way({"highway": "primary", "motor_vehicle": "no", "motorcar": "yes"}).fwd_mask
    7
    >>> r = classify_way({"highway": "residential", "access": "private"})
    >>> r.fwd_mask, r.restricted_mask
    (15, 15)
    >>> r = classify_way({"highway": "primary", "oneway": "yes", "oneway:motorcycle": "no"})
    >>> r.fwd_mask, r.bwd_mask, r.open_mask
    (15, 8, 15)
    >>> classify_way({"highway": "footway"}) is None
    True
    """
    highway = tags.get("highway")
    if highway is None or tags.get("area") == "yes":
        return None
    if tags.get("smoothness") == "impassable" or tags.get("impassable") == "yes":
        return None
    if tags.get("construction", "no") not in _OPEN_CONSTRUCTION:
        return None
    emergency = tags.get("emergency")
    link = highway.endswith("_link")
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
        default = OPEN
    elif highway == "track":
        category, default = "track", OPEN
    elif highway in _PATH_HIGHWAYS:
        category, default = "path", CLOSED  # only where motorcycles (or emergencies) are allowed
    else:
        return None
    implied = (
        1 if tags.get("junction") in ("roundabout", "circular") or highway == "motorway" else 0
    )
    masks = [0, 0, 0, 0]  # fwd, bwd, open, restricted
    exempt = [0, 0, 0, 0]  # the same with hgv bans ignored
    for i, vehicle in enumerate(VEHICLE_CLASSES):
        keys = ACCESS_KEYS[vehicle]
        if category == "path" and vehicle == "motorbike":
            keys = (*keys, "moped")
        keys = (*keys, "emergency")  # emergency=* applies to every class, most specifically
        oneway = _oneway_value(tags, ONEWAY_KEYS[vehicle], implied)
        if oneway is None:
            continue
        for out, lenient in ((masks, None), (exempt, "hgv")):
            lf = _access_level(tags, keys, default, "forward", lenient)
            lb = _access_level(tags, keys, default, "backward", lenient)
            bit = 1 << i
            if lf != CLOSED or lb != CLOSED:
                out[2] |= bit
            if lf != CLOSED and oneway >= 0:
                out[0] |= bit
            if lb != CLOSED and oneway <= 0:
                out[1] |= bit
            if (lf == RESTRICTED and out[0] & bit) or (lb == RESTRICTED and out[1] & bit):
                out[3] |= bit
    fwd, bwd, opened, restricted = masks
    if opened == 0 and exempt[2] == 0:
        return None
    maxspeed = parse_maxspeed(tags.get("maxspeed"))
    if maxspeed is None and link and category in LINK_SPEED_KMH:
        maxspeed = LINK_SPEED_KMH[category]
    sp_f = parse_maxspeed(tags.get("maxspeed:forward"))
    sp_b = parse_maxspeed(tags.get("maxspeed:backward"))
    widths = [parse_metres(tags.get("width")), parse_metres(tags.get("est_width"))]
    for key in ("maxwidth", "maxwidth:physical"):
        w = parse_metres(tags.get(key))
        widths.append(None if w is None else w + MAXWIDTH_CLEARANCE_M)
    width = min((w for w in widths if w is not None), default=None)
    heights = [parse_metres(tags.get(k)) for k in ("maxheight", "maxheight:physical")]
    height = min((h for h in heights if h is not None), default=None)
    weight, sign = weight_limit_t(tags)
    return WayRules(
        category=CATEGORY_INDEX[category],
        fwd_mask=fwd,
        bwd_mask=bwd,
        open_mask=opened,
        restricted_mask=restricted,
        maxspeed_fwd_kmh=sp_f if sp_f is not None else maxspeed,
        maxspeed_bwd_kmh=sp_b if sp_b is not None else maxspeed,
        width_m=width,
        maxweight_t=weight,
        maxheight_m=height,
        maxlength_m=parse_metres(tags.get("maxlength")),
        weight_sign_t=sign,
        hgv_exempt=None if exempt == masks else (exempt[0], exempt[1], exempt[2], exempt[3]),
    )


# --- barriers and node access -----------------------------------------------------------------

#: Barriers a vehicle passes unless access tags on the node say otherwise. POLICY (ASSUMPTION):
#: gates, lift gates and toll booths are opened for an emergency vehicle (staffed, or crews hold
#: keys), as OSRM's car profile lets cars through them; a gate tagged ``locked=yes`` is closed
#: unless ``emergency=yes``.
PASSABLE_BARRIERS = frozenset({
    "gate", "lift_gate", "swing_gate", "sliding_gate", "toll_booth", "border_control",
    "cattle_grid", "entrance", "sally_port", "no", "height_restrictor", "hampshire_gate",
    "bump_gate", "spikes", "coupure",
})  # fmt: skip
#: Barriers only the motorbike class passes. ASSUMPTION: bollards and cycle barriers are spaced
#: for two-wheelers (at least about 1.2 m apart in Vietnamese alleys), so a motorbike slips
#: between them while an ambulance or engine cannot.
MOTORBIKE_BARRIERS = frozenset({"bollard", "cycle_barrier"})
_LOWERED_KERB = {"lowered", "flush", "no"}


def node_block_mask(tags: Mapping[str, str], *, lenient: str | None = None) -> int:
    """Bit mask of the classes a node with these tags stops (a barrier, or ``access=no``).

    Every other barrier value (``wall``, ``fence``, ``block``, raised ``kerb``, ``jersey_barrier``,
    ``log``, ``chain``, ``stile``, ``kissing_gate``, an unknown ``barrier=yes``...) stops every class.
    Access tags on the node decide first, by the same hierarchy as ways (:data:`ACCESS_KEYS`, then
    ``emergency``); private or destination access leaves the node open (POLICY, as for ways).
    ``lenient="hgv"`` skips ``hgv`` values that close (a ban a class is not bound by, as for ways).

    >>> node_block_mask({"barrier": "bollard"}), node_block_mask({"barrier": "gate"})
    (7, 0)
    >>> node_block_mask({"barrier": "wall"}), node_block_mask({"access": "no", "emergency": "yes"})
    (15, 0)
    >>> node_block_mask({"barrier": "gate", "access": "no", "motorcycle": "yes"})
    7
    """
    barrier = tags.get("barrier")
    if barrier is None and not any(k in tags for k in _NODE_ACCESS_KEYS):
        return 0
    mask = 0
    for i, vehicle in enumerate(VEHICLE_CLASSES):
        if barrier is None or barrier in PASSABLE_BARRIERS:
            default = OPEN
            if tags.get("locked") == "yes":
                default = CLOSED
        elif barrier in MOTORBIKE_BARRIERS:
            default = OPEN if vehicle == "motorbike" else CLOSED
        elif barrier == "kerb" and tags.get("kerb") in _LOWERED_KERB:
            default = OPEN
        else:
            default = CLOSED
        level = _access_level(tags, (*ACCESS_KEYS[vehicle], "emergency"), default, None, lenient)
        if level == CLOSED:
            mask |= 1 << i
    return mask


_NODE_ACCESS_KEYS = frozenset(k for keys in ACCESS_KEYS.values() for k in keys) | {"emergency"}


# --- turn restrictions --------------------------------------------------------------------------

#: The ``restriction:<mode>`` keys each class obeys, most general first (the last one tagged wins).
RESTRICTION_KEYS: dict[str, tuple[str, ...]] = {
    "ambulance": ("restriction", "restriction:vehicle", "restriction:motor_vehicle",
                  "restriction:motorcar"),
    "fire_engine": ("restriction", "restriction:vehicle", "restriction:motor_vehicle",
                    "restriction:hgv"),
    "ladder": ("restriction", "restriction:vehicle", "restriction:motor_vehicle", "restriction:hgv"),
    "motorbike": ("restriction", "restriction:vehicle", "restriction:motor_vehicle",
                  "restriction:motorcycle"),
}  # fmt: skip
#: ``except=*`` values that exempt each class from a restriction.
RESTRICTION_EXCEPT: dict[str, frozenset[str]] = {
    "ambulance": frozenset({"motorcar", "emergency"}),
    "fire_engine": frozenset({"hgv", "emergency"}),
    "ladder": frozenset({"hgv", "emergency"}),
    "motorbike": frozenset({"motorcycle", "moped", "emergency"}),
}


def restriction_rules(tags: Mapping[str, str]) -> dict[str, int]:
    """``{"no": mask, "only": mask}``: the classes bound by a ``type=restriction`` relation.

    Conditional restrictions (``restriction:conditional``, ``day_on``/``hour_on``) are time-dependent
    and not applied (the network has no time windows for turns); they are counted apart.

    >>> restriction_rules({"type": "restriction", "restriction": "no_left_turn", "except": "motorcycle"})
    {'no': 7, 'only': 0}
    >>> restriction_rules({"type": "restriction", "restriction:hgv": "only_straight_on"})
    {'no': 0, 'only': 6}
    """
    out = {"no": 0, "only": 0}
    exempt = {v.strip() for v in tags.get("except", "").split(";")}
    for i, vehicle in enumerate(VEHICLE_CLASSES):
        value = None
        for key in RESTRICTION_KEYS[vehicle]:
            if key in tags:
                value = tags[key]
        if value is None or exempt & RESTRICTION_EXCEPT[vehicle]:
            continue
        kind = value.split("_", 1)[0]
        if kind in out:
            out[kind] |= 1 << i
    return out


def hgv_exempt_mask(settings: NetworkSettings) -> int:
    """Bit mask of the classes not bound by ``hgv`` bans (``obey_hgv_bans=False``).

    >>> hgv_exempt_mask(network_settings()), hgv_exempt_mask(network_settings(
    ...     profiles={"fire_engine": {"obey_hgv_bans": True}, "ladder": {"obey_hgv_bans": True}}))
    (15, 9)
    """
    return sum(1 << i for i, name in enumerate(VEHICLE_CLASSES)
               if not settings.profiles[name].obey_hgv_bans)  # fmt: skip


def dimension_mask(
    settings: NetworkSettings,
    maxheight_m: np.ndarray,
    maxlength_m: np.ndarray,
) -> np.ndarray:
    """Bit mask of the classes whose height and length fit under the limits (NaN: no limit)."""
    mask = np.zeros(len(maxheight_m), dtype=np.uint8)
    for i, name in enumerate(VEHICLE_CLASSES):
        p = settings.profiles[name]
        ok = ~(maxheight_m < p.height_m) & ~(maxlength_m < p.length_m)
        mask |= ok.astype(np.uint8) << i
    return mask


def access_mask(
    category: np.ndarray,
    width_m: np.ndarray,
    maxweight_t: np.ndarray,
    settings: NetworkSettings,
    tag_mask: np.ndarray | None = None,
) -> np.ndarray:
    """Bit mask per arc of the classes allowed on it (bit ``i`` = ``VEHICLE_CLASSES[i]``).

    A tagged width (NaN when untagged) decides alone: the road is open to a class when it is at least
    the class's ``width_m``; untagged roads follow the class's ``excluded_categories``. A weight limit
    (``arc_maxweight_t``: the physical limits of :func:`weight_limit_t`, NaN for none) below the class's
    weight closes the road to it. ``tag_mask`` carries everything else compiled per class (access,
    one-way, height, length, barriers, turn restrictions).
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
