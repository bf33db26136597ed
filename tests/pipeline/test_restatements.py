"""Restatements end to end (issue 15.2): the real databento client against the local gateway, on
every store (the backend is in the test id). The ledger keeps each fetched day's dataset condition;
``--update`` / ``--restatements`` fetch again exactly the days Databento restated (or that were
degraded or pending) and replace their rows exactly, in the chunk's transaction."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hdi.pipeline import ingest
from hdi.store import close_all, open_store

ROOT = Path(__file__).resolve().parents[2]
RECIPE = ROOT / "recipes" / "trades.yaml"
DS = "GLBX.MDP3"
START, END = "2026-01-05", "2026-01-08"  # Monday to Wednesday; the gateway's clock is 2026-01-15
DAY = dt.date(2026, 1, 6)
SYM = "CL.c.0"
KEY = ["instrument_id", "ts_recv_ns", "sequence", "rec_ordinal"]


def _load(url: str, **kw: object):
    return ingest(RECIPE, start=kw.pop("start", START), end=kw.pop("end", END), symbols=SYM, store=url, **kw)


def _rows(url: str) -> pl.DataFrame:
    close_all()
    return open_store(url).select("trades").drop("data_source").sort(KEY)


def _conditions(url: str) -> list[tuple]:
    return (open_store(url).query("SELECT day, condition, last_modified_date, refetched FROM ingest_conditions "
                                  "ORDER BY day").with_columns(pl.col("day").cast(pl.Date),
                                                               pl.col("last_modified_date").cast(pl.Date)).rows())


def _ranges(gateway) -> list[tuple[str, str]]:
    return sorted((r.params["start"][:10], r.params["end"][:10]) for r in gateway.calls("timeseries.get_range"))


def _clean(tmp_path: Path, name: str) -> pl.DataFrame:
    """The rows a fresh store holds after ingesting what the gateway serves now."""
    url = f"duckdb://{tmp_path / f'{name}.duckdb'}"
    assert _load(url, refresh=True).ok
    return _rows(url)


def test_a_restated_day_is_replaced_exactly_and_unchanged_days_are_not_fetched(gateway, any_store_url, tmp_path):
    assert _load(any_store_url).ok
    d = dt.date
    assert _conditions(any_store_url) == [(d(2026, 1, n), "available", d(2026, 1, n + 1), None) for n in (5, 6, 7)]
    before = _rows(any_store_url)
    day_rows = before.filter(pl.col("received_timestamp_utc").dt.date() == DAY).sort("ts_recv_ns", "instrument_id")
    first, fifth = day_rows.row(0, named=True), day_rows.row(4, named=True)
    gateway.restate(DS, DAY, remove=[0], reprice=[(4, 2)])
    gateway.clear_requests()

    report = _load(any_store_url, restatements=True)

    assert report.ok and report.count("done") == 1
    assert _ranges(gateway) == [("2026-01-06", "2026-01-07")]  # only the restated day was fetched
    assert len(gateway.calls("metadata.get_dataset_condition")) == 1  # asked once for the run
    after = _rows(any_store_url)
    assert after.height == before.height - 1  # nothing duplicated, the removed trade gone
    gone = after.filter((pl.col("ts_recv_ns") == first["ts_recv_ns"]) & (pl.col("sequence") == first["sequence"])
                        & (pl.col("instrument_id") == first["instrument_id"]))
    assert gone.height == 0
    moved = after.filter((pl.col("ts_recv_ns") == fifth["ts_recv_ns"]) & (pl.col("sequence") == fifth["sequence"])
                         & (pl.col("instrument_id") == fifth["instrument_id"]))
    assert moved["price"].to_list() == [fifth["price"] + Decimal("0.02")]
    assert after.equals(_clean(tmp_path, "clean"))  # == a clean ingest of the restated data
    assert after.filter(pl.col("received_timestamp_utc").dt.date() != DAY).equals(
        before.filter(pl.col("received_timestamp_utc").dt.date() != DAY))
    assert _conditions(any_store_url)[1] == (DAY, "available", dt.date(2026, 1, 8), "restated")
    # done: the next run fetches nothing
    gateway.clear_requests()
    assert _load(any_store_url, restatements=True).count("done") == 0
    assert _ranges(gateway) == []


def test_degraded_and_pending_days_are_fetched_again_on_update_until_available(gateway, any_store_url):
    gateway.set_condition(DS, DAY, "degraded")
    gateway.set_condition(DS, dt.date(2026, 1, 7), "pending")
    assert _load(any_store_url).ok
    rows = _rows(any_store_url).height
    assert [c[1] for c in _conditions(any_store_url)] == ["available", "degraded", "pending"]
    gateway.set_condition(DS, dt.date(2026, 1, 7), "available")  # 01-06 stays degraded for now
    for expected in ([("2026-01-06", "2026-01-07"), ("2026-01-07", "2026-01-08")],
                     [("2026-01-06", "2026-01-07")]):
        gateway.clear_requests()
        assert _load(any_store_url, update=True, start=None).ok  # --end 2026-01-08: nothing to extend
        assert _ranges(gateway) == expected
        assert _rows(any_store_url).height == rows
    assert [c[1] for c in _conditions(any_store_url)] == ["available", "degraded", "available"]
    gateway.set_condition(DS, DAY, "available")
    gateway.clear_requests()
    assert _load(any_store_url, update=True, start=None).ok
    assert _ranges(gateway) == [("2026-01-06", "2026-01-07")]
    assert [c[1:] for c in _conditions(any_store_url)][1] == ("available", dt.date(2026, 1, 7), "degraded")
    gateway.clear_requests()
    assert _load(any_store_url, update=True, start=None).ok
    assert _ranges(gateway) == []  # every day available and unchanged: nothing fetched again


def test_restatements_only_over_the_chosen_range(gateway, tmp_path, cli):
    url = f"duckdb://{tmp_path / 'store.duckdb'}"
    assert _load(url).ok
    for n in (5, 7):
        gateway.restate(DS, dt.date(2026, 1, n))
    gateway.clear_requests()
    run = cli("ingest", "--recipe", RECIPE, "--restatements", "--start", "2026-01-06", "--end", "2026-01-08",
              "--symbols", SYM, "--store", url, "--no-progress")
    assert run.exit_code == 0, run.stdout + run.stderr
    assert _ranges(gateway) == [("2026-01-07", "2026-01-08")]
    both = cli("ingest", "--recipe", RECIPE, "--restatements", "--update", "--store", url, "--no-progress")
    assert both.exit_code == 1
    assert both.stderr.strip().splitlines() == [
        "error: --update and --restatements together: --update already fetches restated days again; allowed: one "
        "of them"]
    gateway.clear_requests()
    assert _load(url, restatements=True).ok  # the recipe's (here --start/--end's) whole range
    assert _ranges(gateway) == [("2026-01-05", "2026-01-06")]


def test_a_failing_refetch_leaves_the_old_rows(gateway, any_store_url):
    assert _load(any_store_url).ok
    before = _rows(any_store_url)
    gateway.restate(DS, DAY)
    gateway.faults.status("timeseries.get_range", 400, times=1)  # a terminal error: no retry
    report = _load(any_store_url, restatements=True)
    assert not report.ok and report.count("failed") == 1
    assert _rows(any_store_url).equals(before)
    assert _conditions(any_store_url)[1] == (DAY, "available", dt.date(2026, 1, 7), None)  # still the old fetch
    gateway.clear_requests()
    assert _load(any_store_url, restatements=True).ok  # the next run replaces the day
    assert _ranges(gateway) == [("2026-01-06", "2026-01-07")]
    assert _rows(any_store_url).height == before.height - 1


def test_the_raw_cache_never_serves_a_restated_day(gateway, tmp_path):
    """A fresh store loading after the restatement: the cached old file of that day is not used."""
    assert _load(f"duckdb://{tmp_path / 'a.duckdb'}").ok  # fills the raw cache
    gateway.restate(DS, DAY)
    gateway.clear_requests()
    fresh = f"duckdb://{tmp_path / 'b.duckdb'}"
    assert _load(fresh).ok
    assert _ranges(gateway) == [("2026-01-06", "2026-01-07")]  # the other two days came from the cache
    assert _rows(fresh).equals(_clean(tmp_path, "clean"))


def test_update_and_restatements_together_are_refused(gateway, tmp_path):
    from hdi.errors import ConfigError

    with pytest.raises(ConfigError, match="--update and --restatements together"):
        _load(f"duckdb://{tmp_path / 's.duckdb'}", update=True, restatements=True)


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(remove=st.lists(st.integers(0, 5000), max_size=6),
       reprice=st.lists(st.tuples(st.integers(0, 5000), st.integers(-3, 3).filter(bool)), max_size=6))
def test_any_restatement_leaves_the_rows_of_a_clean_ingest(gateway, tmp_path, remove, reprice):
    url = f"duckdb://{tmp_path / 'store.duckdb'}"
    if not Path(url.removeprefix("duckdb://")).exists():
        assert _load(url).ok
    r = gateway.restate(DS, DAY, remove=remove, reprice=reprice)
    assert _load(url, restatements=True).ok
    name = f"clean-{r.last_modified}"
    assert _rows(url).equals(_clean(tmp_path, name))


def test_status_shows_degraded_pending_and_restated_days(gateway, tmp_path, cli):
    import json

    url = f"duckdb://{tmp_path / 'store.duckdb'}"
    gateway.set_condition(DS, dt.date(2026, 1, 5), "degraded")
    gateway.set_condition(DS, dt.date(2026, 1, 7), "pending")
    assert _load(url).ok
    gateway.restate(DS, DAY)
    assert _load(url, restatements=True).ok
    text = cli("status", "--store", url)
    assert text.exit_code == 0, text.stdout
    assert "Databento conditions" in text.stdout
    assert f"{DS} trades {SYM}: 1 DEGRADED, 1 PENDING, 1 restated" in text.stdout
    assert "DEGRADED: 2026-01-05" in text.stdout and "PENDING: 2026-01-07" in text.stdout
    assert "restated: 2026-01-06 (last modified 2026-01-08)" in text.stdout
    got = json.loads(cli("status", "--store", url, "--format", "json").stdout)["conditions"]
    assert got == [{"dataset": DS, "schema": "trades", "symbol": SYM, "days_degraded": 1, "degraded": ["2026-01-05"],
                    "days_pending": 1, "pending": ["2026-01-07"], "days_restated": 1, "restated": ["2026-01-06"],
                    "last_restated": "2026-01-08"}]
    page = tmp_path / "status.html"
    assert cli("status", "--store", url, "--html", str(page)).exit_code == 0
    assert "<td>2026-01-06</td><td>2026-01-08</td>" in page.read_text()


@pytest.mark.timescale
def test_restatements_with_worker_processes_ask_databento_once(gateway, timescale_schema_url, tmp_path):
    url = timescale_schema_url
    assert _load(url, workers=2).ok
    for n in (5, 7):
        gateway.restate(DS, dt.date(2026, 1, n))
    gateway.clear_requests()
    report = _load(url, restatements=True, workers=2)
    assert report.ok and report.count("done") == 2
    assert _ranges(gateway) == [("2026-01-05", "2026-01-06"), ("2026-01-07", "2026-01-08")]
    assert len(gateway.calls("metadata.get_dataset_condition")) == 1  # the workers were given the answer
    assert _rows(url).equals(_clean(tmp_path, "clean"))
    assert [c[3] for c in _conditions(url)] == ["restated", None, "restated"]


def test_an_unanswered_condition_call_stops_restatements_but_not_an_update(gateway, tmp_path):
    from hdi.errors import SourceError

    url = f"duckdb://{tmp_path / 'store.duckdb'}"
    assert _load(url).ok
    gateway.restate(DS, DAY)
    gateway.faults.status("metadata.get_dataset_condition", 400, times=10)
    gateway.clear_requests()
    up = _load(url, update=True, start=None, end="2026-01-09")
    assert up.ok
    assert _ranges(gateway) == [("2026-01-08", "2026-01-09")]  # extended; the restated day waits
    with pytest.raises(SourceError, match="get_dataset_condition"):
        _load(url, restatements=True)
    gateway.faults.clear()
    gateway.clear_requests()
    assert _load(url, restatements=True).ok
    assert _ranges(gateway) == [("2026-01-06", "2026-01-07")]


def test_a_restated_day_of_resampled_bars_replaces_only_its_own_granularity(gateway, tmp_path):
    """5m bars built from 1m bars share the ohlcv table with the 1m bars: a restatement re-fetched by the
    5m recipe replaces the day's 5m bars only (delete_days keeps to the recipe's granularity)."""
    url = f"duckdb://{tmp_path / 'store.duckdb'}"
    m1, m5 = ROOT / "recipes" / "ohlcv_1m.yaml", ROOT / "recipes" / "ohlcv_5m.yaml"
    for recipe in (m1, m5):
        assert ingest(recipe, start=START, end=END, symbols=SYM, store=url).ok

    def bars(u: str, gran: str) -> pl.DataFrame:
        close_all()
        return (open_store(u).select("ohlcv", equals={"granularity": gran}).drop("data_source")
                .sort("instrument_id", "bar_timestamp_utc"))

    one_minute = bars(url, "1m")
    gateway.restate(DS, DAY, remove=[0, 7], reprice=[(3, 1)])
    gateway.clear_requests()
    assert ingest(m5, start=START, end=END, symbols=SYM, store=url, restatements=True).ok
    assert _ranges(gateway) == [("2026-01-06", "2026-01-07")]
    assert bars(url, "1m").equals(one_minute)  # the 1m recipe's rows: untouched (its own run would replace them)
    clean = f"duckdb://{tmp_path / 'clean.duckdb'}"
    assert ingest(m5, start=START, end=END, symbols=SYM, store=clean, refresh=True).ok
    assert bars(url, "5m").equals(bars(clean, "5m"))
    gateway.clear_requests()
    assert ingest(m1, start=START, end=END, symbols=SYM, store=url, restatements=True).ok
    assert _ranges(gateway) == [("2026-01-06", "2026-01-07")]
    assert bars(url, "1m").height == one_minute.height - 2
