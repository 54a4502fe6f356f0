"""A seeded synthetic city written as OSM PBF, for scale benchmarks that run offline.

Run from the repository root::

    python benchmarks/synth_city.py --intersections 80000 --seed 1 --out /tmp/city80k.osm.pbf

The city is a jittered street grid with the variety of a real one (all of it SYNTHETIC, no real
place): arterials (``primary``, 50 km/h, two-way) every ``arterial_every`` lines (about 1 km at the
default 110 m block), secondary collectors halfway between them, residential streets elsewhere
(about a fifth of them one-way, alternating direction), narrow alleys (``service=alley``,
``width=2``) cutting some blocks in two, a few segments missing (dead ends and detours), and a
shape node in the middle of some segments (a pass-through node, as OSM draws curved streets).
Streets are cut into ways of a few blocks each, as mappers draw them. The same seed and size give
the same file byte for byte.

``dispatch.load_network(path)`` reads it like any extract (PBF through pyosmium).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

import numpy as np

#: Centre of the synthetic city (near Da Nang, so the time zone and VN:urban limits apply alike).
CENTRE_LAT, CENTRE_LON = 16.05, 108.20
METRES_PER_DEG_LAT = 111_195.0


def generate(
    path: str | os.PathLike[str],
    *,
    intersections: int,
    seed: int = 1,
    block_m: float = 110.0,
    arterial_every: int = 9,
    oneway_share: float = 0.2,
    alley_share: float = 0.15,
    missing_share: float = 0.04,
    shape_share: float = 0.3,
    way_blocks: int = 6,
) -> dict[str, int]:
    """Write a synthetic city of about ``intersections`` grid nodes to ``path`` (``.osm.pbf``).

    Returns counts: ``nodes`` (all OSM nodes written), ``ways``, ``grid_nodes``.
    """
    import osmium
    from osmium.osm.mutable import Node, Way

    side = max(2, round(math.sqrt(intersections)))
    rng = np.random.default_rng(seed)
    m_per_deg_lon = METRES_PER_DEG_LAT * math.cos(math.radians(CENTRE_LAT))
    jitter = rng.normal(0.0, 0.08 * block_m, size=(side, side, 2))
    ii, jj = np.meshgrid(np.arange(side), np.arange(side), indexing="ij")
    north_m = (ii - side / 2) * block_m + jitter[..., 0]
    east_m = (jj - side / 2) * block_m + jitter[..., 1]
    lat = CENTRE_LAT + north_m / METRES_PER_DEG_LAT
    lon = CENTRE_LON + east_m / m_per_deg_lon

    def grid_id(i: int, j: int) -> int:
        return 1 + i * side + j

    next_node = side * side + 1
    extra_nodes: list[tuple[int, float, float]] = []
    ways: list[tuple[list[int], dict[str, str]]] = []

    def line_tags(k: int) -> dict[str, str]:
        if k % arterial_every == 0:
            return {"highway": "primary", "maxspeed": "50", "lanes": "4"}
        if k % arterial_every == arterial_every // 2:
            return {"highway": "secondary", "maxspeed": "40"}
        tags = {"highway": "residential"}
        if rng.random() < oneway_share:
            tags["oneway"] = "yes" if k % 2 else "-1"
        return tags

    # Streets: rows (i fixed, j varies) and columns (j fixed, i varies).
    for horizontal in (True, False):
        for k in range(side):
            tags = line_tags(k)
            local = tags["highway"] == "residential"
            current: list[int] = []
            for t in range(side):
                i, j = (k, t) if horizontal else (t, k)
                node = grid_id(i, j)
                if current and local and rng.random() < missing_share:
                    if len(current) > 1:
                        ways.append((current, tags))
                    current = [node]
                    continue
                if current and rng.random() < shape_share:
                    pi, pj = (k, t - 1) if horizontal else (t - 1, k)
                    mlat = (lat[pi, pj] + lat[i, j]) / 2 + rng.normal(0, 5) / METRES_PER_DEG_LAT
                    mlon = (lon[pi, pj] + lon[i, j]) / 2 + rng.normal(0, 5) / m_per_deg_lon
                    extra_nodes.append((next_node, float(mlat), float(mlon)))
                    current.append(next_node)
                    next_node += 1
                current.append(node)
                if len(current) >= 2 * way_blocks:
                    ways.append((current, tags))
                    current = [node]
            if len(current) > 1:
                ways.append((current, tags))

    # Alleys: from the middle of a block's south edge to the middle of its north edge, joining the
    # two streets through mid-block nodes (narrow: motorbikes and ambulances only by width rules).
    for i in range(side - 1):
        for j in range(side - 1):
            if rng.random() >= alley_share:
                continue
            a = (
                next_node,
                float((lat[i, j] + lat[i, j + 1]) / 2),
                float((lon[i, j] + lon[i, j + 1]) / 2),
            )
            b = (
                next_node + 1,
                float((lat[i + 1, j] + lat[i + 1, j + 1]) / 2),
                float((lon[i + 1, j] + lon[i + 1, j + 1]) / 2),
            )
            next_node += 2
            extra_nodes += [a, b]
            # connect the alley ends to the grid corners so they join the street network
            ways.append(
                (
                    [grid_id(i, j), a[0], b[0], grid_id(i + 1, j + 1)],
                    {"highway": "service", "service": "alley", "width": "2"},
                )
            )

    path = Path(path)
    if path.exists():
        path.unlink()
    writer = osmium.SimpleWriter(str(path))
    try:
        for i in range(side):
            for j in range(side):
                writer.add_node(
                    Node(id=grid_id(i, j), location=(float(lon[i, j]), float(lat[i, j])), version=1)
                )
        for nid, la, lo in extra_nodes:
            writer.add_node(Node(id=nid, location=(lo, la), version=1))
        for w, (refs, tags) in enumerate(ways, start=1):
            writer.add_way(Way(id=w, nodes=refs, tags=tags, version=1))
    finally:
        writer.close()
    return {"nodes": side * side + len(extra_nodes), "ways": len(ways), "grid_nodes": side * side}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--intersections", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", required=True, help="output .osm.pbf path")
    args = ap.parse_args(argv)
    if not 4 <= args.intersections <= 5_000_000:
        print(f"synth_city: --intersections must be in 4..5000000, not {args.intersections}")
        return 2
    counts = generate(args.out, intersections=args.intersections, seed=args.seed)
    print(f"{args.out}: {counts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
