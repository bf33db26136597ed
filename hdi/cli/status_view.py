"""``hdi status`` as text: one short section per topic, every line fitted to 80-100 columns.

Sections: the store, its tables, stored rows per symbol, coverage per (dataset, schema, symbol) with
its MISSING days (never fetched), FLAGGED days (a trading day of the symbol's exchange calendar fetched
without data), closed days (weekend, holiday) and early closes, Databento's conditions (days degraded or
pending when fetched, days fetched again after a restatement), quarantine,
symbols over their quarantine budget, recent runs and failed chunks. Lists too long for a line end in ``(+N more)``; ``--format json``
has them all. Only a store URL or a file path may be longer than the line: they are never cut.
"""

from __future__ import annotations

import datetime as dt
import textwrap
from typing import TYPE_CHECKING

import polars as pl

if TYPE_CHECKING:
    from hdi._status_report import StatusReport

Line = tuple[str, bool]  # (text, is a heading)


def _when(v: object) -> str:
    if v is None:
        return "—"
    if isinstance(v, dt.datetime):
        return v.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
    return str(v)


def _fit(items: list[str], width: int) -> str:
    """Comma-joined items, cut to ``width`` characters with ``(+N more)``."""
    shown: list[str] = []
    for i, item in enumerate(items):
        rest = len(items) - i - 1
        tail = f" (+{rest} more)" if rest else ""
        if len(", ".join([*shown, item])) + len(tail) > width and shown:
            return ", ".join(shown) + f" (+{len(items) - i} more)"
        shown.append(item)
    return ", ".join(shown)


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _columns(rows: list[list[str]], right: set[int], indent: str = "  ") -> list[str]:
    """Rows of cells aligned in columns (two spaces apart); ``right``: right-aligned column indexes."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [indent + "  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))
                               ).rstrip() for r in rows]


def lines(report: StatusReport, width: int = 100) -> list[Line]:
    """The text of ``hdi status`` for a :class:`hdi._status_report.StatusReport`."""
    out: list[Line] = []
    ed = report.edition
    kind = ("DuckDB, embedded" if ed.get("kind") == "duckdb" else
            f"Iceberg lake (catalog {ed.get('catalog')}, namespace {ed.get('namespace')}, pyiceberg "
            f"{ed.get('pyiceberg')})" if ed.get("kind") == "iceberg" else
            f"TimescaleDB {ed.get('timescaledb') or '?'}, {ed.get('license') or 'unknown'} license")
    out += [(f"Store  {kind}", True), (f"  {report.store}", False)]  # a URL or path is never cut
    out += _tables(report.tables)
    out += _symbols(report.symbols)
    out += _coverage(report.coverage, width)
    out += _conditions(report.conditions, width)
    out += _quarantine(report.quarantine, width)
    out += _over_budget(report.over_budget, width)
    out += _runs(report.runs, width)
    out += _failed(report.failed_chunks, width)
    return out


def _tables(t: pl.DataFrame) -> list[Line]:
    full = t.filter(pl.col("rows") > 0)
    out: list[Line] = [("", False), ("Tables", True)]
    if full.height:
        rows = [["table", "rows", "first (UTC)", "last (UTC)"]]
        rows += [[r["table"], f"{r['rows']:,}", _when(r["first"]), _when(r["last"])] for r in full.iter_rows(named=True)]
        out += [(s, False) for s in _columns(rows, {1})]
    empty = t.filter(pl.col("rows") == 0)["table"].to_list()
    if empty or not full.height:
        out.append((f"  empty: {', '.join(empty)}" if empty else "  nothing stored yet", False))
    return out


def _symbols(s: pl.DataFrame) -> list[Line]:
    if s.height == 0:
        return []
    rows = [["dataset", "table", "symbol", "rows", "days", "first (UTC)", "last (UTC)"]]
    for r in s.iter_rows(named=True):
        table = f"{r['table']} {r['granularity']}" if r["granularity"] else r["table"]
        rows.append([r["dataset"] or "—", table, r["symbol"], f"{r['rows']:,}", str(r["days"]), _when(r["first"]),
                     _when(r["last"])])
    return [("", False), ("Stored rows per symbol", True)] + [(x, False) for x in _columns(rows, {3, 4})]


COVERAGE_HEAD = "Coverage  (MISSING = never fetched; FLAGGED = trading day, no data; closed = market closed)"


def _coverage(c: pl.DataFrame, width: int) -> list[Line]:
    out: list[Line] = [("", False), (COVERAGE_HEAD, True)]
    if c.height == 0:
        return [*out, ("  no ingest recorded yet", False)]
    rows = []
    for r in c.iter_rows(named=True):
        if r.get("calendar"):
            counts = (f"{r['days_with_data']} with data, {r['days_flagged']} FLAGGED, {r['days_closed']} closed, "
                      f"{r['days_missing']} MISSING")
        else:  # no exchange calendar known for the symbol: days without data stay unclassified
            counts = f"{r['days_with_data']} with data, {r['days_no_data']} no data, {r['days_missing']} MISSING"
            counts += f", {r['days_closed']} closed" if r.get("days_closed") else ""  # by the status feed
        counts += f", {r['days_halted']} halted" if r.get("days_halted") else ""  # by the status feed
        rows.append([r["dataset"], r["schema"], r["symbol"], f"{r['first_day']}..{r['last_day']}", counts])
    heads = _columns(rows, set())
    for head, r in zip(heads, c.iter_rows(named=True), strict=True):
        out.append((head, False))
        lists = ((("MISSING", r["missing"]), ("FLAGGED", r["flagged"]), ("closed", r["closed"]),
                  ("halted", r.get("halted")), ("early", r["early_close"])) if r.get("calendar") else
                 (("MISSING", r["missing"]), ("no data", r["no_data"]), ("closed", r.get("closed")),
                  ("halted", r.get("halted"))))
        for label, days in lists:
            if days:
                out.append((f"      {label:<8}{_fit(days, width - 14)}", False))
    return out


CONDITIONS_HEAD = ("Databento conditions  (DEGRADED / PENDING when fetched: `hdi ingest --update` fetches them "
                   "again; restated: fetched again, rows replaced)")


def _conditions(c: pl.DataFrame | None, width: int) -> list[Line]:
    if c is None or c.height == 0:
        return []
    out: list[Line] = [("", False), (_cut(CONDITIONS_HEAD, width), True)]
    for r in c.iter_rows(named=True):
        out.append((_cut(f"  {r['dataset']} {r['schema']} {r['symbol']}: {r['days_degraded']} DEGRADED, "
                         f"{r['days_pending']} PENDING, {r['days_restated']} restated", width), False))
        for label, key in (("DEGRADED", "degraded"), ("PENDING", "pending"), ("restated", "restated")):
            if r[key]:
                tail = f" (last modified {r['last_restated']})" if key == "restated" and r["last_restated"] else ""
                head = f"    {label}: "
                out.append((head + _fit(list(r[key]), width - len(head) - len(tail)) + tail, False))
    return out


def _quarantine(q: pl.DataFrame, width: int) -> list[Line]:
    out: list[Line] = [("", False), ("Quarantine  (rows that failed validation)", True)]
    if q.height == 0:
        return [*out, ("  none", False)]
    for r in q.iter_rows(named=True):
        out.append((f"  run {r['run_id']}  {r['table']}: {r['rows']:,} rows in {r['files']} file(s) "
                    f"({r['open']:,} open, {r['replayed']:,} replayed), latest {_when(r['latest_mtime'])}", False))
        out.append((f"    {r['latest_path']}", False))
    return out


def _over_budget(o: pl.DataFrame | None, width: int) -> list[Line]:
    if o is None or o.height == 0:
        return []
    out: list[Line] = [("", False), ("Over quarantine budget  (until the quarantined rows are replayed)", True)]
    for r in o.iter_rows(named=True):
        judged = "" if r["judged"] == "symbol" else ", judged over the run"
        out.append((f"  {r['dataset']} {r['schema']} {r['symbol']}  OVER QUARANTINE BUDGET  run {r['run_id']}: "
                    f"{r['quarantined']:,} of {r['rows']:,} rows ({r['rate']:.2%}) > {r['max_failure_rate']:.2%}"
                    f"{judged}; {r['open_rows']:,} open", False))
        out.append((f"    {_cut(r['reasons'], width - 4)}", False))
    return out


def _runs(runs: pl.DataFrame, width: int) -> list[Line]:
    out: list[Line] = [("", False), ("Recent runs  (newest first; chunks done/skipped/failed)", True)]
    if runs.height == 0:
        return [*out, ("  none", False)]
    rows = [["run", "recipe", "status", "started (UTC)", "chunks", "loaded", "quarantined"]]
    unfinished = False
    for r in runs.iter_rows(named=True):
        st = r["status"]
        if st == "running" and r["finished_at"] is None:
            st, unfinished = "running*", True
        rows.append([r["run_id"], _cut(r["recipe"], 14), st, _when(r["started_at"]),
                     f"{r['chunks_done']}/{r['chunks_skipped']}/{r['chunks_failed']}", f"{r['rows_loaded']:,}",
                     f"{r['rows_quarantined']:,}"])
    table = _columns(rows, {5, 6})
    out.append((table[0], False))
    for text, r in zip(table[1:], runs.iter_rows(named=True), strict=True):
        out.append((text, False))
        if r["error"]:
            out.append((f"    {_cut(r['error'], width - 4)}", False))
    if unfinished:
        out += [(s, False) for s in textwrap.wrap(
            "* no end recorded: still running, or its process was stopped (killed, machine down); its done "
            "chunks are kept, and `hdi ingest --resume RUN_ID` (or any re-run) loads the rest.", width - 2,
            initial_indent="  ", subsequent_indent="    ")]
    return out


def _failed(f: pl.DataFrame, width: int) -> list[Line]:
    if f.height == 0:
        return []
    out: list[Line] = [("", False), ("Failed chunks  (a re-run, or `hdi ingest --resume RUN_ID`, retries them)", True)]
    for r in f.iter_rows(named=True):
        symbols = str(r["symbols"]).split(",")
        syms = ",".join(symbols[:3]) + (f" (+{len(symbols) - 3} more)" if len(symbols) > 3 else "")
        out.append((f"  {r['dataset']} {r['schema']} {syms} [{_when(r['start_ts'])}, {_when(r['end_ts'])})  "
                    f"run {r['run_id']}", False))
        out += [(s, False) for s in textwrap.wrap(str(r["error"] or ""), width - 4, initial_indent="    ",
                                                  subsequent_indent="    ")]
    return out
