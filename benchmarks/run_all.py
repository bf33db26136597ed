"""Run every benchmark (what ``make bench`` runs), each in its own process, and print a summary table.

Each script prints its figures as it goes (streamed here) and ``RESULT {json}`` lines with the
headline figure of each target; the table at the end gathers them. The machine is noisy (2 cores,
shared): every figure is a best or a median of several runs, as each script says.

Sizes are modest by default (a few minutes in all with TimescaleDB); ``--big`` repeats more.
TimescaleDB figures need ``HDI_BENCH_TIMESCALE_URL`` (set by the Makefile) or ``make db-up``.

Usage: .venv/bin/python benchmarks/run_all.py [--only NAME[,NAME]] [--skip NAME[,NAME]] [--big]
       [--no-timescale] [--strict] [--rows N]
Names: nfr4a, nfr4b, trades, lake, rss, store, decode, gateway, soak, continuous, status
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import PYTHON, ROOT, load_average  # noqa: E402

HERE = Path(__file__).resolve().parent


def plan(big: bool, no_ts: bool, rows: int | None = None) -> dict[str, list[str]]:
    ts = ["--no-timescale"] if no_ts else []
    return {
        "nfr4a": ["nfr4a_backfill.py", "--repeat", "7" if big else "3", *ts],
        "nfr4b": ["nfr4b_query.py", "--reads", "500" if big else "200", "--runs", "9" if big else "5", *ts],
        "trades": ["trades_load.py", "--repeat", "5" if big else "3", *ts],
        "lake": ["lake.py", "--repeat", "3" if big else "2", *ts],
        "rss": ["peak_rss.py", *ts],
        "store": ["store_bench.py", "--repeat", "5" if big else "3", *ts],
        "decode": ["decode.py"],
        "gateway": ["gateway.py", "--repeat", "5" if big else "3"],
        "soak": ["soak.py", "--runs", "100" if big else "20"],
        "continuous": ["continuous_read.py", "--reads", "40" if big else "15", *ts],
        "status": ["status_scale.py", "--rows", str(rows or (20_000_000 if big else 2_000_000)), "--repeat", "5" if big else "3", *ts],
    }


def run(name: str, args: list[str], env: dict[str, str]) -> tuple[list[dict], float, int]:
    print(f"\n######## {name}: benchmarks/{' '.join(args)}  (load average {load_average()})", flush=True)
    t0 = time.perf_counter()
    proc = subprocess.Popen([PYTHON, str(HERE / args[0]), *args[1:]], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    results = []
    for line in proc.stdout:  # type: ignore[union-attr]
        if line.startswith("RESULT "):
            results.append(json.loads(line[len("RESULT "):]))
        else:
            print(line, end="", flush=True)
    code = proc.wait()
    return results, time.perf_counter() - t0, code


def fmt(value: float, unit: str) -> str:
    if unit == "rows/s":
        return f"{value:,.0f} rows/s"
    if unit in ("x",):
        return f"{value:.2f}x"
    if unit == "ms":
        return f"{value:.2f} ms"
    if unit == "s":
        return f"{value:.2f} s"
    return f"{value:,.0f} {unit}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", help="comma-separated names to run")
    ap.add_argument("--skip", help="comma-separated names to skip")
    ap.add_argument("--big", action="store_true", help="more repeats (slower, steadier figures)")
    ap.add_argument("--no-timescale", action="store_true", help="DuckDB only")
    ap.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    ap.add_argument("--rows", type=int, help="trades in the generated store of `status` (default 2,000,000; "
                                             "--big 20,000,000; the issue's figure: 100000000)")
    a = ap.parse_args()
    steps = plan(a.big, a.no_timescale, a.rows)
    names = a.only.split(",") if a.only else list(steps)
    unknown = [n for n in [*names, *(a.skip.split(",") if a.skip else [])] if n not in steps]
    if unknown:
        ap.error(f"unknown benchmark(s) {', '.join(unknown)}; allowed: {', '.join(steps)}")
    names = [n for n in names if n not in (a.skip.split(",") if a.skip else [])]
    env = dict(os.environ)
    if a.no_timescale:
        env.pop("HDI_BENCH_TIMESCALE_URL", None)
    started = dt.datetime.now(dt.UTC)
    rows, failed = [], []
    for name in names:
        results, secs, code = run(name, steps[name], env)
        if code != 0:
            failed.append(f"{name} (exit {code})")
        rows += [(name, r) for r in results]
        print(f"######## {name}: {secs:.0f} s, exit {code}", flush=True)
    print(f"\n== summary ({started:%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, load average now {load_average()})")
    width = max([len(r["name"]) for _, r in rows] + [10])
    print(f"{'figure':{width}}  {'measured':>16}  {'target':>22}  status  note")
    for _, r in rows:
        status = {True: "MET", False: "MISSED", None: "-"}[r["ok"]]
        print(f"{r['name']:{width}}  {fmt(r['value'], r['unit']):>16}  {r['target']:>22}  {status:6}  {r['note']}")
    missed = [r["name"] for _, r in rows if r["ok"] is False]
    if failed:
        print(f"scripts that failed: {', '.join(failed)}")
    print(f"{len(rows)} figures, {len(missed)} target(s) missed" + (f": {'; '.join(missed)}" if missed else ""))
    return 1 if failed or (a.strict and missed) else 0


if __name__ == "__main__":
    raise SystemExit(main())
