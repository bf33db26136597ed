"""SQL the store contract builds for every backend: the filtered read of a table, the symbology read
and the probe for stored rows overlapping a batch. Values are always bound parameters (``$1``,
``$2`` ...); identifiers come only from the table definitions (:func:`hdi.store.schema.ident`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

import polars as pl

from hdi._tables import SYMBOLOGY, ColType, Table
from hdi.store.frames import time_bounds
from hdi.store.schema import ident


class Params:
    """Bound parameters of one statement: ``p(value)`` appends the value and returns its ``$n``."""

    def __init__(self) -> None:
        self.values: list[Any] = []

    def __call__(self, value: Any) -> str:
        self.values.append(value)
        return f"${len(self.values)}"


def selection_groups(selections: pl.DataFrame) -> dict[tuple[Any, Any, Any], list[int]]:
    """The instrument ids of ``selections`` (dataset, instrument_id, from_ts, to_ts) grouped by
    (dataset, from_ts, to_ts), in first-seen order: instruments sharing a window share one ``IN``
    list in a select (2000 ``OR`` terms took DuckDB 8 s)."""
    groups: dict[tuple[Any, Any, Any], list[int]] = {}
    # column by column: a select of the four would be a Polars pass of its own (~0.15 ms a read)
    cols = [selections.get_column(c).to_list() for c in ("dataset", "instrument_id", "from_ts", "to_ts")]
    for ds, iid, lo, hi in zip(*cols, strict=True):
        groups.setdefault((ds, lo, hi), []).append(int(iid))
    return groups


def select_sql(
    table: Table, columns: Sequence[str], *, price_sql: Callable[[str], str],
    start: dt.datetime | None = None, end: dt.datetime | None = None,
    selections: pl.DataFrame | None = None, equals: dict[str, Any] | None = None,
) -> tuple[str, list[Any]]:
    """The read behind :meth:`hdi.store.base.Store.select`: rows of ``table`` with the time column in
    [start, end), restricted by ``equals`` and by ``selections`` (not empty), ordered by time and
    instrument. Price columns are selected through the backend's ``price_sql``; a timestamp with an
    exact ``*_ns`` companion fetches the companion too."""
    where: list[str] = []
    p = Params()
    tc = ident(table.time_column)
    groups = None if selections is None else selection_groups(selections)
    if groups is not None and len(groups) == 1:
        # one window: [start, end) and the window's bounds are one range, and no OR is needed (the
        # shorter statement is bound and planned faster: ~0.2 ms of a 2 ms read on DuckDB)
        (ds, lo, hi), iids = next(iter(groups.items()))
        try:
            start, end = _later(start, lo), _earlier(end, hi)
            groups = {(ds, None, None): iids}
        except TypeError:  # bounds of kinds that do not compare (naive and aware): kept apart
            pass
    if start is not None:
        where.append(f"{tc} >= {p(start)}")
    if end is not None:
        where.append(f"{tc} < {p(end)}")
    for c, v in (equals or {}).items():
        where.append(f"{ident(c)} = {p(v)}")
    if groups is not None:
        ors = []
        for (ds, lo, hi), iids in groups.items():
            parts = [f"instrument_id = {p(iids[0])}" if len(iids) == 1
                     else f"instrument_id IN ({', '.join(p(i) for i in iids)})"]
            if ds is not None:
                parts.append(f"dataset = {p(ds)}")
            if lo is not None:
                parts.append(f"{tc} >= {p(lo)}")
            if hi is not None:
                parts.append(f"{tc} < {p(hi)}")
            ors.append(" AND ".join(parts) if len(groups) == 1 else "(" + " AND ".join(parts) + ")")
        where.append(ors[0] if len(ors) == 1 else "(" + " OR ".join(ors) + ")")
    order = [table.time_column, "instrument_id"] + [c for c in ("ts_recv_ns", "rec_ordinal") if c in table.names]
    # A timestamp with an exact *_ns companion is rebuilt from it, so fetch the companion too.
    fetch = list(columns) + [ns for ts, ns in table.ns_columns if ts in columns and ns not in columns]
    exprs = [price_sql(c) if table.column(c).type is ColType.PRICE else ident(c) for c in fetch]
    # every column as stored: "*" (binding 13 named columns cost DuckDB ~0.2 ms more per read); the
    # reader selects its columns by name, so the stored order does not matter
    if fetch == table.names and exprs == [ident(c) for c in fetch]:
        exprs = ["*"]
    sql = (f"SELECT {', '.join(exprs)} FROM {ident(table.name)}"
           + (f" WHERE {' AND '.join(where)}" if where else "")
           + f" ORDER BY {', '.join(ident(c) for c in order)}")
    return sql, p.values


def _later(a: Any, b: Any) -> Any:
    """The later of two optional bounds (None: unbounded)."""
    return b if a is None else a if b is None else max(a, b)


def _earlier(a: Any, b: Any) -> Any:
    """The earlier of two optional bounds (None: unbounded)."""
    return b if a is None else a if b is None else min(a, b)


def symbology_sql(symbols: Sequence[str] | None) -> tuple[str, list[Any]]:
    """The read behind :meth:`hdi.store.base.Store.symbology`: rows for ``symbols`` (not empty) or all."""
    sql = f"SELECT * FROM {ident(SYMBOLOGY.name)}"
    params: list[Any] = []
    if symbols is not None:
        sql += " WHERE symbol IN (" + ", ".join(f"${i + 1}" for i in range(len(symbols))) + ")"
        params = list(symbols)
    return sql + " ORDER BY dataset, symbol, start_date", params


def overlap_probe(table: Table, frame: pl.DataFrame) -> tuple[str, list[Any]]:
    """SQL and parameters asking whether any stored row could share a key with ``frame``.

    Cheap and conservative: the frame's time range and instrument range, narrowed by every text key
    column that holds one value in the frame (dataset, granularity). No row found means the batch
    can be appended as it is.
    """
    tc = table.time_column
    lo, hi = time_bounds(frame, tc)
    sql = f"SELECT 1 FROM {ident(table.name)} WHERE {ident(tc)} >= $1 AND {ident(tc)} < $2"
    params: list[Any] = [lo, hi]
    if "instrument_id" in table.key:
        ilo, ihi = frame.select(pl.col("instrument_id").min().alias("lo"),
                                pl.col("instrument_id").max().alias("hi")).row(0)
        sql += " AND instrument_id BETWEEN $3 AND $4"
        params += [int(ilo), int(ihi)]
    for k in table.key:
        if table.column(k).type is not ColType.TEXT:
            continue
        s = frame.get_column(k)  # one value in every row (compared, not hashed: 5x cheaper than n_unique)
        if s.len() and s.null_count() == 0 and (s == s[0]).all():
            params.append(s[0])
            sql += f" AND {ident(k)} = ${len(params)}"
    return sql + " LIMIT 1", params


def delete_days_sql(table: Table, dataset: str, instrument_ids: Sequence[int], start: dt.datetime,
                    end: dt.datetime, equals: dict[str, Any]) -> tuple[str, list[Any]]:
    """The delete behind :meth:`hdi.store.base.Transaction.delete_days`: ``dataset``'s rows of these
    instruments with the time column in [start, end), restricted by ``equals`` (``granularity``)."""
    p = Params()
    tc = ident(table.time_column)
    where = [f"dataset = {p(dataset)}", f"{tc} >= {p(start)}", f"{tc} < {p(end)}",
             f"instrument_id IN ({', '.join(p(int(i)) for i in instrument_ids)})"]
    where += [f"{ident(c)} = {p(v)}" for c, v in equals.items()]
    return f"DELETE FROM {ident(table.name)} WHERE {' AND '.join(where)}", p.values
