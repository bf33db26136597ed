"""The lake store (issue 16): trades end to end into Iceberg, bytes per trade in every store, and
``--workers 1`` against ``--workers 2``.

- **End to end**: ``hdi.pipeline.ingest(recipes/trades.yaml, from_files=[DBN file])`` into a fresh
  ``iceberg:///`` store (decode -> recipe -> validate -> Iceberg commit + ledger), against a raw
  Parquet write (Polars, zstd) of the same final rows measured in the same run, and the same ingest
  into a DuckDB file.
- **Bytes per trade**: the stored size of those trades divided by their count: DuckDB (the file),
  TimescaleDB (``hypertable_size('hdi_trades')``, the lean table behind the ``trades`` view, indexes included), Iceberg (the warehouse's data
  files, and with its metadata files), the raw Parquet file, and the ``.dbn.zst`` it came from.
- **Workers**: the same trades split into ``--files`` DBN files (one chunk each), ingested into a
  fresh lake with ``workers=1`` and ``workers=2``.

Usage: .venv/bin/python benchmarks/lake.py [--trades 2000000] [--repeat 3] [--files 4]
       [--timescale URL] [--no-timescale] [--no-workers]
"""

from __future__ import annotations

import argparse
import datetime as dt
import inspect
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ROOT, admin, best_median, fresh_schema, load_average, result, timescale_url  # noqa: E402
from _dbn import write_trades  # noqa: E402
from trades_load import final_rows, pipeline_run, warm_up  # noqa: E402

RECIPE = ROOT / "recipes" / "trades.yaml"


def tree_bytes(folder: Path, suffix: str | None = None) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and (suffix is None or p.name.endswith(suffix)))


def lake_bench(path: Path, frame, tmp: Path, repeat: int) -> dict[str, float]:  # noqa: ANN001
    import polars as pl

    from hdi._tables import TRADES
    from hdi.store import close_all
    from hdi.store.iceberg import to_lake

    n = frame.height
    lake_rows = to_lake(frame, TRADES)  # the rows as the lake stores them (µs timestamps, sorted)
    raw_times, times, duck_times = [], [], []
    sizes: dict[str, float] = {}
    for i in range(repeat):
        out = tmp / f"raw{i}.parquet"
        t0 = time.perf_counter()
        lake_rows.write_parquet(out, compression="zstd")
        raw_times.append(time.perf_counter() - t0)
        sizes["raw Parquet (zstd)"] = out.stat().st_size / n
        out.unlink()
        folder = tmp / f"lake{i}"
        secs, report = pipeline_run(path, f"iceberg://{folder}")
        assert report.ok and report.rows_loaded == n, (report.rows_loaded, n)
        times.append(secs)
        close_all()
        sizes["Iceberg data files"] = tree_bytes(folder / "warehouse", ".parquet") / n
        sizes["Iceberg data + metadata"] = tree_bytes(folder / "warehouse") / n
        if i == repeat - 1:
            again, rep2 = pipeline_run(path, f"iceberg://{folder}", refresh=True)
            assert rep2.ok and rep2.rows_loaded == 0 and rep2.rows_already_present == n, rep2
            close_all()
            got = pl.scan_parquet(list((folder / "warehouse").rglob("*.parquet"))).select(pl.len()).collect().item()
            assert got == n, (got, n)  # the re-run added no file rows
        duck = tmp / f"hdi{i}.duckdb"
        dsecs, drep = pipeline_run(path, f"duckdb://{duck}")
        assert drep.ok and drep.rows_loaded == n
        duck_times.append(dsecs)
        close_all()
        sizes["DuckDB file (whole store)"] = duck.stat().st_size / n
        duck.unlink()
    raw_b, raw_m = best_median(raw_times)
    b, m = best_median(times)
    db, dm = best_median(duck_times)
    print(f"  raw Parquet write (Polars, zstd), same rows : best {n / raw_b:>12,.0f} rows/s  median {n / raw_m:>12,.0f}")
    print(f"  hdi ingest -> Iceberg (decode..commit+ledger): best {n / b:>12,.0f} rows/s  median {n / m:>12,.0f}"
          f"   ({m:.2f} s median of {repeat})")
    print(f"  ratio Iceberg ingest / raw Parquet write    : {raw_m / m:>12.2f}x")
    print(f"  hdi ingest -> DuckDB, same run              : best {n / db:>12,.0f} rows/s  median {n / dm:>12,.0f}")
    print(f"  re-run into the lake, every row present     : {n / again:>12,.0f} rows/s   ({again:.2f} s, merge path)")
    result("trades->iceberg rows/s (median)", n / m, "rows/s", "(report)", None,
           f"raw Parquet write {n / raw_m:,.0f} rows/s ({raw_m / m:.2f}x); DuckDB {n / dm:,.0f}")
    return sizes


def timescale_bytes(path: Path, base: str, n: int) -> float:
    from hdi.store import close_all

    with fresh_schema(base) as (url, schema):
        secs, report = pipeline_run(path, url)
        assert report.ok and report.rows_loaded == n
        total = admin(url, f"SELECT hypertable_size('{schema}.hdi_trades')")[0][0]  # lean table behind the view
        close_all()
    return total / n


def split_files(tmp: Path, n: int, files: int) -> list[Path]:
    """``files`` DBN files of n/files trades on consecutive days: one chunk each."""
    paths = []
    for k in range(files):
        p = tmp / f"part{k}.dbn.zst"
        write_trades(p, n // files, start=dt.date(2025, 3, 3) + dt.timedelta(days=2 * k), days=2, seed=k + 1)
        paths.append(p)
    return paths


def workers_bench(paths: list[Path], tmp: Path, repeat: int) -> None:
    from hdi.pipeline import ingest
    from hdi.store import close_all

    if "workers" not in inspect.signature(ingest).parameters:
        print("  (this hdi has no ingest workers)")
        return
    rates: dict[int, list[float]] = {1: [], 2: []}
    total = 0
    for i in range(repeat):
        for w in (1, 2):
            url = f"iceberg://{tmp / f'w{w}-{i}'}"
            t0 = time.perf_counter()
            report = ingest(RECIPE, from_files=paths, store=url, workers=w)
            secs = time.perf_counter() - t0
            assert report.ok, report
            total = report.rows_loaded
            rates[w].append(secs)
            close_all()
    b1, m1 = best_median(rates[1])
    b2, m2 = best_median(rates[2])
    print(f"  workers=1: median {m1:.2f} s ({total / m1:,.0f} rows/s); workers=2: median {m2:.2f} s "
          f"({total / m2:,.0f} rows/s); speed-up {m1 / m2:.2f}x on {os.cpu_count()} cores")
    result("iceberg ingest workers=2 / workers=1", m1 / m2, "x", "(report)", None,
           f"{len(paths)} chunks, {total:,} trades, {os.cpu_count()} cores shared")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trades", type=int, default=2_000_000, help="trades in the DBN file (default 2,000,000)")
    ap.add_argument("--repeat", type=int, default=3, help="timed runs (default 3)")
    ap.add_argument("--files", type=int, default=4, help="DBN files (chunks) for the workers comparison")
    ap.add_argument("--timescale", help="TimescaleDB URL (default HDI_BENCH_TIMESCALE_URL or the local cluster)")
    ap.add_argument("--no-timescale", action="store_true")
    ap.add_argument("--no-workers", action="store_true")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="hdi-bench-lake-") as d:
        tmp = Path(d)
        os.environ["HDI_DATA_DIR"] = str(tmp / "data")
        path = tmp / "trades.dbn.zst"
        size = write_trades(path, a.trades)
        print(f"trades file: {a.trades:,} trades, {size / 2**20:.1f} MiB zst; load average {load_average()} "
              f"(2 cores, shared)")
        warm_up(tmp)
        warm = tmp / "warm-lake.dbn.zst"  # imports pyiceberg (seconds under load) outside the timed runs
        write_trades(warm, 20_000, seed=9)
        pipeline_run(warm, f"iceberg://{tmp / 'warm-lake'}")
        frame = final_rows(path)
        n = frame.height
        print(f"== trades end to end into the lake, {a.repeat} runs")
        sizes = lake_bench(path, frame, tmp, a.repeat)
        ts = None if a.no_timescale else timescale_url(a.timescale)
        if ts:
            sizes["TimescaleDB hypertable + key index"] = timescale_bytes(path, ts, n)
        sizes[".dbn.zst source file"] = size / n
        print(f"== bytes per trade ({n:,} trades)")
        for k, v in sizes.items():
            print(f"  {k:<38}: {v:8.1f}")
            result(f"bytes/trade {k}", v, "B", "(report)", None)
        if not a.no_workers:
            print(f"== workers 1 vs 2 into the lake ({a.files} chunks, {a.repeat} runs each)")
            workers_bench(split_files(tmp, a.trades, a.files), tmp, a.repeat)


if __name__ == "__main__":
    main()
