"""Market-data ops with exact values: fixed_to_decimal, ordinal, resample, stat_name, stat_value."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from hdi.errors import RecipeError
from hdi.recipe import compile_recipe, load_recipe

UTC_NS = pl.Datetime("ns", "UTC")
T0 = 1_704_103_200_000_000_000  # 2024-01-01 10:00:00 UTC in ns


# ---- fixed_to_decimal ------------------------------------------------------------------------------

def test_fixed_to_decimal_is_exact_on_edge_values_and_keeps_nulls(run_steps) -> None:
    df = pl.DataFrame({"price": [1, 5_000_000_000_000_000_001, -1, 2**63 - 2, None, 0, -(2**63) + 1]},
                      schema={"price": pl.Int64})
    out = run_steps("  - fixed_to_decimal: [price]\n", df)
    assert out.schema == {"price": pl.Decimal(19, 9)}
    assert out["price"].to_list() == [Decimal("0.000000001"), Decimal("5000000000.000000001"), Decimal("-0.000000001"),
                                      Decimal("9223372036.854775806"), None, Decimal("0"),
                                      Decimal("-9223372036.854775807")]


def test_fixed_to_decimal_mapping_form_sets_precision(run_steps) -> None:
    df = pl.DataFrame({"a": [1_500_000_000], "b": pl.Series([7], dtype=pl.UInt32)}, schema_overrides={"a": pl.Int64})
    out = run_steps("  - fixed_to_decimal: {columns: [a, b], precision: 28}\n", df)
    assert out.schema == {"a": pl.Decimal(28, 9), "b": pl.Decimal(28, 9)}
    assert out.row(0) == (Decimal("1.5"), Decimal("0.000000007"))


def test_fixed_to_decimal_is_exact_on_2m_random_values(run_steps) -> None:
    rng = np.random.default_rng(20240101)
    raw = rng.integers(-(2**63) + 1, 2**63 - 1, 2_000_000, dtype=np.int64)
    raw[:1000] = rng.integers(-10**12, 10**12, 1000)  # typical prices too
    df = pl.DataFrame({"price": raw}).with_columns(
        pl.when(pl.int_range(pl.len()) % 97 == 0).then(None).otherwise(pl.col("price")).alias("price"))
    out = run_steps("  - fixed_to_decimal: [price]\n", df)["price"]
    assert out.null_count() == df["price"].null_count() > 0
    # A Decimal(19,9) value is stored as its unscaled 128-bit integer: exact <=> it equals the input.
    arr = out.rechunk().to_arrow()
    words = np.frombuffer(arr.buffers()[1], dtype=np.int64)[2 * arr.offset: 2 * (arr.offset + len(arr))].reshape(-1, 2)
    valid = df["price"].is_not_null().to_numpy()
    assert np.array_equal(words[valid, 0], raw[valid])
    assert np.array_equal(words[valid, 1], np.where(raw[valid] < 0, -1, 0))
    assert str(out[1]) == str(Decimal(int(raw[1])).scaleb(-9).quantize(Decimal("1e-9")))


def test_fixed_to_decimal_given_decimal_column_errors_at_compile(steps_recipe) -> None:
    path = steps_recipe("  - fixed_to_decimal: [price]\n  - fixed_to_decimal: [price]\n")
    with pytest.raises(RecipeError) as exc:
        compile_recipe(load_recipe(path), {"price": pl.Int64()}, select_target=False)
    assert str(exc.value) == (f"{path}:10: transform[1] fixed_to_decimal: column 'price' is Decimal(precision=19, "
                              "scale=9), not an integer fixed-point price; allowed: Int64 (DBN price fields as "
                              "decoded) or a narrower integer")


# ---- ordinal ---------------------------------------------------------------------------------------

def test_ordinal_numbers_equal_keys_in_stream_order(run_steps) -> None:
    df = pl.DataFrame({
        "instrument_id": pl.Series([1, 2, 1, 1, 1, 1, 2, 3, 3], dtype=pl.UInt32),
        "ts_recv": pl.Series([10, 10, 10, 10, 10, 11, 10, None, None], dtype=pl.Int64).cast(UTC_NS),
        "sequence": pl.Series([7, 7, 7, 8, 7, 7, 7, 5, 5], dtype=pl.UInt32),
        "price": list(range(9)),
    })
    out = run_steps("  - ordinal: {name: rec_ordinal, over: [instrument_id, ts_recv, sequence]}\n", df)
    assert out.schema["rec_ordinal"] == pl.Int32
    assert out["rec_ordinal"].to_list() == [0, 0, 1, 0, 2, 0, 1, 0, 1]
    assert_frame_equal(out.drop("rec_ordinal"), df)  # rows and order untouched


def test_ordinal_given_no_repeats_is_all_zero_and_keeps_keys_unique(run_steps) -> None:
    n = 50_000
    df = pl.DataFrame({"instrument_id": pl.Series(np.arange(n) % 5, dtype=pl.UInt32),
                       "ts_recv": pl.Series(np.arange(n) // 3, dtype=pl.Int64).cast(UTC_NS),
                       "sequence": pl.Series(np.arange(n) // 3, dtype=pl.UInt32)})
    out = run_steps("  - ordinal: {name: rec_ordinal, over: [instrument_id, ts_recv, sequence]}\n", df)
    assert out["rec_ordinal"].to_list() == [0] * n


def test_ordinal_equals_a_window_over_every_row_on_random_data(run_steps) -> None:
    rng = np.random.default_rng(3)
    n = 200_000
    df = pl.DataFrame({"instrument_id": pl.Series(rng.integers(1, 4, n), dtype=pl.UInt32),
                       "ts_recv": pl.Series(rng.integers(0, n // 2, n), dtype=pl.Int64).cast(UTC_NS),
                       "sequence": pl.Series(rng.integers(0, 3, n), dtype=pl.UInt32)})
    out = run_steps("  - ordinal: {name: rec_ordinal, over: [instrument_id, ts_recv, sequence]}\n", df)
    want = df.select(pl.int_range(pl.len(), dtype=pl.Int32).over("instrument_id", "ts_recv", "sequence"))
    assert (out["rec_ordinal"] > 0).sum() > 10_000
    assert out["rec_ordinal"].to_list() == want.to_series().to_list()
    assert out.select(pl.struct(pl.all()).is_unique().all()).item()


def test_ordinal_after_filter_or_resample_is_a_compile_error(steps_recipe) -> None:
    path = steps_recipe("  - filter: size > 0\n  - ordinal: {name: rec_ordinal, over: [instrument_id]}\n")
    with pytest.raises(RecipeError) as exc:
        compile_recipe(load_recipe(path), {"instrument_id": pl.UInt32(), "size": pl.UInt32()}, select_target=False)
    assert str(exc.value) == (f"{path}:10: transform[1] ordinal: ordinal comes after transform[0] filter (line 9), "
                              "which drops or reorders rows; allowed: ordinal before any filter/resample: it numbers "
                              "records in stream order")


# ---- resample --------------------------------------------------------------------------------------

# (instrument, minute after 10:00, open, high, low, close, volume). Instrument 1 lacks 10:02 and has no
# bar in 10:05-10:09 (an empty 5m interval); 10:15 sits on an interval boundary (closed left).
BARS = [
    (1, 0, "100", "101", "99", "100.5", 10), (1, 1, "100.5", "102", "100", "101", 20),
    (1, 3, "101", "101.5", "98", "99", 5), (1, 4, "99", "100", "98.5", "99.75", 7),
    (1, 10, "99.75", "100", "99.5", "99.5", 1), (1, 14, "99.5", "103", "99.5", "102.25", 2),
    (1, 15, "102.25", "102.5", "102", "102", 3), (1, 19, "102", "102", "101", "101.5", 4),
    (2, 0, "50", "51", "49", "50.5", 100), (2, 20, "50.5", "50.5", "50.5", "50.5", 1),
]
WANT = {
    "5m": [(1, 0, "100", "102", "98", "99.75", 42), (1, 10, "99.75", "103", "99.5", "102.25", 3),
           (1, 15, "102.25", "102.5", "101", "101.5", 7), (2, 0, "50", "51", "49", "50.5", 100),
           (2, 20, "50.5", "50.5", "50.5", "50.5", 1)],
    "15m": [(1, 0, "100", "103", "98", "102.25", 45), (1, 15, "102.25", "102.5", "101", "101.5", 7),
            (2, 0, "50", "51", "49", "50.5", 100), (2, 15, "50.5", "50.5", "50.5", "50.5", 1)],
}


def _bars(rows: list[tuple], fixed: bool) -> pl.DataFrame:
    def px(v: str) -> int | Decimal:
        return int(Decimal(v) * 10**9) if fixed else Decimal(v)

    ptype = pl.Int64 if fixed else pl.Decimal(19, 9)
    return pl.DataFrame(
        [("GLBX.MDP3", i, T0 + m * 60 * 10**9, px(o), px(h), px(lo), px(c), v) for i, m, o, h, lo, c, v in rows],
        schema={"dataset": pl.String, "instrument_id": pl.UInt32, "ts_event": pl.Int64, "open": ptype,
                "high": ptype, "low": ptype, "close": ptype, "volume": pl.UInt64}, orient="row",
    ).with_columns(pl.col("ts_event").cast(UTC_NS))


@pytest.mark.parametrize("every", ["5m", "15m"])
@pytest.mark.parametrize("fixed", [True, False], ids=["int64-fixed", "decimal"])
def test_resample_builds_bars_from_1m_bars(run_steps, every, fixed) -> None:
    shuffled = _bars(BARS, fixed).sample(fraction=1.0, shuffle=True, seed=5)
    out = run_steps(f"  - resample: {{every: {every}}}\n", shuffled, schema="ohlcv-1m")
    assert_frame_equal(out, _bars(WANT[every], fixed))


def test_resample_then_convert_equals_convert_then_resample(run_steps) -> None:
    frame = _bars(BARS, fixed=True)
    a = run_steps("  - resample: {every: 5m}\n  - fixed_to_decimal: [open, high, low, close]\n", frame, schema="ohlcv-1m")
    b = run_steps("  - fixed_to_decimal: [open, high, low, close]\n  - resample: {every: 5m}\n", frame, schema="ohlcv-1m")
    assert_frame_equal(a, b)
    assert_frame_equal(a, _bars(WANT["5m"], fixed=False))


def test_resample_given_interval_not_dividing_a_day_is_a_load_error(steps_recipe) -> None:
    path = steps_recipe("  - resample: {every: 7m}\n", schema="ohlcv-1m")
    with pytest.raises(RecipeError) as exc:
        load_recipe(path)
    assert str(exc.value) == (f"{path}:9: transform[0] resample.every: interval '7m' is not <N>s, <N>m, <N>h or 1d "
                              "dividing a day evenly; allowed: e.g. 5m, 15m, 30m, 1h, 4h, 1d")


def test_resample_given_coarser_source_is_a_compile_error(steps_recipe) -> None:
    path = steps_recipe("  - resample: {every: 5m}\n", schema="ohlcv-1h")
    with pytest.raises(RecipeError) as exc:
        compile_recipe(load_recipe(path), _bars(BARS, True).schema, select_target=False)
    assert str(exc.value) == (f"{path}:9: transform[0] resample: cannot build 5m bars from schema ohlcv-1h; allowed: "
                              "a source ohlcv-1s/1m/1h/1d whose bar size divides the interval, e.g. ohlcv-1m -> 5m")


def test_resample_given_range_cutting_an_interval_is_a_compile_error(steps_recipe) -> None:
    recipe = load_recipe(steps_recipe("  - resample: {every: 15m}\n", schema="ohlcv-1m"))
    compile_recipe(recipe.with_overrides(start="2024-01-01T10:45:00Z"), _bars(BARS, True).schema,
                   select_target=False)
    with pytest.raises(RecipeError) as exc:
        compile_recipe(recipe.with_overrides(start="2024-01-01T10:50:00Z"), _bars(BARS, True).schema,
                       select_target=False)
    assert str(exc.value) == (
        f"{recipe.path}:9: transform[0] resample: source start 2024-01-01T10:50:00Z is not on a 15m boundary, so "
        "the bar it cuts would be incomplete; allowed: a start at a multiple of 15m from UTC midnight, e.g. a date")


# ---- statistics ------------------------------------------------------------------------------------

def _stats() -> pl.DataFrame:
    # settlement 1234.5; cleared volume 12345; open interest with undefined quantity; settlement with
    # undefined price; venue volume; an unknown stat type whose value is in price.
    return pl.DataFrame({
        "stat_type": pl.Series([3, 6, 9, 3, 10001, 999], dtype=pl.UInt16),
        "price": pl.Series([1_234_500_000_000, None, None, None, None, -2_500_000_000], dtype=pl.Int64),
        "quantity": pl.Series([None, 12345, None, 7, 2**63 - 2, None], dtype=pl.Int64),
    })


def test_stat_name_maps_dbn_stat_types(run_steps) -> None:
    out = run_steps("  - stat_name: {from: stat_type, to: statistic_name}\n", _stats(), schema="statistics")
    assert out["statistic_name"].to_list() == ["SETTLEMENT_PRICE", "CLEARED_VOLUME", "OPEN_INTEREST",
                                               "SETTLEMENT_PRICE", "VENUE_SPECIFIC_VOLUME_1", "UNKNOWN_999"]


WANT_VALUES = [Decimal("1234.5"), Decimal("12345"), None, None, Decimal("9223372036854775806"), Decimal("-2.5")]


def test_stat_value_takes_price_or_quantity_by_type(run_steps) -> None:
    out = run_steps("  - stat_value: {to: statistic_value_numeric}\n", _stats(), schema="statistics")
    assert out.schema["statistic_value_numeric"] == pl.Decimal(28, 9)
    assert out["statistic_value_numeric"].to_list() == WANT_VALUES


def test_stat_value_accepts_price_already_converted(run_steps) -> None:
    out = run_steps("  - fixed_to_decimal: [price]\n  - stat_value: {to: statistic_value_numeric}\n", _stats(),
                    schema="statistics")
    assert out["statistic_value_numeric"].to_list() == WANT_VALUES
    assert out["price"].to_list()[0] == Decimal("1234.5")

