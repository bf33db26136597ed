"""hdi.validate imports patito without pandas (hdi/validate/_patito.py): ~0.3 s of every ingest."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_validation_without_pandas_then_pandas_still_importable():
    code = (
        "import sys, datetime as dt, decimal, polars as pl\n"
        "from hdi.validate.split import split\n"
        "assert 'pandas' not in sys.modules, 'pandas imported'\n"
        "t = dt.datetime(2025, 3, 3, tzinfo=dt.UTC)\n"
        "frame = pl.DataFrame({'dataset': ['GLBX.MDP3'] * 2, 'instrument_id': [1, 1],\n"
        "    'trade_timestamp_utc': [t, t], 'received_timestamp_utc': [t, t],\n"
        "    'ts_event_ns': [int(t.timestamp()) * 10**9] * 2, 'ts_recv_ns': [int(t.timestamp()) * 10**9] * 2,\n"
        "    'price': [decimal.Decimal('1.5'), decimal.Decimal('-1')], 'size': [1, 1],\n"
        "    'aggressor_side': ['buy', 'sell'], 'flags': [0, 0], 'sequence': [1, 2], 'ts_in_delta': [0, 0],\n"
        "    'publisher_id': [1, 1], 'rec_ordinal': [0, 0], 'data_source': ['databento'] * 2})\n"
        "res = split(frame, 'trades')\n"
        "assert (res.rows_good, res.rows_bad) == (1, 1), res\n"
        "assert 'pandas' not in sys.modules\n"
        "import pandas\n"
        "assert isinstance(pl.DataFrame({'a': [1]}).to_pandas(), pandas.DataFrame)\n"
        "print(pandas.DataFrame({'a': [1]}).shape)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "(1, 1)"


def test_patito_imported_first_leaves_polars_pandas_support_intact():
    # hdi.validate._patito the first module to import Polars: Polars must still see pandas afterwards
    code = ("import sys\nimport hdi.validate._patito\nassert 'pandas' not in sys.modules\n"
            "import pandas, polars as pl\nprint(type(pl.DataFrame({'a': [1]}).to_pandas()).__name__)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "DataFrame"
