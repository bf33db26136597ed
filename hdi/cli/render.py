"""Everything the CLI shows: logging setup, progress, summaries, tables, files. The home of rich.

Data goes to stdout; progress, logs and errors go to stderr.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING

import polars as pl
from rich.console import Console
from rich.logging import RichHandler
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from hdi import _config as config
from hdi._report import Event, IngestReport
from hdi.cli.stdout import silence
from hdi.errors import ConfigError

if TYPE_CHECKING:
    from hdi._status_report import StatusReport
    from hdi.cli.logfile import LogFile


class _Console(Console):
    """A rich console that goes quiet on a broken pipe (``hdi ingest ... | head -1``); rich's own
    default exits with status 1, which would stop an ingest midway."""

    def on_broken_pipe(self) -> None:
        self.quiet = True
        silence(self.file)


err = _Console(stderr=True, highlight=False)
log_handler: LogFile | None = None  # the ingest's LogFile, once setup_logging made one
out = _Console(highlight=False, soft_wrap=True)


class RedactFilter(logging.Filter):
    """Secrets never reach a log line: URL passwords and the API key are replaced by ***."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = config.redact(record.getMessage())
        record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = config.redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


def setup_logging(*, verbose: bool, log_file: Path | None, to_file: bool = True) -> Path | None:
    """Console logging on stderr (warnings, or INFO with -v) and a detailed log file for ingests."""
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.setLevel(logging.INFO)
    console = RichHandler(console=err, show_path=False, show_time=False, markup=False)
    console.setLevel(logging.INFO if verbose else logging.WARNING)
    console.addFilter(RedactFilter())
    # records the CLI shows in its own words (a failed chunk, once) go to the log file only
    console.addFilter(lambda record: getattr(record, "console", True))
    root.addHandler(console)
    for noisy in ("urllib3", "requests", "databento"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if not to_file:
        return None
    import datetime as dt

    from hdi._fileout import describe_error, is_duckdb_file
    from hdi.cli.logfile import FORMAT, LogFile
    from hdi.errors import OutputError

    global log_handler
    log_handler = None
    path = log_file or config.log_dir() / f"hdi-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}-{os.getpid()}.log"
    if log_file is None:
        var = "HDI_LOG_DIR" if os.environ.get("HDI_LOG_DIR") else "HDI_DATA_DIR"
        config.check_writable_dir(path.parent, "log folder", f"set {var} to another folder")
    elif path.is_dir():
        raise OutputError(f"--log-file {path} is a directory; give a file path")
    elif path.parent.exists() and not path.parent.is_dir():
        raise OutputError(f"--log-file {path}: {path.parent} is a file, not a folder")
    elif is_duckdb_file(path):
        raise OutputError(f"--log-file {path} is a DuckDB database; hdi never writes into a database file: "
                          "choose another file")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fh = LogFile(path)
    except OSError as e:
        raise OutputError(f"--log-file {path} cannot be written: {describe_error(e)}") from None
    fh.setLevel(logging.INFO)
    fh.setFormatter(logging.Formatter(FORMAT))
    fh.addFilter(RedactFilter())
    root.addHandler(fh)
    log_handler = fh
    return path


def command_line() -> str:
    """The command as typed, for the ledger (secrets redacted)."""
    return config.redact(" ".join(shlex.quote(a) for a in ["hdi", *sys.argv[1:]]))


def error(message: str) -> None:
    message = config.redact(message)  # every error line, whichever command prints it
    err.print(f"[bold red]error:[/] {message}", markup=True, highlight=False) if err.is_terminal else \
        print(f"error: {message}", file=sys.stderr)


def ok(message: str) -> None:
    err.print(f"[green]✓[/] {message}", markup=True) if err.is_terminal else print(message, file=sys.stderr)


def _writing(stream: IO[str], fn: Callable[..., object], *args: object) -> None:
    """Call a printing function; a closed pipe on ``stream`` silences it instead of stopping the caller."""
    try:
        fn(*args)
    except BrokenPipeError:
        silence(stream)


def _progress_wanted(flag: bool | None) -> bool:
    if flag is not None:
        return flag
    if os.environ.get("HDI_NO_PROGRESS") or os.environ.get("CI"):
        return False
    return err.is_terminal


class IngestProgress:
    """Rich progress bars on a terminal; plain one-line-per-chunk messages otherwise."""

    def __init__(self, enabled: bool | None) -> None:
        self.live = _progress_wanted(enabled)
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[rows]:>12,} rows"), TimeElapsedColumn(),
                                 console=err, disable=not self.live, transient=False)
        self.task: TaskID | None = None
        self.rows = 0
        self.total = 0
        self.seen = 0
        self.shown: set[str] = set()  # chunk ids whose failure is printed already
        self.workers: dict[int, TaskID] = {}  # `--workers N`: a progress line per worker, its current chunk

    def __enter__(self) -> IngestProgress:
        self.progress.__enter__()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.progress.__exit__(exc_type, exc, tb)

    def on_event(self, e: Event) -> None:
        """Show an ingest event; a closed stderr (``2>&1 | head -1``) never stops the ingest."""
        _writing(sys.stderr, self._show, e)

    def _show(self, e: Event) -> None:
        if e.kind == "plan":
            self.total = e.total
            self.task = self.progress.add_task("chunks", total=e.total, rows=0)
        elif e.kind == "chunk_start" and e.worker and self.live:
            what = f"worker {e.worker}: {e.label}"
            if e.worker not in self.workers:
                self.workers[e.worker] = self.progress.add_task(what, total=None, rows=0)
            else:
                self.progress.update(self.workers[e.worker], description=what, rows=0)
        elif e.kind == "rows" and e.worker in self.workers:
            self.progress.update(self.workers[e.worker], rows=e.rows)
        elif e.kind == "rows" and self.task is not None:
            self.progress.update(self.task, rows=self.rows + e.rows)
        elif e.kind == "chunk_end" and e.outcome is not None:
            self.seen += 1
            self.rows += e.outcome.rows_fetched
            if self.task is not None:
                self.progress.update(self.task, advance=1, rows=self.rows)
            o = e.outcome
            if o.status == "failed":  # the one place a chunk's failure is printed, as it happens
                self.shown.add(o.chunk_id)
                line = f"[{self.seen}/{self.total}] failed {o.label}: {o.error}"
                if self.live:
                    self.progress.console.print(line, markup=False, highlight=False, soft_wrap=True)
                else:
                    print(line, file=sys.stderr, flush=True)
            elif not self.live:
                by = f"worker {e.worker}: " if e.worker else ""
                tail = (f": {o.rows_fetched:,} fetched, {o.rows_loaded:,} loaded, {o.rows_quarantined:,} quarantined, "
                        f"{o.rows_already_present:,} already present" if o.status == "done" else "")
                print(f"[{self.seen}/{self.total}] {by}{o.status} {o.label}{tail}", file=sys.stderr, flush=True)
        elif e.kind == "retry":
            print(f"retrying {e.label}: {e.message}", file=sys.stderr, flush=True)
        elif e.kind == "retry_pass":  # the run's retry pass: its own count and bar
            self.total, self.seen = e.total, 0
            if self.live:
                self.progress.console.print(e.message, markup=False, highlight=False, soft_wrap=True)
                self.task = self.progress.add_task("retry pass", total=e.total, rows=0)
            else:
                print(e.message, file=sys.stderr, flush=True)


def ingest_summary(r: IngestReport, shown: set[str] | frozenset[str] = frozenset()) -> None:
    """The run's summary on stderr (a dry run's per-chunk table on stdout); a closed pipe on either
    silences it, and the exit status stays the run's. A failed chunk's error is printed here unless
    ``shown`` (its chunk id) says the progress output printed it already."""
    _writing(sys.stderr, _summary, r)
    if r.dry_run:
        _writing(sys.stdout, _dry_run_table, r)
    _writing(sys.stderr, _failures, r, shown)


def _summary(r: IngestReport) -> None:
    t = Table(title=f"hdi ingest {'(dry run) ' if r.dry_run else ''}— run {r.run_id}", show_header=False)
    t.add_column(style="bold")
    t.add_column()
    t.add_row("recipe", r.recipe)
    t.add_row("store", r.store)
    t.add_row("table", r.table)
    t.add_row("chunks", f"{r.planned or len(r.chunks)} planned: {r.count('done')} loaded, {r.count('skipped')} already done, "
                        f"{r.count('failed')} failed" + (f", {r.count('estimated')} estimated" if r.dry_run else "")
              + (f", {r.count('excluded')} files outside the window" if r.count("excluded") else "")
              + (f", {r.chunks_left} not loaded (interrupted by {r.interrupted})" if r.interrupted else ""))
    if r.dry_run:
        records = sum(c.record_count or 0 for c in r.chunks)
        size = sum(c.billable_bytes or 0 for c in r.chunks)
        t.add_row("records", f"{records:,}")
        t.add_row("billable", f"{size:,} bytes")
    else:
        t.add_row("rows", f"{r.rows_fetched:,} fetched, {r.rows_loaded:,} loaded, {r.rows_quarantined:,} "
                          f"quarantined, {r.rows_already_present:,} already present")
        t.add_row("failure rate", f"{r.failure_rate:.4%} of fetched rows failed validation (PRD target < 1%)")
    if r.rows_left_out:
        t.add_row("left out", f"{r.rows_left_out:,} records of the files outside --start/--end/--symbols"
                              + (" (not counted above)" if not r.dry_run else ""))
    retried = r.retry_note
    if retried:
        t.add_row("retry pass", retried.removeprefix("retry pass: "))
    t.add_row("cost", f"${r.cost_usd:,.2f}")
    t.add_row("elapsed", f"{r.seconds:.2f} s")
    if r.log_file:
        failed = log_handler.failure if log_handler is not None else None
        t.add_row("log", r.log_file + (f" (incomplete: writing stopped, {failed})" if failed else ""))
    err.print(t)


def _dry_run_table(r: IngestReport) -> None:
    if r.dry_run:
        d = Table(title="per chunk")
        for col in ("chunk", "records", "billable bytes", "cost USD"):
            d.add_column(col, justify="left" if col == "chunk" else "right")
        for c in r.chunks:
            d.add_row(c.label, "" if c.record_count is None else f"{c.record_count:,}",
                      "" if c.billable_bytes is None else f"{c.billable_bytes:,}",
                      "already done" if c.status == "skipped" else
                      "failed" if c.status == "failed" else
                      f"{c.rows_left_out:,} left out" if c.status == "excluded" else f"{c.cost_usd or 0:,.4f}")
        out.print(d)
        for c in r.chunks:  # files: what they really hold
            if c.symbols is not None:
                span = (f"{_when(c.first_ts)} to {_when(c.last_ts)}" if c.first_ts is not None else "no records")
                left = f"; {c.rows_left_out:,} left out by --start/--end/--symbols" if c.rows_left_out else ""
                out.print(f"{c.label}: {c.record_count:,} records, symbols {c.symbols or '-'}, {span}{left}",
                          markup=False)


def _failures(r: IngestReport, shown: set[str] | frozenset[str] = frozenset()) -> None:
    failed = [c for c in r.chunks if c.status == "failed"]
    for c in failed:
        if c.chunk_id not in shown:
            error(f"{c.label}: {c.error}")
    if failed and all(c.chunk_id in shown for c in failed):
        error(f"{len(failed)} chunk(s) failed (each error is printed above); a re-run retries them")
    v = r.budget
    if r.over_budget and v is not None:
        error(f"over quarantine budget: {v.quarantined:,} of {v.rows:,} rows ({v.rate:.2%}) quarantined by this "
              f"run, max_failure_rate {v.max_rate:.2%} (judged over the run, and per symbol from "
              f"{v.min_population:,} rows); every good row is stored (exit code 3)")
        for s in v.over_symbols:
            error(f"  {s.describe(v.max_rate)}")
        where = next((c.quarantine_path for c in r.chunks if c.quarantine_path), None)
        if where:
            error(f"  quarantined rows: {Path(where).parent if where.endswith('.parquet') else where} "
                  "(`hdi status` marks these symbols until their quarantine is replayed)")


def _when(value: object) -> str:
    return value.isoformat().replace("+00:00", "Z") if hasattr(value, "isoformat") else str(value)


def write_frame(frame: pl.DataFrame, *, format: str, output: Path | None, limit: int,
                allowed: tuple[str, ...], force: bool = False, protect: tuple[Path, ...] = ()) -> None:
    """Write a query result: Parquet (needs a path), CSV (path or stdout), or a table on stdout.

    A file is written atomically (:mod:`hdi._fileout`): an existing file only with ``force``, never a
    store in ``protect`` or any DuckDB file, never through a link or onto a FIFO or device."""
    from hdi._fileout import write_atomic
    from hdi.errors import did_you_mean

    fmt = format.strip().lower()
    if fmt not in allowed:
        raise ConfigError(f"--format '{format}' is not allowed{did_you_mean(fmt, allowed)}; "
                          f"allowed: {', '.join(allowed)}")
    if fmt == "parquet" and output is None:
        raise ConfigError("--format parquet needs --output PATH (Parquet is binary; it is not written to stdout)")
    if fmt == "table" and output is not None:
        raise ConfigError("--format table prints to stdout; use --format csv or parquet with --output")
    if output is not None:
        write_atomic(output, frame.write_parquet if fmt == "parquet" else frame.write_csv, force=force,
                     protect=protect)
        print(f"wrote {frame.height:,} rows to {output}", file=sys.stderr)
        return
    if fmt == "csv":
        sys.stdout.write(frame.write_csv())
        return
    # Every column at its natural width, one line per row (tick tables have 20+ columns: fitted to
    # the terminal, each would be squeezed to a few unreadable characters); pipe to `less -S`.
    with pl.Config(tbl_rows=limit, tbl_cols=-1, tbl_width_chars=-1, fmt_str_lengths=60,
                   tbl_hide_dataframe_shape=True, fmt_table_cell_list_len=5):
        print(frame.head(limit))
    more = frame.height - min(limit, frame.height)
    print(f"{frame.height:,} rows" + (f" ({more:,} not shown; --limit N or --format csv)" if more else ""),
          file=sys.stderr)


def status(report: StatusReport, *, as_json: bool) -> None:
    """``hdi status``: JSON, or compact text sections fitted to the terminal (80 to 100 columns)."""
    if as_json:
        print(json.dumps(report.to_dict(), indent=2, default=str))
        return
    from hdi.cli.status_view import lines

    for text, heading in lines(report, width=max(80, min(out.size.width, 100))):
        out.print(text, markup=False, style="bold" if heading else None)
