"""Deterministic prices: a daily level path per root and a one-minute model per instrument-day.

Randomness is seeded from (path or dataset, instrument, date) only, never from a request, so any
window of any request sees the same market. The minute model decides, for every trading minute,
how many trades happen and the minute's open/high/low/close/volume; trades are later drawn to
match it exactly, so 1s, 1m, 1h and 1d bars and the trades all agree with each other.
"""

from __future__ import annotations

import functools
import math
import zlib
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

from hdi.testing import market

_EPOCH = date(2009, 1, 1)
_DAYS = 12_000  # the level path covers 2009-01-01 .. 2041
_REVERSION = 0.02  # daily mean reversion of the log level towards log(base)


def rng(*parts: object) -> np.random.Generator:
    """A generator seeded from stable parts (crc32 of their text; never Python's salted hash)."""
    return np.random.default_rng([zlib.crc32(str(p).encode()) for p in parts])


@functools.lru_cache(maxsize=64)
def _level_path(path_key: str, base: float, vol: float) -> np.ndarray:
    """Log price level at UTC midnight of each day since ``_EPOCH`` (mean-reverting random walk)."""
    eps = rng("level", path_key).standard_normal(_DAYS)
    mu = math.log(base)
    x = np.empty(_DAYS + 1)
    x[0] = mu
    for i in range(_DAYS):
        x[i + 1] = x[i] + _REVERSION * (mu - x[i]) + vol * eps[i]
    return x


def _root_base(inst: market.Instrument) -> float:
    if inst.contract is not None:
        return inst.contract.product.base
    assert inst.equity is not None
    return inst.equity.base


def level(inst: market.Instrument, d: date) -> float:
    """The instrument's price at UTC midnight of ``d`` (root level times calendar carry)."""
    i = (d - _EPOCH).days
    if not 0 <= i <= _DAYS:
        raise ValueError(f"date {d} outside the synthetic market ({_EPOCH} + {_DAYS} days)")
    return math.exp(_level_path(inst.path_key, _root_base(inst), inst.vol)[i]) * inst.base_price(d)


@dataclass(frozen=True)
class Minutes:
    """Traded minutes of one instrument-day: minute-of-day, trade count and OHLCV (prices in ticks)."""

    minute: np.ndarray
    n: np.ndarray
    o: np.ndarray
    h: np.ndarray
    low: np.ndarray
    c: np.ndarray
    v: np.ndarray


def _weights(kind: str, mins: np.ndarray) -> np.ndarray:
    """Relative trade intensity of each minute-of-day."""
    if kind == "equities":  # busier at the open and the close
        return 1.0 + 2.0 * np.exp(-(mins - 870) / 25.0) + 2.0 * np.exp(-(1259 - mins) / 25.0)
    w = np.full(len(mins), 0.3)
    w[(mins >= 420) & (mins < 780)] = 0.6  # Europe
    w[(mins >= 780) & (mins < 1200)] = 1.4  # US day session
    return w


def _minutes_of(ranges: tuple[range, ...]) -> np.ndarray:
    return np.concatenate([np.arange(r.start, r.stop) for r in ranges])


# weight of a full Monday-Thursday (futures) or weekday (equities) session: a short session such as
# Sunday's single hour gets its share of a day's trades, not a whole day's worth
_FULL_DAY = {kind: float(_weights(kind, _minutes_of(market.session_minutes(kind, date(2024, 1, 2)))).sum())
             for kind in ("futures", "equities")}


@functools.lru_cache(maxsize=64)
def _session_shape(kind: str, ranges: tuple[range, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Trading minutes of a session, their share of a full day's trades, and bridge fractions."""
    mins = _minutes_of(ranges)
    shape = _weights(kind, mins) / _FULL_DAY[kind]
    frac = np.linspace(0.0, 1.0, len(mins) + 1)
    for a in (mins, shape, frac):
        a.flags.writeable = False
    return mins, shape, frac


@functools.lru_cache(maxsize=256)
def minutes(dataset: str, instrument_id: int, d: date, skip: frozenset[date] = frozenset()) -> Minutes | None:
    """The minute model of one instrument on one UTC date, or None when it does not trade: only minutes
    inside its exchange calendar's sessions (``market.session_minutes``), none of the sessions whose
    trading date is in ``skip`` (a planted no-trade day)."""
    inst = market.instrument(dataset, instrument_id)
    if inst is None:
        return None
    expected = inst.trades_on(d)
    root = inst.contract.product.root if inst.contract is not None else None
    ranges = market.session_minutes(inst.dataset.kind, d, root, skip)
    if expected <= 0 or not ranges:
        return None
    mins, shape, frac = _session_shape(inst.dataset.kind, tuple(ranges))
    if inst.contract is not None and d == inst.contract.expiry:
        live = mins * market.MINUTE_NS < inst.contract.expiration_ns - market.ns(d)
        mins, shape = mins[live], shape[live]
        frac = np.linspace(0.0, 1.0, len(mins) + 1)
    m = len(mins)
    g = rng("minutes", dataset, instrument_id, d.toordinal())
    z = g.standard_normal((4, m), dtype=np.float32)  # trade counts, path steps, high and low extensions
    lam = shape * expected
    n = np.maximum(np.rint(lam + np.sqrt(lam) * z[0]), 0).astype(np.int64)  # ~Poisson, cheaper
    tick = inst.tick / market.PRICE_SCALE
    p0, p1 = math.log(level(inst, d)), math.log(level(inst, d + timedelta(days=1)))
    walk = np.empty(m + 1)
    walk[0] = 0.0
    np.cumsum(z[1] * (inst.vol * 0.8 / math.sqrt(m)), out=walk[1:])
    ticks = np.maximum(np.rint(np.exp(p0 + (p1 - p0 - walk[-1]) * frac + walk) / tick), 2).astype(np.int64)
    sd_ticks = max(0.5, level(inst, d) * inst.vol / math.sqrt(m) / tick * 0.5)
    ext = np.rint(np.abs(z[2:]) * sd_ticks).astype(np.int64)
    ext_h, ext_l = ext[0], ext[1]
    extra_vol = (n * (inst.avg_size - 1.0) * 2.0 * g.random(m)).astype(np.int64)
    keep = n > 0
    if not keep.any():
        return None
    n, o, c = n[keep], ticks[:-1][keep], ticks[1:][keep]
    ext_h, ext_l, extra_vol = ext_h[keep], ext_l[keep], extra_vol[keep]
    c = np.where(n == 1, o, c)
    h = np.maximum(o, c) + np.where(n >= 3, ext_h, 0)
    low = np.maximum(np.minimum(o, c) - np.where(n >= 4, ext_l, 0), 1)
    return Minutes(mins[keep].astype(np.int64), n.astype(np.int64), o, h, low, c, n + extra_vol)


@functools.lru_cache(maxsize=200_000)
def daily(dataset: str, instrument_id: int, d: date,
          skip: frozenset[date] = frozenset()) -> tuple[int, int, int, int, int] | None:
    """(open, high, low, close, volume) of the UTC day, prices in ticks; None without trades."""
    mm = minutes(dataset, instrument_id, d, skip)
    if mm is None:
        return None
    return int(mm.o[0]), int(mm.h.max()), int(mm.low.min()), int(mm.c[-1]), int(mm.v.sum())


def hourly(mm: Minutes) -> tuple[np.ndarray, ...]:
    """Aggregate a minute model to hours: (hour, open, high, low, close, volume)."""
    hour = mm.minute // 60
    starts = np.concatenate(([0], np.flatnonzero(np.diff(hour)) + 1))
    ends = np.concatenate((starts[1:], [len(hour)])) - 1
    return (hour[starts], mm.o[starts], np.maximum.reduceat(mm.h, starts), np.minimum.reduceat(mm.low, starts),
            mm.c[ends], np.add.reduceat(mm.v, starts))
