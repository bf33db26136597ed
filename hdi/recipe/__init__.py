"""Recipes: YAML files that say what to fetch, how to turn records into rows, and where they go.

    from hdi.recipe import load_recipe, compile_recipe, recipe_hash
    recipe = load_recipe("recipes/ohlcv_1d.yaml")           # RecipeError with file:line if bad
    compiled = compile_recipe(recipe, input_schema)           # column checks at the step's line
    rows = compiled.fn(frame.lazy()).collect()                # the target table's columns

Every key and op is documented in docs/recipes.md.
"""

from __future__ import annotations

# the op modules register their ops (hdi.recipe.registry.OPS) on import
from hdi.recipe import ops, ops_columns, ops_market  # noqa: F401
from hdi.recipe.compile import CompiledRecipe, compile_recipe, recipe_hash
from hdi.recipe.load import load_recipe
from hdi.recipe.model import Chunk, Recipe, Request, Source, Step, Target, ValidateOptions

__all__ = [
    "Chunk", "CompiledRecipe", "Recipe", "Request", "Source", "Step", "Target", "ValidateOptions",
    "compile_recipe", "load_recipe", "recipe_hash",
]
