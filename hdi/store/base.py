"""The store contract: one interface, two backends (DuckDB embedded, TimescaleDB via ADBC), and the
one a further backend implements (the abstract methods below, each documented in one line).

Semantics every backend keeps (the contract tests in tests/store/ check them on both):

- ``write`` is atomic and idempotent: the frame's rows, its symbology rows and the chunk's ledger row
  commit in one transaction or not at all. A row whose natural key is already stored is skipped
  (``on_conflict="ignore"``) or replaces the stored one (``"update"``). When the frame's key range holds
  no stored row, rows are appended directly (bulk COPY / INSERT); otherwise they are merged.
- Reads return Polars frames with the table's columns: exact ``Decimal`` prices, ``Datetime("ns",
  "UTC")`` timestamps rebuilt from the ``*_ns`` columns where the table has them.
- Every SQL value is a bound parameter; identifiers come from the fixed table definitions only.

The contract only: the SQL it builds is in :mod:`hdi.store.sql`, frame helpers in
:mod:`hdi.store.frames`, the ledger tables, records and reads in :mod:`hdi.store.ledger`.
"""

from __future__ import annotations

import datetime as dt
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar

import polars as pl

from hdi import _interrupt as interrupt
from hdi._redaction import redact_url, remember
from hdi._retrying import RetryPolicy
from hdi._tables import DATA_TABLES, SYMBOLOGY, Table
from hdi.errors import ConcurrentWriteError, StoreError, allowed_list
from hdi.store import counts, ledger
from hdi.store.frames import empty_frame, normalise, normalise_exprs
from hdi.store.ledger import INGEST_CHUNKS, INGEST_RUNS, ChunkRecord, RunRecord
from hdi.store.schema import ALL_TABLES
from hdi.store.sql import select_sql, symbology_sql

log = logging.getLogger(__name__)
# another writer stored some of the same keys first: the write is redone at once (its keys now conflict)
CONCURRENT_WRITE_RETRY = RetryPolicy(attempts=3, base_delay=0.0, jitter=0.0)

ON_CONFLICT = ("ignore", "update")


@dataclass(frozen=True)
class WriteResult:
    table: str
    rows: int
    inserted: int
    already_present: int
    path: str  # "append" (range was new), "merge" (staged and merged) or "empty"


class Transaction(ABC):
    """A backend's open write transaction; counts what its writes inserted and skipped."""

    def __init__(self) -> None:
        self.inserted = 0
        self.already_present = 0
        self.results: list[WriteResult] = []
        self.cancelled = False
        self.deleted = 0  # data rows removed by delete_days
        # symbols -> instrument ids from the store's symbology (set by Store.transaction)
        self.symbol_ids: Callable[[str, Sequence[str], dt.datetime, dt.datetime], list[int]] | None = None
        self.counts = counts.Tracker()  # row_counts changes, written by flush_counts() before commit

    def write(self, table: str, frame: pl.DataFrame, *, on_conflict: str = "ignore") -> WriteResult:
        """Write one batch of rows idempotently (see :meth:`Store.write`)."""
        t = _table(table)
        if on_conflict not in ON_CONFLICT:
            raise StoreError(f"on_conflict '{on_conflict}' is not allowed; allowed: {allowed_list(ON_CONFLICT)}")
        if frame.height == 0:
            result = WriteResult(t.name, 0, 0, 0, "empty")
        else:
            result = self._write(t, frame, on_conflict)
            log.info("wrote %s: %d rows, %d new, %d already present (%s)", t.name, result.rows,
                     result.inserted, result.already_present, result.path)
        if t.name in DATA_TABLES:  # ledger-side tables (ingest_days) do not count as loaded rows
            self.inserted += result.inserted
            self.already_present += result.already_present
            if result.path == "append":  # the range held no stored row: every row of the frame was inserted
                self.counts.add(t, frame)
        self.results.append(result)
        return result

    def add_symbology(self, frame: pl.DataFrame) -> None:
        """Add symbology rows; rows already known are kept as they are."""
        if frame.height:
            self._write(SYMBOLOGY, frame, "ignore")

    def delete_days(self, table: str, *, dataset: str, symbols_or_instrument_ids: Sequence[int | str],
                    start: dt.datetime, end: dt.datetime, equals: dict[str, Any] | None = None) -> int:
        """Delete the stored rows of ``table`` for ``dataset``'s instruments with the table's time
        column in [start, end): the only path that deletes data rows. A restated day is replaced
        exactly by this delete followed by the day's new rows, in the same transaction as the chunk's
        ledger rows (after a crash the store holds the old day or the new one, never a mix).

        Call it before the transaction writes rows of ``table`` (the lake store refuses otherwise).

        Args:
            table: a data table name.
            dataset: only this dataset's rows (instrument ids are per dataset).
            symbols_or_instrument_ids: instrument ids (int), or symbols (str) resolved to the
                instruments the store's symbology maps them to on any day of [start, end).
            start, end: the time range (UTC), end exclusive; a restatement passes whole UTC days.
            equals: further column = value restrictions (``{"granularity": "1m"}`` in a table
                holding several bar sizes or snapshot intervals).

        Returns:
            The number of rows deleted.

        Raises:
            StoreError: not a data table, an unknown column, or the database refused.
        """
        t = _table(table)
        if t.name not in DATA_TABLES:
            raise StoreError(f"delete_days: '{table}' is not a data table; allowed: {allowed_list(DATA_TABLES)}")
        for c in equals or {}:
            if c not in t.names:
                raise StoreError(f"delete_days: table '{table}' has no column '{c}'; it has: {', '.join(t.names)}")
        if start >= end:
            raise StoreError(f"delete_days: start {start} is not before end {end}")
        ids = {int(x) for x in symbols_or_instrument_ids if not isinstance(x, str)}
        symbols = [x for x in symbols_or_instrument_ids if isinstance(x, str)]
        if symbols:
            if self.symbol_ids is None:
                raise StoreError("delete_days: symbols given but this transaction cannot read the symbology; "
                                 "pass instrument ids")
            ids |= set(self.symbol_ids(dataset, symbols, start, end))
        if not ids:
            return 0
        n = self._delete_days(t, dataset, sorted(ids), start, end, dict(equals or {}))
        # the deleted days' row_counts are recounted at commit (their rows after this delete and the
        # writes that follow it in the transaction)
        lo, hi = (x if x.tzinfo else x.replace(tzinfo=dt.UTC) for x in (start, end))
        self._touch(t, dataset, sorted(ids), lo.astimezone(dt.UTC).date(),
                    (hi.astimezone(dt.UTC) - dt.timedelta(microseconds=1)).date())
        log.info("deleted %s: %d rows of %s, %d instrument(s), [%s, %s)", t.name, n, dataset, len(ids), start, end)
        self.deleted += n
        return n

    @abstractmethod
    def _delete_days(self, table: Table, dataset: str, instrument_ids: list[int], start: dt.datetime,
                     end: dt.datetime, equals: dict[str, Any]) -> int:
        """Delete ``dataset``'s rows of ``instrument_ids`` with the time column in [start, end) and the
        ``equals`` values; return how many."""

    @abstractmethod
    def _write(self, table: Table, frame: pl.DataFrame, on_conflict: str) -> WriteResult:
        """Conform and write one non-empty batch. A data-table write on the ``append`` path is
        counted by :meth:`write`; a merge must count what it inserted itself (``self.counts.add``
        / ``add_stats``) or :meth:`_touch` the keys it wrote (see :mod:`hdi.store.counts`)."""

    # -- row counts (hdi/store/counts.py) ---------------------------------------------------------
    def _touch(self, table: Table | str, dataset: str, instrument_ids: Sequence[int] | None,
               first_day: dt.date, last_day: dt.date) -> None:
        """Stored rows of ``table`` changed for these keys in a way no count follows (a delete, a
        merge that does not count what it inserted): at commit their ``row_counts`` are recounted
        from the table inside this transaction. ``instrument_ids`` None: every instrument of the
        dataset; days are UTC and inclusive. Every mutation path that is not an append calls this
        (or counts exactly), so the counts stay equal to the stored rows."""
        name = table.name if isinstance(table, Table) else table
        if name not in DATA_TABLES or (instrument_ids is not None and not instrument_ids):
            return
        ids = tuple(sorted({int(i) for i in instrument_ids})) if instrument_ids is not None else None
        self.counts.touch(counts.Scope(name, dataset, ids, first_day, last_day))

    def _touch_rows(self, table: Table, frame: pl.DataFrame) -> None:
        """:meth:`_touch` the keys (dataset, instruments, days) of a frame of ``table`` rows."""
        if table.name not in DATA_TABLES:
            return
        for scope in counts.scopes_of(table, frame):
            self.counts.touch(scope)

    def flush_counts(self) -> None:
        """Write this transaction's ``row_counts`` changes, inside it (the store contract calls this
        right before :meth:`commit`)."""
        if self.counts.empty:
            return
        self._write_counts(self.counts.deltas(), list(self.counts.scopes))
        self.counts.clear()

    @abstractmethod
    def _write_counts(self, deltas: pl.DataFrame, scopes: list[counts.Scope]) -> None:
        """Recount ``scopes`` (replacing their count rows), then add ``deltas`` (``row_counts``
        columns; keys of no scope) to the stored counts, in this transaction."""

    @abstractmethod
    def upsert(self, table: Table, row: dict[str, Any]) -> None:
        """Insert or replace one ledger row by key."""

    def cancel(self) -> None:
        """Cancel the statement running in this transaction; called from another thread (SIGINT /
        SIGTERM, see :mod:`hdi._interrupt`). The statement fails and the transaction rolls back."""
        self.cancelled = True
        self._cancel()

    @abstractmethod
    def _cancel(self) -> None:
        """Ask the database to stop the running statement (a no-op when it is idle)."""

    @abstractmethod
    def commit(self) -> None:
        """Commit every write of the transaction; the transaction ends."""

    @abstractmethod
    def rollback(self) -> None:
        """Undo every write of the transaction; the transaction ends (never raises for a dead connection)."""


def _table(name: str) -> Table:
    try:
        return ALL_TABLES[name]
    except KeyError:
        raise StoreError(f"unknown table '{name}'; allowed: {allowed_list(ALL_TABLES)}") from None


class Store(ABC):
    """A place hdi writes validated frames to and reads them back from."""

    kind: ClassVar[str]

    def __init__(self, url: str) -> None:
        self.url = url
        remember(url)  # its password is a known secret for every message from now on
        self._known_tables: set[str] = set()

    def has_table(self, name: str) -> bool:
        """Whether the store has the table (False for a store nothing was written to yet)."""
        if name in self._known_tables:  # tables are never dropped by hdi: a yes stays a yes
            return True
        if self._has_table(name):
            self._known_tables.add(name)
            return True
        return False

    @contextmanager
    def session(self, write: bool = False) -> Iterator[Any]:
        """Hold the store for a block of reads (one API call): the DuckDB file is attached once for
        the block, and released when it ends. Nothing to hold for a server store."""
        yield None

    @contextmanager
    def hold(self) -> Iterator[None]:
        """Keep the store open across the calls of a block (``hdi.hold``): the DuckDB file stays
        attached read-only until the block ends. Nothing to hold for a server store (its read
        connection lasts for the process)."""
        yield

    def read_cache(self) -> dict[Any, Any] | None:
        """A dict a read may keep lookups in while nothing can change the store, else None (always
        None but for a DuckDB file held read-only)."""
        return None

    @property
    def display_url(self) -> str:
        """The URL with any password replaced by ``***``: the only form that may be shown."""
        return redact_url(self.url)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.display_url!r})"

    def check(self, tables: Iterable[str]) -> None:
        """Before a run's first write: the store is not damaged where the run will write.

        Checks the schema version the store records and, for each of ``tables`` (the run's target,
        symbology and ledger tables), that it exists when the migrations say it should, with
        hdi's columns and types; DuckDB also reads every data block of those tables back
        (checksummed), TimescaleDB checks the extension, hypertables and key indexes. A store
        nothing was written to yet passes. Reads only.

        Raises:
            StoreError: one line naming the store, the table and what is wrong; nothing written.
        """
        self._check([_table(t) for t in dict.fromkeys(tables)])

    # -- backend primitives -------------------------------------------------------------------
    @abstractmethod
    def _check(self, tables: list[Table]) -> None:
        """Check schema version, columns and integrity of ``tables`` as :meth:`check` says; reads only."""

    @abstractmethod
    def migrate(self) -> None:
        """Create or upgrade every table (idempotent, versioned)."""

    @abstractmethod
    def _fetch(self, sql: str, params: Sequence[Any] = ()) -> pl.DataFrame:
        """Run a read query; return its rows as a Polars frame."""

    @abstractmethod
    def _begin(self) -> Transaction:
        """Open a write transaction."""

    @abstractmethod
    def _price_sql(self, column: str) -> str:
        """SQL selecting a DECIMAL(19,9) column in a form ``_fix_prices`` turns back into Decimal."""

    @abstractmethod
    def _fix_prices(self, frame: pl.DataFrame, table: Table) -> pl.DataFrame:
        """Turn price columns as selected by ``_price_sql`` into exact Decimal columns."""

    @abstractmethod
    def close(self) -> None:
        """Release connections."""

    @abstractmethod
    def _has_table(self, name: str) -> bool:
        """Ask the database whether the table exists."""

    # -- writes -------------------------------------------------------------------------------
    @contextmanager
    def transaction(self, *, chunk: ChunkRecord | None = None,
                    run: RunRecord | None = None) -> Iterator[Transaction]:
        """One atomic write: every ``write``/``add_symbology`` inside, plus the ledger rows.

        A chunk's ``rows_loaded`` / ``rows_already_present`` are set from what the transaction
        wrote, and its ledger row commits with the data: after a crash, both or neither exist.
        Frames can be written in several batches, so memory stays bounded by the batch.

        Raises:
            StoreError: the database refused or went away (``transient`` True); nothing committed.
        """
        self.migrate()
        txn = self._begin()
        txn.symbol_ids = self.instrument_ids
        try:
            yield txn
            if chunk is not None:
                chunk.rows_loaded, chunk.rows_already_present = txn.inserted, txn.already_present
                txn.upsert(INGEST_CHUNKS, chunk.row())
            if run is not None:
                txn.upsert(INGEST_RUNS, run.row())
            txn.flush_counts()
            txn.commit()
        except BaseException as e:
            txn.rollback()
            if txn.cancelled:  # a signal cancelled the transaction (hdi._interrupt): the run stops
                log.info("transaction rolled back after a signal (%s: %s)", type(e).__name__, e)
                interrupt.check()
            raise

    def write(
        self, table: str, frame: pl.DataFrame, *, on_conflict: str = "ignore",
        symbology: pl.DataFrame | None = None, chunk: ChunkRecord | None = None,
    ) -> WriteResult:
        """Write a frame to a table idempotently, with its symbology and ledger row, atomically.

        Args:
            table: a data table name from :data:`hdi._tables.DATA_TABLES`.
            frame: rows with the table's columns (validated: no duplicate keys).
            on_conflict: ``"ignore"`` keeps stored rows, ``"update"`` replaces them.
            symbology: rows for the symbology table, written in the same transaction.
            chunk: the ledger row for the chunk these rows came from.

        Raises:
            StoreError: the frame does not fit the table, or the database refused or went away
                (then ``transient`` is True and nothing was committed).
        """
        for attempt in range(1, CONCURRENT_WRITE_RETRY.attempts + 1):
            try:
                with self.transaction(chunk=chunk) as txn:
                    if symbology is not None:
                        txn.add_symbology(symbology)
                    return txn.write(table, frame, on_conflict=on_conflict)
            except ConcurrentWriteError:
                if attempt == CONCURRENT_WRITE_RETRY.attempts:
                    raise
                log.info("concurrent writer on %s; retrying (attempt %d)", table, attempt + 1)
        raise AssertionError("unreachable")

    def record_chunk(self, chunk: ChunkRecord) -> None:
        """Upsert a ledger row on its own (failed chunks)."""
        self.migrate()
        txn = self._begin()
        try:
            txn.upsert(INGEST_CHUNKS, chunk.row())
            txn.commit()
        except BaseException:
            txn.rollback()
            raise

    def record_row(self, table: str, row: dict[str, Any]) -> None:
        """Upsert one row of a ledger table on its own, committed at once (the batch-job ledger,
        :mod:`hdi.source.batch`, writes before and after each ``batch.*`` call)."""
        t = _table(table)
        self.migrate()
        txn = self._begin()
        try:
            txn.upsert(t, row)
            txn.commit()
        except BaseException:
            txn.rollback()
            raise

    def save_run(self, run: RunRecord) -> None:
        """Upsert an ``ingest_runs`` row."""
        with self.transaction(run=run):
            pass

    def write_symbology(self, symbology: pl.DataFrame) -> None:
        """Add symbology rows (from symbology.resolve or definitions); known rows are kept."""
        with self.transaction() as txn:
            txn.add_symbology(symbology)

    # -- reads --------------------------------------------------------------------------------
    def select(
        self, table: str, *, start: dt.datetime | None = None, end: dt.datetime | None = None,
        selections: pl.DataFrame | None = None, equals: dict[str, Any] | None = None,
        columns: Sequence[str] | None = None,
    ) -> pl.DataFrame:
        """Rows of ``table`` with the time column in [start, end), optionally restricted.

        Args:
            selections: rows (dataset or null, instrument_id, from_ts, to_ts): a row of the table
                is returned when it matches one selection (same dataset unless null, same
                instrument, time in [from_ts, to_ts)). None means every instrument.
            equals: column -> value equality filters (e.g. ``{"granularity": "1d"}``).
            columns: the columns to return, default all, in table order.
        """
        return self._sql_select(table, start=start, end=end, selections=selections, equals=equals,
                                columns=columns).collect()

    def select_lazy(
        self, table: str, *, start: dt.datetime | None = None, end: dt.datetime | None = None,
        selections: pl.DataFrame | None = None, equals: dict[str, Any] | None = None,
    ) -> pl.LazyFrame:
        """:meth:`select` as a LazyFrame (a reader adds its own steps to the same Polars pass)."""
        return self.select(table, start=start, end=end, selections=selections, equals=equals).lazy()

    def _sql_select(
        self, table: str, *, start: dt.datetime | None = None, end: dt.datetime | None = None,
        selections: pl.DataFrame | None = None, equals: dict[str, Any] | None = None,
        columns: Sequence[str] | None = None,
    ) -> pl.LazyFrame:
        """:meth:`select` through :func:`select_sql` and ``_fetch``, its typing left to the collect."""
        t = _table(table)
        cols = list(columns) if columns else t.names
        for c in [*cols, *(equals or {})]:
            if c not in t.names:
                raise StoreError(f"table '{table}' has no column '{c}'; it has: {', '.join(t.names)}")
        if not self.has_table(t.name) or (selections is not None and selections.height == 0):
            return empty_frame(t, cols).lazy()
        sql, params = select_sql(t, cols, price_sql=self._price_sql, start=start, end=end,
                                 selections=selections, equals=equals)
        got = self._fix_prices(self._fetch(sql, params), t)
        schema = got.schema
        if list(schema) == cols and all(schema[c] == t.column(c).type.polars for c in cols) \
                and not any(ts in cols for ts, _ in t.ns_columns):  # (a time rebuilt from *_ns is a select)
            return got.lazy()  # already the table's columns and dtypes: no select to plan
        return got.lazy().select(normalise_exprs(schema, t, cols))

    def instrument_ids(self, dataset: str, symbols: Sequence[str], start: dt.datetime, end: dt.datetime) -> list[int]:
        """The instruments the stored symbology maps ``symbols`` of ``dataset`` to on any UTC day of
        [start, end) (symbology intervals are UTC dates, end exclusive)."""
        rows = self.symbology(list(symbols))
        if rows.height == 0:
            return []
        last = (end - dt.timedelta(microseconds=1)).date()
        got = rows.filter((pl.col("dataset") == dataset) & (pl.col("start_date") <= last)
                          & (pl.col("end_date") > start.date()))
        return sorted({int(i) for i in got.get_column("instrument_id").to_list()})

    def symbology(self, symbols: Sequence[str] | None = None) -> pl.DataFrame:
        """Symbology rows, for the given symbols (any stype) or all."""
        if not self.has_table(SYMBOLOGY.name) or (symbols is not None and not symbols):
            return empty_frame(SYMBOLOGY, SYMBOLOGY.names)
        sql, params = symbology_sql(symbols)
        return normalise(self._fetch(sql, params), SYMBOLOGY, SYMBOLOGY.names)

    def query(self, sql: str, params: Sequence[Any] = ()) -> pl.DataFrame:
        """Run a read-only SQL query of hdi's own (status reports). Never pass user text as SQL."""
        return self._fetch(sql, params)

    def chunks(self, *, status: str | None = None, chunk_ids: Sequence[str] | None = None) -> pl.DataFrame:
        """Ledger rows of ``ingest_chunks``."""
        return ledger.read_chunks(self, status=status, chunk_ids=chunk_ids)

    def runs(self, limit: int = 20) -> pl.DataFrame:
        """The most recent ``ingest_runs`` rows, newest first."""
        return ledger.read_runs(self, limit)
