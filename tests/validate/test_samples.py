"""Real Databento samples, decoded and transformed by the shipped recipes, validate cleanly."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from hdi._tables import DATA_TABLES
from hdi.decode.dbn import decode_file
from hdi.recipe.compile import compile_recipe
from hdi.recipe.load import load_recipe
from hdi.source.files import open_dbn
from hdi.validate.split import split

ROOT = Path(__file__).resolve().parents[2]
RECIPES = {"ohlcv-1s": "ohlcv_1s", "ohlcv-1m": "ohlcv_1m", "ohlcv-1h": "ohlcv_1h", "ohlcv-1d": "ohlcv_1d",
           "trades": "trades", "tbbo": "tbbo", "mbp-1": "mbp1", "statistics": "statistics",
           "definition": "definitions"}
DATASETS = ("EQUS.MINI", "GLBX.MDP3", "IFEU.IMPACT", "NDEX.IMPACT", "OPRA.PILLAR", "XNAS.ITCH")


NO_SAMPLE = {("EQUS.MINI", "statistics"), ("XNAS.ITCH", "statistics")}


def _cases() -> list:
    cases = []
    for schema in RECIPES:
        for dataset in DATASETS:
            if (dataset, schema) in NO_SAMPLE:
                continue
            marks = [pytest.mark.samples]
            cases.append(pytest.param(dataset, schema, marks=marks, id=f"{dataset}-{schema}"))
    return cases


@pytest.mark.parametrize(("dataset", "schema"), _cases())
def test_samples_pass_validation(samples_dir, dataset, schema):
    path = samples_dir / dataset / f"test_data.{schema}.dbn.zst"
    if not path.exists():
        pytest.fail(f"sample {path} is missing")
    recipe = load_recipe(ROOT / "recipes" / f"{RECIPES[schema]}.yaml")
    frame = pl.concat(list(decode_file(open_dbn(path)))).with_columns(pl.lit(dataset).alias("dataset"))
    compiled = compile_recipe(recipe, frame.schema)

    result = split(compiled.fn(frame.lazy()).collect(), compiled.table.name)

    assert (result.rows_bad, result.reasons) == (0, {})
    assert result.rows_good == frame.height > 0
    assert result.good.schema == pl.Schema(DATA_TABLES[compiled.table.name].polars_schema)
