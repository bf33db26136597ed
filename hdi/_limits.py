"""Limits on what a user may ask for, shared by the recipe checks and the read API.

Kept apart from :mod:`hdi.recipe.checks` so that a read (``hdi query``, ``hdi.read_bars``) does
not import the recipe engine (issue 17.4: the CLI's import cost).
"""

from __future__ import annotations

MAX_SYMBOLS_PER_REQUEST = 2000  # Databento's documented cap per request
MAX_INSTRUMENT_ID = 4_294_967_295  # DBN instrument ids are uint32
SYMBOL_MAX_LEN = 70


def shown(value: str, width: int = 40) -> str:
    """A long value quoted and cut for a message: ``'ABCDEF...'``."""
    return repr(value if len(value) <= width else value[:width] + "...")
