"""Property: any DBN byte stream given to ``hdi ingest --from-file`` either loads correctly or is
refused with one line; never a traceback, a hang, or a chunk recorded ``done`` with fewer records
than the file holds.

The streams are real DBN files from the local gateway (the real databento client wrote them),
uncompressed and zstd-compressed, then left whole, cut at any byte, or bit-flipped anywhere
(metadata header, metadata body, records). "Loads correctly" means: exit 0, the file's one chunk is
``done``, and its records (fetched = loaded + quarantined + already present) are exactly the whole
records the bytes hold, counted here independently of hdi from the DBN prelude.
"""

from __future__ import annotations

import datetime as dt
import shutil
import struct
from pathlib import Path

import pytest
import zstandard
from hypothesis import example, given
from hypothesis import strategies as st

from hdi.recipe.checks import DATASET_RE

from .conftest import assert_clean, fresh_dir

NOW = dt.datetime(2026, 1, 15, tzinfo=dt.UTC)
KEY = "db-test-0123456789abcdefABCDEF"
RECIPE = """\
name: prop_dbn
source:
  vendor: databento
  schema: {schema}
  start: 2024-01-01
  end: 2024-03-01
  requests:
    - {{dataset: GLBX.MDP3, stype_in: continuous, symbols: [CL.c.0]}}
transform:
{transform}
target:
  table: {table}
"""
OHLCV_1D = """\
  - rename: {ts_event: bar_timestamp_utc, open: open_price, high: high_price, low: low_price, close: close_price}
  - fixed_to_decimal: [open_price, high_price, low_price, close_price]
  - constant: {granularity: 1d, data_source: databento, trade_count: null, vwap: null}"""
RECORD_SIZE = {"ohlcv-1d": 56, "trades": 48}


class Base(dict):
    def __repr__(self) -> str:  # keep Hypothesis' failure report short
        return "<base DBN bytes>"


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> dict[str, bytes]:
    """The raw (uncompressed) DBN bytes of a small real ohlcv-1d file."""
    from hdi.source.chunks import Request
    from hdi.source.databento import DatabentoSource
    from hdi.testing.gateway import Gateway

    out = tmp_path_factory.mktemp("dbn")
    with Gateway(now=NOW) as gw, pytest.MonkeyPatch.context() as mp:
        for k, v in gw.env().items():
            mp.setenv(k, v)
        mp.setenv("DATABENTO_API_KEY", KEY)
        src = DatabentoSource(cache_dir=out / "cache")
        req = Request("GLBX.MDP3", "ohlcv-1d", "continuous", ("CL.c.0",), dt.datetime(2024, 1, 1),
                      dt.datetime(2024, 2, 1))
        path = Path(shutil.copy(src.fetch(req), out / "jan.dbn.zst"))
    raw = zstandard.ZstdDecompressor().decompressobj().decompress(path.read_bytes())
    (out / "jan.dbn").write_bytes(raw)
    return Base(raw=raw)


def whole_records(raw: bytes, schema: str) -> int | None:
    """Whole records in an uncompressed single-schema DBN stream, by its prelude; None if it has none."""
    if len(raw) < 8 or raw[:3] != b"DBN":
        return None
    meta_len = struct.unpack_from("<I", raw, 4)[0]
    payload = len(raw) - 8 - meta_len
    return None if payload < 0 else payload // RECORD_SIZE[schema]


def zstd_frames(data: bytes) -> bytes:
    return zstandard.ZstdCompressor(level=1).compress(data)


@st.composite
def damaged(draw, raw: bytes) -> tuple[str, bytes, str]:
    """(file suffix, bytes, what was done)."""
    compressed = draw(st.booleans())
    where = draw(st.sampled_from(["raw", "compressed"])) if compressed else "raw"
    data = raw
    how = draw(st.sampled_from(["whole", "cut", "flip", "flip_header", "cut_and_flip"]))
    if where == "compressed":
        data = zstd_frames(raw)
    if how in ("cut", "cut_and_flip"):
        data = data[: draw(st.integers(0, len(data) - 1))]
    if how in ("flip", "flip_header", "cut_and_flip") and data:
        hi = min(len(data), 120) if how == "flip_header" else len(data)
        for _ in range(draw(st.integers(1, 3))):
            pos = draw(st.integers(0, hi - 1))
            bit = draw(st.integers(0, 7))
            data = data[:pos] + bytes([data[pos] ^ (1 << bit)]) + data[pos + 1:]
    if compressed and where == "raw":
        data = zstd_frames(data)
    return (".dbn.zst" if compressed else ".dbn"), data, f"{how} on the {where} bytes"


@given(st.data())
@example(None)  # the undamaged file loads: the property is not vacuous
@example((41, 7))  # make fuzz found it: the metadata's end after 2262, a Polars traceback inside the chunk
def test_any_dbn_stream_loads_exactly_or_is_refused_in_one_line(run_hdi, base, tmp_path, data):
    from hdi.store import open_store

    raw = base["raw"]
    if data is None:
        suffix, blob, how = ".dbn", raw, "whole"
    elif isinstance(data, tuple):  # one given bit flipped
        pos, bit = data
        suffix, blob, how = ".dbn", raw[:pos] + bytes([raw[pos] ^ (1 << bit)]) + raw[pos + 1:], f"flip {data}"
    else:
        suffix, blob, how = data.draw(damaged(raw), label="stream")
    work = fresh_dir(tmp_path)
    recipe = work / "r.yaml"
    recipe.write_text(RECIPE.format(schema="ohlcv-1d", transform=OHLCV_1D, table="ohlcv"))
    f = work / f"in{suffix}"
    f.write_bytes(blob)
    store = f"duckdb://{work / 's.duckdb'}"
    out = run_hdi("ingest", "--recipe", recipe, "--from-file", f, "--store", store, "--no-progress")
    st_ = open_store(store) if (work / "s.duckdb").exists() else None
    chunks = st_.chunks() if st_ is not None else None
    done = chunks.filter(chunks["status"] == "done") if chunks is not None else None
    failed = chunks is not None and chunks.filter(chunks["status"] == "failed").height > 0
    # a chunk may fail on its own (a store or decode error): exit 1, recorded failed. Rows a flipped
    # bit made invalid are quarantined and the good ones load: exit 3 when more than the recipe's
    # max_failure_rate were quarantined (the over-budget code), a load like any other
    ok = assert_clean(out, (0, 3), chunk_failed=failed)
    if out.exit_code == 3:
        assert "over quarantine budget" in out.stderr, (how, out)
    if not ok:
        assert done is None or done.height == 0, (how, out, done)
        rows = st_.select("ohlcv").height if st_ is not None else 0
        assert rows == 0, (how, out)
        return
    # loaded: exactly the whole records the bytes hold, every one accounted for
    plain = zstandard.ZstdDecompressor().decompressobj().decompress(blob) if suffix == ".dbn.zst" else blob
    expected = whole_records(plain, "ohlcv-1d")
    assert expected is not None, (how, out)
    assert chunks is not None and chunks.height == 1 and done.height == 1, (how, out, chunks)
    row = done.row(0, named=True)
    assert row["rows_fetched"] == expected, (how, row, expected)
    assert row["rows_loaded"] + row["rows_quarantined"] + row["rows_already_present"] == expected, (how, row)
    stored = st_.select("ohlcv")
    assert stored.height == row["rows_loaded"], (how, row)
    # rows are stored under a real dataset code, never a damaged one
    assert all(DATASET_RE.match(d) for d in stored["dataset"].unique().to_list()), (how, stored["dataset"].unique())
    if how.startswith("whole"):
        assert expected == whole_records(raw, "ohlcv-1d") and row["rows_loaded"] == expected
