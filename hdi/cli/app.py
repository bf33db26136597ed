"""The ``hdi`` command: parse arguments, call the library, render. Nothing else lives here."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from hdi import _schemas as schemas
from hdi.cli import render
from hdi.cli.quarantine_cmd import quarantine_app
from hdi.errors import ConfigError, HdiError

if TYPE_CHECKING:
    import polars as pl

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
    from hdi._config import redact

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
                                         "loaded start at --start (default: the recipe's start). Days loaded "
                                         "before that Databento has restated since (a later last_modified_date) "
                                         "or that were degraded or pending when fetched are fetched again and "
                                         "their stored rows replaced exactly.")] = False,
    restatements: Annotated[bool, typer.Option("--restatements", help="Only fetch again, over --start/--end "
                                               "(default: the recipe's range), the days Databento restated since "
                                               "they were loaded or that were degraded or pending when fetched; "
                                               "their stored rows are replaced exactly (docs/restatements.md).")
                            ] = False,
    workers: Annotated[int, typer.Option("--workers", min=1, max=64, metavar="N", help="Worker processes that "
                                         "download, decode and load chunks at once (each chunk is still one "
                                         "transaction). TimescaleDB and the Iceberg lake take several writers; "
                                         "a DuckDB file takes one, so it loads with 1.")] = 1,
    retry_passes: Annotated[int | None, typer.Option("--retry-passes", metavar="N", help="After the chunk pass, "
                            "load the chunks that failed transiently (an outage longer than the per-call retries: "
                            "5xx, 429, dropped connections, a store that went away) again, up to N times, each "
                            "after --retry-pass-wait; terminal failures are not retried. 0-10 (default: "
                            "HDI_RETRY_PASSES, else 2; 0 = no retry pass).")] = None,
    retry_pass_wait: Annotated[float | None, typer.Option("--retry-pass-wait", metavar="SECONDS", help="Pause "
                               "before each retry pass, 0-3600 s (default: HDI_RETRY_PASS_WAIT, else 60); "
                               "Ctrl-C ends it at once.")] = None,
    batch: Annotated[str, typer.Option("--batch", metavar="auto|always|never", help="Fetch by Databento batch "
                                       "jobs (submit, wait, download each job file: billed once, resumable; the "
                                       "store's ledger keeps the job ids, so a re-run never submits the same job "
                                       "twice): auto when the run's billable size is above the recipe's "
                                       "source.batch_threshold_bytes (default 5 GB), always, or never (the "
                                       "streaming API). Needs source.chunk.period day or month. See "
                                       "docs/batch.md.")] = "auto",
    progress: Annotated[bool | None, typer.Option("--progress/--no-progress", help="Progress bars (default: "
                                                  "when stderr is a terminal).")] = None,
    log_file: Annotated[Path | None, typer.Option(metavar="PATH", help="Log file (default: "
                                                  "data/logs/hdi-<time>-<pid>.log).")] = None,
    verbose: VerboseOpt = False,
) -> None:
    """Fetch, decode, transform, validate and store a recipe's data, chunk by chunk.

    A re-run skips chunks already loaded by the same recipe and retries failed ones; nothing is
    stored twice. Within a run, chunks that failed transiently get a retry pass after a pause
    (--retry-passes, --retry-pass-wait). Rows failing validation go to quarantine; every good row is stored.

    Exit codes: 0 done; 1 a chunk failed (or a bad input); 2 a malformed command line; 3 every good
    row is stored but more rows were quarantined than the recipe's max_failure_rate allows, over the
    run or for a symbol with at least 1,000 rows (the summary and `hdi status` name them; a re-run
    does not count them again); 130 (SIGINT, Ctrl-C) or 143 (SIGTERM) when stopped: the chunk in
    flight is rolled back and the run recorded interrupted (a second Ctrl-C exits at once).
    """
    from hdi._interrupt import Interrupted, exit_code
    from hdi.pipeline import ingest as run_ingest

    try:
        log_path = render.setup_logging(verbose=verbose, log_file=log_file)
        with render.IngestProgress(enabled=progress) as bar:
            report = run_ingest(
                recipe, start=start, end=end, symbols=symbols, from_files=from_file, store=store,
                dry_run=dry_run, refresh=refresh, resume=resume, update=update, on_event=bar.on_event,
                command=render.command_line(), workers=workers, restatements=restatements,
                retry_passes=retry_passes, retry_pass_wait=retry_pass_wait, batch=batch,
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
    start: Annotated[str, typer.Option(metavar="DATE", help="Inclusive start, YYYY-MM-DD or ISO timestamp (UTC).")],
    end: Annotated[str, typer.Option(metavar="DATE", help="Exclusive end, YYYY-MM-DD or ISO timestamp (UTC).")],
    schema: Annotated[str | None, typer.Option(help=f"What to read: {', '.join(SCHEMAS)}. Required, except "
                                               "with --continuous (bars, default ohlcv-1d).")] = None,
    symbols: Annotated[str | None, typer.Option(metavar="A,B", help="Symbols (CL.c.0, ESH5, ES.FUT, SPY) or "
                                                "instrument ids, comma-separated. Required, except with "
                                                "--continuous.")] = None,
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
    continuous: Annotated[str | None, typer.Option("--continuous", metavar="ROOT", help="A continuous future "
                          "built from ROOT's stored contracts (e.g. CL; see docs/continuous.md): each row names "
                          "its contract; adjusted prices in open_price..close_price, traded ones in "
                          "*_unadjusted.")] = None,
    roll: Annotated[str, typer.Option(help="--continuous: calendar, volume or open_interest.")] = "calendar",
    days_before_expiry: Annotated[int, typer.Option(help="--continuous --roll calendar: trading days before "
                                                    "the last trade date the next contract starts.")] = 0,
    adjust: Annotated[str, typer.Option(help="--continuous: none, difference or ratio.")] = "none",
    direction: Annotated[str, typer.Option(help="--continuous: backward (the latest contract as traded) or "
                                           "forward (the first one as traded).")] = "backward",
    plot: Annotated[Path | None, typer.Option("--plot", metavar="FILE.png", help="--continuous: also write a "
                    "PNG of the adjusted and unadjusted closes with the rolls marked (needs matplotlib: "
                    "pip install 'hdi[plot]'); an existing file only with --force.")] = None,
    session: Annotated[str | None, typer.Option("--session", metavar="KIND", help="--schema ohlcv-*: utc "
                                                "(default: bars as stored; ohlcv-1d is a UTC day), exchange "
                                                "(bars on the instrument's exchange calendar, built from the "
                                                "stored 1m bars: ohlcv-1d per trading date with settlement, "
                                                "cleared volume and open interest; 5m/15m/1h anchored at the "
                                                "session open; --start/--end are trading dates) or extended "
                                                "(equities: NYSE pre/post market). See docs/sessions.md.")] = None,
    as_of: Annotated[str | None, typer.Option("--as-of", metavar="TIME", help="--session exchange, ohlcv-1d: "
                                              "settlement, cleared volume and open interest as known at this "
                                              "instant (ISO timestamp, UTC): null before their publication.")] = None,
) -> None:
    """Read stored rows for symbols in [start, end) and write Parquet, CSV or a table.

    Every row names the symbol asked for (symbol), the contract (raw_symbol, as of the row's time)
    and its instrument_id, for parent (ES.FUT) and continuous (CL.c.0) symbols too.
    `--session exchange` gives bars on the exchange's trading day (docs/sessions.md). With
    --continuous ROOT, a continuous future joined from ROOT's contracts by hdi's own roll schedule.
    """
    from hdi._fileout import check_target

    render.setup_logging(verbose=False, log_file=None, to_file=False)
    try:
        if continuous is None:
            for flag, value in (("--schema", schema), ("--symbols", symbols)):
                if value is None:
                    raise ConfigError(f"{flag} is required (or --continuous ROOT for a continuous future)")
            if plot is not None:
                raise ConfigError("--plot applies to --continuous only")
        elif symbols is not None:
            raise ConfigError("--symbols and --continuous exclude each other: --continuous takes the root (CL)")
        if all_publications and (schema or "").strip().lower() != "statistics":
            raise ConfigError(f"--all-publications applies to --schema statistics only, not '{schema}'")
        protect = _store_files(store)
        for path in (output, plot):
            if path is not None:  # refused before the store is read
                check_target(path, force=force, protect=protect)
        if continuous is not None:
            if as_of is not None:
                raise ConfigError("--as-of does not apply to --continuous (see hdi rolls --as-of)")
            frame = _read_continuous(continuous, schema, start, end, store, dataset, roll, days_before_expiry,
                                     adjust, direction, tz, plot, force, protect, session)
            render.write_frame(frame, format=format, output=output, limit=limit, allowed=FORMATS, force=force,
                               protect=protect)
            return
        assert schema is not None and symbols is not None
        if (session is not None or as_of is not None) and not schema.strip().lower().startswith("ohlcv-"):
            raise ConfigError(f"--session and --as-of apply to --schema ohlcv-* only, not '{schema}'")
        frame = _read(schema, symbols, start, end, store, dataset, prices, tz, latest=not all_publications,
                      session=session, as_of=as_of)
        render.write_frame(frame, format=format, output=output, limit=limit, allowed=FORMATS, force=force,
                           protect=protect)
    except HdiError as e:
        raise _fail(e) from None


def _read(schema: str, symbols: str, start: str, end: str, store: str | None, dataset: str | None,
          prices: str, tz: str | None, *, latest: bool, session: str | None = None,
          as_of: str | None = None) -> pl.DataFrame:
    from hdi import _query as q
    from hdi._tables import schema_hint

    s = schema.strip().lower()
    if s not in SCHEMAS:
        raise ConfigError(f"--schema '{schema}' is not allowed{schema_hint(s, SCHEMAS)}; allowed: {', '.join(SCHEMAS)}")
    if s.startswith("ohlcv-"):
        return q.read_bars(symbols, start, end, granularity=s.removeprefix("ohlcv-"), store=store, dataset=dataset,
                           prices=prices, tz=tz, session=session, as_of=as_of)
    if s == "statistics":
        return q.read_statistics(symbols, start, end, store=store, dataset=dataset, latest=latest, prices=prices,
                                 tz=tz)
    return q.READERS[s](symbols, start, end, store=store, dataset=dataset, prices=prices, tz=tz)


def _read_continuous(root: str, schema: str | None, start: str, end: str, store: str | None, dataset: str | None,
                     roll: str, days: int, adjust: str, direction: str, tz: str | None, plot: Path | None,
                     force: bool, protect: tuple[Path, ...], session: str | None = None) -> pl.DataFrame:
    from hdi.errors import did_you_mean
    from hdi.research.continuous import read_continuous

    s = (schema or "ohlcv-1d").strip().lower()
    bars = tuple(x for x in SCHEMAS if x.startswith("ohlcv-"))
    if s not in bars:
        raise ConfigError(f"--schema '{schema}' is not allowed with --continuous{did_you_mean(s, bars)}; allowed: "
                          f"{', '.join(bars)}")
    frame = read_continuous(root, start, end, granularity=s.removeprefix("ohlcv-"), roll=roll,
                            days_before_expiry=days, adjust=adjust, dataset=dataset or "GLBX.MDP3", store=store,
                            direction=direction, session=session)
    if plot is not None:
        from hdi.research.plot import plot_continuous

        what = f"roll {roll}" + (f" {days} days before expiry" if roll == "calendar" else "")
        plot_continuous(frame, plot, force=force, protect=protect,
                        title=f"{root} continuous ({s}), {what}, adjust {adjust} ({direction})")
        print(f"wrote the picture to {plot}", file=sys.stderr)
    if tz is not None:
        from hdi._tz import to_zone, zone_for

        frame = to_zone(frame, zone_for(tz, {dataset or "GLBX.MDP3"}))
    return frame


@app.command()
def rolls(
    root: Annotated[str, typer.Argument(metavar="ROOT", help="Futures root, e.g. CL (its contracts' definitions "
                                        "must be stored: recipes/cl_contracts_definitions.yaml).")],
    rule: Annotated[str, typer.Option(help="calendar, volume or open_interest.")] = "calendar",
    days_before_expiry: Annotated[int, typer.Option(help="--rule calendar: trading days before the last trade "
                                                    "date the next contract starts.")] = 0,
    dataset: Annotated[str, typer.Option(metavar="DATASET")] = "GLBX.MDP3",
    as_of: Annotated[str | None, typer.Option("--as-of", metavar="TIME", help="Compute the schedule from the "
                     "records received before TIME only (UTC), as a run then would have; not stored.")] = None,
    format: Annotated[str, typer.Option("--format", "-f", help="table or csv, on stdout.")] = "table",
    store: StoreOpt = None,
) -> None:
    """Compute ROOT's roll schedule under a rule from the stored contracts, store it (table rolls) and
    print it: trading date, from/to contract, and the timestamp of the data that decided each roll
    (always before the session open the roll takes effect at).
    """
    from hdi.research.rolls import rolls as compute

    render.setup_logging(verbose=False, log_file=None, to_file=False)
    try:
        frame = compute(root, rule, days_before_expiry, dataset, store, as_of=as_of)
        frame = frame.drop("dataset", "root")
        render.write_frame(frame, format=format, output=None, limit=10_000, allowed=("table", "csv"))
    except HdiError as e:
        raise _fail(e) from None


def _store_files(store: str | None) -> tuple[Path, ...]:
    """The DuckDB store's file and WAL, which an --output may never replace."""
    from hdi._config import store_url

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

    Days are judged by each symbol's exchange calendar: a trading day fetched whose source had no
    records is "FLAGGED" (the source may be incomplete); a day the market is closed (weekend,
    holiday) is "closed" (none expected); early closes are listed. A day never fetched (a failed
    chunk, a range never asked for) is "MISSING". A symbol with no known calendar keeps "no data"
    for its fetched days without records. A run marked running* has no
    end recorded: it still runs, or was killed; `hdi ingest --resume RUN_ID` finishes it.
    """
    from hdi._status_report import status as get_status

    render.setup_logging(verbose=False, log_file=None, to_file=False)
    if format not in ("table", "json"):
        raise _fail(ConfigError(f"--format '{format}' is not allowed; allowed: table, json"))
    try:
        if html is not None:
            from hdi._fileout import check_target

            check_target(html, force=force, protect=_store_files(store), what="--html file")
        report = get_status(store, runs=runs)
        if html is not None:
            from hdi._status_html import quarantined_days, write_html

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
    from hdi._redaction import install_excepthook, print_exception
    from hdi.cli.stdout import guarded

    install_excepthook()  # other threads' uncaught tracebacks are printed redacted
    try:
        guarded(app, render.error)  # a full disk or closed pipe on stdout: one line, exit 1
    except KeyboardInterrupt:
        render.error("interrupted")
        sys.exit(130)
    except SystemExit as e:
        if e.code in (130, 143):  # an interrupted ingest, recorded and reported: exit without the teardown
            from hdi._interrupt import exit_now

            exit_now(e.code)
        raise
    except Exception as e:  # a bug: its traceback, redacted like every message
        print_exception(e)
        sys.exit(1)
