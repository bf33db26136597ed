"""HTTP helpers of the test gateway: the request log, parameter parsing, auth and canned errors."""

from __future__ import annotations

import base64
import binascii
import itertools
import threading
from urllib.parse import parse_qsl, urlsplit

from hdi.testing.api import ApiError

_STATUS_TEXT = {
    429: ("too_many_requests", "Too many requests: the rate limit was exceeded. Retry after the time in the "
          "Retry-After header."),
    500: ("internal_server_error", "An internal server error occurred. Please try again later."),
    502: ("bad_gateway", "Bad gateway: the upstream server sent an invalid response."),
    503: ("service_unavailable", "The service is temporarily unavailable. Please try again later."),
    504: ("gateway_timeout", "The remote gateway timed out."),
}


class LoggedRequest(tuple[str, str, dict[str, str]]):
    """``(method, path, params)`` of one request, plus ``.fault`` (the injected fault, if any),
    ``.status`` (the HTTP status answered) and ``.request_id``."""

    fault: str | None
    status: int | None
    request_id: str

    def __new__(cls, method: str, path: str, params: dict[str, str], fault: str | None = None,
                request_id: str = "") -> LoggedRequest:
        self = super().__new__(cls, (method, path, params))
        self.fault = fault
        self.status = None
        self.request_id = request_id
        return self

    @property
    def method(self) -> str:
        return self[0]

    @property
    def path(self) -> str:
        return self[1]

    @property
    def params(self) -> dict[str, str]:
        return self[2]

    def as_dict(self) -> dict[str, object]:
        return {"method": self.method, "path": self.path, "params": self.params, "fault": self.fault,
                "status": self.status, "request_id": self.request_id}


class RequestLog:
    """Thread-safe log of requests (never the API key)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: list[LoggedRequest] = []
        self._ids = itertools.count(1)
        self._local = threading.local()

    def add(self, method: str, path: str, params: dict[str, str], fault: str | None) -> LoggedRequest:
        rid = f"hdi-gw-{next(self._ids):08d}"
        self._local.last = rid
        entry = LoggedRequest(method, path, dict(params), fault, rid)
        with self._lock:
            self._items.append(entry)
        return entry

    def last_id(self) -> str:
        """The request id of the request this handler thread is serving."""
        return getattr(self._local, "last", "hdi-gw-00000000")

    def snapshot(self) -> list[LoggedRequest]:
        with self._lock:
            return list(self._items)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


def parse_params(target: str, body: bytes, content_type: str) -> tuple[str, dict[str, str]]:
    """Path and parameters of a request: the query string plus a form-encoded body."""
    url = urlsplit(target)
    params = dict(parse_qsl(url.query, keep_blank_values=True))
    if body and "application/x-www-form-urlencoded" in content_type:
        params.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    return url.path, params


def basic_auth_user(header: str | None) -> str | None:
    """The username (Databento: the API key) of an HTTP Basic ``Authorization`` header."""
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        user = base64.b64decode(header[6:].strip()).decode("utf-8").split(":", 1)[0]
    except (binascii.Error, UnicodeDecodeError):
        return None
    return user or None


def error_for_status(status: int, retry_after: float | None = None) -> ApiError:
    """A canned server-side error (for injected faults), in Databento's shape."""
    case, message = _STATUS_TEXT.get(status, (f"http_{status}", f"HTTP error {status}."))
    headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else {}
    return ApiError(status, case, message, "https://databento.com/docs/api-reference-historical/basics/rate-limits"
                    if status == 429 else "", headers=headers)
