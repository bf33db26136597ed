"""The synthetic market behind the test gateway: datasets, products, contracts and trading calendars.

Everything here is a pure function of its arguments (no clock, no randomness), so two gateway
processes started at different times agree on every instrument id, expiry and roll date.

- GLBX.MDP3 futures CL, NG, HO, RB (monthly) and ES (quarterly). A contract's instrument id is
  ``product.code * 100_000 + year * 12 + month - 1``; its raw symbol is root + month code + last
  digit of the year (``CLZ4``). Contracts are listed ``listed_months`` ahead and expire on the
  exchange's rule (simplified: weekends are the only non-business days).
- The continuous front contract (``X.c.0``) rolls ``ROLL_BUSINESS_DAYS`` business days before the
  expiry date; ``X.c.1`` is the contract after it.
- Equities SPY, QQQ, NVDA on EQUS.MINI and XNAS.ITCH with fixed instrument ids.
- Trading minutes follow the exchange calendars of hdi.research.calendars (pandas_market_calendars):
  CME Globex energy hours for CL/HO/RB/NG and CME equity hours for ES (17:00-16:00 Chicago time, the
  daily break, holidays and early closes), the NYSE regular session for equities. A *session date*
  (symbology, definitions) is a UTC date of the simplified week: Sunday-Friday for futures,
  Monday-Friday for equities.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from hdi._schemas import SCHEMAS

DAY_NS = 86_400 * 10**9
MINUTE_NS = 60 * 10**9
PRICE_SCALE = 10**9
MONTH_CODES = "FGHJKMNQUVXZ"
ROLL_BUSINESS_DAYS = 2

OHLCV_SCHEMAS = tuple(name for name, s in SCHEMAS.items() if s.bar_seconds and name != "ohlcv-eod")
FUTURES_SCHEMAS = (*OHLCV_SCHEMAS, "trades", "tbbo", "mbp-1", "statistics", "definition",
                   "mbo", "mbp-10", "bbo-1s", "bbo-1m", "status", "ohlcv-eod")  # issue 13
EQUITY_SCHEMAS = (*OHLCV_SCHEMAS, "trades", "tbbo", "mbp-1", "definition")
# issue 13: Nasdaq's own feed has the full book, status and auction imbalance; EQUS.MINI (consolidated)
# bbo and, in this synthetic market, the consolidated cbbo with each side's venue
XNAS_SCHEMAS = (*EQUITY_SCHEMAS, "mbo", "mbp-10", "bbo-1s", "bbo-1m", "status", "imbalance")
EQUS_SCHEMAS = (*EQUITY_SCHEMAS, "bbo-1s", "bbo-1m", "cbbo-1s", "cbbo-1m")


@dataclass(frozen=True)
class Dataset:
    code: str
    publisher_id: int
    start: date
    schemas: tuple[str, ...]
    kind: str  # "futures" | "equities"


DATASETS: dict[str, Dataset] = {
    "GLBX.MDP3": Dataset("GLBX.MDP3", 1, date(2010, 6, 6), FUTURES_SCHEMAS, "futures"),
    "XNAS.ITCH": Dataset("XNAS.ITCH", 2, date(2018, 5, 1), XNAS_SCHEMAS, "equities"),
    "EQUS.MINI": Dataset("EQUS.MINI", 95, date(2023, 3, 28), EQUS_SCHEMAS, "equities"),
}


@dataclass(frozen=True)
class Product:
    """A futures root with its contract cycle, price level and activity."""

    root: str
    code: int
    base: float  # price level the synthetic path reverts to
    tick: int  # fixed-point (1e-9) tick size
    months: tuple[int, ...]
    expiry_rule: str  # cl | ng | eom | third_friday
    expiry_utc: tuple[int, int]  # (hour, minute) of the last trade on expiry day
    vol: float  # daily volatility of the level
    carry: float  # price premium per month to expiry (contango > 0)
    trades_per_day: int  # front contract, whole session
    avg_size: float
    exchange: str
    unit_of_measure: str
    unit_qty: int  # unit_of_measure_qty, fixed-point
    cfi: str
    listed_months: int


@dataclass(frozen=True)
class Equity:
    symbol: str
    instrument_id: int
    base: float
    vol: float
    trades_per_day: int
    avg_size: float


TICK_01, TICK_001, TICK_0001 = 10_000_000, 1_000_000, 100_000
ALL_MONTHS = tuple(range(1, 13))
PRODUCTS: dict[str, Product] = {
    p.root: p
    for p in (
        Product("CL", 1, 70.0, TICK_01, ALL_MONTHS, "cl", (19, 30), 0.020, 0.004, 40_000, 2.2,
                "XNYM", "BBL", 1_000 * PRICE_SCALE, "FCAPSO", 18),
        Product("NG", 2, 2.5, TICK_001, ALL_MONTHS, "ng", (19, 30), 0.030, 0.010, 20_000, 2.0,
                "XNYM", "MMBTU", 10_000 * PRICE_SCALE, "FCAPSO", 18),
        Product("HO", 3, 2.5, TICK_0001, ALL_MONTHS, "eom", (19, 30), 0.018, 0.003, 8_000, 1.8,
                "XNYM", "GAL", 42_000 * PRICE_SCALE, "FCAPSO", 18),
        Product("RB", 4, 2.2, TICK_0001, ALL_MONTHS, "eom", (19, 30), 0.020, 0.003, 8_000, 1.8,
                "XNYM", "GAL", 42_000 * PRICE_SCALE, "FCAPSO", 18),
        Product("ES", 5, 5000.0, 250_000_000, (3, 6, 9, 12), "third_friday", (13, 30), 0.010, 0.002,
                60_000, 3.0, "XCME", "IPNT", 50 * PRICE_SCALE, "FFIXSX", 15),
    )
}
EQUITIES: dict[str, Equity] = {
    e.symbol: e
    for e in (
        Equity("SPY", 15144, 500.0, 0.010, 80_000, 120.0),
        Equity("QQQ", 13340, 430.0, 0.012, 50_000, 100.0),
        Equity("NVDA", 6155, 120.0, 0.025, 70_000, 90.0),
    )
}
EQUITY_BY_ID = {e.instrument_id: e for e in EQUITIES.values()}
EQUITY_TICK = TICK_01


def ns(d: date) -> int:
    """UTC midnight of a date, in nanoseconds since the epoch."""
    return (d.toordinal() - 719_163) * DAY_NS


def ns_to_date(t: int) -> date:
    return date.fromordinal(t // DAY_NS + 719_163)


def to_datetime(t: int) -> datetime:
    return datetime.fromtimestamp(t // 10**9, tz=UTC) + timedelta(microseconds=(t % 10**9) // 1000)


def is_business_day(d: date) -> bool:
    return d.weekday() < 5


def add_business_days(d: date, n: int) -> date:
    """Move ``n`` business days (negative = back) from ``d``."""
    step = 1 if n >= 0 else -1
    while n:
        d += timedelta(days=step)
        if is_business_day(d):
            n -= step
    return d


def _prev_month(year: int, month: int) -> tuple[int, int]:
    return (year - 1, 12) if month == 1 else (year, month - 1)


def _expiry_date(p: Product, year: int, month: int) -> date:
    if p.expiry_rule == "third_friday":
        first = date(year, month, 1)
        return first + timedelta(days=(4 - first.weekday()) % 7 + 14)
    py, pm = _prev_month(year, month)
    if p.expiry_rule == "cl":  # 3 business days before the 25th of the prior month (4 if a weekend)
        d25 = date(py, pm, 25)
        return add_business_days(d25, -3 if is_business_day(d25) else -4)
    if p.expiry_rule == "ng":  # 3 business days before the first day of the contract month
        return add_business_days(date(year, month, 1), -3)
    last = date(year, month, 1) - timedelta(days=1)  # eom: last business day of the prior month
    return last if is_business_day(last) else add_business_days(last, -1)


@dataclass(frozen=True)
class Contract:
    product: Product
    year: int
    month: int

    @property
    def instrument_id(self) -> int:
        return self.product.code * 100_000 + self.year * 12 + self.month - 1

    @property
    def raw_symbol(self) -> str:
        return f"{self.product.root}{MONTH_CODES[self.month - 1]}{self.year % 10}"

    @functools.cached_property
    def expiry(self) -> date:
        return _expiry_date(self.product, self.year, self.month)

    @property
    def expiration_ns(self) -> int:
        h, m = self.product.expiry_utc
        return ns(self.expiry) + (h * 60 + m) * MINUTE_NS

    @functools.cached_property
    def activation(self) -> date:
        y, m = self.expiry.year, self.expiry.month - self.product.listed_months
        y, m = y + (m - 1) // 12, (m - 1) % 12 + 1
        first = date(y, m, 1)
        return first if is_business_day(first) else add_business_days(first, 1)

    @functools.cached_property
    def roll(self) -> date:
        """First date on which this contract is no longer the front (``c.0``) contract."""
        return add_business_days(self.expiry, -ROLL_BUSINESS_DAYS)

    def live_on(self, d: date) -> bool:
        return self.activation <= d <= self.expiry


@functools.lru_cache(maxsize=8192)
def contract(root: str, year: int, month: int) -> Contract:
    """The (cached) contract of a product month."""
    return Contract(PRODUCTS[root], year, month)


def contract_by_id(instrument_id: int) -> Contract | None:
    code, rest = divmod(instrument_id, 100_000)
    product = next((p for p in PRODUCTS.values() if p.code == code), None)
    if product is None:
        return None
    year, m0 = divmod(rest, 12)
    if not 2000 <= year <= 2100 or m0 + 1 not in product.months:
        return None
    return contract(product.root, year, m0 + 1)


@functools.lru_cache(maxsize=65_536)
def listed_contracts(root: str, d: date) -> tuple[Contract, ...]:
    """Contracts of ``root`` live on ``d``, by expiry (the old front stays listed until it expires)."""
    p = PRODUCTS[root]
    out = []
    y, m = d.year, d.month
    for _ in range(p.listed_months + 14):
        if m in p.months:
            c = contract(root, y, m)
            if c.live_on(d):
                out.append(c)
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return tuple(out)


@functools.lru_cache(maxsize=65_536)
def _ahead(root: str, d: date) -> tuple[Contract, ...]:
    """Listed contracts that have not rolled yet on ``d``: index 0 is ``c.0``."""
    return tuple(c for c in listed_contracts(root, d) if c.roll > d)


def continuous(root: str, rank: int, d: date) -> Contract | None:
    """The contract ``root.c.<rank>`` maps to on ``d`` (calendar roll, see ``Contract.roll``)."""
    ahead = _ahead(root, d)
    return ahead[rank] if rank < len(ahead) else None


def activity(c: Contract, d: date) -> float:
    """Share of the product's front-month trading a contract gets on ``d``."""
    ahead = _ahead(c.product.root, d)
    if c not in ahead:
        return 0.3  # rolling off: still trades until expiry
    rank = ahead.index(c)
    return (1.0, 0.3, 0.08)[rank] if rank < 3 else 0.02


def months_to_expiry(contract: Contract, d: date) -> float:
    return (contract.expiry - d).days / 30.4


def is_session_date(kind: str, d: date) -> bool:
    """Futures trade Sunday-Friday (UTC dates), equities Monday-Friday."""
    return d.weekday() != 5 if kind == "futures" else d.weekday() < 5


def calendar_of(kind: str, root: str | None = None) -> str:
    """The exchange calendar (hdi.research.calendars) an instrument of ``kind``/``root`` trades on."""
    from hdi.research.calendars import EQUITY_CALENDAR, FUTURES_CALENDARS

    return EQUITY_CALENDAR if kind == "equities" else FUTURES_CALENDARS[root or "CL"]


@functools.lru_cache(maxsize=256)
def _sessions(calendar: str, year: int) -> tuple[tuple[date, int, int], ...]:
    """(trading date, open ns, close ns) of every session with a trading date from December of the year
    before to January of the year after (so any UTC day of ``year`` sees its sessions)."""
    from hdi.research.calendars import schedule

    s = schedule(calendar, date(year - 1, 12, 1), date(year + 1, 1, 31))
    opens = s["open"].dt.epoch("ns").to_list()
    closes = s["close"].dt.epoch("ns").to_list()
    return tuple(zip(s["trading_date"].to_list(), opens, closes, strict=True))


def sessions_on(calendar: str, d: date) -> tuple[tuple[date, int, int], ...]:
    """The sessions (trading date, open ns, close ns) of ``calendar`` that overlap the UTC day ``d``."""
    lo, hi = ns(d), ns(d) + DAY_NS
    return tuple(x for x in _sessions(calendar, d.year) if x[1] < hi and x[2] > lo)


def trading_dates(calendar: str, d0: date, d1: date) -> list[date]:
    """Trading dates of ``calendar`` in [d0, d1]."""
    return [t for y in range(d0.year, d1.year + 1) for t, _, _ in _sessions(calendar, y)
            if d0 <= t <= d1 and t.year == y]


def previous_trading_date(calendar: str, d: date) -> date | None:
    """The trading date before ``d`` (within the last three weeks), or None."""
    before = trading_dates(calendar, d - timedelta(days=21), d - timedelta(days=1))
    return before[-1] if before else None


def session_minutes(kind: str, d: date, root: str | None = None,
                    skip: frozenset[date] = frozenset()) -> tuple[range, ...]:
    """Trading minutes of a UTC date, as minute-of-day ranges, from the exchange calendar of the
    instrument (``root`` for futures: CL/HO/RB and NG on CME Globex energy hours, ES on CME equity
    hours; NYSE regular hours for equities): the daily break, weekends and holidays have none, early
    closes end early, DST moves the bounds. Sessions whose trading date is in ``skip`` are left out."""
    base = ns(d)
    out = []
    for t, o, c in sessions_on(calendar_of(kind, root), d):
        if t in skip:
            continue
        a = max(0, (o - base) // MINUTE_NS)
        b = min(1440, -(-(c - base) // MINUTE_NS))
        if b > a:
            out.append(range(int(a), int(b)))
    return tuple(out)


@dataclass(frozen=True)
class Instrument:
    """What synth needs to know about one instrument of one dataset."""

    dataset: Dataset
    instrument_id: int
    raw_symbol: str
    path_key: str  # price level path shared by all contracts of a root
    tick: int
    vol: float
    trades_per_day: int
    avg_size: float
    contract: Contract | None = None
    equity: Equity | None = None

    def base_price(self, d: date) -> float:
        """Scale of this instrument's price relative to its root level on ``d`` (calendar carry)."""
        if self.contract is None:
            return 1.0
        return 1.0 + self.contract.product.carry * months_to_expiry(self.contract, d)

    def trades_on(self, d: date) -> float:
        """Expected trades on ``d`` (0 when not trading)."""
        if not is_session_date(self.dataset.kind, d):
            return 0.0
        if self.contract is None:
            return float(self.trades_per_day)
        if not self.contract.live_on(d):
            return 0.0
        return self.trades_per_day * activity(self.contract, d)


@functools.lru_cache(maxsize=4096)
def instrument(dataset: str, instrument_id: int) -> Instrument | None:
    ds = DATASETS[dataset]
    if ds.kind == "equities":
        e = EQUITY_BY_ID.get(instrument_id)
        if e is None:
            return None
        return Instrument(ds, e.instrument_id, e.symbol, e.symbol, EQUITY_TICK, e.vol, e.trades_per_day,
                          e.avg_size, equity=e)
    c = contract_by_id(instrument_id)
    if c is None:
        return None
    p = c.product
    return Instrument(ds, c.instrument_id, c.raw_symbol, p.root, p.tick, p.vol, p.trades_per_day, p.avg_size,
                      contract=c)


def instruments_on(dataset: str, d: date) -> list[int]:
    """Every instrument id of a dataset that is listed on ``d`` (ALL_SYMBOLS)."""
    ds = DATASETS[dataset]
    if not is_session_date(ds.kind, d):
        return []
    if ds.kind == "equities":
        return sorted(e.instrument_id for e in EQUITIES.values())
    return sorted(c.instrument_id for root in PRODUCTS for c in listed_contracts(root, d))
