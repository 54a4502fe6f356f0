"""Checks of output destinations, done before any work (so that a long run does not fail at the end).

>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> check_output_file(d / "new" / "a.geojson", "--geojson").name
'a.geojson'
>>> (d / "f").write_text("x") and None
>>> try:
...     check_output_dir(d / "f", "--out")
... except OutputError as exc:
...     print(str(exc).endswith("exists and is not a folder"))
True
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from dispatch.errors import DispatchError
from dispatch.io.text import display_name

__all__ = ["OutputError", "check_output_dir", "check_output_file"]


class OutputError(DispatchError):
    """An output destination that cannot be written (a device, a path under a file, too long)."""


def _stat(p: Path, option: str) -> os.stat_result | None:
    try:
        return p.stat()
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        raise OutputError(f"{option} {_name(p)!r}: {exc.strerror or exc}") from None


def _name(p: Path) -> str:
    s = display_name(p)
    return s if len(s) < 60 else ".../" + p.name[-50:]


def _check_parents(p: Path, option: str) -> None:
    for parent in p.parents:
        st = _stat(parent, option)
        if st is None:
            continue
        if not stat.S_ISDIR(st.st_mode):
            raise OutputError(
                f"{option} {_name(p)!r} is under {_name(parent)!r}, which is not a folder"
            )
        return


def check_output_file(path: str | os.PathLike[str], option: str) -> Path:
    """Check that `path` can be written as a regular file (created or replaced atomically).

    Raises
    ------
    OutputError
        The path is a folder, a device (``/dev/full``) or another special file, lies under a file,
        or has a name too long for the file system. The message names `option` and the path.
    """
    p = Path(path)
    if len(p.name.encode()) > 255 - 20:  # the temporary file beside it adds a prefix and suffix
        raise OutputError(f"{option} {_name(p)!r}: file name longer than the file system allows")
    st = _stat(p, option)
    if st is not None and not stat.S_ISREG(st.st_mode):
        kind = "a folder" if stat.S_ISDIR(st.st_mode) else "not a regular file"
        raise OutputError(f"{option} {_name(p)!r} exists and is {kind}")
    _check_parents(p, option)
    return p


#: Longest output folder name: an output set is built in a temporary folder beside it, whose name adds
#: a prefix and a suffix (most file systems allow 255 bytes).
MAX_OUT_NAME_BYTES = 255 - 32


def check_output_dir(path: str | os.PathLike[str], option: str = "--out") -> Path:
    """Check, before any work, that `path` is a folder or can be created as one, and written in.

    It may exist (a folder) or not (it is created with its parents). The nearest existing folder
    must be writable (an output set is built beside the target, then renamed into place).

    Raises
    ------
    OutputError
        An empty path, a path that exists and is not a folder (a file, ``/dev/full``), a path under a
        file, a name too long, or a nearest existing folder that cannot be written. The message names
        `option` and the path.
    """
    if not str(path):
        raise OutputError(f"{option}: the folder name is empty")
    out = Path(path)
    if len(out.name.encode("utf-8", "surrogateescape")) > MAX_OUT_NAME_BYTES:
        raise OutputError(
            f"{option} {_name(out)!r}: folder name longer than the file system allows"
            f" ({MAX_OUT_NAME_BYTES} bytes with the temporary name beside it)"
        )
    for p in (out, *out.parents):
        st = _stat(p, option)
        if st is None:
            continue
        if not stat.S_ISDIR(st.st_mode):
            if p == out:
                raise OutputError(f"{option} {_name(out)!r} exists and is not a folder")
            raise OutputError(
                f"{option} {_name(out)!r} is under {_name(p)!r}, which is not a folder"
            )
        writable = p.parent if p == out else p  # the set is built beside the target
        if not os.access(writable, os.W_OK | os.X_OK):
            raise OutputError(f"{option} {_name(out)!r}: cannot write in {_name(writable)!r}")
        break
    return out
