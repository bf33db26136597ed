"""Store benchmarks (issue targets; PRD NFR4b):

1. ``hdi.read_bars`` of 1 month of daily bars for one symbol, warm, on DuckDB and TimescaleDB
   (target: median <= 10 ms; PRD: < 5 s).
2. Writing 2,000,000 one-minute bar rows through the store API into TimescaleDB, against raw
   ``adbc_ingest`` of the same Arrow table into an unindexed plain table, measured in the same run
   (target: ratio >= 0.4). DuckDB's write rate is printed beside it.
3. Bytes per row (table + indexes) of trades in each store (``--bytes-trades``, default 1,000,000):
   TimescaleDB ``hypertable_size`` per hypertable, DuckDB storage blocks (issue 17: <= 100 B/trade in
   TimescaleDB).

Usage: python benchmarks/store_bench.py [--timescale URL] [--rows N] [--repeat K]
(default URL: HDI_BENCH_TIMESCALE_URL, else the local `make db-up` cluster).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hdi._prices import fixed_to_decimal  # noqa: E402
from hdi._tables import OHLCV  # noqa: E402
from hdi.store import close_all, open_store  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import result as report_result  # noqa: E402

UTC = dt.UTC


def bars(n: int, instruments: int = 20, minutes: bool = True) -> pl.DataFrame:
    rng = np.random.default_rng(7)
    per = n // instruments
    step = 60 if minutes else 86_400
    t0 = int(dt.datetime(2024, 1, 1, tzinfo=UTC).timestamp()) * 10**9
    ts = np.tile(t0 + np.arange(per, dtype=np.int64) * step * 10**9, instruments)
    ids = np.repeat(np.arange(1000, 1000 + instruments, dtype=np.int64), per)
    px = 70_000_000_000 + rng.integers(-10**9, 10**9, per * instruments)
    return pl.DataFrame({
        "dataset": "GLBX.MDP3", "instrument_id": ids, "granularity": "1m" if minutes else "1d",
        "bar_timestamp_utc": pl.Series(ts).cast(pl.Datetime("ns")).dt.replace_time_zone("UTC"),
        "open_price": px, "high_price": px + 50_000_000, "low_price": px - 50_000_000, "close_price": px,
        "volume": rng.integers(1, 5000, per * instruments), "publisher_id": 1, "data_source": "databento",
    }).with_columns(trade_count=pl.lit(None, pl.Int32), vwap=pl.lit(None, pl.Int64)).with_columns(*[fixed_to_decimal(pl.col(c)).alias(c) for c in
                      ("open_price", "high_price", "low_price", "close_price", "vwap")]).select(OHLCV.names)


def timescale_url(arg: str | None) -> str | None:
    if arg:
        return arg
    if os.environ.get("HDI_BENCH_TIMESCALE_URL"):
        return os.environ["HDI_BENCH_TIMESCALE_URL"]
    f = ROOT / ".timescaledb" / "url"
    return f.read_text().strip() if f.is_file() else None


def admin(url: str, *sql: str) -> None:
    import adbc_driver_postgresql.dbapi as pg

    with pg.connect(url, autocommit=True) as c, c.cursor() as cur:
        for s in sql:
            cur.execute(s)


def schema_url(url: str, schema: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema},public"


def read_latency(store_url: str, repeat: int) -> tuple[float, float, int]:
    import hdi

    store = open_store(store_url)
    daily = bars(5 * 366, instruments=5, minutes=False)
    sym = pl.DataFrame({
        "dataset": "GLBX.MDP3", "stype_in": "continuous",
        "symbol": [f"{r}.c.0" for r in ("CL", "NG", "HO", "RB", "ES")],
        "instrument_id": list(range(1000, 1005)),
        "start_date": dt.date(2024, 1, 1), "end_date": dt.date(2025, 1, 1), "source": "metadata",
    })
    store.write("ohlcv", daily, symbology=sym)
    times = []
    rows = 0
    for i in range(repeat + 5):
        t = time.perf_counter()
        df = hdi.read_bars("CL.c.0", "2024-03-01", "2024-04-01", store=store_url)
        if i >= 5:  # warm-up calls excluded
            times.append(time.perf_counter() - t)
        rows = df.height
    times.sort()
    return statistics.median(times) * 1e3, times[int(len(times) * 0.95) - 1] * 1e3, rows


def write_ratio(base_url: str, n: int, repeat: int) -> None:
    import adbc_driver_postgresql.dbapi as pg

    frame = bars(n)
    arrow = frame.with_columns(pl.col("bar_timestamp_utc").dt.cast_time_unit("us")).to_arrow()
    raw_rates, api_rates = [], []
    for _ in range(repeat):
        schema = f"hdi_bench_{uuid.uuid4().hex[:8]}"
        admin(base_url, f"CREATE SCHEMA {schema}")
        url = schema_url(base_url, schema)
        try:
            cols = ", ".join(f'"{c}" {t}' for c, t in (
                ("dataset", "text"), ("instrument_id", "bigint"), ("granularity", "text"),
                ("bar_timestamp_utc", "timestamptz"), ("open_price", "numeric(19,9)"),
                ("high_price", "numeric(19,9)"), ("low_price", "numeric(19,9)"), ("close_price", "numeric(19,9)"),
                ("volume", "bigint"), ("trade_count", "integer"), ("vwap", "numeric(19,9)"), ("publisher_id", "integer"),
                ("data_source", "text")))
            admin(url, f"CREATE TABLE {schema}.raw_plain ({cols})", "CHECKPOINT")
            with pg.connect(url) as c, c.cursor() as cur:
                t = time.perf_counter()
                cur.adbc_ingest("raw_plain", arrow, mode="append", db_schema_name=schema)
                c.commit()
                raw_rates.append(n / (time.perf_counter() - t))
            store = open_store(url)
            store.migrate()
            admin(url, "CHECKPOINT")
            t = time.perf_counter()
            result = store.write("ohlcv", frame)
            api_rates.append(n / (time.perf_counter() - t))
            assert result.inserted == n, result
        finally:
            close_all()
            admin(base_url, f"DROP SCHEMA {schema} CASCADE")
    raw, api = statistics.median(raw_rates), statistics.median(api_rates)
    print(f"  raw adbc_ingest, plain unindexed table : {raw:>12,.0f} rows/s  (median of {repeat})")
    print(f"  hdi store.write, hypertable + key index: {api:>12,.0f} rows/s  (median of {repeat})")
    print(f"  ratio store / raw                      : {api / raw:>12.2f}x   (target >= 0.40)")
    report_result("store.write 2M bars -> timescale / raw adbc_ingest", api / raw, "x", ">= 0.40", api / raw >= 0.4,
           f"store {api:,.0f} rows/s; raw {raw:,.0f} rows/s")


def duckdb_write(n: int) -> None:
    frame = bars(n)
    with tempfile.TemporaryDirectory() as d:
        url = f"duckdb://{d}/bench.duckdb"
        store = open_store(url)
        store.migrate()
        t = time.perf_counter()
        store.write("ohlcv", frame)
        first = n / (time.perf_counter() - t)
        t = time.perf_counter()
        again = store.write("ohlcv", frame)
        second = n / (time.perf_counter() - t)
        close_all()
    print(f"  DuckDB store.write new range: {first:,.0f} rows/s; the same rows again (all present, "
          f"{again.already_present:,} skipped): {second:,.0f} rows/s")


def tick_bytes(base_url: str | None, trades: int) -> None:
    """Bytes per row (table + indexes) of the trades written by ``store.write`` (the final rows of a
    synthetic DBN file), and of every tick table a real store holds: TimescaleDB ``hypertable_size``
    (the lean ``hdi_trades`` since migration 8), DuckDB the file after CHECKPOINT and the distinct
    blocks ``pragma_storage_info`` lists for the table."""
    import duckdb
    from _dbn import write_trades
    from trades_load import final_rows

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "trades.dbn.zst"
        write_trades(path, trades)
        frame = final_rows(path)
        n = frame.height
        print(f"== bytes per row (table + indexes), {n:,} trades of a DBN file ({path.stat().st_size / n:.1f} B/trade "
              "in .dbn.zst)")
        db = Path(d) / "bytes.duckdb"
        open_store(f"duckdb://{db}").write("trades", frame)
        close_all()
        con = duckdb.connect(str(db))
        con.execute("CHECKPOINT")
        blocks = con.execute("SELECT count(DISTINCT block_id) FROM pragma_storage_info('trades') "
                             "WHERE block_id >= 0").fetchone()[0]
        block = con.execute("SELECT block_size FROM pragma_database_size()").fetchone()[0]
        con.close()
        per = blocks * block / n
        print(f"  duckdb    trades       : {per:8.1f} B/row from storage blocks  ({db.stat().st_size / n:.1f} B/row "
              "whole file)")
        report_result("bytes per trade, duckdb", per, "B", "(report)", None, "pragma_storage_info blocks")
        if base_url is None:
            return
        schema = f"hdi_bench_{uuid.uuid4().hex[:8]}"
        admin(base_url, f"CREATE SCHEMA {schema}")
        url = schema_url(base_url, schema)
        try:
            open_store(url).write("trades", frame)
            close_all()
            import adbc_driver_postgresql.dbapi as pg

            with pg.connect(url, autocommit=True) as c, c.cursor() as cur:
                cur.execute("VACUUM ANALYZE")
                cur.execute("SELECT hypertable_name, hypertable_size(format('%I.%I', hypertable_schema, "
                            "hypertable_name)::regclass) FROM timescaledb_information.hypertables "
                            "WHERE hypertable_schema = current_schema()")
                for name, size in cur.fetchall():
                    cur.execute(f'SELECT count(*) FROM "{name}"')
                    rows = cur.fetchone()[0]
                    if rows:
                        print(f"  timescale {name:<12} : {size / rows:8.1f} B/row  ({rows:,} rows)")
                        report_result(f"bytes per row, timescale {name}", size / rows, "B",
                                      "<= 100" if name == "hdi_trades" else "(report)",
                                      size / rows <= 100 if name == "hdi_trades" else None, "hypertable_size")
        finally:
            close_all()
            admin(base_url, f"DROP SCHEMA {schema} CASCADE")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--timescale")
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--reads", type=int, default=200)
    ap.add_argument("--no-timescale", action="store_true", help="DuckDB only")
    ap.add_argument("--bytes-trades", type=int, default=1_000_000, help="trades for the bytes-per-row figures (0: skip)")
    a = ap.parse_args()
    ts = None if a.no_timescale else timescale_url(a.timescale)
    print("== read_bars: 1 month of daily bars, 1 symbol, warm (target median <= 10 ms; PRD < 5 s)")
    with tempfile.TemporaryDirectory() as d:
        med, p95, rows = read_latency(f"duckdb://{d}/read.duckdb", a.reads)
        close_all()
    print(f"  duckdb    : median {med:6.2f} ms  p95 {p95:6.2f} ms  ({rows} rows, {a.reads} calls)")
    report_result("store_bench read_bars warm, duckdb (median)", med, "ms", "<= 10 ms", med <= 10, f"p95 {p95:.2f} ms")
    if ts:
        schema = f"hdi_bench_{uuid.uuid4().hex[:8]}"
        admin(ts, f"CREATE SCHEMA {schema}")
        try:
            med, p95, rows = read_latency(schema_url(ts, schema), a.reads)
        finally:
            close_all()
            admin(ts, f"DROP SCHEMA {schema} CASCADE")
        print(f"  timescale : median {med:6.2f} ms  p95 {p95:6.2f} ms  ({rows} rows, {a.reads} calls)")
        report_result("store_bench read_bars warm, timescale (median)", med, "ms", "<= 10 ms", med <= 10, f"p95 {p95:.2f} ms")
    print(f"== write {a.rows:,} 1m bar rows")
    duckdb_write(a.rows)
    if ts:
        write_ratio(ts, a.rows, a.repeat)
    else:
        print("  (no TimescaleDB: run `make db-up` for the TimescaleDB figures)")
    if a.bytes_trades:
        tick_bytes(ts, a.bytes_trades)


if __name__ == "__main__":
    main()
