"""Small DBN files of hand-written records (daily and 1m bars, statistics), for tests of ``--from-file``,
quarantine replay and trading-day bars."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import NamedTuple, SupportsBytes

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


class MinuteBar(NamedTuple):
    """One 1m bar: ``ts`` its start (ISO-8601 UTC, e.g. ``"2024-03-10T22:00"``), prices as decimal text."""

    ts: str
    symbol: str
    open: str
    high: str
    low: str
    close: str
    volume: int = 10


class Stat(NamedTuple):
    """One statistics record: ``ts_recv`` when it became known and ``ref`` the trading date (ISO-8601 UTC);
    ``price`` decimal text (None: undefined), ``quantity`` (None: undefined)."""

    ts_recv: str
    symbol: str
    stat_type: int
    ref: str
    price: str | None = None
    quantity: int | None = None
    flags: int = 0
    update_action: int = 1
    sequence: int = 0


def _ts_ns(text: str) -> int:
    t = dt.datetime.fromisoformat(text)
    t = t.replace(tzinfo=dt.UTC) if t.tzinfo is None else t.astimezone(dt.UTC)
    return (t - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(microseconds=1) * 1000


def _write(path: Path, schema: str, records: Sequence[SupportsBytes], ids: dict[str, int], dataset: str, d0: dt.date, d1: dt.date,
           stype_in: str) -> Path:
    res = Resolution(symbols=list(ids), mappings={s: [(d0, d1, i)] for s, i in ids.items()})
    path.write_bytes(metadata(dataset, schema, stype_in, res, _ns(d0), _ns(d1), 0) + b"".join(bytes(r) for r in records))
    return path


def write_minute_bars(path: Path, bars: Sequence[MinuteBar], *, ids: dict[str, int], dataset: str = "GLBX.MDP3",
                      publisher_id: int = 1, stype_in: str = "raw_symbol") -> Path:
    """Write ``bars`` as an ohlcv-1m DBN v3 file (time order), each symbol of ``ids`` mapped to its id
    from the first bar's UTC day to the day after the last."""
    rows = sorted(bars, key=lambda b: (_ts_ns(b.ts), ids[b.symbol]))
    records = [dbn.OHLCVMsg(dbn.RType.OHLCV_1M, publisher_id, ids[b.symbol], _ts_ns(b.ts), _fixed(b.open),
                            _fixed(b.high), _fixed(b.low), _fixed(b.close), b.volume) for b in rows]
    d0 = dt.datetime.fromisoformat(rows[0].ts).date()
    d1 = dt.datetime.fromisoformat(rows[-1].ts).date() + dt.timedelta(days=1)
    return _write(path, "ohlcv-1m", records, ids, dataset, d0, d1, stype_in)


def write_statistics(path: Path, stats: Sequence[Stat], *, ids: dict[str, int], dataset: str = "GLBX.MDP3",
                     publisher_id: int = 1, stype_in: str = "raw_symbol") -> Path:
    """Write ``stats`` as a statistics DBN v3 file in ``ts_recv`` order (``ts_event`` 1 µs earlier)."""
    rows = sorted(stats, key=lambda s: (_ts_ns(s.ts_recv), s.sequence))
    records = [dbn.StatMsg(publisher_id, ids[s.symbol], _ts_ns(s.ts_recv) - 1000, _ts_ns(s.ts_recv), _ts_ns(s.ref),
                           _fixed(s.price), dbn.UNDEF_STAT_QUANTITY if s.quantity is None else s.quantity,
                           dbn.StatType(s.stat_type), sequence=s.sequence,
                           update_action=dbn.StatUpdateAction(s.update_action), stat_flags=s.flags)
               for s in rows]
    d0 = min(dt.datetime.fromisoformat(s.ts_recv).date() for s in rows) - dt.timedelta(days=1)
    d1 = max(dt.datetime.fromisoformat(s.ts_recv).date() for s in rows) + dt.timedelta(days=1)
    return _write(path, "statistics", records, ids, dataset, d0, d1, stype_in)
