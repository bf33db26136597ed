"""Frame helpers shared by the store backends: typed empty frames, fetched frames given exactly a
table's dtypes, and the time bounds of a batch."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import polars as pl

from hdi._tables import Table


def time_bounds(frame: pl.DataFrame, column: str) -> tuple[Any, Any]:
    """[lo, hi) covering every value of a time column, as Python values (µs precision).

    Python datetimes hold microseconds, so the upper bound is the max plus one microsecond, used
    with ``<``: a ns timestamp is never lost between two bounds.
    """
    lo, hi = frame.select(pl.col(column).min().alias("lo"), pl.col(column).max().alias("hi")).row(0)
    if isinstance(hi, dt.datetime):
        hi = hi + dt.timedelta(microseconds=1)
    elif isinstance(hi, dt.date):
        hi = hi + dt.timedelta(days=1)
    return lo, hi


def empty_frame(table: Table, columns: Sequence[str]) -> pl.DataFrame:
    """A typed empty frame with the given columns of the table."""
    return pl.DataFrame(schema={c: table.column(c).type.polars for c in columns})


def normalise(frame: pl.DataFrame, table: Table, columns: Sequence[str]) -> pl.DataFrame:
    """Give a fetched frame exactly the table's dtypes; rebuild ns timestamps from *_ns columns."""
    # the schema built once: DataFrame.schema makes a new Schema each time it is read
    return frame.select(normalise_exprs(frame.schema, table, columns))


def normalise_exprs(schema: pl.Schema, table: Table, columns: Sequence[str]) -> list[pl.Expr]:
    """:func:`normalise` as one expression per column of ``columns`` (in that order), for a frame
    of this ``schema``: a caller can add its own expressions to the same pass."""
    exprs = []
    ns_of = dict(table.ns_columns)
    for c in columns:
        target = table.column(c).type.polars
        if c in ns_of and ns_of[c] in schema:
            exprs.append(pl.col(ns_of[c]).cast(pl.Datetime("ns")).dt.replace_time_zone("UTC").alias(c))
            continue
        dtype = schema[c]
        if dtype == target:  # already as the table has it (DuckDB's TIMESTAMPTZ_NS is ns in UTC)
            exprs.append(pl.col(c))
        elif isinstance(dtype, pl.Datetime):
            e = pl.col(c)
            e = e.dt.replace_time_zone("UTC") if dtype.time_zone is None else e.dt.convert_time_zone("UTC")
            exprs.append(e.dt.cast_time_unit("ns").alias(c))
        else:
            exprs.append(pl.col(c).cast(target))
    return exprs
