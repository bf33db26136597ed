"""Every real Databento sample decodes to exactly what ``DBNStore.to_df`` gives, field by field.

The reference is ``to_df(price_type="fixed", pretty_ts=True, map_symbols=True)``, normalised for
the documented differences: to_df indexes by ts_recv/ts_event (reset here), keeps UNDEF_PRICE in
fixed prices and UNDEF_STAT_QUANTITY in statistics quantity where hdi has null, turns
UNDEF_TIMESTAMP into NaT, and gives "" for NUL chars and empty text where hdi has null.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import databento as db
import databento_dbn as dbn
import pandas as pd
import polars as pl
import pytest

from hdi.decode.dbn import decode_file, frame_schema
from hdi.errors import DecodeError
from hdi.source.files import SUPPORTED_SCHEMAS, open_dbn

pytestmark = [pytest.mark.samples,
              pytest.mark.filterwarnings("ignore:The inplace keyword in DataFrame.set_index")]
_FOLDER = Path(os.environ.get("HDI_DBN_SAMPLES", Path(__file__).resolve().parents[3] / "shared" / "dbn-samples"))
SAMPLES = sorted(p.relative_to(_FOLDER).as_posix() for p in _FOLDER.glob("*/*.dbn.zst"))


def _schema_of(name: str) -> str:
    return name.rsplit("/", 1)[-1].removeprefix("test_data.").removesuffix(".dbn.zst")


def _reference(path: Path) -> pd.DataFrame:
    store = db.DBNStore.from_file(path)
    return store.to_df(price_type="fixed", pretty_ts=True, map_symbols=True).reset_index()


def _normalise(values: pd.Series, kind: str, name: str, schema: str) -> list:
    out = []
    for v in values.tolist():
        if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NaT:
            out.append(None)
        elif kind == "ts":
            out.append(pd.Timestamp(v).value)
        elif kind == "price" and v == dbn.UNDEF_PRICE:
            out.append(None)
        elif schema == "statistics" and name == "quantity" and v == dbn.UNDEF_STAT_QUANTITY:
            out.append(None)
        elif kind == "str" and v == "":
            out.append(None)
        else:
            out.append(v)
    return out


def _mine(series: pl.Series) -> list:
    if series.dtype == pl.Datetime("ns", "UTC"):
        return series.cast(pl.Int64).to_list()
    return series.to_list()


def _assert_same(mine: pl.DataFrame, ref: pd.DataFrame, schema: str, cls: type, skip: tuple[str, ...] = ()) -> None:
    types = frame_schema(schema)
    assert mine.height == len(ref) > 0
    assert mine.columns == list(types) and set(mine.columns) == set(ref.columns)
    for name, dtype in types.items():
        if name in skip:
            continue
        if dtype == pl.Datetime("ns", "UTC"):
            kind = "ts"
        elif name in cls._price_fields:
            kind = "price"
        elif dtype == pl.String:
            kind = "str"
        else:
            kind = "int"
        assert _mine(mine[name]) == _normalise(ref[name], kind, name, schema), name


@pytest.mark.parametrize("name", SAMPLES)
def test_decode_file_given_real_sample_equals_to_df(samples_dir, name):
    path, schema = samples_dir / name, _schema_of(name)
    if schema not in SUPPORTED_SCHEMAS:
        with pytest.raises(DecodeError):  # the live (mixed) capture without schema=
            open_dbn(path)
        return
    dbn_file = open_dbn(path)
    mine = pl.concat(list(decode_file(dbn_file, chunk_rows=3)))  # 4 records: 2 chunks
    _assert_same(mine, _reference(path), schema, dbn_file.record_class)
    assert mine["symbol"].null_count() == 0


@pytest.mark.parametrize("schema", ["trades", "mbp-1", "statistics", "definition", "ohlcv-1s", "ohlcv-1m", "mbo", "mbp-10"])
def test_decode_file_given_live_mixed_sample_and_schema_equals_to_df_symbols_included(samples_dir, schema):
    """The mixed live capture has no metadata mappings, only in-stream SymbolMappingMsg records;
    hdi maps with them as to_df does: every record is ESZ4."""
    path = samples_dir / "LIVE" / "test_data.live.dbn.zst"
    dbn_file = open_dbn(path, schema=schema)
    mine = pl.concat(list(decode_file(dbn_file, chunk_rows=2)))
    ref = db.DBNStore.from_file(path).to_df(schema=schema, price_type="fixed", map_symbols=True).reset_index()
    _assert_same(mine, ref, schema, dbn_file.record_class)
    assert mine["symbol"].to_list() == ["ESZ4"] * mine.height
