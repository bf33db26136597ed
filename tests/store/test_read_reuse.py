"""Reads of a DuckDB file reuse what they looked up (symbol windows, raw-symbol intervals, tables)
only while the file's content is unchanged: a write between two reads, from hdi or from a plain
``duckdb`` connection, in this process or another, checkpointed into the file or still in its WAL,
is seen by the second read.

DuckDB only: a DuckDB file is attached per call (hdi/store/duckdb_share.py), and its content token
(``content_token``) is what a read's lookups are kept under.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import polars as pl
import pytest

import hdi
from hdi.store import duckdb_share
from hdi.store.duckdb import parse_path

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def duck(tmp_path, make_bars, make_symbology):
    from hdi.store import close_all, open_store

    url = f"duckdb://{tmp_path / 'store.duckdb'}"
    st = open_store(url)
    sym = make_symbology([("CL.c.0", 101, "2024-01-02", "2024-01-10"), ("CL.c.0", 102, "2024-01-10", "2024-01-20"),
                          ("CLF4", 101, "2024-01-02", "2024-01-20"), ("CLG4", 102, "2024-01-02", "2024-01-20")])
    st.write("ohlcv", make_bars([{"instrument_id": iid, "bar_timestamp_utc": f"2024-01-{d:02d}"}
                                 for iid in (101, 102) for d in range(8, 12)]), symbology=sym)
    yield st
    close_all()


def _read(url: str) -> pl.DataFrame:
    return hdi.read_bars("CL.c.0", "2024-01-08", "2024-01-12", store=url)


def _labels(df: pl.DataFrame) -> list[tuple[int, str | None]]:
    return df.select("instrument_id", "raw_symbol").rows()


# A plain duckdb connection in another process: CLF4 becomes CLX4 (a raw-symbol interval), and
# CL.c.0 maps to 101 up to Jan 9 only (a symbol window): both are lookups a read keeps.
PLAIN = textwrap.dedent("""
    import sys, duckdb
    con = duckdb.connect(sys.argv[1])
    if sys.argv[2] == "wal":  # leave the write in the WAL: no checkpoint, not even at close
        con.execute("PRAGMA disable_checkpoint_on_shutdown")
        con.execute("SET checkpoint_threshold = '1GB'")
    con.execute("UPDATE symbology SET symbol = 'CLX4' WHERE symbol = 'CLF4'")
    con.execute("UPDATE symbology SET end_date = DATE '2024-01-09' WHERE symbol = 'CL.c.0' AND instrument_id = 101")
    if sys.argv[2] == "checkpoint":
        con.execute("CHECKPOINT")
    con.close()
""")


@pytest.mark.parametrize("mode", ["wal", "checkpoint"])
def test_a_plain_duckdb_write_from_another_process_between_two_reads_is_seen(duck, mode):
    path = parse_path(duck.url)
    before = _read(duck.url)
    assert _labels(before) == [(101, "CLF4"), (101, "CLF4"), (102, "CLG4"), (102, "CLG4")]
    assert _read(duck.url).rows() == before.rows()  # from the kept lookups: the same answer
    done = subprocess.run([sys.executable, "-c", PLAIN, str(path), mode], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert path.with_name(path.name + ".wal").exists() == (mode == "wal")
    after = _read(duck.url)
    assert _labels(after) == [(101, "CLX4"), (102, "CLG4"), (102, "CLG4")]
    assert after.get_column("bar_timestamp_utc").dt.day().to_list() == [8, 10, 11]


def test_a_plain_duckdb_write_in_this_process_between_two_reads_is_seen(duck):
    import duckdb

    path = parse_path(duck.url)
    assert _labels(_read(duck.url))[0] == (101, "CLF4")
    con = duckdb.connect(str(path))  # the file is free between hdi's calls
    try:
        con.execute("UPDATE symbology SET symbol = 'CLY4' WHERE symbol = 'CLF4'")
    finally:
        con.close()
    assert _labels(_read(duck.url))[0] == (101, "CLY4")


def test_an_hdi_write_from_another_process_between_two_reads_is_seen(duck):
    assert _labels(_read(duck.url))[:2] == [(101, "CLF4"), (101, "CLF4")]
    # instrument 101 is renamed CLZ9 from Jan 9: the raw-symbol interval that starts last wins
    code = textwrap.dedent("""
        import sys, datetime as dt, polars as pl
        from hdi.store import open_store
        sym = pl.DataFrame({"dataset": ["GLBX.MDP3"], "stype_in": ["raw_symbol"], "symbol": ["CLZ9"],
                            "instrument_id": [101], "start_date": [dt.date(2024, 1, 9)],
                            "end_date": [dt.date(2024, 1, 20)], "source": ["metadata"]})
        open_store(sys.argv[1]).write_symbology(sym)
    """)
    done = subprocess.run([sys.executable, "-c", code, duck.url], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    assert _labels(_read(duck.url)) == [(101, "CLF4"), (101, "CLZ9"), (102, "CLG4"), (102, "CLG4")]


def test_an_hdi_write_in_this_process_between_two_reads_is_seen(duck, make_bars, make_symbology):
    assert _read(duck.url).height == 4
    sym = make_symbology([("CL.c.0", 103, "2024-01-11", "2024-01-20"), ("CLH4", 103, "2024-01-02", "2024-01-20")])
    duck.write("ohlcv", make_bars([{"instrument_id": 103, "bar_timestamp_utc": "2024-01-11"}]), symbology=sym)
    df = _read(duck.url)
    assert df.height == 5
    assert df.filter(pl.col("instrument_id") == 103).select("symbol", "raw_symbol").rows() == [("CL.c.0", "CLH4")]


def test_the_content_token_is_the_same_while_nothing_changes_and_new_after_each_write(duck, make_bars):
    path = parse_path(duck.url)

    def token() -> object:
        with duck.session():
            return duckdb_share.attachment(path)

    first = token()
    fd = os.open(path, os.O_RDONLY)  # not attached now: closing it drops no lock
    try:
        assert first is not None and first == token() == duckdb_share.content_token(path, fd)
    finally:
        os.close(fd)
    duck.write("ohlcv", make_bars([{"instrument_id": 101, "bar_timestamp_utc": "2024-01-05"}]))
    second = token()
    assert second != first
    assert _read(duck.url).rows() == _read(duck.url).rows()
    assert token() == second
    assert duckdb_share.attachment(path) is None  # released when the call returns


def test_no_token_for_a_file_that_is_not_a_duckdb_file(tmp_path):
    other = tmp_path / "x.duckdb"
    other.write_bytes(b"not a database" * 1000)
    fd = os.open(other, os.O_RDONLY)
    try:
        assert duckdb_share.content_token(other, fd) is None
    finally:
        os.close(fd)


def test_a_file_held_by_a_read_stays_locked_against_writers(duck):
    """The token's descriptor of the file stays open until the detach: closing it would drop
    DuckDB's lock (POSIX locks belong to the process) and let another process write mid-read."""
    path = parse_path(duck.url)
    code = "import duckdb, sys; duckdb.connect(sys.argv[1]).close()"
    with duck.session():
        assert duckdb_share.attachment(path) is not None
        done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=60)
        assert done.returncode != 0 and "lock" in done.stderr.lower(), done.stderr
    done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_one_symbol_over_two_instruments_a_day_comes_sorted_by_time_then_instrument(duck, make_bars, make_symbology):
    """One symbol skips the join and the sort of several (its rows come in the store's order):
    a parent's contracts on the same days still come by time, then instrument, each once."""
    sym = make_symbology([("ES.FUT", 202, "2024-01-02", "2024-01-20", "GLBX.MDP3", "parent"),
                          ("ES.FUT", 201, "2024-01-02", "2024-01-20", "GLBX.MDP3", "parent"),
                          ("ES.FUT", 201, "2024-01-20", "2024-01-25", "GLBX.MDP3", "parent")])
    duck.write("ohlcv", make_bars([{"instrument_id": iid, "bar_timestamp_utc": f"2024-01-{d:02d}"}
                                   for iid in (202, 201) for d in (12, 9, 10)]), symbology=sym)
    df = hdi.read_bars("ES.FUT", "2024-01-01", "2024-02-01", store=duck.url)
    assert df.select(pl.col("bar_timestamp_utc").dt.day(), "instrument_id").rows() == [
        (9, 201), (9, 202), (10, 201), (10, 202), (12, 201), (12, 202)]
    assert df.get_column("symbol").unique().to_list() == ["ES.FUT"]
    several = hdi.read_bars(["ES.FUT", "CL.c.0"], "2024-01-01", "2024-02-01", store=duck.url)
    assert several.filter(pl.col("symbol") == "ES.FUT").rows() == df.rows()
