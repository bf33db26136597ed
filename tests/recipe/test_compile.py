"""compile_recipe: compile-time errors at the offending line, the target select, the runtime guard,
the expression language's safety, and the shipped recipes (contract schemas and real samples)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from hdi._tables import DATA_TABLES, SCHEMA_TABLE
from hdi.errors import RecipeError
from hdi.recipe import compile_recipe, load_recipe

RECIPES = Path(__file__).resolve().parents[2] / "recipes"
SHIPPED = sorted(RECIPES.glob("*.yaml"))
EXPR_ALLOWED = ("one SQL scalar expression over the frame's columns, e.g. (high_price + low_price) / 2 "
                "(see docs/recipes.md, 'Expressions')")
TRADES_STEPS = """\
  - ordinal: {name: rec_ordinal, over: [instrument_id, ts_recv, sequence]}
  - epoch_ns: {ts_event_ns: ts_event, ts_recv_ns: ts_recv}
  - rename: {ts_event: trade_timestamp_utc, ts_recv: received_timestamp_utc}
  - fixed_to_decimal: [price]
  - map_values: {column: side, to: aggressor_side, mapping: {B: buy, A: sell, N: null}, default: null}
  - constant: {data_source: databento}
"""


def _compile_error(path: Path, schema: dict[str, pl.DataType], **kw) -> str:
    with pytest.raises(RecipeError) as exc:
        compile_recipe(load_recipe(path), schema, **kw)
    assert "\n" not in str(exc.value)
    return str(exc.value)


def test_shipped_recipes_cover_every_required_job() -> None:
    names = {p.stem for p in SHIPPED}
    assert {"ohlcv_1s", "ohlcv_1m", "ohlcv_5m", "ohlcv_15m", "ohlcv_1h", "ohlcv_1d", "trades", "tbbo", "mbp1",
            "statistics", "definitions"} <= names


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_shipped_recipe_compiles_to_its_table(path: Path, input_schema) -> None:
    recipe = load_recipe(path)
    assert recipe.name == path.stem
    assert SCHEMA_TABLE[recipe.source.schema] == recipe.target.table
    compiled = compile_recipe(recipe, input_schema(recipe.source.schema))
    table = DATA_TABLES[recipe.target.table]
    assert list(compiled.output_schema) == table.names
    for col in table.columns:  # prices exact decimals, timestamps ns UTC, never a float
        got = compiled.output_schema[col.name]
        if col.type.name in ("PRICE", "STAT"):
            assert got == col.type.polars or (got == pl.Null and col.nullable), col.name
        if col.type.name == "TS":
            assert got == pl.Datetime("ns", "UTC"), col.name
    empty = compiled.fn(pl.DataFrame(schema=input_schema(recipe.source.schema)).lazy()).collect()
    assert empty.columns == table.names and empty.height == 0


def test_contract_schema_matches_decode_frame_schema(input_schema) -> None:
    from hdi.decode.dbn import frame_schema

    for schema in SCHEMA_TABLE:
        assert input_schema(schema) == {**frame_schema(schema), "dataset": pl.String()}, schema


def _decoded(samples_dir: Path, dataset: str, schema: str) -> pl.DataFrame:
    from hdi.decode.dbn import decode_file
    from hdi.source.files import open_dbn

    frames = list(decode_file(open_dbn(samples_dir / dataset / f"test_data.{schema}.dbn.zst")))
    return pl.concat(frames).with_columns(dataset=pl.lit(dataset))


@pytest.mark.samples
def test_shipped_recipes_on_real_glbx_samples(samples_dir: Path) -> None:
    def run(name: str, schema: str) -> pl.DataFrame:
        frame = _decoded(samples_dir, "GLBX.MDP3", schema)
        return compile_recipe(load_recipe(RECIPES / f"{name}.yaml"), frame.schema).fn(frame.lazy()).collect()

    bars = run("ohlcv_1d", "ohlcv-1d")
    assert bars.select("instrument_id", "granularity", "bar_timestamp_utc", "open_price", "high_price", "low_price",
                       "close_price", "volume").rows() == [
        (5482, "1d", dt.datetime(2020, 12, 28, tzinfo=dt.UTC), Decimal("3702.75"), Decimal("3735"),
         Decimal("3697.25"), Decimal("3735"), 718174)]
    five = run("ohlcv_5m", "ohlcv-1m")  # 4 one-minute bars 00:00-00:03 -> one 5m bar
    assert five.select("granularity", "open_price", "high_price", "low_price", "close_price", "volume").rows() == [
        ("5m", Decimal("3702.75"), Decimal("3705"), Decimal("3702.5"), Decimal("3703"), 870)]
    trades = run("trades", "trades")
    assert trades["aggressor_side"].to_list() == ["buy", "buy", "sell", "buy"]
    assert trades["rec_ordinal"].to_list() == [0, 0, 0, 0]
    assert trades["ts_recv_ns"][0] == 1_609_113_600_246_821_748
    stats = run("statistics", "statistics")
    assert stats.select("statistic_name", "statistic_value_numeric", "effective_date_utc").rows()[2] == (
        "TRADING_SESSION_HIGH_PRICE", Decimal("3708.25"), dt.date(2020, 12, 28))
    defs = run("definitions", "definition")
    assert defs.select("raw_symbol", "asset", "product_group", "min_price_increment", "display_factor",
                       "unit_of_measure_qty", "contract_multiplier").rows() == [
        ("ESH1", "ES", "ES", Decimal("0.25"), Decimal("0.01"), Decimal("50"), None)]


def test_unknown_column_is_reported_at_its_step_line(steps_recipe, input_schema) -> None:
    path = steps_recipe(TRADES_STEPS.replace("fixed_to_decimal: [price]", "fixed_to_decimal:\n      - prices"))
    assert _compile_error(path, input_schema("trades")) == (
        f"{path}:13: transform[3] fixed_to_decimal: unknown column 'prices' (did you mean 'price'?); allowed: rtype, "
        "publisher_id, instrument_id, trade_timestamp_utc, price, size, action, side, flags, depth, "
        "received_timestamp_utc, ts_in_delta, sequence, symbol, dataset, rec_ordinal, ts_event_ns, ts_recv_ns")


def test_missing_table_column_is_reported_at_target_line(steps_recipe, input_schema) -> None:
    path = steps_recipe(TRADES_STEPS.replace("  - constant: {data_source: databento}\n", ""))
    assert _compile_error(path, input_schema("trades")) == (
        f"{path}:14: table 'trades' needs column(s) the transform does not produce: data_source; allowed: the "
        "transform produces rtype, publisher_id, instrument_id, trade_timestamp_utc, price, size, action, side, "
        "flags, depth, received_timestamp_utc, ts_in_delta, sequence, symbol, dataset, rec_ordinal, ts_event_ns, "
        "ts_recv_ns, aggressor_side")


def test_fixed_point_price_left_as_int_is_a_compile_error(steps_recipe, input_schema) -> None:
    path = steps_recipe(TRADES_STEPS.replace("  - fixed_to_decimal: [price]\n", ""))
    assert _compile_error(path, input_schema("trades")) == (
        f"{path}:14: column 'price' is Int64; table 'trades' stores Decimal(19,9); allowed: Decimal (use "
        "fixed_to_decimal on DBN fixed-point prices)")


def test_always_null_required_column_is_a_compile_error(steps_recipe, input_schema) -> None:
    path = steps_recipe(TRADES_STEPS.replace("{data_source: databento}", "{data_source: null}"))
    assert _compile_error(path, input_schema("trades")) == (
        f"{path}:15: column 'data_source' of table 'trades' is always null but may not be null; allowed: String values")


@pytest.mark.parametrize(("src", "dst", "allowed"), [
    (pl.Boolean(), "Date", "from bool: bool, int, real, text types"),
    (pl.Datetime("ns", "UTC"), "Decimal(19,9)", "from datetime: date, datetime, int, text types"),
    (pl.List(pl.Int64()), "Int64", "from other: text types"),
])
def test_cast_between_incompatible_types_is_a_compile_error(steps_recipe, src, dst, allowed) -> None:
    path = steps_recipe(f"  - cast:\n      d: '{dst}'\n")
    assert _compile_error(path, {"d": src}, select_target=False) == (
        f"{path}:10: transform[0] cast: cannot cast column 'd' from {src} to {dst}; allowed: {allowed}")


def test_expression_the_plan_rejects_is_reported_at_its_step(steps_recipe) -> None:
    path = steps_recipe("  - constant: {x: 1}\n  - derive: {y: upper(size) || side}\n")
    assert _compile_error(path, {"size": pl.Int64(), "side": pl.String()}, select_target=False) == (
        f"{path}:10: transform[1] derive: invalid series dtype: expected `String`, got `i64` for series with name "
        "`size`; allowed: arguments and column types as in docs/recipes.md ('derive')")


def test_compiled_fn_rejects_a_frame_of_another_schema(steps_recipe, input_schema) -> None:
    path = steps_recipe(TRADES_STEPS)
    compiled = compile_recipe(load_recipe(path), input_schema("trades"))
    wrong = pl.DataFrame(schema={**input_schema("trades"), "price": pl.Float64()}).lazy()
    with pytest.raises(RecipeError, match=r"frame does not match the schema the recipe was compiled for \(differs in: price\)"):
        compiled.fn(wrong)


def test_compiled_fn_is_pure_and_lazy(steps_recipe, input_schema) -> None:
    compiled = compile_recipe(load_recipe(steps_recipe(TRADES_STEPS)), input_schema("trades"))
    frame = pl.DataFrame({c: [None] for c in input_schema("trades")}, schema=input_schema("trades")).with_columns(
        price=pl.lit(1_500_000_000, dtype=pl.Int64), side=pl.lit("A"))
    plan = compiled.fn(frame.lazy())
    assert isinstance(plan, pl.LazyFrame)
    first, second = plan.collect(), compiled.fn(frame.lazy()).collect()
    assert first.equals(second) and first["price"].to_list() == [Decimal("1.5")]
    assert first["aggressor_side"].to_list() == ["sell"] and frame["price"].to_list() == [1_500_000_000]


@pytest.mark.parametrize(("expr", "what"), [
    ("size > (SELECT 1)", "'SELECT' is not allowed: only a scalar expression, no subqueries or statements"),
    ("EXISTS (SELECT 1 FROM t)", "'EXISTS' is not allowed: only a scalar expression, no subqueries or statements"),
    ("size > 1; DROP TABLE trades", "';' is not allowed: an expression is a single SQL expression"),
    ("size > 1 -- and more", "comments are not allowed inside an expression"),
    ("size > 'unterminated", "unterminated quote in expression"),
])
def test_filter_rejects_anything_but_one_scalar_expression(steps_recipe, expr, what) -> None:
    path = steps_recipe(f'  - filter: "{expr}"\n')
    with pytest.raises(RecipeError) as exc:
        load_recipe(path)
    assert str(exc.value) == f"{path}:9: transform[0] filter: {what}; allowed: {EXPR_ALLOWED}"


AGG = "it aggregates or ranks rows, so a row's value would depend on the chunk it is in"


@pytest.mark.parametrize(("expr", "what"), [
    ("sum(size)", f"function 'sum' is not allowed: {AGG}"),
    ("count(*)", f"function 'count' is not allowed: {AGG}"),
    ("row_number()", f"function 'row_number' is not allowed: {AGG}"),
    ("now()", "'now' is not allowed: its value changes from run to run, so re-ingesting would change rows"),
    ("CURRENT_TIMESTAMP", "'CURRENT_TIMESTAMP' is not allowed: its value changes from run to run, so re-ingesting "
                          "would change rows"),
    ("sqr(size)", "unknown function 'sqr' (did you mean 'sqrt'?)"),
])
def test_derive_rejects_functions_that_are_not_row_wise(steps_recipe, expr, what) -> None:
    path = steps_recipe(f'  - derive: {{x: "{expr}"}}\n')
    with pytest.raises(RecipeError) as exc:
        load_recipe(path)
    assert str(exc.value).startswith(f"{path}:9: transform[0] derive.x: {what}; allowed: abs, ceil, ceiling, ")
    assert str(exc.value).endswith(", strftime, timestamp, cast, try_cast")


def test_derive_columns_are_checked_against_the_frame(steps_recipe) -> None:
    path = steps_recipe("  - derive: {mid: (bid + ask) / 2, spread: ask - bid}\n  - derive: {x: mid * sizee}\n")
    assert _compile_error(path, {"bid": pl.Int64(), "ask": pl.Int64(), "size": pl.Int64()},
                          select_target=False) == (
        f"{path}:10: transform[1] derive: unknown column 'sizee' (did you mean 'size'?); "
        "allowed: bid, ask, size, mid, spread")
    same_step = steps_recipe("  - derive: {mid: (bid + ask) / 2, x: mid * 2}\n")
    assert _compile_error(same_step, {"bid": pl.Int64(), "ask": pl.Int64()}, select_target=False) == (
        f"{same_step}:9: transform[0] derive: 'mid' is derived in the same step; steps see only columns that exist "
        "before them; allowed: a second derive step that uses it")


def test_filter_must_be_a_condition(steps_recipe) -> None:
    path = steps_recipe("  - filter: size + 1\n")
    assert _compile_error(path, {"size": pl.UInt32()}, select_target=False) == (
        f"{path}:9: transform[0] filter: the filter expression gives UInt32, not a true/false value; "
        "allowed: a condition, e.g. size > 0")


def test_rename_onto_an_existing_column_is_a_compile_error(steps_recipe) -> None:
    path = steps_recipe("  - rename:\n      ts_event: price\n")
    assert _compile_error(path, {"ts_event": pl.Int64(), "price": pl.Int64()}, select_target=False) == (
        f"{path}:10: transform[0] rename: cannot rename 'ts_event' to 'price': column 'price' already exists; "
        "allowed: a new name, or drop/rename the existing column first")


def test_map_values_key_type_must_match_the_column(steps_recipe) -> None:
    path = steps_recipe("  - map_values:\n      column: side\n      mapping:\n        1: buy\n")
    assert _compile_error(path, {"side": pl.String()}, select_target=False) == (
        f"{path}:12: transform[0] map_values: mapping key an integer (1) does not match column 'side' (String); "
        "allowed: string keys for a String column (quote numbers), integer keys for an integer column")


def test_every_op_and_key_is_documented() -> None:
    from hdi.recipe.load import SOURCE_KEYS, TOP_KEYS
    from hdi.recipe.registry import OPS

    doc = (Path(__file__).resolve().parents[2] / "docs" / "recipes.md").read_text()
    headings = {w.strip(",") for line in doc.splitlines() if line.startswith("### ") for w in line[4:].split()}
    assert set(OPS) - headings == set()
    assert [k for k in (*TOP_KEYS, *SOURCE_KEYS, "max_failure_rate", "allow_non_positive_prices",
                        "on_budget_exceeded", "on_conflict",
                        "max_symbols", "stype_in") if f"`{k}`" not in doc] == []
