"""Stores: where validated frames land. ``open_store(url)`` picks the backend from the URL.

- ``duckdb:///path/to/file.duckdb`` — the embedded store (the default; no server).
- ``postgresql://user:pass@host:port/db`` — TimescaleDB (``postgres://`` is accepted too).
- ``iceberg:///abs/folder`` — the lake store: Apache Iceberg tables (SQLite catalog and a local
  warehouse in that folder, or any pyiceberg catalog with ``?catalog=NAME``; see docs/lake.md).
"""

from __future__ import annotations

import threading

from hdi._config import redact_url, store_url
from hdi.errors import ConfigError
from hdi.store.base import Store, WriteResult

__all__ = ["Store", "WriteResult", "open_store", "close_all"]

_SCHEMES = ("duckdb:///path/to/file.duckdb", "postgresql://user:password@host:port/database",
            "iceberg:///path/to/folder")
_STORES: dict[str, Store] = {}
_LOCK = threading.Lock()


def open_store(url: str | None = None) -> Store:
    """The store for a URL (default: ``HDI_STORE``, else the embedded DuckDB file).

    Stores are cached per URL for the life of the process, so that repeated reads stay warm.

    Raises:
        ConfigError: the URL's scheme is not one hdi knows.
    """
    given = url
    url = store_url(url)
    with _LOCK:
        if url in _STORES:
            return _STORES[url]
        scheme = url.split("://", 1)[0].lower() if "://" in url else ""
        if scheme == "duckdb":
            from hdi.store.duckdb import DuckDBStore

            store: Store = DuckDBStore(url)
        elif scheme in ("postgresql", "postgres"):
            from hdi.store.timescale import TimescaleStore

            store = TimescaleStore(url)
        elif scheme == "iceberg":
            from hdi.store.iceberg import IcebergStore

            store = IcebergStore(url)
        else:
            origin = "" if given else " (from HDI_STORE)"
            what = f"has an unknown scheme '{scheme}'" if scheme else "is not a URL (no scheme://)"
            hint = f" (did you mean 'duckdb://{url}'?)" if not scheme and url.endswith(".duckdb") else ""
            raise ConfigError(f"store URL '{redact_url(url)}'{origin} {what}{hint}; allowed: {', '.join(_SCHEMES)}")
        _STORES[url] = store
        return store


def close_all() -> None:
    """Close every store this process opened (releases DuckDB file locks and connections)."""
    with _LOCK:
        for store in _STORES.values():
            store.close()
        _STORES.clear()
