"""docs/schemas.md agrees with the code: every stored schema, its table, key, recipe and query name."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import hdi
from hdi._tables import DATA_TABLES, DATABENTO_SCHEMAS, SCHEMA_TABLE
from hdi.cli.app import SCHEMAS as QUERY_SCHEMAS
from hdi.recipe.load import load_recipe

ROOT = Path(__file__).resolve().parents[1]
DOC = (ROOT / "docs" / "schemas.md").read_text()
ROWS = [line for line in DOC.splitlines() if line.startswith("| `")]


def _row(schema: str) -> list[str]:
    for line in ROWS:
        cells = [c.strip() for c in line.strip("|").split("|")]
        if f"`{schema}`" in re.findall(r"`[^`]+`", cells[0]):
            return cells
    raise AssertionError(f"docs/schemas.md has no row for schema {schema}")


@pytest.mark.parametrize("schema", list(SCHEMA_TABLE))
def test_every_stored_schema_has_a_row_with_its_table_key_and_a_recipe_that_loads(schema: str) -> None:
    cells = _row(schema)
    table = DATA_TABLES[SCHEMA_TABLE[schema]]
    assert cells[1] == f"`{table.name}`"
    assert cells[2] == ", ".join(table.key)
    recipes = [ROOT / "recipes" / name.strip("`") for name in re.findall(r"`[a-z0-9_]+\.yaml`", cells[3])]
    assert any(load_recipe(r).source.schema == schema for r in recipes), recipes
    assert all(hasattr(hdi, name) for name in re.findall(r"hdi\.(read_[a-z0-9]+)", cells[4]))
    assert schema in QUERY_SCHEMAS


def test_every_databento_schema_not_stored_is_named_as_such() -> None:
    not_stored = [s for s in DATABENTO_SCHEMAS if s not in SCHEMA_TABLE]
    line = next(x for x in DOC.splitlines() if x.startswith("Databento schemas hdi does **not** store"))
    assert sorted(re.findall(r"`([a-z0-9-]+)`", line)) == sorted(not_stored)


def test_query_for_a_databento_schema_hdi_does_not_store_lists_the_supported_ones_without_suggestion(cli) -> None:
    res = cli("query", "--schema", "tcbbo", "--symbols", "SPY", "--start", "2024-01-01", "--end", "2024-01-02")
    assert res.exit_code != 0
    assert res.stderr.strip().splitlines() == [
        "error: --schema 'tcbbo' is not allowed (a Databento schema hdi does not store; docs/schemas.md lists the "
        f"stored ones); allowed: {', '.join(QUERY_SCHEMAS)}"]
