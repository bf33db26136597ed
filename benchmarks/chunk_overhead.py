"""What holding the DuckDB file per chunk costs an ingest (issue 14).

An ingest attaches the DuckDB file read-write for each chunk's transaction and detaches it after
(the detach checkpoints), so that other processes can read between chunks; between chunks that
follow closely the file stays attached (``duckdb_share.LINGER``) unless another process waits.
This script writes the same chunks (bars + the chunk's ledger row, one transaction each) into a
fresh store three ways, interleaved: detached after every chunk (``LINGER = 0``: what an ingest
pays while readers keep waiting), as an ingest does by default (lingering), and inside one
``store.session(write=True)`` that keeps the file attached across all chunks (the baseline: holding
the file for the whole run). Optionally the store first holds ``--base`` rows.

Also measured: one ``read_bars`` call (1 month of daily bars, 1 symbol) with the attach it does.

Usage: python benchmarks/chunk_overhead.py [--chunks N] [--sizes 100,10000,200000] [--base ROWS] [--repeat K]
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import load_average  # noqa: E402
from _common import result as report_result  # noqa: E402
from store_bench import bars  # noqa: E402

from hdi.store import close_all, open_store  # noqa: E402
from hdi.store import duckdb_share as share  # noqa: E402
from hdi.store.ledger import ChunkRecord  # noqa: E402

DEFAULT_LINGER = share.LINGER


def chunk_frames(n_chunks: int, size: int) -> list[pl.DataFrame]:
    whole = bars(n_chunks * size, instruments=10)
    per = whole.height // n_chunks
    return [whole.slice(i * per, per) for i in range(n_chunks)]


MODES = ("per chunk", "lingering", "held")


def run(url: str, frames: list[pl.DataFrame], mode: str) -> float:
    share.LINGER = 0.0 if mode == "per chunk" else DEFAULT_LINGER
    st = open_store(url)
    t0 = time.perf_counter()
    with st.session(write=True) if mode == "held" else nullcontext():
        for i, f in enumerate(frames):
            lo = f["bar_timestamp_utc"].min()
            rec = ChunkRecord(chunk_id=f"c{i}", run_id="bench", recipe="bench", recipe_hash="h", dataset="GLBX.MDP3",
                              schema="ohlcv-1m", stype_in="raw_symbol", symbols="X", start_ts=lo, end_ts=lo,
                              target_table="ohlcv")
            with st.transaction(chunk=rec) as txn:
                txn.write("ohlcv", f)
        share.close()  # the run's end detaches (and checkpoints) in every mode
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chunks", type=int, default=30)
    ap.add_argument("--sizes", default="100,10000,200000")
    ap.add_argument("--base", type=int, default=0, help="rows stored before the chunks (default 0)")
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    print(f"load average {load_average()}; {a.chunks} chunks per run, base {a.base:,} rows")
    with tempfile.TemporaryDirectory() as tmp:
        for size in (int(s) for s in a.sizes.split(",")):
            frames = chunk_frames(a.chunks, size)
            times: dict[str, list[float]] = {m: [] for m in MODES}
            for k in range(a.repeat):
                for mode in MODES:
                    url = f"duckdb://{tmp}/s-{size}-{k}-{mode.replace(' ', '_')}.duckdb"
                    if a.base:
                        base = bars(a.base, instruments=10).with_columns(pl.col("instrument_id") + 100_000)
                        open_store(url).write("ohlcv", base)
                    times[mode].append(run(url, frames, mode))
                    close_all()
            med = {m: statistics.median(times[m]) for m in MODES}
            rows = a.chunks * frames[0].height
            print(f"chunks of {frames[0].height:>7,} rows: " + ", ".join(
                f"{m} {med[m]:6.3f} s ({rows / med[m]:>9,.0f} rows/s)" for m in MODES))
            for m in MODES[:2]:
                extra_ms = (med[m] - med["held"]) / a.chunks * 1000
                print(f"    {m}: {extra_ms:+.1f} ms per chunk, throughput x{med['held'] / med[m]:.2f} of held")
                report_result(f"DuckDB {m}, {frames[0].height:,}-row chunks (base {a.base:,})", round(extra_ms, 2),
                              "ms/chunk", "report", None, f"throughput {med['held'] / med[m]:.2f}x of holding the file")
        url = f"duckdb://{tmp}/read.duckdb"
        st = open_store(url)
        st.write("ohlcv", bars(31 * 20, instruments=20, minutes=False))
        st.write_symbology(pl.DataFrame({"dataset": ["GLBX.MDP3"], "stype_in": ["raw_symbol"], "symbol": ["X"],
                                         "instrument_id": [1000], "start_date": [dt.date(2024, 1, 1)],
                                         "end_date": [dt.date(2024, 2, 1)], "source": ["bench"]}))
        import hdi

        def read() -> None:
            hdi.read_bars("X", "2024-01-01", "2024-02-01", store=url)

        for held in (False, True):
            with st.session() if held else nullcontext():
                read()
                ts = []
                for _ in range(100):
                    t0 = time.perf_counter()
                    read()
                    ts.append(time.perf_counter() - t0)
            print(f"read_bars 1 month x 1 symbol, {'file held (old behaviour)' if held else 'attach per call'}: "
                  f"median {statistics.median(ts) * 1000:.2f} ms")
        close_all()


if __name__ == "__main__":
    main()
