"""End to end: the real databento client against the local gateway, every OHLCV granularity, both stores."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

import hdi
from hdi.pipeline import ingest

ALL = ["CL.c.0", "NG.c.0", "HO.c.0", "RB.c.0", "ES.c.0", "SPY"]
# (recipe, granularity, start, end): small ranges keep the suite fast; 5m/15m come from 1m bars.
CASES = [
    ("ohlcv_1d.yaml", "1d", "2024-03-01", "2024-04-01"),
    ("ohlcv_1h.yaml", "1h", "2024-03-04", "2024-03-06"),
    ("ohlcv_1m.yaml", "1m", "2024-03-04", "2024-03-05"),
    ("ohlcv_5m.yaml", "5m", "2024-03-04", "2024-03-05"),
    ("ohlcv_15m.yaml", "15m", "2024-03-04", "2024-03-05"),
    ("ohlcv_1s.yaml", "1s", "2024-03-04T14:00:00Z", "2024-03-04T15:00:00Z"),
]


@pytest.mark.parametrize("recipe,granularity,start,end", CASES, ids=[c[1] for c in CASES])
def test_ingest_every_granularity_then_rerun_adds_nothing_and_downloads_nothing(
        gateway, any_store_url, recipes_dir, recipe, granularity, start, end):
    first = ingest(recipes_dir / recipe, start=start, end=end, store=any_store_url)
    assert first.ok, [c.error for c in first.chunks]
    assert first.rows_loaded > 0 and first.rows_quarantined == 0
    assert first.rows_loaded == first.rows_fetched if granularity not in ("5m", "15m") else True
    bars = hdi.read_bars(ALL, start, end, granularity=granularity, store=any_store_url)
    assert bars.height == first.rows_loaded
    assert set(bars["symbol"]) == set(ALL)
    # realistic levels per instrument (the gateway's synthetic prices)
    levels = bars.group_by("symbol").agg(pl.col("close_price").median()).sort("symbol").rows()
    assert dict(levels)["CL.c.0"] == pytest.approx(70, rel=0.5)
    assert dict(levels)["ES.c.0"] == pytest.approx(5000, rel=0.5)
    assert dict(levels)["SPY"] == pytest.approx(500, rel=0.5)
    assert (bars["high_price"] >= bars[["open_price", "close_price", "low_price"]].max_horizontal()).all()
    downloads = len(gateway.calls("timeseries.get_range"))
    second = ingest(recipes_dir / recipe, start=start, end=end, store=any_store_url)
    assert second.ok and second.rows_loaded == 0
    assert second.count("skipped") == len(second.chunks)
    assert len(gateway.calls("timeseries.get_range")) == downloads  # nothing downloaded again
    again = hdi.read_bars(ALL, start, end, granularity=granularity, store=any_store_url)
    assert again.height == bars.height


def test_5m_bars_equal_the_1m_bars_they_are_built_from(gateway, tmp_path, recipes_dir):
    store = f"duckdb://{tmp_path}/s.duckdb"
    for recipe in ("ohlcv_1m.yaml", "ohlcv_5m.yaml"):
        assert ingest(recipes_dir / recipe, start="2024-03-04", end="2024-03-05", symbols="CL.c.0",
                      store=store).ok
    m1 = hdi.read_bars("CL.c.0", "2024-03-04", "2024-03-05", granularity="1m", store=store, prices="decimal")
    m5 = hdi.read_bars("CL.c.0", "2024-03-04", "2024-03-05", granularity="5m", store=store, prices="decimal")
    expect = (m1.group_by(pl.col("bar_timestamp_utc").dt.truncate("5m"))
              .agg(pl.col("open_price").sort_by("bar_timestamp_utc").first(), pl.col("high_price").max(),
                   pl.col("low_price").min(), pl.col("close_price").sort_by("bar_timestamp_utc").last(),
                   pl.col("volume").sum()).sort("bar_timestamp_utc"))
    got = m5.select(expect.columns).sort("bar_timestamp_utc")
    assert got.equals(expect)


def test_rerun_over_a_wider_range_loads_only_the_new_chunks(gateway, tmp_path, recipes_dir):
    store = f"duckdb://{tmp_path}/s.duckdb"
    a = ingest(recipes_dir / "ohlcv_1d.yaml", start="2024-01-01", end="2024-03-01", store=store)
    b = ingest(recipes_dir / "ohlcv_1d.yaml", start="2024-01-01", end="2024-05-01", store=store)
    assert a.ok and b.ok
    assert b.count("skipped") == a.count("done") == 4  # 2 months x (futures, SPY)
    assert b.count("done") == 4
    total = hdi.read_bars(ALL, "2024-01-01", "2024-05-01", store=store).height
    assert total == a.rows_loaded + b.rows_loaded


def test_dry_run_estimates_every_chunk_and_downloads_and_stores_nothing(gateway, tmp_path, recipes_dir):
    store = f"duckdb://{tmp_path}/s.duckdb"
    r = ingest(recipes_dir / "ohlcv_1d.yaml", start="2024-01-01", end="2024-03-01", store=store, dry_run=True)
    assert [c.status for c in r.chunks] == ["estimated"] * 4
    assert all(c.record_count and c.billable_bytes and c.cost_usd is not None for c in r.chunks)
    assert gateway.calls("timeseries.get_range") == []
    assert not (tmp_path / "s.duckdb").exists()
    real = ingest(recipes_dir / "ohlcv_1d.yaml", start="2024-01-01", end="2024-03-01", store=store)
    assert real.rows_fetched == sum(c.record_count for c in r.chunks)


def test_roll_is_stored_per_contract_and_read_back_by_continuous_symbol(gateway, tmp_path, recipes_dir):
    # The gateway rolls CL.c.0 from CLZ4 to CLF5 on 2024-11-18.
    store = f"duckdb://{tmp_path}/s.duckdb"
    assert ingest(recipes_dir / "ohlcv_1d.yaml", start="2024-11-01", end="2024-12-01", symbols="CL.c.0",
                  store=store).ok
    bars = hdi.read_bars("CL.c.0", "2024-11-11", "2024-11-23", store=store)
    ids = bars.select(pl.col("bar_timestamp_utc").dt.date(), "instrument_id").rows()
    before = {i for d, i in ids if d < dt.date(2024, 11, 18)}
    after = {i for d, i in ids if d >= dt.date(2024, 11, 18)}
    assert len(before) == 1 and len(after) == 1 and before != after
