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


# Libraries a trades ingest from a file into DuckDB has no use for: pandas and pyarrow.compute came in
# through pyarrow.array / pl.Series(pyarrow array) in the symbol mapping (~0.35 s of every ingest).
# (patito's `import pandas` gets Polars' lazy stand-in: only pandas.core would be pandas itself.)
NOT_FOR_INGEST = ("pandas.core", "pyarrow.compute", "databento", "aiohttp")


def test_ingest_from_file_into_duckdb_loads_no_pandas(tmp_path):
    import datetime as dt
    import os
    from pathlib import Path

    import databento_dbn as dbn

    from tests.source.test_files import Interval, Mapping

    t0 = 1_731_681_000_000_000_000  # 2024-11-15T14:30:00Z
    meta = dbn.Metadata(dataset="GLBX.MDP3", start=t0, end=t0 + 10**9, schema=dbn.Schema.TRADES,
                        stype_in=dbn.SType.RAW_SYMBOL, stype_out=dbn.SType.INSTRUMENT_ID, symbols=["CLZ4"],
                        partial=[], not_found=[],
                        mappings=[Mapping("CLZ4", [Interval(dt.date(2024, 11, 15), dt.date(2024, 11, 16), "7")])])
    trades = [dbn.TradeMsg(publisher_id=1, instrument_id=7, ts_event=t0 + k, price=70_000_000_000 + k, size=1,
                           action=dbn.Action.TRADE, side=dbn.Side.BID, flags=0, depth=0, ts_recv=t0 + k + 5,
                           ts_in_delta=0, sequence=k) for k in range(50)]
    path = tmp_path / "t.dbn"
    path.write_bytes(bytes(meta.encode()) + b"".join(bytes(r) for r in trades))
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "hdi", "ingest", "--recipe",
                           str(root / "recipes" / "trades.yaml"), "--from-file", str(path), "--store",
                           f"duckdb:///{tmp_path / 's.duckdb'}", "--no-progress"], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "HDI_DATA_DIR": str(tmp_path / "data"), "PYTHONPATH": str(root)})
    assert done.returncode == 0, done.stderr[-2000:]
    assert "50 fetched, 50 loaded, 0 quarantined" in done.stderr
    loaded = {line.split("|")[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    assert not sorted(m for m in loaded if any(m == x or m.startswith(f"{x}.") for x in NOT_FOR_INGEST))
