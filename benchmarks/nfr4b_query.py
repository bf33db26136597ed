"""PRD NFR4b: retrieve 1 month of daily bars for one symbol. PRD: < 5 s. Targets here:

- ``hdi.read_bars("CL.c.0", start, end, store=...)`` in process, warm: median <= 10 ms;
- ``hdi query --schema ohlcv-1d --symbols CL.c.0 --start ... --end ... --format parquet --output F``
  as a whole process (interpreter start to exit): <= 0.8 s wall;

on both stores, each filled with 1 year of daily bars for 5 continuous futures through the real
pipeline (``hdi.pipeline.ingest(recipes/ohlcv_1d.yaml, from_files=[a generated DBN file])``).
Baselines measured in the same run: the same rows by one hand-written SQL query on an open
connection (issue 17.4's limit: ``read_bars`` warm <= 2x it; ``read_bars`` adds symbol resolution,
raw-symbol labels and typing on top), ``read_bars`` inside ``with hdi.hold(store):`` (the DuckDB file
attached once for all the calls), and process floors
(``python -c pass``, ``python -c "import polars"``, ``hdi --version``). The import audit runs
``hdi query`` under ``python -X importtime`` and lists the heaviest imports and any module the
query path must not load (patito, databento, the recipe engine, the pipeline, the gateway).

Usage: .venv/bin/python benchmarks/nfr4b_query.py [--reads 200] [--runs 7] [--timescale URL]
       [--no-timescale] [--no-duckdb]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import polars as pl  # annotations only; the functions import it where they use it

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    HDI,
    PYTHON,
    ROOT,
    best_median,
    fresh_schema,
    load_average,
    result,
    run_process,
    timescale_url,
)
from _dbn import FUTURES, write_ohlcv_1d  # noqa: E402

SYMBOL, START, END = "CL.c.0", "2024-03-01", "2024-04-01"
EXPECTED_ROWS = 21  # weekdays in March 2024
FORBIDDEN = ("patito", "databento", "hdi.recipe", "hdi.pipeline", "hdi.testing", "hdi.validate", "hdi.decode")
READ_TARGET_MS, QUERY_TARGET_S = 10.0, 0.8


def fill(store: str, path: Path) -> None:
    from hdi.pipeline import ingest

    report = ingest(ROOT / "recipes" / "ohlcv_1d.yaml", from_files=[path], store=store)
    assert report.ok and report.rows_loaded > 1000, report


def add_raw_symbols(store: str) -> None:
    """One raw-symbol interval per contract over the whole filled year (what ``hdi ingest`` of a
    continuous symbol stores from Databento's symbology.resolve)."""
    import polars as pl

    from hdi.store import open_store

    st = open_store(store)
    ids = st.query("SELECT DISTINCT instrument_id FROM symbology WHERE stype_in = 'continuous'").get_column(
        "instrument_id").to_list()
    st.write_symbology(pl.DataFrame(
        {"dataset": "GLBX.MDP3", "stype_in": "raw_symbol", "symbol": [f"C{i}" for i in ids], "instrument_id": ids,
         "start_date": dt.date(2024, 1, 1), "end_date": dt.date(2025, 1, 1), "source": "resolve_raw"},
        schema={"dataset": pl.String, "stype_in": pl.String, "symbol": pl.String, "instrument_id": pl.Int64,
                "start_date": pl.Date, "end_date": pl.Date, "source": pl.String}))


def read_latency(store: str, reads: int, held: bool = False) -> tuple[float, float, float]:
    """(median ms, p95 ms, raw-SQL median ms) of warm calls; 5 warm-up calls are not timed.
    ``held``: the calls inside one ``with hdi.hold(store):`` block."""
    import contextlib

    import hdi
    from hdi.store import open_store

    hold = getattr(hdi, "hold", None)  # None: an hdi before issue 17.4 (for a before/after run)
    if held and hold is None:
        return float("nan"), float("nan"), float("nan")
    times = []
    with hold(store) if held and hold is not None else contextlib.nullcontext():
        for i in range(reads + 5):
            t0 = time.perf_counter()
            df = hdi.read_bars(SYMBOL, START, END, store=store)
            if i >= 5:
                times.append(time.perf_counter() - t0)
            assert df.height == EXPECTED_ROWS, df.height
    times.sort()
    st = open_store(store)
    iid = FUTURES[SYMBOL][0]
    lo, hi = dt.datetime.fromisoformat(START).replace(tzinfo=dt.UTC), dt.datetime.fromisoformat(END).replace(tzinfo=dt.UTC)
    sql = ("SELECT * FROM ohlcv WHERE instrument_id = $1 AND granularity = '1d' AND bar_timestamp_utc >= $2 "
           "AND bar_timestamp_utc < $3 ORDER BY bar_timestamp_utc")
    raw = []
    for i in range(reads + 5):
        t0 = time.perf_counter()
        df = st.query(sql, [iid, lo, hi])
        if i >= 5:
            raw.append(time.perf_counter() - t0)
        assert df.height == EXPECTED_ROWS, df.height
    return statistics.median(times) * 1e3, times[int(len(times) * 0.95) - 1] * 1e3, statistics.median(raw) * 1e3


def raw_open_connection(store: str, reads: int) -> float:
    """Issue 17.4's limit: median ms of the same rows by the same SQL on a connection held open
    (DuckDB: the file opened read-only once; TimescaleDB: one ADBC connection), fetched into Polars;
    no hdi code in the timed loop. Call with hdi's own DuckDB attachment released (close_all)."""
    import polars as pl

    iid = FUTURES[SYMBOL][0]
    lo, hi = dt.datetime.fromisoformat(START).replace(tzinfo=dt.UTC), dt.datetime.fromisoformat(END).replace(tzinfo=dt.UTC)
    sql = ("SELECT * FROM ohlcv WHERE instrument_id = $1 AND granularity = '1d' AND bar_timestamp_utc >= $2 "
           "AND bar_timestamp_utc < $3 ORDER BY bar_timestamp_utc")
    if store.startswith("duckdb:"):
        import duckdb

        from hdi.store.duckdb import parse_path

        con = duckdb.connect(str(parse_path(store)), read_only=True)

        def run() -> pl.DataFrame:
            return pl.DataFrame(con.sql(sql, params=[iid, lo, hi]))
    else:
        import adbc_driver_postgresql.dbapi as pg

        from hdi._redaction import libpq_url

        con = pg.connect(libpq_url(store))

        def run() -> pl.DataFrame:
            with con.cursor() as cur:
                cur.execute(sql, parameters=(iid, lo, hi))
                return cur.fetch_polars()
    try:
        return _median_ms(run, reads)
    finally:
        con.close()


def _median_ms(run: Callable[[], pl.DataFrame], reads: int) -> float:
    """Median ms of ``reads`` calls of ``run`` after 5 untimed ones; each must return the month's rows."""
    times = []
    for i in range(reads + 5):
        t0 = time.perf_counter()
        df = run()
        if i >= 5:
            times.append(time.perf_counter() - t0)
        assert df.height == EXPECTED_ROWS, df.height
    return statistics.median(times) * 1e3


def raw_one_trip(store: str, reads: int) -> float:
    """TimescaleDB only, reported beside the limit: median ms of the same rows by the same SQL with
    its values written in as literals and run without COPY (one round trip to the server, as the
    one-statement read sends its statement, hdi/_readsql.py), on an ADBC connection held open."""
    import adbc_driver_postgresql.dbapi as pg

    from hdi._redaction import libpq_url

    sql = (f"SELECT * FROM ohlcv WHERE instrument_id = {FUTURES[SYMBOL][0]} AND granularity = '1d' "
           f"AND bar_timestamp_utc >= '{START} 00:00:00+00' AND bar_timestamp_utc < '{END} 00:00:00+00' "
           "ORDER BY bar_timestamp_utc")
    con = pg.connect(libpq_url(store))

    def run() -> pl.DataFrame:
        with con.cursor() as cur:
            cur.adbc_statement.set_options(**{"adbc.postgresql.use_copy": "false"})
            cur.execute(sql)
            return cur.fetch_polars()
    try:
        return _median_ms(run, reads)
    finally:
        con.close()


def cli_imports(env: dict[str, str]) -> str:
    """``python -X importtime -m hdi --help``: total import time and the heaviest top-level imports."""
    m = run_process([PYTHON, "-X", "importtime", "-m", "hdi", "--help"], env=env)
    tops: dict[str, int] = {}
    for line in m.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            _, cum, name = line.split("|")
            if not name.startswith("  ") and cum.strip().isdigit():
                tops[name.strip().split(".")[0]] = tops.get(name.strip().split(".")[0], 0) + int(cum)
    heavy = ", ".join(f"{k} {v / 1e3:.0f} ms" for k, v in sorted(tops.items(), key=lambda kv: -kv[1])[:6])
    return f"{sum(tops.values()) / 1e6:.2f} s ({heavy})"


def query_process(store: str, out: Path, runs: int, env: dict[str, str]) -> list[float]:
    cmd = [HDI, "query", "--schema", "ohlcv-1d", "--symbols", SYMBOL, "--start", START, "--end", END,
           "--format", "parquet", "--output", str(out), "--store", store]
    walls = []
    for _ in range(runs):
        out.unlink(missing_ok=True)
        walls.append(run_process(cmd, env=env).wall)
        import polars as pl

        assert pl.read_parquet(out).height == EXPECTED_ROWS
    return walls


def import_audit(store: str, out: Path, env: dict[str, str]) -> str:
    """Total import time of one `hdi query`, its heaviest top-level imports, forbidden modules loaded."""
    out.unlink(missing_ok=True)  # hdi query never replaces an existing file without --force
    m = run_process([PYTHON, "-X", "importtime", "-m", "hdi", "query", "--schema", "ohlcv-1d", "--symbols", SYMBOL,
                     "--start", START, "--end", END, "--format", "parquet", "--output", str(out), "--store", store],
                    env=env)
    tops: dict[str, int] = {}
    loaded = set()
    for line in m.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cum, name = line.split("|")
        mod = name.strip()
        loaded.add(mod)
        if not name.startswith("  ") and cum.strip().isdigit():  # top-level import (depth 0)
            top = mod.split(".")[0]
            tops[top] = tops.get(top, 0) + int(cum)
    total = sum(tops.values()) / 1e6
    heavy = ", ".join(f"{k} {v / 1e3:.0f} ms" for k, v in sorted(tops.items(), key=lambda kv: -kv[1])[:7])
    bad = sorted({f for f in FORBIDDEN for mod in loaded if mod == f or mod.startswith(f + ".")})
    extra = sorted(m for m in ("pandas", "pyarrow", "duckdb", "adbc_driver_manager.dbapi") if m in loaded)
    return (f"imports {total:.2f} s: {heavy}\n      loaded: {', '.join(extra) or 'no pandas/pyarrow'}; "
            f"forbidden modules loaded: {', '.join(bad) or 'none'}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reads", type=int, default=200, help="timed read_bars calls per store (default 200)")
    ap.add_argument("--runs", type=int, default=7, help="timed `hdi query` processes per store (default 7)")
    ap.add_argument("--timescale", help="TimescaleDB URL (default HDI_BENCH_TIMESCALE_URL or the local cluster)")
    ap.add_argument("--no-timescale", action="store_true")
    ap.add_argument("--no-duckdb", action="store_true")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="hdi-bench-nfr4b-") as d:
        tmp = Path(d)
        env = {"HDI_DATA_DIR": str(tmp / "data")}
        os.environ.update(env)
        bars = tmp / "ohlcv-1d.dbn.zst"
        write_ohlcv_1d(bars)
        floors = {name: min(run_process(cmd).wall for _ in range(3)) for name, cmd in (
            ("python -c pass", [PYTHON, "-c", "pass"]), ("python -c 'import polars'", [PYTHON, "-c", "import polars"]),
            ("hdi --version", [HDI, "--version"]))}
        print(f"NFR4b: {SYMBOL} daily bars [{START}, {END}) ({EXPECTED_ROWS} rows) from 1 year x 5 symbols; "
              f"load average {load_average()} (2 cores, shared)")
        print("  process floors (best of 3): " + "; ".join(f"{k} {v:.2f} s" for k, v in floors.items()))
        help_walls = [run_process([HDI, "--help"]).wall for _ in range(3)]
        help_imports = cli_imports(env)
        print(f"  CLI import cost: `hdi --help` whole process best {min(help_walls):.2f} s; "
              f"`python -X importtime -m hdi --help` imports {help_imports}")
        polars_floor = floors["python -c 'import polars'"]
        result("CLI `hdi --help` whole process (best of 3)", min(help_walls), "s", "(report)", None,
               f"imports {help_imports}; python -c 'import polars' {polars_floor:.2f} s")
        stores = []
        if not a.no_duckdb:
            stores.append(("duckdb", f"duckdb:///{tmp}/bars.duckdb", None))
        ts = None if a.no_timescale else timescale_url(a.timescale)
        if ts:
            stores.append(("timescale", None, ts))
        elif not a.no_timescale:
            print("  timescale: no URL (run `make db-up`, or pass --timescale)")
        for label, url, base in stores:
            if base is not None:
                with fresh_schema(base) as (url, _):
                    run_store(label, url, bars, tmp, a, env)
            else:
                run_store(label, url, bars, tmp, a, env)


def run_store(label: str, url: str, bars: Path, tmp: Path, a: argparse.Namespace, env: dict[str, str]) -> None:
    from hdi.store import close_all

    fill(url, bars)
    close_all()
    # interleaved: read_bars per call, held, the raw limit, then both again (the machine drifts)
    med, p95, raw = read_latency(url, a.reads)
    held, hp95, _ = read_latency(url, a.reads, held=True)
    close_all()  # DuckDB allows one process per file: release it for the `hdi query` processes
    limit = raw_open_connection(url, a.reads)
    med2, _, _ = read_latency(url, a.reads)
    held2, _, _ = read_latency(url, a.reads, held=True)
    close_all()
    limit2 = raw_open_connection(url, a.reads)
    med, held, limit = statistics.median([med, med2]), statistics.median([held, held2]), min(limit, limit2)
    one_trip = raw_one_trip(url, a.reads) if label == "timescale" else None
    walls = query_process(url, tmp / f"{label}.parquet", a.runs, env)
    audit = import_audit(url, tmp / f"{label}.parquet", env)
    # the same reads once each contract's raw symbol is stored, as a backfill from Databento leaves it
    # (hdi ingest asks symbology.resolve for them): every row is then labelled from the intervals
    add_raw_symbols(url)
    close_all()
    rmed, _, _ = read_latency(url, a.reads)
    rheld, _, _ = read_latency(url, a.reads, held=True)
    close_all()
    b, m = best_median(walls)
    print(f"== {label}")
    print(f"  read_bars warm      : median {med:6.2f} ms  p95 {p95:6.2f} ms  ({a.reads} calls; target median <= "
          f"{READ_TARGET_MS:.0f} ms {'MET' if med <= READ_TARGET_MS else 'MISSED'})")
    print(f"  same rows, raw SQL  : median {raw:6.2f} ms through store.query  (read_bars / that = {med / raw:.1f}x)")
    print(f"  read_bars in hdi.hold: median {held:6.2f} ms  p95 {hp95:6.2f} ms  (the store held across the calls)")
    print(f"  same rows, raw SQL on an open connection (the limit): median {limit:6.2f} ms  (read_bars / raw = "
          f"{med / limit:.1f}x; target <= 2x {'MET' if med <= 2 * limit else 'MISSED'}; held: "
          f"{held / limit:.1f}x {'MET' if held <= 2 * limit else 'MISSED'})")
    print(f"  with raw-symbol intervals stored: read_bars median {rmed:6.2f} ms ({rmed / limit:.1f}x the limit), "
          f"in hdi.hold {rheld:6.2f} ms ({rheld / limit:.1f}x)")
    if one_trip is not None:
        print(f"  same rows, raw SQL as one round trip (values as literals, no COPY: how read_bars sends its "
              f"statement): median {one_trip:6.2f} ms  (read_bars / that = {med / one_trip:.1f}x)")
    print(f"  hdi query -> parquet: best {b:.2f} s  median {m:.2f} s  ({a.runs} processes; target <= "
          f"{QUERY_TARGET_S} s {'MET' if m <= QUERY_TARGET_S else 'MISSED'}; PRD < 5 s: {5 / m:.0f}x under)")
    print(f"    {audit}")
    result(f"NFR4b read_bars warm, {label} (median)", med, "ms", f"<= {READ_TARGET_MS:.0f} ms",
           med <= READ_TARGET_MS, f"p95 {p95:.2f} ms; raw SQL {raw:.2f} ms")
    result(f"read_bars warm / raw SQL, {label}", med / limit, "x", "<= 2x", med <= 2 * limit,
           f"read_bars {med:.2f} ms; raw SQL on an open connection {limit:.2f} ms")
    result(f"read_bars in hdi.hold / raw SQL, {label}", held / limit, "x", "<= 2x", held <= 2 * limit,
           f"read_bars held {held:.2f} ms; raw SQL on an open connection {limit:.2f} ms")
    result(f"read_bars warm with raw-symbol intervals, {label} (median)", rmed, "ms", f"<= {READ_TARGET_MS:.0f} ms",
           rmed <= READ_TARGET_MS, f"held {rheld:.2f} ms; raw SQL on an open connection {limit:.2f} ms")
    result(f"NFR4b hdi query parquet, {label} (median wall)", m, "s", f"<= {QUERY_TARGET_S} s",
           m <= QUERY_TARGET_S, f"best {b:.2f} s; PRD < 5 s")


if __name__ == "__main__":
    main()
