"""``hdi.hold(store)``: reads inside the block return what they return outside it; a DuckDB file
stays attached read-only for the block (other processes read it, a writer cannot open it) and is
free again when the block ends; a write of this process inside the block is seen by the next read."""

from __future__ import annotations

import subprocess
import sys

import polars as pl
import pytest

import hdi
from hdi.store import duckdb_share
from hdi.store.duckdb import parse_path

OPEN = "import duckdb, sys; duckdb.connect(sys.argv[1], read_only=sys.argv[2] == 'ro').close()"


def _opens(path: str, mode: str) -> bool:
    """Whether another process can open the DuckDB file (``ro``: read-only, ``rw``: to write)."""
    done = subprocess.run([sys.executable, "-c", OPEN, path, mode], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 or "lock" in done.stderr.lower(), done.stderr
    return done.returncode == 0


@pytest.fixture
def bars(store, make_bars, make_symbology):
    sym = make_symbology([("CL.c.0", 101, "2024-01-02", "2024-01-10"), ("CL.c.0", 102, "2024-01-10", "2024-01-20"),
                          ("CLF4", 101, "2024-01-02", "2024-01-20"), ("CLG4", 102, "2024-01-02", "2024-01-20")])
    store.write("ohlcv", make_bars([{"instrument_id": iid, "bar_timestamp_utc": f"2024-01-{d:02d}"}
                                    for iid in (101, 102) for d in range(8, 12)]), symbology=sym)
    return store


def test_reads_in_a_hold_equal_reads_outside_it(bars):
    outside = [hdi.read_bars("CL.c.0", "2024-01-08", "2024-01-12", store=bars.url),
               hdi.read_bars(["CLG4", "101"], "2024-01-09", "2024-01-11", store=bars.url, prices="decimal")]
    with hdi.hold(bars.url):
        for _ in range(2):  # the second time from what the first looked up
            inside = [hdi.read_bars("CL.c.0", "2024-01-08", "2024-01-12", store=bars.url),
                      hdi.read_bars(["CLG4", "101"], "2024-01-09", "2024-01-11", store=bars.url, prices="decimal")]
            for a, b in zip(outside, inside, strict=True):
                assert a.schema == b.schema and a.rows() == b.rows()
    assert outside[0].select("instrument_id", "raw_symbol").rows() == [(101, "CLF4"), (101, "CLF4"), (102, "CLG4"),
                                                                       (102, "CLG4")]


def test_a_write_inside_the_hold_is_seen_by_the_next_read(bars, make_bars, make_symbology):
    with hdi.hold(bars.url):
        assert hdi.read_bars("CL.c.0", "2024-01-08", "2024-01-12", store=bars.url).height == 4
        # a new contract for CL.c.0 from Jan 11, with its own raw symbol: new symbology and new rows
        sym = make_symbology([("CL.c.0", 103, "2024-01-11", "2024-01-20"), ("CLH4", 103, "2024-01-02", "2024-01-20")])
        bars.write("ohlcv", make_bars([{"instrument_id": 103, "bar_timestamp_utc": "2024-01-11"}]), symbology=sym)
        df = hdi.read_bars("CL.c.0", "2024-01-08", "2024-01-12", store=bars.url)
    assert df.filter(pl.col("instrument_id") == 103).select("symbol", "raw_symbol").rows() == [("CL.c.0", "CLH4")]
    assert df.height == 5


def test_a_held_duckdb_file_is_released_at_the_end_of_the_block(bars):
    if bars.kind != "duckdb":
        pytest.skip("only a DuckDB file is held by a process")
    path = parse_path(bars.url)
    hdi.read_bars("CL.c.0", "2024-01-08", "2024-01-12", store=bars.url)
    assert _opens(str(path), "rw")  # a module-level read leaves the file free
    with hdi.hold(bars.url):
        hdi.read_bars("CL.c.0", "2024-01-08", "2024-01-12", store=bars.url)
        assert duckdb_share.attachment(path) is not None
        assert _opens(str(path), "ro")  # other readers read it meanwhile
        assert not _opens(str(path), "rw")  # a writer cannot open it until the block ends
    assert duckdb_share.attachment(path) is None
    assert _opens(str(path), "rw")


def test_the_hold_ends_when_the_block_raises(bars):
    with pytest.raises(ZeroDivisionError), hdi.hold(bars.url):
        hdi.read_bars("CL.c.0", "2024-01-08", "2024-01-12", store=bars.url)
        _ = 1 / 0
    if bars.kind == "duckdb":
        assert duckdb_share.attachment(parse_path(bars.url)) is None
        assert _opens(str(parse_path(bars.url)), "rw")
