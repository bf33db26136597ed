"""``hdi ingest --update``: where each symbol's data ends, from the ledger, and what is left to fetch.

The ranges are plain JSON (dataset, stype_in, symbols, start, end) so that a run keeps them in its
params and ``--resume RUN_ID`` repeats exactly them.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import polars as pl

from hdi.recipe.model import Recipe
from hdi.source.chunks import iso
from hdi.store import Store
from hdi.store.ledger import DONE, FAILED

log = logging.getLogger(__name__)


def when(text: str) -> dt.datetime:
    """An ISO timestamp of a range (``2024-01-01T00:00:00Z``) as an aware UTC datetime."""
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def update_ranges(st: Store, r: Recipe, source: Any, end_cap: dt.datetime | None) -> list[dict[str, Any]]:
    """``--update``: per (request, symbol), from where this recipe's data ends to the available end.

    A symbol starts at the end of the last chunk this recipe loaded for it, floored to that UTC
    midnight (a partly fetched day is fetched whole: its daily bar, its full count in
    ``ingest_days``), or earlier at a failed chunk of it whose days were not fetched since; a
    symbol never loaded starts at the recipe's start. The end is the dataset's available end
    (or ``--end`` when given), floored to the recipe's bar size so that no bar whose interval is
    still open is stored. Symbols sharing a start share requests.

    Args:
        st: the store whose ledger says what was loaded.
        r: the recipe (with --symbols / --start applied).
        source: a ``DatabentoSource`` (for each dataset's available end).
        end_cap: ``--end`` when given.

    Returns:
        The ranges to plan, JSON-ready: kept in the run's params so that ``--resume`` repeats them.
    """
    # chunks are recorded under the schema stored (ohlcv-5m for 5m bars built from ohlcv-1m); a
    # ledger written before that recorded the source schema, so both are this recipe's
    ledger = st.chunks().filter((pl.col("recipe") == r.name)
                                & pl.col("schema").is_in([stored_schema(r), r.source.schema]))
    ledger = ledger.with_columns(pl.col("symbols").str.split(",").alias("_symbols"))
    fetched = (st.query("SELECT dataset, symbol, day FROM ingest_days WHERE schema = $1", [stored_schema(r)])
               .with_columns(pl.col("day").cast(pl.Date)) if st.has_table("ingest_days") else None)
    out: list[dict[str, Any]] = []
    for rq in r.source.requests:
        _, end = source.dataset_range(rq.dataset)
        end = complete_bars_end(r, min(end, end_cap) if end_cap is not None else end)
        by_start: dict[dt.datetime, list[str]] = {}
        for s in rq.symbols:
            mine = ledger.filter((pl.col("dataset") == rq.dataset) & pl.col("_symbols").list.contains(s))
            done = mine.filter(pl.col("status") == DONE)
            start = _midnight(done["end_ts"].max()) if done.height else r.source.start
            for lo, hi in mine.filter(pl.col("status") == FAILED).select("start_ts", "end_ts").iter_rows():
                if not _all_fetched(fetched, rq.dataset, s, lo, hi):
                    start = min(start, _midnight(lo))
            if start < end:
                by_start.setdefault(start, []).append(s)
        out += [{"dataset": rq.dataset, "stype_in": rq.stype_in, "symbols": syms, "start": iso(lo), "end": iso(end)}
                for lo, syms in sorted(by_start.items())]
    if not out:
        log.info("update: every symbol of %s is loaded up to its dataset's available end", r.path)
    return out


def _bar_seconds(r: Recipe) -> int | None:
    """The length of the bars a recipe stores (its source bars, or what it resamples them to)."""
    from hdi.recipe.ops_market import every_seconds

    secs = {"ohlcv-1s": 1, "ohlcv-1m": 60, "ohlcv-1h": 3600, "ohlcv-1d": 86400, "ohlcv-eod": 86400}.get(r.source.schema)
    for step in r.transform:
        if step.op == "resample":
            secs = max(secs or 0, every_seconds(step.args["every"]) or 0)
    return secs


def stored_schema(r: Recipe) -> str:
    """The schema of what a recipe stores, under which its chunks and coverage are recorded: the
    source schema, except for bars resampled to another size (``ohlcv-5m`` from ``ohlcv-1m``)."""
    if r.target.table != "ohlcv" or not any(step.op == "resample" for step in r.transform):
        return r.source.schema
    secs = _bar_seconds(r) or 0
    for unit, n in (("d", 86400), ("h", 3600), ("m", 60)):
        if secs and secs % n == 0:
            return f"ohlcv-{secs // n}{unit}"
    return f"ohlcv-{secs}s"


def complete_bars_end(r: Recipe, t: dt.datetime) -> dt.datetime:
    """``t`` down to a boundary of the recipe's bars (unchanged for ticks): an update never stores a
    bar whose interval is still open (``on_conflict: ignore`` would then keep that partial bar)."""
    seconds = _bar_seconds(r)
    if not seconds:
        return t
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return epoch + dt.timedelta(seconds=int((t - epoch).total_seconds()) // seconds * seconds)


def _midnight(t: dt.datetime) -> dt.datetime:
    return t.astimezone(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def _all_fetched(fetched: pl.DataFrame | None, dataset: str, symbol: str, lo: dt.datetime, hi: dt.datetime) -> bool:
    """Whether ``ingest_days`` lists every UTC day of [lo, hi) for the symbol."""
    if fetched is None:
        return False
    days = pl.date_range(lo.date(), (hi - dt.timedelta(microseconds=1)).date(), "1d", eager=True)
    got = fetched.filter((pl.col("dataset") == dataset) & (pl.col("symbol") == symbol))["day"]
    return bool(days.is_in(got.implode()).all())
