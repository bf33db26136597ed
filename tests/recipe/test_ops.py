"""General ops on small hand-built frames, with exact expected values and dtypes."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import polars as pl
import pytest
from polars.testing import assert_frame_equal

UTC_NS = pl.Datetime("ns", "UTC")


def ts(*values: str | int | None) -> pl.Series:
    """UTC ns timestamps from ISO strings (whole microseconds) or exact int nanoseconds."""
    ns = [v if isinstance(v, int) or v is None else
          int(dt.datetime.fromisoformat(v).timestamp()) * 10**9 + dt.datetime.fromisoformat(v).microsecond * 1000
          for v in values]
    return pl.Series(ns, dtype=pl.Int64).cast(UTC_NS)


def test_rename_keeps_order_and_values(run_steps) -> None:
    df = pl.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    out = run_steps("  - rename: {a: alpha}\n", df)
    assert_frame_equal(out, pl.DataFrame({"alpha": [1, 2], "b": ["x", "y"]}))


def test_select_and_drop(run_steps) -> None:
    df = pl.DataFrame({"a": [1], "b": [2], "c": [3]})
    assert run_steps("  - select: [c, a]\n", df).to_dict(as_series=False) == {"c": [3], "a": [1]}
    assert run_steps("  - drop: [b]\n", df).to_dict(as_series=False) == {"a": [1], "c": [3]}


def test_cast_converts_to_whitelisted_dtypes(run_steps) -> None:
    df = pl.DataFrame({"u": pl.Series([1, 4_000_000_000], dtype=pl.UInt32), "s": ["1.25", "-3.5"],
                       "ns": [0, 1_700_000_000_123_456_789]})
    out = run_steps("  - cast: {u: Int64, s: 'Decimal(10,2)', ns: 'Datetime(ns,UTC)'}\n", df)
    assert out.schema == {"u": pl.Int64, "s": pl.Decimal(10, 2), "ns": UTC_NS}
    assert out["u"].to_list() == [1, 4_000_000_000]
    assert out["s"].to_list() == [Decimal("1.25"), Decimal("-3.50")]
    assert out["ns"].dt.epoch("ns").to_list() == [0, 1_700_000_000_123_456_789]


def test_cast_given_value_that_does_not_fit_fails_the_frame(run_steps) -> None:
    df = pl.DataFrame({"v": pl.Series([1, 300], dtype=pl.Int64)})
    with pytest.raises(pl.exceptions.InvalidOperationError):
        run_steps("  - cast: {v: UInt8}\n", df)


def test_constant_types_each_value(run_steps) -> None:
    df = pl.DataFrame({"a": [1, 2]})
    out = run_steps("  - constant: {s: databento, i: 7, f: 1.5, b: true, n: null, d: 2024-03-01,"
                    " t: {value: null, dtype: Int32}, g: {value: 3, dtype: Int16}}\n", df)
    assert out.schema == {"a": pl.Int64, "s": pl.String, "i": pl.Int64, "f": pl.Float64, "b": pl.Boolean,
                          "n": pl.Null, "d": pl.Date, "t": pl.Int32, "g": pl.Int16}
    assert out.row(1) == (2, "databento", 7, 1.5, True, None, dt.date(2024, 3, 1), None, 3)


def test_derive_computes_sql_expressions_row_wise(run_steps) -> None:
    df = pl.DataFrame({"bid": [Decimal("10.25"), Decimal("3.000000001")], "ask": [Decimal("10.50"), Decimal("3.5")],
                       "side": ["B", "A"], "size": [3, 4]},
                      schema={"bid": pl.Decimal(19, 9), "ask": pl.Decimal(19, 9), "side": pl.String, "size": pl.Int64})
    out = run_steps("  - derive:\n      mid: (bid + ask) / 2\n      signed: \"CASE WHEN side = 'B' THEN size ELSE -size END\"\n"
                    "  - derive: {double_mid: mid * 2}\n", df)
    assert out["mid"].to_list() == [Decimal("10.375"), Decimal("3.2500000005")]
    assert out["double_mid"].to_list() == [Decimal("20.75"), Decimal("6.500000001")]
    assert out["signed"].to_list() == [3, -4]


def test_filter_keeps_rows_where_true_and_drops_null(run_steps) -> None:
    df = pl.DataFrame({"size": [1, 5, None, 7], "side": ["B", "B", "B", "A"]})
    out = run_steps("  - filter: size > 1 AND side = 'B'\n", df)
    assert out.to_dict(as_series=False) == {"size": [5], "side": ["B"]}


def test_map_values_maps_side_codes_with_default(run_steps) -> None:
    df = pl.DataFrame({"side": ["B", "A", "N", None, "X"]})
    out = run_steps("  - map_values: {column: side, to: aggressor_side, mapping: {B: buy, A: sell, N: null}, default: null}\n", df)
    assert out["aggressor_side"].to_list() == ["buy", "sell", None, None, None]
    assert out["side"].to_list() == ["B", "A", "N", None, "X"]
    inplace = run_steps("  - map_values: {column: side, mapping: {B: buy, A: sell, null: none}, default: other}\n", df)
    assert inplace.columns == ["side"] and inplace["side"].to_list() == ["buy", "sell", "other", "none", "other"]


def test_map_values_given_integer_column_and_many_keys(run_steps) -> None:
    df = pl.DataFrame({"code": pl.Series([1, 17, 20, None], dtype=pl.UInt8)})
    mapping = ", ".join(f"{i}: c{i}" for i in range(1, 19))  # 18 keys: the hash-lookup path
    out = run_steps(f"  - map_values: {{column: code, to: name, mapping: {{{mapping}, null: missing}}, default: other}}\n", df)
    assert out["name"].to_list() == ["c1", "c17", "other", "missing"]
    ints = run_steps("  - map_values: {column: code, to: n, mapping: {1: 100, 17: 1700}}\n", df)
    assert ints.schema["n"] == pl.Int64 and ints["n"].to_list() == [100, 1700, None, None]


def test_epoch_ns_gives_exact_int64_nanoseconds(run_steps) -> None:
    df = pl.DataFrame({"ts_recv": ts(1_709_303_400_123_456_789, None, -1)})
    out = run_steps("  - epoch_ns: {ts_recv_ns: ts_recv}\n", df)
    assert out.schema["ts_recv_ns"] == pl.Int64
    assert out["ts_recv_ns"].to_list() == [1_709_303_400_123_456_789, None, -1]


def test_utc_date_takes_first_non_null_column(run_steps) -> None:
    df = pl.DataFrame({"ts_ref": ts(1_709_337_599_999_999_999, None, None),
                       "ts_event": ts("2024-03-05T00:00:00+00:00", "2024-03-04T00:00:00+00:00", None)})
    out = run_steps("  - utc_date: {effective_date_utc: [ts_ref, ts_event], d2: ts_event}\n", df)
    assert out.schema["effective_date_utc"] == pl.Date
    assert out["effective_date_utc"].to_list() == [dt.date(2024, 3, 1), dt.date(2024, 3, 4), None]
    assert out["d2"].to_list() == [dt.date(2024, 3, 5), dt.date(2024, 3, 4), None]
