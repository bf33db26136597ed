"""The logical tables as SQL for each backend, the migrations, and frame <-> Arrow conforming.

Identifiers in SQL come only from the table definitions in :mod:`hdi._tables` and
:mod:`hdi.store.ledger` (a fixed whitelist); values are always bound parameters.
"""

from __future__ import annotations

import functools
import re

import polars as pl

from hdi._tables import ROLLS, TABLES, ColType, Table
from hdi.errors import StoreError
from hdi.store.ledger import LEDGER_TABLES

ALL_TABLES: dict[str, Table] = {**TABLES, **LEDGER_TABLES, ROLLS.name: ROLLS}
_OWN_NAME = re.compile(r"hdi_[a-z0-9_]{1,50}")

# Store schema version: bump and append a migration when the shape of a table changes.
SCHEMA_VERSION = 8  # 3: the rolls table (continuous futures); 4: the mbo, mbp10, bbo, cbbo, status, imbalance tables;
# 5: batch_jobs and batch_files (Databento batch jobs); 6: ingest_conditions (Databento's dataset condition of every fetched day); 7: row_counts (stored rows per day);
# 8: lean tick tables in TimescaleDB (views over hdi_<table>)

SQL_TYPES: dict[str, dict[ColType, str]] = {
    "timescale": {
        ColType.TEXT: "text", ColType.I16: "smallint", ColType.I32: "integer", ColType.I64: "bigint",
        ColType.PRICE: "numeric(19,9)", ColType.STAT: "numeric(28,9)", ColType.TS: "timestamptz",
        ColType.DATE: "date", ColType.F64: "double precision",
    },
    "duckdb": {
        ColType.TEXT: "VARCHAR", ColType.I16: "SMALLINT", ColType.I32: "INTEGER", ColType.I64: "BIGINT",
        ColType.PRICE: "DECIMAL(19,9)", ColType.STAT: "DECIMAL(28,9)", ColType.TS: "TIMESTAMPTZ_NS",
        ColType.DATE: "DATE", ColType.F64: "DOUBLE",
    },
}


def ident(name: str) -> str:
    """Quote an identifier that must come from the whitelist of table and column names (or be one of
    hdi's own ``hdi_*`` names: lower-case letters, digits and ``_`` only)."""
    if name not in _known_names() and not _OWN_NAME.fullmatch(name):
        raise StoreError(f"refusing SQL identifier '{name}': not a known table or column")
    return '"' + name + '"'


@functools.cache
def _known_names() -> frozenset[str]:
    """Every table and column name (the tables are fixed at import: looked up ~1,000 times per run)."""
    return frozenset(ALL_TABLES) | {c for t in ALL_TABLES.values() for c in t.names}


def create_table_sql(table: Table, backend: str) -> str:
    types = SQL_TYPES[backend]
    cols = ", ".join(
        f"{ident(c.name)} {types[c.type]}{'' if c.nullable else ' NOT NULL'}" for c in table.columns
    )
    return f"CREATE TABLE IF NOT EXISTS {ident(table.name)} ({cols})"


def key_index_name(table: Table) -> str:
    return f"hdi_{table.name}_key"


def conform(frame: pl.DataFrame, table: Table, *, backend: str) -> pl.DataFrame:
    """Select the table's columns in order with exactly the dtypes the backend's columns take.

    A missing column is an error; extra columns are dropped. Integer columns are cast strictly, so a
    value that does not fit (e.g. a uint64 volume >= 2^63, which ADBC would silently wrap negative)
    raises a StoreError naming the column instead of landing as a wrong number.
    """
    missing = [c for c in table.names if c not in frame.columns]
    if missing:
        raise StoreError(
            f"frame for table '{table.name}' lacks column(s) {', '.join(missing)}; "
            f"the table has: {', '.join(table.names)}"
        )
    exprs = []
    for col in table.columns:
        target = col.type.polars
        if backend == "timescale" and col.type is ColType.TS:
            target = pl.Datetime("us", "UTC")  # timestamptz holds microseconds; *_ns columns keep the rest
        src = frame.schema[col.name]
        if src == target:
            exprs.append(pl.col(col.name))
            continue
        if isinstance(src, pl.Datetime) and isinstance(target, pl.Datetime):
            e = pl.col(col.name)
            if src.time_zone is None:
                e = e.dt.replace_time_zone("UTC")
            elif src.time_zone != "UTC":
                e = e.dt.convert_time_zone("UTC")
            exprs.append(e.dt.cast_time_unit(target.time_unit).alias(col.name))
            continue
        exprs.append(pl.col(col.name).cast(target, strict=True))
    try:
        return frame.select(exprs)
    except (pl.exceptions.InvalidOperationError, pl.exceptions.ComputeError) as e:
        bad = _first_uncastable(frame, table)
        raise StoreError(f"cannot store frame in table '{table.name}': {bad or str(e).splitlines()[0]}") from None


def _first_uncastable(frame: pl.DataFrame, table: Table) -> str | None:
    for col in table.columns:
        s = frame.get_column(col.name)
        if isinstance(s.dtype, pl.Datetime):
            continue
        try:
            s.cast(col.type.polars, strict=True)
        except (pl.exceptions.InvalidOperationError, pl.exceptions.ComputeError):
            casted = s.cast(col.type.polars, strict=False)
            bad = s.filter(casted.is_null() & s.is_not_null())
            value = bad[0] if len(bad) else "?"
            return f"column '{col.name}' value {value} ({s.dtype}) does not fit {col.type.polars}"
    return None
