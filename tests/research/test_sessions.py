"""Trading-day bars, session-anchored intraday bars and statistics known as of an instant, on both stores.

Data comes through the real databento client from the local gateway (which follows the same exchange
calendars), or from hand-made DBN files (hdi/testing/dbnfiles.py) loaded with ``--from-file``. The
expected bars are computed independently: pandas_market_calendars' own schedule, the stored 1m bars
read back with ``read_bars(..., "1m")`` and a Polars range join.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import pandas_market_calendars as mcal
import polars as pl
import pytest

import hdi
from hdi.errors import QueryError
from hdi.pipeline import ingest
from hdi.testing.dbnfiles import MinuteBar, Stat, write_minute_bars, write_statistics

ROOT = Path(__file__).resolve().parents[2]
# pandas_market_calendars (called directly here for independent bounds) warns about its own pandas use
pytestmark = pytest.mark.filterwarnings("ignore:Series.dt.weekday is deprecated")
RECIPES = ROOT / "recipes"
UTC = dt.UTC
D = dt.date
ENERGY = "CMEGlobex_CrudeAndRefined"
CALENDARS = {"CL.c.0": ENERGY, "ES.c.0": "CME_Equity", "SPY": "NYSE"}
# MLK day (a Monday holiday), both DST changes (with a Sunday open each), Thanksgiving and the early close after
WINDOWS = [(D(2024, 1, 12), D(2024, 1, 18)), (D(2024, 3, 7), D(2024, 3, 13)), (D(2024, 10, 31), D(2024, 11, 6)),
           (D(2024, 11, 26), D(2024, 12, 4))]
BAR = ["symbol", "raw_symbol", "trading_date", "session_open", "session_close", "dataset", "instrument_id",
       "open_price", "high_price", "low_price", "close_price", "volume"]


def _utc(*a: int) -> dt.datetime:
    return dt.datetime(*a, tzinfo=UTC)


def _ingest(recipe: str, start: object, end: object, symbols: str, store: str, **kw: object) -> None:
    report = ingest(RECIPES / recipe, start=str(start), end=str(end), symbols=symbols, store=store, **kw)
    assert report.ok and report.rows_quarantined == 0, [c.error for c in report.chunks]


def _sessions(calendar: str, d0: dt.date, d1: dt.date) -> pl.DataFrame:
    """Session bounds straight from pandas_market_calendars (not through hdi), trading dates [d0, d1)."""
    s = mcal.get_calendar(calendar).schedule(d0.isoformat(), (d1 - dt.timedelta(days=1)).isoformat())
    return pl.DataFrame({
        "trading_date": [t.date() for t in s.index],
        "session_open": [t.to_pydatetime() for t in s["market_open"]],
        "session_close": [t.to_pydatetime() for t in s["market_close"]],
    }).with_columns(pl.col("session_open", "session_close").dt.convert_time_zone("UTC").dt.cast_time_unit("ns"))


def _expected(store: str, symbol: str, d0: dt.date, d1: dt.date) -> pl.DataFrame:
    """Trading-day bars computed independently from the stored 1m bars and the calendar's bounds."""
    sess = _sessions(CALENDARS[symbol], d0, d1)
    m1 = hdi.read_bars(symbol, d0 - dt.timedelta(days=4), d1 + dt.timedelta(days=1), "1m", store=store,
                       prices="decimal")
    ts = pl.col("bar_timestamp_utc")
    rows = m1.join_where(sess, ts >= pl.col("session_open"), ts < pl.col("session_close"))
    return (rows.sort("bar_timestamp_utc")
            .group_by("symbol", "raw_symbol", "trading_date", "session_open", "session_close", "dataset",
                      "instrument_id", maintain_order=True)
            .agg(pl.col("open_price").first(), pl.col("high_price").max(), pl.col("low_price").min(),
                 pl.col("close_price").last(), pl.col("volume").sum())
            .select(BAR).sort("trading_date", "instrument_id"))


@pytest.fixture
def calendar_store(gateway, any_store_url: str) -> str:
    for d0, d1 in WINDOWS:
        _ingest("ohlcv_1m.yaml", d0 - dt.timedelta(days=2), d1, "CL.c.0,ES.c.0,SPY", any_store_url)
    return any_store_url


def test_trading_day_bars_equal_an_independent_computation_over_dst_holidays_and_early_closes(calendar_store):
    store = calendar_store
    got: dict[str, pl.DataFrame] = {}
    for symbol in CALENDARS:
        parts = []
        for d0, d1 in WINDOWS:
            bars = hdi.read_bars(symbol, d0, d1, session="exchange", store=store, prices="decimal")
            exp = _expected(store, symbol, d0, d1)
            assert exp.height >= 3  # SPY has 3 trading dates in the MLK week window
            assert bars.select(BAR).sort("trading_date", "instrument_id").equals(exp), (symbol, d0)
            parts.append(bars)
        got[symbol] = pl.concat(parts)

    def row(symbol: str, day: dt.date) -> dict:
        hit = got[symbol].filter(pl.col("trading_date") == day)
        return hit.row(0, named=True) if hit.height else {}

    cl, spy = "CL.c.0", "SPY"
    # March DST change: Friday closes 16:00 CST (22:00 UTC), Sunday opens 17:00 CDT (22:00 UTC) for Monday
    assert (row(cl, D(2024, 3, 8))["session_open"], row(cl, D(2024, 3, 8))["session_close"]) == (
        _utc(2024, 3, 7, 23), _utc(2024, 3, 8, 22))
    assert (row(cl, D(2024, 3, 11))["session_open"], row(cl, D(2024, 3, 11))["session_close"]) == (
        _utc(2024, 3, 10, 22), _utc(2024, 3, 11, 21))
    assert row(cl, D(2024, 3, 9)) == row(cl, D(2024, 3, 10)) == {}  # no Saturday/Sunday trading dates
    sunday = hdi.read_bars(cl, "2024-03-10T22:00:00Z", "2024-03-10T22:01:00Z", "1m", store=store, prices="decimal")
    assert sunday.height == 1 and row(cl, D(2024, 3, 11))["open_price"] == sunday["open_price"][0]
    assert row(spy, D(2024, 3, 11))["session_open"] == _utc(2024, 3, 11, 13, 30)  # 09:30 EDT
    # November DST change: Sunday 2024-11-03 opens 17:00 CST = 23:00 UTC
    assert row(cl, D(2024, 11, 4))["session_open"] == _utc(2024, 11, 3, 23)
    assert row(cl, D(2024, 11, 1))["session_close"] == _utc(2024, 11, 1, 21)
    # Thanksgiving and the day after: early closes, by product; NYSE closed on Thanksgiving
    assert (row(cl, D(2024, 11, 28))["session_close"], row(cl, D(2024, 11, 28))["early_close"]) == (
        _utc(2024, 11, 28, 19, 30), True)
    assert row(cl, D(2024, 11, 29))["session_close"] == _utc(2024, 11, 29, 18, 45)
    assert row("ES.c.0", D(2024, 11, 29))["session_close"] == _utc(2024, 11, 29, 18)
    assert row(spy, D(2024, 11, 28)) == {}
    assert (row(spy, D(2024, 11, 29))["session_close"], row(spy, D(2024, 11, 29))["early_close"]) == (
        _utc(2024, 11, 29, 18), True)
    assert row(cl, D(2024, 11, 27))["early_close"] is False
    # MLK day, a Monday holiday: NYSE closed, CME Globex open with an early halt
    assert row(spy, D(2024, 1, 15)) == {}
    assert row(cl, D(2024, 1, 15))["session_close"] == _utc(2024, 1, 15, 19, 30)
    # every bar lies inside its session; the UTC-day bar differs from the trading-day bar
    for frame in got.values():
        assert (frame["session_open"] < frame["session_close"]).all()
    utc_day = hdi.read_bars(cl, "2024-03-08", "2024-03-09", "1m", store=store, prices="decimal")
    assert utc_day["open_price"][0] != row(cl, D(2024, 3, 8))["open_price"]  # 00:00 UTC is mid-session


def test_intraday_bars_anchor_at_the_session_open(calendar_store):
    store = calendar_store
    spy = hdi.read_bars("SPY", "2024-11-26", "2024-12-03", "1h", session="exchange", store=store, prices="decimal")
    # 09:30 New York = 14:30 UTC in November: hour bars start at :30, the early close ends the last one at 18:00
    assert set(spy["bar_timestamp_utc"].dt.minute()) == {30}
    friday = spy.filter(pl.col("trading_date") == D(2024, 11, 29))
    assert friday["bar_timestamp_utc"].to_list() == [_utc(2024, 11, 29, h, 30) for h in (14, 15, 16, 17)]
    m1 = hdi.read_bars("SPY", "2024-11-29", "2024-11-30", "1m", store=store, prices="decimal")
    first = m1.filter(pl.col("bar_timestamp_utc") < _utc(2024, 11, 29, 15, 30))
    assert friday.row(0, named=True)["volume"] == first["volume"].sum()
    assert friday.row(0, named=True)["open_price"] == first["open_price"][0]
    assert friday.row(0, named=True)["close_price"] == first["close_price"][-1]
    cl = hdi.read_bars("CL.c.0", "2024-03-11", "2024-03-12", "15m", session="exchange", store=store)
    assert cl["bar_timestamp_utc"][0] == _utc(2024, 3, 10, 22) and cl.height == 23 * 4
    ext = hdi.read_bars("SPY", "2024-11-29", "2024-11-30", session="extended", store=store)
    assert (ext["session_open"][0], ext["session_close"][0]) == (_utc(2024, 11, 29, 9), _utc(2024, 11, 29, 22))


def test_bad_session_arguments_are_one_line_errors(calendar_store):
    with pytest.raises(QueryError, match="session 'weekly' is not allowed; allowed: utc, exchange, extended"):
        hdi.read_bars("CL.c.0", "2024-03-07", "2024-03-09", session="weekly", store=calendar_store)
    with pytest.raises(QueryError, match="as_of applies to trading-day bars"):
        hdi.read_bars("CL.c.0", "2024-03-07", "2024-03-09", as_of="2024-03-09", store=calendar_store)
    with pytest.raises(QueryError, match="granularity '1s' has no session bars"):
        hdi.read_bars("CL.c.0", "2024-03-07", "2024-03-09", "1s", session="exchange", store=calendar_store)


# A contract's 1m bars around the daily break and its statistics, written by hand.
IDS = {"CLF5": 424_242}
MINUTES = [
    MinuteBar("2024-11-26T21:58", "CLF5", "70.00", "70.10", "69.90", "70.05", 5),
    MinuteBar("2024-11-26T21:59", "CLF5", "70.05", "70.20", "70.00", "70.15", 7),
    MinuteBar("2024-11-26T22:00", "CLF5", "99.00", "99.00", "99.00", "99.00", 1000),  # the daily break
    MinuteBar("2024-11-26T22:59", "CLF5", "1.00", "1.00", "1.00", "1.00", 1000),  # the daily break
    MinuteBar("2024-11-26T23:00", "CLF5", "70.30", "70.40", "70.20", "70.35", 3),  # opens 2024-11-27
    MinuteBar("2024-11-27T12:00", "CLF5", "70.35", "71.00", "70.30", "70.90", 4),
    MinuteBar("2024-11-27T21:59", "CLF5", "70.90", "70.95", "70.50", "70.60", 6),
]
STATS = [
    Stat("2024-11-26T20:30", "CLF5", 3, "2024-11-26", price="70.10", flags=2, sequence=1),  # preliminary
    Stat("2024-11-26T22:30", "CLF5", 3, "2024-11-26", price="70.25", flags=3, sequence=2),  # final
    Stat("2024-11-26T23:15", "CLF5", 3, "2024-11-26", price="70.99", flags=2, sequence=3),  # a late preliminary
    Stat("2024-11-27T10:00", "CLF5", 6, "2024-11-26", quantity=1234, sequence=4),
    Stat("2024-11-27T10:00:01", "CLF5", 9, "2024-11-26", quantity=5000, sequence=5),
    Stat("2024-11-27T15:00", "CLF5", 9, "2024-11-26", quantity=5100, sequence=6),
    Stat("2024-11-27T16:00", "CLF5", 9, "2024-11-26", quantity=5100, update_action=2, sequence=7),  # deleted
    Stat("2024-11-28T10:00", "CLF5", 9, "2024-11-26", quantity=5200, sequence=8),
    Stat("2024-11-27T22:30", "CLF5", 3, "2024-11-27", price="71.00", flags=3, sequence=9),
]


@pytest.fixture
def hand_store(any_store_url: str, tmp_path: Path) -> str:
    bars = write_minute_bars(tmp_path / "m1.dbn", MINUTES, ids=IDS)
    stats = write_statistics(tmp_path / "stats.dbn", STATS, ids=IDS)
    for recipe, path in (("ohlcv_1m.yaml", bars), ("statistics.yaml", stats)):
        report = ingest(RECIPES / recipe, from_files=[path], store=any_store_url)
        assert report.ok and report.rows_quarantined == 0, [c.error for c in report.chunks]
    return any_store_url


def test_the_daily_break_belongs_to_no_trading_day(hand_store):
    bars = hdi.read_bars("CLF5", "2024-11-26", "2024-11-28", session="exchange", store=hand_store, prices="decimal")
    assert bars["trading_date"].to_list() == [D(2024, 11, 26), D(2024, 11, 27)]
    a, b = bars.rows(named=True)
    assert (a["open_price"], a["high_price"], a["low_price"], a["close_price"], a["volume"]) == (
        Decimal("70.00"), Decimal("70.20"), Decimal("69.90"), Decimal("70.15"), 12)
    assert (b["open_price"], b["high_price"], b["low_price"], b["close_price"], b["volume"]) == (
        Decimal("70.30"), Decimal("71.00"), Decimal("70.20"), Decimal("70.60"), 13)
    assert (b["session_open"], b["raw_symbol"], b["instrument_id"]) == (_utc(2024, 11, 26, 23), "CLF5", 424_242)


def _stats_at(store: str, as_of: str | None) -> dict:
    bars = hdi.read_bars("CLF5", "2024-11-26", "2024-11-27", session="exchange", store=store, as_of=as_of,
                         prices="decimal")
    assert bars.height == 1
    return bars.row(0, named=True)


def test_settlement_is_the_final_publication_and_statistics_are_known_only_once_published(hand_store):
    store = hand_store
    now = _stats_at(store, None)
    final = hdi.read_statistics("CLF5", "2024-11-26", "2024-11-29", store=store, latest=False, prices="decimal")
    final = final.filter((pl.col("stat_type") == 3) & (pl.col("effective_date_utc") == D(2024, 11, 26))
                         & ((pl.col("stat_flags") & 1) == 1))
    assert final.height == 1
    # the final settlement, not the later preliminary republication
    assert (now["settlement_price"], now["settlement_final"], now["settlement_known_at"]) == (
        final["price"][0], True, final["received_timestamp_utc"][0])
    assert now["settlement_price"] == Decimal("70.25")
    assert (now["cleared_volume"], now["cleared_volume_known_at"]) == (1234, _utc(2024, 11, 27, 10))
    assert (now["open_interest"], now["open_interest_known_at"]) == (5200, _utc(2024, 11, 28, 10))

    # before any publication: all null
    early = _stats_at(store, "2024-11-26T20:00:00Z")
    assert [early[c] for c in ("settlement_price", "settlement_final", "cleared_volume", "open_interest",
                               "open_interest_known_at")] == [None] * 5
    # the preliminary settlement until the final one arrives (a publication at exactly as_of is known)
    prelim = _stats_at(store, "2024-11-26T20:30:00Z")
    assert (prelim["settlement_price"], prelim["settlement_final"]) == (Decimal("70.10"), False)
    assert _stats_at(store, "2024-11-26T22:30:00Z")["settlement_price"] == Decimal("70.25")
    # as of the next morning, before the open interest's publication: null, the settlement known
    morning = _stats_at(store, "2024-11-27T09:00:00Z")
    assert morning["open_interest"] is None and morning["cleared_volume"] is None
    assert morning["settlement_price"] == Decimal("70.25")
    assert _stats_at(store, "2024-11-27T12:00:00Z")["open_interest"] == 5000
    assert _stats_at(store, "2024-11-27T15:30:00Z")["open_interest"] == 5100
    deleted = _stats_at(store, "2024-11-27T17:00:00Z")  # the delete withdrew it
    assert (deleted["open_interest"], deleted["open_interest_known_at"]) == (None, None)
    assert deleted["cleared_volume"] == 1234


def test_query_cli_session_exchange_as_of(cli, hand_store, tmp_path):
    out = tmp_path / "bars.csv"
    r = cli("query", "--schema", "ohlcv-1d", "--session", "exchange", "--symbols", "CLF5", "--start", "2024-11-26",
            "--end", "2024-11-28", "--as-of", "2024-11-27T12:00:00Z", "--format", "csv", "--output", out,
            "--store", hand_store)
    assert r.exit_code == 0, r.stderr
    df = pl.read_csv(out)
    assert df["trading_date"].to_list() == ["2024-11-26", "2024-11-27"]
    assert df["open_interest"].to_list() == [5000, None] and df["settlement_price"].to_list() == [70.25, None]
    r = cli("query", "--schema", "trades", "--session", "exchange", "--symbols", "CLF5", "--start", "2024-11-26",
            "--end", "2024-11-28", "--store", hand_store)
    assert r.exit_code == 1 and "--session and --as-of apply to --schema ohlcv-* only" in r.stderr


def test_status_flags_a_planted_empty_trading_day_and_calls_holidays_closed(gateway, cli, any_store_url):
    gateway.add_no_trade_day("GLBX.MDP3", "CL.c.0", D(2024, 11, 27))
    _ingest("ohlcv_1m.yaml", "2024-11-25", "2024-12-03", "CL.c.0,SPY", any_store_url)
    cov = {c["symbol"]: c for c in hdi.status(any_store_url).to_dict()["coverage"]}
    cl, spy = cov["CL.c.0"], cov["SPY"]
    assert (cl["flagged"], cl["closed"], cl["missing"]) == (["2024-11-27"], ["2024-11-30"], [])
    assert cl["early_close"] == ["2024-11-28..2024-11-29"]
    assert (spy["flagged"], spy["closed"]) == ([], ["2024-11-28", "2024-11-30..2024-12-01"])
    assert spy["early_close"] == ["2024-11-29"] and spy["calendar"] == "NYSE"
    # the planted trading day has no bar at all, not even its Tuesday-evening hour
    bars = hdi.read_bars("CL.c.0", "2024-11-25", "2024-12-03", session="exchange", store=any_store_url)
    assert D(2024, 11, 27) not in bars["trading_date"].to_list() and D(2024, 11, 26) in bars["trading_date"].to_list()
    text = cli("status", "--store", any_store_url)
    assert text.exit_code == 0, text.stderr
    lines = [line.split() for line in text.stdout.splitlines()]
    assert ["FLAGGED", "2024-11-27"] in lines and ["closed", "2024-11-30"] in lines
    assert ["closed", "2024-11-28,", "2024-11-30..2024-12-01"] in lines
    js = json.loads(cli("status", "--store", any_store_url, "--format", "json").stdout)
    assert {c["symbol"]: c["days_flagged"] for c in js["coverage"]} == {"CL.c.0": 1, "SPY": 0}
