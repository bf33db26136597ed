"""Decode speed: hdi's ``decode_file`` next to zstd decompression alone and ``DBNStore.to_df()``.

Writes 2,000,000-record trades, mbp-1 and ohlcv-1m files (``.dbn.zst``, one zstd frame each as
Databento's are, with symbol rolls in the metadata) to a temp folder, then times, each method in a
fresh subprocess so that peak RSS is its own:

- ``decompress``: the limit. Only decompress the file: the same zstd stream reader hdi reads with
  (``read_across_frames``), in the same 4 MiB pieces, bytes discarded;
- ``hdi``: ``list(decode_file(open_dbn(p)))``: every frame kept (1 M rows each), typed columns,
  nulls for sentinels, the ``symbol`` column mapped;
- ``hdi-stream``: frames of 250,000 rows consumed one at a time, nothing kept (what the loader does);
- ``to_df``: ``DBNStore.from_file(p).to_df()`` with its defaults (float prices, pretty timestamps,
  symbols mapped).

Each is run once to warm up, then ``--runs`` times (``to_df``: 3); the median is reported (and the
best), and ratios are of medians. CPU is the process's CPU time per run (all threads, median): on a
loaded machine it moves less than the wall time. The 1-minute load average is printed per file.

    .venv/bin/python benchmarks/decode.py [--records N] [--runs N] [--schemas trades,mbp-1,ohlcv-1m]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _dbn import Interval, Mapping  # benchmarks/ is on sys.path when run as a script
from _dbn import ns as _ns

RUNS = 5
TO_DF_RUNS = 3
PIECE = 4 << 20  # bytes per read: what decode_file reads at a time
TARGET_RPS = 15e6  # issue 17: >= 15 M records/s


def write_trades(path: Path, n: int) -> None:
    """CL.c.0 and NG.c.0 trades over 8 days, each rolling to a new contract after 4 days."""
    import databento_dbn as dbn
    import zstandard

    d0, d1, d2 = dt.date(2024, 3, 4), dt.date(2024, 3, 8), dt.date(2024, 3, 12)
    rng = np.random.default_rng(1)
    arr = np.zeros(n, dtype=dbn.TradeMsg._dtypes)
    arr["length"], arr["rtype"], arr["publisher_id"] = arr.dtype.itemsize // 4, 0, 1
    ts = np.sort(rng.integers(_ns(d0), _ns(d2), n, dtype=np.uint64))
    ng = rng.random(n) < 0.3
    late = ts >= _ns(d1)
    arr["instrument_id"] = np.where(ng, np.where(late, 2002, 2001), np.where(late, 1002, 1001))
    arr["ts_event"], arr["ts_recv"] = ts, ts + 1500
    arr["price"] = 78_000_000_000 + rng.integers(-2_000_000_000, 2_000_000_000, n) // 10_000_000 * 10_000_000
    arr["size"] = rng.integers(1, 50, n)
    arr["action"] = b"T"
    arr["side"] = np.where(rng.random(n) < 0.5, b"A", b"B")
    arr["flags"], arr["ts_in_delta"], arr["sequence"] = 128, 1500, np.arange(n)
    meta = dbn.Metadata(
        dataset="GLBX.MDP3", start=_ns(d0), end=_ns(d2), schema=dbn.Schema.TRADES, stype_in=dbn.SType.CONTINUOUS,
        stype_out=dbn.SType.INSTRUMENT_ID, symbols=["CL.c.0", "NG.c.0"], partial=[], not_found=[],
        mappings=[Mapping("CL.c.0", [Interval(d0, d1, "1001"), Interval(d1, d2, "1002")]),
                  Mapping("NG.c.0", [Interval(d0, d1, "2001"), Interval(d1, d2, "2002")])],
    )
    path.write_bytes(zstandard.ZstdCompressor(level=3).compress(meta.encode() + arr.tobytes()))


def write_mbp1(path: Path, n: int) -> None:
    """Top-of-book updates for CL.c.0 and NG.c.0 over 8 days, each rolling after 4 days."""
    import databento_dbn as dbn
    import zstandard

    d0, d1, d2 = dt.date(2024, 3, 4), dt.date(2024, 3, 8), dt.date(2024, 3, 12)
    rng = np.random.default_rng(3)
    arr = np.zeros(n, dtype=dbn.MBP1Msg._dtypes)
    arr["length"], arr["rtype"], arr["publisher_id"] = arr.dtype.itemsize // 4, 1, 1
    ts = np.sort(rng.integers(_ns(d0), _ns(d2), n, dtype=np.uint64))
    ng = rng.random(n) < 0.3
    late = ts >= _ns(d1)
    arr["instrument_id"] = np.where(ng, np.where(late, 2002, 2001), np.where(late, 1002, 1001))
    arr["ts_event"], arr["ts_recv"] = ts, ts + 1500
    mid = 78_000_000_000 + rng.integers(-200, 200, n) * 10_000_000
    arr["price"] = mid
    arr["size"] = rng.integers(1, 50, n)
    arr["action"] = np.choose(rng.integers(0, 3, n), [b"A", b"C", b"T"])
    arr["side"] = np.where(rng.random(n) < 0.5, b"A", b"B")
    arr["flags"], arr["ts_in_delta"], arr["sequence"] = 128, 1500, np.arange(n)
    arr["bid_px_00"], arr["ask_px_00"] = mid - 10_000_000, mid
    arr["bid_sz_00"], arr["ask_sz_00"] = rng.integers(1, 200, n), rng.integers(1, 200, n)
    arr["bid_ct_00"], arr["ask_ct_00"] = rng.integers(1, 20, n), rng.integers(1, 20, n)
    meta = dbn.Metadata(
        dataset="GLBX.MDP3", start=_ns(d0), end=_ns(d2), schema=dbn.Schema.MBP_1, stype_in=dbn.SType.CONTINUOUS,
        stype_out=dbn.SType.INSTRUMENT_ID, symbols=["CL.c.0", "NG.c.0"], partial=[], not_found=[],
        mappings=[Mapping("CL.c.0", [Interval(d0, d1, "1001"), Interval(d1, d2, "1002")]),
                  Mapping("NG.c.0", [Interval(d0, d1, "2001"), Interval(d1, d2, "2002")])],
    )
    path.write_bytes(zstandard.ZstdCompressor(level=3).compress(meta.encode() + arr.tobytes()))


def write_ohlcv_1m(path: Path, n: int) -> None:
    """1-minute bars for 20 continuous symbols, each rolling to a new id every 30 days."""
    import databento_dbn as dbn
    import zstandard

    symbols = 20
    minutes = -(-n // symbols)
    d0 = dt.date(2023, 1, 2)
    rng = np.random.default_rng(2)
    arr = np.zeros(n, dtype=dbn.OHLCVMsg._dtypes)
    arr["length"], arr["rtype"], arr["publisher_id"] = arr.dtype.itemsize // 4, 33, 1
    k = np.arange(n)
    minute, sym = k // symbols, k % symbols
    ts = np.uint64(_ns(d0)) + minute.astype(np.uint64) * np.uint64(60 * 10**9)
    roll = (minute // (30 * 1440)).astype(np.uint32)
    arr["ts_event"] = ts
    arr["instrument_id"] = 10_000 + sym * 100 + roll
    base = 1_000_000_000_000 + sym * 10_000_000_000
    arr["open"] = base + rng.integers(-10**9, 10**9, n)
    arr["high"] = arr["open"] + 500_000_000
    arr["low"] = arr["open"] - 500_000_000
    arr["close"] = arr["open"] + rng.integers(-10**8, 10**8, n)
    arr["volume"] = rng.integers(1, 5000, n)
    days = minutes // 1440 + 1
    mappings = []
    for s in range(symbols):
        ivs = [Interval(d0 + dt.timedelta(days=30 * r), d0 + dt.timedelta(days=min(30 * (r + 1), days)),
                        str(10_000 + s * 100 + r)) for r in range(-(-days // 30))]
        mappings.append(Mapping(f"S{s:02d}.c.0", ivs))
    meta = dbn.Metadata(
        dataset="GLBX.MDP3", start=_ns(d0), end=_ns(d0 + dt.timedelta(days=days)), schema=dbn.Schema.OHLCV_1M,
        stype_in=dbn.SType.CONTINUOUS, stype_out=dbn.SType.INSTRUMENT_ID, symbols=[m.raw_symbol for m in mappings],
        partial=[], not_found=[], mappings=mappings,
    )
    path.write_bytes(zstandard.ZstdCompressor(level=3).compress(meta.encode() + arr.tobytes()))


WRITERS = {"trades": write_trades, "mbp-1": write_mbp1, "ohlcv-1m": write_ohlcv_1m}
METHODS = ("decompress", "hdi", "hdi-stream", "to_df")


def _child(method: str, path: str, runs: int) -> None:
    """Run one method: warm-up, then ``runs`` timed runs; print JSON with the times and peak RSS."""
    import warnings

    import databento as db
    import polars as pl
    import zstandard

    from hdi.decode.dbn import decode_file
    from hdi.source.files import open_dbn

    warnings.simplefilter("ignore")  # pandas 3 deprecation noise from inside to_df
    base_rss = _status_mib("VmRSS")

    def decompress() -> int:
        f = open_dbn(path)  # the header and the record size, as hdi reads them (not timed apart)
        size = np.dtype(f.record_class._dtypes).itemsize
        total = 0
        with open(path, "rb") as fh:
            reader = zstandard.ZstdDecompressor().stream_reader(fh, read_across_frames=True)
            while chunk := reader.read(PIECE):
                total += len(chunk)
        return (total - f._metadata_bytes) // size

    def to_df() -> int:
        return len(db.DBNStore.from_file(path).to_df())

    def hdi() -> int:
        frames = list(decode_file(open_dbn(path)))
        assert frames[0]["symbol"].null_count() == 0
        return sum(f.height for f in frames)

    def hdi_stream() -> int:
        return sum(f.height for f in decode_file(open_dbn(path), chunk_rows=250_000))

    run = {"decompress": decompress, "to_df": to_df, "hdi": hdi, "hdi-stream": hdi_stream}[method]
    rows = run()
    times, cpu = [], []
    for _ in range(runs):
        start, start_cpu = time.perf_counter(), time.process_time()
        assert run() == rows
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    print(json.dumps({"rows": rows, "median": statistics.median(times), "best": min(times), "times": times,
                      "cpu_median": statistics.median(cpu),
                      "polars_threads": pl.thread_pool_size(), "base_rss_mib": base_rss,
                      "peak_rss_mib": _status_mib("VmHWM")}))


def _status_mib(field: str) -> float:
    """VmRSS (now) or VmHWM (peak) of this process in MiB; unlike ru_maxrss, VmHWM starts afresh
    at exec, so the parent's memory does not count."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def _measure(method: str, path: Path, runs: int) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", method, str(path), str(runs)], check=True,
                         capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=2_000_000)
    parser.add_argument("--runs", type=int, default=RUNS)
    parser.add_argument("--schemas", default=",".join(WRITERS), help="comma-separated: " + ", ".join(WRITERS))
    parser.add_argument("--child", nargs=3, metavar=("METHOD", "PATH", "RUNS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child[0], args.child[1], int(args.child[2]))
        return
    with tempfile.TemporaryDirectory(prefix="hdi-bench-decode-") as tmp:
        for schema in args.schemas.split(","):
            path = Path(tmp) / f"{schema}.dbn.zst"
            start = time.perf_counter()
            WRITERS[schema](path, args.records)
            print(f"\n{schema}: {args.records:,} records, {path.stat().st_size / 2**20:.1f} MiB zst "
                  f"(written in {time.perf_counter() - start:.1f} s), load average {os.getloadavg()[0]:.2f}")
            results = {m: _measure(m, path, TO_DF_RUNS if m == "to_df" else args.runs) for m in METHODS}
            for method, r in results.items():
                assert r["rows"] == args.records, (method, r["rows"])
                print(f"  {method:11s} median {r['median'] * 1000:8.1f} ms  {r['rows'] / r['median'] / 1e6:6.2f} M rec/s"
                      f"  (best {r['rows'] / r['best'] / 1e6:6.2f})  CPU {r['cpu_median'] * 1000:7.0f} ms"
                      f"  runs {', '.join(f'{t * 1000:.0f}' for t in r['times'])} ms"
                      f"  peak RSS {r['peak_rss_mib']:6.0f} MiB (after imports {r['base_rss_mib']:.0f})")
            rps = {m: r["rows"] / r["median"] for m, r in results.items()}
            vs_zstd = {m: rps[m] / rps["decompress"] for m in ("hdi", "hdi-stream")}
            vs_to_df = rps["hdi"] / rps["to_df"]
            print(f"  decode_file: {rps['hdi'] / 1e6:.2f} M rec/s = {vs_zstd['hdi']:.2f}x decompress-only "
                  f"(streaming {rps['hdi-stream'] / 1e6:.2f} M rec/s = {vs_zstd['hdi-stream']:.2f}x), "
                  f"{vs_to_df:.1f}x to_df()")
            note = (f"median of {args.runs}; load {os.getloadavg()[0]:.1f}; decompress-only "
                    f"{rps['decompress'] / 1e6:.2f} M rec/s")
            tag = f"decode {schema} {args.records / 1e6:g}M"
            _result(f"{tag}: decode_file rec/s", rps["hdi"] / 1e6, "M rec/s", f">= {TARGET_RPS / 1e6:g}",
                    rps["hdi"] >= TARGET_RPS, note)
            _result(f"{tag}: decode_file / decompress-only", vs_zstd["hdi"], "x", "report", True,
                    f"streaming (250k frames) {vs_zstd['hdi-stream']:.2f}x; " + note)
            _result(f"{tag}: decode_file / to_df()", vs_to_df, "x", ">= 8", vs_to_df >= 8, note)


def _result(name: str, value: float, unit: str, target: str, ok: bool, note: str) -> None:
    print("RESULT " + json.dumps({"name": name, "value": value, "unit": unit, "target": target, "ok": ok,
                                  "note": note}), flush=True)


if __name__ == "__main__":
    main()
