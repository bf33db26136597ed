"""Times in one place: parsing (dates, ISO-8601 timestamps) to aware UTC datetimes, formatting,
and bar arithmetic (bar lengths, flooring to a bar or a UTC midnight).

Every time hdi accepts lies in [:data:`MIN_TIME`, :data:`MAX_TIME`]: DBN timestamps are
nanoseconds since 1970 (unsigned), and the stores and Polars hold nanosecond timestamps, which end
in April 2262. A time outside is refused before any work, naming the value and the range.
"""

from __future__ import annotations

import datetime as dt
import re

from hdi.errors import ConfigError, HdiError, beyond_limit

UTC = dt.UTC
NS_PER_DAY = 86_400 * 10**9
MIN_TIME = dt.datetime(1970, 1, 1, tzinfo=UTC)
MAX_TIME = dt.datetime(2262, 1, 1, tzinfo=UTC)
TIME_RANGE = f"a time from {MIN_TIME.date().isoformat()} to {MAX_TIME.date().isoformat()} (UTC)"
_EXAMPLES = "e.g. 2024-01-31 or 2024-01-31T14:30:00Z"


def as_utc(value: dt.datetime | dt.date) -> dt.datetime:
    """An aware UTC datetime: a naive datetime is taken as UTC, a date is its 00:00 UTC."""
    if not isinstance(value, dt.datetime):
        return dt.datetime(value.year, value.month, value.day, tzinfo=UTC)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def parse_iso(text: str) -> dt.datetime:
    """An ISO-8601 timestamp (``Z`` or an offset; none means UTC; nanosecond digits are cut to
    microseconds, as Databento writes them: ``2010-06-06T00:00:00.000000000Z``) -> aware UTC.

    Raises:
        ValueError: not an ISO-8601 timestamp.
    """
    s = text.strip().replace("Z", "+00:00")
    if "." in s:
        head, rest = s.split(".", 1)
        digits = "".join(ch for ch in rest if ch.isdigit())
        s = f"{head}.{digits[:6].ljust(6, '0')}{rest[len(digits):]}"
    return as_utc(dt.datetime.fromisoformat(s))


def iso(value: dt.datetime) -> str:
    """``2024-01-02T00:00:00Z`` (microseconds only when present)."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


_EVERY = re.compile(r"^([1-9][0-9]*)(s|m|h|d)$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def every_seconds(text: object) -> int | None:
    """Seconds in a bar interval such as 5m; None unless it is <N>s|m|h|d and divides a day."""
    m = _EVERY.match(text) if isinstance(text, str) else None
    if not m:
        return None
    secs = int(m[1]) * _UNIT_S[m[2]]
    return secs if 86400 % secs == 0 else None


def bar_name(seconds: int) -> str:
    """A bar length as Databento names it: 300 -> ``5m``, 86400 -> ``1d``."""
    for unit, n in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % n == 0:
            return f"{seconds // n}{unit}"
    return f"{seconds}s"


def floor_to(t: dt.datetime, seconds: int) -> dt.datetime:
    """``t`` down to a multiple of ``seconds`` since 1970-01-01 UTC (a bar boundary)."""
    return MIN_TIME + dt.timedelta(seconds=int((t - MIN_TIME).total_seconds()) // seconds * seconds)


def midnight(t: dt.datetime) -> dt.datetime:
    """``t`` down to its UTC midnight."""
    return t.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


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
