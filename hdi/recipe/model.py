"""Typed, immutable recipe objects (what ``load_recipe`` returns and the pipeline reads).

All values are already checked when these objects exist: a :class:`Recipe` is always valid, and
:meth:`Recipe.with_overrides` re-checks whatever it changes.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hdi.errors import allowed_list, did_you_mean
from hdi.recipe import checks
from hdi.recipe.checks import Problem


@dataclass(frozen=True)
class Request:
    """One Databento request: a dataset, how symbols are given (stype_in) and the symbols."""

    dataset: str
    stype_in: str
    symbols: tuple[str, ...]

    def label(self) -> str:
        return f"{self.dataset}/{self.stype_in} [{', '.join(self.symbols)}]"


@dataclass(frozen=True)
class Chunk:
    """How a date range is split into downloads: by ``period`` and at most ``max_symbols`` per request."""

    period: str = "month"
    max_symbols: int = 10

    @property
    def days(self) -> int | None:
        """The fixed length in days for ``<N>d`` periods, 1 for ``day``, 7 for ``week``; else None."""
        if self.period.endswith("d") and self.period[:-1].isdigit():
            return int(self.period[:-1])
        return {"day": 1, "week": 7}.get(self.period)


@dataclass(frozen=True)
class Source:
    """Where the data comes from. ``start`` is inclusive, ``end`` exclusive; both aware UTC datetimes.

    A recipe used only with ``--from-file`` may leave out start, end (then None) and requests (then
    empty): files are loaded whole. ``hdi ingest`` without files refuses such a recipe.
    """

    vendor: str
    gateway: str | None
    schema: str
    start: dt.datetime | None
    end: dt.datetime | None
    chunk: Chunk
    requests: tuple[Request, ...]
    # --batch auto: a run whose billable size (metadata.get_billable_size) is above this goes by batch jobs
    batch_threshold_bytes: int = 5_000_000_000

    @property
    def symbols(self) -> tuple[str, ...]:
        """Every requested symbol, in recipe order."""
        return tuple(s for r in self.requests for s in r.symbols)


@dataclass(frozen=True)
class Step:
    """One transform step: the op name and its normalized (JSON-like) arguments.

    ``line`` is the line of the op key; ``lines`` maps an argument path such as ``("open",)`` or
    ``("columns", 2)`` to the line it was written on, so compile errors can point at it.
    """

    op: str
    args: Any
    line: int
    index: int
    lines: Mapping[tuple[Any, ...], int] = field(default_factory=dict, compare=False, repr=False)

    def line_of(self, *path: Any) -> int:
        return self.lines.get(tuple(path), self.line)

    @property
    def label(self) -> str:
        return f"transform[{self.index}] {self.op}"


@dataclass(frozen=True)
class ValidateOptions:
    """Validation settings: the quarantine budget and rule switches.

    ``allow_non_positive_prices`` None (the default) lets the price rule follow the instrument
    (:mod:`hdi.validate.price_rules`); True or False overrides it for every instrument.
    ``on_budget_exceeded`` is ``report`` (every good row loads; the run ends with exit code 3) or
    ``rollback`` (a chunk above ``max_failure_rate`` is rolled back and fails).
    """

    max_failure_rate: float = 0.01
    allow_non_positive_prices: bool | None = None
    on_budget_exceeded: str = "report"


@dataclass(frozen=True)
class Target:
    """Where rows go: a table of :data:`hdi._tables.DATA_TABLES` and what to do on a key conflict."""

    table: str
    on_conflict: str = "ignore"


@dataclass(frozen=True)
class Recipe:
    """A loaded, checked recipe. ``lines`` maps dotted keys (``source.start``, ``target``) to lines."""

    name: str
    description: str
    path: Path
    source: Source
    transform: tuple[Step, ...]
    validate: ValidateOptions
    target: Target
    lines: Mapping[str, int] = field(default_factory=dict, compare=False, repr=False)

    def line_of(self, key: str) -> int | None:
        return self.lines.get(key)

    def with_overrides(
        self,
        *,
        start: dt.date | dt.datetime | str | None = None,
        end: dt.date | dt.datetime | str | None = None,
        symbols: Sequence[str] | str | None = None,
    ) -> Recipe:
        """Return a copy with the date range and/or symbols replaced (e.g. from CLI flags).

        Args:
            start: New inclusive start (date, datetime or ISO-8601 string, UTC).
            end: New exclusive end.
            symbols: Symbols to ingest (a list, or a comma-separated string). With one request they
                replace its symbols; with several, each must already belong to one of the requests,
                and the recipe keeps only the requests (and symbols) selected.

        Returns:
            A new, checked Recipe; this one is unchanged.

        Raises:
            RecipeError: An unparsable date, start >= end, a bad symbol, or (several requests) a
                symbol that none of the recipe's requests holds.
        """
        file = str(self.path)
        src = self.source
        try:
            new_start = checks.when(start, "--start") if start is not None else src.start
            new_end = checks.when(end, "--end") if end is not None else src.end
            if new_start is None or new_end is None:  # a files-only recipe: callers narrow only ranged ones
                raise Problem("the recipe has no source.start and source.end to narrow",
                              "--start and --end with a recipe that has source.start and source.end")
            checks.date_range(new_start, new_end)
            requests = src.requests if symbols is None else _select(src.requests, symbols)
        except Problem as problem:
            raise checks.located(file, None, problem) from None
        source = dataclasses.replace(src, start=new_start, end=new_end, requests=requests)
        return dataclasses.replace(self, source=source)


def _select(requests: tuple[Request, ...], symbols: Sequence[str] | str) -> tuple[Request, ...]:
    wanted = [s.strip() for s in symbols.split(",")] if isinstance(symbols, str) else list(symbols)
    if len(requests) == 1:
        only = requests[0]
        return (dataclasses.replace(only, symbols=checks.symbols(wanted, only.stype_in)),)
    if not wanted:
        raise Problem("--symbols is empty", "symbols of the recipe's requests")
    checks.too_many(len(wanted), len(requests))
    for s in wanted:  # before a did-you-mean compares a huge value with every known symbol
        if isinstance(s, str) and len(s) > checks.SYMBOL_MAX_LEN:
            checks.symbol(s, "raw_symbol")
    known = {s for r in requests for s in r.symbols}
    for s in wanted:
        if s not in known:
            raise Problem(f"--symbols '{s}' is in none of the recipe's requests "
                          f"({'; '.join(r.label() for r in requests)})",
                          allowed_list(sorted(known)), did_you_mean(s, sorted(known)))
    out = []
    for r in requests:
        keep = tuple(s for s in r.symbols if s in wanted)
        if keep:
            out.append(dataclasses.replace(r, symbols=keep))
    return tuple(out)


def jsonable(value: Any) -> Any:
    """A deterministic JSON-ready copy of normalized step arguments (used by ``recipe_hash``)."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    return value
