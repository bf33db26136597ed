"""Property: labelling rows with their contract's raw symbol per instrument, when one raw-symbol
interval covers each selection window (``hdi._rawsym.constant_raw_symbols``), gives every row the
label the day-by-day labelling gives it (the interval of the row's UTC day, the definitions after)."""

from __future__ import annotations

import datetime as dt

import polars as pl
from hypothesis import event, example, given
from hypothesis import strategies as st

from hdi._rawsym import constant_raw_symbols, with_raw_symbols

D0 = dt.date(2024, 1, 1)
DAY_NS = 86_400 * 10**9
BASE_NS = (dt.datetime(2024, 1, 1, tzinfo=dt.UTC) - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)).days * DAY_NS
TS = pl.Datetime("ns", "UTC")
IDS = (1, 2, 3)

interval = st.tuples(st.sampled_from(["GLBX.MDP3", "XNAS.ITCH"]), st.sampled_from(IDS),
                     st.sampled_from(["CLF4", "CLG4", "CLH4", "NGF4"]), st.integers(0, 20), st.integers(1, 12))
# a window: dataset (or none), instrument, start and length in ns (whole days, or anywhere in a day)
window = st.tuples(st.sampled_from(["GLBX.MDP3", "GLBX.MDP3", "GLBX.MDP3", None]), st.sampled_from(IDS),
                   st.one_of(st.integers(0, 25).map(lambda d: d * DAY_NS), st.integers(0, 25 * DAY_NS)),
                   st.integers(1, 6 * DAY_NS))


# per window: an interval that covers its days, starts a day late, ends a day early, or none
kind = st.tuples(st.sampled_from(["covers", "covers", "late", "early", "none"]), st.integers(0, 3),
                 st.integers(0, 3), st.sampled_from(["CLF4", "CLG4"]))


def around(windows: list[tuple], kinds: list[tuple]) -> list[tuple]:
    out = []
    for (ds, iid, lo, n), (k, back, ahead, raw) in zip(windows, kinds, strict=False):
        first, last = lo // DAY_NS, (lo + n - 1) // DAY_NS
        a = first + 1 if k == "late" else first - back
        end = last if k == "early" else last + 1 + ahead
        if k != "none" and end > a:
            out.append((ds or "GLBX.MDP3", iid, raw, a, end - a))
    return out


@given(st.lists(window, min_size=1, max_size=2), st.lists(kind, min_size=2, max_size=2), st.lists(interval, max_size=2),
       st.booleans(), st.lists(st.floats(0, 1, exclude_max=True), min_size=1, max_size=8))
@example([("GLBX.MDP3", 1, DAY_NS, 3 * DAY_NS)], [("late", 0, 0, "CLF4")], [], False, [0.5])
@example([("GLBX.MDP3", 1, DAY_NS, 3 * DAY_NS)], [("early", 0, 0, "CLF4")], [], True, [0.5])
@example([("GLBX.MDP3", 1, DAY_NS, 3 * DAY_NS), ("GLBX.MDP3", 2, 0, DAY_NS)],
         [("covers", 1, 1, "CLF4"), ("covers", 0, 0, "CLG4")], [], True, [0.2])
def test_labels_per_instrument_are_the_labels_per_day(windows, kinds, extra, with_defs, where):
    intervals = around(windows, kinds) + extra
    ivs = pl.DataFrame([(ds, iid, raw, D0 + dt.timedelta(days=a), D0 + dt.timedelta(days=a + n))
                        for ds, iid, raw, a, n in intervals],
                       schema={"dataset": pl.String, "instrument_id": pl.Int64, "raw_symbol": pl.String,
                               "start_date": pl.Date, "end_date": pl.Date}, orient="row")
    defs = pl.DataFrame({"dataset": ["GLBX.MDP3"] * 2, "instrument_id": [1, 2], "raw_symbol": ["DEF1", "DEF2"],
                         "received_timestamp_utc": [dt.datetime(2024, 1, 3, tzinfo=dt.UTC)] * 2},
                        schema_overrides={"received_timestamp_utc": TS})
    if not with_defs:
        defs = defs.clear()
    sel = pl.DataFrame([(ds, iid, BASE_NS + lo, BASE_NS + lo + n) for ds, iid, lo, n in windows],
                       schema={"dataset": pl.String, "instrument_id": pl.Int64, "from_ts": pl.Int64,
                               "to_ts": pl.Int64}, orient="row").with_columns(pl.col("from_ts", "to_ts").cast(TS))
    # rows inside each window (its first and last nanosecond among them), of the window's dataset
    rows = []
    for ds, iid, lo, n in windows:
        for f in [0.0, *where, (n - 1) / n]:
            rows.append((ds or "GLBX.MDP3", iid, BASE_NS + lo + int(f * n)))
    frame = pl.DataFrame(rows, schema={"dataset": pl.String, "instrument_id": pl.Int64, "t": pl.Int64},
                         orient="row").with_columns(pl.col("t").cast(TS)).with_row_index("k")
    const = constant_raw_symbols(ivs, sel)
    by_day = with_raw_symbols(None, frame.lazy(), "t", list(IDS), (ivs, defs)).collect().sort("k")  # type: ignore[arg-type]
    event("one raw symbol per instrument" if const is not None else "labelled by day")
    if const is None:
        return
    per_instrument = with_raw_symbols(None, frame.lazy(), "t", list(IDS), (ivs, defs),  # type: ignore[arg-type]
                                      constant=const).collect()
    assert per_instrument.get_column("k").to_list() == frame.get_column("k").to_list()  # order kept
    assert per_instrument.get_column("raw_symbol").to_list() == by_day.get_column("raw_symbol").to_list()
    assert per_instrument.get_column("raw_symbol").null_count() == 0
