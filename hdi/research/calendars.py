"""Exchange calendars: which calendar an instrument trades on, its sessions, each instant's trading date.

Calendars come from ``pandas_market_calendars`` (pinned in pyproject.toml), never from a hand-written
holiday list. The product-specific CME Globex calendars give the real session bounds: energy
(CL, HO, RB, NG) and equity-index (ES, NQ, ...) futures trade from 17:00 Chicago time on the previous
day to 16:00 (the 16:00-17:00 break excluded), DST-correct, with holiday early closes; the trading
date is the date the session ends (Sunday evening opens Monday's). US equities use ``NYSE``
(09:30-16:00 New York; ``extended=True``: 04:00-20:00).

pandas is only touched to build a schedule; the result is a small Polars frame cached per
(calendar, year, session kind), in memory and as Parquet in ``<HDI_DATA_DIR>/calendars`` (a new
process, e.g. ``hdi status``, then never imports pandas), so the read path stays in Polars::

    from hdi.research.calendars import calendar_for, schedule, with_trading_date
    cal = calendar_for("GLBX.MDP3", "CLZ4")                 # 'CMEGlobex_CrudeAndRefined'
    sched = schedule(cal, date(2024, 11, 25), date(2024, 11, 29))
    bars = with_trading_date(bars_1m, "ts_event", sched)   # + trading_date (null in the break)
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import re
import threading
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

from hdi.errors import QueryError, allowed_list

if TYPE_CHECKING:  # pragma: no cover
    import polars as pl
    from pandas_market_calendars import MarketCalendar


class CalendarError(QueryError):
    """No exchange calendar is known for a dataset/symbol, or a calendar name is unknown."""


# Futures roots on GLBX.MDP3 and the pandas_market_calendars calendar of their Globex hours.
_ENERGY = "CMEGlobex_CrudeAndRefined"
FUTURES_CALENDARS: dict[str, str] = {
    **dict.fromkeys(("CL", "MCL", "QM", "BZ", "HO", "RB"), _ENERGY),
    **dict.fromkeys(("NG", "QG"), "CMEGlobex_NatGas"),
    **dict.fromkeys(("ES", "MES", "NQ", "MNQ", "RTY", "M2K", "YM", "MYM", "EMD"), "CME_Equity"),
}
FUTURES_DATASETS = ("GLBX.MDP3",)
# US equity datasets: every symbol trades on the NYSE calendar (regular session; extended on request).
EQUITY_DATASETS = (
    "XNAS.ITCH", "XNAS.BASIC", "XNYS.PILLAR", "XNYS.TRADES", "ARCX.PILLAR", "EQUS.MINI", "EQUS.SUMMARY",
    "EQUS.PLUS", "EQUS.ALL", "DBEQ.BASIC", "IEXG.TOPS", "XBOS.ITCH", "XPSX.ITCH", "BATS.PITCH",
    "BATY.PITCH", "EDGA.PITCH", "EDGX.PITCH", "MEMX.MEMOIR", "EPRL.DOM", "XCHI.PILLAR", "XCIS.TRADES",
)
EQUITY_CALENDAR = "NYSE"
CALENDARS = tuple(sorted({*FUTURES_CALENDARS.values(), EQUITY_CALENDAR}))

# A futures symbol's root: parent (CL.FUT, CL.OPT), continuous (CL.c.0, CL.v.1, CL.n.0), raw contract
# (CLZ4, CLZ24) or a calendar spread (CLZ4-CLF5).
_SUFFIX = re.compile(r"^(?:\.FUT|\.OPT|\.[cvn]\.\d+|[FGHJKMNQUVXZ]\d{1,2}(?:-.*)?)$", re.IGNORECASE)


def futures_root(symbol: str) -> str | None:
    """The known futures root of ``symbol`` (``CLZ4`` -> ``CL``, ``ES.c.0`` -> ``ES``), or None."""
    s = symbol.strip()
    for root in sorted(FUTURES_CALENDARS, key=len, reverse=True):
        if s.upper().startswith(root) and (len(s) == len(root) or _SUFFIX.match(s[len(root):])):
            return root
    return None


def calendar_for(dataset: str, symbol: str) -> str:
    """The pandas_market_calendars name of the calendar ``symbol`` trades on in ``dataset``.

    GLBX.MDP3: by the futures root of a root, raw, parent or continuous symbol (CL/HO/RB ->
    ``CMEGlobex_CrudeAndRefined``, NG -> ``CMEGlobex_NatGas``, ES/NQ/... -> ``CME_Equity``). US equity
    datasets (XNAS.ITCH, EQUS.MINI, ...): ``NYSE`` for every symbol. Anything else: :class:`CalendarError`.
    """
    ds = (dataset or "").strip().upper()
    if ds in EQUITY_DATASETS:
        return EQUITY_CALENDAR
    if ds in FUTURES_DATASETS:
        root = futures_root(symbol)
        if root is not None:
            return FUTURES_CALENDARS[root]
        raise CalendarError(
            f"no exchange calendar is known for symbol '{symbol}' on {ds}; allowed: a root, raw, parent "
            f"or continuous symbol of {allowed_list(sorted(FUTURES_CALENDARS))}")
    raise CalendarError(
        f"no exchange calendar is known for dataset '{dataset}'; allowed: "
        f"{allowed_list((*FUTURES_DATASETS, *EQUITY_DATASETS))}")


_lock = threading.Lock()


@functools.cache
def _calendar(name: str) -> MarketCalendar:
    import pandas_market_calendars as mcal

    if name not in CALENDARS and name not in mcal.get_calendar_names():
        raise CalendarError(f"unknown exchange calendar '{name}'; allowed: {allowed_list(CALENDARS)}")
    return mcal.get_calendar(name)


@functools.lru_cache(maxsize=256)
def _year(name: str, year: int, extended: bool) -> pl.DataFrame:
    """One calendar year of sessions (by trading date), built once with pandas, kept as Polars: in
    memory, and on disk (:func:`_disk`) so that a new process (``hdi status``) reads it back without
    importing pandas."""
    import polars as pl

    path = _disk(name, year, extended)
    if path is not None and path.is_file():
        try:
            return pl.read_parquet(path)
        except Exception:  # noqa: BLE001 - an unreadable cache file is rebuilt (below)
            pass
    frame = _build_year(name, year, extended)
    if path is not None:
        tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            frame.write_parquet(tmp)
            os.replace(tmp, path)
        except OSError:  # a read-only data folder: the schedule is only kept in memory
            tmp.unlink(missing_ok=True)
    return frame


def _disk(name: str, year: int, extended: bool) -> Path | None:
    """Where a built calendar year is kept: ``<HDI_DATA_DIR>/calendars``, one Parquet file per
    (calendar, year, session kind) and pandas_market_calendars version (a new version may correct
    holidays: its years are built afresh)."""
    from importlib.metadata import PackageNotFoundError, version

    from hdi import _config as config

    try:
        v = version("pandas_market_calendars")
    except PackageNotFoundError:
        return None
    if not re.fullmatch(r"[A-Za-z0-9_.]+", name + v):
        return None
    return config.data_dir() / "calendars" / f"{name}-{year}-{'extended' if extended else 'regular'}-{v}.parquet"


def _build_year(name: str, year: int, extended: bool) -> pl.DataFrame:
    """One calendar year of sessions from pandas_market_calendars."""
    import numpy as np
    import polars as pl

    # pandas_market_calendars keeps per-instance caches: build one schedule at a time; its pandas
    # deprecation warnings are the library's, not the user's
    with _lock, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cal = _calendar(name)
        first, last = f"{year}-01-01", f"{year}-12-31"
        regular = cal.schedule(first, last)
        # only calendars with pre/post-market hours (NYSE) have an extended session; others keep theirs
        extended = extended and {"pre", "post"} <= set(cal.market_times)
        sched = cal.schedule(first, last, start="pre", end="post") if extended else regular
        early = set(cal.early_closes(regular).index)

    def ns(col: str) -> pl.Series:
        values = sched[col].dt.tz_convert("UTC").dt.tz_localize(None).to_numpy().astype("datetime64[ns]")
        return pl.Series(col, values.astype(np.int64)).cast(pl.Datetime("ns", "UTC"))

    return pl.DataFrame({
        "trading_date": pl.Series(sched.index.to_numpy().astype("datetime64[D]")).cast(pl.Date),
        "open": ns("pre" if extended else "market_open"),
        "close": ns("post" if extended else "market_close"),
        "early_close": pl.Series([d in early for d in sched.index], dtype=pl.Boolean),
    })


SCHEDULE_SCHEMA = {"trading_date": "Date", "open": "Datetime(ns, UTC)", "close": "Datetime(ns, UTC)",
                   "early_close": "Boolean"}


def schedule(calendar: str, start: dt.date, end: dt.date, *, extended: bool = False) -> pl.DataFrame:
    """Sessions of ``calendar`` whose trading date lies in [start, end] (both inclusive), sorted.

    Columns: ``trading_date`` (Date), ``open`` and ``close`` (Datetime ns UTC: the session's bounds,
    ``close`` exclusive), ``early_close`` (Boolean: the exchange closes early that day). Days the
    market is closed (weekends, holidays) have no row. ``extended=True`` gives the NYSE pre/post
    market bounds (04:00-20:00 New York); a calendar without pre/post-market hours (CME Globex, whose
    session already spans the day) keeps its own. Cached per (calendar, year, extended).
    """
    import polars as pl

    if isinstance(start, dt.datetime):
        start = start.date()
    if isinstance(end, dt.datetime):
        end = end.date()
    if end < start:
        raise CalendarError(f"schedule end {end} is before its start {start}; allowed: start <= end")
    parts = [_year(calendar, y, extended) for y in range(start.year, end.year + 1)]
    out = pl.concat(parts) if len(parts) > 1 else parts[0]
    return out.filter(pl.col("trading_date").is_between(start, end))


def trading_date_expr(ts: pl.Expr, sched: pl.DataFrame) -> pl.Expr:
    """An expression giving each UTC timestamp in ``ts`` the trading date of the session containing it
    (``open <= ts < close``), null in the daily break, on closed days and outside ``sched``.

    ``sched`` is a :func:`schedule` frame (sorted, non-overlapping sessions)."""
    import polars as pl

    if sched.height == 0:
        return pl.lit(None, dtype=pl.Date)
    idx = pl.lit(sched["open"]).search_sorted(ts, side="right").cast(pl.Int64) - 1
    safe = idx.clip(0, sched.height - 1)
    close = pl.lit(sched["close"]).gather(safe)
    date = pl.lit(sched["trading_date"]).gather(safe)
    return pl.when((idx >= 0) & (ts < close)).then(date).otherwise(None)


def as_datetime(value: object, what: str) -> dt.datetime:
    """``value`` (a Polars aggregate such as ``min()`` of a timestamp column) as a datetime; a
    QueryError naming ``what`` when it is none (an empty or all-null column)."""
    if not isinstance(value, dt.datetime):
        raise QueryError(f"no {what} timestamp to work from (got {value!r})")
    return value


@overload
def with_trading_date(frame: pl.DataFrame, ts_col: str, sched: pl.DataFrame, *,
                      bounds: bool = False) -> pl.DataFrame: ...
@overload
def with_trading_date(frame: pl.LazyFrame, ts_col: str, sched: pl.DataFrame, *,
                      bounds: bool = False) -> pl.LazyFrame: ...
def with_trading_date(frame: pl.DataFrame | pl.LazyFrame, ts_col: str, sched: pl.DataFrame, *,
                      bounds: bool = False) -> pl.DataFrame | pl.LazyFrame:
    """``frame`` with a ``trading_date`` column for its UTC timestamp column ``ts_col`` (null outside
    every session of ``sched``); with ``bounds=True`` also the session's ``session_open`` and
    ``session_close``. Row order is kept."""
    import polars as pl

    frame = frame.with_columns(trading_date_expr(pl.col(ts_col), sched).alias("trading_date"))
    if bounds:
        if isinstance(frame, pl.LazyFrame):
            frame = frame.join(sched.lazy(), on="trading_date", how="left", maintain_order="left")
        else:
            frame = frame.join(sched, on="trading_date", how="left", maintain_order="left")
        frame = frame.rename({"open": "session_open", "close": "session_close"}).drop("early_close")
    return frame


def day_kinds(calendar: str, first: dt.date, last: dt.date) -> dict[dt.date, tuple[bool, bool]]:
    """For each UTC day in [first, last]: (the market trades during that UTC day, the session with
    that trading date closes early). A CME Sunday trades (Monday's session opens in the evening); a
    Saturday, Good Friday for CME energy, or an NYSE holiday does not."""
    sched = schedule(calendar, first - dt.timedelta(days=7), last + dt.timedelta(days=7))
    opens = sched["open"].to_list()
    closes = sched["close"].to_list()
    early = dict(zip(sched["trading_date"].to_list(), sched["early_close"].to_list(), strict=True))
    out: dict[dt.date, tuple[bool, bool]] = {}
    day, i = first, 0
    while day <= last:
        lo = dt.datetime.combine(day, dt.time(0), dt.UTC)
        hi = lo + dt.timedelta(days=1)
        while i < len(closes) and closes[i] <= lo:
            i += 1
        out[day] = (i < len(opens) and opens[i] < hi, bool(early.get(day, False)))
        day += dt.timedelta(days=1)
    return out


def classify_coverage(dataset: str, symbol: str, first: dt.date, last: dt.date,
                      no_data: list[dt.date]) -> dict[str, Any]:
    """Coverage of one requested symbol by its exchange calendar: of the fetched days without data,
    which fall on a trading day (``flagged``: the source may be incomplete) and which on a closed
    market (``closed``: weekend, holiday, expected empty); the early-close trading dates in the span.
    ``calendar`` is None (and nothing is classified) when no calendar is known for the symbol."""
    try:
        cal = calendar_for(dataset, symbol)
    except CalendarError:
        return {"calendar": None, "flagged": [], "closed": [], "early_close": []}
    kinds = day_kinds(cal, first, last)
    return {"calendar": cal, "flagged": [d for d in no_data if kinds[d][0]],
            "closed": [d for d in no_data if not kinds[d][0]],
            "early_close": [d for d, (_, e) in kinds.items() if e]}
