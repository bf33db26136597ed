"""Chunk planning and request keys."""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from hdi.errors import ConfigError
from hdi.source.chunks import Request, plan_chunks


def d(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def spans(reqs: list[Request]) -> list[tuple[str, str]]:
    return [(r.start.isoformat()[:19], r.end.isoformat()[:19]) for r in reqs]


def plan(period: str, start: str, end: str, symbols=("CL.c.0",), max_symbols: int = 10) -> list[Request]:
    return plan_chunks("GLBX.MDP3", "ohlcv-1m", "continuous", list(symbols), d(start), d(end), period=period,
                       max_symbols=max_symbols)


def test_day_chunks_clip_the_first_and_last_day():
    assert spans(plan("day", "2024-03-01T12:00", "2024-03-03T06:00")) == [
        ("2024-03-01T12:00:00", "2024-03-02T00:00:00"), ("2024-03-02T00:00:00", "2024-03-03T00:00:00"),
        ("2024-03-03T00:00:00", "2024-03-03T06:00:00")]


def test_week_chunks_start_on_monday():
    # 2024-03-06 is a Wednesday; weeks begin 2024-03-11 and 2024-03-18
    assert spans(plan("week", "2024-03-06", "2024-03-20")) == [
        ("2024-03-06T00:00:00", "2024-03-11T00:00:00"), ("2024-03-11T00:00:00", "2024-03-18T00:00:00"),
        ("2024-03-18T00:00:00", "2024-03-20T00:00:00")]


def test_month_chunks_follow_calendar_months_across_a_year_end():
    assert spans(plan("month", "2023-11-15", "2024-03-01")) == [
        ("2023-11-15T00:00:00", "2023-12-01T00:00:00"), ("2023-12-01T00:00:00", "2024-01-01T00:00:00"),
        ("2024-01-01T00:00:00", "2024-02-01T00:00:00"), ("2024-02-01T00:00:00", "2024-03-01T00:00:00")]


def test_year_chunks():
    assert spans(plan("year", "2022-06-30", "2024-02-01")) == [
        ("2022-06-30T00:00:00", "2023-01-01T00:00:00"), ("2023-01-01T00:00:00", "2024-01-01T00:00:00"),
        ("2024-01-01T00:00:00", "2024-02-01T00:00:00")]


def test_n_day_chunks_are_aligned_to_the_epoch():
    # 1970-01-01 + 7 * 2811 days = 2023-11-16; the next block starts 2023-11-23
    assert date(1970, 1, 1) + timedelta(days=7 * 2811) == date(2023, 11, 16)
    assert spans(plan("7d", "2023-11-20", "2023-12-01")) == [
        ("2023-11-20T00:00:00", "2023-11-23T00:00:00"), ("2023-11-23T00:00:00", "2023-11-30T00:00:00"),
        ("2023-11-30T00:00:00", "2023-12-01T00:00:00")]
    assert spans(plan("1d", "2024-01-01", "2024-01-03")) == spans(plan("day", "2024-01-01", "2024-01-03"))


def test_symbol_groups_keep_order_and_size_within_each_period():
    reqs = plan("month", "2024-01-15", "2024-02-10", symbols=["A", "B", "C", "B", "D", "E"], max_symbols=2)
    assert [(r.start.date().isoformat(), r.symbols) for r in reqs] == [
        ("2024-01-15", ("A", "B")), ("2024-01-15", ("C", "D")), ("2024-01-15", ("E",)),
        ("2024-02-01", ("A", "B")), ("2024-02-01", ("C", "D")), ("2024-02-01", ("E",))]


def test_chunk_boundaries_are_utc_midnights_even_from_other_zones():
    est = timezone(timedelta(hours=-5))
    reqs = plan_chunks("GLBX.MDP3", "ohlcv-1m", "continuous", ["CL.c.0"], datetime(2024, 3, 1, 19, tzinfo=est),
                       datetime(2024, 3, 3, tzinfo=est), period="day", max_symbols=1)
    assert spans(reqs) == [("2024-03-02T00:00:00", "2024-03-03T00:00:00"),
                           ("2024-03-03T00:00:00", "2024-03-03T05:00:00")]
    assert all(r.start.tzinfo == UTC for r in reqs)


@pytest.mark.parametrize(("kw", "text"), [
    ({"period": "mnth"}, "unknown chunk period 'mnth' (did you mean 'month'?); allowed: day, week, month, year, <N>d"),
    ({"period": "0d"}, "unknown chunk period '0d'"),
    ({"max_symbols": 0}, "max_symbols must be at least 1, got 0"),
    ({"symbols": []}, "no symbols to fetch for GLBX.MDP3 ohlcv-1m; give at least one"),
    ({"end": d("2024-01-01")}, "start 2024-01-01T00:00:00Z is not before end 2024-01-01T00:00:00Z"),
])
def test_bad_plans_are_config_errors(kw, text):
    args = {"symbols": ["CL.c.0"], "start": d("2024-01-01"), "end": d("2024-02-01"), "period": "day",
            "max_symbols": 5, **kw}
    with pytest.raises(ConfigError) as info:
        plan_chunks("GLBX.MDP3", "ohlcv-1m", "continuous", args.pop("symbols"), args.pop("start"), args.pop("end"),
                    **args)
    assert text in str(info.value)


def test_request_key_is_stable_and_sensitive_to_every_field():
    base = Request("GLBX.MDP3", "ohlcv-1d", "continuous", ("CL.c.0", "ES.c.0"), d("2024-01-01"), d("2024-02-01"))
    naive = Request("GLBX.MDP3", "ohlcv-1d", "continuous", ["CL.c.0", "ES.c.0"], datetime(2024, 1, 1),
                    datetime(2024, 2, 1))
    assert base == naive and base.key == naive.key
    assert len(base.key) == 16 and int(base.key, 16) >= 0
    text = "GLBX.MDP3|ohlcv-1d|continuous|CL.c.0,ES.c.0|2024-01-01T00:00:00Z|2024-02-01T00:00:00Z"
    assert base.key == hashlib.sha256(text.encode()).hexdigest()[:16] == "03d16c0d7dcc2f1f"  # pinned: cache
    # file names and ledger ids must survive upgrades
    variants = [
        Request("XNAS.ITCH", "ohlcv-1d", "continuous", ("CL.c.0", "ES.c.0"), d("2024-01-01"), d("2024-02-01")),
        Request("GLBX.MDP3", "ohlcv-1m", "continuous", ("CL.c.0", "ES.c.0"), d("2024-01-01"), d("2024-02-01")),
        Request("GLBX.MDP3", "ohlcv-1d", "parent", ("CL.c.0", "ES.c.0"), d("2024-01-01"), d("2024-02-01")),
        Request("GLBX.MDP3", "ohlcv-1d", "continuous", ("ES.c.0", "CL.c.0"), d("2024-01-01"), d("2024-02-01")),
        Request("GLBX.MDP3", "ohlcv-1d", "continuous", ("CL.c.0", "ES.c.0"), d("2024-01-02"), d("2024-02-01")),
        Request("GLBX.MDP3", "ohlcv-1d", "continuous", ("CL.c.0", "ES.c.0"), d("2024-01-01"), d("2024-02-02")),
    ]
    assert len({base.key, *(v.key for v in variants)}) == 7
    assert base.describe() == "GLBX.MDP3 ohlcv-1d CL.c.0,ES.c.0 [2024-01-01T00:00:00Z, 2024-02-01T00:00:00Z)"


def test_request_rejects_empty_symbols_and_backwards_ranges():
    with pytest.raises(ConfigError, match="names no symbols"):
        Request("GLBX.MDP3", "trades", "raw_symbol", (), d("2024-01-01"), d("2024-01-02"))
    with pytest.raises(ConfigError, match="is not before end"):
        Request("GLBX.MDP3", "trades", "raw_symbol", ("ESH4",), d("2024-01-02"), d("2024-01-01"))
