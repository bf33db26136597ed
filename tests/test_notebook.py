"""docs/examples/quickstart.ipynb runs top to bottom: the local gateway, an ingest, ``hdi.read_bars``
and a plot, executed in a fresh kernel in a temporary folder."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import nbformat
import polars as pl
from nbclient import NotebookClient

import hdi

NOTEBOOK = Path(__file__).resolve().parents[1] / "docs" / "examples" / "quickstart.ipynb"


def _text(cell) -> str:
    return "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream")


def test_quickstart_notebook_runs_reads_rows_and_plots(tmp_path):
    shutil.copy(NOTEBOOK, tmp_path / NOTEBOOK.name)
    nb = nbformat.read(tmp_path / NOTEBOOK.name, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()  # raises on a cell's error

    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count for c in code)  # every cell ran
    errors = [o for c in code for o in c.outputs if o.get("output_type") == "error"]
    assert errors == []
    text = "\n".join(_text(c) for c in code)
    assert "ok=True" in text
    rows = int(re.search(r"rows read: (\d+)", text).group(1))
    # what the notebook read is what its store holds: CL.c.0 and ES.c.0, every bar of 2024-01..06
    store = f"duckdb://{tmp_path / 'quickstart-data' / 'hdi.duckdb'}"
    bars = hdi.read_bars(["CL.c.0", "ES.c.0"], "2024-01-01", "2024-07-01", store=store)
    assert rows == bars.height > 0
    assert set(bars["symbol"]) == {"CL.c.0", "ES.c.0"}
    assert bars.group_by("symbol").len().filter(pl.col("len") < 100).height == 0  # half a year of days each
    assert f"rows loaded={bars.height}" in text
    pngs = [o for c in code for o in c.outputs if "image/png" in o.get("data", {})]
    assert len(pngs) == 1 and len(pngs[0]["data"]["image/png"]) > 10_000  # the plot, inline
