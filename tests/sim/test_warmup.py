"""The first run's warm-up compiles the kernels a simulation calls, with the same signatures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from dispatch.routing import kernels
from dispatch.routing.kernels import compile_concurrently

ROOT = Path(__file__).resolve().parents[2]

# In a new process with empty numba and map caches (a first run): the warm-up, then a day of the Da Nang
# scenario, recording what numba compiles during the day.
_CODE = """
import json
from numba.core import event
import dispatch
from dispatch.roads.snapping import _snap_point
from dispatch.routing.kernels import heap_pop, heap_push
from dispatch.sim.warmup import CCH_KERNELS, KERNELS, compile_kernels, hierarchy_cached

compiled = []

class Listener(event.Listener):
    def on_start(self, e):
        compiled.append(e.data["dispatcher"].py_func.__name__)
    def on_end(self, e):
        pass

cch = hierarchy_cached("danang")
assert compile_kernels(lambda: dispatch.load_network("danang"), hierarchy=cch)
event.register("numba:compile", Listener())
dispatch.simulate(dispatch.load_scenario("danang"))
versions = {k.py_func.__name__: len({s for s, *_ in k._cache._cache_file._load_index()})
            for k in (*KERNELS, *(CCH_KERNELS if cch else ()), heap_pop, heap_push, _snap_point)}
print(json.dumps({"compiled": compiled, "versions": versions, "cch": cch}))
"""


@pytest.mark.parametrize("saved_hierarchy", [False, True])
def test_warmup_compiles_what_a_simulation_calls(tmp_path: Path, saved_hierarchy: bool) -> None:
    # empty caches, as after an install: no kernel, no compiled map, no saved hierarchy; or (the
    # first run after an upgrade that changed the kernels) a map cache where an earlier install
    # saved the hierarchy: the day then routes with the CCH, whose kernels are warmed up too
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NUMBA_CACHE_DIR": str(tmp_path / "numba"),
           "DISPATCH_CACHE_DIR": str(tmp_path / "maps")}  # fmt: skip
    if saved_hierarchy:
        code = "import dispatch; dispatch.load_network('danang').engine.hierarchy()"
        subprocess.run([sys.executable, "-c", code], env={**env, "NUMBA_CACHE_DIR": str(
            tmp_path / "numba-before")}, cwd=ROOT, timeout=900, check=True)  # fmt: skip
    out = subprocess.run([sys.executable, "-c", _CODE], capture_output=True, text=True, env=env,
                         cwd=ROOT, timeout=900)  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["cch"] is saved_hierarchy
    # the day compiled nothing: the warm-up compiled every kernel it calls with its argument
    # types (numba compiles one version per type signature), here or in the child process
    assert res["compiled"] == []
    # one version of each in numba's cache: no kernel compiled twice for other argument types
    # (int64 heap items, read-only access masks ...)
    assert res["versions"] == {k: 1 for k in res["versions"]}


def _quiet_threads() -> None:
    """End the compile reporter's pending close timer (a thread: no fork while it runs)."""
    for t in threading.enumerate():
        if isinstance(t, threading.Timer):
            t.cancel()
            t.join(5)
    kernels._REPORTER.close()


def _can_fork() -> bool:
    """Whether compile_concurrently will fork now (no other thread in this process)."""
    _quiet_threads()
    ok = kernels.CACHE and sys.platform.startswith("linux") and (os.cpu_count() or 1) > 1
    return bool(ok) and threading.active_count() == 1


def test_compile_concurrently_shares_the_pool(tmp_path: Path) -> None:
    def job(name: str, sleep_s: float = 0.1) -> Callable[[], None]:
        def run() -> None:
            time.sleep(sleep_s)
            with (tmp_path / name).open("a") as f:  # one line per run: a job run twice shows
                f.write(f"{os.getpid()}\n")

        return run

    forked = _can_fork()
    compile_concurrently([job("first", 0.5)], [job(f"pool{i}") for i in range(6)])
    runs = {p.name: p.read_text().split() for p in tmp_path.iterdir()}
    assert sorted(runs) == ["first"] + [f"pool{i}" for i in range(6)]
    assert all(len(r) == 1 for r in runs.values()), runs  # each job ran once
    assert runs["first"] == [str(os.getpid())]
    pids = {r[0] for name, r in runs.items() if name != "first"}
    if forked:  # the child took the first pool job while this process ran "first"
        assert runs["pool0"] != [str(os.getpid())] and len(pids) == 2
    else:  # no second process: everything ran here
        assert pids == {str(os.getpid())}


def test_compile_concurrently_failures(tmp_path: Path) -> None:
    def boom() -> None:
        raise RuntimeError("boom")

    def first() -> None:
        time.sleep(0.5)

    # a job failing in the child costs nothing here (its kernels are compiled when called);
    # without a second process it fails here like any call
    if _can_fork():
        compile_concurrently([first], [boom, lambda: (tmp_path / "here").write_text("ok")])
        assert (tmp_path / "here").read_text() == "ok"
    # a job failing here raises, and the child is ended and reaped
    with pytest.raises(RuntimeError, match="boom"):
        compile_concurrently([boom], [lambda: None])
