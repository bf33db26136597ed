"""Good rows always load; the quarantine budget only decides how a run reports; price rules follow
the instrument. Shipped recipes, DBN files written with hdi.testing.dbnfiles, both stores."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import polars as pl

import hdi
from hdi import _config as config
from hdi._status_report import status
from hdi.pipeline import ingest
from hdi.store import open_store
from hdi.testing.dbnfiles import Bar, write_daily_bars

CLK0 = 3403  # an instrument id for the file's mapping
SPY = 15144


def write_bars(path: Path, bars: list[tuple], *, dataset: str = "GLBX.MDP3", symbol: str = "CLK0",
               iid: int = CLK0) -> Path:
    """Daily bars ``(day, open, high, low, close, volume)`` (prices as decimal strings, None =
    DBN's undefined price) as a DBN v3 file (zstd for a ``.zst`` name) whose metadata maps
    ``symbol`` to ``iid``."""
    rows = [Bar(day.isoformat(), symbol, o, h, low, c, v) for day, o, h, low, c, v in bars]
    return write_daily_bars(path, rows, ids={symbol: iid}, dataset=dataset, publisher_id=1,
                            compress=path.name.endswith(".zst"))


# WTI May 2020 (CLK0) around its negative settlement: the 20 April close was -37.63.
CLK0_BARS = [
    (dt.date(2020, 4, 16), "19.87", "20.41", "19.20", "19.87", 211_000),
    (dt.date(2020, 4, 17), "19.85", "20.39", "17.31", "18.27", 247_000),
    (dt.date(2020, 4, 20), "17.73", "17.85", "-40.32", "-37.63", 247_947),
    (dt.date(2020, 4, 21), "-14.00", "10.50", "-16.74", "10.01", 12_400),
    (dt.date(2020, 4, 22), "0", "1.20", "-0.50", "0.01", 310),
]


def test_clk0_negative_prices_load_exactly_with_the_shipped_recipe(any_store_url, recipes_dir, tmp_path, cli):
    path = write_bars(tmp_path / "clk0.dbn.zst", CLK0_BARS)
    res = cli("ingest", "--recipe", recipes_dir / "ohlcv_1d.yaml", "--from-file", path, "--store", any_store_url)
    assert res.exit_code == 0, res.stderr
    bars = hdi.read_bars("CLK0", "2020-04-16", "2020-04-23", store=any_store_url, prices="decimal")
    assert bars.height == 5
    got = bars.sort("bar_timestamp_utc").select("open_price", "high_price", "low_price", "close_price").rows()
    assert got == [tuple(Decimal(x) for x in b[1:5]) for b in CLK0_BARS]
    assert bars.filter(pl.col("bar_timestamp_utc").dt.date() == dt.date(2020, 4, 20))["close_price"][0] == \
        Decimal("-37.63")
    assert not (config.quarantine_dir()).exists() or not list(config.quarantine_dir().rglob("*.parquet"))


def test_an_equity_bar_at_or_below_zero_is_quarantined_unless_the_recipe_overrides(any_store_url, recipes_dir,
                                                                                    tmp_path):
    bars = [(dt.date(2024, 3, 4), "510.10", "512.00", "509.00", "511.00", 1000),
            (dt.date(2024, 3, 5), "511.00", "512.00", "-1.00", "510.00", 1000)]
    path = write_bars(tmp_path / "spy.dbn", bars, dataset="EQUS.MINI", symbol="SPY", iid=SPY)
    r = ingest(recipes_dir / "ohlcv_1d.yaml", from_files=[path], store=any_store_url)
    assert (r.rows_loaded, r.rows_quarantined) == (1, 1)
    assert r.budget.symbols[0].reasons == {"low_price<=0": 1}
    override = tmp_path / "spy_any_price.yaml"
    override.write_text((recipes_dir / "ohlcv_1d.yaml").read_text().replace(
        "  max_failure_rate: 0.01", "  max_failure_rate: 0.01\n  allow_non_positive_prices: true"))
    again = ingest(override, from_files=[path], store=any_store_url)
    assert (again.rows_loaded, again.rows_quarantined, again.over_budget) == (1, 0, False)
    assert hdi.read_bars("SPY", "2024-03-01", "2024-03-08", store=any_store_url).height == 2


def test_an_undefined_price_never_becomes_a_value(any_store_url, recipes_dir, tmp_path):
    bars = [(dt.date(2024, 3, 4), "78.10", "79.00", "77.50", "78.90", 1000),
            (dt.date(2024, 3, 5), "78.90", "79.20", None, "78.00", 1000)]
    r = ingest(recipes_dir / "ohlcv_1d.yaml", from_files=[write_bars(tmp_path / "u.dbn", bars)], store=any_store_url)
    assert (r.rows_loaded, r.rows_quarantined) == (1, 1)
    stored = hdi.read_bars("CLK0", "2024-03-01", "2024-03-08", store=any_store_url, prices="decimal")
    assert stored["low_price"].to_list() == [Decimal("77.5")]
    q = pl.read_parquet(next(config.quarantine_dir().rglob("*.parquet")))
    assert q["_reasons"].to_list() == ["low_price:null"] and q["low_price"].to_list() == [None]


def _march(bad_day: dt.date) -> list[tuple]:
    out = []
    day = dt.date(2024, 3, 1)
    while day.month == 3:
        if day.weekday() < 5:
            high, low = ("80.00", "81.00") if day == bad_day else ("81.00", "79.00")  # high < low: invalid
            out.append((day, "80.00", high, low, "80.50", 1000 + day.day))
        day += dt.timedelta(days=1)
    return out


def test_one_invalid_bar_of_a_month_loads_every_good_bar_and_exits_over_budget(any_store_url, recipes_dir,
                                                                                tmp_path, cli):
    month = _march(dt.date(2024, 3, 12))
    path = write_bars(tmp_path / "march.dbn.zst", month, symbol="CLK4", iid=42)
    args = ("ingest", "--recipe", recipes_dir / "ohlcv_1d.yaml", "--from-file", path, "--store", any_store_url)
    first = cli(*args)
    assert first.exit_code == 3, first.stderr
    assert "over quarantine budget" in first.stderr
    assert "GLBX.MDP3 ohlcv-1d CLK4: 1 of 21 rows (4.76%) quarantined" in first.stderr
    assert "high_price<max(open,close,low) (1)" in first.stderr
    stored = hdi.read_bars("CLK4", "2024-03-01", "2024-04-01", store=any_store_url)
    assert stored.height == len(month) - 1 == 20
    assert dt.date(2024, 3, 12) not in stored["bar_timestamp_utc"].dt.date().to_list()

    st = open_store(any_store_url)
    run = st.runs(limit=1).row(0, named=True)
    assert run["status"] == "over_budget" and "over quarantine budget" in run["error"]
    assert st.chunks(status="done").height == 1
    over = status(any_store_url).over_budget
    assert over.select("dataset", "schema", "symbol", "rows", "quarantined", "judged", "open_rows").rows() == [
        ("GLBX.MDP3", "ohlcv-1d", "CLK4", 21, 1, "run", 1)]
    view = cli("status", "--store", any_store_url)
    assert "OVER QUARANTINE BUDGET" in view.stdout and "CLK4" in view.stdout
    verdict = json.loads(next(config.quarantine_dir().glob("run=*/budget.json")).read_text())
    assert verdict["over"] and verdict["symbols"][0]["symbol"] == "CLK4"

    second = cli(*args)  # the chunk is done: nothing loads twice, and the same rows do not fail again
    assert second.exit_code == 0, second.stderr
    assert "1 planned: 0 loaded, 1 already done" in second.stderr
    assert hdi.read_bars("CLK4", "2024-03-01", "2024-04-01", store=any_store_url).height == 20
    assert st.runs(limit=1)["status"][0] == "succeeded"
    assert status(any_store_url).over_budget.height == 1  # still marked: its quarantine is still open


def test_a_recipe_may_opt_into_rolling_the_chunk_back(any_store_url, recipes_dir, tmp_path, cli):
    path = write_bars(tmp_path / "march.dbn", _march(dt.date(2024, 3, 12)), symbol="CLK4", iid=42)
    recipe = tmp_path / "strict.yaml"
    recipe.write_text((recipes_dir / "ohlcv_1d.yaml").read_text().replace(
        "  max_failure_rate: 0.01", "  max_failure_rate: 0.01\n  on_budget_exceeded: rollback"))
    res = cli("ingest", "--recipe", recipe, "--from-file", path, "--store", any_store_url)
    assert res.exit_code == 1
    assert "1 of 21 rows (4.76%) failed validation, above the recipe's max_failure_rate 1.00%" in res.stderr
    assert open_store(any_store_url).query("SELECT count(*) AS n FROM ohlcv")["n"][0] == 0  # every good bar too


# Minute bars: CL.c.0 bars whose volume is a multiple of 40 are made invalid (low above high).
PER_SYMBOL = """\
name: minute_bars_some_bad
source:
  vendor: databento
  schema: ohlcv-1m
  start: 2024-03-04
  end: 2024-03-05
  chunk: {period: day, max_symbols: 10}
  requests:
    - {dataset: GLBX.MDP3, stype_in: continuous, symbols: [CL.c.0, NG.c.0, HO.c.0, RB.c.0, ES.c.0]}
transform:
  - rename: {ts_event: bar_timestamp_utc, open: open_price, high: high_price, low: low_price, close: close_price}
  - fixed_to_decimal: [open_price, high_price, low_price, close_price]
  - constant: {granularity: 1m, data_source: databento, trade_count: null, vwap: null}
  - derive: {low_price: "CASE WHEN symbol = 'CL.c.0' AND volume % 40 = 0 THEN high_price + 1 ELSE low_price END"}
target:
  table: ohlcv
"""


def test_a_symbol_over_budget_is_named_even_when_the_run_is_within_it(gateway, tmp_path):
    recipe = tmp_path / "minutes.yaml"
    recipe.write_text(PER_SYMBOL)
    store = f"duckdb://{tmp_path}/s.duckdb"
    r = ingest(recipe, store=store)
    v = r.budget
    assert r.ok and r.over_budget and r.rows_loaded == r.rows_fetched - r.rows_quarantined
    assert 0 < v.rate <= 0.01  # the run is within its budget
    cl = {s.symbol: s for s in v.symbols}["CL.c.0"]
    assert cl.rows >= 1_000 and cl.rate > 0.01 and cl.judged == "symbol" and cl.over
    assert [s.symbol for s in v.over_symbols] == ["CL.c.0"] and cl.quarantined == r.rows_quarantined
    assert cl.reasons == {"low_price>min(open,close)": cl.quarantined,
                          "high_price<max(open,close,low)": cl.quarantined}
    q = pl.read_parquet(list(config.quarantine_dir().rglob("*.parquet")))
    assert set(q["_symbol"]) == {"CL.c.0"} and q.height == cl.quarantined


def test_the_price_rule_follows_an_ingested_definition_before_the_dataset(gateway, any_store_url, recipes_dir,
                                                                          tmp_path):
    """A dataset hdi does not know defaults to > 0; an instrument whose definition says future may
    trade below zero there, one without a definition may not."""
    assert ingest(recipes_dir / "definitions.yaml", start="2024-03-04", end="2024-03-05", symbols="CL.c.0",
                  store=any_store_url).ok
    st = open_store(any_store_url)
    defs = st.select("instruments")
    assert set(defs["instrument_class"]) == {"F"}
    fut = int(defs["instrument_id"][0])
    st.write("instruments", defs.with_columns(pl.lit("ZZZZ.NEW").alias("dataset")))
    bars = [(dt.date(2024, 3, 4), "-1.00", "0.50", "-2.00", "0.00", 10)]
    with_def = write_bars(tmp_path / "f.dbn", bars, dataset="ZZZZ.NEW", symbol="ZF", iid=fut)
    without = write_bars(tmp_path / "u.dbn", bars, dataset="ZZZZ.NEW", symbol="ZU", iid=fut + 1)
    r = ingest(recipes_dir / "ohlcv_1d.yaml", from_files=[with_def, without], store=any_store_url)
    assert [(c.rows_loaded, c.rows_quarantined) for c in r.chunks] == [(1, 0), (0, 1)]
    assert r.budget.over_symbols[0].symbol == "ZU"
    assert r.budget.over_symbols[0].reasons == {"open_price<=0": 1, "low_price<=0": 1, "close_price<=0": 1}


def test_ingest_help_documents_the_over_budget_exit_code(cli):
    text = " ".join(cli("ingest", "--help").stdout.split())
    assert "3 every good row is stored but more rows were quarantined than the recipe's max_failure_rate" in text


def test_a_replay_that_loads_the_quarantined_rows_clears_the_over_budget_mark(any_store_url, recipes_dir, tmp_path):
    bars = [(dt.date(2024, 3, 4), "510.10", "512.00", "509.00", "511.00", 1000),
            (dt.date(2024, 3, 5), "511.00", "512.00", "-1.00", "510.00", 1000)]
    path = write_bars(tmp_path / "spy.dbn", bars, dataset="EQUS.MINI", symbol="SPY", iid=SPY)
    r = ingest(recipes_dir / "ohlcv_1d.yaml", from_files=[path], store=any_store_url)
    assert r.over_budget and (r.rows_loaded, r.rows_quarantined) == (1, 1)
    assert status(any_store_url).over_budget.get_column("symbol").to_list() == ["SPY"]

    strict = hdi.quarantine_replay(r.run_id, store=any_store_url)  # the same rules: the row fails again
    assert strict.replayed == 0
    assert status(any_store_url).over_budget.get_column("open_rows").to_list() == [1]

    loose = tmp_path / "spy_any_price.yaml"
    loose.write_text((recipes_dir / "ohlcv_1d.yaml").read_text().replace(
        "  max_failure_rate: 0.01", "  max_failure_rate: 0.01\n  allow_non_positive_prices: true"))
    done = hdi.quarantine_replay(r.run_id, recipe=loose, store=any_store_url)
    assert done.replayed == 1
    assert status(any_store_url).over_budget.height == 0  # its quarantine is dealt with
    got = hdi.read_bars("SPY", "2024-03-01", "2024-03-08", store=any_store_url, prices="decimal")
    assert sorted(got.get_column("low_price").to_list()) == [Decimal("-1.00"), Decimal("509.00")]
