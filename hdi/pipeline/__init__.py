"""The one package that wires the stages: source -> decode -> recipe -> validate -> store.

``ingest`` plans a recipe's chunks (time periods x symbol groups, or one chunk per DBN file),
skips the chunks the ledger shows done by the same recipe, and loads each of the others in one
store transaction together with its symbology and its ledger row, streaming bounded batches:

    fetch (retried, cached) -> decode batch -> recipe -> split good/bad -> quarantine bad -> write good

Good rows always commit with the chunk; bad rows go to quarantine. The recipe's
``max_failure_rate`` is judged over the run and per symbol (:mod:`hdi.validate.budget`): over it,
the run reports the symbols (``report.budget``) and ends ``over_budget``, unless the recipe says
``on_budget_exceeded: rollback`` (a chunk above the rate is then rolled back and marked failed).
A failed chunk never stops the others; the run fails when any chunk failed, and a re-run retries
exactly those.

Modules: :mod:`~hdi.pipeline.params` (the run's frozen parameters), :mod:`~hdi.pipeline.plan`
(the recipe narrowed by them, the run's source, the ledger's done chunks),
:mod:`~hdi.pipeline.update` (``--update``'s ranges), :mod:`~hdi.pipeline.loader` (the chunk
loader), :mod:`~hdi.pipeline.run` (``ingest()``, which only wires them).
"""

from __future__ import annotations

from pathlib import Path

from hdi.pipeline.loader import BATCH_ROWS, regroup
from hdi.pipeline.params import RunParams
from hdi.pipeline.plan import compile_for
from hdi.pipeline.run import ingest, new_run_id
from hdi.recipe.compile import CompiledRecipe
from hdi.recipe.load import load_recipe

__all__ = ["BATCH_ROWS", "RunParams", "check_recipe", "ingest", "new_run_id", "regroup"]


def check_recipe(path: str | Path) -> CompiledRecipe:
    """Load and compile a recipe against the decoder's schema (what ``hdi recipes validate`` runs)."""
    return compile_for(load_recipe(path))
