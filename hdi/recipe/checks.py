"""Value checks shared by the loader (with file:line) and by CLI overrides (without a line).

Each check returns the clean value or raises :class:`Problem`, which says what is wrong and what is
allowed; :func:`located` turns it into the one-line :class:`~hdi.errors.RecipeError`.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from typing import Any

from hdi._limits import MAX_INSTRUMENT_ID as MAX_INSTRUMENT_ID
from hdi._limits import MAX_SYMBOLS_PER_REQUEST as MAX_SYMBOLS_PER_REQUEST
from hdi._limits import SYMBOL_MAX_LEN as SYMBOL_MAX_LEN
from hdi._limits import shown as shown
from hdi._tables import DATA_TABLES, SCHEMA_TABLE, schema_hint
from hdi._timeutil import TIME_RANGE, in_range, to_utc
from hdi.errors import RecipeError, allowed_list, did_you_mean

VENDORS = ("databento",)
SCHEMAS = tuple(SCHEMA_TABLE)
STYPES_IN = ("raw_symbol", "continuous", "parent", "instrument_id")
ON_CONFLICT = ("ignore", "update")
PERIODS = ("day", "week", "month", "year", "<N>d")
TABLE_NAMES = tuple(DATA_TABLES)
# Only for "did you mean" hints; any code of the right shape is accepted.
KNOWN_DATASETS = ("GLBX.MDP3", "XNAS.ITCH", "XNYS.PILLAR", "EQUS.MINI", "EQUS.SUMMARY", "EQUS.PLUS",
                  "IFEU.IMPACT", "NDEX.IMPACT", "OPRA.PILLAR", "DBEQ.BASIC", "ARCX.PILLAR", "IEXG.TOPS")

NAME_RE = re.compile(r"^[a-z0-9_]+$")
DATASET_RE = re.compile(r"^[A-Z0-9]+\.[A-Z0-9]+$")
# Real Databento symbols: CL.c.0, ES.FUT, ESH5, ESH5-ESM5, BRK.B, "BRN FMJ0024!",
# "AAPL  250221C00250000", "UD:1V: VT 0307920987". Inner runs of spaces are allowed, nothing else blank.
SYMBOL_CHARS = "A-Z a-z 0-9 . _ - / ! : and inner spaces"
SYMBOL_RE = re.compile(r"^[A-Za-z0-9._/!:-]+(?: +[A-Za-z0-9._/!:-]+)*$")
CONTINUOUS_RE = re.compile(r"^[A-Za-z0-9]+\.[cnv]\.[0-9]+$")
PARENT_RE = re.compile(r"^[A-Za-z0-9/_ -]+\.(FUT|OPT|SPOT|MLEG)$")
PERIOD_RE = re.compile(r"^([1-9][0-9]{0,3})d$")


class Problem(Exception):
    """A bad value: ``what`` is wrong, ``allowed`` is what would be right, ``hint`` a did-you-mean.

    ``exit_code`` 2 marks a value beyond one of hdi's input limits (see :func:`hdi.errors.beyond_limit`).
    """

    def __init__(self, what: str, allowed: str, hint: str = "", *, exit_code: int = 1) -> None:
        super().__init__(what)
        self.what, self.allowed, self.hint, self.exit_code = what, allowed, hint, exit_code


def message(file: str, line: int | None, what: str, allowed: str, hint: str = "") -> str:
    """Format the one-line recipe error: ``<file>:<line>: <what>[ (did you mean 'x'?)]; allowed: <a>``."""
    where = f"{file}:{line}" if line else file
    return f"{where}: {what}{hint}; allowed: {allowed}"


def located(file: str, line: int | None, problem: Problem) -> RecipeError:
    """Turn a :class:`Problem` into a RecipeError at ``file:line``."""
    err = RecipeError(message(file, line, problem.what, problem.allowed, problem.hint))
    err.exit_code = problem.exit_code
    return err


def type_name(value: Any) -> str:
    """How a YAML value reads to a user: 'a string', 'a list', 'null', ..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"a boolean ({'true' if value else 'false'})"
    if isinstance(value, str):
        return f"a string '{value}'"
    if isinstance(value, int):
        return f"an integer ({value})"
    if isinstance(value, float):
        return f"a number ({value})"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dt.datetime | dt.date):
        return f"a date ({value.isoformat()})"
    return type(value).__name__


def choice(value: Any, allowed: Iterable[str], what: str) -> str:
    """``value`` must be one of ``allowed`` (strings)."""
    allowed = tuple(allowed)
    if not isinstance(value, str) or value not in allowed:
        shown = f"'{value}'" if isinstance(value, str) else type_name(value)
        hint = "" if not isinstance(value, str) else schema_hint(value, allowed) if what == "schema" \
            else did_you_mean(value, allowed)
        raise Problem(f"unknown {what} {shown}", allowed_list(allowed), hint)
    return value


def when(value: Any, what: str) -> dt.datetime:
    """A date or ISO-8601 timestamp as an aware UTC datetime; naive values are UTC."""
    allowed = "a date (2024-01-01) or an ISO-8601 timestamp (2024-01-01T14:30:00Z), UTC"
    if isinstance(value, dt.datetime):
        out = value
    elif isinstance(value, dt.date):
        out = dt.datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        try:
            out = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            raise Problem(f"{what} '{value}' is not a date or timestamp", allowed) from None
    else:
        raise Problem(f"{what} must be a date, got {type_name(value)}", allowed)
    utc = to_utc(out)
    if utc is None or not in_range(utc):
        shown = value if isinstance(value, str) else out.isoformat()
        raise Problem(f"{what} '{shown}' is outside the times hdi can store", TIME_RANGE, exit_code=2)
    return utc


def show_when(value: dt.datetime) -> str:
    """A UTC datetime as the user wrote it: ``2024-01-01`` at midnight, else ISO-8601 with Z."""
    if value.time() == dt.time(0):
        return value.date().isoformat()
    return value.replace(tzinfo=None).isoformat() + "Z"


def date_range(start: dt.datetime, end: dt.datetime) -> None:
    """``start`` must be strictly before ``end`` (end is exclusive)."""
    if start >= end:
        raise Problem(f"start {show_when(start)} is not before end {show_when(end)} (end is exclusive)",
                      "start < end")


def period(value: Any) -> str:
    """A chunk period: day, week, month, year or <N>d."""
    if isinstance(value, str) and (value in PERIODS[:4] or PERIOD_RE.match(value)):
        return value
    shown = f"'{value}'" if isinstance(value, str) else type_name(value)
    hint = did_you_mean(value, PERIODS[:4]) if isinstance(value, str) else ""
    raise Problem(f"unknown chunk period {shown}", allowed_list(PERIODS) + " (N = 1..9999)", hint)


def dataset(value: Any) -> str:
    """A Databento dataset code such as GLBX.MDP3."""
    if isinstance(value, str) and DATASET_RE.match(value):
        return value
    shown = f"'{value}'" if isinstance(value, str) else type_name(value)
    hint = did_you_mean(value.upper(), KNOWN_DATASETS) if isinstance(value, str) else ""
    raise Problem(f"bad dataset {shown}", "a Databento dataset code VENUE.FEED in capitals, "
                  "e.g. GLBX.MDP3, EQUS.MINI", hint)


def symbol(value: Any, stype_in: str) -> str:
    """One symbol, checked against the character whitelist and the form its stype_in implies."""
    if not isinstance(value, str):
        raise Problem(f"symbol must be a string, got {type_name(value)} (quote it in YAML)",
                      "a string such as CL.c.0, ESH5 or SPY")
    if len(value) > SYMBOL_MAX_LEN:
        raise Problem(f"symbol {shown(value)} is {len(value):,} characters long",
                      f"1-{SYMBOL_MAX_LEN} characters ({SYMBOL_CHARS})", exit_code=2)
    if not value or not SYMBOL_RE.match(value):
        if not value:
            why = "is empty"
        elif value != value.strip():
            why = "has leading or trailing whitespace"
        else:
            bad = next((ch for ch in value if not re.match(r"[A-Za-z0-9._/!: -]", ch)), "?")
            why = f"has a character not allowed ({bad!r})"
        raise Problem(f"symbol {value!r} {why}", f"{SYMBOL_CHARS}, 1-{SYMBOL_MAX_LEN} characters, "
                      "no leading or trailing space")
    forms = {
        "continuous": (CONTINUOUS_RE, "ROOT.c.N, ROOT.n.N or ROOT.v.N, e.g. CL.c.0"),
        "parent": (PARENT_RE, "ROOT.FUT, ROOT.OPT, ROOT.SPOT or ROOT.MLEG, e.g. ES.FUT"),
        "instrument_id": (re.compile(r"^[0-9]{1,10}$"), "a numeric instrument id, e.g. 5482"),
    }
    if stype_in in forms:
        rx, allowed = forms[stype_in]
        if not rx.match(value):
            raise Problem(f"symbol '{value}' is not a {stype_in} symbol", allowed)
        if stype_in == "instrument_id" and int(value) > MAX_INSTRUMENT_ID:
            raise Problem(f"instrument id {value} is above {MAX_INSTRUMENT_ID}",
                          f"a numeric instrument id from 0 to {MAX_INSTRUMENT_ID} (DBN's uint32)", exit_code=2)
    elif stype_in == "raw_symbol":
        for other in ("continuous", "parent"):
            if forms[other][0].match(value):
                raise Problem(f"symbol '{value}' looks like a {other} symbol but stype_in is raw_symbol",
                              f"stype_in: {other} for {value}, or a venue symbol such as ESH5 or SPY")
    return value


def symbols(values: Any, stype_in: str) -> tuple[str, ...]:
    """A non-empty list of distinct symbols (see :func:`symbol`)."""
    if not isinstance(values, list):
        raise Problem(f"symbols must be a list, got {type_name(values)}", "a YAML list, e.g. [CL.c.0, NG.c.0]")
    if not values:
        raise Problem("symbols is an empty list", "at least one symbol, e.g. [CL.c.0]")
    too_many(len(values))
    out = tuple(symbol(v, stype_in) for v in values)
    seen: set[str] = set()
    for s in out:
        if s in seen:
            raise Problem(f"symbol '{s}' is listed twice", "each symbol once per request")
        seen.add(s)
    return out


def too_many(count: int, requests: int = 1) -> None:
    """More than MAX_SYMBOLS_PER_REQUEST symbols per request is refused (exit code 2) before any is checked."""
    if count > MAX_SYMBOLS_PER_REQUEST * requests:
        where = "in one request" if requests == 1 else f"for {requests} requests"
        raise Problem(f"{count:,} symbols {where}", f"at most {MAX_SYMBOLS_PER_REQUEST} symbols per request",
                      exit_code=2)
