"""What a store holds: table sizes, coverage and gaps per (schema, symbol), quarantine, recent runs.

Coverage comes from the ledger's ``ingest_days``: every UTC day a done chunk fetched, with the
number of records the source had for each requested symbol. So:

- a day listed with records is **data**;
- a day listed with 0 records was fetched and the source had nothing (a holiday, a no-trade day):
  **no data**;
- a day inside the symbol's span that is not listed was never fetched (a chunk failed, was skipped,
  or the range was never asked for): **missing**. The two are never confused.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from hdi import config
from hdi.store import open_store
from hdi.store.schema import ident
from hdi.tables import DATA_TABLES


@dataclass
class StatusReport:
    store: str
    tables: pl.DataFrame  # table, rows, first, last
    coverage: pl.DataFrame  # dataset, schema, symbol, first_day, last_day, rows_fetched, days_*, missing, no_data
    quarantine: pl.DataFrame  # run_id, table, files, rows, latest_path, latest_mtime
    runs: pl.DataFrame
    failed_chunks: pl.DataFrame
    edition: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        def rows(df: pl.DataFrame) -> list[dict[str, Any]]:
            return [{k: _jsonable(v) for k, v in r.items()} for r in df.iter_rows(named=True)]

        return {"store": self.store, "edition": self.edition, "tables": rows(self.tables),
                "coverage": rows(self.coverage), "quarantine": rows(self.quarantine), "runs": rows(self.runs),
                "failed_chunks": rows(self.failed_chunks)}


def _jsonable(v: Any) -> Any:
    if isinstance(v, dt.datetime | dt.date):
        return v.isoformat()
    if isinstance(v, list):
        return [_jsonable(x) for x in v]
    return v


def status(store: str | None = None, *, quarantine_dir: str | Path | None = None, runs: int = 10) -> StatusReport:
    """Summarise a store (default: ``HDI_STORE``, else the embedded DuckDB file)."""
    st = open_store(store)
    tables = _tables(st)
    days = st.query("SELECT * FROM ingest_days") if st.has_table("ingest_days") else None
    failed = st.chunks(status="failed")
    coverage = _coverage(days, failed)
    from hdi.validate.quarantine import quarantine_summary

    q = quarantine_summary(config.quarantine_dir(quarantine_dir))
    edition = {"kind": st.kind}
    if st.kind == "timescale":
        st.migrate()  # reads the extension version and license
        edition |= {"timescaledb": getattr(st, "timescaledb_version", None), "license": getattr(st, "license", None)}
    return StatusReport(store=st.display_url, tables=tables, coverage=coverage, quarantine=q,
                        runs=st.runs(limit=runs), failed_chunks=failed.select(
                            "chunk_id", "run_id", "dataset", "schema", "symbols", "start_ts", "end_ts", "error"),
                        edition=edition)


def _utc(v: Any) -> dt.datetime | None:
    if v is None:
        return None
    return v.replace(tzinfo=dt.UTC) if v.tzinfo is None else v.astimezone(dt.UTC)


def _tables(st: Any) -> pl.DataFrame:
    out = []
    for name, t in DATA_TABLES.items():
        if not st.has_table(name):
            continue
        tc = ident(t.time_column)
        n, lo, hi = st.query(f"SELECT count(*) AS n, min({tc}) AS lo, max({tc}) AS hi FROM {ident(name)}").row(0)
        out.append({"table": name, "rows": int(n), "first": _utc(lo), "last": _utc(hi)})
    return pl.DataFrame(out, schema={"table": pl.String, "rows": pl.Int64, "first": pl.Datetime("us", "UTC"),
                                     "last": pl.Datetime("us", "UTC")})


_COVERAGE_SCHEMA = {
    "dataset": pl.String, "schema": pl.String, "symbol": pl.String, "first_day": pl.Date, "last_day": pl.Date,
    "rows_fetched": pl.Int64, "days_with_data": pl.UInt32, "days_no_data": pl.UInt32, "days_missing": pl.UInt32,
    "missing": pl.List(pl.String), "no_data": pl.List(pl.String),
}


def _ranges(days: list[dt.date]) -> list[str]:
    """[d1, d2, d3, d7] -> ["d1..d3", "d7"]."""
    out: list[str] = []
    for d in sorted(days):
        if out and (d - out[-1][1]).days == 1:
            out[-1] = (out[-1][0], d)
        else:
            out.append((d, d))  # type: ignore[arg-type]
    return [a.isoformat() if a == b else f"{a.isoformat()}..{b.isoformat()}" for a, b in out]  # type: ignore[misc]


def _coverage(days: pl.DataFrame | None, failed: pl.DataFrame) -> pl.DataFrame:
    if days is None or days.height == 0:
        return pl.DataFrame(schema=_COVERAGE_SCHEMA)
    days = days.with_columns(pl.col("day").cast(pl.Date))
    # days of failed chunks count into the span, so a failed range shows as missing
    spans = []
    for r in failed.iter_rows(named=True):
        for s in str(r["symbols"]).split(","):
            spans.append({"dataset": r["dataset"], "schema": r["schema"], "symbol": s,
                          "lo": r["start_ts"].date(), "hi": (r["end_ts"] - dt.timedelta(microseconds=1)).date()})
    out = []
    for (ds, sch, sym), g in days.group_by("dataset", "schema", "symbol", maintain_order=True):
        fetched = dict(zip(g["day"].to_list(), g["rows_fetched"].to_list(), strict=True))
        lo, hi = min(fetched), max(fetched)
        for sp in spans:
            if (sp["dataset"], sp["schema"], sp["symbol"]) == (ds, sch, sym):
                lo, hi = min(lo, sp["lo"]), max(hi, sp["hi"])
        span = [lo + dt.timedelta(days=i) for i in range((hi - lo).days + 1)]
        missing = [d for d in span if d not in fetched]
        no_data = [d for d, n in fetched.items() if n == 0]
        out.append({"dataset": ds, "schema": sch, "symbol": sym, "first_day": lo, "last_day": hi,
                    "rows_fetched": int(sum(fetched.values())), "days_with_data": len(fetched) - len(no_data),
                    "days_no_data": len(no_data), "days_missing": len(missing),
                    "missing": _ranges(missing), "no_data": _ranges(no_data)})
    return pl.DataFrame(out, schema=_COVERAGE_SCHEMA).sort("dataset", "schema", "symbol")
