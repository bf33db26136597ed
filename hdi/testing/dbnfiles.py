"""Small DBN files of hand-written daily bars, for tests of ``--from-file`` and quarantine replay."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import NamedTuple

import databento_dbn as dbn
import zstandard

_SCALE = Decimal(1_000_000_000)


class _Interval(NamedTuple):
    start_date: dt.date
    end_date: dt.date
    symbol: str


class _Mapping(NamedTuple):
    raw_symbol: str
    intervals: list[_Interval]


class Bar(NamedTuple):
    """One daily bar of one symbol: prices as decimal text (e.g. ``"-37.63"``)."""

    day: str  # YYYY-MM-DD (UTC)
    symbol: str
    open: str
    high: str
    low: str
    close: str
    volume: int = 100


def _ns(day: str | dt.date) -> int:
    d = dt.date.fromisoformat(day) if isinstance(day, str) else day
    return int(dt.datetime(d.year, d.month, d.day, tzinfo=dt.UTC).timestamp()) * 1_000_000_000


def _fixed(price: str) -> int:
    return int(Decimal(price) * _SCALE)


def write_daily_bars(path: Path, bars: Sequence[Bar], *, ids: dict[str, int], dataset: str = "XNAS.ITCH",
                     start: str | None = None, end: str | None = None, publisher_id: int = 2,
                     stype_in: str = "raw_symbol", compress: bool = False) -> Path:
    """Write ``bars`` as an ohlcv-1d DBN v3 file (time order), the metadata mapping each symbol of
    ``ids`` to its instrument id over [start, end) (default: the bars' first day to the day after
    their last)."""
    days = sorted(dt.date.fromisoformat(b.day) for b in bars)
    d0 = dt.date.fromisoformat(start) if start else days[0]
    d1 = dt.date.fromisoformat(end) if end else days[-1] + dt.timedelta(days=1)
    meta = dbn.Metadata(
        dataset=dataset, start=_ns(d0), end=_ns(d1), schema=dbn.Schema.OHLCV_1D, stype_in=dbn.SType(stype_in),
        stype_out=dbn.SType.INSTRUMENT_ID, symbols=list(ids), partial=[], not_found=[],
        mappings=[_Mapping(s, [_Interval(d0, d1, str(i))]) for s, i in ids.items()],
    )
    records = [
        dbn.OHLCVMsg(dbn.RType.OHLCV_1D, publisher_id, ids[b.symbol], _ns(b.day), _fixed(b.open), _fixed(b.high),
                     _fixed(b.low), _fixed(b.close), b.volume)
        for b in sorted(bars, key=lambda b: (b.day, ids[b.symbol]))
    ]
    data = bytes(meta.encode()) + b"".join(bytes(r) for r in records)
    path.write_bytes(zstandard.ZstdCompressor().compress(data) if compress else data)
    return path
