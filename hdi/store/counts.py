"""Stored rows per (data table, dataset, instrument, granularity, UTC day): the ``row_counts`` table.

``hdi status`` reads these instead of scanning the data tables (one grouped scan of 100 M trades took
seconds to minutes). They are kept in the same transaction as every write, so they are never
behind the data:

- a write whose key range held no stored row (the ``append`` path) inserted every row of its frame:
  the frame's own per-day counts are added (:meth:`Tracker.add`, called by the store contract);
- a merge counts exactly the rows it inserted: TimescaleDB and DuckDB from ``INSERT ... RETURNING``
  (a concurrent writer's rows are never counted twice: the additions are commutative; an ``update``
  that replaced a row does not count it again), the lake from the anti-joined frame it stages;
- anything else that changes stored rows (a delete) calls :meth:`hdi.store.base.Transaction._touch`
  with the keys: at commit those keys are recounted from the table inside the transaction (index /
  zone-map range scans of exactly those instruments and days), replacing their counts.

The first and last time of each day are kept too (``first_ns``/``last_ns``: the exact ``*_ns``
column where the table has one), as status shows them. A row whose key is stored again (``ignore``
or ``update``) keeps its time, so additions keep them exact; a recount sets them afresh.

Migration 7 (:mod:`hdi.store.migrate`) creates the table and fills it once from the stored rows, in
the migration's transaction.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

from hdi._tables import DATA_TABLES, Table
from hdi._timeutil import NS_PER_DAY
from hdi.store.ledger import ROW_COUNTS
from hdi.store.schema import ident

KEY = list(ROW_COUNTS.key)
COLUMNS = ROW_COUNTS.names
STATS_SCHEMA: dict[str, pl.DataType | type[pl.DataType]] = {
    "table_name": pl.String, "dataset": pl.String, "instrument_id": pl.Int64, "granularity": pl.String,
    "day": pl.Date, "rows": pl.Int64, "first_ns": pl.Int64, "last_ns": pl.Int64}
NO_GRANULARITY = ""  # tables without a granularity column (NULL would not match a unique key)


def edge_column(table: Table) -> str:
    """The column whose least and greatest value per day status shows: the exact ``*_ns`` companion
    of the time column where the table has one, else the time column itself."""
    return dict(table.ns_columns).get(table.time_column, table.time_column)


def empty() -> pl.DataFrame:
    return pl.DataFrame(schema=STATS_SCHEMA)


_DAY = "__hdi_day"


def frame_stats(table: Table, frame: pl.DataFrame) -> pl.DataFrame:
    """Per-key rows, first and last time of a frame of ``table`` rows (any timestamp unit)."""
    if frame.height == 0:
        return empty()
    tc, edge = table.time_column, edge_column(table)
    if edge != tc and edge in frame.columns and frame.schema[edge] == pl.Int64:
        return _stats_from_ns(table, frame, edge)
    t = pl.col(tc)
    dtype = frame.schema[tc]
    if isinstance(dtype, pl.Datetime):
        t = t.dt.replace_time_zone("UTC") if dtype.time_zone is None else t.dt.convert_time_zone("UTC")
    e = pl.col(edge) if edge != tc else t.dt.epoch("ns")
    gran = pl.col("granularity") if "granularity" in table.names else pl.lit(NO_GRANULARITY)
    return (frame.group_by(pl.col("dataset").cast(pl.String), pl.col("instrument_id").cast(pl.Int64),
                           gran.cast(pl.String).alias("granularity"), t.dt.date().alias("day"))
            .agg(pl.len().cast(pl.Int64).alias("rows"), e.min().cast(pl.Int64).alias("first_ns"),
                 e.max().cast(pl.Int64).alias("last_ns"))
            .select(pl.lit(table.name).alias("table_name"), *KEY[1:], "rows", "first_ns", "last_ns"))


def _stats_from_ns(table: Table, frame: pl.DataFrame, edge: str) -> pl.DataFrame:
    """:func:`frame_stats` of a table whose time column has an exact ``*_ns`` companion (the tick
    tables): the UTC day is that integer floor-divided by a day's nanoseconds (the same day as the
    timestamp's, without a time-zone conversion per row), and a text key column holding one value
    in the whole frame (the dataset of a chunk) is added after grouping instead of hashed per row."""
    ns = pl.col(edge)
    text = ["dataset", *(["granularity"] if "granularity" in table.names else [])]
    one = {c: frame.get_column(c)[0] for c in text if _single_value(frame.get_column(c))}
    keys = [pl.col(c).cast(pl.String) for c in text if c not in one]
    if not keys and _packable(frame, edge):
        # one integer key (instrument id and day packed) groups ~3x faster than the two columns
        packed = (pl.col("instrument_id").cast(pl.Int64) * _DAYS + ns // NS_PER_DAY).alias(_DAY)
        stats = (frame.lazy().select(packed, ns).group_by(_DAY)
                 .agg(pl.len().cast(pl.Int64).alias("rows"), ns.min().alias("first_ns"), ns.max().alias("last_ns"))
                 .with_columns((pl.col(_DAY) // _DAYS).alias("instrument_id"), pl.col(_DAY) % _DAYS)
                 .collect())
    else:
        stats = (frame.group_by(*keys, pl.col("instrument_id").cast(pl.Int64), (ns // NS_PER_DAY).alias(_DAY))
                 .agg(pl.len().cast(pl.Int64).alias("rows"), ns.min().alias("first_ns"), ns.max().alias("last_ns")))
    gran = pl.lit(one["granularity"], pl.String) if "granularity" in one else \
        pl.col("granularity") if "granularity" in table.names else pl.lit(NO_GRANULARITY)
    return stats.select(pl.lit(table.name).alias("table_name"),
                        (pl.lit(one["dataset"], pl.String) if "dataset" in one else pl.col("dataset")).alias("dataset"),
                        "instrument_id", gran.alias("granularity"),
                        pl.col(_DAY).cast(pl.Int32).cast(pl.Date).alias("day"), "rows",
                        pl.col("first_ns").cast(pl.Int64), pl.col("last_ns").cast(pl.Int64))


_DAYS = 1 << 20  # UTC days from 1970 a packed key holds (to the year 4840)


def _packable(frame: pl.DataFrame, edge: str) -> bool:
    """Whether every row's instrument id and UTC day pack into one Int64 key (ids 0 to 2^43 - 1, no
    nulls, times from 1970 on)."""
    iid, ns = frame.get_column("instrument_id"), frame.get_column(edge)
    if iid.null_count() or ns.null_count() or not iid.dtype.is_integer():
        return False
    lo, hi, first, last = iid.min(), iid.max(), ns.min(), ns.max()
    return (isinstance(lo, int) and isinstance(hi, int) and isinstance(first, int) and isinstance(last, int)
            and lo >= 0 and hi < 1 << 43 and first >= 0 and last // NS_PER_DAY < _DAYS)


def _single_value(s: pl.Series) -> bool:
    """Whether a column holds one non-null value in every row."""
    return s.len() > 0 and s.null_count() == 0 and bool((s == s[0]).all())


def merge(parts: Sequence[pl.DataFrame]) -> pl.DataFrame:
    """Stats of several writes to different or the same keys, added up per key."""
    parts = [p.select(COLUMNS).cast(STATS_SCHEMA) for p in parts if p.height]  # type: ignore[arg-type]
    if not parts:
        return empty()
    return (pl.concat(parts).group_by(KEY)
            .agg(pl.col("rows").sum(), pl.col("first_ns").min(), pl.col("last_ns").max())
            .filter(pl.col("rows") > 0).sort(KEY).select(COLUMNS))


def subtract(a: pl.DataFrame, b: pl.DataFrame) -> pl.DataFrame:
    """``a``'s stats with ``b``'s rows taken off per key (``b``: rows of ``a`` replaced, not added;
    first and last stay ``a``'s, which the stored rows already span)."""
    if b.height == 0:
        return a
    return (a.join(b.select(*KEY, pl.col("rows").alias("_gone")), on=KEY, how="left", nulls_equal=True)
            .with_columns(pl.col("rows") - pl.col("_gone").fill_null(0)).filter(pl.col("rows") > 0).select(COLUMNS))


def count_columns(table: Table) -> list[str]:
    """The columns :func:`frame_stats` reads from a frame of ``table`` rows."""
    want = ("dataset", "instrument_id", "granularity", table.time_column, edge_column(table))
    return [c for c in dict.fromkeys(want) if c in table.names]


@dataclass(frozen=True)
class Scope:
    """Keys to recount at commit: ``table``'s rows of ``dataset`` (and of ``instrument_ids``, or of
    every instrument when None) on the UTC days ``first_day`` to ``last_day`` (inclusive)."""

    table: str
    dataset: str
    instrument_ids: tuple[int, ...] | None
    first_day: dt.date
    last_day: dt.date

    def bounds(self) -> tuple[dt.datetime, dt.datetime]:
        lo = dt.datetime.combine(self.first_day, dt.time(), dt.UTC)
        return lo, dt.datetime.combine(self.last_day + dt.timedelta(days=1), dt.time(), dt.UTC)

    def covers(self) -> pl.Expr:
        """A predicate over count rows: the key lies in this scope."""
        e = ((pl.col("table_name") == self.table) & (pl.col("dataset") == self.dataset)
             & pl.col("day").is_between(self.first_day, self.last_day))
        if self.instrument_ids is not None:
            e = e & pl.col("instrument_id").is_in(list(self.instrument_ids))
        return e


def scopes_of(table: Table, frame: pl.DataFrame) -> list[Scope]:
    """One scope per dataset of a frame: its instruments and UTC days."""
    stats = frame_stats(table, frame)
    out = []
    for (ds,), g in stats.group_by("dataset", maintain_order=True):
        out.append(Scope(table.name, str(ds), tuple(sorted(set(g["instrument_id"].to_list()))),
                         g["day"].min(), g["day"].max()))  # type: ignore[arg-type]
    return out


class Tracker:
    """What one transaction changed: stats of the rows it inserted, and scopes to recount."""

    def __init__(self) -> None:
        self.parts: list[pl.DataFrame] = []
        self.scopes: list[Scope] = []

    def add(self, table: Table, frame: pl.DataFrame) -> None:
        """Rows inserted into ``table`` (exactly these; rows already stored are not in ``frame``)."""
        if table.name in DATA_TABLES and frame.height:
            self.parts.append(frame_stats(table, frame))

    def add_stats(self, stats: pl.DataFrame) -> None:
        """Per-key stats of inserted rows, already counted (e.g. by ``INSERT ... RETURNING``)."""
        if stats.height:
            self.parts.append(stats.select(COLUMNS).cast(STATS_SCHEMA))  # type: ignore[arg-type]

    def touch(self, scope: Scope) -> None:
        self.scopes.append(scope)

    @property
    def empty(self) -> bool:
        return not self.parts and not self.scopes

    def deltas(self) -> pl.DataFrame:
        """The additions, without keys a scope recounts (its recount includes them)."""
        d = merge(self.parts)
        for s in self.scopes:
            d = d.filter(~s.covers())
        return d

    def clear(self) -> None:
        self.parts, self.scopes = [], []


# --------------------------------------------------------------------------- SQL
def _edge_sql(table: Table, backend: str) -> str:
    edge = edge_column(table)
    if edge != table.time_column:
        return ident(edge)
    if backend == "timescale":
        return f"CAST(EXTRACT(EPOCH FROM {ident(edge)}) * 1000000000 AS BIGINT)"
    return f"epoch_ns({ident(edge)})"


def stats_select(table: Table, backend: str, where: str = "", *, name_sql: str = "CAST($1 AS VARCHAR)") -> str:
    """SELECT of ``table``'s per-key stats (the ``row_counts`` columns) from its stored rows; the
    table name is ``name_sql`` (by default the first bound parameter ``$1``)."""
    tc = ident(table.time_column)
    gran = "COALESCE(granularity, '')" if "granularity" in table.names else "''"
    edge = _edge_sql(table, backend)
    return (f"SELECT {name_sql} AS table_name, dataset, CAST(instrument_id AS BIGINT) AS instrument_id, "
            f"{gran} AS granularity, CAST(timezone('UTC', {tc}) AS DATE) AS day, CAST(count(*) AS BIGINT) AS \"rows\", "
            f"CAST(min({edge}) AS BIGINT) AS first_ns, CAST(max({edge}) AS BIGINT) AS last_ns "
            f"FROM {ident(table.name)}{where} GROUP BY 2, 3, 4, 5")


def _cols() -> str:
    return ", ".join(ident(c) for c in COLUMNS)


def fill_sql(table: Table, backend: str) -> str:
    """Migration 7: the counts of every stored row of ``table`` (a statement without parameters, as
    migrations are: the name is one of the fixed data table names, checked)."""
    if table.name not in DATA_TABLES or not re.fullmatch(r"[a-z0-9_]+", table.name):
        raise ValueError(f"not a data table: {table.name!r}")
    return (f"INSERT INTO {ident(ROW_COUNTS.name)} ({_cols()}) "
            f"{stats_select(table, backend, name_sql=f'CAST({chr(39)}{table.name}{chr(39)} AS VARCHAR)')}")


def recount_sql(scope: Scope, backend: str) -> list[tuple[str, list[Any]]]:
    """Statements replacing the counts of a scope by a recount of the stored rows (inside the
    transaction, so they see its writes): delete the scope's count rows, insert the recount."""
    table = DATA_TABLES[scope.table]
    ids = list(scope.instrument_ids) if scope.instrument_ids is not None else []
    only = (" AND instrument_id IN (" + ", ".join(f"${5 + i}" for i in range(len(ids))) + ")") \
        if scope.instrument_ids is not None else ""
    lo, hi = scope.bounds()
    tc = ident(table.time_column)
    where = f" WHERE dataset = $2 AND {tc} >= $3 AND {tc} < $4{only}"
    return [(f"DELETE FROM {ident(ROW_COUNTS.name)} WHERE table_name = $1 AND dataset = $2 AND {ident('day')} >= $3 "
             f"AND {ident('day')} <= $4{only}", [scope.table, scope.dataset, scope.first_day, scope.last_day, *ids]),
            (f"INSERT INTO {ident(ROW_COUNTS.name)} ({_cols()}) {stats_select(table, backend, where)}",
             [scope.table, scope.dataset, lo, hi, *ids])]


def add_sql(stage: str) -> str:
    """Add the stats in ``stage`` (hdi's own staging relation with the ``row_counts`` columns: DuckDB's
    ``hdi_counts`` frame, a TimescaleDB ``pg_temp`` table) to the stored counts: rows summed, first and
    last widened. Keys in order, so that concurrent writers lock count rows in the same order (no
    deadlock)."""
    counts_table = ident(ROW_COUNTS.name)
    return (f"INSERT INTO {counts_table} ({_cols()}) SELECT {_cols()} FROM {stage} "
            f"ORDER BY {', '.join(ident(k) for k in KEY)} "
            f"ON CONFLICT ({', '.join(ident(k) for k in KEY)}) DO UPDATE SET "
            f"{ident('rows')} = {counts_table}.{ident('rows')} + EXCLUDED.{ident('rows')}, "
            f"first_ns = LEAST({counts_table}.first_ns, EXCLUDED.first_ns), "
            f"last_ns = GREATEST({counts_table}.last_ns, EXCLUDED.last_ns)")


# --------------------------------------------------------------------------- reads
DAILY_SCHEMA: dict[str, pl.DataType | type[pl.DataType]] = {
    "table": pl.String, "dataset": pl.String, "instrument_id": pl.Int64, "granularity": pl.String,
    "day": pl.Date, "rows": pl.Int64, "first": pl.Datetime("ns", "UTC"), "last": pl.Datetime("ns", "UTC")}


def daily(store: Any) -> pl.DataFrame:
    """The stored counts as status uses them: table, dataset, instrument_id, granularity (null for a
    table without one), day, rows, first, last (``Datetime("ns", "UTC")``)."""
    got: pl.DataFrame = store.query(f"SELECT {_cols()} FROM {ident(ROW_COUNTS.name)}")
    if got.height == 0:
        return pl.DataFrame(schema=DAILY_SCHEMA)

    def ts(c: str) -> pl.Expr:
        return pl.col(c).cast(pl.Int64).cast(pl.Datetime("ns")).dt.replace_time_zone("UTC")

    out: pl.DataFrame = got.select(
        pl.col("table_name").cast(pl.String).alias("table"), pl.col("dataset").cast(pl.String),
        pl.col("instrument_id").cast(pl.Int64),
        pl.when(pl.col("granularity") == NO_GRANULARITY).then(None).otherwise(pl.col("granularity"))
        .cast(pl.String).alias("granularity"),
        pl.col("day").cast(pl.Date), pl.col("rows").cast(pl.Int64), ts("first_ns").alias("first"),
        ts("last_ns").alias("last"))
    return out
