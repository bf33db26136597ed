"""How fast the test gateway serves DatabentoSource.fetch: 1 year x 5 futures of ohlcv-1d, and ~2M trades.

The gateway runs as its own process (``python -m hdi.testing.gateway``), as in ``make demo``, so the
client and the server do not share a GIL. Every fetch is a real HTTPS download through the official
client into the raw cache, verified (whole records, metadata matching the request).

Usage: ``.venv/bin/python benchmarks/gateway.py [--repeat 3]``
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path


def _rss_mib(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="hdi-bench-gw-"))
    gw = subprocess.Popen([sys.executable, "-m", "hdi.testing.gateway", "--state-dir", str(work / "gw"),
                           "--now", "2026-01-15T00:00:00Z"], stdout=subprocess.PIPE, text=True)
    try:
        info = json.loads(gw.stdout.readline())  # type: ignore[union-attr]
        os.environ.update({"REQUESTS_CA_BUNDLE": info["ca_path"], "SSL_CERT_FILE": info["ca_path"],
                           "HDI_DATABENTO_GATEWAY": info["url"], "DATABENTO_API_KEY": "db-bench-0123456789",
                           "HDI_DATA_DIR": str(work / "data")})
        from hdi.source.databento import DatabentoSource, Request

        src = DatabentoSource()
        src.list_datasets()  # imports databento and opens the client before timing
        daily = Request("GLBX.MDP3", "ohlcv-1d", "continuous", ("CL.c.0", "NG.c.0", "HO.c.0", "RB.c.0", "ES.c.0"),
                        datetime(2025, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC))
        trades = Request("GLBX.MDP3", "trades", "continuous", ("ES.c.0", "CL.c.0"),
                         datetime(2025, 3, 3, tzinfo=UTC), datetime(2025, 3, 29, tzinfo=UTC))
        print(f"gateway pid {info['pid']}, RSS after start {_rss_mib(info['pid'], 'VmRSS'):.0f} MiB")
        for label, req in (("1y x 5 symbols ohlcv-1d", daily), ("trades, 2 symbols x 4 weeks", trades)):
            times = []
            for _ in range(args.repeat):  # the first fetch meets a cold gateway (no cached minute models)
                t0 = time.perf_counter()
                path = src.fetch(req, refresh=True)
                times.append(time.perf_counter() - t0)
            cold, warm = times[0], statistics.median(times[1:] or times)
            records = json.loads(path.with_suffix("").with_suffix(".json").read_text())["records"]
            t0 = time.perf_counter()
            est = src.estimate(req)
            t_est = time.perf_counter() - t0
            assert est.record_count == records
            print(f"{label}: {records:,} records, {path.stat().st_size / 1e6:.2f} MB zst; fetch cold {cold:.3f} s, "
                  f"warm median {warm:.3f} s ({records / warm / 1e6:.2f} M records/s); estimate "
                  f"${est.cost_usd:.4f} for {est.billable_bytes / 1e6:.1f} MB (3 metadata calls, {t_est:.3f} s)")
        print(f"gateway peak RSS {_rss_mib(info['pid'], 'VmHWM'):.0f} MiB")
    finally:
        gw.terminate()
        gw.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
