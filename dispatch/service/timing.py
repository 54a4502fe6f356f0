"""Where a request's time goes inside the service: stages, reported in ``Server-Timing``.

The HTTP layer starts a record per request (:func:`begin`); the stages it passes through add their
time to it (:func:`stage`), in whichever thread they run (the record follows the request's context
into the engine lane's threads). The response then carries ``Server-Timing: app;dur=MS,
queue;dur=MS, ...`` so a client (``benchmarks/service.py``) can tell a slow computation from a
wait for the lane, the disk or the event loop.

Stages: ``queue`` (waiting for an engine thread), ``lane`` (waiting for the engine lane: another
computation runs), ``compute`` (the library's computation), ``commit`` (the SQLite transaction),
``encode`` (the JSON answer), ``resume`` (the event loop taking the answer back from the thread),
``durable`` (waiting for the fsync of the change), ``gc`` (a garbage-collection pause that this
request's thread ran).

:class:`GcPauses` keeps the process's garbage-collection pauses (``gc.callbacks``), for
``GET /v1/health``.
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

__all__ = ["GcPauses", "add", "begin", "gc_pauses", "header", "stage"]

_STAGES: ContextVar[dict[str, float] | None] = ContextVar("dispatch_service_stages", default=None)


def begin() -> dict[str, float]:
    """Start the stage record of the request running in this context."""
    rec: dict[str, float] = {}
    _STAGES.set(rec)
    return rec


def add(name: str, ms: float) -> None:
    """Add `ms` milliseconds to stage `name` of the current request (if one is recorded)."""
    rec = _STAGES.get()
    if rec is not None:
        rec[name] = rec.get(name, 0.0) + ms


@contextmanager
def stage(name: str) -> Iterator[None]:
    """Time the block as stage `name` of the current request."""
    t = time.perf_counter()
    try:
        yield
    finally:
        add(name, (time.perf_counter() - t) * 1e3)


def header(app_ms: float, rec: dict[str, float]) -> bytes:
    """The ``Server-Timing`` value: ``app`` (request in to response out) first, then the stages."""
    parts = [f"app;dur={app_ms:.3f}"] + [f"{k};dur={v:.3f}" for k, v in rec.items()]
    return ", ".join(parts).encode()


class GcPauses:
    """The process's garbage-collection pauses (a ``gc.callbacks`` hook), per generation.

    Each pause is also added to the stage ``gc`` of the request whose thread ran it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._t0 = 0.0
        self.count = [0, 0, 0]
        self.total_ms = [0.0, 0.0, 0.0]
        self.max_ms = [0.0, 0.0, 0.0]
        gc.callbacks.append(self._hook)

    def _hook(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._t0 = time.perf_counter()
            return
        ms = (time.perf_counter() - self._t0) * 1e3
        g = int(info.get("generation", 2))
        with self._lock:
            self.count[g] += 1
            self.total_ms[g] += ms
            self.max_ms[g] = max(self.max_ms[g], ms)
        add("gc", ms)

    def close(self) -> None:
        """Stop recording."""
        if self._hook in gc.callbacks:
            gc.callbacks.remove(self._hook)

    def summary(self) -> dict[str, Any]:
        """Counts, total and longest pause (ms) per generation, and whether start-up objects are
        frozen (``gc.freeze``: never scanned again)."""
        with self._lock:
            return {
                "collections": list(self.count),
                "total_ms": [round(x, 1) for x in self.total_ms],
                "max_ms": [round(x, 2) for x in self.max_ms],
                "frozen_objects": gc.get_freeze_count(),
            }


_GC: GcPauses | None = None
_GC_LOCK = threading.Lock()


def gc_pauses() -> GcPauses:
    """The process's one :class:`GcPauses` recorder (installed on first use)."""
    global _GC
    with _GC_LOCK:
        if _GC is None:
            _GC = GcPauses()
        return _GC
