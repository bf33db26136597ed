"""Exactly-once ingestion under faults: the real client against the local gateway, real stores.

Every test asserts exact row counts after the faulty run and after a re-run: nothing lost, nothing
stored twice (the expected counts come from Databento's own record counts, or from a clean run into
a separate store), and the ledger agreeing with the data.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from hdi._config import current_user
from hdi._tables import DATA_TABLES
from hdi.pipeline import ingest
from hdi.store import open_store

ROOT = Path(__file__).resolve().parents[2]
RECIPE = ROOT / "recipes" / "ohlcv_1d.yaml"
START, END = "2024-03-01", "2024-05-01"  # 4 chunks: (GLBX futures, EQUS SPY) x (March, April)
GLBX_APRIL = {"dataset": "GLBX.MDP3", "start": "2024-04-01T00:00:00+00:00"}
APRIL_LABEL = "GLBX.MDP3 ohlcv-1d CL.c.0,NG.c.0,HO.c.0,RB.c.0,ES.c.0 [2024-04-01T00:00:00Z, 2024-05-01T00:00:00Z)"
FUTURES = "CL.c.0,NG.c.0,HO.c.0,RB.c.0,ES.c.0"
TEST_KEY = "db-test-0123456789abcdefABCDEF"


# ------------------------------------------------------------------------------------ helpers
def expected_per_chunk(store_url: str) -> dict[str, int]:
    """Records per chunk label, as Databento's metadata counts them (a dry run downloads nothing)."""
    dry = ingest(RECIPE, start=START, end=END, store=store_url, dry_run=True)
    assert [c.status for c in dry.chunks] == ["estimated"] * 4
    return {c.label: c.record_count for c in dry.chunks}


def rows(url: str, table: str = "ohlcv") -> int:
    st = open_store(url)
    return int(st.query(f"SELECT count(*) AS n FROM {table}").item()) if st.has_table(table) else 0


def duplicate_keys(url: str, table: str = "ohlcv") -> int:
    """Rows minus distinct natural keys: 0 when nothing is stored twice."""
    key = ", ".join(DATA_TABLES[table].key)
    sql = f"SELECT (SELECT count(*) FROM {table}) - (SELECT count(*) FROM (SELECT DISTINCT {key} FROM {table}) d) AS n"
    return int(open_store(url).query(sql).item())


def get_range_calls(gateway, match: dict[str, str] | None = None) -> list:
    return [c for c in gateway.calls("timeseries.get_range")
            if all(c.params.get(k) == v for k, v in (match or {}).items())]


def assert_rerun_is_a_no_op(gateway, url: str, total: int) -> None:
    downloads = len(get_range_calls(gateway))
    again = ingest(RECIPE, start=START, end=END, store=url)
    assert again.ok and again.count("skipped") == 4 and again.rows_loaded == 0
    assert len(get_range_calls(gateway)) == downloads  # nothing downloaded again
    assert rows(url) == total and duplicate_keys(url) == 0


def ledger(url: str) -> dict[str, str]:
    """Chunk label-ish key (dataset, start) -> status."""
    ch = open_store(url).chunks()
    return {(d, s.date().isoformat()): st for d, s, st in ch.select("dataset", "start_ts", "status").iter_rows()}


# ------------------------------------------------------------------------------ HTTP faults
@pytest.mark.parametrize("k", [1, 3])
def test_5xx_k_times_then_success_loads_everything_once(gateway, any_store_url, k):
    expected = expected_per_chunk(any_store_url)
    gateway.faults.status("timeseries.get_range", 503 if k == 1 else 502, times=k, match=GLBX_APRIL)
    report = ingest(RECIPE, start=START, end=END, store=any_store_url)
    assert report.ok, [c.error for c in report.chunks]
    calls = get_range_calls(gateway, GLBX_APRIL)
    assert [c.status for c in calls] == [503 if k == 1 else 502] * k + [200]  # k + 1 calls
    assert len(get_range_calls(gateway)) == 4 + k
    assert report.rows_loaded == rows(any_store_url) == sum(expected.values())
    assert duplicate_keys(any_store_url) == 0
    assert_rerun_is_a_no_op(gateway, any_store_url, sum(expected.values()))


def test_429_retry_after_is_honoured(gateway, any_store_url, monkeypatch):
    expected = expected_per_chunk(any_store_url)
    seen: list[tuple[dict, float]] = []
    add = gateway.log.add

    def timed_add(method, path, params, fault):  # note when each request reached the gateway
        seen.append((dict(params), time.monotonic()))
        return add(method, path, params, fault)

    monkeypatch.setattr(gateway.log, "add", timed_add)
    gateway.faults.status("timeseries.get_range", 429, retry_after=1, match=GLBX_APRIL)
    report = ingest(RECIPE, start=START, end=END, store=any_store_url)
    assert report.ok
    calls = get_range_calls(gateway, GLBX_APRIL)
    assert [c.status for c in calls] == [429, 200]
    times = [t for p, t in seen if p.get("dataset") == "GLBX.MDP3" and p.get("start") == GLBX_APRIL["start"]
             and "encoding" in p]
    assert len(times) == 2
    # the retry waited Retry-After (1 s), not the test's 0.01 s backoff
    assert 0.95 <= times[1] - times[0] < 5.0
    assert rows(any_store_url) == sum(expected.values()) and duplicate_keys(any_store_url) == 0
    assert_rerun_is_a_no_op(gateway, any_store_url, sum(expected.values()))


def test_5xx_beyond_the_retry_budget_fails_that_chunk_only_and_the_rerun_completes_it(
        gateway, any_store_url, cli, monkeypatch):
    expected = expected_per_chunk(any_store_url)
    monkeypatch.setenv("HDI_RETRY_ATTEMPTS", "3")
    gateway.faults.status("timeseries.get_range", 500, times=3, match=GLBX_APRIL)
    args = ("ingest", "--recipe", RECIPE, "--start", START, "--end", END, "--store", any_store_url)
    first = cli(*args)
    assert first.exit_code == 1
    assert len(get_range_calls(gateway, GLBX_APRIL)) == 3
    # printed once, the chunk described once (issue 14)
    assert (f"] failed {APRIL_LABEL}: get_range failed after 3 attempts: HTTP 500: "
            "internal_server_error: An internal server error occurred.") in first.stderr
    assert first.stderr.count("failed after 3 attempts") == 1
    assert rows(any_store_url) == sum(expected.values()) - expected[APRIL_LABEL]
    assert ledger(any_store_url) == {("GLBX.MDP3", "2024-03-01"): "done", ("EQUS.MINI", "2024-03-01"): "done",
                                     ("GLBX.MDP3", "2024-04-01"): "failed", ("EQUS.MINI", "2024-04-01"): "done"}
    failed = open_store(any_store_url).chunks(status="failed")
    assert failed["error"][0].startswith("get_range failed after 3 attempts: HTTP 500")
    assert failed["attempts"][0] == 1  # one chunk attempt; the 3 HTTP attempts are inside it
    run = open_store(any_store_url).runs(limit=1).row(0, named=True)
    assert (run["status"], run["chunks_done"], run["chunks_failed"]) == ("failed", 3, 1)

    before = len(get_range_calls(gateway))
    second = cli(*args)
    assert second.exit_code == 0, second.stderr
    assert "4 planned: 1 loaded, 3 already done, 0 failed" in second.stderr
    assert len(get_range_calls(gateway)) == before + 1  # only the failed chunk is downloaded
    assert rows(any_store_url) == sum(expected.values()) and duplicate_keys(any_store_url) == 0
    assert set(ledger(any_store_url).values()) == {"done"}
    run = open_store(any_store_url).runs(limit=1).row(0, named=True)
    assert (run["status"], run["chunks_done"], run["chunks_skipped"], run["rows_loaded"]) == (
        "succeeded", 1, 3, expected[APRIL_LABEL])


@pytest.mark.parametrize("fault", ["drop", "truncate"])
def test_dropped_or_truncated_downloads_are_fetched_again(gateway, any_store_url, fault):
    expected = expected_per_chunk(any_store_url)
    if fault == "drop":
        gateway.faults.drop("timeseries.get_range", times=2, match=GLBX_APRIL)
    else:
        gateway.faults.truncate(times=2, match=GLBX_APRIL)
    report = ingest(RECIPE, start=START, end=END, store=any_store_url)
    assert report.ok, [c.error for c in report.chunks]
    calls = get_range_calls(gateway, GLBX_APRIL)
    assert [c.fault is not None for c in calls] == [True, True, False]
    assert report.rows_loaded == rows(any_store_url) == sum(expected.values())
    assert duplicate_keys(any_store_url) == 0
    # nothing partial stays in the raw cache: only complete, verified files
    cache = Path(os.environ["HDI_DATA_DIR"]) / "raw"
    assert sorted(p.suffix for p in cache.rglob("*") if p.is_file()) == [".json"] * 4 + [".zst"] * 4
    assert_rerun_is_a_no_op(gateway, any_store_url, sum(expected.values()))


# ------------------------------------------------------------------------------ quarantine
@pytest.mark.parametrize("how", ["not a directory", "read-only folder"])
def test_quarantine_folder_not_writable_is_a_clear_error_before_anything_is_loaded(
        gateway, any_store_url, cli, tmp_path, monkeypatch, how):
    if how == "not a directory":
        blocker = tmp_path / "a-file"
        blocker.write_text("")
        qdir = blocker / "quarantine"
        line = (f"error: quarantine folder {qdir} cannot be created: {blocker} is a file, not a folder; "
                "set HDI_QUARANTINE_DIR to another folder")
    else:
        if os.geteuid() == 0:
            pytest.skip("root writes into read-only folders")
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o500)
        qdir = ro / "quarantine"
        line = (f"error: quarantine folder {qdir} cannot be created: folder {ro} is not writable by user "
                f"{current_user()}: Permission denied; make it writable for that user or set HDI_QUARANTINE_DIR "
                "to another folder")
    monkeypatch.setenv("HDI_QUARANTINE_DIR", str(qdir))
    result = cli("ingest", "--recipe", RECIPE, "--start", START, "--end", END, "--store", any_store_url)
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [line]  # one line, naming the folder (and the user)
    assert get_range_calls(gateway) == []  # nothing downloaded
    st = open_store(any_store_url)
    assert [t for t in ("ohlcv", "ingest_runs", "ingest_chunks") if st.has_table(t)] == []


# ------------------------------------------------------------------------------ store faults
def _schema_of(url: str) -> str:
    opts = parse_qs(urlsplit(url).query)["options"][0]  # -csearch_path=hdi_t_xxx,public
    return opts.split("=", 1)[1].split(",")[0]


def _with_app(url: str, app: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}application_name={app}"


class _Pg:
    """An admin connection to watch and disturb the connections of one application_name."""

    def __init__(self, url: str) -> None:
        import adbc_driver_postgresql.dbapi as pg

        self.conn = pg.connect(url.split("?")[0], autocommit=True)

    def one(self, sql: str, params: tuple = ()) -> object:
        with self.conn.cursor() as cur:
            cur.execute(sql, parameters=params or None)
            return cur.fetchone()[0]

    def loading(self, schema: str, table: str, app: str) -> bool:
        """Whether a connection of ``app`` holds an uncommitted write lock on ``schema.table`` (or on
        ``hdi_<table>``, the hypertable behind a lean tick table's view, which is what writes go to)."""
        return bool(self.one(
            "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
            "JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE n.nspname = $1 AND c.relname IN ($2, 'hdi_' || $2) AND l.mode = 'RowExclusiveLock' "
            "AND a.application_name = $3", (schema, table, app)))

    def terminate(self, app: str) -> int:
        return int(self.one("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                            "WHERE application_name = $1 AND pid <> pg_backend_pid()", (app,)))

    def close(self) -> None:
        self.conn.close()


def _wait_for(cond, timeout: float, what: str, alive=lambda: True) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and alive():
        if cond():
            return
        time.sleep(0.003)
    pytest.fail(f"timed out waiting for {what}")


TRADES = ROOT / "recipes" / "trades.yaml"
T_START, T_END = "2024-12-02", "2024-12-05"  # 3 daily chunks of futures trades


def _trades_reference(tmp_path: Path) -> dict[str, int]:
    """Rows per chunk id from a clean run into a separate DuckDB store (same gateway, no faults)."""
    ref = f"duckdb://{tmp_path / 'reference.duckdb'}"
    report = ingest(TRADES, start=T_START, end=T_END, symbols=FUTURES, store=ref)
    assert report.ok and report.rows_quarantined == 0
    return {c.chunk_id: c.rows_loaded for c in report.chunks}


@pytest.mark.timescale
def test_backend_connections_terminated_mid_load_are_retried_on_new_connections(
        gateway, timescale_schema_url, tmp_path):
    reference = _trades_reference(tmp_path)
    app = f"hdi_fault_{uuid.uuid4().hex[:8]}"
    url = _with_app(timescale_schema_url, app)
    schema = _schema_of(timescale_schema_url)
    st = open_store(url)
    st.migrate()
    assert st.chunks().height == 0  # the reader connection is open now; it gets terminated too
    pg = _Pg(timescale_schema_url)
    result: dict = {}
    worker = threading.Thread(target=lambda: result.update(r=ingest(TRADES, start=T_START, end=T_END,
                                                                    symbols=FUTURES, store=url, batch_rows=20_000)))
    worker.start()
    try:
        _wait_for(lambda: pg.loading(schema, "trades", app), 60, "a chunk to be loading", worker.is_alive)
        assert pg.terminate(app) >= 2  # the loading transaction and the reader
    finally:
        worker.join(120)
        pg.close()
    report = result["r"]
    assert report.ok, [c.error for c in report.chunks]
    assert sorted(c.attempts for c in report.chunks) == [1, 1, 2]  # the interrupted chunk was retried once
    assert rows(url, "trades") == sum(reference.values()) and duplicate_keys(url, "trades") == 0
    # the store reconnects its reader: a re-run in the same process reads the ledger and skips all
    again = ingest(TRADES, start=T_START, end=T_END, symbols=FUTURES, store=url)
    assert again.ok and again.count("skipped") == 3 and rows(url, "trades") == sum(reference.values())


@pytest.mark.timescale
def test_a_chunk_that_failed_at_load_is_retried_from_the_raw_cache(gateway, timescale_schema_url, tmp_path,
                                                                  monkeypatch):
    """With no store retries left, a terminated load fails its chunk; the re-run loads it from the
    raw cache (no download) and skips the chunks that were done."""
    import hdi.pipeline.loader
    from hdi._retrying import RetryPolicy

    reference = _trades_reference(tmp_path)
    monkeypatch.setattr(hdi.pipeline.loader, "STORE_RETRY", RetryPolicy(attempts=1))
    app = f"hdi_fail_{uuid.uuid4().hex[:8]}"
    url = _with_app(timescale_schema_url, app)
    open_store(url).migrate()
    pg = _Pg(timescale_schema_url)
    result: dict = {}
    worker = threading.Thread(target=lambda: result.update(r=ingest(TRADES, start=T_START, end=T_END,
                                                                    symbols=FUTURES, store=url, batch_rows=20_000)))
    worker.start()
    try:
        _wait_for(lambda: pg.loading(_schema_of(timescale_schema_url), "trades", app), 60, "a chunk to be loading",
                  worker.is_alive)
        pg.terminate(app)
    finally:
        worker.join(120)
        pg.close()
    first = result["r"]
    assert sorted(c.status for c in first.chunks) == ["done", "done", "failed"]
    failed = next(c for c in first.chunks if c.status == "failed")
    assert "nothing was committed" in failed.error
    assert rows(url, "trades") == sum(n for c, n in reference.items() if c != failed.chunk_id)
    downloads = len(get_range_calls(gateway))
    second = ingest(TRADES, start=T_START, end=T_END, symbols=FUTURES, store=url)
    assert second.ok and second.count("skipped") == 2 and second.count("done") == 1
    assert second.rows_loaded == reference[failed.chunk_id]
    assert len(get_range_calls(gateway)) == downloads  # served from the raw cache
    assert rows(url, "trades") == sum(reference.values()) and duplicate_keys(url, "trades") == 0


# -- a private PostgreSQL + TimescaleDB cluster that this test may restart without disturbing anyone
PG_BIN = Path("/usr/lib/postgresql/15/bin")


@pytest.fixture(scope="module")
def private_cluster():
    if not (PG_BIN / "initdb").is_file() or not Path("/usr/share/postgresql/15/extension/timescaledb.control").is_file():
        pytest.skip("PostgreSQL 15 with TimescaleDB is not installed (scripts/timescaledb.sh up installs it)")
    root = Path(tempfile.mkdtemp(prefix="hdi-restart-", dir="/tmp"))
    owner = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if owner:
        shutil.chown(root, "postgres")
    data = root / "data"

    def run(*args: str) -> None:
        subprocess.run([*owner, *args], check=True, capture_output=True, timeout=120)

    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    run(str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
        "--locale=C.UTF-8", "-N")
    conf = (f"shared_preload_libraries = 'timescaledb'\ntimescaledb.telemetry_level = off\n"
            f"listen_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = '{root}'\nfsync = off\n")
    run("sh", "-c", f"printf %s \"{conf}\" >> {data}/postgresql.conf")
    ctl = [str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(root / "server.log"), "-w", "-t", "60"]

    class Cluster:
        url = f"postgresql://postgres@127.0.0.1:{port}/postgres"

        def stop(self) -> None:
            run(*ctl, "-m", "fast", "stop")

        def start(self) -> None:
            run(*ctl, "start")

    c = Cluster()
    c.start()
    try:
        import adbc_driver_postgresql.dbapi as pg

        with pg.connect(c.url, autocommit=True) as conn, conn.cursor() as cur:
            cur.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
        yield c
    finally:
        subprocess.run([*owner, *ctl, "-m", "immediate", "stop"], capture_output=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.timescale
@pytest.mark.slow
def test_database_restarted_mid_load_the_run_reconnects_and_loads_everything_once(
        gateway, private_cluster, tmp_path):
    """A real restart (fast shutdown: every session terminated, open transactions rolled back), the
    server down 2.5 s so that the retried chunk also meets 'connection refused'."""
    reference = _trades_reference(tmp_path)
    app = f"hdi_restart_{uuid.uuid4().hex[:8]}"
    url = _with_app(private_cluster.url, app)
    open_store(url).migrate()
    result: dict = {}
    worker = threading.Thread(target=lambda: result.update(r=ingest(TRADES, start=T_START, end=T_END,
                                                                    symbols=FUTURES, store=url, batch_rows=20_000)))
    worker.start()
    try:
        pg = _Pg(private_cluster.url)
        try:
            _wait_for(lambda: pg.loading("public", "trades", app), 60, "a chunk to be loading", worker.is_alive)
        finally:
            pg.close()
        private_cluster.stop()
        time.sleep(2.5)
        private_cluster.start()
    finally:
        worker.join(180)
    report = result["r"]
    assert report.ok, [c.error for c in report.chunks]
    assert max(c.attempts for c in report.chunks) >= 2
    assert rows(url, "trades") == sum(reference.values()) and duplicate_keys(url, "trades") == 0
    chunks = open_store(url).chunks()
    assert set(chunks["status"]) == {"done"}
    assert dict(zip(chunks["chunk_id"], chunks["rows_loaded"], strict=True)) == reference
    again = ingest(TRADES, start=T_START, end=T_END, symbols=FUTURES, store=url)
    assert again.ok and again.count("skipped") == 3 and rows(url, "trades") == sum(reference.values())


# -- SIGKILL: `hdi ingest` as a process against `python -m hdi.testing.gateway`
@pytest.fixture
def gateway_process(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "hdi.testing.gateway", "--now", "2026-01-15T00:00:00Z",
                             "--state-dir", str(tmp_path / "gw")], stdout=subprocess.PIPE, text=True)
    try:
        info = json.loads(proc.stdout.readline())
        yield info
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)


def _downloads(gw: dict) -> int:
    import requests

    log = requests.get(f"{gw['url']}/_hdi/requests", verify=gw["ca_path"], timeout=10).json()
    return sum(r["path"].endswith("timeseries.get_range") for r in log)


def _hdi(env: dict[str, str], *args: str, wait: bool = True):
    cmd = [str(Path(sys.executable).parent / "hdi"), *args]
    if wait:
        return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["duckdb", pytest.param("timescale", marks=pytest.mark.timescale), "iceberg"])
def test_sigkill_mid_load_then_resume_gives_exactly_the_expected_rows(gateway_process, tmp_path, request, backend):
    env = {**os.environ, "REQUESTS_CA_BUNDLE": gateway_process["ca_path"], "SSL_CERT_FILE": gateway_process["ca_path"],
           "HDI_DATABENTO_GATEWAY": gateway_process["url"], "DATABENTO_API_KEY": TEST_KEY, "HDI_NO_PROGRESS": "1",
           "HDI_RETRY_BASE_DELAY": "0.01", "HDI_RETRY_MAX_DELAY": "0.05"}
    args = ("ingest", "--recipe", str(TRADES), "--start", T_START, "--end", T_END, "--symbols", FUTURES)
    ref_url = f"duckdb://{tmp_path / 'reference.duckdb'}"
    ref = _hdi({**env, "HDI_DATA_DIR": str(tmp_path / "reference")}, *args, "--store", ref_url)  # its own cache
    assert ref.returncode == 0, ref.stderr
    reference = dict(open_store(ref_url).chunks().select("chunk_id", "rows_loaded").iter_rows())
    open_store(ref_url).close()
    assert len(reference) == 3

    log = tmp_path / "ingest.log"
    if backend == "timescale":
        base = request.getfixturevalue("timescale_schema_url")
        app = f"hdi_kill_{uuid.uuid4().hex[:8]}"
        url = _with_app(base, app)
        pg = _Pg(base)
        schema = _schema_of(base)
        loading = lambda: pg.loading(schema, "trades", app)  # noqa: E731
    else:
        url = f"duckdb://{tmp_path / 'store.duckdb'}" if backend == "duckdb" else f"iceberg://{tmp_path / 'lake'}"
        # DuckDB cannot be watched from another process while a writer holds it: the log says when
        # the first batch of a chunk was written inside its (still open) transaction.
        loading = lambda: log.is_file() and "wrote trades:" in log.read_text()  # noqa: E731
    proc = _hdi(env, *args, "--store", url, "--log-file", str(log), wait=False)
    try:
        _wait_for(loading, 120, "a chunk to be loading", lambda: proc.poll() is None)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
        if backend == "timescale":
            pg.close()

    st = open_store(url)
    chunks = st.chunks()
    done = dict(chunks.filter(status="done").select("chunk_id", "rows_loaded").iter_rows())
    assert len(done) < 3  # the run was cut short
    # the ledger and the data agree: what is stored is exactly the chunks recorded done
    assert rows(url, "trades") == sum(reference[c] for c in done) and duplicate_keys(url, "trades") == 0
    assert done == {c: reference[c] for c in done}
    killed = st.runs(limit=1).row(0, named=True)
    assert killed["status"] == "running" and killed["finished_at"] is None
    st.close()

    cached = len(list((Path(env["HDI_DATA_DIR"]) / "raw").rglob("*.dbn.zst")))
    assert cached > len(done)  # the chunk being loaded was downloaded (and the next one prefetched)
    before = _downloads(gateway_process)
    again = _hdi(env, "ingest", "--resume", killed["run_id"], "--store", url)  # no --recipe needed
    assert again.returncode == 0, again.stderr
    assert _downloads(gateway_process) - before == 3 - cached  # nothing in the raw cache is downloaded again
    assert f"3 planned: {3 - len(done)} loaded, {len(done)} already done, 0 failed" in again.stderr
    st = open_store(url)
    assert rows(url, "trades") == sum(reference.values()) and duplicate_keys(url, "trades") == 0
    final = st.chunks()
    assert dict(final.select("chunk_id", "rows_loaded").iter_rows()) == reference
    assert set(final["status"]) == {"done"}
    run = st.runs(limit=1).row(0, named=True)
    assert (run["run_id"], run["status"], run["chunks_done"], run["chunks_skipped"]) == (
        killed["run_id"], "succeeded", 3 - len(done), len(done))
    st.close()
