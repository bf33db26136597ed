"""hdi (Hist_Data_Ingestor): Databento historical market data into validated, queryable tables.

The public API is small and cheap to import; heavy libraries load on first use::

    import hdi
    bars = hdi.read_bars("CL.c.0", "2024-01-01", "2024-02-01")            # Polars frame
    trades = hdi.read_trades(["ESH5"], "2024-03-01", "2024-03-02", store="postgresql://...")
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hdi.errors import HdiError

__all__ = [
    "HdiError", "read_bars", "read_trades", "read_tbbo", "read_mbp1", "read_statistics",
    "read_definitions", "read_mbo", "read_mbp10", "read_bbo", "read_cbbo", "read_status", "read_imbalance",
    "ingest", "status", "close", "quarantine_list", "quarantine_show", "quarantine_replay",
    "read_continuous", "rolls", "contract_chain", "hold",
]
__version__ = "0.1.0"

_LAZY = {
    "read_bars": "hdi._query", "read_trades": "hdi._query", "read_tbbo": "hdi._query",
    "read_mbp1": "hdi._query", "read_statistics": "hdi._query", "read_definitions": "hdi._query",
    "read_mbo": "hdi._query", "read_mbp10": "hdi._query", "read_bbo": "hdi._query", "read_cbbo": "hdi._query",
    "read_status": "hdi._query", "read_imbalance": "hdi._query", "hold": "hdi._query",
    "ingest": "hdi.pipeline", "status": "hdi._status_report",
    "quarantine_list": "hdi._quarantine", "quarantine_show": "hdi._quarantine", "quarantine_replay": "hdi._quarantine",
    "read_continuous": "hdi.research.continuous", "rolls": "hdi.research.rolls", "contract_chain": "hdi.research.chains",
}

if TYPE_CHECKING:  # pragma: no cover
    from hdi._quarantine import quarantine_list, quarantine_replay, quarantine_show
    from hdi._query import (
        hold,
        read_bars,
        read_bbo,
        read_cbbo,
        read_definitions,
        read_imbalance,
        read_mbo,
        read_mbp1,
        read_mbp10,
        read_statistics,
        read_status,
        read_tbbo,
        read_trades,
    )
    from hdi._status_report import status
    from hdi.pipeline import ingest
    from hdi.research.chains import contract_chain
    from hdi.research.continuous import read_continuous
    from hdi.research.rolls import rolls


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'hdi' has no attribute '{name}'")


def close() -> None:
    """Close every store connection this process holds. Not needed to let another process use a
    DuckDB store: hdi holds a DuckDB file only during a call (a read) or a chunk (an ingest), or
    a ``with hdi.hold():`` block."""
    from hdi.store import close_all

    close_all()
