"""DatabentoSource against the test gateway: the raw cache, estimates, symbology, keys and logs."""

from __future__ import annotations

import json
import logging
from datetime import UTC, date, datetime
from pathlib import Path

import databento
import polars as pl
import pytest

from hdi.errors import ConfigError, SourceError
from hdi.source.chunks import Request
from hdi.source.databento import DatabentoSource, Estimate, RetryPolicy

KEY = "db-test-0123456789abcdefABCDEF"
REQ = Request("GLBX.MDP3", "ohlcv-1m", "continuous", ("CL.c.0", "ES.c.0"), datetime(2025, 3, 3, tzinfo=UTC),
              datetime(2025, 3, 5, tzinfo=UTC))
TRADES = Request("GLBX.MDP3", "trades", "continuous", ("CL.c.0",), datetime(2025, 3, 4, 13, tzinfo=UTC),
                 datetime(2025, 3, 4, 16, tzinfo=UTC))


def files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) if root.exists() else []


def direct(source: DatabentoSource, req: Request):
    """The same request straight through the client, for comparison."""
    return source.client.timeseries.get_range(dataset=req.dataset, schema=req.schema, stype_in=req.stype_in,
                                              symbols=list(req.symbols), start=req.start, end=req.end)


def test_fetch_caches_and_a_hit_makes_no_http_call(source, gateway):
    path = source.fetch(REQ)
    assert path == source.cache.root / "GLBX.MDP3" / "ohlcv-1m" / f"{REQ.key}.dbn.zst"
    assert files(source.cache.root) == [f"GLBX.MDP3/ohlcv-1m/{REQ.key}.dbn.zst", f"GLBX.MDP3/ohlcv-1m/{REQ.key}.json"]
    stored = databento.DBNStore.from_file(path).to_ndarray()
    assert stored.tobytes() == direct(source, REQ).to_ndarray().tobytes()
    side = json.loads((path.parent / f"{REQ.key}.json").read_text())
    assert (side["symbols"], side["start"], side["end"], side["records"]) == (
        ["CL.c.0", "ES.c.0"], "2025-03-03T00:00:00Z", "2025-03-05T00:00:00Z", len(stored))
    before = len(gateway.requests)
    again = DatabentoSource().fetch(REQ)
    assert again == path and len(gateway.requests) == before


def test_refresh_downloads_again_and_replaces_the_file(source, gateway):
    path = source.fetch(TRADES)
    first = path.stat().st_mtime_ns
    assert source.fetch(TRADES, refresh=True) == path
    assert len(gateway.calls("timeseries.get_range")) == 2 and path.stat().st_mtime_ns >= first
    assert files(source.cache.root) == [f"GLBX.MDP3/trades/{TRADES.key}.dbn.zst", f"GLBX.MDP3/trades/{TRADES.key}.json"]


@pytest.mark.parametrize("fault", ["status", "drop", "truncate"])
def test_a_failed_download_leaves_nothing_in_the_cache(source, gateway, fault):
    {"status": lambda: gateway.faults.status("timeseries.get_range", 500, times=10),
     "drop": lambda: gateway.faults.drop("timeseries.get_range", times=10),
     "truncate": lambda: gateway.faults.truncate(times=10)}[fault]()
    with pytest.raises(SourceError) as info:
        source.fetch(TRADES)
    assert len(gateway.calls("timeseries.get_range")) == 4
    assert info.value.transient is True
    assert files(source.cache.root) == []
    assert source.cache.get(TRADES) is None
    if fault == "truncate":
        assert "DBN file is truncated" in str(info.value) and "ends in the middle of a record" in str(info.value)
    if fault == "drop":
        assert "connection dropped mid-stream" in str(info.value) and "IncompleteRead" in str(info.value)


@pytest.mark.parametrize("fault", ["drop", "truncate", "status"])
def test_one_bad_download_is_retried_into_a_complete_file(source, gateway, fault):
    {"status": lambda: gateway.faults.status("timeseries.get_range", 503),
     "drop": lambda: gateway.faults.drop("timeseries.get_range"),
     "truncate": lambda: gateway.faults.truncate()}[fault]()
    path = source.fetch(TRADES)
    assert len(gateway.calls("timeseries.get_range")) == 2
    assert databento.DBNStore.from_file(path).to_ndarray().tobytes() == direct(source, TRADES).to_ndarray().tobytes()
    assert files(source.cache.root) == [f"GLBX.MDP3/trades/{TRADES.key}.dbn.zst", f"GLBX.MDP3/trades/{TRADES.key}.json"]


def test_a_422_fails_at_once_and_leaves_nothing(source, gateway):
    bad = Request("GLBX.MDP3", "trades", "raw_symbol", ("ZZZ9",), TRADES.start, TRADES.end)
    with pytest.raises(SourceError) as info:
        source.fetch(bad)
    assert str(info.value).startswith(f"get_range {bad.describe()} failed after 1 attempt: HTTP 422: "
                                      "symbology_invalid_request: None of the symbols could be resolved: ZZZ9")
    assert info.value.transient is False and files(source.cache.root) == []


def test_estimate_matches_the_gateway_and_the_data(source, gateway):
    est = source.estimate(REQ)
    n = len(databento.DBNStore.from_file(source.fetch(REQ)).to_ndarray())
    assert est == Estimate(record_count=n, billable_bytes=n * 56, cost_usd=pytest.approx(n * 56 * 1.5 / 1e9))
    kw = {"dataset": REQ.dataset, "schema": REQ.schema, "stype_in": REQ.stype_in, "symbols": list(REQ.symbols),
          "start": REQ.start, "end": REQ.end}
    assert est.cost_usd == source.client.metadata.get_cost(**kw)
    assert est.billable_bytes == source.client.metadata.get_billable_size(**kw)


def test_resolve_returns_symbology_rows_equal_to_the_file_mappings(source):
    df = source.resolve("GLBX.MDP3", ["CL.c.0", "ES.c.0"], "continuous", date(2024, 11, 1), date(2024, 12, 1))
    assert df.schema == {"dataset": pl.String, "stype_in": pl.String, "symbol": pl.String,
                         "instrument_id": pl.Int64, "start_date": pl.Date, "end_date": pl.Date, "source": pl.String}
    req = Request("GLBX.MDP3", "ohlcv-1d", "continuous", ("CL.c.0", "ES.c.0"), datetime(2024, 11, 1),
                  datetime(2024, 12, 1))
    mappings = databento.DBNStore.from_file(source.fetch(req)).mappings
    from_file = [(s, int(iv["symbol"]), iv["start_date"], iv["end_date"]) for s, ivs in mappings.items() for iv in ivs]
    assert sorted(df.select("symbol", "instrument_id", "start_date", "end_date").rows()) == sorted(from_file)
    assert len(from_file) == 11
    assert set(df["dataset"]) == {"GLBX.MDP3"} and set(df["source"]) == {"resolve"}
    cl = df.filter(pl.col("symbol") == "CL.c.0")
    assert cl["instrument_id"].n_unique() == 2 and cl["end_date"].max() == date(2024, 11, 30)


def test_dataset_range_and_schemas(source):
    assert source.dataset_range("GLBX.MDP3") == (datetime(2010, 6, 6, tzinfo=UTC), datetime(2026, 1, 15, tzinfo=UTC))
    assert source.list_schemas("EQUS.MINI") == ["ohlcv-1s", "ohlcv-1m", "ohlcv-1h", "ohlcv-1d", "trades", "tbbo",
                                                "mbp-1", "definition", "bbo-1s", "bbo-1m", "cbbo-1s", "cbbo-1m"]
    assert source.list_datasets() == ["EQUS.MINI", "GLBX.MDP3", "XNAS.ITCH"]


def test_missing_key_is_a_config_error_at_construction(gateway, monkeypatch):
    monkeypatch.delenv("DATABENTO_API_KEY")
    with pytest.raises(ConfigError) as info:
        DatabentoSource()
    assert str(info.value) == ("DATABENTO_API_KEY is not set: export DATABENTO_API_KEY=db-... with a key from "
                               "https://databento.com/portal/keys (or ingest files on disk with --from-file)")


def test_gateway_env_wins_over_the_argument(gateway):
    assert DatabentoSource(gateway="https://hist.databento.com").gateway == gateway.url


def test_the_api_key_is_in_no_log_record_and_no_file(gateway, monkeypatch, caplog, tmp_path):
    caplog.set_level(logging.DEBUG)
    src = DatabentoSource(retry=RetryPolicy(attempts=2, base_delay=0.01))
    gateway.faults.status("timeseries.get_range", 503)
    gateway.faults.drop("timeseries.get_range")
    gateway.faults.truncate()
    gateway.faults.status("metadata.get_cost", 429, retry_after=0.01)
    for req in (REQ, TRADES):
        try:
            src.fetch(req)
        except SourceError:
            pass
    src.fetch(REQ)
    src.estimate(TRADES)
    monkeypatch.setenv("DATABENTO_API_KEY", "db-bad-" + KEY)
    with pytest.raises(SourceError) as info:
        DatabentoSource().fetch(Request("GLBX.MDP3", "ohlcv-1d", "continuous", ("NG.c.0",), datetime(2025, 1, 1),
                                        datetime(2025, 2, 1)))
    texts = [r.getMessage() for r in caplog.records] + [str(info.value), repr(src)]
    assert any("retry" in t for t in texts) and any("rejected the API key" in t for t in texts)
    assert not [t for t in texts if KEY in t]
    data_dir = tmp_path / "data"
    assert files(data_dir)
    leaked = [p for p in data_dir.rglob("*") if p.is_file() and KEY.encode() in p.read_bytes()]
    assert leaked == []


def test_symbols_are_matched_as_the_client_normalises_them(source):
    req = Request("GLBX.MDP3", "ohlcv-1h", "raw_symbol", ("clk5",), datetime(2025, 3, 4), datetime(2025, 3, 5))
    path = source.fetch(req)
    store = databento.DBNStore.from_file(path)
    assert store.metadata.symbols == ["CLK5"] and len(store.to_ndarray()) == 23
