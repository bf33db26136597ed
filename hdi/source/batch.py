"""Databento batch jobs as a :class:`~hdi.source.base.Source`: ``batch.submit_job`` ->
``batch.list_jobs`` polling -> ``batch.list_files`` -> ``batch.download``, one job file per chunk.

Chunks are the same as the streaming API's (:class:`~hdi.source.databento.ApiSource` plans them,
so a chunk's id does not depend on how it is fetched). A job asks for one symbol group of a
request over a run of consecutive chunks, with ``split_duration`` equal to the recipe's chunk
period (``day`` or ``month``: Databento's weeks start on Sunday, hdi's on Monday, so other periods
are not offered), so each file of the job is exactly one chunk's request.

**Never paying twice.** Every submission is recorded in the store's ``batch_jobs`` ledger table
*before* ``submit_job`` is called (state ``submitting``), and its job id right after. A chunk's
fetch first looks for a job that covers it and is neither failed nor expired: in the ledger, and,
for a submission whose job id never reached the ledger (a crash between the two), among
``batch.list_jobs`` matching the job's parameters. Only when neither exists is a job submitted,
covering the consecutive chunks around this one that are not yet loaded. An expired job is
submitted again the same way, so only what is still missing is paid for again. A job that fails
fails each of its chunks with one line naming the job id; the next run submits it again.

**Downloads** go through the official client's ``batch.download`` into
``<raw cache>/.batch/<job_id>/<file>``: a file left there by a killed or dropped download is the
partial file, resumed with an HTTP ``Range`` request from the bytes already there, never restarted.
Each downloaded file is checked against the SHA-256 that ``batch.list_files`` gives (the client
only warns on a mismatch) and read in full as DBN for the chunk's request; it then moves into the
raw cache with its sidecar (:class:`~hdi.source.cache.RawCache`), so a later fetch of the chunk is
an ordinary cache hit. ``batch_files`` records each file, its chunk and whether it was verified.

Settings (environment): ``HDI_BATCH_POLL_SECONDS`` (default 10) between ``list_jobs`` polls,
``HDI_BATCH_WAIT_SECONDS`` (default 86400) before a run gives up waiting on a job (the job stays in
the ledger; the next run waits for it again instead of submitting).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from hdi import _interrupt as interrupt
from hdi._timeutil import iso, parse_iso
from hdi.errors import ConfigError, SourceError
from hdi.source.base import Chunk, DayCondition, Estimate, Fetched, Plan, UpdateRange
from hdi.source.chunks import Request
from hdi.source.databento import ApiSource
from hdi.source.dbncheck import Verified, verify
from hdi.store.frames import normalise
from hdi.store.ledger import BATCH_FILES, BATCH_JOBS

if TYPE_CHECKING:
    from hdi.recipe.model import Recipe
    from hdi.store.base import Store

__all__ = ["BATCH_MODES", "BatchSource", "DEFAULT_THRESHOLD_BYTES", "billable_bytes", "split_for"]

logger = logging.getLogger(__name__)

BATCH_MODES = ("auto", "always", "never")
DEFAULT_THRESHOLD_BYTES = 5_000_000_000  # Databento recommends batch above about 5 GB
SPLITS = {"day": "day", "month": "month"}  # hdi chunk period -> Databento split_duration
PENDING = ("submitting", "received", "queued", "processing")
_ALIVE = (*PENDING, "done")


def split_for(period: str) -> str | None:
    """The ``split_duration`` that gives one job file per chunk of ``period`` (None: none does)."""
    return SPLITS.get(period)


def billable_bytes(api: ApiSource, recipe: Recipe) -> int:
    """What the recipe's whole range would bill (``metadata.get_billable_size``, one call per request)."""
    from hdi.source.base import recipe_range

    start, end = recipe_range(recipe)
    md = api.api.client.metadata
    schema = recipe.source.schema

    def size(dataset: str, stype_in: str, symbols: list[str]) -> int:
        return int(api.api._call(f"get_billable_size {dataset} {schema} {','.join(symbols[:5])}",
                                 lambda: md.get_billable_size(dataset=dataset, schema=schema, stype_in=stype_in,
                                                              symbols=symbols, start=start, end=end)))

    return sum(size(rq.dataset, rq.stype_in, list(rq.symbols)) for rq in recipe.source.requests)


def _env_seconds(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number of seconds; allowed: e.g. 10 or 0.5") from None
    if value < 0:
        raise ConfigError(f"{name}={raw!r} is negative; allowed: 0 or more seconds")
    return value


def _group(q: Request) -> tuple[str, str, str, str]:
    return q.dataset, q.schema, q.stype_in, ",".join(q.symbols)


def _job_key(q: Request, split: str) -> str:
    return hashlib.sha256(f"{q.key}|{split}".encode()).hexdigest()[:16]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class _Failed(SourceError):
    pass


class BatchSource:
    """Databento batch jobs for one recipe run (see the module docstring).

    Args:
        recipe: the run's recipe (its chunk period must be ``day`` or ``month``).
        st: the run's store, which keeps the ``batch_jobs`` / ``batch_files`` ledger.
        api: the streaming source whose client, cache, planning and checks are shared.

    Raises:
        ConfigError: the chunk period has no matching ``split_duration``; no API key; a bad
            ``HDI_BATCH_*`` setting.
    """

    def __init__(self, recipe: Recipe, st: Store, *, api: ApiSource | None = None) -> None:
        split = split_for(recipe.source.chunk.period)
        if split is None:
            raise ConfigError(f"{recipe.path}: source.chunk.period '{recipe.source.chunk.period}' cannot be fetched by "
                              "batch jobs (Databento splits job files by day, by Sunday-based week or by month); "
                              "allowed: source.chunk.period day or month, or --batch never")
        self.split = split
        self.inner = api or ApiSource(recipe)
        self.api = self.inner.api
        self.st = st
        self.poll = _env_seconds("HDI_BATCH_POLL_SECONDS", 10.0)
        self.wait = _env_seconds("HDI_BATCH_WAIT_SECONDS", 86400.0)
        self.single_process = True  # --workers: jobs are shared by the run's chunks, so one process fetches
        self._lock = threading.Lock()
        self._list_lock = threading.Lock()
        self._refresh = False  # --refresh: every planned chunk is fetched again, loaded or not
        self._chunks: tuple[Chunk, ...] = ()
        self._failed: dict[str, str] = {}  # job id -> its error (failed in this run: its chunks fail too)
        self._files: dict[str, list[dict[str, Any]]] = {}  # job id -> batch.list_files

    def __repr__(self) -> str:
        return f"BatchSource({self.api!r}, split_duration={self.split!r})"

    # ---- the parts shared with the streaming API ----------------------------------------------
    def check(self, recipe: Recipe, *, update: bool, names: tuple[str, str]) -> None:
        self.inner.check(recipe, update=update, names=names)

    def dataset_range(self, dataset: str) -> tuple[dt.datetime, dt.datetime]:
        return self.inner.dataset_range(dataset)

    def plan(self, recipe: Recipe, rhash: str, ranges: Sequence[UpdateRange] | None) -> Plan:
        plan = self.inner.plan(recipe, rhash, ranges)
        self._chunks = plan.chunks
        return plan

    def symbology(self, st: Store, recipe: Recipe, *, write: bool) -> None:
        self.inner.symbology(st, recipe, write=write)

    def estimate(self, chunk: Chunk) -> Estimate:
        return self.inner.estimate(chunk)

    def conditions(self, dataset: str, start: dt.date, end: dt.date) -> dict[dt.date, DayCondition]:
        """Databento's dataset conditions, asked through the streaming source (one call per range)."""
        return self.inner.conditions(dataset, start, end)

    @property
    def known(self) -> dict[str, dict[dt.date, DayCondition]]:
        """The conditions asked this run, per dataset (what ``--workers`` processes are given)."""
        return self.inner.known

    # ---- fetch --------------------------------------------------------------------------------
    def fetch(self, chunk: Chunk, *, refresh: bool) -> Fetched:
        from hdi.source.files import open_dbn

        q = chunk.request
        if chunk.refetch:  # a restated (or degraded/pending) day: streamed afresh, never a job file or the cache
            return self.inner.fetch(chunk, refresh=True)
        conds, _ = self.inner._chunk_conditions(q)  # as known before the download (ingest_conditions)
        self._refresh = refresh
        if not refresh:
            cached = self.api.cache.get(q)
            if cached is not None:
                return Fetched(open_dbn(cached), 0.0, conds)
        for _ in range(3):  # an expired job is submitted again (for what is still missing), twice at most
            with self._lock:  # one thread finds or submits a job at a time: never two for the same chunks
                job = self._job_for(chunk)
            job_id = str(job["job_id"])
            state = self._wait(job)
            if state == "expired":
                continue
            files = self._list(job_id, chunk)
            if files is None:  # expired between list_jobs and list_files
                self._set_state(job, "expired")
                continue
            mine = self._file_for(files, q)
            if mine is None:
                logger.info("%s: batch job %s has no file for this chunk (no symbol maps to an instrument in it); "
                            "a chunk without data", chunk.label, job_id)
                return Fetched(None, conditions=conds)
            path = self._download(job, mine, chunk)
            if path is None:
                self._set_state(job, "expired")
                continue
            total = sum(int(f["size"]) for f in files) or 1
            cost = float(job.get("cost_usd") or 0.0) * int(mine["size"]) / total
            return Fetched(open_dbn(path), cost, conds)
        raise SourceError(f"batch jobs for {q.describe()} kept expiring before their files were downloaded; run the "
                          "ingest again", transient=False)

    # ---- jobs ---------------------------------------------------------------------------------
    def _jobs(self, q: Request) -> pl.DataFrame:
        """Ledger rows of jobs for ``q``'s symbol group that cover ``q``, newest first."""
        dataset, schema, stype_in, symbols = _group(q)
        if not self.st.has_table(BATCH_JOBS.name):
            return pl.DataFrame()
        sql = (f'SELECT * FROM "{BATCH_JOBS.name}" WHERE dataset = $1 AND schema = $2 AND stype_in = $3 '
               "AND symbols = $4 AND split_duration = $5 AND start_ts <= $6 AND end_ts >= $7 "
               "ORDER BY submitted_at DESC")
        frame = self.st.query(sql, [dataset, schema, stype_in, symbols, self.split, q.start, q.end])
        return normalise(frame, BATCH_JOBS, BATCH_JOBS.names)

    def _job_for(self, chunk: Chunk) -> dict[str, Any]:
        """A job covering ``chunk`` that is neither failed nor expired: found, or submitted."""
        q = chunk.request
        for row in self._jobs(q).iter_rows(named=True):
            state, job_id = row["state"], row["job_id"]
            if job_id is not None and job_id in self._failed:
                raise _Failed(self._failed[job_id], transient=False)
            if state not in _ALIVE:
                continue
            if job_id is None:  # only the intent was recorded: did the submit reach Databento?
                found = self._listed(row)
                if found is None:
                    return self._submit(row)
                row = self._save(row, job_id=str(found["id"]), state=str(found["state"]),
                                 cost_usd=found.get("cost_usd"), billable_bytes=found.get("billed_size"))
                logger.info("%s: batch job %s was submitted by an earlier run (found by batch.list_jobs); not "
                            "submitted again", chunk.label, row["job_id"])
            return row
        start, end = self._missing_span(chunk)
        span = Request(q.dataset, q.schema, q.stype_in, q.symbols, start, end)
        intent: dict[str, Any] = {
            "intent_id": uuid.uuid4().hex, "job_key": _job_key(span, self.split), "job_id": None,
            "dataset": q.dataset, "schema": q.schema, "stype_in": q.stype_in, "symbols": ",".join(q.symbols),
            "start_ts": start, "end_ts": end, "split_duration": self.split, "state": "submitting",
            "cost_usd": None, "billable_bytes": None, "error": None, "submitted_at": _now(), "updated_at": _now(),
        }
        self.st.record_row(BATCH_JOBS.name, intent)  # the intent, before anything is paid for
        return self._submit(intent)

    def _missing_span(self, chunk: Chunk) -> tuple[dt.datetime, dt.datetime]:
        """The consecutive chunks of ``chunk``'s symbol group around it that are not loaded yet."""
        from hdi.pipeline.plan import done_chunks

        group = _group(chunk.request)
        mine = sorted((c for c in self._chunks if _group(c.request) == group), key=lambda c: c.request.start)
        if chunk not in mine:
            return chunk.request.start, chunk.request.end
        done = set() if self._refresh else done_chunks(self.st, [c.chunk_id for c in mine])  # --refresh: all again
        i = mine.index(chunk)
        lo = hi = i
        while lo > 0 and mine[lo - 1].chunk_id not in done and mine[lo - 1].request.end == mine[lo].request.start:
            lo -= 1
        while hi + 1 < len(mine) and mine[hi + 1].chunk_id not in done and \
                mine[hi + 1].request.start == mine[hi].request.end:
            hi += 1
        return mine[lo].request.start, mine[hi].request.end

    def _submit(self, row: dict[str, Any]) -> dict[str, Any]:
        b = self.api.client.batch
        what = f"batch.submit_job {row['dataset']} {row['schema']} {row['symbols']} [{iso(row['start_ts'])}, " \
               f"{iso(row['end_ts'])})"
        job = self.api._call(what, lambda: b.submit_job(
            dataset=row["dataset"], symbols=row["symbols"].split(","), schema=row["schema"],
            start=row["start_ts"], end=row["end_ts"], encoding="dbn", compression="zstd",
            split_duration=self.split, delivery="download", stype_in=row["stype_in"], stype_out="instrument_id"))
        logger.info("submitted batch job %s: %s split by %s", job["id"], what[len("batch.submit_job "):], self.split)
        return self._save(row, job_id=str(job["id"]), state=str(job.get("state") or "received"),
                          cost_usd=job.get("cost_usd"), billable_bytes=job.get("billed_size"))

    def _save(self, row: dict[str, Any], **changes: Any) -> dict[str, Any]:
        new = {**row, **changes, "updated_at": _now()}
        if new.get("cost_usd") is not None:
            new["cost_usd"] = float(new["cost_usd"])
        if new.get("billable_bytes") is not None:
            new["billable_bytes"] = int(new["billable_bytes"])
        self.st.record_row(BATCH_JOBS.name, new)
        return new

    def _set_state(self, row: dict[str, Any], state: str, error: str | None = None) -> dict[str, Any]:
        return self._save(row, state=state, error=error)

    def _listed(self, row: dict[str, Any]) -> dict[str, Any] | None:
        """A job Databento lists with ``row``'s parameters, submitted since its intent (not expired)."""
        since = row["submitted_at"] - dt.timedelta(minutes=5)
        jobs = self.api._call("batch.list_jobs", lambda: self.api.client.batch.list_jobs(states=None, since=since))
        for job in reversed(jobs):
            if job.get("state") not in _ALIVE:
                continue
            try:
                same = (job.get("dataset") == row["dataset"] and job.get("schema") == row["schema"]
                        and job.get("stype_in") == row["stype_in"] and job.get("split_duration") == self.split
                        and _symbols(job.get("symbols")) == row["symbols"]
                        and parse_iso(str(job["start"])) == row["start_ts"]
                        and parse_iso(str(job["end"])) == row["end_ts"])
            except (KeyError, ValueError):
                continue
            if same:
                return dict(job)
        return None

    def _wait(self, row: dict[str, Any]) -> str:
        """Poll ``batch.list_jobs`` until the job is done (or expired); its final state."""
        job_id = str(row["job_id"])
        t0 = time.monotonic()
        since = row["submitted_at"] - dt.timedelta(days=1)
        last = row["state"]
        b = self.api.client.batch
        while True:
            jobs = self.api._call("batch.list_jobs", lambda: b.list_jobs(states=None, since=since))
            job = next((j for j in jobs if j.get("id") == job_id), None)
            if job is None:  # not among the live jobs: expired?
                expired = self.api._call("batch.list_jobs", lambda: b.list_jobs(states="expired", since=since))
                state = "expired" if any(j.get("id") == job_id for j in expired) else "missing"
            else:
                state = str(job.get("state"))
            if state != last:
                logger.info("batch job %s: %s", job_id, state)
                with self._lock:
                    row.update(self._set_state(row, state if state != "missing" else "failed",
                                               None if state in _ALIVE or state == "expired" else
                                               f"batch.list_jobs state {state!r}"))
                last = state
            if state in ("done", "expired"):
                return state
            if state not in PENDING:
                msg = (f"batch job {job_id} failed (batch.list_jobs state {state!r}); nothing of it was loaded, the next "
                       "run submits it again")
                self._failed[job_id] = msg
                raise _Failed(msg, transient=False)
            if time.monotonic() - t0 > self.wait:
                raise SourceError(f"batch job {job_id} is still {state} after {self.wait:.0f} s "
                                  "(HDI_BATCH_WAIT_SECONDS); run the ingest again later: it waits for the same job, "
                                  "nothing is submitted twice", transient=False)
            interrupt.sleep(self.poll)

    def _list(self, job_id: str, chunk: Chunk) -> list[dict[str, Any]] | None:
        """``batch.list_files`` (once per job and run); None: the job expired."""
        with self._list_lock:  # one list_files per job and run, whichever thread asks first
            return self._list_once(job_id, chunk)

    def _list_once(self, job_id: str, chunk: Chunk) -> list[dict[str, Any]] | None:
        if job_id in self._files:
            return self._files[job_id]
        try:
            files = self.api._call(f"batch.list_files {job_id}", lambda: self.api.client.batch.list_files(job_id))
        except SourceError as e:
            if e.http_status in (404, 410):
                return None
            raise
        files = [f for f in files if str(f.get("filename", "")).endswith((".dbn.zst", ".dbn"))]
        by_start = {c.request.start: c for c in self._chunks}
        for f in files:
            start, end = self._file_range(f, chunk.request)
            c = by_start.get(start) if start is not None else None
            same = c is not None and _group(c.request) == _group(chunk.request)
            self.st.record_row(BATCH_FILES.name, {
                "job_id": job_id, "filename": f["filename"], "chunk_id": c.chunk_id if same and c else None,
                "start_ts": start or chunk.request.start, "end_ts": end or chunk.request.end, "size": int(f["size"]),
                "sha256": str(f["hash"]).partition(":")[2], "state": "listed", "updated_at": _now()})
        self._files[job_id] = files
        return files

    def _file_range(self, f: dict[str, Any], q: Request) -> tuple[dt.datetime | None, dt.datetime | None]:
        """The period a job file holds, from its name (``<dataset>-YYYYMMDD.<schema>.dbn.zst``)."""
        name = str(f["filename"])
        stem = name.split(".", 1)[0]
        digits = stem.rsplit("-", 1)[-1]
        try:
            day = dt.datetime.strptime(digits, "%Y%m%d").replace(tzinfo=dt.UTC)
        except ValueError:
            return None, None
        for c in self._chunks:
            if _group(c.request) == _group(q) and c.request.start.date() == day.date():
                return c.request.start, c.request.end
        return day, None

    def _file_for(self, files: list[dict[str, Any]], q: Request) -> dict[str, Any] | None:
        for f in files:
            start, _ = self._file_range(f, q)
            if start == q.start:
                return f
        return None

    def _download(self, row: dict[str, Any], f: dict[str, Any], chunk: Chunk) -> Path | None:
        """Download (resuming a partial file), check the hash and the DBN, move into the raw cache."""
        job_id, name, q = str(row["job_id"]), str(f["filename"]), chunk.request
        folder = self.api.cache.root / ".batch"
        part = folder / job_id / name
        algo, _, want = str(f["hash"]).partition(":")
        b = self.api.client.batch
        info: Verified | None = None
        for attempt in (1, 2):  # a damaged file (hash, DBN) is deleted and downloaded once more
            if part.exists() and part.stat().st_size > int(f["size"]):  # not a prefix of the job's file
                logger.warning("%s: %s is larger than the job's %d bytes; deleted", chunk.label, part, int(f["size"]))
                self.api.cache.discard(part)
            if part.exists():
                logger.info("%s: resuming the download of %s (%d of %d bytes there)", chunk.label, name,
                            part.stat().st_size, int(f["size"]))
            try:
                self.api._call(f"batch.download {job_id} {name}", lambda: b.download(
                    job_id, output_dir=folder, filename_to_download=name))
            except SourceError as e:
                if e.http_status in (404, 410):
                    return None
                raise
            got = _sha256(part)
            problem = f"its SHA-256 {got} differs from the job's {want}" if algo == "sha256" and got != want else None
            if problem is None:
                try:
                    info = verify(part, q)
                    break
                except SourceError as e:
                    problem = e.message
            self.api.cache.discard(part)
            if attempt == 2:
                raise SourceError(f"batch job {job_id} file {name}: {problem}; the file was deleted, the next run "
                                  "downloads it again", transient=True)
            logger.warning("%s: batch job %s file %s: %s; deleted, downloading it again", chunk.label, job_id, name,
                           problem)
        assert info is not None
        path = self.api.cache.commit(q, part, info, source=self.api.gateway)
        self.st.record_row(BATCH_FILES.name, {
            "job_id": job_id, "filename": name, "chunk_id": chunk.chunk_id, "start_ts": q.start, "end_ts": q.end,
            "size": int(f["size"]), "sha256": want, "state": "verified", "updated_at": _now()})
        return path


def _symbols(value: object) -> str:
    if isinstance(value, list):
        return ",".join(str(s) for s in value)
    return ",".join(s.strip() for s in str(value or "").split(",") if s.strip())


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            h.update(block)
    return h.hexdigest()

