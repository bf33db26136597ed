"""Retrying Databento calls: what is worth another try, how long to wait, and the final one-line error.

Retried (transient): HTTP 429 (waiting ``Retry-After`` when the server gives it), 5xx, connection
errors, read timeouts, a stream cut mid-body (``BentoError("Error streaming response: ...")``) and
truncated DBN (the cache's check raises a transient :class:`SourceError` for it). Everything else,
other 4xx included, fails at once. Waits grow exponentially with jitter up to ``max_delay``.

The final :class:`hdi.errors.SourceError` says what was fetched, how many attempts were made, the
HTTP status, Databento's own message and request id; it never contains the API key.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from hdi import _interrupt as interrupt
from hdi._config import API_KEY_ENV
from hdi._redaction import redact
from hdi._retrying import RetryPolicy
from hdi.errors import HdiError, SourceError

__all__ = ["Failure", "RetryPolicy", "call_with_retry", "classify"]

logger = logging.getLogger(__name__)
T = TypeVar("T")
KEYS_URL = "https://databento.com/portal/keys"


@dataclass(frozen=True)
class Failure:
    """What went wrong in one attempt, in terms the retry loop and the message need."""

    transient: bool
    detail: str
    http_status: int | None = None
    retry_after: float | None = None
    request_id: str | None = None
    case: str | None = None  # Databento's error case, e.g. "symbology_invalid_request"


def _one_line(text: str) -> str:
    lines = [ln.strip() for ln in str(text).splitlines() if ln.strip() and not ln.startswith("documentation:")]
    return ": ".join(lines)


def _retry_after(headers: Mapping[str, object] | None) -> float | None:
    value = headers.get("Retry-After") if headers is not None else None
    if not isinstance(value, (str, bytes, int, float)):
        return None
    try:
        return max(0.0, float(value))
    except (TypeError, ValueError):
        return None  # an HTTP-date or garbage: fall back to backoff


_DBN_READER = "databento.common.dbnstore"  # the client module whose only warning is a truncated file
_HTTP = "databento.common.http"  # the client module whose only plain BentoError is a broken response stream


def _raised_in(exc: BaseException, module: str) -> bool:
    """Whether ``exc`` was raised by code of ``module`` (the innermost frame of its traceback)."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb is not None and tb.tb_frame.f_globals.get("__name__") == module


def _case(body: object) -> str | None:
    """Databento's error case from a JSON error body (``{"detail": {"case": ...}}``)."""
    detail = body.get("detail") if isinstance(body, dict) else None
    case = detail.get("case") if isinstance(detail, dict) else None
    return case if isinstance(case, str) else None


def classify(exc: BaseException) -> Failure:
    """Sort an exception from the client (or from hdi's own checks) into transient or terminal."""
    import requests
    from databento.common.error import BentoError, BentoHttpError, BentoWarning

    if isinstance(exc, BentoWarning) and _raised_in(exc, _DBN_READER):  # a filter raised a read warning
        return Failure(True, f"DBN file is truncated ({_one_line(str(exc))})")
    if isinstance(exc, SourceError):
        return Failure(exc.transient, exc.message, exc.http_status, exc.retry_after, exc.request_id, exc.case)
    if isinstance(exc, HdiError):
        return Failure(exc.transient, exc.message)
    if isinstance(exc, BentoHttpError):
        status = int(exc.http_status)
        detail = _one_line(exc.message) if exc.message else "no message from the server"
        transient = status == 429 or status >= 500 or status == 408
        return Failure(transient, detail, status, _retry_after(exc.headers), exc.request_id, _case(exc.json_body))
    if isinstance(exc, BentoError):
        text = str(exc)
        if _raised_in(exc, _HTTP) and exc.__context__ is not None:  # the body stream broke (http.py's only BentoError)
            return Failure(True, f"connection dropped mid-stream ({_one_line(text)})")
        return Failure(False, _one_line(text))
    if isinstance(exc, requests.exceptions.SSLError):
        return Failure(False, f"TLS error: {_one_line(str(exc))} (is REQUESTS_CA_BUNDLE right for this gateway?)")
    if isinstance(exc, requests.exceptions.Timeout):
        return Failure(True, f"timed out: {_one_line(str(exc))}")
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return Failure(True, f"connection dropped mid-body: {_one_line(str(exc))}")
    if isinstance(exc, (requests.exceptions.ConnectionError, ConnectionError)):
        return Failure(True, f"connection error: {_one_line(str(exc))}")
    return Failure(False, f"{type(exc).__name__}: {_one_line(str(exc))}")


def _message(what: str, failure: Failure, attempts: int) -> str:
    if failure.http_status == 401:
        return (f"{what}: Databento rejected the API key (HTTP 401: {failure.detail}); export {API_KEY_ENV} with "
                f"a valid key from {KEYS_URL}")
    tries = f"{attempts} attempt{'s' if attempts != 1 else ''}"
    status = f"HTTP {failure.http_status}: " if failure.http_status is not None else ""
    rid = f" (request id {failure.request_id})" if failure.request_id else ""
    return f"{what} failed after {tries}: {status}{failure.detail}{rid}"


def call_with_retry(fn: Callable[[], T], *, policy: RetryPolicy, what: str,
                    sleep: Callable[[float], None] = interrupt.sleep) -> T:
    """Call ``fn`` until it succeeds, a terminal error occurs, or ``policy.attempts`` calls were made.

    Args:
        fn: the call (no arguments); a fresh attempt each time.
        policy: attempts and backoff.
        what: what is being fetched, e.g. ``get_range GLBX.MDP3 trades CL.c.0 [start, end)``.
        sleep: the wait function (tests inject a recorder); by default cut short by SIGINT/SIGTERM.

    Raises:
        SourceError: one line with ``what``, the attempts, the HTTP status, Databento's message and
            request id; ``.transient`` and ``.http_status`` set.
    """
    attempts = max(1, policy.attempts)
    for attempt in range(1, attempts + 1):
        try:
            return interrupt.call(fn)  # in an ingest's main thread: left at once on SIGINT/SIGTERM
        except Exception as exc:  # noqa: BLE001 - sorted by classify(); terminal ones are re-raised below
            failure = classify(exc)
            if not failure.transient or attempt == attempts:
                raise SourceError(redact(_message(what, failure, attempt)), transient=failure.transient,
                                  http_status=failure.http_status, retry_after=failure.retry_after,
                                  case=failure.case, request_id=failure.request_id) from exc
            wait = failure.retry_after if failure.retry_after is not None else policy.backoff(attempt)
            status = f"HTTP {failure.http_status}" if failure.http_status is not None else "error"
            logger.warning(redact(f"{what}: {status} ({failure.detail}); retry {attempt}/{attempts - 1} in "
                                  f"{wait:.2f}s"))
            sleep(wait)
    raise AssertionError("unreachable")  # pragma: no cover
