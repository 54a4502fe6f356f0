"""Durable state of the service: SQLite (WAL), an append-only change log plus the current state.

Every accepted change is one transaction: one row appended to ``log`` (kind, JSON payload, time)
and the rows of ``state`` it touches replaced (``units``, ``incidents``, ``closures``, keyed by id).
The service answers only after :meth:`Store.commit` returned, so what a client saw acknowledged is
on disk.

Durability. ``"process"``: ``synchronous=NORMAL`` in WAL mode; a committed change survives the
service being killed (SIGKILL, a crash) but the last changes may be lost if the machine itself loses
power. ``"full"`` (default): the same commit, then the WAL file is fsynced (what
``synchronous=FULL`` does at each commit) before the change is acknowledged, so it also survives a
power cut. The fsyncs are a group commit run by one thread of the store (the *syncer*): a caller
asks for its change (:meth:`Store.flush` blocks until it is on disk; :meth:`Store.on_durable` calls
back from the syncer, so an event loop can await it without holding a thread), and one fsync covers
every change committed before it began, so concurrent changes share an fsync (4-8 ms on the
project's disk) instead of queueing one each. The service asks after releasing its state lock; a
concurrent reader may therefore see a change whose fsync is still running (never one that is not
committed). On start the current state is read back from ``state``; :meth:`Store.replay` rebuilds
it from the log alone (the two must agree; the tests check it).

Standard library only (``sqlite3``).
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = ["DURABILITY", "KINDS", "Change", "Store"]

#: Durability levels: what an acknowledged change survives.
DURABILITY = {"full": "a power cut (WAL fsynced)", "process": "the process being killed"}


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


#: Tables of the current state (one JSON document per id).
KINDS = ("units", "incidents", "closures")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS log (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS state (
    kind TEXT NOT NULL,
    id TEXT NOT NULL,
    doc TEXT NOT NULL,
    PRIMARY KEY (kind, id)
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

#: A change: (kind, id, document or None to delete) for each state row it touches.
Change = tuple[str, str, Mapping[str, Any] | None]


class Store:
    """SQLite file holding the log and the current state.

    Parameters
    ----------
    path : str or Path
        Database file (created if missing). ``":memory:"`` keeps nothing (tests only).
    durability : {"full", "process"}, default "full"
        What an acknowledged change survives (see the module docstring).
    """

    def __init__(self, path: str | Path, *, durability: str = "full") -> None:
        if durability not in DURABILITY:
            raise ValueError(f"durability must be one of {list(DURABILITY)}, got {durability!r}")
        self.path = str(path)
        self.durability = durability
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        last = int(self._db.execute("SELECT MAX(seq) FROM log").fetchone()[0] or 0)
        self._committed = last  # last seq committed (written to the WAL)
        self._synced = last  # last seq known to be on disk (what an earlier run left is)
        self._cond = threading.Condition()  # guards the syncer's state below
        self._wanted = last  # the highest change a caller waits for
        self._waiters: list[tuple[int, Callable[[OSError | None], None]]] = []
        self._syncer: threading.Thread | None = None
        self._closed = False
        self._wal_fd: int | None = None
        self.fsyncs = 0  # how many fsyncs the syncer ran (the tests and the benchmark read it)
        if durability == "full" and self.path != ":memory:":
            _fsync_dir(Path(self.path).resolve().parent)  # the files' names are durable too

    def close(self) -> None:
        """Close the database (the changes waited for are made durable first)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._syncer is not None:
            self._syncer.join()
        if self._wal_fd is not None:
            os.close(self._wal_fd)
            self._wal_fd = None
        self._db.close()

    def load(self) -> dict[str, dict[str, dict[str, Any]]]:
        """Current state: ``{kind: {id: document}}``."""
        out: dict[str, dict[str, dict[str, Any]]] = {k: {} for k in KINDS}
        with self._lock:
            rows = self._db.execute("SELECT kind, id, doc FROM state ORDER BY kind, id").fetchall()
        for kind, rid, doc in rows:
            out.setdefault(kind, {})[rid] = json.loads(doc)
        return out

    def last_seq(self) -> int:
        """Sequence number of the last committed change (0 when none)."""
        with self._lock:
            row = self._db.execute("SELECT MAX(seq) FROM log").fetchone()
        return int(row[0] or 0)

    def get_meta(self, key: str) -> str | None:
        """A stored setting (e.g. the map the state belongs to)."""
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        """Store a setting."""
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def commit(self, kind: str, payload: Mapping[str, Any], changes: list[Change]) -> int:
        """Append one change to the log and apply it to the state, atomically; return its seq.

        Raises ``sqlite3.Error`` if it could not be stored (then nothing of it is stored).
        """
        at = datetime.now(UTC).isoformat(timespec="milliseconds")
        body = json.dumps(payload, separators=(",", ":"), sort_keys=True)
        with self._lock:
            cur = self._db.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                cur.execute(
                    "INSERT INTO log (at, kind, payload) VALUES (?, ?, ?)", (at, kind, body)
                )
                seq = int(cur.lastrowid or 0)
                for table, rid, doc in changes:
                    if doc is None:
                        cur.execute("DELETE FROM state WHERE kind = ? AND id = ?", (table, rid))
                    else:
                        cur.execute(
                            "INSERT OR REPLACE INTO state (kind, id, doc) VALUES (?, ?, ?)",
                            (table, rid, json.dumps(doc, separators=(",", ":"), sort_keys=True)),
                        )
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            self._committed = seq
        return seq

    def flush(self, seq: int) -> None:
        """Return once change `seq` is on disk (``durability="full"``; otherwise at once).

        Raises ``OSError`` if the fsync fails.
        """
        done = threading.Event()
        failed: list[OSError] = []

        def wake(err: OSError | None) -> None:
            if err is not None:
                failed.append(err)
            done.set()

        self.on_durable(seq, wake)
        done.wait()
        if failed:
            raise failed[0]

    def on_durable(self, seq: int, callback: Callable[[OSError | None], None]) -> None:
        """Call ``callback(None)`` once change `seq` is on disk, ``callback(error)`` if the fsync
        failed: at once (in this thread) when it already is (or with ``"process"`` durability),
        else from the syncer thread. The callback must be quick (it runs in the syncer)."""
        if not self.fsyncs_on_flush or seq <= self._synced:
            callback(None)
            return
        with self._cond:
            if seq <= self._synced:
                pending = False
            else:
                pending = True
                self._waiters.append((seq, callback))
                self._wanted = max(self._wanted, seq)
                if self._syncer is None:
                    self._syncer = threading.Thread(
                        target=self._sync_loop, name="dispatch-store-syncer", daemon=True
                    )
                    self._syncer.start()
                self._cond.notify()
        if not pending:
            callback(None)

    def _sync_loop(self) -> None:
        """The syncer: fsync the WAL whenever a caller waits for a change not yet on disk; one
        fsync covers every change committed before it began (group commit)."""
        while True:
            with self._cond:
                while self._wanted <= self._synced and not self._closed:
                    self._cond.wait()
                if self._wanted <= self._synced:
                    return  # closed, nobody waits
            with self._lock:  # what is committed now: this fsync makes all of it durable
                target = self._committed
            err: OSError | None = None
            try:
                os.fsync(self._wal())
            except OSError as exc:
                err = exc
            with self._cond:
                if err is None:
                    self.fsyncs += 1
                    self._synced = max(self._synced, target)
                    done = [w for w in self._waiters if w[0] <= self._synced]
                    self._waiters = [w for w in self._waiters if w[0] > self._synced]
                else:  # every waiter hears of it; a later request tries again
                    done, self._waiters = self._waiters, []
                    self._wanted = self._synced
            for _seq, callback in done:
                try:
                    callback(err)
                except Exception:  # noqa: BLE001 - a waiter gone (its loop closed) stops no other
                    continue

    def _wal(self) -> int:
        """A descriptor of the WAL file (opened again if SQLite replaced the file)."""
        wal = self.path + "-wal"
        st = os.stat(wal)
        if self._wal_fd is not None:
            fst = os.fstat(self._wal_fd)
            if (fst.st_dev, fst.st_ino) == (st.st_dev, st.st_ino):
                return self._wal_fd
            os.close(self._wal_fd)
        self._wal_fd = os.open(wal, os.O_RDONLY)
        return self._wal_fd

    @property
    def fsyncs_on_flush(self) -> bool:
        """Whether :meth:`flush` may wait for an fsync (``durability="full"`` on a file)."""
        return self.durability == "full" and self.path != ":memory:"

    def durable_seq(self) -> int:
        """The last change that is as durable as promised (fsynced with ``"full"``)."""
        return self._synced if self.fsyncs_on_flush else self._committed

    def log(
        self, after: int = 0, *, upto: int | None = None, limit: int | None = None
    ) -> Iterator[tuple[int, str, str, dict[str, Any]]]:
        """The change log after sequence number `after` (up to `upto`, at most `limit` rows):
        ``(seq, at, kind, payload)``."""
        hi = 2**62 if upto is None else int(upto)
        n = -1 if limit is None else int(limit)
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, at, kind, payload FROM log WHERE seq > ? AND seq <= ? ORDER BY seq"
                " LIMIT ?",
                (int(after), hi, n),
            ).fetchall()
        for seq, at, kind, payload in rows:
            yield int(seq), str(at), str(kind), json.loads(payload)

    def replay(self) -> dict[str, dict[str, dict[str, Any]]]:
        """Rebuild the state from the log alone (each log payload carries its ``changes``)."""
        out: dict[str, dict[str, dict[str, Any]]] = {k: {} for k in KINDS}
        for _seq, _at, _kind, payload in self.log():
            for table, rid, doc in payload.get("changes", []):
                if doc is None:
                    out.setdefault(table, {}).pop(rid, None)
                else:
                    out.setdefault(table, {})[rid] = doc
        return out
