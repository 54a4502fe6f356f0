"""The HTTP layer: a FastAPI application over a :class:`~dispatch.service.state.Service`.

Only wiring: request models (validated, with capped sizes), the bearer token on state-changing
endpoints, the request-size limit, JSON errors ``{"code", "message"}``, the change stream
(Server-Sent Events) and the static console.

Two lanes. *Engine* endpoints (``POST /v1/incidents``, ``/v1/assign``, ``/v1/route``,
``/v1/travel-times``, ``/v1/network``) run in worker threads of their own (a capacity limiter apart
from FastAPI's pool), one computing at a time in the service's engine lane; a backlog of them
waits there, holding no thread of the other lane. *State* endpoints (unit updates, dispatch,
incident changes, closures, reads) run on the event loop (``workers="loop"``) or in FastAPI's
thread pool (``"pool"``) and take only the short state lock: they never wait behind a computation.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hmac
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Annotated, Any, Literal

import anyio
from fastapi import Body, Depends, FastAPI, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from dispatch.service import timing
from dispatch.service.state import Service, ServiceError

__all__ = ["LIMITS", "create_app"]

#: Caps on request size and list lengths.
LIMITS = {
    "body_bytes": 1_000_000,
    "units_batch": 2000,
    "assign_incidents": 50,
    "matrix_points": 1000,
    "matrix_cells": 100_000,
    "polygon_vertices": 10_000,
    "osm_way_ids": 10_000,
    "ranked_k": 50,
    "stream_batch": 500,
}

#: Threads of the engine endpoints: one computes (the lane), the others check their request (an
#: incident id already taken is refused at once) and wait for the lane; the fsync of an answered
#: request is awaited on the event loop, holding none of them.
ENGINE_THREADS = 4
#: Seconds between keep-alive comments on an idle change stream.
STREAM_KEEPALIVE_S = 15.0

WEB_DIR = Path(__file__).resolve().parent.parent / "web"

ID = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f\x7f]+$")]
Hour = Annotated[float, Field(ge=0, le=100_000, description="clock hour (speed bands, windows)")]
Lat = Annotated[float, Field(ge=-90, le=90)]
Lon = Annotated[float, Field(ge=-180, le=180)]
Status = Literal["available", "returning", "busy", "out_of_service", "en_route"]
Vehicle = Literal["ambulance", "fire_engine", "ladder", "motorbike"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class Point(_Model):
    """A WGS84 point."""

    lat: Lat
    lon: Lon


class Location(Point):
    """Caller location, optionally uncertain (handset AML: radius and confidence)."""

    radius_m: Annotated[float, Field(ge=0, le=100_000)] = Field(
        0.0, description="uncertainty radius, metres (0: exact)"
    )
    confidence: Annotated[float, Field(gt=0, le=1)] | None = Field(
        None, description="probability the caller is within radius_m (AML lc=68 -> 0.68)"
    )


class IncidentIn(_Model):
    """A new incident."""

    id: ID
    type: Annotated[str, Field(max_length=64)] | None = Field(
        None, description="incident type (default general_medical)"
    )
    priority: Annotated[int, Field(ge=1, le=3)] | None = None
    location: Location


class IncidentPatch(_Model):
    """A change of an incident."""

    status: Literal["open", "dispatched", "on_scene", "cleared"] | None = None
    priority: Annotated[int, Field(ge=1, le=3)] | None = None
    type: Annotated[str, Field(max_length=64)] | None = None


class DispatchIn(_Model):
    """Units to send (default: the recommended ones)."""

    units: Annotated[list[ID], Field(max_length=50)] | None = None


class UnitUpdate(_Model):
    """An AVL fix and/or status change; ``vehicle``, ``lat``, ``lon`` needed to add a unit."""

    lat: Lat | None = None
    lon: Lon | None = None
    status: Status | None = None
    vehicle: Vehicle | None = None
    station: Annotated[str, Field(max_length=200)] | None = None
    turnout_s: Annotated[float, Field(ge=0, le=3600)] | None = None
    assigned_priority: Annotated[int, Field(ge=1, le=3)] | None = None


class UnitBatchItem(UnitUpdate):
    """One unit of a batch update."""

    id: ID


class UnitBatch(_Model):
    """Many unit updates in one change (all or none)."""

    units: Annotated[list[UnitBatchItem], Field(min_length=1, max_length=LIMITS["units_batch"])]


class Geometry(BaseModel):
    """A GeoJSON Polygon or MultiPolygon (lon/lat order)."""

    model_config = ConfigDict(extra="allow", allow_inf_nan=False)
    type: Literal["Polygon", "MultiPolygon"]
    coordinates: list[Any]


class ClosureIn(_Model):
    """A road closure: a polygon (flood area) or OSM ways, optionally per class and time window."""

    id: ID | None = None
    label: Annotated[str, Field(max_length=200)] | None = None
    geometry: Geometry | None = None
    osm_way_ids: (
        Annotated[
            list[Annotated[int, Field(ge=1, le=2**62)]], Field(max_length=LIMITS["osm_way_ids"])
        ]
        | None
    ) = None
    vehicles: Annotated[list[Vehicle], Field(min_length=1, max_length=4)] | None = None
    start_h: Hour | None = None
    end_h: Hour | None = None


class AssignIncident(IncidentIn):
    """An incident of a surge."""


class AssignIn(_Model):
    """Several incidents at once."""

    incidents: Annotated[
        list[AssignIncident], Field(min_length=1, max_length=LIMITS["assign_incidents"])
    ]
    objective: Literal["eta", "targets"] = "eta"
    routes: bool = False
    hour: Hour | None = None


class RouteIn(_Model):
    """A route query."""

    origin: Point
    destination: Point
    vehicle: Vehicle = "ambulance"
    hour: Hour | None = None


class MatrixIn(_Model):
    """A travel-time matrix query."""

    origins: Annotated[list[Point], Field(min_length=1, max_length=LIMITS["matrix_points"])]
    destinations: Annotated[list[Point], Field(min_length=1, max_length=LIMITS["matrix_points"])]
    vehicle: Vehicle = "ambulance"
    hour: Hour | None = None


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"code": code, "message": message}, status_code=status)


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:3]:
        loc = ".".join(str(x) for x in err.get("loc", ()) if x != "body") or "body"
        got = err.get("input")
        shown = json.dumps(got, default=str)[:80] if got is not None else "nothing"
        parts.append(f"{loc}: {err.get('msg', 'invalid')} (got {shown})")
    more = len(exc.errors()) - 3
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


class _ServerTiming:
    """ASGI middleware: ``Server-Timing: app;dur=MS`` on every response (request in to response
    out), then the request's stages (:mod:`dispatch.service.timing`).

    Lets a client tell the service's own time from the network's and its own, and a slow
    computation from a wait (the benchmark uses it).
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(
        self,
        scope: MutableMapping[str, Any],
        receive: Callable[[], Awaitable[MutableMapping[str, Any]]],
        send: Callable[[MutableMapping[str, Any]], Awaitable[None]],
    ) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        stages = timing.begin()

        async def timed(msg: MutableMapping[str, Any]) -> None:
            if msg["type"] == "http.response.start":
                ms = (time.perf_counter() - t0) * 1e3
                msg["headers"] = [
                    *msg.get("headers", []),
                    (b"server-timing", timing.header(ms, stages)),
                ]
            await send(msg)

        await self.app(scope, receive, timed)


class _BodyLimit:
    """ASGI middleware: refuse request bodies over `limit` bytes with 413 (declared or streamed)."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(
        self,
        scope: MutableMapping[str, Any],
        receive: Callable[[], Awaitable[MutableMapping[str, Any]]],
        send: Callable[[MutableMapping[str, Any]], Awaitable[None]],
    ) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for k, v in scope.get("headers", []):
            if k == b"content-length":
                try:
                    too_big = int(v) > self.limit
                except ValueError:
                    too_big = False
                if too_big:
                    await self._refuse(scope, receive, send)
                    return
        # no (or a false) Content-Length: read the body here, up to the limit, then hand it on
        chunks: list[bytes] = []
        seen = 0
        while True:
            msg = await receive()
            if msg["type"] != "http.request":
                break
            chunk = msg.get("body", b"")
            seen += len(chunk)
            if seen > self.limit:
                await self._refuse(scope, receive, send)
                return
            chunks.append(chunk)
            if not msg.get("more_body", False):
                break
        body = b"".join(chunks)
        sent = False

        async def replay() -> MutableMapping[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Any, receive: Any, send: Any) -> None:
        resp = _error(
            413, "request_too_large", f"request body exceeds {self.limit} bytes (the service cap)"
        )
        await resp(scope, receive, send)


async def _events(
    service: Service, after: int, max_events: int | None, wait_s: float | None = None
) -> AsyncIterator[str]:
    """The change stream's text: the log after `after`, then each change as it becomes durable.

    Ends after `max_events` events, or once `wait_s` seconds passed without one (if given).
    """
    loop = asyncio.get_running_loop()
    wake = asyncio.Event()

    def poke(_seq: int) -> None:
        with contextlib.suppress(RuntimeError):  # a closed loop: the stream is over
            loop.call_soon_threadsafe(wake.set)

    unsubscribe = service.subscribe(poke)
    last, sent = after, 0
    idle_until = None if wait_s is None else loop.time() + wait_s
    try:
        yield "retry: 1000\n\n"
        while True:
            wake.clear()
            batch = service.events(last, limit=LIMITS["stream_batch"])
            for ev in batch:
                data = json.dumps(ev, separators=(",", ":"))
                yield f"id: {ev['seq']}\nevent: change\ndata: {data}\n\n"
                last, sent = int(ev["seq"]), sent + 1
                if max_events is not None and sent >= max_events:
                    return
            if batch and wait_s is not None:
                idle_until = loop.time() + wait_s
            if len(batch) == LIMITS["stream_batch"]:
                continue
            wait = STREAM_KEEPALIVE_S
            if idle_until is not None:
                wait = min(wait, idle_until - loop.time())
                if wait <= 0:
                    return
            try:
                await asyncio.wait_for(wake.wait(), wait)
            except TimeoutError:
                if idle_until is not None and loop.time() >= idle_until:
                    return
                yield ": keep-alive\n\n"
    finally:
        unsubscribe()


async def _durable(service: Service, seq: int) -> None:
    """Wait, on the event loop and holding no thread, until change `seq` is durable (0: none)."""
    if not seq:
        return
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[None] = loop.create_future()

    def settle(err: ServiceError | None) -> None:
        if fut.done():
            return
        if err is None:
            fut.set_result(None)
        else:
            fut.set_exception(err)

    def wake(err: ServiceError | None) -> None:  # from the store's syncer thread (or now)
        loop.call_soon_threadsafe(settle, err)

    service.when_durable(seq, wake)
    await fut


def create_app(service: Service, *, token: str | None = None, workers: str = "loop") -> FastAPI:
    """The FastAPI application of a service.

    Parameters
    ----------
    service : Service
        The state (engine, store, fleet, incidents, closures).
    token : str, optional
        Bearer token required on every endpoint that changes state.
    workers : {"loop", "pool"}, default "loop"
        ``loop``: the endpoints run on the event loop's thread, which thus owns the engine (one
        request computes at a time; no thread hand-off). ``pool``: FastAPI's thread pool runs them
        concurrently and the service's lock serialises the engine and the state. Both answer the
        same; ``benchmarks/service.py`` measures both.
    """
    if workers not in ("loop", "pool"):
        raise ValueError(f"workers must be 'loop' or 'pool', got {workers!r}")

    def on(register: Callable[..., Any], *args: Any, **kw: Any) -> Callable[[Any], Any]:
        """Register a state endpoint; its changes are acknowledged only once they are on disk."""

        def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
            if workers == "pool":

                @functools.wraps(fn)
                def in_pool(*a: Any, **k: Any) -> Any:
                    try:
                        return fn(*a, **k)
                    finally:
                        seq = service.take_pending()
                        if seq:
                            with timing.stage("durable"):
                                service.flush(seq)

                register(*args, **kw)(in_pool)
                return fn

            @functools.wraps(fn)
            async def on_loop(*a: Any, **k: Any) -> Any:
                try:
                    out = fn(*a, **k)
                finally:
                    seq = service.take_pending()
                if seq:
                    with timing.stage("durable"):  # the fsync runs in the store's syncer meanwhile
                        await _durable(service, seq)
                return out

            register(*args, **kw)(on_loop)
            return fn

        return wrap

    engine_lane = anyio.CapacityLimiter(ENGINE_THREADS)

    def on_engine(register: Callable[..., Any], *args: Any, **kw: Any) -> Callable[[Any], Any]:
        """Register an engine endpoint: it runs in the engine lane's threads (either mode)."""

        status = int(kw.get("status_code", 200))

        def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
            def call(a: Any, k: Any, t_in: float) -> tuple[Any, int, float]:
                timing.add("queue", (time.perf_counter() - t_in) * 1e3)
                try:
                    out = fn(*a, **k)
                finally:
                    seq = service.take_pending()  # made durable outside the lane (below)
                if not isinstance(out, Response):
                    # serialised here, in the lane's thread: the event loop (which receives the
                    # unit updates) does not spend its time encoding large answers
                    with timing.stage("encode"):
                        out = JSONResponse(out, status_code=status)
                return out, seq, time.perf_counter()

            @functools.wraps(fn)
            async def in_lane(*a: Any, **k: Any) -> Any:
                t_in = time.perf_counter()
                out, seq, t_out = await anyio.to_thread.run_sync(
                    call, a, k, t_in, limiter=engine_lane
                )
                timing.add("resume", (time.perf_counter() - t_out) * 1e3)
                if seq:
                    with timing.stage("durable"):  # the lane goes on with the next computation
                        await _durable(service, seq)
                return out

            register(*args, **kw)(in_lane)
            return fn

        return wrap

    app = FastAPI(
        title="dispatch live service",
        version="1",
        description=(
            "Who goes? Ranked units by road ETA (turnout + drive) over the real road network, "
            "run cards, hospitals, surge assignment; durable state (SQLite); a change stream "
            "(Server-Sent Events) at /v1/stream."
        ),
    )
    app.state.service = service

    async def writer(authorization: Annotated[str | None, Header()] = None) -> None:
        if token is None:
            return
        if authorization is None or not authorization.startswith("Bearer "):
            raise ServiceError(
                401, "unauthorized", "this endpoint needs the header 'Authorization: Bearer TOKEN'"
            )
        if not hmac.compare_digest(authorization[7:].encode(), token.encode()):
            raise ServiceError(401, "unauthorized", "bearer token does not match")

    auth = [Depends(writer)]

    @app.exception_handler(ServiceError)
    async def _service_error(_req: Request, exc: ServiceError) -> JSONResponse:
        return _error(exc.status, exc.code, exc.message)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_req: Request, exc: RequestValidationError) -> JSONResponse:
        return _error(422, "invalid_request", _validation_message(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(req: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return _error(exc.status_code, code, f"{req.method} {req.url.path}: {exc.detail}")

    # --- console ---------------------------------------------------------------------------

    @on(app.get, "/", include_in_schema=False)
    def console() -> FileResponse:
        return FileResponse(WEB_DIR / "console" / "index.html")

    app.mount("/static", StaticFiles(directory=WEB_DIR), name="static")

    # --- reads -----------------------------------------------------------------------------

    gc_pauses = timing.gc_pauses()

    @on(app.get, "/v1/health", summary="Liveness, map, counts, last committed change")
    def health() -> dict[str, Any]:
        return {**service.health(), "gc": gc_pauses.summary()}

    @on_engine(
        app.get, "/v1/network", summary="The road network as GeoJSON (the console's base layer)"
    )
    def network() -> Response:
        body = json.dumps(service.network_geojson(), separators=(",", ":"))
        return Response(body, media_type="application/geo+json")

    @on(app.get, "/v1/incident-types", summary="Incident types (114, 115, joint) and run cards")
    def incident_types() -> dict[str, Any]:
        return {"incident_types": service.incident_types()}

    @on(app.get, "/v1/units", summary="Every unit with position and status")
    def units() -> dict[str, Any]:
        return {"units": service.list_units()}

    @on(app.get, "/v1/incidents", summary="Incidents (optionally of one status)")
    def incidents(
        status: Annotated[
            Literal["open", "dispatched", "on_scene", "cleared"] | None, Query()
        ] = None,
    ) -> dict[str, Any]:
        return {"incidents": service.list_incidents(status)}

    @on(app.get, "/v1/incidents/{incident_id}", summary="One incident")
    def incident(incident_id: str) -> dict[str, Any]:
        docs = [d for d in service.list_incidents() if d["id"] == incident_id]
        if not docs:
            raise ServiceError(404, "incident_not_found", f"no incident with id {incident_id!r}")
        return docs[0]

    @on(app.get, "/v1/closures", summary="Closures in force or scheduled")
    def closures() -> dict[str, Any]:
        return {"closures": service.list_closures()}

    @app.get(
        "/v1/stream",
        summary="Change stream (Server-Sent Events): units, incidents, closures as they change",
        description=(
            "`text/event-stream`: one event per durable change, `id:` its sequence number, "
            "`event: change`, `data:` `{seq, at, kind, changes: [{table, id, doc}]}` (`doc` null: "
            "deleted). Starts after `Last-Event-ID` (sent by a reconnecting EventSource) or "
            "`after`, or from now; the events come from the durable log, so a client that "
            "reconnects (even to a restarted service) loses none. `max_events` ends the stream "
            "after that many, `wait_s` once that long passed without one (long polling). A "
            "comment line keeps an idle stream alive."
        ),
        response_class=StreamingResponse,
        responses={200: {"content": {"text/event-stream": {}}}},
    )
    async def stream(
        after: Annotated[int | None, Query(ge=0, le=2**62)] = None,
        max_events: Annotated[int | None, Query(ge=1, le=1_000_000)] = None,
        wait_s: Annotated[float | None, Query(gt=0, le=3600, allow_inf_nan=False)] = None,
        last_event_id: Annotated[str | None, Header(max_length=32)] = None,
    ) -> StreamingResponse:
        start: int | None = None
        if last_event_id is not None:
            text = last_event_id.strip()
            if not text.isdigit():
                raise ServiceError(
                    422, "invalid_request", f"Last-Event-ID: a change number, got {text!r}"
                )
            start = int(text)
        elif after is not None:
            start = after
        last_known = service.seq
        if start is None:
            start = service.durable_seq()
        elif start > last_known:
            raise ServiceError(
                409,
                "stream_ahead",
                f"after={start} is beyond the last change {last_known} of this state file",
            )
        return StreamingResponse(
            _events(service, start, max_events, wait_s),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    # --- changes ---------------------------------------------------------------------------

    @on_engine(
        app.post,
        "/v1/incidents",
        status_code=201,
        dependencies=auth,
        summary="Record an incident and answer who goes",
        description=(
            "Run-card units (optimised like `assign` on one incident), the ranked free units "
            "(eta_s = turnout_s + drive_s), the receiving hospital and warnings. A location with "
            "radius_m ranks by expected ETA over points sampled in the disc (worst case given); "
            "beyond the service's max radius the location is unresolved and units are ranked for "
            "the centre. `routes=true` adds each unit's route as GeoJSON. Without `hour`, the "
            "answer is for the hour of day now in the service's time zone (`hour`, `hour_source` "
            "in the answer); `state_seq` is the change the answer's state includes. Computed "
            "in the engine lane: unit updates are never held up by it."
        ),
    )
    def create_incident(
        body: IncidentIn,
        routes: Annotated[bool, Query()] = False,
        hour: Annotated[float | None, Query(ge=0, le=100_000, allow_inf_nan=False)] = None,
        k: Annotated[int, Query(ge=1, le=LIMITS["ranked_k"])] = 10,
        plan: Annotated[
            bool, Query(description="false: ranked units only, no run-card plan")
        ] = True,
    ) -> dict[str, Any]:
        return service.create_incident(body.model_dump(), routes=routes, hour=hour, k=k, plan=plan)

    @on(
        app.post,
        "/v1/incidents/{incident_id}/dispatch",
        dependencies=auth,
        summary="Send units (default: the recommended ones); they become en_route",
    )
    def dispatch(
        incident_id: str, body: Annotated[DispatchIn | None, Body()] = None
    ) -> dict[str, Any]:
        seq, doc, sent = service.dispatch_incident(
            incident_id, None if body is None else body.units
        )
        return {"seq": seq, "incident": doc, "units": sent}

    @on(
        app.patch,
        "/v1/incidents/{incident_id}",
        dependencies=auth,
        summary="Status (on_scene: units busy; cleared: units returning), priority, type",
    )
    def patch_incident(incident_id: str, body: IncidentPatch) -> dict[str, Any]:
        seq, doc = service.patch_incident(incident_id, body.model_dump(exclude_none=True))
        return {"seq": seq, "incident": doc}

    @on(app.put, "/v1/units/{unit_id}", dependencies=auth, summary="AVL position and/or status")
    def put_unit(unit_id: str, body: UnitUpdate) -> dict[str, Any]:
        if not 1 <= len(unit_id) <= 64:
            raise ServiceError(
                422, "invalid_request", f"unit_id: 1 to 64 characters, got {unit_id!r}"
            )
        seq, doc = service.put_unit(unit_id, body.model_dump(exclude_none=True))
        return {"seq": seq, "unit": doc}

    @on(app.put, "/v1/units", dependencies=auth, summary="Many unit updates in one change")
    def put_units(body: UnitBatch) -> dict[str, Any]:
        seq, docs = service.put_units([u.model_dump(exclude_none=True) for u in body.units])
        return {"seq": seq, "units": docs}

    @on(app.post, "/v1/closures", status_code=201, dependencies=auth, summary="Close roads")
    def add_closure(body: ClosureIn) -> dict[str, Any]:
        d = body.model_dump(exclude_none=True)
        if body.geometry is not None:
            n = json.dumps(d["geometry"]["coordinates"]).count("[")
            if n > LIMITS["polygon_vertices"]:
                raise ServiceError(
                    413,
                    "too_many_vertices",
                    f"geometry: more than {LIMITS['polygon_vertices']} vertices",
                )
        seq, doc = service.add_closure(d)
        return {"seq": seq, "closure": doc}

    @on(app.delete, "/v1/closures/{closure_id}", dependencies=auth, summary="Lift a closure")
    def delete_closure(closure_id: str) -> dict[str, Any]:
        return {"seq": service.delete_closure(closure_id), "deleted": closure_id}

    # --- queries on the current state (nothing stored) -------------------------------------

    @on_engine(
        app.post,
        "/v1/assign",
        summary="Surge: assign units to several incidents at once (OR-Tools)",
    )
    def assign(body: AssignIn) -> dict[str, Any]:
        ids = [i.id for i in body.incidents]
        if len(set(ids)) != len(ids):
            raise ServiceError(422, "duplicate_incident", f"incidents: duplicate id in {ids}")
        return service.assign(
            [i.model_dump() for i in body.incidents],
            hour=body.hour,
            objective=body.objective,
            routes=body.routes,
        )

    @on_engine(app.post, "/v1/route", summary="Fastest route for a vehicle class")
    def route(body: RouteIn) -> dict[str, Any]:
        return service.route(
            (body.origin.lat, body.origin.lon),
            (body.destination.lat, body.destination.lon),
            vehicle=body.vehicle,
            hour=body.hour,
        )

    @on_engine(
        app.post, "/v1/travel-times", summary="Travel-time matrix, seconds (null: unreachable)"
    )
    def travel_times(body: MatrixIn) -> dict[str, Any]:
        cells = len(body.origins) * len(body.destinations)
        if cells > LIMITS["matrix_cells"]:
            raise ServiceError(
                413,
                "matrix_too_large",
                f"origins x destinations = {cells} exceeds {LIMITS['matrix_cells']}",
            )
        durations, when = service.travel_times(
            [(p.lat, p.lon) for p in body.origins],
            [(p.lat, p.lon) for p in body.destinations],
            vehicle=body.vehicle,
            hour=body.hour,
        )
        return {"vehicle": body.vehicle, "durations_s": durations, **when}

    app.add_middleware(_BodyLimit, limit=LIMITS["body_bytes"])
    app.add_middleware(_ServerTiming)
    return app
