"""Readers and writers sharing one store: a notebook reading while an ingest writes, both stores.

The embedded DuckDB file is held by a process only for the duration of a read call or of one
chunk's write transaction; when another process holds it, the other side waits (bounded by
``HDI_LOCK_TIMEOUT``, with one line on stderr) instead of failing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import hdi
from hdi.errors import ConfigError, StoreError
from hdi.pipeline import ingest
from hdi.store.duckdb import parse_path

ROOT = Path(__file__).resolve().parents[2]
ALL = ["CL.c.0", "NG.c.0", "HO.c.0", "RB.c.0", "ES.c.0", "SPY"]
WINDOW = ("2024-03-01", "2024-03-20")

READER = textwrap.dedent("""
    import json, sys, time, traceback
    from pathlib import Path
    import hdi
    store, log, stop, ready = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4])
    symbols = ["CL.c.0", "NG.c.0", "HO.c.0", "RB.c.0", "ES.c.0", "SPY"]
    with log.open("w") as out:
        while True:
            last = stop.exists()
            t0 = time.perf_counter()
            try:
                n = hdi.read_bars(symbols, "2024-03-01", "2024-03-20", granularity="1h", store=store).height
                rec = {"ok": True, "rows": n}
            except BaseException as e:
                rec = {"ok": False, "error": f"{type(e).__name__}: {e}"}
            rec["t0"], rec["seconds"] = t0, time.perf_counter() - t0
            out.write(json.dumps(rec) + "\\n")
            out.flush()
            ready.touch()
            if last:
                break
            time.sleep(0.1)
""")


def _daily_recipe(tmp_path: Path) -> Path:
    """ohlcv_1h cut into one chunk per day and request: 15 days make 30 chunks."""
    text = (ROOT / "recipes" / "ohlcv_1h.yaml").read_text()
    assert "chunk: {period: month, max_symbols: 10}" in text
    path = tmp_path / "ohlcv_1h_daily.yaml"
    path.write_text(text.replace("chunk: {period: month, max_symbols: 10}", "chunk: {period: day, max_symbols: 10}"))
    return path


def _holds_nothing(path: Path) -> None:
    """Another process can open the DuckDB file read-write at once (no wait): nobody holds it."""
    code = f"import duckdb; duckdb.connect({str(path)!r}).close()"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr


def test_a_reader_polling_every_100ms_through_a_30_chunk_ingest_never_fails(gateway, any_store_url, tmp_path):
    recipe = _daily_recipe(tmp_path)
    first = ingest(recipe, start="2024-03-01", end="2024-03-04", store=any_store_url)  # what the notebook sees first
    assert first.ok and first.rows_loaded > 0
    expected = ingest(recipe, start="2024-03-04", end="2024-03-19", store=any_store_url, dry_run=True)
    assert len(expected.chunks) == 30
    if any_store_url.startswith("duckdb"):
        _holds_nothing(parse_path(any_store_url))  # after ingest() returns, the process holds no lock

    log, stop, ready = tmp_path / "reads.jsonl", tmp_path / "stop", tmp_path / "ready"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    reader = subprocess.Popen([sys.executable, "-c", READER, any_store_url, str(log), str(stop), str(ready)],
                              env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not ready.exists() and reader.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ready.exists(), reader.stderr.read() if reader.poll() is not None else "reader not ready"
        t_start = time.perf_counter()
        report = ingest(recipe, start="2024-03-04", end="2024-03-19", store=any_store_url)
        t_end = time.perf_counter()
        stop.touch()
        _, err = reader.communicate(timeout=120)
    finally:
        if reader.poll() is None:
            reader.kill()
    assert reader.returncode == 0, err
    assert report.ok, [c.error for c in report.chunks if c.error]
    assert report.count("done") == 30
    # exact: every record the source has for the 30 chunks, and nothing else
    assert report.rows_loaded == report.rows_fetched == sum(c.record_count for c in expected.chunks)
    total = hdi.read_bars(ALL, *WINDOW, granularity="1h", store=any_store_url)
    assert total.height == first.rows_loaded + report.rows_loaded

    reads = [json.loads(line) for line in log.read_text().splitlines()]
    failures = [r["error"] for r in reads if not r["ok"]]
    assert failures == []
    counts = [r["rows"] for r in reads]
    assert counts == sorted(counts)  # a read sees whole chunks only, never fewer rows than before
    assert counts[0] == first.rows_loaded and counts[-1] == total.height
    during = [r for r in reads if t_start <= r["t0"] and r["t0"] + r["seconds"] <= t_end]
    assert len(during) >= 5, (len(reads), t_end - t_start)
    # reads succeeded between chunks: some saw part of the ingest
    assert any(first.rows_loaded < r["rows"] < total.height for r in during), counts
    if any_store_url.startswith("duckdb"):
        _holds_nothing(parse_path(any_store_url))


HOLDER = textwrap.dedent("""
    import sys, time, duckdb
    from pathlib import Path
    con = duckdb.connect(sys.argv[1])
    Path(sys.argv[2]).touch()
    time.sleep(float(sys.argv[3]))
    con.close()
""")


@pytest.fixture
def loaded(gateway, tmp_path):
    url = f"duckdb://{tmp_path / 'store.duckdb'}"
    assert ingest(ROOT / "recipes" / "ohlcv_1d.yaml", start="2024-03-01", end="2024-04-01", store=url).ok
    return url


def _hold(url: str, tmp_path: Path, seconds: float) -> subprocess.Popen:
    """Another process holding the DuckDB file read-write for ``seconds``."""
    flag = tmp_path / "holding"
    p = subprocess.Popen([sys.executable, "-c", HOLDER, str(parse_path(url)), str(flag), str(seconds)])
    deadline = time.monotonic() + 60
    while not flag.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert flag.exists()
    return p


def test_a_read_waits_for_a_process_holding_the_file_and_says_so_once(loaded, tmp_path, monkeypatch, caplog):
    bars = hdi.read_bars(ALL, "2024-03-01", "2024-04-01", store=loaded)
    holder = _hold(loaded, tmp_path, 2.5)
    monkeypatch.setenv("HDI_LOCK_TIMEOUT", "60")
    t0 = time.perf_counter()
    with caplog.at_level("WARNING", logger="hdi.store.duckdb_share"):
        again = hdi.read_bars(ALL, "2024-03-01", "2024-04-01", store=loaded)
    waited = time.perf_counter() - t0
    holder.wait(timeout=60)
    assert again.equals(bars)
    assert waited >= 1.0
    notes = [r.getMessage() for r in caplog.records if r.name == "hdi.store.duckdb_share"]
    assert len(notes) == 1, notes
    path = parse_path(loaded)
    assert notes[0].startswith(f"DuckDB store {path} is in use by process {holder.pid} (")
    assert notes[0].endswith("; waiting for it (up to 60 s, HDI_LOCK_TIMEOUT)")


def test_a_read_gives_up_after_hdi_lock_timeout_with_one_line(loaded, tmp_path, monkeypatch, cli):
    holder = _hold(loaded, tmp_path, 30)
    try:
        monkeypatch.setenv("HDI_LOCK_TIMEOUT", "0.5")
        t0 = time.perf_counter()
        with pytest.raises(StoreError) as e:
            hdi.read_bars("CL.c.0", "2024-03-01", "2024-04-01", store=loaded)
        assert 0.5 <= time.perf_counter() - t0 < 10
        path = parse_path(loaded)
        exe = Path(os.path.realpath(sys.executable)).name
        assert e.value.message == (
            f"DuckDB store {path} is in use by process {holder.pid} ({exe}) and stayed so for 0.5 s; DuckDB lets "
            "one process write a file or several read it: wait for it to finish, or set HDI_LOCK_TIMEOUT (seconds) "
            "to wait longer")
        r = cli("query", "--schema", "ohlcv-1d", "--symbols", "CL.c.0", "--start", "2024-03-01", "--end",
                "2024-04-01", "--store", loaded)
        assert r.exit_code == 1
        assert r.stderr.splitlines()[-1].startswith(f"error: DuckDB store {path} is in use by process {holder.pid}")
    finally:
        holder.kill()
        holder.wait()


def test_an_ingest_waits_for_a_reader_holding_the_file(loaded, tmp_path, monkeypatch):
    reader = _hold(loaded, tmp_path, 1.5)
    monkeypatch.setenv("HDI_LOCK_TIMEOUT", "60")
    r = ingest(ROOT / "recipes" / "ohlcv_1d.yaml", start="2024-04-01", end="2024-05-01", store=loaded)
    reader.wait(timeout=60)
    assert r.ok and r.count("done") == 2 and r.rows_loaded > 0
    assert hdi.read_bars(ALL, "2024-04-01", "2024-05-01", store=loaded).height == r.rows_loaded
    _holds_nothing(parse_path(loaded))


def test_reads_in_this_process_leave_the_file_free_for_an_ingest_process(loaded, tmp_path):
    """A notebook never has to call hdi.close() before an `hdi ingest` in a terminal."""
    assert hdi.read_bars(ALL, "2024-03-01", "2024-04-01", store=loaded).height > 0
    assert hdi.status(loaded).tables.height > 0
    _holds_nothing(parse_path(loaded))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HDI_LOCK_TIMEOUT": "0"}
    r = subprocess.run([sys.executable, "-m", "hdi", "ingest", "--recipe", str(ROOT / "recipes" / "ohlcv_1d.yaml"),
                        "--start", "2024-04-01", "--end", "2024-05-01", "--store", loaded, "--no-progress"],
                       capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    assert hdi.read_bars("CL.c.0", "2024-04-01", "2024-05-01", store=loaded).height > 0


def test_a_bad_hdi_lock_timeout_is_one_line(loaded, monkeypatch):
    monkeypatch.setenv("HDI_LOCK_TIMEOUT", "soon")
    with pytest.raises(ConfigError) as e:
        hdi.read_bars("CL.c.0", "2024-03-01", "2024-04-01", store=loaded)
    assert e.value.message == "HDI_LOCK_TIMEOUT='soon' is not allowed; allowed: seconds from 0 to 86400"


def test_two_reading_processes_share_the_file(loaded, tmp_path):
    code = (f"import hdi; print(hdi.read_bars({ALL!r}, '2024-03-01', '2024-04-01', store={loaded!r}).height)")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HDI_LOCK_TIMEOUT": "60"}
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env)
             for _ in range(3)]
    outs = [p.communicate(timeout=120)[0] for p in procs]
    n = hdi.read_bars(ALL, "2024-03-01", "2024-04-01", store=loaded).height
    assert [int(o) for o in outs] == [n] * 3 and all(p.returncode == 0 for p in procs)
