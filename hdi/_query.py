"""Reading stored data back as Polars frames: ``read_bars`` and friends.

Every reader takes symbols (a symbol or a list), ``start`` (inclusive) and ``end`` (exclusive) as
dates or ISO-8601 timestamps in UTC, and an optional store URL (default: ``HDI_STORE``, else the
embedded DuckDB file). Each returned row carries the ``symbol`` it was selected by, the contract's
``raw_symbol`` as of the row's time (see :mod:`hdi._rawsym`; null when nothing stored names the
instrument) and its ``instrument_id``; a continuous symbol over a roll returns each contract on its
own days, a parent (``ES.FUT``) every contract, each row naming its own. An empty result is a typed
empty frame.

Prices come back as Float64 by default; ``prices="decimal"`` gives the exact stored
``Decimal(19, 9)`` values. Timestamps are ``Datetime("ns", "UTC")``, exact to the nanosecond for
tick tables; ``tz="exchange"`` (the venue's zone) or any IANA zone (``tz="America/New_York"``) shows
the same instants in that zone (see :mod:`hdi._tz`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Protocol

import polars as pl

from hdi import _readsql as readsql
from hdi._limits import MAX_INSTRUMENT_ID, MAX_SYMBOLS_PER_REQUEST, SYMBOL_MAX_LEN, shown
from hdi._rawsym import constant_raw_symbols, raw_lookups, with_raw_symbols
from hdi._symbols import is_instrument_id, resolve
from hdi._tables import BBO_GRANULARITIES, GRANULARITIES, TABLES, ColType, Table
from hdi._timeutil import parse_range
from hdi._tz import EXCHANGE, to_zone, zone_for
from hdi.errors import QueryError, allowed_list, beyond_limit, did_you_mean

if TYPE_CHECKING:
    from hdi.store.base import Store

log = logging.getLogger(__name__)

PRICE_MODES = ("float", "decimal")


def _symbols(symbols: str | Sequence[str]) -> list[str]:
    """Symbols split on commas, deduplicated, within hdi's limits (exit code 2 beyond them): at most
    MAX_SYMBOLS_PER_REQUEST, each 1-SYMBOL_MAX_LEN characters, instrument ids 0..MAX_INSTRUMENT_ID."""
    items = [symbols] if isinstance(symbols, str) else list(symbols)
    out = list(dict.fromkeys(s.strip() for item in items for s in str(item).split(",") if s.strip()))
    if not out:
        raise QueryError("no symbols given; pass at least one symbol or instrument id")
    if len(out) > MAX_SYMBOLS_PER_REQUEST:
        raise beyond_limit(QueryError(f"{len(out):,} symbols in one query; allowed: at most "
                                      f"{MAX_SYMBOLS_PER_REQUEST} symbols"))
    for s in out:
        if len(s) > SYMBOL_MAX_LEN:
            raise beyond_limit(QueryError(f"symbol {shown(s)} is {len(s):,} characters long; allowed: "
                                          f"1-{SYMBOL_MAX_LEN} characters, or an instrument id"))
        if is_instrument_id(s) and int(s) > MAX_INSTRUMENT_ID:
            raise beyond_limit(QueryError(f"instrument id {s} is above {MAX_INSTRUMENT_ID}; allowed: an "
                                          f"instrument id from 0 to {MAX_INSTRUMENT_ID}, or a symbol"))
    return out


def read_table(
    table: str, symbols: str | Sequence[str], start: object, end: object, store: str | None = None, *,
    dataset: str | None = None, equals: dict[str, object] | None = None, prices: str = "float",
    tz: str | None = None,
) -> pl.DataFrame:
    """Rows of any data table for symbols in [start, end), led by ``symbol`` and ``raw_symbol``."""
    df, zone = _read_table(table, symbols, start, end, store, dataset=dataset, equals=equals, prices=prices, tz=tz)
    return to_zone(df, zone)


def _read_table(
    table: str, symbols: str | Sequence[str], start: object, end: object, store: str | None = None, *,
    dataset: str | None = None, equals: dict[str, object] | None = None, prices: str = "float",
    tz: str | None = None,
) -> tuple[pl.DataFrame, str | None]:
    """The rows in UTC, and the zone ``tz`` asks to show them in (None: UTC)."""
    from hdi.store import open_store

    if prices not in PRICE_MODES:
        raise QueryError(f"prices '{prices}' is not allowed; allowed: {allowed_list(PRICE_MODES)}")
    zone_for(tz, ())  # a bad zone fails before anything is read
    t = TABLES[table]
    s, e = parse_range(start, end, error=QueryError)
    st = open_store(store)
    syms = _symbols(symbols)
    exchange = tz is not None and str(tz).strip().lower() == EXCHANGE
    with st.session():  # a DuckDB file is attached for this call only: an ingest may write between calls
        # one statement when it is sure of the answer (hdi/_readsql.py); else the steps below
        fast = None if exchange else readsql.read(st, t, syms, s, e, dataset, equals, prices)
        if fast is not None:
            return fast, zone_for(tz, ())
        sel = resolve(st, syms, s, e, dataset)
        windows = _windows(sel)
        rows = st.select_lazy(t.name, start=s, end=e, selections=windows, equals=equals)
        out = _attach_symbols(st, rows, sel, t, prices)
    if not exchange:  # only the exchange zone depends on the datasets
        return out, zone_for(tz, ())
    datasets = set(sel.get_column("dataset").drop_nulls().to_list()) | set(out.get_column("dataset").unique().to_list())
    return out, zone_for(tz, datasets | ({dataset} if dataset else set()))


def _windows(sel: pl.DataFrame) -> pl.DataFrame:
    """The distinct (dataset, instrument_id, from_ts, to_ts) windows of a selection."""
    cols = ["dataset", "instrument_id", "from_ts", "to_ts"]
    if sel.get_column("symbol").n_unique() <= 1:  # one symbol's windows are merged: distinct already
        return pl.DataFrame([sel.get_column(c) for c in cols])
    return sel.lazy().select(cols).unique(maintain_order=True).collect()


@contextmanager
def hold(store: str | None = None) -> Iterator[None]:
    """Hold a store across the reads of a block: faster reads, and the file is yours until the block ends.

    hdi holds a DuckDB file only during each call, so that another process (an ingest, a
    ``duckdb.connect``) can use it between calls; each read then pays for attaching and detaching
    the file (what reads looked up, symbol windows, raw-symbol intervals and definitions, is kept
    while the file's content is unchanged, see :func:`hdi.store.duckdb_share.content_token`).
    Inside ``with hdi.hold(store):`` the file stays attached read-only, and what the reads looked
    up is kept, since nothing can change the file meanwhile: other processes can still
    read it, but a writer (an ``hdi ingest``) waits until the block ends (up to
    ``HDI_LOCK_TIMEOUT``). A write from this process inside the block re-attaches the file
    read-write and starts the lookups afresh. At the block's end the file is released, as after any
    call. For TimescaleDB (whose read connection lasts for the process) it changes nothing.

    Example:
        >>> import hdi
        >>> with hdi.hold():  # doctest: +SKIP
        ...     bars = {s: hdi.read_bars(s, "2024-01-01", "2024-02-01") for s in ("CL.c.0", "NG.c.0")}
    """
    from hdi.store import open_store

    with open_store(store).hold():
        yield


def _attach_symbols(st: Store, rows: pl.DataFrame | pl.LazyFrame, sel: pl.DataFrame, t: Table,
                    prices: str) -> pl.DataFrame:
    """Label each row with the symbol(s) that selected it (a row can match several symbols) and,
    unless the table has its own, the contract's raw symbol as of the row's time."""
    tc = t.time_column
    symbols = sel.get_column("symbol")
    if symbols.n_unique() == 1:
        # one symbol: ``rows`` are the rows its windows select (Store.select applied exactly these
        # windows), each once (its windows of one dataset and instrument are merged, disjoint)
        out = rows.lazy().with_columns(pl.lit(symbols[0], pl.String).alias("symbol"))
    else:
        s = sel.lazy().rename({"dataset": "_sel_dataset"})
        out = rows.lazy().join(s, on="instrument_id", how="inner").filter(
            (pl.col("_sel_dataset").is_null() | (pl.col("_sel_dataset") == pl.col("dataset")))
            & (pl.col(tc) >= pl.col("from_ts")) & (pl.col(tc) < pl.col("to_ts"))
        )
    order = ["symbol", tc, "instrument_id"] + [c for c in ("ts_recv_ns", "rec_ordinal") if c in t.names]
    lead = ["symbol"]
    # DuckDB's select returns rows ORDER BY time, instrument_id, ts_recv_ns, rec_ordinal: for one
    # symbol that is ``order``, unless the time is rebuilt from a finer *_ns column (it sorts ties)
    ordered = (st.kind == "duckdb" and symbols.n_unique() == 1 and isinstance(rows, pl.LazyFrame)
               and tc not in dict(t.ns_columns))
    if "raw_symbol" not in t.names:
        ids = sel.get_column("instrument_id").to_list()
        lookups = raw_lookups(st, ids)
        const = constant_raw_symbols(lookups[0], sel)  # one contract per instrument: no join
        out = with_raw_symbols(st, out, tc, ids, lookups, constant=const)
        # else the definitions' as-of joins sorted them by time
        ordered = ordered and (const is not None or lookups[1].height == 0)
        lead.append("raw_symbol")
    out = out.select(*lead, *t.names)
    if not ordered:
        out = out.sort(order)
    if prices == "float":
        cols = [c.name for c in t.columns if c.type in (ColType.PRICE, ColType.STAT)]
        out = out.with_columns(pl.col(cols).cast(pl.Float64))
    return out.collect()


def _granularity(value: str) -> str:
    g = str(value).strip().lower()
    if g not in GRANULARITIES:
        raise QueryError(f"granularity '{value}' is not allowed{did_you_mean(g, GRANULARITIES)}; "
                         f"allowed: {allowed_list(GRANULARITIES)}")
    return g


def read_bars(symbols: str | Sequence[str], start: object, end: object, granularity: str = "1d",
              store: str | None = None, *, dataset: str | None = None, prices: str = "float",
              tz: str | None = None, session: str | None = None, as_of: object = None) -> pl.DataFrame:
    """OHLCV bars of one granularity (1s, 1m, 5m, 15m, 1h, 1d, eod), labelled by bar start.

    ``session=None`` (or ``"utc"``) returns the bars as stored (Databento's ``1d`` bar is a UTC day).
    ``session="exchange"`` builds bars on the instrument's exchange calendar from the stored 1m bars
    (:mod:`hdi.research.sessions`, docs/sessions.md): for ``1d``, one bar per trading date labelled
    ``trading_date`` with the session's UTC ``session_open``/``session_close``, ``early_close``, and the
    ``settlement_price``, ``cleared_volume`` and ``open_interest`` known ``as_of`` an instant (None: all
    stored), each with its ``*_known_at`` time; ``start``/``end`` are then trading dates (end
    exclusive). For 5m/15m/1h, bars anchored at the session open. ``session="extended"``: the same on
    the NYSE pre/post-market session (equities).

    An empty result for a granularity the store holds no bars of at all logs a warning naming the
    recipe that builds them (5m and 15m bars are built from 1m bars by their own recipes).

    Example:
        >>> import hdi
        >>> df = hdi.read_bars("CL.c.0", "2024-01-01", "2024-02-01")  # doctest: +SKIP
        >>> td = hdi.read_bars("CL.c.0", "2024-11-25", "2024-12-02", session="exchange")  # doctest: +SKIP
    """
    g = _granularity(granularity)
    from hdi.research.sessions import check_session

    kind = check_session(session)
    if kind != "utc":
        return _read_session_bars(symbols, start, end, g, store, dataset=dataset, prices=prices, tz=tz,
                                  session=kind, as_of=as_of)
    if as_of is not None:
        raise QueryError("as_of applies to trading-day bars; allowed: as_of with session='exchange' or "
                         "'extended' and granularity '1d'")
    df, zone = _read_table("ohlcv", symbols, start, end, store, dataset=dataset, equals={"granularity": g},
                           prices=prices, tz=tz)
    if df.height == 0:
        _hint_granularity(store, g)
    return to_zone(df, zone)


def _read_session_bars(symbols: str | Sequence[str], start: object, end: object, g: str, store: str | None, *,
                       dataset: str | None, prices: str, tz: str | None, session: str, as_of: object) -> pl.DataFrame:
    """``read_bars(..., session="exchange"|"extended")``: trading-day or session-anchored bars."""
    from hdi._timeutil import parse_time
    from hdi.research import sessions, stats
    from hdi.store import open_store

    if prices not in PRICE_MODES:
        raise QueryError(f"prices '{prices}' is not allowed; allowed: {allowed_list(PRICE_MODES)}")
    zone_for(tz, ())
    syms = _symbols(symbols)
    if g in sessions.INTRADAY:
        if as_of is not None:
            raise QueryError("as_of applies to daily bars; allowed: as_of with granularity '1d'")
        df = sessions.session_intraday(store, syms, start, end, g, dataset=dataset, session=session, prices=prices)
    elif g == "1d":
        when = None if as_of is None else parse_time(as_of, "as_of", error=QueryError)
        st = open_store(store)
        with st.session():
            df = sessions.session_bars(st, syms, start, end, dataset=dataset, session=session, prices=prices)
            d0, d1 = sessions.trading_dates(start, end)
            known = stats.daily_stats(st, df.get_column("instrument_id").unique().to_list(), d0, d1, when)
        if prices == "float":
            known = known.with_columns(pl.col("settlement_price").cast(pl.Float64))
        df = df.join(known, on=stats.KEY, how="left", maintain_order="left")
    else:
        raise QueryError(f"granularity '{g}' has no session bars; allowed with session='{session}': "
                         f"{allowed_list(['1d', *sessions.INTRADAY])}")
    datasets = set(df.get_column("dataset").unique().to_list()) | ({dataset} if dataset else set())
    return to_zone(df, zone_for(tz, datasets))


def _hint_granularity(store: str | None, g: str) -> None:
    """Warn when no bar of granularity ``g`` was ever stored, naming the recipe that builds them."""
    from hdi.store import open_store

    st = open_store(store)
    if st.has_table("ohlcv") and st.query('SELECT 1 AS x FROM "ohlcv" WHERE granularity = $1 LIMIT 1', [g]).height:
        return
    cmd = f"hdi ingest --recipe recipes/ohlcv_{g}.yaml"
    if g in ("5m", "15m"):
        log.warning("no %s bars are stored in %s: Databento publishes 1s, 1m, 1h and 1d bars only; %s bars are "
                    "built from 1m bars by their own recipe: %s", g, st.display_url, g, cmd)
    else:
        log.warning("no %s bars are stored in %s; load them with: %s", g, st.display_url, cmd)


def read_trades(symbols: str | Sequence[str], start: object, end: object, store: str | None = None, *,
                dataset: str | None = None, prices: str = "float", tz: str | None = None) -> pl.DataFrame:
    """Trades with ns timestamps and a deterministic ``trade_id``.

    ``trade_id`` is ``<instrument_id>-<ts_recv_ns>-<sequence>-<rec_ordinal>``: unique within a
    dataset, and the same on every re-ingest of the same data. Ranges filter on ``ts_recv``
    (``received_timestamp_utc``), as Databento's own requests do.
    """
    df = read_table("trades", symbols, start, end, store, dataset=dataset, prices=prices, tz=tz)
    tid = pl.concat_str([pl.col(c).cast(pl.String) for c in ("instrument_id", "ts_recv_ns", "sequence",
                                                              "rec_ordinal")], separator="-")
    return df.with_columns(tid.alias("trade_id")).select("symbol", "raw_symbol", "trade_id", *TABLES["trades"].names)


def read_tbbo(symbols: str | Sequence[str], start: object, end: object, store: str | None = None, *,
              dataset: str | None = None, prices: str = "float", tz: str | None = None) -> pl.DataFrame:
    """Each trade with the best bid and offer just before it."""
    return read_table("tbbo", symbols, start, end, store, dataset=dataset, prices=prices, tz=tz)


def read_mbp1(symbols: str | Sequence[str], start: object, end: object, store: str | None = None, *,
              dataset: str | None = None, prices: str = "float", tz: str | None = None) -> pl.DataFrame:
    """Top-of-book events (mbp-1)."""
    return read_table("mbp1", symbols, start, end, store, dataset=dataset, prices=prices, tz=tz)


def read_statistics(symbols: str | Sequence[str], start: object, end: object, store: str | None = None, *,
                    dataset: str | None = None, latest: bool = True, prices: str = "float",
                    tz: str | None = None) -> pl.DataFrame:
    """Statistics published in [start, end) (by ``ts_recv``).

    With ``latest=True`` (the default) one row per (instrument, statistic, effective date): the
    last publication by ``ts_recv``; when that last publication is a delete (update_action 2) the
    statistic is withdrawn and no row is returned. ``latest=False`` (``hdi query
    --all-publications``) returns every publication, deletes included.
    """
    df = read_table("statistics", symbols, start, end, store, dataset=dataset, prices=prices, tz=tz)
    if not latest or df.height == 0:
        return df
    by = ["symbol", "dataset", "instrument_id", "stat_type", "effective_date_utc"]
    # ties on ts_recv (a publication and its delete in one packet) go by the venue's sequence
    last = df.sort([*by, "ts_recv_ns", "sequence", "rec_ordinal"]).group_by(by, maintain_order=True).last()
    return (last.filter(pl.col("update_action") != 2).select(df.columns)
            .sort(["symbol", "effective_date_utc", "stat_type", "instrument_id"]))


def read_definitions(symbols: str | Sequence[str], start: object, end: object, store: str | None = None, *,
                     dataset: str | None = None, prices: str = "float", tz: str | None = None) -> pl.DataFrame:
    """Instrument definitions received in [start, end), each with its validity interval.

    ``valid_from`` is the definition's ``received_timestamp_utc``; ``valid_to`` the next stored
    definition of the same instrument, received in the window or after it (null for the latest one).
    """
    df, zone = _read_table("instruments", symbols, start, end, store, dataset=dataset, prices=prices, tz=tz)
    by = ["dataset", "instrument_id"]
    times = df.select(*by, "received_timestamp_utc")
    if df.height:
        from hdi.store import open_store

        no_bound = pl.lit(None, pl.Datetime("ns", "UTC"))
        sel = df.select(*by).unique().with_columns(from_ts=no_bound, to_ts=no_bound)
        later = open_store(store).select("instruments", start=parse_range(start, end, error=QueryError)[1],
                                         selections=sel, columns=[*by, "received_timestamp_utc"])
        times = pl.concat([times, later.group_by(by).agg(pl.col("received_timestamp_utc").min())])
    nxt = (times.unique().sort([*by, "received_timestamp_utc"])
           .with_columns(pl.col("received_timestamp_utc").shift(-1).over(by).alias("valid_to")))
    return to_zone(df.join(nxt, on=[*by, "received_timestamp_utc"], how="left")
                   .with_columns(pl.col("received_timestamp_utc").alias("valid_from")), zone)


# ---- issue 13: mbo, mbp-10, bbo, cbbo, status, imbalance --------------------------------------------
def read_mbo(symbols: str | Sequence[str], start: object, end: object, store: str | None = None, *,
             dataset: str | None = None, prices: str = "float", tz: str | None = None) -> pl.DataFrame:
    """Market by order: every order book event (add, cancel, modify, clear, trade, fill), order by order."""
    return read_table("mbo", symbols, start, end, store, dataset=dataset, prices=prices, tz=tz)


def read_mbp10(symbols: str | Sequence[str], start: object, end: object, store: str | None = None, *,
               dataset: str | None = None, prices: str = "float", tz: str | None = None) -> pl.DataFrame:
    """Ten-level book events (mbp-10): each event with the ten best bid and ask levels after it, one row
    per event, ``bid_price_00`` .. ``ask_count_09`` (level 00 is the best)."""
    return read_table("mbp10", symbols, start, end, store, dataset=dataset, prices=prices, tz=tz)


def _snapshot_granularity(value: str) -> str:
    g = str(value).strip().lower()
    if g not in BBO_GRANULARITIES:
        raise QueryError(f"granularity '{value}' is not allowed for bbo/cbbo; allowed: {allowed_list(BBO_GRANULARITIES)}")
    return g


def read_bbo(symbols: str | Sequence[str], start: object, end: object, granularity: str = "1s",
             store: str | None = None, *, dataset: str | None = None, prices: str = "float",
             tz: str | None = None) -> pl.DataFrame:
    """Best bid and offer sampled every second (``granularity="1s"``, bbo-1s) or minute (``"1m"``, bbo-1m),
    each row labelled by the end of its interval (``received_timestamp_utc``)."""
    return read_table("bbo", symbols, start, end, store, dataset=dataset, prices=prices, tz=tz,
                      equals={"granularity": _snapshot_granularity(granularity)})


def read_cbbo(symbols: str | Sequence[str], start: object, end: object, granularity: str = "1s",
              store: str | None = None, *, dataset: str | None = None, prices: str = "float",
              tz: str | None = None) -> pl.DataFrame:
    """Consolidated best bid and offer across venues (cbbo-1s / cbbo-1m, e.g. OPRA options), with the
    publisher of each side's best price."""
    return read_table("cbbo", symbols, start, end, store, dataset=dataset, prices=prices, tz=tz,
                      equals={"granularity": _snapshot_granularity(granularity)})


def read_status(symbols: str | Sequence[str], start: object, end: object, store: str | None = None, *,
                dataset: str | None = None, tz: str | None = None) -> pl.DataFrame:
    """Trading status changes (pre-open, trading, halt, pause, close, ...) received in [start, end)."""
    return read_table("status", symbols, start, end, store, dataset=dataset, tz=tz)


def read_imbalance(symbols: str | Sequence[str], start: object, end: object, store: str | None = None, *,
                   dataset: str | None = None, prices: str = "float", tz: str | None = None) -> pl.DataFrame:
    """Auction imbalance messages."""
    return read_table("imbalance", symbols, start, end, store, dataset=dataset, prices=prices, tz=tz)


class _SnapshotReader(Protocol):
    """read_bbo / read_cbbo: a reader with a granularity."""

    def __call__(self, symbols: str | Sequence[str], start: object, end: object, granularity: str = "1s",
                 store: str | None = None, *, dataset: str | None = None, prices: str = "float",
                 tz: str | None = None) -> pl.DataFrame: ...


def _snapshot_reader(reader: _SnapshotReader, granularity: str) -> Reader:
    def read(symbols: str | Sequence[str], start: object, end: object, *, store: str | None = None,
             dataset: str | None = None, prices: str = "float", tz: str | None = None) -> pl.DataFrame:
        return reader(symbols, start, end, granularity=granularity, store=store, dataset=dataset, prices=prices,
                      tz=tz)
    return read


def _status_reader(symbols: str | Sequence[str], start: object, end: object, *, store: str | None = None,
                   dataset: str | None = None, prices: str = "float", tz: str | None = None) -> pl.DataFrame:
    if prices not in PRICE_MODES:
        raise QueryError(f"prices '{prices}' is not allowed; allowed: {allowed_list(PRICE_MODES)}")
    return read_status(symbols, start, end, store, dataset=dataset, tz=tz)


ISSUE13_READERS: dict[str, Reader] = {
    "mbo": read_mbo, "mbp-10": read_mbp10, "bbo-1s": _snapshot_reader(read_bbo, "1s"),
    "bbo-1m": _snapshot_reader(read_bbo, "1m"), "cbbo-1s": _snapshot_reader(read_cbbo, "1s"),
    "cbbo-1m": _snapshot_reader(read_cbbo, "1m"), "status": _status_reader, "imbalance": read_imbalance,
}
# ---- end of issue 13 readers ----------------------------------------------------------------------


class Reader(Protocol):
    """What every ``read_*`` function accepts (``hdi query`` calls them by ``--schema``)."""

    def __call__(self, symbols: str | Sequence[str], start: object, end: object, *, store: str | None = None,
                 dataset: str | None = None, prices: str = "float", tz: str | None = None) -> pl.DataFrame: ...


READERS: dict[str, Reader] = {
    "ohlcv": read_bars, "trades": read_trades, "tbbo": read_tbbo, "mbp-1": read_mbp1,
    "statistics": read_statistics, "definition": read_definitions,
    **ISSUE13_READERS,
}
