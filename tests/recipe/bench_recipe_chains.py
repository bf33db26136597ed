"""Time the compiled recipe chains on 2M-row frames (not collected by pytest).

Run: .venv/bin/python tests/recipe/bench_recipe_chains.py
Prints best-of-3 wall time (time.perf_counter) of ``compiled.fn(frame.lazy()).collect()``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))

from conftest import contract_schema as input_schema  # noqa: E402

from hdi.recipe import compile_recipe, load_recipe  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
N = 2_000_000


def bars_frame(n: int = N, instruments: int = 20) -> pl.DataFrame:
    """n 1-minute bars: `instruments` ids, each with bars on ~91% of its minutes, stream order by time."""
    rng = np.random.default_rng(7)
    per = n // instruments
    minutes = np.sort(rng.choice(per * 11 // 10, per, replace=False))
    ts = np.tile(1_704_067_200_000_000_000 + minutes * 60_000_000_000, instruments)
    inst = np.repeat(np.arange(1, instruments + 1, dtype=np.uint32), per)
    px = rng.integers(50_000_000_000, 80_000_000_000, n)
    df = pl.DataFrame({
        "rtype": np.full(n, 33, np.uint8), "publisher_id": np.ones(n, np.uint16), "instrument_id": inst,
        "ts_event": ts, "open": px, "high": px + 250_000_000, "low": px - 250_000_000, "close": px + 10_000_000,
        "volume": rng.integers(1, 500, n).astype(np.uint64), "symbol": "CL.c.0", "dataset": "GLBX.MDP3",
    }).with_columns(pl.col("ts_event").cast(pl.Datetime("ns", "UTC")))
    return df.sort("ts_event", maintain_order=True).select(list(input_schema("ohlcv-1m")))


def trades_frame(n: int = N) -> pl.DataFrame:
    """n trades in packets of 1-5 records sharing ts_recv and sequence (about 30% share a key)."""
    rng = np.random.default_rng(11)
    sizes = rng.choice([1, 1, 1, 1, 2, 3, 5], size=n)
    packet = np.repeat(np.arange(len(sizes)), sizes)[:n]
    ts_recv = 1_733_011_200_000_000_000 + packet.astype(np.int64) * 25_000
    df = pl.DataFrame({
        "rtype": np.zeros(n, np.uint8), "publisher_id": np.ones(n, np.uint16),
        "instrument_id": rng.integers(1, 6, n).astype(np.uint32), "ts_event": ts_recv - 5_000,
        "price": rng.integers(60_000_000_000, 70_000_000_000, n), "size": rng.integers(1, 50, n).astype(np.uint32),
        "action": "T", "side": rng.choice(["A", "B", "N"], n), "flags": np.zeros(n, np.uint8),
        "depth": np.zeros(n, np.uint8), "ts_recv": ts_recv, "ts_in_delta": np.full(n, 18_000, np.int32),
        "sequence": packet.astype(np.uint32), "symbol": "CL.c.0", "dataset": "GLBX.MDP3",
    }).with_columns(pl.col("ts_event", "ts_recv").cast(pl.Datetime("ns", "UTC")))
    return df.select(list(input_schema("trades")))


def best_of_3(fn) -> tuple[float, pl.DataFrame]:
    best, out = float("inf"), None
    for _ in range(3):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def main() -> None:
    frames = {"ohlcv-1m": bars_frame(), "trades": trades_frame()}
    for name in ("ohlcv_1m", "ohlcv_5m", "ohlcv_15m", "trades"):
        recipe = load_recipe(ROOT / "recipes" / f"{name}.yaml")
        frame = frames[recipe.source.schema]
        compiled = compile_recipe(recipe, dict(frame.schema))
        secs, out = best_of_3(lambda c=compiled, f=frame: c.fn(f.lazy()).collect())
        print(f"{name:10s} {frame.height:>9,d} rows in -> {out.height:>9,d} rows out: {secs * 1000:7.0f} ms "
              f"({frame.height / secs / 1e6:.1f} M rows/s)")


if __name__ == "__main__":
    main()
