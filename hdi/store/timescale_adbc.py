"""A thin DB-API-like layer over ADBC's low-level PostgreSQL objects, for :mod:`hdi.store.timescale`.

Why not ``adbc_driver_manager.dbapi``: importing it imports ``pyarrow.dataset``, which imports pandas
when pandas is installed; that alone took ~0.35 s of every ``hdi query`` process (0.6 s of 1.0 s
with the rest of the imports; measured with ``python -X importtime``). The low-level objects
(``AdbcDatabase``, ``AdbcConnection``, ``AdbcStatement``) import neither pyarrow nor pandas:
results are read straight into Polars through the Arrow C stream interface, and parameters are
bound from a one-row Polars frame.

Why one :class:`Database` per store: creating an ``AdbcDatabase`` costs ~0.1-0.15 s (the driver
reads the server's type catalog); connections made from a shared one cost ~10 ms. A store that
opened a database per transaction paid that on every chunk of an ingest.

Only the DB-API subset :mod:`hdi.store.timescale` uses is offered: ``cursor()``, ``execute(sql,
parameters=)``, ``fetchall`` / ``fetchone`` / ``fetch_polars``, ``description``, ``rowcount``,
``adbc_ingest``, ``commit`` / ``rollback`` / ``close``. Errors are ADBC's own exception classes.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from typing import Any

import polars as pl

_PLACEHOLDER = re.compile(r"\$(\d+)")
_MODES = ("append", "create", "replace", "create_append")


class Database:
    """One ``AdbcDatabase`` for a URL, created on first use and shared by every connection."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._db: Any = None
        self._lock = threading.Lock()

    def connect(self, *, autocommit: bool) -> Connection:
        """A new connection (its own server session) from the shared database."""
        import adbc_driver_manager

        with self._lock:
            if self._db is None:
                import adbc_driver_postgresql

                self._db = adbc_driver_postgresql.connect(self.url)
            db = self._db
        return Connection(adbc_driver_manager.AdbcConnection(db), autocommit=autocommit)

    def close(self) -> None:
        """Release the database; kept (and still usable) while a connection made from it is open."""
        with self._lock:
            if self._db is None:
                return
            try:
                self._db.close()
            except RuntimeError:  # ADBC refuses while a connection (a transaction elsewhere) is open
                return
            except Exception:  # noqa: BLE001 - the driver failed to release it: nothing more to do
                pass
            self._db = None


class Connection:
    """An ADBC connection; autocommit off means every statement runs in one open transaction."""

    def __init__(self, conn: Any, *, autocommit: bool) -> None:
        self._conn = conn
        if not autocommit:
            conn.set_autocommit(False)

    def cursor(self) -> Cursor:
        return Cursor(self._conn)

    def commit(self) -> None:
        self._conn.commit()

    def rollback(self) -> None:
        self._conn.rollback()

    def cancel(self) -> None:
        """Cancel the statement running on this connection (callable from another thread)."""
        self._conn.cancel()

    def close(self) -> None:
        self._conn.close()


class Cursor:
    """Runs one statement at a time; the whole result is read into a Polars frame."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn
        self._frame: pl.DataFrame | None = None
        self._next = 0
        self.rowcount = -1

    def execute(self, sql: str, parameters: Sequence[Any] | None = None, *, copy: bool = True) -> Cursor:
        """Run ``sql`` with ``$1, $2, ...`` bound to ``parameters``; keep its rows.

        ``copy=False`` (a statement without parameters): the driver runs it as one statement
        rather than as ``COPY (...) TO STDOUT``; with its values written in as literals, a small
        read then takes one round trip to the server (hdi/_readsql.py)."""
        import adbc_driver_manager

        sql, params = _inline_nulls(sql, list(parameters or ()))
        stmt = adbc_driver_manager.AdbcStatement(self._conn)
        try:
            if not copy:
                stmt.set_options(**{"adbc.postgresql.use_copy": "false"})
            stmt.set_sql_query(sql)
            if params:
                # one row built at once: the same dtypes as one column per value, 10x faster (~40 us)
                frame = pl.DataFrame([tuple(params)], schema=[f"p{i}" for i in range(len(params))], orient="row")
                stmt.bind_stream(frame.__arrow_c_stream__())
            handle, self.rowcount = stmt.execute_query()
            self._frame = pl.DataFrame(handle)
            self._next = 0
        finally:
            stmt.close()
        return self

    @property
    def description(self) -> list[tuple[Any, ...]] | None:
        """One 7-tuple per result column (name, dtype, None x 5); None when there are no columns."""
        if self._frame is None or self._frame.width == 0:
            return None
        return [(n, t, None, None, None, None, None) for n, t in self._frame.schema.items()]

    def fetch_polars(self) -> pl.DataFrame:
        """The result as a Polars frame (PostgreSQL ``numeric`` is an ``arrow.opaque`` extension column)."""
        return self._frame if self._frame is not None else pl.DataFrame()

    def fetchall(self) -> list[tuple[Any, ...]]:
        rows = self.fetch_polars().rows()[self._next:]
        self._next += len(rows)
        return rows

    def fetchone(self) -> tuple[Any, ...] | None:
        frame = self.fetch_polars()
        if self._next >= frame.height:
            return None
        self._next += 1
        return frame.row(self._next - 1)

    def adbc_ingest(self, table_name: str, data: Any, mode: str = "create", *, temporary: bool = False) -> int:
        """Bulk-load Arrow data (anything with ``__arrow_c_stream__``) by binary COPY; return the row count."""
        import adbc_driver_manager

        if mode not in _MODES:
            raise ValueError(f"mode '{mode}' is not one of {', '.join(_MODES)}")
        opts = adbc_driver_manager.StatementOptions
        stmt = adbc_driver_manager.AdbcStatement(self._conn)
        try:
            stmt.set_options(**{opts.INGEST_TARGET_TABLE.value: table_name,
                                opts.INGEST_MODE.value: f"adbc.ingest.mode.{mode}",
                                opts.INGEST_TEMPORARY.value: "true" if temporary else "false"})
            stmt.bind_stream(data.__arrow_c_stream__())
            self.rowcount = stmt.execute_update()
        finally:
            stmt.close()
        self._frame = None
        return self.rowcount

    def close(self) -> None:
        self._frame = None


def _inline_nulls(sql: str, params: list[Any]) -> tuple[str, list[Any]]:
    """Write ``NULL`` for the placeholders bound to None and renumber the others.

    Polars exports an all-null column in a form ADBC rejects, and a typed null would make PostgreSQL
    see a parameter of the wrong type; a literal NULL takes its type from where it stands. hdi's SQL
    carries no ``$`` in literals (values are always bound), so placeholders are found exactly.
    """
    if all(p is not None for p in params):
        return sql, params
    number: dict[int, int] = {}
    kept: list[Any] = []
    for i, p in enumerate(params, start=1):
        if p is not None:
            kept.append(p)
            number[i] = len(kept)

    def sub(m: re.Match[str]) -> str:
        i = int(m.group(1))
        return "$" + str(number[i]) if i in number else "NULL"  # a placeholder number, never a value

    return _PLACEHOLDER.sub(sub, sql), kept
