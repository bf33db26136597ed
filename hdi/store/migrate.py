"""Versioned, idempotent migrations for both backends.

Each migration is a list of statements applied in one transaction and recorded in
``hdi_schema_migrations``; a store upgraded by a newer hdi applies only the versions it lacks.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from hdi._tables import DATA_TABLES, Table
from hdi.store.ledger import LEDGER_TABLES
from hdi.store.schema import ALL_TABLES, create_table_sql, ident, key_index_name

MIGRATIONS_TABLE = "hdi_schema_migrations"


def _v1(backend: str) -> list[str]:
    return _create(ALL_TABLES.values(), backend)


def _create(tables: Iterable[Table], backend: str) -> list[str]:
    """Each table with its hypertable and key index (TimescaleDB) or its unique index (small DuckDB tables)."""
    stmts: list[str] = []
    for table in tables:
        stmts.append(create_table_sql(table, backend))
        key = ", ".join(ident(k) for k in table.key)
        if backend == "timescale":
            if table.chunk_interval:
                stmts.append(
                    f"SELECT created FROM create_hypertable('{table.name}', by_range('{table.time_column}', "
                    f"INTERVAL '{table.chunk_interval}'), create_default_indexes => false, if_not_exists => true)"
                )
            stmts.append(f"CREATE UNIQUE INDEX IF NOT EXISTS {key_index_name(table)} ON {ident(table.name)} ({key})")
        elif table.name not in DATA_TABLES:
            # Small tables (symbology, ledger) get a real unique index in DuckDB too; the data tables
            # rely on the anti-join write path (see hdi/store/duckdb.py).
            stmts.append(f"CREATE UNIQUE INDEX IF NOT EXISTS {key_index_name(table)} ON {ident(table.name)} ({key})")
    return stmts


def _v2(backend: str) -> list[str]:
    """The replay ledger of ``hdi quarantine replay`` (a fresh store already has it from v1)."""
    from hdi.store.ledger import QUARANTINE_REPLAYS as t

    key = ", ".join(ident(k) for k in t.key)
    return [create_table_sql(t, backend),
            f"CREATE UNIQUE INDEX IF NOT EXISTS {key_index_name(t)} ON {ident(t.name)} ({key})"]


def _v3(backend: str) -> list[str]:
    """The roll schedules of continuous futures (``hdi rolls``; a fresh store already has it from v1)."""
    from hdi._tables import ROLLS as t

    key = ", ".join(ident(k) for k in t.key)
    return [create_table_sql(t, backend),
            f"CREATE UNIQUE INDEX IF NOT EXISTS {key_index_name(t)} ON {ident(t.name)} ({key})"]


def _v4(backend: str) -> list[str]:
    """Issue 13's tables: mbo, mbp10, bbo, cbbo, status, imbalance (a fresh store already has them from v1)."""
    from hdi._tables import ISSUE13_TABLES

    return _create(ISSUE13_TABLES, backend)


def _v5(backend: str) -> list[str]:
    """The batch-job ledger: batch_jobs and batch_files (hdi.source.batch; a fresh store has them from v1)."""
    from hdi.store.ledger import BATCH_TABLES

    return _create(BATCH_TABLES, backend)


def _v6(backend: str) -> list[str]:
    """Issue 15.2: ``ingest_conditions``, Databento's dataset condition of every fetched day as of the
    fetch (``--update`` / ``--restatements`` re-fetch restated, degraded and pending days). A fresh
    store already has it from v1."""
    from hdi.store.ledger import INGEST_CONDITIONS as t

    key = ", ".join(ident(k) for k in t.key)
    return [create_table_sql(t, backend),
            f"CREATE UNIQUE INDEX IF NOT EXISTS {key_index_name(t)} ON {ident(t.name)} ({key})"]


COUNTS_VERSION = 7  # the row_counts migration (issue 15.3); the lake store fills its counts at this version too


def _v7(backend: str) -> list[str]:
    """``row_counts`` (hdi/store/counts.py), filled once from every stored row in this migration's
    transaction: a store written by an earlier hdi gets exact counts. A fresh store has the (empty)
    table from v1 already; the fill then reads empty tables."""
    from hdi.store.counts import fill_sql
    from hdi.store.ledger import ROW_COUNTS

    return [*_create([ROW_COUNTS], backend), f"DELETE FROM {ident(ROW_COUNTS.name)}",
            *(fill_sql(t, backend) for t in DATA_TABLES.values())]


def _v8(backend: str) -> list[str]:
    """Lean tick tables in TimescaleDB (issue 17): each of trades, tbbo, mbp1, mbo, mbp10, bbo and cbbo
    becomes a view of its documented columns over a lean hypertable ``hdi_<name>``; stored rows are
    converted in place, exactly (see :mod:`hdi.store.timescale_lean`). DuckDB keeps its layout."""
    if backend != "timescale":
        return []
    from hdi._tables import DATA_TABLES
    from hdi.store.timescale_lean import LEAN_TABLES, convert_sql, sources_sql

    stmts = [sources_sql()]
    for name in LEAN_TABLES:
        stmts += convert_sql(DATA_TABLES[name])
    return stmts


_MIGRATIONS = {1: _v1, 2: _v2, 3: _v3, 4: _v4, 5: _v5, 6: _v6, COUNTS_VERSION: _v7, 8: _v8}


def migrations(backend: str) -> Iterator[tuple[int, list[str]]]:
    """(version, statements) in order."""
    for version in sorted(_MIGRATIONS):
        yield version, _MIGRATIONS[version](backend)


assert set(LEDGER_TABLES) <= set(ALL_TABLES)
