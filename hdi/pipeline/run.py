"""``ingest()``: wires planning, pre-flight checks and the chunk loader; the run's ledger rows."""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from hdi import _config as config
from hdi import _interrupt as interrupt
from hdi._report import ChunkOutcome, Event, IngestReport
from hdi._retrying import RetryPasses
from hdi.errors import ConfigError, HdiError
from hdi.pipeline.loader import BATCH_ROWS, Loader, estimated, prefetch
from hdi.pipeline.params import RunParams
from hdi.pipeline.plan import compile_for, done_chunks, narrow, open_source, update_start
from hdi.pipeline.restate import refetch_ranges
from hdi.pipeline.retry_pass import retry_failed
from hdi.pipeline.update import update_ranges
from hdi.pipeline.workers import Job, effective_workers, load_parallel
from hdi.recipe.compile import recipe_hash
from hdi.recipe.load import load_recipe
from hdi.recipe.model import Recipe
from hdi.source.base import Chunk, DayCondition, Source, UpdateRange
from hdi.source.files import expand_paths
from hdi.store import Store, open_store
from hdi.store.ledger import RunRecord
from hdi.validate.budget import Budget, Verdict, write_verdict
from hdi.validate.quarantine import check_writable

__all__ = ["ingest", "new_run_id"]

log = logging.getLogger(__name__)


def new_run_id() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


@interrupt.guarded  # SIGINT/SIGTERM stop the run cleanly (see hdi._interrupt)
def ingest(
    recipe: str | Path | Recipe | None = None, *, start: object = None, end: object = None,
    symbols: Sequence[str] | str | None = None, from_files: Sequence[str | Path] | None = None,
    store: str | None = None, dry_run: bool = False, refresh: bool = False, resume: str | None = None,
    update: bool = False, on_event: Callable[[Event], None] | None = None, batch_rows: int = BATCH_ROWS,
    command: str = "hdi ingest", workers: int = 1, restatements: bool = False, retry_passes: int | None = None,
    retry_pass_wait: float | None = None, batch: str = "auto",
) -> IngestReport:
    """Run a recipe: fetch, decode, transform, validate and store, chunk by chunk.

    Args:
        recipe: the recipe file (or a loaded Recipe). May be omitted with ``resume``.
        start, end: override the recipe's range ([start, end), UTC dates or ISO timestamps); with
            ``from_files``, keep only the files' records in [start, end) (the rest are counted in
            ``report.rows_left_out``).
        symbols: override the recipe's symbols; with ``from_files``, keep only these symbols' records.
        from_files: ingest DBN files (``.dbn`` / ``.dbn.zst``), folders of them or globs instead of
            calling Databento; each file is loaded whole (the recipe's range and requests do not
            apply) unless ``start``/``end``/``symbols`` are given.
        store: store URL (default ``HDI_STORE``, else the embedded DuckDB file).
        dry_run: print what would be fetched (records, bytes, cost per chunk); download nothing.
        refresh: download and load chunks again even when cached or done.
        resume: a run id: continue that run with its own recipe and parameters.
        update: extend each request from its last loaded time to the dataset's available end, and
            fetch again the days loaded before that Databento has restated since (a later
            ``last_modified_date``) or that were degraded or pending when fetched; their stored rows
            are replaced exactly (docs/restatements.md).
        restatements: only that re-fetch of restated, degraded and pending days, over
            ``start``/``end`` (default: the recipe's range).
        on_event: progress callback.
        batch_rows: rows decoded per batch (bounds memory).
        command: how the run was started, recorded in the ledger (no secrets).
        workers: processes that download, decode and load chunks at once, where the store takes
            concurrent writers (TimescaleDB, the Iceberg lake); a DuckDB file has one writer, so it
            loads with one (and says so in one log line). Each chunk stays one transaction.
        retry_passes, retry_pass_wait: after the chunk pass, chunks that failed transiently (an outage
            longer than the per-call retries) are loaded again after a pause of ``retry_pass_wait``
            seconds, up to ``retry_passes`` times (default ``HDI_RETRY_PASSES``, ``HDI_RETRY_PASS_WAIT``,
            else 2 passes after 60 s; see :mod:`hdi.pipeline.retry_pass`). Terminal failures are not
            retried; SIGINT/SIGTERM ends the pause at once.
        batch: ``auto`` (Databento batch jobs when the run's billable size is above the recipe's
            ``source.batch_threshold_bytes``), ``always`` or ``never`` (the streaming API); see
            docs/batch.md. Batch runs load with one process.

    Returns:
        The run's report; ``report.ok`` is False when any chunk failed; ``report.over_budget`` is
        True when more rows were quarantined than the recipe's ``max_failure_rate`` allows (every
        good row is stored; ``report.budget.over_symbols`` says which symbols and why). On
        SIGINT/SIGTERM (in the main thread) the chunk in flight is rolled back, no further chunk
        starts, the run is recorded ``interrupted`` and ``report.interrupted`` names the signal.

    Raises:
        HdiError: a problem found before any chunk is loaded (bad recipe, missing API key,
            unreachable store, a data, cache or quarantine folder not writable, bad file).
    """
    t0 = time.perf_counter()
    emit = on_event or (lambda e: None)
    passes = RetryPasses.from_env(passes=retry_passes, wait=retry_pass_wait)  # a bad value: before any work
    if not dry_run:  # every folder the run writes, before the store opens or anything downloads
        config.check_writable_dirs(store, cache=not from_files)
    st = open_store(store)
    p = RunParams.given(start=start, end=end, symbols=symbols, from_files=expand_paths(list(from_files or [])),
                        update=update, restatements=restatements, batch=batch)
    p = p.resumed(_saved(st, resume)) if resume is not None else p
    if recipe is None and p.recipe is None:
        raise ConfigError("no recipe given: pass --recipe PATH (or --resume RUN_ID)")
    r = recipe if isinstance(recipe, Recipe) else load_recipe(recipe or str(p.recipe))
    p = p.with_recipe(r.path)
    r = narrow(r, p)
    compiled = compile_for(r)
    st.check([r.target.table, "symbology", "ingest_chunks", "ingest_runs", "ingest_days"])  # damaged: stop here
    rhash = recipe_hash(r)
    qroot = config.quarantine_dir()
    if not dry_run:
        check_writable(qroot)  # a local check: before anything is asked of Databento (--batch auto asks a size)
    source = open_source(r, p, st)  # files: every one read in full now, before anything loads
    # before the store is touched: a bad range or key creates no empty store
    source.check(r, update=p.update, names=("--start" if p.start else "source.start",
                                            "--end" if p.end else "source.end"))
    if not dry_run:
        st.migrate()
    if (p.update or p.restatements) and p.ranges is None:  # a resumed run repeats its own ranges
        ranges: list[UpdateRange] | None = []
        if p.update:
            since = update_start(r, p) if p.start is not None else None
            ranges = update_ranges(st, r, source, since, r.source.end if p.end else None)
        if ranges is not None:  # days Databento restated (or degraded/pending ones) since they were fetched
            lo, hi = (r.source.start, r.source.end) if p.restatements else (None, None)
            try:
                ranges += refetch_ranges(st, r, source, lo, hi, skip=ranges)
            except HdiError as e:
                if p.restatements:
                    raise
                log.warning("--update: could not learn which loaded days Databento restated (none is fetched "
                            "again this run; the next --update asks again): %s", e.message)
        p = p.with_ranges(ranges) if ranges is not None else p
    if p.ranges:  # symbology.resolve covers the update's window
        r = r.with_overrides(start=min(g.start for g in p.ranges), end=max(g.end for g in p.ranges))
    run = RunRecord(run_id=resume or new_run_id(), recipe=r.name, recipe_hash=rhash, command=command,
                    params=p.to_json())
    report = IngestReport(run_id=run.run_id, recipe=str(r.path), store=st.display_url, table=r.target.table,
                          dry_run=dry_run)
    plan = source.plan(r, rhash, p.ranges)
    chunks = list(plan.chunks)
    report.planned = len(chunks)
    done = done_chunks(st, [c.chunk_id for c in chunks]) if not refresh else set()
    emit(Event("plan", total=len(chunks)))
    log.info("run %s: recipe %s, %d chunks (%d already done), store %s", run.run_id, r.path, len(chunks),
             sum(c.chunk_id in done for c in chunks), st.display_url)
    if not dry_run:
        run.chunks_total = len(chunks)
        st.save_run(run)
    todo = [c for c in chunks if c.chunk_id not in done]
    report.chunks.extend(plan.excluded)
    for c in chunks:
        if c.chunk_id in done:
            _chunk_end(report, emit, c.label, ChunkOutcome(c.chunk_id, c.label, "skipped"))
    if todo:
        source.symbology(st, r, write=not dry_run)
        if not dry_run:
            _ask_conditions(source, todo)
    if dry_run:
        for c in todo:
            _chunk_end(report, emit, c.label, estimated(c, source))
    else:
        loader = Loader(st, r, compiled, rhash, run.run_id, qroot, source, refresh, emit, batch_rows)
        n = min(effective_workers(st, workers), len(todo))
        if n > 1 and getattr(source, "single_process", False):  # batch jobs: one process fetches them all
            log.info("run %s: batch jobs are fetched by one process; --workers %d not used", run.run_id, workers)
            n = 1
        known: dict[str, dict[dt.date, DayCondition]] = getattr(source, "known", {})
        job = Job(st.url, r, rhash, run.run_id, qroot, refresh, batch_rows, bool(p.from_files),
                  frozenset(getattr(source, "resolved", ())),
                  conditions=tuple((ds, c) for ds, days in known.items() for c in days.values())) if n > 1 else None

        def load(chunks: list[Chunk], retry_pass: int = 0, earlier: Mapping[str, int] | None = None) -> None:
            _load_chunks(loader, chunks, min(n, len(chunks)), job, report, emit, retry_pass, earlier or {})

        try:
            if n > 1:
                log.info("run %s: %d worker processes load %d chunks", run.run_id, n, len(todo))
            load(todo)
            retry_failed(report, todo, load, passes, emit)  # transiently failed chunks, after a pause
        except interrupt.Interrupted as e:  # the chunk in flight was rolled back
            report.interrupted = e.name
            log.warning("run %s interrupted by %s: %d of %d chunks not loaded; `hdi ingest --resume %s` "
                        "finishes it", run.run_id, e.name, report.chunks_left, report.planned, run.run_id)
        report.budget = _judge(loader.budget, qroot, run.run_id, st.display_url, r.name)
    report.seconds = time.perf_counter() - t0
    if not dry_run:
        _finish(st, run, report)
    return report


def _ask_conditions(source: Source, chunks: Sequence[Chunk]) -> None:
    """Ask the source for the conditions of every day the chunks cover, once per dataset, before
    anything is fetched (the ledger keeps them as of the fetch); a failure only costs the record."""
    spans: dict[str, tuple[dt.date, dt.date]] = {}
    for c in chunks:
        q = c.request
        lo, hi = q.start.date(), (q.end - dt.timedelta(microseconds=1)).date()
        old = spans.get(q.dataset)
        spans[q.dataset] = (min(lo, old[0]), max(hi, old[1])) if old else (lo, hi)
    for dataset, (lo, hi) in spans.items():
        try:
            source.conditions(dataset, lo, hi)
        except HdiError as e:
            log.warning("could not ask Databento for the conditions of %s [%s, %s] (the days are recorded "
                        "without them, so a later restatement of them goes unnoticed): %s", dataset, lo, hi,
                        e.message)
def _load_chunks(loader: Loader, chunks: list[Chunk], n: int, job: Job | None, report: IngestReport,
                 emit: Callable[[Event], None], retry_pass: int, earlier: Mapping[str, int]) -> None:
    """Load ``chunks`` (with ``n`` worker processes when ``job`` is given), each outcome into ``report``."""
    if n > 1 and job is not None:
        stopped = load_parallel(loader, chunks, n, job, emit, lambda label, o, w: _chunk_end(report, emit, label, o, w),
                                retry_pass=retry_pass, earlier=earlier)
        if stopped is not None:
            raise interrupt.Interrupted(stopped)
        return
    for c, fetched in prefetch(chunks, loader.fetch):
        interrupt.check()  # no chunk starts after SIGINT/SIGTERM
        emit(Event("chunk_start", label=c.label))
        _chunk_end(report, emit, c.label, loader.load(c, fetched, retry_pass=retry_pass,
                                                      earlier=earlier.get(c.chunk_id, 0)))


def _chunk_end(report: IngestReport, emit: Callable[[Event], None], label: str, outcome: ChunkOutcome,
               worker: int = 0) -> None:
    report.chunks.append(outcome)
    emit(Event("chunk_end", label=label, outcome=outcome, worker=worker))


def _saved(st: Store, run_id: str) -> RunParams:
    """The parameters a run was started with (``--resume``)."""
    import polars as pl

    runs = st.runs(limit=10_000).filter(pl.col("run_id") == run_id)
    if runs.height == 0:
        raise ConfigError(f"--resume {run_id}: no such run in {st.display_url} (see `hdi status` for recent runs)")
    return RunParams.from_json(runs["params"][0], run_id=run_id)


def _judge(budget: Budget, qroot: Path, run_id: str, store: str, recipe: str) -> Verdict:
    """The run's quarantine budget verdict, written beside its quarantined rows for ``hdi status``."""
    verdict = budget.verdict()
    try:
        write_verdict(verdict, root=qroot, run_id=run_id, store=store, recipe=recipe)
    except OSError as e:  # the rows are loaded and quarantined already: say so, do not fail the run
        log.error("run %s: could not write its quarantine budget to %s: %s", run_id, qroot, e.strerror or e)
    for s in verdict.over_symbols:
        log.info("over quarantine budget: %s", s.describe(verdict.max_rate))  # the summary shows it too
    return verdict


def _finish(st: Store, run: RunRecord, report: IngestReport) -> None:
    run.finished_at = dt.datetime.now(dt.UTC)
    run.chunks_done = report.count("done")
    run.chunks_skipped = report.count("skipped")
    run.chunks_failed = report.count("failed")
    run.rows_fetched, run.rows_loaded = report.rows_fetched, report.rows_loaded
    run.rows_quarantined, run.rows_already_present = report.rows_quarantined, report.rows_already_present
    run.cost_usd = report.cost_usd
    run.status = ("interrupted" if report.interrupted else "failed" if not report.ok
                  else "over_budget" if report.over_budget else "succeeded")
    if report.count("failed"):
        first = next(c for c in report.chunks if c.status == "failed")
        run.error = f"{report.count('failed')} chunk(s) failed; first: {first.label}: {first.error}"
    if report.over_budget and report.budget is not None:
        run.error = "; ".join(filter(None, [run.error, report.budget.message()]))
    run.error = "; ".join(filter(None, [run.error, report.retry_note]))
    if report.interrupted:
        run.error = "; ".join(filter(None, [f"interrupted by {report.interrupted}: {report.chunks_left} of "
                                            f"{report.planned} chunk(s) not loaded", run.error]))
    try:
        st.save_run(run)
    except HdiError as e:
        log.error("run %s: could not record the run's end: %s", run.run_id, e.message)
