"""stdout that fails (a full disk, a closed pipe) ends ``hdi`` with one line, not a traceback.

``hdi query > /dev/full`` used to end in an ``OSError`` traceback, and an error while Python flushed
stdout at exit printed another. :func:`guarded` runs the command with ``sys.stdout`` wrapped so that
a failed write or flush is recognised as stdout's own (not any other ``OSError``), flushes before
returning, and turns the failure into ``error: stdout could not be written (<reason>)`` and exit 1.
The unwritten rest is sent to ``/dev/null`` so that the interpreter's own flush at exit stays quiet.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys
from collections.abc import Callable, Iterable
from typing import Any, Protocol, TextIO


class StdoutError(OSError):
    """A write to stdout failed. It carries no ``errno`` of its own (``reason`` holds it), so that
    click's silent exit on EPIPE does not swallow it before :func:`guarded` reports it."""

    def __init__(self, cause: OSError) -> None:
        super().__init__(str(cause))
        self.reason = cause.errno
        self.text = cause.strerror or (os.strerror(cause.errno) if cause.errno else str(cause))


class StdoutClosed(StdoutError, BrokenPipeError):
    """stdout's reader went away (EPIPE). Also a ``BrokenPipeError``, so that output that is only a
    report on work in progress (an ingest's progress and summary, see ``render._writing``) goes
    quiet and the work completes with its own exit status; anything else (``hdi query``'s rows)
    reaches :func:`guarded` and is one line, exit 1."""


def _failure(e: OSError) -> StdoutError:
    return StdoutClosed(e) if e.errno == errno.EPIPE else StdoutError(e)


class _Guarded:
    """A transparent proxy of a text stream whose write errors become :class:`StdoutError`."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except OSError as e:
            raise _failure(e) from e

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except OSError as e:
            raise _failure(e) from e

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


class _HasFileno(Protocol):
    def fileno(self) -> int: ...


def silence(stream: _HasFileno) -> None:
    """Point a stream's descriptor at /dev/null, so the data still buffered and any later write or
    flush (the interpreter's own at exit included) succeed quietly. A stream without a descriptor
    (tests' captured streams) is left alone."""
    with contextlib.suppress(OSError, ValueError):
        null = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(null, stream.fileno())
        finally:
            os.close(null)


def _message(e: StdoutError) -> str:
    if e.reason == errno.EPIPE:
        return "stdout was closed before all output was written (broken pipe)"
    return f"stdout could not be written ({e.text})"


def guarded(run: Callable[[], None], on_error: Callable[[str], None]) -> None:
    """Run ``run()`` (which may raise SystemExit) with stdout guarded; a stdout failure calls
    ``on_error(message)`` and exits 1."""
    real = sys.stdout
    sys.stdout = _Guarded(real)
    code: str | int | None = 0
    try:
        try:
            run()
        except SystemExit as e:
            code = e.code
        sys.stdout.flush()
    except StdoutError as e:
        sys.stdout = real
        silence(real)
        on_error(_message(e))
        sys.exit(1)
    finally:
        sys.stdout = real
    sys.exit(code)
