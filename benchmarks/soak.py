"""NFR2 soak: 100 scheduled ``hdi ingest --update`` runs against the gateway with random faults.

A scheduler runs each recipe once a "day" (the gateway's clock moves one day, to 06:00 UTC, between
slots), always the same command: ``hdi ingest --recipe R --update --start S``. Before each run a
fault may be armed at random: a 5xx burst or 429s (with Retry-After) within the retry budget,
a dropped connection, DBN truncated mid-record, on the data or metadata endpoints; now and then a
5xx burst beyond the per-call retry budget; and long outages by time (the gateway's
``FaultSet.outage``): for 1 to 0.8 x the retry pass's pause seconds, every call of a chunk's endpoints
(``timeseries.get_range``, ``metadata.get_cost``) fails with a 5xx or a reset connection, longer than
the per-call retries (~0.4 s here) but shorter than the run's retry pass pause (``HDI_RETRY_PASS_WAIT``,
3 s here, ``HDI_RETRY_PASSES`` 2). A failed run gets no help: only the next scheduled run
of its recipe may repair it. After the counted runs (plus, when a recipe's last run failed, its
next scheduled runs until one succeeds), the stored rows are compared with a clean run of the same
recipes over the whole range into a separate store with its own raw cache: they must be equal,
row for row, with no duplicate.

Prints the share of runs that completed on their own (PRD NFR2: >= 95%; issue 15: >= 99 of 100),
what the faults were, what the retry pass recovered, and the comparison. Exit code 0 when the stored rows are exact.

Usage::

    .venv/bin/python benchmarks/soak.py [--runs 100] [--seed 1] [--timescale | --store URL] [--subprocess]
        [--outage-rate 0.15] [--retry-pass-wait 3] [--retry-passes 2]
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import logging
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECIPES = {"ohlcv_1d": (ROOT / "recipes" / "ohlcv_1d.yaml", None),
           "ohlcv_1m": (ROOT / "recipes" / "ohlcv_1m.yaml", "CL.c.0,ES.c.0,SPY")}
START = dt.datetime(2025, 6, 2, tzinfo=dt.UTC)  # a Monday; the first run of each recipe backfills from here
ATTEMPTS = 4  # HDI_RETRY_ATTEMPTS: calls per request
ENDPOINTS = ("timeseries.get_range",) * 6 + ("metadata.get_cost", "symbology.resolve", "metadata.get_dataset_range")
CHUNK_ENDPOINTS = ("timeseries.get_range", "metadata.get_cost")  # called per chunk: the retry pass covers them
PER_CALL_BUDGET = 0.44  # seconds the per-call retries wait at most: 0.05 + 0.1 + 0.2, jitter +25%


@dataclass
class Slot:
    n: int
    recipe: str
    now: dt.datetime
    fault: str = "none"
    armed: int = 0
    ok: bool = False
    chunks: str = ""
    rows: int = 0
    seconds: float = 0.0
    error: str = ""
    counted: bool = True
    run_id: str | None = None
    repaired_after: int | None = None  # failed runs: how many later runs of the recipe it took to repair
    outage: str = ""  # a long outage armed before the run
    outage_hits: int = 0  # calls it failed
    recovered: int = 0  # chunks the run's retry pass recovered
    retried: int = 0  # chunks the retry pass tried


class Outage:
    """A long outage (by time) on chunk endpoints, armed by a watcher thread the moment the run makes
    its first chunk call (an outage that starts mid-run, while chunks download), or never when the run
    makes none. ``hits``: the calls it failed."""

    def __init__(self, gw, rng: random.Random, pause: float) -> None:
        self.gw, self.outage = gw, None
        self.seconds = round(rng.uniform(max(1.0, 2 * PER_CALL_BUDGET), 0.8 * pause), 2)
        self.endpoints = rng.choice((CHUNK_ENDPOINTS, ("timeseries.get_range",), ("metadata.get_cost",)))
        self.how = rng.choice(("reset", 500, 502, 503, 504))
        self.dataset = rng.choice((None, "GLBX.MDP3", "EQUS.MINI"))
        self.what = (f"OUTAGE {self.seconds:g} s: {'reset' if self.how == 'reset' else self.how} on "
                     f"{'+'.join(self.endpoints)}" + (f" of {self.dataset}" if self.dataset else ""))
        self.stop = threading.Event()
        gw.clear_requests()
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()

    def _watch(self) -> None:
        while not self.stop.wait(0.005):
            if any(self.gw.calls(e) for e in CHUNK_ENDPOINTS):
                how = {"kind": "reset"} if self.how == "reset" else {"status": self.how}
                self.outage = self.gw.faults.outage(list(self.endpoints), seconds=self.seconds, match=(
                    {"dataset": self.dataset} if self.dataset else None), **how)
                return

    def end(self) -> int:
        self.stop.set()
        self.thread.join()
        return self.outage.hits if self.outage is not None else 0


def arm(gw, rng: random.Random, fault_rate: float, beyond_rate: float) -> tuple[str, int]:
    """Arm at most one random fault; return its description and how many uses it has."""
    if rng.random() < beyond_rate:  # every download call of a dataset's chunks fails (2 may run at once)
        dataset = rng.choice(("GLBX.MDP3", "EQUS.MINI"))
        gw.faults.status("timeseries.get_range", 503, times=2 * ATTEMPTS, match={"dataset": dataset})
        return f"BEYOND budget: 503 on every get_range of {dataset}", 2 * ATTEMPTS
    if rng.random() >= fault_rate:
        return "none", 0
    endpoint = rng.choice(ENDPOINTS)
    kind = rng.choice(("5xx", "5xx", "429", "drop", "truncate"))
    if kind in ("drop", "truncate"):
        endpoint = "timeseries.get_range" if kind == "truncate" else endpoint
    times = rng.randint(1, ATTEMPTS - 1)
    if kind == "5xx":
        code = rng.choice((500, 502, 503, 504))
        gw.faults.status(endpoint, code, times=times, body=rng.choice(("json", "html")))
        return f"{code} x{times} on {endpoint}", times
    if kind == "429":
        wait = rng.choice((0.2, 0.5, 1.0))
        gw.faults.status(endpoint, 429, times=times, retry_after=wait)
        return f"429 (Retry-After {wait:g}) x{times} on {endpoint}", times
    if kind == "drop":
        gw.faults.drop(endpoint, times=times)
        return f"dropped connection x{times} on {endpoint}", times
    gw.faults.truncate(times=times)
    return f"DBN truncated mid-record x{times} on {endpoint}", times


def run_once(slot: Slot, store: str, use_subprocess: bool, env: dict[str, str]) -> None:
    recipe, symbols = RECIPES[slot.recipe]
    args = ["ingest", "--recipe", str(recipe), "--update", "--start", START.date().isoformat(), "--store", store]
    if symbols:
        args += ["--symbols", symbols]
    t0 = time.perf_counter()
    if use_subprocess:
        p = subprocess.run([str(Path(sys.executable).parent / "hdi"), *args, "--no-progress"], env=env,
                           capture_output=True, text=True, timeout=600)
        slot.ok = p.returncode == 0
        errors = [ln for ln in p.stderr.splitlines() if ln.startswith("error:")]
        slot.error = errors[0] if errors else ""
        m = re.search(r"\d+ planned: ([^│\n]*)", p.stderr)  # the summary's "chunks" row
        slot.chunks = m[1].strip() if m else ""
        m = re.search(r"(\d+) of (\d+) chunk\(s\) that failed transiently recovered", p.stderr)  # "retry pass" row
        slot.recovered, slot.retried = (int(m[1]), int(m[2])) if m else (0, 0)
    else:
        from hdi.errors import HdiError
        from hdi.pipeline import ingest

        try:
            r = ingest(recipe, update=True, start=START, symbols=symbols, store=store, command="soak")
            slot.ok, slot.rows = r.ok, r.rows_loaded
            slot.recovered, slot.retried = r.recovered, r.retried
            slot.chunks = f"{r.count('done')} loaded, {r.count('skipped')} skipped, {r.count('failed')} failed"
            slot.error = next((c.error for c in r.chunks if c.status == "failed"), "") or ""
        except HdiError as e:
            slot.ok, slot.error = False, e.message
    slot.seconds = time.perf_counter() - t0


def compare(store: str, reference: str, tables: list[str]) -> list[str]:
    """Every difference between the two stores' tables (empty when they hold the same rows)."""
    from hdi._tables import DATA_TABLES
    from hdi.store import open_store

    problems = []
    for table in tables:
        key = list(DATA_TABLES[table].key)
        a = open_store(store).select(table).sort(key)
        b = open_store(reference).select(table).sort(key)
        dups = a.height - a.unique(key).height
        print(f"  {table:<8} soak store {a.height:>9,} rows   clean reference {b.height:>9,} rows   "
              f"duplicate keys {dups}   identical: {a.equals(b)}")
        if dups or not a.equals(b):
            problems.append(f"{table}: {a.height} rows vs {b.height}, {dups} duplicate keys")
    return problems


def _soak(args: argparse.Namespace, work: Path, store: str) -> int:  # noqa: PLR0915 - setup, loop, report
    from hdi._status_report import status
    from hdi.store import close_all, open_store
    from hdi.testing.gateway import Gateway

    rng = random.Random(args.seed)
    names = list(RECIPES)
    slots: list[Slot] = []
    t_start = time.perf_counter()
    gw = Gateway(now=START).start()
    try:
        os.environ.update(gw.env())
        env = dict(os.environ)
        shown = open_store(store).display_url
        print(f"soak: {args.runs} scheduled `hdi ingest --update` runs ({', '.join(names)} in turn, one a day at "
              f"06:00 UTC from {START.date()}), seed {args.seed}, faults in {args.fault_rate:.0%} of runs within the "
              f"retry budget ({ATTEMPTS} calls) and {args.beyond_rate:.0%} beyond it; long outages (by time, "
              f"longer than the per-call retries, shorter than the {args.retry_pass_wait:g} s retry pass pause, "
              f"{args.retry_passes} passes) during {args.outage_rate:.0%} of runs, from their first chunk call; "
              f"{'`hdi ingest` processes' if args.subprocess else 'in-process'}; store {shown}")
        last_ok = dict.fromkeys(names, True)
        n = 0
        while n < args.runs or not all(last_ok.values()):
            counted = n < args.runs
            name = names[n % len(names)]
            if not counted and last_ok[name]:
                n += 1
                continue
            slot = Slot(n + 1, name, START + dt.timedelta(days=1 + n // len(names), hours=6), counted=counted)
            gw.api.now = slot.now
            outage = Outage(gw, rng, args.retry_pass_wait) if rng.random() < args.outage_rate else None
            slot.outage = outage.what if outage is not None else ""
            slot.fault, slot.armed = arm(gw, rng, args.fault_rate, args.beyond_rate)
            run_once(slot, store, args.subprocess, env)
            left = sum(f["times"] for f in gw.faults.pending())
            slot.armed -= left  # uses the run actually met
            slot.outage_hits = outage.end() if outage is not None else 0
            gw.faults.clear()
            last_ok[name] = slot.ok
            runs = open_store(store).runs(limit=1)
            if runs.height and runs["run_id"][0] not in {x.run_id for x in slots}:
                slot.run_id = runs["run_id"][0]
            # a failed run is repaired once none of its chunks is still failed (status: not fetched since)
            still = set(status(store).failed_chunks["run_id"].to_list())
            for f in slots:
                if f.recipe == name and not f.ok and f.repaired_after is None and (
                        (f.run_id is not None and f.run_id not in still) or (f.run_id is None and slot.ok)):
                    f.repaired_after = (slot.n - f.n) // len(names)
            close_all()  # DuckDB allows one process per file: let the next `hdi ingest` process have it
            slots.append(slot)
            tag = f"{slot.n:>3}" if counted else "+  "
            met = "; ".join(filter(None, [slot.fault if slot.armed else "",
                                          f"{slot.outage} ({slot.outage_hits} calls failed)" if slot.outage_hits else ""]))
            print(f"[{tag}] {slot.now:%Y-%m-%d %H:%M} {name:<9} {('fault: ' + met) if met else '':<58} "
                  f"{'ok' if slot.ok else 'FAILED'}  {slot.chunks}"
                  + (f", retry pass recovered {slot.recovered} of {slot.retried}" if slot.retried else "")
                  + f" ({slot.seconds:.2f} s)"
                  + (f"\n        {slot.error[:150]}" if not slot.ok else ""), flush=True)
            n += 1
        soak_seconds = time.perf_counter() - t_start
        last_now = {name: max(x.now for x in slots if x.recipe == name) for name in names}  # each recipe's last run

        # the expected rows: a clean run over the whole range, into a separate store, with its own cache
        gw.faults.clear()
        reference = f"duckdb://{work / 'reference.duckdb'}"
        os.environ["HDI_CACHE_DIR"] = str(work / "reference-raw")
        from hdi.pipeline import ingest
        from hdi.pipeline.update import complete_bars_end
        from hdi.recipe.load import load_recipe

        for name in names:
            recipe, symbols = RECIPES[name]
            end = complete_bars_end(load_recipe(recipe), last_now[name])  # --update stores complete bars only
            r = ingest(recipe, start=START, end=end, symbols=symbols, store=reference, command="reference")
            assert r.ok, [c.error for c in r.chunks if c.error]
        os.environ.pop("HDI_CACHE_DIR")
    finally:
        gw.stop()

    counted = [s for s in slots if s.counted]
    ok = sum(s.ok for s in counted)
    faulted = [s for s in counted if s.armed or s.outage_hits]
    beyond = [s for s in counted if s.armed and s.fault.startswith("BEYOND")]
    extra = [s for s in slots if not s.counted]
    kinds = collections.Counter(s.fault.split(" on ")[0].split(" x")[0].split(" (")[0].split(":")[0]
                                for s in faulted if s.armed)
    outaged = [s for s in counted if s.outage_hits]
    print()
    print(f"runs: {len(counted)} scheduled; {ok} completed on their own = {ok / len(counted):.1%} "
          f"(PRD NFR2 >= 95%, target >= 99%)")
    print(f"faults met: {len(faulted)} runs ({', '.join(f'{k}: {v}' for k, v in sorted(kinds.items()))}); "
          f"{len(beyond)} beyond the retry budget")
    print(f"long outages met: {len(outaged)} runs ({sum(s.outage_hits for s in outaged)} calls failed; "
          f"{min((float(s.outage.split()[1]) for s in outaged), default=0):g}-"
          f"{max((float(s.outage.split()[1]) for s in outaged), default=0):g} s long); completed on their own: "
          f"{sum(s.ok for s in outaged)}/{len(outaged)}")
    rescued = [s for s in counted if s.recovered]
    print(f"retry pass: ran in {sum(bool(s.retried) for s in counted)} runs, recovered {sum(s.recovered for s in counted)} "
          f"of {sum(s.retried for s in counted)} chunk(s) it retried; {len(rescued)} run(s) completed only thanks to it")
    within = [s for s in faulted if s not in beyond and s not in outaged]
    print(f"runs with only a fault within the budget that completed: {sum(s.ok for s in within)}/{len(within)}")
    failed = [s for s in counted if not s.ok]
    by_next = sum(s.repaired_after == 1 for s in failed)
    later = sum(s.repaired_after is not None and s.repaired_after > 1 for s in failed)
    print(f"failed runs repaired by the next scheduled run of their recipe: {by_next}/{len(failed)}; by a later "
          f"one: {later}; never: {len(failed) - by_next - later}"
          + (f" ({len(extra)} extra scheduled run(s) after the {len(counted)})" if extra else ""))
    print(f"soak wall time {soak_seconds:.1f} s ({soak_seconds / max(1, len(slots)):.2f} s per run)")
    print(f"stored rows vs a clean run from {START:%Y-%m-%d} to each recipe's last run ("
          + ", ".join(f"{k} {v:%Y-%m-%d %H:%M}" for k, v in last_now.items()) + ") into a separate store:")
    problems = compare(store, reference, ["ohlcv"])
    s = status(store, runs=10_000)
    print(f"hdi status: {s.runs.height} runs recorded ({(s.runs['status'] == 'succeeded').sum()} succeeded), "
          f"{s.failed_chunks.height} chunk(s) still failed, {s.coverage['days_missing'].sum()} MISSING day(s) "
          f"over {s.coverage.height} (dataset, schema, symbol)")
    if s.failed_chunks.height or s.coverage["days_missing"].sum():
        problems.append("hdi status reports failed chunks or MISSING days")
    print("RESULT: " + ("stored rows equal the expected rows exactly" if not problems else "MISMATCH: "
                        + "; ".join(problems)))
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from _common import load_average, result

    result(f"soak: scheduled runs completing on their own ({store.split(':')[0]})", round(100 * ok / len(counted), 1),
           "%", ">= 99% (PRD NFR2 >= 95%), rows equal a clean run", ok / len(counted) >= 0.99 and not problems,
           f"{ok}/{len(counted)}; {len(outaged)} long outages, retry pass recovered "
           f"{sum(s.recovered for s in counted)} chunks; load {load_average()}")
    return 0 if not problems else 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=100, help="scheduled ingestions counted (default 100)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--fault-rate", type=float, default=0.5, help="share of runs with a fault within budget")
    ap.add_argument("--beyond-rate", type=float, default=0.02, help="share of runs with a fault beyond budget")
    ap.add_argument("--outage-rate", type=float, default=0.15,
                    help="share of runs with a long outage (from the run's first chunk call)")
    ap.add_argument("--retry-passes", type=int, default=2, help="HDI_RETRY_PASSES (0: no retry pass, the "
                    "baseline)")
    ap.add_argument("--retry-pass-wait", type=float, default=3.0, help="HDI_RETRY_PASS_WAIT: the retry pass's "
                    "pause, seconds (outages last 1 s to 0.8 x this)")
    ap.add_argument("--store", default=None, help="store URL (default: a fresh DuckDB file)")
    ap.add_argument("--timescale", action="store_true", help="a fresh schema in TimescaleDB "
                    "(HDI_BENCH_TIMESCALE_URL, else the local `make db-up` cluster)")
    ap.add_argument("--subprocess", action="store_true", help="run each ingestion as an `hdi ingest` process")
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="hdi-soak-"))
    logging.basicConfig(filename=work / "soak.log", level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    os.environ.update({"DATABENTO_API_KEY": "db-soak-0123456789abcdef", "HDI_DATA_DIR": str(work / "data"),
                       "HDI_RETRY_ATTEMPTS": str(ATTEMPTS), "HDI_RETRY_BASE_DELAY": "0.05",
                       "HDI_RETRY_MAX_DELAY": "0.4", "HDI_NO_PROGRESS": "1",
                       "HDI_RETRY_PASSES": str(args.retry_passes), "HDI_RETRY_PASS_WAIT": str(args.retry_pass_wait)})
    for var in ("HDI_STORE", "HDI_CACHE_DIR", "HDI_QUARANTINE_DIR"):
        os.environ.pop(var, None)
    schema = None
    store = args.store or f"duckdb://{work / 'soak.duckdb'}"
    if args.timescale:
        import adbc_driver_postgresql.dbapi as pg

        sys.path.insert(0, str(ROOT / "benchmarks"))
        from _common import timescale_url

        base = timescale_url()  # HDI_BENCH_TIMESCALE_URL, else the local `make db-up` cluster
        if base is None:
            print("error: --timescale: no TimescaleDB URL; export HDI_BENCH_TIMESCALE_URL", file=sys.stderr)
            return 1
        schema = f"hdi_soak_{uuid.uuid4().hex[:8]}"
        with pg.connect(base, autocommit=True) as conn, conn.cursor() as cur:
            cur.execute(f"CREATE SCHEMA {schema}")
        store = f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{schema},public"

    try:
        return _soak(args, work, store)
    finally:
        from hdi.store import close_all

        close_all()
        if schema is not None:
            import adbc_driver_postgresql.dbapi as pg

            with pg.connect(base, autocommit=True) as conn, \
                    conn.cursor() as cur:
                cur.execute(f"DROP SCHEMA {schema} CASCADE")
        if args.keep:
            print(f"work folder kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
