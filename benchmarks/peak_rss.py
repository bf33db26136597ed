"""Issue 4: peak RSS of a whole ``hdi ingest --recipe recipes/trades.yaml --from-file F`` process.
Targets: <= 1.5 GB (1.5e9 bytes = 1430 MiB) for 20 M trades, and <= 1.3x the peak for 2 M trades.

The DBN files are generated with numpy fills (benchmarks/_dbn.py: increasing ts_recv, 3 continuous
futures rolling mid-range, buy/sell/none sides, venue sequence, 3% same-packet prints). A file is
one chunk, so the whole file loads in one store transaction (its batches stream through it). Peak
RSS is that process's own ``ru_maxrss`` (``os.wait4``), from interpreter start to exit; each run
writes into a fresh store (new DuckDB file / new TimescaleDB schema). Baseline from the same run:
the RSS of ``hdi --version`` (interpreter + CLI imports).

Usage: .venv/bin/python benchmarks/peak_rss.py [--small 2000000] [--large 20000000] [--timescale URL]
       [--no-timescale] [--no-duckdb]
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import HDI, ROOT, fresh_schema, load_average, result, run_process, timescale_url  # noqa: E402
from _dbn import write_trades  # noqa: E402

LIMIT_MIB = 1.5e9 / 2**20  # 1.5 GB
RATIO = 1.3


def ingest(path: Path, store: str, data: Path) -> tuple[float, float, str]:
    m = run_process([HDI, "ingest", "--recipe", str(ROOT / "recipes" / "trades.yaml"), "--from-file", str(path),
                     "--store", store, "--no-progress"], env={"HDI_DATA_DIR": str(data)})
    rows = re.findall(r"([\d,]+) fetched, ([\d,]+) loaded", m.stdout + m.stderr)
    return m.peak_rss_mib, m.wall, f"{rows[-1][1]} loaded" if rows else "?"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--small", type=int, default=2_000_000, help="trades in the small file (default 2,000,000)")
    ap.add_argument("--large", type=int, default=20_000_000, help="trades in the large file (default 20,000,000)")
    ap.add_argument("--timescale", help="TimescaleDB URL (default HDI_BENCH_TIMESCALE_URL or the local cluster)")
    ap.add_argument("--no-timescale", action="store_true")
    ap.add_argument("--no-duckdb", action="store_true")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="hdi-bench-rss-") as d:
        tmp = Path(d)
        files = {}
        for n in (a.small, a.large):
            files[n] = tmp / f"trades-{n}.dbn.zst"
            t0 = time.perf_counter()
            size = write_trades(files[n], n, days=max(4, n // 1_000_000))
            print(f"trades file: {n:,} trades, {size / 2**20:.0f} MiB zst ({time.perf_counter() - t0:.1f} s to write)")
        floor = run_process([HDI, "--version"]).peak_rss_mib
        print(f"peak RSS of `hdi --version`: {floor:.0f} MiB; load average {load_average()} (2 cores, shared)")
        stores: list[tuple[str, str | None]] = []
        if not a.no_duckdb:
            stores.append(("duckdb", None))
        ts = None if a.no_timescale else timescale_url(a.timescale)
        if ts:
            stores.append(("timescale", ts))
        elif not a.no_timescale:
            print("timescale: no URL (run `make db-up`, or pass --timescale)")
        for label, base in stores:
            peaks = {}
            for n, path in files.items():
                if base is None:
                    peak, wall, rows = ingest(path, f"duckdb:///{tmp}/rss-{n}.duckdb", tmp / f"data-{n}")
                    (tmp / f"rss-{n}.duckdb").unlink()
                else:
                    with fresh_schema(base) as (url, _):
                        peak, wall, rows = ingest(path, url, tmp / f"data-ts-{n}")
                peaks[n] = peak
                print(f"  {label:9s} {n:>11,} trades: peak RSS {peak:6.0f} MiB  ({wall:5.1f} s wall, "
                      f"{n / wall:,.0f} trades/s, {rows})")
            big, small = peaks[a.large], peaks[a.small]
            ratio = big / small
            ok_abs, ok_ratio = big <= LIMIT_MIB, ratio <= RATIO
            print(f"  {label:9s} {a.large:,} vs {a.small:,}: {ratio:.2f}x (target <= {RATIO}x: "
                  f"{'MET' if ok_ratio else 'MISSED'}); {big:.0f} MiB vs 1.5 GB = {LIMIT_MIB:.0f} MiB: "
                  f"{'MET' if ok_abs else 'MISSED'}")
            result(f"peak RSS {a.large // 10**6}M trades -> {label}", big, "MiB", f"<= {LIMIT_MIB:.0f} MiB (1.5 GB)",
                   ok_abs, f"{a.small // 10**6}M: {small:.0f} MiB")
            result(f"peak RSS ratio {a.large // 10**6}M / {a.small // 10**6}M trades -> {label}", ratio, "x",
                   f"<= {RATIO}", ok_ratio, "")


if __name__ == "__main__":
    main()
