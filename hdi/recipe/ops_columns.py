"""Column ops: map_values, epoch_ns, utc_date (registered into ``registry.OPS``)."""

from __future__ import annotations

from typing import Any

import polars as pl

from hdi.recipe.args import Arg
from hdi.recipe.checks import type_name
from hdi.recipe.registry import Ctx, StepFn, register

# Above this many keys a hash lookup (replace_strict) beats a when/then chain.
_WHEN_CHAIN_MAX = 16


def _scalar_kind(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, str):
        return "str"
    return "other"


def _parse_map_values(a: Arg) -> dict[str, Any]:
    kv = a.keys(("column", "mapping"), ("to", "default"))
    column = kv["column"].column()
    to = kv["to"].column() if "to" in kv else column
    mapping: list[list[Any]] = []
    kinds: set[str] = set()
    for key, v in kv["mapping"].pairs("{from_value: to_value, ...}, e.g. {B: buy, A: sell, N: null}"):
        if _scalar_kind(key) not in ("str", "int", None):
            kv["mapping"].fail(f"mapping key {type_name(key)} is not a string or integer (quote it in YAML)",
                               "string or integer keys, e.g. 'B' or 3")
        if _scalar_kind(v.value) not in ("str", "int", None):
            v.fail(f"mapped value {type_name(v.value)} is not a string, integer or null",
                   "a string, an integer or null")
        kinds.add(_scalar_kind(v.value) or "null")
        mapping.append([key, v.value])
    default = kv["default"].value if "default" in kv else None
    if _scalar_kind(default) not in ("str", "int", None):
        kv["default"].fail(f"default {type_name(default)} is not a string, integer or null",
                           "a string, an integer or null")
    kinds.add(_scalar_kind(default) or "null")
    if {"str", "int"} <= kinds:
        kv["mapping"].fail("mapped values mix strings and integers", "all strings (or null), or all integers (or null)")
    return {"column": column, "to": to, "mapping": mapping, "default": default}


def _build_map_values(args: dict[str, Any], ctx: Ctx) -> StepFn:
    col, to = args["column"], args["to"]
    src = ctx.need(col, ("column",))
    if to != col:
        ctx.fresh(to, ("to",))
    want = "str" if src == pl.String else "int" if src.is_integer() else None
    if want is None:
        ctx.fail(("column",), f"column '{col}' is {src}", "a String or integer column")
    for key, _ in args["mapping"]:
        if key is not None and _scalar_kind(key) != want:
            ctx.fail(("mapping", key), f"mapping key {type_name(key)} does not match column '{col}' ({src})",
                     "string keys for a String column (quote numbers), integer keys for an integer column")
    values = [v for _, v in args["mapping"]] + [args["default"]]
    out_type = pl.Int64 if any(_scalar_kind(v) == "int" for v in values) else pl.String
    c = pl.col(col)
    default = pl.lit(args["default"], dtype=out_type)
    if len(args["mapping"]) <= _WHEN_CHAIN_MAX:
        chain: Any = pl
        for key, value in args["mapping"]:
            cond = c.is_null() if key is None else c == pl.lit(key, dtype=src)
            chain = chain.when(cond).then(pl.lit(value, dtype=out_type))
        e = chain.otherwise(default) if args["mapping"] else default
    else:
        plain = {k: v for k, v in args["mapping"] if k is not None}
        e = c.replace_strict(plain, default=default, return_dtype=out_type)
        nulls = [v for k, v in args["mapping"] if k is None]
        if nulls:
            e = pl.when(c.is_null()).then(pl.lit(nulls[0], dtype=out_type)).otherwise(e)
    e = e.alias(to)
    return lambda lf: lf.with_columns(e)


def _parse_epoch_ns(a: Arg) -> dict[str, str]:
    out = {}
    for new, v in a.pairs("{new_ns_column: datetime_column, ...}, e.g. {ts_recv_ns: ts_recv}"):
        a.key_column(new)
        out[new] = v.column()
    return out


def _build_epoch_ns(args: dict[str, str], ctx: Ctx) -> StepFn:
    exprs = []
    for new, src in args.items():
        dtype = ctx.need(src, (new,))
        if not isinstance(dtype, pl.Datetime):
            ctx.fail((new,), f"column '{src}' is {dtype}, not a timestamp", "a Datetime column such as ts_recv")
        if new != src:
            ctx.fresh(new, (new,))
        exprs.append(pl.col(src).dt.epoch("ns").alias(new))
    return lambda lf: lf.with_columns(exprs)


def _parse_utc_date(a: Arg) -> dict[str, list[str]]:
    out = {}
    for new, v in a.pairs("{new_date_column: [datetime columns, first non-null wins], ...}"):
        a.key_column(new)
        out[new] = [v.column()] if isinstance(v.value, str) else v.columns()
    return out


def _build_utc_date(args: dict[str, list[str]], ctx: Ctx) -> StepFn:
    exprs = []
    for new, cols in args.items():
        parts = []
        for c in cols:
            dtype = ctx.need(c, (new,))
            if not isinstance(dtype, pl.Datetime):
                ctx.fail((new,), f"column '{c}' is {dtype}, not a timestamp", "Datetime columns such as ts_ref, ts_event")
            e = pl.col(c)
            if dtype.time_zone not in (None, "UTC"):
                e = e.dt.convert_time_zone("UTC")
            parts.append(e.dt.date())
        exprs.append((pl.coalesce(parts) if len(parts) > 1 else parts[0]).alias(new))
    return lambda lf: lf.with_columns(exprs)


register("map_values", _parse_map_values, _build_map_values)
register("epoch_ns", _parse_epoch_ns, _build_epoch_ns)
register("utc_date", _parse_utc_date, _build_utc_date)
