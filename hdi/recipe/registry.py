"""The recipe op registry: :data:`OPS` maps an op name to its parse/build halves.

An op has two halves:

- ``parse(arg) -> args``: load time. Checks the shape of the YAML arguments and returns normalized,
  JSON-like args (what ``recipe_hash`` hashes); errors point at the argument's line.
- ``build(args, ctx) -> fn``: compile time. Knows the frame's schema at that step, checks column
  names and types, and returns a pure ``LazyFrame -> LazyFrame`` made of Polars expressions.

Op modules (``ops``, ``ops_columns``, ``ops_market``) import only this module and call
:func:`register`; the package :mod:`hdi.recipe` imports every op module, so :data:`OPS` is full once
``hdi.recipe`` is imported.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn

import polars as pl

from hdi.errors import RecipeError, allowed_list, did_you_mean
from hdi.recipe.args import Arg
from hdi.recipe.checks import message
from hdi.recipe.model import Source, Step

StepFn = Callable[[pl.LazyFrame], pl.LazyFrame]


class Ctx:
    """What a step's ``build`` knows: the recipe file, the step, the schema before the step, the source."""

    def __init__(self, file: str, step: Step, schema: dict[str, pl.DataType], source: Source) -> None:
        self.file, self.step, self.schema, self.source = file, step, schema, source
        self.source_schema = source.schema

    def fail(self, path: tuple[Any, ...], what: str, allowed: str, hint: str = "") -> NoReturn:
        line = self.step.line_of(*path)
        raise RecipeError(message(self.file, line, f"{self.step.label}: {what}", allowed, hint))

    def need(self, col: str, path: tuple[Any, ...]) -> pl.DataType:
        """The dtype of an existing column, or a clear error listing the columns there are."""
        if col not in self.schema:
            self.fail(path, f"unknown column '{col}'", allowed_list(self.schema), did_you_mean(col, self.schema))
        return self.schema[col]

    def fresh(self, col: str, path: tuple[Any, ...]) -> None:
        """``col`` is about to be created: it must not exist yet."""
        if col in self.schema:
            self.fail(path, f"column '{col}' already exists", "a new column name (drop or rename the old one first)")


@dataclass(frozen=True)
class Op:
    """A registered op. ``reorders``: it drops, reorders or aggregates rows (ordinal must come before)."""

    name: str
    parse: Callable[[Arg], Any]
    build: Callable[[Any, Ctx], StepFn]
    reorders: bool = False


OPS: dict[str, Op] = {}


def register(name: str, parse: Callable[[Arg], Any], build: Callable[[Any, Ctx], StepFn], *,
             reorders: bool = False) -> None:
    """Add an op under ``name`` (its YAML key in a recipe's ``steps``)."""
    OPS[name] = Op(name, parse, build, reorders)
