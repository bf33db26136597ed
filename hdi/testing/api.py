"""The Databento historical endpoints the gateway serves, independent of HTTP.

``Api.handle(method, endpoint, params, api_key)`` returns a ``Reply`` (JSON value or a stream of
zstd DBN bytes) or raises ``ApiError``, whose ``body()`` is Databento's error shape
``{"detail": {"case", "message", "status_code", "docs", "payload"}}`` so that the official client
raises ``BentoClientError``/``BentoServerError`` with a readable ``.message``.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from hdi.testing import dbnout, market, synth
from hdi.testing.batchjobs import BatchJobs
from hdi.testing.restate import Conditions
from hdi.testing.symbology import ALL_SYMBOLS, STYPES_IN, Resolution, SymbologyError, looks_smart, resolve

DOCS_DATASETS = "https://databento.com/docs/api-reference-historical/basics/datasets"
DOCS_SYMBOLOGY = "https://databento.com/docs/standards-and-conventions/symbology"
DOCS_FIELDS = "https://databento.com/docs/standards-and-conventions/common-fields-enums-types"
DOCS_AUTH = "https://databento.com/docs/api-reference-historical/basics/authentication"
ALL_DBN_SCHEMAS = ("mbo", "mbp-1", "mbp-10", "tbbo", "trades", "ohlcv-1s", "ohlcv-1m", "ohlcv-1h", "ohlcv-1d",
                   "ohlcv-eod", "definition", "statistics", "status", "imbalance", "cmbp-1", "cbbo-1s", "cbbo-1m",
                   "tcbbo", "bbo-1s", "bbo-1m")
# USD per GB (1e9 bytes) of uncompressed DBN; the gateway's cost = billable bytes * rate / 1e9.
COST_PER_GB = {"ohlcv-1s": 2.0, "ohlcv-1m": 1.5, "ohlcv-1h": 1.0, "ohlcv-1d": 0.5, "trades": 3.0, "tbbo": 4.0,
               "mbp-1": 4.0, "statistics": 1.0, "definition": 0.5,
               "mbo": 5.0, "mbp-10": 6.0, "bbo-1s": 2.0, "bbo-1m": 1.5, "cbbo-1s": 2.0, "cbbo-1m": 1.5,
               "status": 0.5, "imbalance": 1.0, "ohlcv-eod": 0.5}  # issue 13
MAX_SYMBOLS = 2000


class ApiError(Exception):
    """An error answer in Databento's JSON shape."""

    def __init__(self, status: int, case: str, message: str, docs: str = "", payload: dict[str, Any] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(f"{status} {case}: {message}")
        self.status, self.case, self.message, self.docs = status, case, message, docs
        self.payload = payload or {}
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"detail": {"case": self.case, "message": self.message, "status_code": self.status,
                           "docs": self.docs, "payload": self.payload}}


@dataclass
class Reply:
    """A successful answer: ``json`` value, or ``stream`` of bytes with ``content_type``."""

    json: Any = None
    stream: Iterator[bytes] | None = None
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


def iso_ns(t: int) -> str:
    """``2024-01-02T00:00:00.000000000Z``, as Databento writes timestamps."""
    return market.to_datetime(t).strftime("%Y-%m-%dT%H:%M:%S.") + f"{t % 10**9:09d}Z"


def _human(t: int) -> str:
    dt = market.to_datetime(t)
    frac = t % 10**9
    return dt.strftime("%Y-%m-%d %H:%M:%S") + (f".{frac:09d}" if frac else "") + "+00:00"


_TIME = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?"
                   r"\s*(Z|z|[+-]\d{2}:?\d{2})?$")


def parse_time(value: str, param: str) -> tuple[int, bool]:
    """Parse what the client sends for ``start``/``end``: ns integers, ISO 8601 or dates.

    Returns (nanoseconds, date_only).
    """
    v = value.strip()
    if re.fullmatch(r"-?\d+", v) and not re.fullmatch(r"\d{4}", v):
        return int(v), False
    m = _TIME.match(v)
    if not m:
        raise ApiError(422, "request_invalid_datetime", f"Could not parse `{param}` value '{value}' as a datetime; "
                       "use an ISO 8601 datetime, a date (YYYY-MM-DD) or UNIX nanoseconds.", DOCS_FIELDS)
    y, mo, d, hh, mi, ss, frac, tz = m.groups()
    try:
        base = datetime(int(y), int(mo), int(d), int(hh or 0), int(mi or 0), int(ss or 0), tzinfo=UTC)
    except ValueError as exc:
        raise ApiError(422, "request_invalid_datetime", f"Invalid `{param}` '{value}': {exc}.", DOCS_FIELDS) from None
    offset = 0
    if tz and tz not in ("Z", "z"):
        sign = -1 if tz[0] == "-" else 1
        digits = tz[1:].replace(":", "")
        offset = sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60)
    t = (int(base.timestamp()) - offset) * 10**9 + int((frac or "0").ljust(9, "0"))
    return t, hh is None


def _did_you_mean(value: str, allowed: Iterable[str]) -> str:
    close = difflib.get_close_matches(value, list(allowed), n=1, cutoff=0.6)
    return f" Did you mean '{close[0]}'?" if close else ""


@dataclass(frozen=True)
class Query:
    """A validated get_range-like request."""

    dataset: str
    schema: str
    stype_in: str
    symbols: list[str]
    start: int
    end: int
    limit: int
    resolution: Resolution


class Api:
    """Endpoint logic: validation, symbology, data, costs.

    Args:
        now: the gateway's clock (datasets end here); None = wall clock, floored to the minute.
        no_trade: (dataset, symbol, date) triples with no records at all; ``symbol`` may be raw,
            continuous, parent or an instrument id, resolved on that date.
        rejected_key: predicate on the API key; True = 401.
    """

    def __init__(self, now: datetime | None = None, no_trade: Iterable[tuple[str, str, date]] = (),
                 rejected_key: Callable[[str], bool] = lambda k: k.startswith("db-bad")) -> None:
        self.now = now
        self.rejected_key = rejected_key
        self.no_trade: set[tuple[str, str, date]] = set(no_trade)
        self.conditions = Conditions()  # get_dataset_condition, restated days (hdi.testing.restate)
        self.batch = BatchJobs()  # batch.* endpoints (hdi.testing.batchjobs)

    # ---- helpers -----------------------------------------------------------------------------
    def available_end(self) -> int:
        now = self.now or datetime.now(UTC).replace(second=0, microsecond=0)
        return int(now.timestamp()) * 10**9 + now.microsecond * 1000

    def blocked(self, dataset: str) -> frozenset[tuple[int, date]]:
        out: set[tuple[int, date]] = set()
        for ds, sym, d in list(self.no_trade):
            if ds != dataset:
                continue
            stype = looks_smart(sym) or ("instrument_id" if sym.isdigit() else "raw_symbol")
            try:
                res = resolve(ds, [sym], stype, d, d + timedelta(days=1))
            except SymbologyError:
                continue
            out.update((iid, d) for iid in res.ids_on(d))
        return frozenset(out)

    @staticmethod
    def _dataset(params: dict[str, str]) -> market.Dataset:
        code = params.get("dataset", "").strip()
        if not code:
            raise ApiError(422, "request_missing_parameter", "Missing required parameter `dataset`.", DOCS_DATASETS)
        if code not in market.DATASETS:
            raise ApiError(422, "dataset_not_found", f"The dataset '{code}' does not exist or is not available. "
                           f"Available datasets: {', '.join(sorted(market.DATASETS))}.{_did_you_mean(code, market.DATASETS)}",
                           DOCS_DATASETS, {"dataset": code})
        return market.DATASETS[code]

    def _window(self, ds: market.Dataset, params: dict[str, str]) -> tuple[int, int]:
        if not params.get("start"):
            raise ApiError(422, "request_missing_parameter", "Missing required parameter `start`.", DOCS_FIELDS)
        start, date_only = parse_time(params["start"], "start")
        if params.get("end"):
            end, _ = parse_time(params["end"], "end")
        else:
            end = start + (market.DAY_NS if date_only else 1)
        payload = {"dataset": ds.code, "start": iso_ns(start), "end": iso_ns(end),
                   "available_start": iso_ns(market.ns(ds.start)), "available_end": iso_ns(self.available_end())}
        if start >= end:
            raise ApiError(422, "data_time_range_start_on_or_after_end", f"Invalid time range query, `start` "
                           f"{_human(start)} cannot be on or after `end` {_human(end)}.", DOCS_FIELDS,
                           {"start": payload["start"], "end": payload["end"]})
        if start < market.ns(ds.start):
            raise ApiError(422, "data_start_before_available_start", f"`start` in query ('{_human(start)}') was "
                           f"before the available start of dataset {ds.code} ('{_human(market.ns(ds.start))}'). "
                           "Try requesting with a later `start`.", DOCS_DATASETS, payload)
        if start >= self.available_end():
            raise ApiError(422, "data_start_after_available_end", f"`start` in query ('{_human(start)}') was after "
                           f"the available end of dataset {ds.code} ('{_human(self.available_end())}'). Try "
                           "requesting with an earlier `start`.", DOCS_DATASETS, payload)
        if end > self.available_end():
            raise ApiError(422, "data_end_after_available_end", f"The dataset {ds.code} has data available up to "
                           f"'{_human(self.available_end())}'. The `end` in the query ('{_human(end)}') is after the "
                           "available range. Try requesting with an earlier `end`.", DOCS_DATASETS, payload)
        return start, end

    @staticmethod
    def _schema(ds: market.Dataset, params: dict[str, str]) -> str:
        schema = params.get("schema", "").strip()
        if schema not in ALL_DBN_SCHEMAS:
            raise ApiError(422, "schema_invalid", f"Invalid schema '{schema}'. Valid schemas: "
                           f"{', '.join(ALL_DBN_SCHEMAS)}.{_did_you_mean(schema, ALL_DBN_SCHEMAS)}", DOCS_FIELDS)
        if schema not in ds.schemas:
            raise ApiError(422, "dataset_schema_not_supported",
                           f"Schema `{schema}` is not supported on dataset `{ds.code}`.", DOCS_DATASETS,
                           {"dataset": ds.code, "schema": schema})
        return schema

    @staticmethod
    def _stype(ds: market.Dataset, params: dict[str, str], name: str, default: str) -> str:
        stype = params.get(name, default).strip() or default
        if stype not in STYPES_IN:
            raise ApiError(422, "symbology_invalid_stype", f"Invalid `{name}` '{stype}'. Supported: "
                           f"{', '.join(STYPES_IN)}.{_did_you_mean(stype, STYPES_IN)}", DOCS_SYMBOLOGY)
        if ds.kind == "equities" and stype in ("continuous", "parent"):
            raise ApiError(422, "symbology_invalid_request", f"`{name}` '{stype}' is not supported for dataset "
                           f"{ds.code}; use raw_symbol or instrument_id.", DOCS_SYMBOLOGY)
        return stype

    @staticmethod
    def _symbols(params: dict[str, str], stype_in: str) -> list[str]:
        raw = params.get("symbols", "").strip()
        if not raw:
            raise ApiError(422, "symbology_invalid_request", "Missing required parameter `symbols`.", DOCS_SYMBOLOGY)
        symbols = [s.strip() for s in raw.split(",") if s.strip()]
        if symbols == [ALL_SYMBOLS]:
            return symbols
        if len(symbols) > MAX_SYMBOLS:
            raise ApiError(422, "symbology_too_many_symbols", f"Too many symbols: {len(symbols)}; the limit is "
                           f"{MAX_SYMBOLS} per request.", DOCS_SYMBOLOGY)
        for sym in symbols:
            shape = looks_smart(sym)
            if shape and shape != stype_in:
                raise ApiError(422, "symbology_invalid_request", f"The symbol '{sym}' is a {shape} symbol but "
                               f"`stype_in` is '{stype_in}'; request it with stype_in='{shape}'.", DOCS_SYMBOLOGY,
                               {"symbol": sym, "stype_in": stype_in})
            if stype_in == "instrument_id" and not sym.isdigit():
                raise ApiError(422, "symbology_invalid_request", f"The symbol '{sym}' is not an instrument id "
                               "(stype_in='instrument_id' takes integers).", DOCS_SYMBOLOGY)
        return symbols

    @staticmethod
    def _resolve(ds: market.Dataset, symbols: list[str], stype_in: str, d0: date, d1: date) -> Resolution:
        try:
            return resolve(ds.code, symbols, stype_in, d0, d1)
        except SymbologyError:
            if stype_in in ("continuous", "parent"):
                msg = f"Could not resolve smart symbols: {', '.join(symbols)}"
            else:
                msg = f"None of the symbols could be resolved: {', '.join(symbols)}"
            raise ApiError(422, "symbology_invalid_request", f"{msg} (dataset {ds.code}, {d0} to {d1}).",
                           DOCS_SYMBOLOGY, {"symbols": symbols, "stype_in": stype_in}) from None

    def query(self, params: dict[str, str]) -> Query:
        """Validate a get_range/get_cost/get_record_count/get_billable_size request."""
        ds = self._dataset(params)
        schema = self._schema(ds, params)
        stype_in = self._stype(ds, params, "stype_in", "raw_symbol")
        stype_out = params.get("stype_out", "instrument_id") or "instrument_id"
        if stype_out != "instrument_id":
            raise ApiError(422, "symbology_invalid_combination", f"Unsupported symbology combination "
                           f"{stype_in} -> {stype_out}; time series output is instrument_id.", DOCS_SYMBOLOGY)
        symbols = self._symbols(params, stype_in)
        start, end = self._window(ds, params)
        limit = params.get("limit", "").strip()
        if limit and not limit.isdigit():
            raise ApiError(422, "request_invalid_parameter", f"Invalid `limit` '{limit}': must be a non-negative "
                           "integer.", DOCS_FIELDS)
        d0, d1 = market.ns_to_date(start), market.ns_to_date(end - 1) + timedelta(days=1)
        return Query(ds.code, schema, stype_in, symbols, start, end, int(limit or 0),
                     self._resolve(ds, symbols, stype_in, d0, d1))

    def _edit(self, dataset: str) -> dbnout.Edit:
        def edit(d: date, arr: Any) -> Any:
            r = self.conditions.edit(dataset, d)
            return arr if r is None else r.apply(arr)

        return edit

    def record_count(self, q: Query) -> int:
        return dbnout.record_count(q.dataset, q.schema, q.resolution, q.start, q.end, q.limit,
                                   self.blocked(q.dataset), self._edit(q.dataset),
                                   self.conditions.restated(q.dataset))

    # ---- endpoints ---------------------------------------------------------------------------
    def handle(self, method: str, endpoint: str, params: dict[str, str], api_key: str | None,
               truncate: bool = False) -> Reply:
        if not api_key:
            raise ApiError(401, "auth_authentication_failed", "Authentication failed: no API key was provided. "
                           "Send it as the HTTP basic auth username.", DOCS_AUTH)
        if self.rejected_key(api_key):
            raise ApiError(401, "auth_authentication_failed", "Authentication failed.", DOCS_AUTH)
        route = _ROUTES.get(endpoint)
        if route is None:
            raise ApiError(404, "not_found", f"Unknown endpoint '/v0/{endpoint}'.", DOCS_DATASETS)
        want, fn = route
        if method != want:
            raise ApiError(405, "method_not_allowed", f"/v0/{endpoint} takes {want}, not {method}.", DOCS_DATASETS)
        if endpoint == "timeseries.get_range":
            return self.get_range(params, truncate)
        return Reply(json=fn(self, params))

    def get_range(self, params: dict[str, str], truncate: bool = False) -> Reply:
        q = self.query(params)
        enc = params.get("encoding", "dbn")
        comp = params.get("compression", "zstd")
        if enc != "dbn" or comp != "zstd":
            raise ApiError(422, "request_invalid_parameter", f"This gateway serves encoding=dbn with "
                           f"compression=zstd only, got encoding={enc} compression={comp}.", DOCS_FIELDS)
        meta = dbnout.metadata(q.dataset, q.schema, q.stype_in, q.resolution, q.start, q.end, q.limit)
        arrays = dbnout.record_arrays(q.dataset, q.schema, q.resolution, q.start, q.end, q.limit,
                                      self.blocked(q.dataset), self._edit(q.dataset),
                                      self.conditions.restated(q.dataset))
        return Reply(stream=dbnout.compressed(meta, arrays, truncate=truncate),
                     content_type="application/octet-stream")

    def _record_count(self, params: dict[str, str]) -> int:
        return self.record_count(self.query(params))

    def _billable(self, params: dict[str, str]) -> int:
        q = self.query(params)
        return self.record_count(q) * synth.RECORD_SIZE[q.schema]

    def _cost(self, params: dict[str, str]) -> float:
        q = self.query(params)
        return self.record_count(q) * synth.RECORD_SIZE[q.schema] * COST_PER_GB[q.schema] / 1e9

    def _dataset_range(self, params: dict[str, str]) -> dict[str, Any]:
        ds = self._dataset(params)
        start, end = iso_ns(market.ns(ds.start)), iso_ns(self.available_end())
        return {"start": start, "end": end, "schema": {s: {"start": start, "end": end} for s in ds.schemas}}

    def _dataset_condition(self, params: dict[str, str]) -> list[dict[str, str | None]]:
        """Per date: condition and last_modified_date (``start_date``/``end_date`` inclusive, both
        optional: the dataset's first date and the date of its available end)."""
        ds = self._dataset(params)
        last_avail = market.ns_to_date(self.available_end() - 1)
        d0 = market.ns_to_date(parse_time(params["start_date"], "start_date")[0]) if params.get("start_date") \
            else ds.start
        d1 = market.ns_to_date(parse_time(params["end_date"], "end_date")[0]) if params.get("end_date") \
            else last_avail
        if d0 > d1:
            raise ApiError(422, "data_time_range_start_on_or_after_end", f"Invalid date range, `start_date` {d0} "
                           f"cannot be after `end_date` {d1}.", DOCS_FIELDS)
        return self.conditions.answer(ds.code, max(d0, ds.start), min(d1, last_avail))

    def _list_datasets(self, params: dict[str, str]) -> list[str]:
        return sorted(market.DATASETS)

    def _list_schemas(self, params: dict[str, str]) -> list[str]:
        return list(self._dataset(params).schemas)

    def _list_publishers(self, params: dict[str, str]) -> list[dict[str, Any]]:
        return [{"publisher_id": d.publisher_id, "dataset": d.code, "venue": d.code.split(".")[0],
                 "description": f"{d.code} (hdi test gateway)"} for d in market.DATASETS.values()]

    def _symbology_resolve(self, params: dict[str, str]) -> dict[str, Any]:
        ds = self._dataset(params)
        stype_in = self._stype(ds, params, "stype_in", "raw_symbol")
        stype_out = params.get("stype_out", "instrument_id") or "instrument_id"
        if stype_out not in ("instrument_id", "raw_symbol"):
            raise ApiError(422, "symbology_invalid_combination", f"Unsupported symbology combination "
                           f"{stype_in} -> {stype_out}.", DOCS_SYMBOLOGY)
        symbols = self._symbols(params, stype_in)
        if not params.get("start_date"):
            raise ApiError(422, "request_missing_parameter", "Missing required parameter `start_date`.", DOCS_FIELDS)
        d0 = market.ns_to_date(parse_time(params["start_date"], "start_date")[0])
        d1 = market.ns_to_date(parse_time(params["end_date"], "end_date")[0]) if params.get("end_date") else \
            d0 + timedelta(days=1)
        if d0 >= d1:
            raise ApiError(422, "data_time_range_start_on_or_after_end", f"Invalid date range, `start_date` {d0} "
                           f"cannot be on or after `end_date` {d1}.", DOCS_FIELDS)
        res = self._resolve(ds, symbols, stype_in, d0, d1)

        def out(iid: int) -> str:
            if stype_out == "instrument_id":
                return str(iid)
            inst = market.instrument(ds.code, iid)
            return inst.raw_symbol if inst else ""

        status = 2 if res.not_found else 1 if res.partial else 0
        return {
            "result": {s: [{"d0": a.isoformat(), "d1": b.isoformat(), "s": out(i)} for a, b, i in ivs]
                       for s, ivs in res.mappings.items()},
            "symbols": symbols, "stype_in": stype_in, "stype_out": stype_out,
            "start_date": d0.isoformat(), "end_date": d1.isoformat(),
            "partial": res.partial, "not_found": res.not_found,
            "message": ("OK", "Partially resolved", "Not found")[status], "status": status,
        }


_ROUTES: dict[str, tuple[str, Callable[[Api, dict[str, str]], Any]]] = {
    "timeseries.get_range": ("POST", lambda api, p: None),
    "metadata.get_record_count": ("POST", Api._record_count),
    "metadata.get_billable_size": ("POST", Api._billable),
    "metadata.get_cost": ("POST", Api._cost),
    "metadata.get_dataset_range": ("GET", Api._dataset_range),
    "metadata.get_dataset_condition": ("GET", Api._dataset_condition),
    "metadata.list_datasets": ("GET", Api._list_datasets),
    "metadata.list_schemas": ("GET", Api._list_schemas),
    "metadata.list_publishers": ("GET", Api._list_publishers),
    "symbology.resolve": ("POST", Api._symbology_resolve),
    # batch jobs (hdi.testing.batchjobs; the file download is served by the gateway, with HTTP Range)
    "batch.submit_job": ("POST", lambda api, p: api.batch.submit(api, p)),
    "batch.list_jobs": ("GET", lambda api, p: api.batch.list_jobs(p)),
    "batch.list_files": ("GET", lambda api, p: api.batch.list_files(api, p)),
}
