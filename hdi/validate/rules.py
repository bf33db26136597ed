"""Row rules per table: ``{reason: expression}``, True where the row is valid.

The rules are derived from the table's Patito model (:func:`hdi.validate.models.model_for`):

- ``<col>:null`` for each non-nullable column;
- one rule per bound: ``volume<0`` (from ``ge=0``), ``size<=0`` (``gt=0``), ``x>9`` (``le=9``),
  ``x>=9`` (``lt=9``);
- one rule per named constraint, its reason being the constraint's alias
  (``high_price<max(open,close,low)``, ``bid_price>ask_price``, ``stat_type:unknown``, ...);

plus rules that depend on the call, not on the table:

- ``<price column><=0`` (e.g. ``open_price<=0``) for ohlcv open/high/low/close, trades price and
  tbbo trade_price, except where ``allow_non_positive_prices`` is True (for every row, or an
  expression True for the rows whose instrument may trade at or below zero: see
  :mod:`hdi.validate.price_rules`);
- ``<time column><start`` and ``<time column>>=end`` for the requested range ``[start, end)``;
- ``<col>:does_not_fit_<dtype>`` for values that have no exact value in the table's dtype (given by
  :mod:`hdi.validate.conform`), written to quarantine as ``volume: 9223372036854775808 does not fit
  Int64``;
- ``duplicate_row`` and ``duplicate_key``: not row expressions, computed by :mod:`hdi.validate.split`.

Rules are listed column by column in table order (for each column: fit, null, positivity, bounds,
constraints, range), which is the order of reasons in ``_reasons``. A rule whose result is null (an
operand is null) passes: nullness is its own rule. Every returned expression is therefore non-null.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

import polars as pl

from hdi._tables import DATA_TABLES
from hdi._timeutil import as_utc
from hdi.errors import ValidationError
from hdi.validate._patito import pt
from hdi.validate.conform import dtype_name, fit_reason
from hdi.validate.models import model_for

DUPLICATE_ROW = "duplicate_row"
DUPLICATE_KEY = "duplicate_key"

POSITIVE_PRICES: dict[str, tuple[str, ...]] = {
    "ohlcv": ("open_price", "high_price", "low_price", "close_price"),
    "trades": ("price",),
    "tbbo": ("trade_price",),
}

# JSON-schema bound keyword -> (operator shown in the reason: the violation, check True when valid)
_BOUNDS: dict[str, tuple[str, Callable[[pl.Expr, float], pl.Expr]]] = {
    "minimum": ("<", lambda c, v: c >= v),
    "exclusiveMinimum": ("<=", lambda c, v: c > v),
    "maximum": (">", lambda c, v: c <= v),
    "exclusiveMaximum": (">=", lambda c, v: c < v),
}


def null_reason(column: str) -> str:
    """The reason key of a null in a non-nullable column: ``volume:null``."""
    return f"{column}:null"


def _bounds(props: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """Bounds of one column's JSON schema; an Optional field keeps them under ``anyOf``."""
    found = [(k, props[k]) for k in _BOUNDS if k in props]
    for alt in props.get("anyOf", []):
        found += [(k, alt[k]) for k in _BOUNDS if k in alt]
    return found


def model_rules(model: type[pt.Model]) -> dict[str, dict[str, pl.Expr]]:
    """Rules a Patito model implies, per column: non-null, bounds and named constraints.

    Only public Patito API is read (``model_schema``, ``column_infos``, ``non_nullable_columns``).
    A constraint's reason is its alias (``expr.meta.output_name()``).
    """
    props = model.model_schema["properties"]
    out: dict[str, dict[str, pl.Expr]] = {}
    for col in model.columns:
        c = pl.col(col)
        rules: dict[str, pl.Expr] = {}
        if col in model.non_nullable_columns:
            rules[null_reason(col)] = c.is_not_null()
        for key, value in _bounds(props[col]):
            shown, check = _BOUNDS[key]
            rules[f"{col}{shown}{value}"] = check(c, value)
        constraints = model.column_infos[col].constraints
        if isinstance(constraints, pl.Expr):
            constraints = [constraints]
        for expr in constraints or []:
            rules[expr.meta.output_name()] = expr
        out[col] = rules
    return out


def _utc(value: dt.datetime | dt.date) -> dt.datetime:
    """A bound as an aware UTC datetime: a naive datetime is UTC, a date is its midnight UTC."""
    return as_utc(value)


def _lit(value: dt.datetime) -> pl.Expr:
    return pl.lit(value).cast(pl.Datetime("ns", "UTC"))


def row_rules(
    table: str,
    *,
    start: dt.datetime | dt.date | None = None,
    end: dt.datetime | dt.date | None = None,
    allow_non_positive_prices: bool | pl.Expr = False,
    unfit: Mapping[str, str] | None = None,
) -> dict[str, pl.Expr]:
    """All row rules of a table, ``{reason: expression True when the row is valid}``.

    Args:
        table: a data table name.
        start: rows whose time column is before this are out of range (inclusive bound). A naive
            datetime is taken as UTC, a date as its midnight UTC.
        end: rows whose time column is at or after this are out of range (exclusive bound).
        allow_non_positive_prices: True drops the price positivity rules; an expression (over the
            conformed frame) exempts the rows where it is True (null counts as False).
        unfit: column -> name of a Boolean column, True where the input value did not fit the
            table's dtype (from :mod:`hdi.validate.conform`); such a row gets the fit reason and
            not also ``<col>:null``.

    Returns:
        Rules in table column order, each expression never null. They read the frame *after*
        conforming to the table's dtypes.

    Raises:
        ValidationError: unknown table, or ``end`` not after ``start``.
    """
    model = model_for(table)  # raises for an unknown table
    t = DATA_TABLES[table]
    start = None if start is None else _utc(start)
    end = None if end is None else _utc(end)
    if start is not None and end is not None and end <= start:
        raise ValidationError(f"{table}: end {end.isoformat()} is not after start {start.isoformat()}")
    unfit = unfit or {}
    exempt = allow_non_positive_prices if isinstance(allow_non_positive_prices, pl.Expr) else None
    positive = () if exempt is None and allow_non_positive_prices else POSITIVE_PRICES.get(table, ())
    per_column = model_rules(model)
    out: dict[str, pl.Expr] = {}
    for col in t.columns:
        c = pl.col(col.name)
        derived = dict(per_column[col.name])
        if col.name in unfit:
            out[fit_reason(col.name, col.type.polars)] = ~pl.col(unfit[col.name])
        if null_reason(col.name) in derived:
            not_null = derived.pop(null_reason(col.name))
            out[null_reason(col.name)] = not_null | pl.col(unfit[col.name]) if col.name in unfit else not_null
        if col.name in positive:
            out[f"{col.name}<=0"] = c > 0 if exempt is None else (c > 0) | exempt.fill_null(False)
        out.update(derived)
        if col.name == t.time_column:
            if start is not None:
                out[f"{col.name}<start"] = c >= _lit(start)
            if end is not None:
                out[f"{col.name}>=end"] = c < _lit(end)
    return {reason: expr.fill_null(True) for reason, expr in out.items()}


def fit_text(column: str, target: pl.DataType, value_column: str) -> pl.Expr:
    """Quarantine text for a value that does not fit: ``volume: 9223372036854775808 does not fit Int64``.

    ``value_column`` holds the input value as String.
    """
    return pl.concat_str(
        [pl.lit(f"{column}: "), pl.col(value_column), pl.lit(f" does not fit {dtype_name(target)}")]
    )
