"""Databento batch jobs as the test gateway serves them (``batch.submit_job``, ``batch.list_jobs``,
``batch.list_files`` and ``GET /v0/batch/download/<job_id>/<filename>`` with HTTP Range).

A job moves through its states by the gateway's clock (``time.monotonic``): ``received`` at
submit, ``queued`` after ``queued_after`` seconds, ``processing`` after ``processing_after``,
``done`` after ``done_after``; ``expire_after`` seconds after ``done`` it is ``expired`` and its
files are gone (``list_files`` and the download answer 410 ``batch_job_expired``). Each job's
files are what ``timeseries.get_range`` answers for each split period (``day``, ``week``
starting on Sunday, ``month`` or ``none``) of its range, byte for byte; a period in which no
symbol resolves has no file. Faults: :attr:`BatchJobs.fail_next` makes the next submitted jobs
end ``failed`` instead of ``done``; :meth:`BatchJobs.expire` expires a job (or all) at once; a
dropped download is the gateway's ordinary ``drop`` fault on the ``batch/download`` endpoint.
"""

from __future__ import annotations

import hashlib
import itertools
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from hdi.testing import market

if TYPE_CHECKING:
    from hdi.testing.api import Api

DOCS_BATCH = "https://databento.com/docs/api-reference-historical/batch"
SPLITS = ("day", "week", "month", "year", "none")
DOWNLOAD_PREFIX = "batch/download/"


@dataclass
class JobFile:
    filename: str
    start: int
    end: int
    data: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


@dataclass
class Job:
    id: str
    params: dict[str, str]
    start: int
    end: int
    split: str
    received: float  # gateway clock (monotonic seconds)
    received_at: datetime
    billed_size: int
    cost_usd: float
    fail: bool = False
    expired_at: float | None = None  # set by expire(): expired from then on
    files: list[JobFile] | None = field(default=None, repr=False)


def _next_boundary(d: date, split: str) -> date:
    if split == "day":
        return d + timedelta(days=1)
    if split == "week":  # Databento's weeks start on Sunday
        return d + timedelta(days=7 - (d.weekday() + 1) % 7)
    if split == "month":
        return date(d.year + 1, 1, 1) if d.month == 12 else date(d.year, d.month + 1, 1)
    return date(d.year + 1, 1, 1)


def periods(start: int, end: int, split: str) -> list[tuple[int, int]]:
    """[start, end) cut at the split's UTC boundaries (``none``: whole)."""
    if split == "none":
        return [(start, end)]
    out: list[tuple[int, int]] = []
    lo = start
    while lo < end:
        hi = min(end, market.ns(_next_boundary(market.ns_to_date(lo), split)))
        out.append((lo, hi))
        lo = hi
    return out


def file_name(dataset: str, schema: str, start: int, end: int, split: str) -> str:
    """``glbx-mdp3-20240102.ohlcv-1d.dbn.zst`` (``none``: both dates)."""
    ds = dataset.lower().replace(".", "-")
    d0 = market.ns_to_date(start).strftime("%Y%m%d")
    if split == "none":
        d1 = market.ns_to_date(end - 1).strftime("%Y%m%d")
        return f"{ds}-{d0}-{d1}.{schema}.dbn.zst"
    return f"{ds}-{d0}.{schema}.dbn.zst"


class BatchJobs:
    """The gateway's batch jobs (see the module docstring). Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self.jobs: dict[str, Job] = {}
        self._ids = itertools.count(1)
        self.queued_after = 0.05
        self.processing_after = 0.1
        self.done_after = 0.3
        self.expire_after: float | None = None
        self.fail_next = 0
        self.download_rate: float | None = None  # bytes per second of a file download (None: at once)
        self.base_url = ""  # the gateway's URL, for the files' download URLs

    # ---- faults and timing ------------------------------------------------------------------
    def configure(self, spec: dict[str, Any]) -> None:
        """Timing and faults from the control endpoint's JSON: ``queued_after``, ``processing_after``,
        ``done_after``, ``expire_after`` (seconds, null = never), ``fail_next`` (jobs), ``download_rate``
        (bytes per second of each file download, null = at once), ``expire``
        (a job id, or ``"*"``: expire now)."""
        known = {"queued_after", "processing_after", "done_after", "expire_after", "fail_next", "expire",
                 "download_rate"}
        unknown = set(spec) - known
        if unknown:
            raise ValueError(f"unknown batch setting(s) {sorted(unknown)}; allowed: {sorted(known)}")
        with self._lock:
            for k in ("queued_after", "processing_after", "done_after"):
                if k in spec:
                    setattr(self, k, float(spec[k]))
            if "expire_after" in spec:
                self.expire_after = None if spec["expire_after"] is None else float(spec["expire_after"])
            if "download_rate" in spec:
                self.download_rate = None if spec["download_rate"] is None else float(spec["download_rate"])
            if "fail_next" in spec:
                self.fail_next = int(spec["fail_next"])
            if "expire" in spec:
                self.expire(None if spec["expire"] == "*" else str(spec["expire"]))

    def expire(self, job_id: str | None = None) -> None:
        """Expire one job (or every job) now: its files are gone."""
        with self._lock:
            for job in self.jobs.values():
                if job_id is None or job.id == job_id:
                    job.expired_at = time.monotonic()
                    job.files = None

    # ---- state ------------------------------------------------------------------------------
    def state(self, job: Job, now: float | None = None) -> str:
        t = (time.monotonic() if now is None else now) - job.received
        if job.expired_at is not None:
            return "expired"
        if t < self.queued_after:
            return "received"
        if t < self.processing_after:
            return "queued"
        if t < self.done_after:
            return "processing"
        if job.fail:
            return "failed"
        if self.expire_after is not None and t >= self.done_after + self.expire_after:
            job.files = None
            return "expired"
        return "done"

    def _describe(self, job: Job) -> dict[str, Any]:
        state = self.state(job)
        p = job.params
        from hdi.testing.api import iso_ns

        def at(seconds: float) -> str | None:
            return (job.received_at + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")

        done = state in ("done", "expired")
        return {
            "id": job.id, "user_id": "hdi-test", "bill_id": None, "cost_usd": job.cost_usd,
            "dataset": p.get("dataset"), "symbols": p.get("symbols"), "stype_in": p.get("stype_in", "raw_symbol"),
            "stype_out": p.get("stype_out", "instrument_id"), "schema": p.get("schema"),
            "start": iso_ns(job.start), "end": iso_ns(job.end), "limit": int(p["limit"]) if p.get("limit") else None,
            "encoding": p.get("encoding", "dbn"), "compression": p.get("compression", "zstd"),
            "pretty_px": p.get("pretty_px") == "True", "pretty_ts": p.get("pretty_ts") == "True",
            "map_symbols": p.get("map_symbols") == "True", "split_symbols": p.get("split_symbols") == "True",
            "split_duration": job.split, "split_size": int(p["split_size"]) if p.get("split_size") else None,
            "packaging": None, "delivery": p.get("delivery", "download"),
            "record_count": None, "billed_size": job.billed_size, "actual_size": None, "package_size": None,
            "state": state,
            "ts_received": at(0), "ts_queued": at(self.queued_after) if state != "received" else None,
            "ts_process_start": at(self.processing_after) if state not in ("received", "queued") else None,
            "ts_process_done": at(self.done_after) if done else None,
            "ts_expiration": at(self.done_after + (self.expire_after if self.expire_after is not None
                                                   else 30 * 86400)) if done else None,
            "progress": 100 if done else None,
        }

    # ---- endpoints --------------------------------------------------------------------------
    def submit(self, api: Api, params: dict[str, str]) -> dict[str, Any]:
        from hdi.testing.api import ApiError

        q = api.query(params)  # the same validation as get_range
        enc, comp = params.get("encoding", "dbn"), params.get("compression", "zstd")
        if enc != "dbn" or comp != "zstd":
            raise ApiError(422, "request_invalid_parameter", f"This gateway's batch jobs deliver encoding=dbn with "
                           f"compression=zstd only, got encoding={enc} compression={comp}.", DOCS_BATCH)
        split = params.get("split_duration", "day") or "day"
        if split not in SPLITS:
            raise ApiError(422, "request_invalid_parameter", f"Invalid `split_duration` '{split}'; allowed: "
                           f"{', '.join(SPLITS)}.", DOCS_BATCH)
        if params.get("delivery", "download") != "download":
            raise ApiError(422, "request_invalid_parameter", "Only `delivery=download` is supported.", DOCS_BATCH)
        billed = api._billable(params)
        with self._lock:
            job_id = f"{q.dataset.replace('.', '-')}-{datetime.now(UTC):%Y%m%d}-{next(self._ids):010d}".upper()
            fail = self.fail_next > 0
            self.fail_next -= 1 if fail else 0
            job = Job(job_id, dict(params), q.start, q.end, split, time.monotonic(), datetime.now(UTC), billed,
                      api._cost(params), fail=fail)
            self.jobs[job_id] = job
            return self._describe(job)

    def list_jobs(self, params: dict[str, str]) -> list[dict[str, Any]]:
        states = params.get("states")
        wanted = {s.strip() for s in states.split(",") if s.strip()} if states else None
        since = params.get("since")
        since_dt = datetime.fromisoformat(since.replace("Z", "+00:00")) if since else None
        if since_dt is not None and since_dt.tzinfo is None:
            since_dt = since_dt.replace(tzinfo=UTC)
        with self._lock:
            out = []
            for job in sorted(self.jobs.values(), key=lambda j: j.received):
                if since_dt is not None and job.received_at < since_dt:
                    continue
                state = self.state(job)
                if (wanted is None and state == "expired") or (wanted is not None and state not in wanted):
                    continue
                out.append(self._describe(job))
            return out

    def _job(self, params: dict[str, str]) -> Job:
        from hdi.testing.api import ApiError

        job_id = params.get("job_id", "")
        with self._lock:
            job = self.jobs.get(job_id)
        if job is None:
            raise ApiError(404, "batch_job_not_found", f"Batch job '{job_id}' not found.", DOCS_BATCH)
        return job

    def _files(self, api: Api, job: Job) -> list[JobFile]:
        from hdi.testing.api import ApiError

        with self._lock:
            state = self.state(job)
            if state == "expired":
                raise ApiError(410, "batch_job_expired", f"Batch job '{job.id}' has expired; its files are no longer "
                               "available. Submit the job again.", DOCS_BATCH)
            if state != "done":
                raise ApiError(409, "batch_job_not_done", f"Batch job '{job.id}' is {state}; its files are listed "
                               "once it is done.", DOCS_BATCH)
            if job.files is None:
                files = []
                for lo, hi in periods(job.start, job.end, job.split):
                    sub = {**job.params, "start": str(lo), "end": str(hi)}
                    try:
                        reply = api.get_range(sub)
                    except ApiError:  # no symbol resolves in this period: no file
                        continue
                    assert reply.stream is not None
                    files.append(JobFile(file_name(job.params["dataset"], job.params["schema"], lo, hi, job.split),
                                         lo, hi, b"".join(reply.stream)))
                job.files = files
            return job.files

    def list_files(self, api: Api, params: dict[str, str]) -> list[dict[str, Any]]:
        job = self._job(params)
        return [{"filename": f.filename, "size": len(f.data), "hash": f"sha256:{f.sha256}",
                 "urls": {"https": f"{self.base_url}/v0/{DOWNLOAD_PREFIX}{job.id}/{f.filename}",
                          "ftp": f"ftp://127.0.0.1/{job.id}/{f.filename}"}}
                for f in self._files(api, job)]

    def file(self, api: Api, endpoint: str) -> bytes:
        """The bytes of ``batch/download/<job_id>/<filename>``."""
        from hdi.testing.api import ApiError

        job_id, _, name = endpoint[len(DOWNLOAD_PREFIX):].partition("/")
        job = self._job({"job_id": job_id})
        for f in self._files(api, job):
            if f.filename == name:
                return f.data
        raise ApiError(404, "batch_file_not_found", f"Batch job '{job_id}' has no file '{name}'.", DOCS_BATCH)

    def submitted(self) -> int:
        with self._lock:
            return len(self.jobs)
