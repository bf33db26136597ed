"""DBN v1 and v2 files decode to the same frames as the same records upgraded to v3 by DBN itself."""

from __future__ import annotations

import datetime as dt

import databento_dbn as dbn
import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from hdi.decode.dbn import decode_file, frame_schema
from hdi.source.files import open_dbn

D0, D1 = dt.date(2023, 6, 1), dt.date(2023, 6, 3)
CLASSES = {
    1: {"trades": dbn.v1.TradeMsg, "tbbo": dbn.v1.MBP1Msg, "mbp-1": dbn.v1.MBP1Msg, "ohlcv-1m": dbn.v1.OHLCVMsg,
        "statistics": dbn.v1.StatMsg, "definition": dbn.v1.InstrumentDefMsg},
    2: {"trades": dbn.v2.TradeMsg, "tbbo": dbn.v2.MBP1Msg, "mbp-1": dbn.v2.MBP1Msg, "ohlcv-1m": dbn.v2.OHLCVMsg,
        "statistics": dbn.v2.StatMsg, "definition": dbn.v2.InstrumentDefMsg},
}
N = 50


def filled(kit, cls: type, schema: str) -> np.ndarray:
    """N records with every field set to varied values, sentinels included."""
    rng = np.random.default_rng(7)
    recs = kit.records(cls, N, schema)
    recs["instrument_id"] = rng.choice([11, 12, 13], N)
    for name, kind in cls._dtypes:
        if name in ("length", "rtype", "instrument_id") or name.startswith("_"):
            continue
        if name in cls._timestamp_fields:
            values = kit.ns(D0) + rng.integers(0, 2 * 86_400 * 10**9, N, dtype=np.uint64)
            values[::7] = dbn.UNDEF_TIMESTAMP if name != "ts_event" else values[::7]
        elif name in cls._price_fields:
            values = rng.integers(-10**12, 10**12, N)
            values[::5] = dbn.UNDEF_PRICE
        elif kind == "S1":
            values = rng.choice([b"A", b"B", b"N", b"\x00"], N)
        elif kind.startswith("S"):
            values = np.array([f"S{i % 9}".encode() if i % 4 else b"" for i in range(N)])
        else:
            info = np.iinfo(np.dtype(kind))
            values = rng.integers(max(info.min, -(2**31)), min(info.max, 2**31 - 2), N, dtype=np.int64)
        recs[name] = values
    if schema == "statistics":
        recs["quantity"][::3] = 2**31 - 1  # the v1/v2 UNDEF_STAT_QUANTITY
    return recs


@pytest.mark.parametrize("version", [1, 2])
@pytest.mark.parametrize("schema", ["trades", "tbbo", "mbp-1", "ohlcv-1m", "statistics", "definition"])
def test_decode_file_given_old_version_equals_dbn_upgrade_to_v3(kit, version, schema):
    cls = CLASSES[version][schema]
    old = kit.write(f"v{version}.{schema}.dbn.zst", filled(kit, cls, schema), schema=schema, version=version,
                    mappings={"ESM3": [(D0, D1, 11)], "NQM3": [(D0, D1, 12)]}, stype_in="raw_symbol")
    new = kit.upgrade_to_v3(old, kit.folder / f"v3.{schema}.dbn.zst")
    old_file, new_file = open_dbn(old), open_dbn(new)
    assert old_file.record_class is cls and new_file.metadata.version == 3
    got = pl.concat(list(decode_file(old_file, chunk_rows=17)))
    want = pl.concat(list(decode_file(new_file)))
    assert got.schema == pl.Schema(frame_schema(schema))
    assert_frame_equal(got, want)
    assert got.height == N and set(got["symbol"].drop_nulls()) == {"ESM3", "NQM3"}


@pytest.mark.parametrize("version", [1, 2])
def test_decode_file_given_old_statistics_widens_int32_quantity_and_nulls_its_sentinel(kit, version):
    recs = kit.records(CLASSES[version]["statistics"], 3, "statistics", ts_event=kit.ns(D0), ts_recv=kit.ns(D0),
                       quantity=[2**31 - 1, 2**31 - 2, -(2**31)])
    df = pl.concat(list(decode_file(open_dbn(kit.write("q.dbn", recs, schema="statistics", version=version,
                                                        compress=False)))))
    assert df["quantity"].dtype == pl.Int64 and df["quantity"].to_list() == [None, 2**31 - 2, -(2**31)]
