"""hdi.read_* over both stores: symbol resolution, ranges, price modes, errors."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import polars as pl
import pytest

import hdi
from hdi.errors import QueryError

UTC = dt.UTC


@pytest.fixture
def rolled(store, make_bars, make_symbology):
    """CL.c.0 is contract 101 (CLF4) until 2024-01-10 and 102 (CLG4) from then; both trade daily."""
    days = [f"2024-01-{d:02d}" for d in range(2, 20)]
    bars = [{"instrument_id": iid, "bar_timestamp_utc": d, "price": (70 + iid - 100) * 1_000_000_000}
            for iid in (101, 102) for d in days]
    sym = make_symbology([("CL.c.0", 101, "2024-01-02", "2024-01-10"), ("CL.c.0", 102, "2024-01-10", "2024-01-20"),
                          ("CLF4", 101, "2024-01-02", "2024-01-20"), ("CLG4", 102, "2024-01-02", "2024-01-20")])
    store.write("ohlcv", make_bars(bars), symbology=sym)
    return store.url


def test_continuous_symbol_across_a_roll_returns_each_contract_on_its_days(rolled):
    df = hdi.read_bars("CL.c.0", "2024-01-05", "2024-01-15", store=rolled)
    assert df["instrument_id"].to_list() == [101] * 5 + [102] * 5
    assert df["bar_timestamp_utc"].dt.day().to_list() == list(range(5, 15))
    assert df["symbol"].unique().to_list() == ["CL.c.0"]
    assert df["close_price"].to_list() == [71.0] * 5 + [72.0] * 5


def test_raw_symbol_and_instrument_id_and_several_symbols(rolled):
    raw = hdi.read_bars("CLG4", "2024-01-05", "2024-01-08", store=rolled)
    assert raw["instrument_id"].to_list() == [102] * 3
    by_id = hdi.read_bars("101", "2024-01-05", "2024-01-08", store=rolled)
    assert by_id["instrument_id"].to_list() == [101] * 3 and by_id["symbol"].unique().to_list() == ["101"]
    both = hdi.read_bars(["CLF4", "CL.c.0"], "2024-01-09", "2024-01-11", store=rolled)
    # CL.c.0 picks 101 on the 9th and 102 on the 10th; CLF4 is 101 on both days.
    assert both.select("symbol", "instrument_id").rows() == [
        ("CL.c.0", 101), ("CL.c.0", 102), ("CLF4", 101), ("CLF4", 101)]


def test_comma_separated_symbols_and_date_or_timestamp_bounds(rolled):
    df = hdi.read_bars("CLF4,CLG4", "2024-01-05T00:00:00Z", dt.date(2024, 1, 6), store=rolled)
    assert df.select("symbol", "instrument_id").rows() == [("CLF4", 101), ("CLG4", 102)]


def test_prices_float_by_default_exact_decimal_on_request(rolled):
    f = hdi.read_bars("CLF4", "2024-01-05", "2024-01-06", store=rolled)
    d = hdi.read_bars("CLF4", "2024-01-05", "2024-01-06", store=rolled, prices="decimal")
    assert f.schema["open_price"] == pl.Float64 and f["open_price"].to_list() == [71.0]
    assert d.schema["open_price"] == pl.Decimal(19, 9) and d["open_price"].to_list() == [Decimal("71")]


def test_empty_range_is_a_typed_empty_frame(rolled):
    df = hdi.read_bars("CL.c.0", "2025-01-01", "2025-02-01", store=rolled)
    assert df.height == 0
    assert df.columns[0] == "symbol" and df.schema["bar_timestamp_utc"] == pl.Datetime("ns", "UTC")
    assert hdi.read_bars("CL.c.0", "2024-01-05", "2024-01-06", granularity="1h", store=rolled).height == 0


def test_unknown_symbol_is_an_error_with_a_suggestion(rolled):
    with pytest.raises(QueryError, match=r"symbol 'CL\.c\.O' is not in the store \(did you mean 'CL\.c\.0'\?\)"):
        hdi.read_bars("CL.c.O", "2024-01-05", "2024-01-06", store=rolled)


@pytest.mark.parametrize("kwargs,message", [
    ({"start": "2024-01-06", "end": "2024-01-05"}, "start 2024-01-06T00:00:00+00:00 is not before end"),
    ({"start": "2024-13-01", "end": "2024-12-05"}, "start '2024-13-01' is not a date or ISO-8601 timestamp"),
    ({"granularity": "5min"}, "granularity '5min' is not allowed"),
    ({"granularity": "1D"}, None),
    ({"prices": "cents"}, "prices 'cents' is not allowed; allowed: float, decimal"),
])
def test_bad_arguments_are_clear_errors(rolled, kwargs, message):
    args = {"start": "2024-01-05", "end": "2024-01-06", **kwargs}
    if message is None:
        assert hdi.read_bars("CLF4", store=rolled, **args).height == 1
        return
    with pytest.raises(QueryError, match=re.escape(message)):
        hdi.read_bars("CLF4", store=rolled, **args)


def test_parent_and_raw_symbols_resolve_through_definitions(store, make_bars):
    from hdi._tables import INSTRUMENTS

    defs = pl.DataFrame([
        {"instrument_id": 201, "raw_symbol": "ESH4", "expiration": dt.datetime(2024, 3, 15, tzinfo=UTC)},
        {"instrument_id": 202, "raw_symbol": "ESM4", "expiration": dt.datetime(2024, 6, 21, tzinfo=UTC)},
    ]).with_columns(
        dataset=pl.lit("GLBX.MDP3"), asset=pl.lit("ES"), instrument_class=pl.lit("F"),
        received_timestamp_utc=pl.lit(dt.datetime(2024, 1, 2, tzinfo=UTC)), data_source=pl.lit("databento"),
        event_timestamp_utc=pl.lit(dt.datetime(2024, 1, 2, tzinfo=UTC)), publisher_id=pl.lit(1),
        ts_recv_ns=pl.lit(1_704_153_600_000_000_000), ts_event_ns=pl.lit(1_704_153_600_000_000_000),
    )
    defs = pl.concat([pl.DataFrame(schema=INSTRUMENTS.polars_schema), defs], how="diagonal_relaxed")
    store.write("instruments", defs)
    store.write("ohlcv", make_bars([{"instrument_id": iid, "bar_timestamp_utc": "2024-01-03"} for iid in (201, 202)]))
    parent = hdi.read_bars("ES.FUT", "2024-01-01", "2024-02-01", store=store.url)
    assert parent.select("symbol", "instrument_id").rows() == [("ES.FUT", 201), ("ES.FUT", 202)]
    raw = hdi.read_bars("ESM4", "2024-01-01", "2024-02-01", store=store.url)
    assert raw["instrument_id"].to_list() == [202]


def test_trades_carry_exact_ns_and_a_deterministic_trade_id(store, make_trades, make_symbology):
    ns = 1_704_201_000_123_456_789
    store.write("trades", make_trades([{"ts_recv_ns": ns, "sequence": 5, "rec_ordinal": 0},
                                       {"ts_recv_ns": ns, "sequence": 5, "rec_ordinal": 1}]),
                symbology=make_symbology([("ESH4", 1, "2024-01-02", "2024-01-03")]))
    df = hdi.read_trades("ESH4", "2024-01-02", "2024-01-03", store=store.url)
    assert df["trade_id"].to_list() == [f"1-{ns}-5-0", f"1-{ns}-5-1"]
    assert df["received_timestamp_utc"].cast(pl.Int64).to_list() == [ns, ns]


@pytest.mark.parametrize("zone", ["America/Chicago", "Asia/Tokyo"])
def test_timestamps_are_utc_whatever_the_machine_zone(rolled, zone):
    """A process whose local zone is not UTC reads the same instants, labelled UTC (DuckDB labels a
    TIMESTAMPTZ with its session's zone, which hdi sets to UTC; other stores convert)."""
    import os
    import subprocess
    import sys

    code = ("import sys, hdi; df = hdi.read_bars('CL.c.0', '2024-01-09', '2024-01-11', store=sys.argv[1]); "
            "print(df.schema['bar_timestamp_utc']); print([t.isoformat() for t in df['bar_timestamp_utc']])")
    out = subprocess.run([sys.executable, "-c", code, rolled], env={**os.environ, "TZ": zone}, capture_output=True,
                         text=True, check=True).stdout.splitlines()
    assert out == ["Datetime(time_unit='ns', time_zone='UTC')",
                   "['2024-01-09T00:00:00+00:00', '2024-01-10T00:00:00+00:00']"]
