"""Synthetic DBN files for the benchmarks, written with numpy fills (reference/databento.md "Writing DBN").

Not a benchmark. The trades look like a real GLBX.MDP3 ``trades`` download for continuous symbols:
``ts_recv`` increasing, ``ts_event`` a few microseconds earlier, a venue ``sequence`` that increases,
one roll per symbol in the middle of the range (so the metadata mappings have two intervals each),
buy/sell/none aggressor sides, and a share of trades printed in the same packet as the previous one
(same instrument, ``ts_recv`` and ``sequence``: what the ``ordinal`` recipe op numbers). Files are
written piece by piece through a zstd stream, so 20 M trades need ~100 MB here, not 1 GB.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import NamedTuple

import numpy as np

DAY_NS = 86_400 * 10**9
# symbol -> (first instrument id, price in 1e-9 units, tick in 1e-9 units)
FUTURES = {
    "ES.c.0": (500_001, 5_000_000_000_000, 250_000_000),
    "CL.c.0": (100_001, 70_000_000_000, 10_000_000),
    "NG.c.0": (200_001, 3_000_000_000, 1_000_000),
    "HO.c.0": (300_001, 2_300_000_000, 100_000),
    "RB.c.0": (400_001, 2_100_000_000, 100_000),
}


class Interval(NamedTuple):
    start_date: dt.date
    end_date: dt.date
    symbol: str


class Mapping(NamedTuple):
    raw_symbol: str
    intervals: list[Interval]


def ns(day: dt.date) -> int:
    """Nanoseconds since the epoch of a UTC midnight."""
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp()) * 10**9


def write_trades(path: Path, n: int, *, symbols: tuple[str, ...] = ("ES.c.0", "CL.c.0", "NG.c.0"),
                 start: dt.date = dt.date(2025, 3, 3), days: int = 4, same_packet: float = 0.03,
                 seed: int = 1, piece: int = 1_000_000, level: int = 3) -> int:
    """Write ``n`` trades to ``path`` (``.dbn.zst``); return the file size in bytes."""
    import databento_dbn as dbn
    import zstandard

    end = start + dt.timedelta(days=days)
    roll = start + dt.timedelta(days=max(1, days // 2))
    ids = np.array([FUTURES[s][0] for s in symbols], dtype=np.uint32)
    px = np.array([FUTURES[s][1] for s in symbols], dtype=np.int64)
    tick = np.array([FUTURES[s][2] for s in symbols], dtype=np.int64)
    meta = dbn.Metadata(
        dataset="GLBX.MDP3", start=ns(start), end=ns(end), schema=dbn.Schema.TRADES,
        stype_in=dbn.SType.CONTINUOUS, stype_out=dbn.SType.INSTRUMENT_ID, symbols=list(symbols), partial=[],
        not_found=[], mappings=[Mapping(s, [Interval(start, roll, str(i)), Interval(roll, end, str(i + 1))])
                                for s, i in zip(symbols, ids.tolist(), strict=True)],
    )
    rng = np.random.default_rng(seed)
    span = ns(end) - ns(start)
    pieces = max(1, -(-n // piece))
    seq0 = 1_000_000
    with open(path, "wb") as fh, zstandard.ZstdCompressor(level=level).stream_writer(fh) as out:
        out.write(meta.encode())
        for p in range(pieces):
            k = min(piece, n - p * piece)
            lo = ns(start) + span * p // pieces
            hi = ns(start) + span * (p + 1) // pieces
            arr = np.zeros(k, dtype=dbn.TradeMsg._dtypes)
            arr["length"], arr["rtype"], arr["publisher_id"] = arr.dtype.itemsize // 4, 0, 1
            ts = np.sort(rng.integers(lo, hi, k, dtype=np.int64))
            sym = rng.integers(0, len(symbols), k)
            seq = seq0 + np.arange(k, dtype=np.int64)
            # a trade printed in the same packet as the one before: same instrument, ts_recv, sequence
            copy = rng.random(k) < same_packet
            copy[0] = False
            src = np.maximum.accumulate(np.where(copy, 0, np.arange(k)))
            ts, sym, seq = ts[src], sym[src], seq[src]
            seq0 += k
            delay = rng.integers(2_000, 40_000, k)[src]
            arr["instrument_id"] = ids[sym] + (ts >= ns(roll))
            arr["ts_recv"] = ts
            arr["ts_event"] = ts - delay
            arr["ts_in_delta"] = delay // 4
            arr["sequence"] = seq
            arr["price"] = px[sym] + rng.integers(-200, 200, k) * tick[sym]
            arr["size"] = rng.integers(1, 25, k)
            arr["action"] = b"T"
            arr["side"] = np.choose(rng.integers(0, 100, k) // 49, [b"A", b"B", b"N"])
            arr["flags"] = np.where(copy, 0, 128)
            out.write(arr.tobytes())
    return path.stat().st_size


def write_ohlcv_1d(path: Path, *, symbols: tuple[str, ...] = ("CL.c.0", "NG.c.0", "HO.c.0", "RB.c.0", "ES.c.0"),
                   start: dt.date = dt.date(2024, 1, 1), days: int = 366, seed: int = 2) -> int:
    """Daily bars (weekdays) for continuous symbols, one instrument per symbol; return the file size."""
    import databento_dbn as dbn
    import zstandard

    end = start + dt.timedelta(days=days)
    day = np.arange(days)
    weekdays = day[[(start + dt.timedelta(days=int(d))).weekday() < 5 for d in day]]
    ids = np.array([FUTURES[s][0] for s in symbols], dtype=np.uint32)
    k = len(weekdays) * len(symbols)
    rng = np.random.default_rng(seed)
    arr = np.zeros(k, dtype=dbn.OHLCVMsg._dtypes)
    arr["length"], arr["rtype"], arr["publisher_id"] = arr.dtype.itemsize // 4, 35, 1
    arr["ts_event"] = np.repeat(ns(start) + weekdays.astype(np.int64) * DAY_NS, len(symbols))
    arr["instrument_id"] = np.tile(ids, len(weekdays))
    base = np.tile(np.array([FUTURES[s][1] for s in symbols], dtype=np.int64), len(weekdays))
    arr["open"] = base + rng.integers(-10**9, 10**9, k)
    arr["close"] = base + rng.integers(-10**9, 10**9, k)
    arr["high"] = np.maximum(arr["open"], arr["close"]) + 500_000_000
    arr["low"] = np.minimum(arr["open"], arr["close"]) - 500_000_000
    arr["volume"] = rng.integers(1_000, 500_000, k)
    meta = dbn.Metadata(
        dataset="GLBX.MDP3", start=ns(start), end=ns(end), schema=dbn.Schema.OHLCV_1D,
        stype_in=dbn.SType.CONTINUOUS, stype_out=dbn.SType.INSTRUMENT_ID, symbols=list(symbols), partial=[],
        not_found=[], mappings=[Mapping(s, [Interval(start, end, str(i))]) for s, i in zip(symbols, ids.tolist(),
                                                                                            strict=True)],
    )
    path.write_bytes(zstandard.ZstdCompressor(level=3).compress(meta.encode() + arr.tobytes()))
    return path.stat().st_size
