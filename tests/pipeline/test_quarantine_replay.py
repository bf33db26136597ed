"""`hdi quarantine list | show | replay` end to end, on both stores: quarantined rows are listed with
their reasons, replayed through a recipe's rules exactly once, and the ledger records it."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

import hdi
from hdi import _config as config
from hdi.errors import ConfigError, QuarantineError
from hdi.pipeline import ingest
from hdi.store import open_store
from hdi.testing.dbnfiles import Bar, write_daily_bars
from hdi.testing.recipes import sometimes_bad_recipe

SPY = 15144
# SPY daily bars on XNAS.ITCH (an equity: prices must be > 0 unless the recipe allows otherwise).
BARS = [
    Bar("2024-03-04", "SPY", "500.25", "510", "495", "505.5"),
    Bar("2024-03-05", "SPY", "505", "506", "0", "501"),           # low 0: non-positive price
    Bar("2024-03-06", "SPY", "0", "502", "0", "0"),               # open, low, close 0
    Bar("2024-03-07", "SPY", "500", "490", "495", "495"),         # high < low: broken whatever the rules
    Bar("2024-03-08", "SPY", "511", "512", "500", "510.125"),
]


def _recipes(recipes_dir: Path, tmp_path: Path) -> tuple[Path, Path]:
    """The shipped daily-bar recipe, loading good rows whatever the failure rate; and a copy that
    accepts zero and negative prices (the "fixed" rule)."""
    text = (recipes_dir / "ohlcv_1d.yaml").read_text().replace("max_failure_rate: 0.01", "max_failure_rate: 1.0")
    strict, loose = tmp_path / "strict.yaml", tmp_path / "loose.yaml"
    strict.write_text(text)
    loose.write_text(text.replace("max_failure_rate: 1.0", "max_failure_rate: 1.0\n  allow_non_positive_prices: true"))
    return strict, loose


@pytest.fixture
def quarantined(any_store_url, recipes_dir, tmp_path):
    strict, loose = _recipes(recipes_dir, tmp_path)
    f = write_daily_bars(tmp_path / "spy.dbn", BARS, ids={"SPY": SPY})
    r = ingest(strict, from_files=[f], store=any_store_url)
    assert (r.rows_loaded, r.rows_quarantined) == (2, 3)
    return r.run_id, strict, loose, any_store_url


def _closes(url: str) -> list[Decimal]:
    bars = hdi.read_bars("SPY", "2024-03-01", "2024-04-01", store=url, prices="decimal")
    return bars.sort("bar_timestamp_utc").get_column("close_price").to_list()


def test_list_and_show_give_runs_rows_and_reasons(quarantined):
    run, _, _, url = quarantined
    listed = hdi.quarantine_list(url)
    assert listed.select("run_id", "table", "files", "rows", "replayed", "open", "status").rows() == [
        (run, "ohlcv", 1, 3, 0, 3, "open")]
    assert listed["top_reasons"][0].startswith("low_price<=0 (2), ")
    rows = hdi.quarantine_show(run, store=url)
    assert rows.columns[:2] == ["_status", "_reasons"]
    assert rows.select("_status", "_row").rows() == [("open", 0), ("open", 1), ("open", 2)]
    assert rows["_reasons"].to_list() == [
        "low_price<=0", "open_price<=0;low_price<=0;close_price<=0", "high_price<max(open,close,low)"]
    assert rows["close_price"].to_list() == [Decimal("501"), Decimal("0"), Decimal("495")]


def test_replay_loads_rows_that_pass_the_fixed_rule_exactly_once(quarantined):
    run, strict, loose, url = quarantined
    # The recorded recipe's rules are unchanged: nothing passes, nothing is recorded.
    same = hdi.quarantine_replay(run, store=url)
    assert (same.open_before, same.replayed, same.still_failing) == (3, 0, 3)
    assert Path(same.files[0].recipe).resolve() == strict.resolve()  # the recipe the run recorded
    assert _closes(url) == [Decimal("505.5"), Decimal("510.125")]

    fixed = hdi.quarantine_replay(run, store=url, recipe=loose)
    assert (fixed.open_before, fixed.replayed, fixed.loaded, fixed.already_present, fixed.still_failing) == (3, 2, 2, 0, 1)
    assert fixed.files[0].reasons == {"high_price<max(open,close,low)": 1}
    assert _closes(url) == [Decimal("505.5"), Decimal("501"), Decimal("0"), Decimal("510.125")]

    again = hdi.quarantine_replay(run, store=url, recipe=loose)  # the double replay adds nothing
    assert (again.open_before, again.replayed, again.loaded, again.still_failing) == (1, 0, 0, 1)
    assert len(_closes(url)) == 4

    listed = hdi.quarantine_list(url)
    assert listed.select("rows", "replayed", "open", "status").rows() == [(3, 2, 1, "open")]
    assert listed["top_reasons"][0] == "high_price<max(open,close,low) (1)"
    assert hdi.status(url).quarantine.select("rows", "replayed", "open").rows() == [(3, 2, 1)]
    shown = hdi.quarantine_show(run, store=url)
    assert shown.select("_status", "_row", "_replay_id").rows() == [
        ("replayed", 0, fixed.replay_id), ("replayed", 1, fixed.replay_id), ("open", 2, None)]

    # The ledger: one row per replayed row, and one ingest_runs row per replay that had work.
    st = open_store(url)
    ledger = st.query('SELECT quarantine_run_id, file, row_index, replay_id, target_table FROM quarantine_replays '
                      'ORDER BY row_index')
    assert ledger.rows() == [(run, shown["_file"][0], 0, fixed.replay_id, "ohlcv"),
                             (run, shown["_file"][0], 1, fixed.replay_id, "ohlcv")]
    runs = st.runs(limit=10).filter(pl.col("run_id") == fixed.replay_id)
    assert runs.select("status", "rows_fetched", "rows_loaded", "rows_quarantined").rows() == [("succeeded", 3, 2, 1)]
    with pytest.raises(ConfigError, match=f"--resume {fixed.replay_id}: that run is a quarantine replay"):
        ingest(resume=fixed.replay_id, store=url)
    # The quarantine file itself is never changed.
    assert pl.read_parquet(config.quarantine_dir() / f"run={run}" / shown["_file"][0]).height == 3


def test_replay_all_replays_every_run_once(quarantined, recipes_dir):
    run, _, loose, url = quarantined
    report = hdi.quarantine_replay(all_runs=True, store=url, recipe=loose)
    assert (report.replayed, report.still_failing) == (2, 1)
    assert hdi.quarantine_replay(all_runs=True, store=url, recipe=loose).replayed == 0
    assert hdi.quarantine_replay(all_runs=True, store=url, recipe=recipes_dir / "trades.yaml").files == []


def test_replay_errors_are_one_line_and_load_nothing(quarantined, recipes_dir):
    run, _, _, url = quarantined
    with pytest.raises(QuarantineError, match=r"run 'nope' has no quarantine files in .*; `hdi quarantine list`"):
        hdi.quarantine_replay("nope", store=url)
    with pytest.raises(ConfigError, match="give one run id to replay, or --all"):
        hdi.quarantine_replay(store=url)
    with pytest.raises(ConfigError, match=r"bound for table 'ohlcv' but recipe .*trades.yaml targets 'trades'"):
        hdi.quarantine_replay(run, store=url, recipe=recipes_dir / "trades.yaml")
    assert len(_closes(url)) == 2


def test_replay_needs_a_recipe_when_the_store_never_saw_the_run(quarantined, tmp_path):
    run, _, loose, _ = quarantined
    other = f"duckdb:///{tmp_path / 'other.duckdb'}"
    with pytest.raises(ConfigError, match=f"run '{run}' is not in the ledger of .*other.duckdb.*pass --recipe PATH"):
        hdi.quarantine_replay(run, store=other)
    assert hdi.quarantine_replay(run, store=other, recipe=loose).loaded == 2


def test_cli_list_show_replay(quarantined, cli, tmp_path):
    run, _, loose, url = quarantined
    r = cli("quarantine", "list", "--store", url)
    assert r.exit_code == 0 and run in r.stdout and "open" in r.stdout

    out = tmp_path / "rows.csv"
    r = cli("quarantine", "show", run, "--store", url, "--format", "csv", "--output", out)
    assert r.exit_code == 0, r.stderr
    assert pl.read_csv(out).height == 3
    r = cli("quarantine", "show", run, "--store", url, "--format", "csv", "--output", out)
    assert r.exit_code == 1 and f"output {out} already exists; pass --force" in r.stderr
    parquet = tmp_path / "rows.parquet"
    parquet.write_bytes(b"mine")
    r = cli("quarantine", "show", run, "--store", url, "--format", "parquet", "--output", parquet)
    assert r.exit_code == 1 and parquet.read_bytes() == b"mine"
    r = cli("quarantine", "show", run, "--store", url, "--format", "parquet", "--output", parquet, "--force")
    assert r.exit_code == 0 and pl.read_parquet(parquet)["_reasons"].len() == 3

    r = cli("quarantine", "replay", run, "--store", url, "--recipe", loose)
    assert r.exit_code == 0, r.stderr
    assert "2 of 3 open rows replayed (2 new, 0 already stored), 1 still failing" in " ".join(r.stderr.split())
    r = cli("quarantine", "replay", "--all", "--store", url, "--recipe", loose)
    assert r.exit_code == 0 and "0 of 1 open rows replayed" in " ".join(r.stderr.split())
    r = cli("quarantine", "list", "--store", url)
    assert "replayed" in r.stdout


# Daily bars from the local gateway where every bar whose volume is a multiple of 3 has its low
# above its high: broken under any rules.
BROKEN = sometimes_bad_recipe("sometimes_broken", period="week")


def test_replaying_api_chunks_checks_each_chunks_window_and_keeps_broken_rows_open(gateway, any_store_url, tmp_path):
    recipe = tmp_path / "broken.yaml"
    recipe.write_text(BROKEN)
    r = ingest(recipe, store=any_store_url)
    assert r.ok and r.rows_quarantined > 0 and len({c.chunk_id for c in r.chunks}) > 1
    before = hdi.quarantine_show(r.run_id, store=any_store_url)
    report = hdi.quarantine_replay(r.run_id, store=any_store_url)
    assert (report.open_before, report.replayed, report.still_failing) == (r.rows_quarantined, 0, r.rows_quarantined)
    # validated against each chunk's own week: the reasons are the original ones, none is new
    reasons: dict[str, int] = {}
    for f in report.files:
        for k, v in f.reasons.items():
            reasons[k] = reasons.get(k, 0) + v
    expected = before["_reasons"].str.split(";").explode().value_counts()
    assert reasons == dict(expected.iter_rows())
    assert hdi.quarantine_list(any_store_url)["open"].to_list() == [r.rows_quarantined]


def test_show_output_follows_the_same_file_rules_as_query(cli, quarantined, tmp_path):
    """``hdi quarantine show --output`` goes through hdi._fileout too: a symlink and a DuckDB file are
    refused even with --force, and nothing is left beside them."""
    run, _, _, url = quarantined
    real = tmp_path / "real.csv"
    real.write_text("mine\n")
    link = tmp_path / "link.csv"
    link.symlink_to(real)
    r = cli("quarantine", "show", run, "--store", url, "--format", "csv", "--output", link, "--force")
    assert r.exit_code == 1 and r.stderr.strip().splitlines() == [
        f"error: output {link} is a symbolic link to {real}; hdi does not write through or replace a link: give "
        f"its target {real} instead"]
    assert real.read_text() == "mine\n" and link.is_symlink()
    import duckdb

    db = tmp_path / "other.duckdb"
    with duckdb.connect(str(db)) as con:
        con.execute("CREATE TABLE t AS SELECT 1 AS x")
    r = cli("quarantine", "show", run, "--store", url, "--format", "parquet", "--output", db, "--force")
    assert r.exit_code == 1 and "is a DuckDB database; hdi never writes over a database file" in r.stderr
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
