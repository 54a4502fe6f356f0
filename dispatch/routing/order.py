"""Metric-independent CCH preprocessing: nested dissection order and contraction, in numba.

**Order.** Nested dissection with separators found by *inertial flow* (Schild and Sommer, *On
balanced separators in road networks*, SEA 2015; the ordering routingkit-cch uses): a connected part
is projected on four directions (east, north and the two diagonals); for each direction the first
and the last ``balance`` fraction of the nodes become the source and the sink of a unit-capacity
maximum flow (Dinic's blocking flows). The four flows are advanced together, the smallest first, so
the first to finish is the minimum cut over the directions. Of the few balances tried, the cut with
the fewest edges per node on its smaller side wins; its smaller boundary is the separator, ranked
above both sides, which are ordered recursively (disconnected pieces apart). Everything is
deterministic: stable sorts, ties broken by position, no hashing, one thread.

**Contraction.** Eliminating nodes in rank order (a symbolic Cholesky factorisation along the
elimination tree): the upward neighbours of rank ``r`` are its original higher neighbours plus those
of its children in the tree, minus ``r``; its tree parent is the lowest of them. Every row is read
once, by its parent, so time and memory are linear in the upward graph.

**Lazy triangles.** :func:`customize_rows_kernel` relaxes every lower triangle without a stored
triangle index: for rank ``r`` and its upward neighbour ``x = up_head[i]``, the other upward
neighbours ``y > x`` of ``r`` are all in ``x``'s row (the upward graph is chordal), so one merge of
the two sorted rows finds every edge ``(x, y)``.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from dispatch.progress import Progress
from dispatch.routing.kernels import jit

#: Parts up to this many nodes also try the widest band (see :data:`BALANCES`).
WIDE_MAX_NODES = 10_000

#: Source and sink fractions tried by inertial flow, and the largest part each is tried on. The
#: widest band (25 %) finds off-centre cuts (a river, a ridge) but its flows are the longest. Measured
#: (CPU s of the order; upward edges): on the 80k-node synthetic city, 25 % on every part 3.4 s,
#: on parts up to 10k nodes 2.1 s (the same order), never 1.7 s (+0.08 % edges); on Campo Grande
#: (8k nodes) never costs 3 % more edges, 6 % more triangles and 4 % more ancestors per search.
BALANCES = (0.25, 0.33, 0.4)
BALANCE_MAX_NODES = (WIDE_MAX_NODES, 2**62, 2**62)


def undirected_csr(n: int, eu: np.ndarray, ev: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric adjacency (CSR ``xadj``, ``adj``; heads ascending) of undirected edges ``eu-ev``.

    Edges must be simple (no loops, no duplicates), e.g. ``eu < ev`` unique pairs.

    >>> xadj, adj = undirected_csr(3, np.array([0, 1]), np.array([1, 2]))
    >>> xadj.tolist(), adj.tolist()
    ([0, 1, 3, 4], [1, 0, 2, 1])
    """
    tail = np.concatenate([eu, ev]).astype(np.int64)
    head = np.concatenate([ev, eu]).astype(np.int64)
    srt = np.lexsort((head, tail))
    xadj = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(tail, minlength=n), out=xadj[1:])
    return xadj, head[srt]


def order_nodes(
    xadj: np.ndarray, adj: np.ndarray, x: np.ndarray, y: np.ndarray, *,
    progress: Progress | None = None,
) -> np.ndarray:  # fmt: skip
    """Nested dissection order (rank -> node) with the default balances (:func:`dissection_order`).

    >>> xadj, adj = undirected_csr(3, np.array([0, 1]), np.array([1, 2]))
    >>> order_nodes(xadj, adj, np.arange(3.0), np.zeros(3)).tolist()  # the middle of a path last
    [0, 2, 1]
    """
    return dissection_order(
        xadj, adj, np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64),
        np.asarray(BALANCES, dtype=np.float64), np.asarray(BALANCE_MAX_NODES, dtype=np.int64),
        progress=progress,
    )  # fmt: skip


# --- inertial flow ---------------------------------------------------------------------------------


@jit
def _flow_phase(
    xadj: np.ndarray, adj: np.ndarray, rev: np.ndarray, m: int, is_src: np.ndarray,
    is_tgt: np.ndarray, sat: np.ndarray, level: np.ndarray, queue: np.ndarray, it: np.ndarray,
    path_node: np.ndarray, path_arc: np.ndarray,
) -> int:  # fmt: skip
    """One Dinic phase on the ``m``-node local graph: flow augmented, or -1 if the sink is cut off.

    Unit capacity on every undirected edge in each direction; ``sat[a]``: arc ``a`` carries flow.
    An arc is usable when not saturated (if its reverse is, using it cancels that flow). After a
    -1, ``level[x] >= 0`` exactly on the nodes the sources reach in the residual graph."""
    level[:m] = -1
    qe = 0
    for x in range(m):
        if is_src[x]:
            level[x] = 0
            queue[qe] = x
            qe += 1
    qb = 0
    reach = False
    while qb < qe:
        x = queue[qb]
        qb += 1
        for a in range(xadj[x], xadj[x + 1]):
            if sat[a]:
                continue
            y = adj[a]
            if is_tgt[y]:
                reach = True
            elif level[y] < 0:
                level[y] = level[x] + 1
                queue[qe] = y
                qe += 1
    if not reach:
        return -1
    for x in range(m):
        it[x] = xadj[x]
    count = 0
    for s in range(m):
        if not is_src[s]:
            continue
        depth = 0
        path_node[0] = s
        while True:
            x = path_node[depth]
            found = -1
            while it[x] < xadj[x + 1]:
                a = it[x]
                y = adj[a]
                if not sat[a] and (is_tgt[y] or level[y] == level[x] + 1):
                    found = a
                    break
                it[x] += 1
            if found < 0:  # dead end: no path to the sink through x in this phase
                if depth == 0:
                    break
                level[x] = -2
                depth -= 1
                it[path_node[depth]] += 1
                continue
            path_arc[depth] = found
            depth += 1
            y = adj[found]
            if is_tgt[y]:
                for i in range(depth):
                    a = path_arc[i]
                    b = rev[a]
                    if sat[b]:
                        sat[b] = 0
                    else:
                        sat[a] = 1
                count += 1
                depth = 0
            else:
                path_node[depth] = y
    return count


@jit
def _grow(
    xadj: np.ndarray, adj: np.ndarray, rev: np.ndarray, sat: np.ndarray, mark: np.ndarray,
    label: int, stack: np.ndarray, top: int, cand: np.ndarray, nc: int, forward: bool,
) -> tuple[int, int]:  # fmt: skip
    """Close side ``label`` of ``mark`` under residual arcs from the nodes on ``stack[:top]``:
    forward (what the side reaches) or backward (what reaches the side). Nodes behind a saturated
    arc go on ``cand`` (piercing candidates). Returns (nodes added, new candidate count)."""
    added = 0
    while top > 0:
        top -= 1
        x = stack[top]
        added += 1
        for a in range(xadj[x], xadj[x + 1]):
            y = adj[a]
            blocked = sat[a] if forward else sat[rev[a]]
            if blocked:
                cand[nc] = y
                nc += 1
            elif mark[y] == 0:
                mark[y] = label
                stack[top] = y
                top += 1
    return added, nc


@jit
def _balanced_side(
    xadj: np.ndarray, adj: np.ndarray, rev: np.ndarray, m: int, is_src: np.ndarray,
    is_tgt: np.ndarray, sat: np.ndarray, mark: np.ndarray, stack: np.ndarray,
    cand_s: np.ndarray, cand_t: np.ndarray,
) -> int:  # fmt: skip
    """A minimum cut of a maximum flow, as balanced as piercing makes it: ``mark[x] == 1`` on the
    returned side (1: the sources' side, 2: the sinks'), whose node count is returned.

    The sources' residual closure and the sinks' backward closure are both minimum cuts; the
    smaller is grown by a node behind one of its saturated arcs (in neither closure, so the cut
    stays minimum) and closed again, until the smaller side cannot grow."""
    # plain (not literal) argument types, so that numba compiles _grow once instead of once per
    # constant (each compilation costs a first run about 0.4 s)
    one, two, zero = int(np.int64(1)), int(np.int64(2)), int(np.int64(0))
    yes, no = bool(np.bool_(True)), bool(np.bool_(False))
    mark[:m] = 0
    top = zero
    for x in range(m):
        if is_src[x]:
            mark[x] = 1
            stack[top] = x
            top += 1
    n_s, ns_c = _grow(xadj, adj, rev, sat, mark, one, stack, top, cand_s, zero, yes)
    top = zero
    for x in range(m):
        if is_tgt[x]:
            mark[x] = 2
            stack[top] = x
            top += 1
    n_t, nt_c = _grow(xadj, adj, rev, sat, mark, two, stack, top, cand_t, zero, no)
    while True:
        grow_s = n_s <= n_t
        pierce = -1
        if grow_s:
            while ns_c > 0 and pierce < 0:
                ns_c -= 1
                if mark[cand_s[ns_c]] == 0:
                    pierce = cand_s[ns_c]
        else:
            while nt_c > 0 and pierce < 0:
                nt_c -= 1
                if mark[cand_t[nt_c]] == 0:
                    pierce = cand_t[nt_c]
        if pierce < 0:
            if grow_s:
                return n_s
            for x in range(m):  # report the sinks' side as label 1
                mark[x] = 1 if mark[x] == 2 else 0
            return n_t
        stack[0] = pierce
        if grow_s:
            mark[pierce] = 1
            got, ns_c = _grow(xadj, adj, rev, sat, mark, one, stack, one, cand_s, ns_c, yes)
            n_s += got
        else:
            mark[pierce] = 2
            got, nt_c = _grow(xadj, adj, rev, sat, mark, two, stack, one, cand_t, nt_c, no)
            n_t += got


@jit
def _inertial_cut(
    xadj: np.ndarray, adj: np.ndarray, rev: np.ndarray, m: int, px: np.ndarray, py: np.ndarray,
    balances: np.ndarray, max_nodes: np.ndarray, side: np.ndarray, ws_i: np.ndarray,
    ws_b: np.ndarray,
    sat: np.ndarray, srt: np.ndarray, cand_s: np.ndarray, cand_t: np.ndarray,
) -> int:  # fmt: skip
    """Best inertial-flow cut of the connected ``m``-node local graph into ``side`` (1: one side).

    Returns the cut size (edges). ``ws_i`` is (5, >= m + 1) int64 scratch, ``ws_b`` (9, >= m) int8,
    ``sat`` (4, >= arcs) int8, ``srt`` (4, >= m) int64, ``cand_*`` (>= arcs) int64."""
    level, queue, it, path_node, path_arc = ws_i[0], ws_i[1], ws_i[2], ws_i[3], ws_i[4]
    mark = ws_b[8]
    key = np.empty(m)
    for d in range(4):
        for x in range(m):
            if d == 0:
                key[x] = px[x]
            elif d == 1:
                key[x] = py[x]
            elif d == 2:
                key[x] = px[x] + py[x]
            else:
                key[x] = px[x] - py[x]
        by_key = np.argsort(key, kind="mergesort")
        for i in range(m):
            srt[d, i] = by_key[i]
    n_arcs = xadj[m]
    best_cut = -1
    best_small = 1
    flow = np.zeros(4, dtype=np.int64)
    done = np.zeros(4, dtype=np.bool_)
    for bi in range(len(balances)):
        if m > max_nodes[bi]:
            continue
        k = max(1, int(m * balances[bi]))
        if 2 * k > m:
            k = m // 2
        for d in range(4):
            is_src = ws_b[2 * d]
            is_tgt = ws_b[2 * d + 1]
            is_src[:m] = 0
            is_tgt[:m] = 0
            for i in range(k):
                is_src[srt[d, i]] = 1
                is_tgt[srt[d, m - 1 - i]] = 1
            sat[d, :n_arcs] = 0
            flow[d] = 0
            done[d] = False
        while True:
            d = 0
            for e in range(1, 4):
                if flow[e] < flow[d]:
                    d = e
            if done[d]:
                break
            got = _flow_phase(xadj, adj, rev, m, ws_b[2 * d], ws_b[2 * d + 1], sat[d], level,
                              queue, it, path_node, path_arc)  # fmt: skip
            if got < 0:
                done[d] = True
            else:
                flow[d] += got
        n_side = _balanced_side(xadj, adj, rev, m, ws_b[2 * d], ws_b[2 * d + 1], sat[d], mark,
                                queue, cand_s, cand_t)  # fmt: skip
        small = min(n_side, m - n_side)
        # fewer cut edges per node on the smaller side: flow / small < best_cut / best_small
        if best_cut < 0 or flow[d] * best_small < best_cut * small:
            best_cut = flow[d]
            best_small = small
            for x in range(m):
                side[x] = 1 if mark[x] == 1 else 0
    return best_cut


@jit
def _separator_from_side(
    xadj: np.ndarray, adj: np.ndarray, m: int, side: np.ndarray, sep: np.ndarray
) -> int:
    """The smaller boundary of the cut ``side`` into ``sep`` (1: separator); returns its size."""
    n_in = 0
    n_out = 0
    n_side = 0
    for x in range(m):
        n_side += side[x]
        on_boundary = False
        for a in range(xadj[x], xadj[x + 1]):
            if side[adj[a]] != side[x]:
                on_boundary = True
                break
        if on_boundary:
            if side[x]:
                n_in += 1
            else:
                n_out += 1
    # ties: the boundary of the larger side, so the two halves stay balanced
    take = 1 if n_in < n_out or (n_in == n_out and n_side >= m - n_side) else 0
    count = 0
    for x in range(m):
        sep[x] = 0
        if side[x] == take:
            for a in range(xadj[x], xadj[x + 1]):
                if side[adj[a]] != take:
                    sep[x] = 1
                    count += 1
                    break
    return count


@jit
def _local_graph(
    perm: np.ndarray, lo: int, hi: int, xadj: np.ndarray, adj: np.ndarray, loc: np.ndarray,
    stamp: np.ndarray, cur: int, lxadj: np.ndarray, ladj: np.ndarray, lrev: np.ndarray,
    cursor: np.ndarray,
) -> int:  # fmt: skip
    """The subgraph induced by ``perm[lo:hi]`` in local ids (position - lo), rows sorted, with the
    reverse of every arc. Returns its number of arcs."""
    m = hi - lo
    for i in range(m):
        v = perm[lo + i]
        stamp[v] = cur
        loc[v] = i
    k = 0
    lxadj[0] = 0
    for i in range(m):
        v = perm[lo + i]
        start = k
        for a in range(xadj[v], xadj[v + 1]):
            u = adj[a]
            if stamp[u] == cur:
                y = loc[u]
                j = k  # insertion sort: degrees are small
                while j > start and ladj[j - 1] > y:
                    ladj[j] = ladj[j - 1]
                    j -= 1
                ladj[j] = y
                k += 1
        lxadj[i + 1] = k
    for i in range(m):
        cursor[i] = lxadj[i]
    for i in range(m):  # rows sorted: the arcs into y from x < y come in order of x
        for a in range(lxadj[i], lxadj[i + 1]):
            y = ladj[a]
            if y > i:
                b = cursor[y]
                cursor[y] += 1
                lrev[a] = b
                lrev[b] = a
    return k


class _DissectState(NamedTuple):
    """The work arrays of one nested dissection (:func:`dissection_order`), kept between steps."""

    perm: np.ndarray  # the order being built: segments of it are refined in place
    iw: np.ndarray  # (7, n + 1) int64: loc, stamp, lxadj, cursor, comp, tmp, spare
    aw: np.ndarray  # (4, arcs) int64: ladj, lrev, cand_s, cand_t
    ws_i: np.ndarray  # (5, n + 1) int64: flow scratch
    ws_b: np.ndarray  # (11, n) int8: source/sink flags per direction, mark, side, separator
    sat: np.ndarray  # (4, arcs) int8: flow per direction
    srt: np.ndarray  # (4, n) int64: nodes sorted per direction
    pxy: np.ndarray  # (2, n) float64: local coordinates
    st: np.ndarray  # (2, n + 1) int64: stack of segments still to order (lo, hi)
    st_conn: np.ndarray  # (n + 1,) bool: segment known to be one component
    state: np.ndarray  # (3,) int64: stack top, stamp, nodes placed


def _dissect_state(n: int, n_arcs: int) -> _DissectState:
    st = _DissectState(
        np.arange(n), np.zeros((7, n + 1), dtype=np.int64), np.empty((4, n_arcs), dtype=np.int64),
        np.empty((5, n + 1), dtype=np.int64), np.empty((11, n), dtype=np.int8),
        np.empty((4, n_arcs), dtype=np.int8), np.empty((4, n), dtype=np.int64),
        np.empty((2, n)), np.empty((2, n + 1), dtype=np.int64), np.empty(n + 1, dtype=np.bool_),
        np.zeros(3, dtype=np.int64),
    )  # fmt: skip
    if n > 0:
        st.st[0, 0], st.st[1, 0], st.st_conn[0] = 0, n, False
        st.state[0] = 1
    return st


def dissection_order(
    xadj: np.ndarray, adj: np.ndarray, x: np.ndarray, y: np.ndarray, balances: np.ndarray,
    max_nodes: np.ndarray, *, progress: Progress | None = None,
) -> np.ndarray:  # fmt: skip
    """Nested dissection order (rank -> node) of the symmetric graph ``xadj``/``adj`` with node
    coordinates ``x``, ``y``; balance ``balances[i]`` is tried on parts of at most ``max_nodes[i]``
    nodes.

    The work runs in steps (:func:`_dissect_steps`, about 1 % of it each) so that ``progress``
    (:func:`dispatch.progress.task`) hears of the nodes placed; the order does not depend on them.
    """
    n = len(xadj) - 1
    st = _dissect_state(n, len(adj))
    budget = max(20_000, int(n * max(math.log2(max(n, 2)), 1.0)) // 100)
    done = 0
    while st.state[0] > 0:
        _dissect_steps(xadj, adj, x, y, balances, max_nodes, *st, budget)
        if progress is not None:
            progress.update(int(st.state[2]) - done)
            done = int(st.state[2])
    return st.perm


@jit
def _dissect_steps(
    xadj: np.ndarray, adj: np.ndarray, x: np.ndarray, y: np.ndarray, balances: np.ndarray,
    max_nodes: np.ndarray, perm: np.ndarray, iw: np.ndarray, aw: np.ndarray, ws_i: np.ndarray,
    ws_b: np.ndarray, sat: np.ndarray, srt: np.ndarray, pxy: np.ndarray, st: np.ndarray,
    st_conn: np.ndarray, state: np.ndarray, budget: int,
) -> None:  # fmt: skip
    """Order segments from the stack (see :class:`_DissectState`) until about ``budget`` nodes of
    segments were worked on or none is left; ``state`` counts the nodes whose rank is final."""
    loc, stamp, lxadj, cursor, comp, tmp = iw[0], iw[1], iw[2], iw[3], iw[4], iw[5]
    ladj, lrev, cand_s, cand_t = aw[0], aw[1], aw[2], aw[3]
    side, sep = ws_b[9], ws_b[10]
    px, py = pxy[0], pxy[1]
    st_lo, st_hi = st[0], st[1]
    top, cur, placed = state[0], state[1], state[2]
    work = 0
    while top > 0 and work < budget:
        top -= 1
        lo, hi, connected = st_lo[top], st_hi[top], st_conn[top]
        m = hi - lo
        if m <= 1:
            placed += m
            continue
        work += m
        cur += 1
        _local_graph(perm, lo, hi, xadj, adj, loc, stamp, cur, lxadj, ladj, lrev, cursor)
        if not connected:
            # connected components, numbered by their first node; stable regrouping
            comp[:m] = -1
            n_comp = 0
            queue = cursor
            for s in range(m):
                if comp[s] >= 0:
                    continue
                comp[s] = n_comp
                queue[0] = s
                qb, qe = 0, 1
                while qb < qe:
                    v = queue[qb]
                    qb += 1
                    for a in range(lxadj[v], lxadj[v + 1]):
                        u = ladj[a]
                        if comp[u] < 0:
                            comp[u] = n_comp
                            queue[qe] = u
                            qe += 1
                n_comp += 1
            if n_comp > 1:
                start = np.zeros(n_comp + 1, dtype=np.int64)
                for i in range(m):
                    start[comp[i] + 1] += 1
                for c in range(n_comp):
                    start[c + 1] += start[c]
                fill = start[:n_comp].copy()
                for i in range(m):
                    tmp[fill[comp[i]]] = perm[lo + i]
                    fill[comp[i]] += 1
                for i in range(m):
                    perm[lo + i] = tmp[i]
                for c in range(n_comp - 1, -1, -1):
                    st_lo[top], st_hi[top], st_conn[top] = lo + start[c], lo + start[c + 1], True
                    top += 1
                continue
        for i in range(m):
            v = perm[lo + i]
            px[i] = x[v]
            py[i] = y[v]
        _inertial_cut(lxadj, ladj, lrev, m, px, py, balances, max_nodes, side, ws_i, ws_b, sat,
                      srt, cand_s, cand_t)  # fmt: skip
        n_sep = _separator_from_side(lxadj, ladj, m, side, sep)
        # the rest first (stable), the separator last: the highest ranks of the segment
        k = 0
        for i in range(m):
            if not sep[i]:
                tmp[k] = perm[lo + i]
                k += 1
        for i in range(m):
            if sep[i]:
                tmp[k] = perm[lo + i]
                k += 1
        for i in range(m):
            perm[lo + i] = tmp[i]
        placed += n_sep
        st_lo[top], st_hi[top], st_conn[top] = lo, hi - n_sep, False
        top += 1
    state[0], state[1], state[2] = top, cur, placed


# --- contraction ----------------------------------------------------------------------------------


@jit
def contract(
    xadj: np.ndarray, adj: np.ndarray, order: np.ndarray, rank: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Upward graph of the elimination in rank order: ``(up_ptr, up_head, parent)`` over ranks.

    Row ``r`` holds the higher ranks adjacent to ``r`` once every lower rank is eliminated
    (original edges and fill-in), ascending; ``parent[r]`` is the lowest of them (-1: a root)."""
    n = len(xadj) - 1
    cap = max(16, 2 * len(adj))
    heads = np.empty(cap, dtype=np.int64)
    up_ptr = np.zeros(n + 1, dtype=np.int64)
    parent = np.full(n, -1, dtype=np.int64)
    child = np.full(n, -1, dtype=np.int64)  # first child in the elimination tree
    sibling = np.full(n, -1, dtype=np.int64)  # next child of the same parent
    mark = np.full(n, -1, dtype=np.int64)
    k = 0
    for r in range(n):
        start = k
        v = order[r]
        need = k + (xadj[v + 1] - xadj[v])
        c = child[r]
        while c >= 0:
            need += up_ptr[c + 1] - up_ptr[c]
            c = sibling[c]
        if need > cap:
            cap = max(2 * cap, need)
            grown = np.empty(cap, dtype=np.int64)
            for i in range(k):  # a loop, not a slice copy: no shape check to compile
                grown[i] = heads[i]
            heads = grown
        for a in range(xadj[v], xadj[v + 1]):
            q = rank[adj[a]]
            if q > r and mark[q] != r:
                mark[q] = r
                heads[k] = q
                k += 1
        c = child[r]
        while c >= 0:
            for e in range(up_ptr[c], up_ptr[c + 1]):
                q = heads[e]
                if q != r and mark[q] != r:
                    mark[q] = r
                    heads[k] = q
                    k += 1
            c = sibling[c]
        heads[start:k].sort()
        up_ptr[r + 1] = k
        if k > start:
            p = heads[start]
            parent[r] = p
            sibling[r] = child[p]
            child[p] = r
    return up_ptr, heads[:k].copy(), parent


@jit
def count_triangles(up_ptr: np.ndarray) -> int:
    """Number of lower triangles (pairs of upward edges of the same row)."""
    total = 0
    for r in range(len(up_ptr) - 1):
        d = up_ptr[r + 1] - up_ptr[r]
        total += d * (d - 1) // 2
    return total


@jit
def customize_arcs_kernel(
    arc_edge: np.ndarray, arc_up: np.ndarray, w: np.ndarray, up_w: np.ndarray,
    down_w: np.ndarray, up_mid: np.ndarray, down_mid: np.ndarray, up_arc: np.ndarray,
    down_arc: np.ndarray,
) -> None:  # fmt: skip
    """The first step of a customization: each upward edge's weights from its original arcs."""
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


@jit
def customize_rows_kernel(
    up_ptr: np.ndarray, up_head: np.ndarray, up_w: np.ndarray, down_w: np.ndarray,
    up_mid: np.ndarray, down_mid: np.ndarray, r_lo: int, r_hi: int,
) -> None:  # fmt: skip
    """Relax the lower triangles of ranks ``r_lo .. r_hi - 1`` (in rank order, after
    :func:`customize_arcs_kernel` and every lower rank), without a stored triangle index.

    The edge ``(x, y)`` closing the triangle of rank ``r`` with ``x = up_head[i] < y =
    up_head[j]`` is found by merging ``r``'s row (from ``j = i + 1`` on) with ``x``'s row: both are
    ascending and the second contains the first (chordality)."""
    for r in range(r_lo, r_hi):
        end = up_ptr[r + 1]
        for i in range(up_ptr[r], end - 1):
            x = up_head[i]
            # the first head of r after x, found by bisection in x's row; then a forward merge
            f = up_ptr[x]
            hi = up_ptr[x + 1]
            first = up_head[i + 1]
            while f < hi:
                mid = (f + hi) >> 1
                if up_head[mid] < first:
                    f = mid + 1
                else:
                    hi = mid
            for j in range(i + 1, end):
                yj = up_head[j]
                while up_head[f] < yj:
                    f += 1
                # x -> r -> y and y -> r -> x
                c = down_w[i] + up_w[j]
                if c < up_w[f]:
                    up_w[f] = c
                    up_mid[f] = r
                c = down_w[j] + up_w[i]
                if c < down_w[f]:
                    down_w[f] = c
                    down_mid[f] = r
