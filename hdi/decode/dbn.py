"""DBN records -> typed Polars frames, column by column (the decode contract).

Each chunk of structured records from :meth:`hdi.source.files.DbnFile.arrays` becomes one frame:
every field of the schema's DBN v3 record class (``databento_dbn``'s ``_dtypes`` order, minus
``length`` and reserved fields), then ``symbol``. One contiguous copy per column, sentinels turned
into nulls with a mask only where a sentinel occurs; one-byte chars and ``symbol`` built as Arrow
string views (a 16-byte gather per row from a small table, :func:`hdi.decode.symbols.string_views`);
no ``to_df()``, no Python object per record. The file is decompressed a piece ahead by a reader
thread (:meth:`hdi.source.files.DbnFile.arrays`), so decode work overlaps decompression.

Types: timestamps ``Datetime("ns", "UTC")`` (null for UNDEF_TIMESTAMP); prices ``Int64`` fixed
point 1e-9 (null for UNDEF_PRICE); statistics ``quantity`` ``Int64`` (null for
UNDEF_STAT_QUANTITY, or 2^31-1 in DBN v1/v2 files where it is int32); one-byte chars ``String``
(null for NUL); text fields ``String`` with trailing NULs stripped (null when empty); every other
integer keeps its DBN width and signedness.

DBN v1/v2 files decode to the same v3 columns: for ``definition``, fields v3 dropped
(``trading_reference_price``, ``trading_reference_date``, ``md_security_trading_status``,
``settl_price_type``) are not returned and fields v3 added (the ``leg_*`` fields) take the values
DBN's own v3 upgrade gives them (null prices and text, 0 counts and ids, ``leg_side`` "N").
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import databento_dbn as dbn
import numpy as np
import polars as pl

from hdi._schemas import SCHEMAS
from hdi._tables import schema_hint
from hdi.decode.symbols import SymbolMapper, string_views, symbology_frame
from hdi.errors import DecodeError, allowed_list

if TYPE_CHECKING:
    from hdi.source.files import DbnFile

__all__ = ["SUPPORTED_SCHEMAS", "decode_file", "frame_schema", "symbology_frame"]

SCHEMA_CLASSES: dict[str, type[dbn.DBNRecord]] = {name: s.record_class for name, s in SCHEMAS.items()}
SUPPORTED_SCHEMAS: tuple[str, ...] = tuple(SCHEMA_CLASSES)

_INT_TYPES: dict[str, pl.DataType] = {
    "u1": pl.UInt8(), "u2": pl.UInt16(), "u4": pl.UInt32(), "u8": pl.UInt64(),
    "i1": pl.Int8(), "i2": pl.Int16(), "i4": pl.Int32(), "i8": pl.Int64(),
}
_TS = pl.Datetime("ns", "UTC")
_INT64_MAX = 2**63 - 1
_INT32_MAX = 2**31 - 1
_BLOCK = 16_384  # records per cache-friendly copy block (~0.8-8 MB)
_PIECE_BYTES = 4 << 20  # bytes of records read at a time
# v3 fields a v1/v2 record lacks, with the value DBN's upgrade to v3 gives them (others: null or 0)
_UPGRADE_DEFAULTS: dict[str, str | int | None] = {"leg_side": "N"}
# one-byte char -> one-character string; NUL -> null
_CHARS = pl.Series("char", [None, *(chr(i) for i in range(1, 256))], dtype=pl.String)
# the same as Arrow string views (16 bytes each: length 1, the byte inline; NUL: all zero, a null)
_CHAR_VIEWS = np.zeros((256, 2), dtype=np.uint64)
_CHAR_VIEWS[1:, 0] = (np.arange(1, 256, dtype=np.uint64) << np.uint64(32)) | np.uint64(1)


@dataclass(frozen=True)
class _Column:
    name: str
    kind: str  # "ts" | "price" | "quantity" | "char" | "text" | "int"
    dtype: pl.DataType
    source: str | None  # the field's numpy type in the file's record class; None if the file lacks it


@functools.lru_cache(maxsize=64)
def _target(schema: str) -> tuple[_Column, ...]:
    try:
        cls = SCHEMA_CLASSES[schema]
    except KeyError:
        raise DecodeError(f"schema '{schema}' is not supported{schema_hint(schema, SUPPORTED_SCHEMAS)}; "
                          f"supported: {allowed_list(SUPPORTED_SCHEMAS)}") from None
    hidden = set(cls._hidden_fields) | {"length"}
    cols = []
    for name, np_type in cls._dtypes:
        if name in hidden or name.startswith("_"):
            continue
        if name in cls._timestamp_fields:
            cols.append(_Column(name, "ts", _TS, np_type))
        elif name in cls._price_fields:
            cols.append(_Column(name, "price", pl.Int64(), np_type))
        elif schema == "statistics" and name == "quantity":
            cols.append(_Column(name, "quantity", pl.Int64(), np_type))
        elif np_type == "S1":
            cols.append(_Column(name, "char", pl.String(), np_type))
        elif np_type.startswith("S"):
            cols.append(_Column(name, "text", pl.String(), np_type))
        else:
            cols.append(_Column(name, "int", _INT_TYPES[np_type], np_type))
    return tuple(cols)


# (schema, record class) -> plan: a few dozen pairs at most (schemas x DBN versions). A dict, not
# lru_cache: mypy does not see a union of record classes as Hashable.
_PLANS: dict[tuple[str, type], tuple[_Column, ...]] = {}


def _plan(schema: str, record_class: type[dbn.DBNRecord]) -> tuple[_Column, ...]:
    """The target columns, each with the numpy type the file's record class stores it as."""
    plan = _PLANS.get((schema, record_class))
    if plan is None:
        have = dict(record_class._dtypes)
        plan = _PLANS[(schema, record_class)] = tuple(_Column(c.name, c.kind, c.dtype, have.get(c.name))
                                                      for c in _target(schema))
    return plan


def _itemsize(record_class: type[dbn.DBNRecord]) -> int:
    """The bytes of one record of ``record_class`` in a DBN file."""
    return np.dtype(record_class._dtypes).itemsize


def frame_schema(schema: str) -> dict[str, pl.DataType]:
    """The exact column names and types :func:`decode_file` yields for a DBN schema.

    Args:
        schema: a supported DBN schema name (``ohlcv-1m``, ``trades``, ``statistics``...).

    Returns:
        Column name -> Polars type, in frame order, ending with ``symbol``.

    Raises:
        DecodeError: the schema is not supported.
    """
    return {**{c.name: c.dtype for c in _target(schema)}, "symbol": pl.String()}


def _nulled(values: np.ndarray, sentinel: int, name: str) -> pl.Series:
    series = pl.Series(name, values)
    mask = values == sentinel
    return series.set(pl.Series(mask), None) if mask.any() else series


def _columns(arr: np.ndarray, names: list[str]) -> dict[str, np.ndarray]:
    """Contiguous copies of the named fields, copied block by block so that each block of
    records is read from cache once for all fields (about twice as fast as field by field)."""
    out = {n: np.empty(len(arr), dtype=arr.dtype[n]) for n in names}
    for lo in range(0, len(arr), _BLOCK):
        block = arr[lo:lo + _BLOCK]
        for n in names:
            out[n][lo:lo + _BLOCK] = block[n]
    return out


def _series(raw: np.ndarray | None, col: _Column, n: int, path: object) -> pl.Series:
    if raw is None:  # a v3 field an older record version lacks
        default = _UPGRADE_DEFAULTS.get(col.name, 0 if col.kind == "int" else None)
        return pl.repeat(default, n, dtype=col.dtype, eager=True).alias(col.name)
    if col.kind == "ts":
        return _nulled(raw.view(np.int64), -1, col.name).cast(_TS)
    if col.kind == "price":
        return _nulled(raw, _INT64_MAX, col.name)
    if col.kind == "quantity":
        if col.source == "i4":
            return _nulled(raw, _INT32_MAX, col.name).cast(pl.Int64)
        return _nulled(raw, _INT64_MAX, col.name)
    if col.kind == "char":
        return string_views(_CHAR_VIEWS, raw.view(np.uint8), 0, col.name)
    if col.kind == "text":
        try:
            text = pl.Series(col.name, raw).cast(pl.String)
        except (pl.exceptions.InvalidOperationError, pl.exceptions.ComputeError) as exc:
            raise DecodeError(f"{path}: field '{col.name}' holds text that is not UTF-8") from exc
        return text.set(text.str.len_bytes() == 0, None)
    series = pl.Series(col.name, raw)
    return series if series.dtype == col.dtype else series.cast(col.dtype)


def _frame(arr: np.ndarray, plan: tuple[_Column, ...], mapper: SymbolMapper, ts_field: str,
           path: object) -> pl.DataFrame:
    names = list(dict.fromkeys([*(c.name for c in plan if c.source is not None), "instrument_id", ts_field]))
    raw = _columns(arr, names)
    columns = [_series(raw.get(c.name) if c.source else None, c, len(arr), path) for c in plan]
    symbol = mapper.map(raw["instrument_id"], raw[ts_field])
    return pl.DataFrame([*columns, symbol.alias("symbol")])


def decode_file(dbn_file: DbnFile, *, chunk_rows: int = 1_000_000) -> Iterator[pl.DataFrame]:
    """Decode a DBN file into typed Polars frames of at most ``chunk_rows`` rows each.

    Memory is bounded by one frame: records are read in pieces of about 4 MiB (a buffer size the
    allocator reuses, measured faster than one read per frame), each column is copied once, and
    the pieces of a frame are concatenated without copying (so a frame may hold several chunks). A file without records yields one empty frame with the
    full schema.

    Args:
        dbn_file: an opened file (:func:`hdi.source.files.open_dbn`).
        chunk_rows: rows per frame; every frame but the last has exactly this many.

    Yields:
        Frames with exactly the columns of :func:`frame_schema` for the file's schema.

    Raises:
        DecodeError: bad ``chunk_rows``, an unsupported schema, or corrupt data.
    """
    if chunk_rows < 1:
        raise DecodeError(f"{dbn_file.path}: chunk_rows must be >= 1, got {chunk_rows}")
    plan = _plan(dbn_file.schema, dbn_file.record_class)
    mapper = SymbolMapper(dbn_file.metadata)
    ts_field = "ts_recv" if any(c.name == "ts_recv" for c in plan) else "ts_event"
    itemsize = _itemsize(dbn_file.record_class)
    piece = max(1, min(chunk_rows, _PIECE_BYTES // itemsize))
    parts: list[pl.DataFrame] = []
    rows, produced = 0, False
    for arr in dbn_file.arrays(piece):
        while len(arr):
            take = min(len(arr), chunk_rows - rows)
            parts.append(_frame(arr[:take], plan, mapper, ts_field, dbn_file.path))
            rows, arr = rows + take, arr[take:]
            if rows == chunk_rows:
                yield _join(parts)
                parts, rows, produced = [], 0, True
    if parts:
        yield _join(parts)
    elif not produced:
        yield pl.DataFrame(schema=frame_schema(dbn_file.schema))


def _join(parts: list[pl.DataFrame]) -> pl.DataFrame:
    return parts[0] if len(parts) == 1 else pl.concat(parts, rechunk=False)
