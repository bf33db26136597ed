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

from hdi.errors import QueryError, allowed_list, did_you_mean
from hdi.schemas import SCHEMAS


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
    doc="OHLCV bars of every granularity (1s, 1m, 5m, 15m, 1h, 1d); a bar is labelled by its start.",
    columns=(
        *_SOURCE,
        _c("granularity", T, doc="bar size: 1s, 1m, 5m, 15m, 1h, 1d"),
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

DATA_TABLES: dict[str, Table] = {t.name: t for t in (OHLCV, TRADES, TBBO, MBP1, STATISTICS, INSTRUMENTS)}
TABLES: dict[str, Table] = {**DATA_TABLES, SYMBOLOGY.name: SYMBOLOGY}

GRANULARITIES = ("1s", "1m", "5m", "15m", "1h", "1d")

# Databento schema -> the table its records land in.
SCHEMA_TABLE: dict[str, str] = {name: s.table for name, s in SCHEMAS.items()}


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
