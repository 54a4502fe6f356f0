"""Reading OSM files: barriers, restriction relations, and the fetch error without a network."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from dispatch.roads.osm import read_osm

DATA = Path(__file__).resolve().parents[1] / "data" / "osm"


def test_read_barriers_and_restrictions() -> None:
    raw = read_osm(DATA / "rules.osm")
    assert raw.node_block == {2: 7, 3: 15}  # bollard: cars and engines; wall: everyone
    assert raw.node_maxheight_m == {4: 3.2}
    (r,) = raw.restrictions
    assert (r.osm_id, r.no_mask, r.only_mask) == (77, 7, 0)  # except=motorcycle
    assert (r.from_ways, r.via_nodes, r.via_ways, r.to_ways) == ((10,), (2,), (), (11,))
    assert list(raw.way_id) == [10, 11]
    assert raw.way_restricted_mask.tolist() == [0, 15]  # access=private: kept, slowed


def test_fetch_without_a_network_is_one_clean_line(tmp_path: Path) -> None:
    # an unreachable proxy stands for "no network": nothing leaves the machine
    code = (
        "import sys\nfrom pathlib import Path\nfrom dispatch.roads.osm import fetch_map\n"
        "from dispatch.errors import MapError\n"
        "try:\n    fetch_map('Hai Chau, Da Nang, Vietnam', Path(sys.argv[1]))\n"
        "except MapError as e:\n    print(e)\n"
    )
    env = {"HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9",
           "PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
           "HOME": str(tmp_path)}  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "x.osm")], env=env,
                         capture_output=True, text=True, timeout=120, cwd=tmp_path)  # fmt: skip
    assert out.stdout.startswith("cannot reach the OpenStreetMap servers"), out.stdout + out.stderr
    assert out.stdout.count("\n") == 1
    assert not (tmp_path / "x.osm").exists()
