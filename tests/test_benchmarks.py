"""Smoke test of the routing benchmark harness: ``--quick`` on Da Nang with the installed peers.

Checks only that the harness runs and that every library's answers agree with the reference
(scipy on the same arrays). No timing is asserted: the figures depend on the machine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HARNESS = ROOT / "benchmarks" / "routing.py"


def test_quick_benchmark_agrees_with_reference(tmp_path: Path) -> None:
    out = tmp_path / "routing.json"
    proc = subprocess.run(
        [sys.executable, str(HARNESS), "--maps", "danang", "--quick", "--out", str(out)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=300,
    )
    assert out.exists(), proc.stdout[-3000:] + proc.stderr[-3000:]
    data = json.loads(out.read_text())
    (res,) = data["maps"]
    assert res["map"] == "danang"
    rows = res["rows"]
    libs = {r["lib"] for r in rows}
    # ours and the always-present peers (numpy/scipy/networkx; osmnx is a runtime dependency)
    assert {"ours", "scipy", "networkx"} <= libs
    benches = {r["bench"] for r in rows if r["lib"] == "ours"}
    assert {"dispatch_50", "dispatch_200", "batch_1000x50", "closure_100", "load"} <= benches
    # peers that are not installed are skipped with a reason, never silently
    for name, why in res["skipped"].items():
        assert why, name
    disagree = [
        (r["bench"], r["lib"], r["max_abs_diff_s"], r["tol_s"]) for r in rows if not r["agree"]
    ]
    assert not disagree, f"answers differ from the reference: {disagree}\n{proc.stdout[-3000:]}"
    for r in rows:
        assert r["max_abs_diff_s"] is not None and r["max_abs_diff_s"] <= r["tol_s"], r
    assert data["all_agree"] is True
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def test_turns_benchmark_agrees_with_reference(tmp_path: Path) -> None:
    """benchmarks/turns.py on the smallest map: both graphs, answers checked against scipy."""
    pytest.importorskip("routingkit_cch", reason="routingkit-cch (the bench extra) not installed")
    out = tmp_path / "turns.json"
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "turns.py"),
            "--maps",
            "hcmc",
            "--calls",
            "10",
            "--reps",
            "1",
            "--out",
            str(out),
        ],  # fmt: skip
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (res,) = json.loads(out.read_text())["maps"]
    obeyed, ignored = res["modes"]["obeyed"], res["modes"]["ignored"]
    assert obeyed["nodes"] > ignored["nodes"]  # HCMC's restrictions expand junctions
    for mode in (obeyed, ignored):
        assert max(mode["max_abs_diff_s"].values()) <= 1e-6
