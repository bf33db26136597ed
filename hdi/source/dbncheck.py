"""Checking a downloaded DBN file against its request in one pass (:mod:`hdi.source.dbnfile` reads
it): its SHA-256, its full zstd stream, whole records only, and metadata answering the request.
The raw cache runs it on every download and every cache hit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from hdi.errors import SourceError
from hdi.source.chunks import Request
from hdi.source.dbnfile import CorruptStream, read_layout, record_class, record_size


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


def verify(path: Path, request: Request) -> Verified:
    """Check that ``path`` holds a complete DBN stream answering ``request``.

    Raises:
        SourceError: transient when the stream is cut or ends mid-record (worth downloading again);
            terminal when its metadata does not match the request.
    """
    import databento_dbn as dbn

    try:
        layout = read_layout(path)
    except CorruptStream as exc:
        raise SourceError(f"corrupt zstd data after {exc.total} bytes of DBN ({exc.reason})", transient=True) from None
    head, total = layout.head, layout.total
    if not layout.complete:
        raise SourceError(f"DBN file is truncated: the zstd stream of {request.describe()} ends early",
                          transient=True)
    if not layout.has_header:
        raise SourceError(f"downloaded file of {request.describe()} is not a complete DBN stream "
                          "(no DBN header)", transient=True)
    try:
        decoder = dbn.DBNDecoder()
        decoder.write(head)
        meta = decoder.decode()[0]
        if not isinstance(meta, dbn.Metadata):
            raise TypeError(f"the stream starts with a {type(meta).__name__} record, not DBN metadata")
        cls = record_class(meta.version, str(meta.schema))
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
    size = record_size(cls)
    body = layout.body_bytes()
    if body % size:
        raise SourceError(f"DBN file is truncated: {request.describe()} ends in the middle of a record "
                          f"({body % size} of {size} bytes)", transient=True)
    return Verified(body // size, size, total, layout.file_bytes, layout.sha256)
