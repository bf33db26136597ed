"""The run's retry pass (issue 15.4, PRD NFR2 under long outages).

Real client -> local gateway -> real stores (the backend is in the test id). An outage (by time, on
the gateway) longer than the per-call retries fails chunks in the chunk pass; the retry pass, after
its pause, loads them: the rows equal a clean run's, the run succeeds and the ledger says so. An
outage longer than every pass fails the run, and a re-run repairs it. A terminal error is not
retried. SIGINT during the pause exits 130 at once with the run recorded interrupted. Bad
``--retry-passes``/``--retry-pass-wait`` values are one-line errors.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hdi._report import Event
from hdi._tables import DATA_TABLES
from hdi.pipeline import ingest
from hdi.store import close_all, open_store

ROOT = Path(__file__).resolve().parents[2]
OHLCV = ROOT / "recipes" / "ohlcv_1d.yaml"
START, END = "2024-03-01", "2024-05-01"  # 4 chunks: GLBX March, GLBX April, EQUS March, EQUS April
GLBX, EQUS = {"dataset": "GLBX.MDP3"}, {"dataset": "EQUS.MINI"}
PAUSE = 1.0  # seconds: the retry pass's pause in these tests


@pytest.fixture(autouse=True)
def _short_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Per-call retries spent in ~0.05 s (the gateway fixture makes the backoff 0.01-0.05 s)."""
    monkeypatch.setenv("HDI_RETRY_ATTEMPTS", "3")


def clean_rows(tmp_path: Path, gateway) -> object:
    """The rows a run without any fault stores (its own store and raw cache; its requests are then
    cleared from the gateway's log)."""
    url = f"duckdb://{tmp_path / 'clean.duckdb'}"
    old = os.environ.get("HDI_CACHE_DIR")
    os.environ["HDI_CACHE_DIR"] = str(tmp_path / "clean-raw")
    try:
        r = ingest(OHLCV, start=START, end=END, store=url, retry_passes=0)
    finally:
        os.environ.pop("HDI_CACHE_DIR") if old is None else os.environ.__setitem__("HDI_CACHE_DIR", old)
    assert r.ok and r.rows_loaded > 0
    gateway.clear_requests()
    return stored(url)


def stored(url: str) -> object:
    key = list(DATA_TABLES["ohlcv"].key)
    return open_store(url).select("ohlcv").sort(key)


def ends_outage_during_the_pause(outage) -> object:
    """An ``on_event`` that, when the retry pass begins its pause, makes the outage end half-way
    through it (still an outage by time: the gateway stops failing at that instant)."""
    seen: list[Event] = []

    def on_event(e: Event) -> None:
        seen.append(e)
        if e.kind == "retry_pass":
            assert outage.active(time.time()), "the outage was over before the retry pass"
            outage.end = time.time() + PAUSE / 2

    on_event.seen = seen  # type: ignore[attr-defined]
    return on_event


def test_retry_pass_recovers_chunks_an_outage_failed(gateway, any_store_url, tmp_path):
    expected = clean_rows(tmp_path, gateway)
    outage = gateway.faults.outage("timeseries.get_range", seconds=600, match=GLBX)
    on_event = ends_outage_during_the_pause(outage)
    t0 = time.monotonic()
    r = ingest(OHLCV, start=START, end=END, store=any_store_url, retry_passes=2, retry_pass_wait=PAUSE,
               on_event=on_event)
    assert time.monotonic() - t0 >= PAUSE
    assert r.ok and not r.interrupted, [c.error for c in r.chunks]
    assert (r.retry_passes, r.retried, r.recovered) == (1, 2, 2)  # one pass was enough
    assert [(c.label.split()[0], c.status, c.retry_pass) for c in r.chunks] == [
        ("EQUS.MINI", "done", 0), ("EQUS.MINI", "done", 0), ("GLBX.MDP3", "done", 1), ("GLBX.MDP3", "done", 1)]
    assert [e.total for e in on_event.seen if e.kind == "retry_pass"] == [2]
    # the chunk pass met the outage on every per-call retry; the retry pass was served
    calls = [(x.params["dataset"], x.status) for x in gateway.calls("timeseries.get_range")]
    assert calls.count(("GLBX.MDP3", 503)) == 2 * 3 and calls.count(("GLBX.MDP3", 200)) == 2
    got = stored(any_store_url)
    assert got.height == expected.height and got.equals(expected)  # rows exactly a clean run's
    st = open_store(any_store_url)
    run = st.runs(limit=1).row(0, named=True)
    assert (run["run_id"], run["status"], run["chunks_done"], run["chunks_failed"]) == (r.run_id, "succeeded", 4, 0)
    assert run["error"] == (f"retry pass: 2 of 2 chunk(s) that failed transiently recovered (1 pass(es) after "
                            f"{PAUSE:g} s pauses)")
    ledger = {(x["dataset"], x["start_ts"].month): (x["status"], x["attempts"], x["run_id"])
              for x in st.chunks().iter_rows(named=True)}
    assert ledger[("GLBX.MDP3", 3)] == ledger[("GLBX.MDP3", 4)] == ("done", 2, r.run_id)  # pass 0 + retry pass
    assert ledger[("EQUS.MINI", 3)] == ("done", 1, r.run_id)


def test_retry_pass_with_worker_processes(gateway, any_store_url, tmp_path):
    if any_store_url.startswith("duckdb"):
        pytest.skip("a DuckDB file loads with one worker (tests/pipeline/test_workers.py)")
    expected = clean_rows(tmp_path, gateway)
    outage = gateway.faults.outage(["timeseries.get_range", "metadata.get_cost"], seconds=600, match=EQUS,
                                   kind="reset")
    r = ingest(OHLCV, start=START, end=END, store=any_store_url, workers=2, retry_passes=1, retry_pass_wait=PAUSE,
               on_event=ends_outage_during_the_pause(outage))
    assert r.ok and (r.retry_passes, r.retried, r.recovered) == (1, 2, 2), [c.error for c in r.chunks]
    assert sorted((c.label.split()[0], c.retry_pass) for c in r.chunks) == [
        ("EQUS.MINI", 1), ("EQUS.MINI", 1), ("GLBX.MDP3", 0), ("GLBX.MDP3", 0)]
    assert stored(any_store_url).equals(expected)
    assert open_store(any_store_url).runs(limit=1)["status"][0] == "succeeded"


def test_an_outage_longer_than_every_pass_fails_the_run_and_a_rerun_repairs_it(gateway, any_store_url, tmp_path):
    expected = clean_rows(tmp_path, gateway)
    gateway.faults.outage("timeseries.get_range", seconds=600, match=GLBX, kind="reset")
    r = ingest(OHLCV, start=START, end=END, store=any_store_url, retry_passes=2, retry_pass_wait=0.2)
    assert not r.ok and (r.retry_passes, r.retried, r.recovered, r.count("failed")) == (2, 2, 0, 2)
    assert {c.retry_pass for c in r.chunks if c.status == "failed"} == {2}
    assert all(c.transient and "connection" in (c.error or "") for c in r.chunks if c.status == "failed")
    assert len([x for x in gateway.calls("timeseries.get_range") if x.params["dataset"] == "GLBX.MDP3"]) == 3 * 2 * 3
    st = open_store(any_store_url)
    run = st.runs(limit=1).row(0, named=True)
    assert (run["status"], run["chunks_done"], run["chunks_failed"]) == ("failed", 2, 2)
    assert run["error"].startswith("2 chunk(s) failed; first: GLBX.MDP3 ohlcv-1d")
    assert run["error"].endswith("; retry pass: 0 of 2 chunk(s) that failed transiently recovered (2 pass(es) "
                                 "after 0.2 s pauses), 2 still failed")
    assert sorted(st.chunks()["status"]) == ["done", "done", "failed", "failed"]
    close_all()
    gateway.faults.clear()  # the outage ends; the next scheduled run repairs what is missing
    again = ingest(OHLCV, start=START, end=END, store=any_store_url, retry_passes=2, retry_pass_wait=0.2)
    assert again.ok and again.retry_passes == 0 and (again.count("done"), again.count("skipped")) == (2, 2)
    assert stored(any_store_url).equals(expected)
    assert set(open_store(any_store_url).chunks()["status"]) == {"done"}


def test_a_terminal_error_is_not_retried(gateway, any_store_url, tmp_path):
    gateway.faults.status("timeseries.get_range", 403, times=100, match=GLBX)  # terminal: 4xx
    outage = gateway.faults.outage("timeseries.get_range", seconds=600, match=EQUS, status=502)  # transient
    r = ingest(OHLCV, start=START, end=END, store=any_store_url, retry_passes=3, retry_pass_wait=PAUSE,
               on_event=ends_outage_during_the_pause(outage))
    assert not r.ok and (r.retry_passes, r.retried, r.recovered) == (1, 2, 2)
    failed = [c for c in r.chunks if c.status == "failed"]
    assert [(c.label.split()[0], c.transient, c.retry_pass) for c in failed] == [("GLBX.MDP3", False, 0)] * 2
    assert all("HTTP 403" in (c.error or "") for c in failed)
    glbx = [x.status for x in gateway.calls("timeseries.get_range") if x.params["dataset"] == "GLBX.MDP3"]
    assert glbx == [403, 403]  # one call per chunk: neither per-call retries nor the retry pass
    run = open_store(any_store_url).runs(limit=1).row(0, named=True)
    assert run["status"] == "failed" and "retry pass: 2 of 2 chunk(s) that failed transiently recovered" in run["error"]


@pytest.mark.slow
def test_sigint_during_the_retry_pause_exits_130_at_once(gateway, any_store_url, tmp_path):
    gateway.faults.outage("timeseries.get_range", seconds=600, match=GLBX)
    err = tmp_path / "run.stderr"
    env = {**os.environ, "HDI_NO_PROGRESS": "1", "PYTHONPATH": str(ROOT)}
    with open(err, "w") as f:
        proc = subprocess.Popen([str(Path(sys.executable).parent / "hdi"), "ingest", "--recipe", str(OHLCV),
                                 "--start", START, "--end", END, "--store", any_store_url, "--retry-passes", "2",
                                 "--retry-pass-wait", "300", "--log-file", str(tmp_path / "run.log")],
                                env=env, stdout=subprocess.DEVNULL, stderr=f)
    try:
        deadline = time.monotonic() + 120
        while "retry pass 1 of 2" not in err.read_text():
            assert proc.poll() is None, err.read_text()[-3000:]
            assert time.monotonic() < deadline, "no retry pass within 120 s"
            time.sleep(0.02)
        time.sleep(0.2)  # now in the 300 s pause
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        code = proc.wait(30)
        elapsed = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    stderr = err.read_text()
    assert code == 130 and elapsed < 2.0, (code, elapsed, stderr[-2000:])
    assert "retry pass 1 of 2: 2 chunk(s) failed transiently (every per-call retry spent); trying them again in " \
           "300 s" in stderr
    assert "Traceback" not in stderr and stderr.strip().splitlines()[-1].startswith("error: interrupted by SIGINT")
    run = open_store(any_store_url).runs(limit=1).row(0, named=True)
    assert (run["status"], run["chunks_done"], run["chunks_failed"]) == ("interrupted", 2, 2)
    assert run["error"].startswith("interrupted by SIGINT") and "retry pass: 0 of 2" in run["error"]
    assert run["finished_at"] is not None
    print(f"stop time during the retry pause {any_store_url.split(':')[0]}: {elapsed:.3f} s")


@pytest.mark.parametrize(("args", "env", "message"), [
    (["--retry-passes", "11"], {}, "--retry-passes 11 is not allowed; allowed: a whole number from 0 to 10"),
    (["--retry-passes", "-1"], {}, "--retry-passes -1 is not allowed; allowed: a whole number from 0 to 10"),
    (["--retry-pass-wait", "-1"], {}, "--retry-pass-wait -1 is not allowed; allowed: a number of seconds from 0 "
                                      "to 3600"),
    (["--retry-pass-wait", "nan"], {}, "--retry-pass-wait nan is not allowed; allowed: a number of seconds from 0 "
                                       "to 3600"),
    (["--retry-pass-wait", "4000"], {}, "--retry-pass-wait 4000 is not allowed; allowed: a number of seconds "
                                        "from 0 to 3600"),
    ([], {"HDI_RETRY_PASSES": "two"}, "HDI_RETRY_PASSES='two' is not allowed; allowed: a number from 0 to 10"),
    ([], {"HDI_RETRY_PASS_WAIT": "1e9"}, "HDI_RETRY_PASS_WAIT='1e9' is not allowed; allowed: a number from 0 to 3600"),
], ids=["passes-too-many", "passes-negative", "wait-negative", "wait-nan", "wait-too-long", "env-passes",
        "env-wait"])
def test_bad_retry_pass_options_are_one_line_errors(cli, gateway, tmp_path, monkeypatch, args, env, message):
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    store = tmp_path / "store.duckdb"
    res = cli("ingest", "--recipe", str(OHLCV), "--start", START, "--end", END, "--store", f"duckdb://{store}", *args)
    assert res.exit_code == 1, res.stderr
    assert res.stderr.strip() == f"error: {message}"
    assert not store.exists() and gateway.requests == []  # refused before any work
