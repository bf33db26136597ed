"""Real full and read-only disks for tests: a tiny tmpfs mounted for the test, unmounted after.

Mounting needs root (the test machines run as root); elsewhere :class:`MountUnavailable` is raised
and tests skip. Nothing is simulated: writes on these mounts fail with the kernel's own ``ENOSPC``
or ``EROFS``, exactly as on a real disk.

    with full_tmpfs(tmp_path / "disk") as disk:        # 0 bytes free
        ...
    with tmpfs(tmp_path / "ro", readonly=True) as ro:  # "Read-only file system"
        ...
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path


class MountUnavailable(RuntimeError):
    """This process cannot mount a tmpfs (not root, no ``mount``, or the kernel refused)."""


@contextlib.contextmanager
def tmpfs(where: str | os.PathLike[str], *, size: str = "256k", readonly: bool = False) -> Iterator[Path]:
    """Mount a tmpfs of ``size`` at ``where`` (created if needed); unmount it afterwards."""
    where = Path(where)
    if os.geteuid() != 0:
        raise MountUnavailable("mounting a tmpfs needs root")
    if shutil.which("mount") is None or shutil.which("umount") is None:
        raise MountUnavailable("no mount/umount command")
    where.mkdir(parents=True, exist_ok=True)
    opts = f"size={size},mode=0755" + (",ro" if readonly else "")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(where)], capture_output=True,
                          text=True, check=False)
    if done.returncode != 0:
        raise MountUnavailable(f"cannot mount a tmpfs at {where}: {done.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True, check=False)


def fill(disk: str | os.PathLike[str], *, free: int = 0) -> Path:
    """Fill the file system of ``disk`` with a hidden filler file until at most ``free`` bytes (rounded
    down to whole blocks) can still be written. Returns the filler's path."""
    filler = Path(disk) / ".filler"
    st = os.statvfs(disk)
    keep = free // st.f_frsize
    with open(filler, "ab", buffering=0) as f:
        block = b"\0" * st.f_frsize
        while os.statvfs(disk).f_bavail > keep:
            try:
                f.write(block)
            except OSError as e:
                if e.errno != errno.ENOSPC:
                    raise
                break
    return filler


@contextlib.contextmanager
def full_tmpfs(where: str | os.PathLike[str], *, size: str = "256k", free: int = 0) -> Iterator[Path]:
    """A tmpfs of ``size`` at ``where`` with about ``free`` bytes left (0: every write of data fails
    with ``No space left on device``; creating an empty file still succeeds)."""
    with tmpfs(where, size=size) as disk:
        fill(disk, free=free)
        yield disk
