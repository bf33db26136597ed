"""Price rules that follow the instrument, and the quarantine budget's verdict (pure parts)."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from hdi.decode.symbols import SymbolMapper
from hdi.source.files import DbnMetadata, SymbolInterval
from hdi.validate.budget import MIN_POPULATION, Budget, label_rows, rows_per_symbol
from hdi.validate.price_rules import PriceRule, class_allows, venue_allows
from hdi.validate.split import split


@pytest.mark.parametrize(("dataset", "allowed"), [
    ("GLBX.MDP3", True), ("IFEU.IMPACT", True), ("XEUR.EOBI", True), ("XNAS.ITCH", False), ("EQUS.MINI", False),
    ("DBEQ.BASIC", False), ("OPRA.PILLAR", False), ("ZZZZ.NEW", False)])
def test_venue_decides_when_no_definition_says(dataset, allowed):
    assert venue_allows(dataset) is allowed
    assert PriceRule().allows(dataset, [1, 2]) is allowed


@pytest.mark.parametrize(("cls", "dataset", "allowed"), [
    ("F", "ZZZZ.NEW", True), ("S", "XNAS.ITCH", True), ("M", "GLBX.MDP3", True), ("T", "GLBX.MDP3", True),
    ("C", "GLBX.MDP3", True), ("P", "GLBX.MDP3", True), ("C", "OPRA.PILLAR", False), ("K", "GLBX.MDP3", False),
    ("K", "XNAS.ITCH", False), ("X", "GLBX.MDP3", False), (None, "GLBX.MDP3", None)])
def test_definition_class_decides_first(cls, dataset, allowed):
    assert class_allows(cls, dataset) is allowed


def test_the_recipe_override_wins_and_tables_without_a_price_rule_get_none(trades):
    assert PriceRule(override=True).for_frame("trades", "XNAS.ITCH", trades({})) is True
    assert PriceRule(override=False).for_frame("trades", "GLBX.MDP3", trades({})) is False
    assert PriceRule().for_frame("statistics", "GLBX.MDP3", pl.DataFrame()) is False


def test_split_exempts_only_the_rows_whose_instrument_may_trade_at_or_below_zero(trades):
    frame = trades({"price": "-1"}, {"price": "0"}, {"price": "-2"}, {"price": "1"})  # instrument ids 1..4
    res = split(frame, "trades", allow_non_positive_prices=pl.col("instrument_id").is_in([1, 2]))
    assert res.good["instrument_id"].to_list() == [1, 2, 4]
    assert res.bad.select("instrument_id", "_reasons").rows() == [(3, "price<=0")]


def _bad(symbol: str, n: int, reason: str = "r") -> pl.DataFrame:
    return pl.DataFrame({"_symbol": [symbol] * n, "_reasons": [reason] * n})


@pytest.mark.parametrize(("rows", "bad", "judged", "over"), [
    (MIN_POPULATION, 11, "symbol", True),       # 1.1% of 1,000: over on its own
    (MIN_POPULATION, 10, "symbol", False),      # exactly 1%: within
    (MIN_POPULATION - 1, 10, "run", True),      # too few rows to judge alone: the run (1.001%) is over
])
def test_a_symbol_is_judged_alone_from_1000_rows(rows, bad, judged, over):
    b = Budget(0.01)
    b.count("GLBX.MDP3", "ohlcv-1m", {"CL.c.0": rows}, _bad("CL.c.0", bad))
    (v,) = b.verdict().symbols
    assert (v.judged, v.over, v.quarantined, v.rows) == (judged, over, bad, rows)


def test_a_small_symbol_is_not_over_when_the_run_is_within_budget():
    b = Budget(0.01)
    b.count("GLBX.MDP3", "ohlcv-1d", {"CL.c.0": 21, "ES.c.0": 5000}, _bad("CL.c.0", 1, "high_price<max(open,close,low)"))
    v = b.verdict()
    assert not v.run_over and not v.over and v.symbols[0].judged == "run"


def test_rows_are_labelled_by_the_requested_symbol_of_their_instrument_and_day():
    """A roll: CL.c.0 is instrument 10 on 1 March and 11 from 2 March; 12 is no requested symbol's."""
    meta = DbnMetadata(3, "GLBX.MDP3", "ohlcv-1d", "continuous", "instrument_id", dt.datetime(2024, 3, 1, tzinfo=dt.UTC),
                       None, ["CL.c.0"], [], [], [SymbolInterval("CL.c.0", 10, dt.date(2024, 3, 1), dt.date(2024, 3, 2)),
                                                 SymbolInterval("CL.c.0", 11, dt.date(2024, 3, 2), dt.date(2024, 3, 3))])
    out = pl.DataFrame({"instrument_id": [10, 11, 12, None, 10], "t": [
        "2024-03-01T23:59:59Z", "2024-03-02T00:00:00Z", "2024-03-02T00:00:00Z", None, "2024-03-02T00:00:00Z"]}
    ).with_columns(pl.col("t").str.to_datetime(time_unit="ns", time_zone="UTC"), pl.col("instrument_id").cast(pl.UInt32))
    m = SymbolMapper(meta)
    assert label_rows(out, "t", m).to_list() == ["CL.c.0", "CL.c.0", "12", "?", "10"]
    assert rows_per_symbol(out, "t", m) == {"CL.c.0": 2, "12": 1, "?": 1, "10": 1}
    assert rows_per_symbol(out.head(2), "t", m) == {"CL.c.0": 2}  # every row covered: counted, not labelled
    assert rows_per_symbol(out.head(3), "t", None) == {"10": 1, "11": 1, "12": 1}
