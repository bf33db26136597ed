"""``hdi ingest --workers N`` (issue 16 item 5): chunks loaded by N processes where the store takes
concurrent writers (TimescaleDB, the Iceberg lake), exactly as one process loads them; a DuckDB
file loads with one and says so in one line."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from hdi._tables import DATA_TABLES
from hdi.pipeline import ingest
from hdi.store import close_all, open_store

ROOT = Path(__file__).resolve().parents[2]
TRADES = ROOT / "recipes" / "trades.yaml"
FUTURES = "CL.c.0,NG.c.0,HO.c.0,RB.c.0,ES.c.0"
START, END = "2024-12-02", "2024-12-06"  # 4 daily chunks


def _rows_and_duplicates(url: str) -> tuple[int, int]:
    key = ", ".join(DATA_TABLES["trades"].key)
    st = open_store(url)
    n = int(st.query("SELECT count(*) AS n FROM trades").item())
    distinct = int(st.query(f"SELECT count(*) AS n FROM (SELECT DISTINCT {key} FROM trades) d").item())
    return n, n - distinct


def test_two_workers_load_exactly_what_one_process_loads(gateway, any_store_url, tmp_path, caplog):
    ref_url = f"duckdb://{tmp_path / 'reference.duckdb'}"
    ref = ingest(TRADES, start=START, end=END, symbols=FUTURES, store=ref_url)
    assert ref.ok and ref.planned == 4
    reference = dict(open_store(ref_url).chunks().select("chunk_id", "rows_loaded").iter_rows())
    close_all()
    events = []
    with caplog.at_level(logging.INFO, logger="hdi.pipeline"):
        report = ingest(TRADES, start=START, end=END, symbols=FUTURES, store=any_store_url, workers=2,
                        on_event=events.append)
    assert report.ok and report.count("done") == 4
    assert report.rows_loaded == sum(reference.values())
    single = any_store_url.startswith("duckdb")
    messages = [r.getMessage() for r in caplog.records]
    if single:
        assert [m for m in messages if "takes one writer at a time" in m] == [
            "--workers 2: the duckdb store takes one writer at a time; loading with 1 worker (TimescaleDB and "
            "the Iceberg lake take several)"]
        assert {e.worker for e in events} == {0}
    else:
        assert any("2 worker processes load 4 chunks" in m for m in messages)
        assert {e.worker for e in events if e.kind == "chunk_start"} <= {1, 2}
        assert {e.worker for e in events if e.kind == "chunk_start"} != {0}
    st = open_store(any_store_url)
    chunks = st.chunks()
    assert set(chunks["status"]) == {"done"}
    assert dict(chunks.select("chunk_id", "rows_loaded").iter_rows()) == reference
    assert _rows_and_duplicates(any_store_url) == (sum(reference.values()), 0)
    run = st.runs(limit=1).row(0, named=True)
    assert (run["status"], run["chunks_done"], run["rows_loaded"]) == ("succeeded", 4, sum(reference.values()))
    again = ingest(TRADES, start=START, end=END, symbols=FUTURES, store=any_store_url, workers=2)
    assert again.ok and again.count("skipped") == 4 and _rows_and_duplicates(any_store_url)[0] == sum(reference.values())


def test_the_cli_shows_every_worker(gateway, cli, tmp_path):
    url = f"iceberg://{tmp_path / 'lake'}"
    result = cli("ingest", "--recipe", str(TRADES), "--start", START, "--end", END, "--symbols", FUTURES,
                 "--store", url, "--workers", "2", "--no-progress")
    assert result.exit_code == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("[")]
    assert len(lines) == 4 and all(" done " in line for line in lines)
    assert {line.split("] ", 1)[1].split(":", 1)[0] for line in lines} <= {"worker 1", "worker 2"}


@pytest.mark.parametrize("n", ["0", "65"])
def test_a_worker_count_out_of_range_is_refused(cli, n):
    result = cli("ingest", "--recipe", str(TRADES), "--workers", n)
    assert result.exit_code == 2 and "--workers" in result.stderr
