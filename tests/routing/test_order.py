"""Nested dissection order and contraction (dispatch.routing.order): checked by hand and by a plain
elimination game, deterministic across processes."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numba
import numpy as np
import pytest

import dispatch
from dispatch.routing import cch
from dispatch.routing import order as nd

ROOT = Path(__file__).resolve().parents[2]


def _order(n: int, edges: list[tuple[int, int]], x: np.ndarray, y: np.ndarray) -> np.ndarray:
    e = np.array(sorted({(min(a, b), max(a, b)) for a, b in edges}), dtype=np.int64)
    xadj, adj = nd.undirected_csr(n, e[:, 0], e[:, 1])
    return nd.order_nodes(xadj, adj, x, y)


def _grid(
    cols: range, rows: int, first: int
) -> tuple[list[tuple[int, int]], dict[int, tuple[int, int]]]:
    """A grid of nodes numbered from ``first``, column by column: edges and positions."""
    pos: dict[int, tuple[int, int]] = {}
    ids: dict[tuple[int, int], int] = {}
    for c in cols:
        for r in range(rows):
            ids[c, r] = first + len(ids)
            pos[ids[c, r]] = (c, r)
    edges = [(ids[c, r], ids[c + 1, r]) for c, r in ids if (c + 1, r) in ids]
    edges += [(ids[c, r], ids[c, r + 1]) for c, r in ids if (c, r + 1) in ids]
    return edges, pos


def test_bridge_node_is_the_top_separator() -> None:
    """Two 3 x 3 grids (x 0..2 and 4..6) joined only through node B at (3, 1): every west-east flow
    crosses B, so the cut has one edge and its boundary on the larger side is {B}; B is ranked last,
    and each grid gets a block of consecutive ranks below it."""
    left, pos = _grid(range(0, 3), 3, 0)
    right, pos_r = _grid(range(4, 7), 3, 9)
    pos.update(pos_r)
    bridge = 18
    pos[bridge] = (3, 1)
    west = next(i for i, p in pos.items() if p == (2, 1))
    east = next(i for i, p in pos.items() if p == (4, 1))
    edges = left + right + [(west, bridge), (bridge, east)]
    x = np.array([pos[i][0] for i in range(19)], dtype=float)
    y = np.array([pos[i][1] for i in range(19)], dtype=float)
    order = _order(19, edges, x, y)
    assert sorted(order.tolist()) == list(range(19))
    assert order[-1] == bridge
    blocks = {frozenset(order[:9].tolist()), frozenset(order[9:18].tolist())}
    assert blocks == {frozenset(range(9)), frozenset(range(9, 18))}


def test_path_is_bisected() -> None:
    """A path 0-1-...-6 along x: the one-edge cut between the middle nodes leaves sides 3 and 4;
    its smaller boundary (a tie) is taken on the larger side: node 3, the middle, ranked last."""
    x = np.arange(7, dtype=float)
    order = _order(7, [(i, i + 1) for i in range(6)], x, np.zeros(7))
    assert order[-1] == 3
    assert set(order[:3].tolist()) in ({0, 1, 2}, {4, 5, 6})


def _elimination_game(n: int, edges: np.ndarray, rank: np.ndarray) -> set[tuple[int, int]]:
    """Upward edges (ranks) by eliminating nodes one by one: the neighbours of each node left in
    the graph become a clique."""
    nbr: list[set[int]] = [set() for _ in range(n)]
    for a, b in edges.tolist():
        ra, rb = int(rank[a]), int(rank[b])
        nbr[ra].add(rb)
        nbr[rb].add(ra)
    out: set[tuple[int, int]] = set()
    for r in range(n):
        higher = sorted(q for q in nbr[r] if q > r)
        out.update((r, q) for q in higher)
        for i, p in enumerate(higher):
            for q in higher[i + 1 :]:
                nbr[p].add(q)
                nbr[q].add(p)
    return out


def _random_geometric(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x, y = rng.random(n), rng.random(n)
    d = (x[:, None] - x[None, :]) ** 2 + (y[:, None] - y[None, :]) ** 2
    a, b = np.nonzero(np.triu(d < 0.06**2, 1))
    return np.stack([a, b], axis=1), x, y


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_contraction_equals_elimination_game(seed: int) -> None:
    """On random geometric graphs (several components): the order is a permutation, the upward
    graph is exactly the elimination game's (originals plus every fill-in), chordal, and each
    parent is the lowest upward neighbour."""
    n = 300
    edges, x, y = _random_geometric(n, seed)
    xadj, adj = nd.undirected_csr(n, edges[:, 0], edges[:, 1])
    order = nd.order_nodes(xadj, adj, x, y)
    assert np.array_equal(np.sort(order), np.arange(n))
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    up_ptr, up_head, parent = nd.contract(xadj, adj, order, rank)
    got = {(r, int(q)) for r in range(n) for q in up_head[up_ptr[r] : up_ptr[r + 1]]}
    assert got == _elimination_game(n, edges, rank)
    rows = [up_head[up_ptr[r] : up_ptr[r + 1]].tolist() for r in range(n)]
    for r, row in enumerate(rows):
        assert row == sorted(set(row)) and all(q > r for q in row)
        assert parent[r] == (row[0] if row else -1)
        for i, p in enumerate(row):  # chordal: the higher neighbours of r form a clique
            assert set(row[i + 1 :]) <= set(rows[p])
    assert nd.count_triangles(up_ptr) == sum(len(r) * (len(r) - 1) // 2 for r in rows)


def _order_digest(map_name: str) -> str:
    net = dispatch.load_network(map_name)
    return hashlib.sha256(
        cch.build_hierarchy(net.arc_tail, net.arc_head, net.node_lat, net.node_lon).order.tobytes()
    ).hexdigest()


def test_order_is_deterministic_across_processes() -> None:
    """The same map gives the same order, byte for byte, again and in a process with another
    hash seed."""
    here = _order_digest("danang")
    assert _order_digest("danang") == here
    code = (
        "import hashlib, dispatch\n"
        "from dispatch.routing import cch\n"
        "net = dispatch.load_network('danang')\n"
        "print(hashlib.sha256(cch.build_hierarchy(net.arc_tail, net.arc_head, net.node_lat, net.node_lon).order.tobytes()).hexdigest())\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         cwd=ROOT, check=True)  # fmt: skip
    assert out.stdout.strip().splitlines()[-1] == here


@numba.njit
def _triangle_index(up_ptr: np.ndarray, up_head: np.ndarray) -> np.ndarray:
    """For every lower triangle (r; i < j in row r), in row-major order, the edge joining
    ``up_head[i]`` and ``up_head[j]`` (by binary search: independent of the lazy kernel's merge)."""
    out = np.empty(nd.count_triangles(up_ptr), dtype=np.int64)
    k = 0
    for r in range(len(up_ptr) - 1):
        for i in range(up_ptr[r], up_ptr[r + 1]):
            x = up_head[i]
            for j in range(i + 1, up_ptr[r + 1]):
                out[k] = up_ptr[x] + np.searchsorted(up_head[up_ptr[x] : up_ptr[x + 1]], up_head[j])
                k += 1
    return out


@numba.njit
def _customize_stored(up_ptr: np.ndarray, up_head: np.ndarray, tri_edge: np.ndarray,
                      arc_edge: np.ndarray, arc_up: np.ndarray, w: np.ndarray, up_w: np.ndarray,
                      down_w: np.ndarray, up_mid: np.ndarray, down_mid: np.ndarray,
                      up_arc: np.ndarray, down_arc: np.ndarray) -> None:  # fmt: skip
    """Textbook CCH customization over a stored triangle index (the reference)."""
    up_w[:] = np.inf
    down_w[:] = np.inf
    up_mid[:] = -1
    down_mid[:] = -1
    up_arc[:] = -1
    down_arc[:] = -1
    for a in range(len(w)):
        e = arc_edge[a]
        if e < 0:
            continue
        if arc_up[a]:
            if w[a] < up_w[e]:
                up_w[e] = w[a]
                up_arc[e] = a
        elif w[a] < down_w[e]:
            down_w[e] = w[a]
            down_arc[e] = a
    k = 0
    for r in range(len(up_ptr) - 1):
        for i in range(up_ptr[r], up_ptr[r + 1]):
            for j in range(i + 1, up_ptr[r + 1]):
                f = tri_edge[k]
                k += 1
                c = down_w[i] + up_w[j]
                if c < up_w[f]:
                    up_w[f] = c
                    up_mid[f] = r
                c = down_w[j] + up_w[i]
                if c < down_w[f]:
                    down_w[f] = c
                    down_mid[f] = r


@pytest.mark.parametrize("map_name", ["danang", "campo_grande"])
def test_hierarchy_of_a_real_map(map_name: str) -> None:
    """Every arc maps to the upward edge between its ends; the lazy customization (no stored
    triangle index) gives exactly the arrays of the textbook one over an explicit triangle index."""
    net = dispatch.load_network(map_name)
    h = cch.build_hierarchy(net.arc_tail, net.arc_head, net.node_lat, net.node_lon)
    n = net.n_nodes
    assert np.array_equal(np.sort(h.order), np.arange(n))
    assert np.array_equal(h.rank[h.order], np.arange(n))
    ru, rv = h.rank[net.arc_tail], h.rank[net.arc_head]
    ok = ru != rv
    e = h.arc_edge[ok]
    assert np.all(h.arc_edge[~ok] == -1)
    assert np.array_equal(h.up_tail[e], np.minimum(ru, rv)[ok])
    assert np.array_equal(h.up_head[e], np.maximum(ru, rv)[ok])
    tri_edge = _triangle_index(h.up_ptr, h.up_head)
    for r in range(0, n, 7):  # a sample of rows: the index is in row-major order
        k = int(sum(d * (d - 1) // 2 for d in np.diff(h.up_ptr)[:r]))
        row = h.up_head[h.up_ptr[r] : h.up_ptr[r + 1]]
        for i in range(len(row)):
            for j in range(i + 1, len(row)):
                f = tri_edge[k]
                assert h.up_tail[f] == row[i] and h.up_head[f] == row[j]
                k += 1
    w = net.weights("ambulance")
    ne = h.n_edges

    def arrays() -> list[np.ndarray]:
        return [np.empty(ne), np.empty(ne)] + [np.empty(ne, dtype=np.int64) for _ in range(4)]

    stored, lazy = arrays(), arrays()
    _customize_stored(h.up_ptr, h.up_head, tri_edge, h.arc_edge, h.arc_up, w, *stored)
    nd.customize_arcs_kernel(h.arc_edge, h.arc_up, w, *lazy)
    for lo, hi in ((0, n // 3), (n // 3, n // 3), (n // 3, n)):  # in steps, as with progress
        nd.customize_rows_kernel(h.up_ptr, h.up_head, *lazy[:4], lo, hi)
    for a, b in zip(stored, lazy, strict=True):
        assert np.array_equal(a, b)
    for a, b in zip(stored, cch.customize(h, w), strict=True):
        assert np.array_equal(a, b)
