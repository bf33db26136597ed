"""``hdi ingest --workers N``: chunks downloaded, decoded and loaded by N worker processes.

Only where the store takes concurrent writers (TimescaleDB: its key index; the Iceberg lake:
optimistic commits checked against each chunk's key range); a DuckDB file has one writer, so a run
into DuckDB says so in one log line and loads with one process. Each chunk is still one store
transaction with its ledger row, so exactly once does not depend on which process loads it. The
run's own process plans, records the run, relays every worker's progress (``Event.worker``) and
merges the quarantine budgets.

Workers are spawned, not forked: Polars' thread pool (and any lock another thread holds) would be
copied mid-use by a fork and deadlock the child. Each worker opens the store by URL, compiles the
recipe, and reads its chunks' files (or downloads them through the raw cache) itself.
SIGINT/SIGTERM reach every process of the group: a worker rolls its chunk back and reports the
signal, no further chunk starts, and the run is recorded ``interrupted``.
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import signal
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures import Future as _Future
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, NoReturn

from hdi import _interrupt as interrupt
from hdi._report import ChunkOutcome, Event
from hdi.source.base import Chunk, DayCondition, Fetched, Fetcher
from hdi.store import Store
from hdi.validate.budget import Budget

if TYPE_CHECKING:
    from multiprocessing.queues import SimpleQueue
    from multiprocessing.sharedctypes import Synchronized

    from hdi.pipeline.loader import Loader
    from hdi.recipe.model import Recipe

    Events = SimpleQueue[tuple[int, Event | None]]

log = logging.getLogger(__name__)

CONCURRENT_WRITERS = ("timescale", "iceberg")

_LOADER: Loader | None = None  # in a worker: its Loader
_EVENTS: Events | None = None
_WORKER = 0


def effective_workers(st: Store, workers: int) -> int:
    """How many processes load: ``workers``, or 1 (with one log line) for a single-writer store."""
    if workers <= 1:
        return 1
    if st.kind not in CONCURRENT_WRITERS:
        log.warning("--workers %d: the %s store takes one writer at a time; loading with 1 worker "
                    "(TimescaleDB and the Iceberg lake take several)", workers, st.kind)
        return 1
    return workers


@dataclasses.dataclass(frozen=True)
class Job:
    """What a worker needs to build its own loader (all picklable)."""

    url: str
    recipe: Recipe  # as the run narrowed it
    rhash: str
    run_id: str
    qroot: Path
    refresh: bool
    batch_rows: int
    files: bool  # the run reads --from-file files (else Databento)
    resolved: frozenset[tuple[str, str]]  # Databento: (dataset, symbol) resolving somewhere in the range
    conditions: tuple[tuple[str, DayCondition], ...] = ()  # Databento: the conditions the run asked once


class _Files:
    """A worker's file source: opens (and checks) a chunk's file when the chunk is fetched."""

    def __init__(self, recipe: Recipe) -> None:
        self.recipe = recipe

    def fetch(self, chunk: Chunk, *, refresh: bool) -> Fetched:
        from hdi.source.files import _open_for

        return Fetched(_open_for(Path(chunk.origin), self.recipe))


def _stop(signum: int, frame: FrameType | None) -> NoReturn:
    raise interrupt.Interrupted(signum)  # the chunk's transaction rolls back on the way out


def _init(job: Job, events: Events, counter: Synchronized[int]) -> None:
    global _LOADER, _EVENTS, _WORKER
    from hdi.pipeline.loader import Loader
    from hdi.pipeline.plan import compile_for
    from hdi.store import open_store

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _stop)
    with counter.get_lock():
        counter.value += 1
        _WORKER = counter.value
    _EVENTS = events
    source: Fetcher
    if job.files:
        source = _Files(job.recipe)
    else:
        from hdi.source.databento import ApiSource

        source = ApiSource(job.recipe)
        source.resolved = set(job.resolved)
        for dataset, cond in job.conditions:
            source.known.setdefault(dataset, {})[cond.day] = cond
    _LOADER = Loader(open_store(job.url), job.recipe, compile_for(job.recipe), job.rhash, job.run_id, job.qroot,
                     source, job.refresh, lambda e: events.put((_WORKER, e)), job.batch_rows)


def _one(chunk: Chunk, retry_pass: int = 0, earlier: int = 0) -> tuple[int, ChunkOutcome | None, Budget | None,
                                                                       int | None]:
    """Fetch and load one chunk in this worker: (worker, outcome, its budget, a signal that stopped it)."""
    loader, events = _LOADER, _EVENTS
    assert loader is not None and events is not None, "_init runs first in every worker"
    loader.budget = Budget(loader.r.validate.max_failure_rate)
    try:
        events.put((_WORKER, Event("chunk_start", label=chunk.label)))
        fetched: _Future[Fetched] = _Future()
        try:
            fetched.set_result(loader.fetch(chunk))
        except Exception as e:  # noqa: BLE001 - the loader reports a failed fetch as the chunk's failure
            fetched.set_exception(e)
        outcome = loader.load(chunk, fetched, retry_pass=retry_pass, earlier=earlier)
        return _WORKER, outcome, loader.budget, None
    except KeyboardInterrupt as e:  # interrupt.Interrupted, or a plain SIGINT before the handler was set
        return _WORKER, None, None, getattr(e, "signum", signal.SIGINT)


def load_parallel(loader: Loader, todo: list[Chunk], workers: int, job: Job, emit: Callable[[Event], None],
                  chunk_end: Callable[[str, ChunkOutcome, int], None], *, retry_pass: int = 0,
                  earlier: Mapping[str, int] | None = None) -> int | None:
    """Load ``todo`` with ``workers`` processes; returns the number of a signal that stopped the run.
    ``retry_pass``/``earlier``: as for :meth:`Loader.load` (the run's retry pass)."""
    ctx = multiprocessing.get_context("spawn")
    events: Events = ctx.SimpleQueue()

    def relay() -> None:  # worker events -> the run's progress, tagged with the worker
        while True:
            w, e = events.get()
            if e is None:
                return
            emit(dataclasses.replace(e, worker=w))

    relay_thread = threading.Thread(target=relay, name="hdi-worker-events", daemon=True)
    relay_thread.start()
    interrupted: int | None = None
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init,
                               initargs=(job, events, ctx.Value("i", 0)))
    try:
        pending = {pool.submit(_one, c, retry_pass, (earlier or {}).get(c.chunk_id, 0)) for c in todo}
        while pending:
            done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
            for f in done:
                if f.cancelled():
                    continue
                w, outcome, budget, sig = f.result()
                if sig is not None:
                    interrupted = interrupted or sig
                    continue
                assert outcome is not None and budget is not None
                loader.budget.add(budget)
                chunk_end(outcome.label, outcome, w)
            if interrupted is None:
                try:
                    interrupt.check()
                except interrupt.Interrupted as e:
                    interrupted = e.signum
            if interrupted is not None:
                for f in pending:
                    f.cancel()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        events.put((0, None))
        relay_thread.join(5)
    return interrupted
