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
  process, holding the state, answers unit updates with a GIL of its own. The calling thread
  hands the request over a persistent pipe and waits for the answer itself (no executor, no
  thread of the lane's own in the service's process), and sends only what changed since its last
  request: the units whose ``Unit`` object is new, the closure records when they changed (the
  protocol is described at :class:`ProcessLane`).

Both give the same answers (the tests run both); ``benchmarks/service.py`` measures both under
load, ``benchmarks/lane_overhead.py`` the process lane's hand-over.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import pickle
import threading
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from multiprocessing.connection import Connection
from typing import Any, Protocol

from dispatch.errors import DispatchError
from dispatch.model import Unit
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

    def status(self) -> dict[str, Any]:
        """What ``GET /v1/health`` says of the lane (JSON-ready)."""
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

    def status(self) -> dict[str, Any]:
        """``{"engine": "thread"}``."""
        return {"engine": "thread"}


# --- the process lane ---------------------------------------------------------------------------
#
# The protocol over the pipe (each message one pickled tuple, ``send_bytes`` / ``recv_bytes``):
#
# service -> worker
#   ("call", n, method, pos, fleet, specs, args, kwargs)
#       ``engine.<method>(*args, **kwargs)``, request number `n`. `pos` is None (the arguments go
#       whole) or the position in `args` of the unit list, which then travels as `fleet`:
#       ``(ids, changed)``: `changed` the units the worker does not hold yet (by id: a new object),
#       `ids` the fleet's ids in order when they differ from the last list's (membership or order
#       changed), else None. The worker keeps its units by id, so the unchanged ones stay the very
#       objects its engine's fleet handle was synced with (``Engine.sync_fleet``). `specs` is the
#       closure records when they differ from the last sent (the worker syncs its closures to
#       them), else None.
#   ("raw", n, fn, args)        ``fn(*args)`` in the worker (:meth:`ProcessLane.submit`).
#   ("close",)                  the worker ends.
#
# worker -> service
#   ("ready", summary) once the engine is loaded (or ("raise", exc) and the worker ends);
#   (n, "ok", value, compute_s) | (n, "raise", exc, compute_s) | (n, "lost", exc, compute_s):
#   the answer to request `n` and the engine's own time for it; "lost" means the worker could
#   not apply the request's changes and dropped its copy of the state: the service sends the
#   whole state again.

#: The position of the unit list in the arguments of the engine methods that take one.
UNIT_ARG: dict[str, int] = {"recommend": 1, "assign": 1, "warm": 0}

_PROTOCOL = pickle.HIGHEST_PROTOCOL
#: Seconds before a worker that could not be started again is tried once more.
RESTART_RETRY_S = 10.0


def _exit_with(parent: int) -> None:
    """End this worker once the service's process is gone (killed, or ended by a signal that
    left it no time to stop its lane): the worker is never left behind."""
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(0)


def _portable(exc: BaseException) -> BaseException:
    """`exc` if it survives pickling, else the nearest that does (same message; a library error
    stays a :class:`DispatchError`)."""
    try:
        back = pickle.loads(pickle.dumps(exc, _PROTOCOL))
        if type(back) is type(exc) and str(back) == str(exc):
            return exc
    except Exception:  # noqa: BLE001 - any failure to travel is handled the same way
        pass
    if isinstance(exc, DispatchError):
        return DispatchError(str(exc))
    return RuntimeError(f"{type(exc).__name__}: {exc}")


class _Worker:
    """The worker process's side: the engine and its copy of the service's state."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.units: dict[str, Unit] = {}  # by id: the objects the engine's fleet was synced with
        self.ids: tuple[str, ...] = ()
        self.specs: list[Mapping[str, Any]] = []
        self.closures_synced = True

    def apply(self, fleet: tuple[tuple[str, ...] | None, list[Unit]] | None, specs: Any) -> None:
        """Take the request's changes (raises KeyError on a protocol fault: the state is lost)."""
        if specs is not None:
            self.specs = list(specs)
            self.closures_synced = False
        if fleet is not None:
            ids, changed = fleet
            for u in changed:
                self.units[u.id] = u
            if ids is not None:
                self.units = {i: self.units[i] for i in ids}
                self.ids = ids

    def call(
        self, method: str, pos: int | None, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[Any, float]:
        """``engine.<method>(*args, **kwargs)`` on the units held; the answer and its time (s)."""
        if not self.closures_synced:  # retried by the next request if it fails
            self.engine.sync_closures(self.specs)
            self.closures_synced = True
        if pos is not None:
            units = [self.units[i] for i in self.ids]
            args = (*args[:pos], units, *args[pos + 1 :])
        t = time.perf_counter()
        out = getattr(self.engine, method)(*args, **kwargs)
        compute_s = time.perf_counter() - t
        if method == "warm":  # the worker's start-up is over: its objects are never scanned again
            gc.collect()
            gc.freeze()
        return out, compute_s


def _serve(conn: Connection, settings: dict[str, Any], parent: int) -> None:
    """The worker process: load the engine, then answer requests until "close" or EOF."""
    threading.Thread(target=_exit_with, args=(parent,), daemon=True, name="parent-watch").start()
    try:
        worker = _Worker(Engine(**settings))
        conn.send_bytes(pickle.dumps(("ready", worker.engine.summary()), _PROTOCOL))
    except Exception as exc:  # noqa: BLE001 - the service raises it
        conn.send_bytes(pickle.dumps(("raise", _portable(exc)), _PROTOCOL))
        return
    while True:
        try:
            msg = pickle.loads(conn.recv_bytes())
        except (EOFError, OSError):  # the service's end is closed
            return
        if msg[0] == "close":
            return
        n = msg[1]
        kind, compute_s = "ok", 0.0
        try:
            if msg[0] == "raw":
                t = time.perf_counter()
                value = msg[2](*msg[3])
                compute_s = time.perf_counter() - t
            else:
                _, _, method, pos, fleet, specs, args, kwargs = msg
                try:
                    worker.apply(fleet, specs)
                except Exception:  # noqa: BLE001 - the service sends the whole state again
                    worker = _Worker(worker.engine)
                    worker.closures_synced = False
                    kind = "lost"
                    raise
                value, compute_s = worker.call(method, pos, args, kwargs)
        except Exception as exc:  # noqa: BLE001 - every error is the caller's to handle
            if not isinstance(exc, DispatchError):  # where it happened, for the service's log
                exc.add_note("in the engine worker process:\n" + traceback.format_exc())
            kind, value = ("raise" if kind == "ok" else kind), _portable(exc)
        try:
            data = pickle.dumps((n, kind, value, compute_s), _PROTOCOL)
        except Exception as exc:  # noqa: BLE001 - an answer that cannot travel
            data = pickle.dumps((n, "raise", _portable(exc), compute_s), _PROTOCOL)
        try:
            conn.send_bytes(data)
        except OSError:  # the service's end is closed
            return


class ProcessLane:
    """An engine of its own in one worker process (started now: it loads the map).

    The calling thread, holding the lane's lock (one computation at a time), sends its request
    over a persistent pipe and waits for the answer itself. A request carries only what changed
    since the last one: the units whose ``Unit`` object is not the one sent last (the service's
    snapshots share the objects of unchanged units), their ids when the fleet's membership
    changed, the closure records when they changed (the records are values: a changed closure is
    a new record). A method whose unit list is not known (:data:`UNIT_ARG`) gets its arguments
    whole.

    A :class:`DispatchError` in the worker is raised here with its type and message; any other
    exception too (the worker's traceback as a note), and the lane goes on. A worker that stopped
    (killed, or its pipe broken) raises :class:`LaneError` for the computation it was running;
    the next one starts a new worker (it loads the map: a few seconds, then the first answers
    build their speed bands' customizations again) and is sent the whole state; a worker that
    cannot start is tried again every ``RESTART_RETRY_S`` seconds, :class:`LaneError` meanwhile.
    The worker ends on :meth:`close`, or by itself when the service's process is gone.

    Parameters
    ----------
    settings : mapping
        :class:`~dispatch.service.engine.Engine` arguments (``map_name``, ``hospitals``,
        ``run_cards``, ``coverage``, ...): the worker builds the same engine.
    """

    def __init__(self, settings: Mapping[str, Any]) -> None:
        self.settings = dict(settings)
        self.lock = threading.Lock()
        self._n = 0
        self._broken: str | None = None
        self._closed = False
        #: Workers started again after one stopped (:meth:`run` restarts a stopped worker).
        self.restarts = 0
        self._retry_at = 0.0  # monotonic time before which a failed restart is not tried again
        #: The engine's own time in the worker for the last computation (seconds): the rest of
        #: :meth:`run`'s time is the hand-over (``benchmarks/lane_overhead.py``).
        self.compute_s = 0.0
        self._start()

    def _start(self) -> None:
        """Start a worker and wait until it has loaded the map (raises if it cannot)."""
        ctx = multiprocessing.get_context("spawn")  # no inherited threads or locks
        self._conn, child = ctx.Pipe(duplex=True)
        self.process = ctx.Process(
            target=_serve,
            args=(child, self.settings, os.getpid()),
            name="dispatch-engine",
            daemon=True,  # ended with the service's interpreter if close() was never called
        )
        self.process.start()
        child.close()  # the worker's end lives in the worker only: its death reads as EOF here
        self._reset()
        try:
            first = pickle.loads(self._conn.recv_bytes())
        except (EOFError, OSError) as exc:
            self._stop(grace_s=0.0)
            raise LaneError(f"the engine worker process did not start: {exc!r}") from None
        if first[0] != "ready":
            self._stop()
            raise first[1]
        self.summary: dict[str, Any] = first[1]

    def _replace_stopped(self) -> None:
        """Before a computation (holding the lock): a worker found stopped (killed, crashed,
        between computations or during the last one) is replaced by a new one."""
        if self._closed:
            return
        if self._broken is None and not self.process.is_alive():
            self._fail(f"the engine worker process stopped (exit code {self.process.exitcode})")
        if self._broken is not None:
            self._restart()

    def _restart(self) -> None:
        """A new worker in place of one that stopped (called holding the lock). A worker that
        cannot start is tried again after ``RESTART_RETRY_S``; meanwhile :class:`LaneError`."""
        now = time.monotonic()
        if now < self._retry_at:
            raise LaneError(
                f"{self._broken}; a new worker is tried again in {self._retry_at - now:.0f} s"
            )
        try:
            self._start()
        except Exception as exc:  # noqa: BLE001 - reported to the caller as the lane's error
            self._retry_at = time.monotonic() + RESTART_RETRY_S
            raise LaneError(f"{self._broken}; a new worker did not start: {exc}") from None
        self._broken = None
        self.restarts += 1

    def _reset(self) -> None:
        """Forget what the worker holds: the next request sends the whole state."""
        self._sent_units: dict[str, Unit] = {}
        self._sent_list: list[Unit] | None = None
        self._sent_specs: list[Mapping[str, Any]] | None = None

    # --- what changed ---------------------------------------------------------------------------

    def _fleet_delta(
        self, units: Sequence[Unit]
    ) -> tuple[tuple[str, ...] | None, list[Unit]] | None:
        """``(ids or None, changed units)`` for `units`, or None if they must go whole."""
        last = self._sent_list
        if last is not None and len(units) == len(last):
            changed = [(new, old) for new, old in zip(units, last, strict=True) if new is not old]
            if all(type(new) is Unit and new.id == old.id for new, old in changed):
                return None, [new for new, _ in changed]
        if not all(type(u) is Unit for u in units):
            return None
        ids = tuple(u.id for u in units)
        if len(set(ids)) != len(ids):  # not a fleet (ids are its keys): sent whole
            return None
        sent = self._sent_units
        return ids, [u for u in units if sent.get(u.id) is not u]

    def _request(
        self,
        method: str,
        specs: Sequence[Mapping[str, Any]],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> tuple[bytes, Callable[[], None]]:
        """The request's bytes, and what to note as sent once they are."""
        new_specs = list(specs)
        send_specs = None if new_specs == self._sent_specs else new_specs
        pos = UNIT_ARG.get(method)
        fleet = None
        units: Sequence[Unit] = ()
        if pos is not None and pos < len(args) and isinstance(args[pos], list | tuple):
            units = args[pos]
            fleet = self._fleet_delta(units)
        if fleet is not None and pos is not None:  # the list travels as `fleet`
            args = (*args[:pos], None, *args[pos + 1 :])
        else:
            pos = None
        data = pickle.dumps(
            ("call", self._n, method, pos, fleet, send_specs, args, kwargs), _PROTOCOL
        )

        def sent() -> None:
            self._sent_specs = new_specs
            if fleet is not None:
                ids, changed = fleet
                for u in changed:
                    self._sent_units[u.id] = u
                if ids is not None:
                    self._sent_units = {u.id: u for u in units}
                self._sent_list = list(units)

        return data, sent

    # --- the pipe -------------------------------------------------------------------------------

    def _send(self, data: bytes) -> None:
        if self._broken is not None:
            raise LaneError(self._broken)
        try:
            self._conn.send_bytes(data)
        except OSError as exc:
            raise self._fail(f"the engine worker process stopped: {exc!r}") from None
        except BaseException:  # interrupted mid-message: the pipe's stream is lost
            self._fail("the engine lane was interrupted while sending a request")
            raise

    def _receive(self, n: int) -> tuple[str, Any]:
        """The worker's answer to request `n` (older answers, of interrupted calls, are skipped)."""
        while True:
            try:
                data = self._conn.recv_bytes()
            except (EOFError, OSError) as exc:
                raise self._fail(f"the engine worker process stopped: {exc!r}") from None
            except BaseException:  # interrupted: a part of the answer may be lost
                self._fail("the engine lane was interrupted while receiving an answer")
                raise
            got, kind, value, compute_s = pickle.loads(data)
            if got == n:
                self.compute_s = compute_s
                return kind, value

    def _fail(self, reason: str) -> LaneError:
        """The lane is broken for good: stop the worker; the error to raise."""
        self._broken = reason
        self._stop(grace_s=0.0)
        return LaneError(reason)

    def _stop(self, grace_s: float = 5.0) -> None:
        """Wait up to `grace_s` for the worker to end, then end it; close the pipe."""
        proc = self.process
        if proc.is_alive() and grace_s > 0:
            proc.join(grace_s)
        if proc.is_alive():
            proc.terminate()
            proc.join(5.0)
        self._conn.close()

    # --- the lane -------------------------------------------------------------------------------

    def run(
        self,
        method: str,
        closures: tuple[Any, Sequence[Mapping[str, Any]]],
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        t = time.perf_counter()
        with self.lock:  # one computation at a time: the others wait here
            timing.add("lane", (time.perf_counter() - t) * 1e3)
            with timing.stage("compute"):  # the worker's time and the hand-over both ways
                self._replace_stopped()
                for _attempt in range(2):
                    self._n += 1
                    data, sent = self._request(method, closures[1], args, kwargs)
                    self._send(data)
                    sent()
                    kind, value = self._receive(self._n)
                    if kind == "ok":
                        return value
                    if kind == "raise":
                        raise value
                    self._reset()  # "lost": the worker dropped its state; send it whole again
                raise value

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        """Run ``fn(*args)`` in the worker process as one computation of the lane (a test's
        deterministic hold, a diagnostic): returns once the lane is taken, with a future of the
        result; the lane's next computation waits until `fn` returns. `fn` and `args` must
        pickle (a module-level function)."""
        self.lock.acquire()
        try:
            self._replace_stopped()
            self._n += 1
            n = self._n
            self._send(pickle.dumps(("raw", n, fn, args), _PROTOCOL))
        except BaseException:
            self.lock.release()
            raise
        future: Future[Any] = Future()

        def wait() -> None:
            try:
                kind, value = self._receive(n)
                if kind == "ok":
                    future.set_result(value)
                else:
                    future.set_exception(value)
            except BaseException as exc:  # noqa: BLE001 - handed to the future's owner
                future.set_exception(exc)
            finally:
                self.lock.release()

        threading.Thread(target=wait, daemon=True, name="lane-submit").start()
        return future

    def status(self) -> dict[str, Any]:
        """The engine (``process``), whether its worker is running, its pid, and how many times
        a stopped worker was replaced."""
        alive = self.process.is_alive() and self._broken is None
        return {"engine": "process", "worker_alive": alive,
                "worker_pid": self.process.pid if alive else None, "restarts": self.restarts}  # fmt: skip

    def close(self) -> None:
        """End the worker (after the computation running, if any; at most a few seconds)."""
        got = self.lock.acquire(timeout=10.0)
        try:
            self._closed = True
            if self._broken is None:
                self._broken = "the engine lane is closed"
                try:
                    if got:
                        self._conn.send_bytes(pickle.dumps(("close",), _PROTOCOL))
                except OSError:
                    pass
                self._stop()
        finally:
            if got:
                self.lock.release()
