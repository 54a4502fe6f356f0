"""The service's clock: the hour of day in the map's time zone (speed bands, closure windows).

A request without ``hour`` is answered for *now*: the service's clock read in the map's time zone
(IANA name: ``Asia/Ho_Chi_Minh`` for Da Nang). The shipped maps' zones are below; a map given by
path has no known zone and the service uses :data:`DEFAULT_TIME_ZONE` (UTC) with a warning at start
unless ``--time-zone`` names one. An explicit ``hour`` in a request always wins.

>>> from datetime import datetime, UTC
>>> c = Clock("Asia/Ho_Chi_Minh", now=lambda: datetime(2026, 11, 30, 10, 15, tzinfo=UTC))
>>> c.hour()
17.25
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dispatch.errors import DispatchError

__all__ = ["DEFAULT_TIME_ZONE", "MAP_TIME_ZONES", "Clock", "check_time_zone", "utc_now"]

#: IANA time zone of each shipped map (the places are facts of the extracts: maps/PROVENANCE.txt).
MAP_TIME_ZONES: dict[str, str] = {
    "danang": "Asia/Ho_Chi_Minh",
    "hcmc": "Asia/Ho_Chi_Minh",
    "monaco": "Europe/Monaco",
    "liechtenstein": "Europe/Vaduz",
    "campo_grande": "America/Campo_Grande",
}
#: Labelled default for a map of unknown place (a path): UTC. Give ``--time-zone`` for real use.
DEFAULT_TIME_ZONE = "UTC"


def utc_now() -> datetime:
    """The system clock, as an aware UTC datetime (the service's default clock)."""
    return datetime.now(UTC)


def check_time_zone(name: str) -> ZoneInfo:
    """The zone of an IANA name; raises ``DispatchError`` naming it if unknown."""
    try:
        return ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError):
        raise DispatchError(
            f"time zone {name!r} is not an IANA time zone name (e.g. 'Asia/Ho_Chi_Minh')"
        ) from None


class Clock:
    """Hour of day now in a time zone, read from an injectable clock (tests pass a fixed one).

    Parameters
    ----------
    time_zone : str
        IANA name.
    now : callable, optional
        Returns an aware datetime (default :func:`utc_now`).
    """

    def __init__(self, time_zone: str, *, now: Callable[[], datetime] = utc_now) -> None:
        self.zone = check_time_zone(time_zone)
        self.time_zone = str(time_zone)
        self.now = now

    def local(self) -> datetime:
        """The time now in the zone."""
        t = self.now()
        if t.tzinfo is None:
            raise DispatchError(f"clock gave a naive time {t.isoformat()} (no time zone)")
        return t.astimezone(self.zone)

    def hour(self) -> float:
        """The hour of day now, a float in [0, 24) (17.25 is 17:15)."""
        t = self.local()
        return t.hour + t.minute / 60.0 + (t.second + t.microsecond / 1e6) / 3600.0
