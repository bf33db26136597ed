"""``hdi query``: every tick schema and daily bars to Parquet, CSV and a table, from both stores, and
the errors a user can make. The rows come from the real pipeline (local gateway, synthetic data);
files must hold exactly the rows ``hdi.read_*`` returns."""

from __future__ import annotations

import datetime as dt
import io
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest

import hdi
from hdi.pipeline import ingest

RECIPES = Path(__file__).resolve().parents[2] / "recipes"
TICKS = ("2024-11-18T14:30:00Z", "2024-11-18T14:40:00Z")
DAYS = ("2024-11-15", "2024-11-20")
# --schema -> (recipe, range, symbols ingested and queried)
SCHEMAS = {
    "trades": ("trades", TICKS, "CL.c.0,SPY"),
    "tbbo": ("tbbo", TICKS, "CL.c.0"),
    "mbp-1": ("mbp1", TICKS, "CL.c.0"),
    "statistics": ("statistics", DAYS, "CL.c.0"),
    "definition": ("definitions", DAYS, "CL.c.0"),
    "ohlcv-1d": ("ohlcv_1d", DAYS, "CL.c.0"),
}


def _admin(url: str, sql: str) -> None:
    import adbc_driver_postgresql.dbapi as pg

    with pg.connect(url, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(sql)


@pytest.fixture(scope="module", params=["duckdb", pytest.param("timescale", marks=pytest.mark.timescale)])
def filled(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One store per backend for the whole module, filled once through the pipeline."""
    from hdi.store import close_all
    from hdi.testing.gateway import Gateway

    root = tmp_path_factory.mktemp("query-cli")
    schema = None
    if request.param == "duckdb":
        url = f"duckdb://{root / 'store.duckdb'}"
    else:
        base = request.getfixturevalue("timescale_url")
        schema = f"hdi_q_{uuid.uuid4().hex[:12]}"
        _admin(base, f"CREATE SCHEMA {schema}")
        url = f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{schema},public"
    with pytest.MonkeyPatch.context() as mp, Gateway(now=dt.datetime(2026, 1, 15, tzinfo=dt.UTC)) as gw:
        for k in ("HDI_STORE", "HDI_CACHE_DIR", "HDI_QUARANTINE_DIR", "HDI_LOG_DIR"):
            mp.delenv(k, raising=False)
        for k, v in {**gw.env(), "DATABENTO_API_KEY": "db-test-0123456789abcdefABCDEF",
                     "HDI_DATA_DIR": str(root / "data")}.items():
            mp.setenv(k, v)
        for recipe, (start, end), symbols in SCHEMAS.values():
            r = ingest(RECIPES / f"{recipe}.yaml", start=start, end=end, symbols=symbols, store=url)
            assert r.ok and r.rows_loaded > 0, [c.error for c in r.chunks]
    yield url
    close_all()
    if schema is not None:
        _admin(request.getfixturevalue("timescale_url"), f"DROP SCHEMA {schema} CASCADE")


def _expected(schema: str, url: str, prices: str = "float") -> pl.DataFrame:
    _, (start, end), symbols = SCHEMAS[schema]
    if schema == "ohlcv-1d":
        return hdi.read_bars(symbols, start, end, granularity="1d", store=url, prices=prices)
    read = {"trades": hdi.read_trades, "tbbo": hdi.read_tbbo, "mbp-1": hdi.read_mbp1,
            "statistics": hdi.read_statistics, "definition": hdi.read_definitions}[schema]
    return read(symbols, start, end, store=url, prices=prices)


def _args(schema: str, url: str) -> list[str]:
    _, (start, end), symbols = SCHEMAS[schema]
    return ["query", "--schema", schema, "--symbols", symbols, "--start", start, "--end", end, "--store", url]


# ----------------------------------------------------------------------------------- formats
@pytest.mark.parametrize("schema", list(SCHEMAS))
def test_parquet_output_holds_exactly_the_rows_read_trades_and_friends_return(cli, filled, tmp_path, schema):
    out = tmp_path / "x.parquet"
    res = cli(*_args(schema, filled), "--format", "parquet", "--output", out)
    assert res.exit_code == 0, res.stderr
    got, want = pl.read_parquet(out), _expected(schema, filled)
    assert want.height > 0 and got.equals(want)
    assert got.schema == want.schema
    assert f"wrote {want.height:,} rows to {out}" in res.stderr
    assert res.stdout == ""


def test_parquet_with_decimal_prices_keeps_exact_values_and_nanoseconds(cli, filled, tmp_path):
    out = tmp_path / "t.parquet"
    res = cli(*_args("trades", filled), "--format", "parquet", "--output", out, "--prices", "decimal")
    assert res.exit_code == 0, res.stderr
    got = pl.read_parquet(out)
    assert got.schema["price"] == pl.Decimal(19, 9)
    assert got.schema["received_timestamp_utc"] == pl.Datetime("ns", "UTC")
    assert got.equals(_expected("trades", filled, prices="decimal"))
    assert (got["received_timestamp_utc"].dt.epoch("ns") == got["ts_recv_ns"]).all()
    assert (got["ts_recv_ns"] % 1000 != 0).any()  # sub-µs digits survived the file
    assert set(got["symbol"]) == {"CL.c.0", "SPY"}


@pytest.mark.parametrize("schema", ["trades", "statistics", "definition"])
def test_csv_goes_to_stdout_or_to_a_file(cli, filled, tmp_path, schema):
    want = _expected(schema, filled)
    res = cli(*_args(schema, filled), "--format", "csv")
    assert res.exit_code == 0, res.stderr
    assert res.stdout == want.write_csv()
    assert pl.read_csv(io.StringIO(res.stdout)).height == want.height > 0
    out = tmp_path / "x.csv"
    res = cli(*_args(schema, filled), "--format", "csv", "--output", out)
    assert res.exit_code == 0, res.stderr
    assert out.read_text() == want.write_csv()
    assert res.stdout == "" and f"wrote {want.height:,} rows to {out}" in res.stderr


def test_table_prints_the_first_rows_and_the_count(cli, filled):
    want = _expected("statistics", filled)
    res = cli(*_args("statistics", filled), "--format", "table", "--limit", "5")
    assert res.exit_code == 0, res.stderr
    lines = res.stdout.splitlines()
    header = next(line for line in lines if "symbol" in line)
    assert [c.strip() for c in header.strip("│").split("┆")] == want.columns  # every column, none squeezed
    rows = [line for line in lines if line.startswith("│ CL.c.0")]
    assert len(rows) == 5  # one line per row
    assert rows[0].split("┆")[5].strip() == want["statistic_name"][0]
    assert f"{want.height:,} rows ({want.height - 5:,} not shown" in res.stderr


# ----------------------------------------------------------------------------------- errors
def _error(res) -> str:
    assert res.exit_code == 1 and res.stdout == ""
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    return lines[0]


def test_parquet_without_output_is_an_error(cli, filled):
    assert _error(cli(*_args("trades", filled), "--format", "parquet")) == (
        "error: --format parquet needs --output PATH (Parquet is binary; it is not written to stdout)")


def test_unknown_schema_is_an_error_with_a_suggestion(cli, filled):
    line = _error(cli("query", "--schema", "trade", "--symbols", "CL.c.0", "--start", DAYS[0], "--end", DAYS[1],
                      "--store", filled))
    assert line == ("error: --schema 'trade' is not allowed (did you mean 'trades'?); allowed: ohlcv-1s, ohlcv-1m, "
                    "ohlcv-5m, ohlcv-15m, ohlcv-1h, ohlcv-1d, ohlcv-eod, trades, tbbo, mbp-1, statistics, definition, "
                    "mbo, mbp-10, bbo-1s, bbo-1m, cbbo-1s, cbbo-1m, status, imbalance")


def test_unknown_format_is_an_error_with_a_suggestion(cli, filled):
    line = _error(cli(*_args("trades", filled), "--format", "parquett", "--output", "x.parquet"))
    assert line == "error: --format 'parquett' is not allowed (did you mean 'parquet'?); allowed: parquet, csv, table"


def test_output_folder_that_does_not_exist_is_an_error(cli, filled, tmp_path):
    out = tmp_path / "missing" / "x.parquet"
    line = _error(cli(*_args("trades", filled), "--format", "parquet", "--output", out))
    assert line == f"error: output {out}: folder {out.parent} does not exist"
    assert not out.parent.exists()


def test_output_under_a_regular_file_is_an_error(cli, filled, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    out = blocker / "x.csv"
    line = _error(cli(*_args("trades", filled), "--format", "csv", "--output", out))
    assert line == f"error: output {out}: folder {blocker} is a file, not a folder"
    assert blocker.read_text() == "not a folder"


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root may write to any folder")
def test_output_folder_that_is_not_writable_is_an_error(cli, filled, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    out = locked / "x.parquet"
    line = _error(cli(*_args("trades", filled), "--format", "parquet", "--output", out))
    assert line == f"error: output {out}: folder {locked} is not writable"


def test_unknown_symbol_is_an_error_naming_it_with_a_suggestion(cli, filled):
    line = _error(cli("query", "--schema", "trades", "--symbols", "CL.c.1", "--start", TICKS[0], "--end", TICKS[1],
                      "--store", filled))
    assert line.startswith("error: symbol 'CL.c.1' is not in the store (did you mean 'CL.c.0'?); ingest it first")


# ----------------------------------------------------------------------------------- issue 14
@pytest.mark.parametrize("schema", list(SCHEMAS))
def test_every_row_names_symbol_contract_and_instrument_id(cli, filled, tmp_path, schema):
    out = tmp_path / "x.parquet"
    assert cli(*_args(schema, filled), "--format", "parquet", "--output", out).exit_code == 0
    got = pl.read_parquet(out)
    assert got.height > 0 and got.select(pl.col("symbol", "raw_symbol", "instrument_id")).null_count().sum_horizontal().item() == 0
    if schema != "definition":
        assert got.columns[:2] == ["symbol", "raw_symbol"]
    # CL.c.0 names real contracts (CLZ4, CLF5 around the 2024-11-18 roll), SPY itself
    raws = set(got.filter(pl.col("symbol") == "CL.c.0")["raw_symbol"])
    assert raws and all(r.startswith("CL") and r != "CL.c.0" for r in raws)
    assert set(got.filter(pl.col("symbol") == "SPY")["raw_symbol"]) <= {"SPY"}


def test_tz_exchange_writes_exchange_local_times(cli, filled):
    res = cli(*_args("tbbo", filled), "--format", "csv", "--tz", "exchange")
    assert res.exit_code == 0, res.stderr
    got = pl.read_csv(io.StringIO(res.stdout))
    # 14:30 UTC on 2024-11-18 is 08:30 in Chicago (CST, UTC-6)
    assert got["received_timestamp_utc"].str.starts_with("2024-11-18T08:").all()
    assert got["received_timestamp_utc"].str.ends_with("-0600").all()
    utc = cli(*_args("tbbo", filled), "--format", "csv")
    assert pl.read_csv(io.StringIO(utc.stdout))["received_timestamp_utc"].str.starts_with("2024-11-18T14:").all()


def test_tz_exchange_over_two_venues_and_an_unknown_zone_are_errors(cli, filled):
    res = cli(*_args("trades", filled), "--tz", "exchange")
    assert res.exit_code == 1 and "different zones (EQUS.MINI America/New_York, GLBX.MDP3 America/Chicago)" in res.stderr
    res = cli(*_args("trades", filled), "--tz", "Europe/Nowhere")
    assert res.exit_code == 1 and "tz 'Europe/Nowhere' is not a time zone" in res.stderr
    ny = cli(*_args("trades", filled), "--tz", "America/New_York", "--format", "csv")
    assert ny.exit_code == 0 and "T09:3" in ny.stdout and "-0500" in ny.stdout


def test_all_publications_returns_every_statistics_publication(cli, filled, tmp_path):
    _, (start, end), symbols = SCHEMAS["statistics"]
    every = hdi.read_statistics(symbols, start, end, store=filled, latest=False)
    latest = _expected("statistics", filled)
    assert every.height > latest.height > 0
    out = tmp_path / "all.parquet"
    res = cli(*_args("statistics", filled), "--all-publications", "--format", "parquet", "--output", out)
    assert res.exit_code == 0, res.stderr
    assert pl.read_parquet(out).equals(every)
    res = cli(*_args("trades", filled), "--all-publications")
    assert res.exit_code == 1
    assert "--all-publications applies to --schema statistics only, not 'trades'" in res.stderr
