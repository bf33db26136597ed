"""Settings, resolved in one order everywhere: call arguments > environment (``HDI_*``) > defaults.

Where things go (all under the data directory unless set on their own):

=====================  =====================================  =====================================
what                   environment                            default
=====================  =====================================  =====================================
data directory         ``HDI_DATA_DIR``                       ``./data``
store                  ``HDI_STORE``                          ``duckdb:///<data dir>/hdi.duckdb``
raw DBN cache          ``HDI_CACHE_DIR``                      ``<data dir>/raw``
quarantine             ``HDI_QUARANTINE_DIR``                 ``<data dir>/quarantine``
logs                   ``HDI_LOG_DIR``                        ``<data dir>/logs``
Databento gateway      ``HDI_DATABENTO_GATEWAY``              the recipe's, else Databento's own
Databento API key      ``DATABENTO_API_KEY`` (only)           none: ingesting from the API fails
=====================  =====================================  =====================================

Secrets (the API key, database passwords) are never logged or printed: :func:`redact` (and
:func:`redact_url`, the same rules) from :mod:`hdi.redaction` is applied to every message and URL.
"""

from __future__ import annotations

import os
from pathlib import Path

from hdi.errors import ConfigError
from hdi.redaction import redact, redact_url  # noqa: F401 - the one implementation, re-exported

API_KEY_ENV = "DATABENTO_API_KEY"


def data_dir(value: str | os.PathLike[str] | None = None) -> Path:
    """The folder hdi writes its embedded store, raw cache, quarantine and logs under."""
    return Path(value or os.environ.get("HDI_DATA_DIR") or "data")


def _sub(env: str, name: str, value: str | os.PathLike[str] | None) -> Path:
    return Path(value or os.environ.get(env) or data_dir() / name)


def cache_dir(value: str | os.PathLike[str] | None = None) -> Path:
    """Raw DBN cache: complete downloads only, reused by re-runs."""
    return _sub("HDI_CACHE_DIR", "raw", value)


def quarantine_dir(value: str | os.PathLike[str] | None = None) -> Path:
    """Parquet files of rows that failed validation, one folder per run."""
    return _sub("HDI_QUARANTINE_DIR", "quarantine", value)


def log_dir(value: str | os.PathLike[str] | None = None) -> Path:
    return _sub("HDI_LOG_DIR", "logs", value)


def store_url(value: str | None = None) -> str:
    """The store URL: the argument, ``HDI_STORE``, else the embedded DuckDB file in the data dir.

    ``duckdb://`` is followed by the file's path: ``duckdb:///abs/file.duckdb`` (absolute) or
    ``duckdb://data/file.duckdb`` (relative to the working directory).
    """
    url = value or os.environ.get("HDI_STORE")
    if url:
        return url
    return f"duckdb://{(data_dir() / 'hdi.duckdb').absolute()}"


def gateway(value: str | None = None) -> str | None:
    """Databento gateway URL: ``HDI_DATABENTO_GATEWAY`` wins over the recipe's value."""
    return os.environ.get("HDI_DATABENTO_GATEWAY") or value or None


def api_key() -> str:
    """The Databento API key, from ``DATABENTO_API_KEY`` only."""
    key = os.environ.get(API_KEY_ENV, "").strip()
    if not key:
        raise ConfigError(
            f"{API_KEY_ENV} is not set: export {API_KEY_ENV}=db-... with a key from "
            "https://databento.com/portal/keys (or ingest files on disk with --from-file)"
        )
    return key
