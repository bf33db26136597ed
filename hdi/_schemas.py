"""The Databento schemas hdi reads: one table, one row per schema.

Each :class:`SchemaInfo` says which ``databento_dbn`` record class a schema's records are, which
table they land in, the timestamp Databento indexes (and maps symbols) by, and the bar length for
OHLCV schemas. Everything that lists schemas (the decoder, the file reader, recipe checks, the
CLI, ``--update``'s bar arithmetic) reads this table; a new schema is one new row here (plus its
table and decoding rules where they differ).

The record class is named, not imported: importing this module does not load ``databento_dbn``
(``hdi query`` never imports it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from databento_dbn import DBNRecord


@dataclass(frozen=True)
class SchemaInfo:
    """One Databento schema as hdi reads it."""

    name: str  # Databento's schema name, e.g. "ohlcv-1m"
    record: str  # the databento_dbn record class name, e.g. "OHLCVMsg"
    table: str  # the hdi table its records land in
    index_ts: str  # the timestamp Databento indexes records by: ts_recv when the records have it
    bar_seconds: int | None = None  # OHLCV bar length; None for other schemas

    @property
    def record_class(self) -> type[DBNRecord]:
        """The ``databento_dbn`` record class (current DBN version layout)."""
        import databento_dbn

        cls: type[DBNRecord] = getattr(databento_dbn, self.record)
        return cls


def _bars(name: str, seconds: int) -> SchemaInfo:
    return SchemaInfo(name, "OHLCVMsg", "ohlcv", "ts_event", seconds)


SCHEMAS: dict[str, SchemaInfo] = {s.name: s for s in (
    _bars("ohlcv-1s", 1),
    _bars("ohlcv-1m", 60),
    _bars("ohlcv-1h", 3600),
    _bars("ohlcv-1d", 86400),
    SchemaInfo("trades", "TradeMsg", "trades", "ts_recv"),
    SchemaInfo("tbbo", "MBP1Msg", "tbbo", "ts_recv"),
    SchemaInfo("mbp-1", "MBP1Msg", "mbp1", "ts_recv"),
    SchemaInfo("statistics", "StatMsg", "statistics", "ts_recv"),
    SchemaInfo("definition", "InstrumentDefMsg", "instruments", "ts_recv"),
    # issue 13 (keys and layouts: docs/schemas.md)
    SchemaInfo("mbo", "MBOMsg", "mbo", "ts_recv"),
    SchemaInfo("mbp-10", "MBP10Msg", "mbp10", "ts_recv"),
    SchemaInfo("bbo-1s", "BBOMsg", "bbo", "ts_recv"),
    SchemaInfo("bbo-1m", "BBOMsg", "bbo", "ts_recv"),
    SchemaInfo("cbbo-1s", "CBBOMsg", "cbbo", "ts_recv"),
    SchemaInfo("cbbo-1m", "CBBOMsg", "cbbo", "ts_recv"),
    SchemaInfo("status", "StatusMsg", "status", "ts_recv"),
    SchemaInfo("imbalance", "ImbalanceMsg", "imbalance", "ts_recv"),
    _bars("ohlcv-eod", 86400),  # only where the dataset offers it (metadata.list_schemas, hdi/pipeline)
)}

# Bar sizes a recipe can resample OHLCV bars to, beyond the source schemas (``ohlcv-5m`` from ``ohlcv-1m``).
RESAMPLED_BARS: dict[str, int] = {"ohlcv-5m": 300, "ohlcv-15m": 900}


def bar_seconds(schema: str) -> int | None:
    """The bar length of an OHLCV schema (source or resampled), None for other schemas."""
    info = SCHEMAS.get(schema)
    return info.bar_seconds if info is not None else RESAMPLED_BARS.get(schema)
