"""Smoke test of benchmarks/coverage_siting.py: ``--quick`` runs, its answers agree (no time asserted)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_quick_coverage_benchmark_agrees(tmp_path: Path) -> None:
    out = tmp_path / "coverage.json"
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "coverage_siting.py"),
            "--quick",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    data = json.loads(out.read_text())
    (row,) = data["mclp"]
    assert row["ours_optimal"] and row["agree"] and row["spopt_status"] == "Optimal"
    assert 0 < row["covered_share"] < 1  # a target that leaves something uncovered
    assert data["warning"]["incremental_equals_rebuild"] and data["all_agree"]
