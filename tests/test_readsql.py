"""The one-statement read (hdi/_readsql.py) returns exactly what the step-by-step read returns, on
every store: the same columns, dtypes, values, row order, symbols and raw symbols, over a store with
a roll, overlapping symbology windows, raw-symbol intervals, a rename on one day, two datasets,
instrument ids, trades in one microsecond, and instruments named only by definitions (where it
steps aside)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import polars as pl
import pytest

import hdi
from hdi import _readsql
from hdi._tables import INSTRUMENTS

UTC = dt.UTC


def _defs(rows: list[tuple[int, str, str]]) -> pl.DataFrame:
    recs = []
    for iid, raw, recv in rows:
        t = dt.datetime.fromisoformat(recv).replace(tzinfo=UTC)
        ns = int(t.timestamp()) * 10**9
        recs.append({"instrument_id": iid, "raw_symbol": raw, "received_timestamp_utc": t, "event_timestamp_utc": t,
                     "ts_recv_ns": ns, "ts_event_ns": ns, "expiration": dt.datetime(2024, 12, 20, tzinfo=UTC)})
    df = pl.DataFrame(recs).with_columns(dataset=pl.lit("GLBX.MDP3"), asset=pl.lit("ES"), instrument_class=pl.lit("F"),
                                         data_source=pl.lit("databento"), publisher_id=pl.lit(1))
    return pl.concat([pl.DataFrame(schema=INSTRUMENTS.polars_schema), df], how="diagonal_relaxed")


@pytest.fixture
def filled(store, make_bars, make_trades, make_symbology):
    """CL.c.0: 101 until Jan 10, then 102, with an overlapping second window of 102; raw intervals
    CLF4/CLG4 and a rename of 102 (CLG4 -> CLG4X from Jan 11, both intervals covering Jan 11);
    NG.c.0 in two datasets; 301 named only by a definition; 401 named by nothing."""
    sym = make_symbology([
        ("CL.c.0", 101, "2024-01-02", "2024-01-10"), ("CL.c.0", 102, "2024-01-10", "2024-01-20"),
        ("CL.c.0", 102, "2024-01-12", "2024-01-25"),
        ("CLF4", 101, "2024-01-02", "2024-01-20"), ("CLG4", 102, "2024-01-02", "2024-01-20"),
        ("CLG4X", 102, "2024-01-11", "2024-01-25"),
        ("NG.c.0", 201, "2024-01-02", "2024-01-25"), ("NG.c.0", 201, "2024-01-02", "2024-01-25", "IFUS.IMPACT"),
        ("ZZ.c.0", 301, "2024-01-02", "2024-01-25"),
        ("CL.FUT", 101, "2024-01-02", "2024-01-25", "GLBX.MDP3", "parent"),
        ("CL.FUT", 102, "2024-01-02", "2024-01-25", "GLBX.MDP3", "parent"),
    ])
    bars = [{"instrument_id": iid, "bar_timestamp_utc": f"2024-01-{d:02d}", "price": 70_000_000_000 + 123_456_789 * d}
            for iid in (101, 102, 201, 301, 401) for d in range(8, 16)]
    bars += [{"instrument_id": 201, "dataset": "IFUS.IMPACT", "bar_timestamp_utc": f"2024-01-{d:02d}"}
             for d in range(8, 12)]
    bars += [{"instrument_id": 101, "granularity": "1h", "bar_timestamp_utc": "2024-01-08T01:00:00"}]
    store.write("ohlcv", make_bars(bars), symbology=sym)
    store.write("instruments", _defs([(301, "ZZH4", "2024-01-02")]))
    base = 1_704_888_000_000_000_000  # 2024-01-10T12:00:00Z
    store.write("trades", make_trades(
        [{"instrument_id": 102, "ts_recv_ns": base + 2, "price": 71_000_000_001},  # one microsecond, ns apart:
         {"instrument_id": 101, "ts_recv_ns": base + 7, "price": 71_500_000_000},  # order by ns, then instrument
         {"instrument_id": 102, "ts_recv_ns": base + 1_000_003, "sequence": 2},
         {"instrument_id": 101, "ts_recv_ns": base - 86_400 * 10**9, "rec_ordinal": 1},
         {"instrument_id": 101, "ts_recv_ns": base - 86_400 * 10**9, "rec_ordinal": 0}]))
    return store


QUERIES = [
    ("bars CL.c.0 over the roll", lambda u: hdi.read_bars("CL.c.0", "2024-01-08", "2024-01-16", store=u)),
    ("bars decimal prices", lambda u: hdi.read_bars("CL.c.0", "2024-01-08", "2024-01-16", store=u, prices="decimal")),
    ("bars clipped mid-day", lambda u: hdi.read_bars("CL.c.0", "2024-01-09T12:00:00", "2024-01-13", store=u)),
    ("bars several symbols and an id", lambda u: hdi.read_bars(["NG.c.0", "CL.c.0", "401", "CLG4"], "2024-01-08",
                                                               "2024-01-16", store=u)),
    ("bars one dataset", lambda u: hdi.read_bars("NG.c.0", "2024-01-08", "2024-01-16", store=u,
                                                 dataset="IFUS.IMPACT")),
    ("bars 1h", lambda u: hdi.read_bars("CL.c.0", "2024-01-08", "2024-01-09", "1h", store=u)),
    ("bars in a zone", lambda u: hdi.read_bars("CL.c.0", "2024-01-08", "2024-01-16", store=u,
                                               tz="America/New_York")),
    ("bars exchange zone", lambda u: hdi.read_bars("CL.c.0", "2024-01-08", "2024-01-16", store=u, tz="exchange")),
    ("bars named by a definition", lambda u: hdi.read_bars(["ZZ.c.0"], "2024-01-08", "2024-01-16", store=u)),
    ("bars one symbol without rows", lambda u: hdi.read_bars(["CL.c.0", "999"], "2024-01-08", "2024-01-16",
                                                             store=u)),
    ("trades in one microsecond", lambda u: hdi.read_trades(["CL.c.0", "101"], "2024-01-09", "2024-01-11", store=u)),
    ("trades of a parent in one microsecond", lambda u: hdi.read_trades("CL.FUT", "2024-01-10", "2024-01-11",
                                                                         store=u)),
    ("trades decimal", lambda u: hdi.read_trades(["102", "101"], "2024-01-09", "2024-01-11", store=u,
                                                 prices="decimal")),
]


def _both(query, monkeypatch) -> tuple[pl.DataFrame, pl.DataFrame, list[bool]]:
    """(the read as it runs, the read by the steps alone, whether the one statement answered)."""
    answered: list[bool] = []
    real = _readsql.read

    def spy(*args, **kwargs):
        got = real(*args, **kwargs)
        answered.append(got is not None)
        return got

    monkeypatch.setattr(_readsql, "read", spy)
    fast = query()
    monkeypatch.setattr(_readsql, "read", lambda *a, **k: None)
    steps = query()
    monkeypatch.setattr(_readsql, "read", real)
    return fast, steps, answered


@pytest.mark.parametrize("name,query", QUERIES, ids=[q[0] for q in QUERIES])
def test_one_statement_equals_the_steps(filled, name, query, monkeypatch):
    fast, steps, answered = _both(lambda: query(filled.url), monkeypatch)
    assert fast.schema == steps.schema
    # the order read_* promises (symbol, time, instrument...); rows tied on it (one instrument in two
    # datasets at one time) come in either order, from either path
    key = [c for c in ("symbol", "bar_timestamp_utc", "received_timestamp_utc", "instrument_id", "ts_recv_ns",
                       "rec_ordinal") if c in fast.columns]
    assert fast.select(key).rows() == steps.select(key).rows(), name
    assert sorted(fast.rows(), key=repr) == sorted(steps.rows(), key=repr), name
    assert fast.height > 0
    if filled.kind in _readsql.KINDS and name not in ("bars exchange zone", "bars named by a definition",
                                                      "bars one symbol without rows") and not name.startswith("trades"):
        assert answered and all(answered), f"{name}: the one statement stepped aside"
    if filled.kind == "timescale" and name.startswith("trades"):
        assert not any(answered)  # a lean tick table (migration 8): the store's select reads its ns columns
    if name == "bars named by a definition":
        assert not any(answered)  # a definition names 301: the as-of join decides
        assert fast["raw_symbol"].unique().to_list() == ["ZZH4"]


def test_known_values(filled):
    """The labels themselves (not only equal paths): the roll, the rename on Jan 11, ns order."""
    df = hdi.read_bars("CL.c.0", "2024-01-09", "2024-01-13", store=filled.url)
    assert df.select("instrument_id", "raw_symbol").rows() == [(101, "CLF4"), (102, "CLG4"), (102, "CLG4X"),
                                                               (102, "CLG4X")]
    exact = hdi.read_bars("CL.c.0", "2024-01-09", "2024-01-13", store=filled.url, prices="decimal")
    assert exact["close_price"].to_list() == [Decimal(70_000_000_000 + 123_456_789 * d).scaleb(-9) for d in (9, 10, 11, 12)]
    assert df["close_price"].to_list() == pytest.approx([70 + 0.123456789 * d for d in (9, 10, 11, 12)], abs=1e-9)
    tr = hdi.read_trades("CL.c.0", "2024-01-10", "2024-01-11", store=filled.url)
    assert tr.select("instrument_id", "raw_symbol").rows() == [(102, "CLG4"), (102, "CLG4")]
    # two instruments of one symbol in one microsecond: by the exact time (PostgreSQL keeps microseconds)
    both = hdi.read_trades("CL.FUT", "2024-01-10T12:00:00", "2024-01-10T12:00:01", store=filled.url)
    assert both.select("instrument_id", "ts_recv_ns").rows() == [(102, 1_704_888_000_000_000_002),
                                                                 (101, 1_704_888_000_000_000_007),
                                                                 (102, 1_704_888_000_001_000_003)]
