"""Encoding a response: DBN v3 metadata, the records of each UTC day of a window, zstd-compressed in chunks.

Memory stays bounded by one instrument-day of records per requested instrument, whatever the window.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

import databento_dbn as dbn
import numpy as np
import zstandard
from databento_dbn.metadata import MappingInterval

from hdi.testing import market, synth
from hdi.testing.symbology import Resolution

_STREAM_CHUNK = 1 << 16


@dataclass
class _Interval:  # a databento_dbn.metadata.MappingInterval
    start_date: date
    end_date: date
    symbol: str


@dataclass
class _Mapping:  # a databento_dbn.metadata.SymbolMapping
    raw_symbol: str
    intervals: Sequence[MappingInterval]


def metadata(dataset: str, schema: str, stype_in: str, res: Resolution, start_ns: int, end_ns: int,
             limit: int) -> bytes:
    """DBN v3 metadata exactly as a Databento ``get_range`` carries it (mappings end-exclusive UTC dates)."""
    meta = dbn.Metadata(
        dataset=dataset, start=start_ns, end=end_ns, schema=dbn.Schema(schema), stype_in=dbn.SType(stype_in),
        stype_out=dbn.SType("instrument_id"), symbols=list(res.symbols), partial=list(res.partial),
        not_found=list(res.not_found), limit=limit or None,
        mappings=[_Mapping(sym, [_Interval(a, b, str(iid)) for a, b, iid in ivs]) for sym, ivs in res.mappings.items()],
    )
    return bytes(meta.encode())


def days(start_ns: int, end_ns: int) -> list[date]:
    """UTC dates touched by ``[start_ns, end_ns)``."""
    first, last = market.ns_to_date(start_ns), market.ns_to_date(end_ns - 1)
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


# A restatement's edit of one instrument-day (hdi.testing.restate): (date, records) -> records.
Edit = Callable[[date, np.ndarray], np.ndarray]


def _records(dataset: str, schema: str, iid: int, d: date, blocked: frozenset[tuple[int, date]],
             edit: Edit | None) -> np.ndarray | None:
    arr = synth.records(dataset, schema, iid, d, blocked)
    if arr is None or edit is None:
        return arr
    arr = edit(d, arr)
    return arr if len(arr) else None


def record_arrays(dataset: str, schema: str, res: Resolution, start_ns: int, end_ns: int, limit: int,
                  blocked: frozenset[tuple[int, date]], edit: Edit | None = None,
                  edited: frozenset[date] = frozenset()) -> Iterator[np.ndarray]:
    """The records of a request, one array per UTC day, sorted by index time (instrument id breaks ties);
    ``edit`` changes the records of the ``edited`` days (restatements)."""
    index = synth.INDEX[schema]
    left = limit or -1
    for d in days(start_ns, end_ns):
        fix = edit if d in edited else None
        parts = [a for iid in res.ids_on(d) if (a := _records(dataset, schema, iid, d, blocked, fix)) is not None]
        if not parts:
            continue
        arr = parts[0] if len(parts) == 1 else np.concatenate(parts)
        if len(parts) > 1:
            arr = arr[np.argsort(arr[index], kind="stable")]
        lo, hi = np.searchsorted(arr[index], np.array([start_ns, end_ns], dtype=np.uint64), side="left")
        arr = arr[lo:hi]
        if left >= 0:
            arr = arr[:left]
            left -= len(arr)
        if len(arr):
            yield arr
        if left == 0:
            return


def record_count(dataset: str, schema: str, res: Resolution, start_ns: int, end_ns: int, limit: int,
                 blocked: frozenset[tuple[int, date]], edit: Edit | None = None,
                 edited: frozenset[date] = frozenset()) -> int:
    """The number of records ``record_arrays`` yields, computed cheaply for whole days."""
    total = 0
    for d in days(start_ns, end_ns):
        if d in edited:
            total += sum(len(a) for a in record_arrays(dataset, schema, res, max(start_ns, market.ns(d)),
                                                       min(end_ns, market.ns(d) + market.DAY_NS), 0, blocked,
                                                       edit, edited))
        elif start_ns <= market.ns(d) and market.ns(d) + market.DAY_NS <= end_ns:
            total += sum(synth.count(dataset, schema, iid, d, blocked) for iid in res.ids_on(d))
        else:
            total += sum(len(a) for a in record_arrays(dataset, schema, res, max(start_ns, market.ns(d)),
                                                       min(end_ns, market.ns(d) + market.DAY_NS), 0, blocked))
        if limit and total >= limit:
            return limit
    return total


def compressed(meta: bytes, arrays: Iterable[np.ndarray], *, truncate: bool = False) -> Iterator[bytes]:
    """zstd-compressed ``meta + records``; with ``truncate`` the last record is cut in half."""
    cobj = zstandard.ZstdCompressor(level=1).compressobj()

    def raw() -> Iterator[bytes]:
        yield meta
        pending: np.ndarray | None = None
        for arr in arrays:
            if pending is not None:
                yield pending.tobytes()
            pending = arr
        if not truncate:
            if pending is not None:
                yield pending.tobytes()
            return
        if pending is None:
            yield b"\x0e\x00\x00"  # a header fragment: no whole record at all
            return
        yield pending[:-1].tobytes()
        yield pending[-1:].tobytes()[: pending.dtype.itemsize // 2]

    for piece in raw():
        for i in range(0, len(piece), 1 << 22):
            out = cobj.compress(piece[i:i + (1 << 22)])
            for j in range(0, len(out), _STREAM_CHUNK):
                yield out[j:j + _STREAM_CHUNK]
    tail = cobj.flush()
    if tail:
        yield tail
