"""hdi.read_trades / read_tbbo / read_mbp1 / read_statistics / read_definitions over both stores, on
rows written straight to the store: frame shapes, latest-statistic semantics, validity intervals,
symbol labels and dataset filters."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import polars as pl
import pytest

import hdi
from hdi._tables import INSTRUMENTS, MBP1, STATISTICS, TBBO, TRADES, Table
from hdi.errors import QueryError

UTC = dt.UTC
DAY = 86_400 * 10**9
T0 = 1_731_628_800 * 10**9  # 2024-11-15T00:00:00Z


def _ts(ns_col: str) -> pl.Expr:
    return pl.col(ns_col).cast(pl.Datetime("ns")).dt.replace_time_zone("UTC")


def _frame(table: Table, rows: list[dict], base: dict) -> pl.DataFrame:
    """A frame of ``table`` from dicts of raw values: ``*_ns`` ints drive their timestamp columns,
    prices are fixed-point ints (1e-9)."""
    df = pl.DataFrame([{**base, **r} for r in rows])
    exprs = [_ts(ns).alias(ts) for ts, ns in table.ns_columns if ns in df.columns]
    exprs += [(pl.col(c).cast(pl.Decimal(38, 0)) * pl.lit(Decimal("1e-9"), pl.Decimal(10, 9))).alias(c)
              for c in table.price_columns if c in df.columns]
    df = df.with_columns(exprs)
    return pl.concat([pl.DataFrame(schema=table.polars_schema), df], how="diagonal_relaxed").select(table.names)


def _stat_rows(rows: list[dict]) -> pl.DataFrame:
    base = {"dataset": "GLBX.MDP3", "instrument_id": 124299, "statistic_value_text": None, "quantity": None,
            "price": None, "ts_ref_ns": None, "ts_in_delta": 0, "update_action": 1, "stat_flags": 0,
            "channel_id": 0, "publisher_id": 1, "rec_ordinal": 0, "data_source": "databento", "sequence": 1}
    df = _frame(STATISTICS, [{**r, "ts_event_ns": r["ts_recv_ns"] - 1_000} for r in rows], base)
    names = {3: "SETTLEMENT_PRICE", 9: "OPEN_INTEREST", 5: "TRADING_SESSION_HIGH_PRICE"}
    return df.with_columns(
        pl.col("stat_type").replace_strict(names, return_dtype=pl.String).alias("statistic_name"),
        pl.when(pl.col("stat_type") == 9).then(pl.col("quantity").cast(pl.Decimal(28, 9)))
        .otherwise(pl.col("price").cast(pl.Decimal(28, 9))).alias("statistic_value_numeric"),
        pl.coalesce(_ts("ts_ref_ns"), pl.col("event_timestamp_utc")).dt.date().alias("effective_date_utc"),
    )


@pytest.fixture
def symbology(make_symbology) -> pl.DataFrame:
    return make_symbology([("CL.c.0", 124299, "2024-11-15", "2024-11-18"), ("CL.c.0", 124300, "2024-11-18", "2024-11-20"),
                           ("CLZ4", 124299, "2024-11-14", "2024-11-20")])


# ----------------------------------------------------------------------------------- shapes
READS = [("trades", hdi.read_trades, ["symbol", "raw_symbol", "trade_id", *TRADES.names]),
         ("tbbo", hdi.read_tbbo, ["symbol", "raw_symbol", *TBBO.names]),
         ("mbp1", hdi.read_mbp1, ["symbol", "raw_symbol", *MBP1.names]),
         ("statistics", hdi.read_statistics, ["symbol", "raw_symbol", *STATISTICS.names]),
         ("instruments", hdi.read_definitions, ["symbol", *INSTRUMENTS.names, "valid_to", "valid_from"])]


@pytest.mark.parametrize("table,read,columns", READS, ids=[r[0] for r in READS])
def test_a_range_without_rows_is_a_typed_empty_frame_with_the_reader_columns(store, symbology, table, read, columns):
    store.write_symbology(symbology)
    df = read("CL.c.0", "2024-11-15", "2024-11-16", store=store.url)
    assert df.height == 0 and df.columns == columns
    assert df.schema["symbol"] == pl.String
    if "received_timestamp_utc" in df.columns:
        assert df.schema["received_timestamp_utc"] == pl.Datetime("ns", "UTC")


def test_tick_readers_give_float_or_exact_decimal_prices(store, symbology):
    tbbo = _frame(TBBO, [{"ts_recv_ns": T0 + 123_456_789}], {
        "dataset": "GLBX.MDP3", "instrument_id": 124299, "ts_event_ns": T0 + 123_000_001, "bid_price": 70_120_000_000,
        "bid_size": 3, "bid_count": 2, "ask_price": 70_130_000_000, "ask_size": 4, "ask_count": 1,
        "trade_price": 70_130_000_000, "trade_size": 1, "trade_side": "buy", "flags": 0, "sequence": 9,
        "ts_in_delta": 0, "publisher_id": 1, "rec_ordinal": 0, "data_source": "databento"})
    store.write("tbbo", tbbo, symbology=symbology)
    f = hdi.read_tbbo("CLZ4", "2024-11-15", "2024-11-16", store=store.url)
    d = hdi.read_tbbo("CLZ4", "2024-11-15", "2024-11-16", store=store.url, prices="decimal")
    assert f.select("bid_price", "ask_price", "trade_price").row(0) == (70.12, 70.13, 70.13)
    assert d.select("bid_price", "ask_price", "trade_price").row(0) == (Decimal("70.12"), Decimal("70.13"),
                                                                         Decimal("70.13"))
    assert d.schema["bid_price"] == pl.Decimal(19, 9)
    assert d["quote_timestamp_utc"].dt.epoch("ns").to_list() == [T0 + 123_000_001]
    assert d["received_timestamp_utc"].dt.epoch("ns").to_list() == [T0 + 123_456_789]


def test_a_row_selected_by_two_symbols_is_returned_under_each(store, make_trades, symbology):
    store.write("trades", make_trades([{"instrument_id": 124299, "ts_recv_ns": T0 + 5}]), symbology=symbology)
    df = hdi.read_trades(["CL.c.0", "CLZ4"], "2024-11-15", "2024-11-16", store=store.url)
    assert df.select("symbol", "trade_id").rows() == [("CL.c.0", f"124299-{T0 + 5}-1-0"),
                                                      ("CLZ4", f"124299-{T0 + 5}-1-0")]


def test_dataset_restricts_an_instrument_id_present_in_two_datasets(store, make_trades):
    rows = [{"dataset": "GLBX.MDP3", "instrument_id": 7, "ts_recv_ns": T0 + 1, "price": 70_000_000_000},
            {"dataset": "XNAS.ITCH", "instrument_id": 7, "ts_recv_ns": T0 + 2, "price": 500_000_000_000}]
    store.write("trades", make_trades(rows))
    both = hdi.read_trades("7", "2024-11-15", "2024-11-16", store=store.url)
    nasdaq = hdi.read_trades("7", "2024-11-15", "2024-11-16", store=store.url, dataset="XNAS.ITCH")
    assert both["dataset"].to_list() == ["GLBX.MDP3", "XNAS.ITCH"]
    assert nasdaq.select("dataset", "price").rows() == [("XNAS.ITCH", 500.0)]


# ----------------------------------------------------------------------------------- statistics
def test_latest_statistic_per_instrument_stat_and_effective_date(store, symbology):
    d14, d15 = T0 - DAY, T0
    rows = [
        # settlement of the 14th: preliminary, then final; then the 15th's, published the same evening
        {"stat_type": 3, "price": 70_000_000_000, "ts_ref_ns": d14, "ts_recv_ns": d14 + 70_000 * 10**9, "sequence": 1},
        {"stat_type": 3, "price": 70_250_000_000, "ts_ref_ns": d14, "ts_recv_ns": d14 + 81_000 * 10**9, "sequence": 2},
        {"stat_type": 3, "price": 71_000_000_000, "ts_ref_ns": d15, "ts_recv_ns": d15 + 81_000 * 10**9, "sequence": 3},
        # open interest of the 14th published on the 15th, corrected later the same day
        {"stat_type": 9, "quantity": 1_000, "ts_ref_ns": d14, "ts_recv_ns": d15 + 36_000 * 10**9, "sequence": 4},
        {"stat_type": 9, "quantity": 1_100, "ts_ref_ns": d14, "ts_recv_ns": d15 + 36_500 * 10**9, "sequence": 5},
        # a session high without ts_ref: its date comes from ts_event; withdrawn by a delete
        {"stat_type": 5, "price": 72_000_000_000, "ts_recv_ns": d15 + 79_000 * 10**9, "sequence": 6},
        {"stat_type": 5, "price": 72_000_000_000, "ts_recv_ns": d15 + 79_001 * 10**9, "sequence": 7,
         "update_action": 2},
    ]
    store.write("statistics", _stat_rows(rows), symbology=symbology)
    every = hdi.read_statistics("CLZ4", "2024-11-14", "2024-11-16", store=store.url, latest=False)
    assert every.height == len(rows)
    latest = hdi.read_statistics("CLZ4", "2024-11-14", "2024-11-16", store=store.url, prices="decimal")
    assert latest.select("statistic_name", "effective_date_utc", "statistic_value_numeric").rows() == [
        ("SETTLEMENT_PRICE", dt.date(2024, 11, 14), Decimal("70.25")),
        ("OPEN_INTEREST", dt.date(2024, 11, 14), Decimal(1100)),
        ("SETTLEMENT_PRICE", dt.date(2024, 11, 15), Decimal("71")),
    ]
    # the window bounds ts_recv: read up to the 15th only, the 14th's final settlement is the latest
    early = hdi.read_statistics("CLZ4", "2024-11-14", "2024-11-15", store=store.url)
    assert early.select("statistic_name", "statistic_value_numeric").rows() == [("SETTLEMENT_PRICE", 70.25)]


def test_latest_statistic_breaks_a_same_nanosecond_tie_by_venue_sequence(store, symbology):
    t = T0 + 80_000 * 10**9
    rows = [{"stat_type": 3, "price": 71_000_000_000, "ts_ref_ns": T0, "ts_recv_ns": t, "sequence": 41,
             "update_action": 2},
            {"stat_type": 3, "price": 71_000_000_000, "ts_ref_ns": T0, "ts_recv_ns": t, "sequence": 40}]
    store.write("statistics", _stat_rows(rows), symbology=symbology)
    assert hdi.read_statistics("CLZ4", "2024-11-15", "2024-11-16", store=store.url).height == 0
    assert hdi.read_statistics("CLZ4", "2024-11-15", "2024-11-16", store=store.url, latest=False).height == 2


# ----------------------------------------------------------------------------------- definitions
def _definitions(days: list[int]) -> pl.DataFrame:
    base = {"dataset": "GLBX.MDP3", "instrument_id": 124299, "raw_symbol": "CLZ4", "instrument_class": "F",
            "asset": "CL", "currency": "USD", "publisher_id": 1, "data_source": "databento",
            "min_price_increment": 10_000_000}
    df = _frame(INSTRUMENTS, [{"ts_recv_ns": T0 + d * DAY, "ts_event_ns": T0 + d * DAY} for d in days], base)
    return df.with_columns(pl.lit(dt.datetime(2024, 11, 20, 19, 30, tzinfo=UTC)).alias("expiration"))


def test_definitions_are_valid_until_the_next_stored_one_even_outside_the_window(store):
    store.write("instruments", _definitions([0, 2, 3]))
    whole = hdi.read_definitions("CLZ4", "2024-11-15", "2024-11-19", store=store.url)
    assert whole.select("valid_from", "valid_to").rows() == [
        (dt.datetime(2024, 11, 15, tzinfo=UTC), dt.datetime(2024, 11, 17, tzinfo=UTC)),
        (dt.datetime(2024, 11, 17, tzinfo=UTC), dt.datetime(2024, 11, 18, tzinfo=UTC)),
        (dt.datetime(2024, 11, 18, tzinfo=UTC), None),
    ]
    first = hdi.read_definitions("CLZ4", "2024-11-15", "2024-11-16", store=store.url)
    assert first.select("valid_from", "valid_to").rows() == whole.select("valid_from", "valid_to").rows()[:1]
    assert first["min_price_increment"].to_list() == [0.01]


def test_parent_symbol_without_definitions_is_an_unknown_symbol(store, symbology):
    store.write_symbology(symbology)
    with pytest.raises(QueryError, match=r"symbol .CL\.FUT. is not in the store; ingest it first, or pass an instrument id; known symbols include: CL\.c\.0, CLZ4"):
        hdi.read_trades("CL.FUT", "2024-11-15", "2024-11-16", store=store.url)
