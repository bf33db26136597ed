"""`hdi ingest --from-file`: files load whole by default; --start/--end/--symbols filter their records
and the summary says how many were left out; folders and globs; --dry-run gives each file's real
record count, symbols and time range; a recipe for files only needs no range or requests."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest
from databento import DBNStore

import hdi
from hdi.errors import ConfigError, HdiError, SourceError
from hdi.pipeline import ingest
from hdi.store import open_store
from hdi.testing.dbnfiles import Bar, write_daily_bars

IDS = {"SPY": 15144, "QQQ": 13340}
DAYS = ["2020-04-16", "2020-04-17", "2020-04-20", "2020-04-21", "2020-04-22"]


def _bars(symbols=("SPY", "QQQ"), days=DAYS) -> list[Bar]:
    return [Bar(d, s, "100", "101.5", "99.25", f"100.{i}{j}") for i, d in enumerate(days) for j, s in enumerate(symbols)]


@pytest.fixture
def april(tmp_path) -> Path:
    """Ten SPY/QQQ bars of April 2020: outside the shipped recipe's 2024 range."""
    return write_daily_bars(tmp_path / "april.dbn", _bars(), ids=IDS)


def _stored(url: str) -> list[tuple[str, dt.date]]:
    bars = hdi.read_bars(["SPY", "QQQ"], "2020-01-01", "2021-01-01", store=url)
    return sorted((s, t.date()) for s, t in bars.select("symbol", "bar_timestamp_utc").iter_rows())


def test_a_file_loads_whole_whatever_the_recipes_range(any_store_url, recipes_dir, april):
    r = ingest(recipes_dir / "ohlcv_1d.yaml", from_files=[april], store=any_store_url)
    assert r.ok and (r.rows_fetched, r.rows_loaded, r.rows_left_out) == (10, 10, 0)
    assert len(_stored(any_store_url)) == 10


def test_start_end_symbols_filter_a_files_records_and_say_how_many_were_left_out(any_store_url, recipes_dir, april,
                                                                                 cli):
    args = ["ingest", "--recipe", recipes_dir / "ohlcv_1d.yaml", "--from-file", april, "--store", any_store_url,
            "--start", "2020-04-17", "--end", "2020-04-21", "--symbols", "SPY", "--no-progress"]
    res = cli(*args)
    assert res.exit_code == 0, res.stderr
    assert "8 records of the files outside --start/--end/--symbols" in " ".join(res.stderr.split())
    assert _stored(any_store_url) == [("SPY", dt.date(2020, 4, 17)), ("SPY", dt.date(2020, 4, 20))]
    close = hdi.read_bars("SPY", "2020-04-17", "2020-04-18", store=any_store_url, prices="decimal")["close_price"]
    assert close.to_list() == [Decimal("100.10")]
    # The ledger says what was loaded: the window, SPY only.
    st = open_store(any_store_url)
    chunk = st.chunks(status="done")
    assert chunk.select("symbols", "rows_fetched", "rows_loaded").rows() == [("SPY", 2, 2)]
    assert chunk["start_ts"][0] == dt.datetime(2020, 4, 17, tzinfo=dt.UTC)
    assert chunk["end_ts"][0] == dt.datetime(2020, 4, 21, tzinfo=dt.UTC)
    days = st.query("SELECT symbol, day, rows_fetched FROM ingest_days ORDER BY day")
    assert [(s, str(d)[:10], n) for s, d, n in days.rows()] == [
        ("SPY", "2020-04-17", 1), ("SPY", "2020-04-18", 0), ("SPY", "2020-04-19", 0), ("SPY", "2020-04-20", 1)]

    again = ingest(recipes_dir / "ohlcv_1d.yaml", from_files=[april], store=any_store_url, start="2020-04-17",
                   end="2020-04-21", symbols="SPY")
    assert again.ok and again.count("skipped") == 1 and again.rows_loaded == 0
    whole = ingest(recipes_dir / "ohlcv_1d.yaml", from_files=[april], store=any_store_url)
    assert (whole.rows_loaded, whole.rows_already_present, whole.rows_left_out) == (8, 2, 0)


def test_a_file_outside_the_window_is_not_loaded_and_is_counted(tmp_path, recipes_dir, april):
    url = f"duckdb:///{tmp_path / 's.duckdb'}"
    may = write_daily_bars(tmp_path / "may.dbn", _bars(days=["2020-05-01"]), ids=IDS)
    r = ingest(recipes_dir / "ohlcv_1d.yaml", from_files=[april, may], store=url, start="2020-05-01")
    assert r.ok and r.rows_loaded == 2 and r.rows_left_out == 10
    assert [c.status for c in r.chunks] == ["excluded", "done"]
    assert r.chunks[0].label == f"{april} (outside --start/--end/--symbols)"


def test_window_errors_are_one_line(tmp_path, recipes_dir, april):
    url = f"duckdb:///{tmp_path / 's.duckdb'}"
    with pytest.raises(ConfigError, match=r"^--symbols ESH5: in none of the files; allowed: the files' symbols "
                                          r"\(QQQ, SPY\)$"):
        ingest(recipes_dir / "ohlcv_1d.yaml", from_files=[april], store=url, symbols="SPY,ESH5")
    with pytest.raises(ConfigError, match="--start 'soon' is not a date or timestamp"):
        ingest(recipes_dir / "ohlcv_1d.yaml", from_files=[april], store=url, start="soon")
    assert not open_store(url).has_table("ohlcv")


def test_folders_and_globs(tmp_path, recipes_dir):
    url = f"duckdb:///{tmp_path / 's.duckdb'}"
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    write_daily_bars(folder / "a.dbn", _bars(days=DAYS[:2]), ids=IDS)
    write_daily_bars(folder / "sub" / "b.dbn.zst", _bars(days=DAYS[2:]), ids=IDS, compress=True)
    (folder / "notes.txt").write_text("not DBN")
    r = ingest(recipes_dir / "ohlcv_1d.yaml", from_files=[folder], store=url)
    assert r.ok and r.rows_loaded == 10 and len(r.chunks) == 2
    r = ingest(recipes_dir / "ohlcv_1d.yaml", from_files=[str(folder / "**" / "*.dbn*")], store=url)
    assert r.ok and r.count("skipped") == 2  # the same two files: nothing loads twice
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceError, match=r"empty: folder holds no \.dbn or \.dbn\.zst file"):
        ingest(recipes_dir / "ohlcv_1d.yaml", from_files=[tmp_path / "empty"], store=url)
    with pytest.raises(SourceError, match=r"nothing\*\.dbn: no file matches this pattern"):
        ingest(recipes_dir / "ohlcv_1d.yaml", from_files=[str(tmp_path / "nothing*.dbn")], store=url)


def test_dry_run_reports_each_files_real_records_symbols_and_range(tmp_path, recipes_dir, april, cli):
    url = f"duckdb:///{tmp_path / 's.duckdb'}"
    zst = write_daily_bars(tmp_path / "may.dbn.zst", _bars(("SPY",), ["2020-05-01", "2020-05-04"]), ids={"SPY": 15144},
                           compress=True)
    r = ingest(recipes_dir / "ohlcv_1d.yaml", from_files=[april, zst], store=url, dry_run=True)
    got = [(c.record_count, c.symbols, c.first_ts, c.last_ts, c.rows_left_out) for c in r.chunks]
    assert got == [(10, "QQQ,SPY", dt.datetime(2020, 4, 16, tzinfo=dt.UTC), dt.datetime(2020, 4, 22, tzinfo=dt.UTC), 0),
                   (2, "SPY", dt.datetime(2020, 5, 1, tzinfo=dt.UTC), dt.datetime(2020, 5, 4, tzinfo=dt.UTC), 0)]
    res = cli("ingest", "--recipe", recipes_dir / "ohlcv_1d.yaml", "--from-file", april, "--store", url,
              "--dry-run", "--symbols", "QQQ", "--no-progress")
    assert res.exit_code == 0, res.stderr
    text = " ".join((res.stdout + res.stderr).split())
    assert ("5 records, symbols QQQ, 2020-04-16T00:00:00Z to 2020-04-22T00:00:00Z; 5 left out by "
            "--start/--end/--symbols") in text
    assert not open_store(url).has_table("ohlcv")


def test_dry_run_counts_real_samples_in_place(samples_dir, recipes_dir, tmp_path):
    pattern = str(samples_dir / "*" / "test_data.trades.dbn.zst")
    r = ingest(recipes_dir / "trades.yaml", from_files=[pattern], store=f"duckdb:///{tmp_path / 's.duckdb'}",
               dry_run=True)
    assert len(r.chunks) >= 2
    for c in r.chunks:
        path = Path(c.label.split(" (", 1)[0])
        df = DBNStore.from_file(path).to_df()
        assert c.record_count == len(df) > 0
        assert c.first_ts == df.index.min().floor("us").to_pydatetime()
        assert c.last_ts == df.index.max().floor("us").to_pydatetime()
        assert set(c.symbols.split(",")) == set(df["symbol"].dropna())


def test_a_recipe_for_files_only_needs_no_range_or_requests(any_store_url, recipes_dir, tmp_path, april):
    text = (recipes_dir / "ohlcv_1d.yaml").read_text()
    lines = [ln for ln in text.splitlines() if not ln.lstrip().startswith(("start:", "end:", "requests:", "- {dataset"))]
    files_only = tmp_path / "files_only.yaml"
    files_only.write_text("\n".join(lines) + "\n")
    r = ingest(files_only, from_files=[april], store=any_store_url)
    assert r.ok and r.rows_loaded == 10
    with pytest.raises(ConfigError, match=r"files_only.yaml: the recipe has no source.start, source.end, "
                                          r"source.requests, so it can only read DBN files; allowed: --from-file F"):
        ingest(files_only, store=any_store_url)
    half = tmp_path / "half.yaml"
    half.write_text(text.replace("  end: 2025-01-01                     # exclusive\n", ""))
    with pytest.raises(HdiError, match=r"half.yaml:6: source.start: given without source.end; allowed: both \(a range for Databento "
                                        r"requests\) or neither"):
        ingest(half, from_files=[april], store=any_store_url)
    assert len(_stored(any_store_url)) == 10
