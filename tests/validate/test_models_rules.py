"""The Patito models follow hdi._tables, and the rules follow the models."""

from __future__ import annotations

import subprocess
import sys

import databento_dbn
import patito as pt
import polars as pl
import pytest

from hdi._tables import DATA_TABLES
from hdi.errors import ValidationError
from hdi.validate.models import STAT_TYPES, model_for
from hdi.validate.rules import row_rules
from hdi.validate.split import split


@pytest.mark.parametrize("name", list(DATA_TABLES))
def test_model_for_follows_the_table_definition(name):
    table, model = DATA_TABLES[name], model_for(name)

    assert model.columns == table.names
    assert model.dtypes == table.polars_schema
    assert model.non_nullable_columns == {c.name for c in table.columns if not c.nullable}
    assert model_for(name) is model


def test_model_for_unknown_table():
    with pytest.raises(ValidationError) as e:
        model_for("trade")
    assert str(e.value) == (
        "unknown data table 'trade' (did you mean 'trades'?); "
        "allowed: ohlcv, trades, tbbo, mbp1, statistics, instruments, mbo, mbp10, bbo, cbbo, status, imbalance"
    )


def test_model_validate_enforces_cross_field_constraints(tbbo):
    good = split(tbbo({}, {"bid_price": "4000.25"}), "tbbo").good
    crossed = good.with_columns(pl.lit(9999, dtype=pl.Decimal(19, 9)).alias("bid_price"))

    model_for("tbbo").validate(good)
    with pytest.raises(pt.DataFrameValidationError, match="bid_price"):
        model_for("tbbo").validate(crossed)


def test_stat_types_match_databento_dbn():
    names = {k for k in dir(databento_dbn.StatType) if k.isupper()}
    assert STAT_TYPES == {int(getattr(databento_dbn.StatType, k)): k for k in names}


def test_row_rules_ohlcv_reasons_in_column_order():
    assert list(row_rules("ohlcv")) == [
        "dataset:null", "instrument_id:null", "granularity:null", "granularity:not_in(1s,1m,5m,15m,1h,1d,eod)",
        "bar_timestamp_utc:null",
        "open_price:null", "open_price<=0",
        "high_price:null", "high_price<=0", "high_price<max(open,close,low)",
        "low_price:null", "low_price<=0", "low_price>min(open,close)",
        "close_price:null", "close_price<=0",
        "volume:null", "volume<0", "trade_count<0", "vwap:outside(low,high)", "publisher_id:null",
        "data_source:null",
    ]
    assert "open_price<=0" not in row_rules("ohlcv", allow_non_positive_prices=True)


def test_row_rules_are_never_null():
    frame = pl.DataFrame({c: [None] for c in DATA_TABLES["tbbo"].names}, schema=DATA_TABLES["tbbo"].polars_schema)
    results = frame.select(**row_rules("tbbo"))
    assert results.null_count().sum_horizontal().item() == 0


def test_importing_quarantine_does_not_import_patito():
    code = "import sys, hdi.validate.quarantine; print('patito' in sys.modules, 'pydantic' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
