"""Exchange calendars: the sessions pandas_market_calendars gives, as hdi's Polars schedule."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from hdi.errors import HdiError
from hdi.research.calendars import CalendarError, calendar_for, schedule, with_trading_date

UTC = dt.UTC
D = dt.date
ENERGY = "CMEGlobex_CrudeAndRefined"


def _utc(*a: int) -> dt.datetime:
    return dt.datetime(*a, tzinfo=UTC)


def _row(cal: str, day: dt.date, **kw: bool) -> dict:
    rows = schedule(cal, day, day, **kw).to_dicts()
    return rows[0] if rows else {}


@pytest.mark.parametrize(("dataset", "symbol", "calendar"), [
    ("GLBX.MDP3", "CL", ENERGY), ("GLBX.MDP3", "CLZ4", ENERGY), ("GLBX.MDP3", "CL.FUT", ENERGY),
    ("GLBX.MDP3", "CL.c.0", ENERGY), ("GLBX.MDP3", "HOF25", ENERGY), ("GLBX.MDP3", "RB.v.1", ENERGY),
    ("GLBX.MDP3", "NGZ4", "CMEGlobex_NatGas"), ("GLBX.MDP3", "ESH5", "CME_Equity"),
    ("GLBX.MDP3", "ES.FUT", "CME_Equity"), ("XNAS.ITCH", "SPY", "NYSE"), ("EQUS.MINI", "SPY", "NYSE"),
])
def test_calendar_for(dataset: str, symbol: str, calendar: str) -> None:
    assert calendar_for(dataset, symbol) == calendar


@pytest.mark.parametrize(("dataset", "symbol", "words"), [
    ("GLBX.MDP3", "ZZZ", "symbol 'ZZZ' on GLBX.MDP3"), ("GLBX.MDP3", "CLX", "symbol 'CLX'"),
    ("OPRA.PILLAR", "SPY", "dataset 'OPRA.PILLAR'"),
])
def test_unknown_calendar_is_one_line(dataset: str, symbol: str, words: str) -> None:
    with pytest.raises(CalendarError) as err:
        calendar_for(dataset, symbol)
    assert isinstance(err.value, HdiError) and words in err.value.message and "\n" not in err.value.message


def test_schedule_columns_and_dst_changes() -> None:
    s = schedule(ENERGY, D(2024, 3, 7), D(2024, 3, 12))
    assert s.schema == pl.Schema({"trading_date": pl.Date, "open": pl.Datetime("ns", "UTC"),
                                  "close": pl.Datetime("ns", "UTC"), "early_close": pl.Boolean})
    # the weekend has no row; Sunday 17:00 CDT (22:00 UTC, after the March change) opens Monday
    assert s["trading_date"].to_list() == [D(2024, 3, 7), D(2024, 3, 8), D(2024, 3, 11), D(2024, 3, 12)]
    assert _row(ENERGY, D(2024, 3, 8)) == {"trading_date": D(2024, 3, 8), "open": _utc(2024, 3, 7, 23),
                                           "close": _utc(2024, 3, 8, 22), "early_close": False}
    assert (_row(ENERGY, D(2024, 3, 11))["open"], _row(ENERGY, D(2024, 3, 11))["close"]) == (
        _utc(2024, 3, 10, 22), _utc(2024, 3, 11, 21))
    # November: back to CST on Sunday 2024-11-03
    assert (_row(ENERGY, D(2024, 11, 1))["open"], _row(ENERGY, D(2024, 11, 4))["open"]) == (
        _utc(2024, 10, 31, 22), _utc(2024, 11, 3, 23))


def test_thanksgiving_early_closes_by_product() -> None:
    assert _row(ENERGY, D(2024, 11, 28))["close"] == _utc(2024, 11, 28, 19, 30)
    assert _row(ENERGY, D(2024, 11, 29)) == {"trading_date": D(2024, 11, 29), "open": _utc(2024, 11, 28, 23),
                                             "close": _utc(2024, 11, 29, 18, 45), "early_close": True}
    assert _row("CME_Equity", D(2024, 11, 29))["close"] == _utc(2024, 11, 29, 18)
    assert _row("NYSE", D(2024, 11, 28)) == {}  # closed
    assert _row("NYSE", D(2024, 11, 29))["close"] == _utc(2024, 11, 29, 18)
    assert _row("NYSE", D(2024, 11, 29), extended=True)["open"] == _utc(2024, 11, 29, 9)


def test_monday_holidays() -> None:
    assert _row("NYSE", D(2024, 1, 15)) == {} and _row("NYSE", D(2024, 9, 2)) == {}
    mlk = _row(ENERGY, D(2024, 1, 15))  # Globex trades MLK day until an early halt
    assert mlk["early_close"] and mlk["close"] == _utc(2024, 1, 15, 19, 30)
    assert _row(ENERGY, D(2024, 3, 29)) == {}  # Good Friday: closed
    assert _row(ENERGY, D(2024, 12, 25)) == {}


def test_with_trading_date_break_and_closed_time() -> None:
    s = schedule(ENERGY, D(2024, 11, 27), D(2024, 12, 2))
    ts = [_utc(2024, 11, 27, 21, 59), _utc(2024, 11, 27, 22), _utc(2024, 11, 27, 23), _utc(2024, 11, 28, 19, 29),
          _utc(2024, 11, 28, 19, 30), _utc(2024, 11, 30, 12), _utc(2024, 12, 1, 23)]
    df = pl.DataFrame({"ts": ts}, schema={"ts": pl.Datetime("ns", "UTC")})
    out = with_trading_date(df, "ts", s, bounds=True)
    assert out["trading_date"].to_list() == [D(2024, 11, 27), None, D(2024, 11, 28), D(2024, 11, 28), None,
                                             None, D(2024, 12, 2)]
    assert out["session_close"].to_list()[3] == _utc(2024, 11, 28, 19, 30)


def test_schedule_across_years_and_bad_range() -> None:
    s = schedule(ENERGY, D(2024, 12, 30), D(2025, 1, 3))
    assert s["trading_date"].to_list() == [D(2024, 12, 30), D(2024, 12, 31), D(2025, 1, 2), D(2025, 1, 3)]
    with pytest.raises(CalendarError, match="before its start"):
        schedule(ENERGY, D(2025, 1, 3), D(2024, 1, 1))
    with pytest.raises(CalendarError, match="unknown exchange calendar 'NOPE'"):
        schedule("NOPE", D(2024, 1, 1), D(2024, 1, 2))


def test_extended_applies_to_calendars_with_pre_and_post_market_only() -> None:
    assert schedule(ENERGY, D(2024, 3, 7), D(2024, 3, 8), extended=True).equals(
        schedule(ENERGY, D(2024, 3, 7), D(2024, 3, 8)))
    assert _row("NYSE", D(2024, 3, 7), extended=True)["close"] == _utc(2024, 3, 8, 1)  # 20:00 New York
