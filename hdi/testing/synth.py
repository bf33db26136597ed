"""Synthetic DBN v3 records, built column-wise with NumPy in the exact ``Record._dtypes`` layout.

``records(dataset, schema, instrument_id, day)`` returns one instrument-day of one schema, sorted
by the schema's index timestamp (``ts_recv``, else ``ts_event``), every record's index timestamp
inside that UTC day. A request is served by concatenating instrument-days and filtering by time,
so the records of ``[a, c)`` are exactly those of ``[a, b)`` followed by those of ``[b, c)``.

Trades are drawn to reproduce the minute model of ``prices`` exactly (first trade = open, last =
close, one trade at the high and one at the low, sizes summing to the volume), and a few trades
per day share the nanosecond of the previous one; about half of those are identical in every
field, as split fills in one packet are.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import date, timedelta

import databento_dbn as dbn
import numpy as np

from hdi._schemas import SCHEMAS
from hdi.testing import market, prices

UNDEF_PRICE = dbn.UNDEF_PRICE
UNDEF_TS = dbn.UNDEF_TIMESTAMP
UNDEF_QTY = dbn.UNDEF_STAT_QUANTITY

RECORD_CLASS = {name: s.record_class for name, s in SCHEMAS.items()}
RTYPE = {"ohlcv-1s": 32, "ohlcv-1m": 33, "ohlcv-1h": 34, "ohlcv-1d": 35, "trades": 0, "tbbo": 1, "mbp-1": 1,
         "statistics": 24, "definition": 19,
         "mbo": 160, "mbp-10": 10, "bbo-1s": 195, "bbo-1m": 196, "cbbo-1s": 192, "cbbo-1m": 193, "status": 18,
         "imbalance": 20, "ohlcv-eod": 36}
DTYPE = {s: np.dtype(c._dtypes) for s, c in RECORD_CLASS.items()}
INDEX = {name: s.index_ts for name, s in SCHEMAS.items()}
RECORD_SIZE = {s: dt.itemsize for s, dt in DTYPE.items()}


def _new(schema: str, n: int, inst: market.Instrument) -> np.ndarray:
    arr = np.zeros(n, dtype=DTYPE[schema])
    arr["length"] = DTYPE[schema].itemsize // 4
    arr["rtype"] = RTYPE[schema]
    arr["publisher_id"] = inst.dataset.publisher_id
    arr["instrument_id"] = inst.instrument_id
    return arr


@dataclass(frozen=True)
class DayTrades:
    """One instrument-day of trades in ``ts_event`` order (prices fixed-point)."""

    ts_event: np.ndarray
    ts_recv: np.ndarray
    price: np.ndarray
    size: np.ndarray
    side: np.ndarray
    ts_in_delta: np.ndarray
    sequence: np.ndarray


@functools.lru_cache(maxsize=8)
def day_trades(dataset: str, instrument_id: int, d: date, skip: frozenset[date] = frozenset()) -> DayTrades | None:
    """Trades matching ``prices.minutes`` exactly (see the module docstring)."""
    mm = prices.minutes(dataset, instrument_id, d, skip)
    inst = market.instrument(dataset, instrument_id)
    if mm is None or inst is None:
        return None
    g = prices.rng("trades", dataset, instrument_id, d.toordinal())
    n, k, total = mm.n, len(mm.n), int(mm.n.sum())
    seg = np.repeat(np.arange(k), n)
    starts = np.cumsum(n) - n
    pos = np.arange(total) - starts[seg]
    nn = n[seg]
    # when in the minute: sorted offsets that leave room for ts_recv to stay in the same minute
    off = np.sort(seg * market.MINUTE_NS + g.integers(0, market.MINUTE_NS - 10**6, total)) - seg * market.MINUTE_NS
    ts_event = market.ns(d) + mm.minute[seg] * market.MINUTE_NS + off
    latency = g.integers(2_000, 400_000, total)
    # prices: uniform inside [low, high], then pin open, close, high and low to their trades
    hslot = np.where(n >= 3, 1 + (g.random(k) * np.maximum(n - 2, 1)).astype(np.int64), -1)
    lslot = np.where(n >= 4, 1 + (g.random(k) * np.maximum(n - 3, 1)).astype(np.int64), -1)
    lslot = np.where((lslot >= hslot) & (lslot > 0), lslot + 1, lslot)
    ticks = g.integers(mm.low[seg], mm.h[seg] + 1)
    ticks = np.where(pos == hslot[seg], mm.h[seg], ticks)
    ticks = np.where(pos == lslot[seg], mm.low[seg], ticks)
    ticks = np.where(pos == 0, mm.o[seg], ticks)
    ticks = np.where(pos == nn - 1, mm.c[seg], ticks)
    # sizes: 1 + an exact integer partition of (volume - trades) inside each minute
    w = np.cumsum(g.integers(1, 100, total))
    w_before = np.concatenate(([0], w))[starts][seg]
    w_total = (w[starts + n - 1])[seg] - w_before
    extra = (mm.v - n)[seg]
    q = (extra * (w - w_before)) // w_total
    size = 1 + q - np.where(pos == 0, 0, np.concatenate(([0], q[:-1])))
    side = g.choice(np.array([b"B", b"A", b"N"], dtype="S1"), size=total, p=[0.49, 0.49, 0.02])
    ts_in_delta = g.integers(1_000, 30_000, total).astype(np.int32)
    sequence = ((d.toordinal() % 1000) * 4_000_000 + np.arange(total)).astype(np.uint32)
    # same-nanosecond pairs: trade k+1 (a free slot of the same minute) joins trade k's packet
    pinned = (pos == 0) | (pos == nn - 1) | (pos == hslot[seg]) | (pos == lslot[seg])
    cand = np.flatnonzero((seg[:-1] == seg[1:]) & ~pinned[1:])
    if len(cand):
        a = np.sort(g.choice(cand, size=min(max(2, total // 1500), len(cand)), replace=False))
        a = a[np.concatenate(([True], np.diff(a) > 1))]
        b = a + 1
        for col in (ts_event, latency, ticks, side, ts_in_delta, sequence):
            col[b] = col[a]
        pair = size[a] + size[b]
        even = pair % 2 == 0
        size[a[even]] = pair[even] // 2
        size[b[even]] = pair[even] // 2
    return DayTrades(ts_event, ts_event + latency, ticks * inst.tick, size.astype(np.uint32), side, ts_in_delta,
                     sequence)


def _ohlcv(schema: str, inst: market.Instrument, ts: np.ndarray, o: np.ndarray, h: np.ndarray, low: np.ndarray,
           c: np.ndarray, v: np.ndarray) -> np.ndarray:
    arr = _new(schema, len(ts), inst)
    arr["ts_event"] = ts
    for name, col in (("open", o), ("high", h), ("low", low), ("close", c)):
        arr[name] = col * inst.tick if schema != "ohlcv-1s" else col
    arr["volume"] = v
    return arr


def _bars(schema: str, inst: market.Instrument, d: date, skip: frozenset[date]) -> np.ndarray | None:
    ds, iid = inst.dataset.code, inst.instrument_id
    if schema == "ohlcv-1d":
        bar = prices.daily(ds, iid, d, skip)
        if bar is None:
            return None
        return _ohlcv(schema, inst, np.array([market.ns(d)]), *(np.array([x]) for x in bar))
    if schema == "ohlcv-1s":
        t = day_trades(ds, iid, d, skip)
        if t is None:
            return None
        sec = t.ts_event // 10**9
        st = np.concatenate(([0], np.flatnonzero(np.diff(sec)) + 1))
        en = np.concatenate((st[1:], [len(sec)])) - 1
        return _ohlcv(schema, inst, sec[st] * 10**9, t.price[st], np.maximum.reduceat(t.price, st),
                      np.minimum.reduceat(t.price, st), t.price[en], np.add.reduceat(t.size.astype(np.uint64), st))
    mm = prices.minutes(ds, iid, d, skip)
    if mm is None:
        return None
    if schema == "ohlcv-1m":
        return _ohlcv(schema, inst, market.ns(d) + mm.minute * market.MINUTE_NS, mm.o, mm.h, mm.low, mm.c, mm.v)
    hour, o, h, low, c, v = prices.hourly(mm)
    return _ohlcv(schema, inst, market.ns(d) + hour * 3_600 * 10**9, o, h, low, c, v)


def _trade_flags(inst: market.Instrument, book: bool) -> int:
    if inst.dataset.kind == "equities":
        return 128
    return 130 if book else 0


def _trades(inst: market.Instrument, d: date, skip: frozenset[date]) -> np.ndarray | None:
    t = day_trades(inst.dataset.code, inst.instrument_id, d, skip)
    if t is None:
        return None
    order = np.argsort(t.ts_recv, kind="stable")
    arr = _new("trades", len(order), inst)
    for name in ("ts_event", "ts_recv", "price", "size", "side", "ts_in_delta", "sequence"):
        arr[name] = getattr(t, name)[order]
    arr["action"] = b"T"
    arr["flags"] = _trade_flags(inst, False)
    return arr


def _book(inst: market.Instrument, t: DayTrades, g: np.random.Generator) -> tuple[np.ndarray, ...]:
    """Top of book just before each trade: the aggressor trades at the touch."""
    n = len(t.price)
    spread = (1 + (g.random(n) < 0.15) + (g.random(n) < 0.03)) * inst.tick
    buy, sell = t.side == b"B", t.side == b"A"
    bid = np.where(buy, t.price - spread, np.where(sell, t.price, t.price - inst.tick))
    ask = np.where(buy, t.price, np.where(sell, t.price + spread, t.price + inst.tick))
    lot = 100 if inst.dataset.kind == "equities" else 1
    bid_sz = g.integers(1, 60, n).astype(np.uint32) * lot
    ask_sz = g.integers(1, 60, n).astype(np.uint32) * lot
    return bid, ask, bid_sz, ask_sz, np.maximum(bid_sz // (3 * lot), 1), np.maximum(ask_sz // (3 * lot), 1)


def _mbp(schema: str, inst: market.Instrument, d: date, skip: frozenset[date] = frozenset()) -> np.ndarray | None:
    t = day_trades(inst.dataset.code, inst.instrument_id, d, skip)
    if t is None:
        return None
    g = prices.rng(schema, inst.dataset.code, inst.instrument_id, d.toordinal())
    bid, ask, bsz, asz, bct, act = _book(inst, t, g)
    n = len(t.price)
    trades = _new(schema, n, inst)
    for name in ("ts_event", "ts_recv", "price", "size", "side", "ts_in_delta", "sequence"):
        trades[name] = getattr(t, name)
    trades["action"] = b"T"
    trades["flags"] = _trade_flags(inst, True)
    for name, col in (("bid_px_00", bid), ("ask_px_00", ask), ("bid_sz_00", bsz), ("ask_sz_00", asz),
                      ("bid_ct_00", bct), ("ask_ct_00", act)):
        trades[name] = col
    if schema == "tbbo":
        return trades[np.argsort(trades["ts_recv"], kind="stable")]
    # mbp-1: a quote update before every trade, in the same minute
    quotes = trades.copy()
    minute_start = t.ts_event - (t.ts_event - market.ns(d)) % market.MINUTE_NS
    quotes["ts_event"] = np.maximum(t.ts_event - g.integers(1_000, 200_000, n), minute_start)
    quotes["ts_recv"] = quotes["ts_event"] + g.integers(2_000, 400_000, n)
    qside = np.where(g.random(n) < 0.5, b"B", b"A")
    quotes["action"] = b"A"
    quotes["side"] = qside
    quotes["price"] = np.where(qside == b"B", bid, ask)
    quotes["size"] = np.where(qside == b"B", bsz, asz)
    first = int(np.argmin(quotes["ts_recv"]))  # the day opens with an empty ask side
    for name, value in (("ask_px_00", UNDEF_PRICE), ("ask_sz_00", 0), ("ask_ct_00", 0), ("side", b"B"),
                        ("price", bid[first]), ("size", bsz[first])):
        quotes[name][first] = value
    both = np.concatenate((quotes, trades))
    return both[np.argsort(both["ts_recv"], kind="stable")]


def _settlement_ticks(inst: market.Instrument, d: date, close_ns: int, skip: frozenset[date]) -> int | None:
    """The last 1m close before the session's close on trading date ``d`` (ticks), or None."""
    mm = prices.minutes(inst.dataset.code, inst.instrument_id, d, skip)
    if mm is None:
        return None
    before = mm.minute < (close_ns - market.ns(d)) // market.MINUTE_NS
    return int(mm.c[before][-1]) if before.any() else None


def _statistics(inst: market.Instrument, d: date, blocked: frozenset[tuple[int, date]],
                skip: frozenset[date]) -> np.ndarray | None:
    """On a trading date of the instrument's calendar: settlement (preliminary, then final: the last
    price before the session's close), session high/low, and the previous trading date's cleared
    volume and open interest, published that morning (UTC)."""
    c = inst.contract
    if c is None or not c.live_on(d):
        return None
    cal = market.calendar_of("futures", c.product.root)
    session = [x for x in market.sessions_on(cal, d) if x[0] == d]
    if not session or d in skip:
        return None
    ds, iid = inst.dataset.code, inst.instrument_id
    bar = prices.daily(ds, iid, d, skip)
    base = market.ns(d)
    rows: list[tuple[int, int, int, int, int, int]] = []  # (ts offset ns, stat_type, price, qty, ts_ref, flags)
    p = market.previous_trading_date(cal, d)
    if p is not None and c.live_on(p) and (iid, p) not in blocked and p not in skip:
        prev = prices.daily(ds, iid, p)
        oi = int(200_000 * market.activity(c, p) * (1.2 + np.sin(p.toordinal() / 20.0) / 5)) + 100
        rows.append((10 * 3600, 6, UNDEF_PRICE, prev[4] if prev else 0, market.ns(p), 0))
        rows.append((10 * 3600 + 1, 9, UNDEF_PRICE, oi, market.ns(p), 0))
    last = _settlement_ticks(inst, d, session[0][2], skip)
    settle = (last * inst.tick if last is not None
              else int(round(prices.level(inst, d + timedelta(days=1)) * 1e9 / inst.tick)) * inst.tick)
    if bar:
        rows.append((int(19.5 * 3600), 3, settle, UNDEF_QTY, base, 2))  # preliminary, actual
        rows.append((22 * 3600, 5, bar[1] * inst.tick, UNDEF_QTY, base, 0))
        rows.append((22 * 3600 + 1, 4, bar[2] * inst.tick, UNDEF_QTY, base, 0))
    rows.append((int(22.5 * 3600), 3, settle, UNDEF_QTY, base, 3 if bar else 1))  # final (actual/theoretical)
    g = prices.rng("statistics", ds, iid, d.toordinal())
    n = len(rows)
    arr = _new("statistics", n, inst)
    off, stat, px, qty, ref, flags = (np.array(col) for col in zip(*rows, strict=True))
    arr["ts_event"] = base + off * 10**9 + g.integers(0, 900_000_000, n)
    arr["ts_recv"] = arr["ts_event"] + g.integers(5_000, 60_000, n)
    arr["ts_ref"] = ref.astype(np.uint64)
    arr["price"] = px
    arr["quantity"] = qty
    arr["stat_type"] = stat
    arr["stat_flags"] = flags
    arr["update_action"] = 1
    arr["sequence"] = (d.toordinal() % 1000) * 4_000_000 + 3_900_000 + np.arange(n)
    arr["ts_in_delta"] = g.integers(5_000, 30_000, n)
    return arr[np.argsort(arr["ts_recv"], kind="stable")]


@functools.lru_cache(maxsize=1)
def _definition_template() -> np.ndarray:
    msg = dbn.InstrumentDefMsg(
        publisher_id=0, instrument_id=0, ts_event=0, ts_recv=0, min_price_increment=UNDEF_PRICE,
        display_factor=UNDEF_PRICE, raw_symbol="", asset="", security_type="",
        # by value: databento_dbn's stubs declare the enum members as plain str attributes
        instrument_class=dbn.InstrumentClass("F"), security_update_action=dbn.SecurityUpdateAction("A"),
    )
    return np.frombuffer(bytes(msg), dtype=DTYPE["definition"]).copy()


def _definition(inst: market.Instrument, d: date) -> np.ndarray | None:
    if not market.is_session_date(inst.dataset.kind, d):
        return None
    arr = _definition_template().copy()
    arr["publisher_id"] = inst.dataset.publisher_id
    arr["instrument_id"] = inst.instrument_id
    arr["raw_symbol"] = inst.raw_symbol
    arr["min_price_increment"] = inst.tick
    arr["currency"] = "USD"
    arr["match_algorithm"] = b"F"
    c = inst.contract
    if c is not None:
        if not c.live_on(d):
            return None
        p = c.product
        arr["ts_recv"] = market.ns(d)
        arr["ts_event"] = market.ns(d) - (6 * 60 + 55) * market.MINUTE_NS
        arr["instrument_class"], arr["security_type"], arr["cfi"] = b"F", "FUT", p.cfi
        arr["asset"], arr["group"], arr["exchange"] = p.root, p.root, p.exchange
        arr["expiration"], arr["activation"] = c.expiration_ns, market.ns(c.activation)
        arr["unit_of_measure"], arr["unit_of_measure_qty"] = p.unit_of_measure, p.unit_qty
        arr["min_price_increment_amount"] = p.tick * p.unit_qty // market.PRICE_SCALE
        arr["display_factor"] = market.PRICE_SCALE
        arr["maturity_year"], arr["maturity_month"] = c.year, c.month
        arr["market_depth"], arr["min_trade_vol"], arr["max_trade_vol"] = 10, 1, 3000
        arr["contract_multiplier"] = p.unit_qty // market.PRICE_SCALE
    else:
        arr["ts_recv"] = market.ns(d) + 9 * 3600 * 10**9
        arr["ts_event"] = arr["ts_recv"] - 10_500
        arr["instrument_class"], arr["security_type"] = b"K", "STK"
        arr["exchange"] = "ARCX" if inst.raw_symbol == "SPY" else "XNAS"
        arr["raw_instrument_id"] = inst.instrument_id
        arr["min_lot_size_round_lot"] = 100
    arr["channel_id"] = 0
    return arr


def _skip(instrument_id: int, d: date, blocked: frozenset[tuple[int, date]]) -> frozenset[date]:
    """The blocked trading dates near ``d``: their sessions (which start the evening before) are empty."""
    return frozenset(t for i, t in blocked if i == instrument_id and abs((t - d).days) <= 7)


# ---- issue 13: mbo, mbp-10, bbo, cbbo, status, imbalance, ohlcv-eod ---------------------------------------
def _mbo(inst: market.Instrument, d: date, skip: frozenset[date]) -> np.ndarray | None:
    """Per trade: the resting order's add (shortly before, same minute), then the trade and the resting
    order's fill in one packet (same ts_recv). Identical same-nanosecond trades stay identical records."""
    t = day_trades(inst.dataset.code, inst.instrument_id, d, skip)
    if t is None:
        return None
    g = prices.rng("mbo", inst.dataset.code, inst.instrument_id, d.toordinal())
    n = len(t.price)
    resting = np.where(t.side == b"A", b"B", b"A").astype("S1")
    order_id = (d.toordinal() % 1000) * 10_000_000 + np.arange(n, dtype=np.uint64) + 1
    minute_start = t.ts_event - (t.ts_event - market.ns(d)) % market.MINUTE_NS
    add = _new("mbo", n, inst)
    add["ts_event"] = np.maximum(t.ts_event - g.integers(1_000, 200_000, n), minute_start)
    add["ts_recv"] = add["ts_event"] + g.integers(2_000, 400_000, n)
    add["action"], add["side"], add["order_id"] = b"A", resting, order_id
    add["price"], add["size"], add["flags"] = t.price, t.size, 128
    add["ts_in_delta"] = t.ts_in_delta
    add["sequence"] = t.sequence.astype(np.int64) + 2_000_000
    trade = _new("mbo", n, inst)
    for name in ("ts_event", "ts_recv", "price", "size", "side", "ts_in_delta", "sequence"):
        trade[name] = getattr(t, name)
    trade["action"], trade["order_id"], trade["flags"] = b"T", 0, 0
    fill = trade.copy()
    fill["action"], fill["side"], fill["order_id"], fill["flags"] = b"F", resting, order_id, 128
    both = np.concatenate((add, trade, fill))
    return both[np.argsort(both["ts_recv"], kind="stable")]


def _mbp10(inst: market.Instrument, d: date, skip: frozenset[date]) -> np.ndarray | None:
    """mbp-1's events with ten levels: level i is i ticks away from the touch."""
    top = _mbp("mbp-1", inst, d, skip)
    if top is None:
        return None
    g = prices.rng("mbp-10", inst.dataset.code, inst.instrument_id, d.toordinal())
    n = len(top)
    arr = _new("mbp-10", n, inst)
    for name in top.dtype.names or ():
        if name not in ("length", "rtype"):
            arr[name] = top[name]
    lot = 100 if inst.dataset.kind == "equities" else 1
    for side, sign in (("bid", -1), ("ask", 1)):
        empty = top[f"{side}_px_00"] == UNDEF_PRICE
        for i in range(1, 10):
            lv = f"{i:02d}"
            size = g.integers(1, 80, n).astype(np.uint32) * lot
            arr[f"{side}_px_{lv}"] = np.where(empty, UNDEF_PRICE, top[f"{side}_px_00"] + sign * i * inst.tick)
            arr[f"{side}_sz_{lv}"] = np.where(empty, 0, size)
            arr[f"{side}_ct_{lv}"] = np.where(empty, 0, np.maximum(size // (3 * lot), 1))
    return arr


def _snapshots(schema: str, inst: market.Instrument, d: date, skip: frozenset[date]) -> np.ndarray | None:
    """bbo/cbbo: at the end of every interval with a book event, the book after its last event and the
    interval's last trade (UNDEF price, size 0, side N without one). Intervals ending at the next UTC
    midnight belong to the next day and are left out."""
    top = _mbp("mbp-1", inst, d, skip)
    if top is None:
        return None
    iv = 10**9 if schema.endswith("-1s") else market.MINUTE_NS
    end = (top["ts_recv"] // iv + 1) * iv
    last = np.concatenate((np.flatnonzero(np.diff(end)), [len(end) - 1]))
    is_trade = top["action"] == b"T"
    # the index of the last trade at or before each event, within its interval
    idx = np.where(is_trade, np.arange(len(top)), -1)
    last_trade = np.maximum.accumulate(idx)
    start_of_bucket = np.concatenate(([0], last[:-1] + 1))
    lt = last_trade[last]
    has = lt >= start_of_bucket
    keep = end[last] < market.ns(d) + market.DAY_NS
    last, lt, has = last[keep], lt[keep], has[keep]
    arr = _new(schema, len(last), inst)
    src = top[last]
    arr["ts_recv"] = end[last]
    arr["ts_event"] = src["ts_event"]
    arr["price"] = np.where(has, top["price"][lt], UNDEF_PRICE)
    arr["size"] = np.where(has, top["size"][lt], 0)
    arr["side"] = np.where(has, top["side"][lt], b"N")
    arr["flags"] = 128
    for name in ("bid_px_00", "ask_px_00", "bid_sz_00", "ask_sz_00"):
        arr[name] = src[name]
    if schema.startswith("bbo"):
        arr["sequence"] = src["sequence"]
        arr["bid_ct_00"], arr["ask_ct_00"] = src["bid_ct_00"], src["ask_ct_00"]
    else:
        g = prices.rng(schema, inst.dataset.code, inst.instrument_id, d.toordinal())
        venues = np.array([39, 40, 41, 43], dtype=np.uint16)  # the venues behind the consolidated quote
        arr["bid_pb_00"] = venues[g.integers(0, len(venues), len(arr))]
        arr["ask_pb_00"] = venues[g.integers(0, len(venues), len(arr))]
    return arr


# StatusAction numbers (databento_dbn): PRE_OPEN 1, TRADING 7, HALT 8, CLOSE 12
PRE_OPEN, TRADING, HALT, CLOSE = 1, 7, 8, 12
PRE_OPEN_MINUTES = 15
HALT_MINUTES = 5


def status_events(inst: market.Instrument, d: date,
                  skip: frozenset[date] = frozenset()) -> list[tuple[int, int, bool]]:
    """(minute of day, StatusAction, is_trading) of one UTC day: pre-open 15 minutes before each session
    range, trading at its start, close at its end (futures' 22:00 daily break, Friday's close), and on
    about one equity day in ten a 5-minute volatility halt at 16:00."""
    c = inst.contract
    if c is not None and not c.live_on(d):
        return []
    out: list[tuple[int, int, bool]] = []
    for r in market.session_minutes(inst.dataset.kind, d, inst.path_key if inst.contract else None, skip):
        if r.start > 0:
            out += [(r.start - PRE_OPEN_MINUTES, PRE_OPEN, False), (r.start, TRADING, True)]
        if r.stop < 1440:
            out.append((r.stop, CLOSE, False))
    g = prices.rng("status", inst.dataset.code, inst.instrument_id, d.toordinal())
    if inst.dataset.kind == "equities" and out and g.random() < 0.1:
        out += [(960, HALT, False), (960 + HALT_MINUTES, TRADING, True)]
    return sorted(out)


def _status(inst: market.Instrument, d: date, skip: frozenset[date]) -> np.ndarray | None:
    events = status_events(inst, d, skip)
    if not events:
        return None
    g = prices.rng("status-ns", inst.dataset.code, inst.instrument_id, d.toordinal())
    n = len(events)
    arr = _new("status", n, inst)
    minute, action, trading = (np.array(col) for col in zip(*events, strict=True))
    arr["ts_event"] = market.ns(d) + minute * market.MINUTE_NS
    arr["ts_recv"] = arr["ts_event"] + g.integers(5_000, 9_000_000, n)
    arr["action"] = action
    arr["reason"] = np.where(action == HALT, 50, 1)  # LULD_PAUSE, SCHEDULED
    arr["trading_event"] = 0
    arr["is_trading"] = np.where(trading, b"Y", b"N")
    arr["is_quoting"] = np.where(action == CLOSE, b"N", b"Y")
    arr["is_short_sell_restricted"] = b"~" if inst.dataset.kind == "futures" else b"N"
    return arr


def _imbalance(inst: market.Instrument, d: date, skip: frozenset[date]) -> np.ndarray | None:
    """Nasdaq-style auction imbalance: every 10 s from 14:25 to the 14:30 open, and from 20:50 to the
    21:00 close."""
    if inst.dataset.code != "XNAS.ITCH":
        return None
    bar = prices.daily(inst.dataset.code, inst.instrument_id, d, skip)
    if bar is None:
        return None
    g = prices.rng("imbalance", inst.dataset.code, inst.instrument_id, d.toordinal())
    base = market.ns(d)
    parts = []
    for first, auction, kind, ref in ((865, 870, b"O", bar[0]), (1250, 1260, b"C", bar[3])):
        t = base + first * market.MINUTE_NS + np.arange(0, (auction - first) * 60, 10) * 10**9
        n = len(t)
        arr = _new("imbalance", n, inst)
        arr["ts_event"] = t + g.integers(0, 50_000, n)
        arr["ts_recv"] = arr["ts_event"] + g.integers(5_000, 15_000, n)
        arr["auction_time"] = base + auction * market.MINUTE_NS
        arr["ref_price"] = ref * inst.tick
        arr["cont_book_clr_price"] = (ref + g.integers(-2, 3, n)) * inst.tick
        arr["auct_interest_clr_price"] = ref * inst.tick
        for name in ("ssr_filling_price", "ind_match_price", "upper_collar", "lower_collar"):
            arr[name] = UNDEF_PRICE
        side = np.array([b"B", b"A", b"N"], dtype="S1")[g.integers(0, 3, n)]
        arr["side"] = side
        arr["paired_qty"] = g.integers(10_000, 500_000, n)
        arr["total_imbalance_qty"] = np.where(side == b"N", 0, g.integers(100, 50_000, n))
        arr["auction_type"], arr["unpaired_side"], arr["significant_imbalance"] = kind, b"N", b"L"
        parts.append(arr)
    return np.concatenate(parts)


def _eod(inst: market.Instrument, d: date, skip: frozenset[date]) -> np.ndarray | None:
    """End-of-day bars: the day's bar, as ohlcv-1d (the synthetic sessions are UTC days)."""
    bar = prices.daily(inst.dataset.code, inst.instrument_id, d, skip)
    if bar is None:
        return None
    return _ohlcv("ohlcv-eod", inst, np.array([market.ns(d)]), *(np.array([x]) for x in bar))


ISSUE13_BUILDERS = {"mbo": _mbo, "mbp-10": _mbp10, "status": _status, "imbalance": _imbalance,
                    "ohlcv-eod": _eod}
# ---- end of issue 13 ------------------------------------------------------------------------------------


def records(dataset: str, schema: str, instrument_id: int, d: date,
            blocked: frozenset[tuple[int, date]] = frozenset()) -> np.ndarray | None:
    """One instrument-day of one schema, sorted by the index timestamp; None when empty.

    ``blocked`` holds (instrument_id, date) pairs that have no records at all (no-trade days): neither
    the UTC day nor the session of that trading date (which opens the evening before for futures).
    """
    if (instrument_id, d) in blocked:
        return None
    inst = market.instrument(dataset, instrument_id)
    if inst is None:
        return None
    skip = _skip(instrument_id, d, blocked)
    if schema in ISSUE13_BUILDERS:
        return ISSUE13_BUILDERS[schema](inst, d, skip)
    if schema in ("bbo-1s", "bbo-1m", "cbbo-1s", "cbbo-1m"):
        return _snapshots(schema, inst, d, skip)
    if schema.startswith("ohlcv-"):
        return _bars(schema, inst, d, skip)
    if schema == "trades":
        return _trades(inst, d, skip)
    if schema in ("tbbo", "mbp-1"):
        return _mbp(schema, inst, d, skip)
    if schema == "statistics":
        return _statistics(inst, d, blocked, skip)
    if schema == "definition":
        return _definition(inst, d)
    raise ValueError(f"unsupported schema {schema!r}")


def count(dataset: str, schema: str, instrument_id: int, d: date,
          blocked: frozenset[tuple[int, date]] = frozenset()) -> int:
    """``len(records(...))`` for a whole day, without building trade-level records when the minute model
    already knows the answer (metadata endpoints on long ranges)."""
    if (instrument_id, d) in blocked:
        return 0
    if schema in ("trades", "tbbo", "mbp-1", "ohlcv-1m", "ohlcv-1h"):
        mm = prices.minutes(dataset, instrument_id, d, _skip(instrument_id, d, blocked))
        if mm is None:
            return 0
        if schema == "ohlcv-1m":
            return len(mm.n)
        if schema == "ohlcv-1h":
            return len(np.unique(mm.minute // 60))
        return int(mm.n.sum()) * (2 if schema == "mbp-1" else 1)
    arr = records(dataset, schema, instrument_id, d, blocked)
    return 0 if arr is None else len(arr)
