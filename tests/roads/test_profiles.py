"""Tag parsing and per-class rules of dispatch.roads.profiles, by hand."""

from __future__ import annotations

import pytest

from dispatch.errors import DispatchError, VehicleError
from dispatch.roads.profiles import (
    CATEGORY_INDEX,
    LINK_SPEED_KMH,
    classify_way,
    network_settings,
    node_block_mask,
    parse_metres,
    parse_tonnes,
    restriction_rules,
    weight_limit_t,
)

AMB, FIRE, LADDER, MOTO = 1, 2, 4, 8


@pytest.mark.parametrize(
    ("text", "metres"),
    [("3", 3.0), ("2.5 m", 2.5), ("3,5", 3.5), ("12'6\"", 3.81), ("12 ft", 3.6576), ("7'", 2.1336),
     ("6 in", 0.1524), ("3.8;4.2", 3.8), ("none", None), ("default", None), ("narrow", None),
     (None, None)],
)  # fmt: skip
def test_parse_metres(text: str | None, metres: float | None) -> None:
    got = parse_metres(text)
    assert got == (None if metres is None else pytest.approx(metres))


@pytest.mark.parametrize(
    ("text", "tonnes"),
    [("10", 10.0), ("3.5 t", 3.5), ("7500 kg", 7.5), ("10000 lbs", 4.5359237), ("5 st", 4.5359237),
     ("3,5", 3.5), ("none", None), ("heavy", None), ("0", None)],
)  # fmt: skip
def test_parse_tonnes(text: str, tonnes: float | None) -> None:
    got = parse_tonnes(text)
    assert got == (None if tonnes is None else pytest.approx(tonnes))


def test_weight_rule_bridges_and_ratings_apply_street_signs_do_not() -> None:
    assert weight_limit_t({"maxweight": "2.5"}) == (None, 2.5)  # a truck-ban sign on a street
    assert weight_limit_t({"maxweight": "10", "bridge": "yes"}) == (10.0, None)
    assert weight_limit_t({"maxweight": "10", "man_made": "bridge"}) == (10.0, None)
    assert weight_limit_t({"maxweight": "10", "bridge": "no"}) == (None, 10.0)
    assert weight_limit_t({"maxweightrating": "7500 kg"}) == (7.5, None)
    assert weight_limit_t({"maxweight:physical": "12"}) == (12.0, None)


def test_classify_directions_per_class() -> None:
    r = classify_way({"highway": "secondary", "oneway": "yes", "oneway:motorcycle": "no"})
    assert r is not None and (r.fwd_mask, r.bwd_mask, r.open_mask) == (15, MOTO, 15)
    r = classify_way({"highway": "residential", "oneway:motor_vehicle": "-1"})
    assert r is not None and (r.fwd_mask, r.bwd_mask) == (0, 15)
    r = classify_way({"highway": "residential", "oneway": "yes", "oneway:hgv": "no"})
    assert r is not None and r.bwd_mask == FIRE | LADDER
    r = classify_way({"highway": "residential", "junction": "roundabout"})
    assert r is not None and (r.fwd_mask, r.bwd_mask) == (15, 0)
    r = classify_way(
        {"highway": "residential", "vehicle:backward": "no", "motorcycle:backward": "yes"}
    )
    assert r is not None and (r.fwd_mask, r.bwd_mask) == (15, MOTO)
    assert classify_way({"highway": "residential", "oneway": "reversible"}) is None
    r = classify_way({"highway": "residential", "oneway": "alternating"})
    assert r is not None and (r.fwd_mask, r.bwd_mask) == (15, 15)


def test_classify_closures_and_restricted_access() -> None:
    assert classify_way({"highway": "residential", "smoothness": "impassable"}) is None
    assert classify_way({"highway": "residential", "construction": "yes"}) is None
    assert classify_way({"highway": "residential", "construction": "minor"}) is not None
    r = classify_way({"highway": "service", "service": "alley", "motorcar": "destination"})
    assert r is not None and r.restricted_mask == AMB | FIRE | LADDER and r.fwd_mask == 15
    r = classify_way({"highway": "residential", "access": "private"})
    assert r is not None and r.restricted_mask == 15  # kept, slowed: never dropped
    r = classify_way({"highway": "residential", "access": "no"})
    assert r is None
    r = classify_way({"highway": "residential", "access": "no", "emergency": "yes"})
    assert r is not None and r.fwd_mask == 15 and r.restricted_mask == 0


def test_classify_speeds_and_dimensions() -> None:
    r = classify_way({"highway": "primary", "maxspeed": "50", "maxspeed:backward": "30"})
    assert r is not None and (r.maxspeed_fwd_kmh, r.maxspeed_bwd_kmh) == (50.0, 30.0)
    r = classify_way({"highway": "trunk_link"})
    assert r is not None and r.maxspeed_fwd_kmh == LINK_SPEED_KMH["trunk"]
    assert r.category == CATEGORY_INDEX["trunk"]
    r = classify_way({"highway": "residential", "maxwidth": "2.2", "width": "5", "maxheight": "3.5",
                      "maxheight:physical": "3.2", "maxlength": "10"})  # fmt: skip
    assert r is not None
    assert r.width_m == pytest.approx(2.7)  # maxwidth 2.2 + 0.5 m clearance, below the road width
    assert (r.maxheight_m, r.maxlength_m) == (3.2, 10.0)


@pytest.mark.parametrize(
    ("tags", "mask"),
    [({"barrier": "bollard"}, AMB | FIRE | LADDER), ({"barrier": "wall"}, 15),
     ({"barrier": "yes"}, 15), ({"barrier": "gate"}, 0), ({"barrier": "toll_booth"}, 0),
     ({"barrier": "kerb"}, 15), ({"barrier": "kerb", "kerb": "flush"}, 0),
     ({"barrier": "gate", "locked": "yes"}, 15),
     ({"barrier": "gate", "locked": "yes", "emergency": "yes"}, 0),
     ({"barrier": "lift_gate", "access": "no", "motorcycle": "yes"}, AMB | FIRE | LADDER),
     ({"barrier": "bollard", "hgv": "yes"}, AMB), ({"access": "no"}, 15),
     ({"access": "private"}, 0), ({"highway": "traffic_signals"}, 0)],
)  # fmt: skip
def test_node_block_mask(tags: dict[str, str], mask: int) -> None:
    assert node_block_mask(tags) == mask


def test_restriction_rules_per_class() -> None:
    assert restriction_rules({"restriction": "no_left_turn"}) == {"no": 15, "only": 0}
    assert restriction_rules({"restriction": "only_right_turn", "except": "psv;motorcycle"}) == {
        "no": 0, "only": AMB | FIRE | LADDER}  # fmt: skip
    assert restriction_rules({"restriction:motorcar": "no_u_turn"}) == {"no": AMB, "only": 0}
    # the most specific key wins for its class
    assert restriction_rules(
        {"restriction": "no_left_turn", "restriction:motorcycle": "only_left_turn"}
    ) == {"no": 7, "only": MOTO}
    assert restriction_rules({"restriction": "no_entry", "except": "emergency"}) == {
        "no": 0,
        "only": 0,
    }
    assert restriction_rules({"restriction:conditional": "no_left_turn @ (Mo-Fr)"}) == {
        "no": 0,
        "only": 0,
    }


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"profiles": {"ambulance": 5}}, r"profiles\['ambulance'\]=5 must be a mapping"),
     ({"profiles": 5}, r"profiles=5 must be a mapping"),
     ({"profiles": {"tank": {}}}, r"unknown vehicle class 'tank'"),
     ({"profiles": {"ambulance": {"height_m": "tall"}}}, r"height_m='tall' must be a positive"),
     ({"profiles": {"ambulance": {"length_m": True}}}, r"length_m=True must be a positive"),
     ({"profiles": {"ambulance": {"obey_turn_restrictions": "no"}}}, r"must be true or false"),
     ({"profiles": {"ambulance": {"excluded_categories": "track"}}}, r"must be a list of names"),
     ({"default_speed_kmh": [1, 2]}, r"default_speed_kmh=\[1, 2\] must be a mapping"),
     ({"snap_tolerance_m": True}, r"snap_tolerance_m=True must be a positive number")],
)  # fmt: skip
def test_network_settings_wrong_types_name_the_argument(kwargs: dict, match: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(VehicleError, match=match) as info:
        network_settings(**kwargs)
    assert isinstance(info.value, DispatchError) and "\n" not in str(info.value)


def test_dimension_overrides_change_the_cache_key() -> None:
    a = network_settings()
    b = network_settings(profiles={"ladder": {"height_m": 4.2}})
    assert a.key() != b.key() and b.profiles["ladder"].height_m == 4.2
