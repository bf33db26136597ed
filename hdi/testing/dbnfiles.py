"""Small DBN files of hand-written daily bars, for tests of ``--from-file`` and quarantine replay."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import NamedTuple

import databento_dbn as dbn
import zstandard

from hdi.testing.dbnout import metadata
from hdi.testing.symbology import Resolution

_SCALE = Decimal(1_000_000_000)


class Bar(NamedTuple):
    """One daily bar of one symbol: prices as decimal text (e.g. ``"-37.63"``)."""

    day: str  # YYYY-MM-DD (UTC)
    symbol: str
    open: str | None  # None: DBN's undefined price
    high: str | None
    low: str | None
    close: str | None
    volume: int = 100


def _ns(day: str | dt.date) -> int:
    d = dt.date.fromisoformat(day) if isinstance(day, str) else day
    return int(dt.datetime(d.year, d.month, d.day, tzinfo=dt.UTC).timestamp()) * 1_000_000_000


def _fixed(price: str | None) -> int:
    """Databento's fixed-point price; ``None`` is DBN's undefined-price sentinel."""
    return dbn.UNDEF_PRICE if price is None else int(Decimal(price) * _SCALE)


def write_daily_bars(path: Path, bars: Sequence[Bar], *, ids: dict[str, int], dataset: str = "XNAS.ITCH",
                     start: str | None = None, end: str | None = None, publisher_id: int = 2,
                     stype_in: str = "raw_symbol", compress: bool = False) -> Path:
    """Write ``bars`` as an ohlcv-1d DBN v3 file (time order), the metadata mapping each symbol of
    ``ids`` to its instrument id over [start, end) (default: the bars' first day to the day after
    their last)."""
    days = sorted(dt.date.fromisoformat(b.day) for b in bars)
    d0 = dt.date.fromisoformat(start) if start else days[0]
    d1 = dt.date.fromisoformat(end) if end else days[-1] + dt.timedelta(days=1)
    res = Resolution(symbols=list(ids), mappings={s: [(d0, d1, i)] for s, i in ids.items()})
    meta = metadata(dataset, "ohlcv-1d", stype_in, res, _ns(d0), _ns(d1), 0)
    records = [
        dbn.OHLCVMsg(dbn.RType.OHLCV_1D, publisher_id, ids[b.symbol], _ns(b.day), _fixed(b.open), _fixed(b.high),
                     _fixed(b.low), _fixed(b.close), b.volume)
        for b in sorted(bars, key=lambda b: (b.day, ids[b.symbol]))
    ]
    data = meta + b"".join(bytes(r) for r in records)
    path.write_bytes(zstandard.ZstdCompressor().compress(data) if compress else data)
    return path
