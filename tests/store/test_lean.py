"""Lean tick tables in TimescaleDB (issue 17, migration 8): a store written by the previous schema is
converted in place with every value kept exactly; prices at the int64 fixed-point edges and negative
prices round-trip exactly; trades in the same nanosecond are all kept; the views show the documented
columns with exact values. Each test also runs on DuckDB where the behaviour is the store contract's."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import polars as pl
import pytest

from hdi._tables import BBO, MBO, TRADES, Table
from hdi.store import close_all, open_store
from hdi.store.migrate import _MIGRATIONS, MIGRATIONS_TABLE

pytestmark = pytest.mark.timescale

MAX_PRICE = Decimal("9223372036.854775807")  # int64 max at 1e-9
MIN_PRICE = Decimal("-9223372036.854775808")
T0 = 1_704_196_800_123_456_789  # 2024-01-02 12:00:00.123456789 UTC


def _frame(table: Table, rows: list[dict]) -> pl.DataFrame:
    """A frame of ``table`` from dicts: unset columns take plain defaults; *_timestamp_utc from their ns."""
    defaults = {"dataset": "GLBX.MDP3", "data_source": "databento", "publisher_id": 1, "granularity": "1s",
                "action": "A", "side": "buy", "aggressor_side": "buy", "ts_recv_ns": T0}
    recs = []
    for r in rows:
        rec: dict = {}
        for c in table.columns:
            if c.name in r:
                rec[c.name] = r[c.name]
            elif c.name in defaults:
                rec[c.name] = defaults[c.name]
            elif c.type.name.startswith("I"):
                rec[c.name] = 0
            elif c.type.name == "PRICE":
                rec[c.name] = None if c.nullable else Decimal("1")
            else:
                rec[c.name] = None
        if rec.get("ts_event_ns") == 0 and "ts_event_ns" not in r:
            rec["ts_event_ns"] = rec["ts_recv_ns"] - 1000
        recs.append(rec)
    df = pl.DataFrame(recs, schema={c.name: (pl.Int64 if c.type.name == "TS" else c.type.polars)
                                    for c in table.columns})
    ts = [pl.col(ns).cast(pl.Datetime("ns")).dt.replace_time_zone("UTC").alias(t) for t, ns in table.ns_columns]
    return df.with_columns(ts)


def _trades() -> pl.DataFrame:
    return _frame(TRADES, [
        {"instrument_id": 1, "price": MAX_PRICE, "sequence": 7},
        {"instrument_id": 1, "price": MIN_PRICE, "sequence": 7, "rec_ordinal": 1, "aggressor_side": None},
        {"instrument_id": 1, "price": MIN_PRICE, "sequence": 7, "rec_ordinal": 2, "aggressor_side": "sell"},
        {"instrument_id": 2, "price": Decimal("-1.5"), "ts_recv_ns": T0 + 1, "ts_event_ns": T0 - 5_000_000_000,
         "ts_in_delta": None, "size": 2**40},
        {"instrument_id": 4_294_967_295, "price": Decimal("0.000000001"), "dataset": "XNAS.ITCH", "publisher_id": 2,
         "ts_recv_ns": T0 + 86_400 * 10**9},
    ])


def _mbo() -> pl.DataFrame:
    return _frame(MBO, [
        {"instrument_id": 1, "order_id": 11, "action": "A", "side": "buy", "price": Decimal("70.25")},
        {"instrument_id": 1, "order_id": 11, "action": "C", "side": None, "price": None, "rec_ordinal": 1},
        {"instrument_id": 1, "order_id": 12, "action": "T", "side": "sell", "price": Decimal("-0.5"),
         "publisher_id": 3, "rec_ordinal": 2},
    ])


def _bbo() -> pl.DataFrame:
    return _frame(BBO, [
        {"instrument_id": 1, "granularity": "1s", "ts_event_ns": None, "event_timestamp_utc": None,
         "bid_price": Decimal("70.1"), "ask_price": None, "side": None},
        {"instrument_id": 1, "granularity": "1m", "bid_price": None, "ask_price": Decimal("70.2")},
    ])


FRAMES = {"trades": _trades, "mbo": _mbo, "bbo": _bbo}


def _sorted(df: pl.DataFrame, table: Table) -> pl.DataFrame:
    return df.select(table.names).sort([k for k in table.key if k in df.columns], nulls_last=True)


@pytest.mark.parametrize("backend", ["duckdb", "timescale"])
@pytest.mark.parametrize("name", sorted(FRAMES))
def test_extreme_prices_same_nanosecond_trades_and_ns_round_trip_exactly(backend, name, request, tmp_path):
    url = (request.getfixturevalue("timescale_schema_url") if backend == "timescale"
           else f"duckdb://{tmp_path / 'store.duckdb'}")
    table = {"trades": TRADES, "mbo": MBO, "bbo": BBO}[name]
    want = FRAMES[name]()
    st = open_store(url)
    first = st.write(name, want)
    assert (first.inserted, first.already_present) == (want.height, 0)
    again = st.write(name, want)  # a re-run stores nothing twice, whichever path it takes
    assert (again.inserted, again.already_present) == (0, want.height)
    got = st.select(name)
    assert _sorted(got, table).equals(_sorted(want, table))
    assert got.schema == pl.Schema({c.name: c.type.polars for c in table.columns})
    one = st.select(name, start=dt.datetime(2024, 1, 2, tzinfo=dt.UTC), end=dt.datetime(2024, 1, 3, tzinfo=dt.UTC),
                    equals={"dataset": "GLBX.MDP3"})
    assert one.height == want.filter(pl.col("dataset") == "GLBX.MDP3").height
    close_all()


def test_same_nanosecond_trades_are_all_kept_and_an_update_replaces_exactly(timescale_schema_url):
    st = open_store(timescale_schema_url)
    rows = _frame(TRADES, [{"instrument_id": 9, "rec_ordinal": i, "price": Decimal(i)} for i in range(5)])
    st.write("trades", rows)
    changed = rows.with_columns(pl.col("price") + Decimal("0.000000001"))
    res = st.write("trades", changed.head(2), on_conflict="update")
    assert (res.inserted, res.path) == (2, "merge")
    got = st.select("trades").sort("rec_ordinal")["price"].to_list()
    assert got == [Decimal("0.000000001"), Decimal("1.000000001"), Decimal(2), Decimal(3), Decimal(4)]
    # rows of another dataset with the same key are other trades
    other = rows.with_columns(pl.lit("XNAS.ITCH").alias("dataset"))
    assert st.write("trades", other).inserted == 5
    assert st.query("SELECT count(*) AS n FROM trades").item() == 10


def test_a_price_outside_int64_fixed_point_is_refused_with_its_value(timescale_schema_url):
    from hdi.errors import StoreError

    st = open_store(timescale_schema_url)
    bad = _frame(TRADES, [{"price": Decimal("9223372036.854775808")}])
    with pytest.raises(StoreError, match=r"column 'price' value .*9223372036\.854775808.* allowed: "):
        st.write("trades", bad)
    assert st.query("SELECT count(*) AS n FROM trades").item() == 0


def test_the_view_shows_the_documented_columns_with_exact_values(timescale_schema_url):
    st = open_store(timescale_schema_url)
    st.write("trades", _trades())
    cols = st.query("SELECT column_name AS c, data_type AS t FROM information_schema.columns WHERE table_name = "
                    "'trades' AND table_schema = current_schema() ORDER BY ordinal_position")
    assert cols["c"].to_list() == TRADES.names
    assert dict(cols.iter_rows())["price"] == "numeric" and dict(cols.iter_rows())["received_timestamp_utc"] == \
        "timestamp with time zone"
    got = st.query("SELECT price::text AS p, aggressor_side AS s, received_timestamp_utc::text AS r, dataset, "
                   "publisher_id FROM trades ORDER BY ts_recv_ns, rec_ordinal, instrument_id")
    assert got.rows() == [
        ("9223372036.854775807", "buy", "2024-01-02 12:00:00.123456+00", "GLBX.MDP3", 1),
        ("-9223372036.854775808", None, "2024-01-02 12:00:00.123456+00", "GLBX.MDP3", 1),
        ("-9223372036.854775808", "sell", "2024-01-02 12:00:00.123456+00", "GLBX.MDP3", 1),
        ("-1.500000000", "buy", "2024-01-02 12:00:00.123456+00", "GLBX.MDP3", 1),
        ("0.000000001", "buy", "2024-01-03 12:00:00.123456+00", "XNAS.ITCH", 2),
    ]
    # a filter on the physical time column of the view reaches the chunk of that day only
    plan = "\n".join(st.query("EXPLAIN SELECT * FROM trades WHERE ts_recv_ns >= $1 AND ts_recv_ns < $2",
                              [T0 + 86_400 * 10**9, T0 + 86_401 * 10**9]).to_series().to_list())
    assert plan.count("_hyper_") == 1, plan


def _old_layout(url: str, frames: dict[str, pl.DataFrame]) -> None:
    """A store as hdi before migration 8 left it: migrations 1-4 applied and rows COPYed as it did."""
    import adbc_driver_postgresql.dbapi as pg

    from hdi._tables import DATA_TABLES
    from hdi.store.schema import conform

    with pg.connect(url, autocommit=True) as c, c.cursor() as cur:
        cur.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
        cur.execute(f"CREATE TABLE {MIGRATIONS_TABLE} (version integer PRIMARY KEY, applied_at timestamptz NOT NULL "
                    "DEFAULT now())")
        for v in (1, 2, 3, 4):
            for sql in _MIGRATIONS[v]("timescale"):
                cur.execute(sql)
            cur.execute(f"INSERT INTO {MIGRATIONS_TABLE} (version) VALUES ({v})")
        for name, frame in frames.items():
            cur.adbc_ingest(name, conform(frame, DATA_TABLES[name], backend="timescale").to_arrow(), mode="append")


def test_migration_8_converts_a_store_of_the_previous_schema_in_place_exactly(timescale_schema_url):
    frames = {n: f() for n, f in FRAMES.items()}
    _old_layout(timescale_schema_url, frames)
    old = open_store(timescale_schema_url)
    before = {n: old._fetch(f'SELECT * FROM "{n}"') for n in frames}  # noqa: SLF001 - no migrate() on this read
    assert not old.has_table("hdi_trades")
    close_all()
    st = open_store(timescale_schema_url)
    st.migrate()
    assert st.query(f"SELECT max(version) AS v FROM {MIGRATIONS_TABLE}").item() == 8
    for name, table in (("trades", TRADES), ("mbo", MBO), ("bbo", BBO)):
        after = st.query(f'SELECT * FROM "{name}"')
        assert after.height == before[name].height == frames[name].height
        assert _sorted(after, table).equals(_sorted(before[name], table)), name
        assert _sorted(st.select(name), table).equals(_sorted(frames[name], table)), name
    kinds = dict(st.query("SELECT table_name AS n, table_type AS t FROM information_schema.tables WHERE "
                          "table_schema = current_schema() AND table_name IN ('trades', 'hdi_trades')").iter_rows())
    assert kinds == {"trades": "VIEW", "hdi_trades": "BASE TABLE"}
    st.check(["trades", "mbo", "bbo", "mbp10"])
    # and the converted store takes new rows and re-runs as before
    assert st.write("trades", frames["trades"]).already_present == frames["trades"].height
