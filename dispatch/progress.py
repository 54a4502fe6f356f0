"""Progress of long work (compile, preprocessing, first-run kernel compilation).

The library never prints. Work that can take over 2 s opens a :func:`task` and reports steps to
it; what is shown is decided by the *reporter* installed by the caller: the CLI installs
:func:`tqdm_reporter` (a bar on stderr that appears only after 2 s, only on a terminal, off with
``--quiet``); a library user may install their own with :func:`reporting`, or none (the default:
nothing is shown, nothing is slowed down).

>>> with task("counting", total=3, unit="step") as p:
...     for _ in range(3):
...         p.update(1)
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Protocol


class Progress(Protocol):
    """What a task reports to: ``update(n)`` steps done (of ``total`` when it is known)."""

    def update(self, n: int = 1) -> object: ...


#: ``reporter(description, total, unit)`` -> a context manager yielding a :class:`Progress`.
Reporter = Callable[[str, "int | None", str], contextlib.AbstractContextManager[Progress]]


class _Silent:
    def update(self, n: int = 1) -> None:
        return None


_REPORTER: ContextVar[Reporter | None] = ContextVar("dispatch_progress_reporter", default=None)


@contextlib.contextmanager
def task(description: str, *, total: int | None = None, unit: str = "step") -> Iterator[Progress]:
    """Report the progress of one piece of work to the installed reporter (silent if none)."""
    reporter = _REPORTER.get()
    if reporter is None:
        yield _Silent()
        return
    with reporter(description, total, unit) as p:
        yield p


@contextlib.contextmanager
def reporting(reporter: Reporter | None) -> Iterator[None]:
    """Install ``reporter`` for the work done inside the ``with`` block (``None``: silent)."""
    token = _REPORTER.set(reporter)
    try:
        yield
    finally:
        _REPORTER.reset(token)


def tqdm_reporter(*, quiet: bool = False, delay_s: float = 2.0) -> Reporter | None:
    """The CLI's reporter: tqdm bars on stderr after ``delay_s``, only on a terminal.

    Returns ``None`` (silent) when ``quiet`` or when stderr is not a terminal.
    """
    if quiet or not sys.stderr.isatty():
        return None

    @contextlib.contextmanager
    def reporter(description: str, total: int | None, unit: str) -> Iterator[Progress]:
        from tqdm import tqdm

        class _Bar(tqdm):  # type: ignore[misc]
            monitor_interval = 0  # no monitor thread: the process may fork (kernels.compile_...)

        bar = _Bar(total=total, desc=description, unit=unit, delay=delay_s, file=sys.stderr,
                   leave=False, dynamic_ncols=True)  # fmt: skip
        try:
            yield bar
        finally:
            bar.close()

    return reporter
