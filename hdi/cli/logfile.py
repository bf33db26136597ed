"""The ingest log file: a handler that, when a write fails, warns once and stops.

A log file on a disk that fills up (or a ``--log-file`` that cannot take writes, such as
``/dev/full``) used to print a logging traceback for every later log line while the run went on.
:class:`LogFile` prints one line on stderr at the first failure, stops writing to the file and lets
the run finish; the ingest summary then says the log is incomplete.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from pathlib import Path

from hdi._fileout import describe_error
from hdi.cli.stdout import silence

FORMAT = "%(asctime)s %(levelname)s %(name)s [%(threadName)s] %(message)s"


class LogFile(logging.FileHandler):
    """A ``FileHandler`` (append, UTF-8) that degrades to a single warning when writing fails."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, encoding="utf-8")
        self.failure: str | None = None  # why writing stopped, once it has

    def emit(self, record: logging.LogRecord) -> None:
        if self.failure is None:
            super().emit(record)

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 (logging's name)
        if self.failure is not None:
            return
        exc = sys.exc_info()[1]
        self.failure = describe_error(exc) if exc is not None else "unknown error"
        self._discard()
        with contextlib.suppress(OSError, ValueError):
            # one write, newline included: print() writes the text and the newline apart, and the
            # console handler of another thread (the prefetching fetch) could log in between
            sys.stderr.write(f"warning: log file {self.baseFilename} cannot be written ({self.failure}); the run "
                             "goes on, the log stops here\n")
            sys.stderr.flush()

    def _discard(self) -> None:
        """Drop the stream without another failing flush: its unwritten buffer goes to /dev/null, so
        neither ``close`` nor interpreter exit reports the same error again."""
        stream, self.stream = self.stream, None
        if stream is None:
            return
        silence(stream)
        with contextlib.suppress(OSError, ValueError):
            stream.close()

    def flush(self) -> None:
        if self.failure is None:
            super().flush()
