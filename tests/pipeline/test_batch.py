"""Databento batch jobs (``--batch``): the real client against the local gateway, real stores.

A batch backfill stores exactly the rows the streaming API stores; a killed, failed or expired
job never leads to paying twice for what was already submitted (the gateway's request log counts
``batch.submit_job`` calls), and a download cut off mid-file resumes with an HTTP Range request.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

from hdi.errors import ConfigError
from hdi.pipeline import ingest
from hdi.store import open_store

ROOT = Path(__file__).resolve().parents[2]
OHLCV_1D = ROOT / "recipes" / "ohlcv_1d.yaml"  # chunk period month
OHLCV_1H = ROOT / "recipes" / "ohlcv_1h.yaml"  # chunk period month
TRADES = ROOT / "recipes" / "trades.yaml"  # chunk period day
START, END = "2024-03-01", "2024-05-01"
FUTURES = "CL.c.0,NG.c.0,HO.c.0,RB.c.0,ES.c.0"
TEST_KEY = "db-test-0123456789abcdefABCDEF"
BACKENDS = ["duckdb", pytest.param("timescale", marks=pytest.mark.timescale), "iceberg"]


@pytest.fixture(autouse=True)
def _fast_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HDI_BATCH_POLL_SECONDS", "0.05")


@pytest.fixture
def url_of(request: pytest.FixtureRequest, tmp_path: Path):
    """A fresh store URL of a backend (TimescaleDB: a fresh schema)."""

    def make(backend: str, name: str = "store") -> str:
        if backend == "duckdb":
            return f"duckdb://{tmp_path / f'{name}.duckdb'}"
        if backend == "iceberg":
            return f"iceberg://{tmp_path / f'{name}-lake'}"
        return str(request.getfixturevalue("timescale_schema_url"))

    yield make
    from hdi.store import close_all

    close_all()


def stored(url: str, table: str = "ohlcv") -> pl.DataFrame:
    frame = open_store(url).select(table)
    return frame.sort(frame.columns)


def submits(gw) -> list:
    return gw.calls("batch.submit_job")


def batch_calls(gw) -> list:
    return [r for r in gw.requests if "batch" in r.path]


def reference(tmp_path: Path, gw, *args: object, **kw: object) -> pl.DataFrame:
    """The same backfill through the streaming API into its own DuckDB file (its own cache)."""
    url = f"duckdb://{tmp_path / 'reference.duckdb'}"
    old = os.environ.get("HDI_CACHE_DIR")
    os.environ["HDI_CACHE_DIR"] = str(tmp_path / "reference-cache")
    try:
        report = ingest(*args, store=url, batch="never", **kw)  # type: ignore[arg-type]
    finally:
        if old is None:
            os.environ.pop("HDI_CACHE_DIR", None)
        else:
            os.environ["HDI_CACHE_DIR"] = old
    assert report.ok, [c.error for c in report.chunks]
    table = "trades" if args and args[0] == TRADES else "ohlcv"
    return stored(url, table)


@pytest.mark.parametrize("backend", BACKENDS)
def test_batch_backfill_stores_exactly_the_rows_of_the_streaming_api(gateway, url_of, tmp_path, backend):
    want = reference(tmp_path, gateway, OHLCV_1D, start=START, end=END)
    before = len(gateway.requests)
    url = url_of(backend)
    report = ingest(OHLCV_1D, start=START, end=END, store=url, batch="always")
    assert report.ok, [c.error for c in report.chunks]
    assert report.count("done") == 4
    assert stored(url).equals(want)
    new = gateway.requests[before:]
    # one job per symbol group (GLBX futures, EQUS SPY), each split by month: one file per chunk
    jobs = [r for r in new if r.path.endswith("batch.submit_job")]
    assert sorted(r.params["dataset"] for r in jobs) == ["EQUS.MINI", "GLBX.MDP3"]
    assert {r.params["split_duration"] for r in jobs} == {"month"}
    assert not any(r.path.endswith("timeseries.get_range") for r in new)
    assert sum("batch/download/" in r.path for r in new) == 4
    st = open_store(url)
    ledger = st.query('SELECT job_id, state FROM "batch_jobs"')
    assert ledger.height == 2 and set(ledger["state"]) == {"done"}
    files = st.query('SELECT chunk_id, state FROM "batch_files"')
    assert set(files["state"]) == {"verified"}
    assert set(files["chunk_id"]) == set(st.chunks()["chunk_id"])
    # a re-run submits nothing and downloads nothing
    again = ingest(OHLCV_1D, start=START, end=END, store=url, batch="always")
    assert again.ok and again.count("skipped") == 4
    assert len(submits(gateway)) == 2


def test_batch_never_calls_no_batch_endpoint_and_auto_follows_the_threshold(gateway, url_of, tmp_path, monkeypatch):
    url = url_of("duckdb")
    assert ingest(OHLCV_1D, start=START, end="2024-04-01", store=url, batch="never").ok
    assert batch_calls(gateway) == []
    # auto with the default 5 GB threshold: a small pull streams
    assert ingest(OHLCV_1D, start="2024-04-01", end=END, store=url, batch="auto").ok
    assert batch_calls(gateway) == []
    assert len(gateway.calls("metadata.get_billable_size")) >= 2
    # auto above a recipe's small threshold: batch jobs
    recipe = tmp_path / "small_threshold.yaml"
    recipe.write_text(OHLCV_1D.read_text().replace("  chunk: {period: month",
                                                    "  batch_threshold_bytes: 1000\n  chunk: {period: month"))
    monkeypatch.setenv("HDI_CACHE_DIR", str(tmp_path / "cache2"))  # else every chunk is a raw-cache hit
    report = ingest(recipe, start=START, end=END, store=url_of("duckdb", "auto"), batch="auto")
    assert report.ok and len(submits(gateway)) == 2


def test_batch_always_refuses_a_chunk_period_job_files_cannot_match(gateway, url_of):
    with pytest.raises(ConfigError, match=r"source.chunk.period 'week' cannot be fetched by batch jobs.*allowed"):
        ingest(ROOT / "recipes" / "ohlcv_1m.yaml", start="2024-03-04", end="2024-03-11", symbols="CL.c.0",
               store=url_of("duckdb"), batch="always")


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_failed_job_fails_its_chunks_naming_the_job_and_a_rerun_submits_again(gateway, url_of, tmp_path, backend):
    url = url_of(backend)
    gateway.api.batch.fail_next = 1
    report = ingest(OHLCV_1D, start=START, end=END, symbols=FUTURES, store=url, batch="always")
    assert not report.ok
    job_id = submits(gateway) and next(iter(gateway.api.batch.jobs))
    failed = [c for c in report.chunks if c.status == "failed"]
    assert len(failed) == 2
    for c in failed:
        assert job_id in c.error and "failed" in c.error and "\n" not in c.error
    chunks = open_store(url).chunks()
    assert set(chunks["status"]) == {"failed"}
    assert len(submits(gateway)) == 1  # both chunks of the failed job failed; nothing submitted twice in a run
    again = ingest(OHLCV_1D, start=START, end=END, symbols=FUTURES, store=url, batch="always")
    assert again.ok, [c.error for c in again.chunks]
    assert len(submits(gateway)) == 2
    assert stored(url).equals(reference(tmp_path, gateway, OHLCV_1D, start=START, end=END, symbols=FUTURES))


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_expired_job_is_submitted_again_only_for_the_chunks_still_missing(gateway, url_of, tmp_path, backend):
    url = url_of(backend)
    # April's file cannot be downloaded in the first run (403): March loads, April fails
    gateway.faults.status("batch/download/*", 403, times=50, match={"filename": "glbx-mdp3-20240401.ohlcv-1d.dbn.zst"})
    first = ingest(OHLCV_1D, start=START, end=END, symbols=FUTURES, store=url, batch="always")
    assert [c.status for c in first.chunks] == ["done", "failed"]
    gateway.faults.clear()
    gateway.api.batch.expire()  # the job's files are gone
    again = ingest(OHLCV_1D, start=START, end=END, symbols=FUTURES, store=url, batch="always")
    assert again.ok, [c.error for c in again.chunks]
    jobs = submits(gateway)
    assert len(jobs) == 2
    assert jobs[0].params["start"].startswith("2024-03-01") and jobs[0].params["end"].startswith("2024-05-01")
    assert jobs[1].params["start"].startswith("2024-04-01") and jobs[1].params["end"].startswith("2024-05-01")
    states = open_store(url).query('SELECT job_id, state FROM "batch_jobs" ORDER BY submitted_at')
    assert states["state"].to_list() == ["expired", "done"]
    assert stored(url).equals(reference(tmp_path, gateway, OHLCV_1D, start=START, end=END, symbols=FUTURES))


def test_a_download_dropped_mid_file_resumes_with_a_range_request(gateway, url_of, tmp_path):
    args = {"start": "2024-03-05", "end": "2024-03-06", "symbols": "CL.c.0"}
    gateway.faults.drop("batch/download/*", after_bytes=20_000)
    url = url_of("duckdb")
    report = ingest(TRADES, store=url, batch="always", **args)
    assert report.ok, [c.error for c in report.chunks]
    downloads = [r for r in gateway.requests if "batch/download/" in r.path]
    assert downloads[0].fault is not None and "drop" in downloads[0].fault
    ranges = [r.params.get("Range", "") for r in downloads[1:]]
    assert ranges and ranges[0].startswith("bytes=") and int(ranges[0][len("bytes="):].split("-")[0]) > 0
    assert stored(url, "trades").equals(reference(tmp_path, gateway, TRADES, **args))


# -- SIGKILL: `hdi ingest` as a process against the gateway ------------------------------------------
def _env(gw, tmp_path: Path) -> dict[str, str]:
    return {**os.environ, **gw.env(), "DATABENTO_API_KEY": TEST_KEY, "HDI_NO_PROGRESS": "1",
            "HDI_RETRY_BASE_DELAY": "0.01", "HDI_RETRY_MAX_DELAY": "0.05", "HDI_BATCH_POLL_SECONDS": "0.1",
            "HDI_DATA_DIR": str(tmp_path / "data")}


def _hdi(env: dict[str, str], *args: str, wait: bool = True):
    cmd = [str(Path(sys.executable).parent / "hdi"), *args]
    if wait:
        return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _wait_for(cond, timeout: float, what: str, alive) -> None:
    t0 = time.monotonic()
    while not cond():
        assert alive(), f"hdi ended before {what}"
        assert time.monotonic() - t0 < timeout, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.mark.slow
@pytest.mark.parametrize("when", ["job_pending", "file_downloading"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_sigkill_then_rerun_submits_one_job_in_total_and_stores_exact_rows(gateway, url_of, tmp_path, backend, when):
    recipe = OHLCV_1D if when == "job_pending" else OHLCV_1H  # hourly bars: files of several 4 KiB reads
    want = reference(tmp_path, gateway, recipe, start=START, end=END, symbols=FUTURES)
    url = url_of(backend)
    env = _env(gateway, tmp_path)
    args = ("ingest", "--recipe", str(recipe), "--start", START, "--end", END, "--symbols", FUTURES,
            "--store", url, "--batch", "always")
    jobs = gateway.api.batch
    if when == "job_pending":
        jobs.done_after = 3600.0  # the job stays processing until the test lets it finish
        cond = lambda: len(gateway.calls("batch.list_jobs")) >= 2  # noqa: E731 - its id is in the ledger
    else:
        jobs.download_rate = 4000.0  # bytes/s: a month's file takes several seconds
        cond = lambda: any(  # noqa: E731
            p.stat().st_size > 0 for p in (tmp_path / "data").rglob("*.dbn.zst") if ".batch" in p.parts)
    proc = _hdi(env, *args, wait=False)
    try:
        _wait_for(cond, 120, when, lambda: proc.poll() is None)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
    assert len(submits(gateway)) == 1
    partial = [p for p in (tmp_path / "data").rglob("*.dbn.zst") if ".batch" in p.parts]
    jobs.done_after, jobs.download_rate = 0.3, None
    done = _hdi(env, *args)
    assert done.returncode == 0, done.stderr
    assert len(submits(gateway)) == 1  # the re-run found the job: not submitted (nor paid for) again
    assert stored(url).equals(want)
    if when == "file_downloading":
        assert partial
        resumed = [r.params.get("Range", "") for r in gateway.requests if "batch/download/" in r.path]
        assert any(r.startswith("bytes=") and not r.startswith("bytes=0-") for r in resumed), resumed


def test_a_submit_whose_job_id_never_reached_the_ledger_is_found_by_list_jobs(gateway, url_of, tmp_path):
    """The crash window between submit_job and the ledger write: the intent row has no job id."""
    url = url_of("duckdb")
    assert ingest(OHLCV_1D, start=START, end="2024-04-01", symbols=FUTURES, store=url, batch="always").ok
    st = open_store(url)
    row = st.query('SELECT * FROM "batch_jobs"').row(0, named=True)
    # as if the process died right after submit_job: the intent only, and nothing loaded
    st.record_row("batch_jobs", {**row, "job_id": None, "state": "submitting"})
    from hdi.store.ledger import ChunkRecord

    for c in st.chunks().iter_rows(named=True):
        st.record_chunk(ChunkRecord(**{**{k: c[k] for k in ChunkRecord.__dataclass_fields__}, "status": "failed"}))
    for p in (tmp_path / "data").rglob("*.dbn.zst"):
        p.unlink()
    again = ingest(OHLCV_1D, start=START, end="2024-04-01", symbols=FUTURES, store=url, batch="always")
    assert again.ok, [c.error for c in again.chunks]
    assert len(submits(gateway)) == 1
    assert open_store(url).query('SELECT job_id FROM "batch_jobs"')["job_id"].to_list() == [row["job_id"]]


def test_a_file_failing_the_jobs_sha256_is_deleted_and_downloaded_again(gateway, url_of, tmp_path):
    url = url_of("duckdb")
    args = {"start": START, "end": "2024-04-01", "symbols": FUTURES}
    gateway.faults.status("batch/download/*", 403, times=50)  # the job is done, its file not downloaded
    first = ingest(OHLCV_1D, store=url, batch="always", **args)
    assert [c.status for c in first.chunks] == ["failed"]
    gateway.faults.clear()
    job_id = open_store(url).query('SELECT job_id FROM "batch_jobs"')["job_id"][0]
    name = "glbx-mdp3-20240301.ohlcv-1d.dbn.zst"
    part = tmp_path / "data" / "raw" / ".batch" / job_id / name
    part.parent.mkdir(parents=True, exist_ok=True)
    part.write_bytes(b"\x00" * 100)  # a partial file whose bytes are not the job's
    again = ingest(OHLCV_1D, store=url, batch="always", **args)
    assert again.ok, [c.error for c in again.chunks]
    assert len(submits(gateway)) == 1
    ranges = [r.params.get("Range", "") for r in gateway.requests if "batch/download/" in r.path and r.status != 403]
    assert ranges[0].startswith("bytes=100-") and ranges[1] == ""  # resumed, failed the hash, downloaded whole
    assert not part.exists()
    assert stored(url).equals(reference(tmp_path, gateway, OHLCV_1D, **args))


def test_bad_batch_settings_get_one_line_errors(gateway, cli, tmp_path):
    r = cli("ingest", "--recipe", OHLCV_1D, "--batch", "sometimes", "--store", f"duckdb://{tmp_path / 's.duckdb'}")
    assert r.exit_code == 1
    assert "--batch 'sometimes' is not a batch mode; allowed: auto, always, never" in r.stderr
    assert batch_calls(gateway) == []
    recipe = tmp_path / "bad_threshold.yaml"
    recipe.write_text(OHLCV_1D.read_text().replace("  chunk: {period: month",
                                                    "  batch_threshold_bytes: lots\n  chunk: {period: month"))
    r = cli("ingest", "--recipe", recipe, "--store", f"duckdb://{tmp_path / 's.duckdb'}")
    assert r.exit_code != 0 and "batch_threshold_bytes" in r.stderr and "integer" in r.stderr


def test_refresh_downloads_the_done_jobs_files_again_without_submitting(gateway, url_of):
    url = url_of("duckdb")
    args = {"start": START, "end": END, "symbols": FUTURES}
    assert ingest(OHLCV_1D, store=url, batch="always", **args).ok
    first = stored(url)
    again = ingest(OHLCV_1D, store=url, batch="always", refresh=True, **args)
    assert again.ok and again.count("done") == 2 and again.rows_already_present == first.height
    assert len(submits(gateway)) == 1  # the job is still done: its files are downloaded again, not paid again
    assert sum("batch/download/" in r.path for r in gateway.requests) == 4
    assert stored(url).equals(first)


def test_a_batch_backfill_records_conditions_and_a_restated_day_is_streamed_again(gateway, url_of):
    """Batch-fetched days keep their dataset conditions (ingest_conditions), so a later restatement of
    one of them is noticed and that day alone is fetched again, streamed (never a new job)."""
    import datetime as dt

    url = url_of("duckdb")
    first = ingest(TRADES, start="2026-01-05", end="2026-01-08", symbols="CL.c.0", store=url, batch="always")
    assert first.ok and first.count("done") == 3, [c.error for c in first.chunks]
    days = open_store(url).query("SELECT day, condition FROM ingest_conditions ORDER BY day")
    assert [(d, c) for d, c in days.with_columns(pl.col("day").cast(pl.Date)).rows()] == \
        [(dt.date(2026, 1, n), "available") for n in (5, 6, 7)]
    rows = stored(url, "trades").height
    gateway.restate("GLBX.MDP3", dt.date(2026, 1, 6), remove=[0], reprice=[(4, 2)])
    gateway.clear_requests()
    again = ingest(TRADES, start="2026-01-05", end="2026-01-08", symbols="CL.c.0", store=url, batch="always",
                   restatements=True)
    assert again.ok and again.count("done") == 1, [c.error for c in again.chunks]
    assert not batch_calls(gateway)
    assert [(r.params["start"][:10], r.params["end"][:10]) for r in gateway.calls("timeseries.get_range")] == \
        [("2026-01-06", "2026-01-07")]
    assert stored(url, "trades").height == rows - 1
    assert len(submits(gateway)) == 0
