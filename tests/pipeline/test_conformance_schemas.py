"""Conformance for issue 13's schemas: every real Databento sample of mbo, mbp-10, bbo-1s/1m, cbbo-1s/1m,
status and imbalance (GLBX, XNAS, EQUS, ICE's IFEU/NDEX and OPRA) goes through ``hdi ingest --from-file``
(the real CLI, the shipped recipe) into both stores and reads back equal to Databento's own decoding,
field by field; ingesting it again adds no row.

The reference is ``DBNStore.from_file(p).to_df(price_type="fixed", pretty_ts=True, map_symbols=True)``.
Each of its fields is compared with the stored column it lands in (``bid_px_00`` -> ``bid_price`` or
``bid_price_00``, ``ts_recv`` -> ``received_timestamp_utc`` and ``ts_recv_ns``, ...): prices as exact
decimals (fixed / 1e9, UNDEF_PRICE as null), timestamps as integer nanoseconds (UNDEF as null), sides as
buy/sell/null, DBN's "not available" ``~`` as null.
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

RECIPES = {"mbo": "mbo.yaml", "mbp-10": "mbp10.yaml", "bbo-1s": "bbo_1s.yaml", "bbo-1m": "bbo_1m.yaml",
           "cbbo-1s": "cbbo_1s.yaml", "cbbo-1m": "cbbo_1m.yaml", "status": "status.yaml",
           "imbalance": "imbalance.yaml"}
# Every sample of these schemas INDEX.md lists (20 files).
CASES = ([(ds, s) for ds in ("GLBX.MDP3", "XNAS.ITCH", "IFEU.IMPACT", "NDEX.IMPACT") for s in ("mbo", "mbp-10")]
         + [(ds, s) for ds in ("GLBX.MDP3", "EQUS.MINI", "IFEU.IMPACT", "NDEX.IMPACT") for s in ("bbo-1s", "bbo-1m")]
         + [("OPRA.PILLAR", "cbbo-1s"), ("OPRA.PILLAR", "cbbo-1m"), ("GLBX.MDP3", "status"),
            ("XNAS.ITCH", "imbalance")])
CLASSES = {"mbo": dbn.MBOMsg, "mbp-10": dbn.MBP10Msg, "bbo-1s": dbn.BBOMsg, "bbo-1m": dbn.BBOMsg,
           "cbbo-1s": dbn.CBBOMsg, "cbbo-1m": dbn.CBBOMsg, "status": dbn.StatusMsg, "imbalance": dbn.ImbalanceMsg}
# the columns the recipe numbers rec_ordinal over (records equal in them, in stream order)
ORDINAL_OVER = {"mbo": ("instrument_id", "ts_recv", "publisher_id"),
                "mbp-10": ("instrument_id", "ts_recv"), "status": ("instrument_id", "ts_recv", "publisher_id"),
                "imbalance": ("instrument_id", "ts_recv", "publisher_id")}
SIDES = {"B": "buy", "A": "sell", "N": None}
TRI_STATE = ("is_trading", "is_quoting", "is_short_sell_restricted")


def _none(v: object) -> bool:
    return v is None or v is pd.NaT or (isinstance(v, float) and v != v)


def _stored_name(schema: str, field: str) -> str:
    """The column a DBN field is stored in."""
    if field.startswith(("bid_", "ask_")) and field[-3] == "_":  # bid_px_00 ...
        side, what, level = field.split("_")
        what = {"px": "price", "sz": "size", "ct": "count", "pb": "publisher_id"}[what]
        return f"{side}_{what}_{level}" if schema == "mbp-10" else f"{side}_{what}"
    return field


def _expected(schema: str, ref: pd.DataFrame, dataset: str) -> dict[str, list]:
    cls = CLASSES[schema]
    n = len(ref)
    out: dict[str, list] = {"symbol": ref["symbol"].tolist(), "raw_symbol": ref["symbol"].tolist(),
                            "dataset": [dataset] * n, "data_source": ["databento"] * n}
    for field in ref.columns:
        if field in ("rtype", "symbol"):
            continue
        values = ref[field].tolist()
        if field in cls._timestamp_fields:
            ns = [None if _none(v) else pd.Timestamp(v).value for v in values]
            name = {"ts_event": "event_timestamp_utc", "ts_recv": "received_timestamp_utc"}.get(field, field)
            out[name] = ns
            out[{"ts_event": "ts_event_ns", "ts_recv": "ts_recv_ns"}.get(field, f"{field}_ns")] = ns
        elif field in cls._price_fields:
            out[_stored_name(schema, field)] = [None if _none(v) or int(v) == dbn.UNDEF_PRICE
                                                else Decimal(int(v)).scaleb(-9) for v in values]
        elif field in ("side", "unpaired_side"):
            out[field] = [SIDES[v] for v in values]
        elif field in TRI_STATE:
            out[field] = [None if v == "~" else v for v in values]
        elif isinstance(values[0], str):
            out[_stored_name(schema, field)] = [None if v == "" else v for v in values]
        else:
            out[_stored_name(schema, field)] = [int(v) for v in values]
    if schema == "status":
        out["action_name"] = [dbn.StatusAction(int(a)).name for a in ref["action"]]
    if schema in ORDINAL_OVER:
        seen: dict[tuple, int] = {}
        ordinals = []
        for row in zip(*(ref[c].tolist() for c in ORDINAL_OVER[schema]), strict=True):
            ordinals.append(seen.get(row, 0))
            seen[row] = ordinals[-1] + 1
        out["rec_ordinal"] = ordinals
    if schema[-3:] in ("-1s", "-1m"):
        out["granularity"] = [schema[-2:]] * n
    return out


def _values(frame: pl.DataFrame, column: str) -> list:
    s = frame.get_column(column)
    return s.dt.epoch("ns").to_list() if isinstance(s.dtype, pl.Datetime) else s.to_list()


def _read(schema: str, symbol: str, start: str, end: str, store: str) -> pl.DataFrame:
    if schema.startswith(("bbo-", "cbbo-")):
        reader = hdi.read_bbo if schema.startswith("bbo-") else hdi.read_cbbo
        return reader(symbol, start, end, granularity=schema[-2:], store=store, prices="decimal")
    if schema == "status":
        return hdi.read_status(symbol, start, end, store=store)
    reader = {"mbo": hdi.read_mbo, "mbp-10": hdi.read_mbp10, "imbalance": hdi.read_imbalance}[schema]
    return reader(symbol, start, end, store=store, prices="decimal")


def _last_run(url: str) -> dict:
    runs = open_store(url).runs(limit=1)
    assert runs.height == 1
    return runs.row(0, named=True)


@pytest.mark.parametrize("dataset,schema", CASES, ids=[f"{d}-{s}" for d, s in CASES])
def test_sample_ingested_by_cli_reads_back_equal_to_databento_decoding(
        samples_dir: Path, any_store_url: str, recipes_dir: Path, cli, dataset: str, schema: str) -> None:
    path = samples_dir / dataset / f"test_data.{schema}.dbn.zst"
    assert path.is_file(), f"sample {path} is listed in INDEX.md but missing"
    src = db.DBNStore.from_file(path)
    assert (src.schema, src.dataset) == (schema, dataset)
    ref = src.to_df(price_type="fixed", pretty_ts=True, map_symbols=True).reset_index()
    symbol = ref["symbol"].iloc[0]
    assert len(ref) > 0 and set(ref["symbol"]) == {symbol}
    recipe = recipes_dir / RECIPES[schema]

    res = cli("ingest", "--recipe", recipe, "--from-file", path, "--store", any_store_url)
    assert res.exit_code == 0, res.stderr
    first = _last_run(any_store_url)
    assert (first["status"], first["rows_fetched"], first["rows_loaded"], first["rows_quarantined"]) == \
        ("succeeded", len(ref), len(ref), 0)

    start, end = src.start.isoformat(), src.end.isoformat()
    got = _read(schema, symbol, start, end, any_store_url)
    want = _expected(schema, ref, dataset)
    assert got.height == len(ref)
    assert sorted(got.columns) == sorted(want)
    # rows come back in the file's order: by ts_recv, and a packet's records (same ts_recv) as sent
    for column, values in want.items():
        assert _values(got, column) == values, column

    # Re-ingest adds no row: the ledger skips the file; forced, every row is already there.
    again = cli("ingest", "--recipe", recipe, "--from-file", path, "--store", any_store_url)
    assert again.exit_code == 0, again.stderr
    assert (_last_run(any_store_url)["rows_loaded"], _last_run(any_store_url)["chunks_skipped"]) == (0, 1)
    forced = cli("ingest", "--recipe", recipe, "--from-file", path, "--store", any_store_url, "--refresh")
    assert forced.exit_code == 0, forced.stderr
    run = _last_run(any_store_url)
    assert (run["rows_fetched"], run["rows_loaded"], run["rows_already_present"]) == (len(ref), 0, len(ref))
    assert _read(schema, symbol, start, end, any_store_url).height == len(ref)


QUERY_CASES = [("GLBX.MDP3", "mbo"), ("XNAS.ITCH", "mbp-10"), ("EQUS.MINI", "bbo-1s"), ("IFEU.IMPACT", "bbo-1m"),
               ("OPRA.PILLAR", "cbbo-1s"), ("OPRA.PILLAR", "cbbo-1m"), ("GLBX.MDP3", "status"),
               ("XNAS.ITCH", "imbalance")]


@pytest.mark.parametrize("dataset,schema", QUERY_CASES, ids=[f"{d}-{s}" for d, s in QUERY_CASES])
def test_hdi_query_schema_reads_each_sample_back(samples_dir: Path, tmp_path: Path, recipes_dir: Path, cli,
                                                 dataset: str, schema: str) -> None:
    """``hdi query --schema <databento name>`` for each new schema: every record, as CSV."""
    path = samples_dir / dataset / f"test_data.{schema}.dbn.zst"
    src = db.DBNStore.from_file(path)
    store = f"duckdb://{tmp_path / 's.duckdb'}"
    assert cli("ingest", "--recipe", recipes_dir / RECIPES[schema], "--from-file", path, "--store", store).exit_code == 0
    symbol = src.symbols[0]
    res = cli("query", "--schema", schema, "--symbols", symbol, "--start", src.start.isoformat(), "--end",
              src.end.isoformat(), "--store", store, "--format", "csv", "--prices", "decimal")
    assert res.exit_code == 0, res.stderr
    got = pl.read_csv(res.stdout.encode(), infer_schema=False)
    assert got.height == len(src.to_ndarray()) and set(got["symbol"]) == {symbol}
    assert got.columns[:2] == ["symbol", "raw_symbol"]
