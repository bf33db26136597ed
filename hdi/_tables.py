"""The logical schema every stage agrees on: tables, columns, keys and their Polars types.

Both stores create exactly these columns (``store/schema.py`` turns them into DDL per backend), the
Patito models in ``validate/models.py`` are derived from them, and recipes must end with frames
whose columns are a table's columns. Column names follow PRD section 7.

Conventions:

- Prices are exact decimals at scale 9 (``PRICE``: DECIMAL(19,9)), equal to DBN fixed-point / 1e9.
- Timestamps are UTC. ``TS`` columns are ``Datetime("ns", "UTC")`` in frames; TimescaleDB keeps
  microseconds in ``timestamptz``, so tables whose events are sub-microsecond also carry the exact
  nanoseconds in an int64 ``*_ns`` column, and reads rebuild ns timestamps from those.
- Every table has a natural key that includes its hypertable time column, so that writing the same
  rows again adds nothing. Tick tables key on what DBN carries: instrument, ``ts_recv`` (ns),
  ``sequence`` and ``rec_ordinal``, the position of a record among records sharing the first three
  in the source stream (0 for almost every record). Two genuinely different trades in the same
  nanosecond therefore both survive, and a re-run of the same data is a no-op.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import polars as pl

from hdi._schemas import SCHEMAS
from hdi.errors import QueryError, allowed_list, did_you_mean


class ColType(Enum):
    """Logical column types, mapped to SQL per backend and to Polars here."""

    TEXT = "text"
    I16 = "i16"
    I32 = "i32"
    I64 = "i64"
    PRICE = "price"  # DECIMAL(19,9)
    STAT = "stat"  # DECIMAL(28,9): a statistic can be a price or an int64 quantity
    TS = "ts"
    DATE = "date"
    F64 = "f64"

    @property
    def polars(self) -> pl.DataType:
        return _POLARS[self]


_POLARS: dict[ColType, pl.DataType] = {
    ColType.TEXT: pl.String(),
    ColType.I16: pl.Int16(),
    ColType.I32: pl.Int32(),
    ColType.I64: pl.Int64(),
    ColType.PRICE: pl.Decimal(19, 9),
    ColType.STAT: pl.Decimal(28, 9),
    ColType.TS: pl.Datetime("ns", "UTC"),
    ColType.DATE: pl.Date(),
    ColType.F64: pl.Float64(),
}


@dataclass(frozen=True)
class Column:
    name: str
    type: ColType
    nullable: bool = False
    doc: str = ""


@dataclass(frozen=True)
class Table:
    """One logical table. ``time_column`` is the hypertable dimension and range-filter column."""

    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    time_column: str
    chunk_interval: str | None  # TimescaleDB chunk interval; None = a plain table
    doc: str
    ns_columns: tuple[tuple[str, str], ...] = ()  # (timestamp column, its exact *_ns column)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)

    @property
    def polars_schema(self) -> dict[str, pl.DataType]:
        return {c.name: c.type.polars for c in self.columns}

    @property
    def price_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.type in (ColType.PRICE, ColType.STAT)]


def _c(name: str, t: ColType, nullable: bool = False, doc: str = "") -> Column:
    return Column(name, t, nullable, doc)


T, I16, I32, I64, P, TS, D = (ColType.TEXT, ColType.I16, ColType.I32, ColType.I64, ColType.PRICE,
                              ColType.TS, ColType.DATE)

_SOURCE = (
    _c("dataset", T, doc="Databento dataset, e.g. GLBX.MDP3; instrument ids are unique within it"),
    _c("instrument_id", I64, doc="the numeric instrument id DBN carries"),
)
_TICK_TIMES = (
    _c("received_timestamp_utc", TS, doc="ts_recv: when the venue feed was received (hypertable time)"),
    _c("ts_event_ns", I64, doc="ts_event, exact nanoseconds since the epoch"),
    _c("ts_recv_ns", I64, doc="ts_recv, exact nanoseconds since the epoch"),
)
_FLAGS = _c("flags", I16, doc="DBN flags bit field (F_LAST=128, F_TOB=64, F_SNAPSHOT=32, ...)")
_TICK_TAIL = (
    _c("sequence", I64, doc="venue message sequence number"),
    _c("ts_in_delta", I32, True, doc="ts_recv minus the venue's sending time, ns"),
    _c("publisher_id", I32, doc="Databento publisher id"),
    _c("rec_ordinal", I32, doc="position among records with the same instrument, ts_recv and sequence"),
    _c("data_source", T, doc="vendor, 'databento'"),
)
_TICK_KEY = ("instrument_id", "received_timestamp_utc", "ts_recv_ns", "sequence", "rec_ordinal", "dataset")

OHLCV = Table(
    name="ohlcv",
    doc="OHLCV bars of every granularity (1s, 1m, 5m, 15m, 1h, 1d, eod); a bar is labelled by its start.",
    columns=(
        *_SOURCE,
        _c("granularity", T, doc="bar size: 1s, 1m, 5m, 15m, 1h, 1d, or eod (end-of-day, ohlcv-eod)"),
        _c("bar_timestamp_utc", TS, doc="start of the bar interval (DBN ts_event)"),
        _c("open_price", P, doc="first trade price of the interval"),
        _c("high_price", P, doc="highest trade price"), _c("low_price", P, doc="lowest trade price"),
        _c("close_price", P, doc="last trade price of the interval"),
        _c("volume", I64, doc="total volume in the interval"),
        _c("trade_count", I32, True, doc="trades in the bar, when the source has it (DBN OHLCV does not)"),
        _c("vwap", P, True, doc="volume-weighted average price, when the source has it"),
        _c("publisher_id", I32, doc="Databento publisher id (one per venue: OPRA has a bar per venue)"),
        _c("data_source", T, doc="vendor, 'databento'"),
    ),
    key=("instrument_id", "granularity", "bar_timestamp_utc", "publisher_id", "dataset"),
    time_column="bar_timestamp_utc",
    chunk_interval="14 days",
)

TRADES = Table(
    name="trades",
    doc="Every trade (Databento trades schema).",
    columns=(
        *_SOURCE,
        _c("trade_timestamp_utc", TS, doc="ts_event: when the trade happened (matching engine)"),
        *_TICK_TIMES,
        _c("price", P, doc="trade price"), _c("size", I64, doc="trade quantity"),
        _c("aggressor_side", T, True, doc="'buy' (DBN side B), 'sell' (A), NULL when none (N)"),
        _FLAGS,
        *_TICK_TAIL,
    ),
    key=_TICK_KEY,
    time_column="received_timestamp_utc",
    chunk_interval="1 day",
    ns_columns=(("trade_timestamp_utc", "ts_event_ns"), ("received_timestamp_utc", "ts_recv_ns")),
)

TBBO = Table(
    name="tbbo",
    doc="Each trade with the best bid and offer just before it (Databento tbbo schema).",
    columns=(
        *_SOURCE,
        _c("quote_timestamp_utc", TS, doc="ts_event of the trade that triggered the snapshot"),
        *_TICK_TIMES,
        _c("bid_price", P, True, doc="best bid before the trade; NULL when the side is empty"),
        _c("bid_size", I64, doc="quantity at the best bid"), _c("bid_count", I64, doc="orders at the best bid"),
        _c("ask_price", P, True, doc="best offer before the trade; NULL when the side is empty"),
        _c("ask_size", I64, doc="quantity at the best offer"), _c("ask_count", I64, doc="orders at the best offer"),
        _c("trade_price", P, doc="the trade's price"), _c("trade_size", I64, doc="the trade's quantity"),
        _c("trade_side", T, True, doc="'buy', 'sell' or NULL, as aggressor_side in trades"),
        _FLAGS,
        *_TICK_TAIL,
    ),
    key=_TICK_KEY,
    time_column="received_timestamp_utc",
    chunk_interval="1 day",
    ns_columns=(("quote_timestamp_utc", "ts_event_ns"), ("received_timestamp_utc", "ts_recv_ns")),
)

MBP1 = Table(
    name="mbp1",
    doc="Top-of-book updates: every event with the book's best bid and offer after it (mbp-1 schema).",
    columns=(
        *_SOURCE,
        _c("event_timestamp_utc", TS, doc="ts_event of the book event"),
        *_TICK_TIMES,
        _c("action", T, doc="A add, C cancel, M modify, R clear, T trade, F fill, N none"),
        _c("side", T, True, doc="'buy' (B), 'sell' (A), NULL when none (N)"),
        _c("depth", I16, doc="book level the event changed"),
        _c("price", P, True, doc="the event's price; NULL when undefined"), _c("size", I64),
        _c("bid_price", P, True), _c("bid_size", I64), _c("bid_count", I64),
        _c("ask_price", P, True), _c("ask_size", I64), _c("ask_count", I64),
        _FLAGS,
        *_TICK_TAIL,
    ),
    key=_TICK_KEY,
    time_column="received_timestamp_utc",
    chunk_interval="1 day",
    ns_columns=(("event_timestamp_utc", "ts_event_ns"), ("received_timestamp_utc", "ts_recv_ns")),
)

STATISTICS = Table(
    name="statistics",
    doc="Venue statistics (settlement, open interest, session high/low, ...), every publication kept.",
    columns=(
        *_SOURCE,
        _c("stat_type", I16, doc="DBN StatType number"),
        _c("statistic_name", T, doc="StatType name, e.g. SETTLEMENT_PRICE, OPEN_INTEREST"),
        _c("statistic_value_numeric", ColType.STAT, True,
           doc="the value in its own unit: a price for price stats, a quantity for volume/OI stats"),
        _c("statistic_value_text", T, True, doc="a textual value where the statistic has one"),
        _c("effective_date_utc", D, doc="UTC date of ts_ref (session date); of ts_event when ts_ref is undefined"),
        _c("price", P, True, doc="raw DBN price field (NULL when undefined)"),
        _c("quantity", I64, True, doc="raw DBN quantity field (NULL when undefined)"),
        _c("ts_ref_ns", I64, True, doc="ts_ref, exact ns (NULL when undefined)"),
        _c("event_timestamp_utc", TS, doc="ts_event"),
        *_TICK_TIMES,
        _c("update_action", I16, doc="1 = new, 2 = delete"),
        _c("stat_flags", I16, doc="venue-specific flags (e.g. settlement final/actual bits)"),
        _c("channel_id", I32, doc="venue channel"),
        *_TICK_TAIL,
    ),
    key=_TICK_KEY,
    time_column="received_timestamp_utc",
    chunk_interval="30 days",
    ns_columns=(("event_timestamp_utc", "ts_event_ns"), ("received_timestamp_utc", "ts_recv_ns")),
)

INSTRUMENTS = Table(
    name="instruments",
    doc="Instrument definitions, one row per publication; valid from ts_recv until the next one.",
    columns=(
        *_SOURCE,
        _c("raw_symbol", T, doc="venue symbol, e.g. CLZ4, ESH5, SPY"),
        _c("instrument_class", T, True, doc="F future, O option, S spread, K stock, ..."),
        _c("security_type", T, True), _c("asset", T, True, doc="product, e.g. CL, ES"),
        _c("product_group", T, True, doc="DBN 'group'"), _c("exchange", T, True), _c("cfi", T, True),
        _c("currency", T, True), _c("underlying", T, True),
        _c("expiration", TS, True), _c("activation", TS, True),
        _c("min_price_increment", P, True), _c("display_factor", P, True),
        _c("unit_of_measure", T, True), _c("unit_of_measure_qty", P, True),
        _c("contract_multiplier", I32, True), _c("strike_price", P, True),
        _c("high_limit_price", P, True), _c("low_limit_price", P, True),
        _c("security_update_action", T, True, doc="A add, M modify, D delete"),
        _c("event_timestamp_utc", TS, doc="ts_event"),
        _c("received_timestamp_utc", TS, doc="ts_recv: start of this definition's validity"),
        _c("ts_event_ns", I64, doc="ts_event, exact nanoseconds since the epoch"),
        _c("ts_recv_ns", I64, doc="ts_recv, exact nanoseconds since the epoch"),
        _c("publisher_id", I32),
        _c("data_source", T),
    ),
    key=("instrument_id", "received_timestamp_utc", "ts_recv_ns", "dataset"),
    time_column="received_timestamp_utc",
    chunk_interval=None,
    ns_columns=(("event_timestamp_utc", "ts_event_ns"), ("received_timestamp_utc", "ts_recv_ns")),
)

SYMBOLOGY = Table(
    name="symbology",
    doc="symbol -> instrument_id by UTC date interval [start_date, end_date), from DBN metadata, "
        "symbology.resolve and definitions.",
    columns=(
        _c("dataset", T), _c("stype_in", T, doc="raw_symbol, continuous, parent, instrument_id, ..."),
        _c("symbol", T, doc="the symbol as requested, e.g. CL.c.0, ESH5, ES.FUT, SPY"),
        _c("instrument_id", I64), _c("start_date", D), _c("end_date", D, doc="exclusive"),
        _c("source", T, doc="metadata, resolve, definition, or resolve_raw: the raw symbols (stype_in raw_symbol) "
                            "of the instruments a continuous or parent request resolved to"),
    ),
    key=("dataset", "stype_in", "symbol", "instrument_id", "start_date", "end_date"),
    time_column="start_date",
    chunk_interval=None,
)

# ---- issue 13: order book, BBO snapshots, venue status and auction imbalance --------------------
_EVENT_NS = (("event_timestamp_utc", "ts_event_ns"), ("received_timestamp_utc", "ts_recv_ns"))
_SIDE = "'buy' (DBN side B), 'sell' (A), NULL when none (N)"
_BOOK_ACTION = "A add, C cancel, M modify, R clear, T trade, F fill, N none"

MBO = Table(
    name="mbo",
    doc="Market by order: every order book event, order by order (Databento mbo schema).",
    columns=(
        *_SOURCE,
        _c("event_timestamp_utc", TS, doc="ts_event of the book event"),
        *_TICK_TIMES,
        _c("order_id", I64, doc="the venue's order id"),
        _c("action", T, doc=_BOOK_ACTION),
        _c("side", T, True, doc=_SIDE),
        _c("price", P, True, doc="the order's price; NULL when undefined"),
        _c("size", I64, doc="the order's quantity"),
        _c("channel_id", I16, doc="venue channel"),
        _FLAGS,
        _c("sequence", I64, doc="venue message sequence number"),
        _c("ts_in_delta", I32, True, doc="ts_recv minus the venue's sending time, ns"),
        _c("publisher_id", I32, doc="Databento publisher id"),
        _c("rec_ordinal", I32, doc="position among the instrument's records with the same ts_recv and publisher "
                                   "(one packet), in stream order"),
        _c("data_source", T, doc="vendor, 'databento'"),
    ),
    # side is nullable (N) and a key column cannot be: rec_ordinal (the record's position in its packet)
    # already tells apart two records that differ only in side, or not at all, so both are kept.
    key=("instrument_id", "received_timestamp_utc", "ts_recv_ns", "sequence", "order_id", "action",
         "publisher_id", "rec_ordinal", "dataset"),
    time_column="received_timestamp_utc",
    chunk_interval="1 day",
    ns_columns=_EVENT_NS,
)

MBP10_LEVELS = 10


def _levels(n: int) -> tuple[Column, ...]:
    out: list[Column] = []
    for i in range(n):
        lv = f"{i:02d}"
        out += [_c(f"bid_price_{lv}", P, True, doc=f"bid price at level {i} (0 = best); NULL when empty"),
                _c(f"bid_size_{lv}", I64), _c(f"bid_count_{lv}", I64),
                _c(f"ask_price_{lv}", P, True, doc=f"ask price at level {i} (0 = best); NULL when empty"),
                _c(f"ask_size_{lv}", I64), _c(f"ask_count_{lv}", I64)]
    return tuple(out)


MBP10 = Table(
    name="mbp10",
    doc="Market by price, ten levels: every book event with the ten best bid and ask levels after it "
        "(Databento mbp-10 schema), one row per event, levels as columns (see docs/schemas.md).",
    columns=(
        *_SOURCE,
        _c("event_timestamp_utc", TS, doc="ts_event of the book event"),
        *_TICK_TIMES,
        _c("action", T, doc=_BOOK_ACTION),
        _c("side", T, True, doc=_SIDE),
        _c("depth", I16, doc="book level the event changed"),
        _c("price", P, True, doc="the event's price; NULL when undefined"), _c("size", I64),
        *_levels(MBP10_LEVELS),
        _FLAGS,
        *_TICK_TAIL,
    ),
    key=_TICK_KEY,
    time_column="received_timestamp_utc",
    chunk_interval="1 day",
    ns_columns=_EVENT_NS,
)

BBO_GRANULARITIES = ("1s", "1m")
_SNAPSHOT_HEAD = (
    *_SOURCE,
    _c("granularity", T, doc="snapshot interval: 1s or 1m"),
    _c("received_timestamp_utc", TS, doc="ts_recv: the end of the interval the snapshot closes (hypertable time)"),
    _c("event_timestamp_utc", TS, True, doc="ts_event of the last book update in the interval; NULL when none"),
    _c("ts_event_ns", I64, True, doc="ts_event, exact nanoseconds (NULL when undefined)"),
    _c("ts_recv_ns", I64, doc="ts_recv, exact nanoseconds"),
    _c("side", T, True, doc="side of the interval's last trade: " + _SIDE),
    _c("price", P, True, doc="the interval's last trade price; NULL when no trade yet"),
    _c("size", I64, doc="the last trade's quantity (0 when none)"),
    _c("bid_price", P, True, doc="best bid at the end of the interval; NULL when the side is empty"),
    _c("bid_size", I64),
)
# one snapshot per instrument, interval, publisher and dataset
_SNAPSHOT_KEY = ("instrument_id", "granularity", "received_timestamp_utc", "ts_recv_ns", "publisher_id", "dataset")

BBO = Table(
    name="bbo",
    doc="Best bid and offer sampled every second or minute (Databento bbo-1s and bbo-1m schemas).",
    columns=(
        *_SNAPSHOT_HEAD,
        _c("bid_count", I64, doc="orders at the best bid"),
        _c("ask_price", P, True, doc="best offer at the end of the interval; NULL when the side is empty"),
        _c("ask_size", I64), _c("ask_count", I64, doc="orders at the best offer"),
        _FLAGS,
        _c("sequence", I64, doc="venue sequence number of the last update"),
        _c("publisher_id", I32, doc="Databento publisher id"),
        _c("data_source", T, doc="vendor, 'databento'"),
    ),
    key=_SNAPSHOT_KEY,
    time_column="received_timestamp_utc",
    chunk_interval="7 days",
    ns_columns=_EVENT_NS,
)

CBBO = Table(
    name="cbbo",
    doc="Consolidated best bid and offer across venues, sampled every second or minute (Databento cbbo-1s "
        "and cbbo-1m schemas, e.g. OPRA options).",
    columns=(
        *_SNAPSHOT_HEAD,
        _c("bid_publisher_id", I32, doc="publisher (venue) of the best bid (DBN bid_pb_00)"),
        _c("ask_price", P, True, doc="best offer at the end of the interval; NULL when the side is empty"),
        _c("ask_size", I64),
        _c("ask_publisher_id", I32, doc="publisher (venue) of the best offer (DBN ask_pb_00)"),
        _FLAGS,
        _c("publisher_id", I32, doc="Databento publisher id of the consolidated feed"),
        _c("data_source", T, doc="vendor, 'databento'"),
    ),
    key=_SNAPSHOT_KEY,
    time_column="received_timestamp_utc",
    chunk_interval="7 days",
    ns_columns=_EVENT_NS,
)

_NOTICE_KEY = ("instrument_id", "received_timestamp_utc", "ts_recv_ns", "publisher_id", "rec_ordinal", "dataset")
_NOTICE_TAIL = (
    _c("publisher_id", I32, doc="Databento publisher id"),
    _c("rec_ordinal", I32, doc="position among records with the same instrument, ts_recv and publisher"),
    _c("data_source", T, doc="vendor, 'databento'"),
)

STATUS = Table(
    name="status",
    doc="Trading status changes: pre-open, trading, halts, pauses, close (Databento status schema).",
    columns=(
        *_SOURCE,
        _c("event_timestamp_utc", TS, doc="ts_event: when the venue changed the status"),
        *_TICK_TIMES,
        _c("action", I32, doc="DBN StatusAction number (7 TRADING, 8 HALT, 9 PAUSE, 12 CLOSE, ...)"),
        _c("action_name", T, True, doc="StatusAction name, e.g. TRADING, HALT, CLOSE; NULL for a number "
                                       "this hdi version does not know"),
        _c("reason", I32, doc="DBN StatusReason number"),
        _c("trading_event", I32, doc="DBN TradingEvent number"),
        _c("is_trading", T, True, doc="'Y' or 'N'; NULL when not available (DBN '~')"),
        _c("is_quoting", T, True, doc="'Y' or 'N'; NULL when not available (DBN '~')"),
        _c("is_short_sell_restricted", T, True, doc="'Y' or 'N'; NULL when not available (DBN '~')"),
        *_NOTICE_TAIL,
    ),
    key=_NOTICE_KEY,
    time_column="received_timestamp_utc",
    chunk_interval="30 days",
    ns_columns=_EVENT_NS,
)

IMBALANCE = Table(
    name="imbalance",
    doc="Auction imbalance messages (Databento imbalance schema).",
    columns=(
        *_SOURCE,
        _c("event_timestamp_utc", TS, doc="ts_event"),
        *_TICK_TIMES,
        _c("ref_price", P, True, doc="reference price; NULL when undefined"),
        _c("auction_time", TS, True, doc="the auction's time where the venue gives one"),
        _c("auction_time_ns", I64, True, doc="auction_time, exact nanoseconds"),
        _c("cont_book_clr_price", P, True), _c("auct_interest_clr_price", P, True),
        _c("ssr_filling_price", P, True), _c("ind_match_price", P, True),
        _c("upper_collar", P, True), _c("lower_collar", P, True),
        _c("paired_qty", I64), _c("total_imbalance_qty", I64), _c("market_imbalance_qty", I64),
        _c("unpaired_qty", I64),
        _c("auction_type", T, True, doc="venue auction type code (e.g. O open, C close); NULL when none"),
        _c("side", T, True, doc="imbalance side: " + _SIDE),
        _c("auction_status", I16), _c("freeze_status", I16), _c("num_extensions", I16),
        _c("unpaired_side", T, True, doc=_SIDE),
        _c("significant_imbalance", T, True, doc="venue code; NULL when none"),
        *_NOTICE_TAIL,
    ),
    key=_NOTICE_KEY,
    time_column="received_timestamp_utc",
    chunk_interval="7 days",
    ns_columns=(*_EVENT_NS, ("auction_time", "auction_time_ns")),
)

ISSUE13_TABLES = (MBO, MBP10, BBO, CBBO, STATUS, IMBALANCE)
# ---- end of issue 13 tables -----------------------------------------------------------------------

DATA_TABLES: dict[str, Table] = {t.name: t for t in (OHLCV, TRADES, TBBO, MBP1, STATISTICS, INSTRUMENTS,
                                                         *ISSUE13_TABLES)}
TABLES: dict[str, Table] = {**DATA_TABLES, SYMBOLOGY.name: SYMBOLOGY}

GRANULARITIES = ("1s", "1m", "5m", "15m", "1h", "1d", "eod")  # eod: ohlcv-eod, where a dataset offers it

# Databento schema -> the table its records land in.
SCHEMA_TABLE: dict[str, str] = {name: s.table for name, s in SCHEMAS.items()}

# Every schema Databento publishes (databento_dbn 0.70.0 ``Schema``); those missing from SCHEMA_TABLE are
# not stored by hdi, and an error about one never suggests a different product with a similar name.
DATABENTO_SCHEMAS = ("mbo", "mbp-1", "mbp-10", "tbbo", "trades", "ohlcv-1s", "ohlcv-1m", "ohlcv-1h", "ohlcv-1d",
                     "ohlcv-eod", "definition", "statistics", "status", "imbalance", "cmbp-1", "cbbo-1s", "cbbo-1m",
                     "tcbbo", "bbo-1s", "bbo-1m")


def schema_hint(name: object, supported: tuple[str, ...] | list[str]) -> str:
    """What to add after "schema 'x' is not supported": for a real Databento schema hdi does not store,
    that fact (no "did you mean": tcbbo is not tbbo); for anything else the closest supported name."""
    text = str(name).strip().lower()
    if text in DATABENTO_SCHEMAS:
        return " (a Databento schema hdi does not store; docs/schemas.md lists the stored ones)"
    return did_you_mean(str(name), supported)


def table(name: str) -> Table:
    """Look a table up by name, with a clear error for an unknown one."""
    try:
        return TABLES[name]
    except KeyError:
        raise QueryError(
            f"unknown table '{name}'{did_you_mean(name, TABLES)}; allowed: {allowed_list(TABLES)}"
        ) from None


ROLLS = Table(
    name="rolls",
    doc="Roll schedules of continuous futures (hdi rolls, hdi.read_continuous): one row per roll of a "
        "(dataset, root, rule, parameters), with the data that decided it. Derived from stored definitions "
        "and statistics; recomputing a schedule replaces its rows (the latest computed_at is current).",
    columns=(
        _c("dataset", T), _c("root", T, doc="futures root, e.g. CL"),
        _c("rule", T, doc="calendar | volume | open_interest"),
        _c("parameters", T, doc="the rule's parameters, e.g. days_before_expiry=2 ('' when none)"),
        _c("trading_date", D, doc="first trading date on the new contract"),
        _c("effective_ts", TS, doc="session open of trading_date: when the roll takes effect"),
        _c("from_contract", T, doc="raw symbol rolled out of"), _c("from_instrument_id", I64),
        _c("to_contract", T, doc="raw symbol rolled into"), _c("to_instrument_id", I64),
        _c("decided_by_ts", TS, doc="ts_recv of the latest record the decision used (always < effective_ts)"),
        _c("decided_by_ns", I64, doc="decided_by_ts, exact nanoseconds since the epoch"),
        _c("decided_by", T, doc="what decided it, e.g. 'expiration of CLG4 (definition)' or the two figures"),
        _c("computed_at", TS, doc="when this schedule was computed"),
    ),
    key=("dataset", "root", "rule", "parameters", "trading_date"),
    time_column="trading_date",
    chunk_interval=None,
    ns_columns=(("decided_by_ts", "decided_by_ns"),),
)
