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
from typing import TYPE_CHECKING, Any

import polars as pl

from hdi.errors import QueryError, allowed_list, did_you_mean
from hdi.research.calendars import as_datetime

if TYPE_CHECKING:
    from hdi.store.base import Store

ADJUSTMENTS = ("none", "difference", "ratio")
DIRECTIONS = ("backward", "forward")
PRICES = ("open_price", "high_price", "low_price", "close_price")
_TS = pl.Datetime("ns", "UTC")
_LOOKBACK = {"1s": dt.timedelta(days=3), "1m": dt.timedelta(days=5), "5m": dt.timedelta(days=5),
             "15m": dt.timedelta(days=5), "1h": dt.timedelta(days=7), "1d": dt.timedelta(days=14)}
OUT_SCHEMA = pl.Schema({
    "dataset": pl.String(), "root": pl.String(), "contract": pl.String(), "instrument_id": pl.Int64(),
    "granularity": pl.String(), "bar_timestamp_utc": _TS, "trading_date": pl.Date(),
    **dict.fromkeys(PRICES, pl.Float64()), "volume": pl.Int64(),
    **{f"{p}_unadjusted": pl.Float64() for p in PRICES}, "adjustment": pl.Float64(), "roll": pl.Boolean(),
})


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
                    store: str | None = None, *, direction: str = "backward",
                    session: str | None = None) -> pl.DataFrame:
    """A continuous series of ``root`` in [start, end) from its stored contracts (see the module
    docstring). ``roll``: ``calendar`` (``days_before_expiry`` trading days before the last trade
    date), ``volume`` or ``open_interest``; ``adjust``: ``none``, ``difference`` or ``ratio``;
    ``direction``: ``backward`` or ``forward``. ``session="exchange"`` with ``granularity="1d"`` joins
    trading-day bars (built from the contracts' stored 1m bars, :mod:`hdi.research.sessions`), each
    labelled by its session open in ``bar_timestamp_utc``.

    Example:
        >>> import hdi
        >>> cl = hdi.read_continuous("CL", "2024-01-01", "2024-07-01", roll="volume", adjust="ratio")  # doctest: +SKIP

    Raises:
        QueryError: a bad argument, no stored chain or statistics for the rule, or no bar of both
            contracts at the same time before a roll (adjust needs one), each in one line.
    """
    from hdi._query import _granularity
    from hdi._timeutil import parse_range
    from hdi.research.chains import chain_from
    from hdi.research.rolls import roll_schedule
    from hdi.research.sessions import check_session
    from hdi.store import open_store

    g = _granularity(granularity)
    session_kind = check_session(session)
    if session_kind != "utc" and g != "1d":
        raise QueryError(f"session '{session}' applies to granularity '1d' (trading-day bars) in read_continuous; "
                         f"got granularity '{g}'")
    adjust = _choice("adjust", adjust, ADJUSTMENTS)
    direction = _choice("direction", direction, DIRECTIONS)
    s, e = parse_range(start, end, error=QueryError)
    if session_kind != "utc":  # trading dates: from the session open of start's to that of end's
        s, e = _session_opens(dataset, root, s, e)
    st = open_store(store)
    with st.session():
        chain = chain_from(st, root, dataset)
        rolls = roll_schedule(st, root, roll, days_before_expiry, dataset, chain=chain)
        seg = segments(chain, rolls, s, e)
        if seg.height == 0:
            return pl.DataFrame(schema=OUT_SCHEMA)
        # each contract from a little before its segment: the bar it shares with the one before it
        if session_kind == "utc":
            bars = _fetch(st, dataset, g, seg, _LOOKBACK[g])
        else:
            bars = _session_fetch(st, dataset, seg, chain, _LOOKBACK[g], session_kind)
    return _assemble(root, chain, seg, bars, adjust, direction, dataset, g)


def _assemble(root: str, chain: pl.DataFrame, seg: pl.DataFrame, bars: pl.DataFrame, adjust: str,
              direction: str, dataset: str, g: str) -> pl.DataFrame:
    seg = seg.with_row_index("seg")
    held = (bars.join(seg, on="instrument_id", how="inner")
            .filter((pl.col("bar_timestamp_utc") >= pl.col("from_ts")) & (pl.col("bar_timestamp_utc") < pl.col("to_ts")))
            .sort("bar_timestamp_utc"))
    n = seg.height
    gaps = [0.0] * n  # gaps[k]: difference at the roll into segment k (k >= 1)
    ratios = [1.0] * n
    if adjust != "none" and n > 1:
        for k, o, nw in _roll_closes(root, seg, bars, adjust):
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
    return (out.with_columns(pl.lit(root).alias("root"), pl.lit(dataset).alias("dataset"), pl.lit(g).alias("granularity"))
            .select(list(OUT_SCHEMA)).cast(OUT_SCHEMA))


def _fetch(st: Store, dataset: str, g: str, seg: pl.DataFrame, back: dt.timedelta) -> pl.DataFrame:
    """The bars of each segment's contract over [its start - back, its end).

    DuckDB: one query by instrument list and time range (a window per contract would cost an OR term
    each, ~4 ms per term), the rows outside a contract's own window dropped in Polars. TimescaleDB: a
    join with the windows as a VALUES list (index scans per window: 2-3x faster there than the
    instrument list, which reads every contract's whole life; slower in DuckDB, which has no index).
    Measured by benchmarks/continuous_read.py."""
    if not st.has_table("ohlcv"):
        return pl.DataFrame(schema={"instrument_id": pl.Int64, "bar_timestamp_utc": _TS,
                                    **dict.fromkeys(PRICES, pl.Float64), "volume": pl.Int64})
    cols = ["instrument_id", "bar_timestamp_utc", *PRICES, "volume"]
    if st.kind == "timescale":
        rows = _windows_join(st, dataset, g, seg, back)
    else:
        no_bound = pl.lit(None, _TS)
        sel = seg.select(pl.lit(dataset).alias("dataset"), "instrument_id").unique().with_columns(from_ts=no_bound,
                                                                                                   to_ts=no_bound)
        hi = seg.get_column("to_ts").max()  # a datetime, or None: no end bound
        rows = st.select("ohlcv", start=as_datetime(seg.get_column("from_ts").min(), "segment start") - back,
                         end=hi if isinstance(hi, dt.datetime) else None,
                         selections=sel, equals={"granularity": g}, columns=cols)
    rows = rows.with_columns(pl.col(list(PRICES)).cast(pl.Float64))
    t = pl.col("bar_timestamp_utc")
    win = seg.select("instrument_id", (pl.col("from_ts") - back).alias("_lo"), pl.col("to_ts").alias("_hi"))
    return (rows.join(win, on="instrument_id").filter((t >= pl.col("_lo")) & (t < pl.col("_hi")))
            .drop("_lo", "_hi").unique(["instrument_id", "bar_timestamp_utc"]).sort("bar_timestamp_utc"))


def _session_opens(dataset: str, root: str, s: dt.datetime, e: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    from hdi.research.calendars import calendar_for, schedule

    sched = schedule(calendar_for(dataset, root), s.date(), e.date() + dt.timedelta(days=10))

    def open_of(d: dt.date) -> dt.datetime:
        later = sched.filter(pl.col("trading_date") >= d)
        return later.get_column("open")[0] if later.height else dt.datetime.combine(d, dt.time(0), dt.UTC)

    return open_of(s.date()), open_of(e.date())


def _session_fetch(st: Store, dataset: str, seg: pl.DataFrame, chain: pl.DataFrame, back: dt.timedelta,
                   kind: str) -> pl.DataFrame:
    """Trading-day bars of the segments' contracts (from their stored 1m bars), labelled by session open."""
    from hdi.research.sessions import session_bars

    names = chain.filter(pl.col("instrument_id").is_in(seg.get_column("instrument_id").implode()))
    lo = as_datetime(seg.get_column("from_ts").min(), "segment start") - back
    hi = as_datetime(seg.get_column("to_ts").max(), "segment end") + dt.timedelta(days=1)
    got = session_bars(st, names.get_column("contract").to_list(), lo.date(), hi.date(), dataset=dataset,
                       session=kind)
    rows = (got.filter(pl.col("dataset") == dataset)
            .select("instrument_id", pl.col("session_open").alias("bar_timestamp_utc"), *PRICES, "volume")
            .with_columns(pl.col(list(PRICES)).cast(pl.Float64)))
    t = pl.col("bar_timestamp_utc")
    win = seg.select("instrument_id", (pl.col("from_ts") - back).alias("_lo"), pl.col("to_ts").alias("_hi"))
    return (rows.join(win, on="instrument_id").filter((t >= pl.col("_lo")) & (t < pl.col("_hi")))
            .drop("_lo", "_hi").unique(["instrument_id", "bar_timestamp_utc"]).sort("bar_timestamp_utc"))


def _windows_join(st: Store, dataset: str, g: str, seg: pl.DataFrame, back: dt.timedelta) -> pl.DataFrame:
    from hdi._tables import OHLCV
    from hdi.store.frames import normalise

    params: list[Any] = [dataset, g]
    placeholders = []
    for iid, lo, hi in seg.select("instrument_id", "from_ts", "to_ts").iter_rows():
        params += [iid, lo - back, hi]
        placeholders.append(f"(CAST(${len(params) - 2} AS BIGINT), CAST(${len(params) - 1} AS TIMESTAMPTZ), "
                            f"CAST(${len(params)} AS TIMESTAMPTZ))")
    # prices as the backend reads them exactly (fixed-point integers), rebuilt by the store's own hook
    px = [st._price_sql(p).replace(f'"{p}"', f'o."{p}"', 1) for p in PRICES]
    sql = (f'SELECT o."instrument_id", o."bar_timestamp_utc", {", ".join(px)}, o."volume" FROM "ohlcv" o '
           f'JOIN (VALUES {", ".join(placeholders)}) AS w(iid, lo, hi) ON o."instrument_id" = w.iid '
           'AND o."bar_timestamp_utc" >= w.lo AND o."bar_timestamp_utc" < w.hi '
           'WHERE o."dataset" = $1 AND o."granularity" = $2')
    rows = st._fix_prices(st.query(sql, params), OHLCV)
    return normalise(rows, OHLCV, ["instrument_id", "bar_timestamp_utc", *PRICES, "volume"])


def _roll_closes(root: str, seg: pl.DataFrame, bars: pl.DataFrame, adjust: str) -> list[tuple[int, float, float]]:
    """(k, old close, new close) at each roll into segment k: the last bar before the roll that both
    contracts have."""
    pairs = pl.DataFrame({
        "k": list(range(1, seg.height)), "instrument_id": seg.get_column("instrument_id").to_list()[:-1],
        "new_id": seg.get_column("instrument_id").to_list()[1:], "cutoff": seg.get_column("from_ts").to_list()[1:],
    }, schema={"k": pl.Int64, "instrument_id": pl.Int64, "new_id": pl.Int64, "cutoff": _TS})
    old = (bars.select("instrument_id", "bar_timestamp_utc", pl.col("close_price").alias("old"))
           .join(pairs, on="instrument_id").filter(pl.col("bar_timestamp_utc") < pl.col("cutoff")))
    new = bars.select(pl.col("instrument_id").alias("new_id"), "bar_timestamp_utc", pl.col("close_price").alias("new"))
    both = (old.join(new, on=["new_id", "bar_timestamp_utc"]).drop_nulls(["old", "new"])
            .sort("k", "bar_timestamp_utc").group_by("k", maintain_order=True).last())
    got = dict(zip(both.get_column("k").to_list(), zip(both.get_column("old").to_list(),
                                                       both.get_column("new").to_list(), strict=True), strict=True))
    out = []
    names = seg.get_column("contract").to_list()
    for k in range(1, seg.height):
        if k not in got:
            raise QueryError(f"no bar of both {names[k - 1]} and {names[k]} at the same time before the roll at "
                             f"{seg.get_column('from_ts')[k]}: the '{adjust}' adjustment needs one; ingest both "
                             f"contracts' bars (parent symbol {root}.FUT), or read with adjust='none'")
        o, nw = got[k]
        if adjust == "ratio" and (o <= 0 or nw <= 0):
            raise QueryError(f"the ratio adjustment at the roll into {names[k]} needs positive prices, got {o} and "
                             f"{nw}; use adjust='difference'")
        out.append((k, o, nw))
    return out


def _prod(xs: list[float]) -> float:
    out = 1.0
    for x in xs:
        out *= x
    return out


def _trading_dates(frame: pl.DataFrame, dataset: str, root: str) -> pl.DataFrame:
    from hdi.research.calendars import calendar_for, schedule, with_trading_date

    if frame.height == 0:
        return frame.with_columns(pl.lit(None, pl.Date).alias("trading_date"))
    ts = frame.get_column("bar_timestamp_utc")
    lo, hi = as_datetime(ts.min(), "bar"), as_datetime(ts.max(), "bar")
    sched = schedule(calendar_for(dataset, root), lo.date() - dt.timedelta(days=1), hi.date() + dt.timedelta(days=7))
    return with_trading_date(frame, "bar_timestamp_utc", sched)
