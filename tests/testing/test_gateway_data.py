"""The data the test gateway serves, as the official client and ``DBNStore`` read it."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import polars as pl
import pytest

pytestmark = pytest.mark.filterwarnings("ignore:The inplace keyword in DataFrame.set_index")
FUT5 = ["CL.c.0", "NG.c.0", "HO.c.0", "RB.c.0", "ES.c.0"]
UNDEF_PRICE = 2**63 - 1
UNDEF_TS = 2**64 - 1


def ns(text: str) -> int:
    dt = datetime.fromisoformat(text).replace(tzinfo=UTC)
    return int(dt.timestamp()) * 10**9


def get(client, schema, symbols, start, end, stype_in="continuous", dataset="GLBX.MDP3", **kw):
    return client.timeseries.get_range(dataset=dataset, schema=schema, symbols=symbols, stype_in=stype_in,
                                       start=start, end=end, **kw)


def frame(store) -> pl.DataFrame:
    return pl.from_numpy(store.to_ndarray())


def test_one_year_of_daily_bars_for_five_futures_has_one_bar_per_session_day(client):
    store = get(client, "ohlcv-1d", FUT5, "2025-01-01", "2026-01-01")
    df = store.to_df()
    sessions = sum(1 for i in range(365) if (date(2025, 1, 1) + timedelta(days=i)).weekday() != 5)
    assert sessions == 313
    # the gateway follows the CME Globex calendars: on Good Friday (2025-04-18) the energy products are
    # closed the whole UTC day, ES trades until an early halt; every other Sunday-Friday UTC day has trading
    # (a holiday's UTC day still holds the 17:00 CT reopening)
    expect = dict.fromkeys(FUT5, 312) | {"ES.c.0": 313}
    assert df.groupby("symbol").size().to_dict() == expect
    assert date(2025, 4, 18) not in set(df[df["symbol"] == "CL.c.0"].index.date)
    assert store.metadata.version == 3 and str(store.schema) == "ohlcv-1d"
    assert sorted(store.metadata.symbols) == sorted(FUT5)


@pytest.mark.parametrize("schema", ["trades", "tbbo", "mbp-1", "ohlcv-1s", "ohlcv-1m", "ohlcv-1h", "ohlcv-1d",
                                    "statistics", "definition"])
def test_records_of_a_window_equal_the_records_of_its_parts(client, schema):
    a, c = ns("2024-11-15T20:00:00"), ns("2024-11-19T03:00:00")
    cuts = [ns("2024-11-17T00:00:00"), ns("2024-11-18T13:37:11") + 123_456_789]
    whole = get(client, schema, ["CL.c.0", "ES.c.0"], a, c).to_ndarray()
    parts = [get(client, schema, ["CL.c.0", "ES.c.0"], lo, hi).to_ndarray()
             for lo, hi in zip([a, *cuts], [*cuts, c], strict=True)]
    assert len(whole) > 0
    assert sum(len(p) for p in parts) == len(whole)
    assert b"".join(p.tobytes() for p in parts) == whole.tobytes()


def test_a_split_at_a_shared_nanosecond_keeps_both_trades_together(client):
    a, c = ns("2025-03-04T00:00:00"), ns("2025-03-05T00:00:00")
    whole = get(client, "trades", ["ES.c.0"], a, c).to_ndarray()
    same = np.flatnonzero(whole["ts_recv"][1:] == whole["ts_recv"][:-1])
    assert len(same) > 0
    b = int(whole["ts_recv"][same[0]])
    left = get(client, "trades", ["ES.c.0"], a, b).to_ndarray()
    right = get(client, "trades", ["ES.c.0"], b, c).to_ndarray()
    assert len(left) == same[0] and right["ts_recv"][0] == right["ts_recv"][1] == b
    assert np.concatenate([left, right]).tobytes() == whole.tobytes()


def test_continuous_mapping_splits_at_the_roll_and_matches_symbology_resolve(client):
    store = get(client, "definition", ["CL.c.0"], "2024-11-01", "2024-12-01")
    defs = store.to_df()
    raw = dict(zip(defs["instrument_id"], defs["raw_symbol"], strict=True))
    intervals = [(iv["start_date"], iv["end_date"], raw[int(iv["symbol"])]) for iv in store.mappings["CL.c.0"]]
    d = date.fromisoformat
    assert intervals == [
        (d("2024-11-01"), d("2024-11-02"), "CLZ4"), (d("2024-11-03"), d("2024-11-09"), "CLZ4"),
        (d("2024-11-10"), d("2024-11-16"), "CLZ4"), (d("2024-11-17"), d("2024-11-18"), "CLZ4"),
        (d("2024-11-18"), d("2024-11-23"), "CLF5"), (d("2024-11-24"), d("2024-11-30"), "CLF5"),
    ]
    assert set(defs["symbol"]) == {"CL.c.0"}
    resolved = client.symbology.resolve("GLBX.MDP3", ["CL.c.0"], "continuous", "instrument_id", "2024-11-01",
                                        "2024-12-01")
    assert resolved["result"]["CL.c.0"] == [
        {"d0": a.isoformat(), "d1": b.isoformat(), "s": iv["symbol"]}
        for (a, b, _), iv in zip(intervals, store.mappings["CL.c.0"], strict=True)
    ]
    second = get(client, "definition", ["CL.c.1"], "2024-11-18", "2024-11-19").to_df()
    assert list(second["raw_symbol"]) == ["CLG5"]


def test_parent_symbol_covers_every_listed_contract(client):
    store = get(client, "definition", ["ES.FUT"], "2025-03-10", "2025-03-11", stype_in="parent")
    defs = store.to_df()
    assert sorted(defs["raw_symbol"]) == ["ESH5", "ESH6", "ESM5", "ESM6", "ESU5", "ESZ5"]
    assert set(defs["symbol"]) == {"ES.FUT"}
    assert {int(iv["symbol"]) for iv in store.mappings["ES.FUT"]} == set(defs["instrument_id"])
    front = get(client, "definition", ["ES.c.0"], "2025-03-10", "2025-03-11").to_df()
    assert list(front["raw_symbol"]) == ["ESH5"]
    bars = get(client, "ohlcv-1d", ["ES.FUT"], "2025-03-10", "2025-03-11", stype_in="parent").to_df()
    assert set(bars["instrument_id"]) <= set(defs["instrument_id"]) and len(bars) >= 2


def test_raw_symbol_expiring_inside_the_window_is_partial(client):
    store = get(client, "trades", ["CLZ4"], "2024-11-19", "2024-12-01", stype_in="raw_symbol")
    assert store.metadata.partial == ["CLZ4"] and store.metadata.not_found == []
    assert store.mappings["CLZ4"][-1]["end_date"] == date(2024, 11, 21)
    arr = store.to_ndarray()
    assert len(arr) > 0 and int(arr["ts_event"].max()) < ns("2024-11-20T19:30:00")


@pytest.mark.parametrize(("symbol", "lo", "hi", "tick"), [
    ("CL.c.0", 40, 110, 0.01), ("NG.c.0", 1.0, 6.0, 0.001), ("HO.c.0", 1.5, 4.0, 0.0001),
    ("RB.c.0", 1.2, 3.5, 0.0001), ("ES.c.0", 4000, 6500, 0.25),
])
def test_futures_prices_are_realistic_and_on_the_tick(client, symbol, lo, hi, tick):
    df = frame(get(client, "ohlcv-1d", [symbol], "2024-01-01", "2026-01-01"))
    for col in ("open", "high", "low", "close"):
        assert lo * 1e9 <= df[col].min() and df[col].max() <= hi * 1e9, col
        assert (df[col] % round(tick * 1e9) == 0).all(), col


@pytest.mark.parametrize(("dataset", "symbol", "lo", "hi"), [
    ("EQUS.MINI", "SPY", 380, 650), ("EQUS.MINI", "QQQ", 320, 560), ("XNAS.ITCH", "NVDA", 70, 200),
])
def test_equity_prices_are_realistic(client, dataset, symbol, lo, hi):
    df = frame(get(client, "ohlcv-1d", [symbol], "2024-01-01", "2026-01-01", stype_in="raw_symbol",
                   dataset=dataset))
    weekdays = sum(1 for i in range(731) if (date(2024, 1, 1) + timedelta(days=i)).weekday() < 5)
    assert weekdays == 523
    # NYSE holidays are closed: 252 trading days in 2024, 250 in 2025 (pandas_market_calendars' NYSE)
    import pandas_market_calendars as mcal

    assert len(df) == len(mcal.get_calendar("NYSE").valid_days("2024-01-01", "2025-12-31")) == 502
    assert lo * 1e9 <= df["low"].min() and df["high"].max() <= hi * 1e9


def test_bars_are_built_from_trades_and_coarser_bars_from_finer(client):
    day = ("2025-03-04", "2025-03-05")
    trades = frame(get(client, "trades", ["ES.c.0"], *day)).sort("ts_event", maintain_order=True)

    def agg(df: pl.DataFrame, key: pl.Expr, o="price", h="price", lo="price", c="price", v="size"):
        return (df.group_by(key.alias("ts_event"), maintain_order=True)
                .agg(pl.col(o).first().alias("open"), pl.col(h).max().alias("high"), pl.col(lo).min().alias("low"),
                     pl.col(c).last().alias("close"), pl.col(v).sum().cast(pl.UInt64).alias("volume"))
                .sort("ts_event"))

    cols = ["ts_event", "open", "high", "low", "close", "volume"]
    for schema, unit in (("ohlcv-1s", 10**9), ("ohlcv-1m", 60 * 10**9)):
        bars = frame(get(client, schema, ["ES.c.0"], *day)).select(cols)
        expect = agg(trades, pl.col("ts_event") - pl.col("ts_event") % unit)
        assert bars.equals(expect.with_columns(pl.col("ts_event").cast(pl.UInt64))), schema
    minute = frame(get(client, "ohlcv-1m", ["ES.c.0"], *day))
    for schema, unit in (("ohlcv-1h", 3600 * 10**9), ("ohlcv-1d", 86_400 * 10**9)):
        bars = frame(get(client, schema, ["ES.c.0"], *day)).select(cols)
        expect = agg(minute, pl.col("ts_event") - pl.col("ts_event") % unit, "open", "high", "low", "close", "volume")
        assert bars.equals(expect.with_columns(pl.col("ts_event").cast(pl.UInt64))), schema
    assert (minute["volume"] >= 1).all()
    ok = minute.select((pl.col("high") >= pl.max_horizontal("open", "close"))
                       & (pl.col("low") <= pl.min_horizontal("open", "close")))
    assert ok.to_series().all()


def test_a_quiet_contract_has_no_bar_in_minutes_without_trades(client):
    far = frame(get(client, "ohlcv-1m", ["CL.c.5"], "2025-03-04", "2025-03-05"))
    trades = frame(get(client, "trades", ["CL.c.5"], "2025-03-04", "2025-03-05"))
    minutes = (trades["ts_event"] - trades["ts_event"] % (60 * 10**9)).unique().sort()
    assert 0 < len(far) < 1320 and far["ts_event"].to_list() == minutes.to_list()


def test_same_nanosecond_trades_include_identical_records_and_all_are_kept(client):
    store = get(client, "trades", ["CL.c.0"], "2025-03-04", "2025-03-05")
    arr = store.to_ndarray()
    raw = arr.view(np.dtype((np.void, arr.dtype.itemsize)))
    identical = np.flatnonzero(raw[1:] == raw[:-1])
    same_ns = np.flatnonzero(arr["ts_recv"][1:] == arr["ts_recv"][:-1])
    assert len(identical) >= 1 and len(same_ns) > len(identical)
    assert len(store.to_df()) == len(arr)
    df = frame(store)
    assert set(df["side"].cast(pl.String)) == {"A", "B", "N"}
    assert (df["ts_recv"] > df["ts_event"]).all()
    assert (arr["action"] == b"T").all()


def test_tbbo_and_mbp1_quotes_are_sane(client):
    tbbo = frame(get(client, "tbbo", ["NG.c.0"], "2025-03-04", "2025-03-05"))
    trades = frame(get(client, "trades", ["NG.c.0"], "2025-03-04", "2025-03-05"))
    assert len(tbbo) == len(trades)
    assert (tbbo["bid_px_00"] < tbbo["ask_px_00"]).all()
    buys = tbbo.filter(pl.col("side") == b"B")
    assert (buys["price"] == buys["ask_px_00"]).all()
    mbp = frame(get(client, "mbp-1", ["NG.c.0"], "2025-03-04", "2025-03-05"))
    empty_ask = mbp.filter(pl.col("ask_px_00") == UNDEF_PRICE)
    assert len(empty_ask) == 1 and empty_ask["ask_sz_00"][0] == 0
    both = mbp.filter(pl.col("ask_px_00") != UNDEF_PRICE)
    assert (both["bid_px_00"] < both["ask_px_00"]).all()
    assert set(mbp["action"].cast(pl.String)) == {"A", "T"}


def test_statistics_carry_settlement_volume_and_open_interest(client):
    store = get(client, "statistics", ["CL.c.0"], "2025-03-04", "2025-03-05")
    df = frame(store)
    assert sorted(set(df["stat_type"])) == [3, 4, 5, 6, 9]
    assert (df["ts_ref"] != UNDEF_TS).all()
    settle = df.filter(pl.col("stat_type") == 3)
    assert list(settle["stat_flags"]) == [2, 3] and (settle["quantity"] == 2**63 - 1).all()
    oi = df.filter(pl.col("stat_type") == 9)
    assert (oi["price"] == UNDEF_PRICE).all() and oi["quantity"][0] > 0
    assert oi["ts_ref"][0] == ns("2025-03-03T00:00:00")  # the previous session, published next morning
    bar = frame(get(client, "ohlcv-1d", ["CL.c.0"], "2025-03-04", "2025-03-05"))
    prev = frame(get(client, "ohlcv-1d", ["CL.c.0"], "2025-03-03", "2025-03-04"))
    # the settlement is the last 1m close before the session's 16:00 CT (22:00 UTC in March, before DST)
    m1 = frame(get(client, "ohlcv-1m", ["CL.c.0"], "2025-03-04", "2025-03-05"))
    assert settle["price"][1] == m1.filter(pl.col("ts_event") < ns("2025-03-04T22:00:00"))["close"][-1]
    assert settle["price"][1] != bar["close"][0]  # not the UTC day's close (that is in the next session)
    assert df.filter(pl.col("stat_type") == 5)["price"][0] == bar["high"][0]
    assert df.filter(pl.col("stat_type") == 6)["quantity"][0] == prev["volume"][0]


def test_definitions_one_per_instrument_per_session_day(client):
    df = get(client, "definition", ["CL.c.0", "ES.c.0"], "2025-03-01", "2025-03-08").to_df()
    assert len(df) == 12  # Sunday-Friday, two instruments; Saturday has no session
    es = df[df["raw_symbol"] == "ESH5"].iloc[0]
    assert (es["asset"], es["exchange"], es["currency"], es["security_type"], es["instrument_class"]) == (
        "ES", "XCME", "USD", "FUT", "F")
    assert es["min_price_increment"] == 0.25 and es["unit_of_measure_qty"] == 50
    assert es["expiration"] == datetime(2025, 3, 21, 13, 30, tzinfo=UTC)
    assert es["activation"] < es["expiration"]
    spy = get(client, "definition", ["SPY"], "2025-03-03", "2025-03-04", stype_in="raw_symbol",
              dataset="EQUS.MINI").to_df()
    assert (spy["raw_symbol"].iloc[0], spy["security_type"].iloc[0], spy["instrument_class"].iloc[0]) == (
        "SPY", "STK", "K")


def test_trading_sessions(client):
    week = frame(get(client, "trades", ["CL.c.0"], "2025-03-01", "2025-03-08"))
    t = week["ts_event"].cast(pl.Int64).cast(pl.Datetime("ns"))
    assert not (t.dt.weekday() == 6).any()  # Saturday
    assert not (t.dt.hour() == 22).any()  # daily break
    sunday = t.filter(t.dt.weekday() == 7)
    assert len(sunday) > 0 and (sunday.dt.hour() == 23).all()
    assert not ((t.dt.weekday() == 5) & (t.dt.hour() >= 22)).any()  # Friday close
    spy = frame(get(client, "trades", ["SPY"], "2025-03-01", "2025-03-08", stype_in="raw_symbol",
                    dataset="EQUS.MINI"))
    minutes = (spy["ts_event"] % (86_400 * 10**9)) // (60 * 10**9)
    assert minutes.min() >= 870 and minutes.max() < 1260
    assert 300e9 < spy["price"].mean() < 700e9


def test_no_trade_days_have_mappings_but_no_records(client, gateway):
    gateway.add_no_trade_day("GLBX.MDP3", "CL.c.0", date(2025, 3, 5))
    for schema in ("ohlcv-1d", "trades", "statistics", "definition"):
        store = get(client, schema, ["CL.c.0", "ES.c.0"], "2025-03-04", "2025-03-07")
        df = store.to_df()
        cl_days = {ts.date() for ts in df[df["symbol"] == "CL.c.0"].index}
        es_days = {ts.date() for ts in df[df["symbol"] == "ES.c.0"].index}
        assert date(2025, 3, 5) not in cl_days and {date(2025, 3, 4), date(2025, 3, 6)} <= cl_days, schema
        assert date(2025, 3, 5) in es_days, schema
        assert store.mappings["CL.c.0"] == [{"start_date": date(2025, 3, 4), "end_date": date(2025, 3, 7),
                                             "symbol": store.mappings["CL.c.0"][0]["symbol"]}]


def test_costs_are_consistent_with_the_data(client):
    kw = {"dataset": "GLBX.MDP3", "schema": "ohlcv-1m", "symbols": ["CL.c.0", "NG.c.0"], "stype_in": "continuous",
          "start": "2025-03-03", "end": "2025-03-05"}
    n = len(client.timeseries.get_range(**kw).to_ndarray())
    assert client.metadata.get_record_count(**kw) == n
    assert client.metadata.get_billable_size(**kw) == n * 56
    assert client.metadata.get_cost(**kw) == pytest.approx(n * 56 * 1.5 / 1e9, rel=1e-12)
    limited = client.timeseries.get_range(**kw, limit=10).to_ndarray()
    assert limited.tobytes() == client.timeseries.get_range(**kw).to_ndarray()[:10].tobytes()
    assert client.metadata.get_record_count(**kw, limit=10) == 10


def test_time_formats_the_client_can_send_select_the_same_records(client):
    forms = ["2025-03-04T14:00:00+00:00", "2025-03-04T14:00:00Z", "2025-03-04 09:00:00-05:00",
             ns("2025-03-04T14:00:00")]
    outs = [get(client, "trades", ["ES.c.0"], f, "2025-03-04T14:05").to_ndarray().tobytes() for f in forms]
    assert len(set(outs)) == 1 and len(outs[0]) > 0
    a = get(client, "ohlcv-1d", ["ES.c.0"], date(2025, 3, 4), datetime(2025, 3, 6, tzinfo=UTC)).to_ndarray()
    assert len(a) == 2


def test_dataset_metadata_endpoints(client):
    assert client.metadata.list_datasets() == ["EQUS.MINI", "GLBX.MDP3", "XNAS.ITCH"]
    assert "statistics" in client.metadata.list_schemas("GLBX.MDP3")
    assert "statistics" not in client.metadata.list_schemas("EQUS.MINI")
    rng = client.metadata.get_dataset_range("GLBX.MDP3")
    assert (rng["start"], rng["end"]) == ("2010-06-06T00:00:00.000000000Z", "2026-01-15T00:00:00.000000000Z")
    assert rng["schema"]["trades"]["end"] == rng["end"]


def test_instrument_id_and_all_symbols_requests(client):
    front = get(client, "definition", ["ES.c.0"], "2025-03-04", "2025-03-05").to_df()
    iid = int(front["instrument_id"].iloc[0])
    by_id = get(client, "ohlcv-1d", [str(iid)], "2025-03-04", "2025-03-05", stype_in="instrument_id")
    assert list(by_id.mappings) == [str(iid)] and len(by_id.to_ndarray()) == 1
    everything = get(client, "ohlcv-1d", "ALL_SYMBOLS", "2025-03-04", "2025-03-05", stype_in="raw_symbol",
                     dataset="EQUS.MINI")
    assert sorted(everything.mappings) == ["NVDA", "QQQ", "SPY"]
    assert sorted(everything.to_df()["symbol"]) == ["NVDA", "QQQ", "SPY"]


@pytest.mark.parametrize("schema", ["trades", "tbbo", "mbp-1", "ohlcv-1s", "ohlcv-1m", "ohlcv-1h", "statistics",
                                    "definition"])
def test_record_count_equals_the_records_served(client, gateway, schema):
    gateway.add_no_trade_day("GLBX.MDP3", "NG.c.0", date(2025, 3, 5))
    for start, end in (("2025-03-03", "2025-03-07"), ("2025-03-03T13:30", "2025-03-06T02:00")):
        kw = {"dataset": "GLBX.MDP3", "schema": schema, "symbols": ["CL.c.0", "NG.c.0", "CL.c.1"],
              "stype_in": "continuous", "start": start, "end": end}
        assert client.metadata.get_record_count(**kw) == len(client.timeseries.get_range(**kw).to_ndarray())
