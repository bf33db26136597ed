"""Roll schedules for continuous futures, each roll decided only from data published before it.

A schedule is a list of rolls of one (dataset, root, rule, parameters): on ``trading_date`` the
series leaves ``from_contract`` for ``to_contract``. The roll takes effect at the session open of
that trading date (``effective_ts``, from the exchange calendar), and ``decided_by_ts`` is the
ts_recv of the latest stored record the decision used, always before ``effective_ts``: a decision
whose data arrived later waits for the first session that opens after it.

Rules:

- ``calendar`` (``days_before_expiry=N``): the next contract's first trading date is N trading days
  before the current contract's last trade date (N=0: the last trade date itself is already on the
  next contract). Decided by the definitions: the current contract's expiration and the next
  contract's existence.
- ``volume`` / ``open_interest``: roll on the first trading date at whose open the next contract's
  cleared volume (open interest) from the latest completed session already published for both
  contracts exceeds the current contract's. Statistics are published after the session they
  describe (CME: the next morning), so the figures that decide trading date D are those with
  ts_recv before D's open. A contract is also left after its last trade date (decided by its
  definition), whatever the figures say.

``roll_schedule`` computes a schedule from the store; ``save_rolls`` stores it in the ``rolls``
table (replacing the schedule's earlier computation) and ``stored_rolls`` reads the current one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, TypedDict, cast

import polars as pl

from hdi.errors import QueryError, allowed_list, did_you_mean
from hdi.research.calendars import as_datetime

if TYPE_CHECKING:
    from hdi.store.base import Store

RULES = ("calendar", "volume", "open_interest")
STAT_TYPE = {"volume": 6, "open_interest": 9}  # CLEARED_VOLUME, OPEN_INTEREST
FIGURE = {"volume": "cleared volume", "open_interest": "open interest"}
MAX_DAYS_BEFORE_EXPIRY = 60
_TS = pl.Datetime("ns", "UTC")
ROLL_SCHEMA = pl.Schema({
    "dataset": pl.String(), "root": pl.String(), "rule": pl.String(), "parameters": pl.String(),
    "trading_date": pl.Date(), "effective_ts": _TS, "from_contract": pl.String(), "from_instrument_id": pl.Int64(),
    "to_contract": pl.String(), "to_instrument_id": pl.Int64(), "decided_by_ts": _TS, "decided_by": pl.String(),
})


class Contract(TypedDict):
    """One row of a chain (:data:`hdi.research.chains.CHAIN_SCHEMA`) as the roll rules read it: its
    timestamps as ns since the epoch."""

    dataset: str
    root: str
    instrument_id: int
    contract: str
    expiration: int
    last_trade_date: dt.date
    min_price_increment: float | None
    contract_multiplier: float | None
    unit_of_measure: str | None
    unit_of_measure_qty: float | None
    known_since_ts: int
    expiration_known_ts: int
    last_seen_ts: dt.datetime


# (trading date, effective ns, from contract, from id, to contract, to id, decided-by ns, why)
RollRow = tuple[dt.date, int, str, int, str, int, int, str]


def check_rule(rule: str, days_before_expiry: int) -> tuple[str, int]:
    r = str(rule).strip().lower().replace("-", "_")
    if r not in RULES:
        raise QueryError(f"roll rule '{rule}' is not allowed{did_you_mean(r, RULES)}; allowed: {allowed_list(RULES)}")
    try:
        n = int(days_before_expiry)
    except (TypeError, ValueError):
        n = -1
    if not 0 <= n <= MAX_DAYS_BEFORE_EXPIRY or isinstance(days_before_expiry, bool):
        raise QueryError(f"days_before_expiry {days_before_expiry!r} is not allowed; allowed: a whole number of "
                         f"trading days from 0 to {MAX_DAYS_BEFORE_EXPIRY}")
    return r, n


def parameters(rule: str, days_before_expiry: int) -> str:
    # the text of the rolls.parameters column (a bound value, never SQL)
    return "days_before_expiry=" + str(days_before_expiry) if rule == "calendar" else ""


class Sessions:
    """Trading dates and their session opens (UTC ns) of one calendar, indexable by position."""

    def __init__(self, sched: pl.DataFrame) -> None:
        self.dates: list[dt.date] = sched.get_column("trading_date").to_list()
        self.opens: list[int] = sched.get_column("open").dt.epoch("ns").to_list()
        self.index = {d: i for i, d in enumerate(self.dates)}

    def first_open_after(self, ts_ns: int, at_least: int = 0) -> int:
        """Index of the first session from ``at_least`` that opens strictly after ``ts_ns``."""
        import bisect

        return max(at_least, bisect.bisect_right(self.opens, ts_ns))

    def at_or_before(self, d: dt.date) -> int:
        import bisect

        return bisect.bisect_right(self.dates, d) - 1


def _sessions(dataset: str, root: str, chain: pl.DataFrame) -> Sessions:
    from hdi.research.calendars import calendar_for, schedule

    first = as_datetime(chain.get_column("known_since_ts").min(), "contract definition").date() - dt.timedelta(days=7)
    last = as_datetime(chain.get_column("expiration").max(), "expiration").date() + dt.timedelta(days=7)
    return Sessions(schedule(calendar_for(dataset, root), first, last))


def roll_schedule(st: Store, root: str, rule: str = "calendar", days_before_expiry: int = 0,
                  dataset: str = "GLBX.MDP3", *, chain: pl.DataFrame | None = None,
                  as_of: int | None = None) -> pl.DataFrame:
    """Every roll of ``root`` under ``rule`` that the stored data supports (see the module docstring),
    by trading date; columns :data:`ROLL_SCHEMA`. ``st`` is an open store; ``as_of`` (ns since the
    epoch) uses only records received before it, as a run at that instant would have seen them."""
    from hdi.research.chains import chain_from, ts_of

    rule, n = check_rule(rule, days_before_expiry)
    chain = chain if chain is not None else chain_from(st, root, dataset, as_of)
    sess = _sessions(dataset, root, chain)
    # no roll after the day of the latest stored definition
    horizon = as_datetime(chain.get_column("last_seen_ts").max(), "contract definition")
    ns_cols = ("expiration", "known_since_ts", "expiration_known_ts")
    # to_dicts() types its rows dict[str, Any]; their columns are the chain's, the ns_cols as integers
    contracts = cast("list[Contract]", chain.with_columns(pl.col(c).dt.epoch("ns") for c in ns_cols).to_dicts())
    if rule == "calendar":
        rows = _calendar(contracts, sess, n)
    else:
        rows = _by_figures(st, dataset, root, rule, contracts, sess, as_of)
    names = ("trading_date", "effective_ts", "from_contract", "from_instrument_id", "to_contract", "to_instrument_id",
             "decided_by_ts", "decided_by")
    out = pl.DataFrame(rows, schema={k: (pl.Int64 if k.endswith("_ts") else ROLL_SCHEMA[k]) for k in names},
                       orient="row").with_columns(pl.col("effective_ts", "decided_by_ts").cast(_TS))
    out = out.filter(pl.col("trading_date") <= ts_of(horizon).date() + dt.timedelta(days=1))
    return out.with_columns(dataset=pl.lit(dataset), root=pl.lit(root), rule=pl.lit(rule),
                            parameters=pl.lit(parameters(rule, n))).select(list(ROLL_SCHEMA)).sort("trading_date")


def _row(sess: Sessions, i: int, cur: Contract, nxt: Contract, decided_ns: int, why: str) -> RollRow:
    return (sess.dates[i], sess.opens[i], cur["contract"], cur["instrument_id"], nxt["contract"],
            nxt["instrument_id"], decided_ns, why)


def _calendar(contracts: list[Contract], sess: Sessions, n: int) -> list[RollRow]:
    rows: list[RollRow] = []
    prev = -1
    for cur, nxt in zip(contracts, contracts[1:], strict=False):
        ltd = sess.at_or_before(cur["last_trade_date"])
        if ltd < 0:
            continue
        decided = max(cur["expiration_known_ts"], nxt["known_since_ts"])
        i = sess.first_open_after(decided, max(ltd - n, prev + 1))
        if i >= len(sess.dates):
            continue
        why = (f"{n} trading days before the last trade date {cur['last_trade_date']} of {cur['contract']} "
               f"(expiration from its definition)")
        rows.append(_row(sess, i, cur, nxt, decided, why))
        prev = i
    return rows


def _figures(st: Store, dataset: str, rule: str, ids: Sequence[int]) -> pl.DataFrame:
    """Every publication of the rule's statistic for the chain's contracts, by ts_recv."""
    if not st.has_table("statistics") or not ids:
        return pl.DataFrame()
    ph = ", ".join(f"${i + 3}" for i in range(len(ids)))
    out: pl.DataFrame = st.query(
        'SELECT "instrument_id", "effective_date_utc", "quantity", "ts_recv_ns", "update_action" FROM "statistics" '
        f'WHERE "dataset" = $1 AND "stat_type" = $2 AND "instrument_id" IN ({ph}) '
        'ORDER BY "ts_recv_ns", "sequence", "rec_ordinal"', [dataset, STAT_TYPE[rule], *ids])
    return out


def _by_figures(st: Store, dataset: str, root: str, rule: str, contracts: list[Contract], sess: Sessions,
                as_of: int | None) -> list[RollRow]:
    figs = _figures(st, dataset, rule, [c["instrument_id"] for c in contracts])
    if as_of is not None and figs.height:
        figs = figs.filter(pl.col("ts_recv_ns") < as_of)
    if figs.height == 0:
        raise QueryError(f"no {FIGURE[rule]} statistics are stored for {root} futures in {dataset}; the "
                         f"'{rule}' roll needs them: load them with a statistics recipe requesting parent symbol "
                         f"{root}.FUT (for CL: hdi ingest --recipe recipes/cl_contracts_statistics.yaml)")
    recs = list(zip(*(figs.get_column(c).to_list() for c in ("instrument_id", "effective_date_utc", "quantity",
                                                              "ts_recv_ns", "update_action")), strict=True))
    known: dict[int, dict[dt.date, tuple[int, int]]] = {}  # id -> session -> (value, ts_recv_ns)
    ltd_idx = [sess.at_or_before(c["last_trade_date"]) for c in contracts]
    start = sess.first_open_after(int(recs[0][3]))
    end = min(sess.first_open_after(int(recs[-1][3])) + 1, len(sess.dates))
    # the first contract: the nearest one not past its last trade date on the first decidable day
    cur = next((k for k, c in enumerate(contracts) if ltd_idx[k] >= start), None)
    rows: list[RollRow] = []
    p = 0
    for i in range(start, end):
        if cur is None or cur + 1 >= len(contracts):
            break
        opens = sess.opens[i]
        while p < len(recs) and recs[p][3] < opens:
            iid, sdate, value, ts, action = recs[p]
            book = known.setdefault(iid, {})
            if action == 2:
                book.pop(sdate, None)
            elif value is not None:
                book[sdate] = (int(value), int(ts))
            p += 1
        c, nx = contracts[cur], contracts[cur + 1]
        if i > ltd_idx[cur]:  # expired: leave it, decided by its definition
            decided = max(c["expiration_known_ts"], nx["known_since_ts"])
            if decided < opens:
                why = f"{c['contract']} is past its last trade date {c['last_trade_date']} (its definition)"
                rows.append(_row(sess, i, c, nx, decided, why))
                cur += 1
            continue
        if nx["known_since_ts"] >= opens:
            continue
        a, b = known.get(c["instrument_id"], {}), known.get(nx["instrument_id"], {})
        common = a.keys() & b.keys() if a and b else set()
        if not common:
            continue
        s = max(common)
        (va, ta), (vb, tb) = a[s], b[s]
        if vb > va:
            why = (f"{FIGURE[rule]} of session {s}: {nx['contract']} {vb:,} > {c['contract']} {va:,} "
                   f"(statistics)")
            rows.append(_row(sess, i, c, nx, max(ta, tb), why))
            cur += 1
    return rows


def save_rolls(st: Store, rolls: pl.DataFrame) -> None:
    """Store a computed schedule; rows of an earlier computation of the same schedule stop being current."""
    if rolls.height == 0:
        return
    now = dt.datetime.now(dt.UTC)
    with st.transaction() as txn:
        txn.write("rolls", rolls.with_columns(computed_at=pl.lit(now, _TS),
                                              decided_by_ns=pl.col("decided_by_ts").dt.epoch("ns")),
                  on_conflict="update")


def stored_rolls(st: Store, root: str, rule: str, days_before_expiry: int = 0,
                 dataset: str = "GLBX.MDP3") -> pl.DataFrame:
    """The current stored schedule (its latest computation) of (dataset, root, rule, parameters)."""
    rule, n = check_rule(rule, days_before_expiry)
    if not st.has_table("rolls"):
        return pl.DataFrame(schema={**ROLL_SCHEMA, "computed_at": _TS})  # as read back
    from hdi._tables import ROLLS
    from hdi.store.frames import normalise

    got = normalise(st.query('SELECT * FROM "rolls" WHERE "dataset" = $1 AND "root" = $2 AND "rule" = $3 '
                             'AND "parameters" = $4 ORDER BY "trading_date"',
                             [dataset, root, rule, parameters(rule, n)]), ROLLS, ROLLS.names)
    got = got.drop("decided_by_ns")
    if got.height == 0:
        return got
    return got.filter(pl.col("computed_at") == pl.col("computed_at").max())


def rolls(root: str, rule: str = "calendar", days_before_expiry: int = 0, dataset: str = "GLBX.MDP3",
          store: str | None = None, *, save: bool = True, as_of: object = None) -> pl.DataFrame:
    """The roll schedule of ``root`` under ``rule`` computed from the store and (``save=True``) stored
    in its ``rolls`` table; what ``hdi rolls ROOT --rule RULE`` prints. ``as_of`` (a UTC timestamp)
    computes it from the records received before that instant only (and does not store it)."""
    from hdi.research.chains import as_of_ns
    from hdi.store import open_store

    cut = as_of_ns(as_of)
    save = save and cut is None
    st = open_store(store)
    with st.session(write=save):
        out = roll_schedule(st, root, rule, days_before_expiry, dataset, as_of=cut)
        if save:
            save_rolls(st, out)
    return out
