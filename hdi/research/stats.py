"""Settlement price, cleared volume and open interest per trading date, as known at an instant.

From ingested ``statistics`` (Databento's statistics schema): stat_type 3 (settlement price), 6
(cleared volume) and 9 (open interest). A statistic is keyed by (dataset, instrument, stat_type,
trading date), the trading date being the UTC date of its ``ts_ref`` (``effective_date_utc``). It
can be published several times; each publication became known at its ``ts_recv``.

``as_of`` (an aware instant; None = everything stored) keeps only publications received at or before
it, then per key:

- a delete (update_action 2) withdraws what was published before it: only publications after the
  latest delete count (none left: null);
- settlement: the latest *final* publication (``stat_flags`` bit 0, CME's SettlPriceType "final"),
  else the latest preliminary one, so a final settlement is never replaced by a later preliminary;
- cleared volume and open interest: the latest publication.

Each value comes with ``*_known_at`` (the ``ts_recv`` of the publication used), and the settlement
with ``settlement_final``. Before the first publication every column is null, so a backtest asking
``as_of`` a morning cannot see the open interest published that evening.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from hdi.store.base import Store

SETTLEMENT, CLEARED_VOLUME, OPEN_INTEREST = 3, 6, 9
FINAL_FLAG = 1  # stat_flags bit 0: final settlement (bit 1: actual, not theoretical)
DELETE = 2
UTC_NS = pl.Datetime("ns", "UTC")
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
KEY = ["dataset", "instrument_id", "trading_date"]
STAT_COLUMNS = pl.Schema({
    "settlement_price": pl.Decimal(19, 9), "settlement_final": pl.Boolean(), "settlement_known_at": UTC_NS,
    "cleared_volume": pl.Int64(), "cleared_volume_known_at": UTC_NS,
    "open_interest": pl.Int64(), "open_interest_known_at": UTC_NS,
})


def _publications(st: Store, ids: list[int], d0: dt.date, d1: dt.date, as_of: dt.datetime | None) -> pl.DataFrame:
    cols = ["dataset", "instrument_id", "stat_type", "effective_date_utc", "price", "quantity", "update_action",
            "stat_flags", "received_timestamp_utc", "ts_recv_ns", "sequence", "rec_ordinal"]
    if not ids or not st.has_table("statistics"):
        return pl.DataFrame()
    no_bound = pl.lit(None, UTC_NS)
    sel = pl.DataFrame({"instrument_id": sorted(set(ids))}, schema={"instrument_id": pl.Int64}).with_columns(
        dataset=pl.lit(None, pl.String), from_ts=no_bound, to_ts=no_bound)
    # a statistic for day D is published from D's session until days later; ts_recv bounds the read
    start = dt.datetime.combine(d0 - dt.timedelta(days=7), dt.time(0), dt.UTC)
    # select's end is exclusive: a publication received exactly at as_of is known
    end = None if as_of is None else as_of + dt.timedelta(microseconds=1)
    rows = st.select("statistics", start=start, end=end, selections=sel, columns=cols)
    return rows.filter(pl.col("stat_type").is_in([SETTLEMENT, CLEARED_VOLUME, OPEN_INTEREST])
                       & pl.col("effective_date_utc").is_between(d0, d1, closed="left"))


def daily_stats(st: Store, ids: list[int], d0: dt.date, d1: dt.date, as_of: dt.datetime | None = None) -> pl.DataFrame:
    """One row per (dataset, instrument_id, trading_date) in [d0, d1) that has any of the three statistics
    known at ``as_of``: the columns of :data:`STAT_COLUMNS` (see the module docstring)."""
    if as_of is not None:
        as_of = as_of.astimezone(dt.UTC)
    pubs = _publications(st, ids, d0, d1, as_of)
    empty = pl.DataFrame(schema={"dataset": pl.String, "instrument_id": pl.Int64, "trading_date": pl.Date,
                                 **STAT_COLUMNS})
    if pubs.height == 0:
        return empty
    if as_of is not None:  # the exact ns (timestamptz keeps µs) decides
        pubs = pubs.filter(pl.col("ts_recv_ns") <= (as_of - EPOCH) // dt.timedelta(microseconds=1) * 1000)
    by = ["dataset", "instrument_id", "stat_type", "trading_date"]
    p = (pubs.rename({"effective_date_utc": "trading_date"})
         .sort([*by, "ts_recv_ns", "sequence", "rec_ordinal"])
         .with_columns(pl.int_range(pl.len()).over(by).alias("_n")))
    last_delete = (p.filter(pl.col("update_action") == DELETE).group_by(by).agg(pl.col("_n").max().alias("_del")))
    live = (p.join(last_delete, on=by, how="left")
            .filter((pl.col("update_action") != DELETE) & (pl.col("_n") > pl.col("_del").fill_null(-1)))
            .with_columns(((pl.col("stat_type") == SETTLEMENT) & ((pl.col("stat_flags") & FINAL_FLAG) > 0))
                          .alias("_final")))
    # the chosen publication: the last one, finals ranked above preliminaries
    chosen = live.sort([*by, "_final", "_n"]).group_by(by, maintain_order=True).last()
    known = pl.col("received_timestamp_utc")
    settle = chosen.filter(pl.col("stat_type") == SETTLEMENT).select(
        *KEY, pl.col("price").alias("settlement_price"), pl.col("_final").alias("settlement_final"),
        known.alias("settlement_known_at"))
    vol = chosen.filter(pl.col("stat_type") == CLEARED_VOLUME).select(
        *KEY, pl.col("quantity").alias("cleared_volume"), known.alias("cleared_volume_known_at"))
    oi = chosen.filter(pl.col("stat_type") == OPEN_INTEREST).select(
        *KEY, pl.col("quantity").alias("open_interest"), known.alias("open_interest_known_at"))
    keys = chosen.select(KEY).unique()
    out = (keys.join(settle, on=KEY, how="left").join(vol, on=KEY, how="left").join(oi, on=KEY, how="left"))
    return pl.concat([empty, out.cast(pl.Schema(STAT_COLUMNS))], how="diagonal_relaxed")
