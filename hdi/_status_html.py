"""``hdi status --html FILE``: the coverage picture, one self-contained HTML page.

A calendar heatmap per (dataset, schema, symbol) of :func:`hdi.status`'s coverage — one square per
UTC day from the first to the last day fetched (or asked for by a failed chunk), weeks as columns,
Monday..Sunday as rows — coloured:

- **data**: fetched, the source had records;
- **flagged**: a trading day of the symbol's exchange calendar, fetched, the source had none (the
  source may be incomplete: a vendor outage, a planted no-trade day);
- **closed**: fetched, no data, and the market was closed (weekend, holiday): expected empty;
- **no data**: fetched, the source had none, and no exchange calendar is known for the symbol;
- **missing**: never fetched (a failed chunk, a skipped or never-asked range);
- **quarantined**: the day has open quarantined rows (quarantined, not replayed since) of that
  dataset and schema, for the symbol the row was requested under.

Then the store's tables, the quarantine, recent runs and failed chunks. Inline CSS and SVG only: no
script, no external asset, so the page opens anywhere (and from a file:// URL) as it is.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from hdi._fileout import write_atomic
from hdi.validate.budget import SYMBOL_COLUMN

if TYPE_CHECKING:
    from hdi._status_report import StatusReport

COLOURS = {"data": "#2da44e", "flagged": "#8250df", "closed": "#eaeef2", "no data": "#d0d7de", "missing": "#cf222e",
           "quarantined": "#bf8700"}
CELL, GAP = 11, 2
_TIME_COLUMNS = ("ts_event", "bar_timestamp_utc", "ts_recv", "ts")


def _e(v: object) -> str:
    if v is None:
        return "—"
    if isinstance(v, dt.datetime):
        return html.escape(v.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S"))
    return html.escape(str(v))


def _days(ranges: list[str] | None) -> set[dt.date]:
    """["2024-03-01..2024-03-03", "2024-03-07"] -> the days they name."""
    out: set[dt.date] = set()
    for r in ranges or []:
        a, _, b = r.partition("..")
        lo = dt.date.fromisoformat(a)
        hi = dt.date.fromisoformat(b) if b else lo
        out.update(lo + dt.timedelta(days=i) for i in range((hi - lo).days + 1))
    return out


def quarantined_days(store: str | None = None, quarantine_dir: str | Path | None = None
                     ) -> dict[tuple[str, str, str], set[dt.date]]:
    """(dataset, schema, symbol) -> UTC days with open quarantined rows.

    A quarantine file holds one chunk's bad rows: the chunk (from the ledger) gives the dataset,
    schema and symbols, each open row's time column its day, its ``_symbol`` (or else its instrument,
    through the symbology table; else every symbol of the chunk) the symbol. Rows a replay loaded are not open.
    """
    from hdi import _config as config
    from hdi._quarantine import replayed_rows
    from hdi.store import open_store
    from hdi.validate.quarantine import _files

    files = _files(config.quarantine_dir(quarantine_dir), None)
    if not files:
        return {}
    st = open_store(store)
    with st.session():  # a DuckDB file is attached for this call only (an ingest may write between calls)
        chunks = {r["chunk_id"]: r for r in st.chunks().iter_rows(named=True)}
        done = replayed_rows(st)
        symbology = st.symbology().select("dataset", "symbol", "instrument_id", "start_date", "end_date")
    intervals: dict[tuple[str, str, int], list[tuple[dt.date, dt.date]]] = {}
    for ds, sym, iid, a, b in symbology.iter_rows():
        intervals.setdefault((ds, sym, iid), []).append((a, b))
    out: dict[tuple[str, str, str], set[dt.date]] = {}
    for f in files:
        frame = pl.read_parquet(f)
        if "_chunk_id" not in frame.columns or frame.height == 0:
            continue
        run = f.parent.name.removeprefix("run=")
        gone = done.filter((pl.col("quarantine_run_id") == run) & (pl.col("file") == f.name))["row_index"]
        frame = frame.with_row_index("_i").filter(~pl.col("_i").cast(pl.Int64).is_in(gone.implode()))
        tc = next((c for c in _TIME_COLUMNS if c in frame.columns and isinstance(frame.schema[c], pl.Datetime)),
                  None)
        if tc is None:
            continue
        inst = pl.col("instrument_id") if "instrument_id" in frame.columns else pl.lit(None)
        sym_col = pl.col(SYMBOL_COLUMN) if SYMBOL_COLUMN in frame.columns else pl.lit(None, pl.String)
        for chunk_id, day, iid, symbol in (frame.select("_chunk_id", pl.col(tc).dt.date(), inst.cast(pl.Int64),
                                                        sym_col.cast(pl.String)).unique().iter_rows()):
            # a file's _chunk_id is the ledger's chunk id and the batch number: <chunk_id>-<n>
            c = chunks.get(chunk_id) or chunks.get(str(chunk_id).rsplit("-", 1)[0])
            if c is None or day is None:
                continue
            asked = str(c["symbols"]).split(",")
            if symbol in asked:  # the row's requested symbol, recorded when it was quarantined
                named = [symbol]
            else:  # the symbols of the chunk that named this instrument on that day; all of them when none did
                named = [s for s in asked if any(a <= day < b for a, b in intervals.get((c["dataset"], s, iid), ()))]
            for sym in named or asked:
                out.setdefault((c["dataset"], c["schema"], sym), set()).add(day)
    return out


def _calendar(first: dt.date, last: dt.date, kind: dict[dt.date, str]) -> str:
    """An SVG: one square per day first..last, weeks as columns (Monday on top), month labels above."""
    start = first - dt.timedelta(days=first.weekday())
    weeks = (last - start).days // 7 + 1
    top, left = 14, 28
    w, h = left + weeks * (CELL + GAP), top + 7 * (CELL + GAP)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" '
             'role="img">']
    for i, name in ((0, "Mon"), (2, "Wed"), (4, "Fri"), (6, "Sun")):
        parts.append(f'<text x="0" y="{top + i * (CELL + GAP) + CELL - 2}" class="lbl">{name}</text>')
    d, month = first, None
    while d <= last:
        col, row = (d - start).days // 7, d.weekday()
        x, y = left + col * (CELL + GAP), top + row * (CELL + GAP)
        if (d.year, d.month) != month:
            month = (d.year, d.month)
            label = d.strftime("%b") if d.month != 1 and d != first else d.strftime("%b %Y")
            parts.append(f'<text x="{x}" y="10" class="lbl">{label}</text>')
        k = kind.get(d, "missing")
        parts.append(f'<rect x="{x}" y="{y}" width="{CELL}" height="{CELL}" rx="2" class="{k.replace(" ", "-")}">'
                     f'<title>{d.isoformat()} {d.strftime("%a")}: {k}</title></rect>')
        d += dt.timedelta(days=1)
    parts.append("</svg>")
    return "".join(parts)


def _table(df: pl.DataFrame, columns: list[str], empty: str) -> str:
    if df.height == 0:
        return f'<p class="none">{html.escape(empty)}</p>'
    cols = [c for c in columns if c in df.columns]
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = "".join("<tr>" + "".join((f'<td class="wrap">{_e(r[c])}</td>' if c in ("error", "latest_path") else f"<td>{_e(r[c])}</td>")
                                         for c in cols) + "</tr>"
                   for r in df.iter_rows(named=True))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


_CSS = """
body{font:14px/1.4 -apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:24px;color:#1f2328;background:#fff}
h1{font-size:20px;margin:0 0 4px} h2{font-size:16px;margin:24px 0 8px;border-bottom:1px solid #d0d7de}
.store{color:#59636e;margin:0 0 12px;word-break:break-all}
.series{margin:0 0 14px} .series h3{font-size:13px;margin:0 0 2px;font-weight:600}
.series .sum{color:#59636e;font-size:12px;margin:0 0 4px}
.cal{overflow-x:auto}
.lbl{font-size:9px;fill:#59636e}
.legend span{display:inline-block;margin-right:14px;font-size:12px}
.legend i{display:inline-block;width:11px;height:11px;border-radius:2px;margin-right:4px;vertical-align:-1px}
table{border-collapse:collapse;font-size:12px} th,td{border:1px solid #d0d7de;padding:3px 8px;text-align:left}
th{background:#f6f8fa} td{font-variant-numeric:tabular-nums;white-space:nowrap} td.wrap{white-space:normal;min-width:240px;word-break:break-word} .none{color:#59636e}
"""


def render(report: StatusReport, quarantined: dict[tuple[str, str, str], set[dt.date]] | None = None) -> str:
    """The page for a :class:`hdi._status_report.StatusReport` (``quarantined``: see :func:`quarantined_days`)."""
    quarantined = quarantined or {}
    css = _CSS + "".join(f"rect.{k.replace(' ', '-')}{{fill:{c}}}" for k, c in COLOURS.items())
    legend = "".join(f'<span><i style="background:{c}"></i>{k}</span>' for k, c in COLOURS.items())
    series = []
    for r in report.coverage.iter_rows(named=True):
        first, last = r["first_day"], r["last_day"]
        missing, no_data = _days(r["missing"]), _days(r["no_data"])
        flagged, closed = _days(r.get("flagged") or []), _days(r.get("closed") or [])
        q = quarantined.get((r["dataset"], r["schema"], r["symbol"]), set())
        kind: dict[dt.date, str] = {}
        d = first
        while d <= last:
            kind[d] = ("quarantined" if d in q else "missing" if d in missing else "flagged" if d in flagged
                       else "closed" if d in closed else "no data" if d in no_data else "data")
            d += dt.timedelta(days=1)
        counts = {k: sum(1 for v in kind.values() if v == k) for k in COLOURS}
        summary = (f"{first.isoformat()}..{last.isoformat()} · {r['rows_fetched']:,} records fetched · "
                   + ", ".join(f"{n} {k}" for k, n in counts.items()))
        series.append(f'<div class="series"><h3>{_e(r["dataset"])} · {_e(r["schema"])} · {_e(r["symbol"])}</h3>'
                      f'<p class="sum">{html.escape(summary)}</p><div class="cal">{_calendar(first, last, kind)}'
                      "</div></div>")
    cov = "".join(series) or '<p class="none">no coverage recorded yet (nothing ingested)</p>'
    runs = _table(report.runs.with_columns(pl.format("{}/{}/{}", "chunks_done", "chunks_skipped", "chunks_failed")
                                           .alias("chunks done/skipped/failed")),
                  ["run_id", "recipe", "status", "started_at", "finished_at", "chunks done/skipped/failed",
                   "rows_loaded", "rows_quarantined", "error"], "no runs")
    failed = _table(report.failed_chunks, ["chunk_id", "run_id", "dataset", "schema", "symbols", "start_ts",
                                           "end_ts", "error"], "none")
    tables = _table(report.tables, ["table", "rows", "first", "last"], "no tables")
    quar = _table(report.quarantine, ["run_id", "table", "files", "rows", "replayed", "open", "latest_path"],
                  "none")
    cframe = report.conditions if report.conditions is not None else pl.DataFrame()
    conds = _table(cframe.with_columns(pl.col(c).list.join(", ") for c in ("degraded", "pending", "restated"))
                   if cframe.height else cframe,
                   ["dataset", "schema", "symbol", "degraded", "pending", "restated", "last_restated"], "none")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<title>hdi status — coverage</title>"
            f"<style>{css}</style></head><body>"
            f"<h1>hdi coverage</h1><p class=\"store\">{_e(report.store)}</p>"
            f"<h2>Coverage per dataset, schema and symbol (UTC days)</h2><p class=\"legend\">{legend}</p>{cov}"
            f"<h2>Recent runs (newest first)</h2>{runs}<h2>Failed chunks</h2>{failed}"
            f"<h2>Databento conditions (degraded or pending when fetched; restated: fetched again, rows replaced)"
            f"</h2>{conds}<h2>Tables</h2>{tables}<h2>Quarantine</h2>{quar}</body></html>\n")


def write_html(report: StatusReport, path: str | Path, *, force: bool = False, protect: Iterable[Path] = (),
               quarantined: dict[tuple[str, str, str], set[dt.date]] | None = None) -> Path:
    """Write the page atomically; an existing file is replaced only with ``force`` (never a store)."""
    page = render(report, quarantined).encode("utf-8")
    return write_atomic(Path(path), lambda f: f.write(page), force=force, protect=protect, what="--html file")
