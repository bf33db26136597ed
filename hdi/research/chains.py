"""Contract chains: the outright futures of a root, from the stored instrument definitions.

``contract_chain("CL")`` lists every CL future the store has a definition of (``instrument_class``
``F``; spreads and options are left out), sorted by expiration, with what the roll rules and the
back-adjustment need and when each fact became known:

``dataset, root, instrument_id, contract`` (the raw symbol), ``expiration`` (UTC), ``last_trade_date``
(the trading date of the session the expiration falls in, from the exchange calendar; DBN definitions
carry no separate last-trade date), ``min_price_increment`` (tick size), ``contract_multiplier``
(DBN's, else ``unit_of_measure_qty``), ``unit_of_measure``, ``unit_of_measure_qty``, ``known_since_ts``
(ts_recv of the contract's first stored definition) and ``expiration_known_ts`` (ts_recv of the first
definition carrying the expiration used) and ``last_seen_ts`` (ts_recv of its latest stored definition).

A contract redefined with another expiration keeps its latest one (and the time it was first
published); everything is read with one aggregate query, so a chain of a decade is cheap.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import polars as pl

from hdi.errors import QueryError

if TYPE_CHECKING:
    from hdi.store.base import Store

CHAIN_SCHEMA = pl.Schema({
    "dataset": pl.String(), "root": pl.String(), "instrument_id": pl.Int64(), "contract": pl.String(),
    "expiration": pl.Datetime("ns", "UTC"), "last_trade_date": pl.Date(), "min_price_increment": pl.Float64(),
    "contract_multiplier": pl.Float64(), "unit_of_measure": pl.String(), "unit_of_measure_qty": pl.Float64(),
    "known_since_ts": pl.Datetime("ns", "UTC"), "expiration_known_ts": pl.Datetime("ns", "UTC"),
    "last_seen_ts": pl.Datetime("ns", "UTC"),
})

_SQL = (
    'SELECT "dataset", "instrument_id", "raw_symbol", "expiration", '
    'CAST("min_price_increment" AS DOUBLE PRECISION) AS "min_price_increment", '
    'CAST("contract_multiplier" AS DOUBLE PRECISION) AS "contract_multiplier", "unit_of_measure", '
    'CAST("unit_of_measure_qty" AS DOUBLE PRECISION) AS "unit_of_measure_qty", '
    'MIN("ts_recv_ns") AS "first_ns", MAX("ts_recv_ns") AS "last_ns" FROM "instruments" '
    'WHERE "dataset" = $1 AND "asset" = $2 AND "instrument_class" = \'F\' AND "expiration" IS NOT NULL '
    'AND "ts_recv_ns" < $3 GROUP BY 1, 2, 3, 4, 5, 6, 7, 8'
)
_NEVER = 2**63 - 1


def ts_of(value: object) -> dt.datetime:
    """A Polars datetime scalar (``.min()``, ``.max()``, ``[0]``) as the datetime it is."""
    if not isinstance(value, dt.datetime):
        raise QueryError(f"expected a timestamp, got {value!r}")
    return value


def _ns_ts(col: str) -> pl.Expr:
    return pl.col(col).cast(pl.Int64).cast(pl.Datetime("ns")).dt.replace_time_zone("UTC")


def contract_chain(root: str, dataset: str = "GLBX.MDP3", store: str | None = None, *,
                   as_of: object = None) -> pl.DataFrame:
    """The futures chain of ``root`` in ``dataset`` (see the module docstring), by expiration; with
    ``as_of`` (a UTC timestamp or date), from the definitions received before it only.

    Raises:
        QueryError: the store holds no future of that root (with the recipe that loads definitions).
    """
    from hdi.store import open_store

    st = open_store(store)
    with st.session():
        return chain_from(st, root, dataset, as_of_ns(as_of))


def as_of_ns(as_of: object) -> int | None:
    """``as_of`` (None, a date, a datetime or an ISO string, UTC) as ns since the epoch."""
    if as_of is None:
        return None
    from hdi._timeutil import parse_time

    ts = parse_time(as_of, "as_of", error=QueryError)
    return int(pl.Series([ts], dtype=pl.Datetime("ns", "UTC")).dt.epoch("ns")[0])


_PROBE = 'SELECT COUNT(*) AS "n", MAX("ts_recv_ns") AS "m" FROM "instruments" WHERE "dataset" = $1 AND "asset" = $2'
_CACHE: dict[tuple[str, str, str, int | None], tuple[tuple[Any, ...], pl.DataFrame]] = {}


def chain_from(st: Store, root: str, dataset: str, as_of: int | None = None) -> pl.DataFrame:
    """:func:`contract_chain` on an open store (``as_of`` in ns since the epoch).

    Kept per process and store while the root's definitions are unchanged (their count and latest
    ts_recv, a probe about a third of the aggregate's cost on TimescaleDB)."""
    root = str(root).strip()
    if not st.has_table("instruments"):
        return _chain(st, root, dataset, as_of, pl.DataFrame())
    key = (st.url, dataset, root, as_of)
    probe = st.query(_PROBE, [dataset, root]).row(0)
    hit = _CACHE.get(key)
    if hit is not None and hit[0] == probe:
        return hit[1]
    out = _chain(st, root, dataset, as_of, st.query(_SQL, [dataset, root, _NEVER if as_of is None else as_of]))
    if len(_CACHE) >= 32:
        _CACHE.pop(next(iter(_CACHE)))
    _CACHE[key] = (probe, out)
    return out


def _chain(st: Store, root: str, dataset: str, as_of: int | None, rows: pl.DataFrame) -> pl.DataFrame:
    from hdi.research.calendars import as_datetime, calendar_for, schedule

    if rows.height == 0:
        raise QueryError(f"no {root} futures definitions are stored for dataset {dataset}; load the chain "
                         f"with a definitions recipe requesting parent symbol {root}.FUT (for CL: hdi ingest "
                         f"--recipe recipes/cl_contracts_definitions.yaml)")
    rows = rows.with_columns(
        pl.col("expiration").cast(pl.Datetime("ns", "UTC")) if rows.schema["expiration"] != pl.Datetime("ns", "UTC")
        else pl.col("expiration"),
        _ns_ts("first_ns").alias("first_ts"), _ns_ts("last_ns").alias("last_ts"),
    )
    # one row per contract: its latest expiration, first published when; facts of that version
    per = (rows.sort("instrument_id", "last_ts")
           .group_by("dataset", "instrument_id", maintain_order=True)
           .agg(pl.all().last(), pl.col("first_ts").min().alias("known_since_ts"),
                pl.col("last_ts").max().alias("last_seen_ts")))
    exp_known = (rows.join(per.select("instrument_id", "expiration"), on=["instrument_id", "expiration"])
                 .group_by("instrument_id").agg(pl.col("first_ts").min().alias("expiration_known_ts")))
    per = per.join(exp_known, on="instrument_id", how="left")
    expirations = per.get_column("expiration")
    first = as_datetime(expirations.min(), "expiration").date() - dt.timedelta(days=10)
    last = as_datetime(expirations.max(), "expiration").date() + dt.timedelta(days=10)
    sched = schedule(calendar_for(dataset, root), first, last)
    return (per.with_columns(
        pl.lit(root).alias("root"),
        pl.col("raw_symbol").alias("contract"),
        last_trade_date_expr(pl.col("expiration"), sched).alias("last_trade_date"),
        pl.coalesce(pl.col("contract_multiplier"), pl.col("unit_of_measure_qty")).alias("contract_multiplier"),
    ).select(list(CHAIN_SCHEMA)).cast(CHAIN_SCHEMA).sort("expiration", "instrument_id"))


def last_trade_date_expr(ts: pl.Expr, sched: pl.DataFrame) -> pl.Expr:
    """The trading date of the last session opened at or before ``ts`` (the session an expiration
    falls in, or the one before it when it falls in a break)."""
    if sched.height == 0:
        return pl.lit(None, pl.Date)
    idx = pl.lit(sched["open"]).search_sorted(ts, side="right").cast(pl.Int64) - 1
    return pl.when(idx >= 0).then(pl.lit(sched["trading_date"]).gather(idx.clip(0, sched.height - 1)))
