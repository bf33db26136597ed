"""Issue 13's schemas end to end through the local gateway: the real databento client downloads
synthetic mbo, mbp-10, bbo, cbbo, status and imbalance data (hdi/testing/synth.py), the shipped recipes
load it into both stores, the readers return every record, a re-run adds nothing, and the gateway's
faults (a truncated stream, 5xx answers) lose or duplicate nothing.
"""

from __future__ import annotations

from pathlib import Path

import databento as db
import numpy as np
import polars as pl
import pytest

import hdi
from hdi import _config as config
from hdi.pipeline import ingest
from hdi.store import open_store

pytestmark = pytest.mark.filterwarnings("ignore:The inplace keyword in DataFrame.set_index")

# (recipe, schema, start, end, symbols, reader)
CASES = [
    ("mbo", "mbo", "2024-03-04T14:00:00Z", "2024-03-04T14:30:00Z", ["CL.c.0", "ES.c.0"], hdi.read_mbo),
    ("mbp10", "mbp-10", "2024-03-04T14:00:00Z", "2024-03-04T14:20:00Z", ["CL.c.0"], hdi.read_mbp10),
    ("bbo_1s", "bbo-1s", "2024-03-04T14:00:00Z", "2024-03-04T15:00:00Z", ["CL.c.0", "SPY"],
     lambda *a, **k: hdi.read_bbo(*a, granularity="1s", **k)),
    ("bbo_1m", "bbo-1m", "2024-03-04", "2024-03-05", ["CL.c.0", "SPY"],
     lambda *a, **k: hdi.read_bbo(*a, granularity="1m", **k)),
    ("status", "status", "2024-03-01", "2024-03-12", ["CL.c.0", "SPY"], hdi.read_status),
]
EQUITY_CASES = [
    ("cbbo_1s", "cbbo-1s", "2024-03-04T14:30:00Z", "2024-03-04T15:30:00Z", "EQUS.MINI", ["SPY"],
     lambda *a, **k: hdi.read_cbbo(*a, granularity="1s", **k)),
    ("cbbo_1m", "cbbo-1m", "2024-03-04", "2024-03-06", "EQUS.MINI", ["SPY"],
     lambda *a, **k: hdi.read_cbbo(*a, granularity="1m", **k)),
    ("imbalance", "imbalance", "2024-03-04", "2024-03-09", "XNAS.ITCH", ["SPY", "QQQ"], hdi.read_imbalance),
    ("mbo", "mbo", "2024-03-04T14:30:00Z", "2024-03-04T14:45:00Z", "XNAS.ITCH", ["NVDA"], hdi.read_mbo),
]


def _raw_count(dataset: str, schema: str) -> int:
    files = sorted((config.cache_dir() / dataset / schema).glob("*.dbn.zst"))
    return sum(len(db.DBNStore.from_file(p).to_ndarray()) for p in files)


def _override(recipe: Path, tmp_path: Path, dataset: str, symbols: list[str]) -> Path:
    """The shipped recipe with one request for ``dataset`` (the shipped ones ask GLBX/OPRA)."""
    text = recipe.read_text()
    head, rest = text.split("  requests:\n", 1)
    rest = rest.split("transform:", 1)[1]
    out = tmp_path / recipe.name
    out.write_text(f"{head}  requests:\n    - {{dataset: {dataset}, stype_in: raw_symbol, symbols: [{', '.join(symbols)}]}}\n"
                   f"transform:{rest}")
    return out


def _check(recipe: Path, start: str, end: str, symbols: list[str], url: str, reader, raw: int | None = None) -> pl.DataFrame:
    first = ingest(recipe, start=start, end=end, symbols=symbols, store=url)
    assert first.ok, [c.error for c in first.chunks]
    assert first.rows_loaded == first.rows_fetched > 0 and first.rows_quarantined == 0
    got = reader(symbols, start, end, store=url)
    assert got.height == first.rows_loaded
    assert set(got["symbol"]) == set(symbols)
    second = ingest(recipe, start=start, end=end, symbols=symbols, store=url)
    assert second.ok and second.rows_loaded == 0 and second.count("skipped") == len(second.chunks)
    forced = ingest(recipe, start=start, end=end, symbols=symbols, store=url, refresh=True)
    assert forced.ok and forced.rows_loaded == 0 and forced.rows_already_present == first.rows_fetched
    assert reader(symbols, start, end, store=url).height == got.height
    return got


@pytest.mark.parametrize("recipe,schema,start,end,symbols,reader", CASES, ids=[c[0] for c in CASES])
def test_recipe_loads_every_record_then_reruns_add_nothing(gateway, any_store_url, recipes_dir, recipe, schema,
                                                            start, end, symbols, reader):
    got = _check(recipes_dir / f"{recipe}.yaml", start, end, symbols, any_store_url, reader)
    downloaded = sum(_raw_count(ds, schema) for ds in ("GLBX.MDP3", "EQUS.MINI", "XNAS.ITCH"))
    assert got.height == downloaded
    if schema == "status":  # the futures' daily break and the weekend close are in the feed
        cl = got.filter(pl.col("symbol") == "CL.c.0")
        assert {"TRADING", "CLOSE", "PRE_OPEN"} <= set(cl["action_name"])
        assert cl["is_short_sell_restricted"].null_count() == cl.height  # DBN '~' (not available)


@pytest.mark.parametrize("recipe,schema,start,end,dataset,symbols,reader", EQUITY_CASES,
                         ids=[f"{c[0]}-{c[4]}" for c in EQUITY_CASES])
def test_equity_schemas_load_every_record(gateway, any_store_url, recipes_dir, tmp_path, recipe, schema, start, end,
                                          dataset, symbols, reader):
    got = _check(_override(recipes_dir / f"{recipe}.yaml", tmp_path, dataset, symbols), start, end, symbols,
                 any_store_url, reader)
    assert got.height == _raw_count(dataset, schema)
    if schema.startswith("cbbo"):
        assert set(got["bid_publisher_id"]) <= {39, 40, 41, 43}
    if schema == "imbalance":
        assert set(got["auction_type"]) == {"O", "C"} and got["ssr_filling_price"].null_count() == got.height


def test_mbo_keeps_byte_identical_records_and_each_order_event(gateway, any_store_url, recipes_dir):
    """The synthetic feed repeats some trades byte for byte (split fills in one packet): both are kept,
    numbered by rec_ordinal; every add has its fill with the same order id."""
    start, end = "2024-03-04T14:00:00Z", "2024-03-04T18:00:00Z"
    ingest(recipes_dir / "mbo.yaml", start=start, end=end, symbols="ES.c.0", store=any_store_url)
    got = hdi.read_mbo("ES.c.0", start, end, store=any_store_url)
    raw = np.concatenate([db.DBNStore.from_file(p).to_ndarray()
                          for p in sorted((config.cache_dir() / "GLBX.MDP3" / "mbo").glob("*.dbn.zst"))])
    assert got.height == len(raw)
    assert len(raw) - len(np.unique(raw)) > 0  # byte-identical records are in the feed, and all were kept
    packets = raw[["instrument_id", "ts_recv", "publisher_id"]]
    assert got.filter(pl.col("rec_ordinal") > 0).height == len(raw) - len(np.unique(packets))
    # a packet's records come back in stream order: each trade before its fill (the order synth sends them)
    recv = got.get_column("ts_recv_ns").to_numpy()
    assert (np.diff(recv) >= 0).all()
    assert got.get_column("action").to_list() == [a.decode() for a in raw["action"]]
    adds = got.filter(pl.col("action") == "A").select("order_id").sort("order_id")
    fills = got.filter(pl.col("action") == "F").select("order_id").sort("order_id")
    assert adds.equals(fills)


def test_mbp10_survives_a_truncated_stream_and_server_errors(gateway, any_store_url, recipes_dir):
    start, end = "2024-03-04T14:00:00Z", "2024-03-04T14:10:00Z"
    gateway.faults.truncate(times=1)
    gateway.faults.status("timeseries.get_range", 502, times=1)
    run = ingest(recipes_dir / "mbp10.yaml", start=start, end=end, symbols="ES.c.0", store=any_store_url)
    assert run.ok, [c.error for c in run.chunks]
    raw = _raw_count("GLBX.MDP3", "mbp-10")
    assert run.rows_loaded == raw > 0
    st = open_store(any_store_url)
    from hdi._tables import DATA_TABLES

    key = ", ".join(DATA_TABLES["mbp10"].key)
    assert int(st.query(f"SELECT count(*) - (SELECT count(*) FROM (SELECT DISTINCT {key} FROM mbp10) d) AS n "
                        "FROM mbp10").item()) == 0
    assert int(st.query("SELECT count(*) AS n FROM mbp10").item()) == raw
