"""Bounded reading of input files: text, JSON, TOML and CSV tables, with one-line errors.

Every reader of :mod:`dispatch.io` goes through these functions, so that every input file gets the
same limits and the same messages:

* at most :data:`MAX_FILE_BYTES` (64 MiB) per file, :data:`MAX_LINE_CHARS` (10,000) per line and
  :data:`MAX_ROWS` (1,000,000) CSV rows: ``--fleet /dev/zero`` fails at once, naming the limit;
* ``-`` reads standard input (a byte-order mark is dropped, as in a file);
* an unreadable file (missing, a folder, no permission, a name too long for the file system) is
  reported with its name and the problem, never with its content;
* line numbers are physical lines of the file (comments and blank lines counted);
* JSON nested too deep, integers of thousands of digits and NUL bytes are refused with a message.

>>> import tempfile, pathlib
>>> p = pathlib.Path(tempfile.mkdtemp()) / "f.csv"
>>> _ = p.write_text("# comment\\nid,lat\\nA,1\\n")
>>> t = read_csv_table(p, "fleet", required=("id", "lat"))
>>> t.header, t.rows
(('id', 'lat'), [(3, {'id': 'A', 'lat': '1'})])
"""

from __future__ import annotations

import csv
import json
import os
import sys
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from dispatch.errors import DispatchError, InputFileError

__all__ = [
    "MAX_FILE_BYTES",
    "MAX_LINE_CHARS",
    "MAX_ROWS",
    "CsvTable",
    "display_name",
    "read_csv_table",
    "read_json",
    "read_text",
    "read_toml",
]

#: Largest input file read, bytes (a 1,000,000-unit fleet is about 80 MB: far beyond any city).
MAX_FILE_BYTES = 64 * 1024 * 1024
#: Longest line of a CSV file, characters.
MAX_LINE_CHARS = 10_000
#: Most data rows in a CSV file.
MAX_ROWS = 1_000_000


def display_name(path: str | os.PathLike[str]) -> str:
    """The file name as shown in messages (``<stdin>`` for ``-``; cut to 120 characters)."""
    s = os.fspath(path)
    if s == "-":
        return "<stdin>"
    return s if len(s) <= 120 else s[:60] + "..." + s[-57:]


def read_text(
    path: str | os.PathLike[str], what: str, *, error: type[DispatchError] = InputFileError
) -> str:
    """The UTF-8 text of a file (``-``: standard input), at most :data:`MAX_FILE_BYTES`.

    Raises
    ------
    InputFileError (or `error`)
        Missing or unreadable file, too large, not UTF-8, or binary (NUL bytes); the message names
        the file and the problem, never the content.
    """
    name = display_name(path)
    if os.fspath(path) == "-":
        stream = getattr(sys.stdin, "buffer", None)
        if stream is None:
            raise error(f"{what} file <stdin>: standard input is closed")
        try:
            data = stream.read(MAX_FILE_BYTES + 1)
        except OSError as exc:
            raise error(f"{what} file <stdin>: cannot be read: {exc.strerror or exc}") from None
    else:
        try:
            with open(path, "rb") as fh:
                data = fh.read(MAX_FILE_BYTES + 1)
        except FileNotFoundError:
            raise error(f"{what} file {name!r} does not exist") from None
        except IsADirectoryError:
            raise error(f"{what} file {name!r} is a folder, not a file") from None
        except OSError as exc:
            raise error(f"{what} file {name!r} cannot be read: {exc.strerror or exc}") from None
    if len(data) > MAX_FILE_BYTES:
        raise error(
            f"{what} file {name!r} is larger than the limit of {MAX_FILE_BYTES // 2**20} MiB"
        )
    if b"\x00" in data:
        raise error(f"{what} file {name!r} is binary (NUL bytes), not UTF-8 text")
    try:
        return str(data.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise error(
            f"{what} file {name!r} is not UTF-8 text (invalid byte at offset {exc.start})"
        ) from None


def read_json(
    path: str | os.PathLike[str], what: str, *, error: type[DispatchError] = InputFileError
) -> Any:
    """A JSON document (bounded as :func:`read_text`); malformed JSON names line and column."""
    text = read_text(path, what, error=error)
    name = display_name(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise error(
            f"{name}: line {exc.lineno}, column {exc.colno}: malformed JSON: {exc.msg}"
        ) from None
    except RecursionError:
        raise error(f"{name}: JSON nested too deeply") from None
    except ValueError as exc:  # an integer of more than 4,300 digits
        raise error(f"{name}: malformed JSON: {str(exc).split(';')[0]}") from None


def read_toml(
    path: str | os.PathLike[str], what: str, *, error: type[DispatchError] = InputFileError
) -> dict[str, Any]:
    """A TOML document (bounded as :func:`read_text`); malformed TOML names line and column."""
    text = read_text(path, what, error=error)
    name = display_name(path)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{name}: malformed TOML: {exc}") from None
    except RecursionError:
        raise error(f"{name}: malformed TOML: nested too deeply") from None
    except ValueError as exc:  # an integer of more than 4,300 digits
        raise error(f"{name}: malformed TOML: {str(exc).split(';')[0]}") from None


@dataclass(frozen=True)
class CsvTable:
    """A CSV file read by :func:`read_csv_table`: file name, header and rows with physical line numbers."""

    name: str
    header: tuple[str, ...]
    header_line: int
    rows: list[tuple[int, dict[str, str]]]

    def fail(self, line: int, message: str) -> InputFileError:
        """An :class:`InputFileError` naming this file and `line`."""
        return InputFileError(f"{self.name}: line {line}: {message}")


def read_csv_table(
    path: str | os.PathLike[str],
    what: str,
    *,
    required: Sequence[str],
    optional: Sequence[str] | None = (),
    allow_empty: bool = False,
    strict_rows: bool = True,
) -> CsvTable:
    """Read a CSV file whose first non-comment line is the header.

    Lines starting with ``#`` and blank lines are skipped (but counted in line numbers); cells are
    stripped. Linear in the file size.

    Parameters
    ----------
    required : sequence of str
        Columns the header must have.
    optional : sequence of str or None
        Other columns allowed; ``None`` allows any column.
    allow_empty : bool
        Whether a file with a header and no rows is accepted.
    strict_rows : bool
        Whether a row with another number of fields than the header is an error (else the row is
        kept with its fields, missing ones empty, and the caller checks ``len``).

    Raises
    ------
    InputFileError
        Unreadable or too large file, no header, a missing, unknown or repeated column, a line too
        long, too many rows, or a row whose field count differs from the header.
    """
    text = read_text(path, what)
    name = display_name(path)
    header: tuple[str, ...] | None = None
    header_line = 0
    rows: list[tuple[int, dict[str, str]]] = []
    lines = text.split("\n")
    if "\r" in text:
        lines = [ln.removesuffix("\r") for ln in lines]
    if max(map(len, lines)) > MAX_LINE_CHARS:
        n = next(i for i, ln in enumerate(lines, 1) if len(ln) > MAX_LINE_CHARS)
        raise InputFileError(
            f"{name}: line {n}: longer than the limit of {MAX_LINE_CHARS:,} characters"
        )
    for n, line in enumerate(lines, start=1):
        stripped = line.strip()
        if not stripped or stripped[0] == "#":
            continue
        if '"' in line:  # quoted fields: the csv module (a line is one record: no multi-line cells)
            try:
                cells = [c.strip() for c in next(csv.reader([line]))]
            except csv.Error as exc:
                raise InputFileError(f"{name}: line {n}: malformed CSV: {exc}") from None
        else:  # the common case, exactly what csv would give, several times faster
            cells = [c.strip() for c in line.split(",")]
        if header is None:
            header, header_line = _check_header(name, n, cells, required, optional), n
            continue
        if len(rows) >= MAX_ROWS:
            raise InputFileError(f"{name}: more than the limit of {MAX_ROWS:,} rows")
        if len(cells) != len(header):
            if strict_rows:
                raise InputFileError(
                    f"{name}: line {n}: expected {len(header)} fields ({','.join(header)}), "
                    f"got {len(cells)}"
                )
            cells = (cells + [""] * len(header))[: len(header)]
        rows.append((n, dict(zip(header, cells, strict=True))))
    if header is None:
        raise InputFileError(
            f"{what} file {name!r} is empty (no header line; expected {','.join(required)})"
        )
    if not rows and not allow_empty:
        raise InputFileError(f"{what} file {name!r} has no data rows after the header")
    return CsvTable(name, header, header_line, rows)


def _check_header(
    name: str, n: int, cells: list[str], required: Sequence[str], optional: Sequence[str] | None
) -> tuple[str, ...]:
    seen: set[str] = set()
    for c in cells:
        if c in seen:
            raise InputFileError(f"{name}: line {n}: header repeats column {c[:40]!r}")
        seen.add(c)
    missing = [c for c in required if c not in seen]
    if missing:
        # the header is not echoed: the file may be anything (never print foreign content)
        raise InputFileError(
            f"{name}: line {n}: header lacks column(s) {', '.join(missing)} "
            f"(needs {','.join(required)})"
        )
    if optional is not None:
        allowed = set(required) | set(optional)
        unknown = [c for c in cells if c not in allowed]
        if unknown:
            shown = ", ".join(repr(c[:40]) for c in unknown[:5])
            raise InputFileError(
                f"{name}: line {n}: unknown column(s) {shown} "
                f"(allowed: {', '.join([*required, *optional])})"
            )
    return tuple(cells)
