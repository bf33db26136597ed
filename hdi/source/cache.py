"""The raw DBN cache: complete, verified downloads only.

Layout: ``<cache dir>/<dataset>/<schema>/<request.key>.dbn.zst`` plus ``<request.key>.json``, a
small sidecar describing the request. A download goes to a fresh temporary file in the same
folder (the client opens its ``path`` with mode ``"x"``), is verified (readable DBN, whole
records only, metadata matching the request) and only then moved in with ``os.replace``; a
failed or unverifiable download is deleted.
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from hdi.errors import SourceError
from hdi.source.chunks import Request, iso

logger = logging.getLogger(__name__)
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_PART = ".part"


@dataclass(frozen=True)
class Verified:
    """What the check of a downloaded file found."""

    records: int
    record_size: int
    raw_bytes: int  # uncompressed DBN, metadata included


def _ns(dt: datetime) -> int:
    return int(dt.timestamp()) * 10**9 + dt.microsecond * 1000


def _read_layout(path: Path) -> tuple[bytes, int, bool]:
    """(the DBN metadata bytes incl. the 8-byte prefix, total uncompressed bytes, zstd stream complete).

    Streams the file once in 1 MiB pieces; handles several concatenated zstd frames and plain DBN.
    """
    import zstandard

    head = bytearray()
    need = 8
    total = 0

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
            while chunk:
                if d is None:
                    out, chunk = chunk, b""
                else:
                    out, chunk, fresh = d.decompress(chunk), b"", False
                    if d.eof:
                        chunk, d, fresh = d.unused_data, zstandard.ZstdDecompressor().decompressobj(), True
                total += len(out)
                take(out)
        complete = d is None or fresh or d.eof
    return bytes(head), total, complete


def verify(path: Path, request: Request) -> Verified:
    """Check that ``path`` holds a complete DBN stream answering ``request``.

    Raises:
        SourceError: transient when the stream is cut or ends mid-record (worth downloading again);
            terminal when its metadata does not match the request.
    """
    import databento_dbn as dbn
    import numpy as np

    head, total, complete = _read_layout(path)
    if not complete:
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
    return Verified(body // size, size, total)


def _record_class(meta: object) -> type:
    """The record class of a single-schema DBN file, in the file's own version layout."""
    from databento.common.constants import SCHEMA_STRUCT_MAP, SCHEMA_STRUCT_MAP_V1, SCHEMA_STRUCT_MAP_V2

    maps = {1: SCHEMA_STRUCT_MAP_V1, 2: SCHEMA_STRUCT_MAP_V2}
    return maps.get(meta.version, SCHEMA_STRUCT_MAP)[meta.schema]  # type: ignore[attr-defined]


class RawCache:
    """Verified raw DBN files under ``root`` (``hdi.config.cache_dir()`` by default)."""

    def __init__(self, root: Path | None = None) -> None:
        from hdi import config

        self.root = Path(root) if root is not None else config.cache_dir()

    def folder(self, request: Request) -> Path:
        return self.root / request.dataset / request.schema

    def path_for(self, request: Request) -> Path:
        return self.folder(request) / f"{request.key}.dbn.zst"

    def sidecar_for(self, request: Request) -> Path:
        return self.folder(request) / f"{request.key}.json"

    def get(self, request: Request) -> Path | None:
        """The cached file of ``request``, or None."""
        path = self.path_for(request)
        return path if path.is_file() and path.stat().st_size > 0 else None

    def temp_path(self, request: Request) -> Path:
        """A fresh, not yet existing file name next to the final one."""
        folder = self.folder(request)
        folder.mkdir(parents=True, exist_ok=True)
        return folder / f".{request.key}.{os.getpid()}.{uuid.uuid4().hex[:8]}{_PART}"

    def commit(self, request: Request, tmp: Path, info: Verified, *, source: str) -> Path:
        """Move a verified temporary file into place and write its sidecar."""
        final = self.path_for(request)
        os.replace(tmp, final)
        sidecar = {
            "key": request.key, "dataset": request.dataset, "schema": request.schema, "stype_in": request.stype_in,
            "symbols": list(request.symbols), "start": iso(request.start), "end": iso(request.end),
            "records": info.records, "record_size": info.record_size, "raw_bytes": info.raw_bytes,
            "file_bytes": final.stat().st_size, "source": source,
            "fetched_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        side_tmp = self.sidecar_for(request).with_suffix(f".json{_PART}")
        side_tmp.write_text(json.dumps(sidecar, indent=1))
        os.replace(side_tmp, self.sidecar_for(request))
        return final

    @staticmethod
    def discard(tmp: Path) -> None:
        try:
            tmp.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            logger.warning("could not delete partial download %s: %s", tmp, exc)

    def sweep(self, older_than: float = 3600.0) -> int:
        """Delete partial downloads left by killed processes (older than ``older_than`` seconds)."""
        if not self.root.is_dir():
            return 0
        cutoff, n = time.time() - older_than, 0
        for p in self.root.glob(f"*/*/.*{_PART}"):
            if p.stat().st_mtime < cutoff:
                self.discard(p)
                n += 1
        return n
