"""Frame-level errors: a missing column or a dtype that cannot be cast stops the whole frame."""

from __future__ import annotations

import polars as pl
import pytest

from hdi.errors import ValidationError
from hdi.validate.split import split


def _error(frame: pl.DataFrame, table: str) -> str:
    with pytest.raises(ValidationError) as e:
        split(frame, table)
    return str(e.value)


def test_split_missing_column_names_table_column_and_expected_dtype(ohlcv):
    assert _error(ohlcv({}).drop("volume"), "ohlcv") == "ohlcv: frame has no column 'volume' (Int64 expected)"


def test_split_missing_columns_suggests_a_close_name_and_lists_the_others(ohlcv):
    frame = ohlcv({}).rename({"volume": "volumes"}).drop("vwap", "data_source")
    assert _error(frame, "ohlcv") == (
        "ohlcv: frame has no column 'volume' (Int64 expected) (did you mean 'volumes'?); "
        "also missing: vwap, data_source"
    )


@pytest.mark.parametrize("dtype", [pl.String, pl.Float64, pl.Int64])
def test_split_price_column_that_is_not_decimal_is_refused(ohlcv, dtype):
    frame = ohlcv({}).with_columns(pl.col("open_price").cast(pl.Float64).cast(dtype))
    assert _error(frame, "ohlcv") == (
        f"ohlcv: column 'open_price' has dtype {dtype}, expected Decimal(19,9): "
        "prices must be exact Decimals: convert fixed-point integers in the recipe"
    )


def test_split_naive_timestamp_is_refused(ohlcv):
    frame = ohlcv({}).with_columns(pl.col("bar_timestamp_utc").dt.replace_time_zone(None))
    assert _error(frame, "ohlcv") == (
        "ohlcv: column 'bar_timestamp_utc' has dtype Datetime(ns), expected Datetime(ns,UTC): "
        "a naive timestamp is ambiguous: give it a time zone"
    )


def test_split_integer_timestamp_is_refused(trades):
    frame = trades({}).with_columns(pl.col("received_timestamp_utc").dt.epoch("ns"))
    assert _error(frame, "trades") == (
        "trades: column 'received_timestamp_utc' has dtype Int64, expected Datetime(ns,UTC): "
        "only time-zone-aware Datetime columns can be cast to it"
    )


def test_split_text_into_integer_and_number_into_text_are_refused(trades):
    assert _error(trades({}).with_columns(pl.col("size").cast(pl.String)), "trades") == (
        "trades: column 'size' has dtype String, expected Int64: only integer columns can be cast to it"
    )
    assert _error(trades({}).with_columns(pl.col("dataset").cast(pl.Int8, strict=False)), "trades") == (
        "trades: column 'dataset' has dtype Int8, expected String: only text columns can be cast to it"
    )


def test_split_date_column_from_a_datetime_is_refused(statistics):
    frame = statistics({}).with_columns(pl.col("effective_date_utc").cast(pl.Datetime("us", "UTC")))
    assert _error(frame, "statistics") == (
        "statistics: column 'effective_date_utc' has dtype Datetime(us,UTC), expected Date: no exact cast exists"
    )


def test_split_unknown_table(ohlcv):
    assert _error(ohlcv({}), "ohlc") == (
        "unknown data table 'ohlc' (did you mean 'ohlcv'?); "
        "allowed: ohlcv, trades, tbbo, mbp1, statistics, instruments, mbo, mbp10, bbo, cbbo, status, imbalance"
    )
    assert _error(ohlcv({}), "symbology").startswith("unknown data table 'symbology'")
