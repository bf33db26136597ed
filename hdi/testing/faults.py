"""Fault injection for the test gateway: the failures a Databento client meets on a bad day.

Kinds:

- ``status``: answer with an HTTP status (500, 502, 503, 504, 429 with ``Retry-After``, ...) and a
  body in Databento's error shape (or an HTML page, as a proxy in front would send);
- ``drop``: send the headers and part of the body, then cut the connection (``IncompleteRead``);
- ``truncate``: serve a complete zstd stream whose DBN ends in the middle of a record
  (``timeseries.get_range`` only; the client merely warns about it);
- ``slow``: sleep before the first byte, then answer normally.

Each fault applies to the next ``times`` calls of its endpoint whose parameters include ``match``,
and is consumed by them, first added first used; the request log records which fault hit a call.
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import asdict, dataclass, field
from typing import Any

KINDS = ("status", "drop", "truncate", "slow")


def endpoint_name(path: str) -> str:
    """``/v0/timeseries.get_range`` -> ``timeseries.get_range`` (other forms pass through)."""
    path = path.split("?", 1)[0].strip("/")
    return path[3:] if path.startswith("v0/") else path


@dataclass
class Fault:
    """One armed fault. ``endpoint`` is e.g. ``timeseries.get_range``, ``*`` for every endpoint, or a
    prefix ending in ``/*`` (``batch/download/*``: every batch file download)."""

    endpoint: str
    kind: str = "status"
    times: int = 1
    status: int = 500
    retry_after: float | None = None
    after_bytes: int | None = None
    delay: float = 0.0
    match: dict[str, str] = field(default_factory=dict)
    body: str = "json"  # json | html
    id: int = 0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; allowed: {', '.join(KINDS)}")
        if self.times < 1:
            raise ValueError(f"fault times must be >= 1, got {self.times}")
        self.endpoint = endpoint_name(self.endpoint) if self.endpoint != "*" else "*"
        self.match = {str(k): str(v) for k, v in (self.match or {}).items()}

    def matches(self, endpoint: str, params: dict[str, str]) -> bool:
        where = self.endpoint in ("*", endpoint) or (  # "batch/download/*": every batch file download
            self.endpoint.endswith("/*") and endpoint.startswith(self.endpoint[:-1]))
        return where and all(params.get(k) == v for k, v in self.match.items())

    def describe(self) -> str:
        if self.kind == "status":
            return f"status {self.status}" + (f" retry-after {self.retry_after:g}" if self.retry_after else "")
        if self.kind == "drop":
            return f"drop after {self.after_bytes} bytes" if self.after_bytes is not None else "drop"
        if self.kind == "slow":
            return f"slow {self.delay:g}s"
        return "truncate"


class FaultSet:
    """Thread-safe list of armed faults, shared by the gateway's handler threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._ids = itertools.count(1)

    def add(self, endpoint: str, kind: str = "status", *, times: int = 1, status: int = 500,
            retry_after: float | None = None, after_bytes: int | None = None, delay: float = 0.0,
            match: dict[str, Any] | None = None, body: str = "json") -> Fault:
        """Arm a fault; see the module docstring for the kinds."""
        fault = Fault(endpoint, kind, times, status, retry_after, after_bytes, delay, dict(match or {}), body)
        with self._lock:
            fault.id = next(self._ids)
            self._faults.append(fault)
        return fault

    def status(self, endpoint: str, status: int, *, times: int = 1, retry_after: float | None = None,
               match: dict[str, Any] | None = None, body: str = "json") -> Fault:
        """Answer the next ``times`` matching calls with HTTP ``status``."""
        return self.add(endpoint, "status", times=times, status=status, retry_after=retry_after, match=match,
                        body=body)

    def drop(self, endpoint: str, *, times: int = 1, after_bytes: int | None = None,
             match: dict[str, Any] | None = None) -> Fault:
        """Cut the connection after ``after_bytes`` body bytes (default: about half the body)."""
        return self.add(endpoint, "drop", times=times, after_bytes=after_bytes, match=match)

    def truncate(self, endpoint: str = "timeseries.get_range", *, times: int = 1,
                 match: dict[str, Any] | None = None) -> Fault:
        """Serve DBN that ends mid-record."""
        return self.add(endpoint, "truncate", times=times, match=match)

    def slow(self, endpoint: str, delay: float, *, times: int = 1, match: dict[str, Any] | None = None) -> Fault:
        """Wait ``delay`` seconds before the first byte."""
        return self.add(endpoint, "slow", times=times, delay=delay, match=match)

    def add_dict(self, spec: dict[str, Any]) -> Fault:
        """Arm a fault from its JSON form (the control endpoint's body)."""
        known = {"endpoint", "kind", "times", "status", "retry_after", "after_bytes", "delay", "match", "body"}
        unknown = set(spec) - known
        if unknown:
            raise ValueError(f"unknown fault field(s) {sorted(unknown)}; allowed: {sorted(known)}")
        if "endpoint" not in spec:
            raise ValueError("a fault needs an 'endpoint', e.g. 'timeseries.get_range' or '*'")
        spec = dict(spec)
        return self.add(spec.pop("endpoint"), spec.pop("kind", "status"), **spec)

    def take(self, endpoint: str, params: dict[str, str]) -> Fault | None:
        """Consume one use of the first fault matching this call, if any."""
        with self._lock:
            for fault in self._faults:
                if fault.matches(endpoint, params):
                    fault.times -= 1
                    if fault.times == 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def pending(self) -> list[dict[str, Any]]:
        """Armed faults with their remaining uses."""
        with self._lock:
            return [asdict(f) for f in self._faults]
