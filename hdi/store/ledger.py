"""The ingest ledger: runs and chunks, kept in the store itself.

A chunk is one source request (dataset, schema, symbols, time range) loaded by one recipe. Its ledger
row and its data commit in the same transaction, so after a crash either both are there or neither is:
a re-run skips chunks whose status is ``done`` for the same recipe hash and retries the rest.

This module holds the ledger tables, their typed records and the ledger reads every backend shares
(:meth:`hdi.store.base.Store.chunks` / :meth:`~hdi.store.base.Store.runs` call them).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import polars as pl

from hdi._tables import ColType, Column, Table
from hdi.store.frames import empty_frame, normalise

if TYPE_CHECKING:
    from hdi.store.base import Store

_T, _I, _TS, _F = ColType.TEXT, ColType.I64, ColType.TS, ColType.F64

# Chunk statuses. ``done`` = loaded (possibly zero rows: the source had no data for it);
# ``failed`` = a terminal or exhausted-retry error, to be retried by the next run.
DONE, FAILED = "done", "failed"

_SCHEMA_DOC = ("the schema stored: the source's, except bars resampled to another size (ohlcv-5m, ohlcv-15m "
               "built from ohlcv-1m)")

INGEST_CHUNKS = Table(
    name="ingest_chunks",
    doc="One row per source chunk: what was asked, by which recipe, and how it ended.",
    columns=(
        Column("chunk_id", _T, doc="stable id of (request, recipe hash)"),
        Column("run_id", _T, doc="the run that last touched the chunk"),
        Column("recipe", _T), Column("recipe_hash", _T),
        Column("dataset", _T), Column("schema", _T, doc=_SCHEMA_DOC), Column("stype_in", _T),
        Column("symbols", _T, doc="comma-joined, as requested"),
        Column("start_ts", _TS), Column("end_ts", _TS, doc="exclusive"),
        Column("target_table", _T),
        Column("status", _T, doc="done | failed"),
        Column("rows_fetched", _I), Column("rows_loaded", _I), Column("rows_quarantined", _I),
        Column("rows_already_present", _I),
        Column("cost_usd", _F, True), Column("source", _T, doc="'databento' or the DBN file path"),
        Column("quarantine_path", _T, True), Column("error", _T, True),
        Column("attempts", _I), Column("updated_at", _TS),
    ),
    key=("chunk_id",),
    time_column="updated_at",
    chunk_interval=None,
)

INGEST_RUNS = Table(
    name="ingest_runs",
    doc="One row per `hdi ingest` run.",
    columns=(
        Column("run_id", _T), Column("recipe", _T), Column("recipe_hash", _T),
        Column("command", _T, doc="what was run (no secrets)"),
        Column("params", _T, doc="JSON of the run's parameters (recipe, range, symbols, files), for --resume"),
        Column("started_at", _TS), Column("finished_at", _TS, True),
        Column("status", _T, doc="running | succeeded | over_budget (every good row loaded; more rows "
                                 "quarantined than the recipe's max_failure_rate) | failed | interrupted"),
        Column("chunks_total", _I), Column("chunks_done", _I), Column("chunks_skipped", _I),
        Column("chunks_failed", _I),
        Column("rows_fetched", _I), Column("rows_loaded", _I), Column("rows_quarantined", _I),
        Column("rows_already_present", _I), Column("cost_usd", _F, True),
        Column("error", _T, True, doc="why the run failed, was interrupted or went over budget; and what its "
                                      "retry pass recovered (chunks that had failed transiently)"),
    ),
    key=("run_id",),
    time_column="started_at",
    chunk_interval=None,
)

INGEST_DAYS = Table(
    name="ingest_days",
    doc="Per (dataset, schema, symbol, UTC day) fetched by a done chunk: how many records the source "
        "had. A day listed with 0 records was fetched and had no data; a day not listed was never fetched.",
    columns=(
        Column("dataset", _T), Column("schema", _T, doc=_SCHEMA_DOC), Column("symbol", _T),
        Column("day", ColType.DATE), Column("rows_fetched", _I), Column("chunk_id", _T),
        Column("updated_at", _TS),
    ),
    key=("dataset", "schema", "symbol", "day"),
    time_column="day",
    chunk_interval=None,
)

QUARANTINE_REPLAYS = Table(
    name="quarantine_replays",
    doc="One row per quarantined row that `hdi quarantine replay` loaded (or found already stored): it "
        "left the open quarantine, and no later replay loads it again. Written in the same transaction "
        "as the rows themselves.",
    columns=(
        Column("quarantine_run_id", _T, doc="the ingest run whose quarantine folder holds the row"),
        Column("file", _T, doc="the quarantine file's name in run=<quarantine_run_id>/"),
        Column("row_index", _I, doc="the row's position in that file (0-based)"),
        Column("replay_id", _T, doc="the replay run (an ingest_runs row) that loaded it"),
        Column("target_table", _T),
        Column("replayed_at", _TS),
    ),
    key=("quarantine_run_id", "file", "row_index"),
    time_column="replayed_at",
    chunk_interval=None,
)

# Databento's dataset conditions (issue 15.2: restatements).
CONDITIONS = ("available", "degraded", "pending", "missing")
# why a day was fetched again and its rows replaced (``ingest_conditions.refetched``)
REFETCH_REASONS = ("restated", "degraded", "pending")

INGEST_CONDITIONS = Table(
    name="ingest_conditions",
    doc="Per (dataset, schema, symbol, UTC day) fetched by a done chunk from Databento: the day's condition "
        "and last_modified_date as metadata.get_dataset_condition said before the fetch. `hdi ingest --update` "
        "and `--restatements` fetch a day again (and replace its rows exactly) when Databento's "
        "last_modified_date has advanced since, or when it was degraded or pending. Written in the same "
        "transaction as the chunk's ledger row; files (--from-file) have no conditions.",
    columns=(
        Column("dataset", _T), Column("schema", _T, doc=_SCHEMA_DOC), Column("symbol", _T),
        Column("day", ColType.DATE),
        Column("condition", _T, doc="available, degraded, pending or missing, as of the fetch"),
        Column("last_modified_date", ColType.DATE, True,
               doc="the day Databento last regenerated any schema of that date, as of the fetch"),
        Column("refetched", _T, True, doc="why the day was last fetched again and its stored rows replaced: "
                                          "restated (last_modified_date advanced), degraded or pending; null: "
                                          "never"),
        Column("chunk_id", _T), Column("fetched_at", _TS),
    ),
    key=("dataset", "schema", "symbol", "day"),
    time_column="day",
    chunk_interval=None,
)

ROW_COUNTS = Table(
    name="row_counts",
    doc="Stored rows per (data table, dataset, instrument, granularity, UTC day), with the day's first and "
        "last time: kept in the same transaction as every write (hdi/store/counts.py), so `hdi status` "
        "reads these instead of scanning the data tables. Written by hdi only.",
    columns=(
        Column("table_name", _T, doc="the data table (trades, ohlcv, ...)"),
        Column("dataset", _T), Column("instrument_id", _I),
        Column("granularity", _T, doc="the bar or snapshot size for ohlcv, bbo and cbbo; '' for other tables"),
        Column("day", ColType.DATE, doc="UTC day of the table's time column"),
        Column("rows", _I, doc="rows stored"),
        Column("first_ns", _I, doc="the day's earliest time (the exact *_ns column where the table has one), "
                                   "nanoseconds since the epoch"),
        Column("last_ns", _I, doc="the day's latest time, likewise"),
    ),
    key=("table_name", "dataset", "instrument_id", "granularity", "day"),
    time_column="day",
    chunk_interval=None,
)

# ---- Databento batch jobs (migration v5; hdi.source.batch) ----------------------------------------
BATCH_JOBS = Table(
    name="batch_jobs",
    doc="One row per Databento batch job hdi meant to submit (written before `batch.submit_job`, so a "
        "crash between the submit and this row's job id is found again through `batch.list_jobs`): what "
        "it asks for and its last known state. A re-run uses a job that is not failed or expired instead "
        "of submitting (and paying for) it again.",
    columns=(
        Column("intent_id", _T, doc="hdi's id of the submission, written before submit_job"),
        Column("job_key", _T, doc="sha256 of the job's parameters (dataset, schema, stype_in, symbols, start, "
                                  "end, split_duration)"),
        Column("job_id", _T, True, doc="Databento's job id; null while only the intent is recorded"),
        Column("dataset", _T), Column("schema", _T, doc="the source schema requested"), Column("stype_in", _T),
        Column("symbols", _T, doc="comma-joined, as requested"),
        Column("start_ts", _TS), Column("end_ts", _TS, doc="exclusive"),
        Column("split_duration", _T, doc="day | month: one file per hdi chunk"),
        Column("state", _T, doc="submitting | received | queued | processing | done | expired | failed"),
        Column("cost_usd", _F, True), Column("billable_bytes", _I, True),
        Column("error", _T, True),
        Column("submitted_at", _TS), Column("updated_at", _TS),
    ),
    key=("intent_id",),
    time_column="submitted_at",
    chunk_interval=None,
)

BATCH_FILES = Table(
    name="batch_files",
    doc="One row per DBN file of a batch job (`batch.list_files`): the chunk it answers, its size and "
        "SHA-256 as the job lists them, and whether it was downloaded and verified.",
    columns=(
        Column("job_id", _T), Column("filename", _T),
        Column("chunk_id", _T, True, doc="the ingest_chunks row the file answers (null: no planned chunk)"),
        Column("start_ts", _TS), Column("end_ts", _TS, doc="exclusive"),
        Column("size", _I), Column("sha256", _T),
        Column("state", _T, doc="listed | verified (downloaded, hash and DBN checked, in the raw cache)"),
        Column("updated_at", _TS),
    ),
    key=("job_id", "filename"),
    time_column="updated_at",
    chunk_interval=None,
)

BATCH_TABLES = (BATCH_JOBS, BATCH_FILES)

LEDGER_TABLES = {t.name: t for t in (INGEST_CHUNKS, INGEST_RUNS, INGEST_DAYS, QUARANTINE_REPLAYS,
                                     INGEST_CONDITIONS, ROW_COUNTS, *BATCH_TABLES)}


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class ChunkRecord:
    """A row of ``ingest_chunks``."""

    chunk_id: str
    run_id: str
    recipe: str
    recipe_hash: str
    dataset: str
    schema: str
    stype_in: str
    symbols: str
    start_ts: dt.datetime
    end_ts: dt.datetime
    target_table: str
    status: str = DONE
    rows_fetched: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    rows_already_present: int = 0
    cost_usd: float | None = None
    source: str = "databento"
    quarantine_path: str | None = None
    error: str | None = None
    attempts: int = 1
    updated_at: dt.datetime = field(default_factory=_now)

    def row(self) -> dict[str, object]:
        return asdict(self)


@dataclass
class RunRecord:
    """A row of ``ingest_runs``."""

    run_id: str
    recipe: str
    recipe_hash: str
    command: str
    params: str = "{}"
    started_at: dt.datetime = field(default_factory=_now)
    finished_at: dt.datetime | None = None
    status: str = "running"
    chunks_total: int = 0
    chunks_done: int = 0
    chunks_skipped: int = 0
    chunks_failed: int = 0
    rows_fetched: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    rows_already_present: int = 0
    cost_usd: float | None = None
    error: str | None = None

    def row(self) -> dict[str, object]:
        return asdict(self)


def _quoted(table: Table) -> str:
    # the ledger's own fixed table names (hdi.store.schema.ident imports this module, so no ident here)
    return '"' + table.name + '"'


def read_chunks(store: Store, *, status: str | None = None,
                chunk_ids: Sequence[str] | None = None) -> pl.DataFrame:
    """Ledger rows of ``ingest_chunks`` in ``store``, with a status and/or among chunk ids."""
    if not store.has_table(INGEST_CHUNKS.name):
        return empty_frame(INGEST_CHUNKS, INGEST_CHUNKS.names)
    where: list[str] = []
    params: list[Any] = []
    if status is not None:
        params.append(status)
        where.append(f"status = ${len(params)}")
    if chunk_ids is not None:
        if not chunk_ids:
            return empty_frame(INGEST_CHUNKS, INGEST_CHUNKS.names)
        start = len(params)
        params.extend(chunk_ids)
        where.append("chunk_id IN (" + ", ".join(f"${start + i + 1}" for i in range(len(chunk_ids))) + ")")
    sql = f"SELECT * FROM {_quoted(INGEST_CHUNKS)}" + (f" WHERE {' AND '.join(where)}" if where else "")
    return normalise(store.query(sql + " ORDER BY start_ts, dataset, symbols", params), INGEST_CHUNKS,
                     INGEST_CHUNKS.names)


def read_runs(store: Store, limit: int = 20) -> pl.DataFrame:
    """The most recent ``ingest_runs`` rows in ``store``, newest first."""
    if not store.has_table(INGEST_RUNS.name):
        return empty_frame(INGEST_RUNS, INGEST_RUNS.names)
    sql = f"SELECT * FROM {_quoted(INGEST_RUNS)} ORDER BY started_at DESC LIMIT $1"
    return normalise(store.query(sql, [int(limit)]), INGEST_RUNS, INGEST_RUNS.names)
