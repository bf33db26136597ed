"""Restatements (issue 15.2): what replacing a restated day costs against loading it in the first place.

Loads five days of one future's trades from the local gateway (in process), restates one day
(one trade removed, one price changed) and runs ``ingest(restatements=True)``: one
``get_dataset_condition`` call, that day's download, ``delete_days`` and the new rows in one
transaction. Prints the first load, the restatement run and a plain re-run (nothing to do: the
ledger and the conditions call only), per store, and checks the stored rows equal a clean ingest.

    .venv/bin/python benchmarks/restatements.py [--timescale URL]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import tempfile
import time
from pathlib import Path

from _common import API_KEY, ROOT, fresh_schema, load_average, result, timescale_url


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--timescale", default=None)
    args = ap.parse_args()
    from hdi.pipeline import ingest
    from hdi.store import close_all, open_store
    from hdi.testing.gateway import Gateway

    recipe = ROOT / "recipes" / "trades.yaml"
    kw = {"start": "2026-01-05", "end": "2026-01-10", "symbols": "CL.c.0"}
    with tempfile.TemporaryDirectory(prefix="hdi-restate-") as tmp, Gateway(
            now=dt.datetime(2026, 1, 15, tzinfo=dt.UTC)) as gw:
        os.environ.update(gw.env(), DATABENTO_API_KEY=API_KEY, HDI_DATA_DIR=str(Path(tmp) / "data"))
        stores = [("duckdb", f"duckdb://{tmp}/s.duckdb", None)]
        ts = timescale_url(args.timescale)
        ctx = fresh_schema(ts) if ts else None
        if ctx is not None:
            url, _schema = ctx.__enter__()
            stores.append(("timescale", url, ctx))
        day = dt.date(2026, 1, 5)
        for name, url, _ in stores:
            day += dt.timedelta(days=1)  # a day not restated yet (the gateway is shared)
            t0 = time.perf_counter()
            first = ingest(recipe, store=url, refresh=True, **kw)
            t_first = time.perf_counter() - t0
            gw.restate("GLBX.MDP3", day, remove=[0], reprice=[(3, 1)])
            t0 = time.perf_counter()
            rest = ingest(recipe, store=url, restatements=True, **kw)
            t_rest = time.perf_counter() - t0
            t0 = time.perf_counter()
            idle = ingest(recipe, store=url, restatements=True, **kw)
            t_idle = time.perf_counter() - t0
            close_all()
            clean = f"duckdb://{tmp}/clean-{name}.duckdb"
            ingest(recipe, store=clean, refresh=True, **kw)
            same = open_store(url).select("trades").drop("data_source").sort(
                "instrument_id", "ts_recv_ns", "sequence", "rec_ordinal").equals(
                open_store(clean).select("trades").drop("data_source").sort(
                    "instrument_id", "ts_recv_ns", "sequence", "rec_ordinal"))
            rows_day = rest.rows_loaded
            print(f"{name}: first load of 5 days {first.rows_loaded:,} trades in {t_first:.2f} s; restated day "
                  f"({rows_day:,} trades) replaced in {t_rest:.2f} s; nothing to do in {t_idle:.2f} s; "
                  f"rows == clean ingest: {same}; load average {load_average()}")
            result(f"restatement replace one day ({name})", round(t_rest, 3), "s", "-", same,
                   f"{rows_day:,} trades; first load of 5 days {t_first:.2f} s; idle re-run {t_idle:.2f} s")
            assert idle.count("done") == 0
        for _, _, c in stores:
            if c is not None:
                c.__exit__(None, None, None)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
