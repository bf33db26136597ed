"""A data folder hdi cannot write stops ``hdi ingest`` before any download, with one line naming the
folder and the user (issue 18: the Docker volume owned by root, a read-only mount).

The first tests run ``hdi ingest`` as an unprivileged OS user created for the test (``useradd``;
root only, removed afterwards), through the local gateway, with ``HDI_DATA_DIR`` on a folder that
user cannot write. The project's venv interpreter lives under /root, which that user cannot enter,
so hdi runs on the system's Python 3.11 with the venv's site-packages on ``PYTHONPATH``; the tests
skip when that cannot import hdi.
"""

from __future__ import annotations

import datetime as dt
import os
import pwd
import shutil
import site
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from hdi.testing.disks import MountUnavailable, tmpfs

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "ohlcv_1d.yaml"
KEY = "db-test-0123456789abcdefABCDEF"


@dataclass
class OsUser:
    name: str
    uid: int
    gid: int
    python: str
    pythonpath: str


def _python_for(user: OsUser) -> str | None:
    """A Python 3.11 the user can run that imports hdi and its dependencies, or None."""
    for cand in ("/usr/bin/python3.11", "/usr/local/bin/python3.11", shutil.which("python3.11") or ""):
        if not cand or not os.path.exists(cand):
            continue
        done = subprocess.run(_as(user, cand, "-c", "import hdi.cli.app, duckdb, databento, polars"),
                              env={"PYTHONPATH": user.pythonpath, "PATH": os.environ.get("PATH", "")},
                              capture_output=True, text=True, cwd="/", timeout=120, check=False)
        if done.returncode == 0:
            return cand
    return None


def _as(user: OsUser, *cmd: str) -> list[str]:
    return ["setpriv", f"--reuid={user.uid}", f"--regid={user.gid}", "--clear-groups", *cmd]


@pytest.fixture(scope="module")
def os_user() -> Iterator[OsUser]:
    if os.geteuid() != 0:
        pytest.skip("creating an OS user needs root")
    if not (shutil.which("useradd") and shutil.which("userdel") and shutil.which("setpriv")):
        pytest.skip("useradd, userdel or setpriv is missing")
    name = f"hdit{uuid.uuid4().hex[:8]}"
    subprocess.run(["useradd", "--no-create-home", "--user-group", "--shell", "/usr/sbin/nologin", name],
                   check=True, capture_output=True)
    try:
        pw = pwd.getpwnam(name)
        user = OsUser(name, pw.pw_uid, pw.pw_gid, "", os.pathsep.join([str(ROOT), *site.getsitepackages()]))
        python = _python_for(user)
        if python is None:
            pytest.skip(f"no Python 3.11 that user {name} can run with hdi's dependencies importable")
        user.python = python
        yield user
    finally:
        subprocess.run(["userdel", name], check=False, capture_output=True)


@pytest.fixture
def shared(tmp_path: Path) -> Iterator[Path]:
    """A folder the test user can enter (pytest's tmp_path is private to root), owned by root."""
    base = Path(tempfile.mkdtemp(prefix="hdi-perm-"))
    base.chmod(0o755)
    yield base
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def user_gateway(shared: Path):
    """The local gateway, its CA certificate readable by the test user."""
    from hdi.testing.gateway import Gateway

    certs = shared / "gateway"
    certs.mkdir(mode=0o755)
    with Gateway(state_dir=certs, now=dt.datetime(2026, 1, 15, tzinfo=dt.UTC)) as gw:
        gw.ca_path.chmod(0o644)
        yield gw


def _ingest_as(user: OsUser, shared: Path, gw, data: Path, *more: str) -> subprocess.CompletedProcess:
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": user.pythonpath, "HOME": str(shared),
           "HDI_DATA_DIR": str(data), "DATABENTO_API_KEY": KEY, "HDI_NO_PROGRESS": "1", **gw.env()}
    return subprocess.run(_as(user, user.python, "-m", "hdi.cli", "ingest", "--recipe", str(RECIPE), "--start",
                              "2024-11-01", "--end", "2024-12-01", *more),
                          env=env, cwd=shared, capture_output=True, text=True, timeout=300, check=False)


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.mark.parametrize("store", ["duckdb", pytest.param("timescale", marks=pytest.mark.timescale)])
def test_a_data_folder_the_user_cannot_write_stops_ingest_before_any_download(
        os_user, shared, user_gateway, request, store):
    data = shared / "data"
    data.mkdir(mode=0o755)  # owned by root, as Docker makes a volume's mount point it did not find
    more = [] if store == "duckdb" else ["--store", request.getfixturevalue("timescale_schema_url")]
    res = _ingest_as(os_user, shared, user_gateway, data, *more)
    who = f"user {os_user.name} (uid {os_user.uid})"
    assert res.stderr.splitlines() == [
        f"error: log folder {data}/logs cannot be created: folder {data} is not writable by {who}: Permission "
        "denied; make it writable for that user or set HDI_DATA_DIR to another folder"], res.stderr
    assert res.returncode == 1 and res.stdout == ""
    assert user_gateway.requests == []  # nothing asked of Databento, nothing downloaded
    assert _files(data) == []
    if store == "timescale":
        from hdi.store import open_store

        assert not open_store(more[1]).has_table("ingest_runs")


@pytest.mark.parametrize(("part", "what"), [("raw", "raw cache folder"), ("quarantine", "quarantine folder"),
                                            ("logs", "log folder")])
def test_a_part_of_the_data_folder_the_user_cannot_write_is_named(os_user, shared, user_gateway, part, what):
    data = shared / "data"
    data.mkdir(mode=0o755)
    os.chown(data, os_user.uid, os_user.gid)  # the user's own folder ...
    (data / part).mkdir(mode=0o755)  # ... with one part left to root
    res = _ingest_as(os_user, shared, user_gateway, data)
    assert res.stderr.splitlines() == [
        f"error: {what} {data / part} is not writable by user {os_user.name} (uid {os_user.uid}): Permission "
        "denied; make it writable for that user or set HDI_DATA_DIR to another folder"], res.stderr
    assert res.returncode == 1
    assert user_gateway.requests == []
    # folders at most (and the run's log file): no store, no cache file, no quarantine file
    assert [p.name for p in data.rglob("*") if p.is_file() and p.parent != data / "logs"] == []


def test_the_same_run_as_that_user_with_a_folder_it_owns_loads(os_user, shared, user_gateway):
    data = shared / "data"
    data.mkdir(mode=0o755)
    os.chown(data, os_user.uid, os_user.gid)
    res = _ingest_as(os_user, shared, user_gateway, data)
    assert res.returncode == 0, res.stderr
    assert (data / "hdi.duckdb").stat().st_uid == os_user.uid
    assert len(user_gateway.calls("timeseries.get_range")) == 2


def test_a_read_only_data_folder_is_one_line_naming_it_even_for_root(gateway, cli, any_store_url, tmp_path,
                                                                     monkeypatch):
    try:
        with tmpfs(tmp_path / "ro", readonly=True) as ro:
            monkeypatch.setenv("HDI_DATA_DIR", str(ro))
            res = cli("ingest", "--recipe", RECIPE, "--start", "2024-11-01", "--end", "2024-12-01",
                      "--store", any_store_url)
            assert _files(ro) == []
    except MountUnavailable as e:
        pytest.skip(str(e))
    from hdi._config import current_user

    assert res.exit_code == 1
    assert res.stderr.splitlines() == [
        f"error: log folder {ro}/logs cannot be created: folder {ro} is not writable by user {current_user()}: "
        "Read-only file system; make it writable for that user or set HDI_DATA_DIR to another folder"]
    assert gateway.requests == []


def test_the_library_checks_every_folder_before_the_store_or_the_network(gateway, any_store_url, tmp_path,
                                                                         monkeypatch):
    from hdi.errors import ConfigError
    from hdi.pipeline import ingest

    try:
        with tmpfs(tmp_path / "ro", readonly=True) as ro:
            monkeypatch.setenv("HDI_CACHE_DIR", str(ro / "raw"))
            with pytest.raises(ConfigError) as e:
                ingest(RECIPE, start="2024-11-01", end="2024-12-01", store=any_store_url)
    except MountUnavailable as err:
        pytest.skip(str(err))
    assert str(e.value).startswith(f"raw cache folder {ro}/raw cannot be created: folder {ro} is not writable by user ")
    assert str(e.value).endswith("Read-only file system; make it writable for that user or set HDI_CACHE_DIR to "
                                 "another folder")
    assert gateway.requests == []
    from hdi.store import open_store

    assert not open_store(any_store_url).has_table("ingest_runs")
