"""What a store holds: table sizes, stored rows and coverage per symbol, quarantine, recent runs.

Coverage comes from the ledger's ``ingest_days``: every UTC day a done chunk fetched, with the
number of records the source had for each requested symbol. So:

- a day listed with records is **data**;
- a day listed with 0 records was fetched and the source had nothing (a holiday, a no-trade day):
  **no data**;
- a day inside the symbol's span that is not listed was never fetched (a chunk failed, was skipped,
  or the range was never asked for): **missing**. The two are never confused.

The symbol's exchange calendar (:mod:`hdi.research.calendars`) splits the no-data days: a day the
market trades is **flagged** (the source may be incomplete: a vendor outage, a halted instrument);
a day it is closed (weekend, holiday) is **closed**, expected empty. Early-close trading dates in the
span are listed (``early_close``). A symbol without a known calendar keeps plain no-data days.

Stored rows per (dataset, table, granularity, symbol) come from the ``row_counts`` table (rows,
first and last time per instrument and UTC day, kept by every write transaction:
:mod:`hdi.store.counts`), never from a scan of the data tables, mapped to symbols through the
symbology table (a continuous symbol counts each contract on its own days); an instrument no symbol
maps is shown by its id. A store an earlier hdi wrote and no write has migrated since has no
``row_counts`` (a status never migrates): it is scanned as before.

The public function is :func:`hdi.status` (``hdi/__init__.py`` loads it from here on first use).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from hdi import _config as config
from hdi._tables import DATA_TABLES
from hdi._timeutil import as_utc
from hdi.research.calendars import classify_coverage
from hdi.store import counts, open_store
from hdi.store.ledger import ROW_COUNTS
from hdi.store.schema import ident


@dataclass
class StatusReport:
    store: str
    tables: pl.DataFrame  # table, rows, first, last
    coverage: pl.DataFrame  # dataset, schema, symbol, first_day, last_day, rows_fetched, days_*, missing, no_data
    symbols: pl.DataFrame  # dataset, table, granularity, symbol, rows, days, first, last (stored rows)
    quarantine: pl.DataFrame  # run_id, table, files, rows, latest_path, latest_mtime, replayed, open
    runs: pl.DataFrame
    failed_chunks: pl.DataFrame
    edition: dict[str, Any] = field(default_factory=dict)
    # (dataset, schema, symbol) a run judged over its quarantine budget, while its quarantined rows
    # are open: dataset, schema, symbol, run_id, rows, quarantined, rate, max_failure_rate, judged,
    # open_rows, reasons (hdi.validate.budget.over_budget)
    over_budget: pl.DataFrame | None = None
    # Databento's dataset conditions of the fetched days (issue 15.2), per (dataset, schema, symbol) with
    # any: the days degraded or pending when last fetched (`hdi ingest --update` fetches them again) and
    # the days fetched again after Databento restated them (their rows replaced), as day ranges
    conditions: pl.DataFrame | None = None

    def to_dict(self) -> dict[str, Any]:
        def rows(df: pl.DataFrame) -> list[dict[str, Any]]:
            return [{k: _jsonable(v) for k, v in r.items()} for r in _ns_text(df).iter_rows(named=True)]

        return {"store": self.store, "edition": self.edition, "tables": rows(self.tables),
                "symbols": rows(self.symbols), "coverage": rows(self.coverage), "quarantine": rows(self.quarantine),
                "runs": rows(self.runs), "failed_chunks": rows(self.failed_chunks),
                "over_budget": rows(self.over_budget) if self.over_budget is not None else [],
                "conditions": rows(self.conditions) if self.conditions is not None else []}


def _ns_text(df: pl.DataFrame) -> pl.DataFrame:
    """Timestamp columns as ISO-8601 UTC text with nanoseconds (``2024-11-18T14:30:00.123456789+00:00``):
    a Python datetime would cut them to microseconds."""
    exprs = []
    for c, t in df.schema.items():
        if isinstance(t, pl.Datetime):
            e = pl.col(c).dt.replace_time_zone("UTC") if t.time_zone is None else pl.col(c).dt.convert_time_zone("UTC")
            exprs.append(e.dt.cast_time_unit("ns").dt.to_string("%Y-%m-%dT%H:%M:%S%.9f%:z").alias(c))
    return df.with_columns(exprs) if exprs else df


def _jsonable(v: Any) -> Any:
    if isinstance(v, dt.datetime | dt.date):
        return v.isoformat()
    if isinstance(v, list):
        return [_jsonable(x) for x in v]
    return v


def status(store: str | None = None, *, quarantine_dir: str | Path | None = None, runs: int = 10) -> StatusReport:
    """Summarise a store (default: ``HDI_STORE``, else the embedded DuckDB file).

    Args:
        store: the store URL.
        quarantine_dir: the quarantine folder (default ``hdi._config.quarantine_dir()``).
        runs: how many recent runs to list, newest first.

    Returns:
        A :class:`StatusReport`; ``to_dict()`` gives its JSON form (``hdi status --format json``).
    """
    st = open_store(store)
    with st.session():  # a DuckDB file is attached for this call only
        return _report(st, quarantine_dir, runs)


def _report(st: Any, quarantine_dir: str | Path | None, runs: int) -> StatusReport:
    daily = _daily(st)
    tables = _tables(st, daily)
    days = st.query("SELECT * FROM ingest_days") if st.has_table("ingest_days") else None
    failed = _still_failed(st.chunks(status="failed"), days)
    from hdi._statusfeed import explained_days, not_trading_intervals

    coverage = _coverage(days, failed, explained_days(not_trading_intervals(st)))
    from hdi._quarantine import replayed_rows, with_replays
    from hdi.validate.budget import over_budget
    from hdi.validate.quarantine import quarantine_summary

    q = with_replays(st, quarantine_summary(config.quarantine_dir(quarantine_dir)))  # + replayed, open
    over = over_budget(config.quarantine_dir(quarantine_dir), st.display_url, replayed_rows(st))
    edition = {"kind": st.kind}
    if st.kind == "timescale":  # read only: a status never creates tables
        version, license_ = st.query("SELECT (SELECT extversion FROM pg_extension WHERE extname = 'timescaledb') "
                                     "AS v, current_setting('timescaledb.license', true) AS l").row(0)
        edition |= {"timescaledb": version, "license": license_}
    elif st.kind == "iceberg":
        edition |= st.edition()
    return StatusReport(store=st.display_url, tables=tables, coverage=coverage, symbols=_symbols(st, daily),
                        quarantine=q,
                        runs=st.runs(limit=runs), failed_chunks=failed.select(
                            "chunk_id", "run_id", "dataset", "schema", "symbols", "start_ts", "end_ts", "error"),
                        edition=edition, over_budget=over, conditions=_conditions(st))


_CONDITIONS_SCHEMA: dict[str, pl.DataType | type[pl.DataType]] = {
    "dataset": pl.String, "schema": pl.String, "symbol": pl.String,
    "days_degraded": pl.UInt32, "degraded": pl.List(pl.String), "days_pending": pl.UInt32,
    "pending": pl.List(pl.String), "days_restated": pl.UInt32, "restated": pl.List(pl.String),
    "last_restated": pl.Date,  # the latest last_modified_date among the restated days
}


def _conditions(st: Any) -> pl.DataFrame:
    """Degraded, pending and restated days per (dataset, schema, symbol), from ``ingest_conditions``
    (only symbols with any)."""
    if not st.has_table("ingest_conditions"):
        return pl.DataFrame(schema=_CONDITIONS_SCHEMA)
    got = st.query("SELECT dataset, schema, symbol, day, condition, last_modified_date, refetched "
                   "FROM ingest_conditions WHERE condition IN ('degraded', 'pending') OR refetched = 'restated'")
    got = got.with_columns(pl.col("day").cast(pl.Date), pl.col("last_modified_date").cast(pl.Date))
    out = []
    for (ds, sch, sym), g in sorted(got.group_by("dataset", "schema", "symbol"), key=lambda kv: kv[0]):
        deg = g.filter(pl.col("condition") == "degraded")["day"].to_list()
        pen = g.filter(pl.col("condition") == "pending")["day"].to_list()
        res = g.filter(pl.col("refetched") == "restated")
        out.append({"dataset": ds, "schema": sch, "symbol": sym, "days_degraded": len(deg), "degraded": _ranges(deg),
                    "days_pending": len(pen), "pending": _ranges(pen), "days_restated": res.height,
                    "restated": _ranges(res["day"].to_list()), "last_restated": res["last_modified_date"].max()})
    return pl.DataFrame(out, schema=_CONDITIONS_SCHEMA)


def _utc(v: dt.datetime | None) -> dt.datetime | None:
    if v is None:
        return None
    return as_utc(v)


_DAILY_SCHEMA: dict[str, pl.DataType | type[pl.DataType]] = {"table": pl.String, "dataset": pl.String, "instrument_id": pl.Int64, "granularity": pl.String,
                 "day": pl.Date, "rows": pl.Int64, "first": pl.Datetime("ns", "UTC"), "last": pl.Datetime("ns", "UTC")}


def _daily(st: Any) -> pl.DataFrame:
    """Rows, first and last time per (table, dataset, instrument, granularity, UTC day); exact to the
    nanosecond where the table keeps its time column's nanoseconds. From ``row_counts``."""
    if st.has_table(ROW_COUNTS.name):
        return counts.daily(st)
    return _scan_daily(st)


def _scan_daily(st: Any) -> pl.DataFrame:
    """:func:`_daily` by one grouped scan of every data table: a store without ``row_counts`` (written
    by an hdi before migration 7 and not migrated since)."""
    parts = []
    for name, t in DATA_TABLES.items():
        if not st.has_table(name):
            continue
        tc = ident(t.time_column)
        ns = dict(t.ns_columns).get(t.time_column)
        edge = ident(ns) if ns else tc
        gran = "granularity" if "granularity" in t.names else "CAST(NULL AS VARCHAR)"
        got = st.query(f"SELECT dataset, instrument_id, {gran} AS granularity, CAST(timezone('UTC', {tc}) AS DATE) "
                       f"AS day, count(*) AS n, min({edge}) AS lo, max({edge}) AS hi FROM {ident(name)} GROUP BY 1, 2, 3, 4")
        parts.append(got.select(
            pl.lit(name).alias("table"), pl.col("dataset").cast(pl.String), pl.col("instrument_id").cast(pl.Int64),
            pl.col("granularity").cast(pl.String), pl.col("day").cast(pl.Date), pl.col("n").cast(pl.Int64).alias("rows"),
            *[_utc_col(pl.col(c), got.schema[c]).alias(a) for c, a in (("lo", "first"), ("hi", "last"))]))
    return pl.concat(parts) if parts else pl.DataFrame(schema=_DAILY_SCHEMA)


def _utc_col(e: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    if isinstance(dtype, pl.Datetime):
        e = e.dt.replace_time_zone("UTC") if dtype.time_zone is None else e.dt.convert_time_zone("UTC")
        return e.dt.cast_time_unit("ns")
    if dtype.is_integer():  # exact nanoseconds since the epoch
        return e.cast(pl.Int64).cast(pl.Datetime("ns")).dt.replace_time_zone("UTC")
    return e.cast(pl.Datetime("ns", "UTC"))


def _tables(st: Any, daily: pl.DataFrame) -> pl.DataFrame:
    """Every data table the store has: rows, first and last time (0 rows for an empty one)."""
    present = [name for name in DATA_TABLES if st.has_table(name)]
    sums = daily.group_by("table").agg(pl.col("rows").sum(), pl.col("first").min(), pl.col("last").max())
    return (pl.DataFrame({"table": present}, schema={"table": pl.String})
            .join(sums, on="table", how="left", maintain_order="left")
            .with_columns(pl.col("rows").fill_null(0)))


_SYMBOLS_SCHEMA: dict[str, pl.DataType | type[pl.DataType]] = {"dataset": pl.String, "table": pl.String, "granularity": pl.String, "symbol": pl.String,
                   "rows": pl.Int64, "days": pl.UInt32, "first": pl.Datetime("ns", "UTC"),
                   "last": pl.Datetime("ns", "UTC")}


def _symbols(st: Any, daily: pl.DataFrame) -> pl.DataFrame:
    """Stored rows per (dataset, table, granularity, symbol), through the symbology table's intervals."""
    if daily.height == 0:
        return pl.DataFrame(schema=_SYMBOLS_SCHEMA)
    # the raw symbols hdi looked up for a continuous or parent request only name rows; not a symbol asked for
    sym = (st.symbology().filter(pl.col("source") != "resolve_raw")
           .select("dataset", "symbol", "instrument_id", "start_date", "end_date"))
    keys = ["table", "dataset", "instrument_id", "granularity", "day"]
    named = (daily.join(sym, on=["dataset", "instrument_id"], how="inner")
             .filter((pl.col("day") >= pl.col("start_date")) & (pl.col("day") < pl.col("end_date")))
             .unique([*keys, "symbol"]))  # overlapping intervals of one symbol count a day once
    unnamed = daily.join(named.select(keys).unique(), on=keys, how="anti", nulls_equal=True).with_columns(
        pl.col("instrument_id").cast(pl.String).alias("symbol"))
    both = pl.concat([named.select(*keys, "symbol", "rows", "first", "last"),
                      unnamed.select(*keys, "symbol", "rows", "first", "last")])
    return (both.group_by("dataset", "table", "granularity", "symbol")
            .agg(pl.col("rows").sum(), pl.col("day").n_unique().cast(pl.UInt32).alias("days"),
                 pl.col("first").min(), pl.col("last").max())
            .sort("dataset", "table", "granularity", "symbol", nulls_last=True).select(list(_SYMBOLS_SCHEMA)))


_COVERAGE_SCHEMA: dict[str, pl.DataType | type[pl.DataType]] = {
    "dataset": pl.String, "schema": pl.String, "symbol": pl.String, "first_day": pl.Date, "last_day": pl.Date,
    "rows_fetched": pl.Int64, "days_with_data": pl.UInt32, "days_no_data": pl.UInt32, "days_missing": pl.UInt32,
    "missing": pl.List(pl.String), "no_data": pl.List(pl.String),
    # by the symbol's exchange calendar (hdi.research.calendars.classify_coverage); calendar null: unknown.
    # closed: a closed market by the calendar, or closed all day by the venue's status feed (hdi/_statusfeed.py);
    # halted: trading halted all day by the status feed
    "calendar": pl.String, "days_flagged": pl.UInt32, "days_closed": pl.UInt32,
    "flagged": pl.List(pl.String), "closed": pl.List(pl.String), "early_close": pl.List(pl.String),
    "days_halted": pl.UInt32, "halted": pl.List(pl.String),
}


def _ranges(days: list[dt.date]) -> list[str]:
    """[d1, d2, d3, d7] -> ["d1..d3", "d7"]."""
    out: list[tuple[dt.date, dt.date]] = []
    for d in sorted(days):
        if out and (d - out[-1][1]).days == 1:
            out[-1] = (out[-1][0], d)
        else:
            out.append((d, d))
    return [a.isoformat() if a == b else f"{a.isoformat()}..{b.isoformat()}" for a, b in out]


def _still_failed(failed: pl.DataFrame, days: pl.DataFrame | None) -> pl.DataFrame:
    """Failed chunks with a (symbol, day) not fetched since: a chunk whose days a later chunk (of
    another range, e.g. the next ``--update``) fetched is repaired, no longer a failure."""
    if failed.height == 0 or days is None or days.height == 0:
        return failed
    cells = (failed.with_row_index("_i")
             .select("_i", "dataset", "schema", pl.col("symbols").str.split(",").alias("symbol"),
                     pl.date_ranges(pl.col("start_ts").dt.date(),
                                    (pl.col("end_ts") - pl.duration(microseconds=1)).dt.date()).alias("day"))
             .explode("symbol").explode("day"))
    open_ = cells.join(days.select("dataset", "schema", "symbol", pl.col("day").cast(pl.Date)),
                       on=["dataset", "schema", "symbol", "day"], how="anti")
    return failed.with_row_index("_i").filter(pl.col("_i").is_in(open_["_i"].unique().implode())).drop("_i")


def _coverage(days: pl.DataFrame | None, failed: pl.DataFrame,
              feed: dict[tuple[str, str], dict[dt.date, str]] | None = None) -> pl.DataFrame:
    days = (days.select("dataset", "schema", "symbol", pl.col("day").cast(pl.Date), "rows_fetched")
            if days is not None else pl.DataFrame(schema={"dataset": pl.String, "schema": pl.String,
                                                          "symbol": pl.String, "day": pl.Date,
                                                          "rows_fetched": pl.Int64}))
    # days of failed chunks count into the span, so a failed range shows as missing (even when no
    # chunk of the symbol was ever done)
    spans: dict[tuple[str, str, str], tuple[dt.date, dt.date]] = {}
    for r in failed.iter_rows(named=True):
        lo, hi = r["start_ts"].date(), (r["end_ts"] - dt.timedelta(microseconds=1)).date()
        for s in str(r["symbols"]).split(","):
            k = (r["dataset"], r["schema"], s)
            a, b = spans.get(k, (lo, hi))
            spans[k] = (min(a, lo), max(b, hi))
    groups = dict(days.group_by("dataset", "schema", "symbol"))
    out = []
    for key in sorted(set(groups) | set(spans)):
        ds, sch, sym = key
        g = groups.get(key)
        fetched = dict(zip(g["day"].to_list(), g["rows_fetched"].to_list(), strict=True)) if g is not None else {}
        bounds = [d for d in (min(fetched, default=None), max(fetched, default=None)) if d is not None]
        if key in spans:
            bounds += list(spans[key])
        lo, hi = min(bounds), max(bounds)
        span = [lo + dt.timedelta(days=i) for i in range((hi - lo).days + 1)]
        missing = [d for d in span if d not in fetched]
        no_data = sorted(d for d, n in fetched.items() if n == 0)
        with_data = len(fetched) - len(no_data)
        said = (feed or {}).get((ds, sym), {})  # days without data the status feed shows closed/halted
        feed_closed = [d for d in [*missing, *no_data] if said.get(d) == "closed"]
        halted = sorted(d for d in [*missing, *no_data] if said.get(d) == "halted")
        missing, no_data = [d for d in missing if d not in said], [d for d in no_data if d not in said]
        cal = classify_coverage(ds, sym, lo, hi, no_data)
        closed = sorted({*cal["closed"], *feed_closed})
        out.append({"dataset": ds, "schema": sch, "symbol": sym, "first_day": lo, "last_day": hi,
                    "rows_fetched": int(sum(fetched.values())), "days_with_data": with_data,
                    "days_no_data": len(no_data), "days_missing": len(missing),
                    "missing": _ranges(missing), "no_data": _ranges(no_data),
                    "calendar": cal["calendar"], "days_flagged": len(cal["flagged"]),
                    "days_closed": len(closed), "flagged": _ranges(cal["flagged"]),
                    "closed": _ranges(closed), "early_close": _ranges(cal["early_close"]),
                    "days_halted": len(halted), "halted": _ranges(halted)})
    return pl.DataFrame(out, schema=_COVERAGE_SCHEMA).sort("dataset", "schema", "symbol")

