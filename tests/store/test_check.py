"""Issue 8, item 6: ``Store.check`` finds a damaged store before a run writes to it (both stores).

Each case damages a real store the way it happens (a DuckDB file cut short or with a block
overwritten, a table or column or index dropped by hand, a store migrated by a newer hdi) and
asserts the one-line error naming the table and what is wrong; an intact store and a store nothing
was written to yet pass, and the check writes nothing.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from hdi.errors import StoreError
from hdi.store import close_all, open_store

RUN_TABLES = ["ohlcv", "symbology", "ingest_chunks", "ingest_runs", "ingest_days"]


def _filled(url: str, make_bars, make_symbology) -> None:
    """A store with bars, symbology and a ledger run, closed (DuckDB: checkpointed to the file)."""
    from hdi.store.ledger import RunRecord

    st = open_store(url)
    st.write("ohlcv", make_bars([{"instrument_id": i, "bar_timestamp_utc": f"2024-{m:02d}-{d:02d}", "volume": i * d}
                                 for i in range(1, 21) for m in range(1, 13) for d in range(1, 29)]),
             symbology=make_symbology([("CL.c.0", 1, "2024-01-01", "2025-01-01")]))
    st.save_run(RunRecord(run_id="r1", recipe="x", recipe_hash="h", command="hdi ingest", params="{}"))
    close_all()


def _sql(url: str, *statements: str) -> None:
    """Damage by hand, outside hdi."""
    close_all()
    if url.startswith("iceberg://"):
        _lake_sql(url, *statements)
    elif url.startswith("duckdb://"):
        import duckdb

        con = duckdb.connect(url.removeprefix("duckdb://"))
        try:
            for s in statements:
                con.execute(s)
        finally:
            con.close()
    else:
        import adbc_driver_postgresql.dbapi as pg

        with pg.connect(url, autocommit=True) as conn, conn.cursor() as cur:
            for s in statements:
                cur.execute(s)


def _lake_sql(url: str, *statements: str) -> None:
    """The same damage done to a lake store: its ledger tables (symbology, migrations) by SQLite, its
    Iceberg tables through pyiceberg's catalog (a column dropped by schema evolution; a table
    replaced by one whose column has another type)."""
    import sqlite3

    from pyiceberg.catalog import load_catalog

    from hdi.store.iceberg import LAKE_TABLES, iceberg_schema, parse_url

    cfg = parse_url(url)
    catalog = load_catalog(cfg.catalog, **cfg.properties)
    for s in statements:
        words = s.split()
        if words[2] in LAKE_TABLES or (words[0] == "ALTER" and words[2] in LAKE_TABLES):
            name = f"{cfg.namespace}.{words[2]}"
            if words[3:5] == ["DROP", "COLUMN"]:
                with catalog.load_table(name).update_schema() as update:
                    update.delete_column(words[5])
            elif words[3:5] == ["ALTER", "COLUMN"]:
                from pyiceberg.schema import Schema
                from pyiceberg.types import IntegerType, NestedField

                fields = [NestedField(f.field_id, f.name, IntegerType() if f.name == words[5] else f.field_type,
                                      required=f.required) for f in iceberg_schema(LAKE_TABLES[words[2]]).fields]
                catalog.drop_table(name)
                catalog.create_table(name, Schema(*fields))
            else:
                raise AssertionError(s)
        else:
            con = sqlite3.connect(cfg.ledger)
            con.execute(s)
            con.commit()
            con.close()


def _refused(url: str, pattern: str) -> str:
    close_all()
    with pytest.raises(StoreError) as info:
        open_store(url).check(RUN_TABLES)
    msg = info.value.message
    assert "\n" not in msg and "nothing was written" in msg, msg
    assert re.search(pattern, msg), msg
    return msg


def test_an_intact_store_passes(any_store_url, make_bars, make_symbology):
    _filled(any_store_url, make_bars, make_symbology)
    open_store(any_store_url).check(RUN_TABLES)
    open_store(any_store_url).check(["trades", "ingest_chunks"])  # tables not created yet are fine too


def test_a_store_nothing_was_written_to_passes_and_stays_untouched(any_store_url):
    open_store(any_store_url).check(RUN_TABLES)
    if any_store_url.startswith("duckdb://"):
        assert not Path(any_store_url.removeprefix("duckdb://")).exists()
    elif any_store_url.startswith("iceberg://"):
        assert not Path(any_store_url.removeprefix("iceberg://")).exists()
    else:
        assert not open_store(any_store_url).has_table("ingest_runs")


def test_an_unknown_table_name_is_refused(any_store_url):
    with pytest.raises(StoreError, match="unknown table 'nope'"):
        open_store(any_store_url).check(["nope"])


def test_a_dropped_column_is_found(any_store_url, make_bars, make_symbology):
    _filled(any_store_url, make_bars, make_symbology)
    _sql(any_store_url, "ALTER TABLE ohlcv DROP COLUMN vwap")
    _refused(any_store_url, r"is damaged: table 'ohlcv' lacks column\(s\) vwap")


def test_a_changed_column_type_is_found(any_store_url, make_bars, make_symbology):
    _filled(any_store_url, make_bars, make_symbology)
    _sql(any_store_url, "ALTER TABLE ohlcv ALTER COLUMN volume TYPE integer")
    _refused(any_store_url, r"table 'ohlcv': volume is (INTEGER|integer|int), not (BIGINT|bigint|long)")


def test_a_dropped_table_is_found(any_store_url, make_bars, make_symbology):
    _filled(any_store_url, make_bars, make_symbology)
    _sql(any_store_url, "DROP TABLE symbology")
    _refused(any_store_url, r"table 'symbology' is missing although migration \d+ is recorded as applied")


def test_a_store_of_a_newer_hdi_is_refused(any_store_url, make_bars, make_symbology):
    _filled(any_store_url, make_bars, make_symbology)
    _sql(any_store_url, "INSERT INTO hdi_schema_migrations (version) VALUES (99)")
    _refused(any_store_url, r"has schema version 99, written by a newer hdi .* upgrade hdi")


# ------------------------------------------------------------------------------ DuckDB files
def _duck(tmp_path: Path, make_bars, make_symbology) -> tuple[str, Path]:
    url = f"duckdb://{tmp_path / 'store.duckdb'}"
    _filled(url, make_bars, make_symbology)
    return url, tmp_path / "store.duckdb"


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_duckdb_file_cut_in_half_is_found_without_writing(tmp_path, make_bars, make_symbology):
    url, path = _duck(tmp_path, make_bars, make_symbology)
    with open(path, "r+b") as f:
        f.truncate(path.stat().st_size // 2)
    before = _digest(path)
    _refused(url, r"DuckDB store .* is damaged: (the file is [\d,]+ bytes but table '\w+' has data up to byte "
                  r"[\d,]+: it was cut short|.*Could not read)")
    close_all()
    assert _digest(path) == before


def test_a_duckdb_block_overwritten_in_the_middle_is_found(tmp_path, make_bars, make_symbology):
    """Not cut short, so only reading the blocks back (checksums) finds it: 16 bytes inverted inside
    each of the table's segments in turn."""
    import duckdb

    url, path = _duck(tmp_path, make_bars, make_symbology)
    con = duckdb.connect(str(path), read_only=True)
    segments = con.execute("SELECT DISTINCT block_id, block_offset FROM pragma_storage_info('ohlcv') "
                           "WHERE block_id >= 0 ORDER BY ALL").fetchall()
    block_size = con.execute("SELECT block_size FROM pragma_database_size()").fetchone()[0]
    con.close()
    assert segments
    pristine = path.read_bytes()
    for block, offset in segments:
        data = bytearray(pristine)
        at = 3 * 4096 + block * block_size + 8 + offset + 8  # past the block's checksum, into the segment
        data[at:at + 16] = bytes(b ^ 0xFF for b in data[at:at + 16])
        path.write_bytes(bytes(data))
        _refused(url, r"DuckDB store .* is damaged: .*(checksum|Corrupt)")
    path.write_bytes(pristine)
    close_all()
    open_store(url).check(RUN_TABLES)


def test_a_duckdb_file_that_is_not_a_database_is_one_line(tmp_path):
    path = tmp_path / "store.duckdb"
    path.write_bytes(b"not a database" * 1000)
    close_all()
    with pytest.raises(StoreError) as info:
        open_store(f"duckdb://{path}").check(RUN_TABLES)
    assert "\n" not in info.value.message and str(path) in info.value.message


# ------------------------------------------------------------------------------ TimescaleDB
@pytest.mark.timescale
def test_a_lost_key_index_is_found(timescale_schema_url, make_bars, make_symbology):
    _filled(timescale_schema_url, make_bars, make_symbology)
    _sql(timescale_schema_url, "DROP INDEX hdi_ohlcv_key")
    _refused(timescale_schema_url, r"table 'ohlcv' has lost its unique key index hdi_ohlcv_key")


@pytest.mark.timescale
def test_a_table_that_is_no_longer_a_hypertable_is_found(timescale_schema_url, make_bars, make_symbology):
    from hdi._tables import TRADES
    from hdi.store.timescale_lean import LAYOUTS, convert_sql, view_sql

    _filled(timescale_schema_url, make_bars, make_symbology)
    # the lean trades table (migration 8) rebuilt as a plain table behind its view
    _sql(timescale_schema_url, "DROP VIEW trades", "DROP TABLE hdi_trades", convert_sql(TRADES)[0],
         view_sql(LAYOUTS["trades"]), convert_sql(TRADES)[-1])
    close_all()
    with pytest.raises(StoreError, match=r"table 'hdi_trades' \(behind 'trades'\) is not a hypertable"):
        open_store(timescale_schema_url).check(["trades"])


def test_a_lake_data_file_gone_missing_is_found(tmp_path, make_bars, make_symbology):
    """A lake loses files (a lifecycle rule, a hand-run cleanup): the check names the file."""
    url = f"iceberg://{tmp_path / 'lake'}"
    _filled(url, make_bars, make_symbology)
    victim = sorted((tmp_path / "lake" / "warehouse").rglob("*.parquet"))[3]
    victim.unlink()
    msg = _refused(url, r"table 'ohlcv' lists data file file://.*\.parquet, which is missing")
    assert victim.name in msg
