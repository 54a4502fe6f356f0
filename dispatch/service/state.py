"""The live state of a dispatch centre (fleet, incidents, closures) and the changes it accepts.

:class:`Service` owns the :class:`~dispatch.service.engine.Engine` and the
:class:`~dispatch.service.store.Store`. Two locks, always taken in this order when both are held:

* the **state lock** (:attr:`Service.lock`) guards the records and the log. A change is validated,
  committed to SQLite, then applied in memory under it, so a reader sees the state before or after
  a change, never half of it. It is held only for such short steps, never during a computation.
* the **engine lane** (:attr:`Service.lane`, :mod:`dispatch.service.lane`) runs one computation
  (a recommendation, a surge plan, a route, a matrix) at a time, in this process under a lock
  or in a worker process. A computation takes a *snapshot* of the state under the state lock (the
  units, the closures, the change number), releases it, computes on the snapshot in the lane,
  then takes the state lock again only to commit (an incident).

So unit updates (AVL fixes, statuses: :meth:`Service.put_unit`, :meth:`Service.put_units`),
dispatches and closures never wait behind a recommendation being computed: they are the priority
path. A recommendation answers for the state of change ``state_seq`` (given in the answer); a unit
it names that was sent elsewhere meanwhile is refused at dispatch (409), never double-booked.

The clock: a request without ``hour`` is answered for the hour of day now in the map's time zone
(:mod:`dispatch.service.clock`); the answer says which hour it used and where it came from.

Records (JSON documents, as stored and as returned by the API):

* unit: ``id, vehicle, lat, lon, status, station, turnout_s, assigned_priority, incident,
  updated_at``. ``turnout_s`` is the unit's turnout at its station; a ``returning`` or
  ``en_route`` unit is routed with no turnout (the crew is on board).
* incident: ``id, type, priority, lat, lon, radius_m, confidence, status, recommended, units,
  created_at, updated_at``; status ``open`` -> ``dispatched`` -> ``on_scene`` -> ``cleared``.
* closure: ``id, label, geometry | osm_way_ids, vehicles, start_h, end_h, arcs, created_at``.

Nothing here knows HTTP: errors are :class:`ServiceError` (status code, code, message).
"""

from __future__ import annotations

import math
import sqlite3
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dispatch.service import timing
from dispatch.service.clock import DEFAULT_TIME_ZONE, Clock, utc_now
from dispatch.service.engine import (
    UNIT_STATUSES,
    DispatchError,
    Engine,
    Incident,
    Unit,
    incident_from_dict,
    load_units,
    unit_from_dict,
)
from dispatch.service.lane import EngineLane, LaneError, ThreadLane
from dispatch.service.store import Change, Store

__all__ = ["INCIDENT_STATUSES", "Service", "ServiceError"]

#: Incident statuses, in order.
INCIDENT_STATUSES = ("open", "dispatched", "on_scene", "cleared")

#: Unit status taken when the incident they were sent to moves to a status.
_UNIT_STATUS_FOR = {"on_scene": "busy", "cleared": "returning"}


class ServiceError(Exception):
    """A request the service refuses: HTTP status, a short code and a one-line message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _error_code(exc: DispatchError) -> str:
    """``FleetError`` -> ``invalid_fleet``, ``PointError`` -> ``invalid_point``, ..."""
    name = type(exc).__name__.removesuffix("Error").lower() or "dispatch"
    return f"invalid_{name}"


class Service:
    """The running service's state.

    Parameters
    ----------
    engine : Engine
        Network, run cards, hospitals.
    store : Store
        Durable state. If it already holds units, they are the fleet (the fleet file only seeds an
        empty state).
    fleet : path, optional
        Fleet CSV that seeds an empty state.
    max_radius_m : float, default 300
        Caller-location radius beyond which the location is "unresolved".
    time_zone : str, optional
        IANA time zone of the clock (default: the map's, :data:`~dispatch.service.clock.MAP_TIME_ZONES`;
        UTC for a map of unknown place: :attr:`time_zone_source` says ``"default"`` then).
    now : callable or None, default the system clock
        Returns the time now (aware datetime); a request without ``hour`` is answered for the hour
        of day it gives in `time_zone`. ``None``: no clock (such requests use off-peak speeds and
        every closure applies, the library's ``hour=None``).
    lane : EngineLane, optional
        Where computations run (:mod:`dispatch.service.lane`; default a
        :class:`~dispatch.service.lane.ThreadLane` on `engine`).
    """

    def __init__(
        self,
        engine: Engine,
        store: Store,
        *,
        fleet: str | Path | None = None,
        max_radius_m: float = 300.0,
        time_zone: str | None = None,
        now: Callable[[], datetime] | None = utc_now,
        lane: EngineLane | None = None,
    ) -> None:
        self.engine = engine
        self.store = store
        self.max_radius_m = float(max_radius_m)
        self.lock = threading.RLock()
        self.lane: EngineLane = ThreadLane(engine) if lane is None else lane
        self._geojson_lock = threading.Lock()
        self._unit_cache: dict[str, Unit] = {}  # the library's Unit of each record, kept current
        self._fleet_cache: list[Unit] | None = None
        self._pending = threading.local()
        self._reserved: set[str] = set()  # incident ids being computed (not yet committed)
        self._listeners: list[Callable[[int], None]] = []
        map_zone = engine.map_time_zone()
        if time_zone is not None:
            self.time_zone_source = "option"
        elif map_zone is not None:
            time_zone, self.time_zone_source = map_zone, "map"
        else:
            time_zone, self.time_zone_source = DEFAULT_TIME_ZONE, "default"
        self.clock: Clock | None = None if now is None else Clock(time_zone, now=now)
        self.time_zone = time_zone
        map_name = str(engine.summary()["map"])
        stored_map = store.get_meta("map")
        if stored_map is not None and stored_map != map_name:
            raise DispatchError(
                f"state file {store.path!r} belongs to map {stored_map!r}, not {map_name!r}"
            )
        data = store.load()
        self.units: dict[str, dict[str, Any]] = data["units"]
        self.incidents: dict[str, dict[str, Any]] = data["incidents"]
        self.closures: dict[str, dict[str, Any]] = data["closures"]
        self.seq = store.last_seq()
        for spec in sorted(self.closures.values(), key=lambda c: int(c["seq"])):
            engine.add_closure(spec)
        if not self.units and fleet is not None:
            units = load_units(fleet)
            docs = [self._unit_doc(u.to_dict(), now=_now()) for u in units]
            for d in docs:  # a unit off the roads its class may use: refused at start
                try:
                    engine.check_unit(self._unit(d))
                except DispatchError as exc:
                    raise DispatchError(f"fleet {str(fleet)!r}: unit {d['id']!r}: {exc}") from None
            self._commit(
                "fleet_loaded",
                {"source": str(fleet)},
                [("units", d["id"], d) for d in docs],
            )
            self.units = {d["id"]: d for d in docs}
        if stored_map is None:
            store.set_meta("map", map_name)
        self.flush_pending()

    def take_pending(self) -> int:
        """The last change this thread committed and has not made durable yet (0: none)."""
        seq = int(getattr(self._pending, "seq", 0))
        self._pending.seq = 0
        return seq

    def flush(self, seq: int) -> None:
        """Wait until change `seq` is on disk (the store's group commit).

        Call it after the state lock is released and before acknowledging: concurrent requests
        then share one fsync. Raises :class:`ServiceError` (503) if the disk refuses.
        """
        if not seq:
            return
        try:
            self.store.flush(seq)
        except OSError as exc:
            raise ServiceError(
                503, "storage_unavailable", f"change {seq} not confirmed on disk: {exc}"
            ) from None
        self._durable_now()

    def when_durable(self, seq: int, callback: Callable[[ServiceError | None], None]) -> None:
        """Call ``callback(None)`` once change `seq` is on disk (``callback(error)``, a 503, if
        the disk refused it): at once when it already is, else from the store's syncer thread.
        What :meth:`flush` does without holding a thread (an event loop awaits the callback)."""

        def done(err: OSError | None) -> None:
            if err is not None:
                msg = f"change {seq} not confirmed on disk: {err}"
                callback(ServiceError(503, "storage_unavailable", msg))
                return
            self._durable_now()
            callback(None)

        if not seq:
            callback(None)
            return
        self.store.on_durable(seq, done)

    def _durable_now(self) -> None:
        """Tell the change stream's listeners which change is durable now."""
        durable = self.store.durable_seq()
        for listener in list(self._listeners):
            listener(durable)

    # --- the change stream ---------------------------------------------------------------------

    def subscribe(self, listener: Callable[[int], None]) -> Callable[[], None]:
        """Call `listener(seq)` (from any thread) each time changes up to `seq` became durable.

        Returns the function that unsubscribes it.
        """
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return unsubscribe

    def events(self, after: int, limit: int = 500) -> list[dict[str, Any]]:
        """Durable changes after `after`, oldest first (at most `limit`): the stream's events.

        Each is ``{"seq", "at", "kind", "changes": [{"table", "id", "doc"}]}`` (``doc`` null: the
        record was deleted), read from the log: a client that kept the last ``seq`` it saw resumes
        from it after a reconnect (or a restart of the service) without losing a change.
        """
        upto = self.store.durable_seq()
        out = []
        for seq, at, kind, payload in self.store.log(after, upto=upto, limit=limit):
            changes = [
                {"table": t, "id": rid, "doc": doc} for t, rid, doc in payload.get("changes", [])
            ]
            out.append({"seq": seq, "at": at, "kind": kind, "changes": changes})
        return out

    def durable_seq(self) -> int:
        """The last change on disk (what the stream has sent or may send)."""
        return self.store.durable_seq()

    # --- the clock -----------------------------------------------------------------------------

    def hour_for(self, hour: float | None) -> tuple[float | None, str]:
        """The hour a request is answered for, and where it came from.

        ``(hour, "request")`` when the request gave one; else the clock's hour of day in the
        service's time zone, ``"clock"``; ``(None, "none")`` when the service has no clock.
        """
        if hour is not None:
            return float(hour), "request"
        if self.clock is None:
            return None, "none"
        return round(self.clock.hour(), 6), "clock"

    def _hour_doc(self, hour: float | None, source: str) -> dict[str, Any]:
        return {"hour": hour, "hour_source": source, "time_zone": self.time_zone}

    def snapshot(self) -> tuple[list[Unit], tuple[Any, list[dict[str, Any]]], int]:
        """The units, the closures and the change number, taken together under the state lock.

        The closures are the network's closure set (an immutable value) and the closure records
        (for an engine in another process). Computations take a snapshot, release the state lock
        and compute on it in the engine lane.
        """
        with self.lock:
            specs = sorted(self.closures.values(), key=lambda c: int(c["seq"]))
            return self.fleet(), (self.engine.closure_set(), specs), self.seq

    def warm(self) -> dict[str, Any]:
        """Build, before the first request, what requests would otherwise build while a caller
        waits (:meth:`Engine.warm <dispatch.service.engine.Engine.warm>`, in the engine lane:
        the worker process's engine with ``--engine process``); nothing is stored."""
        units, closures, _seq = self.snapshot()
        out: dict[str, Any] = self._compute("warm", closures, units)
        return out

    def _compute(self, method: str, closures: Any, *args: Any, **kwargs: Any) -> Any:
        """Run an engine method in the lane; library errors become 422, a stopped lane 503."""
        try:
            return self.lane.run(method, closures, *args, **kwargs)
        except DispatchError as exc:
            raise ServiceError(422, _error_code(exc), str(exc)) from None
        except LaneError as exc:
            raise ServiceError(503, "engine_unavailable", str(exc)) from None

    def flush_pending(self) -> None:
        """:meth:`flush` the change this thread committed last."""
        self.flush(self.take_pending())

    # --- helpers -------------------------------------------------------------------------------

    def _commit(self, kind: str, request: Mapping[str, Any], changes: list[Change]) -> int:
        payload = {"request": dict(request), "changes": [list(c) for c in changes]}
        try:
            with timing.stage("commit"):
                self.seq = self.store.commit(kind, payload, changes)
        except sqlite3.Error as exc:
            raise ServiceError(503, "storage_unavailable", f"state not stored: {exc}") from None
        self._pending.seq = self.seq  # made durable by flush_pending(), outside the lock
        for table, rid, doc in changes:
            if table == "units":  # only the changed unit is converted again
                self._fleet_cache = None
                self._unit_cache.pop(rid, None)
            target = getattr(self, table)
            if doc is None:
                target.pop(rid, None)
            else:
                target[rid] = dict(doc)
        return self.seq

    @staticmethod
    def _unit_doc(d: Mapping[str, Any], *, now: str) -> dict[str, Any]:
        return {
            "id": str(d["id"]),
            "vehicle": d["vehicle"],
            "lat": float(d["lat"]),
            "lon": float(d["lon"]),
            "status": d.get("status") or "available",
            "station": str(d.get("station") or ""),
            "turnout_s": d.get("turnout_s"),
            "assigned_priority": d.get("assigned_priority"),
            "incident": d.get("incident"),
            "updated_at": now,
        }

    def _unit(self, doc: Mapping[str, Any]) -> Unit:
        """The library's :class:`Unit` for a stored record (checked)."""
        on_board = doc["status"] in ("returning", "en_route")
        try:
            return unit_from_dict(
                {
                    "id": doc["id"],
                    "vehicle": doc["vehicle"],
                    "lat": doc["lat"],
                    "lon": doc["lon"],
                    "status": doc["status"],
                    "station": doc.get("station") or "",
                    "turnout_s": None if on_board else doc.get("turnout_s"),
                    "assigned_priority": doc.get("assigned_priority"),
                },
                where=f"unit {doc['id']!r}",
            )
        except DispatchError as exc:
            raise ServiceError(422, _error_code(exc), str(exc)) from None

    def fleet(self) -> list[Unit]:
        """The fleet as library units, sorted by id (built again only after a unit changed)."""
        with self.lock:
            if self._fleet_cache is None:
                cache = self._unit_cache
                for k in self.units.keys() - cache.keys():
                    cache[k] = self._unit(self.units[k])
                self._fleet_cache = [cache[k] for k in sorted(self.units)]
            return list(self._fleet_cache)

    def _incident(self, iid: str) -> dict[str, Any]:
        doc = self.incidents.get(iid)
        if doc is None:
            raise ServiceError(404, "incident_not_found", f"no incident with id {iid!r}")
        return doc

    # --- reads ---------------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        """Status, map, counts and the last committed sequence number."""
        with self.lock:
            by_status: dict[str, int] = {}
            for u in self.units.values():
                by_status[u["status"]] = by_status.get(u["status"], 0) + 1
            return {
                "status": "ok",
                **self.engine.summary(),
                "units": len(self.units),
                "units_by_status": dict(sorted(by_status.items())),
                "open_incidents": sum(
                    1 for i in self.incidents.values() if i["status"] != "cleared"
                ),
                "closures": len(self.closures),
                "seq": self.seq,
                "max_radius_m": self.max_radius_m,
                "time_zone": self.time_zone,
                "time_zone_source": self.time_zone_source,
                "clock": None if self.clock is None else self.clock.local().isoformat(),
                "hour": None if self.clock is None else round(self.clock.hour(), 4),
                "coverage_warning": self.engine.coverage,
                "engine_lane": self.lane.status(),
            }

    def list_units(self) -> list[dict[str, Any]]:
        """Every unit record, by id."""
        with self.lock:
            return [dict(self.units[k]) for k in sorted(self.units)]

    def list_incidents(self, status: str | None = None) -> list[dict[str, Any]]:
        """Incident records (optionally of one status), by creation time then id."""
        if status is not None and status not in INCIDENT_STATUSES:
            raise ServiceError(
                422,
                "invalid_status",
                f"status must be one of {list(INCIDENT_STATUSES)}, got {status!r}",
            )
        with self.lock:
            docs = [dict(d) for d in self.incidents.values()]
        docs = [d for d in docs if status is None or d["status"] == status]
        return sorted(docs, key=lambda d: (d["created_at"], d["id"]))

    def list_closures(self) -> list[dict[str, Any]]:
        """Closure records, by creation order."""
        with self.lock:
            return sorted((dict(c) for c in self.closures.values()), key=lambda c: c["seq"])

    # --- units ---------------------------------------------------------------------------------

    def _merged_unit(self, uid: str, body: Mapping[str, Any], now: str) -> dict[str, Any]:
        old = self.units.get(uid)
        if old is None:
            missing = [k for k in ("vehicle", "lat", "lon") if body.get(k) is None]
            if missing:
                raise ServiceError(
                    404,
                    "unit_not_found",
                    f"no unit with id {uid!r}; to add one give {', '.join(missing)}",
                )
            base: dict[str, Any] = {"id": uid, "status": "available", "station": ""}
        else:
            base = dict(old)
        for k, v in body.items():
            if v is not None:
                base[k] = v
        if base.get("status") not in ("en_route",):
            base["assigned_priority"] = body.get("assigned_priority")
            if base.get("status") not in ("busy",):
                base["incident"] = None
        doc = self._unit_doc(base, now=now)
        unit = self._unit(doc)
        if old is None or (old["lat"], old["lon"], old["vehicle"]) != (
            doc["lat"],
            doc["lon"],
            doc["vehicle"],
        ):
            try:
                self.engine.check_unit(unit)
            except DispatchError as exc:
                raise ServiceError(
                    422, _error_code(exc), f"unit {uid!r}: position: {exc}"
                ) from None
        return doc

    def put_unit(self, uid: str, body: Mapping[str, Any]) -> tuple[int, dict[str, Any]]:
        """Update (or add) one unit: AVL position, status, turnout; return (seq, record)."""
        with self.lock:
            doc = self._merged_unit(uid, body, _now())
            seq = self._commit("unit", {"id": uid, **body}, [("units", uid, doc)])
            return seq, dict(doc)

    def put_units(self, items: Sequence[Mapping[str, Any]]) -> tuple[int, list[dict[str, Any]]]:
        """Update many units in one change (all or none); return (seq, records)."""
        with self.lock:
            now = _now()
            seen: set[str] = set()
            docs = []
            for n, item in enumerate(items):
                uid = str(item["id"])
                if uid in seen:
                    raise ServiceError(
                        422, "duplicate_unit", f"units[{n}].id: unit {uid!r} given twice"
                    )
                seen.add(uid)
                body = {k: v for k, v in item.items() if k != "id"}
                try:
                    docs.append(self._merged_unit(uid, body, now))
                except ServiceError as exc:
                    raise ServiceError(exc.status, exc.code, f"units[{n}]: {exc.message}") from None
            seq = self._commit(
                "units", {"units": [dict(i) for i in items]}, [("units", d["id"], d) for d in docs]
            )
            return seq, [dict(d) for d in docs]

    # --- incidents -----------------------------------------------------------------------------

    def _library_incident(self, d: Mapping[str, Any], where: str = "incident") -> Incident:
        try:
            return incident_from_dict(
                {k: d.get(k) for k in ("id", "lat", "lon", "type", "priority")}, where=where
            )
        except DispatchError as exc:
            raise ServiceError(422, _error_code(exc), str(exc)) from None

    def create_incident(
        self,
        body: Mapping[str, Any],
        *,
        routes: bool = False,
        hour: float | None = None,
        k: int = 10,
        plan: bool = True,
    ) -> dict[str, Any]:
        """Record an incident and answer who goes (run-card units, ranked units, hospital).

        ``plan=False``: the ranked units only (no run-card plan); the fastest one is recommended.
        """
        loc = body["location"]
        radius = float(loc.get("radius_m") or 0.0)
        conf = loc.get("confidence")
        iid = str(body["id"])
        inc = self._library_incident(
            {
                "id": iid,
                "lat": loc["lat"],
                "lon": loc["lon"],
                "type": body.get("type"),
                "priority": body.get("priority"),
            }
        )
        used_hour, source = self.hour_for(hour)
        with self.lock:  # the id is taken from here on: a second request with it gets 409
            if iid in self.incidents or iid in self._reserved:
                raise ServiceError(409, "incident_exists", f"incident {iid!r} already exists")
            self._reserved.add(iid)
        try:
            units, closures, state_seq = self.snapshot()
            # the state lock is free: unit updates go on meanwhile
            ans = self._compute(
                "recommend",
                closures,
                inc,
                units,
                radius_m=radius,
                confidence=conf,
                max_radius_m=self.max_radius_m,
                hour=used_hour,
                routes=routes,
                k=k,
                plan=plan,
            )
            now = _now()
            doc = {
                **inc.to_dict(),
                "radius_m": radius,
                "confidence": conf,
                "status": "open",
                "recommended": ans["recommended"],
                "units": [],
                "created_at": now,
                "updated_at": now,
            }
            with self.lock:
                seq = self._commit("incident", dict(body), [("incidents", iid, doc)])
        finally:
            with self.lock:
                self._reserved.discard(iid)
        out: dict[str, Any] = {
            "seq": seq,
            "state_seq": state_seq,
            "incident": doc,
            "location": ans["location"],
            **self._hour_doc(used_hour, source),
            "recommendation": ans["recommendation"],
            "ranked": ans["ranked"],
            "warnings": ans["warnings"],
        }
        if ans["routes"] is not None:
            out["routes"] = ans["routes"]
        return out

    def dispatch_incident(
        self, iid: str, unit_ids: Sequence[str] | None
    ) -> tuple[int, dict[str, Any], list[dict[str, Any]]]:
        """Send units (default: the recommended ones); they become ``en_route``."""
        with self.lock:
            doc = dict(self._incident(iid))
            if doc["status"] == "cleared":
                raise ServiceError(409, "incident_cleared", f"incident {iid!r} is cleared")
            ids = list(doc["recommended"] if unit_ids is None else unit_ids)
            if not ids:
                raise ServiceError(
                    422, "no_units", f"incident {iid!r}: no unit to dispatch (units is empty)"
                )
            if len(set(ids)) != len(ids):
                raise ServiceError(422, "duplicate_unit", f"units: a unit is given twice: {ids}")
            now = _now()
            changes: list[Change] = []
            for uid in ids:
                u = self.units.get(uid)
                if u is None:
                    raise ServiceError(404, "unit_not_found", f"units: no unit with id {uid!r}")
                if not UNIT_STATUSES.get(u["status"], False):
                    raise ServiceError(
                        409,
                        "unit_not_available",
                        f"units: unit {uid!r} is {u['status']}, not available or returning",
                    )
                nu = dict(u, status="en_route", assigned_priority=doc["priority"], incident=iid)
                nu["updated_at"] = now
                changes.append(("units", uid, nu))
            doc["units"] = sorted(set(doc["units"]) | set(ids))
            if doc["status"] == "open":
                doc["status"] = "dispatched"
            doc["updated_at"] = now
            changes.append(("incidents", iid, doc))
            seq = self._commit("dispatch", {"incident": iid, "units": ids}, changes)
            return seq, doc, [dict(c[2]) for c in changes[:-1] if c[2] is not None]

    def patch_incident(self, iid: str, body: Mapping[str, Any]) -> tuple[int, dict[str, Any]]:
        """Change an incident's status (``on_scene``, ``cleared``) or priority/type.

        On ``on_scene`` its units become ``busy``; on ``cleared`` they become ``returning``
        (dispatchable from where they are).
        """
        with self.lock:
            doc = dict(self._incident(iid))
            now = _now()
            status = body.get("status")
            if status is not None:
                if status not in INCIDENT_STATUSES:
                    raise ServiceError(
                        422,
                        "invalid_status",
                        f"status must be one of {list(INCIDENT_STATUSES)}, got {status!r}",
                    )
                if INCIDENT_STATUSES.index(status) < INCIDENT_STATUSES.index(doc["status"]):
                    raise ServiceError(
                        409,
                        "status_backwards",
                        f"status: incident {iid!r} is {doc['status']}, cannot go back to {status!r}",
                    )
            for key in ("type", "priority"):
                if body.get(key) is not None:
                    doc[key] = body[key]
            self._library_incident(doc, where=f"incident {iid!r}")
            changes: list[Change] = []
            if status is not None and status != doc["status"]:
                doc["status"] = status
                new = _UNIT_STATUS_FOR.get(status)
                for uid in doc["units"]:
                    u = self.units.get(uid)
                    if new is None or u is None or u.get("incident") != iid:
                        continue
                    nu = dict(u, status=new, updated_at=now, assigned_priority=None)
                    if new == "returning":
                        nu["incident"] = None
                    changes.append(("units", uid, nu))
            doc["updated_at"] = now
            changes.append(("incidents", iid, doc))
            seq = self._commit("incident_update", {"id": iid, **body}, changes)
            return seq, doc

    # --- closures ------------------------------------------------------------------------------

    def add_closure(self, body: Mapping[str, Any]) -> tuple[int, dict[str, Any]]:
        """Close roads (GeoJSON polygon or OSM ways, classes, time window)."""
        has_geom = body.get("geometry") is not None
        has_ways = bool(body.get("osm_way_ids"))
        if has_geom == has_ways:
            raise ServiceError(
                422,
                "invalid_closure",
                "closure: give exactly one of geometry (GeoJSON Polygon) or osm_way_ids",
            )
        s, e = body.get("start_h"), body.get("end_h")
        if s is not None and e is not None and not s < e:
            raise ServiceError(
                422, "invalid_closure", f"closure: start_h={s!r} must be before end_h={e!r}"
            )
        with self.lock:
            cid = str(body.get("id") or f"CL-{self.seq + 1}")
            if cid in self.closures:
                raise ServiceError(409, "closure_exists", f"closure {cid!r} already exists")
            spec = {
                "id": cid,
                "label": str(body.get("label") or cid),
                "geometry": body.get("geometry"),
                "osm_way_ids": body.get("osm_way_ids"),
                "vehicles": body.get("vehicles"),
                "start_h": s,
                "end_h": e,
                "created_at": _now(),
                "seq": self.seq + 1,
            }
            try:
                spec["arcs"] = self.engine.add_closure(spec)
            except DispatchError as exc:
                raise ServiceError(422, _error_code(exc), str(exc)) from None
            try:
                seq = self._commit("closure", dict(body), [("closures", cid, spec)])
            except ServiceError:
                self.engine.remove_closure(cid)
                raise
            return seq, dict(spec)

    def delete_closure(self, cid: str) -> int:
        """Lift a closure."""
        with self.lock:
            if cid not in self.closures:
                raise ServiceError(404, "closure_not_found", f"no closure with id {cid!r}")
            seq = self._commit("closure_lifted", {"id": cid}, [("closures", cid, None)])
            self.engine.remove_closure(cid)
            return seq

    # --- read-only engine queries --------------------------------------------------------------

    def _query(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """Run an engine computation on a snapshot's closures, in the engine lane."""
        _units, closures, _seq = self.snapshot()
        return self._compute(method, closures, *args, **kwargs)

    def assign(
        self,
        incidents: Sequence[Mapping[str, Any]],
        *,
        hour: float | None = None,
        objective: str = "eta",
        routes: bool = False,
    ) -> dict[str, Any]:
        """A surge plan for several incidents at once on the current fleet (nothing is stored)."""
        incs = [
            self._library_incident(
                {
                    "id": d["id"],
                    "lat": d["location"]["lat"],
                    "lon": d["location"]["lon"],
                    "type": d.get("type"),
                    "priority": d.get("priority"),
                },
                where=f"incidents[{n}]",
            )
            for n, d in enumerate(incidents)
        ]
        used_hour, source = self.hour_for(hour)
        fleet, closures, state_seq = self.snapshot()
        out = self._compute(
            "assign", closures, incs, fleet, hour=used_hour, objective=objective, routes=routes
        )
        return {**out, "state_seq": state_seq, **self._hour_doc(used_hour, source)}

    def route(
        self,
        origin: tuple[float, float],
        destination: tuple[float, float],
        *,
        hour: float | None = None,
        **kw: Any,
    ) -> dict[str, Any]:
        """Fastest route between two points for a class."""
        used_hour, source = self.hour_for(hour)
        out = self._query("route", origin, destination, hour=used_hour, **kw)
        return {**out, **self._hour_doc(used_hour, source)}

    def travel_times(
        self,
        origins: Sequence[tuple[float, float]],
        dests: Sequence[tuple[float, float]],
        *,
        hour: float | None = None,
        **kw: Any,
    ) -> tuple[list[list[float | None]], dict[str, Any]]:
        """Travel-time matrix (seconds, ``None`` = unreachable) and the hour it is for."""
        used_hour, source = self.hour_for(hour)
        out = self._query("travel_times", origins, dests, hour=used_hour, **kw)
        rows = [[None if x is None or not math.isfinite(x) else x for x in row] for row in out]
        return rows, self._hour_doc(used_hour, source)

    def incident_types(self) -> list[dict[str, Any]]:
        """Incident types and their run cards."""
        return self.engine.incident_types()

    def network_geojson(self) -> dict[str, Any]:
        """The road network (base layer of the console)."""
        with self._geojson_lock:  # built once, in this process (not a computation on the state)
            return self.engine.network_geojson()
