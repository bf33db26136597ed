"""The status feed explains days without data in ``hdi status``: a market closed (or an instrument halted)
all day by the venue's status records is *closed* / *halted*, not *no data* or *missing*."""

from __future__ import annotations

import datetime as dt

import polars as pl

import hdi
from hdi._statusfeed import explained_days, not_trading_intervals
from hdi._tables import STATUS
from hdi.pipeline import ingest


def _coverage(url: str, schema: str) -> dict:
    c = hdi.status(url).coverage.filter((pl.col("schema") == schema) & (pl.col("symbol") == "CL.c.0"))
    assert c.height == 1
    return c.row(0, named=True)


def test_a_weekday_the_status_feed_shows_closed_is_closed_not_flagged(gateway, any_store_url, recipes_dir, cli):
    """The exchange calendar says CL trades on Tuesday 2024-03-05; the venue had no session that day
    (the gateway's no-trade day). Without the status feed the empty day is FLAGGED; with it, closed."""
    gateway.add_no_trade_day("GLBX.MDP3", "CL.c.0", dt.date(2024, 3, 5))
    start, end = "2024-03-04", "2024-03-07"
    assert ingest(recipes_dir / "trades.yaml", start=start, end=end, symbols="CL.c.0", store=any_store_url).ok
    before = _coverage(any_store_url, "trades")
    assert (before["flagged"], before["closed"]) == (["2024-03-05"], [])

    assert ingest(recipes_dir / "status.yaml", start=start, end=end, symbols="CL.c.0", store=any_store_url).ok
    after = _coverage(any_store_url, "trades")
    assert (after["flagged"], after["missing"], after["closed"], after["halted"]) == ([], [], ["2024-03-05"], [])
    assert (after["days_with_data"], after["days_flagged"], after["days_closed"]) == (2, 0, 1)
    text = cli("status", "--store", any_store_url)
    assert text.exit_code == 0, text.stderr
    assert any(x.split() == ["closed", "2024-03-05"] for x in text.stdout.splitlines())


def _status_rows(rows: list[tuple[str, int, str]]) -> pl.DataFrame:
    """(ts_recv ISO, action, is_trading) -> status rows of instrument 7 on GLBX.MDP3."""
    recv = [dt.datetime.fromisoformat(t).replace(tzinfo=dt.UTC) for t, _, _ in rows]
    ns = pl.Series(recv, dtype=pl.Datetime("ns", "UTC"))
    n = len(rows)
    return pl.DataFrame({
        "dataset": ["GLBX.MDP3"] * n, "instrument_id": [7] * n, "event_timestamp_utc": ns,
        "received_timestamp_utc": ns, "ts_event_ns": ns.dt.epoch("ns"), "ts_recv_ns": ns.dt.epoch("ns"),
        "action": [a for _, a, _ in rows], "action_name": [None] * n, "reason": [0] * n, "trading_event": [0] * n,
        "is_trading": [t for _, _, t in rows], "is_quoting": [None] * n, "is_short_sell_restricted": [None] * n,
        "publisher_id": [1] * n, "rec_ordinal": [0] * n, "data_source": ["databento"] * n,
    }).select(STATUS.names)


def test_a_halt_through_a_whole_day_explains_it_as_halted(store):
    store.write("status", _status_rows([("2024-06-03T15:00:00", 8, "N"), ("2024-06-05T13:00:00", 7, "Y"),
                                        ("2024-06-05T21:00:00", 12, "N"), ("2024-06-05T22:00:00", 7, "Y")]))
    store.write_symbology(pl.DataFrame({
        "dataset": ["GLBX.MDP3"], "stype_in": ["raw_symbol"], "symbol": ["ESM4"], "instrument_id": [7],
        "start_date": [dt.date(2024, 6, 1)], "end_date": [dt.date(2024, 7, 1)], "source": ["metadata"]}))
    with store.session():
        iv = not_trading_intervals(store)
    days = explained_days(iv)
    # 06-04 halted all day; 06-03 and 06-05 only partly: they stay what the data says
    assert days == {("GLBX.MDP3", "ESM4"): {dt.date(2024, 6, 4): "halted"}}
    assert iv.filter(pl.col("day") == dt.date(2024, 6, 5)).select("state").to_series().to_list() == ["halted", "closed"]
    # the last record (trading again) ends nothing; no interval after the feed's last word but its own day
    assert iv["end"].max() == dt.datetime(2024, 6, 5, 22, tzinfo=dt.UTC)


# ------------------------------------------------------------------------------------ ohlcv-eod
def test_ohlcv_eod_loads_where_list_schemas_offers_it(gateway, any_store_url, recipes_dir):
    run = ingest(recipes_dir / "ohlcv_eod.yaml", start="2024-03-04", end="2024-03-09", symbols="CL.c.0",
                 store=any_store_url)
    assert run.ok and run.rows_loaded == 5
    bars = hdi.read_bars("CL.c.0", "2024-03-04", "2024-03-09", granularity="eod", store=any_store_url)
    assert bars.height == 5 and set(bars["granularity"]) == {"eod"}
    assert any(c.params.get("dataset") == "GLBX.MDP3" for c in gateway.calls("metadata.list_schemas"))


def test_ohlcv_eod_on_a_dataset_without_it_is_one_line_before_any_download(gateway, tmp_path, recipes_dir, cli):
    recipe = tmp_path / "eod.yaml"
    recipe.write_text((recipes_dir / "ohlcv_eod.yaml").read_text().replace(
        "{dataset: GLBX.MDP3, stype_in: continuous, symbols: [CL.c.0, NG.c.0, HO.c.0, RB.c.0, ES.c.0]}",
        "{dataset: XNAS.ITCH, stype_in: raw_symbol, symbols: [SPY]}"))
    res = cli("ingest", "--recipe", recipe, "--start", "2024-03-04", "--end", "2024-03-09",
              "--store", f"duckdb://{tmp_path / 's.duckdb'}")
    assert res.exit_code != 0
    offered = ", ".join(gateway_schemas("XNAS.ITCH"))
    assert res.stderr.strip().splitlines() == [
        f"error: {recipe}: dataset XNAS.ITCH does not offer ohlcv-eod (metadata.list_schemas); it offers: {offered}"]
    assert gateway.calls("timeseries.get_range") == []


def gateway_schemas(dataset: str) -> list[str]:
    from hdi.testing.market import DATASETS

    return list(DATASETS[dataset].schemas)
