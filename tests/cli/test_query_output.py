"""``hdi query --output`` never destroys data, and a failing stdout is one line (issue 8, items 3, 7
and 8): an existing file needs ``--force``; the store, a symlink, a FIFO and a device are refused
even with it; a full disk leaves no temporary file; ``> /dev/full`` and a closed pipe are one line.
Rows come from the real pipeline through the local gateway, on both stores."""

from __future__ import annotations

import datetime as dt
import os
import stat
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import duckdb
import polars as pl
import pytest

import hdi
from hdi.pipeline import ingest
from hdi.testing.disks import MountUnavailable, full_tmpfs

ROOT = Path(__file__).resolve().parents[2]
RANGE = ("2024-11-01", "2024-12-01")
SYMBOLS = "CL.c.0"


def _admin(url: str, sql: str) -> None:
    import adbc_driver_postgresql.dbapi as pg

    with pg.connect(url, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(sql)


@pytest.fixture(scope="module", params=["duckdb", pytest.param("timescale", marks=pytest.mark.timescale)])
def filled(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One store per backend, filled once with a month of daily bars through the pipeline."""
    from hdi.store import close_all
    from hdi.testing.gateway import Gateway

    root = tmp_path_factory.mktemp("query-output")
    schema = None
    if request.param == "duckdb":
        url = f"duckdb://{root / 'hdi.duckdb'}"
    else:
        base = request.getfixturevalue("timescale_url")
        schema = f"hdi_o_{uuid.uuid4().hex[:12]}"
        _admin(base, f"CREATE SCHEMA {schema}")
        url = f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{schema},public"
    with pytest.MonkeyPatch.context() as mp, Gateway(now=dt.datetime(2026, 1, 15, tzinfo=dt.UTC)) as gw:
        for k in ("HDI_STORE", "HDI_CACHE_DIR", "HDI_QUARANTINE_DIR", "HDI_LOG_DIR"):
            mp.delenv(k, raising=False)
        for k, v in {**gw.env(), "DATABENTO_API_KEY": "db-test-0123456789abcdefABCDEF",
                     "HDI_DATA_DIR": str(root / "data")}.items():
            mp.setenv(k, v)
        r = ingest(ROOT / "recipes" / "ohlcv_1d.yaml", start=RANGE[0], end=RANGE[1], symbols=SYMBOLS, store=url)
        assert r.ok and r.rows_loaded > 0
    yield url
    close_all()
    if schema is not None:
        _admin(request.getfixturevalue("timescale_url"), f"DROP SCHEMA {schema} CASCADE")


def _want(url: str) -> pl.DataFrame:
    return hdi.read_bars(SYMBOLS, *RANGE, granularity="1d", store=url)


def _args(url: str, *more: object) -> list[str]:
    return ["query", "--schema", "ohlcv-1d", "--symbols", SYMBOLS, "--start", RANGE[0], "--end", RANGE[1],
            "--store", url, *[str(m) for m in more]]


def _one_error(res) -> str:
    assert res.exit_code == 1 and res.stdout == "", res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    return lines[0]


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.fixture
def full_disk(tmp_path: Path):
    try:
        with full_tmpfs(tmp_path / "full") as disk:
            yield disk
    except MountUnavailable as e:
        pytest.skip(str(e))


# ----------------------------------------------------------------------------------- the store
@pytest.mark.parametrize("force", [False, True])
def test_output_onto_the_store_is_refused_even_with_force_and_every_row_stays(cli, filled, tmp_path, force):
    if filled.startswith("duckdb://"):
        target = Path(filled.removeprefix("duckdb://"))  # the store being read
    else:  # a DuckDB store beside a TimescaleDB one (the default data/hdi.duckdb, say)
        target = tmp_path / "hdi.duckdb"
        con = duckdb.connect(str(target))
        con.execute("CREATE TABLE ohlcv AS SELECT 1 AS x")
        con.close()
    want = _want(filled)
    before = target.read_bytes()
    line = _one_error(cli(*_args(filled, "--format", "csv", "--output", target, *(["--force"] if force else []))))
    if filled.startswith("duckdb://"):
        assert line == (f"error: output {target} is the store hdi reads and writes; hdi never writes over a store, "
                        "even with --force: choose another file")
    else:
        assert line == (f"error: output {target} is a DuckDB database; hdi never writes over a database file, "
                        "even with --force: choose another file")
    assert target.read_bytes() == before
    assert _want(filled).equals(want) and want.height > 0  # every row still there
    assert [n for n in _files(target.parent) if n.endswith(".tmp")] == []


# ----------------------------------------------------------------------------------- existing files
def test_an_existing_file_is_kept_without_force_and_replaced_with_it(cli, filled, tmp_path):
    out = tmp_path / "bars.csv"
    out.write_text("my own notes\n")
    line = _one_error(cli(*_args(filled, "--format", "csv", "--output", out)))
    assert line == f"error: output {out} already exists; pass --force to replace it"
    assert out.read_text() == "my own notes\n"

    res = cli(*_args(filled, "--format", "csv", "--output", out, "--force"))
    assert res.exit_code == 0, res.stderr
    want = _want(filled)
    assert out.read_text() == want.write_csv()
    assert f"wrote {want.height:,} rows to {out}" in res.stderr
    assert _files(tmp_path) == ["bars.csv"]  # no temporary file beside it


def test_a_parquet_output_is_written_whole_through_a_temporary_file(cli, filled, tmp_path):
    out = tmp_path / "bars.parquet"
    res = cli(*_args(filled, "--format", "parquet", "--output", out))
    assert res.exit_code == 0, res.stderr
    assert pl.read_parquet(out).equals(_want(filled))
    assert _files(tmp_path) == ["bars.parquet"]


# ----------------------------------------------------------------------------------- links, FIFOs, devices
def test_a_symlink_is_refused_and_its_target_is_untouched(cli, filled, tmp_path):
    real = tmp_path / "real.csv"
    real.write_text("keep me\n")
    link = tmp_path / "link.csv"
    link.symlink_to(real)
    line = _one_error(cli(*_args(filled, "--format", "csv", "--output", link, "--force")))
    assert line == (f"error: output {link} is a symbolic link to {real}; hdi does not write through or replace a "
                    f"link: give its target {real} instead")
    assert link.is_symlink() and real.read_text() == "keep me\n"


def test_a_fifo_is_refused_and_stays_a_fifo(cli, filled, tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    line = _one_error(cli(*_args(filled, "--format", "csv", "--output", fifo, "--force")))
    assert line == (f"error: output {fifo} is a FIFO (named pipe), not a regular file; hdi writes only regular "
                    "files (write to a file, or send --format csv to stdout)")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


@pytest.mark.skipif(os.geteuid() != 0, reason="creating a device node needs root")
def test_a_device_is_refused_and_the_node_survives(cli, filled, tmp_path):
    dev = tmp_path / "full"  # a node for /dev/full's device, so the real node is never at risk
    os.mknod(dev, 0o666 | stat.S_IFCHR, os.makedev(1, 7))
    line = _one_error(cli(*_args(filled, "--format", "parquet", "--output", dev, "--force")))
    assert line == (f"error: output {dev} is a character device, not a regular file; hdi writes only regular "
                    "files (write to a file, or send --format csv to stdout)")
    assert stat.S_ISCHR(os.lstat(dev).st_mode) and os.lstat(dev).st_rdev == os.makedev(1, 7)


# ----------------------------------------------------------------------------------- full disks
@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_a_full_disk_is_one_line_and_leaves_no_temporary_file(cli, filled, full_disk, fmt):
    out = full_disk / f"bars.{fmt}"
    line = _one_error(cli(*_args(filled, "--format", fmt, "--output", out)))
    assert line == f"error: output {out} cannot be written: No space left on device"
    assert _files(full_disk) == [".filler"]


def _hdi(url: str, *more: str, stdout) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HDI_NO_PROGRESS": "1"}
    return subprocess.Popen([sys.executable, "-m", "hdi.cli", *_args(url, *more)], stdout=stdout,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)


@pytest.mark.parametrize("fmt", ["csv", "table"])
def test_stdout_on_a_full_disk_is_one_line(filled, fmt):
    with open("/dev/full", "w") as full:
        proc = _hdi(filled, "--format", fmt, stdout=full)
        _, err = proc.communicate(timeout=120)
    assert err.splitlines() == ["error: stdout could not be written (No space left on device)"]
    assert proc.returncode == 1


def test_stdout_closed_early_is_one_line(filled):
    proc = _hdi(filled, "--format", "csv", stdout=subprocess.PIPE)
    proc.stdout.close()  # the reader is gone before hdi writes a byte (like `| head -0`)
    err = proc.stderr.read()
    proc.wait(timeout=120)
    assert err.splitlines() == ["error: stdout was closed before all output was written (broken pipe)"]
    assert proc.returncode == 1
