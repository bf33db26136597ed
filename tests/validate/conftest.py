"""Frame builders for validation tests: recipe-like frames with hand-written values.

Each builder takes row overrides (dicts) on top of one valid base row and returns a frame with the
dtypes a recipe hands over (instrument_id UInt32, volume UInt64, sizes UInt32, ... not yet the
table's). Row ``i`` gets ``instrument_id = i + 1`` unless it says otherwise, so keys are distinct.
Decimal values are written as strings.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import polars as pl
import pytest

T0 = dt.datetime(2024, 1, 2, tzinfo=dt.UTC)
T0_NS = 1_704_153_600_000_000_000
P = pl.Decimal(19, 9)
TS = pl.Datetime("ns", "UTC")

Builder = Callable[..., pl.DataFrame]


def _build(schema: dict[str, pl.DataType], base: dict[str, Any], overrides: tuple[dict[str, Any], ...]) -> pl.DataFrame:
    rows = []
    for i, override in enumerate(overrides):
        row = {**base, "instrument_id": i + 1, **override}
        for name, value in row.items():
            if isinstance(schema[name], pl.Decimal) and isinstance(value, str):
                row[name] = Decimal(value)
        rows.append(row)
    return pl.DataFrame(rows, schema=schema)


OHLCV_SCHEMA: dict[str, pl.DataType] = {
    "dataset": pl.String(), "instrument_id": pl.UInt32(), "granularity": pl.String(),
    "bar_timestamp_utc": TS, "open_price": P, "high_price": P, "low_price": P, "close_price": P,
    "volume": pl.UInt64(), "trade_count": pl.Int32(), "vwap": P, "publisher_id": pl.UInt16(),
    "data_source": pl.String(),
}
OHLCV_BASE = {
    "dataset": "GLBX.MDP3", "granularity": "1m", "bar_timestamp_utc": T0, "open_price": "100.25",
    "high_price": "101.5", "low_price": "99.75", "close_price": "100.5", "volume": 10,
    "trade_count": None, "vwap": None, "publisher_id": 1, "data_source": "databento",
}

_TICK_HEAD = {"dataset": pl.String(), "instrument_id": pl.UInt32()}
_TICK_TIMES = {"received_timestamp_utc": TS, "ts_event_ns": pl.Int64(), "ts_recv_ns": pl.Int64()}
_FLAGS = {"flags": pl.UInt8()}  # trades, tbbo and mbp1 only
_TICK_TAIL = {
    "sequence": pl.UInt32(), "ts_in_delta": pl.Int32(), "publisher_id": pl.UInt16(),
    "rec_ordinal": pl.Int32(), "data_source": pl.String(),
}
EVENT_NS, RECV_NS = T0_NS + 1_000, T0_NS + 2_500  # ts_event and ts_recv of the base tick row
_TICK_BASE = {
    "dataset": "GLBX.MDP3", "received_timestamp_utc": None, "ts_event_ns": EVENT_NS, "ts_recv_ns": RECV_NS,
    "sequence": 7, "ts_in_delta": 150, "publisher_id": 1, "rec_ordinal": 0,
    "data_source": "databento",
}

TRADES_SCHEMA = {**_TICK_HEAD, "trade_timestamp_utc": TS, **_TICK_TIMES, "price": P, "size": pl.UInt32(),
                 "aggressor_side": pl.String(), **_FLAGS, **_TICK_TAIL}
TRADES_BASE = {**_TICK_BASE, "trade_timestamp_utc": None, "price": "4000.25", "size": 3, "aggressor_side": "buy",
               "flags": 128}

TBBO_SCHEMA = {
    **_TICK_HEAD, "quote_timestamp_utc": TS, **_TICK_TIMES, "bid_price": P, "bid_size": pl.Int64(),
    "bid_count": pl.UInt32(), "ask_price": P, "ask_size": pl.UInt32(), "ask_count": pl.UInt32(),
    "trade_price": P, "trade_size": pl.UInt32(), "trade_side": pl.String(), **_FLAGS, **_TICK_TAIL,
}
TBBO_BASE = {
    **_TICK_BASE, "quote_timestamp_utc": None, "bid_price": "4000.00", "bid_size": 5, "bid_count": 2,
    "ask_price": "4000.25", "ask_size": 4, "ask_count": 1, "trade_price": "4000.25", "trade_size": 1,
    "trade_side": "buy", "flags": 128,
}

MBP1_SCHEMA = {
    **_TICK_HEAD, "event_timestamp_utc": TS, **_TICK_TIMES, "action": pl.String(), "side": pl.String(),
    "depth": pl.UInt8(), "price": P, "size": pl.Int64(), "bid_price": P, "bid_size": pl.UInt32(),
    "bid_count": pl.UInt32(), "ask_price": P, "ask_size": pl.UInt32(), "ask_count": pl.UInt32(), **_FLAGS,
    **_TICK_TAIL,
}
MBP1_BASE = {
    **_TICK_BASE, "event_timestamp_utc": None, "action": "A", "side": "sell", "depth": 0,
    "price": "4000.25", "size": 4, "bid_price": "4000.00", "bid_size": 5, "bid_count": 2,
    "ask_price": "4000.25", "ask_size": 4, "ask_count": 1, "flags": 128,
}

STATISTICS_SCHEMA = {
    **_TICK_HEAD, "stat_type": pl.UInt16(), "statistic_name": pl.String(),
    "statistic_value_numeric": pl.Decimal(28, 9), "statistic_value_text": pl.String(),
    "effective_date_utc": pl.Date(), "price": P, "quantity": pl.Int64(), "ts_ref_ns": pl.Int64(),
    "event_timestamp_utc": TS, **_TICK_TIMES, "update_action": pl.UInt8(), "stat_flags": pl.UInt8(),
    "channel_id": pl.UInt16(), **_TICK_TAIL,
}
STATISTICS_BASE = {
    **_TICK_BASE, "stat_type": 3, "statistic_name": "SETTLEMENT_PRICE", "statistic_value_numeric": "4000.25",
    "statistic_value_text": None, "effective_date_utc": dt.date(2024, 1, 2), "price": "4000.25",
    "quantity": None, "ts_ref_ns": None, "event_timestamp_utc": None, "update_action": 1, "stat_flags": 3,
    "channel_id": 2,
}

INSTRUMENTS_SCHEMA: dict[str, pl.DataType] = {
    "dataset": pl.String(), "instrument_id": pl.UInt32(), "raw_symbol": pl.String(),
    **{c: pl.String() for c in ("instrument_class", "security_type", "asset", "product_group", "exchange",
                                "cfi", "currency", "underlying")},
    "expiration": TS, "activation": TS,
    "min_price_increment": P, "display_factor": P, "unit_of_measure": pl.String(), "unit_of_measure_qty": P,
    "contract_multiplier": pl.Int32(), "strike_price": P, "high_limit_price": P, "low_limit_price": P,
    "security_update_action": pl.String(), "event_timestamp_utc": TS, "received_timestamp_utc": TS,
    "ts_event_ns": pl.Int64(), "ts_recv_ns": pl.Int64(), "publisher_id": pl.UInt16(), "data_source": pl.String(),
}
INSTRUMENTS_BASE = {
    "dataset": "GLBX.MDP3", "raw_symbol": "ESH4", "instrument_class": "F", "security_type": "FUT",
    "asset": "ES", "product_group": "ES", "exchange": "XCME", "cfi": "FFIXSX", "currency": "USD",
    "underlying": None, "expiration": dt.datetime(2024, 3, 15, 13, 30, tzinfo=dt.UTC),
    "activation": dt.datetime(2023, 3, 10, tzinfo=dt.UTC), "min_price_increment": "0.25",
    "display_factor": "0.01", "unit_of_measure": "IPNT", "unit_of_measure_qty": "50",
    "contract_multiplier": None, "strike_price": None, "high_limit_price": None, "low_limit_price": None,
    "security_update_action": "A", "event_timestamp_utc": T0, "received_timestamp_utc": T0,
    "ts_event_ns": T0_NS, "ts_recv_ns": T0_NS, "publisher_id": 1, "data_source": "databento",
}

# The tick tables' timestamp columns, rebuilt from the *_ns columns so that they agree to the ns.
_NS_PAIRS = {
    "trades": (("trade_timestamp_utc", "ts_event_ns"), ("received_timestamp_utc", "ts_recv_ns")),
    "tbbo": (("quote_timestamp_utc", "ts_event_ns"), ("received_timestamp_utc", "ts_recv_ns")),
    "mbp1": (("event_timestamp_utc", "ts_event_ns"), ("received_timestamp_utc", "ts_recv_ns")),
    "statistics": (("event_timestamp_utc", "ts_event_ns"), ("received_timestamp_utc", "ts_recv_ns")),
}


def with_ns_times(frame: pl.DataFrame, table: str) -> pl.DataFrame:
    """Fill each null tick timestamp from its ``*_ns`` column, to the ns (keeps the column order)."""
    return frame.with_columns(
        pl.coalesce(ts, pl.col(ns).cast(pl.Datetime("ns")).dt.replace_time_zone("UTC")).alias(ts)
        for ts, ns in _NS_PAIRS[table]
    )


def _tick_builder(table: str, schema: dict[str, pl.DataType], base: dict[str, Any]) -> Builder:
    """Tick rows: a timestamp column not set by the row is taken from its ``*_ns`` column."""
    return lambda *overrides: with_ns_times(_build(schema, base, overrides), table)


@pytest.fixture
def ohlcv() -> Builder:
    return lambda *overrides: _build(OHLCV_SCHEMA, OHLCV_BASE, overrides)


@pytest.fixture
def trades() -> Builder:
    return _tick_builder("trades", TRADES_SCHEMA, TRADES_BASE)


@pytest.fixture
def tbbo() -> Builder:
    return _tick_builder("tbbo", TBBO_SCHEMA, TBBO_BASE)


@pytest.fixture
def mbp1() -> Builder:
    return _tick_builder("mbp1", MBP1_SCHEMA, MBP1_BASE)


@pytest.fixture
def statistics() -> Builder:
    return _tick_builder("statistics", STATISTICS_SCHEMA, STATISTICS_BASE)


@pytest.fixture
def instruments() -> Builder:
    return lambda *overrides: _build(INSTRUMENTS_SCHEMA, INSTRUMENTS_BASE, overrides)
