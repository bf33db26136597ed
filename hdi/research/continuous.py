"""Continuous futures on read: each day's own contract, by a roll schedule hdi decides and stores.

``read_continuous(root, start, end, roll=..., adjust=...)`` joins the stored bars of a root's contracts
(ingested under their own symbols through the parent symbol, e.g. ``CL.FUT``) along a roll schedule
from :mod:`hdi.research.rolls`: the bars of ``[effective_ts of roll k, effective_ts of roll k+1)``
come from roll k's ``to_contract``. Every row names its ``contract`` (raw symbol) and
``instrument_id``.

Adjustment removes the price gap a roll would otherwise show as a move. At each roll the factor comes
from both contracts' closes at the same bar (the last bar of the old contract that the new contract
also has, before the roll takes effect):

- ``difference``: gap = new close - old close, added to every bar before the roll;
- ``ratio``: factor = new close / old close, multiplying every bar before the roll (returns kept);
- ``direction="backward"`` (default) leaves the latest contract in [start, end) as traded and
  adjusts history; ``"forward"`` leaves the first contract as traded and adjusts later ones.

Adjusted prices are in ``open_price`` ... ``close_price``, the traded ones beside them
(``open_price_unadjusted`` ...), with the ``adjustment`` applied (the additive offset, or the factor)
and ``roll`` true on the first bar of each contract after a roll.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl

from hdi.errors import QueryError, allowed_list, did_you_mean

ADJUSTMENTS = ("none", "difference", "ratio")
DIRECTIONS = ("backward", "forward")
PRICES = ("open_price", "high_price", "low_price", "close_price")
_TS = pl.Datetime("ns", "UTC")
_LOOKBACK = {"1s": dt.timedelta(days=3), "1m": dt.timedelta(days=5), "5m": dt.timedelta(days=5),
             "15m": dt.timedelta(days=5), "1h": dt.timedelta(days=7), "1d": dt.timedelta(days=14)}
OUT_SCHEMA: dict[str, Any] = {
    "dataset": pl.String, "root": pl.String, "contract": pl.String, "instrument_id": pl.Int64,
    "granularity": pl.String, "bar_timestamp_utc": _TS, "trading_date": pl.Date,
    **dict.fromkeys(PRICES, pl.Float64), "volume": pl.Int64,
    **{f"{p}_unadjusted": pl.Float64 for p in PRICES}, "adjustment": pl.Float64, "roll": pl.Boolean,
}


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> str:
    v = str(value).strip().lower()
    if v not in allowed:
        raise QueryError(f"{name} '{value}' is not allowed{did_you_mean(v, allowed)}; allowed: {allowed_list(allowed)}")
    return v


def segments(chain: pl.DataFrame, rolls: pl.DataFrame, start: dt.datetime, end: dt.datetime) -> pl.DataFrame:
    """The contract held over each part of [start, end): ``instrument_id, contract, from_ts, to_ts``."""
    far_past = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    far_future = dt.datetime(2262, 1, 1, tzinfo=dt.UTC)
    if rolls.height:
        first = rolls.row(0, named=True)
        ids = [first["from_instrument_id"], *rolls.get_column("to_instrument_id").to_list()]
        names = [first["from_contract"], *rolls.get_column("to_contract").to_list()]
        edges = rolls.get_column("effective_ts").to_list()
        froms, tos = [far_past, *edges], [*edges, far_future]
    else:  # no roll: the nearest contract not yet expired at start
        live = chain.filter(pl.col("expiration") >= start)
        if live.height == 0:
            return pl.DataFrame(schema={"instrument_id": pl.Int64, "contract": pl.String, "from_ts": _TS, "to_ts": _TS})
        c = live.row(0, named=True)
        ids, names, froms, tos = [c["instrument_id"]], [c["contract"]], [far_past], [far_future]
    seg = pl.DataFrame({"instrument_id": ids, "contract": names, "from_ts": froms, "to_ts": tos},
                       schema={"instrument_id": pl.Int64, "contract": pl.String, "from_ts": _TS, "to_ts": _TS})
    return (seg.with_columns(pl.max_horizontal(pl.col("from_ts"), pl.lit(start, _TS)).alias("from_ts"),
                             pl.min_horizontal(pl.col("to_ts"), pl.lit(end, _TS)).alias("to_ts"))
            .filter(pl.col("from_ts") < pl.col("to_ts")))


def read_continuous(root: str, start: object, end: object, granularity: str = "1d", roll: str = "calendar",
                    days_before_expiry: int = 0, adjust: str = "none", dataset: str = "GLBX.MDP3",
                    store: str | None = None, *, direction: str = "backward") -> pl.DataFrame:
    """A continuous series of ``root`` in [start, end) from its stored contracts (see the module
    docstring). ``roll``: ``calendar`` (``days_before_expiry`` trading days before the last trade
    date), ``volume`` or ``open_interest``; ``adjust``: ``none``, ``difference`` or ``ratio``;
    ``direction``: ``backward`` or ``forward``.

    Example:
        >>> import hdi
        >>> cl = hdi.read_continuous("CL", "2024-01-01", "2024-07-01", roll="volume", adjust="ratio")  # doctest: +SKIP

    Raises:
        QueryError: a bad argument, no stored chain or statistics for the rule, or no bar of both
            contracts at the same time before a roll (adjust needs one), each in one line.
    """
    from hdi.query import _granularity
    from hdi.research.chains import chain_from
    from hdi.research.rolls import roll_schedule
    from hdi.store import open_store
    from hdi.timeutil import parse_range

    g = _granularity(granularity)
    adjust = _choice("adjust", adjust, ADJUSTMENTS)
    direction = _choice("direction", direction, DIRECTIONS)
    s, e = parse_range(start, end, error=QueryError)
    st = open_store(store)
    with st.session():
        chain = chain_from(st, root, dataset)
        rolls = roll_schedule(st, root, roll, days_before_expiry, dataset, chain=chain)
        seg = segments(chain, rolls, s, e)
        if seg.height == 0:
            return pl.DataFrame(schema=OUT_SCHEMA)
        # each contract from a little before its segment: the bar it shares with the one before it
        back = _LOOKBACK[g]
        win = seg.with_columns(pl.lit(dataset).alias("dataset"), (pl.col("from_ts") - back).alias("from_ts"))
        bars = st.select("ohlcv", selections=win, equals={"granularity": g, "dataset": dataset},
                         columns=["dataset", "instrument_id", "granularity", "bar_timestamp_utc", *PRICES, "volume"])
    bars = bars.with_columns(pl.col(list(PRICES)).cast(pl.Float64))
    return _assemble(root, chain, seg, bars, adjust, direction, dataset)


def _assemble(root: str, chain: pl.DataFrame, seg: pl.DataFrame, bars: pl.DataFrame, adjust: str,
              direction: str, dataset: str) -> pl.DataFrame:
    seg = seg.with_row_index("seg")
    held = (bars.join(seg, on="instrument_id", how="inner")
            .filter((pl.col("bar_timestamp_utc") >= pl.col("from_ts")) & (pl.col("bar_timestamp_utc") < pl.col("to_ts")))
            .sort("bar_timestamp_utc"))
    n = seg.height
    gaps = [0.0] * n  # gaps[k]: difference at the roll into segment k (k >= 1)
    ratios = [1.0] * n
    if adjust != "none":
        for k in range(1, n):
            before = bars.filter(pl.col("bar_timestamp_utc") < seg.get_column("from_ts")[k])
            old = before.filter(pl.col("instrument_id") == seg.get_column("instrument_id")[k - 1]).select(
                "bar_timestamp_utc", pl.col("close_price").alias("old"))
            new = before.filter(pl.col("instrument_id") == seg.get_column("instrument_id")[k]).select(
                "bar_timestamp_utc", pl.col("close_price").alias("new"))
            both = old.join(new, on="bar_timestamp_utc").sort("bar_timestamp_utc").drop_nulls()
            if both.height == 0:
                a, b = seg.get_column("contract")[k - 1], seg.get_column("contract")[k]
                raise QueryError(f"no {held.get_column('granularity')[0] if held.height else ''} bar of both {a} and "
                                 f"{b} at the same time before the roll at {seg.get_column('from_ts')[k]}: the "
                                 f"'{adjust}' adjustment needs one; ingest both contracts' bars (parent symbol "
                                 f"{root}.FUT), or read with adjust='none'")
            _, o, nw = both.row(-1)
            if adjust == "ratio" and (o <= 0 or nw <= 0):
                raise QueryError(f"the ratio adjustment at the roll into {seg.get_column('contract')[k]} needs "
                                 f"positive prices, got {o} and {nw}; use adjust='difference'")
            gaps[k], ratios[k] = nw - o, nw / o
    adds, mults = [0.0] * n, [1.0] * n
    for j in range(n):
        if direction == "backward":
            adds[j] = sum(gaps[j + 1:])
            mults[j] = _prod(ratios[j + 1:])
        else:
            adds[j] = -sum(gaps[1:j + 1])
            mults[j] = 1.0 / _prod(ratios[1:j + 1])
    factor = pl.DataFrame({"seg": list(range(n)), "_add": adds, "_mult": mults},
                          schema={"seg": pl.UInt32, "_add": pl.Float64, "_mult": pl.Float64})
    out = held.join(factor, on="seg", how="left")
    if adjust == "ratio":
        adj = [(pl.col(p) * pl.col("_mult")).alias(p) for p in PRICES]
        amount = pl.col("_mult")
    elif adjust == "difference":
        adj = [(pl.col(p) + pl.col("_add")).alias(p) for p in PRICES]
        amount = pl.col("_add")
    else:
        adj, amount = [pl.col(p) for p in PRICES], pl.lit(0.0)
    out = out.with_columns(
        *[pl.col(p).alias(f"{p}_unadjusted") for p in PRICES],
        amount.alias("adjustment"),
        ((pl.col("seg") != pl.col("seg").shift(1)) & (pl.int_range(pl.len()) > 0)).alias("roll"),
    ).with_columns(adj)
    out = _trading_dates(out, dataset, root)
    return out.with_columns(pl.lit(root).alias("root")).select(list(OUT_SCHEMA)).cast(OUT_SCHEMA)


def _prod(xs: list[float]) -> float:
    out = 1.0
    for x in xs:
        out *= x
    return out


def _trading_dates(frame: pl.DataFrame, dataset: str, root: str) -> pl.DataFrame:
    from hdi.research.calendars import calendar_for, schedule, with_trading_date

    if frame.height == 0:
        return frame.with_columns(pl.lit(None, pl.Date).alias("trading_date"))
    lo, hi = frame.get_column("bar_timestamp_utc").min(), frame.get_column("bar_timestamp_utc").max()
    sched = schedule(calendar_for(dataset, root), lo.date() - dt.timedelta(days=1), hi.date() + dt.timedelta(days=7))
    return with_trading_date(frame, "bar_timestamp_utc", sched)  # type: ignore[return-value]
