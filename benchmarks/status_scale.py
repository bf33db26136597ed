"""Issue 15.3: ``hdi status`` on a store of N trades answers from ``row_counts``, not a scan.

A store of ``--rows`` trades (``--instruments`` futures over ``--days`` UTC days, in time order) is
generated on each store, fast and through the store's own schema: hdi creates the tables
(``Store.migrate``), the rows are made by the database itself into the real ``trades`` table
(DuckDB ``range``, TimescaleDB ``generate_series`` in slices of 5 M rows), the symbology and
``ingest_days`` rows an ingest would have recorded go through the store API, and the counts are
built by the migration path (migration 7 re-applied: ``row_counts`` dropped and filled from the
stored rows, timed). Then, on the same store:

- ``hdi status --store URL`` as a whole process (the real CLI), median of ``--repeat`` runs;
- ``hdi.status(URL)`` in process (warm), median of ``--repeat`` calls;
- the baseline, in the same run: the old full scan (one ``count(*) ... GROUP BY`` per data table,
  ``hdi._status_report._scan_daily``), and ``hdi.status`` made to use it (what status cost before).

Target: status < 1 s on both stores at 100 M trades (``--rows 100000000``). The benchmark schema
and files are dropped afterwards.

Usage: .venv/bin/python benchmarks/status_scale.py [--rows N] [--instruments K] [--days D]
       [--repeat R] [--no-timescale] [--timescale URL] [--keep-dir DIR]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import HDI, admin, fresh_schema, load_average, result, run_process, timescale_url  # noqa: E402

DATASET = "GLBX.MDP3"
START = dt.datetime(2024, 1, 2, tzinfo=dt.UTC)
SLICE = 5_000_000
COLS = ("dataset, instrument_id, trade_timestamp_utc, received_timestamp_utc, ts_event_ns, ts_recv_ns, price, "
        "size, aggressor_side, flags, sequence, ts_in_delta, publisher_id, rec_ordinal, data_source")


def _symbols(k: int) -> list[str]:
    """K raw futures symbols of roots with a known exchange calendar (ESH4, NQH4, ..., ESM4, ...)."""
    from hdi.research.calendars import FUTURES_CALENDARS

    roots = sorted(r for r in FUTURES_CALENDARS if r.isalpha())
    months = "FGHJKMNQUVXZ"
    return [f"{roots[i % len(roots)]}{months[(i // len(roots)) % 12]}{4 + i // (len(roots) * 12)}" for i in range(k)]


def _step(n: int, days: int) -> int:
    return max(1, days * 86_400_000_000_000 // n)


def _t0_ns() -> int:
    return int(START.timestamp()) * 1_000_000_000


def generate_duckdb(path: Path, n: int, k: int, days: int) -> None:
    import duckdb

    con = duckdb.connect(str(path))
    try:
        con.execute("SET TimeZone = 'UTC'")
        t0, step = _t0_ns(), _step(n, days)
        for lo in range(0, n, SLICE * 4):
            hi = min(n, lo + SLICE * 4)
            con.execute(f"""INSERT INTO trades ({COLS})
                SELECT '{DATASET}', 1 + (i % {k}), make_timestamp_ns(r - 1000)::TIMESTAMPTZ,
                       make_timestamp_ns(r)::TIMESTAMPTZ, r - 1000, r,
                       CAST(4000 + (i % 1000) * 0.25 AS DECIMAL(19,9)), 1 + i % 7,
                       CASE i % 3 WHEN 0 THEN 'buy' WHEN 1 THEN 'sell' ELSE NULL END, 0, i, 0, 1, 0, 'databento'
                FROM (SELECT i, {t0} + i * {step} AS r FROM range({lo}, {hi}) t(i))""")
            print(f"  duckdb: {hi:,} trades", flush=True)
    finally:
        con.close()


def generate_timescale(url: str, n: int, k: int, days: int) -> None:
    """Into the hypertable hdi created; its unique key index is dropped while the rows go in and
    built again afterwards (much faster than maintaining it row by row; the same index in the end)."""
    from hdi._tables import TRADES
    from hdi.store.schema import key_index_name

    t0, step = _t0_ns(), _step(n, days)
    index = key_index_name(TRADES)
    admin(url, f"DROP INDEX {index}")
    for lo in range(0, n, SLICE):
        hi = min(n, lo + SLICE)
        admin(url, f"""INSERT INTO trades ({COLS})
            SELECT '{DATASET}', 1 + (i % {k}), to_timestamp((r - 1000) / 1000 / 1e6), to_timestamp(r / 1000 / 1e6),
                   r - 1000, r, CAST(4000 + (i % 1000) * 0.25 AS numeric(19,9)), 1 + i % 7,
                   CASE i % 3 WHEN 0 THEN 'buy' WHEN 1 THEN 'sell' END, 0, i, 0, 1, 0, 'databento'
            FROM (SELECT i, {t0}::bigint + i * {step}::bigint AS r FROM generate_series({lo}::bigint, {hi - 1}::bigint) i) g""")
        print(f"  timescale: {hi:,} trades ({time.strftime('%H:%M:%S')})", flush=True)
    t = time.perf_counter()
    admin(url, f"CREATE UNIQUE INDEX {index} ON trades ({', '.join(TRADES.key)})")
    print(f"  timescale: key index built in {time.perf_counter() - t:.1f} s", flush=True)


def ledger_rows(url: str, k: int, days: int) -> None:
    """The symbology and ingest_days rows an ingest of these trades records (through the store API)."""
    import polars as pl

    from hdi.store import open_store

    syms = _symbols(k)
    d0 = START.date()
    st = open_store(url)
    st.write_symbology(pl.DataFrame({
        "dataset": [DATASET] * k, "stype_in": ["raw_symbol"] * k, "symbol": syms, "instrument_id": list(range(1, k + 1)),
        "start_date": [d0] * k, "end_date": [d0 + dt.timedelta(days=days + 1)] * k, "source": ["metadata"] * k}))
    day_list = [d0 + dt.timedelta(days=i) for i in range(days)]
    frame = pl.DataFrame({"dataset": DATASET, "schema": "trades",
                          "symbol": [s for s in syms for _ in day_list], "day": day_list * k}).with_columns(
        pl.lit(1).cast(pl.Int64).alias("rows_fetched"), pl.lit("bench").alias("chunk_id"),
        pl.lit(dt.datetime.now(dt.UTC)).cast(pl.Datetime("ns", "UTC")).alias("updated_at"))
    with st.transaction() as txn:
        txn.write("ingest_days", frame)
    st.close()


def rebuild_counts(url: str, kind: str) -> float:
    """Migration 7 again on the generated store: drop row_counts, un-record the version, migrate (timed)."""
    from hdi.store import close_all, open_store
    from hdi.store.migrate import COUNTS_VERSION, MIGRATIONS_TABLE

    close_all()
    drop = ["DROP TABLE row_counts", f"DELETE FROM {MIGRATIONS_TABLE} WHERE version = {COUNTS_VERSION}"]
    if kind == "duckdb":
        import duckdb

        con = duckdb.connect(url.removeprefix("duckdb://"))
        for s in drop:
            con.execute(s)
        con.close()
    else:
        admin(url, *drop)
    t = time.perf_counter()
    st = open_store(url)
    st.migrate()
    took = time.perf_counter() - t
    st.close()
    return took


def _children_cpu() -> float:
    """User + system CPU seconds of every child process waited for so far."""
    import resource

    u = resource.getrusage(resource.RUSAGE_CHILDREN)
    return u.ru_utime + u.ru_stime


def _cpu(cmd: list[str]) -> float:
    """CPU seconds of one run of ``cmd`` (a loaded machine stretches wall time, much less CPU time)."""
    c0 = _children_cpu()
    run_process(cmd)
    return _children_cpu() - c0


def measure(url: str, kind: str, n: int, repeat: int) -> None:
    import hdi
    from hdi import _status_report as sr
    from hdi.store import close_all, open_store

    stored = open_store(url).query("SELECT sum(\"rows\") AS n FROM row_counts").item()
    print(f"  {kind}: row_counts says {int(stored):,} trades stored (load average {load_average()})", flush=True)
    if int(stored) != n:
        raise SystemExit(f"row_counts holds {stored}, expected {n}")
    floor = statistics.median(run_process([HDI, "--version"]).wall for _ in range(3))
    floor_cpu = _cpu([HDI, "--version"])
    first = run_process([HDI, "status", "--store", url]).wall  # builds the calendar cache if cold
    cli, cpu = [], []
    for _ in range(repeat):
        c0 = _children_cpu()
        m = run_process([HDI, "status", "--store", url])
        cpu.append(_children_cpu() - c0)
        cli.append(m.wall)
    text = m.stdout
    lib = []
    for _ in range(repeat + 1):
        t = time.perf_counter()
        report = hdi.status(url)
        lib.append(time.perf_counter() - t)
    lib = lib[1:]  # the first call imports and connects (the CLI figure has that)
    assert int(report.tables.filter(report.tables["table"] == "trades")["rows"][0]) == n
    close_all()
    st = open_store(url)
    t = time.perf_counter()
    with st.session():
        scanned = sr._scan_daily(st)
    scan = time.perf_counter() - t
    assert int(scanned["rows"].sum()) == n
    new_daily = sr._daily
    sr._daily = sr._scan_daily  # type: ignore[assignment]  # status as it was: the full scan
    try:
        t = time.perf_counter()
        old = hdi.status(url)
        old_lib = time.perf_counter() - t
    finally:
        sr._daily = new_daily  # type: ignore[assignment]
    same = old.to_dict() == report.to_dict()
    close_all()
    cb, cm = min(cli), statistics.median(cli)
    lm = statistics.median(lib)
    print(f"  {kind}: `hdi status` whole process median {cm:.3f} s (best {cb:.3f}, {repeat} runs; the first run "
          f"{first:.3f} s), CPU time median {statistics.median(cpu):.3f} s; process floor `hdi --version` "
          f"{floor:.3f} s wall, {floor_cpu:.3f} s CPU; hdi.status() warm median {lm * 1000:.1f} ms", flush=True)
    print(f"  {kind}: baseline full scan of the data tables {scan:.2f} s; hdi.status() with the scan {old_lib:.2f} s; "
          f"reports identical: {same}; {len(text.splitlines())} lines printed", flush=True)
    result(f"status {kind} {n / 1e6:g}M trades, whole process", cm, "s", "< 1 s", cm < 1.0,
           f"best {cb:.2f} s; floor {floor:.2f} s; in process {lm * 1000:.0f} ms; old full scan {scan:.1f} s "
           f"(status {old_lib:.1f} s)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=2_000_000, help="trades to generate (default 2,000,000)")
    ap.add_argument("--instruments", type=int, default=50)
    ap.add_argument("--days", type=int, default=60)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--no-timescale", action="store_true")
    ap.add_argument("--timescale", help="TimescaleDB URL (default HDI_BENCH_TIMESCALE_URL or the local cluster)")
    ap.add_argument("--only", choices=("duckdb", "timescale"), help="one store only")
    a = ap.parse_args()
    print(f"status_scale: {a.rows:,} trades, {a.instruments} instruments, {a.days} days; load average "
          f"{load_average()} ({os.cpu_count()} cores)", flush=True)
    from hdi.store import close_all, open_store

    if a.only != "timescale":
        tmp = Path(tempfile.mkdtemp(prefix="hdi_status_scale_"))
        try:
            url = f"duckdb://{tmp / 'store.duckdb'}"
            open_store(url).migrate()
            close_all()
            t = time.perf_counter()
            generate_duckdb(tmp / "store.duckdb", a.rows, a.instruments, a.days)
            print(f"  duckdb: generated in {time.perf_counter() - t:.1f} s "
                  f"({(tmp / 'store.duckdb').stat().st_size / 2**30:.2f} GiB)", flush=True)
            ledger_rows(url, a.instruments, a.days)
            print(f"  duckdb: row counts built by migration 7 in {rebuild_counts(url, 'duckdb'):.2f} s", flush=True)
            measure(url, "duckdb", a.rows, a.repeat)
        finally:
            close_all()
            shutil.rmtree(tmp, ignore_errors=True)
    base = None if a.no_timescale or a.only == "duckdb" else timescale_url(a.timescale)
    if base is None:
        if not a.no_timescale and a.only != "duckdb":
            print("  timescale: no URL (HDI_BENCH_TIMESCALE_URL / make db-up): skipped")
        return 0
    with fresh_schema(base) as (url, _schema):
        open_store(url).migrate()
        close_all()
        t = time.perf_counter()
        generate_timescale(url, a.rows, a.instruments, a.days)
        size = admin(url, "SELECT hypertable_size('trades')")[0][0]
        print(f"  timescale: generated in {time.perf_counter() - t:.1f} s ({size / 2**30:.2f} GiB)", flush=True)
        ledger_rows(url, a.instruments, a.days)
        print(f"  timescale: row counts built by migration 7 in {rebuild_counts(url, 'timescale'):.2f} s", flush=True)
        measure(url, "timescale", a.rows, a.repeat)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
