"""Write ``hdi status --html`` for a store and screenshot it in headless Chromium (docs/coverage.png).

Usage: python scripts/coverage_png.py --store duckdb:///path/hdi.duckdb --output docs/coverage.png
(``make coverage-png`` runs the demo first and then this, on the demo's store).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--store", required=True)
    ap.add_argument("--output", default="docs/coverage.png")
    ap.add_argument("--width", type=int, default=1100)
    ap.add_argument("--height", type=int, default=1400)
    a = ap.parse_args(argv)
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        raise SystemExit("coverage_png: no chromium on PATH; run scripts/chromium.sh as root (or make chromium)")
    with tempfile.TemporaryDirectory(prefix="hdi-coverage-") as tmp:
        page = Path(tmp) / "coverage.html"
        subprocess.run([sys.executable, "-m", "hdi", "status", "--store", a.store, "--html", str(page)],
                       check=True, stdout=subprocess.DEVNULL)
        shot = Path(tmp) / "coverage.png"
        args = [browser, "--headless", "--hide-scrollbars", "--disable-gpu", f"--screenshot={shot}",
                f"--window-size={a.width},{a.height}"] + (["--no-sandbox"] if os.geteuid() == 0 else [])
        subprocess.run([*args, page.as_uri()], check=True, capture_output=True)
        shutil.copyfile(shot, a.output)
    print(a.output)


if __name__ == "__main__":
    main()
