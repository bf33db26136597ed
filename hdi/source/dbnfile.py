"""DBN containers: the zstd framing, the DBN header, whole records, and record classes by version.

One reading of a DBN file, used by the file source (:meth:`hdi.source.files.DbnFile.verify`)
and the raw cache (:func:`hdi.source.dbncheck.verify`) alike: :func:`read_layout` streams the file
once in 1 MiB pieces, hashing it and decompressing every zstd frame (several concatenated frames,
skippable frames, or plain DBN), and says whether the stream ends at a frame boundary; the caller
turns what it found into its own error.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from databento_dbn import DBNRecord

__all__ = ["ZSTD_MAGIC", "CorruptStream", "Layout", "is_skippable", "read_layout", "record_class", "record_size"]

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


def is_skippable(magic: bytes) -> bool:
    """A zstd skippable frame (magic 0x184D2A50-0x184D2A5F): metadata for tools, no data."""
    return len(magic) == 4 and 0x184D2A50 <= int.from_bytes(magic, "little") <= 0x184D2A5F


class CorruptStream(Exception):
    """The zstd data is corrupt after ``total`` bytes of DBN (``reason``: what zstd said)."""

    def __init__(self, total: int, reason: str) -> None:
        super().__init__(reason)
        self.total, self.reason = total, reason


@dataclass(frozen=True)
class Layout:
    """What one pass over a DBN file found."""

    head: bytes  # the DBN prelude and metadata bytes (the 8-byte prefix included), as far as present
    total: int  # uncompressed bytes, metadata included
    complete: bool  # the zstd stream ends at a frame boundary (always True for plain DBN)
    file_bytes: int  # the file as stored
    sha256: str  # of the file as stored ("" when not asked for)
    data: list[bytes] | None = None  # the uncompressed bytes in pieces, when asked for (``keep``) and small enough

    @property
    def has_header(self) -> bool:
        """Whether the file starts with a whole DBN prelude and metadata."""
        head = self.head
        return len(head) >= 8 and head[:3] == b"DBN" and len(head) >= 8 + int.from_bytes(head[4:8], "little")

    def body_bytes(self) -> int:
        """Uncompressed bytes after the metadata (the records)."""
        return self.total - len(self.head)


def read_layout(path: Path, *, digest: bool = True, keep: int = 0) -> Layout:
    """Stream ``path`` once: hash it (``digest``) and decompress it, keeping the DBN header bytes,
    and the whole uncompressed stream (``Layout.data``) when it is at most ``keep`` bytes.

    Raises:
        CorruptStream: corrupt zstd data.
        OSError: the file cannot be read.
    """
    import zstandard

    head = bytearray()
    need = 8
    total = size = 0
    sha = hashlib.sha256() if digest else None
    kept: list[bytes] | None = [] if keep > 0 else None

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
        compressed = magic == ZSTD_MAGIC or is_skippable(magic)
        d = zstandard.ZstdDecompressor().decompressobj() if compressed else None
        fresh = True
        for chunk in iter(lambda: f.read(1 << 20), b""):
            if sha is not None:
                sha.update(chunk)
            size += len(chunk)
            while chunk:
                if d is None:
                    out, chunk = chunk, b""
                else:
                    try:
                        out, chunk, fresh = d.decompress(chunk), b"", False
                    except zstandard.ZstdError as exc:
                        raise CorruptStream(total, str(exc)) from None
                    if d.eof:
                        chunk, d, fresh = d.unused_data, zstandard.ZstdDecompressor().decompressobj(), True
                total += len(out)
                if len(head) < need:
                    take(out)
                if kept is not None:
                    if total <= keep:
                        kept.append(out)
                    else:
                        kept = None  # too large to hold: the caller reads the file again
        complete = d is None or fresh or d.eof
    return Layout(bytes(head), total, complete, size, sha.hexdigest() if sha is not None else "",
                  kept if complete else None)


# The record class of each schema in the newest DBN version, by the class's name in databento_dbn;
# an older version's layout is the class of that name in ``databento_dbn.v1`` / ``v2`` where the
# layout changed. The same maps as ``databento.common.constants.SCHEMA_STRUCT_MAP(_V1/_V2)``
# (tests/source/test_files.py compares them), without importing the ``databento`` package
# (pandas, aiohttp: ~0.6 s of every ``hdi ingest --from-file``).
_CLASS_NAMES = {
    "definition": "InstrumentDefMsg", "imbalance": "ImbalanceMsg", "mbo": "MBOMsg", "mbp-1": "MBP1Msg",
    "mbp-10": "MBP10Msg", "ohlcv-1s": "OHLCVMsg", "ohlcv-1m": "OHLCVMsg", "ohlcv-1h": "OHLCVMsg",
    "ohlcv-1d": "OHLCVMsg", "ohlcv-eod": "OHLCVMsg", "statistics": "StatMsg", "status": "StatusMsg",
    "tbbo": "MBP1Msg", "trades": "TradeMsg", "cmbp-1": "CMBP1Msg", "cbbo-1s": "CBBOMsg", "cbbo-1m": "CBBOMsg",
    "tcbbo": "CBBOMsg", "bbo-1s": "BBOMsg", "bbo-1m": "BBOMsg",
}
_NEWER_THAN = {"ohlcv-eod": 2}  # schemas DBN versions up to this one do not have


def record_class(version: int, schema: str) -> type[DBNRecord]:
    """The ``databento_dbn`` record class of ``schema`` in DBN ``version``'s layout (the newest
    layout for a version newer than those listed).

    Raises:
        KeyError: a schema ``version`` does not have (as ``databento``'s maps do).
    """
    import databento_dbn as dbn

    key = str(dbn.Schema.from_str(schema).value)
    name = _CLASS_NAMES[key]
    if version <= _NEWER_THAN.get(key, 0):
        raise KeyError(schema)
    newest: type[DBNRecord] = getattr(dbn, name)
    layout = getattr(dbn, f"v{version}", None) if version in (1, 2) else None
    cls: type[DBNRecord] = getattr(layout, name, newest) if layout is not None else newest
    return cls


def record_size(cls: type[DBNRecord]) -> int:
    """Bytes per record of a ``databento_dbn`` record class."""
    import numpy as np

    return int(np.dtype(cls._dtypes).itemsize)
