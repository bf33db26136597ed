"""The one-statement read (hdi/_readsql.py) writes its values into the SQL as literals and finishes the
frame column by column: every literal means exactly its value in PostgreSQL (quotes, backslashes,
int64 bounds, microseconds; non-ASCII text is refused), whatever ``standard_conforming_strings`` says; a value it
cannot write makes it step aside; and on the other readers it answers for (statistics, definitions,
status, imbalance: ns companions, timestamps without one, DECIMAL(28,9) statistics, nulls) and on
prices over the whole DECIMAL(19,9) range it returns what the step-by-step read returns, float for
float."""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

import polars as pl
import pytest

import hdi
from hdi import _readsql
from hdi._tables import TABLES, ColType, Table
from hdi.store import open_store
from tests.test_readsql import _both

UTC = dt.UTC
T0 = 1_704_888_000_000_000_000  # 2024-01-10T12:00:00Z


def _same(fast: pl.DataFrame, steps: pl.DataFrame) -> None:
    assert fast.schema == steps.schema
    assert fast.height > 0
    assert fast.rows() == steps.rows()  # values and order (no ties in these stores)


# ---------------------------------------------------------------------------------- literals
@pytest.mark.timescale
@pytest.mark.parametrize("conforming", ["on", "off"])
def test_each_literal_means_its_value_in_postgresql(timescale_schema_url, conforming):
    st = open_store(timescale_schema_url)
    st._fetch_literal(f"SET standard_conforming_strings = {conforming}")
    p = _readsql.Literals()
    texts = ["", "plain", "O'Brien", "back\\slash", "\\'", "''", "end\\", "$1", "-- no comment",
             "a\nb\tc\r", "E'x'", "%_", "\\x41"]
    for v in texts:
        assert st._fetch_literal(f"SELECT CAST({p(v)} AS text) AS v").item() == v, v
    for v in (0, -1, 2**63 - 1, -(2**63), 1_704_888_000_000_000_007):
        assert st._fetch_literal(f"SELECT CAST({p(v)} AS bigint) AS v").item() == v, v
    for v in (dt.datetime(2024, 1, 10, 12, 0, 0, 123_457, tzinfo=UTC), dt.datetime(1, 1, 1, tzinfo=UTC),
              dt.datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
              dt.datetime(2024, 6, 1, 2, 3, 4, 5, tzinfo=dt.timezone(dt.timedelta(hours=-5)))):
        got = st._fetch_literal(f"SELECT {p(v)} AS v").item()
        assert got == v, v
    for v in (dt.date(2024, 2, 29), dt.date(1, 1, 1)):
        assert st._fetch_literal(f"SELECT {p(v)} AS v").item() == v
    assert st._fetch_literal(f"SELECT CAST({p(None)} AS text) AS v").item() is None


@pytest.mark.parametrize("value", ["a\x00b", "\ud800", "É", "漢字🙂", 2**63, -(2**63) - 1, True, 1.5, Decimal("1"),
                                   dt.datetime(2024, 1, 1), b"x"])
def test_a_value_no_literal_carries_exactly_is_refused(value):
    with pytest.raises(_readsql.Unwritable):
        _readsql.Literals()(value)


@pytest.mark.timescale
def test_the_one_statement_steps_aside_for_values_it_cannot_write(timescale_schema_url, make_bars, make_symbology):
    st = open_store(timescale_schema_url)
    st.write("ohlcv", make_bars([{"instrument_id": 101, "bar_timestamp_utc": "2024-01-10"}]),
             symbology=make_symbology([("CL.c.0", 101, "2024-01-02", "2024-01-20")]))
    t, s, e = TABLES["ohlcv"], dt.datetime(2024, 1, 9, tzinfo=UTC), dt.datetime(2024, 1, 11, tzinfo=UTC)
    assert _readsql.read(st, t, ["CL.c.0"], s, e, None, {"granularity": "1d"}, "float").height == 1
    assert _readsql.read(st, t, ["CL.c\x00.0"], s, e, None, {"granularity": "1d"}, "float") is None
    assert _readsql.read(st, t, ["CL.c.0"], s, e, None, {"granularity": 1}, "float") is None  # not text
    assert _readsql.read(st, t, ["CL.c.0"], s, e, None, {"volume": "100"}, "float") is None  # not an int
    assert _readsql.read(st, t, ["CL.c.0"], s, e, None, {"no_such_column": "x"}, "float") is None


# ---------------------------------------------------------------------------------- symbols
@pytest.mark.parametrize("unicode", [False, True], ids=["ascii", "unicode"])
def test_symbols_with_quotes_backslashes_and_unicode(store, make_bars, make_symbology, monkeypatch, unicode):
    """Quotes and backslashes are written as literals; a non-ASCII symbol makes the one statement
    step aside (its bound parameter carries it in any client encoding): the same rows either way."""
    odd = ["O'B.c.0", "A\\B.c.0", "\\'.c.0", "$1.c.0"] + (["É漢.c.0"] if unicode else [])
    sym = make_symbology([(s, 101 + i, "2024-01-02", "2024-01-20") for i, s in enumerate(odd)])
    bars = [{"instrument_id": 101 + i, "bar_timestamp_utc": f"2024-01-{d:02d}", "price": 70_000_000_000 + 1_000 * i + d}
            for i in range(len(odd)) for d in (9, 10, 11)]
    store.write("ohlcv", make_bars(bars), symbology=sym)
    fast, steps, answered = _both(lambda: hdi.read_bars(odd, "2024-01-09", "2024-01-12", store=store.url),
                                  monkeypatch)
    _same(fast, steps)
    assert sorted(set(fast["symbol"].to_list())) == sorted(odd)
    if store.kind in _readsql.KINDS:
        assert answered == [not unicode]


# ---------------------------------------------------------------------------------- prices
def test_float_prices_over_the_whole_decimal_range(store, make_bars, make_symbology, monkeypatch):
    """Float for float what the steps give (Polars' Decimal -> Float64), and the correctly rounded
    double of each exact price; decimal prices exact."""
    rng = random.Random(17)
    edges = [0, 1, -1, 9_223_372_036_854_775_807, -9_223_372_036_854_775_807, 999_999_999, 70_123_456_789,
             2**53 + 1, -(2**53) - 1]
    values = edges + [rng.randint(-(2**63) + 1, 2**63 - 1) for _ in range(60)] + \
        [rng.randint(-10**13, 10**13) for _ in range(60)]
    days = [dt.date(2024, 1, 1) + dt.timedelta(days=i) for i in range(len(values) // 4 + 1)]
    bars = []
    for i, day in enumerate(days):
        four = (values[4 * i:4 * i + 4] + [0, 0, 0, 0])[:4]
        bars.append({"instrument_id": 101, "bar_timestamp_utc": day.isoformat(), "open_price": four[0],
                     "high_price": four[1], "low_price": four[2], "close_price": four[3]})
    store.write("ohlcv", make_bars(bars), symbology=make_symbology([("CL.c.0", 101, "2024-01-01", "2024-12-31")]))
    end = (days[-1] + dt.timedelta(days=1)).isoformat()
    for prices in ("float", "decimal"):
        fast, steps, answered = _both(lambda p=prices: hdi.read_bars("CL.c.0", "2024-01-01", end, store=store.url,
                                                                     prices=p), monkeypatch)
        _same(fast, steps)
        if store.kind in _readsql.KINDS:
            assert answered == [True]
        cols = ["open_price", "high_price", "low_price", "close_price"]
        got = [v for row in fast.select(cols).rows() for v in row]
        exact = [Decimal(v).scaleb(-9) for row in bars for v in (row[c] for c in cols)]
        assert got == ([float(x) for x in exact] if prices == "float" else exact)


# ---------------------------------------------------------------------------------- other readers
def _rows(t: Table, n: int, fixed: dict[str, object]) -> pl.DataFrame:
    """n rows of ``t``: every column filled by its type (ns timestamps with their *_ns companions,
    large prices and statistics, nulls in every other row of a nullable column), then ``fixed``."""
    ns_of = dict(t.ns_columns)
    ns_cols = set(ns_of.values())
    recs = []
    for i in range(n):
        rec: dict[str, object] = {}
        for c in t.columns:
            if c.name in ns_cols:
                continue
            if c.nullable and i % 2 and c.name not in fixed:
                rec[c.name] = None
                if c.name in ns_of:
                    rec[ns_of[c.name]] = None
                continue
            if c.type is ColType.TEXT:
                rec[c.name] = f"{c.name}-{i}"
            elif c.type in (ColType.I16, ColType.I32, ColType.I64):
                rec[c.name] = i + 1
            elif c.type is ColType.PRICE:
                rec[c.name] = Decimal(9_223_372_036_854_775_807 - 7_919 * i).scaleb(-9)
            elif c.type is ColType.STAT:
                rec[c.name] = Decimal("123456789012345678.123456789") - i
            elif c.type is ColType.DATE:
                rec[c.name] = dt.date(2024, 1, 10)
            elif c.type is ColType.F64:
                rec[c.name] = 0.1 * i
            elif c.name in ns_of:
                rec[ns_of[c.name]] = T0 + 1_000_003 * i + 7
            else:
                rec[c.name] = dt.datetime(2024, 1, 10, 12, 0, 0, 123_457, tzinfo=UTC) + dt.timedelta(seconds=i)
        rec.update(fixed)
        recs.append(rec)
    df = pl.DataFrame(recs, schema={c.name: pl.Int64 if c.name in ns_cols else c.type.polars for c in t.columns})
    ts = [pl.col(ns).cast(pl.Datetime("ns")).dt.replace_time_zone("UTC").alias(c) for c, ns in t.ns_columns]
    return df.with_columns(ts).select(t.names).cast(t.polars_schema)


READERS = [
    ("statistics", lambda u: hdi.read_statistics("CL.c.0", "2024-01-10", "2024-01-11", store=u, latest=False)),
    ("statistics decimal", lambda u: hdi.read_statistics("CL.c.0", "2024-01-10", "2024-01-11", store=u, latest=False,
                                                         prices="decimal")),
    ("instruments", lambda u: hdi.read_definitions("CL.c.0", "2024-01-10", "2024-01-11", store=u)),
    ("instruments decimal", lambda u: hdi.read_definitions("CL.c.0", "2024-01-10", "2024-01-11", store=u,
                                                           prices="decimal")),
    ("status", lambda u: hdi.read_status("CL.c.0", "2024-01-10", "2024-01-11", store=u)),
    ("imbalance", lambda u: hdi.read_imbalance("CL.c.0", "2024-01-10", "2024-01-11", store=u)),
    ("imbalance decimal", lambda u: hdi.read_imbalance("CL.c.0", "2024-01-10", "2024-01-11", store=u,
                                                       prices="decimal")),
]


@pytest.mark.parametrize("name,query", READERS, ids=[r[0] for r in READERS])
def test_other_readers_equal_the_steps(store, make_symbology, name, query, monkeypatch):
    table = name.split()[0]
    t = TABLES[table]
    fixed: dict[str, object] = {"dataset": "GLBX.MDP3", "instrument_id": 101, "data_source": "databento",
                                "publisher_id": 1}
    if table == "instruments":
        fixed["raw_symbol"] = "CLF4"
    store.write(table, _rows(t, 6, fixed),
                symbology=make_symbology([("CL.c.0", 101, "2024-01-02", "2024-01-20"),
                                          ("CLF4", 101, "2024-01-02", "2024-01-20")]))
    fast, steps, answered = _both(lambda: query(store.url), monkeypatch)
    _same(fast, steps)
    assert fast.height == 6
    if store.kind in _readsql.KINDS:
        assert answered and answered[0]
    if "received_timestamp_utc" in fast.columns:  # exact to the nanosecond
        assert fast["received_timestamp_utc"].dt.epoch("ns").to_list() == [T0 + 1_000_003 * i + 7 for i in range(6)]
