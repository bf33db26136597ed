"""The raw cache never serves a damaged file: every hit is checked against its sidecar first.

Real client, real gateway, real files: each test damages a cached file the way a disk, a copy or a
person would (cut short, recompressed shorter, garbage, a corrupt zstd frame, a flipped byte, an
old or missing sidecar) and asserts that the next fetch discards it with a warning naming it,
downloads it again (one more ``get_range``) and ends with a file equal to the original.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
import zstandard

from hdi.source.cache import RawCache
from hdi.source.chunks import Request
from hdi.source.databento import DatabentoSource, RetryPolicy
from hdi.source.files import open_dbn

FAST = RetryPolicy(attempts=4, base_delay=0.01, max_delay=0.05, jitter=0.0)

# The request of the report in issue 8: exactly 60,004 trades.
ES_DAY = Request("GLBX.MDP3", "trades", "continuous", ("ES.c.0",), datetime(2024, 12, 3, tzinfo=UTC),
                 datetime(2024, 12, 4, tzinfo=UTC))
ES_DAY_RECORDS = 60_004


def get_ranges(gateway) -> int:
    return len(gateway.calls("timeseries.get_range"))


def files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) if root.exists() else []


def records_in(path: Path) -> int:
    """Whole records in a DBN file, counted by decompressing it (independently of the cache code)."""
    raw = zstandard.ZstdDecompressor().stream_reader(path.read_bytes(), read_across_frames=True).read()
    meta = 8 + int.from_bytes(raw[4:8], "little")
    size = open_dbn(path).record_class._dtypes
    import numpy as np

    return (len(raw) - meta) // np.dtype(size).itemsize


# ------------------------------------------------------------------------------ damage
def cut_to_60_percent(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 6 // 10])


def cut_at_a_record_boundary_and_recompress(path: Path) -> None:
    """Half the records, whole, in a valid zstd stream: only a count or a hash can tell."""
    import numpy as np

    raw = zstandard.ZstdDecompressor().stream_reader(path.read_bytes(), read_across_frames=True).read()
    meta = 8 + int.from_bytes(raw[4:8], "little")
    size = np.dtype(open_dbn(path).record_class._dtypes).itemsize
    half = (len(raw) - meta) // size // 2
    path.write_bytes(zstandard.ZstdCompressor().compress(raw[: meta + half * size]))


def garbage(path: Path) -> None:
    path.write_bytes(random.Random(8).randbytes(path.stat().st_size))


def corrupt_zstd_frame(path: Path) -> None:
    data = bytearray(path.read_bytes())
    mid = len(data) // 2
    data[mid:mid + 256] = bytes(256)
    path.write_bytes(bytes(data))


def flip_one_byte(path: Path) -> None:
    """A single flipped byte late in the file: a stream without checksums may still decompress."""
    data = bytearray(path.read_bytes())
    data[-100] ^= 0x01
    path.write_bytes(bytes(data))


DAMAGE: dict[str, Callable[[Path], None]] = {
    "cut_to_60_percent": cut_to_60_percent,
    "cut_at_record_boundary_recompressed": cut_at_a_record_boundary_and_recompress,
    "garbage": garbage,
    "corrupt_zstd_frame": corrupt_zstd_frame,
    "one_byte_flipped": flip_one_byte,
}


@pytest.fixture
def cached(source: DatabentoSource, gateway) -> tuple[Path, bytes]:
    """ES_DAY fetched once: (its cache path, its original bytes)."""
    path = source.fetch(ES_DAY)
    assert get_ranges(gateway) == 1
    return path, path.read_bytes()


# ------------------------------------------------------------------------------ sidecar
def test_the_sidecar_records_count_size_and_hash_of_the_file(cached):
    path, original = cached
    side = json.loads(path.with_name(f"{ES_DAY.key}.json").read_text())
    assert side["records"] == records_in(path) == ES_DAY_RECORDS
    assert side["file_bytes"] == len(original) == path.stat().st_size
    assert side["sha256"] == hashlib.sha256(original).hexdigest()


def test_an_intact_file_is_served_without_any_http_call(source, gateway, cached):
    path, original = cached
    assert DatabentoSource(retry=FAST).fetch(ES_DAY) == path
    assert get_ranges(gateway) == 1 and path.read_bytes() == original


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_file_is_discarded_with_a_warning_and_downloaded_again(gateway, cached, caplog, damage):
    path, original = cached
    DAMAGE[damage](path)
    assert path.read_bytes() != original
    fresh = DatabentoSource(retry=FAST)
    with caplog.at_level(logging.WARNING, logger="hdi.source"):
        assert fresh.is_cached(ES_DAY) is False  # checked, found damaged, discarded
        got = fresh.fetch(ES_DAY)
    assert get_ranges(gateway) == 2
    assert got == path and path.read_bytes() == original and records_in(path) == ES_DAY_RECORDS
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings
    assert warnings[0].startswith(f"raw cache file {path} is damaged (")
    assert warnings[0].endswith("); discarded, it will be downloaded again")
    assert files(fresh.cache.root) == [f"GLBX.MDP3/trades/{ES_DAY.key}.dbn.zst", f"GLBX.MDP3/trades/{ES_DAY.key}.json"]


@pytest.mark.parametrize("damage", [d for d in DAMAGE if d != "one_byte_flipped"])
def test_a_damaged_file_is_caught_without_the_hash_too(gateway, cached, damage):
    """An old sidecar (no sha256, no file size) still catches every damage that changes the record
    count or breaks the stream. (A flipped byte that still decompresses needs the hash: sidecars
    written before hashes get theirs on the first hit that passes every other check.)"""
    path, original = cached
    side_path = path.with_name(f"{ES_DAY.key}.json")
    side = json.loads(side_path.read_text())
    side_path.write_text(json.dumps({k: v for k, v in side.items() if k not in ("sha256", "file_bytes")}))
    DAMAGE[damage](path)
    fresh = DatabentoSource(retry=FAST)
    got = fresh.fetch(ES_DAY)
    assert get_ranges(gateway) == 2 and got.read_bytes() == original


def test_an_old_sidecar_is_verified_by_count_then_upgraded_with_the_hash(gateway, cached):
    path, original = cached
    side_path = path.with_name(f"{ES_DAY.key}.json")
    side = json.loads(side_path.read_text())
    side_path.write_text(json.dumps({k: v for k, v in side.items() if k != "sha256"}))
    assert DatabentoSource(retry=FAST).fetch(ES_DAY) == path
    assert get_ranges(gateway) == 1  # nothing downloaded: count, sizes and metadata all agree
    assert json.loads(side_path.read_text())["sha256"] == hashlib.sha256(original).hexdigest()


@pytest.mark.parametrize("sidecar", ["missing", "not_json", "no_record_count", "other_request"])
def test_a_file_whose_sidecar_cannot_vouch_for_it_is_downloaded_again(gateway, cached, caplog, sidecar):
    path, original = cached
    side_path = path.with_name(f"{ES_DAY.key}.json")
    side = json.loads(side_path.read_text())
    if sidecar == "missing":
        side_path.unlink()
    elif sidecar == "not_json":
        side_path.write_text("{not json")
    elif sidecar == "no_record_count":
        side_path.write_text(json.dumps({k: v for k, v in side.items() if k not in ("records", "sha256")}))
    else:
        side_path.write_text(json.dumps({**side, "symbols": ["NQ.c.0"]}))
    with caplog.at_level(logging.WARNING, logger="hdi.source"):
        DatabentoSource(retry=FAST).fetch(ES_DAY)
    assert get_ranges(gateway) == 2 and path.read_bytes() == original
    assert [r.getMessage().split(" is damaged")[0] for r in caplog.records] == [f"raw cache file {path}"]
    assert json.loads(side_path.read_text())["symbols"] == ["ES.c.0"]


# ------------------------------------------------------------------------------ credentials
def test_gateway_credentials_are_never_written_to_the_sidecar(gateway, monkeypatch):
    host = gateway.url.split("://", 1)[1]
    monkeypatch.setenv("HDI_DATABENTO_GATEWAY", f"https://hdi-user:S3cr%40t p@ss@{host}")
    src = DatabentoSource(retry=FAST)
    path = src.fetch(ES_DAY)
    side = json.loads(path.with_name(f"{ES_DAY.key}.json").read_text())
    assert side["source"] == f"https://{host}"
    for text in (path.with_name(f"{ES_DAY.key}.json").read_text(), repr(src)):
        assert "hdi-user" not in text and "S3cr" not in text and "p@ss" not in text


def test_a_gateway_without_a_scheme_keeps_no_credentials_either():
    from hdi.source.cache import public_source

    assert public_source("u:pw@gw.example:8443/x?token=abc") == "https://gw.example:8443"
    assert public_source("https://u:p/w@gw.example") == "https://gw.example"
    assert public_source("u:a://b@gw.example") == "https://gw.example"
    assert public_source("HTTP://u%40x:p@gw.example:80#f") == "http://gw.example:80"
    assert public_source(None) == "databento"


# ------------------------------------------------------------------------------ commit failures
def test_a_failed_commit_leaves_no_partial_files(source, gateway, monkeypatch, tmp_path):
    """The sidecar cannot be written (here: its folder entry is taken by a directory): the new file
    is not left behind without a sidecar, and no temporary file remains."""
    cache = RawCache(tmp_path / "raw")
    src = DatabentoSource(retry=FAST, cache_dir=cache.root)
    cache.sidecar_for(ES_DAY).mkdir(parents=True)  # os.replace(file, directory) fails
    from hdi.errors import SourceError

    with pytest.raises(SourceError) as info:
        src.fetch(ES_DAY)
    assert str(info.value).startswith(f"could not move the download of {ES_DAY.describe()} into the raw cache "
                                      f"{cache.folder(ES_DAY)}: ")
    assert files(cache.root) == [] and get_ranges(gateway) == 1


@pytest.fixture
def tmpfs(tmp_path: Path):
    """A 2 MiB tmpfs (root only; skipped where mounting is not permitted); unmounted afterwards."""
    import os
    import subprocess

    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mnt = tmp_path / "tmpfs"
    mnt.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)], capture_output=True,
                          text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_a_disk_that_fills_up_at_the_sidecar_fails_at_once_and_leaves_nothing(gateway, cached, tmpfs):
    """The download fits exactly, its sidecar does not: one local error naming the folder, no retry,
    and neither the download nor any temporary file stays behind."""
    import os

    from hdi.errors import SourceError

    _, original = cached
    cache = RawCache(tmpfs / "raw")
    cache.folder(ES_DAY).mkdir(parents=True)
    page = os.statvfs(tmpfs).f_bsize
    need = -(-len(original) // page)  # pages the download takes
    free = os.statvfs(tmpfs).f_bavail
    (tmpfs / "filler").write_bytes(b"\0" * (free - need) * page)
    assert os.statvfs(tmpfs).f_bavail == need
    with pytest.raises(SourceError) as info:
        DatabentoSource(retry=FAST, cache_dir=cache.root).fetch(ES_DAY)
    assert str(info.value) == (f"no space left on device: cannot write the download of {ES_DAY.describe()} to the "
                               f"raw cache {cache.folder(ES_DAY)} (HDI_CACHE_DIR); free space there or point "
                               "HDI_CACHE_DIR at a larger disk")
    assert info.value.transient is False and get_ranges(gateway) == 2  # the cached fixture's + this one
    assert files(cache.root) == []
