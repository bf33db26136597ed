"""A read in one SQL statement: symbol resolution, row selection and raw-symbol labelling together.

``read_*`` (:mod:`hdi._query`) resolves symbols, selects rows and labels each row's contract in
several steps (:mod:`hdi._symbols`, :meth:`hdi.store.base.Store.select`, :mod:`hdi._rawsym`): four
round trips to the database and some twenty Polars passes, 5-10x the raw SQL of the same rows.
This module answers the common case with one statement and two Polars passes, and says ``None``
whenever its answer could differ from the step-by-step one, which then runs instead. It answers
when every requested symbol selected at least one row through the symbology table (or is an
instrument id), and no row needs the stored definitions for its raw symbol (a row with no
``raw_symbol`` interval that day, of an instrument a stored definition names). Empty results,
symbols known only from definitions, unknown symbols (their errors) and ``tz="exchange"`` (whose
zone depends on every selected dataset, rows or not) take the step-by-step path, and so do the lean
tick tables (migration 8, :mod:`hdi.store.timescale_lean`): their views compute the time columns
from the ns integers, which a filter on the view could not use, while the store's select filters the
hypertable's ns columns.

What the statement keeps exact, step for step:

- windows: a symbology interval covers the UTC dates [start_date, end_date); a row is in it when the
  UTC date of its time is (the same as comparing its time with the midnights, the clip to [start,
  end) being the range filter); overlapping windows of one symbol select a row once (``EXISTS``);
- ``raw_symbol``: the ``stype_in = 'raw_symbol'`` interval of the row's dataset, instrument and UTC
  day that started last;
- order: symbol (byte order, as Polars sorts strings: ``COLLATE "C"`` in PostgreSQL), time (by its
  exact ``*_ns`` column where the table has one: PostgreSQL keeps microseconds), instrument,
  ``ts_recv_ns``, ``rec_ordinal``;
- prices: ``prices="float"`` casts NUMERIC to float8 in PostgreSQL: both it and Polars' Decimal to
  Float64 give the correctly rounded double of the decimal (checked on 7.8 M random values of
  DECIMAL(19,9) and DECIMAL(28,9)), so the floats are the step-by-step path's, bit for bit;
  ``"decimal"`` fetches them exactly as the store's select does (tests/test_readsql.py and
  tests/test_readsql_literals.py compare both paths).

Speed (issue 17.4): the statement goes to the server as one round trip with its values written in
as SQL literals (:class:`Literals`; a value it cannot write exactly makes it step aside). ADBC runs
a statement with bound parameters as several round trips (1.3 ms for a 21-row read that takes
0.75 ms with literals, measured on the benchmark's store). Its columns come back in the order and
types ``read_*`` returns, but for timestamps (PostgreSQL keeps microseconds: an ``*_ns`` column or
the ``timestamptz`` becomes ``Datetime("ns", "UTC")``), so the frame is finished with Series-level
casts (a few microseconds each) rather than a Polars query (60-300 microseconds per pass).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

from hdi._symbols import is_instrument_id
from hdi._tables import SYMBOLOGY, ColType, Table
from hdi.store.base import Store
from hdi.store.schema import ident

# the stores it answers for: TimescaleDB. DuckDB plans a statement this size in ~10 ms (measured:
# 4-5x the few simple statements of the steps), and the lake store reads through pyiceberg scans
KINDS = ("timescale",)

_INT64 = (-(2**63), 2**63 - 1)
_NS_UTC = pl.Datetime("ns", "UTC")


class Unwritable(Exception):
    """A value :class:`Literals` cannot write as an exact SQL literal: the read steps aside."""


class Literals:
    """The values of one statement written into its SQL: ``p(value)`` returns the literal.

    Only what it can write exactly: None, an int in int64, an ASCII str (an escape string literal
    ``E'...'``: backslashes and quotes doubled, so it means the same whatever
    ``standard_conforming_strings`` says; a NUL, which PostgreSQL text cannot hold, is refused, and
    so is any non-ASCII character: in a multi-byte client encoding such as SJIS or BIG5 a
    backslash byte can end a character, so only ASCII reads the same in every encoding), an
    aware datetime (``TIMESTAMPTZ`` to the microsecond, as a bound parameter carries it) and a date.
    Anything else raises :class:`Unwritable`.
    """

    def __call__(self, value: Any) -> str:
        if value is None:
            return "NULL"
        if isinstance(value, bool):
            raise Unwritable(value)
        if isinstance(value, int):
            if not _INT64[0] <= value <= _INT64[1]:
                raise Unwritable(value)
            return str(value)
        if isinstance(value, str):
            if "\x00" in value or not value.isascii():
                raise Unwritable(value)
            return "E'" + value.replace("\\", "\\\\").replace("'", "''") + "'"
        if isinstance(value, dt.datetime):
            if value.tzinfo is None or value.utcoffset() is None:
                raise Unwritable(value)
            return f"CAST('{value.astimezone(dt.UTC).isoformat()}' AS timestamptz)"
        if isinstance(value, dt.date):
            return f"CAST('{value.isoformat()}' AS date)"
        raise Unwritable(value)


def _equals_ok(t: Table, equals: dict[str, Any] | None) -> bool:
    """Whether every ``equals`` filter names a column of ``t`` and holds a value of its kind (text
    for text, an int for an integer column); else the steps answer (and name what is wrong)."""
    ints = (ColType.I16, ColType.I32, ColType.I64)
    for c, v in (equals or {}).items():
        if c not in t.names:
            return False
        ct = t.column(c).type
        if not ((ct is ColType.TEXT and isinstance(v, str))
                or (ct in ints and isinstance(v, int) and not isinstance(v, bool))):
            return False
    return True


@dataclass(frozen=True)
class _Shape:
    """What a statement on one table takes from the table alone, built once per (table, prices)."""

    table: Table
    columns: str  # the table's columns as the statement selects them
    targets: tuple[pl.DataType, ...]  # each column's dtype in what read_* returns
    raw: str | None  # the raw-symbol lookup, None when the table has its own
    named: str  # the row's instrument is named by a stored definition
    tc: str
    day: str
    order: str


_SHAPES: dict[tuple[str, str, str], _Shape] = {}


def _shape(st: Store, t: Table, prices: str) -> _Shape:
    key = (st.kind, t.name, prices)
    got = _SHAPES.get(key)
    if got is not None and got.table is t:
        return got
    floats = prices == "float"
    tc = f"t.{ident(t.time_column)}"
    day = f"CAST({tc} AT TIME ZONE 'UTC' AS DATE)"
    ns_of = dict(t.ns_columns)
    cols, targets = [], []
    for col in t.columns:
        c, ct = col.name, col.type
        if c in ns_of:  # the exact ns integer, a Datetime("ns", "UTC") in _finish
            cols.append(f"t.{ident(ns_of[c])} AS {ident(c)}")
        elif ct in (ColType.PRICE, ColType.STAT) and floats:
            cols.append(f"CAST(t.{ident(c)} AS float8) AS {ident(c)}")
        elif ct is ColType.PRICE:
            cols.append(st._price_sql(c).replace(ident(c), f"t.{ident(c)}", 1))
        else:
            cols.append(f"t.{ident(c)}")
        targets.append(pl.Float64() if floats and ct in (ColType.PRICE, ColType.STAT) else ct.polars)
    raw = None if "raw_symbol" in t.names else (
        f"(SELECT r.symbol FROM {ident(SYMBOLOGY.name)} r WHERE r.stype_in = 'raw_symbol' "
        f"AND r.dataset = t.dataset AND r.instrument_id = t.instrument_id AND r.start_date <= {day} "
        f"AND {day} < r.end_date ORDER BY r.start_date DESC, r.symbol DESC LIMIT 1) AS raw_symbol")
    named = (f"EXISTS (SELECT 1 FROM {ident('instruments')} d WHERE d.dataset = t.dataset AND "
             "d.instrument_id = t.instrument_id AND d.raw_symbol IS NOT NULL) AS _def")
    order = ", ".join(['s.symbol COLLATE "C"', f"t.{ident(ns_of.get(t.time_column, t.time_column))}",
                       "t.instrument_id"] + [f"t.{c}" for c in ("ts_recv_ns", "rec_ordinal") if c in t.names])
    got = _SHAPES[key] = _Shape(t, ", ".join(cols), tuple(targets), raw, named, tc, day, order)
    return got


def statement(st: Store, t: Table, symbols: Sequence[str], start: dt.datetime, end: dt.datetime,
              dataset: str | None, equals: dict[str, Any] | None, prices: str = "decimal") -> str:
    """The one statement, its values written in (raises :class:`Unwritable`): ``symbol``,
    ``raw_symbol`` (unless the table has its own), then the table's columns in the order ``read_*``
    returns them (a timestamp with an exact ``*_ns`` companion as that integer; prices as float8
    for ``prices="float"``, else as :meth:`Store.select` fetches them), then ``_def`` (the row's
    instrument has a stored definition naming it) when the table has no raw symbol of its own."""
    p = Literals()
    sh = _shape(st, t, prices)
    day = sh.day
    names = [s for s in symbols if not is_instrument_id(s)]
    ids = [s for s in symbols if is_instrument_id(s)]
    parts = []
    if names:
        match = f"symbol IN ({', '.join(p(n) for n in names)})"
        if dataset is not None:
            match += f" AND dataset = {p(dataset)}"
        parts.append(f"SELECT symbol, dataset, instrument_id, start_date, end_date FROM {ident(SYMBOLOGY.name)} "
                     f"WHERE {match}")
    for s in ids:
        parts.append(f"SELECT CAST({p(s)} AS TEXT) AS symbol, CAST({p(dataset)} AS TEXT) AS dataset, "
                     f"CAST({p(int(s))} AS BIGINT) AS instrument_id, CAST(NULL AS DATE) AS start_date, "
                     "CAST(NULL AS DATE) AS end_date")
    select = ["s.symbol AS symbol"]
    if sh.raw is not None:
        select.append(sh.raw)
    select.append(sh.columns)
    if sh.raw is not None and st.has_table("instruments"):
        select.append(sh.named)
    where = [f"{sh.tc} >= {p(start)}", f"{sh.tc} < {p(end)}"]
    where += [f"t.{ident(c)} = {p(v)}" for c, v in (equals or {}).items()]
    where.append(f"EXISTS (SELECT 1 FROM w WHERE w.symbol = s.symbol AND w.instrument_id = s.instrument_id "
                 f"AND (w.dataset = s.dataset OR (w.dataset IS NULL AND s.dataset IS NULL)) "
                 f"AND (w.start_date IS NULL OR {day} >= w.start_date) AND (w.end_date IS NULL OR {day} < w.end_date))")
    return (f"WITH w AS ({' UNION ALL '.join(parts)}), s AS (SELECT DISTINCT symbol, dataset, instrument_id FROM w) "
            f"SELECT {', '.join(select)} FROM {ident(t.name)} t JOIN s ON t.instrument_id = s.instrument_id "
            f"AND (s.dataset IS NULL OR t.dataset = s.dataset) WHERE {' AND '.join(where)} ORDER BY {sh.order}")


def read(st: Store, t: Table, symbols: Sequence[str], start: dt.datetime, end: dt.datetime,
         dataset: str | None, equals: dict[str, Any] | None, prices: str) -> pl.DataFrame | None:
    """The rows ``read_*`` returns (in UTC), or None when this one statement cannot be sure of them.
    Call inside ``st.session()``."""
    if st.kind not in KINDS or not st.has_table(t.name) or (
            any(not is_instrument_id(s) for s in symbols) and not st.has_table(SYMBOLOGY.name)):
        return None
    from hdi.store import timescale_lean as lean
    from hdi.store.timescale import TimescaleStore

    if not isinstance(st, TimescaleStore) or (t.name in lean.LAYOUTS and st.has_table(lean.LAYOUTS[t.name].physical)):
        return None  # a lean tick table's view computes its times: its store select reads the ns columns
    if not _equals_ok(t, equals):
        return None
    try:
        sql = statement(st, t, symbols, start, end, dataset, equals, prices)
    except Unwritable:
        return None  # a value no literal carries exactly: the steps bind it
    got = st._fetch_literal(sql)
    if got.height == 0:
        return None
    if "_def" in got.columns:
        named = got.drop_in_place("_def")
        if named.any() and (got.get_column("raw_symbol").is_null() & named).any():
            return None  # a row's contract is named by a stored definition: the as-of join decides
    if got.get_column("symbol").n_unique() < len(symbols):
        return None  # a symbol selected no row: resolve() decides (an error, definitions, or no rows)
    return _finish(st, got, t, prices)


def _finish(st: Store, got: pl.DataFrame, t: Table, prices: str) -> pl.DataFrame:
    """The fetched frame in ``read_*``'s dtypes, column by column (Series casts, no Polars query):
    timestamps (an ``*_ns`` integer, or a ``timestamptz``) to ``Datetime("ns", "UTC")``; for
    ``prices="decimal"`` prices as the store's select rebuilds them; anything else PostgreSQL
    returns in another type cast to the table's."""
    if prices != "float":
        got = st._fix_prices(got, t)
    targets = _shape(st, t, prices).targets
    dtypes = got.dtypes
    first = len(dtypes) - len(targets)
    for i, target in enumerate(targets, start=first):
        dtype = dtypes[i]
        if dtype == target:
            continue
        s = got.to_series(i)
        if isinstance(dtype, pl.Datetime) and dtype.time_zone != "UTC":
            s = s.dt.replace_time_zone("UTC") if dtype.time_zone is None else s.dt.convert_time_zone("UTC")
        got.replace_column(i, s.cast(target))
    return got
