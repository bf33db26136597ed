"""``hdi status``: readable sections that fit an 80-100 column terminal, and the full JSON form."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from hdi.store import open_store
from hdi.store.ledger import RunRecord

ROOT = Path(__file__).resolve().parents[2]
RECIPE = ROOT / "recipes" / "ohlcv_1d.yaml"


@pytest.fixture
def store_with_gaps(gateway, cli, any_store_url, monkeypatch):
    """CL.c.0 and SPY daily bars, 2024-03-01..2024-03-11: 2024-03-05 never fetched, 2024-03-06 a
    no-trade day for CL.c.0, and a later SPY chunk that failed."""
    gateway.add_no_trade_day("GLBX.MDP3", "CL.c.0", dt.date(2024, 3, 6))
    for start, end in (("2024-03-01", "2024-03-05"), ("2024-03-06", "2024-03-12")):
        r = cli("ingest", "--recipe", RECIPE, "--start", start, "--end", end, "--symbols", "CL.c.0,SPY",
                "--store", any_store_url)
        assert r.exit_code == 0, r.stderr
    monkeypatch.setenv("HDI_RETRY_ATTEMPTS", "1")
    gateway.faults.status("timeseries.get_range", 502, match={"dataset": "EQUS.MINI"})
    r = cli("ingest", "--recipe", RECIPE, "--start", "2024-03-12", "--end", "2024-03-14", "--symbols", "SPY",
            "--store", any_store_url)
    assert r.exit_code == 1
    return any_store_url


def test_status_table_fits_100_columns_and_tells_missing_from_no_data(cli, store_with_gaps):
    result = cli("status", "--store", store_with_gaps)
    assert result.exit_code == 0, result.stderr
    text = result.stdout
    lines = text.splitlines()
    shown = open_store(store_with_gaps).display_url
    assert lines[:2] == [f"Store  {'DuckDB, embedded' if shown.startswith('duckdb') else lines[0][7:]}", f"  {shown}"]
    assert max(len(line) for line in lines if shown not in line) <= 100  # a URL is never cut
    runs = open_store(store_with_gaps).runs()
    cov = lines.index("Coverage  (MISSING = never fetched; FLAGGED = trading day, no data; closed = market closed)")
    cl = next(i for i, line in enumerate(lines) if i > cov and "ohlcv-1d  CL.c.0" in line)
    assert lines[cl].split() == ["GLBX.MDP3", "ohlcv-1d", "CL.c.0", "2024-03-01..2024-03-11", "7", "with", "data,",
                                 "1", "FLAGGED,", "2", "closed,", "1", "MISSING"]
    assert lines[cl + 1].split() == ["MISSING", "2024-03-05"]
    # the no-trade day is a CME trading day: flagged; the Saturdays are closed (the Sundays have data:
    # Monday's session opens on Sunday evening)
    assert lines[cl + 2].split() == ["FLAGGED", "2024-03-06"]
    assert lines[cl + 3].split() == ["closed", "2024-03-02,", "2024-03-09"]
    spy = next(i for i, line in enumerate(lines) if i > cov and "ohlcv-1d  SPY" in line)
    assert lines[spy + 1].split() == ["MISSING", "2024-03-05,", "2024-03-12..2024-03-13"]  # skipped; failed
    stored = lines[lines.index("Stored rows per symbol") + 2]
    assert stored.split()[:5] == ["EQUS.MINI", "ohlcv", "1d", "SPY", "6"]
    assert f"{runs['run_id'][0]}  ohlcv_1d  failed" in text  # newest first, with its outcome
    assert "Failed chunks  (a re-run, or `hdi ingest --resume RUN_ID`, retries them)" in text
    assert "EQUS.MINI ohlcv-1d SPY [2024-03-12 00:00:00, 2024-03-14 00:00:00)" in text
    assert "HTTP 502: bad_gateway" in text
    assert "Quarantine  (rows that failed validation)\n  none" in text


def test_status_json_has_every_section_and_every_day(cli, store_with_gaps):
    result = cli("status", "--store", store_with_gaps, "--format", "json")
    assert result.exit_code == 0, result.stderr
    d = json.loads(result.stdout)
    cov = {(c["schema"], c["symbol"]): c for c in d["coverage"]}
    assert cov[("ohlcv-1d", "CL.c.0")]["missing"] == ["2024-03-05"]
    assert cov[("ohlcv-1d", "CL.c.0")]["no_data"] == ["2024-03-02", "2024-03-06", "2024-03-09"]
    assert cov[("ohlcv-1d", "CL.c.0")]["flagged"] == ["2024-03-06"]
    assert cov[("ohlcv-1d", "CL.c.0")]["closed"] == ["2024-03-02", "2024-03-09"]
    assert cov[("ohlcv-1d", "CL.c.0")]["calendar"] == "CMEGlobex_CrudeAndRefined"
    assert cov[("ohlcv-1d", "SPY")]["calendar"] == "NYSE"
    assert cov[("ohlcv-1d", "SPY")]["missing"] == ["2024-03-05", "2024-03-12..2024-03-13"]
    assert {s["symbol"]: s["rows"] for s in d["symbols"]} == {"CL.c.0": 7, "SPY": 6}
    assert {s["symbol"]: s["first"] for s in d["symbols"]} == {"CL.c.0": "2024-03-01T00:00:00.000000000+00:00",
                                                            "SPY": "2024-03-01T00:00:00.000000000+00:00"}
    assert [r["status"] for r in d["runs"]] == ["failed", "succeeded", "succeeded"]
    assert [(f["dataset"], f["symbols"]) for f in d["failed_chunks"]] == [("EQUS.MINI", "SPY")]
    assert d["quarantine"] == [] and d["edition"]["kind"] in ("duckdb", "timescale", "iceberg")
    assert "***" in d["store"] or d["store"].startswith(("duckdb://", "iceberg://"))  # never a password


def test_an_unfinished_run_is_flagged_with_how_to_finish_it(cli, any_store_url):
    st = open_store(any_store_url)
    st.migrate()
    st.save_run(RunRecord(run_id="20260101T000000Z-dead00", recipe="ohlcv_1d", recipe_hash="x",
                          command="hdi ingest", chunks_total=4))
    result = cli("status", "--store", any_store_url)
    assert result.exit_code == 0
    assert "20260101T000000Z-dead00  ohlcv_1d  running*" in result.stdout
    assert "`hdi ingest --resume RUN_ID`" in result.stdout


def test_status_of_an_empty_store_says_so(cli, tmp_path):
    result = cli("status", "--store", f"duckdb://{tmp_path / 'none.duckdb'}")
    assert result.exit_code == 0
    assert "  nothing stored yet" in result.stdout and "  no ingest recorded yet" in result.stdout
    assert not (tmp_path / "none.duckdb").exists()  # a status writes nothing


def test_status_rejects_an_unknown_format(cli, tmp_path):
    result = cli("status", "--store", f"duckdb://{tmp_path / 's.duckdb'}", "--format", "xml")
    assert result.exit_code == 1
    assert result.stderr.strip() == "error: --format 'xml' is not allowed; allowed: table, json"


def test_times_are_shown_to_the_second_and_to_the_nanosecond_in_json(cli, any_store_url, make_trades, make_symbology):
    ns = [1_704_201_000_123_456_789, 1_704_201_059_987_654_321]  # 2024-01-02 13:10:00.123456789, 13:10:59.98...
    st = open_store(any_store_url)
    st.write("trades", make_trades([{"ts_recv_ns": n} for n in ns]),
             symbology=make_symbology([("ESH4", 1, "2024-01-02", "2024-01-03")]))
    st.save_run(RunRecord(run_id="20240102T131000Z-abc123", recipe="trades", recipe_hash="x", command="hdi ingest",
                          started_at=dt.datetime(2024, 1, 2, 13, 10, 7, 250_000, tzinfo=dt.UTC)))
    text = cli("status", "--store", any_store_url).stdout
    assert "  trades     2  2024-01-02 13:10:00  2024-01-02 13:10:59" in text  # Tables
    assert "ESH4       2     1  2024-01-02 13:10:00  2024-01-02 13:10:59" in text  # Stored rows per symbol
    assert "20240102T131000Z-abc123  trades  running*  2024-01-02 13:10:07" in text
    d = json.loads(cli("status", "--store", any_store_url, "--format", "json").stdout)
    assert [(t["first"], t["last"]) for t in d["tables"] if t["table"] == "trades"] == [
        ("2024-01-02T13:10:00.123456789+00:00", "2024-01-02T13:10:59.987654321+00:00")]
    assert (d["symbols"][0]["first"], d["symbols"][0]["last"]) == ("2024-01-02T13:10:00.123456789+00:00",
                                                                  "2024-01-02T13:10:59.987654321+00:00")
    assert d["runs"][0]["started_at"] == "2024-01-02T13:10:07.250000000+00:00"
