"""The vectorised reader and compiler give exactly the arrays of the straightforward implementation.

``compile_roads`` and ``read_osm`` work on whole arrays (chains by pointer jumping, twins by
hashed geometries, rows by one lexsort) for whole-city maps. They must not change a single bit:

* on hand-made and seeded random maps (pass-through loops, duplicate and reversed ways, barriers,
  turn restrictions via nodes and via ways, contraflow), their output equals the straightforward
  reference in :mod:`tests.roads.compile_reference` (the implementation before vectorisation);
* on the five shipped maps and the synthetic 10k city, the compiled arrays have the digests that
  main computed before the change (``DIGESTS_OFF``), and equal the reference.

The reference knows nothing of turn costs: it is compared with ``turn_costs="off"``, whose arrays
are the reference's plus an ``arc_turn`` of -1 everywhere (``off`` changes nothing else, bit for
bit). The default (``"signals"``) has its own digests (``DIGESTS``).
"""

from __future__ import annotations

import dataclasses
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dispatch.errors import MapError
from dispatch.progress import Progress, reporting
from dispatch.roads.compile import compile_roads, digest
from dispatch.roads.osm import RawRoads, read_osm, resolve_map
from dispatch.roads.profiles import NetworkSettings, network_settings
from tests.roads.compile_reference import reference_compile_roads, reference_read_osm

#: ``digest(arrays)`` of each map compiled with ``turn_costs="off"`` (its ``arc_turn`` left out),
#: as main computed them with the default settings at 67d9bf0 (before the vectorised compiler)
#: and before turn costs: ``off`` gives those arrays bit for bit.
DIGESTS_OFF = {
    "danang": "38529d85c2419953",
    "hcmc": "229d6b0e43191e95",
    "monaco": "cc97dcd9e5348836",
    "liechtenstein": "6073cb5c91d95c5d",
    "campo_grande": "e59c79c6d3f0a781",
    "city_10000_s1": "80f2c151f0aed09a",
}
#: ``digest(arrays)`` with the default settings (turn costs at signalised junctions). If a compile
#: rule or a profile default changes on purpose, the digests change with it: recompute them with
#: ``python tests/roads/test_compile.py``.
DIGESTS = {
    "danang": "ab7201cb36ad759c",
    "hcmc": "b152e3e67b2b31da",
    "monaco": "99384ac466b89332",
    "liechtenstein": "835bded4da579d74",
    "campo_grande": "64d4349a66cd0fad",
    "city_10000_s1": "f98b844a26493adb",
}


def _write_osm(
    path: Path,
    nodes: dict[int, tuple[float, float]],
    ways: list[tuple[int, list[int], dict[str, str]]],
    node_tags: dict[int, dict[str, str]] | None = None,
    relations: list[tuple[int, list[tuple[str, int, str]], dict[str, str]]] | None = None,
) -> Path:
    """An OSM XML file; relation members are ``(type "node"/"way", ref, role)``."""
    node_tags = node_tags or {}
    out = ['<?xml version="1.0" encoding="UTF-8"?>', '<osm version="0.6" generator="test">']
    for i, (lat, lon) in sorted(nodes.items()):
        tags = node_tags.get(i, {})
        if tags:
            out.append(f'  <node id="{i}" version="1" lat="{lat}" lon="{lon}">')
            out += [f'    <tag k="{k}" v="{v}"/>' for k, v in tags.items()]
            out.append("  </node>")
        else:
            out.append(f'  <node id="{i}" version="1" lat="{lat}" lon="{lon}"/>')
    for wid, refs, tags in ways:
        out.append(f'  <way id="{wid}" version="1">')
        out += [f'    <nd ref="{r}"/>' for r in refs]
        out += [f'    <tag k="{k}" v="{v}"/>' for k, v in tags.items()]
        out.append("  </way>")
    for rid, members, tags in relations or []:
        out.append(f'  <relation id="{rid}" version="1">')
        out += [f'    <member type="{t}" ref="{r}" role="{role}"/>' for t, r, role in members]
        out += [f'    <tag k="{k}" v="{v}"/>' for k, v in tags.items()]
        out.append("  </relation>")
    out.append("</osm>")
    path.write_text("\n".join(out) + "\n")
    return path


def _same_raw(a: RawRoads, b: RawRoads) -> None:
    for name, value in vars(b).items():
        got = getattr(a, name)
        if isinstance(value, np.ndarray):
            assert got.dtype == value.dtype and got.shape == value.shape, name
            assert np.array_equal(got, value, equal_nan=value.dtype.kind == "f"), name
        else:
            assert got == value, name
            if isinstance(value, dict):
                assert list(got.items()) == list(value.items()), name


def _off(settings: NetworkSettings | None = None) -> NetworkSettings:
    """The settings without turn costs (what the reference compiles)."""
    return dataclasses.replace(settings or network_settings(), turn_costs="off")


def _without_turns(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The arrays but ``arc_turn``, which must say "no costed turn" on every arc."""
    assert (arrays["arc_turn"] == -1).all()
    return {k: v for k, v in arrays.items() if k != "arc_turn"}


def _same_compiled(got: tuple[dict[str, np.ndarray], dict[str, Any]],
                   want: tuple[dict[str, np.ndarray], dict[str, Any]]) -> None:  # fmt: skip
    arrays, stats = _without_turns(got[0]), dict(got[1])
    assert stats.pop("turn_costs")["junctions"] == 0
    ref_arrays, ref_stats = want
    assert list(arrays) == list(ref_arrays)
    for name, ref in ref_arrays.items():
        a = arrays[name]
        assert a.dtype == ref.dtype and a.shape == ref.shape, name
        assert a.tobytes() == ref.tobytes(), name  # bit for bit (NaN payloads and -0.0 too)
    assert stats == ref_stats
    assert digest(arrays) == digest(ref_arrays)


def _check_against_reference(path: Path, settings: NetworkSettings | None = None) -> None:
    settings = _off(settings)
    try:
        want_raw = reference_read_osm(path)
    except MapError as exc:
        with pytest.raises(MapError) as err:
            read_osm(path)
        assert str(err.value) == str(exc)
        return
    raw = read_osm(path)
    _same_raw(raw, want_raw)
    try:
        want = reference_compile_roads(want_raw, settings)
    except (MapError, ValueError) as exc:  # e.g. no arc at all: both fail alike
        with pytest.raises(type(exc)) as err2:
            compile_roads(raw, settings)
        assert str(err2.value) == str(exc)
        return
    _same_compiled(compile_roads(raw, settings), want)


# --- hand-made maps ---------------------------------------------------------------------------

RES = {"highway": "residential"}
ONEWAY = {"highway": "primary", "oneway": "yes"}


def _ring(n: int, r: float = 0.001) -> dict[int, tuple[float, float]]:
    return {i + 1: (r * np.sin(2 * np.pi * i / n), r * np.cos(2 * np.pi * i / n)) for i in range(n)}


HAND_MADE: dict[str, dict[str, Any]] = {
    # a loop made only of pass-through nodes: cut at its lowest node
    "two_way_ring": {"nodes": _ring(6), "ways": [(1, [3, 4, 5, 6, 1, 2, 3], RES)]},
    "one_way_ring": {"nodes": _ring(5), "ways": [(1, [2, 3, 4, 5, 1, 2], ONEWAY)]},
    # the same ring drawn twice, once reversed: parallel arcs of equal length (sort ties), twins
    "duplicate_rings": {
        "nodes": _ring(5),
        "ways": [(1, [1, 2, 3, 4, 5, 1], RES), (2, [1, 5, 4, 3, 2, 1], RES)],
    },  # fmt: skip
    # a ring of two ways with a one-way half, and a spur: pass-throughs and contraflow
    "ring_and_spur": {
        "nodes": {**_ring(6), 7: (0.0, 0.003), 8: (0.0, 0.004)},
        "ways": [
            (1, [1, 2, 3, 4], RES),
            (2, [4, 5, 6, 1], ONEWAY),
            (3, [1, 7, 8], RES),
            (4, [8, 7], {"highway": "service", "service": "alley"}),
        ],
    },  # fmt: skip
    # a barrier on a through road, one at a junction, one at a dead end
    "barriers": {
        "nodes": {i: (0.0, 0.0005 * i) for i in range(1, 8)}
        | {8: (0.0005, 0.0015), 9: (0.001, 0.0015)},
        "ways": [(1, [1, 2, 3, 4, 5, 6, 7], RES), (2, [3, 8, 9], RES), (3, [9, 6], RES)],
        "node_tags": {
            2: {"barrier": "bollard"},
            3: {"barrier": "gate"},
            7: {"barrier": "wall"},
            8: {"barrier": "height_restrictor", "maxheight": "3.0"},
        },
    },  # fmt: skip
}


def _grid_restrictions() -> dict[str, Any]:
    """A 3 x 3 grid with no_left_turn via a node, only_straight_on, and a via-way U-turn ban."""
    nodes = {r * 3 + c + 1: (0.001 * r, 0.001 * c) for r in range(3) for c in range(3)}
    ways = [(10 + r, [r * 3 + 1, r * 3 + 2, r * 3 + 3], RES) for r in range(3)]
    ways += [(20 + c, [c + 1, c + 4, c + 7], RES) for c in range(3)]
    rel = [
        (100, [("way", 10, "from"), ("node", 2, "via"), ("way", 21, "to")],
         {"type": "restriction", "restriction": "no_left_turn"}),
        (101, [("way", 11, "from"), ("node", 5, "via"), ("way", 11, "to")],
         {"type": "restriction", "restriction": "only_straight_on"}),
        (102, [("way", 20, "from"), ("way", 11, "via"), ("way", 22, "to")],
         {"type": "restriction", "restriction": "no_u_turn", "except": "motorcycle"}),
        (103, [("way", 12, "from"), ("node", 8, "via"), ("way", 21, "to")],
         {"type": "restriction", "restriction:conditional": "no_left_turn @ (07:00-09:00)"}),
    ]  # fmt: skip
    return {"nodes": nodes, "ways": ways, "relations": rel,
            "node_tags": {5: {"barrier": "bollard"}}}  # fmt: skip


HAND_MADE["grid_restrictions"] = _grid_restrictions()


@pytest.mark.parametrize("name", sorted(HAND_MADE))
def test_hand_made_maps_compile_as_the_reference(name: str, tmp_path: Path) -> None:
    spec = HAND_MADE[name]
    path = _write_osm(tmp_path / f"{name}.osm", spec["nodes"], spec["ways"],
                      spec.get("node_tags"), spec.get("relations"))  # fmt: skip
    _check_against_reference(path)
    _check_against_reference(path, network_settings(profiles={"ambulance": {"contraflow": True}}))


def test_a_loop_of_pass_through_nodes_becomes_two_arcs_from_its_lowest_node(tmp_path: Path) -> None:
    """Worked by hand: a lone two-way ring of 6 nodes has no junction; it is cut at node 1 into
    one arc each way, whose geometries are each other's reverse (twins)."""
    spec = HAND_MADE["two_way_ring"]
    arrays, _ = compile_roads(read_osm(_write_osm(tmp_path / "r.osm", spec["nodes"], spec["ways"])))
    assert arrays["node_osmid"].tolist() == [1]
    assert arrays["arc_tail"].tolist() == [0, 0] and arrays["arc_head"].tolist() == [0, 0]
    geoms = [arrays["geom_node"][arrays["geom_ptr"][i] : arrays["geom_ptr"][i + 1]].tolist()
             for i in range(2)]  # fmt: skip
    assert sorted(geoms) == [[1, 2, 3, 4, 5, 6, 1], [1, 6, 5, 4, 3, 2, 1]]
    assert arrays["arc_twin"].tolist() == [1, 0]


def _random_map(seed: int) -> dict[str, Any]:
    """A seeded small city: a jittered grid, ways of random length and kind (one-ways, alleys,
    footways, duplicates and reversed duplicates, closed loops), barriers, restrictions."""
    rng = np.random.default_rng(seed)
    side = int(rng.integers(3, 7))
    nodes = {r * side + c + 1: (0.001 * r + rng.normal(0, 1e-4), 0.001 * c + rng.normal(0, 1e-4))
             for r in range(side) for c in range(side)}  # fmt: skip
    kinds = [RES, ONEWAY, {"highway": "primary", "oneway": "-1"},
             {"highway": "service", "service": "alley"}, {"highway": "footway"},
             {"highway": "tertiary", "oneway": "yes", "oneway:motorcycle": "no"},
             {"highway": "residential", "access": "private"}, {"highway": "residential", "maxheight": "3"}]  # fmt: skip
    ways: list[tuple[int, list[int], dict[str, str]]] = []
    wid = 1
    for _ in range(int(rng.integers(side, 4 * side))):
        r, c = (int(x) for x in rng.integers(0, side, 2))
        path = [r * side + c + 1]
        horizontal = rng.random() < 0.5
        for _ in range(int(rng.integers(1, side))):
            if horizontal:
                c += 1 if c + 1 < side else -1
            else:
                r += 1 if r + 1 < side else -1
            node = r * side + c + 1
            if node in path and node != path[0]:
                break
            path.append(node)
        if len(path) < 2:
            continue
        tags = dict(kinds[int(rng.integers(len(kinds)))])
        ways.append((wid, path, tags))
        wid += 1
        if rng.random() < 0.15:  # a duplicate way, sometimes reversed
            ways.append((wid, path[::-1] if rng.random() < 0.5 else list(path), dict(tags)))
            wid += 1
    if rng.random() < 0.5:  # a closed loop around one block
        a = int(rng.integers(0, side - 1)) * side + int(rng.integers(0, side - 1)) + 1
        ways.append((wid, [a, a + 1, a + 1 + side, a + side, a], RES))
        wid += 1
    barrier_kinds = ["bollard", "gate", "wall", "cycle_barrier", "lift_gate"]
    node_tags = {int(v): {"barrier": barrier_kinds[int(rng.integers(len(barrier_kinds)))]}
                 for v in rng.choice(list(nodes), size=int(rng.integers(0, 3)), replace=False)}  # fmt: skip
    rels: list[tuple[int, list[tuple[str, int, str]], dict[str, str]]] = []
    values = ["no_left_turn", "no_right_turn", "only_straight_on", "no_u_turn", "only_left_turn"]
    at: dict[int, list[int]] = {}
    for w, refs, _tags in ways:
        for v in refs:
            at.setdefault(v, []).append(w)
    for rid in range(int(rng.integers(0, 5))):
        v = int(rng.choice(list(at)))
        fw, tw = (int(x) for x in rng.choice(at[v], 2))
        tags = {"type": "restriction", "restriction": values[int(rng.integers(len(values)))]}
        members = [("way", fw, "from"), ("node", v, "via"), ("way", tw, "to")]
        if rng.random() < 0.3:  # via a way: from a way meeting its first node to one at its last
            w, refs, _ = ways[int(rng.integers(len(ways)))]
            f_ways, t_ways = at[refs[0]], at[refs[-1]]
            members = [("way", int(rng.choice(f_ways)), "from"), ("way", w, "via"),
                       ("way", int(rng.choice(t_ways)), "to")]  # fmt: skip
        rels.append((1000 + rid, members, tags))
    return {"nodes": nodes, "ways": ways, "node_tags": node_tags, "relations": rels}


@pytest.mark.parametrize("seed", range(40))
def test_random_maps_compile_as_the_reference(seed: int, tmp_path: Path) -> None:
    spec = _random_map(seed)
    path = _write_osm(tmp_path / "city.osm", spec["nodes"], spec["ways"], spec["node_tags"],
                      spec["relations"])  # fmt: skip
    _check_against_reference(path)
    if seed % 4 == 0:
        free = {"motorbike": {"obey_turn_restrictions": False}, "ambulance": {"contraflow": True}}
        _check_against_reference(path, network_settings(profiles=free))


# --- shipped maps and the synthetic city ------------------------------------------------------


@pytest.mark.parametrize("name", ["danang", "hcmc", "monaco", "liechtenstein", "campo_grande"])
def test_shipped_maps_compile_to_mains_arrays(name: str) -> None:
    raw = read_osm(resolve_map(name))
    got = compile_roads(raw, _off())
    assert digest(_without_turns(got[0]))[:16] == DIGESTS_OFF[name]
    _same_compiled(got, reference_compile_roads(raw))
    assert digest(compile_roads(raw)[0])[:16] == DIGESTS[name]
    if name in ("danang", "hcmc"):
        _same_raw(raw, reference_read_osm(resolve_map(name)))


def test_synthetic_city_compiles_to_mains_arrays(tmp_path: Path) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    from synth_city import generate

    path = tmp_path / "city.osm.pbf"
    generate(path, intersections=10_000, seed=1)
    raw = read_osm(path)
    got = compile_roads(raw, _off())
    assert digest(_without_turns(got[0]))[:16] == DIGESTS_OFF["city_10000_s1"]
    _same_compiled(got, reference_compile_roads(raw))
    assert digest(compile_roads(raw)[0])[:16] == DIGESTS["city_10000_s1"]


def test_row_sums_of_a_block_round_as_the_sum_of_each_row() -> None:
    """The compiler sums the segment lengths of all chains of one size as a 2-D block; numpy must
    round each row as it rounds the row's own 1-D sum (pairwise summation over the same blocks)."""
    rng = np.random.default_rng(0)
    for size in [*range(1, 140), 255, 256, 257, 1000, 4097]:
        block = rng.random((7, size)) * 500.0
        rows = [np.sum(block[i].copy()) for i in range(7)]
        assert block.sum(axis=1).tolist() == rows, size


# --- progress ---------------------------------------------------------------------------------


def test_reading_and_compiling_report_progress(tmp_path: Path) -> None:
    seen: list[tuple[str, int | None, str]] = []
    done: dict[str, int] = {}

    class Count:
        def __init__(self, name: str) -> None:
            self.name = name

        def update(self, n: int = 1) -> None:
            done[self.name] = done.get(self.name, 0) + n

    @contextmanager
    def reporter(description: str, total: int | None, unit: str) -> Iterator[Progress]:
        seen.append((description, total, unit))
        yield Count(description)

    raw = read_osm(resolve_map("hcmc"))  # nothing installed: silent, and the same result
    with reporting(reporter):
        again = read_osm(resolve_map("hcmc"))
        compile_roads(again)
    _same_raw(again, raw)
    totals = {d: total for d, total, _ in seen}
    assert "reading OSM ways" in totals  # total unknown: the count of ways read is shown
    assert totals["compiling the road network"] == done["compiling the road network"] == 6


if __name__ == "__main__":  # print the digests of DIGESTS for the current code
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    from synth_city import generate

    with tempfile.TemporaryDirectory() as tmp:
        city = Path(tmp) / "city.osm.pbf"
        generate(city, intersections=10_000, seed=1)
        for map_name in DIGESTS:
            source = city if map_name.startswith("city_") else resolve_map(map_name)
            print(f'    "{map_name}": "{digest(compile_roads(read_osm(source))[0])[:16]}",')
