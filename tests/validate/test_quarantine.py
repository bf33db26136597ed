"""Quarantine files, the writable check, the failure-rate threshold, reading back and the summary."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from hdi.errors import QuarantineError, ValidationError
from hdi.testing.recipes import sometimes_bad_recipe
from hdi.validate.quarantine import (
    check_writable,
    enforce_failure_rate,
    quarantine_summary,
    read_quarantine,
    write_quarantine,
)
from hdi.validate.split import SplitResult, split

META = ["_run_id", "_recipe", "_source", "_chunk_id", "_table", "_quarantined_at"]


def _write(bad: pl.DataFrame, root: Path, **kw) -> Path | None:
    args = {"run_id": "r1", "table": "ohlcv", "chunk_id": "c0", "recipe": "recipes/ohlcv_1d.yaml",
            "source": "file:///data/ohlcv.dbn.zst"} | kw
    return write_quarantine(bad, root=root, **args)


def test_write_quarantine_round_trips_bad_rows_with_metadata(tmp_path, ohlcv):
    frame = ohlcv({}, {"volume": 2**63}, {"high_price": "1"}).with_columns(
        pl.col("dataset").cast(pl.Categorical), pl.lit(None).alias("trade_count"),  # Categorical, Null dtypes
    )
    bad = split(frame, "ohlcv").bad
    assert (bad.schema["dataset"], bad.schema["trade_count"]) == (pl.Categorical(), pl.Null())
    before = dt.datetime.now(dt.UTC)

    path = _write(bad, tmp_path / "q")

    assert path == tmp_path / "q" / "run=r1" / "ohlcv-c0.parquet"
    assert sorted(p.name for p in path.parent.iterdir()) == ["ohlcv-c0.parquet"]  # no temp file left
    back = pl.read_parquet(path)
    assert back.columns == [*bad.columns, *META]
    assert_frame_equal(back.select(bad.columns), bad)  # values and dtypes (UInt64 2^63, Decimal) unchanged
    assert back.select(META[:-1]).unique().rows() == [
        ("r1", "recipes/ohlcv_1d.yaml", "file:///data/ohlcv.dbn.zst", "c0", "ohlcv")
    ]
    assert back.schema["_quarantined_at"] == pl.Datetime("us", "UTC")
    stamp = back["_quarantined_at"][0]
    assert before - dt.timedelta(seconds=1) <= stamp <= dt.datetime.now(dt.UTC)
    assert back["_reasons"].to_list() == [
        "volume: 9223372036854775808 does not fit Int64",
        "high_price<max(open,close,low)",
    ]


def test_write_quarantine_of_no_rows_writes_nothing(tmp_path, ohlcv):
    assert _write(split(ohlcv({}), "ohlcv").bad, tmp_path / "q") is None
    assert not (tmp_path / "q").exists()


def test_write_quarantine_replaces_the_same_chunk_of_the_same_run(tmp_path, ohlcv):
    _write(split(ohlcv({"volume": 2**63}, {"volume": 2**63}), "ohlcv").bad, tmp_path)
    path = _write(split(ohlcv({"volume": 2**63}), "ohlcv").bad, tmp_path)
    assert pl.read_parquet(path).height == 1


def test_write_quarantine_redacts_secrets_in_the_source(tmp_path, ohlcv, monkeypatch):
    monkeypatch.setenv("DATABENTO_API_KEY", "db-SECRETKEY123")
    source = "postgresql://hdi:hunter2@localhost:5432/hdi via https://gw?key=db-SECRETKEY123"
    path = _write(split(ohlcv({"volume": None}), "ohlcv").bad, tmp_path, source=source)
    assert pl.read_parquet(path)["_source"].to_list() == ["postgresql://hdi:***@localhost:5432/hdi via https://gw?key=***"]


@pytest.mark.parametrize("chunk_id", ["../x", "a/b", "", ".."])
def test_write_quarantine_refuses_ids_that_are_not_file_names(tmp_path, ohlcv, chunk_id):
    with pytest.raises(QuarantineError) as e:
        _write(split(ohlcv({"volume": None}), "ohlcv").bad, tmp_path, chunk_id=chunk_id)
    assert str(e.value) == (f"chunk_id '{chunk_id}' cannot be part of a quarantine file name: "
                            "it must be non-empty and contain no '/', '\\' or NUL")


def test_check_writable_creates_the_folder(tmp_path):
    root = tmp_path / "a" / "b"
    check_writable(root)
    assert root.is_dir()
    assert list(root.iterdir()) == []  # the probe file is gone


def test_check_writable_under_a_regular_file(tmp_path):
    # Tests run as root, so chmod cannot make a folder unwritable; a path under a regular file is
    # unwritable for everyone.
    blocker = tmp_path / "blocker"
    blocker.write_text("not a folder")
    with pytest.raises(QuarantineError) as e:
        check_writable(blocker / "q")
    assert str(e.value) == f"quarantine folder {blocker / 'q'} is not writable: Not a directory"


def test_check_writable_when_the_root_is_a_file(tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_text("not a folder")
    with pytest.raises(QuarantineError) as e:
        check_writable(blocker)
    assert str(e.value) == f"quarantine folder {blocker} is not writable: File exists"


def test_write_quarantine_failure_leaves_no_file_and_says_where(tmp_path, ohlcv):
    blocker = tmp_path / "blocker"
    blocker.write_text("not a folder")
    with pytest.raises(QuarantineError) as e:
        _write(split(ohlcv({"volume": None}), "ohlcv").bad, blocker)
    assert str(e.value) == f"quarantine file {blocker / 'run=r1' / 'ohlcv-c0.parquet'} could not be written: Not a directory"


def _result(rows_in: int, rows_bad: int, reasons: dict[str, int]) -> SplitResult:
    return SplitResult(good=pl.DataFrame(), bad=pl.DataFrame(), rows_in=rows_in, rows_good=rows_in - rows_bad,
                       rows_bad=rows_bad, reasons=reasons)


def test_enforce_failure_rate_message():
    result = _result(1000, 12, {"volume:null": 5, "high_price<max(open,close,low)": 7, "a": 1, "b": 1})
    with pytest.raises(ValidationError) as e:
        enforce_failure_rate(result, 0.01, where="recipes/ohlcv_1d.yaml chunk 3",
                             quarantine_path=Path("/q/run=r1/ohlcv-3.parquet"))
    assert str(e.value) == (
        "recipes/ohlcv_1d.yaml chunk 3: 12 of 1000 rows (1.20%) failed validation, above the recipe's "
        "max_failure_rate 1.00%; top reasons: high_price<max(open,close,low) (7), volume:null (5), a (1); "
        "quarantined rows are in /q/run=r1/ohlcv-3.parquet"
    )


def test_enforce_failure_rate_threshold_is_inclusive_and_empty_input_passes():
    enforce_failure_rate(_result(1000, 10, {"x": 10}), 0.01, where="w")  # exactly 1%: allowed
    enforce_failure_rate(_result(0, 0, {}), 0.0, where="w")
    enforce_failure_rate(_result(5, 0, {}), 0.0, where="w")
    with pytest.raises(ValidationError) as e:
        enforce_failure_rate(_result(1000, 11, {"x": 11}), 0.01, where="w")
    assert str(e.value) == ("w: 11 of 1000 rows (1.10%) failed validation, above the recipe's "
                            "max_failure_rate 1.00%; top reasons: x (11)")


def test_enforce_failure_rate_shows_enough_decimals_to_differ():
    with pytest.raises(ValidationError) as e:
        enforce_failure_rate(_result(100_000, 1_001, {"x": 1_001}), 0.01, where="w")
    assert "1001 of 100000 rows (1.001%) failed validation, above the recipe's max_failure_rate 1.000%" in str(e.value)


def test_enforce_failure_rate_refuses_a_rate_outside_0_1():
    with pytest.raises(ValidationError) as e:
        enforce_failure_rate(_result(1, 0, {}), 5, where="recipes/x.yaml")
    assert str(e.value) == "recipes/x.yaml: max_failure_rate must be between 0 and 1 (0.01 = 1%), got 5"


def test_enforce_failure_rate_on_a_real_split(ohlcv):
    result = split(ohlcv({}, {"volume": None}, {"volume": None}, {"dataset": None}), "ohlcv")
    with pytest.raises(ValidationError) as e:
        enforce_failure_rate(result, 0.5, where="chunk 1")
    assert str(e.value) == ("chunk 1: 3 of 4 rows (75.00%) failed validation, above the recipe's "
                            "max_failure_rate 50.00%; top reasons: volume:null (2), dataset:null (1)")


def test_read_quarantine_and_summary(tmp_path, ohlcv, trades):
    root = tmp_path / "q"
    p1 = _write(split(ohlcv({"volume": None}, {"volume": 2**64 - 1}), "ohlcv").bad, root, chunk_id="c0")
    p2 = _write(split(ohlcv({"dataset": None}), "ohlcv").bad, root, chunk_id="c1")
    p3 = _write(split(trades({"size": 0}), "trades").bad, root, run_id="r2", table="trades", chunk_id="c0")
    os.utime(p1, (1_700_000_000, 1_700_000_000))
    os.utime(p2, (1_700_000_100, 1_700_000_100))
    os.utime(p3, (1_700_000_050, 1_700_000_050))
    (root / "run=r1" / ".ohlcv-c9.parquet.123.tmp").write_bytes(b"half a file")  # a writer in progress

    everything = read_quarantine(root)
    run1 = read_quarantine(root, "r1")

    assert everything.height == 4
    assert everything["_table"].to_list() == ["ohlcv", "ohlcv", "ohlcv", "trades"]
    assert everything["volume"].to_list() == [None, 2**64 - 1, 10, None]
    assert everything["size"].to_list() == [None, None, None, 0]
    assert run1["_reasons"].to_list() == ["volume:null", "volume: 18446744073709551615 does not fit Int64",
                                          "dataset:null"]
    summary = quarantine_summary(root)
    assert summary.rows() == [
        ("r1", "ohlcv", 2, 3, str(p2), dt.datetime.fromtimestamp(1_700_000_100, dt.UTC)),
        ("r2", "trades", 1, 1, str(p3), dt.datetime.fromtimestamp(1_700_000_050, dt.UTC)),
    ]
    assert summary.columns == ["run_id", "table", "files", "rows", "latest_path", "latest_mtime"]


def test_read_quarantine_and_summary_of_an_absent_folder(tmp_path):
    assert read_quarantine(tmp_path / "none").columns == META
    assert read_quarantine(tmp_path / "none").height == 0
    summary = quarantine_summary(tmp_path / "none")
    assert (summary.height, summary.columns) == (0, ["run_id", "table", "files", "rows", "latest_path",
                                                     "latest_mtime"])


# ----------------------------------------------------------------------------------- full disks
@pytest.fixture
def full_disk(tmp_path):
    from hdi.testing.disks import MountUnavailable, full_tmpfs

    try:
        with full_tmpfs(tmp_path / "full") as disk:
            yield disk
    except MountUnavailable as e:
        pytest.skip(str(e))


def test_a_full_quarantine_disk_is_one_error_and_leaves_no_temporary_file(full_disk, ohlcv):
    # Polars reports a full disk during write_parquet as a ComputeError, not an OSError: the
    # temporary file used to stay behind.
    bad = split(ohlcv(*({"volume": 2**63} for _ in range(2000))), "ohlcv").bad
    with pytest.raises(QuarantineError) as e:
        _write(bad, full_disk / "q")
    path = full_disk / "q" / "run=r1" / "ohlcv-c0.parquet"
    assert str(e.value) == f"quarantine file {path} could not be written: No space left on device"
    assert sorted(str(p.relative_to(full_disk)) for p in full_disk.rglob("*")) == [".filler", "q", "q/run=r1"]


QUARANTINING = sometimes_bad_recipe()


def test_an_ingest_onto_a_full_quarantine_disk_fails_the_chunk_and_stores_none_of_it(
        gateway, any_store_url, full_disk, tmp_path, monkeypatch):
    from hdi.pipeline import ingest
    from hdi.store import open_store

    recipe = tmp_path / "bad.yaml"
    recipe.write_text(QUARANTINING)
    qdir = full_disk / "quarantine"
    monkeypatch.setenv("HDI_QUARANTINE_DIR", str(qdir))
    report = ingest(recipe, store=any_store_url)
    assert not report.ok and [c.status for c in report.chunks] == ["failed"]
    error = report.chunks[0].error
    assert "could not be written: No space left on device" in error and str(qdir) in error
    assert [p for p in full_disk.rglob("*") if p.is_file() and p.name != ".filler"] == []  # no .tmp file
    st = open_store(any_store_url)
    assert st.chunks(status="done").height == 0  # the chunk's good rows rolled back with it
    assert not st.has_table("ohlcv") or st.query("SELECT count(*) AS n FROM ohlcv")["n"][0] == 0
    # with room again, the re-run loads the chunk whole
    (full_disk / ".filler").unlink()
    again = ingest(recipe, store=any_store_url)
    assert again.ok and again.rows_quarantined > 0 and again.rows_loaded + again.rows_quarantined == again.rows_fetched
