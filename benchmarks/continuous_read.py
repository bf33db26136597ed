"""Issue 12: read a 10-year continuous daily series (synthetic CL, every contract) in < 200 ms.

The store is filled through the real pipeline from the local gateway: 10 years of CL definitions and
daily bars of every listed contract (parent symbol CL.FUT, recipes/cl_contracts_*.yaml, chunks of a
year), about 130 contracts. Then, warm, in process:

- ``hdi.read_continuous("CL", 2014-01-01, 2024-01-01, roll="calendar", days_before_expiry=2,
  adjust="difference")``: chain from the definitions, roll schedule, bars, back-adjustment;
- the same with ``adjust="ratio"`` and ``adjust="none"``;
- baselines in the same run, hand-written SQL on the open store: (a) exactly the series' bars, each
  contract over its own window (one OR term per contract); (b) every bar of the chain's contracts
  over the range by instrument list (what read_continuous fetches before keeping each contract's
  own window in Polars).

Usage: .venv/bin/python benchmarks/continuous_read.py [--reads 15] [--timescale URL] [--no-timescale]
       [--no-duckdb] [--keep DIR]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import fresh_schema, load_average, result, timescale_url  # noqa: E402

START, END = "2014-01-01", "2024-01-01"
TARGET_MS = 200.0


def fill(url: str, work: Path) -> float:
    from hdi.testing import contracts

    t0 = time.perf_counter()
    contracts.load(url, work, START, END, recipes=("definitions", "ohlcv_1d"), c0=False, chunk="year")
    return time.perf_counter() - t0


def raw_sql(url: str, segments: object) -> tuple[str, list]:
    params: list = []
    ors = []
    for iid, lo, hi in segments.select("instrument_id", "from_ts", "to_ts").iter_rows():  # type: ignore[attr-defined]
        params += [iid, lo, hi]
        n = len(params)
        ors.append(f"(instrument_id = ${n - 2} AND bar_timestamp_utc >= ${n - 1} AND bar_timestamp_utc < ${n})")
    sql = ("SELECT * FROM ohlcv WHERE granularity = '1d' AND dataset = 'GLBX.MDP3' AND (" + " OR ".join(ors)
           + ") ORDER BY bar_timestamp_utc")
    return sql, params


def measure(label: str, url: str, reads: int) -> None:
    import hdi
    from hdi._timeutil import parse_range
    from hdi.research.chains import chain_from
    from hdi.research.continuous import segments
    from hdi.research.rolls import roll_schedule
    from hdi.store import open_store

    t0 = time.perf_counter()
    df = hdi.read_continuous("CL", START, END, roll="calendar", days_before_expiry=2, adjust="difference", store=url)
    first = (time.perf_counter() - t0) * 1e3
    rolls = int(df.get_column("roll").sum())
    print(f"[{label}] {df.height:,} rows, {df.get_column('contract').n_unique()} contracts, {rolls} rolls; "
          f"first call (cold calendar cache) {first:.0f} ms")
    times: dict[str, list[float]] = {}
    for adjust in ("difference", "ratio", "none"):
        ts = []
        for _ in range(reads):
            t0 = time.perf_counter()
            out = hdi.read_continuous("CL", START, END, roll="calendar", days_before_expiry=2, adjust=adjust,
                                      store=url)
            ts.append((time.perf_counter() - t0) * 1e3)
            assert out.height == df.height
        times[adjust] = ts
    st = open_store(url)
    s, e = parse_range(START, END)
    with st.session():
        chain = chain_from(st, "CL", "GLBX.MDP3")
        seg = segments(chain, roll_schedule(st, "CL", "calendar", 2, chain=chain), s, e)
    sql, params = raw_sql(url, seg)
    raw = []
    for _ in range(reads):
        t0 = time.perf_counter()
        with st.session():
            rows = st.query(sql, params)
        raw.append((time.perf_counter() - t0) * 1e3)
    assert rows.height == df.height, (rows.height, df.height)
    raw_med = statistics.median(raw)
    ids = seg.get_column("instrument_id").unique().to_list()
    ph = ", ".join(f"${i + 3}" for i in range(len(ids)))
    wide_sql = (f"SELECT * FROM ohlcv WHERE granularity = '1d' AND dataset = 'GLBX.MDP3' AND bar_timestamp_utc >= $1 "
                f"AND bar_timestamp_utc < $2 AND instrument_id IN ({ph}) ORDER BY bar_timestamp_utc, instrument_id")
    wide = []
    for _ in range(reads):
        t0 = time.perf_counter()
        with st.session():
            rows = st.query(wide_sql, [s, e, *ids])
        wide.append((time.perf_counter() - t0) * 1e3)
    wide_med = statistics.median(wide)
    for adjust, ts in times.items():
        med = statistics.median(ts)
        print(f"  read_continuous adjust={adjust:<10}: median {med:6.1f} ms  best {min(ts):6.1f} ms  "
              f"({med / raw_med:.2f}x (a))")
    print(f"  (a) series' bars, raw SQL      : median {raw_med:6.1f} ms  best {min(raw):6.1f} ms")
    print(f"  (b) chain's bars, raw SQL      : median {wide_med:6.1f} ms  best {min(wide):6.1f} ms  "
          f"({rows.height:,} rows)")
    med = statistics.median(times["difference"])
    result(f"continuous_read_{label}", round(med, 1), "ms", f"< {TARGET_MS:.0f} ms", med < TARGET_MS,
           f"10 y CL daily, {df.height} rows, {rolls} rolls; raw SQL (a) {raw_med:.1f} ms, (b) {wide_med:.1f} ms; "
           f"load {load_average()}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reads", type=int, default=15)
    ap.add_argument("--timescale")
    ap.add_argument("--no-timescale", action="store_true")
    ap.add_argument("--no-duckdb", action="store_true")
    ap.add_argument("--keep", type=Path, help="keep the DuckDB store here (reused when it exists)")
    ap.add_argument("--timescale-schema", help="measure an already filled TimescaleDB schema (kept)")
    a = ap.parse_args()
    print(f"load average {load_average()}")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if not a.no_duckdb:
            path = (a.keep or work) / "continuous.duckdb"
            url = f"duckdb://{path}"
            if not path.exists():
                (a.keep or work).mkdir(parents=True, exist_ok=True)
                print(f"[duckdb] filled 10 years of CL contracts in {fill(url, work):.0f} s")
            measure("duckdb", url, a.reads)
        ts = None if a.no_timescale else timescale_url(a.timescale)
        if ts and a.timescale_schema:
            from _common import schema_url

            measure("timescale", schema_url(ts, a.timescale_schema), a.reads)
        elif ts:
            with fresh_schema(ts) as (url, _):
                print(f"[timescale] filled 10 years of CL contracts in {fill(url, work):.0f} s")
                measure("timescale", url, a.reads)


if __name__ == "__main__":
    main()
