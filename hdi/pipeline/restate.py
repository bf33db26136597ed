"""``hdi ingest --update`` / ``--restatements``: which days fetched before to fetch again, and why.

Every done chunk from Databento records, per (dataset, schema, symbol, UTC day), the day's
condition and ``last_modified_date`` as ``metadata.get_dataset_condition`` said before the fetch
(``ingest_conditions``). A day is fetched again when Databento's ``last_modified_date`` for it is
now later (``restated``), or when it was ``degraded`` or ``pending`` at the fetch (fetched again on
every update until it was fetched ``available``). The new fetch replaces the day's stored rows
exactly (:meth:`hdi.store.base.Transaction.delete_days`, in the chunk's transaction). Databento is
asked once per dataset for the whole range.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections.abc import Sequence

import polars as pl

from hdi.recipe.model import Recipe
from hdi.source.base import Source, UpdateRange
from hdi.store import Store

log = logging.getLogger(__name__)

__all__ = ["refetch_ranges"]

_ONE_DAY = dt.timedelta(days=1)


def refetch_ranges(st: Store, r: Recipe, source: Source, start: dt.datetime | None, end: dt.datetime | None,
                   *, skip: Sequence[UpdateRange] = ()) -> list[UpdateRange]:
    """The ranges to fetch again (each marked with its reason), for the recipe's requests.

    Args:
        st: the store (its ``ingest_conditions``).
        r: the recipe (with --symbols applied).
        source: the run's source: asked once per dataset for the days' conditions now.
        start, end: only days in [start, end) (``--restatements --start --end``); None: every day.
        skip: ranges the run fetches anyway (``--update``'s forward ranges): their days are not
            planned twice.

    Returns:
        One range per (dataset, stype_in, reason, run of consecutive days) sharing the same symbols.
    """
    from hdi.pipeline.update import complete_bars_end, stored_schema

    if not st.has_table("ingest_conditions"):
        return []
    schema = stored_schema(r)
    rows = st.query("SELECT dataset, symbol, day, condition, last_modified_date, chunk_id FROM ingest_conditions "
                    "WHERE schema = $1", [schema]).with_columns(pl.col("day").cast(pl.Date),
                                                                pl.col("last_modified_date").cast(pl.Date))
    if start is not None:
        rows = rows.filter(pl.col("day") >= start.date())
    if end is not None:
        rows = rows.filter(pl.col("day") <= (end - dt.timedelta(microseconds=1)).date())
    out: list[UpdateRange] = []
    for rq in r.source.requests:
        mine = rows.filter((pl.col("dataset") == rq.dataset) & pl.col("symbol").is_in(list(rq.symbols)))
        if mine.height == 0:
            continue
        first, last = mine["day"].min(), mine["day"].max()
        assert isinstance(first, dt.date) and isinstance(last, dt.date)
        now = source.conditions(rq.dataset, first, last)
        avail = source.dataset_range(rq.dataset)
        avail_end = complete_bars_end(r, avail[1]) if avail is not None else None
        covered = [(g.symbols, g.start, g.end) for g in skip if g.dataset == rq.dataset]
        # (reason, day) -> symbols, and the old fetches they replace (for the chunk id)
        wanted: dict[tuple[str, dt.date], list[str]] = {}
        tags: dict[tuple[str, dt.date], list[str]] = {}
        for sym, day, cond, mod, chunk_ in mine.select("symbol", "day", "condition", "last_modified_date",
                                                      "chunk_id").iter_rows():
            at = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
            if any(sym in syms and lo <= at < hi for syms, lo, hi in covered):
                continue
            if avail_end is not None and at >= avail_end:
                continue
            cur = now.get(day)
            if cur is not None and cur.last_modified is not None and (mod is None or cur.last_modified > mod):
                reason = "restated"
            elif cond in ("degraded", "pending"):
                reason = cond
            else:
                continue
            wanted.setdefault((reason, day), []).append(sym)
            tags.setdefault((reason, day), []).append(f"{sym}:{chunk_}:{cur.last_modified if cur else None}")
        runs: list[tuple[str, tuple[str, ...], dt.date, dt.date, list[str]]] = []
        for (reason, day), syms in sorted(wanted.items(), key=lambda kv: (kv[0][0], kv[0][1])):
            key = tuple(sorted(syms))
            prev = runs[-1] if runs else None
            if prev is not None and prev[0] == reason and prev[1] == key and prev[3] == day:
                runs[-1] = (reason, key, prev[2], day + _ONE_DAY, prev[4] + tags[(reason, day)])
            else:
                runs.append((reason, key, day, day + _ONE_DAY, list(tags[(reason, day)])))
        for reason, key, first_day, end_day, tag in runs:
            lo = dt.datetime(first_day.year, first_day.month, first_day.day, tzinfo=dt.UTC)
            hi = dt.datetime(end_day.year, end_day.month, end_day.day, tzinfo=dt.UTC)
            if avail_end is not None:
                hi = min(hi, avail_end)
            digest = hashlib.sha256("|".join(sorted(tag)).encode()).hexdigest()[:16]
            out.append(UpdateRange(rq.dataset, rq.stype_in, key, lo, hi, refetch=reason, tag=digest))
    for g in out:
        log.info("%s %s [%s, %s): %s; fetched again, its stored rows replaced", g.dataset, ",".join(g.symbols),
                 g.start.date(), g.end.date(), g.refetch)
    return out
