"""Conformance: every real Databento sample we store goes through ``hdi ingest --from-file`` (the real
CLI) into both stores and reads back equal to Databento's own decoding, row by row and field by field.

The reference is ``DBNStore.from_file(p).to_df(price_type="fixed", pretty_ts=True, map_symbols=True)``;
prices are compared as exact decimals (fixed / 1e9), timestamps as integer nanoseconds, sides as
hdi's buy/sell/null, and to_df's sentinels (UNDEF_PRICE, UNDEF_STAT_QUANTITY, i32 max
contract_multiplier, NaT, "") as the nulls hdi stores.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import databento as db
import databento_dbn as dbn
import pandas as pd
import polars as pl
import pytest

import hdi
from hdi.store import open_store

pytestmark = [pytest.mark.samples,
              pytest.mark.filterwarnings("ignore:The inplace keyword in DataFrame.set_index")]

RECIPES = {
    "trades": "trades.yaml", "tbbo": "tbbo.yaml", "mbp-1": "mbp1.yaml", "statistics": "statistics.yaml",
    "definition": "definitions.yaml", "ohlcv-1s": "ohlcv_1s.yaml", "ohlcv-1m": "ohlcv_1m.yaml",
    "ohlcv-1h": "ohlcv_1h.yaml", "ohlcv-1d": "ohlcv_1d.yaml",
}
_COMMON = ("trades", "tbbo", "mbp-1", "ohlcv-1s", "ohlcv-1m", "ohlcv-1h", "ohlcv-1d", "definition")
# Every (dataset, schema) sample of INDEX.md for these datasets; only GLBX.MDP3 has statistics.
CASES = [(ds, s) for ds in ("GLBX.MDP3", "XNAS.ITCH", "EQUS.MINI") for s in _COMMON] + [("GLBX.MDP3", "statistics")]
SIDES = {"B": "buy", "A": "sell", "N": None}
QUANTITY_STATS = {"CLEARED_VOLUME", "OPEN_INTEREST", "BLOCK_VOLUME", "VENUE_SPECIFIC_VOLUME_1"}
I32_MAX = 2**31 - 1


# ----------------------------------------------------------------------------------- reference values
def _none(v: object) -> bool:
    return v is None or v is pd.NaT or (isinstance(v, float) and v != v)


def _ns(values: pd.Series) -> list[int | None]:
    return [None if _none(v) else pd.Timestamp(v).value for v in values.tolist()]


def _px(values: pd.Series) -> list[Decimal | None]:
    return [None if _none(v) or int(v) == dbn.UNDEF_PRICE else Decimal(int(v)).scaleb(-9) for v in values.tolist()]


def _int(values: pd.Series, undef: int | None = None) -> list[int | None]:
    return [None if _none(v) or (undef is not None and int(v) == undef) else int(v) for v in values.tolist()]


def _text(values: pd.Series) -> list[str | None]:
    return [None if _none(v) or v == "" else str(v) for v in values.tolist()]


def _side(values: pd.Series) -> list[str | None]:
    return [SIDES[v] for v in values.tolist()]


def _date(values: pd.Series) -> list:
    return [None if _none(v) else pd.Timestamp(v).date() for v in values.tolist()]


def _expected(schema: str, ref: pd.DataFrame, dataset: str) -> dict[str, list]:
    """What hdi must return for each column of the reader's frame, computed from to_df's output."""
    n = len(ref)
    # every sample is requested by raw symbol: each row's raw_symbol is that symbol (definitions: their own)
    out: dict[str, list] = {"symbol": _text(ref["symbol"]), "raw_symbol": _text(ref["symbol"]), "dataset": [dataset] * n,
                            "instrument_id": _int(ref["instrument_id"]), "publisher_id": _int(ref["publisher_id"]),
                            "data_source": ["databento"] * n}
    if schema.startswith("ohlcv-"):
        return out | {
            "granularity": [schema.removeprefix("ohlcv-")] * n, "bar_timestamp_utc": _ns(ref["ts_event"]),
            "open_price": _px(ref["open"]), "high_price": _px(ref["high"]), "low_price": _px(ref["low"]),
            "close_price": _px(ref["close"]), "volume": _int(ref["volume"]), "trade_count": [None] * n,
            "vwap": [None] * n,
        }
    if schema == "definition":
        recv = _ns(ref["ts_recv"])
        return out | {
            "raw_symbol": _text(ref["raw_symbol"]), "instrument_class": _text(ref["instrument_class"]),
            "security_type": _text(ref["security_type"]), "asset": _text(ref["asset"]),
            "product_group": _text(ref["group"]), "exchange": _text(ref["exchange"]), "cfi": _text(ref["cfi"]),
            "currency": _text(ref["currency"]), "underlying": _text(ref["underlying"]),
            "expiration": _ns(ref["expiration"]), "activation": _ns(ref["activation"]),
            "min_price_increment": _px(ref["min_price_increment"]), "display_factor": _px(ref["display_factor"]),
            "unit_of_measure": _text(ref["unit_of_measure"]), "unit_of_measure_qty": _px(ref["unit_of_measure_qty"]),
            "contract_multiplier": _int(ref["contract_multiplier"], I32_MAX),
            "strike_price": _px(ref["strike_price"]), "high_limit_price": _px(ref["high_limit_price"]),
            "low_limit_price": _px(ref["low_limit_price"]),
            "security_update_action": _text(ref["security_update_action"]),
            "event_timestamp_utc": _ns(ref["ts_event"]), "ts_event_ns": _ns(ref["ts_event"]),
            "received_timestamp_utc": recv, "ts_recv_ns": recv,
            "valid_from": recv, "valid_to": [None] * n,
        }
    event, recv = _ns(ref["ts_event"]), _ns(ref["ts_recv"])
    out |= {"received_timestamp_utc": recv, "ts_event_ns": event, "ts_recv_ns": recv,
            "flags": _int(ref["flags"]) if "flags" in ref else None, "sequence": _int(ref["sequence"]),
            "ts_in_delta": _int(ref["ts_in_delta"]), "rec_ordinal": [0] * n}
    if schema == "trades":
        return out | {
            "trade_timestamp_utc": event, "price": _px(ref["price"]), "size": _int(ref["size"]),
            "aggressor_side": _side(ref["side"]),
            "trade_id": [f"{i}-{r}-{s}-0" for i, r, s in zip(out["instrument_id"], recv, out["sequence"],
                                                               strict=True)],
        }
    book = {} if schema not in ("tbbo", "mbp-1") else {
        "bid_price": _px(ref["bid_px_00"]), "bid_size": _int(ref["bid_sz_00"]), "bid_count": _int(ref["bid_ct_00"]),
        "ask_price": _px(ref["ask_px_00"]), "ask_size": _int(ref["ask_sz_00"]), "ask_count": _int(ref["ask_ct_00"])}
    if schema == "tbbo":
        return out | book | {"quote_timestamp_utc": event, "trade_price": _px(ref["price"]),
                             "trade_size": _int(ref["size"]), "trade_side": _side(ref["side"])}
    if schema == "mbp-1":
        return out | book | {"event_timestamp_utc": event, "action": _text(ref["action"]),
                             "side": _side(ref["side"]), "depth": _int(ref["depth"]), "price": _px(ref["price"]),
                             "size": _int(ref["size"])}
    assert schema == "statistics"
    del out["flags"]
    names = [dbn.StatType(int(t)).name for t in ref["stat_type"]]
    price, qty = _px(ref["price"]), _int(ref["quantity"], dbn.UNDEF_STAT_QUANTITY)
    ref_date, event_date = _date(ref["ts_ref"]), _date(ref["ts_event"])
    return out | {
        "stat_type": _int(ref["stat_type"]), "statistic_name": names,
        "statistic_value_numeric": [q if nm in QUANTITY_STATS else p for nm, p, q in zip(names, price, qty,
                                                                                          strict=True)],
        "statistic_value_text": [None] * n,
        "effective_date_utc": [r if r is not None else e for r, e in zip(ref_date, event_date, strict=True)],
        "price": price, "quantity": qty, "ts_ref_ns": _ns(ref["ts_ref"]), "event_timestamp_utc": event,
        "update_action": _int(ref["update_action"]), "stat_flags": _int(ref["stat_flags"]),
        "channel_id": _int(ref["channel_id"]),
    }


def _values(frame: pl.DataFrame, column: str) -> list:
    s = frame.get_column(column)
    return s.dt.epoch("ns").to_list() if isinstance(s.dtype, pl.Datetime) else s.to_list()


READ = {
    "trades": hdi.read_trades, "tbbo": hdi.read_tbbo, "mbp-1": hdi.read_mbp1, "definition": hdi.read_definitions,
}


def _read(schema: str, symbol: str, start: str, end: str, store: str) -> pl.DataFrame:
    if schema.startswith("ohlcv-"):
        return hdi.read_bars(symbol, start, end, granularity=schema.removeprefix("ohlcv-"), store=store,
                             prices="decimal")
    if schema == "statistics":
        return hdi.read_statistics(symbol, start, end, store=store, latest=False, prices="decimal")
    return READ[schema](symbol, start, end, store=store, prices="decimal")


def _order(schema: str) -> list[str]:
    if schema.startswith("ohlcv-"):
        return ["bar_timestamp_utc"]
    if schema == "definition":
        return ["ts_recv_ns"]
    return ["ts_recv_ns", "sequence", "rec_ordinal"]


def _last_run(url: str) -> dict:
    runs = open_store(url).runs(limit=1)
    assert runs.height == 1
    return runs.row(0, named=True)


# ----------------------------------------------------------------------------------- the test
@pytest.mark.parametrize("dataset,schema", CASES, ids=[f"{d}-{s}" for d, s in CASES])
def test_sample_ingested_by_cli_reads_back_equal_to_databento_decoding(
        samples_dir: Path, any_store_url: str, recipes_dir: Path, cli, dataset: str, schema: str) -> None:
    path = samples_dir / dataset / f"test_data.{schema}.dbn.zst"
    assert path.is_file(), f"sample {path} is listed in INDEX.md but missing"
    src = db.DBNStore.from_file(path)
    ref = src.to_df(price_type="fixed", pretty_ts=True, map_symbols=True).reset_index()
    symbol = ref["symbol"].iloc[0]
    assert len(ref) > 0 and set(ref["symbol"]) == {symbol}

    res = cli("ingest", "--recipe", recipes_dir / RECIPES[schema], "--from-file", path, "--store", any_store_url)
    assert res.exit_code == 0, res.stderr
    first = _last_run(any_store_url)
    assert (first["status"], first["rows_fetched"], first["rows_loaded"], first["rows_quarantined"]) == \
        ("succeeded", len(ref), len(ref), 0)
    # The recipes' own date ranges (2024) are not used: a file is read over its metadata's span.
    chunk = open_store(any_store_url).chunks().row(0, named=True)
    assert (pd.Timestamp(chunk["start_ts"]), pd.Timestamp(chunk["end_ts"])) == (src.start, src.end)

    start, end = src.start.isoformat(), src.end.isoformat()
    got = _read(schema, symbol, start, end, any_store_url)
    want = _expected(schema, ref, dataset)
    assert got.height == len(ref)
    assert set(got.columns) == {k for k, v in want.items() if v is not None}
    got = got.sort(_order(schema))
    keys = [want[k] for k in _order(schema)]
    rows = sorted(range(len(ref)), key=lambda i: tuple(k[i] for k in keys))
    for column, values in want.items():
        if values is not None:
            assert _values(got, column) == [values[i] for i in rows], column

    # Idempotent: the same file again is skipped by the ledger; forced again, every row is already there.
    again = cli("ingest", "--recipe", recipes_dir / RECIPES[schema], "--from-file", path, "--store", any_store_url)
    assert again.exit_code == 0, again.stderr
    assert (_last_run(any_store_url)["rows_loaded"], _last_run(any_store_url)["chunks_skipped"]) == (0, 1)
    forced = cli("ingest", "--recipe", recipes_dir / RECIPES[schema], "--from-file", path, "--store", any_store_url,
                 "--refresh")
    assert forced.exit_code == 0, forced.stderr
    run = _last_run(any_store_url)
    assert (run["rows_fetched"], run["rows_loaded"], run["rows_already_present"]) == (len(ref), 0, len(ref))
    assert _read(schema, symbol, start, end, any_store_url).height == len(ref)


@pytest.mark.parametrize("dataset", ["GLBX.MDP3", "XNAS.ITCH", "EQUS.MINI"])
def test_definition_event_timestamp_keeps_its_nanoseconds(samples_dir: Path, any_store_url: str, recipes_dir: Path,
                                                          cli, request: pytest.FixtureRequest, dataset: str) -> None:
    """Issue 4: a definition's ts_event round-trips to the nanosecond in both stores (TimescaleDB's
    timestamptz keeps µs; the exact value lives in ``ts_event_ns``)."""
    path = samples_dir / dataset / "test_data.definition.dbn.zst"
    src = db.DBNStore.from_file(path)
    ref = src.to_df(price_type="fixed", pretty_ts=True, map_symbols=True).reset_index()
    assert ref["ts_event"].iloc[0].value % 1000 != 0  # the sample has sub-µs digits to lose
    res = cli("ingest", "--recipe", recipes_dir / "definitions.yaml", "--from-file", path, "--store", any_store_url)
    assert res.exit_code == 0, res.stderr
    got = hdi.read_definitions(ref["symbol"].iloc[0], src.start.isoformat(), src.end.isoformat(), store=any_store_url)
    assert _values(got, "event_timestamp_utc") == _ns(ref["ts_event"])
