"""A store created before issue 13 (schema version 3: before issue 13, with the rolls table) gets the new tables on its next use: migration 4
adds mbo, mbp10, bbo, cbbo, status and imbalance (hypertables with their key index on TimescaleDB) and
keeps every stored row."""

from __future__ import annotations

import pytest

from hdi._tables import ISSUE13_TABLES
from hdi.store import close_all, open_store
from hdi.store.migrate import MIGRATIONS_TABLE


def _admin(url: str, *sql: str) -> None:
    """Statements on the store behind hdi's back (its DuckDB file is not held between calls)."""
    close_all()
    if url.startswith("iceberg://"):  # the lake: data tables in its catalog, migrations in its SQLite ledger
        import sqlite3

        from pyiceberg.catalog import load_catalog

        from hdi.store.iceberg import parse_url

        cfg = parse_url(url)
        catalog = load_catalog(cfg.catalog, **cfg.properties)
        con = sqlite3.connect(cfg.ledger)
        for s in sql:
            if s.startswith("DROP TABLE"):
                catalog.drop_table(f"{cfg.namespace}.{s.split()[2].strip(chr(34))}")
            else:
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


def test_a_version_3_store_gets_issue_13_tables_and_keeps_its_rows(any_store_url, make_bars):
    if not any_store_url.startswith(("duckdb://", "postgresql://", "postgres://")):
        pytest.skip("the lake store keeps no SQL migration table (hdi/store/migrate.py is for DuckDB and TimescaleDB)")
    open_store(any_store_url).write("ohlcv", make_bars([{"instrument_id": 1, "bar_timestamp_utc": "2024-01-02"}]))
    # back to what hdi before issue 13 left: no new tables, migrations 1 to 3 recorded
    if any_store_url.startswith("postgresql"):
        # and no lean tick tables (migration 8): trades, tbbo and mbp1 plain again, the others gone
        from hdi._tables import DATA_TABLES
        from hdi.store.migrate import _create
        from hdi.store.timescale_lean import LEAN_TABLES

        _admin(any_store_url, *[f'DROP VIEW "{n}"' for n in LEAN_TABLES],
               *[f'DROP TABLE "hdi_{n}"' for n in LEAN_TABLES], "DROP TABLE hdi_sources",
               *[f'DROP TABLE "{t.name}"' for t in ISSUE13_TABLES if t.name not in LEAN_TABLES],
               *_create([DATA_TABLES[n] for n in ("trades", "tbbo", "mbp1")], "timescale"),
               f"DELETE FROM {MIGRATIONS_TABLE} WHERE version IN (4, 8)")
    else:
        _admin(any_store_url, *[f'DROP TABLE "{t.name}"' for t in ISSUE13_TABLES],
               f"DELETE FROM {MIGRATIONS_TABLE} WHERE version = 4")
    again = open_store(any_store_url)
    assert not again.has_table("mbo")
    again.migrate()
    assert all(again.has_table(t.name) for t in ISSUE13_TABLES)
    assert again.query("SELECT count(*) AS n FROM ohlcv").item() == 1
    assert 4 in again.query(f"SELECT version FROM {MIGRATIONS_TABLE}")["version"].to_list()
    if any_store_url.startswith("postgresql"):
        names = set(again.query("SELECT hypertable_name FROM timescaledb_information.hypertables "
                                "WHERE hypertable_schema = current_schema()").get_column("hypertable_name"))
        assert {f"hdi_{t.name}" if t.name in LEAN_TABLES else t.name for t in ISSUE13_TABLES} <= names
