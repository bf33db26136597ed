"""The run's retry pass: chunks that failed transiently get more tries after a pause (PRD NFR2).

Each Databento call is retried with backoff (:mod:`hdi.source.retry`, ~15 s by default) and a
chunk's store transaction on a transient store error (:data:`hdi.pipeline.loader.STORE_RETRY`). An
outage longer than that fails the chunk with a transient :class:`~hdi.errors.SourceError` or
:class:`~hdi.errors.StoreError`. After the chunk pass, :func:`retry_failed` waits
:attr:`RetryPasses.wait` seconds and loads those chunks again, up to :attr:`RetryPasses.passes`
times (``--retry-passes`` / ``HDI_RETRY_PASSES``, ``--retry-pass-wait`` / ``HDI_RETRY_PASS_WAIT``).
A terminal failure (a 4xx, a rejected key, a bad file) is never retried. The pause sleeps on the
event SIGINT/SIGTERM sets (:func:`hdi._interrupt.sleep`): a signal ends it at once and the run is
recorded ``interrupted``.

The report says what the passes did (``IngestReport.retry_passes``, ``.retried``, ``.recovered``;
each chunk's ``ChunkOutcome.retry_pass``); the ledger's chunk row counts every attempt of the run
(``attempts``) and the run row's ``error`` column says how many chunks the retry pass recovered
(``IngestReport.retry_note``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence

from hdi import _interrupt as interrupt
from hdi._report import ChunkOutcome, Event, IngestReport
from hdi._retrying import RetryPasses
from hdi.source.base import Chunk

__all__ = ["LoadChunks", "retry_failed"]

log = logging.getLogger(__name__)

# loads chunks and reports each outcome to the run: (chunks, retry pass number, earlier attempts by chunk id)
LoadChunks = Callable[[list[Chunk], int, Mapping[str, int]], None]


def retryable(o: ChunkOutcome) -> bool:
    return o.status == "failed" and o.transient


def retry_failed(report: IngestReport, chunks: Sequence[Chunk], load: LoadChunks, policy: RetryPasses,
                 emit: Callable[[Event], None]) -> None:
    """Load the transiently failed chunks among ``chunks`` again, pass after pass (see the module
    docstring); their new outcomes replace the failed ones in ``report.chunks``.

    Raises:
        hdi._interrupt.Interrupted: SIGINT/SIGTERM during a pause or a load.
    """
    by_id = {c.chunk_id: c for c in chunks}
    tried: set[str] = set()
    report.retry_wait = policy.wait
    for k in range(1, policy.passes + 1):
        failed = {o.chunk_id: o for o in report.chunks if retryable(o) and o.chunk_id in by_id}
        if not failed:
            return
        terminal = sum(1 for o in report.chunks if o.status == "failed" and not o.transient)
        what = (f"retry pass {k} of {policy.passes}: {len(failed)} chunk(s) failed transiently (every per-call "
                f"retry spent); trying them again in {policy.wait:g} s"
                + (f"; {terminal} chunk(s) failed terminally and are not retried" if terminal else ""))
        log.warning("run %s: %s", report.run_id, what, extra={"console": False})  # the retry_pass event shows it
        emit(Event("retry_pass", total=len(failed), message=what))
        report.retry_passes = k
        tried.update(failed)
        report.retried = len(tried)
        interrupt.sleep(policy.wait)  # a signal ends the pause at once (Interrupted)
        again = [c for c in chunks if c.chunk_id in failed]
        report.chunks[:] = [o for o in report.chunks if o.chunk_id not in failed]  # replaced by the new outcomes
        load(again, k, {i: o.attempts for i, o in failed.items()})
    left = sum(1 for o in report.chunks if retryable(o) and o.chunk_id in by_id)
    if left:
        log.error("run %s: %d chunk(s) still failed after %d retry pass(es); a re-run retries them",
                  report.run_id, left, policy.passes)

