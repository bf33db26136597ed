"""``make demo``: every query and status command it prints works when pasted into a shell after the
demo (its gateway gone), because each names the demo's store with ``--store``."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parents[2]

# the shipped daily recipe cut to November 2024 and CL.c.0, so the demo runs in seconds
SMALL = (ROOT / "recipes" / "ohlcv_1d.yaml").read_text().replace("start: 2024-01-01", "start: 2024-11-01").replace(
    "symbols: [CL.c.0, NG.c.0, HO.c.0, RB.c.0, ES.c.0]", "symbols: [CL.c.0]").replace(
    "    - {dataset: EQUS.MINI, stype_in: raw_symbol, symbols: [SPY]}\n", "").replace(
    "end: 2025-01-01", "end: 2024-12-01")


def test_demo_prints_query_commands_that_work_when_pasted(tmp_path):
    recipe = tmp_path / "demo_1d.yaml"
    recipe.write_text(SMALL)
    data = tmp_path / "demo"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HDI_", "DATABENTO_"))}
    done = subprocess.run([sys.executable, "-m", "hdi.testing.demo", "--recipe", str(recipe), "--data-dir", str(data)],
                          cwd=ROOT, env={**env, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    printed = [ln[2:] for ln in done.stdout.splitlines() if ln.startswith("$ ")]
    store = f"--store duckdb://{data / 'hdi.duckdb'}"
    assert len(printed) == 7 and all(store in cmd for cmd in printed)
    pasted = [cmd for cmd in printed if shlex.split(cmd, comments=True)[1] in ("query", "status")]
    assert [shlex.split(cmd, comments=True)[1] for cmd in pasted] == ["query", "query", "query", "status"]
    out = data / "cl_c0_2024-11.parquet"
    out.unlink()
    elsewhere = tmp_path / "elsewhere"  # another shell: no HDI_* settings (the default store is ./data)
    elsewhere.mkdir()
    results = [subprocess.run(cmd, shell=True, cwd=ROOT, env={**env, "HDI_DATA_DIR": str(elsewhere)},
                              capture_output=True, text=True, timeout=120) for cmd in pasted]
    assert [r.returncode for r in results] == [0, 0, 0, 0], [r.stderr for r in results]
    table = results[0].stdout
    assert "CL.c.0" in table and "CLZ4" in table and "CLF5" in table  # the roll, each contract named
    bars = pl.read_parquet(out)
    assert bars.height > 15 and set(bars["raw_symbol"]) == {"CLZ4", "CLF5"}
    sessions = results[2].stdout  # trading-day bars: Thanksgiving's early close, the Sunday open of 12-02
    assert "2024-11-29" in sessions and "18:45:00" in sessions and "2024-12-01 23:00:00" in sessions
    assert "GLBX.MDP3  ohlcv-1d  CL.c.0" in results[3].stdout
    assert ["FLAGGED", "2024-11-13"] in [line.split() for line in results[3].stdout.splitlines()]
    # nothing went to the default store: the only thing there is the exchange-calendar cache (built
    # calendar years, kept in <HDI_DATA_DIR>/calendars by hdi/research/calendars.py), no store, no output
    cached = elsewhere / "calendars"
    assert [p.name for p in elsewhere.iterdir()] in ([], ["calendars"])
    assert not cached.exists() or all(p.suffix == ".parquet" for p in cached.iterdir())
