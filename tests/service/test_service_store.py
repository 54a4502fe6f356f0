"""The SQLite store: log and state agree; the group commit acknowledges only what is on disk."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from dispatch.service.store import Store


def test_log_replays_to_the_state(tmp_path: Path) -> None:
    s = Store(tmp_path / "s.sqlite")
    a = s.commit("unit", {"changes": [["units", "A", {"x": 1}]]}, [("units", "A", {"x": 1})])
    b = s.commit("unit", {"changes": [["units", "B", {"x": 2}]]}, [("units", "B", {"x": 2})])
    c = s.commit("gone", {"changes": [["units", "A", None]]}, [("units", "A", None)])
    assert (a, b, c) == (1, 2, 3) and s.last_seq() == 3
    assert s.load()["units"] == {"B": {"x": 2}} == s.replay()["units"]
    assert [k for _, _, k, _ in s.log()] == ["unit", "unit", "gone"]
    s.close()
    again = Store(tmp_path / "s.sqlite")  # reopened: the same
    assert again.load()["units"] == {"B": {"x": 2}} and again.last_seq() == 3


def test_bad_durability_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="durability must be one of"):
        Store(tmp_path / "s.sqlite", durability="sometimes")


def test_flush_waits_for_disk_and_shares_fsyncs(tmp_path: Path) -> None:
    s = Store(tmp_path / "s.sqlite", durability="full")
    seq = s.commit("x", {}, [("units", "A", {"x": 0})])
    assert s._synced < seq  # committed, not yet confirmed on disk
    s.flush(seq)
    assert s._synced >= seq and s.fsyncs == 1
    s.flush(seq)  # already durable: no second fsync
    assert s.fsyncs == 1
    n, barrier, done = 40, threading.Barrier(40), []

    def change(i: int) -> None:
        barrier.wait()
        q = s.commit("x", {}, [("units", f"U{i}", {"x": i})])
        s.flush(q)
        assert s._synced >= q  # acknowledged only once on disk
        done.append(q)

    threads = [threading.Thread(target=change, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(done) == n
    assert 1 <= s.fsyncs - 1 <= n  # never more fsyncs than changes (usually far fewer)


def test_process_durability_never_fsyncs(tmp_path: Path) -> None:
    s = Store(tmp_path / "s.sqlite", durability="process")
    s.flush(s.commit("x", {}, [("units", "A", {"x": 0})]))
    assert s.fsyncs == 0


def test_on_durable_calls_back_from_the_syncer_once_on_disk(tmp_path: Path) -> None:
    s = Store(tmp_path / "s.sqlite", durability="full")
    seq = s.commit("x", {}, [("units", "A", {"x": 0})])
    heard: list[tuple[int, OSError | None, int, str]] = []
    done = threading.Event()

    def callback(err: OSError | None) -> None:
        heard.append((seq, err, s._synced, threading.current_thread().name))
        done.set()

    s.on_durable(seq, callback)
    assert done.wait(30)
    ((got, err, synced, thread),) = heard
    assert err is None and synced >= got and thread == "dispatch-store-syncer" and s.fsyncs == 1
    now: list[str] = []  # already durable: called at once, in the caller's thread
    s.on_durable(seq, lambda e: now.append(threading.current_thread().name))
    assert now == [threading.current_thread().name] and s.fsyncs == 1
    s.close()


def test_a_failed_fsync_reaches_every_waiter_and_a_later_one_retries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    s = Store(tmp_path / "s.sqlite", durability="full")
    seq = s.commit("x", {}, [("units", "A", {"x": 0})])
    real = os.fsync

    def broken(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", broken)
    with pytest.raises(OSError, match="Input/output error"):
        s.flush(seq)
    assert s._synced < seq and s.fsyncs == 0  # not acknowledged
    monkeypatch.setattr(os, "fsync", real)
    s.flush(seq)  # the disk is back: the same change is made durable
    assert s._synced >= seq and s.fsyncs == 1
    s.close()


def test_process_durability_calls_back_at_once(tmp_path: Path) -> None:
    s = Store(tmp_path / "s.sqlite", durability="process")
    heard: list[OSError | None] = []
    s.on_durable(s.commit("x", {}, [("units", "A", {"x": 0})]), heard.append)
    assert heard == [None] and s.fsyncs == 0 and s._syncer is None
