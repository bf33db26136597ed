"""Random sequences of trade writes (new rows, overlaps, ``ignore``/``update``, rolled-back
transactions) keep ``row_counts`` equal to a ``count(*)`` of the stored rows, on every store."""

from __future__ import annotations

import uuid
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st_

from hdi import _status_report as sr
from hdi.store import close_all, open_store
from hdi.store import counts as rc

DAY = 86_400 * 10**9
T0 = 1_704_153_600 * 10**9  # 2024-01-02T00:00Z
KEYS = ("table", "dataset", "instrument_id", "granularity", "day")


def _trades(make_trades, ids, days, seqs, price) -> pl.DataFrame:
    return make_trades([{"instrument_id": i, "ts_recv_ns": T0 + d * DAY + s * 1_000_003, "sequence": s, "price": price}
                        for i in ids for d in days for s in seqs])


def assert_counts_true(store) -> None:
    with store.session():
        truth = sr._scan_daily(store).sort(KEYS, nulls_last=True)
    assert rc.daily(store).sort(KEYS, nulls_last=True).to_dicts() == truth.to_dicts()


# --------------------------------------------------------------------------- property
_WRITE = st_.tuples(
    st_.lists(st_.integers(1, 3), min_size=1, max_size=3, unique=True),  # instruments
    st_.lists(st_.integers(0, 3), min_size=1, max_size=2, unique=True),  # days
    st_.integers(0, 6), st_.integers(1, 6),  # first sequence, how many
    st_.sampled_from(["ignore", "update"]),
    st_.booleans(),  # roll the transaction back
)


@pytest.mark.parametrize("backend", ["duckdb", pytest.param("timescale", marks=pytest.mark.timescale), "iceberg"])
@given(writes=st_.lists(_WRITE, min_size=1, max_size=5))
def test_random_write_sequences_keep_counts_equal_to_the_truth(backend, writes, request, tmp_path_factory,
                                                              make_trades):
    if backend == "timescale":
        url = request.getfixturevalue("timescale_url")
        import adbc_driver_postgresql.dbapi as pg

        schema = f"hdi_t_{uuid.uuid4().hex[:12]}"
        with pg.connect(url, autocommit=True) as c, c.cursor() as cur:
            cur.execute(f"CREATE SCHEMA {schema}")
        url = f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema},public"
    else:
        folder: Path = tmp_path_factory.mktemp("prop")
        url = f"duckdb://{folder / 's.duckdb'}" if backend == "duckdb" else f"iceberg://{folder / 'lake'}"
    store = open_store(url)
    try:
        for ids, days, first, n, on_conflict, rollback in writes:
            frame = _trades(make_trades, ids, days, range(first, first + n), 70_000_000_000 + first)
            try:
                with store.transaction() as txn:
                    txn.write("trades", frame, on_conflict=on_conflict)
                    if rollback:
                        raise RuntimeError("rolled back")
            except RuntimeError:
                pass
            assert_counts_true(store)
    finally:
        close_all()
        if backend == "timescale":
            with pg.connect(request.getfixturevalue("timescale_url"), autocommit=True) as c, c.cursor() as cur:
                cur.execute(f"DROP SCHEMA {schema} CASCADE")
