"""Databento as a source of raw DBN: the only module of hdi that imports ``databento``.

:class:`DatabentoSource` downloads one :class:`Request` at a time with the synchronous client
(``get_range_async`` has a 100 s *total* timeout), retrying transient failures, into the raw cache
(a cache hit makes no HTTP call at all, and is read in full and checked against its sidecar before
it is returned; a damaged file is discarded and downloaded again). A local write failure (a full
cache disk) fails at once with one line naming the folder, never retried as a network error. It
also answers cost estimates, symbology, dataset
ranges and schema lists. The API key comes from ``DATABENTO_API_KEY`` only and never reaches a
message or a log line.
"""

from __future__ import annotations

import errno
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from hdi import _config as config
from hdi._redaction import redact, remember
from hdi._timeutil import parse_iso
from hdi.errors import ConfigError, HdiError, SourceError
from hdi.source.base import Chunk, DayCondition, Estimate, Fetched, Plan, UpdateRange, chunk_id, recipe_range
from hdi.source.cache import RawCache, data_version, public_source
from hdi.source.chunks import Request, plan_chunks
from hdi.source.dbncheck import Verified, verify
from hdi.source.retry import RetryPolicy, call_with_retry

if TYPE_CHECKING:
    import polars as pl
    from databento import Historical

    from hdi.recipe.model import Recipe
    from hdi.store.base import Store

__all__ = ["ApiSource", "DatabentoSource", "Estimate", "Request", "RetryPolicy", "plan_chunks"]

logger = logging.getLogger(__name__)
T = TypeVar("T")
# errors of the local disk, not the network: retrying cannot help
_LOCAL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EIO})


class DatabentoSource:
    """Fetches raw DBN from Databento (or a compatible gateway) into the raw cache.

    Args:
        gateway: base URL; ``HDI_DATABENTO_GATEWAY`` wins over it; None = Databento's own.
        retry: retry policy for every call (default ``RetryPolicy()``).
        cache_dir: raw cache root (default ``hdi._config.cache_dir()``).

    Raises:
        ConfigError: ``DATABENTO_API_KEY`` is not set.
    """

    def __init__(self, gateway: str | None = None, *, retry: RetryPolicy | None = None,
                 cache_dir: Path | None = None) -> None:
        self._key = config.api_key()
        self.gateway = config.gateway(gateway)
        remember(self.gateway)  # credentials in the gateway URL are known secrets from now on
        self.retry = retry or RetryPolicy.from_env()
        self.cache = RawCache(cache_dir)
        self._client: Historical | None = None
        self._swept = False

    def __repr__(self) -> str:  # the key stays out of reprs too
        gateway = public_source(self.gateway) if self.gateway else None
        return f"DatabentoSource(gateway={gateway!r}, cache={str(self.cache.root)!r})"

    @property
    def client(self) -> Historical:
        """The ``databento.Historical`` client, created on first use."""
        if self._client is None:
            import databento

            self._client = (databento.Historical(self._key, gateway=self.gateway) if self.gateway
                            else databento.Historical(self._key))
        return self._client

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        t0 = time.perf_counter()
        result = call_with_retry(fn, policy=self.retry, what=what)
        logger.info(redact(f"{what}: done in {time.perf_counter() - t0:.3f}s"))
        return result

    # ---- data --------------------------------------------------------------------------------
    def fetch(self, request: Request, *, refresh: bool = False, version: str | None = None) -> Path:
        """The raw DBN file of ``request``: from the cache, else downloaded, verified and cached.

        Args:
            request: what to download.
            refresh: download again even when cached (the old file stays until the new one is verified).
            version: Databento's conditions of the request's days now (:func:`~hdi.source.cache.data_version`):
                a cached file fetched under another version is not served but downloaded again.

        Raises:
            SourceError: the download failed after retries, or the file does not answer the request.
        """
        if not refresh and (cached := self.cache.get(request, version)) is not None:
            logger.info("cache hit %s -> %s", request.describe(), cached)
            return cached
        if not self._swept:
            self.cache.sweep()
            self._swept = True
        what = f"get_range {request.describe()}"
        folder = self.cache.folder(request)

        def attempt() -> tuple[Path, Verified] | SourceError:
            try:
                tmp = self.cache.temp_path(request)
            except OSError as exc:
                return _local_error(exc, request, folder)
            try:
                self.client.timeseries.get_range(
                    dataset=request.dataset, schema=request.schema, stype_in=request.stype_in,
                    stype_out="instrument_id", symbols=list(request.symbols), start=request.start,
                    end=request.end, path=tmp,
                )
                return tmp, verify(tmp, request)
            except BaseException as exc:
                self.cache.discard(tmp)
                local = _local_cause(exc, tmp)
                if local is None:
                    raise
                return _local_error(local, request, folder)  # returned, not raised: never retried

        t0 = time.perf_counter()
        result = call_with_retry(attempt, policy=self.retry, what=what)
        if isinstance(result, SourceError):
            raise result
        tmp, info = result
        try:
            path = self.cache.commit(request, tmp, info, source=self.gateway, version=version)
        except OSError as exc:
            local = _local_cause(exc, tmp)
            if local is not None:
                raise _local_error(local, request, folder) from None
            raise SourceError(f"could not move the download of {request.describe()} into the raw cache "
                              f"{folder}: {exc}") from None
        logger.info(redact(f"{what}: {info.records} records, {info.file_bytes} bytes in "
                           f"{time.perf_counter() - t0:.3f}s -> {path}"))
        return path

    def fetch_all(self, requests: Iterable[Request], *, refresh: bool = False) -> list[Path]:
        """``fetch`` each request in turn."""
        return [self.fetch(r, refresh=refresh) for r in requests]

    # ---- metadata ----------------------------------------------------------------------------
    def estimate(self, request: Request) -> Estimate:
        """Record count, billable bytes and cost in USD of ``request`` (three metadata calls)."""
        q, md = request, self.client.metadata
        what = q.describe()
        count = self._call(f"get_record_count {what}", lambda: md.get_record_count(
            dataset=q.dataset, schema=q.schema, stype_in=q.stype_in, symbols=list(q.symbols), start=q.start,
            end=q.end))
        size = self._call(f"get_billable_size {what}", lambda: md.get_billable_size(
            dataset=q.dataset, schema=q.schema, stype_in=q.stype_in, symbols=list(q.symbols), start=q.start,
            end=q.end))
        cost = self._call(f"get_cost {what}", lambda: md.get_cost(
            dataset=q.dataset, schema=q.schema, stype_in=q.stype_in, symbols=list(q.symbols), start=q.start,
            end=q.end))
        return Estimate(int(count), int(size), float(cost))

    def cost(self, request: Request) -> float:
        """What downloading ``request`` costs in USD (``metadata.get_cost``; one call)."""
        q = request
        return float(self._call(f"get_cost {q.describe()}", lambda: self.client.metadata.get_cost(
            dataset=q.dataset, schema=q.schema, stype_in=q.stype_in, symbols=list(q.symbols), start=q.start,
            end=q.end)))

    def is_cached(self, request: Request, version: str | None = None) -> bool:
        """Whether ``fetch`` would be served from the raw cache (no download, no cost): the file is
        there and checks out against its sidecar (a damaged one is discarded here)."""
        return self.cache.get(request, version) is not None

    def resolve(self, dataset: str, symbols: Iterable[str], stype_in: str, start_date: date | str,
                end_date: date | str | None = None) -> pl.DataFrame:
        """Symbol -> instrument id intervals from ``symbology.resolve``, as symbology-table rows.

        Returns:
            Columns dataset, stype_in, symbol, instrument_id (Int64), start_date, end_date (Date,
            exclusive), source ('resolve'); one row per interval, in the server's order.
        """
        import polars as pl

        syms = list(symbols)
        d0 = date.fromisoformat(start_date) if isinstance(start_date, str) else start_date
        d1 = (date.fromisoformat(end_date) if isinstance(end_date, str) else end_date) or d0 + timedelta(days=1)
        what = f"symbology.resolve {dataset} {stype_in} {','.join(syms[:5])} [{d0}, {d1})"
        out = self._call(what, lambda: self.client.symbology.resolve(
            dataset=dataset, symbols=syms, stype_in=stype_in, stype_out="instrument_id", start_date=d0,
            end_date=d1))
        rows = [(sym, int(iv["s"]), date.fromisoformat(iv["d0"]), date.fromisoformat(iv["d1"]))
                for sym, ivs in out.get("result", {}).items() for iv in ivs if iv.get("s")]
        frame = pl.DataFrame(rows, schema={"symbol": pl.String, "instrument_id": pl.Int64, "start_date": pl.Date,
                                           "end_date": pl.Date}, orient="row")
        return frame.select(pl.lit(dataset).alias("dataset"), pl.lit(stype_in).alias("stype_in"), pl.all(),
                            pl.lit("resolve").alias("source"))

    def raw_symbols(self, dataset: str, instrument_ids: Iterable[int], start_date: date, end_date: date,
                    ) -> pl.DataFrame:
        """The raw symbol (``CLZ4``) of each instrument id over UTC date intervals, from
        ``symbology.resolve`` (instrument_id -> raw_symbol), as symbology-table rows with
        ``stype_in = 'raw_symbol'`` and ``source = 'resolve_raw'``."""
        import polars as pl

        ids = [str(i) for i in instrument_ids]
        what = f"symbology.resolve {dataset} instrument_id -> raw_symbol ({len(ids)} ids) [{start_date}, {end_date})"
        out = self._call(what, lambda: self.client.symbology.resolve(
            dataset=dataset, symbols=ids, stype_in="instrument_id", stype_out="raw_symbol", start_date=start_date,
            end_date=end_date))
        rows = [(iv["s"], int(iid), date.fromisoformat(iv["d0"]), date.fromisoformat(iv["d1"]))
                for iid, ivs in out.get("result", {}).items() if iid.isdigit() for iv in ivs if iv.get("s")]
        frame = pl.DataFrame(rows, schema={"symbol": pl.String, "instrument_id": pl.Int64, "start_date": pl.Date,
                                           "end_date": pl.Date}, orient="row")
        return frame.select(pl.lit(dataset).alias("dataset"), pl.lit("raw_symbol").alias("stype_in"), pl.all(),
                            pl.lit("resolve_raw").alias("source"))

    def dataset_range(self, dataset: str) -> tuple[datetime, datetime]:
        """(start, end) of the data available for ``dataset``, UTC."""
        out = self._call(f"get_dataset_range {dataset}", lambda: self.client.metadata.get_dataset_range(dataset))
        return parse_iso(str(out["start"])), parse_iso(str(out["end"]))

    def dataset_condition(self, dataset: str, start: date, end: date) -> list[DayCondition]:
        """Databento's condition and last_modified_date of each date of ``dataset`` in [start, end]
        (``metadata.get_dataset_condition``, one call; dates inclusive)."""
        out = self._call(f"get_dataset_condition {dataset} [{start}, {end}]",
                         lambda: self.client.metadata.get_dataset_condition(dataset, start_date=start, end_date=end))
        got: list[DayCondition] = []
        for row in out:
            d, cond, mod = row.get("date"), row.get("condition"), row.get("last_modified_date")
            if not isinstance(d, str) or not isinstance(cond, str):
                raise SourceError(f"get_dataset_condition {dataset}: an answer without date or condition: {row}")
            got.append(DayCondition(date.fromisoformat(d[:10]), cond,
                                    date.fromisoformat(mod[:10]) if isinstance(mod, str) and mod else None))
        return got

    def list_schemas(self, dataset: str) -> list[str]:
        """Schemas ``dataset`` offers."""
        return list(self._call(f"list_schemas {dataset}", lambda: self.client.metadata.list_schemas(dataset)))

    def list_datasets(self) -> list[str]:
        """Datasets the key can read."""
        return list(self._call("list_datasets", lambda: self.client.metadata.list_datasets()))


def _local_cause(exc: BaseException, tmp: Path) -> OSError | None:
    """The local disk error behind ``exc`` (the client re-raises a failed write as ``BentoError(
    "Error streaming response: ...") from None``, which keeps the OSError as its context)."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, OSError) and (cur.errno in _LOCAL_ERRNOS or cur.filename == str(tmp)):
            return cur
        cur = cur.__cause__ or cur.__context__
    return None


def _local_error(exc: OSError, request: Request, folder: Path) -> SourceError:
    """One terminal line: what the disk said, the folder, and what to do."""
    where = f"cannot write the download of {request.describe()} to the raw cache {folder} (HDI_CACHE_DIR)"
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return SourceError(f"no space left on device: {where}; free space there or point HDI_CACHE_DIR at a "
                           "larger disk", transient=False)
    what = (exc.strerror or type(exc).__name__).lower()
    return SourceError(f"{what}: {where}; check that folder or point HDI_CACHE_DIR elsewhere", transient=False)


class ApiSource:
    """Databento's historical API as a :class:`~hdi.source.base.Source` for one recipe run.

    Chunks are the recipe's requests (or ``--update``'s ranges) cut by period and symbols; each is
    downloaded through the raw cache by a :class:`DatabentoSource`. A window in which symbols that
    resolve elsewhere in the range map to nothing (Databento answers 422
    ``symbology_invalid_request``, e.g. for a Saturday) is a chunk without data, not a failure.

    Raises:
        ConfigError: the recipe's vendor is not Databento, or ``DATABENTO_API_KEY`` is not set.
    """

    def __init__(self, recipe: Recipe, *, client: DatabentoSource | None = None) -> None:
        if recipe.source.vendor != "databento":
            raise ConfigError(f"{recipe.path}: vendor '{recipe.source.vendor}' is not supported; allowed: databento")
        self.api = client or DatabentoSource(recipe.source.gateway)
        self.resolved: set[tuple[str, str]] = set()  # (dataset, symbol) resolving somewhere in the range
        # Databento's dataset conditions asked so far this run: dataset -> date -> condition
        self.known: dict[str, dict[date, DayCondition]] = {}

    def __repr__(self) -> str:
        return f"ApiSource({self.api!r})"

    def check(self, recipe: Recipe, *, update: bool, names: tuple[str, str]) -> None:
        """The API key is accepted, each dataset exists, and (unless ``update``) the range lies
        within the dataset's available range (Databento answers 422 otherwise, chunk by chunk).

        A transient failure here (5xx, network) is only logged: the chunks retry on their own.
        """
        from hdi.recipe.checks import show_when

        for dataset in dict.fromkeys(rq.dataset for rq in recipe.source.requests):
            try:
                first, last = self.api.dataset_range(dataset)
            except HdiError as e:
                if e.transient:
                    logger.warning("could not check the available range of %s: %s", dataset, e.message)
                    continue
                raise
            self.require_offered(dataset, recipe.source.schema, recipe.path)  # issue 13: ohlcv-eod
            if update:
                continue
            start, end = recipe_range(recipe)
            s_name, e_name = names
            avail = f"({dataset} has data from {show_when(first)} to {show_when(last)}, end exclusive)"
            if start >= last:
                raise ConfigError(f"{recipe.path}: {s_name} {show_when(start)} is after the available end of {dataset} "
                                  f"{avail}; Databento answers 422 data_start_after_available_end; allowed: a start "
                                  f"before {show_when(last)} (or --update to fetch up to the available end)")
            if end > last:
                raise ConfigError(f"{recipe.path}: {e_name} {show_when(end)} is after the available end of {dataset} "
                                  f"{avail}; Databento answers 422 data_end_after_available_end; allowed: an end at "
                                  f"or before {show_when(last)} (or --update to fetch up to the available end)")
            if start < first:
                raise ConfigError(f"{recipe.path}: {s_name} {show_when(start)} is before the available start of "
                                  f"{dataset} {avail}; Databento answers 422 data_start_before_available_start; "
                                  f"allowed: a start at or after {show_when(first)}")

    def dataset_range(self, dataset: str) -> tuple[datetime, datetime]:
        return self.api.dataset_range(dataset)

    def conditions(self, dataset: str, start: date, end: date) -> dict[date, DayCondition]:
        """One ``get_dataset_condition`` call for [start, end] unless every date is known already."""
        known = self.known.setdefault(dataset, {})
        days = [start + timedelta(days=i) for i in range((end - start).days + 1)]
        if any(d not in known for d in days):
            for c in self.api.dataset_condition(dataset, start, end):
                known[c.day] = c
        return {d: known[d] for d in days if d in known}

    def _chunk_conditions(self, request: Request) -> tuple[tuple[DayCondition, ...], str | None]:
        """The request's days as known this run, and their cache version (None unless every day
        is known)."""
        known = self.known.get(request.dataset, {})
        last = (request.end - timedelta(microseconds=1)).date()
        days = [request.start.date() + timedelta(days=i) for i in range((last - request.start.date()).days + 1)]
        conds = tuple(known[d] for d in days if d in known)
        whole = len(conds) == len(days)
        return conds, data_version([(c.day, c.condition, c.last_modified) for c in conds]) if whole else None

    def require_offered(self, dataset: str, schema: str, path: object) -> None:
        """``ohlcv-eod`` only where the dataset offers it, as ``metadata.list_schemas`` says (never
        assumed); a transient failure of that call is only logged."""
        if schema != "ohlcv-eod":
            return
        try:
            offered = self.api.list_schemas(dataset)
        except HdiError as e:
            if e.transient:
                logger.warning("could not check whether %s offers %s: %s", dataset, schema, e.message)
                return
            raise
        if schema not in offered:
            raise ConfigError(f"{path}: dataset {dataset} does not offer {schema} (metadata.list_schemas); "
                              f"it offers: {', '.join(offered)}")

    def plan(self, recipe: Recipe, rhash: str, ranges: Sequence[UpdateRange] | None) -> Plan:
        src = recipe.source
        start, end = recipe_range(recipe)
        wanted = ([(g.dataset, g.stype_in, g.symbols, g.start, g.end, g.refetch, g.tag) for g in ranges]
                  if ranges is not None else
                  [(rq.dataset, rq.stype_in, rq.symbols, start, end, "", "") for rq in src.requests])
        chunks = [Chunk(chunk_id(req, rhash, f"{refetch}|{tag}" if refetch else ""), req,
                        f"{req.describe()} ({refetch}: replaces the stored rows)" if refetch else req.describe(),
                        refetch=refetch)
                  for dataset, stype_in, symbols, start, end, refetch, tag in wanted
                  for req in plan_chunks(dataset, src.schema, stype_in, symbols, start, end,
                                         period=src.chunk.period, max_symbols=src.chunk.max_symbols)]
        return Plan(tuple(chunks))

    def symbology(self, st: Store, recipe: Recipe, *, write: bool) -> None:
        """Store ``symbology.resolve``'s intervals for every request (the DBN metadata of each chunk
        adds its own); a failure here only costs the extra intervals, so it is logged, not fatal."""
        from hdi._rawsym import store_raw_symbols

        src = recipe.source
        t0, t1 = recipe_range(recipe)
        start, end = t0.date(), (t1 - timedelta(microseconds=1)).date() + timedelta(days=1)
        known: set[tuple[str, str]] = set()
        for rq in src.requests:
            try:
                frame = self.api.resolve(rq.dataset, rq.symbols, rq.stype_in, start, end)
                if write:
                    st.write_symbology(frame)
                if write and rq.stype_in != "raw_symbol":  # every row names its contract (CL.c.0 -> CLZ4)
                    store_raw_symbols(st, self.api, rq.dataset, frame, start, end)
                known |= {(rq.dataset, s) for s in frame.get_column("symbol").unique().to_list()}
            except HdiError as e:
                logger.warning("symbology.resolve for %s failed (the chunks' own mappings are still stored): %s",
                               rq.label(), e.message)
        # A symbol the store already maps (an earlier run loaded it) is real too: a window in which it
        # resolves nowhere (a scheduled --update over a weekend, for an equity) has no data; not a failure.
        stored = st.symbology([s for rq in src.requests for s in rq.symbols])
        known |= set(stored.select("dataset", "symbol").iter_rows())
        self.resolved = known

    def _empty_window(self, e: SourceError, request: Request) -> bool:
        """Databento's 422 ``symbology_invalid_request``, as it answers for a window in which none of
        the requested symbols maps to an instrument ("None of the symbols could be resolved"), for
        symbols that all resolve elsewhere in the range: a window without data. (The same case for
        a malformed symbol fails: such a symbol resolves nowhere.)"""
        return (e.http_status == 422 and e.case == "symbology_invalid_request"
                and all((request.dataset, s) in self.resolved for s in request.symbols))

    def estimate(self, chunk: Chunk) -> Estimate:
        try:
            return self.api.estimate(chunk.request)
        except SourceError as e:
            if not self._empty_window(e, chunk.request):
                raise
            return Estimate(record_count=0, billable_bytes=0, cost_usd=0.0)

    def fetch(self, chunk: Chunk, *, refresh: bool) -> Fetched:
        from hdi.source.files import open_dbn

        q = chunk.request
        conds, version = self._chunk_conditions(q)
        refresh = refresh or bool(chunk.refetch)  # a restated day is never served from the cache
        try:
            cached = not refresh and self.api.is_cached(q, version)
            cost = 0.0 if cached else self.api.cost(q)
            return Fetched(open_dbn(self.api.fetch(q, refresh=refresh, version=version)), cost, conds)
        except SourceError as e:
            if not self._empty_window(e, q):
                raise
            logger.info("%s: no symbol maps to an instrument in this window (Databento 422); a chunk without "
                        "data", chunk.label)
            return Fetched(None, conditions=conds)
