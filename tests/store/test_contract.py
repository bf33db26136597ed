"""One store contract, run against DuckDB and TimescaleDB (the backend is in the test id)."""

from __future__ import annotations

import datetime as dt
import threading
from decimal import Decimal

import polars as pl
import pytest

from hdi.errors import StoreError
from hdi.store.ledger import ChunkRecord, RunRecord

UTC = dt.UTC
D = Decimal


def _count(store, table: str) -> int:
    return store.select(table).height


def test_write_then_read_returns_exact_rows(store, make_bars):
    frame = make_bars([
        {"instrument_id": 1, "bar_timestamp_utc": "2024-01-02", "open_price": 70_010_000_000,
         "high_price": 71_000_000_000, "low_price": 69_500_000_000, "close_price": 70_500_000_000, "volume": 1234},
        {"instrument_id": 2, "bar_timestamp_utc": "2024-01-02", "price": 5_000_250_000_000},
    ])
    result = store.write("ohlcv", frame)
    assert (result.rows, result.inserted, result.already_present) == (2, 2, 0)
    back = store.select("ohlcv")
    assert back.height == 2
    row = back.filter(pl.col("instrument_id") == 1).row(0, named=True)
    assert row["open_price"] == D("70.010000000")
    assert row["high_price"] == D("71.000000000")
    assert row["low_price"] == D("69.500000000")
    assert row["close_price"] == D("70.500000000")
    assert row["volume"] == 1234
    assert row["bar_timestamp_utc"] == dt.datetime(2024, 1, 2, tzinfo=UTC)
    assert row["trade_count"] is None and row["vwap"] is None
    assert back.schema["open_price"] == pl.Decimal(19, 9)
    assert back.schema["bar_timestamp_utc"] == pl.Datetime("ns", "UTC")


def test_rewriting_the_same_rows_adds_nothing(store, make_bars):
    frame = make_bars([{"instrument_id": i, "bar_timestamp_utc": f"2024-01-{d:02d}"}
                       for i in (1, 2, 3) for d in range(2, 12)])
    first = store.write("ohlcv", frame)
    second = store.write("ohlcv", frame)
    assert (first.inserted, first.path) == (30, "append")
    assert (second.inserted, second.already_present, second.path) == (0, 30, "merge")
    assert _count(store, "ohlcv") == 30


def test_partly_overlapping_write_adds_only_new_rows(store, make_bars):
    store.write("ohlcv", make_bars([{"instrument_id": 1, "bar_timestamp_utc": f"2024-01-{d:02d}"}
                                    for d in range(2, 7)]))
    result = store.write("ohlcv", make_bars([{"instrument_id": 1, "bar_timestamp_utc": f"2024-01-{d:02d}"}
                                             for d in range(5, 10)]))
    assert (result.inserted, result.already_present) == (3, 2)
    assert _count(store, "ohlcv") == 8


def test_on_conflict_update_replaces_values_ignore_keeps_them(store, make_bars):
    store.write("ohlcv", make_bars([{"instrument_id": 1, "bar_timestamp_utc": "2024-01-02", "volume": 10}]))
    store.write("ohlcv", make_bars([{"instrument_id": 1, "bar_timestamp_utc": "2024-01-02", "volume": 20}]))
    assert store.select("ohlcv")["volume"].to_list() == [10]
    store.write("ohlcv", make_bars([{"instrument_id": 1, "bar_timestamp_utc": "2024-01-02", "volume": 30}]),
                on_conflict="update")
    assert store.select("ohlcv")["volume"].to_list() == [30]


def test_granularities_share_the_table_without_colliding(store, make_bars):
    rows = [{"instrument_id": 1, "bar_timestamp_utc": "2024-01-02"}]
    store.write("ohlcv", make_bars(rows))
    result = store.write("ohlcv", make_bars([{**rows[0], "granularity": "1h"}]))
    assert result.inserted == 1
    assert store.select("ohlcv", equals={"granularity": "1h"}).height == 1


@pytest.mark.parametrize("fixed,expected", [
    (1, "0.000000001"),
    (5_000_000_000_000_000_001, "5000000000.000000001"),
    (3_702_750_000_000, "3702.750000000"),
    (9_223_372_036_854_775_806, "9223372036.854775806"),
])
def test_decimal_prices_round_trip_exactly(store, make_bars, fixed, expected):
    store.write("ohlcv", make_bars([{"instrument_id": 1, "bar_timestamp_utc": "2024-01-02", "price": fixed}]))
    row = store.select("ohlcv").row(0, named=True)
    assert [row[c] for c in ("open_price", "high_price", "low_price", "close_price")] == [D(expected)] * 4
    assert format(row["open_price"], "f") == expected


def test_volume_at_int64_max_round_trips(store, make_bars):
    store.write("ohlcv", make_bars([{"instrument_id": 1, "bar_timestamp_utc": "2024-01-02",
                                     "volume": 2**63 - 1}]))
    assert store.select("ohlcv")["volume"].to_list() == [2**63 - 1]


@pytest.mark.parametrize("volume", [2**63, 2**64 - 1])
def test_uint64_volume_beyond_int64_is_refused_not_wrapped(store, make_bars, volume):
    # ADBC would silently wrap these to negative numbers; the store refuses the whole frame.
    frame = make_bars([{"instrument_id": 1, "bar_timestamp_utc": "2024-01-02", "volume": 5},
                       {"instrument_id": 1, "bar_timestamp_utc": "2024-01-03", "volume": volume}])
    with pytest.raises(StoreError, match=f"column 'volume' value {volume} \\(UInt64\\) does not fit Int64$"):
        store.write("ohlcv", frame)
    assert _count(store, "ohlcv") == 0


def test_narrower_and_categorical_columns_are_conformed(store, make_bars):
    frame = make_bars([{"instrument_id": 7, "bar_timestamp_utc": "2024-01-02"}]).with_columns(
        pl.col("instrument_id").cast(pl.UInt32), pl.col("dataset").cast(pl.Categorical),
        pl.col("granularity").cast(pl.Enum(["1d", "1h"])),
    )
    assert store.write("ohlcv", frame).inserted == 1
    row = store.select("ohlcv").row(0, named=True)
    assert (row["instrument_id"], row["dataset"], row["granularity"]) == (7, "GLBX.MDP3", "1d")


def test_missing_column_is_a_clear_error(store, make_bars):
    frame = make_bars([{"instrument_id": 1, "bar_timestamp_utc": "2024-01-02"}]).drop("volume")
    with pytest.raises(StoreError, match="frame for table 'ohlcv' lacks column\\(s\\) volume"):
        store.write("ohlcv", frame)


def test_nanoseconds_round_trip_for_ticks(store, make_trades):
    ns = 1_704_201_000_123_456_789  # 2024-01-02 13:10:00.123456789
    frame = make_trades([{"ts_recv_ns": ns, "ts_event_ns": ns - 999, "sequence": 1},
                         {"ts_recv_ns": ns + 1, "ts_event_ns": ns - 998, "sequence": 2}])
    store.write("trades", frame)
    back = store.select("trades")
    assert back["ts_recv_ns"].to_list() == [ns, ns + 1]
    assert back["received_timestamp_utc"].cast(pl.Int64).to_list() == [ns, ns + 1]
    assert back["trade_timestamp_utc"].cast(pl.Int64).to_list() == [ns - 999, ns - 998]


def test_two_distinct_trades_in_the_same_nanosecond_are_both_kept_and_rerun_adds_none(store, make_trades):
    ns = 1_704_201_000_000_000_001
    # Same instrument, same ts_recv and sequence (one venue packet): told apart by rec_ordinal.
    frame = make_trades([{"ts_recv_ns": ns, "sequence": 9, "rec_ordinal": 0, "size": 1},
                         {"ts_recv_ns": ns, "sequence": 9, "rec_ordinal": 1, "size": 1}])
    assert store.write("trades", frame).inserted == 2
    assert store.write("trades", frame).inserted == 0
    assert _count(store, "trades") == 2


def test_date_range_edges_start_inclusive_end_exclusive(store, make_bars):
    store.write("ohlcv", make_bars([{"instrument_id": 1, "bar_timestamp_utc": f"2024-01-{d:02d}"}
                                    for d in range(1, 11)]))
    got = store.select("ohlcv", start=dt.datetime(2024, 1, 3, tzinfo=UTC), end=dt.datetime(2024, 1, 6, tzinfo=UTC))
    assert got["bar_timestamp_utc"].dt.day().to_list() == [3, 4, 5]


def _day(d: int | None) -> dt.datetime | None:
    return None if d is None else dt.datetime(2024, 1, d, tzinfo=UTC)


@pytest.mark.parametrize(("start", "end", "windows", "days"), [
    (3, 9, [(5, 7)], {1: [5, 6]}),  # the window inside the range
    (5, 7, [(2, 12)], {1: [5, 6]}),  # the range inside the window
    (2, 6, [(4, 9)], {1: [4, 5]}),  # overlapping at the start
    (6, 11, [(4, 9)], {1: [6, 7, 8]}),  # overlapping at the end
    (2, 5, [(6, 9)], {}),  # disjoint: nothing
    (3, 6, [(None, None)], {1: [3, 4, 5]}),  # an instrument id: no window of its own
    (3, 9, [(2, 5), (5, 8)], {1: [3, 4], 2: [5, 6, 7]}),  # a roll: two instruments, two windows
    (None, None, [(4, 6)], {1: [4, 5]}),  # no range: the window alone
])
def test_select_returns_the_rows_in_both_the_range_and_a_window(store, make_bars, start, end, windows, days):
    store.write("ohlcv", make_bars([{"instrument_id": i, "bar_timestamp_utc": f"2024-01-{d:02d}"}
                                    for i in (1, 2, 3) for d in range(1, 11)]))
    sel = pl.DataFrame({"dataset": ["GLBX.MDP3"] * len(windows), "instrument_id": [1, 2][:len(windows)],
                        "from_ts": [_day(lo) for lo, _ in windows], "to_ts": [_day(hi) for _, hi in windows]},
                       schema={"dataset": pl.String, "instrument_id": pl.Int64, "from_ts": pl.Datetime("ns", "UTC"),
                               "to_ts": pl.Datetime("ns", "UTC")})
    got = store.select("ohlcv", start=_day(start), end=_day(end), selections=sel)
    assert {i: [t.day for t in g["bar_timestamp_utc"].to_list()]
            for (i,), g in got.group_by("instrument_id", maintain_order=True)} == days


def test_empty_results_are_typed_empty_frames(store, make_bars):
    assert store.select("ohlcv").height == 0  # nothing written at all yet
    store.write("ohlcv", make_bars([{"instrument_id": 1, "bar_timestamp_utc": "2024-01-02"}]))
    got = store.select("ohlcv", start=dt.datetime(2030, 1, 1, tzinfo=UTC), end=dt.datetime(2030, 2, 1, tzinfo=UTC))
    assert got.height == 0
    assert got.schema["open_price"] == pl.Decimal(19, 9)
    assert got.schema["bar_timestamp_utc"] == pl.Datetime("ns", "UTC")


def test_data_symbology_and_ledger_commit_together(store, make_bars, make_symbology):
    chunk = ChunkRecord(chunk_id="c1", run_id="r1", recipe="ohlcv_1d", recipe_hash="h", dataset="GLBX.MDP3",
                        schema="ohlcv-1d", stype_in="continuous", symbols="CL.c.0",
                        start_ts=dt.datetime(2024, 1, 1, tzinfo=UTC), end_ts=dt.datetime(2024, 2, 1, tzinfo=UTC),
                        target_table="ohlcv", rows_fetched=2)
    frame = make_bars([{"instrument_id": 1, "bar_timestamp_utc": "2024-01-02"},
                       {"instrument_id": 1, "bar_timestamp_utc": "2024-01-03"}])
    sym = make_symbology([("CL.c.0", 1, "2024-01-01", "2024-02-01")])
    store.write("ohlcv", frame, symbology=sym, chunk=chunk)
    ledger = store.chunks()
    assert ledger.select("chunk_id", "status", "rows_loaded", "rows_already_present").rows() == [("c1", "done", 2, 0)]
    assert store.symbology(["CL.c.0"]).height == 1
    # the same again: the ledger row is replaced, symbology kept once
    store.write("ohlcv", frame, symbology=sym, chunk=chunk)
    ledger = store.chunks()
    assert ledger.select("chunk_id", "rows_loaded", "rows_already_present").rows() == [("c1", 0, 2)]
    assert store.symbology(["CL.c.0"]).height == 1


def test_a_refused_write_leaves_no_ledger_row_and_no_symbology(store, make_bars, make_symbology):
    chunk = ChunkRecord(chunk_id="c2", run_id="r1", recipe="x", recipe_hash="h", dataset="GLBX.MDP3",
                        schema="ohlcv-1d", stype_in="continuous", symbols="CL.c.0",
                        start_ts=dt.datetime(2024, 1, 1, tzinfo=UTC), end_ts=dt.datetime(2024, 2, 1, tzinfo=UTC),
                        target_table="ohlcv")
    frame = make_bars([{"instrument_id": 1, "bar_timestamp_utc": "2024-01-02", "volume": 2**64 - 1}])
    with pytest.raises(StoreError):
        store.write("ohlcv", frame, symbology=make_symbology([("CL.c.0", 1, "2024-01-01", "2024-02-01")]),
                    chunk=chunk)
    assert store.chunks().height == 0
    assert store.symbology().height == 0


def test_failed_chunk_and_run_records_upsert(store):
    start = dt.datetime(2024, 1, 1, tzinfo=UTC)
    chunk = ChunkRecord(chunk_id="c3", run_id="r1", recipe="x", recipe_hash="h", dataset="GLBX.MDP3",
                        schema="trades", stype_in="raw_symbol", symbols="ESH4", start_ts=start,
                        end_ts=start + dt.timedelta(days=1), target_table="trades", status="failed",
                        error="HTTP 503")
    store.record_chunk(chunk)
    chunk.status, chunk.error, chunk.attempts = "done", None, 2
    store.record_chunk(chunk)
    assert store.chunks().select("status", "error", "attempts").rows() == [("done", None, 2)]
    run = RunRecord(run_id="r1", recipe="x", recipe_hash="h", command="hdi ingest")
    store.save_run(run)
    run.status = "succeeded"
    store.save_run(run)
    assert store.runs().select("run_id", "status").rows() == [("r1", "succeeded")]


def test_concurrent_writers_of_the_same_rows_store_each_row_once(store, make_bars):
    frame = make_bars([{"instrument_id": i, "bar_timestamp_utc": f"2024-02-{d:02d}"}
                       for i in range(1, 6) for d in range(1, 21)])
    errors: list[BaseException] = []

    def write() -> None:
        try:
            store.write("ohlcv", frame)
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=write) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert _count(store, "ohlcv") == 100


def test_migrations_are_idempotent(store, make_bars):
    store.write("ohlcv", make_bars([{"instrument_id": 1, "bar_timestamp_utc": "2024-01-02"}]))
    store._migrated = False
    store.migrate()
    assert _count(store, "ohlcv") == 1


def test_a_transaction_streams_batches_and_commits_them_with_the_ledger_row(store, make_bars):
    chunk = ChunkRecord(chunk_id="c4", run_id="r1", recipe="x", recipe_hash="h", dataset="GLBX.MDP3",
                        schema="ohlcv-1m", stype_in="raw_symbol", symbols="ESH4",
                        start_ts=dt.datetime(2024, 1, 1, tzinfo=UTC), end_ts=dt.datetime(2024, 1, 3, tzinfo=UTC),
                        target_table="ohlcv")
    with store.transaction(chunk=chunk) as txn:
        txn.write("ohlcv", make_bars([{"instrument_id": 1, "bar_timestamp_utc": "2024-01-01"}]))
        txn.write("ohlcv", make_bars([{"instrument_id": 1, "bar_timestamp_utc": "2024-01-02"}]))
        txn.write("ohlcv", make_bars([{"instrument_id": 1, "bar_timestamp_utc": "2024-01-02"}]))
    assert _count(store, "ohlcv") == 2
    assert store.chunks().select("rows_loaded", "rows_already_present").rows() == [(2, 1)]


def test_an_error_mid_transaction_commits_nothing(store, make_bars):
    chunk = ChunkRecord(chunk_id="c5", run_id="r1", recipe="x", recipe_hash="h", dataset="GLBX.MDP3",
                        schema="ohlcv-1m", stype_in="raw_symbol", symbols="ESH4",
                        start_ts=dt.datetime(2024, 1, 1, tzinfo=UTC), end_ts=dt.datetime(2024, 1, 3, tzinfo=UTC),
                        target_table="ohlcv")
    with pytest.raises(RuntimeError, match="decoder died"):
        with store.transaction(chunk=chunk) as txn:
            txn.write("ohlcv", make_bars([{"instrument_id": 1, "bar_timestamp_utc": "2024-01-01"}]))
            raise RuntimeError("decoder died")
    assert _count(store, "ohlcv") == 0
    assert store.chunks().height == 0
    # the store is still usable afterwards
    assert store.write("ohlcv", make_bars([{"instrument_id": 1, "bar_timestamp_utc": "2024-01-01"}])).inserted == 1
