"""A small declared-schema validator for TOML/JSON documents (used by the scenario reader).

A section is declared as a :class:`Table` of :class:`Field` s, each with a type spec (:class:`Num`,
:class:`Int`, :class:`Str`, :class:`Bool`, :class:`FilePath`, :class:`ListOf`, a nested
:class:`Table`); :meth:`Validator.check` walks a parsed document against it and returns plain Python
values (floats, ints, strings, tuples, dicts of the declared keys with defaults filled in). Every
error is a one-line message naming the file and the key path (``incident_types[2].on_scene.mean_s``);
booleans are never numbers, unknown keys are refused with the allowed ones listed.

>>> v = Validator("s.toml", error=ValueError)
>>> SIM = Table({"horizon_h": Field(Num(lo=0, lo_open=True), required=True),
...              "seed": Field(Int(lo=0), default=0)})
>>> v.check(SIM, {"horizon_h": 24}, "simulation")
{'horizon_h': 24.0, 'seed': 0}
>>> v.check(SIM, {"horizon_h": True}, "simulation")
Traceback (most recent call last):
...
ValueError: s.toml: simulation.horizon_h: must be a number, got True
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dispatch.model import short_repr

__all__ = ["Bool", "FilePath", "Field", "Int", "ListOf", "Num", "Str", "Table", "Validator"]

_MISSING: Any = object()


@dataclass(frozen=True)
class Num:
    """A finite number (int or float, never bool) in ``[lo, hi]`` (``lo_open``: ``> lo``)."""

    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False


@dataclass(frozen=True)
class Int:
    """An integer (never bool) in ``[lo, hi]``."""

    lo: int | None = None
    hi: int | None = None


@dataclass(frozen=True)
class Str:
    """A non-empty string, optionally one of ``choices``; ``from_int`` accepts ``115`` as ``"115"``."""

    choices: Sequence[str] | None = None
    from_int: bool = False


@dataclass(frozen=True)
class Bool:
    """``true`` or ``false``."""


@dataclass(frozen=True)
class FilePath:
    """A path to an existing file, relative to the document's folder."""


@dataclass(frozen=True)
class ListOf:
    """An array of ``item``; ``length`` exact or ``min_length``, with the message when too short."""

    item: Spec
    min_length: int = 0
    length: int | None = None
    too_short: str = ""


@dataclass(frozen=True)
class Field:
    """One key of a table: its spec, whether it is required, its default."""

    spec: Spec
    required: bool = False
    default: Any = _MISSING


@dataclass(frozen=True)
class Table:
    """A table with the declared keys only (any other key is an error)."""

    fields: Mapping[str, Field] = field(default_factory=dict)


Spec = Num | Int | Str | Bool | FilePath | ListOf | Table


class Validator:
    """Checks values against specs; errors name ``where`` (the file) and the key path.

    Parameters
    ----------
    where : str
        The file name (first word of every message).
    error : exception class
        Raised on a bad value (a :class:`dispatch.errors.DispatchError` subclass).
    base : Path, optional
        Folder against which relative :class:`FilePath` values resolve.
    """

    def __init__(
        self, where: str, *, error: Callable[[str], Exception], base: Path | None = None
    ) -> None:
        self.where = where
        self.error = error
        self.base = base if base is not None else Path.cwd()

    def fail(self, key: str, msg: str) -> Exception:
        """The error for `key`: ``"{file}: {key}: {msg}"``."""
        return self.error(f"{self.where}: {key}: {msg}")

    def check(self, spec: Spec, value: Any, key: str) -> Any:
        """`value` converted by `spec` (see the module docstring)."""
        if isinstance(spec, Num):
            return self._num(spec, value, key)
        if isinstance(spec, Int):
            return self._int(spec, value, key)
        if isinstance(spec, Str):
            return self._str(spec, value, key)
        if isinstance(spec, Bool):
            if not isinstance(value, bool):
                raise self.fail(key, f"must be true or false, got {short_repr(value)}")
            return value
        if isinstance(spec, FilePath):
            return self._path(value, key)
        if isinstance(spec, ListOf):
            return self._list(spec, value, key)
        return self._table(spec, value, key)

    def table(self, value: Any, key: str) -> Mapping[str, Any]:
        """`value` if it is a table, else the error."""
        if not isinstance(value, Mapping):
            raise self.fail(key, f"must be a table, got {type(value).__name__} {short_repr(value)}")
        return value

    def _num(self, spec: Num, value: Any, key: str) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(key, f"must be a number, got {short_repr(value)}")
        try:
            v = float(value)
        except OverflowError:  # an integer of hundreds of digits
            raise self.fail(key, f"must be a finite number, got {short_repr(value)}") from None
        if not math.isfinite(v):
            raise self.fail(key, f"must be finite, got {value!r}")
        if spec.lo is not None and (v < spec.lo or (spec.lo_open and v <= spec.lo)):
            op = ">" if spec.lo_open else ">="
            raise self.fail(key, f"must be {op} {spec.lo:g}, got {short_repr(value)}")
        if spec.hi is not None and v > spec.hi:
            raise self.fail(key, f"must be <= {spec.hi:g}, got {short_repr(value)}")
        return v

    def _int(self, spec: Int, value: Any, key: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(key, f"must be an integer, got {short_repr(value)}")
        if spec.lo is not None and value < spec.lo:
            raise self.fail(key, f"must be >= {spec.lo}, got {short_repr(value)}")
        if spec.hi is not None and value > spec.hi:
            raise self.fail(key, f"must be <= {spec.hi:,}, got {short_repr(value)}")
        return value

    def _str(self, spec: Str, value: Any, key: str) -> str:
        if spec.from_int and isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str) or not value.strip():
            raise self.fail(key, f"must be a non-empty string, got {short_repr(value)}")
        if spec.choices is not None and value not in spec.choices:
            raise self.fail(key, f"{short_repr(value)} is not one of {', '.join(spec.choices)}")
        return value

    def _path(self, value: Any, key: str) -> Path:
        s = self._str(Str(), value, key)
        p = Path(s)
        if not p.is_absolute():
            p = self.base / p
        try:
            ok = p.is_file()
        except OSError as exc:  # a name too long for the file system
            raise self.fail(key, f"file {short_repr(s)} cannot be read: {exc.strerror}") from None
        if not ok:
            raise self.fail(key, f"file {short_repr(s)} not found (looked at {p})")
        return p

    def _list(self, spec: ListOf, value: Any, key: str) -> tuple[Any, ...]:
        if not isinstance(value, list):
            raise self.fail(key, f"must be an array, got {short_repr(value)}")
        if spec.length is not None and len(value) != spec.length:
            raise self.fail(
                key, spec.too_short or f"must have {spec.length} values, got {len(value)}"
            )
        if len(value) < spec.min_length:
            raise self.fail(key, spec.too_short or f"needs at least {spec.min_length} values")
        return tuple(self.check(spec.item, v, f"{key}[{i}]") for i, v in enumerate(value))

    def _table(self, spec: Table, value: Any, key: str) -> dict[str, Any]:
        tbl = self.table(value, key)
        for k in tbl:
            if k not in spec.fields:
                full = f"{key}.{k}" if key else str(k)
                raise self.fail(full, f"unknown key (allowed: {', '.join(spec.fields)})")
        out: dict[str, Any] = {}
        for name, f in spec.fields.items():
            full = f"{key}.{name}" if key else name
            if name in tbl:
                out[name] = self.check(f.spec, tbl[name], full)
            elif f.required:
                raise self.fail(full, "missing required key")
            elif f.default is not _MISSING:
                out[name] = f.default
        return out
