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
- prices: fetched as each store fetches them (exact), then Float64 exactly as the step-by-step path
  casts them (tests/test_readsql.py compares both paths on every reader).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import polars as pl

from hdi._symbols import is_instrument_id
from hdi._tables import SYMBOLOGY, ColType, Table
from hdi.store.base import Store
from hdi.store.frames import normalise_exprs
from hdi.store.schema import ident
from hdi.store.sql import Params

# the stores it answers for: TimescaleDB. DuckDB plans a statement this size in ~10 ms (measured:
# 4-5x the few simple statements of the steps), and the lake store reads through pyiceberg scans
KINDS = ("timescale",)


def statement(st: Store, t: Table, symbols: Sequence[str], start: dt.datetime, end: dt.datetime,
              dataset: str | None, equals: dict[str, Any] | None) -> tuple[str, list[Any]]:
    """The one statement: ``symbol``, ``raw_symbol`` (unless the table has its own), ``_def`` (the
    row's instrument has a stored definition naming it), then the table's columns as
    :meth:`Store.select` fetches them, in the order ``read_*`` returns them."""
    p = Params()
    pg = st.kind == "timescale"
    tc = f"t.{ident(t.time_column)}"
    day = f"CAST({tc} AT TIME ZONE 'UTC' AS DATE)"
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
    windows = " UNION ALL ".join(parts)
    lead = ["s.symbol AS symbol"]
    own_raw = "raw_symbol" in t.names
    if not own_raw:
        lead.append(
            f"(SELECT r.symbol FROM {ident(SYMBOLOGY.name)} r WHERE r.stype_in = {p('raw_symbol')} "
            f"AND r.dataset = t.dataset AND r.instrument_id = t.instrument_id AND r.start_date <= {day} "
            f"AND {day} < r.end_date ORDER BY r.start_date DESC, r.symbol DESC LIMIT 1) AS raw_symbol")
        if st.has_table("instruments"):
            lead.append(f"EXISTS (SELECT 1 FROM {ident('instruments')} d WHERE d.dataset = t.dataset AND "
                        "d.instrument_id = t.instrument_id AND d.raw_symbol IS NOT NULL) AS _def")
    ns_of = dict(t.ns_columns)
    fetch = t.names + [ns for ts, ns in t.ns_columns if ns not in t.names]
    cols = [st._price_sql(c).replace(ident(c), f"t.{ident(c)}", 1) if t.column(c).type is ColType.PRICE
            else f"t.{ident(c)}" for c in fetch]
    where = [f"{tc} >= {p(start)}", f"{tc} < {p(end)}"]
    where += [f"t.{ident(c)} = {p(v)}" for c, v in (equals or {}).items()]
    where.append(f"EXISTS (SELECT 1 FROM w WHERE w.symbol = s.symbol AND w.instrument_id = s.instrument_id "
                 f"AND (w.dataset = s.dataset OR (w.dataset IS NULL AND s.dataset IS NULL)) "
                 f"AND (w.start_date IS NULL OR {day} >= w.start_date) AND (w.end_date IS NULL OR {day} < w.end_date))")
    order = ['s.symbol COLLATE "C"' if pg else "s.symbol", f"t.{ident(ns_of.get(t.time_column, t.time_column))}",
             "t.instrument_id"] + [f"t.{c}" for c in ("ts_recv_ns", "rec_ordinal") if c in t.names]
    sql = (f"WITH w AS ({windows}), s AS (SELECT DISTINCT symbol, dataset, instrument_id FROM w) "
           f"SELECT {', '.join(lead + cols)} FROM {ident(t.name)} t JOIN s ON t.instrument_id = s.instrument_id "
           f"AND (s.dataset IS NULL OR t.dataset = s.dataset) WHERE {' AND '.join(where)} ORDER BY {', '.join(order)}")
    return sql, p.values


def read(st: Store, t: Table, symbols: Sequence[str], start: dt.datetime, end: dt.datetime,
         dataset: str | None, equals: dict[str, Any] | None, prices: str) -> pl.DataFrame | None:
    """The rows ``read_*`` returns (in UTC), or None when this one statement cannot be sure of them.
    Call inside ``st.session()``."""
    if st.kind not in KINDS or not st.has_table(t.name) or (
            any(not is_instrument_id(s) for s in symbols) and not st.has_table(SYMBOLOGY.name)):
        return None
    if st.kind == "timescale":
        from hdi.store import timescale_lean as lean

        if t.name in lean.LAYOUTS and st.has_table(lean.LAYOUTS[t.name].physical):
            return None  # a lean tick table's view computes its times: its store select reads the ns columns
    sql, params = statement(st, t, symbols, start, end, dataset, equals)
    got = st._fetch(sql, params)
    if got.height == 0:
        return None
    lead = [pl.col("symbol").cast(pl.String)]
    if "raw_symbol" not in t.names:
        if "_def" in got.columns and (got.get_column("raw_symbol").is_null() & got.get_column("_def")).any():
            return None  # a row's contract is named by a stored definition: the as-of join decides
        lead.append(pl.col("raw_symbol").cast(pl.String))
    if got.get_column("symbol").n_unique() < len(symbols):
        return None  # a symbol selected no row: resolve() decides (an error, definitions, or no rows)
    got = st._fix_prices(got, t)
    exprs = normalise_exprs(got.schema, t, t.names)
    if prices == "float":
        floats = set(t.price_columns)
        exprs = [e.cast(pl.Float64) if c in floats else e for c, e in zip(t.names, exprs, strict=True)]
    return got.select(*lead, *exprs)
