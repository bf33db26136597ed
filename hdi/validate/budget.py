"""The quarantine budget: how many rows may fail validation before a run says so.

Good rows always load; the budget only decides how a run *reports*. A recipe's
``validate.max_failure_rate`` (default 0.01 = 1%) is judged:

- over the run: quarantined rows / rows validated, over every chunk the run loaded;
- per (dataset, schema, symbol) once the run validated at least :data:`MIN_POPULATION` (1,000)
  rows of it; a smaller population says little about a symbol (1 bad daily bar of 21 is 4.8%),
  and is judged as part of the run only.

A symbol is *over budget* when its own rate (population >= 1,000) is above the rate, or when the
run as a whole is over and the symbol (population < 1,000) had quarantined rows. The verdict of a
run is written beside its quarantined rows (``<quarantine>/run=<id>/budget.json``), so that
``hdi status`` can mark the symbols while their quarantined rows are still open
(:func:`open_quarantine`), and the run's row in the ledger says ``over_budget``.

Rows are attributed to the symbol that was requested (``CL.c.0``) by their instrument and UTC day,
through the chunk file's symbol mappings, exactly as the decoder labels records; a row no
requested symbol maps gets its instrument id.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

if TYPE_CHECKING:
    from hdi.decode.symbols import SymbolMapper

MIN_POPULATION = 1_000
SYMBOL_COLUMN = "_symbol"  # the requested symbol of a quarantined row (a quarantine metadata column)
VERDICT_FILE = "budget.json"
_IID, _DAY = "__hdi_iid", "__hdi_day"


# ------------------------------------------------------------------------ attributing rows to symbols
_NS_PER_DAY = 86_400_000_000_000


def _ids_and_times(frame: pl.DataFrame, time_column: str) -> pl.DataFrame:
    iid = (pl.col("instrument_id").cast(pl.Int64, strict=False) if "instrument_id" in frame.columns
           else pl.lit(None, pl.Int64))
    ts = (pl.col(time_column).dt.epoch("ns") if time_column in frame.columns and
          isinstance(frame.schema[time_column], pl.Datetime) else pl.lit(None, pl.Int64))
    return frame.select(iid.alias(_IID), ts.alias(_DAY))


_VALID = (pl.col(_IID).is_between(0, 2**32 - 1) & (pl.col(_DAY) >= 0)).fill_null(False)


def _label(keys: pl.DataFrame, mapper: SymbolMapper | None) -> pl.Series:
    """The symbol of (instrument id, ns time) rows through the file's ``SymbolMapper``; a row no
    requested symbol covers gets its instrument id, and one without an id ``?``."""
    valid = keys.with_row_index("__i").filter(_VALID)
    mapped = pl.Series("symbol", [], pl.String)
    if mapper is not None and valid.height:
        mapped = mapper.map(valid[_IID].to_numpy().astype("uint32"), valid[_DAY].to_numpy().astype("uint64"))
    full = pl.Series("symbol", [None] * keys.height, pl.String)
    if valid.height:
        full = full.scatter(valid["__i"], mapped)
    return keys.select(pl.coalesce(full, pl.col(_IID).cast(pl.String), pl.lit("?"))).to_series()


def label_rows(frame: pl.DataFrame, time_column: str, mapper: SymbolMapper | None) -> pl.Series:
    """The requested symbol of every row of ``frame`` (a recipe's output or its bad rows), by its
    instrument and the UTC day of its time column, as the decoder labels records
    (``hdi.decode.symbols.SymbolMapper`` of the chunk's file; None: by instrument id)."""
    return _label(_ids_and_times(frame, time_column), mapper).alias(SYMBOL_COLUMN)


def rows_per_symbol(frame: pl.DataFrame, time_column: str, mapper: SymbolMapper | None) -> dict[str, int]:
    """Rows of ``frame`` per requested symbol, labelled as :func:`label_rows` does: counted from
    the mapper's segment numbers, so no string is built for the common rows."""
    keys = _ids_and_times(frame, time_column)
    ok = keys.select(_VALID).to_series()
    valid = keys if ok.all() else keys.filter(ok)
    out: Counter[str] = Counter()
    if valid.height:
        import numpy as np  # here: `hdi status` imports this module (over_budget) and needs no numpy

        iid = valid[_IID].to_numpy().astype(np.uint32)
        if mapper is None:
            ids, n = np.unique(iid, return_counts=True)
            out.update({str(i): int(k) for i, k in zip(ids.tolist(), n.tolist(), strict=True)})
        else:
            counted = mapper.counts(iid, valid[_DAY].to_numpy().astype(np.uint64))
            if counted.get(None):  # rows no requested symbol covers (a roll day's old contract): by id
                counted = dict(_label(valid, mapper).value_counts().iter_rows())
            out.update({str(k): int(v) for k, v in counted.items()})
    if valid.height != keys.height:  # rows without an instrument id or a time
        out.update({str(k): int(v) for k, v in _label(keys.filter(~ok), mapper).value_counts().iter_rows()})
    return dict(out)


# ------------------------------------------------------------------------ tallies and the verdict
@dataclass
class SymbolTally:
    dataset: str
    schema: str
    symbol: str
    rows: int = 0
    quarantined: int = 0
    reasons: dict[str, int] = field(default_factory=dict)


@dataclass
class SymbolVerdict(SymbolTally):
    rate: float = 0.0
    over: bool = False
    judged: str = "symbol"  # "symbol" (>= MIN_POPULATION rows) or "run"

    def describe(self, max_rate: float) -> str:
        top = sorted(self.reasons.items(), key=lambda kv: (-kv[1], kv[0]))[:3]
        why = (f"above max_failure_rate {max_rate:.2%}" if self.judged == "symbol" else
               f"judged over the run, which is above max_failure_rate {max_rate:.2%} (fewer than "
               f"{MIN_POPULATION:,} rows of the symbol)")
        return (f"{self.dataset} {self.schema} {self.symbol}: {self.quarantined:,} of {self.rows:,} rows "
                f"({self.rate:.2%}) quarantined, {why}; top reasons: "
                + ", ".join(f"{r} ({n:,})" for r, n in top))


@dataclass
class Verdict:
    """A run's quarantine budget: totals, and every symbol with quarantined rows."""

    max_rate: float
    rows: int = 0
    quarantined: int = 0
    symbols: list[SymbolVerdict] = field(default_factory=list)
    min_population: int = MIN_POPULATION

    @property
    def rate(self) -> float:
        return self.quarantined / self.rows if self.rows else 0.0

    @property
    def run_over(self) -> bool:
        return self.rate > self.max_rate

    @property
    def over(self) -> bool:
        return any(s.over for s in self.symbols)

    @property
    def over_symbols(self) -> list[SymbolVerdict]:
        return [s for s in self.symbols if s.over]

    def message(self) -> str:
        """One line: what is over budget, for the run's ledger row."""
        names = ", ".join(f"{s.symbol} ({s.quarantined:,}/{s.rows:,})" for s in self.over_symbols)
        return (f"over quarantine budget: {self.quarantined:,} of {self.rows:,} rows ({self.rate:.2%}) "
                f"quarantined, max_failure_rate {self.max_rate:.2%}; symbols: {names}")

    def to_dict(self) -> dict[str, Any]:
        return {"max_failure_rate": self.max_rate, "min_population": self.min_population, "rows": self.rows,
                "quarantined": self.quarantined, "rate": self.rate, "over": self.over,
                "symbols": [asdict(s) for s in self.symbols]}


class Budget:
    """Accumulates a run's validated and quarantined rows per (dataset, schema, symbol)."""

    def __init__(self, max_rate: float, min_population: int = MIN_POPULATION) -> None:
        self.max_rate, self.min_population = max_rate, min_population
        self.tallies: dict[tuple[str, str, str], SymbolTally] = {}

    def add(self, other: Budget) -> None:
        for key, t in other.tallies.items():
            mine = self.tallies.setdefault(key, SymbolTally(*key))
            mine.rows += t.rows
            mine.quarantined += t.quarantined
            for r, n in t.reasons.items():
                mine.reasons[r] = mine.reasons.get(r, 0) + n

    def count(self, dataset: str, schema: str, rows: dict[str, int], bad: pl.DataFrame | None = None) -> None:
        """Add one batch: rows validated per symbol, and its bad rows (with ``_symbol`` and ``_reasons``)."""
        for sym, n in rows.items():
            self.tallies.setdefault((dataset, schema, sym), SymbolTally(dataset, schema, sym)).rows += n
        if bad is None or bad.height == 0:
            return
        per = (bad.select(SYMBOL_COLUMN, pl.col("_reasons").str.split(";").alias("r")).explode("r")
               .group_by(SYMBOL_COLUMN, "r").len("n"))
        for sym, n in bad.group_by(SYMBOL_COLUMN).len("n").iter_rows():
            self.tallies.setdefault((dataset, schema, sym), SymbolTally(dataset, schema, sym)).quarantined += n
        for sym, reason, n in per.iter_rows():
            t = self.tallies[(dataset, schema, sym)]
            t.reasons[reason] = t.reasons.get(reason, 0) + int(n)

    def verdict(self) -> Verdict:
        v = Verdict(self.max_rate, min_population=self.min_population)
        v.rows = sum(t.rows for t in self.tallies.values())
        v.quarantined = sum(t.quarantined for t in self.tallies.values())
        for t in sorted(self.tallies.values(), key=lambda t: (t.dataset, t.schema, t.symbol)):
            if not t.quarantined:
                continue
            rate = t.quarantined / t.rows if t.rows else 1.0
            judged = "symbol" if t.rows >= self.min_population else "run"
            over = rate > self.max_rate if judged == "symbol" else v.run_over
            v.symbols.append(SymbolVerdict(t.dataset, t.schema, t.symbol, t.rows, t.quarantined, dict(t.reasons),
                                           rate=rate, over=over, judged=judged))
        return v


# ------------------------------------------------------------------------ persisted verdicts and status
def write_verdict(verdict: Verdict, *, root: Path, run_id: str, store: str, recipe: str) -> Path | None:
    """Write (or merge into) ``<root>/run=<run_id>/budget.json``; nothing when no row was quarantined.

    A resumed run merges its counts into the file, and a symbol once over budget stays marked.
    """
    folder = Path(root) / f"run={run_id}"
    path = folder / VERDICT_FILE
    old = read_verdicts(root, run_id=run_id)
    if verdict.quarantined == 0 and not old:
        return None
    body = {"run_id": run_id, "store": store, "recipe": recipe,
            "written_at": dt.datetime.now(dt.UTC).isoformat(), **verdict.to_dict()}
    if old:
        prev = old[0]
        body["rows"] += prev.get("rows", 0)
        body["quarantined"] += prev.get("quarantined", 0)
        mine = {(s["dataset"], s["schema"], s["symbol"]): s for s in body["symbols"]}
        for s in prev.get("symbols", []):
            key = (s["dataset"], s["schema"], s["symbol"])
            if key not in mine:
                mine[key] = s
                continue
            m = mine[key]
            m["rows"] += s["rows"]
            m["quarantined"] += s["quarantined"]
            m["over"] = m["over"] or s["over"]
            for r, n in s["reasons"].items():
                m["reasons"][r] = m["reasons"].get(r, 0) + n
            m["rate"] = m["quarantined"] / m["rows"] if m["rows"] else 1.0
        body["symbols"] = sorted(mine.values(), key=lambda s: (s["dataset"], s["schema"], s["symbol"]))
        body["over"] = any(s["over"] for s in body["symbols"])
        body["rate"] = body["quarantined"] / body["rows"] if body["rows"] else 0.0
    tmp = folder / f".{VERDICT_FILE}.{uuid.uuid4().hex}.tmp"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(body, indent=1, sort_keys=True))
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise
    return path


def read_verdicts(root: Path, *, run_id: str | None = None, store: str | None = None) -> list[dict[str, Any]]:
    """The budget verdicts written under ``root`` (of one run, or of one store's runs)."""
    pattern = f"run={run_id}/{VERDICT_FILE}" if run_id else f"run=*/{VERDICT_FILE}"
    out = []
    for p in sorted(Path(root).glob(pattern)):
        try:
            body = json.loads(p.read_text())
        except (OSError, ValueError):
            continue
        if store is None or body.get("store") == store:
            out.append(body)
    return out


_OPEN_SCHEMA = {"run_id": pl.String, "dataset": pl.String, "symbol": pl.String, "rows": pl.Int64}


def open_quarantine(root: Path, run_id: str | None = None, replayed: pl.DataFrame | None = None) -> pl.DataFrame:
    """Quarantined rows still open, per (run_id, dataset, symbol): the rows in the runs' quarantine
    Parquet files (``<root>/run=<id>/*.parquet``) less those a replay loaded. ``replayed`` holds
    ``quarantine_run_id``, ``file`` and ``row_index`` (0-based position in the file) of the rows
    ``hdi quarantine replay`` recorded in the store's ``quarantine_replays`` table; the files
    themselves are never changed."""
    pattern = f"run={run_id}/*.parquet" if run_id else "run=*/*.parquet"
    parts = []
    for f in sorted(Path(root).glob(pattern)):
        if f.name.startswith("."):
            continue
        lf = pl.scan_parquet(f).with_row_index("_row_index")
        if replayed is not None and replayed.height:
            done = (replayed.filter((pl.col("quarantine_run_id") == f.parent.name.removeprefix("run="))
                                    & (pl.col("file") == f.name))
                    .select(pl.col("row_index").cast(pl.UInt32).alias("_row_index")))
            if done.height:
                lf = lf.join(done.lazy(), on="_row_index", how="anti")
        names = lf.collect_schema().names()
        sym = pl.col(SYMBOL_COLUMN) if SYMBOL_COLUMN in names else pl.lit(None, pl.String)
        ds = pl.col("dataset").cast(pl.String) if "dataset" in names else pl.lit(None, pl.String)
        parts.append(lf.select(ds.alias("dataset"), sym.alias("symbol")).group_by("dataset", "symbol").len("rows")
                     .with_columns(pl.lit(f.parent.name.removeprefix("run=")).alias("run_id")).collect())
    if not parts:
        return pl.DataFrame(schema=_OPEN_SCHEMA)
    return (pl.concat(parts).group_by("run_id", "dataset", "symbol").agg(pl.col("rows").sum().cast(pl.Int64))
            .select(list(_OPEN_SCHEMA)).sort("run_id", "dataset", "symbol"))


_OVER_SCHEMA = {"dataset": pl.String, "schema": pl.String, "symbol": pl.String, "run_id": pl.String,
                "rows": pl.Int64, "quarantined": pl.Int64, "rate": pl.Float64, "max_failure_rate": pl.Float64,
                "judged": pl.String, "open_rows": pl.Int64, "reasons": pl.String}


def over_budget(root: Path, store: str, replayed: pl.DataFrame | None = None) -> pl.DataFrame:
    """Symbols a run of ``store`` judged over its quarantine budget whose quarantined rows are still
    open (for ``hdi status``): one row per (dataset, schema, symbol, run). ``replayed``: the store's
    replay ledger (see ``open_quarantine``); replayed rows are no longer open."""
    verdicts = read_verdicts(root, store=store)
    rows = []
    for v in verdicts:
        flagged = [s for s in v.get("symbols", []) if s.get("over")]
        if not flagged:
            continue
        still = {(d, s): n for _, d, s, n in open_quarantine(root, v["run_id"], replayed).iter_rows()}
        for s in flagged:
            left = still.get((s["dataset"], s["symbol"]), 0)
            if not left:
                continue
            top = sorted(s["reasons"].items(), key=lambda kv: (-kv[1], kv[0]))[:3]
            rows.append({"dataset": s["dataset"], "schema": s["schema"], "symbol": s["symbol"],
                         "run_id": v["run_id"], "rows": s["rows"], "quarantined": s["quarantined"],
                         "rate": s["rate"], "max_failure_rate": v["max_failure_rate"], "judged": s["judged"],
                         "open_rows": left, "reasons": ", ".join(f"{r} ({n})" for r, n in top)})
    return pl.DataFrame(rows, schema=_OVER_SCHEMA).sort("dataset", "schema", "symbol", "run_id")
