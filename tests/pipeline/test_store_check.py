"""Issue 8, item 6: ingest into a damaged store stops before writing anything (both stores).

The report's case: a DuckDB store cut to half its size. ``hdi status`` and ``hdi query`` refused it,
but ``hdi ingest`` exited 0 and recorded new chunks done while the older rows stayed unreadable.
Now the run stops with one line naming the store and the damage, exit 1, and the file is left byte
for byte as it was. On TimescaleDB the same run into a store whose key index was dropped (re-runs
would store rows twice) stops the same way, with no row, chunk or run added.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from hdi.pipeline import ingest
from hdi.store import close_all, open_store

ROOT = Path(__file__).resolve().parents[2]
RECIPE = ROOT / "recipes" / "trades.yaml"
FIRST = {"start": "2024-12-02", "end": "2024-12-04", "symbols": "ES.c.0"}
NEXT = ["--start", "2024-12-04", "--end", "2024-12-06", "--symbols", "ES.c.0"]


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _counts(url: str) -> tuple[int, int, int]:
    st = open_store(url)
    return (int(st.query("SELECT count(*) AS n FROM trades").item()), st.chunks().height, st.runs().height)


def test_ingest_into_a_duckdb_store_cut_in_half_stops_before_writing(gateway, cli, tmp_path):
    path = tmp_path / "hdi.duckdb"
    url = f"duckdb://{path}"
    first = ingest(RECIPE, **FIRST, store=url)
    assert first.ok and first.rows_loaded > 100_000
    close_all()
    with open(path, "r+b") as f:
        f.truncate(path.stat().st_size // 2)
    before = _digest(path)
    calls = len(gateway.calls("timeseries.get_range"))

    status = cli("status", "--store", url)
    assert status.exit_code == 1  # as in the report: status refuses the damaged store
    run = cli("ingest", "--recipe", RECIPE, *NEXT, "--store", url, "--no-progress")
    assert run.exit_code == 1, run.stdout + run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: DuckDB store {path} is damaged: "), run.stderr
    assert "nothing was written" in lines[0] and "Traceback" not in run.stderr
    close_all()
    assert _digest(path) == before  # not a byte written
    assert len(gateway.calls("timeseries.get_range")) == calls  # and nothing downloaded


@pytest.mark.timescale
def test_ingest_into_a_timescale_store_that_lost_its_key_index_stops_before_writing(gateway, cli,
                                                                                    timescale_schema_url):
    url = timescale_schema_url
    first = ingest(RECIPE, **FIRST, store=url)
    assert first.ok
    before = _counts(url)
    close_all()
    import adbc_driver_postgresql.dbapi as pg

    with pg.connect(url, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute("DROP INDEX hdi_trades_key")
    run = cli("ingest", "--recipe", RECIPE, *NEXT, "--store", url, "--no-progress")
    assert run.exit_code == 1, run.stdout + run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: TimescaleDB store postgresql://"), run.stderr
    assert "table 'trades' has lost its key index hdi_trades_key" in lines[0]  # BRIN since migration 8
    assert ":***@" in lines[0] and "nothing was written" in lines[0]
    close_all()
    assert _counts(url) == before  # no row, chunk or run added


def test_an_intact_store_ingests_as_before(gateway, any_store_url):
    """The check passes on a store in use: a second run loads its new chunks."""
    assert ingest(RECIPE, **FIRST, store=any_store_url).ok
    again = ingest(RECIPE, start="2024-12-04", end="2024-12-05", symbols="ES.c.0", store=any_store_url)
    assert again.ok and again.rows_loaded > 0
