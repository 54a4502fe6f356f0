"""Run cards: which units each incident type needs, loaded from TOML.

A run card lists requirements: a requirement *class* and a count. A requirement class is a vehicle
class (``fire_engine``) or a configured alias that several vehicle classes may fill
(``engine = ["fire_engine", "ladder"]``: any engine). A requirement marked ``only_if_first`` is an
optional first responder: it is sent only when it arrives before every mandatory unit of the card
(e.g. a motorbike first responder for a cardiac arrest).

The file also sets, per priority, the target response time and the weight used by the optimiser.

TOML form (``scenarios/run_cards.toml`` holds the defaults)::

    [priorities]
    1 = { target_s = 480, weight = 4 }
    2 = { target_s = 900, weight = 2 }
    3 = { target_s = 1800, weight = 1 }

    [compatibility]
    engine = ["fire_engine", "ladder"]

    [run_cards.structure_fire]
    units = [{ class = "fire_engine", count = 2 }, { class = "ladder", count = 1 },
             { class = "ambulance", count = 1 }]

    [run_cards.cardiac_arrest]
    units = [{ class = "ambulance", count = 1 },
             { class = "motorbike", count = 1, only_if_first = true }]

Every vehicle class is compatible with itself; an entry in ``[compatibility]`` under a vehicle-class
name replaces that default (``fire_engine = ["fire_engine", "ladder"]`` lets a ladder fill an engine
slot).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from dispatch.errors import DispatchError
from dispatch.model import (
    DEFAULT_PRIORITY_WEIGHTS,
    DEFAULT_TARGETS_S,
    INCIDENT_TYPES,
    PRIORITIES,
    VEHICLE_CLASSES,
)

__all__ = [
    "DEFAULT_PRIORITIES",
    "BUILTIN_RUN_CARDS",
    "DEFAULT_RUN_CARDS_PATH",
    "PriorityLevel",
    "Requirement",
    "RunCard",
    "RunCardError",
    "RunCards",
    "default_run_cards",
    "load_run_cards",
]

#: The default run-card file shipped with the project.
DEFAULT_RUN_CARDS_PATH = Path(__file__).resolve().parents[2] / "scenarios" / "run_cards.toml"


def _u(cls: str, count: int = 1, *, first: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {"class": cls, "count": count}
    if first:
        out["only_if_first"] = True
    return out


_FIRE2_LADDER_AMB = [_u("fire_engine", 2), _u("ladder"), _u("ambulance")]

#: The built-in default table, identical to ``scenarios/run_cards.toml`` (a test checks it).
#: ILLUSTRATIVE unit mixes written for this project, not an official run card of any service.
BUILTIN_RUN_CARDS: dict[str, Any] = {
    "priorities": {
        str(p): {"target_s": DEFAULT_TARGETS_S[p], "weight": DEFAULT_PRIORITY_WEIGHTS[p]}
        for p in PRIORITIES
    },
    "compatibility": {"engine": ["fire_engine", "ladder"]},
    "run_cards": {
        "structure_fire": {"units": _FIRE2_LADDER_AMB},
        "high_rise_fire": {"units": [_u("fire_engine", 3), _u("ladder"), _u("ambulance")]},
        "vehicle_fire": {"units": [_u("fire_engine")]},
        "rescue": {"units": [_u("fire_engine"), _u("ambulance")]},
        "water_rescue": {"units": [_u("fire_engine"), _u("ambulance")]},
        "hazmat": {"units": [_u("fire_engine", 2), _u("ambulance")]},
        "fire_alarm": {"units": [_u("engine")]},
        "cardiac_arrest": {"units": [_u("ambulance"), _u("motorbike", first=True)]},
        "stroke": {"units": [_u("ambulance")]},
        "trauma": {"units": [_u("ambulance"), _u("motorbike", first=True)]},
        "burns": {"units": [_u("ambulance")]},
        "paediatric": {"units": [_u("ambulance")]},
        "general_medical": {"units": [_u("ambulance")]},
        "minor_medical": {"units": [_u("ambulance")]},
        "fire_with_injuries": {"units": [_u("fire_engine", 2), _u("ladder"), _u("ambulance", 2)]},
        "traffic_crash_entrapment": {
            "units": [_u("fire_engine"), _u("ambulance"), _u("motorbike", first=True)]
        },
        "building_collapse": {"units": [_u("fire_engine", 2), _u("ladder"), _u("ambulance", 2)]},
    },
}


class RunCardError(DispatchError):
    """A run-card table that cannot be used (unknown class or type, bad count or priority)."""


@dataclass(frozen=True)
class PriorityLevel:
    """Target and optimiser weight of one priority.

    Parameters
    ----------
    priority : int
        1, 2 or 3.
    target_s : float
        Target response time (turnout + travel) in seconds.
    weight : float
        Weight of this priority's response times in the assignment objective (> 0).
    """

    priority: int
    target_s: float
    weight: float

    def __post_init__(self) -> None:
        if self.priority not in (1, 2, 3):
            raise RunCardError(f"priority must be 1, 2 or 3, got {self.priority!r}")
        for name in ("target_s", "weight"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise RunCardError(
                    f"priority {self.priority}: {name} must be a number, got {value!r}"
                )
            if not (math.isfinite(value) and value > 0):
                raise RunCardError(f"priority {self.priority}: {name} must be > 0, got {value!r}")
            object.__setattr__(self, name, float(value))


#: Default priorities. P1 target 480 s is the NFPA 1710 full-first-alarm travel objective (480 s),
#: used here as a total response target; the P2/P3 targets (900 s, 1800 s) and the weights 4/2/1
#: are ILLUSTRATIVE defaults, not Vietnamese regulations: set yours in the run-card file.
DEFAULT_PRIORITIES: dict[int, PriorityLevel] = {
    p: PriorityLevel(p, DEFAULT_TARGETS_S[p], DEFAULT_PRIORITY_WEIGHTS[p]) for p in PRIORITIES
}


@dataclass(frozen=True)
class Requirement:
    """One line of a run card.

    Parameters
    ----------
    cls : str
        Requirement class: a vehicle class or an alias of :attr:`RunCards.compatibility`.
    count : int
        Number of units needed (1..20).
    accepts : tuple of str
        Vehicle classes that may fill it, in order of preference (resolved from the compatibility).
    only_if_first : bool
        Optional first responder: sent only if it arrives before every mandatory unit.
    """

    cls: str
    count: int
    accepts: tuple[str, ...]
    only_if_first: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.count, bool) or not isinstance(self.count, int):
            raise RunCardError(
                f"requirement {self.cls!r}: count must be an integer, got {self.count!r}"
            )
        if not 1 <= self.count <= 20:
            raise RunCardError(
                f"requirement {self.cls!r}: count must be in 1..20, got {self.count}"
            )
        if not self.accepts:
            raise RunCardError(f"requirement {self.cls!r}: no vehicle class accepted")
        for v in self.accepts:
            if v not in VEHICLE_CLASSES:
                raise RunCardError(f"requirement {self.cls!r}: unknown vehicle class {v!r}")

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        out: dict[str, Any] = {
            "class": self.cls,
            "count": self.count,
            "accepts": list(self.accepts),
        }
        if self.only_if_first:
            out["only_if_first"] = True
        return out


@dataclass(frozen=True)
class RunCard:
    """The unit mix an incident type needs.

    Parameters
    ----------
    incident_type : str
        A key of :data:`dispatch.decide.incidents.INCIDENT_TYPES`.
    requirements : tuple of Requirement
        At least one mandatory requirement.
    """

    incident_type: str
    requirements: tuple[Requirement, ...]

    def __post_init__(self) -> None:
        if self.incident_type not in INCIDENT_TYPES:
            raise RunCardError(
                f"run card for unknown incident type {self.incident_type!r} "
                f"(known: {', '.join(INCIDENT_TYPES)})"
            )
        if not any(not r.only_if_first for r in self.requirements):
            raise RunCardError(
                f"run card {self.incident_type!r}: needs at least one mandatory requirement"
            )

    @property
    def mandatory(self) -> tuple[Requirement, ...]:
        """Requirements that must be filled."""
        return tuple(r for r in self.requirements if not r.only_if_first)

    @property
    def optional(self) -> tuple[Requirement, ...]:
        """Optional first-responder requirements."""
        return tuple(r for r in self.requirements if r.only_if_first)

    @property
    def n_units(self) -> int:
        """Number of mandatory units."""
        return sum(r.count for r in self.mandatory)

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "incident_type": self.incident_type,
            "units": [r.to_dict() for r in self.requirements],
        }


@dataclass(frozen=True)
class RunCards:
    """A run-card table with its class compatibility and priority levels.

    Parameters
    ----------
    cards : Mapping of str to RunCard
        Run card per incident type.
    compatibility : Mapping of str to tuple of str
        Requirement class -> vehicle classes that may fill it.
    priorities : Mapping of int to PriorityLevel
        Targets and weights for priorities 1, 2, 3.
    source : str
        Where the table came from (file path or ``"built-in"``).
    """

    cards: Mapping[str, RunCard]
    compatibility: Mapping[str, tuple[str, ...]]
    priorities: Mapping[int, PriorityLevel]
    source: str = ""

    def __post_init__(self) -> None:
        if set(self.priorities) != {1, 2, 3}:
            raise RunCardError(f"priorities must define 1, 2 and 3, got {sorted(self.priorities)}")

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled with plain dicts (the shared built-in table's mappings are read-only views)."""
        return (
            RunCards,
            (dict(self.cards), dict(self.compatibility), dict(self.priorities), self.source),
        )

    def card(self, incident_type: str) -> RunCard:
        """Run card of `incident_type`.

        Raises
        ------
        RunCardError
            If the table has no card for it.
        """
        try:
            return self.cards[incident_type]
        except KeyError:
            raise RunCardError(
                f"no run card for incident type {incident_type!r} in {self.source or 'the table'}"
            ) from None

    def target_s(self, priority: int) -> float:
        """Target response time of `priority`, seconds."""
        return self.priorities[priority].target_s

    def weight(self, priority: int) -> float:
        """Objective weight of `priority`."""
        return self.priorities[priority].weight

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "priorities": {
                str(p): {"target_s": lv.target_s, "weight": lv.weight}
                for p, lv in sorted(self.priorities.items())
            },
            "compatibility": {k: list(v) for k, v in self.compatibility.items()},
            "run_cards": {k: c.to_dict()["units"] for k, c in self.cards.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "") -> RunCards:
        """Build a table from the parsed TOML form (see the module docstring).

        Raises
        ------
        RunCardError
            On an unknown section, class or incident type, or a bad count or priority.
        """
        where = source or "run cards"
        unknown = set(data) - {"priorities", "compatibility", "run_cards"}
        if unknown:
            raise RunCardError(f"{where}: unknown section(s) {sorted(unknown)}")
        # priorities
        prios = dict(DEFAULT_PRIORITIES)
        raw_p = data.get("priorities", {})
        if not isinstance(raw_p, Mapping):
            raise RunCardError(f"{where}: [priorities] must be a table")
        for key, val in raw_p.items():
            if str(key) not in ("1", "2", "3"):
                raise RunCardError(f"{where}: priorities: key must be 1, 2 or 3, got {key!r}")
            if not isinstance(val, Mapping) or set(val) - {"target_s", "weight"}:
                raise RunCardError(
                    f"{where}: priorities.{key}: expected {{target_s = ..., weight = ...}}, got {val!r}"
                )
            p = int(key)
            try:
                prios[p] = PriorityLevel(
                    p, val.get("target_s", prios[p].target_s), val.get("weight", prios[p].weight)
                )
            except RunCardError as exc:
                raise RunCardError(f"{where}: {exc}") from None
        # compatibility
        compat: dict[str, tuple[str, ...]] = {v: (v,) for v in VEHICLE_CLASSES}
        raw_c = data.get("compatibility", {})
        if not isinstance(raw_c, Mapping):
            raise RunCardError(f"{where}: [compatibility] must be a table")
        for name, classes in raw_c.items():
            if isinstance(classes, str):
                classes = [classes]
            if not isinstance(classes, list) or not classes:
                raise RunCardError(
                    f"{where}: compatibility.{name}: expected a list of vehicle classes, got {classes!r}"
                )
            for v in classes:
                if v not in VEHICLE_CLASSES:
                    raise RunCardError(
                        f"{where}: compatibility.{name}: unknown vehicle class {v!r} "
                        f"(known: {', '.join(VEHICLE_CLASSES)})"
                    )
            compat[str(name)] = tuple(dict.fromkeys(classes))
        # cards
        raw_cards = data.get("run_cards", {})
        if not isinstance(raw_cards, Mapping) or not raw_cards:
            raise RunCardError(f"{where}: [run_cards] is missing or empty")
        cards: dict[str, RunCard] = {}
        for itype, body in raw_cards.items():
            if itype not in INCIDENT_TYPES:
                raise RunCardError(
                    f"{where}: run_cards.{itype}: unknown incident type {itype!r} "
                    f"(known: {', '.join(INCIDENT_TYPES)})"
                )
            if not isinstance(body, Mapping) or set(body) != {"units"}:
                raise RunCardError(f"{where}: run_cards.{itype}: expected units = [ ... ]")
            reqs = []
            items = body["units"]
            if not isinstance(items, list) or not items:
                raise RunCardError(f"{where}: run_cards.{itype}.units: expected a non-empty list")
            for j, item in enumerate(items):
                loc = f"{where}: run_cards.{itype}.units[{j}]"
                if not isinstance(item, Mapping) or "class" not in item:
                    raise RunCardError(
                        f"{loc}: expected {{class = ..., count = ...}}, got {item!r}"
                    )
                extra = set(item) - {"class", "count", "only_if_first"}
                if extra:
                    raise RunCardError(f"{loc}: unknown key(s) {sorted(extra)}")
                rclass = item["class"]
                if rclass not in compat:
                    raise RunCardError(
                        f"{loc}: unknown unit class {rclass!r} (known: {', '.join(sorted(compat))})"
                    )
                only = item.get("only_if_first", False)
                if not isinstance(only, bool):
                    raise RunCardError(f"{loc}: only_if_first must be true or false, got {only!r}")
                try:
                    reqs.append(Requirement(rclass, item.get("count", 1), compat[rclass], only))
                except RunCardError as exc:
                    raise RunCardError(f"{loc}: {exc}") from None
            try:
                cards[itype] = RunCard(itype, tuple(reqs))
            except RunCardError as exc:
                raise RunCardError(f"{where}: {exc}") from None
        return cls(cards=cards, compatibility=compat, priorities=prios, source=where)


def load_run_cards(path: str | Path | None = None) -> RunCards:
    """Load a run-card table from TOML (``None``: the built-in defaults).

    Raises
    ------
    InputFileError
        On malformed TOML (line and column named).
    RunCardError
        On an unknown class or incident type, or bad values.
    """
    if path is None:
        return default_run_cards()
    from dispatch.io.text import display_name, read_toml

    data = read_toml(path, "run-card")
    return RunCards.from_dict(data, source=display_name(path))


#: The built-in table read once: (a copy of the content it was read from, the table).
_builtin: tuple[dict[str, Any], RunCards] | None = None


def default_run_cards() -> RunCards:
    """The built-in default table (same content as ``scenarios/run_cards.toml``).

    Read once and shared (every recommendation without a table of its own asks for it): read-only
    mappings (a ``TypeError`` on assignment), read again only if :data:`BUILTIN_RUN_CARDS` was
    changed since (compared by content).
    """
    global _builtin
    hit = _builtin
    if hit is not None and hit[0] == BUILTIN_RUN_CARDS:
        return hit[1]
    read = RunCards.from_dict(BUILTIN_RUN_CARDS, source="built-in run cards")
    cards = RunCards(
        cards=MappingProxyType(dict(read.cards)),
        compatibility=MappingProxyType(dict(read.compatibility)),
        priorities=MappingProxyType(dict(read.priorities)),
        source=read.source,
    )
    _builtin = (copy.deepcopy(BUILTIN_RUN_CARDS), cards)
    return cards
