"""Property: any symbol list and any dates given to ``hdi query``, ``read_bars`` or ``hdi ingest``
either work (rows only of the symbols asked, only inside [start, end)) or are refused with one line
``error: ...`` (exit 1, or 2 beyond a limit); never a traceback (a Polars conversion error), a hang or a
half-written store.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import shutil
from pathlib import Path

import pytest
from hypothesis import event, example, given
from hypothesis import strategies as st

from .conftest import assert_clean, fresh_dir

NOW = dt.datetime(2026, 1, 15, tzinfo=dt.UTC)
KEY = "db-test-0123456789abcdefABCDEF"
RECIPE = """\
name: prop_query
source:
  vendor: databento
  schema: ohlcv-1d
  start: 2024-01-01
  end: 2024-03-01
  requests:
    - {dataset: GLBX.MDP3, stype_in: continuous, symbols: [CL.c.0, NG.c.0]}
transform:
  - rename: {ts_event: bar_timestamp_utc, open: open_price, high: high_price, low: low_price, close: close_price}
  - fixed_to_decimal: [open_price, high_price, low_price, close_price]
  - constant: {granularity: 1d, data_source: databento, trade_count: null, vwap: null}
target:
  table: ohlcv
"""


@pytest.fixture(scope="module")
def loaded(tmp_path_factory) -> tuple[str, Path]:
    """A DuckDB store holding January 2024 daily bars of CL.c.0 and NG.c.0 (real client, local gateway)."""
    from typer.testing import CliRunner

    from hdi.cli.app import app
    from hdi.source.chunks import Request
    from hdi.source.databento import DatabentoSource
    from hdi.testing.gateway import Gateway

    out = tmp_path_factory.mktemp("q")
    with Gateway(now=NOW) as gw, pytest.MonkeyPatch.context() as mp:
        for k, v in gw.env().items():
            mp.setenv(k, v)
        mp.setenv("DATABENTO_API_KEY", KEY)
        mp.setenv("HDI_DATA_DIR", str(out / "data"))
        src = DatabentoSource(cache_dir=out / "cache")
        req = Request("GLBX.MDP3", "ohlcv-1d", "continuous", ("CL.c.0", "NG.c.0"), dt.datetime(2024, 1, 1),
                      dt.datetime(2024, 2, 1))
        f = Path(shutil.copy(src.fetch(req), out / "jan.dbn.zst"))
        (out / "r.yaml").write_text(RECIPE)
        store = f"duckdb://{out / 'q.duckdb'}"
        res = CliRunner().invoke(app, ["ingest", "--recipe", str(out / "r.yaml"), "--from-file", str(f),
                                       "--store", store, "--no-progress"])
        assert res.exit_code == 0, res.stderr
    return store, out / "r.yaml"


one_symbol = st.one_of(
    st.sampled_from(["CL.c.0", "NG.c.0"]),
    st.sampled_from(["CL.c.0", "NG.c.0", "ES.c.0", "CLG4", "CL.FUT", "0", "4294967295", "4294967296",
                     "99999999999999999999999", "²", "５", " ", "", "a" * 71]),
    st.integers(0, 2**70).map(str),
    st.text(max_size=20),
    st.text(alphabet="AB.c0,", min_size=60, max_size=120),
)


@st.composite
def symbol_args(draw) -> str:
    good = st.sampled_from(["CL.c.0", "NG.c.0", "CL.c.0 ", " NG.c.0"])
    syms = draw(st.lists(good if draw(st.booleans()) else one_symbol, min_size=1, max_size=6))
    text = ",".join(syms)
    if draw(st.integers(0, 9)) == 0:  # sometimes far too many or far too long
        text = ",".join([text] * draw(st.integers(1, 3000)))
    return text


near = st.datetimes(min_value=dt.datetime(2023, 12, 1), max_value=dt.datetime(2024, 3, 1))
near_times = st.one_of(near.map(lambda t: t.date().isoformat()), near.map(lambda t: t.isoformat() + "Z"))
any_times = st.one_of(
    st.dates(min_value=dt.date(1, 1, 1), max_value=dt.date(9999, 12, 31)).map(dt.date.isoformat),
    st.datetimes(min_value=dt.datetime(1, 1, 2), max_value=dt.datetime(9999, 12, 30),
                 timezones=st.sampled_from([None, dt.UTC, dt.timezone(dt.timedelta(hours=14)),
                                            dt.timezone(dt.timedelta(hours=-12))])).map(dt.datetime.isoformat),
    st.sampled_from(["1677-09-21", "0001-01-01", "1969-12-31T23:59:59Z", "1970-01-01", "2262-01-01",
                     "2262-04-12", "9999-12-31T23:00:00-05:00", "0001-01-01T00:00:00+05:00", "2024-01-10",
                     "2024-02-01", "2024-13-01", "today", ""]),
    st.text(max_size=30),
)
times = st.one_of(near_times, near_times, any_times)


@st.composite
def ranges(draw) -> tuple[str, str]:
    """A (start, end) pair: half of them ordered days near the stored data, half anything."""
    if draw(st.booleans()):
        a, b = sorted(draw(st.lists(near, min_size=2, max_size=2, unique=True)))
        return a.date().isoformat() if a.date() != b.date() else a.isoformat(), b.isoformat() + "Z"
    return draw(times), draw(times)


def _utc(text: str) -> dt.datetime:
    from hdi._timeutil import parse_time

    return parse_time(text, "t")


@given(symbol_args(), ranges())
@example("CL.c.0,NG.c.0", ("2024-01-01", "2024-02-01"))
@example("5482", ("1677-09-21", "2024-01-01"))
@example("CL.c.0", ("0001-01-01", "2024-01-01"))
@example("99999999999999999999999", ("2024-01-01", "2024-02-01"))
@example(",".join(["CL.c.0"] * 20000), ("2024-01-01", "2024-02-01"))
def test_query_symbols_and_dates(run_hdi, loaded, symbols, period):
    store, _ = loaded
    start, end = period
    out = run_hdi("query", "--schema", "ohlcv-1d", "--symbols", symbols, "--start", start, "--end", end,
                  "--store", store, "--format", "csv")
    if not assert_clean(out):
        event(f"exit {out.exit_code}")
        return
    event("rows" if out.stdout.count("\n") > 1 else "no rows")
    asked = {s.strip() for s in symbols.split(",") if s.strip()}
    lo, hi = _utc(start), _utc(end)
    for row in csv.DictReader(io.StringIO(out.stdout)):
        assert row["symbol"] in asked, row
        ts = dt.datetime.fromisoformat(row["bar_timestamp_utc"].replace("Z", "+00:00"))
        ts = ts.replace(tzinfo=dt.UTC) if ts.tzinfo is None else ts
        assert lo <= ts < hi, (row, start, end)


@given(st.lists(one_symbol, min_size=0, max_size=4),
       st.one_of(times, st.dates(), st.datetimes(timezones=st.sampled_from([None, dt.UTC])), st.integers(), st.none()),
       st.one_of(times, st.dates(), st.datetimes(timezones=st.sampled_from([None, dt.UTC]))))
@example(["99999999999999999999999"], "2024-01-01", "2024-02-01")
@example(["CL.c.0"], dt.datetime(1, 1, 1), dt.datetime(2024, 1, 1))
def test_read_bars_raises_only_hdi_errors(loaded, symbols, start, end):
    import hdi

    store, _ = loaded
    try:
        df = hdi.read_bars(symbols, start, end, store=store)
    except hdi.HdiError as e:
        assert "\n" not in e.message
        event(type(e).__name__)
        return
    event("rows" if df.height else "no rows")
    lo, hi = _utc(start if not isinstance(start, dt.date | dt.datetime) else start.isoformat()), \
        _utc(end if not isinstance(end, dt.date | dt.datetime) else end.isoformat())
    if df.height:
        assert df["bar_timestamp_utc"].min() >= lo and df["bar_timestamp_utc"].max() < hi


@given(symbol_args(), st.one_of(st.none(), times), st.one_of(st.none(), times))
@example("CL.c.0", "1677-09-21", None)
@example(",".join(f"S{i}" for i in range(5000)), None, None)
@example("A" * 100_000, None, None)
def test_ingest_overrides_are_checked_before_anything_is_written(run_hdi, loaded, tmp_path, symbols, start, end):
    _, recipe = loaded
    work = fresh_dir(tmp_path)
    args = ["ingest", "--recipe", recipe, "--symbols", symbols, "--store", f"duckdb://{work / 's.duckdb'}",
            "--no-progress", "--dry-run"]
    args += ["--start", start] if start is not None else []
    args += ["--end", end] if end is not None else []
    out = run_hdi(*args)  # no DATABENTO_API_KEY: good arguments end at "missing API key"
    assert not assert_clean(out), out
    assert not (work / "s.duckdb").exists()
