"""Trades end to end (issue 4): ``hdi.pipeline.ingest(recipes/trades.yaml, from_files=[a DBN file])``
(decode -> recipe -> validate -> idempotent load, with the ledger) against baselines measured in the
same run on the same machine:

- TimescaleDB (issue 17): target >= 0.8x the rate of a raw binary COPY (``adbc_ingest``) of the same
  final rows, as the lean ``hdi_trades`` table stores them, into an unindexed plain table (CHECKPOINT
  before each load; the COPY of the old plain layout is printed beside it); and the whole process
  (``python -m hdi ingest`` from start to exit) >= 0.4x a raw binary COPY of the minimal DBN columns
  (ints). Bytes per row of every data table (table + indexes, ``hypertable_size``), and of the old
  plain layout with its unique key index for comparison. Also the ratio against
  ``pandas.DataFrame.to_sql`` (SQLAlchemy + psycopg, the PRD's path) on a subset, per row.
- DuckDB: target >= 0.8x a raw ``INSERT ... SELECT`` + ``CHECKPOINT`` of the same final rows into an
  unindexed plain table (issue 17.3), and >= 1 M rows/s; bytes per row of every table of the store.
  As whole processes: ``hdi ingest --from-file`` against a raw load of the minimal DBN columns
  (zstd, numpy, INSERT, CHECKPOINT; no recipe, validation or ledger): target >= 0.4x.

Each pipeline run loads into a fresh store (new schema / new file); rates are rows / wall seconds of
the ``ingest`` call (process start and imports excluded: a warm-up ingest runs first). Best and median
of ``--repeat`` runs are printed; ratios use the medians. A re-run with ``refresh=True`` (every row
already present: the merge path) is timed once per store.

Usage: .venv/bin/python benchmarks/trades_load.py [--trades 2000000] [--repeat 3] [--to-sql-rows 100000]
       [--timescale URL] [--no-timescale] [--no-duckdb]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ROOT, admin, best_median, fresh_schema, load_average, result, timescale_url  # noqa: E402
from _dbn import write_trades  # noqa: E402

RECIPE = ROOT / "recipes" / "trades.yaml"


def final_rows(path: Path):  # noqa: ANN201 - polars frame
    """The rows the pipeline stores for this file: decode -> recipe -> split, every batch, concatenated."""
    import polars as pl

    from hdi.decode.dbn import decode_file
    from hdi.pipeline import check_recipe
    from hdi.source.files import open_dbn
    from hdi.validate.split import split

    compiled = check_recipe(RECIPE)
    f = open_dbn(path)
    dataset = f.metadata.dataset
    good = []
    for batch in decode_file(f):
        out = compiled.fn(batch.with_columns(pl.lit(dataset).alias("dataset")).lazy()).collect()
        good.append(split(out, "trades").good)
    return pl.concat(good)


def plain_ddl(name: str, backend: str) -> str:
    from hdi._tables import TRADES
    from hdi.store.schema import SQL_TYPES

    cols = ", ".join(f'"{c.name}" {SQL_TYPES[backend][c.type]}' for c in TRADES.columns)
    return f"CREATE TABLE {name} ({cols})"


def pipeline_run(path: Path, store: str, refresh: bool = False, cpu: list[float] | None = None) -> tuple[float, object]:
    """Wall seconds and report of one ingest; its CPU seconds (every thread: DuckDB's and Polars' too)
    are appended to ``cpu``."""
    from hdi.pipeline import ingest

    t0, c0 = time.perf_counter(), time.process_time()
    report = ingest(RECIPE, from_files=[path], store=store, refresh=refresh)
    if cpu is not None:
        cpu.append(time.process_time() - c0)
    return time.perf_counter() - t0, report


def warm_up(tmp: Path) -> None:
    """One small ingest so that imports and first-use costs are not in the timed runs."""
    from hdi.store import close_all

    small = tmp / "warm.dbn.zst"
    write_trades(small, 20_000, seed=9)
    pipeline_run(small, f"duckdb:///{tmp}/warm.duckdb")
    close_all()


def duckdb_bench(path: Path, frame, tmp: Path, repeat: int) -> None:  # noqa: ANN001
    """Issue 17.3 (DuckDB half): the pipeline against a raw INSERT of the same final rows into an
    unindexed plain table, both durable (the raw load's CHECKPOINT is timed: hdi's detach
    checkpoints), interleaved run by run; target >= 0.8x."""
    import duckdb

    from hdi._tables import TRADES
    from hdi.store import close_all
    from hdi.store.schema import conform

    n = frame.height
    raw_times, times = [], []
    raw_cpu: list[float] = []
    cpu: list[float] = []
    rows = conform(frame, TRADES, backend="duckdb")  # noqa: F841 - read by the SQL (replacement scan)
    sizes: dict[str, int] = {}
    for i in range(repeat):
        db = tmp / f"raw{i}.duckdb"
        con = duckdb.connect(str(db))
        con.execute(plain_ddl("raw_plain", "duckdb"))
        con.execute("CHECKPOINT")
        t0, c0 = time.perf_counter(), time.process_time()
        con.execute("INSERT INTO raw_plain SELECT * FROM rows")
        con.execute("CHECKPOINT")
        raw_times.append(time.perf_counter() - t0)
        raw_cpu.append(time.process_time() - c0)
        sizes["raw plain table"] = db.stat().st_size
        con.close()
        db.unlink()
        url = f"duckdb:///{tmp}/hdi{i}.duckdb"
        secs, report = pipeline_run(path, url, cpu=cpu)
        assert report.ok and report.rows_loaded == n, (report.rows_loaded, n)
        times.append(secs)
        if i == repeat - 1:
            again_cpu: list[float] = []
            again, rep2 = pipeline_run(path, url, refresh=True, cpu=again_cpu)
            assert rep2.ok and rep2.rows_loaded == 0 and rep2.rows_already_present == n, rep2
        close_all()
        if i == repeat - 1:
            per_table = duckdb_table_bytes(Path(f"{tmp}/hdi{i}.duckdb"))
        Path(f"{tmp}/hdi{i}.duckdb").unlink()
    raw_b, raw_m = best_median(raw_times)
    b, m = best_median(times)
    ratio = raw_m / m
    print(f"  raw INSERT + CHECKPOINT, final rows, plain: best {n / raw_b:>12,.0f} rows/s  median {n / raw_m:>12,.0f}")
    print(f"  hdi ingest (decode..load, ledger)         : best {n / b:>12,.0f} rows/s  median {n / m:>12,.0f}"
          f"   ({m:.2f} s median of {repeat})")
    print(f"  ratio hdi / raw INSERT (medians)          : {ratio:>12.2f}x   (target >= 0.80: "
          f"{'MET' if ratio >= 0.8 else 'MISSED'})")
    print(f"  re-run, refresh=True (every row present)  : {n / again:>12,.0f} rows/s   ({again:.2f} s, merge path: "
          f"{again_cpu[0]:.2f} CPU s; it inserts no row, the first load writes {n:,})")
    _, raw_c = best_median(raw_cpu)
    _, hdi_c = best_median(cpu)
    print(f"  CPU seconds (every thread), medians: raw INSERT + CHECKPOINT {raw_c:.2f}; hdi ingest {hdi_c:.2f} "
          f"(ratio of CPU {raw_c / hdi_c:.2f}x: the load-independent share of the wall-time ratio)")
    print(f"  bytes per trade, DuckDB: the .dbn.zst {path.stat().st_size / n:.1f}; raw plain table file "
          f"{sizes['raw plain table'] / n:.1f}; hdi store file {per_table.pop('(file)')[1] / n:.1f}")
    small = [t for t, (nrows, _) in per_table.items() if nrows < 1000]
    for table, (nrows, nbytes) in per_table.items():
        if table not in small:
            print(f"    {table:<18} {nrows:>12,} rows  {nbytes / nrows:>8.1f} B/row  ({nbytes / 2**20:.1f} MiB of blocks)")
    print("    ledger and metadata tables (a few rows, a block or two each): "
          + ", ".join(f"{t} {per_table[t][1] / 2**10:.0f} KiB" for t in small))
    result("trades->duckdb / raw INSERT+CHECKPOINT", ratio, "x", ">= 0.80", ratio >= 0.8,
           f"hdi {n / m:,.0f} rows/s; raw {n / raw_m:,.0f} rows/s")
    result("trades->duckdb rows/s (median)", n / m, "rows/s", ">= 1,000,000", n / m >= 1e6,
           f"best {n / b:,.0f}; raw INSERT {n / raw_m:,.0f}")
    result("bytes per trade, DuckDB trades table", per_table["trades"][1] / per_table["trades"][0], "B/row",
           "(report)", None, f".dbn.zst {path.stat().st_size / n:.1f} B/trade")


def duckdb_table_bytes(db: Path) -> dict[str, tuple[int, int]]:
    """Rows and bytes of the blocks of every table holding rows of a DuckDB file (``(file)``: the
    file's size, in the bytes slot)."""
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    try:
        block = con.execute("SELECT block_size FROM pragma_database_size()").fetchone()[0]
        out: dict[str, tuple[int, int]] = {}
        for (name,) in con.execute("SELECT table_name FROM duckdb_tables() ORDER BY 1").fetchall():
            nrows = con.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0]
            if not nrows:
                continue
            blocks = con.execute("SELECT count(DISTINCT block_id) FROM pragma_storage_info($1) WHERE block_id >= 0",
                                 [name]).fetchone()[0]
            out[name] = (nrows, blocks * block)
    finally:
        con.close()
    out["(file)"] = (0, db.stat().st_size)
    return out


# -- issue 17.3: whole processes, hdi ingest against a raw load of the minimal DBN columns -----------
RAW_CHILD = "--raw-child"


def raw_child(dbn_path: str, db_path: str) -> None:
    """The floor of loading a trades file as a whole process: decompress, view the records with
    numpy, keep the minimal columns (no recipe, no validation, no ledger), INSERT them into an
    unindexed plain DuckDB table and CHECKPOINT."""
    import databento_dbn as dbn
    import duckdb
    import numpy as np
    import polars as pl
    import zstandard

    with open(dbn_path, "rb") as f:
        data = zstandard.ZstdDecompressor().decompressobj().decompress(f.read())
    body = memoryview(data)[8 + int.from_bytes(data[4:8], "little"):]
    rec = np.frombuffer(body, dtype=dbn.TradeMsg._dtypes)
    cols = pl.DataFrame({"ts_recv": rec["ts_recv"].astype(np.int64), "ts_event": rec["ts_event"].astype(np.int64),
                         "instrument_id": rec["instrument_id"], "price": rec["price"], "size": rec["size"],
                         "side": rec["side"].view(np.int8), "flags": rec["flags"], "sequence": rec["sequence"]})
    assert cols.height == len(rec)  # the SQL reads `cols` (replacement scan)
    con = duckdb.connect(db_path)
    con.execute("CREATE TABLE raw_min (ts_recv BIGINT, ts_event BIGINT, instrument_id UINTEGER, price BIGINT, "
                "size UINTEGER, side TINYINT, flags UTINYINT, sequence UINTEGER)")
    con.execute("INSERT INTO raw_min SELECT * FROM cols")
    con.execute("CHECKPOINT")
    assert con.execute("SELECT count(*) FROM raw_min").fetchone()[0] == len(rec)
    con.close()


def duckdb_whole_process(path: Path, n: int, tmp: Path, repeat: int) -> None:
    """``hdi ingest --recipe recipes/trades.yaml --from-file F`` into a new DuckDB file as a whole
    process, against :func:`raw_child` as a whole process, interleaved; target >= 0.4x."""
    from _common import HDI, PYTHON, run_process

    hdi_walls, raw_walls, hdi_cpu, raw_cpu = [], [], [], []
    for i in range(repeat):
        raw_db = tmp / f"rawmin{i}.duckdb"
        m = run_process([PYTHON, __file__, RAW_CHILD, str(path), str(raw_db)])
        raw_walls.append(m.wall)
        raw_cpu.append(m.cpu)
        raw_db.unlink()
        db = tmp / f"whole{i}.duckdb"
        m = run_process([HDI, "ingest", "--recipe", str(RECIPE), "--from-file", str(path), "--store",
                         f"duckdb:///{db}"], env={"HDI_DATA_DIR": str(tmp / f"data-whole{i}")})
        hdi_walls.append(m.wall)
        hdi_cpu.append(m.cpu)
        db.unlink()
    _, raw_m = best_median(raw_walls)
    _, m = best_median(hdi_walls)
    ratio = raw_m / m
    print(f"  whole process: raw load of the minimal DBN columns (zstd + numpy + INSERT + CHECKPOINT): "
          f"median {raw_m:.2f} s = {n / raw_m:,.0f} rows/s")
    print(f"  whole process: hdi ingest --from-file -> DuckDB: median {m:.2f} s = {n / m:,.0f} rows/s; "
          f"ratio {ratio:.2f}x (target >= 0.40: {'MET' if ratio >= 0.4 else 'MISSED'})")
    _, raw_c = best_median(raw_cpu)
    _, hdi_c = best_median(hdi_cpu)
    print(f"  whole process CPU seconds (user + system, medians): raw {raw_c:.2f}; hdi {hdi_c:.2f} "
          f"(ratio of CPU {raw_c / hdi_c:.2f}x)")
    result("trades->duckdb whole process / raw minimal load", ratio, "x", ">= 0.40", ratio >= 0.4,
           f"hdi {n / m:,.0f} rows/s; raw {n / raw_m:,.0f} rows/s; medians of {repeat}")


def lean_rows(frame):  # noqa: ANN001, ANN201 - polars frames
    """The final rows as the lean ``hdi_trades`` table stores them (one source code)."""
    import polars as pl

    from hdi._tables import TRADES
    from hdi.store.schema import conform
    from hdi.store.timescale_lean import LAYOUTS, SOURCE_COLUMNS, SRC, encode

    logical = conform(frame, TRADES, backend="duckdb")
    known = logical.select(*SOURCE_COLUMNS).unique().with_row_index(SRC, offset=1).with_columns(
        pl.col(SRC).cast(pl.Int16), pl.col("publisher_id").cast(pl.Int32))
    return encode(logical, LAYOUTS["trades"], known)


def dbn_columns(path: Path):  # noqa: ANN201 - polars frame
    """The minimal DBN columns of the file as integers (what a raw binary COPY of the records would carry)."""
    import polars as pl

    from hdi.decode.dbn import decode_file
    from hdi.source.files import open_dbn

    out = pl.concat(list(decode_file(open_dbn(path))))
    return out.select(pl.col("ts_recv").dt.epoch("ns").alias("ts_recv"), pl.col("ts_event").dt.epoch("ns").alias("ts_event"),
                      pl.col("instrument_id").cast(pl.Int64), pl.col("price"), pl.col("size").cast(pl.Int64),
                      pl.col("sequence").cast(pl.Int64), pl.col("ts_in_delta"),
                      pl.col("publisher_id").cast(pl.Int16), pl.col("flags").cast(pl.Int16),
                      pl.col("side").str.len_bytes().cast(pl.Int16).alias("side"))


def _raw_copy(base: str, ddl: str, arrow, repeat: int, cpu: list[float] | None = None) -> list[float]:  # noqa: ANN001
    """Seconds of a raw binary COPY (adbc_ingest) of ``arrow`` into a fresh unindexed plain table; the
    client's CPU seconds of each (ADBC's Arrow -> COPY encoding, mostly) are appended to ``cpu``."""
    import adbc_driver_postgresql.dbapi as pg

    times = []
    for _ in range(repeat):
        with fresh_schema(base) as (url, schema):
            admin(url, ddl.replace("TABLE raw_plain", f"TABLE {schema}.raw_plain"), "CHECKPOINT")
            with pg.connect(url) as c, c.cursor() as cur:
                t0, c0 = time.perf_counter(), time.process_time()
                cur.adbc_ingest("raw_plain", arrow, mode="append", db_schema_name=schema)
                c.commit()
                times.append(time.perf_counter() - t0)
                if cpu is not None:
                    cpu.append(time.process_time() - c0)
    return times


def _ddl_of(frame) -> str:  # noqa: ANN001
    import polars as pl

    types = {pl.Int64: "bigint", pl.Int32: "integer", pl.Int16: "smallint", pl.String: "text"}
    return "CREATE TABLE raw_plain (" + ", ".join(f'"{c}" {types[t.base_type()]}' for c, t in frame.schema.items()) + ")"


def timescale_bytes(url: str) -> list[tuple[str, int, float]]:
    """(table, rows, bytes per row incl. indexes) of every hdi data table holding rows (hypertable_size
    for hypertables, pg_total_relation_size otherwise)."""
    rows = admin(url, "SELECT c.relname, CASE WHEN h.hypertable_name IS NOT NULL THEN hypertable_size(c.oid) "
                      "ELSE pg_total_relation_size(c.oid) END FROM pg_class c LEFT JOIN "
                      "timescaledb_information.hypertables h ON h.hypertable_name = c.relname AND "
                      "h.hypertable_schema = current_schema() WHERE c.relnamespace = current_schema()::regnamespace "
                      "AND c.relkind IN ('r', 'p')")
    out = []
    for name, size in rows:
        n = admin(url, f'SELECT count(*) FROM "{name}"')[0][0]
        if n and not name.startswith(("ingest_", "hdi_schema", "hdi_sources", "symbology")):
            out.append((name, n, size / n))
    return sorted(out)


def old_layout_bytes(base: str, arrow) -> float:  # noqa: ANN001
    """Bytes per trade of the layout before migration 8: the plain trades hypertable and its unique key index."""
    from hdi._tables import TRADES
    from hdi.store.migrate import _create

    with fresh_schema(base) as (url, schema):
        admin(url, *_create([TRADES], "timescale"))
        import adbc_driver_postgresql.dbapi as pg

        with pg.connect(url) as c, c.cursor() as cur:
            cur.adbc_ingest("trades", arrow, mode="append", db_schema_name=schema)
            c.commit()
        admin(url, "VACUUM ANALYZE")
        return float(admin(url, "SELECT hypertable_size('trades')")[0][0]) / arrow.num_rows


def timescale_bench(path: Path, frame, base: str, repeat: int, to_sql_rows: int) -> None:  # noqa: ANN001
    import subprocess

    from hdi._tables import TRADES
    from hdi.store import close_all, open_store
    from hdi.store.schema import conform

    n = frame.height
    plain = conform(frame, TRADES, backend="timescale").to_arrow()
    lean = lean_rows(frame)
    dbn = dbn_columns(path)
    raw_plain = _raw_copy(base, plain_ddl("raw_plain", "timescale"), plain, repeat)
    lean_cpu: list[float] = []
    raw_lean = _raw_copy(base, _ddl_of(lean), lean.to_arrow(), repeat, lean_cpu)
    raw_dbn = _raw_copy(base, _ddl_of(dbn), dbn.to_arrow(), repeat)
    old_bytes = old_layout_bytes(base, plain)
    times, whole = [], []
    sizes: list[tuple[str, int, float]] = []
    for i in range(repeat):
        with fresh_schema(base) as (url, schema):
            open_store(url).migrate()
            admin(url, "CHECKPOINT")
            secs, report = pipeline_run(path, url)
            assert report.ok and report.rows_loaded == n, (report.rows_loaded, n)
            times.append(secs)
            if i == repeat - 1:
                again, rep2 = pipeline_run(path, url, refresh=True)
                assert rep2.ok and rep2.rows_loaded == 0 and rep2.rows_already_present == n, rep2
                pd_rate = to_sql_rate(url, schema, frame, to_sql_rows) if to_sql_rows else None
                admin(url, "VACUUM ANALYZE")
                sizes = timescale_bytes(url)
            close_all()
        with fresh_schema(base) as (url, schema):  # the whole process: `hdi ingest` from its start to its exit
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-m", "hdi", "ingest", "-r", str(RECIPE), "--from-file", str(path),
                            "--store", url, "--no-progress"], check=True, capture_output=True,
                           env={**os.environ, "PYTHONPATH": str(ROOT)})
            whole.append(time.perf_counter() - t0)
            got = admin(url, "SELECT count(*) FROM trades")[0][0]
            assert got == n, (got, n)
    _, m = best_median(times)
    b = min(times)
    _, rp = best_median(raw_plain)
    _, rl = best_median(raw_lean)
    _, rd = best_median(raw_dbn)
    _, w = best_median(whole)
    ratio, ratio_whole = rl / m, rd / w
    print(f"  raw COPY, final rows, old plain layout    : median {n / rp:>12,.0f} rows/s   (unindexed, numeric, timestamptz)")
    print(f"  raw COPY, final rows, lean layout (limit) : median {n / rl:>12,.0f} rows/s   (unindexed plain table; "
          f"client CPU {statistics.median(lean_cpu):.2f} s of {rl:.2f} s: ADBC's Arrow -> COPY encoding)")
    print(f"  raw COPY, minimal DBN columns (limit)     : median {n / rd:>12,.0f} rows/s   ({dbn.width} int columns)")
    print(f"  hdi ingest (decode..load, ledger)         : best {n / b:>12,.0f} rows/s  median {n / m:>12,.0f}"
          f"   ({m:.2f} s median of {repeat})")
    print(f"  ratio hdi / raw COPY of the final rows    : {ratio:>12.2f}x   (target >= 0.80: "
          f"{'MET' if ratio >= 0.8 else 'MISSED'}; vs the old plain layout {rp / m:.2f}x)")
    print(f"  whole process `hdi ingest` (exit to exit) : median {n / w:>12,.0f} rows/s   ({w:.2f} s)")
    print(f"  ratio whole process / raw DBN COPY        : {ratio_whole:>12.2f}x   (target >= 0.40: "
          f"{'MET' if ratio_whole >= 0.4 else 'MISSED'})")
    print(f"  re-run, refresh=True (every row present)  : {n / again:>12,.0f} rows/s   ({again:.2f} s, merge path)")
    print(f"  bytes per row, old plain trades + key     : {old_bytes:>12.1f} B   (before migration 8)")
    for name, rows, per in sizes:
        print(f"  bytes per row, TimescaleDB {name:<14} : {per:>12.1f} B   ({rows:,} rows; table + indexes)")
    result("trades->timescale / raw COPY of final rows", ratio, "x", ">= 0.80", ratio >= 0.8,
           f"hdi {n / m:,.0f} rows/s; raw lean COPY {n / rl:,.0f} rows/s; raw plain COPY {n / rp:,.0f} rows/s")
    result("trades->timescale whole process / raw DBN COPY", ratio_whole, "x", ">= 0.40", ratio_whole >= 0.4,
           f"hdi ingest {n / w:,.0f} rows/s; raw DBN COPY {n / rd:,.0f} rows/s")
    for name, _rows, per in sizes:
        if name == "hdi_trades":
            result("bytes per trade, TimescaleDB", per, "B", "<= 100", per <= 100, "table + indexes")
    if pd_rate:
        print(f"  pandas.to_sql (SQLAlchemy+psycopg), {to_sql_rows:,} rows: {pd_rate:>10,.0f} rows/s -> "
              f"{n / pd_rate:,.1f} s for {n:,} rows extrapolated")
        print(f"  ratio hdi / pandas.to_sql (per row)       : {n / m / pd_rate:>12.1f}x")
        result("trades->timescale / pandas.to_sql", n / m / pd_rate, "x", "(report)", None,
               f"to_sql {pd_rate:,.0f} rows/s on {to_sql_rows:,} rows")


def to_sql_rate(url: str, schema: str, frame, rows: int) -> float:  # noqa: ANN001
    """pandas.DataFrame.to_sql (method=None, chunksize=10000: the fastest to_sql variant measured in
    reference/libs.md) of the first ``rows`` final rows into a plain table with the same column types."""
    import warnings
    from urllib.parse import urlsplit, urlunsplit

    import sqlalchemy

    warnings.simplefilter("ignore")
    sub = frame.head(rows).to_pandas()
    parts = urlsplit(url)
    engine = sqlalchemy.create_engine(urlunsplit(("postgresql+psycopg", parts.netloc, parts.path, "", "")))
    admin(url, plain_ddl(f"{schema}.pandas_plain", "timescale"), "CHECKPOINT")
    t0 = time.perf_counter()
    numeric = {c: sqlalchemy.Numeric(19, 9) for c, t in frame.schema.items() if t.is_decimal()}
    sub.to_sql("pandas_plain", engine, schema=schema, if_exists="append", index=False, chunksize=10_000,
               dtype=numeric)
    secs = time.perf_counter() - t0
    engine.dispose()
    got = admin(url, f"SELECT count(*) FROM {schema}.pandas_plain")[0][0]
    assert got == rows, (got, rows)
    return rows / secs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trades", type=int, default=2_000_000, help="trades in the DBN file (default 2,000,000)")
    ap.add_argument("--repeat", type=int, default=3, help="timed runs per store (default 3)")
    ap.add_argument("--to-sql-rows", type=int, default=100_000, help="rows for the pandas.to_sql baseline (0: skip)")
    ap.add_argument("--timescale", help="TimescaleDB URL (default HDI_BENCH_TIMESCALE_URL or the local cluster)")
    ap.add_argument("--no-timescale", action="store_true")
    ap.add_argument("--no-duckdb", action="store_true")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="hdi-bench-trades-") as d:
        tmp = Path(d)
        os.environ["HDI_DATA_DIR"] = str(tmp / "data")
        path = tmp / "trades.dbn.zst"
        t0 = time.perf_counter()
        size = write_trades(path, a.trades)
        print(f"trades file: {a.trades:,} trades, {size / 2**20:.1f} MiB zst, written in {time.perf_counter() - t0:.1f} s; "
              f"load average {load_average()} (2 cores, shared)")
        warm_up(tmp)
        frame = final_rows(path)
        print(f"final rows: {frame.height:,} ({frame.estimated_size() / 2**20:.0f} MiB in Polars)")
        if not a.no_duckdb:
            print(f"== DuckDB (target >= 0.8x a raw INSERT of the final rows; >= 1 M rows/s), {a.repeat} runs; "
                  f"load average {load_average()}")
            duckdb_bench(path, frame, tmp, a.repeat)
            print(f"== DuckDB, whole processes (target >= 0.4x a raw load of the minimal DBN columns), "
                  f"{a.repeat} runs; load average {load_average()}")
            duckdb_whole_process(path, frame.height, tmp, a.repeat)
        ts = None if a.no_timescale else timescale_url(a.timescale)
        if ts:
            print(f"== TimescaleDB (targets: >= 0.8x raw COPY of the final rows, whole process >= 0.4x raw COPY of the DBN columns), {a.repeat} runs")
            timescale_bench(path, frame, ts, a.repeat, a.to_sql_rows)
        elif not a.no_timescale:
            print("== TimescaleDB: no URL (run `make db-up`, or pass --timescale)")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == RAW_CHILD:
        raw_child(sys.argv[2], sys.argv[3])
    else:
        main()
