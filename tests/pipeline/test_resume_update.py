"""The ledger at work: re-runs, ``--resume RUN_ID`` and ``--update``, against the gateway and both stores."""

from __future__ import annotations

import datetime as dt
import os
import uuid
from pathlib import Path

import hdi
from hdi.pipeline import ingest
from hdi.store import open_store

ROOT = Path(__file__).resolve().parents[2]
RECIPE = ROOT / "recipes" / "ohlcv_1d.yaml"
GLBX_APRIL = {"dataset": "GLBX.MDP3", "start": "2024-04-01T00:00:00+00:00"}


def records(start: str, end: str, symbols: str) -> int:
    """What Databento says [start, end) holds for the symbols (a dry run on an empty store downloads nothing)."""
    empty = f"duckdb://{Path(os.environ['HDI_DATA_DIR']) / f'empty-{uuid.uuid4().hex}.duckdb'}"
    dry = ingest(RECIPE, start=start, end=end, symbols=symbols, store=empty, dry_run=True)
    assert {c.status for c in dry.chunks} == {"estimated"}
    return sum(c.record_count for c in dry.chunks)


def rows(url: str, table: str = "ohlcv") -> int:
    return int(open_store(url).query(f"SELECT count(*) AS n FROM {table}").item())


def distinct_bars(url: str) -> int:
    return int(open_store(url).query(
        "SELECT count(*) AS n FROM (SELECT DISTINCT dataset, instrument_id, granularity, bar_timestamp_utc, "
        "publisher_id FROM ohlcv) d").item())


def downloads(gateway) -> list[tuple[str, str, str, str]]:
    return [(c.params["dataset"], c.params["symbols"], c.params["start"][:16], c.params["end"][:16])
            for c in gateway.calls("timeseries.get_range")]


# ------------------------------------------------------------------------------------ re-runs
def test_a_new_store_on_the_same_raw_cache_downloads_nothing(gateway, tmp_path):
    a, b = f"duckdb://{tmp_path / 'a.duckdb'}", f"duckdb://{tmp_path / 'b.duckdb'}"
    first = ingest(RECIPE, start="2024-03-01", end="2024-05-01", store=a)
    fetched = len(downloads(gateway))
    assert first.ok and fetched == 4
    second = ingest(RECIPE, start="2024-03-01", end="2024-05-01", store=b)
    assert second.ok and second.count("done") == 4 and second.rows_loaded == first.rows_loaded
    assert len(downloads(gateway)) == fetched  # every chunk came from the raw cache
    assert second.cost_usd == 0.0  # and nothing was billed for it
    assert rows(b) == rows(a) == first.rows_loaded


def test_batches_never_split_records_that_share_a_nanosecond(gateway, tmp_path):
    """A chunk loaded in many small batches (as a retried or huge chunk is) stores exactly what one
    batch stores: same-nanosecond trades keep distinct ordinals across a batch boundary."""
    trades = ROOT / "recipes" / "trades.yaml"
    one, many = f"duckdb://{tmp_path / 'one.duckdb'}", f"duckdb://{tmp_path / 'many.duckdb'}"
    kw = {"start": "2024-12-02", "end": "2024-12-03", "symbols": "CL.c.0,ES.c.0,NG.c.0"}
    a = ingest(trades, store=one, **kw)
    b = ingest(trades, store=many, batch_rows=3_000, **kw)
    assert a.ok and b.ok and a.rows_fetched == b.rows_fetched == a.rows_loaded == b.rows_loaded
    assert b.rows_already_present == 0
    x = hdi.read_trades(kw["symbols"], kw["start"], kw["end"], store=one, prices="decimal")
    y = hdi.read_trades(kw["symbols"], kw["start"], kw["end"], store=many, prices="decimal")
    assert x.height == a.rows_loaded and x.equals(y)


# ------------------------------------------------------------------------------------ --resume
def test_resume_continues_a_run_with_its_own_recipe_range_and_symbols(gateway, any_store_url, cli, monkeypatch):
    expected = records("2024-03-01", "2024-05-01", "CL.c.0,SPY")
    monkeypatch.setenv("HDI_RETRY_ATTEMPTS", "2")
    gateway.faults.status("timeseries.get_range", 503, times=2, match=GLBX_APRIL)
    first = cli("ingest", "--recipe", RECIPE, "--start", "2024-03-01", "--end", "2024-05-01",
                "--symbols", "CL.c.0,SPY", "--store", any_store_url)
    assert first.exit_code == 1
    run_id = open_store(any_store_url).runs(limit=1)["run_id"][0]
    before = len(downloads(gateway))

    resumed = cli("ingest", "--resume", run_id, "--store", any_store_url)  # no --recipe, no range
    assert resumed.exit_code == 0, resumed.stderr
    assert "4 planned: 1 loaded, 3 already done, 0 failed" in resumed.stderr
    assert downloads(gateway)[before:] == [("GLBX.MDP3", "CL.c.0", "2024-04-01T00:00", "2024-05-01T00:00")]
    assert rows(any_store_url) == expected == distinct_bars(any_store_url)
    runs = open_store(any_store_url).runs()
    assert runs.height == 1  # the same run, continued
    assert runs.select("run_id", "status", "chunks_done", "chunks_skipped", "chunks_failed").row(0) == (
        run_id, "succeeded", 1, 3, 0)


def test_resume_of_an_unknown_run_says_where_to_look(gateway, any_store_url, cli):
    assert cli("ingest", "--recipe", RECIPE, "--start", "2024-03-01", "--end", "2024-03-05",
               "--store", any_store_url).exit_code == 0
    result = cli("ingest", "--resume", "20240101T000000Z-abcdef", "--store", any_store_url)
    assert result.exit_code == 1
    shown = open_store(any_store_url).display_url
    assert result.stderr.strip() == (f"error: --resume 20240101T000000Z-abcdef: no such run in {shown} "
                                     "(see `hdi status` for recent runs)")


# ------------------------------------------------------------------------------------ --update
def test_update_extends_every_symbol_from_its_own_end_to_the_available_end(gateway, any_store_url):
    url = any_store_url
    assert ingest(RECIPE, start="2025-11-01", end="2025-12-10", symbols="CL.c.0,ES.c.0", store=url).ok
    assert ingest(RECIPE, start="2025-11-01", end="2025-12-20", symbols="SPY", store=url).ok
    gateway.clear_requests()

    up = ingest(RECIPE, update=True, symbols="CL.c.0,ES.c.0,SPY", store=url)  # gateway now: 2026-01-15
    assert up.ok and up.count("done") == 4
    assert sorted(downloads(gateway)) == [
        ("EQUS.MINI", "SPY", "2025-12-20T00:00", "2026-01-01T00:00"),
        ("EQUS.MINI", "SPY", "2026-01-01T00:00", "2026-01-15T00:00"),
        ("GLBX.MDP3", "CL.c.0,ES.c.0", "2025-12-10T00:00", "2026-01-01T00:00"),
        ("GLBX.MDP3", "CL.c.0,ES.c.0", "2026-01-01T00:00", "2026-01-15T00:00")]
    assert rows(url) == records("2025-11-01", "2026-01-15", "CL.c.0,ES.c.0,SPY") == distinct_bars(url)

    gateway.api.now = dt.datetime(2026, 1, 20, 12, 34, tzinfo=dt.UTC)  # the clock moves on, mid-day
    gateway.clear_requests()
    assert ingest(RECIPE, update=True, symbols="CL.c.0,ES.c.0,SPY", store=url).ok
    # daily bars: the update stops at the last complete day, never storing a bar whose day is open
    assert sorted(downloads(gateway)) == [("EQUS.MINI", "SPY", "2026-01-15T00:00", "2026-01-20T00:00"),
                                          ("GLBX.MDP3", "CL.c.0,ES.c.0", "2026-01-15T00:00", "2026-01-20T00:00")]

    gateway.api.now = dt.datetime(2026, 1, 22, tzinfo=dt.UTC)
    gateway.clear_requests()
    assert ingest(RECIPE, update=True, symbols="CL.c.0,ES.c.0,SPY", store=url).ok
    # it goes on from there, nothing twice
    assert sorted(downloads(gateway)) == [("EQUS.MINI", "SPY", "2026-01-20T00:00", "2026-01-22T00:00"),
                                          ("GLBX.MDP3", "CL.c.0,ES.c.0", "2026-01-20T00:00", "2026-01-22T00:00")]
    assert rows(url) == records("2025-11-01", "2026-01-22", "CL.c.0,ES.c.0,SPY") == distinct_bars(url)

    gateway.clear_requests()
    idle = ingest(RECIPE, update=True, symbols="CL.c.0,ES.c.0,SPY", store=url)
    assert idle.ok and idle.chunks == [] and downloads(gateway) == []  # up to date: nothing to do


def test_update_of_a_symbol_never_loaded_starts_at_the_given_start(gateway, any_store_url, cli):
    up = cli("ingest", "--recipe", RECIPE, "--update", "--start", "2025-12-01", "--symbols", "NG.c.0",
             "--store", any_store_url)
    assert up.exit_code == 0, up.stderr
    assert "2 planned: 2 loaded, 0 already done, 0 failed" in up.stderr
    assert sorted(downloads(gateway)) == [("GLBX.MDP3", "NG.c.0", "2025-12-01T00:00", "2026-01-01T00:00"),
                                          ("GLBX.MDP3", "NG.c.0", "2026-01-01T00:00", "2026-01-15T00:00")]
    assert rows(any_store_url) == records("2025-12-01", "2026-01-15", "NG.c.0")


def test_update_retries_a_failed_chunk_of_an_earlier_update(gateway, any_store_url, monkeypatch):
    url = any_store_url
    assert ingest(RECIPE, start="2025-10-01", end="2025-11-01", symbols="CL.c.0", store=url).ok
    monkeypatch.setenv("HDI_RETRY_ATTEMPTS", "2")
    gateway.faults.status("timeseries.get_range", 500, times=2, match={"start": "2025-11-01T00:00:00+00:00"})
    first = ingest(RECIPE, update=True, symbols="CL.c.0", store=url)
    assert not first.ok and [c.status for c in first.chunks] == ["failed", "done", "done"]  # Nov failed, Dec, Jan done
    gateway.clear_requests()

    second = ingest(RECIPE, update=True, symbols="CL.c.0", store=url)
    assert second.ok and [c.status for c in second.chunks] == ["skipped", "skipped", "done"]
    assert downloads(gateway) == [("GLBX.MDP3", "CL.c.0", "2025-11-01T00:00", "2025-12-01T00:00")]
    assert rows(url) == records("2025-10-01", "2026-01-15", "CL.c.0") == distinct_bars(url)


def test_resume_of_an_update_run_repeats_its_ranges_even_after_the_clock_moved(gateway, any_store_url, monkeypatch):
    url = any_store_url
    assert ingest(RECIPE, start="2025-11-01", end="2025-12-01", symbols="ES.c.0", store=url).ok
    monkeypatch.setenv("HDI_RETRY_ATTEMPTS", "1")
    gateway.faults.status("timeseries.get_range", 502, match={"start": "2026-01-01T00:00:00+00:00"})
    first = ingest(RECIPE, update=True, symbols="ES.c.0", store=url)
    assert [c.status for c in first.chunks] == ["done", "failed"]
    gateway.api.now = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    resumed = ingest(resume=first.run_id, store=url)
    assert resumed.ok and [c.label for c in resumed.chunks] == [c.label for c in first.chunks]
    assert [c.status for c in resumed.chunks] == ["skipped", "done"]
    assert rows(url) == records("2025-11-01", "2026-01-15", "ES.c.0") == distinct_bars(url)


def test_update_follows_its_own_recipe_not_another_reading_the_same_schema(gateway, tmp_path):
    """ohlcv_1m and ohlcv_5m both read ohlcv-1m: the 5m update is not fooled by the 1m ledger, and
    reuses the 1m recipe's raw downloads."""
    url = f"duckdb://{tmp_path / 's.duckdb'}"
    m1, m5 = ROOT / "recipes" / "ohlcv_1m.yaml", ROOT / "recipes" / "ohlcv_5m.yaml"
    assert ingest(m1, start="2026-01-13", end="2026-01-15", symbols="CL.c.0", store=url).ok
    fetched = len(downloads(gateway))
    up = ingest(m5, update=True, start="2026-01-13", symbols="CL.c.0", store=url)
    assert up.ok and up.count("done") == 1 and len(downloads(gateway)) == fetched  # from the raw cache
    bars = hdi.read_bars("CL.c.0", "2026-01-13", "2026-01-15", granularity="5m", store=url)
    assert bars.height == up.rows_loaded > 0
    assert set(bars["bar_timestamp_utc"].dt.date()) == {dt.date(2026, 1, 13), dt.date(2026, 1, 14)}
    # and now the 1m recipe's update continues from its own end
    gateway.clear_requests()
    again = ingest(m1, update=True, symbols="CL.c.0", store=url)
    assert again.ok and again.chunks == [] and downloads(gateway) == []


def test_update_of_resampled_bars_stops_at_the_last_complete_interval(gateway, tmp_path):
    """With the clock at 12:37 a 5m update ends at 12:35: the 12:35 bar, still open, is not stored
    (on_conflict: ignore would otherwise keep that partial bar for good)."""
    url = f"duckdb://{tmp_path}/s.duckdb"
    gateway.api.now = dt.datetime(2026, 1, 14, 12, 37, tzinfo=dt.UTC)
    up = ingest(ROOT / "recipes" / "ohlcv_5m.yaml", update=True, start="2026-01-14", symbols="CL.c.0", store=url)
    assert up.ok
    assert downloads(gateway) == [("GLBX.MDP3", "CL.c.0", "2026-01-14T00:00", "2026-01-14T12:35")]
    bars = hdi.read_bars("CL.c.0", "2026-01-14", "2026-01-15", granularity="5m", store=url)
    assert bars["bar_timestamp_utc"].max() == dt.datetime(2026, 1, 14, 12, 30, tzinfo=dt.UTC)
