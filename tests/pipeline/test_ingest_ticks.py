"""End to end for tick tables: the real databento client against the local gateway (trades, tbbo,
mbp-1, statistics, definitions) and hand-written DBN files (statistics deletes, sub-µs timestamps),
into both stores.

The gateway's synthetic market: CL.c.0 rolls CLZ4 (id 124299) -> CLF5 (id 124300) on 2024-11-18;
a few trades per instrument-day share the nanosecond (and the sequence) of the one before, about
half of them byte-identical.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import NamedTuple

import databento as db
import databento_dbn as dbn
import numpy as np
import pandas as pd
import polars as pl
import pytest

import hdi
from hdi import _config as config
from hdi.pipeline import ingest

pytestmark = pytest.mark.filterwarnings("ignore:The inplace keyword in DataFrame.set_index")

CLZ4, CLF5 = 124299, 124300
ROLL = dt.date(2024, 11, 18)
READERS = {"trades": hdi.read_trades, "tbbo": hdi.read_tbbo, "mbp1": hdi.read_mbp1,
           "statistics": lambda *a, **k: hdi.read_statistics(*a, latest=False, **k),
           "definitions": hdi.read_definitions}
# (recipe, start, end, symbols): small ranges; CL.c.0 and SPY come from two datasets (two requests).
CASES = [
    ("trades", "2024-03-04T14:00:00Z", "2024-03-04T16:00:00Z", ["CL.c.0", "SPY"]),
    ("tbbo", "2024-03-04T14:00:00Z", "2024-03-04T16:00:00Z", ["CL.c.0", "SPY"]),
    ("mbp1", "2024-03-04T14:00:00Z", "2024-03-04T15:00:00Z", ["CL.c.0", "SPY"]),
    ("statistics", "2024-03-04", "2024-03-09", ["CL.c.0", "ES.c.0"]),
    ("definitions", "2024-03-04", "2024-03-07", ["CL.c.0", "SPY"]),
]


def _raw_files(dataset: str, schema: str) -> list[Path]:
    """The DBN files the run downloaded (the raw cache), exactly as the gateway sent them."""
    return sorted((config.cache_dir() / dataset / schema).glob("*.dbn.zst"))


def _raw_records(dataset: str, schema: str) -> np.ndarray:
    arrays = [db.DBNStore.from_file(p).to_ndarray() for p in _raw_files(dataset, schema)]
    return np.concatenate(arrays) if arrays else np.empty(0)


# ----------------------------------------------------------------------------------- every tick recipe
@pytest.mark.parametrize("recipe,start,end,symbols", CASES, ids=[c[0] for c in CASES])
def test_tick_recipe_loads_everything_then_reruns_add_nothing(gateway, any_store_url, recipes_dir, recipe, start,
                                                              end, symbols):
    first = ingest(recipes_dir / f"{recipe}.yaml", start=start, end=end, symbols=symbols, store=any_store_url)
    assert first.ok, [c.error for c in first.chunks]
    assert first.rows_loaded == first.rows_fetched > 0 and first.rows_quarantined == 0
    got = READERS[recipe](symbols, start, end, store=any_store_url)
    assert got.height == first.rows_loaded
    assert set(got["symbol"]) == set(symbols)
    downloads = len(gateway.calls("timeseries.get_range"))

    second = ingest(recipes_dir / f"{recipe}.yaml", start=start, end=end, symbols=symbols, store=any_store_url)
    assert second.ok and second.rows_loaded == 0 and second.count("skipped") == len(second.chunks)
    assert len(gateway.calls("timeseries.get_range")) == downloads
    # Forced through the store again (cached files, every row re-written): the natural keys hold.
    forced = ingest(recipes_dir / f"{recipe}.yaml", start=start, end=end, symbols=symbols, store=any_store_url,
                    refresh=True)
    assert forced.ok and forced.rows_loaded == 0
    assert forced.rows_already_present == forced.rows_fetched == first.rows_fetched
    assert READERS[recipe](symbols, start, end, store=any_store_url).height == got.height


def test_tbbo_rows_carry_both_sides_of_the_book_and_the_trade(gateway, any_store_url, recipes_dir):
    start, end = "2024-03-04T14:30:00Z", "2024-03-04T15:00:00Z"
    assert ingest(recipes_dir / "tbbo.yaml", start=start, end=end, symbols="SPY", store=any_store_url).ok
    got = hdi.read_tbbo("SPY", start, end, store=any_store_url, prices="decimal").sort("ts_recv_ns", "sequence",
                                                                                       "rec_ordinal")
    raw = _raw_records("EQUS.MINI", "tbbo")
    raw = raw[np.lexsort((raw["sequence"], raw["ts_recv"]))]
    assert got.height == len(raw) > 100
    assert got["ts_recv_ns"].to_list() == raw["ts_recv"].astype(np.int64).tolist()
    for mine, theirs in (("bid_price", "bid_px_00"), ("ask_price", "ask_px_00"), ("trade_price", "price")):
        assert got[mine].to_list() == [Decimal(int(v)).scaleb(-9) for v in raw[theirs]], mine
    for mine, theirs in (("bid_size", "bid_sz_00"), ("bid_count", "bid_ct_00"), ("ask_size", "ask_sz_00"),
                         ("ask_count", "ask_ct_00"), ("trade_size", "size")):
        assert got[mine].to_list() == raw[theirs].astype(np.int64).tolist(), mine
    sides = {b"B": "buy", b"A": "sell", b"N": None}
    assert got["trade_side"].to_list() == [sides[s] for s in raw["side"]]


# ----------------------------------------------------------------------------------- same-nanosecond trades
def test_same_nanosecond_trades_are_all_stored_including_byte_identical_ones(gateway, any_store_url, recipes_dir):
    r = ingest(recipes_dir / "trades.yaml", start="2024-11-14", end="2024-11-16", symbols="CL.c.0",
               store=any_store_url)
    assert r.ok and r.rows_quarantined == 0
    raw = _raw_records("GLBX.MDP3", "trades")
    keys = np.unique(raw[["instrument_id", "ts_recv", "sequence"]], return_counts=True)[1]
    shared = int((keys - 1)[keys > 1].sum())  # records whose (instrument, ts_recv, sequence) came before
    records = raw.view(np.dtype((np.void, raw.dtype.itemsize)))
    identical = len(raw) - len(np.unique(records))  # records byte-for-byte equal to an earlier one
    assert identical >= 5 and shared - identical >= 5  # the gateway produced both kinds
    got = hdi.read_trades("CL.c.0", "2024-11-14", "2024-11-16", store=any_store_url)
    assert got.height == len(raw) == r.rows_loaded
    assert got.filter(pl.col("rec_ordinal") > 0).height == shared
    assert got["trade_id"].n_unique() == got.height
    # A re-run through the store (refresh) keeps every one of them, and adds none.
    again = ingest(recipes_dir / "trades.yaml", start="2024-11-14", end="2024-11-16", symbols="CL.c.0",
                   store=any_store_url, refresh=True)
    assert again.ok and again.rows_loaded == 0 and again.rows_already_present == len(raw)
    assert hdi.read_trades("CL.c.0", "2024-11-14", "2024-11-16", store=any_store_url).height == len(raw)


# ----------------------------------------------------------------------------------- symbols over a roll
@pytest.fixture
def rolled(gateway, any_store_url, recipes_dir) -> str:
    """CL.c.0 trades from 2024-11-15 to 2024-11-19 (the roll is on the 18th) and the definitions
    of the contracts it maps to."""
    for recipe in ("trades", "definitions"):
        r = ingest(recipes_dir / f"{recipe}.yaml", start="2024-11-15", end="2024-11-20", symbols="CL.c.0",
                   store=any_store_url)
        assert r.ok and r.rows_loaded > 0
    return any_store_url


def test_continuous_symbol_across_the_roll_returns_each_contract_on_its_own_days(rolled):
    got = hdi.read_trades("CL.c.0", "2024-11-15", "2024-11-20", store=rolled)
    days = got.group_by(pl.col("received_timestamp_utc").dt.date().alias("day")).agg(
        pl.col("instrument_id").unique()).sort("day")
    assert days["day"].to_list() == [dt.date(2024, 11, d) for d in (15, 17, 18, 19)]  # no trading on Saturday
    for day, ids in days.iter_rows():
        assert ids == ([CLZ4] if day < ROLL else [CLF5]), day
    assert set(got["symbol"]) == {"CL.c.0"}
    raw = _raw_records("GLBX.MDP3", "trades")
    assert got.height == len(raw)


def test_raw_parent_and_instrument_id_symbols_select_the_right_trades(rolled):
    cont = hdi.read_trades("CL.c.0", "2024-11-15", "2024-11-20", store=rolled)
    z4 = hdi.read_trades("CLZ4", "2024-11-15", "2024-11-20", store=rolled)
    f5 = hdi.read_trades("CLF5", "2024-11-15", "2024-11-20", store=rolled)
    by_id = hdi.read_trades(str(CLZ4), "2024-11-15", "2024-11-20", store=rolled)
    parent = hdi.read_trades("CL.FUT", "2024-11-15", "2024-11-20", store=rolled)
    n_z4 = cont.filter(pl.col("instrument_id") == CLZ4).height
    assert z4.height == by_id.height == n_z4 > 0 and set(z4["instrument_id"]) == {CLZ4}
    assert f5.height == cont.height - n_z4 > 0 and set(f5["instrument_id"]) == {CLF5}
    assert set(z4["symbol"]) == {"CLZ4"} and set(by_id["symbol"]) == {str(CLZ4)}
    # CL.FUT: every child with an ingested definition (CLZ4 and CLF5), here every stored CL trade
    assert set(parent["symbol"]) == {"CL.FUT"} and parent.height == cont.height
    assert parent.drop("symbol").sort("trade_id").equals(cont.drop("symbol").sort("trade_id"))


def test_definitions_read_back_with_their_validity_intervals(rolled):
    defs = hdi.read_definitions("CL.FUT", "2024-11-15", "2024-11-20", store=rolled)
    assert set(defs["raw_symbol"]) == {"CLZ4", "CLF5"}
    assert (defs["valid_from"] == defs["received_timestamp_utc"]).all()
    for raw_symbol, iid in (("CLZ4", CLZ4), ("CLF5", CLF5)):
        mine = defs.filter(pl.col("instrument_id") == iid).sort("valid_from")
        assert set(mine["raw_symbol"]) == {raw_symbol}
        # each definition is valid until the next one of the same instrument; the last one is open
        assert mine["valid_to"].to_list()[:-1] == mine["valid_from"].to_list()[1:]
        assert mine["valid_to"][-1] is None
    z4 = defs.filter(pl.col("instrument_id") == CLZ4).row(0, named=True)
    assert (z4["instrument_class"], z4["asset"], z4["currency"], z4["exchange"]) == ("F", "CL", "USD", "XNYM")
    assert z4["expiration"] == dt.datetime(2024, 11, 20, 19, 30, tzinfo=dt.UTC)
    assert z4["min_price_increment"] == 0.01 and z4["contract_multiplier"] == 1000


def test_definitions_read_over_part_of_the_history_end_where_the_next_stored_one_starts(rolled):
    """valid_to is the next definition in the store, not merely the next one inside the window."""
    whole = hdi.read_definitions("CLZ4", "2024-11-15", "2024-11-20", store=rolled).sort("valid_from")
    part = hdi.read_definitions("CLZ4", "2024-11-15", "2024-11-16", store=rolled).sort("valid_from")
    assert part.height == 1 and whole.height > 1
    assert part["valid_to"].to_list() == whole["valid_to"].to_list()[:1]
    assert part["valid_to"][0] == dt.datetime(2024, 11, 17, tzinfo=dt.UTC)  # Saturday has no definition


# ----------------------------------------------------------------------------------- statistics
def test_statistics_latest_is_the_last_publication_per_instrument_stat_and_session(gateway, any_store_url,
                                                                                   recipes_dir):
    r = ingest(recipes_dir / "statistics.yaml", start="2024-11-11", end="2024-11-23", symbols="CL.c.0",
               store=any_store_url)
    assert r.ok and r.rows_quarantined == 0
    ref = db.DBNStore.from_file(_raw_files("GLBX.MDP3", "statistics")[0]).to_df(price_type="fixed",
                                                                                pretty_ts=True).reset_index()
    expect: dict[tuple, tuple] = {}  # (instrument, stat, effective date) -> (ts_recv, value, flags) of the last
    for row in ref.itertuples():
        eff = (row.ts_ref if not pd.isna(row.ts_ref) else row.ts_event).date()
        value = Decimal(int(row.quantity)) if row.stat_type in (6, 9) else Decimal(int(row.price)).scaleb(-9)
        key = (int(row.instrument_id), int(row.stat_type), eff)
        if key not in expect or row.ts_recv.value > expect[key][0]:
            expect[key] = (row.ts_recv.value, value, int(row.stat_flags))
    every = hdi.read_statistics("CL.c.0", "2024-11-11", "2024-11-23", store=any_store_url, latest=False)
    latest = hdi.read_statistics("CL.c.0", "2024-11-11", "2024-11-23", store=any_store_url, prices="decimal")
    assert every.height == len(ref) > latest.height == len(expect)
    got = {(i, t, d): (r, v, f) for i, t, d, r, v, f in latest.select(
        "instrument_id", "stat_type", "effective_date_utc", "ts_recv_ns", "statistic_value_numeric",
        "stat_flags").iter_rows()}
    assert got == expect
    # the settlement published twice a session (preliminary, then final) reads as the final one
    settle = latest.filter(pl.col("statistic_name") == "SETTLEMENT_PRICE")
    assert settle.height > 5 and set(settle["stat_flags"]) <= {1, 3}
    # cleared volume and open interest refer to the previous session (ts_ref), published the next morning
    oi = latest.filter(pl.col("statistic_name") == "OPEN_INTEREST")
    assert (oi["effective_date_utc"] < oi["received_timestamp_utc"].dt.date()).all()


class _Interval(NamedTuple):
    start_date: dt.date
    end_date: dt.date
    symbol: str


class _Mapping(NamedTuple):
    raw_symbol: str
    intervals: list


def _ns(text: str) -> int:
    """ISO timestamp with up to 9 fractional digits -> ns since the epoch."""
    head, _, frac = text.partition(".")
    base = dt.datetime.fromisoformat(head).replace(tzinfo=dt.UTC)
    return int(base.timestamp()) * 10**9 + int((frac or "0").ljust(9, "0"))


def _write_dbn(path: Path, schema: str, records: list, start: int, end: int, symbol: str, iid: int) -> Path:
    d0 = dt.datetime.fromtimestamp(start // 10**9, dt.UTC).date()
    d1 = dt.datetime.fromtimestamp((end - 1) // 10**9, dt.UTC).date() + dt.timedelta(days=1)
    meta = dbn.Metadata(dataset="GLBX.MDP3", start=start, end=end, schema=dbn.Schema.from_str(schema),
                        stype_in=dbn.SType.RAW_SYMBOL, stype_out=dbn.SType.INSTRUMENT_ID, symbols=[symbol],
                        partial=[], not_found=[], mappings=[_Mapping(symbol, [_Interval(d0, d1, str(iid))])])
    path.write_bytes(bytes(meta.encode()) + b"".join(bytes(r) for r in records))
    return path


def _stat(recv: str, stat: dbn.StatType, *, ref: str | None, price: int = dbn.UNDEF_PRICE,
          qty: int = dbn.UNDEF_STAT_QUANTITY, delete: bool = False, seq: int = 1) -> dbn.StatMsg:
    ts_recv = _ns(recv)
    return dbn.StatMsg(publisher_id=1, instrument_id=CLZ4, ts_event=ts_recv - 20_123, ts_recv=ts_recv,
                       ts_ref=_ns(ref) if ref else dbn.UNDEF_TIMESTAMP, price=price, quantity=qty, sequence=seq,
                       ts_in_delta=9_000, stat_type=stat, channel_id=0, stat_flags=0,
                       update_action=dbn.StatUpdateAction.DELETE if delete else dbn.StatUpdateAction.NEW)


def test_statistics_reads_honour_deletes_and_the_effective_date_fallback(any_store_url, recipes_dir, tmp_path):
    st = dbn.StatType
    recs = [
        # 14th's settlement, then withdrawn
        _stat("2024-11-14T20:00:00.000000001", st.SETTLEMENT_PRICE, ref="2024-11-14", price=70_100_000_000, seq=10),
        _stat("2024-11-14T21:00:00.000000002", st.SETTLEMENT_PRICE, ref="2024-11-14", delete=True, seq=11),
        # open interest: published, withdrawn, published again
        _stat("2024-11-15T10:00:00.000000003", st.OPEN_INTEREST, ref="2024-11-14", qty=1_000, seq=12),
        _stat("2024-11-15T10:05:00.000000004", st.OPEN_INTEREST, ref="2024-11-14", delete=True, seq=13),
        _stat("2024-11-15T10:10:00.000000005", st.OPEN_INTEREST, ref="2024-11-14", qty=1_200, seq=14),
        # session high without ts_ref: its effective date is ts_event's UTC date
        _stat("2024-11-15T21:00:00.000000006", st.TRADING_SESSION_HIGH_PRICE, ref=None, price=72_250_000_000, seq=15),
        # 15th's settlement and its delete in the same nanosecond: the later venue sequence wins,
        # whatever the order of the records
        _stat("2024-11-15T22:00:00.000000007", st.SETTLEMENT_PRICE, ref="2024-11-15", delete=True, seq=17),
        _stat("2024-11-15T22:00:00.000000007", st.SETTLEMENT_PRICE, ref="2024-11-15", price=71_500_000_000, seq=16),
        # a cleared volume whose quantity is undefined: a row with a null value
        _stat("2024-11-15T23:00:00.000000008", st.CLEARED_VOLUME, ref="2024-11-15", seq=18),
    ]
    path = _write_dbn(tmp_path / "stats.dbn", "statistics", recs, _ns("2024-11-14"), _ns("2024-11-16"), "CLZ4", CLZ4)
    r = ingest(recipes_dir / "statistics.yaml", from_files=[path], store=any_store_url)
    assert r.ok and r.rows_loaded == len(recs)
    every = hdi.read_statistics("CLZ4", "2024-11-14", "2024-11-16", store=any_store_url, latest=False,
                                prices="decimal")
    assert every.height == len(recs)
    assert every.sort("ts_recv_ns", "sequence")["update_action"].to_list() == [1, 2, 1, 2, 1, 1, 1, 2, 1]
    latest = hdi.read_statistics("CLZ4", "2024-11-14", "2024-11-16", store=any_store_url, prices="decimal")
    got = latest.select("statistic_name", "effective_date_utc", "statistic_value_numeric", "price",
                        "quantity").sort("statistic_name").rows()
    assert got == [
        ("CLEARED_VOLUME", dt.date(2024, 11, 15), None, None, None),
        ("OPEN_INTEREST", dt.date(2024, 11, 14), Decimal(1200), None, 1200),
        ("TRADING_SESSION_HIGH_PRICE", dt.date(2024, 11, 15), Decimal("72.25"), Decimal("72.25"), None),
    ]


# ----------------------------------------------------------------------------------- nanoseconds
def _trade(recv: int, event: int, price: int, seq: int, side: dbn.Side = dbn.Side.BID, size: int = 1) -> dbn.TradeMsg:
    return dbn.TradeMsg(publisher_id=1, instrument_id=CLZ4, ts_event=event, price=price, size=size,
                        action=dbn.Action.TRADE, side=side, flags=0, depth=0, ts_recv=recv, ts_in_delta=1_234,
                        sequence=seq)


def test_sub_microsecond_timestamps_round_trip_exactly_through_the_pipeline(any_store_url, recipes_dir, tmp_path,
                                                                            cli):
    t0 = _ns("2024-11-15T14:30:00.123456789")
    recs = [
        _trade(t0, t0 - 1, 70_010_000_000, 100, dbn.Side.ASK),
        _trade(t0 + 1, t0 - 999, 70_020_000_000, 101),  # 1 ns later than the first
        _trade(t0 + 1, t0 - 999, 70_020_000_000, 101),  # byte-identical to the one before
        _trade(t0 + 1, t0 - 999, 70_030_000_000, 101, dbn.Side.NONE, 7),  # same ns and sequence, different fill
        _trade(t0 + 1_001, t0 + 999, 70_040_000_000, 102),
    ]
    end = _ns("2024-11-15T14:30:00.123457999")  # the file's end is not on a microsecond either
    recs.append(_trade(end - 1, end - 7, 70_050_000_000, 103))
    path = _write_dbn(tmp_path / "ns.dbn", "trades", recs, _ns("2024-11-15T14:30:00.000000011"), end, "CLZ4", CLZ4)
    res = cli("ingest", "--recipe", recipes_dir / "trades.yaml", "--from-file", path, "--store", any_store_url)
    assert res.exit_code == 0, res.stderr
    got = hdi.read_trades("CLZ4", "2024-11-15", "2024-11-16", store=any_store_url, prices="decimal")
    got = got.sort("ts_recv_ns", "rec_ordinal")
    assert got.height == len(recs)
    assert got["received_timestamp_utc"].dt.epoch("ns").to_list() == [m.ts_recv for m in recs]
    assert got["trade_timestamp_utc"].dt.epoch("ns").to_list() == [m.ts_event for m in recs]
    assert got["ts_recv_ns"].to_list() == [m.ts_recv for m in recs]
    assert got["ts_event_ns"].to_list() == [m.ts_event for m in recs]
    assert got["price"].to_list() == [Decimal(m.price).scaleb(-9) for m in recs]
    assert got["aggressor_side"].to_list() == ["sell", "buy", "buy", None, "buy", "buy"]
    assert got["rec_ordinal"].to_list() == [0, 0, 1, 2, 0, 0]
    assert got["trade_id"].to_list()[1:4] == [f"{CLZ4}-{t0 + 1}-101-{k}" for k in range(3)]
    # a one-microsecond window returns exactly the trades received in it, nanoseconds intact
    window = hdi.read_trades("CLZ4", "2024-11-15T14:30:00.123457Z", "2024-11-15T14:30:00.123458Z",
                             store=any_store_url)
    assert window["ts_recv_ns"].sort().to_list() == [t0 + 1_001, end - 1]


# ----------------------------------------------------------------------------------- days without a session
def test_a_day_on_which_no_symbol_resolves_is_a_chunk_without_data_not_a_failure(gateway, tmp_path, recipes_dir):
    """Trades chunk by day; Databento answers 422 "None of the symbols could be resolved" for a
    Saturday of a futures symbol. The run succeeds and status shows the day as 'no data'."""
    store = f"duckdb://{tmp_path}/s.duckdb"
    dry = ingest(recipes_dir / "trades.yaml", start="2024-11-15", end="2024-11-18", symbols="CL.c.0", store=store,
                 dry_run=True)
    assert dry.ok and [(c.status, c.record_count, c.cost_usd) for c in dry.chunks][1] == ("estimated", 0, 0.0)
    r = ingest(recipes_dir / "trades.yaml", start="2024-11-15", end="2024-11-18", symbols="CL.c.0", store=store)
    assert r.ok, [c.error for c in r.chunks]
    assert [c.record_count for c in dry.chunks] == [c.rows_fetched for c in r.chunks]
    assert [(c.status, c.rows_fetched) for c in r.chunks] == [("done", 39_107), ("done", 0), ("done", 716)]
    cov = hdi.status(store).coverage.filter(pl.col("schema") == "trades").row(0, named=True)
    assert cov["no_data"] == ["2024-11-16"] and cov["missing"] == []
    again = ingest(recipes_dir / "trades.yaml", start="2024-11-15", end="2024-11-18", symbols="CL.c.0", store=store)
    assert again.ok and again.count("skipped") == 3


def test_a_symbol_that_resolves_nowhere_in_the_range_still_fails(gateway, tmp_path, recipes_dir):
    import yaml

    spec = yaml.safe_load((recipes_dir / "trades.yaml").read_text())
    spec["source"]["requests"] = [{"dataset": "GLBX.MDP3", "stype_in": "continuous", "symbols": ["ZZ.c.0"]}]
    recipe = tmp_path / "zz.yaml"
    recipe.write_text(yaml.safe_dump(spec))
    r = ingest(recipe, start="2024-11-15", end="2024-11-17", store=f"duckdb://{tmp_path}/s.duckdb")
    assert not r.ok and r.count("failed") == 2
    assert all("422" in c.error and "resolve" in c.error for c in r.chunks)
