"""Loading chunks: fetch (from the run's :class:`~hdi.source.base.Source`), decode, recipe,
validate, quarantine and write, one store transaction per chunk, in bounded batches.

The loader reads only the source's values (:class:`~hdi.source.base.Chunk`,
:class:`~hdi.source.base.Fetched`); it never asks which kind of source it has.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from pathlib import Path

import polars as pl

from hdi import _interrupt as interrupt
from hdi._redaction import redact
from hdi._report import ChunkOutcome, Event
from hdi._retrying import RetryPolicy
from hdi._schemas import SCHEMAS
from hdi._tables import DATA_TABLES
from hdi._timeutil import NS_PER_DAY
from hdi.decode.dbn import decode_file, symbology_frame
from hdi.decode.symbols import SymbolMapper
from hdi.errors import HdiError, StoreError, one_line
from hdi.pipeline.update import stored_schema
from hdi.recipe.compile import CompiledRecipe
from hdi.recipe.model import Recipe
from hdi.source.base import Chunk, DayCondition, Estimate, Fetched, Fetcher, Source
from hdi.source.cache import check_complete
from hdi.source.files import DbnFile
from hdi.store import Store
from hdi.store.base import Transaction
from hdi.store.ledger import DONE, FAILED, ChunkRecord
from hdi.validate.budget import Budget, label_rows, rows_per_symbol
from hdi.validate.price_rules import PriceRule
from hdi.validate.quarantine import enforce_failure_rate, write_quarantine
from hdi.validate.split import SplitResult, split

__all__ = ["BATCH_ROWS", "PREFETCH", "STORE_RETRY", "Loader", "estimated", "prefetch", "regroup"]

log = logging.getLogger(__name__)

BATCH_ROWS = 1_000_000
PREFETCH = 2  # chunk downloads in flight while a chunk loads (see prefetch)
# a transient store error (database restarted, concurrent writer) retries the chunk: waits 2, 4, 8 s
STORE_RETRY = RetryPolicy(attempts=4, base_delay=2.0, max_delay=15.0, jitter=0.0)


def estimated(c: Chunk, source: Source) -> ChunkOutcome:
    """A dry run's outcome of a chunk: what the source says it would return and cost."""
    try:
        est: Estimate = source.estimate(c)
    except HdiError as e:
        return ChunkOutcome(c.chunk_id, c.label, "failed", error=without_label(redact(e.message), c))
    return ChunkOutcome(c.chunk_id, c.label, "estimated", record_count=est.record_count,
                        billable_bytes=est.billable_bytes, cost_usd=est.cost_usd, rows_left_out=est.rows_left_out,
                        symbols=est.symbols, first_ts=est.first_ts, last_ts=est.last_ts)


def prefetch(chunks: list[Chunk], fetch: Callable[[Chunk], Fetched]) -> Iterator[tuple[Chunk, Future[Fetched]]]:
    """Download the next chunks while the current one loads (network and CPU overlap).

    ``PREFETCH`` downloads run at once: a chunk of daily bars loads in ~40 ms but takes two HTTP
    round trips (get_cost, get_range) to fetch, so one download at a time left the loader waiting.
    Two keep Databento's metadata calls (get_cost) well under its 20 requests/s limit.
    """
    with interrupt.DaemonPool(PREFETCH, "hdi-fetch") as pool:  # daemon threads: a download never delays an exit
        futures: list[Future[Fetched]] = []
        for i, c in enumerate(chunks):
            while len(futures) <= i + PREFETCH and len(futures) < len(chunks):
                futures.append(pool.submit(fetch, chunks[len(futures)]))
            yield c, futures[i]


class Loader:
    """Loads the chunks of one run into its store (see the module docstring)."""

    def __init__(self, st: Store, r: Recipe, compiled: CompiledRecipe, rhash: str, run_id: str, qroot: Path,
                 source: Fetcher, refresh: bool, emit: Callable[[Event], None], batch_rows: int) -> None:
        self.st, self.r, self.compiled, self.rhash, self.run_id = st, r, compiled, rhash, run_id
        self.qroot, self.source, self.refresh, self.emit, self.batch_rows = qroot, source, refresh, emit, batch_rows
        self.table = r.target.table
        self.by_day = any(s.op == "resample" for s in r.transform)
        self.budget = Budget(r.validate.max_failure_rate)  # rows validated and quarantined, done chunks only
        self.price_rule = PriceRule(st, r.validate.allow_non_positive_prices)
        self.time_column = DATA_TABLES[self.table].time_column
        self.schema = stored_schema(r)  # ledger and coverage name what is stored (ohlcv-5m built from 1m)

    def fetch(self, c: Chunk) -> Fetched:
        """The chunk's DBN file and what getting it cost (0 for a file on disk or a cache hit)."""
        return self.source.fetch(c, refresh=self.refresh)

    def _record(self, c: Chunk) -> ChunkRecord:
        q = c.request
        return ChunkRecord(chunk_id=c.chunk_id, run_id=self.run_id, recipe=self.r.name, recipe_hash=self.rhash,
                           dataset=q.dataset, schema=self.schema, stype_in=q.stype_in, symbols=",".join(q.symbols),
                           start_ts=q.start, end_ts=q.end, target_table=self.table, source=c.origin)

    def load(self, c: Chunk, fetched: Future[Fetched], *, retry_pass: int = 0, earlier: int = 0) -> ChunkOutcome:
        """Load one chunk; ``retry_pass`` > 0 in the run's retry pass (``earlier``: the attempts the
        chunk already had in this run, counted on in the ledger's ``attempts``)."""
        t0 = time.perf_counter()
        rec = self._record(c)
        outcome = ChunkOutcome(c.chunk_id, c.label, "done", retry_pass=retry_pass)
        attempts = STORE_RETRY.attempts
        transient = False
        for attempt in range(1, attempts + 1):
            outcome.attempts = rec.attempts = earlier + attempt
            try:
                got = interrupt.result(fetched) if attempt == 1 else self.fetch(c)
                rec.cost_usd = (rec.cost_usd or 0.0) + got.cost_usd
                outcome.rows_left_out, chunk_budget = self._load(c, got.file, rec, got.conditions)
                rec.status, rec.error = DONE, None
                self.budget.add(chunk_budget)
                break
            except StoreError as e:
                if e.transient and attempt < attempts:
                    wait = STORE_RETRY.backoff(attempt)
                    log.warning("chunk %s: %s; retrying in %.0f s (attempt %d of %d)", c.label, e.message, wait,
                                attempt + 1, attempts, extra={"console": False})  # the retry event shows it
                    self.emit(Event("retry", label=c.label, message=e.message))
                    interrupt.sleep(wait)
                    continue
                rec.status, rec.error, transient = FAILED, e.message, e.transient
            except HdiError as e:
                rec.status, rec.error, transient = FAILED, e.message, e.transient
            except Exception as e:  # noqa: BLE001 - a bug or an unforeseen library error: keep the run going
                log.exception("chunk %s failed unexpectedly", c.label, extra={"console": False})
                first = str(e).strip().splitlines()[0] if str(e).strip() else ""  # Polars adds a query plan
                rec.status, rec.error = FAILED, one_line(f"{type(e).__name__}: {first}")
            break
        if rec.status == FAILED:
            rec.error = without_label(redact(rec.error or ""), c)
            log.error("chunk %s failed: %s", c.label, rec.error, extra={"console": False})  # the CLI prints it once
            try:
                self.st.record_chunk(rec)
            except HdiError as e:
                log.error("chunk %s: could not record the failure in the ledger: %s", c.label, e.message)
        outcome.status = "done" if rec.status == DONE else "failed"
        outcome.transient = rec.status == FAILED and transient
        outcome.rows_fetched, outcome.rows_loaded = rec.rows_fetched, rec.rows_loaded
        outcome.rows_quarantined, outcome.rows_already_present = rec.rows_quarantined, rec.rows_already_present
        outcome.quarantine_path, outcome.error, outcome.cost_usd = rec.quarantine_path, rec.error, rec.cost_usd
        outcome.seconds = time.perf_counter() - t0
        return outcome

    def _load(self, c: Chunk, f: DbnFile | None, rec: ChunkRecord,
              conditions: tuple[DayCondition, ...] = ()) -> tuple[int, Budget]:
        """Load the chunk in one transaction; returns the records ``c.keep`` left out and the
        chunk's quarantine budget counts. A re-fetch (``c.refetch``: a restated, degraded or
        pending day) first deletes the stored rows it replaces, in the same transaction."""
        dataset = c.request.dataset
        ts = SCHEMAS[c.request.schema].index_ts
        totals = SplitResult(good=pl.DataFrame(), bad=pl.DataFrame(), rows_in=0, rows_good=0, rows_bad=0)
        qpaths: list[str] = []
        counts: list[pl.DataFrame] = []
        decoded = left_out = 0
        rec.rows_fetched = rec.rows_quarantined = 0
        rec.quarantine_path = None
        budget = Budget(self.r.validate.max_failure_rate)
        mapper = SymbolMapper(f.metadata) if f is not None else None  # rows -> requested symbols, for the budget
        # A signal cancels the running statement; the transaction then rolls back (hdi._interrupt).
        with self.st.transaction(chunk=rec) as txn, interrupt.cancelling(txn.cancel):
            mapped = symbology_frame(f.metadata, dataset) if f is not None else None
            if mapped is not None:
                txn.add_symbology(mapped)
            if c.refetch:  # exact replacement: the day's old rows go, the new fetch's rows come
                self._replace(txn, c, mapped)
            for n, batch in enumerate(self._batches(f, ts) if f is not None else ()):
                interrupt.check()
                decoded += batch.height
                if c.keep is not None:  # --start/--end/--symbols given with files: a filter
                    before = batch.height
                    batch = batch.filter(c.keep.filter(ts))
                    left_out += before - batch.height
                # select first: grouping the whole batch is ~5x slower (every column is carried); the
                # UTC day from the integer ns (a third cheaper than a time-zone aware .dt.date())
                counts.append(batch.select("symbol", (pl.col(ts).dt.epoch("ns") // NS_PER_DAY).alias("day"))
                              .group_by("symbol", "day").len("rows_fetched")
                              .with_columns(pl.col("day").cast(pl.Int32).cast(pl.Date)))
                out = self.compiled.fn(batch.with_columns(pl.lit(dataset).alias("dataset")).lazy()).collect()
                res = split(out, self.table, start=c.request.start, end=c.end,
                            allow_non_positive_prices=self.price_rule.for_frame(self.table, dataset, out))
                interrupt.check()
                bad = res.bad.with_columns(label_rows(res.bad, self.time_column, mapper)) if res.rows_bad else None
                budget.count(dataset, self.schema, rows_per_symbol(out, self.time_column, mapper), bad)
                if bad is not None:
                    q = write_quarantine(bad, root=self.qroot, run_id=self.run_id, table=self.table,
                                         chunk_id=f"{c.chunk_id}-{n}", recipe=self.r.name, source=c.source_name)
                    qpaths.append(str(q))
                totals.rows_in += res.rows_in
                totals.rows_bad += res.rows_bad
                for reason, k in res.reasons.items():
                    totals.reasons[reason] = totals.reasons.get(reason, 0) + k
                rec.rows_fetched, rec.rows_quarantined = totals.rows_in, totals.rows_bad
                if qpaths:
                    rec.quarantine_path = qpaths[0] if len(qpaths) == 1 else str(Path(qpaths[0]).parent)
                txn.write(self.table, res.good, on_conflict=self.r.target.on_conflict)
                self.emit(Event("rows", label=c.label, rows=totals.rows_in))
            if f is not None:  # never done with fewer records than the source delivered: roll back
                check_complete(f, decoded)
            if self.r.validate.on_budget_exceeded == "rollback":  # the recipe's opt-in: the whole chunk
                enforce_failure_rate(totals, self.r.validate.max_failure_rate, where=c.label,
                                     quarantine_path=rec.quarantine_path)
            interrupt.check()  # a signal before the ledger row: the chunk rolls back whole
            txn.write("ingest_days", _days(c, counts, rec), on_conflict="update")
            if conditions:
                txn.write("ingest_conditions", _conditions(c, conditions, rec), on_conflict="update")
        if f is not None and f.issues:
            log.warning("%s: %s", f.path, "; ".join(f.issues))
        if left_out:
            log.info("%s: %d records outside --start/--end/--symbols left out", c.label, left_out)
        return left_out, budget

    def _replace(self, txn: Transaction, c: Chunk, mapped: pl.DataFrame | None) -> None:
        """Delete the stored rows of the chunk's days for its symbols' instruments (those the new
        file maps them to, and those the store mapped them to before)."""
        q = c.request
        ids: list[int | str] = []
        if mapped is not None and mapped.height:
            last = (q.end - dt.timedelta(microseconds=1)).date()
            ids += [int(i) for i in mapped.filter(pl.col("symbol").is_in(list(q.symbols))
                                                  & (pl.col("start_date") <= last)
                                                  & (pl.col("end_date") > q.start.date()))
                    .get_column("instrument_id").unique().to_list()]
        ids += [int(s) for s in q.symbols] if q.stype_in == "instrument_id" else list(q.symbols)
        t = DATA_TABLES[self.table]
        equals = {"granularity": self.schema.rsplit("-", 1)[1]} if "granularity" in t.names else None
        n = txn.delete_days(self.table, dataset=q.dataset, symbols_or_instrument_ids=ids, start=q.start, end=q.end,
                            equals=equals)
        log.info("%s: %s; %d stored rows of %s replaced by the new fetch", c.label, c.refetch, n, self.table)

    def _batches(self, f: DbnFile, ts: str) -> Iterator[pl.DataFrame]:
        """Decoded batches that never split a group the recipe treats as one.

        Records sharing an index timestamp stay together (the ``ordinal`` op numbers them), and
        with a ``resample`` step a UTC day stays together (a 5m bar needs all its 1m bars).
        """
        yield from regroup(decode_file(f, chunk_rows=self.batch_rows), ts, by_day=self.by_day)


def without_label(error: str, c: Chunk) -> str:
    """A chunk's error without the chunk's own description: the ledger row, ``hdi status`` and every
    line that prints the error name the chunk already (``<chunk>: <error>``)."""
    desc = c.request.describe()
    for what in (c.label, desc, c.where):
        if what and error.startswith(f"{what}: "):
            return error[len(what) + 2:]
    for inside, short in ((f" {desc} failed", " failed"), (f" {desc}:", ":")):
        if inside in error:
            return error.replace(inside, short, 1)
    return error.replace(desc, "this chunk", 1)


def _days(c: Chunk, counts: list[pl.DataFrame], rec: ChunkRecord) -> pl.DataFrame:
    """One ``ingest_days`` row per (symbol, UTC day) the chunk covered, 0 where the source had nothing."""
    q = c.request
    last = (c.end or q.end) - dt.timedelta(microseconds=1)
    days = pl.date_range(q.start.date(), last.date(), "1d", eager=True).alias("day")
    grid = pl.DataFrame({"symbol": list(q.symbols)}).join(days.to_frame(), how="cross")
    got = (pl.concat(counts).group_by("symbol", "day").agg(pl.col("rows_fetched").sum())
           if counts else pl.DataFrame(schema={"symbol": pl.String, "day": pl.Date, "rows_fetched": pl.UInt32}))
    # Records the metadata maps to no requested symbol are not counted under any symbol.
    return (grid.join(got.drop_nulls("symbol"), on=["symbol", "day"], how="left")
            .with_columns(pl.col("rows_fetched").fill_null(0).cast(pl.Int64),
                          dataset=pl.lit(q.dataset), schema=pl.lit(rec.schema), chunk_id=pl.lit(rec.chunk_id),
                          updated_at=pl.lit(dt.datetime.now(dt.UTC), pl.Datetime("ns", "UTC")))
            .sort("symbol", "day"))


def _conditions(c: Chunk, conditions: tuple[DayCondition, ...], rec: ChunkRecord) -> pl.DataFrame:
    """One ``ingest_conditions`` row per (symbol, UTC day) of the chunk Databento gave a condition
    for before the fetch."""
    q = c.request
    rows = [(s, d.day, d.condition, d.last_modified) for s in q.symbols for d in conditions]
    frame = pl.DataFrame(rows, schema={"symbol": pl.String, "day": pl.Date, "condition": pl.String,
                                       "last_modified_date": pl.Date}, orient="row")
    return frame.with_columns(dataset=pl.lit(q.dataset), schema=pl.lit(rec.schema),
                              refetched=pl.lit(c.refetch or None, pl.String), chunk_id=pl.lit(rec.chunk_id),
                              fetched_at=pl.lit(dt.datetime.now(dt.UTC), pl.Datetime("ns", "UTC")))


def regroup(frames: Iterable[pl.DataFrame], column: str, *, by_day: bool = False) -> Iterator[pl.DataFrame]:
    """Move the trailing rows that share the last key (timestamp, or its UTC day) to the next frame.

    A frame is held until the next one arrives, so the last frame goes out whole (no extra batch).
    """
    pending: pl.DataFrame | None = None
    for frame in frames:
        if frame.height == 0:
            continue
        if pending is None:
            pending = frame
            continue
        key = pending.get_column(column)
        if by_day:
            key = key.dt.date()
        # Compare the physical integers: key[-1] of a ns timestamp is a Python datetime (µs), which
        # would equal no row and let records sharing a nanosecond straddle two batches.
        key = key.to_physical()
        last = key[-1]
        same = (key == last) if last is not None else key.is_null()
        tail = int(same.reverse().arg_min() or 0) if not same.all() else pending.height
        if pending.height > tail:
            yield pending.head(pending.height - tail)
        pending = pl.concat([pending.tail(tail), frame], rechunk=False)
    if pending is not None:
        yield pending
