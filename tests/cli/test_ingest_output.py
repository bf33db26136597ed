"""``hdi ingest`` output: a failed chunk's error is printed once, the chunk described once, with and
without progress bars; the ledger and ``hdi status`` keep the error without repeating the chunk."""

from __future__ import annotations

from pathlib import Path

import pytest

from hdi._status_report import status
from hdi.testing.recipes import sometimes_bad_recipe

ROOT = Path(__file__).resolve().parents[2]
RECIPE = ROOT / "recipes" / "ohlcv_1d.yaml"
SPY = "EQUS.MINI ohlcv-1d SPY [2024-03-01T00:00:00Z, 2024-03-05T00:00:00Z)"

# every bar whose volume is a multiple of 3 fails validation: far above the 1% the recipe allows
FAILING = sometimes_bad_recipe("mostly_bad", max_failure_rate=0.01, on_budget_exceeded="rollback")


@pytest.mark.parametrize("progress", ["--no-progress", "--progress"])
def test_a_failed_download_is_printed_once_with_the_chunk_described_once(gateway, cli, any_store_url, monkeypatch,
                                                                         tmp_path, progress):
    monkeypatch.setenv("HDI_RETRY_ATTEMPTS", "1")
    gateway.faults.status("timeseries.get_range", 503, match={"dataset": "EQUS.MINI"})
    r = cli("ingest", "--recipe", RECIPE, "--start", "2024-03-01", "--end", "2024-03-05", "--symbols", "CL.c.0,SPY",
            "--store", any_store_url, progress)
    assert r.exit_code == 1
    assert r.stderr.count("service_unavailable") == 1 and r.stderr.count(SPY) == 1
    line = next(x for x in r.stderr.splitlines() if "service_unavailable" in x)
    assert line.startswith(f"[2/2] failed {SPY}: get_range failed after 1 attempt: HTTP 503: service_unavailable")
    assert r.stderr.rstrip().endswith("error: 1 chunk(s) failed (each error is printed above); a re-run retries them")
    failed = status(any_store_url).failed_chunks.row(0, named=True)
    assert failed["error"].startswith("get_range failed after 1 attempt: HTTP 503")  # the row names the chunk
    logs = list((tmp_path / "data" / "logs").glob("hdi-*.log"))
    assert len(logs) == 1 and logs[0].read_text().count("service_unavailable") == 1  # the log file has it, once


def test_a_chunk_over_the_failure_rate_is_described_once(gateway, cli, any_store_url, tmp_path):
    recipe = tmp_path / "mostly_bad.yaml"
    recipe.write_text(FAILING)
    r = cli("ingest", "--recipe", recipe, "--store", any_store_url, "--no-progress")
    assert r.exit_code == 1
    desc = "GLBX.MDP3 ohlcv-1d CL.c.0,NG.c.0 [2024-03-01T00:00:00Z, 2024-04-01T00:00:00Z)"
    assert r.stderr.count("max_failure_rate") == 1 and r.stderr.count(desc) == 1
    # 50 daily bars: CME energy is closed all of Good Friday 2024-03-29 (the gateway follows the calendar)
    assert f"[1/1] failed {desc}: 18 of 50 rows (36.00%) failed validation" in r.stderr
    logs = list((tmp_path / "data" / "logs").glob("hdi-*.log"))
    assert len(logs) == 1 and logs[0].read_text().count("max_failure_rate") == 1  # the log file has it, once
