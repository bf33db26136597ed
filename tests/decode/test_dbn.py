"""decode_file / frame_schema / symbology_frame on synthetic DBN files with known contents."""

from __future__ import annotations

import datetime as dt
import os

import databento_dbn as dbn
import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from hdi.decode.dbn import SUPPORTED_SCHEMAS, decode_file, frame_schema, symbology_frame
from hdi.errors import DecodeError
from hdi.source import files
from hdi.source.files import DbnMetadata, SymbolInterval, open_dbn

D0, D1, D2 = dt.date(2024, 3, 1), dt.date(2024, 3, 4), dt.date(2024, 3, 8)
UTC = pl.Datetime("ns", "UTC")
UNDEF_TS = 2**64 - 1


def decode(path, **kwargs) -> pl.DataFrame:
    return pl.concat(list(decode_file(open_dbn(path), **kwargs)))


def test_frame_schema_given_trades_is_the_v3_layout_plus_symbol():
    assert frame_schema("trades") == {
        "rtype": pl.UInt8(), "publisher_id": pl.UInt16(), "instrument_id": pl.UInt32(), "ts_event": UTC,
        "price": pl.Int64(), "size": pl.UInt32(), "action": pl.String(), "side": pl.String(),
        "flags": pl.UInt8(), "depth": pl.UInt8(), "ts_recv": UTC, "ts_in_delta": pl.Int32(),
        "sequence": pl.UInt32(), "symbol": pl.String(),
    }


def test_frame_schema_given_statistics_has_int64_quantity_and_no_reserved_field():
    schema = frame_schema("statistics")
    assert list(schema) == ["rtype", "publisher_id", "instrument_id", "ts_event", "ts_recv", "ts_ref", "price",
                            "quantity", "sequence", "ts_in_delta", "stat_type", "channel_id", "update_action",
                            "stat_flags", "symbol"]
    assert schema["quantity"] == pl.Int64() and schema["ts_ref"] == UTC and schema["stat_type"] == pl.UInt16()


@pytest.mark.parametrize("schema", SUPPORTED_SCHEMAS)
def test_frame_schema_given_each_schema_drops_length_and_reserved(schema):
    names = list(frame_schema(schema))
    assert names[-1] == "symbol" and "length" not in names and not any(n.startswith("_") for n in names)


def test_frame_schema_given_definition_types_text_and_chars_as_string():
    schema = frame_schema("definition")
    assert len(schema) == 74
    for name in ("raw_symbol", "asset", "group", "exchange", "currency", "instrument_class",
                 "security_update_action", "leg_side"):
        assert schema[name] == pl.String()
    assert schema["expiration"] == UTC and schema["strike_price"] == pl.Int64()
    assert schema["raw_instrument_id"] == pl.UInt64()


def test_frame_schema_given_unsupported_schema_names_the_supported_ones():
    with pytest.raises(DecodeError) as err:
        frame_schema("trade")
    assert str(err.value) == (
        "schema 'trade' is not supported (did you mean 'trades'?); supported: ohlcv-1s, ohlcv-1m, ohlcv-1h, "
        "ohlcv-1d, trades, tbbo, mbp-1, statistics, definition, mbo, mbp-10, bbo-1s, bbo-1m, cbbo-1s, cbbo-1m, "
        "status, imbalance, ohlcv-eod")


def test_supported_schemas_agree_between_source_and_decode():
    assert files.SUPPORTED_SCHEMAS == SUPPORTED_SCHEMAS


def test_decode_file_given_roll_of_continuous_symbol_maps_each_id_inside_its_interval(kit):
    a, b = 1001, 1002
    ts = [kit.ns(D0, 60), kit.ns(D1, -1e-9), kit.ns(D1, 5), kit.ns(D1, 6), kit.ns(D2, -1e-9), kit.ns(D2, 1)]
    ids = [a, a, a, b, b, b]
    recs = kit.records(dbn.TradeMsg, 6, "trades", instrument_id=ids, ts_event=ts, ts_recv=ts, price=7 * 10**10)
    path = kit.write("roll.dbn.zst", recs, schema="trades", mappings={"CL.c.0": [(D0, D1, a), (D1, D2, b)]})
    df = decode(path)
    assert df["instrument_id"].to_list() == ids
    assert df["symbol"].to_list() == ["CL.c.0", "CL.c.0", None, "CL.c.0", "CL.c.0", None]


def test_decode_file_given_trades_maps_by_ts_recv_date_not_ts_event(kit):
    ev, rc = kit.ns(D1, -0.5), kit.ns(D1, 0.5)  # event on D1-1, received on D1
    recs = kit.records(dbn.TradeMsg, 2, "trades", instrument_id=[1001, 1002], ts_event=ev, ts_recv=rc)
    path = kit.write("t.dbn.zst", recs, schema="trades", mappings={"CL.c.0": [(D0, D1, 1001), (D1, D2, 1002)]})
    assert decode(path)["symbol"].to_list() == [None, "CL.c.0"]


def test_decode_file_given_bars_maps_by_ts_event_date(kit):
    recs = kit.records(dbn.OHLCVMsg, 3, "ohlcv-1d", instrument_id=[1001, 1001, 1002],
                       ts_event=[kit.ns(D0), kit.ns(D1), kit.ns(D1)])
    path = kit.write("b.dbn.zst", recs, schema="ohlcv-1d", mappings={"CL.c.0": [(D0, D1, 1001), (D1, D2, 1002)]})
    assert decode(path)["symbol"].to_list() == ["CL.c.0", None, "CL.c.0"]


def test_decode_file_given_two_symbols_labels_each_record_with_its_own(kit):
    ids = [1001, 2002, 2002, 1001, 2002, 3003]
    recs = kit.records(dbn.OHLCVMsg, 6, "ohlcv-1m", instrument_id=ids, ts_event=kit.ns(D1, 600))
    path = kit.write("two.dbn.zst", recs, schema="ohlcv-1m",
                     mappings={"CL.c.0": [(D0, D2, 1001)], "NG.c.0": [(D0, D2, 2002)]})
    assert decode(path)["symbol"].to_list() == ["CL.c.0", "NG.c.0", "NG.c.0", "CL.c.0", "NG.c.0", None]


def test_decode_file_given_parent_symbol_maps_every_child_to_the_parent(kit):
    ids = [11, 12, 13, 12]
    recs = kit.records(dbn.TradeMsg, 4, "trades", instrument_id=ids, ts_event=kit.ns(D1, 1), ts_recv=kit.ns(D1, 1))
    path = kit.write("p.dbn.zst", recs, schema="trades", stype_in="parent",
                     mappings={"ES.FUT": [(D0, D2, 11), (D0, D2, 12), (D0, D2, 13)]})
    assert decode(path)["symbol"].to_list() == ["ES.FUT"] * 4


def test_decode_file_given_instrument_id_stype_in_uses_the_id_as_text(kit):
    recs = kit.records(dbn.TradeMsg, 2, "trades", instrument_id=[42, 7], ts_event=kit.ns(D1), ts_recv=kit.ns(D1))
    path = kit.write("i.dbn.zst", recs, schema="trades", stype_in="instrument_id",
                     mappings={"42": [(D0, D2, 42)], "7": [(D0, D2, 7)]})
    assert decode(path)["symbol"].to_list() == ["42", "7"]


def test_decode_file_given_overlapping_requests_prefers_latest_start_that_still_covers(kit):
    # ESH4 [D0, D2) and ES.FUT [D1, D2) both cover id 5 from D1: ES.FUT started last, so it wins.
    # ESZ3 [D0, D1) and NQ.FUT [D0, D2) both start on D0 for id 6: ESZ3 was requested first, so it
    # wins on D0, and NQ.FUT still covers id 6 on D1 after ESZ3 has ended.
    ts = [kit.ns(D0, 1), kit.ns(D1, 1), kit.ns(D0, 1), kit.ns(D1, 1)]
    recs = kit.records(dbn.TradeMsg, 4, "trades", instrument_id=[5, 5, 6, 6], ts_event=ts, ts_recv=ts)
    path = kit.write("o.dbn.zst", recs, schema="trades", stype_in="raw_symbol",
                     mappings={"ESH4": [(D0, D2, 5)], "ESZ3": [(D0, D1, 6)], "ES.FUT": [(D1, D2, 5)],
                               "NQ.FUT": [(D0, D2, 6)]})
    assert decode(path)["symbol"].to_list() == ["ESH4", "ES.FUT", "ESZ3", "NQ.FUT"]


def test_decode_file_given_gaps_and_back_to_back_intervals_of_one_id_maps_each_day(kit):
    # id 5 is "A" on [D0, D1) and "B" on [D1, D1+1); id 6 is "C" on [D0, D0+1) and again on [D1, D2)
    d = dt.timedelta(days=1)
    days = [D0, D1, D1 + d, D0, D0 + d, D1]
    ts = [kit.ns(x, 30) for x in days]
    recs = kit.records(dbn.TradeMsg, 6, "trades", instrument_id=[5, 5, 5, 6, 6, 6], ts_event=ts, ts_recv=ts)
    path = kit.write("g.dbn.zst", recs, schema="trades", stype_in="raw_symbol",
                     mappings={"A": [(D0, D1, 5)], "B": [(D1, D1 + d, 5)], "C": [(D0, D0 + d, 6), (D1, D2, 6)]})
    assert decode(path)["symbol"].to_list() == ["A", "B", None, "C", None, "C"]


def test_decode_file_given_undefined_ts_recv_gives_null_symbol(kit):
    recs = kit.records(dbn.TradeMsg, 1, "trades", instrument_id=1, ts_event=kit.ns(D1), ts_recv=UNDEF_TS)
    path = kit.write("u.dbn.zst", recs, schema="trades", mappings={"X": [(dt.date(1970, 1, 1), D2, 1)]})
    df = decode(path)
    assert df["ts_recv"].to_list() == [None] and df["symbol"].to_list() == [None]


def test_decode_file_given_sentinels_yields_nulls_and_keeps_real_values(kit):
    recs = kit.records(dbn.MBP1Msg, 2, "tbbo", instrument_id=1, ts_event=kit.ns(D1), ts_recv=kit.ns(D1, 1),
                       price=[dbn.UNDEF_PRICE, 5_250_000_000_000], bid_px_00=[dbn.UNDEF_PRICE, -1],
                       ask_px_00=[2, dbn.UNDEF_PRICE], side=[b"\x00", b"B"], action=[b"T", b"N"])
    df = decode(kit.write("s.dbn.zst", recs, schema="tbbo"))
    assert df["price"].to_list() == [None, 5_250_000_000_000]
    assert df["bid_px_00"].to_list() == [None, -1]
    assert df["ask_px_00"].to_list() == [2, None]
    assert df["side"].to_list() == [None, "B"] and df["action"].to_list() == ["T", "N"]


def test_decode_file_given_statistics_sentinels_nulls_quantity_and_ts_ref(kit):
    ts = kit.ns(D1, 3)
    recs = kit.records(dbn.StatMsg, 3, "statistics", instrument_id=9, ts_event=ts, ts_recv=ts,
                       ts_ref=[UNDEF_TS, kit.ns(D0), 0], price=[dbn.UNDEF_PRICE, 1, 2],
                       quantity=[dbn.UNDEF_STAT_QUANTITY, 2**40, -3], stat_type=[8, 6, 9], update_action=1)
    df = decode(kit.write("st.dbn.zst", recs, schema="statistics"))
    assert df["quantity"].dtype == pl.Int64 and df["quantity"].to_list() == [None, 2**40, -3]
    assert df["ts_ref"].to_list() == [None, dt.datetime(2024, 3, 1, tzinfo=dt.UTC),
                                      dt.datetime(1970, 1, 1, tzinfo=dt.UTC)]
    assert df["price"].to_list() == [None, 1, 2]
    assert df["stat_type"].to_list() == [8, 6, 9]


def test_decode_file_given_max_uint64_volume_keeps_it_exactly(kit):
    recs = kit.records(dbn.OHLCVMsg, 2, "ohlcv-1d", instrument_id=1, ts_event=kit.ns(D1),
                       open=1, high=2, low=-3, close=4, volume=[2**64 - 1, 0])
    df = decode(kit.write("v.dbn.zst", recs, schema="ohlcv-1d"))
    assert df["volume"].dtype == pl.UInt64 and df["volume"].to_list() == [2**64 - 1, 0]
    assert df.select("open", "high", "low", "close").row(0) == (1, 2, -3, 4)


def test_decode_file_given_timestamps_keeps_exact_nanoseconds(kit):
    ts = kit.ns(D1, 1) + 123_456_789
    recs = kit.records(dbn.TradeMsg, 1, "trades", instrument_id=1, ts_event=ts, ts_recv=ts + 1)
    df = decode(kit.write("ns.dbn.zst", recs, schema="trades"))
    assert df["ts_event"].dtype == UTC
    assert df.select(pl.col("ts_event", "ts_recv").cast(pl.Int64)).row(0) == (ts, ts + 1)


@pytest.mark.parametrize("read_records", [None, 300, 7])  # records per internal read: default, 300, 7
def test_decode_file_given_10500_records_in_chunks_of_1000_yields_11_frames_equal_to_one(kit, monkeypatch,
                                                                                        read_records):
    if read_records:
        monkeypatch.setattr("hdi.decode.dbn._PIECE_BYTES", 48 * read_records)
    n = 10_500
    ts = kit.ns(D0) + np.arange(n, dtype=np.uint64) * 60_000_000_000
    recs = kit.records(dbn.TradeMsg, n, "trades", instrument_id=np.where(np.arange(n) % 3, 1001, 2002),
                       ts_event=ts, ts_recv=ts + 7, price=np.arange(n) * 1000, sequence=np.arange(n),
                       side=np.where(np.arange(n) % 2, b"A", b"B"))
    path = kit.write("big.dbn.zst", recs, schema="trades",
                     mappings={"CL.c.0": [(D0, D2, 1001)], "NG.c.0": [(D0, D1, 2002)]})
    frames = list(decode_file(open_dbn(path), chunk_rows=1000))
    assert [len(f) for f in frames] == [1000] * 10 + [500]
    whole = list(decode_file(open_dbn(path)))
    assert len(whole) == 1 and len(whole[0]) == n
    assert_frame_equal(pl.concat(frames), whole[0])
    assert whole[0]["sequence"].to_list() == list(range(n))
    ng = np.arange(n) % 3 == 0
    want = np.where(ng, np.where(ts < kit.ns(D1), "NG.c.0", None), np.where(ts < kit.ns(D2), "CL.c.0", None))
    assert whole[0]["symbol"].to_list() == want.tolist()


def test_decode_file_given_bad_chunk_rows_raises(kit):
    path = kit.write("c.dbn.zst", kit.records(dbn.TradeMsg, 1, "trades"), schema="trades")
    with pytest.raises(DecodeError, match=r"c\.dbn\.zst: chunk_rows must be >= 1, got 0$"):
        next(decode_file(open_dbn(path), chunk_rows=0))


def test_decode_file_given_no_records_yields_one_empty_frame_with_the_schema(kit):
    path = kit.write("empty.dbn", b"", schema="ohlcv-1h", compress=False)
    frames = list(decode_file(open_dbn(path)))
    assert len(frames) == 1 and frames[0].height == 0 and frames[0].schema == pl.Schema(frame_schema("ohlcv-1h"))


def test_decode_file_given_uncompressed_dbn_decodes_the_same_as_zstd(kit):
    recs = kit.records(dbn.OHLCVMsg, 5, "ohlcv-1s", instrument_id=3, ts_event=kit.ns(D1) + np.arange(5) * 10**9,
                       close=np.arange(5))
    zst = kit.write("a.dbn.zst", recs, schema="ohlcv-1s", mappings={"ESH4": [(D0, D2, 3)]})
    raw = kit.write("a.dbn", recs, schema="ohlcv-1s", mappings={"ESH4": [(D0, D2, 3)]}, compress=False)
    assert_frame_equal(decode(zst), decode(raw))
    assert decode(raw)["symbol"].to_list() == ["ESH4"] * 5


def test_decode_file_given_definition_decodes_text_fields(kit):
    recs = kit.records(dbn.InstrumentDefMsg, 1, "definition", instrument_id=5482, ts_event=kit.ns(D1),
                       ts_recv=kit.ns(D1), raw_symbol=b"ESH4", asset=b"ES", currency=b"USD",
                       instrument_class=b"F", expiration=UNDEF_TS, activation=kit.ns(D0),
                       min_price_increment=250_000_000, strike_price=dbn.UNDEF_PRICE, leg_side=b"N")
    df = decode(kit.write("d.dbn.zst", recs, schema="definition", stype_in="raw_symbol",
                          mappings={"ESH4": [(D0, D2, 5482)]}))
    row = df.row(0, named=True)
    assert (row["raw_symbol"], row["asset"], row["currency"], row["instrument_class"]) == ("ESH4", "ES", "USD", "F")
    assert row["group"] is None and row["security_update_action"] is None and row["leg_side"] == "N"
    assert row["expiration"] is None and row["activation"] == dt.datetime(2024, 3, 1, tzinfo=dt.UTC)
    assert row["min_price_increment"] == 250_000_000 and row["strike_price"] is None
    assert row["symbol"] == "ESH4"


def test_symbology_frame_given_a_roll_returns_one_row_per_interval(kit):
    path = kit.write("r.dbn.zst", kit.records(dbn.TradeMsg, 1, "trades"), schema="trades",
                     mappings={"CL.c.0": [(D0, D1, 1001), (D1, D2, 1002)], "NG.c.0": [(D0, D2, 2002)]})
    got = symbology_frame(open_dbn(path).metadata, "GLBX.MDP3")
    want = pl.DataFrame(
        {"dataset": ["GLBX.MDP3"] * 3, "stype_in": ["continuous"] * 3, "symbol": ["CL.c.0", "CL.c.0", "NG.c.0"],
         "instrument_id": [1001, 1002, 2002], "start_date": [D0, D1, D0], "end_date": [D1, D2, D2],
         "source": ["metadata"] * 3},
        schema={"dataset": pl.String, "stype_in": pl.String, "symbol": pl.String, "instrument_id": pl.Int64,
                "start_date": pl.Date, "end_date": pl.Date, "source": pl.String},
    )
    assert_frame_equal(got, want)


def test_symbology_frame_given_no_mappings_is_empty_with_the_columns(kit):
    path = kit.write("n.dbn.zst", kit.records(dbn.TradeMsg, 1, "trades"), schema="trades")
    got = symbology_frame(open_dbn(path).metadata, "XNAS.ITCH")
    assert got.height == 0 and got.columns == ["dataset", "stype_in", "symbol", "instrument_id", "start_date",
                                               "end_date", "source"]


def test_decode_file_given_text_that_is_not_utf8_raises(kit):
    recs = kit.records(dbn.InstrumentDefMsg, 1, "definition", raw_symbol=b"ES\xff\xfe")
    path = kit.write("bad.dbn.zst", recs, schema="definition")
    with pytest.raises(DecodeError) as err:
        decode(path)
    assert str(err.value) == f"{path}: field 'raw_symbol' holds text that is not UTF-8"


def test_symbol_mapper_counts_equal_the_mapped_symbols():
    """``SymbolMapper.counts`` (the quarantine budget's per-symbol population) counts exactly what
    ``map`` labels, over a roll of a continuous symbol."""
    import datetime as dt

    import numpy as np

    from hdi.decode.symbols import SymbolMapper
    from hdi.source.files import DbnMetadata, SymbolInterval

    meta = DbnMetadata(3, "GLBX.MDP3", "trades", "continuous", "instrument_id", dt.datetime(2024, 3, 1, tzinfo=dt.UTC),
                       None, ["CL.c.0"], [], [], [SymbolInterval("CL.c.0", 10, dt.date(2024, 3, 1), dt.date(2024, 3, 2)),
                                                 SymbolInterval("CL.c.0", 11, dt.date(2024, 3, 2), dt.date(2024, 3, 4))])
    day = 86_400 * 10**9
    t0 = int(dt.datetime(2024, 3, 1, tzinfo=dt.UTC).timestamp()) * 10**9
    iid = np.array([10, 10, 11, 11, 11, 12], dtype=np.uint32)
    ts = np.array([t0, t0 + day, t0 + day, t0 + 2 * day, t0 + 5 * day, t0], dtype=np.uint64)
    m = SymbolMapper(meta)
    mapped = m.map(iid, ts).value_counts()
    assert m.counts(iid, ts) == dict(mapped.iter_rows()) == {"CL.c.0": 3, None: 3}


_MAP_D0 = dt.date(2024, 3, 1)


@settings(max_examples=int(os.environ.get("HDI_HYPOTHESIS_EXAMPLES", "60")), deadline=None, derandomize=True,
          database=None)
@given(data=st.data())
def test_symbol_mapper_given_random_mappings_maps_every_record_like_the_intervals_say(data):
    """The ``symbol`` column (per-day id tables, and the (id, day) search for blocks spanning days or
    wide id spans) names, for every record, the mapping interval holding its id on its UTC day, and
    is null where none does: checked against the intervals record by record, and against the
    plain search path."""
    from hdi.decode.symbols import _MAP_BLOCK, SymbolMapper

    pool = data.draw(st.sampled_from([[10, 11, 12, 13], [7, 1001, 5_000_000, 4_000_000_000]]), "ids")
    intervals = []
    for name in ("AAA", "BBB.c.0", "A_LONGER_SYMBOL_NAME"):  # the last one is not inline in a string view
        for _ in range(data.draw(st.integers(1, 3), f"{name} intervals")):
            a = data.draw(st.integers(0, 6), "start day")
            b = data.draw(st.integers(a + 1, 8), "end day")
            iid = data.draw(st.sampled_from(pool), "id")
            intervals.append(SymbolInterval(name, iid, _MAP_D0 + dt.timedelta(days=a), _MAP_D0 + dt.timedelta(days=b)))
    meta = DbnMetadata(3, "GLBX.MDP3", "trades", "raw_symbol", "instrument_id", dt.datetime(2024, 3, 1, tzinfo=dt.UTC),
                       None, ["AAA"], [], [], intervals)
    m = SymbolMapper(meta)
    n = data.draw(st.sampled_from([1, 7, _MAP_BLOCK + 5, 2 * _MAP_BLOCK]), "records")
    seed = data.draw(st.integers(0, 2**32 - 1), "seed")
    days = data.draw(st.integers(1, 8), "days spanned")
    rng = np.random.default_rng(seed)
    ids = rng.choice(np.array([*pool, 999], dtype=np.uint32), n)
    t0 = int(dt.datetime(2024, 3, 1, tzinfo=dt.UTC).timestamp()) * 10**9
    ts = np.sort(rng.integers(t0 - 10**9, t0 + days * 86_400 * 10**9, n, dtype=np.int64)).astype(np.uint64)
    got = m.map(ids, ts)
    assert got.dtype == pl.String and got.len() == n
    assert got.equals(m.map(ids, ts, fast=False))
    # the oracle: each record's (id, UTC day) looked up in the disjoint segments the metadata's
    # intervals resolve to (overlaps: the later-starting interval wins), one record at a time
    from hdi.decode.symbols import _disjoint

    segments = _disjoint(intervals)
    want = []
    for i, t in zip(ids.tolist(), ts.tolist(), strict=True):
        day = t // 86_400_000_000_000
        hit = [s for iid, a, b, s in segments if iid == i and a <= day < b]
        want.append(hit[0] if hit else None)
    assert got.to_list() == want
