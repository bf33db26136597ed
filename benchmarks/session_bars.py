"""Trading-day bars built on read: a year of one future's daily session bars (issue 11). Target: well
under 100 ms, in process, warm.

Each store is filled through the real pipeline (``ingest(recipes/ohlcv_1m.yaml, from_files=[...])``)
with one year (2024) of CL.c.0 1m bars, one per minute of every CME Globex energy session
(~340k bars). Measured in the same run, medians of ``--reads`` calls after one warm-up call:

- ``hdi.read_bars("CL.c.0", "2024-01-01", "2025-01-01", session="exchange")``, warm: the bars are
  materialised in memory after the first read and reused while the store's ledger shows no new
  ohlcv write (one ledger query), plus the statistics join (empty here);
- the same bars built from the 1m rows every time (``session_bars(..., cache=False)``): symbol
  resolution, the bucket pre-aggregation in SQL, the session edges, the fold into ~250 sessions;
- the baseline: one hand-written SQL query fetching the same 1m rows (``SELECT ... FROM ohlcv WHERE
  granularity = '1m' AND instrument_id = ... AND time in range``) on the store's open connection,
  which is what building the bars on read from the raw rows would have to read at least;
- the first (cold) call in a fresh process, which also builds the calendar's schedule with pandas.

Usage: .venv/bin/python benchmarks/session_bars.py [--reads 20] [--timescale URL] [--no-timescale]
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import PYTHON, ROOT, fresh_schema, load_average, result, run_process, timescale_url  # noqa: E402

SYMBOL, IID, START, END = "CL.c.0", 100_001, dt.date(2024, 1, 1), dt.date(2025, 1, 1)
TARGET_MS = 100.0


def write_year(path: Path) -> int:
    """One 1m bar per session minute of 2024 (CME Globex energy calendar) as an ohlcv-1m DBN file."""
    import databento_dbn as dbn

    from hdi.research.calendars import schedule

    sched = schedule("CMEGlobex_CrudeAndRefined", START, END - dt.timedelta(days=1))
    ts = np.concatenate([np.arange(o, c, 60 * 10**9, dtype=np.int64) for o, c in zip(
        sched["open"].dt.epoch("ns").to_list(), sched["close"].dt.epoch("ns").to_list(), strict=True)])
    ts = ts[(ts >= _ns(START)) & (ts < _ns(END))]
    n = len(ts)
    rng = np.random.default_rng(11)
    close = 70_000_000_000 + np.cumsum(rng.integers(-3, 4, n)) * 10_000_000
    arr = np.zeros(n, dtype=dbn.OHLCVMsg._dtypes)
    arr["length"], arr["rtype"], arr["publisher_id"], arr["instrument_id"] = arr.dtype.itemsize // 4, 33, 1, IID
    arr["ts_event"], arr["open"], arr["close"] = ts, np.roll(close, 1), close
    arr["high"] = np.maximum(arr["open"], close) + 10_000_000
    arr["low"] = np.minimum(arr["open"], close) - 10_000_000
    arr["volume"] = rng.integers(1, 50, n)

    class Iv(NamedTuple):
        start_date: dt.date
        end_date: dt.date
        symbol: str

    class Mapping(NamedTuple):
        raw_symbol: str
        intervals: list

    meta = dbn.Metadata(dataset="GLBX.MDP3", start=_ns(START), end=_ns(END), schema=dbn.Schema.OHLCV_1M,
                        stype_in=dbn.SType.CONTINUOUS, stype_out=dbn.SType.INSTRUMENT_ID, symbols=[SYMBOL],
                        partial=[], not_found=[], mappings=[Mapping(SYMBOL, [Iv(START, END, str(IID))])])
    path.write_bytes(meta.encode() + arr.tobytes())
    return n


def _ns(d: dt.date) -> int:
    return int(dt.datetime(d.year, d.month, d.day, tzinfo=dt.UTC).timestamp()) * 10**9


def measure(store: str, dbn_file: Path, reads: int, label: str) -> None:
    import statistics

    import hdi
    from hdi.pipeline import ingest
    from hdi.store import open_store

    t0 = time.perf_counter()
    report = ingest(ROOT / "recipes" / "ohlcv_1m.yaml", from_files=[dbn_file], store=store)
    assert report.ok, [c.error for c in report.chunks]
    print(f"{label}: loaded {report.rows_loaded:,} 1m bars in {time.perf_counter() - t0:.1f} s", flush=True)

    cold = run_process([PYTHON, "-c", (
        "import time, hdi; t = time.perf_counter(); "
        f"b = hdi.read_bars('{SYMBOL}', '{START}', '{END}', session='exchange', store={store!r}); "
        "print((time.perf_counter() - t) * 1000, b.height)")], env={"PYTHONPATH": str(ROOT)})
    cold_ms, cold_rows = cold.stdout.split()
    bars = hdi.read_bars(SYMBOL, START, END, session="exchange", store=store)  # warm-up: calendar cached
    times = []
    for _ in range(reads):
        t = time.perf_counter()
        bars = hdi.read_bars(SYMBOL, START, END, session="exchange", store=store)
        times.append((time.perf_counter() - t) * 1000)
    st = open_store(store)
    from hdi.research.sessions import session_bars

    built = []
    with st.session():
        for _ in range(max(3, reads // 4)):  # built from the 1m rows every time (no in-memory reuse)
            t = time.perf_counter()
            session_bars(st, [SYMBOL], START, END, cache=False)
            built.append((time.perf_counter() - t) * 1000)
    sql = ("SELECT instrument_id, bar_timestamp_utc, open_price, high_price, low_price, close_price, volume "
           "FROM ohlcv WHERE granularity = '1m' AND instrument_id = $1 AND bar_timestamp_utc >= $2 "
           "AND bar_timestamp_utc < $3")
    raw_times, raw_rows = [], 0
    lo, hi = dt.datetime(2023, 12, 31, 23, tzinfo=dt.UTC), dt.datetime(2024, 12, 31, 22, tzinfo=dt.UTC)
    with st.session():
        st.query(sql, [IID, lo, hi])
        for _ in range(reads):
            t = time.perf_counter()
            raw_rows = st.query(sql, [IID, lo, hi]).height
            raw_times.append((time.perf_counter() - t) * 1000)
    med, raw, build = statistics.median(times), statistics.median(raw_times), statistics.median(built)
    print(f"{label}: {bars.height} trading-day bars from {raw_rows:,} 1m rows; read_bars(session='exchange') "
          f"median {med:.1f} ms (best {min(times):.1f}); built from the 1m rows (no reuse) median {build:.1f} ms "
          f"(best {min(built):.1f}); raw SQL of the 1m rows median {raw:.1f} ms (best {min(raw_times):.1f}); "
          f"ratios read/raw {med / raw:.2f}x, build/raw {build / raw:.2f}x; first call in a fresh process "
          f"{float(cold_ms):.0f} ms ({cold_rows} bars)", flush=True)
    result(f"session_bars_{label}", round(med, 1), "ms", f"< {TARGET_MS:.0f} ms", med < TARGET_MS,
           f"built without reuse {build:.1f} ms; raw 1m SQL {raw:.1f} ms ({med / raw:.2f}x); cold process "
           f"{float(cold_ms):.0f} ms; load {load_average()}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reads", type=int, default=20)
    ap.add_argument("--timescale")
    ap.add_argument("--no-timescale", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        f = Path(tmp) / "cl_1m_2024.dbn"
        print(f"wrote {write_year(f):,} 1m bars; load average {load_average()}", flush=True)
        measure(f"duckdb://{tmp}/bench.duckdb", f, args.reads, "duckdb")
        url = None if args.no_timescale else timescale_url(args.timescale)
        if url:
            with fresh_schema(url) as (schema_url, _):
                measure(schema_url, f, args.reads, "timescale")


if __name__ == "__main__":
    main()
