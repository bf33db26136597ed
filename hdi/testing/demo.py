"""``make demo``: the real pipeline end to end, offline, against the local synthetic gateway.

Starts ``python -m hdi.testing.gateway`` in its own process, then runs the real ``hdi`` command:
``hdi ingest --recipe recipes/ohlcv_1d.yaml`` into the embedded DuckDB store, ``hdi query`` (a table
and a Parquet file), a week of 1m bars read as trading-day bars (``--session exchange``) and ``hdi
status``, which flags the empty trading day the demo's gateway plants (``NO_TRADE``). Everything goes under ``./data/demo`` (its own store, raw
cache, quarantine and logs), so synthetic prices never mix with data from Databento in ``./data``.

Each command is printed exactly as it runs, with ``--store`` naming the demo's store, so a query or
status command pasted after the demo reads the same data (the ingest commands need the demo's
gateway, which stops with the demo).

Usage: python -m hdi.testing.demo [--recipe PATH] [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BANNER = "SYNTHETIC DATA — served by hdi's local test gateway, not by Databento"


def _say(text: str) -> None:
    print(f"\n== {text}", flush=True)


# a planted empty trading day: `hdi status` flags it (a trading day without data), unlike weekends and holidays
NO_TRADE = "GLBX.MDP3:CL.c.0:2024-11-13"
RECIPES = Path(__file__).resolve().parents[2] / "recipes"


def _start_gateway(state: Path) -> tuple[subprocess.Popen[str], dict[str, str]]:
    proc = subprocess.Popen([sys.executable, "-m", "hdi.testing.gateway", "--state-dir", str(state),
                             "--no-trade", NO_TRADE],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        err = proc.stderr.read() if proc.stderr else ""
        raise SystemExit(f"demo: the local gateway did not start: {err.strip()[-500:]}")
    return proc, json.loads(line)


def _hdi_command() -> list[str]:
    """The ``hdi`` beside this Python (``.venv/bin/hdi``, relative when under the current folder),
    else ``python -m hdi.cli``: what a user can paste."""
    script = Path(sys.executable).parent / "hdi"
    if not script.is_file():
        return [sys.executable, "-m", "hdi.cli"]
    try:
        return [str(script.relative_to(Path.cwd()))]
    except ValueError:
        return [str(script)]


def _hdi(*args: str, env: dict[str, str], note: str = "") -> None:
    cmd = [*_hdi_command(), *args]
    print("$ " + shlex.join(cmd) + (f"    # {note}" if note else ""), flush=True)
    rc = subprocess.run(cmd, env=env).returncode
    if rc != 0:
        raise SystemExit(f"demo: `{shlex.join(cmd)}` exited {rc}")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recipe", default="recipes/ohlcv_1d.yaml")
    ap.add_argument("--data-dir", default="data/demo", help="where the demo store, cache and logs go")
    a = ap.parse_args(argv)
    data = Path(a.data_dir).absolute()
    print(BANNER)
    state = Path(tempfile.mkdtemp(prefix="hdi-demo-gateway-"))
    proc, info = _start_gateway(state)
    env = {**os.environ, "HDI_DATA_DIR": str(data), "HDI_DATABENTO_GATEWAY": info["url"],
           "REQUESTS_CA_BUNDLE": info["ca_path"], "SSL_CERT_FILE": info["ca_path"],
           "DATABENTO_API_KEY": "db-demo-local-gateway-key", "HDI_NO_PROGRESS": "1"}
    env.pop("HDI_STORE", None)  # the demo always uses its own embedded store
    out = data / "cl_c0_2024-11.parquet"
    store = ["--store", f"duckdb://{data / 'hdi.duckdb'}"]
    via = "through the demo's local gateway (stops with the demo)"
    try:
        t0 = time.perf_counter()
        _say(f"ingest {a.recipe} through the local gateway at {info['url']} into {data / 'hdi.duckdb'}")
        _hdi("ingest", "--recipe", a.recipe, *store, env=env, note=via)
        _say("run it again: every chunk is already done, nothing is downloaded or stored twice")
        _hdi("ingest", "--recipe", a.recipe, *store, env=env, note=via)
        _say("query CL.c.0 over its 2024-11-18 roll (each contract on its own days; raw_symbol names it)")
        _hdi("query", "--schema", "ohlcv-1d", "--symbols", "CL.c.0", "--start", "2024-11-11", "--end",
             "2024-11-23", "--format", "table", *store, env=env)
        _hdi("query", "--schema", "ohlcv-1d", "--symbols", "CL.c.0", "--start", "2024-11-01", "--end",
             "2024-12-01", "--format", "parquet", "--output", str(out), "--force", *store, env=env)  # the demo's own file
        _say("trading-day bars over Thanksgiving, from 1m bars (docs/sessions.md): early closes, Sunday opens")
        _hdi("ingest", "--recipe", str(RECIPES / "ohlcv_1m.yaml"), "--symbols", "CL.c.0", "--start", "2024-11-25",
             "--end", "2024-12-03", *store, env=env, note=via)
        _hdi("query", "--schema", "ohlcv-1d", "--session", "exchange", "--symbols", "CL.c.0", "--start",
             "2024-11-25", "--end", "2024-12-03", "--format", "table", *store, env=env)
        _say(f"status (a no-trade day was planted: {NO_TRADE}, FLAGGED; weekends and holidays are closed)")
        _hdi("status", *store, env=env)
        print(f"\n{BANNER}\ndemo done in {time.perf_counter() - t0:.1f} s; store {data / 'hdi.duckdb'}, "
              f"Parquet {out}")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    main()
