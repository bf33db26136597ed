"""``hdi quarantine list | show | replay``: parse, call :mod:`hdi._quarantine`, render."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from hdi.cli import render
from hdi.errors import ConfigError, HdiError

quarantine_app = typer.Typer(
    help="Rows that failed validation (Parquet under HDI_QUARANTINE_DIR, one folder per run): list the "
         "runs, show their rows with the reasons, replay them through the current rules.",
    no_args_is_help=True,
)

StoreOpt = Annotated[str | None, typer.Option(
    "--store", metavar="URL", help="Store URL (its ledger records what was replayed): duckdb:///path/file.duckdb "
    "or postgresql://user:pass@host:port/db. Default: HDI_STORE, else ./data/hdi.duckdb.")]


def _fail(e: HdiError) -> typer.Exit:
    from hdi._config import redact

    logging.getLogger("hdi.cli").debug("error", exc_info=e)
    render.error(redact(e.message))
    return typer.Exit(1)


@quarantine_app.command("list")
def list_(store: StoreOpt = None) -> None:
    """Runs with quarantined rows, newest first: files, rows, rows replayed, rows still open, the top
    reasons and the status (open while any row is open, else replayed)."""
    from hdi._quarantine import quarantine_list

    render.setup_logging(verbose=False, log_file=None, to_file=False)
    try:
        frame = quarantine_list(store)
    except HdiError as e:
        raise _fail(e) from None
    if frame.height == 0:
        print("no quarantined rows", file=sys.stderr)
        return
    # Plain lines, readable at 80 columns: a table of nine columns is not.
    for r in frame.iter_rows(named=True):
        files = f"{r['files']:,} file" + ("s" if r["files"] != 1 else "")
        render.out.print(f"{r['run_id']}  {r['table']:<10} {r['status']:<8}  {r['rows']:,} rows in {files}: "
                         f"{r['open']:,} open, {r['replayed']:,} replayed; latest "
                         f"{r['latest']:%Y-%m-%d %H:%M:%SZ}", markup=False)
        render.out.print(f"    top reasons: {r['top_reasons']}", markup=False)
    render.out.print(f"folder: {Path(frame['folder'][0]).parent}", markup=False)


@quarantine_app.command("show")
def show(
    run: Annotated[str, typer.Argument(metavar="RUN", help="The run id (see `hdi quarantine list`).")],
    format: Annotated[str, typer.Option("--format", "-f", help="table, csv or parquet. table and csv go to "
                                        "stdout when no --output is given; parquet needs --output.")] = "table",
    output: Annotated[Path | None, typer.Option("--output", "-o", metavar="PATH", help="File to write (never "
                                                "overwritten without --force).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite --output if it exists.")] = False,
    store: StoreOpt = None,
    limit: Annotated[int, typer.Option(help="Rows shown by --format table (files get every row).")] = 50,
) -> None:
    """The quarantined rows of one run with their reasons: _status (open or replayed), _reasons,
    the row's own columns, then _file and _row (where it is kept), _replay_id and the ingest's metadata."""
    from hdi._quarantine import FORMATS, quarantine_show, save_frame

    render.setup_logging(verbose=False, log_file=None, to_file=False)
    try:
        fmt = format.strip().lower()
        if fmt not in FORMATS:
            raise ConfigError(f"--format '{format}' is not allowed; allowed: {', '.join(FORMATS)}")
        if fmt == "parquet" and output is None:
            raise ConfigError("--format parquet needs --output PATH (Parquet is binary; it is not written to stdout)")
        if fmt == "table" and output is not None:
            raise ConfigError("--format table prints to stdout; use --format csv or parquet with --output")
        if output is not None:  # before reading anything
            from hdi._fileout import check_target

            check_target(output, force=force)
        frame = quarantine_show(run, store=store)
        if output is not None:
            save_frame(frame, output, format=fmt, force=force)
            print(f"wrote {frame.height:,} rows to {output}", file=sys.stderr)
        else:
            render.write_frame(frame, format=fmt, output=None, limit=limit, allowed=FORMATS)
    except HdiError as e:
        raise _fail(e) from None


@quarantine_app.command("replay")
def replay(
    run: Annotated[str | None, typer.Argument(metavar="RUN", help="The run whose quarantine to replay.")] = None,
    all_runs: Annotated[bool, typer.Option("--all", help="Replay the open rows of every run (with --recipe: "
                                           "those bound for its table).")] = False,
    recipe: Annotated[Path | None, typer.Option("--recipe", "-r", metavar="PATH", help="Validate with this "
                                                "recipe (default: the recipe each run recorded); its target "
                                                "table must be the rows' table.")] = None,
    store: StoreOpt = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log INFO lines to the console too.")] = False,
) -> None:
    """Re-validate quarantined rows with the current rules and load those that pass, exactly once.

    Rows already replayed are skipped, so a second replay adds nothing; rows that still fail stay
    open, their files untouched. The store's ledger records each replayed row (quarantine_replays)
    and the replay itself (an ingest_runs row). Exit code 0 also when rows still fail; 1 on an error.
    """
    from hdi._quarantine import quarantine_replay

    render.setup_logging(verbose=verbose, log_file=None, to_file=False)
    try:
        report = quarantine_replay(run, all_runs=all_runs, recipe=recipe, store=store,
                                   command=render.command_line())
    except HdiError as e:
        raise _fail(e) from None
    if not report.files:
        print("nothing to replay: no open quarantined rows", file=sys.stderr)
        return
    for f in report.files:  # plain lines, readable at 80 columns
        why = ", ".join(f"{k} ({v})" for k, v in sorted(f.reasons.items(), key=lambda kv: (-kv[1], kv[0]))[:3])
        render.err.print(f"{f.run_id} {f.file}: {f.open_before:,} open, {f.replayed:,} replayed ({f.loaded:,} new, "
                         f"{f.already_present:,} already stored), {f.still_failing:,} still failing"
                         + (f": {why}" if why else ""), markup=False)
    render.err.print(f"replay {report.replay_id} into {report.store}: {report.replayed:,} of {report.open_before:,} open rows replayed "
                     f"({report.loaded:,} new, {report.already_present:,} already stored), "
                     f"{report.still_failing:,} still failing and open, {report.seconds:.2f} s", markup=False)
