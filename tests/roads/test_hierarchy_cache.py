"""The CCH hierarchy cached beside the network: reused by a new process, rebuilt when corrupt,
truncated, stale or built with other settings, always with the same answers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

import dispatch
from dispatch.roads.network import cache_path, hierarchy_cache_path
from dispatch.routing import cch
from dispatch.routing import order as nd
from dispatch.routing.engine import EnginePolicy

MAP = "hcmc"
ROOT = Path(__file__).resolve().parents[2]
CCH = EnginePolicy.cch_always()


def _hpath(cdir: Path) -> Path:
    net_file = cache_path(dispatch.roads.osm.resolve_map(MAP), dispatch.network_settings(), cdir)
    return hierarchy_cache_path(net_file)


def _load(cdir: Path, policy: EnginePolicy = CCH) -> dispatch.Network:
    return dispatch.load_network(MAP, cache_dir=cdir, policy=policy)


def _points(net: dispatch.Network) -> np.ndarray:
    # plain nodes: a junction expanded for restrictions or turn costs has several at one point
    core = np.flatnonzero(net.class_core("ambulance") & (net.node_osmid >= 0))
    pick = np.random.default_rng(3).choice(core, 12, replace=False)
    return np.stack([net.node_lat[pick], net.node_lon[pick]], axis=1)


def _reference(net: dispatch.Network, pts: np.ndarray) -> np.ndarray:
    """scipy Dijkstra between the nodes the points sit on (parallel arcs: the fastest)."""
    w = net.weights("ambulance")
    ok = np.isfinite(w)
    t, h, x = net.arc_tail[ok], net.arc_head[ok], w[ok]
    order = np.lexsort((x, h, t))
    first = np.ones(len(order), bool)
    first[1:] = (t[order][1:] != t[order][:-1]) | (h[order][1:] != h[order][:-1])
    keep = order[first]
    g = csr_matrix((x[keep], (t[keep], h[keep])), shape=(net.n_nodes, net.n_nodes))
    idx = [int(np.flatnonzero((net.node_lat == a) & (net.node_lon == b))[0]) for a, b in pts]
    return dijkstra(g, indices=idx)[:, idx]


@pytest.fixture
def built(tmp_path: Path) -> tuple[Path, cch.Hierarchy, np.ndarray]:
    """A cache folder holding the network and its hierarchy, the hierarchy, and a matrix."""
    cdir = tmp_path / "cache"
    net = _load(cdir)
    pts = _points(net)
    tt = net.travel_times(pts, pts)
    assert _hpath(cdir).is_file()
    np.testing.assert_allclose(tt, _reference(net, pts), rtol=1e-12, atol=1e-9)
    return cdir, net.engine.hierarchy(), tt


def _no_ordering(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real = cch.build_hierarchy

    def counted(*args: np.ndarray) -> cch.Hierarchy:
        calls.append(1)
        return real(*args)

    monkeypatch.setattr(cch, "build_hierarchy", counted)
    return calls


def _same(a: cch.Hierarchy, b: cch.Hierarchy) -> bool:
    return all(np.array_equal(getattr(a, f), getattr(b, f)) for f in a.__dataclass_fields__)


def test_a_new_network_object_reuses_the_cached_hierarchy(
    built: tuple[Path, cch.Hierarchy, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    cdir, h, tt = built
    built_calls = _no_ordering(monkeypatch)
    net = _load(cdir)
    got = net.travel_times(_points(net), _points(net))
    assert built_calls == []  # no ordering: the hierarchy came from the file
    assert _same(net.engine.hierarchy(), h)
    assert np.array_equal(got, tt)
    meta = json.loads(str(np.load(_hpath(cdir))["meta"]))
    assert meta["graph_digest"] == net.digest and meta["hierarchy"] == cch.hierarchy_settings()


def test_a_new_process_answers_without_ordering(
    built: tuple[Path, cch.Hierarchy, np.ndarray],
) -> None:
    cdir, _, tt = built
    code = (
        "import sys, numpy as np, dispatch\n"
        "from dispatch.routing import cch\n"
        "def refuse(*a): raise SystemExit('ordered the graph again')\n"
        "cch.build_hierarchy = refuse\n"
        "net = dispatch.load_network(sys.argv[1], cache_dir=sys.argv[2],"
        " policy=dispatch.EnginePolicy.cch_always())\n"
        "pts = np.array(sys.argv[3:], dtype=float).reshape(-1, 2)\n"
        "print(repr(net.travel_times(pts, pts).tolist()))\n"
    )
    pts = _points(_load(cdir))
    out = subprocess.run([sys.executable, "-c", code, MAP, str(cdir), *map(repr, pts.ravel().tolist())],
                         capture_output=True, text=True, check=True, cwd=ROOT)  # fmt: skip
    assert np.array_equal(np.array(eval(out.stdout)), tt)  # noqa: S307 (our own repr of floats)


@pytest.mark.parametrize("damage", ["flip", "truncate", "empty", "garbage"])
def test_corrupt_or_truncated_file_is_rebuilt(
    built: tuple[Path, cch.Hierarchy, np.ndarray], damage: str, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    cdir, h, tt = built
    path = _hpath(cdir)
    data = bytearray(path.read_bytes())
    if damage == "flip":  # a flipped byte inside up_head: the checksum catches it
        at = data.find(cch.hierarchy_arrays(h)["up_head"].tobytes()[:64])
        assert at > 0
        data[at + 40] ^= 0x5A
    elif damage == "truncate":
        data = data[: len(data) * 2 // 3]
    elif damage == "empty":
        data = bytearray()
    else:
        data = bytearray(b"not a hierarchy" * 100)
    path.write_bytes(bytes(data))
    calls = _no_ordering(monkeypatch)
    net = _load(cdir)
    with caplog.at_level("WARNING"):
        got = net.travel_times(_points(net), _points(net))
    assert "corrupt" in caplog.text and "rebuilding" in caplog.text
    assert calls == [1]
    assert np.array_equal(got, tt) and _same(net.engine.hierarchy(), h)
    # the file was replaced by a good one: the next network reads it
    calls.clear()
    again = _load(cdir)
    again.travel_times(_points(again), _points(again))
    assert calls == [] and _same(again.engine.hierarchy(), h)


def test_consistent_checksum_over_wrong_arrays_is_rebuilt(
    built: tuple[Path, cch.Hierarchy, np.ndarray], monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    """A file whose checksum matches arrays that cannot be this graph's hierarchy (a swapped
    order: arcs between ranks that share no upward edge) is refused by the structure check."""
    cdir, h, tt = built
    path = _hpath(cdir)
    with np.load(path) as z:
        meta = json.loads(str(z["meta"]))
        arrays = {k: z[k] for k in ("order", "up_ptr", "up_head")}
    arrays["order"] = arrays["order"][::-1].copy()
    from dispatch.roads.network import _arrays_digest, _save

    meta["checksum"] = _arrays_digest(arrays)
    _save(path, arrays, meta)
    calls = _no_ordering(monkeypatch)
    net = _load(cdir)
    with caplog.at_level("WARNING"):
        got = net.travel_times(_points(net), _points(net))
    assert "corrupt" in caplog.text and calls == [1]
    assert np.array_equal(got, tt)


def test_stale_file_of_another_graph_is_rebuilt(
    built: tuple[Path, cch.Hierarchy, np.ndarray], monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    cdir, h, tt = built
    path = _hpath(cdir)
    with np.load(path) as z:
        meta = json.loads(str(z["meta"]))
        arrays = {k: z[k] for k in ("order", "up_ptr", "up_head")}
    meta["graph_digest"] = "0" * 64  # the map was edited since
    from dispatch.roads.network import _save

    _save(path, arrays, meta)
    calls = _no_ordering(monkeypatch)
    net = _load(cdir)
    with caplog.at_level("WARNING"):
        got = net.travel_times(_points(net), _points(net))
    assert "another graph" in caplog.text and calls == [1]
    assert np.array_equal(got, tt)
    assert json.loads(str(np.load(path)["meta"]))["graph_digest"] == net.digest


def test_other_order_settings_build_and_keep_another_hierarchy(
    built: tuple[Path, cch.Hierarchy, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    cdir, h, tt = built
    old_path = _hpath(cdir)
    monkeypatch.setattr(nd, "BALANCES", (0.33,))
    monkeypatch.setattr(nd, "BALANCE_MAX_NODES", (2**62,))
    new_path = _hpath(cdir)
    assert new_path != old_path
    calls = _no_ordering(monkeypatch)
    net = _load(cdir)
    pts = _points(net)
    got = net.travel_times(pts, pts)
    assert calls == [1] and new_path.is_file() and old_path.is_file()
    assert not _same(net.engine.hierarchy(), h)  # another order...
    np.testing.assert_allclose(got, tt, rtol=1e-12, atol=1e-9)  # ...the same answers
    np.testing.assert_allclose(got, _reference(net, pts), rtol=1e-12, atol=1e-9)
    meta = json.loads(str(np.load(new_path)["meta"]))
    assert meta["hierarchy"]["balances"] == [0.33]


def test_default_policy_waits_for_a_hierarchy_it_would_have_to_build(tmp_path: Path) -> None:
    """Without a cached hierarchy, the default policy answers the first
    ``hierarchy_after_searches`` searches by Dijkstra (no ordering); with one, it switches to the
    CCH after ``cch_after_searches`` searches, as before."""
    cdir = tmp_path / "cache"
    policy = EnginePolicy()
    net = _load(cdir, policy)
    pts = _points(net)
    w = net.weights("ambulance")
    ref = net.travel_times(pts, pts)  # 12 searches
    for _ in range(6):
        net.travel_times(pts, pts)
    assert not net.engine.has_metric(w) and not _hpath(cdir).exists()
    for _ in range(2 + policy.hierarchy_after_searches // len(pts)):
        got = net.travel_times(pts, pts)
    assert net.engine.has_metric(w) and _hpath(cdir).is_file()
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-9)
    # a new network finds the hierarchy on disk: the CCH after cch_after_searches searches
    again = _load(cdir, policy)
    again.travel_times(pts, pts)
    assert again.engine.has_metric(again.weights("ambulance"))


def test_unwritable_cache_folder_still_answers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cdir = tmp_path / "cache"
    net = _load(cdir)
    path = _hpath(cdir)
    path.mkdir()  # a folder where the file should be: cannot be read, is left alone
    fresh = _load(cdir)
    with caplog.at_level("WARNING"):
        got = fresh.travel_times(_points(fresh), _points(fresh))
    assert "not readable" in caplog.text and path.is_dir()
    np.testing.assert_allclose(got, _reference(net, _points(net)), rtol=1e-12, atol=1e-9)
