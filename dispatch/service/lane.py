"""Where the service's computations run: the *engine lane*.

Recommendations, surge plans, routes and matrices run in a lane apart from the state changes, on a
snapshot of the state (the units, the closures), one at a time. Two lanes, one protocol:

* :class:`ThreadLane` (``dispatch serve --engine thread``): the service's own engine, in the
  calling thread, under a lock. Nothing to start; but the computation shares the process's GIL
  with the event loop that receives unit updates, so under a saturating load the updates' own
  handling (parsing, the commit, the answer) waits for the GIL.
* :class:`ProcessLane` (``--engine process``): an engine of its own in a worker process (the same
  map, run cards, hospitals, coverage settings), which follows the snapshot's closures
  (:meth:`~dispatch.service.engine.Engine.sync_closures`). The worker computes while the service's
  process, holding the state, answers unit updates with a GIL of its own.

Both give the same answers (the tests run both); ``benchmarks/service.py`` measures both.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Protocol

from dispatch.service import timing
from dispatch.service.engine import Engine

__all__ = ["LANES", "EngineLane", "LaneError", "ProcessLane", "ThreadLane"]

#: The lanes by the name ``dispatch serve --engine`` takes.
LANES = ("thread", "process")


class LaneError(RuntimeError):
    """The lane cannot compute (its worker process stopped): the service answers 503."""


class EngineLane(Protocol):
    """Runs one engine method at a time on a snapshot of the closures."""

    def run(
        self,
        method: str,
        closures: tuple[Any, Sequence[Mapping[str, Any]]],
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        """``engine.<method>(*args, **kwargs)`` with the snapshot's closures in force.

        `closures` is ``(closure_set, specs)``: the network's immutable closure set (used in
        process) and the closure records (a worker process applies them to its own network).
        """
        ...

    def close(self) -> None:
        """Stop the lane (a worker process ends)."""
        ...


class ThreadLane:
    """The service's engine in the calling thread, under a lock (one computation at a time)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.lock = threading.Lock()

    def run(
        self,
        method: str,
        closures: tuple[Any, Sequence[Mapping[str, Any]]],
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        t = time.perf_counter()
        with self.lock:
            timing.add("lane", (time.perf_counter() - t) * 1e3)
            with timing.stage("compute"):
                return getattr(self.engine, method)(*args, closures=closures[0], **kwargs)

    def close(self) -> None:
        return None


_ENGINE: Engine | None = None


def _exit_with(parent: int) -> None:
    """End this worker once the service's process is gone (killed, or ended by a signal that
    left it no time to stop its lane): the worker is never left behind."""
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(0)


def _start_worker(settings: dict[str, Any], parent: int) -> None:
    global _ENGINE
    threading.Thread(target=_exit_with, args=(parent,), daemon=True, name="parent-watch").start()
    _ENGINE = Engine(**settings)


def _work(
    method: str, specs: Sequence[Mapping[str, Any]], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    engine = _ENGINE
    if engine is None:  # pragma: no cover - the initializer always ran
        raise RuntimeError("the engine worker was not started")
    engine.sync_closures(specs)
    out = getattr(engine, method)(*args, **kwargs)
    if method == "warm":  # the worker's start-up is over: its objects are never scanned again
        gc.collect()
        gc.freeze()
    return out


class ProcessLane:
    """An engine of its own in one worker process (started now: it loads the map).

    Parameters
    ----------
    settings : mapping
        :class:`~dispatch.service.engine.Engine` arguments (``map_name``, ``hospitals``,
        ``run_cards``, ``coverage``, ...): the worker builds the same engine.
    """

    def __init__(self, settings: Mapping[str, Any]) -> None:
        ctx = multiprocessing.get_context("spawn")  # no inherited threads or locks
        self.settings = dict(settings)
        self.pool = ProcessPoolExecutor(
            max_workers=1,
            mp_context=ctx,
            initializer=_start_worker,
            initargs=(self.settings, os.getpid()),
        )
        self.lock = threading.Lock()
        self.pool.submit(_work, "summary", (), (), {}).result()  # started and loaded

    def run(
        self,
        method: str,
        closures: tuple[Any, Sequence[Mapping[str, Any]]],
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        t = time.perf_counter()
        try:
            with self.lock:  # one computation at a time: the others wait here, not in the pool
                timing.add("lane", (time.perf_counter() - t) * 1e3)
                with timing.stage("compute"):  # the worker's time and the hand-over both ways
                    job = self.pool.submit(_work, method, list(closures[1]), args, kwargs)
                    return job.result()
        except BrokenProcessPool as exc:
            raise LaneError(f"the engine worker process stopped: {exc}") from None

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
