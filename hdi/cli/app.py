"""The ``hdi`` command: parse arguments, call the library, render. Nothing else lives here."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from hdi import schemas
from hdi.cli import render
from hdi.cli.quarantine_cmd import quarantine_app
from hdi.errors import ConfigError, HdiError

app = typer.Typer(
    name="hdi",
    help="hdi (Hist_Data_Ingestor): Databento historical market data into validated TimescaleDB or "
         "DuckDB tables, columnar end to end.\n\nStores: duckdb:///path/file.duckdb (default: "
         "./data/hdi.duckdb, or HDI_STORE) or postgresql://user:pass@host:port/db (TimescaleDB).",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
recipes_app = typer.Typer(help="Work with recipe files.", no_args_is_help=True)
app.add_typer(recipes_app, name="recipes")
app.add_typer(quarantine_app, name="quarantine")

StoreOpt = Annotated[str | None, typer.Option(
    "--store", metavar="URL", help="Store URL: duckdb:///path/file.duckdb or postgresql://user:pass@host:port/db. "
    "Default: HDI_STORE, else ./data/hdi.duckdb (HDI_DATA_DIR moves ./data).")]
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="Log INFO lines to the console too.")]

SCHEMAS = (*sorted((s for s in (*schemas.SCHEMAS, *schemas.RESAMPLED_BARS) if schemas.bar_seconds(s)),
                   key=lambda s: schemas.bar_seconds(s) or 0),
           *(s for s in schemas.SCHEMAS if schemas.bar_seconds(s) is None))
FORMATS = ("parquet", "csv", "table")
EXIT_OVER_BUDGET = 3  # hdi ingest: every good row stored, more rows quarantined than max_failure_rate


def _fail(e: HdiError) -> typer.Exit:
    from hdi.config import redact

    logging.getLogger("hdi.cli").debug("error", exc_info=e)
    render.error(redact(e.message))
    return typer.Exit(e.exit_code)


@app.callback(invoke_without_command=True)
def _main(version: Annotated[bool, typer.Option("--version", help="Print the version and exit.")] = False) -> None:
    if version:
        from hdi import __version__

        print(f"hdi {__version__}")
        raise typer.Exit(0)


@app.command()
def ingest(
    recipe: Annotated[Path | None, typer.Option("--recipe", "-r", metavar="PATH",
                                                help="Recipe YAML (see docs/recipes.md).")] = None,
    start: Annotated[str | None, typer.Option(metavar="DATE", help="Override the recipe's start "
                                              "(inclusive; YYYY-MM-DD or ISO timestamp, UTC). With --from-file: "
                                              "load only the files' records from here.")] = None,
    end: Annotated[str | None, typer.Option(metavar="DATE", help="Override the recipe's end (exclusive). With "
                                            "--from-file: load only the files' records before it.")] = None,
    symbols: Annotated[str | None, typer.Option(metavar="A,B", help="Override the recipe's symbols "
                                                "(comma-separated). With --from-file: load only these "
                                                "symbols' records.")] = None,
    from_file: Annotated[list[Path] | None, typer.Option("--from-file", metavar="F", help="Ingest DBN files "
                         "already on disk instead of calling Databento: a .dbn or .dbn.zst file, a folder "
                         "(every such file under it) or a quoted glob ('raw/*.dbn.zst'); repeat the option. "
                         "Files load whole (their own range and symbols; the recipe's range and requests do not "
                         "apply) unless --start/--end/--symbols are given: then records outside them are left "
                         "out and counted.")] = None,
    store: StoreOpt = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print record count, billable size and cost per "
                                          "chunk and in total; download and store nothing. For --from-file: "
                                          "each file's real record count, symbols and time range.")] = False,
    refresh: Annotated[bool, typer.Option("--refresh", help="Download and load again even chunks that are "
                                          "cached or already done.")] = False,
    resume: Annotated[str | None, typer.Option(metavar="RUN_ID", help="Continue a run with its own recipe and "
                                               "parameters, no --recipe needed (an --update run keeps its "
                                               "ranges); plain re-runs resume on their own too.")] = None,
    update: Annotated[bool, typer.Option("--update", help="Extend each symbol from where this recipe's data "
                                         "ends (that last day fetched again whole, failed chunks retried) to "
                                         "the end of the dataset's available range (or --end); symbols never "
                                         "loaded start at --start (default: the recipe's start).")] = False,
    workers: Annotated[int, typer.Option("--workers", min=1, max=64, metavar="N", help="Worker processes that "
                                         "download, decode and load chunks at once (each chunk is still one "
                                         "transaction). TimescaleDB and the Iceberg lake take several writers; "
                                         "a DuckDB file takes one, so it loads with 1.")] = 1,
    progress: Annotated[bool | None, typer.Option("--progress/--no-progress", help="Progress bars (default: "
                                                  "when stderr is a terminal).")] = None,
    log_file: Annotated[Path | None, typer.Option(metavar="PATH", help="Log file (default: "
                                                  "data/logs/hdi-<time>-<pid>.log).")] = None,
    verbose: VerboseOpt = False,
) -> None:
    """Fetch, decode, transform, validate and store a recipe's data, chunk by chunk.

    A re-run skips chunks already loaded by the same recipe and retries failed ones; nothing is
    stored twice. Rows failing validation go to quarantine; every good row is stored.

    Exit codes: 0 done; 1 a chunk failed (or a bad input); 2 a malformed command line; 3 every good
    row is stored but more rows were quarantined than the recipe's max_failure_rate allows, over the
    run or for a symbol with at least 1,000 rows (the summary and `hdi status` name them; a re-run
    does not count them again); 130 (SIGINT, Ctrl-C) or 143 (SIGTERM) when stopped: the chunk in
    flight is rolled back and the run recorded interrupted (a second Ctrl-C exits at once).
    """
    from hdi.interrupt import Interrupted, exit_code
    from hdi.pipeline import ingest as run_ingest

    try:
        log_path = render.setup_logging(verbose=verbose, log_file=log_file)
        with render.IngestProgress(enabled=progress) as bar:
            report = run_ingest(
                recipe, start=start, end=end, symbols=symbols, from_files=from_file, store=store,
                dry_run=dry_run, refresh=refresh, resume=resume, update=update, on_event=bar.on_event,
                command=render.command_line(), workers=workers,
            )
    except HdiError as e:
        raise _fail(e) from None
    except Interrupted as e:  # before the run's first chunk: nothing was loaded
        render.error(f"interrupted by {e.name} before any chunk was loaded")
        raise typer.Exit(e.exit_code) from None
    report.log_file = str(log_path)
    render.ingest_summary(report, shown=bar.shown)
    if report.interrupted:
        render.error(f"interrupted by {report.interrupted}: the chunk in flight was rolled back, {report.chunks_left} "
                     f"of {report.planned} chunks not loaded; `hdi ingest --resume {report.run_id}` finishes the run")
        raise typer.Exit(exit_code(report.interrupted))
    raise typer.Exit(1 if not report.ok else EXIT_OVER_BUDGET if report.over_budget else 0)


@app.command()
def query(
    schema: Annotated[str, typer.Option(help=f"What to read: {', '.join(SCHEMAS)}.")],
    symbols: Annotated[str, typer.Option(metavar="A,B", help="Symbols (CL.c.0, ESH5, ES.FUT, SPY) or "
                                         "instrument ids, comma-separated.")],
    start: Annotated[str, typer.Option(metavar="DATE", help="Inclusive start, YYYY-MM-DD or ISO timestamp (UTC).")],
    end: Annotated[str, typer.Option(metavar="DATE", help="Exclusive end, YYYY-MM-DD or ISO timestamp (UTC).")],
    format: Annotated[str, typer.Option("--format", "-f", help="parquet, csv or table. CSV and table go to "
                                        "stdout when no --output is given; parquet needs --output.")] = "table",
    output: Annotated[Path | None, typer.Option("--output", "-o", metavar="PATH", help="File to write (to a "
                      "temporary file beside it, then renamed into place). An existing file is replaced only "
                      "with --force; a store, a symlink, a FIFO or a device never.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing --output file.")] = False,
    store: StoreOpt = None,
    dataset: Annotated[str | None, typer.Option(metavar="DATASET", help="Only this dataset "
                                                "(e.g. GLBX.MDP3), when a symbol exists in several.")] = None,
    prices: Annotated[str, typer.Option(help="float (default) or decimal (exact DECIMAL(19,9)).")] = "float",
    limit: Annotated[int, typer.Option(help="Rows shown by --format table (files get every row).")] = 50,
    tz: Annotated[str | None, typer.Option("--tz", metavar="ZONE", help="Show times in this zone instead of "
                                           "UTC: 'exchange' (the venue's, e.g. America/Chicago for GLBX.MDP3) "
                                           "or an IANA zone (America/New_York). Storage stays UTC.")] = None,
    all_publications: Annotated[bool, typer.Option("--all-publications", help="--schema statistics: every "
                                                   "publication (deletes included), not only the latest per "
                                                   "statistic and day.")] = False,
) -> None:
    """Read stored rows for symbols in [start, end) and write Parquet, CSV or a table.

    Every row names the symbol asked for (symbol), the contract (raw_symbol, as of the row's time)
    and its instrument_id, for parent (ES.FUT) and continuous (CL.c.0) symbols too.
    """
    from hdi import query as q
    from hdi.fileout import check_target

    render.setup_logging(verbose=False, log_file=None, to_file=False)
    try:
        if all_publications and schema.strip().lower() != "statistics":
            raise ConfigError(f"--all-publications applies to --schema statistics only, not '{schema}'")
        protect = _store_files(store)
        if output is not None:  # refused before the store is read
            check_target(output, force=force, protect=protect)
        extra = {"tz": tz, **({"latest": False} if all_publications else {})}
        frame = _read(q, schema, symbols, start, end, store, dataset, prices, **extra)
        render.write_frame(frame, format=format, output=output, limit=limit, allowed=FORMATS, force=force,
                           protect=protect)
    except HdiError as e:
        raise _fail(e) from None


def _read(q: object, schema: str, symbols: str, start: str, end: str, store: str | None, dataset: str | None,
          prices: str, **extra: object) -> object:
    from hdi.errors import did_you_mean

    s = schema.strip().lower()
    if s not in SCHEMAS:
        raise ConfigError(f"--schema '{schema}' is not allowed{did_you_mean(s, SCHEMAS)}; allowed: {', '.join(SCHEMAS)}")
    kw = {"store": store, "dataset": dataset, "prices": prices, **extra}
    if s.startswith("ohlcv-"):
        return q.read_bars(symbols, start, end, granularity=s.removeprefix("ohlcv-"), **kw)  # type: ignore[attr-defined]
    return q.READERS[s](symbols, start, end, **kw)  # type: ignore[attr-defined]


def _store_files(store: str | None) -> tuple[Path, ...]:
    """The DuckDB store's file and WAL, which an --output may never replace."""
    from hdi.config import store_url

    url = store_url(store)
    if not url.lower().startswith("duckdb://"):
        return ()
    from hdi.store.duckdb import parse_path

    path = parse_path(url)
    return path, path.with_name(path.name + ".wal")


@app.command()
def status(
    store: StoreOpt = None,
    format: Annotated[str, typer.Option("--format", "-f", help="table (text sections, times to the second) or "
                                        "json (every field, every day list in full, times to the "
                                        "nanosecond).")] = "table",
    runs: Annotated[int, typer.Option(help="Recent runs to show.")] = 10,
    html: Annotated[Path | None, typer.Option("--html", help="Also write the coverage picture to this file: a "
                                              "self-contained HTML page (inline CSS/SVG, no script) with a "
                                              "calendar heatmap per (dataset, schema, symbol) of days with "
                                              "data, no data, missing and quarantined, plus the runs. "
                                              "Never replaces a file without --force.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing --html file.")] = False,
) -> None:
    """What is stored: rows per table and per symbol (first/last time), coverage and gaps per
    (dataset, schema, symbol), quarantine files, recent runs and failed chunks.

    A day fetched whose source had no records (a holiday, a no-trade day) is "no data"; a day never
    fetched (a failed chunk, a range never asked for) is "MISSING". A run marked running* has no
    end recorded: it still runs, or was killed; `hdi ingest --resume RUN_ID` finishes it.
    """
    from hdi.status_report import status as get_status

    render.setup_logging(verbose=False, log_file=None, to_file=False)
    if format not in ("table", "json"):
        raise _fail(ConfigError(f"--format '{format}' is not allowed; allowed: table, json"))
    try:
        if html is not None:
            from hdi.fileout import check_target

            check_target(html, force=force, protect=_store_files(store), what="--html file")
        report = get_status(store, runs=runs)
        if html is not None:
            from hdi.status_html import quarantined_days, write_html

            write_html(report, html, force=force, protect=_store_files(store),
                       quarantined=quarantined_days(store))
    except HdiError as e:
        raise _fail(e) from None
    render.status(report, as_json=format == "json")


@recipes_app.command("validate")
def recipes_validate(
    paths: Annotated[list[Path] | None, typer.Argument(help="Recipe files (default: every recipes/*.yaml).")] = None,
) -> None:
    """Load and compile recipes against the decoder's schema; report every problem with file:line."""
    from hdi.pipeline import check_recipe

    render.setup_logging(verbose=False, log_file=None, to_file=False)
    files = paths or sorted(Path("recipes").glob("*.yaml"))
    if not files:
        raise _fail(ConfigError("no recipe files given and none in ./recipes"))
    bad = 0
    for f in files:
        try:
            compiled = check_recipe(f)
            render.ok(f"{f}: ok ({compiled.recipe.source.schema} -> {compiled.table.name})")
        except HdiError as e:
            bad = max(bad, e.exit_code)  # 2 when a file is beyond hdi's input limits
            render.error(e.message)
    raise typer.Exit(bad)


def main() -> None:
    """Console-script entry point."""
    from hdi.cli.stdout import guarded
    from hdi.redaction import install_excepthook, print_exception

    install_excepthook()  # other threads' uncaught tracebacks are printed redacted
    try:
        guarded(app, render.error)  # a full disk or closed pipe on stdout: one line, exit 1
    except KeyboardInterrupt:
        render.error("interrupted")
        sys.exit(130)
    except SystemExit as e:
        if e.code in (130, 143):  # an interrupted ingest, recorded and reported: exit without the teardown
            from hdi.interrupt import exit_now

            exit_now(e.code)
        raise
    except Exception as e:  # a bug: its traceback, redacted like every message
        print_exception(e)
        sys.exit(1)
