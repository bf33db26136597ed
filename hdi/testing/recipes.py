"""Recipes the tests write: daily bars from the local gateway where some bars are invalid.

Every bar whose volume is a multiple of 3 gets its low above its high, so it fails validation under
any rules; the others are good. Tests of the quarantine, its replay, the failure budget and the
coverage views share this one text.
"""

from __future__ import annotations

from collections.abc import Sequence


def sometimes_bad_recipe(name: str = "sometimes_bad", *, symbols: Sequence[str] = ("CL.c.0", "NG.c.0"),
                         period: str = "month", max_failure_rate: float = 1.0,
                         on_budget_exceeded: str | None = None) -> str:
    """The YAML text of a March 2024 ``ohlcv-1d`` recipe on GLBX.MDP3 continuous ``symbols`` whose
    bars with a volume divisible by 3 are invalid (low above high)."""
    rollback = f"\n  on_budget_exceeded: {on_budget_exceeded}" if on_budget_exceeded else ""
    return f"""\
name: {name}
source:
  vendor: databento
  schema: ohlcv-1d
  start: 2024-03-01
  end: 2024-04-01
  chunk: {{period: {period}, max_symbols: 10}}
  requests:
    - {{dataset: GLBX.MDP3, stype_in: continuous, symbols: [{", ".join(symbols)}]}}
transform:
  - rename: {{ts_event: bar_timestamp_utc, open: open_price, high: high_price, low: low_price, close: close_price}}
  - fixed_to_decimal: [open_price, high_price, low_price, close_price]
  - constant: {{granularity: 1d, data_source: databento, trade_count: null, vwap: null}}
  - derive: {{low_price: "CASE WHEN volume % 3 = 0 THEN high_price + 1 ELSE low_price END"}}
validate:
  max_failure_rate: {max_failure_rate}{rollback}
target:
  table: ohlcv
"""
