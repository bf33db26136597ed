"""Compile a recipe's transform into one pure ``LazyFrame -> LazyFrame`` function, and hash recipes.

Compiling runs every step on an EMPTY frame of the input schema, so an unknown column, a bad cast
or a bad expression is reported with the step's ``file:line`` before anything is downloaded. The
function ends with a select of the target table's columns in table order; it does not cast to the
table's types (validation checks castability per row and conforms the types).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import polars as pl

from hdi._tables import DATA_TABLES, ColType, Table
from hdi.errors import RecipeError, allowed_list
from hdi.recipe.checks import message
from hdi.recipe.model import Recipe, Step, jsonable
from hdi.recipe.registry import OPS, Ctx, StepFn

log = logging.getLogger(__name__)

HASH_VERSION = 1  # bump when an op's semantics change, so old ledger entries stop matching

_FAMILY: dict[ColType, tuple[str, Callable[[pl.DataType], bool]]] = {
    ColType.PRICE: ("Decimal (use fixed_to_decimal on DBN fixed-point prices)", lambda d: isinstance(d, pl.Decimal)),
    ColType.STAT: ("Decimal (use stat_value)", lambda d: isinstance(d, pl.Decimal)),
    ColType.TS: ("Datetime", lambda d: isinstance(d, pl.Datetime)),
    ColType.DATE: ("Date", lambda d: d == pl.Date),
    ColType.TEXT: ("String", lambda d: d == pl.String or isinstance(d, pl.Categorical | pl.Enum)),
    ColType.I16: ("an integer type", lambda d: d.is_integer()),
    ColType.I32: ("an integer type", lambda d: d.is_integer()),
    ColType.I64: ("an integer type", lambda d: d.is_integer()),
    ColType.F64: ("a numeric type", lambda d: d.is_numeric()),
}


@dataclass(frozen=True)
class CompiledRecipe:
    """A compiled recipe: ``fn`` maps a decoded frame (``input_schema``) to ``table``'s columns."""

    recipe: Recipe
    fn: Callable[[pl.LazyFrame], pl.LazyFrame]
    input_schema: dict[str, pl.DataType]
    output_schema: dict[str, pl.DataType]
    table: Table


def compile_recipe(recipe: Recipe, input_schema: Mapping[str, pl.DataType], *,
                   select_target: bool = True) -> CompiledRecipe:
    """Compile ``recipe.transform`` for frames of ``input_schema``.

    Args:
        recipe: A loaded recipe.
        input_schema: The decoded frame's columns and dtypes (decode's ``frame_schema`` plus ``dataset``).
        select_target: True (the pipeline): end with the target table's columns, checked against the
            table. False (previews, debugging): return every column the transform leaves, unchecked.

    Returns:
        The compiled recipe; ``fn`` is pure and builds a lazy plan only (no data is touched).

    Raises:
        RecipeError: At the offending step's line (unknown column, wrong type, bad expression,
            ordinal after a row-reordering step), or at the ``target`` line when the table needs a
            column the transform does not produce or produces with an incompatible type.
    """
    file = str(recipe.path)
    schema_in = dict(input_schema)
    empty = pl.LazyFrame(schema=schema_in)
    lf, schema = empty, dict(schema_in)
    fns: list[StepFn] = []
    reorder: Step | None = None
    for step in recipe.transform:
        op = OPS[step.op]
        if step.op == "ordinal" and reorder is not None:
            raise RecipeError(message(file, step.line, f"{step.label}: ordinal comes after {reorder.label} "
                                      f"(line {reorder.line}), which drops or reorders rows",
                                      "ordinal before any filter/resample: it numbers records in stream order"))
        fn = op.build(step.args, Ctx(file, step, schema, recipe.source))
        lf, schema = _apply(file, step, fn, lf)
        fns.append(fn)
        if op.reorders and reorder is None:
            reorder = step
    table = DATA_TABLES[recipe.target.table]
    if select_target:
        _check_target(recipe, table, schema)
    names = table.names if select_target else list(schema)
    chain = [*fns, lambda f: f.select(names)]
    _run_empty(file, recipe, chain, empty)
    output_schema = {n: schema[n] for n in names}
    log.debug("compiled %s: %d steps, %s -> %s (%d columns)", file, len(fns), recipe.source.schema,
              table.name if select_target else "preview", len(names))
    return CompiledRecipe(recipe=recipe, fn=_composed(file, chain, schema_in), input_schema=schema_in,
                          output_schema=output_schema, table=table)


def _polars_reason(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _apply(file: str, step: Step, fn: StepFn, lf: pl.LazyFrame) -> tuple[pl.LazyFrame, dict[str, pl.DataType]]:
    try:
        out = fn(lf)
        return out, dict(out.collect_schema())
    except pl.exceptions.PolarsError as exc:
        raise RecipeError(message(file, step.line, f"{step.label}: {_polars_reason(exc)}",
                                  f"arguments and column types as in docs/recipes.md ('{step.op}')")) from None


def _check_target(recipe: Recipe, table: Table, schema: dict[str, pl.DataType]) -> None:
    file, line = str(recipe.path), recipe.line_of("target")
    missing = [c for c in table.names if c not in schema]
    if missing:
        raise RecipeError(message(
            file, line, f"table '{table.name}' needs column(s) the transform does not produce: "
            f"{allowed_list(missing)}", f"the transform produces {allowed_list(schema)}"))
    for col in table.columns:
        dtype = schema[col.name]
        family, ok = _FAMILY[col.type]
        if dtype == pl.Null:
            if not col.nullable:
                raise RecipeError(message(file, line, f"column '{col.name}' of table '{table.name}' is always "
                                          "null but may not be null", f"{family} values"))
        elif not ok(dtype):
            raise RecipeError(message(file, line, f"column '{col.name}' is {dtype}; table '{table.name}' stores "
                                      f"{_show(col.type.polars)}", family))


def _show(dtype: pl.DataType) -> str:
    if isinstance(dtype, pl.Decimal):
        return f"Decimal({dtype.precision},{dtype.scale})"
    if isinstance(dtype, pl.Datetime):
        return f"Datetime({dtype.time_unit},{dtype.time_zone})" if dtype.time_zone else f"Datetime({dtype.time_unit})"
    return str(dtype)


def _run_empty(file: str, recipe: Recipe, chain: list[StepFn], empty: pl.LazyFrame) -> None:
    """Execute the whole chain on the empty frame; on failure, name the first step that fails."""
    try:
        _fold(chain, empty).collect()
        return
    except pl.exceptions.PolarsError as exc:
        reason = _polars_reason(exc)
    for n, step in enumerate(recipe.transform, start=1):
        try:
            _fold(chain[:n], empty).collect()
        except pl.exceptions.PolarsError as exc:
            raise RecipeError(message(file, step.line, f"{step.label}: {_polars_reason(exc)}",
                                      f"arguments and column types as in docs/recipes.md ('{step.op}')")) from None
    raise RecipeError(message(file, recipe.line_of("target"), f"selecting the target columns failed: {reason}",
                              "a transform that produces the table's columns"))


def _fold(chain: list[StepFn], lf: pl.LazyFrame) -> pl.LazyFrame:
    for fn in chain:
        lf = fn(lf)
    return lf


def _composed(file: str, chain: list[StepFn], schema_in: dict[str, pl.DataType]) -> Callable[[pl.LazyFrame], pl.LazyFrame]:
    def run(lf: pl.LazyFrame) -> pl.LazyFrame:
        got = dict(lf.collect_schema())
        if got != schema_in:
            diff = sorted({k for k in got.keys() | schema_in.keys() if got.get(k) != schema_in.get(k)})
            raise RecipeError(message(file, None, "frame does not match the schema the recipe was compiled for "
                                      f"(differs in: {allowed_list(diff)})",
                                      f"columns {allowed_list(f'{k}:{v}' for k, v in schema_in.items())}"))
        return _fold(chain, lf)

    return run


def recipe_hash(recipe: Recipe) -> str:
    """A stable hash of what decides how a chunk's records become rows.

    Covered: vendor, DBN schema, every transform step (op and normalized arguments),
    ``allow_non_positive_prices`` and the target (table, on_conflict): everything that can change
    the rows a chunk stores. Not covered: comments, whitespace, key order, name, description,
    gateway, start/end, requests/symbols and chunking, which decide *which* chunks are loaded, not
    *how* (so widening a recipe's range keeps its loaded chunks current), and ``max_failure_rate``
    and ``on_budget_exceeded``, which only decide how a run reports (or whether a chunk commits).
    ``allow_non_positive_prices`` unset hashes as ``false``.

    Returns:
        64 hex characters (sha256).
    """
    content: dict[str, Any] = {
        "hash_version": HASH_VERSION,
        "vendor": recipe.source.vendor,
        "schema": recipe.source.schema,
        "transform": [[s.op, s.args] for s in recipe.transform],
        # unset (follow the instrument) hashes as false did, so chunks loaded before the price rule
        # learnt about instruments stay done; rows it quarantined are brought in by a replay
        "allow_non_positive_prices": bool(recipe.validate.allow_non_positive_prices),
        "target": asdict(recipe.target),
    }
    text = json.dumps(jsonable(content), sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()
