"""Recipe.with_overrides (CLI --start/--end/--symbols) and recipe_hash (the ingest ledger's recipe id)."""

from __future__ import annotations

import datetime as dt

import pytest

from hdi.errors import RecipeError
from hdi.recipe import Request, load_recipe, recipe_hash

MULTI = """\
name: bars
source:
  vendor: databento
  schema: ohlcv-1d
  start: 2024-01-01
  end: 2025-01-01
  requests:
    - {dataset: GLBX.MDP3, stype_in: continuous, symbols: [CL.c.0, NG.c.0, ES.c.0]}
    - {dataset: EQUS.MINI, stype_in: raw_symbol, symbols: [SPY]}
transform:
  - rename: {ts_event: bar_timestamp_utc, open: open_price, high: high_price, low: low_price, close: close_price}
  - fixed_to_decimal: [open_price, high_price, low_price, close_price]
  - constant: {granularity: 1d, data_source: databento, trade_count: null, vwap: null}
target: {table: ohlcv}
"""
SINGLE = MULTI.replace("    - {dataset: EQUS.MINI, stype_in: raw_symbol, symbols: [SPY]}\n", "")
UTC = dt.UTC


def test_with_overrides_given_dates_returns_new_recipe_and_keeps_original(write_recipe) -> None:
    r = load_recipe(write_recipe(MULTI))
    o = r.with_overrides(start="2024-06-03", end=dt.date(2024, 6, 4))
    assert (o.source.start, o.source.end) == (dt.datetime(2024, 6, 3, tzinfo=UTC), dt.datetime(2024, 6, 4, tzinfo=UTC))
    assert o.source.requests == r.source.requests and o.transform == r.transform
    assert r.source.start == dt.datetime(2024, 1, 1, tzinfo=UTC)  # unchanged


def test_with_overrides_given_only_start_checks_it_against_recipe_end(write_recipe) -> None:
    path = write_recipe(MULTI)
    with pytest.raises(RecipeError) as exc:
        load_recipe(path).with_overrides(start="2025-03-01")
    assert str(exc.value) == (f"{path}: start 2025-03-01 is not before end 2025-01-01 (end is exclusive); "
                              "allowed: start < end")


def test_with_overrides_given_bad_date_raises(write_recipe) -> None:
    path = write_recipe(MULTI)
    with pytest.raises(RecipeError) as exc:
        load_recipe(path).with_overrides(end="2024-02-30")
    assert str(exc.value) == (f"{path}: --end '2024-02-30' is not a date or timestamp; allowed: a date (2024-01-01) "
                              "or an ISO-8601 timestamp (2024-01-01T14:30:00Z), UTC")


def test_with_overrides_given_symbols_on_multi_request_keeps_their_requests(write_recipe) -> None:
    r = load_recipe(write_recipe(MULTI))
    assert r.with_overrides(symbols=["SPY", "ES.c.0"]).source.requests == (
        Request("GLBX.MDP3", "continuous", ("ES.c.0",)), Request("EQUS.MINI", "raw_symbol", ("SPY",)))
    assert r.with_overrides(symbols="NG.c.0, CL.c.0").source.requests == (
        Request("GLBX.MDP3", "continuous", ("CL.c.0", "NG.c.0")),)


def test_with_overrides_given_symbol_outside_every_request_names_the_requests(write_recipe) -> None:
    path = write_recipe(MULTI)
    with pytest.raises(RecipeError) as exc:
        load_recipe(path).with_overrides(symbols=["HO.c.0"])
    assert str(exc.value) == (
        f"{path}: --symbols 'HO.c.0' is in none of the recipe's requests (GLBX.MDP3/continuous [CL.c.0, NG.c.0, "
        "ES.c.0]; EQUS.MINI/raw_symbol [SPY]) (did you mean 'NG.c.0'?); allowed: CL.c.0, ES.c.0, NG.c.0, SPY")


def test_with_overrides_given_symbols_on_single_request_replaces_them(write_recipe) -> None:
    r = load_recipe(write_recipe(SINGLE))
    assert r.with_overrides(symbols=["HO.c.0", "RB.c.0"]).source.requests == (
        Request("GLBX.MDP3", "continuous", ("HO.c.0", "RB.c.0")),)


def test_with_overrides_given_bad_symbol_on_single_request_raises(write_recipe) -> None:
    path = write_recipe(SINGLE)
    with pytest.raises(RecipeError) as exc:
        load_recipe(path).with_overrides(symbols=["HOZ4"])
    assert str(exc.value) == (f"{path}: symbol 'HOZ4' is not a continuous symbol; "
                              "allowed: ROOT.c.N, ROOT.n.N or ROOT.v.N, e.g. CL.c.0")


def test_recipe_hash_given_comment_whitespace_and_arg_form_changes_is_stable(write_recipe) -> None:
    h = recipe_hash(load_recipe(write_recipe(MULTI, "a")))
    reformatted = ("# a comment\n" + MULTI).replace("  - fixed_to_decimal: [open_price, high_price, low_price, close_price]",
                                                    "  - fixed_to_decimal:   # exact decimals\n"
                                                    "      columns: [open_price, high_price, low_price, close_price]\n"
                                                    "      precision: 19")
    reformatted = reformatted.replace("target: {table: ohlcv}", "target:\n    table:   ohlcv\n    on_conflict: ignore")
    assert len(h) == 64
    assert recipe_hash(load_recipe(write_recipe(reformatted, "b"))) == h


def test_recipe_hash_given_other_range_symbols_name_or_failure_rate_is_unchanged(write_recipe) -> None:
    r = load_recipe(write_recipe(MULTI))
    renamed = load_recipe(write_recipe(MULTI.replace("name: bars", "name: bars_copy").replace(
        "target: {table: ohlcv}", "validate: {max_failure_rate: 0.05}\ntarget: {table: ohlcv}"), "c"))
    assert recipe_hash(r.with_overrides(start="2020-01-01", symbols=["SPY"])) == recipe_hash(r) == recipe_hash(renamed)


@pytest.mark.parametrize(("old", "new"), [
    ("granularity: 1d", "granularity: 1D"),
    ("fixed_to_decimal: [open_price, high_price, low_price, close_price]",
     "fixed_to_decimal: {columns: [open_price, high_price, low_price, close_price], precision: 20}"),
    ("target: {table: ohlcv}", "target: {table: ohlcv, on_conflict: update}"),
    ("target: {table: ohlcv}", "validate: {allow_non_positive_prices: true}\ntarget: {table: ohlcv}"),
    ("schema: ohlcv-1d", "schema: ohlcv-1h"),
])
def test_recipe_hash_given_semantic_change_differs(write_recipe, old, new) -> None:
    assert old in MULTI
    before = recipe_hash(load_recipe(write_recipe(MULTI, "a")))
    assert recipe_hash(load_recipe(write_recipe(MULTI.replace(old, new), "b"))) != before
