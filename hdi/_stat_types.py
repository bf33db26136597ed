"""DBN StatType numbers and names, for the recipe ops (``stat_name``, ``stat_value``) and validation.

The one table of them in hdi: databento_dbn 0.70.0's ``StatType`` (value -> name);
tests/validate checks it against the library.
"""

from __future__ import annotations

STAT_TYPES: dict[int, str] = {
    1: "OPENING_PRICE", 2: "INDICATIVE_OPENING_PRICE", 3: "SETTLEMENT_PRICE",
    4: "TRADING_SESSION_LOW_PRICE", 5: "TRADING_SESSION_HIGH_PRICE", 6: "CLEARED_VOLUME",
    7: "LOWEST_OFFER", 8: "HIGHEST_BID", 9: "OPEN_INTEREST", 10: "FIXING_PRICE", 11: "CLOSE_PRICE",
    12: "NET_CHANGE", 13: "VWAP", 14: "VOLATILITY", 15: "DELTA", 16: "UNCROSSING_PRICE",
    17: "UPPER_PRICE_LIMIT", 18: "LOWER_PRICE_LIMIT", 19: "BLOCK_VOLUME", 20: "INDICATIVE_CLOSE_PRICE",
    21: "MWCB_LEVEL_1", 22: "MWCB_LEVEL_2", 23: "MWCB_LEVEL_3", 24: "AUCTION_COLLAR_REFERENCE_PRICE",
    25: "AUCTION_COLLAR_UPPER_PRICE", 26: "AUCTION_COLLAR_LOWER_PRICE",
    10001: "VENUE_SPECIFIC_VOLUME_1", 10002: "VENUE_SPECIFIC_PRICE_1",
}

_NUMBER = {name: number for number, name in STAT_TYPES.items()}

# StatTypes whose value is the record's ``quantity`` (all others carry ``price``).
QUANTITY_STAT_TYPES: tuple[int, ...] = tuple(
    _NUMBER[n] for n in ("CLEARED_VOLUME", "OPEN_INTEREST", "BLOCK_VOLUME", "VENUE_SPECIFIC_VOLUME_1"))
