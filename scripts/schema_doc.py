"""Write docs/schema.md from the table definitions (hdi/_tables.py, hdi/store/ledger.py).

    python scripts/schema_doc.py          # rewrite docs/schema.md
    python scripts/schema_doc.py --check  # exit 1 when docs/schema.md is out of date (the tests run this)
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hdi._tables import ROLLS, TABLES  # noqa: E402
from hdi.store.ledger import LEDGER_TABLES  # noqa: E402
from hdi.store.schema import SQL_TYPES  # noqa: E402
from hdi.store.timescale_lean import LAYOUTS  # noqa: E402

HEAD = """# Tables

Generated from `hdi/_tables.py` and `hdi/store/ledger.py` by `python scripts/schema_doc.py`; a test
fails when this file is out of date. Both stores create exactly these tables and columns
(TimescaleDB type / DuckDB type). Every table has a natural key; writing the same rows again adds
nothing. Hypertables (TimescaleDB) are partitioned on the time column with the chunk interval shown;
the Apache-licensed build is enough (no compression or continuous aggregates are used).

Prices are exact `numeric(19,9)` / `DECIMAL(19,9)`. `timestamptz` holds microseconds in
TimescaleDB; tables with sub-microsecond events keep exact nanoseconds in `*_ns` columns, and the
read API rebuilds ns timestamps from them. DuckDB stores `TIMESTAMPTZ_NS`.

Lean tick tables (TimescaleDB, schema version 8): `trades`, `tbbo`, `mbp1`, `mbo`, `mbp10`, `bbo` and
`cbbo` are views with exactly the columns and types below over a physical hypertable `hdi_<name>`
that stores each value once: the `*_ns` int8 columns (the `*_timestamp_utc` columns are computed
from them, floored to the microsecond), `ts_recv_ns` as the integer hypertable dimension (chunks of
the interval shown, in ns), prices as int8 fixed-point (value x 1e9), sides and actions as smallint
codes, and `dataset`, `data_source`, `publisher_id` as one smallint `hdi_src` into `hdi_sources`.
Filter on `ts_recv_ns` (not `received_timestamp_utc`) so that a query on the view reaches only the
chunks of its range. Writes go to `hdi_<name>` through hdi; the views are for reading.
"""


def render() -> str:
    out = [HEAD]
    for title, tables in (("Data", TABLES), ("Ingest ledger", LEDGER_TABLES), ("Research", {ROLLS.name: ROLLS})):
        out.append(f"\n## {title} tables\n")
        for t in tables.values():
            out.append(f"\n### `{t.name}`\n\n{t.doc}\n")
            hyper = f"hypertable on `{t.time_column}`, chunks of {t.chunk_interval}" if t.chunk_interval \
                else "plain table"
            if t.name in LAYOUTS:
                hyper = (f"TimescaleDB: a view over the hypertable `{LAYOUTS[t.name].physical}` on `ts_recv_ns`, "
                         f"chunks of {t.chunk_interval}")
            out.append(f"\n- key: ({', '.join(f'`{k}`' for k in t.key)}); {hyper}\n")
            out.append("\n| column | TimescaleDB | DuckDB | null | meaning |\n|---|---|---|---|---|\n")
            for c in t.columns:
                out.append(f"| `{c.name}` | {SQL_TYPES['timescale'][c.type]} | {SQL_TYPES['duckdb'][c.type]} | "
                           f"{'yes' if c.nullable else ''} | {c.doc} |\n")
    return "".join(out)


def main() -> None:
    path = ROOT / "docs" / "schema.md"
    text = render()
    if "--check" in sys.argv:
        if not path.exists() or path.read_text() != text:
            print(f"{path} is out of date: run python scripts/schema_doc.py", file=sys.stderr)
            sys.exit(1)
        return
    path.write_text(text)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
