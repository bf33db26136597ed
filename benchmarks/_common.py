"""Helpers shared by the benchmark scripts (not a benchmark): URLs, fresh schemas, the gateway
subprocess, whole-process measurement (wall time and peak RSS), and the ``RESULT`` lines that
``run_all.py`` collects into its summary table.
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
VENV_BIN = ROOT / ".venv" / "bin"
PYTHON = str(VENV_BIN / "python") if (VENV_BIN / "python").exists() else sys.executable
HDI = str(VENV_BIN / "hdi") if (VENV_BIN / "hdi").exists() else "hdi"
API_KEY = "db-bench-0123456789abcdefghijklmn"  # the local gateway accepts any well-formed key


def timescale_url(arg: str | None = None) -> str | None:
    """The TimescaleDB URL: the argument, else HDI_BENCH_TIMESCALE_URL, else the local `make db-up` cluster."""
    if arg:
        return arg
    if os.environ.get("HDI_BENCH_TIMESCALE_URL"):
        return os.environ["HDI_BENCH_TIMESCALE_URL"]
    f = ROOT / ".timescaledb" / "url"
    return f.read_text().strip() if f.is_file() else None


def admin(url: str, *sql: str) -> list[tuple]:
    """Run statements in autocommit; return the rows of the last one that returns rows."""
    import adbc_driver_postgresql.dbapi as pg

    rows: list[tuple] = []
    with pg.connect(url, autocommit=True) as c, c.cursor() as cur:
        for s in sql:
            cur.execute(s)
            if cur.description:
                rows = cur.fetchall()
    return rows


def schema_url(url: str, schema: str) -> str:
    """The URL with ``search_path`` set to ``schema`` (then public, for the timescaledb extension)."""
    return f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema},public"


@contextlib.contextmanager
def fresh_schema(base_url: str) -> Iterator[tuple[str, str]]:
    """A new empty schema: yields (store URL, schema name); dropped afterwards."""
    schema = f"hdi_bench_{uuid.uuid4().hex[:8]}"
    admin(base_url, f"CREATE SCHEMA {schema}")
    try:
        yield schema_url(base_url, schema), schema
    finally:
        with contextlib.suppress(Exception):
            from hdi.store import close_all

            close_all()
        admin(base_url, f"DROP SCHEMA {schema} CASCADE")


@contextlib.contextmanager
def gateway(state_dir: Path, now: str = "2026-01-15T00:00:00Z") -> Iterator[dict[str, str]]:
    """The local Databento-compatible gateway in its own process; yields the env a client needs."""
    state_dir.mkdir(parents=True, exist_ok=True)
    gw = subprocess.Popen([PYTHON, "-m", "hdi.testing.gateway", "--state-dir", str(state_dir), "--now", now],
                          stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        info = json.loads(gw.stdout.readline())  # type: ignore[union-attr]
        yield {"REQUESTS_CA_BUNDLE": info["ca_path"], "SSL_CERT_FILE": info["ca_path"],
               "HDI_DATABENTO_GATEWAY": info["url"], "DATABENTO_API_KEY": API_KEY,
               "HDI_GATEWAY_PID": str(info["pid"])}
    finally:
        gw.terminate()
        try:
            gw.wait(timeout=10)
        except subprocess.TimeoutExpired:
            gw.kill()
            gw.wait()


@dataclass
class Measured:
    """One whole-process run."""

    wall: float  # seconds, fork to exit
    peak_rss_mib: float  # ru_maxrss of that process alone (os.wait4)
    returncode: int
    stdout: str
    stderr: str
    cpu: float = 0.0  # user + system CPU seconds of that process alone (all its threads)


def run_process(cmd: Sequence[str], *, env: dict[str, str] | None = None, cwd: Path = ROOT,
                check: bool = True) -> Measured:
    """Run a command; its wall time and its own peak RSS (``wait4``'s rusage of exactly that child)."""
    full_env = {**os.environ, **(env or {})}
    t0 = time.perf_counter()
    proc = subprocess.Popen(list(cmd), env=full_env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    # Read the pipes in threads so a chatty child never blocks; reap it with wait4 for its rusage.
    import threading

    out: dict[str, bytes] = {}

    def drain(name: str, stream: object) -> None:
        out[name] = stream.read()  # type: ignore[attr-defined]

    threads = [threading.Thread(target=drain, args=(n, s)) for n, s in (("o", proc.stdout), ("e", proc.stderr))]
    for t in threads:
        t.start()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    for t in threads:
        t.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    m = Measured(wall, usage.ru_maxrss / 1024, proc.returncode, out["o"].decode(errors="replace"),
                 out["e"].decode(errors="replace"), usage.ru_utime + usage.ru_stime)
    if check and m.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {m.returncode}:\n{m.stdout[-2000:]}\n{m.stderr[-2000:]}")
    return m


def best_median(values: Sequence[float]) -> tuple[float, float]:
    return min(values), statistics.median(values)


def result(name: str, value: float, unit: str, target: str, ok: bool | None, note: str = "") -> None:
    """Print a machine-readable figure; ``run_all.py`` turns these into its summary table."""
    print("RESULT " + json.dumps({"name": name, "value": value, "unit": unit, "target": target, "ok": ok,
                                  "note": note}), flush=True)


def load_average() -> str:
    """The 1-minute load average: how noisy the machine was (2 cores, shared)."""
    try:
        return Path("/proc/loadavg").read_text().split()[0]
    except OSError:
        return "?"
