"""numba compilations are reported as a progress task; long CCH work reports its steps."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numba
import numpy as np
import pytest

import dispatch
from dispatch.progress import Progress, reporting
from dispatch.routing import cch, kernels


class Recorder:
    """A reporter that keeps (description, total, steps reported) of every task."""

    def __init__(self) -> None:
        self.tasks: list[list[object]] = []

    @contextlib.contextmanager
    def __call__(self, description: str, total: int | None, unit: str) -> Iterator[Progress]:
        entry: list[object] = [description, total, 0]
        self.tasks.append(entry)

        class P:
            def update(self, n: int = 1) -> None:
                entry[2] = int(entry[2]) + n  # type: ignore[call-overload]

        yield P()


def test_a_numba_compilation_is_reported_once_per_burst() -> None:
    rec = Recorder()

    def twice(x: float) -> float:  # a new function: numba compiles it here (not cached)
        return 2.0 * x

    with reporting(rec):
        f = numba.njit(twice)
        assert f(2.0) == 4.0
        g = numba.njit(lambda x: x + 1.0)
        assert g(1.0) == 2.0  # within the burst: the same task
        kernels._REPORTER.close()
    names = [t[0] for t in rec.tasks]
    assert names == ["compiling routing kernels (first run only)"]
    assert int(rec.tasks[0][2]) >= 2  # type: ignore[call-overload]
    # nothing is reported without a reporter, and nothing stays open
    h = numba.njit(lambda x: x - 1.0)
    assert h(1.0) == 0.0
    kernels._REPORTER.close()
    assert len(rec.tasks) == 1


def test_ordering_and_customization_report_their_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    """On a graph at or above PROGRESS_MIN_NODES (lowered here to Campo Grande's size) the order
    reports every node placed and the customization every lower triangle; same hierarchy."""
    mp = monkeypatch
    net = dispatch.load_network("campo_grande")
    args = (net.arc_tail, net.arc_head, net.node_lat, net.node_lon)
    quiet = cch.build_hierarchy(*args)
    mp.setattr(cch, "PROGRESS_MIN_NODES", 1000)
    rec = Recorder()
    with reporting(rec):
        h = cch.build_hierarchy(*args)
        m = cch.customize(h, net.weights("ambulance"))
    assert np.array_equal(h.order, quiet.order) and np.array_equal(h.up_head, quiet.up_head)
    order_task, custom_task = rec.tasks
    assert order_task[0] == "ordering the road graph (CCH)"
    assert order_task[1] == order_task[2] == net.n_nodes
    deg = np.diff(h.up_ptr)
    assert custom_task[1] == custom_task[2] == int(np.sum(deg * (deg - 1) // 2 + 1))
    for a, b in zip(m, cch.customize(quiet, net.weights("ambulance")), strict=True):
        assert np.array_equal(a, b)
