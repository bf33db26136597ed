"""``hdi ingest --update``: where each symbol's data ends, from the ledger, and what is left to fetch.

The ranges (:class:`~hdi.source.base.UpdateRange`) are kept in the run's params
(:class:`~hdi.pipeline.params.RunParams`), so that ``--resume RUN_ID`` repeats exactly them.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import cast

import polars as pl

from hdi._schemas import SCHEMAS
from hdi._timeutil import bar_name, every_seconds, floor_to, midnight
from hdi.recipe.model import Recipe
from hdi.source.base import Source, UpdateRange, recipe_range
from hdi.store import Store
from hdi.store.ledger import DONE, FAILED

log = logging.getLogger(__name__)


def update_ranges(st: Store, r: Recipe, source: Source, since: dt.datetime | None,
                  end_cap: dt.datetime | None) -> list[UpdateRange] | None:
    """``--update``: per (request, symbol), from where this recipe's data ends to the available end.

    A symbol starts at the end of the last chunk this recipe loaded for it, floored to that UTC
    midnight (a partly fetched day is fetched whole: its daily bar, its full count in
    ``ingest_days``), or earlier at a failed chunk of it whose days were not fetched since; a
    symbol never loaded starts at ``since``. The end is the dataset's available end (or
    ``--end`` when given), floored to the recipe's bar size so that no bar whose interval is
    still open is stored. Symbols sharing a start share requests.

    Args:
        st: the store whose ledger says what was loaded.
        r: the recipe (with --symbols applied).
        source: the run's source (for each dataset's available end).
        since: where a symbol never loaded starts (``--start``; None: the recipe's start).
        end_cap: ``--end`` when given.

    Returns:
        The ranges to plan, kept in the run's params so that ``--resume`` repeats them; None when
        the source has no available range (files: nothing to extend).
    """
    ends: dict[str, dt.datetime] = {}
    for rq in r.source.requests:
        if rq.dataset not in ends:
            avail = source.dataset_range(rq.dataset)
            if avail is None:
                return None
            ends[rq.dataset] = avail[1]
    if not ends:
        return None
    since = since if since is not None else recipe_range(r)[0]
    # chunks are recorded under the schema stored (ohlcv-5m for 5m bars built from ohlcv-1m); a
    # ledger written before that recorded the source schema, so both are this recipe's
    ledger = st.chunks().filter((pl.col("recipe") == r.name)
                                & pl.col("schema").is_in([stored_schema(r), r.source.schema]))
    ledger = ledger.with_columns(pl.col("symbols").str.split(",").alias("_symbols"))
    fetched = (st.query("SELECT dataset, symbol, day FROM ingest_days WHERE schema = $1", [stored_schema(r)])
               .with_columns(pl.col("day").cast(pl.Date)) if st.has_table("ingest_days") else None)
    out: list[UpdateRange] = []
    for rq in r.source.requests:
        end = ends[rq.dataset]
        end = complete_bars_end(r, min(end, end_cap) if end_cap is not None else end)
        by_start: dict[dt.datetime, list[str]] = {}
        for s in rq.symbols:
            mine = ledger.filter((pl.col("dataset") == rq.dataset) & pl.col("_symbols").list.contains(s))
            done = mine.filter(pl.col("status") == DONE)
            start = midnight(cast(dt.datetime, done["end_ts"].max())) if done.height else since
            for lo, hi in mine.filter(pl.col("status") == FAILED).select("start_ts", "end_ts").iter_rows():
                if not _all_fetched(fetched, rq.dataset, s, lo, hi):
                    start = min(start, midnight(lo))
            if start < end:
                by_start.setdefault(start, []).append(s)
        out += [UpdateRange(rq.dataset, rq.stype_in, tuple(syms), lo, end) for lo, syms in sorted(by_start.items())]
    if not out:
        log.info("update: every symbol of %s is loaded up to its dataset's available end", r.path)
    return out


def _bar_seconds(r: Recipe) -> int | None:
    """The length of the bars a recipe stores (its source bars, or what it resamples them to)."""
    info = SCHEMAS.get(r.source.schema)
    secs = info.bar_seconds if info is not None else None
    for step in r.transform:
        if step.op == "resample":
            secs = max(secs or 0, every_seconds(step.args["every"]) or 0)
    return secs


def stored_schema(r: Recipe) -> str:
    """The schema of what a recipe stores, under which its chunks and coverage are recorded: the
    source schema, except for bars resampled to another size (``ohlcv-5m`` from ``ohlcv-1m``)."""
    if r.target.table != "ohlcv" or not any(step.op == "resample" for step in r.transform):
        return r.source.schema
    return f"ohlcv-{bar_name(_bar_seconds(r) or 0)}"


def complete_bars_end(r: Recipe, t: dt.datetime) -> dt.datetime:
    """``t`` down to a boundary of the recipe's bars (unchanged for ticks): an update never stores a
    bar whose interval is still open (``on_conflict: ignore`` would then keep that partial bar)."""
    seconds = _bar_seconds(r)
    if not seconds:
        return t
    return floor_to(t, seconds)


def _all_fetched(fetched: pl.DataFrame | None, dataset: str, symbol: str, lo: dt.datetime, hi: dt.datetime) -> bool:
    """Whether ``ingest_days`` lists every UTC day of [lo, hi) for the symbol."""
    if fetched is None:
        return False
    days = pl.date_range(lo.date(), (hi - dt.timedelta(microseconds=1)).date(), "1d", eager=True)
    got = fetched.filter((pl.col("dataset") == dataset) & (pl.col("symbol") == symbol))["day"]
    return bool(days.is_in(got.implode()).all())
