"""A store holding the synthetic CL chain (every contract's daily bars, definitions, statistics) and
the gateway's own CL.c.0 daily bars, ingested through the real client from the local gateway
(tests of hdi.research, docs/continuous.md)."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
START, END = "2024-01-01", "2024-04-16"  # rolls of CL.c.0 on 2024-01-18, 2024-02-16, 2024-03-18, 2024-04-18
C0_RECIPE = """name: cl_c0_1d
source:
  vendor: databento
  schema: ohlcv-1d
  start: 2024-01-01
  end: 2024-04-16
  chunk: {period: month, max_symbols: 1}
  requests:
    - {dataset: GLBX.MDP3, stype_in: continuous, symbols: [CL.c.0]}
transform:
  - rename: {ts_event: bar_timestamp_utc, open: open_price, high: high_price, low: low_price, close: close_price}
  - fixed_to_decimal: [open_price, high_price, low_price, close_price]
  - constant: {granularity: 1d, data_source: databento, trade_count: null, vwap: null}
target:
  table: ohlcv
  on_conflict: ignore
"""


def load(url: str, workdir: Path, start: str = START, end: str = END, *,
         recipes: tuple[str, ...] = ("definitions", "statistics", "ohlcv_1d"), c0: bool = True,
         chunk: str = "month") -> None:
    """Ingest the CL chain recipes (recipes/cl_contracts_<name>.yaml for each of ``recipes``) and, with
    ``c0``, CL.c.0 daily bars for [start, end) into ``url`` from a local gateway, in chunks of
    ``chunk`` (month, year); the process environment is restored afterwards."""

    files: list[Path] = []
    for name in recipes:
        text = (ROOT / "recipes" / f"cl_contracts_{name}.yaml").read_text()
        f = workdir / f"cl_contracts_{name}.yaml"
        f.write_text(text.replace("chunk: {period: month,", f"chunk: {{period: {chunk},"))
        files.append(f)
    if c0:
        f = workdir / "cl_c0_1d.yaml"
        f.write_text(C0_RECIPE.replace("chunk: {period: month,", f"chunk: {{period: {chunk},"))
        files.append(f)
    ingest(url, workdir, files, start, end)


def minute_bars(url: str, workdir: Path, symbols: list[str], start: str, end: str) -> None:
    """Ingest 1m bars of some CL contracts (raw symbols) for [start, end): what trading-day bars are built from."""
    text = (ROOT / "recipes" / "ohlcv_1m.yaml").read_text()
    lines = [ln for ln in text.splitlines() if "EQUS.MINI" not in ln]
    text = "\n".join(ln.replace("stype_in: continuous, symbols: [CL.c.0, NG.c.0, HO.c.0, RB.c.0, ES.c.0]",
                                 f"stype_in: raw_symbol, symbols: [{', '.join(symbols)}]") for ln in lines)
    f = workdir / "cl_contracts_1m.yaml"
    f.write_text(text + "\n")
    ingest(url, workdir, [f], start, end)


def ingest(url: str, workdir: Path, files: list[Path], start: str, end: str, symbols: list[str] | None = None) -> None:
    """Run recipe files against a local gateway; the process environment is restored afterwards."""
    import hdi
    from hdi.testing.gateway import Gateway

    saved = dict(os.environ)
    try:
        with Gateway(now=dt.datetime(2026, 1, 15, tzinfo=dt.UTC)) as gw:
            os.environ.update(gw.env())
            os.environ["DATABENTO_API_KEY"] = "db-test-0123456789abcdefABCDEF"
            os.environ["HDI_DATA_DIR"] = str(workdir / "data")
            for f in files:
                report = hdi.ingest(f, start=start, end=end, store=url, symbols=symbols)
                if not report.ok:
                    raise RuntimeError(f"ingest of {f.name} failed: {report}")
    finally:
        os.environ.clear()
        os.environ.update(saved)
