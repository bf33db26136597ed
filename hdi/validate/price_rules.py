"""Which instruments may trade at zero or below: the price rule follows the instrument.

Futures, options on futures and spreads can trade at or below zero (WTI crude's May 2020 contract
settled at -37.63 on 20 April 2020; calendar spreads do so daily), so ``price > 0`` is a rule for
equities and ETFs only. The rule for a row is decided, in this order, by:

1. the recipe's ``validate.allow_non_positive_prices`` when it is set (``true``: every instrument
   may; ``false``: none may) -- an override, not needed by any shipped recipe;
2. the instrument's definition, when ``definition`` records for it were ingested into the store
   (its latest ``instrument_class``): future ``F``, future spread ``S``, mixed spread ``M``, option
   spread ``T`` and commodity spot ``Y`` may; call ``C`` and put ``P`` may on a futures venue
   (options on futures), not on an equity-options venue (OPRA); stock ``K``, bond ``B``, FX spot
   ``X`` and index ``I`` may not;
3. else the dataset's asset class: futures venues (:data:`FUTURES_VENUES`, e.g. ``GLBX.MDP3``)
   may; equity venues (:data:`EQUITY_VENUES`, e.g. ``XNAS.ITCH``, ``EQUS.MINI``, ``DBEQ.BASIC``,
   ``OPRA.PILLAR``) and datasets hdi does not know may not.

Undefined prices (DBN's ``INT64_MAX`` sentinel) are decoded as null and fail the column's
``<col>:null`` rule: they never become values, whatever the instrument.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Protocol

import polars as pl

log = logging.getLogger(__name__)

# Databento dataset publisher codes (the part before the dot).
FUTURES_VENUES = frozenset({"GLBX", "IFEU", "IFUS", "IFLL", "NDEX", "XEUR", "XEEE", "XCBF"})
EQUITY_VENUES = frozenset({
    "XNAS", "XBOS", "XPSX", "BATS", "BATY", "EDGA", "EDGX", "XNYS", "XCIS", "XASE", "XCHI", "ARCX", "IEXG",
    "MEMX", "EPRL", "FINN", "FINY", "DBEQ", "EQUS", "OCEA", "OPRA",
})
# DBN InstrumentClass codes whose prices may be zero or negative anywhere, and options, which may
# on a futures venue (options on futures).
ANY_PRICE_CLASSES = frozenset({"F", "S", "M", "T", "Y"})
OPTION_CLASSES = frozenset({"C", "P"})


def venue_allows(dataset: str) -> bool:
    """True when the dataset is a futures venue, whose instruments may trade at or below zero."""
    return dataset.split(".", 1)[0].upper() in FUTURES_VENUES


def class_allows(instrument_class: str | None, dataset: str) -> bool | None:
    """What a definition's ``instrument_class`` says (None: no class, the dataset decides)."""
    if not instrument_class:
        return None
    if instrument_class in ANY_PRICE_CLASSES:
        return True
    if instrument_class in OPTION_CLASSES:
        return venue_allows(dataset)
    return False


class DefinitionStore(Protocol):
    """What :class:`PriceRule` reads definitions through (every :class:`hdi.store.base.Store` is one)."""

    def has_table(self, name: str) -> bool: ...

    def query(self, sql: str, params: Sequence[object] = ()) -> pl.DataFrame: ...


class PriceRule:
    """Per dataset and instrument: may prices be zero or negative? Definitions are read from the
    store once per instrument and cached for the run.

    Args:
        store: a store (anything with ``has_table`` and ``query``), or None: no definitions.
        override: the recipe's ``allow_non_positive_prices`` (None = follow the instrument).
    """

    def __init__(self, store: DefinitionStore | None = None, override: bool | None = None) -> None:
        self.store, self.override = store, override
        self._known: dict[tuple[str, int], bool | None] = {}

    def _lookup(self, dataset: str, ids: list[int]) -> None:
        todo = [i for i in ids if (dataset, i) not in self._known]
        if not todo:
            return
        found: dict[int, str | None] = {}
        if self.store is not None and self.store.has_table("instruments"):
            for start in range(0, len(todo), 1000):
                part = todo[start:start + 1000]
                marks = ", ".join(f"${k + 2}" for k in range(len(part)))
                got = self.store.query(
                    "SELECT instrument_id, instrument_class FROM instruments WHERE dataset = $1 AND "
                    f"instrument_id IN ({marks}) ORDER BY instrument_id, received_timestamp_utc", [dataset, *part])
                for iid, cls in got.iter_rows():
                    found[int(iid)] = cls  # the latest definition wins (rows are in time order)
        for i in todo:
            self._known[(dataset, i)] = class_allows(found.get(i), dataset)

    def allows(self, dataset: str, instrument_ids: Iterable[int]) -> pl.Expr | bool:
        """True/False for every row, or an expression over ``instrument_id`` True where the row's
        instrument may have prices <= 0 (for :func:`hdi.validate.split.split`)."""
        if self.override is not None:
            return self.override
        ids = sorted({int(i) for i in instrument_ids if i is not None})
        self._lookup(dataset, ids)
        default = venue_allows(dataset)
        decided = {i: self._known[(dataset, i)] for i in ids}
        differ = [i for i, v in decided.items() if v is not None and v != default]
        if not differ:
            return default
        if default:  # a futures venue: every instrument may, except those whose definition says no
            return ~pl.col("instrument_id").is_in(differ)
        return pl.col("instrument_id").is_in(differ)


    def for_frame(self, table: str, dataset: str, frame: pl.DataFrame) -> pl.Expr | bool:
        """:meth:`allows` for the rows of ``frame`` bound for ``table`` (False: the table has no price rule)."""
        from hdi.validate.rules import POSITIVE_PRICES

        if table not in POSITIVE_PRICES:
            return False
        if self.override is not None:
            return self.override
        return self.allows(dataset, instrument_ids(frame))


def instrument_ids(frame: pl.DataFrame) -> list[int]:
    """The distinct instrument ids of a frame (those that fit an Int64)."""
    if "instrument_id" not in frame.columns:
        return []
    return frame.get_column("instrument_id").cast(pl.Int64, strict=False).drop_nulls().unique().to_list()
