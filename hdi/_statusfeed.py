"""What the venue's status feed (the ``status`` table) says about coverage: when an instrument was
halted or its market closed, so that ``hdi status`` shows a day without data as *closed* or *halted*,
not as missing.

A status record holds from its ``ts_recv`` until the instrument's next status record. The feed says an
instrument is not trading when ``is_trading`` is ``N``, or, where the venue leaves ``is_trading``
unset, when its action is a halt, pause, suspension, pre-open or close. A halt, pause or suspension
is *halted*; anything else not trading (pre-open, close, post-close, not available) is *closed*. The
last record of an instrument holds until the end of the last UTC day of the feed that was fetched
for its dataset (``ingest_days``), or of its own day when no fetch is recorded: the feed never
speaks for days nobody asked it about.

A UTC day is explained when the not-trading intervals cover all of it; it is *halted* when a halt is
among them, else *closed*.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import polars as pl

if TYPE_CHECKING:
    from polars._typing import PolarsDataType

    from hdi.store.base import Store

# databento_dbn StatusAction numbers
HALTED_ACTIONS = (8, 9, 10)  # HALT, PAUSE, SUSPEND
CLOSED_ACTIONS = (1, 11, 12, 13, 15)  # PRE_OPEN, PRE_CLOSE, CLOSE, POST_CLOSE, NOT_AVAILABLE_FOR_TRADING
DAY_NS = 86_400 * 10**9

_INTERVALS: dict[str, PolarsDataType] = {"dataset": pl.String, "symbol": pl.String, "day": pl.Date, "start": pl.Datetime("ns", "UTC"),
              "end": pl.Datetime("ns", "UTC"), "state": pl.String}


def not_trading_intervals(st: Store) -> pl.DataFrame:
    """The halted/closed intervals per (dataset, symbol, UTC day), clipped to the day.

    Returns:
        dataset, symbol (as requested: the symbology table's symbols, e.g. ``CL.c.0``), day, start, end
        (exclusive), state (``halted`` or ``closed``); empty when the store holds no status records.
    """
    if not st.has_table("status"):
        return pl.DataFrame(schema=_INTERVALS)
    rec = st.query("SELECT dataset, instrument_id, ts_recv_ns, action, is_trading FROM status")
    if rec.height == 0:
        return pl.DataFrame(schema=_INTERVALS)
    last_day = _last_fetched_day(st)
    by = ["dataset", "instrument_id"]
    rec = (rec.with_columns(pl.col("instrument_id").cast(pl.Int64), pl.col("ts_recv_ns").cast(pl.Int64),
                            pl.col("action").cast(pl.Int64))
           .sort([*by, "ts_recv_ns"])
           .with_columns(pl.col("ts_recv_ns").shift(-1).over(by).alias("next_ns")))
    halted = pl.col("action").is_in(HALTED_ACTIONS)
    stopped = (pl.col("is_trading") == "N") | (pl.col("is_trading").is_null()
                                               & pl.col("action").is_in([*HALTED_ACTIONS, *CLOSED_ACTIONS]))
    own_day_end = (pl.col("ts_recv_ns") // DAY_NS + 1) * DAY_NS
    rec = rec.join(last_day, on="dataset", how="left").with_columns(
        pl.coalesce("next_ns", pl.max_horizontal(own_day_end, pl.col("feed_end_ns"))).alias("end_ns"))
    iv = rec.filter(stopped & (pl.col("end_ns") > pl.col("ts_recv_ns"))).select(
        *by, pl.col("ts_recv_ns").alias("start_ns"), "end_ns",
        pl.when(halted).then(pl.lit("halted")).otherwise(pl.lit("closed")).alias("state"))
    if iv.height == 0:
        return pl.DataFrame(schema=_INTERVALS)
    # an interval is named by the symbols that map its instrument on the day it starts (a continuous
    # symbol's mapping may skip the weekend a Friday close runs through)
    sym = (st.symbology().filter(pl.col("source") != "resolve_raw")
           .select("dataset", "symbol", pl.col("instrument_id").cast(pl.Int64), "start_date", "end_date"))
    first = (pl.col("start_ns") // DAY_NS).cast(pl.Int32).cast(pl.Date)
    named = (iv.with_columns(first.alias("first_day")).join(sym, on=by, how="inner")
             .filter((pl.col("first_day") >= pl.col("start_date")) & (pl.col("first_day") < pl.col("end_date"))))
    days = (named.with_columns(pl.int_ranges(pl.col("start_ns") // DAY_NS, (pl.col("end_ns") - 1) // DAY_NS + 1)
                               .alias("d"))
            .explode("d")
            .with_columns(pl.max_horizontal("start_ns", pl.col("d") * DAY_NS).alias("s"),
                          pl.min_horizontal("end_ns", (pl.col("d") + 1) * DAY_NS).alias("e"),
                          pl.col("d").cast(pl.Int32).cast(pl.Date).alias("day")))
    ts = pl.Datetime("ns", "UTC")
    return (days.select("dataset", "symbol", "day", pl.col("s").cast(pl.Datetime("ns")).dt.replace_time_zone("UTC")
                         .cast(ts).alias("start"),
                         pl.col("e").cast(pl.Datetime("ns")).dt.replace_time_zone("UTC").cast(ts).alias("end"),
                         "state")
            .unique().sort("dataset", "symbol", "start"))


def explained_days(intervals: pl.DataFrame) -> dict[tuple[str, str], dict[dt.date, str]]:
    """(dataset, symbol) -> {UTC day the feed shows wholly not trading: 'halted' or 'closed'}."""
    if intervals.height == 0:
        return {}
    # merge overlapping intervals of a day (several instruments may map to one symbol) before summing
    per_day = (intervals.sort("dataset", "symbol", "day", "start")
               .group_by("dataset", "symbol", "day", maintain_order=True)
               .agg(pl.col("start"), pl.col("end"), (pl.col("state") == "halted").any().alias("halted")))
    out: dict[tuple[str, str], dict[dt.date, str]] = {}
    for r in per_day.iter_rows(named=True):
        covered, reach = dt.timedelta(0), None
        day_start = dt.datetime.combine(r["day"], dt.time(), dt.UTC)
        for s, e in zip(r["start"], r["end"], strict=True):
            s = max(s, reach) if reach is not None else s
            if e > s:
                covered += e - s
            reach = max(reach, e) if reach is not None else e
        if covered >= dt.timedelta(days=1) and min(r["start"]) <= day_start:
            out.setdefault((r["dataset"], r["symbol"]), {})[r["day"]] = "halted" if r["halted"] else "closed"
    return out


def _last_fetched_day(st: Store) -> pl.DataFrame:
    """dataset -> the end (ns, exclusive) of the last UTC day of the status feed that was fetched."""
    empty = pl.DataFrame(schema={"dataset": pl.String, "feed_end_ns": pl.Int64})
    if not st.has_table("ingest_days"):
        return empty
    got = st.query("SELECT dataset, max(day) AS last FROM ingest_days WHERE schema = 'status' GROUP BY dataset")
    if got.height == 0:
        return empty
    return got.select(pl.col("dataset").cast(pl.String),
                      ((pl.col("last").cast(pl.Date).cast(pl.Int64) + 1) * DAY_NS).alias("feed_end_ns"))
