"""The general-purpose ops: rename, select, drop, cast, constant, derive, filter.

An op has two halves:

- ``parse(arg) -> args``: load time. Checks the shape of the YAML arguments and returns normalized,
  JSON-like args (what ``recipe_hash`` hashes); errors point at the argument's line.
- ``build(args, ctx) -> fn``: compile time. Knows the frame's schema at that step, checks column
  names and types, and returns a pure ``LazyFrame -> LazyFrame`` made of Polars expressions.

The registry is :mod:`hdi.recipe.registry`; column ops live in ``ops_columns.py``, market-data ops
(fixed_to_decimal, ordinal, resample, stat_name, stat_value) in ``ops_market.py``. Each op module
imports only the registry, and :mod:`hdi.recipe` imports every op module.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, Literal

import polars as pl

from hdi._timeutil import TIME_RANGE, in_range, to_utc
from hdi.errors import allowed_list, did_you_mean
from hdi.recipe import expr as sqlexpr
from hdi.recipe.args import Arg
from hdi.recipe.checks import Problem
from hdi.recipe.registry import Ctx, StepFn, register

# ---- dtypes ---------------------------------------------------------------------------------

_SIMPLE = {n: getattr(pl, n) for n in ("Int8", "Int16", "Int32", "Int64", "UInt8", "UInt16", "UInt32",
                                        "UInt64", "Float32", "Float64", "String", "Boolean", "Date")}
DTYPES_ALLOWED = allowed_list([*_SIMPLE, "Decimal(P,S) with 1<=P<=38, 0<=S<=P",
                               "Datetime(ns|us|ms) or Datetime(ns|us|ms,UTC)"])
_DECIMAL = re.compile(r"^Decimal\(\s*(\d+)\s*,\s*(\d+)\s*\)$")
_TIME_UNITS: dict[str, Literal["ns", "us", "ms"]] = {"ns": "ns", "us": "us", "ms": "ms"}
_DATETIME = re.compile(r"^Datetime\(\s*(ns|us|ms)\s*(?:,\s*(UTC)\s*)?\)$")


def parse_dtype(text: Any) -> tuple[str, pl.DataType]:
    """A whitelisted dtype name -> (canonical name, Polars dtype); Problem otherwise."""
    if isinstance(text, str):
        t = text.strip()
        if t in _SIMPLE:
            return t, _SIMPLE[t]()
        m = _DECIMAL.match(t)
        if m and 1 <= int(m[1]) <= 38 and int(m[2]) <= int(m[1]):
            return f"Decimal({int(m[1])},{int(m[2])})", pl.Decimal(int(m[1]), int(m[2]))
        m = _DATETIME.match(t)
        if m:
            return (f"Datetime({m[1]},UTC)" if m[2] else f"Datetime({m[1]})"), pl.Datetime(_TIME_UNITS[m[1]], m[2])
    shown = f"'{text}'" if isinstance(text, str) else repr(text)
    if isinstance(text, str) and "(" in text and ")" not in text:
        shown += " (inside {...} quote a dtype with a comma: 'Decimal(19,9)')"
    raise Problem(f"unknown dtype {shown}", DTYPES_ALLOWED, did_you_mean(str(text), _SIMPLE))


# ---- rename / select / drop -------------------------------------------------------------------

def _parse_rename(a: Arg) -> dict[str, str]:
    out: dict[str, str] = {}
    for old, v in a.pairs("{old_name: new_name, ...}"):
        a.key_column(old)
        new = v.column()
        if new in out.values():
            v.fail(f"two columns renamed to '{new}'", "distinct new names")
        out[old] = new
    return out


def _build_rename(args: dict[str, str], ctx: Ctx) -> StepFn:
    for old in args:
        ctx.need(old, (old,))
    for old, new in args.items():
        if new in ctx.schema and new not in args:
            ctx.fail((old,), f"cannot rename '{old}' to '{new}': column '{new}' already exists",
                     "a new name, or drop/rename the existing column first")
    mapping = dict(args)
    return lambda lf: lf.rename(mapping)


def _build_select(args: list[str], ctx: Ctx) -> StepFn:
    for i, c in enumerate(args):
        ctx.need(c, (i,))
    return lambda lf: lf.select(args)


def _build_drop(args: list[str], ctx: Ctx) -> StepFn:
    for i, c in enumerate(args):
        ctx.need(c, (i,))
    return lambda lf: lf.drop(args)


# ---- cast / constant ---------------------------------------------------------------------------

def _parse_cast(a: Arg) -> dict[str, str]:
    out = {}
    for col, v in a.pairs("{column: dtype, ...}, e.g. {volume: Int64}"):
        a.key_column(col)
        try:
            out[col] = parse_dtype(v.value)[0]
        except Problem as p:
            v.fail(p.what, p.allowed, p.hint)
    return out


def _family(dtype: pl.DataType) -> str:
    if dtype == pl.Null:
        return "null"
    if dtype == pl.Boolean:
        return "bool"
    if dtype.is_integer():
        return "int"
    if dtype.is_float() or isinstance(dtype, pl.Decimal):
        return "real"
    if dtype == pl.String or isinstance(dtype, pl.Categorical | pl.Enum):
        return "text"
    if dtype == pl.Date:
        return "date"
    if isinstance(dtype, pl.Datetime):
        return "datetime"
    return "other"


# Source family -> target families a cast may produce. Polars accepts more on an empty frame (Date to
# Boolean, List to Int64) and only fails, or silently misleads, on data; those are refused here.
_CASTS = {
    "null": {"null", "bool", "int", "real", "text", "date", "datetime"},
    "bool": {"bool", "int", "real", "text"},
    "int": {"bool", "int", "real", "text", "date", "datetime"},
    "real": {"int", "real", "text"},
    "text": {"bool", "int", "real", "text", "date", "datetime"},
    "date": {"int", "text", "date", "datetime"},
    "datetime": {"int", "text", "date", "datetime"},
    "other": {"text"},
}


def _build_cast(args: dict[str, str], ctx: Ctx) -> StepFn:
    for col, name in args.items():
        src, dst = ctx.need(col, (col,)), parse_dtype(name)[1]
        if _family(dst) not in _CASTS[_family(src)]:
            ctx.fail((col,), f"cannot cast column '{col}' from {src} to {name}",
                     f"from {_family(src)}: {allowed_list(sorted(_CASTS[_family(src)]))} types")
    exprs = [pl.col(c).cast(parse_dtype(t)[1], strict=True) for c, t in args.items()]
    return lambda lf: lf.with_columns(exprs)


_CONST_TYPES = "a string, integer, number, boolean, date or null; or {value: V, dtype: T}"


def _parse_constant(a: Arg) -> dict[str, dict[str, Any]]:
    out = {}
    for col, v in a.pairs("{column: value, ...}, e.g. {data_source: databento}"):
        a.key_column(col)
        dtype = None
        value = v.value
        if isinstance(value, dict):
            kv = v.keys(("value",), ("dtype",))
            value = kv["value"].value
            if "dtype" in kv:
                try:
                    dtype = parse_dtype(kv["dtype"].value)[0]
                except Problem as p:
                    kv["dtype"].fail(p.what, p.allowed, p.hint)
        if value is not None and not isinstance(value, str | int | float | bool | dt.date):
            v.fail(f"unsupported constant {type(value).__name__}", _CONST_TYPES)
        if isinstance(value, int) and not isinstance(value, bool) and not -2**63 <= value < 2**63:
            v.fail(f"integer constant {value} does not fit in 64 bits", "-9223372036854775808..9223372036854775807",
                   exit_code=2)
        if isinstance(value, dt.datetime) and ((utc := to_utc(value)) is None or not in_range(utc)):
            v.fail(f"timestamp constant {value.isoformat()} is outside the times hdi can store", TIME_RANGE,
                   exit_code=2)
        out[col] = {"value": value, "dtype": dtype}
    return out


def _literal(value: Any, dtype: str | None) -> pl.Expr:
    if dtype is not None:
        return pl.lit(value).cast(parse_dtype(dtype)[1], strict=True)
    if value is None:
        return pl.lit(None)
    if isinstance(value, bool):
        return pl.lit(value, dtype=pl.Boolean)
    if isinstance(value, int):
        return pl.lit(value, dtype=pl.Int64)
    if isinstance(value, float):
        return pl.lit(value, dtype=pl.Float64)
    if isinstance(value, dt.datetime):
        return pl.lit(value).cast(pl.Datetime("ns", "UTC"))
    if isinstance(value, dt.date):
        return pl.lit(value, dtype=pl.Date)
    return pl.lit(value, dtype=pl.String)


def _build_constant(args: dict[str, dict[str, Any]], ctx: Ctx) -> StepFn:
    exprs = [_literal(spec["value"], spec["dtype"]).alias(col) for col, spec in args.items()]
    return lambda lf: lf.with_columns(exprs)


# ---- derive / filter ---------------------------------------------------------------------------

def _parse_expression(v: Arg) -> str:
    text = v.string(sqlexpr.ALLOWED)
    try:
        sqlexpr.parse(text)
    except Problem as p:
        v.fail(p.what, p.allowed, p.hint, exit_code=p.exit_code)
    return text


def _parse_derive(a: Arg) -> dict[str, str]:
    out = {}
    for col, v in a.pairs("{new_column: 'SQL expression', ...}, e.g. {mid: (bid + ask) / 2}"):
        a.key_column(col)
        out[col] = _parse_expression(v)
    return out


def _checked_expr(text: str, ctx: Ctx, path: tuple[Any, ...], same_step: dict[str, str] | None = None) -> pl.Expr:
    e = sqlexpr.parse(text)
    for col in sqlexpr.columns_read(e):
        if col not in ctx.schema and same_step and col in same_step:
            ctx.fail(path, f"'{col}' is derived in the same step; steps see only columns that exist before them",
                     "a second derive step that uses it")
        ctx.need(col, path)
    return e


def _build_derive(args: dict[str, str], ctx: Ctx) -> StepFn:
    exprs = [_checked_expr(t, ctx, (c,), args).alias(c) for c, t in args.items()]
    return lambda lf: lf.with_columns(exprs)


def _build_filter(text: str, ctx: Ctx) -> StepFn:
    e = _checked_expr(text, ctx, ())
    dtype = pl.LazyFrame(schema=ctx.schema).select(e.alias("_keep")).collect_schema()["_keep"]
    if dtype != pl.Boolean:
        ctx.fail((), f"the filter expression gives {dtype}, not a true/false value", "a condition, e.g. size > 0")
    return lambda lf: lf.filter(e)


register("rename", _parse_rename, _build_rename)
register("select", lambda a: a.columns(), _build_select)
register("drop", lambda a: a.columns(), _build_drop)
register("cast", _parse_cast, _build_cast)
register("constant", _parse_constant, _build_constant)
register("derive", _parse_derive, _build_derive)
register("filter", _parse_expression, _build_filter, reorders=True)
