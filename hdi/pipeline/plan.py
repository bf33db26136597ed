"""Planning a run: the recipe with the run's parameters applied, its source, and its chunks.

:func:`open_source` is the one place that picks a kind of :class:`~hdi.source.base.Source`
(DBN files on disk with ``--from-file``, else Databento's batch jobs or its streaming API, per
``--batch``); everything after it holds only
the protocol.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import polars as pl

from hdi.decode.dbn import frame_schema
from hdi.errors import ConfigError, HdiError
from hdi.pipeline.params import RunParams
from hdi.recipe import checks
from hdi.recipe.checks import Problem
from hdi.recipe.compile import CompiledRecipe, compile_recipe
from hdi.recipe.model import Recipe
from hdi.source.base import Source, recipe_range
from hdi.store import Store
from hdi.store.ledger import DONE

__all__ = ["compile_for", "done_chunks", "narrow", "open_source", "update_start"]

log = logging.getLogger(__name__)


def compile_for(recipe: Recipe) -> CompiledRecipe:
    """Compile a recipe against the decoder's schema (what ``hdi recipes validate`` runs)."""
    schema = {**frame_schema(recipe.source.schema), "dataset": pl.String()}
    return compile_recipe(recipe, schema)


def _check_requests(r: Recipe) -> None:
    """A recipe without a range or requests reads files only."""
    src = r.source
    missing = [k for k, absent in (("source.start", src.start is None), ("source.end", src.end is None),
                                   ("source.requests", not src.requests)) if absent]
    if missing:
        raise ConfigError(f"{r.path}: the recipe has no {', '.join(missing)}, so it can only read DBN files; "
                          "allowed: --from-file F, or a recipe with source.start, source.end and source.requests")


def narrow(r: Recipe, p: RunParams) -> Recipe:
    """The recipe with ``--start/--end/--symbols`` applied, for a run that fetches by range (files
    are loaded whole, or narrowed by their own window: the recipe stays as it is).

    ``--update`` without ``--end`` keeps the recipe's range (the update's ranges replace it once
    planned); its ``--start`` is read by :func:`update_start`.
    """
    if p.update and p.restatements:
        raise ConfigError("--update and --restatements together: --update already fetches restated days again; "
                          "allowed: one of them")
    if p.from_files:
        if p.restatements:
            raise ConfigError("--restatements with --from-file: files carry no Databento dataset conditions; "
                              "allowed: --restatements with a recipe that fetches from Databento")
        return r
    _check_requests(r)
    if p.update and p.end is None:
        update_start(r, p)  # checked now, before anything else
        return r.with_overrides(symbols=p.symbols)
    return r.with_overrides(start=p.start, end=p.end, symbols=p.symbols)


def update_start(r: Recipe, p: RunParams) -> dt.datetime:
    """Where ``--update`` starts a symbol never loaded: ``--start``, else the recipe's start.

    Raises:
        RecipeError: ``--start`` is not a date or timestamp hdi can store.
    """
    if p.start is None:
        return recipe_range(r)[0]
    try:
        return checks.when(p.start, "--start")
    except Problem as problem:
        raise checks.located(str(r.path), None, problem) from None


def open_source(r: Recipe, p: RunParams, st: Store | None = None) -> Source:
    """The run's source: the ``--from-file`` files (each opened and read in full now), else
    Databento: by batch jobs (:class:`~hdi.source.batch.BatchSource`, whose ledger is in ``st``)
    with ``--batch always``, or with ``--batch auto`` when the run's billable size
    (``metadata.get_billable_size``) is above the recipe's ``source.batch_threshold_bytes``
    (``auto`` streams an ``--update`` run, a chunk period batch jobs cannot split by, and a run
    whose billable size could not be asked); else the streaming API.

    Raises:
        HdiError: a bad file or window, an unsupported vendor, no API key, ``--batch always`` with
            a chunk period that batch jobs cannot split by.
    """
    if p.from_files:
        from hdi._filewindow import file_window
        from hdi.source.files import FileSource

        return FileSource([Path(f) for f in p.from_files], r, file_window(p.start, p.end, p.symbols))
    from hdi.source.databento import ApiSource

    api = ApiSource(r)
    if p.batch == "never" or st is None:
        return api
    from hdi.source import batch

    if p.batch == "auto":
        if batch.split_for(r.source.chunk.period) is None or p.update:
            return api  # batch jobs cannot split by this period; an --update pull is small: streamed
        try:
            size = batch.billable_bytes(api, r)
        except HdiError as e:  # source.check or the chunks report the same problem (or retry it) in their words
            log.info("could not ask the billable size of the run (%s): streamed", e.message)
            return api
        if size <= r.source.batch_threshold_bytes:
            log.info("billable size %s bytes is not above source.batch_threshold_bytes %s: streamed", f"{size:,}",
                     f"{r.source.batch_threshold_bytes:,}")
            return api
        log.info("billable size %s bytes is above source.batch_threshold_bytes %s: fetched by batch jobs",
                 f"{size:,}", f"{r.source.batch_threshold_bytes:,}")
    return batch.BatchSource(r, st, api=api)


def done_chunks(st: Store, chunk_ids: list[str]) -> set[str]:
    """The chunks of ``chunk_ids`` the ledger shows done (by the same recipe: the id holds its hash)."""
    if not chunk_ids:
        return set()
    ledger = st.chunks(status=DONE, chunk_ids=chunk_ids) if st.has_table("ingest_chunks") else None
    return set(ledger["chunk_id"].to_list()) if ledger is not None else set()
