"""What :meth:`hdi.store.base.Store.check` compares on both backends (issue 8, item 6).

Before a run's first write, a store is checked where the run will write: the schema version it
records, and for each table the run touches, that it exists when the migrations say it should,
with exactly hdi's columns and types (plus, per backend, the hypertable and key index in
TimescaleDB, and every data block of the table read back in DuckDB). A damaged store stops the run
with one line naming the store, the table and what is wrong, before anything is written.
"""

from __future__ import annotations

from collections.abc import Iterable

from hdi._tables import Table
from hdi.errors import StoreError
from hdi.store.schema import SCHEMA_VERSION

FIX = ("nothing was written; restore the store from a backup, or point --store (HDI_STORE) at a new one "
       "and ingest again")


def damaged(where: str, why: str) -> StoreError:
    """The one-line error for a damaged store."""
    return StoreError(f"{where} is damaged: {why}; {FIX}")


def version_problem(where: str, versions: Iterable[int]) -> StoreError | None:
    """A store migrated by a newer hdi than this one cannot be written safely."""
    newer = sorted(v for v in versions if v > SCHEMA_VERSION)
    if newer:
        return StoreError(f"{where} has schema version {newer[-1]}, written by a newer hdi (this one knows "
                          f"versions up to {SCHEMA_VERSION}); nothing was written: upgrade hdi")
    return None


def column_problem(table: Table, found: dict[str, str], expected: dict[str, str]) -> str | None:
    """Why a table's columns (name -> type, as the database names types) are not hdi's, or None."""
    missing = [c for c in expected if c not in found]
    if missing:
        return f"table '{table.name}' lacks column(s) {', '.join(missing)}"
    extra = [c for c in found if c not in expected]
    if extra:
        return f"table '{table.name}' has column(s) hdi does not know: {', '.join(extra)}"
    wrong = [f"{c} is {found[c]}, not {t}" for c, t in expected.items() if found[c].lower() != t.lower()]
    if wrong:
        return f"table '{table.name}': {'; '.join(wrong)}"
    return None
