"""Requested symbols for DBN records, vectorised, from the metadata's symbol mappings.

The DBN metadata maps each symbol as requested (``CL.c.0``, ``ESH1``, ``ES.FUT``) to instrument
ids over UTC date intervals ``[start_date, end_date)``. A record gets the symbol whose interval
covers the UTC date of its ``ts_recv`` (``ts_event`` when the schema has no ``ts_recv``), the rule
``DBNStore.to_df(map_symbols=True)`` uses. Across a roll of ``CL.c.0`` from id A to id B on day d1,
A's records before d1 and B's from d1 get ``CL.c.0`` and A's records on d1 get null.

When two requested symbols cover the same instrument on the same day (``ES.FUT`` and ``ESH1`` in
one request), the interval that started last wins, and on a tie the symbol requested first (the
order of ``metadata.symbols``). ``to_df`` breaks such ties by the order of a hash map, and lets an
interval that has ended hide another that still covers the day; hdi does neither.

Mapping gives each record a symbol number, block by block of 16 Ki records: a block on one UTC day
(nearly every block of a historical file) is a subtraction and a gather from that day's table of
instrument ids; any other block is one ``searchsorted`` of its (instrument id, day) keys over the
bounds of the sorted, disjoint intervals. The numbers then gather the names as Arrow string views
(16 bytes a row, taken by Polars without a copy): no joins, no sorting of records, no Python per
record.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

if TYPE_CHECKING:
    import pyarrow as pa

    from hdi.source.files import DbnMetadata, SymbolInterval

NS_PER_DAY = 86_400_000_000_000
_MAP_BLOCK = 16_384  # records per block in SymbolMapper.numbers
_DAY_TABLE_MAX = 1 << 20  # the widest span of instrument ids a day's lookup table covers
_UNDEF_DAY = (2**64 - 1) // NS_PER_DAY  # the UTC day of UNDEF_TIMESTAMP
_EPOCH = date(1970, 1, 1)

SYMBOLOGY_SCHEMA: dict[str, pl.DataType] = {
    "dataset": pl.String(), "stype_in": pl.String(), "symbol": pl.String(), "instrument_id": pl.Int64(),
    "start_date": pl.Date(), "end_date": pl.Date(), "source": pl.String(),
}


def _day(d: date) -> int:
    return (d - _EPOCH).days


def _disjoint(intervals: Sequence[SymbolInterval]) -> list[tuple[int, int, int, str]]:
    """(instrument_id, start_day, end_day, symbol) segments, disjoint per instrument, sorted."""
    rows = [(iv.instrument_id, max(_day(iv.start_date), 0), _day(iv.end_date), order, iv.symbol)
            for order, iv in enumerate(intervals) if iv.end_date > max(iv.start_date, _EPOCH)]
    rows.sort()
    if not rows:
        return []
    iid = np.array([r[0] for r in rows], dtype=np.uint64)
    start = np.array([r[1] for r in rows], dtype=np.uint64)
    end = np.array([r[2] for r in rows], dtype=np.uint64)
    shift = np.uint64(32)
    reach = np.maximum.accumulate((iid << shift) | end)  # furthest end so far, per instrument
    overlap = ((iid[1:] << shift) | start[1:]) < reach[:-1]
    if not overlap.any():
        return [(r[0], r[1], r[2], r[4]) for r in rows]
    clash = set(iid[1:][overlap].tolist())
    out = [(r[0], r[1], r[2], r[4]) for r in rows if r[0] not in clash]
    groups: dict[int, list[tuple[int, int, int, int, str]]] = {}
    for r in rows:
        if r[0] in clash:
            groups.setdefault(r[0], []).append(r)
    for inst, group in groups.items():
        cuts = sorted({r[1] for r in group} | {r[2] for r in group})
        for lo, hi in zip(cuts, cuts[1:], strict=False):
            covering = [r for r in group if r[1] <= lo < r[2]]
            if covering:
                best = max(covering, key=lambda r: (r[1], -r[3]))
                out.append((inst, lo, hi, best[4]))
    out.sort()
    return out


class SymbolMapper:
    """Maps (instrument_id, timestamp) arrays to the requested symbol, per the file's metadata.

    Each disjoint segment contributes two sorted bounds, ``(id << 32) | start_day`` and
    ``(id << 32) | end_day``; a record's key ``(id << 32) | day`` falls inside a segment exactly when
    ``searchsorted(bounds, key, "right")`` is odd, and that position indexes a lookup table of
    symbol numbers. Segment ends are capped at the day of UNDEF_TIMESTAMP (year 2554), so a record
    whose timestamp is undefined is never inside one.
    """

    def __init__(self, metadata: DbnMetadata) -> None:
        self.by_instrument_id = metadata.stype_in == "instrument_id"
        segments = [(i, a, min(b, _UNDEF_DAY), s) for i, a, b, s in _disjoint(metadata.mappings) if a < _UNDEF_DAY]
        names = list(dict.fromkeys(s[3] for s in segments))
        number = {n: i for i, n in enumerate(names)}
        self._names = pl.Series("symbol", [*names, None], dtype=pl.String)
        iid = np.array([s[0] for s in segments], dtype=np.uint64) << np.uint64(32)
        self._bounds = np.empty(2 * len(segments), dtype=np.uint64)
        self._bounds[0::2] = iid | np.array([s[1] for s in segments], dtype=np.uint64)
        self._bounds[1::2] = iid | np.array([s[2] for s in segments], dtype=np.uint64)
        self._lut = np.full(2 * len(segments) + 1, len(names), dtype=np.int64)
        self._lut[1::2] = [number[s[3]] for s in segments]
        self._seg_id = np.array([s[0] for s in segments], dtype=np.int64)
        self._seg_start = np.array([s[1] for s in segments], dtype=np.int64)
        self._seg_end = np.array([s[2] for s in segments], dtype=np.int64)
        self._seg_number = np.array([number[s[3]] for s in segments], dtype=np.intp)
        self._tables: dict[int, tuple[int, np.ndarray] | None] = {}
        # the names (then null) as Arrow string views and the data buffers the longer ones point into
        self._views, self._data = view_table(names)

    def map(self, instrument_id: np.ndarray, ts: np.ndarray, *, fast: bool = True) -> pl.Series:
        """The ``symbol`` column for records with these ids (uint32) and timestamps (uint64 ns UTC).

        ``fast``: symbol numbers from :meth:`numbers` turned into Arrow string views gathered from a
        table of the names; else one ``searchsorted`` over all records and a Polars gather of the
        strings (the original path, kept as the reference). Both give the same column.
        """
        if self.by_instrument_id:
            return pl.Series("symbol", instrument_id).cast(pl.String)
        if not len(self._bounds):
            return pl.repeat(None, len(instrument_id), dtype=pl.String, eager=True).alias("symbol")
        if fast:
            return string_views(self._views, self.numbers(instrument_id, ts), len(self._names) - 1, "symbol",
                                self._data)
        return self._names.gather(self._searched(instrument_id, ts))

    def _searched(self, instrument_id: np.ndarray, ts: np.ndarray) -> np.ndarray:
        """Symbol numbers by one ``searchsorted`` of the records' (instrument id, UTC day) keys."""
        key = (instrument_id.astype(np.uint64) << np.uint64(32)) | (ts // np.uint64(NS_PER_DAY))
        return self._lut[np.searchsorted(self._bounds, key, side="right")]

    def numbers(self, instrument_id: np.ndarray, ts: np.ndarray) -> np.ndarray:
        """Each record's symbol number (an index into the names; the last one, null: no symbol).

        Block by block of 16 Ki records: a block whose timestamps all fall on one UTC day (nearly
        every block of a historical file) is a subtraction and a gather from that day's table of
        instrument ids (built once per day, when the day's ids span at most 2^20 values); any other
        block goes through the ``searchsorted`` of (id, day) keys. Both give the same numbers.
        """
        n = len(instrument_id)
        out = np.empty(n, dtype=np.int32)
        ids = instrument_id if instrument_id.dtype == np.uint32 else instrument_id.astype(np.uint32)
        for lo in range(0, n, _MAP_BLOCK):
            i, t = ids[lo:lo + _MAP_BLOCK], ts[lo:lo + _MAP_BLOCK]
            day = int(t.min()) // NS_PER_DAY
            table = self._day_table(day) if day == int(t.max()) // NS_PER_DAY else None
            if table is None:
                out[lo:lo + len(i)] = self._searched(i, t)
            else:
                first, numbers = table
                offset = i - np.uint32(first)  # ids below first wrap around to large offsets
                np.minimum(offset, np.uint32(len(numbers) - 1), out=offset)
                np.take(numbers, offset, out=out[lo:lo + len(i)])
        return out

    def _day_table(self, day: int) -> tuple[int, np.ndarray] | None:
        """(first id, symbol number per id from first on, ending with the null number) for a UTC day;
        None when the day's ids span more than ``_DAY_TABLE_MAX`` values."""
        if day in self._tables:
            return self._tables[day]
        active = (self._seg_start <= day) & (day < self._seg_end)
        null = len(self._names) - 1
        table: tuple[int, np.ndarray] | None
        if not active.any():
            table = (0, np.array([null], dtype=np.int32))
        else:
            ids, numbers = self._seg_id[active], self._seg_number[active]
            first, span = int(ids.min()), int(ids.max()) - int(ids.min()) + 1
            if span > _DAY_TABLE_MAX:
                table = None
            else:
                lut = np.full(span + 1, null, dtype=np.int32)
                lut[ids - first] = numbers
                table = (first, lut)
        if len(self._tables) < 4096:
            self._tables[day] = table
        return table

    def counts(self, instrument_id: np.ndarray, ts: np.ndarray) -> dict[str | None, int]:
        """Records per symbol :meth:`map` would give (None: no requested symbol covers them),
        counted without building the strings (a ``bincount`` of :meth:`numbers`)."""
        if self.by_instrument_id or not len(self._bounds):
            ids, n = np.unique(instrument_id, return_counts=True)
            return {(str(i) if self.by_instrument_id else None): int(k) for i, k in zip(ids.tolist(), n.tolist(),
                                                                                        strict=True)}
        n = np.bincount(self.numbers(instrument_id, ts), minlength=len(self._names))
        return {name: int(k) for name, k in zip(self._names.to_list(), n.tolist(), strict=True) if k}


def symbology_frame(metadata: DbnMetadata, dataset: str) -> pl.DataFrame:
    """The metadata's symbol mappings as rows for the store's symbology table.

    Args:
        metadata: the DBN file's metadata.
        dataset: the Databento dataset the ids belong to (e.g. ``GLBX.MDP3``).

    Returns:
        One row per mapping interval, columns exactly ``dataset, stype_in, symbol, instrument_id,
        start_date, end_date, source`` (``end_date`` exclusive, ``source`` = ``"metadata"``).
    """
    ivs = metadata.mappings
    return pl.DataFrame(
        {
            "dataset": [dataset] * len(ivs),
            "stype_in": [metadata.stype_in] * len(ivs),
            "symbol": [iv.symbol for iv in ivs],
            "instrument_id": [iv.instrument_id for iv in ivs],
            "start_date": [iv.start_date for iv in ivs],
            "end_date": [iv.end_date for iv in ivs],
            "source": ["metadata"] * len(ivs),
        },
        schema=SYMBOLOGY_SCHEMA,
    )


def view_table(names: Sequence[str]) -> tuple[np.ndarray, list[pa.Buffer]]:
    """``names`` then a null as Arrow string views (shape (len(names) + 1, 2) uint64), and the one
    data buffer the views of names longer than 12 bytes point into (none when all are short).

    Built by hand from the Arrow layout (little-endian int32 length, then the string inline up to
    12 bytes, else its first 4 bytes, buffer index 0 and the offset): ``pa.array`` of a Python
    list imports pandas (~0.3 s of every ``hdi ingest``).
    """
    raw = np.zeros((len(names) + 1, 16), dtype=np.uint8)  # the last row (all zero) is the null
    data = bytearray()
    for k, name in enumerate(names):
        b = name.encode()
        head = np.frombuffer(len(b).to_bytes(4, "little"), dtype=np.uint8)
        raw[k, 0:4] = head
        if len(b) <= 12:
            raw[k, 4:4 + len(b)] = np.frombuffer(b, dtype=np.uint8)
        else:
            raw[k, 4:8] = np.frombuffer(b[:4], dtype=np.uint8)
            raw[k, 8:12] = 0  # buffer index 0
            raw[k, 12:16] = np.frombuffer(len(data).to_bytes(4, "little"), dtype=np.uint8)
            data += b
    views = raw.view(np.uint64).reshape(-1, 2).copy()
    if not data:
        return views, []
    import pyarrow as pa  # on first use: importing hdi.decode must stay cheap

    return views, [pa.py_buffer(bytes(data))]


def string_views(table: np.ndarray, index: np.ndarray, null: int | None, name: str,
                 data: Sequence[pa.Buffer] = ()) -> pl.Series:
    """A ``String`` series whose row k is the string of ``table[index[k]]``, built as Arrow string views.

    Args:
        table: Arrow string views, shape (m, 2) uint64 (16 bytes each: length, then the string
            inline up to 12 bytes, else a prefix, a buffer index and an offset into ``data``).
        index: row numbers into ``table`` (uint8 or int32).
        null: the row number that means null (its view is ignored), or None.
        name: the series name.
        data: the buffers the views of longer strings point into.

    One gather of 16 bytes per row and a validity bitmap where ``null`` occurs; Polars takes the
    Arrow buffers without copying.
    """
    import pyarrow as pa

    views = np.empty((len(index), 2), dtype=np.uint64)
    table.take(index, axis=0, out=views, mode="clip")  # "clip": no buffering (indices are in range)
    validity = None
    if null is not None:
        valid = index != null
        if not valid.all():
            validity = pa.py_buffer(np.packbits(valid, bitorder="little").data)
    arr = pa.Array.from_buffers(pa.string_view(), len(index), [validity, pa.py_buffer(views.data), *data])
    # Through the Arrow C data interface: pl.Series(name, a pyarrow array) imports pyarrow.compute
    # (~0.1 s of every ingest) to combine chunks a single array does not have.
    return pl.Series(values=_CArray(arr)).alias(name)


class _CArray:
    """An Arrow array seen only through ``__arrow_c_array__`` (see :func:`string_views`)."""

    def __init__(self, arr: pa.Array[Any]) -> None:
        self.arr = arr

    def __arrow_c_array__(self, requested_schema: object = None) -> tuple[object, object]:
        return self.arr.__arrow_c_array__(requested_schema)  # type: ignore[no-any-return]
