"""load_recipe: the typed Recipe it returns, and the exact one-line error for every kind of bad file."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from hdi.errors import RecipeError
from hdi.recipe import Chunk, Request, load_recipe

BASE = """\
name: demo_1d
description: test recipe
source:
  vendor: databento
  gateway: null
  schema: ohlcv-1d
  start: 2024-01-01
  end: 2024-02-01
  chunk: {period: month, max_symbols: 10}
  requests:
    - {dataset: GLBX.MDP3, stype_in: continuous, symbols: [CL.c.0, NG.c.0]}
    - dataset: EQUS.MINI
      stype_in: raw_symbol
      symbols: [SPY]
transform:
  - rename: {ts_event: bar_timestamp_utc, open: open_price, high: high_price, low: low_price, close: close_price}
  - fixed_to_decimal: [open_price, high_price, low_price, close_price]
  - constant: {granularity: 1d, data_source: databento, trade_count: null, vwap: null}
validate:
  max_failure_rate: 0.01
  allow_non_positive_prices: false
target:
  table: ohlcv
  on_conflict: ignore
"""
UTC = dt.UTC
TOP = "a mapping with keys name, description, source, transform, validate, target (see docs/recipes.md)"
SYMBOL_RULE = "A-Z a-z 0-9 . _ - / ! : and inner spaces, 1-70 characters, no leading or trailing space"


def test_load_recipe_given_valid_file_returns_typed_recipe(write_recipe) -> None:
    path = write_recipe(BASE)
    r = load_recipe(path)
    assert (r.name, r.description, r.path) == ("demo_1d", "test recipe", path)
    assert r.source.vendor == "databento" and r.source.gateway is None and r.source.schema == "ohlcv-1d"
    assert r.source.start == dt.datetime(2024, 1, 1, tzinfo=UTC)
    assert r.source.end == dt.datetime(2024, 2, 1, tzinfo=UTC)
    assert r.source.chunk == Chunk("month", 10)
    assert r.source.requests == (Request("GLBX.MDP3", "continuous", ("CL.c.0", "NG.c.0")),
                                 Request("EQUS.MINI", "raw_symbol", ("SPY",)))
    assert r.source.symbols == ("CL.c.0", "NG.c.0", "SPY")
    assert [(s.op, s.line) for s in r.transform] == [("rename", 16), ("fixed_to_decimal", 17), ("constant", 18)]
    assert r.transform[1].args == {"columns": ["open_price", "high_price", "low_price", "close_price"],
                                   "precision": 19, "scale": 9}
    assert (r.validate.max_failure_rate, r.validate.allow_non_positive_prices) == (0.01, False)
    assert (r.target.table, r.target.on_conflict, r.line_of("target")) == ("ohlcv", "ignore", 22)


def test_load_recipe_given_defaults_omitted_uses_documented_defaults(write_recipe) -> None:
    text = BASE.replace("  chunk: {period: month, max_symbols: 10}\n", "").replace("  gateway: null\n", "")
    text = text.replace("validate:\n  max_failure_rate: 0.01\n  allow_non_positive_prices: false\n", "")
    text = text.replace("  on_conflict: ignore\n", "").replace("description: test recipe\n", "")
    r = load_recipe(write_recipe(text))
    assert r.source.chunk == Chunk("month", 10) and r.source.gateway is None and r.description == ""
    assert (r.validate.max_failure_rate, r.validate.allow_non_positive_prices, r.validate.on_budget_exceeded,
            r.target.on_conflict) == (0.01, None, "report", "ignore")  # None: the price rule follows the instrument


@pytest.mark.parametrize(("period", "days"), [("day", 1), ("week", 7), ("month", None), ("year", None), ("3d", 3)])
def test_load_recipe_given_chunk_period_exposes_its_days(write_recipe, period, days) -> None:
    r = load_recipe(write_recipe(BASE.replace("period: month, max_symbols: 10", f"period: {period}, max_symbols: 4")))
    assert (r.source.chunk.period, r.source.chunk.max_symbols, r.source.chunk.days) == (period, 4, days)


@pytest.mark.parametrize(("start", "end", "want_start", "want_end"), [
    ("2024-03-01T14:30:00Z", "2024-03-01T21:00:00+02:00", dt.datetime(2024, 3, 1, 14, 30, tzinfo=UTC),
     dt.datetime(2024, 3, 1, 19, 0, tzinfo=UTC)),
    ("'2024-03-01'", "2024-03-02 00:00:00", dt.datetime(2024, 3, 1, tzinfo=UTC), dt.datetime(2024, 3, 2, tzinfo=UTC)),
])
def test_load_recipe_given_timestamps_normalizes_to_utc(write_recipe, start, end, want_start, want_end) -> None:
    text = BASE.replace("start: 2024-01-01", f"start: {start}").replace("end: 2024-02-01", f"end: {end}")
    r = load_recipe(write_recipe(text))
    assert (r.source.start, r.source.end) == (want_start, want_end)


@pytest.mark.parametrize("sym", ["BRN FMJ0024!", "AAPL  250221C00250000", "ESH5-ESM5", "BRK.B", "UD:1V: VT 0307920987"])
def test_load_recipe_given_real_databento_raw_symbols_accepts_them(write_recipe, sym) -> None:
    r = load_recipe(write_recipe(BASE.replace("symbols: [SPY]", f"symbols: ['{sym}']")))
    assert r.source.requests[1].symbols == (sym,)


# (case id, text to replace, replacement, line, message after "<file>:<line>: ")
BAD = [
    ("unknown top key", "validate:", "validat:", 19,
     "unknown key 'validat' (did you mean 'validate'?); allowed: name, description, source, transform, validate, target"),
    ("unknown source key", "  schema: ohlcv-1d", "  shema: ohlcv-1d", 6,
     "source: unknown key 'shema' (did you mean 'schema'?); allowed: vendor, gateway, schema, start, end, chunk, requests, batch_threshold_bytes"),
    ("unknown request key", "      symbols: [SPY]", "      symbol: [SPY]", 14,
     "source.requests[1]: unknown key 'symbol' (did you mean 'symbols'?); allowed: dataset, stype_in, symbols"),
    ("unknown chunk key", "{period: month, max_symbols: 10}", "{period: month, max_symbol: 10}", 9,
     "source.chunk: unknown key 'max_symbol' (did you mean 'max_symbols'?); allowed: period, max_symbols"),
    ("unknown validate key", "  allow_non_positive_prices: false", "  allow_negative_prices: false", 21,
     "validate: unknown key 'allow_negative_prices' (did you mean 'allow_non_positive_prices'?); "
     "allowed: max_failure_rate, allow_non_positive_prices, on_budget_exceeded"),
    ("unknown op arg key", "- fixed_to_decimal: [open_price, high_price, low_price, close_price]",
     "- fixed_to_decimal: {columns: [open_price], precison: 19}", 17,
     "transform[1] fixed_to_decimal: unknown key 'precison' (did you mean 'precision'?); allowed: columns, precision, scale"),
    ("missing key", "  schema: ohlcv-1d\n", "", 3,
     "source: missing key 'schema'; allowed: a mapping with keys vendor, gateway, schema, start, end, chunk, requests, batch_threshold_bytes "
     "(required: vendor, schema)"),
    ("symbols not a list", "symbols: [SPY]", "symbols: SPY", 14,
     "source.requests[1].symbols: expected a list, got a string 'SPY'; allowed: a list of symbols, e.g. [CL.c.0, NG.c.0]"),
    ("rate not a number", "max_failure_rate: 0.01", "max_failure_rate: high", 20,
     "validate.max_failure_rate: expected a number from 0 to 1, got a string 'high'; allowed: a fraction from 0 to 1, e.g. 0.01"),
    ("rate out of range", "max_failure_rate: 0.01", "max_failure_rate: 5", 20,
     "validate.max_failure_rate: expected a number from 0 to 1, got an integer (5); allowed: a fraction from 0 to 1, e.g. 0.01"),
    ("switch not a bool", "allow_non_positive_prices: false", "allow_non_positive_prices: maybe", 21,
     "validate.allow_non_positive_prices: expected true or false, got a string 'maybe'; allowed: true, false"),
    ("unknown budget action", "allow_non_positive_prices: false", "on_budget_exceeded: rolback", 21,
     "validate.on_budget_exceeded: unknown on_budget_exceeded 'rolback' (did you mean 'rollback'?); "
     "allowed: report, rollback"),
    ("unknown op", "- fixed_to_decimal:", "- fixed_to_decimel:", 17,
     "transform[1]: unknown op 'fixed_to_decimel' (did you mean 'fixed_to_decimal'?); allowed: rename, select, drop, "
     "cast, constant, derive, filter, map_values, epoch_ns, utc_date, fixed_to_decimal, ordinal, resample, stat_name, "
     "stat_value"),
    ("two ops in one step", "  - constant: {granularity: 1d", "  - select: [a]\n    constant: {granularity: 1d", 18,
     "transform[2]: a step must be a mapping with exactly one op, got a mapping with 2 keys; allowed: rename, select, "
     "drop, cast, constant, derive, filter, map_values, epoch_ns, utc_date, fixed_to_decimal, ordinal, resample, "
     "stat_name, stat_value"),
    ("bad op args", "- rename: {ts_event: bar_timestamp_utc,", "- rename: [ts_event]\n  - rename: {ts_event: bar_timestamp_utc,", 16,
     "transform[0] rename: expected a mapping, got a list; allowed: {old_name: new_name, ...}"),
    ("bad dtype", "- constant: {granularity: 1d", "- cast: {volume: Int65}\n  - constant: {granularity: 1d", 18,
     "transform[2] cast.volume: unknown dtype 'Int65' (did you mean 'Int64'?); allowed: Int8, Int16, Int32, Int64, UInt8, "
     "UInt16, UInt32, UInt64, Float32, Float64, String, Boolean, Date, Decimal(P,S) with 1<=P<=38, 0<=S<=P, "
     "Datetime(ns|us|ms) or Datetime(ns|us|ms,UTC)"),
    ("dtype with comma in flow mapping", "- constant: {granularity: 1d", "- cast: {open: Decimal(19,9)}\n  - constant: {granularity: 1d", 18,
     "transform[2] cast.open: unknown dtype 'Decimal(19' (inside {...} quote a dtype with a comma: 'Decimal(19,9)'); "
     "allowed: Int8, Int16, Int32, Int64, UInt8, UInt16, UInt32, UInt64, Float32, Float64, String, Boolean, Date, "
     "Decimal(P,S) with 1<=P<=38, 0<=S<=P, Datetime(ns|us|ms) or Datetime(ns|us|ms,UTC)"),
    ("unknown schema", "schema: ohlcv-1d", "schema: ohlcv-5m", 6,
     "source.schema: unknown schema 'ohlcv-5m' (did you mean 'ohlcv-1m'?); allowed: ohlcv-1s, ohlcv-1m, ohlcv-1h, "
     "ohlcv-1d, trades, tbbo, mbp-1, statistics, definition, mbo, mbp-10, bbo-1s, bbo-1m, cbbo-1s, cbbo-1m, status, "
     "imbalance, ohlcv-eod"),
    ("a Databento schema hdi does not store", "schema: ohlcv-1d", "schema: tcbbo", 6,
     "source.schema: unknown schema 'tcbbo' (a Databento schema hdi does not store; docs/schemas.md lists the "
     "stored ones); allowed: ohlcv-1s, ohlcv-1m, ohlcv-1h, ohlcv-1d, trades, tbbo, mbp-1, statistics, definition, "
     "mbo, mbp-10, bbo-1s, bbo-1m, cbbo-1s, cbbo-1m, status, imbalance, ohlcv-eod"),
    ("unknown stype_in", "stype_in: raw_symbol", "stype_in: raw_symbols", 13,
     "source.requests[1].stype_in: unknown stype_in 'raw_symbols' (did you mean 'raw_symbol'?); "
     "allowed: raw_symbol, continuous, parent, instrument_id"),
    ("unknown vendor", "vendor: databento", "vendor: polygon", 4,
     "source.vendor: unknown vendor 'polygon'; allowed: databento"),
    ("unknown table", "table: ohlcv", "table: ohlc", 23,
     "target.table: unknown table 'ohlc' (did you mean 'ohlcv'?); allowed: ohlcv, trades, tbbo, mbp1, statistics, instruments, "
     "mbo, mbp10, bbo, cbbo, status, imbalance"),
    ("unknown on_conflict", "on_conflict: ignore", "on_conflict: replace", 24,
     "target.on_conflict: unknown on_conflict 'replace'; allowed: ignore, update"),
    ("unknown chunk period", "period: month", "period: monthly", 9,
     "source.chunk.period: unknown chunk period 'monthly' (did you mean 'month'?); "
     "allowed: day, week, month, year, <N>d (N = 1..9999)"),
    ("empty symbol list", "symbols: [SPY]", "symbols: []", 14,
     "source.requests[1].symbols: the list is empty; allowed: a list of symbols, e.g. [CL.c.0, NG.c.0]"),
    ("start after end", "end: 2024-02-01", "end: 2023-02-01", 7,
     "source.start: start 2024-01-01 is not before end 2023-02-01 (end is exclusive); allowed: start < end"),
    ("start equals end", "end: 2024-02-01", "end: 2024-01-01", 7,
     "source.start: start 2024-01-01 is not before end 2024-01-01 (end is exclusive); allowed: start < end"),
    ("unparsable date", "start: 2024-01-01", "start: 2024-13-01", 7,
     "source.start: start '2024-13-01' is not a date or timestamp; "
     "allowed: a date (2024-01-01) or an ISO-8601 timestamp (2024-01-01T14:30:00Z), UTC"),
    ("unparsable text date", "end: 2024-02-01", "end: next week", 8,
     "source.end: end 'next week' is not a date or timestamp; "
     "allowed: a date (2024-01-01) or an ISO-8601 timestamp (2024-01-01T14:30:00Z), UTC"),
    ("symbol with quote", "symbols: [SPY]", "symbols: [\"SP'Y\"]", 14,
     f"source.requests[1].symbols[0]: symbol \"SP'Y\" has a character not allowed (\"'\"); allowed: {SYMBOL_RULE}"),
    ("symbol with semicolon", "symbols: [SPY]", "symbols: ['SPY;DROP TABLE x']", 14,
     f"source.requests[1].symbols[0]: symbol 'SPY;DROP TABLE x' has a character not allowed (';'); allowed: {SYMBOL_RULE}"),
    ("symbol with whitespace", "symbols: [SPY]", "symbols: ['SPY ']", 14,
     f"source.requests[1].symbols[0]: symbol 'SPY ' has leading or trailing whitespace; allowed: {SYMBOL_RULE}"),
    ("symbol with tab", "symbols: [SPY]", 'symbols: ["S\\tPY"]', 14,
     f"source.requests[1].symbols[0]: symbol 'S\\tPY' has a character not allowed ('\\t'); allowed: {SYMBOL_RULE}"),
    ("symbol non-ascii", "symbols: [SPY]", "symbols: [SPÝ]", 14,
     f"source.requests[1].symbols[0]: symbol 'SPÝ' has a character not allowed ('Ý'); allowed: {SYMBOL_RULE}"),
    ("symbol YAML bool", "symbols: [SPY]", "symbols: [ON]", 14,
     "source.requests[1].symbols[0]: symbol must be a string, got a boolean (true) (quote it in YAML); "
     "allowed: a string such as CL.c.0, ESH5 or SPY"),
    ("symbol twice", "symbols: [CL.c.0, NG.c.0]", "symbols: [CL.c.0, CL.c.0]", 11,
     "source.requests[0].symbols[1]: symbol 'CL.c.0' is listed twice; allowed: each symbol once per request"),
    ("continuous symbol as raw", "symbols: [SPY]", "symbols: [ES.c.0]", 14,
     "source.requests[1].symbols[0]: symbol 'ES.c.0' looks like a continuous symbol but stype_in is raw_symbol; "
     "allowed: stype_in: continuous for ES.c.0, or a venue symbol such as ESH5 or SPY"),
    ("raw symbol as continuous", "symbols: [CL.c.0, NG.c.0]", "symbols: [CLZ4]", 11,
     "source.requests[0].symbols[0]: symbol 'CLZ4' is not a continuous symbol; "
     "allowed: ROOT.c.N, ROOT.n.N or ROOT.v.N, e.g. CL.c.0"),
    ("bad dataset", "dataset: EQUS.MINI", "dataset: equs.mini", 12,
     "source.requests[1].dataset: bad dataset 'equs.mini' (did you mean 'EQUS.MINI'?); "
     "allowed: a Databento dataset code VENUE.FEED in capitals, e.g. GLBX.MDP3, EQUS.MINI"),
    ("bad name", "name: demo_1d", "name: Demo-1d", 1,
     "name: bad recipe name 'Demo-1d'; allowed: lower-case letters, digits and _ ([a-z0-9_]+)"),
    ("bad gateway", "gateway: null", "gateway: hist.databento.com", 5,
     "source.gateway: bad gateway 'hist.databento.com'; allowed: null or a base URL such as https://hist.databento.com"),
    ("max_symbols too big", "max_symbols: 10", "max_symbols: 5000", 9,
     "source.chunk.max_symbols: expected an integer from 1 to 2000, got an integer (5000); allowed: 1..2000"),
    ("duplicate key", "  on_conflict: ignore\n", "  on_conflict: ignore\n  table: trades\n", 25,
     f"duplicate key 'table' (first written on line 23); allowed: {TOP}"),
    ("malformed YAML", "  schema: ohlcv-1d", "  schema: [ohlcv-1d", 7,
     f"malformed YAML: while parsing a flow sequence expected ',' or ']', but got ':'; allowed: {TOP}"),
    ("python tag", "name: demo_1d", "name: !!python/object:os.system echo", 1,
     "malformed YAML: could not determine a constructor for the tag 'tag:yaml.org,2002:python/object:os.system'; "
     f"allowed: {TOP}"),
]


@pytest.mark.parametrize(("old", "new", "line", "msg"), [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_load_recipe_given_bad_value_raises_one_line_error_at_its_line(write_recipe, old, new, line, msg) -> None:
    assert old in BASE
    path = write_recipe(BASE.replace(old, new, 1))
    with pytest.raises(RecipeError) as exc:
        load_recipe(path)
    assert str(exc.value) == f"{path}:{line}: {msg}"
    assert "\n" not in str(exc.value)


@pytest.mark.parametrize(("text", "line", "msg"), [
    ("", 1, f"the recipe is empty; allowed: {TOP}"),
    ("# only a comment\n\n", 1, f"the recipe is empty; allowed: {TOP}"),
    ("- name: x\n- source: y\n", 1, f"a recipe must be a mapping, got a list; allowed: {TOP}"),
    ("just text\n", 1, f"a recipe must be a mapping, got a string 'just text'; allowed: {TOP}"),
    (BASE + "---\nname: second\n", 25, f"a recipe file holds one YAML document, found several ('---'); allowed: {TOP}"),
])
def test_load_recipe_given_not_a_recipe_mapping_raises(write_recipe, text, line, msg) -> None:
    path = write_recipe(text)
    with pytest.raises(RecipeError) as exc:
        load_recipe(path)
    assert str(exc.value) == f"{path}:{line}: {msg}"


def test_load_recipe_given_missing_file_suggests_a_sibling(tmp_path: Path, write_recipe) -> None:
    write_recipe(BASE, "ohlcv_1d")
    write_recipe(BASE, "trades")
    missing = tmp_path / "ohlcv_1x.yaml"
    with pytest.raises(RecipeError) as exc:
        load_recipe(missing)
    assert str(exc.value) == (f"{missing}: recipe file not found (did you mean '{tmp_path}/ohlcv_1d.yaml'?); "
                              f"allowed: {tmp_path}/ohlcv_1d.yaml, {tmp_path}/trades.yaml")


def test_load_recipe_given_directory_or_binary_file_raises(tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match=r": is a directory, not a recipe file; allowed: a path to a \.yaml recipe file$"):
        load_recipe(tmp_path)
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"name: x\n\xff\xfe\n")
    with pytest.raises(RecipeError) as exc:
        load_recipe(binary)
    assert str(exc.value) == f"{binary}:2: the file is not UTF-8 text; allowed: a UTF-8 YAML file"
