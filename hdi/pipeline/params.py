"""A run's parameters: what ``hdi ingest`` was asked, kept in the ledger so ``--resume`` repeats it.

:class:`RunParams` is frozen: it is complete once the run is planned (``--update``'s ranges are
planned before the run is recorded, :meth:`RunParams.with_ranges`) and its JSON
(:meth:`RunParams.to_json`, :meth:`RunParams.from_json`) is what ``ingest_runs.params`` holds.
The JSON keys are those runs recorded before this type existed, so older runs resume too.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Sequence
from pathlib import Path
from typing import cast

from hdi._timeutil import iso, parse_iso
from hdi.errors import ConfigError
from hdi.source.base import UpdateRange

__all__ = ["RunParams", "UpdateRange"]

_JSON = dict[str, object]


def _text(value: object) -> str | None:
    if value is None:
        return None
    return value.isoformat() if isinstance(value, dt.date) else str(value)


def _symbols(symbols: Sequence[str] | str | None) -> tuple[str, ...] | None:
    if symbols is None:
        return None
    items = symbols.split(",") if isinstance(symbols, str) else list(symbols)
    return tuple(s.strip() for s in items if s.strip())


@dataclasses.dataclass(frozen=True)
class RunParams:
    """What a run was asked (as given: times are the user's text, checked where they are used).

    Attributes:
        recipe: the recipe file's absolute path (None until the recipe is known).
        start, end: ``--start`` / ``--end`` as given, or None.
        symbols: ``--symbols``, or None.
        from_files: the DBN files (absolute paths; folders and globs expanded), or empty.
        update: ``--update``.
        restatements: ``--restatements``: only fetch again the days of the range Databento restated
            (or that were degraded or pending when fetched).
        ranges: ``--update``'s (or ``--restatements``') planned ranges (None: not planned; a resumed
            run repeats them).
        batch: ``--batch``: ``auto`` (batch jobs above the recipe's ``batch_threshold_bytes``),
            ``always`` or ``never``.
    """

    recipe: str | None = None
    start: str | None = None
    end: str | None = None
    symbols: tuple[str, ...] | None = None
    from_files: tuple[str, ...] = ()
    update: bool = False
    ranges: tuple[UpdateRange, ...] | None = None
    restatements: bool = False
    batch: str = "auto"

    @classmethod
    def given(cls, *, start: object = None, end: object = None, symbols: Sequence[str] | str | None = None,
              from_files: Sequence[Path] = (), update: bool = False, restatements: bool = False,
              batch: str = "auto") -> RunParams:
        """The parameters as ``ingest()`` received them (dates become ISO text).

        Raises:
            ConfigError: ``batch`` is not auto, always or never.
        """
        if batch not in ("auto", "always", "never"):
            from hdi.errors import ConfigError

            raise ConfigError(f"--batch {batch!r} is not a batch mode; allowed: auto, always, never")
        return cls(start=_text(start), end=_text(end), symbols=_symbols(symbols),
                   from_files=tuple(str(f.absolute()) for f in from_files), update=update,
                   restatements=restatements, batch=batch)

    def resumed(self, saved: RunParams) -> RunParams:
        """``saved`` (a run's own parameters) with what was given now where something was given."""
        return RunParams(
            recipe=self.recipe or saved.recipe, start=self.start or saved.start, end=self.end or saved.end,
            symbols=self.symbols or saved.symbols, from_files=self.from_files or saved.from_files,
            update=self.update or saved.update, ranges=self.ranges if self.ranges is not None else saved.ranges,
            restatements=self.restatements or saved.restatements, batch=self.batch)

    def with_recipe(self, path: str | Path) -> RunParams:
        return dataclasses.replace(self, recipe=str(Path(path).absolute()))

    def with_ranges(self, ranges: Sequence[UpdateRange]) -> RunParams:
        return dataclasses.replace(self, ranges=tuple(ranges))

    def to_json(self) -> str:
        out: _JSON = {"start": self.start, "end": self.end,
                      "symbols": list(self.symbols) if self.symbols is not None else None,
                      "from_files": list(self.from_files), "update": self.update, "recipe": self.recipe}
        if self.restatements:
            out["restatements"] = True
        if self.ranges is not None:
            out["ranges"] = [{"dataset": g.dataset, "stype_in": g.stype_in, "symbols": list(g.symbols),
                              "start": iso(g.start), "end": iso(g.end),
                              **({"refetch": g.refetch, "tag": g.tag} if g.refetch else {})} for g in self.ranges]
        return json.dumps(out, sort_keys=True)

    @classmethod
    def from_json(cls, text: str | None, *, run_id: str) -> RunParams:
        """A run's recorded parameters.

        Raises:
            ConfigError: the record is not an ingest run's parameters (one line naming the run).
        """
        try:
            raw = json.loads(text or "{}")
            if not isinstance(raw, dict):
                raise ValueError("not a JSON object")
            if "replay" in raw:  # an `hdi quarantine replay` run: nothing to fetch
                raise ConfigError(f"--resume {run_id}: that run is a quarantine replay; allowed: an ingest run "
                                  "(run `hdi quarantine replay` again to continue a replay)")
            d = cast(dict[str, object], raw)
            ranges = d.get("ranges")
            symbols = d.get("symbols")
            return cls(
                recipe=_opt_str(d.get("recipe")), start=_opt_str(d.get("start")), end=_opt_str(d.get("end")),
                symbols=tuple(str(s) for s in symbols) if isinstance(symbols, list) else None,
                from_files=tuple(str(f) for f in cast(list[object], d.get("from_files") or [])),
                update=bool(d.get("update")), restatements=bool(d.get("restatements")),
                ranges=None if ranges is None else tuple(_range(g) for g in cast(list[dict[str, object]], ranges)))
        except (ValueError, TypeError, KeyError) as e:
            raise ConfigError(f"--resume {run_id}: its recorded parameters are unreadable ({e}); allowed: a run "
                              "recorded by `hdi ingest`") from None


def _opt_str(value: object) -> str | None:
    return None if value is None else str(value)


def _range(g: dict[str, object]) -> UpdateRange:
    return UpdateRange(dataset=str(g["dataset"]), stype_in=str(g["stype_in"]),
                       symbols=tuple(str(s) for s in cast(list[object], g["symbols"])),
                       start=parse_iso(str(g["start"])), end=parse_iso(str(g["end"])),
                       refetch=str(g.get("refetch") or ""), tag=str(g.get("tag") or ""))
