"""Every file hdi writes for a user (``hdi query --output``, quarantine files) goes through here.

A file is written to a hidden temporary name in its own folder and renamed into place, so a reader
never sees half a file and a failed write leaves the old file (or nothing) behind. The temporary
file is removed on every failure path: a full disk, a quota, a serialisation error, Ctrl-C.

What is never written over, each refused with a one-line :class:`~hdi.errors.OutputError`:

- an existing file, unless ``force`` (``--force``);
- a store: a DuckDB database file (recognised by its header) or any path given in ``protect``
  (the store in use and its ``.wal``), even with ``force``;
- a symbolic link: replacing the link would silently leave its target as it was, writing through it
  would silently change a file the user did not name; the message names the target to use instead;
- a FIFO, a socket or a device (``/dev/full`` run as root used to replace the device node);
- a directory.

Without ``force`` the final step is a hard link of the finished temporary file (which fails if a
file appeared at the path meanwhile), so a concurrent writer's file is never replaced either.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import re
import stat
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

if TYPE_CHECKING:
    from typing_extensions import Buffer  # collections.abc.Buffer from Python 3.12

from hdi.errors import HdiError, OutputError

DUCKDB_MAGIC = b"DUCK"  # bytes 8..11 of every DuckDB database file
_OS_ERROR = re.compile(r"\(os error (\d+)\)")


def describe_error(exc: BaseException) -> str:
    """The reason a local write failed, as a short phrase: ``No space left on device``.

    Polars reports I/O errors as ``OSError`` without ``errno`` or as ``ComputeError`` whose text
    carries ``(os error 28)``; both are reduced to the operating system's wording."""
    if isinstance(exc, OSError) and exc.errno is not None:
        return exc.strerror or os.strerror(exc.errno)
    m = _OS_ERROR.search(str(exc))
    if m:
        return os.strerror(int(m.group(1)))
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def is_duckdb_file(path: Path) -> bool:
    """True when ``path`` is a regular file that starts like a DuckDB database."""
    try:
        with open(path, "rb") as f:
            head = f.read(12)
    except OSError:
        return False
    return len(head) == 12 and head[8:12] == DUCKDB_MAGIC


def _same(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return Path(os.path.abspath(a)) == Path(os.path.abspath(b))


def _kind(mode: int) -> str | None:
    """What a non-regular file is, for a message; None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def check_target(path: Path, *, force: bool = False, protect: Iterable[Path] = (), what: str = "output",
                 force_flag: str = "--force") -> None:
    """Refuse, with one line, a path hdi must not write to (see the module's rules).

    Raises:
        OutputError: the folder is missing, not a folder or not writable; or the path is a store,
            a symlink, a FIFO/socket/device/directory, or an existing file without ``force``.
    """
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        why = "is a file, not a folder" if parent.exists() else "does not exist"
        raise OutputError(f"{what} {path}: folder {parent} {why}")
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        st = None
    except OSError as e:
        raise OutputError(f"{what} {path} cannot be checked: {describe_error(e)}") from None
    if st is not None:
        if stat.S_ISLNK(st.st_mode):
            target = os.path.realpath(path)
            raise OutputError(f"{what} {path} is a symbolic link to {target}; hdi does not write through or "
                              f"replace a link: give its target {target} instead")
        for p in protect:
            if _same(path, Path(p)):
                raise OutputError(f"{what} {path} is the store hdi reads and writes; hdi never writes over a "
                                  f"store, even with {force_flag}: choose another file")
        kind = _kind(st.st_mode)
        if kind == "a directory":
            raise OutputError(f"{what} {path} is a directory; give a file path")
        if kind is not None:
            raise OutputError(f"{what} {path} is {kind}, not a regular file; hdi writes only regular files "
                              "(write to a file, or send --format csv to stdout)")
        if is_duckdb_file(path):
            raise OutputError(f"{what} {path} is a DuckDB database; hdi never writes over a database file, "
                              f"even with {force_flag}: choose another file")
        if not force:
            raise OutputError(f"{what} {path} already exists; pass {force_flag} to replace it")
    if not os.access(parent, os.W_OK):
        raise OutputError(f"{what} {path}: folder {parent} is not writable")


class _Sink(io.BufferedWriter):
    """The temporary file, remembering the first OS error a write or flush met: Polars wraps it in
    its own error whose text may not say what happened (a full disk met while the Parquet footer is
    written reads ``Invalid thrift: transport error``)."""

    error: OSError | None = None

    def write(self, b: Buffer) -> int:
        try:
            return super().write(b)
        except OSError as e:
            self.error = self.error or e
            raise

    def flush(self) -> None:
        try:
            super().flush()
        except OSError as e:
            self.error = self.error or e
            raise


def write_atomic(path: Path, write: Callable[[BinaryIO], object], *, force: bool = False,
                 protect: Iterable[Path] = (), what: str = "output", force_flag: str = "--force",
                 error: type[HdiError] = OutputError, failed: str = "cannot be written",
                 check: bool = True) -> Path:
    """Write a file through ``write(file)`` into a temporary file beside ``path``, then move it into
    place. Returns ``path``.

    Args:
        path: the file to produce.
        write: writes the whole file to the binary file object it is given (``frame.write_parquet``).
        force: an existing regular file may be replaced (never a store, link, FIFO or device).
        protect: paths never written over (the store in use).
        what: how the file is named in messages (``output``, ``quarantine file``).
        force_flag: the option that allows replacing, named in messages.
        error: the exception class raised when writing fails (refusals are always OutputError).
        failed: the words of that message after the path (``cannot be written``).
        check: False skips :func:`check_target` (a caller that checked already).

    Raises:
        OutputError: the target is refused (see :func:`check_target`).
        error: writing or renaming failed; the temporary file is gone and ``path`` is unchanged.
    """
    path = Path(path)
    protect = list(protect)
    if check:
        check_target(path, force=force, protect=protect, what=what, force_flag=force_flag)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    sink: _Sink | None = None
    try:
        sink = _Sink(io.FileIO(tmp, "xb"))
        write(sink)
        sink.flush()
        os.fsync(sink.fileno())
        sink.close()
        if force:
            check_target(path, force=True, protect=protect, what=what, force_flag=force_flag)
            _keep_mode(path, tmp)
            os.replace(tmp, path)
        else:
            _link_no_clobber(tmp, path, what=what, force_flag=force_flag)
    except BaseException as e:  # a full disk, a Polars error, Ctrl-C: never leave the temporary file
        if sink is not None:
            with contextlib.suppress(OSError, ValueError):
                sink.close()
        _remove(tmp)
        if isinstance(e, HdiError) or not isinstance(e, Exception):
            raise
        cause = sink.error if sink is not None and sink.error is not None else e
        raise error(f"{what} {path} {failed}: {describe_error(cause)}") from e
    return path


def _link_no_clobber(tmp: Path, path: Path, *, what: str, force_flag: str) -> None:
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise OutputError(f"{what} {path} already exists; pass {force_flag} to replace it") from None
    except OSError as e:
        if e.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK, errno.EXDEV):
            raise
        # A file system without hard links: the check above is as close as it gets.
        if os.path.lexists(path):
            raise OutputError(f"{what} {path} already exists; pass {force_flag} to replace it") from None
        os.replace(tmp, path)
        return
    _remove(tmp)


def _sync(tmp: Path) -> None:
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _keep_mode(path: Path, tmp: Path) -> None:
    """A replaced file keeps its permission bits."""
    with contextlib.suppress(OSError):
        os.chmod(tmp, stat.S_IMODE(os.stat(path).st_mode))


def _remove(tmp: Path) -> None:
    with contextlib.suppress(OSError):
        tmp.unlink(missing_ok=True)
