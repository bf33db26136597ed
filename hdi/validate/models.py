"""Patito models of the data tables, derived from :mod:`hdi._tables`.

One model per table in :data:`hdi._tables.DATA_TABLES`. Each field takes its Polars dtype from
``ColType.polars`` and its nullability from ``Column.nullable``, so the models cannot drift from the
logical schema. On top of that each table declares its invariants here, once:

- bounds (``ge``/``gt``) on integer columns, e.g. ``volume >= 0``, ``size > 0``;
- named cross-field constraints (Polars expressions, True = valid), e.g. ``high_price`` must be at
  least ``max(open, close, low)``. The constraint's *reason* (the text written to quarantine when a
  row breaks it) is the expression's alias, so the model carries it and :mod:`hdi.validate.rules`
  reads it back from the model.

A constraint whose result is null (a nullable operand is null) passes, as in Patito; nullness is
checked by its own rule. Price positivity is not a model invariant: recipes may allow non-positive
prices (spreads, negative-priced futures), so it is a switchable rule in :mod:`hdi.validate.rules`.

Mid-book states on some venues are *locked* (bid == ask) for an instant; that is allowed. A *crossed*
book (bid > ask) is flagged as ``bid_price>ask_price`` on both tbbo and mbp1.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from functools import cache
from typing import Any

import polars as pl
from pydantic import create_model

from hdi._stat_types import STAT_TYPES
from hdi._tables import DATA_TABLES, GRANULARITIES, ColType, Table
from hdi.errors import ValidationError, allowed_list, did_you_mean
from hdi.validate._patito import pt

SIDES = ("buy", "sell")
BOOK_ACTIONS = ("A", "C", "M", "R", "T", "F", "N")
SECURITY_UPDATE_ACTIONS = ("A", "M", "D")
UPDATE_ACTIONS = (1, 2)
YES_NO = ("Y", "N")

_PY_TYPES: dict[ColType, type] = {
    ColType.TEXT: str, ColType.I16: int, ColType.I32: int, ColType.I64: int,
    ColType.PRICE: Decimal, ColType.STAT: Decimal, ColType.TS: dt.datetime, ColType.DATE: dt.date,
    ColType.F64: float,
}


def _one_of(column: str, allowed: tuple[str, ...] | tuple[int, ...]) -> tuple[str, str, pl.Expr]:
    shown = ",".join(str(a) for a in allowed)
    if len(allowed) <= 4:  # a few equalities beat is_in on strings: 4 ms vs 18 ms per 2M rows
        return column, f"{column}:not_in({shown})", pl.any_horizontal(pl.col(column) == a for a in allowed)
    return column, f"{column}:not_in({shown})", pl.col(column).is_in(list(allowed))


def _ns_pairs(table: Table) -> list[tuple[str, str, pl.Expr]]:
    """``ts_recv_ns`` must be exactly ``received_timestamp_utc`` in ns (and so on for each pair)."""
    return [(ns, f"{ns}!={ts}", pl.col(ts).dt.epoch("ns") == pl.col(ns)) for ts, ns in table.ns_columns]


# Locked (bid == ask) is allowed, crossed (bid > ask) is not; null (passes) when a side is empty.
_BOOK = ("bid_price", "bid_price>ask_price", pl.col("bid_price") <= pl.col("ask_price"))


# (column the constraint belongs to, reason, expression True when valid), per table.
_CONSTRAINTS: dict[str, list[tuple[str, str, pl.Expr]]] = {
    "ohlcv": [
        _one_of("granularity", GRANULARITIES),
        ("high_price", "high_price<max(open,close,low)",
         pl.col("high_price") >= pl.max_horizontal("open_price", "close_price", "low_price")),
        ("low_price", "low_price>min(open,close)",
         pl.col("low_price") <= pl.min_horizontal("open_price", "close_price")),
        ("vwap", "vwap:outside(low,high)",
         (pl.col("vwap") >= pl.col("low_price")) & (pl.col("vwap") <= pl.col("high_price"))),
    ],
    "trades": [_one_of("aggressor_side", SIDES)],
    "tbbo": [_BOOK, _one_of("trade_side", SIDES)],
    "mbp1": [_one_of("action", BOOK_ACTIONS), _one_of("side", SIDES), _BOOK],
    "statistics": [
        ("stat_type", "stat_type:unknown", pl.col("stat_type").is_in(list(STAT_TYPES))),
        ("statistic_name", "statistic_name!=name(stat_type)",
         pl.col("statistic_name") == pl.col("stat_type").replace_strict(STAT_TYPES, default=None,
                                                                    return_dtype=pl.String)),
        _one_of("update_action", UPDATE_ACTIONS),
    ],
    "instruments": [
        ("raw_symbol", "raw_symbol:empty", pl.col("raw_symbol").str.strip_chars().str.len_chars() > 0),
        _one_of("security_update_action", SECURITY_UPDATE_ACTIONS),
    ],
    # issue 13. Consolidated snapshots (bbo on EQUS, cbbo across OPRA venues) may genuinely cross, so only
    # the single-venue books (mbp-10) flag bid > ask.
    "mbo": [_one_of("action", BOOK_ACTIONS), _one_of("side", SIDES)],
    "mbp10": [_one_of("action", BOOK_ACTIONS), _one_of("side", SIDES),
              ("bid_price_00", "bid_price_00>ask_price_00", pl.col("bid_price_00") <= pl.col("ask_price_00"))],
    "bbo": [_one_of("granularity", ("1s", "1m")), _one_of("side", SIDES)],
    "cbbo": [_one_of("granularity", ("1s", "1m")), _one_of("side", SIDES)],
    "status": [_one_of("is_trading", YES_NO), _one_of("is_quoting", YES_NO),
               _one_of("is_short_sell_restricted", YES_NO)],
    "imbalance": [_one_of("side", SIDES), _one_of("unpaired_side", SIDES)],
}

# Bounds on integer columns (Pydantic/Patito ``ge``/``gt``), per table.
_SIZES = {"bid_size": {"ge": 0}, "ask_size": {"ge": 0}, "bid_count": {"ge": 0}, "ask_count": {"ge": 0}}
_TICK = {"rec_ordinal": {"ge": 0}}
_BOUNDS: dict[str, dict[str, dict[str, int]]] = {
    "ohlcv": {"volume": {"ge": 0}, "trade_count": {"ge": 0}},
    "trades": {"size": {"gt": 0}, **_TICK},
    "tbbo": {**_SIZES, "trade_size": {"gt": 0}, **_TICK},
    "mbp1": {"size": {"ge": 0}, "depth": {"ge": 0}, **_SIZES, **_TICK},
    "statistics": {**_TICK},
    "instruments": {},
    # issue 13
    "mbo": {"size": {"ge": 0}, **_TICK},
    "mbp10": {"size": {"ge": 0}, "depth": {"ge": 0}, **_TICK,
              **{f"{side}_{what}_{lv:02d}": {"ge": 0} for side in ("bid", "ask") for what in ("size", "count")
                 for lv in range(10)}},
    "bbo": {**_SIZES, "size": {"ge": 0}},
    "cbbo": {"bid_size": {"ge": 0}, "ask_size": {"ge": 0}, "size": {"ge": 0}},
    "status": {**_TICK},
    "imbalance": {**_TICK},
}


def _data_table(name: str) -> Table:
    try:
        return DATA_TABLES[name]
    except KeyError:
        raise ValidationError(
            f"unknown data table '{name}'{did_you_mean(name, DATA_TABLES)}; "
            f"allowed: {allowed_list(DATA_TABLES)}"
        ) from None


def constraints_of(table: str) -> list[tuple[str, str, pl.Expr]]:
    """The table's named cross-field constraints: ``(column, reason, expr True when valid)``."""
    t = _data_table(table)
    return [(c, reason, expr) for c, reason, expr in _CONSTRAINTS[t.name] + _ns_pairs(t)]


def _build(t: Table) -> type[pt.Model]:
    per_column: dict[str, list[pl.Expr]] = {}
    for column, reason, expr in constraints_of(t.name):
        per_column.setdefault(column, []).append(expr.alias(reason))
    fields: dict[str, Any] = {}
    for c in t.columns:
        py: Any = _PY_TYPES[c.type]
        kwargs: dict[str, Any] = {"dtype": c.type.polars, **_BOUNDS[t.name].get(c.name, {})}
        if c.name in per_column:
            kwargs["constraints"] = per_column[c.name]
        if c.nullable:
            fields[c.name] = (py | None, pt.Field(default=None, **kwargs))
        else:
            fields[c.name] = (py, pt.Field(**kwargs))
    model: type[pt.Model] = create_model(t.name.title() + "Row", __base__=pt.Model, **fields)
    return model


@cache
def model_for(table_name: str) -> type[pt.Model]:
    """The Patito model of a data table.

    Args:
        table_name: a key of :data:`hdi._tables.DATA_TABLES` (``ohlcv``, ``trades``, ...).

    Returns:
        A ``patito.Model`` subclass whose columns, dtypes, nullability, bounds and constraints are
        those of the table; ``model.validate(frame)`` accepts exactly conforming frames.

    Raises:
        ValidationError: the name is not a data table.
    """
    return _build(_data_table(table_name))
