"""What an ingest run reports: per-chunk outcomes and run totals, plus progress events.

Plain data, no stage imports: the pipeline fills these in and the CLI renders them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from hdi.validate.budget import Verdict

ChunkStatus = Literal["done", "skipped", "failed", "estimated", "excluded"]


@dataclass
class ChunkOutcome:
    """How one chunk (one source request or one file) ended."""

    chunk_id: str
    label: str  # e.g. "GLBX.MDP3 ohlcv-1d CL.c.0,ES.c.0 [2024-01-01T00:00:00Z, 2024-02-01T00:00:00Z)"
    status: ChunkStatus
    rows_fetched: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    rows_already_present: int = 0
    cost_usd: float | None = None
    billable_bytes: int | None = None
    record_count: int | None = None  # dry run: what Databento says the request holds
    quarantine_path: str | None = None
    error: str | None = None
    attempts: int = 0
    seconds: float = 0.0
    transient: bool = False  # failed: the error was transient (worth the run's retry pass)
    retry_pass: int = 0  # which pass ended the chunk: 0 = the chunk pass, 1.. = the run's retry passes
    # --from-file: records outside --start/--end/--symbols (a file the window misses entirely is
    # "excluded"); a dry run also gives the file's symbols and first/last record time (index time)
    rows_left_out: int = 0
    symbols: str | None = None
    first_ts: dt.datetime | None = None
    last_ts: dt.datetime | None = None


@dataclass
class IngestReport:
    """The outcome of ``hdi ingest``: one :class:`ChunkOutcome` per planned chunk."""

    run_id: str
    recipe: str
    store: str  # display URL (no password)
    table: str
    dry_run: bool = False
    chunks: list[ChunkOutcome] = field(default_factory=list)
    started_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    seconds: float = 0.0
    log_file: str | None = None
    error: str | None = None  # a run-level failure
    planned: int = 0  # chunks planned (done before, loaded, failed or not reached)
    interrupted: str | None = None  # "SIGINT" / "SIGTERM": the run stopped; the chunk in flight rolled back
    budget: Verdict | None = None  # hdi.validate.budget.Verdict of the chunks loaded (None for a dry run)
    retry_passes: int = 0  # retry passes run after the chunk pass (hdi.pipeline.retry_pass)
    retried: int = 0  # chunks those passes tried again (each counted once)
    retry_wait: float = 0.0  # seconds each retry pass paused first

    @property
    def recovered(self) -> int:
        """Chunks that failed transiently in the chunk pass and a retry pass loaded."""
        return sum(1 for c in self.chunks if c.status == "done" and c.retry_pass > 0)

    @property
    def retry_note(self) -> str | None:
        """One line on what the run's retry pass did (None: no pass ran), for the summary and the
        ledger's run row."""
        if not self.retry_passes:
            return None
        still = sum(1 for c in self.chunks if c.status == "failed" and c.retry_pass > 0)
        return (f"retry pass: {self.recovered} of {self.retried} chunk(s) that failed transiently recovered "
                f"({self.retry_passes} pass(es) after {self.retry_wait:g} s pauses)"
                + (f", {still} still failed" if still else ""))

    def _sum(self, name: str) -> int:
        return sum(getattr(c, name) for c in self.chunks)

    @property
    def rows_fetched(self) -> int:
        return self._sum("rows_fetched")

    @property
    def rows_loaded(self) -> int:
        return self._sum("rows_loaded")

    @property
    def rows_quarantined(self) -> int:
        return self._sum("rows_quarantined")

    @property
    def rows_already_present(self) -> int:
        return self._sum("rows_already_present")

    @property
    def rows_left_out(self) -> int:
        return self._sum("rows_left_out")

    @property
    def cost_usd(self) -> float:
        return sum(c.cost_usd or 0.0 for c in self.chunks)

    def count(self, status: ChunkStatus) -> int:
        return sum(1 for c in self.chunks if c.status == status)

    @property
    def failure_rate(self) -> float:
        """Share of fetched rows that failed validation (PRD NFR3 target: < 1%)."""
        return self.rows_quarantined / self.rows_fetched if self.rows_fetched else 0.0

    @property
    def chunks_left(self) -> int:
        """Planned chunks with no outcome: not reached because the run was interrupted."""
        return max(0, self.planned - len(self.chunks))

    @property
    def ok(self) -> bool:
        """No chunk failed and the run was not interrupted (a run over its quarantine budget is ok:
        every good row loaded)."""
        return self.error is None and self.count("failed") == 0 and self.interrupted is None

    @property
    def over_budget(self) -> bool:
        """More rows were quarantined than the recipe's ``max_failure_rate`` allows (over the run,
        or for a symbol with at least 1,000 rows); ``budget.over_symbols`` says which and why."""
        return bool(self.budget is not None and self.budget.over)


@dataclass(frozen=True)
class Event:
    """A progress event: ``kind`` is plan, chunk_start, rows, chunk_end, retry or retry_pass (the run's
    retry pass begins its pause: ``total`` chunks, ``message`` says when)."""

    kind: Literal["plan", "chunk_start", "rows", "chunk_end", "retry", "retry_pass"]
    total: int = 0  # plan: chunks planned
    label: str = ""
    rows: int = 0  # rows: rows decoded so far in this chunk
    outcome: ChunkOutcome | None = None
    message: str = ""
    worker: int = 0  # the worker process (1..N) of `hdi ingest --workers N`; 0 = the run's own process
