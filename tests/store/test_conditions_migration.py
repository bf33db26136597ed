"""Migration 6 (issue 15.2): a store written before restatements gets ``ingest_conditions`` on its next
use and keeps every stored row, on every store (the lake's ledger is SQLite beside its tables)."""

from __future__ import annotations

from hdi.store import open_store
from hdi.store.migrate import MIGRATIONS_TABLE
from hdi.store.schema import SCHEMA_VERSION
from tests.store.test_issue13_migration import _admin


def test_a_store_from_before_restatements_gets_ingest_conditions(any_store_url, make_bars):
    open_store(any_store_url).write("ohlcv", make_bars([{"instrument_id": 1, "bar_timestamp_utc": "2024-01-02"}]))
    lake = any_store_url.startswith("iceberg://")
    # back to what hdi before issue 15.2 left: no ingest_conditions, migration 6 not recorded
    # (lower case: in the lake, _admin sends it to the SQLite ledger, not to the Iceberg catalog)
    _admin(any_store_url, 'drop table "ingest_conditions"', f"DELETE FROM {MIGRATIONS_TABLE} WHERE version = 6")
    again = open_store(any_store_url)
    assert not again.has_table("ingest_conditions")
    again.migrate()
    assert again.has_table("ingest_conditions")
    assert again.query("SELECT count(*) AS n FROM ingest_conditions").item() == 0
    assert again.select("ohlcv").height == 1
    if not lake:
        assert again.query(f"SELECT max(version) AS v FROM {MIGRATIONS_TABLE}").item() == SCHEMA_VERSION
