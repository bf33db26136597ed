"""Bars on the exchange's trading day, built on read from stored 1m bars.

``session_bars`` gives one daily bar per (symbol, contract, trading date): the 1m bars whose start lies
in the session ``[open, close)`` of the instrument's calendar (:mod:`hdi.research.calendars`), so the
CME daily break, weekends and holidays are excluded, DST moves nothing, and Sunday evening belongs to
Monday. ``session_intraday`` gives 5m/15m/1h bars anchored at the session open (a 1h bar starts at
17:00 Chicago time, 09:30 New York for SPY), never spanning two sessions.

How it reads (measured by ``benchmarks/session_bars.py``): the store pre-aggregates the 1m bars into
buckets of the largest size that divides every session bound in the range (an hour, or 15 minutes
when a session closes at 13:45), with the first open and last close of each bucket; Polars then
assigns each bucket its trading date and folds buckets into sessions. A year of one future's 1m
bars (~340k rows) becomes ~6k-23k bucket rows, so nothing is materialised and re-ingested bars are
always reflected.

A continuous symbol is mapped by UTC day (Databento's symbology), so on a roll date the session can
hold two contracts: each gets its own row, named by ``raw_symbol``/``instrument_id``.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from typing import Any

import polars as pl

from hdi.errors import QueryError, allowed_list
from hdi.prices import fixed_to_decimal
from hdi.research.calendars import calendar_for, schedule, trading_date_expr
from hdi.store.base import Store
from hdi.tables import OHLCV

SESSIONS = ("utc", "exchange", "extended")
INTRADAY = {"5m": 5, "15m": 15, "1h": 60}
PRICES = ("open_price", "high_price", "low_price", "close_price")
UTC_NS = pl.Datetime("ns", "UTC")
_DAY = dt.timedelta(days=1)


def check_session(session: str | None) -> str:
    """The session kind (``utc`` for None); a one-line QueryError for anything else."""
    s = "utc" if session is None else str(session).strip().lower()
    if s not in SESSIONS:
        raise QueryError(f"session '{session}' is not allowed; allowed: {allowed_list(SESSIONS)}")
    return s


def trading_dates(start: object, end: object) -> tuple[dt.date, dt.date]:
    """``start``/``end`` as trading dates (a date, or the date of a timestamp); end exclusive."""
    from hdi.timeutil import parse_range

    s, e = parse_range(start, end, error=QueryError)
    d0 = s.date()
    d1 = e.date() if e.time() == dt.time(0) else e.date() + _DAY
    return d0, d1


def _schedules(sel: pl.DataFrame, d0: dt.date, d1: dt.date, extended: bool) -> dict[str, pl.DataFrame]:
    """symbol -> its calendar's sessions with trading dates in [d0, d1)."""
    out: dict[str, pl.DataFrame] = {}
    for symbol, ds in sel.select("symbol", "dataset").unique().iter_rows():
        cal = calendar_for(ds or "", symbol)
        sched = schedule(cal, d0, d1 - _DAY, extended=extended) if d1 > d0 else schedule(cal, d0, d0).clear()
        if symbol in out and not out[symbol].equals(sched):
            raise QueryError(f"symbol '{symbol}' is stored in datasets with different calendars; pass dataset=")
        out[symbol] = sched
    return out


def _bucket_minutes(scheds: Sequence[pl.DataFrame]) -> int:
    """The largest bucket (minutes, dividing 60) on which every session bound lies."""
    g = 60
    for s in scheds:
        for col in ("open", "close"):
            if s.height and (s[col].dt.second().max() or s[col].dt.nanosecond().max()):
                return 1
            for m in s[col].dt.minute().unique().to_list():
                g = math.gcd(g, int(m))
    return g


def _bucket_sql(st: Store, windows: pl.DataFrame, minutes: int) -> tuple[str, list[Any]]:
    """SQL aggregating the selected 1m bars into ``minutes`` buckets: first open, max high, min low,
    last close (as 1e-9 fixed-point integers), volume and the first bar time, per instrument."""
    params: list[Any] = []

    def p(v: Any) -> str:
        params.append(v)
        return f"${len(params)}"

    ors = []
    for ds, iid, lo, hi in windows.select("dataset", "instrument_id", "from_ts", "to_ts").iter_rows():
        parts = [f"instrument_id = {p(int(iid))}", f"bar_timestamp_utc >= {p(lo)}", f"bar_timestamp_utc < {p(hi)}"]
        if ds is not None:
            parts.append(f"dataset = {p(ds)}")
        ors.append("(" + " AND ".join(parts) + ")")
    ts = "bar_timestamp_utc"
    if st.kind == "timescale":
        first, last = f"first(open_price, {ts})", f"last(close_price, {ts})"
    else:
        first, last = f"arg_min(open_price, {ts})", f"arg_max(close_price, {ts})"

    def fx(e: str) -> str:
        return f"CAST(({e}) * 1000000000 AS BIGINT)"

    bucket = f"time_bucket(INTERVAL '{minutes} minutes', {ts})"
    sql = (f"SELECT dataset, instrument_id, {bucket} AS bucket, min({ts}) AS first_ts, {fx(first)} AS open_price, "
           f"{fx('max(high_price)')} AS high_price, {fx('min(low_price)')} AS low_price, "
           f"{fx(last)} AS close_price, CAST(sum(volume) AS BIGINT) AS volume, count(*) AS bars "
           f"FROM {OHLCV.name} WHERE granularity = {p('1m')} AND ({' OR '.join(ors)}) "
           f"GROUP BY dataset, instrument_id, {bucket}")
    return sql, params


def _buckets(st: Store, windows: pl.DataFrame, minutes: int) -> pl.DataFrame:
    schema = {"dataset": pl.String, "instrument_id": pl.Int64, "bucket": UTC_NS, "first_ts": UTC_NS,
              **dict.fromkeys(PRICES, pl.Int64), "volume": pl.Int64, "bars": pl.Int64}
    if windows.height == 0 or not st.has_table(OHLCV.name):
        return pl.DataFrame(schema=schema)
    sql, params = _bucket_sql(st, windows, minutes)
    df = st.query(sql, params)
    return df.select(pl.col(c).cast(t) for c, t in schema.items())


def _prices(df: pl.DataFrame, prices: str) -> pl.DataFrame:
    exprs = [fixed_to_decimal(pl.col(c)).alias(c) for c in PRICES]
    if prices == "float":
        exprs = [e.cast(pl.Float64) for e in exprs]
    return df.with_columns(exprs)


BAR_COLUMNS = ["symbol", "raw_symbol", "trading_date", "session_open", "session_close", "early_close", "dataset",
               "instrument_id", *PRICES, "volume"]


def session_bars(st: Store, symbols: list[str], start: object, end: object, *, dataset: str | None = None,
                 session: str = "exchange", prices: str = "float") -> pl.DataFrame:
    """Daily bars per trading date in [start, end) (trading dates) from the stored 1m bars; see the module
    docstring. Columns: :data:`BAR_COLUMNS`."""
    from hdi.rawsym import with_raw_symbols
    from hdi.symbols import resolve

    d0, d1 = trading_dates(start, end)
    extended = check_session(session) == "extended"
    lo = dt.datetime.combine(d0 - dt.timedelta(days=7), dt.time(0), dt.UTC)
    hi = dt.datetime.combine(max(d1, d0) + _DAY, dt.time(0), dt.UTC)
    sel = resolve(st, symbols, lo, hi, dataset)
    scheds = _schedules(sel, d0, d1, extended)
    windows = []
    for symbol, sched in scheds.items():
        if sched.height == 0:
            continue
        a, b = sched["open"].min(), sched["close"].max()
        windows.append(sel.filter(pl.col("symbol") == symbol).with_columns(
            pl.max_horizontal("from_ts", pl.lit(a, UTC_NS)).alias("from_ts"),
            pl.min_horizontal("to_ts", pl.lit(b, UTC_NS)).alias("to_ts")).filter(pl.col("from_ts") < pl.col("to_ts")))
    win = pl.concat(windows) if windows else sel.clear()
    minutes = _bucket_minutes(list(scheds.values()))
    uniq = win.select("dataset", "instrument_id", "from_ts", "to_ts").unique()
    buckets = _buckets(st, uniq, minutes)
    parts = []
    for symbol, sched in scheds.items():
        w = win.filter(pl.col("symbol") == symbol)
        if w.height == 0 or buckets.height == 0:
            continue
        b = (buckets.lazy().join(w.lazy().rename({"dataset": "_ds"}), on="instrument_id", how="inner")
             .filter((pl.col("_ds").is_null() | (pl.col("_ds") == pl.col("dataset")))
                     & (pl.col("bucket") >= pl.col("from_ts")) & (pl.col("bucket") < pl.col("to_ts")))
             .with_columns(trading_date_expr(pl.col("bucket"), sched).alias("trading_date"))
             .drop_nulls("trading_date").sort("bucket"))
        agg = b.group_by("symbol", "dataset", "instrument_id", "trading_date").agg(
            pl.col("open_price").first(), pl.col("high_price").max(), pl.col("low_price").min(),
            pl.col("close_price").last(), pl.col("volume").sum(), pl.col("first_ts").min().alias("_t"))
        parts.append(agg.join(sched.lazy().rename({"open": "session_open", "close": "session_close"}),
                              on="trading_date", how="left"))
    if not parts:
        return _empty(prices)
    out = pl.concat(parts)
    ids = win.get_column("instrument_id").to_list()
    out = with_raw_symbols(st, out, "_t", ids).select(BAR_COLUMNS).sort("symbol", "trading_date", "instrument_id")
    return _prices(out.collect(), prices)


def _empty(prices: str) -> pl.DataFrame:
    p = pl.Float64 if prices == "float" else pl.Decimal(19, 9)
    return pl.DataFrame(schema={
        "symbol": pl.String, "raw_symbol": pl.String, "trading_date": pl.Date, "session_open": UTC_NS,
        "session_close": UTC_NS, "early_close": pl.Boolean, "dataset": pl.String, "instrument_id": pl.Int64,
        **dict.fromkeys(PRICES, p), "volume": pl.Int64})


INTRADAY_COLUMNS = ["symbol", "raw_symbol", "trading_date", "dataset", "instrument_id", "granularity",
                    "bar_timestamp_utc", *PRICES, "volume", "publisher_id"]


def anchored(bars_1m: pl.DataFrame, granularity: str, scheds: dict[str, pl.DataFrame]) -> pl.DataFrame:
    """Intraday bars of ``granularity`` (5m, 15m, 1h) from 1m rows (``read_bars`` columns), anchored at
    each session's open: a bar starts at ``open + k * size`` and never spans two sessions. 1m bars outside
    every session (the daily break, closed days) are left out. ``bar_timestamp_utc`` is the bar start."""
    size = INTRADAY[granularity]
    parts = []
    ts = pl.col("bar_timestamp_utc")
    for symbol, sched in scheds.items():
        rows = (bars_1m.lazy().filter(pl.col("symbol") == symbol)
                .with_columns(trading_date_expr(ts, sched).alias("trading_date")).drop_nulls("trading_date")
                .join(sched.lazy().select("trading_date", pl.col("open").alias("_open")), on="trading_date",
                      how="left"))
        k = (ts - pl.col("_open")).dt.total_minutes() // size
        rows = rows.with_columns((pl.col("_open") + pl.duration(minutes=k * size)).cast(UTC_NS).alias("_start"))
        by = ["symbol", "raw_symbol", "dataset", "instrument_id", "trading_date", "_start"]
        parts.append(rows.sort("bar_timestamp_utc").group_by(by).agg(
            pl.col("open_price").first(), pl.col("high_price").max(), pl.col("low_price").min(),
            pl.col("close_price").last(), pl.col("volume").sum(), pl.col("publisher_id").first(),
        ).rename({"_start": "bar_timestamp_utc"}).with_columns(pl.lit(granularity).alias("granularity")))
    if not parts:
        schema = {**{c: bars_1m.schema[c] for c in INTRADAY_COLUMNS if c in bars_1m.columns},
                  "trading_date": pl.Date, "granularity": pl.String}
        return pl.DataFrame(schema=schema).select(INTRADAY_COLUMNS)
    return pl.concat(parts).select(INTRADAY_COLUMNS).sort("symbol", "bar_timestamp_utc", "instrument_id").collect()


def session_intraday(store: str | None, symbols: list[str], start: object, end: object, granularity: str, *,
                     dataset: str | None = None, session: str = "exchange", prices: str = "float") -> pl.DataFrame:
    """5m/15m/1h bars anchored at the session open for trading dates [start, end), from stored 1m bars."""
    from hdi.query import _read_table
    from hdi.store import open_store
    from hdi.symbols import resolve

    d0, d1 = trading_dates(start, end)
    extended = check_session(session) == "extended"
    st = open_store(store)
    lo = dt.datetime.combine(d0 - dt.timedelta(days=7), dt.time(0), dt.UTC)
    hi = dt.datetime.combine(max(d1, d0) + _DAY, dt.time(0), dt.UTC)
    with st.session():
        scheds = _schedules(resolve(st, symbols, lo, hi, dataset), d0, d1, extended)
    opens = [s["open"].min() for s in scheds.values() if s.height]
    closes = [s["close"].max() for s in scheds.values() if s.height]
    if not opens:
        a = b = lo
    else:
        a, b = min(opens), max(closes)
    rows, _ = _read_table("ohlcv", symbols, a, b, store, dataset=dataset, equals={"granularity": "1m"}, prices=prices)
    return anchored(rows, granularity, scheds)
