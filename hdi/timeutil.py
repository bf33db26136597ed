"""Parsing user-given times: dates and ISO-8601 timestamps, always to aware UTC datetimes."""

from __future__ import annotations

import datetime as dt

from hdi.errors import ConfigError, HdiError

UTC = dt.UTC
_EXAMPLES = "e.g. 2024-01-31 or 2024-01-31T14:30:00Z"


def parse_time(value: object, name: str, *, error: type[HdiError] = ConfigError) -> dt.datetime:
    """A date, datetime or ISO-8601 string -> aware UTC datetime (a date means its 00:00 UTC).

    Naive datetimes and strings without an offset are taken as UTC.

    Raises:
        error: the value is not a date or timestamp; the message names ``name`` and the value.
    """
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, str):
        text = value.strip()
        try:
            if len(text) == 10:
                return parse_time(dt.date.fromisoformat(text), name, error=error)
            return parse_time(dt.datetime.fromisoformat(text.replace("Z", "+00:00")), name, error=error)
        except ValueError:
            pass
    raise error(f"{name} '{value}' is not a date or ISO-8601 timestamp ({_EXAMPLES})")


def parse_range(start: object, end: object, *, error: type[HdiError] = ConfigError,
                names: tuple[str, str] = ("start", "end")) -> tuple[dt.datetime, dt.datetime]:
    """Parse [start, end) and check start < end."""
    s, e = parse_time(start, names[0], error=error), parse_time(end, names[1], error=error)
    if s >= e:
        raise error(f"{names[0]} {s.isoformat()} is not before {names[1]} {e.isoformat()} "
                    f"({names[1]} is exclusive)")
    return s, e
