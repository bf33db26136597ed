"""Checking a raw DBN file in one pass: its SHA-256, its full zstd stream, whole records only, and
metadata answering the request. The raw cache runs it on every download and every cache hit.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from hdi.errors import SourceError
from hdi.source.chunks import Request

_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


@dataclass(frozen=True)
class Verified:
    """What the check of a downloaded file found."""

    records: int
    record_size: int
    raw_bytes: int  # uncompressed DBN, metadata included
    file_bytes: int = 0  # the file as stored (compressed)
    sha256: str = ""  # of the file as stored


def _ns(dt: datetime) -> int:
    return int(dt.timestamp()) * 10**9 + dt.microsecond * 1000


@dataclass(frozen=True)
class _Layout:
    head: bytes  # the DBN metadata bytes incl. the 8-byte prefix
    total: int  # uncompressed bytes
    complete: bool  # the zstd stream ends at a frame boundary
    file_bytes: int
    sha256: str


def _read_layout(path: Path) -> _Layout:
    """Stream the file once in 1 MiB pieces: hash it and decompress it (several concatenated zstd
    frames, or plain DBN). Corrupt zstd data raises a transient :class:`SourceError`."""
    import zstandard

    head = bytearray()
    need = 8
    total = size = 0
    digest = hashlib.sha256()

    def take(out: bytes) -> None:
        nonlocal need
        while len(head) < need and out:
            k = need - len(head)
            head.extend(out[:k])
            out = out[k:]
            if need == 8 and len(head) == 8 and head[:3] == b"DBN":
                need = 8 + int.from_bytes(head[4:8], "little")

    with open(path, "rb") as f:
        magic = f.read(4)
        f.seek(0)
        compressed = magic == _ZSTD_MAGIC
        d = zstandard.ZstdDecompressor().decompressobj() if compressed else None
        fresh = True
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
            size += len(chunk)
            while chunk:
                if d is None:
                    out, chunk = chunk, b""
                else:
                    try:
                        out, chunk, fresh = d.decompress(chunk), b"", False
                    except zstandard.ZstdError as exc:
                        raise SourceError(f"corrupt zstd data after {total} bytes of DBN ({exc})",
                                          transient=True) from None
                    if d.eof:
                        chunk, d, fresh = d.unused_data, zstandard.ZstdDecompressor().decompressobj(), True
                total += len(out)
                take(out)
        complete = d is None or fresh or d.eof
    return _Layout(bytes(head), total, complete, size, digest.hexdigest())


def verify(path: Path, request: Request) -> Verified:
    """Check that ``path`` holds a complete DBN stream answering ``request``.

    Raises:
        SourceError: transient when the stream is cut or ends mid-record (worth downloading again);
            terminal when its metadata does not match the request.
    """
    import databento_dbn as dbn
    import numpy as np

    layout = _read_layout(path)
    head, total = layout.head, layout.total
    if not layout.complete:
        raise SourceError(f"DBN file is truncated: the zstd stream of {request.describe()} ends early",
                          transient=True)
    if len(head) < 8 or head[:3] != b"DBN" or len(head) < 8 + int.from_bytes(head[4:8], "little"):
        raise SourceError(f"downloaded file of {request.describe()} is not a complete DBN stream "
                          "(no DBN header)", transient=True)
    try:
        decoder = dbn.DBNDecoder()
        decoder.write(head)
        meta = decoder.decode()[0]
        record_class = _record_class(meta)
    except Exception as exc:  # noqa: BLE001 - any decoder complaint means an unusable file
        raise SourceError(f"DBN metadata of {request.describe()} is unreadable: {exc}", transient=True) from exc
    # the client upper-cases raw symbols and smart-symbol roots, so symbols compare case-insensitively
    got = {"dataset": meta.dataset, "schema": str(meta.schema), "stype_in": str(meta.stype_in),
           "start": meta.start, "end": meta.end, "symbols": [s.upper() for s in meta.symbols]}
    want = {"dataset": request.dataset, "schema": request.schema, "stype_in": request.stype_in,
            "start": _ns(request.start), "end": _ns(request.end), "symbols": [s.upper() for s in request.symbols]}
    bad = [k for k in want if got[k] != want[k]]
    if bad:
        diffs = ", ".join(f"{k}={got[k]!r} (asked {want[k]!r})" for k in bad)
        raise SourceError(f"downloaded DBN does not answer {request.describe()}: {diffs}")
    size = np.dtype(record_class._dtypes).itemsize
    body = total - len(head)
    if body % size:
        raise SourceError(f"DBN file is truncated: {request.describe()} ends in the middle of a record "
                          f"({body % size} of {size} bytes)", transient=True)
    return Verified(body // size, size, total, layout.file_bytes, layout.sha256)


def _record_class(meta: object) -> type:
    """The record class of a single-schema DBN file, in the file's own version layout."""
    from databento.common.constants import SCHEMA_STRUCT_MAP, SCHEMA_STRUCT_MAP_V1, SCHEMA_STRUCT_MAP_V2

    maps = {1: SCHEMA_STRUCT_MAP_V1, 2: SCHEMA_STRUCT_MAP_V2}
    return maps.get(meta.version, SCHEMA_STRUCT_MAP)[meta.schema]  # type: ignore[attr-defined]
