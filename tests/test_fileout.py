"""hdi._fileout: a file for a user is written whole or not at all, and never over what it must not
replace (an existing file without --force, a store, a link, a FIFO, a device, a directory)."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import duckdb
import polars as pl
import pytest

from hdi._fileout import check_target, describe_error, write_atomic
from hdi.errors import OutputError, QuarantineError
from hdi.testing.disks import MountUnavailable, full_tmpfs

FRAME = pl.DataFrame({"symbol": ["CL.c.0"] * 3, "close": [70.1, 70.2, 70.3]})


def _text(path: Path) -> str:
    return path.read_text()


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


@pytest.fixture
def full_disk(tmp_path: Path):
    try:
        with full_tmpfs(tmp_path / "full") as disk:
            yield disk
    except MountUnavailable as e:
        pytest.skip(str(e))


def test_a_new_file_is_written_whole_and_no_temporary_file_stays(tmp_path):
    out = write_atomic(tmp_path / "bars.csv", FRAME.write_csv)
    assert _text(out) == FRAME.write_csv()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bars.csv"]


def test_an_existing_file_is_refused_without_force_and_kept_as_it_was(tmp_path):
    out = tmp_path / "mine.csv"
    out.write_text("precious\n")
    with pytest.raises(OutputError) as e:
        write_atomic(out, FRAME.write_csv)
    assert str(e.value) == f"output {out} already exists; pass --force to replace it"
    assert _text(out) == "precious\n" and _leftovers(tmp_path) == []


def test_force_replaces_an_existing_file_and_keeps_its_permissions(tmp_path):
    out = tmp_path / "mine.csv"
    out.write_text("old\n")
    out.chmod(0o640)
    write_atomic(out, FRAME.write_csv, force=True)
    assert _text(out) == FRAME.write_csv()
    assert stat.S_IMODE(out.stat().st_mode) == 0o640
    assert _leftovers(tmp_path) == []


def test_a_file_that_appears_while_writing_is_not_replaced(tmp_path):
    out = tmp_path / "race.csv"

    def write(f) -> None:
        FRAME.write_csv(f)
        out.write_text("another writer's\n")  # created after the check, before the rename

    with pytest.raises(OutputError, match="already exists; pass --force"):
        write_atomic(out, write)
    assert _text(out) == "another writer's\n" and _leftovers(tmp_path) == []


def test_the_store_in_use_and_its_wal_are_refused_even_with_force(tmp_path):
    store = tmp_path / "hdi.duckdb"
    wal = tmp_path / "hdi.duckdb.wal"
    store.write_bytes(b"not yet a database")
    wal.write_bytes(b"wal")
    for target in (store, wal):
        with pytest.raises(OutputError) as e:
            write_atomic(target, FRAME.write_csv, force=True, protect=[store, wal])
        assert str(e.value) == (f"output {target} is the store hdi reads and writes; hdi never writes over a store, "
                                "even with --force: choose another file")
    assert store.read_bytes() == b"not yet a database" and wal.read_bytes() == b"wal"


def test_a_hard_link_to_the_store_is_the_store(tmp_path):
    store = tmp_path / "hdi.duckdb"
    store.write_bytes(b"x")
    alias = tmp_path / "alias.csv"
    os.link(store, alias)
    with pytest.raises(OutputError, match="is the store hdi reads and writes"):
        check_target(alias, force=True, protect=[store])


def test_any_duckdb_database_is_refused_even_with_force(tmp_path):
    db = tmp_path / "other.db"
    con = duckdb.connect(str(db))
    con.execute("CREATE TABLE t AS SELECT 42 AS x")
    con.close()
    before = db.read_bytes()
    with pytest.raises(OutputError) as e:
        write_atomic(db, FRAME.write_parquet, force=True)
    assert str(e.value) == (f"output {db} is a DuckDB database; hdi never writes over a database file, even with "
                            "--force: choose another file")
    assert db.read_bytes() == before
    assert duckdb.connect(str(db), read_only=True).execute("SELECT x FROM t").fetchone() == (42,)


@pytest.mark.parametrize("force", [False, True])
def test_a_symlink_is_refused_and_neither_it_nor_its_target_changes(tmp_path, force):
    target = tmp_path / "real.csv"
    target.write_text("real\n")
    link = tmp_path / "link.csv"
    link.symlink_to(target)
    with pytest.raises(OutputError) as e:
        write_atomic(link, FRAME.write_csv, force=force)
    assert str(e.value) == (f"output {link} is a symbolic link to {target}; hdi does not write through or replace "
                            f"a link: give its target {target} instead")
    assert link.is_symlink() and os.readlink(link) == str(target) and _text(target) == "real\n"


def test_a_dangling_symlink_is_refused_and_nothing_is_created_at_its_target(tmp_path):
    link = tmp_path / "link.csv"
    link.symlink_to(tmp_path / "nowhere.csv")
    with pytest.raises(OutputError, match="is a symbolic link to"):
        write_atomic(link, FRAME.write_csv, force=True)
    assert not (tmp_path / "nowhere.csv").exists() and link.is_symlink()


@pytest.mark.parametrize("force", [False, True])
def test_a_fifo_is_refused_at_once_without_blocking(tmp_path, force):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    done: list[BaseException] = []
    t = threading.Thread(target=lambda: done.append(pytest.raises(OutputError, write_atomic, fifo, FRAME.write_csv,
                                                                  force=force).value))
    t.start()
    t.join(5)
    assert not t.is_alive(), "writing to a FIFO blocked"
    assert str(done[0]) == (f"output {fifo} is a FIFO (named pipe), not a regular file; hdi writes only regular "
                            "files (write to a file, or send --format csv to stdout)")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


@pytest.mark.skipif(os.geteuid() != 0, reason="creating a device node needs root")
@pytest.mark.parametrize("force", [False, True])
def test_a_device_is_refused_and_the_node_stays_a_device(tmp_path, force):
    dev = tmp_path / "full"  # a second node for /dev/full's device (1, 7); the real one is never at risk
    os.mknod(dev, 0o666 | stat.S_IFCHR, os.makedev(1, 7))
    with pytest.raises(OutputError) as e:
        write_atomic(dev, FRAME.write_csv, force=force)
    assert str(e.value) == (f"output {dev} is a character device, not a regular file; hdi writes only regular "
                            "files (write to a file, or send --format csv to stdout)")
    assert stat.S_ISCHR(os.lstat(dev).st_mode) and os.lstat(dev).st_rdev == os.makedev(1, 7)


def test_a_directory_and_a_missing_folder_are_refused(tmp_path):
    with pytest.raises(OutputError, match=f"^output {tmp_path} is a directory; give a file path$"):
        write_atomic(tmp_path, FRAME.write_csv, force=True)
    missing = tmp_path / "no" / "x.csv"
    with pytest.raises(OutputError, match=f"^output {missing}: folder {missing.parent} does not exist$"):
        write_atomic(missing, FRAME.write_csv)
    assert not missing.parent.exists()


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_a_full_disk_is_one_error_naming_the_file_and_leaves_no_temporary_file(full_disk, fmt):
    out = full_disk / f"bars.{fmt}"
    big = pl.DataFrame({"x": range(200_000)})
    with pytest.raises(OutputError) as e:
        write_atomic(out, big.write_csv if fmt == "csv" else big.write_parquet)
    assert str(e.value) == f"output {out} cannot be written: No space left on device"
    assert sorted(p.name for p in full_disk.iterdir()) == [".filler"]


def test_a_full_disk_keeps_the_file_that_force_would_have_replaced(full_disk):
    out = full_disk / "bars.csv"
    (full_disk / ".filler").unlink()
    out.write_text("previous result\n")
    from hdi.testing.disks import fill

    fill(full_disk)
    with pytest.raises(OutputError, match="No space left on device"):
        write_atomic(out, pl.DataFrame({"x": range(200_000)}).write_csv, force=True)
    assert _text(out) == "previous result\n"
    assert sorted(p.name for p in full_disk.iterdir()) == [".filler", "bars.csv"]


def test_a_failing_writer_or_ctrl_c_leaves_no_temporary_file(tmp_path):
    def broken(f) -> None:
        f.write(b"half")
        raise pl.exceptions.ComputeError("parquet: underlying IO error: Disk quota exceeded (os error 122)")

    with pytest.raises(QuarantineError) as e:
        write_atomic(tmp_path / "q.parquet", broken, error=QuarantineError, what="quarantine file")
    assert str(e.value) == f"quarantine file {tmp_path / 'q.parquet'} cannot be written: Disk quota exceeded"

    def interrupted(f) -> None:
        f.write(b"half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_atomic(tmp_path / "x.csv", interrupted)
    assert list(tmp_path.iterdir()) == []


def test_describe_error_reduces_polars_and_os_errors_to_the_reason():
    assert describe_error(OSError(28, "No space left on device")) == "No space left on device"
    assert describe_error(OSError("No space left on device (os error 28)")) == "No space left on device"
    assert describe_error(pl.exceptions.ComputeError("parquet: File out of specification: underlying IO error: "
                                                     "No space left on device (os error 28)")) == \
        "No space left on device"
