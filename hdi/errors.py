"""The one exception tree of hdi.

Every error hdi raises on purpose is an :class:`HdiError`. Each stage has its own subclass, and a
message is one line that names the file, field, parameter or value at fault and what is allowed,
so that the CLI can print ``error: <message>`` and exit without a traceback.

``transient`` marks errors worth retrying (5xx, 429, dropped connections, a database that went
away); everything else is terminal.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from typing import TypeVar


class HdiError(Exception):
    """Root of every error hdi raises on purpose."""

    transient: bool = False
    # The CLI's exit status: 2 for a value beyond one of hdi's input limits (see :func:`beyond_limit`).
    exit_code: int = 1

    def __init__(self, message: str, *, transient: bool | None = None) -> None:
        super().__init__(message)
        if transient is not None:
            self.transient = transient

    @property
    def message(self) -> str:
        """The message on one line: line breaks and control characters in a quoted value are escaped."""
        return one_line(str(self.args[0])) if self.args else ""


class ConfigError(HdiError):
    """Bad settings: store URL, environment variables, paths, CLI arguments."""


class SourceError(HdiError):
    """Fetching raw DBN failed: Databento API, network, cache, files on disk.

    For an answer of Databento's API: ``http_status``, Databento's error ``case`` (e.g.
    ``symbology_invalid_request``, ``data_end_after_available_end``) and its ``request_id``;
    decisions read these fields, never the message.
    """

    def __init__(
        self, message: str, *, transient: bool | None = None, http_status: int | None = None,
        retry_after: float | None = None, case: str | None = None, request_id: str | None = None,
    ) -> None:
        super().__init__(message, transient=transient)
        self.http_status = http_status
        self.retry_after = retry_after
        self.case = case
        self.request_id = request_id


class DecodeError(HdiError):
    """DBN bytes could not be turned into frames: corrupt, truncated or unsupported version."""


class SchemaNeededError(DecodeError):
    """A mixed-schema DBN file (a live capture: no schema in its metadata) was opened without saying
    which schema to read from it."""


class RecipeError(HdiError):
    """A recipe file is malformed, names an unknown key/op/column, or cannot compile."""


class ValidationError(HdiError):
    """Validation as a whole failed: schema mismatch, or more bad rows than the recipe allows."""


class QuarantineError(ValidationError):
    """Bad rows could not be written to the quarantine folder."""


class StoreError(HdiError):
    """The store refused, lost or could not be reached."""


class ConcurrentWriteError(StoreError):
    """Another writer stored some of the same keys first; retrying the write resolves it."""

    transient = True


class OutputError(HdiError):
    """A file hdi writes for a user (``--output``, ``--log-file``, stdout) was refused or could not be
    written: it exists (no ``--force``), it is a store, a link, a FIFO or a device, or the disk is full."""


class QueryError(HdiError):
    """A read asked for something the store cannot answer: unknown symbol, bad range, bad column."""


_CONTROL = re.compile("[\x00-\x1f\x7f\x85\u2028\u2029]")


def one_line(text: str) -> str:
    """``text`` with line breaks and other control characters escaped (``\\n``, ``\\x1b``)."""
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)


_E = TypeVar("_E", bound=HdiError)


def beyond_limit(error: _E) -> _E:
    """Mark ``error`` as an input beyond one of hdi's limits (size, length, count, depth, date range):
    the CLI exits 2 for it, as for a usage error, before any work is done."""
    error.exit_code = 2
    return error


def did_you_mean(value: str, allowed: Iterable[str]) -> str:
    """Return ``" (did you mean 'x'?)"`` for the closest allowed value, or ``""``."""
    close = difflib.get_close_matches(str(value), list(allowed), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def allowed_list(allowed: Iterable[str]) -> str:
    """Format allowed values for a message: ``a, b, c``."""
    return ", ".join(str(a) for a in allowed)
