"""The raw DBN cache: complete, verified downloads only, checked again on every hit.

Layout: ``<cache dir>/<dataset>/<schema>/<request.key>.dbn.zst`` plus ``<request.key>.json``, a
sidecar describing the request and the file: its record count, sizes and SHA-256. A download goes
to a fresh temporary file in the same folder (the client opens its ``path`` with mode ``"x"``), is
verified (readable DBN, whole records only, metadata matching the request) and only then moved in
with ``os.replace``; a failed or unverifiable download is deleted, and so are temporary files.

A cache hit re-reads the whole file before anything is loaded from it: size, SHA-256, record
count, uncompressed size and metadata must all match the sidecar (a sidecar from before hashes
were recorded is checked on everything else, then given the hash). A file that fails, or has no
usable sidecar, is deleted with a warning naming it, and the caller downloads it again.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from hdi._timeutil import iso
from hdi.errors import DecodeError, SourceError
from hdi.source.chunks import Request
from hdi.source.dbncheck import Verified, verify

if TYPE_CHECKING:
    from hdi.source.files import DbnFile

logger = logging.getLogger(__name__)
_PART = ".part"


def public_source(gateway: str | None) -> str:
    """What the sidecar records as the source: ``scheme://host[:port]`` of the gateway, never its
    userinfo (``user:password@``), path, query or fragment; ``databento`` without a gateway."""
    if not gateway:
        return "databento"
    scheme, sep, rest = gateway.strip().partition("://")
    if not sep or not re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*", scheme):  # "u:p://x@host" has no scheme
        scheme, rest = "https", gateway.strip()
    host = re.split(r"[/?#\\]", rest.rpartition("@")[2], maxsplit=1)[0]
    return f"{scheme.lower()}://{host}"


def _sidecar_problem(side: object, request: Request) -> str | None:
    """Why a sidecar cannot vouch for a file of ``request`` (None: it can)."""
    if not isinstance(side, dict):
        return "its sidecar is not a JSON object"
    want = {"key": request.key, "dataset": request.dataset, "schema": request.schema,
            "stype_in": request.stype_in, "symbols": list(request.symbols), "start": iso(request.start),
            "end": iso(request.end)}
    bad = [k for k, v in want.items() if side.get(k) != v]
    if bad:
        return f"its sidecar describes another request ({', '.join(bad)} differ)"
    if not isinstance(side.get("records"), int):
        return "its sidecar has no record count, so the file cannot be verified"
    return None


def _file_problem(side: dict[str, object], info: Verified) -> str | None:
    """Where a fully read file disagrees with its sidecar (None: nowhere)."""
    checks = [("records", info.records, "records"), ("record_size", info.record_size, "byte records"),
              ("raw_bytes", info.raw_bytes, "bytes of DBN"), ("file_bytes", info.file_bytes, "bytes"),
              ("sha256", info.sha256, "as SHA-256")]
    for key, got, unit in checks:
        if key in side and side[key] != got:
            return f"it holds {got} {unit}, its sidecar records {side[key]}"
    return None


def _stamp(st: os.stat_result) -> tuple[int, int, int]:
    return st.st_size, st.st_mtime_ns, st.st_ino


class RawCache:
    """Verified raw DBN files under ``root`` (``hdi._config.cache_dir()`` by default)."""

    def __init__(self, root: Path | None = None) -> None:
        from hdi import _config as config

        self.root = Path(root) if root is not None else config.cache_dir()
        self._checked: dict[Path, tuple[int, int, int]] = {}  # path -> (size, mtime_ns, inode) verified

    def folder(self, request: Request) -> Path:
        return self.root / request.dataset / request.schema

    def path_for(self, request: Request) -> Path:
        return self.folder(request) / f"{request.key}.dbn.zst"

    def sidecar_for(self, request: Request) -> Path:
        return self.folder(request) / f"{request.key}.json"

    def get(self, request: Request, version: str | None = None) -> Path | None:
        """The cached file of ``request`` once it has been read in full and matches its sidecar;
        None when there is none. A file that does not match is deleted with a warning naming it.

        ``version`` is what Databento says of the request's days now (their conditions and
        last_modified_date, :func:`data_version`): a file whose sidecar records another version was
        fetched before a restatement (or while a day was degraded or pending) and is not served
        (it is replaced by the next download). A sidecar without a version is not judged by it."""
        path = self.path_for(request)
        try:
            st = path.stat()
        except OSError:
            return None
        if version is not None and (old := self._version(request)) is not None and old != version:
            logger.info("raw cache file %s was fetched when Databento said %s, now %s: not served, it will be "
                        "downloaded again", path, old, version)
            return None
        stamp = _stamp(st)
        if self._checked.get(path) == stamp:  # verified by this process, unchanged since
            return path
        problem = self._problem(request, path, st.st_size)
        if problem is None:
            self._checked[path] = stamp
            return path
        logger.warning("raw cache file %s is damaged (%s); discarded, it will be downloaded again", path, problem)
        self._checked.pop(path, None)
        self.discard(path)
        self.discard(self.sidecar_for(request))
        return None

    def _version(self, request: Request) -> str | None:
        try:
            side = json.loads(self.sidecar_for(request).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError):
            return None
        got = side.get("data_version") if isinstance(side, dict) else None
        return got if isinstance(got, str) else None

    def _problem(self, request: Request, path: Path, size: int) -> str | None:
        """Why the cached file cannot be trusted (None: it can); reads the whole file."""
        side_path = self.sidecar_for(request)
        try:
            side = json.loads(side_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return f"it has no sidecar {side_path.name}, so it cannot be verified"
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            return f"its sidecar {side_path.name} is unreadable: {exc}"
        problem = _sidecar_problem(side, request)
        if problem is None and "file_bytes" in side and side["file_bytes"] != size:  # cheap: before reading
            problem = f"it holds {size} bytes, its sidecar records {side['file_bytes']}"
        if problem is not None:
            return problem
        try:
            info = verify(path, request)
        except SourceError as exc:
            return exc.message
        except OSError as exc:
            return f"it cannot be read: {exc.strerror or exc}"
        problem = _file_problem(side, info)
        if problem is None and "sha256" not in side:  # a sidecar from before hashes: add it now
            self._add_hash(request, {**side, "file_bytes": info.file_bytes, "sha256": info.sha256})
        return problem

    def temp_path(self, request: Request, suffix: str = "") -> Path:
        """A fresh, not yet existing file name next to the final one."""
        folder = self.folder(request)
        folder.mkdir(parents=True, exist_ok=True)
        return folder / f".{request.key}.{os.getpid()}.{uuid.uuid4().hex[:8]}{suffix}{_PART}"

    def commit(self, request: Request, tmp: Path, info: Verified, *, source: str | None,
               version: str | None = None) -> Path:
        """Move a verified temporary file into place with its sidecar (``source``: the gateway URL or
        None; only its scheme and host are kept; ``version``: Databento's conditions of its days
        before the download, :func:`data_version`). On any failure neither the temporary files nor
        a new file without its sidecar are left behind."""
        final = self.path_for(request)
        sidecar = {
            "key": request.key, "dataset": request.dataset, "schema": request.schema, "stype_in": request.stype_in,
            "symbols": list(request.symbols), "start": iso(request.start), "end": iso(request.end),
            "records": info.records, "record_size": info.record_size, "raw_bytes": info.raw_bytes,
            "file_bytes": info.file_bytes, "sha256": info.sha256, "source": public_source(source),
            "fetched_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        if version is not None:
            sidecar["data_version"] = version
        side_tmp = self.temp_path(request, ".json")
        moved = False
        try:
            side_tmp.write_text(json.dumps(sidecar, indent=1), encoding="utf-8")
            os.replace(tmp, final)
            moved = True
            os.replace(side_tmp, self.sidecar_for(request))
        except BaseException:
            self.discard(side_tmp)
            self.discard(final if moved else tmp)
            raise
        self._checked[final] = _stamp(final.stat())
        return final

    def _add_hash(self, request: Request, sidecar: dict[str, object]) -> None:
        """Rewrite an old sidecar with the file's size and hash; a failure only costs the next hit a
        check without them."""
        side_tmp = None
        try:
            side_tmp = self.temp_path(request, ".json")
            side_tmp.write_text(json.dumps(sidecar, indent=1), encoding="utf-8")
            os.replace(side_tmp, self.sidecar_for(request))
        except OSError as exc:
            if side_tmp is not None:
                self.discard(side_tmp)
            logger.info("could not add the hash to %s: %s", self.sidecar_for(request), exc)

    @staticmethod
    def discard(tmp: Path) -> None:
        try:
            tmp.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            logger.warning("could not delete %s: %s", tmp, exc)

    def sweep(self, older_than: float = 3600.0) -> int:
        """Delete partial downloads left by killed processes (older than ``older_than`` seconds)."""
        if not self.root.is_dir():
            return 0
        cutoff, n = time.time() - older_than, 0
        for p in self.root.glob(f"*/*/.*{_PART}"):
            try:
                old = p.stat().st_mtime < cutoff
            except FileNotFoundError:
                continue
            if old:
                self.discard(p)
                n += 1
        return n


def data_version(conditions: Sequence[tuple[object, str, object]]) -> str:
    """What the raw cache records of a download's days: ``day=condition@last_modified_date`` each."""
    return ";".join(f"{d}={c}@{m}" for d, c, m in conditions)


def check_complete(f: DbnFile, decoded: int) -> None:
    """Refuse a load that decoded fewer (or more) records than the source delivered.

    The promise is the count :meth:`DbnFile.verify` found when it read the file, else the
    raw-cache sidecar's record count for a cached file; a file with neither is not checked.

    Raises:
        DecodeError: the counts differ.
    """
    promised, where = f.verified_records, f"{f.path}, read in full before loading"
    name = f.path.name
    if promised is None and name.endswith(".dbn.zst"):
        key = name[: -len(".dbn.zst")]
        try:
            side = json.loads(f.path.with_name(f"{key}.json").read_text(encoding="utf-8"))
            if (side["key"], side["schema"], side["dataset"]) == (key, f.path.parent.name, f.path.parent.parent.name):
                promised, where = int(side["records"]), f"raw cache file {f.path}, per its sidecar"
        except (OSError, ValueError, TypeError, KeyError):
            pass
    if promised is not None and decoded != promised:
        raise DecodeError(f"decoded {decoded} records but the source delivered {promised} ({where}); nothing of "
                          "this chunk was stored, run the ingest again")
