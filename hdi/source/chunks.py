"""Download requests and how a large pull is cut into them.

A :class:`Request` is one ``timeseries.get_range`` call: a dataset, a schema, a symbology type, a
few symbols and a UTC time range (end exclusive). Its :attr:`Request.key` names the chunk in the
ingest ledger and the file in the raw cache.

:func:`plan_chunks` splits a pull into requests along aligned calendar periods and symbol groups.
Every boundary between chunks is a UTC midnight, so bars derived later (5m, 15m from 1m) never
straddle two chunks.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from hdi._timeutil import as_utc, iso
from hdi.errors import ConfigError, allowed_list, did_you_mean

PERIODS = ("day", "week", "month", "year", "<N>d")
_EPOCH = date(1970, 1, 1)
_NDAYS = re.compile(r"^(\d+)d$")


def _utc(value: datetime | date, name: str) -> datetime:
    if not isinstance(value, datetime):
        if isinstance(value, date):
            return as_utc(value)
        raise ConfigError(f"request {name} must be a datetime or a date, got {type(value).__name__} {value!r}")
    return as_utc(value)


@dataclass(frozen=True)
class Request:
    """One Databento ``get_range`` request. Times are UTC (naive values are taken as UTC), end exclusive.

    Raises:
        ConfigError: empty symbols, or ``start >= end``.
    """

    dataset: str
    schema: str
    stype_in: str
    symbols: tuple[str, ...]
    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        symbols = (self.symbols,) if isinstance(self.symbols, str) else tuple(self.symbols)
        object.__setattr__(self, "symbols", tuple(str(s) for s in symbols))
        object.__setattr__(self, "start", _utc(self.start, "start"))
        object.__setattr__(self, "end", _utc(self.end, "end"))
        if not self.symbols:
            raise ConfigError(f"request for {self.dataset} {self.schema} names no symbols; give at least one")
        if self.start >= self.end:
            raise ConfigError(f"request start {iso(self.start)} is not before end {iso(self.end)} "
                              f"({self.dataset} {self.schema} {','.join(self.symbols)})")

    @property
    def key(self) -> str:
        """Stable 16-hex-digit id of the request (sha256 of its fields): chunk id and cache file name."""
        text = "|".join((self.dataset, self.schema, self.stype_in, ",".join(self.symbols), iso(self.start),
                         iso(self.end)))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def describe(self) -> str:
        """One line for messages: ``GLBX.MDP3 ohlcv-1d CL.c.0,ES.c.0 [2024-01-01T00:00:00Z, 2024-02-01T00:00:00Z)``."""
        syms = ",".join(self.symbols[:5]) + (f" (+{len(self.symbols) - 5} more)" if len(self.symbols) > 5 else "")
        return f"{self.dataset} {self.schema} {syms} [{iso(self.start)}, {iso(self.end)})"


def _next_boundary(d: date, period: str) -> date:
    """The first period boundary strictly after date ``d``."""
    if period == "day":
        return d + timedelta(days=1)
    if period == "week":  # Monday-aligned
        return d + timedelta(days=7 - d.weekday())
    if period == "month":
        return date(d.year + 1, 1, 1) if d.month == 12 else date(d.year, d.month + 1, 1)
    if period == "year":
        return date(d.year + 1, 1, 1)
    m = _NDAYS.match(period)
    assert m is not None, period  # _check_period admitted only day, week, month, year and Nd
    n = int(m[1])
    offset = (d - _EPOCH).days
    return _EPOCH + timedelta(days=(offset // n + 1) * n)


def _check_period(period: str) -> str:
    p = period.strip().lower()
    if p in ("day", "week", "month", "year"):
        return p
    m = _NDAYS.match(p)
    if m and int(m[1]) >= 1:
        return f"{int(m[1])}d"
    raise ConfigError(f"unknown chunk period '{period}'{did_you_mean(period, PERIODS[:4])}; "
                      f"allowed: {allowed_list(PERIODS)} (e.g. 7d: 7-day blocks aligned to 1970-01-01)")


def plan_chunks(dataset: str, schema: str, stype_in: str, symbols: list[str] | tuple[str, ...],
                start: datetime | date, end: datetime | date, *, period: str, max_symbols: int) -> list[Request]:
    """Split a pull into requests: aligned calendar periods clipped to ``[start, end)``, times symbol groups.

    Periods are ``day``, ``week`` (Monday-aligned), ``month``, ``year`` or ``Nd`` (N-day blocks aligned
    to 1970-01-01). Symbols keep their order (duplicates dropped) and go in groups of at most
    ``max_symbols``. Requests come out in time order, symbol groups within a period in order.

    Raises:
        ConfigError: unknown period, ``max_symbols < 1``, no symbols, or ``start >= end``.

    Example:
        >>> [r.start.date().isoformat() for r in plan_chunks("GLBX.MDP3", "ohlcv-1d", "continuous",
        ...  ["CL.c.0"], date(2024, 1, 30), date(2024, 3, 2), period="month", max_symbols=5)]
        ['2024-01-30', '2024-02-01', '2024-03-01']
    """
    p = _check_period(period)
    if max_symbols < 1:
        raise ConfigError(f"max_symbols must be at least 1, got {max_symbols}")
    syms = list(dict.fromkeys(str(s) for s in symbols))
    if not syms:
        raise ConfigError(f"no symbols to fetch for {dataset} {schema}; give at least one")
    t0, t1 = _utc(start, "start"), _utc(end, "end")
    if t0 >= t1:
        raise ConfigError(f"start {iso(t0)} is not before end {iso(t1)} for {dataset} {schema}")
    groups = [tuple(syms[i:i + max_symbols]) for i in range(0, len(syms), max_symbols)]
    out: list[Request] = []
    lo = t0
    while lo < t1:
        b = _next_boundary(lo.date(), p)
        hi = min(t1, datetime(b.year, b.month, b.day, tzinfo=UTC))
        out.extend(Request(dataset, schema, stype_in, g, lo, hi) for g in groups)
        lo = hi
    return out
