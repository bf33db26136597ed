"""Showing stored UTC times in another zone: ``tz="exchange"`` or any IANA zone (storage stays UTC).

``tz="exchange"`` picks the zone of the venue behind the queried dataset (``GLBX.MDP3`` ->
``America/Chicago``, US equities and options -> ``America/New_York``, ...). Only timestamp columns
change: their values are the same instants, shown in the zone (their ``_utc`` names are kept, so
code reading either form works); dates such as ``effective_date_utc`` are unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable

import polars as pl

from hdi.errors import QueryError

EXCHANGE = "exchange"

# Databento dataset -> the venue's local time zone.
EXCHANGE_TZ: dict[str, str] = {
    "GLBX.MDP3": "America/Chicago",  # CME Globex: CME, CBOT, NYMEX, COMEX
    "IFUS.IMPACT": "America/New_York",
    "IFEU.IMPACT": "Europe/London",
    "IFLL.IMPACT": "Europe/London",
    "NDEX.IMPACT": "Europe/Amsterdam",
    "XEUR.EOBI": "Europe/Berlin",
    "OPRA.PILLAR": "America/New_York",
    "EQUS.MINI": "America/New_York", "EQUS.SUMMARY": "America/New_York", "EQUS.PLUS": "America/New_York",
    "EQUS.ALL": "America/New_York", "DBEQ.BASIC": "America/New_York", "XNAS.ITCH": "America/New_York",
    "XNAS.BASIC": "America/New_York", "XBOS.ITCH": "America/New_York", "XPSX.ITCH": "America/New_York",
    "XNYS.PILLAR": "America/New_York", "ARCX.PILLAR": "America/New_York", "XCHI.PILLAR": "America/New_York",
    "XCIS.TRADESBBO": "America/New_York", "IEXG.TOPS": "America/New_York", "BATS.PITCH": "America/New_York",
    "BATY.PITCH": "America/New_York", "EDGA.PITCH": "America/New_York", "EDGX.PITCH": "America/New_York",
    "MEMX.MEMOIR": "America/New_York", "EPRL.DOM": "America/New_York",
}

_ALLOWED = "'exchange' (the venue's zone, e.g. America/Chicago for GLBX.MDP3), 'UTC' or an IANA zone " \
           "such as America/New_York"


def zone_for(tz: str | None, datasets: Iterable[str | None]) -> str | None:
    """The IANA zone to show times in, or None to keep UTC.

    Raises:
        QueryError: an unknown zone; ``exchange`` for a dataset whose venue zone is unknown, or for
            datasets on venues in different zones (one frame has one zone: pass it explicitly).
    """
    if tz is None:
        return None
    name = str(tz).strip()
    if name.lower() == EXCHANGE:
        ds = sorted({d for d in datasets if d is not None})
        unknown = [d for d in ds if d not in EXCHANGE_TZ]
        if unknown:
            raise QueryError(f"tz 'exchange': the exchange time zone of dataset {unknown[0]} is not known; "
                             f"pass an IANA zone instead (e.g. --tz America/New_York)")
        zones = {EXCHANGE_TZ[d] for d in ds}
        if len(zones) > 1:
            raise QueryError("tz 'exchange': the rows come from venues in different zones ("
                             + ", ".join(f"{d} {EXCHANGE_TZ[d]}" for d in ds)
                             + "); query one dataset (--dataset) or pass one IANA zone")
        return zones.pop() if zones else None
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise QueryError(f"tz '{tz}' is not a time zone; allowed: {_ALLOWED}") from None
    return name


def to_zone(frame: pl.DataFrame, zone: str | None) -> pl.DataFrame:
    """Every UTC timestamp column of ``frame`` shown in ``zone`` (None: unchanged)."""
    if zone is None:
        return frame
    cols = [c for c, t in frame.schema.items() if isinstance(t, pl.Datetime) and t.time_zone is not None]
    return frame.with_columns(pl.col(cols).dt.convert_time_zone(zone)) if cols else frame
