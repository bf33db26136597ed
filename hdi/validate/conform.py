"""Conform a frame's dtypes to a table's: which casts are allowed, and which rows do not fit.

Frames arrive with the table's columns but not always its exact dtypes (``volume`` may still be
UInt64, ``instrument_id`` UInt32, a timestamp ``Datetime("us", "UTC")``). A cast is allowed when it
can keep every value exactly, row by row:

============================  ================================================================
target                        accepted sources
============================  ================================================================
Int16 / Int32 / Int64         any integer (rows outside the target's range do not fit)
Decimal(p, s)                 any Decimal (rows that overflow or would lose digits of the
                              fraction do not fit); never Float (inexact), String, nor an
                              integer (DBN fixed-point 1e-9 units or whole units? ambiguous)
Datetime("ns", "UTC")         Datetime with any unit and any time zone (the instant is kept;
                              rows outside the ns range, years 1677-2262, do not fit); never a
                              naive Datetime (which zone?) nor an integer (which unit?)
Date                          Date
String                        String, Categorical, Enum
Float64                       Float32, Float64
============================  ================================================================

A column of dtype Null (all values null) casts to anything. Any other pair is a frame-level
:class:`~hdi.errors.ValidationError`. A row whose value does not fit is a row-level failure with
reason ``<column>:does_not_fit_<dtype>`` (the ADBC uint64 trap: 2^63 must not wrap to -2^63).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import polars as pl

from hdi._tables import Table
from hdi.errors import ValidationError, allowed_list, did_you_mean

_INT_RANGE: dict[pl.DataType, tuple[int, int]] = {
    pl.Int8(): (-(2**7), 2**7 - 1), pl.Int16(): (-(2**15), 2**15 - 1),
    pl.Int32(): (-(2**31), 2**31 - 1), pl.Int64(): (-(2**63), 2**63 - 1),
    pl.Int128(): (-(2**127), 2**127 - 1),
    pl.UInt8(): (0, 2**8 - 1), pl.UInt16(): (0, 2**16 - 1), pl.UInt32(): (0, 2**32 - 1),
    pl.UInt64(): (0, 2**64 - 1), pl.UInt128(): (0, 2**128 - 1),
}


def dtype_name(dtype: pl.DataType) -> str:
    """A short dtype name for messages: ``Int64``, ``Decimal(19,9)``, ``Datetime(ns,UTC)``."""
    if isinstance(dtype, pl.Decimal):
        return f"Decimal({dtype.precision},{dtype.scale})"
    if isinstance(dtype, pl.Datetime):
        return f"Datetime({dtype.time_unit},{dtype.time_zone})" if dtype.time_zone else \
            f"Datetime({dtype.time_unit})"
    return str(dtype)


def fit_reason(column: str, target: pl.DataType) -> str:
    """The reason key of a value that does not fit the column's dtype."""
    return f"{column}:does_not_fit_{dtype_name(target)}"


@dataclass(frozen=True)
class ColumnCast:
    """How one input column becomes a table column."""

    column: str
    source: pl.DataType
    target: pl.DataType
    expr: pl.Expr  # the conformed column, named as the table column
    unfit: pl.Expr | None  # True where a non-null input has no exact value in the target; None = never


def _int_fits(src: pl.DataType, lo: int, hi: int) -> bool:
    s_lo, s_hi = _INT_RANGE[src]
    return lo <= s_lo and s_hi <= hi


def _refusal(src: pl.DataType, tgt: pl.DataType) -> str | None:
    """Why ``src`` cannot be cast to ``tgt`` at all, or None when it can (maybe row by row)."""
    if src == pl.Null or src == tgt:
        return None
    if tgt in _INT_RANGE:
        return None if src in _INT_RANGE else "only integer columns can be cast to it"
    if isinstance(tgt, pl.Decimal):
        if isinstance(src, pl.Decimal):
            return None
        return "prices must be exact Decimals: convert fixed-point integers in the recipe"
    if isinstance(tgt, pl.Datetime):
        if isinstance(src, pl.Datetime):
            return None if src.time_zone else "a naive timestamp is ambiguous: give it a time zone"
        return "only time-zone-aware Datetime columns can be cast to it"
    if tgt == pl.String:
        return None if isinstance(src, pl.Categorical | pl.Enum) else "only text columns can be cast to it"
    if tgt == pl.Float64:
        return None if src == pl.Float32 else "only float columns can be cast to it"
    return "no exact cast exists"


def _unfit(name: str, src: pl.DataType, tgt: pl.DataType, cast: pl.Expr) -> pl.Expr | None:
    c = pl.col(name)
    overflow = c.is_not_null() & cast.is_null()
    if src == pl.Null or isinstance(src, pl.Categorical | pl.Enum | pl.Float32):
        return None
    if tgt in _INT_RANGE:
        return None if _int_fits(src, *_INT_RANGE[tgt]) else overflow
    if isinstance(tgt, pl.Decimal):
        assert isinstance(src, pl.Decimal)
        if src.scale > tgt.scale:  # would drop digits of the fraction: the value must come back equal
            return overflow | (cast.cast(src) != c).fill_null(False)
        src_int_digits = (src.precision or 38) - src.scale
        return None if src_int_digits <= tgt.precision - tgt.scale else overflow
    if isinstance(tgt, pl.Datetime):
        assert isinstance(src, pl.Datetime)
        return None if src.time_unit == "ns" else overflow
    return None


def plan(schema: Mapping[str, pl.DataType], table: Table) -> dict[str, ColumnCast]:
    """Check a frame's schema against a table and say how each table column is conformed.

    Args:
        schema: the frame's schema (``frame.schema``); extra columns are ignored.
        table: the target table.

    Returns:
        One :class:`ColumnCast` per table column, in table order.

    Raises:
        ValidationError: a table column is missing, or its dtype cannot be cast to the table's.
    """
    missing = [c for c in table.columns if c.name not in schema]
    if missing:
        extra = [n for n in schema if n not in table.names]
        first = missing[0]
        more = f"; also missing: {allowed_list(c.name for c in missing[1:])}" if missing[1:] else ""
        raise ValidationError(
            f"{table.name}: frame has no column '{first.name}' ({dtype_name(first.type.polars)} "
            f"expected){did_you_mean(first.name, extra)}{more}"
        )
    out: dict[str, ColumnCast] = {}
    for col in table.columns:
        src, tgt = schema[col.name], col.type.polars
        why = _refusal(src, tgt)
        if why is not None:
            raise ValidationError(
                f"{table.name}: column '{col.name}' has dtype {dtype_name(src)}, expected "
                f"{dtype_name(tgt)}: {why}"
            )
        if src == tgt:
            out[col.name] = ColumnCast(col.name, src, tgt, pl.col(col.name), None)
            continue
        cast = pl.col(col.name).cast(tgt, strict=False)
        out[col.name] = ColumnCast(col.name, src, tgt, cast.alias(col.name), _unfit(col.name, src, tgt, cast))
    return out
