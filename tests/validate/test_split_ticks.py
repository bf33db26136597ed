"""split() on trades, tbbo, mbp1, statistics and instruments frames: exact reasons and good rows."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import polars as pl
from polars.testing import assert_frame_equal

from hdi._tables import DATA_TABLES
from hdi.validate.split import split

T0_NS = 1_704_153_600_000_000_000


def _reasons_by_id(result) -> dict[int, str]:
    return dict(zip(result.bad["instrument_id"].to_list(), result.bad["_reasons"].to_list(), strict=True))


def _assert_good(result, frame: pl.DataFrame, table: str, ids: list[int]) -> None:
    """Good rows are exactly the input rows with these ids, in input order, in the table's dtypes."""
    t = DATA_TABLES[table]
    expected = frame.filter(pl.col("instrument_id").is_in(ids)).select(t.names).cast(t.polars_schema)
    assert result.good.schema == pl.Schema(t.polars_schema)
    assert_frame_equal(result.good, expected)
    assert result.good["instrument_id"].to_list() == ids


def test_split_trades(trades):
    frame = trades(
        {},                                              # 1 good
        {"aggressor_side": None},                        # 2 good: no aggressor
        {"price": "0"},                                  # 3
        {"price": "-1", "size": 0},                      # 4
        {"aggressor_side": "B"},                         # 5 DBN side letter, not mapped by the recipe
        {"ts_recv_ns": T0_NS + 2_501},                   # 6 ns column 1 ns off its timestamp
        {"sequence": None},                              # 7
        {"ts_in_delta": None, "rec_ordinal": -1},        # 8 ts_in_delta may be null; rec_ordinal not < 0
    ).with_columns(  # row 6: keep the timestamp of the base row, so that only the ns column is off
        pl.when(pl.col("instrument_id") == 6).then(pl.col("received_timestamp_utc").dt.offset_by("-1ns"))
        .otherwise(pl.col("received_timestamp_utc")).alias("received_timestamp_utc")
    )
    result = split(frame, "trades")

    assert (result.rows_in, result.rows_good, result.rows_bad) == (8, 2, 6)
    assert _reasons_by_id(result) == {
        3: "price<=0",
        4: "price<=0;size<=0",
        5: "aggressor_side:not_in(buy,sell)",
        6: "ts_recv_ns!=received_timestamp_utc",
        7: "sequence:null",
        8: "rec_ordinal<0",
    }
    assert result.reasons == {
        "price<=0": 2, "aggressor_side:not_in(buy,sell)": 1, "rec_ordinal<0": 1, "sequence:null": 1,
        "size<=0": 1, "ts_recv_ns!=received_timestamp_utc": 1,
    }
    _assert_good(result, frame, "trades", [1, 2])
    assert result.good["trade_timestamp_utc"].dt.epoch("ns").to_list() == [T0_NS + 1_000] * 2


def test_split_trades_allow_non_positive_prices_keeps_the_size_rule(trades):
    result = split(trades({"price": "0"}, {"price": "-1", "size": 0}), "trades", allow_non_positive_prices=True)

    assert result.good["price"].to_list() == [Decimal("0E-9")]
    assert _reasons_by_id(result) == {2: "size<=0"}


def test_split_tbbo_flags_crossed_books_and_allows_locked_and_empty_sides(tbbo):
    frame = tbbo(
        {},                                                         # 1 good: bid < ask
        {"bid_price": "4000.25"},                                   # 2 good: locked (bid == ask)
        {"bid_price": None},                                        # 3 good: empty bid side
        {"bid_price": "4000.50"},                                   # 4 crossed
        {"trade_price": "0"},                                       # 5
        {"bid_size": -1, "trade_size": 0},                          # 6
        {"trade_side": "sell", "ask_price": None, "bid_count": 0},  # 7 good
        {"trade_side": "N"},                                        # 8
    )
    result = split(frame, "tbbo")

    assert _reasons_by_id(result) == {
        4: "bid_price>ask_price",
        5: "trade_price<=0",
        6: "bid_size<0;trade_size<=0",
        8: "trade_side:not_in(buy,sell)",
    }
    assert result.reasons == {
        "bid_price>ask_price": 1, "bid_size<0": 1, "trade_price<=0": 1, "trade_side:not_in(buy,sell)": 1,
        "trade_size<=0": 1,
    }
    _assert_good(result, frame, "tbbo", [1, 2, 3, 7])


def test_split_mbp1_flags_crossed_books_bad_actions_and_sizes(mbp1):
    frame = mbp1(
        {},                                                   # 1 good
        {"bid_price": "4000.25"},                             # 2 good: locked
        {"bid_price": "4001"},                                # 3 crossed
        {"action": "X"},                                      # 4
        {"side": "N"},                                        # 5 DBN side letter
        {"size": -5, "price": None, "side": None},            # 6 price and side may be null, size not < 0
        {"action": "R", "side": None, "price": None, "size": 0, "bid_price": None, "ask_price": None},  # 7 clear
        {"action": None},                                     # 8
    )
    result = split(frame, "mbp1")

    assert _reasons_by_id(result) == {
        3: "bid_price>ask_price",
        4: "action:not_in(A,C,M,R,T,F,N)",
        5: "side:not_in(buy,sell)",
        6: "size<0",
        8: "action:null",
    }
    assert sum(result.reasons.values()) == 5
    _assert_good(result, frame, "mbp1", [1, 2, 7])
    assert result.good.schema["depth"] == pl.Int16


def test_split_statistics_checks_stat_type_names_and_update_actions(statistics):
    frame = statistics(
        {},                                                                  # 1 good
        {"stat_type": 99, "statistic_name": "FOO"},                          # 2 unknown type
        {"statistic_name": "OPEN_INTEREST"},                                 # 3 name of another type
        {"update_action": 3},                                                # 4
        {"stat_type": 10001, "statistic_name": "VENUE_SPECIFIC_VOLUME_1",    # 5 good: venue-specific
         "statistic_value_numeric": "123456789012345678", "price": None, "quantity": 123456789012345678},
        {"stat_type": 9, "statistic_name": "OPEN_INTEREST", "update_action": 2,  # 6 good: a delete
         "statistic_value_numeric": None},
        {"statistic_name": None, "effective_date_utc": None},               # 7
    )
    result = split(frame, "statistics")

    assert _reasons_by_id(result) == {
        2: "stat_type:unknown",
        3: "statistic_name!=name(stat_type)",
        4: "update_action:not_in(1,2)",
        7: "statistic_name:null;effective_date_utc:null",
    }
    _assert_good(result, frame, "statistics", [1, 5, 6])
    assert result.good.schema["statistic_value_numeric"] == pl.Decimal(28, 9)
    assert result.good["statistic_value_numeric"][1] == Decimal("123456789012345678.000000000")


def test_split_instruments_requires_a_raw_symbol(instruments):
    frame = instruments(
        {},                                          # 1 good
        {"raw_symbol": ""},                          # 2
        {"raw_symbol": "   "},                       # 3
        {"raw_symbol": None},                        # 4
        {"security_update_action": "X"},             # 5
        {"security_update_action": None, "expiration": None, "min_price_increment": None},  # 6 good
    )
    result = split(frame, "instruments")

    assert _reasons_by_id(result) == {
        2: "raw_symbol:empty", 3: "raw_symbol:empty", 4: "raw_symbol:null",
        5: "security_update_action:not_in(A,M,D)",
    }
    assert result.reasons == {"raw_symbol:empty": 2, "raw_symbol:null": 1, "security_update_action:not_in(A,M,D)": 1}
    _assert_good(result, frame, "instruments", [1, 6])
    assert result.good["expiration"].to_list() == [dt.datetime(2024, 3, 15, 13, 30, tzinfo=dt.UTC), None]


def test_split_tick_range_applies_to_received_timestamp_to_the_nanosecond(trades):
    start_ns, end_ns = T0_NS + 2_000, T0_NS + 3_000  # 2 us and 3 us after midnight
    frame = trades(*({"ts_recv_ns": ns} for ns in (start_ns - 1, start_ns, end_ns - 1, end_ns)))
    start = dt.datetime(2024, 1, 2, 0, 0, 0, 2, tzinfo=dt.UTC)
    end = dt.datetime(2024, 1, 2, 0, 0, 0, 3, tzinfo=dt.UTC)

    result = split(frame, "trades", start=start, end=end)

    assert result.good["ts_recv_ns"].to_list() == [start_ns, end_ns - 1]
    assert result.good["received_timestamp_utc"].dt.epoch("ns").to_list() == [start_ns, end_ns - 1]
    assert _reasons_by_id(result) == {1: "received_timestamp_utc<start", 4: "received_timestamp_utc>=end"}


def test_split_narrowing_integer_casts_quarantine_values_out_of_range(trades):
    frame = trades({}, {}, {}).with_columns(
        pl.Series("flags", [255, 40_000, -32_768], dtype=pl.Int64), pl.col("publisher_id").cast(pl.UInt64)
    )
    result = split(frame, "trades")

    assert result.good["flags"].to_list() == [255, -32_768]
    assert result.good.schema["flags"] == pl.Int16
    assert _reasons_by_id(result) == {2: "flags: 40000 does not fit Int16"}
