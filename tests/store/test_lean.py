"""Lean tick tables in TimescaleDB (issue 17, migration 8): a store written by the previous schema is
converted in place with every value kept exactly; prices at the int64 fixed-point edges and negative
prices round-trip exactly; trades in the same nanosecond are all kept; the views show the documented
columns with exact values. Each test also runs on DuckDB where the behaviour is the store contract's."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import polars as pl
import pytest

from hdi._tables import BBO, MBO, TRADES, Table
from hdi.store import close_all, open_store
from hdi.store.migrate import _MIGRATIONS, MIGRATIONS_TABLE
from tests.store.test_row_counts import assert_counts_true

pytestmark = pytest.mark.timescale

MAX_PRICE = Decimal("9223372036.854775807")  # int64 max at 1e-9
MIN_PRICE = Decimal("-9223372036.854775808")
T0 = 1_704_196_800_123_456_789  # 2024-01-02 12:00:00.123456789 UTC


def _frame(table: Table, rows: list[dict]) -> pl.DataFrame:
    """A frame of ``table`` from dicts: unset columns take plain defaults; *_timestamp_utc from their ns."""
    defaults = {"dataset": "GLBX.MDP3", "data_source": "databento", "publisher_id": 1, "granularity": "1s",
                "action": "A", "side": "buy", "aggressor_side": "buy", "ts_recv_ns": T0}
    recs = []
    for r in rows:
        rec: dict = {}
        for c in table.columns:
            if c.name in r:
                rec[c.name] = r[c.name]
            elif c.name in defaults:
                rec[c.name] = defaults[c.name]
            elif c.type.name.startswith("I"):
                rec[c.name] = 0
            elif c.type.name == "PRICE":
                rec[c.name] = None if c.nullable else Decimal("1")
            else:
                rec[c.name] = None
        if rec.get("ts_event_ns") == 0 and "ts_event_ns" not in r:
            rec["ts_event_ns"] = rec["ts_recv_ns"] - 1000
        recs.append(rec)
    df = pl.DataFrame(recs, schema={c.name: (pl.Int64 if c.type.name == "TS" else c.type.polars)
                                    for c in table.columns})
    ts = [pl.col(ns).cast(pl.Datetime("ns")).dt.replace_time_zone("UTC").alias(t) for t, ns in table.ns_columns]
    return df.with_columns(ts)


def _trades() -> pl.DataFrame:
    return _frame(TRADES, [
        {"instrument_id": 1, "price": MAX_PRICE, "sequence": 7},
        {"instrument_id": 1, "price": MIN_PRICE, "sequence": 7, "rec_ordinal": 1, "aggressor_side": None},
        {"instrument_id": 1, "price": MIN_PRICE, "sequence": 7, "rec_ordinal": 2, "aggressor_side": "sell"},
        {"instrument_id": 2, "price": Decimal("-1.5"), "ts_recv_ns": T0 + 1, "ts_event_ns": T0 - 5_000_000_000,
         "ts_in_delta": None, "size": 2**40},
        {"instrument_id": 4_294_967_295, "price": Decimal("0.000000001"), "dataset": "XNAS.ITCH", "publisher_id": 2,
         "ts_recv_ns": T0 + 86_400 * 10**9},
    ])


def _mbo() -> pl.DataFrame:
    return _frame(MBO, [
        {"instrument_id": 1, "order_id": 11, "action": "A", "side": "buy", "price": Decimal("70.25")},
        {"instrument_id": 1, "order_id": 11, "action": "C", "side": None, "price": None, "rec_ordinal": 1},
        {"instrument_id": 1, "order_id": 12, "action": "T", "side": "sell", "price": Decimal("-0.5"),
         "publisher_id": 3, "rec_ordinal": 2},
    ])


def _bbo() -> pl.DataFrame:
    return _frame(BBO, [
        {"instrument_id": 1, "granularity": "1s", "ts_event_ns": None, "event_timestamp_utc": None,
         "bid_price": Decimal("70.1"), "ask_price": None, "side": None},
        {"instrument_id": 1, "granularity": "1m", "bid_price": None, "ask_price": Decimal("70.2")},
    ])


FRAMES = {"trades": _trades, "mbo": _mbo, "bbo": _bbo}


def _sorted(df: pl.DataFrame, table: Table) -> pl.DataFrame:
    return df.select(table.names).sort([k for k in table.key if k in df.columns], nulls_last=True)


@pytest.mark.parametrize("backend", ["duckdb", "timescale"])
@pytest.mark.parametrize("name", sorted(FRAMES))
def test_extreme_prices_same_nanosecond_trades_and_ns_round_trip_exactly(backend, name, request, tmp_path):
    url = (request.getfixturevalue("timescale_schema_url") if backend == "timescale"
           else f"duckdb://{tmp_path / 'store.duckdb'}")
    table = {"trades": TRADES, "mbo": MBO, "bbo": BBO}[name]
    want = FRAMES[name]()
    st = open_store(url)
    first = st.write(name, want)
    assert (first.inserted, first.already_present) == (want.height, 0)
    again = st.write(name, want)  # a re-run stores nothing twice, whichever path it takes
    assert (again.inserted, again.already_present) == (0, want.height)
    got = st.select(name)
    assert _sorted(got, table).equals(_sorted(want, table))
    assert got.schema == pl.Schema({c.name: c.type.polars for c in table.columns})
    one = st.select(name, start=dt.datetime(2024, 1, 2, tzinfo=dt.UTC), end=dt.datetime(2024, 1, 3, tzinfo=dt.UTC),
                    equals={"dataset": "GLBX.MDP3"})
    assert one.height == want.filter(pl.col("dataset") == "GLBX.MDP3").height
    close_all()


def test_same_nanosecond_trades_are_all_kept_and_an_update_replaces_exactly(timescale_schema_url):
    st = open_store(timescale_schema_url)
    rows = _frame(TRADES, [{"instrument_id": 9, "rec_ordinal": i, "price": Decimal(i)} for i in range(5)])
    st.write("trades", rows)
    changed = rows.with_columns(pl.col("price") + Decimal("0.000000001"))
    res = st.write("trades", changed.head(2), on_conflict="update")
    assert (res.inserted, res.path) == (2, "merge")
    got = st.select("trades").sort("rec_ordinal")["price"].to_list()
    assert got == [Decimal("0.000000001"), Decimal("1.000000001"), Decimal(2), Decimal(3), Decimal(4)]
    # rows of another dataset with the same key are other trades
    other = rows.with_columns(pl.lit("XNAS.ITCH").alias("dataset"))
    assert st.write("trades", other).inserted == 5
    assert st.query("SELECT count(*) AS n FROM trades").item() == 10


def test_a_price_outside_int64_fixed_point_is_refused_with_its_value(timescale_schema_url):
    from hdi.errors import StoreError

    st = open_store(timescale_schema_url)
    bad = _frame(TRADES, [{"price": Decimal("9223372036.854775808")}])
    with pytest.raises(StoreError, match=r"column 'price' value .*9223372036\.854775808.* allowed: "):
        st.write("trades", bad)
    assert st.query("SELECT count(*) AS n FROM trades").item() == 0


def test_the_view_shows_the_documented_columns_with_exact_values(timescale_schema_url):
    st = open_store(timescale_schema_url)
    st.write("trades", _trades())
    cols = st.query("SELECT column_name AS c, data_type AS t FROM information_schema.columns WHERE table_name = "
                    "'trades' AND table_schema = current_schema() ORDER BY ordinal_position")
    assert cols["c"].to_list() == TRADES.names
    assert dict(cols.iter_rows())["price"] == "numeric" and dict(cols.iter_rows())["received_timestamp_utc"] == \
        "timestamp with time zone"
    got = st.query("SELECT price::text AS p, aggressor_side AS s, received_timestamp_utc::text AS r, dataset, "
                   "publisher_id FROM trades ORDER BY ts_recv_ns, rec_ordinal, instrument_id")
    assert got.rows() == [
        ("9223372036.854775807", "buy", "2024-01-02 12:00:00.123456+00", "GLBX.MDP3", 1),
        ("-9223372036.854775808", None, "2024-01-02 12:00:00.123456+00", "GLBX.MDP3", 1),
        ("-9223372036.854775808", "sell", "2024-01-02 12:00:00.123456+00", "GLBX.MDP3", 1),
        ("-1.500000000", "buy", "2024-01-02 12:00:00.123456+00", "GLBX.MDP3", 1),
        ("0.000000001", "buy", "2024-01-03 12:00:00.123456+00", "XNAS.ITCH", 2),
    ]
    # a filter on the physical time column of the view reaches the chunk of that day only
    plan = "\n".join(st.query("EXPLAIN SELECT * FROM trades WHERE ts_recv_ns >= $1 AND ts_recv_ns < $2",
                              [T0 + 86_400 * 10**9, T0 + 86_401 * 10**9]).to_series().to_list())
    assert plan.count("_hyper_") == 1, plan


def _old_layout(url: str, frames: dict[str, pl.DataFrame], version: int = 4) -> None:
    """A store as hdi before migration 8 left it: rows COPYed as hdi did into a version-4 store, then
    migrations 5 to ``version`` applied to it (7 fills ``row_counts`` from those rows, as it did)."""
    import adbc_driver_postgresql.dbapi as pg

    from hdi._tables import DATA_TABLES
    from hdi.store.schema import conform

    def apply(*versions: int) -> None:
        for v in versions:
            for sql in _MIGRATIONS[v]("timescale"):
                cur.execute(sql)
            cur.execute(f"INSERT INTO {MIGRATIONS_TABLE} (version) VALUES ({v})")

    with pg.connect(url, autocommit=True) as c, c.cursor() as cur:
        cur.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
        cur.execute(f"CREATE TABLE {MIGRATIONS_TABLE} (version integer PRIMARY KEY, applied_at timestamptz NOT NULL "
                    "DEFAULT now())")
        apply(1, 2, 3, 4)
        for name, frame in frames.items():
            cur.adbc_ingest(name, conform(frame, DATA_TABLES[name], backend="timescale").to_arrow(), mode="append")
        apply(*range(5, version + 1))


def test_migration_8_converts_a_store_of_the_previous_schema_in_place_exactly(timescale_schema_url):
    frames = {n: f() for n, f in FRAMES.items()}
    _old_layout(timescale_schema_url, frames)
    old = open_store(timescale_schema_url)
    before = {n: old._fetch(f'SELECT * FROM "{n}"') for n in frames}  # noqa: SLF001 - no migrate() on this read
    assert not old.has_table("hdi_trades")
    close_all()
    st = open_store(timescale_schema_url)
    st.migrate()  # a version-4 store: migrations 5, 6, 7 (row_counts filled from the plain tables) and 8
    assert sorted(st.query(f"SELECT version FROM {MIGRATIONS_TABLE}")["version"].to_list()) == list(range(1, 9))
    for name, table in (("trades", TRADES), ("mbo", MBO), ("bbo", BBO)):
        after = st.query(f'SELECT * FROM "{name}"')
        assert after.height == before[name].height == frames[name].height
        assert _sorted(after, table).equals(_sorted(before[name], table)), name
        assert _sorted(st.select(name), table).equals(_sorted(frames[name], table)), name
    kinds = dict(st.query("SELECT table_name AS n, table_type AS t FROM information_schema.tables WHERE "
                          "table_schema = current_schema() AND table_name IN ('trades', 'hdi_trades')").iter_rows())
    assert kinds == {"trades": "VIEW", "hdi_trades": "BASE TABLE"}
    st.check(["trades", "mbo", "bbo", "mbp10"])
    counted = assert_counts_true(st)
    assert int(counted["rows"].sum()) == sum(f.height for f in frames.values())
    # and the converted store takes new rows and re-runs as before
    assert st.write("trades", frames["trades"]).already_present == frames["trades"].height
    assert assert_counts_true(st).equals(counted)


def test_a_version_7_store_keeps_its_row_counts_through_migration_8(timescale_schema_url):
    frames = {n: f() for n, f in FRAMES.items()}
    _old_layout(timescale_schema_url, frames, version=7)
    old = open_store(timescale_schema_url)
    counted = old._fetch("SELECT * FROM row_counts ORDER BY 1, 2, 3, 4, 5")  # noqa: SLF001 - no migrate()
    assert int(counted["rows"].sum()) == sum(f.height for f in frames.values())
    close_all()
    st = open_store(timescale_schema_url)
    st.migrate()
    assert st.has_table("hdi_trades")
    assert st.query("SELECT * FROM row_counts ORDER BY 1, 2, 3, 4, 5").equals(counted)
    assert_counts_true(st)
    # kept from there on by the lean write path: a merge (some rows stored), an update and a delete
    more = _frame(TRADES, [{"instrument_id": 1, "sequence": 8, "ts_recv_ns": T0 + k} for k in range(3)])
    assert st.write("trades", pl.concat([FRAMES["trades"]().head(2), more])).inserted == 3
    assert st.write("trades", more, on_conflict="update").inserted == 3
    assert int(assert_counts_true(st).filter(pl.col("table") == "trades")["rows"].sum()) == 8
    with st.transaction() as txn:
        assert txn.delete_days("trades", dataset="GLBX.MDP3", symbols_or_instrument_ids=[1],
                               start=dt.datetime(2024, 1, 2, tzinfo=dt.UTC),
                               end=dt.datetime(2024, 1, 3, tzinfo=dt.UTC)) == 6
    assert int(assert_counts_true(st).filter(pl.col("table") == "trades")["rows"].sum()) == 2


@pytest.mark.parametrize("backend", ["duckdb", "timescale"])
def test_delete_days_filters_by_microsecond_bounds_sources_and_values_like_the_view(backend, request, tmp_path):
    """delete_days on the lean hypertable deletes exactly the rows the view's columns select: time
    bounds on the microsecond ``received_timestamp_utc`` (ns just inside and outside), one dataset's
    source codes, and ``equals`` on a source column, a side, an action and a price."""
    url = (request.getfixturevalue("timescale_schema_url") if backend == "timescale"
           else f"duckdb://{tmp_path / 'store.duckdb'}")
    st = open_store(url)
    us = T0 - T0 % 1000  # 2024-01-02 12:00:00.123456 UTC
    start = dt.datetime(2024, 1, 2, 12, 0, 0, 123456, tzinfo=dt.UTC)
    end = start + dt.timedelta(microseconds=2)
    rows = [{"instrument_id": 1, "ts_recv_ns": us + k, "sequence": k + 1, "publisher_id": 1 + k % 2,
             "aggressor_side": ("buy", "sell", None)[k % 3], "price": Decimal(k % 4) / 4}
            for k in (-1, 0, 1, 999, 1000, 1999, 2000, 2001)]
    st.write("trades", _frame(TRADES, rows))
    st.write("trades", _frame(TRADES, [{**r, "dataset": "XNAS.ITCH"} for r in rows]))
    mbo = _mbo()
    st.write("mbo", mbo)

    def delete(table: str, **equals) -> int:
        with st.transaction() as txn:
            return txn.delete_days(table, dataset="GLBX.MDP3", symbols_or_instrument_ids=[1], start=start, end=end,
                                   equals=equals)

    assert delete("trades", publisher_id=2) == 3  # ns 1, 999, 1999 (of 0 .. 1999 in [start, end))
    assert delete("trades", aggressor_side="sell", price=Decimal("0.25")) == 0  # ns 1000 is sell at 0
    assert delete("trades", aggressor_side="sell", price=Decimal("0")) == 1
    assert delete("trades", price=Decimal("0.0000000001")) == 0  # finer than any stored price
    assert delete("trades", aggressor_side=None) == 0  # side = NULL: nothing, as in SQL
    left = sorted(st.select("trades", equals={"dataset": "GLBX.MDP3"})["ts_recv_ns"].to_list())
    assert delete("trades") == 1
    assert sorted(st.select("trades", equals={"dataset": "GLBX.MDP3"})["ts_recv_ns"].to_list()) == [
        us - 1, us + 2000, us + 2001]
    assert len(left) == 4
    assert st.select("trades", equals={"dataset": "XNAS.ITCH"}).height == len(rows)  # another dataset's rows
    start = dt.datetime(2024, 1, 2, tzinfo=dt.UTC)
    end = start + dt.timedelta(days=1)
    assert delete("mbo", action="C") == 1 and delete("mbo", side="sell", price=Decimal("-0.5")) == 1
    assert st.select("mbo")["order_id"].to_list() == [11]
    if backend == "timescale":
        assert_counts_true(st)
    close_all()


def test_a_recount_reads_the_hypertable_by_its_ns_column_one_chunk_per_day(timescale_schema_url):
    """Counts of a touched day are recounted from ``hdi_trades`` by ``ts_recv_ns`` (chunk exclusion)
    and instrument (the BRIN index), not through the view's computed time column."""
    from hdi.store import counts
    from hdi.store.timescale_lean import recount_sql

    st = open_store(timescale_schema_url)
    st.write("trades", _trades())  # 2024-01-02 and 2024-01-03: two chunks
    scope = counts.Scope("trades", "GLBX.MDP3", (1, 2), dt.date(2024, 1, 2), dt.date(2024, 1, 2))
    _, (sql, params) = recount_sql(scope)
    plan = "\n".join(st.query(f"EXPLAIN {sql.split(') ', 1)[1]}", params).to_series().to_list())
    assert plan.count("_hyper_") == 1 and "received_timestamp_utc" not in plan, plan
    with st.transaction() as txn:
        txn._touch("trades", "GLBX.MDP3", [1, 2], dt.date(2024, 1, 2), dt.date(2024, 1, 2))
    assert_counts_true(st)
    close_all()


def test_a_straight_copy_the_server_refuses_in_a_later_batch_leaves_nothing_written(timescale_schema_url):
    """Two batches of a chunk both take the straight-COPY path; when the server refuses the second,
    nothing of the transaction is committed (not the first batch, nor the ledger row or row_counts);
    batches the server takes are all stored and counted."""
    from hdi.errors import StoreError
    from hdi.store.ledger import ChunkRecord

    st = open_store(timescale_schema_url)
    st.migrate()
    # a refusal the server reports only from inside the COPY: a size above 1000 breaks this CHECK
    import adbc_driver_postgresql.dbapi as pg

    with pg.connect(timescale_schema_url, autocommit=True) as c, c.cursor() as cur:
        cur.execute("ALTER TABLE hdi_trades ADD CONSTRAINT small_size CHECK (size <= 1000)")
    day = 86_400 * 10**9
    first = _frame(TRADES, [{"instrument_id": 1, "ts_recv_ns": T0 + i, "size": 5} for i in range(3)])
    second = _frame(TRADES, [{"instrument_id": 1, "ts_recv_ns": T0 + day + i, "size": 5000} for i in range(3)])
    chunk = ChunkRecord(chunk_id="c1", run_id="r1", recipe="trades", recipe_hash="h", dataset="GLBX.MDP3",
                        schema="trades", stype_in="raw_symbol", symbols="ESH4",
                        start_ts=dt.datetime(2024, 1, 2, tzinfo=dt.UTC), end_ts=dt.datetime(2024, 1, 4, tzinfo=dt.UTC),
                        target_table="trades")
    with pytest.raises(StoreError, match=r"write failed, nothing was committed.*small_size"):
        with st.transaction(chunk=chunk) as txn:
            assert txn.write("trades", first).path == "append"
            txn.write("trades", second)  # refused by the server
    assert st.query("SELECT count(*) AS n FROM hdi_trades").item() == 0
    assert st.chunks().height == 0
    assert st.query("SELECT count(*) AS n FROM row_counts").item() == 0
    # the transaction's connection is gone cleanly; the store takes writes again, counted exactly
    with st.transaction(chunk=chunk) as txn:
        txn.write("trades", first)
        txn.write("trades", first.with_columns(pl.col("ts_recv_ns") + day))
    assert st.query("SELECT count(*) AS n FROM trades").item() == 6
    assert st.chunks().select("rows_loaded").item() == 6
    assert_counts_true(st)
    close_all()


def test_a_cancel_stops_a_write_waiting_to_register_its_source(timescale_schema_url):
    """A batch of a new source registers its code on the store's autocommit connection; when that
    waits (another writer is registering the same source and has not committed), the transaction's
    cancel (what SIGINT calls) stops it at once and nothing is written."""
    import threading
    import time

    import adbc_driver_postgresql.dbapi as pg

    from hdi.errors import StoreError

    st = open_store(timescale_schema_url)
    st.migrate()
    rows = _frame(TRADES, [{"instrument_id": 1, "dataset": "XNAS.ITCH", "publisher_id": 7}])
    other = pg.connect(timescale_schema_url)  # holds the same source uncommitted: the registration waits
    with other.cursor() as cur:
        cur.execute("INSERT INTO hdi_sources (dataset, data_source, publisher_id) VALUES ('XNAS.ITCH', 'databento', 7)")
    ended = threading.Lock()

    def end_other() -> None:  # once: by the safety timer (a cancel that never came) or the test's end
        if ended.acquire(blocking=False):
            other.rollback()
            other.close()

    safety = threading.Timer(8.0, end_other)
    safety.start()
    try:
        holder: dict = {}
        done = threading.Event()

        def cancel_until_done() -> None:  # a loaded machine may reach the registration late
            while not done.wait(0.1):
                holder["txn"].cancel()

        t = threading.Thread(target=cancel_until_done)
        start = time.monotonic()
        with pytest.raises(StoreError, match="canceling statement due to user request"):
            with st.transaction() as txn:
                holder["txn"] = txn
                t.start()
                txn.write("trades", rows)
        assert time.monotonic() - start < 8  # stopped by the cancel, not by the other writer ending
    finally:
        done.set()
        if t.is_alive():
            t.join(5)
        safety.cancel()
        end_other()
    assert st.query("SELECT count(*) AS n FROM hdi_trades").item() == 0
    assert st.write("trades", rows).inserted == 1  # the store takes writes again, and registers the source
    assert st.select("trades")["publisher_id"].to_list() == [7]
    close_all()
