"""``Transaction.delete_days``: the one path that deletes data rows (issue 15.2, restatements), on
every store (the backend is in the test id). A day is replaced exactly by the delete and the new rows
in one transaction: a failure leaves the old day whole."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from hdi.errors import StoreError

UTC = dt.UTC
DAY = dt.datetime(2024, 1, 3, tzinfo=UTC)
NEXT = DAY + dt.timedelta(days=1)


def _ns(day: int, hour: int, i: int = 0) -> int:
    return int(dt.datetime(2024, 1, day, hour, tzinfo=UTC).timestamp()) * 10**9 + i


def _trades(make_trades, iid: int = 1, dataset: str = "GLBX.MDP3", days=(2, 3, 4), price: int = 70_000_000_000):
    return make_trades([{"instrument_id": iid, "dataset": dataset, "ts_recv_ns": _ns(d, h, k), "sequence": k,
                         "price": price + k} for d in days for h in (0, 12, 23) for k in range(2)])


def _keys(store):
    return sorted(store.select("trades").select("dataset", "instrument_id", "ts_recv_ns").iter_rows())


def test_delete_days_removes_exactly_that_scope(store, make_trades):
    store.write("trades", _trades(make_trades, 1))
    store.write("trades", _trades(make_trades, 2))
    store.write("trades", _trades(make_trades, 1, dataset="XNAS.ITCH"))
    before = _keys(store)
    with store.transaction() as txn:
        n = txn.delete_days("trades", dataset="GLBX.MDP3", symbols_or_instrument_ids=[1], start=DAY, end=NEXT)
    assert n == 6
    gone = [k for k in before if k[0] == "GLBX.MDP3" and k[1] == 1 and _ns(3, 0) <= k[2] < _ns(4, 0)]
    assert len(gone) == 6
    assert _keys(store) == sorted(set(before) - set(gone))


def test_delete_then_write_replaces_a_day_exactly(store, make_trades):
    store.write("trades", _trades(make_trades, 1))
    new_day = make_trades([{"instrument_id": 1, "ts_recv_ns": _ns(3, 12, 0), "sequence": 0, "price": 71_000_000_000},
                           {"instrument_id": 1, "ts_recv_ns": _ns(3, 23, 1), "sequence": 1, "price": 70_000_000_001}])
    with store.transaction() as txn:
        txn.delete_days("trades", dataset="GLBX.MDP3", symbols_or_instrument_ids=[1], start=DAY, end=NEXT)
        assert txn.write("trades", new_day).inserted == 2  # rows deleted above are not "already present"
    got = store.select("trades", start=DAY, end=NEXT)
    assert got.select("ts_recv_ns", "price").rows() == [(_ns(3, 12, 0), Decimal("71")),
                                                         (_ns(3, 23, 1), Decimal("70.000000001"))]
    assert store.select("trades").height == 12 + 2  # days 2 and 4 untouched


def test_a_failure_after_the_delete_leaves_the_old_day(store, make_trades):
    store.write("trades", _trades(make_trades, 1))
    before = _keys(store)
    with pytest.raises(RuntimeError), store.transaction() as txn:
        txn.delete_days("trades", dataset="GLBX.MDP3", symbols_or_instrument_ids=[1], start=DAY, end=NEXT)
        raise RuntimeError("the new fetch failed")
    assert _keys(store) == before


def test_symbols_resolve_through_the_stored_symbology(store, make_trades, make_symbology):
    store.write("trades", _trades(make_trades, 1), symbology=make_symbology([("ESH4", 1, "2024-01-01", "2024-02-01")]))
    store.write("trades", _trades(make_trades, 2))
    with store.transaction() as txn:
        assert txn.delete_days("trades", dataset="GLBX.MDP3", symbols_or_instrument_ids=["ESH4"], start=DAY,
                               end=NEXT) == 6
        assert txn.delete_days("trades", dataset="GLBX.MDP3", symbols_or_instrument_ids=["NOPE"], start=DAY,
                               end=NEXT) == 0
    assert store.select("trades").height == 36 - 6


def test_granularity_restricts_a_shared_table(store, make_bars):
    store.write("ohlcv", make_bars([{"instrument_id": 1, "bar_timestamp_utc": "2024-01-03", "granularity": g}
                                    for g in ("1d", "1h")]))
    with store.transaction() as txn:
        assert txn.delete_days("ohlcv", dataset="GLBX.MDP3", symbols_or_instrument_ids=[1], start=DAY, end=NEXT,
                               equals={"granularity": "1h"}) == 1
    assert store.select("ohlcv").get_column("granularity").to_list() == ["1d"]


def test_bad_arguments_are_one_line_errors(store, make_trades):
    store.write("trades", _trades(make_trades, 1))
    with pytest.raises(StoreError, match="'ingest_days' is not a data table"), store.transaction() as txn:
        txn.delete_days("ingest_days", dataset="GLBX.MDP3", symbols_or_instrument_ids=[1], start=DAY, end=NEXT)
    with pytest.raises(StoreError, match="has no column 'nope'"), store.transaction() as txn:
        txn.delete_days("trades", dataset="GLBX.MDP3", symbols_or_instrument_ids=[1], start=DAY, end=NEXT,
                        equals={"nope": 1})
    assert store.select("trades").height == 18
