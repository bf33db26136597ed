"""Restatements and dataset conditions in the local gateway (issue 15.2).

Databento publishes, per dataset and UTC date, a ``condition`` (available, degraded, pending,
missing) and a ``last_modified_date`` (the day any schema of that date was last regenerated):
``metadata.get_dataset_condition``. The gateway answers it from :class:`Conditions`: every date up to
the dataset's available end is ``available`` and was last modified the day after it, unless a test
marks it otherwise (:meth:`Conditions.mark`) or restates it (:meth:`Conditions.restate`). A restated
date serves new data from then on, in every schema that has prices: the records at the given
positions of each instrument's day removed, the prices at other positions moved by a number of
cents, and its ``last_modified_date`` is the restatement's.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

CONDITIONS = ("available", "degraded", "pending", "missing")
CENT = 10_000_000  # 0.01 in DBN fixed-point prices (1e-9)


@dataclass(frozen=True)
class Restatement:
    """New data for one (dataset, date): ``remove`` holds positions (modulo the day's record count)
    of each instrument's records to drop, ``reprice`` (position, cents) price moves (positions taken
    before any removal); ``last_modified`` is the date Databento reports as regenerated."""

    last_modified: date
    remove: tuple[int, ...] = ()
    reprice: tuple[tuple[int, int], ...] = ()

    def apply(self, arr: np.ndarray) -> np.ndarray:
        """The restated records of one instrument-day (a copy; ``arr`` is not changed)."""
        n = len(arr)
        if n == 0:
            return arr
        out = arr.copy()
        names = out.dtype.names or ()
        for pos, cents in self.reprice:
            i = pos % n
            if "price" in names:
                new = int(out["price"][i]) + cents * CENT
                out["price"][i] = new if new > 0 else int(out["price"][i]) + abs(cents) * CENT
            elif "close" in names:  # a bar: its close moves within [low, high]
                out["close"][i] = out["low"][i] if out["close"][i] != out["low"][i] else out["high"][i]
        if self.remove:
            keep = np.ones(n, dtype=bool)
            keep[[p % n for p in self.remove]] = False
            out = out[keep]
        return out


class Conditions:
    """The gateway's dataset conditions and restatements, changed by tests while it serves."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._marked: dict[tuple[str, date], str] = {}
        self._restated: dict[tuple[str, date], Restatement] = {}

    def mark(self, dataset: str, day: date, condition: str) -> None:
        """Report ``day`` of ``dataset`` as ``condition`` (available, degraded, pending, missing)."""
        if condition not in CONDITIONS:
            raise ValueError(f"condition '{condition}' is not one of {', '.join(CONDITIONS)}")
        with self._lock:
            self._marked[(dataset, day)] = condition

    def restate(self, dataset: str, day: date, *, last_modified: date | None = None,
                remove: Iterable[int] = (0,), reprice: Iterable[tuple[int, int]] = ((1, 1),)) -> Restatement:
        """Restate ``day`` of ``dataset``: new data from now on and a later ``last_modified_date``
        (default: one day after the current one). Restating again replaces the earlier restatement."""
        with self._lock:
            now = self._last_modified(dataset, day)
            r = Restatement(last_modified or now + timedelta(days=1), tuple(remove),
                            tuple((int(p), int(c)) for p, c in reprice))
            if r.last_modified <= now:
                raise ValueError(f"last_modified {r.last_modified} must be after the current one, {now}")
            self._restated[(dataset, day)] = r
            return r

    def _last_modified(self, dataset: str, day: date) -> date:
        r = self._restated.get((dataset, day))
        return r.last_modified if r is not None else day + timedelta(days=1)

    def edit(self, dataset: str, day: date) -> Restatement | None:
        """The restatement the records of ``day`` are served with, if any."""
        with self._lock:
            return self._restated.get((dataset, day))

    def restated(self, dataset: str) -> frozenset[date]:
        with self._lock:
            return frozenset(d for ds, d in self._restated if ds == dataset)

    def answer(self, dataset: str, first: date, last: date) -> list[dict[str, str | None]]:
        """``metadata.get_dataset_condition``'s JSON for the dates [first, last] (inclusive)."""
        out: list[dict[str, str | None]] = []
        with self._lock:
            d = first
            while d <= last:
                out.append({"date": d.isoformat(), "condition": self._marked.get((dataset, d), "available"),
                            "last_modified_date": self._last_modified(dataset, d).isoformat()})
                d += timedelta(days=1)
        return out
