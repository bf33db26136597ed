"""``Transaction.cancel()``: what SIGINT/SIGTERM call from another thread (hdi._interrupt) to stop the
statement a chunk's transaction is running. On both stores: the running write stops within a
fraction of a second, nothing of the transaction is committed, and the store takes writes again.
"""

from __future__ import annotations

import threading
import time

import polars as pl
import pytest

from hdi.errors import StoreError

N = 1_500_000  # rows: a write that runs long enough (0.3 s and more here) to be cancelled mid-statement


def _big_trades(make_trades) -> pl.DataFrame:
    one = make_trades([{"ts_recv_ns": "2024-12-02T00:00:00"}])
    frame = one[[0] * N]
    ns = pl.int_range(N, dtype=pl.Int64) * 1000 + one["ts_recv_ns"][0]
    return frame.with_columns(
        ns.alias("ts_recv_ns"), (ns - 10).alias("ts_event_ns"), pl.int_range(N, dtype=pl.Int64).alias("sequence"),
        ns.cast(pl.Datetime("ns")).dt.replace_time_zone("UTC").alias("received_timestamp_utc"),
        (ns - 10).cast(pl.Datetime("ns")).dt.replace_time_zone("UTC").alias("trade_timestamp_utc"),
    ).cast(frame.schema)


def _count(store) -> int:
    return int(store.query("SELECT count(*) AS n FROM trades").item())


def test_cancel_stops_the_running_write_and_nothing_is_committed(store, make_trades):
    frame = _big_trades(make_trades)
    store.migrate()
    current: dict = {}
    done = threading.Event()
    cancels: list[float] = []

    def cancel_until_done() -> None:  # cancels while the write is being prepared are no-ops
        while not done.wait(0.01):
            if "txn" in current:
                current["txn"].cancel()
                cancels.append(time.monotonic())

    t = threading.Thread(target=cancel_until_done)
    with pytest.raises(StoreError) as err:
        with store.transaction() as txn:
            current["txn"] = txn
            t.start()
            txn.write("trades", frame)
    stopped = time.monotonic()
    done.set()
    t.join(5)
    assert txn.cancelled
    message = str(err.value)
    assert "Interrupted" in message or "canceling statement due to user request" in message, message
    # the statement stopped, and the transaction rolled back, soon after a cancel (2 s: a loaded machine)
    assert cancels and stopped - max(c for c in cancels if c < stopped) < 2.0
    assert _count(store) == 0  # nothing of the cancelled transaction
    r = store.write("trades", frame.head(10))  # the store takes writes again
    assert r.inserted == 10 and _count(store) == 10


def test_cancel_with_no_statement_running_changes_nothing(store, make_trades):
    frame = make_trades([{"ts_recv_ns": "2024-12-02T00:00:00"}, {"ts_recv_ns": "2024-12-02T00:00:01"}])
    store.migrate()
    with store.transaction() as txn:
        txn.cancel()  # idle: nothing to stop, and the next statement is not affected
        time.sleep(0.2)
        txn.write("trades", frame)
    assert _count(store) == 2


@pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")  # a cancel that raised
def test_cancels_racing_the_rollback_leave_no_aborted_transaction(store, make_trades):
    """SIGINT twice: cancels keep arriving while the transaction rolls back and the file is released;
    the rollback completes every time (a cancel then has nothing to stop) and the store takes writes."""
    frame = make_trades([{"ts_recv_ns": "2024-12-02T00:00:00"}, {"ts_recv_ns": "2024-12-02T00:00:01"}])
    store.migrate()
    for _ in range(40):
        txn_box: dict = {}
        stop = threading.Event()

        def spam(stop: threading.Event, txn_box: dict) -> None:
            while not stop.is_set():
                if "txn" in txn_box:
                    txn_box["txn"].cancel()

        t = threading.Thread(target=spam, args=(stop, txn_box))
        t.start()
        try:
            with pytest.raises(KeyboardInterrupt):
                with store.transaction() as txn:
                    txn_box["txn"] = txn
                    raise KeyboardInterrupt  # what the signal handler's cancel leads to: a rollback
        finally:
            stop.set()
            t.join(5)
    assert _count(store) == 0
    assert store.write("trades", frame).inserted == 2 and _count(store) == 2
