"""The embedded store: one DuckDB file, no server. The default when no store is configured.

Same logical schema and semantics as TimescaleDB. Data tables carry no unique index (DuckDB's ART
indexes live in memory and would grow with the table); idempotency comes from the write path
instead: DuckDB allows one writing process per file, and every write runs in one transaction that
appends when the frame's key range holds no stored row, and otherwise inserts only the rows whose
natural key is absent (an anti-join restricted to the frame's time range).
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import polars as pl

from hdi._tables import DATA_TABLES, Table
from hdi.errors import StoreError
from hdi.store import counts
from hdi.store import duckdb_share as share
from hdi.store.base import Store, Transaction, WriteResult
from hdi.store.check import column_problem, damaged, version_problem
from hdi.store.frames import time_bounds
from hdi.store.migrate import MIGRATIONS_TABLE, migrations
from hdi.store.schema import ALL_TABLES, conform, create_table_sql, ident
from hdi.store.sql import delete_days_sql, overlap_probe

log = logging.getLogger(__name__)

def parse_path(url: str) -> Path:
    """``duckdb:///abs/file.duckdb`` -> /abs/file.duckdb; ``duckdb://rel/file.duckdb`` -> rel/..."""
    rest = url[len("duckdb://"):]
    while rest.startswith("//"):
        rest = rest[1:]
    if not rest or rest.endswith("/"):
        raise StoreError(f"store URL '{url}' names no file; use duckdb:///path/to/file.duckdb")
    return Path(rest).absolute()


# DuckDB's file layout: a main header and two database headers of 4 KiB each, then blocks of
# ``block_size`` bytes, block n at _HEADER_BYTES + n * block_size.
_HEADER_BYTES = 3 * 4096


@functools.cache
def _duckdb_types(table: str) -> dict[str, str]:
    """Column -> type as DuckDB's information_schema names it, for hdi's own DDL of the table."""
    import duckdb

    con = duckdb.connect(":memory:")
    try:
        con.execute(create_table_sql(ALL_TABLES[table], "duckdb"))
        return dict(con.execute("SELECT column_name, data_type FROM information_schema.columns "
                                "WHERE table_name = $1 ORDER BY ordinal_position", [table]).fetchall())
    finally:
        con.close()


def close_all() -> None:
    """Detach and close every DuckDB store of this process (normally none is attached)."""
    share.close()


class DuckDBStore(Store):
    kind = "duckdb"

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.path = parse_path(url)
        self._migrated = False
        self._cache: dict[Any, Any] = {}
        self._cache_token: object = None

    # -- connections --------------------------------------------------------------------------
    # The file is attached only while a call uses it (see hdi/store/duckdb_share.py): other
    # processes read it between our calls, and our ingest writes it between their reads.
    def _acquire(self, write: bool) -> Any:
        """Attach the file (waiting while another process holds it); every call needs ``_release``."""
        if not write and not self.path.exists():
            raise StoreError(f"no DuckDB store at {self.path}: nothing has been ingested there yet")
        if write and not self.path.exists():
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                blocker = next((p for p in self.path.parents if p.exists()), None)
                why = f"{blocker} is a file, not a folder" if blocker is not None and not blocker.is_dir() else \
                    (e.strerror or e)
                raise StoreError(f"cannot create DuckDB store {self.path}: {why}") from None
        return share.acquire(self.path, write)

    @contextmanager
    def session(self, write: bool = False) -> Iterator[Any]:
        """Hold the file attached for a block of calls (one read API call, one ``hdi status``)."""
        if not write and not self.path.exists():
            yield None  # nothing to hold: each read says there is no store (or finds no table)
            return
        with share.LOCK:
            con = self._acquire(write)
            try:
                yield con
            finally:
                share.release(self.path)

    @contextmanager
    def hold(self) -> Iterator[None]:
        """Keep the file attached (read-only) from here to the block's end: the reads inside skip
        the attach and detach of each call and reuse what they looked up (``hdi.hold``). Other
        processes can read the file meanwhile; a writer waits until the block ends. Other threads of
        this process share the attachment."""
        if not self.path.exists():
            yield  # nothing to hold: each read says there is no store
            return
        with share.LOCK:
            self._acquire(write=False)
        try:
            yield
        finally:
            with share.LOCK:
                share.release(self.path)

    def read_cache(self) -> dict[Any, Any] | None:
        """Lookups a read may keep (symbol resolution, raw-symbol intervals, definitions, tables) while
        the file is attached read-only, or None when it is not. They stay valid for as long as the
        file's content is unchanged: within one attachment (nothing can change the file then) and
        across attachments whose :func:`~hdi.store.duckdb_share.content_token` is the same; a write
        from any process or connection changes the token and starts the lookups afresh."""
        token = share.attachment(self.path)
        if token is None:
            return None
        if token != self._cache_token or len(self._cache) > 1000:
            self._cache, self._cache_token = {}, token
        return self._cache

    def close(self) -> None:
        share.close(self.path)
        self._known_tables.clear()

    def _has_table(self, name: str) -> bool:
        if not self.path.exists():
            return False
        with self.session() as con:
            cache = self.read_cache()  # a no stays true while the file's content is unchanged
            if cache is not None and ("no table", name) in cache:
                return False
            rows = con.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_name = $1 AND table_schema = 'main' "
                "AND table_catalog = $2", [name, share.ALIAS]).fetchall()
            if not rows[0][0] and cache is not None:
                cache["no table", name] = True
        return bool(rows[0][0])

    # -- schema -------------------------------------------------------------------------------
    def migrate(self) -> None:
        if self._migrated:
            return
        with self.session(write=True) as con:
            self._migrate(con)

    def _migrate(self, con: Any) -> None:
        _run(con, f"CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} (version INTEGER PRIMARY KEY, "
                    "applied_at TIMESTAMPTZ NOT NULL DEFAULT now())")
        done = {r[0] for r in con.execute(f"SELECT version FROM {MIGRATIONS_TABLE}").fetchall()}
        pending = [(v, statements) for v, statements in migrations("duckdb") if v not in done]
        # A new store applies every migration in one transaction (one commit instead of one per
        # version); an existing store one transaction per version, as always.
        for group in ([pending] if not done and pending else [[p] for p in pending]):
            _run(con, "BEGIN TRANSACTION")
            try:
                for version, statements in group:
                    for sql in statements:
                        _run(con, sql)
                    _run(con, f"INSERT INTO {MIGRATIONS_TABLE} (version) VALUES ($1)", [version])
                _run(con, "COMMIT")
            except Exception:
                _run(con, "ROLLBACK")
                raise
            for version, _ in group:
                log.info("DuckDB store %s: applied migration %d", self.path, version)
        self._migrated = True

    # -- checks -------------------------------------------------------------------------------
    def _check(self, tables: list[Table]) -> None:
        import duckdb

        if not self.path.exists():
            return  # a new store: nothing to damage
        where = f"DuckDB store {self.path}"
        alias = share.ALIAS
        try:
            with self.session() as con:  # attached read-only, waiting while another process writes
                try:
                    present = {r[0] for r in con.execute(
                        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' "
                        "AND table_catalog = $1", [alias]).fetchall()}
                    versions = [r[0] for r in con.execute(f"SELECT version FROM {MIGRATIONS_TABLE}").fetchall()] \
                        if MIGRATIONS_TABLE in present else []
                    problem = version_problem(where, versions)
                    if problem is not None:
                        raise problem
                    block_size = con.execute("SELECT block_size FROM pragma_database_size() WHERE database_name = $1",
                                             [alias]).fetchone()[0]
                    for t in tables:
                        if t.name not in present:
                            if versions:
                                raise damaged(where, f"table '{t.name}' is missing although migration "
                                                     f"{max(versions)} is recorded as applied")
                            continue
                        found = dict(con.execute(
                            "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = "
                            "'main' AND table_catalog = $1 AND table_name = $2 ORDER BY ordinal_position",
                            [alias, t.name]).fetchall())
                        why = column_problem(t, found, _duckdb_types(t.name))
                        if why is not None:
                            raise damaged(where, why)
                        # The file must hold every block the table's metadata points to (a file cut
                        # short opens fine: the catalog sits at its start) ...
                        last = con.execute("SELECT max(block_id) FROM pragma_storage_info($1) WHERE block_id >= 0",
                                           [f"{alias}.main.{t.name}"]).fetchone()[0]
                        size = self.path.stat().st_size
                        if last is not None and size < _HEADER_BYTES + (last + 1) * block_size:
                            raise damaged(where, f"the file is {size:,} bytes but table '{t.name}' has data up to "
                                                 f"byte {_HEADER_BYTES + (last + 1) * block_size:,}: it was cut short")
                        # ... and every block reads back with its checksum: hash() reads every value of
                        # every column (min/max and count may be answered from statistics)
                        con.execute(f"SELECT count(*), bit_xor(hash(COLUMNS(*))) FROM {ident(t.name)}").fetchall()
                except duckdb.Error as e:
                    raise damaged(where, str(e).splitlines()[0]) from None
        except share.CannotOpen as e:  # not a database, or unreadable
            raise damaged(where, e.reason) from None

    # -- reads --------------------------------------------------------------------------------
    def _fetch(self, sql: str, params: Sequence[Any] = ()) -> pl.DataFrame:
        import duckdb

        try:
            with self.session() as con:
                # Through the Arrow C stream, not .pl(): .pl() imports pyarrow (~0.13 s per `hdi query`)
                return pl.DataFrame(con.sql(sql, params=list(params)))
        except duckdb.Error as e:
            raise StoreError(f"DuckDB store {self.path}: {str(e).splitlines()[0]}") from None

    def select_lazy(
        self, table: str, *, start: dt.datetime | None = None, end: dt.datetime | None = None,
        selections: pl.DataFrame | None = None, equals: dict[str, Any] | None = None,
    ) -> pl.LazyFrame:
        # the rows fetched now; their typing (normalise) joins the reader's own Polars pass
        return self._sql_select(table, start=start, end=end, selections=selections, equals=equals)

    def _price_sql(self, column: str) -> str:
        return ident(column)

    def _fix_prices(self, frame: pl.DataFrame, table: Table) -> pl.DataFrame:
        return frame

    # -- writes -------------------------------------------------------------------------------
    def _begin(self) -> _DuckTxn:
        return _DuckTxn(self)


# DuckDB keeps the blocks a transaction writes in its buffer pool, up to memory_limit (by default
# 80% of RAM): an ingest's RSS grew by ~27 MB per 1M trades written (20M trades: +540 MB). Those
# blocks are on disk already, so while a write transaction runs the pool is capped and they are
# evicted instead; the default limit comes back when the transaction ends.
_WRITE_CAP = "SET memory_limit = '256MB'"


class _DuckTxn(Transaction):
    """A DuckDB transaction: the file is attached read-write from BEGIN to COMMIT or ROLLBACK
    only, under the process-wide lock (the statements of concurrent threads must not interleave)."""

    def __init__(self, store: DuckDBStore) -> None:
        super().__init__()
        self.store = store
        self._open = False
        # set when the transaction starts to end: a cancel then has nothing to stop, and must not
        # interrupt the ROLLBACK or the DETACH (which then left the transaction aborted)
        self._ending = False
        self._cancel_lock = threading.Lock()
        share.LOCK.acquire()
        try:
            self.con = store._acquire(write=True)
        except BaseException:
            share.LOCK.release()
            raise
        try:
            _run(self.con, _WRITE_CAP)
            _run(self.con, "BEGIN TRANSACTION")
        except BaseException:
            self._end()
            raise
        self._open = True
        self._chunk = False  # the transaction records an ingest chunk: the file may stay attached

    def _end(self, linger: bool = False) -> None:
        """Give the memory limit back, detach the file (the last user checkpoints; after a chunk
        it may stay attached briefly for the next one, see duckdb_share) and unlock."""
        try:
            _uncap(self.con)
            share.release(self.store.path, linger=linger)
        finally:
            share.LOCK.release()

    def _guard(self, what: str, fn: Any) -> Any:
        import duckdb

        try:
            return fn()
        except duckdb.Error as e:
            raise StoreError(f"DuckDB store {self.store.path}: {what} failed: {str(e).splitlines()[0]}") from None

    def _write(self, table: Table, frame: pl.DataFrame, on_conflict: str) -> WriteResult:
        batch = conform(frame, table, backend="duckdb")
        result: WriteResult = self._guard("write", lambda: self._write_batch(table, batch, on_conflict))
        return result

    def _write_batch(self, table: Table, frame: pl.DataFrame, on_conflict: str) -> WriteResult:
        # The SQL reads the frame as `hdi_batch`, this function's local variable, through DuckDB's
        # replacement scan, which looks in the frame that calls con.execute: so execute is called
        # right here. Not con.register(): a registered view stays in the catalog until COMMIT even
        # after unregister, keeping every batch of the transaction in memory (one 20 M-trade chunk
        # reached 3.7 GB RSS; with the replacement scan, ~1 GB whatever the chunk's size).
        n, con = frame.height, self.con
        hdi_batch = frame  # noqa: F841 - read by the SQL below
        if not self._overlaps(table, frame):
            con.execute(f"INSERT INTO {ident(table.name)} BY NAME SELECT * FROM hdi_batch").fetchall()
            return WriteResult(table.name, n, n, 0, "append")
        key = ", ".join(ident(k) for k in table.key)
        tc = ident(table.time_column)
        lo, hi = time_bounds(frame, table.time_column)
        # a data table's merge counts the rows it inserts from RETURNING (only the columns the counts need)
        cols = counts.count_columns(table) if table.name in DATA_TABLES else [table.key[0]]
        if on_conflict == "update":
            match = " AND ".join(f"t.{ident(k)} = b.{ident(k)}" for k in table.key)
            gone = _arrow_frame(con.execute(f"DELETE FROM {ident(table.name)} t USING hdi_batch b WHERE {match} "
                                            f"RETURNING {', '.join('t.' + ident(c) for c in cols)}"))
            con.execute(f"INSERT INTO {ident(table.name)} BY NAME SELECT * FROM hdi_batch").fetchall()
            if table.name in DATA_TABLES:  # a replaced row keeps its key (instrument, day, time): the rest are new
                self.counts.add_stats(counts.subtract(counts.frame_stats(table, frame),
                                                      counts.frame_stats(table, gone)))
            return WriteResult(table.name, n, n - gone.height, gone.height, "merge")
        new = _arrow_frame(con.execute(
            f"INSERT INTO {ident(table.name)} BY NAME SELECT b.* FROM hdi_batch b ANTI JOIN "
            f"(SELECT {key} FROM {ident(table.name)} WHERE {tc} >= $1 AND {tc} < $2) e USING ({key}) "
            f"RETURNING {', '.join(ident(c) for c in cols)}", [lo, hi]))
        self.counts.add(table, new)  # a data table's rows only
        return WriteResult(table.name, n, new.height, n - new.height, "merge")

    def _overlaps(self, table: Table, frame: pl.DataFrame) -> bool:
        sql, params = overlap_probe(table, frame)
        return bool(self.con.execute(sql, params).fetchall())

    def _delete_days(self, table: Table, dataset: str, instrument_ids: list[int], start: dt.datetime,
                     end: dt.datetime, equals: dict[str, Any]) -> int:
        sql, params = delete_days_sql(table, dataset, instrument_ids, start, end, equals)
        n: int = self._guard("delete", lambda: _run(self.con, sql, params))
        return n
    def _write_counts(self, deltas: pl.DataFrame, scopes: list[counts.Scope]) -> None:
        def write() -> None:
            for scope in scopes:
                for sql, params in counts.recount_sql(scope, "duckdb"):
                    _run(self.con, sql, params)
            if deltas.height:
                hdi_counts = deltas  # noqa: F841 - read by the SQL below (replacement scan)
                self.con.execute(counts.add_sql("hdi_counts")).fetchall()

        self._guard("row counts", write)

    def upsert(self, table: Table, row: dict[str, Any]) -> None:
        self._chunk = table.name == "ingest_chunks"  # a run's row (its end) detaches at once
        cols = table.names
        placeholders = ", ".join(f"${i + 1}" for i in range(len(cols)))
        self._guard("ledger write", lambda: _run(
            self.con, f"INSERT OR REPLACE INTO {ident(table.name)} ({', '.join(ident(c) for c in cols)}) "
                      f"VALUES ({placeholders})", [row[c] for c in cols]))

    def _cancel(self) -> None:
        with self._cancel_lock:
            if self._open and not self._ending:
                self.con.interrupt()  # thread-safe; the running statement raises InterruptException

    def _stop_cancels(self) -> None:
        with self._cancel_lock:  # an interrupt being sent has been sent when this returns
            self._ending = True

    def _roll_back(self) -> None:
        """ROLLBACK, again if an interrupt sent just before the transaction began to end stopped it."""
        import duckdb

        for _ in range(3):
            try:
                _run(self.con, "ROLLBACK")
                return
            except duckdb.InterruptException:
                continue
            except Exception:  # noqa: BLE001 - nothing to roll back (a failed commit ended it already)
                return

    def commit(self) -> None:
        if self._open:
            try:
                self._guard("commit", lambda: _run(self.con, "COMMIT"))
            except BaseException:
                self._stop_cancels()
                self._roll_back()
                raise
            finally:
                self._stop_cancels()
                self._open = False
                self._end(linger=self._chunk)

    def rollback(self) -> None:
        if self._open:
            self._stop_cancels()
            try:
                self._roll_back()
            finally:
                self._open = False
                self._end()


def _arrow_frame(result: Any) -> pl.DataFrame:
    """A statement's RETURNING rows as a frame (through Arrow; DuckDB's hint to use ``con.sql`` is for
    queries, and a DML statement must run exactly once, here)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        frame = pl.from_arrow(result.to_arrow_table())
    if not isinstance(frame, pl.DataFrame):  # an Arrow table always converts to a frame
        raise StoreError("DuckDB returned no table")
    return frame


def _uncap(con: Any) -> None:
    """Give DuckDB its default memory limit back (see ``_WRITE_CAP``)."""
    try:
        _run(con, "RESET memory_limit")
    except Exception:  # noqa: BLE001 - a connection that failed has nothing to reset
        pass


def _run(con: Any, sql: str, params: list[Any] | None = None) -> int:
    """Execute and consume the result (DuckDB 2 requires it before the next statement).

    Returns the first value of the first row: the row count of an INSERT or DELETE, else 0.
    """
    rows = con.execute(sql, params).fetchall() if params is not None else con.execute(sql).fetchall()
    return _first(rows)


def _first(rows: list[Any]) -> int:
    """The first value of the first row when it is an int (an INSERT's or DELETE's row count), else 0."""
    first = rows[0][0] if rows and rows[0] else None
    return int(first) if isinstance(first, int) else 0
