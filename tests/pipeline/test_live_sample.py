"""Databento's mixed-schema live sample (LIVE/test_data.live.dbn.zst), read in place, both stores.

46 records: 20 in-stream SymbolMappingMsg (ESZ4 = instrument 183748, no metadata mappings), 9
statistics, 2 each of definitions (byte-identical), mbp-1, trades; metadata start at the epoch.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

import hdi
from hdi.errors import DecodeError
from hdi.pipeline import ingest
from hdi.source.files import open_dbn
from hdi.store import open_store

ROOT = Path(__file__).resolve().parents[2]
START, END = "2023-11-19", "2023-11-22"


@pytest.fixture
def live(samples_dir: Path) -> Path:
    return samples_dir / "LIVE" / "test_data.live.dbn.zst"


def _load(recipe: str, live: Path, store: str):
    r = ingest(ROOT / "recipes" / recipe, from_files=[live], store=store)
    assert r.ok, [c.error for c in r.chunks]
    return r


def test_the_in_stream_symbol_mappings_label_the_rows_esz4(live, any_store_url):
    _load("mbp1.yaml", live, any_store_url)
    rows = hdi.read_mbp1("ESZ4", START, END, store=any_store_url)
    assert rows.height == 2
    assert rows["symbol"].to_list() == ["ESZ4", "ESZ4"] and rows["instrument_id"].to_list() == [183748, 183748]
    assert rows["received_timestamp_utc"].dt.epoch("ns").to_list() == [1700510417922883941, 1700510495836184225]
    sym = open_store(any_store_url).symbology(["ESZ4"])
    assert sym.select("dataset", "stype_in", "symbol", "instrument_id", "start_date", "end_date").rows() == [
        ("GLBX.MDP3", "raw_symbol", "ESZ4", 183748, dt.date(2023, 11, 19), dt.date(2023, 11, 22))]


def test_status_shows_the_files_symbol_and_days_not_all_symbols_1970(live, any_store_url):
    _load("statistics.yaml", live, any_store_url)
    report = hdi.status(any_store_url)
    cov = report.coverage
    assert cov["symbol"].to_list() == ["ESZ4"] and cov["schema"].to_list() == ["statistics"]
    assert (cov["first_day"][0], cov["last_day"][0]) == (dt.date(2023, 11, 19), dt.date(2023, 11, 21))
    assert cov["days_missing"][0] == 0
    assert cov["days_with_data"][0] == 2 and cov["days_no_data"][0] == 1  # 9 statistics on Nov 20 and 21
    assert hdi.read_statistics("ESZ4", START, END, store=any_store_url, latest=False).height == 9


def test_each_record_goes_to_its_own_schemas_table_only(live, any_store_url):
    """mbp-1 and tbbo records are both MBP1Msg (rtype 0x01): a live file's are read once, as mbp-1."""
    r = _load("mbp1.yaml", live, any_store_url)
    assert r.rows_loaded == 2
    with pytest.raises(DecodeError) as e:
        ingest(ROOT / "recipes" / "tbbo.yaml", from_files=[live], store=any_store_url)
    assert e.value.message == (
        f"{live}: a mixed-schema (live) file cannot tell tbbo records from mbp-1 records (both are MBP1Msg, "
        "rtype 0x01); hdi reads them once, as mbp-1: use an mbp-1 recipe for this file")
    st = open_store(any_store_url)
    assert int(st.query("SELECT count(*) AS n FROM mbp1").item()) == 2
    assert not st.has_table("tbbo") or int(st.query("SELECT count(*) AS n FROM tbbo").item()) == 0
    t = _load("trades.yaml", live, any_store_url)
    assert t.rows_loaded == 2 and int(st.query("SELECT count(*) AS n FROM trades").item()) == 2


def test_byte_identical_repeated_definitions_are_one_record_not_a_failure(live, any_store_url):
    r = _load("definitions.yaml", live, any_store_url)
    (chunk,) = r.chunks
    assert (chunk.status, chunk.rows_fetched, chunk.rows_loaded, chunk.rows_quarantined) == ("done", 2, 1, 0)
    defs = hdi.read_definitions("ESZ4", START, END, store=any_store_url)
    assert defs["raw_symbol"].to_list() == ["ESZ4"] and defs["instrument_id"].to_list() == [183748]
    again = ingest(ROOT / "recipes" / "definitions.yaml", from_files=[live], store=any_store_url)
    assert again.ok and again.count("skipped") == 1


def test_open_dbn_completes_a_live_files_metadata_from_its_records(live):
    m = open_dbn(live, schema="trades").metadata
    assert (m.symbols, m.stype_in) == (["ESZ4"], "raw_symbol")
    assert (m.start, m.end) == (dt.datetime(2023, 11, 19, tzinfo=dt.UTC), dt.datetime(2023, 11, 22, tzinfo=dt.UTC))
    assert [(iv.symbol, iv.instrument_id, iv.start_date, iv.end_date) for iv in m.mappings] == [
        ("ESZ4", 183748, dt.date(2023, 11, 19), dt.date(2023, 11, 22))]
