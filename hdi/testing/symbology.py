"""Symbol resolution for the test gateway, shaped like Databento's.

``resolve`` turns requested symbols into instrument ids per UTC date and into mapping intervals
``(start_date, end_date_exclusive, instrument_id)``. Only session dates resolve (a Saturday maps
nothing for futures, a weekend nothing for equities), so intervals split around them, and a window
that holds no session date resolves nothing, as Databento's does.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta

from hdi.testing import market

ALL_SYMBOLS = "ALL_SYMBOLS"
STYPES_IN = ("raw_symbol", "instrument_id", "continuous", "parent")
_CONTINUOUS = re.compile(r"^(?P<root>[A-Z0-9]+)\.(?P<rule>[a-z])\.(?P<rank>\d+)$")
_PARENT = re.compile(r"^(?P<root>[A-Z0-9]+)\.(?P<cls>FUT|OPT)$")


class SymbologyError(ValueError):
    """A request whose symbols cannot be resolved at all (Databento answers 422)."""


@dataclass
class Resolution:
    """Symbols resolved over a date window."""

    symbols: list[str]
    mappings: dict[str, list[tuple[date, date, int]]] = field(default_factory=dict)
    by_date: dict[date, set[int]] = field(default_factory=lambda: defaultdict(set))
    not_found: list[str] = field(default_factory=list)
    partial: list[str] = field(default_factory=list)

    def ids_on(self, d: date) -> list[int]:
        return sorted(self.by_date.get(d, ()))


def looks_smart(symbol: str) -> str | None:
    """``'continuous'`` or ``'parent'`` when a symbol has that shape, else None."""
    if _CONTINUOUS.match(symbol):
        return "continuous"
    if _PARENT.match(symbol):
        return "parent"
    return None


def _dates(start: date, end: date) -> list[date]:
    return [start + timedelta(days=i) for i in range((end - start).days)]


def _ids_for(dataset: market.Dataset, symbol: str, stype_in: str, d: date) -> list[int]:
    """Instrument ids a symbol maps to on one session date."""
    if dataset.kind == "equities":
        if stype_in == "raw_symbol" and symbol in market.EQUITIES:
            return [market.EQUITIES[symbol].instrument_id]
        if stype_in == "instrument_id" and symbol.isdigit() and int(symbol) in market.EQUITY_BY_ID:
            return [int(symbol)]
        return []
    if stype_in == "continuous":
        m = _CONTINUOUS.match(symbol)
        if not m or m["root"] not in market.PRODUCTS:
            return []
        c = market.continuous(m["root"], int(m["rank"]), d)
        return [c.instrument_id] if c else []
    if stype_in == "parent":
        m = _PARENT.match(symbol)
        if not m or m["cls"] != "FUT" or m["root"] not in market.PRODUCTS:
            return []
        return [c.instrument_id for c in market.listed_contracts(m["root"], d)]
    if stype_in == "instrument_id":
        c = market.contract_by_id(int(symbol)) if symbol.isdigit() else None
    else:
        c = _raw_contract(symbol, d)
    return [c.instrument_id] if c is not None and c.live_on(d) else []


def _raw_contract(symbol: str, d: date) -> market.Contract | None:
    """The contract a raw symbol such as ``CLZ4`` names around ``d`` (year digits repeat every decade)."""
    m = re.match(r"^([A-Z]{2})([FGHJKMNQUVXZ])(\d)$", symbol)
    if not m or m[1] not in market.PRODUCTS:
        return None
    product = market.PRODUCTS[m[1]]
    month = market.MONTH_CODES.index(m[2]) + 1
    if month not in product.months:
        return None
    decade = d.year - d.year % 10
    for year in (decade + int(m[3]), decade + 10 + int(m[3]), decade - 10 + int(m[3])):
        c = market.contract(product.root, year, month)
        if c.live_on(d):
            return c
    return None


def resolve(dataset: str, symbols: list[str], stype_in: str, start: date, end: date) -> Resolution:
    """Resolve ``symbols`` over the UTC dates ``[start, end)``.

    Raises:
        SymbologyError: when no symbol resolves on any date (Databento's 422).
    """
    ds = market.DATASETS[dataset]
    res = Resolution(symbols=list(symbols))
    session = [d for d in _dates(start, end) if market.is_session_date(ds.kind, d)]
    if symbols == [ALL_SYMBOLS]:
        per: dict[str, dict[date, list[int]]] = defaultdict(dict)
        for d in session:
            for iid in market.instruments_on(dataset, d):
                inst = market.instrument(dataset, iid)
                assert inst is not None
                per[inst.raw_symbol][d] = [iid]
                res.by_date[d].add(iid)
        for sym in sorted(per):
            res.mappings[sym] = _intervals(per[sym])
        if not res.mappings:
            raise SymbologyError("None of the symbols could be resolved")
        return res
    for sym in symbols:
        days = {d: ids for d in session if (ids := _ids_for(ds, sym, stype_in, d))}
        if not days:
            res.not_found.append(sym)
            continue
        if len(days) < len(session):
            res.partial.append(sym)
        res.mappings[sym] = _intervals(days)
        for d, ids in days.items():
            res.by_date[d].update(ids)
    if not res.mappings:
        raise SymbologyError("None of the symbols could be resolved")
    return res


def _intervals(days: dict[date, list[int]]) -> list[tuple[date, date, int]]:
    """Runs of consecutive calendar dates with the same id -> ``(d0, d1_exclusive, id)``, by d0."""
    runs: list[tuple[date, date, int]] = []
    open_runs: dict[int, list[date]] = {}
    for d in sorted(days):
        for iid in days[d]:
            run = open_runs.get(iid)
            if run is not None and run[1] == d:
                run[1] = d + timedelta(days=1)
            else:
                if run is not None:
                    runs.append((run[0], run[1], iid))
                open_runs[iid] = [d, d + timedelta(days=1)]
    runs.extend((r[0], r[1], iid) for iid, r in open_runs.items())
    return sorted(runs, key=lambda r: (r[0], r[2]))
