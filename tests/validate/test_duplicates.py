"""Duplicate natural keys within a batch: identical rows keep the first, differing rows all go."""

from __future__ import annotations

from datetime import timedelta

import polars as pl
import pytest

from hdi.validate.split import split

T0_NS = 1_704_153_600_000_000_000


def _rows(trades):
    """Trades whose keys collide in every way that matters (instrument_id doubles as a row label)."""
    return trades(
        {"instrument_id": 1, "sequence": 1},                           # A
        {"instrument_id": 1, "sequence": 1},                           # A again, identical -> duplicate_row
        {"instrument_id": 2, "sequence": 1, "price": "4000.25"},       # B
        {"instrument_id": 2, "sequence": 1, "price": "4000.50"},       # B', same key -> both duplicate_key
        {"instrument_id": 3, "sequence": 1},                           # C
        {"instrument_id": 3, "sequence": 1},                           # C (identical to the first C)
        {"instrument_id": 3, "sequence": 1, "size": 9},                # C' -> all three duplicate_key
        {"instrument_id": 4, "sequence": 1, "rec_ordinal": 0},         # D: two genuinely different trades
        {"instrument_id": 4, "sequence": 1, "rec_ordinal": 1, "size": 5},  # in the same ns: both kept
        {"instrument_id": 5, "sequence": 1, "price": "0"},             # E, bad for another reason
        {"instrument_id": 5, "sequence": 1, "price": "0"},             # E again: both reasons
        {"instrument_id": 6, "sequence": 1, "ts_recv_ns": T0_NS + 2_501},  # same as A but 1 ns later: kept
    )


def _check(result) -> None:
    assert (result.rows_in, result.rows_good, result.rows_bad) == (12, 4, 8)
    assert sorted(result.good.select("instrument_id", "rec_ordinal").rows()) == [(1, 0), (4, 0), (4, 1), (6, 0)]
    assert sorted(zip(result.bad["instrument_id"].to_list(), result.bad["_reasons"].to_list(), strict=True)) == [
        (1, "duplicate_row"),
        (2, "duplicate_key"), (2, "duplicate_key"),
        (3, "duplicate_key"), (3, "duplicate_key"), (3, "duplicate_key"),
        (5, "price<=0"), (5, "price<=0;duplicate_row"),
    ]
    assert result.reasons == {"duplicate_key": 5, "duplicate_row": 2, "price<=0": 2}


def test_split_duplicates_in_time_order(trades):
    frame = _rows(trades)
    assert frame["received_timestamp_utc"].is_sorted()  # the fast path: only equal-time runs hashed
    _check(split(frame, "trades"))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_split_duplicates_in_any_order_keep_the_first_identical_row(trades, seed):
    frame = _rows(trades).with_row_index("label").sample(fraction=1.0, shuffle=True, seed=seed)
    result = split(frame, "trades")  # the extra 'label' column is not part of the row's identity

    _check(result)
    a_positions = [i for i, iid in enumerate(frame["instrument_id"].to_list()) if iid == 1]
    later_a_label = frame["label"][a_positions[1]]
    assert result.bad.filter(pl.col("instrument_id") == 1)["label"].to_list() == [later_a_label]


def test_split_duplicate_ohlcv_bars_in_another_granularity_or_dataset_are_distinct(ohlcv):
    frame = ohlcv(
        {"instrument_id": 1, "granularity": "1m"},
        {"instrument_id": 1, "granularity": "5m"},
        {"instrument_id": 1, "granularity": "1m", "dataset": "XNAS.ITCH"},
        {"instrument_id": 1, "granularity": "1m", "volume": 11},
    )
    result = split(frame, "ohlcv")

    assert result.good.select("granularity", "dataset").rows() == [("5m", "GLBX.MDP3"), ("1m", "XNAS.ITCH")]
    assert result.bad["_reasons"].to_list() == ["duplicate_key", "duplicate_key"]
    assert result.bad["volume"].to_list() == [10, 11]


def test_split_duplicates_apart_in_unsorted_time_are_found(trades):
    a, b = {"instrument_id": 1, "ts_recv_ns": T0_NS + 10}, {"instrument_id": 1, "ts_recv_ns": T0_NS + 20}
    result = split(trades(a, b, a, b | {"size": 4}), "trades")

    assert result.good["ts_recv_ns"].to_list() == [T0_NS + 10]
    assert result.bad.select("ts_recv_ns", "_reasons").rows() == [
        (T0_NS + 20, "duplicate_key"), (T0_NS + 10, "duplicate_row"), (T0_NS + 20, "duplicate_key"),
    ]


def test_split_bars_sorted_by_instrument_then_time_with_and_without_a_duplicate(ohlcv):
    t0 = ohlcv({})["bar_timestamp_utc"][0]
    t1 = t0 + timedelta(minutes=1)
    rows = [{"instrument_id": 1, "bar_timestamp_utc": t0}, {"instrument_id": 1, "bar_timestamp_utc": t1},
            {"instrument_id": 2, "bar_timestamp_utc": t0}, {"instrument_id": 2, "bar_timestamp_utc": t1}]
    distinct = split(ohlcv(*rows), "ohlcv")
    twice = split(ohlcv(*rows[:3], rows[2] | {"volume": 99}), "ohlcv")

    assert (distinct.rows_good, distinct.rows_bad) == (4, 0)
    assert twice.good.select("instrument_id", "bar_timestamp_utc").rows() == [(1, t0), (1, t1)]
    assert twice.bad["_reasons"].to_list() == ["duplicate_key", "duplicate_key"]
