"""Issue 8: a damaged raw cache never loads as done, and a full cache disk is reported as such.

The chunk is the report's own: ``trades GLBX.MDP3 ES.c.0`` on 2024-12-03, 60,004 trades at the
test gateway. A first run fills the cache (into a throwaway store); the cached file is then
damaged and the chunk ingested into a fresh store of each backend: the file must be discarded with
a warning naming it, downloaded again, and exactly 60,004 rows loaded, the chunk ``done`` only then.
"""

from __future__ import annotations

import logging
import os
import random
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import zstandard

from hdi.pipeline import ingest
from hdi.source.files import open_dbn
from hdi.store import open_store

ROOT = Path(__file__).resolve().parents[2]
RECIPE = ROOT / "recipes" / "trades.yaml"
ARGS = {"start": "2024-12-03", "end": "2024-12-04", "symbols": "ES.c.0"}
LABEL = "GLBX.MDP3 trades ES.c.0 [2024-12-03T00:00:00Z, 2024-12-04T00:00:00Z)"
FULL = 60_004  # the report's row count; asserted equal to Databento's own record count below


def get_ranges(gateway) -> int:
    return len(gateway.calls("timeseries.get_range"))


def rows(url: str) -> int:
    st = open_store(url)
    return int(st.query("SELECT count(*) AS n FROM trades").item()) if st.has_table("trades") else 0


def chunk_rows(url: str) -> list[tuple[str, int | None]]:
    st = open_store(url)
    return [(s, n) for s, n in st.chunks().select("status", "rows_fetched").iter_rows()]


def first_run(tmp_path: Path, gateway) -> Path:
    """Ingest the chunk once into a throwaway store; return the cached file."""
    report = ingest(RECIPE, **ARGS, store=f"duckdb://{tmp_path / 'first.duckdb'}")
    assert report.ok and report.rows_loaded == FULL and get_ranges(gateway) == 1
    (cached,) = (Path(os.environ["HDI_DATA_DIR"]) / "raw").rglob("*.dbn.zst")
    return cached


def _records_and_raw(path: Path) -> tuple[bytes, int, int]:
    raw = zstandard.ZstdDecompressor().stream_reader(path.read_bytes(), read_across_frames=True).read()
    return raw, 8 + int.from_bytes(raw[4:8], "little"), np.dtype(open_dbn(path).record_class._dtypes).itemsize


def cut_to_60_percent(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 6 // 10])


def cut_at_a_record_boundary_and_recompress(path: Path) -> None:
    raw, meta, size = _records_and_raw(path)
    assert (len(raw) - meta) // size == FULL
    path.write_bytes(zstandard.ZstdCompressor().compress(raw[: meta + FULL // 2 * size]))


def garbage(path: Path) -> None:
    path.write_bytes(random.Random(8).randbytes(path.stat().st_size))


def corrupt_zstd_frame(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2: len(data) // 2 + 256] = bytes(256)
    path.write_bytes(bytes(data))


DAMAGE: dict[str, Callable[[Path], None]] = {
    "cut_to_60_percent": cut_to_60_percent,
    "cut_at_record_boundary_recompressed": cut_at_a_record_boundary_and_recompress,
    "garbage": garbage,
    "corrupt_zstd_frame": corrupt_zstd_frame,
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_cache_file_is_downloaded_again_and_loads_every_row(gateway, any_store_url, tmp_path, caplog,
                                                                      damage):
    dry = ingest(RECIPE, **ARGS, store=any_store_url, dry_run=True)
    assert [c.record_count for c in dry.chunks] == [FULL]  # what the source delivers, by its own count
    cached = first_run(tmp_path, gateway)
    original = cached.read_bytes()
    DAMAGE[damage](cached)

    with caplog.at_level(logging.WARNING, logger="hdi"):
        report = ingest(RECIPE, **ARGS, store=any_store_url)
    assert report.ok, [c.error for c in report.chunks]
    assert get_ranges(gateway) == 2  # downloaded again, automatically
    assert report.rows_fetched == report.rows_loaded == rows(any_store_url) == FULL
    assert chunk_rows(any_store_url) == [("done", FULL)]
    warned = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert any(m.startswith(f"raw cache file {cached} is damaged (") for m in warned), warned
    assert cached.read_bytes() == original

    again = ingest(RECIPE, **ARGS, store=any_store_url)  # done: nothing downloaded or loaded twice
    assert again.ok and again.count("skipped") == 1 and get_ranges(gateway) == 2 and rows(any_store_url) == FULL


def test_a_file_damaged_after_its_check_fails_the_chunk_instead_of_loading_part_of_it(
        gateway, any_store_url, tmp_path, monkeypatch):
    """Belt and braces: should the file change between the cache's check and the load, the loader's
    own count (30,002 decoded, 60,004 delivered) rolls the chunk back; the next run repairs it."""
    from hdi.source.databento import DatabentoSource

    real_fetch = DatabentoSource.fetch

    def fetch_then_damage(self, request, *, refresh=False, version=None):
        path = real_fetch(self, request, refresh=refresh, version=version)
        cut_at_a_record_boundary_and_recompress(path)
        return path

    monkeypatch.setattr(DatabentoSource, "fetch", fetch_then_damage)
    report = ingest(RECIPE, **ARGS, store=any_store_url)
    assert not report.ok and rows(any_store_url) == 0
    (chunk,) = report.chunks
    assert chunk.status == "failed"
    assert chunk.error.startswith(f"decoded {FULL // 2} records but the source delivered {FULL} (raw cache file ")
    assert chunk.error.endswith("); nothing of this chunk was stored, run the ingest again")
    assert [s for s, _ in chunk_rows(any_store_url)] == ["failed"]

    monkeypatch.setattr(DatabentoSource, "fetch", real_fetch)
    second = ingest(RECIPE, **ARGS, store=any_store_url)
    assert second.ok and get_ranges(gateway) == 2
    assert rows(any_store_url) == FULL and chunk_rows(any_store_url) == [("done", FULL)]


# ------------------------------------------------------------------------------- full disk
@pytest.fixture
def tiny_cache_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A 64 KiB tmpfs as HDI_CACHE_DIR (root only; skipped where mounting is not permitted)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mnt = tmp_path / f"cache-{uuid.uuid4().hex[:6]}"
    mnt.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)], capture_output=True,
                          text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        monkeypatch.setenv("HDI_CACHE_DIR", str(mnt))
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_a_full_cache_disk_is_one_clear_error_not_a_retried_network_failure(gateway, any_store_url, cli,
                                                                          tiny_cache_disk):
    result = cli("ingest", "--recipe", RECIPE, "--start", ARGS["start"], "--end", ARGS["end"], "--symbols",
                 ARGS["symbols"], "--store", any_store_url)
    assert result.exit_code == 1
    folder = tiny_cache_disk / "GLBX.MDP3" / "trades"
    errors = [ln for ln in result.stderr.splitlines() if "no space left" in ln]  # printed once
    assert len(errors) == 1 and errors[0].endswith(
        f"failed {LABEL}: no space left on device: cannot write the download of this chunk to the raw "
        f"cache {folder} (HDI_CACHE_DIR); free space there or point HDI_CACHE_DIR at a larger disk")
    assert "mid-stream" not in result.stderr and "retry" not in result.stderr
    assert get_ranges(gateway) == 1  # never retried
    assert [p for p in tiny_cache_disk.rglob("*") if p.is_file()] == []  # no .part or sidecar left
    assert rows(any_store_url) == 0 and [s for s, _ in chunk_rows(any_store_url)] == ["failed"]
