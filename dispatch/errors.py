"""Errors raised by the package.

Every error subclasses :class:`DispatchError`, itself a :class:`ValueError`, and its message is one
line that names the offending argument and value, so that the CLI can print it and exit with code 2.
"""

from __future__ import annotations


class DispatchError(ValueError):
    """Base class of every error this package raises on bad input."""


class MapError(DispatchError):
    """A map file or short name that cannot be used (missing, unreadable, empty, corrupt, no roads)."""


class CacheError(DispatchError):
    """A compiled-network cache file that is corrupt or of another format."""


class VehicleError(DispatchError):
    """An unknown vehicle class, or a profile parameter out of range."""


class PointError(DispatchError):
    """A latitude/longitude that is out of range, NaN, swapped, or beyond the snap tolerance."""


class FleetError(DispatchError):
    """A fleet (units) that is empty, has duplicate ids, unknown classes or bad fields."""


class ClosureError(DispatchError):
    """A closure (road closure, flood polygon) that cannot be applied."""


class HourError(DispatchError):
    """A clock hour that is not a finite number (a string, a boolean, NaN, infinity)."""


class InputFileError(DispatchError):
    """A malformed CSV/JSON/TOML input file; the message names the file, line and field."""
