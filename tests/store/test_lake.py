"""The lake store (issue 16): what only an Iceberg store has to prove beyond the store contract.

A second engine (pyarrow over the data files the catalog lists) agrees with ``read_trades`` row for
row; ns timestamps and 1e-9 prices survive; tables are laid out as documented (partitions, sort
order, zstd); a crash between the Iceberg commit and the ledger leaves no duplicate and the re-run
counts the rows as the chunk's; concurrent writers in separate processes lose and double nothing;
another pyiceberg catalog is chosen by the URL.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import textwrap
from decimal import Decimal
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest
from pyiceberg.catalog import load_catalog

import hdi
from hdi.errors import StoreError
from hdi.pipeline import ingest
from hdi.store import close_all, open_store
from hdi.store.iceberg import parse_url
from hdi.store.ledger import ChunkRecord

ROOT = Path(__file__).resolve().parents[2]
TRADES = ROOT / "recipes" / "trades.yaml"
FUTURES = "CL.c.0,NG.c.0,HO.c.0,RB.c.0,ES.c.0"
UTC = dt.UTC


@pytest.fixture
def lake(tmp_path):
    yield f"iceberg://{tmp_path / 'lake'}"
    close_all()


def _catalog(url: str):
    cfg = parse_url(url)
    return load_catalog(cfg.catalog, **cfg.properties), cfg.namespace


def _files(url: str, table: str) -> list[str]:
    """The table's current data files, as the catalog lists them (no hdi code involved)."""
    catalog, ns = _catalog(url)
    tbl = catalog.load_table(f"{ns}.{table}")
    tasks = list(tbl.scan().plan_files())
    assert all(not t.delete_files for t in tasks)
    return [t.file.file_path.removeprefix("file://") for t in tasks]


def _count(url: str, table: str = "trades") -> int:
    return int(open_store(url).query(f"SELECT count(*) AS n FROM {table}").item())


def test_a_second_engine_reads_the_lake_and_agrees_with_read_trades_row_for_row(gateway, lake):
    report = ingest(TRADES, start="2024-12-02", end="2024-12-04", symbols=FUTURES, store=lake)
    assert report.ok and report.rows_loaded > 1000
    ours = hdi.read_trades(FUTURES.split(","), "2024-12-02", "2024-12-04", store=lake, prices="decimal")
    assert ours.height == report.rows_loaded
    theirs = pl.from_arrow(pq.ParquetDataset(_files(lake, "trades")).read())
    assert theirs.height == ours.height
    cols = ["instrument_id", "ts_event_ns", "ts_recv_ns", "price", "size", "sequence", "rec_ordinal", "flags"]
    order = ["instrument_id", "ts_recv_ns", "sequence", "rec_ordinal"]
    a = ours.select(cols).sort(order)
    b = theirs.select(cols).cast(a.schema).sort(order)
    assert a.equals(b)
    # the µs timestamp another engine sees is the ns one, truncated
    assert (theirs["received_timestamp_utc"].dt.epoch("us") == theirs["ts_recv_ns"] // 1000).all()


def test_ns_timestamps_and_1e9_prices_survive_exactly(lake, make_trades):
    st = open_store(lake)
    frame = make_trades([{"ts_recv_ns": "2024-12-02T00:00:00.123456789"},
                         {"ts_recv_ns": "2024-12-02T00:00:00.123456790"}])
    frame = frame.with_columns(price=pl.Series([Decimal("9999999999.999999999"), Decimal("0.000000001")],
                                               dtype=pl.Decimal(19, 9)))
    assert st.write("trades", frame).inserted == 2
    back = st.select("trades")
    assert back.select(frame.columns).sort("ts_recv_ns").equals(frame.sort("ts_recv_ns"))
    assert back["received_timestamp_utc"].dtype == pl.Datetime("ns", "UTC")
    assert back["received_timestamp_utc"].dt.epoch("ns").to_list() == frame["ts_recv_ns"].to_list()
    catalog, ns = _catalog(lake)
    types = {f.name: str(f.field_type) for f in catalog.load_table(f"{ns}.trades").schema().fields}
    assert (types["price"], types["received_timestamp_utc"], types["ts_recv_ns"]) == (
        "decimal(19, 9)", "timestamptz", "long")


def test_tables_are_partitioned_sorted_and_zstd_and_each_chunk_is_one_commit(lake, make_trades):
    st = open_store(lake)
    chunk = ChunkRecord(chunk_id="chunk-1", run_id="r1", recipe="x", recipe_hash="h", dataset="GLBX.MDP3",
                        schema="trades", stype_in="raw_symbol", symbols="ESH4",
                        start_ts=dt.datetime(2024, 12, 2, tzinfo=UTC), end_ts=dt.datetime(2024, 12, 4, tzinfo=UTC),
                        target_table="trades")
    with st.transaction(chunk=chunk) as txn:
        for day in ("02", "03"):  # two batches, two days
            txn.write("trades", make_trades([{"instrument_id": i, "ts_recv_ns": f"2024-12-{day}T10:00:00"}
                                             for i in (3, 1, 2)]))
    catalog, ns = _catalog(lake)
    tbl = catalog.load_table(f"{ns}.trades")
    assert [str(f.transform) for f in tbl.spec().fields] == ["day"]
    assert [tbl.schema().find_column_name(f.source_id) for f in tbl.sort_order().fields] == [
        "instrument_id", "received_timestamp_utc"]
    assert len(tbl.snapshots()) == 1  # one commit for the chunk
    snap = tbl.current_snapshot()
    assert snap.summary["hdi.chunk-id"] == "chunk-1" and snap.summary["added-records"] == "6"
    files = _files(lake, "trades")
    assert len(files) == 2 and all("received_timestamp_utc_day=2024-12-0" in f for f in files)
    for f in files:
        meta = pq.ParquetFile(f).metadata
        assert meta.row_group(0).column(0).compression == "ZSTD"
        assert pq.read_table(f)["instrument_id"].to_pylist() == [1, 2, 3]  # sorted by instrument
    # the ledger row records the snapshot the chunk committed
    commits = open_store(lake).ledger.connect().execute(
        "SELECT chunk_id, table_name, snapshot_id, rows_inserted FROM hdi_lake_commits").fetchall()
    assert commits == [("chunk-1", "trades", snap.snapshot_id, 6)]
    assert st.chunks()["rows_loaded"].to_list() == [6]


CRASH = textwrap.dedent("""
    import datetime as dt, os, sys
    import polars as pl
    from hdi.store import open_store
    from hdi.store.iceberg import Ledger
    from hdi.store.ledger import ChunkRecord

    def die(*a, **k):  # the process dies after the Iceberg commit, before the ledger commits
        os._exit(9)

    Ledger.apply = die
    st = open_store(sys.argv[1])
    frame = pl.read_parquet(sys.argv[2])
    chunk = ChunkRecord(chunk_id="chunk-1", run_id="r1", recipe="x", recipe_hash="h", dataset="GLBX.MDP3",
                        schema="trades", stype_in="raw_symbol", symbols="ESH4",
                        start_ts=dt.datetime(2024, 12, 2, tzinfo=dt.UTC),
                        end_ts=dt.datetime(2024, 12, 3, tzinfo=dt.UTC), target_table="trades")
    st.write("trades", frame, chunk=chunk)
""")


def test_a_crash_between_the_lake_commit_and_the_ledger_leaves_no_duplicate(lake, make_trades, tmp_path):
    frame = make_trades([{"instrument_id": i, "ts_recv_ns": f"2024-12-02T10:00:0{i}"} for i in range(1, 6)])
    frame.write_parquet(tmp_path / "batch.parquet")
    done = subprocess.run([sys.executable, "-c", CRASH, lake, str(tmp_path / "batch.parquet")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 9, done.stderr
    st = open_store(lake)
    assert _count(lake) == 5 and st.chunks().height == 0  # committed rows, no ledger row
    chunk = ChunkRecord(chunk_id="chunk-1", run_id="r2", recipe="x", recipe_hash="h", dataset="GLBX.MDP3",
                        schema="trades", stype_in="raw_symbol", symbols="ESH4",
                        start_ts=dt.datetime(2024, 12, 2, tzinfo=UTC), end_ts=dt.datetime(2024, 12, 3, tzinfo=UTC),
                        target_table="trades")
    st.write("trades", frame, chunk=chunk)  # the re-run of the same chunk
    assert _count(lake) == 5  # no duplicate
    row = st.chunks().row(0, named=True)
    # the rows are the chunk's: the snapshot whose summary names it was found
    assert (row["rows_loaded"], row["rows_already_present"]) == (5, 0)
    catalog, ns = _catalog(lake)
    snaps = catalog.load_table(f"{ns}.trades").snapshots()
    assert len(snaps) == 1  # nothing new was committed
    assert st.ledger.connect().execute("SELECT snapshot_id FROM hdi_lake_commits").fetchall() == [
        (snaps[0].snapshot_id,)]


WRITER = textwrap.dedent("""
    import sys
    import polars as pl
    from hdi.store import open_store
    st = open_store(sys.argv[1])
    frame = pl.read_parquet(sys.argv[2])
    for lo in range(0, frame.height, 50):
        st.write("trades", frame.slice(lo, 50))
""")


def test_concurrent_writer_processes_lose_and_double_nothing(lake, make_trades, tmp_path):
    """Two processes commit into one table at once: disjoint days, and the same rows (both write
    day 3): every row once."""
    open_store(lake).migrate()
    paths = []
    for w, days in enumerate(((1, 3), (2, 3))):
        frame = pl.concat([make_trades([{"instrument_id": i, "ts_recv_ns": f"2024-12-0{d}T10:{i // 60:02d}:{i % 60:02d}"}
                                        for i in range(200)]) for d in days])
        paths.append(tmp_path / f"w{w}.parquet")
        frame.write_parquet(paths[-1])
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, lake, str(p)], stderr=subprocess.PIPE, text=True)
             for p in paths]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    assert _count(lake) == 600
    key = "instrument_id, received_timestamp_utc, ts_recv_ns, sequence, rec_ordinal, dataset"
    assert int(open_store(lake).query(f"SELECT count(*) FROM (SELECT DISTINCT {key} FROM trades) d").item()) == 600


def test_another_catalog_is_chosen_by_the_url(tmp_path, make_bars):
    """``?catalog=NAME`` plus catalog properties: here a SQL catalog in another SQLite file."""
    (tmp_path / "wh").mkdir()
    url = (f"iceberg://{tmp_path / 'ledger'}?catalog=prod&type=sql&uri=sqlite:///{tmp_path / 'prod.db'}"
           f"&warehouse=file://{tmp_path / 'wh'}&namespace=market")
    st = open_store(url)
    assert st.write("ohlcv", make_bars([{"instrument_id": 1, "bar_timestamp_utc": "2024-01-02"}])).inserted == 1
    catalog = load_catalog("prod", type="sql", uri=f"sqlite:///{tmp_path / 'prod.db'}",
                           warehouse=f"file://{tmp_path / 'wh'}")
    assert catalog.load_table("market.ohlcv").scan().to_arrow().num_rows == 1
    assert (tmp_path / "ledger" / "ledger.sqlite").exists() and not (tmp_path / "ledger" / "catalog.db").exists()
    close_all()


@pytest.mark.parametrize("url, message", [
    ("iceberg://host/x", "has a host"),
    ("iceberg://", "names no absolute folder"),
    ("iceberg:///x?uri=sqlite:///y", "gives catalog properties (uri) but no catalog=NAME"),
    ("iceberg:///x?namespace=a.b", "namespace 'a.b' is not allowed"),
])
def test_a_bad_lake_url_is_one_line(url, message):
    with pytest.raises(StoreError) as info:
        open_store(url)
    assert message in info.value.message and "\n" not in info.value.message


def test_roll_schedules_are_kept_in_the_ledger_and_replaced_by_a_recomputation(lake):
    """``hdi rolls`` writes with on_conflict='update': the lake keeps them in its SQLite ledger."""
    from hdi._tables import ROLLS
    from hdi.store.frames import normalise

    st = open_store(lake)
    ts = dt.datetime(2024, 1, 19, 23, tzinfo=UTC)
    row = {"dataset": "GLBX.MDP3", "root": "CL", "rule": "calendar", "parameters": "days_before_expiry=2",
           "trading_date": dt.date(2024, 1, 19), "effective_ts": ts, "from_contract": "CLG4",
           "from_instrument_id": 1, "to_contract": "CLH4", "to_instrument_id": 2, "decided_by_ts": ts,
           "decided_by_ns": 1705705200123456789, "decided_by": "expiration of CLG4 (definition)", "computed_at": ts}
    for decided in ("first", "second"):
        with st.transaction() as txn:
            txn.write("rolls", pl.DataFrame([{**row, "decided_by": decided}], schema=ROLLS.polars_schema),
                      on_conflict="update")
    got = normalise(st.query('SELECT * FROM "rolls" WHERE "root" = $1', ["CL"]), ROLLS, ROLLS.names)
    assert got.height == 1 and got["decided_by"][0] == "second"
    assert got["decided_by_ts"].dt.epoch("ns")[0] == 1705705200123456789  # rebuilt from decided_by_ns
