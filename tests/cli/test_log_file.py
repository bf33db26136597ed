"""The ingest log file (issue 8, items 7 and 8): a log disk that fills up, or a ``--log-file`` that
takes no writes, is one warning line and the run goes on; a ``--log-file`` that cannot be opened is
one error line before anything is downloaded. ``hdi`` runs as a process, so that errors Python would
print at exit are seen too. Logging does not touch the store: these run on the embedded one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from hdi.testing.disks import MountUnavailable, full_tmpfs, tmpfs

ROOT = Path(__file__).resolve().parents[2]
RECIPE = ROOT / "recipes" / "ohlcv_1d.yaml"
RANGE = ("2024-11-01", "2024-12-01")


def _ingest(*more: object, span: tuple[str, str] = RANGE) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HDI_NO_PROGRESS": "1"}
    return subprocess.run([sys.executable, "-m", "hdi.cli", "ingest", "--recipe", str(RECIPE), "--start", span[0],
                           "--end", span[1], *[str(m) for m in more]], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=300)


def _rows() -> int:
    from hdi.store import close_all

    close_all()
    path = Path(os.environ["HDI_DATA_DIR"]) / "hdi.duckdb"
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute("SELECT count(*) FROM ohlcv").fetchone()[0]


def _problems(stderr: str) -> list[str]:
    """Lines that are errors, warnings or traceback parts."""
    return [line for line in stderr.splitlines()
            if line.startswith(("warning", "error", "Traceback", "---", "Exception ignored", "OSError", "  File"))]


@pytest.mark.parametrize(("free", "span"), [(0, RANGE), (4096, ("2024-01-01", "2025-01-01"))],
                         ids=["full", "fills-up"])
def test_a_log_disk_that_fills_up_is_one_warning_and_the_run_completes(gateway, tmp_path, monkeypatch, free, span):
    # The case: a year of daily bars (24 chunks) with a log disk filling up printed 22
    # logging tracebacks. With 4 KiB free, the first lines fit and the rest would not.
    try:
        with full_tmpfs(tmp_path / "logs", free=free) as logs:
            monkeypatch.setenv("HDI_LOG_DIR", str(logs))
            res = _ingest("-v", span=span)  # -v: INFO lines on the console too
            log = next(logs.glob("hdi-*.log"))
            assert _problems(res.stderr) == [f"warning: log file {log} cannot be written (No space left on "
                                             "device); the run goes on, the log stops here"], res.stderr
            written = log.read_text(errors="replace")
    except MountUnavailable as e:
        pytest.skip(str(e))
    assert res.returncode == 0
    assert "(incomplete: writing" in res.stderr  # the summary's log row says so
    assert _rows() > 0
    if free:  # what fitted is there: the first lines of the run
        assert 0 < len(written.encode()) <= 8192 and " INFO hdi." in written.splitlines()[0]


def test_a_log_file_that_takes_no_writes_is_one_warning(gateway):
    res = _ingest("--log-file", "/dev/full")  # opens fine, every write fails: the case
    assert _problems(res.stderr) == ["warning: log file /dev/full cannot be written (No space left on device); "
                                     "the run goes on, the log stops here"], res.stderr
    assert res.returncode == 0 and _rows() > 0


def test_a_log_file_that_cannot_be_opened_is_one_error_before_any_download(gateway, tmp_path):
    try:
        with tmpfs(tmp_path / "ro", readonly=True) as ro:
            res = _ingest("--log-file", ro / "hdi.log")
    except MountUnavailable as e:
        pytest.skip(str(e))
    assert res.stderr.splitlines() == [f"error: --log-file {ro / 'hdi.log'} cannot be written: Read-only file system"]
    assert res.returncode == 1
    assert gateway.requests == []  # nothing asked of Databento


def test_a_log_file_under_a_regular_file_is_one_error(gateway, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    res = _ingest("--log-file", blocker / "hdi.log")
    assert res.stderr.splitlines() == [f"error: --log-file {blocker / 'hdi.log'}: {blocker} is a file, not a folder"]
    assert res.returncode == 1 and gateway.requests == []


def test_a_log_file_onto_a_duckdb_database_is_refused(gateway, tmp_path):
    db = tmp_path / "other.duckdb"
    with duckdb.connect(str(db)) as con:
        con.execute("CREATE TABLE t AS SELECT 1 AS x")
    before = db.read_bytes()
    res = _ingest("--log-file", db)
    assert res.stderr.splitlines() == [f"error: --log-file {db} is a DuckDB database; hdi never writes into a "
                                       "database file: choose another file"]
    assert res.returncode == 1 and db.read_bytes() == before and gateway.requests == []
