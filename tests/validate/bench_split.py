"""Measure split() on recipe-like frames: 1M ohlcv rows (1,000 bad; none; shuffled) and 2M trades rows.

Run: ``.venv/bin/python tests/validate/bench_split.py [RUNS]``. Prints the best of RUNS (default 3,
perf_counter) and the counts, which it also checks. Not collected by pytest (no ``test_`` prefix).
"""

from __future__ import annotations

import sys
import time
from decimal import Decimal

import numpy as np
import polars as pl

from hdi.validate.split import split

BASE_NS = 1_704_153_600_000_000_000  # 2024-01-02T00:00:00Z
SCALE = pl.lit(Decimal("1e-9"), dtype=pl.Decimal(10, 9))


def _price(name: str) -> pl.Expr:
    """Fixed-point int64 (1e-9) -> exact Decimal(19,9), as a recipe does."""
    return (pl.col(name).cast(pl.Decimal(38, 0)) * SCALE).cast(pl.Decimal(19, 9))


def _ts(ns: np.ndarray) -> pl.Series:
    return pl.Series(ns, dtype=pl.Int64).cast(pl.Datetime("ns")).dt.replace_time_zone("UTC")


def ohlcv_frame(n: int, n_bad: int, instruments: int = 20) -> pl.DataFrame:
    rng = np.random.default_rng(0)
    open_ = rng.integers(50_000_000_000, 60_000_000_000, n)
    close = open_ + rng.integers(-1_000_000_000, 1_000_000_000, n)
    high = np.maximum(open_, close) + 250_000_000
    low = np.minimum(open_, close) - 250_000_000
    volume = rng.integers(0, 10_000, n).astype(np.uint64)
    bad = rng.choice(n, n_bad, replace=False)
    high[bad[: n_bad // 2]] = low[bad[: n_bad // 2]] - 1  # high below low
    volume[bad[n_bad // 2:]] = np.uint64(2**63)  # does not fit Int64
    minute = 60 * 10**9
    return pl.DataFrame({
        "dataset": ["GLBX.MDP3"] * n,
        "instrument_id": pl.Series(np.arange(n) % instruments, dtype=pl.UInt32),
        "granularity": ["1m"] * n,
        "bar_timestamp_utc": _ts(BASE_NS + (np.arange(n) // instruments) * minute),
        "open_price": open_, "high_price": high, "low_price": low, "close_price": close,
        "volume": pl.Series(volume, dtype=pl.UInt64),
        "trade_count": pl.Series([None] * n, dtype=pl.Int32),
        "vwap": pl.Series([None] * n, dtype=pl.Decimal(19, 9)),
        "data_source": ["databento"] * n,
    }).with_columns(_price(c) for c in ("open_price", "high_price", "low_price", "close_price"))


def trades_frame(n: int, n_bad: int) -> pl.DataFrame:
    rng = np.random.default_rng(1)
    recv = BASE_NS + np.cumsum(rng.integers(0, 50_000, n))  # sorted, some equal neighbours
    event = recv - rng.integers(1_000, 20_000, n)
    price = rng.integers(4_000_000_000_000, 4_100_000_000_000, n) // 250_000_000 * 250_000_000
    size = rng.integers(1, 50, n).astype(np.uint32)
    size[rng.choice(n, n_bad, replace=False)] = 0  # size <= 0
    side = pl.Series(rng.integers(0, 3, n)).replace_strict({0: "buy", 1: "sell", 2: None}, return_dtype=pl.String)
    return pl.DataFrame({
        "dataset": ["GLBX.MDP3"] * n,
        "instrument_id": pl.Series(rng.integers(1, 30, n), dtype=pl.UInt32),
        "trade_timestamp_utc": _ts(event),
        "received_timestamp_utc": _ts(recv),
        "ts_event_ns": event, "ts_recv_ns": recv,
        "price": price,
        "size": pl.Series(size, dtype=pl.UInt32),
        "aggressor_side": side,
        "sequence": pl.Series(np.arange(n), dtype=pl.UInt32),
        "ts_in_delta": pl.Series(rng.integers(0, 20_000, n), dtype=pl.Int32),
        "flags": pl.Series([128] * n, dtype=pl.UInt8),
        "publisher_id": pl.Series([1] * n, dtype=pl.UInt16),
        "rec_ordinal": pl.Series([0] * n, dtype=pl.Int32),
        "data_source": ["databento"] * n,
    }).with_columns(_price("price"))


RUNS = int(sys.argv[1]) if len(sys.argv) > 1 else 3


def best_of(frame: pl.DataFrame, table: str) -> tuple[float, float, object]:
    """Best wall time (perf_counter) and best CPU time (process_time, which other processes on a
    shared machine disturb less) of RUNS splits, and the last result."""
    split(frame.head(1_000), table)  # warm-up: builds the Patito model once per process
    best, best_cpu, result = float("inf"), float("inf"), None
    for _ in range(RUNS):
        start, cpu = time.perf_counter(), time.process_time()
        result = split(frame, table)
        best = min(best, time.perf_counter() - start)
        best_cpu = min(best_cpu, time.process_time() - cpu)
    return best, best_cpu, result


def _report(label: str, rows: int, wall: float, cpu: float) -> None:
    per_m = 1_000_000 / rows
    print(f"{label}: best of {RUNS} {wall * 1000:.1f} ms wall ({wall * 1000 * per_m:.1f} ms per 1M rows), "
          f"CPU {cpu * 1000:.1f} ms")


def main() -> None:
    bars = ohlcv_frame(1_000_000, 1_000)
    wall, cpu, r = best_of(bars, "ohlcv")
    assert (r.rows_good, r.rows_bad) == (999_000, 1_000), (r.rows_good, r.rows_bad)
    assert r.reasons == {"high_price<max(open,close,low)": 500, "volume:does_not_fit_Int64": 500}, r.reasons
    _report("ohlcv  1,000,000 rows, 1,000 bad", 1_000_000, wall, cpu)

    wall, cpu, r = best_of(ohlcv_frame(1_000_000, 0), "ohlcv")
    assert r.rows_bad == 0, r.reasons
    _report("ohlcv  1,000,000 rows, 0 bad    ", 1_000_000, wall, cpu)

    shuffled = bars.sample(fraction=1.0, shuffle=True, seed=7)  # no order to exploit: every key hashed
    wall, cpu, r = best_of(shuffled, "ohlcv")
    assert r.rows_bad == 1_000, r.rows_bad
    _report("ohlcv  1,000,000 rows, 1,000 bad, shuffled", 1_000_000, wall, cpu)

    wall, cpu, r = best_of(trades_frame(2_000_000, 2_000), "trades")
    assert r.rows_bad == 2_000 and r.reasons == {"size<=0": 2_000}, r.reasons
    _report("trades 2,000,000 rows, 2,000 bad", 2_000_000, wall, cpu)


if __name__ == "__main__":
    main()
