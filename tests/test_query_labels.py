"""Every row names its instrument (symbol, raw_symbol, instrument_id), times in another zone (tz=),
and the hint for a bar granularity never stored — over both stores."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import polars as pl
import pytest

import hdi
from hdi._tables import INSTRUMENTS
from hdi.errors import QueryError

UTC = dt.UTC
RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "ohlcv_1d.yaml"


def _defs(rows: list[tuple[int, str, str, str]]) -> pl.DataFrame:
    """(instrument_id, raw_symbol, received date, expiration date) -> instruments rows (ES futures)."""
    recs = []
    for iid, raw, recv, exp in rows:
        t = dt.datetime.fromisoformat(recv).replace(tzinfo=UTC)
        ns = int(t.timestamp()) * 10**9
        recs.append({"instrument_id": iid, "raw_symbol": raw, "received_timestamp_utc": t, "event_timestamp_utc": t,
                     "ts_recv_ns": ns, "ts_event_ns": ns,
                     "expiration": dt.datetime.fromisoformat(exp).replace(tzinfo=UTC)})
    df = pl.DataFrame(recs).with_columns(dataset=pl.lit("GLBX.MDP3"), asset=pl.lit("ES"), instrument_class=pl.lit("F"),
                                         data_source=pl.lit("databento"), publisher_id=pl.lit(1))
    return pl.concat([pl.DataFrame(schema=INSTRUMENTS.polars_schema), df], how="diagonal_relaxed")


@pytest.fixture
def es(store, make_bars):
    """ES.FUT known through definitions only: ESH4 (201) and ESM4 (202); bars on Jan 3 and 4."""
    store.write("instruments", _defs([(201, "ESH4", "2024-01-02", "2024-03-15"),
                                      (202, "ESM4", "2024-01-02", "2024-06-21")]))
    store.write("ohlcv", make_bars([{"instrument_id": iid, "bar_timestamp_utc": f"2024-01-0{d}"}
                                    for iid in (201, 202) for d in (3, 4)]))
    return store.url


def test_a_parent_query_names_each_contract_on_every_row(es):
    df = hdi.read_bars("ES.FUT", "2024-01-01", "2024-02-01", store=es)
    assert df.columns[:2] == ["symbol", "raw_symbol"] and "instrument_id" in df.columns
    assert df.select("symbol", "raw_symbol", "instrument_id").rows() == [
        ("ES.FUT", "ESH4", 201), ("ES.FUT", "ESM4", 202), ("ES.FUT", "ESH4", 201), ("ES.FUT", "ESM4", 202)]


def test_a_continuous_query_names_the_contract_of_each_day_across_the_roll(store, make_bars, make_symbology):
    """CL.c.0 is 101 until Jan 10, then 102; the raw-symbol mappings (CLF4, CLG4) name them."""
    sym = make_symbology([("CL.c.0", 101, "2024-01-02", "2024-01-10"), ("CL.c.0", 102, "2024-01-10", "2024-01-20"),
                          ("CLF4", 101, "2024-01-02", "2024-01-20"), ("CLG4", 102, "2024-01-02", "2024-01-20")])
    store.write("ohlcv", make_bars([{"instrument_id": iid, "bar_timestamp_utc": f"2024-01-{d:02d}"}
                                    for iid in (101, 102) for d in range(8, 12)]), symbology=sym)
    df = hdi.read_bars("CL.c.0", "2024-01-08", "2024-01-12", store=store.url)
    assert df.select("raw_symbol", "instrument_id").rows() == [("CLF4", 101), ("CLF4", 101), ("CLG4", 102),
                                                               ("CLG4", 102)]
    assert df["symbol"].unique().to_list() == ["CL.c.0"]


def test_raw_symbol_follows_the_definition_valid_at_each_rows_time(store, make_trades, make_symbology):
    """Instrument 7 is renamed OLD7 -> NEW7 by a definition received Jan 10 12:00; a trade before
    its first definition takes the first one; an instrument nothing names has a null raw_symbol."""
    store.write("instruments", _defs([(7, "OLD7", "2024-01-02", "2024-12-20"),
                                      (7, "NEW7", "2024-01-10T12:00:00", "2024-12-20")]))
    times = ["2024-01-01T10:00:00", "2024-01-05T10:00:00", "2024-01-10T11:59:59", "2024-01-10T12:00:00",
             "2024-01-15T10:00:00"]
    store.write("trades", make_trades([{"instrument_id": 7, "ts_recv_ns": t} for t in times]
                                      + [{"instrument_id": 8, "ts_recv_ns": "2024-01-05T10:00:00"}]))
    df = hdi.read_trades(["7", "8"], "2024-01-01", "2024-02-01", store=store.url)
    assert df.columns[:3] == ["symbol", "raw_symbol", "trade_id"]
    assert df.select("symbol", "raw_symbol").rows() == [("7", "OLD7")] * 3 + [("7", "NEW7")] * 2 + [("8", None)]


def test_every_reader_names_the_contract(es, store):
    """Trades, statistics... of ES.FUT: the same three columns as bars (definitions carry raw_symbol
    themselves)."""
    for read in (hdi.read_trades, hdi.read_tbbo, hdi.read_mbp1, hdi.read_statistics):
        df = read("ES.FUT", "2024-01-01", "2024-02-01", store=es)
        assert df.columns[:2] == ["symbol", "raw_symbol"] and "instrument_id" in df.columns
        assert df.schema["raw_symbol"] == pl.String
    defs = hdi.read_definitions("ES.FUT", "2024-01-01", "2024-02-01", store=es)
    assert defs.select("symbol", "raw_symbol", "instrument_id").rows() == [("ES.FUT", "ESH4", 201),
                                                                          ("ES.FUT", "ESM4", 202)]


# ----------------------------------------------------------------------------------- tz
def test_tz_exchange_shows_chicago_time_for_globex_and_storage_stays_utc(es):
    utc = hdi.read_bars("ES.FUT", "2024-01-01", "2024-02-01", store=es)
    local = hdi.read_bars("ES.FUT", "2024-01-01", "2024-02-01", store=es, tz="exchange")
    assert local.schema["bar_timestamp_utc"] == pl.Datetime("ns", "America/Chicago")
    assert local["bar_timestamp_utc"].dt.hour().to_list() == [18] * 4  # 00:00 UTC = 18:00 CST the day before
    assert local["bar_timestamp_utc"].dt.day().to_list() == [2, 2, 3, 3]
    assert (local["bar_timestamp_utc"].dt.epoch("ns") == utc["bar_timestamp_utc"].dt.epoch("ns")).all()
    again = hdi.read_bars("ES.FUT", "2024-01-01", "2024-02-01", store=es)
    assert again.equals(utc)  # nothing stored changed


def test_tz_any_iana_zone_on_tick_readers_keeps_nanoseconds(store, make_trades, make_symbology):
    ns = 1_704_201_000_123_456_789  # 2024-01-02T13:10:00.123456789Z
    store.write("trades", make_trades([{"ts_recv_ns": ns}]), symbology=make_symbology([("ESH4", 1, "2024-01-02",
                                                                                         "2024-01-03")]))
    df = hdi.read_trades("ESH4", "2024-01-02", "2024-01-03", store=store.url, tz="Asia/Tokyo")
    t = df["received_timestamp_utc"]
    assert t.dtype == pl.Datetime("ns", "Asia/Tokyo") and t.dt.hour()[0] == 22 and t.dt.epoch("ns")[0] == ns
    assert df["trade_timestamp_utc"].dtype == pl.Datetime("ns", "Asia/Tokyo")


def test_tz_errors_name_the_value_and_what_is_allowed(es, store, make_trades, make_symbology):
    with pytest.raises(QueryError, match=r"tz 'Mars/Olympus' is not a time zone; allowed: 'exchange'"):
        hdi.read_bars("ES.FUT", "2024-01-01", "2024-02-01", store=es, tz="Mars/Olympus")
    store.write("trades", make_trades([{"dataset": "EQUS.MINI", "ts_recv_ns": "2024-01-03T15:00:00"},
                                       {"dataset": "GLBX.MDP3", "instrument_id": 201,
                                        "ts_recv_ns": "2024-01-03T15:00:00"}]),
                symbology=make_symbology([("SPY", 1, "2024-01-02", "2024-01-05", "EQUS.MINI")]))
    with pytest.raises(QueryError, match=r"different zones \(EQUS.MINI America/New_York, GLBX.MDP3 America/Chicago\)"):
        hdi.read_trades(["SPY", "ESH4"], "2024-01-01", "2024-02-01", store=es, tz="exchange")
    spy = hdi.read_trades("SPY", "2024-01-01", "2024-02-01", store=es, tz="exchange")
    assert spy["received_timestamp_utc"].dt.hour().to_list() == [10]  # 15:00 UTC = 10:00 EST


# ----------------------------------------------------------------------------------- granularity hint
def test_an_empty_5m_read_names_the_recipe_that_builds_5m_bars(es, caplog):
    with caplog.at_level(logging.WARNING, logger="hdi._query"):
        df = hdi.read_bars("ES.FUT", "2024-01-01", "2024-02-01", granularity="5m", store=es)
    assert df.height == 0
    msgs = [r.getMessage() for r in caplog.records]
    assert len(msgs) == 1 and "no 5m bars are stored" in msgs[0]
    assert "built from 1m bars by their own recipe: hdi ingest --recipe recipes/ohlcv_5m.yaml" in msgs[0]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="hdi._query"):  # 1d bars exist: an empty range is just empty
        assert hdi.read_bars("ES.FUT", "2024-05-01", "2024-06-01", store=es).height == 0
    assert caplog.records == []


# ----------------------------------------------------------------------------------- through hdi ingest
def test_a_continuous_ingest_names_each_contract_without_definitions(gateway, any_store_url):
    """hdi ingest looks up the raw symbols of the instruments CL.c.0 resolved to: rows across the
    2024-11-18 roll name CLZ4 then CLF5; they are queryable by raw symbol, not counted in status."""
    from hdi._status_report import status
    from hdi.pipeline import ingest

    assert ingest(RECIPE, start="2024-11-14", end="2024-11-21", symbols="CL.c.0", store=any_store_url).ok
    df = hdi.read_bars("CL.c.0", "2024-11-14", "2024-11-21", store=any_store_url)
    before = df.filter(pl.col("bar_timestamp_utc") < dt.datetime(2024, 11, 18, tzinfo=UTC))
    after = df.filter(pl.col("bar_timestamp_utc") >= dt.datetime(2024, 11, 18, tzinfo=UTC))
    assert before.height and after.height
    assert set(before["raw_symbol"]) == {"CLZ4"} and set(after["raw_symbol"]) == {"CLF5"}
    raw = hdi.read_bars("CLF5", "2024-11-14", "2024-11-21", store=any_store_url)
    assert raw["instrument_id"].to_list() == after["instrument_id"].to_list()
    assert status(any_store_url).symbols["symbol"].to_list() == ["CL.c.0"]


def test_when_the_raw_symbol_lookup_fails_the_ingest_still_loads_and_rows_say_null(gateway, any_store_url, caplog,
                                                                                  monkeypatch):
    from hdi.pipeline import ingest

    monkeypatch.setenv("HDI_RETRY_ATTEMPTS", "1")
    gateway.faults.status("symbology.resolve", 503, times=5, match={"stype_out": "raw_symbol"})
    with caplog.at_level(logging.WARNING, logger="hdi._rawsym"):
        assert ingest(RECIPE, start="2024-11-14", end="2024-11-21", symbols="CL.c.0", store=any_store_url).ok
    assert any("raw symbols of 2 GLBX.MDP3 instruments could not be resolved" in r.getMessage() for r in caplog.records)
    df = hdi.read_bars("CL.c.0", "2024-11-14", "2024-11-21", store=any_store_url)
    assert df.height > 0 and df["raw_symbol"].null_count() == df.height
