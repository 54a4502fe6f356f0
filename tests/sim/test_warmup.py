"""The first run's warm-up compiles the kernels a simulation calls, with the same signatures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from dispatch.routing import kernels
from dispatch.routing.kernels import compile_concurrently

ROOT = Path(__file__).resolve().parents[2]

# In a new process: the warm-up jobs (run here, one after the other), the kernels' signatures,
# then a day of the Da Nang scenario and the signatures again.
_CODE = """
import json
import dispatch
from dispatch.roads.snapping import _snap_point
from dispatch.routing.kernels import heap_push, heap_pop
from dispatch.sim.warmup import KERNELS, warmup_jobs

def sigs():
    return {k.py_func.__name__: sorted(map(str, k.signatures))
            for k in (*KERNELS, _snap_point, heap_push, heap_pop)}

net = dispatch.load_network("danang")
here, elsewhere = warmup_jobs(net)
for job in (*here, *elsewhere):
    job()
before = sigs()
dispatch.simulate(dispatch.load_scenario("danang"))
print(json.dumps({"before": before, "after": sigs()}))
"""


def test_warmup_compiles_what_a_simulation_calls() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", _CODE], capture_output=True, text=True, env=env,
                         cwd=ROOT, timeout=600)  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    res = json.loads(out.stdout.strip().splitlines()[-1])
    before, after = res["before"], res["after"]
    # every entry kernel was called by the warm-up ...
    assert all(before[k] for k in before), before
    # ... with the argument types of the simulation: the day compiled no other version
    assert after == before
    # one version of the shared helpers (int64 heap items; read-only access masks)
    assert len(after["heap_push"]) == 1 and len(after["heap_pop"]) == 1
    assert len(after["_snap_point"]) == 1


def _quiet_threads() -> None:
    """End the compile reporter's pending close timer (a thread: no fork while it runs)."""
    for t in threading.enumerate():
        if isinstance(t, threading.Timer):
            t.cancel()
            t.join(5)
    kernels._REPORTER.close()


def test_compile_concurrently_runs_both_lists(tmp_path: Path) -> None:
    _quiet_threads()

    def job(name: str) -> object:
        return lambda: (tmp_path / name).write_text(str(os.getpid()))

    forked = kernels.CACHE and hasattr(os, "fork") and (os.cpu_count() or 1) > 1
    forked = forked and threading.active_count() == 1  # forking a threaded process: never
    compile_concurrently([job("here")], [job("elsewhere1"), job("elsewhere2")])
    pids = {p.name: int(p.read_text()) for p in tmp_path.iterdir()}
    assert set(pids) == {"here", "elsewhere1", "elsewhere2"}
    assert pids["here"] == os.getpid()
    if forked:
        assert pids["elsewhere1"] == pids["elsewhere2"] != os.getpid()
    else:  # no second process: everything ran here
        assert pids["elsewhere1"] == pids["elsewhere2"] == os.getpid()


def test_compile_concurrently_failures(tmp_path: Path) -> None:
    def boom() -> None:
        raise RuntimeError("boom")

    _quiet_threads()
    # a job failing in the child costs nothing here (the kernels would be compiled when called);
    # without a second process it fails here like any call
    if kernels.CACHE and hasattr(os, "fork") and threading.active_count() == 1:
        compile_concurrently([lambda: (tmp_path / "here").write_text("ok")], [boom])
        assert (tmp_path / "here").read_text() == "ok"
    # a job failing here raises, and the child is ended and reaped
    with pytest.raises(RuntimeError, match="boom"):
        compile_concurrently([boom], [lambda: None])
