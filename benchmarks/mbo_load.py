"""MBO end to end (issue 13): ``hdi ingest --recipe recipes/mbo.yaml --from-file F`` of a synthetic MBO file
into each store, next to a raw load of the same final rows measured in the same run (as trades_load.py
does for trades), and the peak RSS of whole ``hdi ingest`` processes for a small and a large file.

- Rate: rows / wall seconds of ``hdi.pipeline.ingest`` (decode -> recipe -> validate -> idempotent load,
  with the ledger) into a fresh store, median of ``--repeat``. Raw baselines: DuckDB ``INSERT ... SELECT``
  of the final rows into an unindexed table; TimescaleDB ``adbc_ingest`` into an unindexed plain table.
- Memory: ``ru_maxrss`` of ``hdi ingest`` processes (``os.wait4``) for ``--small`` and ``--large``
  records into DuckDB; target: the large peak within 1.3x the small one.

The file (``write_mbo``): adds, cancels, trades and fills of 3 instruments over 4 days, increasing
``ts_recv``, several records per packet (same ``ts_recv``), and 1% of records repeated byte for byte
(what the ordinal numbers).

Usage: .venv/bin/python benchmarks/mbo_load.py [--records 2000000] [--repeat 3] [--small 2000000]
       [--large 20000000] [--timescale URL] [--no-timescale] [--no-memory]
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    HDI,
    ROOT,
    admin,
    best_median,
    fresh_schema,
    load_average,
    result,
    run_process,
    timescale_url,
)
from _dbn import FUTURES, Interval, Mapping, ns  # noqa: E402

RECIPE = ROOT / "recipes" / "mbo.yaml"


def write_mbo(path: Path, n: int, *, symbols: tuple[str, ...] = ("ES.c.0", "CL.c.0", "NG.c.0"),
              start: dt.date = dt.date(2025, 3, 3), days: int = 4, seed: int = 1, piece: int = 1_000_000) -> int:
    """Write ``n`` MBO records to ``path`` (``.dbn.zst``), piece by piece; return the file size."""
    import databento_dbn as dbn
    import zstandard

    end = start + dt.timedelta(days=days)
    ids = np.array([FUTURES[s][0] for s in symbols], dtype=np.uint32)
    px = np.array([FUTURES[s][1] for s in symbols], dtype=np.int64)
    tick = np.array([FUTURES[s][2] for s in symbols], dtype=np.int64)
    meta = dbn.Metadata(
        dataset="GLBX.MDP3", start=ns(start), end=ns(end), schema=dbn.Schema.MBO,
        stype_in=dbn.SType.CONTINUOUS, stype_out=dbn.SType.INSTRUMENT_ID, symbols=list(symbols), partial=[],
        not_found=[], mappings=[Mapping(s, [Interval(start, end, str(i))]) for s, i in zip(symbols, ids.tolist(),
                                                                                            strict=True)],
    )
    rng = np.random.default_rng(seed)
    span = ns(end) - ns(start)
    pieces = max(1, -(-n // piece))
    seq0, oid0 = 1_000_000, 10_000_000
    with open(path, "wb") as fh, zstandard.ZstdCompressor(level=3).stream_writer(fh) as out:
        out.write(meta.encode())
        for p in range(pieces):
            k = min(piece, n - p * piece)
            lo, hi = ns(start) + span * p // pieces, ns(start) + span * (p + 1) // pieces
            arr = np.zeros(k, dtype=dbn.MBOMsg._dtypes)
            arr["length"], arr["rtype"], arr["publisher_id"] = arr.dtype.itemsize // 4, 160, 1
            # packets of 1-4 records share ts_recv
            packet = np.cumsum(rng.random(k) < 0.6)
            ts = np.sort(rng.integers(lo, hi, int(packet[-1]) + 1, dtype=np.int64))[packet]
            sym = rng.integers(0, len(symbols), k)
            src = np.arange(k)
            dup = rng.random(k) < 0.01
            dup[0] = False
            src = np.where(dup, src - 1, src)  # a byte-identical repeat of the record before
            arr["instrument_id"] = ids[sym][src]
            arr["ts_recv"] = ts[src]
            arr["ts_event"] = ts[src] - rng.integers(2_000, 40_000, k)[src]
            arr["ts_in_delta"] = rng.integers(500, 10_000, k)[src]
            arr["sequence"] = (seq0 + np.arange(k))[src]
            arr["order_id"] = (oid0 + np.arange(k, dtype=np.uint64))[src]
            arr["price"] = (px[sym] + rng.integers(-200, 200, k) * tick[sym])[src]
            arr["size"] = rng.integers(1, 25, k)[src]
            arr["action"] = np.choose(rng.integers(0, 4, k), [b"A", b"C", b"T", b"F"])[src]
            arr["side"] = np.choose(rng.integers(0, 100, k) // 49, [b"A", b"B", b"N"])[src]
            arr["flags"] = np.where(np.r_[packet[1:] != packet[:-1], True], 128, 0)[src]
            seq0, oid0 = seq0 + k, oid0 + k
            out.write(arr.tobytes())
    return path.stat().st_size


def final_rows(path: Path):  # noqa: ANN201 - polars frame
    import polars as pl

    from hdi.decode.dbn import decode_file
    from hdi.pipeline import check_recipe
    from hdi.source.files import open_dbn
    from hdi.validate.split import split

    compiled = check_recipe(RECIPE)
    f = open_dbn(path)
    good = []
    for batch in decode_file(f):
        out = compiled.fn(batch.with_columns(pl.lit(f.metadata.dataset).alias("dataset")).lazy()).collect()
        res = split(out, "mbo")
        assert res.bad.height == 0, res.bad.head()
        good.append(res.good)
    return pl.concat(good)


def plain_ddl(name: str, backend: str) -> str:
    from hdi._tables import MBO
    from hdi.store.schema import SQL_TYPES

    cols = ", ".join('"' + c.name + '" ' + SQL_TYPES[backend][c.type] for c in MBO.columns)
    return f"CREATE TABLE {name} ({cols})"


def pipeline_run(path: Path, store: str) -> tuple[float, object]:
    from hdi.pipeline import ingest

    t0 = time.perf_counter()
    report = ingest(RECIPE, from_files=[path], store=store)
    return time.perf_counter() - t0, report


def duckdb_bench(path: Path, frame, tmp: Path, repeat: int) -> None:  # noqa: ANN001
    import duckdb

    from hdi._tables import MBO
    from hdi.store import close_all
    from hdi.store.schema import conform

    n = frame.height
    rows = conform(frame, MBO, backend="duckdb")  # noqa: F841 - read by the SQL (replacement scan)
    raw, hdi_t = [], []
    for i in range(repeat):
        db = tmp / f"raw{i}.duckdb"
        con = duckdb.connect(str(db))
        con.execute(plain_ddl("raw_plain", "duckdb"))
        con.execute("CHECKPOINT")
        t0 = time.perf_counter()
        con.execute("INSERT INTO raw_plain SELECT * FROM rows")
        raw.append(time.perf_counter() - t0)
        con.close()
        db.unlink()
        secs, report = pipeline_run(path, f"duckdb:///{tmp}/hdi{i}.duckdb")
        assert report.ok and report.rows_loaded == n, (report.rows_loaded, n)
        hdi_t.append(secs)
        close_all()
        Path(f"{tmp}/hdi{i}.duckdb").unlink()
    (_, rm), (b, m) = best_median(raw), best_median(hdi_t)
    print(f"  raw INSERT of the final rows, plain table : median {n / rm:>12,.0f} rows/s")
    print(f"  hdi ingest (decode..load, ledger)         : median {n / m:>12,.0f} rows/s  (best {n / b:,.0f}; "
          f"{m:.2f} s median of {repeat})")
    print(f"  ratio hdi / raw INSERT (medians)          : {rm / m:>12.2f}x")
    result("mbo->duckdb rows/s (median)", n / m, "rows/s", "(report)", None, f"raw INSERT {n / rm:,.0f} rows/s")


def timescale_bench(path: Path, frame, base: str, repeat: int) -> None:  # noqa: ANN001
    import adbc_driver_postgresql.dbapi as pg

    from hdi._tables import MBO
    from hdi.store import close_all, open_store
    from hdi.store.schema import conform

    n = frame.height
    arrow = conform(frame, MBO, backend="timescale").to_arrow()
    raw, hdi_t = [], []
    for _ in range(repeat):
        with fresh_schema(base) as (url, schema):
            admin(url, plain_ddl(f"{schema}.raw_plain", "timescale"), "CHECKPOINT")
            with pg.connect(url) as c, c.cursor() as cur:
                t0 = time.perf_counter()
                cur.adbc_ingest("raw_plain", arrow, mode="append", db_schema_name=schema)
                c.commit()
                raw.append(time.perf_counter() - t0)
            admin(url, f"DROP TABLE {schema}.raw_plain")
            open_store(url).migrate()
            admin(url, "CHECKPOINT")
            secs, report = pipeline_run(path, url)
            assert report.ok and report.rows_loaded == n, (report.rows_loaded, n)
            hdi_t.append(secs)
            close_all()
    (_, rm), (b, m) = best_median(raw), best_median(hdi_t)
    print(f"  raw adbc_ingest, plain unindexed table    : median {n / rm:>12,.0f} rows/s")
    print(f"  hdi ingest (decode..load, ledger)         : median {n / m:>12,.0f} rows/s  (best {n / b:,.0f}; "
          f"{m:.2f} s median of {repeat})")
    print(f"  ratio hdi / raw adbc_ingest (medians)     : {rm / m:>12.2f}x   (trades target >= 0.40)")
    result("mbo->timescale / raw adbc_ingest", rm / m, "x", ">= 0.40", rm / m >= 0.4,
           f"hdi {n / m:,.0f} rows/s; raw {n / rm:,.0f} rows/s")


def peak(path: Path, tmp: Path, tag: str) -> float:
    m = run_process([HDI, "ingest", "--recipe", str(RECIPE), "--from-file", str(path), "--store",
                     f"duckdb:///{tmp}/{tag}.duckdb"])
    import duckdb

    con = duckdb.connect(str(tmp / f"{tag}.duckdb"), read_only=True)
    rows = con.execute("SELECT count(*) FROM mbo").fetchone()[0]
    con.close()
    print(f"  {tag:>6}: peak RSS {m.peak_rss_mib:>8.1f} MiB, {m.wall:6.1f} s, {rows:,} rows stored")
    (tmp / f"{tag}.duckdb").unlink(missing_ok=True)
    return m.peak_rss_mib


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=2_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--small", type=int, default=2_000_000)
    ap.add_argument("--large", type=int, default=20_000_000)
    ap.add_argument("--timescale")
    ap.add_argument("--no-timescale", action="store_true")
    ap.add_argument("--no-memory", action="store_true")
    ap.add_argument("--no-rate", action="store_true")
    args = ap.parse_args()
    print(f"MBO load, load average {load_average()}")
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        if not args.no_rate:
            path = tmp / "mbo.dbn.zst"
            size = write_mbo(path, args.records)
            frame = final_rows(path)
            print(f"{args.records:,} MBO records ({size / 2**20:.0f} MiB zst), {frame.height:,} final rows")
            warm = tmp / "warm.dbn.zst"  # imports and first-use costs out of the timed runs
            write_mbo(warm, 20_000, seed=9)
            pipeline_run(warm, f"duckdb:///{tmp}/warm.duckdb")
            print("DuckDB:")
            duckdb_bench(path, frame, tmp, args.repeat)
            base = None if args.no_timescale else timescale_url(args.timescale)
            if base:
                print("TimescaleDB:")
                timescale_bench(path, frame, base, args.repeat)
            del frame
            path.unlink()
        if not args.no_memory:
            print("Peak RSS of hdi ingest --from-file into DuckDB:")
            small, large = tmp / "small.dbn.zst", tmp / "large.dbn.zst"
            write_mbo(small, args.small)
            a = peak(small, tmp, "small")
            small.unlink()
            write_mbo(large, args.large)
            b = peak(large, tmp, "large")
            print(f"  {args.large:,} vs {args.small:,} records: {b / a:.2f}x (target <= 1.30: "
                  f"{'MET' if b / a <= 1.3 else 'MISSED'})")
            result("mbo peak RSS large/small", b / a, "x", "<= 1.30", b / a <= 1.3, f"{a:.0f} -> {b:.0f} MiB")


if __name__ == "__main__":
    main()
