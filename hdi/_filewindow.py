"""``hdi ingest --from-file`` with ``--start/--end/--symbols``: which of a file's records load.

A file is loaded whole by default (its own range and symbols; the recipe's range and requests do
not apply to files). Given a window, each file's request is narrowed to it (so the ledger and
``ingest_days`` say what was really loaded), its records outside it are left out and counted, and
a file the window misses entirely is not loaded at all (outcome ``excluded``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence

import polars as pl

from hdi._schemas import SCHEMAS
from hdi.decode.dbn import decode_file
from hdi.errors import ConfigError
from hdi.source.base import Estimate
from hdi.source.chunks import Request
from hdi.source.files import DbnFile

BATCH_ROWS = 1_000_000


@dataclasses.dataclass(frozen=True)
class FileWindow:
    """``--start/--end/--symbols`` given with ``--from-file``: which of a file's records load."""

    start: dt.datetime | None
    end: dt.datetime | None
    symbols: tuple[str, ...] | None

    def filter(self, ts: str) -> pl.Expr:
        e = pl.lit(True)
        if self.start is not None:
            e &= pl.col(ts) >= self.start
        if self.end is not None:
            e &= pl.col(ts) < self.end
        if self.symbols is not None:
            e &= pl.col("symbol").is_in(list(self.symbols))
        return e


def file_window(start: str | None, end: str | None, symbols: Sequence[str] | None) -> FileWindow | None:
    """``--start/--end/--symbols`` as a filter on files' records, or None when none is given."""
    from hdi.recipe.checks import Problem, date_range
    from hdi.recipe.checks import when as parse_when

    if start is None and end is None and symbols is None:
        return None
    try:
        s = parse_when(start, "--start") if start is not None else None
        e = parse_when(end, "--end") if end is not None else None
        if s is not None and e is not None:
            date_range(s, e)
    except Problem as p:
        raise ConfigError(f"{p.what}{p.hint}; allowed: {p.allowed}") from None
    if symbols is not None and not symbols:
        raise ConfigError("--symbols is empty; allowed: symbols of the files, comma-separated")
    return FileWindow(s, e, tuple(symbols) if symbols is not None else None)


def check_symbols(window: FileWindow | None, files: list[DbnFile]) -> None:
    """Every ``--symbols`` entry is a symbol of some file (files whose metadata lists symbols)."""
    if window is None or window.symbols is None or not all(f.metadata.symbols for f in files):
        return
    known = {s for f in files for s in f.metadata.symbols}
    unknown = [s for s in window.symbols if s not in known]
    if unknown:
        raise ConfigError(f"--symbols {','.join(unknown)}: in none of the files; allowed: the files' symbols "
                          f"({', '.join(sorted(known))})")


def file_request(f: DbnFile, window: FileWindow | None) -> tuple[Request | None, bool]:
    """The request a file answers, narrowed to the window (None: no record can fall in it)."""
    m = f.metadata
    bounded = m.end is not None and m.end > m.start
    start, end = m.start, m.end if m.end is not None and bounded else m.start + dt.timedelta(days=1)
    symbols = tuple(m.symbols) or ("ALL_SYMBOLS",)
    if window is not None:
        if window.start is not None:
            start = max(start, window.start)
            end = max(end, start + dt.timedelta(microseconds=1)) if not bounded else end
        if window.end is not None:
            end = min(end, window.end) if bounded else window.end
            bounded = True
        if window.symbols is not None and m.symbols:
            symbols = tuple(s for s in m.symbols if s in window.symbols)
        if start >= end or not symbols:
            return None, bounded
    return Request(m.dataset or "unknown", f.schema, m.stype_in or "instrument_id", symbols, start, end), bounded


def estimate_file(f: DbnFile, keep: FileWindow | None) -> Estimate:
    """A file's real record count, symbols and time range (it is decoded: no network, no store)."""
    ts = SCHEMAS[f.schema].index_ts
    total = kept = 0
    symbols: set[str] = set()
    first = last = None
    for batch in decode_file(f, chunk_rows=BATCH_ROWS):
        total += batch.height
        if keep is not None:
            batch = batch.filter(keep.filter(ts))
        kept += batch.height
        if batch.height:
            symbols |= set(batch.get_column("symbol").drop_nulls().unique().to_list())
            lo, hi = batch.select(pl.col(ts).min().alias("lo"), pl.col(ts).max().alias("hi")).row(0)
            first, last = min(first or lo, lo), max(last or hi, hi)
    return Estimate(record_count=kept, billable_bytes=None, cost_usd=0.0, rows_left_out=total - kept,
                    symbols=",".join(sorted(symbols)), first_ts=first, last_ts=last)
