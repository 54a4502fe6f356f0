"""Run-card table: TOML loading, class compatibility, priorities, bad tables."""

from __future__ import annotations

from pathlib import Path

import pytest

from dispatch.decide.incidents import INCIDENT_TYPES
from dispatch.decide.runcards import (
    BUILTIN_RUN_CARDS,
    RunCardError,
    RunCards,
    default_run_cards,
    load_run_cards,
)
from dispatch.errors import InputFileError

ROOT = Path(__file__).parents[2]
DATA = Path(__file__).parents[1] / "data"


def test_scenario_file_equals_builtin_defaults():
    file_cards = load_run_cards(ROOT / "scenarios" / "run_cards.toml")
    assert file_cards.to_dict() == default_run_cards().to_dict()
    assert load_run_cards(None).to_dict() == RunCards.from_dict(BUILTIN_RUN_CARDS).to_dict()


def test_every_incident_type_has_a_default_card():
    cards = default_run_cards()
    assert set(cards.cards) == set(INCIDENT_TYPES)


def test_structure_fire_card_and_compatibility():
    cards = default_run_cards()
    card = cards.card("structure_fire")
    assert [(r.cls, r.count) for r in card.requirements] == [
        ("fire_engine", 2),
        ("ladder", 1),
        ("ambulance", 1),
    ]
    assert card.n_units == 4
    alarm = cards.card("fire_alarm").requirements[0]
    assert alarm.cls == "engine" and alarm.accepts == ("fire_engine", "ladder")
    cardiac = cards.card("cardiac_arrest")
    assert [r.cls for r in cardiac.optional] == ["motorbike"]
    joint = cards.card("traffic_crash_entrapment")
    assert {r.cls for r in joint.mandatory} == {"fire_engine", "ambulance"}


def test_priorities_defaults_and_override():
    cards = default_run_cards()
    assert cards.target_s(1) == 480.0 and cards.weight(1) == 4.0 and cards.weight(3) == 1.0
    custom = RunCards.from_dict(
        {
            "priorities": {"1": {"target_s": 600}},
            "run_cards": {"stroke": {"units": [{"class": "ambulance"}]}},
        }
    )
    assert custom.target_s(1) == 600.0 and custom.weight(1) == 4.0


@pytest.mark.parametrize(
    ("path", "error", "match"),
    [
        ("bad_run_card_class/run_cards.toml", RunCardError, r"units\[1\]: unknown unit class 'helicopter'"),
        ("bad_run_card_type/run_cards.toml", RunCardError, "unknown incident type 'alien_landing'"),
        ("bad_run_card_toml/run_cards.toml", InputFileError, r"malformed TOML: .*line 3"),
    ],
)  # fmt: skip
def test_bad_tables(path, error, match):
    with pytest.raises(error, match=match) as exc:
        load_run_cards(DATA / path)
    assert "\n" not in str(exc.value)


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ({"run_cards": {}}, "missing or empty"),
        ({"run_cards": {"stroke": {"units": [{"class": "ambulance", "count": 0}]}}}, "count must be in 1..20"),
        ({"run_cards": {"stroke": {"units": [{"class": "ambulance", "count": "two"}]}}}, "count must be an integer"),
        ({"run_cards": {"stroke": {"units": [{"class": "motorbike", "only_if_first": True}]}}}, "at least one mandatory"),
        ({"compatibility": {"engine": ["fire_engine", "tank"]}, "run_cards": {}}, "unknown vehicle class 'tank'"),
        ({"priorities": {"4": {"weight": 1}}, "run_cards": {}}, "key must be 1, 2 or 3"),
        ({"priorities": {"1": {"weight": -1}}, "run_cards": {}}, "weight must be > 0"),
        ({"extras": {}}, r"unknown section\(s\) \['extras'\]"),
    ],
)  # fmt: skip
def test_bad_dicts(data, match):
    with pytest.raises(RunCardError, match=match):
        RunCards.from_dict(data)


def test_card_lookup_error():
    cards = RunCards.from_dict({"run_cards": {"stroke": {"units": [{"class": "ambulance"}]}}})
    with pytest.raises(RunCardError, match="no run card for incident type 'trauma'"):
        cards.card("trauma")


def test_builtin_table_read_once_shared_read_only_and_picklable(monkeypatch) -> None:
    import copy
    import pickle

    import dispatch.decide.runcards as rc

    a = default_run_cards()
    assert default_run_cards() is a  # read once
    with pytest.raises(TypeError):
        a.cards["stroke"] = a.cards["trauma"]  # type: ignore[index]
    back = pickle.loads(pickle.dumps(a))
    assert back == a and back.to_dict() == a.to_dict() and type(back.cards) is dict
    assert copy.deepcopy(a).to_dict() == a.to_dict()
    # a changed built-in content is read again (compared by content, not identity)
    changed = copy.deepcopy(rc.BUILTIN_RUN_CARDS)
    changed["run_cards"]["stroke"] = {"units": [{"class": "ambulance", "count": 2}]}
    monkeypatch.setattr(rc, "BUILTIN_RUN_CARDS", changed)
    b = default_run_cards()
    assert b is not a and b.card("stroke").n_units == 2
    monkeypatch.undo()
    assert default_run_cards().card("stroke").n_units == 1
