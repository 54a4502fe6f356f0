"""Property-based fuzzing of the OpenAPI document (schemathesis): no input gives a 5xx.

Every generated request (valid and invalid bodies, paths, queries) must get a response below 500,
and every 4xx must be the JSON error ``{"code", "message"}``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="the service needs the 'service' extra (fastapi)")
schemathesis = pytest.importorskip("schemathesis", reason="fuzzing needs schemathesis (test extra)")

from hypothesis import HealthCheck, settings  # noqa: E402

from dispatch.service.app import create_app  # noqa: E402
from dispatch.service.engine import Engine  # noqa: E402
from dispatch.service.state import Service  # noqa: E402
from dispatch.service.store import Store  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]

APP = create_app(
    Service(
        Engine("danang", hospitals=ROOT / "scenarios" / "danang_hospitals.csv"),
        Store(":memory:"),
        fleet=ROOT / "scenarios" / "danang_fleet.csv",
    )
)
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_no_server_error(case: Any) -> None:
    if case.path == "/v1/stream":  # an open stream never ends by itself: end it when idle
        case.query = {**(case.query or {}), "wait_s": 0.2}
    response = case.call()
    assert response.status_code < 500, (case.method, case.path, case.body, response.text)
    if response.status_code >= 400:
        body = response.json()
        assert set(body) == {"code", "message"}, body
        assert isinstance(body["message"], str) and "\n" not in body["message"]
