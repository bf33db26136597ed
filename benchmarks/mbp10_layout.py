"""mbp-10 layout (issue 13): ten book levels as wide columns (one row per event, what hdi stores) vs a
long layout (one row per event and level, a ``level`` column, the event's own fields repeated).

One instrument-day of mbp-10 (ES front month, from the local gateway's synthetic market) is loaded with
``hdi ingest recipes/mbp10.yaml`` into the wide ``mbp10`` table; the same rows, unpivoted, are written
through hdi's store code into a long table registered for this run (same column types, a key of the
wide key plus ``level``, a hypertable with its unique key index on TimescaleDB). Measured per store:

- bytes per record (per book event): DuckDB file size after a checkpoint, one file per layout;
  TimescaleDB ``hypertable_size`` (heap + indexes + TOAST);
- read time of the instrument-day: ``Store.select`` of the day into Polars (median of ``--repeat``), and
  for the long layout also the pivot back to one row per event (what a user of the book needs).

Usage: .venv/bin/python benchmarks/mbp10_layout.py [--day 2024-03-04] [--symbol ES.c.0] [--repeat 3]
       [--timescale URL] [--no-timescale]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ROOT, fresh_schema, gateway, load_average, result, timescale_url  # noqa: E402

LEVEL_FIELDS = ("bid_price", "bid_size", "bid_count", "ask_price", "ask_size", "ask_count")


def long_table():  # noqa: ANN201 - hdi._tables.Table
    from hdi._tables import MBP10, ColType, Column, Table

    level_cols = {f"{f}_{i:02d}" for f in LEVEL_FIELDS for i in range(10)}
    base = [c for c in MBP10.columns if c.name not in level_cols]
    lv = [Column("level", ColType.I16)] + [Column(f, MBP10.column(f"{f}_00").type, MBP10.column(f"{f}_00").nullable)
                                           for f in LEVEL_FIELDS]
    return Table(name="mbp10_long", columns=(*base, *lv), key=(*MBP10.key, "level"), time_column=MBP10.time_column,
                 chunk_interval=MBP10.chunk_interval, doc="bench", ns_columns=MBP10.ns_columns)


def register(t) -> None:  # noqa: ANN001
    """Make the long table one of hdi's tables for this process (DDL, identifiers, writes)."""
    import hdi._tables as tables
    import hdi.store.schema as schema

    tables.TABLES[t.name] = t
    tables.DATA_TABLES[t.name] = t
    schema.ALL_TABLES[t.name] = t


def to_long(wide):  # noqa: ANN001, ANN201
    import polars as pl

    base = [c for c in wide.columns if not any(c.startswith(f + "_") and c[-2:].isdigit() for f in LEVEL_FIELDS)]
    parts = [wide.select(*base, pl.lit(i, pl.Int16).alias("level"),
                         *[pl.col(f"{f}_{i:02d}").alias(f) for f in LEVEL_FIELDS]) for i in range(10)]
    return pl.concat(parts)


def to_wide(long):  # noqa: ANN001, ANN201
    """One row per event again, the levels as columns."""
    base = [c for c in long.columns if c not in (*LEVEL_FIELDS, "level")]
    return long.pivot(on="level", index=base, values=list(LEVEL_FIELDS))


def timed(fn, repeat: int) -> float:  # noqa: ANN001
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def measure(kind: str, url_wide: str, url_long: str, args, size) -> None:  # noqa: ANN001
    from hdi.pipeline import ingest
    from hdi.store import close_all, open_store

    start, end = args.day, (dt.date.fromisoformat(args.day) + dt.timedelta(days=1)).isoformat()
    rep = ingest(ROOT / "recipes" / "mbp10.yaml", start=start, end=end, symbols=args.symbol, store=url_wide)
    assert rep.ok and rep.rows_loaded > 0, [c.error for c in rep.chunks]
    n = rep.rows_loaded
    st = open_store(url_wide)
    s, e = (dt.datetime.fromisoformat(x).replace(tzinfo=dt.UTC) for x in (start, end))
    wide = st.select("mbp10", start=s, end=e)
    long_t = long_table()
    register(long_t)
    lst = open_store(url_long)
    lst.migrate()
    long = to_long(wide)
    for i in range(0, long.height, 1_000_000):
        lst.write("mbp10_long", long.slice(i, 1_000_000))
    close_all()
    w_bytes, l_bytes = size("mbp10", url_wide), size("mbp10_long", url_long)
    st, lst = open_store(url_wide), open_store(url_long)
    w_read = timed(lambda: st.select("mbp10", start=s, end=e), args.repeat)
    l_read = timed(lambda: lst.select("mbp10_long", start=s, end=e), args.repeat)
    got = lst.select("mbp10_long", start=s, end=e)
    l_pivot = timed(lambda: to_wide(got), args.repeat)
    assert to_wide(got).height == n and long.height == 10 * n
    close_all()
    print(f"\n{kind}: {args.symbol} {args.day}, {n:,} book events ({10 * n:,} long rows)")
    print(f"  bytes per event   wide {w_bytes / n:>8.1f}   long {l_bytes / n:>8.1f}   (long/wide {l_bytes / w_bytes:.2f}x)")
    print(f"  read the day      wide {w_read:>8.3f} s long {l_read:>8.3f} s + pivot {l_pivot:.3f} s "
          f"(long/wide {(l_read + l_pivot) / w_read:.2f}x)")
    result(f"mbp10 {kind} bytes/event wide", w_bytes / n, "B", "(report)", None, f"long {l_bytes / n:.1f}")
    result(f"mbp10 {kind} read s wide", w_read, "s", "(report)", None, f"long {l_read:.3f} + pivot {l_pivot:.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--day", default="2024-03-04")
    ap.add_argument("--symbol", default="ES.c.0")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--timescale")
    ap.add_argument("--no-timescale", action="store_true")
    args = ap.parse_args()
    print(f"mbp-10 layout, load average {load_average()}")
    with tempfile.TemporaryDirectory() as tmp, gateway(Path(tmp) / "gw") as env:
        os.environ.update(env)
        os.environ["HDI_DATA_DIR"] = str(Path(tmp) / "data")

        def duck_size(table: str, url: str) -> int:
            return Path(url.removeprefix("duckdb://")).stat().st_size

        measure("duckdb", f"duckdb://{tmp}/wide.duckdb", f"duckdb://{tmp}/long.duckdb", args, duck_size)
        base = None if args.no_timescale else timescale_url(args.timescale)
        if base:
            from _common import admin

            with fresh_schema(base) as (wide_url, ws), fresh_schema(base) as (long_url, ls):
                def ts_size(table: str, url: str) -> int:
                    schema = ws if url == wide_url else ls
                    lean = admin(base, f"SELECT to_regclass('{schema}.hdi_{table}') IS NOT NULL")[0][0]
                    name = f"hdi_{table}" if lean else table  # the lean table behind the view (migration 8)
                    return int(admin(base, f"SELECT hypertable_size('{schema}.{name}')")[0][0])

                measure("timescale", wide_url, long_url, args, ts_size)


if __name__ == "__main__":
    main()
