"""Migration 6 (issue 15.2): a store written before restatements gets ``ingest_conditions`` on its next
use and keeps every stored row, on every store (the lake's ledger is SQLite beside its tables)."""

from __future__ import annotations

from hdi.store import close_all, open_store
from hdi.store.migrate import MIGRATIONS_TABLE
from hdi.store.schema import SCHEMA_VERSION


def _admin(url: str, *sql: str) -> None:
    """Statements on the store behind hdi's back (the lake: on its SQLite ledger)."""
    close_all()
    if url.startswith("iceberg://"):
        import sqlite3

        from hdi.store.iceberg import parse_url

        con = sqlite3.connect(parse_url(url).ledger)
        for s in sql:
            con.execute(s)
        con.commit()
        con.close()
    elif url.startswith("duckdb://"):
        import duckdb

        con = duckdb.connect(url.removeprefix("duckdb://"))
        for s in sql:
            con.execute(s)
        con.close()
    else:
        import adbc_driver_postgresql.dbapi as pg

        with pg.connect(url, autocommit=True) as c, c.cursor() as cur:
            for s in sql:
                cur.execute(s)


def test_a_store_from_before_restatements_gets_ingest_conditions(any_store_url, make_bars):
    open_store(any_store_url).write("ohlcv", make_bars([{"instrument_id": 1, "bar_timestamp_utc": "2024-01-02"}]))
    lake = any_store_url.startswith("iceberg://")
    # back to what hdi before issue 15.2 left: no ingest_conditions, migration 6 not recorded
    _admin(any_store_url, 'DROP TABLE "ingest_conditions"', f"DELETE FROM {MIGRATIONS_TABLE} WHERE version = 6")
    again = open_store(any_store_url)
    assert not again.has_table("ingest_conditions")
    again.migrate()
    assert again.has_table("ingest_conditions")
    assert again.query("SELECT count(*) AS n FROM ingest_conditions").item() == 0
    assert again.select("ohlcv").height == 1
    if not lake:
        assert again.query(f"SELECT max(version) AS v FROM {MIGRATIONS_TABLE}").item() == SCHEMA_VERSION
