"""Parsing user-given times: dates and ISO-8601 timestamps, always to aware UTC datetimes.

Every time hdi accepts lies in [:data:`MIN_TIME`, :data:`MAX_TIME`]: DBN timestamps are
nanoseconds since 1970 (unsigned), and the stores and Polars hold nanosecond timestamps, which end
in April 2262. A time outside is refused before any work, naming the value and the range.
"""

from __future__ import annotations

import datetime as dt

from hdi.errors import ConfigError, HdiError, beyond_limit

UTC = dt.UTC
MIN_TIME = dt.datetime(1970, 1, 1, tzinfo=UTC)
MAX_TIME = dt.datetime(2262, 1, 1, tzinfo=UTC)
TIME_RANGE = f"a time from {MIN_TIME.date().isoformat()} to {MAX_TIME.date().isoformat()} (UTC)"
_EXAMPLES = "e.g. 2024-01-31 or 2024-01-31T14:30:00Z"


def in_range(value: dt.datetime) -> bool:
    """Whether an aware UTC time lies in [MIN_TIME, MAX_TIME]."""
    return MIN_TIME <= value <= MAX_TIME


def to_utc(value: dt.datetime) -> dt.datetime | None:
    """An aware UTC datetime (naive: taken as UTC); None when the UTC time falls outside what
    Python can represent (year 1 or 9999 with an offset)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        return None


def parse_time(value: object, name: str, *, error: type[HdiError] = ConfigError) -> dt.datetime:
    """A date, datetime or ISO-8601 string -> aware UTC datetime (a date means its 00:00 UTC).

    Naive datetimes and strings without an offset are taken as UTC.

    Raises:
        error: the value is not a date or timestamp; the message names ``name`` and the value.
            Exit code 2 (:func:`~hdi.errors.beyond_limit`) for a time outside [MIN_TIME, MAX_TIME].
    """
    out: dt.datetime | None = None
    if isinstance(value, dt.datetime):
        out = value
    elif isinstance(value, dt.date):
        out = dt.datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        text = value.strip()
        try:
            if len(text) == 10:
                d = dt.date.fromisoformat(text)
                out = dt.datetime(d.year, d.month, d.day)
            else:
                out = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            out = None
    if out is None:
        raise error(f"{name} '{value}' is not a date or ISO-8601 timestamp ({_EXAMPLES})")
    utc = to_utc(out)
    if utc is None or not in_range(utc):
        raise beyond_limit(error(f"{name} '{value}' is outside the times hdi can store; allowed: {TIME_RANGE}"))
    return utc


def parse_range(start: object, end: object, *, error: type[HdiError] = ConfigError,
                names: tuple[str, str] = ("start", "end")) -> tuple[dt.datetime, dt.datetime]:
    """Parse [start, end) and check start < end."""
    s, e = parse_time(start, names[0], error=error), parse_time(end, names[1], error=error)
    if s >= e:
        raise error(f"{names[0]} {s.isoformat()} is not before {names[1]} {e.isoformat()} "
                    f"({names[1]} is exclusive)")
    return s, e
