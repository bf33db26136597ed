"""What the pre-write store check costs (issue 8, item 6), against the load it protects.

``hdi ingest`` calls ``Store.check`` once per run, before its first write. On DuckDB it reads every
block of the tables the run touches (cost grows with the target table: all of it is read back); on
TimescaleDB it only reads the catalog. Measured here on a store holding N trades (default 2 M,
loaded by ``hdi.pipeline.ingest(recipes/trades.yaml, from_files=[a DBN file])``, which is the
baseline printed beside it): the check on a fresh process-level connection (``close_all`` first:
what a new ``hdi ingest`` pays) and on a warm one, median and best of ``--repeat`` runs.

Usage: .venv/bin/python benchmarks/store_check.py [--trades 2000000] [--repeat 5] [--timescale URL]
       [--no-timescale] [--no-duckdb]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ROOT, best_median, fresh_schema, load_average, result, timescale_url  # noqa: E402
from _dbn import write_trades  # noqa: E402

RECIPE = ROOT / "recipes" / "trades.yaml"
TABLES = ["trades", "symbology", "ingest_chunks", "ingest_runs", "ingest_days"]


def measure(kind: str, url: str, path: Path, repeat: int) -> None:
    from hdi.pipeline import ingest
    from hdi.store import close_all, open_store

    t0 = time.perf_counter()
    report = ingest(RECIPE, from_files=[path], store=url)
    load = time.perf_counter() - t0
    assert report.ok, report
    rows = report.rows_loaded
    cold, warm = [], []
    for _ in range(repeat):
        close_all()
        t0 = time.perf_counter()
        open_store(url).check(TABLES)
        cold.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        open_store(url).check(TABLES)
        warm.append(time.perf_counter() - t0)
    close_all()
    (cb, cm), (wb, wm) = best_median(cold), best_median(warm)
    print(f"{kind}: load of {rows:,} trades {load:.2f} s; check cold median {cm * 1e3:.0f} ms (best {cb * 1e3:.0f}), "
          f"warm median {wm * 1e3:.0f} ms (best {wb * 1e3:.0f}) = {cm / load:.1%} of the load", flush=True)
    result(f"store check before a run ({kind}, {rows / 1e6:.0f} M trades stored)", round(cm * 1e3, 1), "ms",
           "report", None, f"load {load:.2f} s; warm {wm * 1e3:.0f} ms; {cm / load:.1%} of the load")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trades", type=int, default=2_000_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--timescale", default=None)
    ap.add_argument("--no-timescale", action="store_true")
    ap.add_argument("--no-duckdb", action="store_true")
    args = ap.parse_args()
    print(f"load average {load_average()}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        import os

        os.environ["HDI_DATA_DIR"] = str(Path(tmp) / "data")
        path = Path(tmp) / "trades.dbn.zst"
        write_trades(path, args.trades)
        if not args.no_duckdb:
            measure("DuckDB", f"duckdb://{Path(tmp) / 'check.duckdb'}", path, args.repeat)
        base = None if args.no_timescale else timescale_url(args.timescale)
        if base:
            with fresh_schema(base) as (url, _):
                measure("TimescaleDB", url, path, args.repeat)
        elif not args.no_timescale:
            print("TimescaleDB: skipped (no URL: --timescale, HDI_BENCH_TIMESCALE_URL or `make db-up`)")


if __name__ == "__main__":
    main()
