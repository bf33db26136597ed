"""The source contract: what the pipeline asks of a source of raw DBN, and the values it gets back.

The pipeline (:mod:`hdi.pipeline`) holds a :class:`Source` and never asks which kind it holds. A
source plans its own chunks (:meth:`Source.plan`), checks what it can before anything is written
(:meth:`Source.check`), stores the symbology it knows beyond the chunks' own DBN metadata
(:meth:`Source.symbology`), says what Databento reports of each day (:meth:`Source.conditions`:
condition and last_modified_date, asked once per run and range; the ledger keeps them and
``--update`` re-fetches restated days), and answers each planned :class:`Chunk` with an
:class:`Estimate` (dry run) or a :class:`Fetched` DBN file (a real run). Everything past ``fetch``, decoding,
the recipe, validation and the store transaction, is the same for every source.

Three sources implement it: :class:`hdi.source.databento.ApiSource` (Databento's historical API,
through the raw cache), :class:`hdi.source.batch.BatchSource` (Databento batch jobs, ``--batch``)
and :class:`hdi.source.files.FileSource` (DBN files on disk).

**Adding a source** (e.g. Databento batch downloads): write a class with these seven methods in its
own module under ``hdi/source/``, and pick it in :func:`hdi.pipeline.plan.open_source`. Its
``plan`` returns one :class:`Chunk` per unit it delivers (for batch jobs: one per file of a job,
with the job's :class:`~hdi.source.chunks.Request` narrowed to the file), with a ``chunk_id``
that changes when what the chunk holds changes; its ``fetch`` submits, waits for and downloads
what the chunk needs (retrying with a :class:`~hdi._retrying.RetryPolicy`) and returns the opened
:class:`~hdi.source.files.DbnFile`, verified (:mod:`hdi.source.dbnfile`), with what it cost. The
loader, the ledger and the estimator need no change: they read only these values. A source that
reads Databento returns, in each ``Fetched``, the conditions of the chunk's days as it knew them
before the download (its ``conditions`` memo), and plans ``UpdateRange.refetch`` ranges as
chunks with ``Chunk.refetch`` set (downloaded afresh, never from a cache).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from hdi.source.chunks import Request

if TYPE_CHECKING:
    from hdi._filewindow import FileWindow
    from hdi._report import ChunkOutcome
    from hdi.recipe.model import Recipe
    from hdi.source.files import DbnFile
    from hdi.store.base import Store

__all__ = ["Chunk", "DayCondition", "Estimate", "Fetched", "Plan", "Source", "UpdateRange", "chunk_id",
           "recipe_range"]


def recipe_range(recipe: Recipe) -> tuple[dt.datetime, dt.datetime]:
    """The recipe's [start, end) (a source that fetches by range needs one).

    Raises:
        ConfigError: the recipe has no source.start or source.end.
    """
    start, end = recipe.source.start, recipe.source.end
    if start is None or end is None:
        from hdi.errors import ConfigError

        raise ConfigError(f"{recipe.path}: the recipe has no source.start or source.end; allowed: a recipe with "
                          "both, or --from-file F")
    return start, end


def chunk_id(request: Request, rhash: str, content: str = "") -> str:
    """A chunk's ledger id: its request, the recipe's hash and (files) a digest of what it holds."""
    return hashlib.sha256(f"{request.key}|{rhash}|{content}".encode()).hexdigest()[:16]


@dataclass(frozen=True)
class DayCondition:
    """Databento's condition of one UTC date of a dataset (``metadata.get_dataset_condition``):
    ``available``, ``degraded``, ``pending`` or ``missing``, and the date any schema of that day was
    last regenerated (a later one than at the fetch means the day was restated)."""

    day: dt.date
    condition: str
    last_modified: dt.date | None


@dataclass(frozen=True)
class UpdateRange:
    """``--update``: one request's symbols sharing the same range still to fetch. ``refetch`` (a
    reason: restated, degraded, pending) marks days fetched before whose stored rows the new fetch
    replaces exactly; ``tag`` makes such a chunk's id differ from the fetch it replaces."""

    dataset: str
    stype_in: str
    symbols: tuple[str, ...]
    start: dt.datetime
    end: dt.datetime
    refetch: str = ""
    tag: str = ""


@dataclass(frozen=True)
class Chunk:
    """A planned unit of work: one request a source answers with one DBN file."""

    chunk_id: str
    request: Request
    label: str  # how messages and the report name the chunk
    origin: str = "databento"  # what the ledger records as the chunk's source: "databento" or a file's path
    where: str = ""  # what quarantined rows name as their source ("" = the request)
    bounded: bool = True  # False for a file whose metadata has no end: no upper bound on its records
    keep: FileWindow | None = None  # records outside --start/--end/--symbols are left out (files)
    refetch: str = ""  # restated | degraded | pending: the stored rows of its days are replaced exactly

    @property
    def end(self) -> dt.datetime | None:
        """The exclusive upper bound of the chunk's records (None: unbounded)."""
        return self.request.end if self.bounded else None

    @property
    def source_name(self) -> str:
        """What quarantined rows name as their source."""
        return self.where or self.request.describe()


@dataclass(frozen=True)
class Plan:
    """A source's chunks, and the outcomes of what it leaves out entirely (files outside a window)."""

    chunks: tuple[Chunk, ...]
    excluded: tuple[ChunkOutcome, ...] = ()


@dataclass(frozen=True)
class Estimate:
    """What a chunk would return and cost (a dry run)."""

    record_count: int
    billable_bytes: int | None
    cost_usd: float
    rows_left_out: int = 0  # files: records outside --start/--end/--symbols
    symbols: str | None = None  # files: the symbols found, comma-separated
    first_ts: dt.datetime | None = None  # files: first and last record time (index time)
    last_ts: dt.datetime | None = None


@dataclass(frozen=True)
class Fetched:
    """A chunk's DBN file, opened and checked, and what getting it cost.

    ``file`` is None for a chunk without data (e.g. a window in which symbols that resolve
    elsewhere in the range map to nothing: Databento answers 422)."""

    file: DbnFile | None
    cost_usd: float = 0.0
    conditions: tuple[DayCondition, ...] = ()  # the chunk's days as the source knew them before the fetch


class Fetcher(Protocol):
    """What the chunk loader needs of a source: a chunk's DBN file. Every :class:`Source` is one; a
    ``--workers`` process holds just this (the run's own process planned and estimated)."""

    def fetch(self, chunk: Chunk, *, refresh: bool) -> Fetched:
        """The chunk's DBN file, opened and verified, and what getting it cost."""
        ...


class Source(Protocol):
    """A source of raw DBN for one recipe run (see the module docstring)."""

    def check(self, recipe: Recipe, *, update: bool, names: tuple[str, str]) -> None:
        """Refuse what can be refused before anything is written (a range the source cannot
        serve); ``names`` says how the start and end were given (``--start`` / ``source.start``).

        Raises:
            HdiError: a one-line reason.
        """
        ...

    def dataset_range(self, dataset: str) -> tuple[dt.datetime, dt.datetime] | None:
        """(start, end) of the data available for ``dataset``; None when the source has no such
        notion (files: ``--update`` then plans nothing beyond them)."""
        ...

    def conditions(self, dataset: str, start: dt.date, end: dt.date) -> dict[dt.date, DayCondition]:
        """Databento's condition of each date of ``dataset`` in [start, end] (inclusive), asked once
        per run and range and remembered (``fetch`` returns its chunk's days from it); empty for a
        source without such a notion (files).

        Raises:
            HdiError: the source could not say.
        """
        ...

    def plan(self, recipe: Recipe, rhash: str, ranges: Sequence[UpdateRange] | None) -> Plan:
        """The chunks of a run of ``recipe`` (hash ``rhash``); ``ranges`` replace the recipe's
        range and requests (``--update``) where the source fetches by range."""
        ...

    def symbology(self, st: Store, recipe: Recipe, *, write: bool) -> None:
        """Store (``write``) the symbology the source knows beyond the chunks' own DBN metadata,
        and remember which symbols resolve somewhere in the range (see :meth:`fetch`)."""
        ...

    def estimate(self, chunk: Chunk) -> Estimate:
        """What ``chunk`` would return and cost; nothing is downloaded or stored.

        Raises:
            HdiError: the estimate failed (the chunk's dry-run outcome is then ``failed``).
        """
        ...

    def fetch(self, chunk: Chunk, *, refresh: bool) -> Fetched:
        """``chunk``'s DBN file, opened and checked (``refresh``: not from a cache).

        Raises:
            HdiError: the chunk cannot be fetched.
        """
        ...
