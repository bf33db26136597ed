"""The contract behind each row: ``raw_symbol`` as of the row's time, from what the store knows.

A query for ``ES.FUT`` or ``CL.c.0`` selects several contracts; each returned row names its own
(``ESH4``, ``ESM4``, ``CLZ4``...) in a ``raw_symbol`` column, taken from:

1. the symbology table's raw-symbol intervals (``stype_in = 'raw_symbol'``: the mappings of any
   ingest by raw symbol, from DBN metadata or ``symbology.resolve``, and the raw symbols of the
   instruments a continuous or parent request resolved to, which ``hdi ingest`` asks Databento for
   with :func:`store_raw_symbols`), for the UTC day of the row;
2. otherwise the stored instrument definitions: the last definition of the instrument received at
   or before the row's time (the first one received after it when none was received before);
3. otherwise null (nothing stored names the instrument: ingest ``recipes/definitions.yaml`` for it).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from typing import Protocol

import polars as pl

from hdi._timeutil import NS_PER_DAY
from hdi.errors import HdiError
from hdi.store.base import Store
from hdi.store.schema import ident

log = logging.getLogger(__name__)

_ID_BATCH = 5_000  # instrument ids per IN (...) list
_RESOLVE_BATCH = 2_000  # symbols per symbology.resolve request (Databento's limit)


class RawSymbolSource(Protocol):
    """What :func:`store_raw_symbols` asks of a source (the Databento API source has it)."""

    def raw_symbols(self, dataset: str, instrument_ids: Iterable[int], start_date: dt.date,
                    end_date: dt.date) -> pl.DataFrame: ...


def store_raw_symbols(st: Store, source: RawSymbolSource, dataset: str, resolved: pl.DataFrame, start: dt.date,
                      end: dt.date) -> None:
    """Store the raw symbols of the instruments ``resolved`` (a continuous or parent request's
    symbology rows) maps to, as ``raw_symbol`` intervals; a failure costs only those names."""
    ids = sorted(resolved.get_column("instrument_id").unique().to_list())
    try:
        for i in range(0, len(ids), _RESOLVE_BATCH):
            st.write_symbology(source.raw_symbols(dataset, ids[i:i + _RESOLVE_BATCH], start, end))
    except HdiError as e:
        log.warning("the raw symbols of %d %s instruments could not be resolved (rows name their contract "
                    "from stored definitions only): %s", len(ids), dataset, e.message)


def _raw_intervals(st: Store, ids: list[int]) -> pl.DataFrame:
    schema = {"dataset": pl.String, "instrument_id": pl.Int64, "raw_symbol": pl.String, "start_date": pl.Date,
              "end_date": pl.Date}
    if not st.has_table("symbology") or not ids:
        return pl.DataFrame(schema=schema)
    parts = []
    for lo in range(0, len(ids), _ID_BATCH):
        batch = ids[lo:lo + _ID_BATCH]
        placeholders = ", ".join(f"${i + 2}" for i in range(len(batch)))
        got = st.query(f"SELECT dataset, instrument_id, symbol AS raw_symbol, start_date, end_date FROM "
                       f"{ident('symbology')} WHERE stype_in = $1 AND instrument_id IN ({placeholders})",
                       ["raw_symbol", *batch])
        parts.append(got.select(pl.col(c).cast(t) for c, t in schema.items()))
    return pl.concat(parts)


def _definitions(st: Store, ids: list[int]) -> pl.DataFrame:
    cols = ["dataset", "instrument_id", "raw_symbol", "received_timestamp_utc"]
    if not st.has_table("instruments") or not ids:
        return pl.DataFrame(schema={"dataset": pl.String, "instrument_id": pl.Int64, "raw_symbol": pl.String,
                                    "received_timestamp_utc": pl.Datetime("ns", "UTC")})
    no_bound = pl.lit(None, pl.Datetime("ns", "UTC"))
    sel = pl.DataFrame({"instrument_id": ids}, schema={"instrument_id": pl.Int64}).with_columns(
        dataset=pl.lit(None, pl.String), from_ts=no_bound, to_ts=no_bound)
    return st.select("instruments", selections=sel, columns=cols).drop_nulls("raw_symbol")


def raw_lookups(st: Store, ids: list[int]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The raw-symbol intervals and the definitions of instruments ``ids`` (what
    :func:`with_raw_symbols` labels rows from), kept while the store cannot change (DuckDB)."""
    ids = sorted(set(ids))
    cache = st.read_cache()  # a DuckDB file whose content is unchanged: see DuckDBStore.read_cache
    lookup = ("raw_symbols", tuple(ids))
    got: tuple[pl.DataFrame, pl.DataFrame] | None = cache.get(lookup) if cache is not None else None
    if got is None:
        got = (_raw_intervals(st, ids), _definitions(st, ids))
        if cache is not None:
            cache[lookup] = got
    return got


_FEW_WINDOWS = 64  # selections of more windows are labelled row by row (per day), not per instrument


def constant_raw_symbols(intervals: pl.DataFrame, windows: pl.DataFrame) -> dict[int, str] | None:
    """The raw symbol of each selected instrument, when one is the same on every day of its windows.

    ``intervals``: :func:`raw_lookups`' raw-symbol intervals; ``windows``: the selection (dataset,
    instrument_id, from_ts, to_ts) the rows were read with (each row lies in one of its windows).
    When, for every window, exactly one interval of its dataset and instrument touches the window's
    UTC days and covers all of them, a row's raw symbol depends on its instrument only: the map
    instrument id -> raw symbol is returned. None (label by day) when a window is unbounded or has
    no dataset, an interval starts or ends inside it, none covers it, or an instrument would get two.
    """
    if windows.height == 0 or windows.height > _FEW_WINDOWS or intervals.height == 0:
        return None
    by: dict[tuple[str, int], list[tuple[dt.date, dt.date, str]]] = {}
    for ds, iid, raw, d0, d1 in intervals.rows():
        by.setdefault((ds, iid), []).append((d0, d1, raw))
    epoch = dt.date(1970, 1, 1)
    cols = [windows.get_column(c) for c in ("dataset", "instrument_id")]
    cols += [windows.get_column(c).cast(pl.Int64) for c in ("from_ts", "to_ts")]  # exact ns
    out: dict[int, str] = {}
    for ds, iid, lo, hi in zip(*(c.to_list() for c in cols), strict=True):
        if ds is None or lo is None or hi is None or lo >= hi:
            return None
        first = epoch + dt.timedelta(days=lo // NS_PER_DAY)
        last = epoch + dt.timedelta(days=(hi - 1) // NS_PER_DAY)  # rows are before hi
        touching = [(d0, d1, raw) for d0, d1, raw in by.get((ds, iid), ()) if d0 <= last and d1 > first]
        if len(touching) != 1 or touching[0][0] > first or touching[0][1] <= last:
            return None
        raw = touching[0][2]
        if out.setdefault(int(iid), raw) != raw:
            return None
    return out


def with_raw_symbols(st: Store, rows: pl.LazyFrame, time_column: str, ids: list[int],
                     lookups: tuple[pl.DataFrame, pl.DataFrame] | None = None,
                     constant: dict[int, str] | None = None) -> pl.LazyFrame:
    """``rows`` (with ``dataset``, ``instrument_id`` and ``time_column``) plus a ``raw_symbol`` column.

    ``ids``: the instrument ids the rows can have (those selected); ``lookups``: their
    :func:`raw_lookups`, when the caller has them; ``constant``: :func:`constant_raw_symbols` of the
    rows' selection, when it found one raw symbol per instrument (then no join at all). The row
    order is kept unless definitions label the rows (their as-of joins sort the rows by time).
    """
    if constant is not None:
        if len(set(constant.values())) == 1:
            raw_iv = pl.lit(next(iter(constant.values())), pl.String)
        else:
            raw_iv = pl.col("instrument_id").replace_strict(constant, default=None, return_dtype=pl.String)
        return rows.with_columns(raw_iv.alias("raw_symbol"))
    ivs, defs = lookups if lookups is not None else raw_lookups(st, ids)
    out = rows
    raw = pl.lit(None, pl.String)
    drop = []
    if ivs.height:  # matched per distinct (dataset, instrument, day), not per row
        key = ["dataset", "instrument_id", "_day"]
        out = out.with_columns(pl.col(time_column).dt.date().alias("_day"))
        days = (out.select(key).unique()
                .join(ivs.lazy(), on=["dataset", "instrument_id"], how="inner")
                .filter((pl.col("_day") >= pl.col("start_date")) & (pl.col("_day") < pl.col("end_date")))
                # two raw symbols on one day (a rename): the interval that started last
                .sort(*key, "start_date").group_by(key).agg(pl.col("raw_symbol").last().alias("_raw_iv")))
        out = out.join(days, on=key, how="left", maintain_order="left")
        raw, drop = pl.col("_raw_iv"), ["_day", "_raw_iv"]
    if defs.height:  # the definition valid at the row's time, else the first one after it
        d = defs.lazy().sort("received_timestamp_utc").rename({"received_timestamp_utc": "_def_ts"})
        out = out.sort(time_column)
        for strategy in ("backward", "forward"):
            out = out.join_asof(d.rename({"raw_symbol": f"_raw_{strategy}"}), left_on=time_column,
                                right_on="_def_ts", by=["dataset", "instrument_id"], strategy=strategy,
                                check_sortedness=False).drop("_def_ts")
        raw = pl.coalesce(raw, pl.col("_raw_backward"), pl.col("_raw_forward"))
        drop += ["_raw_backward", "_raw_forward"]
    return out.with_columns(raw.cast(pl.String).alias("raw_symbol")).drop(drop)
