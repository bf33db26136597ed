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
:func:`redact_url`, the same rules) from :mod:`hdi._redaction` is applied to every message and URL.
"""

from __future__ import annotations

import os
from pathlib import Path

from hdi._redaction import redact as redact  # the one implementation, re-exported
from hdi._redaction import redact_url as redact_url
from hdi.errors import ConfigError

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


def current_user() -> str:
    """``name (uid N)`` of the user this process writes files as."""
    uid = os.geteuid()
    try:
        import pwd

        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except (ImportError, KeyError):
        return f"uid {uid}"


def check_writable_dir(folder: str | os.PathLike[str], what: str, elsewhere: str) -> Path:
    """Create ``folder`` if needed and prove a file can be created in it, or raise one line naming
    the folder that blocks (the folder or its nearest existing parent), the user and the reason;
    ``elsewhere`` says how to use another folder (``set HDI_LOG_DIR to another folder``).

    Raises:
        ConfigError: ``log folder /data/logs cannot be created: folder /data is not writable by user
            hdi (uid 1000): Permission denied; make it writable for that user or set HDI_DATA_DIR to another
            folder``.
    """
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".hdi-write-probe-{os.getpid()}-{os.urandom(4).hex()}"
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        probe.unlink()
    except OSError as e:
        raise ConfigError(_not_writable(folder, what, elsewhere, e)) from None
    return folder


def _not_writable(folder: Path, what: str, elsewhere: str, e: OSError) -> str:
    blocker = folder
    while not blocker.exists() and blocker.parent != blocker:
        blocker = blocker.parent
    reason = e.strerror or type(e).__name__
    if not blocker.is_dir():
        return f"{what} {folder} cannot be created: {blocker} is a file, not a folder; {elsewhere}"
    head = f"{what} {folder} is" if blocker == folder else f"{what} {folder} cannot be created: folder {blocker} is"
    return f"{head} not writable by user {current_user()}: {reason}; make it writable for that user or {elsewhere}"


def _elsewhere(env: str) -> str:
    """How to move a folder: its own variable when set, else HDI_DATA_DIR (it derives from it)."""
    return f"set {env if os.environ.get(env) else 'HDI_DATA_DIR'} to another folder"


def check_writable_dirs(store: str | None = None, *, cache: bool = True) -> None:
    """Before an ingest downloads anything: the data folder (when the default store lives there), the
    raw cache (when downloading) and the quarantine folder must all take a new file. Missing folders
    are created. A store given by URL is checked when it is opened (before any download too), with
    its own message; the CLI checks the log folder when it opens the run's log file, the library
    writes no log file.

    Raises:
        ConfigError: one line naming the first folder that cannot be written and the user.
    """
    if not store and not os.environ.get("HDI_STORE"):  # the default store lives in the data folder
        check_writable_dir(data_dir(), "data folder", "set HDI_DATA_DIR to another folder")
    if cache:
        check_writable_dir(cache_dir(), "raw cache folder", _elsewhere("HDI_CACHE_DIR"))
    check_writable_dir(quarantine_dir(), "quarantine folder", _elsewhere("HDI_QUARANTINE_DIR"))


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
