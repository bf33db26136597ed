"""Bars on the exchange's trading day, built on read from stored 1m bars.

``session_bars`` gives one daily bar per (symbol, contract, trading date): the 1m bars whose start lies
in the session ``[open, close)`` of the instrument's calendar (:mod:`hdi.research.calendars`), so the
CME daily break, weekends and holidays are excluded, DST moves nothing, and Sunday evening belongs to
Monday. ``session_intraday`` gives 5m/15m/1h bars anchored at the session open (a 1h bar starts at
17:00 Chicago time, 09:30 New York for SPY), never spanning two sessions.

How it reads (measured by ``benchmarks/session_bars.py``): the store pre-aggregates the 1m bars into
buckets of the largest size that divides every session bound in the range (an hour, or 15 minutes
when a session closes at 18:45) with high, low, volume and the first/last bar time; a second query
fetches the open of each session's first bar and the close of its last; Polars assigns each bucket
its trading date and folds buckets into sessions. A year of one future's 1m bars (~356k rows)
becomes ~6k-23k bucket rows. The result is kept in memory and reused while the store's ledger shows
no new write to ``ohlcv`` (one ledger query), so re-ingested bars are always reflected and nothing is
written to the store.

A continuous symbol is mapped by UTC day (Databento's symbology), so on a roll date the session can
hold two contracts: each gets its own row, named by ``raw_symbol``/``instrument_id``.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import polars as pl

from hdi._prices import fixed_to_decimal
from hdi._tables import OHLCV
from hdi.errors import QueryError, allowed_list
from hdi.research.calendars import as_datetime, calendar_for, schedule, trading_date_expr
from hdi.store.base import Store
from hdi.store.schema import ident

if TYPE_CHECKING:
    from polars._typing import PolarsDataType

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
    from hdi._timeutil import parse_range

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


def _where(windows: pl.DataFrame, p: Any) -> str:
    ors = []
    for ds, iid, lo, hi in windows.select("dataset", "instrument_id", "from_ts", "to_ts").iter_rows():
        parts = [f"instrument_id = {p(int(iid))}", f"bar_timestamp_utc >= {p(lo)}", f"bar_timestamp_utc < {p(hi)}"]
        if ds is not None:
            parts.append(f"dataset = {p(ds)}")
        ors.append("(" + " AND ".join(parts) + ")")
    return f"granularity = {p('1m')} AND ({' OR '.join(ors)})"


def _params() -> tuple[list[Any], Any]:
    params: list[Any] = []

    def p(v: Any) -> str:
        params.append(v)
        return f"${len(params)}"

    return params, p


def _fx(e: str) -> str:
    """A price expression as its 1e-9 fixed-point integer (exact in both stores)."""
    return f"CAST(({e}) * 1000000000 AS BIGINT)"


def _buckets(st: Store, windows: pl.DataFrame, minutes: int) -> pl.DataFrame:
    """The selected 1m bars aggregated in the store into ``minutes`` buckets per instrument: max high,
    min low, volume, first and last bar time. (Open and close come from :func:`_edges`: first/last
    aggregates cost more than the whole scan.)"""
    schema: dict[str, PolarsDataType] = {"dataset": pl.String, "instrument_id": pl.Int64, "first_ts": UTC_NS,
                                         "last_ts": UTC_NS,
              "high_price": pl.Int64, "low_price": pl.Int64, "volume": pl.Int64}
    if windows.height == 0 or not st.has_table(OHLCV.name):
        return pl.DataFrame(schema=schema)
    params, p = _params()
    tc = ident("bar_timestamp_utc")
    bucket = (f"time_bucket(make_interval(mins => CAST({p(minutes)} AS INTEGER)), {tc})" if st.kind == "timescale"
              else f"epoch_ns({tc}) // CAST({p(minutes * 60 * 10**9)} AS BIGINT)")
    sql = (f"SELECT dataset, instrument_id, min({tc}) AS first_ts, max({tc}) AS last_ts, "
           f"{_fx('max(high_price)')} AS high_price, {_fx('min(low_price)')} AS low_price, "
           f"CAST(sum(volume) AS BIGINT) AS volume FROM {ident(OHLCV.name)} WHERE {_where(windows, p)} "
           f"GROUP BY dataset, instrument_id, {bucket}")
    return st.query(sql, params).select(pl.col(c).cast(t) for c, t in schema.items())


def _edges(st: Store, edges: pl.DataFrame) -> pl.DataFrame:
    """The open of each session's first 1m bar and the close of its last: rows (dataset, instrument_id,
    ts) -> + open_price, close_price (fixed-point)."""
    params, p = _params()
    ids = edges["instrument_id"].unique().to_list()
    times = edges["ts"].unique().to_list()
    sql = (f"SELECT dataset, instrument_id, bar_timestamp_utc AS ts, {_fx('open_price')} AS open_price, "
           f"{_fx('close_price')} AS close_price FROM {ident(OHLCV.name)} WHERE granularity = {p('1m')} "
           f"AND instrument_id IN ({', '.join(p(int(i)) for i in ids)}) "
           f"AND bar_timestamp_utc IN ({', '.join(p(t) for t in times)})")
    got = st.query(sql, params).select(pl.col("dataset").cast(pl.String), pl.col("instrument_id").cast(pl.Int64),
                                       pl.col("ts").cast(UTC_NS), pl.col("open_price").cast(pl.Int64),
                                       pl.col("close_price").cast(pl.Int64))
    return got.unique(["dataset", "instrument_id", "ts"], keep="first")


def _prices(df: pl.DataFrame, prices: str) -> pl.DataFrame:
    exprs = [fixed_to_decimal(pl.col(c)).alias(c) for c in PRICES]
    if prices == "float":
        exprs = [e.cast(pl.Float64) for e in exprs]
    return df.with_columns(exprs)


BAR_COLUMNS = ["symbol", "raw_symbol", "trading_date", "session_open", "session_close", "early_close", "dataset",
               "instrument_id", *PRICES, "volume"]


# (store url, symbols, dataset, start, end, session, prices) -> (ledger fingerprint, bars)
_CacheKey = tuple[str, tuple[str, ...], str | None, str, str, str, str]
_CACHE: OrderedDict[_CacheKey, tuple[tuple[object, ...], pl.DataFrame]] = OrderedDict()
_CACHE_SIZE = 64


def _fingerprint(st: Store) -> tuple[object, ...]:
    """What changes whenever a bar is written: every write of the ohlcv table is a done chunk of the
    ledger (``ingest_chunks``, updated in the same transaction as its rows) or a quarantine replay."""
    out: list[Any] = []
    for table, col in (("ingest_chunks", "updated_at"), ("quarantine_replays", "replayed_at")):
        if st.has_table(table):
            out.extend(st.query(f"SELECT count(*) AS n, max({ident(col)}) AS t FROM {ident(table)} "
                                f"WHERE target_table = $1", [OHLCV.name]).row(0))
    return tuple(out)


def session_bars(st: Store, symbols: list[str], start: object, end: object, *, dataset: str | None = None,
                 session: str = "exchange", prices: str = "float", cache: bool = True) -> pl.DataFrame:
    """Daily bars per trading date in [start, end) (trading dates) from the stored 1m bars; see the module
    docstring. Columns: :data:`BAR_COLUMNS`.

    The result is materialised in memory per (store, symbols, range, session, prices) and reused until
    the store's ledger shows a new write of the ohlcv table (:func:`_fingerprint`), so repeated reads
    (a backtest, a notebook) cost one ledger query."""
    key: _CacheKey = (st.url, tuple(symbols), dataset, str(start), str(end), session, prices)
    if cache:
        fp = _fingerprint(st)
        hit = _CACHE.get(key)
        if hit is not None and hit[0] == fp:
            _CACHE.move_to_end(key)
            return hit[1]
    out = _session_bars(st, symbols, start, end, dataset=dataset, session=session, prices=prices)
    if cache:
        _CACHE[key] = (fp, out)
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return out


def _session_bars(st: Store, symbols: list[str], start: object, end: object, *, dataset: str | None,
                  session: str, prices: str) -> pl.DataFrame:
    from hdi._rawsym import with_raw_symbols
    from hdi._symbols import resolve

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
        # a bucket never straddles a session bound (bounds lie on bucket edges): its first bar dates it
        hits = (buckets.lazy().join(w.lazy().rename({"dataset": "_ds"}), on="instrument_id", how="inner")
             .filter((pl.col("_ds").is_null() | (pl.col("_ds") == pl.col("dataset")))
                     & (pl.col("first_ts") >= pl.col("from_ts")) & (pl.col("first_ts") < pl.col("to_ts")))
             .with_columns(trading_date_expr(pl.col("first_ts"), sched).alias("trading_date"))
             .drop_nulls("trading_date"))
        agg = hits.group_by("symbol", "dataset", "instrument_id", "trading_date").agg(
            pl.col("high_price").max(), pl.col("low_price").min(), pl.col("volume").sum(),
            pl.col("first_ts").min().alias("_t"), pl.col("last_ts").max().alias("_last"))
        parts.append(agg.join(sched.lazy().rename({"open": "session_open", "close": "session_close"}),
                              on="trading_date", how="left"))
    if not parts:
        return _empty(prices)
    out = pl.concat(parts).collect()
    edge_rows = pl.concat([out.select("dataset", "instrument_id", pl.col(c).alias("ts")) for c in ("_t", "_last")])
    edges = _edges(st, edge_rows) if out.height else edge_rows.with_columns(
        open_price=pl.lit(None, pl.Int64), close_price=pl.lit(None, pl.Int64))
    key = ["dataset", "instrument_id"]
    joined = (out.lazy()
              .join(edges.lazy().select(*key, pl.col("ts").alias("_t"), "open_price"), on=[*key, "_t"], how="left")
              .join(edges.lazy().select(*key, pl.col("ts").alias("_last"), "close_price"), on=[*key, "_last"],
                    how="left"))
    ids = win.get_column("instrument_id").to_list()
    bars = with_raw_symbols(st, joined, "_t", ids).select(BAR_COLUMNS).sort("symbol", "trading_date", "instrument_id")
    return _prices(bars.collect(), prices)


def _empty(prices: str) -> pl.DataFrame:
    p: pl.DataType = pl.Float64() if prices == "float" else pl.Decimal(19, 9)
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
        schema: dict[str, PolarsDataType] = {**{c: bars_1m.schema[c] for c in INTRADAY_COLUMNS if c in bars_1m.columns},
                  "trading_date": pl.Date, "granularity": pl.String}
        return pl.DataFrame(schema=schema).select(INTRADAY_COLUMNS)
    return pl.concat(parts).select(INTRADAY_COLUMNS).sort("symbol", "bar_timestamp_utc", "instrument_id").collect()


def session_intraday(store: str | None, symbols: list[str], start: object, end: object, granularity: str, *,
                     dataset: str | None = None, session: str = "exchange", prices: str = "float") -> pl.DataFrame:
    """5m/15m/1h bars anchored at the session open for trading dates [start, end), from stored 1m bars."""
    from hdi._query import _read_table
    from hdi._symbols import resolve
    from hdi.store import open_store

    d0, d1 = trading_dates(start, end)
    extended = check_session(session) == "extended"
    st = open_store(store)
    lo = dt.datetime.combine(d0 - dt.timedelta(days=7), dt.time(0), dt.UTC)
    hi = dt.datetime.combine(max(d1, d0) + _DAY, dt.time(0), dt.UTC)
    with st.session():
        scheds = _schedules(resolve(st, symbols, lo, hi, dataset), d0, d1, extended)
    opens = [as_datetime(s["open"].min(), "session open") for s in scheds.values() if s.height]
    closes = [as_datetime(s["close"].max(), "session close") for s in scheds.values() if s.height]
    if not opens:
        a = b = lo
    else:
        a, b = min(opens), max(closes)
    rows, _ = _read_table("ohlcv", symbols, a, b, store, dataset=dataset, equals={"granularity": "1m"}, prices=prices)
    return anchored(rows, granularity, scheds)
