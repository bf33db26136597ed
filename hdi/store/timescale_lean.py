"""Lean tick tables in TimescaleDB (issue 17): the physical layout behind the tick views.

A tick table such as ``trades`` is a view with the documented columns over a physical hypertable
``hdi_trades`` that stores each value once, in the fewest bytes that keep it exact:

- one timestamp representation: the exact ``*_ns`` int8 columns; ``ts_recv_ns`` is the hypertable's
  integer time dimension; the ``*_timestamp_utc`` columns (microseconds) are computed by the view;
- ``dataset``, ``data_source`` and ``publisher_id`` as one smallint code (``hdi_src``) into the
  lookup table ``hdi_sources``;
- prices as int8 fixed-point (value x 1e9, as in DBN), presented by the view as ``numeric(19,9)``;
- sides as smallint codes (0 none, 1 buy, 2 sell) and one-letter actions as their code point;
- no per-row unique index: a BRIN index on (instrument_id, ts_recv_ns) (batches are written sorted
  by instrument), and idempotence from the write path itself: a write takes transaction advisory
  locks on the days it touches, then either COPYs straight in (no stored row in its key range) or
  inserts only the rows whose key is absent (anti-join, or delete + insert for ``update``).

Columns are ordered int8, int4, int2, text so that no padding is stored. Why, and the measurements:
docs/architecture.md "Decisions and why".
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import polars as pl

from hdi._prices import fixed_to_decimal
from hdi._tables import DATA_TABLES, ColType, Table
from hdi.errors import StoreError
from hdi.store import counts
from hdi.store.base import WriteResult
from hdi.store.frames import empty_frame, normalise
from hdi.store.ledger import ROW_COUNTS
from hdi.store.schema import SQL_TYPES, conform, ident, key_index_name
from hdi.store.sql import Params, selection_groups

if TYPE_CHECKING:
    from hdi.store.timescale import TimescaleStore, _PgTxn

# The tick tables stored lean; ohlcv, statistics, instruments, status, imbalance and the small tables
# keep the plain layout (few rows, or read by hdi's own SQL on their documented columns).
LEAN_TABLES = ("trades", "tbbo", "mbp1", "mbo", "mbp10", "bbo", "cbbo")
SOURCES = "hdi_sources"
SRC = "hdi_src"
SOURCE_COLUMNS = ("dataset", "data_source", "publisher_id")
SIDE_COLUMNS = ("side", "aggressor_side", "trade_side")
CHAR_COLUMNS = ("action",)
_SIDE_CODES = {"buy": 1, "sell": 2}
_CHARS = {chr(i): i for i in range(32, 127)}
DAY_NS = 86_400 * 10**9
_LOCK_BASE = 7266100  # advisory lock class per lean table: _LOCK_BASE + its position in LEAN_TABLES
_MAX_LOCKED_DAYS = 31  # a write spanning more days locks the whole table instead
_WIDTH = {"bigint": 0, "integer": 1, "smallint": 2, "text": 3}
_PL = {"bigint": pl.Int64(), "integer": pl.Int32(), "smallint": pl.Int16(), "text": pl.String()}


@dataclass(frozen=True)
class PhysCol:
    name: str
    sql: str  # bigint, integer, smallint or text
    kind: str  # plain, price (int8 fixed-point), side (0/1/2), char (code point), src (source code)
    nullable: bool


@dataclass(frozen=True)
class Layout:
    table: Table
    physical: str
    columns: tuple[PhysCol, ...]
    key: tuple[str, ...]  # physical key columns compared in a merge, besides the source
    key_publisher: bool  # whether publisher_id is part of the logical key (else only dataset is)
    lock_class: int

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def col(self, name: str) -> PhysCol | None:
        return next((c for c in self.columns if c.name == name), None)


def _layout(table: Table, position: int) -> Layout:
    derived = {ts for ts, _ in table.ns_columns}
    cols = [PhysCol(SRC, "smallint", "src", False)]
    for c in table.columns:
        if c.name in SOURCE_COLUMNS or c.name in derived:
            continue
        if c.type is ColType.PRICE:
            cols.append(PhysCol(c.name, "bigint", "price", c.nullable))
        elif c.type is ColType.TEXT and c.name in SIDE_COLUMNS:
            cols.append(PhysCol(c.name, "smallint", "side", False))
        elif c.type is ColType.TEXT and c.name in CHAR_COLUMNS:
            cols.append(PhysCol(c.name, "smallint", "char", c.nullable))
        else:
            sql = SQL_TYPES["timescale"][c.type]
            assert sql in _WIDTH, f"{table.name}.{c.name}: no lean storage for {sql}"
            cols.append(PhysCol(c.name, sql, "plain", c.nullable))
    cols.sort(key=lambda c: _WIDTH[c.sql])  # stable: widest first, no alignment padding
    assert "ts_recv_ns" in table.key and all(s in table.names for s in SOURCE_COLUMNS)
    key = tuple(k for k in table.key if k not in (*SOURCE_COLUMNS, "received_timestamp_utc"))
    return Layout(table, f"hdi_{table.name}", tuple(cols), key, "publisher_id" in table.key,
                  _LOCK_BASE + position)


LAYOUTS: dict[str, Layout] = {n: _layout(DATA_TABLES[n], i) for i, n in enumerate(LEAN_TABLES)}


# -- DDL (migration v8) ---------------------------------------------------------------------------
def view_sql(lay: Layout) -> str:
    """CREATE VIEW <table> with the documented columns, in order, over the physical table. A
    ``*_timestamp_utc`` column is its exact ns column floored to the microsecond."""
    table = lay.table
    ns_of = dict(table.ns_columns)
    exprs = []
    for c in table.columns:
        pc = lay.col(c.name)
        if c.name in SOURCE_COLUMNS:
            exprs.append(f"s.{ident(c.name)}")
        elif c.name in ns_of:
            exprs.append(f"(TIMESTAMPTZ 'epoch' + (t.{ident(ns_of[c.name])} / 1000) * INTERVAL '1 microsecond') "
                         f"AS {ident(c.name)}")
        elif pc is not None and pc.kind == "price":
            exprs.append(f"(t.{ident(c.name)} * 0.000000001)::numeric(19,9) AS {ident(c.name)}")
        elif pc is not None and pc.kind == "side":
            exprs.append(f"(CASE t.{ident(c.name)} WHEN 1 THEN 'buy' WHEN 2 THEN 'sell' END) AS {ident(c.name)}")
        elif pc is not None and pc.kind == "char":
            exprs.append(f"chr(t.{ident(c.name)}) AS {ident(c.name)}")
        else:
            exprs.append(f"t.{ident(c.name)}")
    return (f"CREATE VIEW {ident(table.name)} AS SELECT {', '.join(exprs)} FROM {ident(lay.physical)} t "
            f"JOIN {ident(SOURCES)} s ON s.{ident(SRC)} = t.{ident(SRC)}")


def sources_sql() -> str:
    return (f"CREATE TABLE IF NOT EXISTS {ident(SOURCES)} ({ident(SRC)} smallint GENERATED BY DEFAULT AS IDENTITY "
            "PRIMARY KEY, dataset text NOT NULL, data_source text NOT NULL, publisher_id integer NOT NULL, "
            "UNIQUE (dataset, data_source, publisher_id))")


def convert_sql(table: Table) -> list[str]:
    """Statements turning the plain table ``table`` (rows kept, exactly) into the lean layout + view."""
    lay = LAYOUTS[table.name]
    cols = ", ".join(f"{ident(c.name)} {c.sql}{' NOT NULL' if not c.nullable else ''}" for c in lay.columns)
    exprs = []
    for c in lay.columns:
        if c.kind == "src":
            exprs.append(f"s.{ident(SRC)}")
        elif c.kind == "price":
            exprs.append(f"(o.{ident(c.name)} * 1000000000)::bigint")
        elif c.kind == "side":
            exprs.append(f"(CASE WHEN o.{ident(c.name)} IS NULL THEN 0 WHEN o.{ident(c.name)} = 'buy' THEN 1 "
                         f"WHEN o.{ident(c.name)} = 'sell' THEN 2 END)")
        elif c.kind == "char":
            exprs.append(f"ascii(o.{ident(c.name)})")
        else:
            exprs.append(f"o.{ident(c.name)}")
    match = " AND ".join(f"s.{ident(n)} = o.{ident(n)}" for n in SOURCE_COLUMNS)
    return [
        f"CREATE TABLE {ident(lay.physical)} ({cols})",
        f"SELECT created FROM create_hypertable('{ident(lay.physical)}', by_range('ts_recv_ns', "
        f"(extract(epoch FROM INTERVAL '{table.chunk_interval}') * 1000000000)::bigint), "
        "create_default_indexes => false)",
        f"INSERT INTO {ident(SOURCES)} (dataset, data_source, publisher_id) SELECT DISTINCT dataset, data_source, "
        f"publisher_id FROM {ident(table.name)} ON CONFLICT DO NOTHING",
        f"INSERT INTO {ident(lay.physical)} ({', '.join(ident(c.name) for c in lay.columns)}) "
        f"SELECT {', '.join(exprs)} FROM {ident(table.name)} o "
        f"JOIN {ident(SOURCES)} s ON {match} ORDER BY o.instrument_id, o.ts_recv_ns",
        f"DROP TABLE {ident(table.name)}",
        view_sql(lay),
        f"CREATE INDEX {key_index_name(table)} ON {ident(lay.physical)} USING brin (instrument_id, ts_recv_ns) "
        "WITH (pages_per_range = 8, autosummarize = on)",
    ]


# -- sources ---------------------------------------------------------------------------------------
def sources(store: TimescaleStore, refresh: bool = False) -> pl.DataFrame:
    """hdi_src -> dataset, data_source, publisher_id (cached per store; tiny)."""
    if refresh or store._sources is None:
        got = store._fetch(f"SELECT {ident(SRC)}, dataset, data_source, publisher_id FROM {ident(SOURCES)}")
        store._sources = got.select(pl.col(SRC).cast(pl.Int16), pl.col("dataset").cast(pl.String),
                                    pl.col("data_source").cast(pl.String),
                                    pl.col("publisher_id").cast(pl.Int32))
    return store._sources


def _codes_for(store: TimescaleStore, wanted: pl.DataFrame) -> pl.DataFrame:
    """The sources table with every (dataset, data_source, publisher_id) of ``wanted`` registered.

    New sources are committed at once on the autocommit read connection, so a code is never cached
    for a row a rolled-back transaction took away. While they are, a signal's cancel of the
    transaction cancels that statement too (it can wait on another writer registering the same
    source): :meth:`hdi.store.timescale.TimescaleStore.registering`.
    """
    known = sources(store)
    missing = wanted.join(known, on=list(SOURCE_COLUMNS), how="anti")
    if missing.height == 0:
        return known
    with store.registering():
        for ds, src, pub in missing.iter_rows():
            store._fetch(f"INSERT INTO {ident(SOURCES)} (dataset, data_source, publisher_id) VALUES ($1, $2, $3) "
                         f"ON CONFLICT DO NOTHING RETURNING {ident(SRC)}", [ds, src, int(pub)])
    known = sources(store, refresh=True)
    if wanted.join(known, on=list(SOURCE_COLUMNS), how="anti").height:
        raise StoreError(f"TimescaleDB at {store.display_url}: could not register the sources of a batch in "
                         f"{SOURCES}")
    return known


# -- writes ----------------------------------------------------------------------------------------
def _src_expr(frame: pl.DataFrame, known: pl.DataFrame) -> pl.Expr | None:
    """The hdi_src of every row without a string join when the batch has one dataset and one data
    source (the usual case): publisher_id -> code. None: join on the three columns instead."""
    ds, src = frame.get_column("dataset")[0], frame.get_column("data_source")[0]
    one = frame.select((pl.col("dataset") == ds).all().alias("d"), (pl.col("data_source") == src).all().alias("s"))
    if one.row(0) != (True, True):
        return None
    mine = known.filter((pl.col("dataset") == ds) & (pl.col("data_source") == src))
    mapping = dict(zip(mine.get_column("publisher_id").to_list(), mine.get_column(SRC).to_list(), strict=True))
    return pl.col("publisher_id").replace_strict(mapping, return_dtype=pl.Int16).alias(SRC)


def encode(frame: pl.DataFrame, lay: Layout, known: pl.DataFrame) -> pl.DataFrame:
    """A conformed logical frame as the physical table's columns, grouped by instrument.

    A value the lean column cannot hold exactly (a price beyond int64 fixed-point, a side other than
    buy/sell, an action longer than one character) raises a StoreError naming the column and value.
    """
    exprs: list[pl.Expr] = []
    for c in lay.columns:
        col = pl.col(c.name)
        if c.kind == "src":
            continue
        if c.kind == "price":
            exprs.append(col.to_physical().cast(pl.Int64, strict=False).alias(c.name))
        elif c.kind == "side":
            exprs.append(pl.when(col == "buy").then(pl.lit(1, pl.Int16)).when(col == "sell").then(pl.lit(2, pl.Int16))
                         .when(col.is_null()).then(pl.lit(0, pl.Int16)).otherwise(pl.lit(-1, pl.Int16)).alias(c.name))
        elif c.kind == "char":
            exprs.append(pl.when(col.is_null()).then(pl.lit(None, pl.Int16))
                         .otherwise(col.replace_strict(_CHARS, default=-1, return_dtype=pl.Int16)).alias(c.name))
        else:
            exprs.append(col.cast(_PL[c.sql], strict=True))
    src = _src_expr(frame, known)
    if src is None:
        out = frame.join(known, on=list(SOURCE_COLUMNS), how="left").select(pl.col(SRC), *exprs)
    else:
        out = frame.select(src, *exprs)
    for c in lay.columns:
        bad: pl.Series | None = None
        if c.kind == "price" and out.get_column(c.name).null_count() != frame.get_column(c.name).null_count():
            bad = frame.get_column(c.name).filter(out.get_column(c.name).is_null() & frame.get_column(c.name)
                                                  .is_not_null())
        elif c.kind in ("side", "char") and (out.get_column(c.name) == -1).any():
            bad = frame.get_column(c.name).filter(out.get_column(c.name) == -1)
        if bad is not None:
            allowed = {"side": "'buy', 'sell' or NULL", "char": "one ASCII character",
                       "price": "-9223372036.854775808 to 9223372036.854775807 (int64 fixed-point at 1e-9)"}
            raise StoreError(f"cannot store frame in table '{lay.table.name}': column '{c.name}' value {bad[0]!r} "
                             f"is not allowed; allowed: {allowed[c.kind]}")
    out = out.select(lay.names)
    # rows of one instrument together (the BRIN index then narrows a read to its pages); stable, so
    # each instrument's rows keep their order (ts_recv, as decoded)
    iid = out.get_column("instrument_id")
    return out if iid.is_sorted() else out.sort("instrument_id", maintain_order=True)


def _lock(txn: _PgTxn, lay: Layout, lo_ns: int, hi_ns: int) -> None:
    """Serialise writers of the same table and days (held until the transaction ends)."""
    d0, d1 = lo_ns // DAY_NS, (hi_ns - 1) // DAY_NS
    if d1 - d0 >= _MAX_LOCKED_DAYS:
        txn.cur.execute("SELECT pg_advisory_xact_lock($1::int, -1)", parameters=(lay.lock_class,))
        txn.cur.fetchall()
        return
    txn.cur.execute("SELECT pg_advisory_xact_lock_shared($1::int, -1)", parameters=(lay.lock_class,))
    txn.cur.fetchall()
    txn.cur.execute("SELECT count(*) FROM (SELECT pg_advisory_xact_lock($1::int, d::int) FROM generate_series($2::bigint, "
                    "$3::bigint) AS d ORDER BY d) AS x", parameters=(lay.lock_class, int(d0), int(d1)))
    txn.cur.fetchall()


def _utc_day(tc: str) -> str:
    """SQL of the UTC date of an int8 ns column ``tc`` (an identifier): exact floor division by a day."""
    return (f"(DATE '1970-01-01' + CAST(({tc} - (({tc} % 86400000000000) + 86400000000000) % 86400000000000) "
            "/ 86400000000000 AS integer))")


def stats_select(lay: Layout, p: Params, stage: str) -> str:
    """SELECT of the ``row_counts`` columns (per dataset, instrument, granularity, UTC day) of the lean
    rows in ``stage`` (a relation with the physical columns, aliased ``t``; joined to its sources ``s``)."""
    tc = "t." + ident("ts_recv_ns")
    edge = "t." + ident(counts.edge_column(lay.table))
    gran = "COALESCE(t.granularity, '')" if "granularity" in lay.names else "''"
    return (f"SELECT CAST({p(lay.table.name)} AS text) AS table_name, s.dataset, "
            f"CAST(t.instrument_id AS bigint) AS instrument_id, {gran} AS granularity, {_utc_day(tc)} AS day, "
            f"count(*) AS \"rows\", min({edge}) AS first_ns, max({edge}) AS last_ns FROM {stage} "
            f"JOIN {ident(SOURCES)} s ON s.{ident(SRC)} = t.{ident(SRC)}")


def _counted(txn: _PgTxn, lay: Layout, p: Params, insert: str, alias: str) -> pl.DataFrame:
    """Run ``insert`` (an INSERT into, or DELETE from, the physical table; its rows aliased ``alias``)
    and return the per-key ``row_counts`` stats of the rows it inserted or deleted, from its RETURNING."""
    key = ", ".join(alias + ident(c) for c in dict.fromkeys(
        [SRC, "instrument_id", "ts_recv_ns", counts.edge_column(lay.table)]
        + (["granularity"] if "granularity" in lay.names else [])))
    txn.cur.execute(f"WITH t AS ({insert} RETURNING {key}) {stats_select(lay, p, 't')} GROUP BY 2, 3, 4, 5",
                    parameters=p.values)
    got: pl.DataFrame = txn.cur.fetch_polars()
    return got.select(counts.COLUMNS).cast(counts.STATS_SCHEMA)  # type: ignore[arg-type]


def write(txn: _PgTxn, table: Table, frame: pl.DataFrame, on_conflict: str) -> WriteResult:
    """Write one batch to a lean table idempotently, inside the transaction."""
    lay = LAYOUTS[table.name]
    logical = conform(frame, table, backend="duckdb")  # exact dtypes: ns timestamps, Decimal(19,9)
    known = _codes_for(txn.store, logical.select(*SOURCE_COLUMNS).unique())
    phys = encode(logical, lay, known)
    n = phys.height
    lo, hi = phys.select(pl.col("ts_recv_ns").min().alias("lo"), pl.col("ts_recv_ns").max().alias("hi")).row(0)
    lo, hi = int(lo), int(hi) + 1
    _lock(txn, lay, lo, hi)
    datasets = logical.get_column("dataset").unique().to_list()
    codes = known.filter(pl.col("dataset").is_in(datasets)).get_column(SRC).to_list()
    p = Params()
    ilo, ihi = phys.select(pl.col("instrument_id").min().alias("lo"), pl.col("instrument_id").max().alias("hi")).row(0)
    tc = ident("ts_recv_ns")
    txn.cur.execute(f"SELECT 1 FROM {ident(lay.physical)} WHERE {tc} >= {p(lo)} AND {tc} < {p(hi)} AND "
                    f"instrument_id BETWEEN {p(int(ilo))} AND {p(int(ihi))} AND "
                    f"{ident(SRC)} IN ({', '.join(p(int(c)) for c in codes)}) LIMIT 1", parameters=p.values)
    arrow = phys.to_arrow()
    if not txn.cur.fetchall():
        txn.cur.adbc_ingest(lay.physical, arrow, mode="append")
        return WriteResult(table.name, n, n, 0, "append")
    stage = f"hdi_stage_{table.name}"
    txn.cur.adbc_ingest(stage, arrow, mode="replace", temporary=True)
    txn.cur.execute(f"ANALYZE pg_temp.{stage}")  # row estimates, so that the anti-join hashes
    cols = ", ".join(ident(c) for c in lay.names)
    key = ", ".join([f"t.{ident(k)}" for k in lay.key] + ["ct.dataset"] + (["ct.publisher_id"] if lay.key_publisher
                                                                          else []))
    match = " AND ".join([f"o.{ident(k)} = s.{ident(k)}" for k in lay.key] + ["o.dataset = cs.dataset"]
                         + (["o.publisher_id = cs.publisher_id"] if lay.key_publisher else []))
    p = Params()
    # the stored keys in the batch's time range (chunk exclusion on ts_recv_ns), with their dataset
    where = (f"(SELECT {key} FROM {ident(lay.physical)} t JOIN {ident(SOURCES)} ct ON ct.{ident(SRC)} = "
             f"t.{ident(SRC)} WHERE t.{tc} >= {p(lo)} AND t.{tc} < {p(hi)})")
    if on_conflict == "update":
        sets = " AND ".join([f"d.{ident(k)} = s.{ident(k)}" for k in lay.key] + ["ct.dataset = cs.dataset"]
                            + (["ct.publisher_id = cs.publisher_id"] if lay.key_publisher else []))
        p = Params()
        gone = _counted(txn, lay, p, f"DELETE FROM {ident(lay.physical)} d USING pg_temp.{stage} s, "
                        f"{ident(SOURCES)} cs, {ident(SOURCES)} ct WHERE cs.{ident(SRC)} = s.{ident(SRC)} AND "
                        f"ct.{ident(SRC)} = d.{ident(SRC)} AND {sets} AND d.{tc} >= {p(lo)} AND d.{tc} < {p(hi)}",
                        "d.")
        p = Params()
        put = _counted(txn, lay, p, f"INSERT INTO {ident(lay.physical)} ({cols}) SELECT {cols} FROM pg_temp.{stage}",
                       "")
        # the replaced rows had the same keys (same dataset, instrument and day): only the rest are new
        txn.counts.add_stats(counts.subtract(put, gone))
        inserted, present = n, 0
    else:
        exprs = ", ".join(f"s.{ident(c)}" for c in lay.names)
        put = _counted(txn, lay, p, f"INSERT INTO {ident(lay.physical)} ({cols}) SELECT {exprs} "
                       f"FROM pg_temp.{stage} s JOIN {ident(SOURCES)} cs ON cs.{ident(SRC)} = s.{ident(SRC)} "
                       f"WHERE NOT EXISTS (SELECT 1 FROM {where} o WHERE {match})", "")
        txn.counts.add_stats(put)
        inserted = int(put.get_column("rows").sum()) if put.height else 0
        present = n - inserted
    txn.cur.execute(f"DROP TABLE pg_temp.{stage}")
    return WriteResult(table.name, n, inserted, present, "merge")


def recount_sql(scope: counts.Scope) -> list[tuple[str, list[Any]]]:
    """:func:`hdi.store.counts.recount_sql` for a lean table: the scope's count rows replaced by a
    recount of the physical rows by ``ts_recv_ns`` (chunk exclusion), instrument (the BRIN index) and
    source code, instead of the view's computed time column (which no index or chunk bound can use)."""
    lay = LAYOUTS[scope.table]
    ids = list(scope.instrument_ids) if scope.instrument_ids is not None else []
    counts_table = ident(ROW_COUNTS.name)
    p = Params()
    only = (" AND instrument_id IN (" + ", ".join(p(i) for i in ids) + ")") if scope.instrument_ids is not None else ""
    gone = (f"DELETE FROM {counts_table} WHERE table_name = {p(scope.table)} AND dataset = {p(scope.dataset)} "
            f"AND {ident('day')} >= {p(scope.first_day)} AND {ident('day')} <= {p(scope.last_day)}{only}", p.values)
    lo, hi = (to_ns(b) for b in scope.bounds())
    p = Params()
    only = (" AND t.instrument_id IN (" + ", ".join(p(i) for i in ids) + ")") if scope.instrument_ids is not None \
        else ""
    tc = "t." + ident("ts_recv_ns")
    where = f" WHERE s.dataset = {p(scope.dataset)} AND {tc} >= {p(lo)} AND {tc} < {p(hi)}{only}"
    cols = ", ".join(ident(c) for c in counts.COLUMNS)
    return [gone, (f"INSERT INTO {counts_table} ({cols}) {stats_select(lay, p, ident(lay.physical) + ' t')}{where} "
                   "GROUP BY 2, 3, 4, 5", p.values)]


def delete_days(txn: _PgTxn, table: Table, dataset: str, instrument_ids: Sequence[int], start: Any, end: Any,
                equals: dict[str, Any]) -> int:
    """:meth:`hdi.store.base.Transaction.delete_days` on a lean table: the physical rows of ``dataset``'s
    source codes and these instruments with ``ts_recv_ns`` in [start, end) (the view's time column is
    ``ts_recv_ns`` floored to the microsecond, and the bounds are whole microseconds, so the same rows)
    and the ``equals`` values; under the write path's day locks. Returns how many rows it deleted."""
    lay = LAYOUTS[table.name]
    lo, hi = to_ns(start), to_ns(end)
    _lock(txn, lay, lo, hi)
    p = Params()
    tc = ident("ts_recv_ns")
    where = [f"{ident(SRC)} IN (SELECT {ident(SRC)} FROM {ident(SOURCES)} WHERE dataset = {p(dataset)})",
             f"{tc} >= {p(lo)}", f"{tc} < {p(hi)}",
             f"instrument_id IN ({', '.join(p(int(i)) for i in instrument_ids)})"]
    for c, v in equals.items():
        if c in SOURCE_COLUMNS:  # from the table, not this process's cache: no code registered elsewhere is missed
            where.append(f"{ident(SRC)} IN (SELECT {ident(SRC)} FROM {ident(SOURCES)} WHERE {ident(c)} = {p(v)})")
            continue
        cond = _equal(lay, sources(txn.store), c, v, p)
        if cond is None:
            raise StoreError(f"delete_days: table '{table.name}' cannot filter column '{c}' on value {v!r}")
        where.append(cond)
    txn.cur.execute(f"WITH gone AS (DELETE FROM {ident(lay.physical)} WHERE {' AND '.join(where)} RETURNING 1) "
                    "SELECT count(*) FROM gone", parameters=p.values)
    rows = txn.cur.fetchall()
    return int(rows[0][0]) if rows else 0


# -- reads -----------------------------------------------------------------------------------------
def to_ns(value: Any) -> int:
    """A datetime (naive = UTC) or date as exact ns since the epoch."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        delta = value - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
        return int((delta.days * 86_400 + delta.seconds) * 10**9 + delta.microseconds * 1000)
    if isinstance(value, dt.date):
        return (value - dt.date(1970, 1, 1)).days * DAY_NS
    raise StoreError(f"a time bound must be a datetime or date, not {value!r}")


def _equal(lay: Layout, known: pl.DataFrame, column: str, value: Any, p: Params) -> str | None:
    """SQL for ``column = value`` on the physical table, or None when it has no simple form."""
    table = lay.table
    pc = lay.col(column)
    if column in SOURCE_COLUMNS:
        codes = known.filter(pl.col(column) == value).get_column(SRC).to_list() if value is not None else []
        return f"{ident(SRC)} IN ({', '.join(p(int(c)) for c in codes)})" if codes else "FALSE"
    if value is None:  # ``column = NULL``: no row, as on the other stores
        return "FALSE"
    ns_of = dict(table.ns_columns)
    if column in ns_of:  # the view's microseconds: the exact ns in [value, value + 1 us)
        if not isinstance(value, dt.date):
            return None
        v = to_ns(value)
        return f"{ident(ns_of[column])} >= {p(v)} AND {ident(ns_of[column])} < {p(v + 1000)}"
    if pc is None or table.column(column).type is ColType.TS:
        return None
    if pc.kind == "price":
        try:
            fixed = Decimal(str(value)) * 10**9
        except (ArithmeticError, ValueError):
            return None
        if fixed != fixed.to_integral_value() or not -(2**63) <= fixed < 2**63:
            return "FALSE"  # no stored price (int64 at 1e-9) equals it
        return f"{ident(column)} = {p(int(fixed))}"
    if pc.kind == "plain":
        return f"{ident(column)} = {p(value)}"
    if pc.kind == "side" and value in _SIDE_CODES:
        return f"{ident(column)} = {p(_SIDE_CODES[value])}"
    if pc.kind == "char" and value in _CHARS:
        return f"{ident(column)} = {p(_CHARS[value])}"
    if pc.kind in ("side", "char") and isinstance(value, str):
        return "FALSE"  # the view shows only 'buy'/'sell' and single characters
    return None


def select(store: TimescaleStore, table: Table, cols: Sequence[str], *, start: Any, end: Any,
           selections: pl.DataFrame | None, equals: dict[str, Any] | None) -> pl.DataFrame | None:
    """:meth:`Store.select` on a lean table, filtering the physical columns (chunk exclusion on
    ``ts_recv_ns``, the BRIN index on instrument); None when a filter has no physical form."""
    lay = LAYOUTS[table.name]
    known = sources(store)
    wanted = {v for c, v in (equals or {}).items() if c in SOURCE_COLUMNS}
    if selections is not None:
        wanted |= set(selections.get_column("dataset").drop_nulls().to_list())
    have = set(known.get_column("dataset").to_list()) | set(known.get_column("data_source").to_list()) | set(
        known.get_column("publisher_id").to_list())
    if wanted - have:  # a source another process registered since this store last looked
        known = sources(store, refresh=True)
    p = Params()
    tc = ident("ts_recv_ns")
    where: list[str] = []
    if start is not None:
        where.append(f"{tc} >= {p(to_ns(start))}")
    if end is not None:
        where.append(f"{tc} < {p(to_ns(end))}")
    for c, v in (equals or {}).items():
        cond = _equal(lay, known, c, v, p)
        if cond is None:
            return None
        where.append(cond)
    if selections is not None:
        ors = []
        for (ds, lo, hi), iids in selection_groups(selections).items():
            parts = [f"instrument_id IN ({', '.join(p(i) for i in iids)})"]
            if ds is not None:
                codes = known.filter(pl.col("dataset") == ds).get_column(SRC).to_list()
                if not codes:
                    continue
                parts.append(f"{ident(SRC)} IN ({', '.join(p(int(c)) for c in codes)})")
            if lo is not None:
                parts.append(f"{tc} >= {p(to_ns(lo))}")
            if hi is not None:
                parts.append(f"{tc} < {p(to_ns(hi))}")
            ors.append("(" + " AND ".join(parts) + ")")
        if not ors:
            return empty_frame(table, cols)
        where.append("(" + " OR ".join(ors) + ")")
    ns_of = dict(table.ns_columns)
    need: list[str] = []
    for c in cols:
        name = ns_of.get(c, c)
        if c in SOURCE_COLUMNS:
            name = SRC
        if name not in need:
            need.append(name)
    exprs = ", ".join(ident(c) for c in need)
    sql = (f"SELECT {exprs} FROM {ident(lay.physical)}" + (f" WHERE {' AND '.join(where)}" if where else "")
           + f" ORDER BY {tc} / 1000, instrument_id, {tc}{', rec_ordinal' if 'rec_ordinal' in lay.names else ''}")
    frame = store._fetch(sql, p.values)
    return normalise(decode(frame, lay, store, known), table, cols)


def decode(frame: pl.DataFrame, lay: Layout, store: TimescaleStore, known: pl.DataFrame) -> pl.DataFrame:
    """Physical columns back to the logical ones (sources, prices, sides, actions)."""
    if SRC in frame.columns:
        frame = frame.with_columns(pl.col(SRC).cast(pl.Int16))
        if frame.join(known, on=SRC, how="anti").height:
            known = sources(store, refresh=True)
        frame = frame.join(known, on=SRC, how="left")
    exprs = []
    for c in lay.columns:
        if c.name not in frame.columns:
            continue
        col = pl.col(c.name)
        if c.kind == "price":
            exprs.append(fixed_to_decimal(col.cast(pl.Int64)).alias(c.name))
        elif c.kind == "side":
            exprs.append(pl.when(col == 1).then(pl.lit("buy")).when(col == 2).then(pl.lit("sell"))
                         .otherwise(None).alias(c.name))
        elif c.kind == "char":
            exprs.append(col.cast(pl.Int64).replace_strict({v: k for k, v in _CHARS.items()}, default=None,
                                                           return_dtype=pl.String).alias(c.name))
    return frame.with_columns(exprs) if exprs else frame
