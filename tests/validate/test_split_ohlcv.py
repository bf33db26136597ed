"""split() on ohlcv frames: rules, exact reasons, exact good rows, uint64 boundaries, casts, ranges."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from hdi._tables import OHLCV
from hdi.validate.split import split

I64_MAX = 2**63 - 1


def _good_ids(result) -> list[int]:
    return result.good["instrument_id"].to_list()


def _reasons_by_id(result) -> dict[int, str]:
    return dict(zip(result.bad["instrument_id"].to_list(), result.bad["_reasons"].to_list(), strict=True))


def test_split_ohlcv_given_known_bad_rows_counts_each_reason_and_keeps_exact_good_rows(ohlcv):
    frame = ohlcv(
        {},                                                                    # 1 good
        {"volume": 0},                                                         # 2 good: zero volume
        {"high_price": "100.0", "low_price": "99.0"},                          # 3 high below close
        {"low_price": "100.3"},                                                # 4 low above open
        {"open_price": "0", "high_price": "1", "low_price": "0", "close_price": "0.5", "volume": None},  # 5
        {"granularity": "2m"},                                                 # 6
        {"dataset": None},                                                     # 7
        {"vwap": "200"},                                                       # 8 vwap above high
        {"high_price": None},                                                  # 9 only the null counts
        {"vwap": "100.1", "trade_count": 42},                                  # 10 good with extras
    )
    result = split(frame, "ohlcv")

    assert (result.rows_in, result.rows_good, result.rows_bad) == (10, 3, 7)
    assert result.reasons == {
        "dataset:null": 1, "granularity:not_in(1s,1m,5m,15m,1h,1d,eod)": 1, "high_price:null": 1,
        "high_price<max(open,close,low)": 1, "low_price<=0": 1, "low_price>min(open,close)": 1,
        "open_price<=0": 1, "volume:null": 1, "vwap:outside(low,high)": 1,
    }
    assert _reasons_by_id(result) == {
        3: "high_price<max(open,close,low)",
        4: "low_price>min(open,close)",
        5: "open_price<=0;low_price<=0;volume:null",
        6: "granularity:not_in(1s,1m,5m,15m,1h,1d,eod)",
        7: "dataset:null",
        8: "vwap:outside(low,high)",
        9: "high_price:null",
    }
    expected = frame.filter(pl.col("instrument_id").is_in([1, 2, 10])).select(OHLCV.names).cast(OHLCV.polars_schema)
    assert_frame_equal(result.good, expected)
    assert result.good.schema == pl.Schema(OHLCV.polars_schema)
    assert result.good.row(2, named=True)["vwap"] == Decimal("100.100000000")


def test_split_ohlcv_bad_rows_keep_input_columns_dtypes_and_values(ohlcv):
    frame = ohlcv({}, {"volume": 2**64 - 1}).with_columns(pl.lit("ESH4").alias("symbol"))
    result = split(frame, "ohlcv")

    assert result.bad.columns == [*frame.columns, "_reasons"]
    assert result.bad.schema["volume"] == pl.UInt64
    assert result.bad.schema["_reasons"] == pl.String
    assert_frame_equal(result.bad.drop("_reasons"), frame.filter(pl.col("instrument_id") == 2))
    assert result.good.columns == OHLCV.names  # the extra 'symbol' column is not for the store


@pytest.mark.parametrize(
    ("volume", "reason"),
    [
        (I64_MAX, None),
        (2**63, "volume: 9223372036854775808 does not fit Int64"),
        (2**64 - 1, "volume: 18446744073709551615 does not fit Int64"),
    ],
)
def test_split_ohlcv_uint64_volume_boundaries(ohlcv, volume, reason):
    result = split(ohlcv({"volume": volume}), "ohlcv")

    if reason is None:
        assert result.rows_good == 1
        assert result.good.schema["volume"] == pl.Int64
        assert result.good["volume"].to_list() == [I64_MAX]
    else:
        assert result.rows_bad == 1
        assert result.bad["_reasons"].to_list() == [reason]
        assert result.bad["volume"].to_list() == [volume]
        assert result.reasons == {"volume:does_not_fit_Int64": 1}


def test_split_ohlcv_null_volume_that_is_a_null_input_is_volume_null_not_a_fit_failure(ohlcv):
    result = split(ohlcv({"volume": None}, {"volume": 2**63}), "ohlcv")

    assert _reasons_by_id(result) == {1: "volume:null", 2: "volume: 9223372036854775808 does not fit Int64"}
    assert result.reasons == {"volume:does_not_fit_Int64": 1, "volume:null": 1}


def test_split_ohlcv_allow_non_positive_prices_accepts_zero_and_negative_prices(ohlcv):
    frame = ohlcv(
        {"open_price": "-1.5", "high_price": "0", "low_price": "-2", "close_price": "-0.25"},
        {"open_price": "0", "high_price": "0", "low_price": "0", "close_price": "0"},
    )
    strict = split(frame, "ohlcv")
    relaxed = split(frame, "ohlcv", allow_non_positive_prices=True)

    assert strict.reasons == {"open_price<=0": 2, "high_price<=0": 2, "low_price<=0": 2, "close_price<=0": 2}
    assert strict.bad["_reasons"].to_list() == ["open_price<=0;high_price<=0;low_price<=0;close_price<=0"] * 2
    assert (relaxed.rows_good, relaxed.rows_bad) == (2, 0)
    assert relaxed.good["low_price"].to_list() == [Decimal("-2.000000000"), Decimal("0E-9")]


def test_split_ohlcv_casts_castable_dtypes_and_quarantines_values_that_do_not_fit(ohlcv):
    day, far = dt.datetime(2024, 1, 2, tzinfo=dt.UTC), dt.datetime(2300, 1, 1, tzinfo=dt.UTC)
    frame = ohlcv({}, {}, {}, {}).with_columns(
        pl.col("dataset").cast(pl.Categorical),
        pl.Series("bar_timestamp_utc", [day, day, far, day], dtype=pl.Datetime("us", "UTC")),
        pl.Series("high_price", [Decimal(x) for x in ("101.5", "10000000000", "101.5", "101.5")],
                  dtype=pl.Decimal(38, 9)),
        pl.Series("low_price", [Decimal(x) for x in ("99.75", "99.75", "99.75", "99.12345678901")],
                  dtype=pl.Decimal(20, 11)),
        pl.lit(None).alias("trade_count"),  # dtype Null: an all-null column from a recipe
    )
    assert frame.schema["trade_count"] == pl.Null
    result = split(frame, "ohlcv")

    assert result.good.schema == pl.Schema(OHLCV.polars_schema)
    assert _good_ids(result) == [1]
    assert result.good.row(0, named=True)["bar_timestamp_utc"] == dt.datetime(2024, 1, 2, tzinfo=dt.UTC)
    assert _reasons_by_id(result) == {
        2: "high_price: 10000000000.000000000 does not fit Decimal(19,9)",
        3: "bar_timestamp_utc: 2300-01-01 00:00:00.000000+00:00 does not fit Datetime(ns,UTC)",
        4: "low_price: 99.12345678901 does not fit Decimal(19,9)",
    }
    assert result.reasons == {
        "bar_timestamp_utc:does_not_fit_Datetime(ns,UTC)": 1, "high_price:does_not_fit_Decimal(19,9)": 1,
        "low_price:does_not_fit_Decimal(19,9)": 1,
    }


def test_split_ohlcv_converts_other_time_zones_to_the_same_instant_in_utc(ohlcv):
    frame = ohlcv({}).with_columns(pl.col("bar_timestamp_utc").dt.convert_time_zone("America/New_York"))
    result = split(frame, "ohlcv")

    assert result.good.schema["bar_timestamp_utc"] == pl.Datetime("ns", "UTC")
    assert result.good["bar_timestamp_utc"].to_list() == [dt.datetime(2024, 1, 2, tzinfo=dt.UTC)]


def _at_ns(frame: pl.DataFrame, ns: list[int]) -> pl.DataFrame:
    return frame.with_columns(pl.Series("bar_timestamp_utc", ns).cast(pl.Datetime("ns")).dt.replace_time_zone("UTC"))


START_NS = 1_704_153_600_000_000_000  # 2024-01-02T00:00:00Z
END_NS = START_NS + 86_400 * 10**9     # 2024-01-03T00:00:00Z


def test_split_range_start_inclusive_end_exclusive_to_the_nanosecond(ohlcv):
    frame = _at_ns(ohlcv({}, {}, {}, {}), [START_NS - 1, START_NS, END_NS - 1, END_NS])
    result = split(frame, "ohlcv", start=dt.datetime(2024, 1, 2, tzinfo=dt.UTC),
                   end=dt.datetime(2024, 1, 3, tzinfo=dt.UTC))

    assert _good_ids(result) == [2, 3]
    assert result.good["bar_timestamp_utc"].dt.epoch("ns").to_list() == [START_NS, END_NS - 1]
    assert _reasons_by_id(result) == {1: "bar_timestamp_utc<start", 4: "bar_timestamp_utc>=end"}
    assert result.reasons == {"bar_timestamp_utc<start": 1, "bar_timestamp_utc>=end": 1}


def test_split_range_naive_bounds_and_dates_are_utc_and_aware_bounds_are_converted(ohlcv):
    frame = _at_ns(ohlcv({}, {}), [START_NS - 1, START_NS])
    naive = split(frame, "ohlcv", start=dt.datetime(2024, 1, 2))
    new_york = split(frame, "ohlcv", start=dt.datetime(2024, 1, 1, 19, tzinfo=ZoneInfo("America/New_York")))
    only_end = split(frame, "ohlcv", end=dt.datetime(2024, 1, 2, tzinfo=dt.UTC))

    as_date = split(frame, "ohlcv", start=dt.date(2024, 1, 2), end=dt.datetime(2024, 1, 3, tzinfo=dt.UTC))
    mixed = split(frame, "ohlcv", start=dt.datetime(2024, 1, 2), end=dt.date(2024, 1, 3))

    assert _good_ids(naive) == _good_ids(new_york) == _good_ids(as_date) == _good_ids(mixed) == [2]
    assert _good_ids(only_end) == [1]


def test_split_range_end_not_after_start_is_an_error(ohlcv):
    from hdi.errors import ValidationError

    day = dt.datetime(2024, 1, 2, tzinfo=dt.UTC)
    with pytest.raises(ValidationError) as e:
        split(ohlcv({}), "ohlcv", start=day, end=day)
    assert str(e.value) == "ohlcv: end 2024-01-02T00:00:00+00:00 is not after start 2024-01-02T00:00:00+00:00"


def test_split_empty_frame_gives_empty_good_and_bad_with_the_right_columns(ohlcv):
    result = split(ohlcv(), "ohlcv")

    assert (result.rows_in, result.rows_good, result.rows_bad, result.reasons) == (0, 0, 0, {})
    assert result.good.schema == pl.Schema(OHLCV.polars_schema)
    assert result.bad.columns == [*OHLCV.names, "_reasons"]


def test_split_raises_when_rows_it_passed_fail_the_model(ohlcv, monkeypatch):
    # Simulate a bug in the rules (they let everything through): the final model check must catch it.
    import hdi.validate.split as split_module

    monkeypatch.setattr(split_module, "row_rules", lambda *a, **k: {"anything goes": pl.lit(True)})
    from hdi.errors import ValidationError

    with pytest.raises(ValidationError) as e:
        split_module.split(ohlcv({"volume": None}), "ohlcv")
    assert str(e.value) == ("ohlcv: bug in hdi.validate.split: rows it passed fail OhlcvRow: "
                            "1 validation error for OhlcvRow | volume | 1 missing value (type=value_error.missingvalues)")
