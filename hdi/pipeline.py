"""The one module that wires the stages: source -> decode -> recipe -> validate -> store.

``ingest`` plans a recipe's chunks (time periods x symbol groups, or one chunk per DBN file),
skips the chunks the ledger shows done by the same recipe, and loads each of the others in one
store transaction together with its symbology and its ledger row, streaming bounded batches:

    fetch (retried, cached) -> decode batch -> recipe -> split good/bad -> quarantine bad -> write good

Good rows always commit with the chunk; bad rows go to quarantine. The recipe's
``max_failure_rate`` is judged over the run and per symbol (:mod:`hdi.validate.budget`): over it,
the run reports the symbols (``report.budget``) and ends ``over_budget``, unless the recipe says
``on_budget_exceeded: rollback`` (a chunk above the rate is then rolled back and marked failed).
A failed chunk never stops the others; the run fails when any chunk failed, and a re-run retries
exactly those.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import logging
import secrets
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import polars as pl

from hdi import config, interrupt
from hdi.decode.dbn import decode_file, frame_schema, symbology_frame
from hdi.decode.symbols import SymbolMapper
from hdi.errors import ConfigError, DecodeError, HdiError, SourceError, StoreError, one_line
from hdi.filewindow import FileWindow, check_symbols, estimate_file, file_request, file_window
from hdi.rawsym import store_raw_symbols
from hdi.recipe.compile import CompiledRecipe, compile_recipe, recipe_hash
from hdi.recipe.load import load_recipe
from hdi.recipe.model import Recipe
from hdi.report import ChunkOutcome, Event, IngestReport
from hdi.source.cache import check_complete
from hdi.source.chunks import Request, plan_chunks
from hdi.source.files import DbnFile, expand_paths, open_dbn
from hdi.store import Store, open_store
from hdi.store.ledger import DONE, FAILED, ChunkRecord, RunRecord
from hdi.tables import DATA_TABLES
from hdi.timeutil import MAX_TIME
from hdi.update import stored_schema, update_ranges, when
from hdi.validate.budget import Budget, label_rows, rows_per_symbol, write_verdict
from hdi.validate.price_rules import PriceRule
from hdi.validate.quarantine import check_writable, enforce_failure_rate, write_quarantine
from hdi.validate.split import SplitResult, split

log = logging.getLogger(__name__)

BATCH_ROWS = 1_000_000
PREFETCH = 2  # chunk downloads in flight while a chunk loads (see _prefetch)
STORE_ATTEMPTS = 4  # a transient store error (database restarted, concurrent writer) retries the chunk


@dataclasses.dataclass
class _Chunk:
    """A planned unit of work: an API request, or a DBN file on disk."""

    chunk_id: str
    request: Request
    file: Path | None = None
    bounded: bool = True  # False for a file whose metadata has no end: no upper bound on its records
    keep: FileWindow | None = None  # a file's records outside --start/--end/--symbols are left out

    @property
    def end(self) -> dt.datetime | None:
        return self.request.end if self.bounded else None

    @property
    def label(self) -> str:
        return f"{self.file} ({self.request.describe()})" if self.file else self.request.describe()


def new_run_id() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


def check_recipe(path: str | Path) -> CompiledRecipe:
    """Load and compile a recipe against the decoder's schema (what ``hdi recipes validate`` runs)."""
    return _compile(load_recipe(path))


def _compile(recipe: Recipe) -> CompiledRecipe:
    schema = {**frame_schema(recipe.source.schema), "dataset": pl.String()}
    return compile_recipe(recipe, schema)


@interrupt.guarded  # SIGINT/SIGTERM stop the run cleanly (see hdi.interrupt)
def ingest(
    recipe: str | Path | Recipe | None = None, *, start: object = None, end: object = None,
    symbols: Sequence[str] | str | None = None, from_files: Sequence[str | Path] | None = None,
    store: str | None = None, dry_run: bool = False, refresh: bool = False, resume: str | None = None,
    update: bool = False, on_event: Callable[[Event], None] | None = None, batch_rows: int = BATCH_ROWS,
    command: str = "hdi ingest",
) -> IngestReport:
    """Run a recipe: fetch, decode, transform, validate and store, chunk by chunk.

    Args:
        recipe: the recipe file (or a loaded Recipe). May be omitted with ``resume``.
        start, end: override the recipe's range ([start, end), UTC dates or ISO timestamps); with
            ``from_files``, keep only the files' records in [start, end) (the rest are counted in
            ``report.rows_left_out``).
        symbols: override the recipe's symbols; with ``from_files``, keep only these symbols' records.
        from_files: ingest DBN files (``.dbn`` / ``.dbn.zst``), folders of them or globs instead of
            calling Databento; each file is loaded whole (the recipe's range and requests do not
            apply) unless ``start``/``end``/``symbols`` are given.
        store: store URL (default ``HDI_STORE``, else the embedded DuckDB file).
        dry_run: print what would be fetched (records, bytes, cost per chunk); download nothing.
        refresh: download and load chunks again even when cached or done.
        resume: a run id: continue that run with its own recipe and parameters.
        update: extend each request from its last loaded time to the dataset's available end.
        on_event: progress callback.
        batch_rows: rows decoded per batch (bounds memory).
        command: how the run was started, recorded in the ledger (no secrets).

    Returns:
        The run's report; ``report.ok`` is False when any chunk failed; ``report.over_budget`` is
        True when more rows were quarantined than the recipe's ``max_failure_rate`` allows (every
        good row is stored; ``report.budget.over_symbols`` says which symbols and why). On
        SIGINT/SIGTERM (in the main thread) the chunk in flight is rolled back, no further chunk
        starts, the run is recorded ``interrupted`` and ``report.interrupted`` names the signal.

    Raises:
        HdiError: a problem found before any chunk is loaded (bad recipe, missing API key,
            unreachable store, a data, cache or quarantine folder not writable, bad file).
    """
    t0 = time.perf_counter()
    emit = on_event or (lambda e: None)
    if not dry_run:  # every folder the run writes, before the store opens or anything downloads
        config.check_writable_dirs(store, cache=not from_files)
    st = open_store(store)
    params: dict[str, Any] = {"start": _text(start), "end": _text(end), "symbols": _symbols(symbols),
                              "from_files": [str(f.absolute()) for f in expand_paths(list(from_files or []))],
                              "update": update}
    if resume is not None:
        recipe, params = _resumed(st, resume, recipe, params)
    if recipe is None:
        raise ConfigError("no recipe given: pass --recipe PATH (or --resume RUN_ID)")
    r = recipe if isinstance(recipe, Recipe) else load_recipe(recipe)
    params["recipe"] = str(Path(r.path).absolute())
    end_given = params["end"]
    if params.get("update") and end_given is None and params["start"] is not None:
        # --update ends at the available end; this only keeps start < end valid (and within MAX_TIME)
        end_given = MAX_TIME.date().isoformat()
    files = [Path(f) for f in params["from_files"]]
    window = file_window(params) if files else None  # files are loaded whole unless a window is given
    if not files:
        _check_requests(r)
        r = r.with_overrides(start=params["start"], end=end_given, symbols=params["symbols"])
    compiled = _compile(r)
    st.check([r.target.table, "symbology", "ingest_chunks", "ingest_runs", "ingest_days"])  # damaged: stop here
    rhash = recipe_hash(r)
    opened = [_open_for(f, r) for f in files]  # every file checked before anything loads
    check_symbols(window, opened)
    source = None if files else _databento(r)
    qroot = config.quarantine_dir()
    if not dry_run:
        check_writable(qroot)  # a local check: before anything is asked of Databento
    if source is not None:  # before the store is touched: a bad range or key creates no empty store
        _check_available(r, source, params, update=update or "ranges" in params)
    if not dry_run:
        st.migrate()
    ranges = params.get("ranges")  # a resumed --update run repeats its own ranges
    if ranges is None and update and source is not None:
        ranges = params["ranges"] = update_ranges(st, r, source, r.source.end if params["end"] else None)
    if ranges:  # symbology.resolve covers the update's window
        r = r.with_overrides(start=min(when(g["start"]) for g in ranges), end=max(when(g["end"]) for g in ranges))
    run = RunRecord(run_id=resume or new_run_id(), recipe=r.name, recipe_hash=rhash, command=command,
                    params=json.dumps(params, sort_keys=True))
    report = IngestReport(run_id=run.run_id, recipe=str(r.path), store=st.display_url, table=r.target.table,
                          dry_run=dry_run)
    chunks, excluded = _plan(r, rhash, opened, ranges, window)
    report.planned = len(chunks)
    done = _done(st, [c.chunk_id for c in chunks]) if not refresh else set()
    emit(Event("plan", total=len(chunks)))
    log.info("run %s: recipe %s, %d chunks (%d already done), store %s", run.run_id, r.path, len(chunks),
             sum(c.chunk_id in done for c in chunks), st.display_url)
    if not dry_run:
        run.chunks_total = len(chunks)
        st.save_run(run)
    todo = [c for c in chunks if c.chunk_id not in done]
    report.chunks.extend(excluded)
    for c in chunks:
        if c.chunk_id in done:
            outcome = ChunkOutcome(c.chunk_id, c.label, "skipped")
            report.chunks.append(outcome)
            emit(Event("chunk_end", label=c.label, outcome=outcome))
    if dry_run:
        known = _resolve_symbology(st, r, source, write=False) if source is not None and todo else set()
        for c in todo:
            report.chunks.append(_estimate(c, source, opened, known))
            emit(Event("chunk_end", label=c.label, outcome=report.chunks[-1]))
    else:
        known = _resolve_symbology(st, r, source) if source is not None and todo else set()
        loader = _Loader(st, r, compiled, rhash, run.run_id, qroot, source, refresh, emit, batch_rows,
                         {str(f.path): f for f in opened}, known)
        try:
            for c, fetched in _prefetch(todo, loader.fetch):
                interrupt.check()  # no chunk starts after SIGINT/SIGTERM
                emit(Event("chunk_start", label=c.label))
                outcome = loader.load(c, fetched)
                report.chunks.append(outcome)
                emit(Event("chunk_end", label=c.label, outcome=outcome))
        except interrupt.Interrupted as e:  # the chunk in flight was rolled back
            report.interrupted = e.name
            log.warning("run %s interrupted by %s: %d of %d chunks not loaded; `hdi ingest --resume %s` "
                        "finishes it", run.run_id, e.name, report.chunks_left, report.planned, run.run_id)
        report.budget = _judge(loader.budget, qroot, run.run_id, st.display_url, r.name)
    report.seconds = time.perf_counter() - t0
    if not dry_run:
        _finish(st, run, report)
    return report


# ----------------------------------------------------------------------------------- planning
def _text(value: object) -> str | None:
    if value is None:
        return None
    return value.isoformat() if isinstance(value, dt.date) else str(value)


def _symbols(symbols: Sequence[str] | str | None) -> list[str] | None:
    if symbols is None:
        return None
    items = symbols.split(",") if isinstance(symbols, str) else list(symbols)
    return [s.strip() for s in items if s.strip()]


def _resumed(st: Store, run_id: str, recipe: object, params: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    runs = st.runs(limit=10_000).filter(pl.col("run_id") == run_id)
    if runs.height == 0:
        raise ConfigError(f"--resume {run_id}: no such run in {st.display_url} (see `hdi status` for recent runs)")
    saved = json.loads(runs["params"][0] or "{}")
    if "replay" in saved:  # an `hdi quarantine replay` run: nothing to fetch
        raise ConfigError(f"--resume {run_id}: that run is a quarantine replay; allowed: an ingest run "
                          "(run `hdi quarantine replay` again to continue a replay)")
    given = {k: v for k, v in params.items() if v not in (None, [], False)}
    merged = {**saved, **given}
    return recipe or saved.get("recipe"), merged


def _check_requests(r: Recipe) -> None:
    """A recipe without a range or requests reads files only."""
    src = r.source
    missing = [k for k, absent in (("source.start", src.start is None), ("source.end", src.end is None),
                                   ("source.requests", not src.requests)) if absent]
    if missing:
        raise ConfigError(f"{r.path}: the recipe has no {', '.join(missing)}, so it can only read DBN files; "
                          "allowed: --from-file F, or a recipe with source.start, source.end and source.requests")


def _databento(r: Recipe) -> Any:
    from hdi.source.databento import DatabentoSource

    if r.source.vendor != "databento":
        raise ConfigError(f"{r.path}: vendor '{r.source.vendor}' is not supported; allowed: databento")
    return DatabentoSource(r.source.gateway)


def require_offered(source: Any, dataset: str, schema: str, path: object) -> None:
    """``ohlcv-eod`` only where the dataset offers it, as ``metadata.list_schemas`` says (never assumed)."""
    if schema != "ohlcv-eod":
        return
    try:
        offered = source.list_schemas(dataset)
    except HdiError as e:
        if e.transient:
            log.warning("could not check whether %s offers %s: %s", dataset, schema, e.message)
            return
        raise
    if schema not in offered:
        raise ConfigError(f"{path}: dataset {dataset} does not offer {schema} (metadata.list_schemas); "
                          f"it offers: {', '.join(offered)}")


def _check_available(r: Recipe, source: Any, params: dict[str, Any], *, update: bool) -> None:
    """Before anything is written: the API key is accepted, each dataset exists, and the range
    lies within the dataset's available range (Databento answers 422 otherwise, chunk by chunk).

    A transient failure here (5xx, network) is only logged: the chunks retry on their own.
    """
    from hdi.recipe.checks import show_when

    for dataset in dict.fromkeys(rq.dataset for rq in r.source.requests):
        try:
            first, last = source.dataset_range(dataset)
        except HdiError as e:
            if e.transient:
                log.warning("could not check the available range of %s: %s", dataset, e.message)
                continue
            raise
        require_offered(source, dataset, r.source.schema, r.path)  # issue 13: ohlcv-eod where offered
        if update:
            continue
        start, end = r.source.start, r.source.end
        s_name = "--start" if params.get("start") else "source.start"
        e_name = "--end" if params.get("end") else "source.end"
        avail = f"({dataset} has data from {show_when(first)} to {show_when(last)}, end exclusive)"
        if start >= last:
            raise ConfigError(f"{r.path}: {s_name} {show_when(start)} is after the available end of {dataset} {avail}; "
                              f"Databento answers 422 data_start_after_available_end; allowed: a start before "
                              f"{show_when(last)} (or --update to fetch up to the available end)")
        if end > last:
            raise ConfigError(f"{r.path}: {e_name} {show_when(end)} is after the available end of {dataset} {avail}; "
                              f"Databento answers 422 data_end_after_available_end; allowed: an end at or before "
                              f"{show_when(last)} (or --update to fetch up to the available end)")
        if start < first:
            raise ConfigError(f"{r.path}: {s_name} {show_when(start)} is before the available start of {dataset} "
                              f"{avail}; Databento answers 422 data_start_before_available_start; allowed: a start "
                              f"at or after {show_when(first)}")


def _open_for(path: Path, r: Recipe) -> DbnFile:
    try:
        f = open_dbn(path)
    except DecodeError as e:
        if "mixed-schema" not in e.message:
            raise
        f = open_dbn(path, schema=r.source.schema)  # a live capture: read the recipe's records from it
    if f.schema != r.source.schema:
        raise DecodeError(f"{path}: the file holds schema '{f.schema}' but recipe {r.path} reads "
                          f"'{r.source.schema}'; use a recipe for {f.schema}")
    f.verify()  # a corrupt or truncated file is refused before anything loads, not half-loaded
    return f


def _chunk_id(request: Request, rhash: str, file_digest: str = "") -> str:
    return hashlib.sha256(f"{request.key}|{rhash}|{file_digest}".encode()).hexdigest()[:16]


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _plan(r: Recipe, rhash: str, files: list[DbnFile], ranges: list[dict[str, Any]] | None = None,
          window: FileWindow | None = None) -> tuple[list[_Chunk], list[ChunkOutcome]]:
    """Chunks: one per file (narrowed to ``window``); else the recipe's requests (or ``--update``'s
    ranges) cut by period and symbols. Also the outcomes of files the window leaves out entirely."""
    out: list[_Chunk] = []
    excluded: list[ChunkOutcome] = []
    for f in files:
        req, bounded = file_request(f, window)
        if req is None:
            n = f.verified_records or 0
            excluded.append(ChunkOutcome(f"file:{f.path.name}", f"{f.path} (outside --start/--end/--symbols)",
                                         "excluded", rows_left_out=n))
            continue
        digest = _file_digest(f.path) + ("" if window is None else f"|{window}")
        out.append(_Chunk(_chunk_id(req, rhash, digest), req, f.path, bounded, keep=window))
    if files:
        return out, excluded
    src = r.source
    wanted = ([(g["dataset"], g["stype_in"], g["symbols"], when(g["start"]), when(g["end"])) for g in ranges]
              if ranges is not None else
              [(rq.dataset, rq.stype_in, rq.symbols, src.start, src.end) for rq in src.requests])
    for dataset, stype_in, symbols, start, end in wanted:
        for req in plan_chunks(dataset, src.schema, stype_in, symbols, start, end,
                               period=src.chunk.period, max_symbols=src.chunk.max_symbols):
            out.append(_Chunk(_chunk_id(req, rhash), req))
    return out, excluded


def _done(st: Store, chunk_ids: list[str]) -> set[str]:
    if not chunk_ids:
        return set()
    ledger = st.chunks(status=DONE, chunk_ids=chunk_ids) if st.has_table("ingest_chunks") else None
    return set(ledger["chunk_id"].to_list()) if ledger is not None else set()


def _resolve_symbology(st: Store, r: Recipe, source: Any, *, write: bool = True) -> set[tuple[str, str]]:
    """Store ``symbology.resolve``'s intervals for every request (the DBN metadata of each chunk
    adds its own; ``write=False`` stores nothing); a failure here only costs the extra intervals,
    so it is logged, not fatal.

    Returns the (dataset, symbol) pairs that resolve somewhere in the recipe's range."""
    start, end = r.source.start.date(), (r.source.end - dt.timedelta(microseconds=1)).date() + dt.timedelta(days=1)
    known: set[tuple[str, str]] = set()
    for rq in r.source.requests:
        try:
            frame = source.resolve(rq.dataset, rq.symbols, rq.stype_in, start, end)
            if write:
                st.write_symbology(frame)
            if write and rq.stype_in != "raw_symbol":  # every row names its contract (CL.c.0 -> CLZ4)
                store_raw_symbols(st, source, rq.dataset, frame, start, end)
            known |= {(rq.dataset, s) for s in frame.get_column("symbol").unique().to_list()}
        except HdiError as e:
            log.warning("symbology.resolve for %s failed (the chunks' own mappings are still stored): %s",
                        rq.label(), e.message)
    # A symbol the store already maps (an earlier run loaded it) is real too: a window in which it
    # resolves nowhere (a scheduled --update over a weekend, for an equity) has no data; not a failure.
    stored = st.symbology([s for rq in r.source.requests for s in rq.symbols])
    known |= set(stored.select("dataset", "symbol").iter_rows())
    return known


def _resolves_nowhere(e: SourceError) -> bool:
    """Databento's 422 for a window in which none of the requested symbols maps to an instrument
    ("None of the symbols could be resolved"; e.g. a Saturday for futures)."""
    text = e.message.lower()
    return e.http_status == 422 and "symbology_invalid_request" in text and "resolve" in text


def _estimate(c: _Chunk, source: Any, files: list[DbnFile], known: set[tuple[str, str]]) -> ChunkOutcome:
    if c.file is not None:
        return estimate_file(c.chunk_id, c.label, next(f for f in files if f.path == c.file), c.keep)
    try:
        est = source.estimate(c.request)
    except HdiError as e:
        q = c.request
        if isinstance(e, SourceError) and _resolves_nowhere(e) and all((q.dataset, s) in known for s in q.symbols):
            return ChunkOutcome(c.chunk_id, c.label, "estimated", record_count=0, billable_bytes=0, cost_usd=0.0)
        return ChunkOutcome(c.chunk_id, c.label, "failed", error=_without_label(config.redact(e.message), c))
    return ChunkOutcome(c.chunk_id, c.label, "estimated", record_count=est.record_count,
                        billable_bytes=est.billable_bytes, cost_usd=est.cost_usd)


def _prefetch(chunks: list[_Chunk], fetch: Callable[[_Chunk], tuple[Path | None, float]],
              ) -> Iterator[tuple[_Chunk, Future[tuple[Path | None, float]]]]:
    """Download the next chunks while the current one loads (network and CPU overlap).

    ``PREFETCH`` downloads run at once: a chunk of daily bars loads in ~40 ms but takes two HTTP
    round trips (get_cost, get_range) to fetch, so one download at a time left the loader waiting.
    Two keep Databento's metadata calls (get_cost) well under its 20 requests/s limit.
    """
    with interrupt.DaemonPool(PREFETCH, "hdi-fetch") as pool:  # daemon threads: a download never delays an exit
        futures: list[Future[tuple[Path | None, float]]] = []
        for i, c in enumerate(chunks):
            while len(futures) <= i + PREFETCH and len(futures) < len(chunks):
                futures.append(pool.submit(fetch, chunks[len(futures)]))
            yield c, futures[i]


# ----------------------------------------------------------------------------------- loading
class _Loader:
    def __init__(self, st: Store, r: Recipe, compiled: CompiledRecipe, rhash: str, run_id: str, qroot: Path,
                 source: Any, refresh: bool, emit: Callable[[Event], None], batch_rows: int,
                 files: dict[str, DbnFile], resolved: set[tuple[str, str]] | None = None) -> None:
        self.st, self.r, self.compiled, self.rhash, self.run_id = st, r, compiled, rhash, run_id
        self.qroot, self.source, self.refresh, self.emit, self.batch_rows = qroot, source, refresh, emit, batch_rows
        self.table = r.target.table
        self.files = files
        self.by_day = any(s.op == "resample" for s in r.transform)
        self.resolved = resolved or set()  # (dataset, symbol) resolving somewhere in the recipe's range
        self.budget = Budget(r.validate.max_failure_rate)  # rows validated and quarantined, done chunks only
        self.price_rule = PriceRule(st, r.validate.allow_non_positive_prices)
        self.time_column = DATA_TABLES[self.table].time_column
        self.schema = stored_schema(r)  # ledger and coverage name what is stored (ohlcv-5m built from 1m)

    def fetch(self, c: _Chunk) -> tuple[Path | None, float]:
        """The chunk's DBN file and what downloading it cost (0 for a file on disk or a cache hit).

        None for a window in which symbols that resolve elsewhere in the range map to nothing
        (Databento answers 422, e.g. for a Saturday): a chunk without data, not a failure.
        """
        if c.file is not None:
            return c.file, 0.0
        try:
            cached = not self.refresh and self.source.is_cached(c.request)
            cost = 0.0 if cached else self.source.cost(c.request)
            return self.source.fetch(c.request, refresh=self.refresh), cost
        except SourceError as e:
            q = c.request
            if not (_resolves_nowhere(e) and all((q.dataset, s) in self.resolved for s in q.symbols)):
                raise
            log.info("%s: no symbol maps to an instrument in this window (Databento 422); a chunk without "
                     "data", c.label)
            return None, 0.0

    def _record(self, c: _Chunk) -> ChunkRecord:
        q = c.request
        return ChunkRecord(chunk_id=c.chunk_id, run_id=self.run_id, recipe=self.r.name, recipe_hash=self.rhash,
                           dataset=q.dataset, schema=self.schema, stype_in=q.stype_in, symbols=",".join(q.symbols),
                           start_ts=q.start, end_ts=q.end, target_table=self.table,
                           source=str(c.file) if c.file else "databento")

    def load(self, c: _Chunk, fetched: Future[tuple[Path | None, float]]) -> ChunkOutcome:
        t0 = time.perf_counter()
        rec = self._record(c)
        outcome = ChunkOutcome(c.chunk_id, c.label, "done")
        for attempt in range(1, STORE_ATTEMPTS + 1):
            outcome.attempts = rec.attempts = attempt
            try:
                path, cost = interrupt.result(fetched) if attempt == 1 else self.fetch(c)
                rec.cost_usd = (rec.cost_usd or 0.0) + cost
                outcome.rows_left_out, chunk_budget = self._load(c, path, rec)
                rec.status, rec.error = DONE, None
                self.budget.add(chunk_budget)
                break
            except StoreError as e:
                if e.transient and attempt < STORE_ATTEMPTS:
                    wait = min(2.0 ** attempt, 15.0)
                    log.warning("chunk %s: %s; retrying in %.0f s (attempt %d of %d)", c.label, e.message, wait,
                                attempt + 1, STORE_ATTEMPTS, extra={"console": False})  # the retry event shows it
                    self.emit(Event("retry", label=c.label, message=e.message))
                    interrupt.sleep(wait)
                    continue
                rec.status, rec.error = FAILED, e.message
            except HdiError as e:
                rec.status, rec.error = FAILED, e.message
            except Exception as e:  # noqa: BLE001 - a bug or an unforeseen library error: keep the run going
                log.exception("chunk %s failed unexpectedly", c.label, extra={"console": False})
                first = str(e).strip().splitlines()[0] if str(e).strip() else ""  # Polars adds a query plan
                rec.status, rec.error = FAILED, one_line(f"{type(e).__name__}: {first}")
            break
        if rec.status == FAILED:
            rec.error = _without_label(config.redact(rec.error or ""), c)
            log.error("chunk %s failed: %s", c.label, rec.error, extra={"console": False})  # the CLI prints it once
            try:
                self.st.record_chunk(rec)
            except HdiError as e:
                log.error("chunk %s: could not record the failure in the ledger: %s", c.label, e.message)
        outcome.status = "done" if rec.status == DONE else "failed"
        for name in ("rows_fetched", "rows_loaded", "rows_quarantined", "rows_already_present",
                     "quarantine_path", "error", "cost_usd"):
            setattr(outcome, name, getattr(rec, name))
        outcome.seconds = time.perf_counter() - t0
        return outcome

    def _load(self, c: _Chunk, path: Path | None, rec: ChunkRecord) -> tuple[int, Budget]:
        """Load the chunk in one transaction; returns the records ``c.keep`` left out and the
        chunk's quarantine budget counts."""
        f = None if path is None else self.files.get(str(path)) or open_dbn(path)
        dataset = c.request.dataset
        ts = _index_ts(c.request.schema)
        totals = SplitResult(good=pl.DataFrame(), bad=pl.DataFrame(), rows_in=0, rows_good=0, rows_bad=0)
        qpaths: list[str] = []
        counts: list[pl.DataFrame] = []
        decoded = left_out = 0
        rec.rows_fetched = rec.rows_quarantined = 0
        rec.quarantine_path = None
        budget = Budget(self.r.validate.max_failure_rate)
        mapper = SymbolMapper(f.metadata) if f is not None else None  # rows -> requested symbols, for the budget
        # A signal cancels the running statement; the transaction then rolls back (hdi.interrupt).
        with self.st.transaction(chunk=rec) as txn, interrupt.cancelling(txn.cancel):
            if f is not None:
                txn.add_symbology(symbology_frame(f.metadata, dataset))
            for n, batch in enumerate(self._batches(f, ts) if f is not None else ()):
                interrupt.check()
                decoded += batch.height
                if c.keep is not None:  # --start/--end/--symbols given with files: a filter
                    before = batch.height
                    batch = batch.filter(c.keep.filter(ts))
                    left_out += before - batch.height
                # select first: grouping the whole batch is ~5x slower (every column is carried)
                counts.append(batch.select("symbol", pl.col(ts).dt.date().alias("day"))
                              .group_by("symbol", "day").len("rows_fetched"))
                out = self.compiled.fn(batch.with_columns(pl.lit(dataset).alias("dataset")).lazy()).collect()
                res = split(out, self.table, start=c.request.start, end=c.end,
                            allow_non_positive_prices=self.price_rule.for_frame(self.table, dataset, out))
                interrupt.check()
                bad = res.bad.with_columns(label_rows(res.bad, self.time_column, mapper)) if res.rows_bad else None
                budget.count(dataset, self.schema, rows_per_symbol(out, self.time_column, mapper), bad)
                if bad is not None:
                    q = write_quarantine(bad, root=self.qroot, run_id=self.run_id, table=self.table,
                                         chunk_id=f"{c.chunk_id}-{n}", recipe=self.r.name,
                                         source=str(c.file) if c.file else c.request.describe())
                    qpaths.append(str(q))
                totals.rows_in += res.rows_in
                totals.rows_bad += res.rows_bad
                for reason, k in res.reasons.items():
                    totals.reasons[reason] = totals.reasons.get(reason, 0) + k
                rec.rows_fetched, rec.rows_quarantined = totals.rows_in, totals.rows_bad
                if qpaths:
                    rec.quarantine_path = qpaths[0] if len(qpaths) == 1 else str(Path(qpaths[0]).parent)
                txn.write(self.table, res.good, on_conflict=self.r.target.on_conflict)
                self.emit(Event("rows", label=c.label, rows=totals.rows_in))
            if f is not None:  # never done with fewer records than the source delivered: roll back
                check_complete(f, decoded)
            if self.r.validate.on_budget_exceeded == "rollback":  # the recipe's opt-in: the whole chunk
                enforce_failure_rate(totals, self.r.validate.max_failure_rate, where=c.label,
                                     quarantine_path=rec.quarantine_path)
            interrupt.check()  # a signal before the ledger row: the chunk rolls back whole
            txn.write("ingest_days", _days(c, counts, rec), on_conflict="update")
        if f is not None and f.issues:
            log.warning("%s: %s", path, "; ".join(f.issues))
        if left_out:
            log.info("%s: %d records outside --start/--end/--symbols left out", c.label, left_out)
        return left_out, budget

    def _batches(self, f: DbnFile, ts: str) -> Iterator[pl.DataFrame]:
        """Decoded batches that never split a group the recipe treats as one.

        Records sharing an index timestamp stay together (the ``ordinal`` op numbers them), and
        with a ``resample`` step a UTC day stays together (a 5m bar needs all its 1m bars).
        """
        yield from regroup(decode_file(f, chunk_rows=self.batch_rows), ts, by_day=self.by_day)


def _without_label(error: str, c: _Chunk) -> str:
    """A chunk's error without the chunk's own description: the ledger row, ``hdi status`` and every
    line that prints the error name the chunk already (``<chunk>: <error>``)."""
    desc = c.request.describe()
    for what in (c.label, desc, str(c.file) if c.file else ""):
        if what and error.startswith(f"{what}: "):
            return error[len(what) + 2:]
    for inside, short in ((f" {desc} failed", " failed"), (f" {desc}:", ":")):
        if inside in error:
            return error.replace(inside, short, 1)
    return error.replace(desc, "this chunk", 1)


def _index_ts(schema: str) -> str:
    """The timestamp Databento indexes (and maps symbols) by: ts_recv when the schema has it."""
    return "ts_recv" if "ts_recv" in frame_schema(schema) else "ts_event"


def _days(c: _Chunk, counts: list[pl.DataFrame], rec: ChunkRecord) -> pl.DataFrame:
    """One ``ingest_days`` row per (symbol, UTC day) the chunk covered, 0 where the source had nothing."""
    q = c.request
    last = (c.end or q.end) - dt.timedelta(microseconds=1)
    days = pl.date_range(q.start.date(), last.date(), "1d", eager=True).alias("day")
    grid = pl.DataFrame({"symbol": list(q.symbols)}).join(days.to_frame(), how="cross")
    got = (pl.concat(counts).group_by("symbol", "day").agg(pl.col("rows_fetched").sum())
           if counts else pl.DataFrame(schema={"symbol": pl.String, "day": pl.Date, "rows_fetched": pl.UInt32}))
    # Records the metadata maps to no requested symbol are not counted under any symbol.
    return (grid.join(got.drop_nulls("symbol"), on=["symbol", "day"], how="left")
            .with_columns(pl.col("rows_fetched").fill_null(0).cast(pl.Int64),
                          dataset=pl.lit(q.dataset), schema=pl.lit(rec.schema), chunk_id=pl.lit(rec.chunk_id),
                          updated_at=pl.lit(dt.datetime.now(dt.UTC), pl.Datetime("ns", "UTC")))
            .sort("symbol", "day"))


def regroup(frames: Iterable[pl.DataFrame], column: str, *, by_day: bool = False) -> Iterator[pl.DataFrame]:
    """Move the trailing rows that share the last key (timestamp, or its UTC day) to the next frame.

    A frame is held until the next one arrives, so the last frame goes out whole (no extra batch).
    """
    pending: pl.DataFrame | None = None
    for frame in frames:
        if frame.height == 0:
            continue
        if pending is None:
            pending = frame
            continue
        key = pending.get_column(column)
        if by_day:
            key = key.dt.date()
        # Compare the physical integers: key[-1] of a ns timestamp is a Python datetime (µs), which
        # would equal no row and let records sharing a nanosecond straddle two batches.
        key = key.to_physical()
        last = key[-1]
        same = (key == last) if last is not None else key.is_null()
        tail = int(same.reverse().arg_min() or 0) if not same.all() else pending.height
        if pending.height > tail:
            yield pending.head(pending.height - tail)
        pending = pl.concat([pending.tail(tail), frame], rechunk=False)
    if pending is not None:
        yield pending


def _judge(budget: Budget, qroot: Path, run_id: str, store: str, recipe: str) -> Any:
    """The run's quarantine budget verdict, written beside its quarantined rows for ``hdi status``."""
    verdict = budget.verdict()
    try:
        write_verdict(verdict, root=qroot, run_id=run_id, store=store, recipe=recipe)
    except OSError as e:  # the rows are loaded and quarantined already: say so, do not fail the run
        log.error("run %s: could not write its quarantine budget to %s: %s", run_id, qroot, e.strerror or e)
    for s in verdict.over_symbols:
        log.info("over quarantine budget: %s", s.describe(verdict.max_rate))  # the summary shows it too
    return verdict


def _finish(st: Store, run: RunRecord, report: IngestReport) -> None:
    run.finished_at = dt.datetime.now(dt.UTC)
    run.chunks_done = report.count("done")
    run.chunks_skipped = report.count("skipped")
    run.chunks_failed = report.count("failed")
    run.rows_fetched, run.rows_loaded = report.rows_fetched, report.rows_loaded
    run.rows_quarantined, run.rows_already_present = report.rows_quarantined, report.rows_already_present
    run.cost_usd = report.cost_usd
    run.status = ("interrupted" if report.interrupted else "failed" if not report.ok
                  else "over_budget" if report.over_budget else "succeeded")
    if report.count("failed"):
        first = next(c for c in report.chunks if c.status == "failed")
        run.error = f"{report.count('failed')} chunk(s) failed; first: {first.label}: {first.error}"
    if report.over_budget:
        run.error = "; ".join(filter(None, [run.error, report.budget.message()]))
    if report.interrupted:
        run.error = "; ".join(filter(None, [f"interrupted by {report.interrupted}: {report.chunks_left} of "
                                            f"{report.planned} chunk(s) not loaded", run.error]))
    try:
        st.save_run(run)
    except HdiError as e:
        log.error("run %s: could not record the run's end: %s", run.run_id, e.message)
