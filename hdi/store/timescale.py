"""TimescaleDB (PostgreSQL) through ADBC (with :mod:`hdi.store.timescale_adbc`, the only modules
that import the ADBC driver; one ADBC database object per store, a connection per transaction).

Writes are bulk COPY (``adbc_ingest``) inside one transaction with the chunk's symbology and ledger
rows. When no stored row falls in the frame's key range (the normal case for a backfill), rows are
copied straight into the hypertable, whose unique key index still guards against duplicates: if a
concurrent writer got there first, the COPY fails as a whole and the write is redone through the
merge path. Otherwise rows are copied into a temporary table and merged with ``INSERT ... ON
CONFLICT``. Arrow types are matched to the column types exactly (ADBC's binary COPY requires it),
integers are cast strictly (ADBC silently wraps uint64 >= 2^63 to negative numbers), and
timestamps go as microseconds (``timestamptz``) beside their exact ``*_ns`` columns.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import polars as pl

from hdi._prices import fixed_to_decimal
from hdi._redaction import libpq_url, redact
from hdi._retrying import RetryPolicy
from hdi._tables import DATA_TABLES, ColType, Table
from hdi.errors import ConcurrentWriteError, StoreError
from hdi.store import counts
from hdi.store import timescale_lean as lean
from hdi.store.base import Store, Transaction, WriteResult
from hdi.store.check import column_problem, damaged, version_problem
from hdi.store.migrate import MIGRATIONS_TABLE, migrations
from hdi.store.schema import SQL_TYPES, conform, ident, key_index_name
from hdi.store.sql import delete_days_sql, overlap_probe
from hdi.store.timescale_adbc import Database

log = logging.getLogger(__name__)
# a read on a lost connection is redone once, at once, on a new connection
READ_RETRY = RetryPolicy(attempts=2, base_delay=0.0, jitter=0.0)

_CONNECT_HINT = "is the server running? `make db-up` starts the local one"
# Connection failures no retry can mend, each with what to fix.
_PERMANENT = (("password authentication failed", "check the user and password in the store URL"),
              ("no password supplied", "give the password in the store URL"),
              ("does not exist", "check the user and database names in the store URL, or create the database"),
              ("invalid ", "check the store URL: postgresql://user:password@host:port/database"))

# Column types as PostgreSQL's format_type() names hdi's DDL types.
_PG_TYPES = {ct: {"timestamptz": "timestamp with time zone"}.get(sql, sql) for ct, sql in SQL_TYPES["timescale"].items()}

# SQLSTATEs after which the connection is gone and the operation may be redone on a new one: class
# 08 (connection exception), 57P01 admin shutdown (a terminated backend), 57P02 crash shutdown,
# 57P03 cannot connect now (starting up / shutting down).
_TRANSIENT_SQLSTATES = ("08", "57P01", "57P02", "57P03")


def _is_transient(e: BaseException) -> bool:
    """Whether a driver error means the link to the server failed (retry on a new connection).

    A statement the server refused carries its SQLSTATE; an ADBC ``OperationalError`` with status IO
    and no SQLSTATE is libpq losing (or never getting) the link: the server closed or reset it, it
    was terminated, refused or unreachable.
    """
    import adbc_driver_manager as adbc

    if not isinstance(e, adbc.Error):
        return False
    if e.sqlstate:
        return e.sqlstate.startswith(_TRANSIENT_SQLSTATES)
    return isinstance(e, adbc.OperationalError) and e.status_code == adbc.AdbcStatusCode.IO


class TimescaleStore(Store):
    kind = "timescale"

    def __init__(self, url: str) -> None:
        super().__init__(url.replace("postgres://", "postgresql://", 1))
        self._read: Any = None
        # one AdbcDatabase per store: ~0.1 s each, ~10 ms per connection. libpq gets the user and
        # password percent-encoded: typed with a space or an @ they still reach the server as typed
        self._db = Database(libpq_url(self.url))
        self._lock = threading.RLock()
        self._migrated = False
        self.license: str | None = None
        self.timescaledb_version: str | None = None
        self._sources: pl.DataFrame | None = None  # hdi_sources of the lean tick tables (timescale_lean)
        self._registering = False  # the read connection is registering a source for a transaction

    # -- connections --------------------------------------------------------------------------
    def _connect(self, autocommit: bool) -> Any:
        try:
            return self._db.connect(autocommit=autocommit)
        except Exception as e:
            raise self._error("cannot connect", e, always_transient=True) from None

    def _error(self, what: str, e: BaseException, *, always_transient: bool = False) -> StoreError:
        text = " ".join(str(e).split())
        for prefix in ("IO: ", "INVALID_STATE: ", "INTERNAL: "):
            text = text.replace(prefix, "")
        text = redact(text)  # before it is cut to length: a secret cut in half is no longer recognised
        transient = always_transient or _is_transient(e)
        hint = f" ({_CONNECT_HINT})" if what == "cannot connect" else ""
        if what == "cannot connect":
            # libpq reports a rejected connection without a SQLSTATE (the ADBC error's sqlstate,
            # vendor_code and details are empty): its message is all there is to tell a wrong
            # password from a server that is down.
            fix = next((f for k, f in _PERMANENT if k in text.lower()), None)
            if fix is not None:
                transient, hint = False, f" ({fix})"
        return StoreError(redact(f"TimescaleDB at {self.display_url}: {what}: {text[:400]}{hint}"),
                          transient=transient)

    @contextmanager
    def registering(self) -> Iterator[None]:
        """A block in which the read connection writes for a transaction (a new source code of a lean
        table, committed at once): a cancel of any transaction (:meth:`cancel_registering`) stops it."""
        with self._lock:
            self._registering = True
            try:
                yield
            finally:
                self._registering = False

    def cancel_registering(self) -> None:
        """Cancel the read connection's statement if it is registering for a transaction (called from
        a signal's thread; the statement fails with "canceling statement due to user request")."""
        read = self._read
        if self._registering and read is not None:
            try:
                read.cancel()
            except Exception:  # noqa: BLE001 - the connection may be gone; nothing to stop then
                pass

    def _reader(self) -> Any:
        with self._lock:
            if self._read is None:
                self._read = self._connect(autocommit=True)
            return self._read

    def close(self) -> None:
        with self._lock:
            if self._read is not None:
                try:
                    self._read.close()
                except Exception:  # noqa: BLE001 - closing a dead connection
                    pass
                self._read = None
            self._db.close()

    def _drop_reader(self) -> None:
        with self._lock:
            self.close()

    # -- schema -------------------------------------------------------------------------------
    def migrate(self) -> None:
        if self._migrated:
            return
        conn = self._connect(autocommit=False)
        try:
            cur = conn.cursor()
            self._check_extension(cur)
            conn.commit()
            # Serialise concurrent migrations (two ingests starting at once): even CREATE TABLE IF
            # NOT EXISTS races in PostgreSQL.
            cur.execute("SELECT pg_advisory_xact_lock(7266001)")
            cur.fetchall()
            cur.execute(f"CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} (version integer PRIMARY KEY, "
                        "applied_at timestamptz NOT NULL DEFAULT now())")
            cur.execute(f"SELECT version FROM {MIGRATIONS_TABLE}")
            done = {r[0] for r in cur.fetchall()}
            for version, statements in migrations("timescale"):
                if version in done:
                    continue
                for sql in statements:
                    cur.execute(sql)
                    if cur.description:
                        cur.fetchall()
                cur.execute(f"INSERT INTO {MIGRATIONS_TABLE} (version) VALUES ($1)", parameters=(version,))
                log.info("TimescaleDB store %s: applied migration %d", self.display_url, version)
            conn.commit()
        except StoreError:
            raise
        except Exception as e:
            raise self._error("migration failed", e) from None
        finally:
            conn.close()
        self._migrated = True

    def _check_extension(self, cur: Any) -> None:
        cur.execute("SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'")
        row = cur.fetchone()
        if row is None:
            try:
                cur.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
            except Exception as e:
                text = " ".join(str(e).split())
                m = re.search(r"ERROR:\s*(.+?)(?:\s+(?:HINT|DETAIL|SQLSTATE):|$)", text)
                raise StoreError(
                    f"TimescaleDB at {self.display_url}: the database has no timescaledb extension and this "
                    f"user cannot create it ({(m[1] if m else text)[:200]}); fix: run 'CREATE EXTENSION "
                    "timescaledb;' in that database as its owner or a superuser (the server must have "
                    "TimescaleDB installed), or point --store at a TimescaleDB database"
                ) from None
            cur.execute("SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'")
            row = cur.fetchone()
        self.timescaledb_version = row[0]
        cur.execute("SELECT current_setting('timescaledb.license', true)")
        self.license = (cur.fetchone() or [None])[0]

    # -- checks -------------------------------------------------------------------------------
    def _check(self, tables: list[Table]) -> None:
        where = f"TimescaleDB store {self.display_url}"
        ext = self._fetch("SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'")
        present = set(self._fetch("SELECT table_name FROM information_schema.tables "
                                  "WHERE table_schema = current_schema()")["table_name"].to_list())
        versions = self._fetch(f"SELECT version FROM {MIGRATIONS_TABLE}")["version"].to_list() \
            if MIGRATIONS_TABLE in present else []
        problem = version_problem(where, versions)
        if problem is not None:
            raise problem
        if ext.height == 0:
            if versions:  # migrate() creates the extension in a new database, not in one that had it
                raise damaged(where, "the timescaledb extension is gone from the database (hdi's tables "
                                     "need it; was it dropped?)")
            return
        cols = self._fetch(
            "SELECT c.relname AS tbl, a.attname AS col, format_type(a.atttypid, a.atttypmod) AS type "
            "FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
            "WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p') "
            "AND a.attnum > 0 AND NOT a.attisdropped ORDER BY c.relname, a.attnum")
        hyper = set(self._fetch("SELECT hypertable_name FROM timescaledb_information.hypertables "
                                "WHERE hypertable_schema = current_schema()")["hypertable_name"].to_list())
        indexes = set(self._fetch("SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()")
                      ["indexname"].to_list())
        for t in tables:
            if t.name in lean.LAYOUTS and (versions and max(versions) >= 8):
                self._check_lean(where, t, present, cols, hyper, indexes)
                continue
            if t.name not in present:
                if versions:
                    raise damaged(where, f"table '{t.name}' is missing although migration {max(versions)} is "
                                         "recorded as applied")
                continue
            found = dict(cols.filter(pl.col("tbl") == t.name).select("col", "type").iter_rows())
            why = column_problem(t, found, {c.name: _PG_TYPES[c.type] for c in t.columns})
            if why is not None:
                raise damaged(where, why)
            if t.chunk_interval and t.name not in hyper:
                raise damaged(where, f"table '{t.name}' is not a hypertable")
            if key_index_name(t) not in indexes:
                raise damaged(where, f"table '{t.name}' has lost its unique key index {key_index_name(t)} "
                                     "(re-runs would store rows twice)")

    def _check_lean(self, where: str, t: Table, present: set[str], cols: pl.DataFrame, hyper: set[str],
                    indexes: set[str]) -> None:
        """A lean tick table: its view, its physical hypertable with the lean columns, its BRIN index."""
        lay = lean.LAYOUTS[t.name]
        if lay.physical not in present or t.name not in present:
            missing = lay.physical if lay.physical not in present else f"the view {t.name}"
            raise damaged(where, f"table '{t.name}': {missing} is missing although migration 8 is recorded as "
                                 "applied")
        found = dict(cols.filter(pl.col("tbl") == lay.physical).select("col", "type").iter_rows())
        why = column_problem(Table(lay.physical, (), (), "", None, ""), found, {c.name: c.sql for c in lay.columns})
        if why is not None:
            raise damaged(where, why)
        if lay.physical not in hyper:
            raise damaged(where, f"table '{lay.physical}' (behind '{t.name}') is not a hypertable")
        if key_index_name(t) not in indexes:
            raise damaged(where, f"table '{t.name}' has lost its key index {key_index_name(t)} (reads by "
                                 "instrument and time use it)")

    def select(self, table: str, *, start: Any = None, end: Any = None, selections: pl.DataFrame | None = None,
               equals: dict[str, Any] | None = None, columns: Sequence[str] | None = None) -> pl.DataFrame:
        """As :meth:`Store.select`; a lean tick table is read from its physical columns."""
        t = lean.LAYOUTS[table].table if table in lean.LAYOUTS else None
        if t is not None and self._is_lean(t):
            cols = list(columns) if columns else t.names
            bad = [c for c in [*cols, *(equals or {})] if c not in t.names]
            if not bad and not (selections is not None and selections.height == 0):
                got = lean.select(self, t, cols, start=start, end=end, selections=selections, equals=equals)
                if got is not None:
                    return got
        return super().select(table, start=start, end=end, selections=selections, equals=equals, columns=columns)

    def _is_lean(self, t: Table) -> bool:
        return self.has_table(lean.LAYOUTS[t.name].physical)

    def _has_table(self, name: str) -> bool:
        df = self._fetch("SELECT count(*) AS n FROM information_schema.tables WHERE table_name = $1 "
                         "AND table_schema = current_schema()", [name])
        return bool(df.item())

    # -- reads --------------------------------------------------------------------------------
    def _fetch(self, sql: str, params: Sequence[Any] = (), *, copy: bool = True) -> pl.DataFrame:
        with self._lock:
            for attempt in range(1, READ_RETRY.attempts + 1):
                fresh = self._read is None
                try:
                    cur = self._reader().cursor()
                    try:
                        cur.execute(sql, parameters=tuple(params) if params else None, copy=copy)
                        frame: pl.DataFrame = cur.fetch_polars()
                    finally:
                        cur.close()
                    break
                except StoreError:
                    raise
                except Exception as e:
                    err = self._error("query failed", e)
                    if not err.transient:
                        raise err from None
                    # The server restarted or ended the session: a read is safe to redo once on a
                    # new connection (a connection opened just now failing is not mended that way).
                    self._drop_reader()
                    if fresh or attempt == READ_RETRY.attempts:
                        raise err from None
                    log.info("TimescaleDB store %s: the read connection was lost (%s); reconnecting",
                             self.display_url, err.message)
        # numeric arrives as an opaque extension column holding text: its storage, then (in
        # _fix_prices) exact Decimal in Polars.
        # (dtypes, not schema: a Schema is built anew on each read of it, ~20 us)
        ext = [pl.col(n).ext.storage() for n, t in zip(frame.columns, frame.dtypes, strict=True)
               if isinstance(t, pl.BaseExtension)]
        return frame.with_columns(ext) if ext else frame

    def _fetch_literal(self, sql: str) -> pl.DataFrame:
        """A read with its values written into ``sql`` as literals (:class:`hdi._readsql.Literals`),
        run as one statement: one round trip to the server, where ADBC runs a statement with bound
        parameters in several (measured on a 21-row read: 0.75 ms against 1.3 ms)."""
        return self._fetch(sql, copy=False)

    def _price_sql(self, column: str) -> str:
        # Exact and ~2x faster than fetching numeric: the fixed-point integer, rebuilt in Polars.
        return f"({ident(column)} * 1000000000)::int8 AS {ident(column)}"

    def _fix_prices(self, frame: pl.DataFrame, table: Table) -> pl.DataFrame:
        exprs = []
        for c in frame.columns:
            ct = table.column(c).type if c in table.names else None
            if ct is ColType.PRICE:
                exprs.append(fixed_to_decimal(pl.col(c)).alias(c))
            elif ct is ColType.STAT and frame.schema[c] == pl.String:
                exprs.append(pl.col(c).cast(pl.Decimal(28, 9)).alias(c))
        return frame.with_columns(exprs) if exprs else frame

    # -- writes -------------------------------------------------------------------------------
    def _begin(self) -> _PgTxn:
        return _PgTxn(self)


def _epoch_ns(edge: str, is_ns: bool) -> str:
    """A column's SQL (an identifier) as nanoseconds since the epoch: an ``*_ns`` column as it is, a
    timestamptz converted."""
    return edge if is_ns else f"CAST(EXTRACT(EPOCH FROM {edge}) * 1000000000 AS bigint)"


class _PgTxn(Transaction):
    """A PostgreSQL transaction on its own connection (autocommit off)."""

    def __init__(self, store: TimescaleStore) -> None:
        super().__init__()
        self.store = store
        self.conn = store._connect(autocommit=False)
        self.cur = self.conn.cursor()
        self._open = True

    def _fail(self, what: str, e: BaseException) -> StoreError:
        return self.store._error(f"{what} failed, nothing was committed", e)

    def _write(self, table: Table, frame: pl.DataFrame, on_conflict: str) -> WriteResult:
        import adbc_driver_manager

        if table.name in lean.LAYOUTS:
            try:
                return lean.write(self, table, frame, on_conflict)
            except StoreError:
                raise
            except Exception as e:
                raise self._fail("write", e) from None
        arrow = conform(frame, table, backend="timescale").to_arrow()
        n = arrow.num_rows
        try:
            if not self._overlaps(table, frame):
                # The range is new: COPY straight into the hypertable. The key index still guards
                # it: should a concurrent writer have stored one of these keys meanwhile, the COPY
                # fails as a whole, and so does this transaction (ADBC cannot roll back to a
                # savepoint after a failed COPY); the caller retries and then takes the merge path.
                try:
                    self.cur.adbc_ingest(table.name, arrow, mode="append")
                except adbc_driver_manager.IntegrityError:
                    raise ConcurrentWriteError(
                        f"TimescaleDB at {self.store.display_url}: a concurrent writer stored rows of "
                        f"'{table.name}' in the same range; nothing was committed, retry the write") from None
                return WriteResult(table.name, n, n, 0, "append")
            inserted = self._merge(table, arrow, on_conflict)
            present = n - inserted if on_conflict == "ignore" else 0
            return WriteResult(table.name, n, inserted if on_conflict == "ignore" else n, present, "merge")
        except StoreError:
            raise
        except Exception as e:
            raise self._fail("write", e) from None

    def _overlaps(self, table: Table, frame: pl.DataFrame) -> bool:
        sql, params = overlap_probe(table, frame)
        self.cur.execute(sql, parameters=tuple(params))
        return bool(self.cur.fetchall())

    def _delete_days(self, table: Table, dataset: str, instrument_ids: list[int], start: dt.datetime,
                     end: dt.datetime, equals: dict[str, Any]) -> int:
        if table.name in lean.LAYOUTS:  # a view: the rows go from its hypertable hdi_<table>
            try:
                return lean.delete_days(self, table, dataset, instrument_ids, start, end, equals)
            except StoreError:
                raise
            except Exception as e:
                raise self._fail("delete", e) from None
        delete_sql, params = delete_days_sql(table, dataset, instrument_ids, start, end, equals)
        try:  # ADBC reports no row count for a DELETE: count what it returns
            self.cur.execute(f"WITH gone AS ({delete_sql} RETURNING 1) SELECT count(*) FROM gone",
                             parameters=tuple(params))
            rows = self.cur.fetchall()
        except Exception as e:
            raise self._fail("delete", e) from None
        return int(rows[0][0]) if rows else 0

    def _merge(self, table: Table, arrow: Any, on_conflict: str) -> int:
        """Stage the rows, then INSERT ... ON CONFLICT; returns the rows inserted or updated. The
        rows it inserted are counted per key from its RETURNING (``xmax = 0``: a row this statement
        created, not one it updated), so a concurrent writer's rows are never counted twice."""
        stage = f"hdi_stage_{table.name}"
        self.cur.adbc_ingest(stage, arrow, mode="replace", temporary=True)
        cols = ", ".join(ident(c) for c in table.names)
        key = ", ".join(ident(k) for k in table.key)
        if on_conflict == "update":
            sets = ", ".join(f"{ident(c)} = EXCLUDED.{ident(c)}" for c in table.names if c not in table.key)
            action = f"DO UPDATE SET {sets}"
        else:
            action = "DO NOTHING"
        insert = f"INSERT INTO {ident(table.name)} ({cols}) SELECT {cols} FROM pg_temp.{stage} ON CONFLICT ({key}) {action}"
        if table.name not in DATA_TABLES:  # symbology: no row counts
            self.cur.execute(insert)
            inserted = self.cur.rowcount
            self.cur.execute(f"DROP TABLE pg_temp.{stage}")
            return int(inserted) if inserted is not None and inserted >= 0 else 0
        tc, edge = ident(table.time_column), ident(counts.edge_column(table))
        gran = "granularity" if "granularity" in table.names else "''"
        self.cur.execute(
            f"WITH ins AS ({insert} RETURNING dataset, instrument_id, {gran} AS granularity, "
            f"{tc} AS t, {edge} AS edge, (xmax = 0) AS fresh) "
            f"SELECT CAST($1 AS text) AS table_name, dataset, CAST(instrument_id AS bigint) AS instrument_id, "
            f"granularity, CAST(timezone('UTC', t) AS date) AS day, "
            f"count(*) FILTER (WHERE fresh) AS \"rows\", "
            f"CAST(min({_epoch_ns('edge', edge != tc)}) FILTER (WHERE fresh) AS bigint) AS first_ns, "
            f"CAST(max({_epoch_ns('edge', edge != tc)}) FILTER (WHERE fresh) AS bigint) AS last_ns, "
            f"count(*) AS affected FROM ins GROUP BY 2, 3, 4, 5", parameters=(table.name,))
        got: pl.DataFrame = self.cur.fetch_polars()
        self.cur.execute(f"DROP TABLE pg_temp.{stage}")
        self.counts.add_stats(got.filter(pl.col("rows") > 0))
        return int(got["affected"].sum()) if got.height else 0

    def upsert(self, table: Table, row: dict[str, Any]) -> None:
        cols = table.names
        placeholders = ", ".join(f"${i + 1}" for i in range(len(cols)))
        sets = ", ".join(f"{ident(c)} = EXCLUDED.{ident(c)}" for c in cols if c not in table.key)
        try:
            self.cur.execute(
                f"INSERT INTO {ident(table.name)} ({', '.join(ident(c) for c in cols)}) VALUES ({placeholders}) "
                f"ON CONFLICT ({', '.join(ident(k) for k in table.key)}) DO UPDATE SET {sets}",
                parameters=tuple(row[c] for c in cols),
            )
        except Exception as e:
            raise self._fail("ledger write", e) from None

    def _write_counts(self, deltas: pl.DataFrame, scopes: list[counts.Scope]) -> None:
        try:
            for scope in scopes:
                recount = lean.recount_sql(scope) if scope.table in lean.LAYOUTS else \
                    counts.recount_sql(scope, "timescale")
                for sql, params in recount:
                    self.cur.execute(sql, parameters=tuple(params))
            if deltas.height:
                stage = "hdi_stage_row_counts"
                self.cur.adbc_ingest(stage, deltas.to_arrow(), mode="replace", temporary=True)
                self.cur.execute(counts.add_sql(f"pg_temp.{stage}"))
                self.cur.execute(f"DROP TABLE pg_temp.{stage}")
        except Exception as e:
            raise self._fail("row counts write", e) from None

    def _cancel(self) -> None:
        if not self._open:
            return  # ended (a second signal while it rolled back): nothing to stop
        try:
            self.conn.cancel()  # PQcancel: the running statement fails with "canceling statement due to user request"
        except Exception:
            if self._open:
                raise
            return  # closed meanwhile
        self.store.cancel_registering()  # a new source code this transaction's write is registering

    def commit(self) -> None:
        if not self._open:
            return
        try:
            self.conn.commit()
        except Exception as e:
            raise self._fail("commit", e) from None
        finally:
            self._close()

    def rollback(self) -> None:
        if not self._open:
            return
        try:
            self.conn.rollback()
        except Exception:  # noqa: BLE001 - the connection may be gone; nothing was committed
            pass
        finally:
            self._close()

    def _close(self) -> None:
        self._open = False
        for obj in (self.cur, self.conn):
            try:
                obj.close()
            except Exception:  # noqa: BLE001
                pass
