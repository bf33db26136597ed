"""A store from before batch jobs (schema version 4) gets the batch-job ledger on its next use:
migration 5 adds ``batch_jobs`` and ``batch_files`` and keeps every stored row, on every store."""

from __future__ import annotations

import datetime as dt

from hdi.store import open_store
from hdi.store.ledger import BATCH_TABLES
from hdi.store.migrate import MIGRATIONS_TABLE
from hdi.store.schema import SCHEMA_VERSION
from tests.store.test_issue13_migration import _admin


def test_a_version_4_store_gets_the_batch_ledger_and_keeps_its_rows(any_store_url, make_bars):
    open_store(any_store_url).write("ohlcv", make_bars([{"instrument_id": 1, "bar_timestamp_utc": "2024-01-02"}]))
    # back to what hdi before batch jobs left: no batch tables, migrations 1 to 4 recorded
    # (lower case: in the lake, _admin sends it to the SQLite ledger, not to the Iceberg catalog)
    _admin(any_store_url, *[f'drop table "{t.name}"' for t in BATCH_TABLES],
           f"DELETE FROM {MIGRATIONS_TABLE} WHERE version = 5")
    again = open_store(any_store_url)
    assert not any(again.has_table(t.name) for t in BATCH_TABLES)
    again.migrate()
    assert all(again.has_table(t.name) for t in BATCH_TABLES)
    assert again.select("ohlcv").height == 1
    assert again.query(f"SELECT max(version) AS v FROM {MIGRATIONS_TABLE}").item() == SCHEMA_VERSION
    assert 5 in again.query(f"SELECT version FROM {MIGRATIONS_TABLE}")["version"].to_list()
    now = dt.datetime(2026, 1, 2, tzinfo=dt.UTC)
    row = {"intent_id": "i1", "job_key": "k", "job_id": None, "dataset": "GLBX.MDP3", "schema": "trades",
           "stype_in": "continuous", "symbols": "CL.c.0", "start_ts": now, "end_ts": now + dt.timedelta(days=1),
           "split_duration": "day", "state": "submitting", "cost_usd": None, "billable_bytes": None, "error": None,
           "submitted_at": now, "updated_at": now}
    again.record_row("batch_jobs", row)
    again.record_row("batch_jobs", {**row, "job_id": "GLBX-1", "state": "received"})  # an upsert by intent_id
    got = again.query('SELECT job_id, state FROM "batch_jobs"')
    assert got.rows() == [("GLBX-1", "received")]
