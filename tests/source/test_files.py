"""open_dbn / DbnFile: reading DBN files from disk, and one exact error per kind of bad input."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import NamedTuple

import databento_dbn as dbn
import numpy as np
import polars as pl
import pytest
import zstandard
from databento import DBNStore
from databento.common.error import BentoWarning

from hdi.errors import DecodeError, HdiError, SourceError
from hdi.source.files import DbnMetadata, SymbolInterval, open_dbn

D0, D1 = dt.date(2024, 1, 2), dt.date(2024, 1, 5)
SUPPORTED = ("ohlcv-1s, ohlcv-1m, ohlcv-1h, ohlcv-1d, trades, tbbo, mbp-1, statistics, definition, mbo, mbp-10, "
             "bbo-1s, bbo-1m, cbbo-1s, cbbo-1m, status, imbalance, ohlcv-eod")
TAIL = "; a .dbn file starts with b'DBN' and a .dbn.zst file with the zstd magic 28 b5 2f fd"


class Interval(NamedTuple):
    start_date: dt.date
    end_date: dt.date
    symbol: str


class Mapping(NamedTuple):
    raw_symbol: str
    intervals: list[Interval]


def meta(schema: str | None = "trades", version: int = 3, ts_out: bool = False) -> bytes:
    return dbn.Metadata(
        dataset="GLBX.MDP3", start=1_704_153_600_000_000_000, end=1_704_412_800_000_000_000,
        stype_in=dbn.SType.CONTINUOUS, stype_out=dbn.SType.INSTRUMENT_ID,
        schema=None if schema is None else dbn.Schema.from_str(schema), symbols=["CL.c.0", "NG.c.0"],
        partial=[], not_found=["HO.c.0"], ts_out=ts_out, version=version,
        mappings=[Mapping("CL.c.0", [Interval(D0, D1, "1001")]), Mapping("NG.c.0", [Interval(D0, D1, "2002")])],
    ).encode()


def trades(n: int, cls: type = dbn.TradeMsg) -> bytes:
    arr = np.zeros(n, dtype=cls._dtypes)
    arr["length"], arr["rtype"], arr["instrument_id"] = arr.dtype.itemsize // 4, 0, 1001
    arr["ts_event"] = arr["ts_recv"] = 1_704_153_600_000_000_000 + np.arange(n)
    arr["sequence"] = np.arange(n)
    return arr.tobytes()


def zst(raw: bytes, **kwargs: bool) -> bytes:
    return zstandard.ZstdCompressor(level=1, **kwargs).compress(raw)


def put(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def error(path: Path, kind: type[HdiError] = DecodeError, **kwargs: str) -> str:
    with pytest.raises(kind) as err:
        open_dbn(path, **kwargs)
    return str(err.value)


def test_open_dbn_given_sample_reads_metadata_and_record_class(samples_dir):
    f = open_dbn(samples_dir / "GLBX.MDP3" / "test_data.trades.dbn.zst")
    assert f.schema == "trades" and f.record_class is dbn.TradeMsg and f.compressed and f.issues == []
    assert f.metadata == DbnMetadata(
        version=3, dataset="GLBX.MDP3", schema="trades", stype_in="raw_symbol", stype_out="instrument_id",
        start=dt.datetime(2020, 12, 28, tzinfo=dt.UTC), end=dt.datetime(2020, 12, 29, tzinfo=dt.UTC),
        symbols=["ESH1"], partial=[], not_found=[],
        mappings=[SymbolInterval("ESH1", 5482, dt.date(2020, 12, 28), dt.date(2020, 12, 29))],
    )
    assert sum(len(a) for a in f.arrays(3)) == 4


def test_open_dbn_given_synthetic_file_lists_mappings_in_request_order(tmp_path):
    f = open_dbn(put(tmp_path, "t.dbn", meta() + trades(3)))
    assert f.metadata.mappings == [SymbolInterval("CL.c.0", 1001, D0, D1), SymbolInterval("NG.c.0", 2002, D0, D1)]
    assert f.metadata.not_found == ["HO.c.0"] and f.metadata.stype_in == "continuous"
    assert f.metadata.start.tzinfo is dt.UTC and f.metadata.start == dt.datetime(2024, 1, 2, tzinfo=dt.UTC)


def test_arrays_given_10500_records_yields_bounded_chunks_in_the_file_layout(tmp_path):
    f = open_dbn(put(tmp_path, "t.dbn.zst", zst(meta() + trades(10_500))))
    chunks = list(f.arrays(1000))
    assert [len(c) for c in chunks] == [1000] * 10 + [500]
    assert chunks[0].dtype == np.dtype(dbn.TradeMsg._dtypes)
    assert np.concatenate([c["sequence"] for c in chunks]).tolist() == list(range(10_500))


@pytest.mark.parametrize(("name", "version"), [("a.dbn", 3), ("a.dbn.zst", 3), ("v1.dbn.zst", 1), ("v2.dbn", 2)])
def test_arrays_given_single_schema_file_equals_dbnstore_to_ndarray(tmp_path, name, version):
    schema, cls = ("trades", dbn.TradeMsg) if version == 3 else ("statistics", dbn.StatMsgV1)
    raw = meta(schema, version=version) + (trades(2500) if version == 3 else bytes(64 * 2500))
    p = put(tmp_path, name, zst(raw) if name.endswith(".zst") else raw)
    mine, ref = list(open_dbn(p).arrays(1000)), list(DBNStore.from_file(p).to_ndarray(count=1000))
    assert [len(a) for a in mine] == [len(a) for a in ref] == [1000, 1000, 500]
    assert all(a.dtype == b.dtype == np.dtype(cls._dtypes) and np.array_equal(a, b) for a, b in zip(mine, ref, strict=True))


def test_arrays_given_real_samples_equals_dbnstore_to_ndarray(samples_dir):
    compared = 0
    for p in sorted(samples_dir.glob("*/*.dbn.zst")):
        if p.parent.name == "LIVE" or p.name.split(".")[1] not in SUPPORTED.split(", "):
            continue
        mine, ref = list(open_dbn(p).arrays(3)), list(DBNStore.from_file(p).to_ndarray(count=3))
        assert len(mine) == len(ref) and all(np.array_equal(a, b) for a, b in zip(mine, ref, strict=True)), p
        compared += 1
    assert compared == 72  # 73 samples - LIVE (every schema of the samples is supported since issue 13)


def test_arrays_given_zero_count_raises(tmp_path):
    f = open_dbn(put(tmp_path, "t.dbn", meta() + trades(1)))
    with pytest.raises(DecodeError, match=r"t\.dbn: chunk size must be >= 1 record, got 0$"):
        next(f.arrays(0))


def test_record_count_hint_given_sizes_known_or_not(tmp_path):
    raw = meta() + trades(7)
    assert open_dbn(put(tmp_path, "a.dbn", raw)).record_count_hint == 7
    assert open_dbn(put(tmp_path, "b.dbn.zst", zst(raw))).record_count_hint == 7
    assert open_dbn(put(tmp_path, "c.dbn.zst", zst(raw, write_content_size=False))).record_count_hint is None


@pytest.mark.parametrize(("version", "schema", "cls"), [
    (1, "trades", dbn.TradeMsg), (1, "statistics", dbn.StatMsgV1), (1, "definition", dbn.InstrumentDefMsgV1),
    (2, "statistics", dbn.StatMsgV1), (2, "definition", dbn.InstrumentDefMsgV2), (3, "statistics", dbn.StatMsg),
])
def test_open_dbn_given_dbn_version_picks_that_versions_record_class(tmp_path, version, schema, cls):
    f = open_dbn(put(tmp_path, "v.dbn", meta(schema, version=version) + bytes(np.dtype(cls._dtypes).itemsize)))
    assert f.metadata.version == version and f.record_class is cls
    assert len(next(f.arrays(10))) == 1


def test_record_class_matches_databentos_maps_for_every_version_and_schema():
    # hdi.source.dbnfile keeps its own map so that reading a file never imports the databento package
    import os
    import subprocess
    import sys

    from databento.common.constants import SCHEMA_STRUCT_MAP, SCHEMA_STRUCT_MAP_V1, SCHEMA_STRUCT_MAP_V2

    from hdi.source.dbnfile import record_class

    for version, expected in ((1, SCHEMA_STRUCT_MAP_V1), (2, SCHEMA_STRUCT_MAP_V2), (3, SCHEMA_STRUCT_MAP),
                              (4, SCHEMA_STRUCT_MAP)):
        for schema in SCHEMA_STRUCT_MAP:
            if schema in expected:
                assert record_class(version, schema.value) is expected[schema], (version, schema)
            else:
                with pytest.raises(KeyError):
                    record_class(version, schema.value)
    code = ("import sys; from hdi.source.files import open_dbn; import hdi.decode.dbn; "
            "print(sorted(m for m in ('databento', 'pandas', 'aiohttp') if m in sys.modules))")
    root = str(Path(__file__).resolve().parents[2])
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": root}).stdout
    assert out.strip() == "[]"


def test_open_dbn_given_multi_frame_zstd_reads_every_frame(tmp_path):
    raw = meta() + trades(3000)
    cut = len(meta()) + 48 * 1000
    f = open_dbn(put(tmp_path, "m.dbn.zst", zst(raw[:cut]) + zst(raw[cut:cut + 48 * 1000]) + zst(raw[cut + 48000:])))
    assert sum(len(a) for a in f.arrays(512)) == 3000 and f.issues == []


def test_open_dbn_given_metadata_split_across_zstd_frames_reads_it(tmp_path):
    raw = meta() + trades(5)
    f = open_dbn(put(tmp_path, "split.dbn.zst", zst(raw[:50]) + zst(raw[50:])))
    assert f.metadata.symbols == ["CL.c.0", "NG.c.0"] and sum(len(a) for a in f.arrays(2)) == 5


def test_open_dbn_given_skippable_zstd_frame_ignores_it(tmp_path):
    skippable = (0x184D2A50).to_bytes(4, "little") + (6).to_bytes(4, "little") + b"hdi!!!"
    f = open_dbn(put(tmp_path, "skip.dbn.zst", skippable + zst(meta() + trades(4))))
    assert f.issues == [] and sum(len(a) for a in f.arrays(3)) == 4


def test_open_dbn_given_mixed_schema_file_and_schema_reads_that_schema(samples_dir):
    f = open_dbn(samples_dir / "LIVE" / "test_data.live.dbn.zst", schema="statistics")
    assert f.schema == "statistics" and f.record_class is dbn.StatMsg and f.record_count_hint is None
    assert sum(len(a) for a in f.arrays(4)) == 9


# --- bad inputs: one exact, one-line message each ---------------------------------------------

def test_open_dbn_given_missing_path_raises_source_error(tmp_path):
    p = tmp_path / "nope.dbn.zst"
    assert error(p, SourceError) == f"{p}: no such file (expected a .dbn or .dbn.zst file)"


def test_open_dbn_given_directory_raises_source_error(tmp_path):
    assert error(tmp_path, SourceError) == f"{tmp_path}: is a directory (expected a .dbn or .dbn.zst file)"


def test_open_dbn_given_empty_file_raises(tmp_path):
    p = put(tmp_path, "e.dbn.zst", b"")
    assert error(p) == f"{p}: file is empty (0 bytes); expected DBN data (.dbn or .dbn.zst)"


def test_open_dbn_given_random_bytes_raises(tmp_path):
    p = put(tmp_path, "r.dbn", bytes([0x00, 0x91, 0xFE, 0x07]) + bytes(range(60)))
    assert error(p) == f"{p}: not a DBN file: it starts with b'\\x00\\x91\\xfe\\x07'{TAIL}"


def test_open_dbn_given_csv_raises(tmp_path):
    p = put(tmp_path, "bars.dbn", b"ts_event,open,high\n2024-01-02,1,2\n")
    assert error(p) == f"{p}: not a DBN file: it starts with b'ts_e' (text, e.g. CSV or JSON){TAIL}"


def test_open_dbn_given_parquet_raises(tmp_path):
    p = tmp_path / "bars.dbn.zst"
    pl.DataFrame({"a": [1, 2]}).write_parquet(p)
    assert error(p) == f"{p}: not a DBN file: it starts with b'PAR1' (a Parquet file){TAIL}"


def test_open_dbn_given_zstd_of_csv_raises(tmp_path):
    p = put(tmp_path, "c.dbn.zst", zst(b"ts_event,price\n1,2\n"))
    assert error(p) == f"{p}: not a DBN file: the zstd data starts with b'ts_e', not b'DBN'"


def test_open_dbn_given_corrupt_zstd_raises(tmp_path):
    data = bytearray(zst(meta() + trades(20_000)))
    data[12:16] = bytes(b ^ 0xFF for b in data[12:16])  # inside the first compressed block
    p = put(tmp_path, "bad.dbn.zst", bytes(data))
    assert error(p) == f"{p}: corrupt zstd data: zstd decompress error: Data corruption detected"


def test_open_dbn_given_zstd_with_a_reserved_block_raises(tmp_path):
    p = put(tmp_path, "bad.dbn.zst", b"\x28\xb5\x2f\xfd" + bytes(range(200)))
    assert error(p) == f"{p}: corrupt zstd data: reserved block type at offset 10"


def test_open_dbn_given_garbage_after_a_zstd_frame_raises(tmp_path):
    p = put(tmp_path, "bad.dbn.zst", zst(meta() + trades(2)) + b"junk!")
    first = len(zst(meta() + trades(2)))
    assert error(p) == (f"{p}: corrupt zstd data: unexpected bytes b'junk' at offset {first} where a zstd "
                        "frame should start")


def test_open_dbn_given_zstd_cut_before_the_header_raises(tmp_path):
    p = put(tmp_path, "cut.dbn.zst", zst(meta() + trades(10))[:12])
    assert error(p) == f"{p}: truncated zstd stream: it ends before the DBN header"


@pytest.mark.parametrize("compress", [False, True])
def test_open_dbn_given_truncated_metadata_raises(tmp_path, compress):
    raw = meta()[:100]
    p = put(tmp_path, "tm.dbn", zst(raw) if compress else raw)
    announced = int.from_bytes(meta()[4:8], "little")
    assert error(p) == (f"{p}: truncated DBN metadata: the header announces {announced} bytes of metadata, "
                        "the file holds 92")


def test_open_dbn_given_file_shorter_than_the_dbn_header_raises(tmp_path):
    p = put(tmp_path, "h.dbn", b"DBN\x03\x10")
    assert error(p) == f"{p}: truncated DBN metadata: the file ends inside the 8-byte DBN header"


def test_open_dbn_given_corrupt_metadata_raises(tmp_path):
    raw = bytearray(meta())
    raw[8:24] = b"\xff" * 16  # the dataset name
    p = put(tmp_path, "cm.dbn", bytes(raw))
    assert error(p) == (f"{p}: corrupt DBN metadata: UTF-8 error: Utf8Error {{ valid_up_to: 0, error_len: Some(1) }} "
                        "while reading dataset from metadata")


@pytest.mark.parametrize("version", [0, 4, 9])
def test_open_dbn_given_unsupported_dbn_version_raises(tmp_path, version):
    raw = bytearray(meta())
    raw[3] = version
    p = put(tmp_path, "v.dbn.zst", zst(bytes(raw)))
    assert error(p) == f"{p}: DBN version {version} is not supported; supported versions: 1, 2, 3"


def test_open_dbn_given_mixed_schema_file_without_schema_raises(tmp_path):
    p = put(tmp_path, "live.dbn.zst", zst(meta(schema=None) + trades(2)))
    assert error(p) == (f"{p}: mixed-schema DBN file (its metadata has no schema); pass schema= one of "
                        f"{SUPPORTED}")


def test_open_dbn_given_live_sample_without_schema_raises(samples_dir):
    p = samples_dir / "LIVE" / "test_data.live.dbn.zst"
    assert error(p) == f"{p}: mixed-schema DBN file (its metadata has no schema); pass schema= one of {SUPPORTED}"


@pytest.mark.parametrize("schema", ["tcbbo", "cmbp-1"])
def test_open_dbn_given_unsupported_schema_lists_supported_ones(tmp_path, schema):
    """A Databento schema hdi does not store gets no "did you mean" (tcbbo is not tbbo)."""
    p = put(tmp_path, "x.dbn", meta(schema))
    assert error(p) == (f"{p}: schema '{schema}' is not supported (a Databento schema hdi does not store; "
                        f"docs/schemas.md lists the stored ones); supported: {SUPPORTED}")


def test_open_dbn_given_schema_that_does_not_match_the_file_raises(tmp_path):
    p = put(tmp_path, "t.dbn", meta() + trades(1))
    assert error(p, schema="ohlcv-1m") == f"{p}: the file holds trades records, not ohlcv-1m (schema= must match the file)"


def test_open_dbn_given_unknown_schema_argument_suggests_one(tmp_path):
    p = put(tmp_path, "t.dbn", meta(schema=None) + trades(1))
    assert error(p, schema="trade") == (f"{p}: schema 'trade' is not supported (did you mean 'trades'?); "
                                        f"supported: {SUPPORTED}")


def test_open_dbn_given_ts_out_records_raises(tmp_path):
    p = put(tmp_path, "o.dbn", meta(ts_out=True))
    assert error(p) == (f"{p}: records carry a ts_out timestamp (a live capture); hdi reads historical DBN "
                        "files without ts_out")


# --- truncation: decode the whole records, warn with the bytes dropped ------------------------

@pytest.mark.parametrize("packing", ["dbn", "zst", "zst-no-size"])
def test_arrays_given_last_record_cut_keeps_whole_records_and_warns(tmp_path, caplog, packing):
    raw = (meta() + trades(3))[:-10]
    data = {"dbn": raw, "zst": zst(raw), "zst-no-size": zst(raw, write_content_size=False)}[packing]
    p = put(tmp_path, f"cut.{packing}", data)
    f = open_dbn(p)
    with caplog.at_level(logging.WARNING, logger="hdi.source.files"):
        chunks = list(f.arrays(2))
    assert [len(c) for c in chunks] == [2]
    want = f"{p}: the last record is incomplete (file truncated): 38 bytes dropped after 2 whole trades records"
    assert f.issues == [want] and [r.getMessage() for r in caplog.records] == [want]


def test_arrays_given_mixed_file_with_last_record_cut_warns(tmp_path, caplog):
    p = put(tmp_path, "mixed.dbn", (meta(schema=None) + trades(3))[:-5])
    f = open_dbn(p, schema="trades")
    with caplog.at_level(logging.WARNING, logger="hdi.source.files"), \
            pytest.warns(BentoWarning, match="truncated"):  # DBNStore's own warning, mixed files only
        assert sum(len(c) for c in f.arrays(10)) == 2
    want = f"{p}: the last record is incomplete (file truncated): 43 bytes dropped after 2 whole trades records"
    assert f.issues == [want] and [r.getMessage() for r in caplog.records] == [want]


def test_open_dbn_given_zstd_stream_cut_mid_frame_warns_and_decodes_what_is_whole(tmp_path, caplog):
    data = zst(meta() + trades(100_000))
    p = put(tmp_path, "half.dbn.zst", data[: len(data) // 2])
    with caplog.at_level(logging.WARNING, logger="hdi.source.files"):
        f = open_dbn(p)
        got = sum(len(c) for c in f.arrays(10_000))
    want = (f"{p}: the zstd stream ends inside a frame (file truncated): records in the missing tail are lost; "
            "decoding the whole records before it")
    assert f.issues[0] == want and caplog.records[0].getMessage() == want
    assert 0 < got < 100_000


def test_arrays_given_corrupt_zstd_mid_stream_raises(tmp_path):
    data = bytearray(zst(meta() + trades(200_000), write_checksum=True))
    data[len(data) // 2: len(data) // 2 + 4000] = bytes(4000)
    f = open_dbn(put(tmp_path, "mid.dbn.zst", bytes(data)))
    with pytest.raises(DecodeError, match=r"mid\.dbn\.zst: corrupt zstd data after \d+ records: zstd decompress error"):
        for _ in f.arrays(10_000):
            pass


@pytest.mark.parametrize("frames", [1, 3], ids=["one zstd frame", "three zstd frames"])
def test_verify_keep_reads_the_same_records_from_the_kept_stream_once(tmp_path, frames):
    """A verified file small enough to keep is read from what verifying decompressed (the same
    records, in order, in pieces of any size), once: the next read decompresses the file again."""
    raw = meta() + trades(3000)
    step = -(-len(raw) // frames)
    path = put(tmp_path, "k.dbn.zst", b"".join(zst(raw[k:k + step]) for k in range(0, len(raw), step)))
    plain = np.concatenate(list(open_dbn(path).arrays(700)))
    f = open_dbn(path)
    f.verify(keep=len(raw))
    assert f.verified_records == 3000
    kept = f._kept
    assert kept is not None and b"".join(kept) == raw
    for count in (700, 1024):
        got = np.concatenate(list(f.arrays(count)))
        assert f._kept is None
        assert got.tobytes() == plain.tobytes() and len(got) == 3000


def test_verify_keep_lets_a_larger_file_be_read_from_disk(tmp_path):
    raw = meta() + trades(3000)
    path = put(tmp_path, "big.dbn.zst", zst(raw))
    f = open_dbn(path)
    f.verify(keep=len(raw) - 1)
    assert f._kept is None and f.verified_records == 3000
    assert sum(len(a) for a in f.arrays(512)) == 3000


def test_verify_keep_given_skippable_and_several_frames_reads_the_same_records(tmp_path):
    skippable = (0x184D2A50).to_bytes(4, "little") + (6).to_bytes(4, "little") + b"hdi!!!"
    raw = meta() + trades(40)
    cut = len(meta()) + 48 * 15
    path = put(tmp_path, "skip.dbn.zst", skippable + zst(raw[:cut]) + skippable + zst(raw[cut:]))
    plain = np.concatenate(list(open_dbn(path).arrays(7)))
    f = open_dbn(path)
    f.verify(keep=1 << 20)
    assert f._kept is not None and b"".join(f._kept) == raw
    got = np.concatenate(list(f.arrays(7)))
    assert got.tobytes() == plain.tobytes() and len(got) == 40 and f.issues == []
