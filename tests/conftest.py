"""Shared fixtures: the Databento sample folder, isolated data dirs, and the two stores."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = Path(os.environ.get("HDI_DBN_SAMPLES", ROOT.parent / "shared" / "dbn-samples"))


@pytest.fixture(scope="session")
def samples_dir() -> Path:
    """The real Databento sample files; tests using it skip when the folder is absent."""
    if not SAMPLES.is_dir():
        pytest.skip(f"Databento sample folder {SAMPLES} is absent")
    return SAMPLES


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test writes under its own tmp data dir and sees no user-level hdi settings."""
    for var in ("HDI_STORE", "HDI_CACHE_DIR", "HDI_QUARANTINE_DIR", "HDI_LOG_DIR",
                "HDI_DATABENTO_GATEWAY", "DATABENTO_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HDI_DATA_DIR", str(tmp_path / "data"))
    # no run-level retry pass (a 60 s pause) unless a test asks for one (tests/pipeline/test_retry_pass.py)
    monkeypatch.setenv("HDI_RETRY_PASSES", "0")


# --------------------------------------------------------------------------- stores
def _timescale_base_url() -> str | None:
    url = os.environ.get("HDI_TEST_TIMESCALE_URL")
    if url:
        return url
    f = ROOT / ".timescaledb" / "url"
    return f.read_text().strip() if f.is_file() else None


@pytest.fixture(scope="session")
def timescale_url() -> str:
    """The local TimescaleDB (``make db-up``). Missing: skip, unless HDI_REQUIRE_TIMESCALE=1 (CI)."""
    url = _timescale_base_url()
    if not url:
        if os.environ.get("HDI_REQUIRE_TIMESCALE") == "1":
            pytest.fail("HDI_REQUIRE_TIMESCALE=1 but no TimescaleDB URL: run `make db-up`")
        pytest.skip("no local TimescaleDB (run `make db-up`)")
    return url


def _admin(url: str, *statements: str) -> None:
    import adbc_driver_postgresql.dbapi as pg

    with pg.connect(url, autocommit=True) as conn, conn.cursor() as cur:
        for sql in statements:
            cur.execute(sql)


@pytest.fixture
def timescale_schema_url(timescale_url: str) -> str:
    """A TimescaleDB store URL whose tables live in a fresh schema, dropped after the test."""
    import uuid

    schema = f"hdi_t_{uuid.uuid4().hex[:12]}"
    _admin(timescale_url, f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in timescale_url else "?"
    yield f"{timescale_url}{sep}options=-csearch_path%3D{schema},public"
    from hdi.store import close_all

    close_all()
    _admin(timescale_url, f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture(params=["duckdb", pytest.param("timescale", marks=pytest.mark.timescale), "iceberg"])
def any_store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each store contract test runs on every backend; the backend is in the test id."""
    if request.param in ("duckdb", "iceberg"):
        yield f"duckdb://{tmp_path / 'store.duckdb'}" if request.param == "duckdb" else f"iceberg://{tmp_path / 'lake'}"
        from hdi.store import close_all

        close_all()
    else:
        yield request.getfixturevalue("timescale_schema_url")


@pytest.fixture
def store(any_store_url: str):
    from hdi.store import open_store

    return open_store(any_store_url)


# --------------------------------------------------------------------------- frame builders
UTC_ = __import__("datetime").timezone.utc


def _ts(value):
    import datetime as dt

    import polars as pl

    if isinstance(value, int):
        return value
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return pl.Series([value]).cast(pl.Datetime("ns", "UTC")).cast(pl.Int64)[0]


@pytest.fixture
def make_bars():
    """Build an ohlcv frame from dicts: prices as fixed-point ints or decimal strings."""
    import polars as pl

    from hdi._prices import fixed_to_decimal
    from hdi._tables import OHLCV

    def build(rows: list[dict]) -> pl.DataFrame:
        base = {"dataset": "GLBX.MDP3", "granularity": "1d", "volume": 100, "trade_count": None, "publisher_id": 1,
                "vwap": None, "data_source": "databento"}
        recs = []
        for r in rows:
            rec = {**base, **r}
            rec["bar_timestamp_utc"] = _ts(rec["bar_timestamp_utc"])
            for c in ("open_price", "high_price", "low_price", "close_price"):
                rec.setdefault(c, rec.get("price", 70_000_000_000))
            rec.pop("price", None)
            recs.append(rec)
        df = pl.DataFrame(recs, schema_overrides={"trade_count": pl.Int32, "vwap": pl.Int64, "volume": pl.UInt64})
        df = df.with_columns(
            pl.col("bar_timestamp_utc").cast(pl.Datetime("ns")).dt.replace_time_zone("UTC"),
            *[fixed_to_decimal(pl.col(c)).alias(c) for c in ("open_price", "high_price", "low_price",
                                                               "close_price", "vwap")],
        )
        return df.select(OHLCV.names)

    return build


@pytest.fixture
def make_trades():
    """Build a trades frame from dicts with ns integer timestamps."""
    import polars as pl

    from hdi._prices import fixed_to_decimal
    from hdi._tables import TRADES

    def build(rows: list[dict]) -> pl.DataFrame:
        base = {"dataset": "GLBX.MDP3", "instrument_id": 1, "price": 70_000_000_000, "size": 1,
                "aggressor_side": "buy", "sequence": 1, "ts_in_delta": 0, "flags": 0, "publisher_id": 1,
                "rec_ordinal": 0, "data_source": "databento"}
        recs = []
        for r in rows:
            rec = {**base, **r}
            rec["ts_recv_ns"] = _ts(rec["ts_recv_ns"])
            rec.setdefault("ts_event_ns", rec["ts_recv_ns"] - 1000)
            recs.append(rec)
        df = pl.DataFrame(recs).with_columns(
            pl.col("ts_event_ns").cast(pl.Datetime("ns")).dt.replace_time_zone("UTC").alias("trade_timestamp_utc"),
            pl.col("ts_recv_ns").cast(pl.Datetime("ns")).dt.replace_time_zone("UTC").alias("received_timestamp_utc"),
            fixed_to_decimal(pl.col("price")).alias("price"),
        )
        return df.select(TRADES.names).cast({c.name: c.type.polars for c in TRADES.columns})

    return build


@pytest.fixture
def make_symbology():
    import datetime as dt

    import polars as pl

    def build(rows: list[tuple]) -> pl.DataFrame:
        """rows: (symbol, instrument_id, start_date, end_date[, dataset, stype_in])"""
        recs = []
        for r in rows:
            sym, iid, d0, d1, *rest = r
            ds = rest[0] if rest else "GLBX.MDP3"
            stype = rest[1] if len(rest) > 1 else ("continuous" if ".c." in sym else "raw_symbol")
            recs.append({"dataset": ds, "stype_in": stype, "symbol": sym, "instrument_id": iid,
                         "start_date": dt.date.fromisoformat(d0), "end_date": dt.date.fromisoformat(d1),
                         "source": "metadata"})
        return pl.DataFrame(recs, schema={"dataset": pl.String, "stype_in": pl.String, "symbol": pl.String,
                                          "instrument_id": pl.Int64, "start_date": pl.Date,
                                          "end_date": pl.Date, "source": pl.String})

    return build


# --------------------------------------------------------------------------- gateway and CLI
GATEWAY_NOW = __import__("datetime").datetime(2026, 1, 15, tzinfo=UTC_)
TEST_KEY = "db-test-0123456789abcdefABCDEF"


@pytest.fixture
def gateway(monkeypatch: pytest.MonkeyPatch):
    """The local Databento-compatible gateway, with the client environment set for the test
    (CA bundle, gateway URL, API key) and fast retries."""
    from hdi.testing.gateway import Gateway

    with Gateway(now=GATEWAY_NOW) as gw:
        for k, v in gw.env().items():
            monkeypatch.setenv(k, v)
        monkeypatch.setenv("DATABENTO_API_KEY", TEST_KEY)
        monkeypatch.setenv("HDI_RETRY_BASE_DELAY", "0.01")
        monkeypatch.setenv("HDI_RETRY_MAX_DELAY", "0.05")
        yield gw


@pytest.fixture
def cli():
    """Run ``hdi`` in-process: cli(*args) -> result with .exit_code, .stdout, .stderr."""
    from typer.testing import CliRunner

    from hdi.cli.app import app

    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)

    return run


@pytest.fixture
def recipes_dir() -> Path:
    return ROOT / "recipes"
