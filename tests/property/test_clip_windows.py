"""Property: a symbol's windows clipped to a read's [start, end) (``hdi._symbols._clip``) are exactly
the intersections, whichever way they are computed: in Python for a few whole-microsecond windows,
by Polars otherwise (windows with nanoseconds, or many), checked against integer nanoseconds."""

from __future__ import annotations

import datetime as dt

import polars as pl
from hypothesis import given
from hypothesis import strategies as st

from hdi._symbols import _SMALL, SELECTION_SCHEMA, _clip, _whole_us

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
DAY_NS = 86_400 * 10**9
BASE = (dt.datetime(2024, 1, 1, tzinfo=dt.UTC) - EPOCH) // dt.timedelta(microseconds=1) * 1000

# a bound: a whole day, a whole microsecond, or (to take the Polars path) a nanosecond; or none
bound_ns = st.one_of(
    st.none(),
    st.integers(0, 40).map(lambda d: BASE + d * DAY_NS),
    st.integers(0, 40 * DAY_NS // 1000).map(lambda us: BASE + us * 1000),
    st.integers(0, 40 * DAY_NS).map(lambda ns: BASE + ns),
)
window = st.tuples(st.sampled_from(["CL.c.0", "NG.c.0", "101"]), st.sampled_from(["GLBX.MDP3", None]),
                   st.integers(1, 9), bound_ns, bound_ns)
# the read's range: Python datetimes (microseconds), with or without a zone (naive is UTC)
instant = st.integers(-DAY_NS // 1000, 42 * DAY_NS // 1000).map(
    lambda us: EPOCH + dt.timedelta(microseconds=BASE // 1000 + us))


def frame(windows: list[tuple]) -> pl.DataFrame:
    cols = list(zip(*windows, strict=True)) if windows else [[]] * 5
    return pl.DataFrame({"symbol": list(cols[0]), "dataset": list(cols[1]), "instrument_id": list(cols[2]),
                         "from_ts": pl.Series(list(cols[3]), dtype=pl.Int64),
                         "to_ts": pl.Series(list(cols[4]), dtype=pl.Int64)},
                        schema_overrides={"symbol": pl.String, "dataset": pl.String, "instrument_id": pl.Int64}
                        ).cast(SELECTION_SCHEMA)


def ns(t: dt.datetime) -> int:
    return (t.replace(tzinfo=dt.UTC) - EPOCH) // dt.timedelta(microseconds=1) * 1000


@given(st.lists(window, max_size=_SMALL + 6), instant, instant, st.booleans())
def test_clipped_windows_are_the_exact_intersections(windows, start, end, naive):
    if naive:
        start, end = start.replace(tzinfo=None), end.replace(tzinfo=None)
    sel = frame(windows)
    got = _clip(sel, _whole_us(sel), start, end)
    s, e = ns(start), ns(end)
    expected = []
    for sym, ds, iid, lo, hi in windows:
        lo2, hi2 = max(lo if lo is not None else s, s), min(hi if hi is not None else e, e)
        if lo2 < hi2:
            expected.append((sym, ds, iid, lo2, hi2))
    assert got.schema == SELECTION_SCHEMA
    as_ns = got.with_columns(pl.col("from_ts", "to_ts").dt.epoch("ns"))
    assert as_ns.rows() == expected
    # the Polars path gives the same frame
    assert got.equals(_clip(sel, False, start, end))
