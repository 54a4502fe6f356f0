"""Fixtures of the service tests: the real server process on 127.0.0.1 and a free port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FLEET = ROOT / "scenarios" / "danang_fleet.csv"
HOSPITALS = ROOT / "scenarios" / "danang_hospitals.csv"


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(state: Path, port: int, *extra: str) -> subprocess.Popen[bytes]:
    """Start ``dispatch serve danang`` on 127.0.0.1:`port`; return once /v1/health answers."""
    import httpx

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "dispatch", "serve", "danang", "--fleet", str(FLEET),
           "--hospitals", str(HOSPITALS), "--state", str(state), "--host", "127.0.0.1",
           "--port", str(port), *extra]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read().decode() if proc.stderr else ""
            raise AssertionError(f"server exited with {proc.returncode}: {err}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v1/health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise AssertionError("server did not answer /v1/health within 120 s")


@pytest.fixture
def server() -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """A factory starting servers; every one started is killed at the end of the test."""
    started: list[subprocess.Popen[bytes]] = []

    def start(state: Path, port: int, *extra: str) -> subprocess.Popen[bytes]:
        proc = start_server(state, port, *extra)
        started.append(proc)
        return proc

    yield start
    for p in started:
        if p.poll() is None:
            p.kill()
        p.wait(timeout=30)
