"""Fault injection for the test gateway: the failures a Databento client meets on a bad day.

Kinds:

- ``status``: answer with an HTTP status (500, 502, 503, 504, 429 with ``Retry-After``, ...) and a
  body in Databento's error shape (or an HTML page, as a proxy in front would send);
- ``drop``: send the headers and part of the body, then cut the connection (``IncompleteRead``);
- ``truncate``: serve a complete zstd stream whose DBN ends in the middle of a record
  (``timeseries.get_range`` only; the client merely warns about it);
- ``slow``: sleep before the first byte, then answer normally;
- ``reset``: reset the connection (TCP RST) before any answer (``ConnectionResetError``).

Each fault applies to the next ``times`` calls of its endpoint whose parameters include ``match``,
and is consumed by them, first added first used; the request log records which fault hit a call.

An :class:`Outage` is counted in time, not in calls: from an instant of the gateway's clock (its
wall clock, UTC; ``GET /_hdi/health`` gives it) to another, every call of its endpoints (whose
parameters include ``match``) fails, with an HTTP status (default 503) or a reset connection, however
many calls come. ``FaultSet.outage(endpoints, seconds=N)`` starts one now for N seconds;
``start``/``end`` give the instants. Outages are checked before the counted faults.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

KINDS = ("status", "drop", "truncate", "slow", "reset")
OUTAGE_KINDS = ("status", "reset")


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
        if self.kind == "reset":
            return "connection reset"
        return "truncate"


@dataclass
class Outage:
    """Every call of ``endpoints`` (``*`` = all) with ``match`` in its parameters fails from ``start``
    to ``end`` (seconds since the epoch on the gateway's clock): ``kind`` ``status`` answers HTTP
    ``status``, ``reset`` resets the connection."""

    endpoints: tuple[str, ...]
    start: float
    end: float
    kind: str = "status"
    status: int = 503
    match: dict[str, str] = field(default_factory=dict)
    id: int = 0
    hits: int = 0  # calls it failed so far

    def __post_init__(self) -> None:
        if self.kind not in OUTAGE_KINDS:
            raise ValueError(f"unknown outage kind {self.kind!r}; allowed: {', '.join(OUTAGE_KINDS)}")
        if not 400 <= int(self.status) <= 599:
            raise ValueError(f"outage status {self.status} is not allowed; allowed: an HTTP error status 400-599")
        if not self.endpoints:
            raise ValueError("an outage needs at least one endpoint, e.g. 'timeseries.get_range' or '*'")
        if not self.end > self.start:
            raise ValueError(f"an outage must end after it starts, got start {_iso(self.start)}, end {_iso(self.end)}")
        self.endpoints = tuple(endpoint_name(e) if e != "*" else "*" for e in self.endpoints)
        self.match = {str(k): str(v) for k, v in (self.match or {}).items()}

    def active(self, now: float) -> bool:
        return self.start <= now < self.end

    def matches(self, endpoint: str, params: dict[str, str]) -> bool:
        return ("*" in self.endpoints or endpoint in self.endpoints) and all(
            params.get(k) == v for k, v in self.match.items())

    def fault(self) -> Fault:
        """The failure one call meets (its ``describe()`` goes to the request log)."""
        return Fault("*", self.kind, status=self.status)

    def as_dict(self, now: float) -> dict[str, Any]:
        return {"id": self.id, "endpoints": list(self.endpoints), "kind": self.kind, "status": self.status,
                "match": self.match, "start": _iso(self.start), "end": _iso(self.end),
                "active": self.active(now), "seconds_left": max(0.0, self.end - max(now, self.start)),
                "hits": self.hits}


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")


def _instant(value: object, name: str) -> float:
    """An instant of the gateway's clock: an ISO 8601 time (UTC unless it says otherwise) or epoch seconds."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
    if isinstance(value, str):
        try:
            t = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            pass
        else:
            return (t if t.tzinfo else t.replace(tzinfo=UTC)).timestamp()
    raise ValueError(f"outage {name} {value!r} is not an instant; allowed: an ISO 8601 time (e.g. "
                     "2026-12-04T18:00:00Z) or seconds since the epoch")


class FaultSet:
    """Thread-safe list of armed faults, shared by the gateway's handler threads."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._outages: list[Outage] = []
        self._ids = itertools.count(1)
        self.clock = clock  # the gateway's clock: seconds since the epoch

    def outage(self, endpoints: str | Sequence[str], *, seconds: float | None = None, start: object = None,
               end: object = None, kind: str = "status", status: int = 503,
               match: dict[str, Any] | None = None) -> Outage:
        """Make every call of ``endpoints`` fail for ``seconds`` from now, or from ``start`` to ``end``
        (instants of the gateway's clock: ISO 8601 or epoch seconds; ``start`` alone needs ``seconds``)."""
        names = (endpoints,) if isinstance(endpoints, str) else tuple(endpoints)
        if seconds is not None and (isinstance(seconds, bool) or not isinstance(seconds, (int, float))
                                    or not 0 < seconds < 10**7):
            raise ValueError(f"outage seconds {seconds!r} is not allowed; allowed: a number of seconds > 0")
        if seconds is None and (start is None or end is None):
            raise ValueError("an outage needs 'seconds' (from now, or from 'start') or both 'start' and 'end'")
        if seconds is not None and end is not None:
            raise ValueError("an outage takes 'seconds' or 'end', not both")
        t0 = _instant(start, "start") if start is not None else self.clock()
        t1 = t0 + float(seconds) if seconds is not None else _instant(end, "end")
        o = Outage(names, t0, t1, kind, int(status), dict(match or {}))
        with self._lock:
            o.id = next(self._ids)
            self._outages.append(o)
        return o

    def outage_dict(self, spec: dict[str, Any]) -> Outage:
        """Arm an outage from its JSON form (``POST /_hdi/outages``): ``endpoints`` (a name, a list, or
        ``*``), ``seconds`` or ``start``/``end``, and optionally ``kind``, ``status``, ``match``."""
        known = {"endpoints", "seconds", "start", "end", "kind", "status", "match"}
        if not isinstance(spec, dict):
            raise ValueError("an outage is a JSON object, e.g. {\"endpoints\": \"*\", \"seconds\": 30}")
        unknown = set(spec) - known
        if unknown:
            raise ValueError(f"unknown outage field(s) {sorted(unknown)}; allowed: {sorted(known)}")
        if "endpoints" not in spec:
            raise ValueError("an outage needs 'endpoints', e.g. 'timeseries.get_range', a list of them, or '*'")
        spec = dict(spec)
        return self.outage(spec.pop("endpoints"), **spec)

    def outages(self) -> list[dict[str, Any]]:
        """Outages not yet over, with whether each is active and its seconds left."""
        now = self.clock()
        with self._lock:
            self._outages = [o for o in self._outages if o.end > now]
            return [o.as_dict(now) for o in self._outages]

    def clear_outages(self) -> None:
        with self._lock:
            self._outages.clear()

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

    def reset(self, endpoint: str, *, times: int = 1, match: dict[str, Any] | None = None) -> Fault:
        """Reset the connection (TCP RST) before answering."""
        return self.add(endpoint, "reset", times=times, match=match)

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
        """The failure this call meets: an active outage's, else one use (consumed) of the first
        matching fault; None when there is none."""
        now = self.clock()
        with self._lock:
            for o in self._outages:
                if o.active(now) and o.matches(endpoint, params):
                    o.hits += 1
                    return o.fault()
            for fault in self._faults:
                if fault.matches(endpoint, params):
                    fault.times -= 1
                    if fault.times == 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def clear(self) -> None:
        """Disarm every fault and outage."""
        with self._lock:
            self._faults.clear()
            self._outages.clear()

    def pending(self) -> list[dict[str, Any]]:
        """Armed faults with their remaining uses."""
        with self._lock:
            return [asdict(f) for f in self._faults]
