"""The lake store: Apache Iceberg tables through pyiceberg (the only module that imports it).

``iceberg:///abs/path`` is zero setup: a SQL catalog in SQLite (``<path>/catalog.db``), the
warehouse folder ``<path>/warehouse`` and the ledger ``<path>/ledger.sqlite``. Any other pyiceberg
catalog (REST, Glue, Hive, SQL on PostgreSQL) with an S3-compatible or local warehouse is chosen
by the URL's query: ``iceberg:///abs/path?catalog=prod`` loads pyiceberg's catalog ``prod`` (its
properties from ``~/.pyiceberg.yaml`` or ``PYICEBERG_CATALOG__PROD__*`` variables, plus any other
query parameter, e.g. ``&type=rest&uri=https://...``); the path then holds only the ledger.
``namespace=`` picks the Iceberg namespace (default ``hdi``). See docs/lake.md.

Layout:

- The data tables (ohlcv, trades, tbbo, mbp1, statistics, instruments) are Iceberg v2 tables,
  partitioned by day of their time column (tick tables) or by month (bars, statistics,
  definitions: a day holds one bar per instrument), sorted by instrument and time, Parquet zstd.
  Types: prices ``decimal(19,9)`` (exact; Spark/Trino read them as DECIMAL), timestamps
  ``timestamptz`` (µs: pyiceberg 0.12 cannot write v3 ``timestamptz_ns``) beside the exact
  ``*_ns`` int64 columns the tick tables already carry; reads rebuild ``Datetime("ns", "UTC")``.
- The ledger (ingest_chunks, ingest_runs, ingest_days, quarantine_replays), the symbology and
  ``hdi_lake_commits`` (which Iceberg snapshot each chunk committed) live in one SQLite file.

Exactly once: a transaction writes each data batch's Parquet files as it comes (memory stays
bounded by the batch), deciding against the table's snapshot when the transaction first touched
it: an append when no stored row falls in the batch's key range, else only the absent rows
(``ignore``) or a rewrite of exactly that range (``update``: delete by filter + append, one
commit). ``commit`` makes one Iceberg commit per table, whose snapshot summary carries
``hdi.txn`` and ``hdi.chunk-id``, then one SQLite transaction with the ledger row and the snapshot
ids. Should another writer have committed meanwhile (Iceberg commits are optimistic), the
ranges are checked again on the new snapshot: unchanged, the same files are committed on top of
it; changed, the write fails as a :class:`~hdi.errors.ConcurrentWriteError` and is redone. A
crash between the Iceberg commit and the ledger leaves rows without a ``done`` ledger row: the
re-run finds them present (no duplicate) and, from the snapshot whose summary names the chunk,
counts them as loaded by the chunk.

Reads: :meth:`select` scans with a pyiceberg row filter (time range, instruments, equalities:
partition pruning and Parquet statistics), then hdi's SQL runs on the scanned rows in an
in-memory DuckDB; other queries (status) read the current data files through a pyarrow dataset
(DuckDB pushes projections into it).
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import os
import re
import sqlite3
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote, urlsplit

import polars as pl

from hdi._tables import DATA_TABLES, ROLLS, SYMBOLOGY, ColType, Table
from hdi.errors import ConcurrentWriteError, StoreError
from hdi.store import counts
from hdi.store.base import Store, Transaction, WriteResult
from hdi.store.check import column_problem, damaged, version_problem
from hdi.store.frames import time_bounds
from hdi.store.ledger import LEDGER_TABLES, ROW_COUNTS, ChunkRecord, RunRecord
from hdi.store.migrate import COUNTS_VERSION, MIGRATIONS_TABLE
from hdi.store.schema import ALL_TABLES, SCHEMA_VERSION, conform

if TYPE_CHECKING:
    from pyiceberg.expressions import BooleanExpression

log = logging.getLogger(__name__)

# Tables kept in the SQLite ledger beside the lake (small, keyed, written with every chunk; the roll
# schedules of `hdi rolls` are small and keyed too).
SQL_TABLES: dict[str, Table] = {**LEDGER_TABLES, SYMBOLOGY.name: SYMBOLOGY, ROLLS.name: ROLLS}
LAKE_TABLES: dict[str, Table] = dict(DATA_TABLES)
COMMITS_TABLE = "hdi_lake_commits"
WRITE_SLICE = 250_000  # rows per Parquet write call: a cancel is noticed between slices
COMMIT_ATTEMPTS = 20
_SQLITE_TYPES = {ColType.TEXT: "TEXT", ColType.F64: "REAL"}  # everything else is an INTEGER

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_EPOCH_DAY = dt.date(1970, 1, 1)


# --------------------------------------------------------------------------- configuration
@dataclass(frozen=True)
class LakeConfig:
    root: Path  # folder of the ledger (and, for the zero-setup catalog, of catalog and warehouse)
    catalog: str  # pyiceberg catalog name
    properties: dict[str, str]  # pyiceberg catalog properties
    namespace: str
    ledger: Path


def parse_url(url: str) -> LakeConfig:
    """``iceberg:///abs/path[?catalog=NAME&namespace=NS&ledger=/file.sqlite&<catalog property>=...]``."""
    parts = urlsplit(url)
    path = unquote(parts.path)
    if parts.netloc:
        raise StoreError(f"store URL '{url}' has a host ('{parts.netloc}'); an Iceberg store URL is "
                         "iceberg:///absolute/folder (three slashes), with ?catalog=NAME for another catalog")
    if not path.startswith("/") or path == "/":
        raise StoreError(f"store URL '{url}' names no absolute folder; use iceberg:///absolute/folder")
    root = Path(path)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    namespace = query.pop("namespace", "hdi")
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,63}", namespace):
        raise StoreError(f"store URL namespace '{namespace}' is not allowed; use letters, digits and _")
    ledger = Path(query.pop("ledger", str(root / "ledger.sqlite")))
    name = query.pop("catalog", "")
    if not name:
        if query:
            raise StoreError(f"store URL '{url}' gives catalog properties ({', '.join(sorted(query))}) but no "
                             "catalog=NAME; the zero-setup store takes none")
        props = {"type": "sql", "uri": f"sqlite:///{root / 'catalog.db'}",
                 "warehouse": (root / "warehouse").as_uri()}
        return LakeConfig(root, "hdi", props, namespace, ledger)
    return LakeConfig(root, name, query, namespace, ledger)


# --------------------------------------------------------------------------- schema mapping
def _iceberg_type(ct: ColType) -> Any:
    from pyiceberg import types as it

    return {ColType.TEXT: it.StringType(), ColType.I16: it.IntegerType(), ColType.I32: it.IntegerType(),
            ColType.I64: it.LongType(), ColType.PRICE: it.DecimalType(19, 9), ColType.STAT: it.DecimalType(28, 9),
            ColType.TS: it.TimestamptzType(), ColType.DATE: it.DateType(), ColType.F64: it.DoubleType()}[ct]


# How each logical type reads back from a lake table, as pyiceberg names it (the check compares).
_ICEBERG_NAMES = {ColType.TEXT: "string", ColType.I16: "int", ColType.I32: "int", ColType.I64: "long",
                  ColType.PRICE: "decimal(19, 9)", ColType.STAT: "decimal(28, 9)", ColType.TS: "timestamptz",
                  ColType.DATE: "date", ColType.F64: "double"}


def iceberg_schema(table: Table) -> Any:
    from pyiceberg.schema import Schema
    from pyiceberg.types import NestedField

    return Schema(*(NestedField(i + 1, c.name, _iceberg_type(c.type), required=not c.nullable, doc=c.doc or None)
                    for i, c in enumerate(table.columns)))


def _partition_spec(table: Table, schema: Any) -> Any:
    from pyiceberg.partitioning import PartitionField, PartitionSpec
    from pyiceberg.transforms import DayTransform, MonthTransform

    source = schema.find_field(table.time_column).field_id
    by_day = table.chunk_interval == "1 day"  # tick tables (trades, tbbo, mbp1, mbo, mbp10): else by month
    return PartitionSpec(PartitionField(source_id=source, field_id=1000,
                                        transform=DayTransform() if by_day else MonthTransform(),
                                        name=f"{table.time_column}_{'day' if by_day else 'month'}"))


def _sort_order(table: Table, schema: Any) -> Any:
    from pyiceberg.table.sorting import SortField, SortOrder

    return SortOrder(SortField(source_id=schema.find_field("instrument_id").field_id),
                     SortField(source_id=schema.find_field(table.time_column).field_id))


TABLE_PROPERTIES = {
    "format-version": "2",
    "write.parquet.compression-codec": "zstd",
    # a dictionary falls back to plain pages after 64 KiB: timestamps, ns and sequence numbers are
    # nearly unique, and pyarrow's 2 MiB default dictionaries them first (38.7 -> 27.8 bytes a trade)
    "write.parquet.dict-size-bytes": "65536",
    # hdi retries a commit itself, after checking its key ranges again on the new snapshot:
    # pyiceberg's own retry would append on top of any concurrent commit unchecked.
    "commit.retry.num-retries": "0",
}


def to_lake(frame: pl.DataFrame, table: Table) -> pl.DataFrame:
    """A validated frame in the lake's column types (µs timestamps, int32 for int16), sorted by
    instrument and time (the tables' sort order)."""
    out = conform(frame, table, backend="timescale")  # timestamps as µs, integers cast strictly
    order = [c for c in ("instrument_id", table.time_column, "ts_recv_ns", "rec_ordinal") if c in table.names]
    return out.cast({c.name: pl.Int32 for c in table.columns if c.type is ColType.I16}).sort(order)


# --------------------------------------------------------------------------- SQLite ledger
def _sql_ident(name: str) -> str:
    if name not in SQL_TABLES and name not in (COMMITS_TABLE, MIGRATIONS_TABLE) and \
            not any(name in t.names for t in SQL_TABLES.values()):
        raise StoreError(f"refusing SQL identifier '{name}': not a known table or column")
    return '"' + name + '"'


def _to_sql_value(value: Any, ct: ColType) -> Any:
    if value is None:
        return None
    if ct is ColType.TS:
        if isinstance(value, dt.datetime):
            v = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
            delta = v - _EPOCH
            return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000
        return int(value)
    if ct is ColType.DATE:
        return (value - _EPOCH_DAY).days if isinstance(value, dt.date) else int(value)
    if ct in (ColType.PRICE, ColType.STAT):
        return str(value)
    return value


def _sql_frame(rows: list[tuple[Any, ...]], table: Table, columns: Sequence[str]) -> pl.DataFrame:
    """SQLite rows -> a frame with the table's Polars types."""
    raw_types = {ColType.TEXT: pl.String, ColType.F64: pl.Float64, ColType.PRICE: pl.String, ColType.STAT: pl.String}
    schema = {c: raw_types.get(table.column(c).type, pl.Int64) for c in columns}
    frame = pl.DataFrame(rows, schema=schema, orient="row")
    exprs = []
    for c in columns:
        ct = table.column(c).type
        if ct is ColType.TS:
            exprs.append(pl.col(c).cast(pl.Datetime("ns")).dt.replace_time_zone("UTC"))
        elif ct is ColType.DATE:
            exprs.append(pl.col(c).cast(pl.Int32).cast(pl.Date))
        else:
            exprs.append(pl.col(c).cast(ct.polars))
    return frame.select(exprs)


@dataclass(frozen=True)
class LakeCounts:
    """A lake transaction's ``row_counts`` changes: ``recounted`` replaces the counts of ``scopes``
    (read from the snapshot the transaction committed), ``deltas`` are added."""

    deltas: pl.DataFrame
    scopes: list[counts.Scope]
    recounted: pl.DataFrame


def _count_rows(frame: pl.DataFrame) -> list[tuple[Any, ...]]:
    types = [ROW_COUNTS.column(c).type for c in counts.COLUMNS]
    return [tuple(_to_sql_value(v, t) for v, t in zip(r, types, strict=True))
            for r in frame.select(counts.COLUMNS).iter_rows()]


def _apply_counts(con: sqlite3.Connection, c: LakeCounts) -> None:
    """``row_counts`` changes in the open SQLite transaction (see :class:`LakeCounts`)."""
    counts_table = _sql_ident(ROW_COUNTS.name)
    cols = ", ".join(_sql_ident(x) for x in counts.COLUMNS)
    marks = ", ".join("?" for _ in counts.COLUMNS)
    day = ColType.DATE
    for s in c.scopes:
        only = (" AND instrument_id IN (" + ", ".join("?" for _ in s.instrument_ids) + ")") \
            if s.instrument_ids is not None else ""
        con.execute(f"DELETE FROM {counts_table} WHERE table_name = ? AND dataset = ? AND day >= ? AND day <= ?{only}",
                    (s.table, s.dataset, _to_sql_value(s.first_day, day), _to_sql_value(s.last_day, day),
                     *(s.instrument_ids or ())))
    con.executemany(f"INSERT OR REPLACE INTO {counts_table} ({cols}) VALUES ({marks})", _count_rows(c.recounted))
    key = ", ".join(_sql_ident(k) for k in counts.KEY)
    con.executemany(f"INSERT INTO {counts_table} ({cols}) VALUES ({marks}) ON CONFLICT ({key}) DO UPDATE SET "
                    "\"rows\" = \"rows\" + excluded.\"rows\", first_ns = min(first_ns, excluded.first_ns), "
                    "last_ns = max(last_ns, excluded.last_ns)", _count_rows(c.deltas))


class Ledger:
    """The SQLite file holding the ledger, the symbology and the commit log of a lake store.

    Writers take SQLite's write lock (``BEGIN IMMEDIATE``) for one short transaction per chunk, so
    several processes share the file; readers never block."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._con: sqlite3.Connection | None = None
        self._pid = 0
        self.lock = threading.RLock()

    def connect(self) -> sqlite3.Connection:
        if self._con is None or self._pid != os.getpid():  # a forked worker opens its own connection
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                con = sqlite3.connect(self.path, timeout=120, isolation_level=None, check_same_thread=False)
                con.execute("PRAGMA journal_mode=WAL")
                con.execute("PRAGMA synchronous=FULL")
            except (OSError, sqlite3.Error) as e:
                raise StoreError(f"cannot open the lake ledger {self.path}: {e}") from None
            self._con, self._pid = con, os.getpid()
        return self._con

    def exists(self) -> bool:
        return self.path.exists()

    def tables(self) -> set[str]:
        if not self.exists():
            return set()
        with self.lock:
            return {r[0] for r in self.connect().execute("SELECT name FROM sqlite_master WHERE type = 'table'")}

    def migrate(self) -> bool:
        """Create the ledger's tables and record the schema versions. Returns True when the store
        existed before migration 7 (its ``row_counts`` are to be filled: ``fill_counts`` records 7)."""
        with self.lock:
            con = self.connect()
            con.execute("BEGIN IMMEDIATE")
            try:
                con.execute(f"CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} (version INTEGER PRIMARY KEY, "
                            "applied_at INTEGER)")
                known = {r[0] for r in con.execute(f"SELECT version FROM {MIGRATIONS_TABLE}")}
                to_fill = bool(known) and COUNTS_VERSION not in known
                for t in SQL_TABLES.values():
                    cols = ", ".join(f"{_sql_ident(c.name)} {_SQLITE_TYPES.get(c.type, 'INTEGER')}"
                                     f"{'' if c.nullable else ' NOT NULL'}" for c in t.columns)
                    key = ", ".join(_sql_ident(k) for k in t.key)
                    con.execute(f"CREATE TABLE IF NOT EXISTS {_sql_ident(t.name)} ({cols}, PRIMARY KEY ({key}))")
                con.execute(f"CREATE TABLE IF NOT EXISTS {COMMITS_TABLE} (txn_id TEXT NOT NULL, chunk_id TEXT, "
                            "table_name TEXT NOT NULL, snapshot_id INTEGER NOT NULL, rows_inserted INTEGER NOT NULL, "
                            "committed_at INTEGER NOT NULL, PRIMARY KEY (table_name, snapshot_id))")
                now = _to_sql_value(dt.datetime.now(dt.UTC), ColType.TS)
                for v in range(1, SCHEMA_VERSION + 1):
                    if v == COUNTS_VERSION and to_fill:
                        continue
                    con.execute(f"INSERT OR IGNORE INTO {MIGRATIONS_TABLE} (version, applied_at) VALUES (?, ?)",
                                (v, now))
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        return to_fill

    def read(self, table: Table, where: str = "", params: Sequence[Any] = ()) -> pl.DataFrame:
        cols = table.names
        with self.lock:
            rows = self.connect().execute(
                f"SELECT {', '.join(_sql_ident(c) for c in cols)} FROM {_sql_ident(table.name)} {where}",
                list(params)).fetchall()
        return _sql_frame(rows, table, cols)

    def apply(self, writes: list[tuple[Table, list[dict[str, Any]], str]],
              commits: list[tuple[str, str | None, str, int, int]],
              row_counts: LakeCounts | None = None) -> dict[int, int]:
        """Apply buffered writes in one transaction; returns rows inserted per write index."""
        inserted: dict[int, int] = {}
        with self.lock:
            con = self.connect()
            con.execute("BEGIN IMMEDIATE")
            try:
                if row_counts is not None:
                    _apply_counts(con, row_counts)
                for i, (table, rows, on_conflict) in enumerate(writes):
                    cols = table.names
                    types = [table.column(c).type for c in cols]
                    col_sql = ", ".join(_sql_ident(c) for c in cols)
                    placeholders = ", ".join("?" for _ in cols)
                    key = ", ".join(_sql_ident(k) for k in table.key)
                    sets = ", ".join(f"{_sql_ident(c)} = excluded.{_sql_ident(c)}" for c in cols if c not in table.key)
                    action = f"DO UPDATE SET {sets}" if on_conflict == "update" and sets else "DO NOTHING"
                    sql = (f"INSERT INTO {_sql_ident(table.name)} ({col_sql}) VALUES ({placeholders}) "
                           f"ON CONFLICT ({key}) {action}")
                    before = con.total_changes
                    con.executemany(sql, [tuple(_to_sql_value(r[c], t) for c, t in zip(cols, types, strict=True))
                                          for r in rows])
                    inserted[i] = con.total_changes - before
                now = _to_sql_value(dt.datetime.now(dt.UTC), ColType.TS)
                con.executemany(f"INSERT OR REPLACE INTO {COMMITS_TABLE} (txn_id, chunk_id, table_name, snapshot_id, "
                                "rows_inserted, committed_at) VALUES (?, ?, ?, ?, ?, ?)",
                                [(*c, now) for c in commits])
                con.execute("COMMIT")
            except BaseException as e:
                con.execute("ROLLBACK")
                if isinstance(e, sqlite3.Error):
                    raise StoreError(f"lake ledger {self.path}: write failed, nothing was committed: {e}",
                                     transient=isinstance(e, sqlite3.OperationalError)) from None
                raise
        return inserted

    def fill_counts(self, stats: pl.DataFrame) -> bool:
        """Migration 7 of the lake: store ``stats`` (every stored row's counts, read before) as the
        ``row_counts`` and record the version, unless another process did first. True if stored."""
        with self.lock:
            con = self.connect()
            con.execute("BEGIN IMMEDIATE")
            try:
                if con.execute(f"SELECT 1 FROM {MIGRATIONS_TABLE} WHERE version = ?", (COUNTS_VERSION,)).fetchone():
                    con.execute("ROLLBACK")
                    return False
                con.execute(f"DELETE FROM {_sql_ident(ROW_COUNTS.name)}")
                _apply_counts(con, LakeCounts(stats, [], counts.empty()))
                con.execute(f"INSERT INTO {MIGRATIONS_TABLE} (version, applied_at) VALUES (?, ?)",
                            (COUNTS_VERSION, _to_sql_value(dt.datetime.now(dt.UTC), ColType.TS)))
                con.execute("COMMIT")
                return True
            except BaseException:
                con.execute("ROLLBACK")
                raise

    def versions(self) -> Any:
        """``hdi_schema_migrations`` as Arrow (version, applied_at)."""
        rows: list[tuple[int, int | None]] = []
        if MIGRATIONS_TABLE in self.tables():
            with self.lock:
                rows = self.connect().execute(f"SELECT version, applied_at FROM {MIGRATIONS_TABLE}").fetchall()
        frame = pl.DataFrame(rows, schema={"version": pl.Int32, "applied_at": pl.Int64}, orient="row")
        return frame.with_columns(pl.col("applied_at").cast(pl.Datetime("ns")).dt.replace_time_zone("UTC")).to_arrow()

    def recorded_snapshots(self, table: str) -> set[int]:
        if COMMITS_TABLE not in self.tables():
            return set()
        with self.lock:
            return {r[0] for r in self.connect().execute(
                f"SELECT snapshot_id FROM {COMMITS_TABLE} WHERE table_name = ?", (table,))}

    def close(self) -> None:
        with self.lock:
            if self._con is not None and self._pid == os.getpid():
                self._con.close()
            self._con = None


# --------------------------------------------------------------------------- the store
class IcebergStore(Store):
    kind = "iceberg"

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.config = parse_url(url)
        self.ledger = Ledger(self.config.ledger)
        self._catalog: Any = None
        self._catalog_pid = 0
        self._lock = threading.RLock()
        self._migrated = False
        self._hint = threading.local()  # select(): the row filter of the scan it is about to run

    # -- catalog ------------------------------------------------------------------------------
    def catalog(self) -> Any:
        with self._lock:
            if self._catalog is None or self._catalog_pid != os.getpid():
                from pyiceberg.catalog import load_catalog

                if self.config.catalog == "hdi" and self.config.properties.get("type") == "sql":
                    self.config.root.mkdir(parents=True, exist_ok=True)
                    (self.config.root / "warehouse").mkdir(exist_ok=True)
                try:
                    self._catalog = load_catalog(self.config.catalog, **self.config.properties)
                except Exception as e:  # noqa: BLE001 - pyiceberg raises many kinds; one line
                    raise StoreError(f"lake store {self.display_url}: cannot open Iceberg catalog "
                                     f"'{self.config.catalog}': {_one_line(e)}") from None
                self._catalog_pid = os.getpid()
            return self._catalog

    def edition(self) -> dict[str, str]:
        """What ``hdi status`` shows about the store."""
        from importlib.metadata import version

        return {"catalog": self.config.catalog, "namespace": self.config.namespace,
                "pyiceberg": version("pyiceberg"), "ledger": str(self.ledger.path)}

    def ident(self, table: str) -> str:
        return f"{self.config.namespace}.{table}"

    def load(self, table: str) -> Any:
        try:
            return self.catalog().load_table(self.ident(table))
        except StoreError:
            raise
        except Exception as e:  # noqa: BLE001
            raise StoreError(f"lake store {self.display_url}: cannot load table '{table}': {_one_line(e)}") from None

    def close(self) -> None:
        self.ledger.close()
        with self._lock:
            if self._catalog is not None and self._catalog_pid == os.getpid():
                engine = getattr(self._catalog, "engine", None)
                if engine is not None:
                    engine.dispose()
            self._catalog = None
        self._known_tables.clear()
        self._migrated = False

    def _has_table(self, name: str) -> bool:
        if name in SQL_TABLES:
            return name in self.ledger.tables()
        if name not in LAKE_TABLES:
            return False
        if self.config.catalog == "hdi" and not (self.config.root / "catalog.db").exists():
            return False  # a status never creates the zero-setup catalog
        try:
            return bool(self.catalog().table_exists(self.ident(name)))
        except StoreError:
            raise
        except Exception as e:  # noqa: BLE001
            raise StoreError(f"lake store {self.display_url}: {_one_line(e)}") from None

    # -- schema -------------------------------------------------------------------------------
    def migrate(self) -> None:
        if self._migrated:
            return
        with self._lock:  # threads of one process migrate once; processes race safely (below)
            if not self._migrated:
                self._migrate()

    def _migrate(self) -> None:
        to_fill = self.ledger.migrate()
        cat = self.catalog()
        ns = self.config.namespace
        try:
            cat.create_namespace_if_not_exists(ns)
        except Exception:  # noqa: BLE001 - another process created it meanwhile (or a real error: below)
            if (ns,) not in [tuple(n) for n in cat.list_namespaces()]:
                raise
        existing = {t[-1] for t in cat.list_tables(ns)}
        for t in LAKE_TABLES.values():
            if t.name in existing:
                continue
            schema = iceberg_schema(t)
            try:
                cat.create_table(self.ident(t.name), schema, partition_spec=_partition_spec(t, schema),
                                 sort_order=_sort_order(t, schema), properties=TABLE_PROPERTIES)
                log.info("lake store %s: created table %s", self.display_url, t.name)
            except Exception:  # noqa: BLE001 - another process created it meanwhile (or a real error: below)
                if not cat.table_exists(self.ident(t.name)):
                    raise
        if to_fill:  # a lake an earlier hdi wrote: count its stored rows once (migration 7)
            stats = counts.merge([self._fetch(counts.stats_select(t, "duckdb"), [t.name])
                                  for t in LAKE_TABLES.values() if t.name in existing])
            if self.ledger.fill_counts(stats):
                log.info("lake store %s: applied migration %d (row counts of %d stored rows)", self.display_url,
                         COUNTS_VERSION, int(stats["rows"].sum()) if stats.height else 0)
        self._migrated = True

    def _check(self, tables: list[Table]) -> None:
        where = f"lake store {self.display_url}"
        present = self.ledger.tables()
        versions: list[int] = []
        if MIGRATIONS_TABLE in present:
            with self.ledger.lock:
                versions = [r[0] for r in self.ledger.connect().execute(f"SELECT version FROM {MIGRATIONS_TABLE}")]
        problem = version_problem(where, versions)
        if problem is not None:
            raise problem
        for t in tables:
            if t.name in SQL_TABLES:
                if t.name not in present and versions:
                    raise damaged(where, f"table '{t.name}' is missing although migration {max(versions)} is "
                                         f"recorded as applied (ledger {self.ledger.path})")
                continue
            if not self._has_table(t.name):
                if versions and t.name in LAKE_TABLES and self._any_lake_table():
                    raise damaged(where, f"table '{t.name}' is missing from the catalog although migration "
                                         f"{max(versions)} is recorded as applied")
                continue
            tbl = self.load(t.name)
            found = {f.name: str(f.field_type) for f in tbl.schema().fields}
            why = column_problem(t, found, {c.name: _ICEBERG_NAMES[c.type] for c in t.columns})
            if why is not None:
                raise damaged(where, why)
            # every data file of the current snapshot must be there (a lake loses files, not blocks)
            for task in tbl.scan().plan_files():
                path = task.file.file_path
                if path.startswith("file:") and not Path(unquote(urlsplit(path).path)).exists():
                    raise damaged(where, f"table '{t.name}' lists data file {path}, which is missing")

    def _any_lake_table(self) -> bool:
        try:
            return bool(self.catalog().list_tables(self.config.namespace))
        except Exception:  # noqa: BLE001 - no namespace: nothing was ever created
            return False

    # -- reads --------------------------------------------------------------------------------
    def select(self, table: str, **kw: Any) -> pl.DataFrame:
        if table in LAKE_TABLES:
            self._hint.filter = (table, _scan_filter(LAKE_TABLES[table], kw.get("start"), kw.get("end"),
                                                     kw.get("selections"), kw.get("equals")))
        try:
            return super().select(table, **kw)
        finally:
            self._hint.filter = None

    def scan(self, table: str, row_filter: Any = None, columns: Sequence[str] | None = None) -> Any:
        """The current rows of a lake table as Arrow, through pyiceberg's scan (partition pruning,
        file statistics, then the row filter)."""
        from pyiceberg.expressions import AlwaysTrue

        tbl = self.load(table)
        return tbl.scan(row_filter=row_filter if row_filter is not None else AlwaysTrue(),
                        selected_fields=tuple(columns) if columns else ("*",)).to_arrow()

    def _lake_view(self, name: str) -> Any:
        hint = getattr(self._hint, "filter", None)
        if hint is not None and hint[0] == name:
            return self.scan(name, hint[1])
        import pyarrow.dataset as ds

        tbl = self.load(name)
        tasks = list(tbl.scan().plan_files())
        if not tasks or any(t.delete_files for t in tasks):  # deletes (another engine's): let pyiceberg apply them
            return tbl.scan().to_arrow()
        from pyiceberg.io.pyarrow import schema_to_pyarrow

        fs, paths = _filesystem(tbl, [t.file.file_path for t in tasks])
        return ds.dataset(paths, schema=schema_to_pyarrow(tbl.schema(), include_field_ids=False),
                          format="parquet", filesystem=fs)

    def _fetch(self, sql: str, params: Sequence[Any] = ()) -> pl.DataFrame:
        import duckdb

        names = _tables_in(sql)
        views: dict[str, Any] = {}
        for name in names:
            if name == MIGRATIONS_TABLE:  # the schema versions the ledger records
                views[name] = self.ledger.versions()
            elif name in SQL_TABLES:
                views[name] = self.ledger.read(SQL_TABLES[name]).to_arrow() if self._has_table(name) \
                    else _empty_arrow(SQL_TABLES[name])
            elif name in LAKE_TABLES:
                views[name] = self._lake_view(name) if self._has_table(name) else _empty_arrow(LAKE_TABLES[name])
        con = duckdb.connect(":memory:")
        try:
            for name, data in views.items():
                con.register(name, data)
            return pl.DataFrame(con.sql(sql, params=list(params)))
        except duckdb.Error as e:
            raise StoreError(f"lake store {self.display_url}: {str(e).splitlines()[0]}") from None
        finally:
            con.close()

    def _price_sql(self, column: str) -> str:
        return f'"{column}"'

    def _fix_prices(self, frame: pl.DataFrame, table: Table) -> pl.DataFrame:
        return frame

    # -- writes -------------------------------------------------------------------------------
    @contextmanager
    def transaction(self, *, chunk: ChunkRecord | None = None,
                    run: RunRecord | None = None) -> Iterator[Transaction]:
        self._hint.chunk = chunk
        try:
            with super().transaction(chunk=chunk, run=run) as txn:
                yield txn
        finally:
            self._hint.chunk = None

    def _begin(self) -> _LakeTxn:
        chunk = getattr(self._hint, "chunk", None)
        return _LakeTxn(self, chunk.chunk_id if chunk is not None else None,
                        chunk.run_id if chunk is not None else None)


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split())[:300] or type(e).__name__


_TABLE_REF = re.compile(r'(?:FROM|JOIN)\s+"?([a-z_0-9]+)"?', re.IGNORECASE)


def _tables_in(sql: str) -> list[str]:
    return list(dict.fromkeys(m for m in _TABLE_REF.findall(sql) if m in ALL_TABLES or m == MIGRATIONS_TABLE))


def _empty_arrow(table: Table) -> Any:
    return pl.DataFrame(schema=table.polars_schema).to_arrow()


def _filesystem(tbl: Any, paths: list[str]) -> tuple[Any, list[str]]:
    """A pyarrow filesystem for the table's data files and their paths within it."""
    from pyarrow import fs as pafs

    if all(p.startswith("file:") for p in paths):
        return pafs.LocalFileSystem(), [unquote(urlsplit(p).path) for p in paths]
    from pyiceberg.io.pyarrow import PyArrowFileIO

    io = tbl.io if isinstance(tbl.io, PyArrowFileIO) else PyArrowFileIO(tbl.io.properties)
    scheme, netloc, _ = PyArrowFileIO.parse_location(paths[0])
    return io.fs_by_scheme(scheme, netloc), [PyArrowFileIO.parse_location(p)[2] for p in paths]


def _parquet_frame(path: str, columns: list[str] | None, fs: Any) -> pl.DataFrame:
    """One Parquet data file (or the given columns of it) as a frame."""
    import pyarrow.parquet as pq

    frame = pl.from_arrow(pq.read_table(path, columns=columns, filesystem=fs))
    if not isinstance(frame, pl.DataFrame):  # an Arrow table always converts to a frame
        raise StoreError(f"lake data file '{path}' did not read as a table")
    return frame


def _lit_ts(v: Any) -> Any:
    """A bound for a timestamptz column, as µs since the epoch (what pyiceberg compares)."""
    if isinstance(v, dt.datetime):
        v = v if v.tzinfo else v.replace(tzinfo=dt.UTC)
        d = v - _EPOCH
        return (d.days * 86_400 + d.seconds) * 1_000_000 + d.microseconds
    if isinstance(v, dt.date):
        return (v - _EPOCH_DAY).days * 86_400_000_000
    return v


# pyiceberg's predicates are pydantic models: type checkers see the declared fields (term, value /
# values) as the constructor, so they are built by keyword (equal to the positional form at run time).
def _ge(name: str, value: Any) -> BooleanExpression:
    from pyiceberg.expressions import GreaterThanOrEqual, Reference
    from pyiceberg.expressions.literals import literal

    return GreaterThanOrEqual(term=Reference(name), value=literal(value))


def _lt(name: str, value: Any) -> BooleanExpression:
    from pyiceberg.expressions import LessThan, Reference
    from pyiceberg.expressions.literals import literal

    return LessThan(term=Reference(name), value=literal(value))


def _le(name: str, value: Any) -> BooleanExpression:
    from pyiceberg.expressions import LessThanOrEqual, Reference
    from pyiceberg.expressions.literals import literal

    return LessThanOrEqual(term=Reference(name), value=literal(value))


def _eq(name: str, value: Any) -> BooleanExpression:
    from pyiceberg.expressions import EqualTo, Reference
    from pyiceberg.expressions.literals import literal

    return EqualTo(term=Reference(name), value=literal(value))


def _in(name: str, values: Sequence[int]) -> BooleanExpression:
    from pyiceberg.expressions import In, Reference
    from pyiceberg.expressions.literals import literal

    return In(term=Reference(name), values={literal(v) for v in values})


def _scan_filter(table: Table, start: Any, end: Any, selections: pl.DataFrame | None,
                 equals: dict[str, Any] | None) -> BooleanExpression:
    """A pyiceberg row filter selecting a superset of what :meth:`Store.select` returns: the time
    range, the instruments and the equalities; the SQL then filters exactly."""
    from pyiceberg.expressions import AlwaysTrue, And

    tc = table.time_column
    expr: BooleanExpression = AlwaysTrue()
    if start is not None:
        expr = And(expr, _ge(tc, _lit_ts(start)))
    if end is not None:
        expr = And(expr, _lt(tc, _lit_ts(end)))
    for c, v in (equals or {}).items():
        if v is not None:
            expr = And(expr, _eq(c, v))
    if selections is not None and selections.height:
        ids = sorted({int(i) for i in selections.get_column("instrument_id").to_list()})
        expr = And(expr, _in("instrument_id", ids) if len(ids) > 1 else _eq("instrument_id", ids[0]))
        lo, hi = selections.get_column("from_ts"), selections.get_column("to_ts")
        if lo.null_count() == 0 and start is None:
            expr = And(expr, _ge(tc, _lit_ts(lo.min())))
        if hi.null_count() == 0 and end is None:
            expr = And(expr, _lt(tc, _lit_ts(hi.max()) + 1))
    return expr


def _range_filter(table: Table, frame: pl.DataFrame) -> BooleanExpression:
    """The batch's key range (as ``overlap_probe``): time range, instrument range and every text
    key column holding one value."""
    from pyiceberg.expressions import And

    tc = table.time_column
    lo, hi = time_bounds(frame, tc)
    expr: BooleanExpression = And(_ge(tc, _lit_ts(lo)), _lt(tc, _lit_ts(hi)))
    if "instrument_id" in table.key:
        ilo, ihi = frame.select(pl.col("instrument_id").min(), pl.col("instrument_id").max().alias("x")).row(0)
        expr = And(expr, And(_ge("instrument_id", int(ilo)), _le("instrument_id", int(ihi))))
    for k in table.key:
        if table.column(k).type is ColType.TEXT and frame.get_column(k).n_unique() == 1:
            expr = And(expr, _eq(k, frame.get_column(k)[0]))
    return expr


# --------------------------------------------------------------------------- transactions
@dataclass
class _Pending:
    """What a transaction will commit to one lake table."""

    base: Any  # the pyiceberg Table as first loaded: the snapshot the decisions were made on
    staged: list[tuple[Any, list[Any]]] = field(default_factory=list)  # (range, DataFiles) per write
    deletes: list[Any] = field(default_factory=list)  # range filters to delete first (update path)
    cleared: list[Any] = field(default_factory=list)  # delete_days filters: their stored rows are gone
    guards: list[tuple[Any, int]] = field(default_factory=list)  # (range, stored rows seen there)
    recovered: dict[int, int] = field(default_factory=dict)  # snapshot -> rows: this chunk's, ledger lost
    inserted: int = 0


class _LakeTxn(Transaction):
    """Lake writes staged as Parquet files, ledger writes buffered; both committed by ``commit``."""

    def __init__(self, store: IcebergStore, chunk_id: str | None, run_id: str | None) -> None:
        super().__init__()
        self.store = store
        self.chunk_id, self.run_id = chunk_id, run_id
        self.txn_id = uuid.uuid4().hex
        self.pending: dict[str, _Pending] = {}
        self.sql_writes: list[tuple[Table, list[dict[str, Any]], str]] = []
        self._counter = itertools.count(0)
        self._open = True
        self._busy = False  # a write is running: a cancel stops it (an idle cancel changes nothing)
        self._stop = False
        self._row_counts: tuple[pl.DataFrame, list[counts.Scope]] | None = None

    def _stop_if_cancelled(self) -> None:
        if self._stop:
            raise StoreError(f"lake store {self.store.display_url}: write Interrupted by a signal; "
                             "nothing was committed")

    def _write(self, table: Table, frame: pl.DataFrame, on_conflict: str) -> WriteResult:
        if table.name in SQL_TABLES:
            rows = conform(frame, table, backend="duckdb").to_dicts()
            self.sql_writes.append((table, rows, on_conflict))
            return WriteResult(table.name, len(rows), len(rows), 0, "ledger")
        self._busy, self._stop = True, False
        try:
            return self._write_lake(table, frame, on_conflict)
        finally:
            self._busy = False

    def _write_lake(self, table: Table, frame: pl.DataFrame, on_conflict: str) -> WriteResult:
        batch = to_lake(frame, table)
        p = self.pending.get(table.name)
        if p is None:
            p = self.pending[table.name] = _Pending(self.store.load(table.name))
        n = batch.height
        rng = _range_filter(table, batch)
        stored = self._scan(p.base, rng, table.key if on_conflict == "ignore" else None)
        seen = stored.height  # rows of the base snapshot in the range: what a concurrent commit is checked by
        for gone in p.cleared:  # rows delete_days removed in this transaction are not stored any more
            stored = stored.filter(~_polars_in_range(gone, table)) if stored.height else stored
        earlier = self._staged_in(p, table, batch, rng, on_conflict)  # this transaction's own rows there
        recovered = self._recovered(p.base, table)
        if stored.height == 0 and earlier.height == 0:
            self._stage(p, table, batch, rng)
            p.guards.append((rng, seen))
            p.inserted += n
            return WriteResult(table.name, n, n, 0, "append")
        if on_conflict == "ignore":
            new = batch.join(stored, on=list(table.key), how="anti", nulls_equal=True) if stored.height else batch
            if earlier.height:
                new = new.join(earlier.select(table.key), on=list(table.key), how="anti", nulls_equal=True)
            self._stage(p, table, new, rng)
            self.counts.add(table, new)
            p.guards.append((rng, seen))
            p.inserted += new.height
            present = n - new.height
            inserted = new.height
            if recovered and present:  # loaded by this chunk's earlier attempt, whose ledger row was lost
                rows = batch.join(self._recovered_rows(p.base, recovered, table),
                                  on=list(table.key), how="semi", nulls_equal=True)
                self.counts.add(table, rows)  # their counts were lost with the ledger row: counted now
                again = rows.height
                inserted, present = inserted + again, present - again
                for sid in recovered:
                    p.recovered[sid] = int((p.base.snapshot_by_id(sid).summary or {}).get("hdi.rows-inserted", 0))
                log.info("%s: %d rows were committed by this chunk's earlier attempt (snapshot %s) whose ledger "
                         "row was lost; counted as loaded", table.name, again, ", ".join(map(str, recovered)))
            return WriteResult(table.name, n, inserted, present, "merge")
        # update: rewrite exactly the range: stored rows not replaced, plus the batch
        stored = stored.select(batch.columns).cast(batch.schema) if stored.height else batch.clear()
        for done in p.deletes:  # stored rows in a range an earlier batch rewrote are staged already
            stored = stored.filter(~_polars_in_range(done, table))
        if earlier.height:
            stored = pl.concat([stored, earlier.select(batch.columns).cast(batch.schema)])
        keep = stored.join(batch, on=list(table.key), how="anti", nulls_equal=True)
        replaced = stored.height - keep.height
        self.counts.add(table, batch.join(stored.select(table.key), on=list(table.key), how="anti",
                                          nulls_equal=True))  # replaced rows keep their count
        self._stage(p, table, pl.concat([keep, batch]), rng)
        p.deletes.append(rng)
        p.guards.append((rng, stored.height))
        p.inserted += n - replaced
        return WriteResult(table.name, n, n - replaced, replaced, "merge")

    def _delete_days(self, table: Table, dataset: str, instrument_ids: list[int], start: dt.datetime,
                     end: dt.datetime, equals: dict[str, Any]) -> int:
        """Staged as a delete by row filter, committed with the transaction's appends (one Iceberg
        commit per table: the old rows or the new ones, never both)."""
        from pyiceberg.expressions import And

        p = self.pending.get(table.name)
        if p is None:
            p = self.pending[table.name] = _Pending(self.store.load(table.name))
        if any(files for _, files in p.staged):
            raise StoreError(f"lake store {self.store.display_url}: delete_days on {table.name} after this "
                             "transaction wrote rows to it; delete first, then write")
        tc = table.time_column
        rng: BooleanExpression = And(And(_eq("dataset", dataset), _ge(tc, _lit_ts(start))), _lt(tc, _lit_ts(end)))
        rng = And(rng, _in("instrument_id", instrument_ids) if len(instrument_ids) > 1
                  else _eq("instrument_id", instrument_ids[0]))
        for c, v in equals.items():
            rng = And(rng, _eq(c, v))
        stored = self._scan(p.base, rng, list(table.key))
        for gone in p.cleared:
            stored = stored.filter(~_polars_in_range(gone, table)) if stored.height else stored
        p.cleared.append(rng)
        p.deletes.append(rng)
        p.guards.append((rng, self._count(p.base, rng, table)))
        return stored.height

    def _scan(self, tbl: Any, rng: Any, columns: Sequence[str] | None) -> pl.DataFrame:
        if tbl.current_snapshot() is None:
            return pl.DataFrame()
        got = tbl.scan(row_filter=rng, selected_fields=tuple(columns) if columns else ("*",)).to_arrow()
        return pl.from_arrow(got)  # type: ignore[return-value]

    def _recovered(self, tbl: Any, table: Table) -> list[int]:
        """Snapshots committed for this chunk whose ledger row never committed (a crash between)."""
        if self.chunk_id is None:
            return []
        mine = [s.snapshot_id for s in tbl.snapshots()
                if s.summary is not None and s.summary.get("hdi.chunk-id") == self.chunk_id]
        if not mine:
            return []
        recorded = self.store.ledger.recorded_snapshots(table.name)
        return [s for s in mine if s not in recorded]

    def _recovered_rows(self, tbl: Any, snapshots: list[int], table: Table) -> pl.DataFrame:
        """Key columns of the rows the given snapshots added (their added data files)."""
        paths = []
        for sid in snapshots:
            snap = tbl.snapshot_by_id(sid)
            for manifest in snap.manifests(tbl.io):
                if manifest.added_snapshot_id != sid:
                    continue
                for entry in manifest.fetch_manifest_entry(tbl.io, discard_deleted=True):
                    if entry.snapshot_id == sid:
                        paths.append(entry.data_file.file_path)
        fs, local = _filesystem(tbl, paths) if paths else (None, [])
        parts = [_parquet_frame(p, list(table.key), fs) for p in local]
        return pl.concat(parts) if parts else pl.DataFrame(schema=dict.fromkeys(table.key, pl.Int64))

    def _staged_in(self, p: _Pending, table: Table, batch: pl.DataFrame, rng: Any, on_conflict: str) -> pl.DataFrame:
        """Rows this transaction staged earlier whose range meets the batch's (read back from their
        files; for ``update`` those files are dropped: their rows are staged again with the batch)."""
        parts: list[pl.DataFrame] = []
        kept = []
        for erng, files in p.staged:
            if not files or batch.filter(_polars_in_range(erng, table)).height == 0:
                kept.append((erng, files))
                continue
            fs, local = _filesystem(p.base, [f.file_path for f in files])
            cols = list(table.key) if on_conflict == "ignore" else None
            got = pl.concat([_parquet_frame(x, cols, fs) for x in local])
            if on_conflict == "ignore":
                kept.append((erng, files))
                parts.append(got.filter(_polars_in_range(rng, table)))
            else:
                parts.append(got)
        if on_conflict != "ignore":
            p.staged = kept
        return pl.concat(parts) if parts else pl.DataFrame()

    def _stage(self, p: _Pending, table: Table, frame: pl.DataFrame, rng: Any) -> None:
        """Write the rows' Parquet files now (bounded memory); they join the table at commit."""
        from pyiceberg.io.pyarrow import _dataframe_to_data_files

        schema = p.base.schema().as_arrow()
        files: list[Any] = []
        p.staged.append((rng, files))
        for lo in range(0, frame.height, WRITE_SLICE):
            self._stop_if_cancelled()
            part = frame.slice(lo, WRITE_SLICE).to_arrow().cast(schema)
            try:
                files.extend(_dataframe_to_data_files(p.base.metadata, part, p.base.io,
                                                        write_uuid=uuid.UUID(self.txn_id), counter=self._counter))
            except Exception as e:  # noqa: BLE001 - an I/O error of the warehouse: one line
                raise StoreError(f"lake store {self.store.display_url}: writing {table.name} files failed, nothing "
                                 f"was committed: {_one_line(e)}") from None

    def upsert(self, table: Table, row: dict[str, Any]) -> None:
        self.sql_writes.append((table, [row], "update"))

    def _write_counts(self, deltas: pl.DataFrame, scopes: list[counts.Scope]) -> None:
        self._row_counts = (deltas, scopes)  # written with the ledger by commit(), scopes recounted first

    def _recount(self, scopes: list[counts.Scope], snapshots: dict[str, int]) -> pl.DataFrame:
        """The stats of each scope's stored rows in the snapshot this transaction committed."""
        from pyiceberg.expressions import And

        parts = []
        for s in scopes:
            table = LAKE_TABLES[s.table]
            if s.table not in snapshots and not self.store.has_table(s.table):
                continue
            lo, hi = s.bounds()
            tc = table.time_column
            expr: BooleanExpression = And(And(_ge(tc, _lit_ts(lo)), _lt(tc, _lit_ts(hi))), _eq("dataset", s.dataset))
            if s.instrument_ids is not None:
                ids = list(s.instrument_ids)
                expr = And(expr, _in("instrument_id", ids) if len(ids) > 1 else _eq("instrument_id", ids[0]))
            cols = [c for c in ("dataset", "instrument_id", "granularity", tc, counts.edge_column(table))
                    if c in table.names]
            tbl = self.store.load(s.table)
            sid = snapshots.get(s.table, tbl.metadata.current_snapshot_id)
            if sid is None:
                continue
            got = pl.from_arrow(tbl.scan(row_filter=expr, selected_fields=tuple(dict.fromkeys(cols)),
                                         snapshot_id=sid).to_arrow())
            if isinstance(got, pl.DataFrame):
                parts.append(counts.frame_stats(table, got))
        return counts.merge(parts)

    def _cancel(self) -> None:
        if self._busy:  # the running write stops at its next slice; a commit that has begun completes
            self._stop = True

    def commit(self) -> None:
        if not self._open:
            return
        commits: list[tuple[str, str | None, str, int, int]] = []
        snapshots: dict[str, int] = {}
        for name, p in self.pending.items():
            commits += [(self.txn_id, self.chunk_id, name, sid, n) for sid, n in p.recovered.items()]
            if not any(f for _, f in p.staged) and not p.deletes:
                continue
            sid = self._commit_table(LAKE_TABLES[name], p)
            snapshots[name] = sid
            commits.append((self.txn_id, self.chunk_id, name, sid, p.inserted))
        row_counts = None
        if self._row_counts is not None:
            deltas, scopes = self._row_counts
            row_counts = LakeCounts(deltas, scopes, self._recount(scopes, snapshots))
        if self.sql_writes or commits or row_counts is not None:
            self.store.ledger.apply(self.sql_writes, commits, row_counts)
        self._open = False

    def _commit_table(self, table: Table, p: _Pending) -> int:
        from pyiceberg.exceptions import CommitFailedException

        props = {"hdi.txn": self.txn_id, "hdi.rows-inserted": str(p.inserted)}
        if self.chunk_id is not None:
            props["hdi.chunk-id"] = self.chunk_id
        if self.run_id is not None:
            props["hdi.run-id"] = self.run_id
        tbl = p.base
        for attempt in range(COMMIT_ATTEMPTS):
            if attempt:
                tbl = self.store.load(table.name)
                head = tbl.metadata.current_snapshot_id
                if head != p.base.metadata.current_snapshot_id:
                    for rng, seen in p.guards:  # did the concurrent commit touch our key ranges?
                        if self._count(tbl, rng, table) != seen:
                            raise ConcurrentWriteError(
                                f"lake store {self.store.display_url}: a concurrent writer changed rows of "
                                f"'{table.name}' in the same range; nothing was committed, retry the write")
            try:
                t = tbl.transaction()
                for rng in p.deletes:
                    t.delete(delete_filter=rng, snapshot_properties=props)
                files = [f for _, fs in p.staged for f in fs]
                if files:
                    with t.update_snapshot(snapshot_properties=props).fast_append() as fa:
                        for f in files:
                            fa.append_data_file(f)
                done = t.commit_transaction()
                return int(done.metadata.current_snapshot_id)
            except CommitFailedException:
                log.info("lake store: concurrent commit on %s; checking the ranges again (attempt %d)",
                         table.name, attempt + 2)
                continue
            except Exception as e:  # noqa: BLE001
                raise StoreError(f"lake store {self.store.display_url}: commit to {table.name} failed: "
                                 f"{_one_line(e)}", transient=True) from None
        raise ConcurrentWriteError(f"lake store {self.store.display_url}: {table.name} kept changing under "
                                   f"{COMMIT_ATTEMPTS} commit attempts; nothing was committed, retry the write")

    def _count(self, tbl: Any, rng: Any, table: Table) -> int:
        return self._scan(tbl, rng, [table.time_column]).height

    def rollback(self) -> None:
        self._open = False  # staged files that never joined a table are unreferenced: no reader sees them


def _polars_in_range(rng: Any, table: Table) -> pl.Expr:
    """A Polars predicate for a range filter built by :func:`_range_filter` (µs timestamps)."""
    from pyiceberg.expressions import And, EqualTo, GreaterThanOrEqual, In, LessThan, LessThanOrEqual

    def conv(e: Any) -> pl.Expr:
        if isinstance(e, And):
            return conv(e.left) & conv(e.right)
        name = e.term.name
        if isinstance(e, In):  # delete_days' instruments
            return pl.col(name).is_in([lit.value for lit in e.literals])
        value: int | float | str = e.literal.value  # µs timestamps, ids, text keys
        col = pl.col(name)
        if table.column(name).type is ColType.TS:
            col = col.dt.epoch("us")
        if isinstance(e, GreaterThanOrEqual):
            return col >= value
        if isinstance(e, LessThan):
            return col < value
        if isinstance(e, LessThanOrEqual):
            return col <= value
        if isinstance(e, EqualTo):
            return col == value
        raise AssertionError(type(e))

    return conv(rng)
