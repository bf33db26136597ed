"""DBN files on disk: open, check and read them as structured NumPy chunks.

:func:`open_dbn` checks everything that can be checked before decoding (the path, the compression,
the DBN header and version, the schema, whether a zstd stream is cut short) and raises one
:class:`~hdi.errors.HdiError` with a one-line message per problem. A :class:`DbnFile` then yields
the records as structured arrays in the file's own DBN version layout, in bounded chunks, read
the way ``DBNStore.to_ndarray(count=...)`` reads them; ``hdi.decode`` turns them into typed Polars
frames.

Truncation policy: a file whose last record is cut mid-way, or whose zstd stream ends inside a
frame, is decoded up to its last whole record. Each such problem is logged as a warning naming the
file (and the bytes dropped) and recorded in :attr:`DbnFile.issues`, so that callers can refuse
or flag a partial file.

This module and ``hdi/source/databento.py`` are the only places that import ``databento``, and
this one only to read mixed-schema files (live captures): the package pulls in pandas and aiohttp
(~0.6 s), which loading a historical file never needs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from os import PathLike
from pathlib import Path
from typing import IO, TYPE_CHECKING

import databento_dbn as dbn
import numpy as np
import zstandard

from hdi._schemas import SCHEMAS
from hdi._tables import schema_hint
from hdi._timeutil import MIN_TIME, TIME_RANGE, as_utc, in_range
from hdi.errors import DecodeError, SchemaNeededError, SourceError, allowed_list
from hdi.recipe.checks import DATASET_RE
from hdi.source.base import Chunk, DayCondition, Estimate, Fetched, Plan, UpdateRange, chunk_id
from hdi.source.dbnfile import ZSTD_MAGIC, CorruptStream, is_skippable, read_layout, record_class, record_size

if TYPE_CHECKING:
    from hdi._filewindow import FileWindow
    from hdi.recipe.model import Recipe
    from hdi.store.base import Store

logger = logging.getLogger(__name__)

SUPPORTED_SCHEMAS: tuple[str, ...] = tuple(SCHEMAS)
SUPPORTED_VERSIONS: tuple[int, ...] = (1, 2, 3)

_UNDEF_TS = dbn.UNDEF_TIMESTAMP
# by value: databento_dbn's stubs declare the enum members as plain int attributes
KEEP_BYTES = 128 << 20  # uncompressed bytes of a file the file source keeps between verifying and loading it
_AS_IS = dbn.VersionUpgradePolicy(1)  # VersionUpgradePolicy.AS_IS: records keep their file's version


@dataclass(frozen=True)
class SymbolInterval:
    """One metadata mapping: ``symbol`` (as requested) is ``instrument_id`` on ``[start_date, end_date)``."""

    symbol: str
    instrument_id: int
    start_date: date
    end_date: date


@dataclass(frozen=True)
class DbnMetadata:
    """The DBN metadata header, as plain Python values (datetimes are tz-aware UTC)."""

    version: int
    dataset: str | None
    schema: str | None
    stype_in: str | None
    stype_out: str | None
    start: datetime
    end: datetime | None
    symbols: list[str]
    partial: list[str]
    not_found: list[str]
    mappings: list[SymbolInterval] = field(default_factory=list)


class DbnFile:
    """An opened, checked DBN file. Build it with :func:`open_dbn`.

    Attributes:
        path: the file.
        metadata: its DBN metadata.
        schema: the schema its records are read as (the metadata's, or the ``schema=`` given for a
            mixed-schema file).
        record_class: the ``databento_dbn`` record class whose ``_dtypes`` describe the arrays that
            :meth:`arrays` yields (the file's own version layout; v3 for mixed-schema files, which
            ``DBNStore`` reads by upgrading each record).
        compressed: whether the file is zstd-compressed.
        issues: one line per problem found so far (a stream cut short, an incomplete last record).
        verified_records: the whole records :meth:`verify` counted (single-schema files), else None.
    """

    def __init__(
        self, path: Path, metadata: DbnMetadata, schema: str, record_class: type[dbn.DBNRecord], *, compressed: bool,
        metadata_bytes: int, payload_bytes: int | None, mixed: bool, issues: list[str],
    ) -> None:
        self.path = path
        self.metadata = metadata
        self.schema = schema
        self.record_class = record_class
        self.compressed = compressed
        self.issues = issues
        self._metadata_bytes = metadata_bytes
        self._payload_bytes = payload_bytes
        self._mixed = mixed
        self._warn_on_read: tuple[str, ...] = ()
        self.verified_records: int | None = None
        self.sha256: str | None = None  # of the file as stored, once :meth:`verify` has read it
        self._kept: list[bytes] | None = None  # the uncompressed stream :meth:`verify` kept (``keep``)

    def __repr__(self) -> str:
        return f"DbnFile({str(self.path)!r}, schema={self.schema!r}, version={self.metadata.version})"

    @property
    def record_count_hint(self) -> int | None:
        """Records in the file when knowable without decoding it (uncompressed files, and zstd files
        whose frames declare their content size), else ``None``. Exact for single-schema files."""
        if self._mixed or self._payload_bytes is None:
            return None
        return self._payload_bytes // record_size(self.record_class)

    def arrays(self, count: int) -> Iterator[np.ndarray]:
        """Yield the records as read-only structured arrays of at most ``count`` records each.

        A single-schema file is read the way ``DBNStore.to_ndarray(count=count)`` reads it (read
        ``count`` records' worth of decompressed bytes, ``np.frombuffer`` them), on a file handle
        of its own that is closed when the iteration ends; a mixed-schema file goes through
        ``DBNStore.to_ndarray(schema=..., count=...)`` itself. An incomplete last record is
        dropped, logged with the bytes dropped, and added to :attr:`issues`.

        Raises:
            DecodeError: ``count`` < 1, or corrupt data (bad zstd data, undecodable records).
        """
        if count < 1:
            raise DecodeError(f"{self.path}: chunk size must be >= 1 record, got {count}")
        for msg in self._warn_on_read:
            logger.warning(msg)
        self._warn_on_read = ()
        if self._mixed:
            yield from self._mixed_arrays(count)
            return
        dtype = np.dtype(self.record_class._dtypes)
        want = dtype.itemsize * count
        records = 0
        # One thread reads (and decompresses, without the GIL) the next chunk while the caller
        # decodes this one; reads are sequential, each waits for the previous to finish.
        kept, self._kept = self._kept, None
        with open(self.path, "rb") as fh, ThreadPoolExecutor(1, thread_name_prefix="hdi-dbn-read") as pool:
            reader: IO[bytes] | _Pieces = (
                _Pieces(kept) if kept is not None
                else zstandard.ZstdDecompressor().stream_reader(fh, read_across_frames=True) if self.compressed
                else fh)
            try:
                _read_exact(reader, self._metadata_bytes)
                pending: Future[bytes] | None = pool.submit(_read_exact, reader, want)
                while pending is not None:
                    buf = pending.result()
                    pending = pool.submit(_read_exact, reader, want) if len(buf) == want else None
                    whole = len(buf) // dtype.itemsize
                    if whole:
                        records += whole
                        yield np.frombuffer(buf, dtype=dtype, count=whole)
                    if len(buf) > whole * dtype.itemsize:
                        self._note_incomplete_record(records, len(buf) - whole * dtype.itemsize)
            except zstandard.ZstdError as exc:
                raise DecodeError(f"{self.path}: corrupt zstd data after {records} records: {exc}") from exc

    def _mixed_arrays(self, count: int) -> Iterator[np.ndarray]:
        from databento import DBNStore
        from databento.common.error import BentoError

        records = 0
        try:
            store = DBNStore.from_file(self.path)
            for arr in store.to_ndarray(schema=self.schema, count=count):
                arr = arr.reshape(-1)
                records += len(arr)
                if len(arr):
                    yield arr
            decoder = dbn.DBNDecoder(upgrade_policy=_AS_IS)
            decoder.write(store.reader.read())
            decoder.decode()
        except zstandard.ZstdError as exc:
            raise DecodeError(f"{self.path}: corrupt zstd data after {records} records: {exc}") from exc
        except (BentoError, dbn.DBNError, ValueError) as exc:
            raise DecodeError(f"{self.path}: undecodable DBN records after {records} records: {exc}") from exc
        if trailing := len(decoder.buffer()):
            self._note_incomplete_record(records, trailing)

    def verify(self, *, keep: int = 0) -> None:
        """Read the whole file once and refuse it unless it is complete and uncorrupted.

        :func:`open_dbn` checks the header and the zstd frame layout only; this decompresses every
        frame (corrupt data shows only then) and checks that the records are whole, so a caller
        can refuse a damaged file before loading any of it (``open_dbn`` itself tolerates a
        truncated tail). About 1 GB/s of uncompressed DBN.

        ``keep``: a compressed single-schema file of at most this many uncompressed bytes keeps
        them, and the next :meth:`arrays` reads them instead of decompressing the file again
        (then lets them go).

        Raises:
            DecodeError: corrupt zstd data, a zstd stream cut inside a frame, or (single-schema
                files) a last record cut short.
        """
        try:
            layout = read_layout(self.path, keep=keep if self.compressed and not self._mixed else 0)
        except CorruptStream as exc:
            raise DecodeError(f"{self.path}: corrupt zstd data ({exc.reason}); download the file again") from None
        total, complete = layout.total, layout.complete
        self.sha256 = layout.sha256
        if not complete:
            raise DecodeError(f"{self.path}: file is truncated: the zstd stream ends inside a frame after "
                              f"{total} bytes of DBN; download the file again")
        if not self._mixed:
            size = record_size(self.record_class)
            extra = (total - self._metadata_bytes) % size
            if extra:
                raise DecodeError(f"{self.path}: file is truncated: its last {self.schema} record is incomplete "
                                  f"({extra} of {size} bytes, after {(total - self._metadata_bytes) // size} "
                                  "whole records); download the file again")
            self.verified_records = (total - self._metadata_bytes) // size
            self._kept = layout.data

    def _note_incomplete_record(self, records: int, dropped: int) -> None:
        msg = (f"{self.path}: the last record is incomplete (file truncated): {dropped} bytes dropped after "
               f"{records} whole {self.schema} records")
        logger.warning(msg)
        self.issues.append(msg)


class _Pieces:
    """The uncompressed stream :meth:`DbnFile.verify` kept, read like a file; each piece is let go
    once read."""

    def __init__(self, pieces: list[bytes]) -> None:
        self._pieces = pieces[::-1]  # popped from the end
        self._first = 0  # bytes of the next piece already read

    def read(self, size: int) -> bytes:
        out: list[bytes] = []
        while size > 0 and self._pieces:
            piece = self._pieces[-1]
            k = min(size, len(piece) - self._first)
            out.append(piece[self._first:self._first + k] if k < len(piece) else piece)
            size -= k
            self._first += k
            if self._first == len(piece):
                self._pieces.pop()
                self._first = 0
        return out[0] if len(out) == 1 else b"".join(out)


def _read_exact(reader: IO[bytes] | _Pieces, size: int) -> bytes:
    """``size`` bytes, fewer only at the end of the stream."""
    buf = reader.read(size)
    if len(buf) == size or not buf:
        return buf
    parts = [buf]
    got = len(buf)
    while got < size and (more := reader.read(size - got)):
        parts.append(more)
        got += len(more)
    return b"".join(parts)


def open_dbn(path: str | PathLike[str], *, schema: str | None = None) -> DbnFile:
    """Open a ``.dbn`` or ``.dbn.zst`` file and check that hdi can decode it.

    Args:
        path: the file.
        schema: the schema to read; required for mixed-schema files (metadata without a schema,
            e.g. live captures), and checked against the metadata otherwise.

    Returns:
        The checked file, ready for :meth:`DbnFile.arrays` or ``hdi.decode.dbn.decode_file``.

    Raises:
        SourceError: the path is missing, a directory, or unreadable.
        DecodeError: the file is empty, not DBN, corrupt or truncated zstd/metadata, a DBN version
            other than 1-3, a mixed-schema file without ``schema=``, or an unsupported schema.
    """
    p = Path(path)
    if not p.exists():
        raise SourceError(f"{p}: no such file (expected a .dbn or .dbn.zst file)")
    if p.is_dir():
        raise SourceError(f"{p}: is a directory (expected a .dbn or .dbn.zst file)")
    try:
        size = p.stat().st_size
        fh = open(p, "rb")  # closed by the with block below
    except OSError as exc:
        raise SourceError(f"{p}: cannot read the file: {exc.strerror or exc}") from exc
    issues: list[str] = []
    with fh:
        if size == 0:
            raise DecodeError(f"{p}: file is empty (0 bytes); expected DBN data (.dbn or .dbn.zst)")
        magic = fh.read(4)
        compressed = magic == ZSTD_MAGIC or is_skippable(magic)
        content_size: int | None = size
        complete = True
        if compressed:
            complete, content_size = _zstd_frames(fh, size, p)
            fh.seek(0)
            reader = zstandard.ZstdDecompressor().stream_reader(fh, read_across_frames=True)
            head, meta_raw = _read_header(reader, p)
        elif magic[:3] == b"DBN":
            fh.seek(0)
            head, meta_raw = _read_header(fh, p)
        else:
            raise DecodeError(f"{p}: not a DBN file: it starts with {magic!r}{_looks_like(magic)}; a .dbn "
                              "file starts with b'DBN' and a .dbn.zst file with the zstd magic 28 b5 2f fd")
    try:
        meta = dbn.Metadata.decode(head + meta_raw, upgrade_policy=_AS_IS)
    except (dbn.DBNError, ValueError) as exc:
        raise DecodeError(f"{p}: corrupt DBN metadata: {exc}") from exc
    metadata = _to_metadata(meta, p, issues)
    mixed = metadata.schema is None
    chosen = _choose_schema(p, metadata.schema, schema)
    if mixed:
        metadata = _with_stream_symbology(p, metadata)
    if meta.ts_out and not mixed:
        raise DecodeError(f"{p}: records carry a ts_out timestamp (a live capture); hdi reads historical "
                          "DBN files without ts_out")
    warn_on_read: tuple[str, ...] = ()
    if not complete:
        msg = (f"{p}: the zstd stream ends inside a frame (file truncated): records in the missing tail "
               "are lost; decoding the whole records before it")
        warn_on_read = (msg,)  # logged when records are read: a caller may refuse the file first (verify)
        issues.append(msg)
    # a mixed-schema file is read through DBNStore, which upgrades every record to the newest layout
    cls = record_class(SUPPORTED_VERSIONS[-1] if mixed else metadata.version, chosen)
    metadata_bytes = len(head) + len(meta_raw)
    payload = None if content_size is None else content_size - metadata_bytes
    f = DbnFile(p, metadata, chosen, cls, compressed=compressed,
                metadata_bytes=metadata_bytes, payload_bytes=payload, mixed=mixed, issues=issues)
    f._warn_on_read = warn_on_read
    return f


def _choose_schema(p: Path, in_file: str | None, asked: str | None) -> str:
    if asked is not None and asked not in SUPPORTED_SCHEMAS:
        raise DecodeError(f"{p}: schema '{asked}' is not supported{schema_hint(asked, SUPPORTED_SCHEMAS)}; "
                          f"supported: {allowed_list(SUPPORTED_SCHEMAS)}")
    if in_file is None:
        if asked is None:
            raise SchemaNeededError(f"{p}: mixed-schema DBN file (its metadata has no schema); pass schema= one of "
                              f"{allowed_list(SUPPORTED_SCHEMAS)}")
        if asked == "tbbo":  # each record goes to its own schema's table only, never to two
            raise DecodeError(f"{p}: a mixed-schema (live) file cannot tell tbbo records from mbp-1 records "
                              "(both are MBP1Msg, rtype 0x01); hdi reads them once, as mbp-1: use an mbp-1 "
                              "recipe for this file")
        return asked
    if asked is not None and asked != in_file:
        raise DecodeError(f"{p}: the file holds {in_file} records, not {asked} (schema= must match the file)")
    if in_file not in SUPPORTED_SCHEMAS:
        raise DecodeError(f"{p}: schema '{in_file}' is not supported{schema_hint(in_file, SUPPORTED_SCHEMAS)}; "
                          f"supported: {allowed_list(SUPPORTED_SCHEMAS)}")
    return in_file


def _with_stream_symbology(p: Path, metadata: DbnMetadata) -> DbnMetadata:
    """A mixed-schema (live) file's metadata completed from its records.

    A live capture's metadata has no symbols, no mappings and starts at the epoch; its symbols
    come as in-stream ``SymbolMappingMsg`` records instead. Their ``stype_in_symbol`` (``ESZ4``)
    becomes the file's symbol for the instrument; a mapping without its own interval (live
    mappings carry UNDEF start and end) holds over the file's records, from the UTC day of the
    first record's index time to the day after the last one, which also become the file's range.
    One pass over the file's records, in Python: live captures are small next to historical files.
    """
    from databento import DBNStore
    from databento.common.error import BentoError

    found: dict[tuple[str, int], tuple[int | None, int | None]] = {}
    stypes: set[str] = set()
    first = last = None
    undef = int(_UNDEF_TS)
    try:
        for rec in DBNStore.from_file(p):
            ts = getattr(rec, "ts_index", None)
            if ts is not None and ts != undef:
                first = ts if first is None else min(first, ts)
                last = ts if last is None else max(last, ts)
            if isinstance(rec, dbn.SymbolMappingMsg) and rec.stype_in_symbol:
                key = (str(rec.stype_in_symbol), int(rec.instrument_id))
                try:  # live mappings may leave stype_in unset (255): the symbol is then a raw symbol
                    stypes.add(str(dbn.SType.from_int(int(rec.stype_in)).value))
                except (dbn.DBNError, ValueError, TypeError):
                    stypes.add("raw_symbol")
                lo = None if rec.start_ts == undef else int(rec.start_ts)
                hi = None if rec.end_ts == undef else int(rec.end_ts)
                was = found.get(key)
                found[key] = (lo, hi) if was is None else (
                    None if lo is None or was[0] is None else min(lo, was[0]),
                    None if hi is None or was[1] is None else max(hi, was[1]))
    except (BentoError, dbn.DBNError, ValueError, zstandard.ZstdError) as exc:
        raise DecodeError(f"{p}: undecodable DBN records: {exc}") from exc
    if first is None or last is None:
        return metadata
    day0, day1 = _ns_to_datetime(first).date(), _ns_to_datetime(last).date() + timedelta(days=1)
    intervals = [SymbolInterval(sym, iid, _ns_to_datetime(lo).date() if lo is not None else day0,
                                _ns_to_datetime(hi - 1).date() + timedelta(days=1) if hi is not None else day1)
                 for (sym, iid), (lo, hi) in found.items()]
    start, end = as_utc(day0), as_utc(day1)
    symbols = list(dict.fromkeys(iv.symbol for iv in intervals))
    return dataclasses.replace(metadata, start=start, end=end, symbols=symbols or metadata.symbols,
                               stype_in=(stypes.pop() if len(stypes) == 1 else "raw_symbol") if intervals
                               else metadata.stype_in,
                               mappings=[*metadata.mappings, *intervals])


def _read_header(reader: IO[bytes], p: Path) -> tuple[bytes, bytes]:
    """Read the 8-byte DBN prelude and the metadata it announces; check the version."""
    try:
        head = _read_exact(reader, 8)
        if head[:3] != b"DBN":
            if not head:
                raise DecodeError(f"{p}: truncated zstd stream: it ends before the DBN header")
            raise DecodeError(f"{p}: not a DBN file: the zstd data starts with {head[:4]!r}, not b'DBN'")
        if len(head) < 8:
            raise DecodeError(f"{p}: truncated DBN metadata: the file ends inside the 8-byte DBN header")
        version = head[3]
        if version not in SUPPORTED_VERSIONS:
            raise DecodeError(f"{p}: DBN version {version} is not supported; supported versions: "
                              f"{allowed_list(str(v) for v in SUPPORTED_VERSIONS)}")
        length = int.from_bytes(head[4:8], "little")
        meta_raw = _read_exact(reader, length)
    except zstandard.ZstdError as exc:
        raise DecodeError(f"{p}: corrupt zstd data: {exc}") from exc
    if len(meta_raw) < length:
        raise DecodeError(f"{p}: truncated DBN metadata: the header announces {length} bytes of metadata, "
                          f"the file holds {len(meta_raw)}")
    return head, meta_raw


def _zstd_frames(fh: IO[bytes], size: int, p: Path) -> tuple[bool, int | None]:
    """Walk the zstd frame and block headers without decompressing.

    Returns (whether the last frame is complete, the total decompressed size if every frame
    declares it). ``zstandard``'s stream reader silently stops at a frame cut short, so this is
    how a truncated ``.dbn.zst`` is noticed.
    """
    pos, total = 0, 0
    known = True
    while pos < size:
        fh.seek(pos)
        magic = fh.read(4)
        if len(magic) < 4:
            return False, None
        if is_skippable(magic):
            length = fh.read(4)
            if len(length) < 4:
                return False, None
            pos += 8 + int.from_bytes(length, "little")
            if pos > size:
                return False, None
            continue
        if magic != ZSTD_MAGIC:
            raise DecodeError(f"{p}: corrupt zstd data: unexpected bytes {magic!r} at offset {pos} "
                              "where a zstd frame should start")
        header = magic + fh.read(14)
        try:
            params = zstandard.get_frame_parameters(header)
            pos += zstandard.frame_header_size(header)
        except zstandard.ZstdError as exc:
            if pos + len(header) >= size:
                return False, None
            raise DecodeError(f"{p}: corrupt zstd data: bad frame header at offset {pos}: {exc}") from exc
        if params.content_size == zstandard.CONTENTSIZE_UNKNOWN:
            known = False
        else:
            total += params.content_size
        last = 0
        while not last:
            fh.seek(pos)
            block = fh.read(3)
            if len(block) < 3:
                return False, None
            bits = int.from_bytes(block, "little")
            last, kind, block_size = bits & 1, (bits >> 1) & 3, bits >> 3
            if kind == 3:
                raise DecodeError(f"{p}: corrupt zstd data: reserved block type at offset {pos}")
            pos += 3 + (1 if kind == 1 else block_size)
        pos += 4 if params.has_checksum else 0
        if pos > size:
            return False, None
    return True, total if known else None


def _looks_like(magic: bytes) -> str:
    if magic == b"PAR1":
        return " (a Parquet file)"
    if magic[:2] == b"PK":
        return " (a ZIP archive: unzip it first)"
    if magic[:2] == b"\x1f\x8b":
        return " (a gzip file)"
    if magic and all(32 <= b < 127 or b in (9, 10, 13) for b in magic):
        return " (text, e.g. CSV or JSON)"
    return ""


def _ns_to_datetime(ns: int) -> datetime:
    seconds, rest = divmod(ns, 1_000_000_000)
    return MIN_TIME + timedelta(seconds=seconds, microseconds=rest // 1000)


def _enum_str(value: object) -> str | None:
    if value is None:
        return None
    return str(getattr(value, "value", value))


def _to_metadata(meta: dbn.Metadata, p: Path, issues: list[str]) -> DbnMetadata:
    stype_in, stype_out = _enum_str(meta.stype_in), _enum_str(meta.stype_out)
    intervals: list[SymbolInterval] = []
    skipped = 0
    by_symbol = meta.mappings  # a dict in no particular order: list mappings in request order
    ordered = [s for s in dict.fromkeys(meta.symbols) if s in by_symbol]
    ordered += sorted(set(by_symbol) - set(ordered))
    for requested in ordered:
        for entry in sorted(by_symbol[requested], key=lambda e: (e["start_date"], e["end_date"])):
            out = entry["symbol"]
            if not out:
                continue
            try:
                iid = int(requested) if stype_in == "instrument_id" else int(out)
            except ValueError:
                skipped += 1
                continue
            intervals.append(SymbolInterval(str(requested), iid, entry["start_date"], entry["end_date"]))
    if skipped:
        msg = (f"{p}: {skipped} symbol mappings skipped: neither stype_in ({stype_in}) nor stype_out "
               f"({stype_out}) gives an instrument id")
        logger.warning(msg)
        issues.append(msg)
    if meta.dataset and not DATASET_RE.match(meta.dataset):  # e.g. a flipped bit: rows would be stored under it
        raise DecodeError(f"{p}: corrupt DBN metadata: dataset {meta.dataset!r} is not a Databento dataset code; "
                          "allowed: VENUE.FEED in capitals, e.g. GLBX.MDP3")
    end = meta.end
    times = {"start": meta.start} if end is None or end == _UNDEF_TS else {"start": meta.start, "end": end}
    for name, ns in times.items():  # a flipped bit: a window Polars and the stores cannot hold
        if not in_range(_ns_to_datetime(ns)):
            raise DecodeError(f"{p}: corrupt DBN metadata: {name} {_ns_to_datetime(ns).isoformat()} is outside the "
                              f"times hdi can store; allowed: {TIME_RANGE}")
    if "end" in times and end < meta.start:
        raise DecodeError(f"{p}: corrupt DBN metadata: end {_ns_to_datetime(end).isoformat()} is before start "
                          f"{_ns_to_datetime(meta.start).isoformat()}; allowed: start <= end")
    return DbnMetadata(
        version=meta.version, dataset=meta.dataset or None, schema=_enum_str(meta.schema),
        stype_in=stype_in, stype_out=stype_out, start=_ns_to_datetime(meta.start),
        # datetimes hold µs: round the exclusive end up, so a record in its last µs stays inside
        end=None if end is None or end == _UNDEF_TS else _ns_to_datetime(end + 999),
        symbols=list(meta.symbols), partial=list(meta.partial), not_found=list(meta.not_found),
        mappings=intervals,
    )


DBN_SUFFIXES = (".dbn", ".dbn.zst")
_GLOB_CHARS = frozenset("*?[")


def expand_paths(paths: list[str | PathLike[str]]) -> list[Path]:
    """Turn ``--from-file`` arguments into DBN files: a file as it is, a folder into every ``.dbn``
    and ``.dbn.zst`` file under it (recursively), a glob (``*``, ``?``, ``[...]``, ``**``) into its
    matches; sorted within each argument, each file once, in argument order.

    Raises:
        SourceError: a folder holding no DBN file, or a glob matching nothing (one line naming it).
    """
    import glob

    out: dict[Path, None] = {}
    for given in paths:
        p = Path(given)
        text = str(given)
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and f.name.endswith(DBN_SUFFIXES)
                           and not f.name.startswith("."))
            if not found:
                raise SourceError(f"{p}: folder holds no .dbn or .dbn.zst file (searched recursively)")
        elif not p.exists() and _GLOB_CHARS & set(text):
            found = sorted(Path(m) for m in glob.glob(text, recursive=True) if Path(m).is_file())
            if not found:
                raise SourceError(f"{text}: no file matches this pattern (expected .dbn or .dbn.zst files)")
        else:
            found = [p]  # open_dbn names what is wrong with it
        for f in found:
            out.setdefault(f, None)
    return list(out)


class FileSource:
    """DBN files on disk as a :class:`~hdi.source.base.Source`: one chunk per file.

    Every file is opened and read in full here, before anything loads (a corrupt or truncated
    file is refused, not half-loaded). A file is loaded whole (the recipe's range and requests do
    not apply) unless a ``window`` (``--start/--end/--symbols``) is given: then each file's request
    is narrowed to it, its records outside it are left out, and a file it misses entirely is
    ``excluded``. Nothing costs anything.

    Raises:
        HdiError: a file is unreadable, corrupt, truncated, of another schema than the recipe's,
            or ``--symbols`` names a symbol of none of the files.
    """

    def __init__(self, paths: Sequence[Path], recipe: Recipe, window: FileWindow | None = None) -> None:
        from hdi._filewindow import check_symbols

        self.window = window
        # One file (the usual `--from-file F`) keeps what verifying it decompressed, up to
        # KEEP_BYTES, for the load (one decompression instead of two); several files do not (they
        # are all opened before anything loads).
        keep = KEEP_BYTES if len(paths) == 1 else 0
        self.files = [_open_for(p, recipe, keep) for p in paths]
        check_symbols(window, self.files)
        self._by_path = {str(f.path): f for f in self.files}

    def __repr__(self) -> str:
        return f"FileSource({len(self.files)} files)"

    def check(self, recipe: Recipe, *, update: bool, names: tuple[str, str]) -> None:
        """Nothing left to check: the files were checked when opened."""

    def conditions(self, dataset: str, start: date, end: date) -> dict[date, DayCondition]:
        """Files carry no dataset conditions."""
        return {}

    def dataset_range(self, dataset: str) -> None:
        """Files have no available range: ``--update`` plans nothing beyond them."""
        return None

    def plan(self, recipe: Recipe, rhash: str, ranges: Sequence[UpdateRange] | None) -> Plan:
        from hdi._filewindow import file_request
        from hdi._report import ChunkOutcome

        chunks: list[Chunk] = []
        excluded: list[ChunkOutcome] = []
        for f in self.files:
            req, bounded = file_request(f, self.window)
            if req is None:
                excluded.append(ChunkOutcome(f"file:{f.path.name}", f"{f.path} (outside --start/--end/--symbols)",
                                             "excluded", rows_left_out=f.verified_records or 0))
                continue
            digest = (f.sha256 or _file_digest(f.path)) + ("" if self.window is None else f"|{self.window}")
            chunks.append(Chunk(chunk_id(req, rhash, digest), req, f"{f.path} ({req.describe()})",
                                origin=str(f.path), where=str(f.path), bounded=bounded, keep=self.window))
        return Plan(tuple(chunks), tuple(excluded))

    def symbology(self, st: Store, recipe: Recipe, *, write: bool) -> int:
        """Nothing beyond each file's own metadata, which the loader stores with its chunk."""
        return 0

    def estimate(self, chunk: Chunk) -> Estimate:
        """A file's real record count, symbols and time range (it is decoded: no network, no store)."""
        from hdi._filewindow import estimate_file

        return estimate_file(self._by_path[chunk.origin], chunk.keep)

    def fetch(self, chunk: Chunk, *, refresh: bool) -> Fetched:
        return Fetched(self._by_path[chunk.origin])


def _open_for(path: Path, r: Recipe, keep: int = 0) -> DbnFile:
    try:
        f = open_dbn(path)
    except SchemaNeededError:
        f = open_dbn(path, schema=r.source.schema)  # a live capture: read the recipe's records from it
    if f.schema != r.source.schema:
        raise DecodeError(f"{path}: the file holds schema '{f.schema}' but recipe {r.path} reads "
                          f"'{r.source.schema}'; use a recipe for {f.schema}")
    f.verify(keep=keep)  # a corrupt or truncated file is refused before anything loads, not half-loaded
    return f


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
