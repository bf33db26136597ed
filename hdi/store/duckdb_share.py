"""Sharing one DuckDB file between processes: each process holds the file only while it uses it.

DuckDB lets one process write a file, or several processes read it, never both at once. So hdi
never keeps the file open between calls: a process keeps one in-memory DuckDB connection per store
for its whole life, and ATTACHes the file to it only for the duration of a read call (read-only) or
of a write transaction (one ingest chunk), then DETACHes it (a write detach checkpoints). Attaching
costs a few milliseconds; opening a DuckDB instance each time would cost ~10x more.

When another process holds the file, the attach is retried until ``HDI_LOCK_TIMEOUT`` seconds
(default 300) have passed, with one warning line saying so once the wait passes a second. A turnstile, an ``flock`` on
``<store file>.lock`` taken only while attaching, keeps the waiting fair: a writer that finishes a
chunk cannot re-attach ahead of a reader already waiting, and a stream of readers cannot starve a
writer.

Between two chunks of an ingest the file stays attached for at most :data:`LINGER` seconds, and
only while no other process waits for it (a waiting process holds the turnstile): the detach after
a write checkpoints, which costs 10-100 ms, so chunks that follow each other closely share one
attachment. The run's own end detaches at once.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hdi._retrying import RetryPolicy
from hdi.errors import ConfigError, StoreError
from hdi.store.schema import ident

log = logging.getLogger(__name__)
# polling another process's lock until the deadline: 5 ms, doubling to 50 ms (attempts: the deadline decides)
LOCK_POLL = RetryPolicy(attempts=1, base_delay=0.005, max_delay=0.05, jitter=0.0)

ALIAS = "hdi_store"  # the attached file's catalog name; every SQL statement uses unqualified names
TIMEOUT_ENV = "HDI_LOCK_TIMEOUT"
DEFAULT_TIMEOUT = 300.0
_MAX_TIMEOUT = 86_400.0

# One lock for every DuckDB store of the process: a connection's statements must not interleave
# between threads, and attach/detach change what unqualified names mean.
LOCK = threading.RLock()


def lock_timeout() -> float:
    """Seconds to wait for a DuckDB file another process holds (``HDI_LOCK_TIMEOUT``, default 300)."""
    raw = os.environ.get(TIMEOUT_ENV)
    if raw is None or raw.strip() == "":
        return DEFAULT_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 <= value <= _MAX_TIMEOUT:
        raise ConfigError(f"{TIMEOUT_ENV}='{raw}' is not allowed; allowed: seconds from 0 to {_MAX_TIMEOUT:g}")
    return value


@dataclass
class _Host:
    con: Any  # an in-memory DuckDB connection, kept for the life of the process
    mode: str | None = None  # None (file detached), "r" (read-only) or "w"
    depth: int = 0
    timer: threading.Timer | None = None  # detaches an attachment kept between chunks (LINGER)
    generation: int = 0  # a new number at every attach (see attachment())
    content: tuple[Any, ...] | None = None  # the file's content_token() read at a read-only attach, else None
    fd: int | None = None  # the file opened for content_token(), from a read-only attach to the detach


NOTE_AFTER = 1.0  # seconds of waiting before the one warning line: a wait for one chunk passes quietly
LINGER = 0.25  # seconds an ingest keeps the file attached after a chunk, unless a process waits for it


_HOSTS: dict[Path, _Host] = {}
_GENERATIONS = itertools.count(1)


def attachment(path: Path) -> object | None:
    """A key naming what the file held when its current read-only attachment was made, while a user
    holds it, else None: what a reader learnt from the file under one key stays true under it.

    While one read-only attachment lasts nothing changes the file: another process cannot write it
    (DuckDB's lock), and a write of this process re-attaches it read-write first. The key is the
    file's :func:`content_token` when it could be read (so two attachments of an unchanged file
    share it: a read reuses the lookups of the reads before it, ``hdi.hold`` or not), else a number
    of this attachment only."""
    host = _HOSTS.get(path)
    if host is None or host.mode != "r" or host.depth == 0:
        return None
    return host.content if host.content is not None else host.generation


# DuckDB's file: a 4 KiB main header, then two 4 KiB database headers at these offsets, each
# starting with its checksum and its iteration (u64 little endian); every checkpoint writes the
# older one with iteration + 1. Writes between checkpoints go to `<file>.wal`, which only grows
# until the checkpoint that folds it into the file deletes it.
_DB_HEADERS = (4096, 8192)
_MAGIC = b"DUCK"
_WAL_TAIL = 4096  # the WAL's last bytes (its newest entry and checksum) are part of the token


def content_token(path: Path, fd: int) -> tuple[Any, ...] | None:
    """Something that changes whenever the content of the DuckDB file ``path`` changes, or None
    when it cannot tell (then nothing is reused). ``fd``: the file opened read-only.

    The token holds the file's identity, size and modification time, the checksum and iteration of
    both database headers (a checkpoint rewrites one with a new iteration), and the identity, size,
    modification time and last bytes of ``<file>.wal`` (commits between checkpoints append to it),
    or None for the WAL when there is none. Read it only while the file is attached read-only: no
    process can write the file then, and the WAL of any earlier write is already on disk.

    ``fd`` must stay open until the file is detached: closing any descriptor of the file drops the
    process's POSIX locks on it, DuckDB's lock included (another process could then write it)."""
    wal = path.with_name(path.name + ".wal")
    try:
        st = os.fstat(fd)
        if os.pread(fd, 12, 0)[8:12] != _MAGIC:
            return None
        headers = tuple(os.pread(fd, 16, off) for off in _DB_HEADERS)
        if any(len(h) != 16 for h in headers):
            return None
        wal_part: tuple[Any, ...] | None = None
        try:
            wfd = os.open(wal, os.O_RDONLY)  # DuckDB holds no lock on the WAL: closing this one is harmless
        except FileNotFoundError:
            pass
        else:
            try:
                ws = os.fstat(wfd)
                tail = os.pread(wfd, _WAL_TAIL, max(0, ws.st_size - _WAL_TAIL))
            finally:
                os.close(wfd)
            wal_part = (ws.st_dev, ws.st_ino, ws.st_size, ws.st_mtime_ns, tail)
        return (str(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, headers, wal_part)
    except (OSError, AttributeError):  # AttributeError: no os.pread (Windows): no reuse
        return None


def _read_token(host: _Host, path: Path) -> None:
    """After a read-only attach: keep a descriptor of the file (until the detach) and its token."""
    host.content = None
    if host.fd is None:
        try:
            host.fd = os.open(path, os.O_RDONLY)
        except OSError:
            return
    host.content = content_token(path, host.fd)


def _close_fd(host: _Host) -> None:
    """Close the token's descriptor of the file: only once DuckDB no longer holds the file."""
    if host.fd is not None:
        fd, host.fd = host.fd, None
        try:
            os.close(fd)
        except OSError:
            pass


def acquire(path: Path, write: bool) -> Any:
    """The connection with ``path`` attached (read-write when ``write``), for one more user.

    Nested users share the attachment; a write inside a read re-attaches read-write. Every
    ``acquire`` needs its ``release``. The caller holds :data:`LOCK`.
    """
    host = _HOSTS.get(path)
    if host is None:
        import duckdb

        # timestamps come out labelled UTC, whatever the machine's zone (they are UTC instants;
        # a frame that needs no conversion needs no Polars pass either)
        con = duckdb.connect(":memory:")
        con.execute("SET TimeZone = 'UTC'")  # (ICU is loaded on a connection, not in its config)
        host = _HOSTS[path] = _Host(con)
    if host.mode is not None and host.depth == 0 and _someone_waits(path):
        _detach(host)  # kept after a chunk, but another process waits: it goes first (the turnstile)
    if host.mode is None:
        _attach(host, path, write)
    elif write and host.mode == "r":
        _detach(host)  # a read-only attachment cannot write
        _attach(host, path, write)
    host.depth += 1
    return host.con


def release(path: Path, linger: bool = False) -> None:
    """One user less; the last one detaches the file (checkpointing a write), or with ``linger``
    (after an ingest's chunk) keeps a read-write attachment up to :data:`LINGER` seconds."""
    host = _HOSTS.get(path)
    if host is None or host.depth == 0:
        return
    host.depth -= 1
    if host.depth > 0:
        return
    if host.timer is not None:
        host.timer.cancel()
        host.timer = None
    if linger and LINGER > 0 and host.mode == "w":
        host.timer = threading.Timer(LINGER, _expire, (path, host))
        host.timer.daemon = True
        host.timer.start()
    else:
        _detach(host)


def _expire(path: Path, host: _Host) -> None:
    """The end of a chunk's linger: detach unless the next chunk is using the file."""
    with LOCK:
        if _HOSTS.get(path) is host and host.depth == 0:
            _detach(host)


def _someone_waits(path: Path) -> bool:
    """Whether another process holds the turnstile: it is waiting to attach the file."""
    try:
        import fcntl
    except ImportError:
        return False
    try:
        fd = os.open(path.with_name(path.name + ".lock"), os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)  # releases the probe's flock


@contextmanager
def attached(path: Path, write: bool = False) -> Iterator[Any]:
    """``acquire`` .. ``release`` around a block, under :data:`LOCK`."""
    with LOCK:
        con = acquire(path, write)
        try:
            yield con
        finally:
            release(path)


def close(path: Path | None = None) -> None:
    """Detach and close the connection of one store file, or of all."""
    with LOCK:
        for p in [path] if path is not None else list(_HOSTS):
            host = _HOSTS.pop(p, None) if p is not None else None
            if host is not None:
                if host.timer is not None:
                    host.timer.cancel()
                try:
                    _detach(host)
                finally:
                    host.con.close()


def _detach(host: _Host) -> None:
    if host.mode is None:
        return
    host.mode = None
    try:
        host.con.execute("USE memory").fetchall()
        host.con.execute(f"DETACH {ALIAS}").fetchall()
    except Exception:  # noqa: BLE001 - never keep the file: closing the connection releases it
        for p, h in list(_HOSTS.items()):
            if h is host:
                del _HOSTS[p]
        host.con.close()
        raise
    finally:
        _close_fd(host)  # after DuckDB let go of the file (see content_token)


class CannotOpen(StoreError):
    """DuckDB refused to open the file (not a database, unreadable); ``reason`` is DuckDB's first line."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"cannot open DuckDB store {path}: {reason}")
        self.reason = reason


_HOLDER = re.compile(r"Conflicting lock is held in (.*?) \(PID (\d+)\)")


def _attach(host: _Host, path: Path, write: bool) -> None:
    import duckdb

    timeout = lock_timeout()
    deadline = time.monotonic() + timeout
    sql = f"ATTACH $1 AS {ident(ALIAS)}" + ("" if write else " (READ_ONLY)")  # the path is a bound value
    noted = False
    polls = 0
    with _Turnstile(path, write) as turn:
        while True:
            waited = turn.wait(deadline)
            try:
                if waited:
                    host.con.execute(sql, [str(path)]).fetchall()
                    host.con.execute(f"USE {ALIAS}").fetchall()
                    host.mode = "w" if write else "r"
                    host.generation = next(_GENERATIONS)
                    if write:
                        host.content = None
                    else:
                        _read_token(host, path)
                    return
                holder = "another process"
            except duckdb.IOException as e:
                first = str(e).splitlines()[0]
                if "lock" not in first.lower():
                    raise CannotOpen(path, first) from None
                m = _HOLDER.search(first)
                holder = f"process {m.group(2)} ({Path(m.group(1)).name})" if m else "another process"
            except duckdb.Error as e:
                raise CannotOpen(path, str(e).splitlines()[0]) from None
            left = deadline - time.monotonic()
            if left <= 0:
                raise StoreError(
                    f"DuckDB store {path} is in use by {holder} and stayed so for {timeout:g} s; DuckDB lets "
                    f"one process write a file or several read it: wait for it to finish, or set "
                    f"{TIMEOUT_ENV} (seconds) to wait longer")
            if not noted and timeout - left >= NOTE_AFTER:
                noted = True
                log.warning("DuckDB store %s is in use by %s; waiting for it (up to %g s, %s)", path, holder,
                            timeout, TIMEOUT_ENV)
            polls += 1
            time.sleep(min(LOCK_POLL.backoff(polls), left))


class _Turnstile:
    """An exclusive ``flock`` on ``<file>.lock``, held only while attaching.

    Best effort: where the lock file cannot be created or locked (a read-only folder, no
    ``fcntl``), attaching goes on without it.
    """

    def __init__(self, path: Path, write: bool) -> None:
        self.path = path.with_name(path.name + ".lock")
        self.fd: int | None = None
        self.held = False
        self.write = write

    def __enter__(self) -> _Turnstile:
        try:
            import fcntl  # noqa: F401 - not on Windows: no turnstile there
        except ImportError:
            return self
        for flags in (os.O_RDWR | os.O_CREAT, os.O_RDONLY):
            try:
                self.fd = os.open(self.path, flags, 0o666)
                break
            except OSError:
                continue
        return self

    def wait(self, deadline: float) -> bool:
        """Take the turnstile (once); False while another process holds it and time is left."""
        if self.fd is None or self.held:
            return True
        import fcntl

        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        except OSError:  # a file system without flock: go on without the turnstile
            os.close(self.fd)
            self.fd = None
            return True
        self.held = True
        return True

    def __exit__(self, *exc: object) -> None:
        if self.fd is not None:
            os.close(self.fd)  # releases the flock
            self.fd = None
