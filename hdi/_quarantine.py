"""``hdi quarantine``: list, show and replay the rows that failed validation.

Quarantine files are written by the ingest (:mod:`hdi.validate.quarantine`): one folder per run,
``<root>/run=<run_id>/<table>-<chunk_id>-<batch>.parquet``, each row with its ``_reasons``. They
are never modified here. What has been replayed is recorded in the store's ledger table
``quarantine_replays`` — one row per quarantined row that a replay loaded (or found already
stored), keyed by (run, file, row position) and written in the same transaction as the rows
themselves — so a row is replayed exactly once, and it leaves the *open* count the moment it
commits. Each replay is also an ``ingest_runs`` row (``command`` starts with ``hdi quarantine
replay``), so ``hdi status`` lists it among the recent runs.

Replay re-validates a file's open rows with the validation of a recipe — by default the recipe
recorded for the run that quarantined them (``ingest_runs.params``), else the one given — and
loads the rows that pass into the recipe's target table with its ``on_conflict``. Rows that still
fail stay open, with their original file untouched. Rows are not transformed again: quarantined
rows are the recipe's output, so only the validation changes.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from hdi import _config as config
from hdi.errors import ConfigError, HdiError, QuarantineError
from hdi.store import Store, open_store
from hdi.store.ledger import QUARANTINE_REPLAYS, RunRecord
from hdi.validate.quarantine import META_COLUMNS, _files, _name_part

if TYPE_CHECKING:
    from hdi.recipe.model import Recipe
    from hdi.validate.split import SplitResult

log = logging.getLogger(__name__)

REASONS = "_reasons"
FORMATS = ("table", "csv", "parquet")
_LIST_SCHEMA = {
    "run_id": pl.String(), "table": pl.String(), "files": pl.Int64(), "rows": pl.Int64(),
    "replayed": pl.Int64(), "open": pl.Int64(), "status": pl.String(), "top_reasons": pl.String(),
    "latest": pl.Datetime("us", "UTC"), "folder": pl.String(),
}


# ----------------------------------------------------------------------------------- reading
def _root(root: str | os.PathLike[str] | None) -> Path:
    return config.quarantine_dir(root)


def _run_of(path: Path) -> str:
    return path.parent.name.removeprefix("run=")


def _replayed(st: Store, run_ids: list[str] | None = None) -> pl.DataFrame:
    """(quarantine_run_id, file, row_index, replay_id) of every row replayed into this store."""
    schema = {"quarantine_run_id": pl.String(), "file": pl.String(), "row_index": pl.Int64(),
              "replay_id": pl.String()}
    if not st.has_table(QUARANTINE_REPLAYS.name):
        return pl.DataFrame(schema=schema)
    sql = 'SELECT "quarantine_run_id", "file", "row_index", "replay_id" FROM "quarantine_replays"'
    params: list[object] = []
    if run_ids is not None:
        if not run_ids:
            return pl.DataFrame(schema=schema)
        params = list(run_ids)
        sql += ' WHERE "quarantine_run_id" IN (' + ", ".join(f"${i + 1}" for i in range(len(params))) + ")"
    return st.query(sql, params).select(pl.col(c).cast(t) for c, t in schema.items())


def with_replays(st: Store, summary: pl.DataFrame) -> pl.DataFrame:
    """``quarantine_summary`` (per run and table) with ``replayed`` and ``open`` row counts (for ``hdi status``)."""
    counts = pl.DataFrame(schema={"run_id": pl.String(), "table": pl.String(), "replayed": pl.Int64()})
    if summary.height and st.has_table(QUARANTINE_REPLAYS.name):
        counts = (st.query('SELECT "quarantine_run_id" AS run_id, "target_table" AS "table", count(*) AS replayed '
                           'FROM "quarantine_replays" GROUP BY 1, 2')
                  .cast({"run_id": pl.String, "table": pl.String, "replayed": pl.Int64}))
    return (summary.join(counts, on=["run_id", "table"], how="left", maintain_order="left")
            .with_columns(pl.col("replayed").fill_null(0))
            .with_columns(open=pl.col("rows") - pl.col("replayed")))


def replayed_rows(st: Store) -> pl.DataFrame:
    """(quarantine_run_id, file, row_index, replay_id) of every quarantined row a replay loaded into
    ``st``: those rows are no longer open (the quarantine budget in ``hdi status`` uses this)."""
    return _replayed(st)


def _top_reasons(reasons: pl.Series, n: int = 3) -> str:
    counts = (reasons.drop_nulls().str.split(";").explode().value_counts(name="n")
              .sort(["n", REASONS], descending=[True, False]))
    return ", ".join(f"{r} ({k})" for r, k in counts.head(n).iter_rows())


def quarantine_list(store: str | None = None, *, root: str | os.PathLike[str] | None = None) -> pl.DataFrame:
    """Every run with quarantined rows: one row per (run, table), newest first.

    Columns: ``run_id``, ``table``, ``files``, ``rows`` (quarantined), ``replayed`` (rows a replay
    loaded into ``store``), ``open`` (rows - replayed), ``status`` (``open`` while any row is open,
    else ``replayed``), ``top_reasons`` (``reason (rows), ...``, the three most frequent among the
    open rows, or among all rows once none is open), ``latest`` (newest file's time) and ``folder``.

    Args:
        store: the store whose replay ledger says what was replayed (default ``HDI_STORE``).
        root: the quarantine folder (default ``HDI_QUARANTINE_DIR``, else ``<data dir>/quarantine``).
    """
    files = _files(_root(root), None)
    if not files:
        return pl.DataFrame(schema=_LIST_SCHEMA)
    done = _replayed(open_store(store))
    records = []
    for f in files:
        run = _run_of(f)
        reasons = pl.read_parquet(f, columns=[REASONS]).get_column(REASONS)
        done_rows = done.filter((pl.col("quarantine_run_id") == run) & (pl.col("file") == f.name))
        opened = ~pl.int_range(reasons.len(), eager=True).is_in(done_rows.get_column("row_index").implode())
        records.append(_FileCounts(run_id=run, table=f.name.split("-", 1)[0], rows=reasons.len(),
                                   replayed=done_rows.height, open_reasons=reasons.filter(opened),
                                   all_reasons=reasons,
                                   mtime=dt.datetime.fromtimestamp(f.stat().st_mtime, dt.UTC),
                                   folder=str(f.parent)))
    out = []
    for (run, table), group in _group(records):
        rows = sum(g.rows for g in group)
        replayed = sum(g.replayed for g in group)
        out.append({"run_id": run, "table": table, "files": len(group), "rows": rows, "replayed": replayed,
                    "open": rows - replayed, "status": "open" if rows > replayed else "replayed",
                    "top_reasons": _top_reasons(pl.concat([g.open_reasons if rows > replayed else g.all_reasons
                                                           for g in group])),
                    "latest": max(g.mtime for g in group), "folder": group[0].folder})
    return (pl.DataFrame(out, schema=_LIST_SCHEMA)
            .sort(["latest", "run_id", "table"], descending=[True, False, False]))


@dataclass(frozen=True)
class _FileCounts:
    """One quarantine file's rows, as :func:`quarantine_list` counts them."""

    run_id: str
    table: str
    rows: int
    replayed: int  # rows a replay loaded into the store
    open_reasons: pl.Series  # the reasons of the rows not replayed
    all_reasons: pl.Series
    mtime: dt.datetime
    folder: str


def _group(records: list[_FileCounts]) -> list[tuple[tuple[str, str], list[_FileCounts]]]:
    groups: dict[tuple[str, str], list[_FileCounts]] = {}
    for r in records:
        groups.setdefault((r.run_id, r.table), []).append(r)
    return list(groups.items())


def _run_files(root: Path, run_id: str) -> list[Path]:
    _name_part("run_id", run_id)
    files = _files(root, run_id)
    if not files:
        raise QuarantineError(f"run '{run_id}' has no quarantine files in {root}; "
                              "`hdi quarantine list` shows the runs that have")
    return files


def _read(f: Path) -> pl.DataFrame:
    """A quarantine file with ``_file`` (its name) and ``_row`` (each row's position in it)."""
    frame = pl.read_parquet(f)
    return frame.with_columns(pl.lit(f.name).alias("_file"), pl.int_range(frame.height, dtype=pl.Int64).alias("_row"))


def quarantine_show(run_id: str, *, store: str | None = None,
                    root: str | os.PathLike[str] | None = None) -> pl.DataFrame:
    """The quarantined rows of one run, with their reasons and whether a replay loaded them.

    Columns: ``_status`` (``open`` or ``replayed``), ``_reasons`` (``;``-joined), the rows' own
    columns as quarantined (values and dtypes unchanged; the union over the run's tables), then
    ``_file`` and ``_row`` (where the row is), ``_replay_id`` (the replay that loaded it, else
    null) and the ingest's metadata columns (``_run_id``, ``_recipe``, ``_source``, ``_chunk_id``,
    ``_table``, ``_quarantined_at``).

    Raises:
        QuarantineError: the run has no quarantine files.
    """
    root_path = _root(root)
    files = _run_files(root_path, run_id)
    frame = pl.concat([_read(f) for f in files], how="diagonal_relaxed")
    done = (_replayed(open_store(store), [run_id])
            .select(pl.col("file").alias("_file"), pl.col("row_index").alias("_row"),
                    pl.col("replay_id").alias("_replay_id")))
    frame = frame.join(done, on=["_file", "_row"], how="left", maintain_order="left")
    frame = frame.with_columns(pl.when(pl.col("_replay_id").is_null()).then(pl.lit("open"))
                               .otherwise(pl.lit("replayed")).alias("_status"))
    tail = ["_file", "_row", "_replay_id", *[c for c in META_COLUMNS if c in frame.columns]]
    data = [c for c in frame.columns if c not in ("_status", REASONS, *tail)]
    return frame.select("_status", REASONS, *data, *tail)


def save_frame(frame: pl.DataFrame, path: str | os.PathLike[str], *, format: str, force: bool = False) -> Path:
    """Write ``frame`` as CSV or Parquet to ``path``, whole or not at all (:mod:`hdi._fileout`: a
    temporary file renamed into place; an existing file only with ``force``; never a store, a
    symlink, a FIFO or a device).

    Raises:
        ConfigError: the format is not csv or parquet.
        OutputError: the path is refused, or the file cannot be written (a full disk, say).
    """
    from hdi._fileout import write_atomic

    if format not in ("csv", "parquet"):
        raise ConfigError(f"--format '{format}' cannot be written to a file; allowed: csv, parquet")
    return write_atomic(Path(path), frame.write_csv if format == "csv" else frame.write_parquet, force=force)


# ----------------------------------------------------------------------------------- replay
@dataclass
class ReplayedFile:
    """What a replay did with one quarantine file."""

    run_id: str
    file: str
    table: str
    recipe: str
    rows: int  # rows in the file
    open_before: int  # rows not replayed before this replay
    replayed: int = 0  # rows that passed and left the open quarantine
    loaded: int = 0  # of those, rows new to the table
    already_present: int = 0  # of those, rows whose key the table already held
    still_failing: int = 0  # rows that failed again: still open
    reasons: dict[str, int] = field(default_factory=dict)  # why the still-failing rows failed


@dataclass
class ReplayReport:
    """The outcome of ``hdi quarantine replay``."""

    replay_id: str
    store: str
    files: list[ReplayedFile] = field(default_factory=list)
    seconds: float = 0.0

    def _sum(self, name: str) -> int:
        return sum(getattr(f, name) for f in self.files)

    @property
    def open_before(self) -> int:
        return self._sum("open_before")

    @property
    def replayed(self) -> int:
        return self._sum("replayed")

    @property
    def loaded(self) -> int:
        return self._sum("loaded")

    @property
    def already_present(self) -> int:
        return self._sum("already_present")

    @property
    def still_failing(self) -> int:
        return self._sum("still_failing")


def _new_id() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


def _recorded_recipe(st: Store, run_id: str) -> str:
    runs = st.runs(limit=100_000).filter(pl.col("run_id") == run_id)
    if runs.height == 0:
        raise ConfigError(f"run '{run_id}' is not in the ledger of {st.display_url}, so its recipe is unknown; "
                          "pass --recipe PATH (or --store, the store that run wrote to)")
    params: dict[str, object] = json.loads(runs.get_column("params")[0] or "{}")
    recipe = params.get("recipe")
    if not isinstance(recipe, str) or not recipe:
        raise ConfigError(f"run '{run_id}' recorded no recipe path; pass --recipe PATH")
    if not Path(recipe).is_file():
        raise ConfigError(f"run '{run_id}' was ingested with recipe {recipe}, which no longer exists; "
                          "pass --recipe PATH")
    return recipe


def _revalidate(st: Store, frame: pl.DataFrame, table: str, recipe: Recipe, start: dt.datetime | None,
                end: dt.datetime | None) -> SplitResult:
    """The ingest's own validation (``hdi.validate.split``) with the recipe's options and the
    ingest's price rule (the instrument's definition, else its dataset's asset class)."""
    from hdi.validate.price_rules import PriceRule
    from hdi.validate.split import split

    rule = PriceRule(st, recipe.validate.allow_non_positive_prices)
    datasets = (frame.get_column("dataset").cast(pl.String).drop_nulls().unique().to_list()
                if "dataset" in frame.columns and frame.height else [])
    if len(datasets) == 1:
        allow: pl.Expr | bool = rule.for_frame(table, datasets[0], frame)
    else:  # rows of several datasets (or none named): each dataset's own rule
        allow = rule.override if rule.override is not None else False
        for ds in datasets:
            one = rule.for_frame(table, ds, frame.filter(pl.col("dataset").cast(pl.String) == ds))
            allow = (pl.when(pl.col("dataset").cast(pl.String) == ds).then(one).otherwise(allow)
                     if not isinstance(one, bool) or one else allow)
    return split(frame, table, start=start, end=end, allow_non_positive_prices=allow)


def _window(st: Store, frame: pl.DataFrame) -> tuple[dt.datetime | None, dt.datetime | None]:
    """The time window the chunk was validated against: its request's, from the ledger.

    Rows from a ``--from-file`` file are loaded whole, so they have none."""
    if "_chunk_id" not in frame.columns or frame.height == 0:
        return None, None
    chunk_id = str(frame.get_column("_chunk_id")[0]).rsplit("-", 1)[0]
    rows = st.chunks(chunk_ids=[chunk_id])
    if rows.height == 0 or rows.get_column("source")[0] != "databento":
        return None, None
    return rows.get_column("start_ts")[0], rows.get_column("end_ts")[0]


def quarantine_replay(
    run_id: str | None = None, *, all_runs: bool = False, recipe: str | os.PathLike[str] | None = None,
    store: str | None = None, root: str | os.PathLike[str] | None = None,
    command: str = "hdi quarantine replay",
) -> ReplayReport:
    """Re-validate quarantined rows with the current rules and load those that pass, exactly once.

    Args:
        run_id: the run whose quarantine to replay (see :func:`quarantine_list`).
        all_runs: replay every run's open rows instead (each with its own recorded recipe; with
            ``recipe``, the rows bound for that recipe's table).
        recipe: the recipe whose ``validate`` section and target to use (default: the recipe each
            run recorded). Its target table must be the one the rows were bound for.
        store: the store to load into (default ``HDI_STORE``); it holds the replay ledger.
        root: the quarantine folder (default ``HDI_QUARANTINE_DIR``).
        command: how the replay was started, recorded in the ledger.

    Returns:
        What was replayed, file by file. Rows that fail again stay open (no error).

    Raises:
        HdiError: no or both of ``run_id`` / ``all_runs``, an unknown run, a recipe that cannot be
            found or loaded or targets another table, or a store error (files replayed before it
            stay replayed; running the replay again continues with the rest).
    """
    from hdi.recipe.compile import recipe_hash
    from hdi.recipe.load import load_recipe

    t0 = time.perf_counter()
    if (run_id is None) == (not all_runs):
        raise ConfigError("give one run id to replay, or --all for every run (not both)")
    root_path = _root(root)
    st = open_store(store)
    files = _files(root_path, None) if all_runs else _run_files(root_path, run_id or "")
    runs = list(dict.fromkeys(_run_of(f) for f in files))
    done = _replayed(st, runs)
    given = load_recipe(recipe) if recipe is not None else None
    recipes: dict[str, Recipe] = {}
    plan: list[tuple[Path, pl.DataFrame, Recipe]] = []
    for f in files:  # everything checked before anything is loaded
        file_run = _run_of(f)
        seen = done.filter((pl.col("quarantine_run_id") == file_run) & (pl.col("file") == f.name))
        frame = _read(f).filter(~pl.col("_row").is_in(seen.get_column("row_index").implode()))
        if frame.height == 0:
            continue
        if given is not None:
            r = given
        else:
            path = _recorded_recipe(st, file_run)
            r = recipes.get(path) or recipes.setdefault(path, load_recipe(path))
        table = str(frame.get_column("_table")[0]) if "_table" in frame.columns else f.name.split("-", 1)[0]
        if all_runs and given is not None and table != given.target.table:
            continue  # --all --recipe R: the runs' rows bound for R's table
        if r.target.table != table:
            raise ConfigError(f"{f}: its rows were bound for table '{table}' but recipe {r.path} targets "
                              f"'{r.target.table}'; pass a recipe for {table} with --recipe")
        plan.append((f, frame, r))
    report = ReplayReport(replay_id=_new_id(), store=st.display_url)
    if not plan:
        report.seconds = time.perf_counter() - t0
        return report
    st.migrate()
    first = plan[0][2]
    run = RunRecord(run_id=report.replay_id, recipe=first.name, recipe_hash=recipe_hash(first), command=command,
                    params=json.dumps({"replay": runs, "recipe": str(Path(first.path).absolute())
                                       if given is not None else None}, sort_keys=True),
                    chunks_total=len(plan))
    st.save_run(run)
    try:
        for f, frame, r in plan:
            report.files.append(_replay_file(st, f, frame, r, report.replay_id))
            run.chunks_done += 1
        run.status = "succeeded"
    except HdiError as e:
        run.status, run.error = "failed", config.redact(e.message)
        run.chunks_failed = 1
        raise
    finally:
        run.finished_at = dt.datetime.now(dt.UTC)
        run.rows_fetched, run.rows_loaded = report.open_before, report.loaded
        run.rows_quarantined, run.rows_already_present = report.still_failing, report.already_present
        report.seconds = time.perf_counter() - t0
        try:
            st.save_run(run)
        except HdiError as e:
            log.error("replay %s: could not record its end: %s", run.run_id, e.message)
    return report


def _replay_file(st: Store, f: Path, frame: pl.DataFrame, r: Recipe, replay_id: str) -> ReplayedFile:
    run = _run_of(f)
    table = r.target.table
    total = pl.scan_parquet(f).select(pl.len()).collect().item()
    out = ReplayedFile(run_id=run, file=f.name, table=table, recipe=str(r.path), rows=total,
                       open_before=frame.height)
    start, end = _window(st, frame)
    rows = frame.drop([c for c in (*META_COLUMNS, REASONS, "_file", "_symbol") if c in frame.columns])
    res = _revalidate(st, rows, table, r, start, end)
    failed = res.bad.get_column("_row") if res.rows_bad else pl.Series("_row", [], pl.Int64)
    passed = rows.get_column("_row").filter(~rows.get_column("_row").is_in(failed.implode()))
    out.still_failing = res.rows_bad
    out.reasons = dict(res.reasons)
    if passed.len():
        ledger = pl.DataFrame({"row_index": passed}).with_columns(
            quarantine_run_id=pl.lit(run), file=pl.lit(f.name), replay_id=pl.lit(replay_id),
            target_table=pl.lit(table), replayed_at=pl.lit(dt.datetime.now(dt.UTC), pl.Datetime("ns", "UTC")))
        with st.transaction() as txn:
            txn.write(table, res.good, on_conflict=r.target.on_conflict)
            txn.write(QUARANTINE_REPLAYS.name, ledger, on_conflict="ignore")
            out.loaded, out.already_present = txn.inserted, txn.already_present
        out.replayed = passed.len()
    log.info("replay %s: %s: %d open rows, %d replayed (%d new, %d already stored), %d still failing",
             replay_id, f, out.open_before, out.replayed, out.loaded, out.already_present, out.still_failing)
    return out
