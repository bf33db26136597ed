"""`hdi ingest ... | head -1`: a closed pipe on stdout or stderr stops the output, never the load."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from hdi.store import open_store

ROOT = Path(__file__).resolve().parents[2]
FILES = ["GLBX.MDP3", "EQUS.MINI", "IFEU.IMPACT", "NDEX.IMPACT"]  # 4 trades each


def _args(samples_dir: Path, store: str, *extra: str) -> list[str]:
    args = [sys.executable, "-m", "hdi", "ingest", "--recipe", str(ROOT / "recipes" / "trades.yaml"),
            "--store", store, "--no-progress", *extra]
    for d in FILES:
        args += ["--from-file", str(samples_dir / d / "test_data.trades.dbn.zst")]
    return args


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def _closed_pipe() -> int:
    """The write end of a pipe whose reader is gone: every write to it fails with EPIPE."""
    r, w = os.pipe()
    os.close(r)
    return w


def _loaded(store: str) -> tuple[int, str]:
    st = open_store(store)
    rows = int(st.query("SELECT count(*) AS n FROM trades").item())
    return rows, st.runs(limit=1)["status"][0]


def test_an_ingest_whose_output_pipe_is_closed_loads_everything_and_exits_0(samples_dir, any_store_url):
    w = _closed_pipe()
    try:
        r = subprocess.run(_args(samples_dir, any_store_url), stdout=w, stderr=w, env=_env(), timeout=300)
    finally:
        os.close(w)
    assert r.returncode == 0
    assert _loaded(any_store_url) == (16, "succeeded")


def test_ingest_2_to_1_piped_to_head_1_prints_one_line_and_loads_all_4_files(samples_dir, any_store_url):
    cmd = " ".join(f"'{a}'" for a in _args(samples_dir, any_store_url)) + ' 2>&1 | head -1; exit "${PIPESTATUS[0]}"'
    r = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, env=_env(), timeout=300)
    assert r.returncode == 0, r.stdout
    assert r.stdout.startswith("[1/4] done ") and r.stdout.count("\n") == 1
    assert _loaded(any_store_url) == (16, "succeeded")


def test_a_dry_run_whose_stdout_is_closed_still_prints_its_summary_and_exits_0(samples_dir, tmp_path):
    w = _closed_pipe()
    try:
        r = subprocess.run(_args(samples_dir, f"duckdb://{tmp_path / 's.duckdb'}", "--dry-run"), stdout=w,
                           stderr=subprocess.PIPE, text=True, env=_env(), timeout=300)
    finally:
        os.close(w)
    assert r.returncode == 0, r.stderr
    assert "4 planned: 0 loaded, 0 already done, 0 failed, 4 estimated" in r.stderr
    assert "Traceback" not in r.stderr and "BrokenPipe" not in r.stderr
