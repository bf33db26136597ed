"""Quarantine: bad rows as Parquet, one folder per run, and the failure-rate threshold.

Layout: ``<root>/run=<run_id>/<table>-<chunk_id>.parquet``. Each file holds the bad rows of one chunk
as :func:`hdi.validate.split.split` returned them (input columns, values and dtypes unchanged, plus
``_reasons``), and the metadata columns ``_run_id``, ``_recipe``, ``_source``, ``_chunk_id``,
``_table`` and ``_quarantined_at`` (UTC). Files are written to a hidden temporary name in the same
folder and renamed into place, so a reader never sees half a file; re-writing the same chunk of the
same run replaces its file.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from hdi._config import redact
from hdi._fileout import write_atomic
from hdi.errors import QuarantineError, ValidationError

if TYPE_CHECKING:
    from hdi.validate.split import SplitResult

log = logging.getLogger(__name__)

META_COLUMNS = ("_run_id", "_recipe", "_source", "_chunk_id", "_table", "_quarantined_at")
_SUMMARY_SCHEMA = {
    "run_id": pl.String(), "table": pl.String(), "files": pl.Int64(), "rows": pl.Int64(),
    "latest_path": pl.String(), "latest_mtime": pl.Datetime("us", "UTC"),
}


def check_writable(root: Path) -> None:
    """Create the quarantine folder if needed and prove a file can be written in it.

    Call it before loading anything, so that a run cannot store good rows and then lose bad ones.

    Raises:
        QuarantineError: ``quarantine folder <path> is not writable: <reason>``.
    """
    root = Path(root)
    probe = root / f".hdi-write-probe-{uuid.uuid4().hex}"
    try:
        root.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        reason = e.strerror or type(e).__name__
        raise QuarantineError(f"quarantine folder {root} is not writable: {reason}") from e


def _name_part(what: str, value: str) -> str:
    if not value or value in (".", "..") or "/" in value or "\\" in value or "\0" in value:
        raise QuarantineError(f"{what} '{value}' cannot be part of a quarantine file name: "
                              "it must be non-empty and contain no '/', '\\' or NUL")
    return value


def write_quarantine(
    bad: pl.DataFrame, *, root: Path, run_id: str, table: str, chunk_id: str, recipe: str, source: str,
) -> Path | None:
    """Write one chunk's bad rows to ``<root>/run=<run_id>/<table>-<chunk_id>.parquet``.

    Args:
        bad: ``SplitResult.bad``.
        root: the quarantine folder (``hdi._config.quarantine_dir()``).
        run_id: the run's id.
        table: the table the rows were bound for.
        chunk_id: the chunk's id within the run.
        recipe: the recipe's name or path.
        source: where the rows came from (file path, API request); secrets are redacted.

    Returns:
        The file written, or None when ``bad`` is empty (nothing is written).

    Raises:
        QuarantineError: the file cannot be written, or an id contains a path separator.
    """
    if bad.height == 0:
        return None
    folder = Path(root) / f"run={_name_part('run_id', run_id)}"
    path = folder / f"{_name_part('table', table)}-{_name_part('chunk_id', chunk_id)}.parquet"
    now = dt.datetime.now(dt.UTC)
    out = bad.with_columns(
        pl.lit(run_id, dtype=pl.String).alias("_run_id"),
        pl.lit(recipe, dtype=pl.String).alias("_recipe"),
        pl.lit(redact(source), dtype=pl.String).alias("_source"),
        pl.lit(chunk_id, dtype=pl.String).alias("_chunk_id"),
        pl.lit(table, dtype=pl.String).alias("_table"),
        pl.lit(now, dtype=pl.Datetime("us", "UTC")).alias("_quarantined_at"),
    )
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise QuarantineError(f"quarantine file {path} could not be written: {e.strerror or e}") from e
    # A full disk (Polars reports it as a ComputeError) or Ctrl-C leaves no temporary file behind.
    write_atomic(path, out.write_parquet, force=True, what="quarantine file", error=QuarantineError,
                 failed="could not be written")
    log.info("quarantined %d %s rows in %s", bad.height, table, path)
    return path


def _percent(rate: float, other: float) -> tuple[str, str]:
    """Both rates as percentages, with enough decimals (2 to 6) to tell them apart."""
    for digits in range(2, 7):
        a, b = f"{rate * 100:.{digits}f}%", f"{other * 100:.{digits}f}%"
        if a != b:
            break
    return a, b


def enforce_failure_rate(
    result: SplitResult, max_rate: float, *, where: str, quarantine_path: Path | str | None = None,
) -> None:
    """Fail when more rows failed validation than the recipe allows.

    Args:
        result: the split of one chunk (or of a whole run, summed by the caller).
        max_rate: the recipe's ``max_failure_rate``, a fraction in [0, 1] (0.01 = 1%).
        where: what the rows were, for the message (e.g. ``recipes/ohlcv_1d.yaml chunk 3``).
        quarantine_path: where the bad rows were written, named in the message when given.

    Raises:
        ValidationError: ``<where>: 12 of 1000 rows (1.20%) failed validation, above the recipe's
            max_failure_rate 1.00%; top reasons: a (7), b (5); quarantined rows are in <path>``;
            also when ``max_rate`` is outside [0, 1]. Never for 0 input rows.
    """
    if not 0.0 <= max_rate <= 1.0:
        raise ValidationError(f"{where}: max_failure_rate must be between 0 and 1 (0.01 = 1%), got {max_rate}")
    if result.rows_in == 0 or result.rows_bad / result.rows_in <= max_rate:
        return
    shown, allowed = _percent(result.rows_bad / result.rows_in, max_rate)
    top = sorted(result.reasons.items(), key=lambda kv: (-kv[1], kv[0]))[:3]
    message = (
        f"{where}: {result.rows_bad} of {result.rows_in} rows ({shown}) failed validation, above the "
        f"recipe's max_failure_rate {allowed}; top reasons: "
        + ", ".join(f"{reason} ({count})" for reason, count in top)
    )
    if quarantine_path is not None:
        message += f"; quarantined rows are in {quarantine_path}"
    raise ValidationError(message)


def _files(root: Path, run_id: str | None) -> list[Path]:
    pattern = f"run={_name_part('run_id', run_id)}/*.parquet" if run_id else "run=*/*.parquet"
    return sorted(p for p in Path(root).glob(pattern) if not p.name.startswith("."))


def read_quarantine(root: Path, run_id: str | None = None) -> pl.DataFrame:
    """All quarantined rows under ``root`` (or of one run), file by file in path order.

    Tables have different columns: the result has the union of them (null where a file lacks a
    column), dtypes widened where files differ. An empty or absent folder gives an empty frame
    with the metadata columns.
    """
    files = _files(root, run_id)
    if not files:
        return pl.DataFrame(schema={c: pl.String() for c in META_COLUMNS[:-1]}
                            | {"_quarantined_at": pl.Datetime("us", "UTC")})
    return pl.concat([pl.read_parquet(f) for f in files], how="diagonal_relaxed")


def quarantine_summary(root: Path) -> pl.DataFrame:
    """Per run and table: files, rows, the latest file and its modification time (for ``hdi status``).

    Rows are read from the Parquet footers, not the data. Sorted by latest modification, newest first.
    """
    records = []
    for f in _files(root, None):
        table = f.name.split("-", 1)[0]
        rows = pl.scan_parquet(f).select(pl.len()).collect().item()
        mtime = dt.datetime.fromtimestamp(f.stat().st_mtime, dt.UTC)
        records.append({"run_id": f.parent.name.removeprefix("run="), "table": table, "rows": rows,
                        "path": str(f), "mtime": mtime})
    if not records:
        return pl.DataFrame(schema=_SUMMARY_SCHEMA)
    return (
        pl.DataFrame(records, schema_overrides={"mtime": pl.Datetime("us", "UTC")})
        .group_by("run_id", "table")
        .agg(files=pl.len().cast(pl.Int64), rows=pl.col("rows").sum().cast(pl.Int64),
             latest_path=pl.col("path").sort_by("mtime", "path").last(), latest_mtime=pl.col("mtime").max())
        .sort(["latest_mtime", "run_id", "table"], descending=[True, False, False])
        .select(list(_SUMMARY_SCHEMA))
    )
