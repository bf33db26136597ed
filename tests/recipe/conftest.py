"""Fixtures for recipe tests: input schemas built from the decode contract, bad-YAML writer."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import databento_dbn as dbn
import polars as pl
import pytest

ROOT = Path(__file__).resolve().parents[2]
RECIPES = ROOT / "recipes"

_CLASSES = {
    "ohlcv-1s": dbn.OHLCVMsg, "ohlcv-1m": dbn.OHLCVMsg, "ohlcv-1h": dbn.OHLCVMsg, "ohlcv-1d": dbn.OHLCVMsg,
    "trades": dbn.TradeMsg, "tbbo": dbn.MBP1Msg, "mbp-1": dbn.MBP1Msg,
    "statistics": dbn.StatMsg, "definition": dbn.InstrumentDefMsg,
    "mbo": dbn.MBOMsg, "mbp-10": dbn.MBP10Msg, "bbo-1s": dbn.BBOMsg, "bbo-1m": dbn.BBOMsg,
    "cbbo-1s": dbn.CBBOMsg, "cbbo-1m": dbn.CBBOMsg, "status": dbn.StatusMsg, "imbalance": dbn.ImbalanceMsg,
    "ohlcv-eod": dbn.OHLCVMsg,
}
_INTS = {"u1": pl.UInt8, "u2": pl.UInt16, "u4": pl.UInt32, "u8": pl.UInt64,
         "i1": pl.Int8, "i2": pl.Int16, "i4": pl.Int32, "i8": pl.Int64}


def contract_schema(schema: str) -> dict[str, pl.DataType]:
    """The frame a recipe receives for a DBN schema, written from notes/decode_contract.md alone:
    the record class's fields in ``_dtypes`` order minus ``length`` and hidden/reserved fields;
    timestamps Datetime(ns, UTC); prices and statistics ``quantity`` Int64; char fields String;
    other integers at their DBN width; then ``symbol`` and the pipeline's ``dataset``."""
    cls = _CLASSES[schema]
    hidden = set(cls._hidden_fields) | {"length"}
    out: dict[str, pl.DataType] = {}
    for name, np_type in cls._dtypes:
        if name in hidden or name.startswith("_"):
            continue
        if name in cls._timestamp_fields:
            out[name] = pl.Datetime("ns", "UTC")
        elif name in cls._price_fields or (cls is dbn.StatMsg and name == "quantity"):
            out[name] = pl.Int64()
        elif np_type.startswith("S"):
            out[name] = pl.String()
        else:
            out[name] = _INTS[np_type]()
    return {**out, "symbol": pl.String(), "dataset": pl.String()}


@pytest.fixture
def input_schema() -> Callable[[str], dict[str, pl.DataType]]:
    """``input_schema("trades")`` -> the contract's frame schema plus ``dataset``."""
    return contract_schema


@pytest.fixture
def write_recipe(tmp_path: Path) -> Callable[[str, str], Path]:
    """Write YAML text to ``tmp_path/<name>.yaml`` and return the path."""

    def write(text: str, name: str = "recipe") -> Path:
        path = tmp_path / f"{name}.yaml"
        path.write_text(text, encoding="utf-8")
        return path

    return write


# A recipe around a transform: step i of `steps` ("  - op: args" lines) is written on line STEP_LINE + i.
STEP_LINE = 9
_HEAD = """\
name: steps
source:
  vendor: databento
  schema: {schema}
  start: 2024-01-01
  end: 2024-01-02
  requests: [{{dataset: GLBX.MDP3, stype_in: raw_symbol, symbols: [ESH4]}}]
transform:
{steps}target: {{table: {table}}}
"""


@pytest.fixture
def steps_recipe(write_recipe) -> Callable[..., Path]:
    """``steps_recipe("  - rename: {a: b}\\n", schema="trades", table="trades")`` -> path of a full recipe."""

    def make(steps: str, schema: str = "trades", table: str = "trades") -> Path:
        return write_recipe(_HEAD.format(schema=schema, steps=steps, table=table))

    return make


@pytest.fixture
def run_steps(steps_recipe) -> Callable[..., pl.DataFrame]:
    """Run a transform on a frame and return every column it leaves (no target select)."""
    from hdi.recipe import compile_recipe, load_recipe

    def run(steps: str, frame: pl.DataFrame, schema: str = "trades") -> pl.DataFrame:
        compiled = compile_recipe(load_recipe(steps_recipe(steps, schema)), frame.schema, select_target=False)
        return compiled.fn(frame.lazy()).collect()

    return run
