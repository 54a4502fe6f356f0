"""Numba primitives shared by the routing kernels: grouped arrays, the binary heap, edge positions.

Kernels take their arrays grouped in small named tuples (:class:`ArcEnds`, :class:`Adjacency`,
:class:`Scratch`, :class:`UnitPositions`, :class:`Exits`) instead of long positional lists: numba
compiles a named tuple of arrays to a struct, so attribute access inside a kernel costs nothing.
Entry kernels (called from Python) receive each group as a plain tuple (:data:`Packed`) and rebuild
the named tuple on their first line: see :data:`Packed` for why.

An edge position is ``(arc, t)``: fraction ``t`` along ``arc`` from its tail (0) to its head (1); the
other direction of a two-way street is ``twin[arc]`` (-1 when there is none). Everything here is
scalar and allocation-free except the small seed arrays, so that every kernel agrees on the same
arithmetic: a point is *left* forward to the arc's head or back along the twin to its tail, and
*reached* from the arc's tail or, along the twin, from its head; a point at an arc's end is at that
node.

**Compilation.** Every kernel is declared with :func:`jit`: numba compiles it on its first call
(only the kernels a command uses) and keeps the machine code in its on-disk cache (``cache=True``)
in a folder named by a digest of the sources of every module that declares kernels
(:data:`KERNEL_SOURCES`): ``dispatch/__pycache__/numba-<digest>``, or ``$NUMBA_CACHE_DIR/
dispatch-<digest>``; later processes load it in milliseconds. numba checks only the timestamp of
a kernel's own file, not of the helpers it inlines from other files (this module's): with the
digest, a change to any kernel source starts a new cache instead of loading stale machine code.
Where no cache folder is writable (a read-only install and home), the cache goes to a folder in
the system's temporary directory, and without one either, kernels are compiled in memory by each
process: silently, never an error. While numba compiles (the first run after an
install, about 10 CPU s for the Dijkstra kernels and 15 s more for the CCH's), the work is reported
to :func:`dispatch.progress.task` as "compiling routing kernels (first run only)".

numba compiles in one thread, under a global lock. A command that knows which kernels it will call
can compile them first on two cores with :func:`compile_concurrently` (warm-up jobs shared with a
forked child process; what the child compiles reaches this process through the on-disk cache) and
skip that when :func:`cached_on_disk` says they are there: ``dispatch simulate`` does
(:mod:`dispatch.sim.warmup`). Callers pass every kernel one type per argument (int64 node and arc
ids into the heap, read-only masks, C-contiguous arrays), so that each kernel is compiled once.
"""

from __future__ import annotations

import atexit
import hashlib
import logging
import os
import sys
import tempfile
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any, NamedTuple, TypeVar, cast

import numba
import numba.extending
import numpy as np
from numba.core import event as _event

from dispatch.progress import Progress, reporting, task

F = TypeVar("F", bound=Callable[..., Any])


def _probe() -> None:  # a plain function of this file, to ask numba where it would cache
    return None


def _cache_usable() -> bool:
    try:
        from numba.core.caching import FunctionCache

        FunctionCache(_probe)  # type: ignore[no-untyped-call]
    except RuntimeError:  # "no locator available": no writable cache folder
        return False
    except Exception:  # another numba: let njit decide
        return True
    return True


#: The modules that declare numba kernels (paths below the package): their sources name the cache.
KERNEL_SOURCES = (
    "roads/snapping.py", "roads/walk.py", "routing/cch.py", "routing/dijkstra.py",
    "routing/kernels.py", "routing/order.py", "routing/p2p.py", "routing/queries.py",
    "routing/reach.py",
)  # fmt: skip


def _sources_digest() -> str:
    """A digest of :data:`KERNEL_SOURCES` (names and contents)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    h = hashlib.sha256()
    for rel in KERNEL_SOURCES:
        h.update(rel.encode())
        try:
            with open(os.path.join(root, rel), "rb") as f:
                h.update(f.read())
        except OSError:
            h.update(b"?")
    return h.hexdigest()[:16]


def _choose_cache() -> bool:
    """Whether kernels can use numba's on-disk cache: in a folder named by the kernel sources'
    digest (``$NUMBA_CACHE_DIR/dispatch-<digest>``, else ``dispatch/__pycache__/numba-<digest>``),
    or in the system's temporary directory if that is not writable."""
    digest = _sources_digest()
    user = os.environ.get("NUMBA_CACHE_DIR")
    if user:
        folder = os.path.join(user, f"dispatch-{digest}")
    else:
        pkg = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        folder = os.path.join(pkg, "__pycache__", f"numba-{digest}")
    numba.config.CACHE_DIR = folder  # type: ignore[attr-defined]  # read when a kernel is declared
    if _cache_usable():
        return True
    uid = getattr(os, "getuid", lambda: 0)()
    folder = os.path.join(tempfile.gettempdir(), f"dispatch-numba-cache-{uid}", digest)
    numba.config.CACHE_DIR = folder  # type: ignore[attr-defined]
    return _cache_usable()


#: Whether the kernels use numba's on-disk cache (see the module docstring).
CACHE: bool = _choose_cache()


def jit(fn: F) -> F:
    """Declare a kernel: ``numba.njit(cache=CACHE, nogil=True)``, compiled on its first call."""
    return cast(F, numba.njit(cache=CACHE, nogil=True)(fn))


class _CompileReporter(_event.Listener):
    """Reports numba compilations to :func:`dispatch.progress.task`: one task per burst of
    compilations (those less than ``gap_s`` apart), one step per function compiled."""

    def __init__(self, gap_s: float = 0.5) -> None:
        self.gap_s = gap_s
        self._local = threading.local()
        self._lock = threading.Lock()
        self._open: tuple[AbstractContextManager[Progress], Progress] | None = None
        self._timer: threading.Timer | None = None

    def on_start(self, event: object) -> None:
        if getattr(self._local, "muted", False):
            return
        depth = getattr(self._local, "depth", 0)
        self._local.depth = depth + 1
        if depth:
            return
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if self._open is None:
                ctx = task("compiling routing kernels (first run only)", unit="function")
                self._open = (ctx, ctx.__enter__())

    def on_end(self, event: object) -> None:
        if getattr(self._local, "muted", False):
            return
        self._local.depth = depth = max(getattr(self._local, "depth", 1) - 1, 0)
        with self._lock:
            if self._open is not None:
                self._open[1].update(1)
            if depth == 0 and self._open is not None:
                self._timer = threading.Timer(self.gap_s, self.close)
                self._timer.daemon = True
                self._timer.start()

    @contextmanager
    def muted(self) -> Iterator[None]:
        """Report nothing of the compilations in this thread during the block."""
        self._local.muted = True
        try:
            yield
        finally:
            self._local.muted = False

    @contextmanager
    def held(self) -> Iterator[None]:
        """Keep the task open for the whole block (compilations in another process included)."""
        self.on_start(None)
        try:
            yield
        finally:
            self._local.depth = max(getattr(self._local, "depth", 1) - 1, 0)
            if self._local.depth == 0:
                self.on_end_quiet()

    def on_end_quiet(self) -> None:
        """Schedule the task's close (as :meth:`on_end`, without counting a function)."""
        with self._lock:
            if self._open is not None:
                self._timer = threading.Timer(self.gap_s, self.close)
                self._timer.daemon = True
                self._timer.start()

    def close(self) -> None:
        """Close the open task, if any."""
        with self._lock:
            opened, self._open, self._timer = self._open, None, None
        if opened is not None:
            opened[0].__exit__(None, None, None)


_REPORTER = _CompileReporter()
_event.register("numba:compile", _REPORTER)  # type: ignore[no-untyped-call]
atexit.register(_REPORTER.close)  # a bar still open when the process ends is closed first


def cached_on_disk(*kernels: object) -> bool:
    """Whether numba's on-disk cache holds a compiled version of each of ``kernels`` (declared
    with :func:`jit`) for their current source; False without an on-disk cache."""
    for k in kernels:
        try:
            index = k._cache._cache_file._load_index()  # type: ignore[attr-defined]  # {} when stale
        except Exception:  # no on-disk cache (NullCache), or another numba's internals
            return False
        if not index:
            return False
    return True


@numba.njit(nogil=True)
def _numba_ready(a: np.ndarray) -> float:
    """A trivial function: compiling it makes numba load what every compilation needs (about
    1 CPU s in a new process: its typing and lowering registries, ``numpy`` implementations)."""
    return float(a.sum())


def compile_concurrently(
    first: Sequence[Callable[[], object]], pool: Sequence[Callable[[], object]]
) -> None:
    """Compile kernels on two cores: this process runs the jobs ``first``, then it and a forked
    child process take the jobs of ``pool`` in order, each job once; return when all are done.

    A warm-up job calls kernels once on small inputs of the types the real work will use, so that
    numba compiles them and writes them to its on-disk cache; the child's kernels reach this
    process through that cache (numba writes each file atomically). numba compiles in one thread
    under a global lock, so a child is the only way to use a second core; taking jobs in turn
    (largest first) keeps both busy whatever else the machine runs. Off Linux (``fork`` without
    ``exec`` is unsafe on macOS and missing on Windows), without an on-disk cache or a second
    CPU, or in a process that already runs other threads (forking one is unsafe), every job runs
    here, one after the other: the same kernels, compiled serially. The child is silent (no
    progress, no compile task, no log, no warning) and a job that fails in it only costs time:
    this process compiles what is missing when it calls it. While the jobs run, the task
    "compiling routing kernels (first run only)" stays open.
    """
    fork = (
        CACHE
        and bool(pool)
        and sys.platform.startswith("linux")  # fork without exec: unsafe on macOS, none on Windows
        and (os.cpu_count() or 1) > 1
        and threading.active_count() == 1
    )
    if not fork:
        with _REPORTER.held():
            for job in (*first, *pool):
                job()
        return
    with tempfile.TemporaryDirectory(prefix="dispatch-compile-") as claims:

        def take_pool() -> None:  # a job is taken by creating its claim file (atomic)
            for i, job in enumerate(pool):
                try:
                    os.close(os.open(os.path.join(claims, str(i)), os.O_CREAT | os.O_EXCL))
                except FileExistsError:
                    continue
                job()

        with _REPORTER.muted():  # no task, no timer thread: this process is about to fork
            _numba_ready(np.zeros(1))  # numba's first compilation loads its registries: once
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the child: compile, then leave without running the parent's exit handlers
            code = 1
            try:
                _event.unregister("numba:compile", _REPORTER)  # type: ignore[no-untyped-call]
                logging.disable(logging.CRITICAL)  # what it would say, this process says
                warnings.simplefilter("ignore")
                with reporting(None):
                    take_pool()
                code = 0
            except BaseException:  # noqa: BLE001  # the parent compiles whatever is missing
                pass
            finally:
                os._exit(code)
        try:
            with _REPORTER.held():  # opened after the fork: a progress bar may start a thread
                for job in first:
                    job()
                take_pool()
                os.waitpid(pid, 0)
                pid = 0
        finally:
            if pid:  # interrupted or failed: the child's work is not wanted any more
                os.kill(pid, 9)
                os.waitpid(pid, 0)


def _address_pointer(typingctx: Any, addr: Any) -> Any:
    """``void *`` from an integer address (typing and code generation of :func:`address_pointer`)."""
    from numba.core import cgutils, types

    if not isinstance(addr, types.Integer):
        return None

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        return builder.inttoptr(args[0], cgutils.voidptr_t)

    return types.voidptr(addr), codegen


#: Inside a kernel: ``numba.carray(address_pointer(a), shape, dtype=...)`` is the C-contiguous array
#: whose data starts at address ``a`` (an array's ``ctypes.data``), made without unboxing an array
#: argument. The caller must keep that array alive and unchanged in shape for the call's duration
#: (the steady ``fastest_units`` plan holds every array it points to: see
#: ``dispatch.routing.queries._bind_table_call``).
address_pointer: Any = numba.extending.intrinsic(_address_pointer)


#: A group of arrays as an entry kernel receives it: the plain tuple of a NamedTuple below
#: (``tuple(group)``), rebuilt into the NamedTuple inside the kernel. numba types a plain tuple of
#: arrays in its C fast path; a NamedTuple argument goes through Python-level typing (about 2 us
#: per array per call, which would double the cost of a dispatch query). The fields are arrays and
#: scalars of several types, hence ``Any``.
Packed = tuple[Any, ...]


class ArcEnds(NamedTuple):
    """The arrays of the edge-position arithmetic: each arc's tail and head node, and its twin."""

    tail: np.ndarray
    head: np.ndarray
    twin: np.ndarray


class Adjacency(NamedTuple):
    """One search direction as CSR: the arcs of node ``v`` are ``adj[ptr[v]:ptr[v + 1]]`` and
    ``other[a]`` is the node at arc ``a``'s far end (forward: head; reverse: tail)."""

    ptr: np.ndarray
    adj: np.ndarray
    other: np.ndarray


class Scratch(NamedTuple):
    """One thread's scratch arrays for the Dijkstra kernels (stamped: never cleared)."""

    dist: np.ndarray
    stamp: np.ndarray
    pred: np.ndarray
    mark: np.ndarray
    hd: np.ndarray
    hv: np.ndarray


def new_scratch(n_nodes: int, n_arcs: int) -> Scratch:
    """Scratch arrays for a graph of ``n_nodes`` nodes and ``n_arcs`` arcs."""
    return Scratch(
        np.empty(n_nodes),
        np.zeros(n_nodes, dtype=np.int64),
        np.empty(n_nodes, dtype=np.int32),
        np.zeros(n_nodes, dtype=np.int64),
        np.empty(n_arcs + 64),
        np.empty(n_arcs + 64, dtype=np.int32),
    )


class UnitPositions(NamedTuple):
    """Units of one class: edge position (``arc``, ``t``) and turnout seconds."""

    arc: np.ndarray
    t: np.ndarray
    turnout: np.ndarray


class Exits(NamedTuple):
    """Per-node linked lists of unit exits: ``first[v]`` heads node v's list, ``next`` links it;
    ``unit`` and ``cost`` (to leave the unit's position to that node, turnout included)."""

    first: np.ndarray
    next: np.ndarray
    unit: np.ndarray
    cost: np.ndarray


class NearestTable(NamedTuple):
    """For every node its ``K`` nearest units (``K = unit.shape[1]``): ids, distances, and ``n``,
    how many of the ``K`` slots are filled."""

    unit: np.ndarray
    dist: np.ndarray
    n: np.ndarray


@jit
def heap_push(hd: np.ndarray, hv: np.ndarray, size: int, d: float, v: int | np.int64) -> int:
    """Push ``(d, v)`` on the binary min-heap ``hd``/``hv`` of ``size`` items; return the new size."""
    i = size
    while i > 0:
        p = (i - 1) >> 1
        if hd[p] <= d:
            break
        hd[i] = hd[p]
        hv[i] = hv[p]
        i = p
    hd[i] = d
    hv[i] = v
    return size + 1


@jit
def heap_pop(hd: np.ndarray, hv: np.ndarray, size: int) -> int:
    """Remove the top of the heap (read ``hd[0]``, ``hv[0]`` first); return the new size."""
    size -= 1
    d = hd[size]
    v = hv[size]
    i = 0
    while True:
        c = 2 * i + 1
        if c >= size:
            break
        if c + 1 < size and hd[c + 1] < hd[c]:
            c += 1
        if hd[c] >= d:
            break
        hd[i] = hd[c]
        hv[i] = hv[c]
        i = c
    hd[i] = d
    hv[i] = v
    return size


@jit
def relax(g: Adjacency, w: np.ndarray, v: int, d: float, s: Scratch, cur: int, size: int) -> int:
    """Relax the arcs of settled node ``v`` (at ``d``) in a stamped Dijkstra; return the heap size.

    A node not stamped ``cur`` counts as unvisited; ``s.pred`` records the arc used."""
    for j in range(g.ptr[v], g.ptr[v + 1]):
        a = g.adj[j]
        nd = d + w[a]
        t = g.other[a]
        if nd < np.inf and (s.stamp[t] != cur or nd < s.dist[t]):
            s.stamp[t] = cur
            s.dist[t] = nd
            s.pred[t] = a
            size = heap_push(s.hd, s.hv, size, nd, np.int64(t))
    return size


@jit
def seed_heap(seed_node: np.ndarray, seed_cost: np.ndarray, s: Scratch, cur: int) -> int:
    """Start a stamped search from ``(node, cost)`` seeds (-1 nodes and inf costs skipped)."""
    size = int(np.int64(0))  # not a literal: one compilation of heap_push
    for j in range(len(seed_node)):
        v = seed_node[j]
        c = seed_cost[j]
        if v < 0 or not c < np.inf:
            continue
        if s.stamp[v] != cur or c < s.dist[v]:
            s.stamp[v] = cur
            s.dist[v] = c
            s.pred[v] = -1
            size = heap_push(s.hd, s.hv, size, c, np.int64(v))  # int64 in both: one compilation
    return size


@jit
def leave_seed(e: ArcEnds, w: np.ndarray, a: int, t: float, j: int) -> tuple[int, float]:
    """Seed ``j`` (0..2) of a point *leaving* position ``(a, t)``: ``(node, cost)``, cost inf if none.

    0: forward to the head for ``(1-t) w[a]``; 1: back along the twin to the twin's head for
    ``t w[twin]`` (the twin's own end: next to a junction expanded for turn restrictions or turn
    costs it is not ``a``'s tail); 2: at the tail for 0 when ``t == 0``. A point at ``t == 0`` next
    to an expanded junction stands at the junction: it leaves from both of ``a``'s copies there,
    the departure copy (seed 2) and the arrival copy (seed 1, cost 0), from which every turn the
    junction allows is open (as to a vehicle that came in along ``a``'s road); at a plain node
    both are the same node and seed 1 stays closed."""
    if j == 0:
        return e.head[a], (0.0 if t >= 1.0 else (1.0 - t) * w[a])
    if j == 1:
        b = e.twin[a]
        if b < 0:
            return e.tail[a], np.inf
        if t <= 0.0:
            return e.head[b], (0.0 if e.head[b] != e.tail[a] else np.inf)
        return e.head[b], t * w[b]
    return e.tail[a], (0.0 if t <= 0.0 else np.inf)


@jit
def reach_seed(e: ArcEnds, w: np.ndarray, a: int, t: float, j: int) -> tuple[int, float]:
    """Seed ``j`` (0..2) of a point *reached* at position ``(a, t)``: ``(node, cost)``.

    0: from the tail for ``t w[a]``; 1: from the twin's tail along the twin for ``(1-t) w[twin]``
    (the twin's own end, see :func:`leave_seed`); 2: at the head for 0 when ``t == 1``. A point at
    ``t == 1`` next to an expanded junction is reached at both of ``a``'s copies there: the arrival
    copy (seed 2) and the departure copy into the twin's road (seed 1, cost 0), which every turn
    the junction allows leads to; at a plain node seed 1 stays closed."""
    if j == 0:
        return e.tail[a], (0.0 if t <= 0.0 else t * w[a])
    if j == 1:
        b = e.twin[a]
        if b < 0:
            return e.head[a], np.inf
        if t >= 1.0:
            return e.tail[b], (0.0 if e.tail[b] != e.head[a] else np.inf)
        return e.tail[b], (1.0 - t) * w[b]
    return e.head[a], (0.0 if t >= 1.0 else np.inf)


@jit
def same_arc_time(twin: np.ndarray, w: np.ndarray, a: int, t_from: float, t_to: float) -> float:
    """Time to drive along arc ``a`` from fraction ``t_from`` to ``t_to`` (forward on ``a``,
    backward on its twin); inf when the direction needed does not exist."""
    ahead = t_to - t_from
    if ahead == 0.0:
        return 0.0
    if ahead > 0.0:
        return float(ahead * w[a])
    b = twin[a]
    return float(-ahead * w[b]) if b >= 0 else np.inf


@jit
def seeds_kernel(
    e_: Packed, w: np.ndarray, arcs: np.ndarray, ts: np.ndarray, reach: bool, nodes: np.ndarray,
    costs: np.ndarray,
) -> None:  # fmt: skip
    """Fill ``nodes``/``costs`` (n, 3) with the leave (or ``reach``) seeds of many positions."""
    e = ArcEnds(*e_)
    for i in range(len(arcs)):
        for j in range(3):
            if reach:
                nodes[i, j], costs[i, j] = reach_seed(e, w, arcs[i], ts[i], j)
            else:
                nodes[i, j], costs[i, j] = leave_seed(e, w, arcs[i], ts[i], j)


@jit
def same_arc_kernel(
    twin: np.ndarray, w: np.ndarray, o_arc: np.ndarray, o_t: np.ndarray, d_arc: np.ndarray,
    d_t: np.ndarray, out: np.ndarray,
) -> None:  # fmt: skip
    """``out[i, j]``: time from origin i to destination j along the arc they share, else inf."""
    for i in range(len(o_arc)):
        for j in range(len(d_arc)):
            out[i, j] = (
                same_arc_time(twin, w, o_arc[i], o_t[i], d_t[j]) if o_arc[i] == d_arc[j] else np.inf
            )
