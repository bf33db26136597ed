"""``hdi.status``: what a store holds, what is missing and what merely had no data, on both stores."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import polars as pl
import pytest

import hdi
from hdi._status_report import status
from hdi.pipeline import ingest
from hdi.store import open_store
from hdi.testing.recipes import sometimes_bad_recipe

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "ohlcv_1d.yaml"

# Daily bars where every bar whose volume is a multiple of 3 fails validation (low above high).
QUARANTINING = sometimes_bad_recipe()


def coverage(report, symbol: str, schema: str = "ohlcv-1d") -> dict:
    rows = report.coverage.filter((pl.col("symbol") == symbol) & (pl.col("schema") == schema))
    assert rows.height == 1
    return rows.row(0, named=True)


def test_a_skipped_day_is_missing_and_a_no_trade_day_is_no_data(gateway, any_store_url):
    gateway.add_no_trade_day("GLBX.MDP3", "CL.c.0", dt.date(2024, 3, 6))
    for start, end in (("2024-03-01", "2024-03-05"), ("2024-03-06", "2024-03-12")):  # 2024-03-05 skipped
        assert ingest(RECIPE, start=start, end=end, symbols="CL.c.0", store=any_store_url).ok
    cl = coverage(status(any_store_url), "CL.c.0")
    assert cl["missing"] == ["2024-03-05"]  # never fetched
    assert cl["no_data"] == ["2024-03-02", "2024-03-06", "2024-03-09"]  # Saturdays and the no-trade day
    # by the CME Globex energy calendar: the no-trade day is a trading day (flagged), Saturdays are closed
    assert (cl["calendar"], cl["flagged"], cl["closed"]) == (
        "CMEGlobex_CrudeAndRefined", ["2024-03-06"], ["2024-03-02", "2024-03-09"])
    assert (cl["days_flagged"], cl["days_closed"], cl["early_close"]) == (1, 2, [])
    assert (cl["first_day"], cl["last_day"]) == (dt.date(2024, 3, 1), dt.date(2024, 3, 11))
    assert (cl["days_with_data"], cl["days_no_data"], cl["days_missing"], cl["rows_fetched"]) == (7, 3, 1, 7)

    stored = status(any_store_url).symbols.row(0, named=True)
    assert {k: stored[k] for k in ("dataset", "table", "granularity", "symbol", "rows", "days")} == {
        "dataset": "GLBX.MDP3", "table": "ohlcv", "granularity": "1d", "symbol": "CL.c.0", "rows": 7, "days": 7}
    assert (stored["first"], stored["last"]) == (dt.datetime(2024, 3, 1, tzinfo=dt.UTC),
                                                 dt.datetime(2024, 3, 11, tzinfo=dt.UTC))

    # fetching the skipped day turns MISSING into data; the no-data days stay what they are
    assert ingest(RECIPE, start="2024-03-05", end="2024-03-06", symbols="CL.c.0", store=any_store_url).ok
    cl = coverage(status(any_store_url), "CL.c.0")
    assert cl["missing"] == [] and cl["no_data"] == ["2024-03-02", "2024-03-06", "2024-03-09"]
    assert cl["days_with_data"] == 8


def test_a_failed_chunk_is_missing_even_for_a_symbol_never_loaded(gateway, any_store_url, monkeypatch):
    monkeypatch.setenv("HDI_RETRY_ATTEMPTS", "1")
    gateway.faults.status("timeseries.get_range", 503, match={"dataset": "EQUS.MINI"})
    report = ingest(RECIPE, start="2024-03-01", end="2024-03-08", symbols="ES.c.0,SPY", store=any_store_url)
    assert [c.status for c in report.chunks] == ["done", "failed"]
    s = status(any_store_url)
    spy = coverage(s, "SPY")
    assert spy["missing"] == ["2024-03-01..2024-03-07"] and spy["days_missing"] == 7
    assert spy["no_data"] == [] and spy["rows_fetched"] == 0
    assert coverage(s, "ES.c.0")["missing"] == []
    failed = s.failed_chunks.row(0, named=True)
    assert (failed["dataset"], failed["symbols"], failed["run_id"]) == ("EQUS.MINI", "SPY", report.run_id)
    assert "HTTP 503" in failed["error"]
    assert s.runs.select("run_id", "status", "chunks_done", "chunks_failed").row(0) == (
        report.run_id, "failed", 1, 1)


def test_a_failed_chunk_whose_days_a_later_run_fetched_is_no_longer_listed(gateway, any_store_url, monkeypatch):
    monkeypatch.setenv("HDI_RETRY_ATTEMPTS", "1")
    gateway.faults.status("timeseries.get_range", 503)
    assert not ingest(RECIPE, start="2024-03-04", end="2024-03-06", symbols="CL.c.0", store=any_store_url).ok
    s = status(any_store_url)
    assert s.failed_chunks.height == 1 and coverage(s, "CL.c.0")["missing"] == ["2024-03-04..2024-03-05"]
    # a wider run (other chunk bounds, so another chunk id) fetches those days
    assert ingest(RECIPE, start="2024-03-01", end="2024-03-08", symbols="CL.c.0", store=any_store_url).ok
    s = status(any_store_url)
    assert s.failed_chunks.height == 0 and coverage(s, "CL.c.0")["missing"] == []
    assert open_store(any_store_url).chunks(status="failed").height == 1  # the ledger keeps its history


def test_quarantine_counts_rows_and_files_per_run_with_the_latest_file(gateway, any_store_url, tmp_path):
    recipe = tmp_path / "bad.yaml"
    recipe.write_text(QUARANTINING)
    a = ingest(recipe, start="2024-03-01", end="2024-03-15", store=any_store_url)
    b = ingest(recipe, start="2024-03-15", end="2024-04-01", store=any_store_url)
    assert a.ok and b.ok and a.rows_quarantined > 0 and b.rows_quarantined > 0
    q = status(any_store_url).quarantine
    assert q.select("run_id", "table", "files", "rows").rows() == [
        (b.run_id, "ohlcv", 1, b.rows_quarantined), (a.run_id, "ohlcv", 1, a.rows_quarantined)]  # newest first
    for run, path in q.select("run_id", "latest_path").iter_rows():
        assert Path(path).is_file() and f"run={run}" in path
        assert pl.read_parquet(path).height == (a if run == a.run_id else b).rows_quarantined
    stored = status(any_store_url).tables.filter(pl.col("table") == "ohlcv")["rows"][0]
    assert stored == a.rows_loaded + b.rows_loaded


def test_recent_runs_newest_first_with_their_outcome(gateway, any_store_url, monkeypatch):
    first = ingest(RECIPE, start="2024-03-01", end="2024-03-05", symbols="CL.c.0", store=any_store_url)
    again = ingest(RECIPE, start="2024-03-01", end="2024-03-05", symbols="CL.c.0", store=any_store_url)
    monkeypatch.setenv("HDI_RETRY_ATTEMPTS", "1")
    gateway.faults.status("timeseries.get_range", 500)
    broken = ingest(RECIPE, start="2024-03-05", end="2024-03-07", symbols="CL.c.0", store=any_store_url)
    runs = status(any_store_url).runs
    assert runs.select("run_id", "status", "chunks_done", "chunks_skipped", "chunks_failed", "rows_loaded").rows() == [
        (broken.run_id, "failed", 0, 0, 1, 0), (again.run_id, "succeeded", 0, 1, 0, 0),
        (first.run_id, "succeeded", 1, 0, 0, first.rows_loaded)]
    assert runs["error"][0].startswith("1 chunk(s) failed; first: GLBX.MDP3 ohlcv-1d CL.c.0 [2024-03-0")
    assert "): get_range failed after 1 attempt" in runs["error"][0]
    assert status(any_store_url, runs=1).runs["run_id"].to_list() == [broken.run_id]


def test_stored_rows_per_symbol_follow_the_roll_and_count_each_row_once(gateway, any_store_url):
    # two overlapping runs leave overlapping symbology intervals; CL.c.0 rolls CLZ4 -> CLF5 on 2024-11-18
    assert ingest(RECIPE, start="2024-11-01", end="2024-11-15", symbols="CL.c.0", store=any_store_url).ok
    assert ingest(RECIPE, start="2024-11-10", end="2024-11-26", symbols="CL.c.0", store=any_store_url).ok
    s = status(any_store_url)
    bars = hdi.read_bars("CL.c.0", "2024-11-01", "2024-11-26", store=any_store_url)
    assert bars["instrument_id"].n_unique() == 2
    row = s.symbols.row(0, named=True)
    assert s.symbols.height == 1 and (row["symbol"], row["rows"]) == ("CL.c.0", bars.height)
    assert row["rows"] == s.tables.filter(pl.col("table") == "ohlcv")["rows"][0]
    assert (row["first"], row["last"]) == (bars["bar_timestamp_utc"].min(), bars["bar_timestamp_utc"].max())


def test_rows_no_symbol_maps_are_shown_by_instrument_id(any_store_url, make_bars):
    st = open_store(any_store_url)
    st.write("ohlcv", make_bars([{"instrument_id": 424242, "bar_timestamp_utc": "2024-05-02"},
                                 {"instrument_id": 424242, "bar_timestamp_utc": "2024-05-03"}]))
    s = status(any_store_url)
    assert s.symbols.select("symbol", "rows", "days").rows() == [("424242", 2, 2)]
    assert s.coverage.height == 0  # nothing was fetched through hdi ingest


def test_status_of_an_empty_store_and_its_json_form(any_store_url):
    s = status(any_store_url)
    assert s.symbols.height == s.coverage.height == s.runs.height == s.failed_chunks.height == 0
    assert s.tables["rows"].sum() == 0
    d = json.loads(json.dumps(s.to_dict()))
    assert set(d) == {"store", "edition", "tables", "symbols", "coverage", "quarantine", "runs", "failed_chunks",
                      "over_budget", "conditions"}
    assert d["conditions"] == []
    assert d["edition"]["kind"] == open_store(any_store_url).kind
    # the public function, though this file imported the module hdi._status_report first
    assert hdi.status(any_store_url).store == s.store


@pytest.mark.timescale
def test_status_never_creates_tables_in_a_timescale_store(timescale_schema_url):
    s = status(timescale_schema_url)
    assert s.edition["timescaledb"] and s.edition["license"] in ("apache", "timescale")
    assert not open_store(timescale_schema_url).has_table("ingest_runs")


def test_5m_bars_built_from_1m_are_recorded_under_ohlcv_5m(gateway, any_store_url, monkeypatch):
    """The 5m recipe reads ohlcv-1m but stores 5m bars: coverage, the ledger and failed chunks say
    ohlcv-5m, and no 1m data is claimed."""
    m5 = ROOT / "recipes" / "ohlcv_5m.yaml"
    assert ingest(m5, start="2024-03-04", end="2024-03-06", symbols="CL.c.0", store=any_store_url).ok
    monkeypatch.setenv("HDI_RETRY_ATTEMPTS", "1")
    gateway.faults.status("timeseries.get_range", 503)
    assert not ingest(m5, start="2024-03-11", end="2024-03-12", symbols="CL.c.0", store=any_store_url).ok
    s = status(any_store_url)
    assert s.coverage["schema"].to_list() == ["ohlcv-5m"]
    cov = coverage(s, "CL.c.0", "ohlcv-5m")
    assert cov["days_with_data"] == 2 and cov["missing"] == ["2024-03-06..2024-03-11"]
    assert s.failed_chunks["schema"].to_list() == ["ohlcv-5m"]
    assert set(open_store(any_store_url).chunks()["schema"]) == {"ohlcv-5m"}
    assert s.symbols.select("table", "granularity").unique().rows() == [("ohlcv", "5m")]
