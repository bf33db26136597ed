"""The CLI's import cost (issue 17.4): `hdi --help` and `hdi --version` load no data library (Polars,
DuckDB, ADBC, numpy); they are what a shell completion or a typo runs."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("polars", "duckdb", "adbc_driver_manager", "numpy", "pyarrow", "pandas")


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["query", "--help"]], ids=" ".join)
def test_help_and_version_import_no_data_library(args):
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "hdi", *args], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    loaded = {line.split("|")[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    assert not sorted(m for m in loaded if m.split(".")[0] in HEAVY)
    assert ("Usage:" in done.stdout) if "--help" in args else done.stdout.startswith("hdi ")
