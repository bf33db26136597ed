"""Split a frame into rows ready for the store and rows for quarantine, with reasons.

One pass computes the conformed columns (:mod:`hdi.validate.conform`) and a single boolean mask over
all row rules (:mod:`hdi.validate.rules`); duplicate keys are looked for only where the frame's order
does not already rule them out; reasons are then built for the bad rows only. Finally all the good
rows are checked against the table's Patito model, as an assertion. Duplicates of the table's natural
key (``Table.key``) within the batch:

- all rows sharing the key are identical (every table column equal): the first is kept, the others
  get ``duplicate_row``;
- they differ: all of them get ``duplicate_key``, since nothing says which one is right.

Instrument definitions are the exception to the first case: a feed repeats a definition
byte for byte (a live session resends it), and a repeat is the same record, not a bad one. Its
copies are counted in ``rows_repeated`` and left out of both ``good`` and ``bad``.

Duplicates are judged over all input rows, before other rules: a row that breaks a rule still makes
its twins suspect.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

import polars as pl

from hdi._tables import DATA_TABLES, Table
from hdi.errors import ValidationError
from hdi.validate._patito import pt
from hdi.validate.conform import fit_reason, plan
from hdi.validate.models import model_for
from hdi.validate.rules import DUPLICATE_KEY, DUPLICATE_ROW, fit_text, row_rules

log = logging.getLogger(__name__)

REASONS_COLUMN = "_reasons"
_OK, _HASH, _INDEX = "__hdi_ok", "__hdi_key_hash", "__hdi_index"
_DUP_ROW, _DUP_KEY = "__hdi_duplicate_row", "__hdi_duplicate_key"


@dataclass
class SplitResult:
    """What :func:`split` returns.

    Attributes:
        good: rows ready for the store: exactly the table's columns and dtypes.
        bad: rows that failed: the input columns, values unchanged, plus ``_reasons`` (String,
            ``;``-joined reasons in rule order).
        rows_in: input rows; ``rows_good + rows_bad + rows_repeated == rows_in``.
        rows_good: rows in ``good``.
        rows_bad: rows in ``bad``.
        reasons: bad rows per reason (a row can count under several reasons), largest first.
        rows_repeated: identical copies of a definition row already in ``good`` or ``bad`` (instruments only).
    """

    good: pl.DataFrame
    bad: pl.DataFrame
    rows_in: int
    rows_good: int
    rows_bad: int
    reasons: dict[str, int] = field(default_factory=dict)
    rows_repeated: int = 0


def _strictly_increasing(work: pl.DataFrame, order: list[str]) -> bool:
    """True when every row's key is greater than the previous row's, comparing ``order`` in turn.

    Then no two keys are equal, and nothing needs hashing. Nulls make it False.
    """
    if work.height < 2:
        return True
    greater, equal = pl.lit(False), pl.lit(True)
    for name in order:
        c, prev = pl.col(name), pl.col(name).shift(1)
        greater = greater | (equal & (c > prev))
        equal = equal & (c == prev)
    return bool(work.select(greater.slice(1).fill_null(False).all()).item())


def _key_hashes(work: pl.DataFrame, table: Table) -> pl.DataFrame | None:
    """Row index and key hash of the rows that may share their key with another row; None if none can.

    Every table key includes the time column. When that column is sorted (DBN streams are in time
    order) only rows in a run of equal times can share a key: tick data has few such rows, and only
    they are hashed. Bars come in runs of equal times (one bar per instrument); when each run is
    sorted by instrument, or the whole frame by instrument then time (as resampling leaves it), a
    comparison with the previous row proves the keys distinct. Otherwise every row is hashed.

    A text key column with one value throughout (dataset, granularity) cannot tell rows apart and is
    left out (hashing strings is most of the cost); the exact comparison afterwards uses the whole key.
    """
    key, time = list(table.key), table.time_column
    varying = [c for c in key if work.schema[c] != pl.String or work[c].null_count() > 0
               or work.height == 0 or not (work[c] == work[c][0]).all()] or key
    rest = [c for c in varying if c not in (time, "instrument_id")]
    rows = work.select(varying).with_row_index(_INDEX)
    times = work[time]
    if times.null_count() == 0 and times.is_sorted():
        same = (times == times.shift(1)).fill_null(False)
        candidates = same | same.shift(-1, fill_value=False)
        if candidates.sum() < work.height // 2:
            rows = rows.filter(candidates)
        elif _strictly_increasing(work, [time, "instrument_id", *rest]):
            return None
    elif _strictly_increasing(work, ["instrument_id", time, *rest]):
        return None
    return rows.select(_INDEX, pl.struct(varying).hash().alias(_HASH))


def _duplicates(work: pl.DataFrame, table: Table) -> tuple[pl.Series, pl.Series] | None:
    """(duplicate_row, duplicate_key) flags for every row, or None when no key is duplicated.

    Sorting the key hashes (of the rows :func:`_key_hashes` could not rule out) finds the hashes
    that occur twice, faster than hashing the keys into a table; only rows with such a hash are
    then compared exactly, so a hash collision costs time, never a wrong answer.
    """
    key = list(table.key)
    hashed = _key_hashes(work, table)
    if hashed is None:
        return None
    hashes = hashed[_HASH].sort()
    twice = hashes.filter(hashes == hashes.shift(1))
    if twice.len() == 0:
        return None
    index = hashed.filter(pl.col(_HASH).is_in(twice.unique().implode()))[_INDEX]
    whole = pl.struct(table.names)
    flags = work[index].with_columns(index).select(
        pl.col(_INDEX),
        duplicated=pl.struct(key).is_duplicated(),
        identical=pl.len().over(key) == pl.len().over(whole),  # every row with this key is this row
        first=whole.is_first_distinct(),
    ).filter(pl.col("duplicated"))
    if flags.height == 0:
        return None
    dup_row = pl.repeat(False, work.height, eager=True).alias(_DUP_ROW)
    dup_key = pl.repeat(False, work.height, eager=True).alias(_DUP_KEY)
    dup_row.scatter(flags[_INDEX], flags["identical"] & ~flags["first"])
    dup_key.scatter(flags[_INDEX], ~flags["identical"])
    return dup_row, dup_key


def _reasons(bad_work: pl.DataFrame, failed: dict[str, pl.Expr],
             texts: dict[str, pl.Expr]) -> tuple[pl.Series, dict[str, int]]:
    """The ``_reasons`` column of the bad rows, and bad rows per reason (largest first)."""
    counts = bad_work.select(f.sum().alias(r) for r, f in failed.items()).row(0, named=True)
    broken = {r: f for r, f in failed.items() if counts[r]}  # only rules some bad row broke
    text = bad_work.select(
        pl.concat_str([pl.when(f).then(texts.get(r, pl.lit(r))) for r, f in broken.items()],
                      separator=";", ignore_nulls=True).alias(REASONS_COLUMN)
    ).to_series()
    reasons = sorted(((r, int(n)) for r, n in counts.items() if n), key=lambda kv: (-kv[1], kv[0]))
    return text, dict(reasons)


def _assert_model(model: type[pt.Model], table: str, good: pl.DataFrame) -> None:
    try:
        model.validate(good)  # every good row: a bug in split must not reach the store on row 65,537
    except pt.DataFrameValidationError as e:
        detail = " | ".join(line.strip() for line in str(e).splitlines())
        raise ValidationError(
            f"{table}: bug in hdi.validate.split: rows it passed fail {model.__name__}: {detail}"
        ) from e


def split(
    frame: pl.DataFrame,
    table: str,
    *,
    start: dt.datetime | dt.date | None = None,
    end: dt.datetime | dt.date | None = None,
    allow_non_positive_prices: bool | pl.Expr = False,
) -> SplitResult:
    """Split a frame bound for ``table`` into good rows (conformed) and bad rows (with reasons).

    Args:
        frame: the recipe's output: the table's columns (extra columns are dropped from ``good``
            and kept in ``bad``), dtypes castable to the table's (see :mod:`hdi.validate.conform`).
        table: a data table name (``ohlcv``, ``trades``, ``tbbo``, ``mbp1``, ``statistics``,
            ``instruments``).
        start: inclusive lower bound of the table's time column (a naive datetime is UTC, a date
            its midnight UTC); None = no bound.
        end: exclusive upper bound of the table's time column; None = no bound.
        allow_non_positive_prices: accept zero and negative prices (spreads, negative futures):
            True for every row, or an expression over the table's columns (e.g. on
            ``instrument_id``, from :class:`hdi.validate.price_rules.PriceRule`) True for the rows
            that may have them.

    Returns:
        A :class:`SplitResult`; ``good`` passes the table's Patito model.

    Raises:
        ValidationError: unknown table; a table column missing or of a dtype that cannot be cast;
            ``end`` not after ``start``; or (a bug here) good rows that fail the model.
    """
    model = model_for(table)  # raises for an unknown table
    t = DATA_TABLES[table]
    casts = plan(frame.schema, t)
    unfit_exprs = {c: (f"__hdi_unfit_{i}", cast.unfit) for i, (c, cast) in enumerate(casts.items())
                   if cast.unfit is not None}
    unfit = {c: flag for c, (flag, _) in unfit_exprs.items()}
    rules = row_rules(table, start=start, end=end, allow_non_positive_prices=allow_non_positive_prices,
                      unfit=unfit)
    work = (
        frame.lazy()
        .select(*(cast.expr for cast in casts.values()),
                *(expr.alias(flag) for flag, expr in unfit_exprs.values()))
        .with_columns(pl.all_horizontal(rules.values()).alias(_OK))
        .collect()
    )
    ok = work[_OK]
    duplicates = _duplicates(work, t)
    repeated = 0
    if duplicates is not None and t.name == "instruments" and duplicates[0].any():
        keep = ~duplicates[0]  # a definition repeated byte for byte is one record (see the module doc)
        repeated = frame.height - int(keep.sum())
        frame, work, ok = frame.filter(keep), work.filter(keep), ok.filter(keep)
        duplicates = (duplicates[0].filter(keep), duplicates[1].filter(keep))
        log.info("%s: %d identical repeats of definitions counted once", table, repeated)
    if duplicates is not None:
        work = work.with_columns(*duplicates)
        ok = ok & ~duplicates[0] & ~duplicates[1]
    rows_in, rows_good = frame.height, int(ok.sum())
    if duplicates is None and rows_good < rows_in:  # the bad rows' reasons read both flags
        work = work.with_columns(pl.lit(False).alias(_DUP_ROW), pl.lit(False).alias(_DUP_KEY))
    if rows_good == rows_in:
        good = work.select(t.names)
        bad = frame.clear().with_columns(pl.lit(None, dtype=pl.String).alias(REASONS_COLUMN))
        reasons: dict[str, int] = {}
    else:
        good = work.select(t.names).filter(ok)
        bad_rows = frame.filter(~ok)
        bad_work = work.filter(~ok).with_columns(
            *(bad_rows[c].cast(pl.String).alias(f"{flag}_value") for c, flag in unfit.items())
        )
        failed = {reason: ~expr for reason, expr in rules.items()}
        failed |= {DUPLICATE_ROW: pl.col(_DUP_ROW), DUPLICATE_KEY: pl.col(_DUP_KEY)}
        texts = {fit_reason(c, casts[c].target): fit_text(c, casts[c].target, f"{flag}_value")
                 for c, flag in unfit.items()}
        text, reasons = _reasons(bad_work, failed, texts)
        bad = bad_rows.with_columns(text)
    _assert_model(model, table, good)
    log.debug("%s: %d rows in, %d good, %d bad %s", table, rows_in, rows_good, rows_in - rows_good, reasons)
    return SplitResult(good=good, bad=bad, rows_in=rows_in + repeated, rows_good=rows_good,
                       rows_bad=rows_in - rows_good, reasons=reasons, rows_repeated=repeated)
