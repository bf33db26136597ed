"""``row_counts`` (hdi/store/counts.py) equal the stored rows after every kind of write, on every
store: a fresh write, the same rows again, an overlap with rows already present, upserts, a
rolled-back transaction, a quarantine replay, a delete recounted through ``Transaction._touch``, and
a store an earlier hdi wrote (migration 7 builds them). The truth is a ``count(*)``, ``min`` and
``max`` per (table, dataset, instrument, granularity, UTC day) of the data tables themselves; and
``hdi.status`` built from the counts equals ``hdi.status`` built from that scan."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

import hdi
from hdi import _status_report as sr
from hdi.store import close_all, open_store
from hdi.store import counts as rc
from hdi.store.migrate import COUNTS_VERSION, MIGRATIONS_TABLE

DAY = 86_400 * 10**9
T0 = 1_704_153_600 * 10**9  # 2024-01-02T00:00Z


def _truth(store) -> pl.DataFrame:
    with store.session():
        return sr._scan_daily(store).sort("table", "dataset", "instrument_id", "granularity", "day", nulls_last=True)


def _counted(store) -> pl.DataFrame:
    return rc.daily(store).sort("table", "dataset", "instrument_id", "granularity", "day", nulls_last=True)


def assert_counts_true(store) -> pl.DataFrame:
    truth, counted = _truth(store), _counted(store)
    assert counted.to_dicts() == truth.to_dicts()
    return counted


def _trades(make_trades, ids, days, seqs, price=70_000_000_000) -> pl.DataFrame:
    return make_trades([{"instrument_id": i, "ts_recv_ns": T0 + d * DAY + s * 1_000_003, "sequence": s, "price": price}
                        for i in ids for d in days for s in seqs])


def test_fresh_write_counts_every_row_per_instrument_and_day(store, make_trades):
    store.write("trades", _trades(make_trades, [1, 2], [0, 1], range(5)))
    got = assert_counts_true(store)
    assert got.select("instrument_id", "day", "rows").rows() == [
        (1, dt.date(2024, 1, 2), 5), (1, dt.date(2024, 1, 3), 5), (2, dt.date(2024, 1, 2), 5), (2, dt.date(2024, 1, 3), 5)]
    assert got["first"][0] == dt.datetime(2024, 1, 2, tzinfo=dt.UTC)
    assert got["granularity"].null_count() == got.height  # trades have no granularity


def test_rewrites_and_overlaps_count_rows_already_present_once(store, make_trades):
    frame = _trades(make_trades, [1, 2], [0, 1], range(5))
    store.write("trades", frame)
    assert store.write("trades", frame).inserted == 0  # the same rows again: idempotent
    assert_counts_true(store)
    over = _trades(make_trades, [1, 3], [1, 2], range(3, 9))  # half of instrument 1's day 1 is stored
    r = store.write("trades", over)
    assert (r.inserted, r.already_present) == (22, 2)
    got = assert_counts_true(store)
    assert int(got["rows"].sum()) == 20 + 22 == store.query("SELECT count(*) AS n FROM trades").item()
    store.write("trades", over, on_conflict="update")  # every row replaced by itself: nothing new
    assert int(assert_counts_true(store)["rows"].sum()) == 42


def test_upserts_count_new_bars_only(store, make_bars):
    bars = make_bars([{"instrument_id": i, "bar_timestamp_utc": f"2024-01-0{d}", "granularity": g}
                      for i in (1, 2) for d in (2, 3, 4) for g in ("1d", "1h")])
    store.write("ohlcv", bars, on_conflict="update")
    later = make_bars([{"instrument_id": 1, "bar_timestamp_utc": f"2024-01-0{d}", "granularity": "1d",
                        "price": 71_000_000_000} for d in (4, 5)])
    store.write("ohlcv", later, on_conflict="update")  # one bar replaced, one new
    got = assert_counts_true(store)
    assert int(got["rows"].sum()) == 13
    assert set(got["granularity"]) == {"1d", "1h"}


def test_a_rolled_back_transaction_leaves_the_counts_unchanged(store, make_trades):
    store.write("trades", _trades(make_trades, [1], [0], range(3)))
    before = assert_counts_true(store)
    with pytest.raises(RuntimeError, match="boom"):
        with store.transaction() as txn:
            txn.write("trades", _trades(make_trades, [1, 2], [0, 1], range(10)))
            raise RuntimeError("boom")
    assert assert_counts_true(store).to_dicts() == before.to_dicts()


def test_several_writes_in_one_transaction_add_up(store, make_trades):
    with store.transaction() as txn:
        txn.write("trades", _trades(make_trades, [1], [0], range(4)))
        txn.write("trades", _trades(make_trades, [1], [0], range(2, 7)))  # overlaps the first batch
        txn.write("trades", _trades(make_trades, [1], [1], range(3)))
    assert assert_counts_true(store)["rows"].to_list() == [7, 3]


def test_delete_days_then_new_rows_are_recounted(store, make_trades):
    """``Transaction.delete_days`` (a restated day replaced) touches its days: recounted at commit."""
    store.write("trades", _trades(make_trades, [1, 2], [0, 1, 2], range(5)))
    day1 = dt.datetime(2024, 1, 3, tzinfo=dt.UTC)
    with store.transaction() as txn:
        assert txn.delete_days("trades", dataset="GLBX.MDP3", symbols_or_instrument_ids=[1], start=day1,
                               end=day1 + dt.timedelta(days=1)) == 5
        txn.write("trades", _trades(make_trades, [1], [1], range(10, 12)))
    got = assert_counts_true(store)
    assert got.filter(pl.col("instrument_id") == 1)["rows"].to_list() == [5, 2, 5]
    with store.transaction() as txn:  # a day deleted whole leaves no count behind
        txn.delete_days("trades", dataset="GLBX.MDP3", symbols_or_instrument_ids=[1, 2], start=day1,
                        end=day1 + dt.timedelta(days=1))
    got = assert_counts_true(store)
    assert got.filter(pl.col("instrument_id") == 1)["rows"].to_list() == [5, 5]
    assert int(got["rows"].sum()) == 20


def test_a_touched_scope_with_no_change_keeps_exact_counts(store, make_trades):
    store.write("trades", _trades(make_trades, [1, 2], [0, 1], range(5)))
    with store.transaction() as txn:
        txn._touch("trades", "GLBX.MDP3", None, dt.date(2024, 1, 1), dt.date(2024, 1, 5))
        txn.write("trades", _trades(make_trades, [2], [1, 2], range(3, 7)))
    assert int(assert_counts_true(store)["rows"].sum()) == 20 + 6


def test_status_from_the_counts_equals_status_from_a_scan(store, make_trades, make_bars, make_symbology,
                                                         monkeypatch):
    store.write("trades", _trades(make_trades, [1, 2], [0, 1], range(5)),
                symbology=make_symbology([("ESH4", 1, "2024-01-01", "2024-01-03"), ("ESM4", 2, "2024-01-01", "2024-02-01"),
                                          ("ES.c.0", 1, "2024-01-01", "2024-01-03"),
                                          ("ES.c.0", 2, "2024-01-03", "2024-02-01")]))
    store.write("ohlcv", make_bars([{"instrument_id": 9, "bar_timestamp_utc": "2024-01-05"}]))
    close_all()
    new = hdi.status(store.url).to_dict()
    monkeypatch.setattr(sr, "_daily", sr._scan_daily)
    assert hdi.status(store.url).to_dict() == new
    assert {r["symbol"]: r["rows"] for r in new["symbols"] if r["table"] == "trades"} == {
        "ES.c.0": 10, "ESH4": 5, "ESM4": 10, "1": 5}  # instrument 1 on 2024-01-03: no symbol maps it


def _as_before_migration_7(url: str) -> None:
    """The store as an hdi before migration 7 left it: no row_counts, version 7 not recorded."""
    close_all()
    if url.startswith("iceberg://"):
        import sqlite3

        from hdi.store.iceberg import parse_url

        con = sqlite3.connect(parse_url(url).ledger)
        con.execute("DROP TABLE row_counts")
        con.execute(f"DELETE FROM {MIGRATIONS_TABLE} WHERE version >= {COUNTS_VERSION}")
        con.commit()
        con.close()
    elif url.startswith("duckdb://"):
        import duckdb

        con = duckdb.connect(url.removeprefix("duckdb://"))
        con.execute("DROP TABLE row_counts")
        con.execute(f"DELETE FROM {MIGRATIONS_TABLE} WHERE version = {COUNTS_VERSION}")
        con.close()
    else:
        import adbc_driver_postgresql.dbapi as pg

        with pg.connect(url, autocommit=True) as c, c.cursor() as cur:
            cur.execute("DROP TABLE row_counts")
            cur.execute(f"DELETE FROM {MIGRATIONS_TABLE} WHERE version = {COUNTS_VERSION}")


def test_migration_7_counts_a_store_written_before_it(any_store_url, make_trades, make_bars):
    st = open_store(any_store_url)
    st.write("trades", _trades(make_trades, [1, 2], [0, 1, 5], range(4)))
    st.write("ohlcv", make_bars([{"instrument_id": 3, "bar_timestamp_utc": f"2024-02-0{d}", "granularity": g}
                                 for d in (1, 2) for g in ("1d", "1m")]))
    _as_before_migration_7(any_store_url)
    old = open_store(any_store_url)
    assert not old.has_table("row_counts")
    report = hdi.status(any_store_url)  # a status never migrates: it scans such a store, same answer
    assert report.tables.filter(pl.col("table") == "trades")["rows"].item() == 24
    close_all()
    again = open_store(any_store_url)
    again.migrate()
    got = assert_counts_true(again)
    assert int(got["rows"].sum()) == 24 + 4
    versions = again.query(f"SELECT version FROM {MIGRATIONS_TABLE}")["version"].to_list()
    assert COUNTS_VERSION in versions
    close_all()
    assert hdi.status(any_store_url).to_dict() == report.to_dict()  # from the counts now: the same report
    again = open_store(any_store_url)
    again.write("trades", _trades(make_trades, [2], [5, 6], range(2, 6)))  # and kept from there on
    assert int(assert_counts_true(again)["rows"].sum()) == 28 + 6


def test_quarantine_replay_counts_the_rows_it_loads(any_store_url, recipes_dir, tmp_path):
    from hdi.pipeline import ingest
    from hdi.testing.dbnfiles import Bar, write_daily_bars

    text = (recipes_dir / "ohlcv_1d.yaml").read_text().replace("max_failure_rate: 0.01", "max_failure_rate: 1.0")
    strict, loose = tmp_path / "strict.yaml", tmp_path / "loose.yaml"
    strict.write_text(text)
    loose.write_text(text.replace("max_failure_rate: 1.0", "max_failure_rate: 1.0\n  allow_non_positive_prices: true"))
    bars = [Bar("2024-03-04", "SPY", "500.25", "510", "495", "505.5"), Bar("2024-03-05", "SPY", "505", "506", "0", "501"),
            Bar("2024-03-06", "SPY", "0", "502", "0", "0"), Bar("2024-03-08", "SPY", "511", "512", "500", "510.125")]
    f = write_daily_bars(tmp_path / "spy.dbn", bars, ids={"SPY": 15144})
    run = ingest(strict, from_files=[f], store=any_store_url)
    assert (run.rows_loaded, run.rows_quarantined) == (2, 2)
    st = open_store(any_store_url)
    assert int(assert_counts_true(st)["rows"].sum()) == 2
    replay = hdi.quarantine_replay(run.run_id, store=any_store_url, recipe=loose)
    assert replay.loaded == 2
    assert int(assert_counts_true(st)["rows"].sum()) == 4
    assert hdi.quarantine_replay(run.run_id, store=any_store_url, recipe=loose).loaded == 0
    assert int(assert_counts_true(st)["rows"].sum()) == 4


def test_a_ledger_table_merged_again_has_no_row_counts(store, make_trades):
    """A re-fetched day merges its ``ingest_days`` row (on_conflict update): a ledger table, not counted."""
    store.write("trades", _trades(make_trades, [1], [0], range(3)))
    now = dt.datetime(2024, 1, 5, tzinfo=dt.UTC)
    for n in (3, 4):
        day = pl.DataFrame({"dataset": ["GLBX.MDP3"], "schema": ["trades"], "symbol": ["CL.c.0"],
                            "day": [dt.date(2024, 1, 2)], "rows_fetched": [n], "chunk_id": ["c1"], "updated_at": [now]})
        with store.transaction() as txn:
            txn.write("ingest_days", day, on_conflict="update")
    assert store.query("SELECT rows_fetched FROM ingest_days").item() == 4
    assert assert_counts_true(store)["rows"].to_list() == [3]


def _per_row_stats(frame: pl.DataFrame) -> pl.DataFrame:
    """The reference for ``frame_stats`` of trades: every row grouped by dataset, instrument and the
    UTC date of its timestamp."""
    from hdi._tables import TRADES

    t = pl.col(TRADES.time_column)
    return (frame.group_by("dataset", pl.col("instrument_id").cast(pl.Int64), t.dt.date().alias("day"))
            .agg(pl.len().cast(pl.Int64).alias("rows"), pl.col("ts_recv_ns").min().alias("first_ns"),
                 pl.col("ts_recv_ns").max().alias("last_ns"))
            .select(pl.lit("trades").alias("table_name"), "dataset", "instrument_id", pl.lit("").alias("granularity"),
                    "day", "rows", "first_ns", "last_ns"))


@pytest.mark.parametrize("datasets", [["GLBX.MDP3"], ["GLBX.MDP3", "XNAS.ITCH"]])
def test_frame_stats_from_the_ns_column_equal_the_per_row_utc_date(make_trades, datasets):
    """The tick tables' counts take the UTC day from the exact ``*_ns`` integer (floor division) and
    add a one-valued dataset after grouping: the same stats as grouping every row by the date of
    its timestamp, across midnight, before 1970 and with several datasets in one frame."""
    from hdi._tables import TRADES

    ns = [-DAY - 1, -1, 0, 1, DAY - 1, DAY, T0 - 1, T0, T0 + DAY - 1, T0 + DAY, T0 + 5 * DAY + 7]
    frame = make_trades([{"instrument_id": 1 + k % 3, "ts_recv_ns": t, "sequence": k, "dataset": datasets[k % len(datasets)]}
                         for k, t in enumerate(ns)])
    slow = _per_row_stats(frame)
    fast = rc.frame_stats(TRADES, frame)
    assert fast.schema == rc.empty().schema
    assert fast.sort(rc.KEY).to_dicts() == slow.sort(rc.KEY).to_dicts()
    assert fast.filter(pl.col("day") == dt.date(1969, 12, 31)).height >= 1


@pytest.mark.parametrize("ids", [[1, 2, 3], [0, 2**32 - 1, 2**40]], ids=["small ids", "wide ids"])
def test_frame_stats_packed_key_equals_the_per_row_utc_date(make_trades, ids):
    """One dataset, ids >= 0 and times from 1970 on: the counts group by one packed (id, day) key;
    the stats are the same as grouping every row by its instrument and the date of its timestamp."""
    from hdi._tables import TRADES

    ns = [0, 1, DAY - 1, DAY, T0 - 1, T0, T0 + 1, T0 + DAY - 1, T0 + DAY, T0 + 5 * DAY + 7, T0 + 5 * DAY + 8]
    frame = make_trades([{"instrument_id": ids[k % 3], "ts_recv_ns": t, "sequence": k} for k, t in enumerate(ns)])
    slow = _per_row_stats(frame)
    fast = rc.frame_stats(TRADES, frame)
    assert fast.schema == rc.empty().schema
    assert fast.sort(rc.KEY).to_dicts() == slow.sort(rc.KEY).to_dicts()
    assert sorted(fast["instrument_id"].unique().to_list()) == sorted(ids)
