"""Every real Databento sample, and random records of every schema, decode to exactly what
``DBNStore.to_df`` gives, field by field.

The reference is ``to_df(price_type="fixed", pretty_ts=True, map_symbols=True)``, normalised for
the documented differences: to_df indexes by ts_recv/ts_event (reset here), keeps UNDEF_PRICE in
fixed prices and UNDEF_STAT_QUANTITY in statistics quantity where hdi has null, turns
UNDEF_TIMESTAMP into NaT, and gives "" for NUL chars and empty text where hdi has null.
"""

from __future__ import annotations

import datetime as dt
import math
import os
from pathlib import Path

import databento as db
import databento_dbn as dbn
import numpy as np
import pandas as pd
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hdi.decode.dbn import SCHEMA_CLASSES, decode_file, frame_schema
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


# Random records of every schema, encoded by databento_dbn: decode_file gives what to_df gives,
# field by field, in frames of chunk_rows rows.

_D0 = dt.date(2024, 3, 4)
_RTYPES = {name: int(dbn.RType.from_schema(dbn.Schema.from_str(name)).value) for name in SUPPORTED_SCHEMAS}


def _ns(day: dt.date) -> int:
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp()) * 10**9
_CHAR_POOL = np.frombuffer(b"\x00ABCDEFNTRabz019 -~", dtype=np.uint8)
_IDS = {"narrow": [1001, 1002, 2001, 2002, 777], "wide": [7, 1001, 5_000_000, 4_000_000_000, 777]}


def _random_records(cls: type, schema: str, n: int, seed: int, ids: list[int], days: int, undef: float) -> bytes:
    """``n`` records of ``cls`` with every field random (sentinels at rate ``undef``), re-encoded by
    databento_dbn (decoded by its DBNDecoder, each record written back with ``bytes(record)``)."""
    rng = np.random.default_rng(seed)
    arr = np.zeros(n, dtype=cls._dtypes)
    index = "ts_recv" if "ts_recv" in arr.dtype.names else "ts_event"
    for name, kind in cls._dtypes:
        if name in ("length", "rtype") or name.startswith("_"):
            continue
        if name == "instrument_id":
            values = rng.choice(np.array(ids, dtype=np.uint32), n)
        elif name in cls._timestamp_fields:
            values = np.uint64(_ns(_D0)) + rng.integers(0, max(1, days) * 86_400 * 10**9, n, dtype=np.uint64)
            if name == index:
                values = np.sort(values)
            else:
                values[rng.random(n) < undef] = dbn.UNDEF_TIMESTAMP
        elif name in cls._price_fields:
            values = rng.integers(-10**13, 10**13, n)
            values[rng.random(n) < undef] = dbn.UNDEF_PRICE
        elif kind == "S1":
            values = rng.choice(_CHAR_POOL, n).view("S1")
        elif kind.startswith("S"):
            width = min(int(kind[1:]) - 1, 12)
            values = np.array([bytes(rng.choice(_CHAR_POOL[1:], rng.integers(0, width + 1))) for _ in range(n)])
        else:
            info = np.iinfo(np.dtype(kind))
            values = rng.integers(info.min, info.max, n, dtype=np.dtype(kind), endpoint=True)
            if schema == "statistics" and name == "quantity":
                values[rng.random(n) < undef] = dbn.UNDEF_STAT_QUANTITY
        arr[name] = values
    arr["length"], arr["rtype"] = arr.dtype.itemsize // 4, _RTYPES[schema]
    decoder = dbn.DBNDecoder(has_metadata=False)
    decoder.write(arr.tobytes())
    records = decoder.decode()
    assert len(records) == n
    return b"".join(bytes(r) for r in records)


@settings(max_examples=int(os.environ.get("HDI_HYPOTHESIS_EXAMPLES", "12")), deadline=None, derandomize=True,
          database=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
@pytest.mark.parametrize("schema", SUPPORTED_SCHEMAS)
def test_decode_file_given_random_records_equals_to_df(kit, schema, data):
    n = data.draw(st.integers(1, 400), "records")
    seed = data.draw(st.integers(0, 2**32 - 1), "seed")
    ids = _IDS[data.draw(st.sampled_from(sorted(_IDS)), "ids")]
    days = data.draw(st.integers(0, 3), "days")  # 0: every record on one UTC day
    undef = data.draw(st.sampled_from([0.0, 0.1, 1.0]), "undef")
    chunk_rows = data.draw(st.integers(1, n + 3), "chunk_rows")
    cls = SCHEMA_CLASSES[schema]
    raw = _random_records(cls, schema, n, seed, ids, days, undef)
    d1, d2 = _D0 + dt.timedelta(days=1), _D0 + dt.timedelta(days=3)
    mappings = {"AAA": [(_D0, d1, ids[0]), (d1, d2, ids[1])], "BBB": [(_D0, d2, ids[2])],
                "CCC": [(d1, _D0 + dt.timedelta(days=9), ids[3])]}  # ids[4]: never mapped
    path = kit.write(f"{schema}-{seed}-{n}.dbn.zst", raw, schema=schema, mappings=mappings, stype_in="raw_symbol")
    frames = list(decode_file(open_dbn(path), chunk_rows=chunk_rows))
    assert [f.height for f in frames] == [chunk_rows] * (n // chunk_rows) + ([n % chunk_rows] if n % chunk_rows else [])
    assert all(f.schema == pl.Schema(frame_schema(schema)) for f in frames)
    _assert_same(pl.concat(frames), _reference(path), schema, cls)
